//! `make bench-postgres`: the PostgreSQL sink's rows/s (insert and upsert, batches of 500 and
//! 5,000) against the raw ceiling of the same database — COPY per batch for inserts and the same UNNEST
//! upsert, from this program, with no Kafka in between — and the PostgreSQL source's rows/s
//! (incrementing mode, batch.max.rows 500 and 5,000) against COPY TO and a plain SELECT of the
//! same table. The Java baseline of the sink is Debezium's JDBC sink connector (Maven Central's
//! plugin tarball, `tests/infra/install.sh debezium-jdbc`) on Apache Kafka's connect-standalone,
//! run on the same topic into its own table: Confluent's JDBC connectors are not on Maven
//! Central. Prints Markdown tables; docs/benchmarks.md keeps a run.
//!
//! Flags: `--rows N` (default 200,000), `--only sink|source`, `--repeat N` (each sink cell N times,
//! interleaved, medians shown), `--no-java` (the sink without the
//! Debezium baseline, for quick runs).

use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use futures::SinkExt;
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::Message;
use rdkafka::producer::{BaseProducer, BaseRecord, Producer};
use rdkafka::{Offset, TopicPartitionList};
use serde_json::json;
use tributary_tests::installed::Installed;
use tributary_tests::stack::java_connect::{BENCH_JVM_OPTS, JavaConnect};
use tributary_tests::stack::process::tail;
use tributary_tests::worker::StandaloneWorker;
use tributary_tests::{Devstack, unique_name};

const SCHEMA: &str = r#"{"type":"struct","name":"row","optional":false,"fields":[{"field":"id","type":"int64","optional":false},{"field":"name","type":"string","optional":true},{"field":"score","type":"int32","optional":false},{"field":"amount","type":"double","optional":false},{"field":"active","type":"boolean","optional":false}]}"#;

fn progress(msg: &str) {
    eprintln!("[bench] {msg}");
}

fn value(id: i64) -> String {
    format!(
        r#"{{"schema":{SCHEMA},"payload":{{"id":{id},"name":"name-{id}","score":{},"amount":{}.5,"active":{}}}}}"#,
        id % 1000,
        id % 97,
        id % 2 == 0
    )
}

fn key(id: i64) -> String {
    format!(r#"{{"schema":{{"type":"int64","optional":false}},"payload":{id}}}"#)
}

async fn count(pg: &tokio_postgres::Client, table: &str) -> i64 {
    pg.query_one(format!(r#"SELECT count(*) FROM "{table}""#).as_str(), &[])
        .await
        .map(|r| r.get(0))
        .unwrap_or(0)
}

const CREATE: &str = r#"(id BIGINT PRIMARY KEY, name TEXT, score INT NOT NULL, amount DOUBLE PRECISION NOT NULL, active BOOLEAN NOT NULL)"#;

/// rows/s of COPY of `rows` rows into a fresh table: in one COPY (`batch` None: the database
/// at its fastest), or one COPY per `batch` rows, each in its own transaction, as the sink
/// must write them (a batch's offsets are committed after its transaction).
async fn copy_ceiling(pg: &tokio_postgres::Client, rows: i64, batch: Option<i64>) -> Result<f64> {
    let table = unique_name("ceil_copy").replace('-', "_");
    pg.batch_execute(&format!(r#"CREATE TABLE "{table}" {CREATE}"#))
        .await?;
    checkpoint(pg).await?;
    let start = Instant::now();
    match batch {
        None => copy_rows(pg, &table, 0..rows).await?,
        Some(batch) => {
            let mut id = 0;
            while id < rows {
                let end = (id + batch).min(rows);
                pg.batch_execute("BEGIN").await?;
                copy_rows(pg, &table, id..end).await?;
                pg.batch_execute("COMMIT").await?;
                id = end;
            }
        }
    }
    let rate = rows as f64 / start.elapsed().as_secs_f64();
    pg.batch_execute(&format!(r#"DROP TABLE "{table}""#))
        .await?;
    Ok(rate)
}

/// The middle value (the upper middle of an even count); NaN for none.
fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    values.get(values.len() / 2).copied().unwrap_or(f64::NAN)
}

/// Writes out what earlier phases left dirty, so that a checkpoint they triggered does not
/// land in (and slow) the phase about to be timed; the ceilings and the runs drop their
/// tables afterwards for the same reason (runs of 1M rows otherwise vary by 2× here).
async fn checkpoint(pg: &tokio_postgres::Client) -> Result<()> {
    pg.batch_execute("CHECKPOINT").await?;
    Ok(())
}

/// COPYs the bench rows with these ids into `table`.
async fn copy_rows(
    pg: &tokio_postgres::Client,
    table: &str,
    ids: std::ops::Range<i64>,
) -> Result<()> {
    let sink = pg
        .copy_in::<_, bytes::Bytes>(format!(r#"COPY "{table}" FROM STDIN"#).as_str())
        .await?;
    futures::pin_mut!(sink);
    // Sized for the rows at hand: the per-batch ceilings call this once per batch.
    let mut buf = String::with_capacity((ids.end - ids.start).clamp(0, 1 << 14) as usize * 64);
    for id in ids {
        buf.push_str(&format!(
            "{id}\tname-{id}\t{}\t{}.5\t{}\n",
            id % 1000,
            id % 97,
            id % 2 == 0
        ));
        if buf.len() > 1 << 20 {
            sink.send(bytes::Bytes::from(std::mem::take(&mut buf)))
                .await?;
        }
    }
    sink.send(bytes::Bytes::from(buf)).await?;
    sink.finish().await?;
    Ok(())
}

/// rows/s of the sink's own statement shape (UNNEST of text arrays, ON CONFLICT) in `batch`es,
/// one transaction per batch.
async fn upsert_ceiling(pg: &tokio_postgres::Client, rows: i64, batch: i64) -> Result<f64> {
    let table = unique_name("ceil_upsert").replace('-', "_");
    pg.batch_execute(&format!(r#"CREATE TABLE "{table}" {CREATE}"#))
        .await?;
    let sql = format!(
        r#"INSERT INTO "{table}" (id, name, score, amount, active) SELECT u.id::BIGINT, u.name::TEXT, u.score::INT, u.amount::DOUBLE PRECISION, u.active::BOOLEAN FROM UNNEST($1::text[], $2::text[], $3::text[], $4::text[], $5::text[]) AS u(id, name, score, amount, active) ON CONFLICT (id) DO UPDATE SET name = EXCLUDED.name, score = EXCLUDED.score, amount = EXCLUDED.amount, active = EXCLUDED.active"#
    );
    checkpoint(pg).await?;
    let start = Instant::now();
    let mut id = 0;
    while id < rows {
        let end = (id + batch).min(rows);
        let cols: [Vec<Option<String>>; 5] = [
            (id..end).map(|i| Some(i.to_string())).collect(),
            (id..end).map(|i| Some(format!("name-{i}"))).collect(),
            (id..end).map(|i| Some((i % 1000).to_string())).collect(),
            (id..end).map(|i| Some(format!("{}.5", i % 97))).collect(),
            (id..end).map(|i| Some((i % 2 == 0).to_string())).collect(),
        ];
        pg.batch_execute("BEGIN").await?;
        pg.execute(
            sql.as_str(),
            &[&cols[0], &cols[1], &cols[2], &cols[3], &cols[4]],
        )
        .await?;
        pg.batch_execute("COMMIT").await?;
        id = end;
    }
    let rate = rows as f64 / start.elapsed().as_secs_f64();
    pg.batch_execute(&format!(r#"DROP TABLE "{table}""#))
        .await?;
    Ok(rate)
}

/// rows/s of `COPY table TO STDOUT` and of a plain `SELECT *` read to the end.
async fn read_ceilings(pg: &tokio_postgres::Client, table: &str, rows: i64) -> Result<(f64, f64)> {
    use futures::StreamExt;
    let start = Instant::now();
    let stream = pg
        .copy_out(format!(r#"COPY "{table}" TO STDOUT"#).as_str())
        .await?;
    futures::pin_mut!(stream);
    let mut lines = 0i64;
    while let Some(chunk) = stream.next().await {
        lines += chunk?.iter().filter(|b| **b == b'\n').count() as i64;
    }
    let copy = lines as f64 / start.elapsed().as_secs_f64();
    let start = Instant::now();
    let params: Vec<String> = Vec::new();
    let stream = pg
        .query_raw(format!(r#"SELECT * FROM "{table}""#).as_str(), params)
        .await?;
    futures::pin_mut!(stream);
    let mut read = 0i64;
    while let Some(row) = stream.next().await {
        let row = row?;
        let _: (i64, Option<&str>, i32, f64, bool) =
            (row.get(0), row.get(1), row.get(2), row.get(3), row.get(4));
        read += 1;
    }
    let select = read as f64 / start.elapsed().as_secs_f64();
    if lines != rows || read != rows {
        bail!("read {lines} rows by COPY and {read} by SELECT of {rows}");
    }
    Ok((copy, select))
}

/// Reads `topic` once, untimed. Every sink cell reads it from its start; without this the
/// first cell also paid for the broker's first fetches of it (its JIT and page cache warming
/// up), and insert/500, the first, came out at half speed in about one run in four.
fn warm_up_reads(stack: &Devstack, topic: &str, rows: i64) -> Result<()> {
    progress(&format!("reading {topic} once (warm-up)"));
    let consumer: BaseConsumer = stack
        .kafka_config()?
        .set("group.id", unique_name("pgbench-warm-up"))
        .set("enable.auto.commit", "false")
        .create()?;
    let mut tpl = TopicPartitionList::new();
    tpl.add_partition_offset(topic, 0, Offset::Beginning)?;
    consumer.assign(&tpl)?;
    let deadline = Instant::now() + Duration::from_secs(300);
    let mut last = -1;
    while last < rows - 1 {
        if Instant::now() > deadline {
            bail!("the warm-up read reached offset {last} of {rows} in 300 s");
        }
        if let Some(m) = consumer.poll(Duration::from_millis(500)) {
            last = m?.offset();
        }
    }
    Ok(())
}

/// rows/s of a plain program doing a source's whole job: `SELECT *`, each row as the
/// JsonConverter envelope the source writes, produced to `topic` (idempotent, acks=all, as the
/// worker's source producer) until the broker has them all.
async fn pipeline_ceiling(
    stack: &Devstack,
    pg: &tokio_postgres::Client,
    table: &str,
    topic: &str,
    rows: i64,
) -> Result<f64> {
    use futures::StreamExt;
    const SOURCE_SCHEMA: &str = r#"{"type":"struct","fields":[{"type":"int64","optional":false,"field":"id"},{"type":"string","optional":true,"field":"name"},{"type":"int32","optional":false,"field":"score"},{"type":"double","optional":false,"field":"amount"},{"type":"boolean","optional":false,"field":"active"}],"optional":false,"name":"bench"}"#;
    let producer: BaseProducer = stack
        .kafka_config()?
        .set("enable.idempotence", "true")
        .set("acks", "all")
        .create()?;
    let start = Instant::now();
    let params: Vec<String> = Vec::new();
    let stream = pg
        .query_raw(format!(r#"SELECT * FROM "{table}""#).as_str(), params)
        .await?;
    futures::pin_mut!(stream);
    let mut sent = 0i64;
    while let Some(row) = stream.next().await {
        let row = row?;
        let (id, name, score, amount, active): (i64, Option<&str>, i32, f64, bool) =
            (row.get(0), row.get(1), row.get(2), row.get(3), row.get(4));
        let name = name.map_or("null".to_string(), |n| format!("\"{n}\""));
        let v = format!(
            r#"{{"schema":{SOURCE_SCHEMA},"payload":{{"id":{id},"name":{name},"score":{score},"amount":{amount:?},"active":{active}}}}}"#
        );
        let mut rec = BaseRecord::<(), String>::to(topic).payload(&v);
        loop {
            match producer.send(rec) {
                Ok(()) => break,
                Err((_, back)) => {
                    rec = back;
                    producer.poll(Duration::from_millis(1));
                }
            }
        }
        producer.poll(Duration::ZERO);
        sent += 1;
    }
    producer.flush(Duration::from_secs(120))?;
    if sent != rows {
        bail!("sent {sent} of {rows}");
    }
    Ok(rows as f64 / start.elapsed().as_secs_f64())
}

/// A standalone release worker with JSON converters, healthy.
async fn bench_worker(
    stack: &Devstack,
    dir: &std::path::Path,
    name: &str,
) -> Result<StandaloneWorker> {
    let props = format!(
        "bootstrap.servers={}
key.converter=org.apache.kafka.connect.json.JsonConverter
value.converter=org.apache.kafka.connect.json.JsonConverter
offset.flush.interval.ms=5000
",
        stack.kafka_bootstrap()?
    );
    let mut worker = StandaloneWorker::start(dir, name, &props, &[])?;
    worker.wait_healthy(Duration::from_secs(60)).await?;
    Ok(worker)
}

/// The source phase: a table of `rows` rows read into Kafka by the PostgreSQL source in
/// incrementing mode, timed from the connector's creation to the last record in the topic.
async fn source_bench(stack: &Devstack, rows: i64) -> Result<Vec<[String; 5]>> {
    let pg = stack.postgres().await?;
    let table = unique_name("bench_src").replace('-', "_");
    pg.batch_execute(&format!(r#"CREATE TABLE "{table}" {CREATE}"#))
        .await?;
    copy_rows(&pg, &table, 1..rows + 1).await?;
    pg.batch_execute(&format!(r#"VACUUM ANALYZE "{table}""#))
        .await?;
    let (copy, select) = read_ceilings(&pg, &table, rows).await?;
    progress(&format!(
        "source ceilings: COPY TO {copy:.0} rows/s, SELECT {select:.0} rows/s"
    ));
    let consumer: BaseConsumer = stack.kafka_config()?.create()?;
    let admin: AdminClient<DefaultClientContext> = stack.kafka_config()?.create()?;
    // Topics are made beforehand: a watermark asked of a topic not there yet stays unknown to
    // the consumer's metadata for a while.
    let create = |topic: String| {
        let admin = &admin;
        async move {
            for r in admin
                .create_topics(
                    [&NewTopic::new(&topic, 1, TopicReplication::Fixed(1))],
                    &AdminOptions::new(),
                )
                .await?
            {
                r.map_err(|(t, e)| anyhow::anyhow!("creating {t}: {e}"))?;
            }
            anyhow::Ok(())
        }
    };
    let plain_topic = unique_name("bench-src-plain");
    create(plain_topic.clone()).await?;
    let pipeline = pipeline_ceiling(stack, &pg, &table, &plain_topic, rows).await?;
    progress(&format!(
        "source ceiling: SELECT → JSON → Kafka {pipeline:.0} rows/s"
    ));
    let dir = tempfile::tempdir()?;
    let mut out = Vec::new();
    for batch in [500i64, 5000] {
        let prefix = format!("{}-", unique_name(&format!("bench-src-{batch}")));
        let topic = format!("{prefix}{table}");
        create(topic.clone()).await?;
        let name = format!("source-{batch}");
        let mut worker = bench_worker(stack, dir.path(), &name).await?;
        let config = json!({
            "connector.class": "PostgresSource",
            "connection.url": stack.var("TRIBUTARY_PG_URL")?,
            "mode": "incrementing", "incrementing.column.name": "id",
            "table.whitelist": table, "topic.prefix": prefix,
            "batch.max.rows": batch.to_string(), "poll.interval.ms": "1000",
        });
        let start = Instant::now();
        let r = reqwest::Client::new()
            .post(format!("{}/connectors", worker.rest_url))
            .json(&json!({"name": unique_name(&name), "config": config}))
            .send()
            .await?;
        if r.status().as_u16() != 201 {
            bail!("create: {}", r.text().await?);
        }
        let deadline = start + Duration::from_secs(600);
        loop {
            let (_, high) = consumer
                .fetch_watermarks(&topic, 0, Duration::from_secs(10))
                .unwrap_or((0, 0));
            if high >= rows {
                break;
            }
            if Instant::now() > deadline {
                let status = reqwest::get(format!("{}/connectors?expand=status", worker.rest_url))
                    .await?
                    .text()
                    .await?;
                bail!(
                    "source {batch}: {high} of {rows} records in {topic} after 600 s: {status}\n{}",
                    worker.log()
                );
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let rate = rows as f64 / start.elapsed().as_secs_f64();
        progress(&format!("source batch {batch}: {rate:.0} rows/s"));
        worker.stop();
        out.push([
            batch.to_string(),
            format!("{rate:.0}"),
            format!("{pipeline:.0}"),
            format!("{:.0} %", 100.0 * rate / pipeline),
            format!("{copy:.0} / {select:.0}"),
        ]);
    }
    Ok(out)
}

/// One sink measurement: a fresh target table with the ceilings' primary key, a fresh worker
/// and connector reading the whole topic, timed from the connector's creation to the last row.
struct SinkRun<'a> {
    stack: &'a Devstack,
    pg: &'a tokio_postgres::Client,
    dir: &'a std::path::Path,
    topic: &'a str,
    rows: i64,
    mode: &'a str,
    batch: i64,
}

impl SinkRun<'_> {
    async fn target(&self, who: &str) -> Result<String> {
        let target =
            unique_name(&format!("bench_{who}_{}_{}", self.mode, self.batch)).replace('-', "_");
        self.pg
            .batch_execute(&format!(r#"CREATE TABLE "{target}" {CREATE}"#))
            .await?;
        Ok(target)
    }

    async fn tributary(&self) -> Result<f64> {
        let target = self.target("t").await?;
        let name = format!("{}-{}", self.mode, self.batch);
        let mut worker = bench_worker(self.stack, self.dir, &name).await?;
        let mut config = json!({
            "connector.class": "PostgresSink", "topics": self.topic,
            "connection.url": self.stack.var("TRIBUTARY_PG_URL")?,
            "insert.mode": self.mode, "auto.create": "true", "table.name.format": target,
            "batch.size": self.batch.to_string(),
            "consumer.override.max.poll.records": self.batch.to_string(),
            "consumer.override.auto.offset.reset": "earliest",
        });
        if self.mode == "upsert" {
            config["pk.mode"] = json!("record_key");
            config["pk.fields"] = json!("id");
        }
        let rate = self
            .timed(&worker.rest_url.clone(), &name, config, &target, || {
                worker.log()
            })
            .await;
        worker.stop();
        self.drop_table(&target).await?;
        rate
    }

    /// Debezium's JDBC sink on Apache Kafka's connect-standalone (Kafka's own JVM defaults),
    /// configured as ours: the same batch size and poll size, the key as primary key for upserts.
    async fn debezium(&self, plugins: &std::path::Path) -> Result<f64> {
        let target = self.target("j").await?;
        let name = format!("java-{}-{}", self.mode, self.batch);
        let (jdbc_url, user, password) = jdbc(self.stack.var("TRIBUTARY_PG_URL")?)?;
        let props = format!(
            "bootstrap.servers={}
key.converter=org.apache.kafka.connect.json.JsonConverter
value.converter=org.apache.kafka.connect.json.JsonConverter
offset.flush.interval.ms=5000
plugin.path={}
",
            self.stack.kafka_bootstrap()?,
            plugins.display()
        );
        let mut worker = JavaConnect::start_standalone_with(
            &Installed::locate(),
            BENCH_JVM_OPTS,
            &unique_name(&name),
            &props,
            self.dir,
            &[],
        )?;
        worker.wait_ready(Duration::from_secs(180)).await?;
        let upsert = self.mode == "upsert";
        let config = json!({
            "connector.class": "io.debezium.connector.jdbc.JdbcSinkConnector",
            "topics": self.topic, "tasks.max": "1",
            "connection.url": jdbc_url, "connection.username": user,
            "connection.password": password,
            "insert.mode": self.mode,
            // The value's id, which is the key: Debezium 3.6 fails on a primitive record key
            // (ClassCastException Long → Struct in keyAsStruct) whatever primary.key.fields says.
            "primary.key.mode": if upsert { "record_value" } else { "none" },
            "primary.key.fields": if upsert { "id" } else { "" },
            "schema.evolution": "none",
            "collection.name.format": target,
            "batch.size": self.batch.to_string(),
            "consumer.override.max.poll.records": self.batch.to_string(),
            "consumer.override.auto.offset.reset": "earliest",
        });
        let log = worker.process.log.clone();
        let rate = self
            .timed(&worker.url.clone(), &name, config, &target, || {
                tail(&log, 40)
            })
            .await;
        drop(worker);
        self.drop_table(&target).await?;
        rate
    }

    /// Once its worker has stopped (it may still hold the table).
    async fn drop_table(&self, target: &str) -> Result<()> {
        self.pg
            .batch_execute(&format!(r#"DROP TABLE "{target}""#))
            .await?;
        Ok(())
    }

    /// Creates the connector through `url` and waits for every row: one partition written in
    /// order, one transaction after the other, so the last id in the table means all are
    /// (counted once the clock has stopped). An index lookup, so the polling costs the
    /// database nothing worth counting.
    async fn timed(
        &self,
        url: &str,
        name: &str,
        config: serde_json::Value,
        target: &str,
        log: impl Fn() -> String,
    ) -> Result<f64> {
        let (rows, mode, batch) = (self.rows, self.mode, self.batch);
        checkpoint(self.pg).await?;
        // Built before the clock starts: a new client loads the TLS roots (~40 ms here).
        let http = reqwest::Client::new();
        let start = Instant::now();
        let connector = unique_name(name);
        let r = http
            .post(format!("{url}/connectors"))
            .json(&json!({"name": connector, "config": config}))
            .send()
            .await?;
        if r.status().as_u16() != 201 {
            bail!("create {name}: {}", r.text().await?);
        }
        let last = format!(r#"SELECT count(*) FROM "{target}" WHERE id = {}"#, rows - 1);
        let deadline = start + Duration::from_secs(900);
        // How long the connector takes to start (config, task, group join, first fetch and
        // write) is part of the rate; shown on its own too.
        let first = format!(r#"SELECT count(*) FROM "{target}" WHERE id = 0"#);
        // Bounded: a task that failed is reported by the wait below.
        while start.elapsed() < Duration::from_secs(60) {
            // Before the first write the sink may not have created the table yet.
            let n = self
                .pg
                .query_one(first.as_str(), &[])
                .await
                .map(|r| r.get::<_, i64>(0));
            if n.is_ok_and(|n| n == 1) {
                progress(&format!(
                    "{mode}/{batch}: first row in after {:?}",
                    start.elapsed()
                ));
                break;
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        let mut checked = Instant::now();
        loop {
            let n: i64 = self.pg.query_one(last.as_str(), &[]).await?.get(0);
            if n == 1 {
                break;
            }
            // A failed task never finishes: say so now, with its trace, instead of at the deadline.
            if checked.elapsed() > Duration::from_secs(3) {
                checked = Instant::now();
                if let Some(trace) = failed_task(url, &connector).await {
                    bail!("{name}: the task failed:\n{trace}");
                }
            }
            if Instant::now() > deadline {
                bail!(
                    "{name}: {} of {rows} rows after 900 s:\n{}",
                    count(self.pg, target).await,
                    log()
                );
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let rate = rows as f64 / start.elapsed().as_secs_f64();
        let n = count(self.pg, target).await;
        if n != rows {
            bail!("{mode}/{batch} ({name}): the last row is in but {n} of {rows} rows are");
        }
        Ok(rate)
    }
}

/// The trace of the connector's first FAILED task, if one has failed.
async fn failed_task(url: &str, connector: &str) -> Option<String> {
    let status: serde_json::Value = reqwest::get(format!("{url}/connectors/{connector}/status"))
        .await
        .ok()?
        .json()
        .await
        .ok()?;
    status["tasks"]
        .as_array()?
        .iter()
        .find(|t| t["state"] == "FAILED")
        .map(|t| t["trace"].as_str().unwrap_or("(no trace)").to_string())
}

/// `postgres://user:password@host:port/db` as JDBC wants it: URL, user, password.
fn jdbc(url: &str) -> Result<(String, String, String)> {
    let rest = url
        .strip_prefix("postgres://")
        .or_else(|| url.strip_prefix("postgresql://"))
        .context("a postgres:// URL")?;
    let (auth, host_db) = rest.rsplit_once('@').context("user@ in the URL")?;
    let (user, password) = auth.split_once(':').unwrap_or((auth, ""));
    // reWriteBatchedInserts: pgjdbc sends a batch of INSERTs as multi-row statements, the tuning
    // every PostgreSQL guide gives for JDBC batches (several times faster than without).
    let sep = if host_db.contains('?') { '&' } else { '?' };
    Ok((
        format!("jdbc:postgresql://{host_db}{sep}reWriteBatchedInserts=true"),
        user.to_string(),
        password.to_string(),
    ))
}

/// The value after `name` on the command line, parsed.
fn flag<T>(args: &[String], name: &str) -> Result<Option<T>>
where
    T: std::str::FromStr,
    T::Err: std::error::Error + Send + Sync + 'static,
{
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1))
        .map(|v| v.parse::<T>().with_context(|| format!("{name} {v}")))
        .transpose()
}

#[tokio::main]
async fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().collect();
    let rows: i64 = flag(&args, "--rows")?.unwrap_or(200_000);
    // Kafka and PostgreSQL only: an idle Kubernetes control plane beside them takes CPU at
    // random moments, which shows as noise in every cell (ceilings included).
    let owned = match std::env::var_os("TRIBUTARY_DEVSTACK_ENV") {
        Some(_) => None,
        None => Some(Devstack::start(&["--no-kube"])?),
    };
    let stack = match &owned {
        Some(s) => s,
        None => Devstack::shared()?,
    };
    let only = args
        .iter()
        .position(|a| a == "--only")
        .and_then(|i| args.get(i + 1))
        .cloned();
    let source = if only.as_deref() != Some("sink") {
        source_bench(stack, rows).await?
    } else {
        Vec::new()
    };
    if only.as_deref() == Some("source") {
        print_source(rows, &source);
        return Ok(());
    }
    let pg = stack.postgres().await?;
    let topic = stack.create_topic("pgbench", 1, 1, &[]).await?;
    progress(&format!("producing {rows} records to {topic}"));
    let producer: BaseProducer = stack
        .kafka_config()?
        .set("linger.ms", "20")
        .set("batch.size", "1000000")
        .create()?;
    for id in 0..rows {
        let (k, v) = (key(id), value(id));
        let mut rec = BaseRecord::to(&topic).key(&k).payload(&v);
        loop {
            match producer.send(rec) {
                Ok(()) => break,
                Err((_, back)) => {
                    rec = back;
                    producer.poll(Duration::from_millis(10));
                }
            }
        }
    }
    producer.flush(Duration::from_secs(60))?;
    warm_up_reads(stack, &topic, rows)?;

    let one_copy = copy_ceiling(&pg, rows, None).await?;
    progress(&format!("one COPY of every row: {one_copy:.0} rows/s"));
    let java = !args.iter().any(|a| a == "--no-java");
    let repeat: usize = flag(&args, "--repeat")?.unwrap_or(1);
    let plugins = if java {
        Some(Installed::locate().debezium_jdbc_plugins()?)
    } else {
        None
    };
    let dir = tempfile::tempdir()?;
    let mut table = Vec::new();
    for mode in ["insert", "upsert"] {
        for batch in [500i64, 5000] {
            let run = SinkRun {
                stack,
                pg: &pg,
                dir: dir.path(),
                topic: &topic,
                rows,
                mode,
                batch,
            };
            // Each of the three measured `repeat` times, interleaved, and the medians kept:
            // single runs of the same cell differ by up to a third on this shared machine.
            let (mut ceilings, mut ourses, mut javas) = (Vec::new(), Vec::new(), Vec::new());
            for _ in 0..repeat {
                ceilings.push(if mode == "insert" {
                    copy_ceiling(run.pg, rows, Some(batch)).await?
                } else {
                    upsert_ceiling(run.pg, rows, batch).await?
                });
                ourses.push(run.tributary().await?);
                javas.push(match &plugins {
                    Some(plugins) => run.debezium(plugins).await?,
                    None => f64::NAN,
                });
            }
            let (ceiling, ours, java) = (median(ceilings), median(ourses), median(javas));
            progress(&format!(
                "{mode} batch {batch}: Tributary {ours:.0}, Debezium JDBC {java:.0} rows/s (ceiling {ceiling:.0})"
            ));
            table.push([
                mode.to_string(),
                batch.to_string(),
                format!("{ours:.0}"),
                format!("{java:.0}"),
                format!("{ceiling:.0}"),
                format!("{:.0} %", 100.0 * ours / ceiling),
                format!("{:.1}×", ours / java),
            ]);
        }
    }
    println!(
        "\nPostgreSQL sink, {rows} rows of 5 columns, one partition, one task (Kafka → table, from the connector's creation):\n"
    );
    println!(
        "| mode | batch | Tributary rows/s | Debezium JDBC {} (Java) rows/s | ceiling rows/s | Tributary / ceiling | Tributary / Java |",
        Installed::locate().versions.debezium_jdbc
    );
    println!("|---|---|---|---|---|---|---|");
    for row in &table {
        println!("| {} |", row.join(" | "));
    }
    println!(
        "\nInsert ceilings are one COPY per batch, each in its own transaction; one COPY of all {rows} rows: {one_copy:.0} rows/s."
    );
    print_source(rows, &source);
    Ok(())
}

fn print_source(rows: i64, source: &[[String; 5]]) {
    if source.is_empty() {
        return;
    }
    println!(
        "\nPostgreSQL source, {rows} rows of 5 columns, incrementing mode, one task (table → Kafka, from the connector's creation):\n"
    );
    println!(
        "| batch.max.rows | Tributary rows/s | ceiling: SELECT → JSON → Kafka rows/s | ratio | database alone: COPY TO / SELECT rows/s |"
    );
    println!("|---|---|---|---|---|");
    for [a, b, c, d, e] in source {
        println!("| {a} | {b} | {c} | {d} | {e} |");
    }
}
