use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::{Result, bail};
use futures::StreamExt;
use rdkafka::consumer::{BaseConsumer, Consumer, StreamConsumer};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::Message;
use rdkafka::producer::{
    BaseProducer, DeliveryResult, FutureProducer, FutureRecord, Producer, ProducerContext,
};
use rdkafka::{ClientConfig, ClientContext};
use tributary_tests::{Devstack, unique_name, wait_until};

const RECORDS: usize = 10_000;

/// Produces `count` records numbered from `first` with acks=all and idempotence, failing on the
/// first record the cluster did not take.
async fn produce(config: &ClientConfig, topic: &str, first: usize, count: usize) -> Result<()> {
    let producer: FutureProducer = config
        .clone()
        .set("acks", "all")
        .set("enable.idempotence", "true")
        .set("linger.ms", "5")
        .set("message.timeout.ms", "120000")
        .create()?;
    let sends = (first..first + count).map(|i| {
        let key = i.to_string();
        let payload = format!("record-{i}");
        let producer = &producer;
        async move {
            producer
                .send(
                    FutureRecord::to(topic).key(&key).payload(&payload),
                    Duration::from_secs(120),
                )
                .await
                .map_err(|(e, _)| anyhow::anyhow!("record {i} was not acknowledged: {e}"))
        }
    });
    let results: Vec<_> = futures::stream::iter(sends)
        .buffer_unordered(1000)
        .collect()
        .await;
    for r in results {
        r?;
    }
    Ok(())
}

/// Reads the topic from the start until `count` distinct records arrived, checking each one.
async fn consume(config: &ClientConfig, topic: &str, count: usize) -> Result<()> {
    let consumer: StreamConsumer = config
        .clone()
        .set("group.id", unique_name("smoke-group"))
        .set("auto.offset.reset", "earliest")
        .set("enable.auto.commit", "false")
        .create()?;
    consumer.subscribe(&[topic])?;
    let mut seen = BTreeMap::new();
    let mut stream = consumer.stream();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(180);
    let mut last_error = None;
    while seen.len() < count {
        let msg = match tokio::time::timeout_at(deadline, stream.next()).await {
            Ok(Some(Ok(m))) => m,
            // librdkafka reports a dead broker of the bootstrap list as an error and carries on.
            Ok(Some(Err(e))) => {
                last_error = Some(e);
                continue;
            }
            Ok(None) => bail!("consumer stream ended"),
            Err(_) => bail!(
                "only {} of {count} records arrived within 180 s (last error: {last_error:?})",
                seen.len()
            ),
        };
        let key: usize = std::str::from_utf8(msg.key().unwrap_or_default())?.parse()?;
        let payload = std::str::from_utf8(msg.payload().unwrap_or_default())?.to_string();
        assert_eq!(payload, format!("record-{key}"), "payload of record {key}");
        seen.insert(key, ());
    }
    assert_eq!(
        seen.keys().copied().collect::<Vec<_>>(),
        (0..count).collect::<Vec<_>>()
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ten_thousand_records_through_a_single_node() -> Result<()> {
    let stack = Devstack::shared()?;
    let topic = stack.create_topic("smoke-single", 3, 1, &[]).await?;
    let config = stack.kafka_config()?;
    produce(&config, &topic, 0, RECORDS).await?;
    consume(&config, &topic, RECORDS).await?;
    // The broker logs through log4j2 (an SLF4J binding is on the classpath) and is the pinned one.
    let version = stack.kafka_version()?;
    let log = stack.component_log("kafka-1")?;
    assert!(
        log.contains(&format!("Kafka version: {version}")),
        "kafka-1.log lacks the version line"
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_compatibility_broker_is_kafka_3_and_takes_records() -> Result<()> {
    let stack = tokio::task::spawn_blocking(|| {
        Devstack::start(&["--kafka-compat", "--no-kube", "--no-postgres"])
    })
    .await??;
    let version = stack.kafka_version()?.to_string();
    assert!(version.starts_with("3."), "compat broker version {version}");
    assert!(
        stack
            .component_log("kafka-1")?
            .contains(&format!("Kafka version: {version}"))
    );
    for (listener, config) in [
        ("PLAINTEXT", stack.kafka_config()?),
        (
            "SASL_SSL",
            stack.kafka_sasl_config(stack.kafka_sasl_password()?)?,
        ),
    ] {
        let topic = stack
            .create_topic(
                &format!("smoke-compat-{}", listener.to_lowercase().replace('_', "-")),
                2,
                1,
                &[],
            )
            .await?;
        produce(&config, &topic, 0, 1000).await?;
        consume(&config, &topic, 1000).await?;
    }
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ten_thousand_records_through_sasl_ssl_with_scram() -> Result<()> {
    let stack = Devstack::shared()?;
    let topic = stack.create_topic("smoke-sasl", 3, 1, &[]).await?;
    let config = stack.kafka_sasl_config(stack.kafka_sasl_password()?)?;
    produce(&config, &topic, 0, RECORDS).await?;
    consume(&config, &topic, RECORDS).await
}

/// Records the errors librdkafka reports outside any request.
#[derive(Clone, Default)]
struct ErrorLog(Arc<Mutex<Vec<(KafkaError, String)>>>);

impl ClientContext for ErrorLog {
    fn error(&self, error: KafkaError, reason: &str) {
        if let Ok(mut v) = self.0.lock() {
            v.push((error, reason.to_string()));
        }
    }
}
impl ProducerContext for ErrorLog {
    type DeliveryOpaque = ();
    fn delivery(&self, _: &DeliveryResult<'_>, _: ()) {}
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wrong_scram_password_is_an_authentication_error() -> Result<()> {
    let stack = Devstack::shared()?;
    let log = ErrorLog::default();
    let producer: BaseProducer<ErrorLog> = stack
        .kafka_sasl_config("not-the-password")?
        .create_with_context(log.clone())?;
    let metadata = tokio::task::spawn_blocking(move || {
        let md = producer
            .client()
            .fetch_metadata(None, Duration::from_secs(10))
            .map(|_| ());
        // Errors reach the context only while the client is polled.
        for _ in 0..100 {
            producer.poll(Duration::from_millis(100));
        }
        md
    })
    .await?;
    let metadata_error = metadata.err().map(|e| e.to_string());
    assert!(
        metadata_error.is_some(),
        "metadata must not be readable with a wrong password"
    );
    let errors = log
        .0
        .lock()
        .map_err(|_| anyhow::anyhow!("poisoned"))?
        .clone();
    let auth = errors
        .iter()
        .find(|(e, _)| e.rdkafka_error_code() == Some(RDKafkaErrorCode::Authentication));
    match auth {
        Some((_, reason)) => assert!(
            reason.contains("SASL authentication error"),
            "unexpected reason: {reason}"
        ),
        None => bail!(
            "no authentication error reported; metadata error {metadata_error:?}, errors {errors:?}"
        ),
    }
    // The right password on the same listener works, so the failure was the password.
    let good: BaseConsumer = stack
        .kafka_sasl_config(stack.kafka_sasl_password()?)?
        .create()?;
    tokio::task::spawn_blocking(move || good.fetch_metadata(None, Duration::from_secs(30)))
        .await??;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_nodes_keep_taking_acks_all_records_when_one_is_killed() -> Result<()> {
    let stack = tokio::task::spawn_blocking(|| {
        Devstack::start(&["--kafka-nodes", "3", "--no-kube", "--no-postgres"])
    })
    .await??;
    assert_eq!(stack.kafka_nodes()?, 3);
    let topic = stack
        .create_topic("smoke-three", 3, 3, &[("min.insync.replicas", "2")])
        .await?;
    let config = stack.kafka_config()?;
    produce(&config, &topic, 0, RECORDS / 2).await?;

    let pid = stack.kafka_node_pid(2)?;
    stack.kill_component("kafka-2")?;
    wait_until(
        "kafka-2 to be gone",
        Duration::from_secs(30),
        || async move {
            let alive = nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), None).is_ok()
                && !std::fs::read_to_string(format!("/proc/{pid}/stat"))
                    .unwrap_or_default()
                    .contains(") Z ");
            Ok((!alive).then_some(()))
        },
    )
    .await?;

    produce(&config, &topic, RECORDS / 2, RECORDS / 2).await?;
    consume(&config, &topic, RECORDS).await
}
