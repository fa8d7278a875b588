//! `org.apache.kafka.connect.json.JsonConverter`: Connect data to the exact bytes Kafka's converter
//! writes and back (checked against fixtures made by the real jar), with `schemas.enable`,
//! `decimal.format` and `replace.null.with.default`.

use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;
use num_bigint::BigInt;
use tributary_connect_api::logical;
use tributary_connect_api::{Decimal, Schema, SchemaBuilder, Struct, Type, Value};

use super::json_text::{
    Json, parse, parse_payload, push_java_double, push_java_float, split_envelope, string,
    typed_value,
};
use crate::error::{Error, Result};

/// How decimals are written in payloads.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum DecimalFormat {
    /// The unscaled value's bytes, base64 (Java's default).
    #[default]
    Base64,
    /// A JSON number.
    Numeric,
}

#[derive(Debug, Clone)]
pub struct JsonConverter {
    schemas_enable: bool,
    decimal_format: DecimalFormat,
    replace_null_with_default: bool,
    /// The envelope's `"schema"` text for the last schema seen. Records of one stream share one
    /// schema, so it is rendered once, not per record (Java keeps a cache for the same reason).
    last_schema: SchemaCache,
    /// The last envelope schema text read and what it parsed to, for the same reason the
    /// other way: parsing a 300-byte schema per record was most of a sink's CPU.
    last_read: ReadCache,
}

#[derive(Debug, Default)]
/// The last envelope schema read: its text and what it parsed to. The lock is held only to
/// take or replace it, never while a record is scanned (a converter is shared, `Sync`).
struct ReadCache(std::sync::Mutex<Option<std::sync::Arc<SchemaRead>>>);

/// A schema's text and what it parsed to (`None`: a null schema).
type SchemaRead = (Vec<u8>, Option<Schema>);

impl Clone for ReadCache {
    fn clone(&self) -> Self {
        Self::default()
    }
}

#[derive(Debug, Default)]
struct SchemaCache(std::sync::Mutex<Option<(Schema, std::sync::Arc<str>)>>);

impl Clone for SchemaCache {
    /// A copy starts empty: the cache is an optimisation, not state.
    fn clone(&self) -> Self {
        Self::default()
    }
}

impl Default for JsonConverter {
    /// Java's defaults.
    fn default() -> Self {
        Self::new(true, DecimalFormat::Base64, true)
    }
}

impl JsonConverter {
    pub fn new(
        schemas_enable: bool,
        decimal_format: DecimalFormat,
        replace_null_with_default: bool,
    ) -> Self {
        Self {
            schemas_enable,
            decimal_format,
            replace_null_with_default,
            last_schema: SchemaCache::default(),
            last_read: ReadCache::default(),
        }
    }

    pub fn schemas_enable(&self) -> bool {
        self.schemas_enable
    }

    pub fn decimal_format(&self) -> DecimalFormat {
        self.decimal_format
    }

    pub fn replace_null_with_default(&self) -> bool {
        self.replace_null_with_default
    }

    /// The schema's envelope text, rendered once per distinct schema in a row.
    fn schema_json(&self, schema: &Schema) -> Result<std::sync::Arc<str>> {
        if let Ok(cache) = self.last_schema.0.lock()
            && let Some((cached, text)) = cache.as_ref()
            && cached.is_same(schema)
        {
            return Ok(text.clone());
        }
        let mut text = String::new();
        self.write_schema(schema, None, &mut text)?;
        let text: std::sync::Arc<str> = text.into();
        if let Ok(mut cache) = self.last_schema.0.lock() {
            *cache = Some((schema.clone(), text.clone()));
        }
        Ok(text)
    }

    /// The record bytes for `value` under `schema`; `None` (a null record) when both are absent.
    pub fn from_connect_data(
        &self,
        schema: Option<&Schema>,
        value: Option<&Value>,
    ) -> Result<Option<Vec<u8>>> {
        if schema.is_none() && value.is_none() {
            return Ok(None);
        }
        let mut out = String::new();
        if self.schemas_enable {
            out.push_str("{\"schema\":");
            match schema {
                Some(s) => out.push_str(&self.schema_json(s)?),
                None => out.push_str("null"),
            }
            out.push_str(",\"payload\":");
            self.write_value(schema, value, &mut out)?;
            out.push('}');
        } else {
            self.write_value(schema, value, &mut out)?;
        }
        Ok(Some(out.into_bytes()))
    }

    /// The schema envelope, keys in Java's order; `field` is added last for struct fields.
    fn write_schema(&self, schema: &Schema, field: Option<&str>, out: &mut String) -> Result<()> {
        out.push_str("{\"type\":");
        string(schema.type_().name(), out);
        match schema.type_() {
            Type::Array => {
                out.push_str(",\"items\":");
                self.write_schema(element(schema)?, None, out)?;
            }
            Type::Map => {
                out.push_str(",\"keys\":");
                self.write_schema(
                    schema
                        .key_schema()
                        .ok_or_else(|| conversion("map schema without key schema"))?,
                    None,
                    out,
                )?;
                out.push_str(",\"values\":");
                self.write_schema(element(schema)?, None, out)?;
            }
            Type::Struct => {
                out.push_str(",\"fields\":[");
                for (i, f) in schema.fields().iter().enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    self.write_schema(&f.schema, Some(&f.name), out)?;
                }
                out.push(']');
            }
            _ => {}
        }
        out.push_str(if schema.is_optional() {
            ",\"optional\":true"
        } else {
            ",\"optional\":false"
        });
        if let Some(name) = schema.name() {
            out.push_str(",\"name\":");
            string(name, out);
        }
        if let Some(version) = schema.version() {
            out.push_str(&format!(",\"version\":{version}"));
        }
        if let Some(doc) = schema.doc() {
            out.push_str(",\"doc\":");
            string(doc, out);
        }
        if !schema.parameters().is_empty() {
            out.push_str(",\"parameters\":{");
            for (i, (k, v)) in schema.parameters().iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                string(k, out);
                out.push(':');
                string(v, out);
            }
            out.push('}');
        }
        if let Some(default) = schema.default_value() {
            out.push_str(",\"default\":");
            self.write_value(Some(schema), Some(default), out)?;
        }
        if let Some(field) = field {
            out.push_str(",\"field\":");
            string(field, out);
        }
        out.push('}');
        Ok(())
    }

    fn write_value(
        &self,
        schema: Option<&Schema>,
        value: Option<&Value>,
        out: &mut String,
    ) -> Result<()> {
        let Some(value) = value else {
            match schema {
                None => out.push_str("null"),
                Some(s) => match s.default_value() {
                    Some(default) if self.replace_null_with_default => {
                        return self.write_value(schema, Some(default), out);
                    }
                    _ if s.is_optional() => out.push_str("null"),
                    _ => {
                        return Err(conversion(
                            "null value for field that is required and has no default value",
                        ));
                    }
                },
            }
            return Ok(());
        };
        match value {
            // Written straight into the buffer: this runs once per field of every record.
            Value::Int8(n) => write_num(out, n),
            Value::Int16(n) => write_num(out, n),
            Value::Int32(n) | Value::Date(n) | Value::Time(n) => write_num(out, n),
            Value::Int64(n) | Value::Timestamp(n) => write_num(out, n),
            Value::Float32(f) => push_java_float(*f, out),
            Value::Float64(d) => push_java_double(*d, out),
            Value::Boolean(b) => out.push_str(if *b { "true" } else { "false" }),
            Value::String(s) => string(s, out),
            Value::Bytes(b) => string(&BASE64.encode(b), out),
            Value::Decimal(d) => match self.decimal_format {
                DecimalFormat::Base64 => string(&BASE64.encode(logical::decimal_to_bytes(d)), out),
                DecimalFormat::Numeric => out.push_str(&plain_decimal(d)),
            },
            Value::Array(items) => {
                let element = schema.map(element).transpose()?;
                out.push('[');
                for (i, item) in items.iter().enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    self.write_value(element, item.as_ref(), out)?;
                }
                out.push(']');
            }
            Value::Map(entries) => {
                let key_schema = schema.and_then(Schema::key_schema);
                let value_schema = schema.and_then(Schema::value_schema);
                // String keys make an object; any other key type a list of [key, value] pairs.
                let object_mode = match key_schema {
                    Some(k) => k.type_() == Type::String,
                    None => entries
                        .iter()
                        .all(|(k, _)| matches!(k, Some(Value::String(_)))),
                };
                out.push(if object_mode { '{' } else { '[' });
                for (i, (k, v)) in entries.iter().enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    if object_mode {
                        match k {
                            Some(Value::String(k)) => string(k, out),
                            _ => {
                                return Err(conversion(
                                    "a map key that is not a string under a string key schema",
                                ));
                            }
                        }
                        out.push(':');
                        self.write_value(value_schema, v.as_ref(), out)?;
                    } else {
                        out.push('[');
                        self.write_value(key_schema, k.as_ref(), out)?;
                        out.push(',');
                        self.write_value(value_schema, v.as_ref(), out)?;
                        out.push(']');
                    }
                }
                out.push(if object_mode { '}' } else { ']' });
            }
            Value::Struct(s) => {
                out.push('{');
                for (i, (f, v)) in s.fields_with_values().enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    string(&f.name, out);
                    out.push(':');
                    self.write_value(Some(&f.schema), v, out)?;
                }
                out.push('}');
            }
        }
        Ok(())
    }
}

impl JsonConverter {
    /// The schema and value of record bytes; `(None, None)` for a null record.
    pub fn to_connect_data(&self, bytes: Option<&[u8]>) -> Result<(Option<Schema>, Option<Value>)> {
        self.read(bytes, true)
    }

    /// [`Self::to_connect_data`] by the general path only (whole tree, no schema cache, no
    /// direct reader): what the fast paths must always agree with. For the fuzz target.
    #[doc(hidden)]
    pub fn to_connect_data_general(
        &self,
        bytes: Option<&[u8]>,
    ) -> Result<(Option<Schema>, Option<Value>)> {
        self.read(bytes, false)
    }

    fn read(&self, bytes: Option<&[u8]>, fast: bool) -> Result<(Option<Schema>, Option<Value>)> {
        let Some(bytes) = bytes else {
            return Ok((None, None));
        };
        if fast
            && self.schemas_enable
            && let Some((known, payload_text)) = self.split_known(bytes)
            // A schema it refuses goes the general way too: there a payload that is not JSON
            // is reported first, as Java's parser reports it before reading any schema.
            && let Some(Ok(schema)) = match known {
                Ok(schema) => Some(Ok(schema)),
                Err(text) => self.schema_from_text(text),
            }
        {
            // Straight into values when it can; otherwise the tree, which also words errors.
            if let Some(s) = schema.as_ref()
                && let Some(value) = typed_value(payload_text, s, self.replace_null_with_default)
            {
                return Ok((schema, value));
            }
            // Text that is not JSON goes the general way, which says where from the start.
            if let Ok(payload) = parse_payload(payload_text.as_bytes()) {
                let value = self.read_value(schema.as_ref(), &payload)?;
                return Ok((schema, value));
            }
        }
        let json = parse(bytes).map_err(|e| {
            Error::Conversion(format!(
                "Converting byte[] to Kafka Connect data failed due to serialization error: {e}"
            ))
        })?;
        if !self.schemas_enable {
            return Ok((None, self.read_value(None, &json)?));
        }
        let envelope_ok = matches!(&json, Json::Object(m) if m.len() == 2 && json.get("schema").is_some() && json.get("payload").is_some());
        if !envelope_ok {
            return Err(conversion(
                "JsonConverter with schemas.enable requires \"schema\" and \"payload\" fields and may not contain additional fields. \
                 If you are trying to deserialize plain JSON data, set schemas.enable=false in your converter configuration.",
            ));
        }
        let schema = match json.get("schema") {
            Some(Json::Null) | None => None,
            Some(s) => Some(self.read_schema(s)?),
        };
        let value = self.read_value(schema.as_ref(), json.get("payload").unwrap_or(&Json::Null))?;
        Ok((schema, value))
    }

    /// The envelope's schema text and payload text; for a schema whose text is the one
    /// parsed last, the schema itself instead of its text.
    fn split_known<'a>(
        &self,
        bytes: &'a [u8],
    ) -> Option<(Result<Option<Schema>, &'a str>, &'a str)> {
        let last = self.last_read.0.lock().ok().and_then(|c| c.clone());
        let (schema_text, payload) = split_envelope(bytes, last.as_ref().map(|l| l.0.as_slice()))?;
        let schema = match (schema_text, last) {
            (Some(text), _) => Err(text),
            (None, Some(last)) => Ok(last.1.clone()),
            (None, None) => return None,
        };
        Some((schema, payload))
    }

    /// The envelope's schema from its text, parsed once per distinct text in a row; `None`
    /// when the text is not JSON (the general path then says where, counting from the start
    /// of the record).
    fn schema_from_text(&self, text: &str) -> Option<Result<Option<Schema>>> {
        let text = text.as_bytes();
        let schema = match parse(text).ok()? {
            Json::Null => None,
            json => match self.read_schema(&json) {
                Ok(s) => Some(s),
                Err(e) => return Some(Err(e)),
            },
        };
        if let Ok(mut cache) = self.last_read.0.lock() {
            *cache = Some(std::sync::Arc::new((text.to_vec(), schema.clone())));
        }
        Some(Ok(schema))
    }

    fn read_schema(&self, json: &Json) -> Result<Schema> {
        let type_name = match json.get("type") {
            Some(Json::String(t)) => t.as_str(),
            _ => return Err(conversion("Schema must contain 'type' field")),
        };
        let type_ = Type::from_name(type_name)
            .ok_or_else(|| conversion(&format!("Unknown schema type: {type_name}")))?;
        let mut b = match type_ {
            Type::Array => {
                let items = json
                    .get("items")
                    .ok_or_else(|| conversion("Array schema did not specify the element type"))?;
                SchemaBuilder::array(self.read_schema(items)?)
            }
            Type::Map => {
                let keys = json
                    .get("keys")
                    .ok_or_else(|| conversion("Map schema did not specify the key type"))?;
                let values = json
                    .get("values")
                    .ok_or_else(|| conversion("Map schema did not specify the value type"))?;
                SchemaBuilder::map(self.read_schema(keys)?, self.read_schema(values)?)
            }
            Type::Struct => {
                let mut b = SchemaBuilder::struct_();
                let Some(Json::Array(fields)) = json.get("fields") else {
                    return Err(conversion(
                        "Struct schema's \"fields\" argument is not an array.",
                    ));
                };
                for f in fields {
                    let Some(Json::String(name)) = f.get("field") else {
                        return Err(conversion(
                            "Struct schema's field name not specified properly",
                        ));
                    };
                    b = b.field(name.clone(), self.read_schema(f)?);
                }
                b
            }
            other => SchemaBuilder::new(other),
        };
        if matches!(json.get("optional"), Some(Json::Bool(true))) {
            b = b.optional();
        }
        if let Some(Json::String(name)) = json.get("name") {
            b = b.name(name.clone());
        }
        if let Some(Json::Number(v)) = json.get("version") {
            b = b.version(
                v.parse()
                    .map_err(|_| conversion(&format!("Schema version {v} is not an integer")))?,
            );
        }
        if let Some(Json::String(doc)) = json.get("doc") {
            b = b.doc(doc.clone());
        }
        if let Some(Json::Object(params)) = json.get("parameters") {
            for (k, v) in params {
                let Json::String(v) = v else {
                    return Err(conversion("Schema parameters must have string values."));
                };
                b = b.parameter(k.clone(), v.clone());
            }
        }
        if let Some(default) = json.get("default").filter(|d| **d != Json::Null) {
            // The default is read under the schema as built so far, without a default of its own.
            let bare = b.clone().build().map_err(|e| conversion(&e.to_string()))?;
            if let Some(v) = self.read_value(Some(&bare), default)? {
                b = b.default_value(v);
            }
        }
        b.build().map_err(|e| conversion(&e.to_string()))
    }

    fn read_value(&self, schema: Option<&Schema>, json: &Json) -> Result<Option<Value>> {
        if *json == Json::Null {
            return match schema {
                None => Ok(None),
                Some(s) => match s.default_value() {
                    Some(d) if self.replace_null_with_default => Ok(Some(d.clone())),
                    _ if s.is_optional() => Ok(None),
                    _ => Err(conversion(&format!(
                        "Invalid null value for required {} field",
                        s.type_()
                    ))),
                },
            };
        }
        let Some(schema) = schema else {
            return self.read_schemaless(json).map(Some);
        };
        let wrong = || {
            conversion(&format!(
                "a JSON {} does not fit schema {}",
                kind(json),
                schema
                    .name()
                    .map(str::to_string)
                    .unwrap_or_else(|| schema.type_().to_string())
            ))
        };
        let int = |json: &Json| -> Result<i64> {
            match json {
                Json::Number(n) if json.is_integral() => n
                    .parse()
                    .map_err(|_| conversion(&format!("{n} is out of range"))),
                _ => Err(wrong()),
            }
        };
        let fits = |n: i64, v: Option<Value>| {
            v.ok_or_else(|| conversion(&format!("{n} is out of range for {}", schema.type_())))
        };
        let value = match (schema.name(), schema.type_()) {
            (Some(logical::DECIMAL), Type::Bytes) => {
                let scale =
                    logical::decimal_scale(schema).map_err(|e| conversion(&e.to_string()))?;
                match json {
                    Json::Number(n) => Value::Decimal(decimal_from_text(n, scale)?),
                    Json::String(b64) => {
                        Value::Decimal(logical::decimal_from_bytes(&decode_base64(b64)?, scale))
                    }
                    _ => return Err(wrong()),
                }
            }
            // Date, Time and Timestamp: the primitive, then the data model's own conversion
            // (which also refuses a Time outside one day).
            (Some(logical::DATE | logical::TIME), Type::Int32) => {
                let n = i32::try_from(int(json)?).map_err(|_| wrong())?;
                logical::from_primitive(schema, Value::Int32(n))
                    .map_err(|e| conversion(&e.to_string()))?
            }
            (Some(logical::TIMESTAMP), Type::Int64) => {
                logical::from_primitive(schema, Value::Int64(int(json)?))
                    .map_err(|e| conversion(&e.to_string()))?
            }
            (_, Type::Int8) => {
                int(json).and_then(|n| fits(n, i8::try_from(n).ok().map(Value::Int8)))?
            }
            (_, Type::Int16) => {
                int(json).and_then(|n| fits(n, i16::try_from(n).ok().map(Value::Int16)))?
            }
            (_, Type::Int32) => {
                int(json).and_then(|n| fits(n, i32::try_from(n).ok().map(Value::Int32)))?
            }
            (_, Type::Int64) => Value::Int64(int(json)?),
            (_, Type::Float32) => match json {
                Json::Number(n) => Value::Float32(n.parse().map_err(|_| wrong())?),
                _ => return Err(wrong()),
            },
            (_, Type::Float64) => match json {
                Json::Number(n) => Value::Float64(n.parse().map_err(|_| wrong())?),
                _ => return Err(wrong()),
            },
            (_, Type::Boolean) => match json {
                Json::Bool(b) => Value::Boolean(*b),
                _ => return Err(wrong()),
            },
            (_, Type::String) => match json {
                Json::String(s) => Value::String(s.clone()),
                _ => return Err(wrong()),
            },
            (_, Type::Bytes) => match json {
                Json::String(s) => Value::Bytes(decode_base64(s)?),
                _ => return Err(wrong()),
            },
            (_, Type::Array) => match json {
                Json::Array(items) => {
                    let element = element(schema)?;
                    Value::Array(
                        items
                            .iter()
                            .map(|i| self.read_value(Some(element), i))
                            .collect::<Result<_>>()?,
                    )
                }
                _ => return Err(wrong()),
            },
            (_, Type::Map) => {
                let key_schema = schema
                    .key_schema()
                    .ok_or_else(|| conversion("map schema without key schema"))?;
                let value_schema = element(schema)?;
                let entries = match json {
                    Json::Object(members) if key_schema.type_() == Type::String => members
                        .iter()
                        .map(|(k, v)| {
                            Ok((
                                Some(Value::String(k.clone())),
                                self.read_value(Some(value_schema), v)?,
                            ))
                        })
                        .collect::<Result<Vec<_>>>()?,
                    Json::Array(pairs) if key_schema.type_() != Type::String => pairs
                        .iter()
                        .map(|pair| match pair {
                            Json::Array(kv) if kv.len() == 2 => Ok((
                                self.read_value(Some(key_schema), &kv[0])?,
                                self.read_value(Some(value_schema), &kv[1])?,
                            )),
                            _ => Err(conversion("Found invalid map entry instead of array tuple")),
                        })
                        .collect::<Result<Vec<_>>>()?,
                    _ => return Err(wrong()),
                };
                Value::Map(entries)
            }
            (_, Type::Struct) => {
                if !matches!(json, Json::Object(_)) {
                    return Err(wrong());
                }
                let mut s = Struct::new(schema.clone()).map_err(|e| conversion(&e.to_string()))?;
                for f in schema.fields() {
                    let v =
                        self.read_value(Some(&f.schema), json.get(&f.name).unwrap_or(&Json::Null))?;
                    s.put_field(f, v).map_err(|e| conversion(&e.to_string()))?;
                }
                Value::Struct(s)
            }
        };
        Ok(Some(value))
    }

    /// Without a schema, as Java infers: integral numbers are int64, other numbers float64,
    /// objects maps with string keys.
    fn read_schemaless(&self, json: &Json) -> Result<Value> {
        Ok(match json {
            Json::Null => return Err(conversion("null has no schemaless value")),
            Json::Bool(b) => Value::Boolean(*b),
            Json::Number(n) if json.is_integral() => match n.parse() {
                Ok(i) => Value::Int64(i),
                Err(_) => Value::Float64(
                    n.parse()
                        .map_err(|_| conversion(&format!("{n} is not a number")))?,
                ),
            },
            Json::Number(n) => Value::Float64(
                n.parse()
                    .map_err(|_| conversion(&format!("{n} is not a number")))?,
            ),
            Json::String(s) => Value::String(s.clone()),
            Json::Array(items) => Value::Array(
                items
                    .iter()
                    .map(|i| self.read_value(None, i))
                    .collect::<Result<_>>()?,
            ),
            Json::Object(members) => Value::Map(
                members
                    .iter()
                    .map(|(k, v)| Ok((Some(Value::String(k.clone())), self.read_value(None, v)?)))
                    .collect::<Result<_>>()?,
            ),
        })
    }
}

fn write_num(out: &mut String, n: impl std::fmt::Display) {
    use std::fmt::Write;
    // Writing into a String cannot fail.
    let _ = write!(out, "{n}");
}

fn kind(json: &Json) -> &'static str {
    match json {
        Json::Null => "null",
        Json::Bool(_) => "boolean",
        Json::Number(_) => "number",
        Json::String(_) => "string",
        Json::Array(_) => "array",
        Json::Object(_) => "object",
    }
}

fn decode_base64(text: &str) -> Result<Vec<u8>> {
    BASE64
        .decode(text)
        .map_err(|e| conversion(&format!("invalid base64 bytes: {e}")))
}

/// A JSON number as a decimal of the schema's scale; refused when that would round it, or make
/// an unscaled value longer than [`logical::MAX_DECIMAL_DIGITS`] (`1e999999999` is 24 bytes).
fn decimal_from_text(text: &str, scale: i32) -> Result<Decimal> {
    let bad = || conversion(&format!("{text} is not a decimal of scale {scale}"));
    let (mantissa, exp) = match text.split_once(['e', 'E']) {
        Some((m, e)) => (m, e.parse::<i32>().map_err(|_| bad())?),
        None => (text, 0),
    };
    let (int_part, frac_part) = mantissa.split_once('.').unwrap_or((mantissa, ""));
    let digits = format!("{int_part}{frac_part}");
    let unscaled: BigInt = digits.parse().map_err(|_| bad())?;
    if unscaled.sign() == num_bigint::Sign::NoSign {
        return Ok(Decimal { unscaled, scale });
    }
    // value = unscaled × 10^(exp - frac digits); rescale to `scale`. In i64: neither the
    // exponent nor the scale may overflow the arithmetic.
    let text_scale = frac_part.len() as i64 - i64::from(exp);
    let shift = i64::from(scale) - text_scale;
    let length = digits.len() as i64;
    let unscaled = if shift >= 0 {
        if length + shift > i64::from(logical::MAX_DECIMAL_DIGITS) {
            return Err(conversion(&format!(
                "{text} as a decimal of scale {scale} would have more than {} digits",
                logical::MAX_DECIMAL_DIGITS
            )));
        }
        unscaled * BigInt::from(10u8).pow(shift as u32)
    } else {
        // A non-zero value shorter than the divisor cannot be a multiple of it.
        if -shift > length {
            return Err(bad());
        }
        let divisor = BigInt::from(10u8).pow((-shift) as u32);
        if &unscaled % &divisor != BigInt::from(0u8) {
            return Err(bad());
        }
        unscaled / divisor
    };
    Ok(Decimal { unscaled, scale })
}

fn element(schema: &Schema) -> Result<&Schema> {
    schema
        .value_schema()
        .ok_or_else(|| conversion("array or map schema without value schema"))
}

fn conversion(reason: &str) -> Error {
    Error::Conversion(reason.to_string())
}

/// A decimal as `BigDecimal.toPlainString` writes it: `-0.01`, `10.50`, `1200` for scale -2.
fn plain_decimal(d: &Decimal) -> String {
    let digits = d.unscaled.magnitude().to_string();
    let sign = if d.unscaled.sign() == num_bigint::Sign::Minus {
        "-"
    } else {
        ""
    };
    if d.scale <= 0 {
        return format!("{sign}{digits}{}", "0".repeat((-d.scale) as usize));
    }
    let scale = d.scale as usize;
    let padded = if digits.len() <= scale {
        format!("{}{digits}", "0".repeat(scale - digits.len() + 1))
    } else {
        digits
    };
    let (int_part, frac_part) = padded.split_at(padded.len() - scale);
    format!("{sign}{int_part}.{frac_part}")
}

#[cfg(test)]
mod typed_tests {
    use super::*;

    fn schema(text: &str) -> Schema {
        JsonConverter::default()
            .read_schema(&parse(text.as_bytes()).unwrap())
            .unwrap()
    }

    /// The general path: the payload's tree, then values.
    fn general(c: &JsonConverter, schema: &Schema, payload: &str) -> Option<Result<Option<Value>>> {
        let tree = parse_payload(payload.as_bytes()).ok()?;
        Some(c.read_value(Some(schema), &tree))
    }

    const ROW: &str = r#"{"type":"struct","name":"row","optional":false,"fields":[
        {"field":"id","type":"int64","optional":false},
        {"field":"name","type":"string","optional":true},
        {"field":"score","type":"int32","optional":false,"default":7},
        {"field":"tiny","type":"int8","optional":true},
        {"field":"f","type":"float","optional":true},
        {"field":"d","type":"double","optional":true},
        {"field":"ok","type":"boolean","optional":true},
        {"field":"raw","type":"bytes","optional":true},
        {"field":"day","type":"int32","name":"org.apache.kafka.connect.data.Date","version":1,"optional":true},
        {"field":"at","type":"int64","name":"org.apache.kafka.connect.data.Timestamp","version":1,"optional":true},
        {"field":"tags","type":"array","items":{"type":"string","optional":true},"optional":true},
        {"field":"inner","type":"struct","optional":true,"fields":[{"field":"x","type":"int16","optional":false}]}]}"#;

    /// The direct reader returns only what the tree would (never another value, never a
    /// value where the tree refuses), and does take on the everyday shapes.
    #[test]
    fn reading_straight_into_values_agrees_with_the_tree() {
        let row = schema(ROW);
        // (payload, whether the direct reader must take it on)
        let cases = [
            (r#"{"id":1,"name":"a","score":2}"#, true),
            (r#"{"score":2,"name":"a","id":1}"#, true),
            (r#" { "id" : -9223372036854775808 , "name" : null } "#, true),
            (
                r#"{"id":1,"name":"caf\u00e9 \"q\" \ud83d\ude00","score":null}"#,
                true,
            ),
            (r#"{"id":1,"n\u0061me":"escaped member name"}"#, true),
            (
                r#"{"id":1,"extra":{"deep":[1,{"a":null}],"s":"}"},"more":[]}"#,
                true,
            ),
            (
                r#"{"id":1,"tiny":-128,"f":1.5e3,"d":-0.0,"ok":false,"raw":"AQI="}"#,
                true,
            ),
            (
                r#"{"id":1,"f":3,"d":1E-7,"day":19000,"at":1700000000000}"#,
                true,
            ),
            (r#"{"id":1,"tags":["a",null,"b"],"inner":{"x":300}}"#, true),
            (r#"{"id":1,"tags":[],"inner":null}"#, true),
            // Refused or unusual: the general path decides (and words the error).
            (r#"{"id":1,"tiny":128}"#, false),
            (r#"{"id":1.0}"#, false),
            (r#"{"id":1e2}"#, false),
            (r#"{"id":"1"}"#, false),
            (r#"{"name":"no id"}"#, false),
            (r#"{"id":1,"id":2}"#, false),
            (r#"{"id":1,"raw":"not base64!"}"#, false),
            (r#"{"id":1,"inner":{}}"#, false),
            (r#"{"id":1,"ok":"true"}"#, false),
            (r#"{"id":1,"tags":"a"}"#, false),
            (r#"{"id":1,}"#, false),
            (r#"{"id":1 "name":"a"}"#, false),
            (r#"{"id":01}"#, false),
            (r#"{"id":1} x"#, false),
            (r#"[1]"#, false),
            (r#"null"#, false),
        ];
        for replace in [true, false] {
            let c = JsonConverter::new(true, DecimalFormat::Base64, replace);
            for (payload, taken) in cases {
                let fast = typed_value(payload, &row, replace);
                let slow = general(&c, &row, payload);
                match (&fast, &slow) {
                    (Some(v), Some(Ok(w))) => assert_eq!(v, w, "{payload}"),
                    (Some(v), other) => panic!("{payload}: direct {v:?}, tree {other:?}"),
                    // Without replacement the required `score` refuses a missing member.
                    (None, _) => assert!(!taken || !replace, "{payload}: not taken on"),
                }
            }
        }
        // A default replaces a null or a missing member only when asked to; without, a
        // required field's null is refused (by the general path, which says so).
        let Some(Some(Value::Struct(with))) = typed_value(r#"{"id":1,"score":null}"#, &row, true)
        else {
            panic!("replaced")
        };
        assert_eq!(with.get("score").unwrap(), Some(&Value::Int32(7)));
        assert_eq!(typed_value(r#"{"id":1}"#, &row, false), None);
        let c = JsonConverter::new(true, DecimalFormat::Base64, false);
        assert!(general(&c, &row, r#"{"id":1}"#).unwrap().is_err());
    }

    /// Found by the json_converter fuzz target: a refused schema in a record that is not JSON
    /// reported the schema, where the general path (and Java) reports the JSON first.
    #[test]
    fn a_record_that_is_not_json_says_so_before_judging_its_schema() {
        let c = JsonConverter::default();
        let record = br#"{"schema":{"type":"nope","optional":true},"payload":{"a":1,}}"#;
        for _ in 0..2 {
            let fast = c.to_connect_data(Some(record)).unwrap_err().to_string();
            let general = c
                .to_connect_data_general(Some(record))
                .unwrap_err()
                .to_string();
            assert_eq!(fast, general);
            assert!(fast.contains("serialization error"), "{fast}");
        }
        let fine = br#"{"schema":{"type":"nope","optional":true},"payload":1}"#;
        let e = c.to_connect_data(Some(fine)).unwrap_err().to_string();
        assert!(e.contains("Unknown schema type: nope"), "{e}");
    }

    /// Found by the json_converter fuzz target (a CI run hung for 30 minutes on it): a Decimal
    /// schema of scale 693,022,067 made a 12345.67 payload a number of 693 million digits.
    #[test]
    fn decimals_no_store_could_keep_are_refused_at_once() {
        let c = JsonConverter::new(true, DecimalFormat::Numeric, true);
        let record = |scale: &str, payload: &str| {
            format!(
                r#"{{"schema":{{"type":"bytes","name":"org.apache.kafka.connect.data.Decimal","version":1,"parameters":{{"scale":"{scale}"}}}},"payload":{payload}}}"#
            )
        };
        let started = std::time::Instant::now();
        for (scale, payload, says) in [
            (
                "000000000693022067",
                "12345.67",
                "693022067 is out of range",
            ),
            ("2", "1e999999999", "would have more than 150000 digits"),
            ("2", "1e2147483647", "would have more than 150000 digits"),
            ("2", "1e-2147483648", "is not a decimal of scale 2"),
            ("2", "12345.6789", "is not a decimal of scale 2"),
        ] {
            let e = c
                .to_connect_data(Some(record(scale, payload).as_bytes()))
                .unwrap_err()
                .to_string();
            assert!(e.contains(says), "{scale} {payload}: {e}");
        }
        assert!(started.elapsed() < std::time::Duration::from_secs(5));
        let (_, value) = c
            .to_connect_data(Some(record("2", "0e-2147483648").as_bytes()))
            .unwrap();
        let Some(Value::Decimal(zero)) = value else {
            panic!("{value:?}")
        };
        assert_eq!(
            (zero.unscaled.to_string(), zero.scale),
            ("0".to_string(), 2)
        );
        let (_, value) = c
            .to_connect_data(Some(record("2", "1.5e3").as_bytes()))
            .unwrap();
        let Some(Value::Decimal(d)) = value else {
            panic!("{value:?}")
        };
        assert_eq!((d.unscaled.to_string(), d.scale), ("150000".to_string(), 2));
    }

    #[test]
    fn maps_decimals_and_deep_nesting_go_the_general_way() {
        let map = schema(
            r#"{"type":"map","keys":{"type":"string","optional":false},"values":{"type":"int32","optional":false},"optional":false}"#,
        );
        assert_eq!(typed_value(r#"{"a":1}"#, &map, true), None);
        let dec = schema(
            r#"{"type":"bytes","name":"org.apache.kafka.connect.data.Decimal","version":1,"parameters":{"scale":"2"},"optional":false}"#,
        );
        assert_eq!(typed_value("\"MDk=\"", &dec, true), None);
        let deep = schema(
            r#"{"type":"array","items":{"type":"array","items":{"type":"int8","optional":true},"optional":true},"optional":false}"#,
        );
        assert_eq!(
            typed_value("[[1],[null]]", &deep, true).map(|v| v.is_some()),
            Some(true)
        );
        let c = JsonConverter::default();
        let text = format!("{}{}", "[".repeat(600), "]".repeat(600));
        assert_eq!(typed_value(&text, &deep, true), None);
        assert!(general(&c, &deep, &text).is_none());
    }
}
