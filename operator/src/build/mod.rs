//! Pure builders: a validated, dereferenced KafkaConnect in, the Kubernetes objects the operator
//! applies out (DESIGN §5). No I/O here, so every object can be checked by unit tests and, in the
//! end-to-end tests, by a server-side dry run.

pub mod config_map;
pub mod network_policy;
pub mod pdb;
pub mod properties;
pub mod rbac;
pub mod secret;
pub mod service;
pub mod statefulset;

use std::collections::BTreeMap;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, OwnerReference};

use crate::crd::KafkaConnectSpec;

/// The image used when `spec.image` is not set: the worker of the operator's own release.
pub const DEFAULT_IMAGE: &str = concat!(
    "ghcr.io/tributary-dev/tributary-worker:",
    env!("CARGO_PKG_VERSION")
);

/// REST API port (Connect's), authenticated.
pub const REST_PORT: i32 = 8083;
/// Admin port: `/health`, `/ready`, `/metrics`, without authentication (probes, Prometheus).
pub const ADMIN_PORT: i32 = 8084;

/// Where things are in a worker pod.
pub mod paths {
    pub const CONFIG_DIR: &str = "/opt/tributary/config";
    pub const WORKER_PROPERTIES: &str = "/opt/tributary/config/worker.properties";
    pub const REST_AUTH_DIR: &str = "/opt/tributary/secrets/rest";
    /// CA certificates, one folder per Secret (Kafka's and the REST API's).
    pub const CA_DIR: &str = "/opt/tributary/secrets/ca";
    pub const REST_TLS_DIR: &str = "/opt/tributary/secrets/rest-tls";
    pub const KAFKA_CLIENT_DIR: &str = "/opt/tributary/secrets/kafka-client";
    pub const KAFKA_PASSWORD_DIR: &str = "/opt/tributary/secrets/kafka-password";
    pub const TMP_DIR: &str = "/tmp";
}

/// Annotations on the pod template whose change rolls the workers.
pub mod annotations {
    /// Hash of `worker.properties`.
    pub const CONFIG_HASH: &str = "tributary.dev/config-hash";
    /// Hash of the data of every Secret the workers mount (certificates, passwords).
    pub const SECRETS_HASH: &str = "tributary.dev/secrets-hash";
    /// Set on a KafkaConnect or Connector, the operator leaves it (and its children) alone.
    pub const PAUSE_RECONCILIATION: &str = "tributary.dev/pause-reconciliation";
}

/// Everything the builders need, read and checked beforehand.
#[derive(Debug, Clone)]
pub struct Cluster<'a> {
    pub name: &'a str,
    pub namespace: &'a str,
    pub spec: &'a KafkaConnectSpec,
    /// The KafkaConnect as controller owner of every child.
    pub owner: OwnerReference,
    /// The user's worker settings, validated, as text.
    pub worker_config: BTreeMap<String, String>,
    /// CA certificates trusted for the brokers: (Secret, key), globs already expanded against
    /// the Secrets.
    pub trusted: Vec<(String, String)>,
    /// CA certificates trusted for the REST API (`spec.rest.tls`), likewise.
    pub rest_trusted: Vec<(String, String)>,
    /// Secrets the cluster's Connectors read through `configFrom` (sorted, once each): mounted
    /// into every worker (read by the directory provider), so workers need no API access.
    pub connector_secrets: Vec<String>,
    /// Hash of the data of every referenced Secret (see [`annotations::SECRETS_HASH`]).
    pub secrets_hash: String,
}

impl Cluster<'_> {
    /// `<name>-connect`: the StatefulSet, headless Service, PDB, ServiceAccount and
    /// NetworkPolicy.
    pub fn workers_name(&self) -> String {
        format!("{}-connect", self.name)
    }
    pub fn api_service_name(&self) -> String {
        format!("{}-connect-api", self.name)
    }
    pub fn config_map_name(&self) -> String {
        format!("{}-connect-config", self.name)
    }
    pub fn rest_secret_name(&self) -> String {
        format!("{}-connect-rest", self.name)
    }

    /// The labels that select this cluster's worker pods.
    pub fn selector(&self) -> BTreeMap<String, String> {
        BTreeMap::from([
            ("app.kubernetes.io/name".into(), "tributary-connect".into()),
            ("app.kubernetes.io/instance".into(), self.name.to_string()),
            ("tributary.dev/cluster".into(), self.name.to_string()),
        ])
    }

    /// `status.labelSelector` (scale subresource).
    pub fn selector_string(&self) -> String {
        self.selector()
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join(",")
    }

    /// Labels of every child: the selector plus the recommended ones.
    pub fn labels(&self, component: &str) -> BTreeMap<String, String> {
        let mut l = self.selector();
        l.insert("app.kubernetes.io/component".into(), component.into());
        l.insert(
            "app.kubernetes.io/managed-by".into(),
            "tributary-operator".into(),
        );
        l.insert("app.kubernetes.io/part-of".into(), "tributary".into());
        l
    }

    /// Metadata of a child named `name`, owned by the KafkaConnect, with template overrides.
    pub fn meta(
        &self,
        name: String,
        component: &str,
        extra: Option<&crate::crd::kafka_connect::TemplateMetadata>,
    ) -> ObjectMeta {
        let mut labels = extra.and_then(|m| m.labels.clone()).unwrap_or_default();
        // The operator's labels win: selectors depend on them.
        labels.extend(self.labels(component));
        ObjectMeta {
            name: Some(name),
            namespace: Some(self.namespace.to_string()),
            labels: Some(labels),
            annotations: extra.and_then(|m| m.annotations.clone()),
            owner_references: Some(vec![self.owner.clone()]),
            ..ObjectMeta::default()
        }
    }

    /// Whether the REST API is served over HTTPS (`spec.rest.tls`).
    pub fn rest_tls(&self) -> Option<&crate::crd::kafka_connect::RestTls> {
        self.spec.rest.as_ref().and_then(|r| r.tls.as_ref())
    }

    /// `https` or `http`.
    pub fn rest_scheme(&self) -> &'static str {
        if self.rest_tls().is_some() {
            "https"
        } else {
            "http"
        }
    }

    /// The REST API of worker pod `pod`, by its DNS name through the headless Service (what
    /// the worker advertises).
    pub fn worker_url(&self, pod: &str) -> String {
        worker_url(self.rest_tls().is_some(), self.name, self.namespace, pod)
    }

    /// The in-cluster URL of the REST API.
    pub fn url(&self) -> String {
        format!(
            "{}://{}.{}.svc:{REST_PORT}",
            self.rest_scheme(),
            self.api_service_name(),
            self.namespace
        )
    }
}

/// The REST API of pod `pod` of KafkaConnect `cluster` in `ns`: `scheme://host:8083`, the host
/// being the pod's DNS name through the headless Service.
pub fn worker_url(tls: bool, cluster: &str, ns: &str, pod: &str) -> String {
    let scheme = if tls { "https" } else { "http" };
    format!("{scheme}://{pod}.{cluster}-connect.{ns}.svc:{REST_PORT}")
}

/// A short, stable hash of some bytes (hex SHA-256, first 16 characters).
pub fn hash(parts: &[&[u8]]) -> String {
    use sha2::Digest;
    let mut h = sha2::Sha256::new();
    for p in parts {
        h.update((p.len() as u64).to_be_bytes());
        h.update(p);
    }
    h.finalize()
        .iter()
        .take(8)
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Reads a KafkaConnect into builder input. `secret_keys` holds the keys of every Secret the
/// spec references (read by the caller); a missing Secret, a missing key or a glob matching
/// nothing is a problem naming the field.
pub fn cluster<'a>(
    kc: &'a crate::crd::KafkaConnect,
    secret_keys: &BTreeMap<String, Vec<String>>,
    secrets_hash: String,
) -> Result<Cluster<'a>, Vec<crate::validate::Problem>> {
    use crate::validate::{Problem, matching_keys};
    use kube::Resource;
    let mut problems = Vec::new();
    let worker_config = match crate::validate::kafka_connect(&kc.spec) {
        Ok(c) => c,
        Err(mut p) => {
            problems.append(&mut p);
            BTreeMap::new()
        }
    };
    let need = |problems: &mut Vec<Problem>,
                field: String,
                secret: &str,
                key: Option<&str>|
     -> Option<Vec<String>> {
        match secret_keys.get(secret) {
            None => {
                problems.push(Problem {
                    field,
                    message: format!("Secret {secret} does not exist in this namespace"),
                });
                None
            }
            Some(keys) => {
                if let Some(k) = key
                    && !keys.iter().any(|x| x == k)
                {
                    problems.push(Problem {
                        field,
                        message: format!("Secret {secret} has no key {k}"),
                    });
                }
                Some(keys.clone())
            }
        }
    };
    let expand = |problems: &mut Vec<Problem>,
                  at: &str,
                  sources: &[crate::crd::common::CertificateSource]|
     -> Vec<(String, String)> {
        let mut out = Vec::new();
        for (i, t) in sources.iter().enumerate() {
            let field = format!("{at}[{i}]");
            match (&t.certificate, &t.pattern) {
                (Some(c), _) => {
                    need(problems, field, &t.secret_name, Some(c));
                    out.push((t.secret_name.clone(), c.clone()));
                }
                (None, Some(p)) => {
                    if let Some(keys) = need(problems, field.clone(), &t.secret_name, None) {
                        let found = matching_keys(p, keys.iter());
                        if found.is_empty() {
                            problems.push(Problem {
                                field: format!("{field}.pattern"),
                                message: format!("no key of Secret {} matches {p}", t.secret_name),
                            });
                        }
                        out.extend(found.into_iter().map(|k| (t.secret_name.clone(), k)));
                    }
                }
                (None, None) => {}
            }
        }
        out
    };
    let trusted = match &kc.spec.tls {
        Some(t) => expand(
            &mut problems,
            "spec.tls.trustedCertificates",
            &t.trusted_certificates,
        ),
        None => Vec::new(),
    };
    let rest_tls = kc.spec.rest.as_ref().and_then(|r| r.tls.as_ref());
    let rest_trusted = match rest_tls.and_then(|t| t.trusted_certificates.as_deref()) {
        Some(sources) => expand(&mut problems, "spec.rest.tls.trustedCertificates", sources),
        None => Vec::new(),
    };
    if let Some(ck) = rest_tls.map(|t| &t.certificate_and_key) {
        for (key, what) in [(&ck.certificate, "certificate"), (&ck.key, "key")] {
            need(
                &mut problems,
                format!("spec.rest.tls.certificateAndKey.{what}"),
                &ck.secret_name,
                Some(key),
            );
        }
    }
    if let Some(a) = &kc.spec.authentication {
        if let Some(ck) = &a.certificate_and_key {
            for (key, what) in [(&ck.certificate, "certificate"), (&ck.key, "key")] {
                need(
                    &mut problems,
                    format!("spec.authentication.certificateAndKey.{what}"),
                    &ck.secret_name,
                    Some(key),
                );
            }
        }
        if let Some(pw) = &a.password_secret {
            need(
                &mut problems,
                "spec.authentication.passwordSecret".into(),
                &pw.secret_name,
                Some(&pw.password),
            );
        }
    }
    let owner = kc.controller_owner_ref(&());
    let (Some(name), Some(namespace), Some(owner)) = (
        kc.meta().name.as_deref(),
        kc.meta().namespace.as_deref(),
        owner,
    ) else {
        problems.push(Problem {
            field: "metadata".into(),
            message: "the resource has no name, namespace or uid (not read from the apiserver)"
                .into(),
        });
        return Err(problems);
    };
    if !problems.is_empty() {
        return Err(problems);
    }
    Ok(Cluster {
        name,
        namespace,
        spec: &kc.spec,
        owner,
        worker_config,
        trusted,
        rest_trusted,
        connector_secrets: Vec::new(),
        secrets_hash,
    })
}

/// The Secrets a KafkaConnect's workers mount (the caller reads them for [`cluster`] and the
/// secrets hash).
pub fn referenced_secrets(spec: &KafkaConnectSpec) -> Vec<String> {
    let mut out: Vec<String> = spec
        .tls
        .iter()
        .flat_map(|t| t.trusted_certificates.iter().map(|c| c.secret_name.clone()))
        .collect();
    if let Some(a) = &spec.authentication {
        out.extend(a.certificate_and_key.iter().map(|c| c.secret_name.clone()));
        out.extend(a.password_secret.iter().map(|p| p.secret_name.clone()));
    }
    if let Some(t) = spec.rest.as_ref().and_then(|r| r.tls.as_ref()) {
        out.push(t.certificate_and_key.secret_name.clone());
        out.extend(
            t.trusted_certificates
                .iter()
                .flatten()
                .map(|c| c.secret_name.clone()),
        );
    }
    out.sort();
    out.dedup();
    out
}

/// Every child but the REST Secret (whose password the controller keeps), in apply order.
#[derive(Debug, Clone)]
pub struct Children {
    pub service_account: k8s_openapi::api::core::v1::ServiceAccount,
    pub config_map: k8s_openapi::api::core::v1::ConfigMap,
    pub headless_service: k8s_openapi::api::core::v1::Service,
    pub api_service: k8s_openapi::api::core::v1::Service,
    pub pdb: k8s_openapi::api::policy::v1::PodDisruptionBudget,
    pub network_policy: k8s_openapi::api::networking::v1::NetworkPolicy,
    pub stateful_set: k8s_openapi::api::apps::v1::StatefulSet,
}

impl Children {
    /// `(kind, name)` of every child the cluster should have: the REST Secret, and the
    /// NetworkPolicy unless the operator runs without them.
    pub fn desired(
        &self,
        c: &Cluster<'_>,
        network_policies: bool,
    ) -> std::collections::BTreeSet<(&'static str, String)> {
        let name = |m: &ObjectMeta| m.name.clone().unwrap_or_default();
        let mut out = std::collections::BTreeSet::from([
            ("ServiceAccount", name(&self.service_account.metadata)),
            ("Secret", c.rest_secret_name()),
            ("ConfigMap", name(&self.config_map.metadata)),
            ("Service", name(&self.headless_service.metadata)),
            ("Service", name(&self.api_service.metadata)),
            ("PodDisruptionBudget", name(&self.pdb.metadata)),
            ("StatefulSet", name(&self.stateful_set.metadata)),
        ]);
        if network_policies {
            out.insert(("NetworkPolicy", name(&self.network_policy.metadata)));
        }
        out
    }
}

/// Which of `existing` (objects of `kind` carrying the cluster's labels) are orphans: owned by
/// the cluster (`owner_uid`, as controller) yet no longer desired — left by an older spec, an
/// older operator version, or a feature turned off. Objects that merely carry the labels (a
/// user's, or another owner's) are never touched.
pub fn orphans(
    kind: &str,
    existing: &[ObjectMeta],
    owner_uid: &str,
    desired: &std::collections::BTreeSet<(&'static str, String)>,
) -> Vec<String> {
    existing
        .iter()
        .filter(|m| {
            m.owner_references
                .iter()
                .flatten()
                .any(|o| o.uid == owner_uid && o.controller == Some(true))
        })
        .filter(|m| m.deletion_timestamp.is_none())
        .filter_map(|m| m.name.clone())
        .filter(|n| !desired.iter().any(|(k, d)| *k == kind && d == n))
        .collect()
}

pub fn children(c: &Cluster<'_>) -> Result<Children, crate::Error> {
    let (config_map, text) = config_map::config_map(c);
    let config_hash = hash(&[text.as_bytes()]);
    Ok(Children {
        service_account: rbac::service_account(c),
        config_map,
        headless_service: service::headless(c)?,
        api_service: service::api(c)?,
        pdb: pdb::pdb(c),
        network_policy: network_policy::network_policy(c)?,
        stateful_set: statefulset::stateful_set(c, &config_hash)?,
    })
}
