//! The DuckDB destination of sluice: tables created and evolved from the dlt schema, parquet
//! load files read by DuckDB itself (`read_parquet`), every write disposition and merge strategy
//! of dlt, and dlt's system tables, with each load package committed in one transaction.
//!
//! ```no_run
//! use sluice_sdk::{Destination, DestinationClient};
//! let dest = sluice_destination_duckdb::DuckDbDestination::new(Default::default());
//! let mut client = dest.open_client(sluice_sdk::destination::ClientRequest {
//!     dataset_name: "my_data".into(),
//!     pipeline_name: "my_pipeline".into(),
//!     ..Default::default()
//! })?;
//! client.initialize_storage()?;
//! # Ok::<(), sluice_sdk::Error>(())
//! ```

mod client;
pub mod config;
pub mod sql;
pub mod types;

pub use client::{open_client, DuckDbClient, DuckDbConnection};
pub use config::DuckDbConfig;
/// The duckdb crate this destination links (for tests that inspect a database directly).
pub use duckdb;

use sluice_sdk::destination::ClientRequest;
use sluice_sdk::schema::{MergeStrategy, ReplaceStrategy};
use sluice_sdk::{Capabilities, Destination, DestinationClient, Error, Plugin, Result};

/// The DuckDB destination.
#[derive(Debug, Clone)]
pub struct DuckDbDestination {
    config: DuckDbConfig,
    /// `max_identifier_length`, `max_column_identifier_length`
    identifier_lengths: (usize, usize),
}

impl Default for DuckDbDestination {
    fn default() -> Self {
        Self::new(DuckDbConfig::default())
    }
}

impl DuckDbDestination {
    /// A destination with `config` (identifier lengths out of range fall back to DuckDB's
    /// limit; the plugin checks them first, see [`DuckDbConfig::identifier_lengths`]).
    pub fn new(config: DuckDbConfig) -> Self {
        let identifier_lengths = config
            .identifier_lengths()
            .unwrap_or((config::MAX_IDENTIFIER, config::MAX_IDENTIFIER));
        Self {
            config,
            identifier_lengths,
        }
    }
}

impl Destination for DuckDbDestination {
    fn capabilities(&self) -> Capabilities {
        Capabilities {
            destination_type: "dlt.destinations.duckdb".into(),
            preferred_loader_file_format: "parquet".into(),
            supported_loader_file_formats: vec!["parquet".into(), "arrow".into()],
            max_identifier_length: self.identifier_lengths.0,
            max_column_identifier_length: self.identifier_lengths.1,
            max_text_data_type_length: 1 << 30,
            has_case_sensitive_identifiers: false,
            supported_merge_strategies: vec![
                MergeStrategy::DeleteInsert,
                MergeStrategy::Upsert,
                MergeStrategy::InsertOnly,
                MergeStrategy::Scd2,
            ],
            supported_replace_strategies: vec![
                ReplaceStrategy::TruncateAndInsert,
                ReplaceStrategy::InsertFromStaging,
            ],
            supports_transactions: true,
            timestamp_precision: 6,
            decimal_precision: (38, 9),
            wei_precision: (38, 0),
            supports_query: true,
            ..Capabilities::default()
        }
    }

    fn open_client(&self, request: ClientRequest) -> Result<Box<dyn DestinationClient>> {
        Ok(Box::new(open_client(&self.config, &request)?))
    }
}

fn plugin() -> Plugin {
    Plugin::new(include_str!("../sluice-plugin.toml"), env!("CARGO_PKG_VERSION")).destination(
        |config, _secrets| {
            let config: DuckDbConfig = serde_json::from_value(config)
                .map_err(|e| Error::config(format!("invalid config of destination `duckdb`: {e}")))?;
            if config.replace_strategy == Some(ReplaceStrategy::StagingOptimized) {
                return Err(Error::config(
                    "duckdb does not support the replace strategy `staging-optimized`\nhint: use truncate-and-insert or insert-from-staging",
                ));
            }
            config.identifier_lengths()?;
            Ok(DuckDbDestination::new(config))
        },
    )
}

sluice_sdk::declare_plugin!(pub fn plugin_module = plugin);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_linked_duckdb_has_parquet_and_json() {
        let dir = tempfile::tempdir().expect("tmp");
        let file = dir.path().join("x.parquet");
        let conn = duckdb::Connection::open_in_memory().expect("open");
        conn.execute_batch(&format!(
            "COPY (SELECT 42 AS answer, '{{\"a\": 1}}'::JSON AS doc) TO '{}' (FORMAT parquet)",
            file.display()
        ))
        .expect("write parquet");
        let (answer, a): (i64, i64) = conn
            .query_row(
                &format!(
                    "SELECT answer, (doc->>'a')::BIGINT FROM read_parquet('{}')",
                    file.display()
                ),
                [],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .expect("read parquet");
        assert_eq!((answer, a), (42, 1));
    }

    // the destination conformance suite runs in tests/conformance.rs
}
