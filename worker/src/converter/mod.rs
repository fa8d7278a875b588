//! Converters between Connect data and the bytes of Kafka records, byte-compatible with Apache
//! Kafka's: JSON (both directions), String, ByteArray, and the simple header converter.
//!
//! [`Converter`] is the configured form the task loops use: chosen by Java class name (or its
//! simple name) from `key.converter`/`value.converter` and their `.`-prefixed settings.

pub mod header;
pub mod json;
pub mod json_text;
pub mod simple;

use std::collections::BTreeMap;

use tributary_connect_api::{Schema, Value};

use crate::error::{Error, Result};
pub use header::SimpleHeaderConverter;
use json::{DecimalFormat, JsonConverter};
use simple::{ByteArrayConverter, StringConverter};

pub const STRING_CONVERTER: &str = "org.apache.kafka.connect.storage.StringConverter";
pub const BYTE_ARRAY_CONVERTER: &str = "org.apache.kafka.connect.converters.ByteArrayConverter";
pub const JSON_CONVERTER: &str = "org.apache.kafka.connect.json.JsonConverter";
pub const SIMPLE_HEADER_CONVERTER: &str = "org.apache.kafka.connect.storage.SimpleHeaderConverter";

/// Every converter class this worker has, for `GET /connector-plugins?connectorsOnly=false`.
pub const CONVERTER_CLASSES: &[&str] = &[BYTE_ARRAY_CONVERTER, JSON_CONVERTER, STRING_CONVERTER];

/// A configured key or value converter.
#[derive(Debug, Clone)]
pub enum Converter {
    String(StringConverter),
    ByteArray(ByteArrayConverter),
    Json(JsonConverter),
}

fn class_matches(given: &str, full: &str) -> bool {
    let simple = full.rsplit('.').next().unwrap_or(full);
    given == full || given == simple
}

impl Converter {
    /// Builds the converter `class` with its settings (keys without the `key.converter.` prefix).
    pub fn configure(class: &str, settings: &BTreeMap<String, String>) -> Result<Self> {
        let class = class.trim();
        if class_matches(class, STRING_CONVERTER) {
            if let Some(enc) = settings
                .get("converter.encoding")
                .or(settings.get("encoding"))
                && !enc.eq_ignore_ascii_case("UTF-8")
                && !enc.eq_ignore_ascii_case("UTF8")
            {
                return Err(Error::Config(format!(
                    "StringConverter encoding {enc} is not supported; only UTF-8 is"
                )));
            }
            return Ok(Converter::String(StringConverter));
        }
        if class_matches(class, BYTE_ARRAY_CONVERTER) {
            return Ok(Converter::ByteArray(ByteArrayConverter));
        }
        if class_matches(class, JSON_CONVERTER) {
            let flag = |key: &str, default: bool| -> Result<bool> {
                match settings.get(key).map(|v| v.trim().to_ascii_lowercase()) {
                    None => Ok(default),
                    Some(v) if v == "true" => Ok(true),
                    Some(v) if v == "false" => Ok(false),
                    Some(v) => Err(Error::Config(format!(
                        "Invalid value {v} for configuration {key}: Expected value to be either true or false"
                    ))),
                }
            };
            let decimal = match settings
                .get("decimal.format")
                .map(|v| v.trim().to_ascii_uppercase())
                .as_deref()
            {
                None | Some("BASE64") => DecimalFormat::Base64,
                Some("NUMERIC") => DecimalFormat::Numeric,
                Some(other) => {
                    return Err(Error::Config(format!(
                        "Invalid value {other} for configuration decimal.format: String must be one of: BASE64, NUMERIC"
                    )));
                }
            };
            return Ok(Converter::Json(JsonConverter::new(
                flag("schemas.enable", true)?,
                decimal,
                flag("replace.null.with.default", true)?,
            )));
        }
        Err(Error::Config(format!(
            "converter class {class} is not available; the available converters are {}",
            CONVERTER_CLASSES.join(", ")
        )))
    }

    /// Serialises a value; `None` is a null record.
    pub fn from_connect(
        &self,
        schema: Option<&Schema>,
        value: Option<&Value>,
    ) -> Result<Option<Vec<u8>>> {
        match self {
            Converter::String(c) => c.from_connect_data(value),
            Converter::ByteArray(c) => c.from_connect_data(schema, value),
            Converter::Json(c) => c.from_connect_data(schema, value),
        }
    }

    pub fn to_connect(&self, bytes: Option<&[u8]>) -> Result<(Option<Schema>, Option<Value>)> {
        match self {
            Converter::String(c) => c.to_connect_data(bytes).map(|(s, v)| (Some(s), v)),
            Converter::ByteArray(c) => c.to_connect_data(bytes).map(|(s, v)| (Some(s), v)),
            Converter::Json(c) => c.to_connect_data(bytes),
        }
    }
}

/// The settings of the converter at `prefix` (`key.converter`): its class and its
/// `prefix.`-keyed settings, with connector settings overriding the worker's as Java does.
pub fn converter_for(
    prefix: &str,
    worker: &BTreeMap<String, String>,
    connector: &BTreeMap<String, String>,
) -> Result<Converter> {
    let (class, from) = match connector.get(prefix) {
        Some(c) => (c.clone(), connector),
        None => (
            worker
                .get(prefix)
                .cloned()
                .ok_or_else(|| Error::Config(format!("{prefix} is not set")))?,
            worker,
        ),
    };
    let dotted = format!("{prefix}.");
    let settings: BTreeMap<String, String> = from
        .iter()
        .filter_map(|(k, v)| k.strip_prefix(&dotted).map(|k| (k.to_string(), v.clone())))
        .collect();
    Converter::configure(&class, &settings).map_err(|e| Error::Config(format!("{prefix}: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn simple_and_full_class_names_resolve() {
        let none = BTreeMap::new();
        assert!(matches!(
            Converter::configure("StringConverter", &none),
            Ok(Converter::String(_))
        ));
        assert!(matches!(
            Converter::configure(JSON_CONVERTER, &none),
            Ok(Converter::Json(_))
        ));
        let err = Converter::configure("com.example.AvroConverter", &none)
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(err.contains(JSON_CONVERTER), "{err}");
    }

    #[test]
    fn connector_settings_override_the_workers() {
        let worker: BTreeMap<String, String> = [
            ("value.converter".to_string(), JSON_CONVERTER.to_string()),
            (
                "value.converter.schemas.enable".to_string(),
                "true".to_string(),
            ),
        ]
        .into();
        let connector: BTreeMap<String, String> = [
            ("value.converter".to_string(), JSON_CONVERTER.to_string()),
            (
                "value.converter.schemas.enable".to_string(),
                "false".to_string(),
            ),
        ]
        .into();
        match converter_for("value.converter", &worker, &connector) {
            Ok(Converter::Json(j)) => assert!(!j.schemas_enable()),
            other => panic!("{other:?}"),
        }
        // As in Java, a connector's converter settings count only with its own converter class.
        let ignored: BTreeMap<String, String> = [(
            "value.converter.schemas.enable".to_string(),
            "maybe".to_string(),
        )]
        .into();
        assert!(converter_for("value.converter", &worker, &ignored).is_ok());
        let mut bad = ignored.clone();
        bad.insert("value.converter".into(), "JsonConverter".into());
        let err = converter_for("value.converter", &worker, &bad)
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(err.contains("schemas.enable"), "{err}");
    }
}
