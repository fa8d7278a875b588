//! The logical types of Kafka Connect: a primitive schema plus a well-known name, with the
//! conversions between their wire form and their [`Value`] form.

use num_bigint::BigInt;

use crate::error::DataError;
use crate::schema::{Schema, SchemaBuilder, Type};
use crate::value::{Decimal, Value};

pub const DECIMAL: &str = "org.apache.kafka.connect.data.Decimal";
pub const DATE: &str = "org.apache.kafka.connect.data.Date";
pub const TIME: &str = "org.apache.kafka.connect.data.Time";
pub const TIMESTAMP: &str = "org.apache.kafka.connect.data.Timestamp";
/// The Decimal schema parameter that holds the scale.
pub const SCALE: &str = "scale";

const MILLIS_PER_DAY: i64 = 86_400_000;

/// A Decimal schema (bytes, version 1, `scale` parameter) as Java's `Decimal.builder(scale)`.
pub fn decimal_schema(scale: i32) -> SchemaBuilder {
    SchemaBuilder::new(Type::Bytes)
        .name(DECIMAL)
        .version(1)
        .parameter(SCALE, scale.to_string())
}

pub fn date_schema() -> SchemaBuilder {
    SchemaBuilder::new(Type::Int32).name(DATE).version(1)
}

pub fn time_schema() -> SchemaBuilder {
    SchemaBuilder::new(Type::Int32).name(TIME).version(1)
}

pub fn timestamp_schema() -> SchemaBuilder {
    SchemaBuilder::new(Type::Int64).name(TIMESTAMP).version(1)
}

/// The most digits a decimal's scale, or the unscaled value a JSON number is rescaled to, may
/// have. PostgreSQL's `numeric` holds 131,072 digits before the point and 16,383 after, so real
/// data fits; beyond it a 40-byte record could make the worker build a number of 10^693,022,067
/// or a text of that many zeros (found by fuzzing), which is a denial of service, not data.
pub const MAX_DECIMAL_DIGITS: i32 = 150_000;

/// The scale of a Decimal schema; an error names the schema when the parameter is missing, not
/// an integer, or beyond ±[`MAX_DECIMAL_DIGITS`] (Java takes any `int`; no store keeps such a
/// number, and writing one would take gigabytes).
pub fn decimal_scale(schema: &Schema) -> Result<i32, DataError> {
    let scale: i32 = schema
        .parameter(SCALE)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| {
            DataError::InvalidSchema(format!(
                "{DECIMAL} schema without a valid integer `{SCALE}` parameter"
            ))
        })?;
    if scale.unsigned_abs() > MAX_DECIMAL_DIGITS.unsigned_abs() {
        return Err(DataError::InvalidSchema(format!(
            "{DECIMAL} schema's `{SCALE}` {scale} is out of range: at most {MAX_DECIMAL_DIGITS} \
             digits either side of the point"
        )));
    }
    Ok(scale)
}

/// The wire form of a decimal: the unscaled value as big-endian two's complement, in as few
/// bytes as hold it (Java's `BigInteger.toByteArray`).
pub fn decimal_to_bytes(d: &Decimal) -> Vec<u8> {
    d.unscaled.to_signed_bytes_be()
}

pub fn decimal_from_bytes(bytes: &[u8], scale: i32) -> Decimal {
    Decimal {
        unscaled: BigInt::from_signed_bytes_be(bytes),
        scale,
    }
}

/// The raw primitive a logical value is stored as, for converters that write the wire form.
pub fn to_primitive(value: &Value) -> Value {
    match value {
        Value::Decimal(d) => Value::Bytes(decimal_to_bytes(d)),
        Value::Date(days) => Value::Int32(*days),
        Value::Time(millis) => Value::Int32(*millis),
        Value::Timestamp(millis) => Value::Int64(*millis),
        other => other.clone(),
    }
}

/// The logical value for a primitive read off the wire under `schema`, checked as Java checks it
/// (a Time within one day).
pub fn from_primitive(schema: &Schema, value: Value) -> Result<Value, DataError> {
    let what = schema.name().unwrap_or_default();
    Ok(match (schema.name(), value) {
        (Some(DECIMAL), Value::Bytes(b)) => {
            Value::Decimal(decimal_from_bytes(&b, decimal_scale(schema)?))
        }
        (Some(DATE), Value::Int32(days)) => Value::Date(days),
        (Some(TIME), Value::Int32(millis)) => {
            if !(0..MILLIS_PER_DAY).contains(&i64::from(millis)) {
                return Err(DataError::value(
                    what,
                    format!("{millis} ms is not a time of day"),
                ));
            }
            Value::Time(millis)
        }
        (Some(TIMESTAMP), Value::Int64(millis)) => Value::Timestamp(millis),
        (_, v) => v,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decimal_bytes_are_javas_minimal_twos_complement() {
        // BigInteger.valueOf(x).toByteArray() for these values.
        for (unscaled, bytes) in [
            (0i64, vec![0x00]),
            (1, vec![0x01]),
            (-1, vec![0xff]),
            (127, vec![0x7f]),
            (128, vec![0x00, 0x80]),
            (-128, vec![0x80]),
            (-129, vec![0xff, 0x7f]),
            (12345, vec![0x30, 0x39]),
        ] {
            let d = Decimal {
                unscaled: BigInt::from(unscaled),
                scale: 2,
            };
            assert_eq!(decimal_to_bytes(&d), bytes, "{unscaled}");
            assert_eq!(decimal_from_bytes(&bytes, 2), d);
        }
    }

    #[test]
    fn logical_schemas_carry_the_java_names_and_versions() {
        let d = decimal_schema(3).build().expect("valid");
        assert_eq!(
            (d.name(), d.version(), d.parameter(SCALE)),
            (Some(DECIMAL), Some(1), Some("3"))
        );
        assert_eq!(decimal_scale(&d).expect("scale"), 3);
        assert_eq!(
            timestamp_schema().build().expect("valid").type_(),
            Type::Int64
        );
        let no_scale = SchemaBuilder::new(Type::Bytes)
            .name(DECIMAL)
            .build()
            .expect("valid");
        assert!(decimal_scale(&no_scale).is_err());
        let huge = decimal_schema(693_022_067).build().expect("valid");
        let err = decimal_scale(&huge).expect_err("a scale no store keeps");
        assert!(
            err.to_string().contains("693022067 is out of range"),
            "{err}"
        );
        assert_eq!(
            decimal_scale(&decimal_schema(-MAX_DECIMAL_DIGITS).build().expect("valid"))
                .expect("at the edge"),
            -MAX_DECIMAL_DIGITS
        );
    }

    #[test]
    fn primitives_round_trip_to_logical_values() {
        let time = time_schema().build().expect("valid");
        assert_eq!(
            from_primitive(&time, Value::Int32(1000)).expect("ok"),
            Value::Time(1000)
        );
        assert!(from_primitive(&time, Value::Int32(86_400_000)).is_err());
        let ts = timestamp_schema().build().expect("valid");
        let v = from_primitive(&ts, Value::Int64(-5)).expect("ok");
        assert_eq!(to_primitive(&v), Value::Int64(-5));
        let dec = decimal_schema(1).build().expect("valid");
        let v = from_primitive(&dec, Value::Bytes(vec![0xff, 0x7f])).expect("ok");
        assert_eq!(
            v,
            Value::Decimal(Decimal {
                unscaled: BigInt::from(-129),
                scale: 1
            })
        );
        assert_eq!(to_primitive(&v), Value::Bytes(vec![0xff, 0x7f]));
    }
}
