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

/// A connector as this worker runs it: the connector itself when it runs here, and the tasks
/// that run here.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Local {
    pub name: String,
    pub connector: Option<State>,
    pub tasks: Vec<(u32, State)>,
    /// The connector's class, type and version, once it has started here.
    pub class: Option<String>,
    pub type_: Option<ConnectorType>,
    pub version: Option<String>,
}

#[derive(Debug, Default)]
struct Entry {
    type_: Option<ConnectorType>,
    version: Option<String>,
    class: Option<String>,
    connector: Option<Status>,
    tasks: BTreeMap<u32, Status>,
    /// Topics the connector's tasks here used (KIP-558), and the task that first did.
    topics: BTreeMap<String, u32>,
}

/// Told of every change, so a distributed worker writes statuses as they happen rather than at
/// its next tick.
type OnChange = Box<dyn Fn() + Send + Sync>;

/// Statuses of everything this worker runs.
pub struct StatusBoard {
    worker_id: String,
    entries: Mutex<BTreeMap<String, Entry>>,
    on_change: Option<OnChange>,
    /// Bumped by every topic reset: tasks forget which topics they reported and report them
    /// again with their next record, as Java re-records active topics after a reset.
    topics_epoch: std::sync::atomic::AtomicU64,
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
            topics_epoch: std::sync::atomic::AtomicU64::new(0),
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

    /// The connector's class as its config names it (an alias or the full name).
    pub fn set_class(&self, connector: &str, class: &str) {
        self.with(|e| e.entry(connector.to_string()).or_default().class = Some(class.to_string()));
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
                entry.topics.retain(|_, t| *t != task);
            }
        });
    }

    /// A task produced to or consumed from `topic` for the first time in its life.
    pub fn topic_used(&self, connector: &str, task: u32, topic: &str) {
        let added = self
            .with(|e| {
                let entry = e.entry(connector.to_string()).or_default();
                if entry.topics.contains_key(topic) {
                    false
                } else {
                    entry.topics.insert(topic.to_string(), task);
                    true
                }
            })
            .unwrap_or(false);
        if added && let Some(notify) = &self.on_change {
            notify();
        }
    }

    /// The topics the connector's tasks here used, and the task that first did.
    pub fn topics(&self, connector: &str) -> BTreeMap<String, u32> {
        self.with(|e| e.get(connector).map(|en| en.topics.clone()))
            .flatten()
            .unwrap_or_default()
    }

    /// Forgets the connector's topics (a reset); tasks report them again as they use them.
    pub fn reset_topics(&self, connector: &str) {
        self.with(|e| {
            if let Some(entry) = e.get_mut(connector) {
                entry.topics.clear();
            }
        });
        self.topics_epoch
            .fetch_add(1, std::sync::atomic::Ordering::AcqRel);
    }

    /// Changes with every topic reset (see `topics_epoch`).
    pub fn topics_epoch(&self) -> u64 {
        self.topics_epoch.load(std::sync::atomic::Ordering::Acquire)
    }

    /// The connector's own status (not its tasks').
    pub fn connector(&self, connector: &str) -> Option<Status> {
        self.with(|e| e.get(connector).and_then(|en| en.connector.clone()))
            .flatten()
    }

    /// The connector no longer runs here (revoked or stopped); its tasks may still.
    pub fn clear_connector(&self, connector: &str) {
        self.with(|e| {
            if let Some(entry) = e.get_mut(connector) {
                entry.connector = None;
            }
        });
    }

    pub fn remove(&self, connector: &str) {
        self.with(|e| e.remove(connector));
    }

    /// Everything this worker runs, for the metrics of its connectors and tasks (Java reports a
    /// connector's and a task's state on the worker that runs it, not the cluster's view).
    pub fn local(&self) -> Vec<Local> {
        self.with(|e| {
            e.iter()
                .filter(|(_, entry)| entry.connector.is_some() || !entry.tasks.is_empty())
                .map(|(name, entry)| Local {
                    name: name.clone(),
                    connector: entry.connector.as_ref().map(|c| c.state),
                    tasks: entry.tasks.iter().map(|(id, s)| (*id, s.state)).collect(),
                    class: entry.class.clone(),
                    type_: entry.type_,
                    version: entry.version.clone(),
                })
                .collect()
        })
        .unwrap_or_default()
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
