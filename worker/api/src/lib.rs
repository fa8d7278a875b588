//! What a connector plugin author sees: the Connect data model (schemas, values, structs, logical
//! types), `ConfigDef`, source and sink records with headers, and the connector and task traits
//! with their contexts.
//!
//! Kept free of I/O and of the runtime so that plugins depend on a small, stable surface; shaped
//! like Kafka Connect's `org.apache.kafka.connect` API so connectors and converters map one to one.

pub mod config_def;
pub mod connector;
pub mod error;
pub mod logical;
pub mod record;
pub mod schema;
pub mod value;

pub use config_def::{
    ConfigDef, ConfigError, ConfigKey, ConfigType, ConfigValue, Importance, KeyValidation,
    Password, Width,
};
pub use connector::{
    Config, ConnectError, ConnectResult, Connector, ConnectorContext, ErrantRecordReporter,
    OffsetStorageReader, SinkConnector, SinkOffsets, SinkTask, SinkTaskContext, SourceConnector,
    SourceTask, SourceTaskContext,
};
pub use error::DataError;
pub use record::{
    Header, Headers, OffsetMap, RecordMetadata, SinkRecord, SourceRecord, TimestampType,
    TopicPartition,
};
pub use schema::{Field, Schema, SchemaBuilder, Type};
pub use value::{Decimal, Struct, Value};
