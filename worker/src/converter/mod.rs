//! Converters between Connect data and the bytes of Kafka records, byte-compatible with Apache
//! Kafka's: JSON (both directions), String and ByteArray.

pub mod json;
pub mod json_text;
pub mod simple;
