//! The worker's one error type.

use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A `.properties` file that Java would refuse, or that we cannot read as text.
    #[error("{}:{line}: {reason}", path.display())]
    Properties {
        path: PathBuf,
        line: usize,
        reason: String,
    },
    /// Data a converter cannot write or read.
    #[error("Conversion error: {0}")]
    Conversion(String),
    #[error("cannot read {}: {source}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// A setting that cannot work, with the key and the reason.
    #[error("{0}")]
    Config(String),
    /// The Kafka cluster refused or failed an operation.
    #[error("kafka: {0}")]
    Kafka(String),
    /// The brokers refused our credentials or certificate: retrying will not help.
    #[error("authentication failed: {0}")]
    Authentication(String),
    /// A consumer group refused a change; the message says why and what to do.
    #[error("{0}")]
    Group(String),
    /// A connector or task failed.
    #[error(transparent)]
    Connect(#[from] tributary_connect_api::ConnectError),
}

impl From<rdkafka::error::KafkaError> for Error {
    fn from(e: rdkafka::error::KafkaError) -> Self {
        Error::Kafka(e.to_string())
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;
