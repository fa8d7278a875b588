//! The Helm chart as a user meets it: `helm lint --strict` is clean, wrong values are refused
//! naming the key, and what it renders is admitted by the devstack's real apiserver — in a
//! namespace that enforces the restricted Pod Security Standard, with no warning.

use std::process::{Command, Output};

use anyhow::{Result, ensure};
use tributary_tests::Devstack;
use tributary_tests::operator::repo;

fn helm(stack: &Devstack, args: &[&str]) -> Result<Output> {
    Ok(Command::new(stack.var("TRIBUTARY_HELM")?)
        .args(args)
        .output()?)
}

fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

fn chart() -> String {
    repo().join("charts/tributary").display().to_string()
}

/// `helm template` of the chart into `ns` with `sets`.
fn template(stack: &Devstack, ns: &str, sets: &[&str]) -> Result<Output> {
    let k8s = tributary_tests::installed::Versions::pinned().k8s;
    let chart = chart();
    let mut args = vec![
        "template",
        "t",
        chart.as_str(),
        "-n",
        ns,
        "--kube-version",
        &k8s,
    ];
    for s in sets {
        args.extend(["--set", s]);
    }
    helm(stack, &args)
}

#[test]
fn the_chart_lints_clean_and_refuses_wrong_values_naming_the_key() -> Result<()> {
    let stack = Devstack::shared()?;
    let lint = helm(stack, &["lint", "--strict", &chart()])?;
    ensure!(lint.status.success(), "helm lint --strict: {}", text(&lint));

    for (set, says) in [
        ("replicas=two", "/replicas"),
        ("replicas=0", "/replicas"),
        ("watchNamespaces={Not_A_Namespace}", "/watchNamespaces/0"),
        ("networkPolicy=false", "'networkPolicy' not allowed"),
        ("image.pullPolicy=Sometimes", "/image/pullPolicy"),
        ("serviceMonitor.interval=often", "/serviceMonitor/interval"),
    ] {
        let out = template(stack, "tributary-system", &[set])?;
        ensure!(!out.status.success(), "--set {set} was accepted");
        ensure!(
            text(&out).contains(says),
            "--set {set}: the error does not name {says}: {}",
            text(&out)
        );
    }
    Ok(())
}

#[tokio::test]
async fn what_the_chart_renders_is_admitted_under_the_restricted_pod_security_standard()
-> Result<()> {
    let stack = Devstack::shared()?;
    let ns = stack.namespace("chart").await?;
    let watched = stack.namespace("chartw").await?;
    for (k, v) in [
        ("pod-security.kubernetes.io/enforce", "restricted"),
        ("pod-security.kubernetes.io/warn", "restricted"),
    ] {
        let out = stack.kubectl(
            &[
                "label",
                "namespace",
                &ns,
                &format!("{k}={v}"),
                "--overwrite",
            ],
            None,
        )?;
        ensure!(out.status.success(), "{}", text(&out));
    }
    for sets in [
        vec![],
        vec![
            format!("watchNamespaces={{{watched}}}"),
            "replicas=3".into(),
        ],
        vec![
            "crds.install=false".into(),
            "admissionPolicies=false".into(),
        ],
    ] {
        let sets: Vec<&str> = sets.iter().map(String::as_str).collect();
        let rendered = template(stack, &ns, &sets)?;
        ensure!(rendered.status.success(), "{:?}: {}", sets, text(&rendered));
        let yaml = String::from_utf8(rendered.stdout)?;
        // Server-side, as the tests install the CRDs (a client-side apply would only warn that
        // they lack its last-applied annotation).
        let out = stack.kubectl(
            &[
                "apply",
                "--server-side",
                "--force-conflicts",
                "--dry-run=server",
                "-f",
                "-",
            ],
            Some(&yaml),
        )?;
        ensure!(
            out.status.success(),
            "{sets:?}: kubectl apply --dry-run=server: {}",
            text(&out)
        );
        let said = text(&out);
        ensure!(
            !said.contains("PodSecurity") && !said.to_lowercase().contains("warning"),
            "{sets:?}: warnings: {said}"
        );
        let objects = said
            .lines()
            .filter(|l| l.contains("(server dry run)"))
            .count();
        ensure!(
            objects == yaml.matches("\nkind: ").count(),
            "{sets:?}: {objects} objects admitted of {}: {said}",
            yaml.matches("\nkind: ").count()
        );
        if sets.is_empty() {
            ensure!(
                yaml.matches("helm.sh/resource-policy: keep").count() == 2,
                "both CRDs are kept on uninstall"
            );
            ensure!(yaml.contains("kind: ClusterRoleBinding"), "all namespaces");
        } else if sets[0].starts_with("watchNamespaces") {
            ensure!(
                !yaml.contains("kind: ClusterRoleBinding")
                    && yaml.contains(&format!("namespace: {watched}")),
                "rights bound in the watched namespace only"
            );
        } else {
            ensure!(
                !yaml.contains("kind: CustomResourceDefinition")
                    && !yaml.contains("kind: ValidatingAdmissionPolicy"),
                "crds.install=false and admissionPolicies=false leave them out"
            );
        }
    }
    Ok(())
}

#[test]
fn the_install_bundle_is_the_rendered_chart_and_applies_with_kustomize() -> Result<()> {
    let stack = Devstack::shared()?;
    let fresh = Command::new(repo().join("tests/infra/render-install.sh"))
        .env("TRIBUTARY_HELM", stack.var("TRIBUTARY_HELM")?)
        .output()?;
    ensure!(
        fresh.status.success(),
        "render-install.sh: {}",
        text(&fresh)
    );
    let committed = std::fs::read(repo().join("manifests/install/tributary.yaml"))?;
    ensure!(
        committed == fresh.stdout,
        "manifests/install/tributary.yaml is stale: run `make generate`"
    );
    // The namespace is created for real (a dry run cannot hold objects in a namespace it only
    // pretended to create); everything else is a server-side dry run.
    let bundle = String::from_utf8(fresh.stdout)?;
    let namespace = bundle
        .split("\n---\n")
        .find(|d| d.contains("kind: Namespace"))
        .unwrap_or_default()
        .to_string();
    let out = stack.kubectl(&["apply", "--server-side", "-f", "-"], Some(&namespace))?;
    ensure!(out.status.success(), "the namespace: {}", text(&out));
    let dir = repo().join("manifests/install").display().to_string();
    let out = stack.kubectl(
        &[
            "apply",
            "--server-side",
            "--force-conflicts",
            "--dry-run=server",
            "-k",
            &dir,
        ],
        None,
    )?;
    ensure!(out.status.success(), "kubectl apply -k: {}", text(&out));
    let said = text(&out);
    ensure!(!said.contains("Warning"), "warnings: {said}");
    let admitted = said
        .lines()
        .filter(|l| l.contains("(server dry run)"))
        .count();
    ensure!(
        admitted == bundle.matches("\nkind: ").count(),
        "{admitted} objects admitted: {said}"
    );
    Ok(())
}

#[test]
fn the_argo_cd_config_map_carries_the_health_script_for_both_kinds() -> Result<()> {
    let script = std::fs::read_to_string(repo().join("manifests/argocd/health.lua"))?;
    let cm = std::fs::read_to_string(repo().join("manifests/argocd/argocd-cm.yaml"))?;
    let doc: serde_json::Value = yaml_serde::from_str(&cm)?;
    for kind in ["KafkaConnect", "Connector"] {
        let key = format!("resource.customizations.health.tributary.dev_{kind}");
        ensure!(
            doc["data"][&key].as_str() == Some(script.as_str()),
            "manifests/argocd/argocd-cm.yaml: {key} differs from health.lua"
        );
    }
    // Resources without a status yet wait for the operator.
    let (status, _) = tributary_tests::argocd::health(&serde_json::json!({
        "metadata": {"name": "x", "generation": 1}
    }))?;
    ensure!(status == "Progressing", "{status}");
    Ok(())
}
