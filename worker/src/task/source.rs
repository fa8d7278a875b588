//! The source task loop: `poll` → transforms → converters → idempotent producer (batched and pipelined by
//! librdkafka) → acknowledgements → offsets. Offsets are written every `offset.flush.interval.ms`
//! and only for records acknowledged in order per source partition, so a crash at any point
//! repeats at most the records since the last flush and never skips one.

use crate::metrics::task::TaskStats;
use std::collections::HashSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use rdkafka::ClientConfig;
use rdkafka::admin::{AdminClient, NewTopic, TopicReplication};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::{Header as KafkaHeader, OwnedHeaders};
use rdkafka::producer::{BaseProducer, BaseRecord, DeliveryResult, Producer, ProducerContext};
use rdkafka::{ClientContext, Message};
use tributary_connect_api::{OffsetMap, SourceRecord, SourceTask, SourceTaskContext};
use tributary_connect_client::State;

use super::errors::{ErrorPolicy, Stage};
use super::submitted::SubmittedRecords;
use super::topic_creation::TopicCreation;
use super::{ClientErrors, TaskControl, TaskSpec, WorkerContext, check_reachable, create_topic};
use crate::config::client::Role;
use crate::converter::{Converter, SimpleHeaderConverter, converter_for};
use crate::error::{Error, Result};
use crate::offset_store::{ConnectorOffsetReader, offset_key, offset_value};
use crate::transforms::{Chain, Record, StepError};

/// Delivery results reach the loop through each record's ack flag; failures are kept here.
#[derive(Debug, Clone)]
struct SourceProducerContext {
    errors: ClientErrors,
    /// The first delivery failure, which fails the task unless errors are tolerated.
    failed: Arc<std::sync::Mutex<Option<String>>>,
    tolerate_all: bool,
}

impl ClientContext for SourceProducerContext {
    fn error(&self, error: KafkaError, reason: &str) {
        self.errors.error(error, reason);
    }
}

impl ProducerContext for SourceProducerContext {
    /// The record's acknowledgement flag in `SubmittedRecords`, passed through librdkafka as is.
    type DeliveryOpaque = Arc<AtomicBool>;

    fn delivery(&self, result: &DeliveryResult<'_>, ack: Arc<AtomicBool>) {
        match result {
            Ok(_) => ack.store(true, Ordering::Release),
            Err((e, msg)) => {
                if self.tolerate_all {
                    // KIP-779: a tolerated send failure is logged and its offset may advance.
                    tracing::warn!(error = %e, topic = msg.topic(), "record not sent; skipped under errors.tolerance=all");
                    ack.store(true, Ordering::Release);
                } else if let Ok(mut f) = self.failed.lock()
                    && f.is_none()
                {
                    *f = Some(format!("record to {} not sent: {e}", msg.topic()));
                }
            }
        }
    }
}

/// Java's producer defaults for source tasks, made idempotent so pipelining keeps order.
fn producer_config(
    spec: &TaskSpec,
    worker: &WorkerContext,
) -> Result<(ClientConfig, ClientConfig)> {
    let c = &spec.connector_config;
    let producer = worker.client_config(
        Role::Producer,
        c,
        &[
            ("enable.idempotence", "true".into()),
            ("acks", "all".into()),
            ("message.timeout.ms", "0".into()),
            (
                "client.id",
                format!("connector-producer-{}-{}", spec.id.connector, spec.id.task),
            ),
        ],
    )?;
    Ok((producer, worker.client_config(Role::Admin, c, &[])?))
}

struct Converters {
    key: Converter,
    value: Converter,
    header: SimpleHeaderConverter,
    /// The worker's provenance headers, added to every record.
    extra: Vec<(String, Vec<u8>)>,
}

fn converters(spec: &TaskSpec, worker: &WorkerContext) -> Result<Converters> {
    Ok(Converters {
        key: converter_for(
            "key.converter",
            &worker.worker_props,
            &spec.connector_config,
        )?,
        value: converter_for(
            "value.converter",
            &worker.worker_props,
            &spec.connector_config,
        )?,
        header: SimpleHeaderConverter,
        extra: spec.provenance.clone(),
    })
}

/// A converted record, ready for the producer.
struct Converted {
    key: Option<Vec<u8>>,
    value: Option<Vec<u8>>,
    headers: Option<OwnedHeaders>,
}

fn convert(c: &Converters, r: &SourceRecord) -> std::result::Result<Converted, (Stage, Error)> {
    let key = c
        .key
        .from_connect(r.key_schema.as_ref(), r.key.as_ref())
        .map_err(|e| (Stage::KeyConverter, e))?;
    let value = c
        .value
        .from_connect(r.value_schema.as_ref(), r.value.as_ref())
        .map_err(|e| (Stage::ValueConverter, e))?;
    let headers = if r.headers.is_empty() && c.extra.is_empty() {
        None
    } else {
        let mut h = OwnedHeaders::new_with_capacity(r.headers.len() + c.extra.len());
        for (key, value) in &c.extra {
            h = h.insert(KafkaHeader {
                key,
                value: Some(value),
            });
        }
        for header in r.headers.iter() {
            let bytes = c
                .header
                .from_connect_header(header.value.as_ref())
                .map_err(|e| (Stage::HeaderConverter, e))?;
            h = h.insert(KafkaHeader {
                key: &header.key,
                value: bytes.as_deref(),
            });
        }
        Some(h)
    };
    Ok(Converted {
        key,
        value,
        headers,
    })
}

/// The record through the connector's transforms: `Ok(Ok(record))` to send, `Ok(Err(offset))`
/// when a transform dropped it, `Err((offset, error))` when one failed on it. An empty chain
/// hands the record straight back.
#[allow(clippy::type_complexity)]
fn transform(
    chain: &Chain,
    record: SourceRecord,
) -> std::result::Result<std::result::Result<SourceRecord, OffsetMap>, (OffsetMap, StepError)> {
    if chain.is_empty() {
        return Ok(Ok(record));
    }
    let (parts, r) = Record::from_source(record);
    match chain.apply(r) {
        Ok(Some(r)) => Ok(Ok(r.into_source(parts))),
        Ok(None) => Ok(Err(parts.source_offset)),
        Err(e) => Err((parts.source_offset, e)),
    }
}

/// Creates `topic` when it does not exist, with the settings its topic creation group gives.
fn ensure_topic(
    admin: &AdminClient<ClientErrors>,
    producer: &BaseProducer<SourceProducerContext>,
    creation: &TopicCreation,
    topic: &str,
) -> Result<()> {
    let meta = producer
        .client()
        .fetch_metadata(Some(topic), Duration::from_secs(30))?;
    let exists = meta
        .topics()
        .iter()
        .any(|t| t.name() == topic && t.error().is_none() && !t.partitions().is_empty());
    if exists {
        return Ok(());
    }
    let (group, spec) = creation.spec_for(topic);
    let mut new = NewTopic::new(
        topic,
        spec.partitions,
        TopicReplication::Fixed(spec.replication_factor),
    );
    for (k, v) in &spec.configs {
        new = new.set(k, v);
    }
    create_topic(
        admin,
        &new,
        &format!("topic (topic.creation group {group})"),
    )
}

struct Loop<'a> {
    spec: &'a TaskSpec,
    worker: &'a WorkerContext,
    producer: BaseProducer<SourceProducerContext>,
    submitted: SubmittedRecords,
    /// The latest acknowledged offset per source partition, not yet written.
    pending: std::collections::BTreeMap<Vec<u8>, tributary_connect_api::OffsetMap>,
    last_flush: Instant,
}

impl Loop<'_> {
    /// Moves acknowledged records out of the in-flight queues, keeping only each partition's
    /// latest committable offset, so memory holds what is in flight, not what was sent since the
    /// last flush.
    fn collect_acked(&mut self) {
        self.producer.poll(Duration::ZERO);
        for (k, o) in self.submitted.committable() {
            self.pending.insert(k, o);
        }
    }

    /// Writes the offsets of every acknowledged prefix, durably.
    fn flush_offsets(&mut self, task: &mut dyn SourceTask) -> Result<()> {
        self.collect_acked();
        let committable = std::mem::take(&mut self.pending);
        self.last_flush = Instant::now();
        if committable.is_empty() {
            return Ok(());
        }
        let entries = committable
            .iter()
            .map(|(k, o)| (k.clone(), Some(offset_value(o))))
            .collect();
        self.worker.offsets.put_all(entries)?;
        tracing::debug!(task = %self.spec.id, partitions = committable.len(), "offsets flushed");
        task.commit()?;
        Ok(())
    }

    fn check_failed(&self) -> Result<()> {
        let failed = self
            .producer
            .context()
            .failed
            .lock()
            .ok()
            .and_then(|f| f.clone());
        match failed {
            Some(f) => Err(Error::Kafka(f)),
            None => Ok(()),
        }
    }
}

pub fn run(
    mut task: Box<dyn SourceTask>,
    spec: &TaskSpec,
    worker: &WorkerContext,
    control: &TaskControl,
    stats: &Arc<TaskStats>,
) -> Result<()> {
    let policy = ErrorPolicy::from_config(&spec.connector_config)?;
    let converters = converters(spec, worker)?;
    let chain =
        Chain::from_config(&spec.connector_config).map_err(|e| Error::Config(e.to_string()))?;
    let creation =
        TopicCreation::from_config(worker.topic_creation_enable, &spec.connector_config)?;
    let (producer_cfg, admin_cfg) = producer_config(spec, worker)?;
    let errors = ClientErrors::default();
    let context = SourceProducerContext {
        errors: errors.clone(),
        failed: Default::default(),
        tolerate_all: policy.tolerate_all,
    };
    let producer: BaseProducer<SourceProducerContext> =
        producer_cfg.create_with_context(context)?;
    check_reachable(producer.client(), &errors, Duration::from_secs(30), &|| {
        producer.poll(Duration::ZERO);
    })?;
    let admin: Option<AdminClient<ClientErrors>> = match &creation {
        Some(_) => Some(admin_cfg.create_with_context(errors.clone())?),
        None => None,
    };
    let mut known_topics: HashSet<String> = HashSet::new();
    let mut topics = super::TopicTracker::new(worker);

    task.start(SourceTaskContext {
        config: spec.task_config.clone(),
        offset_reader: Arc::new(ConnectorOffsetReader {
            connector: spec.id.connector.clone(),
            store: worker.offsets.clone(),
        }),
    })?;
    let status = &worker.status;
    let mut shown = None;
    let mut l = Loop {
        spec,
        worker,
        producer,
        submitted: SubmittedRecords::new(),
        pending: Default::default(),
        last_flush: Instant::now(),
    };
    let stopping = || control.stopping();
    // Records of a batch usually share their source partition: serialise its key once.
    let mut last_partition = None;
    let mut last_key = Vec::new();
    let result = (|| -> Result<()> {
        while !control.stopping() {
            let state = if control.paused() {
                State::Paused
            } else {
                State::Running
            };
            if shown != Some(state) {
                status.set_task(&spec.id.connector, spec.id.task, state, None);
                shown = Some(state);
            }
            if l.last_flush.elapsed() >= worker.offset_flush_interval {
                let started = Instant::now();
                l.flush_offsets(task.as_mut())?;
                stats.committed(started.elapsed());
            }
            // Paused, or no longer sure the work is this worker's: deliveries in flight
            // complete, nothing new is read.
            if state == State::Paused || worker.lease.expired() {
                l.producer.poll(Duration::from_millis(100));
                continue;
            }
            let polling = Instant::now();
            let mut attempts = 0u32;
            let polled = policy.retry(&stopping, || {
                attempts += 1;
                task.poll()
            });
            for _ in 1..attempts {
                stats.retried();
            }
            let records = match polled {
                Ok(r) => {
                    stats.polled(r.len(), polling.elapsed());
                    r
                }
                Err(e) if e.is_retriable() => {
                    tracing::warn!(task = %spec.id, error = %e, "poll failed; polling again");
                    continue;
                }
                Err(e) => return Err(e.into()),
            };
            let mut written = 0;
            topics.begin_batch(status);
            for record in records {
                if !last_partition.as_ref().is_some_and(|p| {
                    Arc::ptr_eq(p, &record.source_partition) || **p == *record.source_partition
                }) {
                    last_key = offset_key(&spec.id.connector, &record.source_partition);
                    last_partition = Some(record.source_partition.clone());
                }
                // A record the transforms drop, or that fails and is tolerated, is done with:
                // its offset is acknowledged at once, as Java's recordDropped does.
                let record = match transform(&chain, record) {
                    Ok(r) => r,
                    Err((offset, e)) if policy.tolerate_all => {
                        l.submitted
                            .submit(&last_key, offset)
                            .store(true, Ordering::Release);
                        stats.record_failed(true, policy.log_enable);
                        if policy.log_enable {
                            tracing::warn!(task = %spec.id, stage = Stage::Transformation.name(), error = %e, "record skipped");
                        }
                        continue;
                    }
                    Err((_, e)) => {
                        stats.record_failed(false, false);
                        return Err(Error::Conversion(format!(
                            "{} failed for a record: {e}",
                            Stage::Transformation.name()
                        )));
                    }
                };
                let record = match record {
                    Ok(r) => r,
                    Err(offset) => {
                        l.submitted
                            .submit(&last_key, offset)
                            .store(true, Ordering::Release);
                        continue;
                    }
                };
                let converted = match convert(&converters, &record) {
                    Ok(c) => c,
                    Err((stage, e)) if policy.tolerate_all => {
                        l.submitted
                            .submit(&last_key, record.source_offset)
                            .store(true, Ordering::Release);
                        stats.record_failed(true, policy.log_enable);
                        if policy.log_enable {
                            tracing::warn!(task = %spec.id, stage = stage.name(), error = %e, "record skipped");
                        }
                        continue;
                    }
                    Err((stage, e)) => {
                        stats.record_failed(false, false);
                        return Err(Error::Conversion(format!(
                            "{} failed for a record to {}: {e}",
                            stage.name(),
                            record.topic
                        )));
                    }
                };
                topics.saw(status, &spec.id, &record.topic);
                if let (Some(creation), Some(admin)) = (&creation, &admin)
                    && !known_topics.contains(&record.topic)
                {
                    ensure_topic(admin, &l.producer, creation, &record.topic)?;
                    known_topics.insert(record.topic.clone());
                }
                let ack = l.submitted.submit(&last_key, record.source_offset);
                let mut out: BaseRecord<'_, [u8], [u8], Arc<AtomicBool>> =
                    BaseRecord::with_opaque_to(&record.topic, ack);
                if let Some(k) = converted.key.as_deref() {
                    out = out.key(k);
                }
                if let Some(v) = converted.value.as_deref() {
                    out = out.payload(v);
                }
                if let Some(p) = record.kafka_partition {
                    out = out.partition(p);
                }
                if let Some(ts) = record.timestamp {
                    out = out.timestamp(ts);
                }
                if let Some(h) = converted.headers {
                    out = out.headers(h);
                }
                loop {
                    match l.producer.send(out) {
                        Ok(()) => {
                            written += 1;
                            break;
                        }
                        Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), back)) => {
                            out = back;
                            l.producer.poll(Duration::from_millis(20));
                            l.check_failed()?;
                        }
                        Err((e, _)) => {
                            return Err(Error::Kafka(format!(
                                "cannot send to {}: {e}",
                                record.topic
                            )));
                        }
                    }
                }
            }
            stats.written(written);
            l.collect_acked();
            stats.source_record_active.store(
                i64::try_from(l.submitted.in_flight()).unwrap_or(i64::MAX),
                std::sync::atomic::Ordering::Relaxed,
            );
            l.check_failed()?;
        }
        Ok(())
    })();
    // On the way out, whatever happened: wait for what is in flight and keep the offsets of
    // everything acknowledged, so a restart repeats as little as possible.
    let flush_wait = worker.offset_flush_timeout.max(Duration::from_secs(1));
    let _ = l.producer.flush(flush_wait);
    let committed = l.flush_offsets(task.as_mut());
    let stopped = task.stop();
    result?;
    committed?;
    stopped?;
    Ok(())
}
