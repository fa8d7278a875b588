//! The operator and real workers: on the devstack (apiserver, controller-manager, Kafka, and
//! the pod runner that runs each Pod as a `tributary-worker` in its own network namespace), a
//! KafkaConnect becomes workers that form one Connect group, the status reports them Ready with
//! their plugins, scaling adds workers, and deleting the resource removes them.
//!
//! The operator runs in the pod network (namespace `trib-operator`, where pod DNS names resolve)
//! with a token of the chart's ServiceAccount.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context, Result, ensure};
use k8s_openapi::api::core::v1::{Pod, Secret};
use kube::api::ListParams;
use kube::{Api, ResourceExt};
use serde_json::{Value, json};
use tributary_operator::crd::KafkaConnect;
use tributary_tests::operator::{kubectl_ok, operator_in_namespace, rest_credentials};
use tributary_tests::stack::process::{Managed, tail};
use tributary_tests::{Devstack, unique_name, wait_until};

/// Three workers join and read the config topic well within this (generous: 2 busy cores).
const START: Duration = Duration::from_secs(240);

fn kubectl(stack: &Devstack, args: &[&str], stdin: Option<&str>) -> Result<String> {
    kubectl_ok(stack, args, stdin)
}

/// `kubectl scale` through the KafkaConnect's scale subresource.
fn scale(stack: &Devstack, ns: &str, cluster: &str, replicas: i32) -> Result<String> {
    let target = format!("kafkaconnect.tributary.dev/{cluster}");
    let replicas = format!("--replicas={replicas}");
    kubectl(stack, &["scale", "-n", ns, &target, &replicas], None)
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
    let (ns, mut operator) = operator_in_namespace(stack, "workers", dir.path()).await?;
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
  rack: {{topologyKey: topology.kubernetes.io/zone}}
  logging:
    loggers:
      tributary_worker::task: DEBUG
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

    // Rack awareness: Kubernetes copied the node's zone to each pod, and the downward API
    // handed it to the worker (whose config reads `client.rack` from that variable).
    let worker_pods = pods
        .list(&ListParams::default().labels("tributary.dev/cluster=pipe"))
        .await?
        .items;
    for p in &worker_pods {
        let name = p.name_any();
        ensure!(
            p.labels()
                .get("topology.kubernetes.io/zone")
                .map(String::as_str)
                == Some("devstack-a"),
            "{name}: the node's zone label did not reach the pod: {:?}",
            p.labels()
        );
        let env = tributary_tests::operator::pod_env(&ns, &name)?;
        ensure!(
            env.get("TRIBUTARY_RACK").map(String::as_str) == Some("devstack-a"),
            "{name}: TRIBUTARY_RACK={:?}",
            env.get("TRIBUTARY_RACK")
        );
    }

    // One group: a connector created through one worker is known to every other.
    let secrets: Api<Secret> = Api::namespaced(client.clone(), &ns);
    let (user, password) = rest_credentials(&secrets, "pipe").await?;
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

    // Only the pod itself may ask its worker to leave: not whoever reaches the metrics port.
    let r = http
        .post(format!("http://{}:8084/leave", ips[0]))
        .send()
        .await?;
    ensure!(
        r.status().as_u16() == 403,
        "POST /leave from outside the pod: {}",
        r.status()
    );

    // spec.logging reaches every worker, live.
    for ip in &ips {
        wait_until(&format!("the DEBUG logger on {ip}"), START, || async {
            let r = http
                .get(format!("http://{ip}:8083/admin/loggers"))
                .basic_auth(&user, Some(&password))
                .send()
                .await?;
            let v: Value = r.json().await.unwrap_or(Value::Null);
            Ok((v["tributary_worker::task"]["level"] == "DEBUG").then_some(()))
        })
        .await
        .with_context(|| diagnose(&operator))?;
    }

    // Scale through the scale subresource: 5 ready workers.
    scale(stack, &ns, "pipe", 5)?;
    wait_until("5 ready workers", START, || async {
        let kc = kcs.get("pipe").await?;
        let n = kc.status.as_ref().and_then(|s| s.ready_replicas);
        Ok((n == Some(5) && ready(&kc)).then_some(()))
    })
    .await
    .with_context(|| diagnose(&operator))?;

    // replicas: 0 stops every worker and is a settled, Ready state.
    scale(stack, &ns, "pipe", 0)?;
    wait_until("no workers, Ready", START, || async {
        let kc = kcs.get("pipe").await?;
        let left = pods
            .list(&ListParams::default().labels("tributary.dev/cluster=pipe"))
            .await?
            .items
            .len();
        let replicas = kc.status.as_ref().and_then(|s| s.replicas);
        Ok((left == 0 && replicas == Some(0) && ready(&kc)).then_some(()))
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
    // Each worker left through its preStop hook: work stopped and the group left before the
    // SIGTERM, which then found nothing to stop.
    for name in (0..5).map(|i| format!("pipe-connect-{i}")) {
        let log = tributary_tests::operator::pod_log(stack, &ns, &name)?;
        let left = log.find("left the group; waiting for SIGTERM");
        let stopped = log.rfind("worker stopped");
        ensure!(
            log.contains("preStop: stopping the work and leaving the group")
                && left.is_some()
                && stopped > left,
            "{name} did not leave through its preStop hook; its log ends:\n{}",
            tail_str(&log, 15)
        );
    }
    ensure!(operator.poll_exit().is_none(), "{}", diagnose(&operator));
    operator.request_stop();
    Ok(())
}

fn tail_str(s: &str, n: usize) -> String {
    let lines: Vec<&str> = s.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}

/// One observation of the workers during a roll.
#[derive(Debug, Clone)]
struct Sample {
    /// Pod name → (uid, ready, revision).
    pods: std::collections::BTreeMap<String, (String, bool, String)>,
    /// Every pod ready and every connector and task running on a ready worker.
    settled: bool,
    /// Why not, for failure messages.
    note: String,
}

async fn sample(
    pods: &Api<Pod>,
    http: &reqwest::Client,
    ns: &str,
    auth: &(String, String),
) -> Result<Sample> {
    let list = pods
        .list(&ListParams::default().labels("tributary.dev/cluster=pipe"))
        .await?
        .items;
    let mut out = std::collections::BTreeMap::new();
    let mut workers = std::collections::BTreeSet::new();
    let mut ip = None;
    for p in &list {
        let name = p.metadata.name.clone().unwrap_or_default();
        let ready = p
            .status
            .as_ref()
            .and_then(|s| s.conditions.as_ref())
            .is_some_and(|c| c.iter().any(|c| c.type_ == "Ready" && c.status == "True"))
            && p.metadata.deletion_timestamp.is_none();
        let revision = p
            .metadata
            .labels
            .as_ref()
            .and_then(|l| l.get("controller-revision-hash").cloned())
            .unwrap_or_default();
        if ready {
            workers.insert(format!("{name}.pipe-connect.{ns}.svc:8083"));
            ip = ip.or_else(|| p.status.as_ref().and_then(|s| s.pod_ip.clone()));
        }
        out.insert(
            name,
            (p.metadata.uid.clone().unwrap_or_default(), ready, revision),
        );
    }
    let mut settled = false;
    let mut note = format!(
        "ready: {:?}",
        out.iter()
            .map(|(n, (_, r, _))| (n.clone(), *r))
            .collect::<Vec<_>>()
    );
    if let Some(ip) = ip
        && out.len() == 3
        && out.values().all(|(_, r, _)| *r)
    {
        match http
            .get(format!("http://{ip}:8083/connectors?expand=status"))
            .basic_auth(&auth.0, Some(&auth.1))
            .timeout(Duration::from_secs(3))
            .send()
            .await
        {
            Ok(r) => {
                let v = r.json::<Value>().await.unwrap_or(Value::Null);
                let judged = tributary_operator::roller::judge(&v, &workers);
                settled = v.as_object().is_some_and(|m| m.len() == 2)
                    && judged == tributary_operator::roller::Group::Settled;
                note = format!("{judged:?}");
            }
            Err(e) => note = format!("GET via {ip}: {e}"),
        }
    }
    Ok(Sample {
        pods: out,
        settled,
        note,
    })
}

/// Watches a roll to its end: every pod replaced, and between two replacements a moment when
/// the group had settled (all three workers ready, every connector and task running on them).
async fn watch_roll(
    pods: &Api<Pod>,
    kcs: &Api<KafkaConnect>,
    http: &reqwest::Client,
    ns: &str,
    auth: &(String, String),
    before: &Sample,
) -> Result<Vec<Sample>> {
    let deadline = std::time::Instant::now() + Duration::from_secs(600);
    let mut samples = vec![before.clone()];
    loop {
        tokio::time::sleep(Duration::from_millis(500)).await;
        let s = sample(pods, http, ns, auth).await?;
        samples.push(s.clone());
        let replaced = before
            .pods
            .iter()
            .all(|(n, (uid, _, _))| s.pods.get(n).is_some_and(|(u, r, _)| u != uid && *r));
        let kc = kcs.get("pipe").await?;
        if replaced && ready(&kc) && s.settled {
            break;
        }
        ensure!(
            std::time::Instant::now() < deadline,
            "the roll did not finish: {s:?}; status {:?}",
            kc.status
        );
    }
    // Deletions, in order, as the index of the first sample that saw each.
    let mut deletions = Vec::new();
    for (i, w) in samples.windows(2).enumerate() {
        for (name, (uid, _, _)) in &w[0].pods {
            if w[1].pods.get(name).is_none_or(|(u, _, _)| u != uid) {
                deletions.push((i + 1, name.clone()));
            }
        }
    }
    let names: std::collections::BTreeSet<&String> = deletions.iter().map(|(_, n)| n).collect();
    ensure!(
        deletions.len() == 3 && names.len() == 3,
        "each worker replaced once: {deletions:?}"
    );
    for s in &samples {
        let unready = s.pods.values().filter(|(_, r, _)| !*r).count() + (3 - s.pods.len().min(3));
        ensure!(unready <= 1, "two workers down at once: {}", s.note);
    }
    Ok(samples)
}

fn status_log(stack: &Devstack, topic: &str) -> Result<Vec<(String, Value)>> {
    tributary_tests::operator::topic_records(stack, topic)
}

/// From the status log: a worker stopping writes UNASSIGNED for its connectors and tasks; if
/// the roller had stopped the next worker before the previous one's work ran again, the log
/// shows work of two different workers unassigned at once.
fn never_two_workers_unassigned(log: &[(String, Value)], from: usize) -> Result<usize> {
    let mut latest: std::collections::BTreeMap<&str, (&str, &str)> =
        std::collections::BTreeMap::new();
    let mut stops = 0;
    for (i, (key, value)) in log.iter().enumerate() {
        if !(key.starts_with("status-task-") || key.starts_with("status-connector-")) {
            continue;
        }
        let state = value["state"].as_str().unwrap_or("");
        let worker = value["worker_id"].as_str().unwrap_or("");
        // Before the roll, rebalances move work between workers (a revoked task is
        // UNASSIGNED for a moment); during it, only stopping workers unassign.
        if state == "UNASSIGNED" && i >= from {
            stops += 1;
            if let Some((other, (_, w))) = latest
                .iter()
                .find(|(k, (st, w))| **k != key.as_str() && *st == "UNASSIGNED" && *w != worker)
            {
                let context: Vec<String> = log[i.saturating_sub(25)..=i]
                    .iter()
                    .filter(|(k, _)| k.starts_with("status-"))
                    .map(|(k, v)| {
                        format!(
                            "{k}={} {} g{}",
                            v["state"].as_str().unwrap_or("-"),
                            v["worker_id"]
                                .as_str()
                                .unwrap_or("-")
                                .split('.')
                                .next()
                                .unwrap_or(""),
                            v["generation"]
                        )
                    })
                    .collect();
                anyhow::bail!(
                    "{key} of {worker} was unassigned while {other} of {w} still was: the next worker stopped before the previous one's work ran again; log before: {context:#?}"
                );
            }
        }
        latest.insert(key.as_str(), (state, worker));
    }
    Ok(stops)
}

#[tokio::test]
async fn config_changes_and_secret_rotations_roll_one_worker_at_a_time_losing_nothing() -> Result<()>
{
    const LINES: usize = 30_000;
    let stack = Devstack::shared()?;
    let dir = tempfile::tempdir()?;
    let bootstrap = stack
        .var("TRIBUTARY_KAFKA_POD_SASL_BOOTSTRAP")
        .context("this devstack has no pod network")?
        .to_string();
    let (ns, mut operator) = operator_in_namespace(stack, "roll", dir.path()).await?;
    let ca = std::fs::read_to_string(stack.var("TRIBUTARY_KAFKA_CA_CERT")?)?;
    let user = stack.var("TRIBUTARY_KAFKA_SASL_USERNAME")?.to_string();
    let kafka_password = stack.var("TRIBUTARY_KAFKA_SASL_PASSWORD")?.to_string();
    let secret = |name: &str, data: Value| {
        json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": name}, "stringData": data})
            .to_string()
    };
    kubectl(
        stack,
        &["apply", "-n", &ns, "-f", "-"],
        Some(&secret("kafka-ca", json!({"ca.crt": ca}))),
    )?;
    kubectl(
        stack,
        &["apply", "-n", &ns, "-f", "-"],
        Some(&secret("kafka-user", json!({"password": kafka_password}))),
    )?;
    let group = unique_name("roll");
    let cluster = |flush: u32| {
        format!(
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
  tls:
    trustedCertificates: [{{secretName: kafka-ca, certificate: ca.crt}}]
  authentication:
    type: scram-sha-512
    username: {user}
    passwordSecret: {{secretName: kafka-user, password: password}}
  config:
    key.converter: org.apache.kafka.connect.storage.StringConverter
    value.converter: org.apache.kafka.connect.storage.StringConverter
    offset.flush.interval.ms: {flush}
    status.storage.partitions: 1
"
        )
    };
    kubectl(
        stack,
        &["apply", "-n", &ns, "-f", "-"],
        Some(&cluster(1000)),
    )?;
    let client = stack.kube_client().await?;
    let kcs: Api<KafkaConnect> = Api::namespaced(client.clone(), &ns);
    let pods: Api<Pod> = Api::namespaced(client.clone(), &ns);
    let diagnose = |op: &Managed| format!("operator log:\n{}", tail(&op.log, 30));
    wait_until("Ready over SASL_SSL", START, || async {
        let kc = kcs.get("pipe").await?;
        Ok(ready(&kc).then_some(()))
    })
    .await
    .with_context(|| diagnose(&operator))?;

    // A file pipeline through the cluster, in a folder every pod sees.
    let data = PathBuf::from("/var/tmp").join(unique_name("roll"));
    std::fs::create_dir_all(&data)?;
    let (input, output) = (data.join("in.txt"), data.join("out.txt"));
    std::fs::write(&input, "")?;
    let secrets: Api<Secret> = Api::namespaced(client.clone(), &ns);
    let auth = rest_credentials(&secrets, "pipe").await?;
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(30))
        .build()?;
    let ip = pods
        .get("pipe-connect-0")
        .await?
        .status
        .and_then(|s| s.pod_ip)
        .context("no pod IP")?;
    let topic = format!("{group}-lines");
    for (name, config) in [
        (
            "src",
            json!({"connector.class": "FileStreamSource", "file": input, "topic": topic, "tasks.max": "1"}),
        ),
        (
            "snk",
            json!({"connector.class": "FileStreamSink", "file": output, "topics": topic, "tasks.max": "1"}),
        ),
    ] {
        let r = http
            .put(format!("http://{ip}:8083/connectors/{name}/config"))
            .basic_auth(&auth.0, Some(&auth.1))
            .json(&config)
            .send()
            .await?;
        ensure!(r.status().is_success(), "creating {name}: {}", r.status());
    }
    let settled = wait_until("the pipeline running", START, || async {
        let s = sample(&pods, &http, &ns, &auth).await?;
        Ok(s.settled.then_some(s))
    })
    .await?;

    // Lines keep coming while the workers roll, twice.
    let writer_input = input.clone();
    let writer = std::thread::spawn(move || -> Result<()> {
        use std::io::Write;
        for chunk in 0..60 {
            let mut f = std::fs::OpenOptions::new()
                .append(true)
                .open(&writer_input)?;
            for i in chunk * LINES / 60..(chunk + 1) * LINES / 60 {
                writeln!(f, "seq {i}")?;
            }
            std::thread::sleep(Duration::from_millis(1000));
        }
        Ok(())
    });

    // Where the roll starts in the status log: once the new connectors' rebalances are over
    // (no status record for 5 s, everything running).
    let status_topic = format!("{group}-status");
    let roll_start = wait_until("the group quiet", START, || async {
        let before = status_log(stack, &status_topic)?.len();
        tokio::time::sleep(Duration::from_secs(5)).await;
        let after = status_log(stack, &status_topic)?.len();
        let s = sample(&pods, &http, &ns, &auth).await?;
        Ok((before == after && s.settled).then_some(after))
    })
    .await?;
    // A worker setting changes: one worker at a time, each after the group settled.
    kubectl(
        stack,
        &["apply", "-n", &ns, "-f", "-"],
        Some(&cluster(2000)),
    )?;
    let samples = watch_roll(&pods, &kcs, &http, &ns, &auth, &settled)
        .await
        .with_context(|| diagnose(&operator))?;
    let after_config = samples.last().cloned().context("no samples")?;

    // A referenced Secret changes (rotation): the same again.
    let patch = json!({"stringData": {"rotated": "1"}});
    secrets
        .patch(
            "kafka-user",
            &kube::api::PatchParams::default(),
            &kube::api::Patch::Merge(&patch),
        )
        .await?;
    watch_roll(&pods, &kcs, &http, &ns, &auth, &after_config)
        .await
        .with_context(|| diagnose(&operator))?;

    writer
        .join()
        .map_err(|_| anyhow::anyhow!("the writer thread panicked"))??;
    // Nothing lost: every line reaches the sink's file (at least once).
    wait_until(
        "every line in the sink's file",
        Duration::from_secs(300),
        || async {
            let text = std::fs::read_to_string(&output).unwrap_or_default();
            let got: std::collections::BTreeSet<&str> = text.lines().collect();
            Ok((0..LINES)
                .all(|i| got.contains(format!("seq {i}").as_str()))
                .then_some(()))
        },
    )
    .await?;
    // The roller waited for the group: the status log never shows two workers' work unassigned.
    let stops =
        never_two_workers_unassigned(&status_log(stack, &format!("{group}-status"))?, roll_start)?;
    ensure!(
        stops >= 6,
        "only {stops} UNASSIGNED records: were the workers replaced?"
    );
    ensure!(operator.poll_exit().is_none(), "{}", diagnose(&operator));
    operator.request_stop();
    let _ = std::fs::remove_dir_all(&data);
    Ok(())
}

#[tokio::test]
async fn rest_tls_serves_https_that_the_operator_and_the_workers_trust() -> Result<()> {
    let stack = Devstack::shared()?;
    let dir = tempfile::tempdir()?;
    let bootstrap = stack
        .var("TRIBUTARY_KAFKA_POD_BOOTSTRAP")
        .context("this devstack has no pod network")?
        .to_string();
    let (ns, mut operator) = operator_in_namespace(stack, "https", dir.path()).await?;
    let diagnose = |op: &Managed| format!("operator log:\n{}", tail(&op.log, 30));

    // A CA of its own and a certificate for the pod names and the API Service.
    let pki = tributary_tests::stack::pki::Pki::create(&dir.path().join("pki"), dir.path())?;
    let cert = pki.server_cert_for(
        "web",
        &format!("DNS:*.web-connect.{ns}.svc,DNS:web-connect-api.{ns}.svc"),
        dir.path(),
    )?;
    let ca = std::fs::read_to_string(&pki.ca_cert)?;
    let secret = json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "web-rest-cert"},
        "stringData": {"tls.crt": std::fs::read_to_string(&cert.cert)?, "tls.key": std::fs::read_to_string(&cert.key)?, "ca.crt": ca}});
    kubectl(
        stack,
        &["apply", "-n", &ns, "-f", "-"],
        Some(&secret.to_string()),
    )?;
    let group = unique_name("https");
    kubectl(
        stack,
        &["apply", "-n", &ns, "-f", "-"],
        Some(&format!(
            "apiVersion: tributary.dev/v1alpha1
kind: KafkaConnect
metadata: {{name: web}}
spec:
  replicas: 2
  bootstrapServers: {bootstrap}
  groupId: {group}
  configStorageTopic: {group}-configs
  offsetStorageTopic: {group}-offsets
  statusStorageTopic: {group}-status
  rest:
    tls:
      certificateAndKey: {{secretName: web-rest-cert, certificate: tls.crt, key: tls.key}}
      trustedCertificates: [{{secretName: web-rest-cert, certificate: ca.crt}}]
"
        )),
    )?;
    let client = stack.kube_client().await?;
    let kcs: Api<KafkaConnect> = Api::namespaced(client.clone(), &ns);
    let pods: Api<Pod> = Api::namespaced(client.clone(), &ns);
    let secrets: Api<Secret> = Api::namespaced(client.clone(), &ns);

    // Ready with the plugin list: the operator spoke HTTPS to the workers, trusting the CA.
    let kc = wait_until("Ready with 2 workers over HTTPS", START, || async {
        let kc = kcs.get("web").await?;
        let plugins = kc
            .status
            .as_ref()
            .and_then(|s| s.connector_plugins.as_ref())
            .is_some_and(|p| !p.is_empty());
        Ok((ready(&kc) && plugins).then_some(kc))
    })
    .await
    .with_context(|| diagnose(&operator))?;
    let url = kc.status.and_then(|s| s.url).unwrap_or_default();
    ensure!(
        url == format!("https://web-connect-api.{ns}.svc:8083"),
        "{url}"
    );

    // A client that trusts the CA and reaches the pods by their names.
    let (user, password) = rest_credentials(&secrets, "web").await?;
    let mut hosts = Vec::new();
    let mut builder = reqwest::Client::builder()
        .timeout(Duration::from_secs(30))
        .add_root_certificate(reqwest::Certificate::from_pem(ca.as_bytes())?);
    for p in pods
        .list(&ListParams::default().labels("tributary.dev/cluster=web"))
        .await?
        .items
    {
        let ip: std::net::IpAddr = p
            .status
            .and_then(|s| s.pod_ip)
            .context("a worker without an IP")?
            .parse()?;
        let host = format!(
            "{}.web-connect.{ns}.svc",
            p.metadata.name.unwrap_or_default()
        );
        builder = builder.resolve(&host, std::net::SocketAddr::new(ip, 8083));
        hosts.push((host, ip));
    }
    ensure!(hosts.len() == 2, "{hosts:?}");
    let https = builder.build()?;

    // Plain HTTP gets no answer from the REST port.
    let plain = reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()?
        .get(format!("http://{}:8083/", hosts[0].1))
        .send()
        .await;
    ensure!(
        !plain.as_ref().is_ok_and(|r| r.status().is_success()),
        "plain HTTP answered: {plain:?}"
    );

    // A connector written through each worker: one of them is not the leader and forwards the
    // write over HTTPS, presenting nothing but trusting the CA.
    for (i, (host, _)) in hosts.iter().enumerate() {
        let r = https
            .put(format!("https://{host}:8083/connectors/gen-{i}/config"))
            .basic_auth(&user, Some(&password))
            .json(&json!({
                "connector.class": "org.apache.kafka.connect.file.FileStreamSourceConnector",
                "file": "/dev/null",
                "topic": format!("{group}-out"),
            }))
            .send()
            .await?;
        let status = r.status();
        ensure!(
            status.is_success(),
            "create through {host}: {status}: {}",
            r.text().await.unwrap_or_default()
        );
    }
    for (host, _) in &hosts {
        wait_until(
            &format!("both connectors known to {host}"),
            START,
            || async {
                let r = https
                    .get(format!("https://{host}:8083/connectors"))
                    .basic_auth(&user, Some(&password))
                    .send()
                    .await?;
                let v: Value = r.json().await.unwrap_or(Value::Null);
                let n = v.as_array().map_or(0, Vec::len);
                Ok((n == 2).then_some(()))
            },
        )
        .await?;
    }
    ensure!(operator.poll_exit().is_none(), "{}", diagnose(&operator));
    operator.request_stop();
    Ok(())
}

#[tokio::test]
async fn clusters_whose_rest_api_hangs_do_not_hold_up_another_cluster() -> Result<()> {
    let stack = Devstack::shared()?;
    let dir = tempfile::tempdir()?;
    let bootstrap = stack
        .var("TRIBUTARY_KAFKA_POD_BOOTSTRAP")
        .context("this devstack has no pod network")?
        .to_string();
    let (ns, mut operator) = operator_in_namespace(stack, "hang", dir.path()).await?;
    let diagnose = |op: &Managed| format!("operator log:\n{}", tail(&op.log, 30));
    let cluster = |name: &str, replicas: i32, image: &str| {
        let group = unique_name(name);
        format!(
            "apiVersion: tributary.dev/v1alpha1
kind: KafkaConnect
metadata: {{name: {name}}}
spec:
  replicas: {replicas}
  {image}
  bootstrapServers: {bootstrap}
  groupId: {group}
  configStorageTopic: {group}-configs
  offsetStorageTopic: {group}-offsets
  statusStorageTopic: {group}-status
"
        )
    };
    // Three clusters whose workers are ready but whose REST port accepts and never answers:
    // every call the operator makes to them runs into its timeout, on each pod in turn.
    const STUCK: [&str; 3] = ["stuck-a", "stuck-b", "stuck-c"];
    for name in STUCK {
        kubectl(
            stack,
            &["apply", "-n", &ns, "-f", "-"],
            Some(&cluster(
                name,
                2,
                "image: tributary.dev/test/rest-black-hole:latest",
            )),
        )?;
    }
    let client = stack.kube_client().await?;
    let kcs: Api<KafkaConnect> = Api::namespaced(client.clone(), &ns);
    let stss: Api<k8s_openapi::api::apps::v1::StatefulSet> = Api::namespaced(client.clone(), &ns);
    for name in STUCK {
        wait_until(
            &format!("{name}: workers ready, REST unreachable"),
            START,
            || async {
                let kc = kcs.get(name).await?;
                let s = kc.status.unwrap_or_default();
                let unreachable = s.conditions.iter().flatten().any(|c| {
                    c.type_ == "Ready" && c.status == "False" && c.reason == "WorkersUnreachable"
                });
                Ok((s.ready_replicas == Some(2) && unreachable).then_some(()))
            },
        )
        .await
        .with_context(|| diagnose(&operator))?;
    }

    // Meanwhile another cluster is built at once and becomes Ready in the usual time.
    let started = std::time::Instant::now();
    kubectl(
        stack,
        &["apply", "-n", &ns, "-f", "-"],
        Some(&cluster("quick", 2, "")),
    )?;
    wait_until("quick built", START, || async {
        Ok(stss.get_opt("quick-connect").await?)
    })
    .await?;
    let built = started.elapsed();
    wait_until("quick Ready", START, || async {
        Ok(ready(&kcs.get("quick").await?).then_some(()))
    })
    .await
    .with_context(|| diagnose(&operator))?;
    let became_ready = started.elapsed();
    // A change is picked up at once too.
    let started = std::time::Instant::now();
    scale(stack, &ns, "quick", 3)?;
    wait_until("quick scaled", START, || async {
        let sts = stss.get("quick-connect").await?;
        Ok((sts.spec.replicas == Some(3)).then_some(()))
    })
    .await?;
    let scaled = started.elapsed();
    eprintln!(
        "beside 3 hanging clusters: built after {built:?}, Ready after {became_ready:?}, scale applied after {scaled:?}"
    );
    // One REST call to a hanging pod takes the operator's 5 s timeout; a reconcile of a stuck
    // cluster takes 10 s or more. Queued behind them, quick would have waited that long.
    ensure!(
        built < Duration::from_secs(5) && scaled < Duration::from_secs(5),
        "the hanging clusters held up another: built after {built:?}, scaled after {scaled:?}"
    );
    // The stuck ones still say why they are not ready.
    for name in STUCK {
        let kc = kcs.get(name).await?;
        let msg = kc
            .status
            .and_then(|s| s.conditions)
            .unwrap_or_default()
            .into_iter()
            .find(|c| c.type_ == "Ready")
            .map(|c| c.reason)
            .unwrap_or_default();
        ensure!(msg == "WorkersUnreachable", "{name}: {msg}");
    }
    ensure!(operator.poll_exit().is_none(), "{}", diagnose(&operator));
    operator.request_stop();
    Ok(())
}
