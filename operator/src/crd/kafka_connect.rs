//! `KafkaConnect`: a cluster of Tributary workers (distributed mode) the operator runs as a
//! StatefulSet. The shape follows Strimzi's `KafkaConnect` where it can, so manifests move over
//! with few edits; the differences are on purpose: the group and the three storage topics are
//! required (shared defaults silently merge clusters), and settings the operator owns are
//! refused at apply time instead of being dropped with a log line.

// kube-derive's repeated `printcolumn(type_ = ...)` entries look like duplicated attributes to clippy.
#![allow(clippy::duplicated_attributes)]

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{
    Affinity, EnvVar, LocalObjectReference, PodSecurityContext, ResourceRequirements,
    SecurityContext, Toleration, TopologySpreadConstraint, Volume, VolumeMount,
};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use kube::{CustomResource, KubeSchema};
use serde::{Deserialize, Serialize};

use super::common::{CertificateAndKey, CertificateSource, Conditions, ConfigMap, config_schema};

/// Worker settings the operator writes itself, each with the field to use instead. Java's
/// `ssl.*` keys that only tune the handshake stay allowed, as in Strimzi.
pub const OWNED_KEYS: &[(&str, &str)] = &[
    ("bootstrap.servers", "spec.bootstrapServers"),
    ("group.id", "spec.groupId"),
    ("config.storage.topic", "spec.configStorageTopic"),
    ("offset.storage.topic", "spec.offsetStorageTopic"),
    ("status.storage.topic", "spec.statusStorageTopic"),
    ("security.protocol", "spec.tls and spec.authentication"),
    ("listeners", "spec.rest"),
    ("plugin.path", "nothing (plugins are built in)"),
    (
        "tributary.health.listener",
        "nothing (the admin port is 8084)",
    ),
];

/// Prefixes the operator owns, each with the field to use instead.
pub const OWNED_PREFIXES: &[(&str, &str)] = &[
    ("ssl.", "spec.tls and spec.authentication"),
    ("sasl.", "spec.authentication"),
    ("listeners.", "spec.rest.tls"),
    (
        "rest.",
        "spec.rest (the operator sets the advertised name and port)",
    ),
    (
        "tributary.rest.basic.auth.",
        "nothing (the operator generates the REST credentials)",
    ),
];

/// `ssl.*` keys that tune the handshake and stay the user's (Strimzi's exceptions).
pub const ALLOWED_SSL_KEYS: &[&str] = &[
    "ssl.endpoint.identification.algorithm",
    "ssl.cipher.suites",
    "ssl.protocol",
    "ssl.enabled.protocols",
];

/// A Kafka Connect cluster of Tributary workers.
#[derive(CustomResource, KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[kube(
    group = "tributary.dev",
    version = "v1alpha1",
    kind = "KafkaConnect",
    plural = "kafkaconnects",
    namespaced,
    status = "KafkaConnectStatus",
    shortname = "tkc",
    category = "tributary",
    printcolumn(name = "Desired", type_ = "integer", json_path = ".spec.replicas"),
    printcolumn(name = "Ready replicas", type_ = "integer", json_path = ".status.readyReplicas"),
    printcolumn(
        name = "Ready",
        type_ = "string",
        json_path = ".status.conditions[?(@.type==\"Ready\")].status"
    ),
    printcolumn(name = "Age", type_ = "date", json_path = ".metadata.creationTimestamp"),
    scale(
        spec_replicas_path = ".spec.replicas",
        status_replicas_path = ".status.replicas",
        label_selector_path = ".status.labelSelector"
    ),
    validation = Rule::new("self.metadata.name.size() <= 44 && self.metadata.name.matches('^[a-z]([-a-z0-9]*[a-z0-9])?$')").message("metadata.name: a KafkaConnect name is a lowercase DNS label (letters, digits, '-', starting with a letter) of at most 44 characters, so that the StatefulSet <name>-connect and its pod names fit"),
    doc = "A Kafka Connect cluster of Tributary workers, run by tributary-operator as a StatefulSet"
)]
#[serde(rename_all = "camelCase")]
#[x_kube(validation = Rule::new("self.configStorageTopic != self.offsetStorageTopic && self.configStorageTopic != self.statusStorageTopic && self.offsetStorageTopic != self.statusStorageTopic").message("spec.configStorageTopic, spec.offsetStorageTopic and spec.statusStorageTopic must be three different topics"))]
#[x_kube(validation = Rule::new("!has(self.authentication) || self.authentication.type != 'tls' || has(self.tls)").message("spec.authentication.type tls needs spec.tls (the CA certificates of the brokers)"))]
pub struct KafkaConnectSpec {
    /// Number of worker pods. `0` stops every worker; connectors, offsets and statuses stay in
    /// the Kafka topics.
    #[schemars(range(min = 0, max = 1000))]
    pub replicas: i32,

    /// Worker image. Defaults to the image of the operator's own release.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 1024))]
    pub image: Option<String>,

    /// Kafka brokers to bootstrap from: a comma-separated `host:port` list.
    #[schemars(length(min = 1, max = 4096))]
    #[x_kube(validation = Rule::new("self.matches('^[^,\\\\s]+:[0-9]{1,5}(,[^,\\\\s]+:[0-9]{1,5})*$')").message("spec.bootstrapServers is a comma-separated list of host:port, without spaces"))]
    pub bootstrap_servers: String,

    /// The Connect group (`group.id`). Workers with the same group and topics form one
    /// cluster, so every cluster needs its own.
    #[schemars(length(min = 1, max = 249))]
    pub group_id: String,

    /// Topic holding connector and task configs (`config.storage.topic`).
    #[schemars(length(min = 1, max = 249), regex(pattern = r"^[a-zA-Z0-9._-]+$"))]
    pub config_storage_topic: String,

    /// Topic holding source connector offsets (`offset.storage.topic`).
    #[schemars(length(min = 1, max = 249), regex(pattern = r"^[a-zA-Z0-9._-]+$"))]
    pub offset_storage_topic: String,

    /// Topic holding connector and task statuses (`status.storage.topic`).
    #[schemars(length(min = 1, max = 249), regex(pattern = r"^[a-zA-Z0-9._-]+$"))]
    pub status_storage_topic: String,

    /// TLS to the brokers: the CA certificates to trust.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tls: Option<KafkaTls>,

    /// How workers authenticate to the brokers.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub authentication: Option<Authentication>,

    /// Worker properties, as in a Java `worker.properties` (`key.converter: ...`,
    /// `offset.flush.interval.ms: 10000`). Values may be strings, numbers or booleans. Settings
    /// that other fields own are refused with the field to use (by the ValidatingAdmissionPolicy
    /// installed with the CRDs, and by the operator).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "config_schema")]
    pub config: Option<ConfigMap>,

    /// CPU and memory of each worker container.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resources: Option<ResourceRequirements>,

    /// Log levels, applied to running workers through `/admin/loggers?scope=cluster` (no
    /// restart).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub logging: Option<Logging>,

    /// Prometheus scraping of the workers' admin port (8084, `/metrics`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metrics: Option<Metrics>,

    /// Rack awareness: `client.rack` from a label of the worker's node.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rack: Option<Rack>,

    /// Overrides for the objects the operator builds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub template: Option<Template>,

    /// The Connect REST API on port 8083.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rest: Option<Rest>,
}

/// TLS to the brokers.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct KafkaTls {
    /// CA certificates (PEM) the workers trust for the brokers.
    #[schemars(length(min = 1, max = 32))]
    pub trusted_certificates: Vec<CertificateSource>,
}

/// Authentication to the brokers.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, KubeSchema)]
#[serde(rename_all = "camelCase")]
#[x_kube(validation = Rule::new("self.type == 'tls' ? (has(self.certificateAndKey) && !has(self.username) && !has(self.passwordSecret)) : (has(self.username) && has(self.passwordSecret) && !has(self.certificateAndKey))").message("spec.authentication: type tls takes certificateAndKey; scram-sha-256, scram-sha-512 and plain take username and passwordSecret"))]
pub struct Authentication {
    /// `tls` (client certificate), `scram-sha-256`, `scram-sha-512` or `plain`.
    #[serde(rename = "type")]
    pub type_: AuthenticationType,
    /// The client certificate and key, for `tls`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub certificate_and_key: Option<CertificateAndKey>,
    /// The SASL user, for `scram-sha-256`, `scram-sha-512` and `plain`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 253))]
    pub username: Option<String>,
    /// Where the SASL password is.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub password_secret: Option<PasswordSecret>,
}

/// The kinds of broker authentication.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub enum AuthenticationType {
    #[serde(rename = "tls")]
    Tls,
    #[serde(rename = "scram-sha-256")]
    ScramSha256,
    #[serde(rename = "scram-sha-512")]
    ScramSha512,
    #[serde(rename = "plain")]
    Plain,
}

/// A password in a Secret (Strimzi's shape).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct PasswordSecret {
    /// Name of the Secret.
    #[schemars(length(min = 1, max = 253))]
    pub secret_name: String,
    /// Key of the password in the Secret.
    #[schemars(length(min = 1, max = 253))]
    pub password: String,
}

/// Log levels by logger.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct Logging {
    /// Level by logger name: `root`, or a module such as `tributary_worker::task` (Java's
    /// dotted names are accepted too).
    #[schemars(extend("maxProperties" = 64))]
    pub loggers: BTreeMap<String, LogLevel>,
}

/// Log levels, as Kafka Connect names them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "UPPERCASE")]
pub enum LogLevel {
    Trace,
    Debug,
    Info,
    Warn,
    Error,
    Off,
}

/// Prometheus scraping.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct Metrics {
    /// Adds `prometheus.io/scrape`, `prometheus.io/port` and `prometheus.io/path` annotations
    /// to the worker pods.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scrape_annotations: Option<bool>,
}

/// Rack awareness: consumers fetch from the closest replica (KIP-392).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct Rack {
    /// The node label whose value becomes `client.rack`: `topology.kubernetes.io/zone` or
    /// `topology.kubernetes.io/region`, the labels Kubernetes (1.35 and later, PodTopologyLabels)
    /// copies from a node to the pods it runs, where the worker reads them without any access
    /// to the Kubernetes API.
    #[schemars(length(min = 1, max = 317))]
    #[x_kube(validation = Rule::new("self in ['topology.kubernetes.io/zone', 'topology.kubernetes.io/region']").message("spec.rack.topologyKey: use topology.kubernetes.io/zone or topology.kubernetes.io/region, the node labels Kubernetes copies to pods (PodTopologyLabels)"))]
    pub topology_key: String,
}

/// The REST API.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct Rest {
    /// Serve the REST API over HTTPS with this certificate.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tls: Option<RestTls>,
}

/// HTTPS for the REST API.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct RestTls {
    /// The server certificate and key, PEM. Its SANs must cover the workers' pod DNS names
    /// (`*.<name>-connect.<namespace>.svc`) and the API Service (`<name>-connect-api.<namespace>.svc`):
    /// workers forward to each other by pod name, and the operator calls them by it.
    pub certificate_and_key: CertificateAndKey,
    /// CA certificates (PEM) that sign it, trusted by the workers and the operator (e.g. the
    /// `ca.crt` of a cert-manager Secret); absent, the system's public CAs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 32))]
    pub trusted_certificates: Option<Vec<CertificateSource>>,
}

/// Labels and annotations added to a built object.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct TemplateMetadata {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(extend("maxProperties" = 64))]
    pub labels: Option<BTreeMap<String, String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(extend("maxProperties" = 64))]
    pub annotations: Option<BTreeMap<String, String>>,
}

/// A built object's metadata override only.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct MetadataTemplate {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metadata: Option<TemplateMetadata>,
}

/// Overrides of the objects the operator builds.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct Template {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stateful_set: Option<MetadataTemplate>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pod: Option<PodTemplate>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub connect_container: Option<ContainerTemplate>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub api_service: Option<MetadataTemplate>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub headless_service: Option<MetadataTemplate>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pod_disruption_budget: Option<PdbTemplate>,
}

/// Pod overrides.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct PodTemplate {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metadata: Option<TemplateMetadata>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub affinity: Option<Affinity>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 64))]
    pub tolerations: Option<Vec<Toleration>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 16))]
    pub topology_spread_constraints: Option<Vec<TopologySpreadConstraint>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(extend("maxProperties" = 64))]
    pub node_selector: Option<BTreeMap<String, String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 253))]
    pub priority_class_name: Option<String>,
    /// Replaces the operator's restricted pod security context.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub security_context: Option<PodSecurityContext>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 16))]
    pub image_pull_secrets: Option<Vec<LocalObjectReference>>,
    /// Seconds a stopping worker gets to stop its tasks and leave the group before it is
    /// killed. Defaults to the operator's (which covers `task.shutdown.graceful.timeout.ms`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1, max = 3600))]
    pub termination_grace_period_seconds: Option<i64>,
    /// Extra volumes (core/v1 `Volume`), mounted through `connectContainer.volumeMounts`.
    /// Checked when the operator applies the StatefulSet (the full Volume schema would make this
    /// CRD too large for `kubectl apply`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "untyped_list")]
    pub volumes: Option<Vec<Volume>>,
}

/// Worker container overrides.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct ContainerTemplate {
    /// Extra environment variables (e.g. for the `env` config provider).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 64))]
    pub env: Option<Vec<EnvVar>>,
    /// Replaces the operator's restricted container security context.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub security_context: Option<SecurityContext>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 32))]
    pub volume_mounts: Option<Vec<VolumeMount>>,
}

/// PodDisruptionBudget overrides.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct PdbTemplate {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metadata: Option<TemplateMetadata>,
    /// Pods that may be down at once during voluntary disruptions (default 1).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_unavailable: Option<IntOrString>,
}

/// What the operator observed of the cluster.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct KafkaConnectStatus {
    /// `Ready`, `Reconciling` and `Stalled` (kstatus), each with its `observedGeneration`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub conditions: Option<Conditions>,
    /// The generation of the spec this status describes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    /// Worker pods that exist.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub replicas: Option<i32>,
    /// Worker pods that are ready (joined the group and read the config topic).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ready_replicas: Option<i32>,
    /// Label selector of the worker pods (for the scale subresource, HPA and KEDA).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub label_selector: Option<String>,
    /// The REST API's in-cluster URL.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    /// Connector plugins the workers offer.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub connector_plugins: Option<Vec<ConnectorPlugin>>,
}

/// A connector plugin, as `GET /connector-plugins` lists it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct ConnectorPlugin {
    pub class: String,
    #[serde(rename = "type")]
    pub type_: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
}

/// A list of up to 32 Kubernetes objects whose schema the apiserver checks on the built object.
fn untyped_list(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
    schemars::json_schema!({
        "type": "array",
        "maxItems": 32,
        "items": { "type": "object", "x-kubernetes-preserve-unknown-fields": true },
    })
}
