//! Single message transforms and predicates with Apache Kafka's class names, keys and semantics
//! (`org.apache.kafka.connect.transforms.*`), so a connector config written for Java Kafka
//! Connect runs here unchanged.
//!
//! A connector's `transforms` list becomes a [`Chain`]: each alias's `transforms.<alias>.type`
//! names a plugin from [`TRANSFORMS`], configured from its `transforms.<alias>.*` keys, and
//! optionally gated by a predicate (`transforms.<alias>.predicate`, `negate`) from the
//! `predicates` list. Configuration is checked when a connector is validated, so a typo is an
//! HTTP 400 naming the key rather than a task that fails later. Applying a chain is pure.

pub(crate) mod cast;
mod chain;
mod field_path;
mod fields;
mod flatten;
mod headers;
mod predicates;
pub mod record;
mod routers;
mod timestamp_converter;
mod util;

#[cfg(test)]
mod tests;

use std::collections::BTreeMap;

use tributary_connect_api::{ConfigDef, ConfigValue};

pub use chain::{Chain, ChainError, StepError};
pub use record::{Record, Side};
pub(crate) use routers::days_from_civil;

/// A transform failed on a record: the message is what Java's `DataException` would say.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct TransformError(pub String);

pub type TransformResult<T> = Result<T, TransformError>;

/// One configured transformation (Java's `Transformation`).
pub trait Transformation: Send + Sync + std::fmt::Debug {
    /// The record transformed, or `None` to drop it.
    fn apply(&self, record: Record) -> TransformResult<Option<Record>>;
}

/// One configured predicate (Java's `Predicate`).
pub trait Predicate: Send + Sync + std::fmt::Debug {
    fn test(&self, record: &Record) -> bool;
}

/// Parsed settings of one transform or predicate (keys without the alias prefix).
pub type Settings = BTreeMap<String, ConfigValue>;

/// A built-in transformation plugin.
#[derive(Debug)]
pub struct TransformPlugin {
    /// Java's class name, `$Key`/`$Value` included.
    pub class: &'static str,
    pub doc: &'static str,
    pub def: fn() -> ConfigDef,
    pub create: fn(&Settings) -> Result<Box<dyn Transformation>, String>,
}

/// A built-in predicate plugin.
#[derive(Debug)]
pub struct PredicatePlugin {
    pub class: &'static str,
    pub doc: &'static str,
    pub def: fn() -> ConfigDef,
    pub create: fn(&Settings) -> Result<Box<dyn Predicate>, String>,
}

const PKG: &str = "org.apache.kafka.connect.transforms.";

/// Every transformation, `$Key` before `$Value` as Java's plugin scan lists them.
pub static TRANSFORMS: &[TransformPlugin] = &[
    cast::CAST_KEY,
    cast::CAST_VALUE,
    headers::DROP_HEADERS,
    fields::EXTRACT_FIELD_KEY,
    fields::EXTRACT_FIELD_VALUE,
    fields::FILTER,
    flatten::FLATTEN_KEY,
    flatten::FLATTEN_VALUE,
    headers::HEADER_FROM_KEY,
    headers::HEADER_FROM_VALUE,
    fields::HOIST_FIELD_KEY,
    fields::HOIST_FIELD_VALUE,
    fields::INSERT_FIELD_KEY,
    fields::INSERT_FIELD_VALUE,
    headers::INSERT_HEADER,
    fields::MASK_FIELD_KEY,
    fields::MASK_FIELD_VALUE,
    routers::REGEX_ROUTER,
    fields::REPLACE_FIELD_KEY,
    fields::REPLACE_FIELD_VALUE,
    fields::SET_SCHEMA_METADATA_KEY,
    fields::SET_SCHEMA_METADATA_VALUE,
    timestamp_converter::TIMESTAMP_CONVERTER_KEY,
    timestamp_converter::TIMESTAMP_CONVERTER_VALUE,
    routers::TIMESTAMP_ROUTER,
    fields::VALUE_TO_KEY,
];

pub static PREDICATES: &[PredicatePlugin] = &[
    predicates::HAS_HEADER_KEY,
    predicates::RECORD_IS_TOMBSTONE,
    predicates::TOPIC_NAME_MATCHES,
];

/// Java resolves a plugin by its class name, its simple name, or (for transforms and
/// predicates) the simple name itself is the alias users write most.
fn class_matches(given: &str, full: &str) -> bool {
    let given = given.trim();
    given == full
        || full.strip_prefix(PKG) == Some(given)
        || predicates::simple_name(full) == Some(given)
}

/// `ms` since the epoch formatted with a SimpleDateFormat pattern, in UTC.
pub fn date_text(pattern: &str, ms: i64) -> String {
    routers::DatePattern::parse(pattern)
        .map(|p| p.format(ms))
        .unwrap_or_default()
}

pub fn find_transform(class: &str) -> Option<&'static TransformPlugin> {
    TRANSFORMS.iter().find(|p| class_matches(class, p.class))
}

pub fn find_predicate(class: &str) -> Option<&'static PredicatePlugin> {
    PREDICATES.iter().find(|p| class_matches(class, p.class))
}
