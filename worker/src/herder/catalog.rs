//! What both herders answer the same way: the plugin list, plugin config definitions,
//! validation, and the checks a connector config passes before any herder accepts it. Kept apart
//! so the distributed herder validates exactly as standalone does (and as Java's
//! `AbstractHerder` does for both).

use std::collections::BTreeMap;

use tributary_connect_api::Config;
use tributary_connect_client::{ConfigInfos, ConfigKeyInfo, ConnectorType, PluginInfo};

use super::validation::{self, invalid_message};
use super::{HerderError, HerderResult};
use crate::config::providers::Providers;
use crate::connectors::{self, ConnectorPlugin};
use crate::converter::{CONVERTER_CLASSES, SIMPLE_HEADER_CONVERTER};
use crate::transforms;

#[derive(Debug)]
pub struct Catalog {
    pub providers: Providers,
    pub worker_props: BTreeMap<String, String>,
    pub override_policy: String,
}

impl Catalog {
    pub fn plugins(&self, connectors_only: bool) -> Vec<PluginInfo> {
        let mut out: Vec<PluginInfo> = connectors::PLUGINS
            .iter()
            .map(|p| PluginInfo {
                class_name: p.class.to_string(),
                type_: connectors::type_name(p.type_).to_string(),
                version: Some(p.version()),
            })
            .collect();
        if !connectors_only {
            for c in CONVERTER_CLASSES {
                out.push(PluginInfo {
                    class_name: (*c).to_string(),
                    type_: "converter".into(),
                    version: Some(env!("CARGO_PKG_VERSION").into()),
                });
            }
            out.push(PluginInfo {
                class_name: SIMPLE_HEADER_CONVERTER.into(),
                type_: "header_converter".into(),
                version: Some(env!("CARGO_PKG_VERSION").into()),
            });
            let version = || Some(env!("CARGO_PKG_VERSION").to_string());
            out.extend(transforms::TRANSFORMS.iter().map(|t| PluginInfo {
                class_name: t.class.to_string(),
                type_: "transformation".into(),
                version: version(),
            }));
            out.extend(transforms::PREDICATES.iter().map(|p| PluginInfo {
                class_name: p.class.to_string(),
                type_: "predicate".into(),
                version: version(),
            }));
        }
        out
    }

    pub fn plugin(name: &str) -> HerderResult<&'static ConnectorPlugin> {
        connectors::find(name)
            .ok_or_else(|| HerderError::BadRequest(connectors::not_found_message(name)))
    }

    pub fn plugin_config(&self, plugin: &str) -> HerderResult<Vec<ConfigKeyInfo>> {
        // Transformations and predicates describe their own keys (KIP-769).
        let own_def = transforms::find_transform(plugin)
            .map(|t| (t.def)())
            .or_else(|| transforms::find_predicate(plugin).map(|p| (p.def)()));
        if let Some(def) = own_def {
            return Ok(def.keys().iter().map(validation::key_info).collect());
        }
        let p = connectors::find(plugin)
            .ok_or_else(|| HerderError::NotFound(format!("Unknown plugin {plugin}.")))?;
        // Java 4.x lists the plugin's own keys, then the common connector keys.
        let own = (p.create)().connector().config_def();
        let common = validation::common_def(p.type_);
        Ok(own
            .keys()
            .iter()
            .chain(common.keys().iter().filter(|k| own.key(&k.name).is_none()))
            .map(validation::key_info)
            .collect())
    }

    /// `PUT /connector-plugins/{plugin}/config/validate`.
    pub fn validate(&self, plugin_path: &str, config: &Config) -> HerderResult<ConfigInfos> {
        if let Some(class) = config.get("connector.class") {
            let trimmed = |s: &str| s.strip_suffix("Connector").unwrap_or(s).to_string();
            if !trimmed(class).ends_with(&trimmed(plugin_path)) {
                return Err(HerderError::BadRequest(
                    "Included connector type does not match request type".into(),
                ));
            }
        }
        let class = config
            .get("connector.class")
            .cloned()
            .unwrap_or_else(|| plugin_path.to_string());
        let plugin = Self::plugin(&class)?;
        Ok(self.validate_with(plugin, config))
    }

    pub fn validate_with(&self, plugin: &ConnectorPlugin, config: &Config) -> ConfigInfos {
        // Validation sees resolved values (as Java does), shows none of them.
        let resolved = self
            .providers
            .resolve(config)
            .unwrap_or_else(|_| config.clone());
        let mut infos =
            validation::validate(plugin, &resolved, &self.worker_props, &self.override_policy);
        if let Err(e) = self.providers.resolve(config) {
            infos.error_count += 1;
            if let Some(c) = infos.configs.first_mut() {
                c.value.errors.push(e.to_string());
            }
        }
        // Show what the user wrote, not what a provider resolved it to (a value validation
        // hid, such as a class that is not there, stays hidden).
        for c in &mut infos.configs {
            if c.definition.type_ != "PASSWORD"
                && c.value.value.is_some()
                && let Some(raw) = config.get(&c.value.name)
            {
                c.value.value = Some(raw.clone());
            }
        }
        infos
    }

    /// The checks of a create or update before anything is written: the name (trimmed, not
    /// empty, no '/', matching `config.name` or added to it), a known `connector.class`, and a
    /// config that validates. Returns the trimmed name, the plugin and the config to store.
    pub fn check_connector(
        &self,
        name: &str,
        mut config: Config,
    ) -> HerderResult<(String, &'static ConnectorPlugin, Config)> {
        let name = name.trim();
        if name.is_empty() {
            return Err(HerderError::BadRequest(
                "Connector name should not be empty".into(),
            ));
        }
        if name.contains('/') {
            return Err(HerderError::BadRequest(format!(
                "Invalid connector name {name}: it may not contain '/'"
            )));
        }
        match config.get("name") {
            Some(n) if n.trim() != name => {
                return Err(HerderError::BadRequest(
                    "Connector name configuration (".to_string()
                        + n
                        + ") doesn't match connector name in the URL ("
                        + name
                        + ")",
                ));
            }
            Some(_) => {}
            None => {
                config.insert("name".into(), name.to_string());
            }
        }
        let class = config.get("connector.class").cloned().ok_or_else(|| {
            HerderError::BadRequest(
                "Connector config {name=".to_string() + name + "} contains no connector type",
            )
        })?;
        let plugin = Self::plugin(&class)?;
        let infos = self.validate_with(plugin, &config);
        if infos.error_count > 0 {
            return Err(HerderError::BadRequest(invalid_message(&infos)));
        }
        Ok((name.to_string(), plugin, config))
    }

    /// The connector's type from its stored config (unknown when the class is not installed).
    pub fn type_of(config: &Config) -> ConnectorType {
        config
            .get("connector.class")
            .and_then(|c| connectors::find(c))
            .map_or(ConnectorType::Unknown, |p| p.type_)
    }
}

/// Applies a `PATCH …/config` body: a null removes the key.
pub fn patched(mut config: Config, patch: BTreeMap<String, Option<String>>) -> Config {
    for (k, v) in patch {
        match v {
            Some(v) => {
                config.insert(k, v);
            }
            None => {
                config.remove(&k);
            }
        }
    }
    config
}

/// Puts the connector's config provider placeholders back into task configs (Java's
/// `reverseTransform`): a task value equal to a resolved value of the same key is stored and
/// shown as the raw `${...}` text, so secrets never reach the REST API or the config topic;
/// tasks resolve it again when they start.
pub fn reverse_transform(task: &mut Config, raw: &Config, resolved: &Config) {
    for (k, v) in task.iter_mut() {
        if let (Some(r), Some(res)) = (raw.get(k), resolved.get(k))
            && r != res
            && v == res
        {
            v.clone_from(r);
        }
    }
}

/// Task configs as a herder stores them: the connector's output with placeholders restored,
/// `task.class` added, and a sink's `topics`/`topics.regex` copied (as Java adds them).
pub fn stored_task_configs(
    plugin: &ConnectorPlugin,
    raw: &Config,
    resolved: &Config,
    configs: Vec<Config>,
) -> Vec<Config> {
    configs
        .into_iter()
        .map(|mut c| {
            reverse_transform(&mut c, raw, resolved);
            c.insert("task.class".into(), plugin.task_class.to_string());
            if plugin.type_ == ConnectorType::Sink {
                for k in ["topics", "topics.regex"] {
                    if let Some(v) = raw.get(k) {
                        c.insert(k.into(), v.clone());
                    }
                }
            }
            c
        })
        .collect()
}

/// Checks the task count a connector produced against `tasks.max` (unless
/// `tasks.max.enforce=false`); the error is the connector's FAILED trace.
pub fn check_task_count(name: &str, config: &Config, produced: usize) -> Result<(), String> {
    let max_tasks = max_tasks(config);
    let enforce = config
        .get("tasks.max.enforce")
        .is_none_or(|v| !v.trim().eq_ignore_ascii_case("false"));
    if enforce && produced > max_tasks {
        return Err(format!(
            "The connector {name} has generated {produced} tasks, which is greater than {max_tasks}, the maximum number of tasks it is configured to create."
        ));
    }
    Ok(())
}

pub fn max_tasks(config: &Config) -> usize {
    config
        .get("tasks.max")
        .and_then(|v| v.trim().parse::<usize>().ok())
        .unwrap_or(1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn task_configs_keep_placeholders_not_secrets() {
        let raw: Config = [
            ("password".to_string(), "${file:/s:pw}".to_string()),
            ("topic".to_string(), "t".to_string()),
        ]
        .into();
        let resolved: Config = [
            ("password".to_string(), "hunter2".to_string()),
            ("topic".to_string(), "t".to_string()),
        ]
        .into();
        let mut task = resolved.clone();
        task.insert("extra".into(), "hunter2".into());
        reverse_transform(&mut task, &raw, &resolved);
        assert_eq!(task["password"], "${file:/s:pw}");
        assert_eq!(task["topic"], "t");
        assert_eq!(
            task["extra"], "hunter2",
            "only the same key is restored, as in Java"
        );
    }

    #[test]
    fn patches_set_and_remove_keys() {
        let c: Config = [("a".to_string(), "1".to_string())].into();
        let p = [("a".to_string(), None), ("b".to_string(), Some("2".into()))].into();
        assert_eq!(patched(c, p), [("b".to_string(), "2".to_string())].into());
    }
}
