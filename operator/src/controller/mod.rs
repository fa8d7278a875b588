//! The controllers: kube-runtime loops that turn resources into objects and statuses. Each
//! reconcile is a pipeline — dereference (reads) → validate and build (pure) → apply (server-side
//! apply, one field manager) → status — and an invalid resource gets a `Stalled` condition and
//! waits for a change instead of being retried in a loop.

pub mod kafka_connect;

use std::time::Duration;

use kube::Client;

/// The field manager of everything the operator applies.
pub const MANAGER: &str = "tributary-operator";

/// What every reconcile shares.
#[derive(Clone)]
pub struct Context {
    pub client: Client,
    /// For the workers' REST API (plugins, logger levels).
    pub http: reqwest::Client,
    pub metrics: std::sync::Arc<crate::metrics::Metrics>,
}

impl std::fmt::Debug for Context {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Context").finish_non_exhaustive()
    }
}

impl Context {
    pub fn new(client: Client, metrics: std::sync::Arc<crate::metrics::Metrics>) -> Self {
        let http = reqwest::Client::builder()
            // One slow cluster must not hold a reconcile of another for long.
            .timeout(Duration::from_secs(5))
            .connect_timeout(Duration::from_secs(2))
            .build()
            .unwrap_or_default();
        Self {
            client,
            http,
            metrics,
        }
    }
}
