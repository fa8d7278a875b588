//! `make bench-distributed`: Tributary distributed workers against Java `connect-distributed`
//! workers on one devstack broker, three workers each:
//!
//! - **failover**: seconds from a kill -9 of a worker that runs tasks until every task runs
//!   again on the survivors (default `session.timeout.ms`, `scheduled.rebalance.max.delay.ms=0`);
//! - **rolling restart**: each worker in turn stopped (SIGTERM) and started again; reports the
//!   longest time any task was not RUNNING, the total task-seconds not RUNNING, and the longest
//!   worker restart (SIGTERM to ready again), at the default delay;
//! - **convergence** (Tributary only; Java has no datagen connector): `--connectors` datagen
//!   connectors (default 1000) on `--workers` workers (default 10), then one more worker joins;
//!   seconds until it runs its share (the floor of connectors and of tasks per worker) and
//!   everything runs.
//!
//! Statuses are sampled every 100 ms through `GET /connectors?expand=status` on a worker that is
//! not being stopped. Prints Markdown tables; docs/benchmarks.md keeps a run.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use nix::sys::signal::Signal;
use serde_json::{Value, json};
use tributary_tests::installed::Installed;
use tributary_tests::stack::java_connect::{java_command, worker_properties};
use tributary_tests::stack::kafka::TEST_JVM_OPTS;
use tributary_tests::stack::ports::free_ports;
use tributary_tests::stack::process::{Managed, spawn};
use tributary_tests::worker::worker_binary;
use tributary_tests::{Devstack, unique_name};

fn progress(msg: &str) {
    eprintln!("[bench-distributed] {msg}");
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Tributary,
    Java,
}

/// One worker process of either kind, restartable with the same files and port.
struct Node {
    kind: Kind,
    name: String,
    dir: PathBuf,
    props: PathBuf,
    port: u16,
    process: Option<Managed>,
    starts: usize,
}

impl Node {
    fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    fn id(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    fn launch(&mut self) -> Result<()> {
        self.starts += 1;
        let mut cmd = match self.kind {
            Kind::Tributary => {
                let mut c = Command::new(worker_binary()?);
                c.arg("distributed").arg(&self.props);
                c.env("TRIBUTARY_LOG", "warn");
                c
            }
            Kind::Java => {
                let mut c =
                    java_command(&Installed::locate(), TEST_JVM_OPTS, "ConnectDistributed")?;
                c.arg(&self.props);
                c
            }
        };
        self.process = Some(spawn(
            &format!("{}-{}", self.name, self.starts),
            &mut cmd,
            &self.dir,
            Signal::SIGTERM,
        )?);
        Ok(())
    }

    fn kill9(&mut self) {
        if let Some(p) = self.process.as_mut() {
            p.kill_now();
        }
    }

    fn stop(&mut self) {
        if let Some(p) = self.process.as_mut() {
            p.request_stop();
            p.wait_stopped(Instant::now() + Duration::from_secs(120));
        }
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        self.kill9();
    }
}

struct Cluster {
    nodes: Vec<Node>,
}

impl Cluster {
    fn start(kind: Kind, stack: &Devstack, dir: &Path, n: usize, extra: &str) -> Result<Cluster> {
        let group = unique_name(match kind {
            Kind::Tributary => "bench-dist-t",
            Kind::Java => "bench-dist-j",
        });
        let mut nodes = Vec::new();
        for i in 0..n {
            nodes.push(Self::node(kind, stack, dir, &group, i, extra)?);
        }
        Ok(Cluster { nodes })
    }

    fn node(
        kind: Kind,
        stack: &Devstack,
        dir: &Path,
        group: &str,
        i: usize,
        extra: &str,
    ) -> Result<Node> {
        let ndir = dir.join(format!("{group}-{i}"));
        std::fs::create_dir_all(&ndir)?;
        let ports = free_ports(2)?;
        let props = ndir.join("worker.properties");
        let mut text = worker_properties(stack.kafka_bootstrap()?, group, ports[0], 1);
        if kind == Kind::Tributary {
            text.push_str(&format!(
                "tributary.health.listener=http://127.0.0.1:{}\n",
                ports[1]
            ));
        }
        text.push_str(extra);
        std::fs::write(&props, text)?;
        let mut node = Node {
            kind,
            name: format!("{group}-{i}"),
            dir: ndir,
            props,
            port: ports[0],
            process: None,
            starts: 0,
        };
        node.launch()?;
        Ok(node)
    }
}

fn http() -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(Duration::from_secs(30))
        .build()
        .unwrap_or_default()
}

/// Java answers `GET /` once it joined and read its config topic; Tributary's `/health` says
/// the same.
async fn wait_ready(node: &mut Node, timeout: Duration) -> Result<()> {
    let path = match node.kind {
        Kind::Tributary => "/health",
        Kind::Java => "/",
    };
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(p) = node.process.as_mut()
            && let Some(status) = p.poll_exit()
        {
            bail!("{} exited while starting: {status}", node.name);
        }
        if let Ok(r) = http().get(format!("{}{path}", node.url())).send().await
            && r.status().is_success()
        {
            return Ok(());
        }
        if Instant::now() > deadline {
            bail!("{} not ready within {timeout:?}", node.name);
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Unit ("c" or "c-N") → (worker id, state), from one worker's `?expand=status`.
async fn units(url: &str) -> Result<BTreeMap<String, (String, String)>> {
    let v: Value = http()
        .get(format!("{url}/connectors?expand=status"))
        .send()
        .await?
        .json()
        .await?;
    let mut out = BTreeMap::new();
    for (name, e) in v.as_object().context("expand=status is not an object")? {
        let s = &e["status"];
        out.insert(
            name.clone(),
            (
                s["connector"]["worker_id"]
                    .as_str()
                    .unwrap_or("")
                    .to_string(),
                s["connector"]["state"].as_str().unwrap_or("").to_string(),
            ),
        );
        for t in s["tasks"].as_array().into_iter().flatten() {
            out.insert(
                format!("{name}-{}", t["id"]),
                (
                    t["worker_id"].as_str().unwrap_or("").to_string(),
                    t["state"].as_str().unwrap_or("").to_string(),
                ),
            );
        }
    }
    Ok(out)
}

fn all_running(u: &BTreeMap<String, (String, String)>, expected: usize) -> bool {
    u.len() == expected && u.values().all(|(_, s)| s == "RUNNING")
}

async fn wait_all_running(url: &str, expected: usize, timeout: Duration) -> Result<()> {
    let deadline = Instant::now() + timeout;
    loop {
        if let Ok(u) = units(url).await
            && all_running(&u, expected)
        {
            return Ok(());
        }
        if Instant::now() > deadline {
            let u = units(url).await.unwrap_or_default();
            bail!(
                "not all {expected} units RUNNING within {timeout:?}: {} known, {} running",
                u.len(),
                u.values().filter(|(_, s)| s == "RUNNING").count()
            );
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn create_file_sources(url: &str, dir: &Path, topic: &str, n: usize) -> Result<()> {
    for i in 0..n {
        let file = dir.join(format!("src-{i}.txt"));
        std::fs::write(&file, "one\ntwo\n")?;
        let r = http()
            .put(format!("{url}/connectors/src-{i}/config"))
            .json(&json!({
                "connector.class": "org.apache.kafka.connect.file.FileStreamSourceConnector",
                "file": file.display().to_string(),
                "topic": topic,
                "tasks.max": "1",
            }))
            .send()
            .await?;
        if !r.status().is_success() {
            bail!("creating src-{i}: {} {}", r.status(), r.text().await?);
        }
    }
    Ok(())
}

const CONNECTORS: usize = 6;

/// Seconds from a kill -9 until every unit runs on the survivors.
async fn failover(kind: Kind, stack: &Devstack, dir: &Path) -> Result<f64> {
    let mut c = Cluster::start(kind, stack, dir, 3, "scheduled.rebalance.max.delay.ms=0\n")?;
    for n in &mut c.nodes {
        wait_ready(n, Duration::from_secs(180)).await?;
    }
    let topic = stack.create_topic("bench-dist", 1, 1, &[]).await?;
    let url = c.nodes[0].url();
    create_file_sources(&url, dir, &topic, CONNECTORS).await?;
    wait_all_running(&url, CONNECTORS * 2, Duration::from_secs(180)).await?;
    let u = units(&url).await?;
    let victim = (1..3)
        .find(|i| u.values().any(|(w, _)| *w == c.nodes[*i].id()))
        .context("no worker but the first runs anything")?;
    let victim_id = c.nodes[victim].id();
    c.nodes[victim].kill9();
    let killed = Instant::now();
    loop {
        if let Ok(u) = units(&url).await
            && all_running(&u, CONNECTORS * 2)
            && u.values().all(|(w, _)| *w != victim_id)
        {
            break;
        }
        if killed.elapsed() > Duration::from_secs(300) {
            bail!("the killed worker's work never moved");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let secs = killed.elapsed().as_secs_f64();
    for n in &mut c.nodes {
        n.stop();
    }
    Ok(secs)
}

/// (longest single-unit downtime, total unit-seconds down, longest worker restart).
async fn rolling(kind: Kind, stack: &Devstack, dir: &Path) -> Result<(f64, f64, f64)> {
    let mut c = Cluster::start(kind, stack, dir, 3, "")?;
    for n in &mut c.nodes {
        wait_ready(n, Duration::from_secs(180)).await?;
    }
    let topic = stack.create_topic("bench-roll", 1, 1, &[]).await?;
    create_file_sources(&c.nodes[0].url(), dir, &topic, CONNECTORS).await?;
    wait_all_running(&c.nodes[0].url(), CONNECTORS * 2, Duration::from_secs(180)).await?;
    let mut longest_restart: f64 = 0.0;
    let mut total_down = 0.0;
    let mut longest_down: f64 = 0.0;
    for i in 0..3 {
        let observer = c.nodes[(i + 1) % 3].url();
        let started = Instant::now();
        // Sample while the worker stops and starts, and until everything runs again.
        let (tx, mut rx) = tokio::sync::oneshot::channel::<()>();
        let sampler = tokio::spawn(async move {
            let mut down_since: BTreeMap<String, Instant> = BTreeMap::new();
            let mut longest: f64 = 0.0;
            let mut total = 0.0;
            let mut last = Instant::now();
            let mut settled_after_done = false;
            loop {
                let done = rx.try_recv().is_ok() || settled_after_done;
                let now = Instant::now();
                let step = now.duration_since(last).as_secs_f64();
                last = now;
                if let Ok(u) = units(&observer).await {
                    for (unit, (_, state)) in &u {
                        if state == "RUNNING" {
                            if let Some(since) = down_since.remove(unit) {
                                longest = longest.max(since.elapsed().as_secs_f64());
                            }
                        } else {
                            down_since.entry(unit.clone()).or_insert(now);
                            total += step;
                        }
                    }
                    if done && all_running(&u, CONNECTORS * 2) {
                        for since in down_since.values() {
                            longest = longest.max(since.elapsed().as_secs_f64());
                        }
                        return (longest, total);
                    }
                }
                if done {
                    settled_after_done = true;
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        });
        c.nodes[i].stop();
        c.nodes[i].launch()?;
        wait_ready(&mut c.nodes[i], Duration::from_secs(180)).await?;
        let restart = started.elapsed().as_secs_f64();
        let _ = tx.send(());
        let (longest, total) = tokio::time::timeout(Duration::from_secs(400), sampler)
            .await
            .context("statuses never settled after a restart")??;
        progress(&format!(
            "  {kind:?} worker {i}: restart {restart:.1} s, longest task downtime {longest:.1} s"
        ));
        longest_restart = longest_restart.max(restart);
        longest_down = longest_down.max(longest);
        total_down += total;
    }
    for n in &mut c.nodes {
        n.stop();
    }
    Ok((longest_down, total_down, longest_restart))
}

/// Seconds from starting one more worker until it runs its share and everything runs.
async fn converge(stack: &Devstack, dir: &Path, workers: usize, connectors: usize) -> Result<f64> {
    let mut c = Cluster::start(
        Kind::Tributary,
        stack,
        dir,
        workers,
        "scheduled.rebalance.max.delay.ms=0\n",
    )?;
    for n in &mut c.nodes {
        wait_ready(n, Duration::from_secs(180)).await?;
    }
    let topic = stack.create_topic("bench-conv", 1, 1, &[]).await?;
    let url = c.nodes[0].url();
    progress(&format!("  creating {connectors} datagen connectors"));
    for i in 0..connectors {
        let r = http()
            .put(format!("{url}/connectors/gen-{i}/config"))
            .json(&json!({
                "connector.class": "dev.tributary.connect.datagen.DatagenConnector",
                "kafka.topic": topic,
                "quickstart": "bytes",
                "payload.size": "10",
                "records.per.second": "0.2",
                "tasks.max": "1",
                "key.converter": "org.apache.kafka.connect.storage.StringConverter",
                "value.converter": "org.apache.kafka.connect.storage.StringConverter",
            }))
            .send()
            .await?;
        if !r.status().is_success() {
            bail!("creating gen-{i}: {} {}", r.status(), r.text().await?);
        }
    }
    progress("  waiting for every connector and task to run");
    wait_all_running(&url, connectors * 2, Duration::from_secs(900)).await?;
    let group = c.nodes[0]
        .name
        .rsplit_once('-')
        .map(|(g, _)| g.to_string())
        .unwrap_or_default();
    let started = Instant::now();
    let mut extra = Cluster::node(
        Kind::Tributary,
        stack,
        dir,
        &group,
        workers,
        "scheduled.rebalance.max.delay.ms=0\n",
    )?;
    let new_id = extra.id();
    // Connectors and tasks are balanced separately (as Java's assignor does): its share is
    // the floor of each.
    let share = 2 * (connectors / (workers + 1));
    loop {
        if let Ok(u) = units(&url).await
            && all_running(&u, connectors * 2)
            && u.values().filter(|(w, _)| *w == new_id).count() >= share
        {
            break;
        }
        if started.elapsed() > Duration::from_secs(300) {
            bail!("the new worker never got its share");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let secs = started.elapsed().as_secs_f64();
    extra.stop();
    for n in &mut c.nodes {
        n.kill9();
    }
    Ok(secs)
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().collect();
    let flag = |f: &str| args.iter().any(|a| a == f);
    let value = |f: &str, d: usize| {
        args.iter()
            .position(|a| a == f)
            .and_then(|i| args.get(i + 1))
            .and_then(|v| v.parse().ok())
            .unwrap_or(d)
    };
    let workers = value("--workers", 10);
    let connectors = value("--connectors", 1000);
    progress("starting the devstack (Kafka only)");
    let stack = Devstack::start(&["--no-kube", "--no-postgres"])?;
    let dir = tempfile::tempdir()?;
    let mut failovers = Vec::new();
    let mut rolls = Vec::new();
    if !flag("--converge-only") {
        for kind in [Kind::Tributary, Kind::Java] {
            if kind == Kind::Java && flag("--tributary-only") {
                continue;
            }
            progress(&format!("{kind:?}: failover after kill -9"));
            let f = failover(kind, &stack, dir.path()).await?;
            progress(&format!("  {f:.2} s"));
            failovers.push((kind, f));
            progress(&format!("{kind:?}: rolling restart"));
            let r = rolling(kind, &stack, dir.path()).await?;
            rolls.push((kind, r));
        }
    }
    let conv = if flag("--no-converge") {
        None
    } else {
        progress(&format!(
            "Tributary: {connectors} datagen connectors on {workers} workers, one more joins"
        ));
        Some(converge(&stack, dir.path(), workers, connectors).await?)
    };
    if !failovers.is_empty() {
        println!(
            "\n| 3 workers, {CONNECTORS} file sources | failover after kill -9 (s) | longest task downtime in a rolling restart (s) | task-seconds down | longest worker restart (s) |"
        );
        println!("|---|---:|---:|---:|---:|");
        for ((kind, f), (_, (longest, total, restart))) in failovers.iter().zip(&rolls) {
            println!("| {kind:?} | {f:.2} | {longest:.2} | {total:.1} | {restart:.2} |");
        }
    }
    if let Some(s) = conv {
        println!(
            "\n| {connectors} datagen connectors on {workers} Tributary workers | an 11th worker runs its share, everything RUNNING (s) |"
        );
        println!("|---|---:|");
        println!("| Tributary | {s:.2} |");
    }
    Ok(())
}
