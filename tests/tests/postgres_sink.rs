//! The PostgreSQL sink against the devstack's Kafka and PostgreSQL: upserts converge to the
//! latest value per key and tombstones delete (three versions of 60 keys, interleaved); the
//! table `auto.create` makes has the expected columns and key; `auto.evolve` adds a new optional
//! field's column; and with `errors.tolerance=all` the rows a table constraint refuses go to the
//! dead letter queue while the rest are written; insert mode's COPY writes every type exactly as
//! the UNNEST statements do, escapes included; connections cut while batches are in flight lose
//! none of them.

use std::collections::BTreeMap;
use std::time::Duration;

use anyhow::{Context, Result, ensure};
use rdkafka::producer::{FutureProducer, FutureRecord};
use serde_json::json;
use tributary_tests::worker::StandaloneWorker;
use tributary_tests::{Devstack, unique_name, wait_until};

const WAIT: Duration = Duration::from_secs(120);

const KEY_SCHEMA: &str = r#"{"type":"struct","name":"key","optional":false,"fields":[{"field":"id","type":"int64","optional":false}]}"#;

fn key(id: i64) -> String {
    format!(r#"{{"schema":{KEY_SCHEMA},"payload":{{"id":{id}}}}}"#)
}

/// A value of version `v` for `id`; with `email`, the evolved schema.
fn value(id: i64, v: i64, email: bool) -> String {
    let extra_field = if email {
        r#",{"field":"email","type":"string","optional":true}"#
    } else {
        ""
    };
    let extra_value = if email {
        format!(r#","email":"u{id}@example.com""#)
    } else {
        String::new()
    };
    // price: unscaled id*100+v at scale 2, as big-endian bytes in base64.
    let unscaled = id * 100 + v;
    use base64::Engine;
    let price = base64::engine::general_purpose::STANDARD.encode(unscaled.to_be_bytes());
    format!(
        r#"{{"schema":{{"type":"struct","name":"user","optional":false,"fields":[
{{"field":"id","type":"int64","optional":false}},
{{"field":"name","type":"string","optional":true}},
{{"field":"score","type":"int32","optional":false}},
{{"field":"price","type":"bytes","name":"org.apache.kafka.connect.data.Decimal","version":1,"parameters":{{"scale":"2"}},"optional":false}},
{{"field":"updated","type":"int64","name":"org.apache.kafka.connect.data.Timestamp","version":1,"optional":false}},
{{"field":"active","type":"boolean","optional":false}},
{{"field":"data","type":"bytes","optional":true}}{extra_field}]}},
"payload":{{"id":{id},"name":"user {id} v{v}","score":{score},"price":"{price}","updated":{updated},"active":{active},"data":"AQI="{extra_value}}}}}"#,
        score = id as i32 * 10 + v as i32,
        updated = 1_700_000_000_000i64 + id * 1000 + v,
        active = v % 2 == 0,
    )
}

async fn produce(
    stack: &Devstack,
    topic: &str,
    records: &[(String, Option<String>)],
) -> Result<()> {
    let producer: FutureProducer = stack.kafka_config()?.create()?;
    for (k, v) in records {
        let mut r = FutureRecord::to(topic).key(k.as_str());
        if let Some(v) = v {
            r = r.payload(v.as_str());
        }
        producer
            .send(r, Duration::from_secs(30))
            .await
            .map_err(|(e, _)| e)?;
    }
    Ok(())
}

fn worker_props(stack: &Devstack) -> Result<String> {
    Ok(format!(
        "bootstrap.servers={}
key.converter=org.apache.kafka.connect.json.JsonConverter
value.converter=org.apache.kafka.connect.json.JsonConverter
offset.flush.interval.ms=1000
",
        stack.kafka_bootstrap()?
    ))
}

fn jdbc_url(stack: &Devstack) -> Result<String> {
    Ok(format!(
        "jdbc:postgresql://{}:{}/{}",
        stack.var("TRIBUTARY_PG_HOST")?,
        stack.var("TRIBUTARY_PG_PORT")?,
        stack.var("TRIBUTARY_PG_DATABASE")?
    ))
}

#[tokio::test(flavor = "multi_thread")]
async fn upserts_converge_tombstones_delete_and_tables_are_created_and_evolved() -> Result<()> {
    let stack = Devstack::shared()?;
    let pg = stack.postgres().await?;
    let dir = tempfile::tempdir()?;
    let topic = stack.create_topic("pgsink", 3, 1, &[]).await?;
    let table = topic.replace('-', "_");
    // Three versions of 60 keys, interleaved; then tombstones for every tenth key.
    let mut records = Vec::new();
    for v in 0..3 {
        for id in 0..60 {
            records.push((key(id), Some(value(id, v, false))));
        }
    }
    for id in (0..60).step_by(10) {
        records.push((key(id), None));
    }
    produce(stack, &topic, &records).await?;

    let mut worker = StandaloneWorker::start(dir.path(), "pgsink", &worker_props(stack)?, &[])?;
    worker.wait_healthy(WAIT).await?;
    let http = reqwest::Client::new();
    let name = unique_name("pg-upsert");
    let r = http
        .post(format!("{}/connectors", worker.rest_url))
        .json(&json!({"name": name, "config": {
            "connector.class": "dev.tributary.connect.postgres.PostgresSinkConnector",
            "topics": topic, "tasks.max": "2",
            "connection.url": jdbc_url(stack)?,
            "connection.user": stack.var("TRIBUTARY_PG_USER")?,
            "connection.password": stack.var("TRIBUTARY_PG_PASSWORD")?,
            "insert.mode": "upsert", "pk.mode": "record_key", "pk.fields": "id",
            "auto.create": "true", "auto.evolve": "true", "delete.enabled": "true",
            "table.name.format": table, "batch.size": "25"}}))
        .send()
        .await?;
    ensure!(r.status().as_u16() == 201, "create: {}", r.text().await?);

    let expected: BTreeMap<i64, String> = (0..60)
        .filter(|id| id % 10 != 0)
        .map(|id| (id, format!("user {id} v2")))
        .collect();
    let query = format!(
        r#"SELECT id, name, score, price::text, updated::text, active, data FROM "{table}" ORDER BY id"#
    );
    wait_until(
        "the table to hold the latest value of each live key",
        WAIT,
        || async {
            let Ok(rows) = pg.query(query.as_str(), &[]).await else {
                return Ok(None);
            };
            let got: BTreeMap<i64, String> = rows.iter().map(|r| (r.get(0), r.get(1))).collect();
            Ok((got == expected).then_some(()))
        },
    )
    .await
    .with_context(|| worker.log())?;
    let rows = pg.query(query.as_str(), &[]).await?;
    for r in &rows {
        let id: i64 = r.get(0);
        let score: i32 = r.get(2);
        let price: String = r.get(3);
        let updated: String = r.get(4);
        let active: bool = r.get(5);
        let data: Vec<u8> = r.get(6);
        ensure!(score == id as i32 * 10 + 2, "{id}: score {score}");
        ensure!(
            price == format!("{}.{:02}", (id * 100 + 2) / 100, (id * 100 + 2) % 100),
            "{id}: price {price}"
        );
        ensure!(
            updated.starts_with("2023-11-14 22:1"),
            "{id}: updated {updated}"
        );
        ensure!(active, "{id}: version 2 is active");
        ensure!(data == [1, 2], "{id}: data {data:?}");
    }
    // What auto.create made.
    let columns = pg
        .query(
            "SELECT column_name::text, data_type::text, is_nullable::text FROM information_schema.columns WHERE table_name = $1 ORDER BY ordinal_position",
            &[&table],
        )
        .await?;
    let columns: Vec<(String, String, String)> = columns
        .iter()
        .map(|r| (r.get(0), r.get(1), r.get(2)))
        .collect();
    let want = [
        ("id", "bigint", "NO"),
        ("name", "text", "YES"),
        ("score", "integer", "NO"),
        ("price", "numeric", "NO"),
        ("updated", "timestamp without time zone", "NO"),
        ("active", "boolean", "NO"),
        ("data", "bytea", "YES"),
    ];
    ensure!(
        columns
            .iter()
            .map(|(a, b, c)| (a.as_str(), b.as_str(), c.as_str()))
            .collect::<Vec<_>>()
            == want,
        "columns: {columns:?}"
    );
    let pk = pg
        .query(
            "SELECT a.attname::text FROM pg_index i JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = ANY(i.indkey) WHERE i.indrelid = ($1::text)::regclass AND i.indisprimary",
            &[&format!("\"{table}\"")],
        )
        .await?;
    ensure!(
        pk.len() == 1 && pk[0].get::<_, String>(0) == "id",
        "primary key"
    );

    // auto.evolve: a new optional field becomes a column; the deleted keys come back.
    let evolved: Vec<_> = (0..60)
        .step_by(10)
        .map(|id| (key(id), Some(value(id, 3, true))))
        .collect();
    produce(stack, &topic, &evolved).await?;
    wait_until("the evolved rows", WAIT, || async {
        let Ok(rows) = pg
            .query(
                format!(r#"SELECT id, email FROM "{table}" WHERE email IS NOT NULL ORDER BY id"#)
                    .as_str(),
                &[],
            )
            .await
        else {
            return Ok(None);
        };
        Ok((rows.len() == 6).then_some(rows))
    })
    .await
    .with_context(|| worker.log())?;
    let total: i64 = pg
        .query_one(format!(r#"SELECT count(*) FROM "{table}""#).as_str(), &[])
        .await?
        .get(0);
    ensure!(total == 60, "{total} rows after the deleted keys came back");
    worker.stop();
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn rows_the_table_refuses_go_to_the_dead_letter_queue() -> Result<()> {
    let stack = Devstack::shared()?;
    let pg = stack.postgres().await?;
    let dir = tempfile::tempdir()?;
    let topic = stack.create_topic("pgdlq", 1, 1, &[]).await?;
    let table = topic.replace('-', "_");
    pg.batch_execute(&format!(
        r#"CREATE TABLE "{table}" (id BIGINT PRIMARY KEY, name TEXT, score INT NOT NULL CHECK (score % 7 <> 3),
           price NUMERIC, updated TIMESTAMP, active BOOLEAN, data BYTEA)"#
    ))
    .await?;
    // Scores id*10: those with score % 7 == 3 (ids 3, 10, 17, …) break the CHECK.
    let records: Vec<_> = (0..40)
        .map(|id| (key(id), Some(value(id, 0, false))))
        .collect();
    produce(stack, &topic, &records).await?;
    let refused: Vec<i64> = (0..40).filter(|id| (id * 10) % 7 == 3).collect();
    let dlq = unique_name("pgdlq-dead");
    let mut worker = StandaloneWorker::start(dir.path(), "pgdlq", &worker_props(stack)?, &[])?;
    worker.wait_healthy(WAIT).await?;
    let r = reqwest::Client::new()
        .post(format!("{}/connectors", worker.rest_url))
        .json(&json!({"name": unique_name("pg-insert"), "config": {
            "connector.class": "PostgresSink", "topics": topic,
            "connection.url": stack.var("TRIBUTARY_PG_URL")?,
            "insert.mode": "insert", "table.name.format": table,
            "errors.tolerance": "all", "errors.deadletterqueue.topic.name": dlq,
            "errors.deadletterqueue.topic.replication.factor": "1",
            "errors.deadletterqueue.context.headers.enable": "true",
            // Puts of 4: while one with a refused row fails, the next is already queued behind
            // it, and must be written once, after it (a second write of a row would be refused
            // by the key and show up in the DLQ).
            "consumer.override.max.poll.records": "4"}}))
        .send()
        .await?;
    ensure!(r.status().as_u16() == 201, "create: {}", r.text().await?);
    let written = 40 - refused.len() as i64;
    wait_until("the rows the table takes", WAIT, || async {
        let n: i64 = match pg
            .query_one(format!(r#"SELECT count(*) FROM "{table}""#).as_str(), &[])
            .await
        {
            Ok(r) => r.get(0),
            Err(_) => return Ok(None),
        };
        Ok((n == written).then_some(()))
    })
    .await
    .with_context(|| worker.log())?;
    let ids = wait_until(
        "the refused rows in the dead letter queue",
        WAIT,
        || async {
            let Ok(dead) = tributary_tests::operator::topic_records(stack, &dlq) else {
                return Ok(None);
            };
            let mut ids: Vec<i64> = dead
                .iter()
                .filter_map(|(_, v)| v["payload"]["id"].as_i64())
                .collect();
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

/// A value of every type the sink stores, with texts that COPY's text format gives a meaning to
/// (tab, newline, carriage return, backslash, `\N`, `\.`) in strings, arrays and bytes.
fn every_type_value(id: i64) -> String {
    use base64::Engine;
    let b64 = |b: &[u8]| base64::engine::general_purpose::STANDARD.encode(b);
    let tricky = [
        "plain",
        "tab\there",
        "line\nbreak",
        "cr\rhere",
        "back\\slash",
        "\\N",
        "\\.",
        "quote\"s",
        "comma,{brace}",
        "café 😀",
        "",
    ];
    let s = tricky[id as usize % tricky.len()];
    let null = id % 5 == 4;
    let opt = |v: String| if null { "null".to_string() } else { v };
    let schema = r#"{"type":"struct","name":"every","optional":false,"fields":[
{"field":"id","type":"int64","optional":false},
{"field":"i8","type":"int8","optional":true},
{"field":"i16","type":"int16","optional":true},
{"field":"i32","type":"int32","optional":true},
{"field":"f32","type":"float","optional":true},
{"field":"f64","type":"double","optional":true},
{"field":"flag","type":"boolean","optional":true},
{"field":"s","type":"string","optional":true},
{"field":"bin","type":"bytes","optional":true},
{"field":"dec","type":"bytes","name":"org.apache.kafka.connect.data.Decimal","version":1,"parameters":{"scale":"3"},"optional":true},
{"field":"day","type":"int32","name":"org.apache.kafka.connect.data.Date","version":1,"optional":true},
{"field":"tod","type":"int32","name":"org.apache.kafka.connect.data.Time","version":1,"optional":true},
{"field":"at","type":"int64","name":"org.apache.kafka.connect.data.Timestamp","version":1,"optional":true},
{"field":"words","type":"array","items":{"type":"string","optional":true},"optional":true},
{"field":"nums","type":"array","items":{"type":"int32","optional":true},"optional":true}]}"#;
    let payload = format!(
        r#"{{"id":{id},"i8":{},"i16":{},"i32":{},"f32":{},"f64":{},"flag":{},"s":{},"bin":{},"dec":{},"day":{},"tod":{},"at":{},"words":{},"nums":{}}}"#,
        opt(((id % 256) - 128).to_string()),
        opt((id * 7 - 30000).to_string()),
        opt((id * 1_000_003).to_string()),
        opt(format!("{}.25", id)),
        opt(format!("{}.000123e10", -id)),
        opt((id % 3 == 0).to_string()),
        opt(serde_json::to_string(s).unwrap_or_default()),
        opt(format!(
            "\"{}\"",
            b64(&[0, b'\t', b'\n', b'\\', id as u8, 255])
        )),
        opt(format!("\"{}\"", b64(&(id * 1_000_001 - 7).to_be_bytes()))),
        opt((id * 13 - 1000).to_string()),
        opt((id * 1_234_567 % 86_400_000).to_string()),
        opt((1_600_000_000_000i64 + id * 3_600_123).to_string()),
        opt(serde_json::to_string(&[Some(s), None, Some("x\ty")]).unwrap_or_default()),
        opt(format!("[{id},null,-1]")),
    );
    format!(r#"{{"schema":{schema},"payload":{payload}}}"#)
}

/// Insert mode writes through COPY, the other modes through UNNEST statements: the same records
/// of every type land the same in both, and the texts COPY's format escapes come back intact.
#[tokio::test(flavor = "multi_thread")]
async fn insert_mode_copy_writes_every_type_as_the_statements_do() -> Result<()> {
    const ROWS: i64 = 600;
    let stack = Devstack::shared()?;
    let pg = stack.postgres().await?;
    let dir = tempfile::tempdir()?;
    let topic = stack.create_topic("pgcopy", 1, 1, &[]).await?;
    let records: Vec<_> = (0..ROWS)
        .map(|id| (key(id), Some(every_type_value(id))))
        .collect();
    produce(stack, &topic, &records).await?;
    let mut worker = StandaloneWorker::start(dir.path(), "pgcopy", &worker_props(stack)?, &[])?;
    worker.wait_healthy(WAIT).await?;
    let base = topic.replace('-', "_");
    let (copied, upserted) = (format!("{base}_copy"), format!("{base}_upsert"));
    for (table, mode) in [(&copied, "insert"), (&upserted, "upsert")] {
        let mut config = json!({
            "connector.class": "PostgresSink", "topics": topic,
            "connection.url": stack.var("TRIBUTARY_PG_URL")?,
            "insert.mode": mode, "auto.create": "true", "table.name.format": table,
            "batch.size": "250",
            "consumer.override.auto.offset.reset": "earliest"});
        if mode == "upsert" {
            config["pk.mode"] = json!("record_key");
        }
        let r = reqwest::Client::new()
            .post(format!("{}/connectors", worker.rest_url))
            .json(&json!({"name": unique_name(&format!("pg-{mode}")), "config": config}))
            .send()
            .await?;
        ensure!(r.status().as_u16() == 201, "create: {}", r.text().await?);
    }
    for table in [&copied, &upserted] {
        wait_until(&format!("{ROWS} rows in {table}"), WAIT, || async {
            let n: i64 = match pg
                .query_one(format!(r#"SELECT count(*) FROM "{table}""#).as_str(), &[])
                .await
            {
                Ok(r) => r.get(0),
                Err(_) => return Ok(None),
            };
            Ok((n == ROWS).then_some(()))
        })
        .await
        .with_context(|| worker.log())?;
    }
    let columns = "id, i8, i16, i32, f32, f64, flag, s, bin, dec, day, tod, at, words, nums";
    let differ: i64 = pg
        .query_one(
            format!(
                r#"SELECT count(*) FROM ((SELECT {columns} FROM "{copied}" EXCEPT ALL SELECT {columns} FROM "{upserted}")
                   UNION ALL (SELECT {columns} FROM "{upserted}" EXCEPT ALL SELECT {columns} FROM "{copied}")) d"#
            )
            .as_str(),
            &[],
        )
        .await?
        .get(0);
    ensure!(differ == 0, "{differ} rows differ between COPY and UNNEST");
    // Every batch went in whole: none was refused and rewritten row by row.
    ensure!(
        !worker.log().contains("row by row"),
        "a batch was refused: {}",
        worker.log()
    );
    // And the texts are the records' own.
    let rows = pg
        .query(
            format!(r#"SELECT id, s, encode(bin, 'hex'), array_to_string(words, '|', '~') FROM "{copied}" WHERE s IS NOT NULL ORDER BY id LIMIT 11"#)
                .as_str(),
            &[],
        )
        .await?;
    ensure!(rows.len() == 11, "{} rows with texts", rows.len());
    for row in rows {
        let id: i64 = row.get(0);
        let want: serde_json::Value = serde_json::from_str(&every_type_value(id))?;
        let s = want["payload"]["s"].as_str().unwrap_or_default();
        ensure!(
            row.get::<_, String>(1) == s,
            "id {id}: s is {:?}, sent {s:?}",
            row.get::<_, String>(1)
        );
        let bin = format!("00090a5c{:02x}ff", id as u8);
        ensure!(
            row.get::<_, String>(2) == bin,
            "id {id}: bin {}",
            row.get::<_, String>(2)
        );
        let words = format!("{s}|~|x\ty");
        ensure!(
            row.get::<_, String>(3) == words,
            "id {id}: words {:?}",
            row.get::<_, String>(3)
        );
    }
    worker.stop();
    Ok(())
}

/// The sink's connection is cut again and again while it writes (each batch's transaction runs
/// while the next is converted): the batches in flight are written again, none is lost, the
/// task stays RUNNING, and the table ends with the latest value of every key.
#[tokio::test(flavor = "multi_thread")]
async fn cut_connections_lose_no_batch_in_flight() -> Result<()> {
    const KEYS: i64 = 20_000;
    let stack = Devstack::shared()?;
    let pg = stack.postgres().await?;
    let dir = tempfile::tempdir()?;
    let topic = stack.create_topic("pgcut", 1, 1, &[]).await?;
    let table = topic.replace('-', "_");
    // Every statement takes 100 ms more: the write lasts seconds whatever the machine, so the
    // cuts land while batches are in flight.
    pg.batch_execute(&format!(
        r#"CREATE TABLE "{table}" (id BIGINT PRIMARY KEY, name TEXT, score INT NOT NULL, price NUMERIC,
           updated TIMESTAMP, active BOOLEAN, data BYTEA);
           CREATE FUNCTION "{table}_slow"() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN PERFORM pg_sleep(0.1); RETURN NULL; END $$;
           CREATE TRIGGER slow AFTER INSERT OR UPDATE ON "{table}" FOR EACH STATEMENT EXECUTE FUNCTION "{table}_slow"()"#
    ))
    .await?;
    let producer: FutureProducer = stack.kafka_config()?.set("linger.ms", "20").create()?;
    let sends: Vec<_> = (0..KEYS)
        .map(|id| {
            let (k, v) = (key(id), value(id, 1, false));
            let producer = producer.clone();
            let topic = topic.clone();
            async move {
                producer
                    .send(
                        FutureRecord::to(&topic).key(&k).payload(&v),
                        Duration::from_secs(30),
                    )
                    .await
                    .map_err(|(e, _)| e)
            }
        })
        .collect();
    for r in futures::future::join_all(sends).await {
        r?;
    }
    let mut worker = StandaloneWorker::start(dir.path(), "pgcut", &worker_props(stack)?, &[])?;
    worker.wait_healthy(WAIT).await?;
    let name = unique_name("pg-cut");
    let r = reqwest::Client::new()
        .post(format!("{}/connectors", worker.rest_url))
        .json(&json!({"name": name, "config": {
            "connector.class": "PostgresSink", "topics": topic,
            "connection.url": stack.var("TRIBUTARY_PG_URL")?,
            "insert.mode": "upsert", "pk.mode": "record_key", "auto.create": "true",
            "table.name.format": table, "batch.size": "200",
            "consumer.override.max.poll.records": "200"}}))
        .send()
        .await?;
    ensure!(r.status().as_u16() == 201, "create: {}", r.text().await?);
    let count = || async {
        pg.query_one(format!(r#"SELECT count(*) FROM "{table}""#).as_str(), &[])
            .await
            .map(|r| r.get::<_, i64>(0))
            .unwrap_or(0)
    };
    // Eight cuts 700 ms apart, while the write (≥ 10 s with the trigger) goes on: each may land
    // in a transaction; between them the sink has time to reconnect and move on.
    let mut cuts = 0;
    for _ in 0..8 {
        if count().await >= KEYS {
            break;
        }
        tokio::time::sleep(Duration::from_millis(700)).await;
        let cut = pg
            .query(
                // This test's sink only: its last statement names the table.
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = 'tributary-postgres-sink' AND strpos(query, $1) > 0",
                &[&table],
            )
            .await?;
        cuts += cut.len();
    }
    ensure!(
        cuts >= 3,
        "only {cuts} connections cut: the sink finished too soon"
    );
    wait_until("every key written", WAIT, || async {
        Ok((count().await == KEYS).then_some(()))
    })
    .await
    .with_context(|| worker.log())?;
    let wrong: i64 = pg
        .query_one(
            format!(r#"SELECT count(*) FROM "{table}" WHERE score <> id * 10 + 1 OR name <> 'user ' || id || ' v1'"#).as_str(),
            &[],
        )
        .await?
        .get(0);
    ensure!(wrong == 0, "{wrong} rows hold other values");
    let status: serde_json::Value =
        reqwest::get(format!("{}/connectors/{name}/status", worker.rest_url))
            .await?
            .json()
            .await?;
    ensure!(
        status["tasks"][0]["state"] == "RUNNING",
        "after {cuts} cuts: {status}"
    );
    eprintln!("{cuts} connections cut");
    worker.stop();
    Ok(())
}
