use std::time::Duration;

use anyhow::{Result, bail};
use k8s_openapi::api::apps::v1::{Deployment, ReplicaSet};
use k8s_openapi::api::core::v1::{ConfigMap, Pod};
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{Api, DeleteParams, DynamicObject, ListParams, PostParams};
use kube::discovery::ApiResource;
use serde_json::json;
use tributary_tests::{Devstack, unique_name, wait_until};

const WAIT: Duration = Duration::from_secs(120);

fn from_json<T: serde::de::DeserializeOwned>(v: serde_json::Value) -> Result<T> {
    Ok(serde_json::from_value(v)?)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_crd_with_a_cel_rule_admits_and_rejects() -> Result<()> {
    let stack = Devstack::shared()?;
    let client = stack.kube_client().await?;
    let ns = stack.namespace("smoke-crd").await?;
    let group = format!("{}.smoke.tributary.dev", unique_name("g"));
    let crd_name = format!("widgets.{group}");
    let rule_message = "spec.replicas must not exceed spec.maxReplicas";
    let crd: CustomResourceDefinition = from_json(json!({
        "metadata": {"name": crd_name},
        "spec": {
            "group": group,
            "scope": "Namespaced",
            "names": {"kind": "Widget", "plural": "widgets", "singular": "widget"},
            "versions": [{
                "name": "v1", "served": true, "storage": true,
                "schema": {"openAPIV3Schema": {"type": "object", "properties": {"spec": {
                    "type": "object",
                    "required": ["replicas", "maxReplicas"],
                    "properties": {"replicas": {"type": "integer"}, "maxReplicas": {"type": "integer"}},
                    "x-kubernetes-validations": [{"rule": "self.replicas <= self.maxReplicas", "message": rule_message}]
                }}}}
            }]
        }
    }))?;
    let crds: Api<CustomResourceDefinition> = Api::all(client.clone());
    crds.create(&PostParams::default(), &crd).await?;
    wait_until("the CRD to be Established", WAIT, || {
        let crds = crds.clone();
        let name = crd_name.clone();
        async move {
            let crd = crds.get(&name).await?;
            let established = crd
                .status
                .and_then(|s| s.conditions)
                .into_iter()
                .flatten()
                .any(|c| c.type_ == "Established" && c.status == "True");
            Ok(established.then_some(()))
        }
    })
    .await?;

    let resource = ApiResource {
        group: group.clone(),
        version: "v1".into(),
        api_version: format!("{group}/v1"),
        kind: "Widget".into(),
        plural: "widgets".into(),
    };
    let widgets: Api<DynamicObject> = Api::namespaced_with(client.clone(), &ns, &resource);
    let widget = |name: &str, replicas: i64| -> Result<DynamicObject> {
        from_json(
            json!({"apiVersion": format!("{group}/v1"), "kind": "Widget", "metadata": {"name": name},
            "spec": {"replicas": replicas, "maxReplicas": 3}}),
        )
    };
    // Discovery of a new CRD can lag its Established condition by a moment.
    let good = widget("good", 2)?;
    wait_until("a valid Widget to be created", WAIT, || {
        let (widgets, good) = (widgets.clone(), good.clone());
        async move {
            Ok(widgets
                .create(&PostParams::default(), &good)
                .await
                .ok()
                .map(|_| ()))
        }
    })
    .await?;
    let read = widgets.get("good").await?;
    assert_eq!(read.data["spec"]["replicas"], 2);
    assert_eq!(read.data["spec"]["maxReplicas"], 3);

    match widgets
        .create(&PostParams::default(), &widget("bad", 5)?)
        .await
    {
        Ok(_) => bail!("a Widget violating the CEL rule was admitted"),
        Err(kube::Error::Api(status)) => {
            assert_eq!(status.code, 422, "{status:?}");
            assert!(
                status.message.contains(rule_message),
                "rejection message: {}",
                status.message
            );
        }
        Err(e) => bail!("unexpected error: {e}"),
    }
    crds.delete(&crd_name, &DeleteParams::default()).await?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_controller_manager_turns_a_deployment_into_a_replicaset_and_pods() -> Result<()> {
    let stack = Devstack::shared()?;
    let client = stack.kube_client().await?;
    let ns = stack.namespace("smoke-deploy").await?;
    let deployments: Api<Deployment> = Api::namespaced(client.clone(), &ns);
    let deployment: Deployment = from_json(json!({
        "metadata": {"name": "web"},
        "spec": {
            "replicas": 2,
            "selector": {"matchLabels": {"app": "web"}},
            "template": {"metadata": {"labels": {"app": "web"}},
                "spec": {"containers": [{"name": "web", "image": "example.invalid/web:1"}]}}
        }
    }))?;
    let created = deployments
        .create(&PostParams::default(), &deployment)
        .await?;
    let uid = created.metadata.uid.unwrap_or_default();

    let replicasets: Api<ReplicaSet> = Api::namespaced(client.clone(), &ns);
    let rs_name = wait_until("a ReplicaSet owned by the Deployment", WAIT, || {
        let (replicasets, uid) = (replicasets.clone(), uid.clone());
        async move {
            let list = replicasets.list(&ListParams::default()).await?;
            Ok(list.items.into_iter().find_map(|rs| {
                let owned = rs
                    .metadata
                    .owner_references
                    .iter()
                    .flatten()
                    .any(|o| o.uid == uid && o.kind == "Deployment");
                owned.then(|| rs.metadata.name.unwrap_or_default())
            }))
        }
    })
    .await?;

    let pods: Api<Pod> = Api::namespaced(client.clone(), &ns);
    wait_until("2 Pods owned by the ReplicaSet", WAIT, || {
        let (pods, rs_name) = (pods.clone(), rs_name.clone());
        async move {
            let list = pods.list(&ListParams::default().labels("app=web")).await?;
            let owned = list
                .items
                .iter()
                .filter(|p| {
                    p.metadata
                        .owner_references
                        .iter()
                        .flatten()
                        .any(|o| o.name == rs_name && o.kind == "ReplicaSet")
                })
                .count();
            Ok((owned == 2).then_some(()))
        }
    })
    .await?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_garbage_collector_deletes_dependents_of_a_deleted_owner() -> Result<()> {
    let stack = Devstack::shared()?;
    let client = stack.kube_client().await?;
    let ns = stack.namespace("smoke-gc").await?;
    let configmaps: Api<ConfigMap> = Api::namespaced(client.clone(), &ns);
    let owner = configmaps
        .create(
            &PostParams::default(),
            &from_json(json!({"metadata": {"name": "owner"}, "data": {"k": "v"}}))?,
        )
        .await?;
    let child: ConfigMap = from_json(json!({
        "metadata": {"name": "child", "ownerReferences": [{
            "apiVersion": "v1", "kind": "ConfigMap", "name": "owner", "uid": owner.metadata.uid
        }]},
        "data": {"k": "v"}
    }))?;
    configmaps.create(&PostParams::default(), &child).await?;
    // A bystander without an owner must survive.
    configmaps
        .create(
            &PostParams::default(),
            &from_json(json!({"metadata": {"name": "bystander"}}))?,
        )
        .await?;

    configmaps
        .delete("owner", &DeleteParams::background())
        .await?;
    wait_until("the dependent ConfigMap to be collected", WAIT, || {
        let configmaps = configmaps.clone();
        async move { Ok(configmaps.get_opt("child").await?.is_none().then_some(())) }
    })
    .await?;
    assert!(
        configmaps.get_opt("bystander").await?.is_some(),
        "a ConfigMap without owner was deleted"
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_built_apiserver_kubectl_and_helm_report_the_pinned_versions() -> Result<()> {
    let stack = Devstack::shared()?;
    let want = format!("v{}", tributary_tests::installed::Versions::pinned().k8s);
    // The version ldflags are set, so /version is not v0.0.0-master (Helm's kubeVersion checks rely on it).
    let server = stack.kube_client().await?.apiserver_version().await?;
    assert_eq!(server.git_version, want);

    let kubeconfig = stack.var("TRIBUTARY_KUBECONFIG")?;
    let out = std::process::Command::new(stack.var("TRIBUTARY_KUBECTL")?)
        .args(["version", "-o", "json", "--kubeconfig", kubeconfig])
        .output()?;
    assert!(
        out.status.success(),
        "kubectl version: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let versions: serde_json::Value = serde_json::from_slice(&out.stdout)?;
    assert_eq!(versions["clientVersion"]["gitVersion"], want.as_str());
    assert_eq!(versions["serverVersion"]["gitVersion"], want.as_str());

    let helm = stack.var("TRIBUTARY_HELM")?;
    let out = std::process::Command::new(helm)
        .args(["version", "--short"])
        .output()?;
    let helm_version = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(
        helm_version.starts_with(&tributary_tests::installed::Versions::pinned().helm),
        "helm {helm_version}"
    );
    let out = std::process::Command::new(helm)
        .args(["list", "--all-namespaces", "--kubeconfig", kubeconfig])
        .output()?;
    assert!(
        out.status.success(),
        "helm list: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    Ok(())
}
