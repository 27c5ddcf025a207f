//! Pipeline behaviour end to end through the DuckDB destination plugin: state restored from the
//! destination on a fresh machine, and the `simple_pipeline` example of the quick start.

use std::path::Path;
use std::sync::{Arc, Mutex};

use serde_json::{json, Value};
use sluice::pipeline::{CodeSource, Pipeline, Resource, RunOptions};
use sluice_destination_duckdb::duckdb;
use sluice_sdk::resource::IncrementalSpec;
use sluice_tests::{duckdb_pipeline, plugin_dir};

fn pipeline(pipelines_dir: &Path, db: &Path) -> Pipeline {
    duckdb_pipeline("events_pipeline", "events_data", pipelines_dir, db)
}

/// A resource over a shared list of events, recording the start value each run was given.
fn events(rows: Arc<Mutex<Vec<Value>>>, seen: Arc<Mutex<Vec<Option<Value>>>>) -> CodeSource {
    let spec: IncrementalSpec =
        serde_json::from_value(json!({"cursor_path": "id", "initial_value": 0})).expect("spec");
    let resource = Resource::from_fn("events", move |req| {
        let start = req.incremental.as_ref().and_then(|w| w.start_value.clone());
        seen.lock().expect("lock").push(start);
        let rows = rows.lock().expect("lock").clone();
        Box::new(rows.into_iter())
    })
    .primary_key(["id"])
    .incremental(spec);
    CodeSource::new("events_source", vec![resource])
}

fn ids(db: &Path) -> Vec<i64> {
    let con = duckdb::Connection::open(db).expect("open");
    let mut st = con
        .prepare(r#"SELECT id FROM "events_data"."events" ORDER BY id"#)
        .expect("query");
    let rows = st.query_map([], |r| r.get::<_, i64>(0)).expect("rows");
    rows.map(|r| r.expect("row")).collect()
}

#[test]
fn a_fresh_working_dir_restores_state_from_the_destination_and_continues_incrementally() {
    let tmp = tempfile::tempdir().expect("tmp");
    let db = tmp.path().join("dest.duckdb");
    let rows = Arc::new(Mutex::new(
        (1..=3)
            .map(|i| json!({"id": i, "v": format!("r{i}")}))
            .collect::<Vec<_>>(),
    ));
    let seen = Arc::new(Mutex::new(Vec::new()));
    let source = events(rows.clone(), seen.clone());

    // machine A
    let mut a = pipeline(&tmp.path().join("machine_a"), &db);
    let info = a.run(&source, &RunOptions::default()).expect("run 1");
    assert!(!info.has_failed_jobs());
    assert_eq!(ids(&db), [1, 2, 3]);
    drop(a);

    // machine B: nothing local; the source gained rows 4 and 5 (and still serves 1..3)
    rows.lock()
        .expect("lock")
        .extend((4..=5).map(|i| json!({"id": i, "v": format!("r{i}")})));
    let dir_b = tmp.path().join("machine_b");
    assert!(!dir_b.exists());
    let mut b = pipeline(&dir_b, &db);
    b.run(&source, &RunOptions::default()).expect("run 2");
    assert_eq!(ids(&db), [1, 2, 3, 4, 5], "rows 1..3 must not load twice");
    // the second run started where the first ended: the state came from the destination
    assert_eq!(
        *seen.lock().expect("lock"),
        [Some(json!(0)), Some(json!(3))]
    );
    let inc = &b.state().to_value()["sources"]["events_pipeline"]["resources"]["events"]
        ["incremental"]["id"];
    assert_eq!(inc["last_value"], json!(5), "{inc}");
    // and the restored pipeline keeps its schema: a third run with nothing new loads nothing
    drop(b);
    let mut b = pipeline(&dir_b, &db);
    b.run(&source, &RunOptions::default()).expect("run 3");
    assert_eq!(ids(&db), [1, 2, 3, 4, 5]);
}

#[test]
fn the_simple_pipeline_example_loads_and_replaces() {
    let tmp = tempfile::tempdir().expect("tmp");
    let db = tmp.path().join("simple.duckdb");
    let example = plugin_dir().join("examples").join("simple_pipeline");
    assert!(
        example.exists(),
        "{} is built by cargo test",
        example.display()
    );
    for _ in 0..2 {
        let out = std::process::Command::new(&example)
            .env("DUCKDB_DATABASE", &db)
            .env("SLUICE_PLUGIN_PATH", plugin_dir())
            .env("XDG_DATA_HOME", tmp.path().join("data"))
            .current_dir(tmp.path())
            .output()
            .expect("run the example");
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success(),
            "{stdout}{}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(
            stdout.contains("is LOADED and contains no failed jobs"),
            "{stdout}"
        );
    }
    let con = duckdb::Connection::open(&db).expect("open");
    let mut st = con
        .prepare(r#"SELECT id, name FROM "mydata"."load_dict" ORDER BY id"#)
        .expect("query");
    let rows: Vec<(i64, String)> = st
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
        .expect("rows")
        .map(|r| r.expect("row"))
        .collect();
    assert_eq!(rows, [(1, "Alice".to_string()), (2, "Bob".to_string())]);
}

#[test]
fn documents_route_to_tables_named_by_a_field_with_the_resource_hints() {
    let tmp = tempfile::tempdir().expect("tmp");
    let db = tmp.path().join("events.duckdb");
    let mut p = pipeline(&tmp.path().join("work"), &db);
    let events = vec![
        json!({"id": "1", "type": "PushEvent", "payload": {"commits": [{"sha": "a"}, {"sha": "b"}], "issue": {"user": {"login": "x"}}}}),
        json!({"id": "2", "type": "WatchEvent", "payload": {"action": "started"}}),
        json!({"id": "3", "type": "PushEvent", "payload": {"commits": [{"sha": "c"}]}}),
    ];
    let mut d = sluice_sdk::ResourceDescriptor::new("repo_events");
    d.table_name_path = Some("type".into());
    d.max_table_nesting = Some(2);
    d.primary_key = Some(sluice_sdk::KeyHint::One("id".into()));
    let r = Resource::from_values("repo_events", events).descriptor(d);
    let info = p
        .run(&CodeSource::new("github", vec![r]), &RunOptions::default())
        .expect("run");
    assert!(!info.has_failed_jobs());
    let con = duckdb::Connection::open(&db).expect("open");
    let count = |t: &str| -> i64 {
        con.query_row(
            &format!(r#"SELECT count(*) FROM "events_data"."{t}""#),
            [],
            |r| r.get(0),
        )
        .unwrap_or_else(|e| panic!("{t}: {e}"))
    };
    assert_eq!(count("push_event"), 2);
    assert_eq!(count("watch_event"), 1);
    assert_eq!(count("push_event__payload__commits"), 3);
    let schema = p.schema().expect("schema").to_value();
    assert_eq!(schema["tables"]["push_event"]["resource"], "repo_events");
    assert_eq!(
        schema["tables"]["push_event"]["columns"]["id"]["primary_key"],
        true
    );
    assert!(
        schema["tables"].get("repo_events").is_none(),
        "no table named after the resource"
    );
}

/// A JSON lines file of several read chunks: the two 4 MiB chunks reach the normalizer without
/// a copy (from the source's batch), the last, under 1 MiB, through the gathered chunks; every
/// line lands once, with its children.
#[test]
fn a_json_lines_file_of_many_chunks_loads_every_line_once() {
    let tmp = tempfile::tempdir().expect("tmp");
    let db = tmp.path().join("lines.duckdb");
    let file = tmp.path().join("lines.jsonl");
    let pad = "x".repeat(80);
    let mut text = String::new();
    let mut n: i64 = 0;
    while text.len() < (17 << 20) / 2 {
        text.push_str(&format!(
            "{{\"id\": {n}, \"pad\": \"{pad}\", \"tags\": [\"t{n}\", \"u{n}\"]}}\n"
        ));
        n += 1;
    }
    // two chunks of about 4 MiB (each at least 1 MiB) and a tail of about 0.5 MiB
    assert!(text.len() - (8 << 20) < 1 << 20);
    std::fs::write(&file, text).expect("write");
    let mut pipeline = duckdb_pipeline(
        "lines_pipeline",
        "lines_data",
        &tmp.path().join("pipelines"),
        &db,
    );
    let source = CodeSource::new("files", vec![Resource::from_json_file("lines", &file)]);
    pipeline.run(&source, &RunOptions::default()).expect("run");
    drop(pipeline);
    let con = duckdb::Connection::open(&db).expect("open");
    let (rows, distinct, sum): (i64, i64, i64) = con
        .query_row(
            r#"SELECT count(*), count(DISTINCT id), sum(id) FROM "lines_data"."lines""#,
            [],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
        )
        .expect("root");
    assert_eq!((rows, distinct, sum), (n, n, n * (n - 1) / 2));
    let (children, matched): (i64, i64) = con
        .query_row(
            r#"SELECT count(*), count(*) FILTER (WHERE c.value = 't' || p.id OR c.value = 'u' || p.id)
               FROM "lines_data"."lines__tags" c JOIN "lines_data"."lines" p ON c._dlt_parent_id = p._dlt_id"#,
            [],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .expect("children");
    assert_eq!((children, matched), (2 * n, 2 * n));
}

/// Small documents gathered before a document of over 1 MiB (which goes on without a copy) are
/// normalized before it, and those after it after it: the columns come in the order the
/// documents introduced them, and every document lands once.
#[test]
fn a_big_document_between_small_ones_keeps_their_order() {
    let tmp = tempfile::tempdir().expect("tmp");
    let db = tmp.path().join("docs.duckdb");
    let big = "b".repeat(2 << 20);
    let docs = vec![
        json!({"id": 1, "first": "a"}),
        json!({"id": 2, "first": "a"}),
        json!({"id": 3, "second": big}),
        json!({"id": 4, "third": "c"}),
    ];
    let mut pipeline = duckdb_pipeline(
        "docs_pipeline",
        "docs_data",
        &tmp.path().join("pipelines"),
        &db,
    );
    let source = CodeSource::new("docs", vec![Resource::from_values("docs", docs)]);
    pipeline.run(&source, &RunOptions::default()).expect("run");
    drop(pipeline);
    let con = duckdb::Connection::open(&db).expect("open");
    let mut st = con
        .prepare(
            "SELECT column_name FROM information_schema.columns \
             WHERE table_schema = 'docs_data' AND table_name = 'docs' ORDER BY ordinal_position",
        )
        .expect("columns");
    let columns: Vec<String> = st
        .query_map([], |r| r.get(0))
        .expect("rows")
        .map(|r| r.expect("row"))
        .collect();
    assert_eq!(
        columns,
        ["id", "first", "_dlt_load_id", "_dlt_id", "second", "third"],
        "columns in the order the documents introduced them"
    );
    let (rows, second_len): (i64, i64) = con
        .query_row(
            r#"SELECT count(*), max(length(second)) FROM "docs_data"."docs""#,
            [],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .expect("rows");
    assert_eq!((rows, second_len), (4, 2 << 20));
}

/// A loaded package keeps its manifest (jobs, rows, sizes) and schema; its job files are
/// deleted unless `delete_completed_jobs(false)`, and a pending package always keeps them.
#[test]
fn a_loaded_package_deletes_its_job_files_unless_told_to_keep_them() {
    use sluice::pipeline::LoadStorage;
    let tmp = tempfile::tempdir().expect("tmp");
    let db = tmp.path().join("jobs.duckdb");
    let source = || {
        CodeSource::new(
            "jobs_source",
            vec![Resource::from_values(
                "items",
                (0..50)
                    .map(|i| json!({"id": i, "tags": ["a", "b"]}))
                    .collect(),
            )],
        )
    };
    for keep in [false, true] {
        let name = format!("jobs_pipeline_{keep}");
        let mut p = Pipeline::builder(&name)
            .destination(
                "duckdb",
                sluice_tests::destination(
                    "duckdb",
                    json!({"credentials": db.to_string_lossy()}),
                    json!({}),
                ),
            )
            .dataset_name(&name)
            .pipelines_dir(tmp.path().join("pipelines"))
            .delete_completed_jobs(!keep)
            .build()
            .expect("pipeline");
        p.run(&source(), &RunOptions::default()).expect("run");
        let loaded = p.storage().loaded().expect("loaded");
        assert_eq!(loaded.len(), 1, "one loaded package");
        let dir = p.storage().loaded_dir(&loaded[0]);
        let manifest = LoadStorage::read_manifest(&dir).expect("manifest");
        assert!(dir.join("schema.json").is_file());
        assert_eq!(
            manifest.jobs.len(),
            2,
            "items and items__tags: {:?}",
            manifest.jobs
        );
        assert_eq!(
            manifest.rows.get("items__tags").copied(),
            Some(100),
            "{:?}",
            manifest.rows
        );
        assert_eq!(manifest.jobs_deleted, !keep);
        assert_eq!(dir.join("jobs").exists(), keep, "jobs folder of {name}");
        if keep {
            for j in &manifest.jobs {
                let file = dir.join("jobs").join(j.path.file_name().expect("name"));
                assert_eq!(std::fs::metadata(&file).expect("job file").len(), j.bytes);
            }
        }
    }
}

/// Typed Arrow tables get `_dlt_id` / `_dlt_load_id` only when asked (dlt's
/// `normalize.parquet_normalizer.add_dlt_id` / `add_dlt_load_id`); a table that has them keeps
/// getting them, so its NOT NULL columns stay complete when the option is turned off again.
#[test]
fn arrow_tables_get_dlt_columns_only_when_asked_and_keep_them() {
    use arrow_array::{Int64Array, RecordBatch};
    use arrow_schema::{DataType, Field, Schema};
    use sluice::pipeline::ArrowOptions;
    let tmp = tempfile::tempdir().expect("tmp");
    let db = tmp.path().join("arrow.duckdb");
    let schema = Arc::new(Schema::new(vec![Field::new("n", DataType::Int64, false)]));
    let batch = |from: i64| {
        RecordBatch::try_new(
            schema.clone(),
            vec![Arc::new(Int64Array::from_iter_values(from..from + 3))],
        )
        .expect("batch")
    };
    let run = |table: &str, from: i64, options: ArrowOptions| {
        let mut p = Pipeline::builder("arrow_pipeline")
            .destination(
                "duckdb",
                sluice_tests::destination(
                    "duckdb",
                    json!({"credentials": db.to_string_lossy()}),
                    json!({}),
                ),
            )
            .dataset_name("arrow_data")
            .pipelines_dir(tmp.path().join("pipelines"))
            .arrow_options(options)
            .build()
            .expect("pipeline");
        let source = CodeSource::new(
            "arrow",
            vec![Resource::from_batches(
                table,
                schema.clone(),
                vec![batch(from)],
            )],
        );
        p.run(&source, &RunOptions::default()).expect("run");
    };
    let columns = |table: &str| -> Vec<String> {
        let con = duckdb::Connection::open(&db).expect("open");
        let mut st = con
            .prepare("SELECT column_name FROM information_schema.columns WHERE table_schema = 'arrow_data' AND table_name = ? ORDER BY ordinal_position")
            .expect("columns");
        st.query_map([table], |r| r.get(0))
            .expect("rows")
            .map(|r| r.expect("row"))
            .collect()
    };
    run("plain", 0, ArrowOptions::default());
    assert_eq!(columns("plain"), ["n"], "dlt's default: no system columns");
    let on = ArrowOptions {
        add_dlt_id: true,
        add_dlt_load_id: true,
    };
    run("traced", 0, on);
    assert_eq!(columns("traced"), ["n", "_dlt_load_id", "_dlt_id"]);
    // turned off again: the table keeps getting both, every row complete
    run("traced", 3, ArrowOptions::default());
    let con = duckdb::Connection::open(&db).expect("open");
    let (rows, ids, loads): (i64, i64, i64) = con
        .query_row(
            r#"SELECT count(*), count(DISTINCT _dlt_id), count(DISTINCT _dlt_load_id) FROM "arrow_data"."traced""#,
            [],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
        )
        .expect("count");
    assert_eq!((rows, ids, loads), (6, 6, 2));
}

/// Upsert with two rows of one new key in one load on DuckDB: dlt inserts both (no dedup, no
/// UNIQUE constraint on DuckDB; spec g.4), with the one `_dlt_id` of the key; the next load of
/// the key updates both. Two rows of a key the table holds: DuckDB 2.0.0 (the version sluice
/// links, and the one the golden cases were recorded with) refuses the MERGE ("cannot affect
/// the same target row more than once"), so dlt on that DuckDB fails the same way (DuckDB
/// 2.0.1 updates both rows with one of the source rows instead).
#[test]
fn upsert_loads_both_rows_of_a_repeated_new_key_on_duckdb_as_dlt_does() {
    let tmp = tempfile::tempdir().expect("tmp");
    let db = tmp.path().join("upsert.duckdb");
    let mut p = duckdb_pipeline("upsert_dup", "upsert_data", &tmp.path().join("p"), &db);
    // the failed jobs of the load, if any
    let mut load = |rows: Vec<Value>| -> String {
        let r = Resource::from_values("items", rows)
            .write_disposition(json!({"disposition": "merge", "strategy": "upsert"}))
            .primary_key(["id"]);
        match p.run(&CodeSource::new("src", vec![r]), &RunOptions::default()) {
            Err(e) => e.to_string(),
            Ok(info) => info
                .packages
                .iter()
                .flat_map(|p| p.failed_jobs.iter().map(|(_, m)| m.clone()))
                .collect(),
        }
    };
    let rows = || -> Vec<(i64, String, String)> {
        let con = duckdb::Connection::open(&db).expect("open");
        let mut st = con
            .prepare(r#"SELECT id, v, _dlt_id FROM "upsert_data"."items" ORDER BY id, v"#)
            .expect("query");
        st.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
            .expect("rows")
            .map(|r| r.expect("row"))
            .collect()
    };
    let key1 = "z5jIxXIbUnmbKw".to_string(); // the key hash of {"id": 1} (hash_cases.json)
    assert_eq!(
        load(vec![json!({"id": 1, "v": "a"}), json!({"id": 1, "v": "b"})]),
        ""
    );
    assert_eq!(
        rows(),
        [
            (1i64, "a".to_string(), key1.clone()),
            (1i64, "b".to_string(), key1.clone())
        ]
    );
    assert_eq!(load(vec![json!({"id": 1, "v": "c"})]), "");
    assert_eq!(
        rows(),
        [
            (1i64, "c".to_string(), key1.clone()),
            (1i64, "c".to_string(), key1.clone())
        ]
    );
    assert_eq!(load(vec![json!({"id": 3, "v": "a"})]), "");
    let e = load(vec![json!({"id": 3, "v": "b"}), json!({"id": 3, "v": "c"})]);
    assert!(
        e.contains("cannot affect the same target row more than once"),
        "{e}"
    );
    assert_eq!(rows().len(), 3, "nothing of the failed load: {:?}", rows());
}

/// scd2 over typed Arrow input: `_dlt_id` is the row hash (as for JSON rows; dlt 1.31 has no
/// Arrow row hash and fails or, with add_dlt_id, gives random ids), so loading the same rows
/// again makes no new versions, and a changed row makes exactly one.
#[test]
fn scd2_over_arrow_rows_versions_only_changed_rows() {
    use arrow_array::{Int64Array, RecordBatch, StringArray};
    use arrow_schema::{DataType, Field, Schema};
    let tmp = tempfile::tempdir().expect("tmp");
    let db = tmp.path().join("scd2.duckdb");
    let schema = Arc::new(Schema::new(vec![
        Field::new("id", DataType::Int64, false),
        Field::new("v", DataType::Utf8, true),
    ]));
    let mut p = duckdb_pipeline("scd2_arrow", "scd2_data", &tmp.path().join("p"), &db);
    let mut load = |v: [&str; 3]| {
        let batch = RecordBatch::try_new(
            schema.clone(),
            vec![
                Arc::new(Int64Array::from(vec![1, 2, 3])),
                Arc::new(StringArray::from(v.to_vec())),
            ],
        )
        .expect("batch");
        let r = Resource::from_batches("items", schema.clone(), vec![batch])
            .write_disposition(json!({"disposition": "merge", "strategy": "scd2"}));
        p.run(&CodeSource::new("src", vec![r]), &RunOptions::default())
            .expect("run");
    };
    // (id, v, _dlt_id, active)
    let rows = || -> Vec<(i64, String, String, bool)> {
        let con = duckdb::Connection::open(&db).expect("open");
        let mut st = con
            .prepare(r#"SELECT id, v, _dlt_id, _dlt_valid_to IS NULL FROM "scd2_data"."items" ORDER BY id, _dlt_valid_from"#)
            .expect("query");
        st.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))
            .expect("rows")
            .map(|r| r.expect("row"))
            .collect()
    };
    load(["a", "b", "c"]);
    let first = rows();
    assert_eq!(first.len(), 3, "{first:?}");
    assert!(first.iter().all(|r| r.3), "{first:?}");
    // the row hash of {"id": 1, "v": "a"} as dlt computes it for a JSON row (hash_cases.json)
    assert_eq!(first[0].2, "lknCZL/MuP9QCg");
    load(["a", "b", "c"]);
    assert_eq!(rows(), first, "an unchanged load makes no new versions");
    load(["a", "B", "c"]);
    let after = rows();
    assert_eq!(after.len(), 4, "{after:?}");
    let two: Vec<_> = after.iter().filter(|r| r.0 == 2).collect();
    assert_eq!(two.len(), 2, "{after:?}");
    assert!(
        !two[0].3 && two[0].1 == "b",
        "the old version retired: {after:?}"
    );
    assert!(
        two[1].3 && two[1].1 == "B",
        "one new active version: {after:?}"
    );
    assert!(after.iter().filter(|r| r.0 != 2).all(|r| r.3), "{after:?}");
}

/// A dataset whose decimal column sluice created before it followed dlt's default scale
/// (a hint `precision: 10` without a scale made DECIMAL(10,0); it makes DECIMAL(10,9) now, as
/// dlt does): continued with the hint as written then, and with `scale: 0` written out, the
/// migration docs/migrations.md describes.
#[test]
fn a_decimal_column_of_the_old_default_scale_continues_with_its_scale_written_out() {
    let tmp = tempfile::tempdir().expect("tmp");
    let db = tmp.path().join("pay.duckdb");
    let work = tmp.path().join("work");
    let source = |hint: Value, rows: Vec<Value>| {
        let mut d = sluice_sdk::ResourceDescriptor::new("payments");
        d.columns = serde_json::from_value(json!({ "amount": hint })).expect("columns");
        CodeSource::new(
            "pay",
            vec![Resource::from_values("payments", rows).descriptor(d)],
        )
    };
    let column_type = || -> String {
        let con = duckdb::Connection::open(&db).expect("open");
        con.query_row(
            "SELECT data_type FROM information_schema.columns WHERE table_schema = 'events_data' \
             AND table_name = 'payments' AND column_name = 'amount'",
            [],
            |r| r.get(0),
        )
        .expect("column")
    };
    let amounts = || -> Vec<String> {
        let con = duckdb::Connection::open(&db).expect("open");
        let mut st = con
            .prepare(r#"SELECT CAST(amount AS VARCHAR) FROM "events_data"."payments" ORDER BY id"#)
            .expect("query");
        let rows = st.query_map([], |r| r.get::<_, String>(0)).expect("rows");
        rows.map(|r| r.expect("row")).collect()
    };
    // the dataset as the earlier sluice left it: DECIMAL(10,0), and a stored schema whose column
    // has the precision it was given and no scale
    let mut p = pipeline(&work, &db);
    p.run(
        &source(
            json!({"data_type": "decimal", "precision": 10, "scale": 0}),
            vec![json!({"id": 1, "amount": 12345})],
        ),
        &RunOptions::default(),
    )
    .expect("first run");
    drop(p);
    let schemas = work.join("events_pipeline").join("schemas");
    for entry in std::fs::read_dir(&schemas).expect("schemas") {
        let path = entry.expect("entry").path();
        let mut schema: Value =
            serde_json::from_slice(&std::fs::read(&path).expect("read")).expect("json");
        if let Some(c) = schema["tables"]["payments"]["columns"]["amount"].as_object_mut() {
            c.remove("scale");
        }
        std::fs::write(&path, serde_json::to_vec_pretty(&schema).expect("json")).expect("write");
    }
    assert_eq!(column_type(), "DECIMAL(10,0)");
    // continued with the hint as it was written then: the column means DECIMAL(10,9) now; a
    // value that does not fit fails the run in normalize, naming it; nothing is loaded
    let mut p = pipeline(&work, &db);
    let old_hint =
        |rows: Vec<Value>| source(json!({"data_type": "decimal", "precision": 10}), rows);
    let e = p
        .run(
            &old_hint(vec![
                json!({"id": 2, "amount": 2.5}),
                json!({"id": 3, "amount": 67890}),
            ]),
            &RunOptions::default(),
        )
        .expect_err("67890 does not fit DECIMAL(10,9)")
        .to_string();
    assert!(
        e.contains("value `67890` does not fit column `amount` of type decimal(10,9)"),
        "{e}"
    );
    assert!(p.storage().pending().expect("pending").is_empty());
    assert_eq!(amounts(), ["12345"]);
    // values that fit load, and the destination's DECIMAL(10,0) keeps them rounded, as before
    p.run(
        &old_hint(vec![json!({"id": 2, "amount": 2.5})]),
        &RunOptions::default(),
    )
    .expect("a value that fits");
    assert_eq!(amounts(), ["12345", "3"]);
    drop(p);
    // with the scale written out: the stored column keeps DECIMAL(10,0), no ALTER
    let mut p = pipeline(&work, &db);
    let info = p
        .run(
            &source(
                json!({"data_type": "decimal", "precision": 10, "scale": 0}),
                vec![
                    json!({"id": 4, "amount": 67890}),
                    json!({"id": 5, "amount": 7.4}),
                ],
            ),
            &RunOptions::default(),
        )
        .expect("run with scale 0");
    assert!(!info.has_failed_jobs());
    assert_eq!(amounts(), ["12345", "3", "67890", "7"]);
    assert_eq!(column_type(), "DECIMAL(10,0)");
    assert_eq!(
        p.schema().expect("schema").to_value()["tables"]["payments"]["columns"]["amount"]["scale"],
        0
    );
}

#[test]
fn names_one_identifier_on_the_destination_are_refused_before_loading_and_the_package_waits() {
    // `direct` naming keeps `Id` and `id` apart; DuckDB's identifiers are case-insensitive, so
    // dlt's `verify_schema_capabilities` refuses the schema: nothing is created, the package
    // stays pending, and the error names both columns and the fix
    let tmp = tempfile::tempdir().expect("tmp");
    let db = tmp.path().join("dest.duckdb");
    let work = tmp.path().join("pipelines");
    let build = || {
        Pipeline::builder("cased_pipeline")
            .destination(
                "duckdb",
                sluice_tests::destination(
                    "duckdb",
                    json!({"credentials": db.to_string_lossy()}),
                    json!({}),
                ),
            )
            .dataset_name("cased_data")
            .pipelines_dir(&work)
            .naming(sluice::naming::NamingKind::Direct)
            .build()
            .expect("pipeline")
    };
    let source = CodeSource::new(
        "cased_source",
        vec![Resource::from_values(
            "people",
            vec![json!({"Id": 1, "id": 2, "name": "a"})],
        )],
    );
    let mut p = build();
    let e = p
        .run(&source, &RunOptions::default())
        .expect_err("Id and id are one column on DuckDB")
        .to_string();
    assert!(
        e.contains("columns of table `people` `Id` and `id` are one identifier `id` on this destination (case-insensitive)")
            && e.contains("drop-pending-packages"),
        "{e}"
    );
    assert_eq!(p.storage().pending().expect("pending").len(), 1);
    let con = duckdb::Connection::open(&db).expect("open");
    let tables: i64 = con
        .query_row(
            "SELECT count(*) FROM information_schema.tables WHERE table_name = 'people'",
            [],
            |r| r.get(0),
        )
        .expect("count");
    assert_eq!(tables, 0, "nothing of the refused package was created");
}
