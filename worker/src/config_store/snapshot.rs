//! The cluster's configuration as the config topic builds it up, record by record
//! (connect-compat.md §1.2): connector configs, target states, task configs that take effect only
//! when their commit record arrives, and the config offset the group protocol exchanges.

use std::collections::{BTreeMap, BTreeSet};

use super::record::{ConfigRecord, SessionKey, TargetState};

/// What a record changed, for the herder once the initial read is over.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Change {
    Connector(String),
    TargetState(String),
    Tasks(String),
    Restart {
        connector: String,
        include_tasks: bool,
        only_failed: bool,
    },
    SessionKey,
    LoggerLevel {
        namespace: String,
        level: Option<String>,
    },
}

#[derive(Debug, Clone, Default)]
pub struct ConfigState {
    connectors: BTreeMap<String, BTreeMap<String, String>>,
    target_states: BTreeMap<String, TargetState>,
    task_configs: BTreeMap<(String, u32), BTreeMap<String, String>>,
    task_counts: BTreeMap<String, u32>,
    deferred: BTreeMap<String, BTreeMap<u32, BTreeMap<String, String>>>,
    inconsistent: BTreeSet<String>,
    task_count_records: BTreeMap<String, u32>,
    generations: BTreeMap<String, u64>,
    pending_fencing: BTreeSet<String>,
    session_key: Option<SessionKey>,
    /// The offset after the last record read; -1 before any.
    offset: i64,
    /// Whether the initial read to the end is over: restart requests and logger levels read
    /// before then are history, not requests.
    started: bool,
}

impl ConfigState {
    pub fn new() -> Self {
        Self {
            offset: -1,
            ..Self::default()
        }
    }

    /// The initial read reached the end of the topic.
    pub fn mark_started(&mut self) {
        self.started = true;
    }

    pub fn offset(&self) -> i64 {
        self.offset
    }

    /// Applies the record at `offset`; returns what changed (nothing during the initial read,
    /// when callbacks do not fire in Java either).
    pub fn apply(&mut self, offset: i64, record: ConfigRecord) -> Option<Change> {
        self.offset = offset + 1;
        let change = match record {
            ConfigRecord::TargetState { connector, state } => {
                match state {
                    Some(s) => {
                        self.target_states.insert(connector.clone(), s);
                    }
                    None => {
                        self.target_states.remove(&connector);
                    }
                }
                // No callback for a connector that does not exist (yet).
                self.connectors
                    .contains_key(&connector)
                    .then_some(Change::TargetState(connector))
            }
            ConfigRecord::Connector { connector, config } => {
                match config {
                    Some(c) => {
                        self.connectors.insert(connector.clone(), c);
                    }
                    None => {
                        self.connectors.remove(&connector);
                        self.task_counts.remove(&connector);
                        self.task_configs.retain(|(c, _), _| *c != connector);
                        self.deferred.remove(&connector);
                        self.inconsistent.remove(&connector);
                    }
                }
                Some(Change::Connector(connector))
            }
            ConfigRecord::Task {
                connector,
                task,
                config,
            } => {
                if let Some(c) = config {
                    self.deferred.entry(connector).or_default().insert(task, c);
                }
                None
            }
            ConfigRecord::Commit { connector, tasks } => {
                if !self.connectors.contains_key(&connector) {
                    // Deleted, and the config compacted away: forget everything about it.
                    self.deferred.remove(&connector);
                    self.task_configs.retain(|(c, _), _| *c != connector);
                    self.task_counts.remove(&connector);
                    self.inconsistent.remove(&connector);
                    return None;
                }
                let deferred = self.deferred.remove(&connector);
                let complete =
                    (0..tasks).all(|t| deferred.as_ref().is_some_and(|d| d.contains_key(&t)));
                if complete {
                    if let Some(d) = deferred {
                        for (t, c) in d {
                            self.task_configs.insert((connector.clone(), t), c);
                        }
                        *self.generations.entry(connector.clone()).or_default() += 1;
                    }
                    self.inconsistent.remove(&connector);
                } else {
                    self.inconsistent.insert(connector.clone());
                }
                self.task_counts.insert(connector.clone(), tasks);
                self.pending_fencing.insert(connector.clone());
                Some(Change::Tasks(connector))
            }
            ConfigRecord::Restart {
                connector,
                include_tasks,
                only_failed,
            } => Some(Change::Restart {
                connector,
                include_tasks,
                only_failed,
            }),
            ConfigRecord::TaskCount {
                connector,
                task_count,
            } => {
                self.task_count_records
                    .insert(connector.clone(), task_count);
                self.pending_fencing.remove(&connector);
                None
            }
            ConfigRecord::SessionKey(key) => {
                self.session_key = key;
                Some(Change::SessionKey)
            }
            ConfigRecord::LoggerLevel { namespace, level } => {
                Some(Change::LoggerLevel { namespace, level })
            }
        };
        change.filter(|_| self.started)
    }

    /// Connector names, sorted.
    pub fn connectors(&self) -> impl Iterator<Item = &str> {
        self.connectors.keys().map(String::as_str)
    }

    pub fn connector_config(&self, connector: &str) -> Option<&BTreeMap<String, String>> {
        self.connectors.get(connector)
    }

    /// STARTED when a configured connector has no target-state record.
    pub fn target_state(&self, connector: &str) -> Option<TargetState> {
        self.connectors.contains_key(connector).then(|| {
            self.target_states
                .get(connector)
                .copied()
                .unwrap_or(TargetState::Started)
        })
    }

    /// The committed task count; 0 for an inconsistent connector (its tasks are not exposed
    /// until the leader writes a complete set again).
    pub fn task_count(&self, connector: &str) -> u32 {
        if self.inconsistent.contains(connector) {
            return 0;
        }
        self.task_counts.get(connector).copied().unwrap_or(0)
    }

    pub fn task_config(&self, connector: &str, task: u32) -> Option<&BTreeMap<String, String>> {
        (task < self.task_count(connector))
            .then(|| self.task_configs.get(&(connector.to_string(), task)))
            .flatten()
    }

    pub fn is_inconsistent(&self, connector: &str) -> bool {
        self.inconsistent.contains(connector)
    }

    pub fn inconsistent(&self) -> impl Iterator<Item = &str> {
        self.inconsistent.iter().map(String::as_str)
    }

    /// How many complete task-config sets the connector has had committed.
    pub fn task_config_generation(&self, connector: &str) -> u64 {
        self.generations.get(connector).copied().unwrap_or(0)
    }

    pub fn session_key(&self) -> Option<&SessionKey> {
        self.session_key.as_ref()
    }

    /// What the assignors work from: every connector and its exposed task count.
    pub fn assignor_snapshot(&self) -> tributary_connect_protocol::assignor::Snapshot {
        tributary_connect_protocol::assignor::Snapshot {
            offset: self.offset,
            connectors: self
                .connectors
                .keys()
                .map(|c| (c.clone(), self.task_count(c)))
                .collect(),
        }
    }
}
