//! Error handling of a connector's records (KIP-298): retry retriable failures for
//! `errors.retry.timeout` with backoff up to `errors.retry.delay.max.ms`, then either fail the
//! task (`errors.tolerance=none`) or log and skip the record (`all`), sending sink records to the
//! dead letter queue with Java's context headers when one is configured.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use rdkafka::message::{Header as KafkaHeader, OwnedHeaders};
use rdkafka::producer::{BaseRecord, DefaultProducerContext, Producer, ThreadedProducer};
use tributary_connect_api::ConnectError;

use crate::error::{Error, Result};

/// Where in the pipeline a record failed, with Java's stage names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stage {
    KeyConverter,
    ValueConverter,
    HeaderConverter,
    Transformation,
    TaskPut,
    TaskPoll,
    KafkaProduce,
    KafkaConsume,
}

impl Stage {
    pub fn name(self) -> &'static str {
        match self {
            Stage::KeyConverter => "KEY_CONVERTER",
            Stage::ValueConverter => "VALUE_CONVERTER",
            Stage::HeaderConverter => "HEADER_CONVERTER",
            Stage::Transformation => "TRANSFORMATION",
            Stage::TaskPut => "TASK_PUT",
            Stage::TaskPoll => "TASK_POLL",
            Stage::KafkaProduce => "KAFKA_PRODUCE",
            Stage::KafkaConsume => "KAFKA_CONSUME",
        }
    }
}

/// The `errors.*` settings of one connector.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ErrorPolicy {
    pub tolerate_all: bool,
    /// `None`: retry forever (`errors.retry.timeout=-1`).
    pub retry_timeout: Option<Duration>,
    pub retry_delay_max: Duration,
    pub log_enable: bool,
    pub log_include_messages: bool,
    pub dlq_topic: Option<String>,
    pub dlq_replication_factor: i16,
    pub dlq_context_headers: bool,
}

impl Default for ErrorPolicy {
    fn default() -> Self {
        Self {
            tolerate_all: false,
            retry_timeout: Some(Duration::ZERO),
            retry_delay_max: Duration::from_millis(60_000),
            log_enable: false,
            log_include_messages: false,
            dlq_topic: None,
            dlq_replication_factor: 3,
            dlq_context_headers: false,
        }
    }
}

impl ErrorPolicy {
    /// Reads the `errors.*` keys of a connector config; a bad value names the key.
    pub fn from_config(config: &BTreeMap<String, String>) -> Result<Self> {
        let mut p = Self::default();
        let get = |k: &str| config.get(k).map(|v| v.trim().to_string());
        let bad = |k: &str, v: &str, why: &str| {
            Error::Config(format!("Invalid value {v} for configuration {k}: {why}"))
        };
        let boolean = |k: &str, default: bool| -> Result<bool> {
            match get(k).map(|v| v.to_ascii_lowercase()) {
                None => Ok(default),
                Some(v) if v == "true" => Ok(true),
                Some(v) if v == "false" => Ok(false),
                Some(v) => Err(bad(k, &v, "Expected value to be either true or false")),
            }
        };
        if let Some(t) = get("errors.tolerance") {
            p.tolerate_all = match t.to_ascii_lowercase().as_str() {
                "none" => false,
                "all" => true,
                _ => {
                    return Err(bad(
                        "errors.tolerance",
                        &t,
                        "String must be one of: none, all",
                    ));
                }
            };
        }
        if let Some(t) = get("errors.retry.timeout") {
            let ms: i64 = t
                .parse()
                .map_err(|_| bad("errors.retry.timeout", &t, "Not a number of type LONG"))?;
            p.retry_timeout = match ms {
                -1 => None,
                ms if ms >= 0 => Some(Duration::from_millis(ms.unsigned_abs())),
                _ => return Err(bad("errors.retry.timeout", &t, "must be -1 or at least 0")),
            };
        }
        if let Some(t) = get("errors.retry.delay.max.ms") {
            let ms: u64 = t
                .parse()
                .map_err(|_| bad("errors.retry.delay.max.ms", &t, "Value must be at least 0"))?;
            p.retry_delay_max = Duration::from_millis(ms);
        }
        p.log_enable = boolean("errors.log.enable", false)?;
        p.log_include_messages = boolean("errors.log.include.messages", false)?;
        p.dlq_topic = get("errors.deadletterqueue.topic.name").filter(|t| !t.is_empty());
        if let Some(t) = get("errors.deadletterqueue.topic.replication.factor") {
            p.dlq_replication_factor = t.parse().map_err(|_| {
                bad(
                    "errors.deadletterqueue.topic.replication.factor",
                    &t,
                    "Not a number of type SHORT",
                )
            })?;
        }
        p.dlq_context_headers = boolean("errors.deadletterqueue.context.headers.enable", false)?;
        if p.dlq_topic.is_some() && !p.tolerate_all {
            // Java accepts this too; the first bad record then fails the task instead.
            tracing::warn!(
                "errors.deadletterqueue.topic.name is set but errors.tolerance=none: the dead letter queue is only used with errors.tolerance=all"
            );
        }
        Ok(p)
    }

    /// Runs `op`, retrying retriable failures within the retry timeout. Returns the last error
    /// when retries are exhausted or the error is not retriable.
    pub fn retry<T>(
        &self,
        stopping: &dyn Fn() -> bool,
        mut op: impl FnMut() -> std::result::Result<T, ConnectError>,
    ) -> std::result::Result<T, ConnectError> {
        let start = Instant::now();
        let mut delay = Duration::from_millis(300);
        loop {
            match op() {
                Ok(v) => return Ok(v),
                Err(e) if !e.is_retriable() => return Err(e),
                Err(e) => {
                    let elapsed = start.elapsed();
                    let within = self.retry_timeout.is_none_or(|t| elapsed + delay <= t);
                    if !within || stopping() {
                        return Err(e);
                    }
                    tracing::debug!(error = %e, delay_ms = delay.as_millis() as u64, "retrying");
                    std::thread::sleep(delay);
                    delay = (delay * 2).min(self.retry_delay_max.max(Duration::from_millis(1)));
                }
            }
        }
    }
}

/// What the DLQ headers say about one failed record.
#[derive(Debug, Clone)]
pub struct FailureContext<'a> {
    pub topic: &'a str,
    pub partition: i32,
    pub offset: i64,
    pub connector: &'a str,
    pub task: u32,
    pub stage: Stage,
    pub executing_class: &'a str,
    pub error: &'a str,
}

/// Java's header names (`DeadLetterQueueReporter`), filled for one failure.
pub fn context_headers(c: &FailureContext<'_>) -> Vec<(&'static str, String)> {
    vec![
        ("__connect.errors.topic", c.topic.to_string()),
        ("__connect.errors.partition", c.partition.to_string()),
        ("__connect.errors.offset", c.offset.to_string()),
        ("__connect.errors.connector.name", c.connector.to_string()),
        ("__connect.errors.task.id", c.task.to_string()),
        ("__connect.errors.stage", c.stage.name().to_string()),
        ("__connect.errors.class.name", c.executing_class.to_string()),
        (
            "__connect.errors.exception.class.name",
            "org.apache.kafka.connect.errors.DataException".to_string(),
        ),
        ("__connect.errors.exception.message", c.error.to_string()),
        ("__connect.errors.exception.stacktrace", c.error.to_string()),
    ]
}

/// Sends failed sink records, with their original key, value and headers, to the DLQ topic.
pub struct DeadLetterQueue {
    topic: String,
    context_headers: bool,
    producer: ThreadedProducer<DefaultProducerContext>,
    failures: std::sync::Arc<std::sync::atomic::AtomicUsize>,
}

impl std::fmt::Debug for DeadLetterQueue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DeadLetterQueue")
            .field("topic", &self.topic)
            .finish_non_exhaustive()
    }
}

impl DeadLetterQueue {
    pub fn new(
        topic: String,
        context_headers: bool,
        producer: ThreadedProducer<DefaultProducerContext>,
    ) -> Self {
        Self {
            topic,
            context_headers,
            producer,
            failures: Default::default(),
        }
    }

    pub fn send(
        &self,
        key: Option<&[u8]>,
        value: Option<&[u8]>,
        headers: Option<OwnedHeaders>,
        context: &FailureContext<'_>,
    ) -> Result<()> {
        let mut h = headers.unwrap_or_default();
        if self.context_headers {
            for (name, v) in context_headers(context) {
                h = h.insert(KafkaHeader {
                    key: name,
                    value: Some(v.as_bytes()),
                });
            }
        }
        let mut record: BaseRecord<'_, [u8], [u8]> = BaseRecord::to(&self.topic).headers(h);
        if let Some(k) = key {
            record = record.key(k);
        }
        if let Some(v) = value {
            record = record.payload(v);
        }
        let mut record = record;
        loop {
            match self.producer.send(record) {
                Ok(()) => return Ok(()),
                Err((
                    rdkafka::error::KafkaError::MessageProduction(
                        rdkafka::types::RDKafkaErrorCode::QueueFull,
                    ),
                    r,
                )) => {
                    record = r;
                    std::thread::sleep(Duration::from_millis(10));
                }
                Err((e, _)) => {
                    self.failures
                        .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    return Err(Error::Kafka(format!(
                        "cannot send to dead letter queue {}: {e}",
                        self.topic
                    )));
                }
            }
        }
    }

    /// Waits until every DLQ record is acknowledged, so offsets are committed only after the
    /// failed records they skip are durable.
    pub fn flush(&self, timeout: Duration) -> Result<()> {
        self.producer
            .flush(timeout)
            .map_err(|e| Error::Kafka(format!("dead letter queue {}: {e}", self.topic)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn defaults_are_javas_and_bad_values_name_the_key() {
        let p = ErrorPolicy::from_config(&cfg(&[])).unwrap_or_default();
        assert!(!p.tolerate_all);
        assert_eq!(p.retry_timeout, Some(Duration::ZERO));
        let err = ErrorPolicy::from_config(&cfg(&[("errors.tolerance", "some")]))
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(err.contains("errors.tolerance"), "{err}");
    }

    #[test]
    fn retriable_errors_are_retried_within_the_timeout_only() {
        let p = ErrorPolicy::from_config(&cfg(&[
            ("errors.retry.timeout", "1000"),
            ("errors.retry.delay.max.ms", "100"),
        ]))
        .unwrap_or_default();
        let mut calls = 0;
        let r: std::result::Result<(), _> = p.retry(&|| false, || {
            calls += 1;
            Err(ConnectError::retriable("busy"))
        });
        assert!(r.is_err());
        assert!((3..=12).contains(&calls), "{calls}");
        let mut calls = 0;
        let r: std::result::Result<(), _> = p.retry(&|| false, || {
            calls += 1;
            Err(ConnectError::fatal("bad"))
        });
        assert!(r.is_err());
        assert_eq!(calls, 1);
    }
}
