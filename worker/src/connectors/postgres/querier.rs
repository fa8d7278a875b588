//! What the PostgreSQL source asks the database for, per table (or query) and mode, and where it
//! stands: the statements, their positions and the offsets records carry. Pure; the task runs
//! the statements.
//!
//! Incremental modes page with a key the rows are ordered by, so a batch limit never skips
//! rows: `incrementing` by the column, `timestamp+incrementing` by (timestamp, column). Plain
//! `timestamp` mode has no unique key; a full batch is cut before its last timestamp (and a batch
//! of one timestamp only is read whole), so the rows of one timestamp always travel together and
//! the next query (`> that timestamp`) misses none. Rows whose timestamp is not yet older than
//! `timestamp.delay.interval.ms` wait for a later query, giving the transactions that wrote
//! them time to commit.

use serde_json::Value as Json;
use tributary_connect_api::OffsetMap;

use super::sql::ident;
use super::types::{Kind, epoch_micros, select_expr};

/// `mode`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    Bulk,
    Incrementing,
    Timestamp,
    TimestampIncrementing,
}

impl Mode {
    pub fn parse(s: &str) -> Option<Mode> {
        Some(match s {
            "bulk" => Mode::Bulk,
            "incrementing" => Mode::Incrementing,
            "timestamp" => Mode::Timestamp,
            "timestamp+incrementing" => Mode::TimestampIncrementing,
            _ => return None,
        })
    }
    pub fn uses_timestamp(self) -> bool {
        matches!(self, Mode::Timestamp | Mode::TimestampIncrementing)
    }
    pub fn uses_incrementing(self) -> bool {
        matches!(self, Mode::Incrementing | Mode::TimestampIncrementing)
    }
}

/// A column the source reads.
#[derive(Debug, Clone, PartialEq)]
pub struct SourceColumn {
    pub name: String,
    pub kind: Kind,
    pub optional: bool,
}

/// Where rows come from and how they are ordered.
#[derive(Debug, Clone)]
pub struct Spec {
    /// The quoted table, or the user's query as a subquery.
    pub from: String,
    pub columns: Vec<SourceColumn>,
    pub mode: Mode,
    pub incrementing: Option<String>,
    pub timestamps: Vec<String>,
    /// `timestamp` or `timestamptz`: the type positions are compared as (the first timestamp
    /// column's), so an index on the column serves the query.
    pub timestamp_type: &'static str,
}

/// The extra columns the incremental modes read, after the table's own.
pub const INC_ALIAS: &str = "__tributary_inc";
pub const TS_ALIAS: &str = "__tributary_ts";

/// The first timestamp the timestamp modes look after: 0001-01-01T00:00:00Z.
pub const EARLIEST_MICROS: i64 = -62_135_596_800_000_000;

impl Spec {
    fn ts_expr(&self) -> String {
        let cols: Vec<String> = self.timestamps.iter().map(|c| ident(c)).collect();
        if cols.len() == 1 {
            cols[0].clone()
        } else {
            format!("COALESCE({})", cols.join(", "))
        }
    }

    fn position(&self, n: usize) -> String {
        format!(
            "(TIMESTAMPTZ 'epoch' + ${n}::int8 * INTERVAL '1 microsecond')::{}",
            self.timestamp_type
        )
    }

    fn end(&self, n: usize) -> String {
        format!(
            "(now() - ${n}::int8 * INTERVAL '1 millisecond')::{}",
            self.timestamp_type
        )
    }

    fn select(&self) -> String {
        let mut list: Vec<String> = self
            .columns
            .iter()
            .map(|c| select_expr(&ident(&c.name), &c.kind))
            .collect();
        if let Some(inc) = &self.incrementing {
            list.push(format!("{}::int8 AS {INC_ALIAS}", ident(inc)));
        }
        if self.mode.uses_timestamp() {
            list.push(format!("{} AS {TS_ALIAS}", epoch_micros(&self.ts_expr())));
        }
        format!("SELECT {} FROM {}", list.join(", "), self.from)
    }

    /// The statement of one batch. Parameters, in order: bulk none (it is read through a
    /// cursor); incrementing (inc, limit); timestamp (ts, delay ms, limit);
    /// timestamp+incrementing (ts, inc, delay ms, limit).
    pub fn batch_sql(&self) -> String {
        let select = self.select();
        match self.mode {
            Mode::Bulk => select,
            Mode::Incrementing => {
                let inc = ident(self.incrementing.as_deref().unwrap_or_default());
                format!("{select} WHERE {inc} > $1::int8 ORDER BY {inc} ASC LIMIT $2::int8")
            }
            Mode::Timestamp => {
                let ts = self.ts_expr();
                format!(
                    "{select} WHERE {ts} > {} AND {ts} < {} ORDER BY {ts} ASC LIMIT $3::int8",
                    self.position(1),
                    self.end(2)
                )
            }
            Mode::TimestampIncrementing => {
                let ts = self.ts_expr();
                let inc = ident(self.incrementing.as_deref().unwrap_or_default());
                // A row comparison, not the JDBC source's `(ts = p AND id > n) OR ts > p`: the
                // same rows, but a (ts, id) index serves it as a range, where the OR form makes
                // PostgreSQL walk the index from its start for every batch.
                format!(
                    "{select} WHERE {ts} < {end} AND ({ts}, {inc}) > ({p}, $2::int8) ORDER BY {ts} ASC, {inc} ASC LIMIT $4::int8",
                    p = self.position(1),
                    end = self.end(3)
                )
            }
        }
    }

    /// Timestamp mode: every row of one timestamp (parameter: ts), for a batch that held no
    /// other.
    pub fn tie_sql(&self) -> String {
        format!(
            "{} WHERE {} = {}",
            self.select(),
            self.ts_expr(),
            self.position(1)
        )
    }
}

/// Where a querier stands: the last timestamp (µs) and incrementing value it emitted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Position {
    pub ts_micros: Option<i64>,
    pub inc: Option<i64>,
}

/// The offset keys of the JDBC source (`TimestampIncrementingOffset`): `timestamp` in
/// milliseconds, `timestamp_nanos` the nanoseconds within its second, `incrementing`.
pub fn to_offset(p: &Position) -> OffsetMap {
    let mut o = OffsetMap::new();
    if let Some(us) = p.ts_micros {
        let secs = us.div_euclid(1_000_000);
        let frac = us.rem_euclid(1_000_000);
        o.insert("timestamp".into(), Json::from(secs * 1000 + frac / 1000));
        o.insert("timestamp_nanos".into(), Json::from(frac * 1000));
    }
    if let Some(i) = p.inc {
        o.insert("incrementing".into(), Json::from(i));
    }
    o
}

pub fn from_offset(o: &OffsetMap) -> Position {
    let int = |k: &str| o.get(k).and_then(Json::as_i64);
    let ts_micros = int("timestamp").map(|ms| match int("timestamp_nanos") {
        Some(nanos) => ms.div_euclid(1000) * 1_000_000 + nanos / 1000,
        None => ms * 1000,
    });
    Position {
        ts_micros,
        inc: int("incrementing"),
    }
}

/// Timestamp mode's batch: how many leading rows to keep of a full batch, given each row's
/// timestamp (the rows of the last timestamp may continue past the limit, so they are left for
/// the next query); `None` when every row shares one timestamp, which is then read whole.
pub fn keep_whole_timestamps(timestamps: &[i64], full: bool) -> Option<usize> {
    let Some(last) = timestamps.last() else {
        return Some(0);
    };
    if !full {
        return Some(timestamps.len());
    }
    let keep = timestamps
        .iter()
        .rposition(|t| t != last)
        .map_or(0, |i| i + 1);
    (keep > 0).then_some(keep)
}

/// Timestamp mode's offsets: a row that is not the last of its timestamp in the batch carries
/// the timestamp before it, so a restart after it resumes with the rest of its timestamp.
pub fn timestamp_offsets(start: Option<i64>, timestamps: &[i64]) -> Vec<Option<i64>> {
    let mut before = start;
    let mut out = Vec::with_capacity(timestamps.len());
    for (i, t) in timestamps.iter().enumerate() {
        let last_of_group = timestamps.get(i + 1) != Some(t);
        out.push(if last_of_group { Some(*t) } else { before });
        if last_of_group {
            before = Some(*t);
        }
    }
    out
}

/// The source partition of a table, as the JDBC source's offset protocol 1 writes it.
pub fn table_partition(database: &str, schema: &str, table: &str) -> OffsetMap {
    OffsetMap::from([
        ("protocol".to_string(), Json::from("1")),
        (
            "table".to_string(),
            Json::from(format!("{database}.{schema}.{table}")),
        ),
    ])
}

/// The source partition of query mode, as the JDBC source writes it.
pub fn query_partition() -> OffsetMap {
    OffsetMap::from([("query".to_string(), Json::from("query"))])
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(mode: Mode) -> Spec {
        Spec {
            from: "\"public\".\"orders\"".into(),
            columns: vec![
                SourceColumn {
                    name: "id".into(),
                    kind: Kind::Int64,
                    optional: false,
                },
                SourceColumn {
                    name: "at".into(),
                    kind: Kind::Timestamp,
                    optional: false,
                },
            ],
            mode,
            incrementing: mode.uses_incrementing().then(|| "id".to_string()),
            timestamps: if mode.uses_timestamp() {
                vec!["at".into()]
            } else {
                vec![]
            },
            timestamp_type: "timestamp",
        }
    }

    #[test]
    fn each_mode_pages_by_its_key() {
        let at = r#"(EXTRACT(EPOCH FROM ("at")::timestamptz) * 1000000)::int8"#;
        assert_eq!(
            spec(Mode::Bulk).batch_sql(),
            format!(r#"SELECT "id", {at} FROM "public"."orders""#)
        );
        assert_eq!(
            spec(Mode::Incrementing).batch_sql(),
            format!(
                r#"SELECT "id", {at}, "id"::int8 AS __tributary_inc FROM "public"."orders" WHERE "id" > $1::int8 ORDER BY "id" ASC LIMIT $2::int8"#
            )
        );
        let p = |n: usize| {
            format!("(TIMESTAMPTZ 'epoch' + ${n}::int8 * INTERVAL '1 microsecond')::timestamp")
        };
        let ts = r#"(EXTRACT(EPOCH FROM ("at")::timestamptz) * 1000000)::int8 AS __tributary_ts"#;
        assert_eq!(
            spec(Mode::Timestamp).batch_sql(),
            format!(
                r#"SELECT "id", {at}, {ts} FROM "public"."orders" WHERE "at" > {} AND "at" < (now() - $2::int8 * INTERVAL '1 millisecond')::timestamp ORDER BY "at" ASC LIMIT $3::int8"#,
                p(1)
            )
        );
        assert_eq!(
            spec(Mode::TimestampIncrementing).batch_sql(),
            format!(
                r#"SELECT "id", {at}, "id"::int8 AS __tributary_inc, {ts} FROM "public"."orders" WHERE "at" < (now() - $3::int8 * INTERVAL '1 millisecond')::timestamp AND ("at", "id") > ({p1}, $2::int8) ORDER BY "at" ASC, "id" ASC LIMIT $4::int8"#,
                p1 = p(1)
            )
        );
        let mut two = spec(Mode::Timestamp);
        two.timestamps = vec!["updated".into(), "at".into()];
        assert!(
            two.tie_sql()
                .ends_with(&format!(r#"WHERE COALESCE("updated", "at") = {}"#, p(1)))
        );
    }

    #[test]
    fn offsets_use_the_jdbc_source_keys_and_round_trip() {
        let p = Position {
            ts_micros: Some(1_709_251_199_999_123),
            inc: Some(42),
        };
        let o = to_offset(&p);
        assert_eq!(o["timestamp"], Json::from(1_709_251_199_999i64));
        assert_eq!(o["timestamp_nanos"], Json::from(999_123_000i64));
        assert_eq!(o["incrementing"], Json::from(42));
        assert_eq!(from_offset(&o), p);
        let before_1970 = Position {
            ts_micros: Some(-1),
            inc: None,
        };
        assert_eq!(from_offset(&to_offset(&before_1970)), before_1970);
        // An offset written without nanos (milliseconds only) reads back at its millisecond.
        let ms_only = OffsetMap::from([("timestamp".to_string(), Json::from(5))]);
        assert_eq!(from_offset(&ms_only).ts_micros, Some(5000));
        assert_eq!(from_offset(&OffsetMap::new()), Position::default());
    }

    #[test]
    fn timestamp_batches_keep_each_timestamp_whole() {
        assert_eq!(keep_whole_timestamps(&[1, 2, 2], true), Some(1));
        assert_eq!(keep_whole_timestamps(&[1, 2, 2], false), Some(3));
        assert_eq!(keep_whole_timestamps(&[2, 2, 2], true), None);
        assert_eq!(keep_whole_timestamps(&[], true), Some(0));
        assert_eq!(
            timestamp_offsets(Some(0), &[1, 2, 2, 3]),
            vec![Some(1), Some(1), Some(2), Some(3)]
        );
        assert_eq!(timestamp_offsets(None, &[5, 5]), vec![None, Some(5)]);
    }
}
