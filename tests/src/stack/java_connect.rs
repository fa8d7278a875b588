//! The Apache Kafka Connect worker (Java, distributed mode) from Maven Central, for side-by-side
//! comparisons and compatibility tests. Each instance has its own group and internal topics so it
//! never merges with a Tributary cluster by accident.

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::{Result, bail};
use nix::sys::signal::Signal;

use super::kafka::TEST_JVM_OPTS;
use super::ports::free_ports;
use super::process::{Managed, spawn, tail};
use crate::installed::Installed;

/// Kafka's own `kafka-run-class.sh` defaults for Connect, so benchmarks measure the Java worker as
/// users run it (the tests' JVMs are smaller).
pub const BENCH_JVM_OPTS: &[&str] = &[
    "-Xms256M",
    "-Xmx2G",
    "-server",
    "-XX:+UseG1GC",
    "-XX:MaxGCPauseMillis=20",
    "-XX:InitiatingHeapOccupancyPercent=35",
    "-XX:+ExplicitGCInvokesConcurrent",
    "-Djava.awt.headless=true",
];

#[derive(Debug)]
pub struct JavaConnect {
    pub url: String,
    pub group_id: String,
    pub process: Managed,
}

/// Worker properties for a single-node-friendly distributed worker.
pub fn worker_properties(bootstrap: &str, group_id: &str, port: u16, replication: usize) -> String {
    format!(
        "bootstrap.servers={bootstrap}
group.id={group_id}
listeners=http://127.0.0.1:{port}
rest.advertised.host.name=127.0.0.1
rest.advertised.port={port}
key.converter=org.apache.kafka.connect.json.JsonConverter
value.converter=org.apache.kafka.connect.json.JsonConverter
key.converter.schemas.enable=false
value.converter.schemas.enable=false
config.storage.topic={group_id}-configs
offset.storage.topic={group_id}-offsets
status.storage.topic={group_id}-status
config.storage.replication.factor={replication}
offset.storage.replication.factor={replication}
status.storage.replication.factor={replication}
offset.storage.partitions=1
status.storage.partitions=1
offset.flush.interval.ms=1000
plugin.discovery=service_load
"
    )
}

/// `java <jvm_opts> … org.apache.kafka.connect.cli.<main>` on the Connect jars, with the test
/// log4j configuration; the caller adds the properties files.
pub fn java_command(installed: &Installed, jvm_opts: &[&str], main: &str) -> Result<Command> {
    let libs = installed.connect_libs()?;
    let mut cmd = Command::new("java");
    cmd.args(jvm_opts)
        .arg(format!(
            "-Dlog4j2.configurationFile=file:{}",
            installed.log4j_config().display()
        ))
        .arg("-cp")
        .arg(format!("{}/*", libs.display()))
        .arg(format!("org.apache.kafka.connect.cli.{main}"));
    Ok(cmd)
}

impl JavaConnect {
    /// Starts a worker; the caller's thread owns it (see [`super::process`]).
    pub fn start(
        installed: &Installed,
        bootstrap: &str,
        group_id: &str,
        dir: &Path,
        replication: usize,
    ) -> Result<Self> {
        std::fs::create_dir_all(dir)?;
        let port = free_ports(1)?[0];
        let props = dir.join(format!("{group_id}.properties"));
        std::fs::write(
            &props,
            worker_properties(bootstrap, group_id, port, replication),
        )?;
        let mut cmd = java_command(installed, TEST_JVM_OPTS, "ConnectDistributed")?;
        cmd.arg(&props);
        let process = spawn(
            &format!("java-connect-{group_id}"),
            &mut cmd,
            dir,
            Signal::SIGTERM,
        )?;
        Ok(Self {
            url: format!("http://127.0.0.1:{port}"),
            group_id: group_id.to_string(),
            process,
        })
    }

    /// Starts `connect-standalone` (Java's `ConnectStandalone`) with `worker_props` plus a
    /// listener on a free port and an offsets file in `dir`, and connector files as given.
    pub fn start_standalone(
        installed: &Installed,
        name: &str,
        worker_props: &str,
        dir: &Path,
        connectors: &[std::path::PathBuf],
    ) -> Result<Self> {
        Self::start_standalone_with(
            installed,
            TEST_JVM_OPTS,
            name,
            worker_props,
            dir,
            connectors,
        )
    }

    /// [`Self::start_standalone`] with the JVM options given (benchmarks use [`BENCH_JVM_OPTS`]).
    pub fn start_standalone_with(
        installed: &Installed,
        jvm_opts: &[&str],
        name: &str,
        worker_props: &str,
        dir: &Path,
        connectors: &[std::path::PathBuf],
    ) -> Result<Self> {
        std::fs::create_dir_all(dir)?;
        let port = free_ports(1)?[0];
        let props = dir.join(format!("{name}.properties"));
        std::fs::write(
            &props,
            format!(
                "{worker_props}\nlisteners=http://127.0.0.1:{port}\nrest.advertised.host.name=127.0.0.1\noffset.storage.file.filename={}\nplugin.discovery=service_load\n",
                dir.join(format!("{name}.offsets")).display()
            ),
        )?;
        let mut cmd = java_command(installed, jvm_opts, "ConnectStandalone")?;
        cmd.arg(&props).args(connectors);
        let process = spawn(
            &format!("java-standalone-{name}"),
            &mut cmd,
            dir,
            Signal::SIGTERM,
        )?;
        Ok(Self {
            url: format!("http://127.0.0.1:{port}"),
            group_id: name.to_string(),
            process,
        })
    }

    /// Waits until `GET /` answers 200 (the REST server starts after the worker joined its group
    /// and read its config topic).
    pub async fn wait_ready(&mut self, timeout: Duration) -> Result<()> {
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(5))
            .build()?;
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(status) = self.process.poll_exit() {
                bail!(
                    "Java Connect exited ({status}) while starting; last lines of {}:\n{}",
                    self.process.log.display(),
                    tail(&self.process.log, 40)
                );
            }
            if let Ok(r) = http.get(format!("{}/", self.url)).send().await
                && r.status().is_success()
            {
                return Ok(());
            }
            if Instant::now() > deadline {
                bail!(
                    "Java Connect was not ready within {timeout:?}; see {}",
                    self.process.log.display()
                );
            }
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
    }
}
