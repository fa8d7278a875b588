//! Connector config validation, shared by `PUT /connector-plugins/{p}/config/validate`, connector
//! creation and updates: the worker's common connector keys (Java's `ConnectorConfig`,
//! `SinkConnectorConfig`, `SourceConnectorConfig`) plus the plugin's own, and the checks that
//! cross keys (converters, `topics`/`topics.regex`, error handling, topic creation, client
//! overrides). Pure: the result is the REST `ConfigInfos`.

use tributary_connect_api::config_def::{
    ConfigKey, KeyValidation, Width, at_least, non_empty_string, one_of,
};
use tributary_connect_api::{Config, ConfigDef, ConfigType as T, Importance as I};
use tributary_connect_client::{
    ConfigInfo, ConfigInfos, ConfigKeyInfo, ConfigValueInfo, ConnectorType,
};

use crate::config::client::{Role, connector_client_settings};
use crate::connectors::ConnectorPlugin;
use crate::converter::Converter;
use crate::task::errors::ErrorPolicy;
use crate::task::sink::subscription;
use crate::task::topic_creation::TopicCreation;

const COMMON: &str = "Common";
const TRANSFORMS: &str = "Transforms";
const PREDICATES: &str = "Predicates";
const ERRORS: &str = "Error Handling";
const TOPIC_CREATION: &str = "Topic Creation";
const EXACTLY_ONCE: &str = "Exactly Once Support";
const OFFSETS_TOPIC: &str = "offsets.topic";

#[allow(clippy::too_many_arguments)]
fn key(
    name: &str,
    t: T,
    i: I,
    doc: &str,
    group: &str,
    order: i32,
    width: Width,
    display: &str,
) -> ConfigKey {
    ConfigKey::new(name, t, i, doc).group(group, order, width, display)
}

/// The keys every connector has, for its type, in the order, groups and widths Java 4.3 uses
/// (checked against its validate endpoint by `tests/tests/rest_parity.rs`).
pub fn common_def(type_: ConnectorType) -> ConfigDef {
    use Width::{Long, Medium, Short};
    let converter = |name: &str, order: i32, display: &str, doc: &str| {
        key(name, T::Class, I::Low, doc, COMMON, order, Short, display).default_null()
    };
    let version = |name: &str, order: i32, display: &str, doc: &str| {
        key(name, T::String, I::Low, doc, COMMON, order, Short, display).default_null()
    };
    let mut def = ConfigDef::new()
        .define(
            key("name", T::String, I::High, "Globally unique name of this connector.", COMMON, 1, Medium, "Connector name")
                .validator(non_empty_string()),
        )
        .define(key(
            "connector.class",
            T::String,
            I::High,
            "The connector's class, its simple name, or that without the Connector suffix (FileStreamSink).",
            COMMON,
            2,
            Long,
            "Connector class",
        ))
        .define(
            key("connector.plugin.version", T::String, I::Medium, "The connector plugin's version; only the built-in version is available.", COMMON, 3, Medium, "Connector version")
                .default_value(env!("CARGO_PKG_VERSION")),
        )
        .define(
            key("tasks.max", T::Int, I::High, "Most tasks this connector may run.", COMMON, 4, Short, "Tasks max")
                .default_value("1")
                .validator(at_least(1.0)),
        )
        .define(
            key("tasks.max.enforce", T::Boolean, I::Low, "(Deprecated in Kafka) Fail a connector that generates more than tasks.max tasks.", COMMON, 5, Short, "Enforce tasks max")
                .default_value("true"),
        )
        .define(converter("key.converter", 6, "Key converter class", "Converter for record keys; the worker's key.converter when unset."))
        .define(version("key.converter.plugin.version", 7, "Key converter version", "Version of the key converter."))
        .define(converter("value.converter", 8, "Value converter class", "Converter for record values; the worker's value.converter when unset."))
        .define(version("value.converter.plugin.version", 9, "Value converter version", "Version of the value converter."))
        .define(converter("header.converter", 10, "Header converter class", "Converter for header values; SimpleHeaderConverter when unset."))
        .define(version("header.converter.plugin.version", 11, "Header converter version", "Version of the header converter."))
        .define(
            key("transforms", T::List, I::Low, "Aliases of the transformations applied to records.", TRANSFORMS, 12, Long, "Transforms")
                .default_value(""),
        )
        .define(
            key("predicates", T::List, I::Low, "Aliases of the predicates used by transformations.", PREDICATES, 13, Long, "Predicates")
                .default_value(""),
        )
        .define(
            key("config.action.reload", T::String, I::Low, "What to do when a config provider reports a changed value: none, or restart the connector.", COMMON, 14, Medium, "Reload Action")
                .default_value("restart")
                .validator(one_of(&["none", "restart"])),
        )
        .define(
            key("errors.retry.timeout", T::Long, I::Medium, "How long, in milliseconds, a failed operation is retried; 0 for no retries, -1 for no limit.", ERRORS, 1, Medium, "Retry Timeout for Errors")
                .default_value("0"),
        )
        .define(
            key("errors.retry.delay.max.ms", T::Long, I::Medium, "Longest wait between two retries, in milliseconds.", ERRORS, 2, Medium, "Maximum Delay Between Retries for Errors")
                .default_value("60000")
                .validator(at_least(0.0)),
        )
        .define(
            key("errors.tolerance", T::String, I::Medium, "none: a record that fails fails the task; all: it is skipped (and sent to the dead letter queue of a sink).", ERRORS, 3, Short, "Error Tolerance")
                .default_value("none")
                .validator(one_of(&["none", "all"])),
        )
        .define(
            key("errors.log.enable", T::Boolean, I::Medium, "Log every tolerated failure.", ERRORS, 4, Short, "Log Errors")
                .default_value("false"),
        )
        .define(
            key("errors.log.include.messages", T::Boolean, I::Medium, "Include the failed record's coordinates in the log.", ERRORS, 5, Short, "Log Error Details")
                .default_value("false"),
        );
    match type_ {
        ConnectorType::Sink => {
            def = def
                .define(
                    key("topics", T::List, I::High, "Topics to consume, comma-separated.", COMMON, 4, Long, "Topics")
                        .default_value(""),
                )
                .define(
                    key("topics.regex", T::String, I::High, "A regular expression for the topics to consume.", COMMON, 4, Long, "Topics regex")
                        .default_value(""),
                )
                .define(
                    key("errors.deadletterqueue.topic.name", T::String, I::Medium, "Topic that receives records that failed under errors.tolerance=all.", ERRORS, 6, Medium, "Dead Letter Queue Topic Name")
                        .default_value(""),
                )
                .define(
                    key("errors.deadletterqueue.topic.replication.factor", T::Short, I::Medium, "Replication factor of the dead letter queue topic when the worker creates it.", ERRORS, 7, Medium, "Dead Letter Queue Topic Replication Factor")
                        .default_value("3"),
                )
                .define(
                    key("errors.deadletterqueue.context.headers.enable", T::Boolean, I::Medium, "Add __connect.errors.* headers describing the failure to dead letter queue records.", ERRORS, 8, Medium, "Enable Error Context Headers")
                        .default_value("false"),
                );
        }
        _ => {
            def = def
                .define(
                    key("topic.creation.groups", T::List, I::Low, "Groups of settings for topics this source connector creates.", TOPIC_CREATION, 1, Long, "Topic Creation Groups")
                        .default_value(""),
                )
                .define(
                    key("exactly.once.support", T::String, I::Medium, "requested or required; required is refused until this worker supports exactly-once sources.", EXACTLY_ONCE, 2, Short, "Exactly once support")
                        .default_value("requested")
                        .validator(one_of(&["requested", "required"])),
                )
                .define(
                    key("transaction.boundary", T::String, I::Medium, "poll, interval or connector: where exactly-once transactions end.", EXACTLY_ONCE, 3, Short, "Transaction Boundary")
                        .default_value("poll")
                        .validator(one_of(&["poll", "interval", "connector"])),
                )
                .define(
                    key("transaction.boundary.interval.ms", T::Long, I::Low, "Transaction length for transaction.boundary=interval.", EXACTLY_ONCE, 4, Short, "Transaction boundary interval")
                        .default_null(),
                )
                .define(
                    key("offsets.storage.topic", T::String, I::Low, "A separate offsets topic for this connector (distributed mode only).", OFFSETS_TOPIC, 1, Long, "Offsets topic")
                        .default_null(),
                );
        }
    }
    def
}

pub fn key_info(k: &ConfigKey) -> ConfigKeyInfo {
    ConfigKeyInfo {
        name: k.name.clone(),
        type_: k.type_.name().to_string(),
        required: k.required(),
        default_value: if k.type_ == T::Password && k.default.is_some() {
            Some("[hidden]".into())
        } else {
            k.default.clone()
        },
        importance: k.importance.name().to_string(),
        documentation: k.documentation.clone(),
        group: k.group.clone(),
        order_in_group: k.order_in_group,
        width: k.width.name().to_string(),
        display_name: k.display_name.clone(),
        dependents: k.dependents.clone(),
    }
}

/// Cross-key checks; each error is attached to the key a user should fix.
fn cross_checks(
    type_: ConnectorType,
    config: &Config,
    worker: &Config,
    override_policy: &str,
) -> Vec<(&'static str, String)> {
    let mut errors = Vec::new();
    for prefix in ["key.converter", "value.converter"] {
        if let Some(class) = config.get(prefix).filter(|c| !c.trim().is_empty()) {
            let dotted = format!("{prefix}.");
            let settings = config
                .iter()
                .filter_map(|(k, v)| k.strip_prefix(&dotted).map(|k| (k.to_string(), v.clone())))
                .collect();
            if let Err(e) = Converter::configure(class, &settings) {
                errors.push((prefix, e.to_string()));
            }
        }
    }
    if let Some(class) = config
        .get("header.converter")
        .filter(|c| !c.trim().is_empty())
    {
        let simple = crate::converter::SIMPLE_HEADER_CONVERTER;
        if class.trim() != simple && class.trim() != "SimpleHeaderConverter" {
            errors.push((
                "header.converter",
                format!("header converter {class} is not available; use {simple}"),
            ));
        }
    }
    let ours = env!("CARGO_PKG_VERSION");
    for k in [
        "connector.plugin.version",
        "key.converter.plugin.version",
        "value.converter.plugin.version",
        "header.converter.plugin.version",
    ] {
        if let Some(v) = config.get(k).map(|v| v.trim()).filter(|v| !v.is_empty())
            && v != ours
        {
            errors.push((
                k,
                format!("Version {v} is not available; this worker has version {ours} only"),
            ));
        }
    }
    if type_ == ConnectorType::Source
        && config
            .get("exactly.once.support")
            .is_some_and(|v| v.trim() == "required")
    {
        errors.push((
            "exactly.once.support",
            "exactly.once.support=required cannot be met: this worker does not support exactly-once source connectors yet".to_string(),
        ));
    }
    // Every transform and predicate is built, so a wrong class or key is refused now, naming
    // the full key, rather than failing the tasks later.
    if let Err(e) = crate::transforms::Chain::from_config(config) {
        for (key, message) in e.0 {
            let at = if key.starts_with("predicates") {
                "predicates"
            } else {
                "transforms"
            };
            errors.push((at, message));
        }
    }
    if let Err(e) = ErrorPolicy::from_config(config) {
        errors.push(("errors.tolerance", e.to_string()));
    }
    match type_ {
        ConnectorType::Sink => {
            if let Err(e) = subscription(config) {
                errors.push(("topics", e.to_string()));
            }
            if let (Some(dlq), Ok(topics)) = (
                config.get("errors.deadletterqueue.topic.name"),
                subscription(config),
            ) && !dlq.trim().is_empty()
                && topics.iter().any(|t| t == dlq.trim())
            {
                errors.push(("errors.deadletterqueue.topic.name", format!("The DLQ topic '{dlq}' may not be included in the list of topics ('topics=...') consumed by the connector")));
            }
        }
        _ => {
            if let Err(e) = TopicCreation::from_config(true, config) {
                errors.push(("topic.creation.groups", e.to_string()));
            }
        }
    }
    for role in [Role::Producer, Role::Consumer, Role::Admin] {
        if let Err(e) = connector_client_settings(role, worker, config, override_policy) {
            errors.push(("connector.class", e));
        }
    }
    errors
}

/// Validates `config` for `plugin`: every key's value and errors, grouped as Java groups them.
pub fn validate(
    plugin: &ConnectorPlugin,
    config: &Config,
    worker: &Config,
    override_policy: &str,
) -> ConfigInfos {
    let instance = (plugin.create)();
    let connector = instance.connector();
    let mut common = common_def(plugin.type_);
    // As Java, validation shows the worker's converters (and their version) as the defaults.
    let ours = env!("CARGO_PKG_VERSION");
    let worker_default = |name: &str| match name {
        "key.converter" | "value.converter" => worker.get(name).cloned(),
        "header.converter" => Some(
            worker
                .get(name)
                .cloned()
                .unwrap_or_else(|| crate::converter::SIMPLE_HEADER_CONVERTER.to_string()),
        ),
        n if n.ends_with(".converter.plugin.version") => Some(ours.to_string()),
        _ => None,
    };
    common = common
        .keys()
        .iter()
        .fold(ConfigDef::new(), |def, k| match worker_default(&k.name) {
            Some(d) => def.define(k.clone().default_value(&d)),
            None => def.define(k.clone()),
        });
    let own = connector.config_def();
    let mut results: Vec<(ConfigKey, KeyValidation)> = common
        .keys()
        .iter()
        .cloned()
        .zip(common.validate(config))
        .collect();
    let own_results = connector.validate(config);
    for k in own.keys() {
        if common.key(&k.name).is_some() {
            continue;
        }
        if let Some(v) = own_results.iter().find(|v| v.name == k.name) {
            results.push((k.clone(), v.clone()));
        }
    }
    for (name, error) in cross_checks(plugin.type_, config, worker, override_policy) {
        if let Some((_, v)) = results.iter_mut().find(|(k, _)| k.name == name) {
            v.errors.push(error);
        }
    }
    let mut groups: Vec<String> = Vec::new();
    for (k, _) in &results {
        if let Some(g) = &k.group
            && !groups.contains(g)
        {
            groups.push(g.clone());
        }
    }
    let error_count = results.iter().map(|(_, v)| v.errors.len()).sum();
    ConfigInfos {
        name: plugin.class.to_string(),
        error_count,
        groups,
        configs: results
            .into_iter()
            .map(|(k, v)| ConfigInfo {
                definition: key_info(&k),
                value: ConfigValueInfo {
                    recommended_values: recommended(&k.name),
                    name: v.name,
                    value: v.value,
                    errors: v.errors,
                    visible: true,
                },
            })
            .collect(),
    }
}

/// Values a UI may offer for a key, as Java's recommenders give them.
fn recommended(name: &str) -> Vec<String> {
    match name {
        "key.converter" | "value.converter" => crate::converter::CONVERTER_CLASSES
            .iter()
            .map(|c| (*c).to_string())
            .collect(),
        "header.converter" => vec![crate::converter::SIMPLE_HEADER_CONVERTER.to_string()],
        n if n.ends_with("plugin.version") => vec![env!("CARGO_PKG_VERSION").to_string()],
        _ => Vec::new(),
    }
}

/// Java's message for a create or update refused by validation.
pub fn invalid_message(infos: &ConfigInfos) -> String {
    let mut lines = vec![format!(
        "Connector configuration is invalid and contains the following {} error(s):",
        infos.error_count
    )];
    for c in &infos.configs {
        lines.extend(c.value.errors.iter().cloned());
    }
    lines.push(
        "You can also find the above list of errors at the endpoint `/connector-plugins/{connectorType}/config/validate`"
            .to_string(),
    );
    lines.join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::connectors::find;

    fn cfg(pairs: &[(&str, &str)]) -> Config {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn a_good_file_source_has_no_errors_and_javas_groups() {
        let plugin = find("FileStreamSource").unwrap_or_else(|| panic!("plugin"));
        let infos = validate(
            plugin,
            &cfg(&[
                ("name", "f"),
                ("connector.class", "FileStreamSource"),
                ("topic", "t"),
                ("file", "/tmp/x"),
            ]),
            &Config::new(),
            "All",
        );
        assert_eq!(infos.error_count, 0, "{infos:?}");
        assert_eq!(
            infos.groups[..2],
            ["Common".to_string(), "Transforms".to_string()]
        );
        assert!(
            infos
                .configs
                .iter()
                .any(|c| c.definition.name == "batch.size")
        );
    }

    #[test]
    fn sink_errors_name_their_keys() {
        let plugin = find("FileStreamSink").unwrap_or_else(|| panic!("plugin"));
        let infos = validate(
            plugin,
            &cfg(&[
                ("name", "f"),
                ("connector.class", "FileStreamSink"),
                ("tasks.max", "0"),
                ("value.converter", "Nope"),
            ]),
            &Config::new(),
            "None",
        );
        let errors_of = |name: &str| {
            infos
                .configs
                .iter()
                .find(|c| c.definition.name == name)
                .map(|c| c.value.errors.clone())
                .unwrap_or_default()
        };
        assert_eq!(errors_of("tasks.max").len(), 1);
        assert_eq!(errors_of("topics").len(), 1);
        assert_eq!(errors_of("value.converter").len(), 1);
        assert_eq!(infos.error_count, 3);
        assert!(invalid_message(&infos).contains("3 error(s)"));
    }
}
