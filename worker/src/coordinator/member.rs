//! A Connect worker as a group member (Java's `WorkerCoordinator`): offers `sessioned`,
//! `compatible` and `default` metadata, runs the assignor when it leads, and keeps its cumulative
//! allocation (what it runs) from the assignments it receives. What the worker does with the
//! work (start, stop) is the herder's; this type reports it through [`MemberView`].

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::mpsc;
use tributary_connect_protocol::assignor::cooperative::{CooperativeAssignor, RoundInput};
use tributary_connect_protocol::assignor::{Leader, Member, Snapshot, assign_eager};
use tributary_connect_protocol::{Assignment, ConnectProtocol, Work, WorkerMetadata};

use super::machine::{GroupMember, Input};

/// A completed round as the herder needs it: what to stop at once and what to run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rebalanced {
    pub generation: i32,
    pub member_id: String,
    pub leader_id: String,
    pub leader_url: String,
    /// CONFIG_MISMATCH: the leader was behind; nothing changes.
    pub failed: bool,
    pub config_offset: i64,
    pub revoked: Work,
    /// Everything this member runs after the round (cumulative under cooperative protocols).
    pub running: Work,
    pub delay_ms: i32,
    /// The group's protocol this round (`sessioned` signs internal requests).
    pub protocol: String,
}

impl Rebalanced {
    /// Whether this member leads the group in this round.
    pub fn leads(&self) -> bool {
        !self.member_id.is_empty() && self.member_id == self.leader_id
    }

    /// A placeholder (generation -1, nothing assigned).
    pub fn empty() -> Self {
        Self {
            generation: -1,
            member_id: String::new(),
            leader_id: String::new(),
            leader_url: String::new(),
            failed: false,
            config_offset: -1,
            revoked: Work::new(),
            running: Work::new(),
            delay_ms: 0,
            protocol: String::new(),
        }
    }
}

/// What the member knows after each round, for the herder and for tests.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MemberView {
    pub generation: i32,
    pub member_id: String,
    pub leader_id: String,
    pub leader_url: String,
    pub protocol: String,
    /// Everything this member runs now.
    pub running: Work,
    /// The last round's assignment error (CONFIG_MISMATCH), 0 when none.
    pub error: i16,
    /// Rounds completed by this member.
    pub rounds: u64,
}

#[derive(Debug)]
pub struct ConnectMember {
    url: String,
    protocol: ConnectProtocol,
    snapshot: Arc<Mutex<Snapshot>>,
    assignor: CooperativeAssignor,
    /// The cumulative assignment, sent back as the metadata allocation (v1/v2).
    allocation: Option<Assignment>,
    last_completed_generation: i32,
    view: Arc<Mutex<MemberView>>,
    /// Rejoin requests (after revocations or a scheduled delay) go to the driver.
    rejoin: mpsc::UnboundedSender<Input>,
    /// The herder, told of every completed round. With a herder, the follow-up rejoin after
    /// revocations is the herder's to send, once it has stopped the revoked work.
    events: Option<Notify>,
    /// Until when the coordinator surely counts this member in (see
    /// [`GroupMember::on_membership`]), shared with the herder.
    membership: Arc<Mutex<Option<(std::time::Instant, i32)>>>,
    /// Rounds begun and completed, for `connect-worker-rebalance-metrics`.
    rebalances: Arc<crate::metrics::worker::Rebalances>,
    /// Leader only: see [`HeldTasks`].
    held: Arc<Mutex<HeldTasks>>,
}

/// The connectors whose tasks the group's members said they still run when the leader last
/// assigned (their JoinGroup allocations), and that round's generation. A member stops revoked
/// tasks — their final offset flush included — before it rejoins, so once a stopped connector
/// is absent here its offsets are nobody's to write but the offsets API's.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct HeldTasks {
    pub generation: i32,
    pub connectors: std::collections::BTreeSet<String>,
}

/// The herder's callback for completed rounds.
pub struct Notify(Box<dyn Fn(Rebalanced) + Send + Sync>);

impl std::fmt::Debug for Notify {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Notify")
    }
}

impl ConnectMember {
    /// `url` is the advertised REST URL; `snapshot` the config topic's view, shared with the
    /// herder; `rejoin` the driver's command channel.
    pub fn new(
        url: impl Into<String>,
        protocol: ConnectProtocol,
        max_delay_ms: i64,
        snapshot: Arc<Mutex<Snapshot>>,
        rejoin: mpsc::UnboundedSender<Input>,
    ) -> Self {
        Self {
            url: url.into(),
            protocol,
            snapshot,
            assignor: CooperativeAssignor::new(max_delay_ms, true),
            allocation: None,
            last_completed_generation: -1,
            view: Arc::default(),
            rejoin,
            events: None,
            membership: Arc::default(),
            rebalances: Arc::default(),
            held: Arc::default(),
        }
    }

    /// Shares what the members held at the leader's last assignment with the herder.
    pub fn with_held_tasks(mut self, held: Arc<Mutex<HeldTasks>>) -> Self {
        self.held = held;
        self
    }

    /// Reports rounds begun and completed to the worker's metrics.
    pub fn with_rebalance_metrics(
        mut self,
        rebalances: Arc<crate::metrics::worker::Rebalances>,
    ) -> Self {
        self.rebalances = rebalances;
        self
    }

    /// Shares until when the membership is sure to hold with the herder, which writes no status
    /// under its generation past that (a worker frozen or cut off past its session).
    pub fn with_membership(
        mut self,
        membership: Arc<Mutex<Option<(std::time::Instant, i32)>>>,
    ) -> Self {
        self.membership = membership;
        self
    }

    /// Reports every completed round to a herder (see [`Rebalanced`]).
    pub fn with_events(mut self, events: impl Fn(Rebalanced) + Send + Sync + 'static) -> Self {
        self.events = Some(Notify(Box::new(events)));
        self
    }

    pub fn view(&self) -> Arc<Mutex<MemberView>> {
        self.view.clone()
    }

    fn snapshot(&self) -> Snapshot {
        self.snapshot.lock().map(|s| s.clone()).unwrap_or_default()
    }

    fn running(&self) -> Work {
        self.allocation
            .as_ref()
            .map(Assignment::assigned_work)
            .unwrap_or_default()
    }
}

impl GroupMember for ConnectMember {
    fn on_membership(&mut self, valid_until: Option<std::time::Instant>, generation: i32) {
        if let Ok(mut m) = self.membership.lock() {
            *m = valid_until.map(|t| (t, generation));
        }
    }

    fn metadata(&mut self) -> Vec<(String, Vec<u8>)> {
        let offset = self.snapshot().offset;
        self.protocol
            .offered()
            .iter()
            .filter_map(|p| {
                let allocation = (p.version() >= 1)
                    .then(|| self.allocation.clone())
                    .flatten()
                    .map(|a| Assignment {
                        version: p.version(),
                        ..a
                    });
                let meta = WorkerMetadata {
                    version: p.version(),
                    url: self.url.clone(),
                    config_offset: offset,
                    allocation,
                };
                match meta.encode() {
                    Ok(bytes) => Some((p.name().to_string(), bytes)),
                    Err(e) => {
                        tracing::error!(error = %e, "cannot encode member metadata");
                        None
                    }
                }
            })
            .collect()
    }

    fn on_join_prepare(&mut self, _generation: i32, _member_id: &str) {
        self.rebalances.started();
        if !self.protocol.is_cooperative() {
            // Eager: everything stops before the rebalance.
            self.allocation = None;
        }
    }

    fn assign(
        &mut self,
        leader_id: &str,
        protocol: &str,
        members: &[(String, Vec<u8>)],
        generation: i32,
    ) -> BTreeMap<String, Vec<u8>> {
        let chosen = ConnectProtocol::from_name(protocol).unwrap_or(ConnectProtocol::Eager);
        let decoded: Vec<Member> = members
            .iter()
            .filter_map(|(id, bytes)| match WorkerMetadata::decode(bytes) {
                Ok(m) => Some(Member::from_metadata(id.clone(), &m)),
                Err(e) => {
                    tracing::warn!(member = %id, error = %e, "member metadata does not decode; leaving it out");
                    None
                }
            })
            .collect();
        if let Ok(mut held) = self.held.lock() {
            *held = HeldTasks {
                generation,
                connectors: decoded
                    .iter()
                    .flat_map(|m| m.allocation.tasks.iter().map(|t| t.connector.clone()))
                    .collect(),
            };
        }
        let leader = Leader {
            id: leader_id.to_string(),
            url: self.url.clone(),
        };
        let snapshot = self.snapshot();
        let round = if chosen.is_cooperative() {
            let now_ms = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
                .unwrap_or(0);
            self.assignor.assign(RoundInput {
                now_ms,
                generation,
                last_completed_generation: self.last_completed_generation,
                leader: &leader,
                snapshot: &snapshot,
                members: &decoded,
                version: chosen.version(),
            })
        } else {
            assign_eager(&leader, &snapshot, &decoded)
        };
        round
            .assignments
            .into_iter()
            .filter_map(|(id, a)| match a.encode() {
                Ok(bytes) => Some((id, bytes)),
                Err(e) => {
                    tracing::error!(member = %id, error = %e, "cannot encode an assignment");
                    None
                }
            })
            .collect()
    }

    fn on_join_complete(&mut self, generation: i32, member_id: &str, protocol: &str, bytes: &[u8]) {
        self.last_completed_generation = generation;
        let assignment = match Assignment::decode(bytes) {
            Ok(a) => a,
            Err(e) => {
                tracing::warn!(error = %e, "the assignment does not decode; rejoining");
                let _ = self.rejoin.send(Input::Rejoin);
                return;
            }
        };
        let revoked = assignment.revoked_work();
        if assignment.failed() {
            // The leader's config was behind: nothing changes; rejoin once caught up.
            tracing::info!(
                offset = assignment.config_offset,
                "assignment failed (config mismatch); rejoining"
            );
            // With a herder, it rejoins once it has read the config topic further.
            if self.events.is_none() {
                let _ = self.rejoin.send(Input::Rejoin);
            }
        } else {
            let chosen = ConnectProtocol::from_name(protocol).unwrap_or(ConnectProtocol::Eager);
            let mut running = if chosen.is_cooperative() {
                self.running()
            } else {
                Work::new()
            };
            running.apply(&assignment);
            self.allocation = Some(Assignment {
                assigned: Some(running.to_wire()),
                revoked: Some(Vec::new()),
                delay_ms: 0,
                ..assignment.clone()
            });
            if !revoked.is_empty() && self.events.is_none() {
                // The freed work goes to others in a follow-up round.
                let _ = self.rejoin.send(Input::Rejoin);
            }
            if assignment.delay_ms > 0 {
                let tx = self.rejoin.clone();
                let delay = Duration::from_millis(u64::try_from(assignment.delay_ms).unwrap_or(0));
                tokio::spawn(async move {
                    tokio::time::sleep(delay).await;
                    let _ = tx.send(Input::Rejoin);
                });
            }
        }
        let running = self.running();
        self.rebalances.completed(
            generation,
            &assignment.leader_url,
            protocol,
            (running.connectors.len(), running.tasks.len()),
        );
        if let Ok(mut v) = self.view.lock() {
            *v = MemberView {
                generation,
                member_id: member_id.to_string(),
                leader_id: assignment.leader.clone(),
                leader_url: assignment.leader_url.clone(),
                protocol: protocol.to_string(),
                running: self.running(),
                error: assignment.error,
                rounds: v.rounds + 1,
            };
        }
        if let Some(Notify(events)) = &self.events {
            events(Rebalanced {
                generation,
                member_id: member_id.to_string(),
                leader_id: assignment.leader.clone(),
                leader_url: assignment.leader_url.clone(),
                failed: assignment.failed(),
                config_offset: assignment.config_offset,
                revoked,
                running: self.running(),
                delay_ms: assignment.delay_ms,
                protocol: protocol.to_string(),
            });
        }
    }
}
