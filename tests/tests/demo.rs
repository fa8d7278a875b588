//! `make demo` in its non-interactive mode (`DEMO_DURATION`), against the tests' devstack: the
//! chart installed, the example pipeline Ready and records arriving, everything torn down.

use std::process::Command;

use anyhow::{Result, ensure};
use tributary_tests::Devstack;

#[test]
fn make_demo_runs_non_interactively_and_records_arrive() -> Result<()> {
    let stack = Devstack::shared()?;
    let demo = tributary_tests::worker::sibling_binary("demo", "cargo build --workspace --bins")?;
    let out = Command::new(demo)
        .env("TRIBUTARY_DEVSTACK_ENV", stack.env_path())
        .env("DEMO_DURATION", "20")
        .output()?;
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    ensure!(out.status.success(), "the demo failed:\n{said}");
    ensure!(
        said.contains("records arrived through the pipeline"),
        "no records:\n{said}"
    );
    ensure!(
        said.contains("connector.tributary.dev/datagen-users"),
        "the resources were not shown:\n{said}"
    );
    Ok(())
}
