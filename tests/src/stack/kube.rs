//! A real Kubernetes control plane without kubelet: etcd, kube-apiserver and
//! kube-controller-manager built from Go modules, on loopback ports, with an admin kubeconfig
//! using a static bearer token.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::{Result, bail};
use nix::sys::signal::Signal;

use super::pki::Pki;
use super::ports::free_ports;
use super::process::{Managed, spawn, tail};
use super::random::random_hex;
use crate::installed::Installed;

/// The controllers the operator's behaviour depends on (workloads, garbage collection,
/// namespace deletion, PodDisruptionBudgets, Service endpoints).
pub const CONTROLLERS: &str = "statefulset-controller,replicaset-controller,deployment-controller,\
garbage-collector-controller,namespace-controller,disruption-controller,endpointslice-controller";

#[derive(Debug)]
pub struct ControlPlane {
    pub server: String,
    pub kubeconfig: PathBuf,
    pub token: String,
    pub ca_cert: PathBuf,
    pub etcd: Managed,
    pub apiserver: Managed,
    /// Kept to start the apiserver again after a crash test killed it.
    apiserver_cmd: Command,
    pub controller_manager: Option<Managed>,
    log_dir: PathBuf,
}

impl ControlPlane {
    /// Starts etcd and kube-apiserver; [`ControlPlane::wait_ready`] then starts the
    /// controller-manager once the apiserver answers.
    pub fn start(installed: &Installed, dir: &Path, log_dir: &Path, pki: &Pki) -> Result<Self> {
        let apiserver_bin = installed.kube_apiserver()?;
        installed.kube_controller_manager()?;
        let etcd_bin = installed.etcd()?;
        std::fs::create_dir_all(dir)?;
        let ports = free_ports(3)?;
        let (etcd_client, etcd_peer, secure) = (ports[0], ports[1], ports[2]);

        let cert = pki.server_cert("kube-apiserver", log_dir)?;
        let sa_key = dir.join("sa.key");
        let mut genrsa = Command::new("openssl");
        genrsa.args(["genrsa", "-out"]).arg(&sa_key).arg("2048");
        super::process::run_to_completion(
            "openssl-sa-key",
            &mut genrsa,
            log_dir,
            Duration::from_secs(60),
        )?;
        let token = random_hex(16)?;
        let tokens = dir.join("tokens.csv");
        std::fs::write(
            &tokens,
            format!("{token},devstack-admin,devstack-admin,\"system:masters\"\n"),
        )?;

        let mut etcd_cmd = Command::new(etcd_bin);
        etcd_cmd
            .args(["--name", "devstack", "--data-dir"])
            .arg(dir.join("etcd"))
            .arg(format!(
                "--listen-client-urls=http://127.0.0.1:{etcd_client}"
            ))
            .arg(format!(
                "--advertise-client-urls=http://127.0.0.1:{etcd_client}"
            ))
            .arg(format!("--listen-peer-urls=http://127.0.0.1:{etcd_peer}"))
            .arg(format!(
                "--initial-advertise-peer-urls=http://127.0.0.1:{etcd_peer}"
            ))
            .arg(format!(
                "--initial-cluster=devstack=http://127.0.0.1:{etcd_peer}"
            ))
            .args([
                "--unsafe-no-fsync",
                "--log-level=warn",
                "--quota-backend-bytes=2147483648",
            ]);
        let etcd = spawn("etcd", &mut etcd_cmd, log_dir, Signal::SIGTERM)?;

        let server = format!("https://127.0.0.1:{secure}");
        let mut api = Command::new(apiserver_bin);
        api.arg(format!("--etcd-servers=http://127.0.0.1:{etcd_client}"))
            // All addresses: the operator under test reaches it from its network namespace through
            // the pod bridge (10.244.0.1).
            .args(["--bind-address=0.0.0.0", "--advertise-address=127.0.0.1"])
            .arg(format!("--secure-port={secure}"))
            .arg(format!("--cert-dir={}", dir.join("certs").display()))
            .arg(format!("--tls-cert-file={}", cert.cert.display()))
            .arg(format!("--tls-private-key-file={}", cert.key.display()))
            .arg(format!("--token-auth-file={}", tokens.display()))
            .arg("--authorization-mode=RBAC")
            .arg(format!("--service-account-issuer={server}"))
            .arg(format!("--service-account-key-file={}", sa_key.display()))
            .arg(format!(
                "--service-account-signing-key-file={}",
                sa_key.display()
            ))
            .args([
                "--service-cluster-ip-range=10.0.0.0/24",
                "--disable-admission-plugins=ServiceAccount",
            ])
            .args(["--allow-privileged=true", "--profiling=false", "--v=1"])
            // The default reconciler refuses a loopback advertise address since 1.3x.
            .arg("--endpoint-reconciler-type=none");
        let apiserver = spawn("kube-apiserver", &mut api, log_dir, Signal::SIGTERM)?;

        let kubeconfig = dir.join("kubeconfig");
        std::fs::write(&kubeconfig, kubeconfig_yaml(&server, &pki.ca_cert, &token))?;
        Ok(Self {
            server,
            kubeconfig,
            token,
            ca_cert: pki.ca_cert.clone(),
            etcd,
            apiserver,
            apiserver_cmd: api,
            controller_manager: None,
            log_dir: log_dir.to_path_buf(),
        })
    }

    /// Starts the apiserver again (`start kube-apiserver` on the control channel, after
    /// `stop kube-apiserver`), on the same port, storage and certificates.
    pub fn restart_apiserver(&mut self) -> Result<()> {
        self.apiserver.kill_now();
        self.apiserver = spawn(
            "kube-apiserver",
            &mut self.apiserver_cmd,
            &self.log_dir,
            Signal::SIGTERM,
        )?;
        Ok(())
    }

    /// Waits for the apiserver's `/readyz`, then starts the controller-manager. Async because
    /// readiness is an HTTPS request.
    pub async fn wait_ready(&mut self, installed: &Installed, timeout: Duration) -> Result<()> {
        let ca = reqwest::Certificate::from_pem(&std::fs::read(&self.ca_cert)?)?;
        let http = reqwest::Client::builder()
            .add_root_certificate(ca)
            .timeout(Duration::from_secs(5))
            .build()?;
        let deadline = Instant::now() + timeout;
        loop {
            for p in [&mut self.etcd, &mut self.apiserver] {
                if let Some(status) = p.poll_exit() {
                    bail!(
                        "{} exited ({status}) while starting; last lines of {}:\n{}",
                        p.name,
                        p.log.display(),
                        tail(&p.log, 40)
                    );
                }
            }
            let ready = http
                .get(format!("{}/readyz", self.server))
                .bearer_auth(&self.token)
                .send()
                .await
                .map(|r| r.status().is_success())
                .unwrap_or(false);
            if ready {
                break;
            }
            if Instant::now() > deadline {
                bail!(
                    "kube-apiserver was not ready within {timeout:?}; see {}",
                    self.apiserver.log.display()
                );
            }
            tokio::time::sleep(Duration::from_millis(300)).await;
        }
        let mut kcm = Command::new(installed.kube_controller_manager()?);
        kcm.arg(format!("--kubeconfig={}", self.kubeconfig.display()))
            .args([
                "--leader-elect=false",
                "--secure-port=0",
                "--use-service-account-credentials=false",
            ])
            .arg(format!("--controllers={CONTROLLERS}"))
            .args(["--concurrent-gc-syncs=5", "--v=1"]);
        self.controller_manager = Some(spawn(
            "kube-controller-manager",
            &mut kcm,
            &self.log_dir,
            Signal::SIGTERM,
        )?);
        Ok(())
    }
}

fn kubeconfig_yaml(server: &str, ca: &Path, token: &str) -> String {
    format!(
        "apiVersion: v1
kind: Config
clusters:
- name: devstack
  cluster:
    server: {server}
    certificate-authority: {ca}
users:
- name: devstack-admin
  user:
    token: {token}
contexts:
- name: devstack
  context:
    cluster: devstack
    user: devstack-admin
current-context: devstack
",
        ca = ca.display()
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_kubeconfig_is_one_kube_rs_reads() {
        let yaml = kubeconfig_yaml("https://127.0.0.1:6443", Path::new("/pki/ca.crt"), "tok");
        let config = kube::config::Kubeconfig::from_yaml(&yaml).expect("valid kubeconfig");
        assert_eq!(config.current_context.as_deref(), Some("devstack"));
        let cluster = config.clusters[0].cluster.as_ref().expect("cluster");
        assert_eq!(cluster.server.as_deref(), Some("https://127.0.0.1:6443"));
        assert_eq!(
            cluster.certificate_authority.as_deref(),
            Some("/pki/ca.crt")
        );
    }
}
