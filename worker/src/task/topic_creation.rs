//! Topic creation for source connectors (KIP-158): which settings a new topic gets, from the
//! `topic.creation.*` keys of a connector. Pure; the source loop creates the topic with them the
//! first time it sends to a topic it has not seen, since production brokers disable
//! auto-creation.

use std::collections::BTreeMap;

use regex::Regex;

use crate::error::{Error, Result};

/// How to create one topic: `-1` means the broker's default, as in Java.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewTopicSpec {
    pub partitions: i32,
    pub replication_factor: i32,
    pub configs: BTreeMap<String, String>,
}

#[derive(Debug, Clone)]
struct Group {
    name: String,
    include: Vec<Regex>,
    exclude: Vec<Regex>,
    spec: NewTopicSpec,
}

/// The `topic.creation.*` groups of a connector, `default` last.
#[derive(Debug, Clone)]
pub struct TopicCreation {
    groups: Vec<Group>,
}

const RESERVED: &[&str] = &["include", "exclude", "replication.factor", "partitions"];

fn patterns(config: &BTreeMap<String, String>, key: &str) -> Result<Vec<Regex>> {
    crate::config::list_value(config, key)
        .iter()
        .map(|p| {
            Regex::new(&format!("^(?:{p})$")).map_err(|e| {
                Error::Config(format!(
                    "Invalid value {p} for configuration {key}: not a valid regular expression ({e})"
                ))
            })
        })
        .collect()
}

fn number(config: &BTreeMap<String, String>, key: &str, required: bool) -> Result<i32> {
    match config.get(key).map(|v| v.trim()) {
        None if required => Err(Error::Config(format!(
            "Missing required configuration \"{key}\" which has no default value."
        ))),
        None => Ok(-1),
        Some(v) => {
            let n: i32 = v.parse().map_err(|_| {
                Error::Config(format!(
                    "Invalid value {v} for configuration {key}: Not a number of type INT"
                ))
            })?;
            if n == 0 || n < -1 {
                return Err(Error::Config(format!(
                    "Invalid value {n} for configuration {key}: must be -1 (broker default) or at least 1"
                )));
            }
            Ok(n)
        }
    }
}

fn spec_of(config: &BTreeMap<String, String>, group: &str, required: bool) -> Result<NewTopicSpec> {
    let prefix = format!("topic.creation.{group}.");
    let configs = config
        .iter()
        .filter_map(|(k, v)| {
            let rest = k.strip_prefix(&prefix)?;
            (!RESERVED.contains(&rest)).then(|| (rest.to_string(), v.clone()))
        })
        .collect();
    Ok(NewTopicSpec {
        partitions: number(config, &format!("{prefix}partitions"), required)?,
        replication_factor: number(config, &format!("{prefix}replication.factor"), required)?,
        configs,
    })
}

impl TopicCreation {
    /// `None` when topic creation is off for this connector: the worker disabled it, or the
    /// connector sets no `topic.creation.default.*` (Java's rule).
    pub fn from_config(
        worker_enabled: bool,
        config: &BTreeMap<String, String>,
    ) -> Result<Option<Self>> {
        let any = config.keys().any(|k| k.starts_with("topic.creation."));
        if !worker_enabled || !any {
            return Ok(None);
        }
        let mut groups = Vec::new();
        let names: Vec<String> = config
            .get("topic.creation.groups")
            .map(|v| {
                v.split(',')
                    .map(|s| s.trim().to_string())
                    .filter(|s| !s.is_empty())
                    .collect()
            })
            .unwrap_or_default();
        for name in names.iter().filter(|n| n.as_str() != "default") {
            groups.push(Group {
                name: name.clone(),
                include: patterns(config, &format!("topic.creation.{name}.include"))?,
                exclude: patterns(config, &format!("topic.creation.{name}.exclude"))?,
                spec: spec_of(config, name, false)?,
            });
        }
        groups.push(Group {
            name: "default".into(),
            include: vec![Regex::new(".*").map_err(|e| Error::Config(e.to_string()))?],
            exclude: Vec::new(),
            spec: spec_of(config, "default", true)?,
        });
        Ok(Some(Self { groups }))
    }

    /// The settings for `topic`: those of the first group that includes and does not exclude
    /// it; unset numbers fall back to the default group's.
    pub fn spec_for(&self, topic: &str) -> (&str, NewTopicSpec) {
        let default = self.groups.last().map(|g| &g.spec);
        for g in &self.groups {
            if g.include.iter().any(|r| r.is_match(topic))
                && !g.exclude.iter().any(|r| r.is_match(topic))
            {
                let mut spec = g.spec.clone();
                if let Some(d) = default {
                    if spec.partitions == -1 {
                        spec.partitions = d.partitions;
                    }
                    if spec.replication_factor == -1 {
                        spec.replication_factor = d.replication_factor;
                    }
                }
                return (&g.name, spec);
            }
        }
        (
            "default",
            default.cloned().unwrap_or(NewTopicSpec {
                partitions: -1,
                replication_factor: -1,
                configs: BTreeMap::new(),
            }),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn groups_match_in_order_and_inherit_the_default() {
        let c = cfg(&[
            ("topic.creation.groups", "compacted,big"),
            ("topic.creation.default.replication.factor", "3"),
            ("topic.creation.default.partitions", "5"),
            ("topic.creation.compacted.include", "state-.*"),
            ("topic.creation.compacted.cleanup.policy", "compact"),
            ("topic.creation.big.include", "big-.*,state-big"),
            ("topic.creation.big.partitions", "50"),
        ]);
        let tc = TopicCreation::from_config(true, &c)
            .ok()
            .flatten()
            .unwrap_or_else(|| panic!("enabled"));
        let (g, s) = tc.spec_for("state-x");
        assert_eq!(g, "compacted");
        assert_eq!(s.partitions, 5);
        assert_eq!(
            s.configs.get("cleanup.policy").map(String::as_str),
            Some("compact")
        );
        let (g, s) = tc.spec_for("big-1");
        assert_eq!((g, s.partitions, s.replication_factor), ("big", 50, 3));
        let (g, _) = tc.spec_for("other");
        assert_eq!(g, "default");
    }

    #[test]
    fn off_unless_configured_and_errors_name_keys() {
        assert!(matches!(
            TopicCreation::from_config(true, &cfg(&[])),
            Ok(None)
        ));
        let c = cfg(&[("topic.creation.default.partitions", "3")]);
        assert!(matches!(TopicCreation::from_config(false, &c), Ok(None)));
        let err = TopicCreation::from_config(true, &c)
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(
            err.contains("topic.creation.default.replication.factor"),
            "{err}"
        );
    }
}
