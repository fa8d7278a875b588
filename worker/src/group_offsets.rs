//! A sink connector's offsets are the committed offsets of its consumer group (`connect-<name>`,
//! or the connector's `consumer.override.group.id`), not records in the offsets topic. Java reads
//! and changes them with its admin client; this module sends the same four requests to the
//! group coordinator — OffsetFetch, OffsetCommit as a non-member, OffsetDelete and DeleteGroups —
//! over the connection code the worker group already uses, so TLS and SASL behave the same.
//!
//! The broker only lets a non-member commit to, or delete, an *empty* group; that is what makes
//! changing offsets of a running sink impossible, and why the errors below say the tasks may not
//! have stopped yet.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use kafka_protocol::messages::offset_commit_request::{
    OffsetCommitRequestPartition, OffsetCommitRequestTopic,
};
use kafka_protocol::messages::offset_delete_request::{
    OffsetDeleteRequestPartition, OffsetDeleteRequestTopic,
};
use kafka_protocol::messages::offset_fetch_request::OffsetFetchRequest;
use kafka_protocol::messages::{
    ApiKey, DeleteGroupsRequest, DeleteGroupsResponse, GroupId, OffsetCommitRequest,
    OffsetCommitResponse, OffsetDeleteRequest, OffsetDeleteResponse, OffsetFetchResponse,
    TopicName,
};
use kafka_protocol::protocol::StrBytes;
use serde_json::{Map, Value};
use tributary_connect_client::{ConnectorOffset, ConnectorOffsets};

use crate::config::client::{Role, connector_client_settings};
use crate::coordinator::connection::{Connection, Security};
use crate::coordinator::driver::DriverConfig;
use crate::error::{Error, Result};

/// A topic and partition.
pub type TopicPartition = (String, i32);

/// One requested change: a new offset, or `None` to forget the partition's committed offset.
pub type SinkOffsetChange = (TopicPartition, Option<i64>);

const KAFKA_TOPIC: &str = "kafka_topic";
const KAFKA_PARTITION: &str = "kafka_partition";
const KAFKA_OFFSET: &str = "kafka_offset";

/// Java's `String.valueOf` of a JSON value, so `"10"` and `10` parse alike (as Java accepts both).
fn plain(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// A `PATCH /offsets` body for a sink, checked as Java checks it; the error is the 400 message.
pub fn parse_changes(
    offsets: &ConnectorOffsets,
) -> std::result::Result<Vec<SinkOffsetChange>, String> {
    let mut out: BTreeMap<TopicPartition, Option<i64>> = BTreeMap::new();
    for entry in &offsets.offsets {
        let (Some(topic), Some(partition)) = (
            entry.partition.get(KAFKA_TOPIC),
            entry.partition.get(KAFKA_PARTITION),
        ) else {
            return Err(format!(
                "The partition for a sink connector offset must contain the keys '{KAFKA_TOPIC}' and '{KAFKA_PARTITION}'"
            ));
        };
        let partition: i32 = plain(partition).parse().map_err(|_| {
            format!(
                "Failed to parse the following Kafka partition value in the provided offsets: '{}'. Partition values for sink connectors need to be integers.",
                plain(partition)
            )
        })?;
        let offset = match &entry.offset {
            None => None,
            Some(o) => {
                let Some(v) = o.get(KAFKA_OFFSET) else {
                    return Err(format!(
                        "The offset for a sink connector should either be null or contain the key '{KAFKA_OFFSET}'"
                    ));
                };
                let n: i64 = plain(v).parse().map_err(|_| {
                    format!(
                        "Failed to parse the following Kafka offset value in the provided offsets: '{}'. Offset values for sink connectors need to be integers.",
                        plain(v)
                    )
                })?;
                if n < 0 {
                    // Java lets the broker refuse this with a 500; a 400 naming the value says more.
                    return Err(format!(
                        "The Kafka offset {n} for {}-{partition} is negative; offsets for sink connectors start at 0",
                        plain(topic)
                    ));
                }
                Some(n)
            }
        };
        out.insert((plain(topic), partition), offset);
    }
    Ok(out.into_iter().collect())
}

/// Committed offsets as the REST API shows them.
pub fn entity(committed: &[(TopicPartition, i64)]) -> ConnectorOffsets {
    ConnectorOffsets {
        offsets: committed
            .iter()
            .map(|((topic, partition), offset)| {
                let mut p = Map::new();
                p.insert(KAFKA_TOPIC.into(), Value::from(topic.clone()));
                p.insert(KAFKA_PARTITION.into(), Value::from(*partition));
                let mut o = Map::new();
                o.insert(KAFKA_OFFSET.into(), Value::from(*offset));
                ConnectorOffset {
                    partition: p,
                    offset: Some(o),
                }
            })
            .collect(),
    }
}

/// The group of a sink connector's tasks, as `task::sink` names it.
pub fn group_id(connector: &str, settings: &BTreeMap<String, String>) -> String {
    settings
        .get("group.id")
        .cloned()
        .unwrap_or_else(|| format!("connect-{connector}"))
}

/// How long a change waits for the members of a just-stopped connector's group to leave (Java
/// fails at once; its tasks have usually left by the time the stop is visible, ours a moment later).
const MEMBERS_GRACE: Duration = Duration::from_secs(15);

/// Where a sink connector's group lives and how to reach it.
#[derive(Debug)]
pub struct GroupAdmin {
    connector: String,
    group: String,
    bootstrap: Vec<(String, i32)>,
    security: Security,
    /// The whole operation's budget (Java: the REST request timeout, 90 s).
    timeout: Duration,
}

/// Kafka error codes this module acts on.
mod code {
    pub const COORDINATOR_LOAD_IN_PROGRESS: i16 = 14;
    pub const COORDINATOR_NOT_AVAILABLE: i16 = 15;
    pub const NOT_COORDINATOR: i16 = 16;
    pub const ILLEGAL_GENERATION: i16 = 22;
    pub const UNKNOWN_MEMBER_ID: i16 = 25;
    pub const REBALANCE_IN_PROGRESS: i16 = 27;
    pub const GROUP_AUTHORIZATION_FAILED: i16 = 30;
    pub const NON_EMPTY_GROUP: i16 = 68;
    pub const GROUP_ID_NOT_FOUND: i16 = 69;
    pub const GROUP_SUBSCRIBED_TO_TOPIC: i16 = 86;

    pub fn retriable(c: i16) -> bool {
        matches!(
            c,
            COORDINATOR_LOAD_IN_PROGRESS | COORDINATOR_NOT_AVAILABLE | NOT_COORDINATOR
        )
    }

    /// The group has members: a task of the connector still runs somewhere.
    pub fn has_members(c: i16) -> bool {
        matches!(
            c,
            UNKNOWN_MEMBER_ID
                | ILLEGAL_GENERATION
                | REBALANCE_IN_PROGRESS
                | NON_EMPTY_GROUP
                | GROUP_SUBSCRIBED_TO_TOPIC
        )
    }

    pub fn name(c: i16) -> String {
        let n = match c {
            3 => "UNKNOWN_TOPIC_OR_PARTITION",
            COORDINATOR_LOAD_IN_PROGRESS => "COORDINATOR_LOAD_IN_PROGRESS",
            COORDINATOR_NOT_AVAILABLE => "COORDINATOR_NOT_AVAILABLE",
            NOT_COORDINATOR => "NOT_COORDINATOR",
            ILLEGAL_GENERATION => "ILLEGAL_GENERATION",
            UNKNOWN_MEMBER_ID => "UNKNOWN_MEMBER_ID",
            REBALANCE_IN_PROGRESS => "REBALANCE_IN_PROGRESS",
            29 => "TOPIC_AUTHORIZATION_FAILED",
            GROUP_AUTHORIZATION_FAILED => "GROUP_AUTHORIZATION_FAILED",
            NON_EMPTY_GROUP => "NON_EMPTY_GROUP",
            GROUP_ID_NOT_FOUND => "GROUP_ID_NOT_FOUND",
            GROUP_SUBSCRIBED_TO_TOPIC => "GROUP_SUBSCRIBED_TO_TOPIC",
            _ => return format!("error code {c}"),
        };
        n.to_string()
    }
}

/// What went wrong, before it becomes a message.
#[derive(Debug)]
enum Failure {
    /// Try again after a short pause (coordinator moving or loading).
    Retry(String),
    /// The group has members: some task of the connector still runs.
    Members,
    /// The broker refused, with this error.
    Refused(String),
    Fatal(Error),
}

impl From<Error> for Failure {
    fn from(e: Error) -> Self {
        // A dropped connection is worth another try with a fresh coordinator lookup.
        match e {
            Error::Kafka(m) => Failure::Retry(m),
            other => Failure::Fatal(other),
        }
    }
}

type Attempt<T> = std::result::Result<T, Failure>;

fn s(v: &str) -> StrBytes {
    StrBytes::from_string(v.to_string())
}

impl GroupAdmin {
    /// The group and connection settings of sink connector `connector` with its (resolved)
    /// config: the consumer's settings, as the sink task's consumer uses them.
    pub fn for_connector(
        worker_props: &BTreeMap<String, String>,
        override_policy: &str,
        connector: &str,
        config: &BTreeMap<String, String>,
    ) -> Result<GroupAdmin> {
        let settings =
            connector_client_settings(Role::Consumer, worker_props, config, override_policy)
                .map_err(Error::Config)?;
        let bootstrap = settings
            .librdkafka
            .get("bootstrap.servers")
            .cloned()
            .unwrap_or_default();
        Ok(GroupAdmin {
            connector: connector.to_string(),
            group: group_id(connector, &settings.librdkafka),
            bootstrap: DriverConfig::parse_bootstrap(&bootstrap)?,
            security: Security::from_librdkafka(&settings.librdkafka)?,
            timeout: Duration::from_secs(90),
        })
    }

    pub fn group(&self) -> &str {
        &self.group
    }

    /// The group's committed offsets, by partition (none for a group that never committed).
    pub fn committed(&self) -> Result<Vec<(TopicPartition, i64)>> {
        self.run("list the consumer group offsets", |conn| {
            Box::pin(Self::fetch(conn, self.group.clone()))
        })
        .map_err(|f| match f {
            Failure::Fatal(e) => e,
            Failure::Members => Error::Group(format!(
                "Failed to retrieve consumer group offsets for sink connector {}: the group is rebalancing",
                self.connector
            )),
            Failure::Refused(m) | Failure::Retry(m) => Error::Group(format!(
                "Failed to retrieve consumer group offsets for sink connector {}: {m}",
                self.connector
            )),
        })
    }

    /// Commits the new offsets and forgets the partitions mapped to `None`.
    pub fn alter(&self, changes: &[SinkOffsetChange]) -> Result<()> {
        let commits: Vec<(TopicPartition, i64)> = changes
            .iter()
            .filter_map(|(tp, o)| o.map(|o| (tp.clone(), o)))
            .collect();
        let deletes: Vec<TopicPartition> = changes
            .iter()
            .filter(|(_, o)| o.is_none())
            .map(|(tp, _)| tp.clone())
            .collect();
        let zombie = |what: &str| {
            Error::Group(format!(
                "Failed to {what} consumer group offsets for connector {} either because its tasks haven't stopped completely yet or the connector was resumed before the request to {what} its offsets could be successfully completed. If the connector is in a stopped state, this operation can be safely retried. If it doesn't eventually succeed, the Connect cluster may need to be restarted to get rid of the zombie sink tasks.",
                self.connector
            ))
        };
        let result = self.run("alter the consumer group offsets", |conn| {
            let group = self.group.clone();
            let commits = commits.clone();
            let deletes = deletes.clone();
            Box::pin(async move {
                if !commits.is_empty() {
                    Self::commit(conn, &group, &commits).await?;
                }
                if !deletes.is_empty() {
                    Self::delete_offsets(conn, &group, &deletes).await?;
                }
                Ok(())
            })
        });
        result.map_err(|f| match f {
            Failure::Members => zombie("alter"),
            Failure::Refused(m) | Failure::Retry(m) => Error::Group(format!(
                "Failed to alter consumer group offsets for connector {}: {m}",
                self.connector
            )),
            Failure::Fatal(e) => e,
        })
    }

    /// Deletes the group, and with it every committed offset (Java's sink offset reset). A group
    /// that does not exist is already reset.
    pub fn delete_group(&self) -> Result<()> {
        let result = self.run("delete the consumer group", |conn| {
            let group = self.group.clone();
            Box::pin(async move {
                let v = conn
                    .version(ApiKey::DeleteGroups, 0)
                    .map_err(Failure::Fatal)?;
                let r = DeleteGroupsRequest::default().with_groups_names(vec![GroupId(s(&group))]);
                let resp: DeleteGroupsResponse = conn.send(ApiKey::DeleteGroups, v, &r).await?;
                let c = resp.results.first().map_or(0, |r| r.error_code);
                Self::check(c)
            })
        });
        result.map_err(|f| match f {
            Failure::Members => Error::Group(format!(
                "Failed to reset consumer group offsets for connector {} either because its tasks haven't stopped completely yet or the connector was resumed before the request to reset its offsets could be successfully completed. If the connector is in a stopped state, this operation can be safely retried. If it doesn't eventually succeed, the Connect cluster may need to be restarted to get rid of the zombie sink tasks.",
                self.connector
            )),
            Failure::Refused(m) | Failure::Retry(m) => Error::Group(format!(
                "Failed to reset consumer group offsets for sink connector {}: {m}",
                self.connector
            )),
            Failure::Fatal(e) => e,
        })
    }

    /// Maps a response's error code: 0 and "no such group" are fine.
    fn check(c: i16) -> Attempt<()> {
        match c {
            0 | code::GROUP_ID_NOT_FOUND => Ok(()),
            c if code::retriable(c) => Err(Failure::Retry(code::name(c))),
            c if code::has_members(c) => Err(Failure::Members),
            c => Err(Failure::Refused(code::name(c))),
        }
    }

    async fn fetch(conn: &mut Connection, group: String) -> Attempt<Vec<(TopicPartition, i64)>> {
        // v1..7 carry one group with a nullable topic list (null = every partition it has).
        let v = conn
            .version(ApiKey::OffsetFetch, 2)
            .map_err(Failure::Fatal)?
            .min(7);
        let r = OffsetFetchRequest::default()
            .with_group_id(GroupId(s(&group)))
            .with_topics(None);
        let resp: OffsetFetchResponse = conn.send(ApiKey::OffsetFetch, v, &r).await?;
        Self::check(resp.error_code)?;
        let mut out = Vec::new();
        for t in resp.topics {
            for p in t.partitions {
                Self::check(p.error_code)?;
                if p.committed_offset >= 0 {
                    out.push((
                        (t.name.0.to_string(), p.partition_index),
                        p.committed_offset,
                    ));
                }
            }
        }
        out.sort();
        Ok(out)
    }

    async fn commit(
        conn: &mut Connection,
        group: &str,
        commits: &[(TopicPartition, i64)],
    ) -> Attempt<()> {
        // v8 at most: v9+ belong to the new consumer protocol's member epochs.
        let v = conn
            .version(ApiKey::OffsetCommit, 2)
            .map_err(Failure::Fatal)?
            .min(8);
        let mut topics: BTreeMap<&str, Vec<OffsetCommitRequestPartition>> = BTreeMap::new();
        for ((topic, partition), offset) in commits {
            topics.entry(topic).or_default().push(
                OffsetCommitRequestPartition::default()
                    .with_partition_index(*partition)
                    .with_committed_offset(*offset)
                    .with_committed_leader_epoch(-1),
            );
        }
        // Generation -1 and no member id: a commit from outside the group, which the broker
        // accepts only while the group has no members.
        let r = OffsetCommitRequest::default()
            .with_group_id(GroupId(s(group)))
            .with_generation_id_or_member_epoch(-1)
            .with_member_id(StrBytes::default())
            .with_retention_time_ms(-1)
            .with_topics(
                topics
                    .into_iter()
                    .map(|(t, partitions)| {
                        OffsetCommitRequestTopic::default()
                            .with_name(TopicName(s(t)))
                            .with_partitions(partitions)
                    })
                    .collect(),
            );
        let resp: OffsetCommitResponse = conn.send(ApiKey::OffsetCommit, v, &r).await?;
        for t in resp.topics {
            for p in t.partitions {
                Self::check(p.error_code)?;
            }
        }
        Ok(())
    }

    async fn delete_offsets(
        conn: &mut Connection,
        group: &str,
        partitions: &[TopicPartition],
    ) -> Attempt<()> {
        let v = conn
            .version(ApiKey::OffsetDelete, 0)
            .map_err(Failure::Fatal)?;
        let mut topics: BTreeMap<&str, Vec<OffsetDeleteRequestPartition>> = BTreeMap::new();
        for (topic, partition) in partitions {
            topics
                .entry(topic)
                .or_default()
                .push(OffsetDeleteRequestPartition::default().with_partition_index(*partition));
        }
        let r = OffsetDeleteRequest::default()
            .with_group_id(GroupId(s(group)))
            .with_topics(
                topics
                    .into_iter()
                    .map(|(t, partitions)| {
                        OffsetDeleteRequestTopic::default()
                            .with_name(TopicName(s(t)))
                            .with_partitions(partitions)
                    })
                    .collect(),
            );
        let resp: OffsetDeleteResponse = conn.send(ApiKey::OffsetDelete, v, &r).await?;
        Self::check(resp.error_code)?;
        for t in resp.topics {
            for p in t.partitions {
                Self::check(p.error_code)?;
            }
        }
        Ok(())
    }

    /// Finds the group's coordinator and runs `op` on a connection to it, again on a moved or
    /// loading coordinator or a dropped connection, until the timeout. Blocks the calling
    /// thread (herder calls run off the async runtime).
    fn run<T>(
        &self,
        what: &str,
        op: impl for<'c> Fn(
            &'c mut Connection,
        ) -> std::pin::Pin<
            Box<dyn std::future::Future<Output = Attempt<T>> + Send + 'c>,
        >,
    ) -> std::result::Result<T, Failure> {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| {
                Failure::Fatal(Error::Kafka(format!(
                    "cannot start a runtime to {what}: {e}"
                )))
            })?;
        let started = Instant::now();
        let deadline = started + self.timeout;
        runtime.block_on(async {
            let mut backoff = Duration::from_millis(100);
            loop {
                let attempt = async {
                    let mut conn = self.coordinator().await?;
                    op(&mut conn).await
                };
                let last = match attempt.await {
                    Err(Failure::Retry(m)) => m,
                    // A task stopped a moment ago may still be leaving the group: give it a
                    // little time rather than failing a request that would work on retry.
                    Err(Failure::Members) if started.elapsed() < MEMBERS_GRACE => {
                        "the group still has members".to_string()
                    }
                    other => return other,
                };
                if Instant::now() + backoff > deadline {
                    return Err(Failure::Fatal(Error::Kafka(format!(
                        "could not {what} of group {} within {:?}: {last}",
                        self.group, self.timeout
                    ))));
                }
                tracing::debug!(group = %self.group, error = %last, "retrying a consumer group request");
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(Duration::from_secs(2));
            }
        })
    }

    async fn coordinator(&self) -> Attempt<Connection> {
        let open_timeout = Duration::from_secs(10);
        let client_id = format!("connector-adminclient-{}", self.connector);
        let mut last = String::from("no bootstrap servers");
        for (host, port) in &self.bootstrap {
            let mut conn =
                match Connection::open(host, *port, &self.security, &client_id, open_timeout).await
                {
                    Ok(c) => c,
                    Err(Error::Kafka(m)) => {
                        last = m;
                        continue;
                    }
                    Err(e) => return Err(Failure::Fatal(e)),
                };
            let (error, node) = conn.find_coordinator(&self.group).await?;
            Self::check(error)?;
            let Some((_, host, port)) = node else {
                return Err(Failure::Retry(code::name(code::COORDINATOR_NOT_AVAILABLE)));
            };
            if conn.address == format!("{host}:{port}") {
                return Ok(conn);
            }
            return Ok(
                Connection::open(&host, port, &self.security, &client_id, open_timeout).await?,
            );
        }
        Err(Failure::Retry(last))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn offsets(v: Value) -> ConnectorOffsets {
        serde_json::from_value(json!({ "offsets": v })).unwrap()
    }

    #[test]
    fn changes_accept_numbers_and_numeric_strings_like_java() {
        let parsed = parse_changes(&offsets(json!([
            {"partition": {"kafka_topic": "t", "kafka_partition": 1}, "offset": {"kafka_offset": 5}},
            {"partition": {"kafka_topic": "t", "kafka_partition": "0"}, "offset": {"kafka_offset": "7"}},
            {"partition": {"kafka_topic": "u", "kafka_partition": 2}, "offset": null}
        ])))
        .unwrap();
        assert_eq!(
            parsed,
            vec![
                (("t".into(), 0), Some(7)),
                (("t".into(), 1), Some(5)),
                (("u".into(), 2), None)
            ]
        );
    }

    #[test]
    fn bad_changes_name_the_key_and_the_value() {
        let e = parse_changes(&offsets(json!([
            {"partition": {"topic": "t", "kafka_partition": 1}, "offset": {"kafka_offset": 5}}
        ])))
        .unwrap_err();
        assert!(e.contains("'kafka_topic' and 'kafka_partition'"), "{e}");
        let e = parse_changes(&offsets(json!([
            {"partition": {"kafka_topic": "t", "kafka_partition": "one"}, "offset": {"kafka_offset": 5}}
        ])))
        .unwrap_err();
        assert!(
            e.contains("'one'") && e.contains("need to be integers"),
            "{e}"
        );
        let e = parse_changes(&offsets(json!([
            {"partition": {"kafka_topic": "t", "kafka_partition": 1}, "offset": {"position": 5}}
        ])))
        .unwrap_err();
        assert!(e.contains("null or contain the key 'kafka_offset'"), "{e}");
        let e = parse_changes(&offsets(json!([
            {"partition": {"kafka_topic": "t", "kafka_partition": 1}, "offset": {"kafka_offset": 1.5}}
        ])))
        .unwrap_err();
        assert!(e.contains("'1.5'"), "{e}");
        let e = parse_changes(&offsets(json!([
            {"partition": {"kafka_topic": "t", "kafka_partition": 1}, "offset": {"kafka_offset": -3}}
        ])))
        .unwrap_err();
        assert!(e.contains("negative"), "{e}");
    }

    #[test]
    fn entity_has_javas_shape() {
        let e = entity(&[(("t".into(), 3), 42)]);
        assert_eq!(
            serde_json::to_value(&e).unwrap(),
            json!({"offsets": [{"partition": {"kafka_topic": "t", "kafka_partition": 3}, "offset": {"kafka_offset": 42}}]})
        );
    }

    #[test]
    fn the_group_follows_the_consumer_override() {
        let mut s = BTreeMap::new();
        assert_eq!(group_id("c", &s), "connect-c");
        s.insert("group.id".to_string(), "mine".to_string());
        assert_eq!(group_id("c", &s), "mine");
    }
}
