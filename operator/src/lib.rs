//! tributary-operator: `KafkaConnect` and `Connector` custom resources become worker clusters
//! and connectors.

pub mod build;
pub mod cluster_poller;
pub mod config_from_index;
pub mod connect_client;
pub mod connector_plan;
pub mod controller;
pub mod crd;
pub mod events;
pub mod metrics;
pub mod roller;
pub mod status;
pub mod validate;

/// The operator's one error type.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("cannot write YAML: {0}")]
    Yaml(String),
    /// A builder produced an object its Kubernetes type does not accept (a bug).
    #[error("cannot build {0}")]
    Build(String),
    /// The apiserver refused or failed a request.
    #[error("{0}")]
    Kube(String),
}
