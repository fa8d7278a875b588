//! Prometheus metrics of the worker, served on the health listener's `/metrics`.
//!
//! Named as Strimzi's JMX exporter rules name Java's MBean attributes (its
//! `kafka-connect-metrics.yaml`: `kafka.connect<type=X-metrics, …><>attr` becomes
//! `kafka_connect_X_attr`, lower case, `-` as `_`), so dashboards and alerts written for
//! Strimzi's Kafka Connect read them unchanged: `connector-metrics`, `connector-task-metrics`,
//! `source-task-metrics`, `sink-task-metrics`, `task-error-metrics`, `connect-worker-metrics`,
//! `connect-worker-rebalance-metrics`, `connect-coordinator-metrics` and `app-info`. Like
//! Java's, a connector or task is reported by the worker that runs it, so summing over workers
//! counts each once. Everything is read at scrape time into a registry built for that scrape
//! (two scrapes at once never see each other's half-filled families). `docs/metrics.md` lists
//! them all; it is generated from [`Metrics::render`] by a test.

pub mod task;
pub mod worker;

pub use tributary_connect_client::exposition::{catalogue, prometheus_text};

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;
use tributary_connect_client::{ConnectorType, State};

use crate::status::{Local, StatusBoard};
use task::{TaskKind, TaskRegistry, TaskStats};
use worker::{Rebalances, Startups};

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct TaskLabels {
    connector: String,
    task: String,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ConnectorLabels {
    connector: String,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ConnectorStatusLabels {
    connector: String,
    status: String,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct TaskStatusLabels {
    connector: String,
    task: String,
    status: String,
}

/// Labels whose names are not Rust identifiers (`clientId`) or vary by family.
type Pairs = Vec<(String, String)>;

/// Java's per-connector task counts on a worker (`connect-worker-metrics`), by the state each
/// counts; `None` counts every task.
const TASK_COUNTS: [(&str, Option<State>); 7] = [
    ("connector_total_task_count", None),
    ("connector_running_task_count", Some(State::Running)),
    ("connector_paused_task_count", Some(State::Paused)),
    ("connector_failed_task_count", Some(State::Failed)),
    ("connector_unassigned_task_count", Some(State::Unassigned)),
    ("connector_destroyed_task_count", Some(State::Destroyed)),
    ("connector_restarting_task_count", Some(State::Restarting)),
];

/// What the task loops, the herder and the group member report, and the status board; turned
/// into one exposition per scrape.
#[derive(Debug)]
pub struct Metrics {
    status: Arc<StatusBoard>,
    /// The tasks' own statistics (see [`task`]).
    pub tasks: Arc<TaskRegistry>,
    pub connector_startups: Startups,
    pub task_startups: Startups,
    /// A distributed worker's group rounds; nothing is exported until the first begins.
    pub rebalances: Arc<Rebalances>,
    started_ms: u64,
}

impl Metrics {
    pub fn new(status: Arc<StatusBoard>) -> Self {
        let started_ms = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX));
        Self {
            status,
            tasks: Arc::default(),
            connector_startups: Startups::default(),
            task_startups: Startups::default(),
            rebalances: Arc::default(),
            started_ms,
        }
    }

    /// Statistics for a task starting now, removed when the returned guard is dropped.
    pub fn task(&self, connector: &str, task: u32, kind: TaskKind) -> task::TaskGuard {
        self.tasks.register(connector, task, kind)
    }

    /// The OpenMetrics text of everything, as of now.
    pub fn render(&self) -> String {
        let mut registry = state_registry(&self.status.local());
        self.register_worker(&mut registry);
        register_tasks(&mut registry, &self.tasks.snapshot());
        let mut out = String::new();
        let encoded = prometheus_client::encoding::text::encode_registry(&mut out, &registry)
            .and_then(|()| prometheus_client::encoding::text::encode_eof(&mut out));
        if encoded.is_err() {
            out.clear();
        }
        out
    }

    fn register_worker(&self, registry: &mut Registry) {
        let worker_id = self.status.worker_id().to_string();
        for (what, startups, shown) in [
            ("connector", &self.connector_startups, "Connector"),
            ("task", &self.task_startups, "Task"),
        ] {
            for (suffix, value, help) in [
                ("attempts", &startups.attempts, "attempted"),
                ("success", &startups.successes, "that succeeded"),
                ("failure", &startups.failures, "that failed"),
            ] {
                let c = Counter::<u64>::default();
                c.inc_by(value.load(Ordering::Relaxed));
                registry.register(
                    format!("kafka_connect_worker_{what}_startup_{suffix}"),
                    format!("{shown} start-ups on this worker {help}"),
                    c,
                );
            }
            let (ok, failed) = startups.percentages();
            for (suffix, value) in [("success", ok), ("failure", failed)] {
                registry.register(
                    format!("kafka_connect_worker_{what}_startup_{suffix}_percentage"),
                    format!("Share (0-1) of this worker's {what} start-ups with outcome {suffix}"),
                    float_gauge(value),
                );
            }
        }
        let client = || vec![("clientId".to_string(), worker_id.clone())];
        registry.register(
            "kafka_connect_start_time_seconds",
            "When this worker started, in seconds since the epoch (Java's app-info start-time-ms)",
            pairs_gauge([(client(), self.started_ms as f64 / 1000.0)]),
        );
        let mut version = client();
        version.push(("version".into(), env!("CARGO_PKG_VERSION").into()));
        registry.register(
            "kafka_connect_version_info",
            "This worker's version (1 for its version label)",
            pairs_gauge([(version, 1.0)]),
        );
        if let Some(r) = self.rebalances.view() {
            let c = Counter::<u64>::default();
            c.inc_by(r.completed);
            registry.register(
                "kafka_connect_worker_rebalance_completed_rebalances",
                "Group rounds this worker completed",
                c,
            );
            for (name, value, help) in [
                (
                    "rebalancing",
                    f64::from(u8::from(r.rebalancing)),
                    "1 while this worker is in a group round",
                ),
                (
                    "epoch",
                    f64::from(r.epoch),
                    "The generation of the last round this worker completed",
                ),
                (
                    "rebalance_avg_time_ms",
                    r.avg_ms,
                    "Average time of the recent rounds, from the first JoinGroup to the assignment",
                ),
                (
                    "rebalance_max_time_ms",
                    r.max_ms,
                    "Longest of the recent rounds",
                ),
                (
                    "time_since_last_rebalance_ms",
                    r.since_last_ms,
                    "Time since the last completed round (-1 before the first)",
                ),
            ] {
                registry.register(
                    format!("kafka_connect_worker_rebalance_{name}"),
                    help,
                    float_gauge(value),
                );
            }
            registry.register(
                "kafka_connect_worker_rebalance_leader_name",
                "The group leader's REST URL (1 for its leader_name label)",
                pairs_gauge([(vec![("leader_name".into(), r.leader.clone())], 1.0)]),
            );
            registry.register(
                "kafka_connect_worker_rebalance_connect_protocol",
                "The group's Connect protocol (1 for its connect_protocol label)",
                pairs_gauge([(vec![("connect_protocol".into(), r.protocol.clone())], 1.0)]),
            );
            registry.register(
                "kafka_connect_coordinator_assigned_connectors",
                "Connectors the last round assigned to this worker",
                float_gauge(r.assigned_connectors as f64),
            );
            registry.register(
                "kafka_connect_coordinator_assigned_tasks",
                "Tasks the last round assigned to this worker",
                float_gauge(r.assigned_tasks as f64),
            );
        }
        if let Some((cpu, rss, threads)) = worker::process_stats() {
            let c = Counter::<f64, std::sync::atomic::AtomicU64>::default();
            c.inc_by(cpu);
            registry.register(
                "process_cpu_seconds",
                "User and system CPU time of this worker",
                c,
            );
            registry.register(
                "process_resident_memory_bytes",
                "Resident memory of this worker",
                float_gauge(rss),
            );
            registry.register(
                "process_threads",
                "Threads of this worker",
                float_gauge(threads),
            );
        }
    }
}

fn float_gauge(value: f64) -> Gauge<f64, std::sync::atomic::AtomicU64> {
    let g = Gauge::<f64, std::sync::atomic::AtomicU64>::default();
    g.set(value);
    g
}

fn pairs_gauge(
    rows: impl IntoIterator<Item = (Pairs, f64)>,
) -> Family<Pairs, Gauge<f64, std::sync::atomic::AtomicU64>> {
    let family = Family::<Pairs, Gauge<f64, std::sync::atomic::AtomicU64>>::default();
    for (labels, value) in rows {
        family.get_or_create(&labels).set(value);
    }
    family
}

/// One task metric: its Strimzi name, its help, and how it reads a task's statistics (`None`
/// when the task's kind does not report it).
type Reader = fn(&TaskStats) -> Option<f64>;

fn source(s: &TaskStats) -> Option<&TaskStats> {
    (s.kind == TaskKind::Source).then_some(s)
}

fn sink(s: &TaskStats) -> Option<&TaskStats> {
    (s.kind == TaskKind::Sink).then_some(s)
}

fn load(a: &AtomicU64) -> f64 {
    a.load(Ordering::Relaxed) as f64
}

fn load_i(a: &std::sync::atomic::AtomicI64) -> f64 {
    a.load(Ordering::Relaxed) as f64
}

/// Counters (`-total` attributes, exported with the `_total` suffix).
const TASK_COUNTERS: [(&str, &str, Reader); 6] = [
    (
        "kafka_connect_source_task_source_record_poll",
        "Records the source task's poll() returned, before transforms",
        |s| source(s).map(|s| load(&s.source_record_poll_total)),
    ),
    (
        "kafka_connect_source_task_source_record_write",
        "Records the source task handed to the producer, after transforms",
        |s| source(s).map(|s| load(&s.source_record_write_total)),
    ),
    (
        "kafka_connect_sink_task_sink_record_read",
        "Records the sink task's consumer read, before transforms",
        |s| sink(s).map(|s| load(&s.sink_record_read_total)),
    ),
    (
        "kafka_connect_sink_task_sink_record_send",
        "Records the sink task's put() was given, after transforms",
        |s| sink(s).map(|s| load(&s.sink_record_send_total)),
    ),
    (
        "kafka_connect_sink_task_offset_commit_completion",
        "Sink offset commits that completed",
        |s| sink(s).map(|s| load(&s.offset_commit_completion_total)),
    ),
    (
        "kafka_connect_sink_task_offset_commit_skip",
        "Sink offset commits the group coordinator refused (retried at the next commit)",
        |s| sink(s).map(|s| load(&s.offset_commit_skip_total)),
    ),
];

/// Gauges (every other attribute Strimzi's rules export).
const TASK_GAUGES: [(&str, &str, Reader); 24] = [
    (
        "kafka_connect_connector_task_batch_size_avg",
        "Average records per batch (poll or consumer read) over the recent windows",
        |s| Some(s.batch_size.avg()),
    ),
    (
        "kafka_connect_connector_task_batch_size_max",
        "Largest batch over the recent windows",
        |s| Some(s.batch_size.max()),
    ),
    (
        "kafka_connect_connector_task_offset_commit_avg_time_ms",
        "Average offset commit time over the recent windows",
        |s| Some(s.offset_commit_time_ms.avg()),
    ),
    (
        "kafka_connect_connector_task_offset_commit_max_time_ms",
        "Longest offset commit over the recent windows",
        |s| Some(s.offset_commit_time_ms.max()),
    ),
    (
        "kafka_connect_source_task_source_record_poll_rate",
        "Records per second the source task's poll() returned",
        |s| source(s).map(|s| s.source_record_poll.rate()),
    ),
    (
        "kafka_connect_source_task_source_record_write_rate",
        "Records per second the source task handed to the producer",
        |s| source(s).map(|s| s.source_record_write.rate()),
    ),
    (
        "kafka_connect_source_task_source_record_active_count",
        "Records handed to the producer and not yet acknowledged",
        |s| source(s).map(|s| load_i(&s.source_record_active)),
    ),
    (
        "kafka_connect_source_task_poll_batch_avg_time_ms",
        "Average time of the source task's poll() over the recent windows",
        |s| source(s).map(|s| s.poll_batch_time_ms.avg()),
    ),
    (
        "kafka_connect_source_task_poll_batch_max_time_ms",
        "Longest poll() over the recent windows",
        |s| source(s).map(|s| s.poll_batch_time_ms.max()),
    ),
    (
        "kafka_connect_sink_task_sink_record_read_rate",
        "Records per second the sink task's consumer read",
        |s| sink(s).map(|s| s.sink_record_read.rate()),
    ),
    (
        "kafka_connect_sink_task_sink_record_send_rate",
        "Records per second the sink task's put() was given",
        |s| sink(s).map(|s| s.sink_record_send.rate()),
    ),
    (
        "kafka_connect_sink_task_sink_record_active_count",
        "Records read and not yet committed",
        |s| sink(s).map(|s| load_i(&s.sink_record_active)),
    ),
    (
        "kafka_connect_sink_task_partition_count",
        "Topic partitions assigned to the sink task",
        |s| sink(s).map(|s| load_i(&s.partition_count)),
    ),
    (
        "kafka_connect_sink_task_offset_commit_seq_no",
        "Sequence number of the sink task's last offset commit",
        |s| sink(s).map(|s| load_i(&s.offset_commit_seq_no)),
    ),
    (
        "kafka_connect_sink_task_put_batch_avg_time_ms",
        "Average time of the sink task's put() over the recent windows",
        |s| sink(s).map(|s| s.put_batch_time_ms.avg()),
    ),
    (
        "kafka_connect_sink_task_put_batch_max_time_ms",
        "Longest put() over the recent windows",
        |s| sink(s).map(|s| s.put_batch_time_ms.max()),
    ),
    (
        "kafka_connect_task_error_total_record_errors",
        "Record errors in the task (conversion, transformation, reported by the task)",
        |s| Some(load(&s.record_errors)),
    ),
    (
        "kafka_connect_task_error_total_record_failures",
        "Failed attempts at records, retries included",
        |s| Some(load(&s.record_failures)),
    ),
    (
        "kafka_connect_task_error_total_records_skipped",
        "Records skipped under errors.tolerance=all",
        |s| Some(load(&s.records_skipped)),
    ),
    (
        "kafka_connect_task_error_total_retries",
        "Operations retried under errors.retry.timeout",
        |s| Some(load(&s.retries)),
    ),
    (
        "kafka_connect_task_error_total_errors_logged",
        "Errors logged under errors.log.enable",
        |s| Some(load(&s.errors_logged)),
    ),
    (
        "kafka_connect_task_error_deadletterqueue_produce_requests",
        "Records sent to the dead letter queue",
        |s| Some(load(&s.dlq_produce_requests)),
    ),
    (
        "kafka_connect_task_error_deadletterqueue_produce_failures",
        "Records the dead letter queue could not take",
        |s| Some(load(&s.dlq_produce_failures)),
    ),
    (
        "kafka_connect_task_error_last_error_timestamp",
        "Milliseconds since the epoch of the task's last record error (0 before any)",
        |s| Some(load_i(&s.last_error_timestamp)),
    ),
];

fn register_tasks(registry: &mut Registry, tasks: &[((String, u32), Arc<TaskStats>)]) {
    let labels = |(c, t): &(String, u32)| TaskLabels {
        connector: c.clone(),
        task: t.to_string(),
    };
    for (name, help, read) in TASK_COUNTERS {
        let family = Family::<TaskLabels, Counter<u64>>::default();
        for (key, stats) in tasks {
            if let Some(v) = read(stats) {
                family.get_or_create(&labels(key)).inc_by(v as u64);
            }
        }
        registry.register(name, help, family);
    }
    for (name, help, read) in TASK_GAUGES {
        let family = Family::<TaskLabels, Gauge<f64, std::sync::atomic::AtomicU64>>::default();
        for (key, stats) in tasks {
            if let Some(v) = read(stats) {
                family.get_or_create(&labels(key)).set(v);
            }
        }
        registry.register(name, help, family);
    }
}

/// The state gauges of what this worker runs.
fn state_registry(local: &[Local]) -> Registry {
    let mut registry = Registry::default();
    let connector_status = Family::<ConnectorStatusLabels, Gauge>::default();
    let task_status = Family::<TaskStatusLabels, Gauge>::default();
    let connector_count = Gauge::<i64>::default();
    let task_count = Gauge::<i64>::default();
    let class = Family::<Pairs, Gauge>::default();
    let type_ = Family::<Pairs, Gauge>::default();
    let version = Family::<Pairs, Gauge>::default();
    for c in local {
        if let Some(state) = c.connector {
            connector_count.inc();
            connector_status
                .get_or_create(&ConnectorStatusLabels {
                    connector: c.name.clone(),
                    status: status_label(state),
                })
                .set(1);
            let with = |label: &str, value: &str| {
                vec![
                    ("connector".to_string(), c.name.clone()),
                    (label.to_string(), value.to_string()),
                ]
            };
            if let Some(v) = &c.class {
                class.get_or_create(&with("connector_class", v)).set(1);
            }
            if let Some(t) = c.type_.filter(|t| *t != ConnectorType::Unknown) {
                let t = match t {
                    ConnectorType::Source => "source",
                    _ => "sink",
                };
                type_.get_or_create(&with("connector_type", t)).set(1);
            }
            if let Some(v) = &c.version {
                version.get_or_create(&with("connector_version", v)).set(1);
            }
        }
        for (task, state) in &c.tasks {
            task_count.inc();
            task_status
                .get_or_create(&TaskStatusLabels {
                    connector: c.name.clone(),
                    task: task.to_string(),
                    status: status_label(*state),
                })
                .set(1);
        }
    }
    registry.register(
        "kafka_connect_connector_status",
        "State of a connector this worker runs (1 for its status label), as Java's connector-metrics status",
        connector_status,
    );
    registry.register(
        "kafka_connect_connector_connector_class",
        "Class of a connector this worker runs (1 for its connector_class label)",
        class,
    );
    registry.register(
        "kafka_connect_connector_connector_type",
        "Type of a connector this worker runs: source or sink (1 for its connector_type label)",
        type_,
    );
    registry.register(
        "kafka_connect_connector_connector_version",
        "Version of a connector this worker runs (1 for its connector_version label)",
        version,
    );
    registry.register(
        "kafka_connect_connector_task_status",
        "State of a task this worker runs (1 for its status label), as Java's connector-task-metrics status",
        task_status,
    );
    registry.register(
        "kafka_connect_worker_connector_count",
        "Connectors run on this worker",
        connector_count,
    );
    registry.register(
        "kafka_connect_worker_task_count",
        "Tasks run on this worker",
        task_count,
    );
    for (name, counted) in TASK_COUNTS {
        let family = Family::<ConnectorLabels, Gauge>::default();
        for c in local.iter().filter(|c| !c.tasks.is_empty()) {
            let n = c
                .tasks
                .iter()
                .filter(|(_, s)| counted.is_none_or(|want| *s == want))
                .count();
            family
                .get_or_create(&ConnectorLabels {
                    connector: c.name.clone(),
                })
                .set(i64::try_from(n).unwrap_or(i64::MAX));
        }
        let help = match counted {
            None => "Tasks of the connector on this worker".to_string(),
            Some(s) => format!(
                "Tasks of the connector on this worker in state {}",
                s.as_str()
            ),
        };
        registry.register(format!("kafka_connect_worker_{name}"), help, family);
    }
    registry
}

/// Java's status attribute: the state's name in lower case.
fn status_label(state: State) -> String {
    state.as_str().to_ascii_lowercase()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn render(local: &[Local]) -> String {
        let mut out = String::new();
        prometheus_client::encoding::text::encode(&mut out, &state_registry(local)).unwrap();
        out
    }

    #[test]
    fn states_are_named_as_strimzis_rules_name_javas() {
        let text = render(&[
            Local {
                name: "up".into(),
                connector: Some(State::Running),
                tasks: vec![(0, State::Running), (1, State::Failed)],
                class: Some("FileStreamSource".into()),
                type_: Some(ConnectorType::Source),
                version: Some("4.1.0".into()),
            },
            Local {
                name: "broken".into(),
                connector: Some(State::Failed),
                tasks: vec![],
                class: None,
                type_: None,
                version: None,
            },
            Local {
                name: "elsewhere".into(),
                connector: None,
                tasks: vec![(2, State::Paused)],
                class: None,
                type_: None,
                version: None,
            },
        ]);
        for line in [
            r#"kafka_connect_connector_status{connector="up",status="running"} 1"#,
            r#"kafka_connect_connector_status{connector="broken",status="failed"} 1"#,
            r#"kafka_connect_connector_task_status{connector="up",task="1",status="failed"} 1"#,
            r#"kafka_connect_connector_task_status{connector="elsewhere",task="2",status="paused"} 1"#,
            "kafka_connect_worker_connector_count 2",
            "kafka_connect_worker_task_count 3",
            r#"kafka_connect_worker_connector_failed_task_count{connector="up"} 1"#,
            r#"kafka_connect_worker_connector_running_task_count{connector="up"} 1"#,
            r#"kafka_connect_worker_connector_total_task_count{connector="up"} 2"#,
            r#"kafka_connect_worker_connector_paused_task_count{connector="elsewhere"} 1"#,
            r#"kafka_connect_worker_connector_failed_task_count{connector="elsewhere"} 0"#,
            "# TYPE kafka_connect_connector_status gauge",
            r#"kafka_connect_connector_connector_class{connector="up",connector_class="FileStreamSource"} 1"#,
            r#"kafka_connect_connector_connector_type{connector="up",connector_type="source"} 1"#,
            r#"kafka_connect_connector_connector_version{connector="up",connector_version="4.1.0"} 1"#,
        ] {
            assert!(text.contains(line), "{line} missing from\n{text}");
        }
        // A connector whose tasks run elsewhere has no task counts here, and one running
        // elsewhere no status.
        assert!(
            !text.contains(r#"task_count{connector="broken"}"#),
            "{text}"
        );
        assert!(
            !text.contains(r#"connector_status{connector="elsewhere""#),
            "{text}"
        );
    }

    #[test]
    fn an_idle_worker_reports_zero_connectors_and_tasks() {
        let text = render(&[]);
        assert!(
            text.contains("kafka_connect_worker_connector_count 0"),
            "{text}"
        );
        assert!(text.contains("kafka_connect_worker_task_count 0"), "{text}");
        // As the JMX exporter shows no MBean for a connector that is not there.
        assert!(!text.contains("kafka_connect_connector_status{"), "{text}");
    }

    #[test]
    fn counters_and_states_are_one_exposition_with_one_eof() {
        let board = Arc::new(StatusBoard::new("w:1".into()));
        board.set_task("c", 0, State::Running, None);
        let m = Metrics::new(board);
        let t = m.task("c", 0, TaskKind::Source);
        t.polled(3, std::time::Duration::from_millis(4));
        t.written(1);
        let text = m.render();
        for line in [
            r#"kafka_connect_source_task_source_record_poll_total{connector="c",task="0"} 3"#,
            r#"kafka_connect_source_task_source_record_write_total{connector="c",task="0"} 1"#,
            r#"kafka_connect_source_task_poll_batch_max_time_ms{connector="c",task="0"} 4.0"#,
            r#"kafka_connect_connector_task_batch_size_avg{connector="c",task="0"} 3.0"#,
            r#"kafka_connect_task_error_total_record_errors{connector="c",task="0"} 0.0"#,
            r#"kafka_connect_worker_task_startup_attempts_total 0"#,
            r#"kafka_connect_start_time_seconds{clientId="w:1"} "#,
            r#"kafka_connect_version_info{clientId="w:1",version=""#,
            "process_cpu_seconds_total ",
        ] {
            assert!(text.contains(line), "{line} missing from\n{text}");
        }
        // A source task has no sink-task metrics, and a standalone worker no rebalance ones.
        assert!(
            !text.contains("kafka_connect_sink_task_sink_record_read_total{"),
            "{text}"
        );
        assert!(!text.contains("kafka_connect_worker_rebalance_"), "{text}");
        drop(t);
        assert!(
            !m.render().contains(r#"{connector="c",task="0"} 3"#),
            "a stopped task's metrics go"
        );
        assert!(text.contains(
            r#"kafka_connect_connector_task_status{connector="c",task="0",status="running"} 1"#
        ));
        assert_eq!(text.matches("# EOF").count(), 1, "{text}");
        assert!(text.ends_with("# EOF\n"), "{text}");
    }

    #[test]
    fn a_rendered_registry_converts_without_losing_a_sample() {
        let m = Metrics::new(Arc::new(StatusBoard::new("w:1".into())));
        let t = m.task("c", 0, TaskKind::Sink);
        t.read(3);
        m.rebalances.started();
        m.rebalances
            .completed(3, "http://w:8083/", "sessioned", (1, 1));
        let text = prometheus_text(&m.render());
        assert!(!text.contains("# EOF"), "{text}");
        let samples = |t: &str| {
            t.lines()
                .filter(|l| !l.starts_with('#') && !l.contains("_created"))
                .count()
        };
        assert_eq!(samples(&text), samples(&m.render()));
        for line in text
            .lines()
            .filter(|l| l.starts_with("# TYPE ") && l.ends_with(" counter"))
        {
            assert!(
                line.split(' ')
                    .nth(2)
                    .is_some_and(|n| n.ends_with("_total")),
                "{line}"
            );
        }
    }
}

/// Java's metric group (MBean type) a family comes from.
pub fn java_group(name: &str) -> &'static str {
    if name.starts_with("kafka_connect_worker_connector_") && name.ends_with("_task_count") {
        return "connect-worker-metrics (per connector)";
    }
    const GROUPS: [(&str, &str); 11] = [
        (
            "kafka_connect_worker_rebalance_",
            "connect-worker-rebalance-metrics",
        ),
        ("kafka_connect_worker_", "connect-worker-metrics"),
        ("kafka_connect_coordinator_", "connect-coordinator-metrics"),
        ("kafka_connect_connector_task_", "connector-task-metrics"),
        ("kafka_connect_connector_", "connector-metrics"),
        ("kafka_connect_source_task_", "source-task-metrics"),
        ("kafka_connect_sink_task_", "sink-task-metrics"),
        ("kafka_connect_task_error_", "task-error-metrics"),
        ("kafka_connect_start_time", "app-info"),
        ("kafka_connect_version", "app-info"),
        ("process_", "(process)"),
    ];
    GROUPS
        .iter()
        .find(|(prefix, _)| name.starts_with(prefix))
        .map_or("", |(_, g)| g)
}

#[cfg(test)]
mod docs {
    use super::*;
    use std::time::Duration;

    /// A worker with everything it can report: a distributed round, a connector, a source and
    /// a sink task.
    fn full() -> String {
        let board = Arc::new(StatusBoard::new("10.0.0.1:8083".into()));
        board.set_connector("c", ConnectorType::Source, State::Running, None);
        board.set_class("c", "FileStreamSource");
        board.set_version("c", "1".into());
        board.set_task("c", 0, State::Running, None);
        let m = Metrics::new(board);
        let source = m.task("c", 0, TaskKind::Source);
        source.polled(1, Duration::from_millis(1));
        let sink = m.task("c", 1, TaskKind::Sink);
        sink.read(1);
        m.rebalances.started();
        m.rebalances
            .completed(1, "http://10.0.0.1:8083/", "sessioned", (1, 2));
        prometheus_text(&m.render())
    }

    #[test]
    fn docs_metrics_md_lists_every_worker_metric() {
        let table = tributary_connect_client::exposition::markdown_table(
            &full(),
            Some(("Java group", java_group)),
        );
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs/metrics.md");
        if let Err(e) = tributary_connect_client::exposition::check_generated(
            &path,
            "worker-metrics",
            &table,
            "the worker",
        ) {
            panic!("{e}");
        }
    }

    #[test]
    fn every_family_has_help_and_a_known_group() {
        for (name, _, _, help) in catalogue(&full()) {
            assert!(!help.is_empty(), "{name} has no help");
            assert!(!java_group(&name).is_empty(), "{name} has no group");
        }
    }
}
