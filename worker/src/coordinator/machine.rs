//! Kafka's classic group membership (JoinGroup, SyncGroup, Heartbeat, LeaveGroup) as a sans-IO
//! state machine: responses and the clock go in, requests come out, and the member's callbacks
//! (metadata, assignment, join complete) are called at the points Java's `AbstractCoordinator`
//! calls them. librdkafka only speaks the `consumer` protocol type, so Connect's `connect` group
//! needs its own client; keeping the logic free of I/O lets every error path be tested with
//! scripted responses.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

/// Kafka error codes the machine reacts to.
pub mod code {
    pub const NONE: i16 = 0;
    pub const COORDINATOR_LOAD_IN_PROGRESS: i16 = 14;
    pub const COORDINATOR_NOT_AVAILABLE: i16 = 15;
    pub const NOT_COORDINATOR: i16 = 16;
    pub const ILLEGAL_GENERATION: i16 = 22;
    pub const INCONSISTENT_GROUP_PROTOCOL: i16 = 23;
    pub const INVALID_GROUP_ID: i16 = 24;
    pub const UNKNOWN_MEMBER_ID: i16 = 25;
    pub const INVALID_SESSION_TIMEOUT: i16 = 26;
    pub const REBALANCE_IN_PROGRESS: i16 = 27;
    pub const GROUP_AUTHORIZATION_FAILED: i16 = 30;
    pub const MEMBER_ID_REQUIRED: i16 = 79;
    pub const GROUP_MAX_SIZE_REACHED: i16 = 81;
    pub const FENCED_INSTANCE_ID: i16 = 82;

    /// Kafka's name for a code, for logs and errors.
    pub fn name(code: i16) -> &'static str {
        match code {
            NONE => "NONE",
            COORDINATOR_LOAD_IN_PROGRESS => "COORDINATOR_LOAD_IN_PROGRESS",
            COORDINATOR_NOT_AVAILABLE => "COORDINATOR_NOT_AVAILABLE",
            NOT_COORDINATOR => "NOT_COORDINATOR",
            ILLEGAL_GENERATION => "ILLEGAL_GENERATION",
            INCONSISTENT_GROUP_PROTOCOL => "INCONSISTENT_GROUP_PROTOCOL",
            INVALID_GROUP_ID => "INVALID_GROUP_ID",
            UNKNOWN_MEMBER_ID => "UNKNOWN_MEMBER_ID",
            INVALID_SESSION_TIMEOUT => "INVALID_SESSION_TIMEOUT",
            REBALANCE_IN_PROGRESS => "REBALANCE_IN_PROGRESS",
            GROUP_AUTHORIZATION_FAILED => "GROUP_AUTHORIZATION_FAILED",
            MEMBER_ID_REQUIRED => "MEMBER_ID_REQUIRED",
            GROUP_MAX_SIZE_REACHED => "GROUP_MAX_SIZE_REACHED",
            FENCED_INSTANCE_ID => "FENCED_INSTANCE_ID",
            _ => "UNKNOWN_SERVER_ERROR",
        }
    }
}

/// Group settings, from the worker config.
#[derive(Debug, Clone)]
pub struct GroupSettings {
    pub group_id: String,
    pub protocol_type: String,
    pub session_timeout: Duration,
    pub rebalance_timeout: Duration,
    pub heartbeat_interval: Duration,
    pub retry_backoff: Duration,
    /// How long an ordinary request may take before it counts as failed.
    pub request_timeout: Duration,
}

impl GroupSettings {
    /// A Connect group with Java's `DistributedConfig` defaults: session 10 s, rebalance 60 s,
    /// heartbeat 3 s, retry back-off 100 ms, request timeout 40 s.
    pub fn connect(group_id: impl Into<String>) -> Self {
        Self {
            group_id: group_id.into(),
            protocol_type: tributary_connect_protocol::metadata::PROTOCOL_TYPE.to_string(),
            session_timeout: Duration::from_secs(10),
            rebalance_timeout: Duration::from_secs(60),
            heartbeat_interval: Duration::from_secs(3),
            retry_backoff: Duration::from_millis(100),
            request_timeout: Duration::from_secs(40),
        }
    }
}

/// What a group member decides; Java's `AbstractCoordinator` template methods.
pub trait GroupMember {
    /// The protocols offered, most preferred first, with this member's metadata for each; asked
    /// each time a JoinGroup is built.
    fn metadata(&mut self) -> Vec<(String, Vec<u8>)>;
    /// Once per rebalance, before the first JoinGroup of it.
    fn on_join_prepare(&mut self, generation: i32, member_id: &str);
    /// Leader only: an assignment for every member, from their metadata for `protocol`.
    fn assign(
        &mut self,
        leader_id: &str,
        protocol: &str,
        members: &[(String, Vec<u8>)],
        generation: i32,
    ) -> BTreeMap<String, Vec<u8>>;
    /// The round is over: this member's assignment.
    fn on_join_complete(
        &mut self,
        generation: i32,
        member_id: &str,
        protocol: &str,
        assignment: &[u8],
    );
    /// Until when this member is sure the coordinator still counts it in its generation (the
    /// last answered heartbeat plus the session timeout), or `None` while it is not a stable
    /// member. Told after every step; a worker writes nothing under its generation past it.
    fn on_membership(&mut self, _valid_until: Option<Instant>, _generation: i32) {}
}

/// Requests the machine wants sent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Request {
    FindCoordinator {
        key: String,
    },
    JoinGroup {
        group_id: String,
        member_id: String,
        protocol_type: String,
        protocols: Vec<(String, Vec<u8>)>,
        session_timeout_ms: i32,
        rebalance_timeout_ms: i32,
    },
    SyncGroup {
        group_id: String,
        generation: i32,
        member_id: String,
        protocol_type: String,
        protocol: String,
        assignments: Vec<(String, Vec<u8>)>,
    },
    Heartbeat {
        group_id: String,
        generation: i32,
        member_id: String,
    },
    LeaveGroup {
        group_id: String,
        member_id: String,
    },
}

/// Responses, reduced to what the machine needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Response {
    FindCoordinator {
        error: i16,
        node: Option<Node>,
    },
    JoinGroup {
        error: i16,
        generation: i32,
        protocol: Option<String>,
        leader: String,
        member_id: String,
        /// Filled for the leader only.
        members: Vec<(String, Vec<u8>)>,
    },
    SyncGroup {
        error: i16,
        assignment: Vec<u8>,
    },
    Heartbeat {
        error: i16,
    },
    LeaveGroup {
        error: i16,
    },
}

/// A broker.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Node {
    pub id: i32,
    pub host: String,
    pub port: i32,
}

/// Where a request goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Target {
    /// Any bootstrap broker (FindCoordinator).
    AnyBroker,
    /// The group coordinator.
    Coordinator,
}

/// A request to send, with an id its response or failure must carry back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outgoing {
    pub id: u64,
    pub target: Target,
    pub request: Request,
    /// After this long without a response, report [`Input::Failed`].
    pub timeout: Duration,
}

/// What comes in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Input {
    Response {
        id: u64,
        response: Response,
    },
    /// No response: connection lost, timeout, or a broker error below the group protocol.
    Failed {
        id: u64,
        reason: String,
    },
    /// Time passed; nothing else.
    Tick,
    /// The member wants a rebalance (new config, revocation follow-up, scheduled delay).
    Rejoin,
    /// Leave the group (shutdown).
    Leave,
}

/// What the I/O loop must do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Output {
    Send(Outgoing),
    /// The coordinator changed (or is unknown): connect to this one, drop the old connection.
    Coordinator(Option<Node>),
    /// The member cannot be in this group; the message says why and what to fix.
    Fatal(String),
    /// LeaveGroup is done (or was not needed).
    Left,
}

/// Where the member is in the protocol.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    /// Needs to (re)join as soon as a coordinator is known.
    Unjoined,
    Joining,
    Syncing,
    Stable,
    Leaving,
    Left,
    Failed,
}

#[derive(Debug)]
pub struct GroupMachine {
    settings: GroupSettings,
    phase: Phase,
    coordinator: Option<Node>,
    coordinator_unknown_since: Option<Instant>,
    finding: Option<u64>,
    /// The JoinGroup, SyncGroup or LeaveGroup in flight.
    pending: Option<u64>,
    heartbeat_in_flight: Option<u64>,
    next_heartbeat: Option<Instant>,
    last_heartbeat_ok: Option<Instant>,
    /// The last time the coordinator confirmed this member's generation (a completed
    /// SyncGroup or an answered heartbeat); unlike `last_heartbeat_ok`, never set to "now"
    /// for pacing.
    confirmed_at: Option<Instant>,
    /// When the request in flight (`pending` / `heartbeat_in_flight`) was sent: an answer confirms
    /// the membership as of then, not as of its arrival (an answer read after a SIGSTOP or a cut
    /// network says nothing about the time in between).
    pending_sent_at: Option<Instant>,
    heartbeat_sent_at: Option<Instant>,
    /// A cooperative rejoin begun while the membership held: the coordinator keeps a member whose
    /// JoinGroup it holds until the rebalance timeout, so the membership holds that long too
    /// (a slow member can stretch a rebalance well past the session timeout).
    join_lease: Option<Instant>,
    retry_at: Option<Instant>,
    member_id: String,
    generation: i32,
    protocol: Option<String>,
    /// Whether `on_join_prepare` is due before the next JoinGroup.
    needs_prepare: bool,
    /// A rebalance was asked for while stable.
    rejoin_requested: bool,
    next_id: u64,
}

impl GroupMachine {
    pub fn new(settings: GroupSettings, now: Instant) -> Self {
        Self {
            settings,
            phase: Phase::Unjoined,
            coordinator: None,
            coordinator_unknown_since: Some(now),
            finding: None,
            pending: None,
            heartbeat_in_flight: None,
            next_heartbeat: None,
            last_heartbeat_ok: None,
            confirmed_at: None,
            pending_sent_at: None,
            heartbeat_sent_at: None,
            join_lease: None,
            retry_at: None,
            member_id: String::new(),
            generation: -1,
            protocol: None,
            needs_prepare: true,
            rejoin_requested: false,
            next_id: 0,
        }
    }

    pub fn phase(&self) -> Phase {
        self.phase
    }

    pub fn member_id(&self) -> &str {
        &self.member_id
    }

    pub fn generation(&self) -> i32 {
        self.generation
    }

    pub fn protocol(&self) -> Option<&str> {
        self.protocol.as_deref()
    }

    pub fn coordinator(&self) -> Option<&Node> {
        self.coordinator.as_ref()
    }

    /// Since when no coordinator has been known (Connect stops its work after a while).
    pub fn coordinator_unknown_since(&self) -> Option<Instant> {
        self.coordinator_unknown_since
    }

    /// See [`GroupMember::on_membership`].
    pub fn membership_valid_until(&self) -> Option<Instant> {
        // No coordinator known: nobody confirms anything.
        self.coordinator.as_ref()?;
        match self.phase {
            Phase::Stable => self.confirmed_at.map(|t| t + self.settings.session_timeout),
            Phase::Joining | Phase::Syncing => self.join_lease,
            _ => None,
        }
    }

    /// When the machine next needs a [`Input::Tick`] if nothing else arrives.
    pub fn next_wakeup(&self) -> Option<Instant> {
        let session = self
            .last_heartbeat_ok
            .filter(|_| self.phase == Phase::Stable)
            .map(|t| t + self.settings.session_timeout);
        [self.retry_at, self.next_heartbeat, session]
            .into_iter()
            .flatten()
            .min()
    }

    /// Feeds one input; returns what to do.
    pub fn handle(
        &mut self,
        now: Instant,
        input: Input,
        member: &mut dyn GroupMember,
    ) -> Vec<Output> {
        let mut out = Vec::new();
        match input {
            Input::Tick => {}
            Input::Rejoin => {
                if self.phase == Phase::Stable {
                    self.rejoin_requested = true;
                }
            }
            Input::Leave => self.leave(&mut out),
            Input::Response { id, response } => self.response(now, id, response, member, &mut out),
            Input::Failed { id, reason } => self.failed(now, id, &reason, &mut out),
        }
        self.step(now, member, &mut out);
        out
    }

    fn send(&mut self, out: &mut Vec<Output>, target: Target, request: Request) -> u64 {
        self.next_id += 1;
        let timeout = match request {
            // The coordinator holds a JoinGroup until the rebalance completes.
            Request::JoinGroup { .. } => self.settings.rebalance_timeout + Duration::from_secs(5),
            _ => self.settings.request_timeout,
        };
        out.push(Output::Send(Outgoing {
            id: self.next_id,
            target,
            request,
            timeout,
        }));
        self.next_id
    }

    fn coordinator_lost(&mut self, now: Instant, out: &mut Vec<Output>) {
        if self.coordinator.take().is_some() {
            out.push(Output::Coordinator(None));
            self.coordinator_unknown_since = Some(now);
        }
        self.heartbeat_in_flight = None;
        self.confirmed_at = None;
        self.join_lease = None;
        if matches!(self.phase, Phase::Joining | Phase::Syncing) {
            self.pending = None;
            self.phase = Phase::Unjoined;
        }
    }

    /// Forget the generation (and the member id when the coordinator no longer knows it), and
    /// join again.
    fn reset(&mut self, forget_member_id: bool) {
        self.generation = -1;
        self.confirmed_at = None;
        self.join_lease = None;
        self.protocol = None;
        if forget_member_id {
            self.member_id.clear();
        }
        self.pending = None;
        self.heartbeat_in_flight = None;
        self.next_heartbeat = None;
        if !matches!(self.phase, Phase::Leaving | Phase::Left | Phase::Failed) {
            self.phase = Phase::Unjoined;
        }
    }

    fn fatal(&mut self, out: &mut Vec<Output>, what: &str, error: i16) {
        let hint = match error {
            code::GROUP_AUTHORIZATION_FAILED => {
                format!(
                    "; grant the worker's principal Read on group {}",
                    self.settings.group_id
                )
            }
            code::INCONSISTENT_GROUP_PROTOCOL => format!(
                "; group.id {} is used by clients of another kind (protocol type other than {}); give the Connect cluster its own group.id",
                self.settings.group_id, self.settings.protocol_type
            ),
            code::INVALID_SESSION_TIMEOUT => format!(
                "; session.timeout.ms={} is outside the broker's group.min.session.timeout.ms..group.max.session.timeout.ms",
                self.settings.session_timeout.as_millis()
            ),
            code::GROUP_MAX_SIZE_REACHED => {
                "; the broker's group.max.size is reached; raise it or run fewer workers".into()
            }
            _ => String::new(),
        };
        self.phase = Phase::Failed;
        self.pending = None;
        out.push(Output::Fatal(format!(
            "{what} for group {} failed: {}{hint}",
            self.settings.group_id,
            code::name(error)
        )));
    }

    fn leave(&mut self, out: &mut Vec<Output>) {
        if matches!(self.phase, Phase::Left | Phase::Leaving | Phase::Failed) {
            return;
        }
        if self.member_id.is_empty() || self.coordinator.is_none() {
            self.phase = Phase::Left;
            out.push(Output::Left);
            return;
        }
        let request = Request::LeaveGroup {
            group_id: self.settings.group_id.clone(),
            member_id: self.member_id.clone(),
        };
        self.pending = Some(self.send(out, Target::Coordinator, request));
        self.heartbeat_in_flight = None;
        self.next_heartbeat = None;
        self.phase = Phase::Leaving;
    }

    fn response(
        &mut self,
        now: Instant,
        id: u64,
        response: Response,
        member: &mut dyn GroupMember,
        out: &mut Vec<Output>,
    ) {
        match response {
            Response::FindCoordinator { error, node } if self.finding == Some(id) => {
                self.finding = None;
                match (error, node) {
                    (code::NONE, Some(node)) => {
                        self.coordinator = Some(node.clone());
                        self.coordinator_unknown_since = None;
                        out.push(Output::Coordinator(Some(node)));
                    }
                    (code::GROUP_AUTHORIZATION_FAILED, _) => {
                        self.fatal(out, "FindCoordinator", error);
                    }
                    _ => self.retry_at = Some(now + self.settings.retry_backoff),
                }
            }
            Response::JoinGroup {
                error,
                generation,
                protocol,
                leader,
                member_id,
                members,
            } if self.pending == Some(id) && self.phase == Phase::Joining => {
                self.pending = None;
                match error {
                    code::NONE => {
                        self.member_id = member_id;
                        self.generation = generation;
                        let protocol = protocol.unwrap_or_default();
                        self.protocol = Some(protocol.clone());
                        let assignments: Vec<(String, Vec<u8>)> = if leader == self.member_id {
                            member
                                .assign(&leader, &protocol, &members, generation)
                                .into_iter()
                                .collect()
                        } else {
                            Vec::new()
                        };
                        let request = Request::SyncGroup {
                            group_id: self.settings.group_id.clone(),
                            generation,
                            member_id: self.member_id.clone(),
                            protocol_type: self.settings.protocol_type.clone(),
                            protocol,
                            assignments,
                        };
                        self.pending = Some(self.send(out, Target::Coordinator, request));
                        self.pending_sent_at = Some(now);
                        self.phase = Phase::Syncing;
                    }
                    code::MEMBER_ID_REQUIRED => {
                        // KIP-394: join again at once with the id the coordinator gave us.
                        self.member_id = member_id;
                        self.phase = Phase::Unjoined;
                    }
                    code::UNKNOWN_MEMBER_ID | code::FENCED_INSTANCE_ID => self.reset(true),
                    code::ILLEGAL_GENERATION => self.reset(false),
                    code::REBALANCE_IN_PROGRESS => self.phase = Phase::Unjoined,
                    code::COORDINATOR_LOAD_IN_PROGRESS => {
                        self.phase = Phase::Unjoined;
                        self.retry_at = Some(now + self.settings.retry_backoff);
                    }
                    code::COORDINATOR_NOT_AVAILABLE | code::NOT_COORDINATOR => {
                        self.phase = Phase::Unjoined;
                        self.coordinator_lost(now, out);
                    }
                    _ => self.fatal(out, "JoinGroup", error),
                }
            }
            Response::SyncGroup { error, assignment }
                if self.pending == Some(id) && self.phase == Phase::Syncing =>
            {
                self.pending = None;
                match error {
                    code::NONE => {
                        self.phase = Phase::Stable;
                        self.rejoin_requested = false;
                        self.needs_prepare = true;
                        self.last_heartbeat_ok = Some(now);
                        self.confirmed_at = Some(self.pending_sent_at.unwrap_or(now));
                        self.join_lease = None;
                        self.next_heartbeat = Some(now + self.settings.heartbeat_interval);
                        // Before the round is handed over, so the herder may write under it.
                        member.on_membership(self.membership_valid_until(), self.generation);
                        let protocol = self.protocol.clone().unwrap_or_default();
                        member.on_join_complete(
                            self.generation,
                            &self.member_id,
                            &protocol,
                            &assignment,
                        );
                    }
                    code::REBALANCE_IN_PROGRESS => self.phase = Phase::Unjoined,
                    code::UNKNOWN_MEMBER_ID | code::FENCED_INSTANCE_ID => self.reset(true),
                    code::ILLEGAL_GENERATION => self.reset(false),
                    code::COORDINATOR_NOT_AVAILABLE | code::NOT_COORDINATOR => {
                        self.phase = Phase::Unjoined;
                        self.coordinator_lost(now, out);
                    }
                    _ => self.fatal(out, "SyncGroup", error),
                }
            }
            Response::Heartbeat { error } if self.heartbeat_in_flight == Some(id) => {
                self.heartbeat_in_flight = None;
                if self.phase != Phase::Stable {
                    return;
                }
                match error {
                    code::NONE => {
                        self.last_heartbeat_ok = Some(now);
                        self.confirmed_at = Some(self.heartbeat_sent_at.unwrap_or(now));
                    }
                    // The coordinator still counts us in: a confirmation too.
                    code::REBALANCE_IN_PROGRESS => {
                        self.confirmed_at = Some(self.heartbeat_sent_at.unwrap_or(now));
                        self.rejoin_requested = true;
                    }
                    code::UNKNOWN_MEMBER_ID | code::FENCED_INSTANCE_ID => self.reset(true),
                    code::ILLEGAL_GENERATION => self.reset(false),
                    code::COORDINATOR_NOT_AVAILABLE | code::NOT_COORDINATOR => {
                        self.coordinator_lost(now, out);
                    }
                    code::COORDINATOR_LOAD_IN_PROGRESS => {}
                    code::GROUP_AUTHORIZATION_FAILED => self.fatal(out, "Heartbeat", error),
                    _ => {}
                }
            }
            Response::LeaveGroup { .. } if self.pending == Some(id) => {
                self.pending = None;
                self.phase = Phase::Left;
                out.push(Output::Left);
            }
            // A response to something no longer asked (a superseded request).
            _ => {}
        }
    }

    fn failed(&mut self, now: Instant, id: u64, reason: &str, out: &mut Vec<Output>) {
        if self.finding == Some(id) {
            tracing::debug!(reason, "FindCoordinator failed");
            self.finding = None;
            self.retry_at = Some(now + self.settings.retry_backoff);
        } else if self.pending == Some(id) {
            tracing::debug!(reason, phase = ?self.phase, "group request failed");
            if self.phase == Phase::Leaving {
                self.pending = None;
                self.phase = Phase::Left;
                out.push(Output::Left);
            } else {
                self.coordinator_lost(now, out);
                self.retry_at = Some(now + self.settings.retry_backoff);
            }
        } else if self.heartbeat_in_flight == Some(id) {
            tracing::debug!(reason, "heartbeat failed");
            self.coordinator_lost(now, out);
        }
    }

    /// Whatever the state calls for now.
    fn step(&mut self, now: Instant, member: &mut dyn GroupMember, out: &mut Vec<Output>) {
        if matches!(self.phase, Phase::Left | Phase::Leaving | Phase::Failed) {
            return;
        }
        if self.retry_at.is_some_and(|t| now < t) {
            return;
        }
        self.retry_at = None;
        // The session runs out without an answered heartbeat: the coordinator is presumed dead.
        if self.phase == Phase::Stable
            && self
                .last_heartbeat_ok
                .is_some_and(|t| now >= t + self.settings.session_timeout)
        {
            tracing::info!(group = %self.settings.group_id, "no heartbeat answered within the session timeout; looking for the coordinator again");
            self.coordinator_lost(now, out);
            self.last_heartbeat_ok = Some(now);
        }
        if self.coordinator.is_none() {
            if self.finding.is_none() {
                let request = Request::FindCoordinator {
                    key: self.settings.group_id.clone(),
                };
                self.finding = Some(self.send(out, Target::AnyBroker, request));
            }
            return;
        }
        let join = match self.phase {
            Phase::Unjoined => true,
            Phase::Stable => self.rejoin_requested,
            _ => false,
        };
        if join {
            if self.needs_prepare {
                member.on_join_prepare(self.generation, &self.member_id);
                self.needs_prepare = false;
            }
            // Only a member that still holds its generation keeps it through the rebalance;
            // one that lost it (reset, session gone) has nothing to keep.
            self.join_lease = self
                .membership_valid_until()
                .filter(|until| self.generation >= 0 && now < *until)
                .map(|_| now + self.settings.rebalance_timeout);
            let request = Request::JoinGroup {
                group_id: self.settings.group_id.clone(),
                member_id: self.member_id.clone(),
                protocol_type: self.settings.protocol_type.clone(),
                protocols: member.metadata(),
                session_timeout_ms: millis(self.settings.session_timeout),
                rebalance_timeout_ms: millis(self.settings.rebalance_timeout),
            };
            self.pending = Some(self.send(out, Target::Coordinator, request));
            self.phase = Phase::Joining;
            self.rejoin_requested = false;
            self.next_heartbeat = None;
            self.heartbeat_in_flight = None;
            return;
        }
        if self.phase == Phase::Stable
            && self.heartbeat_in_flight.is_none()
            && self.next_heartbeat.is_some_and(|t| now >= t)
        {
            let request = Request::Heartbeat {
                group_id: self.settings.group_id.clone(),
                generation: self.generation,
                member_id: self.member_id.clone(),
            };
            self.heartbeat_in_flight = Some(self.send(out, Target::Coordinator, request));
            self.heartbeat_sent_at = Some(now);
            self.next_heartbeat = Some(now + self.settings.heartbeat_interval);
        }
    }
}

fn millis(d: Duration) -> i32 {
    i32::try_from(d.as_millis()).unwrap_or(i32::MAX)
}
