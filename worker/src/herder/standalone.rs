//! The standalone herder: every connector and task runs here. Connector configs live in memory
//! (as Java's `MemoryConfigBackingStore`); source offsets in `offset.storage.file.filename`.
//!
//! Operations block (starting and stopping tasks), so the REST layer calls them off the async
//! runtime. One lock guards the connector table; task threads never take it.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use tributary_connect_api::{Config, ConnectError, ConnectorContext};
use tributary_connect_client::{
    ConfigInfos, ConfigKeyInfo, ConnectorInfo, ConnectorOffset, ConnectorOffsets,
    ConnectorStateInfo, ConnectorTaskId, ConnectorType, PluginInfo, State, TaskInfo, TaskState,
};

use super::validation::{self, invalid_message};
use super::{HerderError, HerderResult, TargetState};
use crate::config::providers::Providers;
use crate::connectors::{self, ConnectorInstance, ConnectorPlugin};
use crate::converter::{CONVERTER_CLASSES, SIMPLE_HEADER_CONVERTER};
use crate::offset_store::connector_offsets;
use crate::task::{self, TaskHandle, TaskId, TaskPlugin, TaskSpec, WorkerContext};

/// The connector's side of `ConnectorContext`: flags the herder's watcher acts on.
struct Context {
    name: String,
    reconfigure: Arc<AtomicBool>,
    status: Arc<crate::status::StatusBoard>,
    type_: ConnectorType,
}

impl ConnectorContext for Context {
    fn request_task_reconfiguration(&self) {
        self.reconfigure.store(true, Ordering::Release);
    }
    fn raise_error(&self, error: ConnectError) {
        tracing::error!(connector = %self.name, %error, "connector failed");
        self.status.set_connector(
            &self.name,
            self.type_,
            State::Failed,
            Some(error.to_string()),
        );
    }
}

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
    providers: Providers,
    shutdown_timeout: Duration,
    connectors: Mutex<BTreeMap<String, Entry>>,
    pub kafka_cluster_id: Option<String>,
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
            worker,
            providers,
            shutdown_timeout,
            connectors: Mutex::new(BTreeMap::new()),
            kafka_cluster_id,
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

    // ---- plugins and validation -------------------------------------------------------------

    pub fn plugins(&self, connectors_only: bool) -> Vec<PluginInfo> {
        let mut out: Vec<PluginInfo> = connectors::PLUGINS
            .iter()
            .map(|p| PluginInfo {
                class_name: p.class.to_string(),
                type_: match p.type_ {
                    ConnectorType::Source => "source",
                    ConnectorType::Sink => "sink",
                    ConnectorType::Unknown => "unknown",
                }
                .to_string(),
                version: Some(p.version()),
            })
            .collect();
        if !connectors_only {
            for c in CONVERTER_CLASSES {
                out.push(PluginInfo {
                    class_name: (*c).to_string(),
                    type_: "converter".into(),
                    version: Some(env!("CARGO_PKG_VERSION").into()),
                });
            }
            out.push(PluginInfo {
                class_name: SIMPLE_HEADER_CONVERTER.into(),
                type_: "header_converter".into(),
                version: Some(env!("CARGO_PKG_VERSION").into()),
            });
        }
        out
    }

    fn plugin(name: &str) -> HerderResult<&'static ConnectorPlugin> {
        connectors::find(name)
            .ok_or_else(|| HerderError::BadRequest(connectors::not_found_message(name)))
    }

    pub fn plugin_config(&self, plugin: &str) -> HerderResult<Vec<ConfigKeyInfo>> {
        let p = connectors::find(plugin)
            .ok_or_else(|| HerderError::NotFound(format!("Unknown plugin {plugin}.")))?;
        // Java 4.x lists the plugin's own keys, then the common connector keys.
        let own = (p.create)().connector().config_def();
        let common = validation::common_def(p.type_);
        Ok(own
            .keys()
            .iter()
            .chain(common.keys().iter().filter(|k| own.key(&k.name).is_none()))
            .map(validation::key_info)
            .collect())
    }

    /// `PUT /connector-plugins/{plugin}/config/validate`.
    pub fn validate(&self, plugin_path: &str, config: &Config) -> HerderResult<ConfigInfos> {
        if let Some(class) = config.get("connector.class") {
            let trimmed = |s: &str| s.strip_suffix("Connector").unwrap_or(s).to_string();
            if !trimmed(class).ends_with(&trimmed(plugin_path)) {
                return Err(HerderError::BadRequest(
                    "Included connector type does not match request type".into(),
                ));
            }
        }
        let class = config
            .get("connector.class")
            .cloned()
            .unwrap_or_else(|| plugin_path.to_string());
        let plugin = Self::plugin(&class)?;
        Ok(self.validate_with(plugin, config))
    }

    fn validate_with(&self, plugin: &ConnectorPlugin, config: &Config) -> ConfigInfos {
        // Validation sees resolved values (as Java does), shows none of them.
        let resolved = self
            .providers
            .resolve(config)
            .unwrap_or_else(|_| config.clone());
        let mut infos = validation::validate(
            plugin,
            &resolved,
            &self.worker.worker_props,
            &self.worker.override_policy,
        );
        if let Err(e) = self.providers.resolve(config) {
            infos.error_count += 1;
            if let Some(c) = infos.configs.first_mut() {
                c.value.errors.push(e.to_string());
            }
        }
        // Show what the user wrote, not what a provider resolved it to.
        for c in &mut infos.configs {
            if c.definition.type_ != "PASSWORD"
                && let Some(raw) = config.get(&c.value.name)
            {
                c.value.value = Some(raw.clone());
            }
        }
        infos
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
        let e = t.get(name).ok_or_else(|| not_found(name))?;
        if e.plugin.type_ != ConnectorType::Source {
            return Err(HerderError::Internal(
                "Reading sink connector offsets is not supported by this worker yet".into(),
            ));
        }
        let offsets = connector_offsets(self.worker.offsets.as_ref(), name)
            .into_iter()
            .map(|(p, o)| ConnectorOffset {
                partition: p.into_iter().collect(),
                offset: o.map(|o| o.into_iter().collect()),
            })
            .collect();
        Ok(ConnectorOffsets { offsets })
    }

    // ---- writes ---------------------------------------------------------------------------

    /// Creates a connector, or with `allow_update` replaces its config. Returns the info and
    /// whether it was created.
    pub fn put_connector(
        &self,
        name: &str,
        mut config: Config,
        allow_update: bool,
        initial: Option<TargetState>,
    ) -> HerderResult<(ConnectorInfo, bool)> {
        let name = name.trim();
        if name.is_empty() {
            return Err(HerderError::BadRequest(
                "Connector name should not be empty".into(),
            ));
        }
        if name.contains('/') {
            return Err(HerderError::BadRequest(format!(
                "Invalid connector name {name}: it may not contain '/'"
            )));
        }
        match config.get("name") {
            Some(n) if n.trim() != name => {
                return Err(HerderError::BadRequest(
                    "Connector name configuration (".to_string()
                        + n
                        + ") doesn't match connector name in the URL ("
                        + name
                        + ")",
                ));
            }
            Some(_) => {}
            None => {
                config.insert("name".into(), name.to_string());
            }
        }
        let class = config.get("connector.class").cloned().ok_or_else(|| {
            HerderError::BadRequest(
                "Connector config {name=".to_string() + name + "} contains no connector type",
            )
        })?;
        let plugin = Self::plugin(&class)?;
        let infos = self.validate_with(plugin, &config);
        if infos.error_count > 0 {
            return Err(HerderError::BadRequest(invalid_message(&infos)));
        }
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
        let mut config = self.config(name)?;
        for (k, v) in patch {
            match v {
                Some(v) => {
                    config.insert(k, v);
                }
                None => {
                    config.remove(&k);
                }
            }
        }
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
        let resolved = match self.providers.resolve(&entry.config) {
            Ok(c) => c,
            Err(e) => {
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
            self.worker
                .status
                .set_connector(name, type_, State::Failed, Some(e.to_string()));
            return;
        }
        self.worker
            .status
            .set_version(name, instance.connector().version());
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
        let max_tasks = entry
            .config
            .get("tasks.max")
            .and_then(|v| v.trim().parse::<usize>().ok())
            .unwrap_or(1);
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
        let enforce = entry
            .config
            .get("tasks.max.enforce")
            .is_none_or(|v| !v.trim().eq_ignore_ascii_case("false"));
        if enforce && configs.len() > max_tasks {
            self.worker.status.set_connector(
                name,
                entry.plugin.type_,
                State::Failed,
                Some(format!(
                    "The connector {name} has generated {} tasks, which is greater than {max_tasks}, the maximum number of tasks it is configured to create.",
                    configs.len()
                )),
            );
            return;
        }
        let resolved = self
            .providers
            .resolve(&entry.config)
            .unwrap_or_else(|_| entry.config.clone());
        let configs: Vec<Config> = configs
            .into_iter()
            .map(|mut c| {
                reverse_transform(&mut c, &entry.config, &resolved);
                c.insert("task.class".into(), entry.plugin.task_class.to_string());
                if entry.plugin.type_ == ConnectorType::Sink {
                    for k in ["topics", "topics.regex"] {
                        if let Some(v) = entry.config.get(k) {
                            c.insert(k.into(), v.clone());
                        }
                    }
                }
                c
            })
            .collect();
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
            self.worker
                .status
                .set_task(name, id, State::Failed, Some(trace));
            None
        };
        let instance = entry.instance.as_ref()?;
        let raw = entry.task_configs.get(id as usize)?;
        let (connector_config, task_config) = match (
            self.providers.resolve(&entry.config),
            self.providers.resolve(raw),
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
        };
        match task::spawn(
            plugin,
            spec,
            self.worker.clone(),
            entry.target == TargetState::Paused,
        ) {
            Ok(h) => Some(h),
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

/// Puts the connector's config provider placeholders back into task configs (Java's
/// `reverseTransform`): a task value equal to a resolved value of the same key is stored and
/// shown as the raw `${...}` text, so secrets never reach the REST API; tasks resolve it again
/// when they start.
fn reverse_transform(task: &mut Config, raw: &Config, resolved: &Config) {
    for (k, v) in task.iter_mut() {
        if let (Some(r), Some(res)) = (raw.get(k), resolved.get(k))
            && r != res
            && v == res
        {
            v.clone_from(r);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn task_configs_keep_placeholders_not_secrets() {
        let raw: Config = [
            ("password".to_string(), "${file:/s:pw}".to_string()),
            ("topic".to_string(), "t".to_string()),
        ]
        .into();
        let resolved: Config = [
            ("password".to_string(), "hunter2".to_string()),
            ("topic".to_string(), "t".to_string()),
        ]
        .into();
        let mut task = resolved.clone();
        task.insert("extra".into(), "hunter2".into());
        reverse_transform(&mut task, &raw, &resolved);
        assert_eq!(task["password"], "${file:/s:pw}");
        assert_eq!(task["topic"], "t");
        assert_eq!(
            task["extra"], "hunter2",
            "only the same key is restored, as in Java"
        );
    }
}
