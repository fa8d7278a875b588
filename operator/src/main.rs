//! `tributary-operator`: reconciles `KafkaConnect` and `Connector` resources.

use std::process::ExitCode;

use clap::{Parser, Subcommand};

#[derive(Debug, Parser)]
#[command(
    name = "tributary-operator",
    version,
    about = "Kubernetes operator for Kafka Connect clusters and connectors"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the controllers against the cluster of the current kubeconfig or service account.
    Run {
        /// Watch only these namespaces (repeat the flag or separate with commas); all when
        /// absent.
        #[arg(
            long = "namespace",
            env = "TRIBUTARY_WATCH_NAMESPACES",
            value_delimiter = ','
        )]
        namespaces: Vec<String>,
        /// Where `/metrics`, `/healthz` and `/readyz` are served.
        #[arg(
            long,
            env = "TRIBUTARY_OPERATOR_METRICS_ADDR",
            default_value = "0.0.0.0:8080"
        )]
        metrics_addr: std::net::SocketAddr,
    },
    /// Print the CustomResourceDefinitions and admission policies as YAML (what `make generate`
    /// writes to crds/ and the chart).
    Crd {
        /// `crds` or `policies` only.
        #[arg(long, value_parser = ["crds", "policies"])]
        only: Option<String>,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Crd { only } => match tributary_operator::crd::yaml(match only.as_deref() {
            Some("crds") => tributary_operator::crd::Documents::Crds,
            Some(_) => tributary_operator::crd::Documents::Policies,
            None => tributary_operator::crd::Documents::All,
        }) {
            Ok(text) => {
                print!("{text}");
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("error: {e}");
                ExitCode::FAILURE
            }
        },
        Command::Run {
            namespaces,
            metrics_addr,
        } => {
            init_logging();
            let runtime = match tokio::runtime::Runtime::new() {
                Ok(r) => r,
                Err(e) => {
                    eprintln!("error: cannot start the async runtime: {e}");
                    return ExitCode::FAILURE;
                }
            };
            match runtime.block_on(run(namespaces, metrics_addr)) {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => {
                    tracing::error!(error = %e, "tributary-operator stopped");
                    eprintln!("error: {e}");
                    ExitCode::FAILURE
                }
            }
        }
    }
}

fn init_logging() {
    let filter = tracing_subscriber::EnvFilter::try_from_env("TRIBUTARY_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .try_init();
}

async fn run(namespaces: Vec<String>, metrics_addr: std::net::SocketAddr) -> Result<(), String> {
    use std::sync::Arc;
    use tributary_operator::controller::{Context, kafka_connect};
    let client = kube::Client::try_default()
        .await
        .map_err(|e| format!("cannot reach the Kubernetes API: {e}"))?;
    // Fail early and clearly when the CRDs are missing or RBAC forbids reading them.
    let probe: kube::Api<tributary_operator::crd::KafkaConnect> = match namespaces.first() {
        Some(n) => kube::Api::namespaced(client.clone(), n),
        None => kube::Api::all(client.clone()),
    };
    probe
        .list(&kube::api::ListParams::default().limit(1))
        .await
        .map_err(|e| format!("cannot list kafkaconnects.tributary.dev (are the CRDs installed and RBAC granted? kubectl apply --server-side -f crds/tributary.dev.yaml): {e}"))?;
    let metrics = Arc::new(tributary_operator::metrics::Metrics::new());
    let ctx = Arc::new(Context::new(client, metrics.clone()));
    let listener = tokio::net::TcpListener::bind(metrics_addr)
        .await
        .map_err(|e| format!("cannot listen on {metrics_addr}: {e}"))?;
    let app = axum::Router::new()
        .route("/healthz", axum::routing::get(|| async { "ok" }))
        .route("/readyz", axum::routing::get(|| async { "ok" }))
        .route(
            "/metrics",
            axum::routing::get(move || {
                let m = metrics.clone();
                async move { m.encode() }
            }),
        );
    tokio::spawn(async move {
        if let Err(e) = axum::serve(listener, app).await {
            tracing::error!(error = %e, "metrics listener failed");
        }
    });
    tracing::info!(namespaces = ?namespaces, %metrics_addr, "tributary-operator running");
    if namespaces.is_empty() {
        kafka_connect::run(ctx, None).await;
    } else {
        let runs = namespaces
            .iter()
            .map(|n| kafka_connect::run(ctx.clone(), Some(n.as_str())));
        futures::future::join_all(runs).await;
    }
    tracing::info!("tributary-operator stopped");
    Ok(())
}
