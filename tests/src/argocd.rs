//! Runs the Argo CD health check (`manifests/argocd/health.lua`) on a resource the way Argo CD
//! does — the object as the global `obj`, the script's returned table read — with Debian's
//! `lua5.4` (installed by `make install`; a test that needs it fails without it).

use std::io::Write;
use std::process::{Command, Stdio};

use anyhow::{Context, Result, ensure};
use serde_json::Value;

/// `value` as a Lua table constructor (JSON null becomes nil, arrays 1-based as Lua's are).
fn lua_literal(value: &Value) -> String {
    match value {
        Value::Null => "nil".into(),
        Value::Bool(b) => b.to_string(),
        Value::Number(n) => n.to_string(),
        Value::String(s) => lua_string(s),
        Value::Array(items) => format!(
            "{{{}}}",
            items.iter().map(lua_literal).collect::<Vec<_>>().join(", ")
        ),
        Value::Object(map) => format!(
            "{{{}}}",
            map.iter()
                .map(|(k, v)| format!("[{}] = {}", lua_string(k), lua_literal(v)))
                .collect::<Vec<_>>()
                .join(", ")
        ),
    }
}

fn lua_string(s: &str) -> String {
    let mut out = String::from("\"");
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            c if (c as u32) < 0x20 => out.push_str(&format!("\\{}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// Argo CD's verdict on `obj`: (status, message).
pub fn health(obj: &Value) -> Result<(String, String)> {
    let script =
        std::fs::read_to_string(crate::operator::repo().join("manifests/argocd/health.lua"))?;
    let program = format!(
        "obj = {}\nlocal function check()\n{script}\nend\nlocal hs = check()\nio.write(hs.status, \"\\n\", hs.message or \"\")\n",
        lua_literal(obj)
    );
    let mut child = Command::new("lua5.4")
        .arg("-")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .context("running lua5.4 (Debian package lua5.4; `make install` installs it)")?;
    child
        .stdin
        .take()
        .context("lua5.4 stdin")?
        .write_all(program.as_bytes())?;
    let out = child.wait_with_output()?;
    ensure!(
        out.status.success(),
        "the health script failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8(out.stdout)?;
    let (status, message) = text.split_once('\n').unwrap_or((text.as_str(), ""));
    Ok((status.to_string(), message.to_string()))
}

/// Argo CD's verdict on a typed resource.
pub fn health_of(resource: &impl serde::Serialize) -> Result<(String, String)> {
    health(&serde_json::to_value(resource)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn literals_keep_structure_and_escape_strings() {
        let v = serde_json::json!({"a": [1, "x\"y\n"], "b": null, "c": true});
        assert_eq!(
            lua_literal(&v),
            r#"{["a"] = {1, "x\"y\n"}, ["b"] = nil, ["c"] = true}"#
        );
    }
}
