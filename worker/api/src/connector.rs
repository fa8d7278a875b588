//! The plugin traits: connectors and their tasks, and the contexts the runtime hands them.
//!
//! Shaped like Kafka Connect's so that a Java connector's structure ports over directly, with one
//! deliberate difference: a task is owned by one thread and its methods take `&mut self`, so
//! `poll`/`put` must return within about a second (with an empty batch when there is nothing to
//! do) for `stop` to be timely. Java instead calls `stop` from another thread while `poll`
//! blocks, which forces every task to be internally synchronised.

use std::collections::BTreeMap;
use std::sync::Arc;

use crate::config_def::{ConfigDef, KeyValidation};
use crate::record::{OffsetMap, SinkRecord, SourceRecord, TopicPartition};

/// A connector or task configuration: the raw string map of the REST API and `.properties` files,
/// with config provider placeholders already resolved.
pub type Config = BTreeMap<String, String>;

/// Why a connector or task call failed. `Retriable` errors are retried by the runtime (as Java's
/// `RetriableException`); the others fail the task with the message as its trace.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConnectError {
    #[error("{0}")]
    Retriable(String),
    #[error("invalid configuration: {0}")]
    Config(String),
    #[error("{0}")]
    Fatal(String),
}

impl ConnectError {
    pub fn fatal(message: impl std::fmt::Display) -> Self {
        Self::Fatal(message.to_string())
    }

    pub fn retriable(message: impl std::fmt::Display) -> Self {
        Self::Retriable(message.to_string())
    }

    pub fn is_retriable(&self) -> bool {
        matches!(self, Self::Retriable(_))
    }
}

pub type ConnectResult<T> = Result<T, ConnectError>;

/// What a connector may ask of the runtime.
pub trait ConnectorContext: Send + Sync {
    /// The connector's inputs changed: call `task_configs` again and restart tasks if they differ.
    fn request_task_reconfiguration(&self);
    /// The connector hit an unrecoverable error outside a method call: mark it FAILED.
    fn raise_error(&self, error: ConnectError);
}

/// Reads committed source offsets (the latest flushed, not the latest produced).
pub trait OffsetStorageReader: Send + Sync {
    fn offset(&self, partition: &OffsetMap) -> Option<OffsetMap>;

    fn offsets(&self, partitions: &[OffsetMap]) -> Vec<(OffsetMap, Option<OffsetMap>)> {
        partitions
            .iter()
            .map(|p| (p.clone(), self.offset(p)))
            .collect()
    }
}

/// Sends a record a sink task could not process to the error handling of the connector
/// (log and dead letter queue under `errors.tolerance=all`, task failure under `none`).
pub trait ErrantRecordReporter: Send + Sync {
    fn report(&self, record: &SinkRecord, error: &ConnectError) -> ConnectResult<()>;
}

/// The parts common to every connector plugin.
pub trait Connector: Send {
    /// The plugin version reported by `GET /connector-plugins`.
    fn version(&self) -> String;
    /// The connector's own settings; the worker adds the common ones (`name`, `tasks.max`, …).
    fn config_def(&self) -> ConfigDef;
    /// Checks beyond what `config_def` can express; the default validates against it.
    fn validate(&self, config: &Config) -> Vec<KeyValidation> {
        self.config_def().validate(config)
    }
    fn start(&mut self, config: &Config, context: Arc<dyn ConnectorContext>) -> ConnectResult<()>;
    /// At most `max_tasks` task configurations.
    fn task_configs(&self, max_tasks: usize) -> ConnectResult<Vec<Config>>;
    fn stop(&mut self) -> ConnectResult<()>;
}

/// Context handed to a source task when it starts.
#[derive(Clone)]
pub struct SourceTaskContext {
    pub config: Config,
    pub offset_reader: Arc<dyn OffsetStorageReader>,
}

impl std::fmt::Debug for SourceTaskContext {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SourceTaskContext").finish_non_exhaustive()
    }
}

pub trait SourceConnector: Connector {
    fn create_task(&self) -> Box<dyn SourceTask>;
    /// Whether the connector can turn offsets given through the REST API into its own (KIP-875).
    fn alter_offsets(
        &self,
        _config: &Config,
        _offsets: &[(OffsetMap, Option<OffsetMap>)],
    ) -> ConnectResult<bool> {
        Ok(false)
    }
}

pub trait SourceTask: Send {
    fn version(&self) -> String;
    fn start(&mut self, context: SourceTaskContext) -> ConnectResult<()>;
    /// The next records; empty when none are ready. Must return within about a second.
    fn poll(&mut self) -> ConnectResult<Vec<SourceRecord>>;
    /// Offsets up to here were flushed.
    fn commit(&mut self) -> ConnectResult<()> {
        Ok(())
    }
    fn stop(&mut self) -> ConnectResult<()>;
}

/// What a sink task can see and steer of its consumer.
pub trait SinkTaskContext: Send + Sync {
    fn config(&self) -> &Config;
    fn assignment(&self) -> Vec<TopicPartition>;
    /// Stop fetching these partitions (back-pressure) until `resume`.
    fn pause(&self, partitions: &[TopicPartition]);
    fn resume(&self, partitions: &[TopicPartition]);
    /// Rewind or skip: the next record delivered for `partition` is at `offset`.
    fn seek(&self, partition: &TopicPartition, offset: i64);
    /// Ask for a flush and commit as soon as possible.
    fn request_commit(&self);
    /// `None` when the connector's error handling is not configured (as Java returns null).
    fn errant_record_reporter(&self) -> Option<Arc<dyn ErrantRecordReporter>>;
}

pub trait SinkConnector: Connector {
    fn create_task(&self) -> Box<dyn SinkTask>;
}

/// Offsets as sink tasks see them: the next offset to consume per partition.
pub type SinkOffsets = BTreeMap<TopicPartition, i64>;

pub trait SinkTask: Send {
    fn version(&self) -> String;
    fn start(&mut self, context: Arc<dyn SinkTaskContext>) -> ConnectResult<()>;
    /// New partitions were assigned; called before records of them are `put`.
    fn open(&mut self, _partitions: &[TopicPartition]) -> ConnectResult<()> {
        Ok(())
    }
    /// Records to write; may buffer them until `flush`. Must return within about a second. After
    /// a `Retriable` error the same records are passed again.
    fn put(&mut self, records: &[SinkRecord]) -> ConnectResult<()>;
    /// Make everything `put` so far durable.
    fn flush(&mut self, _offsets: &SinkOffsets) -> ConnectResult<()> {
        Ok(())
    }
    /// The offsets that may be committed; the default flushes and returns `offsets`.
    fn pre_commit(&mut self, offsets: &SinkOffsets) -> ConnectResult<SinkOffsets> {
        self.flush(offsets)?;
        Ok(offsets.clone())
    }
    /// These partitions are revoked; called after their last commit.
    fn close(&mut self, _partitions: &[TopicPartition]) -> ConnectResult<()> {
        Ok(())
    }
    fn stop(&mut self) -> ConnectResult<()>;
}
