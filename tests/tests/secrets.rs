//! Secrets never leave the worker: canary values in every place a secret goes in — the Kafka SASL
//! password (`sasl.jaas.config`), the REST API's basic-auth password, a connector's database
//! password through a config provider, a wrong database password given literally, a password
//! sent to config validation, a password inside a malformed `sasl.jaas.config` — and every
//! channel grepped for them: the worker's log at TRACE with librdkafka's `debug=all`, every REST
//! response (the validation's values show `[hidden]`, as Java's do), `/metrics`, the connector
//! and task status traces, and the error output of a worker refused at start.
//!
//! The operator's channels (CR status, events) are checked by the operator tests.

#![allow(clippy::expect_used)]

use std::time::Duration;

use anyhow::{Result, ensure};
use rdkafka::producer::{FutureProducer, FutureRecord};
use serde_json::{Value, json};
use tributary_tests::worker::WorkerProcess;
use tributary_tests::{Devstack, unique_name, wait_until};

const WAIT: Duration = Duration::from_secs(120);
/// The canary given literally in a connector's config.
const LITERAL: &str = "a wrong PostgreSQL password, literally in a connector config";

/// REST resources that return a connector's config as it was stored.
fn echoes_config(channel: &str) -> bool {
    let Some(path) = channel.strip_prefix("REST ") else {
        return false;
    };
    path.ends_with("/config")
        || path.ends_with("/tasks")
        || path.contains("expand=info")
        || (path.starts_with("/connectors/") && path.matches('/').count() == 2)
}

fn canary(what: &str) -> String {
    format!(
        "CANARY{what}{}",
        unique_name("x").replace(|c: char| !c.is_ascii_alphanumeric(), "")
    )
}

fn http() -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(Duration::from_secs(30))
        .build()
        .expect("http client")
}

/// Every canary found in `text`, named by where it was put.
fn leaks<'a>(text: &str, canaries: &'a [(&'a str, String)]) -> Vec<&'a str> {
    canaries
        .iter()
        .filter(|(_, c)| text.contains(c.as_str()))
        .map(|(what, _)| *what)
        .collect()
}

fn sasl_worker_props(stack: &Devstack, group: &str, jaas: &str) -> Result<String> {
    Ok(format!(
        "bootstrap.servers={bootstrap}
security.protocol=SASL_SSL
sasl.mechanism=SCRAM-SHA-512
sasl.jaas.config={jaas}
ssl.truststore.type=PEM
ssl.truststore.location={ca}
group.id={group}
key.converter=org.apache.kafka.connect.json.JsonConverter
value.converter=org.apache.kafka.connect.json.JsonConverter
key.converter.schemas.enable=false
config.storage.topic={group}-configs
offset.storage.topic={group}-offsets
status.storage.topic={group}-status
config.storage.replication.factor=1
offset.storage.replication.factor=1
status.storage.replication.factor=1
offset.storage.partitions=1
status.storage.partitions=1
offset.flush.interval.ms=1000
scheduled.rebalance.max.delay.ms=0
",
        bootstrap = stack.var("TRIBUTARY_KAFKA_SASL_BOOTSTRAP")?,
        ca = stack.var("TRIBUTARY_KAFKA_CA_CERT")?,
    ))
}

fn jaas(user: &str, password: &str) -> String {
    format!(
        "org.apache.kafka.common.security.scram.ScramLoginModule required username=\"{user}\" password=\"{password}\";"
    )
}

fn pg_sink(stack: &Devstack, topic: &str, table: &str, password: &str) -> Result<Value> {
    Ok(json!({
        "connector.class": "dev.tributary.connect.postgres.PostgresSinkConnector",
        "topics": topic,
        "tasks.max": "1",
        "connection.url": format!(
            "jdbc:postgresql://{}:{}/{}",
            stack.var("TRIBUTARY_PG_HOST")?,
            stack.var("TRIBUTARY_PG_PORT")?,
            stack.var("TRIBUTARY_PG_DATABASE")?
        ),
        "connection.user": stack.var("TRIBUTARY_PG_USER")?,
        "connection.password": password,
        "auto.create": "true",
        "table.name.format": table,
    }))
}

/// GETs every REST resource a client reads, with and without credentials; returns each response
/// as `<path> <code> <body>`.
async fn rest_responses(
    base: &str,
    password: &str,
    connectors: &[&str],
) -> Result<Vec<(String, String)>> {
    let mut paths = vec![
        "/".to_string(),
        "/connectors".to_string(),
        "/connectors?expand=status&expand=info".to_string(),
        "/connector-plugins".to_string(),
        "/connector-plugins?connectorsOnly=false".to_string(),
        "/admin/loggers".to_string(),
    ];
    for c in connectors {
        for tail in [
            "",
            "/config",
            "/status",
            "/tasks",
            "/tasks/0/status",
            "/offsets",
            "/topics",
        ] {
            paths.push(format!("/connectors/{c}{tail}"));
        }
    }
    let mut out = Vec::new();
    for path in &paths {
        for auth in [Some(password), Some("wrong"), None] {
            let mut r = http().get(format!("{base}{path}"));
            if let Some(pw) = auth {
                r = r.basic_auth("admin", Some(pw));
            }
            let r = r.send().await?;
            let code = r.status().as_u16();
            out.push((
                path.clone(),
                format!("{path} {code} {}", r.text().await.unwrap_or_default()),
            ));
        }
    }
    Ok(out)
}

#[tokio::test(flavor = "multi_thread")]
async fn no_canary_reaches_logs_rest_metrics_or_errors() -> Result<()> {
    let stack = Devstack::shared()?;
    let dir = tempfile::tempdir()?;
    let group = unique_name("secrets");
    let user = stack.var("TRIBUTARY_KAFKA_SASL_USERNAME")?;
    let pg_password = stack.var("TRIBUTARY_PG_PASSWORD")?.to_string();
    let rest_password = canary("rest");
    let wrong_pg = canary("wrongpg");
    let validated = canary("validate");
    let jaas_typo = canary("jaas");
    let canaries = vec![
        (
            "the Kafka SASL password",
            stack.kafka_sasl_password()?.to_string(),
        ),
        (
            "the PostgreSQL password (config provider)",
            pg_password.clone(),
        ),
        ("the REST basic-auth password", rest_password.clone()),
        (LITERAL, wrong_pg.clone()),
        ("a password sent to validation", validated.clone()),
        (
            "a password in a malformed sasl.jaas.config",
            jaas_typo.clone(),
        ),
    ];
    let trace = [
        ("TRIBUTARY_LOG", "trace"),
        ("TRIBUTARY_LIBRDKAFKA_DEBUG", "all"),
    ];

    // A worker refused at start: the error names the setting, not the value.
    let refused_props = sasl_worker_props(
        stack,
        &unique_name("secrets-bad"),
        &format!(
            "org.apache.kafka.common.security.scram.ScramLoginModule required username=\"{user}\" password:\"{jaas_typo}\";"
        ),
    )?;
    let mut refused =
        WorkerProcess::start_distributed_with_env(dir.path(), "refused", &refused_props, &trace)?;
    let refused_output = refused.wait_exit(WAIT).await?;
    ensure!(
        refused_output.contains("sasl.jaas.config"),
        "the refused worker does not name sasl.jaas.config:\n{refused_output}"
    );

    let secrets = dir.path().join("secrets.properties");
    std::fs::write(&secrets, format!("pg={pg_password}\n"))?;
    let props = format!(
        "{}config.providers=file
config.providers.file.class=org.apache.kafka.common.config.provider.FileConfigProvider
tributary.rest.basic.auth.username=admin
tributary.rest.basic.auth.password={rest_password}
",
        sasl_worker_props(stack, &group, &jaas(user, stack.kafka_sasl_password()?))?
    );
    let mut worker = WorkerProcess::start_distributed_with_env(dir.path(), "w", &props, &trace)?;
    wait_until("the worker ready", WAIT, || async {
        let r = http()
            .get(format!("{}/ready", worker.health_url))
            .send()
            .await;
        Ok(r.ok().filter(|r| r.status().is_success()).map(|_| ()))
    })
    .await?;

    // Two PostgreSQL sinks with records to write: one with the password through the provider
    // (it writes), one with a wrong password given literally (its task fails authenticating).
    let topic = stack.create_topic("secrets", 1, 1, &[]).await?;
    produce(stack, &topic, 5).await?;
    let good = unique_name("secrets-good");
    let failing = unique_name("secrets-wrong");
    let table = topic.replace('-', "_");
    let authed = |r: reqwest::RequestBuilder| r.basic_auth("admin", Some(&rest_password));
    for (name, password) in [
        (&good, format!("${{file:{}:pg}}", secrets.display())),
        (&failing, wrong_pg.clone()),
    ] {
        let r = authed(http().put(format!("{}/connectors/{name}/config", worker.rest_url)))
            .json(&pg_sink(stack, &topic, &table, &password)?)
            .send()
            .await?;
        ensure!(
            r.status().is_success(),
            "create {name}: {}",
            r.text().await?
        );
    }
    let pg = stack.postgres().await?;
    let count = format!(r#"SELECT count(*) FROM "{table}""#);
    wait_until(
        "the provider's password to let the sink write",
        WAIT,
        || async {
            Ok(pg
                .query_one(count.as_str(), &[])
                .await
                .ok()
                .filter(|r| r.get::<_, i64>(0) >= 5)
                .map(|_| ()))
        },
    )
    .await
    .map_err(|e| anyhow::anyhow!("{e:#}\n{}", worker.log()))?;
    let status_url = format!("{}/connectors/{failing}/status", worker.rest_url);
    let trace_of_failure = wait_until("the wrong password to fail the task", WAIT, || async {
        let s: Value = authed(http().get(&status_url)).send().await?.json().await?;
        Ok((s["tasks"][0]["state"] == "FAILED").then(|| s["tasks"][0]["trace"].to_string()))
    })
    .await?;
    ensure!(
        trace_of_failure.contains("password authentication failed")
            || trace_of_failure.contains("authentication"),
        "the failed task does not say why: {trace_of_failure}"
    );

    // Validation of a config with a password: the value comes back as [hidden].
    let mut config = pg_sink(stack, &topic, &table, &validated)?;
    config["connection.url"] = json!("not-a-jdbc-url");
    let r = authed(http().put(format!(
        "{}/connector-plugins/PostgresSinkConnector/config/validate",
        worker.rest_url
    )))
    .json(&config)
    .send()
    .await?;
    let code = r.status().as_u16();
    let validation = r.text().await?;
    ensure!(code == 200, "validate: {code} {validation}");
    let v: Value = serde_json::from_str(&validation)?;
    let shown = v["configs"]
        .as_array()
        .and_then(|cs| {
            cs.iter()
                .find(|c| c["value"]["name"] == "connection.password")
                .map(|c| c["value"]["value"].clone())
        })
        .unwrap_or(Value::Null);
    ensure!(shown == "[hidden]", "connection.password shown as {shown}");
    ensure!(
        v["error_count"].as_i64() > Some(0),
        "the bad URL was accepted: {validation}"
    );

    let mut channels: Vec<(String, String)> = Vec::new();
    channels.push(("the refused worker's output".into(), refused_output));
    channels.push(("the validation response".into(), validation));
    channels.push(("the failed task's trace".into(), trace_of_failure));
    for (path, response) in
        rest_responses(&worker.rest_url, &rest_password, &[&good, &failing]).await?
    {
        channels.push((format!("REST {path}"), response));
    }
    for base in [&worker.health_url, &worker.rest_url] {
        let r = authed(http().get(format!("{base}/metrics"))).send().await?;
        channels.push((format!("{base}/metrics"), r.text().await?));
    }
    // Give librdkafka's debug output and the tasks a moment more, then stop: the log is complete.
    tokio::time::sleep(Duration::from_secs(3)).await;
    worker.stop();
    let mut lines = 0;
    for entry in std::fs::read_dir(dir.path())? {
        let path = entry?.path();
        if path.extension().is_some_and(|e| e == "log") {
            let text = std::fs::read_to_string(&path)?;
            lines += text.lines().count();
            channels.push((format!("log {}", path.display()), text));
        }
    }
    ensure!(lines > 1000, "only {lines} log lines: was TRACE on?");
    let log_text: String = channels.iter().map(|(_, t)| t.as_str()).collect();
    ensure!(
        log_text.contains("librdkafka") && log_text.to_lowercase().contains("sasl"),
        "librdkafka's debug lines (with its SASL handshake) are missing from the log"
    );

    let mut found = Vec::new();
    for (channel, text) in &channels {
        for what in leaks(text, &canaries) {
            // A password written literally into a connector's config is part of that config:
            // Java's GET config, tasks and expand=info return it as stored, and so do we (the
            // operator and GitOps tools compare it). Config providers keep it out of them.
            if what == LITERAL && echoes_config(channel) {
                continue;
            }
            let at = text
                .find(
                    canaries
                        .iter()
                        .find(|(w, _)| *w == what)
                        .map(|(_, c)| c.as_str())
                        .unwrap_or_default(),
                )
                .unwrap_or(0);
            let from = text[..at]
                .char_indices()
                .rev()
                .nth(200)
                .map_or(0, |(i, _)| i);
            let context: String = text[from..].chars().take(400).collect();
            found.push(format!("{what} in {channel}: …{context}…"));
        }
    }
    ensure!(found.is_empty(), "secrets leaked:\n{}", found.join("\n\n"));
    Ok(())
}

async fn produce(stack: &Devstack, topic: &str, n: usize) -> Result<()> {
    let producer: FutureProducer = stack.kafka_config()?.create()?;
    for i in 0..n {
        let v = json!({
            "schema": {"type": "struct", "fields": [
                {"field": "id", "type": "int64"},
                {"field": "name", "type": "string"}]},
            "payload": {"id": i, "name": format!("n{i}")},
        })
        .to_string();
        producer
            .send(
                FutureRecord::<(), _>::to(topic).payload(&v),
                Duration::from_secs(30),
            )
            .await
            .map_err(|(e, _)| e)?;
    }
    Ok(())
}
