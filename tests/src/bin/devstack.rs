//! `devstack`: the real components of Tributary's tests and demo, in one process group.
//!
//! `devstack up` starts them, writes an env file with every endpoint, and runs until Ctrl-C,
//! SIGTERM, `devstack down`, or (with `--control-stdin`) the end of its standard input. Every
//! child dies with it, even when it is killed with SIGKILL.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use clap::{Args, Parser, Subcommand};
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use tokio::io::AsyncBufReadExt;
use tokio::signal::unix::{SignalKind, signal};
use tributary_tests::env_file;
use tributary_tests::installed::Installed;
use tributary_tests::stack::{Options, Stack};

#[derive(Debug, Parser)]
#[command(
    name = "devstack",
    version,
    about = "Start the real components Tributary is tested against"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Start the stack and stay in the foreground until stopped.
    Up(UpArgs),
    /// Stop the stack whose env file is given.
    Down {
        /// Env file written by `devstack up`.
        #[arg(long, env = "TRIBUTARY_DEVSTACK_ENV")]
        env_file: Option<PathBuf>,
    },
}

#[derive(Debug, Args)]
struct UpArgs {
    /// Kafka nodes (combined broker and controller): 1 or 3.
    #[arg(long, default_value_t = 1, value_parser = parse_kafka_nodes)]
    kafka_nodes: usize,
    /// Run the 3.x compatibility broker instead of the current one.
    #[arg(long)]
    kafka_compat: bool,
    /// Do not start etcd, kube-apiserver and kube-controller-manager.
    #[arg(long)]
    no_kube: bool,
    /// Give Kafka listeners on the pod network (the `tribbr0` bridge) even with --no-kube, for
    /// workers run in network namespaces of their own.
    #[arg(long)]
    pod_network: bool,
    /// First pod address index of the pod runner (a second stack with kube on the machine
    /// needs one past the first's pods).
    #[arg(long, default_value_t = 0)]
    pod_ip_offset: u32,
    /// Network namespace the operator under test runs in.
    #[arg(long, default_value = "trib-operator")]
    operator_netns: String,
    /// Do not start PostgreSQL.
    #[arg(long)]
    no_postgres: bool,
    /// Also start the Java Kafka Connect worker (distributed mode).
    #[arg(long)]
    java_connect: bool,
    /// Where to write the env file.
    #[arg(long, env = "TRIBUTARY_DEVSTACK_ENV")]
    env_file: Option<PathBuf>,
    /// State and logs folder (default: a new folder under the temp dir).
    #[arg(long)]
    dir: Option<PathBuf>,
    /// Keep the state and logs folder after a clean stop (it is always kept after a failure).
    #[arg(long)]
    keep: bool,
    /// Remove the --dir folder itself after a clean stop (for the testkit, whose folder also
    /// holds this process's own log).
    #[arg(long, requires = "dir")]
    remove_dir: bool,
    /// Stop when the parent process dies (for scripts).
    #[arg(long)]
    exit_with_parent: bool,
    /// Read commands from standard input (`stop <component>`, `start kafka-<n>`), and stop at its end (for the
    /// testkit: the stack then dies with the test process, however that ends).
    #[arg(long)]
    control_stdin: bool,
}

fn parse_kafka_nodes(s: &str) -> Result<usize, String> {
    match s {
        "1" => Ok(1),
        "3" => Ok(3),
        _ => Err(format!(
            "{s} nodes: a devstack Kafka cluster has 1 or 3 nodes"
        )),
    }
}

fn default_env_file() -> PathBuf {
    Installed::locate().cache.join("devstack/devstack.env")
}

fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .init();
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Up(args) => up(args),
        Command::Down { env_file } => down(&env_file.unwrap_or_else(default_env_file)),
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("devstack: error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn up(args: UpArgs) -> Result<ExitCode> {
    if args.exit_with_parent {
        nix::sys::prctl::set_pdeathsig(Signal::SIGTERM)?;
    }
    let env_path = args.env_file.clone().unwrap_or_else(default_env_file);
    if let Ok(existing) = env_file::read(&env_path) {
        let running = existing
            .get("TRIBUTARY_DEVSTACK_PID")
            .and_then(|p| p.parse::<i32>().ok())
            .filter(|pid| kill(Pid::from_raw(*pid), None).is_ok());
        if let Some(pid) = running {
            bail!(
                "a devstack (pid {pid}) already uses {}; stop it with `devstack down --env-file {0}` or pass another --env-file",
                env_path.display()
            );
        }
        let _ = std::fs::remove_file(&env_path);
    }
    let dir = match &args.dir {
        Some(d) => {
            std::fs::create_dir_all(d)?;
            d.clone()
        }
        None => tempfile::Builder::new()
            .prefix("tributary-devstack-")
            .tempdir()?
            .keep(),
    };
    // PostgreSQL runs as an unprivileged user, who must be able to walk into the folder.
    std::fs::set_permissions(&dir, std::os::unix::fs::PermissionsExt::from_mode(0o755))?;
    let opts = Options {
        kafka_nodes: args.kafka_nodes,
        kafka_compat: args.kafka_compat,
        kube: !args.no_kube,
        pod_network: args.pod_network,
        postgres: !args.no_postgres,
        java_connect: args.java_connect,
        pod_ip_offset: args.pod_ip_offset,
        operator_netns: args.operator_netns.clone(),
    };
    // One thread for the whole stack: children die with the thread that spawned them.
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let mut stack = Stack::new(&dir);
    let started = Instant::now();
    let outcome = rt.block_on(run(&mut stack, &opts, &args, &env_path, started));
    let _ = std::fs::remove_file(&env_path);
    tracing::info!("stopping");
    stack.shutdown();
    let failed = match &outcome {
        Ok(failed) => *failed,
        Err(e) => {
            eprintln!("devstack: error: {e:#}");
            true
        }
    };
    if failed || args.keep {
        eprintln!("devstack: logs and state kept in {}", dir.display());
    } else if args.dir.is_none() || args.remove_dir {
        let _ = std::fs::remove_dir_all(&dir);
    }
    Ok(if failed {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    })
}

/// Starts the stack and serves until told to stop. Returns whether a component failed.
async fn run(
    stack: &mut Stack,
    opts: &Options,
    args: &UpArgs,
    env_path: &Path,
    started: Instant,
) -> Result<bool> {
    let mut sigint = signal(SignalKind::interrupt())?;
    let mut sigterm = signal(SignalKind::terminate())?;
    tokio::select! {
        r = stack.up(opts) => r?,
        _ = sigint.recv() => bail!("interrupted while starting"),
        _ = sigterm.recv() => bail!("terminated while starting"),
    }
    env_file::write(env_path, &stack.env()?)?;
    let mut out = std::io::stdout();
    let _ = writeln!(out, "{}", stack.summary(env_path));
    let _ = writeln!(
        out,
        "ready in {:.1} s; press Ctrl-C to stop",
        started.elapsed().as_secs_f64()
    );
    let _ = out.flush();

    let mut stdin = tokio::io::BufReader::new(tokio::io::stdin()).lines();
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    let mut failed = false;
    loop {
        tokio::select! {
            _ = sigint.recv() => break,
            _ = sigterm.recv() => break,
            line = stdin.next_line(), if args.control_stdin => match line {
                Ok(Some(line)) => control(stack, line.trim()),
                _ => break,
            },
            _ = tick.tick() => {
                if let Some(r) = stack.pod_runner.as_mut() {
                    r.tick().await;
                }
                for name in stack.newly_failed() {
                    tracing::error!(component = %name, "component exited unexpectedly");
                    failed = true;
                }
            }
        }
    }
    Ok(failed)
}

fn control(stack: &mut Stack, line: &str) {
    match line.split_once(' ') {
        Some(("stop", name)) => match stack.kill_component(name.trim()) {
            Ok(()) => tracing::info!(component = name, "stopped on request"),
            Err(e) => tracing::warn!("{e}"),
        },
        Some(("start", name)) => match stack.start_component(name.trim()) {
            Ok(()) => tracing::info!(component = name, "started again on request"),
            Err(e) => tracing::warn!("{e:#}"),
        },
        _ if line.is_empty() => {}
        _ => tracing::warn!(
            command = line,
            "unknown control command (known: `stop <component>`, `start kafka-<n>`)"
        ),
    }
}

fn down(env_path: &Path) -> Result<ExitCode> {
    let env = env_file::read(env_path).with_context(|| {
        format!(
            "no running devstack found (no env file at {})",
            env_path.display()
        )
    })?;
    let pid: i32 = env
        .get("TRIBUTARY_DEVSTACK_PID")
        .and_then(|p| p.parse().ok())
        .context("the env file has no TRIBUTARY_DEVSTACK_PID")?;
    let pid = Pid::from_raw(pid);
    if kill(pid, Signal::SIGTERM).is_err() {
        let _ = std::fs::remove_file(env_path);
        eprintln!("devstack: pid {pid} is not running; removed the stale env file");
        return Ok(ExitCode::SUCCESS);
    }
    let deadline = Instant::now() + Duration::from_secs(60);
    while kill(pid, None).is_ok() {
        if Instant::now() > deadline {
            let _ = kill(pid, Signal::SIGKILL);
            bail!("devstack (pid {pid}) did not stop within 60 s; killed it");
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    eprintln!("devstack: stopped (pid {pid})");
    Ok(ExitCode::SUCCESS)
}
