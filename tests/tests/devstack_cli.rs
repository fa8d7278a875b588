//! `devstack` rejects what it cannot do before starting anything.

#![allow(clippy::expect_used)] // a test that cannot even start its subject should stop right there

use std::process::Command;

fn devstack(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_devstack"))
        .args(args)
        .output()
        .expect("the binary runs")
}

#[test]
fn help_lists_up_and_down() {
    let out = devstack(&["--help"]);
    assert!(out.status.success());
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("up") && text.contains("down"), "{text}");
}

#[test]
fn two_kafka_nodes_are_refused_with_the_reason() {
    let out = devstack(&["up", "--kafka-nodes", "2"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("1 or 3 nodes"));
}

#[test]
fn down_without_a_stack_says_so() {
    let dir = tempfile::tempdir().expect("tempdir");
    let env = dir.path().join("none.env");
    let out = devstack(&["down", "--env-file", env.to_str().expect("utf-8 path")]);
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("no running devstack"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn a_missing_component_names_the_install_command() {
    let dir = tempfile::tempdir().expect("tempdir");
    let out = Command::new(env!("CARGO_BIN_EXE_devstack"))
        .args(["up", "--env-file"])
        .arg(dir.path().join("x.env"))
        .arg("--dir")
        .arg(dir.path().join("stack"))
        .env("TRIBUTARY_CACHE", dir.path().join("empty-cache"))
        .output()
        .expect("the binary runs");
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("is not installed") && err.contains("infra/install.sh kafka"),
        "{err}"
    );
}
