//! `tributary-worker`: the Kafka Connect runtime.
//!
//! The command line follows Apache Kafka Connect's `connect-standalone` and `connect-distributed`
//! scripts so that existing deployment habits carry over: one worker properties file, plus the
//! connector properties files in standalone mode.

use std::path::{Path, PathBuf};

use std::process::ExitCode;

use clap::{Parser, Subcommand};
use tributary_worker::config::properties;
use tributary_worker::config::worker::{Mode as WorkerMode, WorkerConfig};
use tributary_worker::{distributed, standalone};

#[derive(Debug, Parser)]
#[command(
    name = "tributary-worker",
    version,
    about = "A Kafka Connect worker, compatible with Apache Kafka Connect"
)]
struct Cli {
    #[command(subcommand)]
    mode: Mode,
}

#[derive(Debug, Subcommand)]
enum Mode {
    /// Run alone, with source offsets in a local file (like `connect-standalone`).
    Standalone {
        /// Worker configuration in Java `.properties` syntax.
        worker_properties: PathBuf,
        /// Connector configurations to start, one `.properties` file each.
        connector_properties: Vec<PathBuf>,
    },
    /// Join the Connect cluster named by `group.id`, with state in Kafka topics (like
    /// `connect-distributed`).
    Distributed {
        /// Worker configuration in Java `.properties` syntax.
        worker_properties: PathBuf,
    },
    /// Ask the distributed worker running here to stop its work and leave the group, and wait
    /// until it has (the pod's preStop hook). The worker then waits for SIGTERM.
    Leave {
        /// The worker's health listener (`tributary.health.listener`).
        #[arg(long, default_value = "http://127.0.0.1:8084")]
        health_url: String,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let (mode, worker_file, connector_files): (WorkerMode, &Path, &[PathBuf]) = match &cli.mode {
        Mode::Standalone {
            worker_properties,
            connector_properties,
        } => (
            WorkerMode::Standalone,
            worker_properties,
            connector_properties,
        ),
        Mode::Distributed { worker_properties } => {
            (WorkerMode::Distributed, worker_properties, &[])
        }
        Mode::Leave { health_url } => return leave(health_url),
    };
    init_logging();
    let worker_props = match properties::load(worker_file) {
        Ok(p) => properties::to_map(&p),
        Err(err) => {
            eprintln!("error: {err}");
            return ExitCode::from(2);
        }
    };
    let mut connectors = Vec::new();
    for file in connector_files {
        match properties::load(file) {
            Ok(p) => connectors.push((file.clone(), properties::to_map(&p))),
            Err(err) => {
                eprintln!("error: {err}");
                return ExitCode::from(2);
            }
        }
    }
    if let Err(errors) = WorkerConfig::parse(mode, &worker_props) {
        eprintln!(
            "error: {} is not a valid worker configuration:",
            worker_file.display()
        );
        for e in errors {
            eprintln!("  {e}");
        }
        return ExitCode::from(2);
    }
    // Java resolves config-provider placeholders in the worker config itself (an advertised
    // host name from `${env:...}`, a password from a file): read the settings from the resolved
    // values, once the raw ones are known to be well-formed.
    let resolved =
        tributary_worker::config::providers::Providers::from_worker_config(&worker_props)
            .and_then(|p| p.resolve(&worker_props));
    let config = match resolved.map(|r| WorkerConfig::parse(mode, &r)) {
        Ok(Ok(c)) => c,
        Ok(Err(errors)) => {
            eprintln!(
                "error: {} is not a valid worker configuration once its config-provider placeholders are resolved:",
                worker_file.display()
            );
            for e in errors {
                eprintln!("  {e}");
            }
            return ExitCode::from(2);
        }
        Err(e) => {
            eprintln!("error: {}: {e}", worker_file.display());
            return ExitCode::from(2);
        }
    };
    for key in &config.unknown_keys {
        tracing::warn!(file = %worker_file.display(), key, "unknown worker setting (ignored)");
    }
    if let Some(reason) = config.unsupported() {
        eprintln!("error: {reason}");
        return ExitCode::from(2);
    }
    let Some(runtime) = runtime(tokio::runtime::Builder::new_multi_thread().worker_threads(2))
    else {
        return ExitCode::FAILURE;
    };
    let run = async {
        match mode {
            WorkerMode::Standalone => standalone::run(config, worker_props, connectors).await,
            WorkerMode::Distributed => distributed::run(config, worker_props).await,
        }
    };
    match runtime.block_on(run) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!(error = %e, "worker failed");
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

/// Structured logs on stderr: `TRIBUTARY_LOG` (or `RUST_LOG`) filters, `TRIBUTARY_LOG_FORMAT=json`
/// switches to one JSON object per line for log collectors. The filter is reloadable, so
/// `/admin/loggers` can change levels at run time.
fn init_logging() {
    use tracing_subscriber::layer::SubscriberExt;
    use tracing_subscriber::util::SubscriberInitExt;
    let base = std::env::var("TRIBUTARY_LOG")
        .or_else(|_| std::env::var("RUST_LOG"))
        .ok()
        .filter(|d| tracing_subscriber::EnvFilter::try_new(d).is_ok())
        .unwrap_or_else(|| "info".into());
    let (filter, handle) =
        tracing_subscriber::reload::Layer::new(tracing_subscriber::EnvFilter::new(&base));
    let fmt = tracing_subscriber::fmt::layer()
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()));
    let registry = tracing_subscriber::registry().with(filter);
    if std::env::var("TRIBUTARY_LOG_FORMAT").is_ok_and(|f| f == "json") {
        registry.with(fmt.json()).init();
    } else {
        registry.with(fmt).init();
    }
    tributary_worker::logging::install(handle, base);
}

/// `tributary-worker leave`: POSTs `/leave` and reports the answer; no timeout of its own, as
/// the kubelet bounds the hook by the pod's grace period.
fn leave(health_url: &str) -> ExitCode {
    let Some(runtime) = runtime(&mut tokio::runtime::Builder::new_current_thread()) else {
        return ExitCode::FAILURE;
    };
    let url = format!("{}/leave", health_url.trim_end_matches('/'));
    let outcome = runtime.block_on(async {
        let reply = reqwest::Client::new().post(&url).send().await?;
        let status = reply.status();
        Ok::<_, reqwest::Error>((status, reply.text().await.unwrap_or_default()))
    });
    match outcome {
        Ok((status, body)) if status.is_success() => {
            println!("{body}");
            ExitCode::SUCCESS
        }
        Ok((status, body)) => {
            eprintln!("error: POST {url}: {status}: {body}");
            ExitCode::FAILURE
        }
        Err(e) => {
            eprintln!("error: POST {url}: {e}");
            ExitCode::FAILURE
        }
    }
}

/// The runtime `builder` makes, or `None` after saying why not.
fn runtime(builder: &mut tokio::runtime::Builder) -> Option<tokio::runtime::Runtime> {
    match builder.enable_all().build() {
        Ok(r) => Some(r),
        Err(e) => {
            eprintln!("error: cannot start the runtime: {e}");
            None
        }
    }
}
