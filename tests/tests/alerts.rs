//! The chart's PrometheusRule against what real workers export: two distributed workers run a
//! healthy connector, one whose tasks fail and one that fails itself; their `/metrics` report
//! each connector and task once (on the worker that runs it), every metric the shipped rules
//! reference is exported, and `promtool test rules`, fed the scraped samples, fires exactly the
//! alerts a user expects — for the failed connector and the failed tasks, after `for`, and none
//! for the healthy one.

#![allow(clippy::expect_used)]

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use anyhow::{Context, Result, ensure};
use serde_json::{Value, json};
use tributary_tests::installed::{Installed, promtool_check_metrics};
use tributary_tests::operator::{DATAGEN, repo};
use tributary_tests::worker::{WorkerProcess, distributed_properties};
use tributary_tests::{Devstack, unique_name, wait_until};

const START: Duration = Duration::from_secs(120);
const SETTLE: Duration = Duration::from_secs(90);
/// What `promtool check metrics` says of names that must stay as Strimzi's rules make them
/// (dashboards and alerts read them so): gauges ending in `_count`, Java's `-ms` attributes, and
/// app-info's `clientId` label. Anything else it says fails the test.
const STRIMZI_NAMING: [&str; 3] = [
    "should not have \"_count\" suffix",
    "metric names should not contain abbreviated units",
    "label names should be written in 'snake_case' not 'camelCase'",
];
/// The namespace label a PodMonitor scrape adds to every sample.
const NAMESPACE: &str = "payments";

fn http() -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(Duration::from_secs(30))
        .build()
        .expect("http client")
}

/// The one object `template` of the chart renders with `value` set to true.
fn render_enabled(stack: &Devstack, value: &str, template: &str) -> Result<Value> {
    let k8s = tributary_tests::installed::Versions::pinned().k8s;
    let out = Command::new(stack.var("TRIBUTARY_HELM")?)
        .args(["template", "t"])
        .arg(repo().join("charts/tributary"))
        .args(["--kube-version", &k8s, "--set", &format!("{value}=true")])
        .args(["--show-only", template])
        .output()?;
    ensure!(
        out.status.success(),
        "helm template: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    Ok(yaml_serde::from_str(std::str::from_utf8(&out.stdout)?)?)
}

/// The PrometheusRule the chart renders with `prometheusRule.enabled=true`, as a Prometheus
/// rule file (its `spec`).
fn rendered_rules(stack: &Devstack) -> Result<Value> {
    let rule = render_enabled(
        stack,
        "prometheusRule.enabled",
        "templates/prometheusrule.yaml",
    )?;
    ensure!(rule["kind"] == "PrometheusRule", "{rule}");
    Ok(rule["spec"].clone())
}

/// The dashboard the chart ships with `grafanaDashboard.enabled=true`, from its ConfigMap.
fn rendered_dashboard(stack: &Devstack) -> Result<Value> {
    let map = render_enabled(
        stack,
        "grafanaDashboard.enabled",
        "templates/grafana-dashboard.yaml",
    )?;
    ensure!(
        map["metadata"]["labels"]["grafana_dashboard"] == "1",
        "{map}"
    );
    let json = map["data"]["tributary-connect.json"]
        .as_str()
        .context("the ConfigMap holds no dashboard")?;
    Ok(serde_json::from_str(json)?)
}

/// Every PromQL query of a dashboard: its panels' targets (rows' nested panels too) and its
/// query variables.
fn dashboard_exprs(dashboard: &Value) -> Vec<String> {
    fn panels(v: &Value, out: &mut Vec<String>) {
        for p in v.as_array().into_iter().flatten() {
            for t in p["targets"].as_array().into_iter().flatten() {
                if let Some(e) = t["expr"].as_str() {
                    out.push(e.to_string());
                }
            }
            panels(&p["panels"], out);
        }
    }
    let mut out = Vec::new();
    panels(&dashboard["panels"], &mut out);
    for v in dashboard["templating"]["list"]
        .as_array()
        .into_iter()
        .flatten()
    {
        if let Some(q) = v["query"]["query"].as_str()
            && let Some(inner) = q
                .strip_prefix("label_values(")
                .and_then(|r| r.rsplit_once(','))
                .map(|(m, _)| m)
        {
            out.push(inner.to_string());
        }
    }
    out
}

/// The metric names a PromQL expression reads: identifiers that are not functions, keywords,
/// label names (inside `{…}` or a `by (…)` list) or durations.
fn metric_names(expr: &str) -> BTreeSet<String> {
    const KEYWORDS: [&str; 11] = [
        "by",
        "without",
        "on",
        "ignoring",
        "group_left",
        "group_right",
        "and",
        "or",
        "unless",
        "bool",
        "offset",
    ];
    let mut out = BTreeSet::new();
    let chars: Vec<char> = expr.chars().collect();
    let mut i = 0;
    let mut depth_braces = 0;
    let mut label_list = false;
    let mut last_word = String::new();
    while i < chars.len() {
        let c = chars[i];
        if c == '"' {
            i += 1;
            while i < chars.len() && chars[i] != '"' {
                i += 1;
            }
            i += 1;
            continue;
        }
        if c == '{' || c == '[' {
            depth_braces += 1;
        } else if c == '}' || c == ']' {
            depth_braces -= 1;
        } else if c == '(' {
            label_list = [
                "by",
                "without",
                "on",
                "ignoring",
                "group_left",
                "group_right",
            ]
            .contains(&last_word.as_str());
        } else if c == ')' {
            label_list = false;
        }
        if c.is_ascii_alphabetic() || c == '_' || c == ':' {
            let start = i;
            while i < chars.len() && (chars[i].is_ascii_alphanumeric() || "_:".contains(chars[i])) {
                i += 1;
            }
            let word: String = chars[start..i].iter().collect();
            let rest = chars[i..].iter().collect::<String>();
            let rest = rest.trim_start();
            // A function call, or an aggregation with its grouping first (`sum by (…) (…)`).
            let is_call = rest.starts_with('(')
                || ["by", "without"].iter().any(|g| {
                    rest.strip_prefix(g)
                        .is_some_and(|r| r.trim_start().starts_with('('))
                });
            if depth_braces == 0 && !label_list && !is_call && !KEYWORDS.contains(&word.as_str()) {
                out.insert(word.clone());
            }
            last_word = word;
            continue;
        }
        if c.is_ascii_digit() {
            while i < chars.len() && (chars[i].is_ascii_alphanumeric() || chars[i] == '.') {
                i += 1;
            }
            continue;
        }
        if !c.is_whitespace() {
            last_word.clear();
        }
        i += 1;
    }
    out
}

/// Samples of a Prometheus text exposition: (name, labels, value).
fn samples(text: &str) -> Vec<(String, BTreeMap<String, String>, f64)> {
    let mut out = Vec::new();
    for line in text
        .lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
    {
        let (series, value) = line.rsplit_once(' ').unwrap_or((line, ""));
        let Ok(value) = value.parse::<f64>() else {
            continue;
        };
        let (name, labels) = match series.split_once('{') {
            Some((n, l)) => (n, l.trim_end_matches('}')),
            None => (series, ""),
        };
        let labels = labels
            .split("\",")
            .filter(|p| !p.is_empty())
            .filter_map(|p| p.split_once("=\""))
            .map(|(k, v)| (k.to_string(), v.trim_end_matches('"').to_string()))
            .collect();
        out.push((name.to_string(), labels, value));
    }
    out
}

async fn scrape(w: &WorkerProcess) -> Result<String> {
    let r = http()
        .get(format!("{}/metrics", w.health_url))
        .send()
        .await?;
    ensure!(r.status().is_success(), "GET /metrics: {}", r.status());
    Ok(r.text().await?)
}

async fn status(w: &WorkerProcess, connector: &str) -> Result<Value> {
    Ok(http()
        .get(format!("{}/connectors/{connector}/status", w.rest_url))
        .send()
        .await?
        .json()
        .await?)
}

fn promtool(dir: &Path, args: &[&str]) -> Result<String> {
    let out = Command::new(Installed::locate().promtool()?)
        .args(args)
        .current_dir(dir)
        .output()?;
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    ensure!(out.status.success(), "promtool {args:?}: {said}");
    Ok(said)
}

/// The alert's annotations as Prometheus renders them for `labels` and `value`.
fn expected_annotations(rule: &Value, labels: &BTreeMap<&str, String>, value: f64) -> Value {
    let mut out = serde_json::Map::new();
    for (k, v) in rule["annotations"].as_object().into_iter().flatten() {
        let mut text = v.as_str().unwrap_or_default().to_string();
        for (label, val) in labels {
            text = text.replace(&format!("{{{{ $labels.{label} }}}}"), val);
        }
        text = text.replace("{{ $value }}", &value.to_string());
        out.insert(k.clone(), Value::String(text));
    }
    Value::Object(out)
}

#[tokio::test(flavor = "multi_thread")]
async fn the_shipped_alerts_fire_for_failed_connectors_and_tasks_on_what_workers_export()
-> Result<()> {
    let stack = Devstack::shared()?;
    let dir = tempfile::tempdir()?;
    let group = unique_name("alerts");
    let props = distributed_properties(
        stack,
        &group,
        "scheduled.rebalance.max.delay.ms=0
config.providers=file
config.providers.file.class=org.apache.kafka.common.config.provider.FileConfigProvider",
    )?;
    let mut workers = Vec::new();
    for name in ["m1", "m2"] {
        workers.push(WorkerProcess::start_distributed(dir.path(), name, &props)?);
    }
    for w in &mut workers {
        w.wait_healthy(START).await?;
    }
    let topic = stack.create_topic("alerts", 1, 1, &[]).await?;
    let secret = dir.path().join("topic.properties");
    std::fs::write(&secret, format!("topic={topic}\n"))?;
    let datagen = |extra: Value| {
        let mut c = json!({
            "connector.class": DATAGEN,
            "kafka.topic": topic,
            "records.per.second": "5",
            "tasks.max": "2",
        });
        for (k, v) in extra.as_object().into_iter().flatten() {
            c[k] = v.clone();
        }
        c
    };
    let [healthy, failing, broken, sink] =
        ["healthy", "failing", "broken", "sink"].map(unique_name);
    for (name, config) in [
        // Reads what the healthy one writes: the sink-task metrics.
        (
            &sink,
            json!({
                "connector.class": "FileStreamSink",
                "topics": topic,
                "file": dir.path().join("sink.txt"),
                "tasks.max": "1",
            }),
        ),
        (&healthy, datagen(json!({}))),
        // StringConverter cannot write datagen's structs: both tasks fail on their first record.
        (
            &failing,
            datagen(json!({"value.converter": "org.apache.kafka.connect.storage.StringConverter"})),
        ),
        // Its topic comes from a file; once the file is gone, the connector cannot start.
        (
            &broken,
            datagen(json!({"kafka.topic": format!("${{file:{}:topic}}", secret.display())})),
        ),
    ] {
        let r = http()
            .post(format!("{}/connectors", workers[0].rest_url))
            .json(&json!({"name": name, "config": config}))
            .send()
            .await?;
        ensure!(
            r.status().as_u16() == 201,
            "create {name}: {}",
            r.text().await?
        );
    }
    // Its tasks too: a task reads the file when it starts, and one started after the file is
    // gone fails as well (the rule under test would then rightly fire for it).
    wait_until(
        "the broken connector and its tasks running, for now",
        SETTLE,
        || async {
            let s = status(&workers[0], &broken).await?;
            let tasks = s["tasks"]
                .as_array()
                .is_some_and(|t| t.len() == 2 && t.iter().all(|t| t["state"] == "RUNNING"));
            Ok((s["connector"]["state"] == "RUNNING" && tasks).then_some(()))
        },
    )
    .await?;
    std::fs::remove_file(&secret)?;
    let r = http()
        .post(format!(
            "{}/connectors/{broken}/restart",
            workers[1].rest_url
        ))
        .send()
        .await?;
    ensure!(r.status().is_success(), "restart: {}", r.status());

    // Every state as the cluster reports it, then as the workers' metrics do.
    wait_until(
        "healthy running, failing's tasks and broken failed",
        SETTLE,
        || async {
            let h = status(&workers[0], &healthy).await?;
            let f = status(&workers[0], &failing).await?;
            let b = status(&workers[0], &broken).await?;
            let tasks = |s: &Value, state: &str| {
                s["tasks"]
                    .as_array()
                    .is_some_and(|t| t.len() == 2 && t.iter().all(|t| t["state"] == state))
            };
            Ok((h["connector"]["state"] == "RUNNING"
                && tasks(&h, "RUNNING")
                && tasks(&f, "FAILED")
                && b["connector"]["state"] == "FAILED")
                .then_some(()))
        },
    )
    .await?;
    let scrapes = wait_until(
        "the workers' metrics to show the states",
        SETTLE,
        || async {
            let mut all = Vec::new();
            for w in &workers {
                all.push(samples(&scrape(w).await?));
            }
            let sum = |name: &str, want: &[(&str, &str)]| -> f64 {
                all.iter()
                    .flatten()
                    .filter(|(n, l, _)| {
                        n == name
                            && want
                                .iter()
                                .all(|(k, v)| l.get(*k).map(String::as_str) == Some(v))
                    })
                    .map(|(_, _, v)| v)
                    .sum()
            };
            let settled = sum(
                "kafka_connect_connector_status",
                &[("connector", &broken), ("status", "failed")],
            ) == 1.0
                && sum(
                    "kafka_connect_sink_task_sink_record_send_total",
                    &[("connector", &sink)],
                ) > 0.0
                && sum(
                    "kafka_connect_worker_connector_failed_task_count",
                    &[("connector", &failing)],
                ) == 2.0
                && sum(
                    "kafka_connect_worker_connector_running_task_count",
                    &[("connector", &healthy)],
                ) == 2.0;
            Ok(settled.then_some(all))
        },
    )
    .await?;

    // Each connector and each task is reported by exactly one worker, in exactly one state.
    for c in [&healthy, &failing, &broken] {
        let reports: Vec<_> = scrapes
            .iter()
            .flatten()
            .filter(|(n, l, _)| {
                n == "kafka_connect_connector_status" && l.get("connector") == Some(c)
            })
            .collect();
        ensure!(reports.len() == 1, "{c}'s status reported {reports:?}");
        for task in ["0", "1"] {
            let reports = scrapes
                .iter()
                .flatten()
                .filter(|(n, l, _)| {
                    n == "kafka_connect_connector_task_status"
                        && l.get("connector") == Some(c)
                        && l.get("task").map(String::as_str) == Some(task)
                })
                .count();
            ensure!(reports == 1, "{c}-{task}'s status reported {reports} times");
        }
    }
    let total = |name: &str| -> f64 {
        scrapes
            .iter()
            .flatten()
            .filter(|(n, _, _)| n == name)
            .map(|(_, _, v)| v)
            .sum()
    };
    ensure!(total("kafka_connect_worker_connector_count") == 4.0);
    ensure!(total("kafka_connect_worker_task_count") == 7.0);

    // The other groups say what happened: records moved, failed, rounds completed.
    let of = |name: &str, connector: &str| -> f64 {
        scrapes
            .iter()
            .flatten()
            .filter(|(n, l, _)| {
                n == name && l.get("connector").map(String::as_str) == Some(connector)
            })
            .map(|(_, _, v)| v)
            .sum()
    };
    let polled = of(
        "kafka_connect_source_task_source_record_poll_total",
        &healthy,
    );
    let written = of(
        "kafka_connect_source_task_source_record_write_total",
        &healthy,
    );
    ensure!(
        written > 0.0 && polled >= written,
        "healthy polled {polled}, wrote {written}"
    );
    ensure!(
        of("kafka_connect_sink_task_sink_record_read_total", &sink) > 0.0
            && of("kafka_connect_sink_task_partition_count", &sink) == 1.0,
        "the sink's metrics: read {}, partitions {}",
        of("kafka_connect_sink_task_sink_record_read_total", &sink),
        of("kafka_connect_sink_task_partition_count", &sink)
    );
    // StringConverter refused a record in each failing task before it failed.
    for task in ["0", "1"] {
        let errors: f64 = scrapes
            .iter()
            .flatten()
            .filter(|(n, l, _)| {
                n == "kafka_connect_task_error_total_record_errors"
                    && l.get("connector") == Some(&failing)
                    && l.get("task").map(String::as_str) == Some(task)
            })
            .map(|(_, _, v)| v)
            .sum();
        ensure!(
            errors >= 1.0,
            "{failing}-{task} reports {errors} record errors"
        );
    }
    ensure!(
        of("kafka_connect_task_error_total_record_errors", &healthy) == 0.0,
        "the healthy connector reports record errors"
    );
    for (w, samples) in workers.iter().zip(&scrapes) {
        let rounds: f64 = samples
            .iter()
            .filter(|(n, _, _)| n == "kafka_connect_worker_rebalance_completed_rebalances_total")
            .map(|(_, _, v)| v)
            .sum();
        ensure!(rounds >= 1.0, "{} completed {rounds} rounds", w.name);
    }
    ensure!(
        total("kafka_connect_worker_task_startup_success_total") >= 7.0
            && total("kafka_connect_worker_connector_startup_failure_total") >= 1.0,
        "start-ups: tasks {}, connector failures {}",
        total("kafka_connect_worker_task_startup_success_total"),
        total("kafka_connect_worker_connector_startup_failure_total")
    );

    // The shipped rules: valid, reading only exported metrics, and firing as expected.
    let spec = rendered_rules(stack)?;
    let rules: Vec<Value> = spec["groups"]
        .as_array()
        .into_iter()
        .flatten()
        .flat_map(|g| g["rules"].as_array().cloned().unwrap_or_default())
        .collect();
    ensure!(rules.len() >= 2, "{spec}");
    let exported: BTreeSet<&str> = scrapes
        .iter()
        .flatten()
        .map(|(n, _, _)| n.as_str())
        .collect();
    let mut referenced = BTreeSet::new();
    for rule in &rules {
        let expr = rule["expr"].as_str().context("expr")?;
        let names = metric_names(expr);
        ensure!(!names.is_empty(), "no metric found in {expr}");
        for name in names {
            ensure!(
                exported.contains(name.as_str()),
                "the rule {} reads {name}, which the workers do not export",
                rule["alert"]
            );
            referenced.insert(name);
        }
    }
    // The shipped dashboard reads only what the workers export (the operator's panels are
    // checked against the operator's exposition in its own crate).
    let dashboard = rendered_dashboard(stack)?;
    let mut exprs = 0;
    for expr in dashboard_exprs(&dashboard) {
        exprs += 1;
        let names = metric_names(&expr);
        ensure!(!names.is_empty(), "no metric found in {expr}");
        for name in names
            .iter()
            .filter(|n| !n.starts_with("tributary_operator_"))
        {
            ensure!(
                exported.contains(name.as_str()),
                "the dashboard reads {name} ({expr}), which the workers do not export"
            );
        }
    }
    ensure!(exprs >= 20, "the dashboard has only {exprs} queries");

    // promtool's linter on what each worker serves a plain scraper (the Prometheus text format):
    // it parses, and the only complaints allowed are about names Strimzi's rules fix.
    for w in &workers {
        let text = scrape(w).await?;
        ensure!(
            !text.contains("# EOF"),
            "a plain scrape got OpenMetrics:\n{text}"
        );
        let complaints = promtool_check_metrics(&text)?;
        let unexpected: Vec<&str> = complaints
            .lines()
            .filter(|l| !l.trim().is_empty())
            .filter(|l| {
                !(l.starts_with("kafka_connect_") && STRIMZI_NAMING.iter().any(|n| l.contains(n)))
            })
            .collect();
        ensure!(
            unexpected.is_empty(),
            "promtool check metrics:\n{}\non:\n{text}",
            unexpected.join("\n")
        );
    }

    let work = tempfile::tempdir()?;
    std::fs::write(work.path().join("rules.json"), serde_json::to_vec(&spec)?)?;
    promtool(work.path(), &["check", "rules", "rules.json"])?;

    // The scraped samples of those metrics, as a PodMonitor would store them (a namespace and
    // a pod label per worker), held for 15 minutes.
    let mut input_series = Vec::new();
    for (w, samples) in workers.iter().zip(&scrapes) {
        for (name, labels, value) in samples.iter().filter(|(n, _, _)| referenced.contains(n)) {
            let mut labels = labels.clone();
            labels.insert("namespace".into(), NAMESPACE.into());
            labels.insert("pod".into(), w.name.clone());
            let labels: Vec<String> = labels.iter().map(|(k, v)| format!("{k}=\"{v}\"")).collect();
            input_series.push(json!({
                "series": format!("{name}{{{}}}", labels.join(",")),
                "values": format!("{value}x15"),
            }));
        }
    }
    let rule_named = |alert: &str| {
        rules
            .iter()
            .find(|r| r["alert"] == alert)
            .cloned()
            .with_context(|| format!("no rule {alert}"))
    };
    let connector_failed = rule_named("TributaryConnectorFailed")?;
    let task_failed = rule_named("TributaryTaskFailed")?;
    let severity = connector_failed["labels"]["severity"].clone();
    let firing = |rule: &Value, connector: &str, value: f64| {
        let labels = BTreeMap::from([
            ("connector", connector.to_string()),
            ("namespace", NAMESPACE.to_string()),
        ]);
        json!({
            "exp_labels": {"connector": connector, "namespace": NAMESPACE, "severity": severity},
            "exp_annotations": expected_annotations(rule, &labels, value),
        })
    };
    let test = json!({
        "rule_files": ["rules.json"],
        "evaluation_interval": "1m",
        "tests": [{
            "interval": "1m",
            "input_series": input_series,
            "alert_rule_test": [
                // Pending, not firing, before `for` (5m) has passed.
                {"eval_time": "4m", "alertname": "TributaryConnectorFailed", "exp_alerts": []},
                {"eval_time": "4m", "alertname": "TributaryTaskFailed", "exp_alerts": []},
                // Then exactly one alert each: none for the healthy connector.
                {"eval_time": "6m", "alertname": "TributaryConnectorFailed",
                 "exp_alerts": [firing(&connector_failed, &broken, 1.0)]},
                {"eval_time": "6m", "alertname": "TributaryTaskFailed",
                 "exp_alerts": [firing(&task_failed, &failing, 2.0)]},
            ],
        }],
    });
    std::fs::write(work.path().join("test.json"), serde_json::to_vec(&test)?)?;
    promtool(work.path(), &["test", "rules", "test.json"]).with_context(|| {
        format!(
            "the scraped series: {}",
            serde_json::to_string_pretty(&test["tests"][0]["input_series"]).unwrap_or_default()
        )
    })?;
    for w in &mut workers {
        w.stop();
    }
    Ok(())
}

#[test]
fn metric_names_are_read_from_promql() {
    let names = metric_names(
        r#"sum by (namespace, connector) (kafka_connect_connector_status{status="failed", x="a{b}"}) > 0 and on(pod) rate(tributary_x_total[5m]) > 0.5"#,
    );
    assert_eq!(
        names,
        BTreeSet::from([
            "kafka_connect_connector_status".to_string(),
            "tributary_x_total".to_string()
        ])
    );
}

#[test]
fn metric_names_are_read_from_grafana_promql() {
    let names = metric_names(
        r#"histogram_quantile(0.99, sum by (le, kind) (rate(a_bucket{namespace=~"$namespace"}[$__rate_interval]))) * 60 + (count by (connector, status) (b) or vector(0))"#,
    );
    assert_eq!(
        names,
        BTreeSet::from(["a_bucket".to_string(), "b".to_string()])
    );
}
