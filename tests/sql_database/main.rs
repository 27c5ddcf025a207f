//! The sql_database source end to end: the plugin library loaded through the registry, reading
//! the real PostgreSQL and MariaDB servers of the machine (127.0.0.1:5432, trust auth, and
//! 127.0.0.1:3306, root without password; `.ci/run` starts them) and SQLite files, loading into
//! DuckDB through the DuckDB plugin, and comparing value for value with the source database.

use std::path::Path;

use serde_json::{json, Value};
use sluice::pipeline::{Pipeline, RunOptions};
use sluice_destination_duckdb::duckdb;
use sluice_tests::{duckdb_pipeline, registry};
use sqlx::{Connection, Executor, Row};

const PG: &str = "postgresql://postgres@127.0.0.1:5432/test";
const MY: &str = "mysql://root@127.0.0.1:3306/test";

fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime")
}

/// A name unique to this process and `tag`.
fn unique(tag: &str) -> String {
    format!("sluice_{tag}_{}", std::process::id())
}

fn pg_exec(sql: &str) {
    rt().block_on(async {
        let mut c = sqlx::PgConnection::connect(PG)
            .await
            .expect("connect to PostgreSQL");
        c.execute(sqlx::raw_sql(sqlx::AssertSqlSafe(sql.to_string())))
            .await
            .unwrap_or_else(|e| panic!("{sql}: {e}"));
    })
}

fn my_exec(sql: &str) {
    rt().block_on(async {
        let mut c = sqlx::MySqlConnection::connect(MY)
            .await
            .expect("connect to MariaDB");
        c.execute(sqlx::raw_sql(sqlx::AssertSqlSafe(sql.to_string())))
            .await
            .unwrap_or_else(|e| panic!("{sql}: {e}"));
    })
}

/// Rows of `sql` as text (NULL as None), from PostgreSQL or MariaDB.
fn source_rows(url: &str, sql: &str) -> Vec<Vec<Option<String>>> {
    rt().block_on(async {
        let q = sqlx::AssertSqlSafe(sql.to_string());
        if url.starts_with("postgresql") {
            let mut c = sqlx::PgConnection::connect(url).await.expect("connect");
            c.execute("SET intervalstyle = 'iso_8601'")
                .await
                .expect("set");
            let rows = sqlx::query(q)
                .fetch_all(&mut c)
                .await
                .unwrap_or_else(|e| panic!("{sql}: {e}"));
            rows.iter()
                .map(|r| {
                    (0..r.len())
                        .map(|i| r.try_get::<Option<String>, _>(i).expect("text"))
                        .collect()
                })
                .collect()
        } else {
            let mut c = sqlx::MySqlConnection::connect(url).await.expect("connect");
            let rows = sqlx::query(q)
                .fetch_all(&mut c)
                .await
                .unwrap_or_else(|e| panic!("{sql}: {e}"));
            rows.iter()
                .map(|r| {
                    (0..r.len())
                        .map(|i| r.try_get::<Option<String>, _>(i).expect("text"))
                        .collect()
                })
                .collect()
        }
    })
}

/// Rows of `sql` in DuckDB as text.
fn duck_rows(db: &Path, sql: &str) -> Vec<Vec<Option<String>>> {
    let con = duckdb::Connection::open(db).expect("open");
    let mut st = con.prepare(sql).unwrap_or_else(|e| panic!("{sql}: {e}"));
    let mut rows = st.query([]).expect("query");
    let mut out = Vec::new();
    while let Some(r) = rows.next().expect("row") {
        let n = r.as_ref().column_count();
        out.push(
            (0..n)
                .map(|i| r.get::<_, Option<String>>(i).expect("text"))
                .collect(),
        );
    }
    out
}

fn duck_i64(db: &Path, sql: &str) -> i64 {
    let con = duckdb::Connection::open(db).expect("open");
    con.query_row(sql, [], |r| r.get::<_, i64>(0))
        .unwrap_or_else(|e| panic!("{sql}: {e}"))
}

/// DuckDB's column types of `dataset.table`.
fn duck_types(db: &Path, dataset: &str, table: &str) -> Vec<(String, String)> {
    duck_rows(
        db,
        &format!("SELECT column_name, data_type FROM information_schema.columns WHERE table_schema = '{dataset}' AND table_name = '{table}' ORDER BY ordinal_position"),
    )
    .into_iter()
    .map(|r| (r[0].clone().unwrap_or_default(), r[1].clone().unwrap_or_default()))
    .collect()
}

/// Text forms that mean the same value in both databases: numbers without trailing fraction
/// zeros, float specials and hex in one spelling.
fn canonical(v: &Option<String>) -> Option<String> {
    let s = v.as_ref()?.clone();
    let lower = s.to_ascii_lowercase();
    Some(match lower.as_str() {
        "nan" => "nan".into(),
        "infinity" | "inf" => "inf".into(),
        "-infinity" | "-inf" => "-inf".into(),
        _ if s.contains('.')
            && s.bytes()
                .all(|b| b.is_ascii_digit() || b == b'.' || b == b'-') =>
        {
            s.trim_end_matches('0').trim_end_matches('.').to_string()
        }
        _ => s,
    })
}

fn assert_same(
    label: &str,
    ours: &[Vec<Option<String>>],
    theirs: &[Vec<Option<String>>],
    names: &[&str],
) {
    assert_eq!(ours.len(), theirs.len(), "{label}: row counts");
    for (r, (a, b)) in ours.iter().zip(theirs).enumerate() {
        for (i, name) in names.iter().enumerate() {
            assert_eq!(
                canonical(&a[i]),
                canonical(&b[i]),
                "{label}: row {r}, column {name}: DuckDB has {:?}, the source {:?}",
                a[i],
                b[i]
            );
        }
    }
}

fn sql_source(
    config: Value,
    secrets: Value,
) -> sluice_registry::Result<sluice_registry::ForeignSource> {
    registry()
        .load("source", "sql_database")?
        .open_source(&config, &secrets)
}

fn run(p: &mut Pipeline, config: Value, url: &str) -> sluice::Result<sluice::pipeline::LoadInfo> {
    let src = sql_source(config, json!({"credentials": url}))
        .map_err(|e| sluice::Error::config(e.to_string()))?;
    p.run(
        &src,
        &RunOptions {
            section: Some("sql_database".into()),
            ..Default::default()
        },
    )
}

/// (column, source expression as text, DuckDB expression as text)
type Check = (&'static str, &'static str, &'static str);

fn compare(
    label: &str,
    url: &str,
    source_table: &str,
    db: &Path,
    duck_table: &str,
    checks: &[Check],
) {
    let src: Vec<&str> = checks.iter().map(|c| c.1).collect();
    let dst: Vec<&str> = checks.iter().map(|c| c.2).collect();
    let names: Vec<&str> = checks.iter().map(|c| c.0).collect();
    let theirs = source_rows(
        url,
        &format!("SELECT {} FROM {source_table} ORDER BY id", src.join(", ")),
    );
    let ours = duck_rows(
        db,
        &format!("SELECT {} FROM {duck_table} ORDER BY id", dst.join(", ")),
    );
    assert_same(label, &ours, &theirs, &names);
}

#[test]
fn postgres_types_load_value_for_value() {
    let schema = unique("pgtypes");
    pg_exec(&format!(
        r#"DROP SCHEMA IF EXISTS {schema} CASCADE; CREATE SCHEMA {schema};
        CREATE TYPE {schema}.mood AS ENUM ('sad', 'happy');
        CREATE DOMAIN {schema}.price AS numeric(10,2) NOT NULL;
        CREATE TABLE {schema}.all_types (
          id int4 PRIMARY KEY, c_bool bool, c_int2 int2, c_int4 int4, c_int8 int8, c_float4 real,
          c_float8 float8, c_numeric numeric(12,4), c_bare numeric, c_wide numeric(38,20),
          c_price {schema}.price, c_text text, c_varchar varchar(20) NOT NULL, c_char char(3),
          c_date date, c_time time, c_ts timestamp, c_tstz timestamptz, c_interval interval,
          c_json json, c_jsonb jsonb, c_uuid uuid, c_bytea bytea, c_enum {schema}.mood,
          c_ints int4[], c_texts text[], c_inet inet);
        INSERT INTO {schema}.all_types VALUES
          (1, true, -32768, -2147483648, 9223372036854775807, 1.1, 'NaN', 12345678.1234,
           3.141592653, 12345678901234567.12345678901234567890, 0.01, 'héllo ✓ 日本 "q" ''s',
           'short', 'ab', '2024-02-29', '23:59:59.999999', '1999-12-31 23:59:59.123456',
           '2024-01-01 12:00:00+02', '1 year 2 mons 3 days 04:05:06.5', '{{"a": [1, 2]}}',
           '{{"b": null, "a": 1}}', 'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11', '\x00ff10',
           'happy', '{{1,2,3}}', '{{"x","y z"}}', '192.168.0.1/24'),
          (2, false, 32767, 2147483647, -9223372036854775808, -0.5, 'Infinity', -0.0001,
           -0.000000001, -0.00000000000000000001, 99999999.99, '', 'x', 'abc', '0001-01-01',
           '00:00:00', '1970-01-01 00:00:00', '1970-01-01 00:00:00+00', '-1 days', '[]',
           '[]', '00000000-0000-0000-0000-000000000000', '\x', 'sad', '{{}}', '{{NULL}}', '::1'),
          (3, NULL, NULL, NULL, NULL, NULL, '-Infinity', NULL, NULL, NULL, 1, NULL, '', NULL,
           NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL);"#
    ));
    let tmp = tempfile::tempdir().expect("tmp");
    let db = tmp.path().join("pg.duckdb");
    let mut p = duckdb_pipeline(
        "pg_types",
        "pg_types_data",
        &tmp.path().join("pipelines"),
        &db,
    );
    let info = run(&mut p, json!({"schema": schema}), PG).expect("run");
    assert!(!info.has_failed_jobs());
    drop(p);
    let ts = "to_char(c_ts, 'YYYY-MM-DD HH24:MI:SS.US')";
    let checks: Vec<Check> = vec![
        ("id", "id::text", "CAST(id AS VARCHAR)"),
        (
            "c_bool",
            "CASE WHEN c_bool THEN 'true' WHEN NOT c_bool THEN 'false' END",
            "CAST(c_bool AS VARCHAR)",
        ),
        ("c_int2", "c_int2::text", "CAST(c_int2 AS VARCHAR)"),
        ("c_int4", "c_int4::text", "CAST(c_int4 AS VARCHAR)"),
        ("c_int8", "c_int8::text", "CAST(c_int8 AS VARCHAR)"),
        (
            "c_float4",
            "c_float4::float8::text",
            "CAST(c_float4 AS VARCHAR)",
        ),
        ("c_float8", "c_float8::text", "CAST(c_float8 AS VARCHAR)"),
        ("c_numeric", "c_numeric::text", "CAST(c_numeric AS VARCHAR)"),
        (
            "c_bare",
            "round(c_bare, 9)::text",
            "CAST(c_bare AS VARCHAR)",
        ),
        ("c_wide", "c_wide::text", "CAST(c_wide AS VARCHAR)"),
        ("c_price", "c_price::text", "CAST(c_price AS VARCHAR)"),
        ("c_text", "c_text", "c_text"),
        ("c_varchar", "c_varchar", "c_varchar"),
        ("c_char", "rpad(c_char::text, 3)", "c_char"),
        ("c_date", "c_date::text", "CAST(c_date AS VARCHAR)"),
        ("c_time", "c_time::text", "CAST(c_time AS VARCHAR)"),
        ("c_ts", ts, "strftime(c_ts, '%Y-%m-%d %H:%M:%S.%f')"),
        (
            "c_tstz",
            "to_char(c_tstz AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI:SS.US')",
            "strftime(CAST(c_tstz AS TIMESTAMP), '%Y-%m-%d %H:%M:%S.%f')",
        ),
        ("c_interval", "c_interval::text", "c_interval"),
        ("c_json", "c_json::text", "CAST(c_json AS VARCHAR)"),
        ("c_jsonb", "c_jsonb::text", "CAST(c_jsonb AS VARCHAR)"),
        ("c_uuid", "c_uuid::text", "c_uuid"),
        ("c_bytea", "encode(c_bytea, 'hex')", "lower(hex(c_bytea))"),
        ("c_enum", "c_enum::text", "c_enum"),
        ("c_ints", "to_json(c_ints)::text", "CAST(c_ints AS VARCHAR)"),
        (
            "c_texts",
            "to_json(c_texts)::text",
            "CAST(c_texts AS VARCHAR)",
        ),
        ("c_inet", "c_inet::text", "c_inet"),
    ];
    compare(
        "postgres",
        PG,
        &format!("{schema}.all_types"),
        &db,
        "pg_types_data.all_types",
        &checks,
    );
    // the types dlt gives them (reflection level full)
    let types = duck_types(&db, "pg_types_data", "all_types");
    let ty = |c: &str| {
        types
            .iter()
            .find(|(n, _)| n == c)
            .map(|(_, t)| t.as_str())
            .unwrap_or("?")
            .to_string()
    };
    assert_eq!(ty("c_int2"), "BIGINT");
    assert_eq!(ty("c_float4"), "DOUBLE");
    assert_eq!(ty("c_numeric"), "DECIMAL(38,9)");
    assert_eq!(
        ty("c_wide"),
        "DECIMAL(38,20)",
        "kept: its values do not fit (38,9)"
    );
    assert_eq!(ty("c_json"), "JSON");
    assert_eq!(ty("c_ints"), "JSON");
    assert_eq!(ty("c_ts"), "TIMESTAMP");
    assert_eq!(ty("c_tstz"), "TIMESTAMP WITH TIME ZONE");
    assert_eq!(ty("c_bytea"), "BLOB");
    assert_eq!(ty("c_date"), "DATE");
    assert_eq!(ty("c_time"), "TIME");
    assert_eq!(ty("c_uuid"), "VARCHAR");
    // nullability and the primary key from reflection
    let schema_doc = duck_rows(
        &db,
        "SELECT schema FROM pg_types_data._dlt_version ORDER BY inserted_at DESC LIMIT 1",
    );
    let doc: Value =
        serde_json::from_str(schema_doc[0][0].as_deref().unwrap_or("{}")).expect("schema json");
    let cols = &doc["tables"]["all_types"]["columns"];
    assert_eq!(cols["id"]["primary_key"], true, "{cols}");
    assert_eq!(cols["id"]["nullable"], false);
    assert_eq!(cols["c_varchar"]["nullable"], false);
    assert_eq!(cols["c_price"]["nullable"], false, "a NOT NULL domain");
    assert_eq!(cols["c_text"]["nullable"], true);

    // full_with_precision: integer widths, exact decimals, text lengths
    let db2 = tmp.path().join("pg_precision.duckdb");
    let mut p = duckdb_pipeline(
        "pg_types_p",
        "pg_types_p",
        &tmp.path().join("pipelines"),
        &db2,
    );
    run(
        &mut p,
        json!({"schema": schema, "reflection_level": "full_with_precision"}),
        PG,
    )
    .expect("run");
    drop(p);
    let types = duck_types(&db2, "pg_types_p", "all_types");
    let ty = |c: &str| {
        types
            .iter()
            .find(|(n, _)| n == c)
            .map(|(_, t)| t.as_str())
            .unwrap_or("?")
            .to_string()
    };
    assert_eq!(ty("c_int2"), "SMALLINT");
    assert_eq!(ty("c_int4"), "INTEGER");
    assert_eq!(ty("c_numeric"), "DECIMAL(12,4)");
    assert_eq!(ty("c_price"), "DECIMAL(10,2)");
    compare(
        "postgres full_with_precision",
        PG,
        &format!("{schema}.all_types"),
        &db2,
        "pg_types_p.all_types",
        &checks,
    );
    pg_exec(&format!("DROP SCHEMA {schema} CASCADE"));
}

#[test]
fn postgres_types_sluice_cannot_map_are_refused_or_read_as_text() {
    let schema = unique("pgunmapped");
    pg_exec(&format!(
        "DROP SCHEMA IF EXISTS {schema} CASCADE; CREATE SCHEMA {schema};
         CREATE TABLE {schema}.shapes (id int PRIMARY KEY, at point, n numeric);
         INSERT INTO {schema}.shapes VALUES (1, '(1,2)', 'NaN'), (2, NULL, 2.5);"
    ));
    let e = sql_source(json!({"schema": schema}), json!({"credentials": PG}))
        .err()
        .expect("unmapped");
    let text = e.to_string();
    assert!(
        text.contains("column `at` of table `shapes` has type `point`")
            && text.contains("text_columns")
            && text.contains("excluded_columns"),
        "{text}"
    );
    let tmp = tempfile::tempdir().expect("tmp");
    let db = tmp.path().join("shapes.duckdb");
    let mut p = duckdb_pipeline("pg_shapes", "shapes", &tmp.path().join("pipelines"), &db);
    // a numeric NaN has no decimal: the message names the column and the fix, nothing loads
    let e = run(
        &mut p,
        json!({"schema": schema, "tables": {"shapes": {"text_columns": ["at"]}}}),
        PG,
    )
    .err()
    .expect("NaN");
    let text = format!("{e:#}");
    assert!(
        text.contains("column `n` (numeric) of table `shapes`") && text.contains("NaN"),
        "{text}"
    );
    drop(p);
    let mut p = duckdb_pipeline("pg_shapes2", "shapes2", &tmp.path().join("pipelines"), &db);
    run(
        &mut p,
        json!({"schema": schema, "tables": {"shapes": {"text_columns": ["at", "n"]}}}),
        PG,
    )
    .expect("as text");
    drop(p);
    assert_eq!(
        duck_rows(&db, r#"SELECT "at", n FROM shapes2.shapes ORDER BY id"#),
        vec![
            vec![Some("(1,2)".into()), Some("NaN".into())],
            vec![None, Some("2.5".into())]
        ]
    );
    let mut p = duckdb_pipeline("pg_shapes3", "shapes3", &tmp.path().join("pipelines"), &db);
    run(&mut p, json!({"schema": schema, "tables": {"shapes": {"excluded_columns": ["at"], "text_columns": ["n"]}}}), PG).expect("excluded");
    drop(p);
    let types = duck_types(&db, "shapes3", "shapes");
    assert!(!types.iter().any(|(n, _)| n == "at"), "{types:?}");
    pg_exec(&format!("DROP SCHEMA {schema} CASCADE"));
}

#[test]
fn incremental_postgres_loads_new_and_updated_rows_on_the_second_run() {
    let schema = unique("pginc");
    pg_exec(&format!(
        "DROP SCHEMA IF EXISTS {schema} CASCADE; CREATE SCHEMA {schema};
         CREATE TABLE {schema}.events (id int PRIMARY KEY, v text, updated_at timestamptz NOT NULL);
         INSERT INTO {schema}.events SELECT i, 'v' || i, timestamptz '2024-01-01 00:00:00+00' + i * interval '1 hour' FROM generate_series(1, 100) i;"
    ));
    let tmp = tempfile::tempdir().expect("tmp");
    let db = tmp.path().join("inc.duckdb");
    let config = json!({
        "schema": schema,
        "chunk_size": 7,
        "tables": {"events": {"write_disposition": "merge", "incremental": {"cursor_path": "updated_at"}}}
    });
    let mut p = duckdb_pipeline("pg_inc", "inc", &tmp.path().join("pipelines"), &db);
    run(&mut p, config.clone(), PG).expect("run 1");
    drop(p);
    assert_eq!(duck_i64(&db, "SELECT count(*) FROM inc.inc.events"), 100);
    // two new rows, one updated (its cursor moves forward), one updated without moving the cursor
    pg_exec(&format!(
        "INSERT INTO {schema}.events VALUES (101, 'new', '2024-02-01 00:00:00+00'), (102, 'new', '2024-02-01 00:00:00+00');
         UPDATE {schema}.events SET v = 'changed', updated_at = '2024-02-02 00:00:00+00' WHERE id = 5;
         UPDATE {schema}.events SET v = 'unseen' WHERE id = 6;"
    ));
    let mut p = duckdb_pipeline("pg_inc", "inc", &tmp.path().join("pipelines"), &db);
    let info = run(&mut p, config, PG).expect("run 2");
    drop(p);
    let rows: u64 = info
        .packages
        .iter()
        .flat_map(|pk| pk.rows.get("events"))
        .sum();
    // the window starts at the last cursor (2024-01-05 04:00, id 100), which is also read again
    // and dropped by the boundary dedup: only the three rows past it load
    assert_eq!(rows, 3, "{info:?}");
    assert_eq!(duck_i64(&db, "SELECT count(*) FROM inc.inc.events"), 102);
    assert_eq!(
        duck_rows(
            &db,
            "SELECT CAST(id AS VARCHAR), v FROM inc.inc.events WHERE id IN (5, 6, 101) ORDER BY id"
        ),
        vec![
            vec![Some("5".into()), Some("changed".into())],
            vec![Some("6".into()), Some("v6".into())],
            vec![Some("101".into()), Some("new".into())],
        ]
    );
    pg_exec(&format!("DROP SCHEMA {schema} CASCADE"));
}

#[test]
fn bad_connections_and_tables_fail_clearly_without_the_password() {
    // wrong password (PostgreSQL here trusts local connections, so a wrong user: MariaDB's root
    // takes no password, so one given is wrong)
    let e = sql_source(
        json!({}),
        json!({"credentials": "mysql://root:s3cr3t-pass@127.0.0.1:3306/test"}),
    )
    .err()
    .expect("wrong password");
    let t = e.to_string();
    assert!(
        t.contains("cannot log in to mysql://root:***@127.0.0.1:3306/test")
            && t.contains("check the username and password"),
        "{t}"
    );
    assert!(!t.contains("s3cr3t-pass"), "the password leaked: {t}");
    // nothing listens on port 1
    let e = sql_source(
        json!({}),
        json!({"credentials": "postgresql://u:pw@127.0.0.1:1/test"}),
    )
    .err()
    .expect("unreachable");
    let t = e.to_string();
    assert!(
        t.contains("cannot reach postgresql://u:***@127.0.0.1:1/test")
            && t.contains("is the server running"),
        "{t}"
    );
    // a database that does not exist
    let e = sql_source(
        json!({}),
        json!({"credentials": "postgresql://postgres@127.0.0.1:5432/sluice_no_such_db"}),
    )
    .err()
    .expect("no database");
    assert!(e.to_string().contains("does not exist"), "{e}");
    // a table that does not exist
    let e = sql_source(
        json!({"table_names": ["no_such_table"]}),
        json!({"credentials": PG}),
    )
    .err()
    .expect("no table");
    let t = e.to_string();
    assert!(
        t.contains("no table `no_such_table` in schema `public`") && t.contains("table_names"),
        "{t}"
    );
}

#[test]
fn a_table_dropped_after_reflection_fails_the_run_and_a_rerun_loads_the_rest() {
    let schema = unique("pgdrop");
    pg_exec(&format!(
        "DROP SCHEMA IF EXISTS {schema} CASCADE; CREATE SCHEMA {schema};
         CREATE TABLE {schema}.keep (id int PRIMARY KEY); INSERT INTO {schema}.keep VALUES (1), (2);
         CREATE TABLE {schema}.gone (id int PRIMARY KEY); INSERT INTO {schema}.gone VALUES (1);"
    ));
    let src = sql_source(json!({"schema": schema}), json!({"credentials": PG})).expect("open");
    pg_exec(&format!("DROP TABLE {schema}.gone"));
    let tmp = tempfile::tempdir().expect("tmp");
    let db = tmp.path().join("drop.duckdb");
    let mut p = duckdb_pipeline("pg_drop", "dropped", &tmp.path().join("pipelines"), &db);
    let e = p
        .run(
            &src,
            &RunOptions {
                section: Some("sql_database".into()),
                ..Default::default()
            },
        )
        .err()
        .expect("dropped");
    let t = format!("{e:#}");
    assert!(
        t.contains(&format!("table `{schema}.gone` is gone")) && t.contains("run again"),
        "{t}"
    );
    // the next run reflects anew and loads what is there
    let info = run(&mut p, json!({"schema": schema}), PG).expect("rerun");
    assert!(!info.has_failed_jobs());
    drop(p);
    assert_eq!(duck_i64(&db, "SELECT count(*) FROM dropped.keep"), 2);
    pg_exec(&format!("DROP SCHEMA {schema} CASCADE"));
}

#[test]
fn mariadb_types_load_value_for_value() {
    let db_name = unique("mytypes");
    my_exec(&format!(
        "DROP DATABASE IF EXISTS {db_name}; CREATE DATABASE {db_name} CHARACTER SET utf8mb4;
         CREATE TABLE {db_name}.all_types (
           id INT PRIMARY KEY, c_bool BOOLEAN, c_tiny TINYINT, c_small SMALLINT UNSIGNED,
           c_medium MEDIUMINT, c_int INT NOT NULL, c_big BIGINT, c_ubig BIGINT UNSIGNED,
           c_dec DECIMAL(20,6), c_float FLOAT, c_double DOUBLE, c_varchar VARCHAR(20),
           c_text TEXT, c_char CHAR(3), c_date DATE, c_time TIME(6), c_dt DATETIME(6),
           c_ts TIMESTAMP(6) NULL DEFAULT NULL, c_json JSON, c_bin VARBINARY(8), c_blob BLOB,
           c_enum ENUM('a', 'b'), c_year YEAR, c_bit BIT(8));
         INSERT INTO {db_name}.all_types VALUES
           (1, TRUE, -128, 65535, -8388608, 2147483647, 9223372036854775807, 18446744073709551615,
            12345678901234.123456, 1.5, 0.1, 'héllo ✓ 😀 \"q\" ''s', 'some text', 'ab', '2024-02-29',
            '23:59:59.999999', '9999-12-31 23:59:59.999999', '2038-01-19 03:14:07.999999',
            '{{\"a\": [1, 2]}}', 0x00FF, 0x0102, 'b', 2024, b'10101010'),
           (2, FALSE, 127, 0, 8388607, -2147483648, -9223372036854775808, 0, -0.000001, -0.5,
            -12345.678, '', '', 'abc', '1000-01-01', '00:00:00', '1000-01-01 00:00:00',
            '1970-01-01 00:00:01', '[]', X'', X'', 'a', 1901, b'0'),
           (3, NULL, NULL, NULL, NULL, 0, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL,
            NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL);"
    ));
    let tmp = tempfile::tempdir().expect("tmp");
    let db = tmp.path().join("my.duckdb");
    let mut p = duckdb_pipeline(
        "my_types",
        "my_types_data",
        &tmp.path().join("pipelines"),
        &db,
    );
    let url = format!("mariadb://root@127.0.0.1:3306/{db_name}");
    let info = run(&mut p, json!({}), &url).expect("run");
    assert!(!info.has_failed_jobs());
    drop(p);
    let checks: Vec<Check> = vec![
        ("id", "CAST(id AS CHAR)", "CAST(id AS VARCHAR)"),
        (
            "c_bool",
            "CASE WHEN c_bool THEN 'true' WHEN NOT c_bool THEN 'false' END",
            "CAST(c_bool AS VARCHAR)",
        ),
        ("c_tiny", "CAST(c_tiny AS CHAR)", "CAST(c_tiny AS VARCHAR)"),
        (
            "c_small",
            "CAST(c_small AS CHAR)",
            "CAST(c_small AS VARCHAR)",
        ),
        (
            "c_medium",
            "CAST(c_medium AS CHAR)",
            "CAST(c_medium AS VARCHAR)",
        ),
        ("c_int", "CAST(c_int AS CHAR)", "CAST(c_int AS VARCHAR)"),
        ("c_big", "CAST(c_big AS CHAR)", "CAST(c_big AS VARCHAR)"),
        ("c_ubig", "CAST(c_ubig AS CHAR)", "CAST(c_ubig AS VARCHAR)"),
        ("c_dec", "CAST(c_dec AS CHAR)", "CAST(c_dec AS VARCHAR)"),
        (
            "c_float",
            "CAST(c_float AS CHAR)",
            "CAST(c_float AS VARCHAR)",
        ),
        (
            "c_double",
            "CAST(c_double AS CHAR)",
            "CAST(c_double AS VARCHAR)",
        ),
        ("c_varchar", "c_varchar", "c_varchar"),
        ("c_text", "c_text", "c_text"),
        ("c_char", "c_char", "c_char"),
        ("c_date", "CAST(c_date AS CHAR)", "CAST(c_date AS VARCHAR)"),
        (
            "c_time",
            "TIME_FORMAT(c_time, '%H:%i:%s.%f')",
            "strftime(DATE '2000-01-01' + c_time, '%H:%M:%S.%f')",
        ),
        (
            "c_dt",
            "DATE_FORMAT(c_dt, '%Y-%m-%d %H:%i:%s.%f')",
            "strftime(c_dt, '%Y-%m-%d %H:%M:%S.%f')",
        ),
        (
            "c_ts",
            "DATE_FORMAT(c_ts, '%Y-%m-%d %H:%i:%s.%f')",
            "strftime(CAST(c_ts AS TIMESTAMP), '%Y-%m-%d %H:%M:%S.%f')",
        ),
        ("c_json", "CAST(c_json AS CHAR)", "CAST(c_json AS VARCHAR)"),
        ("c_bin", "LOWER(HEX(c_bin))", "lower(hex(c_bin))"),
        ("c_blob", "LOWER(HEX(c_blob))", "lower(hex(c_blob))"),
        ("c_enum", "CAST(c_enum AS CHAR)", "c_enum"),
        ("c_year", "CAST(c_year AS CHAR)", "CAST(c_year AS VARCHAR)"),
        (
            "c_bit",
            "CAST(CAST(c_bit AS UNSIGNED) AS CHAR)",
            "CAST(c_bit AS VARCHAR)",
        ),
    ];
    compare(
        "mariadb",
        &url,
        &format!("{db_name}.all_types"),
        &db,
        "my_types_data.all_types",
        &checks,
    );
    let types = duck_types(&db, "my_types_data", "all_types");
    let ty = |c: &str| {
        types
            .iter()
            .find(|(n, _)| n == c)
            .map(|(_, t)| t.as_str())
            .unwrap_or("?")
            .to_string()
    };
    assert_eq!(ty("c_bool"), "BOOLEAN");
    assert_eq!(
        ty("c_ubig"),
        "DECIMAL(20,0)",
        "every unsigned 64-bit value fits"
    );
    assert_eq!(ty("c_dec"), "DECIMAL(38,9)");
    assert_eq!(ty("c_dt"), "TIMESTAMP");
    assert_eq!(ty("c_ts"), "TIMESTAMP WITH TIME ZONE");
    assert_eq!(ty("c_bin"), "BLOB");
    assert_eq!(ty("c_time"), "TIME");
    my_exec(&format!("DROP DATABASE {db_name}"));
}

#[test]
fn sqlite_types_load_by_declared_type() {
    let tmp = tempfile::tempdir().expect("tmp");
    let file = tmp.path().join("src.db");
    rt().block_on(async {
        let o = sqlx::sqlite::SqliteConnectOptions::new().filename(&file).create_if_missing(true);
        let mut c = sqlx::SqliteConnection::connect_with(&o).await.expect("create");
        c.execute(sqlx::raw_sql(
            "CREATE TABLE items (id INTEGER PRIMARY KEY, flag BOOLEAN, price DECIMAL(10,2), ratio REAL,
               name VARCHAR(10) NOT NULL, note TEXT, day DATE, at DATETIME, doc JSON, raw BLOB, anything);
             INSERT INTO items VALUES
               (1, 1, 12.34, 0.5, 'héllo ✓', 'a''b', '2024-02-29', '2024-02-29 12:34:56.789', '{\"a\": 1}', x'00ff', 'x'),
               (2, 0, '7.5', -1e10, '', NULL, '1970-01-01', '1970-01-01T00:00:00', '[]', x'', 5),
               (3, NULL, NULL, NULL, 'n', NULL, NULL, NULL, NULL, NULL, NULL);",
        ))
        .await
        .expect("fill");
    });
    let url = format!("sqlite:///{}", file.display());
    let db = tmp.path().join("lite.duckdb");
    let mut p = duckdb_pipeline("lite", "lite", &tmp.path().join("pipelines"), &db);
    let info = run(
        &mut p,
        json!({"tables": {"items": {"text_columns": ["anything"]}}}),
        &url,
    )
    .expect("run");
    assert!(!info.has_failed_jobs());
    drop(p);
    let rows = duck_rows(
        &db,
        r#"SELECT CAST(id AS VARCHAR), CAST(flag AS VARCHAR), CAST(price AS VARCHAR), CAST(ratio AS VARCHAR), name, note,
                CAST(day AS VARCHAR), strftime("at", '%Y-%m-%d %H:%M:%S.%f'), CAST(doc AS VARCHAR), lower(hex(raw)), anything
         FROM lite.lite.items ORDER BY id"#,
    );
    let s = |v: &str| Some(v.to_string());
    assert_eq!(
        rows,
        vec![
            vec![
                s("1"),
                s("true"),
                s("12.340000000"),
                s("0.5"),
                s("héllo ✓"),
                s("a'b"),
                s("2024-02-29"),
                s("2024-02-29 12:34:56.789000"),
                s("{\"a\": 1}"),
                s("00ff"),
                s("x")
            ],
            vec![
                s("2"),
                s("false"),
                s("7.500000000"),
                s("-10000000000.0"),
                s(""),
                None,
                s("1970-01-01"),
                s("1970-01-01 00:00:00.000000"),
                s("[]"),
                s(""),
                s("5")
            ],
            vec![
                s("3"),
                None,
                None,
                None,
                s("n"),
                None,
                None,
                None,
                None,
                None,
                None
            ],
        ]
    );
    let types = duck_types(&db, "lite", "items");
    let ty = |c: &str| {
        types
            .iter()
            .find(|(n, _)| n == c)
            .map(|(_, t)| t.as_str())
            .unwrap_or("?")
            .to_string()
    };
    assert_eq!(
        (
            ty("id").as_str(),
            ty("flag").as_str(),
            ty("at").as_str(),
            ty("doc").as_str(),
            ty("raw").as_str()
        ),
        ("BIGINT", "BOOLEAN", "TIMESTAMP", "JSON", "BLOB")
    );
    // a value that does not fit its declared type names the row's column and the fix
    rt().block_on(async {
        let o = sqlx::sqlite::SqliteConnectOptions::new().filename(&file);
        let mut c = sqlx::SqliteConnection::connect_with(&o)
            .await
            .expect("open");
        c.execute("INSERT INTO items (id, name, day) VALUES (4, 'bad', 'someday')")
            .await
            .expect("insert");
    });
    let mut p = duckdb_pipeline("lite2", "lite2", &tmp.path().join("pipelines"), &db);
    let e = run(
        &mut p,
        json!({"tables": {"items": {"text_columns": ["anything"]}}}),
        &url,
    )
    .err()
    .expect("bad date");
    let t = format!("{e:#}");
    assert!(
        t.contains("column `day` (DATE) of table `items`")
            && t.contains("`someday`")
            && t.contains("text_columns"),
        "{t}"
    );
}

fn flights_dir() -> std::path::PathBuf {
    let peers = std::env::var("SLUICE_PEERS")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|_| {
            Path::new(&std::env::var("HOME").expect("HOME")).join(".cache/sluice-peers")
        });
    let dir = peers.join("flights");
    assert!(
        dir.join("flights.csv").exists(),
        "{} is made by `bash scripts/peers.sh install`",
        dir.display()
    );
    dir
}

const FLIGHTS_COLUMNS: &str = "year int, month int, day int, dep_time float8, sched_dep_time int, dep_delay float8, arr_time float8, sched_arr_time int, arr_delay float8, carrier text, flight int, tailnum text, origin text, dest text, air_time float8, distance int, hour int, minute int, time_hour timestamptz";

/// (table, checksum expressions in PostgreSQL, in MariaDB, in DuckDB)
type Sums = (&'static str, &'static str, &'static str, &'static str);

fn checksums() -> Vec<Sums> {
    vec![
        ("pgbench_accounts",
         "count(*)|sum(aid)|sum(bid)|sum(abalance)|sum(octet_length(filler))",
         "count(*)|sum(aid)|sum(bid)|sum(abalance)|sum(CHAR_LENGTH(filler))",
         "count(*)|sum(aid)|sum(bid)|sum(abalance)|sum(strlen(filler))"),
        ("pgbench_branches", "count(*)|sum(bid)|sum(bbalance)|count(filler)", "count(*)|sum(bid)|sum(bbalance)|count(filler)", "count(*)|sum(bid)|sum(bbalance)|count(filler)"),
        ("pgbench_tellers", "count(*)|sum(tid)|sum(bid)|sum(tbalance)", "count(*)|sum(tid)|sum(bid)|sum(tbalance)", "count(*)|sum(tid)|sum(bid)|sum(tbalance)"),
        ("flights",
         "count(*)|sum(dep_delay)|sum(distance)|count(tailnum)|sum(length(tailnum))|to_char(min(time_hour) AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI:SS')|to_char(max(time_hour) AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI:SS')|sum(air_time)",
         "count(*)|sum(dep_delay)|sum(distance)|count(tailnum)|sum(CHAR_LENGTH(tailnum))|min(time_hour)|max(time_hour)|sum(air_time)",
         "count(*)|sum(dep_delay)|sum(distance)|count(tailnum)|sum(length(tailnum))|strftime(CAST(min(time_hour) AS TIMESTAMP), '%Y-%m-%d %H:%M:%S')|strftime(CAST(max(time_hour) AS TIMESTAMP), '%Y-%m-%d %H:%M:%S')|sum(air_time)"),
        ("airlines", "count(*)|sum(length(carrier))|sum(length(name))", "count(*)|sum(CHAR_LENGTH(carrier))|sum(CHAR_LENGTH(name))", "count(*)|sum(length(carrier))|sum(length(name))"),
        ("airports",
         "count(*)|sum(length(name))|sum(alt)|CAST(sum(floor(lat * 1000)) AS BIGINT)",
         "count(*)|sum(CHAR_LENGTH(name))|sum(alt)|CAST(sum(floor(lat * 1000)) AS SIGNED)",
         "count(*)|sum(length(name))|sum(alt)|CAST(sum(floor(lat * 1000)) AS BIGINT)"),
    ]
}

fn same_checksums(url: &str, source_schema: &str, db: &Path, dataset: &str, mysql: bool) {
    for (table, pg, my, duck) in checksums() {
        let src = if mysql { my } else { pg };
        let cols: Vec<String> = src
            .split('|')
            .map(|e| {
                if mysql {
                    format!("CAST({e} AS CHAR)")
                } else {
                    format!("CAST({e} AS TEXT)")
                }
            })
            .collect();
        let theirs = source_rows(
            url,
            &format!("SELECT {} FROM {source_schema}.{table}", cols.join(", ")),
        );
        let dcols: Vec<String> = duck
            .split('|')
            .map(|e| format!("CAST({e} AS VARCHAR)"))
            .collect();
        let ours = duck_rows(
            db,
            &format!("SELECT {} FROM {dataset}.{table}", dcols.join(", ")),
        );
        let names: Vec<&str> = src.split('|').collect();
        assert_same(table, &ours, &theirs, &names);
        assert!(
            ours[0][0].as_deref().unwrap_or("0") != "0",
            "{table} has rows"
        );
    }
}

#[test]
fn pgbench_and_nycflights13_move_from_postgres_with_exact_counts_and_checksums() {
    let schema = unique("pgbench");
    pg_exec(&format!(
        "DROP SCHEMA IF EXISTS {schema} CASCADE; CREATE SCHEMA {schema}"
    ));
    // pgbench creates its tables in the first schema of the search path
    let out = std::process::Command::new("pgbench")
        .args([
            "-i",
            "-s",
            "10",
            "-q",
            "-h",
            "127.0.0.1",
            "-U",
            "postgres",
            "test",
        ])
        .env("PGOPTIONS", format!("-c search_path={schema}"))
        .output()
        .expect("pgbench (postgresql-contrib / postgresql-client)");
    assert!(
        out.status.success(),
        "pgbench: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let dir = flights_dir();
    pg_exec(&format!(
        "CREATE TABLE {schema}.flights ({FLIGHTS_COLUMNS});
         CREATE TABLE {schema}.airlines (carrier text PRIMARY KEY, name text);
         CREATE TABLE {schema}.airports (faa text PRIMARY KEY, name text, lat float8, lon float8, alt int, tz int, dst text, tzone text);"
    ));
    rt().block_on(async {
        let mut c = sqlx::PgConnection::connect(PG).await.expect("connect");
        for t in ["flights", "airlines", "airports"] {
            let data = std::fs::read(dir.join(format!("{t}.csv"))).expect("csv");
            let mut copy = c
                .copy_in_raw(&format!(
                    "COPY {schema}.{t} FROM STDIN (FORMAT csv, HEADER true)"
                ))
                .await
                .expect("copy");
            copy.send(data).await.expect("send");
            copy.finish().await.expect("finish");
        }
    });
    let tmp = tempfile::tempdir().expect("tmp");
    let db = tmp.path().join("bench.duckdb");
    let mut p = duckdb_pipeline("pg_bench", "pgb", &tmp.path().join("pipelines"), &db);
    // pgbench_accounts (128 MB) is read in three ctid ranges of one snapshot
    let info = run(
        &mut p,
        json!({"schema": schema, "concurrency": 3, "parallel_ranges": 3}),
        PG,
    )
    .expect("run");
    assert!(!info.has_failed_jobs());
    drop(p);
    same_checksums(PG, &schema, &db, "pgb", false);
    pg_exec(&format!("DROP SCHEMA {schema} CASCADE"));
}

#[test]
fn pgbench_and_nycflights13_move_from_mariadb_with_exact_counts_and_checksums() {
    let db_name = unique("mybench");
    let dir = flights_dir();
    my_exec(&format!(
        "DROP DATABASE IF EXISTS {db_name}; CREATE DATABASE {db_name} CHARACTER SET utf8mb4;
         CREATE TABLE {db_name}.pgbench_accounts (aid INT PRIMARY KEY, bid INT, abalance INT, filler CHAR(84));
         CREATE TABLE {db_name}.pgbench_branches (bid INT PRIMARY KEY, bbalance INT, filler CHAR(88));
         CREATE TABLE {db_name}.pgbench_tellers (tid INT PRIMARY KEY, bid INT, tbalance INT, filler CHAR(84));
         INSERT INTO {db_name}.pgbench_accounts SELECT seq, (seq - 1) DIV 100000 + 1, 0, REPEAT(' ', 84) FROM seq_1_to_1000000;
         INSERT INTO {db_name}.pgbench_branches SELECT seq, 0, NULL FROM seq_1_to_10;
         INSERT INTO {db_name}.pgbench_tellers SELECT seq, (seq - 1) DIV 10 + 1, 0, NULL FROM seq_1_to_100;
         CREATE TABLE {db_name}.flights (year INT, month INT, day INT, dep_time DOUBLE, sched_dep_time INT, dep_delay DOUBLE, arr_time DOUBLE, sched_arr_time INT, arr_delay DOUBLE, carrier VARCHAR(2), flight INT, tailnum VARCHAR(6), origin VARCHAR(3), dest VARCHAR(3), air_time DOUBLE, distance INT, hour INT, minute INT, time_hour TIMESTAMP NULL);
         CREATE TABLE {db_name}.airlines (carrier VARCHAR(2) PRIMARY KEY, name TEXT);
         CREATE TABLE {db_name}.airports (faa VARCHAR(3) PRIMARY KEY, name TEXT, lat DOUBLE, lon DOUBLE, alt INT, tz INT, dst VARCHAR(1), tzone TEXT);"
    ));
    // the mariadb client loads the csv files (LOAD DATA LOCAL; empty fields are NULL)
    let load = |table: &str, cols: &str, set: &str| {
        let file = dir.join(format!("{table}.csv"));
        let sql = format!(
            "SET time_zone = '+00:00'; LOAD DATA LOCAL INFILE '{}' INTO TABLE {db_name}.{table} FIELDS TERMINATED BY ',' OPTIONALLY ENCLOSED BY '\"' IGNORE 1 LINES ({cols}) SET {set}",
            file.display()
        );
        let out = std::process::Command::new("mariadb")
            .args([
                "--local-infile=1",
                "-h",
                "127.0.0.1",
                "-u",
                "root",
                "-e",
                &sql,
            ])
            .output()
            .expect("mariadb client");
        assert!(
            out.status.success(),
            "{table}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    };
    let vars: Vec<String> = [
        "year",
        "month",
        "day",
        "dep_time",
        "sched_dep_time",
        "dep_delay",
        "arr_time",
        "sched_arr_time",
        "arr_delay",
        "carrier",
        "flight",
        "tailnum",
        "origin",
        "dest",
        "air_time",
        "distance",
        "hour",
        "minute",
        "time_hour",
    ]
    .iter()
    .map(|c| format!("@{c}"))
    .collect();
    let sets: Vec<String> = [
        "year",
        "month",
        "day",
        "dep_time",
        "sched_dep_time",
        "dep_delay",
        "arr_time",
        "sched_arr_time",
        "arr_delay",
        "carrier",
        "flight",
        "tailnum",
        "origin",
        "dest",
        "air_time",
        "distance",
        "hour",
        "minute",
    ]
    .iter()
    .map(|c| format!("{c} = NULLIF(@{c}, '')"))
    .chain(["time_hour = STR_TO_DATE(@time_hour, '%Y-%m-%dT%H:%i:%sZ')".to_string()])
    .collect();
    load("flights", &vars.join(", "), &sets.join(", "));
    load("airlines", "carrier, @name", "name = NULLIF(@name, '')");
    load("airports", "faa, @name, @lat, @lon, @alt, @tz, @dst, @tzone", "name = NULLIF(@name, ''), lat = @lat, lon = @lon, alt = @alt, tz = @tz, dst = NULLIF(@dst, ''), tzone = NULLIF(@tzone, '')");
    let url = format!("mysql://root@127.0.0.1:3306/{db_name}");
    let tmp = tempfile::tempdir().expect("tmp");
    let db = tmp.path().join("mybench.duckdb");
    let mut p = duckdb_pipeline("my_bench", "myb", &tmp.path().join("pipelines"), &db);
    let info = run(&mut p, json!({"concurrency": 3}), &url).expect("run");
    assert!(!info.has_failed_jobs());
    drop(p);
    same_checksums(&url, &db_name, &db, "myb", true);
    my_exec(&format!("DROP DATABASE {db_name}"));
}

/// TLS as the connection string asks. MariaDB's `ssl-mode` (also `ssl_mode`) was ignored
/// before: `REQUIRED` against this machine's MariaDB (TLS off unless configured) is refused
/// with the fix instead of reading in the clear; `DISABLED` and `PREFERRED` read. PostgreSQL's
/// `sslmode` reaches the source's connections too (`verify-full` to 127.0.0.1 is refused: no
/// certificate names it).
#[test]
fn ssl_mode_is_honoured_for_mariadb_and_sslmode_for_postgresql() {
    let have_ssl = source_rows(MY, "SELECT CAST(@@have_ssl AS CHAR)")
        .first()
        .and_then(|r| r[0].clone())
        .unwrap_or_default();
    for mode in ["ssl-mode=DISABLED", "ssl_mode=preferred"] {
        sql_source(json!({}), json!({"credentials": format!("{MY}?{mode}")}))
            .unwrap_or_else(|e| panic!("{mode}: {e}"));
    }
    let required = sql_source(
        json!({}),
        json!({"credentials": format!("{MY}?ssl-mode=REQUIRED")}),
    );
    if have_ssl == "YES" {
        required.expect("TLS is on: REQUIRED connects");
    } else {
        let e = required
            .err()
            .expect("a server without TLS refuses REQUIRED");
        let t = e.to_string();
        assert!(
            t.contains("TLS with mysql://root@127.0.0.1:3306/test failed")
                && t.contains("ssl-mode"),
            "{t}"
        );
    }
    let e = sql_source(
        json!({}),
        json!({"credentials": format!("{MY}?ssl-mode=SOMETIMES")}),
    )
    .err()
    .expect("not a mode");
    assert!(e.to_string().contains("ssl-mode `SOMETIMES`"), "{e}");
    let e = sql_source(
        json!({}),
        json!({"credentials": format!("{PG}?sslmode=verify-full")}),
    )
    .err()
    .expect("no certificate names 127.0.0.1");
    assert!(
        e.to_string()
            .contains("TLS with postgresql://postgres@127.0.0.1:5432/test failed")
            || e.to_string().contains("does not support TLS"),
        "{e}"
    );
}
