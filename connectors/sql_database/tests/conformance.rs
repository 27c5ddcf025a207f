//! The source conformance kit (`sluice_sdk::testing::check_source`) on the sql_database
//! source, against the machine's PostgreSQL and MariaDB (`$SLUICE_TEST_PG_URL`,
//! `$SLUICE_TEST_MYSQL_URL`; defaults: 127.0.0.1, database `test`), each with two tables in a
//! schema (database) made for this run and dropped at the end.

use serde_json::json;
use sluice_connector_sql_database::SqlDatabase;
use sluice_sdk::testing::{check_source, SourceChecks};

fn pg_url() -> String {
    std::env::var("SLUICE_TEST_PG_URL")
        .unwrap_or_else(|_| "postgresql://postgres@127.0.0.1:5432/test".into())
}

fn my_url() -> String {
    std::env::var("SLUICE_TEST_MYSQL_URL")
        .unwrap_or_else(|_| "mysql://root@127.0.0.1:3306/test".into())
}

/// Runs `sql` with a database's own command line client (`args` end with its flag for a
/// statement: psql `-c`, mariadb `-e`).
fn exec(program: &str, args: &[&str], sql: &str) {
    let out = std::process::Command::new(program)
        .args(args)
        .arg(sql)
        .output()
        .unwrap_or_else(|e| panic!("cannot run {program}: {e}"));
    assert!(
        out.status.success(),
        "{program} `{sql}`: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn check(url: &str, schema: &str) {
    let source =
        SqlDatabase::open(json!({"schema": schema}), json!({"credentials": url})).expect("open");
    let report = check_source(&source, &SourceChecks::default()).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(report.rows["items"], 3, "{report:?}");
    assert_eq!(report.rows["empty"], 0, "{report:?}");
}

#[test]
fn passes_the_source_kit_on_postgresql() {
    let schema = format!("sluice_source_kit_{}", std::process::id());
    let psql = |sql: &str| {
        exec(
            "psql",
            &[pg_url().as_str(), "-v", "ON_ERROR_STOP=1", "-c"],
            sql,
        )
    };
    psql(&format!(
        "DROP SCHEMA IF EXISTS \"{schema}\" CASCADE; CREATE SCHEMA \"{schema}\";
         CREATE TABLE \"{schema}\".items (id bigint PRIMARY KEY, name text, at timestamptz);
         INSERT INTO \"{schema}\".items VALUES (1, 'a', now()), (2, NULL, NULL), (3, 'c', now());
         CREATE TABLE \"{schema}\".empty (id int);"
    ));
    let result = std::panic::catch_unwind(|| check(&pg_url(), &schema));
    psql(&format!("DROP SCHEMA \"{schema}\" CASCADE"));
    if let Err(e) = result {
        std::panic::resume_unwind(e);
    }
}

#[test]
fn passes_the_source_kit_on_mariadb() {
    let db = format!("sluice_source_kit_{}", std::process::id());
    let mariadb = |sql: &str| {
        exec(
            "mariadb",
            &["-h", "127.0.0.1", "-P", "3306", "-u", "root", "-e"],
            sql,
        )
    };
    mariadb(&format!(
        "DROP DATABASE IF EXISTS `{db}`; CREATE DATABASE `{db}`;
         CREATE TABLE `{db}`.items (id bigint PRIMARY KEY, name text, at datetime);
         INSERT INTO `{db}`.items VALUES (1, 'a', now()), (2, NULL, NULL), (3, 'c', now());
         CREATE TABLE `{db}`.empty (id int);"
    ));
    let result = std::panic::catch_unwind(|| check(&my_url(), &db));
    mariadb(&format!("DROP DATABASE `{db}`"));
    if let Err(e) = result {
        std::panic::resume_unwind(e);
    }
}
