//! Source and sink records and their headers, shaped like Kafka Connect's `SourceRecord`,
//! `SinkRecord` and `Headers` so that connectors and transforms port over one to one.
//!
//! Source partitions and offsets are maps from string keys to JSON primitives, because that is
//! what the offset stores of Kafka Connect hold (`["conn",{partition}]` → `{offset}`); keeping
//! them as JSON means the worker writes exactly the bytes it read.

use std::collections::BTreeMap;
use std::sync::Arc;

use crate::schema::Schema;
use crate::value::Value;

/// A source partition or source offset: string keys, JSON primitive values.
pub type OffsetMap = BTreeMap<String, serde_json::Value>;

/// One record header: a key and a Connect value with its optional schema.
#[derive(Debug, Clone, PartialEq)]
pub struct Header {
    pub key: String,
    pub schema: Option<Schema>,
    pub value: Option<Value>,
}

/// Record headers in order; keys may repeat, as in Kafka.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Headers(Vec<Header>);

impl Headers {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn add(&mut self, key: impl Into<String>, schema: Option<Schema>, value: Option<Value>) {
        self.0.push(Header {
            key: key.into(),
            schema,
            value,
        });
    }

    pub fn add_string(&mut self, key: impl Into<String>, value: impl Into<String>) {
        self.add(
            key,
            Some(Schema::string()),
            Some(Value::String(value.into())),
        );
    }

    /// The last header with this key, as Java's `Headers.lastWithName`.
    pub fn last_with_name(&self, key: &str) -> Option<&Header> {
        self.0.iter().rev().find(|h| h.key == key)
    }

    pub fn remove(&mut self, key: &str) {
        self.0.retain(|h| h.key != key);
    }

    pub fn iter(&self) -> impl Iterator<Item = &Header> {
        self.0.iter()
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl FromIterator<Header> for Headers {
    fn from_iter<T: IntoIterator<Item = Header>>(iter: T) -> Self {
        Self(iter.into_iter().collect())
    }
}

/// A record a source task produced, before conversion.
#[derive(Debug, Clone, PartialEq)]
pub struct SourceRecord {
    /// Shared: a task usually sends many records of one source partition, and the runtime
    /// recognises a partition it has just seen by pointer before comparing maps.
    pub source_partition: Arc<OffsetMap>,
    pub source_offset: OffsetMap,
    pub topic: String,
    /// `None` lets the producer's partitioner choose.
    pub kafka_partition: Option<i32>,
    pub key_schema: Option<Schema>,
    pub key: Option<Value>,
    pub value_schema: Option<Schema>,
    pub value: Option<Value>,
    /// Milliseconds since the epoch; `None` lets the producer stamp it.
    pub timestamp: Option<i64>,
    pub headers: Headers,
}

impl SourceRecord {
    /// A record with a value only, the common case for simple sources.
    pub fn new(
        source_partition: impl Into<Arc<OffsetMap>>,
        source_offset: OffsetMap,
        topic: impl Into<String>,
        value_schema: Option<Schema>,
        value: Option<Value>,
    ) -> Self {
        Self {
            source_partition: source_partition.into(),
            source_offset,
            topic: topic.into(),
            kafka_partition: None,
            key_schema: None,
            key: None,
            value_schema,
            value,
            timestamp: None,
            headers: Headers::new(),
        }
    }

    pub fn with_key(mut self, schema: Option<Schema>, key: Option<Value>) -> Self {
        self.key_schema = schema;
        self.key = key;
        self
    }
}

/// Kafka's record timestamp kinds, as Java's `TimestampType`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TimestampType {
    NoTimestampType,
    CreateTime,
    LogAppendTime,
}

/// A record a sink task receives, after conversion.
#[derive(Debug, Clone, PartialEq)]
pub struct SinkRecord {
    pub topic: String,
    pub kafka_partition: i32,
    pub kafka_offset: i64,
    pub key_schema: Option<Schema>,
    pub key: Option<Value>,
    pub value_schema: Option<Schema>,
    pub value: Option<Value>,
    pub timestamp: Option<i64>,
    pub timestamp_type: TimestampType,
    pub headers: Headers,
}

/// A topic partition, as sink tasks see assignments.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TopicPartition {
    pub topic: String,
    pub partition: i32,
}

impl TopicPartition {
    pub fn new(topic: impl Into<String>, partition: i32) -> Self {
        Self {
            topic: topic.into(),
            partition,
        }
    }
}

impl std::fmt::Display for TopicPartition {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}-{}", self.topic, self.partition)
    }
}

/// What the producer reported for a source record: where it landed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RecordMetadata {
    pub partition: i32,
    pub offset: i64,
}
