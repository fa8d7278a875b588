//! `make bench-operator`: how fast the operator turns `kubectl apply` of Connector resources
//! into RUNNING connectors with `Ready=True`, and how much memory it needs for many of them.
//!
//! On a devstack with Kubernetes and the pod runner (attached through `TRIBUTARY_DEVSTACK_ENV`,
//! else started), the operator (the chart's RBAC, leader election on) and a 3-worker
//! KafkaConnect:
//!
//! - **apply → Ready**: 1, 10 and 100 datagen Connectors applied in one `kubectl apply`; the time
//!   from each resource's creation (its first watch event: kubectl creates them one at a time)
//!   until it shows `Ready=True` for its generation, p50 and p99; and from just before the apply
//!   until the last is Ready; then deleted;
//! - **memory**: `--many` Connectors (default 1000), created `state: stopped` on the cluster
//!   (the full path: REST create, polling, status; no tasks, which 2 cores could not run);
//!   the operator's peak RSS (`VmHWM`) once all are Ready, and its RSS then.
//!
//! Prints Markdown tables; docs/benchmarks.md keeps a run.

use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use kube::Api;
use kube::api::ListParams;
use tributary_operator::crd::Connector;
use tributary_tests::Devstack;
use tributary_tests::operator::{
    chart_kubeconfig, install_crds, kubectl_ok, start_operator_in_pod_network,
};

fn progress(msg: &str) {
    eprintln!("[bench-operator] {msg}");
}

fn ready(c: &Connector) -> bool {
    let st = c.status.as_ref();
    st.and_then(|s| s.observed_generation) == c.metadata.generation
        && st
            .and_then(|s| s.conditions.as_ref())
            .is_some_and(|c| c.iter().any(|c| c.type_ == "Ready" && c.status == "True"))
}

fn connectors(prefix: &str, n: usize, state: &str) -> String {
    tributary_tests::operator::datagen_connectors("bench", prefix, n, state)
}

fn apply(stack: &Devstack, ns: &str, yaml: &str) -> Result<()> {
    kubectl_ok(stack, &["apply", "-n", ns, "-f", "-"], Some(yaml)).map(|_| ())
}

/// (VmRSS, VmHWM, RssAnon, RssFile) of `pid`, in MiB: anonymous memory is what the operator
/// allocated, file memory the pages of its binary and libraries it touched.
fn rss(pid: u32) -> Result<(f64, f64, f64, f64)> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    let field = |name: &str| {
        status
            .lines()
            .find(|l| l.starts_with(name))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|v| v.parse::<f64>().ok())
            .map(|kb| kb / 1024.0)
            .unwrap_or(0.0)
    };
    Ok((
        field("VmRSS:"),
        field("VmHWM:"),
        field("RssAnon:"),
        field("RssFile:"),
    ))
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let i = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[i.clamp(1, sorted.len()) - 1]
}

/// When each Connector named `<prefix>-*` was first seen (created) and first Ready, from a
/// watch started before the apply (events arrive as the apiserver stores each change), until
/// `n` are Ready.
type Times = std::collections::BTreeMap<String, (Instant, Option<Instant>)>;

async fn watch_ready(
    api: Api<Connector>,
    prefix: String,
    n: usize,
    limit: Duration,
) -> Result<Times> {
    use futures::StreamExt;
    use kube::runtime::{WatchStreamExt, watcher};
    let started = Instant::now();
    let mut times = Times::new();
    let p = format!("{prefix}-");
    let mut events = std::pin::pin!(watcher(api, watcher::Config::default()).touched_objects());
    while times.values().filter(|t| t.1.is_some()).count() < n {
        let remaining = limit.saturating_sub(started.elapsed());
        let Ok(Some(event)) = tokio::time::timeout(remaining, events.next()).await else {
            bail!(
                "only {} of {n} Connectors Ready after {limit:?}",
                times.values().filter(|t| t.1.is_some()).count()
            );
        };
        let Ok(c) = event else { continue };
        let now = Instant::now();
        let name = c.metadata.name.clone().unwrap_or_default();
        if !name.starts_with(&p) {
            continue;
        }
        let entry = times.entry(name).or_insert((now, None));
        if entry.1.is_none() && ready(&c) {
            entry.1 = Some(now);
        }
    }
    Ok(times)
}

/// Applies `yaml` while watching: (seconds from just before the apply to each Ready, seconds
/// from each creation to its Ready), both sorted, and how long `kubectl apply` took.
async fn apply_and_time(
    stack: &Devstack,
    api: &Api<Connector>,
    ns: &str,
    prefix: &str,
    n: usize,
    yaml: &str,
    limit: Duration,
) -> Result<(Vec<f64>, Vec<f64>, f64)> {
    let watch = tokio::spawn(watch_ready(api.clone(), prefix.to_string(), n, limit));
    // Let the watch list what exists before anything is created.
    tokio::time::sleep(Duration::from_secs(1)).await;
    let t0 = Instant::now();
    tokio::task::block_in_place(|| apply(stack, ns, yaml))?;
    let applied = t0.elapsed().as_secs_f64();
    let times = watch.await??;
    let mut total = Vec::new();
    let mut own = Vec::new();
    for (seen, ready) in times.values() {
        if let Some(r) = ready {
            total.push(r.duration_since(t0).as_secs_f64());
            own.push(r.duration_since(*seen).as_secs_f64());
        }
    }
    total.sort_by(f64::total_cmp);
    own.sort_by(f64::total_cmp);
    Ok((total, own, applied))
}

async fn delete_all(stack: &Devstack, api: &Api<Connector>, ns: &str) -> Result<()> {
    kubectl_ok(
        stack,
        &[
            "delete",
            "-n",
            ns,
            "connectors.tributary.dev",
            "--all",
            "--wait=false",
        ],
        None,
    )?;
    let deadline = Instant::now() + Duration::from_secs(600);
    while !api.list(&ListParams::default()).await?.items.is_empty() {
        if Instant::now() > deadline {
            bail!("Connectors not gone after 10 minutes");
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    Ok(())
}

// Two threads: the watch must take each event as it comes while kubectl runs.
#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> Result<()> {
    let mut many = 1000usize;
    let mut latency = true;
    // What the chart's Deployment sets; `--operator-env` adds or overrides.
    let mut operator_env: Vec<(String, String)> = vec![("MALLOC_ARENA_MAX".into(), "2".into())];
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        match a.as_str() {
            "--many" => many = args.next().context("--many N")?.parse()?,
            "--memory-only" => latency = false,
            "--operator-env" => {
                let kv = args.next().context("--operator-env KEY=VALUE")?;
                let (k, v) = kv.split_once('=').context("--operator-env KEY=VALUE")?;
                operator_env.retain(|(key, _)| key != k);
                operator_env.push((k.to_string(), v.to_string()));
            }
            other => bail!(
                "unknown argument {other}; use --many N, --memory-only, --operator-env KEY=VALUE"
            ),
        }
    }
    let stack = Devstack::shared()?;
    let dir = tempfile::tempdir()?;
    install_crds(stack)?;
    let ns = stack.namespace("bench").await?;
    let kubeconfig = chart_kubeconfig(stack, &ns, dir.path(), true)?;
    let envs: Vec<(&str, &str)> = operator_env
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    let mut operator = start_operator_in_pod_network(&ns, dir.path(), &kubeconfig, &[], &envs)?;
    let client = stack.kube_client().await?;
    apply(
        stack,
        &ns,
        &tributary_tests::operator::kafka_connect_manifest(stack, "bench", 3)?,
    )?;
    progress("waiting for 3 workers");
    tributary_tests::operator::wait_kafka_connect_ready(
        &client,
        &ns,
        "bench",
        Duration::from_secs(300),
    )
    .await?;
    let api: Api<Connector> = Api::namespaced(client.clone(), &ns);

    let mut rows = Vec::new();
    let sizes: &[usize] = if latency { &[1, 10, 100] } else { &[] };
    for &n in sizes {
        let prefix = format!("lat{n}");
        progress(&format!("{n} Connectors: apply → Ready"));
        let yaml = connectors(&prefix, n, "running");
        let (total, own, applied) = apply_and_time(
            stack,
            &api,
            &ns,
            &prefix,
            n,
            &yaml,
            Duration::from_secs(300),
        )
        .await?;
        rows.push((
            n,
            applied,
            percentile(&own, 50.0),
            percentile(&own, 99.0),
            total.last().copied().unwrap_or(0.0),
        ));
        delete_all(stack, &api, &ns).await?;
    }

    progress(&format!(
        "{many} Connectors created stopped: operator memory"
    ));
    let (rss_before, _, _, _) = rss(operator.pid())?;
    let yaml = connectors("many", many, "stopped");
    let (times, _, _) = apply_and_time(
        stack,
        &api,
        &ns,
        "many",
        many,
        &yaml,
        Duration::from_secs(1800),
    )
    .await?;
    let (rss_after, hwm, anon, file) = rss(operator.pid())?;
    let all_ready = times.last().copied().unwrap_or(0.0);

    println!("\n### Connector apply → Ready (3 Tributary workers, datagen, 1 task each)\n");
    println!(
        "| Connectors | kubectl apply took (s) | p50 created → Ready (s) | p99 created → Ready (s) | apply start → all Ready (s) |"
    );
    println!("|---:|---:|---:|---:|---:|");
    for (n, applied, p50, p99, max) in rows {
        println!("| {n} | {applied:.2} | {p50:.2} | {p99:.2} | {max:.2} |");
    }
    println!(
        "\n### Operator memory with {many} Connectors (created `state: stopped`: on the cluster, no tasks)\n"
    );
    println!(
        "| RSS before (MiB) | RSS after (MiB) | of which anonymous / file (MiB) | peak RSS (MiB) | all Ready after (s) |"
    );
    println!("|---:|---:|---:|---:|---:|");
    println!(
        "| {rss_before:.1} | {rss_after:.1} | {anon:.1} / {file:.1} | {hwm:.1} | {all_ready:.1} |"
    );
    delete_all(stack, &api, &ns).await?;
    operator.request_stop();
    Ok(())
}
