//! `tributary-worker standalone`: the worker process around the standalone herder — Kafka
//! reachability, the offsets file, the REST and health listeners, the connectors of the command
//! line, and an orderly stop on SIGTERM/SIGINT.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use rdkafka::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use tributary_connect_api::ConfigValue;

use crate::config::client::{Role, client_settings};
use crate::config::providers::Providers;
use crate::config::worker::WorkerConfig;
use crate::error::{Error, Result};
use crate::herder::standalone::StandaloneHerder;
use crate::metrics::Metrics;
use crate::offset_store::FileOffsetStore;
use crate::rest::{self, Api};
use crate::status::StatusBoard;
use crate::task::{ClientErrors, WorkerContext};

pub(crate) fn string(config: &WorkerConfig, key: &str) -> String {
    config.get(key).map(ToString::to_string).unwrap_or_default()
}

/// The Kafka cluster id, which also proves the worker's client settings work: a wrong password
/// or certificate stops start-up here with the client's reason.
pub(crate) fn kafka_cluster_id(worker_props: &BTreeMap<String, String>) -> Result<String> {
    let settings = client_settings(Role::Admin, worker_props).map_err(Error::Config)?;
    for w in &settings.warnings {
        tracing::warn!("{w}");
    }
    let mut cfg = ClientConfig::new();
    crate::task::apply(&mut cfg, &settings);
    let errors = ClientErrors::default();
    let client: BaseConsumer<ClientErrors> = cfg.create_with_context(errors.clone())?;
    crate::task::check_reachable(client.client(), &errors, Duration::from_secs(30), &|| {
        let _ = client.poll(Duration::ZERO);
    })?;
    client
        .client()
        .fetch_cluster_id(Duration::from_secs(30))
        .ok_or_else(|| Error::Kafka("the cluster did not report its id".into()))
}

/// `host:port` other tools see for this worker, as Java's `RestServer.advertisedUrl`.
pub(crate) fn worker_id(config: &WorkerConfig, listener: &std::net::SocketAddr) -> String {
    let host = string(config, "rest.advertised.host.name");
    let host = if host.is_empty() {
        if listener.ip().is_unspecified() {
            std::fs::read_to_string("/proc/sys/kernel/hostname")
                .map(|h| h.trim().to_string())
                .unwrap_or_else(|_| "localhost".into())
        } else {
            listener.ip().to_string()
        }
    } else {
        host
    };
    let port = match config.get("rest.advertised.port") {
        Some(ConfigValue::Int(p)) if *p > 0 => *p as u16,
        _ => listener.port(),
    };
    format!("{host}:{port}")
}

/// Runs until SIGTERM or SIGINT.
pub async fn run(
    config: WorkerConfig,
    raw_props: BTreeMap<String, String>,
    connector_configs: Vec<(PathBuf, BTreeMap<String, String>)>,
) -> Result<()> {
    let providers =
        Providers::from_worker_config(&raw_props).map_err(|e| Error::Config(e.to_string()))?;
    let worker_props = providers
        .resolve(&raw_props)
        .map_err(|e| Error::Config(format!("worker properties: {e}")))?;
    let offsets_path = string(&config, "offset.storage.file.filename");
    if offsets_path.is_empty() {
        return Err(Error::Config(
            "offset.storage.file.filename must be set in standalone mode (where source offsets are kept)".into(),
        ));
    }
    let listeners = match config.get("listeners") {
        Some(ConfigValue::List(l)) if !l.is_empty() => l.clone(),
        _ => vec!["http://:8083".into()],
    };
    let rest_addr = rest::bind_address(&listeners[0]).map_err(Error::Config)?;
    let health_listener = string(&config, "tributary.health.listener");

    tracing::info!("connecting to Kafka");
    let props = worker_props.clone();
    let cluster_id = tokio::task::spawn_blocking(move || kafka_cluster_id(&props))
        .await
        .map_err(|e| Error::Kafka(e.to_string()))??;
    tracing::info!(kafka_cluster_id = %cluster_id, "Kafka reachable");

    let status = Arc::new(StatusBoard::new(worker_id(&config, &rest_addr)));
    let metrics = Arc::new(Metrics::new(status.clone()));
    let worker = WorkerContext::new(
        &config,
        worker_props.clone(),
        status,
        Arc::new(FileOffsetStore::open(std::path::Path::new(&offsets_path))?),
        metrics.clone(),
    );
    let herder = Arc::new(StandaloneHerder::new(
        worker,
        providers,
        Duration::from_millis(
            config
                .millis("task.shutdown.graceful.timeout.ms")
                .unwrap_or(5_000),
        ),
        Some(cluster_id),
    ));
    let auth = rest::BasicAuth::from_worker_props(&worker_props).map_err(Error::Config)?;
    let api = Api::new(herder.clone(), metrics, auth);
    let tls = crate::rest_tls::acceptor(&listeners[0], &worker_props).map_err(Error::Config)?;
    let rest_task = rest::serve(api.clone(), &listeners[0], &health_listener, tls).await?;

    for (path, mut cfg) in connector_configs {
        let name = cfg
            .remove("name")
            .ok_or_else(|| Error::Config(format!("{}: name is not set", path.display())))?;
        cfg.insert("name".into(), name.clone());
        let h = herder.clone();
        let created = tokio::task::spawn_blocking(move || h.put_connector(&name, cfg, false, None))
            .await
            .map_err(|e| Error::Config(e.to_string()))?;
        if let Err(e) = created {
            herder.stop_all();
            return Err(Error::Config(format!(
                "{}: cannot create the connector: {e}",
                path.display()
            )));
        }
    }
    herder.ready.store(true, Ordering::Release);
    tracing::info!("worker started");

    let h = herder.clone();
    let watcher = tokio::spawn(async move {
        let mut tick = tokio::time::interval(Duration::from_secs(1));
        loop {
            tick.tick().await;
            let h = h.clone();
            let _ = tokio::task::spawn_blocking(move || h.reconfigure_requested()).await;
        }
    });

    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .map_err(|e| Error::Config(format!("cannot watch SIGTERM: {e}")))?;
    tokio::select! {
        _ = term.recv() => tracing::info!("SIGTERM: stopping"),
        _ = tokio::signal::ctrl_c() => tracing::info!("SIGINT: stopping"),
        r = rest_task => tracing::error!(result = ?r.map(|r| r.map_err(|e| e.to_string())), "REST server ended"),
    }
    watcher.abort();
    herder.ready.store(false, Ordering::Release);
    let h = herder.clone();
    let _ = tokio::task::spawn_blocking(move || h.stop_all()).await;
    tracing::info!("worker stopped");
    Ok(())
}
