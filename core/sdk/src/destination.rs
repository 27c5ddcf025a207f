//! The destination side: [`Destination`], its job client, and the JSON payloads between them.

use std::path::Path;

use arrow_array::RecordBatchReader;
use indexmap::IndexMap;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::schema::{MergeStrategy, ReplaceStrategy, Schema};
use crate::{BatchStream, CancelToken, Error, Result};

/// A stream of batches handed to a destination.
pub type BatchReader = Box<dyn RecordBatchReader + Send>;

/// A destination: opens job clients for datasets.
pub trait Destination: Send + Sync + 'static {
    /// What the destination can do.
    fn capabilities(&self) -> Capabilities;

    /// Opens a job client for one dataset.
    fn open_client(&self, request: ClientRequest) -> Result<Box<dyn DestinationClient>>;
}

/// The job client of a destination for one dataset, mirroring dlt's job client.
///
/// The host drives a load package through it in this order: `initialize_storage`,
/// `update_stored_schema`, `start_load`, then `write_table`/`load_file` once per job, then
/// `complete_load`. A package whose `complete_load` did not return is retried from
/// `start_load` after a crash, so the writes of an incomplete package must not become visible
/// (transactions) or must be idempotent per `load_id`.
pub trait DestinationClient: Send {
    /// Creates the dataset if needed.
    fn initialize_storage(&mut self) -> Result<()>;
    /// Whether the dataset exists.
    fn is_storage_initialized(&mut self) -> Result<bool>;
    /// Drops the dataset with everything in it.
    fn drop_storage(&mut self) -> Result<()>;
    /// The newest stored version of schema `schema_name` (from `_dlt_version`).
    fn get_stored_schema(&mut self, schema_name: &str) -> Result<Option<StoredSchema>>;
    /// The newest pipeline state row of a completed load of `pipeline_name`.
    fn get_stored_state(&mut self, pipeline_name: &str) -> Result<Option<StoredState>>;
    /// Creates missing tables and columns, and stores the schema version if new.
    fn update_stored_schema(
        &mut self,
        schema: &Schema,
        schema_json: &str,
        request: &SchemaUpdateRequest,
    ) -> Result<SchemaUpdate>;
    /// Announces a load package and its jobs.
    fn start_load(&mut self, load_id: &str, plan: &LoadPlan) -> Result<()>;
    /// Writes batches into the table of `job`.
    fn write_table(
        &mut self,
        load_id: &str,
        job: &LoadJob,
        data: BatchReader,
        cancel: &CancelToken,
    ) -> Result<JobReport>;
    /// Loads a file the destination reads itself. Default: unsupported.
    fn load_file(
        &mut self,
        load_id: &str,
        job: &LoadJob,
        path: &Path,
        cancel: &CancelToken,
    ) -> Result<JobReport> {
        let _ = (load_id, job, path, cancel);
        Err(Error::unsupported("this destination does not load files"))
    }
    /// Completes the package (merge/replace, `_dlt_loads` row, state row).
    fn complete_load(&mut self, load_id: &str, completion: &LoadCompletion) -> Result<()>;
    /// Whether `load_id` was completed.
    fn is_load_completed(&mut self, load_id: &str) -> Result<bool>;
    /// Drops tables.
    fn drop_tables(&mut self, request: &DropTablesRequest) -> Result<()>;
    /// Runs a read-only SQL query. Default: unsupported.
    fn query(&mut self, sql: &str, cancel: &CancelToken) -> Result<BatchStream> {
        let _ = (sql, cancel);
        Err(Error::unsupported("this destination does not run queries"))
    }
}

/// The key of an error's `details` that is `true` when the package may be partly applied to a
/// destination without transactions: the engine then keeps the package pending (to be applied
/// again) instead of failing it, even for a refusal that will not go away by retrying.
pub const PARTIALLY_APPLIED: &str = "partially_applied";

/// What a destination can do (dlt's destination capabilities).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Capabilities {
    /// dlt's destination type name, e.g. `dlt.destinations.duckdb`.
    pub destination_type: String,
    /// The file format the host should write for `load_file` (`parquet`, `jsonl`), or `arrow`
    /// when the destination wants `write_table` streams.
    pub preferred_loader_file_format: String,
    /// All formats it accepts.
    pub supported_loader_file_formats: Vec<String>,
    /// Longest table identifier.
    pub max_identifier_length: usize,
    /// Longest column identifier.
    pub max_column_identifier_length: usize,
    /// Longest text value in `_dlt_version.schema` before it is compressed.
    pub max_text_data_type_length: usize,
    /// Whether identifiers are case-sensitive.
    pub has_case_sensitive_identifiers: bool,
    /// How the destination folds identifiers it creates (dlt's `casefold_identifier`):
    /// Snowflake folds to upper case. The engine refuses a schema with two names that fold to
    /// one identifier.
    pub casefold_identifier: Casefold,
    /// Merge strategies, the first is the default.
    pub supported_merge_strategies: Vec<MergeStrategy>,
    /// Replace strategies, the first is the default.
    pub supported_replace_strategies: Vec<ReplaceStrategy>,
    /// Whether DDL and DML run in transactions.
    pub supports_transactions: bool,
    /// Fractional digits of timestamps.
    pub timestamp_precision: u32,
    /// Default decimal precision and scale.
    pub decimal_precision: (u32, u32),
    /// Default wei precision and scale.
    pub wei_precision: (u32, u32),
    /// Whether `query` is implemented.
    pub supports_query: bool,
    /// Other capabilities.
    #[serde(flatten)]
    pub extra: IndexMap<String, Value>,
}

impl Default for Capabilities {
    fn default() -> Self {
        Self {
            destination_type: String::new(),
            preferred_loader_file_format: "arrow".into(),
            supported_loader_file_formats: vec!["arrow".into()],
            max_identifier_length: 65536,
            max_column_identifier_length: 65536,
            max_text_data_type_length: 1 << 30,
            has_case_sensitive_identifiers: false,
            casefold_identifier: Casefold::None,
            supported_merge_strategies: vec![MergeStrategy::DeleteInsert],
            supported_replace_strategies: vec![ReplaceStrategy::TruncateAndInsert],
            supports_transactions: false,
            timestamp_precision: 6,
            decimal_precision: (38, 9),
            wei_precision: (38, 0),
            supports_query: false,
            extra: IndexMap::new(),
        }
    }
}

/// How a destination folds the identifiers it creates (dlt's `casefold_identifier`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub enum Casefold {
    /// Kept as they are (dlt's `str`).
    #[default]
    #[serde(rename = "str")]
    None,
    /// Upper case (`str.upper`, Snowflake).
    #[serde(rename = "upper")]
    Upper,
    /// Lower case (`str.lower`).
    #[serde(rename = "lower")]
    Lower,
}

impl Casefold {
    /// `name` as the destination stores it.
    pub fn apply<'a>(self, name: &'a str) -> std::borrow::Cow<'a, str> {
        match self {
            Self::None => name.into(),
            Self::Upper => name.to_uppercase().into(),
            Self::Lower => name.to_lowercase().into(),
        }
    }
}

/// Options of a job client.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct ClientRequest {
    /// The dataset (schema, folder) to write.
    pub dataset_name: String,
    /// The pipeline writing it.
    #[serde(default)]
    pub pipeline_name: String,
    /// The staging dataset, if the host chose one (default: `<dataset>_staging`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub staging_dataset_name: Option<String>,
    /// Other options.
    #[serde(flatten)]
    pub options: IndexMap<String, Value>,
}

/// A row of `_dlt_version`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct StoredSchema {
    /// Schema version.
    pub version: i64,
    /// Schema engine version.
    pub engine_version: i64,
    /// When stored (ISO 8601).
    pub inserted_at: String,
    /// Schema name.
    pub schema_name: String,
    /// Version hash.
    pub version_hash: String,
    /// The schema document (JSON, decompressed).
    pub schema: String,
}

/// A row of `_dlt_pipeline_state` joined with its completed load.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct StoredState {
    /// State version.
    pub version: i64,
    /// State engine version.
    pub engine_version: i64,
    /// Pipeline name.
    pub pipeline_name: String,
    /// The encoded state (base64 of zlib of JSON).
    pub state: String,
    /// When created (ISO 8601).
    pub created_at: String,
    /// State version hash.
    #[serde(default)]
    pub version_hash: Option<String>,
    /// The load that stored it.
    pub load_id: String,
}

/// Options of `update_stored_schema`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct SchemaUpdateRequest {
    /// Only bring these tables in line (all when `None`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub only_tables: Option<Vec<String>>,
    /// Also create these tables in the staging dataset.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub staging_tables: Vec<String>,
}

/// What `update_stored_schema` changed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct SchemaUpdate {
    /// Tables created, with their columns.
    #[serde(default)]
    pub created_tables: IndexMap<String, Vec<String>>,
    /// Columns added to existing tables.
    #[serde(default)]
    pub added_columns: IndexMap<String, Vec<String>>,
    /// Whether a new `_dlt_version` row was stored.
    #[serde(default)]
    pub stored_version: bool,
}

/// The plan of a load package, given to `start_load`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct LoadPlan {
    /// Schema name.
    pub schema_name: String,
    /// Schema version hash in force.
    pub schema_version_hash: String,
    /// Tables to truncate before inserting (replace with truncate-and-insert).
    #[serde(default)]
    pub truncate_tables: Vec<String>,
    /// The jobs of the package.
    #[serde(default)]
    pub jobs: Vec<LoadJob>,
    /// Other plan data.
    #[serde(flatten)]
    pub extra: IndexMap<String, Value>,
}

/// One job: data for one table.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct LoadJob {
    /// Job id (file name without retry count).
    pub job_id: String,
    /// Target table.
    pub table_name: String,
    /// `arrow`, `parquet`, `jsonl`.
    pub file_format: String,
    /// Load into the staging dataset instead of the final one.
    #[serde(default)]
    pub staging: bool,
    /// Rows in the job, when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rows: Option<u64>,
    /// Other job data.
    #[serde(flatten)]
    pub extra: IndexMap<String, Value>,
}

/// What a job did.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct JobReport {
    /// Rows written.
    pub rows: u64,
    /// Bytes read or written, when known.
    #[serde(default)]
    pub bytes: u64,
    /// Other details.
    #[serde(flatten)]
    pub extra: IndexMap<String, Value>,
}

/// What `complete_load` must record.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct LoadCompletion {
    /// Schema name for the `_dlt_loads` row.
    pub schema_name: String,
    /// Schema version hash for the `_dlt_loads` row.
    pub schema_version_hash: String,
    /// Completion timestamp (ISO 8601, UTC).
    pub inserted_at: String,
    /// The pipeline state row to append to `_dlt_pipeline_state`, if the state changed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub state: Option<StoredState>,
    /// Other data (merge follow-ups, boundary timestamps).
    #[serde(flatten)]
    pub extra: IndexMap<String, Value>,
}

/// Which tables to drop.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct DropTablesRequest {
    /// Table names.
    pub tables: Vec<String>,
    /// Also drop them from the staging dataset.
    #[serde(default)]
    pub staging: bool,
}
