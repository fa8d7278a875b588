//! The transforms that reshape a key or value: InsertField, ReplaceField, MaskField,
//! ValueToKey, ExtractField, HoistField, SetSchemaMetadata, and Filter. Each follows its Java
//! namesake (same keys, defaults, schema shapes and error messages); records with a schema
//! get a struct of a new schema, schemaless ones a map.

use std::collections::{BTreeMap, BTreeSet};

use num_bigint::BigInt;
use tributary_connect_api::config_def::non_empty_string;
use tributary_connect_api::{
    ConfigDef, ConfigKey, ConfigType as T, Decimal, Importance as I, Schema, SchemaBuilder, Type,
    Value, logical,
};

use super::field_path::FieldPath;
use super::util::{
    self, MapEntries, build, field_syntax_key, get, java_class, map_get, map_put, put,
    replace_null_key, require_map, require_schema, require_struct, struct_basics,
};
use super::{
    Record, Settings, Side, TransformError, TransformPlugin, TransformResult, Transformation,
};

const REPLACE_NULL: &str = "replace.null.with.default";

fn optional_string(name: &str, doc: &str) -> ConfigKey {
    ConfigKey::new(name, T::String, I::Medium, doc).default_null()
}

macro_rules! key_value_plugins {
    ($key:ident, $value:ident, $name:literal, $doc:literal, $def:expr, $ty:ident) => {
        pub const $key: TransformPlugin = TransformPlugin {
            class: concat!("org.apache.kafka.connect.transforms.", $name, "$Key"),
            doc: $doc,
            def: $def,
            create: |s| Ok(Box::new($ty::new(Side::Key, s)?)),
        };
        pub const $value: TransformPlugin = TransformPlugin {
            class: concat!("org.apache.kafka.connect.transforms.", $name, "$Value"),
            doc: $doc,
            def: $def,
            create: |s| Ok(Box::new($ty::new(Side::Value, s)?)),
        };
    };
}

// ---- InsertField ---------------------------------------------------------------------------

key_value_plugins!(
    INSERT_FIELD_KEY,
    INSERT_FIELD_VALUE,
    "InsertField",
    "Insert the record's topic, partition, offset or timestamp, or a static value, as fields.",
    insert_field_def,
    InsertField
);

fn insert_field_def() -> ConfigDef {
    let suffix =
        " Suffix with ! to make it a required field, or ? to keep it optional (the default).";
    ConfigDef::new()
        .define(optional_string(
            "topic.field",
            &format!("Field name for the Kafka topic.{suffix}"),
        ))
        .define(optional_string(
            "partition.field",
            &format!("Field name for the Kafka partition.{suffix}"),
        ))
        .define(optional_string(
            "offset.field",
            &format!("Field name for the Kafka offset (sink connectors only).{suffix}"),
        ))
        .define(optional_string(
            "timestamp.field",
            &format!("Field name for the record timestamp.{suffix}"),
        ))
        .define(optional_string(
            "static.field",
            &format!("Field name for a static value.{suffix}"),
        ))
        .define(optional_string(
            "static.value",
            "The static field value, when static.field is set.",
        ))
        .define(replace_null_key())
}

/// A field to insert: its name and whether its schema is optional (`name?`, the default) or
/// required (`name!`).
#[derive(Debug, Clone)]
struct Insertion {
    name: String,
    optional: bool,
}

impl Insertion {
    fn parse(spec: Option<String>) -> Option<Self> {
        let spec = spec?;
        if let Some(n) = spec.strip_suffix('?') {
            Some(Self {
                name: n.into(),
                optional: true,
            })
        } else if let Some(n) = spec.strip_suffix('!') {
            Some(Self {
                name: n.into(),
                optional: false,
            })
        } else {
            Some(Self {
                name: spec,
                optional: true,
            })
        }
    }
}

#[derive(Debug)]
pub struct InsertField {
    side: Side,
    topic: Option<Insertion>,
    partition: Option<Insertion>,
    offset: Option<Insertion>,
    timestamp: Option<Insertion>,
    static_field: Option<Insertion>,
    static_value: Option<String>,
    replace_null: bool,
}

const INSERT_PURPOSE: &str = "field insertion";

impl InsertField {
    fn new(side: Side, s: &Settings) -> Result<Self, String> {
        Ok(Self {
            side,
            topic: Insertion::parse(util::string(s, "topic.field")),
            partition: Insertion::parse(util::string(s, "partition.field")),
            offset: Insertion::parse(util::string(s, "offset.field")),
            timestamp: Insertion::parse(util::string(s, "timestamp.field")),
            static_field: Insertion::parse(util::string(s, "static.field")),
            static_value: util::string(s, "static.value"),
            replace_null: util::boolean(s, REPLACE_NULL, true),
        })
    }

    fn offset_of(&self, r: &Record) -> TransformResult<i64> {
        r.kafka_offset.ok_or_else(|| {
            TransformError(format!(
                "Only SinkRecord supported for [{INSERT_PURPOSE}], found: org.apache.kafka.connect.source.SourceRecord"
            ))
        })
    }

    fn schema_for(&self, source: &Schema) -> TransformResult<Schema> {
        let mut b = struct_basics(source);
        for f in source.fields() {
            b = b.field(f.name.clone(), f.schema.clone());
        }
        let pick = |optional: bool, opt: Schema, req: Schema| if optional { opt } else { req };
        if let Some(i) = &self.topic {
            b = b.field(
                i.name.clone(),
                pick(i.optional, Schema::optional_string(), Schema::string()),
            );
        }
        if let Some(i) = &self.partition {
            let opt = build(SchemaBuilder::new(Type::Int32).optional())?;
            b = b.field(i.name.clone(), pick(i.optional, opt, Schema::int32()));
        }
        if let Some(i) = &self.offset {
            let opt = build(SchemaBuilder::new(Type::Int64).optional())?;
            b = b.field(i.name.clone(), pick(i.optional, opt, Schema::int64()));
        }
        if let Some(i) = &self.timestamp {
            let opt = build(logical::timestamp_schema().optional())?;
            b = b.field(
                i.name.clone(),
                pick(i.optional, opt, build(logical::timestamp_schema())?),
            );
        }
        if let Some(i) = &self.static_field {
            b = b.field(
                i.name.clone(),
                pick(i.optional, Schema::optional_string(), Schema::string()),
            );
        }
        build(b)
    }
}

impl Transformation for InsertField {
    fn apply(&self, mut r: Record) -> TransformResult<Option<Record>> {
        // Tombstones pass through untouched.
        if self.side.value(&r).is_none() {
            return Ok(Some(r));
        }
        let (schema, value) = self.side.take(&mut r);
        match schema {
            None => {
                let mut map = require_map(value, INSERT_PURPOSE)?;
                if let Some(i) = &self.topic {
                    map_put(&mut map, &i.name, Some(Value::String(r.topic.clone())));
                }
                if let (Some(i), Some(p)) = (&self.partition, r.kafka_partition) {
                    map_put(&mut map, &i.name, Some(Value::Int32(p)));
                }
                if let Some(i) = &self.offset {
                    map_put(&mut map, &i.name, Some(Value::Int64(self.offset_of(&r)?)));
                }
                if let (Some(i), Some(t)) = (&self.timestamp, r.timestamp) {
                    map_put(&mut map, &i.name, Some(Value::Int64(t)));
                }
                if let (Some(i), Some(v)) = (&self.static_field, &self.static_value) {
                    map_put(&mut map, &i.name, Some(Value::String(v.clone())));
                }
                self.side.set(&mut r, None, Some(Value::Map(map)));
            }
            Some(_) => {
                let old = require_struct(value, INSERT_PURPOSE)?;
                let schema = self.schema_for(old.schema())?;
                let mut new = util::new_struct(&schema)?;
                for f in old.schema().fields() {
                    put(&mut new, &f.name, get(&old, &f.name, self.replace_null)?)?;
                }
                if let Some(i) = &self.topic {
                    put(&mut new, &i.name, Some(Value::String(r.topic.clone())))?;
                }
                if let (Some(i), Some(p)) = (&self.partition, r.kafka_partition) {
                    put(&mut new, &i.name, Some(Value::Int32(p)))?;
                }
                if let Some(i) = &self.offset {
                    put(&mut new, &i.name, Some(Value::Int64(self.offset_of(&r)?)))?;
                }
                if let (Some(i), Some(t)) = (&self.timestamp, r.timestamp) {
                    put(&mut new, &i.name, Some(Value::Timestamp(t)))?;
                }
                if let (Some(i), Some(v)) = (&self.static_field, &self.static_value) {
                    put(&mut new, &i.name, Some(Value::String(v.clone())))?;
                }
                self.side
                    .set(&mut r, Some(schema), Some(Value::Struct(new)));
            }
        }
        Ok(Some(r))
    }
}

// ---- ReplaceField --------------------------------------------------------------------------

key_value_plugins!(
    REPLACE_FIELD_KEY,
    REPLACE_FIELD_VALUE,
    "ReplaceField",
    "Keep, drop or rename fields.",
    replace_field_def,
    ReplaceField
);

fn replace_field_def() -> ConfigDef {
    ConfigDef::new()
        .define(
            ConfigKey::new(
                "exclude",
                T::List,
                I::Medium,
                "Fields to drop; they win over include.",
            )
            .default_value(""),
        )
        .define(
            ConfigKey::new(
                "include",
                T::List,
                I::Medium,
                "Fields to keep; empty keeps all.",
            )
            .default_value(""),
        )
        .define(
            ConfigKey::new(
                "renames",
                T::List,
                I::Medium,
                "Renames as old:new pairs, comma-separated.",
            )
            .default_value(""),
        )
        .define(replace_null_key())
}

#[derive(Debug)]
pub struct ReplaceField {
    side: Side,
    exclude: BTreeSet<String>,
    include: BTreeSet<String>,
    renames: BTreeMap<String, String>,
    reverse: BTreeMap<String, String>,
    replace_null: bool,
}

const REPLACE_PURPOSE: &str = "field replacement";

impl ReplaceField {
    fn new(side: Side, s: &Settings) -> Result<Self, String> {
        let mut renames = BTreeMap::new();
        let list = util::list(s, "renames");
        for pair in &list {
            match pair.split_once(':') {
                Some((a, b)) if !a.is_empty() && !b.is_empty() && !b.contains(':') => {
                    renames.insert(a.to_string(), b.to_string());
                }
                _ => {
                    return Err(format!(
                        "Invalid value {} for configuration renames: Invalid rename mapping: {pair}",
                        list.join(",")
                    ));
                }
            }
        }
        let reverse = renames
            .iter()
            .map(|(a, b)| (b.clone(), a.clone()))
            .collect();
        Ok(Self {
            side,
            exclude: util::list(s, "exclude").into_iter().collect(),
            include: util::list(s, "include").into_iter().collect(),
            renames,
            reverse,
            replace_null: util::boolean(s, REPLACE_NULL, true),
        })
    }

    fn keeps(&self, field: &str) -> bool {
        !self.exclude.contains(field) && (self.include.is_empty() || self.include.contains(field))
    }

    fn renamed<'a>(&'a self, field: &'a str) -> &'a str {
        self.renames.get(field).map_or(field, String::as_str)
    }
}

impl Transformation for ReplaceField {
    fn apply(&self, mut r: Record) -> TransformResult<Option<Record>> {
        if self.side.value(&r).is_none() {
            return Ok(Some(r));
        }
        let (schema, value) = self.side.take(&mut r);
        match schema {
            None => {
                let map = require_map(value, REPLACE_PURPOSE)?;
                let out: MapEntries = map
                    .into_iter()
                    .filter_map(|(k, v)| match k {
                        Some(Value::String(name)) => self
                            .keeps(&name)
                            .then(|| (Some(Value::String(self.renamed(&name).to_string())), v)),
                        // Java compares keys as strings; a non-string key is never listed.
                        other => (self.include.is_empty()).then_some((other, v)),
                    })
                    .collect();
                self.side.set(&mut r, None, Some(Value::Map(out)));
            }
            Some(_) => {
                let old = require_struct(value, REPLACE_PURPOSE)?;
                let mut b = struct_basics(old.schema());
                for f in old.schema().fields().iter().filter(|f| self.keeps(&f.name)) {
                    b = b.field(self.renamed(&f.name).to_string(), f.schema.clone());
                }
                let schema = build(b)?;
                let mut new = util::new_struct(&schema)?;
                for f in schema.fields() {
                    let from = self.reverse.get(&f.name).unwrap_or(&f.name);
                    put(&mut new, &f.name, get(&old, from, self.replace_null)?)?;
                }
                self.side
                    .set(&mut r, Some(schema), Some(Value::Struct(new)));
            }
        }
        Ok(Some(r))
    }
}

// ---- MaskField -----------------------------------------------------------------------------

key_value_plugins!(
    MASK_FIELD_KEY,
    MASK_FIELD_VALUE,
    "MaskField",
    "Replace fields with the null value of their type, or with a replacement.",
    mask_field_def,
    MaskField
);

fn mask_field_def() -> ConfigDef {
    ConfigDef::new()
        .define(
            ConfigKey::new("fields", T::List, I::High, "Fields to mask.").validator(
                std::sync::Arc::new(|v| match v {
                    tributary_connect_api::ConfigValue::List(l) if l.is_empty() => {
                        Err("Empty list".to_string())
                    }
                    _ => Ok(()),
                }),
            ),
        )
        .define(
            ConfigKey::new(
                "replacement",
                T::String,
                I::Low,
                "The value masked fields get instead of their type's null value.",
            )
            .default_null()
            .validator(non_empty_string()),
        )
        .define(replace_null_key())
}

#[derive(Debug)]
pub struct MaskField {
    side: Side,
    fields: BTreeSet<String>,
    replacement: Option<String>,
    replace_null: bool,
}

impl MaskField {
    fn new(side: Side, s: &Settings) -> Result<Self, String> {
        Ok(Self {
            side,
            fields: util::list(s, "fields").into_iter().collect(),
            replacement: util::string(s, "replacement"),
            replace_null: util::boolean(s, REPLACE_NULL, true),
        })
    }

    fn masked(&self, value: Option<Value>) -> TransformResult<Option<Value>> {
        let Some(value) = value else {
            return Ok(None);
        };
        match &self.replacement {
            None => null_value_of(&value).map(Some),
            Some(rep) => replaced(&value, rep).map(Some),
        }
    }
}

/// What Java's MaskField puts in place of a value: the zero of its class.
fn null_value_of(v: &Value) -> TransformResult<Value> {
    Ok(match v {
        Value::Boolean(_) => Value::Boolean(false),
        Value::Int8(_) => Value::Int8(0),
        Value::Int16(_) => Value::Int16(0),
        Value::Int32(_) => Value::Int32(0),
        Value::Int64(_) => Value::Int64(0),
        Value::Float32(_) => Value::Float32(0.0),
        Value::Float64(_) => Value::Float64(0.0),
        Value::String(_) => Value::String(String::new()),
        Value::Decimal(d) => Value::Decimal(Decimal {
            unscaled: BigInt::from(0),
            scale: d.scale,
        }),
        Value::Date(_) => Value::Date(0),
        Value::Time(_) => Value::Time(0),
        Value::Timestamp(_) => Value::Timestamp(0),
        Value::Array(_) => Value::Array(Vec::new()),
        Value::Map(_) => Value::Map(Vec::new()),
        other => {
            return Err(TransformError(format!(
                "Cannot mask value of type: class {}",
                java_class(Some(other))
            )));
        }
    })
}

fn replaced(v: &Value, rep: &str) -> TransformResult<Value> {
    let number = |ok: Option<Value>| {
        ok.ok_or_else(|| {
            TransformError(format!(
                "Unable to convert {rep} (class java.lang.String) to a number"
            ))
        })
    };
    match v {
        Value::Int8(_) => number(rep.parse().ok().map(Value::Int8)),
        Value::Int16(_) => number(rep.parse().ok().map(Value::Int16)),
        Value::Int32(_) => number(rep.parse().ok().map(Value::Int32)),
        Value::Int64(_) => number(rep.parse().ok().map(Value::Int64)),
        Value::Float32(_) => number(rep.parse().ok().map(Value::Float32)),
        Value::Float64(_) => number(rep.parse().ok().map(Value::Float64)),
        Value::String(_) => Ok(Value::String(rep.to_string())),
        other => Err(TransformError(format!(
            "Cannot mask value of type class {} with custom replacement.",
            java_class(Some(other))
        ))),
    }
}

impl Transformation for MaskField {
    fn apply(&self, mut r: Record) -> TransformResult<Option<Record>> {
        if self.side.value(&r).is_none() {
            return Ok(Some(r));
        }
        let (schema, value) = self.side.take(&mut r);
        match schema {
            None => {
                let mut map = require_map(value, "mask fields")?;
                for f in &self.fields {
                    let masked = self.masked(map_get(&map, f).cloned())?;
                    map_put(&mut map, f, masked);
                }
                self.side.set(&mut r, None, Some(Value::Map(map)));
            }
            Some(schema) => {
                let old = require_struct(value, "mask fields")?;
                let mut new = util::new_struct(old.schema())?;
                for f in old.schema().fields() {
                    let v = get(&old, &f.name, self.replace_null)?;
                    let v = if self.fields.contains(&f.name) {
                        self.masked(v)?
                    } else {
                        v
                    };
                    put(&mut new, &f.name, v)?;
                }
                self.side
                    .set(&mut r, Some(schema), Some(Value::Struct(new)));
            }
        }
        Ok(Some(r))
    }
}

// ---- ValueToKey ----------------------------------------------------------------------------

pub const VALUE_TO_KEY: TransformPlugin = TransformPlugin {
    class: "org.apache.kafka.connect.transforms.ValueToKey",
    doc: "Replace the record key with a new key formed from fields of the value.",
    def: || {
        ConfigDef::new()
            .define(ConfigKey::new(
                "fields",
                T::List,
                I::High,
                "Fields of the value that make up the key.",
            ))
            .define(replace_null_key())
    },
    create: |s| {
        Ok(Box::new(ValueToKey {
            fields: util::list(s, "fields"),
            replace_null: util::boolean(s, REPLACE_NULL, true),
        }))
    },
};

#[derive(Debug)]
pub struct ValueToKey {
    fields: Vec<String>,
    replace_null: bool,
}

const VALUE_TO_KEY_PURPOSE: &str = "copying fields from value to key";

impl Transformation for ValueToKey {
    fn apply(&self, mut r: Record) -> TransformResult<Option<Record>> {
        match &r.value_schema {
            None => {
                let map = require_map(r.value.take(), VALUE_TO_KEY_PURPOSE)?;
                let key: MapEntries = self
                    .fields
                    .iter()
                    .map(|f| (Some(Value::String(f.clone())), map_get(&map, f).cloned()))
                    .collect();
                r.value = Some(Value::Map(map));
                r.key_schema = None;
                r.key = Some(Value::Map(key));
            }
            Some(_) => {
                let value = require_struct(r.value.take(), VALUE_TO_KEY_PURPOSE)?;
                let mut b = SchemaBuilder::struct_();
                for f in &self.fields {
                    let field = value
                        .schema()
                        .field(f)
                        .ok_or_else(|| TransformError(format!("Field does not exist: {f}")))?;
                    b = b.field(f.clone(), field.schema.clone());
                }
                let schema = build(b)?;
                let mut key = util::new_struct(&schema)?;
                for f in &self.fields {
                    put(&mut key, f, get(&value, f, self.replace_null)?)?;
                }
                r.value = Some(Value::Struct(value));
                r.key_schema = Some(schema);
                r.key = Some(Value::Struct(key));
            }
        }
        Ok(Some(r))
    }
}

// ---- ExtractField --------------------------------------------------------------------------

key_value_plugins!(
    EXTRACT_FIELD_KEY,
    EXTRACT_FIELD_VALUE,
    "ExtractField",
    "Replace the key or value with one of its fields.",
    extract_field_def,
    ExtractField
);

fn extract_field_def() -> ConfigDef {
    ConfigDef::new()
        .define(ConfigKey::new(
            "field",
            T::String,
            I::Medium,
            "The field to extract.",
        ))
        .define(replace_null_key())
        .define(field_syntax_key())
}

#[derive(Debug)]
pub struct ExtractField {
    side: Side,
    path: FieldPath,
    replace_null: bool,
}

const EXTRACT_PURPOSE: &str = "field extraction";

impl ExtractField {
    fn new(side: Side, s: &Settings) -> Result<Self, String> {
        let field = util::string(s, "field").unwrap_or_default();
        let version = util::string(s, "field.syntax.version").unwrap_or_else(|| "V1".into());
        Ok(Self {
            side,
            path: FieldPath::parse(&field, &version)?,
            replace_null: util::boolean(s, REPLACE_NULL, true),
        })
    }
}

impl Transformation for ExtractField {
    fn apply(&self, mut r: Record) -> TransformResult<Option<Record>> {
        let (schema, value) = self.side.take(&mut r);
        match schema {
            None => {
                let extracted = match value {
                    None => None,
                    v => self.path.value_of_map(&require_map(v, EXTRACT_PURPOSE)?)?,
                };
                self.side.set(&mut r, None, extracted);
            }
            Some(schema) => {
                let value = match value {
                    None => None,
                    v => Some(require_struct(v, EXTRACT_PURPOSE)?),
                };
                let field = self.path.field_of(&schema)?.ok_or_else(|| {
                    TransformError(format!("Unknown field: {}", self.path.text()))
                })?;
                let extracted = match value {
                    None => None,
                    Some(s) => self.path.value_of_struct(&s, self.replace_null)?,
                };
                self.side.set(&mut r, Some(field.schema.clone()), extracted);
            }
        }
        Ok(Some(r))
    }
}

// ---- HoistField ----------------------------------------------------------------------------

key_value_plugins!(
    HOIST_FIELD_KEY,
    HOIST_FIELD_VALUE,
    "HoistField",
    "Wrap the key or value in a struct (or map) under one field.",
    || ConfigDef::new().define(ConfigKey::new(
        "field",
        T::String,
        I::Medium,
        "The field name the data goes under."
    )),
    HoistField
);

#[derive(Debug)]
pub struct HoistField {
    side: Side,
    field: String,
}

impl HoistField {
    fn new(side: Side, s: &Settings) -> Result<Self, String> {
        Ok(Self {
            side,
            field: util::string(s, "field").unwrap_or_default(),
        })
    }
}

impl Transformation for HoistField {
    fn apply(&self, mut r: Record) -> TransformResult<Option<Record>> {
        let (schema, value) = self.side.take(&mut r);
        match schema {
            None => {
                let map = vec![(Some(Value::String(self.field.clone())), value)];
                self.side.set(&mut r, None, Some(Value::Map(map)));
            }
            Some(schema) => {
                let hoisted = build(SchemaBuilder::struct_().field(self.field.clone(), schema))?;
                let mut s = util::new_struct(&hoisted)?;
                put(&mut s, &self.field, value)?;
                self.side.set(&mut r, Some(hoisted), Some(Value::Struct(s)));
            }
        }
        Ok(Some(r))
    }
}

// ---- SetSchemaMetadata ---------------------------------------------------------------------

key_value_plugins!(
    SET_SCHEMA_METADATA_KEY,
    SET_SCHEMA_METADATA_VALUE,
    "SetSchemaMetadata",
    "Set the name and version of the key's or value's schema.",
    || {
        ConfigDef::new()
            .define(
                ConfigKey::new("schema.name", T::String, I::High, "The schema name to set.")
                    .default_null(),
            )
            .define(
                ConfigKey::new(
                    "schema.version",
                    T::Int,
                    I::High,
                    "The schema version to set.",
                )
                .default_null(),
            )
            .define(replace_null_key())
    },
    SetSchemaMetadata
);

#[derive(Debug)]
pub struct SetSchemaMetadata {
    side: Side,
    name: Option<String>,
    version: Option<i32>,
}

impl SetSchemaMetadata {
    fn new(side: Side, s: &Settings) -> Result<Self, String> {
        let name = util::string(s, "schema.name");
        let version = util::int(s, "schema.version");
        if name.is_none() && version.is_none() {
            return Err("Neither schema name nor version configured".to_string());
        }
        Ok(Self {
            side,
            name,
            version,
        })
    }
}

/// `schema` with another name or version, everything else kept.
fn with_metadata(
    schema: &Schema,
    name: Option<&str>,
    version: Option<i32>,
) -> TransformResult<Schema> {
    let mut b = util::copy_schema(schema)?;
    if schema.is_optional() {
        b = b.optional();
    }
    if let Some(d) = schema.default_value() {
        b = b.default_value(d.clone());
    }
    if let Some(n) = name {
        b = b.name(n);
    }
    if let Some(v) = version {
        b = b.version(v);
    }
    build(b)
}

impl Transformation for SetSchemaMetadata {
    fn apply(&self, mut r: Record) -> TransformResult<Option<Record>> {
        let schema = require_schema(self.side.schema(&r), "updating schema metadata")?.clone();
        let updated = with_metadata(&schema, self.name.as_deref(), self.version)?;
        let (_, value) = self.side.take(&mut r);
        let value = match value {
            Some(Value::Struct(old)) => {
                let mut new = util::new_struct(&updated)?;
                for (f, v) in old.fields_with_values() {
                    put(&mut new, &f.name, v.cloned())?;
                }
                Some(Value::Struct(new))
            }
            other => other,
        };
        self.side.set(&mut r, Some(updated), value);
        Ok(Some(r))
    }
}

// ---- Filter --------------------------------------------------------------------------------

pub const FILTER: TransformPlugin = TransformPlugin {
    class: "org.apache.kafka.connect.transforms.Filter",
    doc: "Drop every record; use it with a predicate to drop only those that match.",
    def: ConfigDef::new,
    create: |_| Ok(Box::new(Filter)),
};

#[derive(Debug)]
pub struct Filter;

impl Transformation for Filter {
    fn apply(&self, _record: Record) -> TransformResult<Option<Record>> {
        Ok(None)
    }
}
