//! The config topic's reader rules, record by record.

use std::collections::BTreeMap;

use serde_json::{Value, json};

use super::record::{ConfigRecord, TargetState};
use super::snapshot::{Change, ConfigState};

fn rec(key: &str, value: Option<Value>) -> ConfigRecord {
    ConfigRecord::parse(key, value.as_ref()).unwrap_or_else(|e| panic!("{e}"))
}

fn props(pairs: &[(&str, &str)]) -> Value {
    json!({"properties": pairs.iter().map(|(k, v)| (k.to_string(), Value::String(v.to_string()))).collect::<serde_json::Map<_, _>>()})
}

/// Feeds records at offsets 0, 1, 2, …
fn feed(state: &mut ConfigState, records: Vec<ConfigRecord>) -> Vec<Change> {
    let start = state.offset().max(0);
    records
        .into_iter()
        .enumerate()
        .filter_map(|(i, r)| state.apply(start + i as i64, r))
        .collect()
}

#[test]
fn task_configs_take_effect_only_when_committed() {
    let mut s = ConfigState::new();
    assert_eq!(s.offset(), -1);
    feed(
        &mut s,
        vec![
            rec(
                "connector-my-conn",
                Some(props(&[("connector.class", "X"), ("name", "my-conn")])),
            ),
            rec("task-my-conn-0", Some(props(&[("t", "0")]))),
            rec("task-my-conn-1", Some(props(&[("t", "1")]))),
        ],
    );
    // Connector names may contain dashes; tasks wait for the commit.
    assert_eq!(s.connectors().collect::<Vec<_>>(), ["my-conn"]);
    assert_eq!(s.task_count("my-conn"), 0);
    assert_eq!(s.target_state("my-conn"), Some(TargetState::Started));
    feed(
        &mut s,
        vec![rec("commit-my-conn", Some(json!({"tasks": 2})))],
    );
    assert_eq!(s.task_count("my-conn"), 2);
    assert_eq!(
        s.task_config("my-conn", 1).map(|c| c["t"].as_str()),
        Some("1")
    );
    assert_eq!(s.task_config_generation("my-conn"), 1);
    assert_eq!(s.offset(), 4);
    assert_eq!(
        s.assignor_snapshot().connectors,
        BTreeMap::from([("my-conn".to_string(), 2)])
    );
}

#[test]
fn a_commit_with_missing_tasks_makes_the_connector_inconsistent_until_repaired() {
    let mut s = ConfigState::new();
    feed(
        &mut s,
        vec![
            rec("connector-c", Some(props(&[("name", "c")]))),
            rec("task-c-0", Some(props(&[]))),
            rec("commit-c", Some(json!({"tasks": 2}))),
        ],
    );
    assert!(s.is_inconsistent("c"));
    assert_eq!(s.task_count("c"), 0, "no tasks exposed while inconsistent");
    assert_eq!(s.task_config_generation("c"), 0);
    // The deferred set was cleared by the commit: a complete new set repairs it.
    feed(
        &mut s,
        vec![
            rec("task-c-0", Some(props(&[]))),
            rec("task-c-1", Some(props(&[]))),
            rec("task-c-2", Some(props(&[]))), // extra ids are allowed
            rec("commit-c", Some(json!({"tasks": 2}))),
        ],
    );
    assert!(!s.is_inconsistent("c"));
    assert_eq!(s.task_count("c"), 2);
    assert!(
        s.task_config("c", 2).is_none(),
        "ids past the count are not exposed"
    );
}

#[test]
fn tombstones_delete_connectors_and_reset_target_states() {
    let mut s = ConfigState::new();
    feed(
        &mut s,
        vec![
            rec("connector-c", Some(props(&[("name", "c")]))),
            rec(
                "target-state-c",
                Some(json!({"state": "PAUSED", "state.v2": "STOPPED"})),
            ),
            rec("task-c-0", Some(props(&[]))),
            rec("commit-c", Some(json!({"tasks": 1}))),
        ],
    );
    assert_eq!(
        s.target_state("c"),
        Some(TargetState::Stopped),
        "state.v2 wins"
    );
    feed(&mut s, vec![rec("target-state-c", None)]);
    assert_eq!(s.target_state("c"), Some(TargetState::Started));
    feed(&mut s, vec![rec("connector-c", None)]);
    assert_eq!(s.connectors().count(), 0);
    assert_eq!(s.task_count("c"), 0);
    assert_eq!(s.target_state("c"), None);
    // A commit for a connector whose config was compacted away is forgotten.
    feed(
        &mut s,
        vec![
            rec("task-c-0", Some(props(&[]))),
            rec("commit-c", Some(json!({"tasks": 1}))),
        ],
    );
    assert_eq!(s.task_count("c"), 0);
    // Readers without state.v2 (pre-3.5 writers) use state.
    assert_eq!(
        rec("target-state-x", Some(json!({"state": "PAUSED"}))),
        ConfigRecord::TargetState {
            connector: "x".into(),
            state: Some(TargetState::Paused)
        }
    );
}

#[test]
fn restarts_and_logger_levels_count_only_after_the_initial_read() {
    let mut s = ConfigState::new();
    let history = feed(
        &mut s,
        vec![
            rec("connector-c", Some(props(&[]))),
            rec(
                "restart-connector-c",
                Some(json!({"include-tasks": true, "only-failed": false})),
            ),
            rec(
                "logger-cluster-org.apache.kafka",
                Some(json!({"level": "DEBUG"})),
            ),
        ],
    );
    assert!(history.is_empty(), "{history:?}");
    s.mark_started();
    let live = feed(
        &mut s,
        vec![
            rec("restart-connector-c", Some(json!({"only-failed": true}))),
            rec(
                "target-state-nobody",
                Some(json!({"state": "PAUSED", "state.v2": "PAUSED"})),
            ),
        ],
    );
    // A missing flag defaults to false; no callback for a connector that does not exist.
    assert_eq!(
        live,
        [Change::Restart {
            connector: "c".into(),
            include_tasks: false,
            only_failed: true
        }]
    );
}

#[test]
fn records_round_trip_through_their_wire_form() {
    let records = vec![
        ConfigRecord::TargetState {
            connector: "c".into(),
            state: Some(TargetState::Stopped),
        },
        ConfigRecord::Connector {
            connector: "a-b".into(),
            config: Some(BTreeMap::from([("name".to_string(), "a-b".to_string())])),
        },
        ConfigRecord::Task {
            connector: "a-b".into(),
            task: 12,
            config: Some(BTreeMap::new()),
        },
        ConfigRecord::Commit {
            connector: "a-b".into(),
            tasks: 13,
        },
        ConfigRecord::Restart {
            connector: "c".into(),
            include_tasks: true,
            only_failed: true,
        },
        ConfigRecord::TaskCount {
            connector: "c".into(),
            task_count: 3,
        },
        ConfigRecord::SessionKey(Some(super::record::SessionKey {
            key: vec![1, 2, 3, 250],
            algorithm: "HmacSHA256".into(),
            creation_timestamp: 1_700_000_000_000,
        })),
        ConfigRecord::LoggerLevel {
            namespace: "org.apache".into(),
            level: Some("WARN".into()),
        },
    ];
    for r in records {
        let (key, value) = r.to_record();
        assert_eq!(
            ConfigRecord::parse(&key, value.as_ref()),
            Ok(r.clone()),
            "{key}"
        );
    }
    // STOPPED is written as PAUSED in `state` for old readers.
    let (_, v) = ConfigRecord::TargetState {
        connector: "c".into(),
        state: Some(TargetState::Stopped),
    }
    .to_record();
    assert_eq!(v, Some(json!({"state": "PAUSED", "state.v2": "STOPPED"})));
    // Unknown keys and malformed values are dropped with a reason, not a panic.
    assert!(ConfigRecord::parse("mystery", None).is_err());
    assert!(ConfigRecord::parse("commit-c", Some(&json!({"tasks": "two"}))).is_err());
    assert!(ConfigRecord::parse("task-c-x", Some(&props(&[]))).is_err());
    // The session key's secret stays out of Debug output.
    let (k, v) = ConfigRecord::SessionKey(Some(super::record::SessionKey {
        key: b"topsecret".to_vec(),
        algorithm: "HmacSHA256".into(),
        creation_timestamp: 1,
    }))
    .to_record();
    let parsed = ConfigRecord::parse(&k, v.as_ref()).unwrap_or_else(|e| panic!("{e}"));
    assert!(
        !format!("{parsed:?}").contains("topsecret") && !format!("{parsed:?}").contains("116, 111")
    );
}
