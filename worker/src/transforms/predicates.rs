//! The predicates: TopicNameMatches, HasHeaderKey and RecordIsTombstone.

use regex::Regex;
use tributary_connect_api::{ConfigDef, ConfigKey, ConfigType as T, Importance as I};

use super::routers::whole_match;
use super::util;
use super::{Predicate, PredicatePlugin, Record};

const PKG: &str = "org.apache.kafka.connect.transforms.predicates.";

pub const TOPIC_NAME_MATCHES: PredicatePlugin = PredicatePlugin {
    class: "org.apache.kafka.connect.transforms.predicates.TopicNameMatches",
    doc: "True for records whose whole topic name matches a regular expression.",
    def: || {
        ConfigDef::new().define(ConfigKey::new(
            "pattern",
            T::String,
            I::Medium,
            "A Java regular expression the whole topic name must match.",
        ))
    },
    create: |s| {
        let pattern = util::string(s, "pattern").unwrap_or_default();
        if pattern.is_empty() {
            return Err(
                "Invalid value  for configuration pattern: String must be non-empty".into(),
            );
        }
        let regex = whole_match(&pattern).map_err(|e| {
            format!("Invalid value {pattern} for configuration pattern: entry must be a valid regular expression: {e}")
        })?;
        Ok(Box::new(TopicNameMatches(regex)))
    },
};

#[derive(Debug)]
pub struct TopicNameMatches(Regex);

impl Predicate for TopicNameMatches {
    fn test(&self, r: &Record) -> bool {
        self.0.is_match(&r.topic)
    }
}

pub const HAS_HEADER_KEY: PredicatePlugin = PredicatePlugin {
    class: "org.apache.kafka.connect.transforms.predicates.HasHeaderKey",
    doc: "True for records with at least one header of the given name.",
    def: || {
        ConfigDef::new().define(ConfigKey::new(
            "name",
            T::String,
            I::Medium,
            "The header name.",
        ))
    },
    create: |s| {
        Ok(Box::new(HasHeaderKey(
            util::string(s, "name").unwrap_or_default(),
        )))
    },
};

#[derive(Debug)]
pub struct HasHeaderKey(String);

impl Predicate for HasHeaderKey {
    fn test(&self, r: &Record) -> bool {
        r.headers.iter().any(|h| h.key == self.0)
    }
}

pub const RECORD_IS_TOMBSTONE: PredicatePlugin = PredicatePlugin {
    class: "org.apache.kafka.connect.transforms.predicates.RecordIsTombstone",
    doc: "True for tombstones: records whose value is null.",
    def: ConfigDef::new,
    create: |_| Ok(Box::new(RecordIsTombstone)),
};

#[derive(Debug)]
pub struct RecordIsTombstone;

impl Predicate for RecordIsTombstone {
    fn test(&self, r: &Record) -> bool {
        r.value.is_none()
    }
}

/// Predicates resolve by simple name too (`TopicNameMatches`).
pub fn simple_name(class: &str) -> Option<&str> {
    class.strip_prefix(PKG)
}
