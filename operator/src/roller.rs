//! Rolling the workers onto a new pod template. The StatefulSet uses `OnDelete`, so nothing
//! changes until the operator deletes a pod; this decides which and when: unready pods first
//! (they carry no work), then one ready pod at a time, and only once the Connect group has
//! settled — every connector and task assigned to a current, ready worker and running (or
//! paused, stopped, failed: states a restart would not change). Waiting on pod readiness alone
//! (what Strimzi does) deletes the next worker while the previous one's tasks are still
//! unassigned.

use std::collections::BTreeSet;

/// A worker pod as the roller sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WorkerPod {
    pub name: String,
    pub ordinal: i32,
    /// `controller-revision-hash`: the template revision the pod runs.
    pub revision: Option<String>,
    pub ready: bool,
    pub deleting: bool,
}

/// What to do next.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    /// Every pod runs the current template.
    Done,
    /// Not yet, and why.
    Wait(String),
    /// Delete this pod (the StatefulSet controller recreates it on the current template).
    Replace(String),
}

/// The group's state, from one worker's `GET /connectors?expand=status`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Group {
    /// No worker answered.
    Unknown,
    /// Something is unassigned, restarting, or on a worker that is gone: the reason.
    Unsettled(String),
    Settled,
}

pub fn next(pods: &[WorkerPod], update_revision: &str, group: &Group) -> Step {
    let mut outdated: Vec<&WorkerPod> = pods
        .iter()
        .filter(|p| p.revision.as_deref() != Some(update_revision))
        .collect();
    if outdated.is_empty() {
        return Step::Done;
    }
    if let Some(p) = pods.iter().find(|p| p.deleting) {
        return Step::Wait(format!("worker {} is stopping", p.name));
    }
    outdated.sort_by_key(|p| p.ordinal);
    if let Some(p) = outdated.iter().find(|p| !p.ready) {
        return Step::Replace(p.name.clone());
    }
    if let Some(p) = pods.iter().find(|p| !p.ready) {
        return Step::Wait(format!("worker {} is not ready yet", p.name));
    }
    match group {
        Group::Unknown => Step::Wait("no worker's REST API answered".into()),
        Group::Unsettled(why) => Step::Wait(format!("the Connect group has not settled: {why}")),
        // Highest ordinal first, as the StatefulSet controller rolls.
        Group::Settled => Step::Replace(outdated[outdated.len() - 1].name.clone()),
    }
}

/// Judges `GET /connectors?expand=status`: settled when every connector and task is assigned to
/// one of `workers` (their `worker_id`s) and in a state that a restart would not change.
pub fn judge(statuses: &serde_json::Value, workers: &BTreeSet<String>) -> Group {
    let Some(map) = statuses.as_object() else {
        return Group::Unknown;
    };
    let settled_state = |s: &str| matches!(s, "RUNNING" | "PAUSED" | "STOPPED" | "FAILED");
    for (name, entry) in map {
        let status = &entry["status"];
        let c = &status["connector"];
        let state = c["state"].as_str().unwrap_or("UNASSIGNED");
        if !settled_state(state) {
            return Group::Unsettled(format!("connector {name} is {state}"));
        }
        let owner = c["worker_id"].as_str().unwrap_or_default();
        if !workers.contains(owner) {
            return Group::Unsettled(format!("connector {name} is on {owner}, which is gone"));
        }
        for t in status["tasks"].as_array().into_iter().flatten() {
            let state = t["state"].as_str().unwrap_or("UNASSIGNED");
            let id = t["id"].as_i64().unwrap_or(-1);
            if !settled_state(state) {
                return Group::Unsettled(format!("task {name}-{id} is {state}"));
            }
            let owner = t["worker_id"].as_str().unwrap_or_default();
            if !workers.contains(owner) {
                return Group::Unsettled(format!("task {name}-{id} is on {owner}, which is gone"));
            }
        }
    }
    Group::Settled
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn pod(ordinal: i32, revision: &str, ready: bool) -> WorkerPod {
        WorkerPod {
            name: format!("c-connect-{ordinal}"),
            ordinal,
            revision: Some(revision.into()),
            ready,
            deleting: false,
        }
    }

    #[test]
    fn one_ready_pod_at_a_time_and_only_when_the_group_has_settled() {
        let pods = [
            pod(0, "old", true),
            pod(1, "old", true),
            pod(2, "new", true),
        ];
        assert_eq!(
            next(&pods, "new", &Group::Settled),
            Step::Replace("c-connect-1".into())
        );
        assert!(matches!(
            next(&pods, "new", &Group::Unsettled("task a-0 is UNASSIGNED".into())),
            Step::Wait(w) if w.contains("a-0")
        ));
        assert!(matches!(next(&pods, "new", &Group::Unknown), Step::Wait(_)));
        let all_new = [pod(0, "new", true), pod(1, "new", true)];
        assert_eq!(next(&all_new, "new", &Group::Unknown), Step::Done);
    }

    #[test]
    fn unready_pods_go_first_and_a_starting_pod_holds_the_rest() {
        let pods = [
            pod(0, "old", true),
            pod(1, "old", false),
            pod(2, "new", true),
        ];
        assert_eq!(
            next(&pods, "new", &Group::Unknown),
            Step::Replace("c-connect-1".into())
        );
        let pods = [pod(0, "old", true), pod(1, "new", false)];
        assert!(matches!(
            next(&pods, "new", &Group::Settled),
            Step::Wait(w) if w.contains("c-connect-1")
        ));
        let mut stopping = pod(1, "new", true);
        stopping.deleting = true;
        let pods = [pod(0, "old", true), stopping];
        assert!(matches!(next(&pods, "new", &Group::Settled), Step::Wait(_)));
    }

    #[test]
    fn the_group_settles_when_everything_runs_on_current_workers() {
        let workers: BTreeSet<String> = ["w0:8083", "w1:8083"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        let status = |task_state: &str, task_worker: &str| {
            json!({"a": {"status": {
                "name": "a",
                "connector": {"state": "RUNNING", "worker_id": "w0:8083"},
                "tasks": [{"id": 0, "state": task_state, "worker_id": task_worker}],
            }}})
        };
        assert_eq!(
            judge(&status("RUNNING", "w1:8083"), &workers),
            Group::Settled
        );
        assert_eq!(
            judge(&status("FAILED", "w1:8083"), &workers),
            Group::Settled
        );
        assert!(
            matches!(judge(&status("UNASSIGNED", "w1:8083"), &workers), Group::Unsettled(w) if w.contains("a-0 is UNASSIGNED"))
        );
        assert!(
            matches!(judge(&status("RUNNING", "w9:8083"), &workers), Group::Unsettled(w) if w.contains("gone"))
        );
        assert_eq!(judge(&json!({}), &workers), Group::Settled);
        assert_eq!(judge(&json!(null), &workers), Group::Unknown);
    }
}
