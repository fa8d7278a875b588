//! PostgreSQL sink: records of Kafka topics into tables, with the JDBC sink connector's keys and
//! semantics (`insert.mode`, `pk.mode`, `pk.fields`, `auto.create`, `auto.evolve`,
//! `delete.enabled`, `table.name.format`, `batch.size`).
//!
//! Each `put` is written in one transaction per call, so what `put` accepted is durable before
//! the worker commits its offsets. Rows travel as one `text[]` parameter per column and are
//! written by one statement per batch (`INSERT … SELECT FROM UNNEST … ON CONFLICT DO UPDATE`),
//! which keeps round trips independent of the batch size. In upsert and update modes the records
//! of a batch are collapsed to the last one per key (what the table ends up holding is the same,
//! and PostgreSQL refuses a statement that touches one row twice). A batch the database refuses
//! is written again row by row in savepoints, and only the rows it still refuses go to the
//! errant record reporter (the dead letter queue) — or fail the task without one.

pub mod querier;
pub mod source;
pub mod sql;
pub mod types;

use futures::SinkExt;
use std::collections::{HashMap, VecDeque};
use std::sync::Arc;

use tributary_connect_api::config_def::one_of;
use tributary_connect_api::{
    Config, ConfigDef, ConfigKey, ConfigType, ConnectError, ConnectResult, Connector,
    ConnectorContext, Importance, Schema, SinkConnector, SinkOffsets, SinkRecord, SinkTask,
    SinkTaskContext, Type, Value,
};

use sql::Column;

pub const SINK_CLASS: &str = "dev.tributary.connect.postgres.PostgresSinkConnector";
pub const SINK_TASK_CLASS: &str = "dev.tributary.connect.postgres.PostgresSinkTask";

fn version() -> String {
    env!("CARGO_PKG_VERSION").to_string()
}

/// The connection keys the source and the sink share.
pub(crate) fn connection_def() -> ConfigDef {
    let key = |name: &str, t: ConfigType, i: Importance, doc: &str| ConfigKey::new(name, t, i, doc);
    ConfigDef::new()
        .define(key("connection.url", ConfigType::String, Importance::High,
            "The database: jdbc:postgresql://host:port/db, postgres://… or a key=value connection string."))
        .define(key("connection.user", ConfigType::String, Importance::High, "The database user.").default_null())
        .define(key("connection.password", ConfigType::Password, Importance::High, "The user's password (use a config provider).").default_null())
}

pub fn sink_def() -> ConfigDef {
    let key = |name: &str, t: ConfigType, i: Importance, doc: &str| ConfigKey::new(name, t, i, doc);
    connection_def()
        .define(key("insert.mode", ConfigType::String, Importance::High,
            "insert: plain inserts; upsert: insert or update by primary key; update: update rows by primary key.")
            .default_value("insert").validator(one_of(&["insert", "upsert", "update"])))
        .define(key("pk.mode", ConfigType::String, Importance::High,
            "Where the primary key comes from: none, kafka (topic, partition, offset), record_key or record_value.")
            .default_value("none").validator(one_of(&["none", "kafka", "record_key", "record_value"])))
        .define(key("pk.fields", ConfigType::List, Importance::Medium,
            "Primary key columns: for kafka three names (default __connect_topic,__connect_partition,__connect_offset); for record_key a primitive key's column name (default __connect_key) or the key struct's fields (default all); for record_value the value's fields (default all).")
            .default_value(""))
        .define(key("auto.create", ConfigType::Boolean, Importance::Medium, "Create a missing table from the record's schema.").default_value("false"))
        .define(key("auto.evolve", ConfigType::Boolean, Importance::Medium, "Add columns the record's schema has and the table lacks.").default_value("false"))
        .define(key("delete.enabled", ConfigType::Boolean, Importance::Medium, "Delete the row of a tombstone's key (pk.mode record_key).").default_value("false"))
        .define(key("table.name.format", ConfigType::String, Importance::Medium, "The table, with ${topic} for the record's topic.").default_value("${topic}"))
        .define(key("batch.size", ConfigType::Int, Importance::Medium, "Most rows in one statement.").default_value("3000")
            .validator(tributary_connect_api::config_def::at_least(1.0)))
}

/// The settings a task works with, checked.
#[derive(Debug, Clone)]
struct Settings {
    url: String,
    user: Option<String>,
    password: Option<String>,
    mode: Mode,
    pk_mode: PkMode,
    pk_fields: Vec<String>,
    auto_create: bool,
    auto_evolve: bool,
    delete_enabled: bool,
    table_format: String,
    batch_size: usize,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    Insert,
    Upsert,
    Update,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum PkMode {
    None,
    Kafka,
    RecordKey,
    RecordValue,
}

fn settings(config: &Config) -> ConnectResult<Settings> {
    super::check_config(&sink_def(), config)?;
    let get = |k: &str| {
        config
            .get(k)
            .map(|v| v.trim().to_string())
            .filter(|v| !v.is_empty())
    };
    let flag = |k: &str| get(k).is_some_and(|v| v.eq_ignore_ascii_case("true"));
    let mode = match get("insert.mode").as_deref() {
        Some("upsert") => Mode::Upsert,
        Some("update") => Mode::Update,
        _ => Mode::Insert,
    };
    let pk_mode = match get("pk.mode").as_deref() {
        Some("kafka") => PkMode::Kafka,
        Some("record_key") => PkMode::RecordKey,
        Some("record_value") => PkMode::RecordValue,
        _ => PkMode::None,
    };
    let pk_fields = crate::config::list_value(config, "pk.fields");
    let delete_enabled = flag("delete.enabled");
    if delete_enabled && pk_mode != PkMode::RecordKey {
        return Err(ConnectError::Config(
            "delete.enabled=true needs pk.mode=record_key: a tombstone has only its key to say which row to delete".into(),
        ));
    }
    if mode != Mode::Insert && pk_mode == PkMode::None {
        return Err(ConnectError::Config(format!(
            "insert.mode={} needs a primary key: set pk.mode to kafka, record_key or record_value",
            if mode == Mode::Upsert {
                "upsert"
            } else {
                "update"
            }
        )));
    }
    if pk_mode == PkMode::Kafka && !pk_fields.is_empty() && pk_fields.len() != 3 {
        return Err(ConnectError::Config(format!(
            "pk.fields for pk.mode=kafka names the topic, partition and offset columns: three names, not {}",
            pk_fields.len()
        )));
    }
    Ok(Settings {
        url: get("connection.url").unwrap_or_default(),
        user: get("connection.user"),
        password: config
            .get("connection.password")
            .cloned()
            .filter(|p| !p.is_empty()),
        mode,
        pk_mode,
        pk_fields,
        auto_create: flag("auto.create"),
        auto_evolve: flag("auto.evolve"),
        delete_enabled,
        table_format: get("table.name.format").unwrap_or_else(|| "${topic}".into()),
        batch_size: get("batch.size")
            .and_then(|b| b.parse().ok())
            .unwrap_or(3000),
    })
}

/// The `tokio_postgres` connection settings for a JDBC URL, a `postgres://` URL or a
/// `key=value` string; user and password from their own keys win.
pub(crate) fn connect_config(
    url: &str,
    user: Option<&str>,
    password: Option<&str>,
    application: &str,
) -> ConnectResult<tokio_postgres::Config> {
    let url = url.strip_prefix("jdbc:").unwrap_or(url);
    let url = url
        .strip_prefix("postgresql:")
        .map_or_else(|| url.to_string(), |rest| format!("postgresql:{rest}"));
    let mut c: tokio_postgres::Config = url.parse().map_err(|e| {
        ConnectError::Config(format!("connection.url: cannot read it as a PostgreSQL address ({e}); use jdbc:postgresql://host:port/database"))
    })?;
    if let Some(u) = user {
        c.user(u);
    }
    if let Some(p) = password {
        c.password(p);
    }
    c.application_name(application);
    c.connect_timeout(std::time::Duration::from_secs(10));
    Ok(c)
}

fn pg_config(s: &Settings) -> ConnectResult<tokio_postgres::Config> {
    connect_config(
        &s.url,
        s.user.as_deref(),
        s.password.as_deref(),
        "tributary-postgres-sink",
    )
}

#[derive(Debug, Default)]
pub struct PostgresSinkConnector {
    config: Config,
}

impl Connector for PostgresSinkConnector {
    fn version(&self) -> String {
        version()
    }
    fn config_def(&self) -> ConfigDef {
        sink_def()
    }
    fn start(&mut self, config: &Config, _context: Arc<dyn ConnectorContext>) -> ConnectResult<()> {
        settings(config)?;
        self.config = config.clone();
        Ok(())
    }
    fn task_configs(&self, max_tasks: usize) -> ConnectResult<Vec<Config>> {
        Ok(vec![self.config.clone(); max_tasks.max(1)])
    }
    fn stop(&mut self) -> ConnectResult<()> {
        Ok(())
    }
}

impl SinkConnector for PostgresSinkConnector {
    fn create_task(&self) -> Box<dyn SinkTask> {
        Box::new(PostgresSinkTask::default())
    }
}

/// The columns of a table as the sink knows them.
type Columns = Vec<(String, String)>;

#[derive(Default)]
pub struct PostgresSinkTask {
    settings: Option<Settings>,
    runtime: Option<tokio::runtime::Runtime>,
    client: Option<tokio_postgres::Client>,
    context: Option<Arc<dyn SinkTaskContext>>,
    /// Known tables and their columns (lower-cased names as PostgreSQL folds them are not
    /// assumed: columns are created quoted, with the field's exact name).
    tables: HashMap<Arc<str>, Columns>,
    /// The shape of the last record's row, reused while topic and schemas stay the same:
    /// building columns per record was a good part of the sink's CPU.
    last_shape: Option<Shape>,
    /// The writes `put` handed over and nobody has waited for yet: one running while the
    /// worker converts the next batch, and at most one more queued behind it.
    writer: Option<Writer>,
    /// Rows accepted by `put`s whose writes failed on the connection or never ran, oldest
    /// first: written before anything newer. Only ever non-empty while there is no writer.
    pending: VecDeque<(Groups, Kept)>,
    /// The text length of the last row, the capacity the next one starts with.
    text_hint: usize,
}

/// A put's rows in groups of one statement shape, shared with the transaction writing them
/// (which reads its parameters straight from them).
type Groups = Arc<Vec<Vec<Row>>>;

/// A transaction's outcome: the rows refused (their index in the put and why) or why it failed.
type Written = Result<Vec<(usize, String)>, ConnectError>;

/// How many `put`s may be unsettled at once: one transaction running and one queued behind
/// it. With one, every batch the worker was late with (another process had the CPU) left
/// the database idle; with two, the worker may be up to a batch late without that, as long as
/// it keeps up on average. Measured at insert/5,000: the database was idle 14 % of the time
/// with one.
const WRITES_IN_FLIGHT: usize = 2;

/// The task on the runtime that owns the connection while writes are queued and runs their
/// transactions one after the other, so that the database goes from one to the next without
/// waiting for the task thread. It stops at the first write that fails (the ones queued
/// behind it are given back unrun: nothing is written out of order) and when the queue is
/// closed, giving the client back.
struct Writer {
    jobs: tokio::sync::mpsc::UnboundedSender<Job>,
    handle: tokio::task::JoinHandle<tokio_postgres::Client>,
    /// Oldest first; each one's rows and records stay here in case the database refuses
    /// some of them.
    queued: VecDeque<Queued>,
}

struct Job {
    groups: Groups,
    statements: Vec<Statement>,
    done: tokio::sync::oneshot::Sender<Written>,
}

struct Queued {
    /// Closed without an outcome: the write never ran.
    done: tokio::sync::oneshot::Receiver<Written>,
    groups: Groups,
    records: Kept,
}

/// Runs the queued writes in order until one fails or the queue closes; gives the client back.
async fn run_writer(
    mut client: tokio_postgres::Client,
    mut jobs: tokio::sync::mpsc::UnboundedReceiver<Job>,
) -> tokio_postgres::Client {
    while let Some(job) = jobs.recv().await {
        let outcome = execute(&mut client, job.groups, job.statements, false).await;
        let failed = outcome.is_err();
        // The task may have stopped waiting (it is stopping): nothing to tell then.
        let _ = job.done.send(outcome);
        if failed {
            // Dropping the queue drops the jobs behind this one: their `done` closes unrun.
            break;
        }
    }
    client
}

/// What a row's table, columns and key are, decided by the record's topic and schemas.
struct Shape {
    topic: String,
    key_schema: Option<Schema>,
    value_schema: Option<Schema>,
    delete: bool,
    table: Arc<str>,
    columns: Arc<Vec<Column>>,
    pk: Arc<Vec<String>>,
}

/// A shape's table, columns and key, shared by its rows.
type ShapeParts = (Arc<str>, Arc<Vec<Column>>, Arc<Vec<String>>);

/// The same schema: the same instance (converters hand out one per distinct schema), or equal.
fn same_schema(a: Option<&Schema>, b: Option<&Schema>) -> bool {
    match (a, b) {
        (None, None) => true,
        (Some(a), Some(b)) => a.is_same(b) || a == b,
        _ => false,
    }
}

impl std::fmt::Debug for PostgresSinkTask {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PostgresSinkTask").finish_non_exhaustive()
    }
}

/// One record as a row: its table, the columns and their texts, and whether it deletes.
#[derive(Debug, Clone)]
struct Row {
    table: Arc<str>,
    columns: Arc<Vec<Column>>,
    values: Cells,
    pk: Arc<Vec<String>>,
    delete: bool,
    /// The record's index in the `put` batch, for the errant record reporter.
    index: usize,
}

/// A DDL failure: another task creating or altering the same table at the same moment is
/// retried (the next attempt finds the table as the other task left it); anything else is for
/// the user to fix.
fn ddl_error(what: String, e: &tokio_postgres::Error) -> ConnectError {
    let racing = e.code().is_some_and(|c| {
        let c = c.code();
        c == "42P07" || c == "42701" || c.starts_with("23") || c.starts_with("40")
    });
    let message = format!("{what}: {}", db_error(e));
    if racing {
        ConnectError::retriable(message)
    } else {
        ConnectError::fatal(message)
    }
}

/// A row's values as the text PostgreSQL parses, in one buffer: a row of a few columns costs
/// one allocation, not one per value (they were a good part of the sink's malloc time).
#[derive(Debug, Clone, Default)]
struct Cells {
    text: String,
    /// Each value's range of `text`, `None` for NULL; inline up to 8 columns. (u32: a row
    /// comes from one Kafka record, whose size is an int32; small keeps rows cheap to move.)
    ranges: smallvec::SmallVec<[Option<(u32, u32)>; 8]>,
}

impl Cells {
    fn push(&mut self, value: Option<&Value>) -> Result<(), String> {
        let start = self.text.len();
        let some = sql::write_text(value, &mut self.text)?;
        let end = u32::try_from(self.text.len()).map_err(|_| "the row is over 4 GiB of text")?;
        // start <= end, which fits.
        self.ranges.push(some.then_some((start as u32, end)));
        Ok(())
    }

    fn get(&self, i: usize) -> Option<&str> {
        self.ranges
            .get(i)
            .copied()
            .flatten()
            .and_then(|(a, b)| self.text.get(a as usize..b as usize))
    }

    fn iter(&self) -> impl Iterator<Item = Option<&str>> {
        (0..self.ranges.len()).map(|i| self.get(i))
    }
}

impl Row {
    /// The texts of its primary key columns.
    fn key(&self) -> Vec<Option<&str>> {
        self.columns
            .iter()
            .zip(self.values.iter())
            .filter(|(c, _)| self.pk.contains(&c.name))
            .map(|(_, v)| v)
            .collect()
    }
}

/// One statement of a write: its SQL, a text array per column (or COPY's data), and the rows'
/// indexes.
struct Statement {
    sql: String,
    data: StatementData,
    indexes: Vec<usize>,
}

enum StatementData {
    /// One text array parameter per column (of `columns`), taken from the rows `rows` of
    /// group `group` when the statement runs.
    Arrays {
        group: usize,
        rows: std::ops::Range<usize>,
        columns: Vec<usize>,
    },
    /// COPY's text-format rows.
    Copy(String),
}

pub(crate) fn db_error(e: &tokio_postgres::Error) -> String {
    match e.as_db_error() {
        Some(db) => format!("{} ({})", db.message(), db.code().code()),
        None => e.to_string(),
    }
}

impl PostgresSinkTask {
    fn connect(&mut self) -> ConnectResult<()> {
        if self.client.as_ref().is_some_and(|c| !c.is_closed()) {
            return Ok(());
        }
        let s = self
            .settings
            .as_ref()
            .ok_or_else(|| ConnectError::fatal("put before start"))?;
        let config = pg_config(s)?;
        let rt = self
            .runtime
            .as_ref()
            .ok_or_else(|| ConnectError::fatal("no runtime"))?;
        let (client, connection) =
            rt.block_on(config.connect(tokio_postgres::NoTls))
                .map_err(|e| {
                    ConnectError::retriable(format!(
                        "cannot connect to PostgreSQL: {}",
                        db_error(&e)
                    ))
                })?;
        rt.spawn(tracing::Instrument::instrument(
            async move {
                if let Err(e) = connection.await {
                    tracing::warn!(error = %e, "PostgreSQL connection closed");
                }
            },
            tracing::Span::current(),
        ));
        self.client = Some(client);
        self.tables.clear();
        Ok(())
    }

    fn table_of(&self, topic: &str) -> String {
        let s = self
            .settings
            .as_ref()
            .map_or("${topic}", |s| s.table_format.as_str());
        s.replace("${topic}", topic)
    }

    /// The record as a row, or why it cannot be one.
    fn row(&mut self, r: &SinkRecord, index: usize) -> Result<Option<Row>, String> {
        let delete = r.value.is_none();
        let known = self
            .last_shape
            .as_ref()
            .filter(|k| {
                k.delete == delete
                    && k.topic == r.topic
                    && same_schema(k.key_schema.as_ref(), r.key_schema.as_ref())
                    && same_schema(k.value_schema.as_ref(), r.value_schema.as_ref())
            })
            .map(|k| (k.table.clone(), k.columns.clone(), k.pk.clone()));
        let cached = known.is_some();
        let mut columns = Vec::new();
        let mut values = Cells {
            text: String::with_capacity(self.text_hint),
            ranges: Default::default(),
        };
        let mut pk = Vec::new();
        // With a known shape only the values are computed; the checks that depend on values
        // alone (null key, value against its schema) run for every record.
        let push = |columns: &mut Vec<Column>,
                    values: &mut Cells,
                    name: &str,
                    schema: &Schema,
                    v: Option<&Value>|
         -> Result<(), String> {
            if !cached {
                columns.push(Column {
                    name: name.to_string(),
                    sql_type: sql::column_type(schema).map_err(|e| format!("field {name}: {e}"))?,
                    optional: schema.is_optional(),
                });
            }
            values.push(v).map_err(|e| format!("field {name}: {e}"))?;
            Ok(())
        };
        let s = self.settings.as_ref().ok_or("not started")?;
        match s.pk_mode {
            PkMode::None => {}
            PkMode::Kafka => {
                let names = if s.pk_fields.len() == 3 {
                    s.pk_fields.clone()
                } else {
                    vec![
                        "__connect_topic".into(),
                        "__connect_partition".into(),
                        "__connect_offset".into(),
                    ]
                };
                push(
                    &mut columns,
                    &mut values,
                    &names[0],
                    &Schema::string(),
                    Some(&Value::String(r.topic.clone())),
                )?;
                push(
                    &mut columns,
                    &mut values,
                    &names[1],
                    &Schema::int32(),
                    Some(&Value::Int32(r.kafka_partition)),
                )?;
                push(
                    &mut columns,
                    &mut values,
                    &names[2],
                    &Schema::int64(),
                    Some(&Value::Int64(r.kafka_offset)),
                )?;
                pk = names;
            }
            PkMode::RecordKey => {
                let schema = r.key_schema.as_ref().ok_or(
                    "pk.mode=record_key needs a key with a schema (JsonConverter with schemas.enable=true, or a primitive key converter)",
                )?;
                if r.key.is_none() {
                    return Err("pk.mode=record_key: the record has a null key".into());
                }
                if schema.type_() == Type::Struct {
                    let Some(Value::Struct(k)) = &r.key else {
                        return Err("the key does not match its struct schema".into());
                    };
                    let wanted: Vec<String> = if s.pk_fields.is_empty() {
                        schema.fields().iter().map(|f| f.name.clone()).collect()
                    } else {
                        s.pk_fields.clone()
                    };
                    for name in &wanted {
                        let f = schema.field(name).ok_or_else(|| {
                            format!("pk.fields names {name}, which the key struct lacks")
                        })?;
                        push(
                            &mut columns,
                            &mut values,
                            name,
                            &f.schema,
                            k.get(name).map_err(|e| e.to_string())?,
                        )?;
                    }
                    pk = wanted;
                } else {
                    let name = s
                        .pk_fields
                        .first()
                        .cloned()
                        .unwrap_or_else(|| "__connect_key".into());
                    push(&mut columns, &mut values, &name, schema, r.key.as_ref())?;
                    pk = vec![name];
                }
            }
            PkMode::RecordValue => {}
        }
        if delete {
            if s.delete_enabled {
                return Ok(Some(self.shaped(r, known, (columns, pk, values), index)));
            }
            // A tombstone without delete.enabled has nothing to write, as in the JDBC sink.
            return Ok(None);
        }
        let schema = r.value_schema.as_ref().filter(|s| s.type_() == Type::Struct).ok_or(
            "the PostgreSQL sink needs struct values with a schema (JsonConverter with schemas.enable=true)",
        )?;
        let Some(Value::Struct(v)) = &r.value else {
            return Err("the value does not match its struct schema".into());
        };
        // The struct is usually of the record's value schema itself: its fields by position.
        let own = v.schema().is_same(schema);
        for (i, f) in schema.fields().iter().enumerate() {
            if pk.contains(&f.name) {
                continue;
            }
            let value = if own {
                v.get_at(i)
            } else {
                v.get(&f.name).map_err(|e| e.to_string())?
            };
            push(&mut columns, &mut values, &f.name, &f.schema, value)?;
        }
        if s.pk_mode == PkMode::RecordValue && !cached {
            pk = if s.pk_fields.is_empty() {
                schema.fields().iter().map(|f| f.name.clone()).collect()
            } else {
                for p in &s.pk_fields {
                    if schema.field(p).is_none() {
                        return Err(format!("pk.fields names {p}, which the value struct lacks"));
                    }
                }
                s.pk_fields.clone()
            };
        }
        Ok(Some(self.shaped(r, known, (columns, pk, values), index)))
    }

    /// The row of `r`'s values in the shape known for its topic and schemas, or in the shape
    /// just built, which becomes the known one.
    fn shaped(
        &mut self,
        r: &SinkRecord,
        known: Option<ShapeParts>,
        (columns, pk, values): (Vec<Column>, Vec<String>, Cells),
        index: usize,
    ) -> Row {
        self.text_hint = values.text.len() + 16;
        let delete = r.value.is_none();
        let (table, columns, pk) = match known {
            Some(k) => k,
            None => {
                let shape = Shape {
                    topic: r.topic.clone(),
                    key_schema: r.key_schema.clone(),
                    value_schema: r.value_schema.clone(),
                    delete,
                    table: self.table_of(&r.topic).into(),
                    columns: Arc::new(columns),
                    pk: Arc::new(pk),
                };
                let parts = (shape.table.clone(), shape.columns.clone(), shape.pk.clone());
                self.last_shape = Some(shape);
                parts
            }
        };
        Row {
            table,
            columns,
            values,
            pk,
            delete,
            index,
        }
    }

    /// Makes sure the table has the row's columns: reads what it has, creates or alters it
    /// when allowed, or says what is missing.
    fn prepare(&mut self, row: &Row) -> ConnectResult<()> {
        let s = self
            .settings
            .clone()
            .ok_or_else(|| ConnectError::fatal("not started"))?;
        let rt = self
            .runtime
            .as_ref()
            .ok_or_else(|| ConnectError::fatal("no runtime"))?;
        let client = self
            .client
            .as_ref()
            .ok_or_else(|| ConnectError::retriable("not connected"))?;
        if !self.tables.contains_key(&row.table) {
            let (schema, name) = match row.table.split_once('.') {
                Some((a, b)) => (Some(a.to_string()), b.to_string()),
                None => (None, row.table.to_string()),
            };
            let rows = rt
                .block_on(client.query(
                    "SELECT column_name::text, data_type::text FROM information_schema.columns WHERE table_name = $1 AND table_schema = COALESCE($2, current_schema()) ORDER BY ordinal_position",
                    &[&name, &schema],
                ))
                .map_err(|e| ConnectError::retriable(format!("cannot read the columns of {}: {}", row.table, db_error(&e))))?;
            let columns: Columns = rows.iter().map(|r| (r.get(0), r.get(1))).collect();
            if columns.is_empty() {
                if !s.auto_create {
                    return Err(ConnectError::fatal(format!(
                        "table {} does not exist; create it, or set auto.create=true",
                        row.table
                    )));
                }
                if row.delete {
                    return Ok(());
                }
                let ddl = sql::create_table(&row.table, &row.columns, &row.pk);
                if let Err(e) = rt.block_on(client.batch_execute(&ddl)) {
                    self.tables.remove(&row.table);
                    return Err(ddl_error(
                        format!("cannot create {} ({ddl})", row.table),
                        &e,
                    ));
                }
                tracing::info!(table = %row.table, "table created");
                let created = row
                    .columns
                    .iter()
                    .map(|c| (c.name.clone(), c.sql_type.clone()))
                    .collect();
                self.tables.insert(row.table.clone(), created);
                return Ok(());
            }
            self.tables.insert(row.table.clone(), columns);
        }
        let known = self.tables.get(&row.table).cloned().unwrap_or_default();
        let missing: Vec<Column> = row
            .columns
            .iter()
            .filter(|c| !known.iter().any(|(k, _)| k == &c.name))
            .cloned()
            .collect();
        if missing.is_empty() {
            return Ok(());
        }
        let names: Vec<&str> = missing.iter().map(|c| c.name.as_str()).collect();
        if !s.auto_evolve {
            return Err(ConnectError::fatal(format!(
                "table {} has no column {}; add it, or set auto.evolve=true",
                row.table,
                names.join(", ")
            )));
        }
        if let Some(required) = missing.iter().find(|c| !c.optional) {
            return Err(ConnectError::fatal(format!(
                "table {}: cannot add the required field {} (rows already there have no value for it); make it optional",
                row.table, required.name
            )));
        }
        let ddl = sql::add_columns(&row.table, &missing);
        if let Err(e) = rt.block_on(client.batch_execute(&ddl)) {
            self.tables.remove(&row.table);
            return Err(ddl_error(format!("cannot alter {} ({ddl})", row.table), &e));
        }
        tracing::info!(table = %row.table, columns = %names.join(","), "columns added");
        if let Some(cols) = self.tables.get_mut(&row.table) {
            cols.extend(missing.into_iter().map(|c| (c.name, c.sql_type)));
        }
        Ok(())
    }

    /// Groups rows into statements: consecutive rows of one table and one column list, upserts
    /// and updates collapsed to the last per key.
    fn statements(&self, rows: Vec<Row>) -> Vec<Vec<Row>> {
        let s = match &self.settings {
            Some(s) => s,
            None => return Vec::new(),
        };
        let same_shape = |a: &Row, b: &Row| {
            a.table == b.table
                && (Arc::ptr_eq(&a.columns, &b.columns) || a.columns == b.columns)
                && a.delete == b.delete
        };
        // Usually every row of a put has one shape: the rows are one group as they are.
        let mut out: Vec<Vec<Row>> = Vec::new();
        if rows.is_empty() {
            return out;
        }
        if rows.iter().all(|r| same_shape(&rows[0], r)) {
            out.push(rows);
        } else {
            for row in rows {
                let same = out
                    .last()
                    .is_some_and(|g: &Vec<Row>| same_shape(&g[0], &row));
                match out.last_mut() {
                    Some(g) if same => g.push(row),
                    _ => out.push(vec![row]),
                }
            }
        }
        if s.mode == Mode::Insert {
            return out;
        }
        // The last operation per key in the whole put decides; earlier ones are dropped.
        let kept: std::collections::HashSet<usize> = {
            let mut last: HashMap<(&str, Vec<Option<&str>>), usize> = HashMap::new();
            for g in &out {
                for r in g {
                    last.insert((&r.table, r.key()), r.index);
                }
            }
            last.into_values().collect()
        };
        out.into_iter()
            .map(|g| {
                g.into_iter()
                    .filter(|r| kept.contains(&r.index))
                    .collect::<Vec<_>>()
            })
            .filter(|g| !g.is_empty())
            .collect()
    }

    fn sql_for(&self, rows: &[Row]) -> String {
        let first = &rows[0];
        let mode = self.settings.as_ref().map_or(Mode::Insert, |s| s.mode);
        if first.delete {
            let pk_cols: Vec<Column> = first
                .columns
                .iter()
                .filter(|c| first.pk.contains(&c.name))
                .cloned()
                .collect();
            return sql::delete(&first.table, &pk_cols);
        }
        match mode {
            Mode::Update => sql::update(&first.table, &first.columns, &first.pk),
            m => sql::insert(&first.table, &first.columns, &first.pk, m == Mode::Upsert),
        }
    }

    /// The columns whose text arrays are the statement's parameters.
    fn param_columns(rows: &[Row]) -> Vec<usize> {
        let first = &rows[0];
        let delete = first.delete;
        first
            .columns
            .iter()
            .enumerate()
            .filter(|(_, c)| !delete || first.pk.contains(&c.name))
            .map(|(i, _)| i)
            .collect()
    }

    /// Whether `row`'s table is unknown or lacks one of its columns.
    fn needs_prepare(&self, row: &Row) -> bool {
        self.tables.get(&row.table).is_none_or(|cols| {
            row.columns
                .iter()
                .any(|c| !cols.iter().any(|(k, _)| k == &c.name))
        })
    }

    /// The rows in statement groups and the statements that write them whole.
    fn build(&self, rows: Vec<Row>) -> (Groups, Vec<Statement>) {
        let groups = Arc::new(self.statements(rows));
        let statements = self.statements_for(&groups, false);
        (groups, statements)
    }

    /// The statements writing `groups`: batches of `batch.size` (inserts through COPY), or
    /// one statement per row, each row alone to be refused alone.
    fn statements_for(&self, groups: &[Vec<Row>], one_by_one: bool) -> Vec<Statement> {
        let batch_size = self.settings.as_ref().map_or(3000, |s| s.batch_size);
        let size = if one_by_one { 1 } else { batch_size };
        let copy = !one_by_one
            && self
                .settings
                .as_ref()
                .is_some_and(|s| s.mode == Mode::Insert);
        let mut out = Vec::new();
        for (group, g) in groups.iter().enumerate() {
            for (n, c) in g.chunks(size).enumerate() {
                let indexes = c.iter().map(|r| r.index).collect();
                out.push(if copy && !c[0].delete {
                    let mut data =
                        String::with_capacity(c.iter().map(|r| r.values.text.len() + 8).sum());
                    for r in c {
                        sql::copy_row(r.values.iter(), &mut data);
                    }
                    Statement {
                        sql: sql::copy_in(&c[0].table, &c[0].columns),
                        data: StatementData::Copy(data),
                        indexes,
                    }
                } else {
                    Statement {
                        sql: self.sql_for(c),
                        data: StatementData::Arrays {
                            group,
                            rows: n * size..n * size + c.len(),
                            columns: Self::param_columns(c),
                        },
                        indexes,
                    }
                });
            }
        }
        out
    }

    /// Writes the groups in one transaction and waits for it.
    fn write(
        &mut self,
        groups: &Groups,
        one_by_one: bool,
    ) -> Result<Vec<(usize, String)>, ConnectError> {
        let statements = self.statements_for(groups, one_by_one);
        let rt = self
            .runtime
            .as_ref()
            .ok_or_else(|| ConnectError::fatal("no runtime"))?;
        let client = self
            .client
            .as_mut()
            .ok_or_else(|| ConnectError::retriable("not connected"))?;
        rt.block_on(execute(client, groups.clone(), statements, one_by_one))
    }

    /// Writes `groups` (the rows of `records`) now: whole, or, when the database refuses the
    /// whole, row by row with the refused rows to the errant record reporter. A lost
    /// connection keeps them for the next attempt.
    fn write_now(
        &mut self,
        groups: Groups,
        records: Kept,
        refused_whole: Option<String>,
    ) -> ConnectResult<()> {
        if let Err(e) = self.connect() {
            self.pending.push_front((groups, records));
            return Err(e);
        }
        let whole = match refused_whole {
            Some(why) => Err(ConnectError::Fatal(why)),
            None => self.write(&groups, false).map(|_| ()),
        };
        let outcome = match whole {
            Ok(()) => Ok(()),
            Err(ConnectError::Fatal(why)) => {
                tracing::warn!(error = %why, "a batch was refused; writing it row by row");
                self.write(&groups, true).and_then(|refused| {
                    for (index, message) in refused {
                        if let Some(r) = records.get(index) {
                            self.report(&r, message)?;
                        }
                    }
                    Ok(())
                })
            }
            Err(e) => Err(e),
        };
        if let Err(e) = &outcome
            && e.is_retriable()
        {
            // The connection may be gone even when the client does not know it yet: reconnect
            // on the retry, then write these first.
            self.client = None;
            self.pending.push_front((groups, records));
        }
        outcome
    }

    /// Waits for every write handed over and settles their outcomes in order (see
    /// `write_now`), then writes what an earlier attempt left pending. After it nothing `put`
    /// so far is unwritten, and the client is back here.
    fn settle(&mut self) -> ConnectResult<()> {
        self.settle_after(None)
    }

    /// [`Self::settle`], when the oldest write's outcome was already taken from its queue
    /// (`first`, ahead of the ones still queued).
    fn settle_after(
        &mut self,
        first: Option<(Option<Written>, Groups, Kept)>,
    ) -> ConnectResult<()> {
        if self.writer.is_some() || first.is_some() {
            let rt = self
                .runtime
                .as_ref()
                .ok_or_else(|| ConnectError::fatal("no runtime"))?;
            let mut outcomes: Vec<_> = first.into_iter().collect();
            if let Some(Writer {
                jobs,
                handle,
                queued,
            }) = self.writer.take()
            {
                // Closing the queue makes the writer give the client back after the last one.
                drop(jobs);
                outcomes.extend(
                    queued
                        .into_iter()
                        .map(|q| (rt.block_on(q.done).ok(), q.groups, q.records)),
                );
                self.client = match rt.block_on(handle) {
                    Ok(client) => Some(client),
                    Err(e) => {
                        tracing::warn!(error = %e, "the PostgreSQL writer stopped; reconnecting");
                        None
                    }
                };
            }
            self.settle_outcomes(outcomes)?;
        }
        while let Some((groups, records)) = self.pending.pop_front() {
            self.write_now(groups, records, None)?;
        }
        Ok(())
    }

    /// The outcomes of a writer's writes, oldest first (`None`: it never ran). A refused
    /// write is written again row by row; one that failed on the connection or never ran
    /// becomes pending, in order. On an error the rest become pending too.
    fn settle_outcomes(
        &mut self,
        outcomes: Vec<(Option<Written>, Groups, Kept)>,
    ) -> ConnectResult<()> {
        let mut outcomes = outcomes.into_iter();
        while let Some((outcome, groups, records)) = outcomes.next() {
            let settled = match outcome {
                Some(Ok(_)) => Ok(()),
                Some(Err(ConnectError::Fatal(why))) => self.write_now(groups, records, Some(why)),
                Some(Err(e)) => {
                    tracing::warn!(error = %e, "a write failed; it is tried again");
                    self.client = None;
                    self.pending.push_back((groups, records));
                    Ok(())
                }
                None => {
                    self.pending.push_back((groups, records));
                    Ok(())
                }
            };
            if let Err(e) = settled {
                self.pending
                    .extend(outcomes.map(|(_, groups, records)| (groups, records)));
                return Err(e);
            }
        }
        Ok(())
    }

    /// Waits until fewer than [`WRITES_IN_FLIGHT`] writes are unsettled. Writes that went
    /// well are simply let go; the first that did not settles everything.
    fn make_room(&mut self) -> ConnectResult<()> {
        if !self.pending.is_empty() {
            return self.settle();
        }
        loop {
            let Some(writer) = self.writer.as_mut() else {
                return Ok(());
            };
            if writer.queued.len() < WRITES_IN_FLIGHT {
                return Ok(());
            }
            let Some(oldest) = writer.queued.pop_front() else {
                return Ok(());
            };
            let rt = self
                .runtime
                .as_ref()
                .ok_or_else(|| ConnectError::fatal("no runtime"))?;
            match rt.block_on(oldest.done) {
                Ok(Ok(_)) => {}
                // The writer has stopped: take everything back, this one first.
                outcome => {
                    return self.settle_after(Some((outcome.ok(), oldest.groups, oldest.records)));
                }
            }
        }
    }

    /// Hands a put's statements to the writer (started with the client if there is none).
    fn submit(
        &mut self,
        groups: Groups,
        statements: Vec<Statement>,
        records: Kept,
    ) -> ConnectResult<()> {
        if self.writer.is_none() {
            let (Some(rt), Some(client)) = (self.runtime.as_ref(), self.client.take()) else {
                return Err(ConnectError::retriable("not connected"));
            };
            let (jobs, queue) = tokio::sync::mpsc::unbounded_channel();
            let handle = rt.spawn(tracing::Instrument::instrument(
                run_writer(client, queue),
                tracing::Span::current(),
            ));
            self.writer = Some(Writer {
                jobs,
                handle,
                queued: VecDeque::new(),
            });
        }
        let Some(writer) = self.writer.as_mut() else {
            return Err(ConnectError::retriable("not connected"));
        };
        let (done, outcome) = tokio::sync::oneshot::channel();
        // A writer that stopped at a failure drops the job, which closes `outcome` unrun:
        // settling writes it after the failed one.
        let _ = writer.jobs.send(Job {
            groups: groups.clone(),
            statements,
            done,
        });
        writer.queued.push_back(Queued {
            done: outcome,
            groups,
            records,
        });
        Ok(())
    }

    fn report(&self, record: &SinkRecord, message: String) -> ConnectResult<()> {
        super::report_errant(self.context.as_ref(), record, message)
    }
}

/// The records of a batch, kept for the rows the database may refuse. With an errant record
/// reporter they are kept whole (it gets them); without one a refusal fails the task naming
/// where the record is, so only that is kept: no copy of any value, and no string per record
/// (each record's topic name was a good part of the sink's allocations).
enum Kept {
    Whole(Vec<SinkRecord>),
    Located {
        topics: Vec<String>,
        /// Index in `topics`, partition, offset, timestamp and its type.
        at: Vec<(
            usize,
            i32,
            i64,
            Option<i64>,
            tributary_connect_api::record::TimestampType,
        )>,
    },
}

impl Kept {
    fn of(records: &[SinkRecord], whole: bool) -> Self {
        if whole {
            return Kept::Whole(records.to_vec());
        }
        let mut topics: Vec<String> = Vec::new();
        let at = records
            .iter()
            .map(|r| {
                let topic = match topics.iter().rposition(|t| *t == r.topic) {
                    Some(i) => i,
                    None => {
                        topics.push(r.topic.clone());
                        topics.len() - 1
                    }
                };
                (
                    topic,
                    r.kafka_partition,
                    r.kafka_offset,
                    r.timestamp,
                    r.timestamp_type,
                )
            })
            .collect();
        Kept::Located { topics, at }
    }

    /// The record at `index` of the put, or where it was (without its contents).
    fn get(&self, index: usize) -> Option<std::borrow::Cow<'_, SinkRecord>> {
        use std::borrow::Cow;
        match self {
            Kept::Whole(records) => records.get(index).map(Cow::Borrowed),
            Kept::Located { topics, at } => {
                let &(topic, partition, offset, timestamp, timestamp_type) = at.get(index)?;
                Some(Cow::Owned(SinkRecord {
                    topic: topics.get(topic)?.clone(),
                    kafka_partition: partition,
                    kafka_offset: offset,
                    key_schema: None,
                    key: None,
                    value_schema: None,
                    value: None,
                    timestamp,
                    timestamp_type,
                    headers: Default::default(),
                }))
            }
        }
    }
}

/// Runs the statements in one transaction. Row by row (`one_by_one`), each row in a
/// savepoint, it returns the rows the database refused (their index in the put and why) and
/// commits the rest; otherwise a refusal fails the whole (`Fatal`, to be retried row by row)
/// and a lost connection is `Retriable`.
async fn execute(
    client: &mut tokio_postgres::Client,
    groups: Groups,
    statements: Vec<Statement>,
    one_by_one: bool,
) -> Result<Vec<(usize, String)>, ConnectError> {
    let tx = client
        .transaction()
        .await
        .map_err(|e| ConnectError::retriable(format!("cannot begin: {}", db_error(&e))))?;
    let mut refused = Vec::new();
    // A refusal of the whole is `Fatal` (the caller retries row by row); anything
    // else may be the connection.
    let whole = |e: tokio_postgres::Error| {
        if e.as_db_error().is_some() {
            ConnectError::Fatal(db_error(&e))
        } else {
            ConnectError::retriable(db_error(&e))
        }
    };
    for Statement { sql, data, indexes } in statements {
        let params = match data {
            StatementData::Copy(rows) => {
                let sink = tx
                    .copy_in::<_, bytes::Bytes>(sql.as_str())
                    .await
                    .map_err(whole)?;
                futures::pin_mut!(sink);
                sink.send(bytes::Bytes::from(rows)).await.map_err(whole)?;
                sink.finish().await.map_err(whole)?;
                continue;
            }
            StatementData::Arrays {
                group,
                rows,
                columns,
            } => {
                let rows = groups
                    .get(group)
                    .and_then(|g| g.get(rows))
                    .unwrap_or_default();
                columns
                    .iter()
                    .map(|&i| rows.iter().map(|r| r.values.get(i)).collect::<Vec<_>>())
                    .collect::<Vec<_>>()
            }
        };
        let refs: Vec<&(dyn tokio_postgres::types::ToSql + Sync)> = params
            .iter()
            .map(|p| p as &(dyn tokio_postgres::types::ToSql + Sync))
            .collect();
        if one_by_one {
            tx.batch_execute("SAVEPOINT row")
                .await
                .map_err(|e| ConnectError::retriable(db_error(&e)))?;
            match tx.execute(sql.as_str(), &refs).await {
                Ok(_) => tx
                    .batch_execute("RELEASE SAVEPOINT row")
                    .await
                    .map_err(|e| ConnectError::retriable(db_error(&e)))?,
                Err(e) if e.as_db_error().is_some() => {
                    tx.batch_execute("ROLLBACK TO SAVEPOINT row")
                        .await
                        .map_err(|e| ConnectError::retriable(db_error(&e)))?;
                    refused.push((indexes[0], db_error(&e)));
                }
                Err(e) => return Err(ConnectError::retriable(db_error(&e))),
            }
        } else {
            tx.execute(sql.as_str(), &refs).await.map_err(whole)?;
        }
    }
    tx.commit()
        .await
        .map_err(|e| ConnectError::retriable(format!("cannot commit: {}", db_error(&e))))?;
    Ok(refused)
}

impl SinkTask for PostgresSinkTask {
    fn version(&self) -> String {
        version()
    }

    fn start(&mut self, context: Arc<dyn SinkTaskContext>) -> ConnectResult<()> {
        self.settings = Some(settings(context.config())?);
        // One runtime thread of its own runs the transactions in flight while `put` returns.
        self.runtime = Some(super::background_runtime("postgres-sink")?);
        self.context = Some(context);
        self.connect()
    }

    /// Converts the records to rows while earlier batches' transactions run, and queues this
    /// batch's behind them (waiting only when [`WRITES_IN_FLIGHT`] are unsettled): the database
    /// and the conversion work at the same time. `flush` (before every offset commit) waits for
    /// all of them.
    fn put(&mut self, records: &[SinkRecord]) -> ConnectResult<()> {
        if records.is_empty() {
            return Ok(());
        }
        let mut rows = Vec::with_capacity(records.len());
        let mut unfit = Vec::new();
        for (i, r) in records.iter().enumerate() {
            match self.row(r, i) {
                Ok(Some(row)) => rows.push(row),
                Ok(None) => {}
                Err(message) => unfit.push((i, message)),
            }
        }
        // Rows of one shape share their columns: each shape is checked once.
        let mut unprepared = Vec::new();
        let mut checked: Option<&Arc<Vec<Column>>> = None;
        for (i, row) in rows.iter().enumerate() {
            if checked.is_some_and(|c| Arc::ptr_eq(c, &row.columns)) {
                continue;
            }
            checked = Some(&row.columns);
            if self.needs_prepare(row) {
                unprepared.push(i);
            }
        }
        // With every table known (the steady state) the statements, COPY text included, are
        // built while the previous batch's transaction still runs: the database then goes
        // from one transaction to the next without waiting for them.
        let built = if unprepared.is_empty() {
            Ok(self.build(rows))
        } else {
            Err(rows)
        };
        // A retriable failure here makes the worker pass these records again: nothing of them
        // has been reported or written yet. A table to create or alter needs the client back.
        if built.is_ok() {
            self.make_room()?;
        } else {
            self.settle()?;
        }
        if self.writer.is_none() {
            self.connect()?;
        }
        for (i, message) in unfit {
            self.report(&records[i], message)?;
        }
        let (groups, statements) = match built {
            Ok(built) => built,
            Err(rows) => {
                // Asked again: preparing one shape may have readied the table of the next.
                for &i in &unprepared {
                    if let Some(row) = rows.get(i)
                        && self.needs_prepare(row)
                    {
                        self.prepare(row)?;
                    }
                }
                self.build(rows)
            }
        };
        if groups.is_empty() {
            return Ok(());
        }
        let reporter = self
            .context
            .as_ref()
            .is_some_and(|c| c.errant_record_reporter().is_some());
        let records = Kept::of(records, reporter);
        self.submit(groups, statements, records)
    }

    /// Everything `put` so far is written when this returns. A lost connection is tried again
    /// here for about a minute (a restarting database): a failed flush fails the task.
    fn flush(&mut self, _offsets: &SinkOffsets) -> ConnectResult<()> {
        let mut delay = std::time::Duration::from_millis(100);
        let mut attempts = 0;
        loop {
            match self.settle() {
                Err(e) if e.is_retriable() && attempts < 12 => {
                    attempts += 1;
                    std::thread::sleep(delay);
                    delay = (delay * 2).min(std::time::Duration::from_secs(10));
                }
                outcome => return outcome,
            }
        }
    }

    fn stop(&mut self) -> ConnectResult<()> {
        // What is in flight finishes; its offsets were not committed, so it is written again
        // after a restart if it does not.
        if let Err(e) = self.settle() {
            tracing::warn!(error = %e, "the last write did not finish before the task stopped");
        }
        self.client = None;
        if let Some(rt) = self.runtime.take() {
            rt.shutdown_background();
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(pairs: &[(&str, &str)]) -> Config {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn settings_refuse_what_cannot_work_naming_the_fix() {
        let url = ("connection.url", "jdbc:postgresql://h:5432/db");
        for (extra, says) in [
            (vec![("delete.enabled", "true")], "pk.mode=record_key"),
            (vec![("insert.mode", "upsert")], "set pk.mode"),
            (
                vec![("pk.mode", "kafka"), ("pk.fields", "a,b")],
                "three names",
            ),
        ] {
            let mut pairs = vec![url];
            pairs.extend(extra.iter().copied());
            let e = settings(&config(&pairs)).unwrap_err().to_string();
            assert!(e.contains(says), "{extra:?}: {e}");
        }
        assert!(
            settings(&config(&[]))
                .unwrap_err()
                .to_string()
                .contains("connection.url")
        );
        let s = settings(&config(&[url])).unwrap();
        let pg = pg_config(&s).unwrap();
        assert_eq!(pg.get_dbname(), Some("db"));
    }
}
