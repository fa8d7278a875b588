//! The live state of connectors and tasks on this worker, as `GET /connectors/{c}/status` shows
//! it. Tasks write their own transitions (RUNNING, PAUSED, FAILED with a trace); the herder writes
//! the connector's.

use std::collections::BTreeMap;
use std::sync::Mutex;

use tributary_connect_client::{
    ConnectorState, ConnectorStateInfo, ConnectorType, State, TaskState,
};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Status {
    pub state: State,
    pub trace: Option<String>,
}

#[derive(Debug, Default)]
struct Entry {
    type_: Option<ConnectorType>,
    version: Option<String>,
    connector: Option<Status>,
    tasks: BTreeMap<u32, Status>,
}

/// Told of every change, so a distributed worker writes statuses as they happen rather than at
/// its next tick.
type OnChange = Box<dyn Fn() + Send + Sync>;

/// Statuses of everything this worker runs.
pub struct StatusBoard {
    worker_id: String,
    entries: Mutex<BTreeMap<String, Entry>>,
    on_change: Option<OnChange>,
}

impl std::fmt::Debug for StatusBoard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StatusBoard")
            .field("worker_id", &self.worker_id)
            .finish_non_exhaustive()
    }
}

impl StatusBoard {
    pub fn new(worker_id: String) -> Self {
        Self {
            worker_id,
            entries: Mutex::new(BTreeMap::new()),
            on_change: None,
        }
    }

    pub fn with_on_change(mut self, f: impl Fn() + Send + Sync + 'static) -> Self {
        self.on_change = Some(Box::new(f));
        self
    }

    pub fn worker_id(&self) -> &str {
        &self.worker_id
    }

    fn with<R>(&self, f: impl FnOnce(&mut BTreeMap<String, Entry>) -> R) -> Option<R> {
        self.entries.lock().ok().map(|mut e| f(&mut e))
    }

    /// Like `with`, for changes: tells the listener afterwards (outside the lock).
    fn change<R>(&self, f: impl FnOnce(&mut BTreeMap<String, Entry>) -> R) -> Option<R> {
        let r = self.with(f);
        if let Some(notify) = &self.on_change {
            notify();
        }
        r
    }

    pub fn set_connector(
        &self,
        name: &str,
        type_: ConnectorType,
        state: State,
        trace: Option<String>,
    ) {
        self.change(|e| {
            let entry = e.entry(name.to_string()).or_default();
            entry.type_ = Some(type_);
            entry.connector = Some(Status { state, trace });
        });
    }

    pub fn set_task(&self, connector: &str, task: u32, state: State, trace: Option<String>) {
        self.change(|e| {
            let entry = e.entry(connector.to_string()).or_default();
            // A task that failed stays FAILED until it is restarted; a late "stopped" or
            // "paused" from its shutdown must not hide the failure.
            if let Some(old) = entry.tasks.get(&task)
                && old.state == State::Failed
                && !matches!(
                    state,
                    State::Running | State::Restarting | State::Unassigned
                )
            {
                return;
            }
            entry.tasks.insert(task, Status { state, trace });
        });
    }

    /// The plugin version shown with every state of the connector (as Java 4.x shows it).
    pub fn set_version(&self, connector: &str, version: String) {
        self.with(|e| e.entry(connector.to_string()).or_default().version = Some(version));
    }

    pub fn version(&self, connector: &str) -> Option<String> {
        self.with(|e| e.get(connector).and_then(|en| en.version.clone()))
            .flatten()
    }

    pub fn task(&self, connector: &str, task: u32) -> Option<Status> {
        self.with(|e| e.get(connector).and_then(|en| en.tasks.get(&task).cloned()))
            .flatten()
    }

    /// Drops task entries at or above `count` (after a reconfiguration to fewer tasks).
    pub fn truncate_tasks(&self, connector: &str, count: u32) {
        self.with(|e| {
            if let Some(entry) = e.get_mut(connector) {
                entry.tasks.retain(|id, _| *id < count);
            }
        });
    }

    pub fn remove_task(&self, connector: &str, task: u32) {
        self.with(|e| {
            if let Some(entry) = e.get_mut(connector) {
                entry.tasks.remove(&task);
            }
        });
    }

    /// The connector's own status (not its tasks').
    pub fn connector(&self, connector: &str) -> Option<Status> {
        self.with(|e| e.get(connector).and_then(|en| en.connector.clone()))
            .flatten()
    }

    pub fn remove(&self, connector: &str) {
        self.with(|e| e.remove(connector));
    }

    pub fn info(&self, name: &str) -> Option<ConnectorStateInfo> {
        self.with(|e| {
            let entry = e.get(name)?;
            let connector = entry.connector.clone()?;
            Some(ConnectorStateInfo {
                name: name.to_string(),
                connector: ConnectorState {
                    state: connector.state,
                    worker_id: self.worker_id.clone(),
                    version: entry.version.clone(),
                    trace: connector.trace,
                },
                tasks: entry
                    .tasks
                    .iter()
                    .map(|(id, s)| TaskState {
                        id: *id,
                        state: s.state,
                        worker_id: self.worker_id.clone(),
                        version: entry.version.clone(),
                        trace: s.trace.clone(),
                    })
                    .collect(),
                type_: entry.type_.unwrap_or(ConnectorType::Unknown),
            })
        })
        .flatten()
    }
}
