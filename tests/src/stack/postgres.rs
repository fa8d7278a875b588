//! PostgreSQL from Debian's packages, run as an unprivileged user (the server refuses to run as
//! root): `nobody` when the stack runs as root, the current user otherwise.

use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use nix::sys::signal::Signal;
use nix::unistd::{Uid, User, chown};

use super::ports::free_ports;
use super::process::{Managed, run_to_completion, spawn, tail};
use super::random::random_hex;
use crate::installed::Installed;

pub const USER: &str = "tributary";
pub const DATABASE: &str = "tributary";

#[derive(Debug)]
pub struct Postgres {
    pub port: u16,
    pub password: String,
    pub process: Managed,
    pub socket_dir: PathBuf,
}

/// The user to run as, when we must drop root.
fn run_as() -> Result<Option<User>> {
    if !Uid::effective().is_root() {
        return Ok(None);
    }
    User::from_name("nobody")?
        .map(Some)
        .context("PostgreSQL cannot run as root and there is no `nobody` user to run it as")
}

fn chown_all(path: &Path, user: &User) -> Result<()> {
    chown(path, Some(user.uid), Some(user.gid))
        .with_context(|| format!("chown {}", path.display()))?;
    if path.is_dir() {
        for entry in std::fs::read_dir(path)? {
            chown_all(&entry?.path(), user)?;
        }
    }
    Ok(())
}

impl Postgres {
    pub fn start(installed: &Installed, dir: &Path, log_dir: &Path) -> Result<Self> {
        let bin = installed.postgres_bin()?;
        let user = run_as()?;
        let data = dir.join("data");
        let socket_dir = dir.join("socket");
        std::fs::create_dir_all(&socket_dir)?;
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o755))?;
        let password = random_hex(12)?;
        let pwfile = dir.join("pwfile");
        std::fs::write(&pwfile, &password)?;
        if let Some(u) = &user {
            chown_all(dir, u)?;
        }
        let as_user = |cmd: &mut Command| {
            cmd.current_dir(dir).env_remove("PGDATA");
            if let Some(u) = &user {
                cmd.uid(u.uid.as_raw()).gid(u.gid.as_raw()).env("HOME", dir);
            }
        };

        let mut initdb = Command::new(bin.join("initdb"));
        initdb
            .arg("-D")
            .arg(&data)
            .args([
                "-U",
                USER,
                "--auth=scram-sha-256",
                "-E",
                "UTF8",
                "--locale=C",
                "--no-sync",
            ])
            .arg(format!("--pwfile={}", pwfile.display()));
        as_user(&mut initdb);
        run_to_completion(
            "postgres-initdb",
            &mut initdb,
            log_dir,
            Duration::from_secs(120),
        )?;
        std::fs::remove_file(&pwfile)?;

        let port = free_ports(1)?[0];
        let mut server = Command::new(bin.join("postgres"));
        server
            .arg("-D")
            .arg(&data)
            .arg("-p")
            .arg(port.to_string())
            .arg("-k")
            .arg(&socket_dir)
            .args([
                "-c",
                "listen_addresses=127.0.0.1",
                "-c",
                "fsync=off",
                "-c",
                "synchronous_commit=off",
            ])
            .args([
                "-c",
                "full_page_writes=off",
                "-c",
                "max_connections=200",
                "-c",
                "shared_buffers=64MB",
            ]);
        as_user(&mut server);
        // Smart shutdown (SIGTERM) waits for clients to leave; fast shutdown does not.
        let process = spawn("postgres", &mut server, log_dir, Signal::SIGINT)?;
        Ok(Self {
            port,
            password,
            process,
            socket_dir,
        })
    }

    pub fn url(&self) -> String {
        format!(
            "postgres://{USER}:{}@127.0.0.1:{}/{DATABASE}",
            self.password, self.port
        )
    }

    /// Waits until the server accepts an authenticated connection, then creates the database.
    pub async fn wait_ready(&mut self, timeout: Duration) -> Result<()> {
        let deadline = Instant::now() + timeout;
        let admin_url = format!(
            "postgres://{USER}:{}@127.0.0.1:{}/postgres",
            self.password, self.port
        );
        loop {
            if let Some(status) = self.process.poll_exit() {
                bail!(
                    "postgres exited ({status}); last lines of {}:\n{}",
                    self.process.log.display(),
                    tail(&self.process.log, 40)
                );
            }
            match tokio_postgres::connect(&admin_url, tokio_postgres::NoTls).await {
                Ok((client, conn)) => {
                    tokio::spawn(conn);
                    client
                        .batch_execute(&format!("CREATE DATABASE {DATABASE}"))
                        .await
                        .context("creating the devstack database")?;
                    return Ok(());
                }
                Err(e) if Instant::now() > deadline => {
                    bail!(
                        "PostgreSQL was not ready within {timeout:?}: {e}; see {}",
                        self.process.log.display()
                    )
                }
                Err(_) => tokio::time::sleep(Duration::from_millis(200)).await,
            }
        }
    }
}
