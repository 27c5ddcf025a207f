//! The DuckDB destination's configuration (`[destination.duckdb]`).

use serde::Deserialize;

/// Configuration keys of the DuckDB destination (see `sluice-plugin.toml`).
#[derive(Debug, Clone, Default, Deserialize)]
pub struct DuckDbConfig {
    /// Path of the database file; default `<pipeline_name>.duckdb` in the working directory.
    #[serde(default)]
    pub credentials: Option<String>,
    /// `truncate-and-insert` (default) or `insert-from-staging`.
    #[serde(default)]
    pub replace_strategy: Option<String>,
    /// Staging dataset name layout, `%s` = dataset name (default `%s_staging`).
    #[serde(default)]
    pub staging_dataset_name_layout: Option<String>,
    /// DuckDB threads.
    #[serde(default)]
    pub threads: Option<u32>,
    /// DuckDB's memory limit (`SET memory_limit`), default `192MB`; `none` leaves DuckDB's own
    /// default (80% of RAM). Pages beyond it spill to DuckDB's temp directory.
    #[serde(default)]
    pub memory_limit: Option<String>,
    /// Keep the load files' row order in the tables (DuckDB's default); sluice turns it off
    /// unless set, for faster parallel inserts.
    #[serde(default)]
    pub preserve_insertion_order: Option<bool>,
}

/// The memory limit sluice sets unless configured: a big load then holds this much of DuckDB's
/// buffer pool instead of caching the whole inserted data, and the peak stays flat as the input
/// grows (see docs/architecture.md: on the nested benchmark 192MB costs about 5% of speed
/// against 256MB and keeps the peak at 278-300 MiB; 160MB cost 15%).
pub const DEFAULT_MEMORY_LIMIT: &str = "192MB";

impl DuckDbConfig {
    /// The database path for a pipeline.
    pub fn database_path(&self, pipeline_name: &str) -> String {
        match self.credentials.as_deref() {
            None | Some("") | Some(":pipeline:") => format!("{pipeline_name}.duckdb"),
            Some(p) => p.strip_prefix("duckdb:///").unwrap_or(p).to_string(),
        }
    }

    /// The staging dataset of `dataset`.
    pub fn staging_dataset(&self, dataset: &str) -> String {
        self.staging_dataset_name_layout
            .as_deref()
            .unwrap_or("%s_staging")
            .replace("%s", dataset)
    }
}
