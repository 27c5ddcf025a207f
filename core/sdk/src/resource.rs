//! Resource descriptors and per-run requests, as they cross the boundary in JSON.

use indexmap::IndexMap;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::schema::{Column, MergeStrategy, WriteDisposition};

/// How a resource's batches are shaped.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum DataFormat {
    /// Batches of JSON documents in a `LargeUtf8` column named [`JSON_COLUMN`]; each value
    /// holds one or more whitespace-separated JSON values (JSON lines work as is). Optionally
    /// two more columns say where they come from, so that an error names the file and line:
    /// `_sluice_origin` (`LargeUtf8`, the file) and `_sluice_line` (`UInt64`, the line of the
    /// value's first document); see `JsonBatchBuilder`. A top-level
    /// array stands for its elements, as when a dlt resource yields a list. The host normalizes
    /// them into relational tables.
    #[default]
    Json,
    /// Typed Arrow batches; the host only normalizes names and adds system columns.
    Arrow,
}

/// Name of the documents column of [`DataFormat::Json`] batches.
pub const JSON_COLUMN: &str = "_sluice_json";

/// One key column or several.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum KeyHint {
    /// A single column.
    One(String),
    /// A compound key.
    Many(Vec<String>),
}

impl KeyHint {
    /// The column names.
    pub fn columns(&self) -> Vec<&str> {
        match self {
            Self::One(c) => vec![c.as_str()],
            Self::Many(cs) => cs.iter().map(String::as_str).collect(),
        }
    }
}

/// A write disposition: a name, or dlt's dict form with a merge strategy and options.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum WriteDispositionHint {
    /// `"append"`, `"replace"`, `"merge"`, `"skip"`.
    Name(WriteDisposition),
    /// `{"disposition": "merge", "strategy": "scd2", ...}`.
    Config(WriteDispositionConfig),
}

impl WriteDispositionHint {
    /// The disposition.
    pub fn disposition(&self) -> WriteDisposition {
        match self {
            Self::Name(d) => *d,
            Self::Config(c) => c.disposition,
        }
    }

    /// The merge strategy, if given.
    pub fn strategy(&self) -> Option<MergeStrategy> {
        match self {
            Self::Name(_) => None,
            Self::Config(c) => c.strategy,
        }
    }
}

/// dlt's dict form of a write disposition.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WriteDispositionConfig {
    /// The disposition.
    pub disposition: WriteDisposition,
    /// Merge strategy.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub strategy: Option<MergeStrategy>,
    /// Other options (`validity_column_names`, `boundary_timestamp`, `deduplicated`, ...).
    #[serde(flatten)]
    pub options: IndexMap<String, Value>,
}

/// Incremental loading settings of a resource, as `dlt.sources.incremental` takes them.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct IncrementalSpec {
    /// Field name or JSONPath of the cursor.
    pub cursor_path: String,
    /// Start value on the first run.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub initial_value: Option<Value>,
    /// Stop value (exclusive by default); state is not kept when set.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub end_value: Option<Value>,
    /// `max` (default) or `min`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_value_func: Option<String>,
    /// Key for boundary deduplication (default: the resource's primary key).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub primary_key: Option<KeyHint>,
    /// `asc` or `desc`: lets the source stop early.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub row_order: Option<String>,
    /// `raise` (default), `include` or `exclude`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub on_cursor_value_missing: Option<String>,
    /// Lag applied to the start value (seconds for datetimes, days for dates, units for numbers).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lag: Option<f64>,
    /// `closed` (default) or `open`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub range_start: Option<String>,
    /// `open` (default) or `closed`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub range_end: Option<String>,
}

/// What a source says about one of its resources.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct ResourceDescriptor {
    /// Resource name (unique within the source).
    pub name: String,
    /// Table name; the resource name when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub table_name: Option<String>,
    /// A field of each document whose value is the table name (dlt's callable table names,
    /// e.g. GitHub events by `type`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub table_name_path: Option<String>,
    /// Write disposition (append when absent).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub write_disposition: Option<WriteDispositionHint>,
    /// Primary key.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub primary_key: Option<KeyHint>,
    /// Merge key.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub merge_key: Option<KeyHint>,
    /// Column hints, in declaration order.
    #[serde(default, skip_serializing_if = "IndexMap::is_empty")]
    pub columns: IndexMap<String, Column>,
    /// Incremental cursor.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub incremental: Option<IncrementalSpec>,
    /// Shape of the batches.
    #[serde(default)]
    pub data_format: DataFormat,
    /// Nesting levels turned into child tables (deeper values become JSON columns).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_table_nesting: Option<u32>,
    /// Schema contract (a mode or `{tables, columns, data_type}`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub schema_contract: Option<Value>,
    /// Resources this one reads from (scheduling hint; resolved inside the plugin).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub depends_on: Vec<String>,
    /// Whether the resource is selected by default.
    #[serde(default = "default_true")]
    pub selected: bool,
    /// Free text.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// Other keys.
    #[serde(flatten)]
    pub extra: IndexMap<String, Value>,
}

fn default_true() -> bool {
    true
}

impl ResourceDescriptor {
    /// A selected resource producing JSON documents into a table of the same name.
    pub fn new(name: impl Into<String>) -> Self {
        Self {
            name: name.into(),
            selected: true,
            ..Default::default()
        }
    }

    /// The table the resource writes (its name when no table name is set).
    pub fn table(&self) -> &str {
        self.table_name.as_deref().unwrap_or(&self.name)
    }
}

/// The host's request to run one resource once.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct ResourceRequest {
    /// Resource name.
    pub resource: String,
    /// The resource's stored state (`state.sources.<source>.resources.<name>`), without the
    /// `incremental` key, which the host manages; `null` on the first run.
    #[serde(default)]
    pub state: Value,
    /// Incremental window for this run, when the resource has a cursor.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub incremental: Option<IncrementalWindow>,
    /// Stop after this many items/pages (dlt's `add_limit`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub limit: Option<u64>,
    /// Preferred maximum rows per batch.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_batch_rows: Option<usize>,
    /// Extra parameters.
    #[serde(default, skip_serializing_if = "Value::is_null")]
    pub params: Value,
    /// Every resource (this one included) the host opens in this run and reads at the same
    /// time, each on its own stream, all opened within moments of each other; empty when the
    /// host reads resources one after another. A source may share work between them, as dlt
    /// forks a parent's items to its transformers: the rest_api source requests a parent's
    /// pages once for the parent's own table and for the children that take its records.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub run_resources: Vec<String>,
    /// Identifies the run (the load id) for `run_resources`: streams of one run belong together.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub run_id: Option<String>,
}

/// The incremental window the host computed for a run: the source may use it to narrow its
/// queries (`WHERE cursor >= start_value`, `since=` parameters); the host still filters rows.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct IncrementalWindow {
    /// The cursor settings.
    pub spec: IncrementalSpec,
    /// The value this run starts from (last run's `last_value`, lag applied).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub start_value: Option<Value>,
    /// The stored `last_value`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_value: Option<Value>,
    /// The configured end value.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub end_value: Option<Value>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn descriptor_json_shapes() {
        let d: ResourceDescriptor = serde_json::from_str(
            r#"{"name":"issues","write_disposition":{"disposition":"merge","strategy":"scd2",
                "validity_column_names":["from","to"]},"primary_key":["id","repo"],
                "incremental":{"cursor_path":"updated_at","initial_value":"2024-01-01T00:00:00Z"},
                "data_format":"json"}"#,
        )
        .expect("descriptor");
        let wd = d.write_disposition.as_ref().expect("wd");
        assert_eq!(wd.disposition(), WriteDisposition::Merge);
        assert_eq!(wd.strategy(), Some(MergeStrategy::Scd2));
        assert_eq!(
            d.primary_key.as_ref().map(KeyHint::columns),
            Some(vec!["id", "repo"])
        );
        assert!(d.selected);
        assert_eq!(d.table(), "issues");
        let simple: ResourceDescriptor = serde_json::from_str(
            r#"{"name":"x","write_disposition":"replace","primary_key":"id"}"#,
        )
        .expect("simple");
        assert_eq!(
            simple.write_disposition,
            Some(WriteDispositionHint::Name(WriteDisposition::Replace))
        );
    }
}
