//! `org.apache.kafka.connect.json.JsonConverter`, serializing direction: Connect data to the
//! exact bytes Kafka's converter writes (checked against fixtures made by the real jar), with
//! `schemas.enable`, `decimal.format` and `replace.null.with.default`.

use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;
use tributary_connect_api::logical;
use tributary_connect_api::{Decimal, Schema, Type, Value};

use super::json_text::{java_double, java_float, string};
use crate::error::{Error, Result};

/// How decimals are written in payloads.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum DecimalFormat {
    /// The unscaled value's bytes, base64 (Java's default).
    #[default]
    Base64,
    /// A JSON number.
    Numeric,
}

#[derive(Debug, Clone)]
pub struct JsonConverter {
    pub schemas_enable: bool,
    pub decimal_format: DecimalFormat,
    pub replace_null_with_default: bool,
}

impl Default for JsonConverter {
    /// Java's defaults.
    fn default() -> Self {
        Self {
            schemas_enable: true,
            decimal_format: DecimalFormat::Base64,
            replace_null_with_default: true,
        }
    }
}

impl JsonConverter {
    /// The record bytes for `value` under `schema`; `None` (a null record) when both are absent.
    pub fn from_connect_data(
        &self,
        schema: Option<&Schema>,
        value: Option<&Value>,
    ) -> Result<Option<Vec<u8>>> {
        if schema.is_none() && value.is_none() {
            return Ok(None);
        }
        let mut out = String::new();
        if self.schemas_enable {
            out.push_str("{\"schema\":");
            match schema {
                Some(s) => self.write_schema(s, None, &mut out)?,
                None => out.push_str("null"),
            }
            out.push_str(",\"payload\":");
            self.write_value(schema, value, &mut out)?;
            out.push('}');
        } else {
            self.write_value(schema, value, &mut out)?;
        }
        Ok(Some(out.into_bytes()))
    }

    /// The schema envelope, keys in Java's order; `field` is added last for struct fields.
    fn write_schema(&self, schema: &Schema, field: Option<&str>, out: &mut String) -> Result<()> {
        out.push_str("{\"type\":");
        string(schema.type_().name(), out);
        match schema.type_() {
            Type::Array => {
                out.push_str(",\"items\":");
                self.write_schema(element(schema)?, None, out)?;
            }
            Type::Map => {
                out.push_str(",\"keys\":");
                self.write_schema(
                    schema
                        .key_schema()
                        .ok_or_else(|| conversion("map schema without key schema"))?,
                    None,
                    out,
                )?;
                out.push_str(",\"values\":");
                self.write_schema(element(schema)?, None, out)?;
            }
            Type::Struct => {
                out.push_str(",\"fields\":[");
                for (i, f) in schema.fields().iter().enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    self.write_schema(&f.schema, Some(&f.name), out)?;
                }
                out.push(']');
            }
            _ => {}
        }
        out.push_str(if schema.is_optional() {
            ",\"optional\":true"
        } else {
            ",\"optional\":false"
        });
        if let Some(name) = schema.name() {
            out.push_str(",\"name\":");
            string(name, out);
        }
        if let Some(version) = schema.version() {
            out.push_str(&format!(",\"version\":{version}"));
        }
        if let Some(doc) = schema.doc() {
            out.push_str(",\"doc\":");
            string(doc, out);
        }
        if !schema.parameters().is_empty() {
            out.push_str(",\"parameters\":{");
            for (i, (k, v)) in schema.parameters().iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                string(k, out);
                out.push(':');
                string(v, out);
            }
            out.push('}');
        }
        if let Some(default) = schema.default_value() {
            out.push_str(",\"default\":");
            self.write_value(Some(schema), Some(default), out)?;
        }
        if let Some(field) = field {
            out.push_str(",\"field\":");
            string(field, out);
        }
        out.push('}');
        Ok(())
    }

    fn write_value(
        &self,
        schema: Option<&Schema>,
        value: Option<&Value>,
        out: &mut String,
    ) -> Result<()> {
        let Some(value) = value else {
            match schema {
                None => out.push_str("null"),
                Some(s) => match s.default_value() {
                    Some(default) if self.replace_null_with_default => {
                        return self.write_value(schema, Some(default), out);
                    }
                    _ if s.is_optional() => out.push_str("null"),
                    _ => {
                        return Err(conversion(
                            "null value for a field that is required and has no default value",
                        ));
                    }
                },
            }
            return Ok(());
        };
        match value {
            Value::Int8(n) => out.push_str(&n.to_string()),
            Value::Int16(n) => out.push_str(&n.to_string()),
            Value::Int32(n) | Value::Date(n) | Value::Time(n) => out.push_str(&n.to_string()),
            Value::Int64(n) | Value::Timestamp(n) => out.push_str(&n.to_string()),
            Value::Float32(f) => out.push_str(&java_float(*f)),
            Value::Float64(d) => out.push_str(&java_double(*d)),
            Value::Boolean(b) => out.push_str(if *b { "true" } else { "false" }),
            Value::String(s) => string(s, out),
            Value::Bytes(b) => string(&BASE64.encode(b), out),
            Value::Decimal(d) => match self.decimal_format {
                DecimalFormat::Base64 => string(&BASE64.encode(logical::decimal_to_bytes(d)), out),
                DecimalFormat::Numeric => out.push_str(&plain_decimal(d)),
            },
            Value::Array(items) => {
                let element = schema.map(element).transpose()?;
                out.push('[');
                for (i, item) in items.iter().enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    self.write_value(element, item.as_ref(), out)?;
                }
                out.push(']');
            }
            Value::Map(entries) => {
                let key_schema = schema.and_then(Schema::key_schema);
                let value_schema = schema.and_then(Schema::value_schema);
                // String keys make an object; any other key type a list of [key, value] pairs.
                let object_mode = match key_schema {
                    Some(k) => k.type_() == Type::String,
                    None => entries
                        .iter()
                        .all(|(k, _)| matches!(k, Some(Value::String(_)))),
                };
                out.push(if object_mode { '{' } else { '[' });
                for (i, (k, v)) in entries.iter().enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    if object_mode {
                        match k {
                            Some(Value::String(k)) => string(k, out),
                            _ => {
                                return Err(conversion(
                                    "a map key that is not a string under a string key schema",
                                ));
                            }
                        }
                        out.push(':');
                        self.write_value(value_schema, v.as_ref(), out)?;
                    } else {
                        out.push('[');
                        self.write_value(key_schema, k.as_ref(), out)?;
                        out.push(',');
                        self.write_value(value_schema, v.as_ref(), out)?;
                        out.push(']');
                    }
                }
                out.push(if object_mode { '}' } else { ']' });
            }
            Value::Struct(s) => {
                out.push('{');
                for (i, f) in s.schema().fields().iter().enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    string(&f.name, out);
                    out.push(':');
                    let v = s
                        .get_without_default(&f.name)
                        .map_err(|e| conversion(&e.to_string()))?;
                    self.write_value(Some(&f.schema), v, out)?;
                }
                out.push('}');
            }
        }
        Ok(())
    }
}

fn element(schema: &Schema) -> Result<&Schema> {
    schema
        .value_schema()
        .ok_or_else(|| conversion("array or map schema without value schema"))
}

fn conversion(reason: &str) -> Error {
    Error::Conversion(reason.to_string())
}

/// A decimal as `BigDecimal.toPlainString` writes it: `-0.01`, `10.50`, `1200` for scale -2.
fn plain_decimal(d: &Decimal) -> String {
    let digits = d.unscaled.magnitude().to_string();
    let sign = if d.unscaled.sign() == num_bigint::Sign::Minus {
        "-"
    } else {
        ""
    };
    if d.scale <= 0 {
        return format!("{sign}{digits}{}", "0".repeat((-d.scale) as usize));
    }
    let scale = d.scale as usize;
    let padded = if digits.len() <= scale {
        format!("{}{digits}", "0".repeat(scale - digits.len() + 1))
    } else {
        digits
    };
    let (int_part, frac_part) = padded.split_at(padded.len() - scale);
    format!("{sign}{int_part}.{frac_part}")
}
