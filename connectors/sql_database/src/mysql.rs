//! MySQL and MariaDB: reflection from information_schema, reads as a row stream (the server
//! sends rows as the client takes them) with each column selected in a form that decodes
//! without loss (decimals and times as text, integers widened).

use chrono::{NaiveDate, NaiveDateTime};
use futures::TryStreamExt;
use serde_json::Value;
use sqlx::mysql::{MySqlConnectOptions, MySqlConnection, MySqlRow};
use sqlx::{Connection, Row};

use crate::model::{
    days_since_epoch, literal, mysql_string, parse_decimal, value_error, BatchAssembler,
    ColumnBuilder, Kind, SqlColumn, TableInfo,
};
use crate::query::{quote_ident, ReadPlan};
use crate::Credentials;
use sluice_sdk::prelude::*;

/// Connects with `creds` (TLS as its `ssl-mode` asks, see `sluice_sql::connect`); the
/// session's time zone is UTC.
pub async fn connect(creds: &Credentials) -> Result<MySqlConnection> {
    let mut o = MySqlConnectOptions::new()
        .host(creds.host.as_deref().unwrap_or("localhost"))
        .port(creds.port.unwrap_or(3306))
        .charset("utf8mb4")
        .timezone(Some("+00:00".to_string()));
    if let Some(u) = &creds.username {
        o = o.username(u);
    }
    if let Some(p) = &creds.password {
        o = o.password(p.expose());
    }
    if let Some(d) = &creds.database {
        o = o.database(d);
    }
    let o = sluice_sql::connect::mysql::with_tls(creds, o)?;
    sluice_sql::connect::with_timeout(creds, MySqlConnection::connect_with(&o)).await
}

/// The connection's database.
pub async fn current_schema(con: &mut MySqlConnection) -> Result<String> {
    let row = sqlx::query("SELECT CAST(DATABASE() AS CHAR)")
        .fetch_one(con)
        .await
        .map_err(|e| Error::data(format!("cannot read the current database: {e}")))?;
    row.try_get::<Option<String>, _>(0).ok().flatten().ok_or_else(|| {
        Error::config("the connection has no database\nhint: put it in the connection string (mysql://user@host/db) or set `schema`")
    })
}

/// Tables (and views with `views`) of database `schema`, sorted by name.
pub async fn list_tables(
    con: &mut MySqlConnection,
    schema: &str,
    views: bool,
) -> Result<Vec<String>> {
    let rows = sqlx::query(
        "SELECT CAST(TABLE_NAME AS CHAR) FROM information_schema.TABLES \
         WHERE TABLE_SCHEMA = ? AND (TABLE_TYPE = 'BASE TABLE' OR (? AND TABLE_TYPE = 'VIEW')) ORDER BY 1",
    )
    .bind(schema)
    .bind(views)
    .fetch_all(con)
    .await
    .map_err(|e| Error::data(format!("cannot list the tables of database `{schema}`: {e}")))?;
    Ok(rows
        .iter()
        .filter_map(|r| r.try_get::<String, _>(0).ok())
        .collect())
}

/// The kind of a column from information_schema's DATA_TYPE and COLUMN_TYPE (`None`: unmapped);
/// the flag says it is read as text.
fn kind_of(
    data_type: &str,
    column_type: &str,
    precision: Option<i64>,
    scale: Option<i64>,
) -> Option<(Kind, bool)> {
    let unsigned = column_type.contains("unsigned");
    Some(match data_type {
        "tinyint" if column_type.starts_with("tinyint(1)") && !unsigned => (Kind::Bool, false),
        "tinyint" => (Kind::Int(if unsigned { 2 } else { 1 }), false),
        "smallint" | "year" => (Kind::Int(if unsigned { 4 } else { 2 }), false),
        "mediumint" => (Kind::Int(4), false),
        "int" | "integer" => (Kind::Int(if unsigned { 8 } else { 4 }), false),
        "bigint" if unsigned => (Kind::UInt64, false),
        // bit(64) may exceed i64: the unsigned path
        "bit" if column_type == "bit(64)" => (Kind::UInt64, false),
        "bigint" | "bit" => (Kind::Int(8), false),
        "decimal" | "numeric" => {
            crate::model::decimal_kind(precision.unwrap_or(10), scale.unwrap_or(0))
        }
        "float" => (Kind::Float32, false),
        "double" | "real" => (Kind::Float64, false),
        "char" | "varchar" | "tinytext" | "text" | "mediumtext" | "longtext" => (Kind::Text, false),
        "enum" | "set" | "inet4" | "inet6" => (Kind::Text, true),
        "json" => (Kind::Json, false),
        "uuid" => (Kind::Uuid, false),
        "binary" | "varbinary" | "tinyblob" | "blob" | "mediumblob" | "longblob" => {
            (Kind::Binary, false)
        }
        "date" => (Kind::Date, false),
        "time" => (Kind::Time, false),
        "datetime" => (Kind::Timestamp { tz: false }, false),
        "timestamp" => (Kind::Timestamp { tz: true }, false),
        _ => return None,
    })
}

/// Reflects table `schema.table`.
pub async fn reflect(
    con: &mut MySqlConnection,
    schema: &str,
    table: &str,
    text_columns: &dyn Fn(&str) -> bool,
) -> Result<TableInfo> {
    let rows = sqlx::query(
        "SELECT CAST(COLUMN_NAME AS CHAR), CAST(DATA_TYPE AS CHAR), CAST(COLUMN_TYPE AS CHAR), \
                CAST(IS_NULLABLE AS CHAR), CAST(NUMERIC_PRECISION AS SIGNED), CAST(NUMERIC_SCALE AS SIGNED), \
                CAST(CHARACTER_MAXIMUM_LENGTH AS SIGNED), CAST(COLUMN_KEY AS CHAR) \
         FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = ? AND TABLE_NAME = ? ORDER BY ORDINAL_POSITION",
    )
    .bind(schema)
    .bind(table)
    .fetch_all(&mut *con)
    .await
    .map_err(|e| Error::data(format!("cannot reflect table `{schema}.{table}`: {e}")))?;
    if rows.is_empty() {
        return Err(crate::missing_table(schema, table));
    }
    let mut columns = Vec::with_capacity(rows.len());
    for r in &rows {
        let s = |i: usize| {
            r.try_get::<Option<String>, _>(i)
                .ok()
                .flatten()
                .unwrap_or_default()
        };
        let n = |i: usize| r.try_get::<Option<i64>, _>(i).ok().flatten();
        let name = s(0);
        let data_type = s(1).to_ascii_lowercase();
        let column_type = s(2).to_ascii_lowercase();
        let wants_text = text_columns(&name);
        let (kind, as_text) = match kind_of(&data_type, &column_type, n(4), n(5)) {
            Some((k, t)) => (k, t || wants_text),
            None if wants_text => (Kind::Text, true),
            None => return Err(crate::unmapped_type(table, &name, &column_type)),
        };
        let length = match data_type.as_str() {
            "char" | "varchar" | "binary" | "varbinary" => n(6).map(|l| l as u32),
            _ => None,
        };
        columns.push(SqlColumn {
            name,
            sql_type: column_type,
            kind,
            nullable: s(3) == "YES",
            length,
            as_text,
        });
    }
    let pk = sqlx::query(
        "SELECT CAST(COLUMN_NAME AS CHAR) FROM information_schema.KEY_COLUMN_USAGE \
         WHERE TABLE_SCHEMA = ? AND TABLE_NAME = ? AND CONSTRAINT_NAME = 'PRIMARY' ORDER BY ORDINAL_POSITION",
    )
    .bind(schema)
    .bind(table)
    .fetch_all(&mut *con)
    .await
    .map_err(|e| Error::data(format!("cannot read the primary key of `{schema}.{table}`: {e}")))?;
    Ok(TableInfo {
        name: table.to_string(),
        columns,
        primary_key: pk.iter().filter_map(|r| r.try_get(0).ok()).collect(),
    })
}

/// How a column is selected and decoded.
#[derive(Clone, Copy)]
enum Decode {
    /// `CAST(c AS SIGNED)`: i64.
    Signed,
    /// `CAST(c AS UNSIGNED)`: u64, to a decimal.
    Unsigned,
    F32,
    F64,
    /// `CAST(c AS CHAR)`, parsed: decimals.
    DecimalText,
    /// `CAST(c AS CHAR)`: times (`-838:59:59` .. `838:59:59`; only a time of day fits).
    TimeText,
    Text,
    /// `CAST(c AS CHAR)`: enums, sets, json, uuids, text_columns.
    CastText,
    Bytes,
    Date,
    DateTime,
    /// TIMESTAMP: an instant (the session is in UTC).
    Timestamp,
}

fn decoder(c: &SqlColumn) -> Decode {
    if c.as_text {
        return Decode::CastText;
    }
    match c.kind {
        Kind::Bool | Kind::Int(_) => Decode::Signed,
        Kind::UInt64 => Decode::Unsigned,
        Kind::Float32 => Decode::F32,
        Kind::Float64 => Decode::F64,
        Kind::Decimal(_) => Decode::DecimalText,
        Kind::Time => Decode::TimeText,
        Kind::Text => Decode::Text,
        Kind::Json | Kind::Uuid => Decode::CastText,
        Kind::Binary => Decode::Bytes,
        Kind::Date => Decode::Date,
        Kind::Timestamp { tz: false } => Decode::DateTime,
        Kind::Timestamp { tz: true } => Decode::Timestamp,
    }
}

fn select_expr(c: &SqlColumn, d: Decode) -> String {
    let q = quote_ident(&c.name, '`');
    match d {
        Decode::Signed => format!("CAST({q} AS SIGNED)"),
        Decode::Unsigned => format!("CAST({q} AS UNSIGNED)"),
        Decode::DecimalText | Decode::TimeText | Decode::CastText => {
            format!("CAST({q} AS CHAR)")
        }
        _ => q,
    }
}

/// A value as a literal of column `c` (datetimes in the UTC session's form).
fn mysql_literal(c: &SqlColumn, v: &Value) -> Option<String> {
    match (c.kind, v) {
        (Kind::Timestamp { .. }, Value::String(s)) => {
            let t = chrono::DateTime::parse_from_rfc3339(s)
                .map(|t| t.naive_utc())
                .or_else(|_| s.parse::<NaiveDateTime>())
                .ok()?;
            Some(format!("'{}'", t.format("%Y-%m-%d %H:%M:%S%.6f")))
        }
        (Kind::Date, Value::String(s)) => {
            let d = s.get(..10)?.parse::<NaiveDate>().ok()?;
            Some(format!("'{d}'"))
        }
        (_, Value::String(s)) => Some(mysql_string(s)),
        _ => literal(v),
    }
}

/// Microseconds of a `HH:MM:SS[.ffffff]` time of day.
fn time_of_day(s: &str) -> Option<i64> {
    let (hms, frac) = s.split_once('.').unwrap_or((s, ""));
    let mut it = hms.split(':');
    let h: i64 = it.next()?.parse().ok()?;
    let m: i64 = it.next()?.parse().ok()?;
    let sec: i64 = it.next()?.parse().ok()?;
    if !(0..24).contains(&h) || s.starts_with('-') {
        return None;
    }
    let mut us: i64 = 0;
    for (i, b) in frac.bytes().take(6).enumerate() {
        us += i64::from(b.checked_sub(b'0')?) * 10i64.pow(5 - i as u32);
    }
    Some(((h * 60 + m) * 60 + sec) * 1_000_000 + us)
}

fn append(
    row: &MySqlRow,
    i: usize,
    d: Decode,
    b: &mut ColumnBuilder,
) -> std::result::Result<(), String> {
    fn get<'r, T: sqlx::Decode<'r, sqlx::MySql> + sqlx::Type<sqlx::MySql>>(
        row: &'r MySqlRow,
        i: usize,
    ) -> std::result::Result<Option<T>, String> {
        row.try_get::<Option<T>, _>(i)
            .map_err(|e| format!("cannot be decoded: {e}"))
    }
    let ok = match d {
        Decode::Signed => match get::<i64>(row, i)? {
            Some(v) => b.append_int(v),
            None => {
                b.append_null();
                return Ok(());
            }
        },
        Decode::Unsigned => match get::<u64>(row, i)? {
            Some(v) => b.append_decimal(i128::from(v), 0),
            None => {
                b.append_null();
                return Ok(());
            }
        },
        Decode::F32 => match get::<f32>(row, i)? {
            Some(v) => b.append_float(f64::from(v)),
            None => {
                b.append_null();
                return Ok(());
            }
        },
        Decode::F64 => match get::<f64>(row, i)? {
            Some(v) => b.append_float(v),
            None => {
                b.append_null();
                return Ok(());
            }
        },
        Decode::DecimalText => match get::<String>(row, i)? {
            Some(s) => {
                let scale = b.scale();
                match parse_decimal(&s, scale) {
                    Some(v) => b.append_decimal(v, scale),
                    None => return Err(format!("holds `{s}`, which is not a decimal")),
                }
            }
            None => {
                b.append_null();
                return Ok(());
            }
        },
        Decode::TimeText => match get::<String>(row, i)? {
            Some(s) => match time_of_day(&s) {
                Some(us) => b.append_temporal(us),
                None => return Err(format!("holds `{s}`, which is not a time of day")),
            },
            None => {
                b.append_null();
                return Ok(());
            }
        },
        Decode::Text | Decode::CastText => match get::<String>(row, i)? {
            Some(s) => b.append_str(&s),
            None => {
                b.append_null();
                return Ok(());
            }
        },
        Decode::Bytes => match get::<Vec<u8>>(row, i)? {
            Some(v) => b.append_bytes(&v),
            None => {
                b.append_null();
                return Ok(());
            }
        },
        Decode::Date => match get::<NaiveDate>(row, i)? {
            Some(v) => b.append_temporal(days_since_epoch(v)),
            None => {
                b.append_null();
                return Ok(());
            }
        },
        Decode::DateTime => match get::<NaiveDateTime>(row, i)? {
            Some(v) => b.append_temporal(v.and_utc().timestamp_micros()),
            None => {
                b.append_null();
                return Ok(());
            }
        },
        Decode::Timestamp => match get::<chrono::DateTime<chrono::Utc>>(row, i)? {
            Some(v) => b.append_temporal(v.timestamp_micros()),
            None => {
                b.append_null();
                return Ok(());
            }
        },
    };
    if ok {
        Ok(())
    } else {
        Err("holds a value that does not fit the column".into())
    }
}

/// Streams `plan` into `sink` in batches; returns the row count.
pub async fn read(
    con: &mut MySqlConnection,
    schema: &str,
    plan: &ReadPlan<'_>,
    out: &mut BatchAssembler,
    sink: &BatchSink,
) -> Result<u64> {
    let decoders: Vec<Decode> = plan.columns.iter().map(|c| decoder(c)).collect();
    let cols: Vec<String> = plan
        .columns
        .iter()
        .zip(&decoders)
        .map(|(c, d)| select_expr(c, *d))
        .collect();
    let from = format!(
        "{}.{}",
        quote_ident(schema, '`'),
        quote_ident(&plan.table.name, '`')
    );
    let sql = plan.select_sql(&cols.join(", "), &from, '`', mysql_literal);
    tracing::debug!(target: "sluice::sql_database", table = %plan.table.name, statement = %sql, "reading");
    let table = plan.table.name.as_str();
    let mut rows = 0u64;
    let mut stream = sqlx::query(sqlx::AssertSqlSafe(sql.clone())).fetch(&mut *con);
    while let Some(row) = stream
        .try_next()
        .await
        .map_err(|e| crate::read_error(schema, table, e))?
    {
        for (i, d) in decoders.iter().enumerate() {
            append(&row, i, *d, &mut out.builders[i])
                .map_err(|what| value_error(table, plan.columns[i], what))?;
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
    fn times_of_day_parse_and_durations_do_not() {
        assert_eq!(time_of_day("01:02:03.5"), Some(3_723_500_000));
        assert_eq!(time_of_day("23:59:59"), Some(86_399_000_000));
        assert_eq!(time_of_day("25:00:00"), None);
        assert_eq!(time_of_day("-01:00:00"), None);
    }

    #[test]
    fn column_types_map_by_width_and_sign() {
        assert_eq!(
            kind_of("tinyint", "tinyint(1)", None, None),
            Some((Kind::Bool, false))
        );
        assert_eq!(
            kind_of("int", "int(10) unsigned", None, None),
            Some((Kind::Int(8), false))
        );
        assert_eq!(
            kind_of("bigint", "bigint(20) unsigned", None, None),
            Some((Kind::UInt64, false))
        );
        assert_eq!(
            kind_of("decimal", "decimal(12,3)", Some(12), Some(3)),
            Some((Kind::Decimal(Some((12, 3))), false))
        );
        assert_eq!(kind_of("geometry", "geometry", None, None), None);
    }
}
