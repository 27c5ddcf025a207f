//! The dlt schema document, shared by the engine (which builds and evolves it) and by
//! destinations (which create tables from it).
//!
//! Field names and encodings follow dlt's stored schema (engine version 11): a schema has
//! `tables`, each table an ordered map of `columns`; hints are optional booleans; keys we do not
//! model (`x-normalizer`, `x-merge-strategy`, ...) are kept in `extra` so a document round-trips.

use indexmap::IndexMap;
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// dlt's data types.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DataType {
    /// UTF-8 text.
    Text,
    /// 64-bit signed integer (narrower with a precision hint).
    Bigint,
    /// 64-bit float.
    Double,
    /// Boolean.
    Bool,
    /// Timestamp (with time zone unless `timezone: false`).
    Timestamp,
    /// Calendar date.
    Date,
    /// Time of day.
    Time,
    /// Decimal with precision and scale (default 38, 9).
    Decimal,
    /// Large integer, as Ethereum's wei: decimal(38, 0) on most destinations.
    Wei,
    /// Bytes.
    Binary,
    /// A JSON document (`complex` in older schemas).
    #[serde(alias = "complex")]
    Json,
}

impl DataType {
    /// The dlt name of the type.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Text => "text",
            Self::Bigint => "bigint",
            Self::Double => "double",
            Self::Bool => "bool",
            Self::Timestamp => "timestamp",
            Self::Date => "date",
            Self::Time => "time",
            Self::Decimal => "decimal",
            Self::Wei => "wei",
            Self::Binary => "binary",
            Self::Json => "json",
        }
    }

    /// Parses a dlt type name (`complex` is accepted for `json`).
    pub fn parse(name: &str) -> Option<Self> {
        Some(match name {
            "text" => Self::Text,
            "bigint" => Self::Bigint,
            "double" => Self::Double,
            "bool" => Self::Bool,
            "timestamp" => Self::Timestamp,
            "date" => Self::Date,
            "time" => Self::Time,
            "decimal" => Self::Decimal,
            "wei" => Self::Wei,
            "binary" => Self::Binary,
            "json" | "complex" => Self::Json,
            _ => return None,
        })
    }
}

impl std::fmt::Display for DataType {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// How rows of a table are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum WriteDisposition {
    /// Insert all rows (the default).
    #[default]
    Append,
    /// Replace the table's content with this load's rows.
    Replace,
    /// Merge on primary/merge keys (strategy in the table's `x-merge-strategy`).
    Merge,
    /// Never loaded (dlt's own `_dlt_version` and `_dlt_loads`).
    Skip,
}

impl WriteDisposition {
    /// The dlt name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Append => "append",
            Self::Replace => "replace",
            Self::Merge => "merge",
            Self::Skip => "skip",
        }
    }
}

/// Merge strategies.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, Default)]
pub enum MergeStrategy {
    /// Delete matching rows, insert the new ones (dlt's default).
    #[default]
    #[serde(rename = "delete-insert")]
    DeleteInsert,
    /// `MERGE` on the primary key: update in place or insert.
    #[serde(rename = "upsert")]
    Upsert,
    /// Slowly changing dimension type 2: validity columns.
    #[serde(rename = "scd2")]
    Scd2,
    /// Insert only rows whose key is new.
    #[serde(rename = "insert-only")]
    InsertOnly,
}

impl MergeStrategy {
    /// The dlt name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::DeleteInsert => "delete-insert",
            Self::Upsert => "upsert",
            Self::Scd2 => "scd2",
            Self::InsertOnly => "insert-only",
        }
    }
}

/// Replace strategies.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, Default)]
pub enum ReplaceStrategy {
    /// Truncate the table chain when the schema is initialized, then insert.
    #[default]
    #[serde(rename = "truncate-and-insert")]
    TruncateAndInsert,
    /// Load into staging, then truncate and copy in one transaction.
    #[serde(rename = "insert-from-staging")]
    InsertFromStaging,
    /// Swap the staging table in where the destination can.
    #[serde(rename = "staging-optimized")]
    StagingOptimized,
}

/// A column of a table and its hints.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct Column {
    /// Column name (already normalized).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub name: String,
    /// Type; `None` for an incomplete column declared by hints only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub data_type: Option<DataType>,
    /// Whether NULL is allowed (default true).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nullable: Option<bool>,
    /// Precision: digits for decimals, bits for integers, fractional digits for timestamps,
    /// length for text and binary.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub precision: Option<u32>,
    /// Scale of decimals.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scale: Option<u32>,
    /// For timestamps and times: whether they carry a time zone (default true).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timezone: Option<bool>,
    /// This is a variant column (`col__v_<type>`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub variant: Option<bool>,
    /// Part of the primary key.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub primary_key: Option<bool>,
    /// Part of the merge key.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub merge_key: Option<bool>,
    /// Unique.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unique: Option<bool>,
    /// Partition column.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub partition: Option<bool>,
    /// Cluster column.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cluster: Option<bool>,
    /// Sort column.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sort: Option<bool>,
    /// Row key (`_dlt_id`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub row_key: Option<bool>,
    /// Parent key (`_dlt_parent_id`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parent_key: Option<bool>,
    /// Root key (`_dlt_root_id`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub root_key: Option<bool>,
    /// Marks deleted rows for merge.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hard_delete: Option<bool>,
    /// Order for merge deduplication: `asc` or `desc`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dedup_sort: Option<String>,
    /// The incremental cursor column.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub incremental: Option<bool>,
    /// Free text.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// Any other keys (`x-valid-from`, `x-row-version`, ...), kept in order.
    #[serde(flatten)]
    pub extra: IndexMap<String, Value>,
}

impl Column {
    /// A complete, nullable column.
    pub fn new(name: impl Into<String>, data_type: DataType) -> Self {
        Self {
            name: name.into(),
            data_type: Some(data_type),
            nullable: Some(true),
            ..Default::default()
        }
    }

    /// Whether the column allows NULL (dlt's default is true).
    pub fn is_nullable(&self) -> bool {
        self.nullable.unwrap_or(true)
    }

    /// Whether the column has a type (incomplete columns are declared by hints only and are not
    /// created in the destination).
    pub fn is_complete(&self) -> bool {
        self.data_type.is_some()
    }

    /// Whether a boolean hint (`primary_key`, `unique`, ...) or an `x-` hint is set to true.
    pub fn hint(&self, name: &str) -> bool {
        let flag = match name {
            "primary_key" => self.primary_key,
            "merge_key" => self.merge_key,
            "unique" => self.unique,
            "partition" => self.partition,
            "cluster" => self.cluster,
            "sort" => self.sort,
            "row_key" => self.row_key,
            "parent_key" => self.parent_key,
            "root_key" => self.root_key,
            "hard_delete" => self.hard_delete,
            "incremental" => self.incremental,
            "variant" => self.variant,
            other => self.extra.get(other).and_then(Value::as_bool),
        };
        flag.unwrap_or(false)
    }
}

/// A table of the schema.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct Table {
    /// Table name (already normalized).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub name: String,
    /// Columns in destination order.
    #[serde(default)]
    pub columns: IndexMap<String, Column>,
    /// Write disposition (root tables; child tables follow their root).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub write_disposition: Option<WriteDisposition>,
    /// Parent table of a child (nested) table.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parent: Option<String>,
    /// The resource that produces a root table.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resource: Option<String>,
    /// Free text.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// Schema contract of the table.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub schema_contract: Option<Value>,
    /// File format hint (`preferred`, `parquet`, ...).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub file_format: Option<String>,
    /// Table format (`delta`, `iceberg`, `native`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub table_format: Option<String>,
    /// Any other keys (`x-normalizer`, `x-merge-strategy`, `filters`, ...), kept in order.
    #[serde(flatten)]
    pub extra: IndexMap<String, Value>,
}

impl Table {
    /// Whether this is a child (nested) table.
    pub fn is_nested(&self) -> bool {
        self.parent.is_some()
    }

    /// The merge strategy hint (`x-merge-strategy`), if any.
    pub fn merge_strategy(&self) -> Option<MergeStrategy> {
        self.extra
            .get("x-merge-strategy")
            .and_then(|v| serde_json::from_value(v.clone()).ok())
    }

    /// Complete columns (those with a type) in order.
    pub fn complete_columns(&self) -> impl Iterator<Item = &Column> {
        self.columns.values().filter(|c| c.is_complete())
    }

    /// Names of the columns that carry `hint`, in column order.
    pub fn columns_with_hint(&self, hint: &str) -> Vec<&str> {
        self.columns
            .values()
            .filter(|c| c.hint(hint))
            .map(|c| c.name.as_str())
            .collect()
    }
}

/// A stored schema document (dlt engine version 11).
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct Schema {
    /// Increments on every content change.
    #[serde(default)]
    pub version: u64,
    /// Base64 SHA3-256 of the content.
    #[serde(default)]
    pub version_hash: String,
    /// Schema engine version (11).
    #[serde(default)]
    pub engine_version: u32,
    /// Schema name.
    pub name: String,
    /// Tables in order.
    #[serde(default)]
    pub tables: IndexMap<String, Table>,
    /// Settings: detections, default hints, preferred types, contract.
    #[serde(default, skip_serializing_if = "Value::is_null")]
    pub settings: Value,
    /// Normalizer configuration.
    #[serde(default, skip_serializing_if = "Value::is_null")]
    pub normalizers: Value,
    /// Previous version hashes, newest first.
    #[serde(default)]
    pub previous_hashes: Vec<String>,
    /// Any other keys, kept in order.
    #[serde(flatten)]
    pub extra: IndexMap<String, Value>,
}

impl Schema {
    /// The table named `name`.
    pub fn table(&self, name: &str) -> Option<&Table> {
        self.tables.get(name)
    }

    /// The root table of `name` (itself for a root table).
    pub fn root_of<'a>(&'a self, name: &'a str) -> &'a str {
        let mut current = name;
        while let Some(parent) = self.tables.get(current).and_then(|t| t.parent.as_deref()) {
            current = parent;
        }
        current
    }

    /// `root` followed by all its nested tables, parents before children, in schema order.
    pub fn table_chain<'a>(&'a self, root: &'a str) -> Vec<&'a str> {
        let mut chain = vec![root];
        let mut i = 0;
        while i < chain.len() {
            let parent = chain[i];
            for (name, table) in &self.tables {
                if table.parent.as_deref() == Some(parent) {
                    chain.push(name.as_str());
                }
            }
            i += 1;
        }
        chain
    }

    /// The write disposition that applies to `table` (its root's; `append` by default).
    pub fn write_disposition_of(&self, table: &str) -> WriteDisposition {
        let root = self.root_of(table);
        self.tables
            .get(root)
            .and_then(|t| t.write_disposition)
            .unwrap_or_default()
    }
}

/// Name of dlt's schema version table.
pub const VERSION_TABLE: &str = "_dlt_version";
/// Name of dlt's completed loads table.
pub const LOADS_TABLE: &str = "_dlt_loads";
/// Name of dlt's pipeline state table.
pub const STATE_TABLE: &str = "_dlt_pipeline_state";

fn system_column(name: &str, data_type: DataType, nullable: bool, description: &str) -> Column {
    Column {
        name: name.into(),
        data_type: Some(data_type),
        nullable: Some(nullable),
        description: (!description.is_empty()).then(|| description.to_string()),
        ..Default::default()
    }
}

fn system_table(
    name: &str,
    disposition: WriteDisposition,
    description: Option<&str>,
    columns: Vec<Column>,
) -> Table {
    Table {
        name: name.into(),
        columns: columns.into_iter().map(|c| (c.name.clone(), c)).collect(),
        write_disposition: Some(disposition),
        resource: Some(name.into()),
        description: description.map(String::from),
        ..Default::default()
    }
}

/// dlt's `_dlt_version` table, exactly as dlt 1.31 declares it.
pub fn version_table() -> Table {
    use DataType::*;
    system_table(
        VERSION_TABLE,
        WriteDisposition::Skip,
        Some("Created by DLT. Tracks schema updates"),
        vec![
            system_column(
                "version",
                Bigint,
                false,
                "Numeric version of the schema, incremented on each schema change",
            ),
            system_column(
                "engine_version",
                Bigint,
                false,
                "Version of the dlt schema engine that created this schema",
            ),
            system_column(
                "inserted_at",
                Timestamp,
                false,
                "Timestamp when this schema version was stored",
            ),
            system_column("schema_name", Text, false, "Name of the schema"),
            system_column(
                "version_hash",
                Text,
                false,
                "Unique hash of the schema content, used to detect changes",
            ),
            system_column(
                "schema",
                Text,
                false,
                "JSON representation of the complete schema definition",
            ),
        ],
    )
}

/// dlt's `_dlt_loads` table, exactly as dlt 1.31 declares it.
pub fn loads_table() -> Table {
    use DataType::*;
    let mut load_id = system_column(
        "load_id",
        Text,
        false,
        "Unique identifier of the load operation",
    );
    load_id.precision = Some(64);
    system_table(
        LOADS_TABLE,
        WriteDisposition::Skip,
        Some("Created by DLT. Tracks completed loads"),
        vec![
            load_id,
            system_column(
                "schema_name",
                Text,
                true,
                "Name of the schema associated with this load",
            ),
            system_column(
                "status",
                Bigint,
                false,
                "Status of the load operation (0 = success)",
            ),
            system_column(
                "inserted_at",
                Timestamp,
                false,
                "Timestamp when the load was completed",
            ),
            system_column(
                "schema_version_hash",
                Text,
                true,
                "Hash of the schema version used during this load",
            ),
        ],
    )
}

/// dlt's `_dlt_pipeline_state` table, exactly as dlt 1.31 declares it.
pub fn state_table() -> Table {
    use DataType::*;
    let mut load_id = system_column(
        "_dlt_load_id",
        Text,
        false,
        "Load identifier linking this row to its load operation",
    );
    load_id.precision = Some(64);
    let mut dlt_id = system_column("_dlt_id", Text, false, "");
    dlt_id.unique = Some(true);
    dlt_id.row_key = Some(true);
    let mut table = system_table(
        STATE_TABLE,
        WriteDisposition::Append,
        None,
        vec![
            system_column(
                "version",
                Bigint,
                false,
                "Numeric version of the pipeline state",
            ),
            system_column(
                "engine_version",
                Bigint,
                false,
                "Version of the dlt state engine",
            ),
            system_column(
                "pipeline_name",
                Text,
                false,
                "Name of the pipeline this state belongs to",
            ),
            system_column(
                "state",
                Text,
                false,
                "Compressed JSON representation of the pipeline state",
            ),
            system_column(
                "created_at",
                Timestamp,
                false,
                "Timestamp when this state was created",
            ),
            system_column(
                "version_hash",
                Text,
                true,
                "Hash of the state content, used to detect changes",
            ),
            load_id,
            dlt_id,
        ],
    );
    table.file_format = Some("preferred".into());
    table
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_a_dlt_table_and_keeps_unknown_keys() {
        let doc = serde_json::json!({
            "name": "items",
            "columns": {
                "id": {"name": "id", "data_type": "bigint", "nullable": false, "primary_key": true},
                "payload": {"name": "payload", "data_type": "complex", "x-custom": 1}
            },
            "write_disposition": "merge",
            "x-merge-strategy": "upsert",
            "resource": "items"
        });
        let t: Table = serde_json::from_value(doc).expect("table");
        assert_eq!(t.columns["payload"].data_type, Some(DataType::Json));
        assert_eq!(t.merge_strategy(), Some(MergeStrategy::Upsert));
        assert_eq!(t.columns_with_hint("primary_key"), vec!["id"]);
        assert_eq!(t.columns["payload"].extra["x-custom"], 1);
        let back = serde_json::to_value(&t).expect("json");
        assert_eq!(back["x-merge-strategy"], "upsert");
        assert_eq!(back["columns"]["payload"]["data_type"], "json");
    }

    #[test]
    fn finds_table_chains() {
        let mut s = Schema {
            name: "s".into(),
            ..Default::default()
        };
        for (n, p) in [
            ("a", None),
            ("a__b", Some("a")),
            ("a__b__c", Some("a__b")),
            ("x", None),
        ] {
            s.tables.insert(
                n.into(),
                Table {
                    name: n.into(),
                    parent: p.map(String::from),
                    ..Default::default()
                },
            );
        }
        assert_eq!(s.table_chain("a"), vec!["a", "a__b", "a__b__c"]);
        assert_eq!(s.root_of("a__b__c"), "a");
    }
}
