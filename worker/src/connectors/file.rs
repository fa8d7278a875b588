//! File source and sink, with the keys and behaviour of Kafka's `FileStreamSourceConnector` and
//! `FileStreamSinkConnector`: lines in, lines out, source offsets `{"filename":…}` →
//! `{"position":<byte after the line>}`, standard input/output when `file` is not set.

use std::fs::File;
use std::io::{BufWriter, Read, Seek, SeekFrom, Write};
use std::sync::Arc;
use std::time::Duration;

use tributary_connect_api::config_def::non_empty_string;
use tributary_connect_api::{
    Config, ConfigDef, ConfigKey, ConfigType, ConnectError, ConnectResult, Connector,
    ConnectorContext, Importance, OffsetMap, Schema, SinkConnector, SinkRecord, SinkTask,
    SinkTaskContext, SourceConnector, SourceRecord, SourceTask, SourceTaskContext, Value,
};

use crate::converter::simple::java_to_string;

pub const SOURCE_CLASS: &str = "org.apache.kafka.connect.file.FileStreamSourceConnector";
pub const SINK_CLASS: &str = "org.apache.kafka.connect.file.FileStreamSinkConnector";
pub const SOURCE_TASK_CLASS: &str = "org.apache.kafka.connect.file.FileStreamSourceTask";
pub const SINK_TASK_CLASS: &str = "org.apache.kafka.connect.file.FileStreamSinkTask";

fn version() -> String {
    env!("CARGO_PKG_VERSION").to_string()
}

fn source_def() -> ConfigDef {
    ConfigDef::new()
        .define(ConfigKey::new(
            "file",
            ConfigType::String,
            Importance::High,
            "Source filename. If not specified, the standard input will be used",
        ).default_null())
        .define(
            ConfigKey::new(
                "topic",
                ConfigType::String,
                Importance::High,
                "The topic to publish data to",
            )
            .validator(non_empty_string()),
        )
        .define(
            ConfigKey::new(
                "batch.size",
                ConfigType::Int,
                Importance::Low,
                "The maximum number of records the source task can read from the file each time it is polled",
            )
            .default_value("2000")
            .validator(tributary_connect_api::config_def::at_least(1.0)),
        )
}

fn checked(def: &ConfigDef, config: &Config) -> ConnectResult<Config> {
    super::check_config(def, config)?;
    // Tasks get the connector's whole config, as Java's file connectors hand it on.
    Ok(config.clone())
}

#[derive(Debug, Default)]
pub struct FileSourceConnector {
    config: Config,
}

impl Connector for FileSourceConnector {
    fn version(&self) -> String {
        version()
    }
    fn config_def(&self) -> ConfigDef {
        source_def()
    }
    fn start(&mut self, config: &Config, _context: Arc<dyn ConnectorContext>) -> ConnectResult<()> {
        self.config = checked(&source_def(), config)?;
        Ok(())
    }
    /// One task, whatever `tasks.max` says: a file is read in order by one reader (as Java).
    fn task_configs(&self, _max_tasks: usize) -> ConnectResult<Vec<Config>> {
        Ok(vec![self.config.clone()])
    }
    fn stop(&mut self) -> ConnectResult<()> {
        Ok(())
    }
}

impl SourceConnector for FileSourceConnector {
    fn create_task(&self) -> Box<dyn SourceTask> {
        Box::new(FileSourceTask::default())
    }
}

/// Where lines come from.
enum Input {
    File(File),
    Stdin(std::io::Stdin),
}

impl std::fmt::Debug for Input {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Input::File(_) => "File",
            Input::Stdin(_) => "Stdin",
        })
    }
}

#[derive(Debug, Default)]
pub struct FileSourceTask {
    filename: Option<String>,
    topic: String,
    batch_size: usize,
    input: Option<Input>,
    buffer: Vec<u8>,
    /// Bytes of `buffer` holding unread data.
    filled: usize,
    /// Byte position in the file of `buffer[0]`.
    position: u64,
    partition: Arc<OffsetMap>,
    pending_context: Option<SourceTaskContext>,
}

/// The next line of `buf`: its end and where the next starts, as Java's `extractLine` (`\n`,
/// `\r\n` or `\r`; a `\r` at the very end waits for the next byte).
pub fn next_line(buf: &[u8]) -> Option<(usize, usize)> {
    let i = buf.iter().position(|&b| b == b'\n' || b == b'\r')?;
    if buf[i] == b'\n' {
        return Some((i, i + 1));
    }
    let next = buf.get(i + 1)?;
    Some((i, if *next == b'\n' { i + 2 } else { i + 1 }))
}

impl FileSourceTask {
    fn open(&mut self, context: &SourceTaskContext) -> ConnectResult<()> {
        let Some(name) = &self.filename else {
            self.input = Some(Input::Stdin(std::io::stdin()));
            return Ok(());
        };
        let mut file = match File::open(name) {
            Ok(f) => f,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                tracing::warn!(file = %name, "file not found; waiting for it to appear");
                return Ok(());
            }
            Err(e) => return Err(ConnectError::fatal(format!("cannot open {name}: {e}"))),
        };
        if let Some(offset) = context.offset_reader.offset(&self.partition) {
            let position = offset
                .get("position")
                .and_then(serde_json::Value::as_u64)
                .ok_or_else(|| {
                    ConnectError::fatal(format!(
                        "the stored offset of {name} has no numeric position: {offset:?}"
                    ))
                })?;
            tracing::info!(file = %name, position, "resuming from the stored offset");
            file.seek(SeekFrom::Start(position))
                .map_err(|e| ConnectError::fatal(format!("cannot seek in {name}: {e}")))?;
            self.position = position;
        }
        self.input = Some(Input::File(file));
        Ok(())
    }
}

impl SourceTask for FileSourceTask {
    fn version(&self) -> String {
        version()
    }

    fn start(&mut self, context: SourceTaskContext) -> ConnectResult<()> {
        let c = &context.config;
        self.filename = c.get("file").filter(|f| !f.trim().is_empty()).cloned();
        self.topic = c
            .get("topic")
            .cloned()
            .ok_or_else(|| ConnectError::Config("topic is not set".into()))?;
        self.batch_size = c
            .get("batch.size")
            .and_then(|b| b.trim().parse().ok())
            .unwrap_or(2000);
        self.partition = Arc::new(OffsetMap::from([(
            "filename".to_string(),
            serde_json::Value::String(self.filename.clone().unwrap_or_default()),
        )]));
        self.buffer = vec![0; 64 * 1024];
        self.open(&context)?;
        // Keep the context to reopen a file that did not exist yet.
        self.pending_context = Some(context);
        Ok(())
    }

    fn poll(&mut self) -> ConnectResult<Vec<SourceRecord>> {
        if self.input.is_none() {
            std::thread::sleep(Duration::from_millis(500));
            if let Some(ctx) = self.pending_context.clone() {
                self.open(&ctx)?;
            }
            return Ok(Vec::new());
        }
        let mut records = Vec::new();
        // Java stamps each record with the clock as it reads the line; one reading per poll is
        // the same to the millisecond at these rates and saves a clock call per record.
        let timestamp = now_millis();
        loop {
            // Emit the complete lines in the buffer.
            let mut start = 0;
            while records.len() < self.batch_size {
                let Some((end, next)) = next_line(&self.buffer[start..self.filled]) else {
                    break;
                };
                let line = String::from_utf8_lossy(&self.buffer[start..start + end]).into_owned();
                start += next;
                let position = self.position + start as u64;
                let mut offset = OffsetMap::new();
                offset.insert("position".into(), serde_json::Value::from(position));
                let mut r = SourceRecord::new(
                    self.partition.clone(),
                    offset,
                    self.topic.clone(),
                    Some(Schema::string()),
                    Some(Value::String(line)),
                );
                r.timestamp = Some(timestamp);
                records.push(r);
            }
            if start > 0 {
                self.buffer.copy_within(start..self.filled, 0);
                self.filled -= start;
                self.position += start as u64;
            }
            if records.len() >= self.batch_size {
                return Ok(records);
            }
            if self.filled == self.buffer.len() {
                // A line longer than the buffer: grow it, as Java does.
                self.buffer.resize(self.buffer.len() * 2, 0);
            }
            let read = match self.input.as_mut() {
                Some(Input::File(f)) => f.read(&mut self.buffer[self.filled..]),
                Some(Input::Stdin(s)) => s.lock().read(&mut self.buffer[self.filled..]),
                None => Ok(0),
            }
            .map_err(|e| ConnectError::retriable(format!("cannot read the input: {e}")))?;
            if read == 0 {
                if records.is_empty() {
                    // Nothing new; Java waits a second here. A shorter wait keeps `stop` prompt.
                    std::thread::sleep(Duration::from_millis(200));
                }
                return Ok(records);
            }
            self.filled += read;
        }
    }

    fn stop(&mut self) -> ConnectResult<()> {
        self.input = None;
        Ok(())
    }
}

fn now_millis() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

fn sink_def() -> ConfigDef {
    ConfigDef::new().define(
        ConfigKey::new(
            "file",
            ConfigType::String,
            Importance::High,
            "Destination filename. If not specified, the standard output will be used",
        )
        .default_null(),
    )
}

#[derive(Debug, Default)]
pub struct FileSinkConnector {
    config: Config,
}

impl Connector for FileSinkConnector {
    fn version(&self) -> String {
        version()
    }
    fn config_def(&self) -> ConfigDef {
        sink_def()
    }
    fn start(&mut self, config: &Config, _context: Arc<dyn ConnectorContext>) -> ConnectResult<()> {
        self.config = checked(&sink_def(), config)?;
        Ok(())
    }
    /// One task: several writers would interleave lines in one file.
    /// One config per allowed task, as Java's `FileStreamSinkConnector` (the tasks share the
    /// topics' partitions and append to the same file).
    fn task_configs(&self, max_tasks: usize) -> ConnectResult<Vec<Config>> {
        Ok(vec![self.config.clone(); max_tasks.max(1)])
    }
    fn stop(&mut self) -> ConnectResult<()> {
        Ok(())
    }
}

impl SinkConnector for FileSinkConnector {
    fn create_task(&self) -> Box<dyn SinkTask> {
        Box::new(FileSinkTask::default())
    }
}

#[derive(Debug, Default)]
pub struct FileSinkTask {
    out: Option<BufWriter<Box<dyn WriteDebug>>>,
    line: String,
}

/// `Write` that can be named in `Debug` output.
trait WriteDebug: Write + Send {}
impl<T: Write + Send> WriteDebug for T {}

impl std::fmt::Debug for dyn WriteDebug {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("output")
    }
}

impl SinkTask for FileSinkTask {
    fn version(&self) -> String {
        version()
    }

    fn start(&mut self, context: Arc<dyn SinkTaskContext>) -> ConnectResult<()> {
        let file = context
            .config()
            .get("file")
            .filter(|f| !f.trim().is_empty())
            .cloned();
        let out: Box<dyn WriteDebug> = match file {
            Some(name) => Box::new(
                std::fs::OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(&name)
                    .map_err(|e| ConnectError::fatal(format!("cannot open {name}: {e}")))?,
            ),
            None => Box::new(std::io::stdout()),
        };
        self.out = Some(BufWriter::with_capacity(256 * 1024, out));
        Ok(())
    }

    fn put(&mut self, records: &[SinkRecord]) -> ConnectResult<()> {
        let out = self
            .out
            .as_mut()
            .ok_or_else(|| ConnectError::fatal("put before start"))?;
        for r in records {
            let text = match &r.value {
                None => "null",
                Some(Value::String(s)) => s.as_str(),
                Some(v) => {
                    self.line = java_to_string(v).unwrap_or_else(|_| format!("{v:?}"));
                    self.line.as_str()
                }
            };
            // A line and its newline reach the file in one write: tasks of one connector
            // append to the same file (O_APPEND) and must not split each other's lines.
            if out.capacity() - out.buffer().len() <= text.len() {
                out.flush()
                    .map_err(|e| ConnectError::retriable(format!("cannot write: {e}")))?;
            }
            out.write_all(text.as_bytes())
                .and_then(|()| out.write_all(b"\n"))
                .map_err(|e| ConnectError::retriable(format!("cannot write: {e}")))?;
        }
        // Hand each batch to the operating system, as Java's PrintStream does per line, so
        // readers see records without waiting for the next offset commit.
        out.flush()
            .map_err(|e| ConnectError::retriable(format!("cannot write: {e}")))?;
        Ok(())
    }

    /// Hands everything written to the operating system, as Java's `flush` does, before the
    /// offsets are committed; a worker crash then loses nothing already committed.
    fn flush(&mut self, _offsets: &tributary_connect_api::SinkOffsets) -> ConnectResult<()> {
        if let Some(out) = self.out.as_mut() {
            out.flush()
                .map_err(|e| ConnectError::retriable(format!("cannot flush: {e}")))?;
        }
        Ok(())
    }

    fn stop(&mut self) -> ConnectResult<()> {
        if let Some(mut out) = self.out.take() {
            out.flush()
                .map_err(|e| ConnectError::fatal(format!("cannot flush: {e}")))?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Stored(Option<OffsetMap>);
    impl tributary_connect_api::OffsetStorageReader for Stored {
        fn offset(&self, _partition: &OffsetMap) -> Option<OffsetMap> {
            self.0.clone()
        }
    }

    fn start(path: &std::path::Path, stored: Option<u64>, batch: &str) -> FileSourceTask {
        let mut t = FileSourceTask::default();
        let config: Config = [
            ("file".to_string(), path.display().to_string()),
            ("topic".to_string(), "t".to_string()),
            ("batch.size".to_string(), batch.to_string()),
        ]
        .into();
        let offset = stored.map(|p| {
            [("position".to_string(), serde_json::Value::from(p))]
                .into_iter()
                .collect()
        });
        t.start(SourceTaskContext {
            config,
            offset_reader: Arc::new(Stored(offset)),
        })
        .unwrap_or_else(|e| panic!("{e}"));
        t
    }

    fn lines(records: &[SourceRecord]) -> Vec<(String, u64)> {
        records
            .iter()
            .map(|r| {
                let Some(Value::String(s)) = &r.value else {
                    panic!("not a string")
                };
                let pos = r.source_offset["position"].as_u64().unwrap_or(0);
                (s.clone(), pos)
            })
            .collect()
    }

    #[test]
    fn source_reads_lines_with_byte_positions_and_resumes_after_the_stored_one() {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let path = dir.path().join("in.txt");
        std::fs::write(&path, "one\r\ntwo\nthree\npartial").unwrap_or_else(|e| panic!("{e}"));
        let mut t = start(&path, None, "2");
        let first = t.poll().unwrap_or_default();
        assert_eq!(lines(&first), vec![("one".into(), 5), ("two".into(), 9)]);
        assert_eq!(
            first[0].source_partition["filename"],
            serde_json::Value::String(path.display().to_string())
        );
        assert_eq!(
            lines(&t.poll().unwrap_or_default()),
            vec![("three".into(), 15)]
        );
        // The unterminated line waits for its newline.
        assert!(t.poll().unwrap_or_default().is_empty());
        std::fs::OpenOptions::new()
            .append(true)
            .open(&path)
            .and_then(|mut f| f.write_all(b" line\n"))
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            lines(&t.poll().unwrap_or_default()),
            vec![("partial line".into(), 28)]
        );
        // A restart resumes after the stored position.
        let mut again = start(&path, Some(9), "100");
        assert_eq!(
            lines(&again.poll().unwrap_or_default()),
            vec![("three".into(), 15), ("partial line".into(), 28)]
        );
    }

    #[test]
    fn lines_end_like_javas_extract_line() {
        assert_eq!(next_line(b"ab\ncd"), Some((2, 3)));
        assert_eq!(next_line(b"ab\r\ncd"), Some((2, 4)));
        assert_eq!(next_line(b"ab\rcd"), Some((2, 3)));
        assert_eq!(next_line(b"ab\r"), None);
        assert_eq!(next_line(b"abc"), None);
    }
}
