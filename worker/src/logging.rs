//! Logger levels changed at run time (KIP-495 `/admin/loggers`, KIP-976 `scope=cluster`): the
//! process's tracing filter is reloadable, and each change adds or replaces one
//! `namespace=level` directive on top of the filter the worker started with. Namespaces are
//! tracing targets (`tributary_worker::task`; Java's dotted names are accepted and mapped to
//! `::`); `root` changes the default level.

use std::collections::BTreeMap;
use std::sync::{Mutex, OnceLock};

use tracing_subscriber::reload;
use tracing_subscriber::{EnvFilter, Registry};

/// A logger's level as `GET /admin/loggers` shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoggerLevel {
    pub level: String,
    /// Milliseconds since the epoch of the last change through the API; `None` when unchanged.
    pub last_modified: Option<i64>,
}

struct Loggers {
    handle: reload::Handle<EnvFilter, Registry>,
    /// The directives the process started with (`TRIBUTARY_LOG`, `RUST_LOG` or `info`).
    base: String,
    levels: Mutex<BTreeMap<String, LoggerLevel>>,
}

static LOGGERS: OnceLock<Loggers> = OnceLock::new();

/// Called once by the binary after it installed a reloadable filter built from `base`.
pub fn install(handle: reload::Handle<EnvFilter, Registry>, base: String) {
    let _ = LOGGERS.set(Loggers {
        handle,
        base,
        levels: Mutex::new(BTreeMap::new()),
    });
}

/// Java's level names (FATAL is ERROR here; ALL is TRACE) → tracing's; `None` for an unknown one.
pub fn tracing_level(level: &str) -> Option<&'static str> {
    Some(match level.trim().to_ascii_uppercase().as_str() {
        "TRACE" | "ALL" => "trace",
        "DEBUG" => "debug",
        "INFO" => "info",
        "WARN" => "warn",
        "ERROR" | "FATAL" => "error",
        "OFF" => "off",
        _ => return None,
    })
}

/// A namespace as a tracing target: Java's dots become `::`.
pub fn target(namespace: &str) -> String {
    namespace.trim().replace('.', "::")
}

/// The filter directives for `base` plus the changed levels (root replaces the default).
pub fn directives(base: &str, levels: &BTreeMap<String, LoggerLevel>) -> String {
    let mut parts: Vec<String> = Vec::new();
    match levels.get("root") {
        Some(root) => {
            parts.push(tracing_level(&root.level).unwrap_or("info").to_string());
            // Keep the base's per-target directives, drop its default.
            parts.extend(
                base.split(',')
                    .map(str::trim)
                    .filter(|d| d.contains('='))
                    .map(str::to_string),
            );
        }
        None => parts.push(base.to_string()),
    }
    for (ns, l) in levels {
        if ns != "root"
            && let Some(level) = tracing_level(&l.level)
        {
            parts.push(format!("{}={level}", target(ns)));
        }
    }
    parts.retain(|p| !p.is_empty());
    parts.join(",")
}

/// Sets (or with `None` resets) a logger's level; returns the loggers affected.
pub fn set(namespace: &str, level: Option<&str>, now_ms: i64) -> Result<Vec<String>, String> {
    let loggers = LOGGERS
        .get()
        .ok_or("logger levels cannot be changed in this process")?;
    if let Some(l) = level
        && tracing_level(l).is_none()
    {
        return Err(format!(
            "Invalid log level '{l}'; use one of TRACE, DEBUG, INFO, WARN, ERROR, OFF"
        ));
    }
    let mut levels = loggers
        .levels
        .lock()
        .map_err(|_| "logger lock poisoned".to_string())?;
    let name = namespace.trim().to_string();
    match level {
        Some(l) => {
            levels.insert(
                name.clone(),
                LoggerLevel {
                    level: l.trim().to_ascii_uppercase(),
                    last_modified: Some(now_ms),
                },
            );
        }
        None => {
            levels.remove(&name);
        }
    }
    let filter = EnvFilter::try_new(directives(&loggers.base, &levels))
        .map_err(|e| format!("cannot set {name}: {e}"))?;
    loggers
        .handle
        .reload(filter)
        .map_err(|e| format!("cannot set {name}: {e}"))?;
    tracing::info!(logger = %name, level = level.unwrap_or("(reset)"), "logger level changed");
    Ok(vec![name])
}

/// Every logger with a level: `root` (the starting default unless changed) and those changed.
pub fn all() -> BTreeMap<String, LoggerLevel> {
    let Some(loggers) = LOGGERS.get() else {
        return BTreeMap::new();
    };
    let mut out = loggers.levels.lock().map(|l| l.clone()).unwrap_or_default();
    out.entry("root".into()).or_insert_with(|| LoggerLevel {
        level: loggers
            .base
            .split(',')
            .map(str::trim)
            .find(|d| !d.contains('='))
            .unwrap_or("info")
            .to_ascii_uppercase(),
        last_modified: None,
    });
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn changes_stack_on_the_starting_filter() {
        let mut levels = BTreeMap::new();
        levels.insert(
            "tributary_worker.task".to_string(),
            LoggerLevel {
                level: "DEBUG".into(),
                last_modified: Some(1),
            },
        );
        assert_eq!(
            directives("info,librdkafka=warn", &levels),
            "info,librdkafka=warn,tributary_worker::task=debug"
        );
        levels.insert(
            "root".to_string(),
            LoggerLevel {
                level: "WARN".into(),
                last_modified: Some(2),
            },
        );
        assert_eq!(
            directives("info,librdkafka=warn", &levels),
            "warn,librdkafka=warn,tributary_worker::task=debug"
        );
        assert_eq!(tracing_level("fatal"), Some("error"));
        assert_eq!(tracing_level("verbose"), None);
    }
}
