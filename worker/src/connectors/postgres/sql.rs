//! What the PostgreSQL sink says to the database, built without it: column types for Connect
//! schemas, `CREATE TABLE`/`ALTER TABLE` DDL, the batch statements (`COPY … FROM STDIN` for
//! inserts, `INSERT … SELECT FROM UNNEST(…) ON CONFLICT … DO UPDATE`, `UPDATE … FROM UNNEST`,
//! `DELETE … USING UNNEST`), and each value as the text PostgreSQL parses into the column's
//! type. In the statements every column travels as a `text[]` parameter cast to its type, so
//! one statement writes a whole batch of any types; COPY carries the same texts as rows.

use tributary_connect_api::{Schema, Type, Value, logical};

use crate::transforms::cast::java_double;

/// Quotes an identifier (`"a""b"`).
pub fn ident(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

/// `schema.table` or `table`, each part quoted.
pub fn table_ident(table: &str) -> String {
    table.split('.').map(ident).collect::<Vec<_>>().join(".")
}

/// The PostgreSQL type a Connect schema is stored as (as the JDBC sink's PostgreSQL dialect).
pub fn column_type(schema: &Schema) -> Result<String, String> {
    Ok(match (schema.name(), schema.type_()) {
        (Some(logical::DECIMAL), _) => "NUMERIC".into(),
        (Some(logical::DATE), _) => "DATE".into(),
        (Some(logical::TIME), _) => "TIME".into(),
        (Some(logical::TIMESTAMP), _) => "TIMESTAMP".into(),
        (_, Type::Int8 | Type::Int16) => "SMALLINT".into(),
        (_, Type::Int32) => "INT".into(),
        (_, Type::Int64) => "BIGINT".into(),
        (_, Type::Float32) => "REAL".into(),
        (_, Type::Float64) => "DOUBLE PRECISION".into(),
        (_, Type::Boolean) => "BOOLEAN".into(),
        (_, Type::String) => "TEXT".into(),
        (_, Type::Bytes) => "BYTEA".into(),
        (_, Type::Array) => {
            let element = schema
                .value_schema()
                .ok_or("an array schema without its element schema")?;
            if element.type_() == Type::Array {
                return Err("arrays of arrays cannot be stored".into());
            }
            format!("{}[]", column_type(element)?)
        }
        (_, t) => {
            return Err(format!(
                "a {t} cannot be stored in a column; flatten it first (the Flatten transform)"
            ));
        }
    })
}

/// A column of the target table.
#[derive(Debug, Clone, PartialEq)]
pub struct Column {
    pub name: String,
    pub sql_type: String,
    pub optional: bool,
}

pub fn create_table(table: &str, columns: &[Column], pk: &[String]) -> String {
    let mut parts: Vec<String> = columns
        .iter()
        .map(|c| {
            format!(
                "{} {}{}",
                ident(&c.name),
                c.sql_type,
                if c.optional && !pk.contains(&c.name) {
                    ""
                } else {
                    " NOT NULL"
                }
            )
        })
        .collect();
    if !pk.is_empty() {
        parts.push(format!(
            "PRIMARY KEY({})",
            pk.iter().map(|p| ident(p)).collect::<Vec<_>>().join(", ")
        ));
    }
    format!(
        "CREATE TABLE IF NOT EXISTS {} ({})",
        table_ident(table),
        parts.join(", ")
    )
}

/// Added columns must be nullable (rows already there have no value), as the JDBC sink's
/// `auto.evolve` requires.
pub fn add_columns(table: &str, columns: &[Column]) -> String {
    let adds: Vec<String> = columns
        .iter()
        .map(|c| format!("ADD COLUMN IF NOT EXISTS {} {}", ident(&c.name), c.sql_type))
        .collect();
    format!("ALTER TABLE {} {}", table_ident(table), adds.join(", "))
}

/// `UNNEST($1::text[], …) AS u(c1, …)` and the select list casting each to its type.
fn unnest(columns: &[Column]) -> (String, String) {
    let params: Vec<String> = (1..=columns.len())
        .map(|i| format!("${i}::text[]"))
        .collect();
    let names: Vec<String> = columns.iter().map(|c| ident(&c.name)).collect();
    let select: Vec<String> = columns
        .iter()
        .map(|c| format!("u.{}::{}", ident(&c.name), c.sql_type))
        .collect();
    (
        format!("UNNEST({}) AS u({})", params.join(", "), names.join(", ")),
        select.join(", "),
    )
}

/// Insert (or upsert on `pk`) every row of the parameters' arrays.
pub fn insert(table: &str, columns: &[Column], pk: &[String], upsert: bool) -> String {
    let (from, select) = unnest(columns);
    let names: Vec<String> = columns.iter().map(|c| ident(&c.name)).collect();
    let mut sql = format!(
        "INSERT INTO {} ({}) SELECT {select} FROM {from}",
        table_ident(table),
        names.join(", ")
    );
    if upsert && !pk.is_empty() {
        let updates: Vec<String> = columns
            .iter()
            .filter(|c| !pk.contains(&c.name))
            .map(|c| format!("{0} = EXCLUDED.{0}", ident(&c.name)))
            .collect();
        let keys: Vec<String> = pk.iter().map(|p| ident(p)).collect();
        if updates.is_empty() {
            sql.push_str(&format!(" ON CONFLICT ({}) DO NOTHING", keys.join(", ")));
        } else {
            sql.push_str(&format!(
                " ON CONFLICT ({}) DO UPDATE SET {}",
                keys.join(", "),
                updates.join(", ")
            ));
        }
    }
    sql
}

/// `COPY table (columns) FROM STDIN` in the text format: insert mode's fast path. Each column
/// reads its text with the column type's input function, as the casts of the UNNEST statement
/// do, so both paths accept the same texts.
pub fn copy_in(table: &str, columns: &[Column]) -> String {
    let names: Vec<String> = columns.iter().map(|c| ident(&c.name)).collect();
    format!(
        "COPY {} ({}) FROM STDIN",
        table_ident(table),
        names.join(", ")
    )
}

/// Appends one row in COPY's text format: values separated by tabs, `\N` for NULL, and
/// backslash escapes for the four characters the format gives a meaning to.
pub fn copy_row<'a>(values: impl IntoIterator<Item = Option<&'a str>>, out: &mut String) {
    for (i, v) in values.into_iter().enumerate() {
        if i > 0 {
            out.push('\t');
        }
        match v {
            None => out.push_str("\\N"),
            Some(text) => {
                let mut rest = text;
                while let Some(at) = rest.find(['\\', '\t', '\n', '\r']) {
                    out.push_str(&rest[..at]);
                    out.push_str(match rest.as_bytes()[at] {
                        b'\\' => "\\\\",
                        b'\t' => "\\t",
                        b'\n' => "\\n",
                        _ => "\\r",
                    });
                    rest = &rest[at + 1..];
                }
                out.push_str(rest);
            }
        }
    }
    out.push('\n');
}

/// Update the rows whose `pk` matches; rows that are not there are not inserted.
pub fn update(table: &str, columns: &[Column], pk: &[String]) -> String {
    let (from, _) = unnest(columns);
    let sets: Vec<String> = columns
        .iter()
        .filter(|c| !pk.contains(&c.name))
        .map(|c| format!("{0} = u.{0}::{1}", ident(&c.name), c.sql_type))
        .collect();
    let on: Vec<String> = columns
        .iter()
        .filter(|c| pk.contains(&c.name))
        .map(|c| format!("t.{0} = u.{0}::{1}", ident(&c.name), c.sql_type))
        .collect();
    format!(
        "UPDATE {} AS t SET {} FROM {from} WHERE {}",
        table_ident(table),
        sets.join(", "),
        on.join(" AND ")
    )
}

/// Delete the rows whose `pk` (the columns given) matches.
pub fn delete(table: &str, pk_columns: &[Column]) -> String {
    let (from, _) = unnest(pk_columns);
    let on: Vec<String> = pk_columns
        .iter()
        .map(|c| format!("t.{0} = u.{0}::{1}", ident(&c.name), c.sql_type))
        .collect();
    format!(
        "DELETE FROM {} AS t USING {from} WHERE {}",
        table_ident(table),
        on.join(" AND ")
    )
}

/// A value as the text PostgreSQL reads into its column type; `None` for NULL.
pub fn text(value: Option<&Value>) -> Result<Option<String>, String> {
    let mut out = String::new();
    Ok(write_text(value, &mut out)?.then_some(out))
}

/// Appends the text of `value` to `out`, without a copy of its own for the common types; false
/// (nothing appended) for NULL.
pub fn write_text(value: Option<&Value>, out: &mut String) -> Result<bool, String> {
    use std::fmt::Write as _;
    let Some(v) = value else {
        return Ok(false);
    };
    // itoa: `write!` of an integer goes through the formatting machinery, a visible share of
    // the sink's CPU at hundreds of thousands of rows a second.
    let integer = |n: i64, out: &mut String| {
        out.push_str(itoa::Buffer::new().format(n));
        Ok(())
    };
    // Writing into a String cannot fail.
    let _: std::fmt::Result = match v {
        Value::Int8(n) => integer(i64::from(*n), out),
        Value::Int16(n) => integer(i64::from(*n), out),
        Value::Int32(n) => integer(i64::from(*n), out),
        Value::Int64(n) => integer(*n, out),
        Value::Boolean(b) => {
            out.push_str(if *b { "true" } else { "false" });
            Ok(())
        }
        // Java's text of the number (PostgreSQL reads it back as the same value), written in
        // place: formatting doubles through temporary strings was an eighth of the task's CPU.
        Value::Float32(f) if f.is_finite() => {
            crate::converter::json_text::push_java_float(*f, out);
            Ok(())
        }
        Value::Float64(f) if f.is_finite() => {
            crate::converter::json_text::push_java_double(*f, out);
            Ok(())
        }
        Value::String(s) => {
            out.push_str(s);
            Ok(())
        }
        Value::Bytes(b) => {
            out.reserve(2 + b.len() * 2);
            out.push_str("\\x");
            for byte in b {
                let _ = write!(out, "{byte:02x}");
            }
            Ok(())
        }
        other => {
            out.push_str(&owned_text(other)?);
            Ok(())
        }
    };
    Ok(true)
}

/// The text of the types that take more than a formatting call.
fn owned_text(v: &Value) -> Result<String, String> {
    Ok(match v {
        // Only the non-finite ones come here (their words, unquoted).
        Value::Float32(f) => java_double(f64::from(*f), Some(*f)),
        Value::Float64(f) => java_double(*f, None),
        Value::Decimal(d) => {
            let digits = d.unscaled.magnitude().to_string();
            let sign = if d.unscaled.sign() == num_bigint::Sign::Minus {
                "-"
            } else {
                ""
            };
            if d.scale <= 0 {
                format!(
                    "{sign}{digits}{}",
                    "0".repeat(d.scale.unsigned_abs() as usize)
                )
            } else {
                let scale = d.scale as usize;
                let padded = format!("{digits:0>width$}", width = scale + 1);
                let (a, b) = padded.split_at(padded.len() - scale);
                format!("{sign}{a}.{b}")
            }
        }
        Value::Date(days) => {
            crate::transforms::date_text("yyyy-MM-dd", i64::from(*days) * 86_400_000)
        }
        Value::Time(ms) => crate::transforms::date_text("HH:mm:ss.SSS", i64::from(*ms)),
        Value::Timestamp(ms) => crate::transforms::date_text("yyyy-MM-dd HH:mm:ss.SSS", *ms),
        Value::Array(items) => {
            let parts: Result<Vec<String>, String> = items
                .iter()
                .map(|i| {
                    Ok(match text(i.as_ref())? {
                        None => "NULL".to_string(),
                        Some(t) => format!("\"{}\"", t.replace('\\', "\\\\").replace('"', "\\\"")),
                    })
                })
                .collect();
            format!("{{{}}}", parts?.join(","))
        }
        other => {
            return Err(format!(
                "a {} value cannot be stored in a column",
                other.kind()
            ));
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use num_bigint::BigInt;
    use tributary_connect_api::{Decimal, SchemaBuilder};

    #[test]
    fn copy_rows_escape_what_the_text_format_gives_a_meaning_to() {
        let mut out = String::new();
        super::copy_row(
            [
                Some("plain"),
                None,
                Some("a\tb\nc\rd\\e\\N"),
                Some(""),
                Some("\\."),
            ],
            &mut out,
        );
        assert_eq!(out, "plain\t\\N\ta\\tb\\nc\\rd\\\\e\\\\N\t\t\\\\.\n");
        let cols = [super::Column {
            name: "a\"b".into(),
            sql_type: "TEXT".into(),
            optional: true,
        }];
        assert_eq!(
            super::copy_in("s.t", &cols),
            r#"COPY "s"."t" ("a""b") FROM STDIN"#
        );
    }

    fn col(name: &str, t: &str, optional: bool) -> Column {
        Column {
            name: name.into(),
            sql_type: t.into(),
            optional,
        }
    }

    #[test]
    fn statements_cover_a_batch_with_one_parameter_per_column() {
        let cols = [col("id", "BIGINT", false), col("name", "TEXT", true)];
        let pk = ["id".to_string()];
        assert_eq!(
            insert("public.users", &cols, &pk, true),
            r#"INSERT INTO "public"."users" ("id", "name") SELECT u."id"::BIGINT, u."name"::TEXT FROM UNNEST($1::text[], $2::text[]) AS u("id", "name") ON CONFLICT ("id") DO UPDATE SET "name" = EXCLUDED."name""#
        );
        assert_eq!(
            update("users", &cols, &pk),
            r#"UPDATE "users" AS t SET "name" = u."name"::TEXT FROM UNNEST($1::text[], $2::text[]) AS u("id", "name") WHERE t."id" = u."id"::BIGINT"#
        );
        assert_eq!(
            delete("users", &cols[..1]),
            r#"DELETE FROM "users" AS t USING UNNEST($1::text[]) AS u("id") WHERE t."id" = u."id"::BIGINT"#
        );
        assert_eq!(
            create_table("users", &cols, &pk),
            r#"CREATE TABLE IF NOT EXISTS "users" ("id" BIGINT NOT NULL, "name" TEXT, PRIMARY KEY("id"))"#
        );
        assert_eq!(
            add_columns("users", &cols[1..]),
            r#"ALTER TABLE "users" ADD COLUMN IF NOT EXISTS "name" TEXT"#
        );
        assert_eq!(ident("we\"ird"), "\"we\"\"ird\"");
    }

    #[test]
    fn values_become_the_text_postgres_parses() {
        let d = |u: i64, scale: i32| {
            Value::Decimal(Decimal {
                unscaled: BigInt::from(u),
                scale,
            })
        };
        assert_eq!(text(Some(&d(-5, 3))).unwrap().unwrap(), "-0.005");
        assert_eq!(text(Some(&d(12345, 2))).unwrap().unwrap(), "123.45");
        assert_eq!(text(Some(&d(7, -2))).unwrap().unwrap(), "700");
        assert_eq!(
            text(Some(&Value::Bytes(vec![0, 255]))).unwrap().unwrap(),
            "\\x00ff"
        );
        assert_eq!(
            text(Some(&Value::Timestamp(1_709_251_199_999)))
                .unwrap()
                .unwrap(),
            "2024-02-29 23:59:59.999"
        );
        assert_eq!(
            text(Some(&Value::Date(19_000))).unwrap().unwrap(),
            "2022-01-08"
        );
        assert_eq!(
            text(Some(&Value::Float64(f64::NAN))).unwrap().unwrap(),
            "NaN"
        );
        let arr = Value::Array(vec![Some(Value::String("a\"b".into())), None]);
        assert_eq!(text(Some(&arr)).unwrap().unwrap(), r#"{"a\"b",NULL}"#);
        assert_eq!(text(None).unwrap(), None);
        let nested = SchemaBuilder::array(SchemaBuilder::array(Schema::int32()).build().unwrap())
            .build()
            .unwrap();
        assert!(column_type(&nested).is_err());
        assert_eq!(
            column_type(&logical::decimal_schema(2).build().unwrap()).unwrap(),
            "NUMERIC"
        );
    }
}
