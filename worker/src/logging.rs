//! Logger levels changed at run time (KIP-495 `/admin/loggers`, KIP-976 `scope=cluster`): the
//! process's tracing filter is reloadable, and each change adds or replaces directives on top
//! of the filter the worker started with. A namespace is a tracing target
//! (`tributary_worker::task`, or with Java's dots) or one of Apache Kafka Connect's logger names
//! (`org.apache.kafka.connect.runtime.WorkerSinkTask`, or a package of them), which
//! [`JAVA_LOGGERS`] maps to the targets doing that job here, so runbooks and the operator's
//! `spec.logging` written for Java workers work unchanged; `root` changes the default level.

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

/// Apache Kafka Connect's loggers (classes and packages) and the tracing targets that do their
/// job in this worker. A Java package names every logger beneath it, as in log4j.
pub const JAVA_LOGGERS: &[(&str, &[&str])] = &[
    ("org.apache.kafka.clients", &["librdkafka"]),
    (
        "org.apache.kafka.common.config.provider",
        &["tributary_worker::config::providers"],
    ),
    (
        "org.apache.kafka.connect.converters",
        &["tributary_worker::converter"],
    ),
    (
        "org.apache.kafka.connect.file",
        &["tributary_worker::connectors::file"],
    ),
    (
        "org.apache.kafka.connect.json",
        &["tributary_worker::converter"],
    ),
    (
        "org.apache.kafka.connect.runtime.AbstractWorkerSourceTask",
        &["tributary_worker::task::source"],
    ),
    (
        "org.apache.kafka.connect.runtime.Worker",
        &["tributary_worker::task"],
    ),
    (
        "org.apache.kafka.connect.runtime.WorkerSinkTask",
        &["tributary_worker::task::sink"],
    ),
    (
        "org.apache.kafka.connect.runtime.WorkerSourceTask",
        &["tributary_worker::task::source"],
    ),
    (
        "org.apache.kafka.connect.runtime.WorkerTask",
        &["tributary_worker::task"],
    ),
    (
        "org.apache.kafka.connect.runtime.distributed.DistributedHerder",
        &["tributary_worker::distributed", "tributary_worker::herder"],
    ),
    (
        "org.apache.kafka.connect.runtime.distributed.EagerAssignor",
        &["tributary_connect_protocol"],
    ),
    (
        "org.apache.kafka.connect.runtime.distributed.IncrementalCooperativeAssignor",
        &["tributary_connect_protocol"],
    ),
    (
        "org.apache.kafka.connect.runtime.distributed.WorkerCoordinator",
        &["tributary_worker::coordinator"],
    ),
    (
        "org.apache.kafka.connect.runtime.distributed.WorkerGroupMember",
        &["tributary_worker::coordinator"],
    ),
    (
        "org.apache.kafka.connect.runtime.errors",
        &["tributary_worker::task::errors"],
    ),
    (
        "org.apache.kafka.connect.runtime.rest",
        &["tributary_worker::rest"],
    ),
    (
        "org.apache.kafka.connect.runtime.standalone.StandaloneHerder",
        &["tributary_worker::standalone", "tributary_worker::herder"],
    ),
    (
        "org.apache.kafka.connect.storage.FileOffsetBackingStore",
        &["tributary_worker::offset_store"],
    ),
    (
        "org.apache.kafka.connect.storage.KafkaConfigBackingStore",
        &["tributary_worker::config_store"],
    ),
    (
        "org.apache.kafka.connect.storage.KafkaOffsetBackingStore",
        &["tributary_worker::offset_store"],
    ),
    (
        "org.apache.kafka.connect.storage.KafkaStatusBackingStore",
        &["tributary_worker::status_store"],
    ),
    (
        "org.apache.kafka.connect.storage.StringConverter",
        &["tributary_worker::converter"],
    ),
    (
        "org.apache.kafka.connect.transforms",
        &["tributary_worker::transforms"],
    ),
    (
        "org.apache.kafka.connect.util.KafkaBasedLog",
        &["tributary_worker::kafka_log"],
    ),
    (
        "org.apache.kafka.connect.util.TopicAdmin",
        &["tributary_worker::task::topic_creation"],
    ),
];

/// The tracing targets a namespace sets: those of the Java loggers it names or contains, or
/// else the namespace itself with Java's dots as `::`.
pub fn targets(namespace: &str) -> Vec<String> {
    let ns = namespace.trim();
    let mut out: Vec<String> = JAVA_LOGGERS
        .iter()
        .filter(|(java, _)| {
            java.strip_prefix(ns)
                .is_some_and(|rest| rest.is_empty() || rest.starts_with('.'))
        })
        .flat_map(|(_, ts)| ts.iter().map(|t| (*t).to_string()))
        .collect();
    if out.is_empty() {
        out.push(ns.replace('.', "::"));
    }
    out.sort();
    out.dedup();
    out
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
    // One directive per target; where several namespaces reach one target, the most specific
    // (longest) namespace's level wins, as the closer logger does in log4j.
    let mut by_target: BTreeMap<String, (usize, &'static str)> = BTreeMap::new();
    for (ns, l) in levels {
        if ns == "root" {
            continue;
        }
        if let Some(level) = tracing_level(&l.level) {
            for t in targets(ns) {
                let entry = by_target.entry(t).or_insert((0, level));
                if ns.len() >= entry.0 {
                    *entry = (ns.len(), level);
                }
            }
        }
    }
    for (t, (_, level)) in by_target {
        parts.push(format!("{t}={level}"));
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

    fn level(l: &str) -> LoggerLevel {
        LoggerLevel {
            level: l.into(),
            last_modified: Some(1),
        }
    }

    #[test]
    fn java_logger_names_set_the_targets_doing_their_job() {
        assert_eq!(
            targets("org.apache.kafka.connect.runtime.WorkerSinkTask"),
            vec!["tributary_worker::task::sink"]
        );
        // A class name is not a prefix of its neighbours (Worker vs WorkerSinkTask).
        assert_eq!(
            targets("org.apache.kafka.connect.runtime.Worker"),
            vec!["tributary_worker::task"]
        );
        assert_eq!(
            targets("org.apache.kafka.connect.storage"),
            vec![
                "tributary_worker::config_store",
                "tributary_worker::converter",
                "tributary_worker::offset_store",
                "tributary_worker::status_store"
            ]
        );
        assert_eq!(targets("org.apache.kafka")[0], "librdkafka");
        assert!(targets("org.apache.kafka").len() > 10);
        // Our own targets, with dots or colons, and unknown names pass through.
        assert_eq!(
            targets("tributary_worker.rest"),
            vec!["tributary_worker::rest"]
        );
        assert_eq!(
            targets("com.example.MyConnector"),
            vec!["com::example::MyConnector"]
        );
        // Every mapped target is a module of this workspace or librdkafka's.
        for (java, ts) in JAVA_LOGGERS {
            for t in *ts {
                assert!(
                    t.starts_with("tributary_worker")
                        || *t == "tributary_connect_protocol"
                        || *t == "librdkafka",
                    "{java} → {t}"
                );
            }
        }
        assert_eq!(
            targets("org.apache.kafka.connect.runtime.distributed.DistributedHerder"),
            vec!["tributary_worker::distributed", "tributary_worker::herder"]
        );
    }

    #[test]
    fn the_most_specific_java_logger_wins_whatever_the_order() {
        let mut levels = BTreeMap::new();
        levels.insert(
            "org.apache.kafka.connect.runtime".to_string(),
            level("DEBUG"),
        );
        levels.insert(
            "org.apache.kafka.connect.runtime.WorkerSinkTask".to_string(),
            level("ERROR"),
        );
        let d = directives("info", &levels);
        assert!(d.contains("tributary_worker::task::sink=error"), "{d}");
        assert!(!d.contains("tributary_worker::task::sink=debug"), "{d}");
        assert!(d.contains("tributary_worker::task::source=debug"), "{d}");
        assert!(d.contains("tributary_worker::rest=debug"), "{d}");
        EnvFilter::try_new(&d).expect("a valid filter");
    }
}
