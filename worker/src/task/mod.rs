//! Task runtime: one OS thread per task (as Java), running the source or sink loop with its own
//! Kafka client. A task that fails or panics is marked FAILED with its trace; the worker carries on.

pub mod errors;
pub mod sink;
pub mod source;
pub mod submitted;
pub mod topic_creation;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use rdkafka::ClientContext;
use rdkafka::error::KafkaError;
use rdkafka::types::RDKafkaErrorCode;
use tributary_connect_api::{Config, SinkTask, SourceTask};
use tributary_connect_client::State;

use crate::config::client::{ClientSettings, Role, connector_client_settings};
use crate::error::{Error, Result};
use crate::offset_store::OffsetBackingStore;
use crate::status::StatusBoard;

/// What every task of this worker shares.
#[derive(Clone)]
pub struct WorkerContext {
    /// The worker properties as written (with providers resolved).
    pub worker_props: BTreeMap<String, String>,
    pub override_policy: String,
    pub offset_flush_interval: Duration,
    pub offset_flush_timeout: Duration,
    pub topic_creation_enable: bool,
    /// `topic.tracking.enable`: tasks report the topics they use (KIP-558).
    pub topic_tracking_enable: bool,
    /// `topic.tracking.allow.reset`.
    pub topic_tracking_allow_reset: bool,
    pub status: Arc<StatusBoard>,
    pub offsets: Arc<dyn OffsetBackingStore>,
    pub metrics: Arc<crate::metrics::Metrics>,
    /// Until when this worker may move data (distributed mode; standalone never expires).
    pub lease: Arc<Lease>,
}

/// How long a distributed worker surely is still the owner of its work: the group's last
/// confirmation of its generation plus the session timeout, renewed by the herder once it has
/// applied that generation's revocations. A worker frozen (SIGSTOP, a long GC-like stall) or cut
/// off past it may already have had its tasks handed to others; its tasks then poll and put
/// nothing until the herder renews the lease or stops them, instead of writing again what the
/// new owners write (Java relies on exactly-once fencing for that).
#[derive(Debug, Default)]
pub struct Lease {
    until: std::sync::Mutex<Option<Instant>>,
}

impl Lease {
    pub fn renew(&self, until: Instant) {
        if let Ok(mut u) = self.until.lock() {
            *u = Some(until);
        }
    }

    /// True once a lease was taken and has run out; a worker without one never expires.
    pub fn expired(&self) -> bool {
        self.until
            .lock()
            .ok()
            .and_then(|u| *u)
            .is_some_and(|until| Instant::now() >= until)
    }
}

impl std::fmt::Debug for WorkerContext {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WorkerContext").finish_non_exhaustive()
    }
}

impl WorkerContext {
    /// The context every task of a worker with these settings shares.
    pub fn new(
        config: &crate::config::worker::WorkerConfig,
        worker_props: BTreeMap<String, String>,
        status: Arc<StatusBoard>,
        offsets: Arc<dyn OffsetBackingStore>,
        metrics: Arc<crate::metrics::Metrics>,
    ) -> Self {
        use tributary_connect_api::ConfigValue;
        let on = |key: &str| !matches!(config.get(key), Some(ConfigValue::Boolean(false)));
        let ms =
            |key: &str, default: u64| Duration::from_millis(config.millis(key).unwrap_or(default));
        Self {
            worker_props,
            override_policy: match config.get("connector.client.config.override.policy") {
                Some(v) => v.to_string(),
                None => String::new(),
            },
            offset_flush_interval: ms("offset.flush.interval.ms", 60_000),
            offset_flush_timeout: ms("offset.flush.timeout.ms", 5_000),
            topic_creation_enable: on("topic.creation.enable"),
            topic_tracking_enable: on("topic.tracking.enable"),
            topic_tracking_allow_reset: on("topic.tracking.allow.reset"),
            status,
            offsets,
            metrics,
            lease: Arc::default(),
        }
    }

    /// A librdkafka config for a client of `connector`: the runtime's `defaults` first, then the
    /// worker's and the connector's translated settings (which win).
    pub fn client_config(
        &self,
        role: Role,
        connector: &Config,
        defaults: &[(&str, String)],
    ) -> Result<rdkafka::ClientConfig> {
        let mut cfg = rdkafka::ClientConfig::new();
        for (k, v) in defaults {
            cfg.set(*k, v);
        }
        apply(&mut cfg, &self.client_settings(role, connector)?);
        Ok(cfg)
    }

    /// librdkafka settings for a client of `connector`, with its overrides under the policy.
    pub fn client_settings(&self, role: Role, connector: &Config) -> Result<ClientSettings> {
        let s =
            connector_client_settings(role, &self.worker_props, connector, &self.override_policy)
                .map_err(Error::Config)?;
        for w in &s.warnings {
            tracing::warn!("{w}");
        }
        Ok(s)
    }
}

/// Adds translated settings to a librdkafka config.
///
/// `TRIBUTARY_LIBRDKAFKA_DEBUG` (librdkafka's `debug` contexts: `all`, `broker,security`, …)
/// turns on the Kafka clients' own debug lines for a support session; they go to the
/// `librdkafka` log target at DEBUG (`TRIBUTARY_LOG=info,librdkafka=debug`).
pub fn apply(cfg: &mut rdkafka::ClientConfig, settings: &ClientSettings) {
    for (k, v) in &settings.librdkafka {
        cfg.set(k, v);
    }
    if let Ok(contexts) = std::env::var("TRIBUTARY_LIBRDKAFKA_DEBUG")
        && !contexts.trim().is_empty()
    {
        cfg.set("debug", contexts.trim());
    }
}

/// Creates `topic` unless it exists; `what` names it in the log and the error.
pub fn create_topic<C: rdkafka::client::ClientContext>(
    admin: &rdkafka::admin::AdminClient<C>,
    topic: &rdkafka::admin::NewTopic<'_>,
    what: &str,
) -> Result<()> {
    let options =
        rdkafka::admin::AdminOptions::new().operation_timeout(Some(Duration::from_secs(30)));
    for r in futures::executor::block_on(admin.create_topics([topic], &options))? {
        match r {
            Ok(t) => tracing::info!(topic = %t, what, "created topic"),
            Err((_, RDKafkaErrorCode::TopicAlreadyExists)) => {}
            Err((t, code)) => {
                return Err(Error::Kafka(format!("cannot create {what} {t}: {code}")));
            }
        }
    }
    Ok(())
}

/// A task's identity, `connector-task` in logs and client ids.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct TaskId {
    pub connector: String,
    pub task: u32,
}

impl std::fmt::Display for TaskId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}-{}", self.connector, self.task)
    }
}

/// How the herder steers a running task.
#[derive(Debug, Default)]
pub struct TaskControl {
    stop: AtomicBool,
    paused: AtomicBool,
}

impl TaskControl {
    pub fn request_stop(&self) {
        self.stop.store(true, Ordering::Release);
    }
    pub fn stopping(&self) -> bool {
        self.stop.load(Ordering::Acquire)
    }
    pub fn set_paused(&self, paused: bool) {
        self.paused.store(paused, Ordering::Release);
    }
    pub fn paused(&self) -> bool {
        self.paused.load(Ordering::Acquire)
    }
}

/// Everything a task thread needs to run.
#[derive(Debug, Clone)]
pub struct TaskSpec {
    pub id: TaskId,
    /// The connector's config, placeholders resolved.
    pub connector_config: Config,
    /// This task's config from the connector, placeholders resolved.
    pub task_config: Config,
    /// Headers added to every record a source task produces (`tributary.provenance.headers`:
    /// which worker ran the task in which group generation), to audit ownership from the data.
    pub provenance: Vec<(String, Vec<u8>)>,
}

/// Which topics a task has reported as used (KIP-558): each once per task life, and again after
/// a reset of the connector's topics (the status board's epoch moves).
#[derive(Debug)]
pub(crate) struct TopicTracker {
    enabled: bool,
    reported: std::collections::HashSet<String>,
    /// The last topic seen: most records go where the previous one went.
    last: String,
    epoch: u64,
}

impl TopicTracker {
    pub(crate) fn new(worker: &WorkerContext) -> Self {
        Self {
            enabled: worker.topic_tracking_enable,
            reported: std::collections::HashSet::new(),
            last: String::new(),
            epoch: worker.status.topics_epoch(),
        }
    }

    /// Once per batch: after a reset every topic is new again.
    pub(crate) fn begin_batch(&mut self, status: &StatusBoard) {
        if self.enabled && status.topics_epoch() != self.epoch {
            self.epoch = status.topics_epoch();
            self.reported.clear();
            self.last.clear();
        }
    }

    pub(crate) fn saw(&mut self, status: &StatusBoard, id: &TaskId, topic: &str) {
        if !self.enabled || self.last == topic {
            return;
        }
        if !self.reported.contains(topic) {
            status.topic_used(&id.connector, id.task, topic);
            self.reported.insert(topic.to_string());
        }
        self.last.clear();
        self.last.push_str(topic);
    }
}

/// The plugin side of a task.
pub enum TaskPlugin {
    Source(Box<dyn SourceTask>),
    Sink(Box<dyn SinkTask>),
}

impl std::fmt::Debug for TaskPlugin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            TaskPlugin::Source(_) => "Source",
            TaskPlugin::Sink(_) => "Sink",
        })
    }
}

/// A started task: its control and its thread.
#[derive(Debug)]
pub struct TaskHandle {
    pub id: TaskId,
    pub control: Arc<TaskControl>,
    thread: Option<JoinHandle<()>>,
    /// The task's metrics live as long as the herder holds the task (a FAILED task's included,
    /// as in Java, until it is restarted or stopped).
    _metrics: crate::metrics::task::TaskGuard,
}

impl TaskHandle {
    /// Asks the task to stop and waits up to `timeout`; a task that does not stop in time is
    /// abandoned (its thread ends when its current call returns), as Java does.
    pub fn stop(mut self, timeout: Duration) {
        self.control.request_stop();
        let deadline = Instant::now() + timeout;
        if let Some(t) = self.thread.take() {
            while !t.is_finished() && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(10));
            }
            if t.is_finished() {
                let _ = t.join();
            } else {
                tracing::warn!(task = %self.id, timeout_ms = timeout.as_millis() as u64, "task did not stop in time; abandoning it");
            }
        }
    }
}

/// Starts a task on its own thread. Failures and panics end as FAILED with a trace.
pub fn spawn(
    plugin: TaskPlugin,
    spec: TaskSpec,
    worker: WorkerContext,
    paused: bool,
) -> Result<TaskHandle> {
    let control = Arc::new(TaskControl::default());
    control.set_paused(paused);
    let id = spec.id.clone();
    let thread_control = control.clone();
    let kind = match plugin {
        TaskPlugin::Source(_) => crate::metrics::task::TaskKind::Source,
        TaskPlugin::Sink(_) => crate::metrics::task::TaskKind::Sink,
    };
    let metrics = worker.metrics.task(&id.connector, id.task, kind);
    let stats = metrics.stats();
    let thread = std::thread::Builder::new()
        .name(format!("task-{}", spec.id))
        .spawn(move || {
            // KIP-449's connector context: every line this thread writes names the task.
            let span =
                tracing::info_span!("task", connector = %spec.id.connector, task = spec.id.task);
            let _context = span.enter();
            let id = spec.id.clone();
            let status = worker.status.clone();
            let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| match plugin {
                TaskPlugin::Source(t) => source::run(t, &spec, &worker, &thread_control, &stats),
                TaskPlugin::Sink(t) => sink::run(t, &spec, &worker, &thread_control, &stats),
            }));
            let failure = match outcome {
                Ok(Ok(())) => None,
                Ok(Err(e)) => Some(e.to_string()),
                Err(panic) => Some(format!(
                    "task panicked: {}",
                    panic
                        .downcast_ref::<String>()
                        .map(String::as_str)
                        .or(panic.downcast_ref::<&str>().copied())
                        .unwrap_or("(no message)")
                )),
            };
            match failure {
                Some(trace) => {
                    tracing::error!(task = %id, error = %trace, "task failed");
                    status.set_task(&id.connector, id.task, State::Failed, Some(trace));
                }
                None => tracing::info!(task = %id, "task stopped"),
            }
        })
        .map_err(|e| Error::Config(format!("cannot start a thread for task {id}: {e}")))?;
    Ok(TaskHandle {
        id,
        control,
        thread: Some(thread),
        _metrics: metrics,
    })
}

/// Client context that keeps the last fatal-looking client error (authentication, TLS,
/// all brokers down) so a task can say why it cannot reach Kafka.
#[derive(Debug, Default, Clone)]
pub struct ClientErrors {
    last: Arc<std::sync::Mutex<Option<String>>>,
}

impl ClientErrors {
    pub fn record(&self, error: &KafkaError, reason: &str) {
        let code = error.rdkafka_error_code();
        let fatal = matches!(
            code,
            Some(
                RDKafkaErrorCode::Authentication
                    | RDKafkaErrorCode::SaslAuthenticationFailed
                    | RDKafkaErrorCode::SSL
                    | RDKafkaErrorCode::AllBrokersDown
                    | RDKafkaErrorCode::Fatal
                    | RDKafkaErrorCode::TopicAuthorizationFailed
                    | RDKafkaErrorCode::ClusterAuthorizationFailed
            )
        );
        if fatal && let Ok(mut last) = self.last.lock() {
            *last = Some(format!("{error}: {reason}"));
        }
    }

    pub fn last(&self) -> Option<String> {
        self.last.lock().ok().and_then(|l| l.clone())
    }
}

/// Words of librdkafka log lines that mean the settings, not the network, are wrong.
const FATAL_LOG_WORDS: &[&str] = &[
    "authentication",
    "SASL",
    "SSL handshake",
    "certificate",
    "ssl.ca",
];

impl ClientContext for ClientErrors {
    fn error(&self, error: KafkaError, reason: &str) {
        tracing::warn!(%error, reason, "kafka client error");
        self.record(&error, reason);
    }

    /// librdkafka logs an authentication or TLS failure before (or instead of) raising an error
    /// event, and from its own threads, so the reason is caught here even while nothing polls.
    fn log(&self, level: rdkafka::config::RDKafkaLogLevel, fac: &str, message: &str) {
        use rdkafka::config::RDKafkaLogLevel as L;
        match level {
            L::Emerg | L::Alert | L::Critical | L::Error => {
                tracing::error!(target: "librdkafka", facility = fac, "{message}")
            }
            L::Warning => tracing::warn!(target: "librdkafka", facility = fac, "{message}"),
            L::Notice | L::Info => {
                tracing::info!(target: "librdkafka", facility = fac, "{message}")
            }
            L::Debug => tracing::debug!(target: "librdkafka", facility = fac, "{message}"),
        }
        let serious = matches!(
            level,
            L::Emerg | L::Alert | L::Critical | L::Error | L::Warning
        );
        if serious
            && FATAL_LOG_WORDS.iter().any(|w| {
                message
                    .to_ascii_lowercase()
                    .contains(&w.to_ascii_lowercase())
            })
            && let Ok(mut last) = self.last.lock()
        {
            *last = Some(message.to_string());
        }
    }
}

impl rdkafka::consumer::ConsumerContext for ClientErrors {}

/// Fails with the client's last error when the cluster cannot be reached at start-up, so a wrong
/// password or certificate shows as the task's trace instead of a silent hang.
/// `serve` polls the client once: rdkafka routes librdkafka's logs and error events through the
/// client's main queue, which only a poll serves.
pub fn check_reachable<C: ClientContext>(
    client: &rdkafka::client::Client<C>,
    errors: &ClientErrors,
    timeout: Duration,
    serve: &dyn Fn(),
) -> Result<()> {
    let deadline = Instant::now() + timeout;
    loop {
        let e = match client.fetch_metadata(None, Duration::from_secs(2)) {
            Ok(_) => return Ok(()),
            Err(e) => e,
        };
        serve();
        // A refused login or certificate will not fix itself: say so at once.
        if let Some(reason) = errors.last() {
            return Err(Error::Kafka(format!(
                "cannot reach the Kafka cluster: {reason}"
            )));
        }
        if Instant::now() >= deadline {
            return Err(Error::Kafka(format!("cannot reach the Kafka cluster: {e}")));
        }
    }
}

#[cfg(test)]
mod topic_tracker_tests {
    use super::*;

    #[test]
    fn a_topic_is_reported_once_per_life_and_again_after_a_reset() {
        let status = Arc::new(StatusBoard::new("w:1".into()));
        let worker = WorkerContext {
            worker_props: BTreeMap::new(),
            override_policy: String::new(),
            offset_flush_interval: Duration::from_secs(60),
            offset_flush_timeout: Duration::from_secs(5),
            topic_creation_enable: true,
            topic_tracking_enable: true,
            topic_tracking_allow_reset: true,
            status: status.clone(),
            offsets: Arc::new(
                crate::offset_store::FileOffsetStore::open(
                    &std::env::temp_dir().join(format!("tracker-{}.offsets", std::process::id())),
                )
                .unwrap_or_else(|e| panic!("{e}")),
            ),
            metrics: Arc::new(crate::metrics::Metrics::new(status.clone())),
            lease: Arc::default(),
        };
        let id = TaskId {
            connector: "c".into(),
            task: 2,
        };
        let mut t = TopicTracker::new(&worker);
        t.begin_batch(&status);
        for topic in ["a", "a", "b", "a"] {
            t.saw(&status, &id, topic);
        }
        assert_eq!(
            status.topics("c"),
            BTreeMap::from([("a".into(), 2), ("b".into(), 2)])
        );
        status.reset_topics("c");
        t.saw(&status, &id, "b");
        assert!(
            status.topics("c").is_empty(),
            "a reset takes effect at the next batch"
        );
        t.begin_batch(&status);
        t.saw(&status, &id, "b");
        assert_eq!(status.topics("c"), BTreeMap::from([("b".into(), 2)]));
    }
}

#[cfg(test)]
mod lease_tests {
    use super::*;

    #[test]
    fn a_lease_never_taken_never_expires_and_a_taken_one_runs_out() {
        let lease = Lease::default();
        assert!(
            !lease.expired(),
            "standalone workers hold no lease and move data always"
        );
        lease.renew(Instant::now() + Duration::from_secs(60));
        assert!(!lease.expired());
        lease.renew(Instant::now() - Duration::from_millis(1));
        assert!(
            lease.expired(),
            "frozen past its session: the tasks stop moving data"
        );
        lease.renew(Instant::now() + Duration::from_secs(60));
        assert!(!lease.expired(), "renewed after the rejoin");
    }
}
