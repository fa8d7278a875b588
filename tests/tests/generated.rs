//! Generated files are committed; these tests fail when one no longer matches its generator, so
//! `make generate` is never forgotten.

use std::path::Path;
use std::process::Command;

use anyhow::{Context, Result, ensure};
use tributary_tests::installed::Installed;

#[test]
fn json_converter_fixtures_match_kafkas_own_converter() -> Result<()> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/json-converter");
    let libs = Installed::locate().connect_libs()?;
    let out = Command::new("java")
        .arg("-cp")
        .arg(format!("{}/*", libs.display()))
        .arg(dir.join("JsonConverterFixtures.java"))
        .output()
        .context("running the fixture generator with java")?;
    ensure!(
        out.status.success(),
        "generator failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let committed = std::fs::read_to_string(dir.join("json_converter.jsonl"))?;
    let fresh = String::from_utf8(out.stdout)?;
    ensure!(
        fresh.lines().count() > 100,
        "the generator wrote only {} cases",
        fresh.lines().count()
    );
    ensure!(
        committed == fresh,
        "tests/fixtures/json-converter/json_converter.jsonl is stale: run `make generate`"
    );
    Ok(())
}
