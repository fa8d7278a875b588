//! The headless Service (pod DNS names, for the workers and the operator to reach one worker)
//! and the API Service (the REST API of any ready worker).

use k8s_openapi::api::core::v1::Service;
use serde_json::json;

use super::{Cluster, REST_PORT};
use crate::Error;

fn typed(v: serde_json::Value) -> Result<Service, Error> {
    serde_json::from_value(v).map_err(|e| Error::Build(format!("service: {e}")))
}

/// `<c>-connect`, headless. Not-ready pods are published too: a starting worker must reach its
/// peers (and they it) by name before it can become ready.
pub fn headless(c: &Cluster<'_>) -> Result<Service, Error> {
    let mut s = typed(json!({
        "spec": {
            "clusterIP": "None",
            "publishNotReadyAddresses": true,
            "selector": c.selector(),
            "ports": [{"name": "rest", "port": REST_PORT, "targetPort": "rest", "protocol": "TCP"}],
        }
    }))?;
    let t = c
        .spec
        .template
        .as_ref()
        .and_then(|t| t.headless_service.as_ref());
    s.metadata = c.meta(
        c.workers_name(),
        "connect-worker",
        t.and_then(|t| t.metadata.as_ref()),
    );
    Ok(s)
}

/// `<c>-connect-api`: the REST API for clients.
pub fn api(c: &Cluster<'_>) -> Result<Service, Error> {
    let mut s = typed(json!({
        "spec": {
            "type": "ClusterIP",
            "selector": c.selector(),
            "ports": [{"name": "rest", "port": REST_PORT, "targetPort": "rest", "protocol": "TCP"}],
        }
    }))?;
    let t = c
        .spec
        .template
        .as_ref()
        .and_then(|t| t.api_service.as_ref());
    s.metadata = c.meta(
        c.api_service_name(),
        "connect-api",
        t.and_then(|t| t.metadata.as_ref()),
    );
    Ok(s)
}
