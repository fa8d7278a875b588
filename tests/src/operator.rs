//! Helpers for the operator's end-to-end tests: the CRDs installed, the Helm chart's RBAC and a
//! kubeconfig with its ServiceAccount's token (so the operator runs with exactly the verbs the
//! chart grants), and the operator binary.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, Result, ensure};
use serde_json::json;

use crate::{Devstack, unique_name};

/// The repository root.
pub fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_default()
}

/// kubectl that must succeed; its standard output.
pub fn kubectl_ok(stack: &Devstack, args: &[&str], stdin: Option<&str>) -> Result<String> {
    let out = stack.kubectl(args, stdin)?;
    ensure!(
        out.status.success(),
        "kubectl {args:?}: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    Ok(String::from_utf8_lossy(&out.stdout).to_string())
}

/// Applies `crds/tributary.dev.yaml` (CRDs and admission policies).
pub fn install_crds(stack: &Devstack) -> Result<()> {
    kubectl_ok(
        stack,
        &[
            "apply",
            "--server-side",
            "--force-conflicts",
            "-f",
            &repo().join("crds/tributary.dev.yaml").display().to_string(),
        ],
        None,
    )?;
    Ok(())
}

/// Installs the chart's ServiceAccount and RBAC in `ns` (a release of its own) and writes a
/// kubeconfig with that ServiceAccount's token. With `pod_network`, the kubeconfig reaches the
/// apiserver through the pod bridge (for an operator running in the `trib-operator` namespace).
pub fn chart_kubeconfig(
    stack: &Devstack,
    ns: &str,
    dir: &Path,
    pod_network: bool,
) -> Result<PathBuf> {
    let release = unique_name("t");
    let out = Command::new(stack.var("TRIBUTARY_HELM")?)
        .args(["template", &release])
        .arg(repo().join("charts/tributary"))
        .args(["--kube-version", &crate::installed::Versions::pinned().k8s])
        .args(["--namespace", ns])
        .args(["--show-only", "templates/serviceaccount.yaml"])
        .args(["--show-only", "templates/rbac.yaml"])
        .output()?;
    ensure!(
        out.status.success(),
        "helm template: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    kubectl_ok(
        stack,
        &["apply", "-n", ns, "-f", "-"],
        Some(&String::from_utf8(out.stdout)?),
    )?;
    let token = kubectl_ok(
        stack,
        &[
            "create",
            "token",
            &format!("{release}-tributary-operator"),
            "-n",
            ns,
            "--duration=2h",
        ],
        None,
    )?;
    let admin: serde_json::Value = serde_json::from_str(&kubectl_ok(
        stack,
        &[
            "config",
            "view",
            "--raw",
            "--minify",
            "--flatten",
            "-o",
            "json",
        ],
        None,
    )?)?;
    let mut cluster = admin["clusters"][0]["cluster"].clone();
    if pod_network {
        let server = cluster["server"].as_str().unwrap_or_default().to_string();
        let port = server.rsplit(':').next().unwrap_or_default().to_string();
        cluster["server"] = json!(format!("https://{}:{port}", crate::stack::pod_net::HOST_IP));
    }
    let config = json!({
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": "devstack", "cluster": cluster}],
        "users": [{"name": "operator", "user": {"token": token.trim()}}],
        "contexts": [{"name": "operator", "context": {"cluster": "devstack", "user": "operator", "namespace": ns}}],
        "current-context": "operator",
    });
    let path = dir.join(format!("operator-{release}.kubeconfig"));
    std::fs::write(&path, config.to_string())?;
    Ok(path)
}

/// `tributary-operator`, next to the test binary's folder (cargo builds it with the workspace).
pub fn operator_binary() -> Result<PathBuf> {
    let exe = std::env::current_exe()?;
    let dir = exe.parent();
    [dir, dir.and_then(Path::parent)]
        .into_iter()
        .flatten()
        .map(|d| d.join("tributary-operator"))
        .find(|c| c.exists())
        .context(
            "cannot find tributary-operator next to the test binary; run `cargo build --workspace`",
        )
}
