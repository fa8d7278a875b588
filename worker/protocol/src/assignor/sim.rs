//! A simulated Connect group for property tests and fuzzing of the cooperative assignor: members
//! apply each assignment as Java workers do (cumulative allocations, an immediate rejoin after a
//! revocation, a rejoin after `delay`), every metadata and assignment crosses the wire codecs, and
//! the invariants are checked after every round. A broken invariant panics, by design: that is
//! how proptest and libFuzzer see it.
#![allow(clippy::panic, clippy::missing_panics_doc)]

use std::collections::BTreeMap;

use super::cooperative::{CooperativeAssignor, RoundInput};
use super::{Leader, Member, Snapshot};
use crate::{Assignment, WorkerMetadata};

/// `scheduled.rebalance.max.delay.ms` of the simulated workers.
pub const MAX_DELAY: i64 = 300_000;

/// One thing that happens to the group between rounds.
#[derive(Debug, Clone)]
pub enum Event {
    Join {
        url: u8,
    },
    Crash {
        pick: u8,
    },
    Restart {
        pick: u8,
    },
    /// A member drops out of the group (paused, partitioned) but keeps running its work.
    Stall {
        pick: u8,
    },
    /// A stalled member rejoins under a new member id, still announcing what it runs.
    Resume {
        pick: u8,
    },
    AddConnector {
        tasks: u8,
    },
    RemoveConnector {
        pick: u8,
    },
    SetTasks {
        pick: u8,
        tasks: u8,
    },
    Wait {
        ms: u32,
    },
}

#[derive(Debug, Clone)]
pub struct SimMember {
    pub url: String,
    /// The member's cumulative running assignment, sent back as its metadata allocation.
    pub allocation: Assignment,
}

/// The group: its members, their assignors, the config snapshot and the clock.
#[derive(Debug)]
pub struct Sim {
    pub rejoin_by_url: bool,
    pub now: i64,
    pub generation: i32,
    pub members: BTreeMap<String, SimMember>,
    pub stalled: Vec<SimMember>,
    /// Each worker process keeps its own assignor; the leader's is used.
    pub assignors: BTreeMap<String, CooperativeAssignor>,
    pub snapshot: Snapshot,
    pub next_id: u32,
    pub next_connector: u32,
    pub rejoin_at: Option<i64>,
}

impl Sim {
    pub fn new(rejoin_by_url: bool) -> Self {
        Sim {
            rejoin_by_url,
            now: 1_000_000,
            generation: 0,
            members: BTreeMap::new(),
            stalled: Vec::new(),
            assignors: BTreeMap::new(),
            snapshot: Snapshot::default(),
            next_id: 0,
            next_connector: 0,
            rejoin_at: None,
        }
    }

    fn empty_allocation() -> Assignment {
        Assignment {
            version: 2,
            error: 0,
            leader: String::new(),
            leader_url: String::new(),
            config_offset: 0,
            assigned: Some(Vec::new()),
            revoked: Some(Vec::new()),
            delay_ms: 0,
        }
    }

    pub fn join(&mut self, url: &str) -> String {
        self.next_id += 1;
        let id = format!("m{:04}", self.next_id);
        self.members.insert(
            id.clone(),
            SimMember {
                url: url.to_string(),
                allocation: Self::empty_allocation(),
            },
        );
        id
    }

    fn pick(&self, pick: u8) -> Option<String> {
        let ids: Vec<&String> = self.members.keys().collect();
        (!ids.is_empty()).then(|| ids[pick as usize % ids.len()].clone())
    }

    fn pick_connector(&self, pick: u8) -> Option<String> {
        let cs: Vec<&String> = self.snapshot.connectors.keys().collect();
        (!cs.is_empty()).then(|| cs[pick as usize % cs.len()].clone())
    }

    pub fn apply(&mut self, e: &Event) {
        match *e {
            Event::Join { url } => {
                self.join(&format!("http://w{url}:8083/"));
            }
            Event::Crash { pick } => {
                if let Some(id) = self.pick(pick) {
                    self.members.remove(&id);
                    self.assignors.remove(&id);
                }
            }
            Event::Restart { pick } => {
                if let Some(id) = self.pick(pick) {
                    let url = self.members.remove(&id).map(|m| m.url).unwrap_or_default();
                    self.assignors.remove(&id);
                    self.join(&url);
                }
            }
            Event::Stall { pick } => {
                if let Some(id) = self.pick(pick)
                    && let Some(m) = self.members.remove(&id)
                {
                    self.assignors.remove(&id);
                    self.stalled.push(m);
                }
            }
            Event::Resume { pick } => {
                if !self.stalled.is_empty() {
                    let m = self.stalled.remove(pick as usize % self.stalled.len());
                    let id = self.join(&m.url);
                    if let Some(back) = self.members.get_mut(&id) {
                        back.allocation = m.allocation;
                    }
                }
            }
            Event::AddConnector { tasks } => {
                self.next_connector += 1;
                self.snapshot
                    .connectors
                    .insert(format!("c{:03}", self.next_connector), u32::from(tasks));
                self.snapshot.offset += 1;
            }
            Event::RemoveConnector { pick } => {
                if let Some(c) = self.pick_connector(pick) {
                    self.snapshot.connectors.remove(&c);
                    self.snapshot.offset += 1;
                }
            }
            Event::SetTasks { pick, tasks } => {
                if let Some(c) = self.pick_connector(pick) {
                    self.snapshot.connectors.insert(c, u32::from(tasks));
                    self.snapshot.offset += 1;
                }
            }
            Event::Wait { ms } => self.now += i64::from(ms),
        }
    }

    /// One join/sync round; returns (any revocation, delay).
    pub fn round(&mut self) -> (bool, i32) {
        let Some(leader_id) = self.members.keys().next().cloned() else {
            return (false, 0);
        };
        let leader = Leader {
            id: leader_id.clone(),
            url: self.members[&leader_id].url.clone(),
        };
        // Every member goes through the metadata codec, as on the wire.
        let members: Vec<Member> = self
            .members
            .iter()
            .map(|(id, m)| {
                let meta = WorkerMetadata {
                    version: 2,
                    url: m.url.clone(),
                    config_offset: self.snapshot.offset,
                    allocation: Some(m.allocation.clone()),
                };
                let bytes = meta.encode().unwrap_or_else(|e| panic!("{e}"));
                let back = WorkerMetadata::decode(&bytes).unwrap_or_else(|e| panic!("{e}"));
                Member::from_metadata(id.clone(), &back)
            })
            .collect();
        let rejoin = self.rejoin_by_url;
        let assignor = self
            .assignors
            .entry(leader_id)
            .or_insert_with(|| CooperativeAssignor::new(MAX_DELAY, rejoin));
        // Every member completed the previous generation (none before the first).
        let last_completed = if self.generation == 0 {
            -1
        } else {
            self.generation
        };
        self.generation += 1;
        let round = assignor.assign(RoundInput {
            now_ms: self.now,
            generation: self.generation,
            last_completed_generation: last_completed,
            leader: &leader,
            snapshot: &self.snapshot,
            members: &members,
            version: 2,
        });
        let mut revoked_any = false;
        let mut delay = 0;
        for (id, m) in self.members.iter_mut() {
            let a = &round.assignments[id];
            let bytes = a.encode().unwrap_or_else(|e| panic!("{e}"));
            let a = Assignment::decode(&bytes).unwrap_or_else(|e| panic!("{e}"));
            assert_eq!(a.error, 0, "no config mismatch in this simulation");
            let mut work = m.allocation.assigned_work();
            let revoked = a.revoked_work();
            assert!(
                revoked.minus(&work).is_empty(),
                "{id} is told to revoke what it does not run: {:?}",
                revoked.minus(&work)
            );
            let assigned = a.assigned_work();
            assert!(
                assigned.intersect(&work).minus(&revoked).is_empty(),
                "{id} is assigned what it already runs"
            );
            work.apply(&a);
            revoked_any |= !revoked.is_empty();
            delay = delay.max(a.delay_ms);
            m.allocation = Assignment {
                assigned: Some(work.to_wire()),
                ..Self::empty_allocation()
            };
        }
        self.check_no_duplicates_and_nothing_unconfigured();
        (revoked_any, delay)
    }

    /// Rounds until no member must rejoin at once (revocations trigger a follow-up).
    pub fn settle(&mut self) {
        for _ in 0..6 {
            let (revoked, delay) = self.round();
            self.rejoin_at = (delay > 0).then(|| self.now + i64::from(delay));
            if !revoked {
                return;
            }
        }
    }

    pub fn held(&self) -> Vec<crate::Work> {
        self.members
            .values()
            .map(|m| m.allocation.assigned_work())
            .collect()
    }

    fn check_no_duplicates_and_nothing_unconfigured(&self) {
        let configured = self.snapshot.configured();
        let mut seen = crate::Work::new();
        for w in self.held() {
            assert!(
                !w.overlaps(&seen),
                "an item is held by two members: {:?}",
                w.intersect(&seen)
            );
            seen.add(&w);
        }
        assert!(
            seen.minus(&configured).is_empty(),
            "members run unconfigured work: {:?}",
            seen.minus(&configured)
        );
    }

    pub fn unassigned(&self) -> crate::Work {
        let held = crate::Work::union(self.held().iter());
        self.snapshot.configured().minus(&held)
    }

    pub fn spread(&self) -> (usize, usize) {
        let held = self.held();
        let c: Vec<usize> = held.iter().map(|w| w.connectors.len()).collect();
        let t: Vec<usize> = held.iter().map(|w| w.tasks.len()).collect();
        let d = |v: &[usize]| v.iter().max().unwrap_or(&0) - v.iter().min().unwrap_or(&0);
        (d(&c), d(&t))
    }
}

/// Reads a history from raw bytes (the fuzzer's input): each event is a tag byte and one to three
/// argument bytes, with the same ranges as the property test's strategy; a short tail is ignored.
pub fn events_from_bytes(data: &[u8]) -> Vec<Event> {
    let mut events = Vec::new();
    let mut rest = data;
    while let [tag, a, tail @ ..] = rest {
        let (event, used) = match tag % 9 {
            0 => (Event::Join { url: a % 6 }, 0),
            1 => (Event::Crash { pick: *a }, 0),
            2 => (Event::Restart { pick: *a }, 0),
            3 => (Event::Stall { pick: *a }, 0),
            4 => (Event::Resume { pick: *a }, 0),
            5 => (Event::AddConnector { tasks: a % 6 }, 0),
            6 => (Event::RemoveConnector { pick: *a }, 0),
            7 => match tail {
                [b, ..] => (
                    Event::SetTasks {
                        pick: *a,
                        tasks: b % 6,
                    },
                    1,
                ),
                [] => break,
            },
            _ => match tail {
                [b, c, ..] => (
                    Event::Wait {
                        ms: u32::from_le_bytes([*a, *b, *c, 0]) % 400_000,
                    },
                    2,
                ),
                _ => break,
            },
        };
        events.push(event);
        rest = &tail[used..];
    }
    events
}

pub fn run_history(events: &[Event], rejoin_by_url: bool) {
    let mut sim = Sim::new(rejoin_by_url);
    sim.join("http://w0:8083/");
    sim.settle();
    for e in events {
        sim.apply(e);
        let due = sim.rejoin_at.is_some_and(|t| sim.now >= t);
        // Membership and config changes trigger a rebalance; so does a due scheduled one.
        if !matches!(e, Event::Wait { .. }) || due {
            sim.settle();
        }
    }
    if sim.members.is_empty() {
        return;
    }
    // The delay passes: within two rounds, everything configured runs somewhere.
    sim.now += MAX_DELAY + 1;
    let (revoked, _) = sim.round();
    if revoked || !sim.unassigned().is_empty() {
        sim.round();
    }
    assert!(
        sim.unassigned().is_empty(),
        "not assigned two rounds after the delay: {:?}",
        sim.unassigned()
    );
    // Then, following the rejoins members are asked for, the spread evens out.
    for _ in 0..12 {
        let (revoked, delay) = sim.round();
        if !revoked && delay == 0 && sim.spread().0 <= 1 && sim.spread().1 <= 1 {
            break;
        }
        if delay > 0 {
            sim.now += i64::from(delay);
        }
    }
    assert!(sim.unassigned().is_empty());
    assert!(
        sim.spread().0 <= 1 && sim.spread().1 <= 1,
        "spread (connectors, tasks) {:?}",
        sim.spread()
    );
}
