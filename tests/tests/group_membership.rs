//! Tributary's group client against the devstack broker: three Connect members form a group
//! (PLAINTEXT, and SASL_SSL with SCRAM), share the configured connectors and tasks without
//! overlap, and when one is killed without leaving, the other two take its work over once the
//! session times out and one rebalance has run.

#![allow(clippy::expect_used)]

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Result, ensure};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tributary_connect_protocol::assignor::Snapshot;
use tributary_connect_protocol::{ConnectProtocol, Work};
use tributary_tests::{Devstack, unique_name, wait_until};
use tributary_worker::coordinator::connection::Security;
use tributary_worker::coordinator::driver::{DriverConfig, run};
use tributary_worker::coordinator::machine::{GroupSettings, Input};
use tributary_worker::coordinator::member::{ConnectMember, MemberView};

const SESSION: Duration = Duration::from_secs(6);

struct Running {
    view: Arc<Mutex<MemberView>>,
    commands: mpsc::UnboundedSender<Input>,
    task: JoinHandle<tributary_worker::error::Result<()>>,
}

fn start(
    config: &DriverConfig,
    i: usize,
    snapshot: &Arc<Mutex<Snapshot>>,
    max_delay_ms: i64,
) -> Running {
    let (tx, rx) = mpsc::unbounded_channel();
    let mut member = ConnectMember::new(
        format!("http://member-{i}:8083/"),
        ConnectProtocol::Sessioned,
        max_delay_ms,
        snapshot.clone(),
        tx.clone(),
    );
    let view = member.view();
    let config = config.clone();
    let task = tokio::spawn(async move { run(config, &mut member, rx).await });
    Running {
        view,
        commands: tx,
        task,
    }
}

fn settings(group: &str) -> GroupSettings {
    GroupSettings {
        session_timeout: SESSION,
        rebalance_timeout: Duration::from_secs(30),
        heartbeat_interval: Duration::from_secs(1),
        request_timeout: Duration::from_secs(30),
        ..GroupSettings::connect(group)
    }
}

fn snapshot() -> Arc<Mutex<Snapshot>> {
    Arc::new(Mutex::new(Snapshot {
        offset: 5,
        connectors: BTreeMap::from([("a".to_string(), 3), ("b".to_string(), 3)]),
    }))
}

/// The members' views once they agree on one generation and together run everything
/// configured, each item once.
fn settled(members: &[&Running], configured: &Work) -> Result<Option<(i32, Vec<MemberView>)>> {
    let views: Vec<MemberView> = members
        .iter()
        .map(|m| m.view.lock().map(|v| v.clone()).unwrap_or_default())
        .collect();
    let generation = views[0].generation;
    if views
        .iter()
        .any(|v| v.generation != generation || v.rounds == 0)
    {
        return Ok(None);
    }
    let mut seen = Work::new();
    for v in &views {
        ensure!(
            !v.running.overlaps(&seen),
            "an item runs on two members: {:?}",
            v.running.intersect(&seen)
        );
        seen.add(&v.running);
    }
    if seen != *configured {
        return Ok(None);
    }
    Ok(Some((generation, views)))
}

async fn three_members_settle_and_survive_a_kill(config: DriverConfig) -> Result<()> {
    let snapshot = snapshot();
    let configured = snapshot.lock().map(|s| s.configured()).unwrap_or_default();
    // No scheduled delay, so the killed member's work moves in the rebalance that expels it.
    let members: Vec<Running> = (0..3).map(|i| start(&config, i, &snapshot, 0)).collect();
    let all: Vec<&Running> = members.iter().collect();
    // Settled and balanced (6 tasks over 3 members): members that joined at different moments
    // get there through load-balancing revocations, a few rounds later.
    let (generation, views) = wait_until(
        "three members settled with 2 tasks each",
        Duration::from_secs(90),
        || {
            let r = settled(&all, &configured)
                .map(|s| s.filter(|(_, views)| views.iter().all(|v| v.running.tasks.len() == 2)));
            async move { r }
        },
    )
    .await?;
    ensure!(
        views
            .iter()
            .all(|v| v.protocol == "sessioned" && v.leader_id == views[0].leader_id),
        "{views:?}"
    );
    // Kill one: no LeaveGroup, its connections just drop.
    let mut members = members;
    let killed = members.remove(1);
    killed.task.abort();
    let started = Instant::now();
    let rest: Vec<&Running> = members.iter().collect();
    let (after, _) = wait_until(
        "two members settled after the kill",
        3 * (SESSION + Duration::from_secs(5)),
        || {
            let r = settled(&rest, &configured).map(|s| s.filter(|(g, _)| *g > generation));
            async move { r }
        },
    )
    .await?;
    eprintln!(
        "group settled at generation {after} {:.1} s after the kill (session timeout {:?})",
        started.elapsed().as_secs_f64(),
        SESSION
    );
    // A graceful leave is quick and the drivers end cleanly.
    for m in &members {
        m.commands.send(Input::Leave)?;
    }
    for m in members {
        tokio::time::timeout(Duration::from_secs(30), m.task).await???;
    }
    Ok(())
}

#[tokio::test]
async fn three_members_over_plaintext() -> Result<()> {
    let stack = Devstack::shared()?;
    let config = DriverConfig {
        bootstrap: DriverConfig::parse_bootstrap(stack.kafka_bootstrap()?)?,
        security: Security::default(),
        client_id: "tributary-test".into(),
        settings: settings(&unique_name("tributary-group")),
    };
    three_members_settle_and_survive_a_kill(config).await
}

#[tokio::test]
async fn three_members_over_sasl_ssl_with_scram() -> Result<()> {
    let stack = Devstack::shared()?;
    let settings_map: BTreeMap<String, String> = [
        ("security.protocol", "sasl_ssl"),
        (
            "sasl.mechanism",
            stack.var("TRIBUTARY_KAFKA_SASL_MECHANISM")?,
        ),
        ("sasl.username", stack.var("TRIBUTARY_KAFKA_SASL_USERNAME")?),
        ("sasl.password", stack.kafka_sasl_password()?),
        ("ssl.ca.location", stack.var("TRIBUTARY_KAFKA_CA_CERT")?),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect();
    let config = DriverConfig {
        bootstrap: DriverConfig::parse_bootstrap(stack.var("TRIBUTARY_KAFKA_SASL_BOOTSTRAP")?)?,
        security: Security::from_librdkafka(&settings_map)?,
        client_id: "tributary-test".into(),
        settings: settings(&unique_name("tributary-group-sasl")),
    };
    three_members_settle_and_survive_a_kill(config.clone()).await?;

    // A wrong password: the driver stops with the broker's reason instead of retrying forever.
    let mut wrong = settings_map.clone();
    wrong.insert("sasl.password".into(), "not-the-password".into());
    let bad = DriverConfig {
        security: Security::from_librdkafka(&wrong)?,
        ..config
    };
    let snapshot = snapshot();
    let m = start(&bad, 9, &snapshot, 0);
    let ended = tokio::time::timeout(Duration::from_secs(60), m.task).await??;
    let error = ended.err().map(|e| e.to_string()).unwrap_or_default();
    ensure!(
        error.starts_with("authentication failed") && error.contains("SASL"),
        "a wrong password must stop the client with the broker's reason, got {error:?}"
    );
    ensure!(
        !error.contains("not-the-password"),
        "the password leaked: {error}"
    );
    Ok(())
}

#[tokio::test]
async fn three_members_against_a_kafka_3_9_broker() -> Result<()> {
    // Its own stack: the 3.x compatibility broker (older JoinGroup/SyncGroup/FindCoordinator
    // versions are negotiated through ApiVersions).
    let stack = tokio::task::spawn_blocking(|| {
        Devstack::start(&["--kafka-compat", "--no-kube", "--no-postgres"])
    })
    .await??;
    let version = stack.kafka_version()?.to_string();
    ensure!(
        version.starts_with("3."),
        "expected a 3.x broker, got {version}"
    );
    let config = DriverConfig {
        bootstrap: DriverConfig::parse_bootstrap(stack.kafka_bootstrap()?)?,
        security: Security::default(),
        client_id: "tributary-test".into(),
        settings: settings(&unique_name("tributary-group-3x")),
    };
    three_members_settle_and_survive_a_kill(config).await
}
