//! Config-topic records (connect-compat.md §1.1) as values: parsed from a record's key and JSON
//! value the way Java's `KafkaConfigBackingStore` reads them, and written the way it writes them.

use std::collections::BTreeMap;

use serde_json::{Map, Value, json};

pub use crate::herder::TargetState;

/// The KIP-507 key for signing internal requests.
#[derive(Clone, PartialEq, Eq)]
pub struct SessionKey {
    pub key: Vec<u8>,
    pub algorithm: String,
    pub creation_timestamp: i64,
}

impl std::fmt::Debug for SessionKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SessionKey")
            .field("key", &"[hidden]")
            .field("algorithm", &self.algorithm)
            .field("creation_timestamp", &self.creation_timestamp)
            .finish()
    }
}

/// One record of the config topic. `None` values are tombstones.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ConfigRecord {
    TargetState {
        connector: String,
        state: Option<TargetState>,
    },
    Connector {
        connector: String,
        config: Option<BTreeMap<String, String>>,
    },
    Task {
        connector: String,
        task: u32,
        config: Option<BTreeMap<String, String>>,
    },
    Commit {
        connector: String,
        tasks: u32,
    },
    Restart {
        connector: String,
        include_tasks: bool,
        only_failed: bool,
    },
    TaskCount {
        connector: String,
        task_count: u32,
    },
    SessionKey(Option<SessionKey>),
    LoggerLevel {
        namespace: String,
        level: Option<String>,
    },
}

/// Why a record was dropped (Java logs and drops the same ones).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("config topic record {key:?} dropped: {reason}")]
pub struct Dropped {
    pub key: String,
    pub reason: String,
}

fn dropped(key: &str, reason: impl Into<String>) -> Dropped {
    Dropped {
        key: key.to_string(),
        reason: reason.into(),
    }
}

/// `properties` as strings; Java's schema is map<string, optional string>, so a null value
/// is dropped and non-string JSON (written by hand) is kept as its JSON text.
fn properties(key: &str, v: &Value) -> Result<BTreeMap<String, String>, Dropped> {
    let props = v
        .get("properties")
        .and_then(Value::as_object)
        .ok_or_else(|| dropped(key, "no \"properties\" object"))?;
    Ok(props
        .iter()
        .filter_map(|(k, v)| match v {
            Value::Null => None,
            Value::String(s) => Some((k.clone(), s.clone())),
            other => Some((k.clone(), other.to_string())),
        })
        .collect())
}

/// JSON integers of any width, as Java reads int32 fields.
fn int(key: &str, v: &Value, field: &str) -> Result<i64, Dropped> {
    v.get(field)
        .and_then(Value::as_i64)
        .ok_or_else(|| dropped(key, format!("no integer {field:?}")))
}

fn count(key: &str, v: &Value, field: &str) -> Result<u32, Dropped> {
    let n = int(key, v, field)?;
    u32::try_from(n).map_err(|_| dropped(key, format!("{field} {n} is out of range")))
}

impl ConfigRecord {
    /// Parses a record; `value` is the record value as JSON (`None` for a tombstone).
    pub fn parse(key: &str, value: Option<&Value>) -> Result<ConfigRecord, Dropped> {
        if let Some(connector) = key.strip_prefix("target-state-") {
            let state = match value {
                None => None,
                Some(v) => {
                    let s = v
                        .get("state.v2")
                        .and_then(Value::as_str)
                        .or_else(|| v.get("state").and_then(Value::as_str))
                        .ok_or_else(|| dropped(key, "no \"state\""))?;
                    Some(
                        TargetState::from_wire(s)
                            .ok_or_else(|| dropped(key, format!("unknown state {s}")))?,
                    )
                }
            };
            return Ok(ConfigRecord::TargetState {
                connector: connector.to_string(),
                state,
            });
        }
        if let Some(connector) = key.strip_prefix("connector-") {
            return Ok(ConfigRecord::Connector {
                connector: connector.to_string(),
                config: value.map(|v| properties(key, v)).transpose()?,
            });
        }
        if let Some(rest) = key.strip_prefix("task-") {
            let (connector, n) = rest
                .rsplit_once('-')
                .ok_or_else(|| dropped(key, "no task number"))?;
            let task = n
                .parse()
                .map_err(|_| dropped(key, format!("{n} is not a task number")))?;
            return Ok(ConfigRecord::Task {
                connector: connector.to_string(),
                task,
                config: value.map(|v| properties(key, v)).transpose()?,
            });
        }
        if let Some(connector) = key.strip_prefix("commit-") {
            let v = value.ok_or_else(|| dropped(key, "a tombstone commit"))?;
            return Ok(ConfigRecord::Commit {
                connector: connector.to_string(),
                tasks: count(key, v, "tasks")?,
            });
        }
        if let Some(connector) = key.strip_prefix("restart-connector-") {
            let flag = |f: &str| {
                value
                    .and_then(|v| v.get(f))
                    .and_then(Value::as_bool)
                    .unwrap_or(false)
            };
            return Ok(ConfigRecord::Restart {
                connector: connector.to_string(),
                include_tasks: flag("include-tasks"),
                only_failed: flag("only-failed"),
            });
        }
        if let Some(connector) = key.strip_prefix("tasks-fencing-") {
            let v = value.ok_or_else(|| dropped(key, "a tombstone task count"))?;
            return Ok(ConfigRecord::TaskCount {
                connector: connector.to_string(),
                task_count: count(key, v, "task-count")?,
            });
        }
        if key == "session-key" {
            let Some(v) = value else {
                return Ok(ConfigRecord::SessionKey(None));
            };
            use base64::Engine;
            let encoded = v
                .get("key")
                .and_then(Value::as_str)
                .ok_or_else(|| dropped(key, "no \"key\""))?;
            let bytes = base64::engine::general_purpose::STANDARD
                .decode(encoded)
                .map_err(|_| dropped(key, "\"key\" is not base64"))?;
            return Ok(ConfigRecord::SessionKey(Some(SessionKey {
                key: bytes,
                algorithm: v
                    .get("algorithm")
                    .and_then(Value::as_str)
                    .ok_or_else(|| dropped(key, "no \"algorithm\""))?
                    .to_string(),
                creation_timestamp: int(key, v, "creation-timestamp")?,
            })));
        }
        if let Some(namespace) = key.strip_prefix("logger-cluster-") {
            return Ok(ConfigRecord::LoggerLevel {
                namespace: namespace.to_string(),
                level: value
                    .and_then(|v| v.get("level"))
                    .and_then(Value::as_str)
                    .map(str::to_string),
            });
        }
        Err(dropped(key, "unknown key"))
    }

    /// The record's key and value as Java writes them (`None` for a tombstone).
    pub fn to_record(&self) -> (String, Option<Value>) {
        let props = |c: &BTreeMap<String, String>| json!({ "properties": c.iter().map(|(k, v)| (k.clone(), Value::String(v.clone()))).collect::<Map<_, _>>() });
        match self {
            ConfigRecord::TargetState { connector, state } => (
                format!("target-state-{connector}"),
                state.map(|s| {
                    // Pre-3.5 readers know only STARTED and PAUSED.
                    let legacy = if s == TargetState::Stopped {
                        TargetState::Paused
                    } else {
                        s
                    };
                    json!({"state": legacy.name(), "state.v2": s.name()})
                }),
            ),
            ConfigRecord::Connector { connector, config } => {
                (format!("connector-{connector}"), config.as_ref().map(props))
            }
            ConfigRecord::Task {
                connector,
                task,
                config,
            } => (
                format!("task-{connector}-{task}"),
                config.as_ref().map(props),
            ),
            ConfigRecord::Commit { connector, tasks } => {
                (format!("commit-{connector}"), Some(json!({"tasks": tasks})))
            }
            ConfigRecord::Restart {
                connector,
                include_tasks,
                only_failed,
            } => (
                format!("restart-connector-{connector}"),
                Some(json!({"include-tasks": include_tasks, "only-failed": only_failed})),
            ),
            ConfigRecord::TaskCount {
                connector,
                task_count,
            } => (
                format!("tasks-fencing-{connector}"),
                Some(json!({"task-count": task_count})),
            ),
            ConfigRecord::SessionKey(key) => (
                "session-key".to_string(),
                key.as_ref().map(|k| {
                    use base64::Engine;
                    json!({
                        "key": base64::engine::general_purpose::STANDARD.encode(&k.key),
                        "algorithm": k.algorithm,
                        "creation-timestamp": k.creation_timestamp,
                    })
                }),
            ),
            ConfigRecord::LoggerLevel { namespace, level } => (
                format!("logger-cluster-{namespace}"),
                level.as_ref().map(|l| json!({"level": l})),
            ),
        }
    }
}
