//! A connector's transformation chain, built from its config (Java's `TransformationChain` and
//! the `transforms.*`/`predicates.*` keys of `ConnectorConfig`).

use std::collections::BTreeMap;
use std::sync::Arc;

use tributary_connect_api::{Config, ConfigError};

use super::{Predicate, Record, Transformation, find_predicate, find_transform};

/// What is wrong with a connector's transforms: each error with the full key to fix.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChainError(pub Vec<(String, String)>);

impl std::fmt::Display for ChainError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let messages: Vec<&str> = self.0.iter().map(|(_, m)| m.as_str()).collect();
        f.write_str(&messages.join("; "))
    }
}

impl std::error::Error for ChainError {}

/// A transform failed on a record; `class` names it (for the dead letter queue's headers).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{class}: {error}")]
pub struct StepError {
    pub class: &'static str,
    pub error: super::TransformError,
}

#[derive(Debug)]
struct Step {
    class: &'static str,
    transform: Box<dyn Transformation>,
    /// The predicate gating this step and whether it is negated.
    predicate: Option<(Arc<dyn Predicate>, bool)>,
}

/// The configured transforms of one connector, applied in order.
#[derive(Debug, Default)]
pub struct Chain {
    steps: Vec<Step>,
}

/// The keys under `prefix`, without it.
fn settings_under(config: &Config, prefix: &str) -> BTreeMap<String, String> {
    config
        .iter()
        .filter_map(|(k, v)| k.strip_prefix(prefix).map(|k| (k.to_string(), v.clone())))
        .collect()
}

/// A plugin's own error on a key, named by its full connector key.
fn prefixed(prefix: &str, e: &ConfigError) -> (String, String) {
    let full = format!("{prefix}{}", e.name());
    let message = match e {
        ConfigError::Invalid { value, reason, .. } => {
            format!("Invalid value {value} for configuration {full}: {reason}")
        }
        ConfigError::Missing(_) => {
            format!("Missing required configuration \"{full}\" which has no default value.")
        }
    };
    (full, message)
}

fn class_of(config: &Config, kind: &str, alias: &str) -> Result<String, (String, String)> {
    let key = format!("{kind}.{alias}.type");
    match config.get(&key).map(|v| v.trim()).filter(|v| !v.is_empty()) {
        Some(c) => Ok(c.to_string()),
        None => Err((
            key.clone(),
            format!("Missing required configuration \"{key}\" which has no default value."),
        )),
    }
}

impl Chain {
    /// Builds the chain, or every error at once.
    pub fn from_config(config: &Config) -> Result<Chain, ChainError> {
        let mut errors = Vec::new();
        let mut predicates: BTreeMap<String, Arc<dyn Predicate>> = BTreeMap::new();
        for alias in crate::config::list_value(config, "predicates") {
            let class = match class_of(config, "predicates", &alias) {
                Ok(c) => c,
                Err(e) => {
                    errors.push(e);
                    continue;
                }
            };
            let key = format!("predicates.{alias}.type");
            let Some(plugin) = find_predicate(&class) else {
                errors.push((key.clone(), format!("Invalid value {class} for configuration {key}: Class {class} could not be found.")));
                continue;
            };
            let prefix = format!("predicates.{alias}.");
            match (plugin.def)().parse(&settings_under(config, &prefix)) {
                Ok(settings) => match (plugin.create)(&settings) {
                    Ok(p) => {
                        predicates.insert(alias, Arc::from(p));
                    }
                    Err(m) => errors.push((key, m)),
                },
                Err(es) => errors.extend(es.iter().map(|e| prefixed(&prefix, e))),
            }
        }
        let mut steps = Vec::new();
        for alias in crate::config::list_value(config, "transforms") {
            let class = match class_of(config, "transforms", &alias) {
                Ok(c) => c,
                Err(e) => {
                    errors.push(e);
                    continue;
                }
            };
            let key = format!("transforms.{alias}.type");
            let Some(plugin) = find_transform(&class) else {
                errors.push((key.clone(), format!("Invalid value {class} for configuration {key}: Class {class} could not be found.")));
                continue;
            };
            let prefix = format!("transforms.{alias}.");
            let mut own = settings_under(config, &prefix);
            // The runtime's keys, not the plugin's.
            let predicate_alias = own.remove("predicate").filter(|p| !p.trim().is_empty());
            let negate = own.remove("negate");
            let negate = match negate.as_deref().map(str::trim) {
                None | Some("") => false,
                Some(v) if v.eq_ignore_ascii_case("true") => true,
                Some(v) if v.eq_ignore_ascii_case("false") => false,
                Some(v) => {
                    let key = format!("{prefix}negate");
                    errors.push((
                        key.clone(),
                        format!("Invalid value {v} for configuration {key}: Expected value to be either true or false"),
                    ));
                    false
                }
            };
            let predicate = match predicate_alias {
                None => None,
                Some(p) => {
                    let p = p.trim().to_string();
                    match predicates.get(&p) {
                        Some(pred) => Some((pred.clone(), negate)),
                        None => {
                            let key = format!("{prefix}predicate");
                            if !crate::config::list_value(config, "predicates").contains(&p) {
                                errors.push((
                                    key.clone(),
                                    format!("Invalid value {p} for configuration {key}: the predicate alias {p} is not in predicates; add it there with its predicates.{p}.type"),
                                ));
                            }
                            None
                        }
                    }
                }
            };
            match (plugin.def)().parse(&own) {
                Ok(settings) => match (plugin.create)(&settings) {
                    Ok(transform) => steps.push(Step {
                        class: plugin.class,
                        transform,
                        predicate,
                    }),
                    Err(m) => errors.push((key, m)),
                },
                Err(es) => errors.extend(es.iter().map(|e| prefixed(&prefix, e))),
            }
        }
        if errors.is_empty() {
            Ok(Chain { steps })
        } else {
            Err(ChainError(errors))
        }
    }

    pub fn is_empty(&self) -> bool {
        self.steps.is_empty()
    }

    /// Runs the record through every step; `None` when a step dropped it. A step whose
    /// predicate does not hold (or holds, when negated) passes the record on unchanged.
    pub fn apply(&self, mut record: Record) -> Result<Option<Record>, StepError> {
        for step in &self.steps {
            if let Some((p, negate)) = &step.predicate
                && p.test(&record) == *negate
            {
                continue;
            }
            let applied = step.transform.apply(record).map_err(|error| StepError {
                class: step.class,
                error,
            })?;
            match applied {
                Some(r) => record = r,
                None => return Ok(None),
            }
        }
        Ok(Some(record))
    }
}
