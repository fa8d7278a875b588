//! The assignment a leader sends each member in SyncGroup (`ConnectProtocol.Assignment` v0 and
//! `ExtendedAssignment` v1/v2), and the set view of connectors and tasks the assignors work on.
//!
//! [`Assignment`] keeps the wire's structure (per-connector task lists in wire order, null versus
//! empty arrays) so that bytes written by Java decode and re-encode identically.

use std::collections::BTreeSet;

use crate::wire::{Reader, Writer};
use crate::{Error, Result};

/// The task id that stands for the connector instance itself in assignment task lists.
pub const CONNECTOR_TASK: i32 = -1;

/// Assignment error codes.
pub const NO_ERROR: i16 = 0;
/// The leader's config snapshot was behind a member's; rejoin after reading the config topic.
pub const CONFIG_MISMATCH: i16 = 1;

/// A connector task, ordered by connector and then task number as Java's `ConnectorTaskId`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct TaskId {
    pub connector: String,
    pub task: i32,
}

impl TaskId {
    pub fn new(connector: impl Into<String>, task: i32) -> Self {
        Self {
            connector: connector.into(),
            task,
        }
    }
}

impl std::fmt::Display for TaskId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}-{}", self.connector, self.task)
    }
}

/// Connectors and tasks as sets: what a member runs, what was lost, what is configured.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Work {
    pub connectors: BTreeSet<String>,
    pub tasks: BTreeSet<TaskId>,
}

impl Work {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn is_empty(&self) -> bool {
        self.connectors.is_empty() && self.tasks.is_empty()
    }

    pub fn len(&self) -> usize {
        self.connectors.len() + self.tasks.len()
    }

    /// `self − other`, on connectors and tasks alike.
    pub fn minus(&self, other: &Work) -> Work {
        Work {
            connectors: self
                .connectors
                .difference(&other.connectors)
                .cloned()
                .collect(),
            tasks: self.tasks.difference(&other.tasks).cloned().collect(),
        }
    }

    pub fn intersect(&self, other: &Work) -> Work {
        Work {
            connectors: self
                .connectors
                .intersection(&other.connectors)
                .cloned()
                .collect(),
            tasks: self.tasks.intersection(&other.tasks).cloned().collect(),
        }
    }

    pub fn add(&mut self, other: &Work) {
        self.connectors.extend(other.connectors.iter().cloned());
        self.tasks.extend(other.tasks.iter().cloned());
    }

    pub fn remove(&mut self, other: &Work) {
        self.connectors.retain(|c| !other.connectors.contains(c));
        self.tasks.retain(|t| !other.tasks.contains(t));
    }

    /// Whether any connector or task is in both.
    pub fn overlaps(&self, other: &Work) -> bool {
        self.connectors.iter().any(|c| other.connectors.contains(c))
            || self.tasks.iter().any(|t| other.tasks.contains(t))
    }

    /// A cooperative member's round: stop what the assignment revokes, add what it assigns.
    pub fn apply(&mut self, assignment: &Assignment) {
        self.remove(&assignment.revoked_work());
        self.add(&assignment.assigned_work());
    }

    /// The union of many.
    pub fn union<'a>(all: impl IntoIterator<Item = &'a Work>) -> Work {
        let mut out = Work::new();
        for w in all {
            out.add(w);
        }
        out
    }

    /// The wire's grouping: connectors first, then tasks, one entry per connector in the order
    /// first seen (Java's `asMap`), -1 for the connector instance.
    pub fn to_wire(&self) -> Vec<ConnectorAssignment> {
        let mut out: Vec<ConnectorAssignment> = Vec::new();
        let mut entry =
            |connector: &str, task: i32| match out.iter_mut().find(|e| e.connector == connector) {
                Some(e) => e.tasks.push(task),
                None => out.push(ConnectorAssignment {
                    connector: connector.to_string(),
                    tasks: vec![task],
                }),
            };
        for c in &self.connectors {
            entry(c, CONNECTOR_TASK);
        }
        for t in &self.tasks {
            entry(&t.connector, t.task);
        }
        out
    }

    /// The set view of wire entries.
    pub fn from_wire(entries: &[ConnectorAssignment]) -> Work {
        let mut out = Work::new();
        for e in entries {
            for &t in &e.tasks {
                if t == CONNECTOR_TASK {
                    out.connectors.insert(e.connector.clone());
                } else {
                    out.tasks.insert(TaskId::new(e.connector.clone(), t));
                }
            }
        }
        out
    }
}

/// One connector's entry in an assignment: the connector instance (task -1) and/or task numbers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConnectorAssignment {
    pub connector: String,
    pub tasks: Vec<i32>,
}

/// A SyncGroup assignment, v0 (eager) or v1/v2 (incremental cooperative; v2 when the group's
/// protocol is `sessioned`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Assignment {
    pub version: i16,
    /// [`NO_ERROR`] or [`CONFIG_MISMATCH`].
    pub error: i16,
    /// The leader's member id.
    pub leader: String,
    pub leader_url: String,
    /// The config-topic offset the assignment was computed at.
    pub config_offset: i64,
    /// v0: the member's complete assignment; v1/v2: only what is new this round. `None` is a null
    /// array on the wire.
    pub assigned: Option<Vec<ConnectorAssignment>>,
    /// v1/v2 only: what the member must stop.
    pub revoked: Option<Vec<ConnectorAssignment>>,
    /// v1/v2 only: milliseconds until the member should rejoin (a scheduled rebalance), 0 for none.
    pub delay_ms: i32,
}

impl Assignment {
    /// The work newly assigned (v1/v2) or assigned (v0).
    pub fn assigned_work(&self) -> Work {
        Work::from_wire(self.assigned.as_deref().unwrap_or_default())
    }

    pub fn revoked_work(&self) -> Work {
        Work::from_wire(self.revoked.as_deref().unwrap_or_default())
    }

    pub fn failed(&self) -> bool {
        self.error != NO_ERROR
    }

    /// Reads an assignment the way Java members do: the version header, then the v1 schema with
    /// missing trailing fields defaulted (so v0 reads as no revocations and no delay) and trailing
    /// bytes ignored.
    pub fn decode(bytes: &[u8]) -> Result<Assignment> {
        let mut r = Reader::new(bytes, "Connect assignment");
        let version = r.i16("version")?;
        if version < 0 {
            return Err(Error::Invalid {
                what: "Connect assignment",
                field: "version",
                reason: format!("version {version} is negative"),
            });
        }
        let error = r.i16("error")?;
        let leader = r.string("leader")?;
        let leader_url = r.string("leader-url")?;
        let config_offset = r.i64("config-offset")?;
        let assigned = read_entries(&mut r, "assignment")?;
        let revoked = if r.is_empty() {
            None
        } else {
            read_entries(&mut r, "revoked")?
        };
        let delay_ms = if r.is_empty() { 0 } else { r.i32("delay")? };
        Ok(Assignment {
            version,
            error,
            leader,
            leader_url,
            config_offset,
            assigned,
            revoked,
            delay_ms,
        })
    }

    /// Writes the assignment in its version's schema (v0 without revocations and delay, as Java
    /// writes it).
    pub fn encode(&self) -> Result<Vec<u8>> {
        let mut w = Writer::new();
        w.i16(self.version);
        w.i16(self.error);
        w.string("leader", &self.leader)?;
        w.string("leader-url", &self.leader_url)?;
        w.i64(self.config_offset);
        // Java never writes a null v0 array, nor v1 fields after a v0 header; members read every
        // assignment with the v1 schema, so bytes that carry them anyway are written back as read.
        write_entries(&mut w, "assignment", self.assigned.as_deref())?;
        if self.version != 0 || self.revoked.is_some() || self.delay_ms != 0 {
            write_entries(&mut w, "revoked", self.revoked.as_deref())?;
            w.i32(self.delay_ms);
        }
        Ok(w.buf)
    }
}

/// Each entry is at least a string length (2) and a task count (4).
const MIN_ENTRY: usize = 6;

fn read_entries(
    r: &mut Reader<'_>,
    field: &'static str,
) -> Result<Option<Vec<ConnectorAssignment>>> {
    let Some(n) = r.array_len(field, true, MIN_ENTRY)? else {
        return Ok(None);
    };
    let mut out = Vec::with_capacity(n);
    for _ in 0..n {
        let connector = r.string("connector")?;
        let count = r.array_len("tasks", false, 4)?.unwrap_or_default();
        let mut tasks = Vec::with_capacity(count);
        for _ in 0..count {
            tasks.push(r.i32("tasks")?);
        }
        out.push(ConnectorAssignment { connector, tasks });
    }
    Ok(Some(out))
}

fn write_entries(
    w: &mut Writer,
    field: &'static str,
    entries: Option<&[ConnectorAssignment]>,
) -> Result<()> {
    w.array_len(field, entries.map(<[_]>::len))?;
    for e in entries.unwrap_or_default() {
        w.string("connector", &e.connector)?;
        w.array_len("tasks", Some(e.tasks.len()))?;
        for &t in &e.tasks {
            w.i32(t);
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hex(s: &str) -> Vec<u8> {
        let s: String = s.chars().filter(|c| !c.is_whitespace()).collect();
        (0..s.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap_or_else(|e| panic!("{e}")))
            .collect()
    }

    /// connect-compat.md §4.4: leader m1, url http://w1:8083/, offset 5, connector c1 and task
    /// c1-0 assigned, nothing revoked, no delay.
    #[test]
    fn the_v2_assignment_example_decodes_and_encodes_byte_exact() {
        let url = "687474703a2f2f77313a383038332f";
        let bytes = hex(&format!(
            "0002 0000 0002 6d31 000f {url} 0000000000000005 00000001 0002 6331 00000002 ffffffff 00000000 00000000 00000000"
        ));
        let a = Assignment::decode(&bytes).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(a.version, 2);
        assert_eq!(a.error, NO_ERROR);
        assert_eq!(a.leader, "m1");
        assert_eq!(a.leader_url, "http://w1:8083/");
        assert_eq!(a.config_offset, 5);
        let work = a.assigned_work();
        assert_eq!(work.connectors, BTreeSet::from(["c1".to_string()]));
        assert_eq!(work.tasks, BTreeSet::from([TaskId::new("c1", 0)]));
        assert_eq!(a.revoked, Some(vec![]));
        assert_eq!(a.delay_ms, 0);
        assert_eq!(a.encode().unwrap_or_else(|e| panic!("{e}")), bytes);
        // Built from the set view, the same bytes.
        let built = Assignment {
            assigned: Some(work.to_wire()),
            ..a.clone()
        };
        assert_eq!(built.encode().unwrap_or_else(|e| panic!("{e}")), bytes);
    }

    #[test]
    fn a_v0_assignment_reads_with_no_revocations_and_no_delay() {
        let a = Assignment {
            version: 0,
            error: CONFIG_MISMATCH,
            leader: "m1".into(),
            leader_url: "http://w1:8083/".into(),
            config_offset: 9,
            assigned: Some(vec![]),
            revoked: None,
            delay_ms: 0,
        };
        let bytes = a.encode().unwrap_or_else(|e| panic!("{e}"));
        // version, error, leader, url, offset, empty array: no revoked, no delay.
        assert_eq!(bytes.len(), 2 + 2 + 4 + 17 + 8 + 4);
        assert_eq!(Assignment::decode(&bytes), Ok(a));
    }

    #[test]
    fn truncated_and_hostile_bytes_are_errors_not_panics() {
        assert!(matches!(
            Assignment::decode(&hex("0001 0000 0002 6d")),
            Err(Error::Truncated {
                field: "leader",
                ..
            })
        ));
        // An array count of two billion with four bytes left.
        let e = Assignment::decode(&hex(
            "0001 0000 0000 0000 0000000000000000 7fffffff 00000000",
        ));
        assert!(matches!(
            e,
            Err(Error::Truncated {
                field: "assignment",
                ..
            })
        ));
        assert!(Assignment::decode(&hex("ffff")).is_err());
    }

    #[test]
    fn null_arrays_survive_a_round_trip() {
        let a = Assignment {
            version: 1,
            error: 0,
            leader: "l".into(),
            leader_url: "u".into(),
            config_offset: -1,
            assigned: None,
            revoked: None,
            delay_ms: 300,
        };
        let bytes = a.encode().unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(Assignment::decode(&bytes), Ok(a));
    }
}
