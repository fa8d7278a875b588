//! Child processes that cannot outlive their owner.
//!
//! Every child gets `PR_SET_PDEATHSIG(SIGKILL)`, so even when the owner is killed with SIGKILL
//! the kernel takes its children down with it. The signal fires when the *thread* that spawned
//! the child exits, so owners spawn from a thread that lives as long as they do (the devstack's
//! main thread; a test's own thread for test-owned processes).

use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;

/// A running child with its log file.
#[derive(Debug)]
pub struct Managed {
    pub name: String,
    pub log: PathBuf,
    child: Child,
    stop_signal: Signal,
    /// Set once the owner asked it to stop, so its exit is not reported as a failure.
    stopping: bool,
    exited: Option<std::process::ExitStatus>,
}

/// Spawns `cmd` with stdout and stderr appended to `<log_dir>/<name>.log`.
pub fn spawn(
    name: &str,
    cmd: &mut Command,
    log_dir: &Path,
    stop_signal: Signal,
) -> Result<Managed> {
    std::fs::create_dir_all(log_dir).with_context(|| format!("creating {}", log_dir.display()))?;
    let log = log_dir.join(format!("{name}.log"));
    let out = File::options()
        .create(true)
        .append(true)
        .open(&log)
        .with_context(|| format!("opening {}", log.display()))?;
    let err = out.try_clone()?;
    cmd.stdin(Stdio::null()).stdout(out).stderr(err);
    die_with_parent(cmd);
    let child = cmd
        .spawn()
        .with_context(|| format!("starting {name}: {cmd:?}"))?;
    tracing::debug!(name, pid = child.id(), log = %log.display(), "started");
    Ok(Managed {
        name: name.to_string(),
        log,
        child,
        stop_signal,
        stopping: false,
        exited: None,
    })
}

/// Arranges for the child to get SIGKILL when the spawning thread exits.
#[allow(unsafe_code)]
pub fn die_with_parent(cmd: &mut Command) {
    use std::os::unix::process::CommandExt;
    let parent = nix::unistd::getpid();
    // SAFETY: the closure only calls async-signal-safe functions (prctl, getppid, _exit).
    unsafe {
        cmd.pre_exec(move || {
            nix::sys::prctl::set_pdeathsig(Signal::SIGKILL).map_err(std::io::Error::from)?;
            // The parent may have died between fork and prctl; then nobody would kill us.
            if nix::unistd::getppid() != parent {
                nix::libc::_exit(1);
            }
            Ok(())
        });
    }
}

/// Runs a short command to completion with its output in the log, failing with the log's tail.
pub fn run_to_completion(
    name: &str,
    cmd: &mut Command,
    log_dir: &Path,
    timeout: Duration,
) -> Result<()> {
    let mut m = spawn(name, cmd, log_dir, Signal::SIGKILL)?;
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(status) = m.child.try_wait()? {
            if status.success() {
                return Ok(());
            }
            anyhow::bail!(
                "{name} failed ({status}); last lines of {}:\n{}",
                m.log.display(),
                tail(&m.log, 30)
            );
        }
        if Instant::now() > deadline {
            m.kill_now();
            anyhow::bail!(
                "{name} did not finish in {timeout:?}; last lines of {}:\n{}",
                m.log.display(),
                tail(&m.log, 30)
            );
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

impl Managed {
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Whether the child has exited, without waiting.
    pub fn poll_exit(&mut self) -> Option<std::process::ExitStatus> {
        if self.exited.is_none() {
            self.exited = self.child.try_wait().ok().flatten();
        }
        self.exited
    }

    /// True when the child exited although nobody asked it to.
    pub fn failed_unexpectedly(&mut self) -> bool {
        !self.stopping && self.poll_exit().is_some()
    }

    /// Kills the child at once (SIGKILL), the way a crash or `kill -9` would.
    pub fn kill_now(&mut self) {
        self.stopping = true;
        let _ = self.child.kill();
        self.exited = self.child.wait().ok();
    }

    /// Sends the stop signal without waiting, so many children can stop at once.
    pub fn request_stop(&mut self) {
        self.stopping = true;
        if self.poll_exit().is_none() {
            let _ = kill(Pid::from_raw(self.child.id() as i32), self.stop_signal);
        }
    }

    /// Waits for the exit asked for by [`Managed::request_stop`], killing the child at `deadline`.
    pub fn wait_stopped(&mut self, deadline: Instant) {
        if self.poll_exit().is_some() {
            return;
        }
        while Instant::now() < deadline {
            if self.poll_exit().is_some() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        tracing::warn!(name = %self.name, "did not stop in time; killing it");
        self.kill_now();
    }
}

impl Drop for Managed {
    fn drop(&mut self) {
        if self.poll_exit().is_none() {
            self.kill_now();
        }
    }
}

/// The last `n` lines of a log file, for error messages.
pub fn tail(path: &Path, n: usize) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}
