//! KIP-745 restarts: which of a connector's instances a `POST /connectors/{c}/restart` with
//! `includeTasks` and `onlyFailed` restarts, decided from the statuses every worker reads (Java's
//! `RestartPlan`), and the states the 202 reply shows.

use crate::status_store::{StatusState, StatusView};

/// What to restart, and the states to answer with (RESTARTING for what restarts).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RestartPlan {
    pub connector: String,
    pub restart_connector: bool,
    pub restart_tasks: Vec<u32>,
    /// The connector's state in the reply.
    pub connector_state: StatusState,
    /// Every task's id and state in the reply, in task order.
    pub task_states: Vec<(u32, StatusState)>,
}

/// `tasks` is the connector's task count; `None` when the connector has no status yet (Java
/// answers 404 "Status for connector c not found").
pub fn plan(
    view: &StatusView,
    connector: &str,
    tasks: u32,
    include_tasks: bool,
    only_failed: bool,
) -> Option<RestartPlan> {
    let status = view.connector(connector)?;
    let restart_connector = !only_failed || status.state == StatusState::Failed;
    let mut restart_tasks = Vec::new();
    let mut task_states = Vec::new();
    for t in 0..tasks {
        let state = view
            .task(connector, t)
            .map_or(StatusState::Unassigned, |s| s.state);
        let restart = include_tasks && (!only_failed || state == StatusState::Failed);
        if restart {
            restart_tasks.push(t);
        }
        task_states.push((
            t,
            if restart {
                StatusState::Restarting
            } else {
                state
            },
        ));
    }
    Some(RestartPlan {
        connector: connector.to_string(),
        restart_connector,
        restart_tasks,
        connector_state: if restart_connector {
            StatusState::Restarting
        } else {
            status.state
        },
        task_states,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::status_store::{Status, StatusKey};

    fn view(connector: StatusState, tasks: &[StatusState]) -> StatusView {
        let mut v = StatusView::new();
        let s = |state| Status {
            state,
            trace: None,
            worker_id: "w:1".into(),
            generation: 1,
            version: None,
        };
        v.read(&StatusKey::Connector("c".into()), Some(s(connector)));
        for (i, t) in tasks.iter().enumerate() {
            v.read(&StatusKey::Task("c".into(), i as u32), Some(s(*t)));
        }
        v
    }

    #[test]
    fn every_combination_of_include_tasks_and_only_failed() {
        use StatusState::*;
        let v = view(Running, &[Failed, Running]);
        let p = |inc, only| plan(&v, "c", 2, inc, only).unwrap_or_else(|| panic!("no plan"));
        // false/false: the connector only (legacy restart).
        let a = p(false, false);
        assert!(a.restart_connector && a.restart_tasks.is_empty());
        assert_eq!(a.task_states, [(0, Failed), (1, Running)]);
        // includeTasks: everything.
        let b = p(true, false);
        assert_eq!(
            (b.restart_connector, b.restart_tasks.clone()),
            (true, vec![0, 1])
        );
        assert_eq!(b.connector_state, Restarting);
        // onlyFailed: the connector is running, so nothing (tasks not included).
        let c = p(false, true);
        assert!(!c.restart_connector && c.restart_tasks.is_empty());
        assert_eq!(c.connector_state, Running);
        // includeTasks + onlyFailed: the failed task only.
        let d = p(true, true);
        assert_eq!(
            (d.restart_connector, d.restart_tasks.clone()),
            (false, vec![0])
        );
        assert_eq!(d.task_states, [(0, Restarting), (1, Running)]);
        // A failed connector restarts under onlyFailed.
        let v = view(Failed, &[Running]);
        assert!(plan(&v, "c", 1, false, true).is_some_and(|p| p.restart_connector));
        // Unknown connector: no plan (404).
        assert!(plan(&StatusView::new(), "c", 1, true, true).is_none());
    }
}
