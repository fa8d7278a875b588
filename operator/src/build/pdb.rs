//! `<c>-connect`: at most one worker down at a time for voluntary disruptions (node drains), so
//! the group never loses more than one member's work at once.

use k8s_openapi::api::policy::v1::{PodDisruptionBudget, PodDisruptionBudgetSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;

use super::Cluster;

pub fn pdb(c: &Cluster<'_>) -> PodDisruptionBudget {
    let t = c
        .spec
        .template
        .as_ref()
        .and_then(|t| t.pod_disruption_budget.as_ref());
    PodDisruptionBudget {
        metadata: c.meta(
            c.workers_name(),
            "connect-worker",
            t.and_then(|t| t.metadata.as_ref()),
        ),
        spec: Some(PodDisruptionBudgetSpec {
            max_unavailable: Some(
                t.and_then(|t| t.max_unavailable.clone())
                    .unwrap_or(IntOrString::Int(1)),
            ),
            selector: Some(LabelSelector {
                match_labels: Some(c.selector()),
                ..LabelSelector::default()
            }),
            ..PodDisruptionBudgetSpec::default()
        }),
        ..PodDisruptionBudget::default()
    }
}
