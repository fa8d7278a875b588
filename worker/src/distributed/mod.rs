//! `tributary-worker distributed`: the worker process of a Connect cluster. It reads the three
//! internal topics, opens the REST and health listeners, joins the group named by `group.id`
//! through the [`coordinator`](crate::coordinator), and hands completed rounds to the
//! [`runner`] thread, which starts and stops this worker's share of the work. SIGTERM or SIGINT
//! stop the work, write its statuses and leave the group, so the others take it over at once.

pub mod runner;
pub mod setup;

use std::collections::BTreeMap;
use std::sync::atomic::AtomicBool;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rdkafka::ClientConfig;
use tributary_connect_api::ConfigValue;
use tributary_connect_protocol::assignor::Snapshot;

use crate::config::client::{Role, client_settings};
use crate::config::providers::Providers;
use crate::config::worker::WorkerConfig;
use crate::config_store::store::ConfigStore;
use crate::coordinator::connection::Security;
use crate::coordinator::driver::{self, DriverConfig};
use crate::coordinator::member::ConnectMember;
use crate::error::{Error, Result};
use crate::herder::catalog::Catalog;
use crate::herder::distributed::{DistributedHerder, Event, Settings, Shared};
use crate::metrics::Metrics;
use crate::offset_store::KafkaOffsetStore;
use crate::rest::{self, Api};
use crate::standalone::{kafka_cluster_id, string, worker_id};
use crate::status::StatusBoard;
use crate::status_store::StatusStore;
use crate::task::WorkerContext;

/// How long reads and writes of the internal topics may take before they count as failed.
const STORE_TIMEOUT: Duration = Duration::from_secs(30);

fn millis(config: &WorkerConfig, key: &str, default: u64) -> Duration {
    Duration::from_millis(config.millis(key).unwrap_or(default))
}

/// The algorithm's default key size in bytes (what Java's `KeyGenerator` gives).
fn default_key_bytes(algorithm: &str) -> usize {
    match algorithm {
        "HmacSHA384" => 48,
        "HmacSHA512" => 64,
        _ => 32,
    }
}

fn settings(
    config: &WorkerConfig,
    listener: &str,
    worker_id: String,
    kafka_cluster_id: Option<String>,
) -> Settings {
    // The advertised scheme: rest.advertised.listener, else the listener's own.
    let scheme = match string(config, "rest.advertised.listener").as_str() {
        "" if listener.trim().starts_with("https://") => "https".to_string(),
        "" => "http".to_string(),
        s => s.to_ascii_lowercase(),
    };
    let key_algorithm = match string(config, "inter.worker.key.generation.algorithm").as_str() {
        "" => "HmacSHA256".to_string(),
        s => s.to_string(),
    };
    let key_bits = match config.get("inter.worker.key.size") {
        Some(ConfigValue::Int(n)) if *n > 0 => Some(*n as usize),
        _ => None,
    };
    let verification = match config.get("inter.worker.verification.algorithms") {
        Some(ConfigValue::List(l)) if !l.is_empty() => l.clone(),
        _ => vec!["HmacSHA256".into()],
    };
    Settings {
        url: format!("{scheme}://{worker_id}/"),
        worker_id,
        signature_algorithm: match string(config, "inter.worker.signature.algorithm").as_str() {
            "" => "HmacSHA256".into(),
            s => s.to_string(),
        },
        verification_algorithms: verification,
        key_size: key_bits.map_or_else(|| default_key_bytes(&key_algorithm), |b| b / 8),
        key_algorithm,
        key_ttl_ms: config
            .millis("inter.worker.key.ttl.ms")
            .map_or(3_600_000, |v| v as i64),
        sync_timeout: millis(config, "worker.sync.timeout.ms", 3_000),
        unsync_backoff: millis(config, "worker.unsync.backoff.ms", 300_000),
        max_delay: millis(config, "scheduled.rebalance.max.delay.ms", 300_000),
        shutdown_timeout: millis(config, "task.shutdown.graceful.timeout.ms", 5_000),
        kafka_cluster_id,
        topic_tracking: (
            !matches!(
                config.get("topic.tracking.enable"),
                Some(ConfigValue::Boolean(false))
            ),
            !matches!(
                config.get("topic.tracking.allow.reset"),
                Some(ConfigValue::Boolean(false))
            ),
        ),
        provenance_headers: matches!(
            config.get("tributary.provenance.headers"),
            Some(ConfigValue::Boolean(true))
        ),
    }
}

/// Runs until SIGTERM or SIGINT, or until the group refuses this worker (wrong credentials).
pub async fn run(config: WorkerConfig, raw_props: BTreeMap<String, String>) -> Result<()> {
    let providers =
        Providers::from_worker_config(&raw_props).map_err(|e| Error::Config(e.to_string()))?;
    let worker_props = providers
        .resolve(&raw_props)
        .map_err(|e| Error::Config(format!("worker properties: {e}")))?;
    let listeners = match config.get("listeners") {
        Some(ConfigValue::List(l)) if !l.is_empty() => l.clone(),
        _ => vec!["http://:8083".into()],
    };
    let rest_addr = rest::bind_address(&listeners[0]).map_err(Error::Config)?;
    let health_listener = string(&config, "tributary.health.listener");
    let [config_spec, offset_spec, status_spec] = setup::topic_specs(&config, &worker_props)?;
    let group = setup::group_settings(&config)?;
    let protocol = setup::protocol(&config)?;
    let max_delay_ms = config
        .millis("scheduled.rebalance.max.delay.ms")
        .unwrap_or(300_000) as i64;

    tracing::info!("connecting to Kafka");
    let props = worker_props.clone();
    let cluster_id = tokio::task::spawn_blocking(move || kafka_cluster_id(&props))
        .await
        .map_err(|e| Error::Kafka(e.to_string()))??;
    tracing::info!(kafka_cluster_id = %cluster_id, group = %group.group_id, "Kafka reachable");

    let client = client_settings(Role::Admin, &worker_props).map_err(Error::Config)?;
    let mut base = ClientConfig::new();
    crate::task::apply(&mut base, &client);
    let group_id = group.group_id.clone();
    let (config_store, status_store, offsets) = tokio::task::spawn_blocking(move || {
        tracing::info!(topic = %config_spec.name, "reading the config topic");
        let c = ConfigStore::start(
            &base,
            &config_spec,
            &format!("{group_id}-configs"),
            STORE_TIMEOUT,
        )?;
        tracing::info!(topic = %offset_spec.name, "reading the offsets topic");
        let o = KafkaOffsetStore::start(
            &base,
            &offset_spec,
            &format!("{group_id}-offsets"),
            STORE_TIMEOUT,
        )?;
        tracing::info!(topic = %status_spec.name, "reading the status topic");
        let s = StatusStore::start(
            &base,
            &status_spec,
            &format!("{group_id}-statuses"),
            STORE_TIMEOUT,
        )?;
        Ok::<_, Error>((c, s, o))
    })
    .await
    .map_err(|e| Error::Kafka(e.to_string()))??;
    let offsets = Arc::new(offsets);

    let worker_id = worker_id(&config, &rest_addr);
    let settings = settings(&config, &listeners[0], worker_id.clone(), Some(cluster_id));
    let url = settings.url.clone();
    let (events_tx, events_rx) = std::sync::mpsc::channel::<Event>();
    let status = {
        let wake = events_tx.clone();
        Arc::new(StatusBoard::new(worker_id.clone()).with_on_change(move || {
            let _ = wake.send(Event::Wake);
        }))
    };
    let metrics = Arc::new(Metrics::new(status.clone()));
    let worker = WorkerContext::new(
        &config,
        worker_props.clone(),
        status,
        offsets.clone(),
        metrics.clone(),
    );
    let member_snapshot = Arc::new(Mutex::new(Snapshot::default()));
    let mut config_store = config_store;
    config_store.publish_to(member_snapshot.clone());
    let shared = Arc::new(Shared {
        settings,
        catalog: Catalog {
            providers,
            worker_props: worker_props.clone(),
            override_policy: worker.override_policy.clone(),
        },
        config: Mutex::new(config_store),
        status: Mutex::new(status_store),
        offsets,
        round: Mutex::new(None),
        ready: AtomicBool::new(false),
        events: Mutex::new(events_tx.clone()),
        heartbeat_ms: std::sync::atomic::AtomicI64::new(crate::herder::distributed::now_ms()),
        membership: Arc::default(),
        held_tasks: Arc::default(),
    });
    let herder = Arc::new(DistributedHerder {
        shared: shared.clone(),
    });
    let auth = rest::BasicAuth::from_worker_props(&worker_props).map_err(Error::Config)?;
    // Workers' own requests to each other carry the credentials too.
    let tls = crate::rest_tls::client_tls(&worker_props).map_err(Error::Config)?;
    let internal_client = rest::client(auth.as_ref(), &tls);
    let mut api = Api::new(herder.clone(), metrics.clone(), auth);
    api.tls = tls;
    let leave = Arc::new(rest::Leave::default());
    api.leave = Some(leave.clone());

    let tls = crate::rest_tls::acceptor(&listeners[0], &worker_props).map_err(Error::Config)?;
    let rest_task = rest::serve(api.clone(), &listeners[0], &health_listener, tls).await?;

    // The group member, driven on the runtime; completed rounds go to the runner thread.
    let (commands_tx, commands_rx) = tokio::sync::mpsc::unbounded_channel();
    let notify = events_tx.clone();
    let mut member = ConnectMember::new(
        url.clone(),
        protocol,
        max_delay_ms,
        member_snapshot.clone(),
        commands_tx.clone(),
    )
    .with_events(move |r| {
        let _ = notify.send(Event::Rebalanced(r));
    })
    .with_membership(shared.membership.clone())
    .with_rebalance_metrics(metrics.rebalances.clone())
    .with_held_tasks(shared.held_tasks.clone());
    let driver_config = DriverConfig {
        bootstrap: DriverConfig::parse_bootstrap(&string(&config, "bootstrap.servers"))?,
        security: Security::from_librdkafka(&client.librdkafka)?,
        client_id: format!("{}-{worker_id}", group.group_id),
        settings: group,
    };
    let mut driver =
        tokio::spawn(async move { driver::run(driver_config, &mut member, commands_rx).await });

    let runner = runner::Runner::new(
        shared.clone(),
        worker,
        events_rx,
        commands_tx,
        tokio::runtime::Handle::current(),
        internal_client,
    );
    // A herder thread that dies takes the worker down (the group then moves its work), rather
    // than leaving a member that heartbeats but runs nothing.
    let (runner_done_tx, runner_done) = tokio::sync::oneshot::channel::<()>();
    let runner_thread = std::thread::Builder::new()
        .name("herder".into())
        .spawn(move || {
            let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| runner.run()));
            let _ = runner_done_tx.send(());
            if outcome.is_err() {
                tracing::error!("the herder thread panicked; stopping the worker");
            }
        })
        .map_err(|e| Error::Config(format!("cannot start the herder thread: {e}")))?;

    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .map_err(|e| Error::Config(format!("cannot watch SIGTERM: {e}")))?;
    let mut outcome = Ok(());
    let mut driver_done = false;
    let mut asked_to_leave = false;
    tokio::select! {
        _ = term.recv() => tracing::info!("SIGTERM: stopping"),
        _ = leave.requested() => {
            asked_to_leave = true;
            tracing::info!("preStop: stopping the work and leaving the group");
        }
        _ = tokio::signal::ctrl_c() => tracing::info!("SIGINT: stopping"),
        r = rest_task => tracing::error!(result = ?r.map(|r| r.map_err(|e| e.to_string())), "REST server ended"),
        _ = runner_done => {
            outcome = Err(Error::Config("the herder thread ended unexpectedly".into()));
        }
        r = &mut driver => {
            driver_done = true;
            outcome = match r {
                Ok(Ok(())) => Ok(()),
                Ok(Err(e)) => Err(e),
                Err(e) => Err(Error::Kafka(format!("group membership ended: {e}"))),
            };
        }
    }
    // The runner stops the work, writes statuses and asks the driver to leave.
    let _ = events_tx.send(Event::Stop);
    let _ = tokio::task::spawn_blocking(move || runner_thread.join()).await;
    if !driver_done {
        match tokio::time::timeout(Duration::from_secs(10), driver).await {
            Ok(Ok(Err(e))) => tracing::warn!(error = %e, "leaving the group failed"),
            Err(_) => tracing::warn!("leaving the group took longer than 10 s"),
            _ => {}
        }
    }
    leave.finish();
    if asked_to_leave {
        // Kubernetes sends SIGTERM once the hook returns; until then, stay (not ready) so
        // the hook's answer arrives.
        tracing::info!("left the group; waiting for SIGTERM");
        tokio::select! {
            _ = term.recv() => {}
            _ = tokio::signal::ctrl_c() => {}
        }
    }
    tracing::info!("worker stopped");
    outcome
}
