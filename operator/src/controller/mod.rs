//! The controllers: kube-runtime loops that turn resources into objects and statuses. Each
//! reconcile is a pipeline — dereference (reads) → validate and build (pure) → apply (server-side
//! apply, one field manager) → status — and an invalid resource gets a `Stalled` condition and
//! waits for a change instead of being retried in a loop.

pub mod connector;
pub mod kafka_connect;

use std::time::Duration;

use kube::Client;
use kube::runtime::utils::{Backoff, ResetTimerBackoff};
use kube::runtime::watcher::ExponentialBackoff;

/// The field manager of everything the operator applies.
pub const MANAGER: &str = "tributary-operator";

/// Per request to a worker: one slow cluster must not hold a reconcile of another for long.
const REST_TIMEOUT: Duration = Duration::from_secs(5);
const CONNECT_TIMEOUT: Duration = Duration::from_secs(2);

/// What every reconcile shares.
#[derive(Clone)]
pub struct Context {
    pub client: Client,
    /// Kubernetes Events on the resources (`kubectl describe` shows them).
    pub recorder: std::sync::Arc<crate::events::Recorder>,
    /// For the workers' REST API (plugins, logger levels).
    pub http: reqwest::Client,
    pub metrics: std::sync::Arc<crate::metrics::Metrics>,
    /// Whether clusters get a NetworkPolicy (`--network-policies`).
    pub network_policies: bool,
    /// Which Secrets each cluster's Connectors name in `configFrom` (fed by a watch).
    pub config_from: std::sync::Arc<crate::config_from_index::ConfigFromIndex>,
    /// One poller per Connect cluster, shared by the Connectors on it.
    pub pollers: std::sync::Arc<crate::cluster_poller::Pollers>,
    /// The generation of each KafkaConnect (by uid) whose orphans this process last removed:
    /// orphans appear only when the spec changes or a new operator version builds other
    /// children, so listing every child kind on each reconcile would be wasted.
    pruned: std::sync::Arc<std::sync::Mutex<std::collections::HashMap<String, Option<i64>>>>,
    /// Clients for HTTPS REST APIs, by the hash of the CA certificates they trust.
    tls_clients:
        std::sync::Arc<std::sync::Mutex<std::collections::BTreeMap<String, reqwest::Client>>>,
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
            .timeout(REST_TIMEOUT)
            .connect_timeout(CONNECT_TIMEOUT)
            .build()
            .unwrap_or_default();
        let recorder = std::sync::Arc::new(crate::events::Recorder::new(
            client.clone(),
            MANAGER,
            instance,
        ));
        Self {
            client,
            recorder,
            http,
            metrics,
            network_policies: true,
            tls_clients: std::sync::Arc::default(),
            pruned: std::sync::Arc::default(),
            pollers: std::sync::Arc::default(),
            config_from: std::sync::Arc::default(),
        }
    }

    /// Whether orphans of resource `uid` at `generation` still need looking for; marks them
    /// looked for (a failed prune is retried through the reconcile's error).
    pub fn prune_due(&self, uid: &str, generation: Option<i64>) -> bool {
        let mut done = match self.pruned.lock() {
            Ok(d) => d,
            Err(p) => p.into_inner(),
        };
        done.insert(uid.to_string(), generation) != Some(generation)
    }

    /// Forgets a prune, so the next reconcile tries again.
    pub fn prune_failed(&self, uid: &str) {
        if let Ok(mut d) = self.pruned.lock() {
            d.remove(uid);
        }
    }

    /// A client for a cluster's REST API that trusts `roots` (PEM certificates) on top of the
    /// system's CAs; one per distinct set, kept for the life of the operator.
    pub fn rest_client(&self, roots: &[&[u8]]) -> Result<reqwest::Client, crate::Error> {
        if roots.is_empty() {
            return Ok(self.http.clone());
        }
        let key = crate::build::hash(roots);
        let mut cache = self
            .tls_clients
            .lock()
            .map_err(|_| crate::Error::Kube("the TLS client cache is poisoned".into()))?;
        if let Some(c) = cache.get(&key) {
            return Ok(c.clone());
        }
        let mut b = reqwest::Client::builder()
            .timeout(REST_TIMEOUT)
            .connect_timeout(CONNECT_TIMEOUT);
        for pem in roots {
            for cert in reqwest::Certificate::from_pem_bundle(pem).map_err(|e| {
                crate::Error::Build(format!(
                    "spec.rest.tls.trustedCertificates: not PEM certificates: {e}"
                ))
            })? {
                b = b.add_root_certificate(cert);
            }
        }
        let client = b
            .build()
            .map_err(|e| crate::Error::Build(format!("an HTTPS client for the REST API: {e}")))?;
        cache.insert(key, client.clone());
        Ok(client)
    }

    /// Publishes an Event on `obj`; a failure to record is logged, never fatal.
    pub async fn event<K: kube::Resource<DynamicType = ()>>(
        &self,
        obj: &K,
        warning: bool,
        reason: &str,
        note: String,
    ) {
        let note: String = note.chars().take(1000).collect();
        if let Err(e) = self
            .recorder
            .publish(
                &obj.object_ref(&()),
                &crate::events::Notice {
                    warning,
                    reason,
                    action: "Reconcile",
                    note: &note,
                },
            )
            .await
        {
            tracing::debug!(error = %e, reason, "cannot record an event");
        }
    }
}

/// Writes `status` with server-side apply under [`MANAGER`], so the operator owns only the
/// status and never a field Git owns.
pub async fn apply_status<K>(
    api: &kube::Api<K>,
    name: &str,
    status: &impl serde::Serialize,
) -> Result<(), crate::Error>
where
    K: kube::Resource<DynamicType = ()> + Clone + serde::de::DeserializeOwned + std::fmt::Debug,
{
    let patch = serde_json::json!({
        "apiVersion": K::api_version(&()),
        "kind": K::kind(&()),
        "status": status,
    });
    api.patch_status(
        name,
        &kube::api::PatchParams::apply(MANAGER).force(),
        &kube::api::Patch::Apply(&patch),
    )
    .await
    .map(|_| ())
    .map_err(|e| {
        crate::Error::Kube(format!(
            "writing the status of {} {name}: {e}",
            K::kind(&())
        ))
    })
}

/// How the watches retry after an error: from 0.5 s, doubling, at most 5 s apart (jittered),
/// back to the start after two minutes without one. kube-rs' default (client-go's) goes up to
/// 30 s: after a 15 s apiserver restart the chaos suite measured 56 s before the operator saw
/// a new resource; with this it is the restart plus a few seconds. One watch per kind keeps the
/// extra load on a struggling apiserver small.
pub fn watch_backoff() -> impl Backoff + 'static {
    ResetTimerBackoff::new(
        ExponentialBackoff::from(
            backon::ExponentialBuilder::default()
                .with_min_delay(Duration::from_millis(500))
                .with_max_delay(Duration::from_secs(5))
                .with_factor(2.0)
                .with_jitter()
                .without_max_times(),
        ),
        Duration::from_secs(120),
    )
}

/// The span one reconciliation runs in: every line logged inside it, the kube client's and
/// the Connect REST client's included, names the resource (`reconcile{kind=Connector
/// namespace=shop name=orders}: …`), so one resource's story can be read out of the log.
pub(crate) fn reconcile_span(
    kind: &'static str,
    resource: &impl kube::ResourceExt,
) -> tracing::Span {
    tracing::info_span!(
        "reconcile",
        kind = %kind,
        namespace = %resource.namespace().unwrap_or_default(),
        name = %resource.name_any(),
    )
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};

    use super::*;
    use crate::crd::connector::Connector;

    /// A log writer into a shared buffer, as the operator's stderr would read.
    #[derive(Clone, Default)]
    struct Captured(Arc<Mutex<Vec<u8>>>);

    impl std::io::Write for Captured {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            if let Ok(mut b) = self.0.lock() {
                b.extend_from_slice(buf);
            }
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn a_line_logged_while_reconciling_names_the_resource() {
        let conn: Connector = serde_json::from_value(serde_json::json!({
            "apiVersion": "tributary.dev/v1alpha1",
            "kind": "Connector",
            "metadata": {"name": "orders", "namespace": "shop"},
            "spec": {"clusterRef": {"name": "c"}, "class": "C"}
        }))
        .expect("a Connector");
        let out = Captured::default();
        let writer = out.clone();
        let subscriber = tracing_subscriber::fmt()
            .with_writer(move || writer.clone())
            .with_ansi(false)
            .finish();
        tracing::subscriber::with_default(subscriber, || {
            let _in = reconcile_span("Connector", &conn).entered();
            // As a client deep in the call would log, knowing nothing of the resource.
            tracing::warn!("request failed");
        });
        let text = String::from_utf8(out.0.lock().expect("log").clone()).expect("utf-8");
        assert!(
            text.contains("reconcile{kind=Connector namespace=shop name=orders}: "),
            "{text}"
        );
        assert!(text.contains("request failed"), "{text}");
    }
}
