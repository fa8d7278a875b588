//! `make demo`: Tributary end to end on this machine. On a devstack (Kubernetes, the pod runner,
//! Kafka; attached through `TRIBUTARY_DEVSTACK_ENV`, else started), `helm install` of the chart
//! into a namespace enforcing the restricted Pod Security Standard; the operator runs as a
//! process with the chart Deployment's args, env and ServiceAccount token (the pod runner plays
//! the kubelet for worker pods only); a two-worker KafkaConnect named as the examples expect and
//! the datagen example Connector (its topic renamed after the namespace, so the count is this
//! run's alone); then the resources and the records arriving, live.
//!
//! Interactive: runs until Ctrl-C, then tears everything down. `DEMO_DURATION=<seconds>`: runs
//! that long, fails unless records arrived, tears down (what `make test` runs).

use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail, ensure};
use kube::Api;
use tributary_operator::crd::{Connector, KafkaConnect};
use tributary_tests::Devstack;
use tributary_tests::operator::{
    adopt_for_helm, delete_unwatched_namespace, helm_in, kafka_connect_manifest, kubectl_ok, repo,
    restricted_namespace, service_account_kubeconfig, start_operator_as_deployed,
};

const EXAMPLE: &str = "manifests/examples/connector-datagen.yaml";

fn say(msg: &str) {
    eprintln!("[demo] {msg}");
}

fn ready(
    conditions: Option<&Vec<k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition>>,
) -> String {
    conditions
        .and_then(|c| c.iter().find(|c| c.type_ == "Ready"))
        .map_or_else(
            || "waiting for the operator".to_string(),
            |c| format!("Ready={} {}", c.status, c.reason),
        )
}

/// Records in `topic` (the sum of its partitions' high watermarks).
fn records(stack: &Devstack, topic: &str) -> Result<i64> {
    use rdkafka::consumer::{BaseConsumer, Consumer};
    let consumer: BaseConsumer = stack
        .kafka_config()?
        .set("group.id", "tributary-demo")
        .create()?;
    let metadata = consumer.fetch_metadata(Some(topic), Duration::from_secs(5))?;
    let mut total = 0;
    for t in metadata.topics() {
        for p in t.partitions() {
            let (_, high) = consumer.fetch_watermarks(topic, p.id(), Duration::from_secs(5))?;
            total += high.max(0);
        }
    }
    Ok(total)
}

struct Demo {
    stack: &'static Devstack,
    ns: String,
    release: String,
}

impl Demo {
    fn helm(&self, args: &[&str]) -> Result<String> {
        helm_in(self.stack, &self.ns, args)
    }

    /// helm uninstall, then the namespace.
    fn tear_down(&self) -> Result<()> {
        say("tearing down: helm uninstall, then the namespace");
        self.helm(&["uninstall", &self.release])?;
        delete_unwatched_namespace(self.stack, &self.ns)
    }
}

async fn run(demo: &Demo, duration: Option<Duration>) -> Result<()> {
    let stack = demo.stack;
    let ns = &demo.ns;
    say(&format!(
        "helm install {} charts/tributary -n {ns}",
        demo.release
    ));
    let notes = demo.helm(&[
        "install",
        &demo.release,
        &repo().join("charts/tributary").display().to_string(),
        "--set",
        &format!("watchNamespaces={{{ns}}}"),
        "--set",
        "replicas=0",
    ])?;
    eprintln!("{notes}");
    let client = stack.kube_client().await?;
    let name = format!("{}-tributary-operator", demo.release);
    let deployment = Api::<k8s_openapi::api::apps::v1::Deployment>::namespaced(client.clone(), ns)
        .get(&name)
        .await?;
    let dir = tempfile::tempdir()?;
    let token = service_account_kubeconfig(stack, ns, &name, dir.path(), true)?;
    say("starting the operator with the chart's args, env and ServiceAccount token");
    let mut operator = start_operator_as_deployed(&deployment, dir.path(), &token)?;

    let topic = format!("users-{ns}");
    say(&format!(
        "kubectl apply: a 2-worker KafkaConnect my-connect and {EXAMPLE} (topic {topic})"
    ));
    kubectl_ok(
        stack,
        &["apply", "-n", ns, "-f", "-"],
        Some(&kafka_connect_manifest(stack, "my-connect", 2)?),
    )?;
    let example = std::fs::read_to_string(repo().join(EXAMPLE))?;
    ensure!(example.contains("kafka.topic: users"), "{EXAMPLE} changed");
    kubectl_ok(
        stack,
        &["apply", "-n", ns, "-f", "-"],
        Some(&example.replace("kafka.topic: users", &format!("kafka.topic: {topic}"))),
    )?;
    let topic = topic.as_str();
    let kcs: Api<KafkaConnect> = Api::namespaced(client.clone(), ns);
    let conns: Api<Connector> = Api::namespaced(client.clone(), ns);
    let started = Instant::now();
    let mut shown_table = false;
    let mut arrived;
    let mut ctrl_c = std::pin::pin!(tokio::signal::ctrl_c());
    loop {
        let kc = kcs.get_opt("my-connect").await?;
        let conn = conns.get_opt("datagen-users").await?;
        let kc_ready = ready(
            kc.as_ref()
                .and_then(|k| k.status.as_ref())
                .and_then(|s| s.conditions.as_ref()),
        );
        let conn_ready = ready(
            conn.as_ref()
                .and_then(|c| c.status.as_ref())
                .and_then(|s| s.conditions.as_ref()),
        );
        arrived = records(stack, topic).unwrap_or(0);
        say(&format!(
            "{:>4.0} s  KafkaConnect my-connect: {kc_ready:<28} Connector datagen-users: {conn_ready:<28} records in {topic}: {arrived}",
            started.elapsed().as_secs_f64()
        ));
        if !shown_table && conn_ready.starts_with("Ready=True") {
            shown_table = true;
            let table = kubectl_ok(
                stack,
                &[
                    "get",
                    "kafkaconnects.tributary.dev,connectors.tributary.dev",
                    "-n",
                    ns,
                ],
                None,
            )?;
            println!("\n{table}");
        }
        if let Some(status) = operator.poll_exit() {
            bail!(
                "the operator stopped ({status}):\n{}",
                tributary_tests::stack::process::tail(&operator.log, 40)
            );
        }
        if duration.is_some_and(|d| started.elapsed() >= d) {
            break;
        }
        tokio::select! {
            _ = &mut ctrl_c => break,
            _ = tokio::time::sleep(Duration::from_secs(2)) => {}
        }
    }
    operator.request_stop();
    if duration.is_some() {
        ensure!(shown_table, "the example Connector never became Ready");
        ensure!(arrived > 0, "no records arrived in {topic}");
        say(&format!("{arrived} records arrived through the pipeline"));
    }
    Ok(())
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> Result<()> {
    let duration = match std::env::var("DEMO_DURATION") {
        Ok(s) => Some(Duration::from_secs(
            s.trim_end_matches('s')
                .parse()
                .context("DEMO_DURATION: a number of seconds, e.g. DEMO_DURATION=60")?,
        )),
        Err(_) => None,
    };
    say("starting (or attaching to) the devstack: Kubernetes, the pod runner, Kafka");
    let stack = Devstack::shared()?;
    let ns = restricted_namespace(stack, "tributary-demo").await?;
    let release = tributary_tests::unique_name("tributary");
    adopt_for_helm(stack, &release, &ns)?;
    let demo = Demo { stack, ns, release };
    let result = run(&demo, duration).await;
    let down = demo.tear_down();
    result?;
    down
}
