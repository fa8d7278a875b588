//! The pod runner: the kubelet stand-in (kubelet itself cannot run here). Each second it binds
//! unscheduled Pods to the `devstack` Node, runs each bound Pod's container as a process in the
//! Pod's own network namespace ([`super::pod_net`]) with its ConfigMap, Secret, emptyDir and
//! downward-API volumes bind-mounted where the Pod asks, resolves its environment, runs its
//! startup, liveness and readiness probes, restarts what exits or fails liveness, writes Pod
//! status, and on deletion runs the preStop hook, sends SIGTERM, waits the grace period, kills,
//! and removes the Pod. Images map to local binaries (`tributary-worker`).
//!
//! Differences from a kubelet, on purpose: processes run as the devstack's user (security
//! contexts are not enforced), volumes are written once at start (a rotated Secret reaches a Pod
//! when it restarts, which is how the operator rolls anyway), one container per Pod.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use k8s_openapi::api::core::v1::{ConfigMap, Container, Node, Pod, Probe, Secret};
use kube::api::{DeleteParams, ListParams, Patch, PatchParams, PostParams, Preconditions};
use kube::{Api, Client, ResourceExt};
use nix::sys::signal::Signal;
use serde_json::json;

use super::pod_net::{self, PodNet};
use super::process::{Managed, spawn};

pub const NODE: &str = "devstack";

/// One probe's schedule and state.
#[derive(Debug)]
struct ProbeState {
    probe: Probe,
    next: Instant,
    failures: i32,
    succeeded: bool,
}

impl ProbeState {
    fn new(probe: Probe, started: Instant) -> Self {
        let delay = probe.initial_delay_seconds.unwrap_or(0).max(0) as u64;
        Self {
            probe,
            next: started + Duration::from_secs(delay),
            failures: 0,
            succeeded: false,
        }
    }
}

/// A running Pod.
#[derive(Debug)]
struct Running {
    uid: String,
    namespace: String,
    name: String,
    net: PodNet,
    container: Container,
    binary: PathBuf,
    volumes_dir: PathBuf,
    env: BTreeMap<String, String>,
    process: Option<Managed>,
    started_at: String,
    started: Instant,
    restarts: i32,
    startup: Option<ProbeState>,
    liveness: Option<ProbeState>,
    readiness: Option<ProbeState>,
    ready: bool,
    /// Set once the Pod is being deleted: when to kill.
    kill_at: Option<Instant>,
    /// The preStop hook, running; SIGTERM follows once it is done (as the kubelet does).
    pre_stop: Option<tokio::task::JoinHandle<()>>,
    stop_sent: bool,
    last_status: serde_json::Value,
    /// DNS names of this Pod (`<hostname>.<subdomain>.<ns>.svc[.cluster.local]`).
    names: Vec<String>,
}

impl Running {
    /// A (re)start of the container: not ready, probes from their initial delays.
    fn start_clock(&mut self, now: Instant) {
        let c = &self.container;
        let state = |p: &Option<Probe>| p.clone().map(|p| ProbeState::new(p, now));
        self.startup = state(&c.startup_probe);
        self.liveness = state(&c.liveness_probe);
        self.readiness = state(&c.readiness_probe);
        self.ready = false;
        self.started = now;
        self.started_at = now_rfc3339();
    }
}

pub struct PodRunner {
    client: Client,
    dir: PathBuf,
    images: Vec<(String, PathBuf)>,
    pods: BTreeMap<String, Running>,
    next_ip: u32,
    http: reqwest::Client,
    hosts: String,
    /// Extra namespaces (not Pods) that resolve pod names: the operator under test.
    pub extra_nets: Vec<PodNet>,
}

fn now_rfc3339() -> String {
    k8s_openapi::jiff::Timestamp::now()
        .strftime("%Y-%m-%dT%H:%M:%SZ")
        .to_string()
}

impl PodRunner {
    /// Creates the bridge, the `devstack` Node and the operator's namespace.
    pub async fn start(
        client: Client,
        dir: &Path,
        images: Vec<(String, PathBuf)>,
        ip_offset: u32,
        operator_netns: &str,
    ) -> Result<Self> {
        pod_net::ensure_bridge()?;
        let nodes: Api<Node> = Api::all(client.clone());
        let node: Node = serde_json::from_value(json!({
            "apiVersion": "v1",
            "kind": "Node",
            "metadata": {"name": NODE, "labels": {
                "kubernetes.io/hostname": NODE,
                "topology.kubernetes.io/zone": "devstack-a",
            }},
        }))?;
        nodes
            .patch(
                NODE,
                &PatchParams::apply("devstack-pod-runner").force(),
                &Patch::Apply(&node),
            )
            .await
            .context("creating the devstack Node")?;
        let status = json!({"status": {
            "conditions": [{"type": "Ready", "status": "True", "reason": "PodRunnerReady", "message": "the devstack pod runner runs pods", "lastHeartbeatTime": now_rfc3339(), "lastTransitionTime": now_rfc3339()}],
            "addresses": [{"type": "InternalIP", "address": pod_net::HOST_IP}],
            "capacity": {"cpu": "64", "memory": "256Gi", "pods": "250"},
            "allocatable": {"cpu": "64", "memory": "256Gi", "pods": "250"},
        }});
        nodes
            .patch_status(NODE, &PatchParams::default(), &Patch::Merge(&status))
            .await
            .context("marking the devstack Node ready")?;
        // The veth's host side is named after the namespace (≤ 10 characters after its `vh`).
        let tag: String = operator_netns
            .trim_start_matches("trib-")
            .chars()
            .take(10)
            .collect();
        let operator = PodNet::create(operator_netns, &tag, &pod_net::pod_ip(ip_offset))?;
        operator.write_hosts("127.0.0.1 localhost\n")?;
        Ok(Self {
            client,
            dir: dir.to_path_buf(),
            images,
            pods: BTreeMap::new(),
            next_ip: ip_offset + 1,
            http: reqwest::Client::builder()
                .timeout(Duration::from_secs(2))
                .build()?,
            hosts: String::new(),
            extra_nets: vec![operator],
        })
    }

    fn binary_for(&self, image: &str) -> Option<PathBuf> {
        let repo = image
            .rsplit_once(':')
            .map_or(image, |(r, t)| if t.contains('/') { image } else { r });
        self.images
            .iter()
            .find(|(suffix, _)| repo.ends_with(suffix.as_str()))
            .map(|(_, b)| b.clone())
    }

    /// One step: bind, start, probe, restart, terminate, write statuses.
    pub async fn tick(&mut self) {
        if let Err(e) = self.step().await {
            tracing::warn!(error = %format!("{e:#}"), "pod runner step failed");
        }
    }

    async fn step(&mut self) -> Result<()> {
        let pods: Api<Pod> = Api::all(self.client.clone());
        let list = pods.list(&ListParams::default()).await?.items;
        let mut seen = std::collections::BTreeSet::new();
        for pod in &list {
            let uid = pod.uid().unwrap_or_default();
            seen.insert(uid.clone());
            let deleting = pod.metadata.deletion_timestamp.is_some();
            let node = pod.spec.as_ref().and_then(|s| s.node_name.clone());
            if node.is_none() && !deleting {
                self.bind(pod).await?;
                continue;
            }
            if node.as_deref() != Some(NODE) {
                continue;
            }
            if deleting {
                self.terminate(pod).await;
            } else if !self.pods.contains_key(&uid)
                && let Err(e) = self.run_pod(pod).await
            {
                tracing::warn!(pod = %pod.name_any(), error = %format!("{e:#}"), "cannot run pod");
                let status = json!({"status": {"phase": "Pending", "conditions": [
                    {"type": "PodScheduled", "status": "True"},
                    {"type": "Ready", "status": "False", "reason": "PodRunnerError", "message": format!("{e:#}")},
                ]}});
                let api: Api<Pod> =
                    Api::namespaced(self.client.clone(), &pod.namespace().unwrap_or_default());
                let _ = api
                    .patch_status(
                        &pod.name_any(),
                        &PatchParams::default(),
                        &Patch::Merge(&status),
                    )
                    .await;
            }
        }
        // Pods removed behind our back (force deletion): stop them.
        let gone: Vec<String> = self
            .pods
            .keys()
            .filter(|u| !seen.contains(*u))
            .cloned()
            .collect();
        for uid in gone {
            if let Some(mut r) = self.pods.remove(&uid) {
                if let Some(p) = r.process.as_mut() {
                    p.kill_now();
                }
                r.net.delete();
            }
        }
        self.supervise().await;
        self.write_hosts()?;
        self.write_statuses().await;
        Ok(())
    }

    async fn bind(&self, pod: &Pod) -> Result<()> {
        let ns = pod.namespace().unwrap_or_default();
        let api: Api<Pod> = Api::namespaced(self.client.clone(), &ns);
        let binding = json!({
            "apiVersion": "v1",
            "kind": "Binding",
            "metadata": {"name": pod.name_any()},
            "target": {"apiVersion": "v1", "kind": "Node", "name": NODE},
        });
        if let Err(e) = api
            .create_subresource::<serde_json::Value, serde_json::Value>(
                "binding",
                &pod.name_any(),
                &PostParams::default(),
                &binding,
            )
            .await
        {
            tracing::debug!(pod = %pod.name_any(), error = %e, "binding failed");
        }
        Ok(())
    }

    /// Writes the Pod's volumes, resolves its environment and starts its container.
    async fn run_pod(&mut self, pod: &Pod) -> Result<()> {
        let ns = pod.namespace().unwrap_or_default();
        let name = pod.name_any();
        let uid = pod.uid().unwrap_or_default();
        let spec = pod.spec.clone().context("a pod without spec")?;
        let container = spec
            .containers
            .first()
            .cloned()
            .context("a pod without containers")?;
        let image = container.image.clone().unwrap_or_default();
        let binary = self
            .binary_for(&image)
            .with_context(|| format!("image {image} is not one the pod runner can run"))?;
        let pod_dir = self
            .dir
            .join("pods")
            .join(format!("{ns}_{name}_{}", &uid[..8.min(uid.len())]));
        let volumes_dir = pod_dir.join("volumes");
        std::fs::create_dir_all(&volumes_dir)?;
        let ip = pod_net::pod_ip(self.next_ip);
        self.next_ip += 1;

        // Volumes.
        for v in spec.volumes.iter().flatten() {
            let dir = volumes_dir.join(&v.name);
            std::fs::create_dir_all(&dir)?;
            if let Some(cm) = &v.config_map {
                let api: Api<ConfigMap> = Api::namespaced(self.client.clone(), &ns);
                let cm = api
                    .get(&cm.name)
                    .await
                    .with_context(|| format!("ConfigMap {}", cm.name))?;
                for (k, val) in cm.data.unwrap_or_default() {
                    std::fs::write(dir.join(k), val)?;
                }
            } else if let Some(s) = &v.secret {
                let sname = s.secret_name.clone().unwrap_or_default();
                let api: Api<Secret> = Api::namespaced(self.client.clone(), &ns);
                let secret = api
                    .get(&sname)
                    .await
                    .with_context(|| format!("Secret {sname}"))?;
                for (k, val) in secret.data.unwrap_or_default() {
                    std::fs::write(dir.join(k), val.0)?;
                }
            } else if v.empty_dir.is_some() {
            } else if let Some(d) = &v.downward_api {
                for item in d.items.iter().flatten() {
                    if let Some(f) = &item.field_ref {
                        std::fs::write(dir.join(&item.path), field(pod, &f.field_path, &ip))?;
                    }
                }
            } else {
                bail!(
                    "volume {}: only configMap, secret, emptyDir and downwardAPI are supported",
                    v.name
                );
            }
        }

        // Environment, with $(VAR) references to earlier variables expanded.
        let mut env = BTreeMap::new();
        env.insert(
            "PATH".to_string(),
            "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin".to_string(),
        );
        for e in container.env.iter().flatten() {
            let value = if let Some(v) = &e.value {
                expand(v, &env)
            } else if let Some(from) = &e.value_from {
                if let Some(f) = &from.field_ref {
                    field(pod, &f.field_path, &ip)
                } else if let Some(s) = &from.secret_key_ref {
                    let api: Api<Secret> = Api::namespaced(self.client.clone(), &ns);
                    let secret = api.get(&s.name).await?;
                    secret
                        .data
                        .and_then(|d| {
                            d.get(&s.key)
                                .map(|b| String::from_utf8_lossy(&b.0).to_string())
                        })
                        .unwrap_or_default()
                } else if let Some(c) = &from.config_map_key_ref {
                    let api: Api<ConfigMap> = Api::namespaced(self.client.clone(), &ns);
                    api.get(&c.name)
                        .await?
                        .data
                        .and_then(|d| d.get(&c.key).cloned())
                        .unwrap_or_default()
                } else {
                    String::new()
                }
            } else {
                String::new()
            };
            env.insert(e.name.clone(), value);
        }

        let net = PodNet::create(
            &format!("tp-{}", &uid[..8.min(uid.len())]),
            &uid[..8.min(uid.len())],
            &ip,
        )?;
        let hostname = spec.hostname.clone().unwrap_or_else(|| name.clone());
        let mut names = vec![hostname.clone()];
        if let Some(sub) = &spec.subdomain {
            names.push(format!("{hostname}.{sub}.{ns}.svc"));
            names.push(format!("{hostname}.{sub}.{ns}.svc.cluster.local"));
        }
        let started = Instant::now();
        let mut r = Running {
            uid: uid.clone(),
            namespace: ns,
            name,
            net,
            startup: None,
            liveness: None,
            readiness: None,
            container,
            binary,
            volumes_dir,
            env,
            process: None,
            started_at: now_rfc3339(),
            started,
            restarts: 0,
            ready: false,
            kill_at: None,
            pre_stop: None,
            stop_sent: false,
            last_status: json!(null),
            names,
        };
        r.start_clock(started);
        self.write_hosts_for(&r.net)?;
        launch(&mut r, &self.dir)?;
        self.pods.insert(uid, r);
        Ok(())
    }

    /// Starts termination: preStop, SIGTERM, and SIGKILL after the grace period; once the
    /// process is gone, deletes the Pod for good.
    async fn terminate(&mut self, pod: &Pod) {
        let uid = pod.uid().unwrap_or_default();
        let ns = pod.namespace().unwrap_or_default();
        let api: Api<Pod> = Api::namespaced(self.client.clone(), &ns);
        let Some(r) = self.pods.get_mut(&uid) else {
            // Never ran here (or already gone): remove it.
            delete_now(&api, &pod.name_any(), uid).await;
            return;
        };
        if r.kill_at.is_none() {
            let grace = pod
                .metadata
                .deletion_grace_period_seconds
                .unwrap_or(30)
                .max(0) as u64;
            r.kill_at = Some(Instant::now() + Duration::from_secs(grace));
            if let Some(hook) = r
                .container
                .lifecycle
                .as_ref()
                .and_then(|l| l.pre_stop.as_ref())
            {
                let pod_name = r.name.clone();
                let budget = Duration::from_secs(grace.max(1));
                if let Some(exec) = &hook.exec {
                    // The image's binary is the worker binary here.
                    let mut argv: Vec<String> = exec.command.clone().unwrap_or_default();
                    if argv
                        .first()
                        .is_some_and(|a| a.rsplit('/').next() == Some("tributary-worker"))
                    {
                        argv[0] = r.binary.display().to_string();
                    }
                    let mut cmd = Command::new("ip");
                    cmd.args(["netns", "exec", &r.net.netns])
                        .args(argv)
                        .env_clear()
                        .envs(&r.env);
                    r.pre_stop = Some(tokio::spawn(async move {
                        let out = tokio::time::timeout(
                            budget,
                            tokio::task::spawn_blocking(move || cmd.output()),
                        )
                        .await;
                        match out {
                            Ok(Ok(Ok(o))) => tracing::info!(pod = %pod_name, status = %o.status,
                                stdout = %String::from_utf8_lossy(&o.stdout).trim(),
                                stderr = %String::from_utf8_lossy(&o.stderr).trim(), "preStop hook ran"),
                            other => {
                                tracing::warn!(pod = %pod_name, outcome = ?other.map(|r| r.map(|o| o.map(|o| o.status))), "preStop hook failed")
                            }
                        }
                    }));
                } else if let Some(h) = &hook.http_get {
                    let port = port_of(&r.container, &h.port);
                    let url = format!(
                        "http://{}:{port}{}",
                        r.net.ip,
                        h.path.clone().unwrap_or_default()
                    );
                    let http = self.http.clone();
                    r.pre_stop = Some(tokio::spawn(async move {
                        let out = tokio::time::timeout(budget, http.get(url).send()).await;
                        tracing::info!(pod = %pod_name, outcome = ?out.map(|r| r.map(|r| r.status())), "preStop hook ran");
                    }));
                }
            }
        }
        if !r.stop_sent && r.pre_stop.as_ref().is_none_or(|h| h.is_finished()) {
            r.stop_sent = true;
            if let Some(p) = r.process.as_mut() {
                p.request_stop();
            }
        }
        let exited = r.process.as_mut().is_none_or(|p| p.poll_exit().is_some());
        if !exited
            && r.kill_at.is_some_and(|k| Instant::now() >= k)
            && let Some(p) = r.process.as_mut()
        {
            p.kill_now();
        }
        let exited = r.process.as_mut().is_none_or(|p| p.poll_exit().is_some());
        if exited {
            let r = self.pods.remove(&uid);
            if let Some(r) = r {
                r.net.delete();
            }
            delete_now(&api, &pod.name_any(), uid).await;
        }
    }

    /// Probes and restarts.
    async fn supervise(&mut self) {
        let now = Instant::now();
        for r in self.pods.values_mut() {
            if r.kill_at.is_some() {
                continue;
            }
            let exited = r.process.as_mut().is_none_or(|p| p.poll_exit().is_some());
            if exited {
                // restartPolicy Always, with a short backoff.
                if now.duration_since(r.started) > Duration::from_secs(2) {
                    r.restarts += 1;
                    r.start_clock(now);
                    if let Err(e) = launch(r, &self.dir) {
                        tracing::warn!(pod = %r.name, error = %format!("{e:#}"), "restart failed");
                    }
                }
                continue;
            }
            let started_ok = match r.startup.as_mut() {
                None => true,
                Some(s) if s.succeeded => true,
                Some(s) => {
                    if now >= s.next {
                        let ok = probe(&self.http, &r.container, &s.probe, &r.net.ip).await;
                        s.next = now + period(&s.probe);
                        if ok {
                            s.succeeded = true;
                        } else {
                            s.failures += 1;
                            if s.failures >= s.probe.failure_threshold.unwrap_or(3) {
                                tracing::info!(pod = %r.name, "startup probe failed; restarting");
                                if let Some(p) = r.process.as_mut() {
                                    p.kill_now();
                                }
                            }
                        }
                    }
                    s.succeeded
                }
            };
            if !started_ok {
                continue;
            }
            if let Some(l) = r.liveness.as_mut()
                && now >= l.next
            {
                let ok = probe(&self.http, &r.container, &l.probe, &r.net.ip).await;
                l.next = now + period(&l.probe);
                l.failures = if ok { 0 } else { l.failures + 1 };
                if l.failures >= l.probe.failure_threshold.unwrap_or(3) {
                    tracing::info!(pod = %r.name, "liveness probe failed; restarting");
                    l.failures = 0;
                    if let Some(p) = r.process.as_mut() {
                        p.kill_now();
                    }
                }
            }
            match r.readiness.as_mut() {
                None => r.ready = true,
                Some(rd) if now >= rd.next => {
                    let ok = probe(&self.http, &r.container, &rd.probe, &r.net.ip).await;
                    rd.next = now + period(&rd.probe);
                    if ok {
                        rd.failures = 0;
                        r.ready = true;
                    } else {
                        rd.failures += 1;
                        if rd.failures >= rd.probe.failure_threshold.unwrap_or(3) {
                            r.ready = false;
                        }
                    }
                }
                Some(_) => {}
            }
        }
    }

    fn hosts_text(&self) -> String {
        let mut text = String::from("127.0.0.1 localhost\n");
        for r in self.pods.values() {
            text.push_str(&format!("{} {}\n", r.net.ip, r.names.join(" ")));
        }
        text
    }

    fn write_hosts_for(&self, net: &PodNet) -> Result<()> {
        net.write_hosts(&self.hosts_text())
    }

    /// Every pod (and the operator's namespace) resolves every pod's names.
    fn write_hosts(&mut self) -> Result<()> {
        let text = self.hosts_text();
        if text == self.hosts {
            return Ok(());
        }
        for r in self.pods.values() {
            r.net.write_hosts(&text)?;
        }
        for n in &self.extra_nets {
            n.write_hosts(&text)?;
        }
        self.hosts = text;
        Ok(())
    }

    async fn write_statuses(&mut self) {
        for r in self.pods.values_mut() {
            let running = r.process.as_mut().is_some_and(|p| p.poll_exit().is_none());
            let ready = running && r.ready && r.kill_at.is_none();
            let b = |x: bool| if x { "True" } else { "False" };
            let state = if running {
                json!({"running": {"startedAt": r.started_at}})
            } else {
                json!({"waiting": {"reason": "CrashLoopBackOff"}})
            };
            let status = json!({"status": {
                "phase": "Running",
                "hostIP": pod_net::HOST_IP,
                "podIP": r.net.ip,
                "podIPs": [{"ip": r.net.ip}],
                "startTime": r.started_at,
                "conditions": [
                    {"type": "PodScheduled", "status": "True"},
                    {"type": "Initialized", "status": "True"},
                    {"type": "ContainersReady", "status": b(ready)},
                    {"type": "Ready", "status": b(ready)},
                ],
                "containerStatuses": [{
                    "name": r.container.name,
                    "image": r.container.image,
                    "imageID": "",
                    "ready": ready,
                    "started": running,
                    "restartCount": r.restarts,
                    "state": state,
                }],
            }});
            if status == r.last_status {
                continue;
            }
            let api: Api<Pod> = Api::namespaced(self.client.clone(), &r.namespace);
            match api
                .patch_status(&r.name, &PatchParams::default(), &Patch::Merge(&status))
                .await
            {
                Ok(_) => r.last_status = status,
                Err(e) => tracing::debug!(pod = %r.name, error = %e, "status not written"),
            }
        }
    }

    /// Stops every pod at once (the devstack is shutting down).
    pub fn shutdown(&mut self) {
        for r in self.pods.values_mut() {
            if let Some(p) = r.process.as_mut() {
                p.request_stop();
            }
        }
        let deadline = Instant::now() + Duration::from_secs(10);
        for r in self.pods.values_mut() {
            if let Some(p) = r.process.as_mut() {
                p.wait_stopped(deadline);
            }
            r.net.delete();
        }
        for n in &self.extra_nets {
            n.delete();
        }
    }
}

impl std::fmt::Debug for PodRunner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PodRunner")
            .field("pods", &self.pods.len())
            .finish_non_exhaustive()
    }
}

/// Removes a Pod whose process is gone (the kubelet's final delete: grace 0, this uid only).
async fn delete_now(api: &Api<Pod>, name: &str, uid: String) {
    let dp = DeleteParams {
        grace_period_seconds: Some(0),
        preconditions: Some(Preconditions {
            uid: Some(uid),
            resource_version: None,
        }),
        ..DeleteParams::default()
    };
    let _ = api.delete(name, &dp).await;
}

fn period(p: &Probe) -> Duration {
    Duration::from_secs(p.period_seconds.unwrap_or(10).max(1) as u64)
}

fn port_of(c: &Container, port: &k8s_openapi::apimachinery::pkg::util::intstr::IntOrString) -> i32 {
    use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
    match port {
        IntOrString::Int(p) => *p,
        IntOrString::String(name) => c
            .ports
            .iter()
            .flatten()
            .find(|p| p.name.as_deref() == Some(name.as_str()))
            .map_or(0, |p| p.container_port),
    }
}

async fn probe(http: &reqwest::Client, c: &Container, p: &Probe, ip: &str) -> bool {
    let Some(h) = &p.http_get else {
        return true;
    };
    let url = format!(
        "http://{ip}:{}{}",
        port_of(c, &h.port),
        h.path.clone().unwrap_or_default()
    );
    let timeout = Duration::from_secs(p.timeout_seconds.unwrap_or(1).max(1) as u64);
    matches!(http.get(url).timeout(timeout).send().await, Ok(r) if r.status().is_success() || r.status().is_redirection())
}

/// A downward-API field.
fn field(pod: &Pod, path: &str, ip: &str) -> String {
    match path {
        "metadata.name" => pod.name_any(),
        "metadata.namespace" => pod.namespace().unwrap_or_default(),
        "metadata.uid" => pod.uid().unwrap_or_default(),
        "status.podIP" => ip.to_string(),
        "status.hostIP" => pod_net::HOST_IP.to_string(),
        "spec.nodeName" => NODE.to_string(),
        other => {
            let label = other
                .strip_prefix("metadata.labels['")
                .and_then(|s| s.strip_suffix("']"))
                .map(|k| pod.labels().get(k).cloned());
            let annotation = other
                .strip_prefix("metadata.annotations['")
                .and_then(|s| s.strip_suffix("']"))
                .map(|k| pod.annotations().get(k).cloned());
            label.or(annotation).flatten().unwrap_or_default()
        }
    }
}

/// `$(VAR)` expanded from earlier variables, as the kubelet does; unknown ones stay as written.
fn expand(value: &str, env: &BTreeMap<String, String>) -> String {
    let mut out = String::new();
    let mut rest = value;
    while let Some(i) = rest.find("$(") {
        out.push_str(&rest[..i]);
        let after = &rest[i + 2..];
        match after.find(')') {
            Some(j) if env.contains_key(&after[..j]) => {
                out.push_str(&env[&after[..j]]);
                rest = &after[j + 1..];
            }
            _ => {
                out.push_str("$(");
                rest = after;
            }
        }
    }
    out.push_str(rest);
    out
}

fn shell_quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', "'\\''"))
}

/// Starts the container process: in the pod's network namespace, its volumes bind-mounted.
fn launch(r: &mut Running, dir: &Path) -> Result<()> {
    let mut script = String::from("set -e\n");
    // A mount over a folder that holds the volumes (the pod's /tmp over a devstack under /tmp)
    // would hide the sources of the mounts after it: those go last.
    let volumes = r.volumes_dir.display().to_string();
    let mut mounts: Vec<_> = r.container.volume_mounts.iter().flatten().collect();
    mounts.sort_by_key(|m| volumes.starts_with(m.mount_path.trim_end_matches('/')));
    for m in mounts {
        let src = r.volumes_dir.join(&m.name);
        script.push_str(&format!(
            "mkdir -p {0}\nmount --bind {1} {0}\n",
            shell_quote(&m.mount_path),
            shell_quote(&src.display().to_string())
        ));
        if m.read_only == Some(true) {
            script.push_str(&format!(
                "mount -o remount,bind,ro {}\n",
                shell_quote(&m.mount_path)
            ));
        }
    }
    script.push_str("exec \"$@\"\n");
    let mut cmd = Command::new("ip");
    cmd.args(["netns", "exec", &r.net.netns, "sh", "-c", &script, "sh"]);
    cmd.arg(&r.binary);
    let args: Vec<String> = r
        .container
        .command
        .iter()
        .flatten()
        .skip(1)
        .chain(r.container.args.iter().flatten())
        .map(|a| expand(a, &r.env))
        .collect();
    cmd.args(args);
    cmd.env_clear().envs(&r.env);
    let logs = dir.join("pods");
    let name = format!("{}_{}_{}", r.namespace, r.name, r.restarts);
    r.process = Some(spawn(&name, &mut cmd, &logs, Signal::SIGTERM)?);
    tracing::info!(pod = %r.name, namespace = %r.namespace, ip = %r.net.ip, uid = %r.uid, "pod started");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dependent_variables_expand_as_the_kubelet_does() {
        let env = BTreeMap::from([
            ("POD_NAME".to_string(), "w-0".to_string()),
            ("NS".to_string(), "data".to_string()),
        ]);
        assert_eq!(expand("$(POD_NAME).svc.$(NS).x", &env), "w-0.svc.data.x");
        assert_eq!(expand("$(MISSING)-$(NS)", &env), "$(MISSING)-data");
    }
}
