//! Resource statuses as pure functions of what the operator observed: kstatus conditions
//! (`Ready`, `Reconciling`, `Stalled`) with `observedGeneration`, transition times kept while a
//! condition's status holds (so an unchanged status is an unchanged object and no write).

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};
use k8s_openapi::jiff::Timestamp;

use crate::crd::kafka_connect::{ConnectorPlugin, KafkaConnectStatus};
use crate::validate::Problem;

/// One condition as decided, before times are filled in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decided {
    pub type_: &'static str,
    pub status: bool,
    pub reason: String,
    pub message: String,
}

/// Conditions with `lastTransitionTime` kept from `previous` when the status did not change.
pub fn conditions(
    decided: &[Decided],
    previous: Option<&[Condition]>,
    generation: Option<i64>,
    now: Timestamp,
) -> Vec<Condition> {
    decided
        .iter()
        .map(|d| {
            let status = if d.status { "True" } else { "False" };
            let since = previous
                .into_iter()
                .flatten()
                .find(|c| c.type_ == d.type_ && c.status == status)
                .map(|c| c.last_transition_time.clone())
                .unwrap_or(Time(now));
            Condition {
                type_: d.type_.to_string(),
                status: status.to_string(),
                reason: d.reason.clone(),
                message: d.message.clone(),
                observed_generation: generation,
                last_transition_time: since,
            }
        })
        .collect()
}

/// What the operator saw of a KafkaConnect's workers.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Observed {
    /// Problems that stop the operator from building the cluster.
    pub problems: Vec<Problem>,
    pub desired: i32,
    /// Pods that exist, and those that are ready.
    pub replicas: i32,
    pub ready: i32,
    /// Pods not yet on the current template (the roller's work).
    pub outdated: i32,
    pub plugins: Option<Vec<ConnectorPlugin>>,
    pub selector: String,
    pub url: String,
    /// Reconciliation is paused by the annotation.
    pub paused: bool,
    /// What the roller waits for, while pods run an old template.
    pub rolling: Option<String>,
}

pub fn decided(type_: &'static str, status: bool, reason: &str, message: String) -> Decided {
    Decided {
        type_,
        status,
        reason: reason.to_string(),
        message,
    }
}

/// The KafkaConnect status for what was observed.
pub fn kafka_connect(
    o: &Observed,
    previous: Option<&KafkaConnectStatus>,
    generation: Option<i64>,
    now: Timestamp,
) -> KafkaConnectStatus {
    let prev_conditions = previous.and_then(|s| s.conditions.as_deref());
    let d = if o.paused {
        vec![
            decided(
                "Ready",
                false,
                "ReconciliationPaused",
                "reconciliation is paused by the tributary.dev/pause-reconciliation annotation"
                    .into(),
            ),
            decided("Reconciling", false, "ReconciliationPaused", String::new()),
            decided("Stalled", false, "ReconciliationPaused", String::new()),
        ]
    } else if !o.problems.is_empty() {
        let message = o
            .problems
            .iter()
            .map(|p| p.to_string())
            .collect::<Vec<_>>()
            .join("; ");
        vec![
            decided("Ready", false, "InvalidSpec", message.clone()),
            decided("Reconciling", false, "InvalidSpec", String::new()),
            decided("Stalled", true, "InvalidSpec", message),
        ]
    } else {
        let settled = o.replicas == o.desired && o.ready == o.desired && o.outdated == 0;
        let serving = o.desired == 0 || o.plugins.is_some();
        if settled && serving {
            vec![
                decided(
                    "Ready",
                    true,
                    "WorkersReady",
                    format!("{} of {} workers ready", o.ready, o.desired),
                ),
                decided("Reconciling", false, "WorkersReady", String::new()),
                decided("Stalled", false, "WorkersReady", String::new()),
            ]
        } else {
            let (reason, message) = if o.outdated > 0 {
                let why = o
                    .rolling
                    .as_ref()
                    .map(|w| format!("; {w}"))
                    .unwrap_or_default();
                (
                    "RollingUpdate",
                    format!("{} workers to replace one at a time{why}", o.outdated),
                )
            } else if !settled {
                (
                    "WorkersStarting",
                    format!("{} of {} workers ready", o.ready, o.desired),
                )
            } else {
                (
                    "WorkersUnreachable",
                    "the workers' REST API did not answer yet".to_string(),
                )
            };
            vec![
                decided("Ready", false, reason, message.clone()),
                decided("Reconciling", true, reason, message),
                decided("Stalled", false, reason, String::new()),
            ]
        }
    };
    KafkaConnectStatus {
        conditions: Some(conditions(&d, prev_conditions, generation, now)),
        observed_generation: generation,
        replicas: Some(o.replicas),
        ready_replicas: Some(o.ready),
        label_selector: Some(o.selector.clone()),
        url: (!o.url.is_empty()).then(|| o.url.clone()),
        connector_plugins: o
            .plugins
            .clone()
            .or_else(|| previous.and_then(|p| p.connector_plugins.clone())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(s: i64) -> Timestamp {
        Timestamp::from_second(s).unwrap_or_default()
    }

    fn condition(s: &KafkaConnectStatus, type_: &str) -> Condition {
        s.conditions
            .iter()
            .flatten()
            .find(|c| c.type_ == type_)
            .cloned()
            .unwrap_or_else(|| panic!("no {type_}"))
    }

    fn ready_of(s: &KafkaConnectStatus) -> (String, String) {
        let c = condition(s, "Ready");
        (c.status, c.reason)
    }

    #[test]
    fn ready_needs_every_worker_on_the_current_template_and_the_plugins() {
        let mut o = Observed {
            desired: 3,
            replicas: 3,
            ready: 3,
            ..Observed::default()
        };
        let s = kafka_connect(&o, None, Some(2), t(1));
        assert_eq!(ready_of(&s), ("False".into(), "WorkersUnreachable".into()));
        o.plugins = Some(vec![]);
        let s = kafka_connect(&o, None, Some(2), t(1));
        assert_eq!(ready_of(&s), ("True".into(), "WorkersReady".into()));
        o.outdated = 1;
        let s = kafka_connect(&o, None, Some(2), t(1));
        assert_eq!(ready_of(&s), ("False".into(), "RollingUpdate".into()));
        o.outdated = 0;
        o.ready = 2;
        let s = kafka_connect(&o, None, Some(2), t(1));
        assert_eq!(ready_of(&s), ("False".into(), "WorkersStarting".into()));
        let zero = Observed::default();
        assert_eq!(
            ready_of(&kafka_connect(&zero, None, Some(1), t(1))),
            ("True".into(), "WorkersReady".into())
        );
    }

    #[test]
    fn problems_stall_with_every_field_named() {
        let o = Observed {
            problems: vec![
                Problem {
                    field: "spec.config.a".into(),
                    message: "is a list".into(),
                },
                Problem {
                    field: "spec.tls".into(),
                    message: "x".into(),
                },
            ],
            ..Observed::default()
        };
        let s = kafka_connect(&o, None, Some(4), t(1));
        let stalled = condition(&s, "Stalled");
        assert_eq!(stalled.status, "True");
        assert_eq!(stalled.message, "spec.config.a: is a list; spec.tls: x");
        assert_eq!(stalled.observed_generation, Some(4));
    }

    #[test]
    fn transition_times_hold_while_the_status_does() {
        let o = Observed {
            plugins: Some(vec![]),
            ..Observed::default()
        };
        let first = kafka_connect(&o, None, Some(1), t(100));
        let again = kafka_connect(&o, Some(&first), Some(1), t(200));
        assert_eq!(first, again, "nothing changed, nothing to write");
        let o2 = Observed { desired: 1, ..o };
        let changed = kafka_connect(&o2, Some(&first), Some(2), t(300));
        let ready = condition(&changed, "Ready");
        assert_eq!(ready.last_transition_time, Time(t(300)));
    }
}
