//! Helpers shared by sluice's end-to-end tests: golden case files and the comparison of loaded
//! tables with dlt's expected output (placeholders as described in ../shared/golden/README.md).

pub mod compare;

/// `<target>/<profile>`: where the workspace build leaves the plugins and binaries (the test
/// executable lives in `<profile>/deps`).
pub fn plugin_dir() -> PathBuf {
    let exe = std::env::current_exe().expect("test executable");
    exe.parent()
        .and_then(Path::parent)
        .expect("profile dir")
        .to_path_buf()
}

/// A registry that finds the workspace's plugins.
pub fn registry() -> sluice_registry::Registry {
    sluice_registry::Registry::new(sluice_registry::SearchPath::from_dirs([plugin_dir()]))
}

use std::path::{Path, PathBuf};

/// A pipeline `name` loading dataset `dataset` into the DuckDB file `db` through the loaded
/// DuckDB plugin, with its working directories under `pipelines_dir`.
pub fn duckdb_pipeline(
    name: &str,
    dataset: &str,
    pipelines_dir: &Path,
    db: &Path,
) -> sluice::pipeline::Pipeline {
    sluice::pipeline::Pipeline::builder(name)
        .registry(registry())
        .destination("duckdb")
        .destination_config(
            serde_json::json!({"credentials": db.to_string_lossy()}),
            serde_json::json!({}),
        )
        .dataset_name(dataset)
        .pipelines_dir(pipelines_dir)
        .build()
        .expect("pipeline")
}

/// The folder of golden cases: `$GOLDEN_DIR`, else `../shared/golden/cases` next to the
/// workspace.
pub fn golden_dir() -> PathBuf {
    match std::env::var_os("GOLDEN_DIR") {
        Some(d) => PathBuf::from(d),
        None => Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/golden/cases"),
    }
}

/// The names of the case directories in `dir` (sorted), optionally filtered by substrings.
pub fn case_names(dir: &Path, filters: &[String]) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .map(|rd| {
            rd.filter_map(|e| e.ok())
                .filter(|e| e.path().join("input.json").exists())
                .filter_map(|e| e.file_name().to_str().map(String::from))
                .collect()
        })
        .unwrap_or_default();
    names.retain(|n| filters.is_empty() || filters.iter().any(|f| n.contains(f.as_str())));
    names.sort();
    names
}
