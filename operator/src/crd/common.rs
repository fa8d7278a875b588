//! Pieces both kinds share: Secret references, the free-form config map, conditions.

use std::collections::BTreeMap;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;
use kube::KubeSchema;
use serde::{Deserialize, Serialize};

/// Most properties a `config` map may hold. Bounds keep the apiserver's CEL cost estimate finite
/// and stop a runaway manifest early.
pub const MAX_CONFIG_ENTRIES: u32 = 256;

/// A config map whose values may be strings, numbers or booleans, as users write properties in
/// YAML (`tasks.max: 3`, `schemas.enable: false`). The values are not typed in the schema (a
/// structural schema cannot say "string or number or boolean"), so the keys are checked by CEL
/// and the values by the operator, which reports anything else in `.status.conditions`.
pub fn config_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
    schemars::json_schema!({
        "type": "object",
        "maxProperties": MAX_CONFIG_ENTRIES,
        "additionalProperties": { "x-kubernetes-preserve-unknown-fields": true },
    })
}

/// Config as users write it.
pub type ConfigMap = BTreeMap<String, serde_json::Value>;

/// A key of a Secret in the resource's namespace.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct SecretKeyRef {
    /// Name of the Secret.
    #[schemars(length(min = 1, max = 253))]
    pub name: String,
    /// Key within the Secret.
    #[schemars(length(min = 1, max = 253))]
    pub key: String,
}

/// A certificate and its private key, both PEM, in one Secret.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct CertificateAndKey {
    /// Name of the Secret.
    #[schemars(length(min = 1, max = 253))]
    pub secret_name: String,
    /// Key of the PEM certificate (chain) in the Secret, e.g. `tls.crt`.
    #[schemars(length(min = 1, max = 253))]
    pub certificate: String,
    /// Key of the PEM private key in the Secret, e.g. `tls.key`.
    #[schemars(length(min = 1, max = 253))]
    pub key: String,
}

/// CA certificates (PEM) from a Secret: one key, or every key matching a glob.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, KubeSchema)]
#[serde(rename_all = "camelCase")]
#[x_kube(validation = Rule::new("has(self.certificate) != has(self.pattern)").message("give exactly one of certificate (a key of the Secret) or pattern (a glob such as '*.crt')"))]
pub struct CertificateSource {
    /// Name of the Secret.
    #[schemars(length(min = 1, max = 253))]
    pub secret_name: String,
    /// Key of one PEM certificate in the Secret.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 253))]
    pub certificate: Option<String>,
    /// Glob over the Secret's keys, e.g. `*.crt`; every match is trusted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 253))]
    pub pattern: Option<String>,
}

/// kstatus conditions (`Ready`, `Reconciling`, `Stalled`), each with its `observedGeneration`.
pub type Conditions = Vec<Condition>;

/// What a config key is when another field owns it: the field to use, or `None`.
pub fn owner_of(
    key: &str,
    exact: &[(&str, &'static str)],
    prefixes: &[(&str, &'static str)],
    allowed: &[&str],
) -> Option<&'static str> {
    if allowed.contains(&key) {
        return None;
    }
    exact
        .iter()
        .find(|(k, _)| *k == key)
        .or_else(|| prefixes.iter().find(|(p, _)| key.starts_with(p)))
        .map(|(_, field)| *field)
}

fn cel_string(s: &str) -> String {
    format!("'{}'", s.replace('\\', "\\\\").replace('\'', "\\'"))
}

fn cel_list(items: &[&str]) -> String {
    format!(
        "[{}]",
        items
            .iter()
            .map(|s| cel_string(s))
            .collect::<Vec<_>>()
            .join(", ")
    )
}

/// CEL refusing config keys other fields own: the expression (true when `map` is fine) and a
/// message expression naming the first offending key and the field to use. Built from the same
/// table [`owner_of`] reads, so the apiserver and the operator agree.
///
/// A CRD rule cannot do this: config values may be strings, numbers or booleans, which only an
/// untyped (`x-kubernetes-preserve-unknown-fields`) schema allows, and CRD rules cannot see
/// untyped data. A ValidatingAdmissionPolicy can, so these go there (see [`super::policies`]).
pub fn owned_keys_cel(
    map: &str,
    path: &str,
    exact: &[(&str, &'static str)],
    prefixes: &[(&str, &'static str)],
    allowed: &[&str],
) -> (String, String) {
    let keys: Vec<&str> = exact.iter().map(|(k, _)| *k).collect();
    let mut owned = vec![format!("k in {}", cel_list(&keys))];
    owned.extend(
        prefixes
            .iter()
            .map(|(p, _)| format!("k.startsWith({})", cel_string(p))),
    );
    let bad = if allowed.is_empty() {
        format!("({})", owned.join(" || "))
    } else {
        format!(
            "(!(k in {}) && ({}))",
            cel_list(allowed),
            owned.join(" || ")
        )
    };
    let mut field = String::new();
    for (k, f) in exact {
        field.push_str(&format!("k == {} ? {} : ", cel_string(k), cel_string(f)));
    }
    for (p, f) in prefixes {
        field.push_str(&format!(
            "k.startsWith({}) ? {} : ",
            cel_string(p),
            cel_string(f)
        ));
    }
    field.push_str("''");
    let message = format!(
        "{map}.filter(k, {bad}).map(k, {} + k + ' is managed by the operator; use ' + ({field}) + ' instead')[0]",
        cel_string(&format!("{path}."))
    );
    (format!("!{map}.exists(k, {bad})"), message)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn owners_follow_the_table_with_exceptions() {
        let exact = [("bootstrap.servers", "spec.bootstrapServers")];
        let prefixes = [("ssl.", "spec.tls")];
        let allowed = ["ssl.protocol"];
        assert_eq!(
            owner_of("bootstrap.servers", &exact, &prefixes, &allowed),
            Some("spec.bootstrapServers")
        );
        assert_eq!(
            owner_of("ssl.keystore.location", &exact, &prefixes, &allowed),
            Some("spec.tls")
        );
        assert_eq!(owner_of("ssl.protocol", &exact, &prefixes, &allowed), None);
        assert_eq!(
            owner_of("producer.ssl.x", &exact, &prefixes, &allowed),
            None
        );
    }

    #[test]
    fn the_cel_quotes_its_strings() {
        let (rule, message) = owned_keys_cel("m", "spec.config", &[("a'b", "spec.x")], &[], &[]);
        assert_eq!(rule, "!m.exists(k, (k in ['a\\'b']))");
        assert!(message.contains("'spec.config.' + k"), "{message}");
    }
}
