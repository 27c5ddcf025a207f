//! A pipeline run in its own process, for the reliability tests (which kill it with SIGKILL
//! at random points and then rerun it).
//!
//! `crash_child <mode: append|replace|merge> <pipelines dir> <duckdb file> <plugin dir> <rows> [dataset]`
//!
//! A `postgresql://` URL instead of the DuckDB file loads into that server, into `dataset`.
//!
//! The source emits batch `k`, where `k` is the resource state `next_batch` (0 at first), and
//! stores `next_batch = k + 1`: the state is committed only with a completed load, so every
//! batch is loaded exactly once whatever happens. Prints `{"pending_only": bool, "batch": k}`.

use std::path::PathBuf;
use std::sync::Arc;

use serde_json::{json, Value};
use sluice::pipeline::{CodeSource, Pipeline, Resource, RunOptions};
use sluice_registry::{Registry, SearchPath};
use sluice_tests::open_destination;

fn batch_of(req: &sluice_sdk::ResourceRequest) -> u64 {
    req.state
        .get("next_batch")
        .and_then(Value::as_u64)
        .unwrap_or(0)
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.len() < 4 {
        eprintln!("usage: crash_child <mode> <pipelines_dir> <db> <plugin_dir> <rows>");
        std::process::exit(2);
    }
    let mode = args[1].clone();
    if mode == "hold-lock" {
        // keeps the database open (and locked) for <rows> seconds
        let _con = sluice_destination_duckdb::duckdb::Connection::open(&args[2]).expect("open");
        std::thread::sleep(std::time::Duration::from_secs(
            args[3].parse().unwrap_or(20),
        ));
        return;
    }
    let rows: u64 = args.get(5).and_then(|r| r.parse().ok()).unwrap_or(10_000);
    if mode == "jsonl-file" {
        // loads one JSON lines file: `crash_child jsonl-file <pipelines dir> <db> <plugin dir> <file>`
        let registry = Registry::new(SearchPath::from_dirs([PathBuf::from(&args[4])]));
        let mut p = Pipeline::builder("jsonl")
            .destination(
                "duckdb",
                open_destination(
                    &registry,
                    "duckdb",
                    &json!({ "credentials": args[3] }),
                    &json!({}),
                )
                .expect("destination"),
            )
            .pipelines_dir(&args[2])
            .build()
            .expect("pipeline");
        let source = CodeSource::new("jsonl", vec![Resource::from_json_file("items", &args[5])]);
        if let Err(e) = p.run(&source, &RunOptions::default()) {
            eprintln!("{e:#}");
            std::process::exit(1);
        }
        return;
    }
    if mode == "hold-pipeline" {
        // opens pipeline `crash` (taking its working directory's lock), says so, and holds it
        // for <rows> seconds: `crash_child hold-pipeline <pipelines dir> <db> <plugin dir> <secs>`
        let registry = Registry::new(SearchPath::from_dirs([PathBuf::from(&args[4])]));
        let _p = Pipeline::builder("crash")
            .destination(
                "duckdb",
                open_destination(
                    &registry,
                    "duckdb",
                    &json!({ "credentials": args[3] }),
                    &json!({}),
                )
                .expect("destination"),
            )
            .pipelines_dir(&args[2])
            .build()
            .expect("pipeline");
        println!("locked");
        use std::io::Write;
        let _ = std::io::stdout().flush();
        std::thread::sleep(std::time::Duration::from_secs(rows));
        return;
    }
    let m = mode.clone();
    let db = args[3].clone();
    let resource = Resource::from_fn("items", move |req| {
        let k = batch_of(req);
        if m == "append-lock" {
            // another process takes the database while this run extracts
            if let Ok(exe) = std::env::current_exe() {
                if let Ok(child) = std::process::Command::new(exe).arg("hold-lock").arg(&db).arg("30").spawn() {
                    let _ = std::fs::write(format!("{db}.locker"), child.id().to_string());
                    std::thread::sleep(std::time::Duration::from_millis(700));
                }
            }
        }
        let m = m.clone();
        Box::new((0..rows).map(move |i| {
            let id = match m.as_str() {
                "append" | "append-lock" => k * rows + i,
                "replace" => i,
                // merge: every batch overlaps half of the previous one
                _ => k * (rows / 2) + i,
            };
            json!({"id": id, "batch": k, "v": format!("value {id} of batch {k}"), "tags": ["a", "b"]})
        }))
    })
    .with_state(|req| Some(json!({ "next_batch": batch_of(req) + 1 })));
    let resource = match mode.as_str() {
        "append" | "append-lock" => resource,
        "replace" => resource.write_disposition("replace"),
        _ => resource.write_disposition("merge").primary_key(["id"]),
    };
    let source = Arc::new(CodeSource::new("crash", vec![resource]));
    let registry = Registry::new(SearchPath::from_dirs([PathBuf::from(&args[4])]));
    let (destination, config, secrets) = if args[3].starts_with("postgresql://") {
        ("postgres", json!({}), json!({ "credentials": args[3] }))
    } else {
        ("duckdb", json!({ "credentials": args[3] }), json!({}))
    };
    let built = open_destination(&registry, destination, &config, &secrets).and_then(|d| {
        Pipeline::builder("crash")
            .destination(destination, d)
            .dataset_name(args.get(6).map_or("data", String::as_str))
            .pipelines_dir(&args[2])
            .build()
            .map_err(|e| e.to_string())
    });
    let mut pipeline = match built {
        Ok(p) => p,
        Err(e) => {
            eprintln!("{e}");
            std::process::exit(1);
        }
    };
    let batch = pipeline
        .state()
        .resource_state("crash", "items")
        .and_then(|s| s.get("next_batch"))
        .and_then(Value::as_u64)
        .unwrap_or(0);
    let options = RunOptions {
        section: Some("crash".into()),
        ..Default::default()
    };
    match pipeline.run(source.as_ref(), &options) {
        Ok(info) => println!(
            "{}",
            json!({"pending_only": info.loaded_pending_only, "batch": batch})
        ),
        Err(e) => {
            eprintln!("{e}");
            std::process::exit(1);
        }
    }
}
