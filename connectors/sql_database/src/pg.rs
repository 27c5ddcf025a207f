//! PostgreSQL: reflection from the catalog, reads by `COPY (SELECT ...) TO STDOUT (FORMAT
//! binary)` decoded straight into Arrow builders (no per-row objects; DuckDB's postgres scanner
//! reads the same way).

use futures::StreamExt;
use sqlx::postgres::PgConnection;
use sqlx::{Connection, Row};

use crate::model::{
    literal, uuid_text, value_error, BatchAssembler, ColumnBuilder, Kind, SqlColumn, TableInfo,
};
use crate::query::{quote_ident, ReadPlan};
use crate::Credentials;
use sluice_sdk::prelude::*;
use sluice_sdk::BatchSink;

/// Connects with `creds`: intervals as ISO 8601 text (`P1Y2M3DT4H5M6S`), timestamps with
/// time zone in UTC.
pub async fn connect(creds: &Credentials) -> Result<PgConnection> {
    sluice_sql::connect::postgres::connect(
        creds,
        "SET intervalstyle = 'iso_8601'; SET TIME ZONE 'UTC'; SET standard_conforming_strings = on",
    )
    .await
}

/// The schema to read: the configured one, else the connection's current schema.
pub async fn current_schema(con: &mut PgConnection) -> Result<String> {
    let row = sqlx::query("SELECT current_schema()::text")
        .fetch_one(con)
        .await
        .map_err(|e| Error::data(format!("cannot read the current schema: {e}")))?;
    row.try_get::<Option<String>, _>(0)
        .ok()
        .flatten()
        .ok_or_else(|| Error::config("the connection has no current schema\nhint: set `schema`"))
}

/// Tables (and views with `views`) of `schema`, sorted by name.
pub async fn list_tables(con: &mut PgConnection, schema: &str, views: bool) -> Result<Vec<String>> {
    let kinds: Vec<String> = if views {
        vec!["r".into(), "p".into(), "v".into(), "m".into(), "f".into()]
    } else {
        vec!["r".into(), "p".into(), "f".into()]
    };
    let rows = sqlx::query(
        "SELECT c.relname::text FROM pg_catalog.pg_class c \
         JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace \
         WHERE n.nspname = $1 AND c.relkind::text = ANY($2) AND NOT c.relispartition ORDER BY 1",
    )
    .bind(schema)
    .bind(&kinds)
    .fetch_all(con)
    .await
    .map_err(|e| Error::data(format!("cannot list the tables of schema `{schema}`: {e}")))?;
    Ok(rows
        .iter()
        .filter_map(|r| r.try_get::<String, _>(0).ok())
        .collect())
}

/// The kind of a base type (`typname`, `typtype`, `typcategory`): `None` for types that only
/// load as text.
fn kind_of(typname: &str, typtype: &str, category: &str, typmod: i32) -> Option<(Kind, bool)> {
    let len = (typmod >= 4).then(|| (typmod - 4) as u32);
    Some(match typname {
        "bool" => (Kind::Bool, false),
        "int2" => (Kind::Int(2), false),
        "int4" => (Kind::Int(4), false),
        "int8" => (Kind::Int(8), false),
        "float4" => (Kind::Float32, false),
        "float8" => (Kind::Float64, false),
        "numeric" => match len {
            // the typmod packs precision and (signed, from PostgreSQL 15) scale
            Some(m) => crate::model::decimal_kind(
                i64::from((m >> 16) & 0xffff),
                i64::from((m & 0xffff) as u16 as i16),
            ),
            None => (Kind::Decimal(None), false),
        },
        "text" | "varchar" | "bpchar" | "name" | "citext" | "char" => (Kind::Text, false),
        "json" | "jsonb" => (Kind::Json, false),
        "uuid" => (Kind::Uuid, false),
        "bytea" => (Kind::Binary, false),
        "date" => (Kind::Date, false),
        "time" => (Kind::Time, false),
        "timestamp" => (Kind::Timestamp { tz: false }, false),
        "timestamptz" => (Kind::Timestamp { tz: true }, false),
        // text forms that carry the whole value
        "interval" | "timetz" | "inet" | "cidr" | "macaddr" | "macaddr8" | "money" | "xml"
        | "bit" | "varbit" | "tsvector" | "tsquery" | "oid" | "pg_lsn" => (Kind::Text, true),
        _ if typtype == "e" => (Kind::Text, true),
        _ if category == "A" => (Kind::Json, false),
        _ => return None,
    })
}

/// Reflects `schema.table`: columns with their kinds, nullability, lengths and the primary key.
pub async fn reflect(
    con: &mut PgConnection,
    schema: &str,
    table: &str,
    text_columns: &dyn Fn(&str) -> bool,
) -> Result<TableInfo> {
    let oid: Option<i64> = sqlx::query(
        "SELECT c.oid::int8 FROM pg_catalog.pg_class c \
         JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace \
         WHERE n.nspname = $1 AND c.relname = $2",
    )
    .bind(schema)
    .bind(table)
    .fetch_optional(&mut *con)
    .await
    .map_err(|e| Error::data(format!("cannot look up table `{schema}.{table}`: {e}")))?
    .and_then(|r| r.try_get(0).ok());
    let Some(oid) = oid else {
        return Err(crate::missing_table(schema, table));
    };
    let rows = sqlx::query(
        "SELECT a.attname::text, format_type(a.atttypid, a.atttypmod), bt.typname::text, \
                bt.typtype::text, bt.typcategory::text, a.attnotnull OR (t.typtype = 'd' AND t.typnotnull), \
                CASE WHEN t.typtype = 'd' THEN t.typtypmod ELSE a.atttypmod END \
         FROM pg_catalog.pg_attribute a \
         JOIN pg_catalog.pg_type t ON t.oid = a.atttypid \
         JOIN pg_catalog.pg_type bt ON bt.oid = CASE WHEN t.typtype = 'd' THEN t.typbasetype ELSE t.oid END \
         WHERE a.attrelid = $1::int8::oid AND a.attnum > 0 AND NOT a.attisdropped ORDER BY a.attnum",
    )
    .bind(oid)
    .fetch_all(&mut *con)
    .await
    .map_err(|e| Error::data(format!("cannot reflect table `{schema}.{table}`: {e}")))?;
    let mut columns = Vec::with_capacity(rows.len());
    for r in &rows {
        let get = |i: usize| r.try_get::<String, _>(i).unwrap_or_default();
        let name = get(0);
        let sql_type = get(1);
        let not_null: bool = r.try_get(5).unwrap_or(false);
        let typmod: i32 = r.try_get(6).unwrap_or(-1);
        let wants_text = text_columns(&name);
        let (kind, as_text) = match kind_of(&get(2), &get(3), &get(4), typmod) {
            Some((k, t)) => (k, t || wants_text),
            None if wants_text => (Kind::Text, true),
            None => return Err(crate::unmapped_type(table, &name, &sql_type)),
        };
        let length = match get(2).as_str() {
            "varchar" | "bpchar" => (typmod >= 4).then(|| (typmod - 4) as u32),
            _ => None,
        };
        columns.push(SqlColumn {
            name,
            sql_type,
            kind,
            nullable: !not_null,
            length,
            as_text,
        });
    }
    let pk = sqlx::query(
        "SELECT a.attname::text FROM pg_catalog.pg_index i \
         JOIN pg_catalog.pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = ANY(i.indkey) \
         WHERE i.indrelid = $1::int8::oid AND i.indisprimary \
         ORDER BY array_position(i.indkey::int2[], a.attnum)",
    )
    .bind(oid)
    .fetch_all(&mut *con)
    .await
    .map_err(|e| {
        Error::data(format!(
            "cannot read the primary key of `{schema}.{table}`: {e}"
        ))
    })?;
    Ok(TableInfo {
        name: table.to_string(),
        columns,
        primary_key: pk.iter().filter_map(|r| r.try_get(0).ok()).collect(),
    })
}

/// The select expression of a column.
fn select_expr(c: &SqlColumn) -> String {
    let q = quote_ident(&c.name, '"');
    if c.as_text {
        return format!("{q}::text");
    }
    match (c.kind, c.sql_type.as_str()) {
        (Kind::Json, "jsonb") => format!("{q}::text"),
        (Kind::Json, "json") => q,
        (Kind::Json, _) => format!("to_json({q})::text"),
        _ => q,
    }
}

/// The statement reading `plan`.
pub fn copy_statement(schema: &str, plan: &ReadPlan<'_>) -> String {
    let cols: Vec<String> = plan.columns.iter().map(|c| select_expr(c)).collect();
    let from = format!(
        "{}.{}",
        quote_ident(schema, '"'),
        quote_ident(&plan.table.name, '"')
    );
    let select = plan.select_sql(&cols.join(", "), &from, '"', |c, v| {
        literal(v).map(|l| format!("{l}::{}", c.sql_type))
    });
    format!("COPY ({select}) TO STDOUT (FORMAT binary)")
}

/// How one field of the binary COPY format is decoded.
#[derive(Clone, Copy)]
enum Decode {
    Bool,
    Int2,
    Int4,
    Int8,
    Float4,
    Float8,
    Numeric,
    Text,
    Bytea,
    Uuid,
    Date,
    Time,
    Timestamp,
}

fn decoder(c: &SqlColumn) -> Decode {
    if c.as_text {
        return Decode::Text;
    }
    match c.kind {
        Kind::Bool => Decode::Bool,
        Kind::Int(2) => Decode::Int2,
        Kind::Int(4) => Decode::Int4,
        Kind::Int(_) | Kind::UInt64 => Decode::Int8,
        Kind::Float32 => Decode::Float4,
        Kind::Float64 => Decode::Float8,
        Kind::Decimal(_) => Decode::Numeric,
        Kind::Text | Kind::Json => Decode::Text,
        Kind::Binary => Decode::Bytea,
        Kind::Uuid => Decode::Uuid,
        Kind::Date => Decode::Date,
        Kind::Time => Decode::Time,
        Kind::Timestamp { .. } => Decode::Timestamp,
    }
}

/// Microseconds and days from 1970 to 2000-01-01, PostgreSQL's epoch.
const PG_EPOCH_US: i64 = 946_684_800_000_000;
const PG_EPOCH_DAYS: i64 = 10_957;

fn be_i16(b: &[u8]) -> i16 {
    i16::from_be_bytes([b[0], b[1]])
}
fn be_i32(b: &[u8]) -> i32 {
    i32::from_be_bytes([b[0], b[1], b[2], b[3]])
}
fn be_i64(b: &[u8]) -> i64 {
    let mut a = [0u8; 8];
    a.copy_from_slice(&b[..8]);
    i64::from_be_bytes(a)
}

/// A binary `numeric` as `unscaled` at `scale`; `Err` names what it holds instead.
fn numeric(b: &[u8], scale: i8) -> std::result::Result<i128, &'static str> {
    if b.len() < 8 {
        return Err("a malformed numeric");
    }
    let ndigits = be_i16(b) as i32;
    let weight = be_i16(&b[2..]) as i32;
    let sign = u16::from_be_bytes([b[4], b[5]]);
    match sign {
        0xC000 => return Err("NaN, which a decimal column cannot hold"),
        0xD000 => return Err("Infinity, which a decimal column cannot hold"),
        0xF000 => return Err("-Infinity, which a decimal column cannot hold"),
        _ => {}
    }
    if b.len() < 8 + 2 * ndigits as usize {
        return Err("a malformed numeric");
    }
    let mut acc: i128 = 0;
    let mut round_up = false;
    let too_big = "a value too large for the column's decimal";
    for i in 0..ndigits {
        let d = i128::from(be_i16(&b[8 + 2 * i as usize..]));
        // the power of ten of this base-10000 digit, at the target scale
        let e = 4 * (weight - i) + i32::from(scale);
        if e >= 0 {
            let m = 10i128.checked_pow(e as u32).ok_or(too_big)?;
            acc = d
                .checked_mul(m)
                .and_then(|x| acc.checked_add(x))
                .ok_or(too_big)?;
        } else if e > -4 {
            let div = 10i128.pow((-e) as u32);
            acc = acc.checked_add(d / div).ok_or(too_big)?;
            round_up = (d % div) * 2 >= div;
            break;
        } else {
            round_up = e == -4 && d >= 5000;
            break;
        }
    }
    if round_up {
        acc = acc.checked_add(1).ok_or(too_big)?;
    }
    Ok(if sign == 0x4000 { -acc } else { acc })
}

/// Appends one field's value; `Err` says why it does not fit.
fn append(d: Decode, v: &[u8], b: &mut ColumnBuilder) -> std::result::Result<(), String> {
    let ok = match d {
        Decode::Bool if v.len() == 1 => match b {
            ColumnBuilder::Bool(x) => {
                x.append_value(v[0] != 0);
                true
            }
            _ => false,
        },
        Decode::Int2 if v.len() == 2 => b.append_int(i64::from(be_i16(v))),
        Decode::Int4 if v.len() == 4 => b.append_int(i64::from(be_i32(v))),
        Decode::Int8 if v.len() == 8 => b.append_int(be_i64(v)),
        Decode::Float4 if v.len() == 4 => {
            b.append_float(f64::from(f32::from_bits(be_i32(v) as u32)))
        }
        Decode::Float8 if v.len() == 8 => b.append_float(f64::from_bits(be_i64(v) as u64)),
        Decode::Numeric => {
            let scale = b.scale();
            let unscaled = numeric(v, scale).map_err(|e| format!("holds {e}"))?;
            if !b.append_decimal(unscaled, scale) {
                return Err("holds a value with more digits than the column's decimal".into());
            }
            true
        }
        Decode::Text => match std::str::from_utf8(v) {
            Ok(s) => b.append_str(s),
            Err(_) => return Err("holds text that is not UTF-8".into()),
        },
        Decode::Bytea => b.append_bytes(v),
        Decode::Uuid if v.len() == 16 => b.append_str(&uuid_text(v)),
        Decode::Date if v.len() == 4 => {
            let d = be_i32(v);
            if d == i32::MAX || d == i32::MIN {
                return Err("holds an infinite date".into());
            }
            b.append_temporal(i64::from(d) + PG_EPOCH_DAYS)
        }
        Decode::Time if v.len() == 8 => b.append_temporal(be_i64(v)),
        Decode::Timestamp if v.len() == 8 => {
            let t = be_i64(v);
            if t == i64::MAX || t == i64::MIN {
                return Err("holds an infinite timestamp".into());
            }
            b.append_temporal(t.checked_add(PG_EPOCH_US).ok_or("is out of range")?)
        }
        _ => {
            return Err(format!(
                "has a field of {} bytes that is malformed",
                v.len()
            ))
        }
    };
    if ok {
        Ok(())
    } else {
        Err("holds a value that does not fit the column".into())
    }
}

/// Streams `plan` into `sink` in batches; returns the row count.
pub async fn read(
    con: &mut PgConnection,
    schema: &str,
    plan: &ReadPlan<'_>,
    out: &mut BatchAssembler,
    sink: &BatchSink,
) -> Result<u64> {
    let statement = copy_statement(schema, plan);
    tracing::debug!(target: "sluice::sql_database", table = %plan.table.name, statement = %statement, "reading");
    let decoders: Vec<Decode> = plan.columns.iter().map(|c| decoder(c)).collect();
    let table = plan.table.name.as_str();
    let mut stream = con
        .copy_out_raw(&statement)
        .await
        .map_err(|e| crate::read_error(schema, table, e))?;
    let mut carry: Vec<u8> = Vec::new();
    let mut header_done = false;
    let mut finished = false;
    let mut rows = 0u64;
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.map_err(|e| crate::read_error(schema, table, e))?;
        let owned;
        let buf: &[u8] = if carry.is_empty() {
            &chunk
        } else {
            carry.extend_from_slice(&chunk);
            owned = std::mem::take(&mut carry);
            &owned
        };
        let mut pos = 0usize;
        if !header_done {
            // "PGCOPY\n\xff\r\n\0", flags, header extension length and bytes
            if buf.len() < 19 {
                carry.extend_from_slice(buf);
                continue;
            }
            if &buf[..11] != b"PGCOPY\n\xff\r\n\0" {
                return Err(Error::data(format!(
                    "table `{table}`: the server's COPY output is not in binary format"
                )));
            }
            let ext = be_i32(&buf[15..]) as usize;
            if buf.len() < 19 + ext {
                carry.extend_from_slice(buf);
                continue;
            }
            pos = 19 + ext;
            header_done = true;
        }
        // whole tuples only; a tuple cut at the chunk's end waits for the next chunk
        while pos + 2 <= buf.len() && !finished {
            let nfields = be_i16(&buf[pos..]);
            if nfields == -1 {
                finished = true;
                pos += 2;
                break;
            }
            let Some(end) = tuple_end(buf, pos, nfields as usize) else {
                break;
            };
            if nfields as usize != decoders.len() {
                return Err(Error::data(format!(
                    "table `{table}`: the server sent {nfields} fields for {} columns",
                    decoders.len()
                )));
            }
            let mut p = pos + 2;
            for (i, d) in decoders.iter().enumerate() {
                let len = be_i32(&buf[p..]);
                p += 4;
                let b = &mut out.builders[i];
                if len < 0 {
                    b.append_null();
                    continue;
                }
                let v = &buf[p..p + len as usize];
                p += len as usize;
                append(*d, v, b).map_err(|what| value_error(table, plan.columns[i], what))?;
            }
            pos = end;
            out.row_done(sink).await?;
            rows += 1;
        }
        if pos < buf.len() {
            carry.extend_from_slice(&buf[pos..]);
        }
    }
    if !finished {
        return Err(Error::data(format!(
            "table `{table}`: the server's COPY output ended early (connection lost?)"
        )));
    }
    Ok(rows)
}

/// Tables of at least this many pages (16 MiB at PostgreSQL's 8 KiB pages) are read in ranges.
const RANGE_MIN_PAGES: i64 = 2048;

/// Reads `plan` on `con`, or, for a large table read whole (no `row_order`, no limit) from a
/// server with TID range scans (PostgreSQL 14), over `ranges` connections at once in ranges of
/// `ctid`, as pg_dump and DuckDB's scanner do. All connections read one snapshot: `con` exports
/// it (`REPEATABLE READ`, `pg_export_snapshot`) and the others import it, so a table written
/// meanwhile is read as of one moment, each row exactly once. Every range decodes into its own
/// batches; the first into `out`.
pub async fn read_in_ranges(
    con: &mut PgConnection,
    creds: &Credentials,
    schema: &str,
    plan: &ReadPlan<'_>,
    out: &mut BatchAssembler,
    sink: &BatchSink,
    ranges: usize,
) -> Result<u64> {
    let ordered = plan.window.is_some_and(|w| w.spec.row_order.is_some());
    if ranges < 2
        || ordered
        || plan.limit_rows.is_some()
        || con.server_version_num().unwrap_or(0) < 140_000
    {
        return read(con, schema, plan, out, sink).await;
    }
    let table = plan.table.name.as_str();
    let fail = |what: &str, e: sqlx::Error| {
        Error::data(format!("cannot {what} for table `{schema}.{table}`: {e}"))
    };
    sqlx::raw_sql("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")
        .execute(&mut *con)
        .await
        .map_err(|e| fail("begin a snapshot", e))?;
    let qualified = format!("{}.{}", quote_ident(schema, '"'), quote_ident(table, '"'));
    let row = sqlx::query(
        "SELECT pg_export_snapshot(), (pg_relation_size($1::regclass) / current_setting('block_size')::int8)::int8",
    )
    .bind(&qualified)
    .fetch_one(&mut *con)
    .await
    .map_err(|e| crate::read_error(schema, table, e))?;
    let snapshot: String = row.try_get(0).unwrap_or_default();
    let pages: i64 = row.try_get(1).unwrap_or(0);
    let result = if pages < RANGE_MIN_PAGES {
        read(con, schema, plan, out, sink).await
    } else {
        let n = ranges as i64;
        let bounds: Vec<(i64, Option<i64>)> = (0..n)
            .map(|i| (pages * i / n, (i + 1 < n).then(|| pages * (i + 1) / n)))
            .collect();
        let range_plan = |(from, to): (i64, Option<i64>)| ReadPlan {
            table: plan.table,
            columns: plan.columns.clone(),
            window: plan.window,
            limit_rows: None,
            range: Some(match to {
                Some(to) => format!("ctid >= '({from},0)'::tid AND ctid < '({to},0)'::tid"),
                None => format!("ctid >= '({from},0)'::tid"),
            }),
        };
        let mut others = Vec::with_capacity(bounds.len() - 1);
        for _ in 1..bounds.len() {
            let mut c = connect(creds).await?;
            let set = format!(
                "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY; SET TRANSACTION SNAPSHOT {}",
                literal(&serde_json::Value::String(snapshot.clone())).unwrap_or_default()
            );
            sqlx::raw_sql(sqlx::AssertSqlSafe(set))
                .execute(&mut c)
                .await
                .map_err(|e| fail("share the snapshot", e))?;
            others.push(c);
        }
        let (batch_schema, chunk) = (out.schema.clone(), out.chunk_size);
        let first_plan = range_plan(bounds[0]);
        let first = read(con, schema, &first_plan, out, sink);
        let rest = others.iter_mut().zip(&bounds[1..]).map(|(c, b)| {
            let p = range_plan(*b);
            let mut assembler = BatchAssembler::new(batch_schema.clone(), chunk);
            async move {
                let rows = read(c, schema, &p, &mut assembler, sink).await?;
                if let Some(batch) = assembler.finish()? {
                    sink.send(batch).await?;
                }
                Ok::<u64, Error>(rows)
            }
        });
        let (first, rest) = futures::join!(first, futures::future::try_join_all(rest));
        for c in others {
            let _ = c.close().await;
        }
        Ok(first? + rest?.into_iter().sum::<u64>())
    };
    let _ = sqlx::raw_sql("COMMIT").execute(&mut *con).await;
    result
}

/// The end of the tuple at `pos` with `n` fields, if it is all in `buf`.
fn tuple_end(buf: &[u8], pos: usize, n: usize) -> Option<usize> {
    let mut p = pos + 2;
    for _ in 0..n {
        if p + 4 > buf.len() {
            return None;
        }
        let len = be_i32(&buf[p..]);
        p += 4;
        if len > 0 {
            p += len as usize;
        }
    }
    (p <= buf.len()).then_some(p)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn num(ndigits: i16, weight: i16, sign: u16, dscale: u16, digits: &[i16]) -> Vec<u8> {
        let mut v = Vec::new();
        v.extend_from_slice(&ndigits.to_be_bytes());
        v.extend_from_slice(&weight.to_be_bytes());
        v.extend_from_slice(&sign.to_be_bytes());
        v.extend_from_slice(&dscale.to_be_bytes());
        for d in digits {
            v.extend_from_slice(&d.to_be_bytes());
        }
        v
    }

    #[test]
    fn binary_numerics_decode_at_the_column_scale() {
        // 12345.6789 = [1, 2345, 6789], weight 1
        let b = num(3, 1, 0, 4, &[1, 2345, 6789]);
        assert_eq!(numeric(&b, 4), Ok(123_456_789));
        assert_eq!(numeric(&b, 2), Ok(1_234_568), "rounded half up");
        assert_eq!(numeric(&b, 0), Ok(12_346));
        // -0.00005 = [5000] at weight -2
        let b = num(1, -2, 0x4000, 5, &[5000]);
        assert_eq!(numeric(&b, 5), Ok(-5));
        assert_eq!(numeric(&b, 4), Ok(-1), "half away from zero");
        assert_eq!(numeric(&b, 3), Ok(0));
        // 10^40 does not fit
        let b = num(1, 10, 0, 0, &[1]);
        assert!(numeric(&b, 0).is_err());
        assert!(numeric(&num(0, 0, 0xC000, 0, &[]), 2)
            .expect_err("NaN")
            .contains("NaN"));
        assert_eq!(numeric(&num(0, 0, 0, 0, &[]), 2), Ok(0));
    }

    #[test]
    fn uuids_print_hyphenated() {
        let b: Vec<u8> = (0u8..16).collect();
        assert_eq!(uuid_text(&b), "00010203-0405-0607-0809-0a0b0c0d0e0f");
    }
}
