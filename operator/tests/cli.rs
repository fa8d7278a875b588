//! The command line a user meets first: help, version, and clear errors.

#![allow(clippy::expect_used)] // a test that cannot even start its subject should stop right there

use std::process::Command;

fn operator(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_tributary-operator"))
        .args(args)
        .output()
        .expect("the binary runs")
}

#[test]
fn help_lists_the_subcommands() {
    let out = operator(&["--help"]);
    assert!(out.status.success());
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("run") && text.contains("crd"), "{text}");
}

#[test]
fn version_is_the_crate_version() {
    let out = operator(&["--version"]);
    assert!(out.status.success());
    assert!(String::from_utf8_lossy(&out.stdout).contains(env!("CARGO_PKG_VERSION")));
}

#[test]
fn an_unknown_subcommand_fails_and_names_it() {
    let out = operator(&["frobnicate"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("frobnicate"));
}
