//! The extract-time part of the schema: a resource's hints become its root table (dlt's
//! `compute_table_schema` + `update_table`), with the contract checked for new tables.
//!
//! What a resource contributes, as dlt 1.31 does it:
//! * `columns` hints (names normalized), then `primary_key` / `merge_key` columns (`nullable:
//!   false` unless set), then for scd2 the validity columns and the row version column, then the
//!   incremental cursor column (`incremental: true`);
//! * table keys `write_disposition` (merge dicts become `x-merge-strategy`,
//!   `x-stage-data-deduplicated`, ... hints), `schema_contract`, `resource`,
//!   `x-normalizer.max_nesting`, `file_format`, `table_format`;
//! * `x-normalizer.evolve-columns-once` for a new table whose contract does not evolve columns;
//! * root id propagation in the normalizer config for merge tables that are not scd2.

use indexmap::IndexMap;
use serde_json::{json, Value};
use sluice_sdk::resource::{ResourceDescriptor, WriteDispositionHint};
use sluice_sdk::schema::{Column, DataType, MergeStrategy, Table, WriteDisposition};

use crate::normalize::{Contract, ContractMode};
use crate::schema::{cols, Schema};
use crate::{Error, Result};

/// The root table name of a resource, normalized.
pub fn table_name_of(schema: &Schema, resource: &ResourceDescriptor) -> String {
    schema.naming().normalize_path(resource.table())
}

fn merge_props(into: &mut Column, from: &Column) {
    let from = serde_json::to_value(from).unwrap_or_default();
    let mut base = serde_json::to_value(&*into).unwrap_or_default();
    if let (Value::Object(b), Value::Object(f)) = (&mut base, from) {
        for (k, v) in f {
            b.insert(k, v);
        }
    }
    if let Ok(c) = serde_json::from_value(base) {
        *into = c;
    }
}

/// The table a resource's hints describe (not yet merged into the schema).
pub fn table_from_hints(schema: &Schema, resource: &ResourceDescriptor) -> Result<Table> {
    let naming = schema.naming();
    let name = table_name_of(schema, resource);
    let mut columns: IndexMap<String, Column> = IndexMap::new();
    for (raw, hint) in &resource.columns {
        let col_name = naming.normalize_path(raw);
        let mut c = hint.clone();
        c.name = col_name.clone();
        columns.insert(col_name, c);
    }
    let key = |hint: &str, keys: Vec<&str>, columns: &mut IndexMap<String, Column>| {
        for k in keys {
            let col_name = naming.normalize_path(k);
            let entry = columns.entry(col_name.clone()).or_insert_with(|| Column {
                name: col_name.clone(),
                nullable: Some(false),
                ..Default::default()
            });
            if entry.nullable.is_none() {
                entry.nullable = Some(false);
            }
            match hint {
                "primary_key" => entry.primary_key = Some(true),
                _ => entry.merge_key = Some(true),
            }
        }
    };
    if let Some(pk) = &resource.primary_key {
        key("primary_key", pk.columns(), &mut columns);
    }
    if let Some(mk) = &resource.merge_key {
        key("merge_key", mk.columns(), &mut columns);
    }
    let mut table = Table {
        name: name.clone(),
        resource: Some(resource.name.clone()),
        ..Default::default()
    };
    let mut extra: IndexMap<String, Value> = IndexMap::new();
    let disposition = match &resource.write_disposition {
        None => WriteDisposition::Append,
        Some(WriteDispositionHint::Name(d)) => *d,
        Some(WriteDispositionHint::Config(cfg)) => {
            if cfg.disposition == WriteDisposition::Merge {
                if let Some(s) = cfg.strategy {
                    extra.insert("x-merge-strategy".into(), json!(s.as_str()));
                }
                for (key, hint) in [
                    ("deduplicated", "x-stage-data-deduplicated"),
                    ("source_filter", "x-merge-source-filter"),
                    ("destination_scope", "x-merge-destination-scope"),
                    ("skip_unchanged_rows", "x-merge-skip-unchanged-rows"),
                ] {
                    if let Some(v) = cfg.options.get(key).filter(|v| truthy(v)) {
                        extra.insert(hint.into(), v.clone());
                    }
                }
                let row_version = cfg
                    .options
                    .get("row_version_column_name")
                    .and_then(Value::as_str)
                    .map(String::from);
                if cfg.strategy == Some(MergeStrategy::Scd2) {
                    if let Some(b) = cfg.options.get("boundary_timestamp") {
                        extra.insert("x-boundary-timestamp".into(), b.clone());
                    }
                    let (from, to) = match cfg
                        .options
                        .get("validity_column_names")
                        .and_then(Value::as_array)
                    {
                        Some(names) if names.len() == 2 => (
                            names[0].as_str().unwrap_or(cols::VALID_FROM).to_string(),
                            names[1].as_str().unwrap_or(cols::VALID_TO).to_string(),
                        ),
                        _ => (cols::VALID_FROM.to_string(), cols::VALID_TO.to_string()),
                    };
                    let mut vf = Column::new(from.clone(), DataType::Timestamp);
                    vf.extra.insert("x-valid-from".into(), json!(true));
                    columns.insert(from, vf);
                    let mut vt = Column::new(to.clone(), DataType::Timestamp);
                    vt.extra.insert("x-valid-to".into(), json!(true));
                    vt.extra.insert(
                        "x-active-record-timestamp".into(),
                        cfg.options
                            .get("active_record_timestamp")
                            .cloned()
                            .unwrap_or(Value::Null),
                    );
                    columns.insert(to, vt);
                    let hash_col = row_version.unwrap_or_else(|| cols::DLT_ID.to_string());
                    let mut h = Column {
                        name: hash_col.clone(),
                        nullable: Some(false),
                        unique: Some(false),
                        row_key: Some(false),
                        ..Default::default()
                    };
                    h.extra.insert("x-row-version".into(), json!(true));
                    columns.insert(hash_col, h);
                } else if let Some(rv) = row_version {
                    if cfg.options.get("skip_unchanged_rows").is_some_and(truthy) {
                        let entry = columns.entry(rv.clone()).or_insert_with(|| Column {
                            name: rv.clone(),
                            ..Default::default()
                        });
                        entry.nullable = Some(false);
                        entry.extra.insert("x-row-version".into(), json!(true));
                    }
                }
            }
            cfg.disposition
        }
    };
    if let Some(inc) = &resource.incremental {
        let cursor = inc.cursor_path.trim_start_matches("$.");
        let simple = !cursor.is_empty()
            && cursor
                .chars()
                .all(|c| c.is_alphanumeric() || c == '_' || c == ' ' || c == '-');
        if simple {
            let col_name = naming.normalize_path(cursor);
            let entry = columns.entry(col_name.clone()).or_insert_with(|| Column {
                name: col_name.clone(),
                ..Default::default()
            });
            entry.incremental = Some(true);
        }
    }
    table.columns = columns;
    table.write_disposition = Some(disposition);
    if let Some(c) = &resource.schema_contract {
        table.schema_contract = Some(c.clone());
    }
    if let Some(n) = resource.max_table_nesting {
        extra.insert("x-normalizer".into(), json!({ "max_nesting": n }));
    }
    if let Some(f) = resource.extra.get("file_format") {
        table.file_format = f.as_str().map(String::from);
    }
    if let Some(f) = resource.extra.get("table_format") {
        table.table_format = f.as_str().map(String::from);
    }
    table.extra = extra;
    Ok(table)
}

fn truthy(v: &Value) -> bool {
    match v {
        Value::Null => false,
        Value::Bool(b) => *b,
        Value::String(s) => !s.is_empty(),
        Value::Number(n) => n.as_f64().is_some_and(|f| f != 0.0),
        Value::Array(a) => !a.is_empty(),
        Value::Object(o) => !o.is_empty(),
    }
}

/// Merges a resource's hints into the schema: creates or updates its root table, checks the
/// contract for a new table (`freeze` fails with a clear error), adds root id propagation for
/// merge tables. Returns the root table name, or None when a `discard_*` contract filters the
/// whole table out.
pub fn apply_resource(
    schema: &mut Schema,
    resource: &ResourceDescriptor,
) -> Result<Option<String>> {
    let mut computed = table_from_hints(schema, resource)?;
    let name = computed.name.clone();
    // contract: the table's own setting (from the hints), else the schema's
    let contract = computed
        .schema_contract
        .as_ref()
        .and_then(Contract::from_value)
        .or_else(|| {
            schema
                .table(&name)
                .and_then(|t| t.schema_contract.as_ref())
                .and_then(Contract::from_value)
        })
        .or_else(|| {
            schema
                .doc()
                .settings
                .get("schema_contract")
                .and_then(Contract::from_value)
        })
        .unwrap_or_default();
    let is_new = schema.is_new_table(&name);
    if is_new && contract.columns != ContractMode::Evolve {
        let xn = computed
            .extra
            .entry("x-normalizer".to_string())
            .or_insert_with(|| json!({}));
        if let Value::Object(m) = xn {
            m.clear();
            m.insert("evolve-columns-once".into(), json!(true));
        }
    }
    if is_new && contract.tables != ContractMode::Evolve && !name.starts_with(cols::DLT_PREFIX) {
        if contract.tables == ContractMode::Freeze {
            return Err(Error::Contract {
                schema: schema.name().to_string(),
                table: name,
                column: None,
                entity: "tables".into(),
                mode: "freeze".into(),
                reason: "the table does not exist and cannot be created\nhint: load it once with the contract set to `evolve`, or allow new tables (schema_contract={\"tables\": \"evolve\"})".into(),
            });
        }
        return Ok(None);
    }
    merge_table(schema, computed);
    let disposition = schema.write_disposition_of(&name);
    let strategy = schema.table(&name).and_then(Table::merge_strategy);
    if disposition == WriteDisposition::Merge && strategy != Some(MergeStrategy::Scd2) {
        schema.add_root_propagation(&name);
    }
    Ok(Some(name))
}

/// dlt's `update_table` for a computed root table: columns merged (incomplete columns that
/// become complete move to the end), table keys overwritten.
pub fn merge_table(schema: &mut Schema, computed: Table) {
    let name = computed.name.clone();
    let doc = schema.doc_mut();
    match doc.tables.get_mut(&name) {
        None => {
            doc.tables.insert(name, computed);
        }
        Some(existing) => {
            for (col_name, col) in computed.columns {
                let complete = col.is_complete();
                match existing.columns.get(&col_name).cloned() {
                    Some(mut old) => {
                        if complete && !old.is_complete() {
                            existing.columns.shift_remove(&col_name);
                        }
                        merge_props(&mut old, &col);
                        existing.columns.insert(col_name, old);
                    }
                    None => {
                        existing.columns.insert(col_name, col);
                    }
                }
            }
            if computed.write_disposition.is_some() {
                existing.write_disposition = computed.write_disposition;
            }
            if computed.schema_contract.is_some() {
                existing.schema_contract = computed.schema_contract;
            }
            if computed.resource.is_some() {
                existing.resource = computed.resource;
            }
            if computed.file_format.is_some() {
                existing.file_format = computed.file_format;
            }
            if computed.table_format.is_some() {
                existing.table_format = computed.table_format;
            }
            for (k, v) in computed.extra {
                if k == "x-normalizer" {
                    let slot = existing.extra.entry(k).or_insert_with(|| json!({}));
                    if let (Value::Object(a), Value::Object(b)) = (slot, v) {
                        for (kk, vv) in b {
                            a.insert(kk, vv);
                        }
                    }
                } else {
                    existing.extra.insert(k, v);
                }
            }
        }
    }
}

/// Adds dlt's `_dlt_pipeline_state` table to the schema if it is not there yet.
pub fn ensure_state_table(schema: &mut Schema) {
    let t = sluice_sdk::schema::state_table();
    if schema.table(&t.name).is_none() {
        schema.doc_mut().tables.insert(t.name.clone(), t);
    }
}
