//! The PostgreSQL destination of sluice: dlt's tables, types and SQL (spec c.5, e, g) in a
//! schema per dataset, load files streamed with binary COPY, every write disposition and merge
//! strategy, and each load package committed in one transaction with its schema changes,
//! `_dlt_loads` row and state row.
//!
//! ```no_run
//! use sluice_sdk::{Destination, DestinationClient};
//! let dest = sluice_destination_postgres::PostgresDestination::from_json(
//!     serde_json::json!({}),
//!     serde_json::json!({"credentials": "postgresql://loader:password@localhost:5432/dlt_data"}),
//! )?;
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
pub mod copy;
mod load;
pub mod types;

use std::sync::Arc;

pub use client::{open_client, PostgresClient, PostgresConnection};
pub use config::PostgresConfig;

use sluice_sdk::destination::ClientRequest;
use sluice_sdk::schema::{MergeStrategy, ReplaceStrategy};
use sluice_sdk::{Capabilities, Destination, DestinationClient, Plugin, Result};

/// The PostgreSQL destination.
#[derive(Debug, Clone)]
pub struct PostgresDestination {
    config: Arc<PostgresConfig>,
}

impl PostgresDestination {
    /// A destination with `config`.
    pub fn new(config: PostgresConfig) -> Self {
        Self {
            config: Arc::new(config),
        }
    }

    /// From the config and secrets JSON the host resolved.
    pub fn from_json(config: serde_json::Value, secrets: serde_json::Value) -> Result<Self> {
        Ok(Self::new(PostgresConfig::from_json(config, secrets)?))
    }
}

impl Destination for PostgresDestination {
    fn capabilities(&self) -> Capabilities {
        let mut caps = Capabilities {
            destination_type: "dlt.destinations.postgres".into(),
            preferred_loader_file_format: "parquet".into(),
            supported_loader_file_formats: vec!["parquet".into(), "arrow".into()],
            max_identifier_length: self.config.max_identifier_length,
            max_column_identifier_length: self.config.max_column_identifier_length,
            max_text_data_type_length: 1 << 30,
            // PostgreSQL folds unquoted names to lower case; sluice always quotes
            has_case_sensitive_identifiers: true,
            supported_merge_strategies: vec![
                MergeStrategy::DeleteInsert,
                MergeStrategy::Upsert,
                MergeStrategy::Scd2,
                MergeStrategy::InsertOnly,
            ],
            supported_replace_strategies: vec![
                ReplaceStrategy::TruncateAndInsert,
                ReplaceStrategy::InsertFromStaging,
                ReplaceStrategy::StagingOptimized,
            ],
            supports_transactions: true,
            timestamp_precision: types::TIMESTAMP_PRECISION,
            decimal_precision: types::DECIMAL,
            wei_precision: types::WEI,
            supports_query: true,
            ..Capabilities::default()
        };
        // where the data goes, for load info (dlt prints the connection string without the
        // password)
        caps.extra.insert(
            "destination_location".into(),
            self.config.credentials.redacted().into(),
        );
        caps
    }

    fn open_client(&self, request: ClientRequest) -> Result<Box<dyn DestinationClient>> {
        Ok(Box::new(open_client(self.config.clone(), &request)?))
    }
}

fn plugin() -> Plugin {
    Plugin::new(
        include_str!("../sluice-plugin.toml"),
        env!("CARGO_PKG_VERSION"),
    )
    .destination(PostgresDestination::from_json)
}

sluice_sdk::declare_plugin!(pub fn plugin_module = plugin);

#[cfg(test)]
mod tests {
    use super::*;

    // the destination conformance suite runs in tests/conformance.rs

    #[test]
    fn load_info_shows_where_without_the_password() {
        let dest = PostgresDestination::from_json(
            serde_json::json!({}),
            serde_json::json!({ "credentials": "postgresql://loader:s3cret@db:5432/dlt_data" }),
        )
        .expect("config");
        let caps = dest.capabilities();
        assert_eq!(
            caps.extra["destination_location"],
            "postgresql://loader:***@db:5432/dlt_data"
        );
        assert_eq!(caps.max_identifier_length, 63);
        assert_eq!(caps.max_column_identifier_length, 63);
    }

    #[test]
    fn identifier_lengths_are_config_keys() {
        let secrets = serde_json::json!({ "credentials": "postgresql://loader@db:5432/dlt_data" });
        let dest = PostgresDestination::from_json(
            serde_json::json!({ "max_identifier_length": 20, "max_column_identifier_length": 30 }),
            secrets.clone(),
        )
        .expect("config");
        let caps = dest.capabilities();
        assert_eq!(
            (
                caps.max_identifier_length,
                caps.max_column_identifier_length
            ),
            (20, 30)
        );
        for bad in [0, 64] {
            let err = PostgresDestination::from_json(
                serde_json::json!({ "max_identifier_length": bad }),
                secrets.clone(),
            )
            .expect_err("out of range");
            assert!(err.to_string().contains("max_identifier_length"), "{err}");
        }
    }
}
