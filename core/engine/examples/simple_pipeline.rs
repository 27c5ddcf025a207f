//! The "simple_pipeline" of dlt's quick start, in Rust: two records into DuckDB, replaced on
//! every run. The DuckDB destination plugin is found through the registry; the database file is
//! `$DUCKDB_DATABASE` (default `simple_pipeline.duckdb` in the current directory).
//!
//! `cargo run --release -p sluice --example simple_pipeline`

use std::sync::Arc;

use serde_json::json;
use sluice::pipeline::{CodeSource, Pipeline, Resource, RunOptions};
use sluice_registry::{PluginKind, Registry};
use sluice_sdk::resource::WriteDispositionHint;
use sluice_sdk::schema::WriteDisposition;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let data = vec![
        json!({"id": 1, "name": "Alice"}),
        json!({"id": 2, "name": "Bob"}),
    ];
    let source = CodeSource::new(
        "simple_source",
        vec![Resource::from_values("load_dict", data)],
    );
    let database = std::env::var("DUCKDB_DATABASE").unwrap_or("simple_pipeline.duckdb".into());
    let duckdb = Registry::standard()
        .load(PluginKind::Destination, "duckdb")?
        .open_destination(&json!({"credentials": database}), &json!({}))?;
    let mut pipeline = Pipeline::builder("simple_pipeline")
        .destination("duckdb", Arc::new(duckdb))
        .dataset_name("mydata")
        .build()?;
    let options = RunOptions {
        write_disposition: Some(WriteDispositionHint::Name(WriteDisposition::Replace)),
        ..Default::default()
    };
    let load_info = pipeline.run(&source, &options)?;
    println!("{load_info}");
    Ok(())
}
