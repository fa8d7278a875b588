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
    /// Kubernetes Events on the resources (`kubectl describe` shows them).
    pub recorder: kube::runtime::events::Recorder,
    /// For the workers' REST API (plugins, logger levels).
    pub http: reqwest::Client,
    pub metrics: std::sync::Arc<crate::metrics::Metrics>,
    /// Whether clusters get a NetworkPolicy (`--network-policies`).
    pub network_policies: bool,
}

impl std::fmt::Debug for Context {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Context").finish_non_exhaustive()
    }
}

impl Context {
    pub fn new(
        client: Client,
        metrics: std::sync::Arc<crate::metrics::Metrics>,
        instance: Option<String>,
    ) -> Self {
        let http = reqwest::Client::builder()
            // One slow cluster must not hold a reconcile of another for long.
            .timeout(Duration::from_secs(5))
            .connect_timeout(Duration::from_secs(2))
            .build()
            .unwrap_or_default();
        let recorder = kube::runtime::events::Recorder::new(
            client.clone(),
            kube::runtime::events::Reporter {
                controller: MANAGER.into(),
                instance,
            },
        );
        Self {
            client,
            recorder,
            http,
            metrics,
            network_policies: true,
        }
    }

    /// Publishes an Event on `obj`; a failure to record is logged, never fatal.
    pub async fn event<K: kube::Resource<DynamicType = ()>>(
        &self,
        obj: &K,
        warning: bool,
        reason: &str,
        note: String,
    ) {
        use kube::runtime::events::{Event, EventType};
        let ev = Event {
            type_: if warning {
                EventType::Warning
            } else {
                EventType::Normal
            },
            reason: reason.into(),
            note: Some(note.chars().take(1000).collect()),
            action: "Reconcile".into(),
            secondary: None,
        };
        if let Err(e) = self.recorder.publish(&ev, &obj.object_ref(&())).await {
            tracing::debug!(error = %e, reason, "cannot record an event");
        }
    }
}
