//! The DuckDB destination's configuration (`[destination.duckdb]`).
//!
//! [`DuckDbConfig`] and `sluice-plugin.toml` list the same keys with the same defaults: the
//! defaults are the constants below, and a test reads the manifest and checks both.

use serde::{Deserialize, Serialize};
use sluice_sdk::schema::ReplaceStrategy;
use sluice_sql::naming::STAGING_DATASET_NAME_LAYOUT;

/// Configuration keys of the DuckDB destination (see `sluice-plugin.toml`). A key left out
/// takes its default ([`DuckDbConfig::default`]); `null` (or `None` here) also means the
/// default, except for `credentials` and `threads`, which have none. DuckDB takes no secrets.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(default)]
pub struct DuckDbConfig {
    /// Path of the database file; default `<pipeline_name>.duckdb` in the working directory.
    pub credentials: Option<String>,
    /// `truncate-and-insert` (default) or `insert-from-staging` (`staging-optimized` is
    /// refused when the plugin opens: DuckDB has no table swap here).
    pub replace_strategy: Option<ReplaceStrategy>,
    /// Staging dataset name layout, `%s` = dataset name (default
    /// [`STAGING_DATASET_NAME_LAYOUT`], `%s_staging`).
    pub staging_dataset_name_layout: Option<String>,
    /// DuckDB threads (default: all cores).
    pub threads: Option<u32>,
    /// DuckDB's memory limit (`SET memory_limit`), default [`DEFAULT_MEMORY_LIMIT`]; `none`
    /// leaves DuckDB's own default (80% of RAM). Pages beyond it spill to DuckDB's temp
    /// directory.
    pub memory_limit: Option<String>,
    /// Keep the load files' row order in the tables (DuckDB's default); sluice turns it off
    /// unless set, for faster parallel inserts.
    pub preserve_insertion_order: Option<bool>,
    /// Rows per row group of the tables sluice writes (DuckDB's `ATTACH ... (ROW_GROUP_SIZE n)`,
    /// a multiple of 2048), default [`DEFAULT_ROW_GROUP_SIZE`]; `0` leaves DuckDB's 122880.
    pub row_group_size: Option<u64>,
    /// Longest table name (dlt's `max_identifier_length`); longer names are shortened with
    /// dlt's hash tag. Default: [`MAX_IDENTIFIER`] (dlt's DuckDB capabilities: no practical
    /// limit).
    pub max_identifier_length: Option<u64>,
    /// Longest column name (dlt's `max_column_identifier_length`), default [`MAX_IDENTIFIER`].
    pub max_column_identifier_length: Option<u64>,
}

impl Default for DuckDbConfig {
    /// Every key at its default (the manifest's `default`s).
    fn default() -> Self {
        Self {
            credentials: None,
            replace_strategy: Some(ReplaceStrategy::default()),
            staging_dataset_name_layout: Some(STAGING_DATASET_NAME_LAYOUT.to_string()),
            threads: None,
            memory_limit: Some(DEFAULT_MEMORY_LIMIT.to_string()),
            preserve_insertion_order: Some(false),
            row_group_size: Some(DEFAULT_ROW_GROUP_SIZE),
            max_identifier_length: Some(MAX_IDENTIFIER as u64),
            max_column_identifier_length: Some(MAX_IDENTIFIER as u64),
        }
    }
}

/// dlt's DuckDB identifier limit (`max_identifier_length` and `max_column_identifier_length`
/// of its capabilities): 65536, i.e. none in practice.
pub const MAX_IDENTIFIER: usize = 65536;

/// The memory limit sluice sets unless configured: a big load then holds this much of DuckDB's
/// buffer pool instead of caching the whole inserted data, and the peak stays flat as the input
/// grows (see docs/architecture.md: on the nested benchmark 192MB costs about 5% of speed
/// against 256MB and keeps the peak at 278-300 MiB; 160MB cost 15%).
pub const DEFAULT_MEMORY_LIMIT: &str = "192MB";

/// Rows per row group unless configured: a quarter of DuckDB's 122880. DuckDB's parallel insert
/// compresses and writes a row group on the thread that filled it, but a thread's share of a
/// statement smaller than a row group waits for the end, where the leftovers are merged and
/// compressed on one thread (and spill to the temp directory under `memory_limit` meanwhile): a
/// 200k-row table on two cores (100k rows per thread) was loaded on one. See
/// docs/architecture.md: nested benchmark 4.9 -> 3.45 s.
pub const DEFAULT_ROW_GROUP_SIZE: u64 = 30720;

/// DuckDB's vector size: a row group size must be a multiple of it.
const VECTOR_SIZE: u64 = 2048;

impl DuckDbConfig {
    /// The row group size to attach the database with (`None`: DuckDB's default).
    pub fn row_group_size(&self) -> sluice_sdk::Result<Option<u64>> {
        match self.row_group_size {
            None => Ok(Some(DEFAULT_ROW_GROUP_SIZE)),
            Some(0) => Ok(None),
            Some(n) if n % VECTOR_SIZE == 0 => Ok(Some(n)),
            Some(n) => Err(sluice_sdk::Error::config(format!(
                "duckdb `row_group_size` must be a multiple of {VECTOR_SIZE} (or 0 for DuckDB's default), got {n}\nhint: e.g. row_group_size = {DEFAULT_ROW_GROUP_SIZE}"
            ))),
        }
    }

    /// The configured identifier limits `(tables, columns)`, each 1..=[`MAX_IDENTIFIER`].
    pub fn identifier_lengths(&self) -> sluice_sdk::Result<(usize, usize)> {
        let check = |key: &str, v: Option<u64>| {
            match v {
            None => Ok(MAX_IDENTIFIER),
            Some(n) if (1..=MAX_IDENTIFIER as u64).contains(&n) => Ok(n as usize),
            Some(n) => Err(sluice_sdk::Error::config(format!(
                "duckdb `{key}` must be 1 to {MAX_IDENTIFIER}, got {n}\nhint: leave it unset for DuckDB's own limit"
            ))),
        }
        };
        Ok((
            check("max_identifier_length", self.max_identifier_length)?,
            check(
                "max_column_identifier_length",
                self.max_column_identifier_length,
            )?,
        ))
    }

    /// The database path for a pipeline.
    pub fn database_path(&self, pipeline_name: &str) -> String {
        match self.credentials.as_deref() {
            None | Some("") | Some(":pipeline:") => format!("{pipeline_name}.duckdb"),
            Some(p) => p.strip_prefix("duckdb:///").unwrap_or(p).to_string(),
        }
    }

    /// The staging dataset of `dataset`.
    pub fn staging_dataset(&self, dataset: &str) -> String {
        sluice_sql::naming::staging_dataset(
            self.staging_dataset_name_layout
                .as_deref()
                .unwrap_or(STAGING_DATASET_NAME_LAYOUT),
            dataset,
        )
    }
}

#[cfg(test)]
mod tests {

    use sluice_sdk::manifest::Manifest;

    use super::*;

    #[test]
    fn config_keys_agree_with_the_manifest() {
        let manifest =
            Manifest::from_toml(include_str!("../sluice-plugin.toml")).expect("manifest");
        sluice_sdk::testing::assert_config_keys::<DuckDbConfig>(&manifest.config, "config");
        assert!(
            manifest.secrets.is_empty(),
            "DuckDB takes no secrets, but sluice-plugin.toml lists {:?}",
            manifest.secrets
        );
        let defaults = DuckDbConfig::default();
        assert_eq!(defaults.row_group_size().expect("default"), Some(30720));
        assert_eq!(defaults.memory_limit.as_deref(), Some("192MB"));
        assert_eq!(defaults.staging_dataset("ds"), "ds_staging");
    }
}
