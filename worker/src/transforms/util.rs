//! What the transforms share: Java's `Requirements` checks with their messages, schema copying
//! (`SchemaUtil.copySchemaBasics`) and typed access to parsed settings.

use tributary_connect_api::{
    ConfigKey, ConfigType, ConfigValue, Importance, Schema, SchemaBuilder, Struct, Type, Value,
};

use super::{Settings, TransformError, TransformResult};

/// The Java class a Connect value has, as `Requirements` names it in errors.
pub fn java_class(value: Option<&Value>) -> &'static str {
    match value {
        None => "null",
        Some(Value::Int8(_)) => "java.lang.Byte",
        Some(Value::Int16(_)) => "java.lang.Short",
        Some(Value::Int32(_)) => "java.lang.Integer",
        Some(Value::Int64(_)) => "java.lang.Long",
        Some(Value::Float32(_)) => "java.lang.Float",
        Some(Value::Float64(_)) => "java.lang.Double",
        Some(Value::Boolean(_)) => "java.lang.Boolean",
        Some(Value::String(_)) => "java.lang.String",
        Some(Value::Bytes(_)) => "[B",
        Some(Value::Array(_)) => "java.util.ArrayList",
        Some(Value::Map(_)) => "java.util.HashMap",
        Some(Value::Struct(_)) => "org.apache.kafka.connect.data.Struct",
        Some(Value::Decimal(_)) => "java.math.BigDecimal",
        Some(Value::Date(_) | Value::Time(_) | Value::Timestamp(_)) => "java.util.Date",
    }
}

/// A map entry list, for schemaless records.
pub type MapEntries = Vec<(Option<Value>, Option<Value>)>;

pub fn require_map(value: Option<Value>, purpose: &str) -> TransformResult<MapEntries> {
    match value {
        Some(Value::Map(m)) => Ok(m),
        other => Err(TransformError(format!(
            "Only Map objects supported in absence of schema for [{purpose}], found: {}",
            java_class(other.as_ref())
        ))),
    }
}

pub fn require_struct(value: Option<Value>, purpose: &str) -> TransformResult<Struct> {
    match value {
        Some(Value::Struct(s)) => Ok(s),
        other => Err(TransformError(format!(
            "Only Struct objects supported for [{purpose}], found: {}",
            java_class(other.as_ref())
        ))),
    }
}

pub fn require_schema<'a>(
    schema: Option<&'a Schema>,
    purpose: &str,
) -> TransformResult<&'a Schema> {
    schema.ok_or_else(|| TransformError(format!("Schema required for [{purpose}]")))
}

/// The value under a string key of a schemaless map.
pub fn map_get<'a>(map: &'a MapEntries, key: &str) -> Option<&'a Value> {
    map.iter()
        .find(|(k, _)| matches!(k, Some(Value::String(s)) if s == key))
        .and_then(|(_, v)| v.as_ref())
}

/// Sets a string key of a schemaless map, replacing an existing entry in place (a Java
/// `HashMap.put`).
pub fn map_put(map: &mut MapEntries, key: &str, value: Option<Value>) {
    match map
        .iter_mut()
        .find(|(k, _)| matches!(k, Some(Value::String(s)) if s == key))
    {
        Some(entry) => entry.1 = value,
        None => map.push((Some(Value::String(key.to_string())), value)),
    }
}

/// A new struct schema with `source`'s name, version, doc and parameters (not its
/// optionality), as `SchemaUtil.copySchemaBasics(source, SchemaBuilder.struct())`.
pub fn struct_basics(source: &Schema) -> SchemaBuilder {
    basics(source, SchemaBuilder::new(Type::Struct))
}

/// `b` with `source`'s name, version, doc and parameters.
pub fn basics(source: &Schema, mut b: SchemaBuilder) -> SchemaBuilder {
    if let Some(n) = source.name() {
        b = b.name(n);
    }
    if let Some(v) = source.version() {
        b = b.version(v);
    }
    if let Some(d) = source.doc() {
        b = b.doc(d);
    }
    for (k, v) in source.parameters() {
        b = b.parameter(k.clone(), v.clone());
    }
    b
}

/// A builder of the same type with `source`'s basics, element, key and value schemas and
/// fields (`SchemaUtil.copySchemaBasics(source)`), neither optional nor defaulted.
pub fn copy_schema(source: &Schema) -> TransformResult<SchemaBuilder> {
    let missing = || {
        TransformError(format!(
            "{} schema without its element schemas",
            source.type_()
        ))
    };
    let b = match source.type_() {
        Type::Array => SchemaBuilder::array(source.value_schema().cloned().ok_or_else(missing)?),
        Type::Map => SchemaBuilder::map(
            source.key_schema().cloned().ok_or_else(missing)?,
            source.value_schema().cloned().ok_or_else(missing)?,
        ),
        t => SchemaBuilder::new(t),
    };
    Ok(source.fields().iter().fold(basics(source, b), |b, f| {
        b.field(f.name.clone(), f.schema.clone())
    }))
}

pub fn build(b: SchemaBuilder) -> TransformResult<Schema> {
    b.build().map_err(|e| TransformError(e.to_string()))
}

/// An empty struct of `schema` (a struct schema the transform built).
pub fn new_struct(schema: &Schema) -> TransformResult<Struct> {
    Struct::new(schema.clone()).map_err(|e| TransformError(e.to_string()))
}

pub fn put(s: &mut Struct, field: &str, value: Option<Value>) -> TransformResult<()> {
    s.put(field, value)
        .map(drop)
        .map_err(|e| TransformError(e.to_string()))
}

/// A field's value, with or without its schema default (`replace.null.with.default`).
pub fn get(s: &Struct, field: &str, with_default: bool) -> TransformResult<Option<Value>> {
    let v = if with_default {
        s.get(field)
    } else {
        s.get_without_default(field)
    };
    v.map(|v| v.cloned())
        .map_err(|e| TransformError(e.to_string()))
}

pub fn string(s: &Settings, key: &str) -> Option<String> {
    match s.get(key) {
        Some(ConfigValue::String(v) | ConfigValue::Class(v)) => Some(v.clone()),
        Some(other) => Some(other.to_string()),
        None => None,
    }
}

pub fn list(s: &Settings, key: &str) -> Vec<String> {
    match s.get(key) {
        Some(ConfigValue::List(v)) => v.clone(),
        _ => Vec::new(),
    }
}

pub fn boolean(s: &Settings, key: &str, default: bool) -> bool {
    match s.get(key) {
        Some(ConfigValue::Boolean(b)) => *b,
        _ => default,
    }
}

pub fn int(s: &Settings, key: &str) -> Option<i32> {
    match s.get(key) {
        Some(ConfigValue::Int(n)) => Some(*n),
        _ => None,
    }
}

/// `replace.null.with.default` (KIP-1040), on every transform that reads fields.
pub fn replace_null_key() -> ConfigKey {
    ConfigKey::new(
        "replace.null.with.default",
        ConfigType::Boolean,
        Importance::Medium,
        "Whether a null field value is replaced by the field's default value, when it has one.",
    )
    .default_value("true")
}

/// `field.syntax.version` (KIP-821): how a field path is read (see `field_path`).
pub fn field_syntax_key() -> ConfigKey {
    ConfigKey::new(
        "field.syntax.version",
        ConfigType::String,
        Importance::High,
        "Defines the version of the syntax to access fields. V1: field paths name top-level \
         fields of the struct or map. V2: dotted paths reach nested fields; wrap a field name \
         that contains dots in backticks, e.g. `foo.bar`.baz for the field baz of the field \
         named foo.bar.",
    )
    .default_value("V1")
    .validator(std::sync::Arc::new(|v| match v {
        ConfigValue::String(s) if s.eq_ignore_ascii_case("V1") || s.eq_ignore_ascii_case("V2") => {
            Ok(())
        }
        _ => Err("String must be one of (case insensitive): V1, V2".into()),
    }))
}
