//! The Helm chart as a user meets it: `helm lint --strict` is clean, wrong values are refused
//! naming the key, and what it renders is admitted by the devstack's real apiserver — in a
//! namespace that enforces the restricted Pod Security Standard, with no warning.

use std::process::{Command, Output};

use anyhow::{Context, Result, ensure};
use tributary_tests::Devstack;
use tributary_tests::installed::Installed;
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
        ("replicas=-1", "/replicas"),
        ("watchNamespaces={Not_A_Namespace}", "/watchNamespaces/0"),
        ("networkPolicy=false", "'networkPolicy' not allowed"),
        ("image.pullPolicy=Sometimes", "/image/pullPolicy"),
        ("serviceMonitor.interval=often", "/serviceMonitor/interval"),
        ("prometheusRule.for=soon", "/prometheusRule/for"),
        ("podMonitor.enable=true", "'enable' not allowed"),
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
    // The Prometheus Operator's own CRDs, so its ServiceMonitor, PodMonitor and PrometheusRule
    // are checked against their real schemas.
    let crds = Installed::locate().monitoring_crds()?;
    let out = stack.kubectl(
        &[
            "apply",
            "--server-side",
            "--force-conflicts",
            "-f",
            &crds.display().to_string(),
        ],
        None,
    )?;
    ensure!(out.status.success(), "monitoring CRDs: {}", text(&out));
    for crd in [
        "servicemonitors.monitoring.coreos.com",
        "podmonitors.monitoring.coreos.com",
        "prometheusrules.monitoring.coreos.com",
    ] {
        let out = stack.kubectl(
            &[
                "wait",
                "--for=condition=Established",
                "--timeout=60s",
                &format!("crd/{crd}"),
            ],
            None,
        )?;
        ensure!(out.status.success(), "{crd}: {}", text(&out));
    }
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
        vec![
            "serviceMonitor.enabled=true".into(),
            "podMonitor.enabled=true".into(),
            "prometheusRule.enabled=true".into(),
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
        } else if sets[0].starts_with("serviceMonitor") {
            for kind in ["ServiceMonitor", "PodMonitor", "PrometheusRule"] {
                ensure!(
                    yaml.contains(&format!("kind: {kind}")),
                    "{kind} not rendered"
                );
            }
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

#[tokio::test]
async fn helm_install_reconciles_an_example_upgrade_updates_crds_and_values_uninstall_keeps_crds()
-> Result<()> {
    use k8s_openapi::api::apps::v1::Deployment;
    use k8s_openapi::api::networking::v1::NetworkPolicy;
    use kube::Api;
    use tributary_operator::crd::{Connector, KafkaConnect};
    use tributary_tests::operator::{
        install_crds, kafka_connect_manifest, service_account_kubeconfig,
        start_operator_as_deployed,
    };
    use tributary_tests::wait_until;
    const WAIT: std::time::Duration = std::time::Duration::from_secs(180);

    let stack = Devstack::shared()?;
    let dir = tempfile::tempdir()?;
    install_crds(stack)?;
    let ns = tributary_tests::operator::restricted_namespace(stack, "helm").await?;
    let release = tributary_tests::unique_name("rel");
    tributary_tests::operator::adopt_for_helm(stack, &release, &ns)?;
    let helm_in = |args: &[&str]| tributary_tests::operator::helm_in(stack, &ns, args);
    // The Deployment at 0: the pod runner plays the kubelet for workers only; the operator
    // runs here as a process, as the Deployment would run it.
    let watch = format!("watchNamespaces={{{ns}}}");
    let said = helm_in(&[
        "install",
        &release,
        &chart(),
        "--set",
        &watch,
        "--set",
        "replicas=0",
    ])?;
    ensure!(
        said.contains("kubectl wait"),
        "NOTES.txt says what to do next: {said}"
    );
    // Every object of the release exists.
    let manifest = helm_in(&["get", "manifest", &release])?;
    let out = stack.kubectl(&["get", "-f", "-", "-o", "name"], Some(&manifest))?;
    ensure!(
        out.status.success(),
        "objects of the release: {}",
        text(&out)
    );
    let listed = String::from_utf8_lossy(&out.stdout).lines().count();
    ensure!(
        listed == manifest.matches("\nkind: ").count() && listed >= 12,
        "{listed} objects: {}",
        text(&out)
    );

    let client = stack.kube_client().await?;
    let deployments: Api<Deployment> = Api::namespaced(client.clone(), &ns);
    let name = format!("{release}-tributary-operator");
    let sa_kubeconfig = service_account_kubeconfig(stack, &ns, &name, dir.path(), true)?;
    let mut operator =
        start_operator_as_deployed(&deployments.get(&name).await?, dir.path(), &sa_kubeconfig)?;

    // An example Connector, unchanged, on a cluster named as the examples expect.
    let cluster = kafka_connect_manifest(stack, "my-connect", 1)?;
    let out = stack.kubectl(&["apply", "-n", &ns, "-f", "-"], Some(&cluster))?;
    ensure!(out.status.success(), "{}", text(&out));
    let example = repo().join("manifests/examples/connector-datagen.yaml");
    let out = stack.kubectl(
        &["apply", "-n", &ns, "-f", &example.display().to_string()],
        None,
    )?;
    ensure!(out.status.success(), "{}", text(&out));
    let conns: Api<Connector> = Api::namespaced(client.clone(), &ns);
    let log = |op: &tributary_tests::stack::process::Managed| {
        tributary_tests::stack::process::tail(&op.log, 40)
    };
    wait_until("the example Connector Ready", WAIT, || async {
        let c = conns.get("datagen-users").await?;
        Ok(tributary_tests::argocd::health_of(&c)?
            .0
            .eq("Healthy")
            .then_some(()))
    })
    .await
    .with_context(|| log(&operator))?;
    // After reconciling, the live objects are what Git has: kubectl diff finds nothing.
    for (what, manifest) in [
        ("the example Connector", std::fs::read_to_string(&example)?),
        ("the KafkaConnect", cluster.clone()),
    ] {
        let out = stack.kubectl(&["diff", "-n", &ns, "-f", "-"], Some(&manifest))?;
        ensure!(
            out.status.success(),
            "{what} differs from its manifest after reconciling: {}",
            text(&out)
        );
    }
    let policies: Api<NetworkPolicy> = Api::namespaced(client.clone(), &ns);
    ensure!(
        !policies.list(&Default::default()).await?.items.is_empty(),
        "networkPolicies: true gives the cluster a NetworkPolicy"
    );

    // Upgrade with a changed CRD (a printer column renamed) and a changed value.
    let copy = dir.path().join("chart");
    let out = Command::new("cp")
        .arg("-r")
        .arg(chart())
        .arg(&copy)
        .output()?;
    ensure!(out.status.success(), "copying the chart");
    let crds = copy.join("templates/crds.yaml");
    let text_before = std::fs::read_to_string(&crds)?;
    ensure!(text_before.contains("name: Ready replicas"));
    std::fs::write(
        &crds,
        text_before.replace("name: Ready replicas", "name: Ready workers"),
    )?;
    helm_in(&[
        "upgrade",
        &release,
        &copy.display().to_string(),
        "--set",
        &watch,
        "--set",
        "replicas=0",
        "--set",
        "networkPolicies=false",
    ])?;
    let out = stack.kubectl(
        &[
            "get",
            "crd",
            "kafkaconnects.tributary.dev",
            "-o",
            "jsonpath={.spec.versions[0].additionalPrinterColumns[*].name}",
        ],
        None,
    )?;
    ensure!(
        String::from_utf8_lossy(&out.stdout).contains("Ready workers"),
        "helm upgrade updates the CRD: {}",
        text(&out)
    );
    operator.request_stop();
    operator.wait_stopped(std::time::Instant::now() + std::time::Duration::from_secs(30));
    let mut operator =
        start_operator_as_deployed(&deployments.get(&name).await?, dir.path(), &sa_kubeconfig)?;
    wait_until("the NetworkPolicy pruned", WAIT, || async {
        Ok(policies
            .list(&Default::default())
            .await?
            .items
            .is_empty()
            .then_some(()))
    })
    .await
    .with_context(|| log(&operator))?;
    operator.request_stop();

    // Uninstall: the CRDs and the resources stay.
    helm_in(&["uninstall", &release])?;
    let kcs: Api<KafkaConnect> = Api::namespaced(client.clone(), &ns);
    ensure!(
        kcs.get_opt("my-connect").await?.is_some(),
        "the KafkaConnect is kept"
    );
    ensure!(
        conns.get_opt("datagen-users").await?.is_some(),
        "the Connector is kept"
    );
    let out = stack.kubectl(
        &[
            "get",
            "crd",
            "kafkaconnects.tributary.dev",
            "connectors.tributary.dev",
        ],
        None,
    )?;
    ensure!(out.status.success(), "the CRDs are kept: {}", text(&out));
    ensure!(
        deployments.get_opt(&name).await?.is_none(),
        "the operator Deployment is gone"
    );
    // Back to the committed CRDs for the other tests; the namespace goes (its workers with it).
    install_crds(stack)?;
    tributary_tests::operator::delete_unwatched_namespace(stack, &ns)
}

#[test]
fn the_chart_readme_is_generated_from_values_and_documents_every_key() -> Result<()> {
    let helm_docs = tributary_tests::installed::Installed::locate().helm_docs()?;
    let out = Command::new(helm_docs)
        .args(["--dry-run", "--chart-search-root"])
        .arg(chart())
        .args(["--sort-values-order", "file", "--log-level", "warning"])
        .output()?;
    ensure!(out.status.success(), "helm-docs: {}", text(&out));
    let fresh = String::from_utf8(out.stdout)?;
    let committed = std::fs::read_to_string(repo().join("charts/tributary/README.md"))?;
    ensure!(
        committed.trim_end() == fresh.trim_end(),
        "charts/tributary/README.md is stale: run `make generate`"
    );
    let rows: Vec<&str> = fresh
        .lines()
        .filter(|l| l.starts_with("| ") && !l.starts_with("| Key"))
        .collect();
    ensure!(rows.len() >= 20, "{} values documented", rows.len());
    for row in rows {
        ensure!(
            !row.trim_end().ends_with("|  |"),
            "a value without a `# --` description: {row}"
        );
    }
    Ok(())
}
