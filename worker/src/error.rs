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
    #[error("conversion error: {0}")]
    Conversion(String),
    #[error("cannot read {}: {source}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

pub type Result<T, E = Error> = std::result::Result<T, E>;
