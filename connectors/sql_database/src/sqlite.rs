//! SQLite: reflection from `PRAGMA table_info`, kinds by declared type (SQLite's affinity rules,
//! with dates, times, decimals, booleans and JSON by name as SQLAlchemy reads them), reads as a
//! row stream with each value converted by its stored class.

use chrono::{NaiveDate, NaiveDateTime, NaiveTime};
use futures::TryStreamExt;
use sqlx::sqlite::{SqliteConnectOptions, SqliteConnection, SqliteRow};
use sqlx::{Connection, Row, TypeInfo, ValueRef};

use crate::model::{
    days_since_epoch, decimal_kind, literal, parse_decimal, uuid_text, value_error, BatchAssembler,
    ColumnBuilder, Kind, SqlColumn, TableInfo,
};
use crate::query::{quote_ident, ReadPlan};
use crate::Credentials;
use sluice_sdk::prelude::*;

/// Opens the database file (read only: a source never writes).
pub async fn connect(creds: &Credentials) -> Result<SqliteConnection> {
    let path = creds.database.as_deref().unwrap_or(":memory:");
    if path != ":memory:" && !std::path::Path::new(path).exists() {
        return Err(Error::config(format!(
            "the SQLite database `{path}` does not exist\nhint: sqlite:///relative/path.db or sqlite:////absolute/path.db"
        )));
    }
    let o = SqliteConnectOptions::new().filename(path).read_only(true);
    sluice_sql::connect::with_timeout(creds, SqliteConnection::connect_with(&o)).await
}

/// Tables (and views with `views`), sorted by name.
pub async fn list_tables(con: &mut SqliteConnection, views: bool) -> Result<Vec<String>> {
    let rows = sqlx::query(
        "SELECT name FROM sqlite_master WHERE (type = 'table' OR (? AND type = 'view')) \
         AND name NOT LIKE 'sqlite\\_%' ESCAPE '\\' ORDER BY 1",
    )
    .bind(views)
    .fetch_all(con)
    .await
    .map_err(|e| Error::data(format!("cannot list the tables: {e}")))?;
    Ok(rows
        .iter()
        .filter_map(|r| r.try_get::<String, _>(0).ok())
        .collect())
}

/// The kind of a declared type (SQLite's affinity rules, dates and the like by name).
fn kind_of(decl: &str) -> (Kind, Option<u32>) {
    let t = decl.to_ascii_uppercase();
    let args: Vec<u32> = t
        .split_once('(')
        .map(|(_, a)| {
            a.trim_end_matches(')')
                .split(',')
                .filter_map(|x| x.trim().parse().ok())
                .collect()
        })
        .unwrap_or_default();
    let base = t.split('(').next().unwrap_or("").trim().to_string();
    let kind = match base.as_str() {
        "BOOLEAN" | "BOOL" => Kind::Bool,
        "DATE" => Kind::Date,
        "DATETIME" | "TIMESTAMP" => Kind::Timestamp { tz: false },
        "TIME" => Kind::Time,
        "JSON" => Kind::Json,
        "UUID" => Kind::Uuid,
        "DECIMAL" | "NUMERIC" if !args.is_empty() => {
            match decimal_kind(
                i64::from(args[0]),
                i64::from(args.get(1).copied().unwrap_or(0)),
            ) {
                (k, false) => k,
                (_, true) => Kind::Text,
            }
        }
        "DECIMAL" | "NUMERIC" => Kind::Decimal(None),
        _ if base.contains("INT") => Kind::Int(8),
        _ if base.contains("CHAR") || base.contains("CLOB") || base.contains("TEXT") => Kind::Text,
        _ if base.contains("BLOB") => Kind::Binary,
        _ if base.contains("REAL") || base.contains("FLOA") || base.contains("DOUB") => {
            Kind::Float64
        }
        // no declared type, or a name SQLite gives numeric affinity to (STRING, say): values
        // of any class, read as text
        _ => Kind::Text,
    };
    let length = match kind {
        Kind::Text if base.contains("CHAR") => args.first().copied(),
        _ => None,
    };
    (kind, length)
}

/// Reflects `table`.
pub async fn reflect(
    con: &mut SqliteConnection,
    table: &str,
    text_columns: &dyn Fn(&str) -> bool,
) -> Result<TableInfo> {
    let rows =
        sqlx::query("SELECT name, type, \"notnull\", pk FROM pragma_table_info(?) ORDER BY cid")
            .bind(table)
            .fetch_all(&mut *con)
            .await
            .map_err(|e| Error::data(format!("cannot reflect table `{table}`: {e}")))?;
    if rows.is_empty() {
        return Err(crate::missing_table("main", table));
    }
    let mut columns = Vec::with_capacity(rows.len());
    let mut pk: Vec<(i64, String)> = Vec::new();
    let pk_columns = rows
        .iter()
        .filter(|r| r.try_get::<i64, _>(3).unwrap_or(0) > 0)
        .count();
    for r in &rows {
        let name: String = r.try_get(0).unwrap_or_default();
        let decl: String = r.try_get(1).unwrap_or_default();
        let not_null: i64 = r.try_get(2).unwrap_or(0);
        let pk_pos: i64 = r.try_get(3).unwrap_or(0);
        if pk_pos > 0 {
            pk.push((pk_pos, name.clone()));
        }
        let (kind, length) = kind_of(&decl);
        let as_text = text_columns(&name);
        // an INTEGER PRIMARY KEY is the rowid, never NULL; other keys of rowid tables may be
        let rowid = pk_columns == 1 && pk_pos == 1 && decl.eq_ignore_ascii_case("INTEGER");
        columns.push(SqlColumn {
            name,
            sql_type: if decl.is_empty() {
                "(none)".into()
            } else {
                decl
            },
            kind,
            nullable: not_null == 0 && !rowid,
            length,
            as_text,
        });
    }
    pk.sort();
    Ok(TableInfo {
        name: table.to_string(),
        columns,
        primary_key: pk.into_iter().map(|(_, n)| n).collect(),
    })
}

/// A stored text as a timestamp (microseconds), date (days) or time (microseconds).
fn parse_temporal(kind: Kind, s: &str) -> Option<i64> {
    let s = s.trim();
    match kind {
        Kind::Date => s.get(..10)?.parse::<NaiveDate>().ok().map(days_since_epoch),
        Kind::Time => NaiveTime::parse_from_str(s, "%H:%M:%S%.f")
            .ok()
            .map(|t| (t - NaiveTime::MIN).num_microseconds().unwrap_or(0)),
        _ => chrono::DateTime::parse_from_rfc3339(s)
            .map(|t| t.timestamp_micros())
            .ok()
            .or_else(|| {
                [
                    "%Y-%m-%d %H:%M:%S%.f",
                    "%Y-%m-%dT%H:%M:%S%.f",
                    "%Y-%m-%d %H:%M",
                ]
                .iter()
                .find_map(|f| NaiveDateTime::parse_from_str(s, f).ok())
                .map(|t| t.and_utc().timestamp_micros())
            })
            .or_else(|| {
                s.parse::<NaiveDate>()
                    .ok()
                    .map(|d| days_since_epoch(d) * 86_400_000_000)
            }),
    }
}

/// Appends the value at `i`, converted from its storage class to the column's kind.
fn append(
    row: &SqliteRow,
    i: usize,
    c: &SqlColumn,
    b: &mut ColumnBuilder,
) -> std::result::Result<(), String> {
    let raw = row
        .try_get_raw(i)
        .map_err(|e| format!("cannot be read: {e}"))?;
    if raw.is_null() {
        b.append_null();
        return Ok(());
    }
    let class = raw.type_info().name().to_string();
    let err = |e: sqlx::Error| format!("cannot be decoded: {e}");
    let ok = match class.as_str() {
        "INTEGER" => {
            let v: i64 = row.try_get(i).map_err(err)?;
            match (c.kind, c.as_text) {
                (_, true) | (Kind::Text | Kind::Uuid | Kind::Json, _) => {
                    b.append_str(&v.to_string())
                }
                (Kind::Float32 | Kind::Float64, _) => b.append_float(v as f64),
                // unix seconds, as SQLite's date functions read integers with 'unixepoch'
                (Kind::Timestamp { .. }, _) => b.append_temporal(v.saturating_mul(1_000_000)),
                _ => b.append_int(v),
            }
        }
        "REAL" => {
            let v: f64 = row.try_get(i).map_err(err)?;
            match (c.kind, c.as_text) {
                (_, true) | (Kind::Text | Kind::Json, _) => b.append_str(&v.to_string()),
                (Kind::Decimal(_), _) => {
                    let scale = b.scale();
                    match parse_decimal(&v.to_string(), scale) {
                        Some(d) => b.append_decimal(d, scale),
                        None => return Err(format!("holds {v}, which is not a decimal")),
                    }
                }
                (Kind::Int(_) | Kind::Bool, _) if v.fract() == 0.0 => b.append_int(v as i64),
                _ => b.append_float(v),
            }
        }
        "TEXT" => {
            let s: String = row.try_get(i).map_err(err)?;
            match (c.kind, c.as_text) {
                (_, true) | (Kind::Text | Kind::Json | Kind::Uuid, _) => b.append_str(&s),
                (Kind::Date | Kind::Time | Kind::Timestamp { .. }, _) => {
                    match parse_temporal(c.kind, &s) {
                        Some(v) => b.append_temporal(v),
                        None => {
                            return Err(format!(
                                "holds `{s}`, which is not a {}",
                                c.sql_type.to_lowercase()
                            ))
                        }
                    }
                }
                (Kind::Decimal(_), _) => {
                    let scale = b.scale();
                    match parse_decimal(&s, scale) {
                        Some(d) => b.append_decimal(d, scale),
                        None => return Err(format!("holds `{s}`, which is not a decimal")),
                    }
                }
                (Kind::Int(_), _) => match s.trim().parse::<i64>() {
                    Ok(v) => b.append_int(v),
                    Err(_) => return Err(format!("holds `{s}`, which is not an integer")),
                },
                (Kind::Float32 | Kind::Float64, _) => match s.trim().parse::<f64>() {
                    Ok(v) => b.append_float(v),
                    Err(_) => return Err(format!("holds `{s}`, which is not a number")),
                },
                (Kind::Bool, _) => match s.trim().to_ascii_lowercase().as_str() {
                    "1" | "true" => b.append_int(1),
                    "0" | "false" => b.append_int(0),
                    _ => return Err(format!("holds `{s}`, which is not a boolean")),
                },
                (Kind::Binary, _) => b.append_bytes(s.as_bytes()),
                _ => false,
            }
        }
        _ => {
            let v: Vec<u8> = row.try_get(i).map_err(err)?;
            match (c.kind, c.as_text) {
                (Kind::Binary, false) => b.append_bytes(&v),
                (Kind::Uuid, false) if v.len() == 16 => b.append_str(&uuid_text(&v)),
                _ => match String::from_utf8(v) {
                    Ok(s) => b.append_str(&s),
                    Err(_) => return Err("holds a blob in a text column".into()),
                },
            }
        }
    };
    if ok {
        Ok(())
    } else {
        Err(format!(
            "holds a {} value that does not fit the column",
            class.to_lowercase()
        ))
    }
}

/// Streams `plan` into `sink` in batches; returns the row count.
pub async fn read(
    con: &mut SqliteConnection,
    plan: &ReadPlan<'_>,
    out: &mut BatchAssembler,
    sink: &BatchSink,
) -> Result<u64> {
    let cols: Vec<String> = plan
        .columns
        .iter()
        .map(|c| quote_ident(&c.name, '"'))
        .collect();
    let from = quote_ident(&plan.table.name, '"');
    let sql = plan.select_sql(&cols.join(", "), &from, '"', |c, v| match c.kind {
        Kind::Int(_) | Kind::Float32 | Kind::Float64 if v.is_number() => literal(v),
        _ => None,
    });
    tracing::debug!(target: "sluice::sql_database", table = %plan.table.name, statement = %sql, "reading");
    let table = plan.table.name.as_str();
    let mut rows = 0u64;
    let mut stream = sqlx::query(sqlx::AssertSqlSafe(sql.clone())).fetch(&mut *con);
    while let Some(row) = stream
        .try_next()
        .await
        .map_err(|e| crate::read_error("main", table, e))?
    {
        for (i, c) in plan.columns.iter().enumerate() {
            append(&row, i, c, &mut out.builders[i]).map_err(|what| value_error(table, c, what))?;
        }
        out.row_done(sink).await?;
        rows += 1;
    }
    Ok(rows)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn declared_types_map_by_affinity_and_name() {
        assert_eq!(kind_of("INTEGER"), (Kind::Int(8), None));
        assert_eq!(kind_of("varchar(20)"), (Kind::Text, Some(20)));
        assert_eq!(
            kind_of("DECIMAL(10,2)"),
            (Kind::Decimal(Some((10, 2))), None)
        );
        assert_eq!(kind_of("DATETIME"), (Kind::Timestamp { tz: false }, None));
        assert_eq!(kind_of(""), (Kind::Text, None));
        assert_eq!(kind_of("STRING"), (Kind::Text, None));
        assert_eq!(kind_of("BLOB"), (Kind::Binary, None));
        assert_eq!(kind_of("NUMERIC(50,2)"), (Kind::Text, None));
        assert_eq!(kind_of("DOUBLE PRECISION"), (Kind::Float64, None));
        assert_eq!(kind_of("BOOLEAN"), (Kind::Bool, None));
    }

    #[test]
    fn stored_texts_parse_as_dates_and_times() {
        assert_eq!(parse_temporal(Kind::Date, "1970-01-02"), Some(1));
        assert_eq!(
            parse_temporal(Kind::Timestamp { tz: false }, "1970-01-01 00:00:01.5"),
            Some(1_500_000)
        );
        assert_eq!(
            parse_temporal(Kind::Timestamp { tz: false }, "1970-01-01T01:00:00+01:00"),
            Some(0)
        );
        assert_eq!(parse_temporal(Kind::Time, "00:00:02"), Some(2_000_000));
        assert_eq!(parse_temporal(Kind::Date, "soon"), None);
    }
}
