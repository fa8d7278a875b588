//! `StringConverter` and `ByteArrayConverter`. The task runtime passes raw bytes straight through
//! when these are configured and no transform needs a value; these functions are the general
//! path, for when a `Value` exists.

use tributary_connect_api::{Schema, SchemaBuilder, Type, Value};

use crate::error::{Error, Result};

/// `org.apache.kafka.connect.storage.StringConverter` (UTF-8): any value is written as its text,
/// as Java's `toString` would, and read back as an optional string.
#[derive(Debug, Clone, Copy, Default)]
pub struct StringConverter;

impl StringConverter {
    pub fn from_connect_data(&self, value: Option<&Value>) -> Result<Option<Vec<u8>>> {
        Ok(match value {
            None => None,
            Some(Value::String(s)) => Some(s.as_bytes().to_vec()),
            Some(v) => Some(java_to_string(v)?.into_bytes()),
        })
    }

    pub fn to_connect_data(&self, bytes: Option<&[u8]>) -> Result<(Schema, Option<Value>)> {
        let schema = Schema::optional_string();
        let value = match bytes {
            None => None,
            Some(b) => Some(Value::String(String::from_utf8(b.to_vec()).map_err(
                |e| Error::Conversion(format!("StringConverter: the record is not UTF-8: {e}")),
            )?)),
        };
        Ok((schema, value))
    }
}

/// The text Java's `toString` gives the primitive values a StringConverter meets in practice.
pub(crate) fn java_to_string(v: &Value) -> Result<String> {
    Ok(match v {
        Value::Int8(n) => n.to_string(),
        Value::Int16(n) => n.to_string(),
        Value::Int32(n) => n.to_string(),
        Value::Int64(n) => n.to_string(),
        Value::Float32(f) => super::json_text::java_float(*f),
        Value::Float64(d) => super::json_text::java_double(*d),
        Value::Boolean(b) => b.to_string(),
        Value::String(s) => s.clone(),
        other => {
            return Err(Error::Conversion(format!(
                "StringConverter writes primitive values; a {} needs JsonConverter or a transform",
                other.kind()
            )));
        }
    })
}

/// `org.apache.kafka.connect.converters.ByteArrayConverter`: bytes in, bytes out.
#[derive(Debug, Clone, Copy, Default)]
pub struct ByteArrayConverter;

impl ByteArrayConverter {
    pub fn from_connect_data(
        &self,
        schema: Option<&Schema>,
        value: Option<&Value>,
    ) -> Result<Option<Vec<u8>>> {
        if let Some(s) = schema
            && s.type_() != Type::Bytes
        {
            return Err(Error::Conversion(format!(
                "Invalid schema type for ByteArrayConverter: {}",
                s.type_()
            )));
        }
        match value {
            None => Ok(None),
            Some(Value::Bytes(b)) => Ok(Some(b.clone())),
            Some(other) => Err(Error::Conversion(format!(
                "ByteArrayConverter is not compatible with objects of type {}",
                other.kind()
            ))),
        }
    }

    pub fn to_connect_data(&self, bytes: Option<&[u8]>) -> Result<(Schema, Option<Value>)> {
        static OPTIONAL_BYTES: std::sync::OnceLock<Schema> = std::sync::OnceLock::new();
        let schema = OPTIONAL_BYTES
            .get_or_init(|| {
                SchemaBuilder::new(Type::Bytes)
                    .optional()
                    .build()
                    .unwrap_or_else(|_| Schema::bytes())
            })
            .clone();
        Ok((schema, bytes.map(|b| Value::Bytes(b.to_vec()))))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strings_and_primitives_become_text_and_read_back_as_optional_strings() {
        let c = StringConverter;
        assert_eq!(
            c.from_connect_data(Some(&Value::String("héllo".into())))
                .expect("ok"),
            Some("héllo".as_bytes().to_vec())
        );
        assert_eq!(
            c.from_connect_data(Some(&Value::Int64(-7))).expect("ok"),
            Some(b"-7".to_vec())
        );
        assert_eq!(
            c.from_connect_data(Some(&Value::Float64(1.0e10)))
                .expect("ok"),
            Some(b"1.0E10".to_vec())
        );
        assert_eq!(c.from_connect_data(None).expect("ok"), None);
        assert!(c.from_connect_data(Some(&Value::Array(vec![]))).is_err());
        let (schema, value) = c.to_connect_data(Some("x".as_bytes())).expect("ok");
        assert!(schema.is_optional() && schema.type_() == Type::String);
        assert_eq!(value, Some(Value::String("x".into())));
        assert!(
            c.to_connect_data(Some(&[0xff, 0xfe]))
                .expect_err("not utf-8")
                .to_string()
                .contains("UTF-8")
        );
    }

    #[test]
    fn byte_arrays_pass_through_and_other_types_are_refused() {
        let c = ByteArrayConverter;
        assert_eq!(
            c.from_connect_data(Some(&Schema::bytes()), Some(&Value::Bytes(vec![1, 2])))
                .expect("ok"),
            Some(vec![1, 2])
        );
        assert_eq!(c.from_connect_data(None, None).expect("ok"), None);
        let err = c
            .from_connect_data(Some(&Schema::string()), Some(&Value::String("x".into())))
            .expect_err("string");
        assert_eq!(
            err.to_string(),
            "Conversion error: Invalid schema type for ByteArrayConverter: STRING"
        );
        assert_eq!(
            c.to_connect_data(Some(&[9])).expect("ok").1,
            Some(Value::Bytes(vec![9]))
        );
    }
}
