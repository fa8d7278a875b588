//! The config topic over a [`KafkaLog`]: the snapshot kept up to date by reading, and the writes
//! of connect-compat.md §1.1 in Java's order (task configs, then the commit that makes them take
//! effect, each step acknowledged and read back before the next).

use std::collections::BTreeMap;
use std::time::Duration;

use serde_json::Value;

use super::record::{ConfigRecord, SessionKey, TargetState};
use super::snapshot::{Change, ConfigState};
use crate::error::{Error, Result};
use crate::kafka_log::{KafkaLog, TopicSpec};

#[derive(Debug)]
pub struct ConfigStore {
    log: KafkaLog,
    state: ConfigState,
    timeout: Duration,
    /// Records the reader dropped (unknown keys, malformed values), for the logs and tests.
    pub dropped: u64,
    /// Changes read but not yet taken by the herder (writes read back their own records).
    pending: Vec<Change>,
    /// Where every read publishes the assignor's view (the group member's snapshot), so the
    /// member's metadata and, as leader, its assignments use the latest read whoever read it.
    publish:
        Option<std::sync::Arc<std::sync::Mutex<tributary_connect_protocol::assignor::Snapshot>>>,
}

impl ConfigStore {
    /// Opens the topic (exactly one partition, compacted), reads it to the end and marks the
    /// snapshot started, so later restart requests and logger levels count.
    pub fn start(
        base: &rdkafka::ClientConfig,
        spec: &TopicSpec,
        client_id: &str,
        timeout: Duration,
    ) -> Result<ConfigStore> {
        let spec = TopicSpec {
            single_partition: true,
            partitions: 1,
            ..spec.clone()
        };
        // read_committed, as Java's: under exactly-once the leader writes the config topic in
        // transactions, and aborted records must never be applied. The end offsets asked for
        // are then the last stable offset, so reads stop before an open transaction.
        let log = KafkaLog::open(base, &spec, client_id, true)?;
        let mut store = ConfigStore {
            log,
            state: ConfigState::new(),
            timeout,
            dropped: 0,
            pending: Vec::new(),
            publish: None,
        };
        store.read_to_end()?;
        store.state.mark_started();
        Ok(store)
    }

    pub fn snapshot(&self) -> &ConfigState {
        &self.state
    }

    /// Changes read since the last call (by [`read_to_end`](Self::read_to_end) or a write).
    pub fn take_changes(&mut self) -> Vec<Change> {
        std::mem::take(&mut self.pending)
    }

    /// Reads what is new; the changes (after startup) are kept for
    /// [`take_changes`](Self::take_changes) and also returned.
    pub fn read_to_end(&mut self) -> Result<Vec<Change>> {
        let mut changes = Vec::new();
        let (state, dropped) = (&mut self.state, &mut self.dropped);
        self.log.read_to_end(self.timeout, |r| {
            let key = String::from_utf8_lossy(&r.key).into_owned();
            let value: Option<Value> = match r.value.as_deref().map(serde_json::from_slice) {
                None => None,
                Some(Ok(v)) => Some(v),
                Some(Err(e)) => {
                    tracing::warn!(key, error = %e, "config topic record is not JSON; dropped");
                    *dropped += 1;
                    return;
                }
            };
            match ConfigRecord::parse(&key, value.as_ref()) {
                Ok(rec) => changes.extend(state.apply(r.offset, rec)),
                Err(e) => {
                    tracing::warn!(error = %e, "config topic record dropped");
                    *dropped += 1;
                }
            }
        })?;
        self.pending.extend(changes.iter().cloned());
        if let Some(p) = &self.publish
            && let Ok(mut s) = p.lock()
        {
            *s = self.state.assignor_snapshot();
        }
        Ok(changes)
    }

    /// Publishes the assignor's view to `target` now and after every read.
    pub fn publish_to(
        &mut self,
        target: std::sync::Arc<std::sync::Mutex<tributary_connect_protocol::assignor::Snapshot>>,
    ) {
        if let Ok(mut s) = target.lock() {
            *s = self.state.assignor_snapshot();
        }
        self.publish = Some(target);
    }

    /// Reads up to `offset` at least (a rebalance's config offset), within `timeout`.
    pub fn read_until(&mut self, offset: i64, timeout: Duration) -> Result<()> {
        let deadline = std::time::Instant::now() + timeout;
        while self.state.offset() < offset {
            if std::time::Instant::now() > deadline {
                return Err(Error::Kafka(format!(
                    "the config topic was not read up to offset {offset} within {timeout:?}"
                )));
            }
            self.read_to_end()?;
            if self.state.offset() < offset {
                std::thread::sleep(Duration::from_millis(50));
            }
        }
        Ok(())
    }

    /// A restart request (KIP-745), for the connector's owner to act on.
    pub fn put_restart(
        &mut self,
        connector: &str,
        include_tasks: bool,
        only_failed: bool,
    ) -> Result<()> {
        self.write(&ConfigRecord::Restart {
            connector: connector.into(),
            include_tasks,
            only_failed,
        })?;
        self.read_to_end().map(drop)
    }

    fn write(&self, record: &ConfigRecord) -> Result<()> {
        let (key, value) = record.to_record();
        let bytes = value
            .map(|v| serde_json::to_vec(&v))
            .transpose()
            .map_err(|e| Error::Config(format!("cannot encode {key}: {e}")))?;
        self.log
            .send(key.as_bytes(), bytes.as_deref(), self.timeout)
    }

    /// Creates or updates a connector: its target state first when one is given, then its config.
    pub fn put_connector(
        &mut self,
        connector: &str,
        config: BTreeMap<String, String>,
        initial_state: Option<TargetState>,
    ) -> Result<()> {
        if let Some(state) = initial_state {
            self.write(&ConfigRecord::TargetState {
                connector: connector.into(),
                state: Some(state),
            })?;
        }
        self.write(&ConfigRecord::Connector {
            connector: connector.into(),
            config: Some(config),
        })?;
        self.read_to_end().map(drop)
    }

    /// Deletes a connector: tombstones for its config and target state (task and commit records
    /// stay, as in Java).
    pub fn delete_connector(&mut self, connector: &str) -> Result<()> {
        self.write(&ConfigRecord::Connector {
            connector: connector.into(),
            config: None,
        })?;
        self.write(&ConfigRecord::TargetState {
            connector: connector.into(),
            state: None,
        })?;
        self.read_to_end().map(drop)
    }

    /// Pause, resume (STARTED) or stop; any worker may write it.
    pub fn put_target_state(&mut self, connector: &str, state: TargetState) -> Result<()> {
        self.write(&ConfigRecord::TargetState {
            connector: connector.into(),
            state: Some(state),
        })?;
        self.read_to_end().map(drop)
    }

    /// The leader's task-config write: read to the end, every task record, then (once they are
    /// acknowledged and read back) the commit that makes them take effect.
    pub fn put_task_configs(
        &mut self,
        connector: &str,
        tasks: Vec<BTreeMap<String, String>>,
    ) -> Result<()> {
        self.read_to_end()?;
        let n = u32::try_from(tasks.len())
            .map_err(|_| Error::Config(format!("{connector}: too many tasks")))?;
        for (i, config) in tasks.into_iter().enumerate() {
            self.write(&ConfigRecord::Task {
                connector: connector.into(),
                task: i as u32,
                config: Some(config),
            })?;
        }
        if n > 0 {
            self.read_to_end()?;
        }
        self.write(&ConfigRecord::Commit {
            connector: connector.into(),
            tasks: n,
        })?;
        self.read_to_end().map(drop)
    }

    /// A cluster-wide logger level (KIP-976); every worker applies it when it reads it.
    pub fn put_logger_level(&mut self, namespace: &str, level: &str) -> Result<()> {
        self.write(&ConfigRecord::LoggerLevel {
            namespace: namespace.into(),
            level: Some(level.into()),
        })?;
        self.read_to_end().map(drop)
    }

    pub fn put_session_key(&mut self, key: SessionKey) -> Result<()> {
        self.write(&ConfigRecord::SessionKey(Some(key)))?;
        self.read_to_end().map(drop)
    }
}
