//! The pipeline definition file: TOML (JSON and YAML accepted), naming the pipeline, the
//! destination, the dataset and the source plugin with its config, so a pipeline runs with no
//! Rust code.
//!
//! ```toml
//! [pipeline]
//! name = "sample"
//! destination = "duckdb"
//! dataset = "sample_data"
//!
//! [source]
//! name = "filesystem"        # the source plugin
//! [source.config]            # explicit values; the rest comes from .sluice/ and the environment
//! bucket_url = "sample_data"
//!
//! [destination.config]       # optional
//! credentials = "sample.duckdb"
//! ```

use std::path::{Path, PathBuf};

use serde::Deserialize;
use serde_json::Value;

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PipelineFile {
    pub pipeline: PipelineSection,
    pub source: SourceSection,
    #[serde(default)]
    pub destination: DestinationSection,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PipelineSection {
    pub name: String,
    #[serde(default)]
    pub destination: Option<String>,
    #[serde(default, alias = "dataset_name")]
    pub dataset: Option<String>,
    #[serde(default)]
    pub pipelines_dir: Option<PathBuf>,
    #[serde(default)]
    pub dev_mode: bool,
    /// Delete a loaded package's job files (default true; env LOAD__DELETE_COMPLETED_JOBS wins).
    #[serde(default)]
    pub delete_completed_jobs: Option<bool>,
    /// Add a random `_dlt_id` to typed Arrow tables (default false, as dlt; env
    /// NORMALIZE__PARQUET_NORMALIZER__ADD_DLT_ID wins).
    #[serde(default)]
    pub add_dlt_id: Option<bool>,
    /// Add `_dlt_load_id` to typed Arrow tables (default false, as dlt; env
    /// NORMALIZE__PARQUET_NORMALIZER__ADD_DLT_LOAD_ID wins).
    #[serde(default)]
    pub add_dlt_load_id: Option<bool>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SourceSection {
    #[serde(alias = "plugin")]
    pub name: String,
    /// The config section (default: the plugin name).
    #[serde(default)]
    pub section: Option<String>,
    /// Resources to run (default: the source's selected ones).
    #[serde(default)]
    pub resources: Option<Vec<String>>,
    /// Write every resource this way instead of its own (`append`, `replace`, `merge`, `skip`,
    /// or dlt's table form `{ disposition = "merge", strategy = "scd2" }`); checked when the
    /// run starts.
    #[serde(default)]
    pub write_disposition: Option<Value>,
    #[serde(default)]
    pub config: Value,
    #[serde(default)]
    pub secrets: Value,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DestinationSection {
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub config: Value,
    #[serde(default)]
    pub secrets: Value,
}

/// Reads and parses a pipeline file; a syntax error names the file, line and column.
pub fn read(path: &Path) -> Result<PipelineFile, String> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| format!("cannot read pipeline file `{}`: {e}", path.display()))?;
    parse(&text, path)
}

fn line_col(text: &str, offset: usize) -> (usize, usize) {
    let before = &text[..offset.min(text.len())];
    let line = before.matches('\n').count() + 1;
    let col = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
    (line, col)
}

pub fn parse(text: &str, path: &Path) -> Result<PipelineFile, String> {
    let ext = path
        .extension()
        .and_then(|e| e.to_str())
        .unwrap_or("toml")
        .to_ascii_lowercase();
    let shown = path.display();
    match ext.as_str() {
        "json" => serde_json::from_str(text).map_err(|e| {
            format!(
                "pipeline file `{shown}`, line {}, column {}: {e}",
                e.line(),
                e.column()
            )
        }),
        "yaml" | "yml" => serde_yaml::from_str(text).map_err(|e| match e.location() {
            Some(l) => format!(
                "pipeline file `{shown}`, line {}, column {}: {e}",
                l.line(),
                l.column()
            ),
            None => format!("pipeline file `{shown}`: {e}"),
        }),
        _ => toml::from_str(text).map_err(|e| {
            let msg = e.message().to_string();
            match e.span() {
                Some(span) => {
                    let (line, col) = line_col(text, span.start);
                    format!("pipeline file `{shown}`, line {line}, column {col}: {msg}")
                }
                None => format!("pipeline file `{shown}`: {msg}"),
            }
        }),
    }
}

/// The pipeline file to run when none is given: the only `*pipeline*.toml|json|yaml` in `dir`.
pub fn find_default(dir: &Path) -> Result<PathBuf, String> {
    let mut found: Vec<PathBuf> = std::fs::read_dir(dir)
        .map_err(|e| format!("cannot list `{}`: {e}", dir.display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            let name = p.file_name().and_then(|n| n.to_str()).unwrap_or("");
            name.contains("pipeline")
                && [".toml", ".json", ".yaml", ".yml"]
                    .iter()
                    .any(|x| name.ends_with(x))
        })
        .collect();
    found.sort();
    match found.len() {
        1 => Ok(found.remove(0)),
        0 => Err(format!(
            "no pipeline file in `{}`: pass one (`sluice run my_pipeline.toml`) or create one with `sluice init <source> <destination>`",
            dir.display()
        )),
        _ => Err(format!(
            "several pipeline files in `{}` ({}): pass the one to run",
            dir.display(),
            found
                .iter()
                .filter_map(|p| p.file_name().and_then(|n| n.to_str()))
                .collect::<Vec<_>>()
                .join(", ")
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn malformed_files_name_line_and_column() {
        let e = parse(
            "[pipeline]\nname = \"x\"\ndestination = duckdb\n",
            Path::new("p.toml"),
        )
        .expect_err("bad toml");
        assert!(
            e.contains("p.toml") && e.contains("line 3, column 15"),
            "{e}"
        );
        let e =
            parse("{\"pipeline\": {\"name\": \"x\",}}", Path::new("p.json")).expect_err("bad json");
        assert!(e.contains("line 1, column 27"), "{e}");
        let e = parse(
            "pipeline:\n  name: x\n  bogus: 1\nsource:\n  name: y\n",
            Path::new("p.yaml"),
        )
        .expect_err("unknown key");
        assert!(e.contains("line 3") && e.contains("bogus"), "{e}");
        let ok = parse(
            "[pipeline]\nname = \"x\"\n[source]\nname = \"filesystem\"\n[source.config]\nbucket_url = \"d\"\n",
            Path::new("p.toml"),
        )
        .expect("ok");
        assert_eq!(ok.source.config["bucket_url"], "d");
    }
}
