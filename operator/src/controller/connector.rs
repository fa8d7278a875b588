//! The Connector controller: a Connector resource becomes a connector on its KafkaConnect
//! cluster, kept in step through the workers' REST API, with its live state in `.status`.
//!
//! A reconcile reads the cluster's shared view (one `GET /connectors?expand=status&expand=info`
//! per cluster per poll, `cluster_poller`), plans with the pure `connector_plan`, validates a
//! changed config with `PUT /connector-plugins/{class}/config/validate`, makes the planned calls
//! and writes the status. The poller reconciles a Connector as soon as its live state changes.
//! Every Connector reconciles on its own: a cluster that hangs or a connector whose calls fail
//! delays nobody else.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::StreamExt;
use k8s_openapi::api::core::v1::Secret;
use kube::api::{Patch, PatchParams};
use kube::runtime::controller::{Action, Controller};
use kube::runtime::finalizer::{Event as Finalizer, finalizer};
use kube::runtime::reflector::ObjectRef;
use kube::runtime::{WatchStreamExt, watcher};
use kube::{Api, Resource, ResourceExt};

use super::Context;
use crate::Error;
use crate::build::{self, annotations};
use crate::cluster_poller::{ClusterKey, Snapshot};
use crate::connect_client::{CallError, ConnectClient};
use crate::connector_plan::{self as planner, Action as Call, Plan};
use crate::crd::connector::{Connector, ConnectorState, ConnectorStatus, DeletionPolicy};
use crate::crd::{KafkaConnect, KafkaConnectStatus};
use crate::metrics::Metrics;
use crate::status::{conditions, decided};

/// Held while the operator may still have to delete the connector from its cluster.
pub const FINALIZER: &str = "tributary.dev/connector";

/// Connector reconciles in flight at once.
const CONCURRENCY: u16 = 32;

/// How long a reconcile waits for the cluster's first view.
const FIRST_VIEW: Duration = Duration::from_secs(12);
/// How long deletion waits for a view that no longer lists the connector.
const GONE_VIEW: Duration = Duration::from_secs(6);

/// How to reach a Connector's cluster, or why not.
enum Access {
    Ready {
        key: ClusterKey,
        client: ConnectClient,
        kc: Box<KafkaConnect>,
    },
    /// The KafkaConnect does not exist or is being deleted.
    Gone,
    /// It exists but cannot serve yet.
    NotReady(String),
}

/// The CA certificates (PEM) a cluster's REST API is signed by (`spec.rest.tls`).
async fn rest_roots(secrets: &Api<Secret>, kc: &KafkaConnect) -> Result<Vec<Vec<u8>>, Error> {
    let mut out = Vec::new();
    let sources = kc
        .spec
        .rest
        .as_ref()
        .and_then(|r| r.tls.as_ref())
        .and_then(|t| t.trusted_certificates.as_ref());
    for s in sources.into_iter().flatten() {
        let data = secrets
            .get_opt(&s.secret_name)
            .await
            .map_err(|e| Error::Kube(format!("reading Secret {}: {e}", s.secret_name)))?
            .and_then(|s| s.data)
            .unwrap_or_default();
        let keys: Vec<String> = match (&s.certificate, &s.pattern) {
            (Some(k), _) => vec![k.clone()],
            (None, Some(p)) => crate::validate::matching_keys(p, data.keys()),
            (None, None) => Vec::new(),
        };
        out.extend(keys.iter().filter_map(|k| data.get(k)).map(|v| v.0.clone()));
    }
    Ok(out)
}

async fn access(ctx: &Context, ns: &str, cluster: &str) -> Result<Access, Error> {
    let kcs: Api<KafkaConnect> = Api::namespaced(ctx.client.clone(), ns);
    let Some(kc) = kcs
        .get_opt(cluster)
        .await
        .map_err(|e| Error::Kube(format!("reading KafkaConnect {cluster}: {e}")))?
    else {
        return Ok(Access::Gone);
    };
    if kc.metadata.deletion_timestamp.is_some() {
        return Ok(Access::Gone);
    }
    let ready = kc
        .status
        .as_ref()
        .and_then(|s| s.ready_replicas)
        .unwrap_or(0);
    if ready == 0 {
        return Ok(Access::NotReady(format!(
            "KafkaConnect {cluster} has no ready worker"
        )));
    }
    let secrets: Api<Secret> = Api::namespaced(ctx.client.clone(), ns);
    let rest_secret = format!("{cluster}-connect-rest");
    let password = secrets
        .get_opt(&rest_secret)
        .await
        .map_err(|e| Error::Kube(format!("reading Secret {rest_secret}: {e}")))?
        .and_then(|s| s.data)
        .and_then(|d| d.get("password").cloned())
        .and_then(|p| String::from_utf8(p.0).ok());
    let Some(password) = password else {
        return Ok(Access::NotReady(format!(
            "the REST credentials of KafkaConnect {cluster} (Secret {rest_secret}) do not exist yet"
        )));
    };
    let roots = rest_roots(&secrets, &kc).await?;
    let roots: Vec<&[u8]> = roots.iter().map(Vec::as_slice).collect();
    let http = ctx.rest_client(&roots)?;
    let tls = kc.spec.rest.as_ref().and_then(|r| r.tls.as_ref()).is_some();
    let n = kc.spec.replicas.max(ready);
    let workers = (0..n)
        .map(|i| build::worker_url(tls, cluster, ns, &format!("{cluster}-connect-{i}")))
        .collect();
    let client = ConnectClient::new(http, workers, build::secret::REST_USER, &password);
    Ok(Access::Ready {
        key: (ns.to_string(), cluster.to_string()),
        client,
        kc: Box::new(kc),
    })
}

/// Why a Connector waits: reason, message, and whether only a change can help (Stalled).
type Waiting = (&'static str, String, bool);

/// Whether the `configFrom` Secrets exist and every worker mounts them: their values (to redact
/// from traces and messages; the operator never writes them anywhere), or why not.
async fn config_from_ready(
    ctx: &Context,
    conn: &Connector,
    ns: &str,
) -> Result<Result<Vec<String>, Waiting>, Error> {
    let froms = conn.spec.config_from.as_deref().unwrap_or_default();
    if froms.is_empty() {
        return Ok(Ok(Vec::new()));
    }
    let secrets: Api<Secret> = Api::namespaced(ctx.client.clone(), ns);
    let mut problems = Vec::new();
    let mut values = Vec::new();
    for (i, f) in froms.iter().enumerate() {
        let r = &f.secret_key_ref;
        match secrets
            .get_opt(&r.name)
            .await
            .map_err(|e| Error::Kube(format!("reading Secret {}: {e}", r.name)))?
        {
            None => problems.push(format!(
                "spec.configFrom[{i}].secretKeyRef: Secret {} does not exist in this namespace",
                r.name
            )),
            Some(s) => match s.data.and_then(|mut d| d.remove(&r.key)) {
                Some(v) => values.push(String::from_utf8_lossy(&v.0).into_owned()),
                None => problems.push(format!(
                    "spec.configFrom[{i}].secretKeyRef: Secret {} has no key {}",
                    r.name, r.key
                )),
            },
        }
    }
    if !problems.is_empty() {
        return Ok(Err(("InvalidSpec", problems.join("; "), true)));
    }
    // The KafkaConnect controller mounts them; the workers roll to get the new volume.
    let cluster = &conn.spec.cluster_ref.name;
    let stss: Api<k8s_openapi::api::apps::v1::StatefulSet> =
        Api::namespaced(ctx.client.clone(), ns);
    let sts_name = format!("{cluster}-connect");
    let Some(sts) = stss
        .get_opt(&sts_name)
        .await
        .map_err(|e| Error::Kube(format!("reading StatefulSet {sts_name}: {e}")))?
    else {
        return Ok(Err((
            "ClusterNotReady",
            format!("the workers of KafkaConnect {cluster} do not exist yet"),
            false,
        )));
    };
    let mounted: Vec<String> = sts
        .spec
        .template
        .spec
        .as_ref()
        .and_then(|p| p.volumes.as_ref())
        .into_iter()
        .flatten()
        .filter_map(|v| v.secret.as_ref().and_then(|s| s.secret_name.clone()))
        .collect();
    let missing: Vec<&str> = froms
        .iter()
        .map(|f| f.secret_key_ref.name.as_str())
        .filter(|n| !mounted.iter().any(|m| m == n))
        .collect();
    let st = sts.status.unwrap_or_default();
    // updatedReplicas counts pods on the newest template (OnDelete never moves currentRevision).
    let rolled = st.observed_generation == sts.metadata.generation
        && st.updated_replicas.unwrap_or(0) == st.replicas;
    if !missing.is_empty() || !rolled {
        return Ok(Err((
            "WaitingForSecrets",
            format!(
                "the workers of KafkaConnect {cluster} are being given Secrets {} (the pods roll one at a time)",
                froms
                    .iter()
                    .map(|f| f.secret_key_ref.name.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
            false,
        )));
    }
    Ok(Ok(values))
}

/// The status to write, built from the previous one.
struct StatusDraft {
    status: ConnectorStatus,
    ready: bool,
    reason: String,
    message: String,
    /// Whether something is in progress (`Reconciling`), or stuck until a change (`Stalled`).
    stalled: bool,
}

impl StatusDraft {
    fn from(conn: &Connector) -> Self {
        Self {
            status: conn.status.clone().unwrap_or_default(),
            ready: false,
            reason: String::new(),
            message: String::new(),
            stalled: false,
        }
    }

    fn not_ready(mut self, reason: &str, message: impl Into<String>) -> Self {
        self.ready = false;
        self.reason = reason.into();
        self.message = message.into();
        self
    }

    fn stalled(mut self, reason: &str, message: impl Into<String>) -> Self {
        self = self.not_ready(reason, message);
        self.stalled = true;
        self
    }
}

async fn write_status(ctx: &Context, conn: &Connector, draft: StatusDraft) -> Result<(), Error> {
    let ns = conn.namespace().unwrap_or_default();
    let api: Api<Connector> = Api::namespaced(ctx.client.clone(), &ns);
    let mut status = draft.status;
    let (reconciling, stalled) = if draft.ready {
        (false, false)
    } else {
        (!draft.stalled, draft.stalled)
    };
    let d = vec![
        decided("Ready", draft.ready, &draft.reason, draft.message.clone()),
        decided(
            "Reconciling",
            reconciling,
            &draft.reason,
            if reconciling {
                draft.message.clone()
            } else {
                String::new()
            },
        ),
        decided(
            "Stalled",
            stalled,
            &draft.reason,
            if stalled {
                draft.message.clone()
            } else {
                String::new()
            },
        ),
    ];
    let generation = conn.meta().generation;
    status.conditions = Some(conditions(
        &d,
        conn.status.as_ref().and_then(|s| s.conditions.as_deref()),
        generation,
        k8s_openapi::jiff::Timestamp::now(),
    ));
    status.observed_generation = generation;
    ctx.metrics.connector_state(
        &ns,
        &conn.name_any(),
        status
            .connector_status
            .as_ref()
            .map(|v| v.connector.state.as_str()),
    );
    if conn.status.as_ref() == Some(&status) {
        return Ok(());
    }
    let was_ready = conn
        .status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .is_some_and(|c| c.iter().any(|c| c.type_ == "Ready" && c.status == "True"));
    if was_ready != draft.ready || (draft.stalled && !was_ready) {
        let warning = !draft.ready && draft.stalled;
        let reason = if draft.ready { "Ready" } else { &draft.reason };
        ctx.event(conn, warning, reason, draft.message.clone())
            .await;
    }
    super::apply_status(&api, &conn.name_any(), &status).await
}

/// Fault injection for the crash tests: with `TRIBUTARY_FAULT_ABORT_AFTER_CREATES=N` the process
/// aborts right after its Nth connector create, before anything records it — the window a
/// crash-consistent controller must survive. Unset in every real deployment.
fn abort_after_create_if_asked() {
    static CREATES: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
    let Some(limit) = std::env::var("TRIBUTARY_FAULT_ABORT_AFTER_CREATES")
        .ok()
        .and_then(|v| v.parse::<u32>().ok())
    else {
        return;
    };
    let n = CREATES.fetch_add(1, std::sync::atomic::Ordering::SeqCst) + 1;
    if n >= limit {
        tracing::warn!(
            creates = n,
            "fault injection: aborting after a connector create"
        );
        std::process::abort();
    }
}

/// An action as an Event reason (one per kind, so repeats are counted on one Event) and note.
fn describe(a: &Call) -> (&'static str, String) {
    match a {
        Call::Create(s) => ("Created", format!("created in state {s:?}").to_lowercase()),
        Call::UpdateConfig => ("ConfigUpdated", "config updated".into()),
        Call::Transition("pause") => ("Paused", "paused".into()),
        Call::Transition("stop") => ("Stopped", "stopped".into()),
        Call::Transition(_) => ("Resumed", "resumed".into()),
        Call::Restart {
            include_tasks,
            only_failed,
        } => (
            "Restarted",
            format!("restarted (includeTasks={include_tasks}, onlyFailed={only_failed})"),
        ),
        Call::RestartTask(t) => ("TaskRestarted", format!("task {t} restarted")),
        Call::ResetOffsets => ("OffsetsReset", "offsets reset".into()),
        Call::AlterOffsets(_) => ("OffsetsAltered", "offsets altered".into()),
    }
}

async fn execute(
    client: &ConnectClient,
    name: &str,
    desired: &BTreeMap<String, String>,
    a: &Call,
) -> Result<(), CallError> {
    use crate::crd::connector::ConnectorState as S;
    match a {
        Call::Create(state) => {
            let initial = match state {
                S::Running => "RUNNING",
                S::Paused => "PAUSED",
                S::Stopped => "STOPPED",
            };
            client.create(name, desired, initial).await
        }
        Call::UpdateConfig => client.put_config(name, desired).await,
        Call::Transition(verb) => client.transition(name, verb).await,
        Call::Restart {
            include_tasks,
            only_failed,
        } => client.restart(name, *include_tasks, *only_failed).await,
        Call::RestartTask(t) => client.restart_task(name, *t).await,
        Call::ResetOffsets => client.reset_offsets(name).await,
        Call::AlterOffsets(v) => client.alter_offsets(name, v).await,
    }
}

/// Field errors of a validation, with any value of a secret replaced.
fn validation_errors(infos: &tributary_connect_client::ConfigInfos, secrets: &[String]) -> String {
    let mut out = Vec::new();
    for c in &infos.configs {
        for e in &c.value.errors {
            let mut e = e.clone();
            if c.definition.type_ == "PASSWORD"
                && let Some(v) = c.value.value.as_deref().filter(|v| !v.is_empty())
            {
                e = e.replace(v, "[hidden]");
            }
            out.push(format!(
                "{}: {}",
                c.value.name,
                planner::redact_trace(&e, secrets)
            ));
        }
    }
    out.join("; ")
}

fn plugin_list(kc: &KafkaConnect) -> String {
    let list: Vec<String> = kc
        .status
        .as_ref()
        .and_then(|s: &KafkaConnectStatus| s.connector_plugins.as_ref())
        .into_iter()
        .flatten()
        .filter(|p| p.type_ == "source" || p.type_ == "sink")
        .map(|p| p.class.clone())
        .collect();
    if list.is_empty() {
        "the cluster has not listed its plugins yet".into()
    } else {
        format!("the cluster has {}", list.join(", "))
    }
}

fn now_secs() -> i64 {
    k8s_openapi::jiff::Timestamp::now().as_second()
}

async fn apply(conn: Arc<Connector>, ctx: Arc<Context>) -> Result<Action, Error> {
    let ns = conn.namespace().unwrap_or_default();
    let resource = conn.name_any();
    let name = planner::connector_name(&conn.spec, &resource).to_string();
    let draft = StatusDraft::from(&conn);

    let desired = match planner::desired_config(&conn.spec, &name, build::config_map::DIR_PROVIDER)
    {
        Ok(d) => d,
        Err(problems) => {
            let message = problems
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join("; ");
            write_status(&ctx, &conn, draft.stalled("InvalidSpec", message)).await?;
            return Ok(Action::await_change());
        }
    };
    let secrets = match config_from_ready(&ctx, &conn, &ns).await? {
        Ok(values) => values,
        Err((reason, msg, stalled)) => {
            let (d, again) = if stalled {
                (draft.stalled(reason, msg), 60)
            } else {
                (draft.not_ready(reason, msg), 5)
            };
            write_status(&ctx, &conn, d).await?;
            return Ok(Action::requeue(Duration::from_secs(again)));
        }
    };
    let cluster = &conn.spec.cluster_ref.name;
    let (key, client, kc) = match access(&ctx, &ns, cluster).await? {
        Access::Ready { key, client, kc } => (key, client, kc),
        Access::Gone => {
            let msg = format!("KafkaConnect {cluster} does not exist in namespace {ns}");
            write_status(&ctx, &conn, draft.not_ready("ClusterNotFound", msg)).await?;
            return Ok(Action::requeue(Duration::from_secs(30)));
        }
        Access::NotReady(msg) => {
            write_status(&ctx, &conn, draft.not_ready("ClusterNotReady", msg)).await?;
            return Ok(Action::requeue(Duration::from_secs(10)));
        }
    };
    let mut view: Snapshot = ctx
        .pollers
        .view(&key, client.clone(), None, FIRST_VIEW)
        .await;
    let name_known = view.result.as_ref().is_ok_and(|c| c.contains_key(&name));
    if !name_known {
        // About to create: only on a view taken now (one made before someone created it
        // through the REST API would make the operator take theirs).
        view = ctx
            .pollers
            .view(&key, client.clone(), Some(Instant::now()), FIRST_VIEW)
            .await;
    }
    let connectors = match view.result {
        Ok(c) => c,
        Err(e) => {
            let msg = format!("the workers of KafkaConnect {cluster} did not answer: {e}");
            write_status(&ctx, &conn, draft.not_ready("Unreachable", msg)).await?;
            return Ok(Action::requeue(Duration::from_secs(10)));
        }
    };
    let live = connectors.get(&name);
    let previous = conn.status.as_ref();
    let claimed = previous.and_then(|s| s.connector_name.as_deref()) == Some(name.as_str());
    let plan: Plan = planner::plan(
        &conn.spec,
        &desired,
        live,
        previous,
        conn.annotations(),
        claimed,
        now_secs(),
    );
    if let Some(c) = &plan.conflict {
        write_status(&ctx, &conn, draft.stalled("AlreadyExists", c.clone())).await?;
        return Ok(Action::requeue(Duration::from_secs(60)));
    }

    // Record the claim before the first change, so an operator stopped right after the create
    // knows the connector for its own.
    let mut draft = draft;
    if !claimed {
        draft.status.connector_name = Some(name.clone());
        if !plan.actions.is_empty() {
            let claim = StatusDraft {
                status: draft.status.clone(),
                ..StatusDraft::from(&conn)
            }
            .not_ready("Creating", format!("creating connector {name}"));
            write_status(&ctx, &conn, claim).await?;
        }
    }

    if plan.validate {
        match client.validate(&conn.spec.class, &desired).await {
            Ok(infos) if infos.error_count > 0 => {
                let msg = validation_errors(&infos, &secrets);
                write_status(&ctx, &conn, draft.stalled("InvalidConfig", msg)).await?;
                return Ok(Action::requeue(Duration::from_secs(300)));
            }
            Ok(_) => {}
            Err(CallError::Unreachable(e)) => {
                let msg = format!("the workers of KafkaConnect {cluster} did not answer: {e}");
                write_status(&ctx, &conn, draft.not_ready("Unreachable", msg)).await?;
                return Ok(Action::requeue(Duration::from_secs(10)));
            }
            Err(CallError::Status { code, message })
                if code == 404 || message.contains("Failed to find any class") =>
            {
                let msg = format!(
                    "no connector plugin {} on KafkaConnect {cluster}: {}",
                    conn.spec.class,
                    plugin_list(&kc)
                );
                write_status(&ctx, &conn, draft.stalled("PluginNotFound", msg)).await?;
                return Ok(Action::requeue(Duration::from_secs(300)));
            }
            Err(e) => {
                let msg = format!("validating the config failed: {e}");
                write_status(&ctx, &conn, draft.not_ready("ValidationFailed", msg)).await?;
                return Ok(Action::requeue(Duration::from_secs(15)));
            }
        }
    }

    let mut done = Vec::new();
    for a in &plan.actions {
        let outcome = execute(&client, &name, &desired, a).await;
        if let (Call::Create(_), Err(CallError::Status { code: 409, .. })) = (a, &outcome) {
            // Someone created it since the view: theirs unless this resource had claimed the
            // name before this reconcile (an earlier attempt's create that did arrive).
            ctx.pollers.kick(&key);
            if !claimed {
                draft.status.connector_name = None;
                let msg = "a connector of this name was just created on the cluster another way; set spec.adoptExisting: true to manage it, or use another spec.connectorName";
                write_status(&ctx, &conn, draft.stalled("AlreadyExists", msg)).await?;
                return Ok(Action::requeue(Duration::from_secs(60)));
            }
            done.push("created (by an earlier attempt)".to_string());
            continue;
        }
        if let Err(e) = outcome {
            if !done.is_empty() {
                ctx.pollers.kick(&key);
            }
            let msg = planner::redact_trace(&format!("{} failed: {e}", describe(a).1), &secrets);
            tracing::info!(connector = %name, namespace = %ns, error = %msg, "request failed");
            // 409: a rebalance is under way, over in a moment.
            let again = if e.code() == Some(409) { 2 } else { 10 };
            write_status(&ctx, &conn, draft.not_ready("RequestFailed", msg)).await?;
            return Ok(Action::requeue(Duration::from_secs(again)));
        }
        if matches!(a, Call::Create(_)) {
            abort_after_create_if_asked();
        }
        let (reason, note) = describe(a);
        ctx.event(&*conn, false, reason, note.clone()).await;
        done.push(note);
    }
    if !done.is_empty() {
        ctx.pollers.kick(&key);
        tracing::info!(connector = %name, namespace = %ns, actions = ?done, "connector changed");
    }
    if !plan.remove_annotations.is_empty() {
        let api: Api<Connector> = Api::namespaced(ctx.client.clone(), &ns);
        let nulls: serde_json::Map<String, serde_json::Value> = plan
            .remove_annotations
            .iter()
            .map(|k| (k.clone(), serde_json::Value::Null))
            .collect();
        let patch = serde_json::json!({"metadata": {"annotations": nulls}});
        api.patch(&resource, &PatchParams::default(), &Patch::Merge(&patch))
            .await
            .map_err(|e| Error::Kube(format!("removing annotations of {resource}: {e}")))?;
    }

    // Status.
    let st = &mut draft.status;
    if let Some(r) = plan.observed_restart.clone() {
        st.observed_restart = Some(r);
    }
    if let Some(o) = plan.observed_offsets.clone() {
        st.observed_offsets = Some(o);
    }
    if let Some(a) = plan.auto_restart.clone() {
        st.auto_restart = Some(a);
    }
    st.tasks_max = conn.spec.tasks_max.or_else(|| {
        live.and_then(|l| l.info.as_ref())
            .and_then(|i| i.config.get("tasks.max"))
            .and_then(|t| t.parse().ok())
    });
    st.selector = Some(format!("tributary.dev/cluster={cluster}"));
    if let Some(l) = live {
        st.connector_status = planner::status_view(l, &secrets);
    } else {
        st.connector_status = None;
    }
    let (ready, reason, message) = if done.is_empty() {
        planner::readiness(&conn.spec, live, &plan)
    } else {
        (false, "Applying", done.join(", "))
    };
    // Topics (KIP-558) appear with the first records, after the connector is RUNNING: fetched
    // while none are known, and again for a new generation (a config edit can name others).
    let new_generation = st.observed_generation != conn.metadata.generation;
    if ready
        && (new_generation || st.topics.as_ref().is_none_or(Vec::is_empty))
        && let Ok(t) = client.topics(&name).await
    {
        st.topics = Some(t);
    }
    let running = planner::state_of(&conn.spec) == ConnectorState::Running;
    let awaiting_topics = running && st.topics.as_ref().is_none_or(Vec::is_empty);
    // How long it has been Ready (zero when this reconcile makes it so).
    let ready_for = conn
        .status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .and_then(|c| c.iter().find(|c| c.type_ == "Ready" && c.status == "True"))
        .map_or(Duration::ZERO, |c| {
            Duration::try_from(
                k8s_openapi::jiff::Timestamp::now().duration_since(c.last_transition_time.0),
            )
            .unwrap_or(Duration::ZERO)
        });
    let mut draft = draft.not_ready(reason, message);
    draft.ready = ready;
    write_status(&ctx, &conn, draft).await?;
    Ok(Action::requeue(planner::requeue_after(
        ready,
        awaiting_topics,
        ready_for,
    )))
}

async fn cleanup(conn: Arc<Connector>, ctx: Arc<Context>) -> Result<Action, Error> {
    let ns = conn.namespace().unwrap_or_default();
    let resource = conn.name_any();
    ctx.metrics.connector_removed(&ns, &resource);
    let name = planner::connector_name(&conn.spec, &resource).to_string();
    if conn.spec.deletion_policy == Some(DeletionPolicy::Orphan) {
        tracing::info!(connector = %name, namespace = %ns, "deleted with deletionPolicy Orphan: the connector keeps running");
        return Ok(Action::await_change());
    }
    let claimed = conn
        .status
        .as_ref()
        .and_then(|s| s.connector_name.as_deref())
        == Some(name.as_str());
    if !claimed {
        return Ok(Action::await_change());
    }
    let cluster = &conn.spec.cluster_ref.name;
    match access(&ctx, &ns, cluster).await? {
        Access::Gone => {
            // The cluster is gone (its config topic keeps the connector, docs/operator.md).
            Ok(Action::await_change())
        }
        Access::NotReady(msg) => Err(Error::Kube(format!(
            "cannot delete connector {name} yet: {msg}"
        ))),
        Access::Ready { key, client, .. } => {
            client
                .delete(&name)
                .await
                .map_err(|e| Error::Kube(format!("deleting connector {name}: {e}")))?;
            let since = Instant::now();
            ctx.pollers.kick(&key);
            let view = ctx.pollers.view(&key, client, Some(since), GONE_VIEW).await;
            match view.result {
                Ok(c) if view.at.is_some_and(|a| a >= since) && !c.contains_key(&name) => {
                    tracing::info!(connector = %name, namespace = %ns, "connector deleted from the cluster");
                    Ok(Action::await_change())
                }
                _ => Err(Error::Kube(format!(
                    "connector {name} is still listed by the cluster; waiting"
                ))),
            }
        }
    }
}

pub async fn reconcile(conn: Arc<Connector>, ctx: Arc<Context>) -> Result<Action, Error> {
    let started = Instant::now();
    let span = super::reconcile_span("Connector", conn.as_ref());
    let result =
        tracing::Instrument::instrument(reconcile_connector(conn, ctx.clone()), span).await;
    ctx.metrics.observe("Connector", started.elapsed());
    result
}

async fn reconcile_connector(conn: Arc<Connector>, ctx: Arc<Context>) -> Result<Action, Error> {
    ctx.metrics
        .reconciliations
        .get_or_create(&Metrics::kind("Connector"))
        .inc();
    let ns = conn
        .namespace()
        .ok_or_else(|| Error::Kube("a Connector without a namespace".into()))?;
    // The cache keeps only what routing needs (see `run`) and can lag behind this
    // controller's own status writes; what was already done (a restart id, an offsets id, the
    // claim) is read from the apiserver.
    let api: Api<Connector> = Api::namespaced(ctx.client.clone(), &ns);
    let resource = conn.name_any();
    let Some(conn) = api
        .get_opt(&resource)
        .await
        .map_err(|e| Error::Kube(format!("reading Connector {resource}: {e}")))?
    else {
        return Ok(Action::await_change());
    };
    let conn = Arc::new(conn);
    if conn
        .annotations()
        .get(annotations::PAUSE_RECONCILIATION)
        .is_some_and(|v| v == "true")
    {
        let draft = StatusDraft::from(&conn).not_ready(
            "ReconciliationPaused",
            "reconciliation is paused by the tributary.dev/pause-reconciliation annotation",
        );
        write_status(&ctx, &conn, draft).await?;
        return Ok(Action::await_change());
    }
    finalizer(&api, FINALIZER, conn, |event| async {
        match event {
            Finalizer::Apply(c) => apply(c, ctx.clone()).await,
            Finalizer::Cleanup(c) => cleanup(c, ctx.clone()).await,
        }
    })
    .await
    .map_err(|e| match e {
        kube::runtime::finalizer::Error::ApplyFailed(e)
        | kube::runtime::finalizer::Error::CleanupFailed(e) => e,
        other => Error::Kube(other.to_string()),
    })
}

pub fn error_policy(conn: Arc<Connector>, error: &Error, ctx: Arc<Context>) -> Action {
    ctx.metrics
        .failures
        .get_or_create(&Metrics::kind("Connector"))
        .inc();
    tracing::info!(connector = %conn.name_any(), namespace = ?conn.namespace(), error = %error, "reconcile failed; retrying");
    Action::requeue(Duration::from_secs(2))
}

/// kubectl's copy of what it last applied: the whole spec again.
const LAST_APPLIED: &str = "kubectl.kubernetes.io/last-applied-configuration";

/// Runs the controller over Connectors (one namespace or all) until a signal.
pub async fn run(ctx: Arc<Context>, namespace: Option<&str>) {
    let client = ctx.client.clone();
    let (connectors, clusters): (Api<Connector>, Api<KafkaConnect>) = match namespace {
        Some(n) => (
            Api::namespaced(client.clone(), n),
            Api::namespaced(client.clone(), n),
        ),
        None => (Api::all(client.clone()), Api::all(client.clone())),
    };
    let wc = watcher::Config::default();
    // The cache keeps every Connector, but only for routing (name, cluster, connector name):
    // each reconcile reads its resource afresh. Without managedFields, kubectl's last-applied
    // copy of the spec, the status and the spec's bulk (config, configFrom, offsets), a cached
    // Connector is a fraction of the object (with a thousand of them that is megabytes).
    let (store, writer) = kube::runtime::reflector::store();
    let stream = watcher(connectors, wc.clone())
        .backoff(super::watch_backoff())
        .modify(|c: &mut Connector| {
            c.managed_fields_mut().clear();
            c.annotations_mut().remove(LAST_APPLIED);
            c.status = None;
            c.spec.config = None;
            c.spec.config_from = None;
            c.spec.offsets = None;
        })
        .reflect(writer)
        .touched_objects();
    let controller = Controller::for_stream(stream, store.clone())
        .trigger_backoff(super::watch_backoff())
        // Bounded: each reconcile in flight holds its objects and HTTP buffers. A hanging
        // cluster holds a slot for seconds at most (request timeouts, then its breaker).
        .with_config(kube::runtime::controller::Config::default().concurrency(CONCURRENCY));
    let by_cluster = {
        let store = store.clone();
        move |ns: Option<String>, cluster: String, name: Option<String>| {
            store
                .state()
                .into_iter()
                .filter(|c| c.namespace() == ns && c.spec.cluster_ref.name == cluster)
                .filter(|c| {
                    name.as_deref()
                        .is_none_or(|n| planner::connector_name(&c.spec, &c.name_any()) == n)
                })
                .map(|c| ObjectRef::from_obj(&*c))
                .collect::<Vec<_>>()
        }
    };
    // The pollers' changes: reconcile the Connectors they concern, at once.
    let changes = futures::stream::unfold(ctx.pollers.subscribe(), |mut rx| async move {
        loop {
            match rx.recv().await {
                Ok(change) => return Some((change, rx)),
                Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => continue,
                Err(tokio::sync::broadcast::error::RecvError::Closed) => return None,
            }
        }
    });
    let find = by_cluster.clone();
    let scope = namespace.map(str::to_string);
    let triggers = changes.flat_map(move |((ns, cluster), name)| {
        let refs = if scope.as_ref().is_none_or(|s| *s == ns) {
            find(Some(ns), cluster, name)
        } else {
            Vec::new()
        };
        futures::stream::iter(refs)
    });
    let find = by_cluster;
    controller
        .watches(clusters, wc, move |kc: KafkaConnect| {
            find(kc.namespace(), kc.name_any(), None)
        })
        .reconcile_on(triggers)
        .shutdown_on_signal()
        .run(reconcile, error_policy, ctx)
        .for_each(|r| async move {
            if let Err(e) = r {
                tracing::debug!(error = %e, "reconcile error");
            }
        })
        .await;
}
