//! The PostgreSQL destination's configuration (`[destination.postgres]`, see
//! `sluice-plugin.toml`).

use serde::Deserialize;
use serde_json::{Map, Value};
use sluice_sdk::{Error, Result};
use sluice_sql::{Credentials, Dialect, Origin};

/// Whose credentials these are, for messages.
pub const ORIGIN: Origin = Origin {
    who: "destination `postgres`",
    path: "destination.postgres.credentials",
};

/// How `replace` empties a table (spec g.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ReplaceStrategy {
    /// Truncate the chain in the load's transaction, then COPY into it (the default).
    #[default]
    TruncateAndInsert,
    /// COPY into staging, then truncate and `INSERT ... SELECT` from staging.
    InsertFromStaging,
    /// COPY into staging, then drop the table and move the staging table into the dataset.
    StagingOptimized,
}

impl ReplaceStrategy {
    /// Parses dlt's name.
    pub fn parse(name: &str) -> Result<Self> {
        match name {
            "truncate-and-insert" => Ok(Self::TruncateAndInsert),
            "insert-from-staging" => Ok(Self::InsertFromStaging),
            "staging-optimized" => Ok(Self::StagingOptimized),
            other => Err(Error::config(format!(
                "destination `postgres` does not support the replace strategy `{other}`\nhint: use truncate-and-insert, insert-from-staging or staging-optimized"
            ))),
        }
    }
}

/// The configuration keys.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct Keys {
    #[serde(default)]
    credentials: Map<String, Value>,
    #[serde(default = "yes")]
    create_indexes: bool,
    #[serde(default)]
    replace_strategy: Option<String>,
    #[serde(default)]
    staging_dataset_name_layout: Option<String>,
}

fn yes() -> bool {
    true
}

/// The resolved configuration.
#[derive(Debug, Clone)]
pub struct PostgresConfig {
    /// Where to connect.
    pub credentials: Credentials,
    /// Whether columns with the `unique` hint get a UNIQUE constraint (dlt's default: true).
    pub create_indexes: bool,
    /// How `replace` works.
    pub replace_strategy: ReplaceStrategy,
    /// Staging dataset name layout, `%s` = dataset name.
    pub staging_dataset_name_layout: String,
}

impl PostgresConfig {
    /// From the config and secrets JSON the host resolved.
    pub fn from_json(config: Value, secrets: Value) -> Result<Self> {
        let keys: Keys = serde_json::from_value(config)
            .map_err(|e| Error::config(format!("config of destination `postgres`: {e}")))?;
        let credentials = Credentials::resolve(
            secrets.get("credentials"),
            &keys.credentials,
            Some("postgresql"),
            ORIGIN,
        )?;
        if credentials.dialect != Dialect::Postgres {
            return Err(Error::config(format!(
                "destination `postgres` got credentials for another database: {}\nhint: give a postgresql:// connection string",
                credentials.redacted()
            )));
        }
        Ok(Self {
            credentials,
            create_indexes: keys.create_indexes,
            replace_strategy: keys
                .replace_strategy
                .as_deref()
                .map(ReplaceStrategy::parse)
                .transpose()?
                .unwrap_or_default(),
            staging_dataset_name_layout: keys
                .staging_dataset_name_layout
                .unwrap_or_else(|| "%s_staging".into()),
        })
    }

    /// The staging dataset of `dataset`.
    pub fn staging_dataset(&self, dataset: &str) -> String {
        self.staging_dataset_name_layout.replace("%s", dataset)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn reads_a_connection_string_or_fields_and_never_shows_the_password() {
        let c = PostgresConfig::from_json(
            json!({}),
            json!({"credentials": "postgresql://loader:s3cret@db:5433/dlt_data"}),
        )
        .expect("url");
        assert_eq!(
            c.credentials.redacted(),
            "postgresql://loader:***@db:5433/dlt_data"
        );
        assert!(c.create_indexes);
        assert_eq!(c.replace_strategy, ReplaceStrategy::TruncateAndInsert);
        let c = PostgresConfig::from_json(
            json!({"credentials": {"host": "db", "database": "d"}, "replace_strategy": "staging-optimized", "create_indexes": false}),
            json!({"credentials": {"username": "u", "password": "s3cret"}}),
        )
        .expect("fields");
        assert_eq!(c.credentials.redacted(), "postgresql://u:***@db/d");
        assert_eq!(c.replace_strategy, ReplaceStrategy::StagingOptimized);
        assert_eq!(c.staging_dataset("ds"), "ds_staging");
        let e = PostgresConfig::from_json(json!({}), json!({})).expect_err("no credentials");
        assert!(
            e.to_string().contains("destination.postgres.credentials"),
            "{e}"
        );
        let e =
            PostgresConfig::from_json(json!({}), json!({"credentials": "mysql://u:s3cret@h/d"}))
                .expect_err("wrong database");
        assert!(
            !e.to_string().contains("s3cret") && e.to_string().contains("postgresql://"),
            "{e}"
        );
        let e = PostgresConfig::from_json(
            json!({"replace_strategy": "swap"}),
            json!({"credentials": "postgresql://h/d"}),
        )
        .expect_err("bad strategy");
        assert!(e.to_string().contains("`swap`"), "{e}");
    }
}
