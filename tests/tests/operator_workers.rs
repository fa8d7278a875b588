//! The operator and real workers: on the devstack (apiserver, controller-manager, Kafka, and
//! the pod runner that runs each Pod as a `tributary-worker` in its own network namespace), a
//! KafkaConnect becomes workers that form one Connect group, the status reports them Ready with
//! their plugins, scaling adds workers, and deleting the resource removes them.
//!
//! The operator runs in the pod network (namespace `trib-operator`, where pod DNS names resolve)
//! with a token of the chart's ServiceAccount.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use anyhow::{Context, Result, ensure};
use k8s_openapi::api::core::v1::{Pod, Secret};
use kube::Api;
use kube::api::ListParams;
use nix::sys::signal::Signal;
use serde_json::{Value, json};
use tributary_operator::crd::KafkaConnect;
use tributary_tests::stack::process::{Managed, spawn, tail};
use tributary_tests::{Devstack, unique_name, wait_until};

/// Three workers join and read the config topic well within this (generous: 2 busy cores).
const START: Duration = Duration::from_secs(240);

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_default()
}

fn kubectl(stack: &Devstack, args: &[&str], stdin: Option<&str>) -> Result<String> {
    let out = stack.kubectl(args, stdin)?;
    ensure!(
        out.status.success(),
        "kubectl {args:?}: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    Ok(String::from_utf8_lossy(&out.stdout).to_string())
}

/// The chart's RBAC in `ns` and a kubeconfig with its ServiceAccount's token, pointing at the
/// apiserver's pod-network address.
fn operator_kubeconfig(stack: &Devstack, ns: &str, dir: &Path) -> Result<PathBuf> {
    let release = unique_name("t");
    let out = Command::new(stack.var("TRIBUTARY_HELM")?)
        .args(["template", &release])
        .arg(repo().join("charts/tributary"))
        .args([
            "--kube-version",
            &tributary_tests::installed::Versions::pinned().k8s,
        ])
        .args(["--namespace", ns])
        .args(["--show-only", "templates/serviceaccount.yaml"])
        .args(["--show-only", "templates/rbac.yaml"])
        .output()?;
    ensure!(
        out.status.success(),
        "helm template: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    kubectl(
        stack,
        &["apply", "-n", ns, "-f", "-"],
        Some(&String::from_utf8(out.stdout)?),
    )?;
    let token = kubectl(
        stack,
        &[
            "create",
            "token",
            &format!("{release}-tributary-operator"),
            "-n",
            ns,
            "--duration=2h",
        ],
        None,
    )?;
    let admin: Value = serde_json::from_str(&kubectl(
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
    let server = cluster["server"].as_str().unwrap_or_default().to_string();
    let port = server.rsplit(':').next().unwrap_or_default().to_string();
    cluster["server"] = json!(format!(
        "https://{}:{port}",
        tributary_tests::stack::pod_net::HOST_IP
    ));
    let config = json!({
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": "devstack", "cluster": cluster}],
        "users": [{"name": "operator", "user": {"token": token.trim()}}],
        "contexts": [{"name": "operator", "context": {"cluster": "devstack", "user": "operator", "namespace": ns}}],
        "current-context": "operator",
    });
    let path = dir.join("operator.kubeconfig");
    std::fs::write(&path, config.to_string())?;
    Ok(path)
}

fn start_operator(ns: &str, dir: &Path, kubeconfig: &Path) -> Result<Managed> {
    let exe = std::env::current_exe()?;
    let bin = exe
        .parent()
        .and_then(Path::parent)
        .map(|d| d.join("tributary-operator"))
        .filter(|p| p.exists())
        .context("tributary-operator is not built; run `cargo build --workspace`")?;
    let mut cmd = Command::new("ip");
    cmd.args(["netns", "exec", "trib-operator"])
        .arg(bin)
        .args(["run", "--namespace", ns, "--lease-namespace", ns])
        .args(["--metrics-addr", "127.0.0.1:0"])
        .env("KUBECONFIG", kubeconfig)
        .env("POD_NAME", "operator")
        .env("TRIBUTARY_LOG", "info,tributary_operator=debug");
    spawn("operator", &mut cmd, dir, Signal::SIGTERM)
}

fn ready(kc: &KafkaConnect) -> bool {
    kc.status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .is_some_and(|c| c.iter().any(|c| c.type_ == "Ready" && c.status == "True"))
}

#[tokio::test]
async fn a_kafka_connect_runs_workers_that_form_one_group_and_scale() -> Result<()> {
    let stack = Devstack::shared()?;
    let dir = tempfile::tempdir()?;
    let bootstrap = stack
        .var("TRIBUTARY_KAFKA_POD_BOOTSTRAP")
        .context("this devstack has no pod network")?
        .to_string();
    kubectl(
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
    let ns = stack.namespace("workers").await?;
    let kubeconfig = operator_kubeconfig(stack, &ns, dir.path())?;
    let mut operator = start_operator(&ns, dir.path(), &kubeconfig)?;
    let group = unique_name("kc");
    kubectl(
        stack,
        &["apply", "-n", &ns, "-f", "-"],
        Some(&format!(
            "apiVersion: tributary.dev/v1alpha1
kind: KafkaConnect
metadata: {{name: pipe}}
spec:
  replicas: 3
  bootstrapServers: {bootstrap}
  groupId: {group}
  configStorageTopic: {group}-configs
  offsetStorageTopic: {group}-offsets
  statusStorageTopic: {group}-status
  config:
    key.converter: org.apache.kafka.connect.storage.StringConverter
    value.converter: org.apache.kafka.connect.storage.StringConverter
"
        )),
    )?;
    let client = stack.kube_client().await?;
    let kcs: Api<KafkaConnect> = Api::namespaced(client.clone(), &ns);
    let pods: Api<Pod> = Api::namespaced(client.clone(), &ns);
    let diagnose = |op: &Managed| format!("operator log:\n{}", tail(&op.log, 30));

    // Ready, with the plugins the workers serve.
    let kc = wait_until("Ready with 3 workers", START, || async {
        let kc = kcs.get("pipe").await?;
        Ok(ready(&kc).then_some(kc))
    })
    .await
    .with_context(|| diagnose(&operator))?;
    let status = kc.status.clone().unwrap_or_default();
    ensure!(status.ready_replicas == Some(3), "{status:?}");
    let plugins: Vec<String> = status
        .connector_plugins
        .iter()
        .flatten()
        .map(|p| p.class.clone())
        .collect();
    ensure!(
        plugins
            .iter()
            .any(|p| p.ends_with("FileStreamSourceConnector")),
        "{plugins:?}"
    );

    // One group: a connector created through one worker is known to every other.
    let secrets: Api<Secret> = Api::namespaced(client.clone(), &ns);
    let rest = secrets
        .get("pipe-connect-rest")
        .await?
        .data
        .unwrap_or_default();
    let field = |k: &str| {
        rest.get(k)
            .map(|v| String::from_utf8_lossy(&v.0).to_string())
            .unwrap_or_default()
    };
    let (user, password) = (field("username"), field("password"));
    let ips: Vec<String> = pods
        .list(&ListParams::default().labels("tributary.dev/cluster=pipe"))
        .await?
        .items
        .iter()
        .filter_map(|p| p.status.as_ref().and_then(|s| s.pod_ip.clone()))
        .collect();
    ensure!(ips.len() == 3, "{ips:?}");
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(30))
        .build()?;
    let r = http
        .get(format!("http://{}:8083/connectors", ips[0]))
        .send()
        .await?;
    ensure!(
        r.status().as_u16() == 401,
        "the REST API needs the generated credentials"
    );
    let r = http
        .put(format!("http://{}:8083/connectors/gen/config", ips[0]))
        .basic_auth(&user, Some(&password))
        .json(&json!({
            "connector.class": "org.apache.kafka.connect.file.FileStreamSourceConnector",
            "file": "/dev/null",
            "topic": format!("{group}-out"),
        }))
        .send()
        .await?;
    ensure!(r.status().is_success(), "create: {}", r.status());
    for ip in &ips {
        wait_until(&format!("the connector known to {ip}"), START, || async {
            let r = http
                .get(format!("http://{ip}:8083/connectors/gen/status"))
                .basic_auth(&user, Some(&password))
                .send()
                .await?;
            let v: Value = r.json().await.unwrap_or(Value::Null);
            Ok((v["connector"]["state"] == "RUNNING").then_some(()))
        })
        .await?;
    }

    // Scale through the scale subresource: 5 ready workers.
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
    wait_until("5 ready workers", START, || async {
        let kc = kcs.get("pipe").await?;
        let n = kc.status.as_ref().and_then(|s| s.ready_replicas);
        Ok((n == Some(5) && ready(&kc)).then_some(()))
    })
    .await
    .with_context(|| diagnose(&operator))?;

    // Deleting the KafkaConnect removes the workers.
    kubectl(
        stack,
        &["delete", "-n", &ns, "kafkaconnect.tributary.dev/pipe"],
        None,
    )?;
    wait_until("every worker gone", START, || async {
        let left = pods
            .list(&ListParams::default().labels("tributary.dev/cluster=pipe"))
            .await?
            .items
            .len();
        Ok((left == 0).then_some(()))
    })
    .await?;
    ensure!(operator.poll_exit().is_none(), "{}", diagnose(&operator));
    operator.request_stop();
    Ok(())
}
