//! The worker's group membership state machine against any coordinator behaviour read from the
//! fuzzer's bytes: time passing, answers of any kind and error code to any request in flight
//! (or to none), lost requests, rejoin and leave requests. After every step: no panic, and the
//! membership the machine vouches for (until when the worker may write statuses and run tasks
//! under its generation) is one the coordinator could still honour — at most a session timeout
//! after the sending of a request the coordinator answered as a member, or a rebalance timeout
//! after the sending of the latest JoinGroup — and only in a phase that has a generation.
#![no_main]

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use libfuzzer_sys::fuzz_target;
use tributary_worker::coordinator::machine::{
    GroupMachine, GroupMember, GroupSettings, Input, Node, Output, Outgoing, Phase, Request,
    Response, code,
};

#[derive(Default)]
struct Member {
    reported: Option<(Option<Instant>, i32)>,
}

impl GroupMember for Member {
    fn metadata(&mut self) -> Vec<(String, Vec<u8>)> {
        vec![
            ("sessioned".into(), b"v2".to_vec()),
            ("default".into(), b"v0".to_vec()),
        ]
    }
    fn on_join_prepare(&mut self, _generation: i32, _member_id: &str) {}
    fn assign(
        &mut self,
        _leader: &str,
        _protocol: &str,
        members: &[(String, Vec<u8>)],
        _generation: i32,
    ) -> BTreeMap<String, Vec<u8>> {
        members
            .iter()
            .map(|(id, _)| (id.clone(), id.as_bytes().to_vec()))
            .collect()
    }
    fn on_join_complete(&mut self, _g: i32, _m: &str, _p: &str, _a: &[u8]) {}
    fn on_membership(&mut self, valid_until: Option<Instant>, generation: i32) {
        self.reported = Some((valid_until, generation));
    }
}

const CODES: [i16; 14] = [
    code::NONE,
    code::NONE,
    code::NONE,
    code::COORDINATOR_LOAD_IN_PROGRESS,
    code::COORDINATOR_NOT_AVAILABLE,
    code::NOT_COORDINATOR,
    code::ILLEGAL_GENERATION,
    code::UNKNOWN_MEMBER_ID,
    code::REBALANCE_IN_PROGRESS,
    code::MEMBER_ID_REQUIRED,
    code::INCONSISTENT_GROUP_PROTOCOL,
    code::GROUP_AUTHORIZATION_FAILED,
    code::FENCED_INSTANCE_ID,
    -1,
];

struct Bytes<'a>(std::slice::Iter<'a, u8>);

impl Bytes<'_> {
    fn next(&mut self) -> Option<u8> {
        self.0.next().copied()
    }
    fn byte(&mut self) -> u8 {
        self.next().unwrap_or(0)
    }
}

/// A response to `request`, of its own kind unless the bytes say otherwise.
fn response(b: &mut Bytes<'_>, request: &Request, generation: &mut i32) -> Response {
    let pick = b.byte();
    let error = CODES[usize::from(b.byte()) % CODES.len()];
    let kind = if pick < 230 {
        match request {
            Request::FindCoordinator { .. } => 0,
            Request::JoinGroup { .. } => 1,
            Request::SyncGroup { .. } => 2,
            Request::Heartbeat { .. } => 3,
            Request::LeaveGroup { .. } => 4,
        }
    } else {
        pick % 5
    };
    let asked_id = match request {
        Request::JoinGroup { member_id, .. }
        | Request::SyncGroup { member_id, .. }
        | Request::Heartbeat { member_id, .. }
        | Request::LeaveGroup { member_id, .. } => member_id.clone(),
        Request::FindCoordinator { .. } => String::new(),
    };
    match kind {
        0 => {
            let n = b.byte();
            Response::FindCoordinator {
                error,
                node: (n < 250).then(|| Node {
                    id: i32::from(n % 3),
                    host: format!("broker-{}", n % 3),
                    port: 9092 + i32::from(n % 3),
                }),
            }
        }
        1 => {
            let g = b.byte();
            // Mostly the next generation; sometimes an old or a wild one.
            *generation = match g % 8 {
                0 => i32::from(g),
                1 => -1,
                _ => generation.saturating_add(1),
            };
            let me = if asked_id.is_empty() || g % 5 == 0 {
                format!("m-{}", g % 3)
            } else {
                asked_id
            };
            let leads = g % 2 == 0;
            let leader = if leads { me.clone() } else { "other".into() };
            let members = if leads {
                vec![
                    (me.clone(), b"v2".to_vec()),
                    ("other".into(), b"v2".to_vec()),
                ]
            } else {
                Vec::new()
            };
            Response::JoinGroup {
                error,
                generation: *generation,
                protocol: match g % 7 {
                    0 => None,
                    1 => Some("bogus".into()),
                    _ => Some("sessioned".into()),
                },
                leader,
                member_id: me,
                members,
            }
        }
        2 => Response::SyncGroup {
            error,
            assignment: vec![b.byte(); usize::from(b.byte() % 4)],
        },
        3 => Response::Heartbeat { error },
        _ => Response::LeaveGroup { error },
    }
}

fuzz_target!(|data: &[u8]| {
    let settings = GroupSettings::connect("fuzz-group");
    let (session, rebalance) = (settings.session_timeout, settings.rebalance_timeout);
    let mut now = Instant::now();
    let mut machine = GroupMachine::new(settings, now);
    let mut member = Member::default();
    let mut b = Bytes(data.iter());
    let mut in_flight: Vec<(Outgoing, Instant)> = Vec::new();
    let mut generation = 0i32;
    // The latest send time of a request the coordinator answered as to a member, and of a
    // JoinGroup.
    let mut answered_sent: Option<Instant> = None;
    let mut join_sent: Option<Instant> = None;
    for _ in 0..256 {
        let Some(op) = b.next() else { break };
        let input = match op % 10 {
            0..=2 => {
                now += Duration::from_millis(u64::from(b.byte()) * 100);
                Input::Tick
            }
            3..=6 if !in_flight.is_empty() => {
                let (sent, at) = in_flight.remove(usize::from(b.byte()) % in_flight.len());
                let response = response(&mut b, &sent.request, &mut generation);
                let as_member = match &response {
                    Response::Heartbeat { error } => {
                        matches!(*error, code::NONE | code::REBALANCE_IN_PROGRESS)
                    }
                    Response::SyncGroup { error, .. } | Response::JoinGroup { error, .. } => {
                        *error == code::NONE
                    }
                    _ => false,
                };
                if as_member {
                    answered_sent = answered_sent.max(Some(at));
                }
                Input::Response {
                    id: sent.id,
                    response,
                }
            }
            3..=6 => {
                // An answer to nothing the machine asked (a stale id).
                let mut g = generation;
                Input::Response {
                    id: u64::MAX - u64::from(b.byte()),
                    response: response(&mut b, &Request::Heartbeat {
                        group_id: String::new(),
                        generation: 0,
                        member_id: String::new(),
                    }, &mut g),
                }
            }
            7 if !in_flight.is_empty() => {
                let (sent, _) = in_flight.remove(usize::from(b.byte()) % in_flight.len());
                Input::Failed {
                    id: sent.id,
                    reason: "connection lost".into(),
                }
            }
            7 | 8 => Input::Rejoin,
            _ => {
                if b.byte() < 16 {
                    Input::Leave
                } else {
                    Input::Tick
                }
            }
        };
        for out in machine.handle(now, input, &mut member) {
            if let Output::Send(s) = out {
                if matches!(s.request, Request::JoinGroup { .. }) {
                    join_sent = Some(now);
                }
                in_flight.push((s, now));
            }
        }
        if let Some(until) = machine.membership_valid_until() {
            assert!(
                matches!(
                    machine.phase(),
                    Phase::Stable | Phase::Joining | Phase::Syncing
                ),
                "a membership in phase {:?}",
                machine.phase()
            );
            let bound = [
                answered_sent.map(|t| t + session),
                join_sent.map(|t| t + rebalance),
            ]
            .into_iter()
            .flatten()
            .max();
            assert!(
                bound.is_some_and(|b| until <= b),
                "membership until {until:?} past anything the coordinator answered or holds ({bound:?}, now {now:?})"
            );
        }
        if let Some((reported, _)) = member.reported {
            assert!(
                reported.is_none_or(|r| answered_sent
                    .map(|t| t + session)
                    .max(join_sent.map(|t| t + rebalance))
                    .is_some_and(|b| r <= b)),
                "the member was told of a membership no answer backs"
            );
        }
    }
});
