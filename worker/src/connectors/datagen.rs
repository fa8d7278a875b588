//! A data generator source for demos and benchmarks: a few built-in record shapes, a rate limit
//! per task, and a bounded key space. Records are deterministic per task and sequence number, so
//! a restarted task resumes its sequence from the stored offset and regenerates the same data.
//!
//! Keys follow Confluent's datagen where they overlap (`kafka.topic`, `quickstart`,
//! `iterations`); `records.per.second`, `key.cardinality` and `payload.size` are ours.

use std::sync::Arc;
use std::time::{Duration, Instant};

use tributary_connect_api::config_def::{at_least, non_empty_string, one_of};
use tributary_connect_api::{
    Config, ConfigDef, ConfigKey, ConfigType, ConnectError, ConnectResult, Connector,
    ConnectorContext, Importance, OffsetMap, Schema, SchemaBuilder, SourceConnector, SourceRecord,
    SourceTask, SourceTaskContext, Struct, Value,
};

pub const CLASS: &str = "dev.tributary.connect.datagen.DatagenConnector";
pub const TASK_CLASS: &str = "dev.tributary.connect.datagen.DatagenTask";

fn def() -> ConfigDef {
    ConfigDef::new()
        .define(
            ConfigKey::new("kafka.topic", ConfigType::String, Importance::High, "Topic to write to.")
                .validator(non_empty_string()),
        )
        .define(
            ConfigKey::new(
                "quickstart",
                ConfigType::String,
                Importance::High,
                "Record shape: users, pageviews (structs; use JsonConverter) or bytes (a string of payload.size characters).",
            )
            .default_value("users")
            .validator(one_of(&["users", "pageviews", "bytes"])),
        )
        .define(
            ConfigKey::new(
                "records.per.second",
                ConfigType::Double,
                Importance::Medium,
                "Records per second per task; 0 for as fast as the pipeline takes them.",
            )
            .default_value("10")
            .validator(at_least(0.0)),
        )
        .define(
            ConfigKey::new(
                "key.cardinality",
                ConfigType::Long,
                Importance::Low,
                "How many distinct keys records carry.",
            )
            .default_value("1000")
            .validator(at_least(1.0)),
        )
        .define(
            ConfigKey::new(
                "iterations",
                ConfigType::Long,
                Importance::Low,
                "Records per task before it stops producing; -1 for no limit.",
            )
            .default_value("-1"),
        )
        .define(
            ConfigKey::new(
                "payload.size",
                ConfigType::Int,
                Importance::Low,
                "Characters per record for quickstart=bytes.",
            )
            .default_value("100")
            .validator(at_least(0.0)),
        )
}

#[derive(Debug, Default)]
pub struct DatagenConnector {
    config: Config,
}

impl Connector for DatagenConnector {
    fn version(&self) -> String {
        env!("CARGO_PKG_VERSION").to_string()
    }
    fn config_def(&self) -> ConfigDef {
        def()
    }
    fn start(&mut self, config: &Config, _context: Arc<dyn ConnectorContext>) -> ConnectResult<()> {
        super::check_config(&def(), config)?;
        self.config = config.clone();
        Ok(())
    }
    /// `tasks.max` identical generators, each with its own sequence (`task.id`).
    fn task_configs(&self, max_tasks: usize) -> ConnectResult<Vec<Config>> {
        Ok((0..max_tasks.max(1))
            .map(|i| {
                let mut c = self.config.clone();
                c.insert("task.id".into(), i.to_string());
                c
            })
            .collect())
    }
    fn stop(&mut self) -> ConnectResult<()> {
        Ok(())
    }
}

impl SourceConnector for DatagenConnector {
    fn create_task(&self) -> Box<dyn SourceTask> {
        Box::new(DatagenTask::default())
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
enum Shape {
    #[default]
    Users,
    Pageviews,
    Bytes,
}

#[derive(Debug, Default)]
pub struct DatagenTask {
    topic: String,
    shape: Shape,
    rate: f64,
    keys: u64,
    iterations: i64,
    payload: usize,
    task_id: u64,
    seq: u64,
    started: Option<Instant>,
    sent_since_start: u64,
    partition: Arc<OffsetMap>,
    schema: Option<Schema>,
}

/// A 64-bit mix (splitmix64): a stable pseudo-random value for (task, sequence).
fn mix(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    x = (x ^ (x >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    x ^ (x >> 31)
}

const REGIONS: &[&str] = &["Region_1", "Region_2", "Region_3", "Region_4", "Region_5"];
const GENDERS: &[&str] = &["MALE", "FEMALE", "OTHER"];

fn pick<'a>(list: &[&'a str], r: u64) -> &'a str {
    list[(r % list.len() as u64) as usize]
}

impl DatagenTask {
    fn schema_for(shape: Shape) -> ConnectResult<Option<Schema>> {
        let fatal = |e: tributary_connect_api::DataError| ConnectError::fatal(e.to_string());
        Ok(match shape {
            Shape::Users => Some(
                SchemaBuilder::struct_()
                    .name("ksql.users")
                    .field("registertime", Schema::int64())
                    .field("userid", Schema::string())
                    .field("regionid", Schema::string())
                    .field("gender", Schema::string())
                    .build()
                    .map_err(fatal)?,
            ),
            Shape::Pageviews => Some(
                SchemaBuilder::struct_()
                    .name("ksql.pageviews")
                    .field("viewtime", Schema::int64())
                    .field("userid", Schema::string())
                    .field("pageid", Schema::string())
                    .build()
                    .map_err(fatal)?,
            ),
            Shape::Bytes => None,
        })
    }

    fn record(&self, seq: u64) -> ConnectResult<SourceRecord> {
        let r = mix(self.task_id << 48 ^ seq);
        let key = format!("key-{}", r % self.keys);
        let fatal = |e: tributary_connect_api::DataError| ConnectError::fatal(e.to_string());
        let (value_schema, value) = match (self.shape, &self.schema) {
            (Shape::Bytes, _) | (_, None) => {
                let mut s = format!("{seq:020}-");
                while s.len() < self.payload {
                    s.push((b'a' + (mix(r ^ s.len() as u64) % 26) as u8) as char);
                }
                s.truncate(self.payload);
                (Some(Schema::string()), Value::String(s))
            }
            (Shape::Users, Some(schema)) => {
                let mut v = Struct::new(schema.clone()).map_err(fatal)?;
                v.put(
                    "registertime",
                    Some(Value::Int64(
                        1_500_000_000_000 + (r % 100_000_000_000) as i64,
                    )),
                )
                .map_err(fatal)?
                .put(
                    "userid",
                    Some(Value::String(format!("User_{}", r % self.keys))),
                )
                .map_err(fatal)?
                .put(
                    "regionid",
                    Some(Value::String(pick(REGIONS, r >> 8).into())),
                )
                .map_err(fatal)?
                .put("gender", Some(Value::String(pick(GENDERS, r >> 16).into())))
                .map_err(fatal)?;
                (Some(schema.clone()), Value::Struct(v))
            }
            (Shape::Pageviews, Some(schema)) => {
                let mut v = Struct::new(schema.clone()).map_err(fatal)?;
                v.put("viewtime", Some(Value::Int64(seq as i64)))
                    .map_err(fatal)?
                    .put(
                        "userid",
                        Some(Value::String(format!("User_{}", r % self.keys))),
                    )
                    .map_err(fatal)?
                    .put(
                        "pageid",
                        Some(Value::String(format!("Page_{}", (r >> 20) % 100))),
                    )
                    .map_err(fatal)?;
                (Some(schema.clone()), Value::Struct(v))
            }
        };
        let mut offset = OffsetMap::new();
        offset.insert("seq".into(), serde_json::Value::from(seq));
        Ok(SourceRecord::new(
            self.partition.clone(),
            offset,
            self.topic.clone(),
            value_schema,
            Some(value),
        )
        .with_key(Some(Schema::string()), Some(Value::String(key))))
    }
}

impl SourceTask for DatagenTask {
    fn version(&self) -> String {
        env!("CARGO_PKG_VERSION").to_string()
    }

    fn start(&mut self, context: SourceTaskContext) -> ConnectResult<()> {
        let c = &context.config;
        let num =
            |k: &str, d: f64| -> f64 { c.get(k).and_then(|v| v.trim().parse().ok()).unwrap_or(d) };
        self.topic = c
            .get("kafka.topic")
            .cloned()
            .ok_or_else(|| ConnectError::Config("kafka.topic is not set".into()))?;
        self.shape = match c.get("quickstart").map(|s| s.trim()) {
            Some("pageviews") => Shape::Pageviews,
            Some("bytes") => Shape::Bytes,
            _ => Shape::Users,
        };
        self.rate = num("records.per.second", 10.0);
        self.keys = (num("key.cardinality", 1000.0) as u64).max(1);
        self.iterations = num("iterations", -1.0) as i64;
        self.payload = num("payload.size", 100.0) as usize;
        self.task_id = num("task.id", 0.0) as u64;
        self.schema = Self::schema_for(self.shape)?;
        self.partition = Arc::new(OffsetMap::from([(
            "task".to_string(),
            serde_json::Value::from(self.task_id),
        )]));
        self.seq = context
            .offset_reader
            .offset(&self.partition)
            .and_then(|o| o.get("seq").and_then(serde_json::Value::as_u64))
            .map_or(0, |s| s + 1);
        Ok(())
    }

    fn poll(&mut self) -> ConnectResult<Vec<SourceRecord>> {
        if self.iterations >= 0 && self.seq >= self.iterations as u64 {
            std::thread::sleep(Duration::from_millis(200));
            return Ok(Vec::new());
        }
        let started = *self.started.get_or_insert_with(Instant::now);
        let mut batch = 1000u64;
        if self.rate > 0.0 {
            let due = (started.elapsed().as_secs_f64() * self.rate) as u64;
            let behind = due.saturating_sub(self.sent_since_start);
            if behind == 0 {
                let wait = (1.0 / self.rate).min(0.2);
                std::thread::sleep(Duration::from_secs_f64(wait));
                return Ok(Vec::new());
            }
            batch = batch.min(behind);
        }
        if self.iterations >= 0 {
            batch = batch.min(self.iterations as u64 - self.seq);
        }
        let mut records = Vec::with_capacity(batch as usize);
        for _ in 0..batch {
            records.push(self.record(self.seq)?);
            self.seq += 1;
            self.sent_since_start += 1;
        }
        Ok(records)
    }

    fn stop(&mut self) -> ConnectResult<()> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    struct NoOffsets;
    impl tributary_connect_api::OffsetStorageReader for NoOffsets {
        fn offset(&self, _partition: &OffsetMap) -> Option<OffsetMap> {
            None
        }
    }

    fn task(extra: &[(&str, &str)]) -> DatagenTask {
        let mut config: Config = [("kafka.topic".to_string(), "t".to_string())].into();
        for (k, v) in extra {
            config.insert((*k).to_string(), (*v).to_string());
        }
        let mut t = DatagenTask::default();
        t.start(SourceTaskContext {
            config,
            offset_reader: Arc::new(NoOffsets),
        })
        .unwrap_or_else(|e| panic!("{e}"));
        t
    }

    #[test]
    fn records_are_deterministic_bounded_and_sized() {
        let mut a = task(&[
            ("records.per.second", "0"),
            ("iterations", "50"),
            ("key.cardinality", "7"),
        ]);
        let mut b = task(&[
            ("records.per.second", "0"),
            ("iterations", "50"),
            ("key.cardinality", "7"),
        ]);
        let (ra, rb) = (a.poll().unwrap_or_default(), b.poll().unwrap_or_default());
        assert_eq!(ra.len(), 50);
        assert_eq!(ra, rb);
        let keys: std::collections::BTreeSet<_> =
            ra.iter().map(|r| format!("{:?}", r.key)).collect();
        assert!(keys.len() <= 7);
        assert!(a.poll().unwrap_or_default().is_empty(), "iterations bound");
        for r in &ra {
            let Some(Value::Struct(s)) = &r.value else {
                panic!("users are structs")
            };
            assert!(s.validate().is_ok());
        }
        let mut bytes = task(&[
            ("quickstart", "bytes"),
            ("payload.size", "100"),
            ("records.per.second", "0"),
        ]);
        let r = bytes.poll().unwrap_or_default();
        assert_eq!(r.len(), 1000);
        assert!(
            r.iter()
                .all(|r| matches!(&r.value, Some(Value::String(s)) if s.len() == 100))
        );
    }

    #[test]
    fn the_rate_limit_holds() {
        let mut t = task(&[("records.per.second", "200")]);
        let start = Instant::now();
        let mut n = 0;
        while start.elapsed() < Duration::from_millis(500) {
            n += t.poll().unwrap_or_default().len();
        }
        assert!((60..=140).contains(&n), "{n} records in 0.5 s at 200/s");
    }
}
