//! Certificates for the TLS listeners (Kafka SASL_SSL, kube-apiserver), made with the openssl
//! command line: one throw-away CA per stack, server certificates for 127.0.0.1 and localhost.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use anyhow::Result;

use super::process::run_to_completion;

#[derive(Debug, Clone)]
pub struct Pki {
    pub dir: PathBuf,
    pub ca_cert: PathBuf,
    ca_key: PathBuf,
}

/// A server certificate and its unencrypted PKCS#8 key, plus the two in one PEM file (the form
/// Kafka's `ssl.keystore.type=PEM` reads).
#[derive(Debug, Clone)]
pub struct ServerCert {
    pub cert: PathBuf,
    pub key: PathBuf,
    pub key_and_cert: PathBuf,
}

fn openssl(dir: &Path, log_dir: &Path, name: &str, args: &[&str]) -> Result<()> {
    let mut cmd = Command::new("openssl");
    cmd.args(args).current_dir(dir);
    run_to_completion(
        &format!("openssl-{name}"),
        &mut cmd,
        log_dir,
        Duration::from_secs(60),
    )
}

impl Pki {
    pub fn create(dir: &Path, log_dir: &Path) -> Result<Self> {
        std::fs::create_dir_all(dir)?;
        openssl(
            dir,
            log_dir,
            "ca",
            &[
                "req",
                "-x509",
                "-newkey",
                "rsa:2048",
                "-nodes",
                "-days",
                "3650",
                "-subj",
                "/CN=tributary-devstack-ca",
                "-keyout",
                "ca.key",
                "-out",
                "ca.crt",
            ],
        )?;
        Ok(Self {
            dir: dir.to_path_buf(),
            ca_cert: dir.join("ca.crt"),
            ca_key: dir.join("ca.key"),
        })
    }

    pub fn server_cert(&self, name: &str, log_dir: &Path) -> Result<ServerCert> {
        // Also the host's pod-network address, where pods and the operator under test reach
        // the apiserver and the brokers.
        self.server_cert_for(name, "IP:127.0.0.1,IP:10.244.0.1,DNS:localhost", log_dir)
    }

    /// A server certificate for `sans` (openssl's `subjectAltName` syntax).
    pub fn server_cert_for(&self, name: &str, sans: &str, log_dir: &Path) -> Result<ServerCert> {
        let (key, csr, crt, ext) = (
            format!("{name}.key"),
            format!("{name}.csr"),
            format!("{name}.crt"),
            format!("{name}.ext"),
        );
        std::fs::write(self.dir.join(&ext), format!("subjectAltName={sans}\n"))?;
        openssl(
            &self.dir,
            log_dir,
            &format!("{name}-key"),
            &[
                "req",
                "-newkey",
                "rsa:2048",
                "-nodes",
                "-subj",
                &format!("/CN={name}"),
                "-keyout",
                &key,
                "-out",
                &csr,
            ],
        )?;
        let ca_cert = self.ca_cert.display().to_string();
        let ca_key = self.ca_key.display().to_string();
        openssl(
            &self.dir,
            log_dir,
            &format!("{name}-sign"),
            &[
                "x509",
                "-req",
                "-in",
                &csr,
                "-CA",
                &ca_cert,
                "-CAkey",
                &ca_key,
                "-CAcreateserial",
                "-days",
                "3650",
                "-extfile",
                &ext,
                "-out",
                &crt,
            ],
        )?;
        let key_and_cert = self.dir.join(format!("{name}-keystore.pem"));
        let pem = std::fs::read_to_string(self.dir.join(&key))?
            + &std::fs::read_to_string(self.dir.join(&crt))?;
        std::fs::write(&key_and_cert, pem)?;
        Ok(ServerCert {
            cert: self.dir.join(crt),
            key: self.dir.join(key),
            key_and_cert,
        })
    }
}
