//! Worker settings → the internal topics and the group, as Java's `DistributedConfig` reads them.

use std::collections::BTreeMap;
use std::time::Duration;

use tributary_connect_api::config_def::ConfigValue;
use tributary_connect_protocol::ConnectProtocol;

use crate::config::worker::WorkerConfig;
use crate::coordinator::machine::GroupSettings;
use crate::error::{Error, Result};
use crate::kafka_log::TopicSpec;

fn string(config: &WorkerConfig, key: &str) -> Result<String> {
    match config.get(key) {
        Some(ConfigValue::String(s)) => Ok(s.clone()),
        _ => Err(Error::Config(format!(
            "{key} is required in distributed mode"
        ))),
    }
}

fn int(config: &WorkerConfig, key: &str, default: i64) -> i64 {
    match config.get(key) {
        Some(ConfigValue::Int(n)) => i64::from(*n),
        Some(ConfigValue::Short(n)) => i64::from(*n),
        Some(ConfigValue::Long(n)) => *n,
        _ => default,
    }
}

/// `<prefix>.*` settings other than the ones the spec sets itself, as extra topic configs.
fn extras(props: &BTreeMap<String, String>, prefix: &str) -> BTreeMap<String, String> {
    props
        .iter()
        .filter_map(|(k, v)| {
            let name = k.strip_prefix(prefix)?.strip_prefix('.')?;
            (!matches!(
                name,
                "topic" | "partitions" | "replication.factor" | "cleanup.policy"
            ))
            .then(|| (name.to_string(), v.clone()))
        })
        .collect()
}

/// The config, offsets and status topics: names, partitions (1 for configs), replication and
/// extra settings from `config.storage.*`, `offset.storage.*`, `status.storage.*`.
pub fn topic_specs(
    config: &WorkerConfig,
    props: &BTreeMap<String, String>,
) -> Result<[TopicSpec; 3]> {
    let spec = |setting: &'static str, prefix: &str, partitions: i32| -> Result<TopicSpec> {
        Ok(TopicSpec {
            configs: extras(props, prefix),
            ..TopicSpec::new(
                setting,
                string(config, setting)?,
                partitions,
                int(config, &format!("{prefix}.replication.factor"), 3) as i32,
            )
        })
    };
    Ok([
        spec("config.storage.topic", "config.storage", 1)?,
        spec(
            "offset.storage.topic",
            "offset.storage",
            int(config, "offset.storage.partitions", 25) as i32,
        )?,
        spec(
            "status.storage.topic",
            "status.storage",
            int(config, "status.storage.partitions", 5) as i32,
        )?,
    ])
}

/// Group membership settings: Java's defaults, overridden by the worker's.
pub fn group_settings(config: &WorkerConfig) -> Result<GroupSettings> {
    let d = GroupSettings::connect(string(config, "group.id")?);
    let ms = |key: &str, default: Duration| {
        Duration::from_millis(int(config, key, default.as_millis() as i64).max(0) as u64)
    };
    Ok(GroupSettings {
        session_timeout: ms("session.timeout.ms", d.session_timeout),
        rebalance_timeout: ms("rebalance.timeout.ms", d.rebalance_timeout),
        heartbeat_interval: ms("heartbeat.interval.ms", d.heartbeat_interval),
        retry_backoff: ms("retry.backoff.ms", d.retry_backoff),
        request_timeout: ms("request.timeout.ms", d.request_timeout),
        ..d
    })
}

/// `connect.protocol`.
pub fn protocol(config: &WorkerConfig) -> Result<ConnectProtocol> {
    match config.get("connect.protocol") {
        Some(ConfigValue::String(s)) => {
            ConnectProtocol::from_config(s).map_err(|e| Error::Config(e.to_string()))
        }
        _ => Ok(ConnectProtocol::Sessioned),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::worker::Mode;

    fn config(extra: &[(&str, &str)]) -> (WorkerConfig, BTreeMap<String, String>) {
        let mut props: BTreeMap<String, String> = [
            ("bootstrap.servers", "b:9092"),
            (
                "key.converter",
                "org.apache.kafka.connect.json.JsonConverter",
            ),
            (
                "value.converter",
                "org.apache.kafka.connect.json.JsonConverter",
            ),
            ("group.id", "connect-cluster"),
            ("config.storage.topic", "connect-configs"),
            ("offset.storage.topic", "connect-offsets"),
            ("status.storage.topic", "connect-status"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
        for (k, v) in extra {
            props.insert(k.to_string(), v.to_string());
        }
        let c = WorkerConfig::parse(Mode::Distributed, &props).unwrap_or_else(|e| panic!("{e:?}"));
        (c, props)
    }

    #[test]
    fn topics_take_javas_defaults_and_the_storage_prefixes() {
        let (c, p) = config(&[
            ("offset.storage.partitions", "10"),
            ("status.storage.replication.factor", "-1"),
            ("config.storage.min.insync.replicas", "2"),
            ("config.storage.cleanup.policy", "delete"),
        ]);
        let [configs, offsets, status] = topic_specs(&c, &p).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            (
                configs.name.as_str(),
                configs.partitions,
                configs.replication
            ),
            ("connect-configs", 1, 3)
        );
        assert!(configs.single_partition);
        assert_eq!(
            configs.configs,
            BTreeMap::from([("min.insync.replicas".to_string(), "2".to_string())]),
            "cleanup.policy is not the user's to set"
        );
        assert_eq!((offsets.partitions, offsets.replication), (10, 3));
        assert_eq!((status.partitions, status.replication), (5, -1));
    }

    #[test]
    fn group_settings_and_protocol() {
        let (c, _) = config(&[
            ("session.timeout.ms", "6000"),
            ("connect.protocol", "compatible"),
        ]);
        let g = group_settings(&c).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(g.group_id, "connect-cluster");
        assert_eq!(g.protocol_type, "connect");
        assert_eq!(g.session_timeout, Duration::from_secs(6));
        assert_eq!(g.heartbeat_interval, Duration::from_secs(3));
        assert_eq!(protocol(&c).ok(), Some(ConnectProtocol::Compatible));
        let (d, _) = config(&[]);
        assert_eq!(protocol(&d).ok(), Some(ConnectProtocol::Sessioned));
    }
}
