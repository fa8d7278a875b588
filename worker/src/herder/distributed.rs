//! The distributed herder's REST side: reads answered from the internal topics (every worker
//! reads all three), writes made by the leader (or sent there as [`HerderError::Elsewhere`]),
//! and requests about running work handed to the worker thread
//! ([`crate::distributed::runner`]) that owns it.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use tributary_connect_api::Config;
use tributary_connect_client::{
    ConnectorInfo, ConnectorOffsets, ConnectorState, ConnectorStateInfo, ConnectorTaskId,
    ConnectorType, State, TaskInfo, TaskState,
};
use tributary_connect_protocol::TaskId as WireTaskId;

use super::catalog::{self, Catalog};
use super::{Herder, HerderError, HerderResult, TargetState, restart};
use crate::config_store::store::ConfigStore;
use crate::coordinator::member::Rebalanced;
use crate::offset_store::OffsetBackingStore;
use crate::status_store::{Status, StatusState, StatusStore};

/// What the worker was configured with, for both sides of the herder.
#[derive(Debug, Clone)]
pub struct Settings {
    /// `host:port`, as statuses name the worker.
    pub worker_id: String,
    /// The advertised REST URL (`http://host:port/`), as the group protocol carries it.
    pub url: String,
    pub signature_algorithm: String,
    pub verification_algorithms: Vec<String>,
    pub key_algorithm: String,
    pub key_size: usize,
    pub key_ttl_ms: i64,
    /// `worker.sync.timeout.ms`.
    pub sync_timeout: Duration,
    /// `worker.unsync.backoff.ms`.
    pub unsync_backoff: Duration,
    /// `scheduled.rebalance.max.delay.ms`.
    pub max_delay: Duration,
    /// `task.shutdown.graceful.timeout.ms`.
    pub shutdown_timeout: Duration,
    pub kafka_cluster_id: Option<String>,
    /// `topic.tracking.enable` and `topic.tracking.allow.reset`.
    pub topic_tracking: (bool, bool),
    /// `tributary.provenance.headers`: stamp source records with worker, task and generation.
    pub provenance_headers: bool,
}

/// Requests the worker thread acts on.
#[derive(Debug)]
pub enum Event {
    Rebalanced(Rebalanced),
    /// Something was written to the config topic here: read it now, not at the next tick.
    Wake,
    /// Restart what this worker runs of the connector (legacy restart, or a KIP-745 request
    /// read from the config topic).
    Restart {
        connector: String,
        include_tasks: bool,
        only_failed: bool,
    },
    RestartTask(String, u32),
    Stop,
}

/// State both sides share.
#[derive(Debug)]
pub struct Shared {
    pub settings: Settings,
    pub catalog: Catalog,
    pub config: Mutex<ConfigStore>,
    pub status: Mutex<StatusStore>,
    pub offsets: Arc<dyn OffsetBackingStore>,
    /// The last completed round (leader, generation, what this worker runs).
    pub round: Mutex<Option<Rebalanced>>,
    /// Joined, read the config topic up to the assignment's offset, and started the work.
    pub ready: AtomicBool,
    pub events: Mutex<std::sync::mpsc::Sender<Event>>,
    /// When the worker thread last finished a step (ms since the epoch); see
    /// [`Herder::stalled`].
    pub heartbeat_ms: std::sync::atomic::AtomicI64,
    /// Until when the group surely counts this worker in its generation; past it (frozen, cut
    /// off, coordinator gone) the worker writes no status under that generation.
    /// With the generation it holds for.
    pub membership: Arc<Mutex<Option<(std::time::Instant, i32)>>>,
    /// What the members held at this leader's last assignment (see [`HeldTasks`]).
    pub held_tasks: Arc<Mutex<crate::coordinator::member::HeldTasks>>,
}

/// How long an offsets change waits for a stopped connector's tasks to be stopped everywhere.
const OFFSETS_WAIT: Duration = Duration::from_secs(60);

/// How long one step of the worker thread may take before `/health` calls the worker unhealthy.
pub const STALL_LIMIT: Duration = Duration::from_secs(10);

pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

impl Shared {
    /// Waits until no member of the group holds a task of stopped connector `name` any more:
    /// a task still stopping (the stop's rebalance revoked it, the member has not rejoined yet)
    /// flushes its offsets on the way out, which would undo a reset or an alteration written
    /// before. Java checks the config topic only; the tasks' last flush then races the change.
    fn await_tasks_gone(&self, name: &str) -> HerderResult<()> {
        let deadline = std::time::Instant::now() + OFFSETS_WAIT;
        loop {
            let generation = self.round().map_or(-1, |r| r.generation);
            let held = self
                .held_tasks
                .lock()
                .map(|h| h.clone())
                .unwrap_or_default();
            // This leader assigned the current round, and nobody reported a task of `name`.
            if held.generation >= generation && !held.connectors.contains(name) {
                return Ok(());
            }
            if std::time::Instant::now() > deadline {
                return Err(HerderError::Conflict(format!(
                    "The tasks of connector {name} are still stopping on some workers; try again once the group has rebalanced"
                )));
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    pub fn config(&self) -> HerderResult<MutexGuard<'_, ConfigStore>> {
        self.config
            .lock()
            .map_err(|_| HerderError::Internal("config store lock poisoned".into()))
    }

    pub fn status(&self) -> HerderResult<MutexGuard<'_, StatusStore>> {
        self.status
            .lock()
            .map_err(|_| HerderError::Internal("status store lock poisoned".into()))
    }

    pub fn round(&self) -> Option<Rebalanced> {
        self.round.lock().ok().and_then(|r| r.clone())
    }

    pub fn send(&self, event: Event) {
        if let Ok(tx) = self.events.lock() {
            let _ = tx.send(event);
        }
    }

    /// Whether this worker leads the group now.
    pub fn is_leader(&self) -> bool {
        self.round().is_some_and(|r| r.leads())
    }

    /// Leads the group, or says where the leader is.
    fn leader_or_elsewhere(&self) -> HerderResult<()> {
        match self.round() {
            Some(r) if r.leads() => Ok(()),
            Some(r) if !r.leader_url.is_empty() => Err(HerderError::Elsewhere {
                url: Some(r.leader_url),
            }),
            _ => Err(HerderError::Elsewhere { url: None }),
        }
    }

    /// The config topic read to its end (so a read sees what any worker wrote before it).
    fn fresh_config(&self) -> HerderResult<MutexGuard<'_, ConfigStore>> {
        let mut c = self.config()?;
        // The changes stay pending for the worker thread.
        c.read_to_end().map_err(internal)?;
        Ok(c)
    }

    /// The status topic read to its end.
    fn fresh_status(&self) -> HerderResult<MutexGuard<'_, StatusStore>> {
        let mut s = self.status()?;
        s.read_to_end().map_err(internal)?;
        Ok(s)
    }

    /// The URL of the worker a status names (`host:port` → `http://host:port/`).
    fn url_of(&self, worker_id: &str) -> String {
        let scheme = self
            .settings
            .url
            .split_once("://")
            .map_or("http", |(s, _)| s);
        format!("{scheme}://{worker_id}/")
    }
}

fn internal(e: crate::error::Error) -> HerderError {
    HerderError::Internal(e.to_string())
}

fn not_found(name: &str) -> HerderError {
    HerderError::NotFound(format!("Connector {name} not found"))
}

pub fn client_state(s: StatusState) -> State {
    match s {
        StatusState::Unassigned => State::Unassigned,
        StatusState::Running => State::Running,
        StatusState::Paused => State::Paused,
        StatusState::Failed => State::Failed,
        StatusState::Restarting => State::Restarting,
        StatusState::Stopped => State::Stopped,
    }
}

/// The distributed herder, as the REST API sees it.
#[derive(Debug, Clone)]
pub struct DistributedHerder {
    pub shared: Arc<Shared>,
}

impl DistributedHerder {
    fn info_from(c: &ConfigStore, name: &str) -> HerderResult<ConnectorInfo> {
        let snap = c.snapshot();
        let config = snap.connector_config(name).ok_or_else(|| not_found(name))?;
        Ok(ConnectorInfo {
            name: name.to_string(),
            config: config.clone(),
            tasks: (0..snap.task_count(name))
                .map(|task| ConnectorTaskId {
                    connector: name.to_string(),
                    task,
                })
                .collect(),
            type_: Catalog::type_of(config),
        })
    }

    fn task_state(id: u32, s: &Status) -> TaskState {
        TaskState {
            id,
            state: client_state(s.state),
            worker_id: s.worker_id.clone(),
            version: s.version.clone(),
            trace: s.trace.clone(),
        }
    }

    fn runs(&self, check: impl Fn(&Rebalanced) -> bool) -> bool {
        self.shared.round().is_some_and(|r| check(&r))
    }

    /// Where a request about work another worker runs goes: the leader forwards to the owner
    /// (from the statuses), everyone else to the leader (Java's `NotAssignedException` and
    /// `NotLeaderException`).
    fn owner_or_leader(&self, owner: Option<String>) -> HerderError {
        if self.shared.is_leader() {
            HerderError::Elsewhere {
                url: owner.map(|w| self.shared.url_of(&w)),
            }
        } else {
            match self.shared.leader_or_elsewhere() {
                Err(e) => e,
                Ok(()) => HerderError::Elsewhere { url: None },
            }
        }
    }

    fn write_connector(
        &self,
        name: &str,
        config: Config,
        allow_update: bool,
        initial: Option<TargetState>,
    ) -> HerderResult<(ConnectorInfo, bool)> {
        let (name, _plugin, config) = self.shared.catalog.check_connector(name, config)?;
        self.shared.leader_or_elsewhere()?;
        let mut c = self.shared.fresh_config()?;
        let exists = c.snapshot().connector_config(&name).is_some();
        if exists && !allow_update {
            return Err(HerderError::AlreadyExists(format!(
                "Connector {name} already exists"
            )));
        }
        c.put_connector(&name, config, if exists { None } else { initial })
            .map_err(internal)?;
        let info = Self::info_from(&c, &name)?;
        drop(c);
        self.shared.send(Event::Wake);
        Ok((info, !exists))
    }
}

impl Herder for DistributedHerder {
    fn catalog(&self) -> &Catalog {
        &self.shared.catalog
    }

    fn kafka_cluster_id(&self) -> Option<String> {
        self.shared.settings.kafka_cluster_id.clone()
    }

    fn ready(&self) -> bool {
        self.shared.ready.load(Ordering::Acquire)
    }

    fn topics(&self, name: &str) -> HerderResult<Vec<String>> {
        // Any name: Java answers an unknown connector with no topics, not 404.
        super::check_topic_tracking(self.shared.settings.topic_tracking.0, None)?;
        Ok(self.shared.fresh_status()?.view().topics_of(name))
    }

    fn reset_topics(&self, name: &str) -> HerderResult<()> {
        self.info(name)?;
        let (enabled, allow_reset) = self.shared.settings.topic_tracking;
        super::check_topic_tracking(enabled, Some(allow_reset))?;
        let mut s = self.shared.fresh_status()?;
        for topic in s.view().topics_of(name) {
            s.delete(&crate::status_store::StatusKey::Topic {
                topic,
                connector: name.to_string(),
            })
            .map_err(internal)?;
        }
        Ok(())
    }

    fn put_cluster_logger(&self, namespace: &str, level: &str) -> HerderResult<()> {
        if crate::logging::tracing_level(level).is_none() {
            return Err(HerderError::NotFound(format!(
                "Invalid log level '{level}'"
            )));
        }
        self.shared
            .config()?
            .put_logger_level(namespace, &level.trim().to_ascii_uppercase())
            .map_err(internal)?;
        self.shared.send(Event::Wake);
        Ok(())
    }

    fn stalled(&self) -> Option<Duration> {
        let last = self.shared.heartbeat_ms.load(Ordering::Acquire);
        let busy = Duration::from_millis(u64::try_from(now_ms() - last).unwrap_or(0));
        (busy > STALL_LIMIT).then_some(busy)
    }

    fn connector_names(&self) -> HerderResult<Vec<String>> {
        Ok(self
            .shared
            .fresh_config()?
            .snapshot()
            .connectors()
            .map(str::to_string)
            .collect())
    }

    fn info(&self, name: &str) -> HerderResult<ConnectorInfo> {
        let c = self.shared.fresh_config()?;
        Self::info_from(&c, name)
    }

    fn config(&self, name: &str) -> HerderResult<Config> {
        self.shared
            .fresh_config()?
            .snapshot()
            .connector_config(name)
            .cloned()
            .ok_or_else(|| not_found(name))
    }

    fn status(&self, name: &str) -> HerderResult<ConnectorStateInfo> {
        let type_ = {
            let c = self.shared.fresh_config()?;
            c.snapshot()
                .connector_config(name)
                .map_or(ConnectorType::Unknown, Catalog::type_of)
        };
        let s = self.shared.fresh_status()?;
        let view = s.view();
        let connector = view.connector(name).ok_or_else(|| {
            HerderError::NotFound(format!("No status found for connector {name}"))
        })?;
        Ok(ConnectorStateInfo {
            name: name.to_string(),
            connector: ConnectorState {
                state: client_state(connector.state),
                worker_id: connector.worker_id.clone(),
                version: connector.version.clone(),
                trace: connector.trace.clone(),
            },
            tasks: view
                .tasks_of(name)
                .map(|(id, t)| Self::task_state(id, t))
                .collect(),
            type_,
        })
    }

    fn task_status(&self, name: &str, task: u32) -> HerderResult<TaskState> {
        let s = self.shared.fresh_status()?;
        s.view()
            .task(name, task)
            .map(|t| Self::task_state(task, t))
            .ok_or_else(|| HerderError::NotFound(format!("No status found for task {name}-{task}")))
    }

    fn tasks(&self, name: &str) -> HerderResult<Vec<TaskInfo>> {
        let c = self.shared.fresh_config()?;
        let snap = c.snapshot();
        if snap.connector_config(name).is_none() {
            return Err(not_found(name));
        }
        Ok((0..snap.task_count(name))
            .filter_map(|t| {
                snap.task_config(name, t).map(|config| TaskInfo {
                    id: ConnectorTaskId {
                        connector: name.to_string(),
                        task: t,
                    },
                    config: config.clone(),
                })
            })
            .collect())
    }

    fn offsets(&self, name: &str) -> HerderResult<ConnectorOffsets> {
        let config = self.config(name)?;
        super::read_offsets(
            &self.shared.catalog,
            self.shared.offsets.as_ref(),
            name,
            &config,
        )
    }

    fn put_connector(
        &self,
        name: &str,
        config: Config,
        allow_update: bool,
        initial: Option<TargetState>,
    ) -> HerderResult<(ConnectorInfo, bool)> {
        self.write_connector(name, config, allow_update, initial)
    }

    fn patch_connector(
        &self,
        name: &str,
        patch: BTreeMap<String, Option<String>>,
    ) -> HerderResult<ConnectorInfo> {
        self.shared.leader_or_elsewhere()?;
        let config = catalog::patched(self.config(name)?, patch);
        self.write_connector(name, config, true, None)
            .map(|(i, _)| i)
    }

    fn delete(&self, name: &str) -> HerderResult<()> {
        self.shared.leader_or_elsewhere()?;
        let mut c = self.shared.fresh_config()?;
        if c.snapshot().connector_config(name).is_none() {
            return Err(not_found(name));
        }
        c.delete_connector(name).map_err(internal)?;
        drop(c);
        self.shared.send(Event::Wake);
        Ok(())
    }

    fn set_target(&self, name: &str, target: TargetState) -> HerderResult<()> {
        if target == TargetState::Stopped {
            // KIP-875: the leader writes an empty task set, then the target state.
            self.shared.leader_or_elsewhere()?;
        }
        let mut c = self.shared.fresh_config()?;
        if c.snapshot().connector_config(name).is_none() {
            return Err(not_found(name));
        }
        if target == TargetState::Stopped {
            c.put_task_configs(name, Vec::new()).map_err(internal)?;
        }
        c.put_target_state(name, target).map_err(internal)?;
        drop(c);
        self.shared.send(Event::Wake);
        Ok(())
    }

    fn restart(
        &self,
        name: &str,
        include_tasks: bool,
        only_failed: bool,
    ) -> HerderResult<ConnectorStateInfo> {
        let info = self.info(name)?;
        if !include_tasks && !only_failed {
            // The legacy restart runs on the connector's owner.
            if self.runs(|r| r.running.connectors.contains(name)) {
                self.shared.send(Event::Restart {
                    connector: name.to_string(),
                    include_tasks,
                    only_failed,
                });
                return self.status(name);
            }
            let owner = self
                .shared
                .fresh_status()?
                .view()
                .connector(name)
                .map(|s| s.worker_id.clone());
            return Err(self.owner_or_leader(owner));
        }
        self.shared.leader_or_elsewhere()?;
        let plan = {
            let s = self.shared.fresh_status()?;
            restart::plan(
                s.view(),
                name,
                info.tasks.len() as u32,
                include_tasks,
                only_failed,
            )
        }
        .ok_or_else(|| HerderError::NotFound(format!("Status for connector {name} not found")))?;
        self.shared
            .config()?
            .put_restart(name, include_tasks, only_failed)
            .map_err(internal)?;
        self.shared.send(Event::Wake);
        let status = self.status(name)?;
        let worker_of = |t: u32| {
            status
                .tasks
                .iter()
                .find(|s| s.id == t)
                .map(|s| s.worker_id.clone())
                .unwrap_or_default()
        };
        Ok(ConnectorStateInfo {
            connector: ConnectorState {
                state: client_state(plan.connector_state),
                trace: (!plan.restart_connector)
                    .then(|| status.connector.trace.clone())
                    .flatten(),
                ..status.connector.clone()
            },
            tasks: plan
                .task_states
                .iter()
                .map(|(t, state)| TaskState {
                    id: *t,
                    state: client_state(*state),
                    worker_id: worker_of(*t),
                    version: status.connector.version.clone(),
                    trace: (*state != StatusState::Restarting)
                        .then(|| {
                            status
                                .tasks
                                .iter()
                                .find(|s| s.id == *t)
                                .and_then(|s| s.trace.clone())
                        })
                        .flatten(),
                })
                .collect(),
            ..status
        })
    }

    fn restart_task(&self, name: &str, task: u32) -> HerderResult<()> {
        let info = self.info(name)?;
        if task as usize >= info.tasks.len() {
            return Err(HerderError::NotFound(format!(
                "Task {name}-{task} not found"
            )));
        }
        let id = WireTaskId::new(name, task as i32);
        if self.runs(|r| r.running.tasks.contains(&id)) {
            self.shared.send(Event::RestartTask(name.to_string(), task));
            return Ok(());
        }
        let owner = self
            .shared
            .fresh_status()?
            .view()
            .task(name, task)
            .map(|s| s.worker_id.clone());
        Err(self.owner_or_leader(owner))
    }

    fn modify_offsets(
        &self,
        name: &str,
        offsets: Option<ConnectorOffsets>,
    ) -> HerderResult<String> {
        self.shared.leader_or_elsewhere()?;
        let (config, target, tasks) = {
            let c = self.shared.fresh_config()?;
            let snap = c.snapshot();
            let config = snap.connector_config(name).ok_or_else(|| not_found(name))?;
            (
                config.clone(),
                snap.target_state(name).unwrap_or(TargetState::Started),
                snap.task_count(name) as usize,
            )
        };
        let type_ = Catalog::type_of(&config);
        let change = super::offsets_change(name, type_, target, tasks, offsets.as_ref())?;
        self.shared.await_tasks_gone(name)?;
        super::write_offsets(
            &self.shared.catalog,
            self.shared.offsets.as_ref(),
            name,
            &config,
            change,
        )
    }

    fn internal_task_configs(
        &self,
        name: &str,
        signature: Option<&str>,
        algorithm: Option<&str>,
        body: &[u8],
    ) -> HerderResult<()> {
        let sessioned = self
            .shared
            .round()
            .is_some_and(|r| r.protocol == "sessioned");
        if sessioned {
            let key = self.shared.config()?.snapshot().session_key().cloned();
            crate::signing::verify(
                signature,
                algorithm,
                &self.shared.settings.verification_algorithms,
                key.as_ref(),
                body,
            )
            .map_err(|r| HerderError::Refused {
                status: r.status,
                message: r.message,
            })?;
        }
        let configs: Vec<Config> = serde_json::from_slice(body).map_err(|e| {
            HerderError::BadRequest(format!("Cannot deserialize the request body: {e}"))
        })?;
        if !self.shared.is_leader() {
            // The sender retries with the leader it learns from the next round.
            return Err(HerderError::Conflict(
                "This worker is not the leader; task configs go to the leader".into(),
            ));
        }
        let mut c = self.shared.fresh_config()?;
        if c.snapshot().connector_config(name).is_none() {
            return Err(not_found(name));
        }
        if c.snapshot().target_state(name) == Some(TargetState::Stopped) && !configs.is_empty() {
            // Sent before the sender learnt of the stop: a stopped connector keeps no tasks.
            tracing::info!(
                connector = name,
                "task configs for a stopped connector ignored"
            );
            return Ok(());
        }
        c.put_task_configs(name, configs).map_err(internal)?;
        drop(c);
        self.shared.send(Event::Wake);
        Ok(())
    }
}
