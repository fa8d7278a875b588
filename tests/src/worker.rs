//! `tributary-worker` processes for end-to-end tests: written config files, free ports, health
//! waits, SIGKILL and restart with the same files (the way a pod restarts).

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::{Result, bail};
use nix::sys::signal::Signal;

use crate::stack::ports::free_ports;
use crate::stack::process::{Managed, spawn, tail};

/// The worker binary: `TRIBUTARY_WORKER_BIN`, or next to the test binary's directory (cargo
/// builds it there with the workspace).
pub fn worker_binary() -> Result<PathBuf> {
    if let Some(p) = std::env::var_os("TRIBUTARY_WORKER_BIN") {
        return Ok(PathBuf::from(p));
    }
    sibling_binary("tributary-worker", "cargo build -p tributary-worker")
}

/// Binary `name` of this workspace, next to the running executable (test binaries live in
/// target/<profile>/deps, other binaries next to the worker).
pub fn sibling_binary(name: &str, build: &str) -> Result<PathBuf> {
    let exe = std::env::current_exe()?;
    let dir = exe.parent();
    let candidate = [dir, dir.and_then(Path::parent)]
        .into_iter()
        .flatten()
        .map(|d| d.join(name))
        .find(|c| c.is_file());
    match candidate {
        Some(c) => Ok(c),
        None => bail!(
            "cannot find {name} next to {}; build it with `{build}`",
            exe.display()
        ),
    }
}

/// Worker settings of one distributed cluster on the devstack broker: Java's topic names for
/// `group` (so a Java worker with the same group shares them, see `java_connect`), JSON without
/// schemas and 1-partition offsets and status topics as the Java test workers use, then `extra`.
/// Listeners are added by [`WorkerProcess::start_distributed`].
pub fn distributed_properties(stack: &crate::Devstack, group: &str, extra: &str) -> Result<String> {
    let replication = stack.kafka_nodes()?.min(3);
    Ok(format!(
        "bootstrap.servers={}
group.id={group}
key.converter=org.apache.kafka.connect.json.JsonConverter
value.converter=org.apache.kafka.connect.json.JsonConverter
key.converter.schemas.enable=false
value.converter.schemas.enable=false
config.storage.topic={group}-configs
offset.storage.topic={group}-offsets
status.storage.topic={group}-status
config.storage.replication.factor={replication}
offset.storage.replication.factor={replication}
status.storage.replication.factor={replication}
offset.storage.partitions=1
status.storage.partitions=1
offset.flush.interval.ms=1000
{extra}
",
        stack.kafka_bootstrap()?
    ))
}

/// The name the standalone tests know it by.
pub type StandaloneWorker = WorkerProcess;

/// A worker process (standalone or distributed) with its files in `dir`.
#[derive(Debug)]
pub struct WorkerProcess {
    pub name: String,
    mode: &'static str,
    pub dir: PathBuf,
    pub rest_url: String,
    pub health_url: String,
    args: Vec<PathBuf>,
    /// Extra environment of the worker process (after the tests' default `TRIBUTARY_LOG`).
    env: Vec<(String, String)>,
    pub process: Option<Managed>,
    starts: usize,
    /// The network namespace it runs in (`ip netns exec`), if not the host's.
    netns: Option<String>,
}

impl WorkerProcess {
    /// Writes `worker.properties` (`worker_props` plus listeners and the offsets file) and one
    /// file per connector, then starts the worker.
    pub fn start(
        dir: &Path,
        name: &str,
        worker_props: &str,
        connectors: &[(&str, String)],
    ) -> Result<Self> {
        Self::start_with_env(dir, name, worker_props, connectors, &[])
    }

    /// [`start`](Self::start) with extra environment variables for the worker process.
    pub fn start_with_env(
        dir: &Path,
        name: &str,
        worker_props: &str,
        connectors: &[(&str, String)],
        env: &[(&str, &str)],
    ) -> Result<Self> {
        std::fs::create_dir_all(dir)?;
        let ports = free_ports(2)?;
        let worker_file = dir.join(format!("{name}-worker.properties"));
        std::fs::write(
            &worker_file,
            format!(
                "{worker_props}\nlisteners=http://127.0.0.1:{}\ntributary.health.listener=http://127.0.0.1:{}\noffset.storage.file.filename={}\n",
                ports[0],
                ports[1],
                dir.join(format!("{name}.offsets")).display()
            ),
        )?;
        let mut args = vec![worker_file];
        for (conn, text) in connectors {
            let f = dir.join(format!("{name}-{conn}.properties"));
            std::fs::write(&f, text)?;
            args.push(f);
        }
        let mut w = Self {
            name: name.to_string(),
            mode: "standalone",
            dir: dir.to_path_buf(),
            rest_url: format!("http://127.0.0.1:{}", ports[0]),
            health_url: format!("http://127.0.0.1:{}", ports[1]),
            args,
            env: env
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            process: None,
            starts: 0,
            netns: None,
        };
        w.launch()?;
        Ok(w)
    }

    /// Writes `worker.properties` (`worker_props` plus listeners on free ports, advertised as
    /// 127.0.0.1) and starts `tributary-worker distributed`.
    pub fn start_distributed(dir: &Path, name: &str, worker_props: &str) -> Result<Self> {
        Self::start_distributed_with_env(dir, name, worker_props, &[])
    }

    /// [`start_distributed`](Self::start_distributed) with extra environment variables.
    pub fn start_distributed_with_env(
        dir: &Path,
        name: &str,
        worker_props: &str,
        env: &[(&str, &str)],
    ) -> Result<Self> {
        std::fs::create_dir_all(dir)?;
        let ports = free_ports(2)?;
        // An https REST listener when the properties configure its keystore.
        let scheme = if worker_props.contains("listeners.https.ssl.keystore") {
            "https"
        } else {
            "http"
        };
        Self::launch_distributed(
            dir,
            name,
            &format!(
                "{worker_props}\nlisteners={scheme}://127.0.0.1:{}\nrest.advertised.host.name=127.0.0.1\ntributary.health.listener=http://127.0.0.1:{}\n",
                ports[0], ports[1],
            ),
            (
                format!("{scheme}://127.0.0.1:{}", ports[0]),
                format!("http://127.0.0.1:{}", ports[1]),
            ),
            env,
            None,
        )
    }

    /// [`start_distributed`](Self::start_distributed) inside network namespace `netns`, listening
    /// and advertised on `ip` (its address there), with extra environment `env`. Cutting the
    /// namespace's link cuts the worker off from the broker and the other workers at once.
    pub fn start_distributed_in_netns(
        dir: &Path,
        name: &str,
        worker_props: &str,
        netns: &str,
        ip: &str,
        env: &[(&str, &str)],
    ) -> Result<Self> {
        std::fs::create_dir_all(dir)?;
        Self::launch_distributed(
            dir,
            name,
            &format!(
                "{worker_props}\nlisteners=http://{ip}:8083\nrest.advertised.host.name={ip}\ntributary.health.listener=http://{ip}:8084\n"
            ),
            (format!("http://{ip}:8083"), format!("http://{ip}:8084")),
            env,
            Some(netns),
        )
    }

    /// Writes `<name>-worker.properties` (listeners included) and starts the distributed worker
    /// whose REST and health listeners are at `urls`.
    fn launch_distributed(
        dir: &Path,
        name: &str,
        props: &str,
        urls: (String, String),
        env: &[(&str, &str)],
        netns: Option<&str>,
    ) -> Result<Self> {
        let worker_file = dir.join(format!("{name}-worker.properties"));
        std::fs::write(&worker_file, props)?;
        let mut w = Self {
            name: name.to_string(),
            mode: "distributed",
            dir: dir.to_path_buf(),
            rest_url: urls.0,
            health_url: urls.1,
            args: vec![worker_file],
            env: env
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            process: None,
            starts: 0,
            netns: netns.map(str::to_string),
        };
        w.launch()?;
        Ok(w)
    }

    /// The worker's process id (of its current start), for signals.
    pub fn pid(&self) -> Option<u32> {
        self.process.as_ref().map(Managed::pid)
    }

    /// `host:port` as statuses name this worker.
    pub fn worker_id(&self) -> String {
        self.rest_url
            .trim_start_matches("https://")
            .trim_start_matches("http://")
            .to_string()
    }

    fn launch(&mut self) -> Result<()> {
        let mut cmd = match &self.netns {
            // `ip netns exec` execs the worker: the pid stays the worker's, for kill and stop.
            Some(ns) => {
                let mut c = Command::new("ip");
                c.args(["netns", "exec", ns]).arg(worker_binary()?);
                c
            }
            None => Command::new(worker_binary()?),
        };
        cmd.arg(self.mode).args(&self.args);
        cmd.env("TRIBUTARY_LOG", "info,librdkafka=warn");
        cmd.envs(self.env.iter().map(|(k, v)| (k, v)));
        self.starts += 1;
        self.process = Some(spawn(
            &format!("{}-{}", self.name, self.starts),
            &mut cmd,
            &self.dir,
            Signal::SIGTERM,
        )?);
        Ok(())
    }

    pub fn log(&self) -> String {
        self.process
            .as_ref()
            .map(|p| tail(&p.log, 60))
            .unwrap_or_default()
    }

    /// Waits for `/health` 200 on the REST listener; fails early if the process exits.
    pub async fn wait_healthy(&mut self, timeout: Duration) -> Result<()> {
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(5))
            .build()?;
        // An https REST listener (which may demand a client certificate) is checked by the tests
        // themselves; the plain admin listener answers the same `/health`.
        let health = if self.rest_url.starts_with("https://") {
            &self.health_url
        } else {
            &self.rest_url
        };
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(p) = self.process.as_mut()
                && let Some(status) = p.poll_exit()
            {
                bail!(
                    "tributary-worker {} exited ({status}) while starting:\n{}",
                    self.name,
                    self.log()
                );
            }
            if let Ok(r) = http.get(format!("{health}/health")).send().await
                && r.status().is_success()
            {
                return Ok(());
            }
            if Instant::now() > deadline {
                bail!(
                    "tributary-worker {} was not healthy within {timeout:?}:\n{}",
                    self.name,
                    self.log()
                );
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    /// SIGKILL, as a crash or an OOM kill would.
    pub fn kill9(&mut self) {
        if let Some(p) = self.process.as_mut() {
            p.kill_now();
        }
    }

    /// Starts again with the same files and ports.
    pub fn restart(&mut self) -> Result<()> {
        self.kill9();
        self.launch()
    }

    /// Waits for the process to exit by itself (start-up failures), returning its log.
    pub async fn wait_exit(&mut self, timeout: Duration) -> Result<String> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(p) = self.process.as_mut()
                && p.poll_exit().is_some()
            {
                return Ok(std::fs::read_to_string(&p.log).unwrap_or_default());
            }
            if Instant::now() > deadline {
                bail!(
                    "tributary-worker {} did not exit within {timeout:?}",
                    self.name
                );
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    /// SIGTERM and wait, for an orderly stop.
    pub fn stop(&mut self) {
        if let Some(p) = self.process.as_mut() {
            p.request_stop();
            p.wait_stopped(Instant::now() + Duration::from_secs(30));
        }
    }
}

impl Drop for WorkerProcess {
    fn drop(&mut self) {
        self.stop();
    }
}
