//! The HTTP sink against a real HTTP endpoint (an axum server in this test, the external store)
//! and the devstack broker: batches arrive as JSON arrays with the configured header and bearer
//! token (read through a config provider); the server's first answers are 503, and the batches
//! are retried until they are taken; records the server refuses with 422 go to the dead letter
//! queue and every other record arrives.

use std::collections::BTreeSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::{Context, Result, ensure};
use axum::http::{HeaderMap, StatusCode};
use rdkafka::producer::{FutureProducer, FutureRecord};
use serde_json::{Value, json};
use tributary_tests::worker::StandaloneWorker;
use tributary_tests::{Devstack, unique_name, wait_until};

const WAIT: Duration = Duration::from_secs(120);

#[derive(Default)]
struct Seen {
    requests: usize,
    accepted: Vec<i64>,
    headers_ok: bool,
}

#[tokio::test(flavor = "multi_thread")]
async fn batches_are_retried_through_5xx_and_refused_records_go_to_the_dlq() -> Result<()> {
    let stack = Devstack::shared()?;
    let dir = tempfile::tempdir()?;
    let token = format!("tok-{}", unique_name("t"));
    let seen = Arc::new(Mutex::new(Seen::default()));

    // The endpoint: 503 for the first three requests; 422 for a batch holding an id divisible
    // by 13; otherwise 200 and the ids are kept.
    let state = (seen.clone(), token.clone());
    let app = axum::Router::new().route(
        "/ingest",
        axum::routing::post(move |headers: HeaderMap, body: axum::body::Bytes| {
            let (seen, token) = state.clone();
            async move {
                let mut s = seen.lock().expect("lock");
                s.requests += 1;
                if s.requests <= 3 {
                    return StatusCode::SERVICE_UNAVAILABLE;
                }
                let auth = headers.get("authorization").and_then(|v| v.to_str().ok());
                let team = headers.get("x-team").and_then(|v| v.to_str().ok());
                s.headers_ok = auth == Some(&format!("Bearer {token}")) && team == Some("data");
                let Ok(Value::Array(items)) = serde_json::from_slice::<Value>(&body) else {
                    return StatusCode::BAD_REQUEST;
                };
                let ids: Vec<i64> = items.iter().filter_map(|i| i["id"].as_i64()).collect();
                if ids.len() != items.len() || ids.iter().any(|id| id % 13 == 0) {
                    return StatusCode::UNPROCESSABLE_ENTITY;
                }
                s.accepted.extend(ids);
                StatusCode::OK
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    tokio::spawn(async move { axum::serve(listener, app).await });

    let topic = stack.create_topic("http", 1, 1, &[]).await?;
    let producer: FutureProducer = stack.kafka_config()?.create()?;
    for id in 1..=100i64 {
        let v = json!({"id": id, "name": format!("n{id}")}).to_string();
        producer
            .send(
                FutureRecord::to(&topic).key("k").payload(&v),
                Duration::from_secs(30),
            )
            .await
            .map_err(|(e, _)| e)?;
    }
    let secrets = dir.path().join("http.properties");
    std::fs::write(&secrets, format!("token={token}\n"))?;
    let props = format!(
        "bootstrap.servers={}
key.converter=org.apache.kafka.connect.storage.StringConverter
value.converter=org.apache.kafka.connect.json.JsonConverter
value.converter.schemas.enable=false
offset.flush.interval.ms=1000
config.providers=file
config.providers.file.class=org.apache.kafka.common.config.provider.FileConfigProvider
",
        stack.kafka_bootstrap()?
    );
    let mut worker = StandaloneWorker::start(dir.path(), "http", &props, &[])?;
    worker.wait_healthy(WAIT).await?;
    let dlq = unique_name("http-dlq");
    let name = unique_name("http-sink");
    let r = reqwest::Client::new()
        .post(format!("{}/connectors", worker.rest_url))
        .json(&json!({"name": name, "config": {
            "connector.class": "HttpSink", "topics": topic,
            "http.url": format!("http://{addr}/ingest"),
            "http.header.X-Team": "data",
            "auth.type": "bearer", "auth.token": format!("${{file:{}:token}}", secrets.display()),
            "batch.size": "10", "retry.backoff.ms": "50",
            "errors.tolerance": "all", "errors.deadletterqueue.topic.name": dlq,
            "errors.deadletterqueue.topic.replication.factor": "1"}}))
        .send()
        .await?;
    ensure!(r.status().as_u16() == 201, "create: {}", r.text().await?);
    // The token is a provider reference in the config, never the value.
    let config: Value = reqwest::get(format!("{}/connectors/{name}/config", worker.rest_url))
        .await?
        .json()
        .await?;
    ensure!(
        config["auth.token"]
            .as_str()
            .is_some_and(|t| t.starts_with("${file:"))
            && !config.to_string().contains(&token),
        "{config}"
    );

    let wanted: BTreeSet<i64> = (1..=100).filter(|id| id % 13 != 0).collect();
    wait_until("every acceptable record at the endpoint", WAIT, || async {
        let s = seen.lock().expect("lock");
        let got: BTreeSet<i64> = s.accepted.iter().copied().collect();
        Ok((got == wanted).then_some(()))
    })
    .await
    .with_context(|| worker.log())?;
    {
        let s = seen.lock().expect("lock");
        ensure!(s.headers_ok, "the header and bearer token did not arrive");
        ensure!(
            s.requests > 3 + 10,
            "{} requests: the 503s were not retried",
            s.requests
        );
        let unique: BTreeSet<i64> = s.accepted.iter().copied().collect();
        ensure!(
            unique.len() == s.accepted.len(),
            "duplicates: {:?}",
            s.accepted
        );
    }
    let refused: Vec<i64> = (1..=100).filter(|id| id % 13 == 0).collect();
    let ids = wait_until(
        "the refused records in the dead letter queue",
        WAIT,
        || async {
            let Ok(dead) = tributary_tests::operator::topic_records(stack, &dlq) else {
                return Ok(None);
            };
            let mut ids: Vec<i64> = dead.iter().filter_map(|(_, v)| v["id"].as_i64()).collect();
            ids.sort_unstable();
            Ok((ids.len() >= refused.len()).then_some(ids))
        },
    )
    .await
    .with_context(|| worker.log())?;
    ensure!(ids == refused, "DLQ holds {ids:?}, expected {refused:?}");
    worker.stop();
    Ok(())
}
