//! The leader's side of a rebalance: from every member's metadata and the config snapshot to one
//! assignment per member. Only the leader runs an assignor; its choices are not visible on the
//! wire, so Tributary's assignors produce assignments with Java's semantics, not Java's exact
//! choices.

pub mod cooperative;
pub mod eager;
pub mod sim;

use std::collections::{BTreeMap, BTreeSet};

use crate::assignment::{Assignment, CONFIG_MISMATCH, TaskId, Work};
use crate::metadata::WorkerMetadata;

pub use cooperative::CooperativeAssignor;
pub use eager::assign_eager;

/// A group member as the leader sees it in JoinGroup.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Member {
    pub id: String,
    pub url: String,
    pub config_offset: i64,
    /// What the member runs now (v1/v2 metadata); empty for v0 and for newcomers.
    pub allocation: Work,
}

impl Member {
    pub fn from_metadata(id: impl Into<String>, m: &WorkerMetadata) -> Member {
        let mut allocation = m.running();
        // A member's allocation has no revocations of its own; be lenient with one that does.
        if let Some(a) = &m.allocation {
            allocation.remove(&a.revoked_work());
        }
        Member {
            id: id.into(),
            url: m.url.clone(),
            config_offset: m.config_offset,
            allocation,
        }
    }
}

/// The connectors configured in the leader's config-topic snapshot and their task counts.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Snapshot {
    pub offset: i64,
    pub connectors: BTreeMap<String, u32>,
}

impl Snapshot {
    /// Every configured connector and task.
    pub fn configured(&self) -> Work {
        let mut w = Work::new();
        for (c, &n) in &self.connectors {
            w.connectors.insert(c.clone());
            for t in 0..n {
                w.tasks.insert(TaskId::new(c.clone(), t as i32));
            }
        }
        w
    }
}

/// Who leads the round.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Leader {
    pub id: String,
    pub url: String,
}

/// The result of one round: an assignment per member id, and who runs what once the members
/// have applied them (the leader uses it to forward restarts to owners).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Round {
    pub assignments: BTreeMap<String, Assignment>,
    pub owners: BTreeMap<String, Work>,
}

/// When the leader's snapshot is behind a member's, nobody can be assigned anything: every member
/// gets `CONFIG_MISMATCH` with the highest offset seen, and rejoins after reading further.
/// Returns `None` when the leader is up to date.
pub fn config_mismatch(
    leader: &Leader,
    snapshot: &Snapshot,
    members: &[Member],
    version: i16,
) -> Option<Round> {
    let max = members.iter().map(|m| m.config_offset).max()?;
    if snapshot.offset >= max {
        return None;
    }
    let assignments = members
        .iter()
        .map(|m| {
            (
                m.id.clone(),
                Assignment {
                    version,
                    error: CONFIG_MISMATCH,
                    leader: leader.id.clone(),
                    leader_url: leader.url.clone(),
                    config_offset: max,
                    assigned: Some(Vec::new()),
                    revoked: Some(Vec::new()),
                    delay_ms: 0,
                },
            )
        })
        .collect();
    Some(Round {
        assignments,
        owners: BTreeMap::new(),
    })
}

/// Distinct member ids, sorted.
fn member_ids(members: &[Member]) -> BTreeSet<String> {
    members.iter().map(|m| m.id.clone()).collect()
}
