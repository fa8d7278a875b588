//! `<c>-connect`: the REST port (8083) admits only the cluster's own workers (forwarding) and the
//! operator; the admin port (8084: health, readiness, metrics) stays open for probes and
//! Prometheus.

use k8s_openapi::api::networking::v1::NetworkPolicy;
use serde_json::json;

use super::{ADMIN_PORT, Cluster, REST_PORT};
use crate::Error;

/// Labels of the operator's pods (set by the Helm chart and the install bundle).
pub fn operator_selector() -> serde_json::Value {
    json!({"app.kubernetes.io/name": "tributary-operator"})
}

pub fn network_policy(c: &Cluster<'_>) -> Result<NetworkPolicy, Error> {
    let mut np: NetworkPolicy = serde_json::from_value(json!({
        "spec": {
            "podSelector": {"matchLabels": c.selector()},
            "policyTypes": ["Ingress"],
            "ingress": [
                {
                    "ports": [{"port": REST_PORT, "protocol": "TCP"}],
                    "from": [
                        {"podSelector": {"matchLabels": c.selector()}},
                        {"namespaceSelector": {}, "podSelector": {"matchLabels": operator_selector()}},
                    ],
                },
                {"ports": [{"port": ADMIN_PORT, "protocol": "TCP"}]},
            ],
        }
    }))
    .map_err(|e| Error::Build(format!("network policy: {e}")))?;
    np.metadata = c.meta(c.workers_name(), "connect-worker", None);
    Ok(np)
}
