//! `tributary-worker distributed` end to end: three worker processes on the devstack broker form
//! a cluster through the group protocol and the internal topics. Connectors created through any
//! worker run, spread evenly, and every worker reports the same status; a killed worker's work
//! moves after the session timeout (delay 0) or comes back to it when it returns within
//! `scheduled.rebalance.max.delay.ms`; and a Java cluster and a Tributary cluster take over each
//! other's connectors and offsets on the same group and topics. Data is checked in Kafka and in
//! files, not only through HTTP codes.

#![allow(clippy::expect_used)]

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail, ensure};
use serde_json::{Value, json};
use tributary_tests::installed::Installed;
use tributary_tests::stack::java_connect::JavaConnect;
use tributary_tests::worker::{WorkerProcess, distributed_properties};
use tributary_tests::{Devstack, unique_name, wait_until};

const START: Duration = Duration::from_secs(120);
/// Generous: the session timeout is 10 s and a few rebalances run before work settles.
const SETTLE: Duration = Duration::from_secs(90);

async fn start_workers(dir: &Path, props: &str, names: &[&str]) -> Result<Vec<WorkerProcess>> {
    let mut workers = Vec::new();
    for name in names {
        workers.push(WorkerProcess::start_distributed(dir, name, props)?);
    }
    for w in &mut workers {
        w.wait_healthy(START).await?;
    }
    Ok(workers)
}

fn http() -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(Duration::from_secs(30))
        .build()
        .expect("http client")
}

async fn get_json(url: &str) -> Result<(u16, Value)> {
    let r = http().get(url).send().await?;
    let code = r.status().as_u16();
    Ok((code, r.json().await.unwrap_or(Value::Null)))
}

fn source_config(file: &Path, topic: &str) -> Value {
    json!({
        "connector.class": "org.apache.kafka.connect.file.FileStreamSourceConnector",
        "file": file.display().to_string(),
        "topic": topic,
        "tasks.max": "1",
    })
}

fn write_lines(file: &Path, prefix: &str, range: std::ops::Range<usize>) -> Result<()> {
    use std::io::Write;
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(file)?;
    for i in range {
        writeln!(f, "{prefix} {i}")?;
    }
    Ok(())
}

/// (worker id, state) of the connector and each task; `None` until the connector has a status.
async fn placement(url: &str, connector: &str) -> Result<Option<Vec<(String, String)>>> {
    let (code, s) = get_json(&format!("{url}/connectors/{connector}/status")).await?;
    if code != 200 {
        return Ok(None);
    }
    let mut out = vec![(
        s["connector"]["worker_id"]
            .as_str()
            .unwrap_or("")
            .to_string(),
        s["connector"]["state"].as_str().unwrap_or("").to_string(),
    )];
    for t in s["tasks"].as_array().context("tasks")? {
        out.push((
            t["worker_id"].as_str().unwrap_or("").to_string(),
            t["state"].as_str().unwrap_or("").to_string(),
        ));
    }
    Ok(Some(out))
}

/// Every connector RUNNING with `tasks` RUNNING tasks; returns worker id → units it runs.
async fn all_running(
    url: &str,
    connectors: &[(&str, usize)],
) -> Result<Option<BTreeMap<String, usize>>> {
    let mut per_worker = BTreeMap::new();
    for (c, tasks) in connectors {
        let Some(p) = placement(url, c).await? else {
            return Ok(None);
        };
        if p.len() != tasks + 1 || p.iter().any(|(_, s)| s != "RUNNING") {
            return Ok(None);
        }
        for (w, _) in p {
            *per_worker.entry(w).or_insert(0) += 1;
        }
    }
    Ok(Some(per_worker))
}

/// What the cluster says and the workers' recent logs, for a failure message.
async fn diagnose(workers: &[WorkerProcess]) -> String {
    let mut out = String::new();
    for w in workers {
        let status = get_json(&format!("{}/connectors?expand=status", w.rest_url))
            .await
            .map(|(c, v)| format!("{c} {v}"))
            .unwrap_or_else(|e| e.to_string());
        out.push_str(&format!(
            "\n--- {} ({}): {status}\n{}",
            w.name,
            w.worker_id(),
            w.log()
        ));
    }
    out
}

/// Every record of `topic` (all partitions, each in order) from the beginning to its current
/// end: the value, and the headers as text.
fn read_topic(stack: &Devstack, topic: &str) -> Result<Vec<(String, BTreeMap<String, String>)>> {
    let mut out = Vec::new();
    stack.read_topic_to_end(topic, Duration::from_secs(300), |m| {
        let (value, headers) = tributary_tests::testkit::text_record(m);
        out.push((value, headers.into_iter().collect()));
    })?;
    Ok(out)
}

/// Every value of `topic`, as text.
fn topic_values(stack: &Devstack, topic: &str) -> Result<Vec<String>> {
    Ok(read_topic(stack, topic)?
        .into_iter()
        .map(|(v, _)| v)
        .collect())
}

/// The JSON string values of `topic`, decoded.
fn topic_lines(stack: &Devstack, topic: &str) -> Result<Vec<String>> {
    topic_values(stack, topic)?
        .iter()
        .map(|v| serde_json::from_str::<String>(v).with_context(|| format!("value {v}")))
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn connectors_created_through_any_worker_run_spread_evenly_and_report_the_same_status()
-> Result<()> {
    let stack = Devstack::shared()?;
    let dir = tempfile::tempdir()?;
    let group = unique_name("dist-spread");
    let props = distributed_properties(stack, &group, "scheduled.rebalance.max.delay.ms=0")?;
    let workers = start_workers(dir.path(), &props, &["w1", "w2", "w3"]).await?;
    let topic = stack.create_topic("dist-spread", 3, 1, &[]).await?;

    // Three sources, each created through a different worker (followers forward to the leader).
    let mut expected = BTreeSet::new();
    for (i, w) in workers.iter().enumerate() {
        let file = dir.path().join(format!("in-{i}.txt"));
        write_lines(&file, &format!("src-{i}"), 0..200)?;
        expected.extend((0..200).map(|n| format!("src-{i} {n}")));
        let r = http()
            .post(format!("{}/connectors", w.rest_url))
            .json(&json!({"name": format!("src-{i}"), "config": source_config(&file, &topic)}))
            .send()
            .await?;
        ensure!(
            r.status().as_u16() == 201,
            "POST /connectors through {}: {} {}",
            w.name,
            r.status(),
            r.text().await?
        );
    }
    // A sink of three tasks, created with PUT …/config through the last worker.
    let out = dir.path().join("out.txt");
    let r = http()
        .put(format!("{}/connectors/sink/config", workers[2].rest_url))
        .json(&json!({
            "connector.class": "org.apache.kafka.connect.file.FileStreamSinkConnector",
            "file": out.display().to_string(),
            "topics": topic,
            "tasks.max": "3",
        }))
        .send()
        .await?;
    ensure!(
        r.status().as_u16() == 201,
        "PUT sink config: {}",
        r.status()
    );
    // Creating an existing connector again is a conflict, wherever it is asked.
    let r = http()
        .post(format!("{}/connectors", workers[1].rest_url))
        .json(&json!({"name": "src-0", "config": source_config(&dir.path().join("x"), &topic)}))
        .send()
        .await?;
    ensure!(
        r.status().as_u16() == 409,
        "duplicate create: {}",
        r.status()
    );

    let connectors = [("src-0", 1), ("src-1", 1), ("src-2", 1), ("sink", 3)];
    let per_worker = match wait_until("every connector and task RUNNING", SETTLE, || {
        all_running(&workers[0].rest_url, &connectors)
    })
    .await
    {
        Ok(p) => p,
        Err(e) => bail!("{e}{}", diagnose(&workers).await),
    };
    // 4 connectors + 6 tasks over 3 workers: 4/3/3.
    let counts: Vec<usize> = per_worker.values().copied().collect();
    ensure!(
        per_worker.len() == 3
            && counts.iter().max().unwrap_or(&0) - counts.iter().min().unwrap_or(&0) <= 1,
        "work is not spread evenly: {per_worker:?}"
    );
    for w in &workers {
        ensure!(
            per_worker.contains_key(&w.worker_id()),
            "{} runs nothing: {per_worker:?}",
            w.name
        );
    }
    // Every worker answers the same statuses.
    let mut views = Vec::new();
    for w in &workers {
        let (code, v) = get_json(&format!("{}/connectors?expand=status", w.rest_url)).await?;
        ensure!(code == 200, "{}: {code}", w.name);
        views.push(v);
    }
    ensure!(
        views.iter().all(|v| *v == views[0]),
        "workers disagree on statuses: {views:#?}"
    );

    // The data: every line in the topic once, and through the sink in its file.
    wait_until("the sink file has every line", SETTLE, || async {
        let text = std::fs::read_to_string(&out).unwrap_or_default();
        let got: BTreeSet<String> = text.lines().map(str::to_string).collect();
        Ok((got == expected).then_some(()))
    })
    .await?;
    let lines = topic_lines(stack, &topic)?;
    ensure!(
        lines.len() == 600,
        "{} records in {topic}, want 600",
        lines.len()
    );

    // Internal requests: unsigned → 400, tampered → 403, on every worker.
    for w in &workers {
        let url = format!("{}/connectors/src-0/tasks", w.rest_url);
        let unsigned = http().post(&url).json(&json!([{}])).send().await?;
        ensure!(
            unsigned.status().as_u16() == 400,
            "unsigned: {}",
            unsigned.status()
        );
        let tampered = http()
            .post(&url)
            .header("X-Connect-Authorization", "bm90IGEgcmVhbCBtYWM=")
            .header("X-Connect-Request-Signature-Algorithm", "HmacSHA256")
            .json(&json!([{"task.class": "evil"}]))
            .send()
            .await?;
        ensure!(
            tampered.status().as_u16() == 403,
            "tampered internal request on {}: {} {}",
            w.name,
            tampered.status(),
            tampered.text().await?
        );
    }
    Ok(())
}

/// The units a worker runs: (connector, 0 for the connector itself or 1 + task id).
async fn units_of(
    url: &str,
    connectors: &[&str],
    worker: &str,
) -> Result<BTreeSet<(String, usize)>> {
    let mut out = BTreeSet::new();
    for c in connectors {
        if let Some(p) = placement(url, c).await? {
            for (i, (w, s)) in p.iter().enumerate() {
                if w == worker && s == "RUNNING" {
                    out.insert((c.to_string(), i));
                }
            }
        }
    }
    Ok(out)
}

async fn three_sources(
    stack: &Devstack,
    dir: &Path,
    workers: &[WorkerProcess],
    prefix: &str,
) -> Result<(String, Vec<String>)> {
    let topic = stack.create_topic(prefix, 1, 1, &[]).await?;
    let mut names = Vec::new();
    for i in 0..3 {
        let file = dir.join(format!("{prefix}-{i}.txt"));
        write_lines(&file, &format!("{prefix}-{i}"), 0..50)?;
        let name = format!("{prefix}-{i}");
        let r = http()
            .put(format!("{}/connectors/{name}/config", workers[0].rest_url))
            .json(&source_config(&file, &topic))
            .send()
            .await?;
        ensure!(r.status().is_success(), "creating {name}: {}", r.status());
        names.push(name);
    }
    Ok((topic, names))
}

#[tokio::test(flavor = "multi_thread")]
async fn a_killed_workers_work_runs_elsewhere_after_the_session_timeout() -> Result<()> {
    let stack = Devstack::shared()?;
    let dir = tempfile::tempdir()?;
    let group = unique_name("dist-kill");
    let props = distributed_properties(stack, &group, "scheduled.rebalance.max.delay.ms=0")?;
    let mut workers = start_workers(dir.path(), &props, &["k1", "k2", "k3"]).await?;
    let (_topic, names) = three_sources(stack, dir.path(), &workers, "kill").await?;
    let connectors: Vec<(&str, usize)> = names.iter().map(|n| (n.as_str(), 1)).collect();
    let per_worker = wait_until("all RUNNING", SETTLE, || {
        all_running(&workers[0].rest_url, &connectors)
    })
    .await?;
    let victim = workers
        .iter()
        .position(|w| per_worker.contains_key(&w.worker_id()) && w.name != "k1")
        .context("no worker other than k1 runs anything")?;
    let victim_id = workers[victim].worker_id();
    workers[victim].kill9();
    let killed = Instant::now();
    let survivor = workers[0].rest_url.clone();
    let after = wait_until(
        "every connector and task RUNNING on the surviving workers",
        SETTLE,
        || async {
            Ok(all_running(&survivor, &connectors)
                .await?
                .filter(|m| !m.contains_key(&victim_id)))
        },
    )
    .await?;
    println!(
        "work of the killed worker ran elsewhere after {:.1} s: {after:?}",
        killed.elapsed().as_secs_f64()
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn a_worker_restarted_within_the_delay_gets_its_work_back() -> Result<()> {
    let stack = Devstack::shared()?;
    let dir = tempfile::tempdir()?;
    let group = unique_name("dist-delay");
    let delay = Duration::from_secs(60);
    let props = distributed_properties(
        stack,
        &group,
        &format!("scheduled.rebalance.max.delay.ms={}", delay.as_millis()),
    )?;
    let mut workers = start_workers(dir.path(), &props, &["d1", "d2", "d3"]).await?;
    let (_topic, names) = three_sources(stack, dir.path(), &workers, "delay").await?;
    let list: Vec<&str> = names.iter().map(String::as_str).collect();
    let connectors: Vec<(&str, usize)> = list.iter().map(|n| (*n, 1)).collect();
    let url = workers[0].rest_url.clone();
    wait_until("all RUNNING", SETTLE, || all_running(&url, &connectors)).await?;
    let id = workers[2].worker_id();
    let before = units_of(&url, &list, &id).await?;
    ensure!(!before.is_empty(), "d3 runs nothing before the kill");

    workers[2].kill9();
    let killed = Instant::now();
    workers[2].restart()?;
    workers[2].wait_healthy(START).await?;
    let back = wait_until("d3 runs its work again", delay, || async {
        // Meanwhile nobody else may have taken over what d3 ran.
        for (c, unit) in &before {
            if let Some(p) = placement(&url, c).await?
                && let Some((w, state)) = p.get(*unit)
                && state == "RUNNING"
                && *w != id
            {
                bail!("{c} unit {unit} of d3 moved to {w} within the delay");
            }
        }
        let now = units_of(&url, &list, &id).await?;
        Ok((now == before).then_some(now))
    })
    .await?;
    ensure!(
        killed.elapsed() < delay,
        "d3 got its work back only after {:?}",
        killed.elapsed()
    );
    println!(
        "d3 ran its work again {:.1} s after the kill: {back:?}",
        killed.elapsed().as_secs_f64()
    );
    Ok(())
}

/// Waits for a Java worker's REST API and every connector of `names` RUNNING on it.
async fn java_running(url: &str, names: &[&str]) -> Result<Option<()>> {
    for c in names {
        match placement(url, c).await? {
            Some(p) if p.len() >= 2 && p.iter().all(|(_, s)| s == "RUNNING") => {}
            _ => return Ok(None),
        }
    }
    Ok(Some(()))
}

/// Waits until `topic` holds exactly `want` lines (as a set) and no line twice.
async fn exactly_lines(stack: &Devstack, topic: &str, want: &BTreeSet<String>) -> Result<()> {
    let got = wait_until("every line in the topic", SETTLE, || async {
        let lines = topic_lines(stack, topic)?;
        let set: BTreeSet<String> = lines.iter().cloned().collect();
        Ok((set == *want).then_some(lines))
    })
    .await?;
    // Give a re-read the chance to show up before judging.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let lines = topic_lines(stack, topic)?;
    ensure!(
        lines.len() == want.len(),
        "{} records for {} lines: the file was read again ({} before the pause)",
        lines.len(),
        want.len(),
        got.len()
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn java_and_tributary_clusters_take_over_each_others_connectors_and_offsets() -> Result<()> {
    let stack = Devstack::shared()?;
    let dir = tempfile::tempdir()?;
    let installed = Installed::locate();
    let group = unique_name("dist-interop");
    let topic = stack.create_topic("interop", 1, 1, &[]).await?;
    let file = dir.path().join("in.txt");
    let mut want = BTreeSet::new();
    let add = |want: &mut BTreeSet<String>, range: std::ops::Range<usize>| -> Result<()> {
        write_lines(&file, "line", range.clone())?;
        want.extend(range.map(|i| format!("line {i}")));
        Ok(())
    };

    // 1. Java runs the file source and commits its offsets, then stops.
    add(&mut want, 0..100)?;
    let mut java = JavaConnect::start(
        &installed,
        stack.kafka_bootstrap()?,
        &group,
        &dir.path().join("java1"),
        stack.kafka_nodes()?.min(3),
    )?;
    java.wait_ready(START).await?;
    let r = http()
        .put(format!("{}/connectors/file-src/config", java.url))
        .json(&source_config(&file, &topic))
        .send()
        .await?;
    ensure!(r.status().is_success(), "Java create: {}", r.status());
    wait_until("Java runs the source", SETTLE, || {
        java_running(&java.url, &["file-src"])
    })
    .await?;
    exactly_lines(stack, &topic, &want).await?;
    java.process.request_stop();
    java.process
        .wait_stopped(Instant::now() + Duration::from_secs(60));

    // 2. Tributary picks the connector up from the config topic and goes on from Java's offset.
    add(&mut want, 100..150)?;
    let props = distributed_properties(stack, &group, "")?;
    let mut workers = start_workers(dir.path(), &props, &["t1", "t2", "t3"]).await?;
    let url = workers[0].rest_url.clone();
    wait_until("Tributary runs the source", SETTLE, || {
        all_running(&url, &[("file-src", 1)])
    })
    .await?;
    exactly_lines(stack, &topic, &want).await?;
    add(&mut want, 150..200)?;
    exactly_lines(stack, &topic, &want).await?;
    // Offsets are flushed every second; stopping flushes the last ones.
    for w in &mut workers {
        w.stop();
    }

    // 3. Java takes over again from Tributary's offset.
    add(&mut want, 200..250)?;
    let mut java = JavaConnect::start(
        &installed,
        stack.kafka_bootstrap()?,
        &group,
        &dir.path().join("java2"),
        stack.kafka_nodes()?.min(3),
    )?;
    java.wait_ready(START).await?;
    wait_until("Java runs the source again", SETTLE, || {
        java_running(&java.url, &["file-src"])
    })
    .await?;
    exactly_lines(stack, &topic, &want).await?;
    let (code, offsets) = get_json(&format!("{}/connectors/file-src/offsets", java.url)).await?;
    if code != 200 {
        bail!("Java offsets: {code} {offsets}");
    }
    Ok(())
}

async fn send(method: reqwest::Method, url: &str, body: Option<Value>) -> Result<(u16, Value)> {
    let mut r = http().request(method, url);
    if let Some(b) = body {
        r = r.json(&b);
    }
    let r = r.send().await?;
    let code = r.status().as_u16();
    Ok((code, r.json().await.unwrap_or(Value::Null)))
}

/// Sends a request and checks its status code; returns the body.
async fn expect(
    method: reqwest::Method,
    url: &str,
    body: Option<Value>,
    want: u16,
) -> Result<Value> {
    let (code, v) = send(method.clone(), url, body).await?;
    ensure!(code == want, "{method} {url}: {code}, want {want}: {v}");
    Ok(v)
}

/// The connector's and its tasks' states as every worker reports them; `None` while they differ
/// or the connector has no status.
async fn states(workers: &[WorkerProcess], c: &str) -> Result<Option<(String, Vec<String>)>> {
    let mut seen = None;
    for w in workers {
        let (code, s) = get_json(&format!("{}/connectors/{c}/status", w.rest_url)).await?;
        if code != 200 {
            return Ok(None);
        }
        let here = (
            s["connector"]["state"].as_str().unwrap_or("").to_string(),
            s["tasks"]
                .as_array()
                .map(|t| {
                    t.iter()
                        .map(|t| t["state"].as_str().unwrap_or("").to_string())
                        .collect()
                })
                .unwrap_or_default(),
        );
        match &seen {
            None => seen = Some(here),
            Some(s) if *s == here => {}
            Some(_) => return Ok(None),
        }
    }
    Ok(seen)
}

async fn wait_states(
    workers: &[WorkerProcess],
    c: &str,
    connector: &str,
    tasks: &[&str],
) -> Result<()> {
    let want = (
        connector.to_string(),
        tasks.iter().map(|t| t.to_string()).collect::<Vec<_>>(),
    );
    let r = wait_until(
        &format!("{c}: {connector} with tasks {tasks:?} on every worker"),
        SETTLE,
        || async { Ok(states(workers, c).await?.filter(|s| *s == want)) },
    )
    .await;
    match r {
        Ok(_) => Ok(()),
        Err(e) => bail!("{e}{}", diagnose(workers).await),
    }
}

/// Asserts that `topic` keeps `count` records for a few seconds (nothing is produced).
async fn stays_at(stack: &Devstack, topic: &str, count: usize, why: &str) -> Result<()> {
    tokio::time::sleep(Duration::from_secs(4)).await;
    let n = topic_values(stack, topic)?.len();
    ensure!(n == count, "{why}: {n} records, want {count}");
    Ok(())
}

async fn count_reaches(stack: &Devstack, topic: &str, count: usize) -> Result<()> {
    wait_until(&format!("{count} records in {topic}"), SETTLE, || async {
        let n = topic_values(stack, topic)?.len();
        ensure!(n <= count, "{n} records in {topic}, more than {count}");
        Ok((n == count).then_some(()))
    })
    .await
}

#[tokio::test(flavor = "multi_thread")]
async fn lifecycle_operations_take_effect_on_the_data_and_every_workers_status() -> Result<()> {
    let stack = Devstack::shared()?;
    let dir = tempfile::tempdir()?;
    let group = unique_name("dist-life");
    let props = distributed_properties(stack, &group, "scheduled.rebalance.max.delay.ms=0")?;
    let workers = start_workers(dir.path(), &props, &["l1", "l2", "l3"]).await?;
    let topic = stack.create_topic("life", 1, 1, &[]).await?;
    let file = dir.path().join("in.txt");
    write_lines(&file, "a", 0..10)?;
    let url = |i: usize, path: &str| format!("{}{path}", workers[i].rest_url);
    expect(
        reqwest::Method::PUT,
        &url(1, "/connectors/src/config"),
        Some(source_config(&file, &topic)),
        201,
    )
    .await?;
    wait_states(&workers, "src", "RUNNING", &["RUNNING"]).await?;
    count_reaches(stack, &topic, 10).await?;

    // Pause: nothing more is produced; every worker says PAUSED. Resume: it catches up.
    expect(
        reqwest::Method::PUT,
        &url(2, "/connectors/src/pause"),
        None,
        202,
    )
    .await?;
    wait_states(&workers, "src", "PAUSED", &["PAUSED"]).await?;
    write_lines(&file, "a", 10..20)?;
    stays_at(stack, &topic, 10, "paused").await?;
    expect(
        reqwest::Method::PUT,
        &url(0, "/connectors/src/resume"),
        None,
        202,
    )
    .await?;
    wait_states(&workers, "src", "RUNNING", &["RUNNING"]).await?;
    count_reaches(stack, &topic, 20).await?;

    // Stop (KIP-875): no tasks, nothing produced, offsets readable; resume starts it again.
    expect(
        reqwest::Method::PUT,
        &url(1, "/connectors/src/stop"),
        None,
        204,
    )
    .await?;
    wait_states(&workers, "src", "STOPPED", &[]).await?;
    let (code, tasks) = get_json(&url(2, "/connectors/src/tasks")).await?;
    ensure!(
        code == 200 && tasks == json!([]),
        "tasks of a stopped connector: {tasks}"
    );
    let (code, offsets) = get_json(&url(0, "/connectors/src/offsets")).await?;
    ensure!(
        code == 200 && offsets["offsets"].as_array().is_some_and(|o| o.len() == 1),
        "offsets of the stopped connector: {code} {offsets}"
    );
    write_lines(&file, "a", 20..30)?;
    stays_at(stack, &topic, 20, "stopped").await?;
    // Altered offsets take effect: back to line 10 ("a N\n" is 4 bytes for N < 10).
    let (code, body) = send(
        reqwest::Method::PATCH,
        &url(0, "/connectors/src/offsets"),
        Some(json!({"offsets": [{
            "partition": {"filename": file.display().to_string()},
            "offset": {"position": 40},
        }]})),
    )
    .await?;
    ensure!(code == 200, "alter offsets: {code} {body}");
    expect(
        reqwest::Method::PUT,
        &url(2, "/connectors/src/resume"),
        None,
        202,
    )
    .await?;
    wait_states(&workers, "src", "RUNNING", &["RUNNING"]).await?;
    // Lines 10..30 again: 10..20 a second time, 20..30 for the first.
    count_reaches(stack, &topic, 40).await?;
    let lines = topic_lines(stack, &topic)?;
    for (line, times) in [("a 5", 1), ("a 15", 2), ("a 25", 1)] {
        let n = lines.iter().filter(|l| *l == line).count();
        ensure!(n == times, "{line} appears {n} times, want {times}");
    }

    // Restarts: both flags false → 204 on the owner (forwarded); KIP-745 → 202 with RESTARTING.
    expect(
        reqwest::Method::POST,
        &url(0, "/connectors/src/restart"),
        None,
        204,
    )
    .await?;
    let (code, body) = send(
        reqwest::Method::POST,
        &url(
            1,
            "/connectors/src/restart?includeTasks=true&onlyFailed=false",
        ),
        None,
    )
    .await?;
    ensure!(
        code == 202
            && body["connector"]["state"] == "RESTARTING"
            && body["tasks"][0]["state"] == "RESTARTING",
        "KIP-745 restart: {code} {body}"
    );
    let (code, body) = send(
        reqwest::Method::POST,
        &url(
            2,
            "/connectors/src/restart?includeTasks=true&onlyFailed=true",
        ),
        None,
    )
    .await?;
    ensure!(
        code == 202 && body["connector"]["state"] != "RESTARTING",
        "onlyFailed restart of a healthy connector restarts nothing: {code} {body}"
    );
    expect(
        reqwest::Method::POST,
        &url(2, "/connectors/src/tasks/0/restart"),
        None,
        204,
    )
    .await?;
    wait_states(&workers, "src", "RUNNING", &["RUNNING"]).await?;
    write_lines(&file, "a", 30..40)?;
    count_reaches(stack, &topic, 50).await?;

    // A config update moves the output to another topic.
    let topic2 = stack.create_topic("life2", 1, 1, &[]).await?;
    expect(
        reqwest::Method::PUT,
        &url(0, "/connectors/src/config"),
        Some(source_config(&file, &topic2)),
        200,
    )
    .await?;
    wait_until(
        "the updated task config on every worker",
        SETTLE,
        || async {
            for w in &workers {
                let (_, t) = get_json(&format!("{}/connectors/src/tasks", w.rest_url)).await?;
                if t[0]["config"]["topic"] != json!(topic2) {
                    return Ok(None);
                }
            }
            Ok(Some(()))
        },
    )
    .await?;
    // The task restarts with the new config.
    tokio::time::sleep(Duration::from_secs(2)).await;
    wait_states(&workers, "src", "RUNNING", &["RUNNING"]).await?;
    write_lines(&file, "a", 40..45)?;
    count_reaches(stack, &topic2, 5).await?;

    // initial_state: created PAUSED or STOPPED, it does not produce.
    let file_p = dir.path().join("paused.txt");
    write_lines(&file_p, "p", 0..5)?;
    let topic_p = stack.create_topic("life-p", 1, 1, &[]).await?;
    let body = json!({
        "name": "born-paused",
        "config": source_config(&file_p, &topic_p),
        "initial_state": "paused",
    });
    expect(
        reqwest::Method::POST,
        &url(2, "/connectors"),
        Some(body),
        201,
    )
    .await?;
    wait_states(&workers, "born-paused", "PAUSED", &["PAUSED"]).await?;
    let body = json!({
        "name": "born-stopped",
        "config": source_config(&file_p, &topic_p),
        "initial_state": "STOPPED",
    });
    expect(
        reqwest::Method::POST,
        &url(1, "/connectors"),
        Some(body),
        201,
    )
    .await?;
    wait_states(&workers, "born-stopped", "STOPPED", &[]).await?;
    stays_at(stack, &topic_p, 0, "created paused and stopped").await?;

    // Delete: gone from every worker, and its task no longer produces.
    expect(
        reqwest::Method::DELETE,
        &url(1, "/connectors/src"),
        None,
        204,
    )
    .await?;
    wait_until("the connector gone everywhere", SETTLE, || async {
        for w in &workers {
            let (a, _) = get_json(&format!("{}/connectors/src", w.rest_url)).await?;
            let (b, _) = get_json(&format!("{}/connectors/src/status", w.rest_url)).await?;
            if a != 404 || b != 404 {
                return Ok(None);
            }
        }
        Ok(Some(()))
    })
    .await?;
    write_lines(&file, "a", 45..50)?;
    stays_at(stack, &topic2, 5, "deleted").await?;
    Ok(())
}

fn sink_config(file: &Path, topic: &str) -> Value {
    json!({
        "connector.class": "org.apache.kafka.connect.file.FileStreamSinkConnector",
        "file": file.display().to_string(),
        "topics": topic,
        "tasks.max": "1",
    })
}

/// How many times each line appears in `file`.
fn line_counts(file: &Path) -> BTreeMap<String, usize> {
    let mut counts = BTreeMap::new();
    for l in std::fs::read_to_string(file).unwrap_or_default().lines() {
        *counts.entry(l.to_string()).or_insert(0) += 1;
    }
    counts
}

async fn lines_reach(file: &Path, count: usize) -> Result<()> {
    wait_until(
        &format!("{count} lines in {}", file.display()),
        SETTLE,
        || async {
            let n: usize = line_counts(file).values().sum();
            ensure!(
                n <= count,
                "{n} lines in {}, more than {count}",
                file.display()
            );
            Ok((n == count).then_some(()))
        },
    )
    .await
}

/// Sends an offsets change, again while the group still has members (the stopped task's
/// consumer may take a moment to leave, as Java's message says).
async fn change_offsets(method: reqwest::Method, url: &str, body: Option<Value>) -> Result<Value> {
    wait_until(&format!("{method} {url}"), SETTLE, || async {
        let (code, v) = send(method.clone(), url, body.clone()).await?;
        if code == 500
            && v["message"]
                .as_str()
                .is_some_and(|m| m.contains("haven't stopped"))
        {
            return Ok(None);
        }
        ensure!(code == 200, "{method} {url}: {code} {v}");
        Ok(Some(v))
    })
    .await
}

#[tokio::test(flavor = "multi_thread")]
async fn sink_offsets_and_failed_task_restarts_take_effect_on_the_data() -> Result<()> {
    let stack = Devstack::shared()?;
    let dir = tempfile::tempdir()?;
    let group = unique_name("dist-sink");
    let props = distributed_properties(stack, &group, "scheduled.rebalance.max.delay.ms=0")?;
    let workers = start_workers(dir.path(), &props, &["k1", "k2"]).await?;
    let url = |i: usize, path: &str| format!("{}{path}", workers[i].rest_url);
    // Connector names name consumer groups (`connect-<name>`) on the shared broker.
    let snk = unique_name("snk");
    let broken = unique_name("broken");
    let topic = stack.create_topic("sinkoff", 1, 1, &[]).await?;
    let input = dir.path().join("in.txt");
    let output = dir.path().join("out.txt");
    write_lines(&input, "s", 0..10)?;
    expect(
        reqwest::Method::PUT,
        &url(0, "/connectors/src/config"),
        Some(source_config(&input, &topic)),
        201,
    )
    .await?;
    expect(
        reqwest::Method::PUT,
        &url(1, &format!("/connectors/{snk}/config")),
        Some(sink_config(&output, &topic)),
        201,
    )
    .await?;
    lines_reach(&output, 10).await?;

    // While it runs, its offsets cannot change.
    let moved = json!({"offsets": [{
        "partition": {"kafka_topic": topic, "kafka_partition": 0},
        "offset": {"kafka_offset": 5},
    }]});
    let (code, body) = send(
        reqwest::Method::PATCH,
        &url(0, &format!("/connectors/{snk}/offsets")),
        Some(moved.clone()),
    )
    .await?;
    ensure!(
        code == 400
            && body["message"]
                .as_str()
                .is_some_and(|m| m.contains("STOPPED")),
        "altering a running sink's offsets: {code} {body}"
    );

    // Stopped, its offsets are its consumer group's: everything it wrote is committed.
    expect(
        reqwest::Method::PUT,
        &url(0, &format!("/connectors/{snk}/stop")),
        None,
        204,
    )
    .await?;
    wait_states(&workers, &snk, "STOPPED", &[]).await?;
    let committed = json!({"offsets": [{
        "partition": {"kafka_topic": topic, "kafka_partition": 0},
        "offset": {"kafka_offset": 10},
    }]});
    wait_until("the sink's committed offsets", SETTLE, || async {
        let (code, v) = get_json(&url(1, &format!("/connectors/{snk}/offsets"))).await?;
        ensure!(code == 200, "GET offsets: {code} {v}");
        Ok((v == committed).then_some(()))
    })
    .await?;

    // A malformed change is refused with Java's message, naming the keys.
    let (code, body) = send(
        reqwest::Method::PATCH,
        &url(1, &format!("/connectors/{snk}/offsets")),
        Some(json!({"offsets": [{"partition": {"topic": topic}, "offset": {"kafka_offset": 1}}]})),
    )
    .await?;
    ensure!(
        code == 400
            && body["message"]
                .as_str()
                .is_some_and(|m| m.contains("'kafka_topic' and 'kafka_partition'")),
        "malformed sink offsets: {code} {body}"
    );

    // Altered back to 5: on resume lines 5..9 are written a second time, nothing else.
    let v = change_offsets(
        reqwest::Method::PATCH,
        &url(1, &format!("/connectors/{snk}/offsets")),
        Some(moved),
    )
    .await?;
    ensure!(
        v["message"] == "The offsets for this connector have been altered successfully",
        "{v}"
    );
    let (_, v) = get_json(&url(0, &format!("/connectors/{snk}/offsets"))).await?;
    ensure!(
        v["offsets"][0]["offset"]["kafka_offset"] == 5,
        "after alter: {v}"
    );
    expect(
        reqwest::Method::PUT,
        &url(0, &format!("/connectors/{snk}/resume")),
        None,
        202,
    )
    .await?;
    lines_reach(&output, 15).await?;
    let counts = line_counts(&output);
    ensure!(
        counts["s 4"] == 1 && counts["s 5"] == 2 && counts["s 9"] == 2,
        "after altering the offset to 5: {counts:?}"
    );

    // A null offset forgets the partition; a reset deletes the group (and is idempotent): on
    // resume the sink starts from the earliest record again.
    expect(
        reqwest::Method::PUT,
        &url(1, &format!("/connectors/{snk}/stop")),
        None,
        204,
    )
    .await?;
    wait_states(&workers, &snk, "STOPPED", &[]).await?;
    change_offsets(
        reqwest::Method::PATCH,
        &url(0, &format!("/connectors/{snk}/offsets")),
        Some(json!({"offsets": [{
            "partition": {"kafka_topic": topic, "kafka_partition": "0"},
            "offset": null,
        }]})),
    )
    .await?;
    let (_, v) = get_json(&url(1, &format!("/connectors/{snk}/offsets"))).await?;
    ensure!(v == json!({"offsets": []}), "after a null offset: {v}");
    for _ in 0..2 {
        let v = change_offsets(
            reqwest::Method::DELETE,
            &url(1, &format!("/connectors/{snk}/offsets")),
            None,
        )
        .await?;
        ensure!(
            v["message"] == "The offsets for this connector have been reset successfully",
            "{v}"
        );
    }
    expect(
        reqwest::Method::PUT,
        &url(1, &format!("/connectors/{snk}/resume")),
        None,
        202,
    )
    .await?;
    lines_reach(&output, 25).await?;
    let counts = line_counts(&output);
    ensure!(
        counts["s 0"] == 2 && counts["s 9"] == 3,
        "after a reset: {counts:?}"
    );

    // KIP-745 with a FAILED task: a sink whose directory does not exist fails its task.
    let missing = dir.path().join("later");
    let broken_out = missing.join("out.txt");
    expect(
        reqwest::Method::PUT,
        &url(0, &format!("/connectors/{broken}/config")),
        Some(sink_config(&broken_out, &topic)),
        201,
    )
    .await?;
    wait_states(&workers, &broken, "RUNNING", &["FAILED"]).await?;
    let (_, status) = get_json(&url(1, &format!("/connectors/{broken}/status"))).await?;
    ensure!(
        status["tasks"][0]["trace"]
            .as_str()
            .is_some_and(|t| t.contains("out.txt")),
        "the failed task's trace names the file: {status}"
    );
    std::fs::create_dir_all(&missing)?;
    // onlyFailed without tasks: the connector is healthy, so nothing restarts.
    let restart = async |i: usize, query: &str| -> Result<Value> {
        let target = url(i, &format!("/connectors/{broken}/restart{query}"));
        let code = if query.is_empty() { 204 } else { 202 };
        expect(reqwest::Method::POST, &target, None, code).await
    };
    let body = restart(1, "?includeTasks=false&onlyFailed=true").await?;
    ensure!(
        body["connector"]["state"] == "RUNNING" && body["tasks"][0]["state"] == "FAILED",
        "onlyFailed, connector only: {body}"
    );
    stays_failed(&workers, &broken).await?;
    // The legacy connector-only restart leaves the task failed too.
    restart(0, "").await?;
    stays_failed(&workers, &broken).await?;
    // onlyFailed with tasks: just the failed task restarts, and now it writes.
    let body = restart(0, "?includeTasks=true&onlyFailed=true").await?;
    ensure!(
        body["connector"]["state"] == "RUNNING" && body["tasks"][0]["state"] == "RESTARTING",
        "onlyFailed with tasks: {body}"
    );
    wait_states(&workers, &broken, "RUNNING", &["RUNNING"]).await?;
    lines_reach(&broken_out, 10).await?;
    Ok(())
}

/// The connector's task stays FAILED for a few seconds on every worker.
async fn stays_failed(workers: &[WorkerProcess], c: &str) -> Result<()> {
    for _ in 0..4 {
        tokio::time::sleep(Duration::from_secs(1)).await;
        for w in workers {
            let (code, s) =
                get_json(&format!("{}/connectors/{c}/tasks/0/status", w.rest_url)).await?;
            ensure!(
                code == 200 && s["state"] == "FAILED",
                "{c}'s task on {}: {code} {s}, want FAILED",
                w.rest_url
            );
        }
    }
    Ok(())
}

/// Every record of `topic` with its provenance stamp: (task, generation, worker, value).
fn stamped(stack: &Devstack, topic: &str) -> Result<Vec<(String, i32, String, String)>> {
    read_topic(stack, topic)?
        .into_iter()
        .map(|(value, mut stamp)| {
            Ok((
                stamp
                    .remove("tributary.task")
                    .context("no tributary.task header")?,
                stamp
                    .remove("tributary.generation")
                    .context("no tributary.generation header")?
                    .parse()?,
                stamp
                    .remove("tributary.worker")
                    .context("no tributary.worker header")?,
                value,
            ))
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_rolling_restart_loses_nothing_and_never_runs_a_task_twice() -> Result<()> {
    const LINES: usize = 1_000_000;
    let stack = Devstack::shared()?;
    let dir = tempfile::tempdir()?;
    let group = unique_name("dist-roll");
    let props = distributed_properties(stack, &group, "tributary.provenance.headers=true")?;
    let mut workers = start_workers(dir.path(), &props, &["r1", "r2", "r3"]).await?;
    let topic = stack.create_topic("roll", 1, 1, &[]).await?;
    let input = dir.path().join("in.txt");
    let output = dir.path().join("out.txt");
    std::fs::write(&input, "")?;
    let url = workers[0].rest_url.clone();
    for (name, config) in [
        ("roll-src", source_config(&input, &topic)),
        (
            "roll-sink",
            json!({
                "connector.class": "org.apache.kafka.connect.file.FileStreamSinkConnector",
                "file": output.display().to_string(),
                "topics": topic,
                "tasks.max": "1",
            }),
        ),
    ] {
        let (code, body) = send(
            reqwest::Method::PUT,
            &format!("{url}/connectors/{name}/config"),
            Some(config),
        )
        .await?;
        ensure!(code == 201, "creating {name}: {code} {body}");
    }
    wait_states(&workers, "roll-src", "RUNNING", &["RUNNING"]).await?;
    wait_states(&workers, "roll-sink", "RUNNING", &["RUNNING"]).await?;

    // The input grows while the workers restart one by one.
    let writer_file = input.clone();
    let writer = std::thread::spawn(move || -> Result<()> {
        for chunk in 0..40 {
            let from = chunk * LINES / 40;
            write_lines(&writer_file, "seq", from..from + LINES / 40)?;
            std::thread::sleep(Duration::from_millis(500));
        }
        Ok(())
    });
    for i in 0..3 {
        workers[i].stop();
        workers[i].restart()?;
        workers[i].wait_healthy(START).await?;
        let observer = workers[(i + 1) % 3].rest_url.clone();
        for c in [[("roll-src", 1)], [("roll-sink", 1)]] {
            wait_until(
                &format!("{} RUNNING after restarting r{}", c[0].0, i + 1),
                SETTLE,
                || all_running(&observer, &c),
            )
            .await?;
        }
    }
    writer
        .join()
        .map_err(|_| anyhow::anyhow!("the writer thread panicked"))??;

    // Nothing lost: every line reaches the topic and, through the sink, the output file.
    let want: BTreeSet<String> = (0..LINES).map(|i| format!("seq {i}")).collect();
    wait_until(
        "every line in the sink's file",
        Duration::from_secs(300),
        || async {
            let text = std::fs::read_to_string(&output).unwrap_or_default();
            let got: BTreeSet<&str> = text.lines().collect();
            Ok(
                (got.len() == want.len() && want.iter().all(|w| got.contains(w.as_str())))
                    .then_some(()),
            )
        },
    )
    .await?;
    let records = stamped(stack, &topic)?;
    let values: BTreeSet<String> = records
        .iter()
        .map(|(_, _, _, v)| serde_json::from_str::<String>(v).unwrap_or_default())
        .collect();
    ensure!(values == want, "the topic misses lines");

    // One worker per (task, generation), and owners never interleave: once a newer stamp
    // appears for a task, an older one never comes back (no zombie kept producing).
    let mut owners: BTreeMap<(String, i32), BTreeSet<String>> = BTreeMap::new();
    let mut seen: BTreeMap<String, Vec<(i32, String)>> = BTreeMap::new();
    for (task, generation, worker, _) in &records {
        owners
            .entry((task.clone(), *generation))
            .or_default()
            .insert(worker.clone());
        let history = seen.entry(task.clone()).or_default();
        let stamp = (*generation, worker.clone());
        if history.last() != Some(&stamp) {
            ensure!(
                !history.contains(&stamp),
                "{task}: {stamp:?} produced again after {:?} took over",
                history.last()
            );
            history.push(stamp);
        }
    }
    for ((task, generation), w) in &owners {
        ensure!(
            w.len() == 1,
            "{task} produced from {w:?} in generation {generation}"
        );
    }
    println!(
        "{} records for {LINES} lines; source task owners in order: {:?}",
        records.len(),
        seen
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn basic_authentication_guards_the_rest_api_and_forwarded_requests_carry_it() -> Result<()> {
    let stack = Devstack::shared()?;
    let dir = tempfile::tempdir()?;
    let group = unique_name("dist-auth");
    let password = format!("pw-{}", unique_name("secret"));
    let secrets = dir.path().join("rest.properties");
    std::fs::write(&secrets, format!("password={password}\n"))?;
    let props = distributed_properties(
        stack,
        &group,
        &format!(
            "scheduled.rebalance.max.delay.ms=0
config.providers=file
config.providers.file.class=org.apache.kafka.common.config.provider.FileConfigProvider
tributary.rest.basic.auth.username=admin
tributary.rest.basic.auth.password=${{file:{}:password}}",
            secrets.display()
        ),
    )?;
    let mut workers = Vec::with_capacity(3);
    for name in ["a1", "a2", "a3"] {
        workers.push(WorkerProcess::start_distributed(dir.path(), name, &props)?);
    }
    // Probes need no credentials: the health listener is separate.
    for w in &workers {
        wait_until(&format!("{} ready", w.name), START, || async {
            let r = http().get(format!("{}/ready", w.health_url)).send().await;
            Ok(r.ok().filter(|r| r.status().is_success()).map(|_| ()))
        })
        .await?;
    }
    let authed = |r: reqwest::RequestBuilder| r.basic_auth("admin", Some(&password));
    for w in &workers {
        let none = http()
            .get(format!("{}/connectors", w.rest_url))
            .send()
            .await?;
        ensure!(
            none.status().as_u16() == 401,
            "no credentials: {}",
            none.status()
        );
        let body: Value = none.json().await?;
        ensure!(body["error_code"] == 401, "401 body: {body}");
        let wrong = http()
            .get(format!("{}/connectors", w.rest_url))
            .basic_auth("admin", Some("nope"))
            .send()
            .await?;
        ensure!(
            wrong.status().as_u16() == 401,
            "wrong password: {}",
            wrong.status()
        );
        let right = authed(http().get(format!("{}/connectors", w.rest_url)))
            .send()
            .await?;
        ensure!(
            right.status().as_u16() == 200,
            "right password: {}",
            right.status()
        );
    }
    // Creates through every worker: followers forward with the caller's credentials; owners
    // send task configs to the leader.
    let topic = stack.create_topic("auth", 1, 1, &[]).await?;
    let mut connectors = Vec::new();
    for (i, w) in workers.iter().enumerate() {
        let file = dir.path().join(format!("auth-{i}.txt"));
        write_lines(&file, "x", 0..5)?;
        let r = authed(http().post(format!("{}/connectors", w.rest_url)))
            .json(&json!({"name": format!("auth-{i}"), "config": source_config(&file, &topic)}))
            .send()
            .await?;
        ensure!(
            r.status().as_u16() == 201,
            "create through {}: {}",
            w.name,
            r.status()
        );
        connectors.push(format!("auth-{i}"));
    }
    wait_until("15 lines in the topic", SETTLE, || async {
        Ok((topic_values(stack, &topic)?.len() == 15).then_some(()))
    })
    .await?;
    for w in &workers {
        let log = w.log();
        ensure!(
            !log.contains(&password),
            "{} logged the REST password",
            w.name
        );
    }
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn a_cluster_logger_level_reaches_every_worker() -> Result<()> {
    let stack = Devstack::shared()?;
    let dir = tempfile::tempdir()?;
    let group = unique_name("dist-log");
    let props = distributed_properties(stack, &group, "")?;
    let workers = start_workers(dir.path(), &props, &["g1", "g2", "g3"]).await?;
    let target = "tributary_worker::rest";
    let (code, body) = send(
        reqwest::Method::PUT,
        &format!(
            "{}/admin/loggers/{target}?scope=cluster",
            workers[1].rest_url
        ),
        Some(json!({"level": "debug"})),
    )
    .await?;
    ensure!(code == 204, "cluster scope: {code} {body}");
    for w in &workers {
        wait_until(
            &format!("{target} at DEBUG on {}", w.name),
            SETTLE,
            || async {
                let (code, l) = get_json(&format!("{}/admin/loggers/{target}", w.rest_url)).await?;
                Ok(
                    (code == 200 && l["level"] == "DEBUG" && l["last_modified"].is_i64())
                        .then_some(()),
                )
            },
        )
        .await?;
    }
    // The level takes effect: forwarding, logged at DEBUG by the REST layer, now shows.
    let topic = stack.create_topic("log", 1, 1, &[]).await?;
    for w in &workers {
        expect(
            reqwest::Method::PUT,
            &format!("{}/connectors/log-{}/config", w.rest_url, w.name),
            Some(source_config(&dir.path().join("none.txt"), &topic)),
            201,
        )
        .await?;
    }
    ensure!(
        workers
            .iter()
            .any(|w| w.log().contains("forwarding a REST request")),
        "no worker logged its forwarding at DEBUG"
    );
    // Worker scope: only that worker; bad requests get Java's codes.
    let (code, affected) = send(
        reqwest::Method::PUT,
        &format!(
            "{}/admin/loggers/tributary_worker::task",
            workers[0].rest_url
        ),
        Some(json!({"level": "TRACE"})),
    )
    .await?;
    ensure!(
        code == 200 && affected == json!(["tributary_worker::task"]),
        "worker scope: {code} {affected}"
    );
    let (code, _) = get_json(&format!(
        "{}/admin/loggers/tributary_worker::task",
        workers[2].rest_url
    ))
    .await?;
    ensure!(
        code == 404,
        "a worker-scoped level stays on its worker: {code}"
    );
    expect(
        reqwest::Method::PUT,
        &format!("{}/admin/loggers/x", workers[0].rest_url),
        Some(json!({"nolevel": 1})),
        400,
    )
    .await?;
    expect(
        reqwest::Method::PUT,
        &format!("{}/admin/loggers/x", workers[0].rest_url),
        Some(json!({"level": "LOUD"})),
        404,
    )
    .await?;
    let (code, all) = get_json(&format!("{}/admin/loggers", workers[0].rest_url)).await?;
    ensure!(
        code == 200 && all["root"]["level"].is_string(),
        "all loggers: {all}"
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn an_https_cluster_with_client_certificates_serves_tls_and_its_workers_forward_over_it()
-> Result<()> {
    let stack = Devstack::shared()?;
    let dir = tempfile::tempdir()?;
    let group = unique_name("dist-tls");
    // The devstack's broker certificate names 127.0.0.1; its CA is the truststore.
    let ca = std::path::PathBuf::from(stack.var("TRIBUTARY_KAFKA_CA_CERT")?);
    let keystore = ca
        .parent()
        .context("the CA certificate's directory")?
        .join("kafka-keystore.pem");
    let props = distributed_properties(
        stack,
        &group,
        &format!(
            "scheduled.rebalance.max.delay.ms=0
listeners.https.ssl.keystore.type=PEM
listeners.https.ssl.keystore.location={}
listeners.https.ssl.truststore.type=PEM
listeners.https.ssl.truststore.location={}
listeners.https.ssl.client.auth=required",
            keystore.display(),
            ca.display()
        ),
    )?;
    let workers = start_workers(dir.path(), &props, &["s1", "s2", "s3"]).await?;
    let root = reqwest::Certificate::from_pem(&std::fs::read(&ca)?)?;
    // The keystore (key, then certificate) doubles as the client's certificate.
    let pem = std::fs::read(&keystore)?;
    let trusting = reqwest::Client::builder()
        .timeout(Duration::from_secs(30))
        .add_root_certificate(root.clone())
        .identity(reqwest::Identity::from_pkcs8_pem(&pem, &pem)?)
        .build()?;
    let anonymous = reqwest::Client::builder()
        .timeout(Duration::from_secs(30))
        .add_root_certificate(root)
        .build()?;
    for w in &workers {
        ensure!(w.rest_url.starts_with("https://"), "{}", w.rest_url);
        // ssl.client.auth=required: no certificate, no answer.
        let r = anonymous.get(format!("{}/", w.rest_url)).send().await;
        ensure!(
            r.is_err(),
            "answered a client without a certificate: {:?}",
            r.map(|r| r.status())
        );
        let r = trusting.get(format!("{}/", w.rest_url)).send().await?;
        ensure!(
            r.status().as_u16() == 200,
            "GET / over https: {}",
            r.status()
        );
        // Plain HTTP on the TLS port gets no answer.
        let plain = http()
            .get(w.rest_url.replace("https://", "http://"))
            .send()
            .await;
        ensure!(
            plain.map(|r| !r.status().is_success()).unwrap_or(true),
            "plain http answered on the https listener"
        );
    }
    let topic = stack.create_topic("tls", 1, 1, &[]).await?;
    for (i, w) in workers.iter().enumerate() {
        let file = dir.path().join(format!("tls-{i}.txt"));
        write_lines(&file, "t", 0..4)?;
        let r = trusting
            .post(format!("{}/connectors", w.rest_url))
            .json(&json!({"name": format!("tls-{i}"), "config": source_config(&file, &topic)}))
            .send()
            .await?;
        ensure!(
            r.status().as_u16() == 201,
            "create through {}: {}",
            w.name,
            r.status()
        );
    }
    wait_until("12 lines in the topic", SETTLE, || async {
        Ok((topic_values(stack, &topic)?.len() == 12).then_some(()))
    })
    .await?;
    Ok(())
}
