//! The header transforms: InsertHeader, DropHeaders and HeaderFrom.

use std::collections::BTreeSet;

use tributary_connect_api::{
    ConfigDef, ConfigKey, ConfigType as T, Headers, Importance as I, Schema, Value,
};

use super::util::{
    self, MapEntries, build, get, map_get, put, require_map, require_struct, struct_basics,
};
use super::{
    Record, Settings, Side, TransformError, TransformPlugin, TransformResult, Transformation,
};

// ---- InsertHeader --------------------------------------------------------------------------

pub const INSERT_HEADER: TransformPlugin = TransformPlugin {
    class: "org.apache.kafka.connect.transforms.InsertHeader",
    doc: "Add a header with a literal value to every record.",
    def: || {
        ConfigDef::new()
            .define(ConfigKey::new("header", T::String, I::High, "The header's name."))
            .define(ConfigKey::new(
                "value.literal",
                T::String,
                I::High,
                "The header's value, typed as Connect's Values.parseString types it (true → BOOLEAN, 42 → INT8, …).",
            ))
    },
    create: |s| {
        let literal = util::string(s, "value.literal").unwrap_or_default();
        let (schema, value) = parse_literal(&literal);
        Ok(Box::new(InsertHeader {
            header: util::string(s, "header").unwrap_or_default(),
            schema,
            value,
        }))
    },
};

/// A literal typed as Java's `Values.parseString` types simple values: booleans, the smallest
/// integer type that holds it, a double, else the string itself.
pub fn parse_literal(s: &str) -> (Schema, Value) {
    let t = s.trim();
    if t.eq_ignore_ascii_case("true") || t.eq_ignore_ascii_case("false") {
        return (
            Schema::boolean(),
            Value::Boolean(t.eq_ignore_ascii_case("true")),
        );
    }
    if let Ok(n) = t.parse::<i64>() {
        return if let Ok(v) = i8::try_from(n) {
            (Schema::int8(), Value::Int8(v))
        } else if let Ok(v) = i16::try_from(n) {
            (Schema::int16(), Value::Int16(v))
        } else if let Ok(v) = i32::try_from(n) {
            (Schema::int32(), Value::Int32(v))
        } else {
            (Schema::int64(), Value::Int64(n))
        };
    }
    if t.contains(['.', 'e', 'E'])
        && let Ok(f) = t.parse::<f64>()
        && f.is_finite()
    {
        return (Schema::float64(), Value::Float64(f));
    }
    (Schema::string(), Value::String(s.to_string()))
}

#[derive(Debug)]
pub struct InsertHeader {
    header: String,
    schema: Schema,
    value: Value,
}

impl Transformation for InsertHeader {
    fn apply(&self, mut r: Record) -> TransformResult<Option<Record>> {
        r.headers.add(
            self.header.clone(),
            Some(self.schema.clone()),
            Some(self.value.clone()),
        );
        Ok(Some(r))
    }
}

// ---- DropHeaders ---------------------------------------------------------------------------

pub const DROP_HEADERS: TransformPlugin = TransformPlugin {
    class: "org.apache.kafka.connect.transforms.DropHeaders",
    doc: "Remove the headers with the given names.",
    def: || {
        ConfigDef::new().define(
            ConfigKey::new(
                "headers",
                T::List,
                I::High,
                "The names of the headers to remove.",
            )
            .validator(non_empty_list()),
        )
    },
    create: |s| {
        Ok(Box::new(DropHeaders {
            names: util::list(s, "headers").into_iter().collect(),
        }))
    },
};

fn non_empty_list() -> tributary_connect_api::config_def::Validator {
    std::sync::Arc::new(|v| match v {
        tributary_connect_api::ConfigValue::List(l) if l.is_empty() => {
            Err("Empty list".to_string())
        }
        _ => Ok(()),
    })
}

#[derive(Debug)]
pub struct DropHeaders {
    names: BTreeSet<String>,
}

impl Transformation for DropHeaders {
    fn apply(&self, mut r: Record) -> TransformResult<Option<Record>> {
        if r.headers.iter().any(|h| self.names.contains(&h.key)) {
            r.headers = r
                .headers
                .iter()
                .filter(|h| !self.names.contains(&h.key))
                .cloned()
                .collect::<Headers>();
        }
        Ok(Some(r))
    }
}

// ---- HeaderFrom ----------------------------------------------------------------------------

macro_rules! header_from {
    ($name:ident, $side:expr, $suffix:literal) => {
        pub const $name: TransformPlugin = TransformPlugin {
            class: concat!("org.apache.kafka.connect.transforms.HeaderFrom", $suffix),
            doc: "Copy or move fields of the key or value into headers.",
            def: header_from_def,
            create: |s| Ok(Box::new(HeaderFrom::new($side, s)?)),
        };
    };
}

header_from!(HEADER_FROM_KEY, Side::Key, "$Key");
header_from!(HEADER_FROM_VALUE, Side::Value, "$Value");

fn header_from_def() -> ConfigDef {
    ConfigDef::new()
        .define(
            ConfigKey::new(
                "fields",
                T::List,
                I::High,
                "Fields to copy or move, in the order of headers.",
            )
            .validator(non_empty_list()),
        )
        .define(
            ConfigKey::new("headers", T::List, I::High, "Header names, one per field.")
                .validator(non_empty_list()),
        )
        .define(
            ConfigKey::new("operation", T::String, I::High, "move or copy.")
                .validator(tributary_connect_api::config_def::one_of(&["move", "copy"])),
        )
        .define(super::util::replace_null_key())
}

#[derive(Debug)]
pub struct HeaderFrom {
    side: Side,
    fields: Vec<String>,
    headers: Vec<String>,
    moving: bool,
    replace_null: bool,
}

impl HeaderFrom {
    fn new(side: Side, s: &Settings) -> Result<Self, String> {
        let fields = util::list(s, "fields");
        let headers = util::list(s, "headers");
        if fields.len() != headers.len() {
            return Err(format!(
                "'fields' config must have the same number of elements as 'headers' config: {} fields, {} headers",
                fields.len(),
                headers.len()
            ));
        }
        Ok(Self {
            side,
            fields,
            headers,
            moving: util::string(s, "operation").as_deref() == Some("move"),
            replace_null: util::boolean(s, "replace.null.with.default", true),
        })
    }

    fn purpose(&self) -> &'static str {
        if self.moving {
            "header move"
        } else {
            "header copy"
        }
    }
}

impl Transformation for HeaderFrom {
    fn apply(&self, mut r: Record) -> TransformResult<Option<Record>> {
        let (schema, value) = self.side.take(&mut r);
        match schema {
            None => {
                let map = require_map(value, self.purpose())?;
                for (f, h) in self.fields.iter().zip(&self.headers) {
                    r.headers.add(h.clone(), None, map_get(&map, f).cloned());
                }
                let map: MapEntries = if self.moving {
                    map.into_iter()
                        .filter(|(k, _)| !matches!(k, Some(Value::String(s)) if self.fields.contains(s)))
                        .collect()
                } else {
                    map
                };
                self.side.set(&mut r, None, Some(Value::Map(map)));
            }
            Some(schema) => {
                let old = require_struct(value, self.purpose())?;
                for (f, h) in self.fields.iter().zip(&self.headers) {
                    let field = schema
                        .field(f)
                        .ok_or_else(|| TransformError(format!("Field does not exist: {f}")))?;
                    r.headers.add(
                        h.clone(),
                        Some(field.schema.clone()),
                        get(&old, f, self.replace_null)?,
                    );
                }
                if self.moving {
                    let mut b = struct_basics(&schema);
                    for f in schema
                        .fields()
                        .iter()
                        .filter(|f| !self.fields.contains(&f.name))
                    {
                        b = b.field(f.name.clone(), f.schema.clone());
                    }
                    let moved = build(b)?;
                    let mut new = util::new_struct(&moved)?;
                    for f in moved.fields() {
                        put(&mut new, &f.name, get(&old, &f.name, self.replace_null)?)?;
                    }
                    self.side.set(&mut r, Some(moved), Some(Value::Struct(new)));
                } else {
                    self.side
                        .set(&mut r, Some(schema), Some(Value::Struct(old)));
                }
            }
        }
        Ok(Some(r))
    }
}
