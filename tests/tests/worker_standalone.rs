//! `tributary-worker standalone` end to end against the devstack broker: the file pipeline
//! (byte-identical, with String and JSON converters), SIGKILL during a transfer, the dead letter
//! queue, and the SASL_SSL listener with a Java-style `sasl.jaas.config`.

#![allow(clippy::expect_used)]

use std::io::Write;
use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail, ensure};
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::{Headers, Message};
use rdkafka::producer::{FutureProducer, FutureRecord};
use tributary_tests::worker::StandaloneWorker;
use tributary_tests::{Devstack, unique_name, wait_until};

const LINES: usize = 1_000_000;

fn write_lines(path: &Path, from: usize, to: usize) -> Result<()> {
    let mut f = std::io::BufWriter::new(
        std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)?,
    );
    for i in from..=to {
        writeln!(f, "{i:07} sequence-numbered line")?;
    }
    f.flush()?;
    Ok(())
}

fn count_lines(path: &Path) -> usize {
    std::fs::read(path)
        .map(|b| b.iter().filter(|&&c| c == b'\n').count())
        .unwrap_or(0)
}

fn base_props(bootstrap: &str, converter: &str) -> String {
    format!(
        "bootstrap.servers={bootstrap}
key.converter=org.apache.kafka.connect.storage.StringConverter
value.converter={converter}
value.converter.schemas.enable=true
offset.flush.interval.ms=1000
"
    )
}

/// Connector names are unique per test: a sink's consumer group is `connect-<name>`, and two
/// tests sharing one would rebalance each other.
fn source(file: &Path, topic: &str) -> String {
    format!(
        "name={}
connector.class=FileStreamSource
file={}
topic={topic}
topic.creation.default.replication.factor=1
topic.creation.default.partitions=1
",
        unique_name("file-source"),
        file.display()
    )
}

fn sink(file: &Path, topic: &str) -> String {
    format!(
        "name={}
connector.class=org.apache.kafka.connect.file.FileStreamSinkConnector
file={}
topics={topic}
",
        unique_name("file-sink"),
        file.display()
    )
}

async fn wait_lines(path: &Path, n: usize, timeout: Duration) -> Result<()> {
    wait_until(
        &format!("{n} lines in {}", path.display()),
        timeout,
        || async {
            let have = count_lines(path);
            Ok((have >= n).then_some(()).or_else(|| {
                tracing::debug!(have, n, "waiting");
                None
            }))
        },
    )
    .await
}

async fn pipeline_is_byte_identical(converter: &str) -> Result<()> {
    let stack = Devstack::shared()?;
    let dir = tempfile::tempdir()?;
    let input = dir.path().join("in.txt");
    let output = dir.path().join("out.txt");
    write_lines(&input, 1, LINES)?;
    let topic = unique_name("lines");
    let mut worker = StandaloneWorker::start(
        dir.path(),
        "pipeline",
        &base_props(stack.kafka_bootstrap()?, converter),
        &[
            ("source", source(&input, &topic)),
            ("sink", sink(&output, &topic)),
        ],
    )?;
    worker.wait_healthy(Duration::from_secs(90)).await?;
    let start = Instant::now();
    wait_lines(&output, LINES, Duration::from_secs(600))
        .await
        .with_context(|| worker.log())?;
    eprintln!("{LINES} lines through {converter} in {:?}", start.elapsed());
    worker.stop();
    let (a, b) = (std::fs::read(&input)?, std::fs::read(&output)?);
    ensure!(
        a.len() == b.len(),
        "input {} bytes, output {} bytes",
        a.len(),
        b.len()
    );
    ensure!(a == b, "output differs from input");
    Ok(())
}

#[tokio::test]
async fn a_million_lines_round_trip_byte_identical_with_string_converter() -> Result<()> {
    pipeline_is_byte_identical("org.apache.kafka.connect.storage.StringConverter").await
}

#[tokio::test]
async fn a_million_lines_round_trip_byte_identical_with_json_converter() -> Result<()> {
    pipeline_is_byte_identical("org.apache.kafka.connect.json.JsonConverter").await
}

/// What the output of a transfer interrupted by crashes shows.
#[derive(Debug, PartialEq, Eq)]
struct Audit {
    distinct: usize,
    duplicates: usize,
}

/// Checks that the output holds 1..=n with no gap and, ignoring repeats of lines already seen,
/// in order (one partition: order must hold end to end).
fn audit(output: &[u8], n: usize) -> Result<Audit> {
    let mut max_seen = 0usize;
    let mut duplicates = 0;
    for (i, line) in output
        .split(|&b| b == b'\n')
        .filter(|l| !l.is_empty())
        .enumerate()
    {
        let text = std::str::from_utf8(line)?;
        let seq: usize = text
            .split(' ')
            .next()
            .and_then(|s| s.parse().ok())
            .with_context(|| format!("output line {i} is not a sequence line: {text:?}"))?;
        if seq <= max_seen {
            duplicates += 1;
        } else if seq == max_seen + 1 {
            max_seen = seq;
        } else {
            bail!(
                "output line {i}: {seq} follows {max_seen}: lines {}..{} are missing or out of order",
                max_seen + 1,
                seq - 1
            );
        }
    }
    ensure!(max_seen == n, "the output ends at line {max_seen} of {n}");
    Ok(Audit {
        distinct: max_seen,
        duplicates,
    })
}

#[test]
fn audit_finds_gaps_and_counts_repeats() -> Result<()> {
    let ok = b"1 a\n2 a\n3 a\n2 a\n3 a\n4 a\n";
    assert_eq!(
        audit(ok, 4)?,
        Audit {
            distinct: 4,
            duplicates: 2
        }
    );
    assert!(audit(b"1 a\n3 a\n", 3).is_err());
    assert!(audit(b"1 a\n2 a\n", 3).is_err());
    Ok(())
}

#[tokio::test]
async fn sigkill_three_times_during_a_transfer_loses_nothing() -> Result<()> {
    let stack = Devstack::shared()?;
    let dir = tempfile::tempdir()?;
    let input = dir.path().join("in.txt");
    let output = dir.path().join("out.txt");
    write_lines(&input, 1, LINES)?;
    let topic = stack.create_topic("crash", 1, 1, &[]).await?;
    let props = base_props(
        stack.kafka_bootstrap()?,
        "org.apache.kafka.connect.storage.StringConverter",
    );
    let mut src = StandaloneWorker::start(
        dir.path(),
        "src",
        &props,
        &[("source", source(&input, &topic))],
    )?;
    let mut snk = StandaloneWorker::start(
        dir.path(),
        "snk",
        &props,
        &[("sink", sink(&output, &topic))],
    )?;
    src.wait_healthy(Duration::from_secs(90)).await?;
    snk.wait_healthy(Duration::from_secs(90)).await?;

    // Kill points: source, sink, then both, each after a random delay into the transfer. The
    // rates of both sides are sampled (topic end offset for the source, output lines for the
    // sink) to bound the duplicates a crash may cause: what that side sent since its last
    // offset flush.
    let watermarks: BaseConsumer = stack.kafka_config()?.create()?;
    let end_offset = || -> Result<i64> {
        Ok(watermarks
            .fetch_watermarks(&topic, 0, Duration::from_secs(10))?
            .1)
    };
    // Kill points are progress marks, not delays, so that they fall inside the transfer however
    // fast it runs: the source is killed once the topic holds 15-25 % of the lines, the sink
    // once the output has 45-55 %, both once it has 75-85 % (random within each band).
    let seed = std::process::id() as u64 ^ Instant::now().elapsed().as_nanos() as u64;
    let marks: Vec<i64> = (0..3)
        .map(|i| {
            let base = [0.15, 0.45, 0.75][i as usize];
            let jitter = (seed.rotate_left(i * 13) % 1000) as f64 / 10_000.0;
            ((base + jitter) * LINES as f64) as i64
        })
        .collect();
    // Output progress from the file's length: every line has the same width (duplicates only
    // make it run ahead, which is fine for a kill mark).
    let line_width = format!("{:07} sequence-numbered line\n", 1).len() as i64;
    let output_lines =
        || -> i64 { std::fs::metadata(&output).map_or(0, |m| m.len() as i64 / line_width) };
    let start = Instant::now();
    let (mut source_rate, mut sink_rate) = (0f64, 0f64);
    let mut kills = Vec::new();
    for (i, mark) in marks.iter().enumerate() {
        let t0 = Instant::now();
        let (lines0, end0) = (output_lines(), end_offset()?);
        let deadline = Instant::now() + Duration::from_secs(300);
        loop {
            let reached = if i == 0 {
                end_offset()?
            } else {
                output_lines()
            };
            if reached >= *mark {
                break;
            }
            ensure!(
                Instant::now() < deadline,
                "the transfer stalled below {mark} (at {reached})\n{}\n{}",
                src.log(),
                snk.log()
            );
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
        let (lines1, end1) = (output_lines(), end_offset()?);
        let secs = t0.elapsed().as_secs_f64();
        sink_rate = sink_rate.max((lines1 - lines0) as f64 / secs);
        source_rate = source_rate.max((end1 - end0) as f64 / secs);
        let side = match i {
            0 => "source",
            1 => "sink",
            _ => "source+sink",
        };
        if side.contains("source") {
            src.restart()?;
        }
        if side.contains("sink") {
            snk.restart()?;
        }
        kills.push((side, lines1 as usize));
        src.wait_healthy(Duration::from_secs(90)).await?;
        snk.wait_healthy(Duration::from_secs(90)).await?;
    }
    // After the last restart, let the rest flow and measure the undisturbed sink rate too.
    let t0 = Instant::now();
    let before = count_lines(&output);
    // Duplicates make the line count reach N early: wait for the last line itself (after the
    // last restart the sink writes in order, so it ends the file).
    let last = format!("{LINES:07} sequence-numbered line\n");
    wait_until(
        "the last line in the output",
        Duration::from_secs(900),
        || async {
            let bytes = std::fs::read(&output).unwrap_or_default();
            let tail = &bytes[bytes.len().saturating_sub(4096)..];
            Ok(tail.ends_with(last.as_bytes()).then_some(()))
        },
    )
    .await
    .with_context(|| format!("{}\n{}", src.log(), snk.log()))?;
    sink_rate = sink_rate.max((count_lines(&output) - before) as f64 / t0.elapsed().as_secs_f64());
    // Let the last commits land, then stop so the sink file is complete.
    tokio::time::sleep(Duration::from_secs(3)).await;
    src.stop();
    snk.stop();
    let result = audit(&std::fs::read(&output)?, LINES)?;
    // Two source crashes and two sink crashes, each repeating at most one flush interval (1 s) of
    // that side's output; a factor 2 covers a flush in progress at the kill.
    let allowed = (2.0 * (2.0 * source_rate + 2.0 * sink_rate)).max(1.0) as usize;
    eprintln!(
        "kills {kills:?}; {} lines, {} duplicates (allowed {allowed}: source {source_rate:.0}/s, sink {sink_rate:.0}/s) in {:?}",
        result.distinct,
        result.duplicates,
        start.elapsed()
    );
    ensure!(
        kills.iter().any(|(_, lines)| *lines < LINES),
        "every kill came after the transfer had finished: {kills:?}"
    );
    ensure!(
        result.duplicates <= allowed,
        "{} duplicates, more than {allowed}",
        result.duplicates
    );
    Ok(())
}

async fn get_json(url: &str) -> Result<(u16, serde_json::Value)> {
    let r = reqwest::get(url).await?;
    let status = r.status().as_u16();
    Ok((status, r.json().await.unwrap_or(serde_json::Value::Null)))
}

#[tokio::test]
async fn malformed_records_go_to_the_dead_letter_queue_or_fail_the_task() -> Result<()> {
    let stack = Devstack::shared()?;
    let dir = tempfile::tempdir()?;
    let topic = stack.create_topic("dlq-in", 1, 1, &[]).await?;
    let dlq = unique_name("dlq");
    let producer: FutureProducer = stack.kafka_config()?.create()?;
    let mut bad = 0;
    for i in 0..200 {
        let payload = if i % 10 == 3 {
            bad += 1;
            format!("{{not json {i}")
        } else {
            format!("\"good-{i}\"")
        };
        producer
            .send(
                FutureRecord::to(&topic).key("k").payload(&payload),
                Duration::from_secs(30),
            )
            .await
            .map_err(|(e, _)| e)?;
    }
    let output = dir.path().join("good.txt");
    let props = format!(
        "bootstrap.servers={}
key.converter=org.apache.kafka.connect.storage.StringConverter
value.converter=org.apache.kafka.connect.json.JsonConverter
value.converter.schemas.enable=false
offset.flush.interval.ms=1000
",
        stack.kafka_bootstrap()?
    );
    let mut worker = StandaloneWorker::start(dir.path(), "dlq", &props, &[])?;
    worker.wait_healthy(Duration::from_secs(90)).await?;
    let http = reqwest::Client::new();
    let (tolerant, strict) = (unique_name("tolerant"), unique_name("strict"));
    let create = |name: &str, tolerance: &str, file: &Path| {
        serde_json::json!({
            "name": name,
            "config": {
                "connector.class": "FileStreamSink",
                "topics": topic,
                "file": file.display().to_string(),
                "errors.tolerance": tolerance,
                "errors.deadletterqueue.topic.name": if tolerance == "all" { dlq.as_str() } else { "" },
                "errors.deadletterqueue.topic.replication.factor": "1",
                "errors.deadletterqueue.context.headers.enable": "true",
            }
        })
    };
    let r = http
        .post(format!("{}/connectors", worker.rest_url))
        .json(&create(&tolerant, "all", &output))
        .send()
        .await?;
    ensure!(
        r.status().as_u16() == 201,
        "create: {} {}",
        r.status(),
        r.text().await?
    );
    wait_lines(&output, 200 - bad, Duration::from_secs(120))
        .await
        .with_context(|| worker.log())?;
    let text = std::fs::read_to_string(&output)?;
    let expected: String = (0..200)
        .filter(|i| i % 10 != 3)
        .map(|i| format!("good-{i}\n"))
        .collect();
    ensure!(text == expected, "good records: {text:?}");

    // Every bad record is in the DLQ, as sent, with Java's context headers.
    let mut consumer_cfg = stack.kafka_config()?;
    consumer_cfg
        .set("group.id", unique_name("dlq-reader"))
        .set("auto.offset.reset", "earliest");
    let consumer: BaseConsumer = consumer_cfg.create()?;
    consumer.subscribe(&[&dlq])?;
    let mut seen = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(60);
    while seen.len() < bad && Instant::now() < deadline {
        if let Some(m) = consumer.poll(Duration::from_millis(500)) {
            let m = m?;
            let headers = m.headers().context("DLQ record without headers")?;
            let header = |name: &str| {
                headers
                    .iter()
                    .find(|h| h.key == name)
                    .and_then(|h| h.value)
                    .map(|v| String::from_utf8_lossy(v).into_owned())
            };
            ensure!(header("__connect.errors.topic").as_deref() == Some(topic.as_str()));
            ensure!(header("__connect.errors.stage").as_deref() == Some("VALUE_CONVERTER"));
            ensure!(
                header("__connect.errors.connector.name").as_deref() == Some(tolerant.as_str())
            );
            ensure!(header("__connect.errors.exception.message").is_some());
            let offset: i64 = header("__connect.errors.offset")
                .context("offset header")?
                .parse()?;
            ensure!(offset % 10 == 3, "DLQ record from offset {offset}");
            let payload = String::from_utf8_lossy(m.payload().unwrap_or_default()).into_owned();
            ensure!(
                payload == format!("{{not json {offset}"),
                "DLQ payload {payload:?}"
            );
            seen.push(offset);
        }
    }
    ensure!(
        seen.len() == bad,
        "{} of {bad} bad records in the DLQ",
        seen.len()
    );

    // Without tolerance the first bad record fails the task, with a trace that says why.
    let r = http
        .post(format!("{}/connectors", worker.rest_url))
        .json(&create(&strict, "none", &dir.path().join("strict.txt")))
        .send()
        .await?;
    ensure!(r.status().as_u16() == 201, "create: {}", r.text().await?);
    let url = format!("{}/connectors/{strict}/status", worker.rest_url);
    let status = wait_until(
        "the strict task to fail",
        Duration::from_secs(120),
        || async {
            let (_, s) = get_json(&url).await?;
            Ok((s["tasks"][0]["state"] == "FAILED").then_some(s))
        },
    )
    .await?;
    let trace = status["tasks"][0]["trace"].as_str().unwrap_or_default();
    ensure!(
        trace.contains("VALUE_CONVERTER") && trace.contains("errors.tolerance"),
        "trace: {trace}"
    );
    // The worker itself carries on.
    let (code, _) = get_json(&format!("{}/connectors/{tolerant}/status", worker.rest_url)).await?;
    ensure!(code == 200);
    Ok(())
}

fn sasl_props(stack: &Devstack, password: &str) -> Result<String> {
    Ok(format!(
        "bootstrap.servers={}
security.protocol=SASL_SSL
sasl.mechanism=SCRAM-SHA-512
sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required \\
    username=\"{}\" \\
    password=\"{password}\";
ssl.truststore.type=PEM
ssl.truststore.location={}
key.converter=org.apache.kafka.connect.storage.StringConverter
value.converter=org.apache.kafka.connect.storage.StringConverter
offset.flush.interval.ms=1000
",
        stack.var("TRIBUTARY_KAFKA_SASL_BOOTSTRAP")?,
        stack.var("TRIBUTARY_KAFKA_SASL_USERNAME")?,
        stack.var("TRIBUTARY_KAFKA_CA_CERT")?,
    ))
}

#[tokio::test]
async fn the_file_pipeline_works_over_sasl_ssl_and_a_wrong_password_stops_startup() -> Result<()> {
    let stack = Devstack::shared()?;
    let dir = tempfile::tempdir()?;
    let input = dir.path().join("in.txt");
    let output = dir.path().join("out.txt");
    write_lines(&input, 1, 20_000)?;
    let topic = unique_name("sasl-lines");
    let mut worker = StandaloneWorker::start(
        dir.path(),
        "sasl",
        &sasl_props(stack, stack.kafka_sasl_password()?)?,
        &[
            ("source", source(&input, &topic)),
            ("sink", sink(&output, &topic)),
        ],
    )?;
    worker.wait_healthy(Duration::from_secs(90)).await?;
    wait_lines(&output, 20_000, Duration::from_secs(180))
        .await
        .with_context(|| worker.log())?;
    worker.stop();
    ensure!(std::fs::read(&input)? == std::fs::read(&output)?);

    let mut wrong = StandaloneWorker::start(
        dir.path(),
        "wrong",
        &sasl_props(stack, "not-the-password")?,
        &[],
    )?;
    let log = wrong.wait_exit(Duration::from_secs(120)).await?;
    ensure!(
        log.contains("cannot reach the Kafka cluster")
            && log.to_lowercase().contains("authentication"),
        "start-up with a wrong password should fail naming authentication:\n{log}"
    );
    Ok(())
}

#[tokio::test]
async fn config_provider_placeholders_resolve_in_tasks_and_stay_raw_in_the_api() -> Result<()> {
    let stack = Devstack::shared()?;
    let dir = tempfile::tempdir()?;
    let input = dir.path().join("in.txt");
    let output = dir.path().join("out.txt");
    write_lines(&input, 1, 1000)?;
    let secrets = dir.path().join("paths.properties");
    std::fs::write(
        &secrets,
        format!("input={}\noutput={}\n", input.display(), output.display()),
    )?;
    let topic = unique_name("provided");
    let props = format!(
        "{}config.providers=file
config.providers.file.class=org.apache.kafka.common.config.provider.FileConfigProvider
",
        base_props(
            stack.kafka_bootstrap()?,
            "org.apache.kafka.connect.storage.StringConverter"
        )
    );
    let source_name = unique_name("provided-source");
    let source = format!(
        "name={source_name}
connector.class=FileStreamSource
file=${{file:{s}:input}}
topic={topic}
topic.creation.default.replication.factor=1
topic.creation.default.partitions=1
",
        s = secrets.display()
    );
    let sink = format!(
        "name={}
connector.class=FileStreamSink
file=${{file:{s}:output}}
topics={topic}
",
        unique_name("provided-sink"),
        s = secrets.display()
    );
    let mut worker = StandaloneWorker::start(
        dir.path(),
        "provided",
        &props,
        &[("source", source), ("sink", sink)],
    )?;
    worker.wait_healthy(Duration::from_secs(90)).await?;
    wait_lines(&output, 1000, Duration::from_secs(120))
        .await
        .with_context(|| worker.log())?;
    ensure!(std::fs::read(&input)? == std::fs::read(&output)?);
    let (code, config) = get_json(&format!(
        "{}/connectors/{source_name}/config",
        worker.rest_url
    ))
    .await?;
    ensure!(code == 200);
    let shown = config["file"].as_str().unwrap_or_default();
    ensure!(
        shown.starts_with("${file:") && !shown.contains("in.txt"),
        "GET config shows {shown:?}, not the placeholder"
    );
    let (_, tasks) = get_json(&format!(
        "{}/connectors/{source_name}/tasks",
        worker.rest_url
    ))
    .await?;
    let task_file = tasks[0]["config"]["file"].as_str().unwrap_or_default();
    ensure!(
        task_file == shown,
        "task config shows {task_file:?}, not the placeholder"
    );
    Ok(())
}
