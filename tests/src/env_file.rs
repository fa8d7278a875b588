//! The devstack's env file: `KEY='value'` lines that both a shell (`set -a; . file`) and the
//! testkit read, so scripts and tests see the same endpoints.

use std::collections::BTreeMap;
use std::path::Path;

use anyhow::{Context, Result};

/// Quotes a value for a POSIX shell: single quotes, with embedded ones closed and reopened.
fn shell_quote(value: &str) -> String {
    format!("'{}'", value.replace('\'', r"'\''"))
}

pub fn render(vars: &BTreeMap<String, String>) -> String {
    let mut out = String::from(
        "# Written by `devstack up`; read by the testkit and by `set -a; . <this file>`.\n",
    );
    for (k, v) in vars {
        out.push_str(k);
        out.push('=');
        out.push_str(&shell_quote(v));
        out.push('\n');
    }
    out
}

pub fn parse(text: &str) -> BTreeMap<String, String> {
    text.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| (k.trim().to_string(), unquote(v.trim())))
        .collect()
}

fn unquote(v: &str) -> String {
    match v.strip_prefix('\'').and_then(|s| s.strip_suffix('\'')) {
        Some(inner) => inner.replace(r"'\''", "'"),
        None => v.to_string(),
    }
}

/// Writes the file atomically, so a reader polling for it never sees half of it.
pub fn write(path: &Path, vars: &BTreeMap<String, String>) -> Result<()> {
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent)
            .with_context(|| format!("creating {}", parent.display()))?;
    }
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, render(vars)).with_context(|| format!("writing {}", tmp.display()))?;
    // It holds the stack's passwords and token: readable by its owner only.
    std::fs::set_permissions(&tmp, std::os::unix::fs::PermissionsExt::from_mode(0o600))?;
    std::fs::rename(&tmp, path)
        .with_context(|| format!("renaming {} to {}", tmp.display(), path.display()))
}

pub fn read(path: &Path) -> Result<BTreeMap<String, String>> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    Ok(parse(&text))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_values_with_quotes_and_spaces() {
        let vars: BTreeMap<String, String> = [
            ("A".to_string(), "plain".to_string()),
            ("B".to_string(), "it's got 'quotes' and spaces".to_string()),
            ("C".to_string(), String::new()),
        ]
        .into();
        assert_eq!(parse(&render(&vars)), vars);
    }

    #[test]
    fn the_file_is_private_to_its_owner() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("x.env");
        write(
            &path,
            &BTreeMap::from([("K".to_string(), "secret".to_string())]),
        )
        .expect("written");
        assert_eq!(
            std::fs::metadata(&path)
                .expect("exists")
                .permissions()
                .mode()
                & 0o777,
            0o600
        );
        assert_eq!(read(&path).expect("read")["K"], "secret");
    }

    #[test]
    fn a_shell_reads_the_same_values() {
        let vars: BTreeMap<String, String> = [("X_VAL".to_string(), "a 'b' $c".to_string())].into();
        let out = std::process::Command::new("bash")
            .arg("-c")
            .arg(format!("{}\nprintf %s \"$X_VAL\"", render(&vars)))
            .output()
            .expect("bash runs");
        assert_eq!(String::from_utf8_lossy(&out.stdout), "a 'b' $c");
    }
}
