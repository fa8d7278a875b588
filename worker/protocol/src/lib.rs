//! The Kafka Connect group protocol as pure code: member metadata and assignment codecs (v0, v1,
//! v2, byte-exact with Apache Kafka Connect) and the eager and incremental cooperative assignors.
//!
//! Pure so that it can be property-tested and fuzzed without a broker; the worker's coordinator
//! does the I/O. `../shared/connect-compat.md` §4 and `docs/compatibility.md` hold the facts the
//! codecs and assignors follow.

pub mod assignment;
pub mod assignor;
pub mod metadata;
pub mod wire;

pub use assignment::{Assignment, ConnectorAssignment, TaskId, Work};
pub use metadata::{ConnectProtocol, WorkerMetadata};

/// Why bytes could not be decoded or a value could not be encoded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    #[error("{what}: field {field} needs {needed} bytes but only {left} are left")]
    Truncated {
        what: &'static str,
        field: &'static str,
        needed: usize,
        left: usize,
    },
    #[error("{what}: field {field}: {reason}")]
    Invalid {
        what: &'static str,
        field: &'static str,
        reason: String,
    },
    #[error("{field} is {len} long, more than the protocol can carry")]
    TooLong { field: &'static str, len: usize },
    #[error("unknown Connect protocol {0:?}; expected one of eager, compatible, sessioned")]
    UnknownProtocol(String),
}

pub type Result<T> = std::result::Result<T, Error>;
