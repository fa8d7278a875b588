//! Runs every libFuzzer target in `fuzz/` (cargo-fuzz, `RUSTC_BOOTSTRAP=1` on the stable
//! toolchain, no sanitizer: the code under test is safe Rust) from the committed seeds: a bounded
//! number of inputs in `make test`, `TRIBUTARY_FUZZ_SECONDS` each in `make test-long`. A crash
//! fails the test with the input libFuzzer saved.

use std::path::Path;
use std::process::Command;

use anyhow::{Context, Result, bail};
use tributary_tests::installed::Installed;

/// Each target and how many inputs it runs in `make test` (about a minute each at its speed).
const TARGETS: &[(&str, u64)] = &[
    ("assignment", 2_000_000),
    ("assignor", 60_000),
    ("metadata", 2_000_000),
    ("json_converter", 2_000_000),
    ("properties", 1_000_000),
    ("rest_bodies", 250_000),
    ("group_machine", 2_000_000),
];

fn fuzz(target: &str, runs: u64) -> Result<()> {
    let cargo_fuzz = Installed::locate().cargo_fuzz()?;
    let fuzz_dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../fuzz");
    let seeds = fuzz_dir.join("seeds").join(target);
    // New corpus entries go to a scratch folder; the committed seeds are only read.
    let corpus = tempfile::Builder::new()
        .prefix(&format!("tributary-fuzz-{target}-"))
        .tempdir()?;
    let limit = match std::env::var("TRIBUTARY_FUZZ_SECONDS") {
        Ok(s) => format!("-max_total_time={}", s.trim()),
        Err(_) => format!("-runs={runs}"),
    };
    let out = Command::new(&cargo_fuzz)
        .current_dir(&fuzz_dir)
        .env("RUSTC_BOOTSTRAP", "1")
        .args(["run", "--sanitizer", "none", target])
        .arg(corpus.path())
        .arg(&seeds)
        // One slow input fails the run within a minute with that input saved, instead of
        // eating the whole CI budget (libFuzzer's default is 20 minutes per input).
        .args(["--", &limit, "-timeout=60"])
        .output()
        .with_context(|| format!("running {}", cargo_fuzz.display()))?;
    let log = String::from_utf8_lossy(&out.stderr);
    if !out.status.success() {
        let tail: Vec<&str> = log.lines().rev().take(40).collect();
        bail!(
            "fuzz target {target} failed ({}); crash inputs are in {}:\n{}",
            out.status,
            fuzz_dir.join("artifacts").join(target).display(),
            tail.into_iter().rev().collect::<Vec<_>>().join("\n")
        );
    }
    let done = log
        .lines()
        .find(|l| l.starts_with("Done "))
        .unwrap_or("no summary");
    eprintln!("fuzz {target}: {done}");
    Ok(())
}

#[test]
fn fuzz_targets_find_nothing() -> Result<()> {
    for (target, runs) in TARGETS {
        fuzz(target, *runs)?;
    }
    Ok(())
}
