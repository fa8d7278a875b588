//! How the PostgreSQL source reads a column: the Connect schema a PostgreSQL type becomes, the
//! select expression that brings its values over the wire in a form that decodes without loss,
//! and the decoding itself. All pure, so every type is tested without a database.
//!
//! Integers, floats, booleans, strings and `bytea` travel in PostgreSQL's binary format as they
//! are. Temporal types travel as integers computed by the server (days since the epoch,
//! microseconds since midnight or since the epoch), which no session setting can change.
//! `numeric` travels as text (it has no fixed binary width and may be `NaN`), arrays as
//! `text[]` decoded element by element, and every other type (uuid, json, jsonb, enums,
//! timetz, interval, …) as its text form.

use num_bigint::BigInt;
use tributary_connect_api::{Decimal, Schema, SchemaBuilder, Value, logical};

/// What a PostgreSQL type is read as.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Kind {
    Int16,
    Int32,
    Int64,
    Float32,
    Float64,
    Bool,
    Text,
    Bytes,
    /// `numeric(p,s)`, or unconstrained (`None`).
    Numeric(Option<(u32, i32)>),
    Date,
    Time,
    Timestamp,
    TimestampTz,
    /// Anything else, as the server writes it as text.
    AsText,
    /// One-dimensional arrays of an element kind.
    Array(Box<Kind>),
}

/// `numeric.mapping`, as the JDBC source defines it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum NumericMapping {
    /// `numeric(p,s)` as a Connect Decimal of scale s.
    #[default]
    None,
    /// Integer types for `numeric(p,0)` with p ≤ 18, Decimal otherwise.
    PrecisionOnly,
    /// As precision_only, and FLOAT64 for a scale above 0 with p ≤ 18 and unconstrained numeric.
    BestFit,
}

/// How a column's values become Connect values, once its mapping is chosen.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Read {
    Int16,
    Int32,
    Int64,
    Float32,
    Float64,
    Bool,
    Text,
    Bytes,
    /// numeric text to a Decimal of this scale.
    Decimal(i32),
    /// numeric text to an integer type: 8, 16, 32 or 64 bits.
    NumericInt(u8),
    /// numeric text to FLOAT64 (NaN kept).
    NumericFloat,
    /// numeric text kept as text (unconstrained numeric without best_fit).
    NumericText,
    /// Days since the epoch (server computed).
    Date,
    /// Microseconds since midnight (server computed), to Connect Time's milliseconds.
    Time,
    /// Microseconds since the epoch (server computed), to Connect Timestamp's milliseconds.
    Timestamp,
    AsText,
    Array(Box<Read>),
}

/// The kind of a PostgreSQL type from the catalog: its name, `typtype` (`e` for enums), and
/// `atttypmod` (numeric precision and scale); `element` is the element type's name for arrays.
pub fn kind(type_name: &str, typtype: &str, typmod: i32, element: Option<&str>) -> Kind {
    if let Some(e) = element {
        return Kind::Array(Box::new(kind(e, "b", typmod, None)));
    }
    if typtype == "e" {
        return Kind::AsText;
    }
    match type_name {
        "int2" => Kind::Int16,
        "int4" => Kind::Int32,
        "int8" => Kind::Int64,
        "float4" => Kind::Float32,
        "float8" => Kind::Float64,
        "bool" => Kind::Bool,
        "text" | "varchar" | "bpchar" | "name" => Kind::Text,
        "bytea" => Kind::Bytes,
        "numeric" => Kind::Numeric((typmod >= 4).then(|| {
            let m = typmod - 4;
            let precision = ((m >> 16) & 0xffff) as u32;
            // The scale is an 11-bit signed number since PostgreSQL 15.
            let raw = m & 0x7ff;
            let scale = if raw > 1023 { raw - 2048 } else { raw };
            (precision, scale)
        })),
        "date" => Kind::Date,
        "time" => Kind::Time,
        "timestamp" => Kind::Timestamp,
        "timestamptz" => Kind::TimestampTz,
        _ => Kind::AsText,
    }
}

/// How a kind is read under a numeric mapping, and its Connect schema (optional when the column
/// may be NULL).
pub fn read(kind: &Kind, mapping: NumericMapping) -> Read {
    match kind {
        Kind::Int16 => Read::Int16,
        Kind::Int32 => Read::Int32,
        Kind::Int64 => Read::Int64,
        Kind::Float32 => Read::Float32,
        Kind::Float64 => Read::Float64,
        Kind::Bool => Read::Bool,
        Kind::Text => Read::Text,
        Kind::Bytes => Read::Bytes,
        Kind::Date => Read::Date,
        Kind::Time => Read::Time,
        Kind::Timestamp | Kind::TimestampTz => Read::Timestamp,
        Kind::AsText => Read::AsText,
        Kind::Array(e) => Read::Array(Box::new(read(e, mapping))),
        Kind::Numeric(None) => match mapping {
            NumericMapping::BestFit => Read::NumericFloat,
            _ => Read::NumericText,
        },
        Kind::Numeric(Some((p, s))) => {
            let (p, s) = (*p, *s);
            let int = mapping != NumericMapping::None && s <= 0 && p <= 18;
            if int {
                Read::NumericInt(match p as i64 - i64::from(s) {
                    ..=2 => 8,
                    3..=4 => 16,
                    5..=9 => 32,
                    _ => 64,
                })
            } else if mapping == NumericMapping::BestFit && p <= 18 {
                Read::NumericFloat
            } else {
                Read::Decimal(s)
            }
        }
    }
}

pub fn schema(read: &Read, optional: bool) -> Result<Schema, String> {
    let b = match read {
        Read::Int16 => SchemaBuilder::new(tributary_connect_api::Type::Int16),
        Read::Int32 => SchemaBuilder::new(tributary_connect_api::Type::Int32),
        Read::Int64 => SchemaBuilder::new(tributary_connect_api::Type::Int64),
        Read::NumericInt(bits) => SchemaBuilder::new(match bits {
            8 => tributary_connect_api::Type::Int8,
            16 => tributary_connect_api::Type::Int16,
            32 => tributary_connect_api::Type::Int32,
            _ => tributary_connect_api::Type::Int64,
        }),
        Read::Float32 => SchemaBuilder::new(tributary_connect_api::Type::Float32),
        Read::Float64 | Read::NumericFloat => {
            SchemaBuilder::new(tributary_connect_api::Type::Float64)
        }
        Read::Bool => SchemaBuilder::new(tributary_connect_api::Type::Boolean),
        Read::Text | Read::AsText | Read::NumericText => {
            SchemaBuilder::new(tributary_connect_api::Type::String)
        }
        Read::Bytes => SchemaBuilder::new(tributary_connect_api::Type::Bytes),
        Read::Decimal(s) => logical::decimal_schema(*s),
        Read::Date => logical::date_schema(),
        Read::Time => logical::time_schema(),
        Read::Timestamp => logical::timestamp_schema(),
        // Elements may be NULL in any PostgreSQL array.
        Read::Array(e) => SchemaBuilder::array(schema(e, true)?),
    };
    let b = if optional { b.optional() } else { b };
    b.build().map_err(|e| e.to_string())
}

/// The select expression for a quoted column under its kind: what the decoder expects.
pub fn select_expr(column: &str, kind: &Kind) -> String {
    match kind {
        Kind::Int16
        | Kind::Int32
        | Kind::Int64
        | Kind::Float32
        | Kind::Float64
        | Kind::Bool
        | Kind::Text
        | Kind::Bytes => column.to_string(),
        Kind::Date => format!("({column} - DATE '1970-01-01')"),
        Kind::Time => format!("(EXTRACT(EPOCH FROM {column}) * 1000000)::int8"),
        Kind::Timestamp | Kind::TimestampTz => epoch_micros(column),
        Kind::Array(_) => format!("{column}::text[]"),
        Kind::Numeric(_) | Kind::AsText => format!("{column}::text"),
    }
}

/// Microseconds since the epoch of a timestamp (read in the session's time zone, `db.timezone`)
/// or timestamptz expression.
pub fn epoch_micros(expr: &str) -> String {
    format!("(EXTRACT(EPOCH FROM ({expr})::timestamptz) * 1000000)::int8")
}

/// A column value off the wire, before it is decoded: what `tokio_postgres` hands over for the
/// select expression.
#[derive(Debug, Clone, PartialEq)]
pub enum Wire {
    Int16(i16),
    Int32(i32),
    Int64(i64),
    Float32(f32),
    Float64(f64),
    Bool(bool),
    Text(String),
    Bytes(Vec<u8>),
    Array(Vec<Option<String>>),
}

/// Why a value cannot be read: said with the column by the caller.
pub type DecodeError = String;

fn floor_ms(micros: i64) -> i64 {
    micros.div_euclid(1000)
}

/// The Connect value of one wire value.
pub fn decode(read: &Read, wire: Wire) -> Result<Value, DecodeError> {
    Ok(match (read, wire) {
        (Read::Int16, Wire::Int16(v)) => Value::Int16(v),
        (Read::Int32, Wire::Int32(v)) => Value::Int32(v),
        (Read::Int64, Wire::Int64(v)) => Value::Int64(v),
        (Read::Float32, Wire::Float32(v)) => Value::Float32(v),
        (Read::Float64, Wire::Float64(v)) => Value::Float64(v),
        (Read::Bool, Wire::Bool(v)) => Value::Boolean(v),
        (Read::Text | Read::AsText | Read::NumericText, Wire::Text(v)) => Value::String(v),
        (Read::Bytes, Wire::Bytes(v)) => Value::Bytes(v),
        (Read::Date, Wire::Int32(days)) => Value::Date(days),
        (Read::Time, Wire::Int64(us)) => Value::Time(
            i32::try_from(floor_ms(us)).map_err(|_| format!("time {us} µs is out of range"))?,
        ),
        (Read::Timestamp, Wire::Int64(us)) => Value::Timestamp(floor_ms(us)),
        (Read::Decimal(_) | Read::NumericInt(_) | Read::NumericFloat, Wire::Text(t)) => {
            decode_text(read, &t)?
        }
        (Read::Array(e), Wire::Array(items)) => Value::Array(
            items
                .into_iter()
                .map(|i| i.map(|t| decode_text(e, &t)).transpose())
                .collect::<Result<_, _>>()?,
        ),
        (r, w) => return Err(format!("a {w:?} cannot be read as {r:?}")),
    })
}

/// The Connect value of a value in PostgreSQL's text form (array elements, numeric), with the
/// session's DateStyle ISO and TimeZone UTC that the source's connections set.
pub fn decode_text(read: &Read, t: &str) -> Result<Value, DecodeError> {
    let bad = |what: &str| format!("{t:?} is not {what}");
    Ok(match read {
        Read::Int16 => Value::Int16(t.parse().map_err(|_| bad("a smallint"))?),
        Read::Int32 => Value::Int32(t.parse().map_err(|_| bad("an integer"))?),
        Read::Int64 => Value::Int64(t.parse().map_err(|_| bad("a bigint"))?),
        Read::Float32 => Value::Float32(parse_float(t).ok_or_else(|| bad("a real"))? as f32),
        Read::Float64 | Read::NumericFloat => {
            Value::Float64(parse_float(t).ok_or_else(|| bad("a number"))?)
        }
        Read::Bool => Value::Boolean(match t {
            "t" | "true" => true,
            "f" | "false" => false,
            _ => return Err(bad("a boolean")),
        }),
        Read::Text | Read::AsText | Read::NumericText => Value::String(t.to_string()),
        Read::Bytes => Value::Bytes(parse_bytea(t).ok_or_else(|| bad("bytea hex"))?),
        Read::Decimal(scale) => Value::Decimal(parse_decimal(t, *scale)?),
        Read::NumericInt(bits) => {
            let d = parse_decimal(t, 0)?;
            let n = i64::try_from(&d.unscaled).map_err(|_| bad("a 64-bit integer"))?;
            let out = |ok: bool, v: Value| {
                if ok {
                    Ok(v)
                } else {
                    Err(format!("{t} does not fit in {bits} bits"))
                }
            };
            match bits {
                8 => out(i8::try_from(n).is_ok(), Value::Int8(n as i8))?,
                16 => out(i16::try_from(n).is_ok(), Value::Int16(n as i16))?,
                32 => out(i32::try_from(n).is_ok(), Value::Int32(n as i32))?,
                _ => Value::Int64(n),
            }
        }
        Read::Date => Value::Date(
            i32::try_from(parse_date(t).ok_or_else(|| bad("a date"))?)
                .map_err(|_| bad("a date Connect can hold"))?,
        ),
        Read::Time => Value::Time(
            i32::try_from(floor_ms(parse_time(t).ok_or_else(|| bad("a time"))?))
                .map_err(|_| bad("a time"))?,
        ),
        Read::Timestamp => Value::Timestamp(floor_ms(
            parse_timestamp(t).ok_or_else(|| bad("a timestamp"))?,
        )),
        Read::Array(_) => return Err("arrays of arrays are not supported".into()),
    })
}

fn parse_float(t: &str) -> Option<f64> {
    match t {
        "NaN" => Some(f64::NAN),
        "Infinity" => Some(f64::INFINITY),
        "-Infinity" => Some(f64::NEG_INFINITY),
        _ => t.parse().ok(),
    }
}

fn parse_bytea(t: &str) -> Option<Vec<u8>> {
    let hex = t.strip_prefix("\\x")?;
    if hex.len() % 2 != 0 {
        return None;
    }
    (0..hex.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(hex.get(i..i + 2)?, 16).ok())
        .collect()
}

/// A numeric's text as a Decimal of `scale` (PostgreSQL writes a numeric(p,s) with exactly s
/// fraction digits; fewer are padded, more refused rather than rounded).
pub fn parse_decimal(t: &str, scale: i32) -> Result<Decimal, DecodeError> {
    if t == "NaN" || t.ends_with("Infinity") {
        return Err(format!(
            "{t} cannot be a Connect Decimal; set numeric.mapping=best_fit to read numeric columns of precision up to 18 as FLOAT64, which keeps NaN and Infinity"
        ));
    }
    let (negative, digits) = match t.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, t),
    };
    let (int, frac) = digits.split_once('.').unwrap_or((digits, ""));
    let bad = || format!("{t:?} is not a number");
    if int.is_empty() || !int.bytes().all(|b| b.is_ascii_digit()) {
        return Err(bad());
    }
    if !frac.bytes().all(|b| b.is_ascii_digit()) {
        return Err(bad());
    }
    let mut unscaled: String = int.to_string();
    if scale >= 0 {
        let s = scale as usize;
        if frac.len() > s && frac[s..].bytes().any(|b| b != b'0') {
            return Err(format!("{t} has more than {scale} decimal places"));
        }
        let mut f = frac.get(..s.min(frac.len())).unwrap_or("").to_string();
        while f.len() < s {
            f.push('0');
        }
        unscaled.push_str(&f);
    } else {
        if frac.bytes().any(|b| b != b'0') {
            return Err(format!("{t} has decimal places at scale {scale}"));
        }
        let cut = scale.unsigned_abs() as usize;
        let keep = unscaled.len().saturating_sub(cut);
        if unscaled[keep..].bytes().any(|b| b != b'0') {
            return Err(format!("{t} is not a multiple of 10^{}", -scale));
        }
        unscaled.truncate(keep.max(1));
        if keep == 0 {
            unscaled = "0".into();
        }
    }
    let mut n: BigInt = unscaled.parse().map_err(|_| bad())?;
    if negative {
        n = -n;
    }
    Ok(Decimal { unscaled: n, scale })
}

/// `YYYY-MM-DD` (with ` BC` for years before 1) as days since 1970-01-01.
pub fn parse_date(t: &str) -> Option<i64> {
    let (t, bc) = match t.strip_suffix(" BC") {
        Some(rest) => (rest, true),
        None => (t, false),
    };
    let mut parts = t.splitn(3, '-');
    let y: i64 = parts.next()?.parse().ok()?;
    let m: i64 = parts.next()?.parse().ok()?;
    let d: i64 = parts.next()?.parse().ok()?;
    if !(1..=12).contains(&m) || !(1..=31).contains(&d) {
        return None;
    }
    let y = if bc { 1 - y } else { y };
    Some(crate::transforms::days_from_civil(y, m, d))
}

/// `HH:MM:SS[.ffffff]` as microseconds since midnight (`24:00:00` included, as PostgreSQL
/// allows it).
pub fn parse_time(t: &str) -> Option<i64> {
    let (hms, frac) = t.split_once('.').unwrap_or((t, ""));
    let mut parts = hms.splitn(3, ':');
    let h: i64 = parts.next()?.parse().ok()?;
    let m: i64 = parts.next()?.parse().ok()?;
    let s: i64 = parts.next()?.parse().ok()?;
    if frac.len() > 6 || !frac.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let micros: i64 = if frac.is_empty() {
        0
    } else {
        format!("{frac:0<6}").parse().ok()?
    };
    Some(((h * 60 + m) * 60 + s) * 1_000_000 + micros)
}

/// `YYYY-MM-DD HH:MM:SS[.ffffff][+HH[:MM]]` as microseconds since the epoch (UTC when no offset
/// is given; the source's sessions run in `db.timezone`, and `timestamp` columns are read
/// server-side, so this serves array elements).
pub fn parse_timestamp(t: &str) -> Option<i64> {
    let (t, bc) = match t.strip_suffix(" BC") {
        Some(rest) => (rest, true),
        None => (t, false),
    };
    let (date, rest) = t.split_once(' ').or_else(|| t.split_once('T'))?;
    let days = parse_date(&if bc {
        format!("{date} BC")
    } else {
        date.to_string()
    })?;
    let split = rest.rfind(['+', '-']);
    let (time, offset) = match split {
        Some(i) => (&rest[..i], Some(&rest[i..])),
        None => (rest, None),
    };
    let mut micros = days * 86_400_000_000 + parse_time(time)?;
    if let Some(o) = offset {
        let sign = if o.starts_with('-') { -1 } else { 1 };
        let mut parts = o[1..].split(':');
        let h: i64 = parts.next()?.parse().ok()?;
        let m: i64 = parts.next().map_or(Some(0), |m| m.parse().ok())?;
        let s: i64 = parts.next().map_or(Some(0), |s| s.parse().ok())?;
        micros -= sign * ((h * 60 + m) * 60 + s) * 1_000_000;
    }
    Some(micros)
}

#[cfg(test)]
mod tests {
    use super::*;
    use tributary_connect_api::Type;

    fn dec(u: i64, scale: i32) -> Value {
        Value::Decimal(Decimal {
            unscaled: BigInt::from(u),
            scale,
        })
    }

    #[test]
    fn catalog_types_map_to_the_connect_schemas_users_expect() {
        // numeric(10,2): atttypmod = (10 << 16 | 2) + 4.
        let n102 = kind("numeric", "b", (10 << 16 | 2) + 4, None);
        assert_eq!(n102, Kind::Numeric(Some((10, 2))));
        let n50 = kind("numeric", "b", (5 << 16) + 4, None);
        let cases: Vec<(Kind, NumericMapping, Type, Option<&str>)> = vec![
            (
                kind("int2", "b", -1, None),
                NumericMapping::None,
                Type::Int16,
                None,
            ),
            (
                kind("int4", "b", -1, None),
                NumericMapping::None,
                Type::Int32,
                None,
            ),
            (
                kind("int8", "b", -1, None),
                NumericMapping::None,
                Type::Int64,
                None,
            ),
            (
                kind("float4", "b", -1, None),
                NumericMapping::None,
                Type::Float32,
                None,
            ),
            (
                kind("float8", "b", -1, None),
                NumericMapping::None,
                Type::Float64,
                None,
            ),
            (
                kind("bool", "b", -1, None),
                NumericMapping::None,
                Type::Boolean,
                None,
            ),
            (
                kind("varchar", "b", 14, None),
                NumericMapping::None,
                Type::String,
                None,
            ),
            (
                kind("bytea", "b", -1, None),
                NumericMapping::None,
                Type::Bytes,
                None,
            ),
            (
                n102.clone(),
                NumericMapping::None,
                Type::Bytes,
                Some(logical::DECIMAL),
            ),
            (n102.clone(), NumericMapping::BestFit, Type::Float64, None),
            (
                n102.clone(),
                NumericMapping::PrecisionOnly,
                Type::Bytes,
                Some(logical::DECIMAL),
            ),
            (
                n50.clone(),
                NumericMapping::PrecisionOnly,
                Type::Int32,
                None,
            ),
            (
                n50,
                NumericMapping::None,
                Type::Bytes,
                Some(logical::DECIMAL),
            ),
            (
                kind("numeric", "b", -1, None),
                NumericMapping::None,
                Type::String,
                None,
            ),
            (
                kind("numeric", "b", -1, None),
                NumericMapping::BestFit,
                Type::Float64,
                None,
            ),
            (
                kind("date", "b", -1, None),
                NumericMapping::None,
                Type::Int32,
                Some(logical::DATE),
            ),
            (
                kind("time", "b", -1, None),
                NumericMapping::None,
                Type::Int32,
                Some(logical::TIME),
            ),
            (
                kind("timestamp", "b", -1, None),
                NumericMapping::None,
                Type::Int64,
                Some(logical::TIMESTAMP),
            ),
            (
                kind("timestamptz", "b", -1, None),
                NumericMapping::None,
                Type::Int64,
                Some(logical::TIMESTAMP),
            ),
            (
                kind("timetz", "b", -1, None),
                NumericMapping::None,
                Type::String,
                None,
            ),
            (
                kind("uuid", "b", -1, None),
                NumericMapping::None,
                Type::String,
                None,
            ),
            (
                kind("jsonb", "b", -1, None),
                NumericMapping::None,
                Type::String,
                None,
            ),
            (
                kind("mood", "e", -1, None),
                NumericMapping::None,
                Type::String,
                None,
            ),
            (
                kind("_int4", "b", -1, Some("int4")),
                NumericMapping::None,
                Type::Array,
                None,
            ),
        ];
        for (k, m, t, name) in cases {
            let s = schema(&read(&k, m), true).unwrap();
            assert_eq!((s.type_(), s.name()), (t, name), "{k:?} under {m:?}");
            assert!(s.is_optional());
        }
        let s = schema(&read(&n102, NumericMapping::None), false).unwrap();
        assert_eq!(s.parameter(logical::SCALE), Some("2"));
        assert!(!s.is_optional());
    }

    #[test]
    fn wire_values_decode_without_loss() {
        let ok = |r: Read, w: Wire| decode(&r, w).unwrap();
        assert_eq!(ok(Read::Date, Wire::Int32(-1)), Value::Date(-1));
        // 1969-12-31 23:59:59.9995 floors to …999 ms, as Java's Timestamp does.
        assert_eq!(ok(Read::Timestamp, Wire::Int64(-500)), Value::Timestamp(-1));
        assert_eq!(
            ok(Read::Time, Wire::Int64(86_399_999_999)),
            Value::Time(86_399_999)
        );
        assert_eq!(
            ok(Read::Decimal(2), Wire::Text("-123.40".into())),
            dec(-12340, 2)
        );
        assert_eq!(ok(Read::Decimal(3), Wire::Text("0.5".into())), dec(500, 3));
        assert_eq!(
            ok(Read::Decimal(-2), Wire::Text("1200".into())),
            dec(12, -2)
        );
        assert!(matches!(
            ok(Read::NumericFloat, Wire::Text("NaN".into())),
            Value::Float64(f) if f.is_nan()
        ));
        let nan = decode(&Read::Decimal(2), Wire::Text("NaN".into())).unwrap_err();
        assert!(nan.contains("numeric.mapping=best_fit"), "{nan}");
        assert!(decode(&Read::Decimal(1), Wire::Text("1.25".into())).is_err());
        assert_eq!(
            ok(Read::NumericInt(16), Wire::Text("-300".into())),
            Value::Int16(-300)
        );
        assert!(decode(&Read::NumericInt(8), Wire::Text("300".into())).is_err());
        assert_eq!(
            ok(
                Read::Array(Box::new(Read::Int32)),
                Wire::Array(vec![Some("1".into()), None, Some("-3".into())])
            ),
            Value::Array(vec![Some(Value::Int32(1)), None, Some(Value::Int32(-3))])
        );
        assert_eq!(
            ok(
                Read::Array(Box::new(Read::Timestamp)),
                Wire::Array(vec![Some("2024-02-29 23:59:59.999123+00".into())])
            ),
            Value::Array(vec![Some(Value::Timestamp(1_709_251_199_999))])
        );
        assert_eq!(
            ok(
                Read::Array(Box::new(Read::Bytes)),
                Wire::Array(vec![Some("\\x00ff".into())])
            ),
            Value::Array(vec![Some(Value::Bytes(vec![0, 255]))])
        );
        assert!(decode(&Read::Int32, Wire::Text("1".into())).is_err());
    }

    #[test]
    fn text_forms_parse_as_postgres_writes_them() {
        assert_eq!(parse_date("1970-01-01"), Some(0));
        assert_eq!(parse_date("2024-02-29"), Some(19_782));
        assert_eq!(parse_date("0001-01-01 BC"), Some(-719_528));
        assert_eq!(parse_time("00:00:00"), Some(0));
        assert_eq!(parse_time("13:14:15.5"), Some(47_655_500_000));
        assert_eq!(parse_time("24:00:00"), Some(86_400_000_000));
        assert_eq!(parse_timestamp("1970-01-01 00:00:00"), Some(0));
        assert_eq!(parse_timestamp("1970-01-01 01:00:00+01"), Some(0));
        assert_eq!(
            parse_timestamp("1970-01-01 00:00:00-05:30"),
            Some(19_800_000_000)
        );
        assert_eq!(parse_timestamp("1969-12-31 23:59:59.999999"), Some(-1));
        assert_eq!(parse_bytea("\\x"), Some(vec![]));
        assert_eq!(parse_bytea("\\x0"), None);
        assert_eq!(decode_text(&Read::Bool, "t").unwrap(), Value::Boolean(true));
        assert!(decode_text(&Read::Float64, "-Infinity").is_ok());
    }

    #[test]
    fn select_expressions_bring_each_kind_in_the_form_decode_expects() {
        assert_eq!(
            select_expr("\"d\"", &Kind::Date),
            "(\"d\" - DATE '1970-01-01')"
        );
        assert_eq!(
            select_expr("\"t\"", &Kind::Timestamp),
            "(EXTRACT(EPOCH FROM (\"t\")::timestamptz) * 1000000)::int8"
        );
        assert_eq!(
            select_expr("\"a\"", &Kind::Array(Box::new(Kind::Int32))),
            "\"a\"::text[]"
        );
        assert_eq!(select_expr("\"n\"", &Kind::Numeric(None)), "\"n\"::text");
        assert_eq!(select_expr("\"i\"", &Kind::Int64), "\"i\"");
    }
}
