//! Runs the group [`machine`](super::machine) over real connections: turns its requests into
//! Kafka protocol messages (versions negotiated per broker), feeds responses, failures and the
//! clock back, and keeps one connection to the bootstrap brokers and one to the coordinator.

use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use kafka_protocol::messages::join_group_request::JoinGroupRequestProtocol;
use kafka_protocol::messages::leave_group_request::MemberIdentity;
use kafka_protocol::messages::sync_group_request::SyncGroupRequestAssignment;
use kafka_protocol::messages::{
    ApiKey, GroupId, HeartbeatRequest, HeartbeatResponse, JoinGroupRequest, JoinGroupResponse,
    LeaveGroupRequest, LeaveGroupResponse, SyncGroupRequest, SyncGroupResponse,
};
use kafka_protocol::protocol::StrBytes;
use tokio::sync::{Mutex, mpsc};

use super::connection::{Connection, Security};
use super::machine::{
    GroupMachine, GroupMember, GroupSettings, Input, Node, Output, Request, Response, Target,
};
use crate::error::{Error, Result};

/// Where and how to connect.
#[derive(Debug, Clone)]
pub struct DriverConfig {
    /// `bootstrap.servers`, as host:port pairs.
    pub bootstrap: Vec<(String, i32)>,
    pub security: Security,
    pub client_id: String,
    pub settings: GroupSettings,
}

impl DriverConfig {
    /// Parses `bootstrap.servers` (comma-separated host:port, an optional `PROTOCOL://` prefix).
    pub fn parse_bootstrap(servers: &str) -> Result<Vec<(String, i32)>> {
        let mut out = Vec::new();
        for s in servers.split(',').map(str::trim).filter(|s| !s.is_empty()) {
            let s = s.rsplit("://").next().unwrap_or(s);
            let (host, port) = s.rsplit_once(':').ok_or_else(|| {
                Error::Config(format!(
                    "bootstrap.servers entry {s} has no port (host:port)"
                ))
            })?;
            let port: i32 = port.parse().map_err(|_| {
                Error::Config(format!("bootstrap.servers entry {s}: {port} is not a port"))
            })?;
            out.push((
                host.trim_matches(|c| c == '[' || c == ']').to_string(),
                port,
            ));
        }
        if out.is_empty() {
            return Err(Error::Config("bootstrap.servers is empty".into()));
        }
        Ok(out)
    }
}

/// A connection slot: the broker it should reach and the connection, opened on first use.
#[derive(Debug, Default)]
struct Slot {
    node: Option<(String, i32)>,
    conn: Option<Connection>,
}

/// Runs until the member has left the group (after [`Input::Leave`] or the command channel
/// closing) or the group refuses it (the error says why). `commands` carries
/// [`Input::Rejoin`] and [`Input::Leave`] from the worker.
pub async fn run(
    config: DriverConfig,
    member: &mut (dyn GroupMember + Send),
    mut commands: mpsc::UnboundedReceiver<Input>,
) -> Result<()> {
    let config = Arc::new(config);
    let mut machine = GroupMachine::new(config.settings.clone(), Instant::now());
    let bootstrap = Arc::new(Mutex::new(Slot::default()));
    let coordinator = Arc::new(Mutex::new(Slot::default()));
    let coordinator_node: Arc<std::sync::Mutex<Option<Node>>> = Arc::default();
    let (done_tx, mut done_rx) =
        mpsc::unbounded_channel::<(u64, std::result::Result<Response, Error>)>();
    let mut input = Input::Tick;
    let mut commands_open = true;
    loop {
        for output in machine.handle(Instant::now(), input, member) {
            match output {
                Output::Send(out) => {
                    let slot = match out.target {
                        Target::AnyBroker => bootstrap.clone(),
                        Target::Coordinator => coordinator.clone(),
                    };
                    let node = match out.target {
                        Target::AnyBroker => None,
                        Target::Coordinator => coordinator_node
                            .lock()
                            .ok()
                            .and_then(|n| n.clone())
                            .map(|n| (n.host, n.port)),
                    };
                    let config = config.clone();
                    let done = done_tx.clone();
                    tokio::spawn(async move {
                        let result = tokio::time::timeout(
                            out.timeout,
                            perform(&config, &slot, node, &out.request),
                        )
                        .await
                        .unwrap_or_else(|_| {
                            Err(Error::Kafka(format!(
                                "no response within {:?}",
                                out.timeout
                            )))
                        });
                        if result.is_err() {
                            // A failed connection is not reused.
                            slot.lock().await.conn = None;
                        }
                        let _ = done.send((out.id, result));
                    });
                }
                Output::Coordinator(node) => {
                    tracing::info!(group = %config.settings.group_id, coordinator = ?node, "group coordinator");
                    if let Ok(mut n) = coordinator_node.lock() {
                        *n = node;
                    }
                }
                Output::Fatal(message) => return Err(Error::Kafka(message)),
                Output::Left => return Ok(()),
            }
        }
        member.on_membership(machine.membership_valid_until(), machine.generation());
        let wake = machine
            .next_wakeup()
            .unwrap_or_else(|| Instant::now() + Duration::from_secs(1));
        input = tokio::select! {
            Some((id, result)) = done_rx.recv() => match result {
                Ok(response) => Input::Response { id, response },
                // Wrong credentials or certificates: retrying cannot help, say why and stop.
                Err(e @ Error::Authentication(_)) => return Err(e),
                Err(e) => Input::Failed { id, reason: e.to_string() },
            },
            command = commands.recv(), if commands_open => match command {
                Some(c) => c,
                None => {
                    commands_open = false;
                    Input::Leave
                }
            },
            () = tokio::time::sleep_until(wake.into()) => Input::Tick,
        };
    }
}

/// Sends `request` over the slot's connection (opening it, to `node` or to the first bootstrap
/// broker that answers) and maps the response.
async fn perform(
    config: &DriverConfig,
    slot: &Mutex<Slot>,
    node: Option<(String, i32)>,
    request: &Request,
) -> Result<Response> {
    let mut slot = slot.lock().await;
    if node.is_some() && slot.node != node {
        slot.conn = None;
        slot.node = node.clone();
    }
    if slot.conn.is_none() {
        let candidates = match &node {
            Some(n) => vec![n.clone()],
            None => config.bootstrap.clone(),
        };
        let mut last = Error::Kafka("no broker to connect to".into());
        for (host, port) in candidates {
            match Connection::open(
                &host,
                port,
                &config.security,
                &config.client_id,
                config.settings.request_timeout,
            )
            .await
            {
                Ok(c) => {
                    slot.conn = Some(c);
                    break;
                }
                Err(e @ Error::Authentication(_)) => return Err(e),
                Err(e) => last = e,
            }
        }
        if slot.conn.is_none() {
            return Err(last);
        }
    }
    let Some(conn) = slot.conn.as_mut() else {
        return Err(Error::Kafka("not connected".into()));
    };
    exchange(conn, request).await
}

fn s(v: &str) -> StrBytes {
    StrBytes::from_string(v.to_string())
}

async fn exchange(conn: &mut Connection, request: &Request) -> Result<Response> {
    match request {
        Request::FindCoordinator { key } => {
            let (error, node) = conn.find_coordinator(key).await?;
            Ok(Response::FindCoordinator {
                error,
                node: node.map(|(id, host, port)| Node { id, host, port }),
            })
        }
        Request::JoinGroup {
            group_id,
            member_id,
            protocol_type,
            protocols,
            session_timeout_ms,
            rebalance_timeout_ms,
        } => {
            let v = conn.version(ApiKey::JoinGroup, 1)?;
            let r = JoinGroupRequest::default()
                .with_group_id(GroupId(s(group_id)))
                .with_session_timeout_ms(*session_timeout_ms)
                .with_rebalance_timeout_ms(*rebalance_timeout_ms)
                .with_member_id(s(member_id))
                .with_protocol_type(s(protocol_type))
                .with_protocols(
                    protocols
                        .iter()
                        .map(|(name, meta)| {
                            JoinGroupRequestProtocol::default()
                                .with_name(s(name))
                                .with_metadata(Bytes::from(meta.clone()))
                        })
                        .collect(),
                );
            let resp: JoinGroupResponse = conn.send(ApiKey::JoinGroup, v, &r).await?;
            Ok(Response::JoinGroup {
                error: resp.error_code,
                generation: resp.generation_id,
                protocol: resp.protocol_name.map(|p| p.to_string()),
                leader: resp.leader.to_string(),
                member_id: resp.member_id.to_string(),
                members: resp
                    .members
                    .into_iter()
                    .map(|m| (m.member_id.to_string(), m.metadata.to_vec()))
                    .collect(),
            })
        }
        Request::SyncGroup {
            group_id,
            generation,
            member_id,
            protocol_type,
            protocol,
            assignments,
        } => {
            let v = conn.version(ApiKey::SyncGroup, 0)?;
            let mut r = SyncGroupRequest::default()
                .with_group_id(GroupId(s(group_id)))
                .with_generation_id(*generation)
                .with_member_id(s(member_id))
                .with_assignments(
                    assignments
                        .iter()
                        .map(|(id, a)| {
                            SyncGroupRequestAssignment::default()
                                .with_member_id(s(id))
                                .with_assignment(Bytes::from(a.clone()))
                        })
                        .collect(),
                );
            if v >= 5 {
                r = r
                    .with_protocol_type(Some(s(protocol_type)))
                    .with_protocol_name(Some(s(protocol)));
            }
            let resp: SyncGroupResponse = conn.send(ApiKey::SyncGroup, v, &r).await?;
            Ok(Response::SyncGroup {
                error: resp.error_code,
                assignment: resp.assignment.to_vec(),
            })
        }
        Request::Heartbeat {
            group_id,
            generation,
            member_id,
        } => {
            let v = conn.version(ApiKey::Heartbeat, 0)?;
            let r = HeartbeatRequest::default()
                .with_group_id(GroupId(s(group_id)))
                .with_generation_id(*generation)
                .with_member_id(s(member_id));
            let resp: HeartbeatResponse = conn.send(ApiKey::Heartbeat, v, &r).await?;
            Ok(Response::Heartbeat {
                error: resp.error_code,
            })
        }
        Request::LeaveGroup {
            group_id,
            member_id,
        } => {
            let v = conn.version(ApiKey::LeaveGroup, 0)?;
            let mut r = LeaveGroupRequest::default().with_group_id(GroupId(s(group_id)));
            if v >= 3 {
                r = r.with_members(vec![MemberIdentity::default().with_member_id(s(member_id))]);
            } else {
                r = r.with_member_id(s(member_id));
            }
            let resp: LeaveGroupResponse = conn.send(ApiKey::LeaveGroup, v, &r).await?;
            let error = if resp.error_code != 0 {
                resp.error_code
            } else {
                resp.members.first().map_or(0, |m| m.error_code)
            };
            Ok(Response::LeaveGroup { error })
        }
    }
}
