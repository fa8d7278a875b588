//! tributary-operator: `KafkaConnect` and `Connector` custom resources become worker clusters
//! and connectors.

pub mod crd;

/// The operator's one error type.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("cannot write YAML: {0}")]
    Yaml(String),
}
