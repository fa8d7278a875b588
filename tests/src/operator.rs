//! Helpers for the operator's end-to-end tests: the CRDs installed, the Helm chart's RBAC and a
//! kubeconfig with its ServiceAccount's token (so the operator runs with exactly the verbs the
//! chart grants), and the operator binary.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, Result, bail, ensure};
use serde_json::json;

use crate::{Devstack, unique_name};

/// The repository root.
pub fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_default()
}

/// kubectl that must succeed; its standard output.
pub fn kubectl_ok(stack: &Devstack, args: &[&str], stdin: Option<&str>) -> Result<String> {
    let out = stack.kubectl(args, stdin)?;
    ensure!(
        out.status.success(),
        "kubectl {args:?}: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    Ok(String::from_utf8_lossy(&out.stdout).to_string())
}

/// Applies `crds/tributary.dev.yaml` (CRDs and admission policies).
pub fn install_crds(stack: &Devstack) -> Result<()> {
    kubectl_ok(
        stack,
        &[
            "apply",
            "--server-side",
            "--force-conflicts",
            "-f",
            &repo().join("crds/tributary.dev.yaml").display().to_string(),
        ],
        None,
    )?;
    Ok(())
}

/// Installs the chart's ServiceAccount and RBAC in `ns` (a release of its own) and writes a
/// kubeconfig with that ServiceAccount's token. With `pod_network`, the kubeconfig reaches the
/// apiserver through the pod bridge (for an operator running in the `trib-operator` namespace).
pub fn chart_kubeconfig(
    stack: &Devstack,
    ns: &str,
    dir: &Path,
    pod_network: bool,
) -> Result<PathBuf> {
    let release = unique_name("t");
    let out = Command::new(stack.var("TRIBUTARY_HELM")?)
        .args(["template", &release])
        .arg(repo().join("charts/tributary"))
        .args(["--kube-version", &crate::installed::Versions::pinned().k8s])
        .args(["--namespace", ns])
        .args(["--show-only", "templates/serviceaccount.yaml"])
        .args(["--show-only", "templates/rbac.yaml"])
        .output()?;
    ensure!(
        out.status.success(),
        "helm template: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    kubectl_ok(
        stack,
        &["apply", "-n", ns, "-f", "-"],
        Some(&String::from_utf8(out.stdout)?),
    )?;
    service_account_kubeconfig(
        stack,
        ns,
        &format!("{release}-tributary-operator"),
        dir,
        pod_network,
    )
}

/// A kubeconfig with a token of ServiceAccount `sa` in `ns` (the apiserver through the pod
/// bridge with `pod_network`).
pub fn service_account_kubeconfig(
    stack: &Devstack,
    ns: &str,
    sa: &str,
    dir: &Path,
    pod_network: bool,
) -> Result<PathBuf> {
    let token = kubectl_ok(
        stack,
        &["create", "token", sa, "-n", ns, "--duration=2h"],
        None,
    )?;
    let admin: serde_json::Value = serde_json::from_str(&kubectl_ok(
        stack,
        &[
            "config",
            "view",
            "--raw",
            "--minify",
            "--flatten",
            "-o",
            "json",
        ],
        None,
    )?)?;
    let mut cluster = admin["clusters"][0]["cluster"].clone();
    if pod_network {
        let server = cluster["server"].as_str().unwrap_or_default().to_string();
        let port = server.rsplit(':').next().unwrap_or_default().to_string();
        cluster["server"] = json!(format!("https://{}:{port}", crate::stack::pod_net::HOST_IP));
    }
    let config = json!({
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": "devstack", "cluster": cluster}],
        "users": [{"name": "operator", "user": {"token": token.trim()}}],
        "contexts": [{"name": "operator", "context": {"cluster": "devstack", "user": "operator", "namespace": ns}}],
        "current-context": "operator",
    });
    let path = dir.join(format!("{ns}-{sa}.kubeconfig"));
    std::fs::write(&path, config.to_string())?;
    Ok(path)
}

/// `tributary-operator`, next to the test binary's folder (cargo builds it with the workspace).
pub fn operator_binary() -> Result<PathBuf> {
    if let Some(bin) = std::env::var_os("TRIBUTARY_OPERATOR_BIN") {
        return Ok(PathBuf::from(bin));
    }
    crate::worker::sibling_binary("tributary-operator", "cargo build --workspace")
}

/// Starts `tributary-operator run` for namespace `ns` in the pod network (namespace
/// `trib-operator`, where pod DNS names resolve), with `kubeconfig`'s credentials and `extra`
/// arguments.
pub fn start_operator_in_pod_network(
    ns: &str,
    dir: &Path,
    kubeconfig: &Path,
    extra: &[&str],
    envs: &[(&str, &str)],
) -> Result<crate::stack::process::Managed> {
    start_operator_in_netns("trib-operator", ns, dir, kubeconfig, extra, envs)
}

/// [`start_operator_in_pod_network`] in network namespace `netns` (a stack's
/// `TRIBUTARY_OPERATOR_NETNS`).
pub fn start_operator_in_netns(
    netns: &str,
    ns: &str,
    dir: &Path,
    kubeconfig: &Path,
    extra: &[&str],
    envs: &[(&str, &str)],
) -> Result<crate::stack::process::Managed> {
    let bin = operator_binary()?;
    let mut cmd = Command::new("ip");
    cmd.args(["netns", "exec", netns])
        .arg(bin)
        .args(["run", "--namespace", ns, "--lease-namespace", ns])
        .args(["--metrics-addr", "127.0.0.1:0"])
        .args(extra)
        .env("KUBECONFIG", kubeconfig)
        .env("POD_NAME", "operator")
        .env("TRIBUTARY_LOG", "info,tributary_operator=debug")
        .envs(envs.iter().copied());
    crate::stack::process::spawn("operator", &mut cmd, dir, nix::sys::signal::Signal::SIGTERM)
}

/// Starts the operator as the chart's Deployment `deployment` runs it — its container's args and
/// environment (downward-API fields resolved for a pod `<deployment>-0`), with `kubeconfig`
/// standing in for the ServiceAccount token mount — in the pod network. Only the metrics
/// address is moved to a free loopback port: every test operator shares one network namespace.
pub fn start_operator_as_deployed(
    deployment: &k8s_openapi::api::apps::v1::Deployment,
    dir: &Path,
    kubeconfig: &Path,
) -> Result<crate::stack::process::Managed> {
    use kube::ResourceExt;
    let ns = deployment.namespace().unwrap_or_default();
    let pod = format!("{}-0", deployment.name_any());
    let container = deployment
        .spec
        .template
        .spec
        .as_ref()
        .and_then(|s| s.containers.first())
        .context("the Deployment has no container")?;
    let mut cmd = Command::new("ip");
    cmd.args(["netns", "exec", "trib-operator"])
        .arg(operator_binary()?)
        .args(container.args.iter().flatten())
        .env("KUBECONFIG", kubeconfig)
        .env("TRIBUTARY_LOG", "info,tributary_operator=debug");
    for e in container.env.iter().flatten() {
        let field = e
            .value_from
            .as_ref()
            .and_then(|v| v.field_ref.as_ref())
            .map(|f| f.field_path.as_str());
        let value = match field {
            Some("metadata.name") => pod.clone(),
            Some("metadata.namespace") => ns.clone(),
            Some(other) => bail!("the operator's env {} needs {other}", e.name),
            None => e.value.clone().unwrap_or_default(),
        };
        cmd.env(&e.name, value);
    }
    cmd.env("TRIBUTARY_OPERATOR_METRICS_ADDR", "127.0.0.1:0");
    crate::stack::process::spawn("operator", &mut cmd, dir, nix::sys::signal::Signal::SIGTERM)
}

/// A new namespace `<prefix>-…` that enforces the restricted Pod Security Standard, as the
/// operator's and the workers' namespaces should.
pub async fn restricted_namespace(stack: &Devstack, prefix: &str) -> Result<String> {
    let ns = stack.namespace(prefix).await?;
    kubectl_ok(
        stack,
        &[
            "label",
            "namespace",
            &ns,
            "pod-security.kubernetes.io/enforce=restricted",
        ],
        None,
    )?;
    Ok(ns)
}

/// The CRDs installed, a namespace of its own enforcing the restricted Pod Security Standard,
/// and the operator watching it (in the pod network, with the chart's RBAC).
pub async fn operator_in_namespace(
    stack: &Devstack,
    prefix: &str,
    dir: &Path,
) -> Result<(String, crate::stack::process::Managed)> {
    install_crds(stack)?;
    let ns = restricted_namespace(stack, prefix).await?;
    let kubeconfig = chart_kubeconfig(stack, &ns, dir, true)?;
    let netns = stack
        .var("TRIBUTARY_OPERATOR_NETNS")
        .unwrap_or("trib-operator");
    let operator = start_operator_in_netns(netns, &ns, dir, &kubeconfig, &[], &[])?;
    Ok((ns, operator))
}

/// The REST API user and password the operator generated for KafkaConnect `cluster`.
pub async fn rest_credentials(
    secrets: &kube::Api<k8s_openapi::api::core::v1::Secret>,
    cluster: &str,
) -> Result<(String, String)> {
    let data = secrets
        .get(&format!("{cluster}-connect-rest"))
        .await?
        .data
        .unwrap_or_default();
    let field = |k: &str| {
        data.get(k)
            .map(|v| String::from_utf8_lossy(&v.0).to_string())
            .unwrap_or_default()
    };
    Ok((field("username"), field("password")))
}

/// Everything the pod runner captured from pod `ns/pod`'s worker, every restart included.
pub fn pod_log(stack: &Devstack, ns: &str, pod: &str) -> Result<String> {
    let dir = Path::new(stack.var("TRIBUTARY_DEVSTACK_DIR")?).join("pods");
    let prefix = format!("{ns}_{pod}_");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .with_context(|| format!("reading {}", dir.display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with(&prefix) && n.ends_with(".log"))
        })
        .collect();
    files.sort();
    let mut out = String::new();
    for f in files {
        out.push_str(
            &std::fs::read_to_string(&f).with_context(|| format!("reading {}", f.display()))?,
        );
    }
    Ok(out)
}

/// The environment of the running worker process of pod `ns/pod` (found through the
/// `POD_NAME`/`POD_NAMESPACE` the StatefulSet gives every worker), as the kubelet would set it.
pub fn pod_env(ns: &str, pod: &str) -> Result<std::collections::BTreeMap<String, String>> {
    let want = [format!("POD_NAME={pod}"), format!("POD_NAMESPACE={ns}")];
    for entry in std::fs::read_dir("/proc")?.flatten() {
        let Ok(raw) = std::fs::read(entry.path().join("environ")) else {
            continue;
        };
        let vars: Vec<String> = raw
            .split(|b| *b == 0)
            .map(|v| String::from_utf8_lossy(v).into_owned())
            .collect();
        if want.iter().all(|w| vars.contains(w)) {
            return Ok(vars
                .iter()
                .filter_map(|v| v.split_once('='))
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect());
        }
    }
    anyhow::bail!("no process of pod {ns}/{pod} runs on this machine")
}

/// Every record of single-partition `topic` as (key, JSON value; `Null` for a tombstone), in
/// order: the internal topics' logs.
pub fn topic_records(stack: &Devstack, topic: &str) -> Result<Vec<(String, serde_json::Value)>> {
    use rdkafka::Message;
    use rdkafka::consumer::{BaseConsumer, Consumer};
    let consumer: BaseConsumer = stack
        .kafka_config()?
        .set("group.id", unique_name("topic-reader"))
        .set("enable.auto.commit", "false")
        .create()?;
    let timeout = std::time::Duration::from_secs(10);
    let (_, end) = consumer.fetch_watermarks(topic, 0, timeout)?;
    let mut tpl = rdkafka::TopicPartitionList::new();
    tpl.add_partition_offset(topic, 0, rdkafka::Offset::Beginning)?;
    consumer.assign(&tpl)?;
    let mut out = Vec::new();
    let mut pos = 0;
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while pos < end {
        ensure!(
            std::time::Instant::now() < deadline,
            "reading {topic} timed out"
        );
        if let Some(m) = consumer.poll(std::time::Duration::from_millis(200)) {
            let m = m?;
            pos = m.offset() + 1;
            let key = String::from_utf8_lossy(m.key().unwrap_or_default()).into_owned();
            let value = serde_json::from_slice(m.payload().unwrap_or_default())
                .unwrap_or(serde_json::Value::Null);
            out.push((key, value));
        }
    }
    Ok(out)
}

/// A KafkaConnect named `name` of `replicas` workers on the devstack broker's pod listener,
/// with a group and internal topics of its own.
pub fn kafka_connect_manifest(stack: &Devstack, name: &str, replicas: i32) -> Result<String> {
    let bootstrap = stack
        .var("TRIBUTARY_KAFKA_POD_BOOTSTRAP")
        .context("this devstack has no pod network")?;
    let group = unique_name(name);
    Ok(format!(
        "apiVersion: tributary.dev/v1alpha1
kind: KafkaConnect
metadata: {{name: {name}}}
spec:
  replicas: {replicas}
  bootstrapServers: {bootstrap}
  groupId: {group}
  configStorageTopic: {group}-configs
  offsetStorageTopic: {group}-offsets
  statusStorageTopic: {group}-status
"
    ))
}

/// The built-in datagen source's class.
pub const DATAGEN: &str = "dev.tributary.connect.datagen.DatagenConnector";

/// `count` datagen Connectors `<prefix>-<i>` on `cluster` in `state`, one record a second each
/// to a topic of their own, as one multi-document manifest.
pub fn datagen_connectors(cluster: &str, prefix: &str, count: usize, state: &str) -> String {
    (0..count)
        .map(|i| {
            format!(
                "apiVersion: tributary.dev/v1alpha1
kind: Connector
metadata: {{name: {prefix}-{i}}}
spec:
  clusterRef: {{name: {cluster}}}
  class: {DATAGEN}
  tasksMax: 1
  state: {state}
  config: {{kafka.topic: {prefix}-{i}, records.per.second: 1}}
"
            )
        })
        .collect::<Vec<_>>()
        .join("---\n")
}

/// Waits up to `timeout` for KafkaConnect `ns/name` to report `Ready=True`.
pub async fn wait_kafka_connect_ready(
    client: &kube::Client,
    ns: &str,
    name: &str,
    timeout: std::time::Duration,
) -> Result<()> {
    let kcs: kube::Api<tributary_operator::crd::KafkaConnect> =
        kube::Api::namespaced(client.clone(), ns);
    crate::wait_until(&format!("KafkaConnect {name} Ready"), timeout, || async {
        let kc = kcs.get(name).await?;
        let ready = kc
            .status
            .and_then(|s| s.conditions)
            .unwrap_or_default()
            .iter()
            .any(|c| c.type_ == "Ready" && c.status == "True");
        Ok(ready.then_some(()))
    })
    .await
}

/// Helm adopts cluster-wide objects only when they carry its ownership marks; the CRDs and
/// policies on a shared devstack were applied by other tests (or an earlier release). Marks
/// those that exist as release `release`'s in `ns`.
pub fn adopt_for_helm(stack: &Devstack, release: &str, ns: &str) -> Result<()> {
    for object in [
        "crd/kafkaconnects.tributary.dev",
        "crd/connectors.tributary.dev",
        "validatingadmissionpolicy/kafkaconnects.tributary.dev-config",
        "validatingadmissionpolicy/connectors.tributary.dev-config",
        "validatingadmissionpolicybinding/kafkaconnects.tributary.dev-config",
        "validatingadmissionpolicybinding/connectors.tributary.dev-config",
    ] {
        for args in [
            vec![
                "annotate".to_string(),
                "--overwrite".into(),
                object.into(),
                format!("meta.helm.sh/release-name={release}"),
                format!("meta.helm.sh/release-namespace={ns}"),
            ],
            vec![
                "label".to_string(),
                "--overwrite".into(),
                object.into(),
                "app.kubernetes.io/managed-by=Helm".into(),
            ],
        ] {
            let args: Vec<&str> = args.iter().map(String::as_str).collect();
            let out = stack.kubectl(&args, None)?;
            if String::from_utf8_lossy(&out.stderr).contains("NotFound") {
                // Not there yet (a fresh devstack): Helm creates it.
                continue;
            }
            ensure!(
                out.status.success(),
                "{args:?}: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
    }
    Ok(())
}

/// Runs `helm <args>` against the devstack's apiserver in namespace `ns`; its output (helm
/// prints a release's NOTES.txt), or an error with it.
pub fn helm_in(stack: &Devstack, ns: &str, args: &[&str]) -> Result<String> {
    let out = Command::new(stack.var("TRIBUTARY_HELM")?)
        .args(args)
        .args(["-n", ns, "--kubeconfig", stack.var("TRIBUTARY_KUBECONFIG")?])
        .output()?;
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    ensure!(out.status.success(), "helm {args:?}: {said}");
    Ok(said)
}

/// Deletes namespace `ns` once no operator watches it: its Connectors' finalizers are released
/// first (nobody is left to release them), then the namespace goes, its workers with it.
pub fn delete_unwatched_namespace(stack: &Devstack, ns: &str) -> Result<()> {
    let list = kubectl_ok(
        stack,
        &["get", "connectors.tributary.dev", "-n", ns, "-o", "name"],
        None,
    )?;
    for c in list.lines().filter(|l| !l.is_empty()) {
        kubectl_ok(
            stack,
            &[
                "patch",
                c,
                "-n",
                ns,
                "--type=merge",
                "-p",
                r#"{"metadata":{"finalizers":null}}"#,
            ],
            None,
        )?;
    }
    kubectl_ok(stack, &["delete", "namespace", ns, "--wait=false"], None)?;
    Ok(())
}
