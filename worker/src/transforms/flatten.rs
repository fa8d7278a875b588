//! Flatten: nested structs (or maps) become top-level fields named by their path, joined with
//! `delimiter`.

use tributary_connect_api::{
    ConfigDef, ConfigKey, ConfigType as T, Importance as I, Schema, SchemaBuilder, Struct, Type,
    Value,
};

use super::util::{
    self, MapEntries, build, copy_schema, java_class, put, require_map, struct_basics,
};
use super::{
    Record, Settings, Side, TransformError, TransformPlugin, TransformResult, Transformation,
};

fn def() -> ConfigDef {
    ConfigDef::new().define(
        ConfigKey::new(
            "delimiter",
            T::String,
            I::Medium,
            "Joins the names of nested fields.",
        )
        .default_value("."),
    )
}

pub const FLATTEN_KEY: TransformPlugin = TransformPlugin {
    class: "org.apache.kafka.connect.transforms.Flatten$Key",
    doc: "Flatten nested structs or maps into top-level fields.",
    def,
    create: |s| Ok(Box::new(Flatten::new(Side::Key, s))),
};

pub const FLATTEN_VALUE: TransformPlugin = TransformPlugin {
    class: "org.apache.kafka.connect.transforms.Flatten$Value",
    doc: "Flatten nested structs or maps into top-level fields.",
    def,
    create: |s| Ok(Box::new(Flatten::new(Side::Value, s))),
};

const PURPOSE: &str = "flattening";

#[derive(Debug)]
pub struct Flatten {
    side: Side,
    delimiter: String,
}

impl Flatten {
    fn new(side: Side, s: &Settings) -> Self {
        Self {
            side,
            delimiter: util::string(s, "delimiter").unwrap_or_else(|| ".".into()),
        }
    }

    fn name(&self, prefix: &str, field: &str) -> String {
        if prefix.is_empty() {
            field.to_string()
        } else {
            format!("{prefix}{}{field}", self.delimiter)
        }
    }

    fn flatten_map(
        &self,
        map: MapEntries,
        prefix: &str,
        out: &mut MapEntries,
    ) -> TransformResult<()> {
        for (k, v) in map {
            let key = match &k {
                Some(Value::String(s)) => s.clone(),
                other => format!("{other:?}"),
            };
            let name = self.name(prefix, &key);
            match v {
                None => out.push((Some(Value::String(name)), None)),
                Some(Value::Map(inner)) => self.flatten_map(inner, &name, out)?,
                Some(
                    v @ (Value::Int8(_)
                    | Value::Int16(_)
                    | Value::Int32(_)
                    | Value::Int64(_)
                    | Value::Float32(_)
                    | Value::Float64(_)
                    | Value::Boolean(_)
                    | Value::String(_)
                    | Value::Bytes(_)
                    | Value::Array(_)),
                ) => out.push((Some(Value::String(name)), Some(v))),
                Some(other) => {
                    return Err(TransformError(format!(
                        "Flatten transformation does not support class {} for record without schemas (for field {name}).",
                        java_class(Some(&other))
                    )));
                }
            }
        }
        Ok(())
    }

    fn flatten_schema(
        &self,
        schema: &Schema,
        prefix: &str,
        mut out: SchemaBuilder,
        optional: bool,
        parent_default: Option<&Struct>,
    ) -> TransformResult<SchemaBuilder> {
        for f in schema.fields() {
            let name = self.name(prefix, &f.name);
            let optional = optional || f.schema.is_optional();
            let default =
                f.schema.default_value().cloned().or_else(|| {
                    parent_default.and_then(|d| d.get(&f.name).ok().flatten().cloned())
                });
            if f.schema.type_() == Type::Struct {
                let nested_default = match &default {
                    Some(Value::Struct(s)) => Some(s.clone()),
                    _ => None,
                };
                out =
                    self.flatten_schema(&f.schema, &name, out, optional, nested_default.as_ref())?;
            } else {
                let mut b = copy_schema(&f.schema)?;
                if optional {
                    b = b.optional();
                }
                if let Some(d) = default {
                    b = b.default_value(d);
                }
                out = out.field(name, build(b)?);
            }
        }
        Ok(out)
    }

    fn flatten_struct(
        &self,
        value: Option<&Struct>,
        prefix: &str,
        out: &mut Struct,
    ) -> TransformResult<()> {
        let Some(value) = value else {
            return Ok(());
        };
        for (f, v) in value.fields_with_values() {
            let name = self.name(prefix, &f.name);
            if f.schema.type_() == Type::Struct {
                let nested = match v {
                    Some(Value::Struct(s)) => Some(s),
                    _ => None,
                };
                self.flatten_struct(nested, &name, out)?;
            } else {
                put(out, &name, v.cloned())?;
            }
        }
        Ok(())
    }
}

impl Transformation for Flatten {
    fn apply(&self, mut r: Record) -> TransformResult<Option<Record>> {
        if self.side.value(&r).is_none() {
            return Ok(Some(r));
        }
        let (schema, value) = self.side.take(&mut r);
        match schema {
            None => {
                let map = require_map(value, PURPOSE)?;
                let mut out = Vec::with_capacity(map.len());
                self.flatten_map(map, "", &mut out)?;
                self.side.set(&mut r, None, Some(Value::Map(out)));
            }
            Some(schema) => {
                let value = util::require_struct(value, PURPOSE)?;
                // As Java: the flat schema itself is required; the parent's optionality and
                // default reach the fields.
                let parent_default = match schema.default_value() {
                    Some(Value::Struct(s)) => Some(s.clone()),
                    _ => None,
                };
                let b = self.flatten_schema(
                    &schema,
                    "",
                    struct_basics(&schema),
                    schema.is_optional(),
                    parent_default.as_ref(),
                )?;
                let flat = build(b)?;
                let mut out = util::new_struct(&flat)?;
                self.flatten_struct(Some(&value), "", &mut out)?;
                self.side.set(&mut r, Some(flat), Some(Value::Struct(out)));
            }
        }
        Ok(Some(r))
    }
}
