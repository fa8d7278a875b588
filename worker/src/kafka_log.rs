//! The internal topics' reader and writer (Java's `KafkaBasedLog`, connect-compat.md §0.2): the
//! topic is created compacted or checked to be; the reader is assigned every partition (no group)
//! and reads from the beginning to the end offsets; the writer places each record on the
//! partition Java would (murmur2 of the key; librdkafka's CRC32 default does not match), so Java
//! and Tributary workers sharing the topics agree on where each key lives, and waits for acks.
//! Blocking calls: the stores run them off the async runtime.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, ResourceSpecifier, TopicReplication};
use rdkafka::client::ClientContext;
use rdkafka::client::DefaultClientContext;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::producer::{BaseProducer, BaseRecord, DeliveryResult, Producer, ProducerContext};
use rdkafka::{ClientConfig, Message, Offset, TopicPartitionList};

use crate::error::{Error, Result};

/// `topic.metadata.refresh.interval.ms` of the internal topics' clients.
const METADATA_REFRESH: &str = "10000";

/// Kafka's `Utils.murmur2`: 32-bit MurmurHash2 with Kafka's seed, over the serialized key.
pub fn murmur2(data: &[u8]) -> i32 {
    const SEED: u32 = 0x9747_b28c;
    const M: u32 = 0x5bd1_e995;
    const R: u32 = 24;
    let len = data.len();
    let mut h: u32 = SEED ^ (len as u32);
    let mut chunks = data.chunks_exact(4);
    for c in &mut chunks {
        let mut k = u32::from_le_bytes([c[0], c[1], c[2], c[3]]);
        k = k.wrapping_mul(M);
        k ^= k >> R;
        k = k.wrapping_mul(M);
        h = h.wrapping_mul(M);
        h ^= k;
    }
    let tail = chunks.remainder();
    if tail.len() >= 3 {
        h ^= u32::from(tail[2]) << 16;
    }
    if tail.len() >= 2 {
        h ^= u32::from(tail[1]) << 8;
    }
    if !tail.is_empty() {
        h ^= u32::from(tail[0]);
        h = h.wrapping_mul(M);
    }
    h ^= h >> 13;
    h = h.wrapping_mul(M);
    h ^= h >> 15;
    h as i32
}

/// The partition Java's default partitioner picks for a keyed record:
/// `toPositive(murmur2(key)) % partitions`.
pub fn partition_for(key: &[u8], partitions: i32) -> i32 {
    if partitions <= 0 {
        return 0;
    }
    (murmur2(key) & 0x7fff_ffff) % partitions
}

/// An internal topic and how it must look.
#[derive(Debug, Clone)]
pub struct TopicSpec {
    pub name: String,
    pub partitions: i32,
    /// -1: the broker's default.
    pub replication: i32,
    /// `config.storage.*` and friends: extra topic settings when creating it.
    pub configs: BTreeMap<String, String>,
    /// The config topic must have exactly one partition (its records are ordered).
    pub single_partition: bool,
    /// Which worker setting names the topic, for error messages.
    pub setting: &'static str,
}

impl TopicSpec {
    /// The topic named by worker setting `setting`, with no extra settings; the config topic
    /// (`config.storage.topic`) is the one that must have a single partition.
    pub fn new(
        setting: &'static str,
        name: impl Into<String>,
        partitions: i32,
        replication: i32,
    ) -> Self {
        let single_partition = setting == "config.storage.topic";
        Self {
            name: name.into(),
            partitions: if single_partition { 1 } else { partitions },
            replication,
            configs: BTreeMap::new(),
            single_partition,
            setting,
        }
    }
}

/// One record as read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogRecord {
    pub partition: i32,
    pub offset: i64,
    pub key: Vec<u8>,
    pub value: Option<Vec<u8>>,
}

/// Remembers the first delivery failure, which `send` reports.
#[derive(Debug, Default)]
struct Deliveries {
    failed: std::sync::Mutex<Option<String>>,
}

impl ClientContext for Deliveries {}

impl ProducerContext for Deliveries {
    type DeliveryOpaque = ();

    fn delivery(&self, result: &DeliveryResult<'_>, _: ()) {
        if let Err((e, _)) = result
            && let Ok(mut f) = self.failed.lock()
        {
            f.get_or_insert_with(|| e.to_string());
        }
    }
}

pub struct KafkaLog {
    topic: String,
    partitions: i32,
    consumer: BaseConsumer,
    /// Asks for end offsets on a connection of its own: on the reader's, a ListOffsets request
    /// waits behind the long-polling fetch (up to `fetch.wait.max.ms`).
    ends: BaseConsumer,
    producer: BaseProducer<Deliveries>,
    /// The next offset to read, per partition.
    positions: BTreeMap<i32, i64>,
}

impl std::fmt::Debug for KafkaLog {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KafkaLog")
            .field("topic", &self.topic)
            .field("partitions", &self.partitions)
            .finish_non_exhaustive()
    }
}

const ADMIN_TIMEOUT: Duration = Duration::from_secs(30);

/// Creates the topic compacted when missing; refuses one that exists with another cleanup policy
/// or (for the config topic) more than one partition. Returns the partition count.
pub fn ensure_topic(base: &ClientConfig, spec: &TopicSpec) -> Result<i32> {
    let admin: AdminClient<DefaultClientContext> = base.create()?;
    let options = AdminOptions::new().operation_timeout(Some(ADMIN_TIMEOUT));
    let mut configs: Vec<(&str, &str)> = spec
        .configs
        .iter()
        .filter(|(k, _)| {
            !matches!(
                k.as_str(),
                "cleanup.policy" | "partitions" | "replication.factor"
            )
        })
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    configs.push(("cleanup.policy", "compact"));
    let replication = if spec.replication < 0 {
        TopicReplication::Fixed(-1)
    } else {
        TopicReplication::Fixed(spec.replication)
    };
    let mut new = NewTopic::new(&spec.name, spec.partitions, replication);
    for (k, v) in &configs {
        new = new.set(k, v);
    }
    for r in futures::executor::block_on(admin.create_topics([&new], &options))? {
        match r {
            Ok(t) => {
                tracing::info!(topic = %t, partitions = spec.partitions, "created internal topic")
            }
            Err((_, rdkafka::types::RDKafkaErrorCode::TopicAlreadyExists)) => {}
            Err((t, code)) => {
                return Err(Error::Kafka(format!(
                    "cannot create {} {t}: {code}",
                    spec.setting
                )));
            }
        }
    }
    // What the topic is now, whoever created it; a topic just created may take a moment to show
    // up in the metadata.
    let deadline = Instant::now() + ADMIN_TIMEOUT;
    let partitions = loop {
        let metadata = admin
            .inner()
            .fetch_metadata(Some(&spec.name), ADMIN_TIMEOUT)?;
        let n = metadata
            .topics()
            .iter()
            .find(|t| t.name() == spec.name && t.error().is_none())
            .map_or(0, |t| t.partitions().len() as i32);
        if n > 0 || Instant::now() > deadline {
            break n;
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    if partitions == 0 {
        return Err(Error::Kafka(format!(
            "{} {} has no partitions (is it being deleted?)",
            spec.setting, spec.name
        )));
    }
    if spec.single_partition && partitions != 1 {
        return Err(Error::Config(format!(
            "{}={} has {partitions} partitions; the config topic must have exactly 1 (its records must stay in order). Point {} at a new topic, or recreate this one with 1 partition",
            spec.setting, spec.name, spec.setting
        )));
    }
    let described = futures::executor::block_on(
        admin.describe_configs([&ResourceSpecifier::Topic(&spec.name)], &options),
    );
    // Like Java, the check is skipped when the configs cannot be described (no permission).
    if let Ok(results) = described
        && let Some(Ok(resource)) = results.first()
        && let Some(policy) = resource.get("cleanup.policy").and_then(|e| e.value.clone())
    {
        let parts: Vec<&str> = policy.split(',').map(str::trim).collect();
        if parts != ["compact"] {
            return Err(Error::Config(format!(
                "{}={} has cleanup.policy={policy}; Connect's internal topics must be compacted only, or old records are deleted and configs, offsets or statuses are lost. Fix it with: kafka-configs.sh --alter --entity-type topics --entity-name {} --add-config cleanup.policy=compact",
                spec.setting, spec.name, spec.name
            )));
        }
    }
    Ok(partitions)
}

impl KafkaLog {
    /// Ensures the topic and opens a reader (every partition, from the beginning) and a writer.
    /// `base` carries bootstrap servers and security; `read_committed` is for the config topic
    /// under exactly-once.
    pub fn open(
        base: &ClientConfig,
        spec: &TopicSpec,
        client_id: &str,
        read_committed: bool,
    ) -> Result<KafkaLog> {
        let partitions = ensure_topic(base, spec)?;
        let mut c = base.clone();
        c.set("client.id", client_id)
            .set("group.id", format!("{client_id}-unused"))
            .set("enable.auto.commit", "false")
            .set("enable.auto.offset.store", "false")
            .set("auto.offset.reset", "earliest")
            // Writers read their own records back at once: no fetch may sit in a back-off.
            .set("fetch.wait.max.ms", "100")
            .set("fetch.error.backoff.ms", "10")
            .set("fetch.queue.backoff.ms", "10")
            // After a broker restart the cached leader epochs go stale; librdkafka's default
            // refresh (5 min) left ListOffsets failing with FencedLeaderEpoch that long.
            .set("topic.metadata.refresh.interval.ms", METADATA_REFRESH)
            .set(
                "isolation.level",
                if read_committed {
                    "read_committed"
                } else {
                    "read_uncommitted"
                },
            );
        let consumer: BaseConsumer = c.create()?;
        let ends: BaseConsumer = c.create()?;
        let mut tpl = TopicPartitionList::new();
        for p in 0..partitions {
            tpl.add_partition_offset(&spec.name, p, Offset::Beginning)?;
        }
        consumer.assign(&tpl)?;
        let mut p = base.clone();
        p.set("client.id", client_id)
            .set("acks", "all")
            .set("enable.idempotence", "false")
            .set("max.in.flight.requests.per.connection", "1")
            .set("message.timeout.ms", "0")
            .set("linger.ms", "0")
            .set("topic.metadata.refresh.interval.ms", METADATA_REFRESH);
        let producer: BaseProducer<Deliveries> = p.create_with_context(Deliveries::default())?;
        Ok(KafkaLog {
            topic: spec.name.clone(),
            partitions,
            consumer,
            ends,
            producer,
            positions: (0..partitions).map(|p| (p, 0)).collect(),
        })
    }

    pub fn partitions(&self) -> i32 {
        self.partitions
    }

    /// Every partition's end offset in one ListOffsets round trip (as Java's `endOffsets`),
    /// not one per partition: a 25-partition offsets topic is read to its end on every lookup.
    fn end_offsets(&self, timeout: Duration) -> Result<BTreeMap<i32, i64>> {
        match self.end_offsets_once(timeout) {
            Ok(ends) => Ok(ends),
            Err(e) => {
                // A leader moved (FencedLeaderEpoch, UnknownPartition, NotLeader): fresh
                // metadata, then once more.
                tracing::debug!(topic = %self.topic, error = %e, "end offsets failed; refreshing metadata");
                let _ = self.ends.fetch_metadata(Some(&self.topic), timeout);
                self.end_offsets_once(timeout)
            }
        }
    }

    fn end_offsets_once(&self, timeout: Duration) -> Result<BTreeMap<i32, i64>> {
        let mut tpl = TopicPartitionList::new();
        for p in 0..self.partitions {
            // As a timestamp, -1 (`Offset::End`) asks for the latest offset.
            tpl.add_partition_offset(&self.topic, p, Offset::End)?;
        }
        let answer = self.ends.offsets_for_times(tpl, timeout)?;
        let mut ends = BTreeMap::new();
        for e in answer.elements() {
            if let Err(err) = e.error() {
                return Err(Error::Kafka(format!(
                    "end offset of {} partition {}: {err}",
                    self.topic,
                    e.partition()
                )));
            }
            let end = match e.offset() {
                Offset::Offset(o) => o,
                other => other.to_raw().unwrap_or(0).max(0),
            };
            ends.insert(e.partition(), end);
        }
        Ok(ends)
    }

    /// Reads every record up to the end offsets as of now, handing each to `apply` in partition
    /// order; fails after `timeout`.
    pub fn read_to_end(
        &mut self,
        timeout: Duration,
        mut apply: impl FnMut(LogRecord),
    ) -> Result<()> {
        let deadline = Instant::now() + timeout;
        let ends = self.end_offsets(timeout.min(ADMIN_TIMEOUT))?;
        while ends
            .iter()
            .any(|(p, end)| self.positions.get(p).copied().unwrap_or(0) < *end)
        {
            if Instant::now() > deadline {
                return Err(Error::Kafka(format!(
                    "reading {} to its end took longer than {timeout:?}",
                    self.topic
                )));
            }
            let Some(m) = self.consumer.poll(Duration::from_millis(100)) else {
                // Compaction and transaction markers leave gaps: the position tells where the
                // reader really is.
                if let Ok(pos) = self.consumer.position() {
                    for e in pos.elements() {
                        if let Some(o) = e.offset().to_raw().filter(|o| *o >= 0) {
                            let cur = self.positions.entry(e.partition()).or_default();
                            *cur = (*cur).max(o);
                        }
                    }
                }
                continue;
            };
            let m = m?;
            self.positions.insert(m.partition(), m.offset() + 1);
            apply(LogRecord {
                partition: m.partition(),
                offset: m.offset(),
                key: m.key().unwrap_or_default().to_vec(),
                value: m.payload().map(<[u8]>::to_vec),
            });
        }
        Ok(())
    }

    /// Writes one record on Java's partition for its key and waits for the broker's ack.
    pub fn send(&self, key: &[u8], value: Option<&[u8]>, timeout: Duration) -> Result<()> {
        let partition = partition_for(key, self.partitions);
        let mut record = BaseRecord::<[u8], [u8]>::to(&self.topic)
            .key(key)
            .partition(partition);
        if let Some(v) = value {
            record = record.payload(v);
        }
        self.producer
            .send(record)
            .map_err(|(e, _)| Error::Kafka(format!("writing to {}: {e}", self.topic)))?;
        // Serve the delivery report ourselves: `flush` waits in 100 ms steps when reports go
        // through the event queue, and every config write waits for its acknowledgement.
        let deadline = Instant::now() + timeout;
        while self.producer.in_flight_count() > 0 {
            if Instant::now() > deadline {
                return Err(Error::Kafka(format!(
                    "writing to {}: not acknowledged within {timeout:?}",
                    self.topic
                )));
            }
            self.producer.poll(Duration::from_millis(1));
        }
        let failed = self
            .producer
            .context()
            .failed
            .lock()
            .ok()
            .and_then(|mut f| f.take());
        match failed {
            Some(e) => Err(Error::Kafka(format!("writing to {}: {e}", self.topic))),
            None => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Hashes and partitions computed by Kafka 4.3.1's `Utils.murmur2` and `Utils.toPositive`
    /// (a Java program on the Foundation jars), for 25 (offsets) and 5 (statuses) partitions.
    #[test]
    fn matches_kafkas_murmur2_and_default_partitioner() {
        let cases: &[(&str, i32, i32, i32)] = &[
            ("21", -973_932_308, 15, 0),
            ("foobar", -790_332_482, 16, 1),
            ("a-little-bit-long-string", -985_981_536, 12, 2),
            ("status-connector-c", -282_183_708, 15, 0),
            ("status-task-my-conn-12", 1_402_435_662, 12, 2),
            ("[\"src\",{\"filename\":\"/a.txt\"}]", 1_376_378_192, 17, 2),
            ("", 275_646_681, 6, 1),
        ];
        for &(key, hash, p25, p5) in cases {
            assert_eq!(murmur2(key.as_bytes()), hash, "{key:?}");
            assert_eq!(partition_for(key.as_bytes(), 25), p25, "{key:?} of 25");
            assert_eq!(partition_for(key.as_bytes(), 5), p5, "{key:?} of 5");
        }
        assert_eq!(partition_for(b"x", 1), 0);
    }
}
