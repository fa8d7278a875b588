//! The internal-topic log against the devstack broker: topics are created compacted, records land
//! on Java's partition for their key and read back to the end, and topics that would lose data
//! (another cleanup policy, a multi-partition config topic) are refused with the fix.

use std::collections::BTreeMap;
use std::time::Duration;

use anyhow::{Result, ensure};
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, ResourceSpecifier, TopicReplication};
use rdkafka::client::DefaultClientContext;
use tributary_tests::{Devstack, unique_name};
use tributary_worker::kafka_log::{KafkaLog, LogRecord, TopicSpec, partition_for};

fn spec(setting: &'static str, name: &str, partitions: i32) -> TopicSpec {
    TopicSpec {
        configs: BTreeMap::from([("min.insync.replicas".to_string(), "1".to_string())]),
        ..TopicSpec::new(setting, name, partitions, 1)
    }
}

#[tokio::test]
async fn records_land_on_javas_partitions_and_read_back_to_the_end() -> Result<()> {
    let stack = Devstack::shared()?;
    let base = stack.kafka_config()?;
    let name = unique_name("connect-offsets");
    let s = spec("offset.storage.topic", &name, 5);
    let (written, read, policy) = tokio::task::spawn_blocking(move || -> Result<_> {
        let log = KafkaLog::open(&base, &s, "tributary-test-offsets", false)?;
        ensure!(log.partitions() == 5);
        let mut written = Vec::new();
        for i in 0..50 {
            let key = format!("[\"conn\",{{\"file\":\"/data/{i}.txt\"}}]");
            let value = (i % 7 != 0).then(|| format!("{{\"position\":{i}}}"));
            log.send(
                key.as_bytes(),
                value.as_deref().map(str::as_bytes),
                Duration::from_secs(30),
            )?;
            written.push((key, value));
        }
        // A second reader, as another worker starting up.
        let mut reader = KafkaLog::open(&base, &s, "tributary-test-offsets-2", false)?;
        let mut read: Vec<LogRecord> = Vec::new();
        reader.read_to_end(Duration::from_secs(60), |r| read.push(r))?;
        // Nothing more to read: a second call returns at once.
        reader.read_to_end(Duration::from_secs(10), |r| read.push(r))?;
        let admin: AdminClient<DefaultClientContext> = base.create()?;
        let described = futures::executor::block_on(
            admin.describe_configs([&ResourceSpecifier::Topic(&s.name)], &AdminOptions::new()),
        )?;
        let policy = described
            .first()
            .and_then(|r| r.as_ref().ok())
            .and_then(|r| r.get("cleanup.policy"))
            .and_then(|e| e.value.clone())
            .unwrap_or_default();
        Ok((written, read, policy))
    })
    .await??;
    ensure!(policy == "compact", "created with cleanup.policy={policy}");
    ensure!(
        read.len() == written.len(),
        "read {} of {}",
        read.len(),
        written.len()
    );
    for r in &read {
        ensure!(
            r.partition == partition_for(&r.key, 5),
            "a record on partition {} instead of Java's",
            r.partition
        );
    }
    // Per key, what was written (tombstones included) is what is read.
    let by_key: BTreeMap<String, Option<String>> = read
        .iter()
        .map(|r| {
            (
                String::from_utf8_lossy(&r.key).into_owned(),
                r.value
                    .as_ref()
                    .map(|v| String::from_utf8_lossy(v).into_owned()),
            )
        })
        .collect();
    for (k, v) in &written {
        ensure!(
            by_key.get(k) == Some(v),
            "{k}: {:?} vs {v:?}",
            by_key.get(k)
        );
    }
    Ok(())
}

#[tokio::test]
async fn topics_that_would_lose_data_are_refused_with_the_fix() -> Result<()> {
    let stack = Devstack::shared()?;
    let base = stack.kafka_config()?;
    let admin: AdminClient<DefaultClientContext> = base.create()?;
    let deleting = unique_name("connect-status");
    let wide = unique_name("connect-configs");
    let topics = [
        NewTopic::new(&deleting, 1, TopicReplication::Fixed(1)).set("cleanup.policy", "delete"),
        NewTopic::new(&wide, 3, TopicReplication::Fixed(1)).set("cleanup.policy", "compact"),
    ];
    for r in admin
        .create_topics(topics.iter(), &AdminOptions::new())
        .await?
    {
        r.map_err(|(t, e)| anyhow::anyhow!("creating {t}: {e}"))?;
    }
    let (a, b) = (deleting.clone(), wide.clone());
    let (e1, e2) = tokio::task::spawn_blocking(move || {
        let e1 = KafkaLog::open(&base, &spec("status.storage.topic", &a, 1), "t1", false)
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        let e2 = KafkaLog::open(&base, &spec("config.storage.topic", &b, 1), "t2", false)
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        (e1, e2)
    })
    .await?;
    ensure!(
        e1.contains(&deleting)
            && e1.contains("cleanup.policy=delete")
            && e1.contains("--add-config cleanup.policy=compact"),
        "{e1}"
    );
    ensure!(
        e2.contains(&wide) && e2.contains("3 partitions") && e2.contains("exactly 1"),
        "{e2}"
    );
    Ok(())
}

/// Source offsets written by a Java worker are read by Tributary's offsets store, and an offset
/// Tributary writes for a stopped connector is what Java's REST API then reports.
#[tokio::test]
async fn source_offsets_are_shared_with_java_both_ways() -> Result<()> {
    use serde_json::{Value, json};
    use tributary_connect_api::{OffsetMap, OffsetStorageReader};
    use tributary_tests::installed::Installed;
    use tributary_tests::stack::java_connect::JavaConnect;
    use tributary_tests::wait_until;
    use tributary_worker::offset_store::{
        ConnectorOffsetReader, KafkaOffsetStore, OffsetBackingStore, offset_key, offset_value,
    };

    let stack = Devstack::shared()?;
    let dir = tempfile::tempdir()?;
    let group = unique_name("java-offsets");
    let mut java = JavaConnect::start(
        &Installed::locate(),
        stack.kafka_bootstrap()?,
        &group,
        &dir.path().join("java"),
        1,
    )?;
    java.wait_ready(Duration::from_secs(180)).await?;
    let input = dir.path().join("in.txt");
    let text: String = (0..100).map(|i| format!("line {i}\n")).collect();
    std::fs::write(&input, &text)?;
    let topic = stack.create_topic("java-offsets", 1, 1, &[]).await?;
    let http = reqwest::Client::new();
    let url = java.url.clone();
    let r = http
        .put(format!("{url}/connectors/src/config"))
        .json(&json!({
            "connector.class": "org.apache.kafka.connect.file.FileStreamSourceConnector",
            "file": input.display().to_string(),
            "topic": topic,
            "tasks.max": "1",
        }))
        .send()
        .await?;
    ensure!(r.status().is_success(), "{}", r.text().await?);
    let size = text.len() as u64;
    let offsets_of = |http: reqwest::Client, url: String| async move {
        let v: Value = http
            .get(format!("{url}/connectors/src/offsets"))
            .send()
            .await?
            .json()
            .await?;
        Ok::<_, anyhow::Error>(v["offsets"][0]["offset"]["position"].as_u64())
    };
    wait_until(
        "Java committed the whole file's offset",
        Duration::from_secs(120),
        || {
            let (h, u) = (http.clone(), url.clone());
            async move { Ok(offsets_of(h, u).await?.filter(|p| *p == size)) }
        },
    )
    .await?;
    // Stop it (offsets may only be changed on a stopped connector) and read the topic ourselves.
    ensure!(
        http.put(format!("{url}/connectors/src/stop"))
            .send()
            .await?
            .status()
            .is_success()
    );
    let base = stack.kafka_config()?;
    let spec = TopicSpec::new("offset.storage.topic", format!("{group}-offsets"), 1, 1);
    let partition: OffsetMap = [(
        "filename".to_string(),
        Value::String(input.display().to_string()),
    )]
    .into();
    let (ours, p2) = (partition.clone(), partition.clone());
    let read = tokio::task::spawn_blocking(move || -> Result<_> {
        let store = std::sync::Arc::new(KafkaOffsetStore::start(
            &base,
            &spec,
            "tributary-test-offsets",
            Duration::from_secs(30),
        )?);
        let reader = ConnectorOffsetReader {
            connector: "src".into(),
            store: store.clone(),
        };
        let java_offset = reader.offset(&ours);
        // Rewind to line 10 (byte 70), as PATCH /offsets would.
        let rewind: OffsetMap = [("position".to_string(), json!(70))].into();
        store.put_all(vec![(offset_key("src", &p2), Some(offset_value(&rewind)))])?;
        Ok(java_offset)
    })
    .await??;
    ensure!(
        read.as_ref()
            .and_then(|o| o.get("position"))
            .and_then(Value::as_u64)
            == Some(size),
        "Tributary read {read:?}, Java committed position {size}"
    );
    wait_until(
        "Java reports the offset Tributary wrote",
        Duration::from_secs(60),
        || {
            let (h, u) = (http.clone(), url.clone());
            async move { Ok(offsets_of(h, u).await?.filter(|p| *p == 70)) }
        },
    )
    .await?;
    java.process.request_stop();
    Ok(())
}

/// A connector Tributary writes into a fresh config topic (config, task configs, commit) is
/// what a Java worker starting on that topic runs; a target state Tributary writes pauses it.
#[tokio::test]
async fn a_java_worker_runs_what_tributary_wrote_to_the_config_topic() -> Result<()> {
    use rdkafka::consumer::{BaseConsumer, Consumer};
    use serde_json::Value;
    use tributary_tests::installed::Installed;
    use tributary_tests::stack::java_connect::JavaConnect;
    use tributary_tests::wait_until;
    use tributary_worker::config_store::record::TargetState;
    use tributary_worker::config_store::store::ConfigStore;

    let stack = Devstack::shared()?;
    let dir = tempfile::tempdir()?;
    let group = unique_name("tributary-written");
    let input = dir.path().join("in.txt");
    std::fs::write(
        &input,
        (0..25).map(|i| format!("line {i}\n")).collect::<String>(),
    )?;
    let topic = stack.create_topic("tributary-written", 1, 1, &[]).await?;
    let config: BTreeMap<String, String> = [
        (
            "connector.class",
            "org.apache.kafka.connect.file.FileStreamSourceConnector",
        ),
        ("name", "src"),
        ("tasks.max", "1"),
        ("file", &input.display().to_string()),
        ("topic", &topic),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect();
    let task: BTreeMap<String, String> = [
        (
            "task.class",
            "org.apache.kafka.connect.file.FileStreamSourceTask",
        ),
        ("file", &input.display().to_string()),
        ("topic", &topic),
        ("batch.size", "2000"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect();
    let base = stack.kafka_config()?;
    let spec = TopicSpec::new("config.storage.topic", format!("{group}-configs"), 1, 1);
    let expected = config.clone();
    let mut store = tokio::task::spawn_blocking(move || -> Result<ConfigStore> {
        let mut store = ConfigStore::start(
            &base,
            &spec,
            "tributary-test-configs",
            Duration::from_secs(30),
        )?;
        store.put_connector("src", config, None)?;
        store.put_task_configs("src", vec![task])?;
        ensure!(store.snapshot().task_count("src") == 1 && store.dropped == 0);
        Ok(store)
    })
    .await??;

    let mut java = JavaConnect::start(
        &Installed::locate(),
        stack.kafka_bootstrap()?,
        &group,
        &dir.path().join("java"),
        1,
    )?;
    java.wait_ready(Duration::from_secs(180)).await?;
    let http = reqwest::Client::new();
    let url = java.url.clone();
    let status = |state: &'static str| {
        let (http, url) = (http.clone(), url.clone());
        async move {
            let r = http
                .get(format!("{url}/connectors/src/status"))
                .send()
                .await?;
            if !r.status().is_success() {
                return Ok(None);
            }
            let s: Value = r.json().await?;
            Ok((s["connector"]["state"] == state
                && s["tasks"]
                    .as_array()
                    .is_some_and(|t| t.len() == 1 && t[0]["state"] == state))
            .then_some(()))
        }
    };
    wait_until(
        "Java runs the connector Tributary wrote",
        Duration::from_secs(120),
        || status("RUNNING"),
    )
    .await?;
    let shown: BTreeMap<String, String> = http
        .get(format!("{url}/connectors/src/config"))
        .send()
        .await?
        .json()
        .await?;
    ensure!(shown == expected, "Java shows {shown:?}");
    // Its data arrives: all 25 lines.
    let watermarks: BaseConsumer = stack.kafka_config()?.create()?;
    let t = topic.clone();
    wait_until(
        "the file's lines in the topic",
        Duration::from_secs(60),
        || {
            let end = watermarks
                .fetch_watermarks(&t, 0, Duration::from_secs(5))
                .map(|w| w.1);
            async move { Ok((end? >= 25).then_some(())) }
        },
    )
    .await?;
    // A target state written by Tributary pauses it.
    store = tokio::task::spawn_blocking(move || -> Result<ConfigStore> {
        store.put_target_state("src", TargetState::Paused)?;
        Ok(store)
    })
    .await??;
    wait_until(
        "Java pauses on Tributary's target state",
        Duration::from_secs(60),
        || status("PAUSED"),
    )
    .await?;
    drop(store);
    java.process.request_stop();
    Ok(())
}
