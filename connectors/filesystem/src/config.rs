//! The filesystem source's configuration (`[sources.filesystem]`, see `sluice-plugin.toml` and
//! README.md): where the files are, which to read and how, one table or several.
//!
//! [`FilesystemConfig`] and [`FilesystemSecrets`] list the manifest's keys with its defaults; a
//! test reads the manifest and checks both. [`ResourceConfig`] is one entry of `resources`;
//! [`FilesystemConfig::tables`] resolves them into [`TableConfig`]s.
//!
//! Keys the struct accepts and the manifest does not list, decided one by one:
//!
//! * `max_table_nesting` and `columns` are real user options (dlt's resource hints, as
//!   `apply_hints(max_table_nesting=..., columns=...)` takes them; they matter for jsonl and
//!   json documents). The manifest lists them: an undeclared key reaches the plugin only from a
//!   pipeline file's `[source.config]`, never from `config.toml` or the environment.
//! * `name` at the top level is not config: `name` is the key of a `resources` entry, and the
//!   single-resource form's key is `table_name`. A top-level `name` is still read, as an alias
//!   of `table_name` (older pipeline files), so it is not listed.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use sluice_sdk::resource::{IncrementalSpec, KeyHint, WriteDispositionHint};
use sluice_sdk::{Error, Secret};

use crate::read::{CsvOptions, Format, Limits};

/// Every file directly under `bucket_url`.
pub const DEFAULT_FILE_GLOB: &str = "*";

/// Configuration keys of the filesystem source. A key left out takes its default;
/// `bucket_url` must be set. The resource keys (`file_glob` to `columns`) configure the single
/// table of the single-resource form, or are the defaults of every entry of `resources`.
#[derive(Debug, Clone, Deserialize, Serialize)]
pub struct FilesystemConfig {
    /// Where the files are: a local path or `file://` URL, `s3://`, `gs://`, `az://` or
    /// `abfss://`.
    pub bucket_url: String,
    /// Files to read, relative to `bucket_url` (`*` stays within a folder, `**` crosses
    /// folders).
    #[serde(default = "default_file_glob")]
    pub file_glob: String,
    /// The files' format (default: from the glob's extension).
    #[serde(default)]
    pub format: Option<Format>,
    /// The resource and table name of the single-resource form (default: `read_<format>`).
    #[serde(default, alias = "name")]
    pub table_name: Option<String>,
    /// Load only files new or changed (by modification date) since the last run.
    #[serde(default)]
    pub incremental_files: bool,
    /// append (default), replace or merge.
    #[serde(default)]
    pub write_disposition: Option<WriteDispositionHint>,
    /// A column name or a list of them.
    #[serde(default)]
    pub primary_key: Option<KeyHint>,
    /// A column name or a list of them.
    #[serde(default)]
    pub merge_key: Option<KeyHint>,
    /// An incremental cursor inside the files.
    #[serde(default)]
    pub incremental: Option<IncrementalSpec>,
    /// csv options.
    #[serde(default)]
    pub csv: Option<CsvOptions>,
    /// Nesting levels of the documents turned into child tables (default: the pipeline's).
    #[serde(default)]
    pub max_table_nesting: Option<u32>,
    /// Column hints, keyed by column name (dlt's `columns`).
    #[serde(default)]
    pub columns: Option<Map<String, Value>>,
    /// Several tables from one bucket; the keys above are their defaults.
    #[serde(default)]
    pub resources: Option<Vec<ResourceConfig>>,
    /// Non-secret connection settings (`endpoint_url`, `region_name`, `anonymous`,
    /// `use_emulator`); the secret ones are [`FilesystemSecrets::credentials`].
    #[serde(default)]
    pub credentials: Option<Map<String, Value>>,
    /// The longest JSON lines line read, in bytes.
    #[serde(default = "default_max_line_bytes")]
    pub max_line_bytes: u64,
    /// The largest `.json` file read (after decompression), in bytes.
    #[serde(default = "default_max_json_file_bytes")]
    pub max_json_file_bytes: u64,
}

fn default_file_glob() -> String {
    DEFAULT_FILE_GLOB.to_string()
}
fn default_max_line_bytes() -> u64 {
    Limits::DEFAULT.line
}
fn default_max_json_file_bytes() -> u64 {
    Limits::DEFAULT.json_file
}

/// One table read from the bucket: an entry of `resources` (a key left out takes the top-level
/// one), or the single-resource form's table.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(default)]
pub struct ResourceConfig {
    /// The resource and table name (default: `read_<format>`).
    pub name: Option<String>,
    /// Files to read, relative to `bucket_url`.
    pub file_glob: Option<String>,
    /// The files' format (default: from the glob's extension).
    pub format: Option<Format>,
    /// Load only files new or changed since the last run.
    pub incremental_files: Option<bool>,
    /// append, replace or merge.
    pub write_disposition: Option<WriteDispositionHint>,
    /// A column name or a list of them.
    pub primary_key: Option<KeyHint>,
    /// A column name or a list of them.
    pub merge_key: Option<KeyHint>,
    /// An incremental cursor inside the files.
    pub incremental: Option<IncrementalSpec>,
    /// csv options.
    pub csv: Option<CsvOptions>,
    /// Nesting levels of the documents turned into child tables.
    pub max_table_nesting: Option<u32>,
    /// Column hints, keyed by column name.
    pub columns: Option<Map<String, Value>>,
}

/// One table to read, every key resolved ([`FilesystemConfig::tables`]).
#[derive(Debug, Clone)]
pub struct TableConfig {
    /// The resource and table name.
    pub name: String,
    /// Files to read, relative to `bucket_url` (a valid glob).
    pub file_glob: String,
    /// The files' format.
    pub format: Format,
    /// Load only files new or changed since the last run.
    pub incremental_files: bool,
    /// append, replace or merge (`None`: the host's default, append).
    pub write_disposition: Option<WriteDispositionHint>,
    /// A column name or a list of them.
    pub primary_key: Option<KeyHint>,
    /// A column name or a list of them.
    pub merge_key: Option<KeyHint>,
    /// An incremental cursor inside the files.
    pub incremental: Option<IncrementalSpec>,
    /// csv options.
    pub csv: CsvOptions,
    /// Nesting levels of the documents turned into child tables.
    pub max_table_nesting: Option<u32>,
    /// Column hints, keyed by column name (read when the source opens).
    pub columns: Option<Map<String, Value>>,
}

/// A failure of the filesystem source's configuration. Every one is a
/// [`ErrorCode::CONFIG`](sluice_sdk::ErrorCode::CONFIG) [`Error`] at the plugin's edge
/// (`Filesystem::open`), with the message of its `Display`.
#[derive(Debug)]
pub enum ConfigError {
    /// The config does not read (a missing `bucket_url`, a key of the wrong type, bad column
    /// hints).
    Invalid(serde_json::Error),
    /// The `credentials` secret is text that is not a JSON object.
    CredentialsSecret,
    /// A `file_glob` is no glob.
    InvalidGlob {
        /// The glob as given.
        glob: String,
        /// Why.
        error: globset::Error,
    },
    /// No `format`, and the glob's extension does not tell it.
    UnknownFormat {
        /// The resource's glob.
        glob: String,
    },
    /// Two resources have the same name.
    DuplicateResource {
        /// The name.
        name: String,
    },
}

impl std::fmt::Display for ConfigError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Invalid(e) => write!(f, "config of source `filesystem`: {e}"),
            Self::CredentialsSecret => f.write_str(
                "secret `sources.filesystem.credentials` must be a table of keys (aws_access_key_id, ...) or a service account JSON",
            ),
            Self::InvalidGlob { glob, error } => {
                write!(f, "file_glob `{glob}` is not a valid glob: {error}")
            }
            Self::UnknownFormat { glob } => write!(
                f,
                "source `filesystem`: cannot tell the format of the files matching `{glob}`\nhint: set `format` to csv, jsonl, json or parquet, or end file_glob with the extension (e.g. \"*.csv\")"
            ),
            Self::DuplicateResource { name } => write!(
                f,
                "source `filesystem`: two resources are named `{name}`; give each a distinct `name`"
            ),
        }
    }
}

impl From<ConfigError> for Error {
    fn from(e: ConfigError) -> Self {
        Error::config(e.to_string())
    }
}

impl FilesystemConfig {
    /// Reads the config the host resolved.
    pub fn from_json(config: Value) -> Result<Self, ConfigError> {
        serde_json::from_value(config).map_err(ConfigError::Invalid)
    }

    /// The tables to read: each entry of `resources` with the top-level keys filled in where it
    /// leaves one out, or the single table of the top-level keys. Checks each glob, tells each
    /// format, and that the names are distinct.
    pub fn tables(&self) -> Result<Vec<TableConfig>, ConfigError> {
        let entries = match &self.resources {
            Some(r) if !r.is_empty() => r.clone(),
            _ => vec![ResourceConfig {
                name: self.table_name.clone(),
                ..ResourceConfig::default()
            }],
        };
        let mut out: Vec<TableConfig> = Vec::with_capacity(entries.len());
        for r in entries {
            let glob = r.file_glob.unwrap_or_else(|| self.file_glob.clone());
            crate::store::compile_glob(&glob)?;
            let format = match r
                .format
                .or(self.format)
                .or_else(|| Format::from_name(&glob))
            {
                Some(f) => f,
                None => return Err(ConfigError::UnknownFormat { glob }),
            };
            let name = r.name.unwrap_or_else(|| format.reader_name().to_string());
            if out.iter().any(|t| t.name == name) {
                return Err(ConfigError::DuplicateResource { name });
            }
            out.push(TableConfig {
                name,
                file_glob: glob,
                format,
                incremental_files: r.incremental_files.unwrap_or(self.incremental_files),
                write_disposition: r
                    .write_disposition
                    .or_else(|| self.write_disposition.clone()),
                primary_key: r.primary_key.or_else(|| self.primary_key.clone()),
                merge_key: r.merge_key.or_else(|| self.merge_key.clone()),
                incremental: r.incremental.or_else(|| self.incremental.clone()),
                csv: r.csv.or_else(|| self.csv.clone()).unwrap_or_default(),
                max_table_nesting: r.max_table_nesting.or(self.max_table_nesting),
                columns: r.columns.or_else(|| self.columns.clone()),
            });
        }
        Ok(out)
    }

    /// The line and file caps of the JSON readers.
    pub fn limits(&self) -> Limits {
        Limits {
            line: self.max_line_bytes,
            json_file: self.max_json_file_bytes,
        }
    }
}

/// Secret keys of the filesystem source, each a [`Secret`].
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(default)]
pub struct FilesystemSecrets {
    /// Keys of the object store (`aws_access_key_id`, `azure_storage_account_key`, ...), a
    /// GCS service account, or either as JSON text.
    pub credentials: Option<Secret<Value>>,
}

impl FilesystemSecrets {
    /// Reads the secrets the host resolved (secrets that are not a table are no secrets; no
    /// serde message, which could quote one).
    pub fn from_json(secrets: &Value) -> Self {
        serde_json::from_value(secrets.clone()).unwrap_or_default()
    }

    /// The credentials as a table of keys: a table as given; text holding a service account
    /// JSON as its whole text under `service_account_json`; other text holding a JSON object
    /// as that object. Empty when none are set.
    pub fn credentials(&self) -> Result<Map<String, Value>, ConfigError> {
        match self.credentials.as_ref().map(Secret::expose) {
            Some(Value::Object(m)) => Ok(m.clone()),
            // a GCS service account JSON, or a JSON object as text
            Some(Value::String(s)) => match serde_json::from_str::<Value>(s) {
                Ok(Value::Object(m)) if m.contains_key("private_key") => {
                    let mut c = Map::new();
                    c.insert("service_account_json".into(), Value::String(s.clone()));
                    Ok(c)
                }
                Ok(Value::Object(m)) => Ok(m),
                _ => Err(ConfigError::CredentialsSecret),
            },
            _ => Ok(Map::new()),
        }
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
            FilesystemConfig,
            FilesystemSecrets,
        >(include_str!("../sluice-plugin.toml"));
        // every secret key is a `Secret`: set, none of them prints
        let secrets = sluice_sdk::testing::assert_secrets_hidden(
            &manifest.secrets,
            &json!({ "aws_secret_access_key": SECRET_CANARY }),
            |v| FilesystemSecrets::from_json(&v),
        );
        let creds = secrets.credentials().expect("a table");
        assert_eq!(creds["aws_secret_access_key"], SECRET_CANARY);
        // text that is no JSON object: the error does not quote it either
        let text = FilesystemSecrets::from_json(&json!({ "credentials": SECRET_CANARY }));
        let e = Error::from(text.credentials().expect_err("not a table"));
        assert!(!format!("{e} {e:?}").contains(SECRET_CANARY), "{e:?}");
        assert!(e.message.contains("sources.filesystem.credentials"), "{e}");
    }

    #[test]
    fn resources_take_the_top_level_keys_and_need_a_format_and_distinct_names() {
        let c = FilesystemConfig::from_json(json!({
            "bucket_url": "b", "file_glob": "*.csv", "incremental_files": true,
            "max_table_nesting": 1, "primary_key": "id",
            "resources": [{"name": "a"}, {"name": "b", "file_glob": "*.jsonl", "max_table_nesting": 0}],
        }))
        .expect("config");
        let r = c.tables().expect("tables");
        assert_eq!(r[0].file_glob, "*.csv");
        assert_eq!(r[0].format, Format::Csv);
        assert!(r[0].incremental_files);
        assert_eq!(r[0].max_table_nesting, Some(1));
        assert_eq!(r[1].format, Format::Jsonl);
        assert_eq!(r[1].max_table_nesting, Some(0));
        assert!(r[1].primary_key.is_some());
        // the single-resource form: `table_name`, or `name` as its alias
        for key in ["table_name", "name"] {
            let c =
                FilesystemConfig::from_json(json!({"bucket_url": "b", key: "t", "format": "json"}))
                    .expect("config");
            assert_eq!(c.tables().expect("one")[0].name, "t");
        }
        let c = FilesystemConfig::from_json(json!({"bucket_url": "b", "file_glob": "*.parquet"}))
            .expect("config");
        assert_eq!(c.tables().expect("one")[0].name, "read_parquet");
        let c = FilesystemConfig::from_json(json!({"bucket_url": "b"})).expect("config");
        assert!(matches!(c.tables(), Err(ConfigError::UnknownFormat { .. })));
        let c = FilesystemConfig::from_json(json!({
            "bucket_url": "b", "resources": [{"file_glob": "*.csv"}, {"file_glob": "x/*.csv"}],
        }))
        .expect("config");
        let e = c.tables().expect_err("two read_csv");
        assert!(
            e.to_string().contains("two resources are named `read_csv`"),
            "{e}"
        );
        let e = FilesystemConfig::from_json(json!({"file_glob": "*"})).expect_err("no bucket_url");
        assert!(
            e.to_string().starts_with("config of source `filesystem`:")
                && e.to_string().contains("bucket_url"),
            "{e}"
        );
    }
}
