//! The group state machine driven by scripted coordinator responses, one error path at a time.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use super::machine::*;

#[derive(Debug, Default)]
struct FakeMember {
    prepared: Vec<(i32, String)>,
    assigned_for: Vec<Vec<String>>,
    completed: Vec<(i32, String, String, Vec<u8>)>,
}

impl GroupMember for FakeMember {
    fn metadata(&mut self) -> Vec<(String, Vec<u8>)> {
        vec![
            ("sessioned".into(), b"v2".to_vec()),
            ("compatible".into(), b"v1".to_vec()),
            ("default".into(), b"v0".to_vec()),
        ]
    }
    fn on_join_prepare(&mut self, generation: i32, member_id: &str) {
        self.prepared.push((generation, member_id.to_string()));
    }
    fn assign(
        &mut self,
        _leader: &str,
        _protocol: &str,
        members: &[(String, Vec<u8>)],
        _generation: i32,
    ) -> BTreeMap<String, Vec<u8>> {
        self.assigned_for
            .push(members.iter().map(|(id, _)| id.clone()).collect());
        members
            .iter()
            .map(|(id, _)| (id.clone(), format!("for {id}").into_bytes()))
            .collect()
    }
    fn on_join_complete(
        &mut self,
        generation: i32,
        member_id: &str,
        protocol: &str,
        assignment: &[u8],
    ) {
        self.completed.push((
            generation,
            member_id.to_string(),
            protocol.to_string(),
            assignment.to_vec(),
        ));
    }
}

fn settings() -> GroupSettings {
    GroupSettings::connect("connect-cluster")
}

struct Harness {
    m: GroupMachine,
    member: FakeMember,
    now: Instant,
}

impl Harness {
    fn new() -> Self {
        let now = Instant::now();
        Self {
            m: GroupMachine::new(settings(), now),
            member: FakeMember::default(),
            now,
        }
    }

    fn input(&mut self, input: Input) -> Vec<Output> {
        self.m.handle(self.now, input, &mut self.member)
    }

    fn tick_after(&mut self, d: Duration) -> Vec<Output> {
        self.now += d;
        self.input(Input::Tick)
    }

    fn respond(&mut self, id: u64, response: Response) -> Vec<Output> {
        self.input(Input::Response { id, response })
    }

    /// Coordinator found, first join done with MEMBER_ID_REQUIRED, joined as the only member
    /// (leader), synced: stable at generation 1 as "m-1".
    fn stable_leader() -> Self {
        let mut h = Self::new();
        let find = sends(&h.input(Input::Tick));
        let join = sends(&h.respond(find[0].id, found()));
        let join = sends(&h.respond(
            join[0].id,
            join_response(code::MEMBER_ID_REQUIRED, -1, "", "m-1", vec![]),
        ));
        let sync = sends(&h.respond(
            join[0].id,
            join_response(
                code::NONE,
                1,
                "m-1",
                "m-1",
                vec![("m-1".into(), b"v2".to_vec())],
            ),
        ));
        h.respond(
            sync[0].id,
            Response::SyncGroup {
                error: code::NONE,
                assignment: b"mine".to_vec(),
            },
        );
        assert_eq!(h.m.phase(), Phase::Stable);
        h
    }

    /// Runs to the next heartbeat and returns its id.
    fn next_heartbeat(&mut self) -> u64 {
        let hb = sends(&self.tick_after(Duration::from_secs(3)));
        assert!(
            matches!(
                hb.as_slice(),
                [Outgoing {
                    request: Request::Heartbeat { .. },
                    ..
                }]
            ),
            "{hb:?}"
        );
        hb[0].id
    }
}

fn found() -> Response {
    Response::FindCoordinator {
        error: code::NONE,
        node: Some(Node {
            id: 1,
            host: "broker".into(),
            port: 9092,
        }),
    }
}

fn join_response(
    error: i16,
    generation: i32,
    leader: &str,
    member_id: &str,
    members: Vec<(String, Vec<u8>)>,
) -> Response {
    Response::JoinGroup {
        error,
        generation,
        protocol: (error == code::NONE).then(|| "sessioned".to_string()),
        leader: leader.into(),
        member_id: member_id.into(),
        members,
    }
}

fn sends(out: &[Output]) -> Vec<Outgoing> {
    out.iter()
        .filter_map(|o| match o {
            Output::Send(s) => Some(s.clone()),
            _ => None,
        })
        .collect()
}

fn join_member_id(o: &Outgoing) -> String {
    match &o.request {
        Request::JoinGroup { member_id, .. } => member_id.clone(),
        other => panic!("expected a JoinGroup, got {other:?}"),
    }
}

#[test]
fn joins_with_member_id_required_then_leads_and_heartbeats() {
    let mut h = Harness::new();
    let find = sends(&h.input(Input::Tick));
    assert_eq!(find.len(), 1);
    assert_eq!(find[0].target, Target::AnyBroker);
    assert_eq!(
        find[0].request,
        Request::FindCoordinator {
            key: "connect-cluster".into()
        }
    );
    let out = h.respond(find[0].id, found());
    assert!(
        out.iter()
            .any(|o| matches!(o, Output::Coordinator(Some(n)) if n.port == 9092))
    );
    let join = sends(&out);
    assert_eq!(join[0].target, Target::Coordinator);
    match &join[0].request {
        Request::JoinGroup {
            member_id,
            protocol_type,
            protocols,
            session_timeout_ms,
            rebalance_timeout_ms,
            ..
        } => {
            assert_eq!(member_id, "");
            assert_eq!(protocol_type, "connect");
            let names: Vec<&str> = protocols.iter().map(|(n, _)| n.as_str()).collect();
            assert_eq!(names, ["sessioned", "compatible", "default"]);
            assert_eq!(
                (*session_timeout_ms, *rebalance_timeout_ms),
                (10_000, 60_000)
            );
        }
        other => panic!("{other:?}"),
    }
    // The JoinGroup may wait for the whole rebalance.
    assert!(join[0].timeout > Duration::from_secs(60));
    assert_eq!(h.member.prepared, [(-1, String::new())]);
    // KIP-394: the coordinator hands out the id; join again with it, without preparing twice.
    let join = sends(&h.respond(
        join[0].id,
        join_response(code::MEMBER_ID_REQUIRED, -1, "", "m-1", vec![]),
    ));
    assert_eq!(join_member_id(&join[0]), "m-1");
    assert_eq!(h.member.prepared.len(), 1);
    let members = vec![
        ("m-1".to_string(), b"v2".to_vec()),
        ("m-2".to_string(), b"v2".to_vec()),
    ];
    let sync = sends(&h.respond(
        join[0].id,
        join_response(code::NONE, 7, "m-1", "m-1", members),
    ));
    assert_eq!(
        h.member.assigned_for,
        [vec!["m-1".to_string(), "m-2".to_string()]]
    );
    match &sync[0].request {
        Request::SyncGroup {
            generation,
            member_id,
            protocol,
            assignments,
            ..
        } => {
            assert_eq!(
                (*generation, member_id.as_str(), protocol.as_str()),
                (7, "m-1", "sessioned")
            );
            assert_eq!(assignments.len(), 2);
            assert_eq!(assignments[1], ("m-2".to_string(), b"for m-2".to_vec()));
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(h.m.phase(), Phase::Syncing);
    h.respond(
        sync[0].id,
        Response::SyncGroup {
            error: code::NONE,
            assignment: b"for m-1".to_vec(),
        },
    );
    assert_eq!(
        h.member.completed,
        [(
            7,
            "m-1".to_string(),
            "sessioned".to_string(),
            b"for m-1".to_vec()
        )]
    );
    assert_eq!(h.m.phase(), Phase::Stable);
    // Nothing before the heartbeat interval, then a heartbeat of this generation.
    assert!(sends(&h.tick_after(Duration::from_secs(2))).is_empty());
    let hb = sends(&h.tick_after(Duration::from_secs(1)));
    assert_eq!(
        hb[0].request,
        Request::Heartbeat {
            group_id: "connect-cluster".into(),
            generation: 7,
            member_id: "m-1".into()
        }
    );
}

#[test]
fn a_follower_syncs_with_no_assignments_and_never_assigns() {
    let mut h = Harness::new();
    let find = sends(&h.input(Input::Tick));
    let join = sends(&h.respond(find[0].id, found()));
    let sync = sends(&h.respond(
        join[0].id,
        join_response(code::NONE, 3, "m-0", "m-1", vec![]),
    ));
    match &sync[0].request {
        Request::SyncGroup { assignments, .. } => assert!(assignments.is_empty()),
        other => panic!("{other:?}"),
    }
    assert!(h.member.assigned_for.is_empty());
}

#[test]
fn heartbeat_errors_lead_to_the_right_rejoin() {
    // REBALANCE_IN_PROGRESS: rejoin keeping the member id, preparing once more.
    let mut h = Harness::stable_leader();
    let hb = h.next_heartbeat();
    let join = sends(&h.respond(
        hb,
        Response::Heartbeat {
            error: code::REBALANCE_IN_PROGRESS,
        },
    ));
    assert_eq!(join_member_id(&join[0]), "m-1");
    assert_eq!(h.member.prepared.len(), 2);
    assert_eq!(
        h.m.generation(),
        1,
        "the generation is kept for a cooperative rejoin"
    );

    // UNKNOWN_MEMBER_ID: the coordinator forgot us; join as a new member.
    let mut h = Harness::stable_leader();
    let hb = h.next_heartbeat();
    let join = sends(&h.respond(
        hb,
        Response::Heartbeat {
            error: code::UNKNOWN_MEMBER_ID,
        },
    ));
    assert_eq!(join_member_id(&join[0]), "");
    assert_eq!(h.m.generation(), -1);

    // ILLEGAL_GENERATION: same member, generation reset.
    let mut h = Harness::stable_leader();
    let hb = h.next_heartbeat();
    let join = sends(&h.respond(
        hb,
        Response::Heartbeat {
            error: code::ILLEGAL_GENERATION,
        },
    ));
    assert_eq!(join_member_id(&join[0]), "m-1");
    assert_eq!(h.m.generation(), -1);

    // NOT_COORDINATOR: find the coordinator again, stay a member.
    let mut h = Harness::stable_leader();
    let hb = h.next_heartbeat();
    let out = h.respond(
        hb,
        Response::Heartbeat {
            error: code::NOT_COORDINATOR,
        },
    );
    assert!(out.contains(&Output::Coordinator(None)));
    let find = sends(&out);
    assert!(matches!(find[0].request, Request::FindCoordinator { .. }));
    assert_eq!(h.m.phase(), Phase::Stable);
    // Found again: heartbeats resume with the same generation.
    h.respond(find[0].id, found());
    let hb = h.next_heartbeat();
    assert!(hb > 0);
    assert_eq!(h.m.generation(), 1);
}

#[test]
fn join_and_sync_errors() {
    // COORDINATOR_LOAD_IN_PROGRESS: wait the retry back-off, then join again.
    let mut h = Harness::new();
    let find = sends(&h.input(Input::Tick));
    let join = sends(&h.respond(find[0].id, found()));
    let out = h.respond(
        join[0].id,
        join_response(code::COORDINATOR_LOAD_IN_PROGRESS, -1, "", "", vec![]),
    );
    assert!(sends(&out).is_empty());
    assert!(sends(&h.tick_after(Duration::from_millis(50))).is_empty());
    let join = sends(&h.tick_after(Duration::from_millis(60)));
    assert!(matches!(join[0].request, Request::JoinGroup { .. }));

    // NOT_COORDINATOR on join: rediscover, then join.
    let out = h.respond(
        join[0].id,
        join_response(code::NOT_COORDINATOR, -1, "", "", vec![]),
    );
    assert!(out.contains(&Output::Coordinator(None)));
    let find = sends(&out);
    assert!(matches!(find[0].request, Request::FindCoordinator { .. }));
    let join = sends(&h.respond(find[0].id, found()));
    // REBALANCE_IN_PROGRESS on sync: join again at once.
    let sync = sends(&h.respond(
        join[0].id,
        join_response(code::NONE, 2, "m-0", "m-1", vec![]),
    ));
    let join = sends(&h.respond(
        sync[0].id,
        Response::SyncGroup {
            error: code::REBALANCE_IN_PROGRESS,
            assignment: vec![],
        },
    ));
    assert_eq!(join_member_id(&join[0]), "m-1");
    // ILLEGAL_GENERATION on sync: join again with the same id.
    let sync = sends(&h.respond(
        join[0].id,
        join_response(code::NONE, 3, "m-0", "m-1", vec![]),
    ));
    let join = sends(&h.respond(
        sync[0].id,
        Response::SyncGroup {
            error: code::ILLEGAL_GENERATION,
            assignment: vec![],
        },
    ));
    assert_eq!(join_member_id(&join[0]), "m-1");
    // A late answer to a superseded request changes nothing.
    let out = h.respond(
        sync[0].id,
        Response::SyncGroup {
            error: code::NONE,
            assignment: b"stale".to_vec(),
        },
    );
    assert!(out.is_empty());
    assert!(h.member.completed.is_empty());
    assert_eq!(h.m.phase(), Phase::Joining);
}

#[test]
fn fatal_errors_name_the_group_and_the_fix() {
    for (error, needle) in [
        (
            code::GROUP_AUTHORIZATION_FAILED,
            "grant the worker's principal Read on group connect-cluster",
        ),
        (
            code::INCONSISTENT_GROUP_PROTOCOL,
            "give the Connect cluster its own group.id",
        ),
        (code::INVALID_SESSION_TIMEOUT, "session.timeout.ms=10000"),
        (code::GROUP_MAX_SIZE_REACHED, "group.max.size"),
    ] {
        let mut h = Harness::new();
        let find = sends(&h.input(Input::Tick));
        let join = sends(&h.respond(find[0].id, found()));
        let out = h.respond(join[0].id, join_response(error, -1, "", "", vec![]));
        let fatal = out
            .iter()
            .find_map(|o| match o {
                Output::Fatal(m) => Some(m.clone()),
                _ => None,
            })
            .unwrap_or_else(|| panic!("no fatal output for {}", code::name(error)));
        assert!(
            fatal.contains(code::name(error)) && fatal.contains(needle),
            "{fatal}"
        );
        assert_eq!(h.m.phase(), Phase::Failed);
        // Nothing more is sent.
        assert!(sends(&h.tick_after(Duration::from_secs(5))).is_empty());
    }
}

#[test]
fn an_unanswered_session_means_the_coordinator_is_gone() {
    let mut h = Harness::stable_leader();
    // Heartbeats go out and are never answered.
    h.next_heartbeat();
    let out = h.tick_after(Duration::from_secs(3));
    assert!(sends(&out).is_empty(), "one heartbeat in flight at a time");
    let out = h.tick_after(Duration::from_secs(4));
    assert!(out.contains(&Output::Coordinator(None)), "{out:?}");
    assert!(matches!(
        sends(&out)[0].request,
        Request::FindCoordinator { .. }
    ));
    assert!(h.m.coordinator_unknown_since().is_some());
}

#[test]
fn a_failed_request_drops_the_coordinator_and_retries() {
    let mut h = Harness::stable_leader();
    let hb = h.next_heartbeat();
    let out = h.input(Input::Failed {
        id: hb,
        reason: "connection reset".into(),
    });
    assert!(out.contains(&Output::Coordinator(None)));
    // FindCoordinator itself failing: back off, then try again.
    let find = sends(&out);
    let out = h.input(Input::Failed {
        id: find[0].id,
        reason: "connection refused".into(),
    });
    assert!(sends(&out).is_empty());
    let again = sends(&h.tick_after(Duration::from_millis(150)));
    assert!(matches!(again[0].request, Request::FindCoordinator { .. }));
}

#[test]
fn rejoin_on_request_and_leave_on_shutdown() {
    let mut h = Harness::stable_leader();
    let join = sends(&h.input(Input::Rejoin));
    assert_eq!(join_member_id(&join[0]), "m-1");
    let sync = sends(&h.respond(
        join[0].id,
        join_response(code::NONE, 2, "m-1", "m-1", vec![("m-1".into(), vec![])]),
    ));
    h.respond(
        sync[0].id,
        Response::SyncGroup {
            error: code::NONE,
            assignment: vec![],
        },
    );
    assert_eq!(h.member.completed.len(), 2);
    let leave = sends(&h.input(Input::Leave));
    assert_eq!(
        leave[0].request,
        Request::LeaveGroup {
            group_id: "connect-cluster".into(),
            member_id: "m-1".into()
        }
    );
    let out = h.respond(leave[0].id, Response::LeaveGroup { error: code::NONE });
    assert_eq!(out, [Output::Left]);
    assert!(sends(&h.tick_after(Duration::from_secs(10))).is_empty());

    // Never joined: leaving needs no request.
    let mut h = Harness::new();
    assert_eq!(h.input(Input::Leave), [Output::Left]);
}

#[test]
fn membership_holds_a_session_past_the_last_answer_and_not_after_a_freeze() {
    let mut h = Harness::stable_leader();
    let session = settings().session_timeout;
    let synced = h.now;
    assert_eq!(h.m.membership_valid_until(), Some(synced + session));
    // An answered heartbeat moves it on.
    let hb = h.next_heartbeat();
    h.respond(hb, Response::Heartbeat { error: code::NONE });
    assert_eq!(h.m.membership_valid_until(), Some(h.now + session));

    // Frozen past the session: on waking, the machine drops the coordinator and with it the
    // membership, before anything is answered again.
    let answered = h.now;
    h.now += session * 2;
    h.input(Input::Tick);
    assert_eq!(h.m.membership_valid_until(), None);
    assert!(answered + session < h.now);

    // Found again, still "Stable" with its old generation, but not confirmed until a heartbeat
    // is answered: nothing may be written under generation 1 in between.
    let mut h = Harness::stable_leader();
    let hb = h.next_heartbeat();
    let out = h.respond(
        hb,
        Response::Heartbeat {
            error: code::NOT_COORDINATOR,
        },
    );
    h.respond(sends(&out)[0].id, found());
    assert_eq!(h.m.phase(), Phase::Stable);
    assert_eq!(h.m.membership_valid_until(), None);
    let hb = h.next_heartbeat();
    h.respond(
        hb,
        Response::Heartbeat {
            error: code::UNKNOWN_MEMBER_ID,
        },
    );
    assert_eq!(
        h.m.membership_valid_until(),
        None,
        "a rejoin is not a membership"
    );
}

#[test]
fn a_cooperative_rejoin_keeps_the_membership_for_the_rebalance_timeout() {
    let mut h = Harness::stable_leader();
    let s = settings();
    let hb = h.next_heartbeat();
    let join = sends(&h.respond(
        hb,
        Response::Heartbeat {
            error: code::REBALANCE_IN_PROGRESS,
        },
    ));
    assert!(matches!(join[0].request, Request::JoinGroup { .. }));
    assert_eq!(h.m.phase(), Phase::Joining);
    let joined_at = h.now;
    assert_eq!(
        h.m.membership_valid_until(),
        Some(joined_at + s.rebalance_timeout),
        "a slow member stretches the rebalance; the coordinator keeps us meanwhile"
    );
    // Long past the session timeout, the JoinGroup still held: still a member.
    h.now += s.session_timeout * 3;
    h.input(Input::Tick);
    assert_eq!(
        h.m.membership_valid_until(),
        Some(joined_at + s.rebalance_timeout)
    );

    // A member that lost its generation keeps nothing through its rejoin.
    let mut h = Harness::stable_leader();
    let hb = h.next_heartbeat();
    h.respond(
        hb,
        Response::Heartbeat {
            error: code::UNKNOWN_MEMBER_ID,
        },
    );
    assert_eq!(h.m.phase(), Phase::Joining);
    assert_eq!(h.m.membership_valid_until(), None);
}

#[test]
fn an_answer_read_after_a_freeze_confirms_only_the_time_it_was_asked() {
    let mut h = Harness::stable_leader();
    let session = settings().session_timeout;
    let hb = h.next_heartbeat();
    let asked = h.now;
    // Frozen (SIGSTOP) with the answer already on its way; read on waking.
    h.now += session * 2;
    h.respond(hb, Response::Heartbeat { error: code::NONE });
    let until = h.m.membership_valid_until();
    assert_eq!(until, Some(asked + session));
    assert!(
        until.is_some_and(|u| u <= h.now),
        "a stale answer must not make the member look confirmed"
    );
}
