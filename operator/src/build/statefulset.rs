//! `<c>-connect`: the worker StatefulSet. `OnDelete` updates (the operator's roller replaces pods
//! one at a time, waiting for the group), stable pod names (each worker advertises its pod DNS
//! name, so a restarted pod gets its own work back), restricted security, probes on the admin
//! port, and hashes of the config and Secrets on the template so a change rolls the workers.

use std::collections::BTreeMap;

use k8s_openapi::api::apps::v1::StatefulSet;
use k8s_openapi::api::core::v1::{EnvVar, PodSpec, Volume, VolumeMount};
use serde_json::json;

use super::config_map::{ADVERTISED_HOST_ENV, RACK_ENV, ca_dir};
use super::{ADMIN_PORT, Cluster, DEFAULT_IMAGE, REST_PORT, annotations, paths};
use crate::Error;

/// Seconds a stopping worker gets by default: Java's `task.shutdown.graceful.timeout.ms` (5 s)
/// for the tasks, the offsets flush, and leaving the group, with room to spare.
pub const DEFAULT_GRACE_SECONDS: i64 = 60;

fn typed<T: serde::de::DeserializeOwned>(what: &str, v: serde_json::Value) -> Result<T, Error> {
    serde_json::from_value(v).map_err(|e| Error::Build(format!("{what}: {e}")))
}

/// Volumes and where the worker container mounts them.
fn volumes(c: &Cluster<'_>) -> Result<(Vec<Volume>, Vec<VolumeMount>), Error> {
    let mut vols = vec![
        json!({"name": "config", "configMap": {"name": c.config_map_name()}}),
        json!({"name": "rest-auth", "secret": {"secretName": c.rest_secret_name()}}),
        json!({"name": "tmp", "emptyDir": {"sizeLimit": "100Mi"}}),
    ];
    let mut mounts = vec![
        json!({"name": "config", "mountPath": paths::CONFIG_DIR, "readOnly": true}),
        json!({"name": "rest-auth", "mountPath": paths::REST_AUTH_DIR, "readOnly": true}),
        json!({"name": "tmp", "mountPath": paths::TMP_DIR}),
    ];
    let mut ca_secrets: Vec<&str> = c
        .trusted
        .iter()
        .chain(&c.rest_trusted)
        .map(|(s, _)| s.as_str())
        .collect();
    ca_secrets.sort();
    ca_secrets.dedup();
    for (i, secret) in ca_secrets.iter().enumerate() {
        let name = format!("ca-{i}");
        vols.push(json!({"name": name, "secret": {"secretName": secret}}));
        mounts.push(json!({"name": name, "mountPath": ca_dir(secret), "readOnly": true}));
    }
    for (i, secret) in c.connector_secrets.iter().enumerate() {
        // Optional: a Connector naming a missing Secret must not keep every worker from
        // starting (the Connector controller reports the missing Secret).
        let name = format!("connector-secret-{i}");
        vols.push(json!({"name": name, "secret": {"secretName": secret, "optional": true}}));
        mounts.push(json!({"name": name, "mountPath": crate::connector_plan::connector_secret_dir(secret), "readOnly": true}));
    }
    if let Some(t) = c.rest_tls() {
        let secret = &t.certificate_and_key.secret_name;
        vols.push(json!({"name": "rest-tls", "secret": {"secretName": secret}}));
        mounts
            .push(json!({"name": "rest-tls", "mountPath": paths::REST_TLS_DIR, "readOnly": true}));
    }
    if let Some(a) = &c.spec.authentication {
        if let Some(ck) = &a.certificate_and_key {
            vols.push(json!({"name": "kafka-client", "secret": {"secretName": ck.secret_name}}));
            mounts.push(json!({"name": "kafka-client", "mountPath": paths::KAFKA_CLIENT_DIR, "readOnly": true}));
        }
        if let Some(pw) = &a.password_secret {
            vols.push(json!({"name": "kafka-password", "secret": {"secretName": pw.secret_name}}));
            mounts.push(json!({"name": "kafka-password", "mountPath": paths::KAFKA_PASSWORD_DIR, "readOnly": true}));
        }
    }
    let mut vols: Vec<Volume> = typed("volumes", json!(vols))?;
    let mut mounts: Vec<VolumeMount> = typed("volume mounts", json!(mounts))?;
    let template = c.spec.template.as_ref();
    if let Some(extra) = template
        .and_then(|t| t.pod.as_ref())
        .and_then(|p| p.volumes.clone())
    {
        vols.extend(extra);
    }
    if let Some(extra) = template
        .and_then(|t| t.connect_container.as_ref())
        .and_then(|c| c.volume_mounts.clone())
    {
        mounts.extend(extra);
    }
    Ok((vols, mounts))
}

fn env(c: &Cluster<'_>) -> Result<Vec<EnvVar>, Error> {
    let mut env = vec![
        json!({"name": "POD_NAME", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}}),
        json!({"name": "POD_NAMESPACE", "valueFrom": {"fieldRef": {"fieldPath": "metadata.namespace"}}}),
        // The pod's stable DNS name through the headless Service: what the worker advertises.
        json!({"name": ADVERTISED_HOST_ENV, "value": format!("$(POD_NAME).{}.$(POD_NAMESPACE).svc", c.workers_name())}),
    ];
    if let Some(rack) = &c.spec.rack {
        // The node's topology labels reach the pod (PodTopologyLabels); the downward API
        // hands the chosen one to the worker.
        env.push(json!({"name": RACK_ENV, "valueFrom": {"fieldRef": {"fieldPath": format!("metadata.labels['{}']", rack.topology_key)}}}));
    }
    let mut env: Vec<EnvVar> = typed("env", json!(env))?;
    if let Some(extra) = c
        .spec
        .template
        .as_ref()
        .and_then(|t| t.connect_container.as_ref())
        .and_then(|c| c.env.clone())
    {
        env.extend(extra);
    }
    Ok(env)
}

/// The StatefulSet for `config_hash` (of `worker.properties`).
pub fn stateful_set(c: &Cluster<'_>, config_hash: &str) -> Result<StatefulSet, Error> {
    let template = c.spec.template.as_ref();
    let pod_t = template.and_then(|t| t.pod.as_ref());
    let container_t = template.and_then(|t| t.connect_container.as_ref());
    let (volumes, mounts) = volumes(c)?;

    let mut pod_labels = pod_t
        .and_then(|p| p.metadata.as_ref())
        .and_then(|m| m.labels.clone())
        .unwrap_or_default();
    pod_labels.extend(c.labels("connect-worker"));
    let mut pod_annotations = pod_t
        .and_then(|p| p.metadata.as_ref())
        .and_then(|m| m.annotations.clone())
        .unwrap_or_default();
    pod_annotations.insert(annotations::CONFIG_HASH.into(), config_hash.into());
    pod_annotations.insert(annotations::SECRETS_HASH.into(), c.secrets_hash.clone());
    if c.spec
        .metrics
        .as_ref()
        .and_then(|m| m.scrape_annotations)
        .unwrap_or(false)
    {
        pod_annotations.insert("prometheus.io/scrape".into(), "true".into());
        pod_annotations.insert("prometheus.io/port".into(), ADMIN_PORT.to_string());
        pod_annotations.insert("prometheus.io/path".into(), "/metrics".into());
    }

    let probe = |path: &str, period: i32, failures: i32| json!({"httpGet": {"path": path, "port": "admin"}, "periodSeconds": period, "timeoutSeconds": 5, "failureThreshold": failures});
    let container = json!({
        "name": "connect",
        "image": c.spec.image.clone().unwrap_or_else(|| DEFAULT_IMAGE.to_string()),
        "args": ["distributed", paths::WORKER_PROPERTIES],
        "ports": [
            {"name": "rest", "containerPort": REST_PORT, "protocol": "TCP"},
            {"name": "admin", "containerPort": ADMIN_PORT, "protocol": "TCP"},
        ],
        // Up to 5 minutes to join and read the config topic; then unhealthy (a stalled herder)
        // means a restart, and not ready means out of the API Service.
        "startupProbe": probe("/health", 5, 60),
        "livenessProbe": probe("/health", 10, 3),
        "readinessProbe": probe("/ready", 5, 2),
        // Stop the tasks, commit their offsets and leave the group before SIGTERM, so the
        // group moves the work at once rather than after the session timeout, inside the
        // grace period.
        "lifecycle": {"preStop": {"exec": {"command": ["tributary-worker", "leave"]}}},
        "securityContext": {
            "allowPrivilegeEscalation": false,
            "readOnlyRootFilesystem": true,
            "runAsNonRoot": true,
            "capabilities": {"drop": ["ALL"]},
        },
    });
    let mut container: k8s_openapi::api::core::v1::Container = typed("container", container)?;
    container.env = Some(env(c)?);
    container.volume_mounts = Some(mounts);
    container.resources = c.spec.resources.clone();
    if let Some(sc) = container_t.and_then(|t| t.security_context.clone()) {
        container.security_context = Some(sc);
    }

    let mut pod: PodSpec = typed(
        "pod",
        json!({
            "serviceAccountName": c.workers_name(),
            // Workers need no Kubernetes API access: secrets arrive as files.
            "automountServiceAccountToken": false,
            "securityContext": {
                "runAsNonRoot": true,
                "runAsUser": 65532,
                "runAsGroup": 65532,
                "fsGroup": 65532,
                "seccompProfile": {"type": "RuntimeDefault"},
            },
            "terminationGracePeriodSeconds": DEFAULT_GRACE_SECONDS,
            "containers": [],
        }),
    )?;
    pod.containers = vec![container];
    pod.volumes = Some(volumes);
    if let Some(p) = pod_t {
        if let Some(v) = &p.affinity {
            pod.affinity = Some(v.clone());
        }
        if let Some(v) = &p.tolerations {
            pod.tolerations = Some(v.clone());
        }
        if let Some(v) = &p.topology_spread_constraints {
            pod.topology_spread_constraints = Some(v.clone());
        }
        if let Some(v) = &p.node_selector {
            pod.node_selector = Some(v.clone());
        }
        if let Some(v) = &p.priority_class_name {
            pod.priority_class_name = Some(v.clone());
        }
        if let Some(v) = &p.security_context {
            pod.security_context = Some(v.clone());
        }
        if let Some(v) = &p.image_pull_secrets {
            pod.image_pull_secrets = Some(v.clone());
        }
        if let Some(v) = p.termination_grace_period_seconds {
            pod.termination_grace_period_seconds = Some(v);
        }
    }

    let mut sts: StatefulSet = typed(
        "statefulset",
        json!({
            "apiVersion": "apps/v1",
            "kind": "StatefulSet",
            "spec": {
                "replicas": c.spec.replicas,
                "serviceName": c.workers_name(),
                "selector": {"matchLabels": c.selector()},
                // Workers are peers: start and stop them together; the roller orders updates.
                "podManagementPolicy": "Parallel",
                "updateStrategy": {"type": "OnDelete"},
                "persistentVolumeClaimRetentionPolicy": {"whenDeleted": "Delete", "whenScaled": "Delete"},
                "template": {
                    "metadata": {"labels": pod_labels, "annotations": pod_annotations},
                    "spec": {"containers": []},
                },
            },
        }),
    )?;
    sts.metadata = c.meta(
        c.workers_name(),
        "connect-worker",
        template
            .and_then(|t| t.stateful_set.as_ref())
            .and_then(|s| s.metadata.as_ref()),
    );
    sts.spec.template.spec = Some(pod);
    Ok(sts)
}

/// The labels of the pod template (for tests and the roller).
pub fn pod_annotations(sts: &StatefulSet) -> BTreeMap<String, String> {
    sts.spec
        .template
        .metadata
        .as_ref()
        .and_then(|m| m.annotations.clone())
        .unwrap_or_default()
}
