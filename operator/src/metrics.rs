//! Prometheus metrics of the operator, on its own port with `/healthz` and `/readyz`.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::registry::Registry;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct KindLabels {
    pub kind: String,
}

#[derive(Debug)]
pub struct Metrics {
    pub registry: Registry,
    pub reconciliations: Family<KindLabels, Counter>,
    pub failures: Family<KindLabels, Counter>,
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
        Self {
            registry,
            reconciliations,
            failures,
        }
    }

    pub fn kind(kind: &str) -> KindLabels {
        KindLabels { kind: kind.into() }
    }

    pub fn encode(&self) -> String {
        let mut out = String::new();
        let _ = prometheus_client::encoding::text::encode(&mut out, &self.registry);
        out
    }
}
