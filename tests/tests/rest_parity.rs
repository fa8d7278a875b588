//! One REST call script, run against Java `connect-standalone` (from the Foundation jars) and
//! `tributary-worker standalone`, and — with the distributed steps added and each step sent to the
//! next of three workers, so followers forward to the leader — against a Java three-worker
//! `connect-distributed` cluster and a Tributary one, on the same broker: every step must give the
//! same status code and a body of the same shape (JSON key sets and value types; values such as
//! worker ids, traces and versions are not compared).

#![allow(clippy::expect_used)]

use std::collections::BTreeSet;
use std::time::Duration;

use anyhow::{Result, ensure};
use reqwest::Method;
use serde_json::{Value, json};
use tributary_tests::installed::Installed;
use tributary_tests::stack::java_connect::JavaConnect;
use tributary_tests::worker::{StandaloneWorker, WorkerProcess, distributed_properties};
use tributary_tests::{Devstack, unique_name, wait_until};

/// The shape of a JSON value: its type, object keys, and the union of array element shapes.
fn shape(v: &Value) -> String {
    match v {
        Value::Null => "null".into(),
        Value::Bool(_) => "bool".into(),
        Value::Number(_) => "number".into(),
        Value::String(_) => "string".into(),
        Value::Array(items) => {
            let shapes: BTreeSet<String> = items.iter().map(shape).collect();
            format!("[{}]", shapes.into_iter().collect::<Vec<_>>().join("|"))
        }
        Value::Object(m) => format!(
            "{{{}}}",
            m.iter()
                // Java shows a null version while a connector restarts: as good as a string.
                .map(|(k, v)| match (k.as_str(), v) {
                    ("version", Value::Null) => format!("{k}:string"),
                    _ => format!("{k}:{}", shape(v)),
                })
                .collect::<Vec<_>>()
                .join(",")
        ),
    }
}

struct Step {
    name: &'static str,
    method: Method,
    path: String,
    body: Option<Value>,
    /// Wait until this JSON pointer of `GET path` equals the value before the call (settling).
    settle: Option<(String, &'static str, Value)>,
}

fn step(name: &'static str, method: Method, path: &str, body: Option<Value>) -> Step {
    Step {
        name,
        method,
        path: path.to_string(),
        body,
        settle: None,
    }
}

/// `snk` names the sink connector: its consumer group (`connect-<snk>`) is on the shared broker,
/// so each test needs its own.
fn script(input: &str, topic: &str, snk: &str, distributed: bool) -> Vec<Step> {
    let source = json!({
        "connector.class": "org.apache.kafka.connect.file.FileStreamSourceConnector",
        "file": input,
        "topic": topic,
        "tasks.max": "1",
    });
    let sink = json!({
        "connector.class": "org.apache.kafka.connect.file.FileStreamSinkConnector",
        "file": format!("{input}.out"),
        "topics": topic,
        "tasks.max": "1",
    });
    let running = |name: &'static str, path: &str| Step {
        settle: Some((
            "/connectors/src/status".to_string(),
            "/tasks/0/state",
            json!("RUNNING"),
        )),
        ..step(name, Method::GET, path, None)
    };
    let mut steps = vec![
        step("server info", Method::GET, "/", None),
        step("no connectors", Method::GET, "/connectors", None),
        step("connector plugins", Method::GET, "/connector-plugins", None),
        step(
            "plugin config",
            Method::GET,
            "/connector-plugins/FileStreamSourceConnector/config",
            None,
        ),
        step(
            "validate good",
            Method::PUT,
            "/connector-plugins/FileStreamSourceConnector/config/validate",
            Some(
                json!({"connector.class": "FileStreamSourceConnector", "name": "v", "topic": "t", "file": input}),
            ),
        ),
        step(
            "validate bad",
            Method::PUT,
            "/connector-plugins/FileStreamSourceConnector/config/validate",
            Some(
                json!({"connector.class": "FileStreamSourceConnector", "name": "v", "tasks.max": "0"}),
            ),
        ),
        step(
            "validate mismatched class",
            Method::PUT,
            "/connector-plugins/FileStreamSinkConnector/config/validate",
            Some(json!({"connector.class": "FileStreamSourceConnector"})),
        ),
        step(
            "create",
            Method::POST,
            "/connectors",
            Some(json!({"name": "src", "config": source})),
        ),
        step(
            "create again",
            Method::POST,
            "/connectors",
            Some(json!({"name": "src", "config": source})),
        ),
        step(
            "create unknown class",
            Method::POST,
            "/connectors",
            Some(json!({"name": "bad", "config": {"connector.class": "com.example.Nope"}})),
        ),
        step(
            "create invalid config",
            Method::POST,
            "/connectors",
            Some(
                json!({"name": "bad", "config": {"connector.class": "FileStreamSink", "tasks.max": "x"}}),
            ),
        ),
        running("status", "/connectors/src/status"),
        Step {
            settle: Some((
                "/connectors/src/topics".to_string(),
                "/src/topics/0",
                json!(topic),
            )),
            ..step("active topics", Method::GET, "/connectors/src/topics", None)
        },
        step(
            "topics of an unknown connector",
            Method::GET,
            "/connectors/nope/topics",
            None,
        ),
        step(
            "reset topics",
            Method::PUT,
            "/connectors/src/topics/reset",
            None,
        ),
        Step {
            settle: Some((
                "/connectors/src/topics".to_string(),
                "/src/topics",
                json!([]),
            )),
            ..step(
                "topics after reset",
                Method::GET,
                "/connectors/src/topics",
                None,
            )
        },
        step("info", Method::GET, "/connectors/src", None),
        step("config", Method::GET, "/connectors/src/config", None),
        step("tasks", Method::GET, "/connectors/src/tasks", None),
        step(
            "tasks-config",
            Method::GET,
            "/connectors/src/tasks-config",
            None,
        ),
        step(
            "task status",
            Method::GET,
            "/connectors/src/tasks/0/status",
            None,
        ),
        step(
            "unknown task status",
            Method::GET,
            "/connectors/src/tasks/9/status",
            None,
        ),
        step(
            "expand",
            Method::GET,
            "/connectors?expand=status&expand=info",
            None,
        ),
        step(
            "expand status",
            Method::GET,
            "/connectors?expand=status",
            None,
        ),
        step("pause", Method::PUT, "/connectors/src/pause", None),
        step("resume", Method::PUT, "/connectors/src/resume", None),
        running("status after resume", "/connectors/src/status"),
        step(
            "restart connector",
            Method::POST,
            "/connectors/src/restart",
            None,
        ),
        running("status after restart", "/connectors/src/status"),
        step(
            "restart task",
            Method::POST,
            "/connectors/src/tasks/0/restart",
            None,
        ),
        running("status after task restart", "/connectors/src/status"),
        step(
            "alter offsets while running",
            Method::PATCH,
            "/connectors/src/offsets",
            Some(
                json!({"offsets": [{"partition": {"filename": input}, "offset": {"position": 2}}]}),
            ),
        ),
        step(
            "update config",
            Method::PUT,
            "/connectors/src/config",
            Some(
                json!({"connector.class": "FileStreamSource", "file": input, "topic": topic, "batch.size": "100"}),
            ),
        ),
        step(
            "update with another name",
            Method::PUT,
            "/connectors/src/config",
            Some(json!({"name": "other", "connector.class": "FileStreamSource", "topic": topic})),
        ),
        step(
            "patch config",
            Method::PATCH,
            "/connectors/src/config",
            Some(json!({"batch.size": "200"})),
        ),
        running("status after update", "/connectors/src/status"),
        step("stop", Method::PUT, "/connectors/src/stop", None),
        Step {
            settle: Some((
                "/connectors/src/status".to_string(),
                "/connector/state",
                json!("STOPPED"),
            )),
            ..step("offsets", Method::GET, "/connectors/src/offsets", None)
        },
        step(
            "alter offsets",
            Method::PATCH,
            "/connectors/src/offsets",
            Some(
                json!({"offsets": [{"partition": {"filename": input}, "offset": {"position": 2}}]}),
            ),
        ),
        step(
            "alter no offsets",
            Method::PATCH,
            "/connectors/src/offsets",
            Some(json!({"offsets": []})),
        ),
        step(
            "offsets after alter",
            Method::GET,
            "/connectors/src/offsets",
            None,
        ),
        step(
            "reset offsets",
            Method::DELETE,
            "/connectors/src/offsets",
            None,
        ),
        step(
            "offsets after reset",
            Method::GET,
            "/connectors/src/offsets",
            None,
        ),
        // A sink's offsets are its consumer group's.
        step(
            "create sink",
            Method::PUT,
            &format!("/connectors/{snk}/config"),
            Some(sink),
        ),
        // Once the running sink has committed (every second here), its offsets show.
        Step {
            settle: Some((
                format!("/connectors/{snk}/offsets"),
                "/offsets/0/partition/kafka_partition",
                json!(0),
            )),
            ..step(
                "sink offsets while running",
                Method::GET,
                &format!("/connectors/{snk}/offsets"),
                None,
            )
        },
        step(
            "stop sink",
            Method::PUT,
            &format!("/connectors/{snk}/stop"),
            None,
        ),
        Step {
            settle: Some((
                format!("/connectors/{snk}/status"),
                "/connector/state",
                json!("STOPPED"),
            )),
            ..step(
                "sink offsets",
                Method::GET,
                &format!("/connectors/{snk}/offsets"),
                None,
            )
        },
        step(
            "alter sink offsets",
            Method::PATCH,
            &format!("/connectors/{snk}/offsets"),
            Some(
                json!({"offsets": [{"partition": {"kafka_topic": topic, "kafka_partition": 0}, "offset": {"kafka_offset": 1}}]}),
            ),
        ),
        step(
            "alter sink offsets without a partition",
            Method::PATCH,
            &format!("/connectors/{snk}/offsets"),
            Some(
                json!({"offsets": [{"partition": {"kafka_topic": topic}, "offset": {"kafka_offset": 1}}]}),
            ),
        ),
        step(
            "sink offsets after alter",
            Method::GET,
            &format!("/connectors/{snk}/offsets"),
            None,
        ),
        step(
            "reset sink offsets",
            Method::DELETE,
            &format!("/connectors/{snk}/offsets"),
            None,
        ),
        step(
            "sink offsets after reset",
            Method::GET,
            &format!("/connectors/{snk}/offsets"),
            None,
        ),
        step(
            "delete sink",
            Method::DELETE,
            &format!("/connectors/{snk}"),
            None,
        ),
        step("delete", Method::DELETE, "/connectors/src", None),
        // Java answers 500 for a moment while the deletions rebalance the group.
        Step {
            settle: Some(("/connectors/src".to_string(), "/error_code", json!(404))),
            ..step("deleted", Method::GET, "/connectors/src", None)
        },
        Step {
            settle: Some((
                "/connectors/src/status".to_string(),
                "/error_code",
                json!(404),
            )),
            ..step(
                "deleted status",
                Method::GET,
                "/connectors/src/status",
                None,
            )
        },
        step("pause unknown", Method::PUT, "/connectors/nope/pause", None),
        step("unknown path", Method::GET, "/nope", None),
    ];
    if distributed {
        // KIP-745 restarts and the internal endpoint, before the connector is stopped.
        let at = steps
            .iter()
            .position(|s| s.name == "alter offsets while running")
            .unwrap_or(steps.len());
        let extra = vec![
            step(
                "restart with tasks",
                Method::POST,
                "/connectors/src/restart?includeTasks=true",
                None,
            ),
            running("status after restart with tasks", "/connectors/src/status"),
            step(
                "restart only failed",
                Method::POST,
                "/connectors/src/restart?includeTasks=true&onlyFailed=true",
                None,
            ),
            step(
                "unsigned internal request",
                Method::POST,
                "/connectors/src/tasks",
                Some(json!([])),
            ),
        ];
        steps.splice(at..at, extra);
    }
    steps
}

/// Runs the steps, each against the next of `bases` in turn.
async fn run(bases: &[String], steps: &[Step]) -> Result<Vec<(u16, String)>> {
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(120))
        .build()?;
    let mut out = Vec::new();
    for (i, s) in steps.iter().enumerate() {
        let base = &bases[i % bases.len()];
        if let Some((path, pointer, want)) = &s.settle {
            let url = format!("{base}{path}");
            wait_until(
                &format!("{pointer} = {want} at {url}"),
                Duration::from_secs(120),
                || {
                    let http = http.clone();
                    let url = url.clone();
                    async move {
                        let v: Value = http.get(&url).send().await?.json().await?;
                        Ok((v.pointer(pointer) == Some(want)).then_some(()))
                    }
                },
            )
            .await?;
        }
        let mut req = http.request(s.method.clone(), format!("{base}{}", s.path));
        if let Some(b) = &s.body {
            req = req.json(b);
        }
        let r = req.send().await?;
        let code = r.status().as_u16();
        let text = r.text().await?;
        let body = if text.is_empty() {
            "(empty)".to_string()
        } else {
            shape(&serde_json::from_str(&text).unwrap_or(Value::String("(not JSON)".into())))
        };
        out.push((code, body));
    }
    Ok(out)
}

#[tokio::test]
async fn the_standalone_rest_script_matches_java_connect_standalone() -> Result<()> {
    let stack = Devstack::shared()?;
    let dir = tempfile::tempdir()?;
    let input = dir.path().join("in.txt");
    std::fs::write(&input, "a\nb\nc\n")?;
    let topic = stack.create_topic("parity", 1, 1, &[]).await?;
    let props = format!(
        "bootstrap.servers={}
key.converter=org.apache.kafka.connect.storage.StringConverter
value.converter=org.apache.kafka.connect.storage.StringConverter
offset.flush.interval.ms=1000
",
        stack.kafka_bootstrap()?
    );
    let steps = script(
        &input.display().to_string(),
        &topic,
        &unique_name("snk"),
        false,
    );

    let mut java = JavaConnect::start_standalone(
        &Installed::locate(),
        &unique_name("parity"),
        &props,
        &dir.path().join("java"),
        &[],
    )?;
    java.wait_ready(Duration::from_secs(180)).await?;
    let java_results = run(std::slice::from_ref(&java.url), &steps).await?;
    java.process.request_stop();

    let mut ours = StandaloneWorker::start(&dir.path().join("ours"), "parity", &props, &[])?;
    ours.wait_healthy(Duration::from_secs(90)).await?;
    let our_results = run(std::slice::from_ref(&ours.rest_url), &steps).await?;

    compare(&steps, &java_results, &our_results)?;
    Ok(())
}

fn compare(steps: &[Step], java: &[(u16, String)], ours: &[(u16, String)]) -> Result<()> {
    let mut mismatches = Vec::new();
    for (s, (j, o)) in steps.iter().zip(java.iter().zip(ours.iter())) {
        if j != o {
            mismatches.push(format!(
                "{} ({} {}):\n  java:      {} {}\n  tributary: {} {}",
                s.name, s.method, s.path, j.0, j.1, o.0, o.1
            ));
        }
    }
    ensure!(
        mismatches.is_empty(),
        "{} of {} steps differ:\n{}",
        mismatches.len(),
        steps.len(),
        mismatches.join("\n")
    );
    Ok(())
}

#[tokio::test]
async fn the_distributed_rest_script_matches_a_java_three_worker_cluster() -> Result<()> {
    let stack = Devstack::shared()?;
    let dir = tempfile::tempdir()?;
    let input = dir.path().join("in.txt");
    std::fs::write(&input, "a\nb\nc\n")?;
    let topic = stack.create_topic("parity-dist", 1, 1, &[]).await?;
    let steps = script(
        &input.display().to_string(),
        &topic,
        &unique_name("snk"),
        true,
    );
    let installed = Installed::locate();
    let replication = stack.kafka_nodes()?.min(3);

    let group = unique_name("parity-java");
    let mut java = Vec::new();
    for i in 0..3 {
        java.push(JavaConnect::start(
            &installed,
            stack.kafka_bootstrap()?,
            &group,
            &dir.path().join(format!("java{i}")),
            replication,
        )?);
    }
    for w in &mut java {
        w.wait_ready(Duration::from_secs(180)).await?;
    }
    let java_urls: Vec<String> = java.iter().map(|w| w.url.clone()).collect();
    let java_results = run(&java_urls, &steps).await?;
    for w in &mut java {
        w.process.request_stop();
    }

    let group = unique_name("parity-ours");
    // The settings the Java workers above run with (their worker_properties), as Tributary's.
    let props = distributed_properties(stack, &group, "")?;
    let mut ours = Vec::new();
    for i in 0..3 {
        ours.push(WorkerProcess::start_distributed(
            &dir.path().join("ours"),
            &format!("w{i}"),
            &props,
        )?);
    }
    for w in &mut ours {
        w.wait_healthy(Duration::from_secs(120)).await?;
    }
    let our_urls: Vec<String> = ours.iter().map(|w| w.rest_url.clone()).collect();
    let our_results = run(&our_urls, &steps).await?;
    compare(&steps, &java_results, &our_results)
}
