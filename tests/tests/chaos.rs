//! Chaos: a file source and a file sink move sequence-numbered records through a 3-worker
//! distributed cluster on a 3-node Kafka cluster while workers are killed with SIGKILL, a broker
//! is killed and started again, a worker is frozen (SIGSTOP) past the session timeout and thawed,
//! and a worker's network namespace is cut off and healed. Every check reads the data: each
//! record carries its sequence number and a checksum of it, and the sink's file must hold every
//! sequence number written to the source's file (nothing lost, nothing garbled), with duplicates
//! bounded by what the offsets could not cover yet (two flush intervals per task and fault, plus
//! a dead broker's leader failover). After a thaw or a heal, the worker must not write a
//! status under the generation it had before (it rejoins first). A second test turns on the
//! worker's debug-only `TRIBUTARY_CHAOS_UNSAFE_COMMIT` (sink offsets committed before the data
//! is durable) and requires the same checks to report loss: proof they can fail.
//! A third runs the pipeline through the operator (a KafkaConnect and two Connector resources)
//! while the kube-apiserver is stopped and started again and the operator is killed.
//!
//! Bounded here (one round of each fault, ≥ 1M records); `make test-long` runs more rounds and
//! records through `TRIBUTARY_CHAOS_ROUNDS` and `TRIBUTARY_CHAOS_RECORDS`. The table is printed
//! (run with `--nocapture`) and written to `target/chaos/report.txt`; docs/reliability.md keeps
//! the last one measured.

#![allow(clippy::expect_used)]

use std::collections::BTreeMap;
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{Context, Result, bail, ensure};
use rdkafka::Message;
use serde_json::{Value, json};
use tributary_tests::stack::pod_net::{PodNet, pod_ip};
use tributary_tests::worker::WorkerProcess;
use tributary_tests::{Devstack, unique_name};

/// Records written to the source file per second while faults are injected.
const RATE: usize = 6_000;
const SESSION_TIMEOUT_MS: u64 = 6_000;
/// `offset.flush.interval.ms` of the workers, in seconds.
const FLUSH_INTERVAL_S: usize = 1;
/// How long a frozen worker stays frozen and a cut one stays cut: past the session timeout.
const OUTAGE: Duration = Duration::from_secs(15);
/// A broker stays down this long before it is started again.
const BROKER_DOWN: Duration = Duration::from_secs(8);
/// Generous limit for the pipeline to catch up after a fault (3× what it takes here).
const RECOVERY_LIMIT: Duration = Duration::from_secs(180);
const START: Duration = Duration::from_secs(180);

/// One private 3-node stack for the tests; they take turns.
fn stack() -> Result<&'static Devstack> {
    static STACK: OnceLock<std::result::Result<Devstack, String>> = OnceLock::new();
    STACK
        .get_or_init(|| {
            // With a control plane of its own (the kube row restarts its apiserver): its pods
            // and operator get addresses and a namespace apart from the shared stack's.
            Devstack::start(&[
                "--kafka-nodes",
                "3",
                "--no-postgres",
                "--pod-ip-offset",
                "50000",
                "--operator-netns",
                "trib-chaos-op",
            ])
            .map_err(|e| format!("{e:#}"))
        })
        .as_ref()
        .map_err(|e| anyhow::anyhow!("{e}"))
}

fn turn() -> &'static tokio::sync::Mutex<()> {
    static TURN: OnceLock<tokio::sync::Mutex<()>> = OnceLock::new();
    TURN.get_or_init(|| tokio::sync::Mutex::new(()))
}

fn env_usize(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// The checksum a record carries next to its sequence number.
fn check_of(seq: usize) -> u64 {
    (seq as u64 ^ 0x5bd1_e995).wrapping_mul(0x9e37_79b9_7f4a_7c15)
}

fn line_of(seq: usize) -> String {
    format!("{seq:09} {:016x}\n", check_of(seq))
}

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

/// Appends numbered records to the source file at [`RATE`] until told to stop.
struct Writer {
    written: Arc<AtomicUsize>,
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<Result<()>>>,
}

impl Writer {
    fn start(path: &Path) -> Result<Self> {
        let written = Arc::new(AtomicUsize::new(0));
        let stop = Arc::new(AtomicBool::new(false));
        let mut file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)?;
        let (w, s) = (written.clone(), stop.clone());
        let thread = std::thread::spawn(move || -> Result<()> {
            let started = Instant::now();
            let mut n = 0usize;
            let mut buf = String::new();
            while !s.load(Ordering::Acquire) {
                let target = (started.elapsed().as_secs_f64() * RATE as f64) as usize;
                buf.clear();
                while n < target {
                    buf.push_str(&line_of(n));
                    n += 1;
                }
                // Whole lines in one write: the source never sees half a record.
                file.write_all(buf.as_bytes())?;
                w.store(n, Ordering::Release);
                std::thread::sleep(Duration::from_millis(50));
            }
            Ok(())
        });
        Ok(Self {
            written,
            stop,
            thread: Some(thread),
        })
    }

    fn written(&self) -> usize {
        self.written.load(Ordering::Acquire)
    }

    fn finish(&mut self) -> Result<usize> {
        self.stop.store(true, Ordering::Release);
        if let Some(t) = self.thread.take() {
            t.join()
                .map_err(|_| anyhow::anyhow!("writer thread panicked"))??;
        }
        Ok(self.written())
    }
}

impl Drop for Writer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Release);
    }
}

/// What the sink's file holds so far, read incrementally.
#[derive(Default)]
struct Seen {
    counts: Vec<u16>,
    pos: u64,
    partial: Vec<u8>,
    /// Lines that do not parse or whose checksum does not match their sequence number.
    garbled: usize,
    /// Every sequence number below this one has arrived.
    complete_below: usize,
}

impl Seen {
    fn refresh(&mut self, path: &Path) -> Result<()> {
        let Ok(mut f) = std::fs::File::open(path) else {
            return Ok(());
        };
        f.seek(SeekFrom::Start(self.pos))?;
        let mut buf = Vec::new();
        f.read_to_end(&mut buf)?;
        self.pos += buf.len() as u64;
        self.partial.extend_from_slice(&buf);
        let Some(last_nl) = self.partial.iter().rposition(|b| *b == b'\n') else {
            return Ok(());
        };
        let rest = self.partial.split_off(last_nl + 1);
        let mut whole = std::mem::replace(&mut self.partial, rest);
        self.take(&mut whole);
        Ok(())
    }

    /// Counts the whole lines of `whole` and empties it.
    fn take(&mut self, whole: &mut Vec<u8>) {
        for line in whole.split(|b| *b == b'\n').filter(|l| !l.is_empty()) {
            match parse(line) {
                Some(seq) => {
                    if self.counts.len() <= seq {
                        self.counts.resize(seq + 1, 0);
                    }
                    self.counts[seq] = self.counts[seq].saturating_add(1);
                }
                None => self.garbled += 1,
            }
        }
        while self.counts.get(self.complete_below).is_some_and(|c| *c > 0) {
            self.complete_below += 1;
        }
        whole.clear();
    }

    /// (lost, duplicates) among sequence numbers `range`.
    fn tally(&self, range: std::ops::Range<usize>) -> (usize, usize) {
        let (mut lost, mut dups) = (0, 0);
        for seq in range {
            match self.counts.get(seq).copied().unwrap_or(0) {
                0 => lost += 1,
                c => dups += usize::from(c) - 1,
            }
        }
        (lost, dups)
    }
}

fn parse(line: &[u8]) -> Option<usize> {
    let text = std::str::from_utf8(line).ok()?;
    let (seq, check) = text.split_once(' ')?;
    let seq: usize = seq.parse().ok()?;
    (u64::from_str_radix(check, 16).ok()? == check_of(seq)).then_some(seq)
}

/// A worker in a network namespace of its own, like a pod.
struct Node {
    worker: WorkerProcess,
    net: PodNet,
}

impl Drop for Node {
    fn drop(&mut self) {
        if let Some(pid) = self.worker.pid() {
            let _ = nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(pid as i32),
                nix::sys::signal::Signal::SIGCONT,
            );
        }
        let _ = self.net.set_link(true);
        self.worker.stop();
        self.net.delete();
    }
}

struct Pipeline {
    nodes: Vec<Node>,
    group: String,
    source: String,
    sink: String,
    topic: String,
    input: PathBuf,
    output: PathBuf,
    seen: Seen,
}

fn http() -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(Duration::from_secs(5))
        .build()
        .expect("http client")
}

impl Pipeline {
    /// Three workers of a new group, each in its own namespace (addresses from `first_ip` on),
    /// then the source and sink connectors.
    async fn start(
        stack: &Devstack,
        dir: &Path,
        first_ip: u32,
        env: &[(&str, &str)],
    ) -> Result<Self> {
        let group = unique_name("chaos");
        let bootstrap = stack.var("TRIBUTARY_KAFKA_POD_BOOTSTRAP")?;
        let flush_ms = FLUSH_INTERVAL_S * 1000;
        let props = format!(
            "bootstrap.servers={bootstrap}
group.id={group}
key.converter=org.apache.kafka.connect.json.JsonConverter
value.converter=org.apache.kafka.connect.json.JsonConverter
key.converter.schemas.enable=false
value.converter.schemas.enable=false
config.storage.topic={group}-configs
offset.storage.topic={group}-offsets
status.storage.topic={group}-status
config.storage.replication.factor=3
offset.storage.replication.factor=3
status.storage.replication.factor=3
offset.storage.partitions=3
status.storage.partitions=1
offset.flush.interval.ms={flush_ms}
session.timeout.ms={SESSION_TIMEOUT_MS}
heartbeat.interval.ms=1000
scheduled.rebalance.max.delay.ms=0
consumer.session.timeout.ms={SESSION_TIMEOUT_MS}
consumer.heartbeat.interval.ms=1000
"
        );
        let topic = stack
            .create_topic("chaos-data", 3, 3, &[("min.insync.replicas", "2")])
            .await?;
        let input = dir.join(format!("{group}.in"));
        let output = dir.join(format!("{group}.out"));
        std::fs::write(&input, "")?;
        let mut nodes = Vec::new();
        for i in 0..3u32 {
            let ip = pod_ip(first_ip + i);
            let tag = format!("cx{}{}", std::process::id() % 100_000, first_ip % 10 + i);
            let netns = format!("trib-chaos-{}-{}", std::process::id(), first_ip + i);
            let net = PodNet::create(&netns, &tag, &ip)?;
            let worker = WorkerProcess::start_distributed_in_netns(
                dir,
                &format!("{group}-w{i}"),
                &props,
                &netns,
                &ip,
                env,
            );
            match worker {
                Ok(worker) => nodes.push(Node { worker, net }),
                Err(e) => {
                    net.delete();
                    return Err(e);
                }
            }
        }
        for n in &mut nodes {
            n.worker.wait_healthy(START).await?;
        }
        let p = Self {
            nodes,
            source: format!("{group}-source"),
            sink: format!("{group}-sink"),
            group,
            topic: topic.clone(),
            input,
            output,
            seen: Seen::default(),
        };
        p.put_config(
            &p.source,
            json!({
                "connector.class": "org.apache.kafka.connect.file.FileStreamSourceConnector",
                "file": p.input.display().to_string(),
                "topic": p.topic,
                "tasks.max": "1",
            }),
        )
        .await?;
        p.put_config(
            &p.sink,
            json!({
                "connector.class": "org.apache.kafka.connect.file.FileStreamSinkConnector",
                "file": p.output.display().to_string(),
                "topics": p.topic,
                "tasks.max": "1",
            }),
        )
        .await?;
        Ok(p)
    }

    async fn put_config(&self, name: &str, config: Value) -> Result<()> {
        let deadline = Instant::now() + START;
        loop {
            let url = &self.nodes[0].worker.rest_url;
            let r = http()
                .put(format!("{url}/connectors/{name}/config"))
                .json(&config)
                .send()
                .await;
            match r {
                Ok(r) if r.status().is_success() => return Ok(()),
                // The cluster may still be forming (409 while rebalancing).
                Ok(r) if Instant::now() > deadline => {
                    bail!(
                        "PUT {name}: {} {}",
                        r.status(),
                        r.text().await.unwrap_or_default()
                    )
                }
                Err(e) if Instant::now() > deadline => bail!("PUT {name}: {e}"),
                _ => tokio::time::sleep(Duration::from_millis(500)).await,
            }
        }
    }

    /// The index of the worker running task 0 of `connector`, asking any worker that answers.
    async fn worker_of(&self, connector: &str) -> Result<usize> {
        let deadline = Instant::now() + RECOVERY_LIMIT;
        loop {
            for n in &self.nodes {
                let url = format!("{}/connectors/{connector}/status", n.worker.rest_url);
                if let Ok(r) = http().get(&url).send().await
                    && let Ok(s) = r.json::<Value>().await
                    && s["tasks"][0]["state"] == "RUNNING"
                    && let Some(id) = s["tasks"][0]["worker_id"].as_str()
                    && let Some(i) = self.nodes.iter().position(|n| n.worker.worker_id() == id)
                {
                    return Ok(i);
                }
            }
            if Instant::now() > deadline {
                let mut seen = String::new();
                for n in &self.nodes {
                    let url = format!("{}/connectors/{connector}/status", n.worker.rest_url);
                    let answer = match http().get(&url).send().await {
                        Ok(r) => r.text().await.unwrap_or_default(),
                        Err(e) => e.to_string(),
                    };
                    seen.push_str(&format!(
                        "--- {}: {answer}\n{}\n",
                        n.worker.name,
                        n.worker.log()
                    ));
                }
                bail!(
                    "no worker reported task 0 of {connector} RUNNING within {RECOVERY_LIMIT:?}:\n{seen}"
                );
            }
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
    }

    /// Waits until the sink's file holds every record below `upto`; returns how long it took.
    async fn delivered(&mut self, upto: usize, since: Instant) -> Result<Duration> {
        let nodes = &self.nodes;
        await_delivered(&mut self.seen, &self.output, upto, since, || {
            nodes
                .iter()
                .map(|n| format!("--- {}\n{}\n", n.worker.name, n.worker.log()))
                .collect()
        })
        .await
    }

    fn signal(&self, i: usize, sig: nix::sys::signal::Signal) -> Result<()> {
        let pid = self.nodes[i].worker.pid().context("worker not running")?;
        nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid as i32), sig)?;
        Ok(())
    }
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Fault {
    KillWorker,
    RestartBroker,
    FreezeWorker,
    CutWorker,
    RestartApiserver,
    KillOperator,
}

impl Fault {
    /// Seconds during which the fault keeps offsets from being written at all: a killed broker's
    /// partitions (offsets topic, group coordinators) have no leader until the controller notices,
    /// `broker.session.timeout.ms` (9 s).
    fn unflushable_s(self) -> usize {
        match self {
            Fault::RestartBroker => 9,
            _ => 0,
        }
    }

    fn name(self) -> &'static str {
        match self {
            Fault::KillWorker => "kill -9 a worker, restart it",
            Fault::RestartBroker => "kill -9 a broker, start it again",
            Fault::FreezeWorker => "SIGSTOP a worker past the session timeout, SIGCONT",
            Fault::CutWorker => "cut a worker's network namespace off, heal it",
            Fault::RestartApiserver => "stop the kube-apiserver 15 s, start it again",
            Fault::KillOperator => "kill -9 the operator, start it again",
        }
    }
}

/// A worker that was frozen or cut off, and when it came back: it must not write statuses under
/// a generation older than the group's by then.
struct Resumed {
    worker_id: String,
    at_ms: i64,
}

struct Row {
    fault: Fault,
    faults: usize,
    range: std::ops::Range<usize>,
    recovery: Duration,
}

/// Injects one fault of `kind` on `p`; returns when every record written before it was
/// delivered, with the time from the end of the fault (restart, heal, thaw) until then.
async fn inject(
    stack: &Devstack,
    p: &mut Pipeline,
    writer: &Writer,
    kind: Fault,
    round: usize,
    resumed: &mut Vec<Resumed>,
) -> Result<Duration> {
    use nix::sys::signal::Signal;
    let healed = match kind {
        Fault::KillWorker => {
            // Round-robin over who runs what: the sink task's worker, the source task's, then
            // the third.
            let sink_at = p.worker_of(&p.sink).await?;
            let source_at = p.worker_of(&p.source).await?;
            let victim = match round % 3 {
                0 => sink_at,
                1 => source_at,
                _ => (0..3)
                    .find(|i| *i != sink_at && *i != source_at)
                    .unwrap_or(0),
            };
            p.nodes[victim].worker.kill9();
            let at = Instant::now();
            // A restarted pod comes back after a moment.
            tokio::time::sleep(Duration::from_secs(2)).await;
            p.nodes[victim].worker.restart()?;
            p.nodes[victim].worker.wait_healthy(START).await?;
            at
        }
        Fault::RestartBroker => {
            let node = format!("kafka-{}", round % 3 + 1);
            stack.kill_component(&node)?;
            tokio::time::sleep(BROKER_DOWN).await;
            stack.start_component(&node)?;
            Instant::now()
        }
        Fault::FreezeWorker => {
            let victim = p.worker_of(&p.source).await?;
            p.signal(victim, Signal::SIGSTOP)?;
            tokio::time::sleep(OUTAGE).await;
            p.signal(victim, Signal::SIGCONT)?;
            resumed.push(Resumed {
                worker_id: p.nodes[victim].worker.worker_id(),
                at_ms: now_ms(),
            });
            Instant::now()
        }
        Fault::RestartApiserver | Fault::KillOperator => {
            bail!(
                "{} is the kube row's (a pipeline the operator runs)",
                kind.name()
            )
        }
        Fault::CutWorker => {
            let victim = p.worker_of(&p.sink).await?;
            p.nodes[victim].net.set_link(false)?;
            tokio::time::sleep(OUTAGE).await;
            p.nodes[victim].net.set_link(true)?;
            resumed.push(Resumed {
                worker_id: p.nodes[victim].worker.worker_id(),
                at_ms: now_ms(),
            });
            Instant::now()
        }
    };
    let upto = writer.written();
    p.delivered(upto, healed).await
}

/// Waits until `output` holds every record below `upto` (read into `seen`); returns the time
/// since `since`. On timeout the error carries `logs()`.
async fn await_delivered(
    seen: &mut Seen,
    output: &Path,
    upto: usize,
    since: Instant,
    logs: impl Fn() -> String,
) -> Result<Duration> {
    let deadline = Instant::now() + RECOVERY_LIMIT;
    loop {
        seen.refresh(output)?;
        if seen.complete_below >= upto {
            return Ok(since.elapsed());
        }
        if Instant::now() > deadline {
            bail!(
                "records below {upto} were not all delivered within {RECOVERY_LIMIT:?} (complete below {}); logs:\n{}",
                seen.complete_below,
                logs()
            );
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Every status record of the group: (producer timestamp, worker id, generation, key).
fn statuses(stack: &Devstack, topic: &str) -> Result<Vec<(i64, String, i64, String)>> {
    let mut out = Vec::new();
    stack.read_topic_to_end(topic, Duration::from_secs(120), |m| {
        if let Some(v) = m
            .payload()
            .and_then(|p| serde_json::from_slice::<Value>(p).ok())
        {
            out.push((
                m.timestamp().to_millis().unwrap_or(0),
                v["worker_id"].as_str().unwrap_or_default().to_string(),
                v["generation"].as_i64().unwrap_or(-1),
                String::from_utf8_lossy(m.key().unwrap_or_default()).into_owned(),
            ));
        }
    })?;
    Ok(out)
}

/// How often each sequence number is in the data topic: tells the source's replays from the
/// sink's.
fn topic_counts(stack: &Devstack, topic: &str) -> Result<Seen> {
    let mut seen = Seen::default();
    let mut text = Vec::new();
    stack.read_topic_to_end(topic, Duration::from_secs(300), |m| {
        // JSON strings without schemas: the line in quotes.
        let v = m.payload().unwrap_or_default();
        let v = v.strip_prefix(b"\"").unwrap_or(v);
        text.extend_from_slice(v.strip_suffix(b"\"").unwrap_or(v));
        text.push(b'\n');
        if text.len() > 1 << 20 {
            seen.take(&mut text);
        }
    })?;
    seen.take(&mut text);
    Ok(seen)
}

/// Statuses a resumed worker wrote after it came back under a generation older than the newest
/// any worker had written before that moment: work reported (or started) before it rejoined.
fn stale_statuses(all: &[(i64, String, i64, String)], resumed: &[Resumed]) -> Vec<String> {
    let mut stale = Vec::new();
    for r in resumed {
        let newest_before = all
            .iter()
            .filter(|(ts, ..)| *ts < r.at_ms)
            .map(|(_, _, g, _)| *g)
            .max()
            .unwrap_or(-1);
        for (ts, worker, generation, key) in all {
            if *ts >= r.at_ms && *worker == r.worker_id && *generation < newest_before {
                stale.push(format!(
                    "{key} by {worker} at {ts} with generation {generation} < {newest_before}"
                ));
            }
        }
    }
    stale
}

/// The report: per scenario the records written while it ran, those missing from the sink's
/// file, the extra copies there and (in parentheses) how many of those the topic already had
/// (the source's replays; the rest are the sink's), and the slowest recovery.
fn table(rows: &[Row], seen: &Seen, topic: Option<&Seen>, total: usize) -> String {
    let mut out = format!(
        "{:<52} {:>6} {:>10} {:>6} {:>20} {:>10}\n",
        "scenario", "faults", "records", "lost", "duplicates (topic)", "recovery"
    );
    let line = |name: &str, faults: usize, range: std::ops::Range<usize>, recovery: String| {
        let (lost, dups) = seen.tally(range.clone());
        let in_topic = topic.map_or("-".to_string(), |t| t.tally(range.clone()).1.to_string());
        format!(
            "{name:<52} {faults:>6} {:>10} {lost:>6} {:>20} {recovery:>10}\n",
            range.len(),
            format!("{dups} ({in_topic})"),
        )
    };
    for r in rows {
        out.push_str(&line(
            r.fault.name(),
            r.faults,
            r.range.clone(),
            format!("{:.1} s", r.recovery.as_secs_f64()),
        ));
    }
    out.push_str(&line(
        "all (including records between scenarios)",
        rows.iter().map(|r| r.faults).sum::<usize>(),
        0..total,
        "-".to_string(),
    ));
    out.push_str(&format!("garbled lines: {}\n", seen.garbled));
    out
}

fn report(name: &str, text: &str) {
    println!("{text}");
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/chaos");
    let _ = std::fs::create_dir_all(&dir);
    let _ = std::fs::write(dir.join(name), text);
}

/// Waits for the warm-up records, so faults hit a pipeline that runs.
async fn warm_up(p: &mut Pipeline, writer: &Writer) -> Result<()> {
    tokio::time::sleep(Duration::from_secs(2)).await;
    let upto = writer.written();
    p.delivered(upto, Instant::now()).await?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn no_record_is_lost_through_worker_broker_and_network_faults() -> Result<()> {
    let _turn = turn().lock().await;
    let stack = tokio::task::spawn_blocking(stack).await??;
    let rounds = env_usize("TRIBUTARY_CHAOS_ROUNDS", 1).max(1);
    let min_records = env_usize("TRIBUTARY_CHAOS_RECORDS", 1_000_000);
    // Kept when the test fails (the workers' logs are there); removed at the end otherwise.
    let dir = tempfile::Builder::new().prefix("chaos-").tempdir()?.keep();
    let mut p = Pipeline::start(stack, &dir, 60_000, &[]).await?;
    let mut writer = Writer::start(&p.input)?;
    warm_up(&mut p, &writer).await?;

    let plan = [
        (Fault::KillWorker, 3),
        (Fault::RestartBroker, 1),
        (Fault::FreezeWorker, 1),
        (Fault::CutWorker, 1),
    ];
    let mut rows: Vec<Row> = Vec::new();
    let mut resumed = Vec::new();
    for round in 0..rounds {
        for (fault, times) in plan {
            let first = writer.written();
            let mut worst = Duration::ZERO;
            for i in 0..times {
                let took = inject(
                    stack,
                    &mut p,
                    &writer,
                    fault,
                    round * times + i,
                    &mut resumed,
                )
                .await
                .with_context(|| format!("{} (round {round}, fault {i})", fault.name()))?;
                worst = worst.max(took);
                // Let the pipeline run a little between faults.
                tokio::time::sleep(Duration::from_secs(3)).await;
            }
            let range = first..writer.written();
            match rows.iter_mut().find(|r| r.fault == fault) {
                // Later rounds widen the row; windows of one fault kind are contiguous only per
                // round, so a row's range covers what lies between too (counted once in "all").
                Some(r) => {
                    r.faults += times;
                    r.range = r.range.start..range.end;
                    r.recovery = r.recovery.max(worst);
                }
                None => rows.push(Row {
                    fault,
                    faults: times,
                    range,
                    recovery: worst,
                }),
            }
        }
    }
    // Enough records in all: keep writing (faults over) until the minimum is reached.
    while writer.written() < min_records {
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let total = writer.finish()?;
    p.delivered(total, Instant::now()).await?;
    // Anything still in flight (a replay) lands within a flush interval or two.
    tokio::time::sleep(Duration::from_secs(3)).await;
    p.seen.refresh(&p.output)?;

    let in_topic = topic_counts(stack, &p.topic)?;
    let text = table(&rows, &p.seen, Some(&in_topic), total);
    report("report.txt", &text);
    let (lost, _) = p.seen.tally(0..total);
    ensure!(lost == 0, "{lost} records lost:\n{text}");
    ensure!(
        p.seen.garbled == 0,
        "garbled records in the sink's file:\n{text}"
    );
    // A fault may make each of the two tasks replay what its offsets did not cover yet: up to two
    // flush intervals (a commit runs after the poll that crosses the interval), and, when a
    // broker dies, also the records of its leader failover, during which no offset can be written.
    for r in &rows {
        let (_, dups) = p.seen.tally(r.range.clone());
        let seconds = 2 * FLUSH_INTERVAL_S + r.fault.unflushable_s();
        let bound = r.faults * 2 * RATE * seconds;
        ensure!(
            dups <= bound,
            "{}: {dups} duplicates, more than {seconds} s of records per task and fault ({bound}):\n{text}",
            r.fault.name()
        );
    }

    let status = statuses(stack, &format!("{}-status", p.group))?;
    let stale = stale_statuses(&status, &resumed);
    ensure!(
        stale.is_empty(),
        "a worker wrote statuses under an old generation after it came back:\n{}",
        stale.join("\n")
    );
    drop(p);
    let _ = std::fs::remove_dir_all(&dir);
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn the_unsafe_commit_switch_makes_the_checks_report_loss() -> Result<()> {
    let _turn = turn().lock().await;
    let stack = tokio::task::spawn_blocking(stack).await??;
    let dir = tempfile::Builder::new().prefix("chaos-check-").tempdir()?;
    let mut p = Pipeline::start(
        stack,
        dir.path(),
        60_010,
        &[("TRIBUTARY_CHAOS_UNSAFE_COMMIT", "1")],
    )
    .await?;
    let mut writer = Writer::start(&p.input)?;
    warm_up(&mut p, &writer).await?;
    let first = writer.written();
    let mut kills = BTreeMap::new();
    for _ in 0..3 {
        // The sink task's worker, each time: what it buffered but had committed is gone.
        let victim = p.worker_of(&p.sink).await?;
        tokio::time::sleep(Duration::from_millis(700)).await;
        p.nodes[victim].worker.kill9();
        *kills.entry(victim).or_insert(0) += 1;
        tokio::time::sleep(Duration::from_secs(2)).await;
        p.nodes[victim].worker.restart()?;
        p.nodes[victim].worker.wait_healthy(START).await?;
        p.worker_of(&p.sink).await?;
        tokio::time::sleep(Duration::from_secs(3)).await;
    }
    let total = writer.finish()?;
    // Wait until the sink's file stops growing: the lost records never come.
    let mut last = (0, Instant::now());
    while last.1.elapsed() < Duration::from_secs(15) {
        p.seen.refresh(&p.output)?;
        if p.seen.pos != last.0 {
            last = (p.seen.pos, Instant::now());
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    let rows = [Row {
        fault: Fault::KillWorker,
        faults: 3,
        range: first..total,
        recovery: Duration::ZERO,
    }];
    let text = table(&rows, &p.seen, None, total);
    report("unsafe-commit-report.txt", &text);
    let (lost, _) = p.seen.tally(0..total);
    ensure!(
        lost > 0,
        "with sink offsets committed before the data was durable, three kill -9 of the sink's worker ({kills:?}) lost nothing: the chaos checks could not see loss\n{text}"
    );
    Ok(())
}

/// The kube row: the same pipeline, but run as Kubernetes runs it — a KafkaConnect of 3
/// replicas and two Connector resources, reconciled by the operator — while the kube-apiserver
/// is stopped past the operator's and pod runner's patience and started again, then the
/// operator is killed with SIGKILL and started again. The data path does not need either, so
/// nothing may be lost and nothing replayed beyond a flush; after each fault the operator must
/// come back to Ready resources without restarting the connectors.
#[tokio::test(flavor = "multi_thread")]
async fn no_record_is_lost_when_the_apiserver_restarts_and_the_operator_is_killed() -> Result<()> {
    use tributary_tests::operator::{
        chart_kubeconfig, install_crds, kafka_connect_manifest, kubectl_ok, pod_log,
        restricted_namespace, start_operator_in_netns, wait_kafka_connect_ready,
    };
    let _turn = turn().lock().await;
    let stack = tokio::task::spawn_blocking(stack).await??;
    // Not under /tmp: a worker pod has a /tmp of its own (an emptyDir), the files must be the
    // same for the pods and the test.
    let parent = Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/chaos");
    std::fs::create_dir_all(&parent)?;
    let dir = tempfile::Builder::new()
        .prefix("kube-")
        .tempdir_in(&parent)?
        .keep();
    install_crds(stack)?;
    let ns = restricted_namespace(stack, "chaos").await?;
    let kubeconfig = chart_kubeconfig(stack, &ns, &dir, true)?;
    let netns = stack.var("TRIBUTARY_OPERATOR_NETNS")?.to_string();
    let start_operator = || start_operator_in_netns(&netns, &ns, &dir, &kubeconfig, &[], &[]);
    let mut operator = start_operator()?;

    let topic = stack
        .create_topic("chaos-kube", 3, 3, &[("min.insync.replicas", "2")])
        .await?;
    let input = dir.join("in");
    let output = dir.join("out");
    std::fs::write(&input, "")?;
    let flush_ms = FLUSH_INTERVAL_S * 1000;
    let connector = |name: &str, class: &str, config: String| {
        format!(
            "---
apiVersion: tributary.dev/v1alpha1
kind: Connector
metadata: {{name: {name}}}
spec:
  clusterRef: {{name: pipe}}
  class: org.apache.kafka.connect.file.{class}
  tasksMax: 1
  config: {{{config}}}
"
        )
    };
    let manifest = format!(
        "{}  config:
    key.converter: org.apache.kafka.connect.json.JsonConverter
    value.converter: org.apache.kafka.connect.json.JsonConverter
    key.converter.schemas.enable: 'false'
    value.converter.schemas.enable: 'false'
    offset.flush.interval.ms: '{flush_ms}'
    scheduled.rebalance.max.delay.ms: '0'
{}{}",
        kafka_connect_manifest(stack, "pipe", 3)?,
        connector(
            "source",
            "FileStreamSourceConnector",
            format!("file: '{}', topic: {topic}", input.display())
        ),
        connector(
            "sink",
            "FileStreamSinkConnector",
            format!("file: '{}', topics: {topic}", output.display())
        ),
    );
    kubectl_ok(stack, &["apply", "-n", &ns, "-f", "-"], Some(&manifest))?;
    let client = stack.kube_client().await?;
    // A restarted operator appends to the same log.
    let operator_log = operator.log.clone();
    let logs = || {
        let mut text = format!(
            "--- operator\n{}\n",
            tributary_tests::stack::process::tail(&operator_log, 60)
        );
        for i in 0..3 {
            let pod = format!("pipe-connect-{i}");
            let log = pod_log(stack, &ns, &pod).unwrap_or_default();
            let tail: Vec<&str> = log.lines().rev().take(40).collect();
            text.push_str(&format!(
                "--- {pod}\n{}\n",
                tail.into_iter().rev().collect::<Vec<_>>().join("\n")
            ));
        }
        text
    };
    wait_kafka_connect_ready(&client, &ns, "pipe", START)
        .await
        .with_context(logs)?;

    let mut seen = Seen::default();
    let mut writer = Writer::start(&input)?;
    tokio::time::sleep(Duration::from_secs(2)).await;
    await_delivered(&mut seen, &output, writer.written(), Instant::now(), logs).await?;
    let connectors: kube::Api<tributary_operator::crd::Connector> =
        kube::Api::namespaced(client.clone(), &ns);
    // The tasks' workers now: neither fault may move or restart them.
    let placement = || async {
        let mut out = Vec::new();
        for name in ["source", "sink"] {
            let c = connectors.get(name).await?;
            let s = c.status.and_then(|s| s.connector_status);
            let task = s
                .and_then(|s| s.tasks)
                .and_then(|t| t.into_iter().next())
                .map(|t| (t.state, t.worker_id));
            out.push(task);
        }
        anyhow::Ok(out)
    };
    let before = tributary_tests::wait_until("both tasks RUNNING in the status", START, || async {
        let p = placement().await?;
        Ok(p.iter()
            .all(|t| t.as_ref().is_some_and(|(s, _)| s == "RUNNING"))
            .then_some(p))
    })
    .await
    .with_context(logs)?;

    let mut rows = Vec::new();
    let mut control = Vec::new();
    for fault in [Fault::RestartApiserver, Fault::KillOperator] {
        let first = writer.written();
        let healed = match fault {
            Fault::RestartApiserver => {
                stack.kill_component("kube-apiserver")?;
                // Really gone: the API answers nothing.
                let asked =
                    tokio::time::timeout(Duration::from_secs(5), connectors.get("source")).await;
                ensure!(
                    !matches!(asked, Ok(Ok(_))),
                    "the apiserver still answers after it was stopped"
                );
                tokio::time::sleep(OUTAGE).await;
                stack.start_component("kube-apiserver")?;
                let started = Instant::now();
                tributary_tests::wait_until("the apiserver to answer", START, || async {
                    Ok(connectors.get("source").await.ok().map(|_| ()))
                })
                .await?;
                control.push(format!(
                    "{}: the apiserver answered {:.1} s after its start",
                    fault.name(),
                    started.elapsed().as_secs_f64()
                ));
                started
            }
            _ => {
                operator.kill_now();
                tokio::time::sleep(Duration::from_secs(2)).await;
                operator = start_operator()?;
                Instant::now()
            }
        };
        let upto = writer.written();
        let recovery = await_delivered(&mut seen, &output, upto, healed, logs)
            .await
            .with_context(|| fault.name())?;
        // The control plane is back too: a Connector applied now gets the operator's answer
        // (here: its KafkaConnect does not exist), and the resources stay Ready with the same
        // placement.
        let probe = format!("probe-{}", rows.len());
        kubectl_ok(
            stack,
            &["apply", "-n", &ns, "-f", "-"],
            Some(&format!(
                "apiVersion: tributary.dev/v1alpha1
kind: Connector
metadata: {{name: {probe}}}
spec:
  clusterRef: {{name: absent}}
  class: FileStreamSource
  config: {{file: /dev/null, topic: {topic}}}
"
            )),
        )?;
        tributary_tests::wait_until(
            &format!("the operator to answer Connector {probe}"),
            RECOVERY_LIMIT,
            || async {
                let c = connectors.get(&probe).await?;
                let answered = c
                    .status
                    .and_then(|s| s.conditions)
                    .unwrap_or_default()
                    .iter()
                    .any(|c| c.type_ == "Ready" && c.reason == "ClusterNotFound");
                Ok(answered.then_some(()))
            },
        )
        .await
        .with_context(|| format!("after {}: {}", fault.name(), logs()))?;
        control.push(format!(
            "{}: the operator answered a new Connector {:.1} s after",
            fault.name(),
            healed.elapsed().as_secs_f64()
        ));
        wait_kafka_connect_ready(&client, &ns, "pipe", RECOVERY_LIMIT)
            .await
            .with_context(|| format!("after {}: {}", fault.name(), logs()))?;
        let after = placement().await?;
        ensure!(
            after == before,
            "after {}: the tasks moved or restarted: {before:?} → {after:?}\n{}",
            fault.name(),
            logs()
        );
        ensure!(
            operator.poll_exit().is_none(),
            "the operator exited after {}:\n{}",
            fault.name(),
            logs()
        );
        tokio::time::sleep(Duration::from_secs(3)).await;
        rows.push(Row {
            fault,
            faults: 1,
            range: first..writer.written(),
            recovery,
        });
    }
    let total = writer.finish()?;
    await_delivered(&mut seen, &output, total, Instant::now(), logs).await?;
    tokio::time::sleep(Duration::from_secs(3)).await;
    seen.refresh(&output)?;
    let in_topic = topic_counts(stack, &topic)?;
    let text = format!(
        "{}{}\n",
        table(&rows, &seen, Some(&in_topic), total),
        control.join("\n")
    );
    report("kube-report.txt", &text);
    let (lost, dups) = seen.tally(0..total);
    ensure!(lost == 0, "{lost} records lost:\n{text}");
    ensure!(seen.garbled == 0, "garbled records:\n{text}");
    // Neither fault touches a worker: at most what a flush had not covered, were a task
    // restarted — which the placement check above already rules out.
    let bound = 2 * RATE * 2 * FLUSH_INTERVAL_S;
    ensure!(dups <= bound, "{dups} duplicates (bound {bound}):\n{text}");
    operator.request_stop();
    kubectl_ok(stack, &["delete", "namespace", &ns, "--wait=false"], None)?;
    let _ = std::fs::remove_dir_all(&dir);
    Ok(())
}
