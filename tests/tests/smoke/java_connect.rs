use std::time::Duration;

use anyhow::Result;
use tributary_tests::installed::Installed;
use tributary_tests::stack::java_connect::JavaConnect;
use tributary_tests::{Devstack, unique_name};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_java_connect_worker_answers_and_lists_its_plugins() -> Result<()> {
    let stack = Devstack::shared()?;
    let dir = tempfile::tempdir()?;
    let replication = stack.kafka_nodes()?.min(3);
    let mut worker = JavaConnect::start(
        &Installed::locate(),
        stack.kafka_bootstrap()?,
        &unique_name("smoke-java"),
        dir.path(),
        replication,
    )?;
    worker.wait_ready(Duration::from_secs(300)).await?;

    let http = reqwest::Client::new();
    let root: serde_json::Value = http
        .get(format!("{}/", worker.url))
        .send()
        .await?
        .error_for_status()?
        .json()
        .await?;
    assert_eq!(root["version"], stack.kafka_version()?, "GET / = {root}");
    assert!(
        root["kafka_cluster_id"]
            .as_str()
            .is_some_and(|id| id.len() == 22),
        "GET / = {root}"
    );

    let plugins: serde_json::Value = http
        .get(format!("{}/connector-plugins", worker.url))
        .send()
        .await?
        .error_for_status()?
        .json()
        .await?;
    let classes: Vec<&str> = plugins
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|p| p["class"].as_str())
        .collect();
    for want in [
        "org.apache.kafka.connect.file.FileStreamSourceConnector",
        "org.apache.kafka.connect.file.FileStreamSinkConnector",
    ] {
        assert!(classes.contains(&want), "{want} missing from {classes:?}");
    }
    Ok(())
}
