//! The connector plugins built into the worker, found by Java class name or by the aliases Java
//! accepts (the simple class name, and the simple name without a trailing `Connector`).

pub mod datagen;
pub mod file;
pub mod http;
pub mod postgres;

use tributary_connect_api::{SinkConnector, SourceConnector};
use tributary_connect_client::ConnectorType;

/// Checks `config` against a connector's `ConfigDef`, every error in one message.
pub fn check_config(
    def: &tributary_connect_api::ConfigDef,
    config: &tributary_connect_api::Config,
) -> tributary_connect_api::ConnectResult<()> {
    def.parse(config).map(|_| ()).map_err(|errors| {
        tributary_connect_api::ConnectError::Config(
            errors
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join("; "),
        )
    })
}

/// The runtime a sink task drives its async client with: `put` is called on the task's own
/// thread, so one current-thread runtime per task is enough.
pub fn task_runtime() -> tributary_connect_api::ConnectResult<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| {
            tributary_connect_api::ConnectError::fatal(format!("cannot start a runtime: {e}"))
        })
}

/// A runtime with one thread of its own, for a task whose database work goes on while the
/// task's thread does something else (a sink's transaction in flight, a source's next batch).
pub fn background_runtime(
    thread_name: &str,
) -> tributary_connect_api::ConnectResult<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .thread_name(thread_name)
        .enable_all()
        .build()
        .map_err(|e| {
            tributary_connect_api::ConnectError::fatal(format!("cannot start a runtime: {e}"))
        })
}

/// Hands a record the store refused to the errant record reporter (the dead letter queue), or
/// fails the task naming it when error tolerance is not configured.
pub fn report_errant(
    context: Option<&std::sync::Arc<dyn tributary_connect_api::SinkTaskContext>>,
    record: &tributary_connect_api::SinkRecord,
    message: String,
) -> tributary_connect_api::ConnectResult<()> {
    use tributary_connect_api::ConnectError;
    match context.and_then(|c| c.errant_record_reporter()) {
        Some(r) => r.report(record, &ConnectError::Fatal(message)),
        None => Err(ConnectError::fatal(format!(
            "a record of {}-{} at offset {} cannot be written: {message} (set errors.tolerance=all and a dead letter queue to skip such records)",
            record.topic, record.kafka_partition, record.kafka_offset
        ))),
    }
}

/// A created connector, of either kind.
pub enum ConnectorInstance {
    Source(Box<dyn SourceConnector>),
    Sink(Box<dyn SinkConnector>),
}

impl std::fmt::Debug for ConnectorInstance {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            ConnectorInstance::Source(_) => "Source",
            ConnectorInstance::Sink(_) => "Sink",
        })
    }
}

impl ConnectorInstance {
    pub fn connector(&self) -> &dyn tributary_connect_api::Connector {
        match self {
            ConnectorInstance::Source(c) => c.as_ref(),
            ConnectorInstance::Sink(c) => c.as_ref(),
        }
    }

    pub fn connector_mut(&mut self) -> &mut dyn tributary_connect_api::Connector {
        match self {
            ConnectorInstance::Source(c) => c.as_mut(),
            ConnectorInstance::Sink(c) => c.as_mut(),
        }
    }
}

/// A connector plugin: its names and a constructor.
#[derive(Debug, Clone, Copy)]
pub struct ConnectorPlugin {
    pub class: &'static str,
    pub task_class: &'static str,
    pub type_: ConnectorType,
    pub create: fn() -> ConnectorInstance,
}

impl ConnectorPlugin {
    pub fn simple_name(&self) -> &'static str {
        self.class.rsplit('.').next().unwrap_or(self.class)
    }

    /// Whether `name` names this plugin: the class, its simple name, or that without
    /// `Connector`.
    pub fn answers_to(&self, name: &str) -> bool {
        let simple = self.simple_name();
        name == self.class || name == simple || simple.strip_suffix("Connector") == Some(name)
    }

    pub fn version(&self) -> String {
        (self.create)().connector().version()
    }
}

pub const PLUGINS: &[ConnectorPlugin] = &[
    ConnectorPlugin {
        class: datagen::CLASS,
        task_class: datagen::TASK_CLASS,
        type_: ConnectorType::Source,
        create: || ConnectorInstance::Source(Box::new(datagen::DatagenConnector::default())),
    },
    ConnectorPlugin {
        class: file::SINK_CLASS,
        task_class: file::SINK_TASK_CLASS,
        type_: ConnectorType::Sink,
        create: || ConnectorInstance::Sink(Box::new(file::FileSinkConnector::default())),
    },
    ConnectorPlugin {
        class: http::SINK_CLASS,
        task_class: http::SINK_TASK_CLASS,
        type_: ConnectorType::Sink,
        create: || ConnectorInstance::Sink(Box::new(http::HttpSinkConnector::default())),
    },
    ConnectorPlugin {
        class: postgres::SINK_CLASS,
        task_class: postgres::SINK_TASK_CLASS,
        type_: ConnectorType::Sink,
        create: || ConnectorInstance::Sink(Box::new(postgres::PostgresSinkConnector::default())),
    },
    ConnectorPlugin {
        class: postgres::source::SOURCE_CLASS,
        task_class: postgres::source::SOURCE_TASK_CLASS,
        type_: ConnectorType::Source,
        create: || {
            ConnectorInstance::Source(Box::new(
                postgres::source::PostgresSourceConnector::default(),
            ))
        },
    },
    ConnectorPlugin {
        class: file::SOURCE_CLASS,
        task_class: file::SOURCE_TASK_CLASS,
        type_: ConnectorType::Source,
        create: || ConnectorInstance::Source(Box::new(file::FileSourceConnector::default())),
    },
];

pub fn find(name: &str) -> Option<&'static ConnectorPlugin> {
    let name = name.trim();
    PLUGINS.iter().find(|p| p.answers_to(name))
}

pub fn type_name(t: ConnectorType) -> &'static str {
    match t {
        ConnectorType::Source => "source",
        ConnectorType::Sink => "sink",
        ConnectorType::Unknown => "unknown",
    }
}

/// The sentence an unknown `connector.class` gets, listing what is available.
pub fn not_found_message(name: &str) -> String {
    format!(
        "Failed to find any class that implements Connector and which name matches {name}, available connectors are: {}",
        PLUGINS
            .iter()
            .map(|p| format!(
                "PluginDesc{{klass=class {}, name='{}', version='{}', type={}}}",
                p.class,
                p.class,
                p.version(),
                match p.type_ {
                    ConnectorType::Source => "source",
                    ConnectorType::Sink => "sink",
                    ConnectorType::Unknown => "unknown",
                }
            ))
            .collect::<Vec<_>>()
            .join(", ")
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn java_aliases_resolve() {
        for name in [
            "org.apache.kafka.connect.file.FileStreamSourceConnector",
            "FileStreamSourceConnector",
            "FileStreamSource",
        ] {
            assert_eq!(
                find(name).map(|p| p.class),
                Some(file::SOURCE_CLASS),
                "{name}"
            );
        }
        assert!(find("FileStream").is_none());
        assert!(not_found_message("x.Nope").contains(file::SINK_CLASS));
    }
}
