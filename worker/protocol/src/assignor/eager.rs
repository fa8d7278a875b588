//! The eager assignor (`connect.protocol=eager`): every rebalance stops everything and hands out
//! the whole cluster again, round-robin.

use std::collections::BTreeMap;

use super::{Leader, Member, Round, Snapshot, config_mismatch, member_ids};
use crate::assignment::{Assignment, NO_ERROR, Work};

/// Connectors round-robin over the sorted member ids, then, continuing the same rotation, every
/// task of each connector in order (Java's `EagerAssignor`: connectors and tasks are spread
/// separately, so that one-task connectors do not put all tasks on every other worker).
pub fn assign_eager(leader: &Leader, snapshot: &Snapshot, members: &[Member]) -> Round {
    if let Some(round) = config_mismatch(leader, snapshot, members, 0) {
        return round;
    }
    let ids: Vec<String> = member_ids(members).into_iter().collect();
    let mut owners: BTreeMap<String, Work> =
        ids.iter().map(|id| (id.clone(), Work::new())).collect();
    let configured = snapshot.configured();
    let mut rotation = ids.iter().cycle();
    for c in &configured.connectors {
        if let Some(id) = rotation.next()
            && let Some(w) = owners.get_mut(id)
        {
            w.connectors.insert(c.clone());
        }
    }
    for t in &configured.tasks {
        if let Some(id) = rotation.next()
            && let Some(w) = owners.get_mut(id)
        {
            w.tasks.insert(t.clone());
        }
    }
    let assignments = owners
        .iter()
        .map(|(id, work)| {
            (
                id.clone(),
                Assignment {
                    version: 0,
                    error: NO_ERROR,
                    leader: leader.id.clone(),
                    leader_url: leader.url.clone(),
                    config_offset: snapshot.offset,
                    assigned: Some(work.to_wire()),
                    revoked: None,
                    delay_ms: 0,
                },
            )
        })
        .collect();
    Round {
        assignments,
        owners,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::assignment::{CONFIG_MISMATCH, TaskId};

    fn member(id: &str, offset: i64) -> Member {
        Member {
            id: id.into(),
            url: format!("http://{id}:8083/"),
            config_offset: offset,
            allocation: Work::new(),
        }
    }

    #[test]
    fn connectors_then_tasks_round_robin_over_sorted_members() {
        let leader = Leader {
            id: "b".into(),
            url: "http://b:8083/".into(),
        };
        let snapshot = Snapshot {
            offset: 10,
            connectors: [("x".to_string(), 2), ("y".to_string(), 1)].into(),
        };
        let r = assign_eager(&leader, &snapshot, &[member("b", 10), member("a", 3)]);
        // The rotation a, b, a, b, a: connectors x → a, y → b; tasks x-0 → a, x-1 → b, y-0 → a.
        assert_eq!(r.owners["a"].connectors.iter().collect::<Vec<_>>(), ["x"]);
        assert_eq!(
            r.owners["a"].tasks.iter().cloned().collect::<Vec<_>>(),
            [TaskId::new("x", 0), TaskId::new("y", 0)]
        );
        assert_eq!(
            r.owners["b"].tasks.iter().cloned().collect::<Vec<_>>(),
            [TaskId::new("x", 1)]
        );
        let a = &r.assignments["a"];
        assert_eq!((a.version, a.error, a.config_offset), (0, NO_ERROR, 10));
        assert_eq!(a.leader, "b");
    }

    #[test]
    fn a_leader_behind_a_member_assigns_nothing() {
        let leader = Leader {
            id: "a".into(),
            url: "u".into(),
        };
        let snapshot = Snapshot {
            offset: 4,
            connectors: [("x".to_string(), 1)].into(),
        };
        let r = assign_eager(&leader, &snapshot, &[member("a", 4), member("b", 6)]);
        for a in r.assignments.values() {
            assert_eq!((a.error, a.config_offset), (CONFIG_MISMATCH, 6));
            assert!(a.assigned_work().is_empty());
        }
    }
}
