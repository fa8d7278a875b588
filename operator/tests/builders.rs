//! The pure builders, from YAML fixtures of KafkaConnect resources (`tests/fixtures/`).

#![allow(clippy::expect_used, clippy::unwrap_used)]

use std::collections::BTreeMap;

use kube::Resource;
use tributary_operator::build::{self, Cluster, annotations, config_map, statefulset};
use tributary_operator::crd::KafkaConnect;

fn fixture(name: &str) -> KafkaConnect {
    let path = format!("{}/tests/fixtures/{name}.yaml", env!("CARGO_MANIFEST_DIR"));
    yaml_serde::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap()
}

/// Keys of the Secrets the fixtures reference.
fn secret_keys() -> BTreeMap<String, Vec<String>> {
    BTreeMap::from([
        ("cluster-ca".to_string(), vec!["ca.crt".to_string()]),
        (
            "extra-ca".to_string(),
            vec!["a.pem".into(), "b.pem".into(), "notes.txt".into()],
        ),
        (
            "connect-user".to_string(),
            vec!["password".into(), "user.crt".into(), "user.key".into()],
        ),
        (
            "connect-rest-cert".to_string(),
            vec!["tls.crt".into(), "tls.key".into(), "ca.crt".into()],
        ),
    ])
}

fn cluster<'a>(kc: &'a KafkaConnect, secrets_hash: &str) -> Cluster<'a> {
    build::cluster(kc, &secret_keys(), secrets_hash.to_string()).unwrap()
}

#[test]
fn missing_secrets_keys_and_empty_globs_are_named() {
    let kc = fixture("scram-tls");
    let mut keys = secret_keys();
    keys.remove("cluster-ca");
    keys.insert("extra-ca".into(), vec!["notes.txt".into()]);
    keys.insert("connect-user".into(), vec![]);
    let problems = build::cluster(&kc, &keys, "h".into()).unwrap_err();
    let text: Vec<String> = problems.iter().map(|p| p.to_string()).collect();
    assert_eq!(
        text,
        [
            "spec.tls.trustedCertificates[0]: Secret cluster-ca does not exist in this namespace",
            "spec.tls.trustedCertificates[1].pattern: no key of Secret extra-ca matches *.pem",
            "spec.authentication.passwordSecret: Secret connect-user has no key password",
        ]
    );
    assert_eq!(
        build::referenced_secrets(&kc.spec),
        ["cluster-ca", "connect-user", "extra-ca"]
    );
}

/// Every child, as JSON, for checks that apply to all of them.
fn children(c: &Cluster<'_>) -> Vec<serde_json::Value> {
    let (cm, text) = config_map::config_map(c);
    let hash = build::hash(&[text.as_bytes()]);
    vec![
        serde_json::to_value(cm).unwrap(),
        serde_json::to_value(statefulset::stateful_set(c, &hash).unwrap()).unwrap(),
        serde_json::to_value(build::service::headless(c).unwrap()).unwrap(),
        serde_json::to_value(build::service::api(c).unwrap()).unwrap(),
        serde_json::to_value(build::pdb::pdb(c)).unwrap(),
        serde_json::to_value(build::rbac::service_account(c)).unwrap(),
        serde_json::to_value(build::network_policy::network_policy(c).unwrap()).unwrap(),
        serde_json::to_value(build::secret::rest_secret(c, "pw")).unwrap(),
    ]
}

#[test]
fn every_child_is_owned_labelled_and_named_after_the_cluster() {
    for fixture_name in ["minimal", "scram-tls", "mtls"] {
        let kc = fixture(fixture_name);
        let name = kc.meta().name.clone().unwrap();
        let c = cluster(&kc, "h");
        for child in children(&c) {
            let meta = &child["metadata"];
            let owner = &meta["ownerReferences"][0];
            assert_eq!(owner["kind"], "KafkaConnect", "{child}");
            assert_eq!(owner["controller"], true);
            assert_eq!(owner["uid"], kc.meta().uid.clone().unwrap());
            assert_eq!(meta["labels"]["tributary.dev/cluster"], name.as_str());
            assert_eq!(
                meta["labels"]["app.kubernetes.io/managed-by"],
                "tributary-operator"
            );
            assert_eq!(meta["namespace"], "data");
            assert!(
                meta["name"]
                    .as_str()
                    .unwrap()
                    .starts_with(&format!("{name}-connect")),
                "{}",
                meta["name"]
            );
        }
    }
}

#[test]
fn the_statefulset_selects_its_pods_and_runs_workers_as_designed() {
    let kc = fixture("minimal");
    let c = cluster(&kc, "h");
    let sts = serde_json::to_value(statefulset::stateful_set(&c, "cfg").unwrap()).unwrap();
    let spec = &sts["spec"];
    assert_eq!(spec["replicas"], 3);
    assert_eq!(spec["updateStrategy"]["type"], "OnDelete");
    assert_eq!(spec["serviceName"], "minimal-connect");
    let selector = spec["selector"]["matchLabels"].as_object().unwrap();
    let pod_labels = spec["template"]["metadata"]["labels"].as_object().unwrap();
    for (k, v) in selector {
        assert_eq!(pod_labels.get(k), Some(v), "pod label {k}");
    }
    let pod = &spec["template"]["spec"];
    assert_eq!(pod["automountServiceAccountToken"], false);
    assert_eq!(pod["securityContext"]["runAsNonRoot"], true);
    assert_eq!(
        pod["securityContext"]["seccompProfile"]["type"],
        "RuntimeDefault"
    );
    let container = &pod["containers"][0];
    assert_eq!(container["image"], build::DEFAULT_IMAGE);
    assert_eq!(
        container["securityContext"]["allowPrivilegeEscalation"],
        false
    );
    assert_eq!(
        container["securityContext"]["capabilities"]["drop"][0],
        "ALL"
    );
    assert_eq!(container["readinessProbe"]["httpGet"]["path"], "/ready");
    assert_eq!(container["livenessProbe"]["httpGet"]["port"], "admin");
    let env: BTreeMap<String, serde_json::Value> = container["env"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| (e["name"].as_str().unwrap().to_string(), e.clone()))
        .collect();
    assert_eq!(
        env["TRIBUTARY_ADVERTISED_HOST"]["value"],
        "$(POD_NAME).minimal-connect.$(POD_NAMESPACE).svc"
    );
    assert!(
        pod["terminationGracePeriodSeconds"].as_i64().unwrap() >= 30,
        "the grace period covers task shutdown"
    );
}

#[test]
fn the_config_hash_changes_exactly_when_the_worker_config_does() {
    let kc = fixture("scram-tls");
    let text = |kc: &KafkaConnect| config_map::config_map(&cluster(kc, "h")).1;
    let base = text(&kc);

    // Not a worker setting: same properties.
    let mut other = kc.clone();
    other.spec.resources = None;
    other.spec.replicas = 7;
    other.spec.template = None;
    assert_eq!(text(&other), base);

    // A worker setting: different properties.
    let mut other = kc.clone();
    other
        .spec
        .config
        .as_mut()
        .unwrap()
        .insert("offset.flush.interval.ms".into(), 5000.into());
    assert_ne!(text(&other), base);
    let mut other = kc.clone();
    other.spec.bootstrap_servers = "elsewhere:9093".into();
    assert_ne!(text(&other), base);

    // The pod template carries both hashes: a Secret rotation changes the template too.
    let a = statefulset::stateful_set(&cluster(&kc, "one"), "cfg").unwrap();
    let b = statefulset::stateful_set(&cluster(&kc, "two"), "cfg").unwrap();
    let ann_a = statefulset::pod_annotations(&a);
    let ann_b = statefulset::pod_annotations(&b);
    assert_ne!(
        ann_a[annotations::SECRETS_HASH],
        ann_b[annotations::SECRETS_HASH]
    );
    assert_eq!(ann_a[annotations::CONFIG_HASH], "cfg");
}

#[test]
fn credentials_reach_workers_as_files_never_as_config_text() {
    let kc = fixture("scram-tls");
    let c = cluster(&kc, "h");
    let props = config_map::worker_properties(&c);
    assert_eq!(props["security.protocol"], "SASL_SSL");
    assert_eq!(props["sasl.mechanism"], "SCRAM-SHA-512");
    assert_eq!(
        props["sasl.jaas.config"],
        "org.apache.kafka.common.security.scram.ScramLoginModule required username=\"connect \\\"user\\\"\" password=\"${tributarydir:/opt/tributary/secrets/kafka-password:password}\";"
    );
    // Globs expanded against the Secret's keys; one file reference per certificate.
    assert_eq!(
        props["ssl.truststore.certificates"],
        "${tributarydir:/opt/tributary/secrets/ca/cluster-ca:ca.crt}\n${tributarydir:/opt/tributary/secrets/ca/extra-ca:a.pem}\n${tributarydir:/opt/tributary/secrets/ca/extra-ca:b.pem}"
    );
    assert_eq!(
        props["tributary.rest.basic.auth.password"],
        "${tributarydir:/opt/tributary/secrets/rest:password}"
    );
    // The user's providers are kept, after the operator's.
    assert_eq!(props["config.providers"], "tributarydir,tributaryenv,mine");
    assert_eq!(props["offset.flush.interval.ms"], "10000");
    assert_eq!(props["value.converter.schemas.enable"], "false");
    assert_eq!(props["client.rack"], "${tributaryenv:TRIBUTARY_RACK}");

    // Every referenced Secret is mounted where the properties look.
    let sts = serde_json::to_value(statefulset::stateful_set(&c, "cfg").unwrap()).unwrap();
    let pod = &sts["spec"]["template"]["spec"];
    let secrets: Vec<&str> = pod["volumes"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|v| v["secret"]["secretName"].as_str())
        .collect();
    assert_eq!(
        secrets,
        [
            "secure-connect-rest",
            "cluster-ca",
            "extra-ca",
            "connect-user"
        ]
    );
    // No env literal carries anything but the operator's own names.
    for e in pod["containers"][0]["env"].as_array().unwrap() {
        if let Some(v) = e["value"].as_str() {
            assert!(!v.contains("password"), "{e}");
        }
    }

    let mtls = fixture("mtls");
    let props = config_map::worker_properties(&cluster(&mtls, "h"));
    assert_eq!(props["security.protocol"], "SSL");
    assert_eq!(
        props["ssl.keystore.key"],
        "${tributarydir:/opt/tributary/secrets/kafka-client:user.key}"
    );
    assert!(!props.contains_key("sasl.jaas.config"));
}

#[test]
fn rest_tls_serves_https_from_the_mounted_secret_and_trusts_its_ca() {
    let kc = fixture("mtls");
    let c = cluster(&kc, "h");
    let props = config_map::worker_properties(&c);
    assert_eq!(props["listeners"], "https://0.0.0.0:8083");
    assert_eq!(props["rest.advertised.listener"], "https");
    assert_eq!(
        props["listeners.https.ssl.keystore.certificate.chain"],
        "${tributarydir:/opt/tributary/secrets/rest-tls:tls.crt}"
    );
    assert_eq!(
        props["listeners.https.ssl.keystore.key"],
        "${tributarydir:/opt/tributary/secrets/rest-tls:tls.key}"
    );
    assert_eq!(
        props["listeners.https.ssl.truststore.certificates"],
        "${tributarydir:/opt/tributary/secrets/ca/connect-rest-cert:ca.crt}"
    );
    // The Kafka client keystore stays Kafka's.
    assert_eq!(
        props["ssl.keystore.key"],
        "${tributarydir:/opt/tributary/secrets/kafka-client:user.key}"
    );
    assert_eq!(c.url(), "https://mtls-connect-api.data.svc:8083");
    let sts = serde_json::to_value(statefulset::stateful_set(&c, "cfg").unwrap()).unwrap();
    let spec = &sts["spec"]["template"]["spec"];
    let mounts = spec["containers"][0]["volumeMounts"].as_array().unwrap();
    let mounted = |path: &str| mounts.iter().find(|m| m["mountPath"] == path).cloned();
    let rest = mounted("/opt/tributary/secrets/rest-tls").expect("the certificate is mounted");
    let vol = spec["volumes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|v| v["name"] == rest["name"])
        .unwrap();
    assert_eq!(vol["secret"]["secretName"], "connect-rest-cert");
    assert!(mounted("/opt/tributary/secrets/ca/connect-rest-cert").is_some());
    // Probes stay on the plain admin port.
    assert_eq!(
        spec["containers"][0]["readinessProbe"]["httpGet"]["port"],
        "admin"
    );

    // A key the Secret lacks is named by its field.
    let mut keys = secret_keys();
    keys.insert("connect-rest-cert".into(), vec!["tls.crt".into()]);
    let problems = build::cluster(&kc, &keys, "h".into()).unwrap_err();
    let text: Vec<String> = problems.iter().map(ToString::to_string).collect();
    assert!(
        text.iter()
            .any(|p| p.contains("spec.rest.tls.certificateAndKey.key")),
        "{text:?}"
    );
    assert!(
        text.iter()
            .any(|p| p.contains("spec.rest.tls.trustedCertificates[0]")),
        "{text:?}"
    );
}

#[test]
fn templates_apply_but_never_override_the_operators_labels() {
    let kc = fixture("scram-tls");
    let c = cluster(&kc, "h");
    let sts = serde_json::to_value(statefulset::stateful_set(&c, "cfg").unwrap()).unwrap();
    let t = &sts["spec"]["template"];
    assert_eq!(t["metadata"]["labels"]["team"], "data");
    assert_eq!(
        t["metadata"]["labels"]["app.kubernetes.io/name"],
        "tributary-connect"
    );
    assert_eq!(
        t["metadata"]["annotations"]["example.com/owner"],
        "data-team"
    );
    assert_eq!(t["metadata"]["annotations"]["prometheus.io/port"], "8084");
    assert_eq!(t["spec"]["priorityClassName"], "high");
    assert_eq!(t["spec"]["terminationGracePeriodSeconds"], 120);
    assert_eq!(t["spec"]["tolerations"][0]["key"], "dedicated");
    assert_eq!(
        t["spec"]["containers"][0]["image"],
        "registry.example/tributary-worker:custom"
    );
    assert!(
        t["spec"]["volumes"]
            .as_array()
            .unwrap()
            .iter()
            .any(|v| v["name"] == "extra")
    );
    let pdb = serde_json::to_value(build::pdb::pdb(&c)).unwrap();
    assert_eq!(pdb["spec"]["maxUnavailable"], 2);
}

#[test]
fn the_rest_port_admits_only_workers_and_the_operator() {
    let kc = fixture("minimal");
    let c = cluster(&kc, "h");
    let np = serde_json::to_value(build::network_policy::network_policy(&c).unwrap()).unwrap();
    let rest = &np["spec"]["ingress"][0];
    assert_eq!(rest["ports"][0]["port"], 8083);
    assert_eq!(rest["from"].as_array().unwrap().len(), 2);
    let admin = &np["spec"]["ingress"][1];
    assert_eq!(admin["ports"][0]["port"], 8084);
    assert!(
        admin.get("from").is_none(),
        "probes and Prometheus reach 8084"
    );
}

#[test]
fn orphans_are_owned_children_no_longer_desired_and_nothing_else() {
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, OwnerReference};
    let mut kc = fixture("scram-tls");
    kc.metadata.uid = Some("uid-1".into());
    let c = cluster(&kc, "h");
    let children = build::children(&c).unwrap();
    let meta = |name: &str, owner: Option<(&str, bool)>| ObjectMeta {
        name: Some(name.into()),
        owner_references: owner.map(|(uid, controller)| {
            vec![OwnerReference {
                uid: uid.into(),
                controller: Some(controller),
                ..OwnerReference::default()
            }]
        }),
        ..ObjectMeta::default()
    };
    let np = children.network_policy.metadata.name.clone().unwrap();
    let cm = children.config_map.metadata.name.clone().unwrap();
    let existing = vec![
        meta(&np, Some(("uid-1", true))),
        meta("left-by-an-old-version", Some(("uid-1", true))),
        meta("a-users-object-with-our-labels", None),
        meta("another-owners", Some(("uid-2", true))),
        meta("owned-but-not-controlled", Some(("uid-1", false))),
    ];
    // With NetworkPolicies on, only the old version's object goes.
    let on = children.desired(&c, true);
    assert_eq!(
        build::orphans("NetworkPolicy", &existing, "uid-1", &on),
        vec!["left-by-an-old-version"]
    );
    // Turned off, the cluster's own policy goes too.
    let off = children.desired(&c, false);
    assert_eq!(
        build::orphans("NetworkPolicy", &existing, "uid-1", &off),
        vec![np.clone(), "left-by-an-old-version".to_string()]
    );
    // The same name under another kind is not desired under this one.
    assert!(off.contains(&("ConfigMap", cm.clone())));
    assert_eq!(
        build::orphans(
            "ConfigMap",
            &[meta(&cm, Some(("uid-1", true)))],
            "uid-1",
            &off
        ),
        Vec::<String>::new()
    );
    assert!(on.contains(&("Secret", c.rest_secret_name())));
}
