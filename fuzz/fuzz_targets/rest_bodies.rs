//! Any body a client sends to the REST routes that take one, and any connector config built
//! from the plugins' own key names and values (structure-aware, so the validators of every
//! plugin, transform and predicate run): nothing panics, a refusal is a 4xx in the Kafka Connect
//! error shape, never a 500, and what validation accepts serializes.
//!
//! The first byte picks the route (low 3 bits) and the plugin (the rest); the other bytes are
//! the body, or for the structured form `key\0value\0…` where a one-byte key or value stands
//! for the plugins' key names and class names.
#![no_main]

use std::collections::BTreeMap;
use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use tributary_connect_client::ConnectorType;
use tributary_connect_client::{ConnectorOffsets, CreateConnectorRequest};
use tributary_worker::config::providers::Providers;
use tributary_worker::connectors::PLUGINS;
use tributary_worker::herder::catalog::{Catalog, patched};
use tributary_worker::herder::{HerderError, TargetState, offsets_change};

type Config = BTreeMap<String, String>;

struct Fixture {
    catalog: Catalog,
    /// Every config key of every plugin, transform and predicate.
    keys: Vec<String>,
    /// Class names and values validators treat specially.
    values: Vec<String>,
}

fn fixture() -> &'static Fixture {
    static F: OnceLock<Fixture> = OnceLock::new();
    F.get_or_init(|| {
        let worker_props: Config = [
            ("config.providers", "env"),
            (
                "config.providers.env.class",
                "org.apache.kafka.common.config.provider.EnvVarConfigProvider",
            ),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
        let catalog = Catalog {
            providers: Providers::from_worker_config(&worker_props).expect("env provider"),
            worker_props,
            override_policy: "All".into(),
        };
        let classes: Vec<String> = catalog
            .plugins(false)
            .into_iter()
            .map(|p| p.class_name)
            .collect();
        let mut keys: Vec<String> = [
            "connector.class",
            "name",
            "tasks.max",
            "topics",
            "topics.regex",
            "transforms",
            "transforms.t.type",
            "transforms.t.predicate",
            "transforms.t.negate",
            "predicates",
            "predicates.p.type",
            "predicates.p.pattern",
            "errors.tolerance",
            "errors.deadletterqueue.topic.name",
            "key.converter",
            "value.converter",
            "header.converter",
            "value.converter.schemas.enable",
            "producer.override.acks",
            "consumer.override.max.poll.records",
            "topic.creation.groups",
            "topic.creation.default.partitions",
            "topic.creation.default.replication.factor",
            "exactly.once.support",
            "transaction.boundary",
            "offsets.storage.topic",
        ]
        .map(String::from)
        .to_vec();
        for c in &classes {
            if let Ok(infos) = catalog.plugin_config(c) {
                for info in infos {
                    keys.push(info.name.clone());
                    keys.push(format!("transforms.t.{}", info.name));
                    keys.push(format!("predicates.p.{}", info.name));
                }
            }
        }
        keys.sort();
        keys.dedup();
        let mut values = classes;
        values.extend(
            [
                "",
                " ",
                "t",
                "p",
                "t,u",
                "-1",
                "0",
                "1",
                "2147483648",
                "1.5",
                "NaN",
                "true",
                "false",
                "null",
                "all",
                "none",
                "${env:HOME}",
                "${env:NOT_SET_ANYWHERE}",
                "${file:/etc/passwd:x}",
                "topic",
                "a,,b",
                "[",
                "(.*)",
                "$1",
                "id:int32",
                "int8",
                "string",
                "unix",
                "yyyy-MM-dd",
                "Timestamp",
                "V2",
                "a.b.c",
                "upsert",
                "record_key",
                "timestamp+incrementing",
                "jdbc:postgresql://localhost/db",
                "http://localhost:1/",
                "STOPPED",
                "/tmp/x",
                "\u{0}",
                "😀",
            ]
            .map(String::from),
        );
        Fixture {
            catalog,
            keys,
            values,
        }
    })
}

/// A refusal must be the client's fault, in the error shape Kafka Connect clients parse.
fn check_refusal(e: &HerderError) {
    let status = e.status();
    assert!((400..500).contains(&status), "{status} for {e:?}");
    let body = serde_json::to_value(e.body()).expect("error serializes");
    assert_eq!(body["error_code"], status);
    assert!(body["message"].is_string(), "{body}");
}

fn parse<T: serde::de::DeserializeOwned>(body: &[u8]) -> Option<T> {
    serde_json::from_slice(body).ok()
}

fn create_or_update(f: &Fixture, name: &str, config: Config) {
    match f.catalog.check_connector(name, config) {
        Ok((name, plugin, stored)) => {
            assert!(!name.is_empty() && !name.contains('/'), "{name:?} accepted");
            assert!(plugin.answers_to(&stored["connector.class"]));
        }
        Err(e) => check_refusal(&e),
    }
}

fn validate(f: &Fixture, plugin: &str, config: &Config) {
    match f.catalog.validate(plugin, config) {
        Ok(infos) => {
            serde_json::to_string(&infos).expect("validation serializes");
        }
        Err(e) => check_refusal(&e),
    }
}

/// `key\0value\0…`, a one-byte part standing for a known key or value.
fn structured(f: &Fixture, bytes: &[u8], plugin: &str) -> Config {
    let pick = |part: &[u8], from: &[String]| match part {
        [i] => from[*i as usize % from.len()].clone(),
        other => String::from_utf8_lossy(other).into_owned(),
    };
    let mut config: Config = bytes
        .split(|b| *b == 0)
        .collect::<Vec<_>>()
        .chunks_exact(2)
        .map(|kv| (pick(kv[0], &f.keys), pick(kv[1], &f.values)))
        .collect();
    config
        .entry("connector.class".into())
        .or_insert_with(|| plugin.to_string());
    config
}

fuzz_target!(|data: &[u8]| {
    let Some((&choice, body)) = data.split_first() else {
        return;
    };
    let f = fixture();
    let plugin = &PLUGINS[(choice >> 3) as usize % PLUGINS.len()];
    match choice & 7 {
        // POST /connectors
        0 => {
            if let Some(req) = parse::<CreateConnectorRequest>(body) {
                if let Some(s) = req.initial_state.as_deref()
                    && let Err(e) = TargetState::parse_initial(s)
                {
                    check_refusal(&e);
                }
                create_or_update(f, &req.name, req.config);
            }
        }
        // PUT /connectors/{name}/config, the name from the config
        1 => {
            if let Some(config) = parse::<Config>(body) {
                let name = config.get("name").cloned().unwrap_or_default();
                create_or_update(f, &name, config);
            }
        }
        // PATCH /connectors/{name}/config on a stored config
        2 => {
            if let Some(patch) = parse::<BTreeMap<String, Option<String>>>(body) {
                let stored = structured(f, b"", plugin.class);
                create_or_update(f, "patched", patched(stored, patch));
            }
        }
        // PUT /connector-plugins/{plugin}/config/validate
        3 => {
            if let Some(config) = parse::<Config>(body) {
                validate(f, plugin.class, &config);
            }
        }
        // PATCH /connectors/{name}/offsets on a stopped source or sink
        4 => {
            if let Some(offsets) = parse::<ConnectorOffsets>(body) {
                let again: ConnectorOffsets =
                    serde_json::from_str(&serde_json::to_string(&offsets).expect("serializes"))
                        .expect("what serializes parses");
                assert_eq!(again, offsets);
                for type_ in [ConnectorType::Source, ConnectorType::Sink] {
                    if let Err(e) =
                        offsets_change("c", type_, TargetState::Stopped, 0, Some(&offsets))
                    {
                        check_refusal(&e);
                    }
                }
            }
        }
        // Structured configs through validation and creation
        _ => {
            let config = structured(f, body, plugin.class);
            validate(f, plugin.class, &config);
            create_or_update(f, "fuzzed", config);
        }
    }
});
