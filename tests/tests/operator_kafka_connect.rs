//! `tributary-operator run` against the devstack's real apiserver and controller-manager: a
//! KafkaConnect becomes its children with the expected content, its status follows, a missing
//! Secret stalls it until the Secret appears, config and Secret changes change the pod template's
//! hashes (and nothing else does), the scale subresource scales, pausing holds changes back, and
//! deleting the KafkaConnect garbage-collects every child.
//!
//! The operator runs with a token of the Helm chart's ServiceAccount, not as admin.
//!
//! Worker pods stay Pending here (the pod runner arrives with the rest of the operator issue);
//! what runs in them is tested by the worker tests.

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use anyhow::{Context, Result, ensure};
use k8s_openapi::api::apps::v1::StatefulSet;
use k8s_openapi::api::core::v1::{ConfigMap, Secret, Service};
use k8s_openapi::api::networking::v1::NetworkPolicy;
use kube::Api;
use nix::sys::signal::Signal;
use tributary_operator::crd::KafkaConnect;
use tributary_tests::installed::promtool_check_metrics;
use tributary_tests::operator::{chart_kubeconfig, install_crds, kubectl_ok, operator_binary};
use tributary_tests::stack::ports::free_ports;
use tributary_tests::stack::process::{Managed, spawn, tail};
use tributary_tests::{Devstack, wait_until};

const WAIT: Duration = Duration::from_secs(60);

fn kubectl(stack: &Devstack, args: &[&str], stdin: Option<&str>) -> Result<String> {
    kubectl_ok(stack, args, stdin)
}

/// Starts `tributary-operator run` watching `ns`, with the chart's RBAC and leader election
/// through the Lease `lease` in `ns`.
fn start_operator(
    ns: &str,
    dir: &Path,
    kubeconfig: &Path,
    name: &str,
    lease: &str,
    extra: &[&str],
) -> Result<Managed> {
    start_operator_at(free_ports(1)?[0], ns, dir, kubeconfig, name, lease, extra)
}

/// [`start_operator`] with its metrics on `port`.
fn start_operator_at(
    port: u16,
    ns: &str,
    dir: &Path,
    kubeconfig: &Path,
    name: &str,
    lease: &str,
    extra: &[&str],
) -> Result<Managed> {
    let mut cmd = Command::new(operator_binary()?);
    cmd.args([
        "run",
        "--namespace",
        ns,
        "--lease-namespace",
        ns,
        "--lease-name",
        lease,
    ])
    .args(extra)
    .arg("--metrics-addr")
    .arg(format!("127.0.0.1:{port}"))
    .env("KUBECONFIG", kubeconfig)
    .env("POD_NAME", name)
    .env("TRIBUTARY_LOG", "info,tributary_operator=debug");
    spawn(name, &mut cmd, dir, Signal::SIGTERM)
}

fn cluster_yaml(name: &str, replicas: i32, flush: u32) -> String {
    format!(
        "apiVersion: tributary.dev/v1alpha1
kind: KafkaConnect
metadata:
  name: {name}
spec:
  replicas: {replicas}
  bootstrapServers: kafka-0:9093
  groupId: {name}
  configStorageTopic: {name}-configs
  offsetStorageTopic: {name}-offsets
  statusStorageTopic: {name}-status
  authentication:
    type: scram-sha-512
    username: connect
    passwordSecret: {{secretName: {name}-user, password: password}}
  config:
    offset.flush.interval.ms: {flush}
"
    )
}

fn condition(kc: &KafkaConnect, type_: &str) -> Option<(String, String, String)> {
    kc.status
        .as_ref()?
        .conditions
        .as_ref()?
        .iter()
        .find(|c| c.type_ == type_)
        .map(|c| (c.status.clone(), c.reason.clone(), c.message.clone()))
}

fn template_annotation(sts: &StatefulSet, key: &str) -> Option<String> {
    sts.spec
        .template
        .metadata
        .as_ref()?
        .annotations
        .as_ref()?
        .get(key)
        .cloned()
}

#[tokio::test]
async fn a_kafka_connect_becomes_its_children_and_its_status_follows() -> Result<()> {
    let stack = Devstack::shared()?;
    let dir = tempfile::tempdir()?;
    install_crds(stack)?;
    let ns = stack.namespace("op").await?;
    let kubeconfig = chart_kubeconfig(stack, &ns, dir.path(), false)?;
    let metrics_port = free_ports(1)?[0];
    let mut operator = start_operator_at(
        metrics_port,
        &ns,
        dir.path(),
        &kubeconfig,
        "operator",
        "lease",
        &[],
    )?;
    let client = stack.kube_client().await?;
    let kcs: Api<KafkaConnect> = Api::namespaced(client.clone(), &ns);
    let stss: Api<StatefulSet> = Api::namespaced(client.clone(), &ns);
    let cms: Api<ConfigMap> = Api::namespaced(client.clone(), &ns);
    let secrets: Api<Secret> = Api::namespaced(client.clone(), &ns);
    let log = |m: &Managed| tail(&m.log, 40);

    // A referenced Secret that does not exist: Stalled, naming the field; nothing built.
    kubectl(
        stack,
        &["apply", "-n", &ns, "-f", "-"],
        Some(&cluster_yaml("pipe", 3, 1000)),
    )?;
    let r = wait_until("Stalled for the missing Secret", WAIT, || async {
        let kc = kcs.get("pipe").await?;
        Ok(condition(&kc, "Stalled").filter(|c| c.0 == "True"))
    })
    .await;
    let (_, reason, message) = r.with_context(|| log(&operator))?;
    ensure!(reason == "InvalidSpec", "{reason}");
    ensure!(
        message.contains("spec.authentication.passwordSecret: Secret pipe-user does not exist"),
        "{message}"
    );
    ensure!(
        stss.get_opt("pipe-connect").await?.is_none(),
        "built while stalled"
    );
    // ... and a Warning Event says the same to `kubectl describe`.
    wait_until("an InvalidSpec event", WAIT, || async {
        let out = kubectl(
            stack,
            &[
                "get",
                "events",
                "-n",
                &ns,
                "--field-selector",
                "involvedObject.name=pipe,type=Warning,reason=InvalidSpec",
                "-o",
                "name",
            ],
            None,
        )?;
        Ok((!out.trim().is_empty()).then_some(()))
    })
    .await?;

    // The Secret appears: the operator notices (it watches Secrets) and builds everything.
    let password = "hunter2-very-secret";
    kubectl(
        stack,
        &[
            "create",
            "secret",
            "generic",
            "pipe-user",
            "-n",
            &ns,
            &format!("--from-literal=password={password}"),
        ],
        None,
    )?;
    let sts = wait_until("the StatefulSet", WAIT, || async {
        Ok(stss.get_opt("pipe-connect").await?)
    })
    .await
    .with_context(|| log(&operator))?;
    let kc = kcs.get("pipe").await?;
    let uid = kc.metadata.uid.clone().unwrap_or_default();
    let services: Api<Service> = Api::namespaced(client.clone(), &ns);
    for (kind, name, owners) in [
        (
            "StatefulSet",
            "pipe-connect",
            sts.metadata.owner_references.clone(),
        ),
        (
            "ConfigMap",
            "pipe-connect-config",
            cms.get("pipe-connect-config")
                .await?
                .metadata
                .owner_references,
        ),
        (
            "Service",
            "pipe-connect",
            services
                .get("pipe-connect")
                .await?
                .metadata
                .owner_references,
        ),
        (
            "Service",
            "pipe-connect-api",
            services
                .get("pipe-connect-api")
                .await?
                .metadata
                .owner_references,
        ),
        (
            "Secret",
            "pipe-connect-rest",
            secrets
                .get("pipe-connect-rest")
                .await?
                .metadata
                .owner_references,
        ),
    ] {
        ensure!(
            owners
                .iter()
                .flatten()
                .any(|o| o.uid == uid && o.controller == Some(true)),
            "{kind} {name} is not owned by the KafkaConnect"
        );
    }
    // No secret value in the ConfigMap or in an env literal of the pods.
    let cm = cms.get("pipe-connect-config").await?;
    let props = cm
        .data
        .and_then(|d| d.get("worker.properties").cloned())
        .unwrap_or_default();
    ensure!(
        !props.contains(password),
        "the password is in the ConfigMap"
    );
    ensure!(
        props.contains("sasl.jaas.config=")
            && props.contains("/opt/tributary/secrets/kafka-password"),
        "{props}"
    );
    let sts_json = serde_json::to_string(&sts)?;
    ensure!(
        !sts_json.contains(password),
        "the password is in the StatefulSet"
    );

    // Status: the scale subresource's fields, and Reconciling while the workers start.
    let kc = wait_until("status with replicas", WAIT, || async {
        let kc = kcs.get("pipe").await?;
        let ok = kc.status.as_ref().is_some_and(|s| {
            s.replicas == Some(3) && s.label_selector.is_some() && s.url.is_some()
        });
        Ok(ok.then_some(kc))
    })
    .await
    .with_context(|| log(&operator))?;
    ensure!(
        condition(&kc, "Reconciling").is_some_and(|c| c.0 == "True"),
        "{:?}",
        kc.status
    );
    ensure!(condition(&kc, "Stalled").is_some_and(|c| c.0 == "False"));

    // Scaling changes replicas only: same config hash.
    let config_hash = template_annotation(&sts, "tributary.dev/config-hash");
    let secrets_hash = template_annotation(&sts, "tributary.dev/secrets-hash");
    kubectl(
        stack,
        &[
            "scale",
            "-n",
            &ns,
            "kafkaconnect.tributary.dev/pipe",
            "--replicas=5",
        ],
        None,
    )?;
    let sts = wait_until("5 replicas", WAIT, || async {
        let s = stss.get("pipe-connect").await?;
        Ok((s.spec.replicas == Some(5)).then_some(s))
    })
    .await
    .with_context(|| log(&operator))?;
    ensure!(template_annotation(&sts, "tributary.dev/config-hash") == config_hash);
    ensure!(template_annotation(&sts, "tributary.dev/secrets-hash") == secrets_hash);

    // A worker setting changes the config hash; a Secret rotation the secrets hash.
    kubectl(
        stack,
        &["apply", "-n", &ns, "-f", "-"],
        Some(&cluster_yaml("pipe", 5, 2000)),
    )?;
    let sts = wait_until("a new config hash", WAIT, || async {
        let s = stss.get("pipe-connect").await?;
        Ok((template_annotation(&s, "tributary.dev/config-hash") != config_hash).then_some(s))
    })
    .await
    .with_context(|| log(&operator))?;
    ensure!(template_annotation(&sts, "tributary.dev/secrets-hash") == secrets_hash);
    let config_hash = template_annotation(&sts, "tributary.dev/config-hash");
    let patch = serde_json::json!({"stringData": {"password": "rotated"}});
    secrets
        .patch(
            "pipe-user",
            &kube::api::PatchParams::default(),
            &kube::api::Patch::Merge(&patch),
        )
        .await?;
    let sts = wait_until("a new secrets hash", WAIT, || async {
        let s = stss.get("pipe-connect").await?;
        Ok((template_annotation(&s, "tributary.dev/secrets-hash") != secrets_hash).then_some(s))
    })
    .await
    .with_context(|| log(&operator))?;
    ensure!(template_annotation(&sts, "tributary.dev/config-hash") == config_hash);

    // Paused: changes wait; the status says why.
    kubectl(
        stack,
        &[
            "annotate",
            "-n",
            &ns,
            "kafkaconnect.tributary.dev/pipe",
            "tributary.dev/pause-reconciliation=true",
        ],
        None,
    )?;
    wait_until("ReconciliationPaused", WAIT, || async {
        let kc = kcs.get("pipe").await?;
        Ok(condition(&kc, "Ready").filter(|c| c.1 == "ReconciliationPaused"))
    })
    .await
    .with_context(|| log(&operator))?;
    kubectl(
        stack,
        &["apply", "-n", &ns, "-f", "-"],
        Some(&cluster_yaml("pipe", 5, 3000)),
    )?;
    tokio::time::sleep(Duration::from_secs(3)).await;
    let s = stss.get("pipe-connect").await?;
    ensure!(
        template_annotation(&s, "tributary.dev/config-hash") == config_hash,
        "changed while paused"
    );
    kubectl(
        stack,
        &[
            "annotate",
            "-n",
            &ns,
            "kafkaconnect.tributary.dev/pipe",
            "tributary.dev/pause-reconciliation-",
        ],
        None,
    )?;
    wait_until("the held-back change applied", WAIT, || async {
        let s = stss.get("pipe-connect").await?;
        Ok((template_annotation(&s, "tributary.dev/config-hash") != config_hash).then_some(()))
    })
    .await
    .with_context(|| log(&operator))?;

    // Deleting the KafkaConnect garbage-collects every child.
    kubectl(
        stack,
        &[
            "delete",
            "-n",
            &ns,
            "kafkaconnect.tributary.dev/pipe",
            "--wait=true",
        ],
        None,
    )?;
    wait_until("every child gone", Duration::from_secs(120), || async {
        let left = stss.get_opt("pipe-connect").await?.is_some()
            || cms.get_opt("pipe-connect-config").await?.is_some()
            || services.get_opt("pipe-connect").await?.is_some()
            || services.get_opt("pipe-connect-api").await?.is_some()
            || secrets.get_opt("pipe-connect-rest").await?.is_some();
        Ok((!left).then_some(()))
    })
    .await?;
    ensure!(
        operator.poll_exit().is_none(),
        "the operator exited: {}",
        log(&operator)
    );
    // Its metrics: what it did, in a text promtool finds nothing to say about.
    let text = reqwest::get(format!("http://127.0.0.1:{metrics_port}/metrics"))
        .await?
        .text()
        .await?;
    let sample = |name: &str| -> f64 {
        text.lines()
            .filter(|l| l.starts_with(name))
            .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
            .sum()
    };
    ensure!(
        sample(r#"tributary_operator_reconciliations_total{kind="KafkaConnect"}"#) >= 3.0
            && sample(
                r#"tributary_operator_reconcile_duration_seconds_count{kind="KafkaConnect"}"#
            ) >= 3.0,
        "the operator's metrics:\n{text}"
    );
    let complaints = promtool_check_metrics(&text)?;
    ensure!(
        complaints.trim().is_empty(),
        "promtool check metrics: {complaints}\non:\n{text}"
    );
    operator.request_stop();
    Ok(())
}

#[tokio::test]
async fn one_operator_leads_and_a_standby_takes_over_when_it_stops() -> Result<()> {
    let stack = Devstack::shared()?;
    let dir = tempfile::tempdir()?;
    install_crds(stack)?;
    let ns = stack.namespace("lead").await?;
    let kubeconfig = chart_kubeconfig(stack, &ns, dir.path(), false)?;
    let mut a = start_operator(&ns, dir.path(), &kubeconfig, "op-a", "lease", &[])?;
    let leading = |m: &Managed| {
        std::fs::read_to_string(&m.log)
            .unwrap_or_default()
            .contains(" leading")
    };
    wait_until("op-a leading", WAIT, || async {
        Ok(leading(&a).then_some(()))
    })
    .await
    .with_context(|| tail(&a.log, 20))?;
    let mut b = start_operator(&ns, dir.path(), &kubeconfig, "op-b", "lease", &[])?;
    wait_until("op-b waiting", WAIT, || async {
        Ok(std::fs::read_to_string(&b.log)
            .unwrap_or_default()
            .contains("waiting to lead")
            .then_some(()))
    })
    .await?;
    // The standby does not reconcile: a new cluster is built by the leader only.
    let secret =
        "apiVersion: v1\nkind: Secret\nmetadata: {name: one-user}\nstringData: {password: p}\n";
    kubectl(stack, &["apply", "-n", &ns, "-f", "-"], Some(secret))?;
    kubectl(
        stack,
        &["apply", "-n", &ns, "-f", "-"],
        Some(&cluster_yaml("one", 1, 1000)),
    )?;
    let stss: Api<StatefulSet> = Api::namespaced(stack.kube_client().await?, &ns);
    wait_until("one built", WAIT, || async {
        Ok(stss.get_opt("one-connect").await?)
    })
    .await?;
    ensure!(!leading(&b), "two leaders: {}", tail(&b.log, 20));

    // The leader stops (SIGTERM releases the Lease): the standby leads and reconciles.
    a.request_stop();
    a.wait_stopped(std::time::Instant::now() + Duration::from_secs(30));
    wait_until("op-b leading", WAIT, || async {
        Ok(leading(&b).then_some(()))
    })
    .await
    .with_context(|| tail(&b.log, 20))?;
    let secret = secret.replace("one-user", "two-user");
    kubectl(stack, &["apply", "-n", &ns, "-f", "-"], Some(&secret))?;
    kubectl(
        stack,
        &["apply", "-n", &ns, "-f", "-"],
        Some(&cluster_yaml("two", 1, 1000)),
    )?;
    wait_until("two built by the new leader", WAIT, || async {
        Ok(stss.get_opt("two-connect").await?)
    })
    .await
    .with_context(|| tail(&b.log, 20))?;
    b.request_stop();
    Ok(())
}

#[tokio::test]
async fn children_the_cluster_no_longer_needs_are_deleted_and_nothing_else() -> Result<()> {
    let stack = Devstack::shared()?;
    let dir = tempfile::tempdir()?;
    install_crds(stack)?;
    let ns = stack.namespace("orphans").await?;
    let kubeconfig = chart_kubeconfig(stack, &ns, dir.path(), false)?;
    let mut operator = start_operator(&ns, dir.path(), &kubeconfig, "op", "lease", &[])?;
    let client = stack.kube_client().await?;
    let kcs: Api<KafkaConnect> = Api::namespaced(client.clone(), &ns);
    let cms: Api<ConfigMap> = Api::namespaced(client.clone(), &ns);
    let nps: Api<NetworkPolicy> = Api::namespaced(client.clone(), &ns);
    let stss: Api<StatefulSet> = Api::namespaced(client.clone(), &ns);
    let secret =
        "apiVersion: v1\nkind: Secret\nmetadata: {name: pipe-user}\nstringData: {password: p}\n";
    kubectl(stack, &["apply", "-n", &ns, "-f", "-"], Some(secret))?;
    kubectl(
        stack,
        &["apply", "-n", &ns, "-f", "-"],
        Some(&cluster_yaml("pipe", 1, 1000)),
    )?;
    wait_until("the NetworkPolicy built", WAIT, || async {
        Ok(nps.get_opt("pipe-connect").await?)
    })
    .await
    .with_context(|| tail(&operator.log, 20))?;
    let uid = kcs.get("pipe").await?.metadata.uid.unwrap_or_default();

    // A child an older operator version made (owned, labelled, no longer built) and a user's
    // ConfigMap that only carries the cluster's labels.
    let labels = "{tributary.dev/cluster: pipe, app.kubernetes.io/instance: pipe, app.kubernetes.io/name: tributary-connect}";
    let stale = format!(
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: pipe-connect-legacy\n  labels: {labels}\n  ownerReferences: [{{apiVersion: tributary.dev/v1alpha1, kind: KafkaConnect, name: pipe, uid: {uid}, controller: true, blockOwnerDeletion: true}}]\ndata: {{a: b}}\n"
    );
    let users = format!(
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: pipe-notes\n  labels: {labels}\ndata: {{a: b}}\n"
    );
    kubectl(stack, &["apply", "-n", &ns, "-f", "-"], Some(&stale))?;
    kubectl(stack, &["apply", "-n", &ns, "-f", "-"], Some(&users))?;
    // Orphans are looked for when the spec changes and when an operator (a new version)
    // starts: restart it.
    operator.request_stop();
    operator.wait_stopped(std::time::Instant::now() + Duration::from_secs(30));
    let mut operator = start_operator(&ns, dir.path(), &kubeconfig, "op-next", "lease", &[])?;
    wait_until("the stale ConfigMap deleted", WAIT, || async {
        Ok(cms
            .get_opt("pipe-connect-legacy")
            .await?
            .is_none()
            .then_some(()))
    })
    .await
    .with_context(|| tail(&operator.log, 20))?;
    ensure!(
        cms.get_opt("pipe-notes").await?.is_some(),
        "the user's ConfigMap was deleted"
    );
    ensure!(
        cms.get_opt("pipe-connect-config").await?.is_some(),
        "the cluster's own ConfigMap was deleted"
    );
    wait_until("a Pruned event", WAIT, || async {
        let events = kubectl(
            stack,
            &[
                "get",
                "events",
                "-n",
                &ns,
                "--field-selector",
                "reason=Pruned",
                "-o",
                "jsonpath={.items[*].message}",
            ],
            None,
        )?;
        Ok(events
            .contains("ConfigMap pipe-connect-legacy")
            .then_some(()))
    })
    .await?;

    // Restarted without NetworkPolicies: the cluster's policy goes, every other child stays.
    operator.request_stop();
    operator.wait_stopped(std::time::Instant::now() + Duration::from_secs(30));
    let mut operator = start_operator(
        &ns,
        dir.path(),
        &kubeconfig,
        "op-no-np",
        "lease",
        &["--network-policies=false"],
    )?;
    wait_until("the NetworkPolicy deleted", WAIT, || async {
        Ok(nps.get_opt("pipe-connect").await?.is_none().then_some(()))
    })
    .await
    .with_context(|| tail(&operator.log, 20))?;
    ensure!(stss.get_opt("pipe-connect").await?.is_some());
    ensure!(cms.get_opt("pipe-notes").await?.is_some());
    ensure!(
        operator.poll_exit().is_none(),
        "{}",
        tail(&operator.log, 20)
    );
    operator.request_stop();
    Ok(())
}
