//! The container images without a container engine (none runs here; `make images` builds them
//! wherever one does): the Dockerfiles pass hadolint, their runtime stages are distroless,
//! non-root and labelled, the binaries need no library the runtime image lacks, and each binary
//! works as the image runs it — uid 65532 with a read-only root, `/tmp` an empty tmpfs as the
//! worker pods' emptyDir.

use std::process::{Command, Stdio};
use std::time::Duration;

use anyhow::{Context, Result, ensure};
use tributary_tests::installed::Installed;
use tributary_tests::operator::repo;
use tributary_tests::{Devstack, wait_until};

const DOCKERFILES: [&str; 2] = ["operator/Dockerfile", "worker/Dockerfile"];

/// What `gcr.io/distroless/cc-debian12` provides: glibc, libgcc, OpenSSL 3.
const RUNTIME_LIBRARIES: [&str; 6] = [
    "libc.so.6",
    "libm.so.6",
    "ld-linux-x86-64.so.2",
    "libgcc_s.so.1",
    "libssl.so.3",
    "libcrypto.so.3",
];

fn needed(binary: &std::path::Path) -> Result<Vec<String>> {
    let out = Command::new("readelf").arg("-d").arg(binary).output()?;
    ensure!(out.status.success(), "readelf -d {}", binary.display());
    Ok(String::from_utf8(out.stdout)?
        .lines()
        .filter(|l| l.contains("(NEEDED)"))
        .filter_map(|l| l.split('[').nth(1)?.split(']').next().map(str::to_string))
        .collect())
}

/// `cmd` under uid/gid 65532 in a mount namespace where `/` is read-only and `/tmp` an empty
/// tmpfs.
fn as_the_image_runs_it(cmd: &str) -> Command {
    let mut c = Command::new("unshare");
    c.args(["-m", "--propagation", "private", "sh", "-c"])
        .arg(format!(
            "mount -o remount,bind,ro / && mount -t tmpfs -o size=100m,mode=1777 tmpfs /tmp \
         && exec setpriv --reuid 65532 --regid 65532 --clear-groups -- {cmd}"
        ));
    c
}

#[test]
fn the_dockerfiles_lint_clean_and_run_distroless_non_root_and_labelled() -> Result<()> {
    let hadolint = Installed::locate().hadolint()?;
    for file in DOCKERFILES {
        let path = repo().join(file);
        let out = Command::new(&hadolint).arg(&path).output()?;
        ensure!(
            out.status.success(),
            "hadolint {file}: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        let text = std::fs::read_to_string(&path)?;
        let runtime = text.rsplit("\nFROM ").next().context("a runtime stage")?;
        ensure!(
            runtime.starts_with("gcr.io/distroless/cc-debian12:nonroot"),
            "{file}: the runtime stage is not distroless cc: {runtime}"
        );
        ensure!(
            runtime.contains("\nUSER 65532:65532"),
            "{file}: not non-root"
        );
        for label in ["title", "version", "source", "licenses", "description"] {
            ensure!(
                runtime.contains(&format!("org.opencontainers.image.{label}=")),
                "{file}: no OCI label {label}"
            );
        }
    }
    Ok(())
}

#[test]
fn the_binaries_need_only_what_the_runtime_image_has() -> Result<()> {
    let operator = tributary_tests::operator::operator_binary()?;
    let worker = tributary_tests::worker::worker_binary()?;
    for (binary, extra) in [(operator, None), (worker, Some("libz.so.1"))] {
        for lib in needed(&binary)? {
            ensure!(
                RUNTIME_LIBRARIES.contains(&lib.as_str()) || Some(lib.as_str()) == extra,
                "{} needs {lib}, which its image does not have",
                binary.display()
            );
        }
    }
    // The worker image copies zlib in.
    let dockerfile = std::fs::read_to_string(repo().join("worker/Dockerfile"))?;
    ensure!(dockerfile.contains("COPY --from=build /out/lib/libz.so.1 /usr/lib/libz.so.1"));
    Ok(())
}

#[test]
fn the_operator_runs_as_non_root_on_a_read_only_root() -> Result<()> {
    let operator = tributary_tests::operator::operator_binary()?;
    let out = as_the_image_runs_it(&format!("{} crd --only crds", operator.display())).output()?;
    ensure!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    ensure!(String::from_utf8(out.stdout)?.contains("kind: CustomResourceDefinition"));
    Ok(())
}

#[tokio::test]
async fn a_worker_serves_as_non_root_on_a_read_only_root() -> Result<()> {
    let stack = Devstack::shared()?;
    let worker = tributary_tests::worker::worker_binary()?;
    // Outside /tmp, which the worker sees as an empty tmpfs.
    let base = repo().join("target/tmp");
    std::fs::create_dir_all(&base)?;
    let dir = tempfile::tempdir_in(&base)?;
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755))?;
    }
    let ports = tributary_tests::stack::ports::free_ports(2)?;
    let props = dir.path().join("worker.properties");
    std::fs::write(
        &props,
        format!(
            "bootstrap.servers={}\nlisteners=http://127.0.0.1:{}\ntributary.health.listener=http://127.0.0.1:{}\n\
             offset.storage.file.filename=/tmp/connect.offsets\n\
             key.converter=org.apache.kafka.connect.json.JsonConverter\n\
             value.converter=org.apache.kafka.connect.json.JsonConverter\n",
            stack.kafka_bootstrap()?,
            ports[0],
            ports[1]
        ),
    )?;
    let log = std::fs::File::create(dir.path().join("worker.log"))?;
    let child = as_the_image_runs_it(&format!(
        "{} standalone {}",
        worker.display(),
        props.display()
    ))
    .stdout(Stdio::from(log.try_clone()?))
    .stderr(Stdio::from(log))
    .spawn()?;
    let child = std::sync::Mutex::new(child);
    let http = reqwest::Client::new();
    let url = format!("http://127.0.0.1:{}/", ports[0]);
    let served = wait_until("the worker's REST API", Duration::from_secs(90), || async {
        let exited = child
            .lock()
            .map_err(|_| anyhow::anyhow!("poisoned"))?
            .try_wait()?;
        if let Some(status) = exited {
            anyhow::bail!("the worker exited: {status}");
        }
        Ok(match http.get(&url).send().await {
            Ok(r) if r.status().is_success() => Some(r.json::<serde_json::Value>().await?),
            _ => None,
        })
    })
    .await;
    if let Ok(mut c) = child.lock() {
        let _ = c.kill();
        let _ = c.wait();
    }
    let served = served.with_context(|| {
        std::fs::read_to_string(dir.path().join("worker.log")).unwrap_or_default()
    })?;
    ensure!(served["version"].is_string(), "{served}");
    Ok(())
}
