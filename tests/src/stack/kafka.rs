//! Apache Kafka in KRaft mode from the Maven Central jars: 1 or 3 combined broker+controller
//! nodes on loopback, each with a PLAINTEXT listener and a SASL_SSL listener (SCRAM-SHA-512,
//! certificate from the stack's CA).

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use nix::sys::signal::Signal;
use rdkafka::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};

use super::pki::ServerCert;
use super::ports::free_ports;
use super::process::{Managed, run_to_completion, spawn, tail};
use super::random::{random_bytes, random_hex};
use crate::installed::Installed;

/// SCRAM user created at format time.
pub const SASL_USER: &str = "tributary";
pub const SASL_MECHANISM: &str = "SCRAM-SHA-512";

/// JVM settings for a small, quick-starting test broker (see docs/test-infra.md).
pub const TEST_JVM_OPTS: &[&str] = &[
    "-Xms128m",
    "-Xmx512m",
    "-XX:+UseSerialGC",
    "-XX:TieredStopAtLevel=1",
    "-XX:MaxMetaspaceSize=192m",
    "-XX:ReservedCodeCacheSize=64m",
    "-Xss512k",
    "-XX:+ExitOnOutOfMemoryError",
    "-Djava.awt.headless=true",
];

#[derive(Debug)]
pub struct KafkaNode {
    pub id: u32,
    pub plaintext_port: u16,
    pub sasl_port: u16,
    pub controller_port: u16,
    /// The listeners for pods of the pod runner, on the pod network: plain text and SASL_SSL.
    pub pod_port: Option<(u16, u16)>,
    pub process: Managed,
    /// Its storage and `server.properties`, kept for a restart.
    data: PathBuf,
}

/// How many nodes, and whether pods of the pod runner get a listener.
#[derive(Debug, Clone, Copy)]
pub struct Layout {
    pub nodes: usize,
    pub pod_network: bool,
}

#[derive(Debug)]
pub struct KafkaCluster {
    pub cluster_id: String,
    pub nodes: Vec<KafkaNode>,
    pub sasl_password: String,
    pub ca_cert: PathBuf,
}

/// A random KRaft cluster id: 16 random bytes in unpadded URL-safe base64, as StorageTool makes.
/// Like Kafka's `Uuid.randomUuid`, never one starting with `-`: the storage tool's argument
/// parser would take it for an option.
pub fn random_cluster_id() -> Result<String> {
    loop {
        let id = encode_cluster_id()?;
        if !id.starts_with('-') {
            return Ok(id);
        }
    }
}

fn encode_cluster_id() -> Result<String> {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let bytes = random_bytes(16)?;
    let mut bits: u32 = 0;
    let mut nbits = 0;
    let mut out = String::new();
    for b in bytes {
        bits = (bits << 8) | u32::from(b);
        nbits += 8;
        while nbits >= 6 {
            nbits -= 6;
            out.push(ALPHABET[((bits >> nbits) & 63) as usize] as char);
        }
    }
    if nbits > 0 {
        out.push(ALPHABET[((bits << (6 - nbits)) & 63) as usize] as char);
    }
    Ok(out)
}

fn java_command(installed: &Installed, libs: &Path, data: &Path) -> Command {
    let mut cmd = Command::new("java");
    cmd.args(TEST_JVM_OPTS)
        .arg(format!(
            "-Dlog4j2.configurationFile=file:{}",
            installed.log4j_config().display()
        ))
        .arg(format!("-Dkafka.logs.dir={}", data.join("logs").display()))
        .arg("-cp")
        .arg(format!("{}/*", libs.display()));
    cmd
}

fn server_properties(
    node: u32,
    ports: (u16, u16, u16),
    voters: &str,
    nodes: usize,
    data: &Path,
    server_cert: &ServerCert,
    pod_ports: Option<(u16, u16)>,
) -> String {
    let (plain, sasl, ctrl) = ports;
    // Pods of the pod runner reach the broker on the host's pod-network address, in plain text
    // and over SASL_SSL (the certificate names that address too).
    let host = super::pod_net::HOST_IP;
    let (pod_listener, pod_map, pod_sasl) = match pod_ports {
        Some((p, ps)) => (
            format!(",POD://{host}:{p},POD_SASL://{host}:{ps}"),
            ",POD:PLAINTEXT,POD_SASL:SASL_SSL",
            format!(
                "listener.name.pod_sasl.sasl.enabled.mechanisms={SASL_MECHANISM}
listener.name.pod_sasl.scram-sha-512.sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required;
listener.name.pod_sasl.ssl.keystore.type=PEM
listener.name.pod_sasl.ssl.keystore.location={}
listener.name.pod_sasl.ssl.client.auth=none
",
                server_cert.key_and_cert.display()
            ),
        ),
        None => (String::new(), "", String::new()),
    };
    let rf = nodes.min(3);
    let min_isr = if nodes >= 3 { 2 } else { 1 };
    format!(
        "process.roles=broker,controller
node.id={node}
controller.quorum.voters={voters}
listeners=PLAINTEXT://127.0.0.1:{plain},SASL_SSL://127.0.0.1:{sasl},CONTROLLER://127.0.0.1:{ctrl}{pod_listener}
advertised.listeners=PLAINTEXT://127.0.0.1:{plain},SASL_SSL://127.0.0.1:{sasl}{pod_listener}
controller.listener.names=CONTROLLER
inter.broker.listener.name=PLAINTEXT
listener.security.protocol.map=CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT,SASL_SSL:SASL_SSL{pod_map}
listener.name.sasl_ssl.sasl.enabled.mechanisms={SASL_MECHANISM}
listener.name.sasl_ssl.scram-sha-512.sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required;
listener.name.sasl_ssl.ssl.keystore.type=PEM
listener.name.sasl_ssl.ssl.keystore.location={keystore}
listener.name.sasl_ssl.ssl.client.auth=none
{pod_sasl}log.dirs={logdir}
num.partitions=1
default.replication.factor={rf}
min.insync.replicas={min_isr}
offsets.topic.replication.factor={rf}
offsets.topic.num.partitions=3
transaction.state.log.replication.factor={rf}
transaction.state.log.min.isr={min_isr}
transaction.state.log.num.partitions=3
share.coordinator.state.topic.replication.factor={rf}
share.coordinator.state.topic.min.isr={min_isr}
group.initial.rebalance.delay.ms=0
log.cleaner.dedupe.buffer.size=16777216
num.network.threads=2
num.io.threads=2
background.threads=2
auto.create.topics.enable=true
",
        keystore = server_cert.key_and_cert.display(),
        logdir = data.join("data").display(),
    )
}

impl KafkaCluster {
    /// Formats and starts `nodes` nodes; returns once every process is started (not yet ready).
    pub fn start(
        installed: &Installed,
        libs: &Path,
        dir: &Path,
        log_dir: &Path,
        layout: Layout,
        server_cert: &ServerCert,
        ca_cert: &Path,
    ) -> Result<Self> {
        let Layout { nodes, pod_network } = layout;
        if !matches!(nodes, 1 | 3) {
            bail!("a devstack Kafka cluster has 1 or 3 nodes, not {nodes}");
        }
        let cluster_id = random_cluster_id()?;
        let sasl_password = random_hex(12)?;
        let ports = free_ports(nodes * 3)?;
        let node_ports: Vec<(u16, u16, u16)> =
            ports.chunks(3).map(|c| (c[0], c[1], c[2])).collect();
        let pod_ports: Vec<Option<(u16, u16)>> = if pod_network {
            free_ports(nodes * 2)?
                .chunks(2)
                .map(|c| Some((c[0], c[1])))
                .collect()
        } else {
            vec![None; nodes]
        };
        let voters = node_ports
            .iter()
            .enumerate()
            .map(|(i, p)| format!("{}@127.0.0.1:{}", i + 1, p.2))
            .collect::<Vec<_>>()
            .join(",");

        // Format every node's storage in parallel: each is a JVM start.
        let mut formats = Vec::new();
        for (i, p) in node_ports.iter().enumerate() {
            let id = (i + 1) as u32;
            let data = dir.join(format!("kafka-{id}"));
            std::fs::create_dir_all(&data)?;
            let props = data.join("server.properties");
            std::fs::write(
                &props,
                server_properties(id, *p, &voters, nodes, &data, server_cert, pod_ports[i]),
            )?;
            let mut cmd = java_command(installed, libs, &data);
            cmd.args(["kafka.tools.StorageTool", "format", "-t", &cluster_id, "-c"])
                .arg(&props)
                .args(["--ignore-formatted", "--add-scram"])
                .arg(format!(
                    "{SASL_MECHANISM}=[name={SASL_USER},password={sasl_password}]"
                ));
            let log_dir = log_dir.to_path_buf();
            formats.push(std::thread::spawn(move || {
                run_to_completion(
                    &format!("kafka-{id}-format"),
                    &mut cmd,
                    &log_dir,
                    Duration::from_secs(120),
                )
            }));
        }
        for f in formats {
            f.join()
                .map_err(|_| anyhow::anyhow!("storage format thread panicked"))??;
        }

        let mut started = Vec::new();
        for (i, p) in node_ports.iter().enumerate() {
            let id = (i + 1) as u32;
            let data = dir.join(format!("kafka-{id}"));
            let mut cmd = java_command(installed, libs, &data);
            cmd.arg("kafka.Kafka").arg(data.join("server.properties"));
            let process = spawn(&format!("kafka-{id}"), &mut cmd, log_dir, Signal::SIGTERM)?;
            started.push(KafkaNode {
                id,
                plaintext_port: p.0,
                sasl_port: p.1,
                controller_port: p.2,
                pod_port: pod_ports[i],
                process,
                data,
            });
        }
        Ok(Self {
            cluster_id,
            nodes: started,
            sasl_password,
            ca_cert: ca_cert.to_path_buf(),
        })
    }

    /// Starts node `name` (`kafka-2`) again on its storage and ports after it was killed, as a
    /// restarted broker pod would be. A node still running is left alone.
    pub fn restart_node(
        &mut self,
        name: &str,
        installed: &Installed,
        libs: &Path,
        log_dir: &Path,
    ) -> Result<()> {
        let node = self
            .nodes
            .iter_mut()
            .find(|n| format!("kafka-{}", n.id) == name)
            .with_context(|| format!("no Kafka node named {name}"))?;
        if node.process.poll_exit().is_none() {
            return Ok(());
        }
        let mut cmd = java_command(installed, libs, &node.data);
        cmd.arg("kafka.Kafka")
            .arg(node.data.join("server.properties"));
        node.process = spawn(name, &mut cmd, log_dir, Signal::SIGTERM)?;
        Ok(())
    }

    pub fn bootstrap(&self) -> String {
        self.nodes
            .iter()
            .map(|n| format!("127.0.0.1:{}", n.plaintext_port))
            .collect::<Vec<_>>()
            .join(",")
    }

    /// The bootstrap servers pods use (the pod-network listener), when there is one.
    pub fn pod_bootstrap(&self) -> Option<String> {
        let ports: Vec<String> = self
            .nodes
            .iter()
            .filter_map(|n| n.pod_port)
            .map(|(p, _)| format!("{}:{p}", super::pod_net::HOST_IP))
            .collect();
        (!ports.is_empty()).then(|| ports.join(","))
    }

    /// The SASL_SSL bootstrap servers pods use, when there is a pod network.
    pub fn pod_sasl_bootstrap(&self) -> Option<String> {
        let ports: Vec<String> = self
            .nodes
            .iter()
            .filter_map(|n| n.pod_port)
            .map(|(_, p)| format!("{}:{p}", super::pod_net::HOST_IP))
            .collect();
        (!ports.is_empty()).then(|| ports.join(","))
    }

    pub fn sasl_bootstrap(&self) -> String {
        self.nodes
            .iter()
            .map(|n| format!("127.0.0.1:{}", n.sasl_port))
            .collect::<Vec<_>>()
            .join(",")
    }

    /// Waits until every node is a registered broker, through both listeners. The metadata
    /// requests block, so they run off the runtime's thread and a Ctrl-C is heard meanwhile.
    pub async fn wait_ready(&mut self, timeout: Duration) -> Result<()> {
        let deadline = Instant::now() + timeout;
        let want = self.nodes.len();
        for (what, config) in [
            ("PLAINTEXT", self.plaintext_config()),
            ("SASL_SSL", self.sasl_config()),
        ] {
            let consumer: std::sync::Arc<BaseConsumer> = std::sync::Arc::new(
                config
                    .create()
                    .context("creating a Kafka metadata client")?,
            );
            loop {
                for node in &mut self.nodes {
                    if let Some(status) = node.process.poll_exit() {
                        bail!(
                            "kafka-{} exited ({status}) while starting; last lines of {}:\n{}",
                            node.id,
                            node.process.log.display(),
                            tail(&node.process.log, 40)
                        );
                    }
                }
                let client = consumer.clone();
                let brokers = tokio::task::spawn_blocking(move || {
                    client
                        .fetch_metadata(None, Duration::from_secs(2))
                        .map(|md| md.brokers().len())
                })
                .await?;
                match brokers {
                    Ok(n) if n == want => break,
                    Ok(n) => {
                        tracing::debug!(listener = what, brokers = n, want, "waiting for brokers")
                    }
                    Err(e) => tracing::debug!(listener = what, error = %e, "waiting for Kafka"),
                }
                if Instant::now() > deadline {
                    bail!(
                        "Kafka ({want} nodes) was not ready on {what} within {timeout:?}; see {}",
                        self.nodes[0].process.log.display()
                    );
                }
                tokio::time::sleep(Duration::from_millis(250)).await;
            }
        }
        Ok(())
    }

    fn plaintext_config(&self) -> ClientConfig {
        let mut c = ClientConfig::new();
        c.set("bootstrap.servers", self.bootstrap())
            .set("log_level", "3");
        c
    }

    fn sasl_config(&self) -> ClientConfig {
        let mut c = ClientConfig::new();
        c.set("bootstrap.servers", self.sasl_bootstrap())
            .set("security.protocol", "SASL_SSL")
            .set("sasl.mechanism", SASL_MECHANISM)
            .set("sasl.username", SASL_USER)
            .set("sasl.password", &self.sasl_password)
            .set("ssl.ca.location", self.ca_cert.display().to_string())
            .set("log_level", "3");
        c
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn props(nodes: usize) -> String {
        let cert = ServerCert {
            cert: "/c.crt".into(),
            key: "/c.key".into(),
            key_and_cert: "/pki/kafka-keystore.pem".into(),
        };
        server_properties(
            2,
            (9092, 9093, 9094),
            "1@x:1,2@x:2,3@x:3",
            nodes,
            Path::new("/d"),
            &cert,
            None,
        )
    }

    #[test]
    fn three_nodes_replicate_internal_topics_three_times_with_min_isr_two() {
        let p = props(3);
        for line in [
            "node.id=2",
            "offsets.topic.replication.factor=3",
            "transaction.state.log.min.isr=2",
            "min.insync.replicas=2",
            "default.replication.factor=3",
        ] {
            assert!(p.lines().any(|l| l == line), "missing {line}");
        }
    }

    #[test]
    fn one_node_replicates_once_and_listens_on_both_client_listeners() {
        let p = props(1);
        assert!(p.lines().any(|l| l == "offsets.topic.replication.factor=1"));
        assert!(p.lines().any(|l| l == "min.insync.replicas=1"));
        assert!(
            p.contains("advertised.listeners=PLAINTEXT://127.0.0.1:9092,SASL_SSL://127.0.0.1:9093")
        );
        assert!(p.contains("listener.name.sasl_ssl.ssl.keystore.location=/pki/kafka-keystore.pem"));
        // A .properties value cannot carry a trailing comment: every line is key=value.
        assert!(p.lines().all(|l| l.contains('=') && !l.starts_with(' ')));
    }

    #[test]
    fn cluster_ids_are_22_url_safe_characters() {
        for _ in 0..2000 {
            assert!(!random_cluster_id().expect("urandom").starts_with('-'));
        }
        let id = random_cluster_id().expect("urandom");
        assert_eq!(id.len(), 22);
        assert!(
            id.chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
        );
        assert_ne!(id, random_cluster_id().expect("urandom"));
    }
}
