//! Connect schemas: the types of record keys, values and header values, shaped like Kafka
//! Connect's `Schema`/`SchemaBuilder` so that converters can map them one to one.

use std::fmt;
use std::sync::Arc;

use crate::error::DataError;
use crate::value::{Value, validate_value};

/// The twelve Connect schema types. Logical types (Decimal, Date, ...) are one of these plus a
/// schema name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Type {
    Int8,
    Int16,
    Int32,
    Int64,
    Float32,
    Float64,
    Boolean,
    String,
    Bytes,
    Array,
    Map,
    Struct,
}

impl Type {
    /// The lower-case name Java uses on the wire (JsonConverter's `"type"`).
    pub fn name(self) -> &'static str {
        match self {
            Type::Int8 => "int8",
            Type::Int16 => "int16",
            Type::Int32 => "int32",
            Type::Int64 => "int64",
            Type::Float32 => "float",
            Type::Float64 => "double",
            Type::Boolean => "boolean",
            Type::String => "string",
            Type::Bytes => "bytes",
            Type::Array => "array",
            Type::Map => "map",
            Type::Struct => "struct",
        }
    }

    /// The type named `name` on the wire, if any.
    pub fn from_name(name: &str) -> Option<Type> {
        Some(match name {
            "int8" => Type::Int8,
            "int16" => Type::Int16,
            "int32" => Type::Int32,
            "int64" => Type::Int64,
            "float" => Type::Float32,
            "double" => Type::Float64,
            "boolean" => Type::Boolean,
            "string" => Type::String,
            "bytes" => Type::Bytes,
            "array" => Type::Array,
            "map" => Type::Map,
            "struct" => Type::Struct,
            _ => return None,
        })
    }

    pub fn is_primitive(self) -> bool {
        !matches!(self, Type::Array | Type::Map | Type::Struct)
    }
}

impl fmt::Display for Type {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Java prints the enum constant: INT32, STRUCT, ...
        f.write_str(
            &self
                .name()
                .to_uppercase()
                .replace("FLOAT", "FLOAT32")
                .replace("DOUBLE", "FLOAT64"),
        )
    }
}

/// A field of a struct schema.
#[derive(Debug, Clone, PartialEq)]
pub struct Field {
    pub name: String,
    pub index: usize,
    pub schema: Schema,
}

/// An immutable schema, cheap to clone: records of one stream share one.
#[derive(Clone, PartialEq)]
pub struct Schema(Arc<SchemaInner>);

#[derive(Debug, Clone, PartialEq)]
struct SchemaInner {
    type_: Type,
    optional: bool,
    default: Option<Value>,
    name: Option<String>,
    version: Option<i32>,
    doc: Option<String>,
    /// In insertion order, as Java's LinkedHashMap keeps them (converters write them in order).
    parameters: Vec<(String, String)>,
    key: Option<Schema>,
    value: Option<Schema>,
    fields: Vec<Field>,
}

impl fmt::Debug for Schema {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

impl Schema {
    /// Whether both are the very same schema object (a cheap test for caches; equal schemas
    /// built separately are not the same).
    pub fn is_same(&self, other: &Schema) -> bool {
        Arc::ptr_eq(&self.0, &other.0)
    }

    pub fn type_(&self) -> Type {
        self.0.type_
    }
    pub fn is_optional(&self) -> bool {
        self.0.optional
    }
    pub fn default_value(&self) -> Option<&Value> {
        self.0.default.as_ref()
    }
    pub fn name(&self) -> Option<&str> {
        self.0.name.as_deref()
    }
    pub fn version(&self) -> Option<i32> {
        self.0.version
    }
    pub fn doc(&self) -> Option<&str> {
        self.0.doc.as_deref()
    }
    pub fn parameters(&self) -> &[(String, String)] {
        &self.0.parameters
    }
    pub fn parameter(&self, key: &str) -> Option<&str> {
        self.0
            .parameters
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }
    /// Key schema of a map.
    pub fn key_schema(&self) -> Option<&Schema> {
        self.0.key.as_ref()
    }
    /// Element schema of an array, value schema of a map.
    pub fn value_schema(&self) -> Option<&Schema> {
        self.0.value.as_ref()
    }
    /// Fields of a struct, in order (empty for other types).
    pub fn fields(&self) -> &[Field] {
        &self.0.fields
    }
    pub fn field(&self, name: &str) -> Option<&Field> {
        self.0.fields.iter().find(|f| f.name == name)
    }

    // The primitive schemas Java offers as constants (`Schema.INT32_SCHEMA`, ...): built once and
    // shared, since records on hot paths carry them (and converters cache by identity).
    pub fn int8() -> Schema {
        static SHARED: std::sync::OnceLock<Schema> = std::sync::OnceLock::new();
        SHARED
            .get_or_init(|| SchemaBuilder::new(Type::Int8).build_unchecked())
            .clone()
    }
    pub fn int16() -> Schema {
        static SHARED: std::sync::OnceLock<Schema> = std::sync::OnceLock::new();
        SHARED
            .get_or_init(|| SchemaBuilder::new(Type::Int16).build_unchecked())
            .clone()
    }
    pub fn int32() -> Schema {
        static SHARED: std::sync::OnceLock<Schema> = std::sync::OnceLock::new();
        SHARED
            .get_or_init(|| SchemaBuilder::new(Type::Int32).build_unchecked())
            .clone()
    }
    pub fn int64() -> Schema {
        static SHARED: std::sync::OnceLock<Schema> = std::sync::OnceLock::new();
        SHARED
            .get_or_init(|| SchemaBuilder::new(Type::Int64).build_unchecked())
            .clone()
    }
    pub fn float32() -> Schema {
        static SHARED: std::sync::OnceLock<Schema> = std::sync::OnceLock::new();
        SHARED
            .get_or_init(|| SchemaBuilder::new(Type::Float32).build_unchecked())
            .clone()
    }
    pub fn float64() -> Schema {
        static SHARED: std::sync::OnceLock<Schema> = std::sync::OnceLock::new();
        SHARED
            .get_or_init(|| SchemaBuilder::new(Type::Float64).build_unchecked())
            .clone()
    }
    pub fn boolean() -> Schema {
        static SHARED: std::sync::OnceLock<Schema> = std::sync::OnceLock::new();
        SHARED
            .get_or_init(|| SchemaBuilder::new(Type::Boolean).build_unchecked())
            .clone()
    }
    pub fn string() -> Schema {
        static SHARED: std::sync::OnceLock<Schema> = std::sync::OnceLock::new();
        SHARED
            .get_or_init(|| SchemaBuilder::new(Type::String).build_unchecked())
            .clone()
    }
    pub fn bytes() -> Schema {
        static SHARED: std::sync::OnceLock<Schema> = std::sync::OnceLock::new();
        SHARED
            .get_or_init(|| SchemaBuilder::new(Type::Bytes).build_unchecked())
            .clone()
    }
    pub fn optional_string() -> Schema {
        static SHARED: std::sync::OnceLock<Schema> = std::sync::OnceLock::new();
        SHARED
            .get_or_init(|| {
                SchemaBuilder::new(Type::String)
                    .optional()
                    .build_unchecked()
            })
            .clone()
    }
}

/// Builds a [`Schema`] the way Java's `SchemaBuilder` does; `build` checks what Java checks
/// (a default that fits the schema, fields only on structs, no duplicate field names).
#[derive(Debug, Clone)]
pub struct SchemaBuilder {
    inner: SchemaInner,
}

impl SchemaBuilder {
    pub fn new(type_: Type) -> Self {
        Self {
            inner: SchemaInner {
                type_,
                optional: false,
                default: None,
                name: None,
                version: None,
                doc: None,
                parameters: Vec::new(),
                key: None,
                value: None,
                fields: Vec::new(),
            },
        }
    }
    pub fn struct_() -> Self {
        Self::new(Type::Struct)
    }
    pub fn array(element: Schema) -> Self {
        let mut b = Self::new(Type::Array);
        b.inner.value = Some(element);
        b
    }
    pub fn map(key: Schema, value: Schema) -> Self {
        let mut b = Self::new(Type::Map);
        b.inner.key = Some(key);
        b.inner.value = Some(value);
        b
    }
    pub fn optional(mut self) -> Self {
        self.inner.optional = true;
        self
    }
    pub fn required(mut self) -> Self {
        self.inner.optional = false;
        self
    }
    pub fn name(mut self, name: impl Into<String>) -> Self {
        self.inner.name = Some(name.into());
        self
    }
    pub fn version(mut self, version: i32) -> Self {
        self.inner.version = Some(version);
        self
    }
    pub fn doc(mut self, doc: impl Into<String>) -> Self {
        self.inner.doc = Some(doc.into());
        self
    }
    /// Sets a parameter, replacing an earlier value of the same key in place.
    pub fn parameter(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        let (key, value) = (key.into(), value.into());
        match self.inner.parameters.iter_mut().find(|(k, _)| *k == key) {
            Some(slot) => slot.1 = value,
            None => self.inner.parameters.push((key, value)),
        }
        self
    }
    pub fn default_value(mut self, value: Value) -> Self {
        self.inner.default = Some(value);
        self
    }
    pub fn field(mut self, name: impl Into<String>, schema: Schema) -> Self {
        let index = self.inner.fields.len();
        self.inner.fields.push(Field {
            name: name.into(),
            index,
            schema,
        });
        self
    }

    pub fn build(self) -> Result<Schema, DataError> {
        let inner = &self.inner;
        let what = inner
            .name
            .clone()
            .unwrap_or_else(|| inner.type_.name().to_string());
        if !inner.fields.is_empty() && inner.type_ != Type::Struct {
            return Err(DataError::InvalidSchema(format!(
                "{what}: only struct schemas have fields"
            )));
        }
        for (i, f) in inner.fields.iter().enumerate() {
            if inner.fields[..i].iter().any(|g| g.name == f.name) {
                return Err(DataError::InvalidSchema(format!(
                    "{what}: the field {} is defined twice",
                    f.name
                )));
            }
        }
        if matches!(inner.type_, Type::Array | Type::Map) && inner.value.is_none()
            || inner.type_ == Type::Map && inner.key.is_none()
        {
            return Err(DataError::InvalidSchema(format!(
                "{what}: arrays need an element schema, maps a key and a value schema"
            )));
        }
        let schema = self.build_unchecked();
        if let Some(default) = schema.default_value() {
            validate_value(&format!("default of {what}"), &schema, Some(default))
                .map_err(|e| DataError::InvalidSchema(e.to_string()))?;
        }
        Ok(schema)
    }

    fn build_unchecked(self) -> Schema {
        Schema(Arc::new(self.inner))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn type_names_are_the_wire_names() {
        for t in [
            Type::Int8,
            Type::Float32,
            Type::Float64,
            Type::Map,
            Type::Struct,
        ] {
            assert_eq!(Type::from_name(t.name()), Some(t));
        }
        assert_eq!(Type::Float32.name(), "float");
        assert_eq!(Type::Float64.name(), "double");
        assert_eq!(Type::Float64.to_string(), "FLOAT64");
        assert_eq!(Type::Int32.to_string(), "INT32");
    }

    #[test]
    fn a_struct_schema_keeps_field_order_and_indexes() {
        let s = SchemaBuilder::struct_()
            .name("com.example.Person")
            .version(2)
            .doc("a person")
            .field("name", Schema::string())
            .field(
                "age",
                SchemaBuilder::new(Type::Int32)
                    .optional()
                    .build()
                    .expect("valid"),
            )
            .build()
            .expect("valid");
        assert_eq!(
            s.fields()
                .iter()
                .map(|f| (f.name.as_str(), f.index))
                .collect::<Vec<_>>(),
            [("name", 0), ("age", 1)]
        );
        assert!(s.field("age").expect("age").schema.is_optional());
        assert_eq!(
            (s.name(), s.version(), s.doc()),
            (Some("com.example.Person"), Some(2), Some("a person"))
        );
    }

    #[test]
    fn parameters_keep_insertion_order_and_replace_in_place() {
        let s = SchemaBuilder::new(Type::String)
            .parameter("b", "1")
            .parameter("a", "2")
            .parameter("b", "3")
            .build()
            .expect("valid");
        assert_eq!(
            s.parameters(),
            [
                ("b".to_string(), "3".to_string()),
                ("a".to_string(), "2".to_string())
            ]
        );
    }

    #[test]
    fn build_refuses_what_java_refuses() {
        let dup = SchemaBuilder::struct_()
            .field("a", Schema::int8())
            .field("a", Schema::int8())
            .build();
        assert!(matches!(dup, Err(DataError::InvalidSchema(m)) if m.contains("defined twice")));
        let fields_on_int = SchemaBuilder::new(Type::Int32)
            .field("a", Schema::int8())
            .build();
        assert!(fields_on_int.is_err());
        let bad_default = SchemaBuilder::new(Type::Int32)
            .default_value(Value::String("x".into()))
            .build();
        assert!(matches!(bad_default, Err(DataError::InvalidSchema(m)) if m.contains("INT32")));
        let good_default = SchemaBuilder::new(Type::Int32)
            .default_value(Value::Int32(7))
            .build()
            .expect("valid");
        assert_eq!(good_default.default_value(), Some(&Value::Int32(7)));
    }
}
