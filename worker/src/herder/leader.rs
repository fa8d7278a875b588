//! The leader's periodic duties as decisions (connect-compat.md §3, §4.9): which statuses to
//! tombstone after a rebalance, and when to write a new session key.

use crate::config_store::record::SessionKey;
use crate::config_store::snapshot::ConfigState;
use crate::error::{Error, Result};
use crate::status_store::{StatusKey, StatusView};

/// Statuses of connectors and tasks the config no longer has: the leader writes tombstones for
/// them (Java's DESTROYED) so the status topic and every worker's view forget them.
pub fn stale_statuses(
    view: &StatusView,
    config: &ConfigState,
    known: impl IntoIterator<Item = StatusKey>,
) -> Vec<StatusKey> {
    known
        .into_iter()
        .filter(|k| match k {
            StatusKey::Connector(c) => {
                config.connector_config(c).is_none() && view.connector(c).is_some()
            }
            StatusKey::Task(c, n) => {
                *n >= config.task_count(c)
                    && !config.is_inconsistent(c)
                    && view.task(c, *n).is_some()
            }
            StatusKey::Topic { .. } => false,
        })
        .collect()
}

/// Whether the leader must write a new session key: none yet, expired
/// (`creation-timestamp + inter.worker.key.ttl.ms ≤ now`), or made with another algorithm or
/// size than configured.
pub fn needs_new_key(
    current: Option<&SessionKey>,
    now_ms: i64,
    ttl_ms: i64,
    algorithm: &str,
    size: usize,
) -> bool {
    match current {
        None => true,
        Some(k) => {
            k.creation_timestamp.saturating_add(ttl_ms) <= now_ms
                || k.algorithm != algorithm
                || k.key.len() != size
        }
    }
}

/// A fresh random key (32 bytes by default: what Java's `KeyGenerator` gives for HmacSHA256).
pub fn new_key(algorithm: &str, size: usize, now_ms: i64) -> Result<SessionKey> {
    let mut key = vec![0u8; size];
    openssl::rand::rand_bytes(&mut key)
        .map_err(|e| Error::Config(format!("cannot generate a session key: {e}")))?;
    Ok(SessionKey {
        key,
        algorithm: algorithm.to_string(),
        creation_timestamp: now_ms,
    })
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::config_store::record::ConfigRecord;
    use crate::status_store::{Status, StatusState};

    #[test]
    fn statuses_of_deleted_connectors_and_removed_tasks_are_stale() {
        let mut config = ConfigState::new();
        let rec = |k: &str, v: serde_json::Value| {
            ConfigRecord::parse(k, Some(&v)).unwrap_or_else(|e| panic!("{e}"))
        };
        config.apply(0, rec("connector-keep", json!({"properties": {}})));
        config.apply(1, rec("task-keep-0", json!({"properties": {}})));
        config.apply(2, rec("commit-keep", json!({"tasks": 1})));
        let mut view = StatusView::new();
        let s = Status {
            state: StatusState::Running,
            trace: None,
            worker_id: "w:1".into(),
            generation: 1,
            version: None,
        };
        let keys = vec![
            StatusKey::Connector("keep".into()),
            StatusKey::Task("keep".into(), 0),
            StatusKey::Task("keep".into(), 1),
            StatusKey::Connector("gone".into()),
            StatusKey::Task("gone".into(), 0),
        ];
        for k in &keys {
            view.read(k, Some(s.clone()));
        }
        let stale = stale_statuses(&view, &config, keys);
        assert_eq!(
            stale,
            [
                StatusKey::Task("keep".into(), 1),
                StatusKey::Connector("gone".into()),
                StatusKey::Task("gone".into(), 0)
            ]
        );
    }

    #[test]
    fn keys_rotate_when_missing_expired_or_made_differently() {
        let k = new_key("HmacSHA256", 32, 1_000).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(k.key.len(), 32);
        assert!(needs_new_key(None, 0, 3_600_000, "HmacSHA256", 32));
        assert!(!needs_new_key(
            Some(&k),
            1_000 + 3_599_999,
            3_600_000,
            "HmacSHA256",
            32
        ));
        assert!(needs_new_key(
            Some(&k),
            1_000 + 3_600_000,
            3_600_000,
            "HmacSHA256",
            32
        ));
        assert!(needs_new_key(Some(&k), 2_000, 3_600_000, "HmacSHA512", 32));
        assert!(needs_new_key(Some(&k), 2_000, 3_600_000, "HmacSHA256", 64));
        assert_ne!(
            k.key,
            new_key("HmacSHA256", 32, 1_000)
                .unwrap_or_else(|e| panic!("{e}"))
                .key
        );
    }
}
