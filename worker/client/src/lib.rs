//! The Kafka Connect REST API's entities, with the JSON names and shapes of Apache Kafka
//! Connect's `runtime/rest/entities`, shared by the worker's server and by clients (the operator)
//! so that both sides agree by construction.

pub mod entities;
pub mod exposition;

pub use entities::*;

/// Percent-encodes a URL path segment or query value: RFC 3986's unreserved characters stay,
/// every other byte becomes `%XX` (connector names may hold anything).
pub fn encode_component(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                out.push(b as char)
            }
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    #[test]
    fn components_are_percent_encoded() {
        assert_eq!(
            super::encode_component("Orders.Source-1"),
            "Orders.Source-1"
        );
        assert_eq!(super::encode_component("a b/c?d"), "a%20b%2Fc%3Fd");
    }
}
