//! Herders decide what runs on this worker and answer the REST API. Standalone keeps connector
//! configs in memory (from the command line and the API) and offsets in a file; the distributed
//! herder arrives with distributed mode.

pub mod forward;
pub mod leader;
pub mod reconcile;
pub mod restart;
pub mod standalone;
pub mod validation;

use tributary_connect_client::ErrorMessage;

/// A herder failure, mapped to HTTP by the REST layer the way Java's `ConnectExceptionMapper`
/// maps its exceptions.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HerderError {
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    AlreadyExists(String),
    #[error("{0}")]
    BadRequest(String),
    #[error("{0}")]
    Conflict(String),
    #[error("{0}")]
    Internal(String),
}

impl HerderError {
    pub fn status(&self) -> u16 {
        match self {
            HerderError::NotFound(_) => 404,
            HerderError::AlreadyExists(_) | HerderError::Conflict(_) => 409,
            HerderError::BadRequest(_) => 400,
            HerderError::Internal(_) => 500,
        }
    }

    pub fn body(&self) -> ErrorMessage {
        ErrorMessage {
            error_code: self.status(),
            message: self.to_string(),
        }
    }
}

pub type HerderResult<T> = Result<T, HerderError>;

/// What a connector should be doing (`PUT …/pause`, `…/resume`, `…/stop`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TargetState {
    Started,
    Paused,
    Stopped,
}

impl TargetState {
    /// The name in the config topic's `state.v2` (and in `state`, except STOPPED).
    pub fn name(self) -> &'static str {
        match self {
            Self::Started => "STARTED",
            Self::Paused => "PAUSED",
            Self::Stopped => "STOPPED",
        }
    }

    /// From the config topic (exact names, as Java writes them).
    pub fn from_wire(s: &str) -> Option<Self> {
        match s {
            "STARTED" => Some(Self::Started),
            "PAUSED" => Some(Self::Paused),
            "STOPPED" => Some(Self::Stopped),
            _ => None,
        }
    }

    /// KIP-980 `initial_state`, case-insensitive.
    pub fn parse_initial(s: &str) -> HerderResult<Self> {
        match s.trim().to_ascii_uppercase().as_str() {
            "RUNNING" => Ok(TargetState::Started),
            "PAUSED" => Ok(TargetState::Paused),
            "STOPPED" => Ok(TargetState::Stopped),
            other => Err(HerderError::BadRequest(format!(
                "Invalid initial state '{other}'. Expected one of: RUNNING, PAUSED, STOPPED"
            ))),
        }
    }
}
