//! The Tributary worker: a Kafka Connect runtime. The binary (`main.rs`) is a thin command line
//! over this library, so every part can be tested without starting a process.

pub mod config;
pub mod config_store;
pub mod connectors;
pub mod converter;
pub mod coordinator;
pub mod distributed;
pub mod error;
pub mod group_offsets;
pub mod herder;
pub mod kafka_log;
pub mod logging;
pub mod metrics;
pub mod offset_store;
pub mod rest;
pub mod rest_tls;
pub mod signing;
pub mod standalone;
pub mod status;
pub mod status_store;
pub mod task;
pub mod transforms;

pub use error::{Error, Result};
