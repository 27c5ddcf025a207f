//! The PostgreSQL destination's configuration (`[destination.postgres]`, see
//! `sluice-plugin.toml`).
//!
//! The keys as read are `Keys` and `SecretKeys`; a test reads the manifest and checks that
//! both list its keys, with its defaults, and that every secret is a [`Secret`].

use std::time::Duration;

use serde::{Deserialize, Deserializer, Serialize};
use serde_json::{Map, Value};
use sluice_sdk::{Error, Result, Secret};
use sluice_sql::naming::STAGING_DATASET_NAME_LAYOUT;
use sluice_sql::{Credentials, Dialect, Origin};

/// Whose credentials these are, for messages.
pub const ORIGIN: Origin = Origin {
    who: "destination `postgres`",
    path: "destination.postgres.credentials",
};

/// How `replace` empties a table (spec g.2): the SDK's strategies, all three of which
/// PostgreSQL supports (`staging-optimized` swaps the staging table in).
pub use sluice_sdk::schema::ReplaceStrategy;

/// Parses dlt's name of a replace strategy.
fn replace_strategy(name: &str) -> Result<ReplaceStrategy> {
    match name {
        "truncate-and-insert" => Ok(ReplaceStrategy::TruncateAndInsert),
        "insert-from-staging" => Ok(ReplaceStrategy::InsertFromStaging),
        "staging-optimized" => Ok(ReplaceStrategy::StagingOptimized),
        other => Err(Error::config(format!(
            "destination `postgres` does not support the replace strategy `{other}`\nhint: use truncate-and-insert, insert-from-staging or staging-optimized"
        ))),
    }
}

/// Reads a replace strategy by dlt's name, with a message naming the accepted ones.
fn strategy<'de, D: Deserializer<'de>>(
    deserializer: D,
) -> std::result::Result<Option<ReplaceStrategy>, D::Error> {
    Option::<String>::deserialize(deserializer)?
        .as_deref()
        .map(replace_strategy)
        .transpose()
        .map_err(|e| serde::de::Error::custom(e.message))
}

/// The configuration keys (`[[config]]` of the manifest); a key left out takes its default.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
struct Keys {
    credentials: Option<Map<String, Value>>,
    create_indexes: bool,
    #[serde(deserialize_with = "strategy")]
    replace_strategy: Option<ReplaceStrategy>,
    staging_dataset_name_layout: Option<String>,
    lock_timeout: Option<Value>,
    statement_timeout: Option<Value>,
    max_identifier_length: Option<u64>,
    max_column_identifier_length: Option<u64>,
}

impl Default for Keys {
    fn default() -> Self {
        Self {
            credentials: None,
            create_indexes: true,
            replace_strategy: Some(ReplaceStrategy::default()),
            staging_dataset_name_layout: Some(STAGING_DATASET_NAME_LAYOUT.to_string()),
            lock_timeout: Some(DEFAULT_LOCK_TIMEOUT.as_secs().into()),
            statement_timeout: Some(DEFAULT_STATEMENT_TIMEOUT.as_secs().into()),
            max_identifier_length: Some(crate::types::MAX_IDENTIFIER as u64),
            max_column_identifier_length: Some(crate::types::MAX_IDENTIFIER as u64),
        }
    }
}

/// The secret keys (`[[secrets]]` of the manifest): each a [`Secret`], never printed.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(default)]
struct SecretKeys {
    credentials: Option<Secret<Value>>,
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
    /// How long a statement waits for a lock (`None`: as long as it takes).
    pub lock_timeout: Option<Duration>,
    /// How long one statement may run (`None`: as long as it takes).
    pub statement_timeout: Option<Duration>,
    /// Longest table name (dlt's `max_identifier_length`, 1..=63, default 63): longer names
    /// are shortened with dlt's hash tag.
    pub max_identifier_length: usize,
    /// Longest column name (dlt's `max_column_identifier_length`, 1..=63, default 63).
    pub max_column_identifier_length: usize,
}

/// Reads an identifier length key: 1..=63 (PostgreSQL cuts longer names itself, silently,
/// so two long names could become one).
fn identifier_length(key: &str, value: Option<u64>) -> Result<usize> {
    match value {
        None => Ok(crate::types::MAX_IDENTIFIER),
        Some(n) if (1..=crate::types::MAX_IDENTIFIER as u64).contains(&n) => Ok(n as usize),
        Some(n) => Err(Error::config(format!(
            "destination `postgres`: {key} `{n}` is out of range\nhint: PostgreSQL keeps at most {} characters of a name; give 1 to {}",
            crate::types::MAX_IDENTIFIER,
            crate::types::MAX_IDENTIFIER
        ))),
    }
}

/// The default `lock_timeout`: 5 minutes. Long enough to wait for another load of the same
/// tables to commit, or for a report query that holds a table; short enough that a session
/// left holding locks (its process died on a network that did not tell the server) fails the
/// run with a retryable error instead of wedging it: the package stays pending and the next
/// run tries again.
pub const DEFAULT_LOCK_TIMEOUT: Duration = Duration::from_secs(5 * 60);

/// The default `statement_timeout`: 6 hours. A load's longest statements are one COPY per
/// table and package (a first full load of a large table is one COPY), the merge and replace
/// statements and the UNIQUE constraints of new tables; on a pipeline that runs hourly or
/// daily, one statement running longer than this is stuck, not working. It is the last bound
/// on a statement, and on how long sluice waits for an answer from a server it cannot tell
/// from a dead network path.
pub const DEFAULT_STATEMENT_TIMEOUT: Duration = Duration::from_secs(6 * 60 * 60);

/// Reads a timeout key: seconds as a number, or a text with PostgreSQL's units (`500ms`,
/// `30s`, `5min`, `6h`, `1d`; without a unit: seconds); `0`, `"0"` and `"off"` turn it off.
fn timeout(key: &str, value: Option<&Value>, default: Duration) -> Result<Option<Duration>> {
    let bad = |v: &dyn std::fmt::Display| {
        Error::config(format!(
            "destination `postgres`: {key} `{v}` is not a duration\nhint: give seconds (300), a text with a unit (\"500ms\", \"30s\", \"5min\", \"6h\", \"1d\"), or 0 (or \"off\") for no limit"
        ))
    };
    let seconds = match value {
        None | Some(Value::Null) => return Ok(Some(default)),
        Some(Value::Number(n)) => n.as_f64().ok_or_else(|| bad(n))?,
        Some(Value::String(s)) => {
            let t = s.trim().to_ascii_lowercase();
            if t == "off" {
                return Ok(None);
            }
            let split = t
                .find(|c: char| !(c.is_ascii_digit() || c == '.'))
                .unwrap_or(t.len());
            let (number, unit) = t.split_at(split);
            let number: f64 = number.parse().map_err(|_| bad(s))?;
            let scale = match unit.trim() {
                "ms" => 0.001,
                "" | "s" => 1.0,
                "min" => 60.0,
                "h" => 3600.0,
                "d" => 86400.0,
                _ => return Err(bad(s)),
            };
            number * scale
        }
        Some(other) => return Err(bad(other)),
    };
    if seconds == 0.0 {
        return Ok(None);
    }
    // PostgreSQL keeps these in milliseconds in an int (about 24.8 days)
    if !(0.001..=2_147_483.0).contains(&seconds) {
        return Err(bad(&seconds));
    }
    Ok(Some(Duration::from_secs_f64(seconds)))
}

impl PostgresConfig {
    /// From the config and secrets JSON the host resolved.
    pub fn from_json(config: Value, secrets: Value) -> Result<Self> {
        let keys: Keys = serde_json::from_value(config)
            .map_err(|e| Error::config(format!("config of destination `postgres`: {e}")))?;
        let secrets: SecretKeys = match secrets {
            Value::Null => SecretKeys::default(),
            // no serde message here: it could quote a secret
            secrets => serde_json::from_value(secrets).map_err(|_| {
                Error::config(
                    "secrets of destination `postgres` must be a table\nhint: set `credentials` under [destination.postgres] in .sluice/secrets.toml",
                )
            })?,
        };
        let credentials = Credentials::resolve(
            secrets.credentials.as_ref().map(Secret::expose),
            &keys.credentials.unwrap_or_default(),
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
            replace_strategy: keys.replace_strategy.unwrap_or_default(),
            staging_dataset_name_layout: keys
                .staging_dataset_name_layout
                .unwrap_or_else(|| STAGING_DATASET_NAME_LAYOUT.into()),
            lock_timeout: timeout(
                "lock_timeout",
                keys.lock_timeout.as_ref(),
                DEFAULT_LOCK_TIMEOUT,
            )?,
            statement_timeout: timeout(
                "statement_timeout",
                keys.statement_timeout.as_ref(),
                DEFAULT_STATEMENT_TIMEOUT,
            )?,
            max_identifier_length: identifier_length(
                "max_identifier_length",
                keys.max_identifier_length,
            )?,
            max_column_identifier_length: identifier_length(
                "max_column_identifier_length",
                keys.max_column_identifier_length,
            )?,
        })
    }

    /// The settings of every session of the destination: UTC, standard strings, no NOTICE
    /// chatter (`IF NOT EXISTS`), and the timeouts. A session that sits idle inside a
    /// transaction (a client that stopped between two statements of a load) is ended after
    /// `lock_timeout`, as long as others would wait for the locks it holds.
    pub fn session_sql(&self) -> String {
        let ms = |d: Option<Duration>| d.map_or(0, |d| d.as_millis().max(1));
        format!(
            "SET TIME ZONE 'UTC'; SET standard_conforming_strings = on; SET client_min_messages = warning; \
             SET lock_timeout = {}; SET statement_timeout = {}; SET idle_in_transaction_session_timeout = {}",
            ms(self.lock_timeout),
            ms(self.statement_timeout),
            ms(self.lock_timeout)
        )
    }

    /// The staging dataset of `dataset`.
    pub fn staging_dataset(&self, dataset: &str) -> String {
        sluice_sql::naming::staging_dataset(&self.staging_dataset_name_layout, dataset)
    }
}

#[cfg(test)]
mod tests {

    use serde_json::json;

    use super::*;

    #[test]
    fn config_keys_agree_with_the_manifest() {
        let manifest = sluice_sdk::testing::assert_manifest_keys::<Keys, SecretKeys>(include_str!(
            "../sluice-plugin.toml"
        ));
        // every secret key is a `Secret`: set, none of them prints
        let secrets = sluice_sdk::testing::assert_secrets_hidden(
            &manifest.secrets,
            &json!(sluice_sdk::testing::SECRET_CANARY),
            |v| serde_json::from_value::<SecretKeys>(v).expect("secrets"),
        );
        assert!(secrets.credentials.is_some());
    }

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

    #[test]
    fn timeouts_default_to_bounds_a_long_load_never_meets_and_can_be_turned_off() {
        let creds = json!({"credentials": "postgresql://h/d"});
        let c = PostgresConfig::from_json(json!({}), creds.clone()).expect("defaults");
        assert_eq!(c.lock_timeout, Some(DEFAULT_LOCK_TIMEOUT));
        assert_eq!(c.statement_timeout, Some(Duration::from_secs(6 * 3600)));
        assert!(
            c.session_sql().contains("SET lock_timeout = 300000; SET statement_timeout = 21600000; SET idle_in_transaction_session_timeout = 300000"),
            "{}",
            c.session_sql()
        );
        for (value, expected) in [
            (json!(0), None),
            (json!("off"), None),
            (json!("0"), None),
            (json!(2), Some(Duration::from_secs(2))),
            (json!(1.5), Some(Duration::from_millis(1500))),
            (json!("500ms"), Some(Duration::from_millis(500))),
            (json!("30s"), Some(Duration::from_secs(30))),
            (json!("45"), Some(Duration::from_secs(45))),
            (json!("5min"), Some(Duration::from_secs(300))),
            (json!("2h"), Some(Duration::from_secs(7200))),
            (json!("1d"), Some(Duration::from_secs(86400))),
        ] {
            let c = PostgresConfig::from_json(
                json!({"lock_timeout": value, "statement_timeout": value}),
                creds.clone(),
            )
            .expect("timeout");
            assert_eq!(
                (c.lock_timeout, c.statement_timeout),
                (expected, expected),
                "{value}"
            );
        }
        let off = PostgresConfig::from_json(
            json!({"lock_timeout": "off", "statement_timeout": 0}),
            creds.clone(),
        )
        .expect("off");
        assert!(
            off.session_sql()
                .contains("SET lock_timeout = 0; SET statement_timeout = 0"),
            "{}",
            off.session_sql()
        );
        for bad in [
            json!("soon"),
            json!("5 weeks"),
            json!(-1),
            json!(true),
            json!(1e12),
        ] {
            let e = PostgresConfig::from_json(json!({"statement_timeout": bad}), creds.clone())
                .expect_err("not a duration");
            assert!(
                e.to_string().contains("statement_timeout") && e.to_string().contains("hint:"),
                "{e}"
            );
        }
    }
}
