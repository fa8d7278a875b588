//! The committed CRDs are what the Rust types generate, and they stay GitOps- and
//! `kubectl apply`-friendly.

#![allow(clippy::expect_used)]

use kube::CustomResourceExt;
use tributary_operator::crd::{Connector, KafkaConnect};

fn committed() -> String {
    std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../crds/tributary.dev.yaml"
    ))
    .expect("crds/tributary.dev.yaml is committed")
}

#[test]
fn the_committed_crds_are_fresh() {
    use tributary_operator::crd::{Documents, yaml};
    let fresh = yaml(Documents::All).expect("the CRDs serialize");
    assert!(
        committed() == fresh,
        "crds/tributary.dev.yaml is stale: run `make generate`"
    );
    let chart = |p: &str| {
        std::fs::read_to_string(format!(
            "{}/../charts/tributary/{p}",
            env!("CARGO_MANIFEST_DIR")
        ))
        .expect("the chart's generated files are committed")
    };
    let crds = yaml(Documents::ChartCrds).expect("serializes");
    assert!(
        chart("templates/crds.yaml")
            == format!("{{{{- if .Values.crds.install }}}}\n{crds}{{{{- end }}}}\n"),
        "charts/tributary/templates/crds.yaml is stale: run `make generate`"
    );
    assert_eq!(
        crds.matches("helm.sh/resource-policy: keep").count(),
        2,
        "both chart CRDs are kept on uninstall"
    );
    let policies = yaml(Documents::Policies).expect("serializes");
    assert!(
        chart("templates/admission-policies.yaml")
            == format!("{{{{- if .Values.admissionPolicies }}}}\n{policies}{{{{- end }}}}\n"),
        "charts/tributary/templates/admission-policies.yaml is stale: run `make generate`"
    );
}

/// A `default:` would be written into every object by the apiserver, and Argo CD or Flux would
/// then see a difference from Git that never goes away.
fn defaults_in(v: &serde_json::Value, path: &str, out: &mut Vec<String>) {
    match v {
        serde_json::Value::Object(m) => {
            for (k, v) in m {
                if k == "default" {
                    out.push(path.to_string());
                }
                defaults_in(v, &format!("{path}.{k}"), out);
            }
        }
        serde_json::Value::Array(a) => {
            for (i, v) in a.iter().enumerate() {
                defaults_in(v, &format!("{path}[{i}]"), out);
            }
        }
        _ => {}
    }
}

#[test]
fn no_schema_sets_a_default() {
    for crd in [KafkaConnect::crd(), Connector::crd()] {
        let v = serde_json::to_value(&crd).expect("serializes");
        let mut found = Vec::new();
        defaults_in(&v["spec"]["versions"], "versions", &mut found);
        assert!(
            found.is_empty(),
            "defaults in {}: {found:?}",
            crd.spec.names.plural
        );
    }
}

#[test]
fn each_crd_fits_kubectl_apply() {
    // Client-side apply keeps the whole object in a 256 KiB annotation.
    for crd in [KafkaConnect::crd(), Connector::crd()] {
        let n = serde_json::to_vec(&crd).expect("serializes").len();
        assert!(n < 200 * 1024, "{} is {n} bytes", crd.spec.names.plural);
    }
}

#[test]
fn names_subresources_and_columns_are_the_documented_ones() {
    let kc = serde_json::to_value(KafkaConnect::crd()).expect("serializes");
    assert_eq!(
        kc["spec"]["names"]["shortNames"],
        serde_json::json!(["tkc"])
    );
    assert_eq!(
        kc["spec"]["names"]["categories"],
        serde_json::json!(["tributary"])
    );
    let v = &kc["spec"]["versions"][0];
    assert_eq!(
        v["subresources"]["scale"]["labelSelectorPath"],
        ".status.labelSelector"
    );
    assert!(v["subresources"]["status"].is_object());
    let required = &v["schema"]["openAPIV3Schema"]["properties"]["spec"]["required"];
    for field in [
        "replicas",
        "bootstrapServers",
        "groupId",
        "configStorageTopic",
        "offsetStorageTopic",
        "statusStorageTopic",
    ] {
        assert!(
            required
                .as_array()
                .is_some_and(|r| r.contains(&field.into())),
            "{field} is required: {required}"
        );
    }

    let c = serde_json::to_value(Connector::crd()).expect("serializes");
    assert_eq!(
        c["spec"]["names"]["shortNames"],
        serde_json::json!(["tctr"])
    );
    let v = &c["spec"]["versions"][0];
    assert_eq!(
        v["subresources"]["scale"]["specReplicasPath"],
        ".spec.tasksMax"
    );
    let columns: Vec<&str> = v["additionalPrinterColumns"]
        .as_array()
        .expect("columns")
        .iter()
        .filter_map(|c| c["name"].as_str())
        .collect();
    assert_eq!(
        columns,
        ["Cluster", "Class", "Tasks", "State", "Ready", "Age"]
    );
}
