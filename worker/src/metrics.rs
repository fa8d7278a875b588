//! Prometheus metrics of the worker, served on the health listener's `/metrics`.
//!
//! Two kinds: counters the task loops update (prefixed `tributary_`), and the states of the
//! connectors and tasks this worker runs, read from its status board at scrape time and named
//! as Strimzi's JMX exporter rules name Java's `connector-metrics`, `connector-task-metrics`
//! and `connect-worker-metrics` (`kafka_connect_connector_status`,
//! `kafka_connect_connector_task_status`, `kafka_connect_worker_connector_failed_task_count`, …),
//! so dashboards and alerts written for Strimzi's Kafka Connect work unchanged. Like Java's, a
//! state is reported by the worker that runs the connector or task, so summing over workers
//! counts each once.

use std::sync::Arc;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;
use tributary_connect_client::State;

use crate::status::{Local, StatusBoard};

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct TaskLabels {
    pub connector: String,
    pub task: String,
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

/// Counters the task loops update, and the state gauges rendered from the status board.
#[derive(Debug)]
pub struct Metrics {
    registry: Registry,
    status: Arc<StatusBoard>,
    pub source_records: Family<TaskLabels, Counter>,
    pub sink_records: Family<TaskLabels, Counter>,
    pub record_errors: Family<TaskLabels, Counter>,
    pub offset_commits: Family<TaskLabels, Counter>,
}

impl Metrics {
    pub fn new(status: Arc<StatusBoard>) -> Self {
        let mut registry = Registry::with_prefix("tributary");
        let source_records = Family::<TaskLabels, Counter>::default();
        let sink_records = Family::<TaskLabels, Counter>::default();
        let record_errors = Family::<TaskLabels, Counter>::default();
        let offset_commits = Family::<TaskLabels, Counter>::default();
        registry.register(
            "source_records_sent",
            "Records source tasks handed to the producer",
            source_records.clone(),
        );
        registry.register(
            "sink_records_put",
            "Records sink tasks were given",
            sink_records.clone(),
        );
        registry.register(
            "record_errors",
            "Records skipped or sent to the dead letter queue under errors.tolerance=all",
            record_errors.clone(),
        );
        registry.register(
            "offset_commits",
            "Offset commits (source offset flushes and sink consumer commits)",
            offset_commits.clone(),
        );
        Self {
            registry,
            status,
            source_records,
            sink_records,
            record_errors,
            offset_commits,
        }
    }

    pub fn task_labels(connector: &str, task: u32) -> TaskLabels {
        TaskLabels {
            connector: connector.to_string(),
            task: task.to_string(),
        }
    }

    /// The OpenMetrics text: the counters, and the states as of now.
    pub fn render(&self) -> String {
        let states = state_registry(&self.status.local());
        let mut out = String::new();
        let encoded = prometheus_client::encoding::text::encode_registry(&mut out, &self.registry)
            .and_then(|()| prometheus_client::encoding::text::encode_registry(&mut out, &states))
            .and_then(|()| prometheus_client::encoding::text::encode_eof(&mut out));
        if encoded.is_err() {
            out.clear();
        }
        out
    }
}

/// The state gauges of what this worker runs, in a registry of their own built for one scrape
/// (so two scrapes at once never see each other's half-filled families).
fn state_registry(local: &[Local]) -> Registry {
    let mut registry = Registry::default();
    let connector_status = Family::<ConnectorStatusLabels, Gauge>::default();
    let task_status = Family::<TaskStatusLabels, Gauge>::default();
    let connector_count = Gauge::<i64>::default();
    let task_count = Gauge::<i64>::default();
    for c in local {
        if let Some(state) = c.connector {
            connector_count.inc();
            connector_status
                .get_or_create(&ConnectorStatusLabels {
                    connector: c.name.clone(),
                    status: status_label(state),
                })
                .set(1);
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

/// The Prometheus text format (0.0.4) of an OpenMetrics exposition, for scrapers that do not ask
/// for OpenMetrics (`promtool check metrics`, `curl`, older agents): in OpenMetrics a counter's
/// family is named without `_total` while its samples carry it, which a 0.0.4 reader takes for a
/// family without samples and samples without help. So counters' `# HELP`/`# TYPE` take the
/// samples' `_total` name, `_created` samples, `# UNIT` lines, exemplars and `# EOF` go,
/// `unknown` becomes `untyped`, and `info` and `stateset` families become gauges.
pub fn prometheus_text(openmetrics: &str) -> String {
    let mut out = String::with_capacity(openmetrics.len());
    // HELP comes before TYPE, and its name depends on the type: held until the TYPE line.
    let mut help: Option<(&str, &str)> = None;
    let mut family: (&str, &str) = ("", "");
    let flush_help = |out: &mut String, help: &mut Option<(&str, &str)>| {
        if let Some((name, text)) = help.take() {
            out.push_str(&format!("# HELP {name} {text}\n"));
        }
    };
    for line in openmetrics.lines() {
        if line == "# EOF" || line.starts_with("# UNIT ") {
            continue;
        }
        if let Some(rest) = line.strip_prefix("# HELP ") {
            flush_help(&mut out, &mut help);
            help = Some(rest.split_once(' ').unwrap_or((rest, "")));
            continue;
        }
        if let Some(rest) = line.strip_prefix("# TYPE ") {
            let (name, kind) = rest.split_once(' ').unwrap_or((rest, "untyped"));
            family = (name, kind);
            let (shown, kind) = match kind {
                "counter" => (format!("{name}_total"), "counter"),
                "info" => (format!("{name}_info"), "gauge"),
                "stateset" => (name.to_string(), "gauge"),
                "unknown" => (name.to_string(), "untyped"),
                "gaugehistogram" => (name.to_string(), "histogram"),
                other => (name.to_string(), other),
            };
            if let Some((h, text)) = help.take() {
                let h = if h == name { shown.as_str() } else { h };
                out.push_str(&format!("# HELP {h} {text}\n"));
            }
            out.push_str(&format!("# TYPE {shown} {kind}\n"));
            continue;
        }
        flush_help(&mut out, &mut help);
        if line.starts_with('#') {
            out.push_str(line);
            out.push('\n');
            continue;
        }
        let sample = line.split(['{', ' ']).next().unwrap_or_default();
        if matches!(
            family.1,
            "counter" | "histogram" | "summary" | "gaugehistogram"
        ) && sample.strip_suffix("_created") == Some(family.0)
        {
            continue;
        }
        // An exemplar (` # {…} value`) has no place in 0.0.4.
        let line = match line.find(" # {") {
            Some(at) => &line[..at],
            None => line,
        };
        out.push_str(line);
        out.push('\n');
    }
    flush_help(&mut out, &mut help);
    out
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
            },
            Local {
                name: "broken".into(),
                connector: Some(State::Failed),
                tasks: vec![],
            },
            Local {
                name: "elsewhere".into(),
                connector: None,
                tasks: vec![(2, State::Paused)],
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
        m.source_records
            .get_or_create(&Metrics::task_labels("c", 0))
            .inc();
        let text = m.render();
        assert!(text.contains(r#"tributary_source_records_sent_total{connector="c",task="0"} 1"#));
        assert!(text.contains(
            r#"kafka_connect_connector_task_status{connector="c",task="0",status="running"} 1"#
        ));
        assert_eq!(text.matches("# EOF").count(), 1, "{text}");
        assert!(text.ends_with("# EOF\n"), "{text}");
    }

    #[test]
    fn openmetrics_counters_read_as_prometheus_text_counters() {
        let om = "# HELP tributary_x Records written.\n# TYPE tributary_x counter\ntributary_x_total{connector=\"a\"} 5\ntributary_x_created{connector=\"a\"} 1.7e9\n# HELP g A gauge.\n# TYPE g gauge\n# UNIT g bytes\ng 1\n# TYPE u unknown\nu 2 # {trace=\"x\"} 1\n# EOF\n";
        assert_eq!(
            prometheus_text(om),
            "# HELP tributary_x_total Records written.\n# TYPE tributary_x_total counter\ntributary_x_total{connector=\"a\"} 5\n# HELP g A gauge.\n# TYPE g gauge\ng 1\n# TYPE u untyped\nu 2\n"
        );
    }

    #[test]
    fn a_rendered_registry_converts_without_losing_a_sample() {
        let m = Metrics::new(Arc::new(StatusBoard::new("w:1".into())));
        let labels = Metrics::task_labels("c", 0);
        m.sink_records.get_or_create(&labels).inc_by(3);
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
