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

fn key(name: &str, t: T, i: I, doc: &str, group: &str, order: i32) -> ConfigKey {
    ConfigKey::new(name, t, i, doc).group(group, order, Width::Medium, name)
}

/// The keys every connector has, for its type.
pub fn common_def(type_: ConnectorType) -> ConfigDef {
    let mut def = ConfigDef::new()
        .define(
            key("name", T::String, I::High, "Globally unique name to use for this connector.", COMMON, 1)
                .validator(non_empty_string()),
        )
        .define(key(
            "connector.class",
            T::String,
            I::High,
            "Name or alias of the class for this connector.",
            COMMON,
            2,
        ))
        .define(
            key("tasks.max", T::Int, I::High, "Maximum number of tasks to use for this connector.", COMMON, 3)
                .default_value("1")
                .validator(at_least(1.0)),
        )
        .define(
            key("tasks.max.enforce", T::Boolean, I::Low, "Whether to enforce that tasks.max is an upper limit on the number of tasks.", COMMON, 4)
                .default_value("true"),
        )
        .define(
            key("key.converter", T::Class, I::Low, "Converter class for keys; the worker's when unset.", COMMON, 5)
                .default_value(""),
        )
        .define(
            key("value.converter", T::Class, I::Low, "Converter class for values; the worker's when unset.", COMMON, 6)
                .default_value(""),
        )
        .define(
            key("header.converter", T::Class, I::Low, "Converter class for headers; the worker's when unset.", COMMON, 7)
                .default_value(""),
        )
        .define(
            key("config.action.reload", T::String, I::Low, "What to do when a config provider says a value changed.", COMMON, 8)
                .default_value("restart")
                .validator(one_of(&["none", "restart"])),
        )
        .define(
            key("transforms", T::List, I::Low, "Aliases for the transformations to apply to records.", TRANSFORMS, 1)
                .default_value(""),
        )
        .define(
            key("predicates", T::List, I::Low, "Aliases for the predicates used by transformations.", PREDICATES, 1)
                .default_value(""),
        )
        .define(
            key("errors.retry.timeout", T::Long, I::Medium, "Maximum duration in milliseconds that a failed operation will be reattempted; -1 for infinite.", ERRORS, 1)
                .default_value("0"),
        )
        .define(
            key("errors.retry.delay.max.ms", T::Long, I::Medium, "Maximum duration in milliseconds between consecutive retry attempts.", ERRORS, 2)
                .default_value("60000")
                .validator(at_least(0.0)),
        )
        .define(
            key("errors.tolerance", T::String, I::Medium, "Behavior for tolerating errors: none fails the task, all skips problematic records.", ERRORS, 3)
                .default_value("none")
                .validator(one_of(&["none", "all"])),
        )
        .define(
            key("errors.log.enable", T::Boolean, I::Medium, "Log each error and the details of the failed operation.", ERRORS, 4)
                .default_value("false"),
        )
        .define(
            key("errors.log.include.messages", T::Boolean, I::Medium, "Include the record in the error log.", ERRORS, 5)
                .default_value("false"),
        );
    match type_ {
        ConnectorType::Sink => {
            def = def
                .define(
                    key("topics", T::List, I::High, "List of topics to consume, separated by commas", COMMON, 4)
                        .default_value(""),
                )
                .define(
                    key("topics.regex", T::String, I::High, "Regular expression giving topics to consume.", COMMON, 4)
                        .default_value(""),
                )
                .define(
                    key("errors.deadletterqueue.topic.name", T::String, I::Medium, "The name of the topic to be used as the dead letter queue (DLQ) for records that fail.", ERRORS, 6)
                        .default_value(""),
                )
                .define(
                    key("errors.deadletterqueue.topic.replication.factor", T::Short, I::Medium, "Replication factor used to create the dead letter queue topic when it doesn't already exist.", ERRORS, 7)
                        .default_value("3"),
                )
                .define(
                    key("errors.deadletterqueue.context.headers.enable", T::Boolean, I::Medium, "If true, add headers containing error context to the messages written to the dead letter queue.", ERRORS, 8)
                        .default_value("false"),
                );
        }
        _ => {
            def = def.define(
                key(
                    "topic.creation.groups",
                    T::List,
                    I::Low,
                    "Groups of configurations for topics created by source connectors",
                    TOPIC_CREATION,
                    1,
                )
                .default_value(""),
            );
        }
    }
    def
}

pub fn key_info(k: &ConfigKey) -> ConfigKeyInfo {
    ConfigKeyInfo {
        name: k.name.clone(),
        type_: k.type_.name().to_string(),
        required: k.default.is_none(),
        default_value: if k.type_ == T::Password && k.default.is_some() {
            Some("[hidden]".into())
        } else {
            k.default.clone()
        },
        importance: k.importance.name().to_string(),
        documentation: k.documentation.clone(),
        group: k.group.clone(),
        order: k.order_in_group,
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
    let common = common_def(plugin.type_);
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
                    name: v.name,
                    value: v.value,
                    recommended_values: Vec::new(),
                    errors: v.errors,
                    visible: true,
                },
            })
            .collect(),
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
