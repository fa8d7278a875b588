//! The local stack of real components, started and owned by one process (the `devstack`
//! binary). See `docs/testing.md` for what runs, on which ports and from which install.

pub mod java_connect;
pub mod kafka;
pub mod kube;
pub mod pki;
pub mod pod_net;
pub mod pod_runner;
pub mod ports;
pub mod postgres;
pub mod process;
pub mod random;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Result, bail};

use crate::installed::Installed;
use java_connect::JavaConnect;
use kafka::KafkaCluster;
use kube::ControlPlane;
use postgres::Postgres;

/// Generous start-up limits: on 2 busy cores a JVM or the apiserver can take many seconds.
const KAFKA_READY: Duration = Duration::from_secs(180);
const KUBE_READY: Duration = Duration::from_secs(180);
const POSTGRES_READY: Duration = Duration::from_secs(90);
const JAVA_CONNECT_READY: Duration = Duration::from_secs(180);
const STOP_GRACE: Duration = Duration::from_secs(10);

/// What to start.
#[derive(Debug, Clone)]
pub struct Options {
    pub kafka_nodes: usize,
    /// Run the 3.x compatibility broker instead of the current one.
    pub kafka_compat: bool,
    pub kube: bool,
    /// Give Kafka listeners on the pod network even without `kube` (for tests that run workers
    /// in network namespaces of their own).
    pub pod_network: bool,
    pub postgres: bool,
    pub java_connect: bool,
    /// Where the pod runner's pod addresses start (`pod_ip(offset)` for the operator's
    /// namespace, then one per pod), and the operator namespace's name: a second stack with
    /// `kube` on the same machine (the chaos suite's) must use others than the shared one's.
    pub pod_ip_offset: u32,
    pub operator_netns: String,
}

/// The running components. Built up step by step so that a failure half-way still leaves
/// everything started so far in here, to be shut down.
#[derive(Debug)]
pub struct Stack {
    pub dir: PathBuf,
    pub log_dir: PathBuf,
    pub installed: Installed,
    pub kafka: Option<KafkaCluster>,
    pub kube: Option<ControlPlane>,
    pub postgres: Option<Postgres>,
    pub java_connect: Option<JavaConnect>,
    /// Runs the Pods of the control plane (with `kube`).
    pub pod_runner: Option<pod_runner::PodRunner>,
    kafka_version: String,
    /// The broker's jars, for restarting a node.
    kafka_libs: PathBuf,
}

impl Stack {
    pub fn new(dir: &Path) -> Self {
        let installed = Installed::locate();
        Self {
            dir: dir.to_path_buf(),
            log_dir: dir.join("logs"),
            kafka_version: installed.versions.kafka.clone(),
            installed,
            kafka: None,
            kube: None,
            postgres: None,
            java_connect: None,
            pod_runner: None,
            kafka_libs: PathBuf::new(),
        }
    }

    /// Checks every needed component is installed before starting any, so a missing one fails
    /// in a second with the install command instead of after the others started.
    fn preflight(&self, opts: &Options) -> Result<PathBuf> {
        let libs = if opts.kafka_compat {
            self.installed.kafka_compat_broker_libs()?
        } else {
            self.installed.kafka_broker_libs()?
        };
        if opts.kube {
            self.installed.kube_apiserver()?;
            self.installed.kube_controller_manager()?;
            self.installed.kubectl()?;
            self.installed.etcd()?;
        }
        if opts.postgres {
            self.installed.postgres_bin()?;
        }
        if opts.java_connect {
            self.installed.connect_libs()?;
        }
        for tool in ["java", "openssl"] {
            if std::process::Command::new(tool)
                .arg("-version")
                .output()
                .is_err()
            {
                bail!(
                    "`{tool}` is not on PATH; install it with: {}",
                    crate::installed::install_command("system")
                );
            }
        }
        Ok(libs)
    }

    /// Starts everything `opts` asks for and waits until each part answers. Must run on a
    /// thread that outlives the stack (children die with the thread that spawned them).
    pub async fn up(&mut self, opts: &Options) -> Result<()> {
        let libs = self.preflight(opts)?;
        self.kafka_libs = libs.clone();
        if opts.kafka_compat {
            self.kafka_version = self.installed.versions.kafka_compat.clone();
        }
        std::fs::create_dir_all(&self.log_dir)?;
        let pki = pki::Pki::create(&self.dir.join("pki"), &self.log_dir)?;

        let pod_network = opts.kube || opts.pod_network;
        if pod_network {
            // Before Kafka: the broker listens on the bridge for pods.
            pod_net::ensure_bridge()?;
        }
        if opts.kube {
            tracing::info!("starting etcd and kube-apiserver");
            self.kube = Some(ControlPlane::start(
                &self.installed,
                &self.dir.join("kube"),
                &self.log_dir,
                &pki,
            )?);
        }
        if opts.postgres {
            tracing::info!("starting PostgreSQL");
            self.postgres = Some(Postgres::start(
                &self.installed,
                &self.dir.join("postgres"),
                &self.log_dir,
            )?);
        }
        tracing::info!(nodes = opts.kafka_nodes, version = %self.kafka_version, "starting Kafka (KRaft)");
        let kafka_cert = pki.server_cert("kafka", &self.log_dir)?;
        self.kafka = Some(KafkaCluster::start(
            &self.installed,
            &libs,
            &self.dir.join("kafka"),
            &self.log_dir,
            kafka::Layout {
                nodes: opts.kafka_nodes,
                pod_network,
            },
            &kafka_cert,
            &pki.ca_cert,
        )?);

        let started = std::time::Instant::now();
        if let Some(kafka) = &mut self.kafka {
            kafka.wait_ready(KAFKA_READY).await?;
            tracing::info!(elapsed = ?started.elapsed(), bootstrap = %kafka.bootstrap(), "Kafka ready");
        }
        if let Some(pg) = &mut self.postgres {
            pg.wait_ready(POSTGRES_READY).await?;
            tracing::info!(elapsed = ?started.elapsed(), port = pg.port, "PostgreSQL ready");
        }
        if let Some(kube) = &mut self.kube {
            kube.wait_ready(&self.installed, KUBE_READY).await?;
            tracing::info!(elapsed = ?started.elapsed(), server = %kube.server, "kube-apiserver ready");
            let kubeconfig = ::kube::config::Kubeconfig::read_from(&kube.kubeconfig)?;
            let config = ::kube::Config::from_custom_kubeconfig(
                kubeconfig,
                &::kube::config::KubeConfigOptions::default(),
            )
            .await?;
            let client = ::kube::Client::try_from(config)?;
            let mut images = vec![(
                "tributary-worker".to_string(),
                crate::worker::worker_binary()?,
            )];
            // A worker whose REST API hangs, for the operator's isolation test.
            if let Ok(b) = crate::worker::sibling_binary(
                "rest-black-hole",
                "cargo build -p tributary-tests --bin rest-black-hole",
            ) {
                images.push(("tributary.dev/test/rest-black-hole".to_string(), b));
            }
            self.pod_runner = Some(
                pod_runner::PodRunner::start(
                    client,
                    &self.dir,
                    images,
                    opts.pod_ip_offset,
                    &opts.operator_netns,
                )
                .await?,
            );
            tracing::info!("pod runner ready");
        }
        if opts.java_connect {
            let bootstrap = self
                .kafka
                .as_ref()
                .map(KafkaCluster::bootstrap)
                .unwrap_or_default();
            tracing::info!("starting the Java Kafka Connect worker");
            let mut jc = JavaConnect::start(
                &self.installed,
                &bootstrap,
                "devstack-java-connect",
                &self.dir.join("java-connect"),
                opts.kafka_nodes.min(3),
            )?;
            let ready = jc.wait_ready(JAVA_CONNECT_READY).await;
            self.java_connect = Some(jc);
            ready?;
            tracing::info!(elapsed = ?started.elapsed(), "Java Kafka Connect ready");
        }
        Ok(())
    }

    /// Every endpoint and credential, for the env file.
    pub fn env(&self) -> Result<BTreeMap<String, String>> {
        let mut env = BTreeMap::new();
        let mut set = |k: &str, v: String| {
            env.insert(k.to_string(), v);
        };
        set("TRIBUTARY_DEVSTACK_PID", std::process::id().to_string());
        set("TRIBUTARY_DEVSTACK_DIR", self.dir.display().to_string());
        set(
            "TRIBUTARY_DEVSTACK_LOGS",
            self.log_dir.display().to_string(),
        );
        if let Some(r) = &self.pod_runner
            && let Some(op) = r.extra_nets.first()
        {
            set("TRIBUTARY_OPERATOR_NETNS", op.netns.clone());
        }
        if let Some(k) = &self.kafka {
            set("TRIBUTARY_KAFKA_VERSION", self.kafka_version.clone());
            set("TRIBUTARY_KAFKA_NODES", k.nodes.len().to_string());
            set("TRIBUTARY_KAFKA_CLUSTER_ID", k.cluster_id.clone());
            set("TRIBUTARY_KAFKA_BOOTSTRAP", k.bootstrap());
            set("TRIBUTARY_KAFKA_SASL_BOOTSTRAP", k.sasl_bootstrap());
            if let Some(b) = k.pod_bootstrap() {
                set("TRIBUTARY_KAFKA_POD_BOOTSTRAP", b);
            }
            if let Some(b) = k.pod_sasl_bootstrap() {
                set("TRIBUTARY_KAFKA_POD_SASL_BOOTSTRAP", b);
            }
            set(
                "TRIBUTARY_KAFKA_SASL_MECHANISM",
                kafka::SASL_MECHANISM.to_string(),
            );
            set(
                "TRIBUTARY_KAFKA_SASL_USERNAME",
                kafka::SASL_USER.to_string(),
            );
            set("TRIBUTARY_KAFKA_SASL_PASSWORD", k.sasl_password.clone());
            set("TRIBUTARY_KAFKA_CA_CERT", k.ca_cert.display().to_string());
            let pids = k
                .nodes
                .iter()
                .map(|n| n.process.pid().to_string())
                .collect::<Vec<_>>()
                .join(",");
            set("TRIBUTARY_KAFKA_NODE_PIDS", pids);
        }
        if let Some(kube) = &self.kube {
            set(
                "TRIBUTARY_KUBECONFIG",
                kube.kubeconfig.display().to_string(),
            );
            set("KUBECONFIG", kube.kubeconfig.display().to_string());
            set("TRIBUTARY_KUBE_SERVER", kube.server.clone());
            set(
                "TRIBUTARY_KUBECTL",
                self.installed.kubectl()?.display().to_string(),
            );
            if let Ok(helm) = self.installed.helm() {
                set("TRIBUTARY_HELM", helm.display().to_string());
            }
        }
        if let Some(pg) = &self.postgres {
            set("TRIBUTARY_PG_URL", pg.url());
            set("TRIBUTARY_PG_HOST", "127.0.0.1".to_string());
            set("TRIBUTARY_PG_PORT", pg.port.to_string());
            set("TRIBUTARY_PG_USER", postgres::USER.to_string());
            set("TRIBUTARY_PG_PASSWORD", pg.password.clone());
            set("TRIBUTARY_PG_DATABASE", postgres::DATABASE.to_string());
        }
        if let Some(jc) = &self.java_connect {
            set("TRIBUTARY_JAVA_CONNECT_URL", jc.url.clone());
        }
        Ok(env)
    }

    /// How to reach each component, for a person at a terminal. Secrets stay in the env file.
    pub fn summary(&self, env_file: &Path) -> String {
        let mut s = format!("devstack is up; state and logs in {}\n", self.dir.display());
        if let Some(k) = &self.kafka {
            s += &format!(
                "  Kafka {} ({} node{})  PLAINTEXT {}\n    SASL_SSL {}  (SCRAM-SHA-512 user {}; CA {})\n",
                self.kafka_version,
                k.nodes.len(),
                if k.nodes.len() == 1 { "" } else { "s" },
                k.bootstrap(),
                k.sasl_bootstrap(),
                kafka::SASL_USER,
                k.ca_cert.display()
            );
        }
        if let (Some(kube), Ok(kubectl)) = (&self.kube, self.installed.kubectl()) {
            s += &format!(
                "  Kubernetes {}  {}\n    KUBECONFIG={} {} get namespaces\n",
                self.installed.versions.k8s,
                kube.server,
                kube.kubeconfig.display(),
                kubectl.display()
            );
        }
        if let Some(pg) = &self.postgres {
            s += &format!(
                "  PostgreSQL  127.0.0.1:{}  psql \"$TRIBUTARY_PG_URL\"\n",
                pg.port
            );
        }
        if let Some(jc) = &self.java_connect {
            s += &format!("  Java Kafka Connect  curl {}/\n", jc.url);
        }
        s += &format!(
            "  env file (endpoints and credentials): {0}\n    load it with: set -a; . {0}; set +a\n",
            env_file.display()
        );
        s
    }

    fn children_mut(&mut self) -> Vec<&mut process::Managed> {
        let mut all: Vec<&mut process::Managed> = Vec::new();
        if let Some(jc) = &mut self.java_connect {
            all.push(&mut jc.process);
        }
        if let Some(kube) = &mut self.kube {
            if let Some(kcm) = &mut kube.controller_manager {
                all.push(kcm);
            }
            all.push(&mut kube.apiserver);
            all.push(&mut kube.etcd);
        }
        if let Some(k) = &mut self.kafka {
            all.extend(k.nodes.iter_mut().map(|n| &mut n.process));
        }
        if let Some(pg) = &mut self.postgres {
            all.push(&mut pg.process);
        }
        all
    }

    /// Children that exited without being asked to since the last call.
    pub fn newly_failed(&mut self) -> Vec<String> {
        let mut failed = Vec::new();
        for c in self.children_mut() {
            if c.failed_unexpectedly() {
                failed.push(format!("{} (log {})", c.name, c.log.display()));
                // Reported once: from now on it counts as stopped.
                c.kill_now();
            }
        }
        failed
    }

    /// Kills one component at once, as a crash would (`stop kafka-2` on the control channel).
    pub fn kill_component(&mut self, name: &str) -> Result<()> {
        match self.children_mut().into_iter().find(|c| c.name == name) {
            Some(c) => {
                c.kill_now();
                Ok(())
            }
            None => bail!("no component named {name}"),
        }
    }

    /// Starts a killed component again (`start kafka-2` on the control channel); only Kafka
    /// nodes can be restarted.
    pub fn start_component(&mut self, name: &str) -> Result<()> {
        if name == "kube-apiserver"
            && let Some(kube) = self.kube.as_mut()
        {
            return kube.restart_apiserver();
        }
        let Some(kafka) = self.kafka.as_mut() else {
            bail!("no component named {name}");
        };
        kafka.restart_node(name, &self.installed, &self.kafka_libs, &self.log_dir)
    }

    /// Stops everything with each child's own stop signal and a grace period. etcd goes last:
    /// the apiserver's graceful shutdown stalls while its storage is already gone.
    pub fn shutdown(&mut self) {
        if let Some(r) = &mut self.pod_runner {
            r.shutdown();
        }
        for last in [false, true] {
            let deadline = std::time::Instant::now() + STOP_GRACE;
            let mut children: Vec<_> = self
                .children_mut()
                .into_iter()
                .filter(|c| (c.name == "etcd") == last)
                .collect();
            for c in children.iter_mut() {
                c.request_stop();
            }
            for c in children.iter_mut() {
                c.wait_stopped(deadline);
            }
        }
    }
}
