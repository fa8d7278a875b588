//! A Java worker's client settings, translated by tributary-worker, reach the real broker's
//! SASL_SSL listener: SCRAM through `sasl.jaas.config`, the CA through a PEM and a PKCS12
//! truststore (the two forms Java users bring).

use std::collections::BTreeMap;
use std::time::Duration;

use anyhow::{Result, ensure};
use futures::StreamExt;
use rdkafka::ClientConfig;
use rdkafka::consumer::{Consumer, StreamConsumer};
use rdkafka::message::Message;
use rdkafka::producer::{FutureProducer, FutureRecord};
use tributary_tests::{Devstack, unique_name};
use tributary_worker::config::client::{Role, client_settings};

fn librdkafka(settings: &BTreeMap<String, String>) -> ClientConfig {
    let mut c = ClientConfig::new();
    for (k, v) in settings {
        c.set(k, v);
    }
    c
}

async fn round_trip(stack: &Devstack, worker: BTreeMap<String, String>) -> Result<()> {
    let topic = stack.create_topic("client-config", 1, 1, &[]).await?;
    let producer_settings = client_settings(Role::Producer, &worker).map_err(anyhow::Error::msg)?;
    ensure!(
        producer_settings.warnings.is_empty(),
        "warnings: {:?}",
        producer_settings.warnings
    );
    let producer: FutureProducer = librdkafka(&producer_settings.librdkafka).create()?;
    for i in 0..100 {
        let payload = format!("r{i}");
        producer
            .send(
                FutureRecord::to(&topic).key("k").payload(&payload),
                Duration::from_secs(60),
            )
            .await
            .map_err(|(e, _)| e)?;
    }
    let mut consumer_worker = worker.clone();
    consumer_worker.insert("consumer.group.id".into(), unique_name("client-config"));
    consumer_worker.insert("consumer.auto.offset.reset".into(), "earliest".into());
    let consumer_settings =
        client_settings(Role::Consumer, &consumer_worker).map_err(anyhow::Error::msg)?;
    let consumer: StreamConsumer = librdkafka(&consumer_settings.librdkafka).create()?;
    consumer.subscribe(&[&topic])?;
    let mut stream = consumer.stream();
    for i in 0..100 {
        let msg = tokio::time::timeout(Duration::from_secs(120), stream.next())
            .await?
            .ok_or_else(|| anyhow::anyhow!("the consumer stream ended"))??;
        ensure!(
            msg.payload() == Some(format!("r{i}").as_bytes()),
            "record {i} out of order"
        );
    }
    Ok(())
}

fn java_worker(stack: &Devstack) -> Result<BTreeMap<String, String>> {
    let jaas = format!(
        "org.apache.kafka.common.security.scram.ScramLoginModule required username=\"{}\" password=\"{}\";",
        stack.var("TRIBUTARY_KAFKA_SASL_USERNAME")?,
        stack.kafka_sasl_password()?
    );
    Ok([
        (
            "bootstrap.servers",
            stack.var("TRIBUTARY_KAFKA_SASL_BOOTSTRAP")?.to_string(),
        ),
        ("security.protocol", "SASL_SSL".to_string()),
        ("sasl.mechanism", "SCRAM-SHA-512".to_string()),
        ("sasl.jaas.config", jaas),
        (
            "producer.key.serializer",
            "org.apache.kafka.common.serialization.ByteArraySerializer".to_string(),
        ),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .collect())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scram_with_a_pem_truststore() -> Result<()> {
    let stack = Devstack::shared()?;
    let mut worker = java_worker(stack)?;
    worker.insert("ssl.truststore.type".into(), "PEM".into());
    worker.insert(
        "ssl.truststore.location".into(),
        stack.var("TRIBUTARY_KAFKA_CA_CERT")?.into(),
    );
    round_trip(stack, worker).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scram_with_a_pkcs12_truststore() -> Result<()> {
    let stack = Devstack::shared()?;
    let dir = tempfile::tempdir()?;
    let p12 = dir.path().join("truststore.p12");
    let out = std::process::Command::new("openssl")
        .args([
            "pkcs12",
            "-export",
            "-nokeys",
            "-passout",
            "pass:changeit",
            "-in",
        ])
        .arg(stack.var("TRIBUTARY_KAFKA_CA_CERT")?)
        .arg("-out")
        .arg(&p12)
        .output()?;
    ensure!(
        out.status.success(),
        "openssl: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let mut worker = java_worker(stack)?;
    worker.insert("ssl.truststore.type".into(), "PKCS12".into());
    worker.insert("ssl.truststore.location".into(), p12.display().to_string());
    worker.insert("ssl.truststore.password".into(), "changeit".into());
    round_trip(stack, worker.clone()).await?;

    worker.insert("ssl.truststore.password".into(), "wrong".into());
    match client_settings(Role::Producer, &worker) {
        Ok(_) => anyhow::bail!("a wrong truststore password was accepted"),
        Err(err) => ensure!(err.contains("wrong ssl.truststore.password"), "{err}"),
    }
    Ok(())
}
