//! Connect values and structs, and the check of a value against its schema (Java's
//! `ConnectSchema.validateValue`).

use num_bigint::BigInt;

use crate::error::DataError;
use crate::logical;
use crate::schema::{Field, Schema, Type};

/// A value of a Connect record. Logical types have variants of their own so that converters and
/// transforms never guess from the schema name twice.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    Int8(i8),
    Int16(i16),
    Int32(i32),
    Int64(i64),
    Float32(f32),
    Float64(f64),
    Boolean(bool),
    String(String),
    Bytes(Vec<u8>),
    Array(Vec<Option<Value>>),
    /// Entries in order; keys may be any type (JsonConverter writes non-string keys as pairs).
    Map(Vec<(Option<Value>, Option<Value>)>),
    Struct(Struct),
    /// `org.apache.kafka.connect.data.Decimal`: unscaled value and the schema's scale.
    Decimal(Decimal),
    /// `org.apache.kafka.connect.data.Date`: days since the Unix epoch.
    Date(i32),
    /// `org.apache.kafka.connect.data.Time`: milliseconds since midnight.
    Time(i32),
    /// `org.apache.kafka.connect.data.Timestamp`: milliseconds since the Unix epoch.
    Timestamp(i64),
}

/// An arbitrary-precision decimal: `unscaled × 10^-scale`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decimal {
    pub unscaled: BigInt,
    pub scale: i32,
}

impl Value {
    /// The name of the variant, for error messages.
    pub fn kind(&self) -> &'static str {
        match self {
            Value::Int8(_) => "int8",
            Value::Int16(_) => "int16",
            Value::Int32(_) => "int32",
            Value::Int64(_) => "int64",
            Value::Float32(_) => "float32",
            Value::Float64(_) => "float64",
            Value::Boolean(_) => "boolean",
            Value::String(_) => "string",
            Value::Bytes(_) => "bytes",
            Value::Array(_) => "array",
            Value::Map(_) => "map",
            Value::Struct(_) => "struct",
            Value::Decimal(_) => "Decimal",
            Value::Date(_) => "Date",
            Value::Time(_) => "Time",
            Value::Timestamp(_) => "Timestamp",
        }
    }
}

/// A struct value: one slot per field of its schema, `None` for null.
#[derive(Debug, Clone, PartialEq)]
pub struct Struct {
    schema: Schema,
    values: Vec<Option<Value>>,
}

impl Struct {
    /// An empty struct of `schema`; fails unless the schema is a struct schema.
    pub fn new(schema: Schema) -> Result<Self, DataError> {
        if schema.type_() != Type::Struct {
            return Err(DataError::InvalidSchema(format!(
                "a Struct needs a struct schema, not {}",
                schema.type_()
            )));
        }
        let values = vec![None; schema.fields().len()];
        Ok(Self { schema, values })
    }

    /// A struct of `schema` with all its values at once, in field order, each checked as
    /// `put_field` checks it: for converters that read a whole struct, one allocation instead
    /// of a struct to fill and a list to fill it from.
    pub fn from_values(schema: Schema, values: Vec<Option<Value>>) -> Result<Self, DataError> {
        if schema.type_() != Type::Struct {
            return Err(DataError::InvalidSchema(format!(
                "a Struct needs a struct schema, not {}",
                schema.type_()
            )));
        }
        if values.len() != schema.fields().len() {
            return Err(DataError::InvalidSchema(format!(
                "{} values for a struct of {} fields",
                values.len(),
                schema.fields().len()
            )));
        }
        for (field, value) in schema.fields().iter().zip(&values) {
            validate_value(&field.name, &field.schema, value.as_ref())?;
        }
        Ok(Self { schema, values })
    }

    pub fn schema(&self) -> &Schema {
        &self.schema
    }

    /// Sets a field, checking the value against the field's schema (as Java's `put` does).
    pub fn put(&mut self, name: &str, value: Option<Value>) -> Result<&mut Self, DataError> {
        let field = self
            .schema
            .field(name)
            .ok_or_else(|| DataError::UnknownField(name.to_string()))?;
        let field = field.clone();
        self.put_field(&field, value)
    }

    /// Sets the field of this struct's schema without looking it up by name (for converters,
    /// which walk the fields in order).
    pub fn put_field(
        &mut self,
        field: &Field,
        value: Option<Value>,
    ) -> Result<&mut Self, DataError> {
        validate_value(&field.name, &field.schema, value.as_ref())?;
        let slot = self
            .values
            .get_mut(field.index)
            .ok_or_else(|| DataError::UnknownField(field.name.clone()))?;
        *slot = value;
        Ok(self)
    }

    /// Each field with its own value (no defaults), in schema order.
    pub fn fields_with_values(&self) -> impl Iterator<Item = (&Field, Option<&Value>)> {
        self.schema
            .fields()
            .iter()
            .zip(self.values.iter().map(Option::as_ref))
    }

    /// The field's value, or its schema's default when unset (as Java's `get`).
    pub fn get(&self, name: &str) -> Result<Option<&Value>, DataError> {
        let field = self
            .schema
            .field(name)
            .ok_or_else(|| DataError::UnknownField(name.to_string()))?;
        Ok(self.values[field.index]
            .as_ref()
            .or(field.schema.default_value()))
    }

    /// The value of the field at `index` of this struct's own schema, or its default: `get`
    /// without the lookup by name, for code walking a schema's fields in order.
    pub fn get_at(&self, index: usize) -> Option<&Value> {
        let field = self.schema.fields().get(index)?;
        self.values
            .get(index)?
            .as_ref()
            .or(field.schema.default_value())
    }

    /// The field's own value, without the default.
    pub fn get_without_default(&self, name: &str) -> Result<Option<&Value>, DataError> {
        let field = self
            .schema
            .field(name)
            .ok_or_else(|| DataError::UnknownField(name.to_string()))?;
        Ok(self.values[field.index].as_ref())
    }

    /// Checks every field, so a struct with a required field left unset is caught before it is
    /// converted (Java's `validate`); an unset field with a default passes, as in Java.
    pub fn validate(&self) -> Result<(), DataError> {
        for field in self.schema.fields() {
            let value = self.values[field.index].as_ref();
            if value.is_none() && field.schema.default_value().is_some() {
                continue;
            }
            validate_value(&field.name, &field.schema, value)?;
        }
        Ok(())
    }
}

/// Checks `value` against `schema`; `field` names the place for the error message. Null fits
/// only an optional schema, a default notwithstanding (Java's `ConnectSchema.validateValue`).
pub fn validate_value(
    field: &str,
    schema: &Schema,
    value: Option<&Value>,
) -> Result<(), DataError> {
    let Some(value) = value else {
        if schema.is_optional() {
            return Ok(());
        }
        return Err(DataError::value(
            field,
            format!(
                "null used for a required field, schema type {}",
                schema.type_()
            ),
        ));
    };
    let mismatch = || {
        let expected = schema
            .name()
            .map(str::to_string)
            .unwrap_or_else(|| schema.type_().to_string());
        Err(DataError::value(
            field,
            format!("a {} value does not fit schema {expected}", value.kind()),
        ))
    };
    match (schema.name(), schema.type_(), value) {
        (Some(logical::DECIMAL), Type::Bytes, Value::Decimal(d)) => {
            let scale = logical::decimal_scale(schema)?;
            if d.scale != scale {
                return Err(DataError::value(
                    field,
                    format!(
                        "decimal scale {} does not match the schema's scale {scale}",
                        d.scale
                    ),
                ));
            }
            Ok(())
        }
        (Some(logical::DATE), Type::Int32, Value::Date(_))
        | (Some(logical::TIME), Type::Int32, Value::Time(_))
        | (Some(logical::TIMESTAMP), Type::Int64, Value::Timestamp(_)) => Ok(()),
        (Some(logical::DECIMAL | logical::DATE | logical::TIME | logical::TIMESTAMP), _, _) => {
            mismatch()
        }
        (_, Type::Int8, Value::Int8(_))
        | (_, Type::Int16, Value::Int16(_))
        | (_, Type::Int32, Value::Int32(_))
        | (_, Type::Int64, Value::Int64(_))
        | (_, Type::Float32, Value::Float32(_))
        | (_, Type::Float64, Value::Float64(_))
        | (_, Type::Boolean, Value::Boolean(_))
        | (_, Type::String, Value::String(_))
        | (_, Type::Bytes, Value::Bytes(_)) => Ok(()),
        (_, Type::Array, Value::Array(items)) => {
            let element = schema
                .value_schema()
                .ok_or_else(|| DataError::InvalidSchema("array without element schema".into()))?;
            for (i, item) in items.iter().enumerate() {
                validate_value(&format!("{field}[{i}]"), element, item.as_ref())?;
            }
            Ok(())
        }
        (_, Type::Map, Value::Map(entries)) => {
            let (Some(k), Some(v)) = (schema.key_schema(), schema.value_schema()) else {
                return Err(DataError::InvalidSchema(
                    "map without key or value schema".into(),
                ));
            };
            for (key, value) in entries {
                validate_value(&format!("{field} key"), k, key.as_ref())?;
                validate_value(&format!("{field} value"), v, value.as_ref())?;
            }
            Ok(())
        }
        (_, Type::Struct, Value::Struct(s)) => {
            if s.schema() != schema {
                return Err(DataError::value(
                    field,
                    "the struct's schema is not the field's schema",
                ));
            }
            Ok(())
        }
        _ => mismatch(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::schema::SchemaBuilder;

    fn person() -> Schema {
        SchemaBuilder::struct_()
            .name("Person")
            .field("name", Schema::string())
            .field("nick", Schema::optional_string())
            .field(
                "age",
                SchemaBuilder::new(Type::Int32)
                    .default_value(Value::Int32(18))
                    .build()
                    .expect("valid"),
            )
            .field(
                "tags",
                SchemaBuilder::array(Schema::string())
                    .optional()
                    .build()
                    .expect("valid"),
            )
            .build()
            .expect("valid")
    }

    #[test]
    fn put_checks_types_and_names_the_field() {
        let mut p = Struct::new(person()).expect("struct schema");
        p.put("name", Some(Value::String("ada".into())))
            .expect("fits");
        let err = p
            .put("name", Some(Value::Int32(1)))
            .expect_err("int into string");
        assert_eq!(
            err.to_string(),
            "invalid value for name: a int32 value does not fit schema STRING"
        );
        assert!(matches!(p.put("nope", None), Err(DataError::UnknownField(f)) if f == "nope"));
        let err = p
            .put(
                "tags",
                Some(Value::Array(vec![Some(Value::String("a".into())), None])),
            )
            .expect_err("null element");
        assert!(err.to_string().contains("tags[1]"), "{err}");
    }

    #[test]
    fn validate_catches_an_unset_required_field_and_get_falls_back_to_the_default() {
        let mut p = Struct::new(person()).expect("struct schema");
        assert!(
            p.validate()
                .expect_err("name unset")
                .to_string()
                .contains("name")
        );
        p.put("name", Some(Value::String("ada".into())))
            .expect("fits");
        p.validate()
            .expect("valid: nick optional, age has a default");
        assert_eq!(p.get("age").expect("field"), Some(&Value::Int32(18)));
        assert_eq!(p.get_without_default("age").expect("field"), None);
        // Putting null into a required field fails even when it has a default (Java's put).
        assert!(p.put("age", None).is_err());
    }

    #[test]
    fn logical_values_need_their_logical_schema() {
        let date = logical::date_schema().build().expect("valid");
        validate_value("d", &date, Some(&Value::Date(19000))).expect("a date");
        assert!(validate_value("d", &date, Some(&Value::Int32(19000))).is_err());
        assert!(validate_value("d", &Schema::int32(), Some(&Value::Date(1))).is_err());
        let dec = logical::decimal_schema(2).build().expect("valid");
        let v = Value::Decimal(Decimal {
            unscaled: BigInt::from(12345),
            scale: 2,
        });
        validate_value("amount", &dec, Some(&v)).expect("scale 2");
        let wrong = Value::Decimal(Decimal {
            unscaled: BigInt::from(12345),
            scale: 3,
        });
        assert!(
            validate_value("amount", &dec, Some(&wrong))
                .expect_err("scale 3")
                .to_string()
                .contains("scale 3")
        );
    }

    #[test]
    fn maps_may_have_non_string_keys() {
        let schema = SchemaBuilder::map(Schema::int32(), Schema::optional_string())
            .build()
            .expect("valid");
        let v = Value::Map(vec![
            (Some(Value::Int32(1)), None),
            (Some(Value::Int32(2)), Some(Value::String("b".into()))),
        ]);
        validate_value("m", &schema, Some(&v)).expect("fits");
        let bad = Value::Map(vec![(None, None)]);
        assert!(
            validate_value("m", &schema, Some(&bad))
                .expect_err("null key")
                .to_string()
                .contains("m key")
        );
    }
}
