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
        /// Namespace of the leader-election Lease (defaults to the pod's own, `POD_NAMESPACE`).
        #[arg(long, env = "POD_NAMESPACE", default_value = "default")]
        lease_namespace: String,
        /// Name of the leader-election Lease; operators sharing it take turns.
        #[arg(long, default_value = "tributary-operator")]
        lease_name: String,
        /// Run without leader election (one operator only, e.g. on a laptop).
        #[arg(long)]
        no_leader_election: bool,
        /// Give each cluster a NetworkPolicy that admits only its workers and the operator to
        /// the REST port; `false` where the CNI does not enforce them or policies are managed
        /// elsewhere (the operator then deletes the ones it made).
        #[arg(long, env = "TRIBUTARY_NETWORK_POLICIES", default_value_t = true, action = clap::ArgAction::Set)]
        network_policies: bool,
    },
    /// Print the CustomResourceDefinitions and admission policies as YAML (what `make generate`
    /// writes to crds/ and the chart).
    Crd {
        /// `crds`, `policies`, or `chart-crds` (the CRDs as the Helm chart's template carries
        /// them) only.
        #[arg(long, value_parser = ["crds", "policies", "chart-crds"])]
        only: Option<String>,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Crd { only } => match tributary_operator::crd::yaml(match only.as_deref() {
            Some("crds") => tributary_operator::crd::Documents::Crds,
            Some("chart-crds") => tributary_operator::crd::Documents::ChartCrds,
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
            lease_namespace,
            lease_name,
            no_leader_election,
            network_policies,
        } => {
            let lease = (!no_leader_election).then_some((lease_namespace, lease_name));
            init_logging();
            // Few threads: the work is I/O. Blocking threads run DNS lookups (getaddrinfo) for
            // worker REST calls; capped, so a burst of reconciles cannot grow hundreds of
            // threads (and their malloc arenas).
            let runtime = match tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .max_blocking_threads(8)
                .enable_all()
                .build()
            {
                Ok(r) => r,
                Err(e) => {
                    eprintln!("error: cannot start the async runtime: {e}");
                    return ExitCode::FAILURE;
                }
            };
            match runtime.block_on(run(namespaces, metrics_addr, lease, network_policies)) {
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

/// This operator's name in the Lease and in Events: the pod name, else host and process.
fn identity() -> String {
    std::env::var("POD_NAME").unwrap_or_else(|_| {
        let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
            .map(|h| h.trim().to_string())
            .unwrap_or_else(|_| "operator".into());
        format!("{host}-{}", std::process::id())
    })
}

async fn run(
    namespaces: Vec<String>,
    metrics_addr: std::net::SocketAddr,
    lease: Option<(String, String)>,
    network_policies: bool,
) -> Result<(), String> {
    use std::sync::Arc;
    use tributary_operator::controller::{Context, connector, kafka_connect};
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
    let mut ctx = Context::new(client.clone(), metrics.clone(), Some(identity()));
    ctx.network_policies = network_policies;
    let ctx = Arc::new(ctx);
    let listener = tokio::net::TcpListener::bind(metrics_addr)
        .await
        .map_err(|e| format!("cannot listen on {metrics_addr}: {e}"))?;
    let app = axum::Router::new()
        .route("/healthz", axum::routing::get(|| async { "ok" }))
        .route("/readyz", axum::routing::get(|| async { "ok" }))
        .route(
            "/metrics",
            axum::routing::get(move |headers: axum::http::HeaderMap| {
                let m = metrics.clone();
                async move { tributary_operator::metrics::respond(&m, &headers) }
            }),
        );
    tokio::spawn(async move {
        if let Err(e) = axum::serve(listener, app).await {
            tracing::error!(error = %e, "metrics listener failed");
        }
    });
    tracing::info!(namespaces = ?namespaces, %metrics_addr, "tributary-operator running");
    let controllers = async {
        if namespaces.is_empty() {
            futures::join!(
                kafka_connect::run(ctx.clone(), None),
                connector::run(ctx.clone(), None)
            );
        } else {
            let runs = namespaces.iter().flat_map(|n| {
                [
                    futures::future::Either::Left(kafka_connect::run(
                        ctx.clone(),
                        Some(n.as_str()),
                    )),
                    futures::future::Either::Right(connector::run(ctx.clone(), Some(n.as_str()))),
                ]
            });
            futures::future::join_all(runs).await;
        }
    };
    let Some((lease_namespace, lease_name)) = lease else {
        controllers.await;
        tracing::info!("tributary-operator stopped");
        return Ok(());
    };
    // Leader election: only the holder of the Lease reconciles; the others wait to take over.
    let manager = kube_lease_manager::LeaseManagerBuilder::new(client, &lease_name)
        .with_namespace(&lease_namespace)
        .with_identity(identity())
        .with_duration(15)
        .with_grace(5)
        .build()
        .await
        .map_err(|e| format!("cannot use Lease {lease_namespace}/{lease_name}: {e}"))?;
    let (mut leading, lease_task) = manager.watch().await;
    tracing::info!(lease = %format!("{lease_namespace}/{lease_name}"), "waiting to lead");
    let waited = tokio::select! {
        r = leading.wait_for(|l| *l) => r.map(|_| ()).map_err(|e| e.to_string()),
        _ = tokio::signal::ctrl_c() => Err("stopped before leading".to_string()),
        () = sigterm() => Err("stopped before leading".to_string()),
    };
    if let Err(why) = waited {
        tracing::info!("{why}");
        return Ok(());
    }
    tracing::info!(identity = %identity(), "leading");
    let mut watch = leading.clone();
    let outcome = tokio::select! {
        () = controllers => Ok(()),
        _ = watch.wait_for(|l| !*l) => Err("lost the leader Lease; exiting so that the new leader alone reconciles".to_string()),
    };
    // Dropping the receivers releases the Lease, so a standby takes over at once.
    drop(watch);
    drop(leading);
    let _ = tokio::time::timeout(std::time::Duration::from_secs(5), lease_task).await;
    tracing::info!("tributary-operator stopped");
    outcome
}

async fn sigterm() {
    match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
        Ok(mut s) => {
            s.recv().await;
        }
        Err(_) => std::future::pending().await,
    }
}
