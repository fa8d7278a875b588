//! Converters between Connect data and the bytes of Kafka records, byte-compatible with Apache
//! Kafka's. So far: the JSON converter's serializing direction.

pub mod json;
pub mod json_text;
