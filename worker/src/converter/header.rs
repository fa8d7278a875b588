//! `org.apache.kafka.connect.storage.SimpleHeaderConverter`, the default header converter:
//! values are written as their text, and read back by inferring the type from the text the way
//! Java's `Values.parseString` does for the forms seen in practice (booleans, integers of the
//! smallest fitting width, floating point, otherwise a string).

use tributary_connect_api::{Schema, Value};

use super::json_text::{java_double, java_float};
use crate::error::{Error, Result};

#[derive(Debug, Clone, Copy, Default)]
pub struct SimpleHeaderConverter;

impl SimpleHeaderConverter {
    pub fn from_connect_header(&self, value: Option<&Value>) -> Result<Option<Vec<u8>>> {
        let Some(value) = value else {
            return Ok(None);
        };
        let text = match value {
            Value::String(s) => s.clone(),
            Value::Boolean(b) => b.to_string(),
            Value::Int8(n) => n.to_string(),
            Value::Int16(n) => n.to_string(),
            Value::Int32(n) => n.to_string(),
            Value::Int64(n) => n.to_string(),
            Value::Float32(f) => java_float(*f),
            Value::Float64(d) => java_double(*d),
            Value::Bytes(b) => return Ok(Some(b.clone())),
            Value::Timestamp(ms) => ms.to_string(),
            other => {
                return Err(Error::Conversion(format!(
                    "SimpleHeaderConverter cannot write a {} header value yet",
                    other.kind()
                )));
            }
        };
        Ok(Some(text.into_bytes()))
    }

    pub fn to_connect_header(&self, bytes: Option<&[u8]>) -> (Option<Schema>, Option<Value>) {
        let Some(bytes) = bytes else {
            return (None, None);
        };
        let Ok(text) = std::str::from_utf8(bytes) else {
            return (Some(Schema::bytes()), Some(Value::Bytes(bytes.to_vec())));
        };
        infer(text)
    }
}

fn infer(text: &str) -> (Option<Schema>, Option<Value>) {
    let t = text.trim();
    if t.eq_ignore_ascii_case("true") || t.eq_ignore_ascii_case("false") {
        return (
            Some(Schema::boolean()),
            Some(Value::Boolean(t.eq_ignore_ascii_case("true"))),
        );
    }
    if !t.is_empty() && t == text {
        if let Ok(n) = t.parse::<i64>() {
            return if let Ok(n) = i8::try_from(n) {
                (Some(Schema::int8()), Some(Value::Int8(n)))
            } else if let Ok(n) = i16::try_from(n) {
                (Some(Schema::int16()), Some(Value::Int16(n)))
            } else if let Ok(n) = i32::try_from(n) {
                (Some(Schema::int32()), Some(Value::Int32(n)))
            } else {
                (Some(Schema::int64()), Some(Value::Int64(n)))
            };
        }
        let numeric = t
            .bytes()
            .all(|b| b.is_ascii_digit() || matches!(b, b'.' | b'-' | b'+' | b'e' | b'E'));
        if numeric && let Ok(d) = t.parse::<f64>() {
            let f = d as f32;
            return if f64::from(f) == d {
                (Some(Schema::float32()), Some(Value::Float32(f)))
            } else {
                (Some(Schema::float64()), Some(Value::Float64(d)))
            };
        }
    }
    (
        Some(Schema::string()),
        Some(Value::String(text.to_string())),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_round_trips_with_inferred_types() {
        let c = SimpleHeaderConverter;
        for (text, expect) in [
            ("true", Value::Boolean(true)),
            ("12", Value::Int8(12)),
            ("300", Value::Int16(300)),
            ("70000", Value::Int32(70000)),
            ("5000000000", Value::Int64(5_000_000_000)),
            ("1.5", Value::Float32(1.5)),
            ("0.1", Value::Float64(0.1)),
            ("hello world", Value::String("hello world".into())),
            (" 12", Value::String(" 12".into())),
        ] {
            let (_, v) = c.to_connect_header(Some(text.as_bytes()));
            assert_eq!(v.as_ref(), Some(&expect), "{text}");
            let back = c.from_connect_header(v.as_ref()).ok().flatten();
            assert_eq!(back.as_deref(), Some(text.as_bytes()), "{text}");
        }
    }
}
