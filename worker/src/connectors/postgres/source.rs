//! PostgreSQL source: tables (or one query) into Kafka topics, with the JDBC source connector's
//! keys and semantics (`mode` bulk | incrementing | timestamp | timestamp+incrementing,
//! `table.whitelist`/`table.blacklist` or `query`, `topic.prefix`, `poll.interval.ms`,
//! `batch.max.rows`, `timestamp.delay.interval.ms`, `numeric.mapping`, `db.timezone`).
//!
//! The connector lists the tables, spreads them over `tasks.max` tasks, and looks again every
//! `table.poll.interval.ms`: a table created or dropped later changes the task configurations
//! through task reconfiguration. Each task reads its tables in turn, one batch per poll; a table
//! that returned a full batch is read again at once, one that is caught up waits
//! `poll.interval.ms`. Each record carries its table's position in the JDBC source's offset
//! format, so a restarted task resumes after the last row whose record reached Kafka.

use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio_postgres::types::ToSql;
use tributary_connect_api::config_def::{at_least, one_of};
use tributary_connect_api::{
    Config, ConfigDef, ConfigKey, ConfigType, ConnectError, ConnectResult, Connector,
    ConnectorContext, Importance, KeyValidation, OffsetMap, Schema, SchemaBuilder, SourceConnector,
    SourceRecord, SourceTask, SourceTaskContext, Struct, Value,
};

use super::querier::{self, EARLIEST_MICROS, INC_ALIAS, Mode, Position, SourceColumn, Spec};
use super::sql::table_ident;
use super::types::{self, Kind, NumericMapping, Read, Wire};
use super::{connect_config, db_error};
use crate::config::list_value;

pub const SOURCE_CLASS: &str = "dev.tributary.connect.postgres.PostgresSourceConnector";
pub const SOURCE_TASK_CLASS: &str = "dev.tributary.connect.postgres.PostgresSourceTask";

/// The task config key holding a task's tables (JSON: `[["schema","table"], …]`).
const TABLES_KEY: &str = "tables";

pub fn source_def() -> ConfigDef {
    let key = |name: &str, t: ConfigType, i: Importance, doc: &str| ConfigKey::new(name, t, i, doc);
    super::connection_def()
        .define(key("mode", ConfigType::String, Importance::High,
            "bulk: every row on each poll; incrementing: new rows by a strictly increasing column; timestamp: new and updated rows by a timestamp column; timestamp+incrementing: both, exactly once per row version.")
            .validator(one_of(&["bulk", "incrementing", "timestamp", "timestamp+incrementing"])))
        .define(key("incrementing.column.name", ConfigType::String, Importance::Medium,
            "The strictly increasing integer column of the incrementing modes.").default_value(""))
        .define(key("timestamp.column.name", ConfigType::List, Importance::Medium,
            "The timestamp column(s) of the timestamp modes; several are read as COALESCE of them, in order.").default_value(""))
        .define(key("table.whitelist", ConfigType::List, Importance::Medium,
            "Tables to read (table or schema.table); empty for every table the user can see.").default_value(""))
        .define(key("table.blacklist", ConfigType::List, Importance::Medium,
            "Tables not to read (table or schema.table).").default_value(""))
        .define(key("query", ConfigType::String, Importance::Medium,
            "Read this query's rows instead of tables (one task); the incremental modes filter it as a subquery.").default_value(""))
        .define(key("topic.prefix", ConfigType::String, Importance::High,
            "Prepended to each table's name for its topic; in query mode, the topic."))
        .define(key("poll.interval.ms", ConfigType::Int, Importance::High,
            "How long a caught-up table waits before it is queried again.").default_value("5000").validator(at_least(1.0)))
        .define(key("batch.max.rows", ConfigType::Int, Importance::Low,
            "Most rows one poll reads from a table.").default_value("100").validator(at_least(1.0)))
        .define(key("timestamp.delay.interval.ms", ConfigType::Long, Importance::High,
            "How old a row's timestamp must be before it is read, so transactions that wrote it have committed.").default_value("0").validator(at_least(0.0)))
        .define(key("table.poll.interval.ms", ConfigType::Long, Importance::Low,
            "How often the connector looks for created and dropped tables.").default_value("60000").validator(at_least(1.0)))
        .define(key("schema.pattern", ConfigType::String, Importance::Medium,
            "Only tables of schemas matching this LIKE pattern; unset for every schema but the system ones.").default_null())
        .define(key("table.types", ConfigType::List, Importance::Low,
            "Kinds of relations to read: TABLE, VIEW, MATERIALIZED VIEW, PARTITIONED TABLE.").default_value("TABLE"))
        .define(key("numeric.mapping", ConfigType::String, Importance::Low,
            "none: numeric as Decimal; precision_only: numeric(p,0) with p ≤ 18 as integers; best_fit: also numeric(p,s) with p ≤ 18 and unconstrained numeric as FLOAT64 (keeps NaN).")
            .default_value("none").validator(one_of(&["none", "precision_only", "best_fit"])))
        .define(key("validate.non.null", ConfigType::Boolean, Importance::Low,
            "Refuse nullable incrementing and timestamp columns (rows with NULL there are never read).").default_value("true"))
        .define(key("db.timezone", ConfigType::String, Importance::Medium,
            "The time zone timestamp (without time zone) columns are read in.").default_value("UTC"))
}

/// The settings of the connector and its tasks, checked.
#[derive(Debug, Clone)]
struct Settings {
    url: String,
    user: Option<String>,
    password: Option<String>,
    mode: Mode,
    incrementing: Option<String>,
    timestamps: Vec<String>,
    whitelist: Vec<String>,
    blacklist: Vec<String>,
    query: Option<String>,
    topic_prefix: String,
    poll_interval: Duration,
    batch_max_rows: i64,
    delay_ms: i64,
    table_poll: Duration,
    schema_pattern: Option<String>,
    relkinds: Vec<String>,
    numeric: NumericMapping,
    validate_non_null: bool,
    timezone: String,
}

fn relkind(t: &str) -> Option<&'static str> {
    Some(match t.trim().to_ascii_uppercase().as_str() {
        "TABLE" => "r",
        "PARTITIONED TABLE" => "p",
        "VIEW" => "v",
        "MATERIALIZED VIEW" => "m",
        _ => return None,
    })
}

/// What the keys say together, beyond each key's own check: each problem with the key to fix.
fn cross_check(config: &Config) -> Vec<(&'static str, String)> {
    let get = |k: &str| config.get(k).map(|v| v.trim()).filter(|v| !v.is_empty());
    let mut errors = Vec::new();
    let mode = get("mode").and_then(Mode::parse);
    if let Some(mode) = mode {
        if mode.uses_incrementing() && get("incrementing.column.name").is_none() {
            errors.push((
                "incrementing.column.name",
                format!("mode={} needs incrementing.column.name: the strictly increasing column new rows are found by", mode_name(mode)),
            ));
        }
        if mode.uses_timestamp() && list_value(config, "timestamp.column.name").is_empty() {
            errors.push((
                "timestamp.column.name",
                format!(
                    "mode={} needs timestamp.column.name: the column updated rows are found by",
                    mode_name(mode)
                ),
            ));
        }
    }
    let query = get("query").is_some();
    let white = !list_value(config, "table.whitelist").is_empty();
    let black = !list_value(config, "table.blacklist").is_empty();
    if white && black {
        errors.push((
            "table.blacklist",
            "table.whitelist and table.blacklist cannot both be set: list the tables to read, or the ones not to".into(),
        ));
    }
    if query && (white || black) {
        errors.push((
            "query",
            "query reads one query instead of tables: unset table.whitelist and table.blacklist, or the query".into(),
        ));
    }
    for t in list_value(config, "table.types") {
        if relkind(&t).is_none() {
            errors.push((
                "table.types",
                format!("{t:?} is not a table type: use TABLE, VIEW, MATERIALIZED VIEW or PARTITIONED TABLE"),
            ));
        }
    }
    errors
}

fn mode_name(m: Mode) -> &'static str {
    match m {
        Mode::Bulk => "bulk",
        Mode::Incrementing => "incrementing",
        Mode::Timestamp => "timestamp",
        Mode::TimestampIncrementing => "timestamp+incrementing",
    }
}

fn settings(config: &Config) -> ConnectResult<Settings> {
    super::super::check_config(&source_def(), config)?;
    let cross = cross_check(config);
    if !cross.is_empty() {
        return Err(ConnectError::Config(
            cross
                .into_iter()
                .map(|(_, m)| m)
                .collect::<Vec<_>>()
                .join("; "),
        ));
    }
    let get = |k: &str| {
        config
            .get(k)
            .map(|v| v.trim().to_string())
            .filter(|v| !v.is_empty())
    };
    let num = |k: &str, d: i64| get(k).and_then(|v| v.parse().ok()).unwrap_or(d);
    Ok(Settings {
        url: get("connection.url").unwrap_or_default(),
        user: get("connection.user"),
        password: config
            .get("connection.password")
            .cloned()
            .filter(|p| !p.is_empty()),
        mode: get("mode")
            .and_then(|m| Mode::parse(&m))
            .unwrap_or(Mode::Bulk),
        incrementing: get("incrementing.column.name"),
        timestamps: list_value(config, "timestamp.column.name"),
        whitelist: list_value(config, "table.whitelist"),
        blacklist: list_value(config, "table.blacklist"),
        query: get("query"),
        topic_prefix: config.get("topic.prefix").cloned().unwrap_or_default(),
        poll_interval: Duration::from_millis(num("poll.interval.ms", 5000).max(1) as u64),
        batch_max_rows: num("batch.max.rows", 100).max(1),
        delay_ms: num("timestamp.delay.interval.ms", 0).max(0),
        table_poll: Duration::from_millis(num("table.poll.interval.ms", 60_000).max(1) as u64),
        schema_pattern: get("schema.pattern"),
        relkinds: {
            let kinds: Vec<String> = list_value(config, "table.types")
                .iter()
                .filter_map(|t| relkind(t))
                .map(str::to_string)
                .collect();
            if kinds.is_empty() {
                vec!["r".to_string()]
            } else {
                kinds
            }
        },
        numeric: match get("numeric.mapping").as_deref() {
            Some("precision_only") => NumericMapping::PrecisionOnly,
            Some("best_fit") => NumericMapping::BestFit,
            _ => NumericMapping::None,
        },
        validate_non_null: !get("validate.non.null")
            .is_some_and(|v| v.eq_ignore_ascii_case("false")),
        timezone: get("db.timezone").unwrap_or_else(|| "UTC".into()),
    })
}

/// A table the connector found: schema and name.
pub type TableRef = (String, String);

/// The tables a whitelist or blacklist selects; an entry names a table alone or with its
/// schema.
pub fn selected(tables: &[TableRef], whitelist: &[String], blacklist: &[String]) -> Vec<TableRef> {
    let named = |t: &TableRef, names: &[String]| {
        names
            .iter()
            .any(|n| *n == t.1 || *n == format!("{}.{}", t.0, t.1))
    };
    let mut out: Vec<TableRef> = tables
        .iter()
        .filter(|t| whitelist.is_empty() || named(t, whitelist))
        .filter(|t| !named(t, blacklist))
        .cloned()
        .collect();
    out.sort();
    out.dedup();
    out
}

/// `tables` in at most `max` contiguous groups of sizes differing by at most one (as Java's
/// `ConnectorUtils.groupPartitions`).
pub fn groups(tables: &[TableRef], max: usize) -> Vec<Vec<TableRef>> {
    let n = max.max(1).min(tables.len());
    if n == 0 {
        return Vec::new();
    }
    let (per, extra) = (tables.len() / n, tables.len() % n);
    let mut out = Vec::with_capacity(n);
    let mut at = 0;
    for i in 0..n {
        let len = per + usize::from(i < extra);
        out.push(tables[at..at + len].to_vec());
        at += len;
    }
    out
}

fn runtime() -> ConnectResult<tokio::runtime::Runtime> {
    super::super::task_runtime()
}

/// A connection with the session settings the decoders rely on.
async fn session(s: &Settings, application: &str) -> ConnectResult<tokio_postgres::Client> {
    let config = connect_config(
        &s.url,
        s.user.as_deref(),
        s.password.as_deref(),
        application,
    )?;
    let (client, connection) = config.connect(tokio_postgres::NoTls).await.map_err(|e| {
        ConnectError::retriable(format!("cannot connect to PostgreSQL: {}", db_error(&e)))
    })?;
    tokio::spawn(async move {
        if let Err(e) = connection.await {
            tracing::warn!(error = %e, "PostgreSQL connection closed");
        }
    });
    client
        .execute("SELECT set_config('TimeZone', $1, false)", &[&s.timezone])
        .await
        .map_err(|e| {
            ConnectError::Config(format!(
                "db.timezone={:?} is not a time zone PostgreSQL knows: {}",
                s.timezone,
                db_error(&e)
            ))
        })?;
    client
        .batch_execute("SET DateStyle TO ISO; SET extra_float_digits TO 3")
        .await
        .map_err(|e| ConnectError::retriable(db_error(&e)))?;
    Ok(client)
}

async fn list_tables(
    client: &tokio_postgres::Client,
    s: &Settings,
) -> ConnectResult<Vec<TableRef>> {
    let rows = client
        .query(
            "SELECT n.nspname::text, c.relname::text FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
             WHERE c.relkind::text = ANY($1) AND n.nspname NOT IN ('pg_catalog', 'information_schema')
               AND n.nspname NOT LIKE 'pg\\_toast%' AND n.nspname NOT LIKE 'pg\\_temp%'
               AND ($2::text IS NULL OR n.nspname LIKE $2) AND has_table_privilege(c.oid, 'SELECT')
             ORDER BY 1, 2",
            &[&s.relkinds, &s.schema_pattern],
        )
        .await
        .map_err(|e| ConnectError::retriable(format!("cannot list tables: {}", db_error(&e))))?;
    let all: Vec<TableRef> = rows.iter().map(|r| (r.get(0), r.get(1))).collect();
    Ok(selected(&all, &s.whitelist, &s.blacklist))
}

/// Stops the table monitor when dropped.
struct Monitor {
    stop: Option<mpsc::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Drop for Monitor {
    fn drop(&mut self) {
        self.stop.take();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

#[derive(Default)]
pub struct PostgresSourceConnector {
    config: Config,
    tables: Arc<Mutex<Vec<TableRef>>>,
    monitor: Option<Monitor>,
}

impl std::fmt::Debug for PostgresSourceConnector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PostgresSourceConnector")
            .finish_non_exhaustive()
    }
}

impl Connector for PostgresSourceConnector {
    fn version(&self) -> String {
        super::version()
    }
    fn config_def(&self) -> ConfigDef {
        source_def()
    }
    fn validate(&self, config: &Config) -> Vec<KeyValidation> {
        let mut out = source_def().validate(config);
        for (key, message) in cross_check(config) {
            if let Some(k) = out.iter_mut().find(|k| k.name == key) {
                k.errors.push(message);
            }
        }
        out
    }
    fn start(&mut self, config: &Config, context: Arc<dyn ConnectorContext>) -> ConnectResult<()> {
        let s = settings(config)?;
        self.config = config.clone();
        if s.query.is_some() {
            return Ok(());
        }
        let rt = runtime()?;
        let found = rt.block_on(async {
            let client = session(&s, "tributary-postgres-source").await?;
            list_tables(&client, &s).await
        })?;
        if found.is_empty() {
            tracing::warn!(
                whitelist = ?s.whitelist,
                "no table to read yet; looking again every table.poll.interval.ms"
            );
        }
        *self
            .tables
            .lock()
            .map_err(|_| ConnectError::fatal("poisoned"))? = found;
        let (stop, stopped) = mpsc::channel::<()>();
        let tables = self.tables.clone();
        let thread = std::thread::Builder::new()
            .name("pg-table-monitor".into())
            .spawn(move || monitor(rt, s, tables, context, stopped))
            .map_err(|e| ConnectError::fatal(format!("cannot start the table monitor: {e}")))?;
        self.monitor = Some(Monitor {
            stop: Some(stop),
            thread: Some(thread),
        });
        Ok(())
    }
    fn task_configs(&self, max_tasks: usize) -> ConnectResult<Vec<Config>> {
        if self
            .config
            .get("query")
            .is_some_and(|q| !q.trim().is_empty())
        {
            return Ok(vec![self.config.clone()]);
        }
        let tables = self
            .tables
            .lock()
            .map_err(|_| ConnectError::fatal("poisoned"))?
            .clone();
        groups(&tables, max_tasks)
            .into_iter()
            .map(|g| {
                let mut c = self.config.clone();
                c.insert(
                    TABLES_KEY.into(),
                    serde_json::to_string(&g).map_err(|e| ConnectError::fatal(e.to_string()))?,
                );
                Ok(c)
            })
            .collect()
    }
    fn stop(&mut self) -> ConnectResult<()> {
        self.monitor.take();
        Ok(())
    }
}

/// The table monitor: lists the tables every `table.poll.interval.ms` and asks for new task
/// configurations when the list changed.
fn monitor(
    rt: tokio::runtime::Runtime,
    s: Settings,
    tables: Arc<Mutex<Vec<TableRef>>>,
    context: Arc<dyn ConnectorContext>,
    stopped: mpsc::Receiver<()>,
) {
    let mut client: Option<tokio_postgres::Client> = None;
    while let Err(mpsc::RecvTimeoutError::Timeout) = stopped.recv_timeout(s.table_poll) {
        let found = rt.block_on(async {
            if client.as_ref().is_none_or(|c| c.is_closed()) {
                client = Some(session(&s, "tributary-postgres-source").await?);
            }
            match &client {
                Some(c) => list_tables(c, &s).await,
                None => Ok(Vec::new()),
            }
        });
        match found {
            Ok(found) => {
                let Ok(mut known) = tables.lock() else {
                    return;
                };
                if *known != found {
                    tracing::info!(
                        before = known.len(),
                        now = found.len(),
                        "the tables changed; reconfiguring the tasks"
                    );
                    *known = found;
                    drop(known);
                    context.request_task_reconfiguration();
                }
            }
            Err(e) => {
                tracing::warn!(error = %e, "cannot list the tables; trying again later");
                client = None;
            }
        }
    }
}

impl SourceConnector for PostgresSourceConnector {
    fn create_task(&self) -> Box<dyn SourceTask> {
        Box::new(PostgresSourceTask::default())
    }
}

/// One table (or the query) of a task.
struct Querier {
    /// The table as users name it, for messages.
    label: String,
    topic: String,
    partition: Arc<OffsetMap>,
    spec: Spec,
    reads: Vec<Read>,
    schema: Schema,
    position: Position,
    next: Instant,
    statement: Option<tokio_postgres::Statement>,
    tie: Option<tokio_postgres::Statement>,
}

/// The next batch of a querier in the middle of a pass, asked for as soon as the previous one
/// was read so that the database works while the worker converts and sends that one (the
/// next query depends only on the last row's position).
struct Prefetch {
    querier: usize,
    position: Position,
    rows: tokio::task::JoinHandle<Result<Vec<tokio_postgres::Row>, tokio_postgres::Error>>,
}

impl Drop for Prefetch {
    fn drop(&mut self) {
        self.rows.abort();
    }
}

#[derive(Default)]
pub struct PostgresSourceTask {
    settings: Option<Settings>,
    /// One runtime thread of its own drives the connection, so a prefetched batch arrives
    /// while `poll` is not running.
    runtime: Option<tokio::runtime::Runtime>,
    client: Option<Arc<tokio_postgres::Client>>,
    prefetch: Option<Prefetch>,
    queriers: Vec<Querier>,
    /// The querier in the middle of a pass (it returned a full batch).
    current: Option<usize>,
    /// Bulk mode's pass is read through a cursor in a transaction.
    cursor_open: bool,
}

impl std::fmt::Debug for PostgresSourceTask {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PostgresSourceTask").finish_non_exhaustive()
    }
}

/// A column of the catalog: name, NOT NULL, kind.
async fn table_columns(
    client: &tokio_postgres::Client,
    schema: &str,
    table: &str,
) -> ConnectResult<Vec<SourceColumn>> {
    let rows = client
        .query(
            "SELECT a.attname::text, a.attnotnull, t.typname::text, t.typtype::text,
                    CASE WHEN a.atttypmod = -1 AND t0.typtype = 'd' THEN t0.typtypmod ELSE a.atttypmod END,
                    e.typname::text
             FROM pg_attribute a
             JOIN pg_type t0 ON t0.oid = a.atttypid
             JOIN pg_type t ON t.oid = CASE WHEN t0.typtype = 'd' THEN t0.typbasetype ELSE t0.oid END
             LEFT JOIN pg_type e ON e.oid = t.typelem AND t.typcategory = 'A'
             WHERE a.attrelid = $1::text::regclass AND a.attnum > 0 AND NOT a.attisdropped
             ORDER BY a.attnum",
            &[&table_ident(&format!("{schema}.{table}"))],
        )
        .await
        .map_err(|e| {
            ConnectError::retriable(format!(
                "cannot read the columns of {schema}.{table}: {}",
                db_error(&e)
            ))
        })?;
    Ok(rows
        .iter()
        .map(|r| {
            let element: Option<String> = r.get(5);
            SourceColumn {
                name: r.get(0),
                optional: !r.get::<_, bool>(1),
                kind: types::kind(r.get(2), r.get(3), r.get(4), element.as_deref()),
            }
        })
        .collect())
}

/// The columns of the user's query, from its prepared statement (all may be NULL).
async fn query_columns(
    client: &tokio_postgres::Client,
    from: &str,
) -> ConnectResult<Vec<SourceColumn>> {
    let stmt = client
        .prepare(&format!("SELECT * FROM {from} LIMIT 0"))
        .await
        .map_err(|e| ConnectError::Config(format!("query: {}", db_error(&e))))?;
    Ok(stmt
        .columns()
        .iter()
        .map(|c| {
            let t = c.type_();
            let (typtype, element) = match t.kind() {
                tokio_postgres::types::Kind::Enum(_) => ("e", None),
                tokio_postgres::types::Kind::Array(e) => ("b", Some(e.name().to_string())),
                _ => ("b", None),
            };
            SourceColumn {
                name: c.name().to_string(),
                optional: true,
                kind: types::kind(t.name(), typtype, -1, element.as_deref()),
            }
        })
        .collect())
}

/// Checks the mode's columns exist (and may not be NULL when asked); the timestamp type
/// positions are compared as.
fn check_mode_columns(
    s: &Settings,
    label: &str,
    columns: &[SourceColumn],
) -> ConnectResult<&'static str> {
    let find = |key: &str, name: &str| {
        columns.iter().find(|c| c.name == name).ok_or_else(|| {
            ConnectError::Config(format!(
                "{key}: {label} has no column {name:?} (its columns: {})",
                columns
                    .iter()
                    .map(|c| c.name.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            ))
        })
    };
    let nullable = |key: &str, c: &SourceColumn| {
        if s.validate_non_null && c.optional && s.query.is_none() {
            Err(ConnectError::Config(format!(
                "{key}: column {:?} of {label} may be NULL, and rows with NULL there would never be read; make it NOT NULL, or set validate.non.null=false",
                c.name
            )))
        } else {
            Ok(())
        }
    };
    if let Some(inc) = s
        .incrementing
        .as_deref()
        .filter(|_| s.mode.uses_incrementing())
    {
        let c = find("incrementing.column.name", inc)?;
        if !matches!(
            c.kind,
            Kind::Int16 | Kind::Int32 | Kind::Int64 | Kind::Numeric(Some((_, 0)))
        ) {
            return Err(ConnectError::Config(format!(
                "incrementing.column.name: column {inc:?} of {label} is not an integer column"
            )));
        }
        nullable("incrementing.column.name", c)?;
    }
    let mut ts_type = "timestamptz";
    if s.mode.uses_timestamp() {
        for (i, ts) in s.timestamps.iter().enumerate() {
            let c = find("timestamp.column.name", ts)?;
            match c.kind {
                Kind::Timestamp if i == 0 => ts_type = "timestamp",
                Kind::Timestamp | Kind::TimestampTz => {}
                _ => {
                    return Err(ConnectError::Config(format!(
                        "timestamp.column.name: column {ts:?} of {label} is not a timestamp column"
                    )));
                }
            }
            // COALESCE of several columns is NULL only when all are; the last one decides.
            if i + 1 == s.timestamps.len() {
                nullable("timestamp.column.name", c)?;
            }
        }
    }
    Ok(ts_type)
}

fn build_schema(
    name: Option<&str>,
    columns: &[SourceColumn],
    reads: &[Read],
) -> ConnectResult<Schema> {
    let mut b = SchemaBuilder::struct_();
    if let Some(n) = name {
        b = b.name(n);
    }
    for (c, r) in columns.iter().zip(reads) {
        let s = types::schema(r, c.optional)
            .map_err(|e| ConnectError::fatal(format!("column {}: {e}", c.name)))?;
        b = b.field(c.name.clone(), s);
    }
    b.build().map_err(|e| ConnectError::fatal(e.to_string()))
}

/// The wire value of column `i` of `row`, in the form its select expression gives.
fn wire(
    row: &tokio_postgres::Row,
    i: usize,
    kind: &Kind,
) -> Result<Option<Wire>, tokio_postgres::Error> {
    Ok(match kind {
        Kind::Int16 => row.try_get::<_, Option<i16>>(i)?.map(Wire::Int16),
        Kind::Int32 | Kind::Date => row.try_get::<_, Option<i32>>(i)?.map(Wire::Int32),
        Kind::Int64 | Kind::Time | Kind::Timestamp | Kind::TimestampTz => {
            row.try_get::<_, Option<i64>>(i)?.map(Wire::Int64)
        }
        Kind::Float32 => row.try_get::<_, Option<f32>>(i)?.map(Wire::Float32),
        Kind::Float64 => row.try_get::<_, Option<f64>>(i)?.map(Wire::Float64),
        Kind::Bool => row.try_get::<_, Option<bool>>(i)?.map(Wire::Bool),
        Kind::Text | Kind::Numeric(_) | Kind::AsText => {
            row.try_get::<_, Option<String>>(i)?.map(Wire::Text)
        }
        Kind::Bytes => row.try_get::<_, Option<Vec<u8>>>(i)?.map(Wire::Bytes),
        Kind::Array(_) => row
            .try_get::<_, Option<Vec<Option<String>>>>(i)?
            .map(Wire::Array),
    })
}

fn is_gone(e: &tokio_postgres::Error) -> bool {
    e.code().is_some_and(|c| c.code() == "42P01")
}

impl Querier {
    fn value(&self, row: &tokio_postgres::Row) -> ConnectResult<Value> {
        let mut v =
            Struct::new(self.schema.clone()).map_err(|e| ConnectError::fatal(e.to_string()))?;
        for (i, (field, (c, r))) in self
            .schema
            .fields()
            .iter()
            .zip(self.spec.columns.iter().zip(&self.reads))
            .enumerate()
        {
            let w = wire(row, i, &c.kind).map_err(|e| {
                ConnectError::fatal(format!("{} column {}: {e}", self.label, c.name))
            })?;
            let value = w.map(|w| types::decode(r, w)).transpose().map_err(|e| {
                ConnectError::fatal(format!("{} column {}: {e}", self.label, c.name))
            })?;
            v.put_field(field, value).map_err(|e| {
                ConnectError::fatal(format!("{} column {}: {e}", self.label, c.name))
            })?;
        }
        Ok(Value::Struct(v))
    }

    fn record(
        &self,
        row: &tokio_postgres::Row,
        position: &Position,
    ) -> ConnectResult<SourceRecord> {
        Ok(SourceRecord::new(
            self.partition.clone(),
            querier::to_offset(position),
            self.topic.clone(),
            Some(self.schema.clone()),
            Some(self.value(row)?),
        ))
    }
}

fn column_i64(label: &str, row: &tokio_postgres::Row, alias: &str) -> ConnectResult<i64> {
    row.try_get::<_, i64>(alias)
        .map_err(|e| ConnectError::fatal(format!("{label}: reading {alias}: {e}")))
}

impl PostgresSourceTask {
    fn settings(&self) -> ConnectResult<&Settings> {
        self.settings
            .as_ref()
            .ok_or_else(|| ConnectError::fatal("poll before start"))
    }

    /// Connects (again) when there is no usable connection; prepared statements and an open
    /// bulk cursor belong to the connection and go with it.
    fn connect(&mut self) -> ConnectResult<()> {
        if self.client.as_ref().is_some_and(|c| !c.is_closed()) {
            return Ok(());
        }
        let s = self.settings()?.clone();
        let rt = self
            .runtime
            .as_ref()
            .ok_or_else(|| ConnectError::fatal("no runtime"))?;
        let client = rt.block_on(session(&s, "tributary-postgres-source"))?;
        self.client = Some(Arc::new(client));
        self.prefetch = None;
        self.cursor_open = false;
        for q in &mut self.queriers {
            q.statement = None;
            q.tie = None;
        }
        Ok(())
    }

    /// One batch of querier `i`: its records, and whether its pass is over.
    fn step(&mut self, i: usize) -> ConnectResult<(Vec<SourceRecord>, bool)> {
        let (limit, delay) = {
            let s = self.settings()?;
            (s.batch_max_rows, s.delay_ms)
        };
        let rt = self
            .runtime
            .as_ref()
            .ok_or_else(|| ConnectError::fatal("no runtime"))?;
        let client = self
            .client
            .clone()
            .ok_or_else(|| ConnectError::fatal("no connection"))?;
        let prefetched = self
            .prefetch
            .take()
            .filter(|p| p.querier == i && p.position == self.queriers[i].position);
        let next = &mut self.prefetch;
        let q = &mut self.queriers[i];
        let fail = |label: &str, e: tokio_postgres::Error| {
            let message = format!("reading {label}: {}", db_error(&e));
            if e.is_closed() || is_gone(&e) || e.as_db_error().is_none() {
                ConnectError::retriable(message)
            } else {
                ConnectError::fatal(message)
            }
        };
        rt.block_on(async {
            if q.spec.mode == Mode::Bulk {
                if !self.cursor_open {
                    client
                        .batch_execute(&format!(
                            "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY; DECLARE tributary_bulk NO SCROLL CURSOR FOR {}",
                            q.spec.batch_sql()
                        ))
                        .await
                        .map_err(|e| fail(&q.label, e))?;
                    self.cursor_open = true;
                }
                let rows = client
                    .query(&format!("FETCH FORWARD {limit} FROM tributary_bulk"), &[])
                    .await
                    .map_err(|e| fail(&q.label, e))?;
                let done = (rows.len() as i64) < limit;
                if done {
                    client
                        .batch_execute("CLOSE tributary_bulk; COMMIT")
                        .await
                        .map_err(|e| fail(&q.label, e))?;
                    self.cursor_open = false;
                }
                let records = rows
                    .iter()
                    .map(|r| q.record(r, &Position::default()))
                    .collect::<ConnectResult<Vec<_>>>()?;
                return Ok((records, done));
            }
            if q.statement.is_none() {
                q.statement = Some(
                    client
                        .prepare(&q.spec.batch_sql())
                        .await
                        .map_err(|e| fail(&q.label, e))?,
                );
            }
            let Some(stmt) = q.statement.clone() else {
                return Ok((Vec::new(), true));
            };
            let mut rows = match prefetched {
                Some(mut p) => (&mut p.rows)
                    .await
                    .map_err(|e| ConnectError::retriable(format!("reading {}: {e}", q.label)))?,
                None => batch(&client, &stmt, q.spec.mode, q.position, delay, limit).await,
            }
            .map_err(|e| fail(&q.label, e))?;
            let full = rows.len() as i64 >= limit;
            let mut records = Vec::with_capacity(rows.len());
            match q.spec.mode {
                Mode::Incrementing => {
                    for r in &rows {
                        let p = Position {
                            ts_micros: None,
                            inc: Some(column_i64(&q.label, r, INC_ALIAS)?),
                        };
                        records.push(q.record(r, &p)?);
                        q.position = p;
                    }
                }
                Mode::Timestamp => {
                    let label = &q.label;
                    let stamps = |rows: &[tokio_postgres::Row]| -> ConnectResult<Vec<i64>> {
                        rows.iter().map(|r| column_i64(label, r, querier::TS_ALIAS)).collect()
                    };
                    let mut times = stamps(&rows)?;
                    match querier::keep_whole_timestamps(&times, full) {
                        Some(keep) => {
                            rows.truncate(keep);
                            times.truncate(keep);
                        }
                        None => {
                            if q.tie.is_none() {
                                q.tie = Some(
                                    client
                                        .prepare(&q.spec.tie_sql())
                                        .await
                                        .map_err(|e| fail(&q.label, e))?,
                                );
                            }
                            if let (Some(tie), Some(t)) = (q.tie.clone(), times.first().copied()) {
                                rows = client.query(&tie, &[&t]).await.map_err(|e| fail(&q.label, e))?;
                                times = stamps(&rows)?;
                            }
                        }
                    }
                    let offsets = querier::timestamp_offsets(q.position.ts_micros, &times);
                    for (r, o) in rows.iter().zip(offsets) {
                        records.push(q.record(r, &Position { ts_micros: o, inc: None })?);
                    }
                    if let Some(last) = times.last() {
                        q.position.ts_micros = Some(*last);
                    }
                }
                _ => {
                    for r in &rows {
                        let p = Position {
                            ts_micros: Some(column_i64(&q.label, r, querier::TS_ALIAS)?),
                            inc: Some(column_i64(&q.label, r, INC_ALIAS)?),
                        };
                        records.push(q.record(r, &p)?);
                        q.position = p;
                    }
                }
            }
            // Timestamp mode may read a batch again to complete a timestamp; the others go on
            // from the last row, so their next batch can be on its way already.
            if full && matches!(q.spec.mode, Mode::Incrementing | Mode::TimestampIncrementing) {
                let position = q.position;
                let mode = q.spec.mode;
                let client = client.clone();
                *next = Some(Prefetch {
                    querier: i,
                    position,
                    rows: tokio::spawn(async move {
                        batch(&client, &stmt, mode, position, delay, limit).await
                    }),
                });
            }
            Ok((records, !full))
        })
    }
}

/// One batch of a querier's prepared statement after `position`.
async fn batch(
    client: &tokio_postgres::Client,
    stmt: &tokio_postgres::Statement,
    mode: Mode,
    position: Position,
    delay: i64,
    limit: i64,
) -> Result<Vec<tokio_postgres::Row>, tokio_postgres::Error> {
    let ts = position.ts_micros.unwrap_or(EARLIEST_MICROS);
    let inc = position.inc.unwrap_or(-1);
    let params: Vec<&(dyn ToSql + Sync)> = match mode {
        Mode::Incrementing => vec![&inc, &limit],
        Mode::Timestamp => vec![&ts, &delay, &limit],
        _ => vec![&ts, &inc, &delay, &limit],
    };
    client.query(stmt, &params).await
}

impl SourceTask for PostgresSourceTask {
    fn version(&self) -> String {
        super::version()
    }

    fn start(&mut self, context: SourceTaskContext) -> ConnectResult<()> {
        let s = settings(&context.config)?;
        let tables: Vec<TableRef> = match context.config.get(TABLES_KEY) {
            Some(t) if s.query.is_none() => serde_json::from_str(t).map_err(|e| {
                ConnectError::fatal(format!("the task's table list cannot be read: {e}"))
            })?,
            _ => Vec::new(),
        };
        let rt = super::super::background_runtime("postgres-source")?;
        let (database, specs) = rt.block_on(async {
            let client = session(&s, "tributary-postgres-source").await?;
            let database: String = client
                .query_one("SELECT current_database()::text", &[])
                .await
                .map_err(|e| ConnectError::retriable(db_error(&e)))?
                .get(0);
            let mut specs = Vec::new();
            if let Some(query) = &s.query {
                let from = format!("({query}) AS tributary_query");
                let columns = query_columns(&client, &from).await?;
                specs.push(("query".to_string(), None, from, columns));
            }
            for (schema, table) in &tables {
                let columns = table_columns(&client, schema, table).await?;
                specs.push((
                    format!("{schema}.{table}"),
                    Some((schema.clone(), table.clone())),
                    table_ident(&format!("{schema}.{table}")),
                    columns,
                ));
            }
            Ok::<_, ConnectError>((database, specs))
        })?;
        let mut queriers = Vec::new();
        for (label, table, from, columns) in specs {
            let ts_type = check_mode_columns(&s, &label, &columns)?;
            let reads: Vec<Read> = columns
                .iter()
                .map(|c| types::read(&c.kind, s.numeric))
                .collect();
            let (topic, partition, name) = match &table {
                Some((schema, t)) => (
                    format!("{}{t}", s.topic_prefix),
                    querier::table_partition(&database, schema, t),
                    Some(t.as_str()),
                ),
                None => (s.topic_prefix.clone(), querier::query_partition(), None),
            };
            let schema = build_schema(name, &columns, &reads)?;
            queriers.push(Querier {
                label,
                topic,
                partition: Arc::new(partition),
                spec: Spec {
                    from,
                    columns,
                    mode: s.mode,
                    incrementing: s
                        .incrementing
                        .clone()
                        .filter(|_| s.mode.uses_incrementing()),
                    timestamps: if s.mode.uses_timestamp() {
                        s.timestamps.clone()
                    } else {
                        Vec::new()
                    },
                    timestamp_type: ts_type,
                },
                reads,
                schema,
                position: Position::default(),
                next: Instant::now(),
                statement: None,
                tie: None,
            });
        }
        let partitions: Vec<OffsetMap> = queriers.iter().map(|q| (*q.partition).clone()).collect();
        for (q, (_, offset)) in queriers
            .iter_mut()
            .zip(context.offset_reader.offsets(&partitions))
        {
            if let Some(o) = offset.filter(|_| q.spec.mode != Mode::Bulk) {
                q.position = querier::from_offset(&o);
                tracing::info!(table = %q.label, offset = ?o, "resuming");
            }
        }
        self.queriers = queriers;
        self.settings = Some(s);
        self.runtime = Some(rt);
        Ok(())
    }

    fn poll(&mut self) -> ConnectResult<Vec<SourceRecord>> {
        let now = Instant::now();
        let due = self.current.or_else(|| {
            self.queriers
                .iter()
                .enumerate()
                .min_by_key(|(_, q)| q.next)
                .map(|(i, _)| i)
        });
        let Some(i) = due else {
            std::thread::sleep(Duration::from_millis(200));
            return Ok(Vec::new());
        };
        if self.queriers[i].next > now {
            std::thread::sleep((self.queriers[i].next - now).min(Duration::from_millis(200)));
            return Ok(Vec::new());
        }
        if let Err(e) = self.connect() {
            std::thread::sleep(Duration::from_secs(1));
            return Err(e);
        }
        match self.step(i) {
            Ok((records, done)) => {
                if done {
                    let interval = self.settings()?.poll_interval;
                    self.queriers[i].next = Instant::now() + interval;
                    self.current = None;
                } else {
                    self.current = Some(i);
                }
                Ok(records)
            }
            Err(e) => {
                // The pass starts over (from the position of the last record returned).
                self.current = None;
                self.prefetch = None;
                if self.cursor_open {
                    self.client = None;
                    self.cursor_open = false;
                }
                if e.is_retriable() {
                    self.queriers[i].next = Instant::now() + Duration::from_secs(1);
                }
                Err(e)
            }
        }
    }

    fn stop(&mut self) -> ConnectResult<()> {
        self.prefetch = None;
        self.client = None;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(s: &str, n: &str) -> TableRef {
        (s.into(), n.into())
    }

    #[test]
    fn lists_select_tables_by_name_or_qualified_name() {
        let all = [
            t("public", "a"),
            t("public", "b"),
            t("sales", "a"),
            t("sales", "c"),
        ];
        assert_eq!(selected(&all, &[], &[]).len(), 4);
        assert_eq!(
            selected(&all, &["a".into()], &[]),
            vec![t("public", "a"), t("sales", "a")]
        );
        assert_eq!(
            selected(&all, &["sales.a".into(), "b".into()], &[]),
            vec![t("public", "b"), t("sales", "a")]
        );
        assert_eq!(
            selected(&all, &[], &["public.a".into(), "c".into()]),
            vec![t("public", "b"), t("sales", "a")]
        );
    }

    #[test]
    fn tables_spread_over_tasks_in_contiguous_groups() {
        let tables: Vec<TableRef> = (0..5).map(|i| t("s", &i.to_string())).collect();
        let g = groups(&tables, 2);
        assert_eq!(g.iter().map(Vec::len).collect::<Vec<_>>(), vec![3, 2]);
        assert_eq!(groups(&tables, 9).len(), 5);
        assert!(groups(&[], 3).is_empty());
        assert_eq!(groups(&tables, 1)[0], tables);
    }

    #[test]
    fn keys_that_do_not_go_together_are_named() {
        let c = |pairs: &[(&str, &str)]| -> Config {
            pairs
                .iter()
                .map(|(k, v)| ((*k).to_string(), (*v).to_string()))
                .collect()
        };
        let errors = cross_check(&c(&[("mode", "timestamp+incrementing")]));
        let keys: Vec<_> = errors.iter().map(|(k, _)| *k).collect();
        assert_eq!(
            keys,
            vec!["incrementing.column.name", "timestamp.column.name"]
        );
        let errors = cross_check(&c(&[
            ("mode", "bulk"),
            ("query", "SELECT 1"),
            ("table.whitelist", "a"),
            ("table.blacklist", "b"),
            ("table.types", "TABLE,SYNONYM"),
        ]));
        let keys: Vec<_> = errors.iter().map(|(k, _)| *k).collect();
        assert_eq!(keys, vec!["table.blacklist", "query", "table.types"]);
        assert!(
            cross_check(&c(&[
                ("mode", "incrementing"),
                ("incrementing.column.name", "id")
            ]))
            .is_empty()
        );
        let connector = PostgresSourceConnector::default();
        let v = connector.validate(&c(&[("mode", "incrementing"), ("topic.prefix", "p-")]));
        let inc = v
            .iter()
            .find(|k| k.name == "incrementing.column.name")
            .unwrap();
        assert_eq!(inc.errors.len(), 1, "{inc:?}");
        let url = v.iter().find(|k| k.name == "connection.url").unwrap();
        assert_eq!(url.errors.len(), 1, "a missing connection.url is named");
    }
}
