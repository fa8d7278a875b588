//! Prometheus metrics of the operator, on its own port with `/healthz` and `/readyz`:
//! reconciliations and their failures and durations by resource kind, and the Connectors it
//! manages by the state their workers report (what a dashboard's "connectors by state" panel
//! and a "connector failed" alert read without scraping every worker).

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::time::Duration;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct KindLabels {
    pub kind: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct StateLabels {
    /// Not `namespace`: a scrape's own target label of that name would rename it.
    resource_namespace: String,
    state: String,
}

/// Reconcile durations' buckets: from a no-op pass to a slow worker REST call.
const BUCKETS: [f64; 12] = [
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
];

#[derive(Debug)]
pub struct Metrics {
    registry: Registry,
    pub reconciliations: Family<KindLabels, Counter>,
    pub failures: Family<KindLabels, Counter>,
    durations: Family<KindLabels, Histogram, fn() -> Histogram>,
    /// Each managed Connector's last written state, by (namespace, resource name).
    connectors: Mutex<BTreeMap<(String, String), String>>,
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    pub fn new() -> Self {
        let mut registry = Registry::with_prefix("tributary_operator");
        let reconciliations = Family::<KindLabels, Counter>::default();
        let failures = Family::<KindLabels, Counter>::default();
        let durations: Family<KindLabels, Histogram, fn() -> Histogram> =
            Family::new_with_constructor(|| Histogram::new(BUCKETS));
        registry.register(
            "reconciliations",
            "Reconciliations run, by resource kind",
            reconciliations.clone(),
        );
        registry.register(
            "reconciliation_failures",
            "Reconciliations that failed (and were retried), by resource kind",
            failures.clone(),
        );
        registry.register(
            "reconcile_duration_seconds",
            "Time one reconciliation took, failed ones included, by resource kind",
            durations.clone(),
        );
        Self {
            registry,
            reconciliations,
            failures,
            durations,
            connectors: Mutex::default(),
        }
    }

    pub fn kind(kind: &str) -> KindLabels {
        KindLabels { kind: kind.into() }
    }

    /// One reconciliation of `kind` finished after `took`.
    pub fn observe(&self, kind: &str, took: Duration) {
        self.durations
            .get_or_create(&Self::kind(kind))
            .observe(took.as_secs_f64());
    }

    /// A Connector's state as last written to its status (`None`: not known yet, reported as
    /// `UNKNOWN`).
    pub fn connector_state(&self, namespace: &str, name: &str, state: Option<&str>) {
        if let Ok(mut c) = self.connectors.lock() {
            c.insert(
                (namespace.to_string(), name.to_string()),
                state.unwrap_or("UNKNOWN").to_string(),
            );
        }
    }

    /// A Connector resource is gone.
    pub fn connector_removed(&self, namespace: &str, name: &str) {
        if let Ok(mut c) = self.connectors.lock() {
            c.remove(&(namespace.to_string(), name.to_string()));
        }
    }

    /// The OpenMetrics text of everything, as of now.
    pub fn encode(&self) -> String {
        let by_state = Family::<StateLabels, Gauge>::default();
        if let Ok(c) = self.connectors.lock() {
            for ((namespace, _), state) in c.iter() {
                by_state
                    .get_or_create(&StateLabels {
                        resource_namespace: namespace.clone(),
                        state: state.clone(),
                    })
                    .inc();
            }
        }
        let mut states = Registry::with_prefix("tributary_operator");
        states.register(
            "connectors",
            "Connector resources by the state their workers report (UNKNOWN before the first report)",
            by_state,
        );
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

/// `/metrics`: OpenMetrics to scrapers that ask for it (Prometheus does), the Prometheus text
/// format 0.0.4 to any other (`curl`, `promtool check metrics`, older agents).
pub fn respond(
    metrics: &Metrics,
    headers: &axum::http::HeaderMap,
) -> ([(axum::http::header::HeaderName, &'static str); 1], String) {
    let accept = headers
        .get(axum::http::header::ACCEPT)
        .and_then(|a| a.to_str().ok());
    let (content_type, body) =
        tributary_connect_client::exposition::negotiate(accept, metrics.encode());
    ([(axum::http::header::CONTENT_TYPE, content_type)], body)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An operator that has reconciled (and failed to reconcile) a Connector now RUNNING.
    fn reconciled() -> String {
        let m = Metrics::new();
        m.reconciliations
            .get_or_create(&Metrics::kind("Connector"))
            .inc();
        m.failures.get_or_create(&Metrics::kind("Connector")).inc();
        m.observe("Connector", Duration::from_millis(1));
        m.connector_state("ns", "c", Some("RUNNING"));
        tributary_connect_client::exposition::prometheus_text(&m.encode())
    }

    #[test]
    fn connectors_are_counted_by_namespace_and_state() {
        let m = Metrics::new();
        m.connector_state("a", "x", Some("RUNNING"));
        m.connector_state("a", "y", Some("RUNNING"));
        m.connector_state("b", "z", None);
        m.connector_state("a", "y", Some("FAILED"));
        m.observe("Connector", Duration::from_millis(30));
        let text = m.encode();
        for line in [
            r#"tributary_operator_connectors{resource_namespace="a",state="RUNNING"} 1"#,
            r#"tributary_operator_connectors{resource_namespace="a",state="FAILED"} 1"#,
            r#"tributary_operator_connectors{resource_namespace="b",state="UNKNOWN"} 1"#,
            r#"tributary_operator_reconcile_duration_seconds_bucket{le="0.05",kind="Connector"} 1"#,
            r#"tributary_operator_reconcile_duration_seconds_count{kind="Connector"} 1"#,
        ] {
            assert!(text.contains(line), "{line} missing from\n{text}");
        }
        m.connector_removed("b", "z");
        assert!(!m.encode().contains(r#"resource_namespace="b""#));
    }

    #[test]
    fn docs_metrics_md_lists_every_operator_metric() {
        use tributary_connect_client::exposition::{check_generated, markdown_table};
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs/metrics.md");
        if let Err(e) = check_generated(
            &path,
            "operator-metrics",
            &markdown_table(&reconciled(), None),
            "the operator",
        ) {
            panic!("{e}");
        }
    }

    #[test]
    fn the_shipped_dashboards_operator_panels_read_exported_metrics() {
        let path = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../charts/tributary/dashboards/tributary-connect.json"
        );
        let dashboard = std::fs::read_to_string(path).expect("the dashboard");
        let text = reconciled();
        let exported: std::collections::BTreeSet<&str> = text
            .lines()
            .filter(|l| !l.starts_with('#'))
            .filter_map(|l| l.split(['{', ' ']).next())
            .collect();
        let mut read = 0;
        let mut rest = dashboard.as_str();
        while let Some(at) = rest.find("tributary_operator_") {
            let name: String = rest[at..]
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                .collect();
            assert!(
                exported.contains(name.as_str()),
                "the dashboard reads {name}, which the operator does not export:\n{text}"
            );
            read += 1;
            rest = &rest[at + name.len()..];
        }
        assert!(read >= 3, "the dashboard has {read} operator queries");
    }
}
