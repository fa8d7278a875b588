//! What a connector plugin author sees: the Connect data model (schemas, values, structs, logical
//! types) and `ConfigDef`; as the worker core grows, source and sink records and the connector
//! and task traits with their contexts.
//!
//! Kept free of I/O and of the runtime so that plugins depend on a small, stable surface; shaped
//! like Kafka Connect's `org.apache.kafka.connect.data` so converters map one to one.

pub mod config_def;
pub mod error;
pub mod logical;
pub mod schema;
pub mod value;

pub use config_def::{
    ConfigDef, ConfigError, ConfigKey, ConfigType, ConfigValue, Importance, Password,
};
pub use error::DataError;
pub use schema::{Field, Schema, SchemaBuilder, Type};
pub use value::{Decimal, Struct, Value};
