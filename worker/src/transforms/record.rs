//! The record a transform sees: what Java's `ConnectRecord` has in common between source and
//! sink records. The task loops split their records into this and what only they need (source
//! partition and offset; the sink's timestamp type), and join them back after the chain, so a
//! record is moved through the transforms, never copied.

use std::sync::Arc;

use tributary_connect_api::{
    Headers, OffsetMap, Schema, SinkRecord, SourceRecord, TimestampType, Value,
};

#[derive(Debug, Clone, PartialEq)]
pub struct Record {
    pub topic: String,
    pub kafka_partition: Option<i32>,
    /// The consumed offset (sink records only), for `InsertField`'s `offset.field`.
    pub kafka_offset: Option<i64>,
    pub key_schema: Option<Schema>,
    pub key: Option<Value>,
    pub value_schema: Option<Schema>,
    pub value: Option<Value>,
    pub timestamp: Option<i64>,
    pub headers: Headers,
}

/// What a source record keeps aside while its transforms run.
#[derive(Debug)]
pub struct SourceParts {
    pub source_partition: Arc<OffsetMap>,
    pub source_offset: OffsetMap,
}

/// What a sink record keeps aside while its transforms run.
#[derive(Debug)]
pub struct SinkParts {
    pub kafka_partition: i32,
    pub kafka_offset: i64,
    pub timestamp_type: TimestampType,
}

impl Record {
    pub fn from_source(r: SourceRecord) -> (SourceParts, Record) {
        (
            SourceParts {
                source_partition: r.source_partition,
                source_offset: r.source_offset,
            },
            Record {
                topic: r.topic,
                kafka_partition: r.kafka_partition,
                kafka_offset: None,
                key_schema: r.key_schema,
                key: r.key,
                value_schema: r.value_schema,
                value: r.value,
                timestamp: r.timestamp,
                headers: r.headers,
            },
        )
    }

    pub fn into_source(self, parts: SourceParts) -> SourceRecord {
        SourceRecord {
            source_partition: parts.source_partition,
            source_offset: parts.source_offset,
            topic: self.topic,
            kafka_partition: self.kafka_partition,
            key_schema: self.key_schema,
            key: self.key,
            value_schema: self.value_schema,
            value: self.value,
            timestamp: self.timestamp,
            headers: self.headers,
        }
    }

    pub fn from_sink(r: SinkRecord) -> (SinkParts, Record) {
        (
            SinkParts {
                kafka_partition: r.kafka_partition,
                kafka_offset: r.kafka_offset,
                timestamp_type: r.timestamp_type,
            },
            Record {
                topic: r.topic,
                kafka_partition: Some(r.kafka_partition),
                kafka_offset: Some(r.kafka_offset),
                key_schema: r.key_schema,
                key: r.key,
                value_schema: r.value_schema,
                value: r.value,
                timestamp: r.timestamp,
                headers: r.headers,
            },
        )
    }

    /// A sink record keeps its consumed offset; a transform may change its topic (and, through
    /// `kafka_partition`, its partition), as Java allows. The task commits offsets by what it
    /// consumed, not by these.
    pub fn into_sink(self, parts: SinkParts) -> SinkRecord {
        SinkRecord {
            topic: self.topic,
            kafka_partition: self.kafka_partition.unwrap_or(parts.kafka_partition),
            kafka_offset: parts.kafka_offset,
            key_schema: self.key_schema,
            key: self.key,
            value_schema: self.value_schema,
            value: self.value,
            timestamp: self.timestamp,
            timestamp_type: parts.timestamp_type,
            headers: self.headers,
        }
    }
}

/// Which half of the record a `$Key` or `$Value` transform works on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Side {
    Key,
    Value,
}

impl Side {
    pub fn schema(self, r: &Record) -> Option<&Schema> {
        match self {
            Side::Key => r.key_schema.as_ref(),
            Side::Value => r.value_schema.as_ref(),
        }
    }

    pub fn value(self, r: &Record) -> Option<&Value> {
        match self {
            Side::Key => r.key.as_ref(),
            Side::Value => r.value.as_ref(),
        }
    }

    /// Takes the schema and value out, for a transform that rebuilds them.
    pub fn take(self, r: &mut Record) -> (Option<Schema>, Option<Value>) {
        match self {
            Side::Key => (r.key_schema.take(), r.key.take()),
            Side::Value => (r.value_schema.take(), r.value.take()),
        }
    }

    pub fn set(self, r: &mut Record, schema: Option<Schema>, value: Option<Value>) {
        match self {
            Side::Key => {
                r.key_schema = schema;
                r.key = value;
            }
            Side::Value => {
                r.value_schema = schema;
                r.value = value;
            }
        }
    }
}
