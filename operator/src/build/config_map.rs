//! `<c>-connect-config`: `worker.properties`. Secrets never appear in it: certificates and
//! passwords are mounted files the worker reads through its `directory` config provider.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::ConfigMap;

use super::{ADMIN_PORT, Cluster, REST_PORT, paths};
use crate::crd::kafka_connect::AuthenticationType;

/// The config providers the operator's own settings use (the user's are kept after them).
pub const DIR_PROVIDER: &str = "tributarydir";
const ENV_PROVIDER: &str = "tributaryenv";

/// Environment variables the pod sets and the properties read.
pub const ADVERTISED_HOST_ENV: &str = "TRIBUTARY_ADVERTISED_HOST";
pub const RACK_ENV: &str = "TRIBUTARY_RACK";

fn dir_ref(dir: &str, key: &str) -> String {
    format!("${{{DIR_PROVIDER}:{dir}:{key}}}")
}

/// A JAAS string value, quoted.
fn jaas_quote(s: &str) -> String {
    format!("\"{}\"", s.replace('\\', "\\\\").replace('"', "\\\""))
}

/// Where a trusted certificate's Secret is mounted.
pub fn ca_dir(secret: &str) -> String {
    format!("{}/{secret}", paths::CA_DIR)
}

/// The complete worker settings: the user's, then the operator's (which win; the schema and the
/// admission policy refuse the user's versions of them).
pub fn worker_properties(c: &Cluster<'_>) -> BTreeMap<String, String> {
    let spec = c.spec;
    let mut p = c.worker_config.clone();
    // Defaults where Java has none or one that breaks small clusters (the user's value wins):
    // JSON converters as Strimzi sets them, and the brokers' default replication for the
    // internal topics instead of Java's fixed 3.
    for (k, v) in [
        (
            "key.converter",
            "org.apache.kafka.connect.json.JsonConverter",
        ),
        (
            "value.converter",
            "org.apache.kafka.connect.json.JsonConverter",
        ),
        ("config.storage.replication.factor", "-1"),
        ("offset.storage.replication.factor", "-1"),
        ("status.storage.replication.factor", "-1"),
    ] {
        p.entry(k.to_string()).or_insert_with(|| v.to_string());
    }
    let mut set = |k: &str, v: String| {
        p.insert(k.to_string(), v);
    };
    set("bootstrap.servers", spec.bootstrap_servers.clone());
    set("group.id", spec.group_id.clone());
    set("config.storage.topic", spec.config_storage_topic.clone());
    set("offset.storage.topic", spec.offset_storage_topic.clone());
    set("status.storage.topic", spec.status_storage_topic.clone());
    let scheme = c.rest_scheme();
    set("listeners", format!("{scheme}://0.0.0.0:{REST_PORT}"));
    set("rest.advertised.listener", scheme.into());
    if let Some(t) = c.rest_tls() {
        // Only listeners.https.* settings: the Kafka clients' ssl.* never apply to REST.
        let ck = &t.certificate_and_key;
        set("listeners.https.ssl.keystore.type", "PEM".into());
        set(
            "listeners.https.ssl.keystore.certificate.chain",
            dir_ref(paths::REST_TLS_DIR, &ck.certificate),
        );
        set(
            "listeners.https.ssl.keystore.key",
            dir_ref(paths::REST_TLS_DIR, &ck.key),
        );
        if !c.rest_trusted.is_empty() {
            let certs: Vec<String> = c
                .rest_trusted
                .iter()
                .map(|(secret, key)| dir_ref(&ca_dir(secret), key))
                .collect();
            set("listeners.https.ssl.truststore.type", "PEM".into());
            set(
                "listeners.https.ssl.truststore.certificates",
                certs.join("\n"),
            );
        }
    }
    set(
        "rest.advertised.host.name",
        format!("${{{ENV_PROVIDER}:{ADVERTISED_HOST_ENV}}}"),
    );
    set("rest.advertised.port", REST_PORT.to_string());
    set(
        "tributary.health.listener",
        format!("http://0.0.0.0:{ADMIN_PORT}"),
    );
    set(
        "tributary.rest.basic.auth.username",
        dir_ref(paths::REST_AUTH_DIR, "username"),
    );
    set(
        "tributary.rest.basic.auth.password",
        dir_ref(paths::REST_AUTH_DIR, "password"),
    );
    if spec.rack.is_some() {
        set("client.rack", format!("${{{ENV_PROVIDER}:{RACK_ENV}}}"));
    }

    let tls = spec.tls.is_some();
    let auth = spec.authentication.as_ref();
    let sasl = auth.is_some_and(|a| a.type_ != AuthenticationType::Tls);
    let protocol = match (tls, sasl) {
        (true, true) => "SASL_SSL",
        (true, false) => "SSL",
        (false, true) => "SASL_PLAINTEXT",
        (false, false) => "PLAINTEXT",
    };
    set("security.protocol", protocol.into());
    if tls {
        // Each certificate file ends with a newline; the line break keeps them apart anyway.
        let certs: Vec<String> = c
            .trusted
            .iter()
            .map(|(secret, key)| dir_ref(&ca_dir(secret), key))
            .collect();
        set("ssl.truststore.type", "PEM".into());
        set("ssl.truststore.certificates", certs.join("\n"));
    }
    if let Some(a) = auth {
        match a.type_ {
            AuthenticationType::Tls => {
                if let Some(ck) = &a.certificate_and_key {
                    set("ssl.keystore.type", "PEM".into());
                    set(
                        "ssl.keystore.certificate.chain",
                        dir_ref(paths::KAFKA_CLIENT_DIR, &ck.certificate),
                    );
                    set(
                        "ssl.keystore.key",
                        dir_ref(paths::KAFKA_CLIENT_DIR, &ck.key),
                    );
                }
            }
            t => {
                let (mechanism, module) = match t {
                    AuthenticationType::ScramSha256 => (
                        "SCRAM-SHA-256",
                        "org.apache.kafka.common.security.scram.ScramLoginModule",
                    ),
                    AuthenticationType::ScramSha512 => (
                        "SCRAM-SHA-512",
                        "org.apache.kafka.common.security.scram.ScramLoginModule",
                    ),
                    _ => (
                        "PLAIN",
                        "org.apache.kafka.common.security.plain.PlainLoginModule",
                    ),
                };
                set("sasl.mechanism", mechanism.into());
                if let (Some(user), Some(pw)) = (&a.username, &a.password_secret) {
                    set(
                        "sasl.jaas.config",
                        format!(
                            "{module} required username={} password=\"{}\";",
                            jaas_quote(user),
                            dir_ref(paths::KAFKA_PASSWORD_DIR, &pw.password)
                        ),
                    );
                }
            }
        }
    }

    // Ours first, then any the user configured.
    let mut providers = vec![DIR_PROVIDER.to_string(), ENV_PROVIDER.to_string()];
    if let Some(user) = p.get("config.providers") {
        providers.extend(
            user.split(',')
                .map(|s| s.trim().to_string())
                .filter(|s| !s.is_empty() && s != DIR_PROVIDER && s != ENV_PROVIDER),
        );
    }
    p.insert("config.providers".into(), providers.join(","));
    p.insert(
        format!("config.providers.{DIR_PROVIDER}.class"),
        "org.apache.kafka.common.config.provider.DirectoryConfigProvider".into(),
    );
    p.insert(
        format!("config.providers.{ENV_PROVIDER}.class"),
        "org.apache.kafka.common.config.provider.EnvVarConfigProvider".into(),
    );
    p
}

/// The ConfigMap and the text whose hash goes on the pod template.
pub fn config_map(c: &Cluster<'_>) -> (ConfigMap, String) {
    let text = super::properties::render(&worker_properties(c));
    let cm = ConfigMap {
        metadata: c.meta(c.config_map_name(), "connect-worker", None),
        data: Some(BTreeMap::from([(
            "worker.properties".to_string(),
            text.clone(),
        )])),
        ..ConfigMap::default()
    };
    (cm, text)
}
