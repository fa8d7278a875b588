//! The headless Service (pod DNS names, for the workers and the operator to reach one worker)
//! and the API Service (the REST API of any ready worker).

use k8s_openapi::api::core::v1::Service;
use serde_json::json;

use super::{Cluster, REST_PORT};
use crate::Error;

fn typed(v: serde_json::Value) -> Result<Service, Error> {
    serde_json::from_value(v).map_err(|e| Error::Build(format!("service: {e}")))
}

/// A Service of the REST port selecting the cluster's workers.
fn rest_service(
    c: &Cluster<'_>,
    name: String,
    component: &str,
    spec: serde_json::Value,
    template: Option<&crate::crd::kafka_connect::MetadataTemplate>,
) -> Result<Service, Error> {
    let mut spec = spec;
    spec["selector"] = json!(c.selector());
    spec["ports"] =
        json!([{"name": "rest", "port": REST_PORT, "targetPort": "rest", "protocol": "TCP"}]);
    let mut s = typed(json!({ "spec": spec }))?;
    s.metadata = c.meta(name, component, template.and_then(|t| t.metadata.as_ref()));
    Ok(s)
}

/// `<c>-connect`, headless. Not-ready pods are published too: a starting worker must reach its
/// peers (and they it) by name before it can become ready.
pub fn headless(c: &Cluster<'_>) -> Result<Service, Error> {
    rest_service(
        c,
        c.workers_name(),
        "connect-worker",
        json!({"clusterIP": "None", "publishNotReadyAddresses": true}),
        c.spec
            .template
            .as_ref()
            .and_then(|t| t.headless_service.as_ref()),
    )
}

/// `<c>-connect-api`: the REST API for clients.
pub fn api(c: &Cluster<'_>) -> Result<Service, Error> {
    rest_service(
        c,
        c.api_service_name(),
        "connect-api",
        json!({"type": "ClusterIP"}),
        c.spec
            .template
            .as_ref()
            .and_then(|t| t.api_service.as_ref()),
    )
}
