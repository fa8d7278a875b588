//! Cast: fields (or the whole key or value) to another primitive type, with Java's conversions
//! (narrowing as Java's `Number.byteValue()` and friends, strings parsed as `Byte.parseByte`…,
//! values printed as Java's `toString`, logical dates as `Values.dateFormatFor`).

use std::collections::BTreeMap;

use num_bigint::BigInt;
use tributary_connect_api::{
    ConfigDef, ConfigKey, ConfigType as T, Decimal, Importance as I, Schema, SchemaBuilder, Type,
    Value,
};

use super::routers::DatePattern;
use super::util::{
    self, build, get, java_class, map_get, map_put, put, require_map, require_struct,
};
use super::{
    Record, Settings, Side, TransformError, TransformPlugin, TransformResult, Transformation,
};

const INPUTS: [Type; 9] = [
    Type::Int8,
    Type::Int16,
    Type::Int32,
    Type::Int64,
    Type::Float32,
    Type::Float64,
    Type::Boolean,
    Type::String,
    Type::Bytes,
];

fn def() -> ConfigDef {
    ConfigDef::new()
        .define(ConfigKey::new(
            "spec",
            T::List,
            I::High,
            "field:type pairs, or one type for the whole key or value; types: int8, int16, int32, int64, float32, float64, boolean, string.",
        ))
        .define(super::util::replace_null_key())
}

pub const CAST_KEY: TransformPlugin = TransformPlugin {
    class: "org.apache.kafka.connect.transforms.Cast$Key",
    doc: "Cast fields, or the whole key, to another primitive type.",
    def,
    create: |s| Ok(Box::new(Cast::new(Side::Key, s)?)),
};

pub const CAST_VALUE: TransformPlugin = TransformPlugin {
    class: "org.apache.kafka.connect.transforms.Cast$Value",
    doc: "Cast fields, or the whole value, to another primitive type.",
    def,
    create: |s| Ok(Box::new(Cast::new(Side::Value, s)?)),
};

const PURPOSE: &str = "cast types";

/// Java's `Schema.Type` constant names.
const JAVA_TYPES: [(Type, &str); 12] = [
    (Type::Int8, "INT8"),
    (Type::Int16, "INT16"),
    (Type::Int32, "INT32"),
    (Type::Int64, "INT64"),
    (Type::Float32, "FLOAT32"),
    (Type::Float64, "FLOAT64"),
    (Type::Boolean, "BOOLEAN"),
    (Type::String, "STRING"),
    (Type::Bytes, "BYTES"),
    (Type::Array, "ARRAY"),
    (Type::Map, "MAP"),
    (Type::Struct, "STRUCT"),
];

pub fn java_name(t: Type) -> &'static str {
    JAVA_TYPES
        .iter()
        .find(|(x, _)| *x == t)
        .map_or("?", |(_, n)| n)
}

fn type_list(types: &[Type]) -> String {
    let names: Vec<&str> = types.iter().map(|t| java_name(*t)).collect();
    format!("[{}]", names.join(", "))
}

fn target(name: &str, spec: &str) -> Result<Type, String> {
    let upper = name.trim().to_ascii_uppercase();
    let t = JAVA_TYPES
        .iter()
        .find(|(_, n)| *n == upper)
        .map(|(t, _)| *t)
        .ok_or_else(|| format!("Invalid value {spec} for configuration spec: Invalid type found in casting spec: {}", name.trim()))?;
    if INPUTS[..8].contains(&t) {
        Ok(t)
    } else {
        Err(format!(
            "Cast transformation does not support casting to {}; supported types are {}",
            java_name(t),
            type_list(&INPUTS[..8])
        ))
    }
}

#[derive(Debug)]
pub struct Cast {
    side: Side,
    whole: Option<Type>,
    fields: BTreeMap<String, Type>,
    replace_null: bool,
}

impl Cast {
    fn new(side: Side, s: &Settings) -> Result<Self, String> {
        let spec = util::list(s, "spec");
        let joined = spec.join(",");
        if spec.is_empty() {
            return Err(format!(
                "Invalid value {joined} for configuration spec: Must match the pattern field:type or type"
            ));
        }
        let mut whole = None;
        let mut fields = BTreeMap::new();
        for m in &spec {
            let parts: Vec<&str> = m.split(':').collect();
            match parts.as_slice() {
                [t] => whole = Some(target(t, &joined)?),
                [f, t] => {
                    fields.insert(f.trim().to_string(), target(t, &joined)?);
                }
                _ => {
                    return Err(format!(
                        "Invalid value {joined} for configuration renames: Invalid rename mapping: {m}"
                    ));
                }
            }
        }
        if whole.is_some() && spec.len() > 1 {
            return Err("Cast transformations that specify a type to cast the entire value to may ony specify a single cast in their spec".into());
        }
        Ok(Self {
            side,
            whole,
            fields,
            replace_null: util::boolean(s, "replace.null.with.default", true),
        })
    }

    fn cast_schema(&self, schema: &Schema) -> TransformResult<Schema> {
        let mut b = match self.whole {
            // The basics of the original, the type of the target.
            Some(t) => util::basics(schema, SchemaBuilder::new(t)),
            None => {
                let mut b = util::struct_basics(schema);
                for f in schema.fields() {
                    match self.fields.get(&f.name) {
                        Some(t) => {
                            let mut fb = SchemaBuilder::new(*t);
                            if f.schema.is_optional() {
                                fb = fb.optional();
                            }
                            if let Some(d) = f.schema.default_value()
                                && let Some(v) = cast_value(Some(&f.schema), Some(d.clone()), *t)?
                            {
                                fb = fb.default_value(v);
                            }
                            b = b.field(f.name.clone(), build(fb)?);
                        }
                        None => b = b.field(f.name.clone(), f.schema.clone()),
                    }
                }
                b
            }
        };
        if schema.is_optional() {
            b = b.optional();
        }
        if let (Some(d), Some(t)) = (schema.default_value(), self.whole)
            && let Some(v) = cast_value(Some(schema), Some(d.clone()), t)?
        {
            b = b.default_value(v);
        }
        build(b)
    }
}

impl Transformation for Cast {
    fn apply(&self, mut r: Record) -> TransformResult<Option<Record>> {
        if self.side.value(&r).is_none() {
            return Ok(Some(r));
        }
        let (schema, value) = self.side.take(&mut r);
        match schema {
            None => match self.whole {
                Some(t) => self.side.set(&mut r, None, cast_value(None, value, t)?),
                None => {
                    let mut map = require_map(value, PURPOSE)?;
                    for (f, t) in &self.fields {
                        let v = cast_value(None, map_get(&map, f).cloned(), *t)?;
                        map_put(&mut map, f, v);
                    }
                    self.side.set(&mut r, None, Some(Value::Map(map)));
                }
            },
            Some(schema) => {
                let updated = self.cast_schema(&schema)?;
                match self.whole {
                    Some(t) => {
                        let v = cast_value(Some(&schema), value, t)?;
                        self.side.set(&mut r, Some(updated), v);
                    }
                    None => {
                        let old = require_struct(value, PURPOSE)?;
                        let mut new = util::new_struct(&updated)?;
                        for f in old.schema().fields() {
                            let v = get(&old, &f.name, self.replace_null)?;
                            let v = match self.fields.get(&f.name) {
                                Some(t) => cast_value(Some(&f.schema), v, *t)?,
                                None => v,
                            };
                            put(&mut new, &f.name, v)?;
                        }
                        self.side
                            .set(&mut r, Some(updated), Some(Value::Struct(new)));
                    }
                }
            }
        }
        Ok(Some(r))
    }
}

/// The type Java infers for a schemaless value (`ConnectSchema.schemaType`).
fn inferred(v: &Value) -> Option<Type> {
    Some(match v {
        Value::Int8(_) => Type::Int8,
        Value::Int16(_) => Type::Int16,
        Value::Int32(_) => Type::Int32,
        Value::Int64(_) => Type::Int64,
        Value::Float32(_) => Type::Float32,
        Value::Float64(_) => Type::Float64,
        Value::Boolean(_) => Type::Boolean,
        Value::String(_) => Type::String,
        Value::Bytes(_) => Type::Bytes,
        Value::Array(_) => Type::Array,
        Value::Map(_) => Type::Map,
        Value::Struct(_) => Type::Struct,
        Value::Decimal(_) | Value::Date(_) | Value::Time(_) | Value::Timestamp(_) => return None,
    })
}

/// A number as Java's `Number` sees it.
enum Num {
    Int(i64),
    Float(f64),
    Big(BigInt, i32),
}

fn number(v: &Value) -> Option<Num> {
    Some(match v {
        Value::Int8(n) => Num::Int(i64::from(*n)),
        Value::Int16(n) => Num::Int(i64::from(*n)),
        Value::Int32(n) => Num::Int(i64::from(*n)),
        Value::Int64(n) => Num::Int(*n),
        Value::Float32(f) => Num::Float(f64::from(*f)),
        Value::Float64(f) => Num::Float(*f),
        Value::Decimal(d) => Num::Big(d.unscaled.clone(), d.scale),
        _ => return None,
    })
}

impl Num {
    /// `longValue()`: floats truncate and saturate, decimals truncate and wrap.
    fn long(&self) -> i64 {
        match self {
            Num::Int(n) => *n,
            Num::Float(f) => *f as i64,
            Num::Big(u, scale) => {
                let whole = if *scale > 0 {
                    u / BigInt::from(10).pow(scale.unsigned_abs())
                } else {
                    u * BigInt::from(10).pow(scale.unsigned_abs())
                };
                let (_, digits) = whole.to_u64_digits();
                let low = digits.first().copied().unwrap_or(0) as i64;
                if whole.sign() == num_bigint::Sign::Minus {
                    low.wrapping_neg()
                } else {
                    low
                }
            }
        }
    }

    fn double(&self) -> f64 {
        match self {
            Num::Int(n) => *n as f64,
            Num::Float(f) => *f,
            Num::Big(u, scale) => format!("{u}e{}", -scale).parse().unwrap_or(f64::NAN),
        }
    }
}

fn out_of_range(v: &str) -> TransformError {
    TransformError(format!(
        "Value ({v}) was out of range for requested data type"
    ))
}

/// `Float.parseFloat`/`Double.parseDouble`: surrounding whitespace and a type suffix allowed.
fn parse_java_float(s: &str) -> Option<f64> {
    let t = s.trim();
    let t = t.strip_suffix(['f', 'F', 'd', 'D']).unwrap_or(t);
    match t {
        "NaN" => Some(f64::NAN),
        "Infinity" | "+Infinity" => Some(f64::INFINITY),
        "-Infinity" => Some(f64::NEG_INFINITY),
        _ if t
            .chars()
            .any(|c| c.is_ascii_alphabetic() && !"eE".contains(c)) =>
        {
            None
        }
        _ => t.parse().ok(),
    }
}

/// Java's `Byte.parseByte` and friends: an optional sign and decimal digits, nothing else.
fn parse_java_int(s: &str) -> Option<i64> {
    let digits = s.strip_prefix(['+', '-']).unwrap_or(s);
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse().ok()
}

fn cast_value(
    schema: Option<&Schema>,
    value: Option<Value>,
    to: Type,
) -> TransformResult<Option<Value>> {
    let Some(value) = value else {
        return Ok(None);
    };
    let from = match schema {
        Some(s) => Some(s.type_()),
        None => inferred(&value),
    };
    let Some(from) = from else {
        return Err(TransformError(format!(
            "Cast transformation was passed a value of type class {} which is not supported by Connect's data API",
            java_class(Some(&value))
        )));
    };
    if !INPUTS.contains(&from) {
        return Err(TransformError(format!(
            "Cast transformation does not support casting from {}; supported types are {}",
            java_name(from),
            type_list(&INPUTS)
        )));
    }
    if to == Type::String {
        return Ok(Some(Value::String(java_string(&value))));
    }
    // Logical dates and times are cast as their encoded numbers.
    let value = match value {
        Value::Date(d) => Value::Int32(d),
        Value::Time(t) => Value::Int32(t),
        Value::Timestamp(t) => Value::Int64(t),
        v => v,
    };
    let unexpected = || {
        TransformError(format!(
            "Unexpected type in Cast transformation: class {}",
            java_class(Some(&value))
        ))
    };
    let int = |v: &Value| -> TransformResult<i64> {
        match v {
            Value::Boolean(b) => Ok(i64::from(*b)),
            Value::String(s) => parse_java_int(s).ok_or_else(|| out_of_range(s)),
            v => number(v).map(|n| n.long()).ok_or_else(unexpected),
        }
    };
    let float = |v: &Value| -> TransformResult<f64> {
        match v {
            Value::Boolean(b) => Ok(if *b { 1.0 } else { 0.0 }),
            Value::String(s) => parse_java_float(s).ok_or_else(|| out_of_range(s)),
            v => number(v).map(|n| n.double()).ok_or_else(unexpected),
        }
    };
    // Narrowing as Java's primitive conversions: floats to int first, then wrap.
    let narrowed = |v: &Value| -> TransformResult<i64> {
        match number(v) {
            Some(Num::Float(f)) => Ok(f as i32 as i64),
            _ => int(v),
        }
    };
    let parsed_in_range = |v: &Value, min: i64, max: i64| -> TransformResult<i64> {
        match v {
            Value::String(s) => {
                let n = int(v)?;
                if n < min || n > max {
                    Err(out_of_range(s))
                } else {
                    Ok(n)
                }
            }
            _ => narrowed(v),
        }
    };
    Ok(Some(match to {
        Type::Int8 => {
            Value::Int8(parsed_in_range(&value, i64::from(i8::MIN), i64::from(i8::MAX))? as i8)
        }
        Type::Int16 => {
            Value::Int16(parsed_in_range(&value, i64::from(i16::MIN), i64::from(i16::MAX))? as i16)
        }
        Type::Int32 => {
            Value::Int32(parsed_in_range(&value, i64::from(i32::MIN), i64::from(i32::MAX))? as i32)
        }
        Type::Int64 => Value::Int64(int(&value)?),
        Type::Float32 => Value::Float32(float(&value)? as f32),
        Type::Float64 => Value::Float64(float(&value)?),
        Type::Boolean => Value::Boolean(match &value {
            Value::Boolean(b) => *b,
            Value::String(s) => s.eq_ignore_ascii_case("true"),
            v => number(v).map(|n| n.long() != 0).ok_or_else(unexpected)?,
        }),
        other => {
            return Err(TransformError(format!(
                "{} is not supported in the Cast transform.",
                java_name(other)
            )));
        }
    }))
}

/// `value.toString()` as Java prints each Connect value.
pub fn java_string(v: &Value) -> String {
    match v {
        Value::Int8(n) => n.to_string(),
        Value::Int16(n) => n.to_string(),
        Value::Int32(n) => n.to_string(),
        Value::Int64(n) => n.to_string(),
        Value::Float32(f) => java_double(f64::from(*f), Some(*f)),
        Value::Float64(f) => java_double(*f, None),
        Value::Boolean(b) => b.to_string(),
        Value::String(s) => s.clone(),
        Value::Bytes(b) => {
            use base64::Engine;
            base64::engine::general_purpose::STANDARD.encode(b)
        }
        Value::Decimal(d) => big_decimal_string(d),
        Value::Date(days) => date_string(i64::from(*days) * 86_400_000),
        Value::Time(ms) => date_string(i64::from(*ms)),
        Value::Timestamp(ms) => date_string(*ms),
        other => format!("{other:?}"),
    }
}

/// `Values.dateFormatFor(date).format(date)`: a time of day, a date, or a timestamp, by value.
fn date_string(ms: i64) -> String {
    let pattern = if (0..86_400_000).contains(&ms) {
        "HH:mm:ss.SSS'Z'"
    } else if ms % 86_400_000 == 0 {
        "yyyy-MM-dd"
    } else {
        "yyyy-MM-dd'T'HH:mm:ss.SSS'Z'"
    };
    DatePattern::parse(pattern)
        .map(|p| p.format(ms))
        .unwrap_or_default()
}

/// `Double.toString` (and `Float.toString` when `single` holds the float), unquoted words for
/// the non-finite ones.
pub fn java_double(f: f64, single: Option<f32>) -> String {
    if f.is_nan() {
        return "NaN".into();
    }
    if f.is_infinite() {
        return if f > 0.0 {
            "Infinity".into()
        } else {
            "-Infinity".into()
        };
    }
    match single {
        Some(s) => crate::converter::json_text::java_float(s),
        None => crate::converter::json_text::java_double(f),
    }
}

/// `BigDecimal.toString`: plain unless the scale is negative or the adjusted exponent below -6.
fn big_decimal_string(d: &Decimal) -> String {
    let negative = d.unscaled.sign() == num_bigint::Sign::Minus;
    let digits = d.unscaled.magnitude().to_string();
    let sign = if negative { "-" } else { "" };
    let adjusted = digits.len() as i64 - 1 - i64::from(d.scale);
    if d.scale >= 0 && adjusted >= -6 {
        let scale = d.scale as usize;
        if scale == 0 {
            return format!("{sign}{digits}");
        }
        if digits.len() > scale {
            let (a, b) = digits.split_at(digits.len() - scale);
            format!("{sign}{a}.{b}")
        } else {
            format!("{sign}0.{}{digits}", "0".repeat(scale - digits.len()))
        }
    } else {
        let (first, rest) = digits.split_at(1);
        let frac = if rest.is_empty() {
            String::new()
        } else {
            format!(".{rest}")
        };
        let e = if adjusted >= 0 {
            format!("+{adjusted}")
        } else {
            adjusted.to_string()
        };
        format!("{sign}{first}{frac}E{e}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn doubles_print_as_java_prints_them() {
        for (f, s) in [
            (1.0, "1.0"),
            (2.5, "2.5"),
            (1e7, "1.0E7"),
            (1.5e-4, "1.5E-4"),
            (123456.789, "123456.789"),
            (0.001, "0.001"),
            (-3.0, "-3.0"),
        ] {
            assert_eq!(java_double(f, None), s);
        }
        assert_eq!(java_double(f64::from(0.1f32), Some(0.1)), "0.1");
    }

    #[test]
    fn decimals_print_as_big_decimal() {
        let d = |u: i64, scale: i32| {
            big_decimal_string(&Decimal {
                unscaled: BigInt::from(u),
                scale,
            })
        };
        assert_eq!(d(1234, 2), "12.34");
        assert_eq!(d(5, 3), "0.005");
        assert_eq!(d(-5, 0), "-5");
        assert_eq!(d(12, -2), "1.2E+3");
        assert_eq!(d(1, 10), "1E-10");
    }
}
