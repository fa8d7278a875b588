//! `make bench-group`: how fast a Connect group forms and how fast it settles after a member is
//! killed, Tributary group members against Java `connect-distributed` workers on one devstack
//! broker, at the default session timeout (10 s) and at 6 s. Both are observed the same way,
//! through DescribeGroups: "formed" is three members in a Stable group with assignments, counted
//! from the moment the members are started; "settled" is two members Stable with assignments,
//! counted from the kill -9 (Tributary: the member's task and its sockets are dropped, no
//! LeaveGroup). Tributary has no distributed worker process yet, so its members run in this
//! process and its figures cover the membership layer; Java's include JVM start and reading the
//! internal topics. Prints a Markdown table; docs/benchmarks.md keeps a run.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Result, bail};
use nix::sys::signal::Signal;
use rdkafka::consumer::{BaseConsumer, Consumer};
use tokio::sync::mpsc;
use tributary_connect_protocol::ConnectProtocol;
use tributary_connect_protocol::assignor::Snapshot;
use tributary_tests::installed::Installed;
use tributary_tests::stack::java_connect::{java_command, worker_properties};
use tributary_tests::stack::kafka::TEST_JVM_OPTS;
use tributary_tests::stack::ports::free_ports;
use tributary_tests::stack::process::{Managed, spawn};
use tributary_tests::{Devstack, unique_name};
use tributary_worker::coordinator::connection::Security;
use tributary_worker::coordinator::driver::{DriverConfig, run};
use tributary_worker::coordinator::machine::GroupSettings;
use tributary_worker::coordinator::member::ConnectMember;

fn progress(msg: &str) {
    eprintln!("[bench-group] {msg}");
}

/// Members of `group` once it is Stable and every member has metadata and an assignment.
fn stable_members(client: &BaseConsumer, group: &str) -> Option<usize> {
    let list = client
        .fetch_group_list(Some(group), Duration::from_secs(5))
        .ok()?;
    let g = list.groups().iter().find(|g| g.name() == group)?;
    let ready = g.state() == "Stable"
        && g.members()
            .iter()
            .all(|m| m.metadata().is_some_and(|b| !b.is_empty()) && m.assignment().is_some());
    ready.then(|| g.members().len())
}

async fn wait_members(client: &BaseConsumer, group: &str, n: usize, since: Instant) -> Result<f64> {
    let deadline = since + Duration::from_secs(300);
    loop {
        if stable_members(client, group) == Some(n) {
            return Ok(since.elapsed().as_secs_f64());
        }
        if Instant::now() > deadline {
            bail!("group {group} never had {n} stable members");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn tributary(
    stack: &Devstack,
    client: &BaseConsumer,
    session: Duration,
) -> Result<(f64, f64)> {
    let group = unique_name("bench-group");
    let config = DriverConfig {
        bootstrap: DriverConfig::parse_bootstrap(stack.kafka_bootstrap()?)?,
        security: Security::default(),
        client_id: "tributary-bench".into(),
        settings: GroupSettings {
            session_timeout: session,
            heartbeat_interval: Duration::from_secs(3).min(session / 3),
            ..GroupSettings::connect(group.clone())
        },
    };
    let snapshot = Arc::new(Mutex::new(Snapshot {
        offset: 3,
        connectors: BTreeMap::from([("bench".to_string(), 6)]),
    }));
    let started = Instant::now();
    let mut tasks = Vec::new();
    for i in 0..3 {
        let (tx, rx) = mpsc::unbounded_channel();
        let mut member = ConnectMember::new(
            format!("http://member-{i}:8083/"),
            ConnectProtocol::Sessioned,
            300_000,
            snapshot.clone(),
            tx.clone(),
        );
        let config = config.clone();
        tasks.push((
            tx,
            tokio::spawn(async move { run(config, &mut member, rx).await }),
        ));
    }
    let formed = wait_members(client, &group, 3, started).await?;
    let (_, killed) = tasks.remove(1);
    killed.abort();
    let settled = wait_members(client, &group, 2, Instant::now()).await?;
    for (tx, t) in tasks {
        drop(tx);
        let _ = tokio::time::timeout(Duration::from_secs(30), t).await;
    }
    Ok((formed, settled))
}

async fn java(
    stack: &Devstack,
    client: &BaseConsumer,
    session: Duration,
    dir: &Path,
) -> Result<(f64, f64)> {
    let group = unique_name("bench-java-group");
    let installed = Installed::locate();
    let started = Instant::now();
    let mut workers: Vec<Managed> = Vec::new();
    for i in 0..3 {
        let wdir = dir.join(format!("{group}-{i}"));
        std::fs::create_dir_all(&wdir)?;
        let port = free_ports(1)?[0];
        let props = wdir.join("worker.properties");
        std::fs::write(
            &props,
            format!(
                "{}session.timeout.ms={}\nheartbeat.interval.ms={}\n",
                worker_properties(stack.kafka_bootstrap()?, &group, port, 1),
                session.as_millis(),
                (Duration::from_secs(3).min(session / 3)).as_millis()
            ),
        )?;
        let mut cmd = java_command(&installed, TEST_JVM_OPTS, "ConnectDistributed")?;
        cmd.arg(&props);
        workers.push(spawn(
            &format!("{group}-{i}"),
            &mut cmd,
            &wdir,
            Signal::SIGTERM,
        )?);
    }
    let formed = wait_members(client, &group, 3, started).await?;
    workers[1].kill_now();
    let settled = wait_members(client, &group, 2, Instant::now()).await?;
    for w in &mut workers {
        w.request_stop();
    }
    Ok((formed, settled))
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> Result<()> {
    progress("starting the devstack (Kafka only)");
    let stack = Devstack::start(&["--no-kube", "--no-postgres"])?;
    let client: BaseConsumer = stack.kafka_config()?.create()?;
    let dir = tempfile::tempdir()?;
    let mut rows = Vec::new();
    for session in [Duration::from_secs(10), Duration::from_secs(6)] {
        progress(&format!(
            "session.timeout.ms={}: Tributary",
            session.as_millis()
        ));
        let t = tributary(&stack, &client, session).await?;
        progress(&format!("  formed {:.2} s, settled {:.2} s", t.0, t.1));
        progress(&format!("session.timeout.ms={}: Java", session.as_millis()));
        let j = java(&stack, &client, session, dir.path()).await?;
        progress(&format!("  formed {:.2} s, settled {:.2} s", j.0, j.1));
        rows.push((session, t, j));
    }
    println!(
        "\n| session.timeout.ms | members | 3 members form (s) | settled after a kill -9 (s) |"
    );
    println!("|---:|---|---:|---:|");
    for (session, t, j) in rows {
        println!(
            "| {} | Tributary group members (in process) | {:.2} | {:.2} |",
            session.as_millis(),
            t.0,
            t.1
        );
        println!(
            "| {} | Java connect-distributed workers | {:.2} | {:.2} |",
            session.as_millis(),
            j.0,
            j.1
        );
    }
    Ok(())
}
