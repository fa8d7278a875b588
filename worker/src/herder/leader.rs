//! The leader's periodic duties as decisions (connect-compat.md §3, §4.9): which statuses to
//! tombstone after a rebalance, and when to write a new session key.

use crate::config_store::record::SessionKey;
use crate::config_store::snapshot::ConfigState;
use crate::error::{Error, Result};
use std::collections::BTreeSet;

use crate::status_store::{StatusKey, StatusState, StatusView};

/// The statuses of deleted connectors and removed tasks, to remove now, and those to look at
/// again next time. A removed task whose status still says it works (RUNNING, PAUSED,
/// RESTARTING) may be stopping on its worker right now — that worker writes UNASSIGNED once it
/// has — so its status is removed only when a later cleanup still finds it (the runner cleans
/// up after each rebalance, and again once the longest task stop has passed): until then the
/// connector does not look stopped, and an offsets reset cannot run before the task's last
/// offset flush.
pub fn stale_statuses(
    view: &StatusView,
    config: &ConfigState,
    known: impl IntoIterator<Item = StatusKey>,
    deferred: &BTreeSet<StatusKey>,
) -> (Vec<StatusKey>, BTreeSet<StatusKey>) {
    let mut remove = Vec::new();
    let mut defer = BTreeSet::new();
    for k in known {
        match &k {
            StatusKey::Connector(c) => {
                if config.connector_config(c).is_none() && view.connector(c).is_some() {
                    remove.push(k);
                }
            }
            StatusKey::Task(c, n) => {
                let Some(status) = view.task(c, *n) else {
                    continue;
                };
                if *n < config.task_count(c) || config.is_inconsistent(c) {
                    continue;
                }
                let working = matches!(
                    status.state,
                    StatusState::Running | StatusState::Paused | StatusState::Restarting
                );
                if working && !deferred.contains(&k) {
                    defer.insert(k);
                } else {
                    remove.push(k);
                }
            }
            StatusKey::Topic { .. } => {}
        }
    }
    (remove, defer)
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
    use crate::status_store::Status;

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
        // Running removed tasks wait one round: their workers may still be stopping them.
        let (stale, deferred) = stale_statuses(&view, &config, keys.clone(), &BTreeSet::new());
        assert_eq!(stale, [StatusKey::Connector("gone".into())]);
        assert_eq!(
            deferred,
            BTreeSet::from([
                StatusKey::Task("keep".into(), 1),
                StatusKey::Task("gone".into(), 0)
            ])
        );
        let (stale, deferred) = stale_statuses(&view, &config, keys.clone(), &deferred);
        assert_eq!(
            stale,
            [
                StatusKey::Task("keep".into(), 1),
                StatusKey::Connector("gone".into()),
                StatusKey::Task("gone".into(), 0)
            ]
        );
        assert!(deferred.is_empty());
        // A task its worker has stopped (UNASSIGNED) goes at once.
        view.read(
            &StatusKey::Task("keep".into(), 1),
            Some(Status {
                state: StatusState::Unassigned,
                generation: 2,
                ..s.clone()
            }),
        );
        let (stale, _) = stale_statuses(&view, &config, keys, &BTreeSet::new());
        assert!(
            stale.contains(&StatusKey::Task("keep".into(), 1)),
            "{stale:?}"
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
