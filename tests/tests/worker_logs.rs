//! Worker logs as log collectors and Java runbooks expect them: with `TRIBUTARY_LOG_FORMAT=json`
//! every line the worker writes is one JSON object; every line a task writes names its connector
//! and task (KIP-449's connector context); and Apache Kafka Connect's logger names set through
//! `/admin/loggers` change the level of the code doing that job here.

#![allow(clippy::expect_used)]

use std::io::Write;
use std::time::Duration;

use anyhow::{Context, Result, ensure};
use serde_json::{Value, json};
use tributary_tests::worker::StandaloneWorker;
use tributary_tests::{Devstack, unique_name, wait_until};

const WAIT: Duration = Duration::from_secs(90);
const JAVA_LOGGER: &str = "org.apache.kafka.connect.runtime.WorkerSourceTask";

fn lines(log: &std::path::Path) -> Result<Vec<String>> {
    Ok(std::fs::read_to_string(log)?
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(str::to_string)
        .collect())
}

#[tokio::test]
async fn json_lines_carry_the_task_context_and_java_logger_names_set_levels() -> Result<()> {
    let stack = Devstack::shared()?;
    let dir = tempfile::tempdir()?;
    let topic = unique_name("logs");
    let input = dir.path().join("in.txt");
    std::fs::write(&input, "one\ntwo\n")?;
    let connector = unique_name("logs-src");
    let worker_props = format!(
        "bootstrap.servers={}\nkey.converter=org.apache.kafka.connect.storage.StringConverter\nvalue.converter=org.apache.kafka.connect.storage.StringConverter\noffset.flush.interval.ms=300\n",
        stack.kafka_bootstrap()?
    );
    let source = format!(
        "name={connector}\nconnector.class=FileStreamSource\nfile={}\ntopic={topic}\ntopic.creation.default.replication.factor=1\ntopic.creation.default.partitions=1\n",
        input.display()
    );
    let mut worker = StandaloneWorker::start_with_env(
        dir.path(),
        "logs",
        &worker_props,
        &[("source", source)],
        &[("TRIBUTARY_LOG_FORMAT", "json")],
    )?;
    worker.wait_healthy(WAIT).await?;
    let http = reqwest::Client::new();
    let status_url = format!("{}/connectors/{connector}/status", worker.rest_url);
    wait_until("the source task RUNNING", WAIT, || async {
        let s: Value = http.get(&status_url).send().await?.json().await?;
        Ok((s["tasks"][0]["state"] == "RUNNING").then_some(()))
    })
    .await?;

    // Before: the task's offset flushes are DEBUG lines, not shown at INFO.
    let log = worker
        .process
        .as_ref()
        .map(|p| p.log.clone())
        .context("worker process")?;
    let flushed = |l: &Value| l["fields"]["message"] == "offsets flushed";
    let reply = http
        .put(format!("{}/admin/loggers/{JAVA_LOGGER}", worker.rest_url))
        .json(&json!({"level": "DEBUG"}))
        .send()
        .await?;
    ensure!(reply.status().is_success(), "{}", reply.text().await?);
    let levels: Value = http
        .get(format!("{}/admin/loggers", worker.rest_url))
        .send()
        .await?
        .json()
        .await?;
    ensure!(levels[JAVA_LOGGER]["level"] == "DEBUG", "{levels}");
    let mut f = std::fs::OpenOptions::new().append(true).open(&input)?;
    writeln!(f, "three")?;
    drop(f);
    wait_until("a DEBUG offsets flushed line", WAIT, || async {
        let found = lines(&log)?
            .iter()
            .filter_map(|l| serde_json::from_str::<Value>(l).ok())
            .any(|l| flushed(&l));
        Ok(found.then_some(()))
    })
    .await?;
    worker.stop();

    let all = lines(&log)?;
    ensure!(
        all.len() > 5,
        "only {} lines:\n{}",
        all.len(),
        all.join("\n")
    );
    let mut task_lines = 0;
    for line in &all {
        let l: Value = serde_json::from_str(line)
            .with_context(|| format!("a log line that is not JSON: {line}"))?;
        ensure!(
            l["level"].is_string() && l["timestamp"].is_string() && l["target"].is_string(),
            "{line}"
        );
        // Every line the task's thread writes names the connector and the task.
        let target = l["target"].as_str().unwrap_or_default();
        if target.starts_with("tributary_worker::task::source") {
            task_lines += 1;
            ensure!(
                l["span"]["connector"] == connector.as_str() && l["span"]["task"] == 0,
                "a task line without its context: {line}"
            );
        }
        if flushed(&l) {
            ensure!(
                l["level"] == "DEBUG" && target == "tributary_worker::task::source",
                "{line}"
            );
        }
    }
    ensure!(task_lines > 0, "no task lines in:\n{}", all.join("\n"));
    Ok(())
}
