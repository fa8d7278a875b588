//! What a Connector reconcile should do, as pure functions of the resource, the cluster's live
//! view of the connector, and the resource's last status: the REST calls to make, in order, and
//! what the status should then say. The controller does the I/O.

use std::collections::BTreeMap;

use serde_json::Value;
use tributary_connect_client::{ConnectorExpansion, State};

use crate::crd::connector::{
    AutoRestartStatus, ConnectorSpec, ConnectorState, ConnectorStatus, ConnectorStatusView,
    TaskState, UnitState,
};
use crate::validate::{Problem, config_properties};

/// Where the worker pods mount a Secret named by a Connector's `configFrom`.
pub fn connector_secret_dir(secret: &str) -> String {
    format!("/opt/tributary/secrets/connectors/{secret}")
}

/// Annotation: restart the connector once (`"true"`), then removed by the operator.
pub const RESTART_ANNOTATION: &str = "tributary.dev/restart";
/// Annotation: restart task `<id>` once, then removed.
pub const RESTART_TASK_ANNOTATION: &str = "tributary.dev/restart-task";

/// Longest trace kept in the status.
pub const TRACE_LIMIT: usize = 2000;

/// The connector's name in Kafka Connect.
pub fn connector_name<'a>(spec: &'a ConnectorSpec, resource_name: &'a str) -> &'a str {
    spec.connector_name.as_deref().unwrap_or(resource_name)
}

/// The config the connector should have, as the REST API takes it: the spec's settings as text,
/// `connector.class`, `tasks.max`, `name`, and each `configFrom` key as a reference to the
/// mounted Secret file (read by the worker's directory provider, never by the operator).
pub fn desired_config(
    spec: &ConnectorSpec,
    name: &str,
    dir_provider: &str,
) -> Result<BTreeMap<String, String>, Vec<Problem>> {
    let mut problems = Vec::new();
    let mut config = match config_properties(spec.config.as_ref(), "spec.config") {
        Ok(c) => c,
        Err(mut p) => {
            problems.append(&mut p);
            BTreeMap::new()
        }
    };
    for (i, from) in spec.config_from.iter().flatten().enumerate() {
        if config.contains_key(&from.key) {
            problems.push(Problem {
                field: format!("spec.configFrom[{i}].key"),
                message: format!(
                    "{} is also in spec.config; set it in one place only",
                    from.key
                ),
            });
            continue;
        }
        let r = &from.secret_key_ref;
        config.insert(
            from.key.clone(),
            format!(
                "${{{dir_provider}:{}:{}}}",
                connector_secret_dir(&r.name),
                r.key
            ),
        );
    }
    config.insert("connector.class".into(), spec.class.clone());
    if let Some(t) = spec.tasks_max {
        config.insert("tasks.max".into(), t.to_string());
    }
    config.insert("name".into(), name.to_string());
    if problems.is_empty() {
        Ok(config)
    } else {
        Err(problems)
    }
}

/// One REST call.
#[derive(Debug, Clone, PartialEq)]
pub enum Action {
    /// `POST /connectors` with this initial state.
    Create(ConnectorState),
    /// `PUT /connectors/{c}/config`.
    UpdateConfig,
    /// `PUT /connectors/{c}/pause|resume|stop`.
    Transition(&'static str),
    /// `POST /connectors/{c}/restart`.
    Restart {
        include_tasks: bool,
        only_failed: bool,
    },
    /// `POST /connectors/{c}/tasks/{id}/restart`.
    RestartTask(u32),
    /// `DELETE /connectors/{c}/offsets`.
    ResetOffsets,
    /// `PATCH /connectors/{c}/offsets`.
    AlterOffsets(Value),
}

/// The outcome of planning.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Plan {
    pub actions: Vec<Action>,
    /// The config changes (create or update): validate it first.
    pub validate: bool,
    /// A connector of this name runs and is not the resource's to manage.
    pub conflict: Option<String>,
    /// Something waits for a condition (e.g. offsets for `state: stopped`).
    pub waiting: Option<String>,
    /// Status fields to record once the actions are done.
    pub observed_restart: Option<String>,
    pub observed_offsets: Option<String>,
    pub auto_restart: Option<AutoRestartStatus>,
    /// Annotations to remove once the actions are done.
    pub remove_annotations: Vec<String>,
}

/// A state as the spec names it.
pub fn state_of(spec: &ConnectorSpec) -> ConnectorState {
    spec.state.unwrap_or(ConnectorState::Running)
}

fn matches(live: State, want: ConnectorState) -> bool {
    matches!(
        (live, want),
        (State::Running, ConnectorState::Running)
            | (State::Paused, ConnectorState::Paused)
            | (State::Stopped, ConnectorState::Stopped)
    )
}

/// Seconds to wait before automatic restart number `count + 1`: 2, 4, 8, … up to `max`.
pub fn backoff_seconds(count: i32, max: i32) -> i64 {
    let exp = count.clamp(0, 30) as u32;
    (2_i64.saturating_mul(1_i64 << exp)).min(i64::from(max.max(1)))
}

/// How long until a Connector is reconciled again without an event: a Ready one every 5 minutes
/// (the cluster poll reports its changes at once anyway), one not Ready every 15 s. A RUNNING one
/// whose topics are not known yet — they appear with its first records — every 30 s during its
/// first 10 minutes of readiness, then at the Ready pace, so a thousand idle sources do not keep
/// the apiserver and the workers busy for good.
pub fn requeue_after(
    ready: bool,
    awaiting_topics: bool,
    ready_for: std::time::Duration,
) -> std::time::Duration {
    use std::time::Duration;
    match (ready, awaiting_topics) {
        (false, _) => Duration::from_secs(15),
        (true, true) if ready_for < Duration::from_secs(600) => Duration::from_secs(30),
        (true, _) => Duration::from_secs(300),
    }
}

/// Whether the connector or any task is FAILED.
fn failed(live: &ConnectorExpansion) -> bool {
    live.status.as_ref().is_some_and(|s| {
        s.connector.state == State::Failed || s.tasks.iter().any(|t| t.state == State::Failed)
    })
}

/// Whether the connector and every task are in the state the spec asks for.
pub fn settled(spec: &ConnectorSpec, live: &ConnectorExpansion) -> bool {
    let want = state_of(spec);
    let Some(s) = &live.status else { return false };
    if !matches(s.connector.state, want) {
        return false;
    }
    match want {
        // A stopped connector has no tasks.
        ConnectorState::Stopped => s.tasks.is_empty(),
        _ => !s.tasks.is_empty() && s.tasks.iter().all(|t| matches(t.state, want)),
    }
}

/// What to do. `claimed`: the resource owns the connector (its status recorded the name, or it
/// adopts). `now`: seconds since the epoch.
pub fn plan(
    spec: &ConnectorSpec,
    desired: &BTreeMap<String, String>,
    live: Option<&ConnectorExpansion>,
    previous: Option<&ConnectorStatus>,
    annotations: &BTreeMap<String, String>,
    claimed: bool,
    now: i64,
) -> Plan {
    let mut p = Plan::default();
    let want = state_of(spec);
    let restart_id = spec.restart.as_ref().map(|r| r.id.clone());
    let observed_restart = previous.and_then(|s| s.observed_restart.clone());

    let Some(live) = live else {
        // Not on the cluster: create it in the state asked for. A restart asked before it
        // existed has nothing to restart.
        p.validate = true;
        p.actions.push(Action::Create(want));
        p.observed_restart = restart_id;
        return p;
    };
    if !claimed && !spec.adopt_existing.unwrap_or(false) {
        p.conflict = Some(
            "a connector of this name already runs on the cluster (created another way); set spec.adoptExisting: true to manage it, or use another spec.connectorName"
                .into(),
        );
        return p;
    }

    let live_config = live.info.as_ref().map(|i| &i.config);
    if live_config != Some(desired) {
        p.validate = true;
        p.actions.push(Action::UpdateConfig);
    }
    if let Some(s) = &live.status {
        let state = s.connector.state;
        if matches!(state, State::Running | State::Paused | State::Stopped) && !matches(state, want)
        {
            p.actions.push(Action::Transition(match want {
                ConnectorState::Running => "resume",
                ConnectorState::Paused => "pause",
                ConnectorState::Stopped => "stop",
            }));
        }
    }

    // Declarative restart, once per new id.
    if let Some(r) = &spec.restart
        && observed_restart.as_deref() != Some(r.id.as_str())
    {
        p.actions.push(Action::Restart {
            include_tasks: r.include_tasks.unwrap_or(false),
            only_failed: r.only_failed.unwrap_or(false),
        });
        p.observed_restart = Some(r.id.clone());
    }
    // kubectl users' annotations, removed once done.
    if annotations
        .get(RESTART_ANNOTATION)
        .is_some_and(|v| v == "true")
    {
        p.actions.push(Action::Restart {
            include_tasks: false,
            only_failed: false,
        });
    }
    if annotations.contains_key(RESTART_ANNOTATION) {
        p.remove_annotations.push(RESTART_ANNOTATION.into());
    }
    if let Some(v) = annotations.get(RESTART_TASK_ANNOTATION) {
        if let Ok(id) = v.trim().parse::<u32>() {
            p.actions.push(Action::RestartTask(id));
        }
        p.remove_annotations.push(RESTART_TASK_ANNOTATION.into());
    }

    // Declarative offsets, once per new id, only while stopped.
    if let Some(o) = &spec.offsets
        && previous.and_then(|s| s.observed_offsets.as_deref()) != Some(o.id.as_str())
    {
        let stopped = live
            .status
            .as_ref()
            .is_some_and(|s| s.connector.state == State::Stopped)
            && want == ConnectorState::Stopped;
        if stopped {
            if o.reset.unwrap_or(false) {
                p.actions.push(Action::ResetOffsets);
            } else if let Some(alter) = &o.alter {
                p.actions.push(Action::AlterOffsets(
                    serde_json::to_value(alter).unwrap_or(Value::Null),
                ));
            }
            p.observed_offsets = Some(o.id.clone());
        } else {
            p.waiting = Some(format!(
                "spec.offsets id {} waits for the connector to be stopped (spec.state: stopped)",
                o.id
            ));
        }
    }

    // Automatic restarts of failures, with exponential backoff.
    let auto = spec.auto_restart.as_ref();
    let previous_auto = previous.and_then(|s| s.auto_restart.clone());
    if auto.is_some_and(|a| a.enabled.unwrap_or(true)) {
        let max_backoff = auto.and_then(|a| a.max_backoff_seconds).unwrap_or(300);
        let max_restarts = auto.and_then(|a| a.max_restarts);
        let count = previous_auto.as_ref().map_or(0, |a| a.count);
        let last = previous_auto
            .as_ref()
            .and_then(|a| a.last_restart_time.as_deref())
            .and_then(|t| t.parse::<k8s_openapi::jiff::Timestamp>().ok())
            .map(|t| t.as_second());
        if failed(live) && want == ConnectorState::Running {
            let due = last.is_none_or(|l| now >= l + backoff_seconds(count, max_backoff));
            let allowed = max_restarts.is_none_or(|m| count < m);
            if due
                && allowed
                && !p
                    .actions
                    .iter()
                    .any(|a| matches!(a, Action::Restart { .. }))
            {
                p.actions.push(Action::Restart {
                    include_tasks: true,
                    only_failed: true,
                });
                p.auto_restart = Some(AutoRestartStatus {
                    count: count + 1,
                    last_restart_time: Some(timestamp(now)),
                });
            } else if !allowed {
                p.waiting = Some(format!(
                    "automatic restarts stopped after {count} (spec.autoRestart.maxRestarts)"
                ));
            }
        } else if count > 0
            && settled(spec, live)
            && last.is_some_and(|l| now >= l + 2 * backoff_seconds(count, max_backoff))
        {
            // Healthy for a while: the next failure starts from the shortest wait again.
            p.auto_restart = Some(AutoRestartStatus {
                count: 0,
                last_restart_time: previous_auto.and_then(|a| a.last_restart_time),
            });
        }
    }
    p
}

fn timestamp(secs: i64) -> String {
    k8s_openapi::jiff::Timestamp::from_second(secs)
        .map(|t| t.strftime("%Y-%m-%dT%H:%M:%SZ").to_string())
        .unwrap_or_default()
}

/// A trace for the status: secrets replaced by `[hidden]`, at most [`TRACE_LIMIT`] characters.
pub fn redact_trace(trace: &str, secrets: &[String]) -> String {
    let mut t = trace.to_string();
    for s in secrets.iter().filter(|s| s.len() >= 4) {
        t = t.replace(s.as_str(), "[hidden]");
    }
    if t.chars().count() > TRACE_LIMIT {
        let mut cut: String = t.chars().take(TRACE_LIMIT).collect();
        cut.push_str("\n…");
        cut
    } else {
        t
    }
}

/// The live state as the resource's status shows it.
pub fn status_view(live: &ConnectorExpansion, secrets: &[String]) -> Option<ConnectorStatusView> {
    let s = live.status.as_ref()?;
    let trace = |t: &Option<String>| t.as_deref().map(|t| redact_trace(t, secrets));
    Some(ConnectorStatusView {
        connector: UnitState {
            state: s.connector.state.as_str().into(),
            worker_id: Some(s.connector.worker_id.clone()).filter(|w| !w.is_empty()),
            trace: trace(&s.connector.trace),
        },
        tasks: Some(
            s.tasks
                .iter()
                .map(|t| TaskState {
                    id: t.id as i32,
                    state: t.state.as_str().into(),
                    worker_id: Some(t.worker_id.clone()).filter(|w| !w.is_empty()),
                    trace: trace(&t.trace),
                })
                .collect(),
        ),
        type_: Some(
            serde_json::to_value(s.type_)
                .ok()
                .and_then(|v| v.as_str().map(str::to_string))
                .unwrap_or_default(),
        )
        .filter(|t| !t.is_empty()),
    })
}

/// Why the resource is (not) Ready, for the conditions: (ready, reason, message).
pub fn readiness(
    spec: &ConnectorSpec,
    live: Option<&ConnectorExpansion>,
    plan: &Plan,
) -> (bool, &'static str, String) {
    if let Some(c) = &plan.conflict {
        return (false, "AlreadyExists", c.clone());
    }
    let Some(live) = live else {
        return (false, "Creating", "the connector is being created".into());
    };
    if settled(spec, live) && plan.actions.is_empty() {
        let (reason, what) = match state_of(spec) {
            ConnectorState::Running => ("Running", "the connector and every task are RUNNING"),
            ConnectorState::Paused => ("Paused", "the connector and every task are PAUSED"),
            ConnectorState::Stopped => ("Stopped", "the connector is STOPPED"),
        };
        let mut message = what.to_string();
        if let Some(w) = &plan.waiting {
            message.push_str("; ");
            message.push_str(w);
        }
        return (true, reason, message);
    }
    if failed(live) {
        let what = live
            .status
            .as_ref()
            .map(|s| {
                let mut f: Vec<String> = Vec::new();
                if s.connector.state == State::Failed {
                    f.push("the connector".into());
                }
                f.extend(
                    s.tasks
                        .iter()
                        .filter(|t| t.state == State::Failed)
                        .map(|t| format!("task {}", t.id)),
                );
                f.join(", ")
            })
            .unwrap_or_default();
        let mut message = format!("{what} FAILED (see status.connectorStatus for the trace)");
        if let Some(w) = &plan.waiting {
            message.push_str("; ");
            message.push_str(w);
        }
        return (false, "Failed", message);
    }
    let message = match (&live.status, &plan.waiting) {
        (_, Some(w)) => w.clone(),
        (Some(s), None) => format!(
            "connector {}, tasks [{}]",
            s.connector.state.as_str(),
            s.tasks
                .iter()
                .map(|t| format!("{}: {}", t.id, t.state.as_str()))
                .collect::<Vec<_>>()
                .join(", ")
        ),
        (None, None) => "no status yet".into(),
    };
    (false, "Converging", message)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn topics_are_rechecked_often_only_while_the_connector_is_new() {
        use std::time::Duration;
        let s = Duration::from_secs;
        assert_eq!(requeue_after(false, true, s(0)), s(15));
        assert_eq!(requeue_after(true, true, s(0)), s(30));
        assert_eq!(requeue_after(true, true, s(599)), s(30));
        assert_eq!(
            requeue_after(true, true, s(600)),
            s(300),
            "an idle source settles"
        );
        assert_eq!(requeue_after(true, false, s(0)), s(300));
    }
    use tributary_connect_client::{ConnectorInfo, ConnectorStateInfo, ConnectorType};

    fn spec(yaml: &str) -> ConnectorSpec {
        yaml_serde::from_str(yaml).unwrap()
    }

    fn live(
        config: &BTreeMap<String, String>,
        state: State,
        tasks: &[State],
    ) -> ConnectorExpansion {
        ConnectorExpansion {
            info: Some(ConnectorInfo {
                name: config["name"].clone(),
                config: config.clone(),
                tasks: Vec::new(),
                type_: ConnectorType::Source,
            }),
            status: Some(ConnectorStateInfo {
                name: config["name"].clone(),
                connector: tributary_connect_client::ConnectorState {
                    state,
                    worker_id: "w-0:8083".into(),
                    version: None,
                    trace: None,
                },
                tasks: tasks
                    .iter()
                    .enumerate()
                    .map(|(i, s)| tributary_connect_client::TaskState {
                        id: i as u32,
                        state: *s,
                        worker_id: "w-1:8083".into(),
                        version: None,
                        trace: Some("java.lang.Exception: password=hunter22 was wrong".into()),
                    })
                    .collect(),
                type_: ConnectorType::Source,
            }),
        }
    }

    const BASE: &str = "clusterRef: {name: c}\nclass: FileStreamSource\ntasksMax: 2\nconfig: {file: /tmp/x, topic: t, batch.size: 100, flag: true}\n";

    #[test]
    fn config_is_text_with_the_owned_keys_and_secret_references() {
        let s = spec(&format!(
            "{BASE}configFrom: [{{key: connection.password, secretKeyRef: {{name: db, key: pw}}}}]\n"
        ));
        let c = desired_config(&s, "orders", "tributarydir").unwrap();
        assert_eq!(c["batch.size"], "100");
        assert_eq!(c["flag"], "true");
        assert_eq!(c["connector.class"], "FileStreamSource");
        assert_eq!(c["tasks.max"], "2");
        assert_eq!(c["name"], "orders");
        assert_eq!(
            c["connection.password"],
            "${tributarydir:/opt/tributary/secrets/connectors/db:pw}"
        );
        let s = spec(&format!(
            "{BASE}configFrom: [{{key: topic, secretKeyRef: {{name: db, key: pw}}}}]\n"
        ));
        let e = desired_config(&s, "orders", "d").unwrap_err();
        assert_eq!(e[0].field, "spec.configFrom[0].key");
    }

    #[test]
    fn absent_connectors_are_created_in_the_state_asked_for() {
        let s = spec(&format!("{BASE}state: stopped\nrestart: {{id: a}}\n"));
        let c = desired_config(&s, "x", "d").unwrap();
        let p = plan(&s, &c, None, None, &BTreeMap::new(), false, 0);
        assert_eq!(p.actions, vec![Action::Create(ConnectorState::Stopped)]);
        assert!(p.validate);
        // Nothing to restart yet: the id counts as done.
        assert_eq!(p.observed_restart.as_deref(), Some("a"));
    }

    #[test]
    fn a_connector_made_another_way_is_left_alone_unless_adopted() {
        let s = spec(BASE);
        let c = desired_config(&s, "x", "d").unwrap();
        let l = live(&c, State::Running, &[State::Running]);
        let p = plan(&s, &c, Some(&l), None, &BTreeMap::new(), false, 0);
        assert!(p.conflict.is_some() && p.actions.is_empty());
        let s = spec(&format!("{BASE}adoptExisting: true\n"));
        let p = plan(&s, &c, Some(&l), None, &BTreeMap::new(), false, 0);
        assert!(p.conflict.is_none());
        assert!(p.actions.is_empty(), "{p:?}");
    }

    #[test]
    fn drift_in_config_or_state_is_corrected() {
        let s = spec(BASE);
        let c = desired_config(&s, "x", "d").unwrap();
        let mut old = c.clone();
        old.insert("topic".into(), "elsewhere".into());
        let l = live(&old, State::Paused, &[State::Paused]);
        let p = plan(&s, &c, Some(&l), None, &BTreeMap::new(), true, 0);
        assert_eq!(
            p.actions,
            vec![Action::UpdateConfig, Action::Transition("resume")]
        );
        assert!(p.validate);
        let s = spec(&format!("{BASE}state: stopped\n"));
        let l = live(&c, State::Running, &[State::Running]);
        let p = plan(&s, &c, Some(&l), None, &BTreeMap::new(), true, 0);
        assert_eq!(p.actions, vec![Action::Transition("stop")]);
        // No transition out of FAILED: a restart's business.
        let l = live(&c, State::Failed, &[]);
        let p = plan(&s, &c, Some(&l), None, &BTreeMap::new(), true, 0);
        assert!(p.actions.is_empty());
    }

    #[test]
    fn a_restart_id_is_acted_on_once() {
        let s = spec(&format!(
            "{BASE}restart: {{id: r1, includeTasks: true, onlyFailed: true}}\n"
        ));
        let c = desired_config(&s, "x", "d").unwrap();
        let l = live(&c, State::Running, &[State::Running, State::Running]);
        let p = plan(&s, &c, Some(&l), None, &BTreeMap::new(), true, 0);
        assert_eq!(
            p.actions,
            vec![Action::Restart {
                include_tasks: true,
                only_failed: true
            }]
        );
        let done = ConnectorStatus {
            observed_restart: p.observed_restart.clone(),
            ..ConnectorStatus::default()
        };
        let p = plan(&s, &c, Some(&l), Some(&done), &BTreeMap::new(), true, 0);
        assert!(p.actions.is_empty());
    }

    #[test]
    fn annotations_restart_once_and_are_removed() {
        let s = spec(BASE);
        let c = desired_config(&s, "x", "d").unwrap();
        let l = live(&c, State::Running, &[State::Running, State::Running]);
        let a = BTreeMap::from([
            (RESTART_ANNOTATION.to_string(), "true".to_string()),
            (RESTART_TASK_ANNOTATION.to_string(), "1".to_string()),
        ]);
        let p = plan(&s, &c, Some(&l), None, &a, true, 0);
        assert_eq!(
            p.actions,
            vec![
                Action::Restart {
                    include_tasks: false,
                    only_failed: false
                },
                Action::RestartTask(1)
            ]
        );
        assert_eq!(p.remove_annotations.len(), 2);
    }

    #[test]
    fn offsets_wait_for_stopped_and_apply_once() {
        let s = spec(&format!(
            "{BASE}state: stopped\noffsets: {{id: o1, reset: true}}\n"
        ));
        let c = desired_config(&s, "x", "d").unwrap();
        let running = live(&c, State::Running, &[State::Running]);
        let p = plan(&s, &c, Some(&running), None, &BTreeMap::new(), true, 0);
        assert_eq!(p.actions, vec![Action::Transition("stop")]);
        assert!(p.waiting.is_some() && p.observed_offsets.is_none());
        let stopped = live(&c, State::Stopped, &[]);
        let p = plan(&s, &c, Some(&stopped), None, &BTreeMap::new(), true, 0);
        assert_eq!(p.actions, vec![Action::ResetOffsets]);
        assert_eq!(p.observed_offsets.as_deref(), Some("o1"));
        let done = ConnectorStatus {
            observed_offsets: Some("o1".into()),
            ..ConnectorStatus::default()
        };
        let p = plan(
            &s,
            &c,
            Some(&stopped),
            Some(&done),
            &BTreeMap::new(),
            true,
            0,
        );
        assert!(p.actions.is_empty());
        assert!(readiness(&s, Some(&stopped), &p).0);
    }

    #[test]
    fn failures_restart_by_themselves_with_growing_waits_up_to_the_limit() {
        let s = spec(&format!(
            "{BASE}autoRestart: {{enabled: true, maxRestarts: 2, maxBackoffSeconds: 60}}\n"
        ));
        let c = desired_config(&s, "x", "d").unwrap();
        let l = live(&c, State::Running, &[State::Failed, State::Running]);
        let p = plan(&s, &c, Some(&l), None, &BTreeMap::new(), true, 1000);
        assert_eq!(
            p.actions,
            vec![Action::Restart {
                include_tasks: true,
                only_failed: true
            }]
        );
        let st = |count: i32, at: i64| ConnectorStatus {
            auto_restart: Some(AutoRestartStatus {
                count,
                last_restart_time: Some(timestamp(at)),
            }),
            ..ConnectorStatus::default()
        };
        // One restart done at 1000: the next waits 4 s.
        let p = plan(
            &s,
            &c,
            Some(&l),
            Some(&st(1, 1000)),
            &BTreeMap::new(),
            true,
            1003,
        );
        assert!(p.actions.is_empty());
        let p = plan(
            &s,
            &c,
            Some(&l),
            Some(&st(1, 1000)),
            &BTreeMap::new(),
            true,
            1004,
        );
        assert_eq!(p.auto_restart.as_ref().map(|a| a.count), Some(2));
        // The limit: no more, and the status says so.
        let p = plan(
            &s,
            &c,
            Some(&l),
            Some(&st(2, 1000)),
            &BTreeMap::new(),
            true,
            9999,
        );
        assert!(p.actions.is_empty());
        assert!(p.waiting.as_deref().unwrap_or("").contains("maxRestarts"));
        let (ready, reason, _) = readiness(&s, Some(&l), &p);
        assert!(!ready && reason == "Failed");
        // Healthy long enough: the count starts over.
        let ok = live(&c, State::Running, &[State::Running, State::Running]);
        let p = plan(
            &s,
            &c,
            Some(&ok),
            Some(&st(2, 1000)),
            &BTreeMap::new(),
            true,
            1016,
        );
        assert_eq!(p.auto_restart.as_ref().map(|a| a.count), Some(0));
        assert_eq!(backoff_seconds(0, 60), 2);
        assert_eq!(backoff_seconds(10, 60), 60);
    }

    #[test]
    fn traces_are_redacted_and_shortened() {
        let s = spec(BASE);
        let c = desired_config(&s, "x", "d").unwrap();
        let l = live(&c, State::Running, &[State::Failed]);
        let v = status_view(&l, &["hunter22".to_string()]).unwrap();
        let t = v.tasks.unwrap()[0].trace.clone().unwrap();
        assert!(t.contains("[hidden]") && !t.contains("hunter22"), "{t}");
        let long = "x".repeat(5000);
        assert!(redact_trace(&long, &[]).chars().count() <= TRACE_LIMIT + 2);
    }

    #[test]
    fn ready_means_every_unit_in_the_state_asked_for() {
        let s = spec(BASE);
        let c = desired_config(&s, "x", "d").unwrap();
        let p = Plan::default();
        let l = live(&c, State::Running, &[State::Running, State::Running]);
        assert_eq!(readiness(&s, Some(&l), &p).1, "Running");
        assert!(readiness(&s, Some(&l), &p).0);
        let l = live(&c, State::Running, &[State::Running, State::Unassigned]);
        assert!(!readiness(&s, Some(&l), &p).0);
        let l = live(&c, State::Running, &[]);
        assert!(!readiness(&s, Some(&l), &p).0);
        assert_eq!(readiness(&s, None, &p).1, "Creating");
    }
}
