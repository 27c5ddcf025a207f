//! The sql_database source's configuration (`[sources.sql_database]`, see `sluice-plugin.toml`
//! and README.md): the database, which tables, how they are read, per-table options.
//!
//! [`SqlDatabaseConfig`] and [`SqlDatabaseSecrets`] list the manifest's keys with its defaults
//! (unknown keys are refused, so a misspelt one does not go unnoticed); a test reads the
//! manifest and checks both. The struct accepts no key the manifest does not list.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use sluice_sdk::resource::{IncrementalSpec, KeyHint, WriteDispositionHint};
use sluice_sdk::{Error, Result, Secret};
use sluice_sql::{Credentials, Origin};

use crate::model::ReflectionLevel;

/// Rows per batch.
pub const DEFAULT_CHUNK_SIZE: usize = 50_000;

/// Tables read at once.
pub const DEFAULT_CONCURRENCY: usize = 2;

/// Connections one large PostgreSQL table is read over.
pub const DEFAULT_PARALLEL_RANGES: usize = 2;

/// Whose credentials these are, for messages.
pub const ORIGIN: Origin = Origin {
    who: "source `sql_database`",
    path: "sources.sql_database.credentials",
};

/// Configuration keys of the sql_database source. A key left out takes its default
/// ([`SqlDatabaseConfig::default`]).
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct SqlDatabaseConfig {
    /// The schema (PostgreSQL) or database (MySQL) to read (default: the connection's current
    /// one; SQLite: `main`).
    pub schema: Option<String>,
    /// The tables to read (default: every table of the schema).
    pub table_names: Option<Vec<String>>,
    /// Rows per batch.
    pub chunk_size: usize,
    /// How much of each column's type is reflected.
    pub reflection_level: ReflectionLevel,
    /// Read views too when `table_names` is not given.
    pub include_views: bool,
    /// Tables read at once, each on its own connection.
    pub concurrency: usize,
    /// Connections a large PostgreSQL table is read over at once (1: one connection).
    pub parallel_ranges: usize,
    /// append (default), replace or merge, for every table unless `tables` says otherwise.
    pub write_disposition: Option<WriteDispositionHint>,
    /// Per-table options, keyed by table name.
    pub tables: Option<BTreeMap<String, TableOptions>>,
    /// Non-secret connection fields (`drivername`, `host`, `port`, `database`, `username`,
    /// `query`); the password is a secret ([`SqlDatabaseSecrets::credentials`]).
    pub credentials: Option<Map<String, Value>>,
}

impl Default for SqlDatabaseConfig {
    /// Every key at its default.
    fn default() -> Self {
        Self {
            schema: None,
            table_names: None,
            chunk_size: DEFAULT_CHUNK_SIZE,
            reflection_level: ReflectionLevel::default(),
            include_views: false,
            concurrency: DEFAULT_CONCURRENCY,
            parallel_ranges: DEFAULT_PARALLEL_RANGES,
            write_disposition: None,
            tables: None,
            credentials: None,
        }
    }
}

/// Options of one table (`tables.<name>`).
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct TableOptions {
    /// Overrides the reflected primary key.
    pub primary_key: Option<KeyHint>,
    /// A column name or a list of them.
    pub merge_key: Option<KeyHint>,
    /// append, replace or merge (default: the top-level `write_disposition`).
    pub write_disposition: Option<WriteDispositionHint>,
    /// An incremental cursor, pushed into the query.
    pub incremental: Option<IncrementalSpec>,
    /// Read only these columns.
    pub included_columns: Option<Vec<String>>,
    /// Leave these columns out.
    pub excluded_columns: Vec<String>,
    /// Read these columns as text (types sluice cannot map, or numeric NaN).
    pub text_columns: Vec<String>,
    /// The destination table's name (default: the table's).
    pub table_name: Option<String>,
}

impl TableOptions {
    /// Whether `column` is read (included, or no inclusion list, and not excluded).
    pub fn reads(&self, column: &str) -> bool {
        self.included_columns
            .as_ref()
            .is_none_or(|i| i.iter().any(|c| c == column))
            && !self.excluded_columns.iter().any(|c| c == column)
    }
}

/// A failure of the sql_database source's configuration. Every one is a
/// [`ErrorCode::CONFIG`](sluice_sdk::ErrorCode::CONFIG) [`Error`] where it leaves the plugin,
/// with the message of its `Display`.
#[derive(Debug)]
pub enum ConfigError {
    /// The config does not read (an unknown key, a value of the wrong type).
    Invalid(serde_json::Error),
    /// A table's incremental cursor is a column the table does not read.
    CursorNotRead {
        /// The table.
        table: String,
        /// The cursor column.
        cursor: String,
    },
    /// `tables.<name>` names a table that is not read.
    UnknownTable {
        /// The name under `tables`.
        name: String,
        /// The tables that are read.
        read: Vec<String>,
    },
    /// No column of a table is left to read.
    NoColumns {
        /// The table.
        table: String,
    },
}

impl std::fmt::Display for ConfigError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Invalid(e) => write!(f, "config of source `sql_database`: {e}"),
            Self::CursorNotRead { table, cursor } => write!(
                f,
                "source `sql_database`: table `{table}` has cursor `{cursor}` but does not read it\nhint: keep it in included_columns and out of excluded_columns"
            ),
            Self::UnknownTable { name, read } => write!(
                f,
                "source `sql_database`: `tables.{name}` names a table that is not read (the tables are {})",
                read.join(", ")
            ),
            Self::NoColumns { table } => write!(
                f,
                "source `sql_database`: no column of table `{table}` is left to read\nhint: check included_columns and excluded_columns"
            ),
        }
    }
}

impl From<ConfigError> for Error {
    fn from(e: ConfigError) -> Self {
        Error::config(e.to_string())
    }
}

impl SqlDatabaseConfig {
    /// Reads the config the host resolved, and checks that every incremental cursor is read.
    pub fn from_json(config: Value) -> Result<Self, ConfigError> {
        let config: Self = serde_json::from_value(config).map_err(ConfigError::Invalid)?;
        for (table, o) in config.tables.iter().flatten() {
            if let Some(inc) = &o.incremental {
                if !o.reads(&inc.cursor_path) {
                    return Err(ConfigError::CursorNotRead {
                        table: table.clone(),
                        cursor: inc.cursor_path.clone(),
                    });
                }
            }
        }
        Ok(config)
    }

    /// The options of `table` (all defaults when `tables` does not name it).
    pub fn table(&self, table: &str) -> TableOptions {
        self.tables
            .as_ref()
            .and_then(|t| t.get(table))
            .cloned()
            .unwrap_or_default()
    }

    /// Checks that every table named under `tables` is one of `read`.
    pub fn check_tables(&self, read: &[&str]) -> Result<(), ConfigError> {
        match self
            .tables
            .iter()
            .flatten()
            .find(|(n, _)| !read.contains(&n.as_str()))
        {
            Some((name, _)) => Err(ConfigError::UnknownTable {
                name: name.clone(),
                read: read.iter().map(|t| (*t).to_string()).collect(),
            }),
            None => Ok(()),
        }
    }
}

/// Secret keys of the sql_database source, each a [`Secret`].
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(default)]
pub struct SqlDatabaseSecrets {
    /// A connection string, or its fields with the password.
    pub credentials: Option<Secret<Value>>,
}

impl SqlDatabaseSecrets {
    /// Reads the secrets the host resolved (secrets that are not a table are no secrets; no
    /// serde message, which could quote one).
    pub fn from_json(secrets: &Value) -> Self {
        serde_json::from_value(secrets.clone()).unwrap_or_default()
    }

    /// Where to connect: the secret connection string or fields, completed by the config's
    /// non-secret `fields`, as dlt resolves them.
    pub fn resolve(&self, fields: Option<&Map<String, Value>>) -> Result<Credentials> {
        Credentials::resolve(
            self.credentials.as_ref().map(Secret::expose),
            fields.unwrap_or(&Map::new()),
            None,
            ORIGIN,
        )
    }
}

#[cfg(test)]
mod tests {

    use serde_json::json;
    use sluice_sdk::testing::SECRET_CANARY;

    use super::*;

    #[test]
    fn config_keys_agree_with_the_manifest() {
        let manifest = sluice_sdk::testing::assert_manifest_keys::<
            SqlDatabaseConfig,
            SqlDatabaseSecrets,
        >(include_str!("../sluice-plugin.toml"));
        // every secret key is a `Secret`: set, none of them prints; nor do the credentials
        // resolved from it, in Debug, in the redacted connection string, or in an error
        let url = format!("postgresql://loader:{SECRET_CANARY}@db:5432/dlt_data");
        let (secrets, creds) =
            sluice_sdk::testing::assert_secrets_hidden(&manifest.secrets, &json!(url), |v| {
                let secrets = SqlDatabaseSecrets::from_json(&v);
                let creds = secrets.resolve(None);
                (secrets, creds)
            });
        let creds = creds.expect("a connection string");
        assert_eq!(creds.redacted(), "postgresql://loader:***@db:5432/dlt_data");
        assert_eq!(
            creds.password.as_ref().map(|p| p.expose().as_str()),
            Some(SECRET_CANARY)
        );
        assert!(secrets.credentials.is_some());
        for bad in [
            json!(format!("postgres-ish://u:{SECRET_CANARY}@h/d")),
            json!(SECRET_CANARY),
            json!({"drivername": "nope", "password": SECRET_CANARY}),
        ] {
            let e = SqlDatabaseSecrets::from_json(&json!({ "credentials": bad }))
                .resolve(None)
                .expect_err("refused");
            let shown = format!("{e} {e:?}");
            assert!(!shown.contains(SECRET_CANARY), "a secret shows: {shown}");
            assert!(e.message.contains("source `sql_database`"), "{e}");
        }
    }

    #[test]
    fn cursors_must_be_read_and_unknown_keys_are_refused() {
        let e = SqlDatabaseConfig::from_json(json!({"tables": {"t": {
            "incremental": {"cursor_path": "at"}, "excluded_columns": ["at"],
        }}}))
        .expect_err("cursor not read");
        assert!(
            e.to_string()
                .contains("table `t` has cursor `at` but does not read it"),
            "{e}"
        );
        let e = SqlDatabaseConfig::from_json(json!({"tables": {"t": {"text_colums": ["a"]}}}))
            .expect_err("misspelt");
        assert!(
            e.to_string()
                .starts_with("config of source `sql_database`:")
                && e.to_string().contains("text_colums"),
            "{e}"
        );
        let c = SqlDatabaseConfig::from_json(json!({"tables": {"t": {"included_columns": ["a"]}}}))
            .expect("config");
        assert!(c.table("t").reads("a") && !c.table("t").reads("b"));
        assert!(c.table("other").reads("b"));
        assert!(c.check_tables(&["t", "u"]).is_ok());
        let e = c.check_tables(&["u", "v"]).expect_err("t is not read");
        assert!(e.to_string().contains("(the tables are u, v)"), "{e}");
    }
}
