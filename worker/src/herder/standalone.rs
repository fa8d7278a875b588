//! The standalone herder: every connector and task runs here. Connector configs live in memory
//! (as Java's `MemoryConfigBackingStore`); source offsets in `offset.storage.file.filename`.
//!
//! Operations block (starting and stopping tasks), so the REST layer calls them off the async
//! runtime. One lock guards the connector table; task threads never take it.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use tributary_connect_api::Config;
use tributary_connect_client::{
    ConnectorInfo, ConnectorOffsets, ConnectorStateInfo, ConnectorTaskId, State, TaskInfo,
    TaskState,
};

use super::catalog::{self, Catalog};
use super::{Herder, HerderContext as Context, HerderError, HerderResult, TargetState};
use crate::config::providers::Providers;
use crate::connectors::{ConnectorInstance, ConnectorPlugin};
use crate::task::{self, TaskHandle, TaskId, TaskPlugin, TaskSpec, WorkerContext};

struct Entry {
    plugin: &'static ConnectorPlugin,
    config: Config,
    target: TargetState,
    instance: Option<ConnectorInstance>,
    /// Task configs as the connector gave them, plus `task.class` (as Java adds).
    task_configs: Vec<Config>,
    tasks: Vec<TaskHandle>,
    reconfigure: Arc<AtomicBool>,
}

/// The standalone herder.
pub struct StandaloneHerder {
    worker: WorkerContext,
    catalog: Catalog,
    shutdown_timeout: Duration,
    connectors: Mutex<BTreeMap<String, Entry>>,
    pub kafka_cluster_id: Option<String>,
    /// Set once the command line's connectors are created.
    pub ready: AtomicBool,
}

impl std::fmt::Debug for StandaloneHerder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StandaloneHerder").finish_non_exhaustive()
    }
}

fn not_found(name: &str) -> HerderError {
    HerderError::NotFound(format!("Connector {name} not found"))
}

impl StandaloneHerder {
    pub fn new(
        worker: WorkerContext,
        providers: Providers,
        shutdown_timeout: Duration,
        kafka_cluster_id: Option<String>,
    ) -> Self {
        Self {
            catalog: Catalog {
                providers,
                worker_props: worker.worker_props.clone(),
                override_policy: worker.override_policy.clone(),
            },
            worker,
            shutdown_timeout,
            connectors: Mutex::new(BTreeMap::new()),
            kafka_cluster_id,
            ready: AtomicBool::new(false),
        }
    }

    fn table(&self) -> HerderResult<MutexGuard<'_, BTreeMap<String, Entry>>> {
        self.connectors
            .lock()
            .map_err(|_| HerderError::Internal("herder lock poisoned".into()))
    }

    pub fn worker_id(&self) -> &str {
        self.worker.status.worker_id()
    }

    // ---- reads ----------------------------------------------------------------------------

    pub fn connector_names(&self) -> HerderResult<Vec<String>> {
        Ok(self.table()?.keys().cloned().collect())
    }

    fn info_of(name: &str, e: &Entry) -> ConnectorInfo {
        ConnectorInfo {
            name: name.to_string(),
            config: e.config.clone(),
            tasks: (0..e.task_configs.len() as u32)
                .map(|task| ConnectorTaskId {
                    connector: name.to_string(),
                    task,
                })
                .collect(),
            type_: e.plugin.type_,
        }
    }

    pub fn info(&self, name: &str) -> HerderResult<ConnectorInfo> {
        let t = self.table()?;
        let e = t.get(name).ok_or_else(|| not_found(name))?;
        Ok(Self::info_of(name, e))
    }

    pub fn config(&self, name: &str) -> HerderResult<Config> {
        self.info(name).map(|i| i.config)
    }

    pub fn status(&self, name: &str) -> HerderResult<ConnectorStateInfo> {
        if !self.table()?.contains_key(name) {
            return Err(HerderError::NotFound(format!(
                "No status found for connector {name}"
            )));
        }
        self.worker
            .status
            .info(name)
            .ok_or_else(|| HerderError::NotFound(format!("No status found for connector {name}")))
    }

    pub fn task_status(&self, name: &str, task: u32) -> HerderResult<TaskState> {
        let s = self.worker.status.task(name, task).ok_or_else(|| {
            HerderError::NotFound(format!("No status found for task {name}-{task}"))
        })?;
        Ok(TaskState {
            id: task,
            state: s.state,
            worker_id: self.worker_id().to_string(),
            version: self.worker.status.version(name),
            trace: s.trace,
        })
    }

    pub fn tasks(&self, name: &str) -> HerderResult<Vec<TaskInfo>> {
        let t = self.table()?;
        let e = t.get(name).ok_or_else(|| not_found(name))?;
        Ok(e.task_configs
            .iter()
            .enumerate()
            .map(|(i, c)| TaskInfo {
                id: ConnectorTaskId {
                    connector: name.to_string(),
                    task: i as u32,
                },
                config: c.clone(),
            })
            .collect())
    }

    pub fn offsets(&self, name: &str) -> HerderResult<ConnectorOffsets> {
        let t = self.table()?;
        let config = t.get(name).ok_or_else(|| not_found(name))?.config.clone();
        drop(t);
        super::read_offsets(&self.catalog, self.worker.offsets.as_ref(), name, &config)
    }

    // ---- writes ---------------------------------------------------------------------------

    /// Creates a connector, or with `allow_update` replaces its config. Returns the info and
    /// whether it was created.
    pub fn put_connector(
        &self,
        name: &str,
        config: Config,
        allow_update: bool,
        initial: Option<TargetState>,
    ) -> HerderResult<(ConnectorInfo, bool)> {
        let (name, plugin, config) = self.catalog.check_connector(name, config)?;
        let name = name.as_str();
        let mut table = self.table()?;
        let existing = table.remove(name);
        let created = existing.is_none();
        if !created && !allow_update {
            if let Some(e) = existing {
                table.insert(name.to_string(), e);
            }
            return Err(HerderError::AlreadyExists(format!(
                "Connector {name} already exists"
            )));
        }
        let target = match (&existing, initial) {
            (_, Some(t)) if created => t,
            (Some(e), _) => e.target,
            _ => TargetState::Started,
        };
        if let Some(old) = existing {
            self.stop_entry(name, old);
        }
        let mut entry = Entry {
            plugin,
            config,
            target,
            instance: None,
            task_configs: Vec::new(),
            tasks: Vec::new(),
            reconfigure: Arc::new(AtomicBool::new(false)),
        };
        self.start_entry(name, &mut entry);
        let info = Self::info_of(name, &entry);
        table.insert(name.to_string(), entry);
        Ok((info, created))
    }

    /// `PATCH /connectors/{c}/config`: a null removes a key.
    pub fn patch_connector(
        &self,
        name: &str,
        patch: BTreeMap<String, Option<String>>,
    ) -> HerderResult<ConnectorInfo> {
        let config = catalog::patched(self.config(name)?, patch);
        self.put_connector(name, config, true, None).map(|(i, _)| i)
    }

    pub fn delete(&self, name: &str) -> HerderResult<()> {
        let entry = self.table()?.remove(name).ok_or_else(|| not_found(name))?;
        self.stop_entry(name, entry);
        self.worker.status.remove(name);
        Ok(())
    }

    pub fn set_target(&self, name: &str, target: TargetState) -> HerderResult<()> {
        let mut table = self.table()?;
        let entry = table.get_mut(name).ok_or_else(|| not_found(name))?;
        let before = entry.target;
        entry.target = target;
        match (before, target) {
            (a, b) if a == b => {}
            (TargetState::Stopped, _) | (_, TargetState::Stopped) => {
                // Stopping shuts the connector and its tasks down (KIP-875: zero task configs);
                // leaving STOPPED starts them again.
                let tasks = std::mem::take(&mut entry.tasks);
                self.stop_tasks(tasks);
                if let Some(mut i) = entry.instance.take()
                    && let Err(e) = i.connector_mut().stop()
                {
                    tracing::warn!(connector = name, error = %e, "connector stop failed");
                }
                entry.task_configs.clear();
                self.worker.status.truncate_tasks(name, 0);
                self.start_entry(name, entry);
            }
            (_, paused) => {
                let paused = paused == TargetState::Paused;
                for t in &entry.tasks {
                    t.control.set_paused(paused);
                }
                self.worker.status.set_connector(
                    name,
                    entry.plugin.type_,
                    if paused {
                        State::Paused
                    } else {
                        State::Running
                    },
                    None,
                );
            }
        }
        Ok(())
    }

    /// Restarts the connector and, with `include_tasks`, its tasks; `only_failed` limits both to
    /// failed instances. Returns the status with RESTARTING marks (KIP-745).
    pub fn restart(
        &self,
        name: &str,
        include_tasks: bool,
        only_failed: bool,
    ) -> HerderResult<ConnectorStateInfo> {
        let mut table = self.table()?;
        let entry = table.get_mut(name).ok_or_else(|| not_found(name))?;
        let status = self.worker.status.info(name);
        let connector_failed = status
            .as_ref()
            .is_some_and(|s| s.connector.state == State::Failed);
        let restart_connector = !only_failed || connector_failed;
        let failed_tasks: Vec<u32> = status
            .as_ref()
            .map(|s| {
                s.tasks
                    .iter()
                    .filter(|t| t.state == State::Failed)
                    .map(|t| t.id)
                    .collect()
            })
            .unwrap_or_default();
        let restart_tasks: Vec<u32> = if include_tasks {
            if only_failed {
                failed_tasks
            } else {
                (0..entry.task_configs.len() as u32).collect()
            }
        } else {
            Vec::new()
        };
        let mut shown = status.unwrap_or_else(|| ConnectorStateInfo {
            name: name.to_string(),
            connector: tributary_connect_client::ConnectorState {
                state: State::Unassigned,
                worker_id: self.worker_id().to_string(),
                version: None,
                trace: None,
            },
            tasks: Vec::new(),
            type_: entry.plugin.type_,
        });
        if restart_connector {
            shown.connector.state = State::Restarting;
            shown.connector.trace = None;
        }
        for t in &mut shown.tasks {
            if restart_tasks.contains(&t.id) {
                t.state = State::Restarting;
                t.trace = None;
            }
        }
        if restart_connector {
            // Restarting the connector re-derives its task configs; tasks restart only when
            // asked or when their configs change.
            if let Some(mut i) = entry.instance.take()
                && let Err(e) = i.connector_mut().stop()
            {
                tracing::warn!(connector = name, error = %e, "connector stop failed");
            }
            self.start_connector(name, entry);
        }
        for id in restart_tasks {
            self.restart_task_in(name, entry, id)?;
        }
        Ok(shown)
    }

    pub fn restart_task(&self, name: &str, task: u32) -> HerderResult<()> {
        let mut table = self.table()?;
        let entry = table.get_mut(name).ok_or_else(|| not_found(name))?;
        if task as usize >= entry.task_configs.len() {
            return Err(HerderError::NotFound(format!(
                "Task {name}-{task} not found"
            )));
        }
        self.restart_task_in(name, entry, task)
    }

    fn restart_task_in(&self, name: &str, entry: &mut Entry, task: u32) -> HerderResult<()> {
        if let Some(pos) = entry.tasks.iter().position(|t| t.id.task == task) {
            let handle = entry.tasks.swap_remove(pos);
            handle.stop(self.shutdown_timeout);
        }
        self.worker
            .status
            .set_task(name, task, State::Restarting, None);
        if let Some(h) = self.spawn_task(name, entry, task) {
            entry.tasks.push(h);
        }
        Ok(())
    }

    /// Acts on connectors that asked for task reconfiguration; the runtime calls it every second.
    pub fn reconfigure_requested(&self) {
        let Ok(mut table) = self.table() else {
            return;
        };
        let names: Vec<String> = table
            .iter()
            .filter(|(_, e)| e.reconfigure.swap(false, Ordering::AcqRel))
            .map(|(n, _)| n.clone())
            .collect();
        for name in names {
            if let Some(entry) = table.get_mut(&name) {
                tracing::info!(connector = %name, "task reconfiguration requested");
                self.reconfigure_tasks(&name, entry);
            }
        }
    }

    /// Stops every connector and task (worker shutdown).
    pub fn stop_all(&self) {
        let entries: Vec<(String, Entry)> = match self.table() {
            Ok(mut t) => std::mem::take(&mut *t).into_iter().collect(),
            Err(_) => return,
        };
        for (name, e) in entries {
            self.stop_entry(&name, e);
        }
    }

    // ---- lifecycle ------------------------------------------------------------------------

    fn start_entry(&self, name: &str, entry: &mut Entry) {
        if entry.target == TargetState::Stopped {
            self.worker
                .status
                .set_connector(name, entry.plugin.type_, State::Stopped, None);
            return;
        }
        self.start_connector(name, entry);
    }

    /// Starts the connector instance and (re)derives and starts its tasks.
    fn start_connector(&self, name: &str, entry: &mut Entry) {
        let type_ = entry.plugin.type_;
        let resolved = match self.catalog.providers.resolve(&entry.config) {
            Ok(c) => c,
            Err(e) => {
                self.worker.metrics.connector_startups.record(false);
                self.worker
                    .status
                    .set_connector(name, type_, State::Failed, Some(e.to_string()));
                return;
            }
        };
        let mut instance = (entry.plugin.create)();
        let context = Arc::new(Context {
            name: name.to_string(),
            reconfigure: entry.reconfigure.clone(),
            status: self.worker.status.clone(),
            type_,
        });
        if let Err(e) = instance.connector_mut().start(&resolved, context) {
            tracing::error!(connector = name, error = %e, "connector failed to start");
            self.worker.metrics.connector_startups.record(false);
            self.worker
                .status
                .set_connector(name, type_, State::Failed, Some(e.to_string()));
            return;
        }
        self.worker.metrics.connector_startups.record(true);
        self.worker
            .status
            .set_version(name, instance.connector().version());
        if let Some(class) = entry.config.get("connector.class") {
            self.worker.status.set_class(name, class);
        }
        entry.instance = Some(instance);
        let state = if entry.target == TargetState::Paused {
            State::Paused
        } else {
            State::Running
        };
        self.worker.status.set_connector(name, type_, state, None);
        tracing::info!(connector = name, "connector started");
        self.reconfigure_tasks(name, entry);
    }

    /// Asks the connector for task configs; when they differ from the running ones (or no tasks
    /// run), restarts the tasks with them.
    fn reconfigure_tasks(&self, name: &str, entry: &mut Entry) {
        let Some(instance) = entry.instance.as_ref() else {
            return;
        };
        let max_tasks = catalog::max_tasks(&entry.config);
        let configs = match instance.connector().task_configs(max_tasks) {
            Ok(c) => c,
            Err(e) => {
                self.worker.status.set_connector(
                    name,
                    entry.plugin.type_,
                    State::Failed,
                    Some(format!("taskConfigs failed: {e}")),
                );
                return;
            }
        };
        if let Err(trace) = catalog::check_task_count(name, &entry.config, configs.len()) {
            self.worker
                .status
                .set_connector(name, entry.plugin.type_, State::Failed, Some(trace));
            return;
        }
        let resolved = self
            .catalog
            .providers
            .resolve(&entry.config)
            .unwrap_or_else(|_| entry.config.clone());
        let configs = catalog::stored_task_configs(entry.plugin, &entry.config, &resolved, configs);
        if configs == entry.task_configs && entry.tasks.len() == configs.len() {
            return;
        }
        let old = std::mem::take(&mut entry.tasks);
        self.stop_tasks(old);
        entry.task_configs = configs;
        self.worker
            .status
            .truncate_tasks(name, entry.task_configs.len() as u32);
        for id in 0..entry.task_configs.len() as u32 {
            if let Some(h) = self.spawn_task(name, entry, id) {
                entry.tasks.push(h);
            }
        }
    }

    fn spawn_task(&self, name: &str, entry: &Entry, id: u32) -> Option<TaskHandle> {
        let fail = |trace: String| {
            self.worker.metrics.task_startups.record(false);
            self.worker
                .status
                .set_task(name, id, State::Failed, Some(trace));
            None
        };
        let instance = entry.instance.as_ref()?;
        let raw = entry.task_configs.get(id as usize)?;
        let (connector_config, task_config) = match (
            self.catalog.providers.resolve(&entry.config),
            self.catalog.providers.resolve(raw),
        ) {
            (Ok(c), Ok(t)) => (c, t),
            (Err(e), _) | (_, Err(e)) => return fail(e.to_string()),
        };
        let plugin = match instance {
            ConnectorInstance::Source(c) => TaskPlugin::Source(c.create_task()),
            ConnectorInstance::Sink(c) => TaskPlugin::Sink(c.create_task()),
        };
        self.worker
            .status
            .set_task(name, id, State::Unassigned, None);
        let spec = TaskSpec {
            id: TaskId {
                connector: name.to_string(),
                task: id,
            },
            connector_config,
            task_config,
            provenance: Vec::new(),
        };
        match task::spawn(
            plugin,
            spec,
            self.worker.clone(),
            entry.target == TargetState::Paused,
        ) {
            Ok(h) => {
                self.worker.metrics.task_startups.record(true);
                Some(h)
            }
            Err(e) => fail(e.to_string()),
        }
    }

    /// Stops tasks together: all are asked first, then each is waited for.
    fn stop_tasks(&self, tasks: Vec<TaskHandle>) {
        for t in &tasks {
            t.control.request_stop();
        }
        for t in tasks {
            t.stop(self.shutdown_timeout);
        }
    }

    fn stop_entry(&self, name: &str, mut entry: Entry) {
        self.stop_tasks(std::mem::take(&mut entry.tasks));
        if let Some(mut i) = entry.instance.take()
            && let Err(e) = i.connector_mut().stop()
        {
            tracing::warn!(connector = name, error = %e, "connector stop failed");
        }
        tracing::info!(connector = name, "connector stopped");
    }
}

impl Herder for StandaloneHerder {
    fn catalog(&self) -> &Catalog {
        &self.catalog
    }
    fn kafka_cluster_id(&self) -> Option<String> {
        self.kafka_cluster_id.clone()
    }
    fn connector_names(&self) -> HerderResult<Vec<String>> {
        StandaloneHerder::connector_names(self)
    }
    fn info(&self, name: &str) -> HerderResult<ConnectorInfo> {
        StandaloneHerder::info(self, name)
    }
    fn config(&self, name: &str) -> HerderResult<Config> {
        StandaloneHerder::config(self, name)
    }
    fn status(&self, name: &str) -> HerderResult<ConnectorStateInfo> {
        StandaloneHerder::status(self, name)
    }
    fn task_status(&self, name: &str, task: u32) -> HerderResult<TaskState> {
        StandaloneHerder::task_status(self, name, task)
    }
    fn tasks(&self, name: &str) -> HerderResult<Vec<TaskInfo>> {
        StandaloneHerder::tasks(self, name)
    }
    fn offsets(&self, name: &str) -> HerderResult<ConnectorOffsets> {
        StandaloneHerder::offsets(self, name)
    }
    fn put_connector(
        &self,
        name: &str,
        config: Config,
        allow_update: bool,
        initial: Option<TargetState>,
    ) -> HerderResult<(ConnectorInfo, bool)> {
        StandaloneHerder::put_connector(self, name, config, allow_update, initial)
    }
    fn patch_connector(
        &self,
        name: &str,
        patch: BTreeMap<String, Option<String>>,
    ) -> HerderResult<ConnectorInfo> {
        StandaloneHerder::patch_connector(self, name, patch)
    }
    fn delete(&self, name: &str) -> HerderResult<()> {
        StandaloneHerder::delete(self, name)
    }
    fn set_target(&self, name: &str, target: TargetState) -> HerderResult<()> {
        StandaloneHerder::set_target(self, name, target)
    }
    fn restart(
        &self,
        name: &str,
        include_tasks: bool,
        only_failed: bool,
    ) -> HerderResult<ConnectorStateInfo> {
        StandaloneHerder::restart(self, name, include_tasks, only_failed)
    }
    fn restart_task(&self, name: &str, task: u32) -> HerderResult<()> {
        StandaloneHerder::restart_task(self, name, task)
    }
    fn ready(&self) -> bool {
        self.ready.load(Ordering::Acquire)
    }
    fn topics(&self, name: &str) -> HerderResult<Vec<String>> {
        // Any name: Java answers an unknown connector with no topics, not 404.
        super::check_topic_tracking(self.worker.topic_tracking_enable, None)?;
        Ok(self.worker.status.topics(name).into_keys().collect())
    }
    fn reset_topics(&self, name: &str) -> HerderResult<()> {
        if !self.table()?.contains_key(name) {
            return Err(not_found(name));
        }
        super::check_topic_tracking(
            self.worker.topic_tracking_enable,
            Some(self.worker.topic_tracking_allow_reset),
        )?;
        self.worker.status.reset_topics(name);
        Ok(())
    }
    fn modify_offsets(
        &self,
        name: &str,
        offsets: Option<ConnectorOffsets>,
    ) -> HerderResult<String> {
        let t = self.table()?;
        let e = t.get(name).ok_or_else(|| not_found(name))?;
        let change = super::offsets_change(
            name,
            e.plugin.type_,
            e.target,
            e.task_configs.len(),
            offsets.as_ref(),
        )?;
        let config = e.config.clone();
        drop(t);
        super::write_offsets(
            &self.catalog,
            self.worker.offsets.as_ref(),
            name,
            &config,
            change,
        )
    }
}
