//! The postgres destination end to end: pipelines load through the plugin library found by the
//! registry into the machine's PostgreSQL server (127.0.0.1:5432, database `test`; `.ci/run`
//! starts it and `scripts/pg-setup.sh` adds the password-checked role), each test in a dataset
//! (schema) of its own. The golden cases run against PostgreSQL in the golden harness; these
//! tests cover what they do not: every type value for value (also from typed Arrow), dlt's
//! identifier shortening, staging-optimized replace, a failed load that commits nothing, a
//! connection lost in the middle of COPY, bad credentials and a database that refuses
//! connections, state restored from PostgreSQL, and one pipeline file moved from DuckDB to
//! PostgreSQL by changing one word.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use arrow_array::{
    Array, ArrayRef, Decimal128Array, Int32Array, LargeStringArray, RecordBatch, StructArray,
    TimestampNanosecondArray,
};
use arrow_schema::{DataType, Field, Schema, TimeUnit};
use serde_json::{json, Value};
use sluice::pipeline::{CodeSource, Pipeline, Resource, RunOptions};
use sluice_tests::{
    duckdb_dump, pg_dump, pg_exec, pg_rows, pg_url, plugin_dir, postgres_pipeline, registry,
};

/// A dataset name unique to this process and `tag`, dropped (with its staging schema) first.
fn dataset(tag: &str) -> String {
    let name = format!("sluice_pg_{tag}_{}", std::process::id());
    pg_exec(&format!(
        "DROP SCHEMA IF EXISTS \"{name}\" CASCADE; DROP SCHEMA IF EXISTS \"{name}_staging\" CASCADE"
    ));
    name
}

fn one(sql: &str) -> Option<String> {
    pg_rows(sql)
        .into_iter()
        .next()
        .and_then(|r| r.into_iter().next().flatten())
}

fn count(sql: &str) -> i64 {
    one(sql).and_then(|v| v.parse().ok()).unwrap_or(-1)
}

/// A runtime and a connection of its own to the test server, for a thread that acts as
/// another session.
fn session() -> (tokio::runtime::Runtime, sqlx::PgConnection) {
    use sqlx::Connection;
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let c = rt
        .block_on(sqlx::PgConnection::connect(&pg_url()))
        .expect("connect");
    (rt, c)
}

/// Another session holding `ds.items` in ACCESS EXCLUSIVE mode (a long report query, a stuck
/// loader) until [`TableLock::release`], or for at most a minute (then a load that waited for
/// the lock instead of giving up succeeds, and its test fails).
struct TableLock {
    release: std::sync::mpsc::Sender<()>,
    holder: std::thread::JoinHandle<()>,
}

impl TableLock {
    /// Returns once the other session holds the table.
    fn hold(ds: &str) -> Self {
        let (locked_tx, locked_rx) = std::sync::mpsc::channel();
        let (release, release_rx) = std::sync::mpsc::channel::<()>();
        let ds = ds.to_string();
        let holder = std::thread::spawn(move || {
            use sqlx::Executor;
            let (rt, mut c) = session();
            rt.block_on(async {
                c.execute(sqlx::raw_sql(sqlx::AssertSqlSafe(format!(
                    "BEGIN; LOCK TABLE \"{ds}\".items IN ACCESS EXCLUSIVE MODE"
                ))))
                .await
                .expect("lock");
            });
            locked_tx.send(()).expect("locked");
            let _ = release_rx.recv_timeout(std::time::Duration::from_secs(60));
            rt.block_on(async {
                c.execute(sqlx::raw_sql("ROLLBACK"))
                    .await
                    .expect("rollback")
            });
        });
        locked_rx.recv().expect("the other session holds the table");
        Self { release, holder }
    }

    fn release(self) {
        self.release.send(()).expect("release");
        self.holder.join().expect("holder");
    }
}

/// `ds.items` holds `n` rows with `n` distinct ids, and `_dlt_loads` one load.
fn assert_items_loaded_once(ds: &str, n: i64) {
    assert_eq!(
        pg_rows(&format!(
            "SELECT count(*)::text, count(DISTINCT id)::text FROM \"{ds}\".items"
        )),
        vec![vec![Some(n.to_string()), Some(n.to_string())]]
    );
    assert_eq!(
        count(&format!("SELECT count(*) FROM \"{ds}\"._dlt_loads")),
        1
    );
}

fn run(p: &mut Pipeline, resources: Vec<Resource>) -> sluice::Result<sluice::pipeline::LoadInfo> {
    let source = CodeSource::new("src", resources);
    p.run(&source, &RunOptions::default())
}

#[test]
fn every_dlt_type_loads_value_for_value_with_dlt_type_names() {
    let ds = dataset("types");
    let tmp = tempfile::tempdir().expect("tmp");
    let mut p = postgres_pipeline("pg_types", &ds, tmp.path());
    let columns = json!({
        "code": {"data_type": "text", "precision": 5},
        "small": {"data_type": "bigint", "precision": 16},
        "mid": {"data_type": "bigint", "precision": 32},
        "price": {"data_type": "decimal", "precision": 10, "scale": 2},
        "amount": {"data_type": "decimal"},
        "big": {"data_type": "wei"},
        "naive": {"data_type": "timestamp", "timezone": false, "precision": 3},
        "day": {"data_type": "date"},
        "at": {"data_type": "time"},
        "doc": {"data_type": "json"},
        "raw": {"data_type": "binary"}
    });
    let rows = vec![
        json!({"id": 1, "name": "Zoë ✓ 日本", "code": "abcde", "small": -32768, "mid": 2147483647,
               "big_int": 9223372036854775807i64, "ratio": 1.5, "flag": true,
               "price": "12.345", "amount": "-123456789.123456789", "big": "12345678901234567890123456789012345678",
               "ts": "2024-01-15T10:30:00.123456Z", "naive": "2024-01-15T10:30:00.1234+02:00",
               "day": "2024-02-29", "at": "23:59:59.999999", "doc": {"a": [1, {"b": null}], "c": "ü"},
               "raw": "aGVsbG8="}),
        json!({"id": 2, "name": "", "code": null, "small": 32767, "mid": -2147483648,
               "big_int": -9223372036854775807i64 - 1, "ratio": -0.0, "flag": false,
               "price": "-0.005", "amount": "0", "big": "0",
               "ts": "1970-01-01T00:00:00Z", "naive": "1999-12-31T23:59:59Z",
               "day": "0001-01-01", "at": "00:00:00", "doc": [], "raw": ""}),
        json!({"id": 3}),
    ];
    let r = Resource::from_values("things", rows).columns(columns);
    run(&mut p, vec![r]).expect("load");
    let t = format!("\"{ds}\".things");
    let types: BTreeMap<String, String> = pg_rows(&format!(
        "SELECT a.attname::text, format_type(a.atttypid, a.atttypmod) FROM pg_attribute a WHERE a.attrelid = '{t}'::regclass AND a.attnum > 0 AND NOT a.attisdropped"
    ))
    .into_iter()
    .map(|r| (r[0].clone().unwrap_or_default(), r[1].clone().unwrap_or_default()))
    .collect();
    for (col, ty) in [
        ("id", "bigint"),
        ("name", "character varying"),
        ("code", "character varying(5)"),
        ("small", "smallint"),
        ("mid", "integer"),
        ("big_int", "bigint"),
        ("ratio", "double precision"),
        ("flag", "boolean"),
        ("price", "numeric(10,2)"),
        ("amount", "numeric(38,9)"),
        ("big", "numeric(156,78)"),
        ("ts", "timestamp with time zone"),
        ("naive", "timestamp(3) without time zone"),
        ("day", "date"),
        ("at", "time without time zone"),
        ("doc", "jsonb"),
        ("raw", "bytea"),
        ("_dlt_id", "character varying"),
        ("_dlt_load_id", "character varying"),
    ] {
        assert_eq!(
            types.get(col).map(String::as_str),
            Some(ty),
            "type of {col}: {types:?}"
        );
    }
    let got = pg_rows(&format!(
        "SELECT id::text, name, code, small::text, mid::text, big_int::text, ratio::text, flag::text, price::text, amount::text, big::text, ts::text, naive::text, day::text, at::text, doc::text, encode(raw, 'escape') FROM {t} ORDER BY id"
    ));
    let s = |v: &str| Some(v.to_string());
    assert_eq!(
        got[0],
        vec![
            s("1"),
            s("Zoë ✓ 日本"),
            s("abcde"),
            s("-32768"),
            s("2147483647"),
            s("9223372036854775807"),
            s("1.5"),
            s("true"),
            s("12.35"),
            s("-123456789.123456789"),
            s(&format!(
                "12345678901234567890123456789012345678.{}",
                "0".repeat(78)
            )),
            s("2024-01-15 10:30:00.123456+00"),
            s("2024-01-15 08:30:00.123"),
            s("2024-02-29"),
            s("23:59:59.999999"),
            s(r#"{"a": [1, {"b": null}], "c": "ü"}"#),
            s("hello"),
        ]
    );
    assert_eq!(
        got[1],
        vec![
            s("2"),
            s(""),
            None,
            s("32767"),
            s("-2147483648"),
            s("-9223372036854775808"),
            s("-0"),
            s("false"),
            s("-0.01"),
            s("0.000000000"),
            s(&format!("0.{}", "0".repeat(78))),
            s("1970-01-01 00:00:00+00"),
            s("1999-12-31 23:59:59"),
            s("0001-01-01"),
            s("00:00:00"),
            s("[]"),
            s(""),
        ]
    );
    assert!(got[2][1..].iter().all(Option::is_none), "{:?}", got[2]);
    // the system tables, with dlt's varchar(64) load ids
    assert_eq!(
        one(&format!("SELECT format_type(atttypid, atttypmod) FROM pg_attribute WHERE attrelid = '\"{ds}\"._dlt_loads'::regclass AND attname = 'load_id'")),
        s("character varying(64)")
    );
    // every _dlt_id is UNIQUE (dlt's create_indexes), built after the data
    assert_eq!(
        count(&format!(
            "SELECT count(*) FROM pg_constraint WHERE conrelid = '{t}'::regclass AND contype = 'u'"
        )),
        1
    );
}

/// Typed Arrow batches (a parquet file or a SQL table) take the encoder's other paths: int32,
/// decimal128 with its own scale, nanosecond timestamps, large strings, structs as JSON.
#[test]
fn typed_arrow_columns_are_converted_to_their_postgres_types() {
    let ds = dataset("arrow");
    let tmp = tempfile::tempdir().expect("tmp");
    let mut p = postgres_pipeline("pg_arrow", &ds, tmp.path());
    let inner = Arc::new(StructArray::from(vec![(
        Arc::new(Field::new("k", DataType::Int32, true)),
        Arc::new(Int32Array::from(vec![Some(7), None])) as ArrayRef,
    )]));
    let schema = Arc::new(Schema::new(vec![
        Field::new("n", DataType::Int32, false),
        Field::new("d", DataType::Decimal128(12, 4), true),
        Field::new(
            "ts",
            DataType::Timestamp(TimeUnit::Nanosecond, Some("UTC".into())),
            true,
        ),
        Field::new("s", DataType::LargeUtf8, true),
        Field::new("st", inner.data_type().clone(), true),
    ]));
    let batch = RecordBatch::try_new(
        schema.clone(),
        vec![
            Arc::new(Int32Array::from(vec![1, -2])),
            Arc::new(
                Decimal128Array::from(vec![Some(12_345_678), Some(-1)])
                    .with_precision_and_scale(12, 4)
                    .expect("decimal"),
            ),
            Arc::new(
                TimestampNanosecondArray::from(vec![Some(1_705_314_600_123_456_789), None])
                    .with_timezone("UTC"),
            ),
            Arc::new(LargeStringArray::from(vec![Some("large"), None])),
            inner,
        ],
    )
    .expect("batch");
    run(
        &mut p,
        vec![Resource::from_batches("typed", schema, vec![batch])],
    )
    .expect("load");
    let t = format!("\"{ds}\".typed");
    let got = pg_rows(&format!(
        "SELECT n::text, format_type(pg_typeof(n), NULL), d::text, ts::text, s, st::text FROM {t} ORDER BY n"
    ));
    let s = |v: &str| Some(v.to_string());
    assert_eq!(
        got,
        vec![
            vec![
                s("-2"),
                s("integer"),
                s("-0.0001"),
                None,
                None,
                s(r#"{"k": null}"#)
            ],
            vec![
                s("1"),
                s("integer"),
                s("1234.5678"),
                s("2024-01-15 10:30:00.123456+00"),
                s("large"),
                s(r#"{"k": 7}"#)
            ],
        ]
    );
}

#[test]
fn long_names_are_shortened_to_63_characters_as_dlt_does() {
    let ds = dataset("names");
    let tmp = tempfile::tempdir().expect("tmp");
    let mut p = postgres_pipeline("pg_names", &ds, tmp.path());
    let long = "a_very_long_resource_name_that_goes_on_and_on_and_on_for_ever_and_ever";
    run(
        &mut p,
        vec![Resource::from_values(
            long,
            vec![json!({"id": 1, "children": [{"x": 1}]})],
        )],
    )
    .expect("load");
    let tables: Vec<String> = pg_rows(&format!(
        "SELECT table_name::text FROM information_schema.tables WHERE table_schema = '{ds}' ORDER BY 1"
    ))
    .into_iter()
    .filter_map(|r| r[0].clone())
    .collect();
    assert!(
        tables.contains(
            &"a_very_long_resource_name_thakbrhng_on_and_on_for_ever_and_ever".to_string()
        ),
        "{tables:?}"
    );
    assert!(tables.iter().all(|t| t.len() <= 63), "{tables:?}");
    assert_eq!(
        tables.len(),
        5,
        "root, child and three system tables: {tables:?}"
    );
}

/// `max_identifier_length` / `max_column_identifier_length` are config keys of the plugin: a
/// limit of 20 shortens table, nested table and flattened column names to dlt's names (those
/// of dlt 1.31 with `max_identifier_length=20`, golden case `identifier_length_20`); as in dlt,
/// the smaller of the two limits applies to tables and columns alike.
#[test]
fn identifier_lengths_are_config_keys_and_shorten_names_as_dlt_does() {
    for (tag, key) in [
        ("idlen_t", "max_identifier_length"),
        ("idlen_c", "max_column_identifier_length"),
    ] {
        let ds = dataset(tag);
        let tmp = tempfile::tempdir().expect("tmp");
        let mut p = pg_pipeline_with(
            &format!("pg_{tag}"),
            &ds,
            tmp.path(),
            json!({ key: 20 }),
            &pg_url(),
        );
        run(
            &mut p,
            vec![Resource::from_values(
                "customer_order_history",
                vec![json!({
                    "id": 1,
                    "shipping_address": {"street_name_and_number": "Main 1", "city": "X"},
                    "order_line_items": [{"product_identifier": "p1", "attribute_values": [1, 2]}]
                })],
            )],
        )
        .expect("load");
        let columns: Vec<String> = pg_rows(&format!(
            "SELECT table_name || '.' || column_name FROM information_schema.columns \
             WHERE table_schema = '{ds}' AND table_name NOT LIKE '\\_dlt%' \
             AND column_name NOT LIKE '\\_dlt%' ORDER BY 1"
        ))
        .into_iter()
        .filter_map(|r| r[0].clone())
        .collect();
        assert_eq!(
            columns,
            [
                "customeod6zjge_items.product_identifier",
                "customepvmkwa_values.value",
                "customewaxtgwhistory.id",
                "customewaxtgwhistory.shippinlivlaqs__city",
                "customewaxtgwhistory.shippintxvmgg_number",
            ],
            "{key}"
        );
    }
    // PostgreSQL would cut longer names itself: the plugin refuses a limit above 63
    let err = sluice_tests::open_destination(
        &registry(),
        "postgres",
        &json!({ "max_identifier_length": 64 }),
        &json!({ "credentials": pg_url() }),
    )
    .err()
    .unwrap_or_default();
    assert!(err.contains("max_identifier_length"), "{err}");
}

#[test]
fn replace_strategies_and_merge_keep_their_promises() {
    for strategy in [
        "truncate-and-insert",
        "insert-from-staging",
        "staging-optimized",
    ] {
        let ds = dataset(&strategy.replace('-', "_"));
        let tmp = tempfile::tempdir().expect("tmp");
        let mut p = Pipeline::builder("pg_replace")
            .destination(
                "postgres",
                sluice_tests::destination(
                    "postgres",
                    json!({"replace_strategy": strategy}),
                    json!({"credentials": pg_url()}),
                ),
            )
            .dataset_name(&ds)
            .pipelines_dir(tmp.path())
            .build()
            .expect("pipeline");
        let oid = || one(&format!("SELECT '\"{ds}\".items'::regclass::oid::text"));
        let mut oids = Vec::new();
        for round in 1..=3i64 {
            let data: Vec<Value> = (0..round * 10)
                .map(|i| json!({"id": i, "round": round, "tags": ["a", "b"]}))
                .collect();
            let r = Resource::from_values("items", data).write_disposition("replace");
            // a merged table beside it, through the same (unlogged) staging schema
            let m = Resource::from_values(
                "merged",
                vec![
                    json!({"id": 1, "round": round}),
                    json!({"id": round + 1, "round": round}),
                ],
            )
            .write_disposition("merge")
            .primary_key(vec!["id"]);
            run(&mut p, vec![r, m]).unwrap_or_else(|e| panic!("{strategy} round {round}: {e}"));
            oids.push(oid());
            assert_eq!(
                pg_rows(&format!(
                    "SELECT count(*)::text, min(round)::text FROM \"{ds}\".items"
                )),
                vec![vec![
                    Some((round * 10).to_string()),
                    Some(round.to_string())
                ]],
                "{strategy} round {round}"
            );
            assert_eq!(
                count(&format!("SELECT count(*) FROM \"{ds}\".items__tags")),
                round * 20,
                "{strategy}"
            );
        }
        // staging-optimized swaps a new table in every time; the others keep the table
        let distinct: BTreeMap<_, _> = oids.iter().map(|o| (o.clone(), ())).collect();
        let want = if strategy == "staging-optimized" {
            3
        } else {
            1
        };
        assert_eq!(distinct.len(), want, "{strategy}: table oids {oids:?}");
        // merge: key 1 updated to the last round, keys 2..=4 once each
        assert_eq!(
            pg_rows(&format!(
                "SELECT string_agg(id || ':' || round, ',' ORDER BY id) FROM \"{ds}\".merged"
            )),
            vec![vec![Some("1:3,2:1,3:2,4:3".to_string())]],
            "{strategy}"
        );
        // the swapped-in table is a normal (logged) table with its UNIQUE constraint
        assert_eq!(
            one(&format!(
                "SELECT relpersistence::text FROM pg_class WHERE oid = '\"{ds}\".items'::regclass"
            )),
            Some("p".to_string()),
            "{strategy}"
        );
        assert_eq!(
            count(&format!("SELECT count(*) FROM pg_constraint WHERE conrelid = '\"{ds}\".items'::regclass AND contype = 'u'")),
            1,
            "{strategy}"
        );
    }
}

/// A load that fails (a value its column rejects) commits nothing: a replace keeps the old
/// rows, the schema changes of the package are rolled back with it, and the package stays
/// pending with a message that names the table, the column and the fix.
#[test]
fn a_rejected_value_fails_the_load_and_commits_nothing() {
    let ds = dataset("rejected");
    let tmp = tempfile::tempdir().expect("tmp");
    let mut p = postgres_pipeline("pg_rejected", &ds, tmp.path());
    let columns = json!({"code": {"data_type": "text", "precision": 3}});
    let r = Resource::from_values(
        "items",
        vec![
            json!({"id": 1, "code": "abc"}),
            json!({"id": 2, "code": "de"}),
        ],
    )
    .write_disposition("replace")
    .columns(columns.clone());
    run(&mut p, vec![r]).expect("first load");
    let r = Resource::from_values(
        "items",
        vec![json!({"id": 3, "code": "far too long", "new_col": 1})],
    )
    .write_disposition("replace")
    .columns(columns);
    let msg = load_error(run(&mut p, vec![r])).expect("varchar(3) rejects the value");
    assert!(
        msg.contains("items") && msg.contains("value too long"),
        "{msg}"
    );
    assert!(msg.contains("hint:"), "{msg}");
    assert!(
        !msg.contains("postgresql://postgres@"),
        "no credentials in messages: {msg}"
    );
    // the old rows are there, the new column was not added, one load is recorded
    assert_eq!(
        pg_rows(&format!(
            "SELECT string_agg(code, ',' ORDER BY id) FROM \"{ds}\".items"
        )),
        vec![vec![Some("abc,de".to_string())]]
    );
    assert_eq!(
        count(&format!("SELECT count(*) FROM information_schema.columns WHERE table_schema = '{ds}' AND column_name = 'new_col'")),
        0
    );
    assert_eq!(
        count(&format!("SELECT count(*) FROM \"{ds}\"._dlt_loads")),
        1
    );
}

/// The backend of the load is terminated while COPY streams: the connection is gone, nothing of
/// the package was committed; the pipeline reconnects and loads it again (retries), so the rows
/// arrive exactly once. When every attempt is cut, the run fails, the package stays pending,
/// the dataset has nothing of it, and the next run loads it.
#[test]
fn a_connection_lost_mid_copy_commits_nothing_and_the_package_loads_once() {
    let ds = dataset("lost");
    let tmp = tempfile::tempdir().expect("tmp");
    let rows: Vec<Value> = (0..400_000)
        .map(|i| json!({"id": i, "v": format!("value number {i} with some padding text")}))
        .collect();
    // a killer that terminates the backend running COPY into this dataset, polling on one
    // connection of its own
    let killer = |times: usize, stop: Arc<AtomicBool>| {
        let ds = ds.clone();
        std::thread::spawn(move || {
            use sqlx::Row;
            let (rt, mut c) = session();
            rt.block_on(async {
                let sql = format!(
                    "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE pid <> pg_backend_pid() AND state = 'active' AND query LIKE 'COPY \"{ds}\".%'"
                );
                let mut killed = 0;
                while killed < times && !stop.load(Ordering::Relaxed) {
                    let row = sqlx::query(sqlx::AssertSqlSafe(sql.clone()))
                        .fetch_one(&mut c)
                        .await
                        .expect("poll");
                    if row.try_get::<i64, _>(0).unwrap_or(0) > 0 {
                        killed += 1;
                    }
                    tokio::time::sleep(std::time::Duration::from_millis(2)).await;
                }
                killed
            })
        })
    };
    // every attempt is cut: the run fails and commits nothing
    let stop = Arc::new(AtomicBool::new(false));
    let k = killer(100, stop.clone());
    let mut p = postgres_pipeline("pg_lost", &ds, tmp.path());
    let e = run(&mut p, vec![Resource::from_values("items", rows.clone())])
        .expect_err("every COPY is cut");
    stop.store(true, Ordering::Relaxed);
    let killed = k.join().expect("killer");
    assert!(
        killed >= 2,
        "the load was retried after the first cut ({killed} cuts)"
    );
    assert!(e.to_string().contains("connection"), "{e}");
    assert_eq!(
        one(&format!("SELECT to_regclass('\"{ds}\".items')::text")),
        None,
        "the table created by the failed package is rolled back too"
    );
    assert_eq!(p.storage().pending().expect("pending").len(), 1);
    // one cut: the retry reconnects and loads the pending package exactly once
    let stop = Arc::new(AtomicBool::new(false));
    let k = killer(1, stop.clone());
    let info = p.load_pending().expect("the retry loads the package");
    stop.store(true, Ordering::Relaxed);
    assert_eq!(
        k.join().expect("killer"),
        1,
        "the first attempt was cut, the retry loaded"
    );
    assert_eq!(info.packages.len(), 1);
    assert_items_loaded_once(&ds, 400000);
}

/// A TCP proxy to the test server that cuts the first connection on which the client sends
/// `COMMIT` after recording a load in `_dlt_loads`: the client's side is closed, then the
/// COMMIT is passed on (the server commits) and its answer goes nowhere. Returns the port and
/// the number of cuts.
fn commit_cutting_proxy() -> (u16, Arc<std::sync::atomic::AtomicUsize>) {
    use std::io::{Read, Write};
    use std::net::{Shutdown, TcpListener, TcpStream};
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = listener.local_addr().expect("addr").port();
    let cuts = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let upstream = proxied_url(&pg_url(), 0).1;
    let counter = cuts.clone();
    std::thread::spawn(move || {
        for client in listener.incoming() {
            let Ok(mut client) = client else { continue };
            let Ok(mut server) = TcpStream::connect(&upstream) else {
                continue;
            };
            let (mut c2, mut s2) = (
                client.try_clone().expect("clone"),
                server.try_clone().expect("clone"),
            );
            // server -> client
            std::thread::spawn(move || {
                let _ = std::io::copy(&mut s2, &mut c2);
                let _ = c2.shutdown(Shutdown::Both);
            });
            let counter = counter.clone();
            // client -> server, watching for the COMMIT of a load
            std::thread::spawn(move || {
                let mut buf = [0u8; 64 * 1024];
                let mut armed = false;
                let mut tail: Vec<u8> = Vec::new();
                loop {
                    let n = match client.read(&mut buf) {
                        Ok(0) | Err(_) => break,
                        Ok(n) => n,
                    };
                    tail.extend_from_slice(&buf[..n]);
                    let find =
                        |hay: &[u8], needle: &[u8]| hay.windows(needle.len()).any(|w| w == needle);
                    if find(&tail, b"_dlt_loads\" (load_id") {
                        armed = true;
                    }
                    if armed && find(&tail, b"COMMIT\0") && counter.load(Ordering::SeqCst) == 0 {
                        counter.fetch_add(1, Ordering::SeqCst);
                        // the client's side goes first, so the server's answer cannot reach
                        // it; then the COMMIT goes on, and the server commits
                        let _ = client.shutdown(Shutdown::Both);
                        let _ = server.write_all(&buf[..n]);
                        std::thread::sleep(std::time::Duration::from_millis(300));
                        let _ = server.shutdown(Shutdown::Both);
                        break;
                    }
                    if server.write_all(&buf[..n]).is_err() {
                        break;
                    }
                    let keep = tail.len().saturating_sub(64);
                    tail.drain(..keep);
                }
                let _ = server.shutdown(Shutdown::Both);
            });
        }
    });
    (port, cuts)
}

/// `url` with its host and port replaced by 127.0.0.1:`port`, and the host:port it had.
fn proxied_url(url: &str, port: u16) -> (String, String) {
    let (scheme, rest) = url.split_once("://").expect("a URL");
    let (user, rest) = match rest.rsplit_once('@') {
        Some((u, r)) => (format!("{u}@"), r),
        None => (String::new(), rest),
    };
    let (hostport, path) = rest.split_once('/').unwrap_or((rest, ""));
    let hostport = if hostport.contains(':') {
        hostport.to_string()
    } else {
        format!("{hostport}:5432")
    };
    (
        format!("{scheme}://{user}127.0.0.1:{port}/{path}"),
        hostport,
    )
}

/// The connection is lost while COMMIT is on its way: the server committed, the client never
/// heard. The retry asks `_dlt_loads` first and does not load the package again (without that
/// check, append would hold every row twice).
#[test]
fn a_connection_lost_during_commit_does_not_load_the_package_twice() {
    let ds = dataset("commit_cut");
    let tmp = tempfile::tempdir().expect("tmp");
    let (port, cuts) = commit_cutting_proxy();
    let mut p = Pipeline::builder("pg_commit_cut")
        .destination(
            "postgres",
            sluice_tests::destination(
                "postgres",
                json!({}),
                json!({"credentials": proxied_url(&pg_url(), port).0}),
            ),
        )
        .dataset_name(&ds)
        .pipelines_dir(tmp.path())
        .build()
        .expect("pipeline");
    let rows: Vec<Value> = (0..1000).map(|i| json!({"id": i})).collect();
    let info = run(&mut p, vec![Resource::from_values("items", rows)])
        .expect("the retry finds the package committed");
    assert_eq!(cuts.load(Ordering::SeqCst), 1, "the COMMIT was cut once");
    assert_eq!(info.packages.len(), 1);
    assert_items_loaded_once(&ds, 1000);
    assert!(p.storage().pending().expect("pending").is_empty());
}

/// A process killed just after sending COMMIT leaves a server session that commits the
/// package a moment later. Here another session holds the package's lock and records the
/// package in `_dlt_loads`, committing after a pause: the pending package (left pending by a
/// lock wait that timed out) is not loaded again; the load waits for the lock, then finds it
/// recorded.
#[test]
fn a_package_still_committing_in_another_session_is_waited_for_not_loaded_again() {
    let ds = dataset("in_flight");
    let tmp = tempfile::tempdir().expect("tmp");
    let mut p = pg_pipeline_with(
        "pg_in_flight",
        &ds,
        tmp.path(),
        json!({"lock_timeout": "2s"}),
        &pg_url(),
    );
    let r = |code: &str| Resource::from_values("items", vec![json!({"id": 1, "code": code})]);
    run(&mut p, vec![r("abc")]).expect("first load");
    // the second package stays pending: another session holds the table, the load gives up
    // after lock_timeout (a retryable failure)
    let holder = TableLock::hold(&ds);
    run(&mut p, vec![r("xyz")]).expect_err("the table is held");
    holder.release();
    let pending = p.storage().pending().expect("pending");
    let load_id = pending
        .first()
        .cloned()
        .expect("a retryable failure keeps the package");
    let (ready_tx, ready_rx) = std::sync::mpsc::channel();
    let other = {
        let (ds, load_id) = (ds.clone(), load_id.clone());
        std::thread::spawn(move || {
            use sqlx::Executor;
            let (rt, mut c) = session();
            rt.block_on(async {
                c.execute(sqlx::raw_sql(sqlx::AssertSqlSafe(format!(
                    "BEGIN; SELECT pg_advisory_xact_lock(hashtext('{ds}'), hashtext('{load_id}')); \
                     INSERT INTO \"{ds}\"._dlt_loads (load_id, schema_name, status, inserted_at, schema_version_hash) VALUES ('{load_id}', 'src', 0, now(), 'h')"
                ))))
                .await
                .expect("hold the lock");
                ready_tx.send(()).expect("ready");
                tokio::time::sleep(std::time::Duration::from_millis(1000)).await;
                c.execute(sqlx::raw_sql("COMMIT")).await.expect("commit");
            })
        })
    };
    ready_rx.recv().expect("the other session holds the lock");
    let started = std::time::Instant::now();
    p.load_pending()
        .expect("the package is found committed by the other session");
    assert!(
        started.elapsed() >= std::time::Duration::from_millis(700),
        "the load waited for the lock ({:?})",
        started.elapsed()
    );
    other.join().expect("other session");
    assert!(p.storage().pending().expect("pending").is_empty());
    assert_eq!(
        count(&format!(
            "SELECT count(*) FROM \"{ds}\"._dlt_loads WHERE load_id = '{load_id}'"
        )),
        1
    );
    assert_eq!(
        pg_rows(&format!("SELECT string_agg(code, ',') FROM \"{ds}\".items")),
        vec![vec![Some("abc".to_string())]]
    );
}

/// A table made outside sluice with `json`, `integer` and `real` where dlt makes `jsonb`,
/// `bigint` and `double precision`: every value is sent in the wire form of the column as the
/// server has it; a column type sluice cannot send is refused with the fix.
#[test]
fn existing_columns_of_other_types_are_loaded_in_their_own_wire_form() {
    let ds = dataset("own_types");
    pg_exec(&format!(
        "CREATE SCHEMA \"{ds}\"; CREATE TABLE \"{ds}\".items (id integer, doc json, score real, name text, _dlt_load_id varchar NOT NULL, _dlt_id varchar NOT NULL)"
    ));
    let tmp = tempfile::tempdir().expect("tmp");
    let mut p = postgres_pipeline("pg_own_types", &ds, tmp.path());
    let columns = json!({"doc": {"data_type": "json"}});
    let r = Resource::from_values(
        "items",
        vec![
            json!({"id": 1, "doc": {"a": [1, 2]}, "score": 1.5, "name": "x"}),
            json!({"id": 2, "doc": null, "score": -0.25, "name": "y"}),
        ],
    )
    .columns(columns.clone());
    run(&mut p, vec![r]).expect("loads into json, integer and real");
    assert_eq!(
        pg_rows(&format!(
            "SELECT id::text, doc::text, score::text, name FROM \"{ds}\".items ORDER BY id"
        )),
        vec![
            vec![
                Some("1".into()),
                Some(r#"{"a":[1,2]}"#.into()),
                Some("1.5".into()),
                Some("x".into())
            ],
            vec![
                Some("2".into()),
                None,
                Some("-0.25".into()),
                Some("y".into())
            ],
        ]
    );
    // integer keeps its range
    let r = Resource::from_values("items", vec![json!({"id": 5_000_000_000i64, "name": "z"})]);
    let e = load_error(run(&mut p, vec![r])).expect("too wide for integer");
    assert!(
        e.to_string().contains("column `id` of table `items`"),
        "{e}"
    );
    p.storage().drop_pending().expect("drop the failed package");
    // a type sluice cannot send
    pg_exec(&format!("ALTER TABLE \"{ds}\".items ADD COLUMN tag uuid"));
    let r = Resource::from_values(
        "items",
        vec![json!({"id": 3, "tag": "3f0c5f0e-0000-4000-8000-000000000000"})],
    );
    let e = load_error(run(&mut p, vec![r])).expect("uuid is not sent");
    assert!(
        e.to_string().contains("column `tag`")
            && e.to_string().contains("`uuid`")
            && e.to_string().contains("hint:"),
        "{e}"
    );
    p.storage().drop_pending().expect("drop the failed package");
    // a double into an integer column is refused, not rounded
    pg_exec(&format!(
        "CREATE TABLE \"{ds}\".ratios (id bigint, ratio integer, _dlt_load_id varchar NOT NULL, _dlt_id varchar NOT NULL)"
    ));
    let r = Resource::from_values("ratios", vec![json!({"id": 4, "ratio": 1.5})]);
    let e = load_error(run(&mut p, vec![r])).expect("1.5 does not go into integer");
    assert!(
        e.to_string().contains("column `ratio`")
            && e.to_string().contains("`int4`")
            && e.to_string().contains("double precision"),
        "{e}"
    );
    assert_eq!(count(&format!("SELECT count(*) FROM \"{ds}\".ratios")), 0);
}

#[test]
fn bad_credentials_and_closed_databases_say_what_to_fix_without_the_password() {
    let tmp = tempfile::tempdir().expect("tmp");
    let build = |url: &str| {
        Pipeline::builder("pg_bad")
            .destination(
                "postgres",
                sluice_tests::destination("postgres", json!({}), json!({"credentials": url})),
            )
            .dataset_name("sluice_pg_bad")
            .pipelines_dir(tmp.path())
            .build()
            .expect("the pipeline builds; connecting happens on run")
    };
    let data = || vec![Resource::from_values("items", vec![json!({"id": 1})])];
    // wrong password: scripts/pg-setup.sh makes role sluice_pw log in with scram-sha-256
    let e = run(
        &mut build("postgresql://sluice_pw:not-the-password@127.0.0.1:5432/test"),
        data(),
    )
    .expect_err("wrong password");
    let m = e.to_string();
    assert!(
        m.contains("cannot log in to postgresql://sluice_pw:***@127.0.0.1:5432/test")
            && m.contains("destination.postgres.credentials"),
        "{m}\n(is scripts/pg-setup.sh run? it adds the password-checked role sluice_pw)"
    );
    assert!(!m.contains("not-the-password"), "{m}");
    // the right password works (the rule above is really checked)
    let ds = dataset("pw");
    let mut good = Pipeline::builder("pg_pw")
        .destination(
            "postgres",
            sluice_tests::destination(
                "postgres",
                json!({}),
                json!({"credentials": {"host": "127.0.0.1", "port": 5432, "database": "test", "username": "sluice_pw", "password": "sluice-pw-test"}}),
            ),
        )
        .dataset_name(&ds)
        .pipelines_dir(tmp.path().join("good"))
        .build()
        .expect("pipeline");
    run(&mut good, data()).expect("the right password loads");
    // a database that does not accept connections
    pg_exec("DROP DATABASE IF EXISTS sluice_closed");
    pg_exec("CREATE DATABASE sluice_closed");
    pg_exec("ALTER DATABASE sluice_closed ALLOW_CONNECTIONS false");
    let e = run(
        &mut build("postgresql://postgres@127.0.0.1:5432/sluice_closed"),
        data(),
    )
    .expect_err("closed database");
    assert!(
        e.to_string().contains("refused the connection")
            && e.to_string()
                .contains("not currently accepting connections"),
        "{e}"
    );
    pg_exec("DROP DATABASE IF EXISTS sluice_closed");
    // nothing listens there
    let e =
        run(&mut build("postgresql://u:s3cret@127.0.0.1:1/test"), data()).expect_err("unreachable");
    assert!(
        e.to_string()
            .contains("cannot reach postgresql://u:***@127.0.0.1:1/test")
            && !e.to_string().contains("s3cret"),
        "{e}"
    );
}

/// Incremental state lives in `_dlt_pipeline_state`: a fresh working directory restores it
/// from PostgreSQL and continues where the last run stopped.
#[test]
fn state_is_restored_from_postgres_on_a_fresh_machine() {
    let ds = dataset("state");
    let rows = |from: i64, to: i64| -> Vec<Value> {
        (from..to)
            .map(|i| json!({"id": i, "updated": format!("2024-01-{:02}T00:00:00Z", i + 1)}))
            .collect()
    };
    let inc = || {
        serde_json::from_value::<sluice_sdk::IncrementalSpec>(json!({"cursor_path": "updated"}))
            .expect("spec")
    };
    let first = tempfile::tempdir().expect("tmp");
    let mut p = postgres_pipeline("pg_state", &ds, first.path());
    run(
        &mut p,
        vec![Resource::from_values("events", rows(0, 10)).incremental(inc())],
    )
    .expect("run 1");
    drop(p);
    let second = tempfile::tempdir().expect("tmp");
    let mut p = postgres_pipeline("pg_state", &ds, second.path());
    // rows 5..15: the first five are at or before the stored cursor and are not loaded again
    run(
        &mut p,
        vec![Resource::from_values("events", rows(5, 15)).incremental(inc())],
    )
    .expect("run 2");
    assert_eq!(
        pg_rows(&format!(
            "SELECT count(*)::text, count(DISTINCT id)::text FROM \"{ds}\".events"
        )),
        vec![vec![Some("15".into()), Some("15".into())]]
    );
}

/// One pipeline file, loaded into DuckDB, then into PostgreSQL by changing the destination word
/// only (the same binaries; credentials from the environment): both datasets hold the same
/// tables, columns and rows.
#[test]
fn the_same_pipeline_file_moves_from_duckdb_to_postgres_by_one_word() {
    let ds = "sample_data";
    let schema = dataset("switch");
    let tmp = tempfile::tempdir().expect("tmp");
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    std::fs::create_dir_all(tmp.path().join("sample_data")).expect("mkdir");
    for f in ["issues.jsonl", "customers.csv"] {
        std::fs::copy(
            root.join("sample_data").join(f),
            tmp.path().join("sample_data").join(f),
        )
        .expect("copy");
    }
    let file = std::fs::read_to_string(root.join("sample_data/sample_pipeline.toml"))
        .expect("pipeline file")
        .replace(
            &format!("dataset = \"{ds}\""),
            &format!("dataset = \"{schema}\""),
        );
    assert!(file.contains("destination = \"duckdb\""));
    let sluice = |data_dir: &str| {
        let mut c = std::process::Command::new(plugin_dir().join("sluice"));
        c.current_dir(tmp.path())
            .env("SLUICE_DATA_DIR", tmp.path().join(data_dir))
            // trust auth ignores the password; it is there to prove it is never printed
            .env(
                "DESTINATION__POSTGRES__CREDENTIALS",
                pg_url().replacen("://postgres@", "://postgres:never-printed@", 1),
            )
            .env_remove("SLUICE_PLUGIN_PATH")
            .args(["run", "pipeline.toml", "--progress", "none"]);
        c
    };
    std::fs::write(tmp.path().join("pipeline.toml"), &file).expect("write");
    let out = sluice("duck").output().expect("run duckdb");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    std::fs::write(
        tmp.path().join("pipeline.toml"),
        file.replace("destination = \"duckdb\"", "destination = \"postgres\""),
    )
    .expect("write");
    let out = sluice("pg").output().expect("run postgres");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "{text}");
    assert!(text.contains("loaded to destination postgres"), "{text}");
    assert!(!text.contains("never-printed"), "{text}");
    assert!(text.contains("postgresql://postgres:***@"), "{text}");
    let duck = duckdb_dump(&tmp.path().join("sample.duckdb"), &schema).expect("duckdb dataset");
    let pg = pg_dump(&schema);
    let names = |d: &sluice_tests::Dump| d.keys().cloned().collect::<Vec<_>>();
    assert_eq!(names(&duck), names(&pg));
    let mut compared = 0;
    for (table, (dcols, drows)) in &duck {
        let (pcols, prows) = &pg[table];
        let dn: Vec<&String> = dcols.iter().map(|c| &c.0).collect();
        let pn: Vec<&String> = pcols.iter().map(|c| &c.0).collect();
        assert_eq!(dn, pn, "columns of {table}");
        // rows as multisets of their data (the random row ids and load ids aside; JSON and
        // doubles compared as values)
        let norm = |rows: &Vec<BTreeMap<String, Value>>, cols: &Vec<(String, String, bool)>| {
            let mut out: Vec<String> = rows
                .iter()
                .map(|r| {
                    cols.iter()
                        .filter(|(n, _, _)| {
                            !matches!(
                                n.as_str(),
                                "_dlt_id" | "_dlt_load_id" | "_dlt_parent_id" | "_dlt_root_id"
                            )
                        })
                        .filter(|_| {
                            table != "_dlt_pipeline_state"
                                && table != "_dlt_version"
                                && table != "_dlt_loads"
                        })
                        .map(|(n, _, _)| match &r[n] {
                            Value::String(s) => serde_json::from_str::<Value>(s)
                                .ok()
                                .filter(|v| v.is_object() || v.is_array())
                                .map_or_else(|| s.clone(), |v| v.to_string()),
                            Value::Number(x) => {
                                x.as_f64().map_or_else(|| x.to_string(), |f| f.to_string())
                            }
                            other => other.to_string(),
                        })
                        .collect::<Vec<_>>()
                        .join("|")
                })
                .collect();
            out.sort();
            out
        };
        assert_eq!(drows.len(), prows.len(), "rows of {table}");
        assert_eq!(norm(drows, dcols), norm(prows, pcols), "rows of {table}");
        compared += prows.len();
    }
    assert!(compared > 300, "{compared} rows compared");
    // child rows point at their parents in PostgreSQL too
    assert_eq!(
        count(&format!("SELECT count(*) FROM \"{schema}\".issues__labels c LEFT JOIN \"{schema}\".issues p ON p._dlt_id = c._dlt_parent_id WHERE p._dlt_id IS NULL")),
        0
    );
}

/// The error of a run that did not load: the run's error, or the messages of its failed jobs
/// (a package that failed for good is reported in the load info); `None` when it loaded.
fn load_error(r: sluice::Result<sluice::pipeline::LoadInfo>) -> Option<String> {
    match r {
        Err(e) => Some(e.to_string()),
        Ok(info) => {
            let failed: Vec<String> = info
                .packages
                .iter()
                .flat_map(|p| p.failed_jobs.iter().map(|(job, m)| format!("{job}: {m}")))
                .collect();
            (!failed.is_empty()).then(|| failed.join("\n"))
        }
    }
}

/// A pipeline into the test server at `url` with destination config `config`.
fn pg_pipeline_with(name: &str, ds: &str, dir: &Path, config: Value, url: &str) -> Pipeline {
    Pipeline::builder(name)
        .destination(
            "postgres",
            sluice_tests::destination("postgres", config, json!({ "credentials": url })),
        )
        .dataset_name(ds)
        .pipelines_dir(dir)
        .build()
        .expect("pipeline")
}

/// `url` with `option` (`k=v`) added to its query.
fn with_option(url: &str, option: &str) -> String {
    format!("{url}{}{option}", if url.contains('?') { '&' } else { '?' })
}

/// The first value of the first row of `sql` run by the pipeline's destination client (its
/// session settings apply).
fn dest_one(p: &Pipeline, sql: &str) -> String {
    let batches = p.query(sql).unwrap_or_else(|e| panic!("{sql}: {e}"));
    batches[0]
        .column(0)
        .as_any()
        .downcast_ref::<arrow_array::StringArray>()
        .expect("text")
        .value(0)
        .to_string()
}

/// The destination's sessions carry the configured lock and statement timeouts (by default 5
/// minutes and 6 hours; 0 turns them off), end a session idle inside a transaction after the
/// lock timeout, and ask the server for TCP keepalives. A load waiting for a lock held by
/// another session gives up after `lock_timeout` with a retryable error that names the key,
/// commits nothing, and the next run loads the package exactly once.
#[test]
fn sessions_have_timeouts_and_keepalives_and_a_lock_wait_ends_with_a_retryable_error() {
    let ds = dataset("timeouts");
    let tmp = tempfile::tempdir().expect("tmp");
    let p = postgres_pipeline("pg_timeouts_default", &ds, &tmp.path().join("d"));
    assert_eq!(dest_one(&p, "SHOW lock_timeout"), "5min");
    assert_eq!(dest_one(&p, "SHOW statement_timeout"), "6h");
    assert_eq!(
        dest_one(&p, "SHOW idle_in_transaction_session_timeout"),
        "5min"
    );
    assert_eq!(dest_one(&p, "SHOW tcp_keepalives_idle"), "60");
    assert_eq!(dest_one(&p, "SHOW tcp_keepalives_interval"), "10");
    assert_eq!(dest_one(&p, "SHOW tcp_keepalives_count"), "6");
    let off = pg_pipeline_with(
        "pg_timeouts_off",
        &ds,
        &tmp.path().join("off"),
        json!({"lock_timeout": 0, "statement_timeout": "off"}),
        &pg_url(),
    );
    assert_eq!(dest_one(&off, "SHOW lock_timeout"), "0");
    assert_eq!(dest_one(&off, "SHOW statement_timeout"), "0");

    let mut p = pg_pipeline_with(
        "pg_timeouts",
        &ds,
        &tmp.path().join("p"),
        json!({"lock_timeout": "1s", "statement_timeout": 30}),
        &pg_url(),
    );
    assert_eq!(dest_one(&p, "SHOW statement_timeout"), "30s");
    let rows = |from: i64| -> Vec<Value> {
        (from..from + 100)
            .map(|i| json!({"id": i, "extra": i * 2}))
            .collect()
    };
    run(
        &mut p,
        vec![Resource::from_values("items", vec![json!({"id": -1})])],
    )
    .expect("first load");
    // another session holds the table (a long report query, a stuck loader)
    let holder = TableLock::hold(&ds);
    let started = std::time::Instant::now();
    let e = run(&mut p, vec![Resource::from_values("items", rows(0))])
        .expect_err("the table is held by another session");
    let waited = started.elapsed();
    holder.release();
    let msg = e.to_string();
    assert!(
        msg.contains("lock timeout") && msg.contains("lock_timeout") && msg.contains("hint:"),
        "{msg}"
    );
    assert!(e.is_retryable(), "a lock wait is worth another run: {msg}");
    assert!(
        waited < std::time::Duration::from_secs(45),
        "the load gave up after lock_timeout and its retries ({waited:?})"
    );
    // nothing of the package was committed: no new column, no rows, one load
    assert_eq!(
        count(&format!("SELECT count(*) FROM \"{ds}\".items")),
        1,
        "only the first load's row"
    );
    assert_eq!(
        count(&format!("SELECT count(*) FROM information_schema.columns WHERE table_schema = '{ds}' AND table_name = 'items' AND column_name = 'extra'")),
        0
    );
    // the next run (the lock is free) loads the package exactly once
    run(&mut p, vec![Resource::from_values("items", rows(0))]).expect("the next run");
    assert_eq!(
        pg_rows(&format!(
            "SELECT count(*)::text, count(DISTINCT id)::text, count(extra)::text FROM \"{ds}\".items"
        )),
        vec![vec![Some("101".into()), Some("101".into()), Some("100".into())]]
    );
}

/// A TCP proxy to the test server that forwards until a client has sent `after` bytes past the
/// start of a `COPY`, then stops forwarding (a network blackhole: both sides' sockets stay
/// open, nothing passes, new connections are accepted and never answered) until `heal()`,
/// which closes every connection it held (as a network that comes back does: the server's
/// next packet to the dead client is refused) and forwards normally from then on.
struct BlackholeProxy {
    port: u16,
    /// 0 forwarding, 1 blackhole, 2 healed.
    mode: Arc<std::sync::atomic::AtomicU8>,
    held: Arc<std::sync::Mutex<Vec<std::net::TcpStream>>>,
}

impl BlackholeProxy {
    fn start(after: usize) -> Self {
        use std::io::{Read, Write};
        use std::net::{Shutdown, TcpListener, TcpStream};
        use std::sync::atomic::AtomicU8;
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let port = listener.local_addr().expect("addr").port();
        let upstream = proxied_url(&pg_url(), 0).1;
        let mode = Arc::new(AtomicU8::new(0));
        let held: Arc<std::sync::Mutex<Vec<TcpStream>>> = Arc::default();
        let (m, h) = (mode.clone(), held.clone());
        std::thread::spawn(move || {
            // forwards `from` to `to` while the mode allows; in a blackhole it stops reading
            // and writing and leaves both sockets to heal()
            let pump = |mut from: TcpStream,
                        mut to: TcpStream,
                        mode: Arc<AtomicU8>,
                        watch: Option<usize>| {
                std::thread::spawn(move || {
                    let mut buf = [0u8; 16 * 1024];
                    let mut tail: Vec<u8> = Vec::new();
                    let mut copied: Option<usize> = None;
                    loop {
                        if mode.load(Ordering::SeqCst) == 1 {
                            return;
                        }
                        let n = match from.read(&mut buf) {
                            Ok(0) | Err(_) => break,
                            Ok(n) => n,
                        };
                        if let Some(after) = watch {
                            if mode.load(Ordering::SeqCst) == 0 {
                                match copied.as_mut() {
                                    Some(c) => *c += n,
                                    None => {
                                        tail.extend_from_slice(&buf[..n]);
                                        if tail.windows(6).any(|w| w == b"COPY \"") {
                                            copied = Some(0);
                                        }
                                        let keep = tail.len().saturating_sub(8);
                                        tail.drain(..keep);
                                    }
                                }
                                if copied.is_some_and(|c| c >= after) {
                                    mode.store(1, Ordering::SeqCst);
                                }
                            }
                        }
                        if mode.load(Ordering::SeqCst) == 1 {
                            return;
                        }
                        if to.write_all(&buf[..n]).is_err() {
                            break;
                        }
                    }
                    let _ = to.shutdown(Shutdown::Both);
                    let _ = from.shutdown(Shutdown::Both);
                });
            };
            for client in listener.incoming() {
                let Ok(client) = client else { continue };
                if m.load(Ordering::SeqCst) == 1 {
                    // accepted, never answered
                    h.lock().expect("held").push(client);
                    continue;
                }
                let Ok(server) = TcpStream::connect(&upstream) else {
                    continue;
                };
                {
                    let mut held = h.lock().expect("held");
                    held.push(client.try_clone().expect("clone"));
                    held.push(server.try_clone().expect("clone"));
                }
                let c2 = client.try_clone().expect("clone");
                let s2 = server.try_clone().expect("clone");
                pump(client, server, m.clone(), Some(after));
                pump(s2, c2, m.clone(), None);
            }
        });
        Self { port, mode, held }
    }

    fn blackholed(&self) -> bool {
        self.mode.load(Ordering::SeqCst) == 1
    }

    fn heal(&self) {
        self.mode.store(2, Ordering::SeqCst);
        for s in self.held.lock().expect("held").drain(..) {
            let _ = s.shutdown(std::net::Shutdown::Both);
        }
    }
}

impl Drop for BlackholeProxy {
    /// A failed test heals too: the server session behind a dark connection would otherwise
    /// wait for its client (and hold its locks) as long as this process lives.
    fn drop(&mut self) {
        self.heal();
    }
}

/// The network path to the server goes dark in the middle of a load's COPY (a proxy stops
/// forwarding, keeping both connections open, so neither side sees an error). The run ends
/// within the configured timeouts (statement_timeout + 5 s for the statement, connect_timeout
/// for each reconnect of the host's retries) with a retryable error, nothing of the package is
/// committed, and once the network is back the next run loads every row exactly once.
#[test]
fn a_network_blackhole_mid_copy_ends_the_run_in_time_and_the_next_run_loads_once() {
    let ds = dataset("blackhole");
    let tmp = tempfile::tempdir().expect("tmp");
    let proxy = BlackholeProxy::start(256 * 1024);
    let url = with_option(&proxied_url(&pg_url(), proxy.port).0, "connect_timeout=2");
    let mut p = pg_pipeline_with(
        "pg_blackhole",
        &ds,
        tmp.path(),
        json!({"lock_timeout": "2s", "statement_timeout": "2s"}),
        &url,
    );
    let rows: Vec<Value> = (0..300_000)
        .map(|i| json!({"id": i, "v": format!("value number {i} with some padding text")}))
        .collect();
    let started = std::time::Instant::now();
    let e = run(&mut p, vec![Resource::from_values("items", rows.clone())])
        .expect_err("the network went dark");
    let took = started.elapsed();
    assert!(proxy.blackholed(), "the proxy stopped forwarding mid-COPY");
    let msg = e.to_string();
    assert!(
        e.is_retryable(),
        "a dead network is worth another run: {msg}"
    );
    assert!(
        (msg.contains("no answer from") || msg.contains("cannot connect to"))
            && msg.contains("within"),
        "{msg}"
    );
    // one statement (2 s + 5 s), four reconnects under connect_timeout (2 s) and the host's
    // backoff (7.5 s) between them
    assert!(
        took < std::time::Duration::from_secs(60),
        "the run ended within the timeouts ({took:?})"
    );
    // the network comes back; the server ends the session of the dead connection
    proxy.heal();
    assert_eq!(
        count(&format!(
            "SELECT count(*) FROM pg_catalog.pg_tables WHERE schemaname = '{ds}' AND tablename = '_dlt_loads'"
        )) + count(&format!(
            "SELECT count(*) FROM pg_catalog.pg_tables WHERE schemaname = '{ds}' AND tablename = 'items'"
        )),
        0,
        "nothing of the package was committed"
    );
    // the next run, through the proxy that forwards again
    run(&mut p, vec![Resource::from_values("items", rows)]).expect("the next run loads");
    assert_items_loaded_once(&ds, 300_000);
}

/// A package whose earlier attempt is still committing in another session (its process died
/// after sending COMMIT) with a schema change of its own: the next run takes the package's
/// lock before it reads the catalog or changes the schema, so it waits for that session, sees
/// its column and its `_dlt_loads` row, and loads nothing twice. Before, the next run altered
/// the table first: it queued behind the other session's lock and then failed with `column
/// already exists`.
#[test]
fn the_package_lock_is_taken_before_the_packages_schema_changes() {
    let ds = dataset("lock_first");
    let tmp = tempfile::tempdir().expect("tmp");
    let mut p = pg_pipeline_with(
        "pg_lock_first",
        &ds,
        tmp.path(),
        json!({"lock_timeout": "2s"}),
        &pg_url(),
    );
    run(
        &mut p,
        vec![Resource::from_values("items", vec![json!({"id": 1})])],
    )
    .expect("first load");
    // a package with a new column stays pending: the table is held by another session, so
    // the load gives up after lock_timeout
    let holder = TableLock::hold(&ds);
    run(
        &mut p,
        vec![Resource::from_values(
            "items",
            vec![json!({"id": 2, "added": 20})],
        )],
    )
    .expect_err("the table is held");
    holder.release();
    let pending = p.storage().pending().expect("pending");
    let load_id = pending
        .first()
        .cloned()
        .expect("a retryable failure keeps the package");
    // the package's earlier attempt, committing in another session: it holds the package's
    // lock, has added the column and recorded the package, and commits a moment later
    let (ready_tx, ready_rx) = std::sync::mpsc::channel();
    let other = {
        let (ds, load_id) = (ds.clone(), load_id.clone());
        std::thread::spawn(move || {
            use sqlx::Executor;
            let (rt, mut c) = session();
            rt.block_on(async {
                c.execute(sqlx::raw_sql(sqlx::AssertSqlSafe(format!(
                    "BEGIN; SELECT pg_advisory_xact_lock(hashtext('{ds}'), hashtext('{load_id}')); \
                     ALTER TABLE \"{ds}\".items ADD COLUMN added bigint; \
                     INSERT INTO \"{ds}\".items (id, added, _dlt_load_id, _dlt_id) VALUES (2, 20, '{load_id}', 'other-session-row'); \
                     INSERT INTO \"{ds}\"._dlt_loads (load_id, schema_name, status, inserted_at, schema_version_hash) VALUES ('{load_id}', 'src', 0, now(), 'h')"
                ))))
                .await
                .expect("the other attempt");
                ready_tx.send(()).expect("ready");
                tokio::time::sleep(std::time::Duration::from_millis(700)).await;
                c.execute(sqlx::raw_sql("COMMIT")).await.expect("commit");
            })
        })
    };
    ready_rx
        .recv()
        .expect("the other session holds the package");
    let loaded = p.load_pending();
    other.join().expect("other session");
    loaded.expect("the package is found committed by the other session");
    assert!(p.storage().pending().expect("pending").is_empty());
    assert_eq!(
        pg_rows(&format!(
            "SELECT string_agg(id::text || ':' || coalesce(added::text, '-'), ',' ORDER BY id) FROM \"{ds}\".items"
        )),
        vec![vec![Some("1:-,2:20".to_string())]],
        "the package's row once, from the session that committed it"
    );
    assert_eq!(
        count(&format!(
            "SELECT count(*) FROM \"{ds}\"._dlt_loads WHERE load_id = '{load_id}'"
        )),
        1
    );
}

/// Poison data: a NUL character, which PostgreSQL text (and jsonb) cannot hold. The load fails
/// with a message naming the table, the column and the fix, not a bare server error, and
/// nothing of the package is committed.
#[test]
fn a_nul_character_fails_the_load_naming_table_and_column() {
    for (tag, column, row, hint) in [
        (
            "nul_text",
            "name",
            json!({"id": 1, "name": "before\u{0}after"}),
            "NUL",
        ),
        (
            "nul_json",
            "doc",
            json!({"id": 1, "doc": {"a": "x\u{0}y"}}),
            "NUL",
        ),
    ] {
        let ds = dataset(tag);
        let tmp = tempfile::tempdir().expect("tmp");
        let mut p = postgres_pipeline(&format!("pg_{tag}"), &ds, tmp.path());
        let r = Resource::from_values("items", vec![json!({"id": 0}), row])
            .columns(json!({"doc": {"data_type": "json"}}));
        let msg =
            load_error(run(&mut p, vec![r])).expect("PostgreSQL refuses NUL in text and jsonb");
        assert!(
            msg.contains("table `items`")
                && msg.contains(&format!("column `{column}`"))
                && msg.contains(hint)
                && msg.contains("hint:"),
            "{tag}: {msg}"
        );
        assert_eq!(
            one(&format!("SELECT to_regclass('\"{ds}\".items')::text")),
            None,
            "{tag}: nothing of the package was committed"
        );
    }
}

/// Poison data: 1,700 columns in one table, over PostgreSQL's 1600. The load is refused before
/// any statement, naming the table, the first column over the limit and the fix; nothing is
/// created.
#[test]
fn seventeen_hundred_columns_fail_the_load_naming_table_and_column() {
    let ds = dataset("wide");
    let tmp = tempfile::tempdir().expect("tmp");
    let mut p = postgres_pipeline("pg_wide", &ds, tmp.path());
    let mut row = serde_json::Map::new();
    for i in 0..1700 {
        row.insert(format!("c{i:04}"), json!(i));
    }
    let msg = load_error(run(
        &mut p,
        vec![Resource::from_values("wide", vec![Value::Object(row)])],
    ))
    .expect("1,700 columns");
    assert!(
        msg.contains("table `wide`")
            && msg.contains("1600")
            && msg.contains("column `c")
            && msg.contains("hint:")
            && msg.contains("json"),
        "{msg}"
    );
    assert!(
        !msg.contains("SQLSTATE"),
        "refused before the server: {msg}"
    );
    assert_eq!(
        one(&format!("SELECT to_regclass('\"{ds}\".wide')::text")),
        None
    );
}

/// `sslmode` is honoured against the machine's server (Debian's PostgreSQL has `ssl = on` with
/// a self-signed certificate for `localhost`): `require` loads over TLS; `verify-full` with the
/// server's certificate as `sslrootcert` to 127.0.0.1 (a name the certificate does not hold)
/// and `verify-ca` without a root certificate are refused with the fix (TLS, not "cannot
/// reach"); `disable`, `allow` and `prefer` to this machine talk without TLS (the loopback fast
/// path; before, an explicit `prefer` paid for TLS). A server without TLS refuses `require`
/// with the fix.
#[test]
fn sslmode_is_honoured_with_tls_where_asked_and_the_loopback_fast_path_kept() {
    let ds = dataset("tls");
    let tmp = tempfile::tempdir().expect("tmp");
    let tls_of = |name: &str, mode: &str| -> Result<String, String> {
        let p = pg_pipeline_with(
            name,
            &ds,
            &tmp.path().join(name),
            json!({}),
            &with_option(&pg_url(), mode),
        );
        p.query(
            "SELECT ssl::text FROM pg_catalog.pg_stat_ssl WHERE pid = pg_catalog.pg_backend_pid()",
        )
        .map(|b| {
            b[0].column(0)
                .as_any()
                .downcast_ref::<arrow_array::StringArray>()
                .expect("text")
                .value(0)
                .to_string()
        })
        .map_err(|e| e.to_string())
    };
    for mode in ["sslmode=disable", "sslmode=allow", "sslmode=prefer"] {
        assert_eq!(
            tls_of("pg_tls_plain", mode).as_deref(),
            Ok("false"),
            "{mode} to this machine talks without TLS"
        );
    }
    let server_tls = one("SHOW ssl").as_deref() == Some("on");
    if !server_tls {
        let e = tls_of("pg_tls_require", "sslmode=require").expect_err("no TLS on the server");
        assert!(
            e.contains("TLS") && e.contains("hint:") && e.contains("sslmode"),
            "{e}"
        );
        return;
    }
    assert_eq!(
        tls_of("pg_tls_require", "sslmode=require").as_deref(),
        Ok("true")
    );
    // a load over TLS
    let mut p = pg_pipeline_with(
        "pg_tls_load",
        &ds,
        &tmp.path().join("load"),
        json!({}),
        &with_option(&pg_url(), "sslmode=require"),
    );
    run(
        &mut p,
        vec![Resource::from_values("items", vec![json!({"id": 1})])],
    )
    .expect("a load over TLS");
    assert_items_loaded_once(&ds, 1);
    // the server's own (self-signed) certificate as the root: its name is checked
    let cert = one("SHOW ssl_cert_file").expect("ssl_cert_file");
    if std::fs::metadata(&cert).is_ok() {
        let e = tls_of(
            "pg_tls_full",
            &format!("sslmode=verify-full&sslrootcert={cert}"),
        )
        .expect_err("the certificate names localhost, not 127.0.0.1");
        assert!(
            e.contains("TLS with") && e.contains("verify-full") && e.contains("hint:"),
            "{e}"
        );
        assert!(!e.contains("cannot reach"), "{e}");
    }
    let e = tls_of("pg_tls_unknown", "sslmode=verify-ca")
        .expect_err("a self-signed certificate without sslrootcert");
    assert!(e.contains("TLS with") && e.contains("sslrootcert"), "{e}");
    let e = tls_of("pg_tls_bad", "sslmode=always").expect_err("not a mode");
    assert!(e.contains("sslmode `always`"), "{e}");
}

/// Two rows of one primary key in one upsert load. dlt 1.31 fails on PostgreSQL: both rows get
/// the key hash as `_dlt_id`, which is UNIQUE (`create_indexes`, the default), and the insert
/// into its staging table violates it. sluice fails too, before the merge, naming the table,
/// the key and the fix, and commits nothing; the named fix (delete-insert with dedup_sort)
/// loads one row. With `create_indexes = false` sluice loads what dlt loads: both rows of a
/// new key, and a MERGE error (with the same fix) for two rows of a key the table holds.
#[test]
fn upsert_with_a_repeated_key_in_one_load_fails_as_dlt_does_naming_key_and_fix() {
    let upsert = json!({"disposition": "merge", "strategy": "upsert"});
    let items = |rows: Vec<Value>, wd: &Value| {
        Resource::from_values("items", rows)
            .write_disposition(wd.clone())
            .primary_key(["id"])
    };
    let twice = || vec![json!({"id": 1, "v": "a"}), json!({"id": 1, "v": "b"})];

    // a new key, twice
    let ds = dataset("upsert_dup");
    let tmp = tempfile::tempdir().expect("tmp");
    let mut p = postgres_pipeline("pg_upsert_dup", &ds, tmp.path());
    let e = load_error(run(&mut p, vec![items(twice(), &upsert)])).expect("must fail");
    assert!(e.contains("table `items`"), "{e}");
    assert!(
        e.contains("2 rows of this load have the same primary key (`id`)"),
        "{e}"
    );
    assert!(e.contains(r#"{"id" : 1}"#), "{e}");
    assert!(
        e.contains("delete-insert") && e.contains("dedup_sort"),
        "{e}"
    );
    assert_eq!(
        count(&format!(
            "SELECT count(*) FROM pg_tables WHERE schemaname = '{ds}' AND tablename = 'items'"
        )),
        0,
        "nothing committed, not even the table"
    );

    // a key the table holds, twice
    let ds = dataset("upsert_dup_old");
    let tmp = tempfile::tempdir().expect("tmp");
    let mut p = postgres_pipeline("pg_upsert_dup_old", &ds, tmp.path());
    run(
        &mut p,
        vec![items(vec![json!({"id": 1, "v": "x"})], &upsert)],
    )
    .expect("first load");
    let e = load_error(run(&mut p, vec![items(twice(), &upsert)])).expect("must fail");
    assert!(
        e.contains("table `items`") && e.contains(r#"{"id" : 1}"#),
        "{e}"
    );
    assert_eq!(
        pg_rows(&format!("SELECT v FROM \"{ds}\".items")),
        vec![vec![Some("x".to_string())]]
    );

    // the fix: delete-insert keeps one row per key, dedup_sort chooses it
    let ds = dataset("upsert_dup_fix");
    let tmp = tempfile::tempdir().expect("tmp");
    let mut p = postgres_pipeline("pg_upsert_dup_fix", &ds, tmp.path());
    let r = items(
        twice(),
        &json!({"disposition": "merge", "strategy": "delete-insert"}),
    )
    .columns(json!({"v": {"dedup_sort": "desc"}}));
    run(&mut p, vec![r]).expect("delete-insert");
    assert_eq!(
        pg_rows(&format!("SELECT id::text, v FROM \"{ds}\".items")),
        vec![vec![Some("1".to_string()), Some("b".to_string())]]
    );

    // without UNIQUE constraints: both rows of a new key (as dlt, and as on DuckDB); a MERGE
    // error for a key the table holds (dlt: "MERGE command cannot affect row a second time")
    let ds = dataset("upsert_dup_noidx");
    let tmp = tempfile::tempdir().expect("tmp");
    let mut p = pg_pipeline_with(
        "pg_upsert_dup_noidx",
        &ds,
        tmp.path(),
        json!({"create_indexes": false}),
        &pg_url(),
    );
    run(&mut p, vec![items(twice(), &upsert)]).expect("both rows of a new key");
    assert_eq!(
        pg_rows(&format!(
            "SELECT string_agg(v, ',' ORDER BY v), count(DISTINCT _dlt_id)::text FROM \"{ds}\".items WHERE id = 1"
        )),
        vec![vec![Some("a,b".to_string()), Some("1".to_string())]]
    );
    run(
        &mut p,
        vec![items(vec![json!({"id": 1, "v": "c"})], &upsert)],
    )
    .expect("update");
    assert_eq!(
        pg_rows(&format!(
            "SELECT string_agg(v, ',' ORDER BY v) FROM \"{ds}\".items"
        )),
        vec![vec![Some("c,c".to_string())]],
        "both rows of the key updated, as dlt does"
    );
    let e = load_error(run(&mut p, vec![items(twice(), &upsert)])).expect("must fail");
    assert!(
        e.contains("SQLSTATE 21000") && e.contains("delete-insert"),
        "{e}"
    );
}
