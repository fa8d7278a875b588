//! Herders decide what runs on this worker and answer the REST API. Standalone keeps connector
//! configs in memory (from the command line and the API) and offsets in a file; the distributed
//! herder keeps them in the internal topics and shares the work with the group. The REST layer
//! sees both through [`Herder`].

pub mod catalog;
pub mod distributed;
pub mod forward;
pub mod leader;
pub mod reconcile;
pub mod restart;
pub mod standalone;
pub mod validation;

use std::collections::BTreeMap;

use tributary_connect_api::Config;
use tributary_connect_client::{
    ConnectorInfo, ConnectorOffsets, ConnectorStateInfo, ErrorMessage, TaskInfo, TaskState,
};

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use tributary_connect_api::{ConnectError, ConnectorContext};
use tributary_connect_client::{ConnectorType, State};

use self::catalog::Catalog;

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
    /// Another worker must handle the request (the leader, or the owner of a connector or
    /// task): the REST layer forwards it there (Java's `NotLeaderException` and
    /// `NotAssignedException`), or answers 409 when the URL is unknown.
    #[error("the request must be handled by another worker ({})", url.as_deref().unwrap_or("unknown"))]
    Elsewhere { url: Option<String> },
    /// An internal request refused by signature verification (400, 403 or 503).
    #[error("{message}")]
    Refused { status: u16, message: String },
}

impl HerderError {
    pub fn status(&self) -> u16 {
        match self {
            HerderError::NotFound(_) => 404,
            HerderError::AlreadyExists(_)
            | HerderError::Conflict(_)
            | HerderError::Elsewhere { .. } => 409,
            HerderError::BadRequest(_) => 400,
            HerderError::Internal(_) => 500,
            HerderError::Refused { status, .. } => *status,
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

/// A partition and its new offset (`None` removes it).
pub type OffsetChange = (
    tributary_connect_api::OffsetMap,
    Option<tributary_connect_api::OffsetMap>,
);

/// What a `PATCH` (some partitions) or `DELETE` (`None`: every partition) of offsets asks for.
#[derive(Debug, Clone, PartialEq)]
pub enum OffsetsChange {
    /// Records in the offsets topic.
    Source(Option<Vec<OffsetChange>>),
    /// Committed offsets of the connector's consumer group.
    Sink(Option<Vec<crate::group_offsets::SinkOffsetChange>>),
}

/// The checks before offsets are altered or reset, and the change in the stores' terms.
pub fn offsets_change(
    name: &str,
    type_: ConnectorType,
    target: TargetState,
    task_count: usize,
    offsets: Option<&ConnectorOffsets>,
) -> HerderResult<OffsetsChange> {
    if target != TargetState::Stopped || task_count > 0 {
        return Err(HerderError::BadRequest(format!(
            "Connectors must be in the STOPPED state before their offsets can be modified. This can be done for the specified connector by issuing a 'PUT' request to the '/connectors/{name}/stop' endpoint"
        )));
    }
    if offsets.is_some_and(|o| o.offsets.is_empty()) {
        return Err(HerderError::BadRequest(
            "The request body must list the partitions whose offsets to alter (\"offsets\": [{\"partition\": {...}, \"offset\": {...} or null}])".into(),
        ));
    }
    if type_ == ConnectorType::Sink {
        return match offsets {
            None => Ok(OffsetsChange::Sink(None)),
            Some(o) => crate::group_offsets::parse_changes(o)
                .map(|c| OffsetsChange::Sink(Some(c)))
                .map_err(HerderError::BadRequest),
        };
    }
    Ok(OffsetsChange::Source(offsets.map(|o| {
        o.offsets
            .iter()
            .map(|e| {
                (
                    e.partition.clone().into_iter().collect(),
                    e.offset.clone().map(|m| m.into_iter().collect()),
                )
            })
            .collect()
    })))
}

/// The consumer group admin of sink connector `name` with stored config `config`.
fn group_admin(
    catalog: &Catalog,
    name: &str,
    config: &Config,
) -> HerderResult<crate::group_offsets::GroupAdmin> {
    let resolved = catalog
        .providers
        .resolve(config)
        .map_err(|e| HerderError::Internal(e.to_string()))?;
    crate::group_offsets::GroupAdmin::for_connector(
        &catalog.worker_props,
        &catalog.override_policy,
        name,
        &resolved,
    )
    .map_err(|e| HerderError::Internal(e.to_string()))
}

/// A connector's offsets: from the offsets topic for a source, from its consumer group for a
/// sink (both modes share this).
pub fn read_offsets(
    catalog: &Catalog,
    store: &dyn crate::offset_store::OffsetBackingStore,
    name: &str,
    config: &Config,
) -> HerderResult<ConnectorOffsets> {
    if Catalog::type_of(config) == ConnectorType::Sink {
        let committed = group_admin(catalog, name, config)?
            .committed()
            .map_err(|e| HerderError::Internal(e.to_string()))?;
        return Ok(crate::group_offsets::entity(&committed));
    }
    Ok(crate::offset_store::connector_offsets_entity(store, name))
}

/// Applies a checked change; the reply's message on success.
pub fn write_offsets(
    catalog: &Catalog,
    store: &dyn crate::offset_store::OffsetBackingStore,
    name: &str,
    config: &Config,
    change: OffsetsChange,
) -> HerderResult<String> {
    let internal = |e: crate::error::Error| HerderError::Internal(e.to_string());
    let altered = match change {
        OffsetsChange::Source(change) => {
            let altered = change.is_some();
            crate::offset_store::modify_connector_offsets(store, name, change.as_deref())
                .map_err(internal)?;
            altered
        }
        OffsetsChange::Sink(Some(change)) => {
            group_admin(catalog, name, config)?
                .alter(&change)
                .map_err(internal)?;
            true
        }
        OffsetsChange::Sink(None) => {
            group_admin(catalog, name, config)?
                .delete_group()
                .map_err(internal)?;
            false
        }
    };
    Ok(offsets_message(altered))
}

/// 403 when topic tracking (or, for a reset, resetting it) is disabled, as Java answers.
pub fn check_topic_tracking(enabled: bool, allow_reset: Option<bool>) -> HerderResult<()> {
    if !enabled {
        return Err(HerderError::Refused {
            status: 403,
            message: "Topic tracking is disabled.".into(),
        });
    }
    if allow_reset == Some(false) {
        return Err(HerderError::Refused {
            status: 403,
            message: "Topic tracking reset is disabled.".into(),
        });
    }
    Ok(())
}

/// The 200 reply's message of a `PATCH` (altered) or `DELETE` (reset).
pub fn offsets_message(altered: bool) -> String {
    if altered {
        "The offsets for this connector have been altered successfully".into()
    } else {
        "The offsets for this connector have been reset successfully".into()
    }
}

/// What the REST API asks of a herder. Calls block (they may write to Kafka or stop tasks), so the
/// REST layer makes them off the async runtime.
pub trait Herder: Send + Sync + std::fmt::Debug {
    fn catalog(&self) -> &Catalog;
    fn kafka_cluster_id(&self) -> Option<String>;
    fn connector_names(&self) -> HerderResult<Vec<String>>;
    fn info(&self, name: &str) -> HerderResult<ConnectorInfo>;
    fn config(&self, name: &str) -> HerderResult<Config>;
    fn status(&self, name: &str) -> HerderResult<ConnectorStateInfo>;
    fn task_status(&self, name: &str, task: u32) -> HerderResult<TaskState>;
    fn tasks(&self, name: &str) -> HerderResult<Vec<TaskInfo>>;
    fn offsets(&self, name: &str) -> HerderResult<ConnectorOffsets>;
    /// Creates a connector, or with `allow_update` replaces its config; returns the info and
    /// whether it was created.
    fn put_connector(
        &self,
        name: &str,
        config: Config,
        allow_update: bool,
        initial: Option<TargetState>,
    ) -> HerderResult<(ConnectorInfo, bool)>;
    fn patch_connector(
        &self,
        name: &str,
        patch: BTreeMap<String, Option<String>>,
    ) -> HerderResult<ConnectorInfo>;
    fn delete(&self, name: &str) -> HerderResult<()>;
    fn set_target(&self, name: &str, target: TargetState) -> HerderResult<()>;
    /// Restarts per KIP-745; returns the status with RESTARTING marks.
    fn restart(
        &self,
        name: &str,
        include_tasks: bool,
        only_failed: bool,
    ) -> HerderResult<ConnectorStateInfo>;
    fn restart_task(&self, name: &str, task: u32) -> HerderResult<()>;
    /// KIP-875 `PATCH …/offsets` (`Some`) and `DELETE …/offsets` (`None`) on a stopped
    /// connector; returns the reply's message.
    fn modify_offsets(&self, name: &str, offsets: Option<ConnectorOffsets>)
    -> HerderResult<String>;
    /// `POST /connectors/{c}/tasks` (internal): task configs from the worker running the
    /// connector, with the request's signature headers and exact body.
    fn internal_task_configs(
        &self,
        name: &str,
        _signature: Option<&str>,
        _algorithm: Option<&str>,
        _body: &[u8],
    ) -> HerderResult<()> {
        Err(HerderError::NotFound(format!(
            "Internal task configs for {name} are only accepted in distributed mode"
        )))
    }
    /// `GET /connectors/{c}/topics` (KIP-558): the topics the connector used, sorted.
    fn topics(&self, name: &str) -> HerderResult<Vec<String>>;
    /// `PUT /connectors/{c}/topics/reset`.
    fn reset_topics(&self, name: &str) -> HerderResult<()>;
    /// `PUT /admin/loggers/{name}?scope=cluster` (KIP-976): every worker of the cluster sets the
    /// level. A standalone worker is a cluster of one.
    fn put_cluster_logger(&self, namespace: &str, level: &str) -> HerderResult<()> {
        crate::logging::set(namespace, Some(level), distributed::now_ms())
            .map(drop)
            .map_err(HerderError::BadRequest)
    }
    /// Whether the worker has started (joined and read its state): `/health` and `/ready`.
    fn ready(&self) -> bool;
    /// How long the thread that runs the work has been busy with one step, when that is longer
    /// than a healthy worker ever takes (`/health` then answers 500 unhealthy, as Java's does
    /// when its herder thread does not answer within 10 s).
    fn stalled(&self) -> Option<std::time::Duration> {
        None
    }
}

/// The connector's side of `ConnectorContext`: flags the herder's watcher acts on.
#[derive(Debug)]
pub struct HerderContext {
    pub name: String,
    pub reconfigure: Arc<AtomicBool>,
    pub status: Arc<crate::status::StatusBoard>,
    pub type_: ConnectorType,
}

impl ConnectorContext for HerderContext {
    fn request_task_reconfiguration(&self) {
        self.reconfigure.store(true, Ordering::Release);
    }
    fn raise_error(&self, error: ConnectError) {
        tracing::error!(connector = %self.name, %error, "connector failed");
        self.status.set_connector(
            &self.name,
            self.type_,
            State::Failed,
            Some(error.to_string()),
        );
    }
}
