//! Connector config validation, shared by `PUT /connector-plugins/{p}/config/validate`, connector
//! creation and updates: the worker's common connector keys (Java's `ConnectorConfig`,
//! `SinkConnectorConfig`, `SourceConnectorConfig`) plus the plugin's own, and the checks that
//! cross keys (converters, `topics`/`topics.regex`, error handling, topic creation, client
//! overrides). Pure: the result is the REST `ConfigInfos`.

use std::sync::Arc;
use tributary_connect_api::config_def::{
    ConfigKey, ConfigValue, KeyValidation, Validator, Width, at_least, non_empty_string, one_of,
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
                .default_value("")
                .validator(unique_aliases()),
        )
        .define(
            key("predicates", T::List, I::Low, "Aliases of the predicates used by transformations.", PREDICATES, 13, Long, "Predicates")
                .default_value("")
                .validator(unique_aliases()),
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
                        .default_value("")
                        .validator(unique_aliases()),
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

/// Java's `ConnectorConfig.aliasValidator`: a list of aliases names each one once.
fn unique_aliases() -> Validator {
    Arc::new(|v| match v {
        ConfigValue::List(list) => {
            let unique: std::collections::BTreeSet<&String> = list.iter().collect();
            if unique.len() < list.len() {
                Err("Duplicate alias provided.".to_string())
            } else {
                Ok(())
            }
        }
        _ => Ok(()),
    })
}

/// Whether `k` is an alias's `type` key (the first of its group), and of which kind.
fn alias_type(k: &ConfigKey) -> Option<AliasKind> {
    let group = k.group.as_deref()?;
    if k.order_in_group != 0 {
        return None;
    }
    if group.starts_with(&format!("{TRANSFORMS}: ")) {
        Some(AliasKind::Transform)
    } else if group.starts_with(&format!("{PREDICATES}: ")) {
        Some(AliasKind::Predicate)
    } else {
        None
    }
}

#[derive(Clone, Copy, PartialEq)]
enum AliasKind {
    Transform,
    Predicate,
}

impl AliasKind {
    /// Whether `class` names a built-in plugin of this kind.
    fn knows(self, class: &str) -> bool {
        match self {
            AliasKind::Transform => crate::transforms::find_transform(class).is_some(),
            AliasKind::Predicate => crate::transforms::find_predicate(class).is_some(),
        }
    }

    fn classes(self) -> Vec<String> {
        match self {
            AliasKind::Transform => crate::transforms::TRANSFORMS
                .iter()
                .map(|p| p.class.to_string())
                .collect(),
            AliasKind::Predicate => crate::transforms::PREDICATES
                .iter()
                .map(|p| p.class.to_string())
                .collect(),
        }
    }
}

/// The keys Java adds for each alias (`ConnectorConfig.enrich`), under their full names: a
/// "Transforms: <alias>" group with the type, its version, then `negate`, `predicate` and the
/// transformation's own keys by name; a "Predicates: <alias>" group with the type, its version
/// and the predicate's keys. A type that names no plugin gets only its first two keys.
fn alias_def(config: &Config) -> ConfigDef {
    let ours = env!("CARGO_PKG_VERSION");
    let mut def = ConfigDef::new();
    for (kind, group_name, noun, title, alias_kind) in [
        (
            "transforms",
            TRANSFORMS,
            "transformation",
            "Transformation",
            AliasKind::Transform,
        ),
        (
            "predicates",
            PREDICATES,
            "predicate",
            "Predicate",
            AliasKind::Predicate,
        ),
    ] {
        // Each alias once (a repeated one is refused on the list's own key, as in Java).
        let mut aliases = crate::config::list_value(config, kind);
        let mut seen = std::collections::BTreeSet::new();
        aliases.retain(|a| seen.insert(a.clone()));
        for alias in aliases {
            let group = format!("{group_name}: {alias}");
            let prefix = format!("{kind}.{alias}.");
            def = def.define(key(
                &format!("{prefix}type"),
                T::Class,
                I::High,
                &format!("Class for the '{alias}' {noun}."),
                &group,
                0,
                Width::Long,
                &format!("{title} type for {alias}"),
            ));
            let class = config.get(&format!("{prefix}type"));
            let own = class.and_then(|c| match alias_kind {
                AliasKind::Transform => crate::transforms::find_transform(c).map(|p| (p.def)()),
                AliasKind::Predicate => crate::transforms::find_predicate(c).map(|p| (p.def)()),
            });
            let version = key(
                &format!("{prefix}plugin.version"),
                T::String,
                I::High,
                &format!("Version of the '{alias}' {noun}."),
                &group,
                1,
                Width::Long,
                &format!("{title} version for {alias}"),
            );
            def = def.define(match own {
                Some(_) => version.default_value(ours),
                None => version.default_null(),
            });
            let Some(own) = own else {
                // Java shows neither a type it cannot load nor a version for it.
                continue;
            };
            let mut keys: Vec<ConfigKey> = own.keys().to_vec();
            if alias_kind == AliasKind::Transform {
                keys.push(
                    ConfigKey::new(
                        "negate",
                        T::Boolean,
                        I::Medium,
                        "Whether the configured predicate should be negated.",
                    )
                    .default_value("false"),
                );
                keys.push(
                    ConfigKey::new(
                        "predicate",
                        T::String,
                        I::Medium,
                        "The alias of a predicate used to determine whether to apply this transformation.",
                    )
                    .default_null(),
                );
            }
            // Java embeds them in ConfigDef's documentation order: required first, then by
            // importance, then by name.
            let rank = |i: &I| match i {
                I::High => 0,
                I::Medium => 1,
                I::Low => 2,
            };
            keys.sort_by(|a, b| {
                (!a.required(), rank(&a.importance), &a.name).cmp(&(
                    !b.required(),
                    rank(&b.importance),
                    &b.name,
                ))
            });
            for (order, mut k) in (2..).zip(keys) {
                let bare = std::mem::take(&mut k.name);
                k.name = format!("{prefix}{bare}");
                def = def.define(k.group(&group, order, Width::None, &bare));
            }
        }
    }
    def
}

/// Cross-key checks; each error is attached to the key a user should fix.
fn cross_checks(
    type_: ConnectorType,
    config: &Config,
    worker: &Config,
    override_policy: &str,
) -> Vec<(String, String)> {
    let mut errors: Vec<(String, String)> = Vec::new();
    for prefix in ["key.converter", "value.converter"] {
        if let Some(class) = config.get(prefix).filter(|c| !c.trim().is_empty()) {
            let dotted = format!("{prefix}.");
            let settings = config
                .iter()
                .filter_map(|(k, v)| k.strip_prefix(&dotted).map(|k| (k.to_string(), v.clone())))
                .collect();
            if let Err(e) = Converter::configure(class, &settings) {
                errors.push((prefix.to_string(), e.to_string()));
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
                "header.converter".to_string(),
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
                k.to_string(),
                format!("Version {v} is not available; this worker has version {ours} only"),
            ));
        }
    }
    if type_ == ConnectorType::Source
        && config
            .get("exactly.once.support")
            .is_some_and(|v| v.trim() == "required")
    {
        errors.push(("exactly.once.support".to_string(),
            "exactly.once.support=required cannot be met: this worker does not support exactly-once source connectors yet".to_string(),
        ));
    }
    // Every transform and predicate is built, so a wrong class or key is refused now, naming
    // the full key, rather than failing the tasks later.
    if let Err(e) = crate::transforms::Chain::from_config(config) {
        // Each on its own key (validate shows the alias keys); `validate` falls back to
        // `transforms`/`predicates` for a key it does not show.
        errors.extend(e.0);
    }
    if let Err(e) = ErrorPolicy::from_config(config) {
        errors.push(("errors.tolerance".to_string(), e.to_string()));
    }
    match type_ {
        ConnectorType::Sink => {
            if let Err(e) = subscription(config) {
                errors.push(("topics".to_string(), e.to_string()));
            }
            if let (Some(dlq), Ok(topics)) = (
                config.get("errors.deadletterqueue.topic.name"),
                subscription(config),
            ) && !dlq.trim().is_empty()
                && topics.iter().any(|t| t == dlq.trim())
            {
                errors.push(("errors.deadletterqueue.topic.name".to_string(), format!("The DLQ topic '{dlq}' may not be included in the list of topics ('topics=...') consumed by the connector")));
            }
        }
        _ => {
            if let Err(e) = TopicCreation::from_config(true, config) {
                errors.push(("topic.creation.groups".to_string(), e.to_string()));
            }
        }
    }
    for role in [Role::Producer, Role::Consumer, Role::Admin] {
        if let Err(e) = connector_client_settings(role, worker, config, override_policy) {
            errors.push(("connector.class".to_string(), e));
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
    // As Java: the common keys, then each alias's, then the connector's own.
    let aliases = alias_def(config);
    for (k, mut v) in aliases.keys().iter().cloned().zip(aliases.validate(config)) {
        // A class that cannot be loaded shows as null, as Java shows it.
        if let Some(kind) = alias_type(&k)
            && v.value.as_deref().is_some_and(|c| !kind.knows(c))
        {
            v.value = None;
        }
        results.push((k, v));
    }
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
            // The key's own validation may have said it already (a missing type, say).
            if v.errors.is_empty() || aliases.key(&name).is_none() {
                v.errors.push(error);
            }
            continue;
        }
        let list = if name.starts_with("predicates") {
            "predicates"
        } else {
            "transforms"
        };
        if let Some((_, v)) = results.iter_mut().find(|(k, _)| k.name == list) {
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
                    recommended_values: recommended(&k),
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
fn recommended(k: &ConfigKey) -> Vec<String> {
    if let Some(kind) = alias_type(k) {
        return kind.classes();
    }
    match k.name.as_str() {
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

    /// A FileStreamSource named `f` writing to `t`, plus `extra`, validated as a worker with
    /// the `All` override policy would.
    fn file_source(extra: &[(&str, &str)]) -> ConfigInfos {
        let plugin = find("FileStreamSource").unwrap_or_else(|| panic!("plugin"));
        let mut config = cfg(&[
            ("name", "f"),
            ("connector.class", "FileStreamSource"),
            ("topic", "t"),
        ]);
        config.extend(cfg(extra));
        validate(plugin, &config, &Config::new(), "All")
    }

    /// The errors validation reported on `name`.
    fn errors_of(infos: &ConfigInfos, name: &str) -> Vec<String> {
        infos
            .configs
            .iter()
            .filter(|c| c.value.name == name)
            .flat_map(|c| c.value.errors.clone())
            .collect()
    }

    #[test]
    fn a_good_file_source_has_no_errors_and_javas_groups() {
        let infos = file_source(&[("file", "/tmp/x")]);
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

    /// Found by the rest_bodies fuzz target: `"transforms": "a,a"` defined the alias's keys
    /// twice and the request panicked.
    #[test]
    fn a_repeated_alias_is_refused_on_its_list_as_in_java() {
        let infos = file_source(&[
            ("transforms", "a, a"),
            (
                "transforms.a.type",
                "org.apache.kafka.connect.transforms.InsertHeader",
            ),
            ("transforms.a.header", "h"),
            ("transforms.a.value.literal", "v"),
            ("predicates", "p,p"),
            (
                "predicates.p.type",
                "org.apache.kafka.connect.transforms.predicates.RecordIsTombstone",
            ),
            ("topic.creation.groups", "g,g"),
        ]);
        for (list, shown) in [
            ("transforms", "[a, a]"),
            ("predicates", "[p, p]"),
            ("topic.creation.groups", "[g, g]"),
        ] {
            // (Topic creation also misses its default group's settings here.)
            assert_eq!(
                errors_of(&infos, list).first(),
                Some(&format!(
                    "Invalid value {shown} for configuration {list}: Duplicate alias provided."
                )),
            );
        }
        assert_eq!(
            infos
                .configs
                .iter()
                .filter(|c| c.value.name == "transforms.a.type")
                .count(),
            1
        );
    }

    #[test]
    fn each_alias_gets_a_group_of_its_keys_and_errors_on_them() {
        let infos = file_source(&[
            ("transforms", "route,nope"),
            ("transforms.route.type", "RegexRouter"),
            ("transforms.route.regex", "a(.*)"),
            ("transforms.nope.type", "org.example.Nope"),
            ("predicates", "p"),
            ("predicates.p.type", "TopicNameMatches"),
        ]);
        assert!(
            infos.groups.ends_with(&[
                "Transforms: route".to_string(),
                "Transforms: nope".to_string(),
                "Predicates: p".to_string()
            ]),
            "{:?}",
            infos.groups
        );
        let names: Vec<&str> = infos
            .configs
            .iter()
            .map(|c| c.definition.name.as_str())
            .filter(|n| n.starts_with("transforms.") || n.starts_with("predicates."))
            .collect();
        assert_eq!(
            names,
            [
                "transforms.route.type",
                "transforms.route.plugin.version",
                "transforms.route.regex",
                "transforms.route.replacement",
                "transforms.route.negate",
                "transforms.route.predicate",
                "transforms.nope.type",
                "transforms.nope.plugin.version",
                "predicates.p.type",
                "predicates.p.plugin.version",
                "predicates.p.pattern",
            ]
        );
        let info = |name: &str| {
            infos
                .configs
                .iter()
                .find(|c| c.definition.name == name)
                .unwrap_or_else(|| panic!("{name}"))
        };
        assert_eq!(info("transforms.route.replacement").value.errors.len(), 1);
        assert_eq!(info("predicates.p.pattern").value.errors.len(), 1);
        let nope = info("transforms.nope.type");
        assert_eq!(nope.value.value, None);
        assert!(
            nope.value.errors[0].contains("could not be found"),
            "{nope:?}"
        );
        assert_eq!(info("transforms.nope.plugin.version").value.value, None);
        assert_eq!(
            info("transforms.route.type").value.recommended_values.len(),
            crate::transforms::TRANSFORMS.len()
        );
        assert_eq!(infos.error_count, 3, "{infos:?}");
    }

    #[test]
    fn only_an_alias_type_key_offers_the_plugin_classes() {
        let infos = file_source(&[
            ("transforms", "ts"),
            ("transforms.ts.type", "TimestampConverter$Value"),
            ("transforms.ts.target.type", "unix"),
        ]);
        let recommended = |name: &str| {
            infos
                .configs
                .iter()
                .find(|c| c.definition.name == name)
                .map(|c| c.value.recommended_values.clone())
                .unwrap_or_else(|| panic!("{name}"))
        };
        assert!(recommended("transforms.ts.type").len() > 1);
        assert!(recommended("transforms.ts.target.type").is_empty());
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
        assert_eq!(errors_of(&infos, "tasks.max").len(), 1);
        assert_eq!(errors_of(&infos, "topics").len(), 1);
        assert_eq!(errors_of(&infos, "value.converter").len(), 1);
        assert_eq!(infos.error_count, 3);
        assert!(invalid_message(&infos).contains("3 error(s)"));
    }
}
