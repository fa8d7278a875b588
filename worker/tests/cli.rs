//! The command line a user meets first: help, version, and clear errors.

#![allow(clippy::expect_used)] // a test that cannot even start its subject should stop right there

use std::process::Command;

fn worker(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_tributary-worker"))
        .args(args)
        .output()
        .expect("the binary runs")
}

/// Runs `tributary-worker distributed` on a worker.properties holding `text`.
fn distributed_with(text: &str) -> std::process::Output {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("worker.properties");
    std::fs::write(&path, text).expect("write");
    worker(&["distributed", path.to_str().expect("utf-8")])
}

#[test]
fn help_names_both_modes() {
    let out = worker(&["--help"]);
    assert!(out.status.success());
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("standalone") && text.contains("distributed"),
        "{text}"
    );
}

#[test]
fn an_unknown_argument_fails_and_names_it() {
    let out = worker(&["--no-such-flag"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--no-such-flag"));
}

#[test]
fn a_missing_properties_file_is_named() {
    let out = worker(&["distributed", "/nonexistent/worker.properties"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("/nonexistent/worker.properties"));
}

#[test]
fn a_malformed_properties_file_is_named_with_its_line() {
    let out = distributed_with("bootstrap.servers=localhost:9092\ngroup.id=\\u00zz\n");
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("worker.properties:2:") && err.contains("\\uxxxx"),
        "{err}"
    );
}

#[test]
fn every_invalid_worker_setting_is_listed_at_once() {
    let out = distributed_with(
        "key.converter=org.apache.kafka.connect.json.JsonConverter\nvalue.converter=org.apache.kafka.connect.json.JsonConverter\n\
         group.id=connect\nconfig.storage.topic=c\noffset.storage.topic=o\n\
         offset.flush.interval.ms=often\nmade.up.key=1\n",
    );
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("Missing required configuration \"status.storage.topic\""),
        "{err}"
    );
    assert!(
        err.contains("Invalid value often for configuration offset.flush.interval.ms"),
        "{err}"
    );
}
