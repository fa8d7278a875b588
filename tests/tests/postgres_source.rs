//! The PostgreSQL source against the devstack's PostgreSQL and Kafka, through a standalone
//! worker and the JsonConverter:
//! - every listed type arrives with its Connect schema and value (NULLs included), and
//!   numeric NaN follows `numeric.mapping` (a clear failure naming the fix, or FLOAT64 NaN);
//! - each mode reads what it promises (bulk: the whole table each pass; incrementing: new rows;
//!   timestamp and timestamp+incrementing: new and updated rows, each version exactly once in a
//!   crash-free run, also across rows sharing a timestamp over batch boundaries), resumes after
//!   an orderly restart without repeating anything, and after kill -9 repeats at most and loses
//!   nothing;
//! - tables created after the connector started are found and spread over the tasks, and a
//!   dropped one leaves them;
//! - a table of every type goes table → topic → table (the PostgreSQL sink) in each mode, with
//!   a kill -9 of the worker midway, and arrives whole and equal
//!   (`TRIBUTARY_PG_ROUNDTRIP_ROWS`, default 5,000 rows per mode; `make test-long` runs it with
//!   1M rows per mode on release builds).

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use anyhow::{Context, Result, bail, ensure};
use rdkafka::Message;
use rdkafka::consumer::{BaseConsumer, Consumer};
use serde_json::{Value, json};
use tributary_tests::worker::StandaloneWorker;
use tributary_tests::{Devstack, unique_name, wait_until};

const WAIT: Duration = Duration::from_secs(120);
const SOURCE: &str = "dev.tributary.connect.postgres.PostgresSourceConnector";

fn ident(prefix: &str) -> String {
    unique_name(prefix).replace('-', "_")
}

fn worker_props(stack: &Devstack) -> Result<String> {
    Ok(format!(
        "bootstrap.servers={}
key.converter=org.apache.kafka.connect.json.JsonConverter
value.converter=org.apache.kafka.connect.json.JsonConverter
offset.flush.interval.ms=500
",
        stack.kafka_bootstrap()?
    ))
}

fn connection(stack: &Devstack) -> Result<Vec<(String, String)>> {
    Ok(vec![
        (
            "connection.url".into(),
            format!(
                "jdbc:postgresql://{}:{}/{}",
                stack.var("TRIBUTARY_PG_HOST")?,
                stack.var("TRIBUTARY_PG_PORT")?,
                stack.var("TRIBUTARY_PG_DATABASE")?
            ),
        ),
        (
            "connection.user".into(),
            stack.var("TRIBUTARY_PG_USER")?.into(),
        ),
        (
            "connection.password".into(),
            stack.var("TRIBUTARY_PG_PASSWORD")?.into(),
        ),
    ])
}

/// A source connector's configuration: the connection, topic creation, and `extra`.
fn source_config(stack: &Devstack, extra: &[(&str, &str)]) -> Result<BTreeMap<String, String>> {
    let mut c: BTreeMap<String, String> = connection(stack)?.into_iter().collect();
    c.insert("connector.class".into(), SOURCE.into());
    c.insert(
        "topic.creation.default.replication.factor".into(),
        "1".into(),
    );
    c.insert("topic.creation.default.partitions".into(), "1".into());
    c.insert("poll.interval.ms".into(), "300".into());
    for (k, v) in extra {
        c.insert((*k).into(), (*v).into());
    }
    Ok(c)
}

fn properties(name: &str, config: &BTreeMap<String, String>) -> String {
    let mut s = format!("name={name}\n");
    for (k, v) in config {
        s.push_str(&format!("{k}={v}\n"));
    }
    s
}

/// Reads JSON records (schema and payload) of topics as they arrive.
struct Reader {
    consumer: BaseConsumer,
    got: BTreeMap<String, Vec<Value>>,
}

impl Reader {
    fn new(stack: &Devstack, topics: &[&str]) -> Result<Self> {
        let mut cfg = stack.kafka_config()?;
        cfg.set("group.id", unique_name("pgsrc-reader"))
            .set("auto.offset.reset", "earliest")
            .set("topic.metadata.refresh.interval.ms", "500");
        let consumer: BaseConsumer = cfg.create()?;
        consumer.subscribe(topics)?;
        Ok(Self {
            consumer,
            got: BTreeMap::new(),
        })
    }

    fn poll_for(&mut self, time: Duration) -> Result<()> {
        let until = std::time::Instant::now() + time;
        while std::time::Instant::now() < until {
            if let Some(Ok(m)) = self.consumer.poll(Duration::from_millis(100)) {
                let v: Value = serde_json::from_slice(m.payload().unwrap_or_default())
                    .context("a record that is not JSON")?;
                self.got.entry(m.topic().to_string()).or_default().push(v);
            }
        }
        Ok(())
    }

    /// Reads until each topic holds at least its count of records.
    fn until(&mut self, want: &[(&str, usize)], timeout: Duration) -> Result<()> {
        let deadline = std::time::Instant::now() + timeout;
        loop {
            let short: Vec<String> = want
                .iter()
                .filter(|(t, n)| self.count(t) < *n)
                .map(|(t, n)| format!("{t}: {} of {n}", self.count(t)))
                .collect();
            if short.is_empty() {
                return Ok(());
            }
            if std::time::Instant::now() > deadline {
                bail!("records missing after {timeout:?}: {}", short.join(", "));
            }
            self.poll_for(Duration::from_millis(300))?;
        }
    }

    fn count(&self, topic: &str) -> usize {
        self.got.get(topic).map_or(0, Vec::len)
    }

    fn payloads(&self, topic: &str) -> Vec<&Value> {
        self.got
            .get(topic)
            .into_iter()
            .flatten()
            .map(|v| &v["payload"])
            .collect()
    }
}

async fn exec(pg: &tokio_postgres::Client, sql: &str) -> Result<()> {
    pg.batch_execute(sql)
        .await
        .with_context(|| format!("running {sql}"))
}

async fn start_worker(
    dir: &std::path::Path,
    stack: &Devstack,
    connectors: &[(&str, String)],
) -> Result<StandaloneWorker> {
    let mut w = StandaloneWorker::start(dir, "pgsrc", &worker_props(stack)?, connectors)?;
    w.wait_healthy(WAIT).await?;
    Ok(w)
}

async fn connector_status(w: &StandaloneWorker, name: &str) -> Result<Value> {
    Ok(
        reqwest::get(format!("{}/connectors/{name}/status", w.rest_url))
            .await?
            .json()
            .await?,
    )
}

#[tokio::test(flavor = "multi_thread")]
async fn every_type_arrives_with_its_connect_schema_and_value() -> Result<()> {
    let stack = Devstack::shared()?;
    let pg = stack.postgres().await?;
    let schema = ident("pgsrc_types");
    exec(
        &pg,
        &format!(
            "CREATE SCHEMA {schema};
CREATE TYPE {schema}.mood AS ENUM ('sad', 'ok', 'happy');
CREATE TABLE {schema}.types (
  id int8 PRIMARY KEY, i2 int2, i4 int4, i8 int8, n numeric(12,3), f4 float4, f8 float8, b bool,
  t text, vc varchar(20), by bytea, d date, tm time, ttz timetz, ts timestamp, tstz timestamptz,
  u uuid, j json, jb jsonb, ai int4[], at text[], m {schema}.mood, un numeric);
INSERT INTO {schema}.types VALUES (1, -12, 123456, 9007199254740993, -1234.500, 1.5, -2.25, true,
  'héllo \"q\"', 'v', '\\x0102ff', '2024-02-29', '13:14:15.678', '10:11:12+02',
  '2024-02-29 23:59:59.999', '2024-03-01 01:00:00.5+01', 'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11',
  '{{\"a\": [1, 2]}}', '{{\"b\": 1,   \"a\": 2}}', '{{1,NULL,3}}', '{{\"x\",\"y z\"}}', 'happy', 3.14159);
INSERT INTO {schema}.types (id) VALUES (2);
CREATE TABLE {schema}.nan (id int8 PRIMARY KEY, v numeric(10,2) NOT NULL);
INSERT INTO {schema}.nan VALUES (1, 'NaN'), (2, 7.25);"
        ),
    )
    .await?;
    let prefix = format!("{schema}-");
    let dir = tempfile::tempdir()?;
    let typed = source_config(
        stack,
        &[
            ("mode", "incrementing"),
            ("incrementing.column.name", "id"),
            ("table.whitelist", &format!("{schema}.types")),
            ("topic.prefix", &prefix),
        ],
    )?;
    let nan = |mapping: &str| {
        source_config(
            stack,
            &[
                ("mode", "incrementing"),
                ("incrementing.column.name", "id"),
                ("table.whitelist", &format!("{schema}.nan")),
                ("topic.prefix", &format!("{prefix}{mapping}-")),
                ("numeric.mapping", mapping),
            ],
        )
    };
    let worker = start_worker(
        dir.path(),
        stack,
        &[
            ("types", properties("pg-types", &typed)),
            ("nan-none", properties("pg-nan-none", &nan("none")?)),
            ("nan-best", properties("pg-nan-best", &nan("best_fit")?)),
        ],
    )
    .await?;
    let topic = format!("{prefix}types");
    let best = format!("{prefix}best_fit-nan");
    let mut reader = Reader::new(stack, &[&topic, &best])?;
    reader.until(&[(&topic, 2), (&best, 2)], WAIT)?;

    let record = &reader.got[&topic][0];
    // Every field's Connect type, logical name and optionality, in column order.
    let fields: Vec<(String, String, Option<String>, bool)> = record["schema"]["fields"]
        .as_array()
        .context("a struct schema")?
        .iter()
        .map(|f| {
            (
                f["field"].as_str().unwrap_or_default().to_string(),
                f["type"].as_str().unwrap_or_default().to_string(),
                f["name"].as_str().map(str::to_string),
                f["optional"] == true,
            )
        })
        .collect();
    let want = |f: &str, t: &str, n: Option<&str>, o: bool| {
        (f.to_string(), t.to_string(), n.map(str::to_string), o)
    };
    let expected = vec![
        want("id", "int64", None, false),
        want("i2", "int16", None, true),
        want("i4", "int32", None, true),
        want("i8", "int64", None, true),
        want(
            "n",
            "bytes",
            Some("org.apache.kafka.connect.data.Decimal"),
            true,
        ),
        want("f4", "float", None, true),
        want("f8", "double", None, true),
        want("b", "boolean", None, true),
        want("t", "string", None, true),
        want("vc", "string", None, true),
        want("by", "bytes", None, true),
        want(
            "d",
            "int32",
            Some("org.apache.kafka.connect.data.Date"),
            true,
        ),
        want(
            "tm",
            "int32",
            Some("org.apache.kafka.connect.data.Time"),
            true,
        ),
        want("ttz", "string", None, true),
        want(
            "ts",
            "int64",
            Some("org.apache.kafka.connect.data.Timestamp"),
            true,
        ),
        want(
            "tstz",
            "int64",
            Some("org.apache.kafka.connect.data.Timestamp"),
            true,
        ),
        want("u", "string", None, true),
        want("j", "string", None, true),
        want("jb", "string", None, true),
        want("ai", "array", None, true),
        want("at", "array", None, true),
        want("m", "string", None, true),
        want("un", "string", None, true),
    ];
    ensure!(fields == expected, "schema fields: {fields:#?}");
    ensure!(
        record["schema"]["name"] == "types",
        "schema name: {}",
        record["schema"]
    );
    let n = &record["schema"]["fields"][4];
    ensure!(n["parameters"]["scale"] == "3", "numeric(12,3) scale: {n}");
    ensure!(
        record["schema"]["fields"][19]["items"]["type"] == "int32",
        "int4[] items: {}",
        record["schema"]["fields"][19]
    );

    use base64::Engine;
    let b64 = |b: &[u8]| base64::engine::general_purpose::STANDARD.encode(b);
    let p = &record["payload"];
    let expected = json!({
        "id": 1, "i2": -12, "i4": 123456, "i8": 9007199254740993i64,
        // -1234.500 at scale 3: unscaled -1234500, big-endian two's complement.
        "n": b64(&(-1_234_500i32).to_be_bytes()[1..]),
        "f4": 1.5, "f8": -2.25, "b": true, "t": "héllo \"q\"", "vc": "v",
        "by": b64(&[1, 2, 255]),
        "d": 19_782, "tm": 47_655_678,
        "ttz": "10:11:12+02",
        "ts": 1_709_251_199_999i64, "tstz": 1_709_251_200_500i64,
        "u": "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11",
        "j": "{\"a\": [1, 2]}", "jb": "{\"a\": 2, \"b\": 1}",
        "ai": [1, null, 3], "at": ["x", "y z"], "m": "happy", "un": "3.14159",
    });
    ensure!(*p == expected, "row 1:\n{p:#}\nexpected\n{expected:#}");
    let nulls = &reader.got[&topic][1]["payload"];
    let non_null: Vec<_> = nulls
        .as_object()
        .context("a struct")?
        .iter()
        .filter(|(k, v)| *k != "id" && !v.is_null())
        .collect();
    ensure!(
        non_null.is_empty(),
        "row 2 is NULL but for its id: {non_null:?}"
    );

    // NaN: FLOAT64 under best_fit; under none, a failed task that names the fix.
    let best_values: Vec<_> = reader
        .payloads(&best)
        .iter()
        .map(|p| p["v"].clone())
        .collect();
    ensure!(
        best_values == [json!("NaN"), json!(7.25)],
        "best_fit: {best_values:?}"
    );
    let failed = wait_until("the none-mapping task to fail on NaN", WAIT, || async {
        let s = connector_status(&worker, "pg-nan-none").await?;
        Ok((s["tasks"][0]["state"] == "FAILED").then_some(s))
    })
    .await?;
    let trace = failed["tasks"][0]["trace"].as_str().unwrap_or_default();
    ensure!(
        trace.contains("numeric.mapping=best_fit") && trace.contains("column v"),
        "the failure says which column and what to set: {trace}"
    );
    Ok(())
}

/// A source of one table in mode `m`: the id column for the incrementing modes, `ts_column` for
/// the timestamp modes; bulk reads its table once an hour (once in a test).
fn mode_source(
    stack: &Devstack,
    m: &str,
    table: &str,
    prefix: &str,
    ts_column: &str,
    batch: &str,
) -> Result<BTreeMap<String, String>> {
    let mut extra = vec![
        ("mode", m),
        ("table.whitelist", table),
        ("topic.prefix", prefix),
        ("batch.max.rows", batch),
    ];
    if m.contains("incrementing") {
        extra.push(("incrementing.column.name", "id"));
    }
    if m.contains("timestamp") {
        extra.push(("timestamp.column.name", ts_column));
    }
    if m == "bulk" {
        extra.push(("poll.interval.ms", "3600000"));
    }
    source_config(stack, &extra)
}

/// Ids of the payloads, in order.
fn ids(payloads: &[&Value]) -> Vec<i64> {
    payloads.iter().filter_map(|p| p["id"].as_i64()).collect()
}

/// Each (id, v) and how often it arrived.
fn versions(payloads: &[&Value]) -> BTreeMap<(i64, String), usize> {
    let mut out = BTreeMap::new();
    for p in payloads {
        *out.entry((
            p["id"].as_i64().unwrap_or(-1),
            p["v"].as_str().unwrap_or_default().to_string(),
        ))
        .or_insert(0) += 1;
    }
    out
}

#[tokio::test(flavor = "multi_thread")]
async fn each_mode_reads_what_it_promises_and_resumes_after_restarts() -> Result<()> {
    let stack = Devstack::shared()?;
    let pg = stack.postgres().await?;
    let schema = ident("pgsrc_modes");
    let modes = [
        "bulk",
        "incrementing",
        "timestamp",
        "timestamp+incrementing",
    ];
    let table = |m: &str| format!("t_{}", m.replace('+', "_"));
    let mut ddl = format!("CREATE SCHEMA {schema};");
    for m in modes {
        ddl.push_str(&format!(
            "CREATE TABLE {schema}.{} (id int8 PRIMARY KEY, v text NOT NULL, at timestamp NOT NULL);",
            table(m)
        ));
    }
    exec(&pg, &ddl).await?;
    // Rows 1..=n, three to a timestamp (so ties cross the batches of 4), in the past.
    let insert = |from: i64, to: i64, v: &str, day: i64| {
        let mut sql = String::new();
        for m in modes {
            sql.push_str(&format!(
                "INSERT INTO {schema}.{t} SELECT i, '{v}', TIMESTAMP '2026-01-01' + {day} * INTERVAL '1 day' + (i / 3) * INTERVAL '1 second' FROM generate_series({from}, {to}) i;",
                t = table(m)
            ));
        }
        sql
    };
    exec(&pg, &insert(1, 50, "v1", 0)).await?;

    let prefix = format!("{schema}-");
    let dir = tempfile::tempdir()?;
    let mut connectors = Vec::new();
    for m in modes {
        let config = mode_source(
            stack,
            m,
            &format!("{schema}.{}", table(m)),
            &prefix,
            "at",
            "4",
        )?;
        connectors.push((m, properties(&format!("pg-{}", table(m)), &config)));
    }
    let connectors: Vec<(&str, String)> = connectors;
    let mut worker = start_worker(dir.path(), stack, &connectors).await?;
    let topic = |m: &str| format!("{prefix}{}", table(m));
    let topics: Vec<String> = modes.iter().map(|m| topic(m)).collect();
    let refs: Vec<&str> = topics.iter().map(String::as_str).collect();
    let mut reader = Reader::new(stack, &refs)?;
    let all = |n: usize| -> Vec<(&str, usize)> { refs.iter().map(|t| (*t, n)).collect() };
    reader.until(&all(50), WAIT)?;
    reader.poll_for(Duration::from_secs(2))?;
    for m in modes {
        // Rows of one timestamp come in no particular order.
        let mut got = ids(&reader.payloads(&topic(m)));
        got.sort_unstable();
        ensure!(
            got == (1..=50).collect::<Vec<_>>(),
            "{m}: first pass {got:?}"
        );
    }

    // Rows 1..=10 updated (later timestamps), 51..=60 inserted.
    exec(
        &pg,
        &(modes
            .iter()
            .map(|m| {
                format!(
                    "UPDATE {schema}.{} SET v = 'v2', at = TIMESTAMP '2026-02-01' + id * INTERVAL '1 second' WHERE id <= 10;",
                    table(m)
                )
            })
            .collect::<String>()
            + &insert(51, 60, "v1", 40)),
    )
    .await?;
    reader.until(
        &[
            (&topic("incrementing"), 60),
            (&topic("timestamp"), 70),
            (&topic("timestamp+incrementing"), 70),
        ],
        WAIT,
    )?;
    reader.poll_for(Duration::from_secs(2))?;
    ensure!(
        ids(&reader.payloads(&topic("incrementing"))) == (1..=60).collect::<Vec<_>>(),
        "incrementing reads new rows only"
    );
    let mut want: BTreeMap<(i64, String), usize> =
        (1..=60).map(|i| ((i, "v1".to_string()), 1)).collect();
    for i in 1..=10 {
        want.insert((i, "v2".into()), 1);
    }
    for m in ["timestamp", "timestamp+incrementing"] {
        let got = versions(&reader.payloads(&topic(m)));
        ensure!(got == want, "{m}: every version exactly once: {got:?}");
    }

    // An orderly restart repeats nothing; bulk reads the table again in full.
    worker.stop();
    exec(&pg, &insert(61, 70, "v1", 41)).await?;
    worker.restart()?;
    worker.wait_healthy(WAIT).await?;
    reader.until(
        &[
            (&topic("bulk"), 50 + 70),
            (&topic("incrementing"), 70),
            (&topic("timestamp"), 80),
            (&topic("timestamp+incrementing"), 80),
        ],
        WAIT,
    )?;
    reader.poll_for(Duration::from_secs(3))?;
    ensure!(
        ids(&reader.payloads(&topic("incrementing"))) == (1..=70).collect::<Vec<_>>(),
        "incrementing after an orderly restart"
    );
    for i in 61..=70 {
        want.insert((i, "v1".into()), 1);
    }
    for m in ["timestamp", "timestamp+incrementing"] {
        let got = versions(&reader.payloads(&topic(m)));
        ensure!(
            got == want,
            "{m}: nothing repeated after an orderly restart: {got:?}"
        );
    }
    let bulk: BTreeSet<i64> = ids(&reader.payloads(&topic("bulk")))[50..]
        .iter()
        .copied()
        .collect();
    ensure!(
        bulk == (1..=70).collect(),
        "bulk's second pass is the whole table"
    );

    // kill -9: whatever the last offset flush missed comes again; nothing is lost.
    exec(&pg, &insert(71, 400, "v1", 42)).await?;
    reader.until(&[(&topic("timestamp+incrementing"), 90)], WAIT)?;
    worker.kill9();
    exec(&pg, &insert(401, 450, "v1", 43)).await?;
    worker.restart()?;
    worker.wait_healthy(WAIT).await?;
    // Replays count towards a topic's records, so wait for the rows themselves.
    let deadline = std::time::Instant::now() + WAIT;
    loop {
        let mut lost = Vec::new();
        for m in ["incrementing", "timestamp", "timestamp+incrementing"] {
            let got = versions(&reader.payloads(&topic(m)));
            let missing: Vec<_> = (1..=450)
                .filter(|i| !got.contains_key(&(*i, "v1".to_string())))
                .collect();
            if !missing.is_empty() {
                lost.push(format!("{m}: {missing:?}"));
            }
        }
        if lost.is_empty() {
            return Ok(());
        }
        if std::time::Instant::now() > deadline {
            bail!("rows lost across kill -9 ({WAIT:?}): {}", lost.join("; "));
        }
        reader.poll_for(Duration::from_millis(300))?;
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn tables_created_later_are_found_and_spread_over_the_tasks() -> Result<()> {
    let stack = Devstack::shared()?;
    let pg = stack.postgres().await?;
    let schema = ident("pgsrc_found");
    exec(&pg, &format!("CREATE SCHEMA {schema}")).await?;
    let prefix = format!("{schema}-");
    let dir = tempfile::tempdir()?;
    let config = source_config(
        stack,
        &[
            ("mode", "incrementing"),
            ("incrementing.column.name", "id"),
            ("schema.pattern", &schema),
            ("topic.prefix", &prefix),
            ("tasks.max", "2"),
            ("table.poll.interval.ms", "500"),
        ],
    )?;
    let worker = start_worker(
        dir.path(),
        stack,
        &[("found", properties("pg-found", &config))],
    )
    .await?;
    let tasks = || async {
        let t: Value = reqwest::get(format!("{}/connectors/pg-found/tasks", worker.rest_url))
            .await?
            .json()
            .await?;
        let mut tables = Vec::new();
        for task in t.as_array().into_iter().flatten() {
            let list: Vec<(String, String)> =
                serde_json::from_str(task["config"]["tables"].as_str().unwrap_or("[]"))?;
            tables.push(list.into_iter().map(|(_, t)| t).collect::<Vec<_>>());
        }
        anyhow::Ok(tables)
    };
    ensure!(tasks().await?.is_empty(), "no table, no task");

    let create = |t: &str| {
        format!(
            "CREATE TABLE {schema}.{t} (id int8 PRIMARY KEY, v text); INSERT INTO {schema}.{t} SELECT i, '{t}' FROM generate_series(1, 20) i;"
        )
    };
    exec(&pg, &create("a")).await?;
    let mut reader = Reader::new(
        stack,
        &[
            &format!("{prefix}a"),
            &format!("{prefix}b"),
            &format!("{prefix}c"),
        ],
    )?;
    reader.until(&[(&format!("{prefix}a"), 20)], WAIT)?;
    exec(&pg, &(create("b") + &create("c"))).await?;
    reader.until(
        &[(&format!("{prefix}b"), 20), (&format!("{prefix}c"), 20)],
        WAIT,
    )?;
    let spread = wait_until("three tables over two tasks", WAIT, || async {
        let t = tasks().await?;
        Ok((t == [vec!["a".to_string(), "b".into()], vec!["c".to_string()]]).then_some(t))
    })
    .await?;
    ensure!(spread.len() == 2);
    let status = wait_until("both tasks running", WAIT, || async {
        let s = connector_status(&worker, "pg-found").await?;
        let running = s["tasks"]
            .as_array()
            .is_some_and(|t| t.len() == 2 && t.iter().all(|t| t["state"] == "RUNNING"));
        Ok(running.then_some(s))
    })
    .await?;
    ensure!(status["connector"]["state"] == "RUNNING");

    exec(&pg, &format!("DROP TABLE {schema}.a")).await?;
    wait_until("the dropped table leaves the tasks", WAIT, || async {
        let t = tasks().await?;
        Ok((t == [vec!["b".to_string()], vec!["c".to_string()]]).then_some(()))
    })
    .await?;
    // The remaining tables go on: new rows of b arrive once.
    exec(&pg, &format!("INSERT INTO {schema}.b VALUES (21, 'b')")).await?;
    reader.until(&[(&format!("{prefix}b"), 21)], WAIT)?;
    reader.poll_for(Duration::from_secs(2))?;
    let b = ids(&reader.payloads(&format!("{prefix}b")));
    ensure!(
        b == (1..=21).collect::<Vec<_>>(),
        "b after the reconfiguration: {b:?}"
    );
    Ok(())
}

/// Rows in the round trip's copy of mode `m` (0 before the sink created it).
async fn dst_count(pg: &tokio_postgres::Client, schema: &str, m: &str) -> Result<i64> {
    let table = format!("dst_{}", m.replace('+', "_"));
    let r = pg
        .query_one(
            "SELECT count(*) FROM pg_tables WHERE schemaname = $1 AND tablename = $2",
            &[&schema, &table],
        )
        .await?;
    if r.get::<_, i64>(0) == 0 {
        return Ok(0);
    }
    Ok(pg
        .query_one(&format!("SELECT count(*) FROM {schema}.{table}"), &[])
        .await?
        .get::<_, i64>(0))
}

/// The columns of the round trip, and a text per row both ends give alike.
const ROW_TEXT: &str = "concat_ws('|', id, i2, i4, i8, n::text, f4::text, f8::text, b::text, t, encode(by, 'hex'), d::text, tm::text, ttz::text, (extract(epoch FROM ts) * 1000)::int8, (extract(epoch FROM tstz::timestamp) * 1000)::int8, u::text, j::text, jb::text, ai::text, at::text, m::text, v)";

#[tokio::test(flavor = "multi_thread")]
async fn every_type_goes_table_to_topic_to_table_in_each_mode_across_kill_9() -> Result<()> {
    let rows: i64 = std::env::var("TRIBUTARY_PG_ROUNDTRIP_ROWS")
        .ok()
        .and_then(|r| r.parse().ok())
        .unwrap_or(5_000);
    // Waits grow with the rows: the 1M-row run of `make test-long` takes minutes per mode.
    let wait = WAIT.max(Duration::from_millis(rows as u64));
    let stack = Devstack::shared()?;
    let pg = stack.postgres().await?;
    pg.batch_execute("SET TimeZone TO 'UTC'").await?;
    let schema = ident("pgsrc_trip");
    let modes = [
        "bulk",
        "incrementing",
        "timestamp",
        "timestamp+incrementing",
    ];
    let table = |m: &str| format!("src_{}", m.replace('+', "_"));
    let mut ddl = format!(
        "CREATE SCHEMA {schema}; CREATE TYPE {schema}.mood AS ENUM ('sad', 'ok', 'happy');"
    );
    for m in modes {
        ddl.push_str(&format!(
            "CREATE TABLE {schema}.{} (
  id int8 PRIMARY KEY, i2 int2, i4 int4, i8 int8, n numeric(12,3), f4 float4, f8 float8, b bool,
  t text, by bytea, d date, tm time(3), ttz timetz, ts timestamp(3) NOT NULL, tstz timestamptz(3),
  u uuid, j json, jb jsonb, ai int4[], at text[], m {schema}.mood, v int4 NOT NULL);
INSERT INTO {schema}.{0} SELECT i, (i % 30000)::int2, i::int4 * 7, i * 1000003, (i * 1.001)::numeric(12,3),
  i / 8.0, i / 3.0, i % 2 = 0, 'row ' || i || ' \"é\"', int8send(i), DATE '2000-01-01' + (i % 9000)::int,
  TIME '00:00:00' + (i % 86400000) * INTERVAL '1 millisecond', '12:00:00+03'::timetz,
  TIMESTAMP '2026-01-01' + (i / 7) * INTERVAL '1 millisecond', TIMESTAMPTZ '2020-01-01 00:00:00+00' + i * INTERVAL '1.001 second',
  md5(i::text)::uuid, json_build_object('i', i), jsonb_build_object('k', i, 'a', 'x'), ARRAY[i::int4, NULL, -1],
  ARRAY['a' || i, 'b'], (ARRAY['sad', 'ok', 'happy'])[1 + i % 3]::{schema}.mood, 1
  FROM generate_series(1::int8, {rows}) i;
UPDATE {schema}.{0} SET i2 = NULL, n = NULL, t = NULL, ai = NULL, m = NULL WHERE id % 10 = 0;
CREATE INDEX ON {schema}.{0} (ts, id); ANALYZE {schema}.{0};",
            table(m)
        ));
    }
    exec(&pg, &ddl).await?;

    let dir = tempfile::tempdir()?;
    let prefix = format!("{schema}-");
    let mut connectors = Vec::new();
    for m in modes {
        let config = mode_source(
            stack,
            m,
            &format!("{schema}.{}", table(m)),
            &prefix,
            "ts",
            "500",
        )?;
        connectors.push((
            format!("src-{}", table(m)),
            properties(&format!("src-{}", table(m)), &config),
        ));
        // The sink upserts by id into dst_<mode>, creating it.
        let mut sink: BTreeMap<String, String> = connection(stack)?.into_iter().collect();
        for (k, v) in [
            (
                "connector.class",
                "dev.tributary.connect.postgres.PostgresSinkConnector",
            ),
            ("insert.mode", "upsert"),
            ("pk.mode", "record_value"),
            ("pk.fields", "id"),
            ("auto.create", "true"),
            ("batch.size", "2000"),
        ] {
            sink.insert(k.into(), v.into());
        }
        sink.insert("topics".into(), format!("{prefix}{}", table(m)));
        sink.insert(
            "table.name.format".into(),
            format!("{schema}.dst_{}", m.replace('+', "_")),
        );
        connectors.push((
            format!("dst-{}", table(m)),
            properties(&format!("dst-{}", table(m)), &sink),
        ));
    }
    let refs: Vec<(&str, String)> = connectors
        .iter()
        .map(|(n, p)| (n.as_str(), p.clone()))
        .collect();
    let mut worker = start_worker(dir.path(), stack, &refs).await?;

    let count = |m: &'static str| dst_count(&pg, &schema, m);
    // kill -9 once a part of the rows went through, then go on.
    wait_until("a part of the rows through", wait, || async {
        Ok((count("timestamp+incrementing").await? >= rows / 4).then_some(()))
    })
    .await?;
    worker.kill9();
    // Changes while the worker is down: the timestamp modes pick them up.
    for m in ["timestamp", "timestamp+incrementing"] {
        exec(
            &pg,
            &format!(
                "UPDATE {schema}.{} SET v = 2, ts = TIMESTAMP '2026-06-01' + id * INTERVAL '1 millisecond' WHERE id % 100 = 1",
                table(m)
            ),
        )
        .await?;
    }
    worker.restart()?;
    worker.wait_healthy(WAIT).await?;

    for m in modes {
        let src = format!("{schema}.{}", table(m));
        let dst = format!("{schema}.dst_{}", m.replace('+', "_"));
        let differences = wait_until(&format!("{m}: the copy equal to its table"), wait * 3, || {
            let (src, dst, pg) = (src.clone(), dst.clone(), &pg);
            async move {
                if count(m).await? < rows {
                    return Ok(None);
                }
                let q = format!(
                    "SELECT count(*) FROM ((SELECT {ROW_TEXT} FROM {src} EXCEPT SELECT {ROW_TEXT} FROM {dst}) UNION ALL (SELECT {ROW_TEXT} FROM {dst} EXCEPT SELECT {ROW_TEXT} FROM {src})) d"
                );
                let n: i64 = pg.query_one(&q, &[]).await?.get(0);
                Ok((n == 0).then_some(n))
            }
        })
        .await;
        if differences.is_err() {
            let sample = pg
                .query(
                    &format!(
                        "(SELECT {ROW_TEXT} FROM {src} EXCEPT SELECT {ROW_TEXT} FROM {dst}) LIMIT 3"
                    ),
                    &[],
                )
                .await?;
            let theirs = pg
                .query(
                    &format!(
                        "(SELECT {ROW_TEXT} FROM {dst} EXCEPT SELECT {ROW_TEXT} FROM {src}) LIMIT 3"
                    ),
                    &[],
                )
                .await
                .map(|r| r.iter().map(|r| r.get::<_, String>(0)).collect::<Vec<_>>())
                .unwrap_or_default();
            bail!(
                "{m}: {} rows of {src} not in {dst} (e.g. {:?}); in {dst} only: {theirs:?}; worker log:\n{}",
                count(m).await?,
                sample
                    .iter()
                    .map(|r| r.get::<_, String>(0))
                    .collect::<Vec<_>>(),
                worker
                    .log()
                    .lines()
                    .rev()
                    .take(30)
                    .collect::<Vec<_>>()
                    .join("\n")
            );
        }
    }
    Ok(())
}
