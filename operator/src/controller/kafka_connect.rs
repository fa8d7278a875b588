//! The KafkaConnect controller.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use k8s_openapi::api::apps::v1::StatefulSet;
use k8s_openapi::api::core::v1::{ConfigMap, Pod, Secret, Service, ServiceAccount};
use k8s_openapi::api::networking::v1::NetworkPolicy;
use k8s_openapi::api::policy::v1::PodDisruptionBudget;
use kube::api::{ListParams, Patch, PatchParams};
use kube::runtime::controller::{Action, Controller};
use kube::runtime::reflector::ObjectRef;
use kube::runtime::{WatchStreamExt, watcher};
use kube::{Api, Resource, ResourceExt};
use serde::Serialize;
use serde::de::DeserializeOwned;

use super::{Context, MANAGER};
use crate::Error;
use crate::build::{self, annotations};
use crate::connect_client::ConnectClient;
use crate::crd::KafkaConnect;
use crate::crd::kafka_connect::ConnectorPlugin;
use crate::metrics::Metrics;
use crate::roller;
use crate::status::{self, Observed};

async fn apply<K>(api: &Api<K>, obj: &K) -> Result<K, Error>
where
    K: Resource<DynamicType = ()> + Serialize + DeserializeOwned + Clone + std::fmt::Debug,
{
    let name = obj.meta().name.clone().unwrap_or_default();
    api.patch(
        &name,
        &PatchParams::apply(MANAGER).force(),
        &Patch::Apply(obj),
    )
    .await
    .map_err(|e| Error::Kube(format!("applying {} {name}: {e}", K::kind(&()))))
}

/// Deletes `K`s carrying the cluster's labels that it owns but no longer needs.
async fn prune<K>(
    ctx: &Context,
    kc: &KafkaConnect,
    c: &build::Cluster<'_>,
    desired: &std::collections::BTreeSet<(&'static str, String)>,
) -> Result<(), Error>
where
    K: Resource<DynamicType = (), Scope = k8s_openapi::NamespaceResourceScope>
        + Clone
        + DeserializeOwned
        + std::fmt::Debug,
{
    let kind = K::kind(&());
    let api: Api<K> = Api::namespaced(ctx.client.clone(), c.namespace);
    let existing = api
        .list_metadata(&ListParams::default().labels(&c.selector_string()))
        .await
        .map_err(|e| Error::Kube(format!("listing {kind}s: {e}")))?;
    let metas: Vec<_> = existing.items.into_iter().map(|o| o.metadata).collect();
    let uid = kc.uid().unwrap_or_default();
    for name in build::orphans(&kind, &metas, &uid, desired) {
        match api.delete(&name, &Default::default()).await {
            Ok(_) => {}
            Err(kube::Error::Api(s)) if s.code == 404 => continue,
            Err(e) => return Err(Error::Kube(format!("deleting {kind} {name}: {e}"))),
        }
        tracing::info!(kafkaconnect = %kc.name_any(), kind = %kind, name, "deleted an orphaned child");
        let note = format!("deleted {kind} {name}, which this cluster no longer needs");
        ctx.event(kc, false, "Pruned", note).await;
    }
    Ok(())
}

async fn prune_orphans(
    ctx: &Context,
    kc: &KafkaConnect,
    c: &build::Cluster<'_>,
    desired: &std::collections::BTreeSet<(&'static str, String)>,
) -> Result<(), Error> {
    prune::<ServiceAccount>(ctx, kc, c, desired).await?;
    prune::<Secret>(ctx, kc, c, desired).await?;
    prune::<ConfigMap>(ctx, kc, c, desired).await?;
    prune::<Service>(ctx, kc, c, desired).await?;
    prune::<PodDisruptionBudget>(ctx, kc, c, desired).await?;
    prune::<NetworkPolicy>(ctx, kc, c, desired).await?;
    prune::<StatefulSet>(ctx, kc, c, desired).await
}

/// A random password for the REST API (hex of 24 random bytes).
fn new_password() -> Result<String, Error> {
    let mut b = [0u8; 24];
    getrandom::fill(&mut b).map_err(|e| Error::Kube(format!("no randomness: {e}")))?;
    Ok(b.iter().map(|x| format!("{x:02x}")).collect())
}

/// The REST credentials: kept once generated.
async fn rest_password(api: &Api<Secret>, name: &str) -> Result<String, Error> {
    let existing = api
        .get_opt(name)
        .await
        .map_err(|e| Error::Kube(format!("reading Secret {name}: {e}")))?;
    if let Some(p) = existing
        .and_then(|s| s.data)
        .and_then(|d| d.get("password").cloned())
        .and_then(|p| String::from_utf8(p.0).ok())
        .filter(|p| !p.is_empty())
    {
        return Ok(p);
    }
    new_password()
}

/// The cluster's REST API through its ready workers (`None` when none is ready).
fn ready_workers(
    http: reqwest::Client,
    pods: &[Pod],
    c: &build::Cluster<'_>,
    password: &str,
) -> Option<ConnectClient> {
    let urls: Vec<String> = pods
        .iter()
        .filter(|p| is_ready(p))
        .map(|p| c.worker_url(&p.name_any()))
        .collect();
    (!urls.is_empty()).then(|| ConnectClient::new(http, urls, build::secret::REST_USER, password))
}

/// The connector plugins of the cluster (`None` if no worker answers).
async fn plugins(rest: &ConnectClient) -> Option<Vec<ConnectorPlugin>> {
    let v = rest
        .get("/connector-plugins")
        .await
        .inspect_err(|e| tracing::debug!(error = %e, "no plugin list"))
        .ok()?;
    let list: Vec<tributary_connect_client::PluginInfo> = serde_json::from_value(v).ok()?;
    Some(
        list.into_iter()
            .map(|p| ConnectorPlugin {
                class: p.class_name,
                type_: p.type_,
                version: p.version,
            })
            .collect(),
    )
}

/// `spec.logging`, applied live: each logger whose level the workers do not show yet is set
/// cluster-wide (so pods started later get it too). Loggers removed from the spec keep their
/// level.
async fn apply_logging(c: &build::Cluster<'_>, rest: &ConnectClient) -> Option<()> {
    let wanted = c.spec.logging.as_ref()?;
    let current = rest.get("/admin/loggers").await.ok()?;
    for (name, level) in &wanted.loggers {
        let level = serde_json::to_value(level).ok()?;
        let shown = current[name.as_str()]["level"]
            .as_str()
            .map(str::to_ascii_uppercase);
        if shown.as_deref() == level.as_str() {
            continue;
        }
        match rest.set_logger(name, &level).await {
            Ok(()) => {
                tracing::info!(logger = %name, level = %level, cluster = %c.name, "log level set")
            }
            Err(e) => tracing::warn!(logger = %name, error = %e, "log level not set"),
        }
    }
    Some(())
}

/// One roller step: maybe replaces one worker pod; returns why it waits, if it does.
async fn roll(
    ctx: &Context,
    kc: &KafkaConnect,
    pods_api: &Api<Pod>,
    pods: &[Pod],
    c: &build::Cluster<'_>,
    rest: Option<&ConnectClient>,
    update_revision: Option<&str>,
) -> Result<Option<String>, Error> {
    let Some(update_revision) = update_revision else {
        return Ok(None);
    };
    let view: Vec<roller::WorkerPod> = pods
        .iter()
        .map(|p| roller::WorkerPod {
            name: p.name_any(),
            ordinal: p
                .name_any()
                .rsplit('-')
                .next()
                .and_then(|n| n.parse().ok())
                .unwrap_or(0),
            revision: p.labels().get("controller-revision-hash").cloned(),
            ready: is_ready(p),
            deleting: p.metadata.deletion_timestamp.is_some(),
        })
        .collect();
    // Only worth asking the group when a ready pod is next in line.
    let outdated_ready = view
        .iter()
        .any(|p| p.ready && p.revision.as_deref() != Some(update_revision));
    let answer = match rest {
        Some(rest) if outdated_ready => rest.get("/connectors?expand=status").await.ok(),
        _ => None,
    };
    let group = match answer {
        None => roller::Group::Unknown,
        Some(v) => {
            // Worker ids as the workers advertise them: host:port.
            let workers = pods
                .iter()
                .filter(|p| is_ready(p))
                .map(|p| {
                    let url = c.worker_url(&p.name_any());
                    url.split_once("://")
                        .map_or(url.clone(), |(_, h)| h.to_string())
                })
                .collect();
            roller::judge(&v, &workers)
        }
    };
    match roller::next(&view, update_revision, &group) {
        roller::Step::Done => Ok(None),
        roller::Step::Wait(why) => Ok(Some(why)),
        roller::Step::Replace(name) => {
            let uid = pods
                .iter()
                .find(|p| p.name_any() == name)
                .and_then(|p| p.uid());
            let dp = kube::api::DeleteParams {
                preconditions: Some(kube::api::Preconditions {
                    uid,
                    resource_version: None,
                }),
                ..kube::api::DeleteParams::default()
            };
            pods_api
                .delete(&name, &dp)
                .await
                .map_err(|e| Error::Kube(format!("replacing worker {name}: {e}")))?;
            let left = view
                .iter()
                .filter(|p| p.revision.as_deref() != Some(update_revision))
                .count()
                - 1;
            tracing::info!(kafkaconnect = %kc.name_any(), pod = %name, left, "replacing a worker with the new template");
            ctx.event(
                kc,
                false,
                "RollingWorker",
                format!("replacing {name} with the new pod template ({left} more after it)"),
            )
            .await;
            Ok(Some(format!("replacing {name}")))
        }
    }
}

fn is_ready(p: &Pod) -> bool {
    p.status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .is_some_and(|cs| cs.iter().any(|c| c.type_ == "Ready" && c.status == "True"))
}

/// A condition's status and reason, for noticing transitions.
fn state_of(s: Option<&crate::crd::KafkaConnectStatus>, type_: &str) -> Option<(String, String)> {
    s?.conditions
        .as_ref()?
        .iter()
        .find(|c| c.type_ == type_)
        .map(|c| (c.status.clone(), c.reason.clone()))
}

/// Writes the status if it differs from what the resource shows, with an Event for each change
/// of readiness or stall.
async fn write_status(
    ctx: &Context,
    api: &Api<KafkaConnect>,
    kc: &KafkaConnect,
    status: crate::crd::KafkaConnectStatus,
) -> Result<(), Error> {
    if kc.status.as_ref() == Some(&status) {
        return Ok(());
    }
    for type_ in ["Ready", "Stalled"] {
        let now = state_of(Some(&status), type_);
        if now != state_of(kc.status.as_ref(), type_)
            && let Some((st, reason)) = now
        {
            let message = status
                .conditions
                .iter()
                .flatten()
                .find(|c| c.type_ == type_)
                .map(|c| c.message.clone())
                .unwrap_or_default();
            let warning = (type_ == "Stalled" && st == "True") || reason == "InvalidSpec";
            let shown = if type_ == "Ready" && st == "True" {
                "Ready".to_string()
            } else {
                reason
            };
            if type_ == "Ready" || st == "True" {
                ctx.event(kc, warning, &shown, message).await;
            }
        }
    }
    super::apply_status(api, &kc.name_any(), &status).await
}

/// Writes the status of a cluster the operator leaves alone (paused, or invalid) and waits for
/// the resource or a Secret it references to change.
async fn wait_for_change(
    ctx: &Context,
    api: &Api<KafkaConnect>,
    kc: &KafkaConnect,
    o: &Observed,
) -> Result<Action, Error> {
    let status = status::kafka_connect(
        o,
        kc.status.as_ref(),
        kc.meta().generation,
        k8s_openapi::jiff::Timestamp::now(),
    );
    write_status(ctx, api, kc, status).await?;
    Ok(Action::await_change())
}

pub async fn reconcile(kc: Arc<KafkaConnect>, ctx: Arc<Context>) -> Result<Action, Error> {
    let started = std::time::Instant::now();
    let span = super::reconcile_span("KafkaConnect", kc.as_ref());
    let result =
        tracing::Instrument::instrument(reconcile_kafka_connect(kc, ctx.clone()), span).await;
    ctx.metrics.observe("KafkaConnect", started.elapsed());
    result
}

async fn reconcile_kafka_connect(
    kc: Arc<KafkaConnect>,
    ctx: Arc<Context>,
) -> Result<Action, Error> {
    ctx.metrics
        .reconciliations
        .get_or_create(&Metrics::kind("KafkaConnect"))
        .inc();
    let ns = kc
        .namespace()
        .ok_or_else(|| Error::Kube("a KafkaConnect without a namespace".into()))?;
    let client = ctx.client.clone();
    let api: Api<KafkaConnect> = Api::namespaced(client.clone(), &ns);
    let generation = kc.meta().generation;
    let now = k8s_openapi::jiff::Timestamp::now();

    if kc
        .annotations()
        .get(annotations::PAUSE_RECONCILIATION)
        .is_some_and(|v| v == "true")
    {
        let o = Observed {
            paused: true,
            ..Observed::default()
        };
        return wait_for_change(&ctx, &api, &kc, &o).await;
    }

    // Dereference: the Secrets the workers mount (their keys, and a hash of their data).
    let secrets: Api<Secret> = Api::namespaced(client.clone(), &ns);
    let mut found = BTreeMap::new();
    for name in build::referenced_secrets(&kc.spec) {
        let s = secrets
            .get_opt(&name)
            .await
            .map_err(|e| Error::Kube(format!("reading Secret {name}: {e}")))?;
        if let Some(s) = s {
            found.insert(name, s.data.unwrap_or_default());
        }
    }
    let mut parts: Vec<&[u8]> = Vec::new();
    for (name, data) in &found {
        parts.push(name.as_bytes());
        for (k, v) in data {
            parts.push(k.as_bytes());
            parts.push(&v.0);
        }
    }
    let secrets_hash = build::hash(&parts);
    let keys: BTreeMap<String, Vec<String>> = found
        .iter()
        .map(|(name, data)| (name.clone(), data.keys().cloned().collect()))
        .collect();

    let mut c = match build::cluster(&kc, &keys, secrets_hash) {
        Ok(c) => c,
        Err(problems) => {
            tracing::info!(kafkaconnect = %kc.name_any(), namespace = %ns, problems = ?problems.iter().map(ToString::to_string).collect::<Vec<_>>(), "invalid spec");
            let o = Observed {
                problems,
                ..Observed::default()
            };
            // A change of the resource or of a referenced Secret triggers the next attempt.
            return wait_for_change(&ctx, &api, &kc, &o).await;
        }
    };

    c.connector_secrets = ctx.config_from.secrets(&ns, &kc.name_any()).await?;

    // Build and apply.
    let password = rest_password(&secrets, &c.rest_secret_name()).await?;
    apply(&secrets, &build::secret::rest_secret(&c, &password)).await?;
    let roots: Vec<&[u8]> = c
        .rest_trusted
        .iter()
        .filter_map(|(secret, key)| found.get(secret).and_then(|d| d.get(key)))
        .map(|v| v.0.as_slice())
        .collect();
    let http = ctx.rest_client(&roots)?;
    let children = build::children(&c)?;
    apply(
        &Api::<ServiceAccount>::namespaced(client.clone(), &ns),
        &children.service_account,
    )
    .await?;
    apply(
        &Api::<ConfigMap>::namespaced(client.clone(), &ns),
        &children.config_map,
    )
    .await?;
    let services: Api<Service> = Api::namespaced(client.clone(), &ns);
    apply(&services, &children.headless_service).await?;
    apply(&services, &children.api_service).await?;
    apply(
        &Api::<PodDisruptionBudget>::namespaced(client.clone(), &ns),
        &children.pdb,
    )
    .await?;
    if ctx.network_policies {
        apply(
            &Api::<NetworkPolicy>::namespaced(client.clone(), &ns),
            &children.network_policy,
        )
        .await?;
    }
    let sts = apply(
        &Api::<StatefulSet>::namespaced(client.clone(), &ns),
        &children.stateful_set,
    )
    .await?;
    let uid = kc.uid().unwrap_or_default();
    if ctx.prune_due(&uid, generation) {
        let desired = children.desired(&c, ctx.network_policies);
        if let Err(e) = prune_orphans(&ctx, &kc, &c, &desired).await {
            ctx.prune_failed(&uid);
            return Err(e);
        }
    }

    // Observe.
    let pods: Api<Pod> = Api::namespaced(client.clone(), &ns);
    let pod_list = pods
        .list(&ListParams::default().labels(&c.selector_string()))
        .await
        .map_err(|e| Error::Kube(format!("listing pods: {e}")))?
        .items;
    let st = sts.status.unwrap_or_default();
    let replicas = st.replicas;
    let updated = st.updated_replicas.unwrap_or(0);
    let outdated = if st.update_revision.is_some() && st.update_revision != st.current_revision {
        (replicas - updated).max(0)
    } else {
        0
    };
    let ready = st.ready_replicas.unwrap_or(0);
    let rest = ready_workers(http, &pod_list, &c, &password);
    let mut plugins_seen = None;
    if let Some(rest) = &rest {
        plugins_seen = plugins(rest).await;
        apply_logging(&c, rest).await;
    }
    let rolling = roll(
        &ctx,
        &kc,
        &pods,
        &pod_list,
        &c,
        rest.as_ref(),
        st.update_revision.as_deref(),
    )
    .await?;
    let o = Observed {
        problems: Vec::new(),
        desired: c.spec.replicas,
        replicas,
        ready,
        outdated,
        plugins: plugins_seen,
        selector: c.selector_string(),
        url: c.url(),
        paused: false,
        rolling,
    };
    let new_status = status::kafka_connect(&o, kc.status.as_ref(), generation, now);
    let ready_now = new_status
        .conditions
        .iter()
        .flatten()
        .any(|c| c.type_ == "Ready" && c.status == "True");
    write_status(&ctx, &api, &kc, new_status).await?;
    Ok(if ready_now {
        Action::requeue(Duration::from_secs(300))
    } else if outdated > 0 {
        // Rolling: look again soon (the group settles in seconds).
        Action::requeue(Duration::from_secs(3))
    } else {
        Action::requeue(Duration::from_secs(10))
    })
}

pub fn error_policy(kc: Arc<KafkaConnect>, error: &Error, ctx: Arc<Context>) -> Action {
    ctx.metrics
        .failures
        .get_or_create(&Metrics::kind("KafkaConnect"))
        .inc();
    tracing::warn!(kafkaconnect = %kc.name_any(), error = %error, "reconcile failed; retrying in 15 s");
    let message = error.to_string();
    tokio::spawn(async move {
        ctx.event(&*kc, true, "ReconcileFailed", message).await;
    });
    Action::requeue(Duration::from_secs(15))
}

/// Runs the controller over `kcs` (one namespace or all) until a signal.
/// Feeds the configFrom index from a Connector watch; yields the clusters whose mounted
/// Secrets may have changed.
fn config_from_changes(
    events: impl futures::Stream<Item = Result<watcher::Event<crate::crd::Connector>, watcher::Error>>
    + Send
    + 'static,
    index: std::sync::Arc<crate::config_from_index::ConfigFromIndex>,
) -> impl futures::Stream<Item = ObjectRef<KafkaConnect>> + Send + 'static {
    events.flat_map(move |event| {
        let refs = match event {
            Ok(event) => index.observe(event),
            Err(e) => {
                tracing::debug!(error = %e, "watching Connectors for configFrom");
                Vec::new()
            }
        };
        futures::stream::iter(
            refs.into_iter()
                .map(|(ns, cluster)| ObjectRef::new(&cluster).within(&ns)),
        )
    })
}

pub async fn run(ctx: Arc<Context>, namespace: Option<&str>) {
    let client = ctx.client.clone();
    fn api<K: Resource<Scope = k8s_openapi::NamespaceResourceScope, DynamicType = ()>>(
        client: &kube::Client,
        ns: Option<&str>,
    ) -> Api<K> {
        match ns {
            Some(n) => Api::namespaced(client.clone(), n),
            None => Api::all(client.clone()),
        }
    }
    let wc = watcher::Config::default();
    let controller = Controller::new(api::<KafkaConnect>(&client, namespace), wc.clone())
        .trigger_backoff(super::watch_backoff());
    let store = controller.store();
    controller
        .owns(api::<StatefulSet>(&client, namespace), wc.clone())
        .owns(api::<ConfigMap>(&client, namespace), wc.clone())
        .owns(api::<Service>(&client, namespace), wc.clone())
        // A Connector's configFrom Secrets are mounted into its cluster's workers: the index
        // says which clusters a Connector change concerns (most concern none).
        .reconcile_on(config_from_changes(
            watcher(api::<crate::crd::Connector>(&client, namespace), wc.clone())
                .backoff(super::watch_backoff()),
            ctx.config_from.clone(),
        ))
        .watches(
            api::<Secret>(&client, namespace),
            wc.clone(),
            move |secret| {
                // A rotated or newly created Secret reconciles every cluster that mounts it.
                let ns = secret.namespace();
                let name = secret.name_any();
                store
                    .state()
                    .into_iter()
                    .filter(|kc| {
                        kc.namespace() == ns && build::referenced_secrets(&kc.spec).contains(&name)
                    })
                    .map(|kc| ObjectRef::from_obj(&*kc))
                    .collect::<Vec<_>>()
            },
        )
        .shutdown_on_signal()
        .run(reconcile, error_policy, ctx)
        .for_each(|r| async move {
            if let Err(e) = r {
                tracing::debug!(error = %e, "reconcile error");
            }
        })
        .await;
}
