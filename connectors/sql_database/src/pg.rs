//! PostgreSQL: reflection from the catalog, reads by `COPY (SELECT ...) TO STDOUT (FORMAT
//! binary)` decoded straight into Arrow builders (no per-row objects; DuckDB's postgres scanner
//! reads the same way).

use futures::StreamExt;
use sqlx::postgres::PgConnection;
use sqlx::{Connection, Row};

use crate::model::{
    literal, value_error, BatchAssembler, ColumnBuilder, Kind, SqlColumn, TableInfo,
};
use crate::query::{quote_ident, ReadPlan};
use crate::Credentials;
use sluice_sdk::prelude::*;
use sluice_sdk::BatchSink;
use sluice_sql::pgcopy::{self, decode, CopyReader, FieldError, PgType};

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

/// The wire form a column's field arrives in (see [`select_expr`]: JSON and the types read
/// as text arrive as text).
fn wire_type(c: &SqlColumn) -> PgType {
    if c.as_text {
        return PgType::Text;
    }
    match c.kind {
        Kind::Bool => PgType::Bool,
        Kind::Int(2) => PgType::Int2,
        Kind::Int(4) => PgType::Int4,
        Kind::Int(_) | Kind::UInt64 => PgType::Int8,
        Kind::Float32 => PgType::Float4,
        Kind::Float64 => PgType::Float8,
        Kind::Decimal(_) => PgType::Numeric,
        Kind::Text | Kind::Json => PgType::Text,
        Kind::Binary => PgType::Bytea,
        Kind::Uuid => PgType::Uuid,
        Kind::Date => PgType::Date,
        Kind::Time => PgType::Time,
        Kind::Timestamp { .. } => PgType::Timestamp,
    }
}

/// Appends one field of wire form `ty` (a numeric read at `scale`, the column's); `Err` says
/// why it does not fit.
fn append(
    ty: PgType,
    scale: i8,
    v: &[u8],
    b: &mut ColumnBuilder,
) -> std::result::Result<(), String> {
    let ok = match ty {
        PgType::Bool => {
            let x = decode::boolean(v).map_err(unfit)?;
            match b {
                ColumnBuilder::Bool(b) => {
                    b.append_value(x);
                    true
                }
                _ => false,
            }
        }
        PgType::Int2 => b.append_int(i64::from(decode::int2(v).map_err(unfit)?)),
        PgType::Int4 => b.append_int(i64::from(decode::int4(v).map_err(unfit)?)),
        PgType::Int8 => b.append_int(decode::int8(v).map_err(unfit)?),
        PgType::Float4 => b.append_float(f64::from(decode::float4(v).map_err(unfit)?)),
        PgType::Float8 => b.append_float(decode::float8(v).map_err(unfit)?),
        PgType::Numeric => {
            let unscaled =
                decode::numeric(v, scale).map_err(|what| unfit(FieldError::Numeric(what)))?;
            if !b.append_decimal(unscaled, scale) {
                return Err("holds a value with more digits than the column's decimal".into());
            }
            true
        }
        PgType::Text | PgType::Json => b.append_str(decode::text(v).map_err(unfit)?),
        PgType::Jsonb => b.append_str(decode::jsonb(v).map_err(unfit)?),
        PgType::Bytea => b.append_bytes(v),
        PgType::Uuid => {
            let uuid = decode::uuid(v).map_err(unfit)?;
            b.append_str(pgcopy::uuid_text(&uuid, &mut [0; 36]))
        }
        PgType::Date => b.append_temporal(decode::date(v).map_err(unfit)?),
        PgType::Time => b.append_temporal(decode::time(v).map_err(unfit)?),
        PgType::Timestamp => b.append_temporal(decode::timestamp(v).map_err(unfit)?),
    };
    if ok {
        Ok(())
    } else {
        Err("holds a value that does not fit the column".into())
    }
}

/// The message of a field that cannot be read (a cold path: the hot loop stays small).
#[cold]
fn unfit(e: FieldError) -> String {
    e.to_string()
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
    // each column's wire form and the scale a numeric is read at
    let fields: Vec<(PgType, i8)> = plan
        .columns
        .iter()
        .zip(&out.builders)
        .map(|(c, b)| (wire_type(c), b.scale()))
        .collect();
    let table = plan.table.name.as_str();
    let mut stream = con
        .copy_out_raw(&statement)
        .await
        .map_err(|e| crate::read_error(schema, table, e))?;
    let mut reader = CopyReader::new();
    let mut rows = 0u64;
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.map_err(|e| crate::read_error(schema, table, e))?;
        let mut tuples = reader.feed(&chunk).map_err(|_| {
            Error::data(format!(
                "table `{table}`: the server's COPY output is not in binary format"
            ))
        })?;
        // whole tuples only; a tuple cut at the chunk's end waits for the next chunk
        while let Some(tuple) = tuples.next() {
            if tuple.len() != fields.len() {
                return Err(Error::data(format!(
                    "table `{table}`: the server sent {} fields for {} columns",
                    tuple.len(),
                    fields.len()
                )));
            }
            for (i, (field, &(ty, scale))) in tuple.fields().zip(&fields).enumerate() {
                let b = &mut out.builders[i];
                match field {
                    None => b.append_null(),
                    Some(v) => append(ty, scale, v, b)
                        .map_err(|what| value_error(table, plan.columns[i], what))?,
                }
            }
            out.row_done(sink).await?;
            rows += 1;
        }
    }
    if !reader.is_finished() {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uuids_print_as_the_other_dialects_print_them() {
        let b: [u8; 16] = std::array::from_fn(|i| i as u8 * 17);
        assert_eq!(
            pgcopy::uuid_text(&b, &mut [0; 36]),
            crate::model::uuid_text(&b)
        );
    }

    #[test]
    fn fields_decode_into_the_column_builders() {
        use arrow_schema::DataType as A;
        let mut b = ColumnBuilder::new(&A::Decimal128(38, 9), 4);
        // 12345.6789 = [1, 2345, 6789], weight 1
        let mut field = Vec::new();
        pgcopy::encode::put_numeric(&mut field, 123_456_789, 4);
        append(PgType::Numeric, 9, &field[4..], &mut b).expect("numeric");
        let mut small = ColumnBuilder::new(&A::Decimal128(5, 2), 4);
        let e = append(PgType::Numeric, 2, &field[4..], &mut small).expect_err("too wide");
        assert!(e.contains("more digits"), "{e}");
        let mut i = ColumnBuilder::new(&A::Int16, 4);
        let e = append(PgType::Int4, 0, &70_000i32.to_be_bytes(), &mut i).expect_err("int2");
        assert_eq!(e, "holds a value that does not fit the column");
        let e = append(PgType::Int4, 0, &[1, 2], &mut i).expect_err("short");
        assert_eq!(e, "has a field of 2 bytes that is malformed");
        let mut t = ColumnBuilder::new(&A::Utf8, 4);
        append(PgType::Uuid, 0, &[0xab; 16], &mut t).expect("uuid");
        let a = t.finish();
        assert_eq!(
            a.as_any()
                .downcast_ref::<arrow_array::StringArray>()
                .map(|s| s.value(0)),
            Some("abababab-abab-abab-abab-abababababab")
        );
    }
}
