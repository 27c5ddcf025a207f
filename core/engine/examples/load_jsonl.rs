//! Loads a JSON lines file into a destination through a whole pipeline run (extract,
//! normalize, load): the end-to-end benchmark until the filesystem source and `sluice run` exist.
//!
//! ```text
//! load_jsonl <file.jsonl> <table> <duckdb-file | postgresql://...> [--merge KEY] [--pipelines-dir DIR] [--destination NAME] [--dataset NAME] [--memory-limit 256MB] [--set KEY=VALUE]...
//! ```
//!
//! A `postgresql://` connection string loads into the postgres destination. The dataset is
//! `bench` unless `--dataset` says otherwise.
//!
//! Prints the load info, the wall time and the peak RSS.

use std::time::Instant;

use serde_json::json;
use sluice::pipeline::{CodeSource, Pipeline, Resource, RunOptions};

sluice::use_allocator!();

fn peak_rss_mib() -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            let line = s.lines().find(|l| l.starts_with("VmHWM:"))?;
            line.split_whitespace().nth(1)?.parse::<f64>().ok()
        })
        .map_or(0.0, |kb| kb / 1024.0)
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let mut positional = Vec::new();
    let (mut merge_key, mut pipelines_dir, mut destination) = (None, None, "duckdb".to_string());
    let mut config = json!({});
    let mut dataset = "bench".to_string();
    while let Some(a) = args.next() {
        match a.as_str() {
            "--merge" => merge_key = args.next(),
            "--pipelines-dir" => pipelines_dir = args.next(),
            "--destination" => destination = args.next().ok_or("--destination needs a name")?,
            "--dataset" => dataset = args.next().ok_or("--dataset needs a name")?,
            "--memory-limit" => {
                config["memory_limit"] = json!(args.next().ok_or("--memory-limit needs a size")?)
            }
            "--set" => {
                // a destination setting: the value as JSON if it parses, else as a string
                let kv = args.next().ok_or("--set needs KEY=VALUE")?;
                let (k, v) = kv.split_once('=').ok_or("--set needs KEY=VALUE")?;
                config[k] = serde_json::from_str(v).unwrap_or_else(|_| json!(v));
            }
            _ => positional.push(a),
        }
    }
    let [file, table, database] = <[String; 3]>::try_from(positional).map_err(|_| {
        "usage: load_jsonl <file.jsonl> <table> <duckdb-file> [--merge KEY] [--pipelines-dir DIR]"
    })?;
    let started = Instant::now();
    let mut resource = Resource::from_json_file(&table, &file);
    if let Some(key) = &merge_key {
        resource = resource
            .primary_key([key.as_str()])
            .write_disposition("merge");
    }
    let source = CodeSource::new("files", vec![resource]);
    let mut secrets = json!({});
    if database.starts_with("postgresql://") {
        if destination == "duckdb" {
            destination = "postgres".into();
        }
        secrets["credentials"] = json!(database);
    } else {
        config["credentials"] = json!(database);
    }
    let plugin = sluice_registry::Registry::standard()
        .load(sluice_registry::PluginKind::Destination, &destination)?;
    let opened = plugin.open_destination(&config, &secrets)?;
    let mut builder = Pipeline::builder(&format!("load_{table}"))
        .destination(plugin.name(), std::sync::Arc::new(opened))
        .dataset_name(&dataset);
    if let Some(dir) = pipelines_dir {
        builder = builder.pipelines_dir(dir);
    }
    let mut pipeline = builder.build()?;
    let info = pipeline.run(&source, &RunOptions::default())?;
    println!("{info}");
    eprintln!(
        "wall {:.2} s, peak RSS {:.0} MiB",
        started.elapsed().as_secs_f64(),
        peak_rss_mib()
    );
    Ok(())
}
