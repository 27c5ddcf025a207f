//! The dlt schema as the engine uses it: the stored document (spec d.1) plus compiled settings
//! (naming, detections, default hints, preferred types), versioning (d.2) and the column
//! inference rules of dlt's normalizer (c.4).

use indexmap::IndexMap;
use serde_json::{json, Value};
use sluice_sdk::schema::{self as doc, Column, DataType, Table, WriteDisposition};

use crate::detect::Detection;
use crate::naming::{Naming, NamingKind};
use crate::{hash, Error, Result};

/// dlt's schema engine version.
pub const ENGINE_VERSION: u32 = 11;

/// dlt's relational normalizer module name, stored in `normalizers.json.module`.
pub const RELATIONAL_MODULE: &str = "dlt.common.normalizers.json.relational";

/// System column names.
pub mod cols {
    /// Row id.
    pub const DLT_ID: &str = "_dlt_id";
    /// Load id (root rows).
    pub const LOAD_ID: &str = "_dlt_load_id";
    /// Parent row id (child rows).
    pub const PARENT_ID: &str = "_dlt_parent_id";
    /// Position in the parent's list (child rows).
    pub const LIST_IDX: &str = "_dlt_list_idx";
    /// Root row id (propagated to descendants).
    pub const ROOT_ID: &str = "_dlt_root_id";
    /// scd2 validity start.
    pub const VALID_FROM: &str = "_dlt_valid_from";
    /// scd2 validity end.
    pub const VALID_TO: &str = "_dlt_valid_to";
    /// Prefix of dlt's own names.
    pub const DLT_PREFIX: &str = "_dlt";
}

/// A "simple regex" of dlt's settings: an exact name, or `re:<regex>` (searched).
#[derive(Debug, Clone)]
pub enum SimpleRegex {
    /// Matches exactly this name.
    Exact(String),
    /// Matches when the regex finds a match anywhere in the name.
    Regex(regex::Regex),
}

impl SimpleRegex {
    /// Compiles a simple regex.
    pub fn compile(text: &str) -> Result<Self> {
        match text.strip_prefix("re:") {
            Some(rx) => regex::Regex::new(rx).map(SimpleRegex::Regex).map_err(|e| {
                Error::schema(format!("invalid regex `{text}` in schema settings: {e}"))
            }),
            None => Ok(SimpleRegex::Exact(text.to_string())),
        }
    }

    /// Whether `name` matches.
    pub fn is_match(&self, name: &str) -> bool {
        match self {
            SimpleRegex::Exact(s) => s == name,
            SimpleRegex::Regex(r) => r.is_match(name),
        }
    }
}

/// Column hints of `settings.default_hints`, in dlt's order.
const HINT_ORDER: [&str; 5] = ["not_null", "parent_key", "root_key", "unique", "row_key"];

/// A schema: the dlt document and what the engine compiled from it.
#[derive(Debug, Clone)]
pub struct Schema {
    doc: doc::Schema,
    naming: Naming,
    detections: Vec<Detection>,
    hints: Vec<(String, Vec<SimpleRegex>)>,
    preferred: Vec<(SimpleRegex, DataType)>,
    /// true until the first content change is recorded: dlt keeps version 1 for it.
    fresh: bool,
}

fn default_settings() -> Value {
    json!({
        "detections": ["iso_timestamp"],
        "default_hints": {
            "not_null": ["_dlt_id", "_dlt_root_id", "_dlt_parent_id", "_dlt_list_idx", "_dlt_load_id"],
            "parent_key": ["_dlt_parent_id"],
            "root_key": ["_dlt_root_id"],
            "unique": ["_dlt_id"],
            "row_key": ["_dlt_id"],
        }
    })
}

impl Schema {
    /// A new schema named `name` with dlt's defaults: the `_dlt_version` and `_dlt_loads`
    /// tables, the default hints and the `iso_timestamp` detection. Version 1.
    pub fn new(name: &str, naming: Naming) -> Self {
        let mut d = doc::Schema {
            version: 1,
            engine_version: ENGINE_VERSION,
            name: name.to_string(),
            settings: default_settings(),
            normalizers: json!({"names": naming.kind.name(), "json": {"module": RELATIONAL_MODULE}}),
            ..Default::default()
        };
        for t in [doc::version_table(), doc::loads_table()] {
            d.tables.insert(t.name.clone(), t);
        }
        let mut schema = Self {
            doc: d,
            naming,
            detections: Vec::new(),
            hints: Vec::new(),
            preferred: Vec::new(),
            fresh: true,
        };
        // settings are our own defaults: they always compile
        let _ = schema.compile_settings();
        schema.doc.version_hash = schema.content_hash();
        schema
    }

    /// A schema from a stored document.
    pub fn from_doc(d: doc::Schema, max_identifier_length: Option<usize>) -> Result<Self> {
        let names = d
            .normalizers
            .get("names")
            .and_then(Value::as_str)
            .unwrap_or("snake_case");
        let kind = NamingKind::parse(names).ok_or_else(|| {
            Error::schema(format!(
                "schema `{}` uses the naming convention `{names}`, which sluice does not have",
                d.name
            ))
        })?;
        let mut schema = Self {
            fresh: d.version_hash.is_empty(),
            doc: d,
            naming: Naming::new(kind, max_identifier_length),
            detections: Vec::new(),
            hints: Vec::new(),
            preferred: Vec::new(),
        };
        schema.compile_settings()?;
        Ok(schema)
    }

    fn compile_settings(&mut self) -> Result<()> {
        let settings = &self.doc.settings;
        self.detections = settings
            .get("detections")
            .and_then(Value::as_array)
            .map(|a| {
                a.iter()
                    .filter_map(Value::as_str)
                    .filter_map(Detection::parse)
                    .collect()
            })
            .unwrap_or_default();
        self.hints.clear();
        if let Some(Value::Object(hints)) = settings.get("default_hints") {
            // dlt's order first, then any others
            let mut names: Vec<&String> = hints.keys().collect();
            names.sort_by_key(|n| HINT_ORDER.iter().position(|h| h == n).unwrap_or(usize::MAX));
            for name in names {
                let rx: Result<Vec<SimpleRegex>> = hints[name]
                    .as_array()
                    .map(|a| {
                        a.iter()
                            .filter_map(Value::as_str)
                            .map(SimpleRegex::compile)
                            .collect()
                    })
                    .unwrap_or_else(|| Ok(Vec::new()));
                self.hints.push((name.clone(), rx?));
            }
        }
        self.preferred.clear();
        if let Some(Value::Object(types)) = settings.get("preferred_types") {
            for (rx, t) in types {
                let dt = t.as_str().and_then(DataType::parse).ok_or_else(|| {
                    Error::schema(format!("invalid preferred type for `{rx}`: {t}"))
                })?;
                self.preferred.push((SimpleRegex::compile(rx)?, dt));
            }
        }
        Ok(())
    }

    /// The stored document.
    pub fn doc(&self) -> &doc::Schema {
        &self.doc
    }

    /// The document, mutable. Call [`Schema::recompile`] after changing settings.
    pub fn doc_mut(&mut self) -> &mut doc::Schema {
        &mut self.doc
    }

    /// Recompiles the settings after a change to `doc.settings`.
    pub fn recompile(&mut self) -> Result<()> {
        self.compile_settings()
    }

    /// The schema name.
    pub fn name(&self) -> &str {
        &self.doc.name
    }

    /// The naming convention.
    pub fn naming(&self) -> &Naming {
        &self.naming
    }

    /// The type detections in force.
    pub fn detections(&self) -> &[Detection] {
        &self.detections
    }

    /// The table `name`.
    pub fn table(&self, name: &str) -> Option<&Table> {
        self.doc.tables.get(name)
    }

    /// The table `name`, mutable.
    pub fn table_mut(&mut self, name: &str) -> Option<&mut Table> {
        self.doc.tables.get_mut(name)
    }

    /// Whether `name` is new: absent, or with only incomplete columns.
    pub fn is_new_table(&self, name: &str) -> bool {
        match self.doc.tables.get(name) {
            None => true,
            Some(t) => !t.columns.values().any(Column::is_complete),
        }
    }

    /// The full stored form as JSON (tables and columns carry their `name`), as dlt's
    /// `to_dict()`.
    pub fn to_value(&self) -> Value {
        serde_json::to_value(&self.doc).unwrap_or(Value::Null)
    }

    /// The version hash of the current content.
    pub fn content_hash(&self) -> String {
        hash::schema_version_hash(&self.to_value())
    }

    /// The stored version.
    pub fn version(&self) -> u64 {
        self.doc.version
    }

    /// The stored version hash.
    pub fn version_hash(&self) -> &str {
        &self.doc.version_hash
    }

    /// Records content changes as dlt does when it saves: if the content hash differs from the
    /// stored one, the old hash goes to `previous_hashes` (newest first, at most 10) and the
    /// version increases, except for a schema never changed since it was created, which keeps
    /// version 1. Returns whether the content changed.
    pub fn bump_version(&mut self) -> bool {
        let h = self.content_hash();
        if h == self.doc.version_hash {
            return false;
        }
        let previous = std::mem::replace(&mut self.doc.version_hash, h);
        if !previous.is_empty() && !self.doc.previous_hashes.contains(&previous) {
            self.doc.previous_hashes.insert(0, previous);
            self.doc.previous_hashes.truncate(10);
        }
        if self.fresh {
            self.fresh = false;
            if self.doc.version == 0 {
                self.doc.version = 1;
            }
        } else {
            self.doc.version += 1;
        }
        true
    }

    /// Takes over the version, version hash, previous hashes and "fresh" marker of `other`
    /// (the same schema at an earlier stage), so the next [`Schema::bump_version`] counts from
    /// there.
    pub fn adopt_version_of(&mut self, other: &Schema) {
        self.doc.version = other.doc.version;
        self.doc.version_hash = other.doc.version_hash.clone();
        self.doc.previous_hashes = other.doc.previous_hashes.clone();
        self.fresh = other.fresh;
    }

    /// Whether the default hint `hint` (e.g. `not_null`) matches column `name`.
    pub fn infer_hint(&self, hint: &str, name: &str) -> bool {
        self.hints
            .iter()
            .find(|(h, _)| h == hint)
            .is_some_and(|(_, rx)| rx.iter().any(|r| r.is_match(name)))
    }

    /// The preferred type for column `name`, if a `preferred_types` regex matches.
    pub fn preferred_type(&self, name: &str) -> Option<DataType> {
        self.preferred
            .iter()
            .find(|(rx, _)| rx.is_match(name))
            .map(|(_, t)| *t)
    }

    /// A new inferred column, as dlt's normalizer builds it (`_infer_column`): name, type,
    /// `nullable` from the `not_null` hint, other default hints where they match, and the
    /// variant marker with dlt's description.
    pub fn infer_column(&self, name: &str, data_type: DataType, is_variant: bool) -> Column {
        let mut c = Column {
            name: name.to_string(),
            data_type: Some(data_type),
            nullable: Some(!self.infer_hint("not_null", name)),
            ..Default::default()
        };
        for (hint, rx) in &self.hints {
            if hint == "not_null" || !rx.iter().any(|r| r.is_match(name)) {
                continue;
            }
            match hint.as_str() {
                "parent_key" => c.parent_key = Some(true),
                "root_key" => c.root_key = Some(true),
                "unique" => c.unique = Some(true),
                "row_key" => c.row_key = Some(true),
                "primary_key" => c.primary_key = Some(true),
                "merge_key" => c.merge_key = Some(true),
                "partition" => c.partition = Some(true),
                "cluster" => c.cluster = Some(true),
                "sort" => c.sort = Some(true),
                "hard_delete" => c.hard_delete = Some(true),
                other => {
                    c.extra.insert(other.to_string(), Value::Bool(true));
                }
            }
        }
        if is_variant {
            c.variant = Some(true);
            c.description = Some(format!("Variant of column {name} generated by dlt"));
        }
        c
    }

    /// The root table of `name`.
    pub fn root_table_of<'a>(&'a self, name: &'a str) -> &'a str {
        self.doc.root_of(name)
    }

    /// The write disposition in force for `name` (its root's).
    pub fn write_disposition_of(&self, name: &str) -> WriteDisposition {
        self.doc.write_disposition_of(name)
    }

    /// Adds a child table `name` of `parent` if it does not exist (dlt's `new_table`).
    pub fn ensure_child_table(&mut self, name: &str, parent: &str) {
        if !self.doc.tables.contains_key(name) {
            self.doc.tables.insert(
                name.to_string(),
                Table {
                    name: name.to_string(),
                    parent: Some(parent.to_string()),
                    ..Default::default()
                },
            );
        }
    }

    /// Marks `table` as having seen data (`x-normalizer.seen-data`), dropping the one-shot
    /// `evolve-columns-once` marker.
    pub fn mark_seen_data(&mut self, table: &str) {
        if let Some(t) = self.doc.tables.get_mut(table) {
            let xn = t
                .extra
                .entry("x-normalizer".to_string())
                .or_insert_with(|| Value::Object(Default::default()));
            if let Value::Object(m) = xn {
                m.remove("evolve-columns-once");
                m.insert("seen-data".into(), Value::Bool(true));
            }
        }
    }

    /// Whether `table` has seen data.
    pub fn has_seen_data(&self, table: &str) -> bool {
        self.doc
            .tables
            .get(table)
            .and_then(|t| t.extra.get("x-normalizer"))
            .and_then(|x| x.get("seen-data"))
            .and_then(Value::as_bool)
            .unwrap_or(false)
    }

    /// The propagation config of the relational normalizer:
    /// `normalizers.json.config.propagation.tables.<root> = {_dlt_id: _dlt_root_id}`.
    pub fn propagates_root_id(&self, root: &str) -> bool {
        let prop = self.doc.normalizers.pointer("/json/config/propagation");
        let Some(prop) = prop else { return false };
        if prop.pointer("/root/_dlt_id").is_some() {
            return true;
        }
        prop.get("tables")
            .and_then(|t| t.get(root))
            .and_then(|t| t.get(cols::DLT_ID))
            .is_some()
    }

    /// Adds root id propagation for the root table `root`.
    pub fn add_root_propagation(&mut self, root: &str) {
        let json_cfg = self.doc.normalizers.as_object_mut().map(|n| {
            n.entry("json")
                .or_insert_with(|| json!({"module": RELATIONAL_MODULE}))
        });
        let Some(Value::Object(json_cfg)) = json_cfg else {
            return;
        };
        let config = json_cfg
            .entry("config")
            .or_insert_with(|| Value::Object(Default::default()));
        let Value::Object(config) = config else {
            return;
        };
        let prop = config
            .entry("propagation")
            .or_insert_with(|| Value::Object(Default::default()));
        let Value::Object(prop) = prop else { return };
        let tables = prop
            .entry("tables")
            .or_insert_with(|| Value::Object(Default::default()));
        if let Value::Object(tables) = tables {
            if !tables.contains_key(root) {
                tables.insert(root.to_string(), json!({ "_dlt_id": "_dlt_root_id" }));
            }
        }
    }

    /// The maximum nesting for table `name`: its own `x-normalizer.max_nesting`, its root's,
    /// the normalizer config's `max_nesting`, else 1000.
    pub fn max_nesting(&self, name: &str) -> usize {
        let own = |t: &str| {
            self.doc
                .tables
                .get(t)
                .and_then(|t| t.extra.get("x-normalizer"))
                .and_then(|x| x.get("max_nesting"))
                .and_then(Value::as_u64)
        };
        own(name)
            .or_else(|| own(self.root_table_of(name)))
            .or_else(|| {
                self.doc
                    .normalizers
                    .pointer("/json/config/max_nesting")
                    .and_then(Value::as_u64)
            })
            .map_or(1000, |v| v as usize)
    }

    /// The tables in schema order.
    pub fn tables(&self) -> &IndexMap<String, Table> {
        &self.doc.tables
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_new_schema_matches_dlts_defaults() {
        let s = Schema::new("golden_merge_upsert", Naming::snake_case());
        assert_eq!(s.version(), 1);
        let v = s.to_value();
        assert_eq!(
            v["tables"]["_dlt_loads"]["columns"]["load_id"]["precision"],
            64
        );
        assert_eq!(v["normalizers"]["names"], "snake_case");
        assert!(s.infer_hint("not_null", "_dlt_id"));
        assert!(!s.infer_hint("not_null", "id"));
        let c = s.infer_column("_dlt_id", DataType::Text, false);
        assert_eq!(
            serde_json::to_value(&c).expect("json"),
            json!({"name": "_dlt_id", "data_type": "text", "nullable": false, "unique": true, "row_key": true})
        );
    }

    #[test]
    fn versions_bump_like_dlt() {
        let mut s = Schema::new("x", Naming::snake_case());
        let h0 = s.version_hash().to_string();
        s.doc_mut().tables.insert(
            "t".into(),
            Table {
                name: "t".into(),
                ..Default::default()
            },
        );
        assert!(s.bump_version());
        assert_eq!(s.version(), 1, "the first change keeps version 1");
        assert_eq!(s.doc().previous_hashes, vec![h0.clone()]);
        s.mark_seen_data("t");
        assert!(s.bump_version());
        assert_eq!(s.version(), 2);
        assert_eq!(s.doc().previous_hashes.len(), 2);
        assert!(!s.bump_version());
    }
}
