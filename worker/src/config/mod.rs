//! Worker and connector configuration: Java `.properties` files and config providers; typed
//! worker settings and the translation to librdkafka follow with the worker core.

pub mod client;
pub mod properties;
pub mod providers;
pub mod worker;
