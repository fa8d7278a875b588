//! Worker and connector configuration: Java `.properties` files first; typed worker settings,
//! config providers and the translation to librdkafka follow with the worker core.

pub mod properties;
