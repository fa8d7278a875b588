//! The status topic (connect-compat.md §3): its records, and the rules by which workers write and
//! read them so that a worker that lost its assignment (an older generation) cannot overwrite
//! the state written by the worker that runs the task now. Pure; the I/O is `kafka_log`'s.

use std::collections::BTreeMap;

use serde_json::{Value, json};

/// Connector and task states as the status topic spells them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StatusState {
    Unassigned,
    Running,
    Paused,
    Failed,
    Restarting,
    Stopped,
}

impl StatusState {
    pub fn name(self) -> &'static str {
        match self {
            Self::Unassigned => "UNASSIGNED",
            Self::Running => "RUNNING",
            Self::Paused => "PAUSED",
            Self::Failed => "FAILED",
            Self::Restarting => "RESTARTING",
            Self::Stopped => "STOPPED",
        }
    }

    fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "UNASSIGNED" => Self::Unassigned,
            "RUNNING" => Self::Running,
            "PAUSED" => Self::Paused,
            "FAILED" => Self::Failed,
            "RESTARTING" => Self::Restarting,
            "STOPPED" => Self::Stopped,
            _ => return None,
        })
    }

    /// FAILED and UNASSIGNED are written only when they cannot hide a newer owner's state
    /// (Java's `putSafe`).
    pub fn written_safely(self) -> bool {
        matches!(self, Self::Failed | Self::Unassigned)
    }
}

/// A connector's or task's status value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Status {
    pub state: StatusState,
    pub trace: Option<String>,
    pub worker_id: String,
    pub generation: i32,
    /// The plugin's version (Java 4.x writes and shows it).
    pub version: Option<String>,
}

/// Which entity a status key names.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub enum StatusKey {
    Connector(String),
    Task(String, u32),
    /// A topic a connector used (`status-topic-<topic>:connector-<conn>`).
    Topic {
        topic: String,
        connector: String,
    },
}

impl StatusKey {
    pub fn parse(key: &str) -> Option<StatusKey> {
        if let Some(c) = key.strip_prefix("status-connector-") {
            return Some(StatusKey::Connector(c.to_string()));
        }
        if let Some(rest) = key.strip_prefix("status-task-") {
            let (c, n) = rest.rsplit_once('-')?;
            return Some(StatusKey::Task(c.to_string(), n.parse().ok()?));
        }
        if let Some(rest) = key.strip_prefix("status-topic-") {
            let (topic, conn) = rest.split_once(':')?;
            let connector = conn.strip_prefix("connector-")?;
            return Some(StatusKey::Topic {
                topic: topic.to_string(),
                connector: connector.to_string(),
            });
        }
        None
    }

    pub fn render(&self) -> String {
        match self {
            StatusKey::Connector(c) => format!("status-connector-{c}"),
            StatusKey::Task(c, n) => format!("status-task-{c}-{n}"),
            StatusKey::Topic { topic, connector } => {
                format!("status-topic-{topic}:connector-{connector}")
            }
        }
    }
}

impl Status {
    /// The value Java writes: every field present, `trace` (and `version`) null when unknown.
    pub fn to_json(&self) -> Value {
        json!({
            "state": self.state.name(),
            "trace": self.trace,
            "worker_id": self.worker_id,
            "generation": self.generation,
            "version": self.version,
        })
    }

    pub fn from_json(v: &Value) -> Option<Status> {
        Some(Status {
            state: StatusState::parse(v.get("state")?.as_str()?)?,
            trace: v.get("trace").and_then(Value::as_str).map(str::to_string),
            worker_id: v.get("worker_id")?.as_str()?.to_string(),
            // Any JSON integer, as Java reads int32 fields.
            generation: i32::try_from(v.get("generation")?.as_i64()?).ok()?,
            version: v.get("version").and_then(Value::as_str).map(str::to_string),
        })
    }
}

/// The latest status of every connector and task, as read from the topic.
#[derive(Debug, Clone, Default)]
pub struct StatusView {
    connectors: BTreeMap<String, Status>,
    tasks: BTreeMap<(String, u32), Status>,
    /// Active topics (KIP-558): (connector, topic).
    topics: std::collections::BTreeSet<(String, String)>,
}

/// The value of a topic record, as Java writes it.
pub fn topic_value(topic: &str, connector: &str, task: u32, now_ms: i64) -> Value {
    json!({"topic": {"name": topic, "connector": connector, "task": task, "discoverTimestamp": now_ms}})
}

impl StatusView {
    pub fn new() -> Self {
        Self::default()
    }

    /// Applies one record read from the topic (`None` for a tombstone).
    pub fn read(&mut self, key: &StatusKey, value: Option<Status>) {
        match (key, value) {
            (StatusKey::Connector(c), Some(s)) => {
                self.connectors.insert(c.clone(), s);
            }
            (StatusKey::Connector(c), None) => {
                // A connector's tombstone takes its tasks' entries with it.
                self.connectors.remove(c);
                self.tasks.retain(|(tc, _), _| tc != c);
            }
            (StatusKey::Task(c, n), Some(s)) => {
                let k = (c.clone(), *n);
                // A late UNASSIGNED from a worker that lost the task must not hide that the
                // new owner runs it.
                if s.state == StatusState::Unassigned
                    && self.tasks.get(&k).is_some_and(|cur| {
                        cur.state == StatusState::Running && cur.generation >= s.generation
                    })
                {
                    return;
                }
                self.tasks.insert(k, s);
            }
            (StatusKey::Task(c, n), None) => {
                self.tasks.remove(&(c.clone(), *n));
            }
            (StatusKey::Topic { topic, connector }, Some(_)) => {
                self.topics.insert((connector.clone(), topic.clone()));
            }
            (StatusKey::Topic { topic, connector }, None) => {
                self.topics.remove(&(connector.clone(), topic.clone()));
            }
        }
    }

    /// The connector's active topics, sorted.
    pub fn topics_of(&self, connector: &str) -> Vec<String> {
        self.topics
            .iter()
            .filter(|(c, _)| c == connector)
            .map(|(_, t)| t.clone())
            .collect()
    }

    pub fn connector(&self, connector: &str) -> Option<&Status> {
        self.connectors.get(connector)
    }

    pub fn task(&self, connector: &str, task: u32) -> Option<&Status> {
        self.tasks.get(&(connector.to_string(), task))
    }

    /// The connector's task statuses, by task id.
    pub fn tasks_of<'a>(&'a self, connector: &'a str) -> impl Iterator<Item = (u32, &'a Status)> {
        self.tasks
            .range((connector.to_string(), 0)..=(connector.to_string(), u32::MAX))
            .map(|((_, t), s)| (*t, s))
    }

    /// Every connector and task key with a status.
    pub fn keys(&self) -> Vec<StatusKey> {
        self.connectors
            .keys()
            .map(|c| StatusKey::Connector(c.clone()))
            .chain(
                self.tasks
                    .keys()
                    .map(|(c, t)| StatusKey::Task(c.clone(), *t)),
            )
            .collect()
    }

    /// Whether this worker may write `status` for `key` now: states other than FAILED and
    /// UNASSIGNED always; those two only when nothing is known, the entry is this worker's own,
    /// or the new status is not older than what is stored (Java's `putSafe`).
    pub fn may_write(&self, key: &StatusKey, status: &Status) -> bool {
        if !status.state.written_safely() {
            return true;
        }
        let current = match key {
            StatusKey::Connector(c) => self.connectors.get(c),
            StatusKey::Task(c, n) => self.tasks.get(&(c.clone(), *n)),
            StatusKey::Topic { .. } => return true,
        };
        current.is_none_or(|cur| {
            cur.worker_id == status.worker_id || cur.generation <= status.generation
        })
    }
}

/// The status topic over a [`KafkaLog`](crate::kafka_log::KafkaLog): every worker reads all of it
/// (so any worker can answer status requests) and writes the states of what it runs.
#[derive(Debug)]
pub struct StatusStore {
    log: crate::kafka_log::KafkaLog,
    view: StatusView,
    timeout: std::time::Duration,
}

impl StatusStore {
    pub fn start(
        base: &rdkafka::ClientConfig,
        spec: &crate::kafka_log::TopicSpec,
        client_id: &str,
        timeout: std::time::Duration,
    ) -> crate::error::Result<StatusStore> {
        let log = crate::kafka_log::KafkaLog::open(base, spec, client_id, false)?;
        let mut store = StatusStore {
            log,
            view: StatusView::new(),
            timeout,
        };
        store.read_to_end()?;
        Ok(store)
    }

    pub fn view(&self) -> &StatusView {
        &self.view
    }

    pub fn read_to_end(&mut self) -> crate::error::Result<()> {
        let view = &mut self.view;
        self.log.read_to_end(self.timeout, |r| {
            let key = String::from_utf8_lossy(&r.key);
            let Some(k) = StatusKey::parse(&key) else {
                tracing::warn!(%key, "status topic record with an unknown key; dropped");
                return;
            };
            let status = r
                .value
                .as_deref()
                .and_then(|v| serde_json::from_slice::<Value>(v).ok())
                .and_then(|v| Status::from_json(&v));
            if let StatusKey::Topic { .. } = k {
                // Topic records have their own value; only presence matters here.
                let marker = r.value.as_ref().map(|_| Status {
                    state: StatusState::Running,
                    trace: None,
                    worker_id: String::new(),
                    generation: -1,
                    version: None,
                });
                view.read(&k, marker);
                return;
            }
            if r.value.is_some() && status.is_none() {
                tracing::warn!(%key, "status topic value not understood; dropped");
                return;
            }
            view.read(&k, status);
        })
    }

    /// Writes a status (FAILED and UNASSIGNED only when not stale); returns whether it was written.
    pub fn put(&mut self, key: &StatusKey, status: &Status) -> crate::error::Result<bool> {
        if !self.view.may_write(key, status) {
            tracing::debug!(key = %key.render(), "stale status not written");
            return Ok(false);
        }
        let bytes = serde_json::to_vec(&status.to_json())
            .map_err(|e| crate::error::Error::Config(format!("cannot encode a status: {e}")))?;
        self.log
            .send(key.render().as_bytes(), Some(&bytes), self.timeout)?;
        self.view.read(key, Some(status.clone()));
        Ok(true)
    }

    /// Records that `connector` used `topic` (KIP-558).
    pub fn put_topic(
        &mut self,
        connector: &str,
        topic: &str,
        task: u32,
        now_ms: i64,
    ) -> crate::error::Result<()> {
        let key = StatusKey::Topic {
            topic: topic.to_string(),
            connector: connector.to_string(),
        };
        let bytes = serde_json::to_vec(&topic_value(topic, connector, task, now_ms))
            .map_err(|e| crate::error::Error::Config(format!("cannot encode a topic: {e}")))?;
        self.log
            .send(key.render().as_bytes(), Some(&bytes), self.timeout)?;
        self.view
            .topics
            .insert((connector.to_string(), topic.to_string()));
        Ok(())
    }

    /// A connector or task that no longer exists (Java's DESTROYED): a tombstone.
    pub fn delete(&mut self, key: &StatusKey) -> crate::error::Result<()> {
        self.log.send(key.render().as_bytes(), None, self.timeout)?;
        self.view.read(key, None);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn st(state: StatusState, worker: &str, generation: i32) -> Status {
        Status {
            state,
            trace: None,
            worker_id: worker.into(),
            generation,
            version: None,
        }
    }

    #[test]
    fn keys_parse_and_render_like_java() {
        for (key, parsed) in [
            (
                "status-connector-my-conn",
                StatusKey::Connector("my-conn".into()),
            ),
            (
                "status-task-my-conn-12",
                StatusKey::Task("my-conn".into(), 12),
            ),
            (
                "status-topic-orders:connector-my-conn",
                StatusKey::Topic {
                    topic: "orders".into(),
                    connector: "my-conn".into(),
                },
            ),
        ] {
            assert_eq!(StatusKey::parse(key), Some(parsed.clone()));
            assert_eq!(parsed.render(), key);
        }
        assert_eq!(StatusKey::parse("status-task-x"), None);
        assert_eq!(StatusKey::parse("status-task-x-y"), None);
        assert_eq!(StatusKey::parse("other"), None);
    }

    #[test]
    fn values_carry_every_field_and_read_any_integer_width() {
        let s = Status {
            state: StatusState::Failed,
            trace: Some("boom".into()),
            worker_id: "10.0.0.5:8083".into(),
            generation: 7,
            version: Some("4.3.1".into()),
        };
        assert_eq!(
            s.to_json(),
            json!({"state":"FAILED","trace":"boom","worker_id":"10.0.0.5:8083","generation":7,"version":"4.3.1"})
        );
        assert_eq!(Status::from_json(&s.to_json()), Some(s));
        let running = st(StatusState::Running, "w:1", 3);
        assert_eq!(
            running.to_json()["trace"],
            Value::Null,
            "trace is always present"
        );
        assert_eq!(
            Status::from_json(
                &json!({"state":"DESTROYED","trace":null,"worker_id":"w","generation":1})
            ),
            None
        );
    }

    #[test]
    fn a_stale_unassigned_does_not_hide_a_running_task() {
        let mut v = StatusView::new();
        let k = StatusKey::Task("c".into(), 0);
        v.read(&k, Some(st(StatusState::Running, "new:8083", 5)));
        // The old owner, still at generation 4, reports it unassigned: ignored.
        v.read(&k, Some(st(StatusState::Unassigned, "old:8083", 4)));
        assert_eq!(v.task("c", 0).map(|s| s.state), Some(StatusState::Running));
        // Generation 6 (a later rebalance): the task is really unassigned.
        v.read(&k, Some(st(StatusState::Unassigned, "new:8083", 6)));
        assert_eq!(
            v.task("c", 0).map(|s| s.state),
            Some(StatusState::Unassigned)
        );
        // A connector tombstone removes its tasks.
        v.read(
            &StatusKey::Connector("c".into()),
            Some(st(StatusState::Running, "w", 6)),
        );
        v.read(&StatusKey::Connector("c".into()), None);
        assert!(v.task("c", 0).is_none() && v.connector("c").is_none());
    }

    #[test]
    fn failed_and_unassigned_are_written_only_when_not_stale() {
        let mut v = StatusView::new();
        let k = StatusKey::Task("c".into(), 1);
        assert!(
            v.may_write(&k, &st(StatusState::Failed, "a", 1)),
            "nothing known yet"
        );
        v.read(&k, Some(st(StatusState::Running, "b", 5)));
        assert!(
            !v.may_write(&k, &st(StatusState::Failed, "a", 4)),
            "older generation, other worker"
        );
        assert!(
            v.may_write(&k, &st(StatusState::Failed, "b", 4)),
            "its own entry"
        );
        assert!(
            v.may_write(&k, &st(StatusState::Unassigned, "a", 5)),
            "same generation"
        );
        assert!(
            v.may_write(&k, &st(StatusState::Running, "a", 1)),
            "RUNNING is always written"
        );
    }
}
