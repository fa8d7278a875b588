//! The worker's own settings (`connect-compat.md` §6), defined once with `ConfigDef` so that
//! start-up refuses a bad value with the key, the value and the reason, and lists every problem
//! at once. Unknown keys are only warned about: Java workers accept them, and files are shared.

use std::collections::BTreeMap;
use std::sync::Arc;

use tributary_connect_api::config_def::{
    ConfigDef, ConfigError, ConfigKey, ConfigType as T, ConfigValue, Importance as I, at_least,
    non_empty_string, one_of,
};

/// Which command the worker runs as; they need different keys.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    Standalone,
    Distributed,
}

/// Key prefixes whose keys belong to something else (clients, converters, topics, providers, TLS)
/// and so are never "unknown".
const PASSED_ON_PREFIXES: &[&str] = &[
    "producer.",
    "consumer.",
    "admin.",
    "key.converter.",
    "value.converter.",
    "header.converter.",
    "config.providers.",
    "config.storage.",
    "offset.storage.",
    "status.storage.",
    "listeners.https.",
    "admin.listeners.https.",
    "ssl.",
    "sasl.",
    "security.",
    "rest.extension.",
    "metric.reporters",
    "metrics.",
];

fn common() -> ConfigDef {
    let ms = |name: &str, default: &str, doc: &str| {
        ConfigKey::new(name, T::Long, I::Low, doc)
            .default_value(default)
            .validator(at_least(0.0))
    };
    ConfigDef::new()
        .define(
            ConfigKey::new(
                "bootstrap.servers",
                T::List,
                I::High,
                "Kafka brokers to connect to.",
            )
            .default_value("localhost:9092"),
        )
        .define(ConfigKey::new(
            "key.converter",
            T::Class,
            I::High,
            "Converter of record keys.",
        ))
        .define(ConfigKey::new(
            "value.converter",
            T::Class,
            I::High,
            "Converter of record values.",
        ))
        .define(
            ConfigKey::new(
                "header.converter",
                T::Class,
                I::Low,
                "Converter of record headers.",
            )
            .default_value("org.apache.kafka.connect.storage.SimpleHeaderConverter"),
        )
        .define(
            ConfigKey::new("listeners", T::List, I::Low, "REST listeners.")
                .default_value("http://:8083"),
        )
        .define(
            ConfigKey::new(
                "rest.advertised.host.name",
                T::String,
                I::Low,
                "Host name other workers reach this one at.",
            )
            .default_value(""),
        )
        .define(
            ConfigKey::new(
                "rest.advertised.port",
                T::Int,
                I::Low,
                "Port other workers reach this one at.",
            )
            .default_value("0")
            .validator(at_least(0.0)),
        )
        .define(
            ConfigKey::new(
                "rest.advertised.listener",
                T::String,
                I::Low,
                "http or https.",
            )
            .default_value(""),
        )
        .define(
            ConfigKey::new("admin.listeners", T::List, I::Low, "Admin REST listeners.")
                .default_value(""),
        )
        .define(
            ConfigKey::new(
                "tributary.health.listener",
                T::String,
                I::Low,
                "Where /health, /ready and /metrics are served (Tributary's own listener, for probes and Prometheus); empty to disable.",
            )
            .default_value("http://0.0.0.0:8084"),
        )
        .define(
            ConfigKey::new(
                "tributary.rest.basic.auth.username",
                T::String,
                I::Medium,
                "When set, every REST request must authenticate with this user (HTTP basic).",
            )
            .default_value(""),
        )
        .define(
            ConfigKey::new(
                "tributary.rest.basic.auth.password",
                T::Password,
                I::Medium,
                "The REST user's password; give it through a config provider (${file:/path:key}).",
            )
            .default_value(""),
        )
        .define(
            ConfigKey::new(
                "tributary.provenance.headers",
                T::Boolean,
                I::Low,
                "Distributed mode: add tributary.worker, tributary.task and tributary.generation headers to every record source tasks produce, to audit from the data which worker ran a task when.",
            )
            .default_value("false"),
        )
        .define(ms(
            "offset.flush.interval.ms",
            "60000",
            "How often source offsets are committed.",
        ))
        .define(ms(
            "offset.flush.timeout.ms",
            "5000",
            "How long an offset flush may take.",
        ))
        .define(ms(
            "task.shutdown.graceful.timeout.ms",
            "5000",
            "Time all tasks get to stop, in total.",
        ))
        .define(
            ConfigKey::new(
                "plugin.path",
                T::List,
                I::Low,
                "Plugin folders (Java plugins are not loaded here).",
            )
            .default_value(""),
        )
        .define(
            ConfigKey::new(
                "config.providers",
                T::List,
                I::Low,
                "Config provider names.",
            )
            .default_value(""),
        )
        .define(
            ConfigKey::new(
                "connector.client.config.override.policy",
                T::String,
                I::Medium,
                "Which client overrides connectors may set.",
            )
            .default_value("All")
            .validator(one_of(&["None", "Principal", "All"])),
        )
        .define(
            ConfigKey::new(
                "topic.creation.enable",
                T::Boolean,
                I::Low,
                "Let source connectors create topics.",
            )
            .default_value("true"),
        )
        .define(
            ConfigKey::new(
                "topic.tracking.enable",
                T::Boolean,
                I::Low,
                "Track the topics connectors use.",
            )
            .default_value("true"),
        )
        .define(
            ConfigKey::new(
                "topic.tracking.allow.reset",
                T::Boolean,
                I::Low,
                "Allow resetting tracked topics.",
            )
            .default_value("true"),
        )
        .define(
            ConfigKey::new("client.id", T::String, I::Low, "Client id prefix.").default_value(""),
        )
        .define(ms(
            "metadata.max.age.ms",
            "300000",
            "Metadata refresh interval.",
        ))
}

/// Every key the worker knows in `mode`, with defaults and validators.
pub fn config_def(mode: Mode) -> ConfigDef {
    let def = common();
    match mode {
        Mode::Standalone => def.define(
            ConfigKey::new(
                "offset.storage.file.filename",
                T::String,
                I::High,
                "File holding source offsets.",
            )
            .validator(non_empty_string()),
        ),
        Mode::Distributed => {
            let topic = |name: &str, doc: &str| {
                ConfigKey::new(name, T::String, I::High, doc).validator(non_empty_string())
            };
            let replication = |name: &str| {
                ConfigKey::new(
                    name,
                    T::Short,
                    I::Low,
                    "Replication factor; -1 for the broker default.",
                )
                .default_value("3")
                .validator(Arc::new(|v| match v {
                    ConfigValue::Short(n) if *n == -1 || *n >= 1 => Ok(()),
                    _ => Err(
                        "Replication factor must be positive or -1 for the broker default"
                            .to_string(),
                    ),
                }))
            };
            let ms = |name: &str, default: &str, doc: &str| {
                ConfigKey::new(name, T::Int, I::Low, doc)
                    .default_value(default)
                    .validator(at_least(0.0))
            };
            def.define(topic("group.id", "The Connect cluster this worker joins."))
                .define(topic("config.storage.topic", "Topic of connector configs."))
                .define(topic("offset.storage.topic", "Topic of source offsets."))
                .define(topic("status.storage.topic", "Topic of statuses."))
                .define(replication("config.storage.replication.factor"))
                .define(replication("offset.storage.replication.factor"))
                .define(replication("status.storage.replication.factor"))
                .define(
                    ConfigKey::new(
                        "offset.storage.partitions",
                        T::Int,
                        I::Low,
                        "Partitions of the offsets topic.",
                    )
                    .default_value("25"),
                )
                .define(
                    ConfigKey::new(
                        "status.storage.partitions",
                        T::Int,
                        I::Low,
                        "Partitions of the status topic.",
                    )
                    .default_value("5"),
                )
                .define(ms("session.timeout.ms", "10000", "Group session timeout."))
                .define(ms(
                    "heartbeat.interval.ms",
                    "3000",
                    "Group heartbeat interval.",
                ))
                .define(ms(
                    "rebalance.timeout.ms",
                    "60000",
                    "Group rebalance timeout.",
                ))
                .define(ms(
                    "worker.sync.timeout.ms",
                    "3000",
                    "How long to wait to catch up with the config topic.",
                ))
                .define(ms(
                    "worker.unsync.backoff.ms",
                    "300000",
                    "Back-off after failing to catch up.",
                ))
                .define(ms(
                    "scheduled.rebalance.max.delay.ms",
                    "300000",
                    "How long lost work waits for its worker.",
                ))
                .define(
                    ConfigKey::new("connect.protocol", T::String, I::Low, "Group protocol.")
                        .default_value("sessioned")
                        .validator(one_of(&["eager", "compatible", "sessioned"])),
                )
                .define(
                    ConfigKey::new(
                        "exactly.once.source.support",
                        T::String,
                        I::High,
                        "Exactly-once source support.",
                    )
                    .default_value("disabled")
                    .validator(one_of(&["disabled", "preparing", "enabled"])),
                )
                .define(
                    ConfigKey::new(
                        "inter.worker.key.generation.algorithm",
                        T::String,
                        I::Low,
                        "MAC algorithm of the session keys the leader generates.",
                    )
                    .default_value("HmacSHA256"),
                )
                .define(
                    ConfigKey::new(
                        "inter.worker.key.size",
                        T::Int,
                        I::Low,
                        "Session key size in bits; 0 for the algorithm's default (256 bits for HmacSHA256).",
                    )
                    .default_value("0")
                    .validator(at_least(0.0)),
                )
                .define(ms(
                    "inter.worker.key.ttl.ms",
                    "3600000",
                    "How long a session key is used before the leader writes a new one.",
                ))
                .define(
                    ConfigKey::new(
                        "inter.worker.signature.algorithm",
                        T::String,
                        I::Low,
                        "MAC algorithm that signs internal requests.",
                    )
                    .default_value("HmacSHA256"),
                )
                .define(
                    ConfigKey::new(
                        "inter.worker.verification.algorithms",
                        T::List,
                        I::Low,
                        "MAC algorithms accepted on internal requests.",
                    )
                    .default_value("HmacSHA256"),
                )
        }
    }
}

/// The parsed worker settings, and the keys no definition or known prefix covers.
#[derive(Debug, Clone)]
pub struct WorkerConfig {
    pub mode: Mode,
    pub values: BTreeMap<String, ConfigValue>,
    pub unknown_keys: Vec<String>,
}

impl WorkerConfig {
    /// Parses worker properties; every invalid or missing key is reported at once.
    pub fn parse(mode: Mode, props: &BTreeMap<String, String>) -> Result<Self, Vec<ConfigError>> {
        let def = config_def(mode);
        let values = def.parse(props)?;
        let unknown_keys = props
            .keys()
            .filter(|k| {
                def.key(k).is_none() && !PASSED_ON_PREFIXES.iter().any(|p| k.starts_with(p))
            })
            .cloned()
            .collect();
        Ok(Self {
            mode,
            values,
            unknown_keys,
        })
    }

    pub fn get(&self, key: &str) -> Option<&ConfigValue> {
        self.values.get(key)
    }

    /// A `LONG` setting in milliseconds.
    pub fn millis(&self, key: &str) -> Option<u64> {
        match self.values.get(key)? {
            ConfigValue::Long(n) => u64::try_from(*n).ok(),
            ConfigValue::Int(n) => u64::try_from(*n).ok(),
            _ => None,
        }
    }

    /// Refuses what this version cannot do yet, with the reason, instead of half-doing it.
    pub fn unsupported(&self) -> Option<String> {
        match self.values.get("exactly.once.source.support") {
            Some(ConfigValue::String(s)) if s == "enabled" => Some(
                "exactly.once.source.support=enabled is not supported yet by tributary-worker; use disabled or preparing".to_string(),
            ),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn props(list: &[(&str, &str)]) -> BTreeMap<String, String> {
        list.iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    const CONVERTERS: [(&str, &str); 2] = [
        (
            "key.converter",
            "org.apache.kafka.connect.json.JsonConverter",
        ),
        (
            "value.converter",
            "org.apache.kafka.connect.json.JsonConverter",
        ),
    ];

    #[test]
    fn defaults_match_java() {
        let mut p = props(&[("offset.storage.file.filename", "/tmp/offsets")]);
        p.extend(props(&CONVERTERS));
        let c = WorkerConfig::parse(Mode::Standalone, &p).expect("valid");
        assert_eq!(c.millis("offset.flush.interval.ms"), Some(60_000));
        assert_eq!(c.millis("task.shutdown.graceful.timeout.ms"), Some(5_000));
        assert_eq!(
            c.get("bootstrap.servers"),
            Some(&ConfigValue::List(vec!["localhost:9092".into()]))
        );
        assert_eq!(
            c.get("listeners"),
            Some(&ConfigValue::List(vec!["http://:8083".into()]))
        );
        assert_eq!(
            c.get("connector.client.config.override.policy"),
            Some(&ConfigValue::String("All".into()))
        );
        assert!(c.unknown_keys.is_empty());
    }

    #[test]
    fn distributed_needs_its_topics_and_says_which_are_missing() {
        let errors =
            WorkerConfig::parse(Mode::Distributed, &props(&CONVERTERS)).expect_err("missing");
        let missing: Vec<&str> = errors.iter().map(ConfigError::name).collect();
        assert_eq!(
            missing,
            [
                "group.id",
                "config.storage.topic",
                "offset.storage.topic",
                "status.storage.topic"
            ]
        );
    }

    #[test]
    fn bad_values_name_key_value_and_reason_and_unknown_keys_are_only_warned() {
        let mut p = props(&[
            ("group.id", "connect"),
            ("config.storage.topic", "c"),
            ("offset.storage.topic", "o"),
            ("status.storage.topic", "s"),
            ("offset.flush.interval.ms", "soon"),
            ("config.storage.replication.factor", "0"),
            ("connect.protocol", "cooperative"),
            ("producer.linger.ms", "5"),
            ("consumer.override.foo", "x"),
            ("made.up.key", "1"),
        ]);
        p.extend(props(&CONVERTERS));
        let errors: Vec<String> = WorkerConfig::parse(Mode::Distributed, &p)
            .expect_err("invalid")
            .iter()
            .map(ToString::to_string)
            .collect();
        assert_eq!(
            errors,
            [
                "Invalid value soon for configuration offset.flush.interval.ms: Not a number of type LONG",
                "Invalid value 0 for configuration config.storage.replication.factor: Replication factor must be positive or -1 for the broker default",
                "Invalid value cooperative for configuration connect.protocol: String must be one of: eager, compatible, sessioned",
            ]
        );
        p.remove("offset.flush.interval.ms");
        p.insert("config.storage.replication.factor".into(), "-1".into());
        p.remove("connect.protocol");
        let c = WorkerConfig::parse(Mode::Distributed, &p).expect("valid");
        assert_eq!(c.unknown_keys, ["made.up.key"]);
    }

    #[test]
    fn exactly_once_enabled_is_refused_with_the_reason() {
        let mut p = props(&[
            ("group.id", "g"),
            ("config.storage.topic", "c"),
            ("offset.storage.topic", "o"),
            ("status.storage.topic", "s"),
            ("exactly.once.source.support", "enabled"),
        ]);
        p.extend(props(&CONVERTERS));
        let c = WorkerConfig::parse(Mode::Distributed, &p).expect("valid syntax");
        assert!(
            c.unsupported()
                .expect("refused")
                .contains("exactly.once.source.support=enabled")
        );
    }
}
