//! `Connector`: one connector on a `KafkaConnect` cluster, kept in step with the resource by the
//! operator through the workers' REST API, with its live state in `.status`.

// kube-derive's repeated `printcolumn(type_ = ...)` entries look like duplicated attributes to clippy.
#![allow(clippy::duplicated_attributes)]

use kube::{CustomResource, KubeSchema};
use serde::{Deserialize, Serialize};

use super::common::{Conditions, ConfigMap, SecretKeyRef, config_schema};

/// Connector settings the resource's own fields own.
pub const OWNED_KEYS: &[(&str, &str)] = &[
    ("name", "spec.connectorName (or metadata.name)"),
    ("connector.class", "spec.class"),
    ("tasks.max", "spec.tasksMax"),
];

/// A connector on a Tributary (or any Kafka Connect) cluster.
#[derive(CustomResource, KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[kube(
    group = "tributary.dev",
    version = "v1alpha1",
    kind = "Connector",
    plural = "connectors",
    namespaced,
    status = "ConnectorStatus",
    shortname = "tctr",
    category = "tributary",
    printcolumn(
        name = "Cluster",
        type_ = "string",
        json_path = ".spec.clusterRef.name"
    ),
    printcolumn(name = "Class", type_ = "string", json_path = ".spec.class"),
    printcolumn(name = "Tasks", type_ = "integer", json_path = ".spec.tasksMax"),
    printcolumn(
        name = "State",
        type_ = "string",
        json_path = ".status.connectorStatus.connector.state"
    ),
    printcolumn(
        name = "Ready",
        type_ = "string",
        json_path = ".status.conditions[?(@.type==\"Ready\")].status"
    ),
    printcolumn(
        name = "Age",
        type_ = "date",
        json_path = ".metadata.creationTimestamp"
    ),
    scale(
        spec_replicas_path = ".spec.tasksMax",
        status_replicas_path = ".status.tasksMax",
        label_selector_path = ".status.selector"
    ),
    selectable = ".spec.clusterRef.name",
    doc = "A Kafka Connect connector, run on a KafkaConnect cluster by tributary-operator"
)]
#[serde(rename_all = "camelCase")]
pub struct ConnectorSpec {
    /// The KafkaConnect cluster (same namespace) that runs the connector.
    pub cluster_ref: ClusterRef,

    /// The connector's name in Kafka Connect, when `metadata.name` cannot hold it (upper case,
    /// dots, or a name taken over from an existing cluster). Fixed once set.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 249))]
    #[x_kube(validation = Rule::new("self == oldSelf").message("spec.connectorName cannot change; create a new Connector instead"))]
    pub connector_name: Option<String>,

    /// The connector plugin (`connector.class`): a class name or alias such as
    /// `FileStreamSource`.
    #[schemars(length(min = 1, max = 253))]
    pub class: String,

    /// Most tasks the connector may run (`tasks.max`); also the scale subresource.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1, max = 10000))]
    pub tasks_max: Option<i32>,

    /// Connector settings. Values may be strings, numbers or booleans.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "config_schema")]
    pub config: Option<ConfigMap>,

    /// Settings whose values come from Secret keys. The worker reads them from files, so no
    /// secret value is ever in the connector's config, the REST API or this resource.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 64))]
    pub config_from: Option<Vec<ConfigFrom>>,

    /// `running`, `paused` or `stopped` (no tasks; offsets can then be changed).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub state: Option<ConnectorState>,

    /// A restart, done once for each new `id` (GitOps-safe: re-applying the same id does not
    /// restart again).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub restart: Option<RestartRequest>,

    /// Restart failed connectors and tasks by themselves, with backoff.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub auto_restart: Option<AutoRestart>,

    /// An offsets change, done once for each new `id` while the connector is `stopped`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub offsets: Option<OffsetsRequest>,

    /// What deleting the resource does to the connector: `Delete` (the default) or `Orphan`
    /// (it keeps running).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deletion_policy: Option<DeletionPolicy>,

    /// Take over a connector of the same name that already runs on the cluster (created through
    /// the REST API); without it, such a connector is reported and left alone.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub adopt_existing: Option<bool>,
}

/// The cluster of a connector.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct ClusterRef {
    /// Name of the KafkaConnect resource.
    #[schemars(length(min = 1, max = 44))]
    pub name: String,
}

/// A setting whose value is a Secret key.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct ConfigFrom {
    /// The connector setting, e.g. `connection.password`.
    #[schemars(length(min = 1, max = 253))]
    pub key: String,
    /// The Secret key holding its value.
    pub secret_key_ref: SecretKeyRef,
}

/// The target state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum ConnectorState {
    Running,
    Paused,
    Stopped,
}

/// A declarative restart (KIP-745).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct RestartRequest {
    /// Any new value asks for one more restart.
    #[schemars(length(min = 1, max = 63))]
    pub id: String,
    /// Restart the tasks too.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub include_tasks: Option<bool>,
    /// Restart only what has FAILED.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub only_failed: Option<bool>,
}

/// Automatic restarts of failed connectors and tasks.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct AutoRestart {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub enabled: Option<bool>,
    /// Restarts before giving up (unlimited when absent).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 0, max = 10000))]
    pub max_restarts: Option<i32>,
    /// The longest wait between restarts, in seconds (the wait doubles from 2 s up to this).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1, max = 86400))]
    pub max_backoff_seconds: Option<i32>,
}

/// A declarative offsets change (KIP-875).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, KubeSchema)]
#[serde(rename_all = "camelCase")]
#[x_kube(validation = Rule::new("(has(self.reset) && self.reset) != has(self.alter)").message("spec.offsets: give exactly one of reset: true or alter"))]
pub struct OffsetsRequest {
    /// Any new value asks for the change once more.
    #[schemars(length(min = 1, max = 63))]
    pub id: String,
    /// Forget every offset of the connector.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reset: Option<bool>,
    /// Set these partitions' offsets (`offset: null` forgets one), in the REST API's shape.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 1000))]
    pub alter: Option<Vec<OffsetEntry>>,
}

/// One partition's offset, as `PATCH /connectors/{c}/offsets` takes it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct OffsetEntry {
    /// The source partition (for sinks: `kafka_topic` and `kafka_partition`).
    #[schemars(schema_with = "config_schema")]
    pub partition: ConfigMap,
    /// The offset (for sinks: `kafka_offset`); null forgets the partition.
    #[serde(default)]
    #[schemars(schema_with = "nullable_config_schema")]
    pub offset: Option<ConfigMap>,
}

fn nullable_config_schema(g: &mut schemars::SchemaGenerator) -> schemars::Schema {
    let mut s = config_schema(g);
    s.insert("nullable".into(), true.into());
    s
}

/// What deleting the resource does to the connector.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub enum DeletionPolicy {
    Delete,
    Orphan,
}

/// What the operator observed of the connector.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct ConnectorStatus {
    /// `Ready` (the connector and every task RUNNING), `Reconciling`, `Stalled`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub conditions: Option<Conditions>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    /// The connector's and its tasks' states, as the workers report them (traces redacted and
    /// shortened).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub connector_status: Option<ConnectorStatusView>,
    /// `tasks.max` in effect (the scale subresource's replicas).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tasks_max: Option<i32>,
    /// Label selector for the scale subresource.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub selector: Option<String>,
    /// Topics the connector uses (KIP-558).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub topics: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub auto_restart: Option<AutoRestartStatus>,
    /// The last `spec.restart.id` acted on.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_restart: Option<String>,
    /// The last `spec.offsets.id` acted on.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_offsets: Option<String>,
    /// The connector this resource manages on the cluster: recorded before the operator first
    /// creates or adopts it, so a connector of that name found later is known to be its own
    /// (an operator stopped between the two steps never takes someone else's connector, nor
    /// leaves its own unmanaged).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub connector_name: Option<String>,
}

/// `GET /connectors/{c}/status`, trimmed for a resource status.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct ConnectorStatusView {
    pub connector: UnitState,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tasks: Option<Vec<TaskState>>,
    /// `source` or `sink`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[serde(rename = "type")]
    pub type_: Option<String>,
}

/// A connector's state.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct UnitState {
    pub state: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub worker_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub trace: Option<String>,
}

/// A task's state.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct TaskState {
    pub id: i32,
    pub state: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub worker_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub trace: Option<String>,
}

/// Automatic restarts done so far.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct AutoRestartStatus {
    pub count: i32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_restart_time: Option<String>,
}
