//! The one error type of the data API.

/// What went wrong building a schema or checking a value against one. Messages name the field
/// (or schema) and say what was expected, because they end up in task traces and REST errors.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DataError {
    #[error("invalid schema: {0}")]
    InvalidSchema(String),
    #[error("invalid value for {field}: {reason}")]
    InvalidValue { field: String, reason: String },
    #[error("{0} is not a field of the struct schema")]
    UnknownField(String),
}

impl DataError {
    pub(crate) fn value(field: &str, reason: impl Into<String>) -> Self {
        Self::InvalidValue {
            field: field.to_string(),
            reason: reason.into(),
        }
    }
}
