//! The generated CRDs and admission policies on the devstack's real apiserver: the examples are
//! admitted, and each kind of invalid resource is refused at apply time with a message naming
//! the field, as a user running `kubectl apply` sees it.

use std::process::Output;
use std::time::Duration;

use anyhow::{Context, Result, ensure};
use tributary_tests::{Devstack, wait_until};

use tributary_tests::operator::repo;

fn kubectl(stack: &Devstack, args: &[&str], stdin: Option<&str>) -> Result<Output> {
    stack.kubectl(args, stdin)
}

fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

/// A valid KafkaConnect with `extra` lines appended to its spec.
fn kafka_connect(name: &str, extra: &str) -> String {
    format!(
        "apiVersion: tributary.dev/v1alpha1
kind: KafkaConnect
metadata:
  name: {name}
spec:
  replicas: 3
  bootstrapServers: kafka-0:9092,kafka-1:9092
  groupId: g
  configStorageTopic: g-configs
  offsetStorageTopic: g-offsets
  statusStorageTopic: g-status
{extra}"
    )
}

fn connector(extra: &str) -> String {
    format!(
        "apiVersion: tributary.dev/v1alpha1
kind: Connector
metadata:
  name: c
spec:
  clusterRef: {{name: x}}
  class: FileStreamSource
{extra}"
    )
}

#[tokio::test]
async fn invalid_resources_are_refused_at_apply_time_naming_the_field() -> Result<()> {
    let stack = Devstack::shared()?;
    let crds = repo().join("crds/tributary.dev.yaml");
    let out = kubectl(
        stack,
        &[
            "apply",
            "--server-side",
            "--force-conflicts",
            "-f",
            &crds.display().to_string(),
        ],
        None,
    )?;
    ensure!(out.status.success(), "installing the CRDs: {}", text(&out));
    let ns = stack.namespace("crds").await?;

    // The examples are admitted (once the CRDs are served and the policies are active).
    let mut examples: Vec<_> = std::fs::read_dir(repo().join("manifests/examples"))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "yaml"))
        .collect();
    examples.sort();
    ensure!(examples.len() >= 4, "examples: {examples:?}");
    for path in examples {
        let example = path
            .file_name()
            .unwrap_or_default()
            .to_string_lossy()
            .to_string();
        let file = path.display().to_string();
        wait_until(
            &format!("{example} admitted"),
            Duration::from_secs(60),
            || async {
                let out = kubectl(
                    stack,
                    &["apply", "--dry-run=server", "-n", &ns, "-f", &file],
                    None,
                )?;
                Ok(out.status.success().then_some(()))
            },
        )
        .await?;
    }
    // Scalars of any type are accepted as config values.
    let out = kubectl(
        stack,
        &["apply", "--dry-run=server", "-n", &ns, "-f", "-"],
        Some(&connector(
            "  config: {file: /x, topic: t, batch.size: 100, flag: true, ratio: 0.5}",
        )),
    )?;
    ensure!(out.status.success(), "scalar config values: {}", text(&out));

    let long = "a".repeat(45);
    let cases: Vec<(&str, String, &str)> = vec![
        (
            "a name too long for the StatefulSet",
            kafka_connect(&long, ""),
            "at most 44 characters",
        ),
        (
            "an upper-case name",
            kafka_connect("Connect", ""),
            "metadata.name",
        ),
        (
            "bootstrap servers without ports",
            kafka_connect("x", "").replace("kafka-0:9092,kafka-1:9092", "kafka"),
            "spec.bootstrapServers is a comma-separated list of host:port",
        ),
        (
            "two storage topics alike",
            kafka_connect("x", "").replace("g-offsets", "g-configs"),
            "must be three different topics",
        ),
        (
            "a missing storage topic",
            kafka_connect("x", "").replace("  statusStorageTopic: g-status\n", ""),
            "statusStorageTopic",
        ),
        (
            "negative replicas",
            kafka_connect("x", "").replace("replicas: 3", "replicas: -1"),
            "spec.replicas",
        ),
        (
            "tls authentication without a certificate",
            kafka_connect(
                "x",
                "  tls: {trustedCertificates: [{secretName: ca, certificate: ca.crt}]}\n  authentication: {type: tls, username: u}\n",
            ),
            "type tls takes certificateAndKey",
        ),
        (
            "a trusted certificate with both a key and a pattern",
            kafka_connect(
                "x",
                "  tls: {trustedCertificates: [{secretName: ca, certificate: ca.crt, pattern: '*.crt'}]}\n",
            ),
            "exactly one of certificate",
        ),
        (
            "an unknown authentication type",
            kafka_connect(
                "x",
                "  authentication: {type: kerberos, username: u, passwordSecret: {secretName: s, password: p}}\n",
            ),
            "spec.authentication.type",
        ),
        (
            "a rack label Kubernetes does not copy to pods",
            kafka_connect("x", "  rack: {topologyKey: example.com/rack}\n"),
            "spec.rack.topologyKey: use topology.kubernetes.io/zone",
        ),
        (
            "a worker setting the operator owns",
            kafka_connect("x", "  config:\n    bootstrap.servers: elsewhere:9092\n"),
            "spec.config.bootstrap.servers is managed by the operator; use spec.bootstrapServers",
        ),
        (
            "an ssl setting the operator owns",
            kafka_connect("x", "  config:\n    ssl.truststore.location: /x\n"),
            "use spec.tls and spec.authentication",
        ),
        (
            "a connector setting its own field owns",
            connector("  config: {tasks.max: 3}"),
            "spec.config.tasks.max is managed by the operator; use spec.tasksMax",
        ),
        (
            "an offsets change that both resets and alters",
            connector(
                "  offsets: {id: a, reset: true, alter: [{partition: {filename: /x}, offset: null}]}",
            ),
            "give exactly one of reset: true or alter",
        ),
        (
            "an unknown target state",
            connector("  state: sleeping"),
            "spec.state",
        ),
    ];
    let mut failures = Vec::new();
    for (what, manifest, want) in &cases {
        let out = kubectl(
            stack,
            &["apply", "--dry-run=server", "-n", &ns, "-f", "-"],
            Some(manifest),
        )?;
        let said = text(&out);
        if out.status.success() || !said.contains(want) {
            failures.push(format!(
                "{what}: want a refusal containing {want:?}, got: {said}"
            ));
        }
    }
    // The Ssl exceptions stay the user's, as in Strimzi.
    let out = kubectl(
        stack,
        &["apply", "--dry-run=server", "-n", &ns, "-f", "-"],
        Some(&kafka_connect(
            "x",
            "  config:\n    ssl.endpoint.identification.algorithm: ''\n    producer.linger.ms: 5\n",
        )),
    )?;
    if !out.status.success() {
        failures.push(format!("allowed ssl key refused: {}", text(&out)));
    }
    ensure!(failures.is_empty(), "{}", failures.join("\n"));

    // connectorName cannot change once set.
    let first = connector("  connectorName: Orders.Source");
    let out = kubectl(stack, &["apply", "-n", &ns, "-f", "-"], Some(&first))?;
    ensure!(out.status.success(), "creating: {}", text(&out));
    let out = kubectl(
        stack,
        &["apply", "-n", &ns, "-f", "-"],
        Some(&first.replace("Orders.Source", "Other")),
    )?;
    ensure!(
        !out.status.success() && text(&out).contains("spec.connectorName cannot change"),
        "renaming: {}",
        text(&out)
    );
    Ok(())
}

/// Every object the builders make, for each fixture, passes the apiserver's own validation
/// (a server-side dry run with strict field validation), in a namespace of its own.
#[tokio::test]
async fn every_built_object_passes_a_server_side_dry_run() -> Result<()> {
    use tributary_operator::build;
    use tributary_operator::crd::KafkaConnect;
    let stack = Devstack::shared()?;
    let ns = stack.namespace("built").await?;
    let fixtures = repo().join("operator/tests/fixtures");
    let keys = std::collections::BTreeMap::from([
        ("cluster-ca".to_string(), vec!["ca.crt".to_string()]),
        ("extra-ca".to_string(), vec!["a.pem".to_string()]),
        (
            "connect-user".to_string(),
            vec!["password".into(), "user.crt".into(), "user.key".into()],
        ),
        (
            "connect-rest-cert".to_string(),
            vec!["tls.crt".into(), "tls.key".into(), "ca.crt".into()],
        ),
    ]);
    let mut checked = 0;
    for entry in std::fs::read_dir(&fixtures)? {
        let path = entry?.path();
        let mut kc: KafkaConnect = yaml_serde::from_str(&std::fs::read_to_string(&path)?)
            .with_context(|| path.display().to_string())?;
        kc.metadata.namespace = Some(ns.clone());
        let c = build::cluster(&kc, &keys, "hash".into())
            .map_err(|p| anyhow::anyhow!("{}: {p:?}", path.display()))?;
        let children = build::children(&c)?;
        let items = vec![
            serde_json::to_value(&children.service_account)?,
            serde_json::to_value(&children.config_map)?,
            serde_json::to_value(&children.headless_service)?,
            serde_json::to_value(&children.api_service)?,
            serde_json::to_value(&children.pdb)?,
            serde_json::to_value(&children.network_policy)?,
            serde_json::to_value(&children.stateful_set)?,
            serde_json::to_value(build::secret::rest_secret(&c, "not-a-real-password"))?,
        ];
        let list = serde_json::json!({"apiVersion": "v1", "kind": "List", "items": items});
        let out = kubectl(
            stack,
            &[
                "apply",
                "--server-side",
                "--dry-run=server",
                "--validate=strict",
                "--field-manager=tributary-operator",
                "-n",
                &ns,
                "-f",
                "-",
            ],
            Some(&list.to_string()),
        )?;
        ensure!(out.status.success(), "{}: {}", path.display(), text(&out));
        checked += 1;
    }
    ensure!(checked >= 3, "only {checked} fixtures");
    Ok(())
}
