//! Prometheus metrics of the worker, served on the health listener's `/metrics`.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;

use crate::herder::Herder;

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct TaskLabels {
    pub connector: String,
    pub task: String,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct StateLabels {
    pub state: String,
}

/// Counters the task loops update, and state gauges filled from the herder at scrape time.
#[derive(Debug)]
pub struct Metrics {
    registry: Registry,
    pub source_records: Family<TaskLabels, Counter>,
    pub sink_records: Family<TaskLabels, Counter>,
    pub record_errors: Family<TaskLabels, Counter>,
    pub offset_commits: Family<TaskLabels, Counter>,
    connectors: Family<StateLabels, Gauge>,
    tasks: Family<StateLabels, Gauge>,
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    pub fn new() -> Self {
        let mut registry = Registry::with_prefix("tributary");
        let source_records = Family::<TaskLabels, Counter>::default();
        let sink_records = Family::<TaskLabels, Counter>::default();
        let record_errors = Family::<TaskLabels, Counter>::default();
        let offset_commits = Family::<TaskLabels, Counter>::default();
        let connectors = Family::<StateLabels, Gauge>::default();
        let tasks = Family::<StateLabels, Gauge>::default();
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
        registry.register("connectors", "Connectors by state", connectors.clone());
        registry.register("tasks", "Tasks by state", tasks.clone());
        Self {
            registry,
            source_records,
            sink_records,
            record_errors,
            offset_commits,
            connectors,
            tasks,
        }
    }

    pub fn task_labels(connector: &str, task: u32) -> TaskLabels {
        TaskLabels {
            connector: connector.to_string(),
            task: task.to_string(),
        }
    }

    /// The OpenMetrics text, with state gauges as of now.
    pub fn render(&self, herder: &dyn Herder) -> String {
        self.connectors.clear();
        self.tasks.clear();
        for name in herder.connector_names().unwrap_or_default() {
            if let Ok(s) = herder.status(&name) {
                self.connectors
                    .get_or_create(&StateLabels {
                        state: s.connector.state.as_str().to_string(),
                    })
                    .inc();
                for t in s.tasks {
                    self.tasks
                        .get_or_create(&StateLabels {
                            state: t.state.as_str().to_string(),
                        })
                        .inc();
                }
            }
        }
        let mut out = String::new();
        if prometheus_client::encoding::text::encode(&mut out, &self.registry).is_err() {
            out.clear();
        }
        out
    }
}
