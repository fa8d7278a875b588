//! The sink task loop: consumer group `connect-<connector>` → converters → batched `put` →
//! `flush`/`preCommit` → commit. Offsets are committed only after the task said the data is
//! durable (and after failed records reached the dead letter queue), every
//! `offset.flush.interval.ms`, before partitions are revoked, and on stop.

use crate::metrics::task::TaskStats;
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer, ConsumerContext, Rebalance};
use rdkafka::error::KafkaError;
use rdkafka::message::{BorrowedMessage, Headers as _, OwnedHeaders};
use rdkafka::producer::ThreadedProducer;
use rdkafka::topic_partition_list::{Offset, TopicPartitionList};
use rdkafka::{ClientConfig, ClientContext, Message, Timestamp};
use tributary_connect_api::{
    Config, ConnectError, ConnectResult, ErrantRecordReporter, Headers, SinkOffsets, SinkRecord,
    SinkTask, SinkTaskContext, TimestampType, TopicPartition,
};
use tributary_connect_client::State;

use super::errors::{DeadLetterQueue, ErrorPolicy, FailureContext, Stage};
use super::{ClientErrors, TaskControl, TaskSpec, WorkerContext, check_reachable};
use crate::config::client::Role;
use crate::converter::{Converter, SimpleHeaderConverter, converter_for};
use crate::error::{Error, Result};
use crate::transforms::{Chain, Record};

/// Requests a task made through its context, applied by the loop between batches.
#[derive(Debug, Default)]
struct Requests {
    pause: Vec<TopicPartition>,
    resume: Vec<TopicPartition>,
    seeks: Vec<(TopicPartition, i64)>,
    commit: bool,
}

/// What the task's context sees; shared with the loop but never holding the task itself.
struct ContextState {
    config: Config,
    assignment: Mutex<Vec<TopicPartition>>,
    requests: Mutex<Requests>,
    reporter: Option<Arc<dyn ErrantRecordReporter>>,
}

impl SinkTaskContext for ContextState {
    fn config(&self) -> &Config {
        &self.config
    }
    fn assignment(&self) -> Vec<TopicPartition> {
        self.assignment
            .lock()
            .map(|a| a.clone())
            .unwrap_or_default()
    }
    fn pause(&self, partitions: &[TopicPartition]) {
        if let Ok(mut r) = self.requests.lock() {
            r.pause.extend_from_slice(partitions);
        }
    }
    fn resume(&self, partitions: &[TopicPartition]) {
        if let Ok(mut r) = self.requests.lock() {
            r.resume.extend_from_slice(partitions);
        }
    }
    fn seek(&self, partition: &TopicPartition, offset: i64) {
        if let Ok(mut r) = self.requests.lock() {
            r.seeks.push((partition.clone(), offset));
        }
    }
    fn request_commit(&self) {
        if let Ok(mut r) = self.requests.lock() {
            r.commit = true;
        }
    }
    fn errant_record_reporter(&self) -> Option<Arc<dyn ErrantRecordReporter>> {
        self.reporter.clone()
    }
}

/// The error handling shared by the loop and the errant record reporter.
struct Failures {
    policy: ErrorPolicy,
    dlq: Option<DeadLetterQueue>,
    connector: String,
    task: u32,
    stats: Arc<crate::metrics::task::TaskStats>,
}

impl Failures {
    /// A record failed at `stage`: under `all` it is logged and sent to the DLQ, under `none`
    /// the error is returned to fail the task.
    fn handle(
        &self,
        stage: Stage,
        executing_class: &str,
        at: (&str, i32, i64),
        raw: (Option<&[u8]>, Option<&[u8]>, Option<OwnedHeaders>),
        error: &str,
    ) -> Result<()> {
        let (topic, partition, offset) = at;
        self.stats
            .record_failed(self.policy.tolerate_all, self.policy.log_enable);
        if !self.policy.tolerate_all {
            return Err(Error::Conversion(format!(
                "{} failed for the record at {topic}-{partition} offset {offset}: {error} (set errors.tolerance=all to skip such records)",
                stage.name()
            )));
        }
        if self.policy.log_enable {
            tracing::warn!(connector = %self.connector, task = self.task, stage = stage.name(), topic, partition, offset, error, "record skipped under errors.tolerance=all");
        }
        if let Some(dlq) = &self.dlq {
            let sent = dlq.send(
                raw.0,
                raw.1,
                raw.2,
                &FailureContext {
                    topic,
                    partition,
                    offset,
                    connector: &self.connector,
                    task: self.task,
                    stage,
                    executing_class,
                    error,
                },
            );
            self.stats.dead_lettered(sent.is_ok());
            sent?;
        }
        Ok(())
    }
}

struct Converters {
    key: Converter,
    value: Converter,
    header: SimpleHeaderConverter,
}

fn class_of(c: &Converter) -> &'static str {
    match c {
        Converter::String(_) => crate::converter::STRING_CONVERTER,
        Converter::ByteArray(_) => crate::converter::BYTE_ARRAY_CONVERTER,
        Converter::Json(_) => crate::converter::JSON_CONVERTER,
    }
}

/// `ErrantRecordReporter` for tasks: turns the record back into bytes with the task's
/// converters (as Java does) and hands it to the error handling.
struct Reporter {
    failures: Arc<Failures>,
    key: Converter,
    value: Converter,
}

impl ErrantRecordReporter for Reporter {
    fn report(&self, record: &SinkRecord, error: &ConnectError) -> ConnectResult<()> {
        let key = self
            .key
            .from_connect(record.key_schema.as_ref(), record.key.as_ref())
            .unwrap_or(None);
        let value = self
            .value
            .from_connect(record.value_schema.as_ref(), record.value.as_ref())
            .unwrap_or(None);
        self.failures
            .handle(
                Stage::TaskPut,
                "tributary.SinkTask",
                (&record.topic, record.kafka_partition, record.kafka_offset),
                (key.as_deref(), value.as_deref(), None),
                &error.to_string(),
            )
            .map_err(|e| ConnectError::fatal(e.to_string()))
    }
}

/// The consumer's context: runs the task's `preCommit`/`close`/`open` around rebalances, on
/// the loop's thread (librdkafka calls it from `poll`).
struct SinkConsumerContext {
    errors: ClientErrors,
    task: Mutex<Box<dyn SinkTask>>,
    state: Arc<ContextState>,
    current: Mutex<SinkOffsets>,
    failure: Mutex<Option<String>>,
    failures: Arc<Failures>,
    stopped: AtomicBool,
    /// Partitions revoked since the loop last looked: records of them it already polled must not
    /// be put, since their offsets were not committed and the next owner gets them again.
    revoked: Mutex<Vec<TopicPartition>>,
    /// Where a partition without a committed offset starts (`auto.offset.reset`), when it is
    /// a place librdkafka can be told directly.
    reset_to: Option<Offset>,
}

/// The start `auto.offset.reset` names, if it names one (`none`/`error` do not: librdkafka
/// then reports the missing offset itself).
fn reset_offset(auto_offset_reset: Option<&str>) -> Option<Offset> {
    match auto_offset_reset?.trim() {
        "earliest" | "smallest" | "beginning" => Some(Offset::Beginning),
        "latest" | "largest" | "end" => Some(Offset::End),
        _ => None,
    }
}

impl SinkConsumerContext {
    /// Gives newly assigned partitions their start: the group's committed offset or, without
    /// one, the reset position. librdkafka would look the committed offsets up itself, but
    /// it treats a missing one as an error and waits 100 ms before asking where the log
    /// begins: every new sink connector started that much later. A lookup that fails leaves
    /// the partitions to librdkafka's own.
    fn set_start_offsets(
        &self,
        consumer: &BaseConsumer<SinkConsumerContext>,
        tpl: &TopicPartitionList,
    ) {
        let Some(reset_to) = self.reset_to else {
            return;
        };
        let mut unset = TopicPartitionList::new();
        for e in tpl.elements() {
            if e.offset() == Offset::Invalid {
                unset.add_partition(e.topic(), e.partition());
            }
        }
        if unset.count() == 0 {
            return;
        }
        let committed = match consumer.committed_offsets(unset, Duration::from_secs(10)) {
            Ok(c) => c,
            Err(e) => {
                tracing::debug!(error = %e, "committed offsets lookup failed; librdkafka looks them up");
                return;
            }
        };
        for mut e in tpl.elements() {
            if e.offset() != Offset::Invalid {
                continue;
            }
            let start = match committed.find_partition(e.topic(), e.partition()) {
                Some(c) if c.error().is_err() => continue,
                Some(c) if matches!(c.offset(), Offset::Offset(o) if o >= 0) => c.offset(),
                Some(_) => reset_to,
                None => continue,
            };
            if let Err(err) = e.set_offset(start) {
                tracing::debug!(error = %err, "cannot set a start offset; librdkafka looks it up");
            }
        }
    }
}

impl ClientContext for SinkConsumerContext {
    fn error(&self, error: KafkaError, reason: &str) {
        self.errors.error(error, reason);
    }
}

fn partitions_of(tpl: &TopicPartitionList) -> Vec<TopicPartition> {
    tpl.elements()
        .iter()
        .map(|e| TopicPartition::new(e.topic(), e.partition()))
        .collect()
}

impl SinkConsumerContext {
    fn fail(&self, what: String) {
        if let Ok(mut f) = self.failure.lock()
            && f.is_none()
        {
            *f = Some(what);
        }
    }

    /// The chaos suite's check of itself (debug builds only): commits `offsets` without asking
    /// the task to flush, so data still in the task's buffers is lost if the worker dies now.
    fn commit_unflushed(
        &self,
        consumer: &BaseConsumer<SinkConsumerContext>,
        offsets: &SinkOffsets,
    ) -> Result<std::result::Result<(), KafkaError>> {
        let mut tpl = TopicPartitionList::new();
        for (tp, offset) in offsets {
            tpl.add_partition_offset(&tp.topic, tp.partition, Offset::Offset(*offset))?;
        }
        if tpl.count() == 0 {
            return Ok(Ok(()));
        }
        Ok(consumer.commit(&tpl, CommitMode::Sync))
    }

    /// Asks the task what may be committed of `offsets`, then commits it synchronously. The
    /// outer error is the task's (its flush failed: the task fails); the inner one is the
    /// broker's refusal of the commit, which, as in Java, is only logged: the data is durable,
    /// the next commit covers it, and at worst a partition's next owner gets it again.
    fn commit(
        &self,
        consumer: &BaseConsumer<SinkConsumerContext>,
        task: &mut dyn SinkTask,
        offsets: &SinkOffsets,
    ) -> Result<std::result::Result<(), KafkaError>> {
        if offsets.is_empty() {
            return Ok(Ok(()));
        }
        if let Some(dlq) = &self.failures.dlq {
            dlq.flush(Duration::from_secs(30))?;
        }
        let committable = task.pre_commit(offsets)?;
        if committable.is_empty() {
            return Ok(Ok(()));
        }
        let mut tpl = TopicPartitionList::new();
        for (tp, offset) in &committable {
            tpl.add_partition_offset(&tp.topic, tp.partition, Offset::Offset(*offset))?;
        }
        let committed = consumer.commit(&tpl, CommitMode::Sync);
        match &committed {
            Ok(()) => {
                tracing::debug!(partitions = committable.len(), "sink offsets committed")
            }
            // Not allowed to commit for this group: no later commit will do better, and a task
            // that stays RUNNING without ever committing replays everything on its next start.
            Err(e) if refused_for_authorization(e) => {
                return Err(Error::Kafka(format!(
                    "the sink's offsets cannot be committed: {e} (grant the worker's principal READ on the consumer group connect-<connector>, or set consumer.override.group.id to a group it may use)"
                )));
            }
            Err(e) => tracing::warn!(
                partitions = committable.len(),
                error = %e,
                "sink offset commit failed; the next commit covers these offsets"
            ),
        }
        Ok(committed)
    }
}

impl ConsumerContext for SinkConsumerContext {
    fn pre_rebalance(&self, consumer: &BaseConsumer<Self>, rebalance: &Rebalance<'_>) {
        if self.stopped.load(Ordering::Acquire) {
            return;
        }
        if let Rebalance::Assign(tpl) = rebalance {
            self.set_start_offsets(consumer, tpl);
        }
        if let Rebalance::Revoke(tpl) = rebalance {
            let revoked = partitions_of(tpl);
            let offsets: SinkOffsets = self
                .current
                .lock()
                .map(|c| {
                    c.iter()
                        .filter(|(tp, _)| revoked.contains(tp))
                        .map(|(tp, o)| (tp.clone(), *o))
                        .collect()
                })
                .unwrap_or_default();
            if let Ok(mut task) = self.task.lock() {
                // A refused commit is logged by `commit`; the new owner starts from the last one.
                if let Err(e) = self.commit(consumer, task.as_mut(), &offsets) {
                    self.fail(format!("flush before revocation failed: {e}"));
                }
                if let Err(e) = task.close(&revoked) {
                    self.fail(format!("close failed: {e}"));
                }
            }
            if let Ok(mut c) = self.current.lock() {
                c.retain(|tp, _| !revoked.contains(tp));
            }
            if let Ok(mut a) = self.state.assignment.lock() {
                a.retain(|tp| !revoked.contains(tp));
            }
            if let Ok(mut r) = self.revoked.lock() {
                r.extend(revoked);
            }
        }
    }

    fn post_rebalance(&self, _consumer: &BaseConsumer<Self>, rebalance: &Rebalance<'_>) {
        if self.stopped.load(Ordering::Acquire) {
            return;
        }
        match rebalance {
            Rebalance::Assign(tpl) => {
                let assigned = partitions_of(tpl);
                tracing::info!(partitions = ?assigned.iter().map(ToString::to_string).collect::<Vec<_>>(), "partitions assigned");
                if let Ok(mut a) = self.state.assignment.lock() {
                    a.extend(assigned.iter().cloned());
                }
                if let Ok(mut task) = self.task.lock()
                    && let Err(e) = task.open(&assigned)
                {
                    self.fail(format!("open failed: {e}"));
                }
            }
            Rebalance::Error(e) => tracing::warn!(error = %e, "rebalance error"),
            Rebalance::Revoke(_) => {}
        }
    }
}

/// Records per `put` when `max.poll.records` is not set.
const DEFAULT_BATCH: usize = 5000;

fn consumer_config(spec: &TaskSpec, worker: &WorkerContext) -> Result<(ClientConfig, usize)> {
    let settings = worker.client_settings(Role::Consumer, &spec.connector_config)?;
    let mut cfg = ClientConfig::new();
    cfg.set("group.id", format!("connect-{}", spec.id.connector))
        .set("auto.offset.reset", "earliest")
        // A subscribed topic that does not exist yet (its source connector creates it) or a new
        // topic matching `topics.regex` is noticed on the next metadata refresh; librdkafka's
        // default of 5 minutes would stall a fresh pipeline that long.
        .set("topic.metadata.refresh.interval.ms", "10000")
        .set(
            "client.id",
            format!("connector-consumer-{}-{}", spec.id.connector, spec.id.task),
        );
    super::apply(&mut cfg, &settings);
    cfg.set("enable.auto.commit", "false")
        .set("enable.auto.offset.store", "false");
    // Larger than Java's max.poll.records default (500): fewer, larger `put`s (the quick bench
    // moved ~170k records/s at 500 and ~970k at 5000). A user's consumer.max.poll.records still
    // caps each `put`.
    Ok((
        cfg,
        settings.max_poll_records.unwrap_or(DEFAULT_BATCH).max(1),
    ))
}

/// `topics` or `topics.regex`, exactly one (Java's rule), as librdkafka subscriptions.
pub fn subscription(config: &Config) -> Result<Vec<String>> {
    let topics: Vec<String> = config
        .get("topics")
        .map(|t| {
            t.split(',')
                .map(|s| s.trim().to_string())
                .filter(|s| !s.is_empty())
                .collect()
        })
        .unwrap_or_default();
    let regex = config
        .get("topics.regex")
        .map(|r| r.trim().to_string())
        .filter(|r| !r.is_empty());
    match (topics.is_empty(), regex) {
        (false, None) => Ok(topics),
        (true, Some(r)) => {
            regex::Regex::new(&r).map_err(|e| {
                Error::Config(format!(
                    "Invalid value {r} for configuration topics.regex: {e}"
                ))
            })?;
            Ok(vec![format!("^({r})$")])
        }
        (false, Some(_)) => Err(Error::Config(
            "topics and topics.regex are mutually exclusive options, but both are set.".into(),
        )),
        (true, None) => Err(Error::Config(
            "Must configure one of topics or topics.regex".into(),
        )),
    }
}

fn sink_record(
    c: &Converters,
    msg: &BorrowedMessage<'_>,
) -> std::result::Result<SinkRecord, (Stage, &'static str, Error)> {
    let (key_schema, key) = c
        .key
        .to_connect(msg.key())
        .map_err(|e| (Stage::KeyConverter, class_of(&c.key), e))?;
    let (value_schema, value) = c
        .value
        .to_connect(msg.payload())
        .map_err(|e| (Stage::ValueConverter, class_of(&c.value), e))?;
    let mut headers = Headers::new();
    if let Some(h) = msg.headers() {
        for header in h.iter() {
            let (schema, value) = c.header.to_connect_header(header.value);
            headers.add(header.key, schema, value);
        }
    }
    let (timestamp, timestamp_type) = match msg.timestamp() {
        Timestamp::NotAvailable => (None, TimestampType::NoTimestampType),
        Timestamp::CreateTime(t) => (Some(t), TimestampType::CreateTime),
        Timestamp::LogAppendTime(t) => (Some(t), TimestampType::LogAppendTime),
    };
    Ok(SinkRecord {
        topic: msg.topic().to_string(),
        kafka_partition: msg.partition(),
        kafka_offset: msg.offset(),
        key_schema,
        key,
        value_schema,
        value,
        timestamp,
        timestamp_type,
        headers,
    })
}

/// The record through the connector's transforms (`None`: dropped); a failure names the
/// transform's class, as the dead letter queue's headers do in Java.
fn transform(
    chain: &Chain,
    record: SinkRecord,
) -> std::result::Result<Option<SinkRecord>, (Stage, &'static str, Error)> {
    if chain.is_empty() {
        return Ok(Some(record));
    }
    let (parts, r) = Record::from_sink(record);
    match chain.apply(r) {
        Ok(r) => Ok(r.map(|r| r.into_sink(parts))),
        Err(e) => Err((
            Stage::Transformation,
            e.class,
            Error::Conversion(e.error.to_string()),
        )),
    }
}

/// A polled record converted and transformed (`None`: a transform dropped it).
type Converted = std::result::Result<Option<SinkRecord>, (Stage, &'static str, Error)>;

/// Converts and transforms `messages` in order, on this thread. Converting the halves of a
/// large batch on two threads was tried and measured slower, in wall time too, once the
/// converter got fast (2026-12-05: 3.4 ms for 5,000 records on two threads, 2.9 ms on one):
/// both threads cloning and dropping the same schema `Arc`s and cache entry bounce their
/// cache lines between cores, and the second thread took CPU the database beside it needed.
fn convert_all(
    converters: &Converters,
    chain: &Chain,
    messages: &[BorrowedMessage<'_>],
) -> Vec<Converted> {
    messages
        .iter()
        .map(|m| sink_record(converters, m).and_then(|r| transform(chain, r)))
        .collect()
}

fn dlq_for(
    policy: &ErrorPolicy,
    spec: &TaskSpec,
    worker: &WorkerContext,
) -> Result<Option<DeadLetterQueue>> {
    let Some(topic) = &policy.dlq_topic else {
        return Ok(None);
    };
    let c = &spec.connector_config;
    let producer: ThreadedProducer<_> = worker
        .client_config(
            Role::Producer,
            c,
            &[
                ("enable.idempotence", "true".into()),
                ("acks", "all".into()),
            ],
        )?
        .create()?;
    // Create the DLQ topic when missing, as Java does (1 partition, the configured factor).
    let admin: rdkafka::admin::AdminClient<_> =
        worker.client_config(Role::Admin, c, &[])?.create()?;
    let new = rdkafka::admin::NewTopic::new(
        topic,
        1,
        rdkafka::admin::TopicReplication::Fixed(i32::from(policy.dlq_replication_factor)),
    );
    super::create_topic(
        &admin,
        &new,
        "dead letter queue topic (check errors.deadletterqueue.topic.replication.factor against the cluster size)",
    )?;
    Ok(Some(DeadLetterQueue::new(
        topic.clone(),
        policy.dlq_context_headers,
        producer,
    )))
}

/// `TRIBUTARY_CHAOS_UNSAFE_COMMIT=1` in a debug build makes every sink task commit a batch's
/// offsets as soon as it is polled and hand the batch to the task only with the next one: offsets
/// committed before the data is durable, the chaos suite's proof that its checks report loss.
/// Release builds ignore it, so no deployment can turn it on.
fn unsafe_commit_requested() -> bool {
    cfg!(debug_assertions) && std::env::var("TRIBUTARY_CHAOS_UNSAFE_COMMIT").is_ok_and(|v| v == "1")
}

pub fn run(
    task: Box<dyn SinkTask>,
    spec: &TaskSpec,
    worker: &WorkerContext,
    control: &TaskControl,
    stats: &Arc<TaskStats>,
) -> Result<()> {
    let policy = ErrorPolicy::from_config(&spec.connector_config)?;
    let topics = subscription(&spec.connector_config)?;
    let chain =
        Chain::from_config(&spec.connector_config).map_err(|e| Error::Config(e.to_string()))?;
    let converters = Converters {
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
    };
    let (cfg, max_poll_records) = consumer_config(spec, worker)?;
    let failures = Arc::new(Failures {
        dlq: dlq_for(&policy, spec, worker)?,
        policy: policy.clone(),
        connector: spec.id.connector.clone(),
        task: spec.id.task,
        stats: stats.clone(),
    });
    let reporter: Option<Arc<dyn ErrantRecordReporter>> =
        if policy.tolerate_all || policy.dlq_topic.is_some() {
            Some(Arc::new(Reporter {
                failures: failures.clone(),
                key: converters.key.clone(),
                value: converters.value.clone(),
            }))
        } else {
            None
        };
    let state = Arc::new(ContextState {
        config: spec.task_config.clone(),
        assignment: Mutex::new(Vec::new()),
        requests: Mutex::new(Requests::default()),
        reporter,
    });
    let errors = ClientErrors::default();
    let consumer: BaseConsumer<SinkConsumerContext> =
        cfg.create_with_context(SinkConsumerContext {
            errors: errors.clone(),
            task: Mutex::new(task),
            state: state.clone(),
            current: Mutex::new(BTreeMap::new()),
            failure: Mutex::new(None),
            failures: failures.clone(),
            stopped: AtomicBool::new(false),
            revoked: Mutex::new(Vec::new()),
            reset_to: reset_offset(cfg.get("auto.offset.reset")),
        })?;
    check_reachable(consumer.client(), &errors, Duration::from_secs(30), &|| {
        let _ = consumer.poll(Duration::ZERO);
    })?;
    // Subscribed before the task starts, so the group join and the first fetches run while
    // the task connects to its store (a database connection alone is tens of milliseconds).
    // The assignment reaches the task only through a poll, after `start` (as in Java, `open`
    // follows `start`).
    let topic_refs: Vec<&str> = topics.iter().map(String::as_str).collect();
    consumer.subscribe(&topic_refs)?;
    let started = consumer
        .context()
        .task
        .lock()
        .map_err(|_| Error::Config("task lock poisoned".into()))?
        .start(state.clone());
    if let Err(e) = started {
        // Nothing of a task that failed to start runs, not even for an assignment or a
        // revocation the consumer's close may still bring.
        consumer.context().stopped.store(true, Ordering::Release);
        return Err(e.into());
    }
    let ctx = consumer.context();
    let status = &worker.status;
    let mut topics = super::TopicTracker::new(worker);
    let mut uncommitted: i64 = 0;
    let mut shown = None;
    let mut last_commit = Instant::now();
    let mut paused_all = false;
    let unsafe_commit = unsafe_commit_requested();
    let mut held = Vec::new();
    if unsafe_commit {
        tracing::warn!(task = %spec.id, "TRIBUTARY_CHAOS_UNSAFE_COMMIT: committing offsets before the data is durable; records will be lost on a crash");
    }
    let stopping = || control.stopping();
    let result = (|| -> Result<()> {
        while !control.stopping() {
            let state_now = if control.paused() {
                State::Paused
            } else {
                State::Running
            };
            if shown != Some(state_now) {
                status.set_task(&spec.id.connector, spec.id.task, state_now, None);
                shown = Some(state_now);
            }
            let assignment = state.assignment();
            stats.partition_count.store(
                i64::try_from(assignment.len()).unwrap_or(i64::MAX),
                Ordering::Relaxed,
            );
            let want_paused = state_now == State::Paused;
            if want_paused != paused_all && !assignment.is_empty() {
                let mut tpl = TopicPartitionList::new();
                for tp in &assignment {
                    tpl.add_partition(&tp.topic, tp.partition);
                }
                if want_paused {
                    consumer.pause(&tpl)?;
                } else {
                    consumer.resume(&tpl)?;
                }
                paused_all = want_paused;
            }
            // Poll the batch first, then convert it.
            let mut polled: Vec<BorrowedMessage<'_>> = Vec::new();
            let mut polled_next: Vec<(String, i32, i64)> = Vec::new();
            topics.begin_batch(status);
            while polled.len() < max_poll_records {
                let wait = if polled.is_empty() && polled_next.is_empty() {
                    Duration::from_millis(200)
                } else {
                    Duration::ZERO
                };
                let next = consumer.poll(wait);
                // A rebalance served inside that poll revoked partitions: drop what this batch
                // already holds of them (a message returned by the same poll came after it).
                let revoked = ctx
                    .revoked
                    .lock()
                    .map(|mut r| std::mem::take(&mut *r))
                    .unwrap_or_default();
                if !revoked.is_empty() {
                    let of_revoked = |topic: &str, partition: i32| {
                        revoked
                            .iter()
                            .any(|tp| tp.partition == partition && tp.topic == topic)
                    };
                    polled.retain(|m| !of_revoked(m.topic(), m.partition()));
                    polled_next.retain(|(t, p, _)| !of_revoked(t, *p));
                }
                match next {
                    None => break,
                    Some(Err(e)) => {
                        tracing::warn!(task = %spec.id, error = %e, "consumer error");
                        errors.record(&e, "consume");
                        break;
                    }
                    Some(Ok(msg)) => {
                        // A short list searched by reference: no allocation per record.
                        let (topic, partition) = (msg.topic(), msg.partition());
                        match polled_next
                            .iter_mut()
                            .find(|(t, p, _)| *p == partition && t == topic)
                        {
                            Some(entry) => entry.2 = msg.offset() + 1,
                            None => {
                                // First record of this partition in the batch: the cheap place
                                // to notice a topic used for the first time (KIP-558).
                                topics.saw(status, &spec.id, topic);
                                polled_next.push((topic.to_string(), partition, msg.offset() + 1))
                            }
                        }
                        polled.push(msg);
                    }
                }
            }
            if !polled.is_empty() {
                stats.read(polled.len());
                uncommitted += i64::try_from(polled.len()).unwrap_or(i64::MAX);
                stats
                    .sink_record_active
                    .store(uncommitted, Ordering::Relaxed);
            }
            let mut batch = Vec::with_capacity(polled.len());
            for (msg, converted) in polled.iter().zip(convert_all(&converters, &chain, &polled)) {
                match converted {
                    Ok(Some(r)) => batch.push(r),
                    // Dropped by a transform: its offset is committed with the batch's.
                    Ok(None) => {}
                    Err((stage, class, e)) => {
                        let headers = msg.headers().map(|h| h.detach());
                        failures.handle(
                            stage,
                            class,
                            (msg.topic(), msg.partition(), msg.offset()),
                            (msg.key(), msg.payload(), headers),
                            &e.to_string(),
                        )?;
                    }
                }
            }
            drop(polled);
            if let Some(f) = ctx.failure.lock().ok().and_then(|mut f| f.take()) {
                return Err(Error::Kafka(f));
            }
            if unsafe_commit {
                // The chaos suite's broken sink: this batch's offsets are committed now, and the
                // batch itself reaches the task only with the next one, like a buffering sink
                // whose flush was skipped. A crash in between loses it.
                let mut offsets = ctx.current.lock().map(|c| c.clone()).unwrap_or_default();
                offsets.extend(
                    polled_next
                        .iter()
                        .map(|(t, p, o)| (TopicPartition::new(t.clone(), *p), *o)),
                );
                let _refused = ctx.commit_unflushed(&consumer, &offsets)?;
                std::mem::swap(&mut batch, &mut held);
            }
            // No longer sure the partitions are this worker's (frozen or cut off past the
            // session): hold the batch until the herder renews the lease or stops the task;
            // uncommitted, it goes to the partitions' next owner.
            while !batch.is_empty() && worker.lease.expired() && !stopping() {
                std::thread::sleep(Duration::from_millis(50));
            }
            if stopping() {
                break;
            }
            if !batch.is_empty() {
                let mut task = ctx
                    .task
                    .lock()
                    .map_err(|_| Error::Config("task lock poisoned".into()))?;
                let mut delay = Duration::from_millis(100);
                loop {
                    let putting = Instant::now();
                    match task.put(&batch) {
                        Ok(()) => {
                            stats.put(batch.len(), putting.elapsed());
                            break;
                        }
                        Err(e) if e.is_retriable() && !stopping() => {
                            stats.retried();
                            // Java redelivers the same batch after a retriable failure.
                            tracing::warn!(task = %spec.id, error = %e, "put failed; retrying the batch");
                            std::thread::sleep(delay);
                            delay = (delay * 2).min(Duration::from_secs(10));
                        }
                        Err(e) => return Err(e.into()),
                    }
                }
            }
            if let Ok(mut current) = ctx.current.lock() {
                current.extend(
                    polled_next
                        .into_iter()
                        .map(|(t, p, o)| (TopicPartition::new(t, p), o)),
                );
            }
            let requests = state
                .requests
                .lock()
                .map(|mut r| std::mem::take(&mut *r))
                .unwrap_or_default();
            apply_requests(&consumer, &requests)?;
            if requests.commit || last_commit.elapsed() >= worker.offset_flush_interval {
                let committing = Instant::now();
                if commit_current(&consumer)?.is_ok() {
                    stats.committed(committing.elapsed());
                    uncommitted = 0;
                    stats.sink_record_active.store(0, Ordering::Relaxed);
                } else {
                    stats.commit_skipped();
                }
                last_commit = Instant::now();
            }
        }
        Ok(())
    })();
    let committed = commit_current(&consumer);
    let closed = {
        let mut task = ctx
            .task
            .lock()
            .map_err(|_| Error::Config("task lock poisoned".into()))?;
        let assignment = state.assignment();
        let closed = task.close(&assignment);
        ctx.stopped.store(true, Ordering::Release);
        let stopped = task.stop();
        closed.and(stopped)
    };
    drop(consumer);
    result?;
    // A refused final commit was logged; the partitions' next owner starts from the last one.
    let _refused = committed?;
    closed?;
    Ok(())
}

/// A commit the group coordinator refuses because the principal may not use the group or the
/// topic: permanent, unlike a coordinator moving or a rebalance.
fn refused_for_authorization(e: &KafkaError) -> bool {
    matches!(
        e.rdkafka_error_code(),
        Some(
            rdkafka::types::RDKafkaErrorCode::GroupAuthorizationFailed
                | rdkafka::types::RDKafkaErrorCode::TopicAuthorizationFailed
                | rdkafka::types::RDKafkaErrorCode::ClusterAuthorizationFailed
        )
    )
}

fn commit_current(
    consumer: &BaseConsumer<SinkConsumerContext>,
) -> Result<std::result::Result<(), KafkaError>> {
    let ctx = consumer.context();
    let offsets = ctx.current.lock().map(|c| c.clone()).unwrap_or_default();
    let mut task = ctx
        .task
        .lock()
        .map_err(|_| Error::Config("task lock poisoned".into()))?;
    ctx.commit(consumer, task.as_mut(), &offsets)
}

fn apply_requests(consumer: &BaseConsumer<SinkConsumerContext>, r: &Requests) -> Result<()> {
    let list = |tps: &[TopicPartition]| {
        let mut tpl = TopicPartitionList::new();
        for tp in tps {
            tpl.add_partition(&tp.topic, tp.partition);
        }
        tpl
    };
    if !r.pause.is_empty() {
        consumer.pause(&list(&r.pause))?;
    }
    if !r.resume.is_empty() {
        consumer.resume(&list(&r.resume))?;
    }
    for (tp, offset) in &r.seeks {
        consumer.seek(
            &tp.topic,
            tp.partition,
            Offset::Offset(*offset),
            Duration::from_secs(10),
        )?;
        if let Ok(mut c) = consumer.context().current.lock() {
            c.insert(tp.clone(), *offset);
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use rdkafka::types::RDKafkaErrorCode as Code;

    #[test]
    fn auto_offset_reset_names_a_start_only_for_a_place() {
        for (given, want) in [
            (Some("earliest"), Some(Offset::Beginning)),
            (Some(" smallest "), Some(Offset::Beginning)),
            (Some("latest"), Some(Offset::End)),
            (Some("largest"), Some(Offset::End)),
            (Some("none"), None),
            (Some("error"), None),
            (None, None),
        ] {
            assert_eq!(reset_offset(given), want, "{given:?}");
        }
    }

    #[test]
    fn only_authorization_refusals_of_a_commit_are_permanent() {
        for code in [
            Code::GroupAuthorizationFailed,
            Code::TopicAuthorizationFailed,
        ] {
            assert!(refused_for_authorization(&KafkaError::ConsumerCommit(code)));
        }
        for code in [
            Code::RebalanceInProgress,
            Code::NotCoordinator,
            Code::CoordinatorLoadInProgress,
            Code::UnknownMemberId,
            Code::IllegalGeneration,
        ] {
            assert!(!refused_for_authorization(&KafkaError::ConsumerCommit(
                code
            )));
        }
    }
}
