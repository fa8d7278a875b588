//! What tests use: a devstack to run against, isolated names, clients, and waits.
//!
//! [`Devstack::shared`] attaches to the stack named by `TRIBUTARY_DEVSTACK_ENV` (what `make test`
//! and CI start once for all test binaries) or, when that is unset, starts one for this test
//! process. [`Devstack::start`] always starts a private one (a 3-node Kafka cluster to break, for
//! example). A started stack is a `devstack up --control-stdin` child: when the test process ends,
//! however it ends, its standard input closes and the stack shuts down.

use std::collections::BTreeMap;
use std::future::Future;
use std::io::Write;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use kube::config::{KubeConfigOptions, Kubeconfig};
use rdkafka::ClientConfig;
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;

use crate::env_file;
use crate::stack::process::tail;

/// How long a test waits for a devstack to come up: generous, since JVMs and the apiserver
/// start slowly on 2 busy cores.
const START_TIMEOUT: Duration = Duration::from_secs(600);

/// A running devstack, attached or owned.
#[derive(Debug)]
pub struct Devstack {
    env: BTreeMap<String, String>,
    env_path: PathBuf,
    owned: Option<Owned>,
}

#[derive(Debug)]
struct Owned {
    child: Mutex<Child>,
    control: Mutex<Option<ChildStdin>>,
    workdir: PathBuf,
}

static SHARED: OnceLock<std::result::Result<Devstack, String>> = OnceLock::new();

fn devstack_binary() -> Result<PathBuf> {
    for var in [
        "TRIBUTARY_DEVSTACK_BIN",
        "NEXTEST_BIN_EXE_devstack",
        "CARGO_BIN_EXE_devstack",
    ] {
        if let Some(p) = std::env::var_os(var) {
            return Ok(PathBuf::from(p));
        }
    }
    // Next to this binary (a bin in target/<profile>) or one level up (a test in deps/).
    crate::worker::sibling_binary(
        "devstack",
        "cargo build -p tributary-tests --bin devstack (or set TRIBUTARY_DEVSTACK_BIN)",
    )
}

impl Devstack {
    /// The stack all tests of this process share. Blocks while it starts.
    pub fn shared() -> Result<&'static Devstack> {
        let stack = SHARED.get_or_init(|| {
            let attached = match std::env::var_os("TRIBUTARY_DEVSTACK_ENV") {
                Some(path) => Self::attach(Path::new(&path)),
                None => Self::start(&[]),
            };
            attached.map_err(|e| format!("{e:#}"))
        });
        stack.as_ref().map_err(|e| anyhow::anyhow!("{e}"))
    }

    /// Attaches to a running devstack through its env file.
    pub fn attach(env_path: &Path) -> Result<Self> {
        let env = env_file::read(env_path).with_context(|| {
            format!("TRIBUTARY_DEVSTACK_ENV names {}, but no devstack wrote it; start one with `devstack up --env-file {0}`", env_path.display())
        })?;
        let pid: i32 = env
            .get("TRIBUTARY_DEVSTACK_PID")
            .and_then(|p| p.parse().ok())
            .unwrap_or(0);
        if pid <= 0 || nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), None).is_err() {
            bail!(
                "the devstack of {} (pid {pid}) is not running any more; start one with `devstack up`",
                env_path.display()
            );
        }
        Ok(Self {
            env,
            env_path: env_path.to_path_buf(),
            owned: None,
        })
    }

    /// Starts a private devstack with these `devstack up` arguments (for example
    /// `["--kafka-nodes", "3", "--no-kube", "--no-postgres"]`). Blocks until it is ready.
    pub fn start(args: &[&str]) -> Result<Self> {
        let bin = devstack_binary()?;
        let workdir = tempfile::Builder::new()
            .prefix("tributary-testkit-")
            .tempdir()?
            .keep();
        let env_path = workdir.join("devstack.env");
        let log_path = workdir.join("devstack.log");
        let log = std::fs::File::create(&log_path)?;
        let mut child = Command::new(&bin)
            .arg("up")
            .args(args)
            .arg("--control-stdin")
            .arg("--env-file")
            .arg(&env_path)
            .arg("--dir")
            .arg(&workdir)
            .arg("--remove-dir")
            .env_remove("TRIBUTARY_DEVSTACK_ENV")
            // Its own process group with all its children: a Ctrl-C meant for the test runner
            // reaches the stack only through its closing stdin, and `kill -- -<pid>` takes all.
            .process_group(0)
            .stdin(Stdio::piped())
            .stdout(log.try_clone()?)
            .stderr(log)
            .spawn()
            .with_context(|| format!("starting {}", bin.display()))?;
        let control = child.stdin.take();
        let deadline = Instant::now() + START_TIMEOUT;
        loop {
            if env_path.exists() {
                let env = env_file::read(&env_path)?;
                return Ok(Self {
                    env,
                    env_path: env_path.clone(),
                    owned: Some(Owned {
                        child: Mutex::new(child),
                        control: Mutex::new(control),
                        workdir,
                    }),
                });
            }
            if let Some(status) = child.try_wait()? {
                bail!(
                    "devstack exited ({status}) before it was ready; last lines of {}:\n{}",
                    log_path.display(),
                    tail(&log_path, 40)
                );
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                bail!(
                    "devstack was not ready within {START_TIMEOUT:?}; see {}",
                    log_path.display()
                );
            }
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    /// The env file, for a process that should attach to this devstack
    /// (`TRIBUTARY_DEVSTACK_ENV`).
    pub fn env_path(&self) -> &Path {
        &self.env_path
    }

    /// A value of the env file, or an error naming the component that provides it.
    pub fn var(&self, key: &str) -> Result<&str> {
        self.env.get(key).map(String::as_str).with_context(|| {
            format!("this devstack has no {key}: it was started without that component (see `devstack up --help`)")
        })
    }

    pub fn kafka_bootstrap(&self) -> Result<&str> {
        self.var("TRIBUTARY_KAFKA_BOOTSTRAP")
    }

    pub fn kafka_nodes(&self) -> Result<usize> {
        Ok(self.var("TRIBUTARY_KAFKA_NODES")?.parse()?)
    }

    /// A librdkafka configuration for the PLAINTEXT listener.
    pub fn kafka_config(&self) -> Result<ClientConfig> {
        let mut c = ClientConfig::new();
        c.set("bootstrap.servers", self.kafka_bootstrap()?);
        Ok(c)
    }

    /// A librdkafka configuration for the SASL_SSL listener with the given password.
    pub fn kafka_sasl_config(&self, password: &str) -> Result<ClientConfig> {
        let mut c = ClientConfig::new();
        c.set(
            "bootstrap.servers",
            self.var("TRIBUTARY_KAFKA_SASL_BOOTSTRAP")?,
        )
        .set("security.protocol", "SASL_SSL")
        .set(
            "sasl.mechanism",
            self.var("TRIBUTARY_KAFKA_SASL_MECHANISM")?,
        )
        .set("sasl.username", self.var("TRIBUTARY_KAFKA_SASL_USERNAME")?)
        .set("sasl.password", password)
        .set("ssl.ca.location", self.var("TRIBUTARY_KAFKA_CA_CERT")?);
        Ok(c)
    }

    pub fn kafka_sasl_password(&self) -> Result<&str> {
        self.var("TRIBUTARY_KAFKA_SASL_PASSWORD")
    }

    /// Creates a topic with a unique name starting with `prefix`, and returns the name.
    pub async fn create_topic(
        &self,
        prefix: &str,
        partitions: i32,
        replication: i32,
        config: &[(&str, &str)],
    ) -> Result<String> {
        let name = unique_name(prefix);
        let admin: AdminClient<DefaultClientContext> = self.kafka_config()?.create()?;
        let mut topic = NewTopic::new(&name, partitions, TopicReplication::Fixed(replication));
        for (k, v) in config {
            topic = topic.set(k, v);
        }
        let opts = AdminOptions::new().operation_timeout(Some(Duration::from_secs(60)));
        for result in admin.create_topics([&topic], &opts).await? {
            result.map_err(|(t, e)| anyhow::anyhow!("creating topic {t}: {e}"))?;
        }
        Ok(name)
    }

    /// Reads every partition of `topic` from the beginning to its end as of now (each partition
    /// in order), handing each record to `each`; fails after `timeout`.
    pub fn read_topic_to_end(
        &self,
        topic: &str,
        timeout: Duration,
        mut each: impl FnMut(&rdkafka::message::BorrowedMessage<'_>),
    ) -> Result<()> {
        use rdkafka::Message;
        use rdkafka::consumer::{BaseConsumer, Consumer};
        let consumer: BaseConsumer = self
            .kafka_config()?
            .set("group.id", unique_name("reader"))
            .set("enable.auto.commit", "false")
            .create()?;
        let md = consumer.fetch_metadata(Some(topic), Duration::from_secs(30))?;
        let partitions = md
            .topics()
            .first()
            .map(|t| t.partitions().len() as i32)
            .unwrap_or(0);
        let mut tpl = rdkafka::TopicPartitionList::new();
        let mut ends = BTreeMap::new();
        for p in 0..partitions {
            let (_, end) = consumer.fetch_watermarks(topic, p, Duration::from_secs(30))?;
            ends.insert(p, end);
            tpl.add_partition_offset(topic, p, rdkafka::Offset::Beginning)?;
        }
        consumer.assign(&tpl)?;
        let mut pos: BTreeMap<i32, i64> = BTreeMap::new();
        let deadline = Instant::now() + timeout;
        while ends
            .iter()
            .any(|(p, e)| pos.get(p).copied().unwrap_or(0) < *e)
        {
            if Instant::now() > deadline {
                bail!("reading {topic} to its end took longer than {timeout:?}");
            }
            if let Some(m) = consumer.poll(Duration::from_millis(200)) {
                let m = m?;
                pos.insert(m.partition(), m.offset() + 1);
                each(&m);
            }
        }
        Ok(())
    }

    /// A kube client with the devstack's admin credentials.
    pub async fn kube_client(&self) -> Result<kube::Client> {
        let path = self.var("TRIBUTARY_KUBECONFIG")?;
        let kubeconfig =
            Kubeconfig::read_from(path).with_context(|| format!("reading kubeconfig {path}"))?;
        let config =
            kube::Config::from_custom_kubeconfig(kubeconfig, &KubeConfigOptions::default()).await?;
        Ok(kube::Client::try_from(config)?)
    }

    /// Runs the devstack's kubectl (its kubeconfig added) with `stdin` piped in; the output
    /// whatever the exit status, so tests can check refusals too.
    pub fn kubectl(&self, args: &[&str], stdin: Option<&str>) -> Result<std::process::Output> {
        let mut child = Command::new(self.var("TRIBUTARY_KUBECTL")?)
            .args(args)
            .args(["--kubeconfig", self.var("TRIBUTARY_KUBECONFIG")?])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .context("running kubectl")?;
        if let (Some(text), Some(mut input)) = (stdin, child.stdin.take()) {
            input.write_all(text.as_bytes())?;
        }
        Ok(child.wait_with_output()?)
    }

    /// Creates a namespace with a unique name starting with `prefix`.
    pub async fn namespace(&self, prefix: &str) -> Result<String> {
        use k8s_openapi::api::core::v1::Namespace;
        let name = unique_name(prefix);
        let api: kube::Api<Namespace> = kube::Api::all(self.kube_client().await?);
        let ns: Namespace =
            serde_json::from_value(serde_json::json!({"metadata": {"name": name}}))?;
        api.create(&Default::default(), &ns)
            .await
            .with_context(|| format!("creating namespace {name}"))?;
        Ok(name)
    }

    /// A PostgreSQL client for the devstack database; its connection runs on the caller's runtime.
    pub async fn postgres(&self) -> Result<tokio_postgres::Client> {
        let (client, conn) =
            tokio_postgres::connect(self.var("TRIBUTARY_PG_URL")?, tokio_postgres::NoTls).await?;
        tokio::spawn(async move {
            if let Err(e) = conn.await {
                tracing::warn!("postgres connection ended: {e}");
            }
        });
        Ok(client)
    }

    /// Kills one component of an owned stack at once, as a crash would (`kafka-2`, `postgres`, ...).
    pub fn kill_component(&self, name: &str) -> Result<()> {
        self.control(&format!("stop {name}"))
    }

    /// Starts a killed Kafka node of an owned stack again on its storage and ports (`kafka-2`).
    pub fn start_component(&self, name: &str) -> Result<()> {
        self.control(&format!("start {name}"))
    }

    fn control(&self, command: &str) -> Result<()> {
        let owned = self
            .owned
            .as_ref()
            .context("only a stack this test started can have components stopped and started")?;
        let mut control = owned
            .control
            .lock()
            .map_err(|_| anyhow::anyhow!("control channel poisoned"))?;
        let stdin = control
            .as_mut()
            .context("the devstack control channel is closed")?;
        writeln!(stdin, "{command}")?;
        stdin.flush()?;
        Ok(())
    }

    /// The PID of Kafka node `id` (1-based), to watch it go away.
    pub fn kafka_node_pid(&self, id: usize) -> Result<i32> {
        let pids = self.var("TRIBUTARY_KAFKA_NODE_PIDS")?;
        pids.split(',')
            .nth(id - 1)
            .context("no such Kafka node")?
            .parse()
            .context("bad pid")
    }

    /// What a component of the stack has logged so far (`kafka-1`, `kube-apiserver`, ...).
    pub fn component_log(&self, name: &str) -> Result<String> {
        let path = Path::new(self.var("TRIBUTARY_DEVSTACK_LOGS")?).join(format!("{name}.log"));
        std::fs::read_to_string(&path).with_context(|| format!("reading {}", path.display()))
    }

    /// The Kafka version the stack runs.
    pub fn kafka_version(&self) -> Result<&str> {
        self.var("TRIBUTARY_KAFKA_VERSION")
    }
}

impl Drop for Devstack {
    fn drop(&mut self) {
        if let Some(owned) = &self.owned {
            // Closing standard input is the stop command; then wait so the next test starts on
            // a quiet machine.
            if let Ok(mut c) = owned.control.lock() {
                c.take();
            }
            if let Ok(mut child) = owned.child.lock() {
                let deadline = Instant::now() + Duration::from_secs(60);
                while matches!(child.try_wait(), Ok(None)) && Instant::now() < deadline {
                    std::thread::sleep(Duration::from_millis(100));
                }
                let _ = child.kill();
                let _ = child.wait();
            }
            let _ = std::fs::remove_dir_all(&owned.workdir);
        }
    }
}

/// A record as text: its value, and its headers (in order) with their values.
pub fn text_record(m: &impl rdkafka::Message) -> (String, Vec<(String, String)>) {
    use rdkafka::message::Headers;
    let headers = m
        .headers()
        .map(|h| {
            h.iter()
                .map(|h| {
                    (
                        h.key.to_string(),
                        String::from_utf8_lossy(h.value.unwrap_or_default()).into_owned(),
                    )
                })
                .collect()
        })
        .unwrap_or_default();
    (
        String::from_utf8_lossy(m.payload().unwrap_or_default()).into_owned(),
        headers,
    )
}

/// A name no other test (in this or another process) uses: `<prefix>-<pid>-<n>`. Lower-case and
/// short, so it is a valid topic, group, namespace and SQL identifier.
pub fn unique_name(prefix: &str) -> String {
    static N: AtomicU32 = AtomicU32::new(0);
    format!(
        "{prefix}-{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    )
}

/// Polls `check` until it returns `Some`, failing after `timeout` with `what` and the last
/// error. Tests pass generous timeouts (3x the target); tight figures belong to benchmarks.
pub async fn wait_until<T, F, Fut>(what: &str, timeout: Duration, mut check: F) -> Result<T>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<Option<T>>>,
{
    let deadline = Instant::now() + timeout;
    let mut last_error = String::from("condition not met");
    loop {
        match check().await {
            Ok(Some(v)) => return Ok(v),
            Ok(None) => {}
            Err(e) => last_error = format!("{e:#}"),
        }
        if Instant::now() > deadline {
            bail!("timed out after {timeout:?} waiting for {what}: {last_error}");
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}
