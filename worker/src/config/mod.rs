//! Worker and connector configuration: Java `.properties` files and config providers; typed
//! worker settings and the translation to librdkafka follow with the worker core.

pub mod client;
pub mod properties;
pub mod providers;
pub mod worker;

/// A LIST value as Java's `ConfigDef` reads it: comma-separated, each item trimmed, empty items
/// dropped; a missing key is an empty list.
pub fn list_value(config: &std::collections::BTreeMap<String, String>, key: &str) -> Vec<String> {
    config
        .get(key)
        .map(|v| {
            v.split(',')
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(str::to_string)
                .collect()
        })
        .unwrap_or_default()
}
