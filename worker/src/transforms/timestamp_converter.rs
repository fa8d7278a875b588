//! TimestampConverter: a timestamp field (or the whole key or value) between formatted strings,
//! Unix epoch numbers (`unix.precision`), and Connect's Date, Time and Timestamp, as Java's.

use tributary_connect_api::config_def::one_of;
use tributary_connect_api::{
    ConfigDef, ConfigKey, ConfigType as T, Importance as I, Schema, SchemaBuilder, Type, Value,
    logical,
};

use super::routers::DatePattern;
use super::util::{self, build, get, java_class, map_get, map_put, put, require_map};
use super::{
    Record, Settings, Side, TransformError, TransformPlugin, TransformResult, Transformation,
};

const PURPOSE: &str = "converting timestamp formats";
const DAY: i64 = 86_400_000;

fn def() -> ConfigDef {
    ConfigDef::new()
        .define(ConfigKey::new("field", T::String, I::High, "The field holding the timestamp; empty converts the whole key or value.").default_value(""))
        .define(
            ConfigKey::new("target.type", T::String, I::High, "string, unix, Date, Time or Timestamp.")
                .validator(one_of(&["string", "unix", "Date", "Time", "Timestamp"])),
        )
        .define(ConfigKey::new("format", T::String, I::Medium, "A java.text.SimpleDateFormat pattern (UTC) for string timestamps, read and written.").default_value(""))
        .define(
            ConfigKey::new("unix.precision", T::String, I::Low, "The unit of Unix timestamps: seconds, milliseconds, microseconds or nanoseconds.")
                .default_value("milliseconds")
                .validator(one_of(&["seconds", "milliseconds", "microseconds", "nanoseconds"])),
        )
        .define(super::util::replace_null_key())
}

pub const TIMESTAMP_CONVERTER_KEY: TransformPlugin = TransformPlugin {
    class: "org.apache.kafka.connect.transforms.TimestampConverter$Key",
    doc: "Convert a timestamp between strings, Unix epoch numbers and Connect's Date, Time and Timestamp.",
    def,
    create: |s| Ok(Box::new(TimestampConverter::new(Side::Key, s)?)),
};

pub const TIMESTAMP_CONVERTER_VALUE: TransformPlugin = TransformPlugin {
    class: "org.apache.kafka.connect.transforms.TimestampConverter$Value",
    doc: "Convert a timestamp between strings, Unix epoch numbers and Connect's Date, Time and Timestamp.",
    def,
    create: |s| Ok(Box::new(TimestampConverter::new(Side::Value, s)?)),
};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    String,
    Unix,
    Date,
    Time,
    Timestamp,
}

#[derive(Debug)]
pub struct TimestampConverter {
    side: Side,
    field: String,
    target: Kind,
    format: Option<(String, DatePattern)>,
    /// `unix.precision`.
    precision: &'static str,
    replace_null: bool,
}

impl TimestampConverter {
    fn new(side: Side, s: &Settings) -> Result<Self, String> {
        let target = match util::string(s, "target.type").as_deref() {
            Some("string") => Kind::String,
            Some("unix") => Kind::Unix,
            Some("Date") => Kind::Date,
            Some("Time") => Kind::Time,
            _ => Kind::Timestamp,
        };
        let pattern = util::string(s, "format").unwrap_or_default();
        let format = if pattern.trim().is_empty() {
            None
        } else {
            Some((
                pattern.clone(),
                DatePattern::parse(&pattern).map_err(|e| {
                    format!("TimestampConverter requires a SimpleDateFormat-compatible pattern for string timestamps: {pattern} ({e})")
                })?,
            ))
        };
        if target == Kind::String && format.is_none() {
            return Err("TimestampConverter requires format option to be specified when using string timestamps".into());
        }
        let precision = match util::string(s, "unix.precision").as_deref() {
            Some("seconds") => "seconds",
            Some("microseconds") => "microseconds",
            Some("nanoseconds") => "nanoseconds",
            _ => "milliseconds",
        };
        Ok(Self {
            side,
            field: util::string(s, "field").unwrap_or_default(),
            target,
            format,
            precision,
            replace_null: util::boolean(s, "replace.null.with.default", true),
        })
    }

    fn target_schema(&self, optional: bool) -> TransformResult<Schema> {
        let b = match self.target {
            Kind::String => SchemaBuilder::new(Type::String),
            Kind::Unix => SchemaBuilder::new(Type::Int64),
            Kind::Date => logical::date_schema(),
            Kind::Time => logical::time_schema(),
            Kind::Timestamp => logical::timestamp_schema(),
        };
        build(if optional { b.optional() } else { b })
    }

    /// The instant a value of `kind` stands for, in milliseconds since the epoch.
    fn to_raw(&self, kind: Kind, v: &Value) -> TransformResult<i64> {
        let found = || java_class(Some(v));
        match (kind, v) {
            (Kind::String, Value::String(s)) => {
                let (pattern, p) = self.format.as_ref().ok_or_else(|| {
                    TransformError("TimestampConverter requires format option to be specified when using string timestamps".into())
                })?;
                p.parse_millis(s).ok_or_else(|| {
                    TransformError(format!(
                        "Could not parse timestamp: value ({s}) does not match pattern ({pattern})"
                    ))
                })
            }
            (Kind::String, _) => Err(TransformError(format!(
                "Expected string timestamp to be a String, but found class {}",
                found()
            ))),
            (Kind::Unix, Value::Int64(n)) => Ok(match self.precision {
                "seconds" => n.saturating_mul(1000),
                "microseconds" => n / 1000,
                "nanoseconds" => n / 1_000_000,
                _ => *n,
            }),
            (Kind::Unix, _) => Err(TransformError(format!(
                "Expected Unix timestamp to be a Long, but found class {}",
                found()
            ))),
            (Kind::Date, Value::Date(d)) => Ok(i64::from(*d) * DAY),
            (Kind::Time | Kind::Timestamp | Kind::Date, Value::Time(t)) => Ok(i64::from(*t)),
            (Kind::Date | Kind::Time | Kind::Timestamp, Value::Timestamp(t)) => Ok(*t),
            (Kind::Time | Kind::Timestamp, Value::Date(d)) => Ok(i64::from(*d) * DAY),
            (k, _) => Err(TransformError(format!(
                "Expected {} to be a java.util.Date, but found class {}",
                match k {
                    Kind::Date => "Date",
                    Kind::Time => "Time",
                    _ => "Timestamp",
                },
                found()
            ))),
        }
    }

    fn to_type(&self, ms: i64) -> TransformResult<Value> {
        Ok(match self.target {
            Kind::String => {
                let (_, p) = self
                    .format
                    .as_ref()
                    .ok_or_else(|| TransformError("no format".into()))?;
                Value::String(p.format(ms))
            }
            Kind::Unix => Value::Int64(match self.precision {
                "seconds" => ms / 1000,
                "microseconds" => ms.saturating_mul(1000),
                "nanoseconds" => ms.saturating_mul(1_000_000),
                _ => ms,
            }),
            Kind::Date => Value::Date(
                i32::try_from(ms.div_euclid(DAY))
                    .map_err(|_| TransformError(format!("{ms} is out of the Date range")))?,
            ),
            Kind::Time => Value::Time(ms.rem_euclid(DAY) as i32),
            Kind::Timestamp => Value::Timestamp(ms),
        })
    }

    fn convert(&self, kind: Option<Kind>, v: Option<Value>) -> TransformResult<Option<Value>> {
        let Some(v) = v else {
            return Ok(None);
        };
        let kind = match kind {
            Some(k) => k,
            None => match &v {
                Value::Timestamp(_) | Value::Date(_) | Value::Time(_) => Kind::Timestamp,
                Value::Int64(_) => Kind::Unix,
                Value::String(_) => Kind::String,
                other => {
                    return Err(TransformError(format!(
                        "TimestampConverter does not support class {} objects as timestamps",
                        java_class(Some(other))
                    )));
                }
            },
        };
        let raw = self.to_raw(kind, &v)?;
        self.to_type(raw).map(Some)
    }
}

fn kind_of(schema: &Schema) -> TransformResult<Kind> {
    match (schema.name(), schema.type_()) {
        (Some(logical::TIMESTAMP), _) => Ok(Kind::Timestamp),
        (Some(logical::DATE), _) => Ok(Kind::Date),
        (Some(logical::TIME), _) => Ok(Kind::Time),
        (_, Type::String) => Ok(Kind::String),
        (_, Type::Int64) => Ok(Kind::Unix),
        // As Java's ConnectSchema.toString names it.
        (name, t) => Err(TransformError(format!(
            "Schema Schema{{{}{}}} does not correspond to a known timestamp type format",
            name.map(|n| format!("{n}:")).unwrap_or_default(),
            super::cast::java_name(t)
        ))),
    }
}

impl Transformation for TimestampConverter {
    fn apply(&self, mut r: Record) -> TransformResult<Option<Record>> {
        let (schema, value) = self.side.take(&mut r);
        match schema {
            None => {
                if value.is_none() || self.field.is_empty() {
                    let v = self.convert(None, value)?;
                    self.side.set(&mut r, None, v);
                } else {
                    let mut map = require_map(value, PURPOSE)?;
                    let v = self.convert(None, map_get(&map, &self.field).cloned())?;
                    map_put(&mut map, &self.field, v);
                    self.side.set(&mut r, None, Some(Value::Map(map)));
                }
            }
            Some(schema) if self.field.is_empty() => {
                let v = self.convert(Some(kind_of(&schema)?), value)?;
                self.side
                    .set(&mut r, Some(self.target_schema(schema.is_optional())?), v);
            }
            Some(schema) => {
                let old = match value {
                    None => None,
                    v => Some(util::require_struct(v, PURPOSE)?),
                };
                let mut b = util::struct_basics(&schema);
                for f in schema.fields() {
                    let fs = if f.name == self.field {
                        self.target_schema(f.schema.is_optional())?
                    } else {
                        f.schema.clone()
                    };
                    b = b.field(f.name.clone(), fs);
                }
                if schema.is_optional() {
                    b = b.optional();
                }
                let updated = build(b)?;
                let value = match old {
                    None => None,
                    Some(old) => {
                        let mut new = util::new_struct(&updated)?;
                        for f in old.schema().fields() {
                            let v = get(&old, &f.name, self.replace_null)?;
                            let v = if f.name == self.field {
                                self.convert(Some(kind_of(&f.schema)?), v)?
                            } else {
                                v
                            };
                            put(&mut new, &f.name, v)?;
                        }
                        Some(Value::Struct(new))
                    }
                };
                self.side.set(&mut r, Some(updated), value);
            }
        }
        Ok(Some(r))
    }
}
