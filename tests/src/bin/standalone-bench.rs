//! `make bench`: Tributary's standalone worker against Java `connect-standalone` on one devstack
//! broker — file source → Kafka and Kafka → file sink at 1M × 100 B, 10M × 100 B and 1M × 1 KiB,
//! the raw rdkafka ceiling, idle RSS, start → `/health`, and RSS per task at 100 tasks. Prints
//! Markdown tables; docs/benchmarks.md keeps a run.
//!
//! Flags: `--quick` (200k × 100 B only), `--tributary-only` (no Java runs), `--sources-only`,
//! `--sinks-only`, `--repeat N` (each measurement N times, tables show the median; the
//! throughput figures of two shared cores vary by tens of percent between runs).

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use nix::sys::signal::Signal;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::producer::{BaseProducer, BaseRecord, Producer};
use tributary_tests::installed::Installed;
use tributary_tests::stack::java_connect::{BENCH_JVM_OPTS, java_command};
use tributary_tests::stack::ports::free_ports;
use tributary_tests::stack::process::{Managed, spawn};
use tributary_tests::{Devstack, unique_name};

fn progress(msg: &str) {
    eprintln!("[bench {}] {msg}", chrono_now());
}

fn chrono_now() -> String {
    let s = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    format!("{:02}:{:02}:{:02}", (s / 3600) % 24, (s / 60) % 60, s % 60)
}

/// CPU seconds (user + system) of a process, from /proc.
fn cpu_seconds(pid: u32) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let after = stat.rsplit_once(')').map(|(_, r)| r).unwrap_or("");
    let f: Vec<&str> = after.split_whitespace().collect();
    let ticks = |i: usize| f.get(i).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0);
    (ticks(11) + ticks(12)) / 100.0
}

/// `VmRSS` or `VmHWM` in MiB.
fn memory_mib(pid: u32, field: &str) -> f64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap_or_default()
        .lines()
        .find(|l| l.starts_with(field))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|kb| kb.parse::<f64>().ok())
        .map_or(0.0, |kb| kb / 1024.0)
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Kind {
    JavaDefault,
    JavaInflight5,
    Tributary,
}

impl Kind {
    fn name(self) -> &'static str {
        match self {
            Kind::JavaDefault => "Java connect-standalone (defaults)",
            Kind::JavaInflight5 => "Java, max.in.flight=5",
            Kind::Tributary => "tributary-worker standalone",
        }
    }
}

struct Worker {
    process: Managed,
    url: String,
    started: Instant,
}

fn worker_binary() -> Result<PathBuf> {
    std::env::var_os("TRIBUTARY_WORKER_BIN")
        .map(PathBuf::from)
        .context("set TRIBUTARY_WORKER_BIN to a release tributary-worker (make bench does)")
}

fn start_worker(
    kind: Kind,
    dir: &Path,
    bootstrap: &str,
    connectors: &[(&str, String)],
) -> Result<Worker> {
    std::fs::create_dir_all(dir)?;
    // Write back what earlier runs left dirty (input files, broker logs, sink output: gigabytes at
    // 10M records) so that the kernel's writeback does not compete with the run being measured.
    nix::unistd::sync();
    let ports = free_ports(2)?;
    let name = unique_name("w");
    let mut props = format!(
        "bootstrap.servers={bootstrap}
key.converter=org.apache.kafka.connect.storage.StringConverter
value.converter=org.apache.kafka.connect.storage.StringConverter
offset.storage.file.filename={}
listeners=http://127.0.0.1:{}
",
        dir.join(format!("{name}.offsets")).display(),
        ports[0]
    );
    if kind == Kind::JavaInflight5 {
        props.push_str("producer.max.in.flight.requests.per.connection=5\n");
    }
    if kind == Kind::Tributary {
        props.push_str(&format!(
            "tributary.health.listener=http://127.0.0.1:{}\n",
            ports[1]
        ));
    } else {
        props.push_str("plugin.discovery=service_load\nrest.advertised.host.name=127.0.0.1\n");
    }
    let worker_file = dir.join(format!("{name}.properties"));
    std::fs::write(&worker_file, props)?;
    let mut files = vec![worker_file];
    for (n, text) in connectors {
        let f = dir.join(format!("{name}-{n}.properties"));
        std::fs::write(&f, text)?;
        files.push(f);
    }
    let mut cmd = if kind == Kind::Tributary {
        let mut c = Command::new(worker_binary()?);
        c.arg("standalone").env("TRIBUTARY_LOG", "warn");
        c
    } else {
        java_command(&Installed::locate(), BENCH_JVM_OPTS, "ConnectStandalone")?
    };
    cmd.args(&files);
    let started = Instant::now();
    let process = spawn(&name, &mut cmd, dir, Signal::SIGTERM)?;
    Ok(Worker {
        process,
        url: format!("http://127.0.0.1:{}", ports[0]),
        started,
    })
}

impl Worker {
    fn pid(&self) -> u32 {
        self.process.pid()
    }

    async fn wait_healthy(&mut self) -> Result<Duration> {
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(2))
            .build()?;
        loop {
            if let Some(s) = self.process.poll_exit() {
                bail!("worker exited ({s}); log {}", self.process.log.display());
            }
            if let Ok(r) = http.get(format!("{}/health", self.url)).send().await
                && r.status().is_success()
            {
                return Ok(self.started.elapsed());
            }
            if self.started.elapsed() > Duration::from_secs(180) {
                bail!(
                    "not healthy after 180 s; log {}",
                    self.process.log.display()
                );
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    fn stop(&mut self) {
        self.process.request_stop();
        self.process
            .wait_stopped(Instant::now() + Duration::from_secs(60));
    }
}

fn line(seq: u64, size: usize) -> String {
    let mut s = format!("{seq:012} ");
    while s.len() + 1 < size {
        s.push((b'a' + (s.len() % 26) as u8) as char);
    }
    s
}

fn write_input(path: &Path, n: u64, size: usize) -> Result<()> {
    if path.exists() {
        return Ok(());
    }
    let mut f = std::io::BufWriter::with_capacity(1 << 20, std::fs::File::create(path)?);
    for i in 0..n {
        f.write_all(line(i, size).as_bytes())?;
        f.write_all(b"\n")?;
    }
    f.flush()?;
    Ok(())
}

/// Lines written so far, from the file's length: every input line is `size` bytes with its newline
/// and StringConverter writes them back unchanged. Re-reading the file instead would cost the
/// measuring process a core at 10M records (a 1 GB read every poll) and starve the worker it measures.
/// The middle value (the upper one of an even count); runs on two shared cores vary by tens of
/// percent, so tables report the median of `--repeat` runs.
fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v.get(v.len() / 2).copied().unwrap_or(0.0)
}

/// The run with the median rate.
fn median_run(mut v: Vec<Run>) -> Result<Run> {
    v.sort_by(|a, b| a.rate().total_cmp(&b.rate()));
    let i = v.len() / 2;
    if i >= v.len() {
        bail!("no run to take the median of");
    }
    Ok(v.swap_remove(i))
}

/// The ceiling producer's first record, which the sink topic also holds ahead of the n lines.
const WARM_UP: &str = "warm-up";

fn lines_written(path: &Path, size: usize) -> u64 {
    std::fs::metadata(path)
        .map(|m| m.len().saturating_sub(WARM_UP.len() as u64 + 1) / size as u64)
        .unwrap_or(0)
}

/// Once the run is over: the output is the warm-up line and then the input, line for line.
fn check_output(input: &Path, output: &Path) -> Result<()> {
    let mut a = format!("{WARM_UP}\n").into_bytes();
    a.extend(std::fs::read(input)?);
    let b = std::fs::read(output)?;
    if a != b {
        bail!(
            "{} ({} bytes) differs from the input {} ({} bytes)",
            output.display(),
            b.len(),
            input.display(),
            a.len()
        );
    }
    Ok(())
}

fn produce(stack: &Devstack, topic: &str, n: u64, size: usize) -> Result<Duration> {
    let producer: BaseProducer = stack
        .kafka_config()?
        .set("enable.idempotence", "true")
        .set("acks", "all")
        .set("queue.buffering.max.kbytes", "32768")
        .create()?;
    // Warm up (metadata, producer id) before the clock starts, as the workers' clocks start at
    // their first record.
    producer
        .send(BaseRecord::<(), str>::to(topic).payload(WARM_UP))
        .map_err(|(e, _)| e)?;
    producer.flush(Duration::from_secs(60))?;
    let start = Instant::now();
    for i in 0..n {
        let payload = line(i, size);
        let mut rec = BaseRecord::<(), str>::to(topic).payload(payload.as_str());
        loop {
            match producer.send(rec) {
                Ok(()) => break,
                Err((_, r)) => {
                    rec = r;
                    producer.poll(Duration::from_millis(5));
                }
            }
        }
        if i % 1000 == 0 {
            producer.poll(Duration::ZERO);
        }
    }
    producer.flush(Duration::from_secs(300))?;
    Ok(start.elapsed())
}

fn consume(stack: &Devstack, topic: &str, n: u64) -> Result<Duration> {
    let consumer: BaseConsumer = stack
        .kafka_config()?
        .set("group.id", unique_name("ceiling"))
        .set("auto.offset.reset", "earliest")
        .set("enable.auto.commit", "false")
        .set("queued.max.messages.kbytes", "16384")
        .set("fetch.queue.backoff.ms", "10")
        .create()?;
    consumer.subscribe(&[topic])?;
    let mut got = 0;
    let mut start = None;
    while got < n {
        if let Some(m) = consumer.poll(Duration::from_millis(100)) {
            m?;
            start.get_or_insert_with(Instant::now);
            got += 1;
        }
    }
    Ok(start.map(|s| s.elapsed()).unwrap_or_default())
}

fn end_offset(consumer: &BaseConsumer, topic: &str) -> i64 {
    consumer
        .fetch_watermarks(topic, 0, Duration::from_secs(5))
        .map(|w| w.1)
        .unwrap_or(0)
}

#[derive(Debug, Clone)]
struct Run {
    kind: Kind,
    workload: String,
    n: u64,
    bytes: u64,
    secs: f64,
    cpu: f64,
    peak_rss: f64,
}

impl Run {
    fn rate(&self) -> f64 {
        self.n as f64 / self.secs
    }
    fn mbps(&self) -> f64 {
        self.bytes as f64 / self.secs / 1e6
    }
    fn cpu_per_million(&self) -> f64 {
        self.cpu / (self.n as f64 / 1e6)
    }
}

async fn measure(
    mut w: Worker,
    kind: Kind,
    workload: String,
    n: u64,
    bytes: u64,
    done: impl Fn() -> u64,
) -> Result<Run> {
    w.wait_healthy().await?;
    let cpu0 = cpu_seconds(w.pid());
    // The clock starts when the connector has produced or written its first record.
    let deadline = Instant::now() + Duration::from_secs(1800);
    while done() == 0 {
        if Instant::now() > deadline {
            bail!("{workload}: nothing moved; log {}", w.process.log.display());
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let start = Instant::now();
    let first = done();
    let mut last_report = Instant::now();
    loop {
        let d = done();
        if d >= n {
            break;
        }
        if Instant::now() > deadline {
            bail!("{workload}: {d} of {n} after 30 min");
        }
        if last_report.elapsed() > Duration::from_secs(10) {
            progress(&format!("  {} {workload}: {d}/{n}", kind.name()));
            last_report = Instant::now();
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let secs = start.elapsed().as_secs_f64();
    let run = Run {
        kind,
        workload,
        n: n - first,
        bytes: bytes * (n - first) / n,
        secs,
        cpu: cpu_seconds(w.pid()) - cpu0,
        peak_rss: memory_mib(w.pid(), "VmHWM"),
    };
    w.stop();
    Ok(run)
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<()> {
    let quick = std::env::args().any(|a| a == "--quick");
    let repeat: usize = match std::env::args().position(|a| a == "--repeat") {
        Some(i) => std::env::args()
            .nth(i + 1)
            .and_then(|r| r.parse().ok())
            .filter(|&r| r > 0)
            .context("--repeat takes a positive number of runs")?,
        None => 1,
    };
    progress("starting the devstack (Kafka only)");
    let stack = Devstack::start(&["--no-kube", "--no-postgres"])?;
    let bootstrap = stack.kafka_bootstrap()?.to_string();
    let dir = tempfile::Builder::new()
        .prefix("tributary-bench")
        .tempdir()?;
    let watermarks: BaseConsumer = stack.kafka_config()?.create()?;
    let sizes: Vec<(u64, usize)> = if quick {
        vec![(200_000, 100)]
    } else {
        vec![(1_000_000, 100), (10_000_000, 100), (1_000_000, 1024)]
    };
    // `--tributary-only` skips the Java runs (for quick iterations on Tributary itself).
    let only = |w: &str| {
        !std::env::args().any(|a| a == "--sinks-only" || a == "--sources-only")
            || std::env::args().any(|a| a == format!("--{w}s-only"))
    };
    let kinds: Vec<Kind> = if std::env::args().any(|a| a == "--tributary-only") {
        vec![Kind::Tributary]
    } else {
        vec![Kind::JavaDefault, Kind::JavaInflight5, Kind::Tributary]
    };
    let mut ceilings = Vec::new();
    let mut runs: Vec<Run> = Vec::new();
    for &(n, size) in &sizes {
        let label = format!("{}M × {} B", n as f64 / 1e6, size);
        let bytes = n * size as u64;
        let input = dir.path().join(format!("in-{n}-{size}.txt"));
        progress(&format!("{label}: writing the input file"));
        write_input(&input, n, size)?;
        // Ceiling: a bare producer and consumer loop, the median of `repeat` runs. The sinks read
        // the first run's topic.
        let mut topic = String::new();
        let (mut produced, mut consumed) = (Vec::new(), Vec::new());
        for _ in 0..repeat {
            let t = stack.create_topic("ceiling", 1, 1, &[]).await?;
            let p = produce(&stack, &t, n, size)?;
            let c = consume(&stack, &t, n)?;
            progress(&format!(
                "{label}: ceiling produce {:.0}/s, consume {:.0}/s",
                n as f64 / p.as_secs_f64(),
                n as f64 / c.as_secs_f64()
            ));
            produced.push(n as f64 / p.as_secs_f64());
            consumed.push(n as f64 / c.as_secs_f64());
            if topic.is_empty() {
                topic = t;
            }
        }
        ceilings.push((label.clone(), median(produced), median(consumed), bytes));
        for &kind in kinds.iter().filter(|_| only("source")) {
            let mut reps = Vec::new();
            for _ in 0..repeat {
                let topic = stack.create_topic("bench-src", 1, 1, &[]).await?;
                let source = format!(
                    "name={}\nconnector.class=org.apache.kafka.connect.file.FileStreamSourceConnector\nfile={}\ntopic={topic}\n",
                    unique_name("src"),
                    input.display()
                );
                progress(&format!("{label}: {} source", kind.name()));
                let w = start_worker(
                    kind,
                    &dir.path().join("w"),
                    &bootstrap,
                    &[("source", source)],
                )?;
                let t = topic.clone();
                let wm = &watermarks;
                let run = measure(w, kind, format!("source {label}"), n, bytes, || {
                    end_offset(wm, &t).max(0) as u64
                })
                .await?;
                progress(&format!("  {:.0} records/s", run.rate()));
                reps.push(run);
            }
            runs.push(median_run(reps)?);
        }
        // Sink: the ceiling topic already holds n records of this size.
        for &kind in kinds.iter().filter(|_| only("sink")) {
            if kind == Kind::JavaInflight5 {
                continue; // the producer setting does not affect a sink
            }
            let mut reps = Vec::new();
            for _ in 0..repeat {
                let out = dir.path().join(format!("out-{}.txt", unique_name("sink")));
                let sink = format!(
                    "name={}\nconnector.class=org.apache.kafka.connect.file.FileStreamSinkConnector\nfile={}\ntopics={topic}\n",
                    unique_name("snk"),
                    out.display()
                );
                progress(&format!("{label}: {} sink", kind.name()));
                let w = start_worker(kind, &dir.path().join("w"), &bootstrap, &[("sink", sink)])?;
                let o = out.clone();
                let run = measure(w, kind, format!("sink {label}"), n, bytes, || {
                    lines_written(&o, size)
                })
                .await?;
                check_output(&input, &out)?;
                let _ = std::fs::remove_file(&out);
                progress(&format!("  {:.0} records/s", run.rate()));
                reps.push(run);
            }
            runs.push(median_run(reps)?);
        }
    }

    // Idle RSS, start → /health, RSS per task at 100 tasks.
    let mut idle = Vec::new();
    for kind in [Kind::JavaDefault, Kind::Tributary] {
        if !kinds.contains(&kind) {
            continue;
        }
        progress(&format!("{}: idle and 100 tasks", kind.name()));
        let mut w = start_worker(kind, &dir.path().join("idle"), &bootstrap, &[])?;
        let health = w.wait_healthy().await?;
        tokio::time::sleep(Duration::from_secs(10)).await;
        let idle_rss = memory_mib(w.pid(), "VmRSS");
        let http = reqwest::Client::new();
        let topic = stack.create_topic("idle", 1, 1, &[]).await?;
        for i in 0..100 {
            let f = dir.path().join(format!("empty-{i}.txt"));
            std::fs::write(&f, "")?;
            let r = http
                .post(format!("{}/connectors", w.url))
                .json(&serde_json::json!({"name": format!("idle-{i}"), "config": {
                    "connector.class": "FileStreamSource", "file": f.display().to_string(), "topic": topic}}))
                .send()
                .await?;
            if !r.status().is_success() {
                bail!("creating idle-{i}: {}", r.text().await?);
            }
        }
        tokio::time::sleep(Duration::from_secs(20)).await;
        let loaded = memory_mib(w.pid(), "VmRSS");
        let mut datagen = None;
        if kind == Kind::Tributary {
            for i in 0..100 {
                http.delete(format!("{}/connectors/idle-{i}", w.url))
                    .send()
                    .await?;
            }
            tokio::time::sleep(Duration::from_secs(5)).await;
            let before = memory_mib(w.pid(), "VmRSS");
            let r = http
                .post(format!("{}/connectors", w.url))
                .json(&serde_json::json!({"name": "datagen", "config": {
                    "connector.class": "dev.tributary.connect.datagen.DatagenConnector",
                    "kafka.topic": topic, "tasks.max": "100", "records.per.second": "1",
                    "quickstart": "bytes"}}))
                .send()
                .await?;
            if !r.status().is_success() {
                bail!("creating datagen: {}", r.text().await?);
            }
            tokio::time::sleep(Duration::from_secs(20)).await;
            datagen = Some((memory_mib(w.pid(), "VmRSS") - before) / 100.0);
        }
        idle.push((kind, health, idle_rss, (loaded - idle_rss) / 100.0, datagen));
        w.stop();
    }

    // Tables.
    println!("\n### Throughput\n");
    println!("Each row is the median of {repeat} run(s); the ceiling too.\n");
    println!(
        "| workload | worker | records/s | MB/s | CPU s / M records | peak RSS MiB | % of ceiling | × Java defaults |"
    );
    println!("|---|---|---:|---:|---:|---:|---:|---:|");
    for r in &runs {
        let sink = r.workload.starts_with("sink");
        let label = r.workload.split_once(' ').map(|x| x.1).unwrap_or("");
        let ceiling = ceilings
            .iter()
            .find(|c| c.0 == label)
            .map(|c| if sink { c.2 } else { c.1 })
            .unwrap_or(f64::NAN);
        let java = runs
            .iter()
            .find(|j| j.workload == r.workload && j.kind == Kind::JavaDefault)
            .map(Run::rate)
            .unwrap_or(f64::NAN);
        println!(
            "| {} | {} | {:.0} | {:.1} | {:.2} | {:.0} | {:.0} % | {:.2} |",
            r.workload,
            r.kind.name(),
            r.rate(),
            r.mbps(),
            r.cpu_per_million(),
            r.peak_rss,
            100.0 * r.rate() / ceiling,
            r.rate() / java
        );
    }
    println!("\n### Raw ceiling (rdkafka loops in this process)\n");
    println!("| size | produce records/s | produce MB/s | consume records/s | consume MB/s |");
    println!("|---|---:|---:|---:|---:|");
    for (label, p, c, bytes) in &ceilings {
        let n = bytes / label_size(label).max(1);
        let per = *bytes as f64 / n as f64 / 1e6;
        println!(
            "| {label} | {p:.0} | {:.1} | {c:.0} | {:.1} |",
            p * per,
            c * per
        );
    }
    println!("\n### Footprint\n");
    println!(
        "| worker | start → /health 200 | idle RSS MiB | RSS per task, 100 file source connectors (MiB) | RSS per task, datagen tasks.max=100 (MiB) |"
    );
    println!("|---|---:|---:|---:|---:|");
    for (kind, health, idle_rss, per_task, datagen) in &idle {
        println!(
            "| {} | {:.2} s | {:.1} | {:.2} | {} |",
            kind.name(),
            health.as_secs_f64(),
            idle_rss,
            per_task,
            datagen.map_or("–".to_string(), |d| format!("{d:.2}"))
        );
    }
    Ok(())
}

fn label_size(label: &str) -> u64 {
    label
        .split('×')
        .nth(1)
        .and_then(|s| s.trim().trim_end_matches(" B").parse().ok())
        .unwrap_or(1)
}
