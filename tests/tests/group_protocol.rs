//! The Connect group protocol codecs against real Java workers: two Java `connect-distributed`
//! workers (Foundation jars) form a group on the devstack broker and run two connectors; the
//! group as the broker describes it (DescribeGroups: every member's metadata for the chosen
//! protocol and the assignment the leader gave it) must decode with Tributary's codecs, re-encode
//! byte for byte, and — each member's last allocation minus what it was told to revoke plus what
//! it was assigned — say what the REST API says about who runs what.

#![allow(clippy::expect_used)]

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result, bail, ensure};
use rdkafka::consumer::{BaseConsumer, Consumer};
use serde_json::{Value, json};
use tokio::sync::mpsc;
use tributary_connect_protocol::assignor::Snapshot;
use tributary_connect_protocol::{Assignment, ConnectProtocol, TaskId, Work, WorkerMetadata};
use tributary_tests::installed::Installed;
use tributary_tests::stack::java_connect::JavaConnect;
use tributary_tests::{Devstack, unique_name, wait_until};
use tributary_worker::coordinator::connection::Security;
use tributary_worker::coordinator::driver::{DriverConfig, run};
use tributary_worker::coordinator::machine::{GroupSettings, Input};
use tributary_worker::coordinator::member::ConnectMember;

/// One member as DescribeGroups shows it.
#[derive(Debug)]
struct DescribedMember {
    id: String,
    metadata: Vec<u8>,
    assignment: Vec<u8>,
}

fn describe(
    stack: &Devstack,
    group: &str,
) -> Result<Option<(String, String, Vec<DescribedMember>)>> {
    let client: BaseConsumer = stack.kafka_config()?.create()?;
    let list = client.fetch_group_list(Some(group), Duration::from_secs(10))?;
    let Some(g) = list.groups().iter().find(|g| g.name() == group) else {
        return Ok(None);
    };
    let members = g
        .members()
        .iter()
        .map(|m| DescribedMember {
            id: m.id().to_string(),
            metadata: m.metadata().unwrap_or_default().to_vec(),
            assignment: m.assignment().unwrap_or_default().to_vec(),
        })
        .collect();
    Ok(Some((
        g.protocol_type().to_string(),
        g.protocol().to_string(),
        members,
    )))
}

/// Who runs what according to the REST API: worker id ("host:port") → work.
async fn rest_owners(url: &str, connectors: &[String]) -> Result<BTreeMap<String, Work>> {
    let http = reqwest::Client::new();
    let mut out: BTreeMap<String, Work> = BTreeMap::new();
    for c in connectors {
        let s: Value = http
            .get(format!("{url}/connectors/{c}/status"))
            .send()
            .await?
            .json()
            .await?;
        let worker = s["connector"]["worker_id"]
            .as_str()
            .context("connector worker_id")?;
        out.entry(worker.to_string())
            .or_default()
            .connectors
            .insert(c.clone());
        for t in s["tasks"].as_array().context("tasks")? {
            let id = t["id"].as_i64().context("task id")? as i32;
            let worker = t["worker_id"].as_str().context("task worker_id")?;
            out.entry(worker.to_string())
                .or_default()
                .tasks
                .insert(TaskId::new(c.clone(), id));
        }
    }
    Ok(out)
}

async fn all_running(url: &str, connectors: &[String], tasks: usize) -> Result<Option<()>> {
    let http = reqwest::Client::new();
    for c in connectors {
        let s: Value = http
            .get(format!("{url}/connectors/{c}/status"))
            .send()
            .await?
            .json()
            .await?;
        let running = s["connector"]["state"] == "RUNNING"
            && s["tasks"]
                .as_array()
                .is_some_and(|t| t.len() == tasks && t.iter().all(|t| t["state"] == "RUNNING"));
        if !running {
            return Ok(None);
        }
    }
    Ok(Some(()))
}

/// Two Java workers in a fresh group running two FileStreamSink connectors of two tasks each.
struct JavaGroup {
    workers: Vec<JavaConnect>,
    group: String,
    url: String,
    connectors: Vec<String>,
    topic: String,
    dir: tempfile::TempDir,
}

async fn java_group(stack: &Devstack) -> Result<JavaGroup> {
    let dir = tempfile::tempdir()?;
    let group = unique_name("java-group");
    let installed = Installed::locate();
    let bootstrap = stack.kafka_bootstrap()?.to_string();
    let mut workers = Vec::new();
    for i in 0..2 {
        let mut w = JavaConnect::start(
            &installed,
            &bootstrap,
            &group,
            &dir.path().join(format!("w{i}")),
            stack.kafka_nodes()?.min(3),
        )?;
        w.wait_ready(Duration::from_secs(180)).await?;
        workers.push(w);
    }
    let url = workers[0].url.clone();
    let http = reqwest::Client::new();
    let topic = stack.create_topic("group-protocol", 2, 1, &[]).await?;
    let connectors: Vec<String> = (0..2).map(|i| format!("sink-{i}")).collect();
    for c in &connectors {
        let r = http
            .put(format!("{url}/connectors/{c}/config"))
            .json(&sink_config(dir.path(), c, &topic))
            .send()
            .await?;
        ensure!(r.status().is_success(), "creating {c}: {}", r.text().await?);
    }
    wait_until(
        "both connectors and their tasks RUNNING",
        Duration::from_secs(180),
        || all_running(&url, &connectors, 2),
    )
    .await?;
    Ok(JavaGroup {
        workers,
        group,
        url,
        connectors,
        topic,
        dir,
    })
}

fn sink_config(dir: &std::path::Path, name: &str, topic: &str) -> Value {
    json!({
        "connector.class": "org.apache.kafka.connect.file.FileStreamSinkConnector",
        "file": dir.join(format!("{name}.txt")).display().to_string(),
        "topics": topic,
        "tasks.max": "2",
    })
}

#[tokio::test]
async fn java_workers_group_metadata_and_assignments_round_trip_through_our_codecs() -> Result<()> {
    let stack = Devstack::shared()?;
    let JavaGroup {
        mut workers,
        group,
        url,
        connectors,
        topic: _,
        dir: _dir,
    } = java_group(stack).await?;

    // The group settles: two members, each allocation agreeing with the REST API.
    let (members, owners) = wait_until("a settled group", Duration::from_secs(180), || async {
        let Some((protocol_type, protocol, members)) = describe(stack, &group)? else {
            return Ok(None);
        };
        ensure!(protocol_type == "connect", "protocol type {protocol_type}");
        if members.len() != 2 || protocol.is_empty() {
            return Ok(None);
        }
        ensure!(
            protocol == "sessioned",
            "Java 4.3 workers agree on sessioned, got {protocol}"
        );
        let owners = rest_owners(&url, &connectors).await?;
        Ok(Some((members, owners)))
    })
    .await?;

    // `TRIBUTARY_FUZZ_SEEDS=<dir>` keeps the bytes as fuzzing seeds (fuzz/seeds holds a run's).
    if let Ok(dir) = std::env::var("TRIBUTARY_FUZZ_SEEDS") {
        for (i, m) in members.iter().enumerate() {
            for (kind, bytes) in [("metadata", &m.metadata), ("assignment", &m.assignment)] {
                let d = std::path::Path::new(&dir).join(kind);
                std::fs::create_dir_all(&d)?;
                std::fs::write(d.join(format!("java-4.3-member-{i}")), bytes)?;
            }
        }
    }
    let mut seen = Work::new();
    let mut leaders = Vec::new();
    for m in &members {
        let meta =
            WorkerMetadata::decode(&m.metadata).with_context(|| format!("metadata of {}", m.id))?;
        ensure!(meta.version == 2, "metadata version {}", meta.version);
        ensure!(
            meta.config_offset >= 0,
            "config offset {}",
            meta.config_offset
        );
        ensure!(
            meta.encode()? == m.metadata,
            "metadata of {} re-encodes differently:\n  java: {:02x?}\n  ours: {:02x?}",
            m.id,
            m.metadata,
            meta.encode()?
        );
        let a =
            Assignment::decode(&m.assignment).with_context(|| format!("assignment of {}", m.id))?;
        ensure!(a.version == 2 && a.error == 0, "assignment {a:?}");
        ensure!(
            a.encode()? == m.assignment,
            "assignment of {} re-encodes differently:\n  java: {:02x?}\n  ours: {:02x?}",
            m.id,
            m.assignment,
            a.encode()?
        );
        leaders.push((a.leader.clone(), a.leader_url.clone()));
        // The member's metadata carries what it ran when it last joined; the assignment of that
        // round says what to stop and what to add. Applied as a cooperative member does, the
        // result is what it runs now, and the REST API must agree.
        let mut running = meta.running();
        running.apply(&a);
        let worker_id = meta
            .url
            .trim_start_matches("http://")
            .trim_end_matches('/')
            .to_string();
        let rest = owners.get(&worker_id).cloned().unwrap_or_default();
        if running != rest {
            bail!(
                "member {} ({worker_id}) announces {running:?} but the REST API says it runs {rest:?}",
                m.id
            );
        }
        ensure!(
            !running.overlaps(&seen),
            "work held twice: {:?}",
            running.intersect(&seen)
        );
        seen.add(&running);
    }
    let mut expected = Work::new();
    for c in &connectors {
        expected.connectors.insert(c.clone());
        for t in 0..2 {
            expected.tasks.insert(TaskId::new(c.clone(), t));
        }
    }
    ensure!(
        seen == expected,
        "allocations cover {seen:?}, expected {expected:?}"
    );
    // Both members name the same leader, one of them.
    ensure!(
        leaders.iter().all(|l| *l == leaders[0]),
        "leaders {leaders:?}"
    );
    ensure!(
        members.iter().any(|m| m.id == leaders[0].0),
        "the leader {} is not a member",
        leaders[0].0
    );
    for w in &mut workers {
        w.process.request_stop();
    }
    Ok(())
}

/// What every member of the group runs, from DescribeGroups: allocation − revoked + assigned;
/// `None` while a rebalance is under way (members without metadata or assignment).
fn described_running(stack: &Devstack, group: &str) -> Result<Option<BTreeMap<String, Work>>> {
    let mut out = BTreeMap::new();
    if let Some((_, _, members)) = describe(stack, group)? {
        if members
            .iter()
            .any(|m| m.metadata.is_empty() || m.assignment.is_empty())
        {
            return Ok(None);
        }
        for m in members {
            let meta = WorkerMetadata::decode(&m.metadata)?;
            let a = Assignment::decode(&m.assignment)?;
            let mut running = meta.running();
            running.apply(&a);
            out.insert(m.id, running);
        }
    }
    Ok(Some(out))
}

#[tokio::test]
async fn a_tributary_member_joins_a_java_led_group_and_stays_through_rebalances() -> Result<()> {
    let stack = Devstack::shared()?;
    let JavaGroup {
        mut workers,
        group,
        url,
        connectors,
        topic,
        dir,
    } = java_group(stack).await?;
    // Our member announces config offset -1 (it has read nothing), so the Java leader never sees
    // a member ahead of itself.
    let (tx, rx) = mpsc::unbounded_channel();
    let snapshot = Arc::new(std::sync::Mutex::new(Snapshot {
        offset: -1,
        connectors: BTreeMap::new(),
    }));
    let mut member = ConnectMember::new(
        "http://127.0.0.1:1/",
        ConnectProtocol::Sessioned,
        300_000,
        snapshot,
        tx.clone(),
    );
    let view = member.view();
    let config = DriverConfig {
        bootstrap: DriverConfig::parse_bootstrap(stack.kafka_bootstrap()?)?,
        security: Security::default(),
        client_id: "tributary-interop".into(),
        settings: GroupSettings::connect(group.clone()),
    };
    let task = tokio::spawn(async move { run(config, &mut member, rx).await });
    let current = || view.lock().map(|v| v.clone()).unwrap_or_default();

    // The Java leader takes us in and, after its load-balancing revocations, gives us work.
    let mut configured: Vec<String> = connectors.clone();
    let first = wait_until(
        "work from the Java leader",
        Duration::from_secs(120),
        || {
            let v = current();
            async move { Ok((v.rounds > 0 && !v.running.is_empty()).then_some(v)) }
        },
    )
    .await?;
    ensure!(first.protocol == "sessioned", "{first:?}");
    ensure!(
        first.leader_url.starts_with("http://127.0.0.1:")
            && first.leader_url != "http://127.0.0.1:1/"
    );
    let check = async |v: &tributary_worker::coordinator::member::MemberView,
                       configured: &[String]|
           -> Result<()> {
        for c in &v.running.connectors {
            ensure!(configured.contains(c), "assigned unknown connector {c}");
        }
        for t in &v.running.tasks {
            ensure!(
                configured.contains(&t.connector) && (0..2).contains(&t.task),
                "assigned unknown task {t}"
            );
        }
        let group = group.clone();
        let member_id = v.member_id.clone();
        wait_until(
            "a stable group with our member and no work held twice",
            Duration::from_secs(120),
            || {
                let r = described_running(stack, &group);
                let member_id = member_id.clone();
                async move {
                    let Some(all) = r? else {
                        return Ok(None);
                    };
                    ensure!(
                        all.contains_key(&member_id),
                        "our member {member_id} is not in the group"
                    );
                    let mut seen = Work::new();
                    for (id, w) in &all {
                        ensure!(
                            !w.overlaps(&seen),
                            "{id} runs work another member runs: {:?}",
                            w.intersect(&seen)
                        );
                        seen.add(w);
                    }
                    Ok(Some(()))
                }
            },
        )
        .await
    };
    check(&first, &configured).await?;

    // Our member reports what it was given as RUNNING in the status topic, with its worker id and
    // generation; Java's REST API, reading the same topic, shows it so.
    {
        use tributary_worker::kafka_log::TopicSpec;
        use tributary_worker::status_store::{Status, StatusKey, StatusState, StatusStore};
        let base = stack.kafka_config()?;
        let spec = TopicSpec::new("status.storage.topic", format!("{group}-status"), 1, 1);
        let running = first.running.clone();
        let generation = first.generation;
        tokio::task::spawn_blocking(move || -> Result<()> {
            let mut store = StatusStore::start(
                &base,
                &spec,
                "tributary-interop-status",
                Duration::from_secs(30),
            )?;
            let status = Status {
                state: StatusState::Running,
                trace: None,
                worker_id: "127.0.0.1:1".into(),
                generation,
                version: None,
            };
            for c in &running.connectors {
                store.put(&StatusKey::Connector(c.clone()), &status)?;
            }
            for t in &running.tasks {
                store.put(
                    &StatusKey::Task(t.connector.clone(), t.task as u32),
                    &status,
                )?;
            }
            Ok(())
        })
        .await??;
        let http = reqwest::Client::new();
        let probe = first
            .running
            .tasks
            .iter()
            .next()
            .cloned()
            .context("our member was given no task")?;
        wait_until(
            "Java's REST API shows our member's task RUNNING",
            Duration::from_secs(60),
            || {
                let (http, url, probe) = (http.clone(), url.clone(), probe.clone());
                async move {
                    let s: Value = http
                        .get(format!(
                            "{url}/connectors/{}/tasks/{}/status",
                            probe.connector, probe.task
                        ))
                        .send()
                        .await?
                        .json()
                        .await?;
                    Ok((s["state"] == "RUNNING" && s["worker_id"] == "127.0.0.1:1").then_some(()))
                }
            },
        )
        .await?;
    }

    // Two more rebalances, started from the Java side: a connector added, then one removed.
    let http = reqwest::Client::new();
    let r = http
        .put(format!("{url}/connectors/sink-2/config"))
        .json(&sink_config(dir.path(), "sink-2", &topic))
        .send()
        .await?;
    ensure!(r.status().is_success(), "{}", r.text().await?);
    configured.push("sink-2".into());
    let second = wait_until(
        "a rebalance after adding a connector",
        Duration::from_secs(120),
        || {
            let v = current();
            let g = first.generation;
            async move { Ok((v.generation > g).then_some(v)) }
        },
    )
    .await?;
    check(&second, &configured).await?;
    let r = http
        .delete(format!("{url}/connectors/sink-0"))
        .send()
        .await?;
    ensure!(r.status().is_success(), "{}", r.text().await?);
    configured.retain(|c| c != "sink-0");
    let third = wait_until(
        "a rebalance after removing a connector",
        Duration::from_secs(120),
        || {
            let v = current();
            let g = second.generation;
            async move {
                Ok((v.generation > g
                    && !v.running.connectors.contains("sink-0")
                    && !v.running.tasks.iter().any(|t| t.connector == "sink-0"))
                .then_some(v))
            }
        },
    )
    .await?;
    check(&third, &configured).await?;
    ensure!(
        third.member_id == first.member_id,
        "our member had to rejoin as a new member"
    );

    tx.send(Input::Leave)?;
    tokio::time::timeout(Duration::from_secs(30), task).await???;
    for w in &mut workers {
        w.process.request_stop();
    }
    Ok(())
}

/// A record as read back: offset, key, value (`None` for a tombstone).
type Record = (i64, String, Option<Vec<u8>>);

/// Every record of a topic from the beginning to its current end.
fn read_topic(stack: &Devstack, topic: &str) -> Result<Vec<Record>> {
    use rdkafka::Message;
    let consumer: BaseConsumer = stack
        .kafka_config()?
        .set("group.id", unique_name("reader"))
        .set("enable.auto.commit", "false")
        .set("isolation.level", "read_committed")
        .create()?;
    let (_, end) = consumer.fetch_watermarks(topic, 0, Duration::from_secs(10))?;
    let mut tpl = rdkafka::TopicPartitionList::new();
    tpl.add_partition_offset(topic, 0, rdkafka::Offset::Beginning)?;
    consumer.assign(&tpl)?;
    let mut out = Vec::new();
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    while consumer
        .position()?
        .find_partition(topic, 0)
        .and_then(|p| p.offset().to_raw())
        .unwrap_or(0)
        < end
    {
        ensure!(
            std::time::Instant::now() < deadline,
            "reading {topic} timed out"
        );
        if let Some(m) = consumer.poll(Duration::from_millis(200)) {
            let m = m?;
            let key = String::from_utf8(m.key().unwrap_or_default().to_vec())?;
            out.push((m.offset(), key, m.payload().map(<[u8]>::to_vec)));
        }
    }
    Ok(out)
}

#[tokio::test]
async fn the_java_config_topic_rebuilds_into_the_same_cluster_config() -> Result<()> {
    use tributary_worker::config_store::record::{ConfigRecord, TargetState};
    use tributary_worker::config_store::snapshot::ConfigState;
    let stack = Devstack::shared()?;
    let JavaGroup {
        mut workers,
        group,
        url,
        connectors,
        topic: _,
        dir: _dir,
    } = java_group(stack).await?;
    // Pause one connector and stop the other through Java's API.
    let http = reqwest::Client::new();
    ensure!(
        http.put(format!("{url}/connectors/sink-0/pause"))
            .send()
            .await?
            .status()
            .is_success()
    );
    ensure!(
        http.put(format!("{url}/connectors/sink-1/stop"))
            .send()
            .await?
            .status()
            .is_success()
    );
    let states = wait_until(
        "sink-0 PAUSED and sink-1 STOPPED",
        Duration::from_secs(120),
        || {
            let http = http.clone();
            let url = url.clone();
            async move {
                let a: Value = http
                    .get(format!("{url}/connectors/sink-0/status"))
                    .send()
                    .await?
                    .json()
                    .await?;
                let b: Value = http
                    .get(format!("{url}/connectors/sink-1/status"))
                    .send()
                    .await?
                    .json()
                    .await?;
                Ok(
                    (a["connector"]["state"] == "PAUSED" && b["connector"]["state"] == "STOPPED")
                        .then_some(()),
                )
            }
        },
    )
    .await;
    states?;
    let records = read_topic(stack, &format!("{group}-configs"))?;
    ensure!(!records.is_empty(), "the config topic is empty");
    let mut state = ConfigState::new();
    let mut last = -1;
    for (offset, key, value) in records {
        let value: Option<Value> = value.map(|v| serde_json::from_slice(&v)).transpose()?;
        match ConfigRecord::parse(&key, value.as_ref()) {
            Ok(r) => {
                state.apply(offset, r);
            }
            Err(e) => panic!("Java wrote a record we cannot read: {e}"),
        }
        last = offset;
    }
    ensure!(state.offset() == last + 1);
    ensure!(
        state.connectors().collect::<Vec<_>>()
            == connectors.iter().map(String::as_str).collect::<Vec<_>>()
    );
    ensure!(state.target_state("sink-0") == Some(TargetState::Paused));
    ensure!(state.target_state("sink-1") == Some(TargetState::Stopped));
    // sink-0 kept its two tasks; stopping sink-1 committed zero tasks.
    ensure!(
        state.task_count("sink-0") == 2,
        "sink-0 tasks {}",
        state.task_count("sink-0")
    );
    ensure!(
        state.task_count("sink-1") == 0,
        "sink-1 tasks {}",
        state.task_count("sink-1")
    );
    let task_config = state.task_config("sink-0", 1).cloned().unwrap_or_default();
    ensure!(
        task_config
            .get("task.class")
            .is_some_and(|c| c.ends_with("FileStreamSinkTask")),
        "{task_config:?}"
    );
    let config = state
        .connector_config("sink-0")
        .cloned()
        .unwrap_or_default();
    ensure!(
        config.get("name").map(String::as_str) == Some("sink-0")
            && config
                .get("connector.class")
                .is_some_and(|c| c.ends_with("FileStreamSinkConnector")),
        "{config:?}"
    );
    ensure!(
        state
            .session_key()
            .is_some_and(|k| k.key.len() == 32 && k.algorithm == "HmacSHA256")
    );
    // The status topic (one partition here) reads into the states the REST API shows, with the
    // worker ids of the group's members.
    use tributary_worker::status_store::{Status, StatusKey, StatusState, StatusView};
    let mut statuses = StatusView::new();
    for (_, key, value) in read_topic(stack, &format!("{group}-status"))? {
        let Some(k) = StatusKey::parse(&key) else {
            panic!("Java wrote a status key we cannot read: {key}");
        };
        let value: Option<Value> = value.map(|v| serde_json::from_slice(&v)).transpose()?;
        let status = match (&k, value) {
            (StatusKey::Topic { .. }, _) | (_, None) => None,
            (_, Some(v)) => {
                Some(Status::from_json(&v).with_context(|| format!("status value of {key}: {v}"))?)
            }
        };
        statuses.read(&k, status);
    }
    let workers_ids: Vec<String> = workers
        .iter()
        .map(|w| w.url.trim_start_matches("http://").to_string())
        .collect();
    for (c, want) in [
        ("sink-0", StatusState::Paused),
        ("sink-1", StatusState::Stopped),
    ] {
        let s = statuses
            .connector(c)
            .with_context(|| format!("no status for {c}"))?;
        ensure!(
            s.state == want && workers_ids.contains(&s.worker_id),
            "{c}: {s:?}"
        );
    }
    for t in 0..2 {
        let s = statuses
            .task("sink-0", t)
            .with_context(|| format!("no status for sink-0 task {t}"))?;
        ensure!(
            s.state == StatusState::Paused && s.generation >= 1,
            "sink-0-{t}: {s:?}"
        );
    }
    // The group's assignments carry the same config offset the snapshot reached.
    let members = wait_until("a settled group", Duration::from_secs(60), || async {
        Ok(describe(stack, &group)?
            .filter(|(_, _, m)| m.len() == 2 && m.iter().all(|m| !m.assignment.is_empty())))
    })
    .await?;
    for m in &members.2 {
        let a = Assignment::decode(&m.assignment)?;
        ensure!(
            a.config_offset <= state.offset(),
            "assignment offset {} > snapshot {}",
            a.config_offset,
            state.offset()
        );
    }
    for w in &mut workers {
        w.process.request_stop();
    }
    Ok(())
}
