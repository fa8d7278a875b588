//! The distributed worker's thread (Java's herder tick thread): it alone starts and stops the
//! connectors and tasks this worker runs. Each tick it reads the config topic, acts on completed
//! rounds (stop revoked work at once; start assigned work only when the config offsets agree,
//! §4.6), on config changes (restart changed connectors, rejoin when the set of connectors or
//! tasks changed), gets new task configs written (by the leader, or signed to the leader),
//! does the leader's duties and writes the statuses of what it runs.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{Receiver, RecvTimeoutError};
use std::time::{Duration, Instant};

use tokio::sync::mpsc::UnboundedSender;
use tributary_connect_api::Config;
use tributary_connect_client::State;
use tributary_connect_protocol::{ConnectProtocol, TaskId as WireTaskId};

use crate::config_store::snapshot::Change;
use crate::connectors::{self, ConnectorInstance, ConnectorPlugin};
use crate::coordinator::machine::Input;
use crate::coordinator::member::Rebalanced;
use crate::herder::catalog::{self, Catalog};
use crate::herder::distributed::{Event, Shared, now_ms};
use crate::herder::reconcile::{self, Step};
use crate::herder::{HerderContext, TargetState, leader, restart};
use crate::status_store::{Status, StatusKey, StatusState};
use crate::task::{self, TaskHandle, TaskId, TaskPlugin, TaskSpec, WorkerContext};

/// How often the thread looks at the config topic without being woken.
const TICK: Duration = Duration::from_millis(500);
/// How often a worker that recorded active topics looks for a reset of them.
const TOPICS_READ_INTERVAL: Duration = Duration::from_secs(1);
/// Java's retry backoff for task configs sent to the leader: 250 ms doubling up to 60 s.
const SEND_BACKOFF_MIN: Duration = Duration::from_millis(250);
const SEND_BACKOFF_MAX: Duration = Duration::from_secs(60);

struct LocalConnector {
    plugin: &'static ConnectorPlugin,
    /// The raw config it was started with.
    config: Config,
    target: TargetState,
    instance: Option<ConnectorInstance>,
    reconfigure: Arc<AtomicBool>,
    /// Task configs the leader has yet to write, and when to try next.
    outbox: Option<Vec<Config>>,
    next_send: Instant,
    backoff: Duration,
}

struct LocalTask {
    handle: TaskHandle,
    /// The raw task config it was started with.
    config: Config,
}

/// The worker thread's state. Built by `distributed::run`, consumed by [`Runner::run`].
pub struct Runner {
    pub shared: Arc<Shared>,
    pub worker: WorkerContext,
    pub events: Receiver<Event>,
    /// To the group driver: rejoin and leave.
    pub commands: UnboundedSender<Input>,
    pub runtime: tokio::runtime::Handle,
    pub http: reqwest::Client,
    round: Option<Rebalanced>,
    synced: bool,
    connectors: BTreeMap<String, LocalConnector>,
    tasks: BTreeMap<(String, u32), LocalTask>,
    written: BTreeMap<StatusKey, (StatusState, Option<String>)>,
    /// Active topics this worker recorded, to notice a reset.
    written_topics: BTreeSet<(String, String)>,
    /// When `record_topics` last read the status topic.
    topics_read: Instant,
    known: BTreeSet<String>,
    cleanup_due: bool,
    /// Statuses of removed tasks that still said RUNNING at the last cleanup (see
    /// `leader::stale_statuses`).
    deferred_statuses: BTreeSet<StatusKey>,
    /// When they were deferred: they are looked at again after the next rebalance or once the
    /// longest task stop (`task.shutdown.graceful.timeout.ms`) has passed, whichever is first.
    deferred_at: Instant,
    rejoin_requested: bool,
    rejoin_at: Option<Instant>,
    sync_retries: u32,
}

impl std::fmt::Debug for Runner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Runner")
            .field("connectors", &self.connectors.keys().collect::<Vec<_>>())
            .field("tasks", &self.tasks.keys().collect::<Vec<_>>())
            .finish_non_exhaustive()
    }
}

fn status_state(s: State) -> StatusState {
    match s {
        State::Unassigned | State::Destroyed => StatusState::Unassigned,
        State::Running => StatusState::Running,
        State::Paused => StatusState::Paused,
        State::Stopped => StatusState::Stopped,
        State::Failed => StatusState::Failed,
        State::Restarting => StatusState::Restarting,
    }
}

impl Runner {
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        shared: Arc<Shared>,
        worker: WorkerContext,
        events: Receiver<Event>,
        commands: UnboundedSender<Input>,
        runtime: tokio::runtime::Handle,
        http: reqwest::Client,
    ) -> Self {
        let known = shared
            .config
            .lock()
            .map(|c| c.snapshot().connectors().map(str::to_string).collect())
            .unwrap_or_default();
        Self {
            shared,
            worker,
            events,
            commands,
            runtime,
            http,
            round: None,
            synced: false,
            connectors: BTreeMap::new(),
            tasks: BTreeMap::new(),
            written: BTreeMap::new(),
            written_topics: BTreeSet::new(),
            topics_read: Instant::now(),
            known,
            cleanup_due: false,
            deferred_statuses: BTreeSet::new(),
            deferred_at: Instant::now(),
            rejoin_requested: false,
            rejoin_at: None,
            sync_retries: reconcile::COOPERATIVE_SYNC_RETRIES,
        }
    }

    /// Runs until [`Event::Stop`] (or every sender is gone), then stops all work and leaves the
    /// group.
    pub fn run(mut self) {
        loop {
            self.shared.heartbeat_ms.store(now_ms(), Ordering::Release);
            let first = self.events.recv_timeout(TICK);
            let mut batch = Vec::new();
            match first {
                Ok(e) => batch.push(e),
                Err(RecvTimeoutError::Timeout) => {}
                Err(RecvTimeoutError::Disconnected) => break,
            }
            while let Ok(e) = self.events.try_recv() {
                batch.push(e);
            }
            // Rounds that completed while this thread was busy: only the latest matters, with
            // every revocation since.
            let mut latest: Option<Rebalanced> = None;
            for e in &mut batch {
                if let Event::Rebalanced(r) = e {
                    let mut r = std::mem::replace(r, Rebalanced::empty());
                    if let Some(prev) = latest.take() {
                        r.revoked.add(&prev.revoked);
                    }
                    latest = Some(r);
                }
            }
            if let Some(r) = latest {
                self.on_rebalance(r);
            }
            let mut stop = false;
            for e in batch {
                match e {
                    Event::Rebalanced(_) => {}
                    Event::Wake => {}
                    Event::Restart {
                        connector,
                        include_tasks,
                        only_failed,
                    } => self.restart_local(&connector, include_tasks, only_failed),
                    Event::RestartTask(c, t) => self.restart_task(&c, t),
                    Event::Stop => stop = true,
                }
            }
            if stop {
                break;
            }
            let started = Instant::now();
            // The round's revocations are applied by now: the tasks may keep moving data.
            if let Some(until) = self.confirmed_until() {
                self.worker.lease.renew(until);
            }
            self.tick();
            if started.elapsed() > Duration::from_secs(2) {
                tracing::warn!(
                    elapsed_ms = started.elapsed().as_millis() as u64,
                    "a herder tick took long; group and REST requests wait meanwhile"
                );
            }
        }
        self.shutdown();
    }

    fn tick(&mut self) {
        let changes = self.read_config();
        for change in changes {
            self.on_change(change);
        }
        if let Some(at) = self.rejoin_at
            && Instant::now() >= at
        {
            self.rejoin_at = None;
            self.rejoin();
        }
        if self.synced {
            self.converge();
        }
        self.reconfigure_requested();
        self.send_outboxes();
        self.leader_duties();
        self.write_statuses();
        self.rejoin_requested = false;
    }

    /// Reads the config topic (up to `until` at least, when given; the store hands the member
    /// the new snapshot). Returns the offset reached.
    fn sync_config(&self, until: Option<i64>) -> crate::error::Result<i64> {
        let mut c = self
            .shared
            .config
            .lock()
            .map_err(|_| crate::error::Error::Config("config store lock poisoned".into()))?;
        let read = match until {
            Some(offset) => c.read_until(offset, self.shared.settings.sync_timeout),
            None => c.read_to_end().map(drop),
        };
        read.map(|()| c.snapshot().offset())
    }

    /// Reads the config topic and takes what changed.
    fn read_config(&mut self) -> Vec<Change> {
        if let Err(e) = self.sync_config(None) {
            tracing::warn!(error = %e, "reading the config topic failed; retrying next tick");
        }
        self.shared
            .config
            .lock()
            .map(|mut c| c.take_changes())
            .unwrap_or_default()
    }

    fn rejoin(&mut self) {
        if !self.rejoin_requested {
            self.rejoin_requested = true;
            let _ = self.commands.send(Input::Rejoin);
        }
    }

    fn is_leader(&self) -> bool {
        self.round.as_ref().is_some_and(Rebalanced::leads)
    }

    // ---- rounds -------------------------------------------------------------------------

    fn on_rebalance(&mut self, r: Rebalanced) {
        tracing::info!(
            generation = r.generation,
            leader = %r.leader_url,
            failed = r.failed,
            config_offset = r.config_offset,
            connectors = r.running.connectors.len(),
            tasks = r.running.tasks.len(),
            revoked = r.revoked.len(),
            "rebalance completed"
        );
        // The new generation first: what the stops below write (UNASSIGNED) is written under
        // it, as Java's onShutdown does with the generation it has by then.
        self.round = Some(r.clone());
        // Revoked work stops at once, before anything else; what is not in the assignment
        // (eager rounds) too.
        let stale_connectors: Vec<String> = self
            .connectors
            .keys()
            .filter(|c| !r.running.connectors.contains(*c))
            .cloned()
            .collect();
        let stale_tasks: Vec<(String, u32)> = self
            .tasks
            .keys()
            .filter(|(c, t)| {
                !r.running
                    .tasks
                    .contains(&WireTaskId::new(c.as_str(), *t as i32))
            })
            .cloned()
            .collect();
        self.stop_tasks(stale_tasks, true);
        for c in stale_connectors {
            self.stop_connector(&c, true);
        }
        if let Ok(mut shared) = self.shared.round.lock() {
            *shared = Some(r.clone());
        }
        if !r.revoked.is_empty() {
            self.rejoin();
        }
        let local = self
            .shared
            .config
            .lock()
            .map(|c| c.snapshot().offset())
            .unwrap_or(-1);
        let step = reconcile::after_rebalance(r.failed, r.config_offset, local, self.is_leader());
        self.synced = false;
        match step {
            Step::Start => self.synced = true,
            Step::CatchUp { offset } => match self.sync_config(Some(offset)) {
                Ok(now) if now == offset => self.synced = true,
                Ok(_) => self.rejoin(),
                Err(e) => {
                    let backoff = reconcile::unsync_backoff(
                        ConnectProtocol::from_name(&r.protocol).unwrap_or(ConnectProtocol::Eager),
                        self.shared.settings.unsync_backoff,
                        self.shared.settings.max_delay,
                        self.sync_retries,
                    );
                    self.sync_retries = self.sync_retries.saturating_sub(1);
                    tracing::warn!(error = %e, ?backoff, "cannot catch up with the leader's config offset");
                    match backoff {
                        Some(b) => self.rejoin_at = Some(Instant::now() + b),
                        None => {
                            self.stop_everything(true);
                            self.rejoin();
                        }
                    }
                }
            },
            Step::Rejoin { read_first } => {
                if read_first && let Err(e) = self.sync_config(None) {
                    tracing::warn!(error = %e, "reading the config topic failed");
                }
                self.rejoin();
            }
            Step::RejoinAhead => self.rejoin(),
        }
        if self.synced {
            self.sync_retries = reconcile::COOPERATIVE_SYNC_RETRIES;
            self.cleanup_due = self.is_leader();
            self.converge();
            if !self.shared.ready.swap(true, Ordering::AcqRel) {
                tracing::info!("worker joined the group and started its work");
            }
        }
    }

    // ---- config changes -----------------------------------------------------------------

    fn on_change(&mut self, change: Change) {
        match change {
            Change::Connector(c) => {
                let config = self
                    .shared
                    .config
                    .lock()
                    .ok()
                    .and_then(|s| s.snapshot().connector_config(&c).cloned());
                let known = self.known.contains(&c);
                match config {
                    None => {
                        tracing::info!(connector = %c, "connector deleted");
                        self.known.remove(&c);
                        let tasks: Vec<_> = self
                            .tasks
                            .keys()
                            .filter(|(tc, _)| *tc == c)
                            .cloned()
                            .collect();
                        // What this worker ran of it is DESTROYED: its statuses go (Java's
                        // onDeletion), so no worker reports a deleted connector.
                        let mut gone: Vec<StatusKey> = tasks
                            .iter()
                            .map(|(tc, t)| StatusKey::Task(tc.clone(), *t))
                            .collect();
                        if self.connectors.contains_key(&c) {
                            gone.push(StatusKey::Connector(c.clone()));
                        }
                        self.stop_tasks(tasks, false);
                        self.stop_connector(&c, false);
                        self.worker.status.remove(&c);
                        if let Ok(mut s) = self.shared.status.lock() {
                            for key in gone {
                                if let Err(e) = s.delete(&key) {
                                    tracing::warn!(key = %key.render(), error = %e, "cannot remove a status");
                                }
                            }
                        }
                        if known {
                            self.rejoin();
                        }
                    }
                    Some(config) => {
                        if !known {
                            tracing::info!(connector = %c, "connector created");
                            self.known.insert(c.clone());
                            self.rejoin();
                        }
                        if self.connectors.get(&c).is_some_and(|l| l.config != config) {
                            tracing::info!(connector = %c, "connector config updated; restarting it");
                            self.stop_connector(&c, false);
                            if self.synced {
                                self.converge();
                            }
                        }
                    }
                }
            }
            Change::TargetState(c) => {
                let target = self
                    .shared
                    .config
                    .lock()
                    .ok()
                    .and_then(|s| s.snapshot().target_state(&c));
                if let Some(target) = target {
                    self.apply_target(&c, target);
                }
            }
            Change::Tasks(c) => {
                tracing::info!(connector = %c, "task configs committed");
                self.rejoin();
            }
            Change::Restart {
                connector,
                include_tasks,
                only_failed,
            } => self.restart_local(&connector, include_tasks, only_failed),
            Change::SessionKey => tracing::debug!("new session key read"),
            Change::LoggerLevel { namespace, level } => {
                if let Err(e) = crate::logging::set(&namespace, level.as_deref(), now_ms()) {
                    tracing::warn!(namespace, error = %e, "cannot apply a cluster logger level");
                }
            }
        }
    }

    fn apply_target(&mut self, c: &str, target: TargetState) {
        let paused = target == TargetState::Paused;
        for ((_, _), t) in self.tasks.iter().filter(|((tc, _), _)| tc == c) {
            t.handle.control.set_paused(paused);
        }
        let Some(local) = self.connectors.get_mut(c) else {
            return;
        };
        let before = local.target;
        local.target = target;
        match (before, target) {
            (a, b) if a == b => {}
            (TargetState::Stopped, _) | (_, TargetState::Stopped) => {
                // Entering or leaving STOPPED restarts the connector in its new state; its tasks
                // follow the task configs the leader writes (none when stopped).
                self.stop_connector(c, false);
                if self.synced {
                    self.converge();
                }
            }
            (_, _) => {
                let state = if paused {
                    State::Paused
                } else {
                    State::Running
                };
                self.worker
                    .status
                    .set_connector(c, local.plugin.type_, state, None);
            }
        }
    }

    // ---- converging on the assignment -----------------------------------------------------

    /// Starts what the round assigned and the config has, stops what it no longer has, and
    /// restarts tasks whose committed config changed.
    fn converge(&mut self) {
        let Some(round) = self.round.clone() else {
            return;
        };
        struct Want {
            connectors: Vec<(String, Config, TargetState)>,
            tasks: BTreeMap<(String, u32), (Config, Config, TargetState)>,
        }
        let want = {
            let Ok(c) = self.shared.config.lock() else {
                return;
            };
            let snap = c.snapshot();
            Want {
                connectors: round
                    .running
                    .connectors
                    .iter()
                    .filter_map(|name| {
                        Some((
                            name.clone(),
                            snap.connector_config(name)?.clone(),
                            snap.target_state(name)?,
                        ))
                    })
                    .collect(),
                tasks: round
                    .running
                    .tasks
                    .iter()
                    .filter_map(|id| {
                        let t = u32::try_from(id.task).ok()?;
                        let target = snap.target_state(&id.connector)?;
                        (target != TargetState::Stopped).then_some(())?;
                        Some((
                            (id.connector.clone(), t),
                            (
                                snap.connector_config(&id.connector)?.clone(),
                                snap.task_config(&id.connector, t)?.clone(),
                                target,
                            ),
                        ))
                    })
                    .collect(),
            }
        };
        let gone: Vec<String> = self
            .connectors
            .keys()
            .filter(|c| !want.connectors.iter().any(|(w, _, _)| w == *c))
            .cloned()
            .collect();
        for c in gone {
            self.stop_connector(&c, true);
        }
        let stale: Vec<(String, u32)> = self
            .tasks
            .iter()
            .filter(|(k, t)| {
                want.tasks
                    .get(*k)
                    .is_none_or(|(_, cfg, _)| *cfg != t.config)
            })
            .map(|(k, _)| k.clone())
            .collect();
        self.stop_tasks(stale, true);
        for (name, config, target) in want.connectors {
            if !self.connectors.contains_key(&name) {
                self.start_connector(&name, config, target);
            }
        }
        for ((c, t), (connector_config, task_config, target)) in want.tasks {
            if !self.tasks.contains_key(&(c.clone(), t)) {
                self.start_task(&c, t, &connector_config, task_config, target);
            }
        }
    }

    fn stop_everything(&mut self, unassigned: bool) {
        let tasks: Vec<_> = self.tasks.keys().cloned().collect();
        self.stop_tasks(tasks, unassigned);
        let connectors: Vec<_> = self.connectors.keys().cloned().collect();
        for c in connectors {
            self.stop_connector(&c, unassigned);
        }
    }

    // ---- connectors ---------------------------------------------------------------------

    fn start_connector(&mut self, name: &str, config: Config, target: TargetState) {
        let Some(plugin) = config
            .get("connector.class")
            .and_then(|c| connectors::find(c))
        else {
            let class = config.get("connector.class").cloned().unwrap_or_default();
            self.worker.metrics.connector_startups.record(false);
            self.worker.status.set_connector(
                name,
                Catalog::type_of(&config),
                State::Failed,
                Some(connectors::not_found_message(&class)),
            );
            return;
        };
        let type_ = plugin.type_;
        let mut local = LocalConnector {
            plugin,
            config,
            target,
            instance: None,
            reconfigure: Arc::new(AtomicBool::new(false)),
            outbox: None,
            next_send: Instant::now(),
            backoff: SEND_BACKOFF_MIN,
        };
        if target == TargetState::Stopped {
            self.worker
                .status
                .set_connector(name, type_, State::Stopped, None);
            self.connectors.insert(name.to_string(), local);
            return;
        }
        let started = self
            .shared
            .catalog
            .providers
            .resolve(&local.config)
            .map_err(|e| e.to_string())
            .and_then(|resolved| {
                let mut instance = (plugin.create)();
                let context = Arc::new(HerderContext {
                    name: name.to_string(),
                    reconfigure: local.reconfigure.clone(),
                    status: self.worker.status.clone(),
                    type_,
                });
                instance
                    .connector_mut()
                    .start(&resolved, context)
                    .map_err(|e| e.to_string())?;
                Ok(instance)
            });
        match started {
            Ok(instance) => {
                self.worker.metrics.connector_startups.record(true);
                self.worker
                    .status
                    .set_version(name, instance.connector().version());
                if let Some(class) = local.config.get("connector.class") {
                    self.worker.status.set_class(name, class);
                }
                local.instance = Some(instance);
                let state = if target == TargetState::Paused {
                    State::Paused
                } else {
                    State::Running
                };
                self.worker.status.set_connector(name, type_, state, None);
                tracing::info!(connector = name, "connector started");
                self.derive_task_configs(name, &mut local);
            }
            Err(e) => {
                self.worker.metrics.connector_startups.record(false);
                tracing::error!(connector = name, error = %e, "connector failed to start");
                self.worker
                    .status
                    .set_connector(name, type_, State::Failed, Some(e));
            }
        }
        self.connectors.insert(name.to_string(), local);
    }

    /// Asks the connector for task configs; when they differ from the committed ones, queues
    /// them for the leader.
    fn derive_task_configs(&self, name: &str, local: &mut LocalConnector) {
        let Some(instance) = local.instance.as_ref() else {
            return;
        };
        let type_ = local.plugin.type_;
        let configs = match instance
            .connector()
            .task_configs(catalog::max_tasks(&local.config))
        {
            Ok(c) => c,
            Err(e) => {
                self.worker.status.set_connector(
                    name,
                    type_,
                    State::Failed,
                    Some(format!("taskConfigs failed: {e}")),
                );
                return;
            }
        };
        if let Err(trace) = catalog::check_task_count(name, &local.config, configs.len()) {
            self.worker
                .status
                .set_connector(name, type_, State::Failed, Some(trace));
            return;
        }
        let resolved = self
            .shared
            .catalog
            .providers
            .resolve(&local.config)
            .unwrap_or_else(|_| local.config.clone());
        let configs = catalog::stored_task_configs(local.plugin, &local.config, &resolved, configs);
        if !self.committed_equal(name, &configs) {
            local.outbox = Some(configs);
            local.next_send = Instant::now();
            local.backoff = SEND_BACKOFF_MIN;
        }
    }

    fn committed_equal(&self, name: &str, configs: &[Config]) -> bool {
        let Ok(c) = self.shared.config.lock() else {
            return false;
        };
        let snap = c.snapshot();
        !snap.is_inconsistent(name)
            && snap.task_count(name) as usize == configs.len()
            && configs
                .iter()
                .enumerate()
                .all(|(i, cfg)| snap.task_config(name, i as u32) == Some(cfg))
    }

    fn stop_connector(&mut self, name: &str, unassigned: bool) {
        let Some(mut local) = self.connectors.remove(name) else {
            return;
        };
        if let Some(mut i) = local.instance.take()
            && let Err(e) = i.connector_mut().stop()
        {
            tracing::warn!(connector = name, error = %e, "connector stop failed");
        }
        tracing::info!(connector = name, "connector stopped");
        self.worker.status.clear_connector(name);
        let key = StatusKey::Connector(name.to_string());
        self.written.remove(&key);
        if unassigned {
            self.put_status(&key, StatusState::Unassigned, None);
        }
    }

    fn reconfigure_requested(&mut self) {
        let names: Vec<String> = self
            .connectors
            .iter()
            .filter(|(_, l)| l.reconfigure.swap(false, Ordering::AcqRel))
            .map(|(n, _)| n.clone())
            .collect();
        for name in names {
            if let Some(mut local) = self.connectors.remove(&name) {
                tracing::info!(connector = %name, "task reconfiguration requested");
                self.derive_task_configs(&name, &mut local);
                self.connectors.insert(name, local);
            }
        }
    }

    /// Gets queued task configs written: directly when leading, else signed to the leader's
    /// `POST /connectors/{c}/tasks`, retrying with backoff.
    fn send_outboxes(&mut self) {
        let now = Instant::now();
        let due: Vec<String> = self
            .connectors
            .iter()
            .filter(|(_, l)| l.outbox.is_some() && l.next_send <= now)
            .map(|(n, _)| n.clone())
            .collect();
        for name in due {
            let Some(configs) = self.connectors.get(&name).and_then(|l| l.outbox.clone()) else {
                continue;
            };
            let stopped = self
                .shared
                .config
                .lock()
                .map(|c| c.snapshot().target_state(&name) == Some(TargetState::Stopped))
                .unwrap_or(false);
            let result = if stopped || self.committed_equal(&name, &configs) {
                Ok(())
            } else if self.is_leader() {
                self.shared
                    .config
                    .lock()
                    .map_err(|_| "config store lock poisoned".to_string())
                    .and_then(|mut c| {
                        c.put_task_configs(&name, configs)
                            .map_err(|e| e.to_string())
                    })
            } else {
                self.send_to_leader(&name, &configs)
            };
            let Some(local) = self.connectors.get_mut(&name) else {
                continue;
            };
            match result {
                Ok(()) => {
                    tracing::info!(connector = %name, "task configs written");
                    local.outbox = None;
                }
                Err(e) => {
                    tracing::warn!(connector = %name, error = %e, retry_in_ms = local.backoff.as_millis() as u64, "task configs not written yet");
                    local.next_send = now + local.backoff;
                    local.backoff = (local.backoff * 2).min(SEND_BACKOFF_MAX);
                }
            }
        }
    }

    fn send_to_leader(&self, name: &str, configs: &[Config]) -> Result<(), String> {
        let round = self.round.as_ref().ok_or("no group round yet")?;
        if round.leader_url.is_empty() {
            return Err("no known leader".into());
        }
        let body = serde_json::to_vec(configs).map_err(|e| e.to_string())?;
        let url = format!(
            "{}/connectors/{}/tasks",
            round.leader_url.trim_end_matches('/'),
            name
        );
        let mut request = self
            .http
            .post(&url)
            .header("Content-Type", "application/json");
        if round.protocol == "sessioned" {
            let key = self
                .shared
                .config
                .lock()
                .ok()
                .and_then(|c| c.snapshot().session_key().cloned())
                .ok_or("no session key read yet")?;
            let headers =
                crate::signing::sign(&key, &self.shared.settings.signature_algorithm, &body)
                    .ok_or("cannot sign with the configured algorithm")?;
            for (k, v) in headers {
                request = request.header(k, v);
            }
        }
        // The request future needs the runtime's context from its creation on.
        let response = self
            .runtime
            .block_on(async move { request.body(body).send().await })
            .map_err(|e| format!("{url}: {e}"))?;
        if response.status().is_success() {
            Ok(())
        } else {
            Err(format!("{url}: HTTP {}", response.status()))
        }
    }

    // ---- tasks --------------------------------------------------------------------------

    fn start_task(
        &mut self,
        c: &str,
        t: u32,
        connector_config: &Config,
        task_config: Config,
        target: TargetState,
    ) {
        let fail = |trace: String| {
            self.worker.metrics.task_startups.record(false);
            self.worker
                .status
                .set_task(c, t, State::Failed, Some(trace));
        };
        let Some(plugin) = connector_config
            .get("connector.class")
            .and_then(|class| connectors::find(class))
        else {
            fail("the connector's class is not installed on this worker".into());
            return;
        };
        let providers = &self.shared.catalog.providers;
        let (resolved_connector, resolved_task) = match (
            providers.resolve(connector_config),
            providers.resolve(&task_config),
        ) {
            (Ok(a), Ok(b)) => (a, b),
            (Err(e), _) | (_, Err(e)) => {
                fail(e.to_string());
                return;
            }
        };
        let instance = (plugin.create)();
        self.worker
            .status
            .set_version(c, instance.connector().version());
        let task_plugin = match instance {
            ConnectorInstance::Source(s) => TaskPlugin::Source(s.create_task()),
            ConnectorInstance::Sink(s) => TaskPlugin::Sink(s.create_task()),
        };
        self.worker.status.set_task(c, t, State::Unassigned, None);
        let spec = TaskSpec {
            id: TaskId {
                connector: c.to_string(),
                task: t,
            },
            connector_config: resolved_connector,
            task_config: resolved_task,
            provenance: if self.shared.settings.provenance_headers {
                let generation = self.round.as_ref().map_or(-1, |r| r.generation);
                vec![
                    (
                        "tributary.worker".into(),
                        self.shared.settings.worker_id.clone().into_bytes(),
                    ),
                    ("tributary.task".into(), format!("{c}-{t}").into_bytes()),
                    (
                        "tributary.generation".into(),
                        generation.to_string().into_bytes(),
                    ),
                ]
            } else {
                Vec::new()
            },
        };
        match task::spawn(
            task_plugin,
            spec,
            self.worker.clone(),
            target == TargetState::Paused,
        ) {
            Ok(handle) => {
                self.worker.metrics.task_startups.record(true);
                tracing::info!(connector = c, task = t, "task started");
                self.tasks.insert(
                    (c.to_string(), t),
                    LocalTask {
                        handle,
                        config: task_config,
                    },
                );
            }
            Err(e) => fail(e.to_string()),
        }
    }

    /// Stops tasks together (all asked first, then each awaited); `unassigned` writes their
    /// UNASSIGNED status (not for deleted connectors, whose statuses the leader removes).
    fn stop_tasks(&mut self, ids: Vec<(String, u32)>, unassigned: bool) {
        let stopping: Vec<((String, u32), LocalTask)> = ids
            .into_iter()
            .filter_map(|k| self.tasks.remove(&k).map(|t| (k, t)))
            .collect();
        for (_, t) in &stopping {
            t.handle.control.request_stop();
        }
        for ((c, t), task) in stopping {
            task.handle.stop(self.shared.settings.shutdown_timeout);
            self.worker.status.remove_task(&c, t);
            let key = StatusKey::Task(c, t);
            self.written.remove(&key);
            if unassigned {
                self.put_status(&key, StatusState::Unassigned, None);
            }
        }
    }

    fn restart_task(&mut self, c: &str, t: u32) {
        let key = (c.to_string(), t);
        let Some(config) = self.tasks.get(&key).map(|l| l.config.clone()) else {
            return;
        };
        self.stop_tasks(vec![key], false);
        self.worker.status.set_task(c, t, State::Restarting, None);
        let (connector_config, target) = {
            let Ok(s) = self.shared.config.lock() else {
                return;
            };
            let snap = s.snapshot();
            match (snap.connector_config(c), snap.target_state(c)) {
                (Some(cc), Some(target)) => (cc.clone(), target),
                _ => return,
            }
        };
        self.start_task(c, t, &connector_config, config, target);
    }

    /// A restart of what this worker runs of `c`, per the KIP-745 plan from the statuses.
    fn restart_local(&mut self, c: &str, include_tasks: bool, only_failed: bool) {
        let tasks = self
            .shared
            .config
            .lock()
            .map(|s| s.snapshot().task_count(c))
            .unwrap_or(0);
        let plan = self.shared.status.lock().ok().and_then(|mut s| {
            let _ = s.read_to_end();
            restart::plan(s.view(), c, tasks, include_tasks, only_failed)
        });
        let Some(plan) = plan else {
            return;
        };
        if plan.restart_connector && self.connectors.contains_key(c) {
            tracing::info!(connector = c, "restarting the connector");
            let (config, target) = match self.connectors.get(c) {
                Some(l) => (l.config.clone(), l.target),
                None => return,
            };
            self.stop_connector(c, false);
            if let Some(type_) =
                connectors::find(config.get("connector.class").map_or("", |s| s)).map(|p| p.type_)
            {
                self.worker
                    .status
                    .set_connector(c, type_, State::Restarting, None);
            }
            self.start_connector(c, config, target);
        }
        for t in plan.restart_tasks {
            if self.tasks.contains_key(&(c.to_string(), t)) {
                tracing::info!(connector = c, task = t, "restarting the task");
                self.restart_task(c, t);
            }
        }
    }

    // ---- leader duties and statuses ---------------------------------------------------------

    fn leader_duties(&mut self) {
        if !self.is_leader() || !self.synced {
            return;
        }
        let sessioned = self
            .round
            .as_ref()
            .is_some_and(|r| r.protocol == "sessioned");
        if sessioned {
            let settings = &self.shared.settings;
            if let Ok(mut c) = self.shared.config.lock()
                && leader::needs_new_key(
                    c.snapshot().session_key(),
                    now_ms(),
                    settings.key_ttl_ms,
                    &settings.key_algorithm,
                    settings.key_size,
                )
            {
                match leader::new_key(&settings.key_algorithm, settings.key_size, now_ms())
                    .and_then(|k| c.put_session_key(k))
                {
                    Ok(()) => tracing::info!("wrote a new session key"),
                    Err(e) => tracing::warn!(error = %e, "cannot write a new session key"),
                }
            }
        }
        let deferred_due = !self.deferred_statuses.is_empty()
            && self.deferred_at.elapsed() > self.shared.settings.shutdown_timeout + TICK;
        if self.cleanup_due || deferred_due {
            self.cleanup_due = false;
            let Ok(c) = self.shared.config.lock() else {
                return;
            };
            let Ok(mut s) = self.shared.status.lock() else {
                return;
            };
            let _ = s.read_to_end();
            let keys = s.view().keys();
            let (stale, deferred) =
                leader::stale_statuses(s.view(), c.snapshot(), keys, &self.deferred_statuses);
            if !deferred.is_empty() && deferred != self.deferred_statuses {
                self.deferred_at = Instant::now();
            }
            self.deferred_statuses = deferred;
            for key in stale {
                tracing::info!(key = %key.render(), "removing the status of a deleted connector or task");
                if let Err(e) = s.delete(&key) {
                    tracing::warn!(error = %e, "cannot remove a stale status");
                }
            }
        }
    }

    /// Until when the group surely counts this worker in the generation this herder has
    /// applied; `None` when not sure (not confirmed lately, or a newer round not applied yet).
    fn confirmed_until(&self) -> Option<Instant> {
        let generation = self.round.as_ref()?.generation;
        let (until, confirmed) = self.shared.membership.lock().ok().and_then(|m| *m)?;
        (confirmed == generation && Instant::now() < until).then_some(until)
    }

    fn put_status(&mut self, key: &StatusKey, state: StatusState, trace: Option<String>) {
        // A worker that was frozen or cut off past its session may still think it is in the
        // generation the group has left: it writes nothing until a round confirms it again
        // (the state stays unwritten, so the next pass after the rejoin writes it).
        if self.confirmed_until().is_none() {
            tracing::debug!(key = %key.render(), ?state, "membership not confirmed; the status waits for the next round");
            return;
        }
        let generation = self.round.as_ref().map_or(-1, |r| r.generation);
        let connector = match key {
            StatusKey::Connector(c) | StatusKey::Task(c, _) => c.as_str(),
            StatusKey::Topic { connector, .. } => connector.as_str(),
        };
        let status = Status {
            state,
            trace: trace.clone(),
            worker_id: self.shared.settings.worker_id.clone(),
            generation,
            version: self.worker.status.version(connector),
        };
        let Ok(mut s) = self.shared.status.lock() else {
            return;
        };
        match s.put(key, &status) {
            Ok(_) => {
                self.written.insert(key.clone(), (state, trace));
            }
            Err(e) => tracing::warn!(key = %key.render(), error = %e, "cannot write a status"),
        }
    }

    /// Writes the states of this worker's connectors and tasks that changed since last written.
    fn write_statuses(&mut self) {
        let mut due = Vec::new();
        for name in self.connectors.keys() {
            if let Some(st) = self.worker.status.connector(name) {
                due.push((
                    StatusKey::Connector(name.clone()),
                    status_state(st.state),
                    st.trace,
                ));
            }
        }
        for (c, t) in self.tasks.keys() {
            if let Some(st) = self.worker.status.task(c, *t) {
                due.push((
                    StatusKey::Task(c.clone(), *t),
                    status_state(st.state),
                    st.trace,
                ));
            }
        }
        for (key, state, trace) in due {
            if self.written.get(&key) != Some(&(state, trace.clone())) {
                self.put_status(&key, state, trace);
            }
        }
        self.record_topics();
    }

    /// Records the topics the tasks here started using (KIP-558) that the status topic lacks,
    /// and notices resets: a topic this worker recorded that the status topic no longer has
    /// (tombstones from any worker). Reading the status topic for that is throttled, since
    /// every status change wakes this thread.
    fn record_topics(&mut self) {
        let connectors: BTreeSet<String> = self.tasks.keys().map(|(c, _)| c.clone()).collect();
        if connectors.is_empty() {
            return;
        }
        let Ok(mut s) = self.shared.status.lock() else {
            return;
        };
        if !self.written_topics.is_empty() && self.topics_read.elapsed() >= TOPICS_READ_INTERVAL {
            self.topics_read = Instant::now();
            if let Err(e) = s.read_to_end() {
                tracing::debug!(error = %e, "reading the status topic failed");
            }
        }
        for c in connectors {
            let known = s.view().topics_of(&c);
            let reset = self
                .written_topics
                .iter()
                .any(|(wc, t)| *wc == c && !known.contains(t));
            if reset {
                self.worker.status.reset_topics(&c);
                self.written_topics.retain(|(wc, _)| *wc != c);
                continue;
            }
            for (topic, task) in self.worker.status.topics(&c) {
                if known.contains(&topic) {
                    continue;
                }
                match s.put_topic(&c, &topic, task, now_ms()) {
                    Ok(()) => {
                        self.written_topics.insert((c.clone(), topic));
                    }
                    Err(e) => {
                        tracing::warn!(connector = %c, %topic, error = %e, "cannot record an active topic")
                    }
                }
            }
        }
    }

    fn shutdown(&mut self) {
        tracing::info!("stopping this worker's connectors and tasks");
        self.write_statuses();
        self.stop_everything(true);
        self.shared.ready.store(false, Ordering::Release);
        let _ = self.commands.send(Input::Leave);
    }
}
