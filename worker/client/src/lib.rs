//! The Kafka Connect REST API's entities, with the JSON names and shapes of Apache Kafka
//! Connect's `runtime/rest/entities`, shared by the worker's server and by clients (the operator)
//! so that both sides agree by construction.

pub mod entities;

pub use entities::*;
