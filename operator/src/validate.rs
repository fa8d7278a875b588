//! Checks of a spec the schema cannot make, as pure functions: each problem names the field and
//! the fix, and ends up in `.status.conditions` (the resource is then left alone until it
//! changes, rather than retried in a loop).

use std::collections::BTreeMap;

use crate::crd::common::{ConfigMap, owner_of};
use crate::crd::kafka_connect::{ALLOWED_SSL_KEYS, KafkaConnectSpec, OWNED_KEYS, OWNED_PREFIXES};

/// One thing wrong with a resource.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// Where, as a path into the resource (`spec.config.tasks.max`).
    pub field: String,
    pub message: String,
}

impl std::fmt::Display for Problem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.field, self.message)
    }
}

/// Config values as the worker reads them: strings as written, numbers and booleans as YAML
/// wrote them. Lists, maps and nulls are problems (a property is one line of text).
pub fn config_properties(
    config: Option<&ConfigMap>,
    path: &str,
) -> Result<BTreeMap<String, String>, Vec<Problem>> {
    let mut out = BTreeMap::new();
    let mut problems = Vec::new();
    for (k, v) in config.into_iter().flatten() {
        let text = match v {
            serde_json::Value::String(s) => s.clone(),
            serde_json::Value::Number(n) => n.to_string(),
            serde_json::Value::Bool(b) => b.to_string(),
            other => {
                let what = match other {
                    serde_json::Value::Null => "null",
                    serde_json::Value::Array(_) => "a list",
                    _ => "a map",
                };
                problems.push(Problem {
                    field: format!("{path}.{k}"),
                    message: format!(
                        "is {what}; a setting is a string, a number or a boolean (write a list as \"a,b\")"
                    ),
                });
                continue;
            }
        };
        out.insert(k.clone(), text);
    }
    if problems.is_empty() {
        Ok(out)
    } else {
        Err(problems)
    }
}

/// The worker settings of a KafkaConnect: checked, as text.
pub fn kafka_connect(spec: &KafkaConnectSpec) -> Result<BTreeMap<String, String>, Vec<Problem>> {
    let mut problems = Vec::new();
    let props = match config_properties(spec.config.as_ref(), "spec.config") {
        Ok(p) => p,
        Err(mut p) => {
            problems.append(&mut p);
            BTreeMap::new()
        }
    };
    // The admission policy refuses these at apply time; clusters installed without it still
    // get the same answer here.
    for k in spec.config.iter().flat_map(|c| c.keys()) {
        if let Some(field) = owner_of(k, OWNED_KEYS, OWNED_PREFIXES, ALLOWED_SSL_KEYS) {
            problems.push(Problem {
                field: format!("spec.config.{k}"),
                message: format!("is managed by the operator; use {field} instead"),
            });
        }
    }
    if problems.is_empty() {
        Ok(props)
    } else {
        Err(problems)
    }
}

/// Keys of a Secret matching a glob (`*` any run of characters, `?` one character).
pub fn matching_keys<'a>(pattern: &str, keys: impl Iterator<Item = &'a String>) -> Vec<String> {
    fn matches(p: &[char], s: &[char]) -> bool {
        match (p.first(), s.first()) {
            (None, None) => true,
            (Some('*'), _) => matches(&p[1..], s) || (!s.is_empty() && matches(p, &s[1..])),
            (Some('?'), Some(_)) => matches(&p[1..], &s[1..]),
            (Some(a), Some(b)) if a == b => matches(&p[1..], &s[1..]),
            _ => false,
        }
    }
    let p: Vec<char> = pattern.chars().collect();
    let mut out: Vec<String> = keys
        .filter(|k| matches(&p, &k.chars().collect::<Vec<_>>()))
        .cloned()
        .collect();
    out.sort();
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crd::KafkaConnectSpec;

    fn spec(yaml: &str) -> KafkaConnectSpec {
        let base = "replicas: 1\nbootstrapServers: k:9092\ngroupId: g\nconfigStorageTopic: c\noffsetStorageTopic: o\nstatusStorageTopic: s\n";
        yaml_serde::from_str(&format!("{base}{yaml}")).unwrap()
    }

    #[test]
    fn scalars_become_property_text() {
        let s = spec("config:\n  a: x\n  b: 3\n  c: false\n  d: 0.5\n");
        let p = kafka_connect(&s).unwrap();
        assert_eq!(p["a"], "x");
        assert_eq!(p["b"], "3");
        assert_eq!(p["c"], "false");
        assert_eq!(p["d"], "0.5");
    }

    #[test]
    fn lists_maps_nulls_and_owned_keys_are_named() {
        let s = spec(
            "config:\n  l: [1]\n  m: {x: 1}\n  n: null\n  group.id: other\n  ssl.protocol: TLSv1.3\n",
        );
        let problems = kafka_connect(&s).unwrap_err();
        let fields: Vec<&str> = problems.iter().map(|p| p.field.as_str()).collect();
        assert_eq!(
            fields,
            [
                "spec.config.l",
                "spec.config.m",
                "spec.config.n",
                "spec.config.group.id"
            ]
        );
        assert!(problems[3].message.contains("use spec.groupId"));
        assert!(problems[0].message.contains("a list"));
    }

    #[test]
    fn globs_match_secret_keys() {
        let keys: Vec<String> = ["ca.crt", "b.crt", "tls.key", "crt"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        assert_eq!(matching_keys("*.crt", keys.iter()), ["b.crt", "ca.crt"]);
        assert_eq!(matching_keys("c?.crt", keys.iter()), ["ca.crt"]);
        assert_eq!(matching_keys("ca.crt", keys.iter()), ["ca.crt"]);
    }
}
