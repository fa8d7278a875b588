//! The Tributary worker: a Kafka Connect runtime. The binary (`main.rs`) is a thin command line
//! over this library, so every part can be tested without starting a process.

pub mod config;
pub mod converter;
pub mod error;

pub use error::{Error, Result};
