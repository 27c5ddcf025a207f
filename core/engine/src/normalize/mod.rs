//! The relational normalizer: JSON documents into rows of relational tables, as dlt's
//! `relational` normalizer and `JsonLItemsNormalizer` do (spec b and c.4), into Arrow column
//! buffers that are flushed to a [`BatchSink`] as they fill.
//!
//! For each document (item) of a root table:
//! 1. the item is flattened with dlt's LIFO stack (scalars first, nested dicts in reverse order),
//!    dicts becoming `a__b` columns and lists becoming child tables, down to the table's nesting
//!    budget (deeper values are `json` columns);
//! 2. system columns are added in dlt's order (`_dlt_root_id`, `_dlt_load_id` or
//!    `_dlt_parent_id`/`_dlt_list_idx`, `_dlt_id`), with dlt's row ids;
//! 3. every value is fitted into its column: kept, coerced, or stored in a variant column; new
//!    columns are inferred (detections, preferred types, default hints) and checked against the
//!    schema contract;
//! 4. child rows follow their parent, depth first.
//!
//! Key normalization and column lookups are cached per table in a trie of raw keys, so a steady
//! stream of documents costs one hash lookup per key.

pub mod arrow_input;
pub mod buffer;
mod contract;
pub mod parallel;

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::rc::Rc;
use std::sync::Arc;

use ahash::{AHashMap, AHashSet};
use arrow_array::RecordBatch;
use sluice_sdk::schema::{Column, DataType, Table};

use crate::coerce::{coerce, ColumnHints};
use crate::detect::autodetect;
use crate::json::{self, Doc, Node, NodeRef, Parser};
use crate::schema::{cols, Schema};
use crate::types::{Coerced, Scalar};
use crate::{hash, Error, Result};

pub use buffer::{arrow_field_of, arrow_type_of, TableBuffer};
pub use contract::{Contract, ContractMode};

impl NormalizeReport {
    /// Adds a chunk's output.
    pub fn add(&mut self, out: ChunkOutput) {
        self.items += out.items;
        for (t, n) in out.rows {
            *self.rows.entry(t).or_default() += n;
        }
        for (t, cols) in out.null_only {
            let entry = self.null_only_columns.entry(t).or_default();
            for c in cols {
                if !entry.contains(&c) {
                    entry.push(c);
                }
            }
        }
    }

    /// Marks the tables that received rows as having seen data (`x-normalizer.seen-data`) and
    /// keeps only null-only columns that were never created.
    pub fn finalize(&mut self, schema: &mut Schema) {
        for t in self.rows.keys() {
            schema.mark_seen_data(t);
        }
        for (table, cols) in self.null_only_columns.iter_mut() {
            let existing = schema.table(table);
            cols.retain(|c| {
                existing.is_none_or(|t| !t.columns.get(c).is_some_and(Column::is_complete))
            });
            cols.sort();
        }
        self.null_only_columns.retain(|_, cols| !cols.is_empty());
    }
}

/// Where finished batches go (a load package writer, or memory in tests).
pub trait BatchSink {
    /// Takes a finished batch of rows of `table`.
    fn write(&mut self, table: &str, batch: RecordBatch) -> Result<()>;
}

/// Collects batches in memory.
#[derive(Debug, Default)]
pub struct MemorySink {
    /// Batches per table, in order.
    pub tables: BTreeMap<String, Vec<RecordBatch>>,
}

impl BatchSink for MemorySink {
    fn write(&mut self, table: &str, batch: RecordBatch) -> Result<()> {
        self.tables
            .entry(table.to_string())
            .or_default()
            .push(batch);
        Ok(())
    }
}

/// What a normalizer produced since its last [`Normalizer::take_output`].
#[derive(Debug, Clone, Default)]
pub struct ChunkOutput {
    /// Whether tables or columns were added.
    pub schema_changed: bool,
    /// Rows per table.
    pub rows: BTreeMap<String, u64>,
    /// Columns that received only nulls, per table.
    pub null_only: BTreeMap<String, Vec<String>>,
    /// Items read.
    pub items: u64,
}

/// Tuning of the normalizer.
#[derive(Debug, Clone)]
pub struct NormalizeOptions {
    /// Rows per batch before it is flushed to the sink.
    pub batch_rows: usize,
    /// Bytes buffered per table before the batch is flushed.
    pub batch_bytes: usize,
}

impl Default for NormalizeOptions {
    fn default() -> Self {
        Self {
            batch_rows: 64 * 1024,
            batch_bytes: 32 << 20,
        }
    }
}

/// What a normalize run produced.
#[derive(Debug, Clone, Default)]
pub struct NormalizeReport {
    /// Rows per table.
    pub rows: BTreeMap<String, u64>,
    /// Columns that only received nulls (not created), per table.
    pub null_only_columns: BTreeMap<String, Vec<String>>,
    /// Items (documents) read.
    pub items: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum RowIdType {
    Random,
    KeyHash,
    RowHash,
}

struct TrieNode {
    children: AHashMap<Box<str>, u32>,
    /// the raw key of this node
    raw: Box<str>,
    /// the children by position in the last object seen here: documents of one source mostly
    /// repeat their key order, so a key is first compared with the one seen at its position
    order: Vec<u32>,
    /// normalized key path from the table's row (fragments)
    frags: Vec<Box<str>>,
    /// the column name of this path
    name: Box<str>,
    /// buffer column index, once the column exists and is complete
    col: Option<usize>,
    /// child table id, for lists under this path
    list_table: Option<usize>,
    /// whether the name is one of the system columns
    is_sys: bool,
    /// another raw key of the same row level normalizes to the same column name
    shared_name: bool,
    /// cached: the schema declares this name json (or a preferred type does)
    declared_json: Option<bool>,
}

struct TableCtx {
    name: String,
    /// ident path: fragments whose `shorten_fragments` is the table name
    frags: Vec<Box<str>>,
    buf: TableBuffer,
    /// column name -> buffer index (complete columns)
    col_index: AHashMap<String, usize>,
    /// buffer index -> coercion hints
    hints: Vec<ColumnHints>,
    /// buffer index -> the column is nullable (a null then needs no other check)
    nullable: Vec<bool>,
    trie: Vec<TrieNode>,
    is_root: bool,
    row_id: RowIdType,
    primary_key: Vec<String>,
    propagate_root: bool,
    rows_total: u64,
    /// nesting budget of the table's rows
    max_nesting: i64,
    /// buffer column index of each system/synthetic column, once it exists
    sys_cols: [Option<usize>; 7],
    /// columns a contract filtered out: column name -> mode
    filters: AHashMap<String, ContractMode>,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Sys {
    RootId,
    LoadId,
    ParentId,
    ListIdx,
    DltId,
    /// the synthetic key of wrapped scalar list elements
    Value,
    /// the synthetic key of wrapped nested lists
    List,
}

impl Sys {
    fn name(self) -> &'static str {
        match self {
            Sys::RootId => cols::ROOT_ID,
            Sys::LoadId => cols::LOAD_ID,
            Sys::ParentId => cols::PARENT_ID,
            Sys::ListIdx => cols::LIST_IDX,
            Sys::DltId => cols::DLT_ID,
            Sys::Value => "value",
            Sys::List => "list",
        }
    }
}

#[derive(Clone, Copy)]
enum Key {
    Node(u32),
    Sys(Sys),
}

#[derive(Clone)]
enum Val<'d> {
    Node(NodeRef<'d, 'd>),
    Text(Rc<str>),
    Int(i64),
}

enum Target {
    Existing(usize),
    New(String),
}

enum Wrap {
    None,
    Value,
    List,
}

struct Task<'d> {
    table: usize,
    value: NodeRef<'d, 'd>,
    wrap: Wrap,
    lvl: i64,
    parent_id: Option<Rc<str>>,
    idx: usize,
    root_id: Option<Rc<str>>,
    /// the row's `_dlt_id` computed with its siblings (child rows)
    row_id: Option<Rc<str>>,
}

/// The normalizer of one load package. It owns the schema while it evolves it; [`Normalizer::finish`]
/// gives it back.
pub struct Normalizer<S: BatchSink> {
    schema: Schema,
    sink: S,
    options: NormalizeOptions,
    load_id: Rc<str>,
    tables: Vec<TableCtx>,
    table_ids: AHashMap<String, usize>,
    contracts: AHashMap<String, Contract>,
    filtered_tables: AHashSet<String>,
    null_only: BTreeMap<String, AHashSet<String>>,
    items: u64,
    // reused per row
    entries: Vec<(Key, Val<'static>)>,
    /// the current row has data keys named like system columns
    row_has_sys_keys: bool,
    /// columns or tables were added since the last `take_output`
    schema_changed: bool,
    json_scratch: String,
    // reused per row: the lists of the row, the child tasks' id messages
    lists: Vec<(u32, NodeRef<'static, 'static>)>,
    id_messages: Vec<u8>,
    id_ends: Vec<usize>,
    ids: Vec<hash::IdChars>,
    flatten_stack: Vec<(NodeRef<'static, 'static>, i64, u32)>,
    values: Vec<(Target, Coerced<'static>)>,
}

fn scalar_of<'d>(node: &Node<'d>, doc: &'d Doc<'d>) -> Scalar<'d> {
    match *node {
        Node::Null => Scalar::Null,
        Node::Bool(b) => Scalar::Bool(b),
        Node::Int(i) => Scalar::Int(i),
        Node::UInt(u) => Scalar::UInt(u),
        Node::BigInt(t) => Scalar::BigInt(t),
        Node::Float(f) => Scalar::Float(f),
        Node::Str(s) => str_scalar(s),
        Node::Decoded(..) => str_scalar(doc.str_of(node).unwrap_or("")),
        // containers are serialized by the caller
        Node::Object { .. } | Node::Array { .. } => Scalar::Null,
    }
}

/// A string value: text, or a `Decimal` when it carries dlt's typed-JSON decimal marker.
#[inline]
fn str_scalar(s: &str) -> Scalar<'_> {
    match crate::types::decimal_marker(s) {
        Some(d) => Scalar::Decimal(d),
        None => Scalar::Str(s),
    }
}

fn owned(c: Coerced<'_>) -> Coerced<'static> {
    match c {
        Coerced::Text(s) => Coerced::Text(Cow::Owned(s.into_owned())),
        Coerced::Json(s) => Coerced::Json(Cow::Owned(s.into_owned())),
        Coerced::Decimal(s) => Coerced::Decimal(Cow::Owned(s.into_owned())),
        Coerced::Wei(s) => Coerced::Wei(Cow::Owned(s.into_owned())),
        Coerced::Binary(b) => Coerced::Binary(Cow::Owned(b.into_owned())),
        Coerced::Bigint(v) => Coerced::Bigint(v),
        Coerced::Double(v) => Coerced::Double(v),
        Coerced::Bool(v) => Coerced::Bool(v),
        Coerced::Timestamp(v) => Coerced::Timestamp(v),
        Coerced::Date(v) => Coerced::Date(v),
        Coerced::Time(v) => Coerced::Time(v),
    }
}

fn hints_of(c: &Column) -> ColumnHints {
    ColumnHints {
        precision: c.precision,
        scale: c.scale,
        timezone: c.timezone,
    }
}

impl<S: BatchSink> Normalizer<S> {
    /// A normalizer writing rows of package `load_id` to `sink`, evolving `schema`.
    pub fn new(schema: Schema, load_id: &str, sink: S, options: NormalizeOptions) -> Self {
        Self {
            schema,
            sink,
            options,
            load_id: Rc::from(load_id),
            tables: Vec::new(),
            table_ids: AHashMap::new(),
            contracts: AHashMap::new(),
            filtered_tables: AHashSet::new(),
            null_only: BTreeMap::new(),
            items: 0,
            entries: Vec::new(),
            row_has_sys_keys: false,
            schema_changed: false,
            json_scratch: String::new(),
            lists: Vec::new(),
            id_messages: Vec::new(),
            id_ends: Vec::new(),
            ids: Vec::new(),
            flatten_stack: Vec::new(),
            values: Vec::new(),
        }
    }

    /// The schema being evolved.
    pub fn schema(&self) -> &Schema {
        &self.schema
    }

    /// Normalizes every JSON document in `text` (whitespace-separated; a top-level array stands
    /// for its elements) into root table `table` (already normalized).
    pub fn normalize_json_text(&mut self, table: &str, text: &str) -> Result<()> {
        self.normalize_json_text_from(table, text, &[])
    }

    /// [`Normalizer::normalize_json_text`] on a text whose parts come from named documents (the
    /// files of a source): invalid JSON is reported with the name and line it came from.
    pub fn normalize_json_text_from(
        &mut self,
        table: &str,
        text: &str,
        origins: &[TextOrigin],
    ) -> Result<()> {
        let mut parser = Parser::new(text);
        let mut doc = Doc::new();
        loop {
            let start = parser.offset();
            let more = parser
                .next_document(&mut doc)
                .map_err(|e| invalid_json(&format!("table `{table}`"), text, start, &e, origins))?;
            if !more {
                return Ok(());
            }
            // SAFETY-free lifetime juggling: `doc` lives for this iteration only and every
            // borrow of it ends before the next `next_document`.
            let root = doc.root();
            if root.is_array() {
                for item in root.items() {
                    self.normalize_item(table, item)?;
                }
            } else {
                self.normalize_item(table, root)?;
            }
        }
    }

    /// [`Normalizer::normalize_json_text`] on bytes, with a clear error for invalid UTF-8.
    pub fn normalize_json_bytes(&mut self, table: &str, bytes: &[u8]) -> Result<()> {
        let text = std::str::from_utf8(bytes).map_err(|e| {
            Error::data(format!(
                "invalid UTF-8 at byte {} in the data of table `{table}`\nhint: the source must send UTF-8 text",
                e.valid_up_to()
            ))
        })?;
        self.normalize_json_text(table, text)
    }

    fn table_id(&mut self, name: &str, frags: Vec<Box<str>>, parent: Option<usize>) -> usize {
        if let Some(id) = self.table_ids.get(name) {
            return *id;
        }
        let is_root =
            parent.is_none() || self.schema.table(name).is_some_and(|t| t.parent.is_none());
        let mut ctx = TableCtx {
            name: name.to_string(),
            frags,
            buf: TableBuffer::new(name),
            col_index: AHashMap::new(),
            hints: Vec::new(),
            nullable: Vec::new(),
            trie: vec![TrieNode {
                children: AHashMap::new(),
                raw: Box::from(""),
                order: Vec::new(),
                frags: Vec::new(),
                name: Box::from(""),
                col: None,
                list_table: None,
                is_sys: false,
                shared_name: false,
                declared_json: None,
            }],
            is_root,
            row_id: RowIdType::Random,
            primary_key: Vec::new(),
            propagate_root: false,
            rows_total: 0,
            max_nesting: self.schema.max_nesting(name) as i64,
            sys_cols: [None; 7],
            filters: AHashMap::new(),
        };
        // complete columns already in the schema get buffers up front, in schema order
        if let Some(t) = self.schema.table(name) {
            for c in t.columns.values().filter(|c| c.is_complete()) {
                let idx = ctx.buf.add_column(c);
                ctx.col_index.insert(c.name.clone(), idx);
                ctx.hints.push(hints_of(c));
                ctx.nullable.push(c.is_nullable());
            }
        }
        self.refresh_table_settings(&mut ctx);
        let id = self.tables.len();
        self.tables.push(ctx);
        self.table_ids.insert(name.to_string(), id);
        id
    }

    fn refresh_table_settings(&self, ctx: &mut TableCtx) {
        let schema = &self.schema;
        let root = schema.root_table_of(&ctx.name).to_string();
        ctx.propagate_root = schema.propagates_root_id(&root);
        if ctx.is_root {
            let table = schema.table(&ctx.name);
            let strategy = table.and_then(Table::merge_strategy);
            let merge = schema.write_disposition_of(&ctx.name)
                == sluice_sdk::schema::WriteDisposition::Merge;
            ctx.row_id = match (merge, strategy) {
                (true, Some(sluice_sdk::schema::MergeStrategy::Upsert))
                | (true, Some(sluice_sdk::schema::MergeStrategy::InsertOnly)) => RowIdType::KeyHash,
                (true, Some(sluice_sdk::schema::MergeStrategy::Scd2)) => {
                    // the row version column is _dlt_id unless another column carries x-row-version
                    let version_col = table.and_then(|t| {
                        t.columns
                            .values()
                            .find(|c| c.hint("x-row-version"))
                            .map(|c| c.name.clone())
                    });
                    match version_col.as_deref() {
                        None | Some(cols::DLT_ID) => RowIdType::RowHash,
                        Some(_) => RowIdType::Random,
                    }
                }
                _ => RowIdType::Random,
            };
            ctx.primary_key = table
                .map(|t| {
                    t.columns_with_hint("primary_key")
                        .into_iter()
                        .map(String::from)
                        .collect()
                })
                .unwrap_or_default();
        }
    }

    /// Normalizes one item of root table `table`.
    pub fn normalize_item(&mut self, table: &str, item: NodeRef<'_, '_>) -> Result<()> {
        self.items += 1;
        let root = self.table_id(table, vec![Box::from(table)], None);
        if self.filtered_tables.contains(table) {
            return Ok(());
        }
        // erase the doc lifetime: every borrow below ends before this function returns
        // (the row entries buffer is cleared at the end of each row)
        let item: NodeRef<'static, 'static> = unsafe_lifetime(item);
        let max_nesting = self.tables[root].max_nesting;
        let wrap = if item.is_object() {
            Wrap::None
        } else {
            Wrap::Value
        };
        let mut stack: Vec<Task<'static>> = vec![Task {
            table: root,
            value: item,
            wrap,
            lvl: max_nesting,
            parent_id: None,
            idx: 0,
            root_id: None,
            row_id: None,
        }];
        let result = (|| {
            while let Some(task) = stack.pop() {
                let before = stack.len();
                self.process_row(task, &mut stack)?;
                // children are processed in order: they were pushed in order, reverse them
                stack[before..].reverse();
            }
            Ok(())
        })();
        self.entries.clear();
        self.lists.clear();
        self.flatten_stack.clear();
        result
    }

    /// Flattens, assigns ids, coerces and stores one row; pushes the child row tasks, in order.
    fn process_row(&mut self, task: Task<'static>, tasks: &mut Vec<Task<'static>>) -> Result<()> {
        let mut lists = std::mem::take(&mut self.lists);
        lists.clear();
        let result = self.process_row_with(task, &mut lists, tasks);
        lists.clear();
        self.lists = lists;
        result
    }

    fn process_row_with(
        &mut self,
        task: Task<'static>,
        lists: &mut Vec<(u32, NodeRef<'static, 'static>)>,
        tasks: &mut Vec<Task<'static>>,
    ) -> Result<()> {
        let tid = task.table;
        self.entries.clear();
        self.row_has_sys_keys = false;
        match task.wrap {
            Wrap::None => self.flatten(tid, task.value, task.lvl, lists)?,
            Wrap::Value => self
                .entries
                .push((Key::Sys(Sys::Value), Val::Node(task.value))),
            Wrap::List => {
                // {"list": [...]}: a list inside a list
                let node = self.trie_child(tid, 0, "list");
                if self.is_json_typed(tid, node, task.lvl) {
                    self.entries
                        .push((Key::Sys(Sys::List), Val::Node(task.value)));
                } else {
                    lists.push((node, task.value));
                }
            }
        }
        // propagated root id
        if let Some(root_id) = &task.root_id {
            self.set_entry(tid, Sys::RootId, Val::Text(root_id.clone()));
        }
        let is_root = self.tables[tid].is_root;
        if is_root {
            let load_id = self.load_id.clone();
            self.set_entry(tid, Sys::LoadId, Val::Text(load_id));
        }
        // row id: kept if the data has a non-empty _dlt_id
        let existing_id = if !self.row_has_sys_keys {
            None
        } else {
            self.entries.iter().find_map(|(k, v)| match (k, v) {
                (Key::Node(n), Val::Node(node))
                    if &*self.tables[tid].trie[*n as usize].name == cols::DLT_ID =>
                {
                    node.as_str().filter(|s| !s.is_empty()).map(Rc::from)
                }
                _ => None,
            })
        };
        // a child row is linked to its parent also when it brings its own _dlt_id (dlt skips
        // the link then, and its load fails on the NOT NULL `_dlt_parent_id`)
        let parent = if is_root {
            None
        } else {
            let parent = task.parent_id.clone().unwrap_or_else(|| Rc::from(""));
            self.set_entry(tid, Sys::ParentId, Val::Text(parent.clone()));
            self.set_entry(tid, Sys::ListIdx, Val::Int(task.idx as i64));
            Some(parent)
        };
        let row_id: Rc<str> = match existing_id {
            Some(id) => id,
            None => {
                let id: Rc<str> = match parent {
                    None => self.root_row_id(tid, task.value)?,
                    Some(parent) => match task.row_id.clone() {
                        Some(id) => id,
                        None => Rc::from(hash::child_row_id(
                            &parent,
                            &self.tables[tid].name,
                            task.idx,
                        )),
                    },
                };
                self.set_entry(tid, Sys::DltId, Val::Text(id.clone()));
                id
            }
        };
        if !self.store_row(tid)? {
            return Ok(());
        }
        // children
        if lists.is_empty() {
            return Ok(());
        }
        let root_id = if is_root && self.tables[tid].propagate_root {
            Some(row_id.clone())
        } else {
            task.root_id.clone()
        };
        let first = tasks.len();
        for &(node, list) in lists.iter() {
            let child = self.list_table(tid, node);
            if self.filtered_tables.contains(&self.tables[child].name) {
                continue;
            }
            for (idx, item) in list.items().enumerate() {
                let (wrap, lvl) = match item.node() {
                    Node::Object { .. } => (Wrap::None, task.lvl - 1),
                    Node::Array { .. } => (Wrap::List, task.lvl - 2),
                    _ => (Wrap::Value, task.lvl - 1),
                };
                tasks.push(Task {
                    table: child,
                    value: item,
                    wrap,
                    lvl,
                    parent_id: Some(row_id.clone()),
                    idx,
                    root_id: root_id.clone(),
                    row_id: None,
                });
            }
        }
        self.child_ids(&row_id, &mut tasks[first..]);
        Ok(())
    }

    /// Computes the `_dlt_id`s of a row's child tasks together (one batched hash).
    fn child_ids(&mut self, parent: &str, tasks: &mut [Task<'static>]) {
        if tasks.is_empty() {
            return;
        }
        self.id_messages.clear();
        self.id_ends.clear();
        for t in tasks.iter() {
            hash::child_row_message(
                parent,
                &self.tables[t.table].name,
                t.idx,
                &mut self.id_messages,
            );
            self.id_ends.push(self.id_messages.len());
        }
        self.ids.clear();
        hash::child_row_ids(&self.id_messages, &self.id_ends, &mut self.ids);
        for (t, id) in tasks.iter_mut().zip(&self.ids) {
            t.row_id = Some(Rc::from(hash::id_str(id)));
        }
    }

    /// Sets a system column of the row like a dict assignment: an existing key keeps its
    /// position and gets the new value.
    fn set_entry(&mut self, tid: usize, sys: Sys, val: Val<'static>) {
        if !self.row_has_sys_keys {
            self.entries.push((Key::Sys(sys), val));
            return;
        }
        let name = sys.name();
        let pos = self.entries.iter().position(
            |(k, _)| matches!(k, Key::Node(n) if &*self.tables[tid].trie[*n as usize].name == name),
        );
        match pos {
            Some(i) => self.entries[i].1 = val,
            None => self.entries.push((Key::Sys(sys), val)),
        }
    }

    fn root_row_id(&mut self, tid: usize, item: NodeRef<'static, 'static>) -> Result<Rc<str>> {
        Ok(Rc::from(match self.tables[tid].row_id {
            RowIdType::Random => return Ok(Rc::from(hash::id_str(&hash::random_row_id_chars()))),
            RowIdType::RowHash => {
                // over the original item, without _dlt keys, keys sorted
                self.json_scratch.clear();
                if item.is_object() {
                    let mut entries: Vec<(&str, NodeRef<'_, '_>)> = item
                        .entries()
                        .filter(|(k, _)| !k.starts_with(cols::DLT_PREFIX))
                        .collect();
                    entries.sort_by(|a, b| a.0.cmp(b.0));
                    self.json_scratch.push('{');
                    for (i, (k, v)) in entries.into_iter().enumerate() {
                        if i > 0 {
                            self.json_scratch.push(',');
                        }
                        json::write_str(k, &mut self.json_scratch);
                        self.json_scratch.push(':');
                        json::write_sorted(v, &mut self.json_scratch);
                    }
                    self.json_scratch.push('}');
                } else {
                    self.json_scratch.push_str("{\"value\":");
                    json::write_sorted(item, &mut self.json_scratch);
                    self.json_scratch.push('}');
                }
                hash::digest_row_json(&self.json_scratch)
            }
            RowIdType::KeyHash => {
                let pk = self.tables[tid].primary_key.clone();
                if pk.is_empty() {
                    return Err(Error::schema(format!(
                        "table `{}` uses the upsert merge strategy but has no primary key\nhint: set `primary_key` on the resource",
                        self.tables[tid].name
                    )));
                }
                let mut values: Vec<(&str, String)> = Vec::with_capacity(pk.len());
                for col in &pk {
                    let v = self.entries.iter().find_map(|(k, v)| {
                        (self.key_name(tid, *k) == col.as_str()).then(|| v.clone())
                    });
                    let Some(v) = v else {
                        return Err(Error::data(format!(
                            "a row of table `{}` has no value for primary key column `{col}`, which the upsert strategy needs",
                            self.tables[tid].name
                        )));
                    };
                    let mut s = String::new();
                    match v {
                        Val::Node(n) => json::write_sorted(n, &mut s),
                        Val::Text(t) => json::write_str(&t, &mut s),
                        Val::Int(i) => s.push_str(&i.to_string()),
                    }
                    values.push((col.as_str(), s));
                }
                values.sort_by(|a, b| a.0.cmp(b.0));
                let mut text = String::from("{");
                for (i, (k, v)) in values.iter().enumerate() {
                    if i > 0 {
                        text.push(',');
                    }
                    json::write_str(k, &mut text);
                    text.push(':');
                    text.push_str(v);
                }
                text.push('}');
                hash::digest_row_json(&text)
            }
        }))
    }

    fn key_name(&self, tid: usize, key: Key) -> &str {
        match key {
            Key::Node(n) => &self.tables[tid].trie[n as usize].name,
            Key::Sys(s) => s.name(),
        }
    }

    /// The trie child of `parent` for raw key `key` (created on first sight).
    fn trie_child(&mut self, tid: usize, parent: u32, key: &str) -> u32 {
        if let Some(&id) = self.tables[tid].trie[parent as usize].children.get(key) {
            return id;
        }
        let naming = self.schema.naming();
        // empty keys (and keys that normalize to nothing, like `__`) become `_empty`
        let normalized = if key.trim().is_empty() {
            String::new()
        } else {
            naming.normalize_path(key)
        };
        let nk: Box<str> = if normalized.is_empty() {
            Box::from("_empty")
        } else {
            Box::from(normalized)
        };
        let ctx = &self.tables[tid];
        let mut frags = ctx.trie[parent as usize].frags.clone();
        frags.push(nk.clone());
        let name: Box<str> = if frags.len() == 1 {
            nk
        } else {
            let parts: Vec<&str> = frags.iter().map(|f| &**f).collect();
            Box::from(naming.shorten_fragments(&parts))
        };
        let col = ctx.col_index.get(&*name).copied();
        let ctx = &mut self.tables[tid];
        let id = ctx.trie.len() as u32;
        let is_sys = [
            cols::ROOT_ID,
            cols::LOAD_ID,
            cols::PARENT_ID,
            cols::LIST_IDX,
            cols::DLT_ID,
        ]
        .contains(&&*name);
        // two raw keys with one column name (`a b` and `a_b`): the row keeps the last value,
        // as a dict assignment does in dlt
        let mut shared_name = false;
        for other in ctx.trie.iter_mut().skip(1) {
            if other.name == name {
                other.shared_name = true;
                shared_name = true;
            }
        }
        ctx.trie.push(TrieNode {
            children: AHashMap::new(),
            raw: Box::from(key),
            order: Vec::new(),
            frags,
            name,
            col,
            list_table: None,
            is_sys,
            shared_name,
            declared_json: None,
        });
        ctx.trie[parent as usize]
            .children
            .insert(Box::from(key), id);
        id
    }

    /// [`Self::trie_child`] for the key at position `pos` of an object, checking the key seen at
    /// that position last time first.
    #[inline]
    fn trie_child_at(&mut self, tid: usize, parent: u32, pos: usize, key: &str) -> u32 {
        let trie = &self.tables[tid].trie;
        if let Some(&cand) = trie[parent as usize].order.get(pos) {
            if *trie[cand as usize].raw == *key {
                return cand;
            }
        }
        let id = self.trie_child(tid, parent, key);
        let order = &mut self.tables[tid].trie[parent as usize].order;
        match pos.cmp(&order.len()) {
            std::cmp::Ordering::Less => order[pos] = id,
            std::cmp::Ordering::Equal => order.push(id),
            std::cmp::Ordering::Greater => {}
        }
        id
    }

    /// The child table for the list at trie node `node` of table `tid`.
    fn list_table(&mut self, tid: usize, node: u32) -> usize {
        if let Some(t) = self.tables[tid].trie[node as usize].list_table {
            return t;
        }
        let mut frags = self.tables[tid].frags.clone();
        frags.extend(self.tables[tid].trie[node as usize].frags.iter().cloned());
        let parts: Vec<&str> = frags.iter().map(|f| &**f).collect();
        let name = self.schema.naming().shorten_fragments(&parts);
        let child = self.table_id(&name, frags, Some(tid));
        self.tables[tid].trie[node as usize].list_table = Some(child);
        child
    }

    /// dlt's "json-typed" check for a nested value at trie node `node` (its column name) and
    /// level `lvl`: too deep, an existing json column, or declared/preferred json.
    fn is_json_typed(&mut self, tid: usize, node: u32, lvl: i64) -> bool {
        if lvl <= 0 {
            return true;
        }
        if let Some(idx) = self.column_of(tid, Key::Node(node)) {
            return self.tables[tid].buf.columns[idx].data_type() == DataType::Json;
        }
        if let Some(cached) = self.tables[tid].trie[node as usize].declared_json {
            return cached;
        }
        let table = &self.tables[tid];
        let name = &*table.trie[node as usize].name;
        let declared = self
            .schema
            .table(&table.name)
            .and_then(|t| t.columns.get(name))
            .and_then(|c| c.data_type);
        let json = match declared {
            Some(t) => t == DataType::Json,
            None => self.schema.preferred_type(name) == Some(DataType::Json),
        };
        self.tables[tid].trie[node as usize].declared_json = Some(json);
        json
    }

    /// dlt's LIFO flattening of a dict row into `self.entries` and `lists`.
    fn flatten(
        &mut self,
        tid: usize,
        row: NodeRef<'static, 'static>,
        lvl: i64,
        lists: &mut Vec<(u32, NodeRef<'static, 'static>)>,
    ) -> Result<()> {
        let mut stack = std::mem::take(&mut self.flatten_stack);
        stack.clear();
        stack.push((row, lvl, 0));
        let result = self.flatten_with(tid, &mut stack, lists);
        stack.clear();
        self.flatten_stack = stack;
        result
    }

    fn flatten_with(
        &mut self,
        tid: usize,
        stack: &mut Vec<(NodeRef<'static, 'static>, i64, u32)>,
        lists: &mut Vec<(u32, NodeRef<'static, 'static>)>,
    ) -> Result<()> {
        while let Some((obj, lvl, parent)) = stack.pop() {
            for (pos, (k, v)) in obj.entries().enumerate() {
                let node = self.trie_child_at(tid, parent, pos, k);
                match v.node() {
                    Node::Object { .. } => {
                        if !self.is_json_typed(tid, node, lvl) {
                            stack.push((v, lvl - 1, node));
                            continue;
                        }
                    }
                    Node::Array { .. } => {
                        if !self.is_json_typed(tid, node, lvl) {
                            lists.push((node, v));
                            continue;
                        }
                    }
                    _ => {}
                }
                let tn = &self.tables[tid].trie[node as usize];
                if tn.is_sys {
                    self.row_has_sys_keys = true;
                }
                if tn.shared_name {
                    let name = tn.name.clone();
                    let existing = self.entries.iter().position(|(k, _)| {
                        matches!(k, Key::Node(n) if self.tables[tid].trie[*n as usize].name == name)
                    });
                    if let Some(i) = existing {
                        self.entries[i].1 = Val::Node(v);
                        continue;
                    }
                }
                self.entries.push((Key::Node(node), Val::Node(v)));
            }
        }
        Ok(())
    }

    /// Fits the row in `self.entries` into table `tid` and appends it. Returns false when the
    /// row was discarded by a contract.
    fn store_row(&mut self, tid: usize) -> Result<bool> {
        let entries = std::mem::take(&mut self.entries);
        let result = self.store_entries(tid, &entries);
        self.entries = entries;
        result
    }

    /// The buffer column of `key` in table `tid`, if it exists (cached).
    #[inline]
    fn column_of(&mut self, tid: usize, key: Key) -> Option<usize> {
        let ctx = &mut self.tables[tid];
        match key {
            Key::Node(n) => {
                let node = &ctx.trie[n as usize];
                if node.col.is_some() {
                    return node.col;
                }
                let idx = ctx.col_index.get(&*node.name).copied();
                ctx.trie[n as usize].col = idx;
                idx
            }
            Key::Sys(s) => {
                let slot = s as usize;
                if ctx.sys_cols[slot].is_some() {
                    return ctx.sys_cols[slot];
                }
                let idx = ctx.col_index.get(s.name()).copied();
                ctx.sys_cols[slot] = idx;
                idx
            }
        }
    }

    fn store_entries<'e>(
        &mut self,
        tid: usize,
        entries: &'e [(Key, Val<'static>)],
    ) -> Result<bool> {
        // columns filtered by earlier contract decisions
        if !self.tables[tid].filters.is_empty() {
            for (k, v) in entries {
                if matches!(v, Val::Node(n) if n.is_null()) {
                    continue;
                }
                let name = self.key_name(tid, *k);
                if let Some(ContractMode::DiscardRow) = self.tables[tid].filters.get(name) {
                    return Ok(false);
                }
            }
        }
        // the reused value list holds values borrowing from `entries` only during this call
        let mut values: Vec<(Target, Coerced<'e>)> =
            relife_values(std::mem::take(&mut self.values));
        values.clear();
        let result = self.store_values(tid, entries, &mut values);
        values.clear();
        self.values = relife_values(values);
        result
    }

    fn store_values<'e>(
        &mut self,
        tid: usize,
        entries: &'e [(Key, Val<'static>)],
        values: &mut Vec<(Target, Coerced<'e>)>,
    ) -> Result<bool> {
        let mut new_columns: Vec<Column> = Vec::new();
        for (key, val) in entries {
            if !self.tables[tid].filters.is_empty()
                && self.tables[tid]
                    .filters
                    .contains_key(self.key_name(tid, *key))
            {
                continue; // discard_value
            }
            // the value as a scalar
            let json_text;
            let scalar: Scalar<'_> = match val {
                Val::Text(t) => Scalar::Str(t),
                Val::Int(i) => Scalar::Int(*i),
                Val::Node(n) => match n.node() {
                    Node::Object { .. } | Node::Array { .. } => {
                        let mut s = String::new();
                        json::write_compact(*n, &mut s);
                        json_text = s;
                        Scalar::Json(&json_text)
                    }
                    other => scalar_of(&other, n.doc()),
                },
            };
            if matches!(scalar, Scalar::Null) {
                // fast path: a null in an existing nullable column is just padding
                if let Some(idx) = self.column_of(tid, *key) {
                    if self.tables[tid].nullable[idx] {
                        continue;
                    }
                }
                let name = self.key_name(tid, *key).to_string();
                self.coerce_null(tid, &name)?;
                continue;
            }
            let is_json = matches!(scalar, Scalar::Json(_));
            // fast path: a complete column of a matching or coercible type
            if let Some(idx) = self.column_of(tid, *key) {
                let ctx = &self.tables[tid];
                let col_type = ctx.buf.columns[idx].data_type();
                if let Ok(c) = coerce(col_type, &scalar, ctx.hints[idx]) {
                    let c: Coerced<'e> = if is_json { owned(c) } else { relife(c) };
                    values.push((Target::Existing(idx), c));
                    continue;
                }
            }
            let name = self.key_name(tid, *key).to_string();
            // slow path: new column, incomplete column or variant
            let (col_name, new_def, value) = self.coerce_non_null(tid, &name, &scalar, false)?;
            let target = match self.tables[tid].col_index.get(&col_name) {
                Some(&i) => Target::Existing(i),
                None => Target::New(col_name.clone()),
            };
            if let Some(def) = new_def {
                if !new_columns.iter().any(|c| c.name == def.name) {
                    new_columns.push(def);
                }
            }
            values.push((target, value));
        }
        if !new_columns.is_empty() {
            let Some(kept) = self.apply_contract(tid, new_columns, values)? else {
                return Ok(false);
            };
            self.add_columns(tid, kept)?;
        }
        // append
        let ctx = &mut self.tables[tid];
        let row = ctx.buf.rows;
        for (target, value) in values.iter() {
            let idx = match target {
                Target::Existing(i) => *i,
                Target::New(name) => match ctx.col_index.get(name) {
                    Some(i) => *i,
                    None => continue, // discarded by a contract
                },
            };
            ctx.buf.columns[idx].append(row, value)?;
        }
        ctx.buf.rows += 1;
        ctx.rows_total += 1;
        if ctx.buf.rows >= self.options.batch_rows || ctx.buf.bytes() >= self.options.batch_bytes {
            self.flush_table(tid)?;
        }
        Ok(true)
    }

    fn coerce_null(&mut self, tid: usize, name: &str) -> Result<()> {
        let table = &self.tables[tid].name;
        let existing = self.schema.table(table).and_then(|t| t.columns.get(name));
        match existing {
            Some(c) if c.is_complete() => {
                if !c.is_nullable() {
                    return Err(Error::schema(format!(
                        "in schema `{}`, column `{name}` of table `{table}` is NOT NULL but a row has no value for it\nhint: send a value, or make the column nullable (columns={{\"{name}\": {{\"nullable\": true}}}})",
                        self.schema.name()
                    )));
                }
            }
            other => {
                if other.is_none() && self.schema.infer_hint("not_null", name) {
                    return Err(Error::schema(format!(
                        "in schema `{}`, column `{name}` of table `{table}` must not be null",
                        self.schema.name()
                    )));
                }
                match self.null_only.get_mut(table) {
                    Some(set) => {
                        if !set.contains(name) {
                            set.insert(name.to_string());
                        }
                    }
                    None => {
                        self.null_only
                            .entry(table.clone())
                            .or_default()
                            .insert(name.to_string());
                    }
                }
            }
        }
        Ok(())
    }

    /// dlt's `_coerce_non_null_value`: the column name the value goes to, the new column
    /// definition (if the column is new or was incomplete) and the coerced value.
    fn coerce_non_null(
        &mut self,
        tid: usize,
        name: &str,
        value: &Scalar<'_>,
        is_variant: bool,
    ) -> Result<(String, Option<Column>, Coerced<'static>)> {
        let table = self.tables[tid].name.clone();
        let existing = self
            .schema
            .table(&table)
            .and_then(|t| t.columns.get(name))
            .cloned();
        let (existing_complete, incomplete) = match existing {
            Some(c) if c.is_complete() => (Some(c), None),
            Some(c) => (None, Some(c)),
            None => (None, None),
        };
        let py_type = value.py_type().unwrap_or(DataType::Text);
        let col_type = match &existing_complete {
            Some(c) => c.data_type.unwrap_or(DataType::Text),
            None => {
                let detected = autodetect(self.schema.detections(), value);
                let preferred = if is_variant {
                    None
                } else {
                    self.schema.preferred_type(name)
                };
                preferred.or(detected).unwrap_or(py_type)
            }
        };
        let hints = existing_complete
            .as_ref()
            .or(incomplete.as_ref())
            .map(hints_of)
            .unwrap_or_default();
        match coerce(col_type, value, hints) {
            Ok(c) => {
                let def = if existing_complete.is_none() {
                    let mut inferred = self.schema.infer_column(name, col_type, is_variant);
                    if let Some(inc) = incomplete {
                        merge_column(&mut inferred, &inc);
                    }
                    Some(inferred)
                } else {
                    None
                };
                Ok((name.to_string(), def, owned(c)))
            }
            Err(()) => {
                if is_variant {
                    return Err(Error::schema(format!(
                        "in schema `{}`, table `{table}`: cannot coerce a value of type {py_type} into column `{name}`",
                        self.schema.name()
                    )));
                }
                let variant = format!("v_{}", py_type.as_str());
                let mut variant_name = self.schema.naming().shorten_fragments(&[name, &variant]);
                if py_type == DataType::Json {
                    let old = self.schema.naming().shorten_fragments(&[name, "v_complex"]);
                    if self
                        .schema
                        .table(&table)
                        .and_then(|t| t.columns.get(&old))
                        .is_some_and(|c| c.variant == Some(true))
                    {
                        variant_name = old;
                    }
                }
                self.coerce_non_null(tid, &variant_name, value, true)
            }
        }
    }

    /// Applies the table's schema contract to the new columns of a row. Returns the columns to
    /// add, or None when the row is discarded.
    fn apply_contract<'v>(
        &mut self,
        tid: usize,
        new_columns: Vec<Column>,
        values: &mut Vec<(Target, Coerced<'v>)>,
    ) -> Result<Option<Vec<Column>>> {
        let table = self.tables[tid].name.clone();
        let contract = match self.contracts.get(&table) {
            Some(c) => *c,
            None => {
                let c = contract::resolve(&self.schema, &table);
                self.contracts.insert(table.clone(), c);
                c
            }
        };
        if contract.is_evolve() {
            return Ok(Some(new_columns));
        }
        let schema = &self.schema;
        let existing = schema.table(&table);
        let is_new_table = schema.is_new_table(&table);
        if is_new_table && contract.tables != ContractMode::Evolve {
            if contract.tables == ContractMode::Freeze {
                return Err(Error::Contract {
                    schema: schema.name().to_string(),
                    table,
                    column: None,
                    entity: "tables".into(),
                    mode: "freeze".into(),
                    reason: "a new table cannot be added".into(),
                });
            }
            self.filtered_tables.insert(table);
            return Ok(None);
        }
        let evolve_once = existing
            .and_then(|t| t.extra.get("x-normalizer"))
            .and_then(|x| x.get("evolve-columns-once"))
            .and_then(serde_json::Value::as_bool)
            .unwrap_or(false);
        let column_mode = if is_new_table || evolve_once {
            ContractMode::Evolve
        } else {
            contract.columns
        };
        let mut kept = Vec::new();
        let mut discard_row = false;
        for col in new_columns {
            if col.name.starts_with(cols::DLT_PREFIX) {
                kept.push(col);
                continue;
            }
            let is_variant = col.variant == Some(true);
            let existing_col = existing.and_then(|t| t.columns.get(&col.name));
            let is_new_column = existing_col.is_none_or(|c| !c.is_complete());
            let (mode, entity, reason) =
                if !is_variant && is_new_column && column_mode != ContractMode::Evolve {
                    (
                        column_mode,
                        "columns",
                        format!("column `{}` cannot be added", col.name),
                    )
                } else if is_variant && contract.data_type != ContractMode::Evolve {
                    (
                        contract.data_type,
                        "data_type",
                        format!(
                            "variant column `{}` cannot be added for a value of another type",
                            col.name
                        ),
                    )
                } else {
                    kept.push(col);
                    continue;
                };
            if mode == ContractMode::Freeze {
                return Err(Error::Contract {
                    schema: schema.name().to_string(),
                    table,
                    column: Some(col.name.clone()),
                    entity: entity.into(),
                    mode: "freeze".into(),
                    reason,
                });
            }
            self.tables[tid].filters.insert(col.name.clone(), mode);
            if mode == ContractMode::DiscardRow {
                discard_row = true;
            }
            values.retain(|(t, _)| !matches!(t, Target::New(n) if *n == col.name));
        }
        if discard_row {
            return Ok(None);
        }
        Ok(Some(kept))
    }

    fn add_columns(&mut self, tid: usize, columns: Vec<Column>) -> Result<()> {
        self.schema_changed = true;
        let name = self.tables[tid].name.clone();
        let parent = self.tables[tid].frags.len() > 1;
        if self.schema.table(&name).is_none() {
            // a child table (root tables are created from resource hints at extract)
            let parent_name = if parent {
                let frags: Vec<&str> = self.tables[tid].frags[..self.tables[tid].frags.len() - 1]
                    .iter()
                    .map(|f| &**f)
                    .collect();
                // the parent is the table whose ident path is our prefix: find it by trie
                self.find_parent_name(tid, &frags)
            } else {
                None
            };
            match parent_name {
                Some(p) => self.schema.ensure_child_table(&name, &p),
                None => {
                    self.schema.doc_mut().tables.insert(
                        name.clone(),
                        Table {
                            name: name.clone(),
                            write_disposition: Some(sluice_sdk::schema::WriteDisposition::Append),
                            resource: Some(name.clone()),
                            ..Default::default()
                        },
                    );
                }
            }
        }
        for col in columns {
            if let Some(t) = self.schema.table_mut(&name) {
                // an incomplete (hint-only) column that becomes complete moves to the end, as
                // dlt's merge_columns does
                if t.columns.get(&col.name).is_some_and(|c| !c.is_complete()) {
                    t.columns.shift_remove(&col.name);
                }
                t.columns.insert(col.name.clone(), col.clone());
            }
            let ctx = &mut self.tables[tid];
            if !ctx.col_index.contains_key(&col.name) {
                let idx = ctx.buf.add_column(&col);
                ctx.col_index.insert(col.name.clone(), idx);
                ctx.hints.push(hints_of(&col));
                ctx.nullable.push(col.is_nullable());
            }
        }
        Ok(())
    }

    fn find_parent_name(&self, tid: usize, _frags: &[&str]) -> Option<String> {
        // the table that created this child table holds it in one of its trie nodes
        self.tables.iter().enumerate().find_map(|(i, t)| {
            (i != tid && t.trie.iter().any(|n| n.list_table == Some(tid))).then(|| t.name.clone())
        })
    }

    fn flush_table(&mut self, tid: usize) -> Result<()> {
        if let Some(batch) = self.tables[tid].buf.finish()? {
            let name = self.tables[tid].name.clone();
            self.sink.write(&name, batch)?;
        }
        Ok(())
    }

    /// Flushes every table's buffered rows to the sink and returns what happened since the last
    /// call: rows per table, null-only columns, and whether the schema changed. The schema's
    /// `seen-data` markers are not set (see [`Normalizer::finish`]).
    pub fn take_output(&mut self) -> Result<ChunkOutput> {
        let mut out = ChunkOutput {
            schema_changed: std::mem::take(&mut self.schema_changed),
            items: std::mem::take(&mut self.items),
            ..Default::default()
        };
        for tid in 0..self.tables.len() {
            self.flush_table(tid)?;
            let t = &mut self.tables[tid];
            let rows = std::mem::take(&mut t.rows_total);
            if rows > 0 {
                out.rows.insert(t.name.clone(), rows);
            }
        }
        for (table, cols) in std::mem::take(&mut self.null_only) {
            out.null_only.insert(table, cols.into_iter().collect());
        }
        Ok(out)
    }

    /// The sink, mutable.
    pub fn sink_mut(&mut self) -> &mut S {
        &mut self.sink
    }

    /// Flushes all tables, marks tables that received rows as having seen data, and returns
    /// the report, the sink and the evolved schema.
    pub fn finish(mut self) -> Result<(NormalizeReport, S, Schema)> {
        let out = self.take_output()?;
        let mut report = NormalizeReport::default();
        report.add(out);
        report.finalize(&mut self.schema);
        Ok((report, self.sink, self.schema))
    }
}

/// dlt's `merge_column(inferred, incomplete)`: every key of the incomplete (hint) column
/// overrides the inferred one.
fn merge_column(inferred: &mut Column, incomplete: &Column) {
    let inc = serde_json::to_value(incomplete).unwrap_or_default();
    let mut base = serde_json::to_value(&*inferred).unwrap_or_default();
    if let (serde_json::Value::Object(b), serde_json::Value::Object(i)) = (&mut base, inc) {
        for (k, v) in i {
            b.insert(k, v);
        }
    }
    if let Ok(c) = serde_json::from_value(base) {
        *inferred = c;
    }
}

/// Re-labels the lifetime of a coerced value whose borrows point into the current document or
/// the row's entries (both outlive the row's value list).
fn relife<'a, 'e>(c: Coerced<'a>) -> Coerced<'e> {
    // SAFETY: callers only pass values borrowing from the row entries (lifetime 'e) or from the
    // current document (transmuted to 'static, valid until the entries are cleared); the value
    // list is dropped before either.
    unsafe { std::mem::transmute::<Coerced<'a>, Coerced<'e>>(c) }
}

/// Changes the lifetime of an empty value list (a buffer reused across rows).
fn relife_values<'a, 'b>(mut v: Vec<(Target, Coerced<'a>)>) -> Vec<(Target, Coerced<'b>)> {
    v.clear();
    // an empty Vec holds no values: only its allocation is reused, whose layout does not
    // depend on the lifetime
    let mut v = std::mem::ManuallyDrop::new(v);
    let (ptr, cap) = (v.as_mut_ptr(), v.capacity());
    // SAFETY: same element type up to lifetimes (same size and alignment), length 0, and the
    // allocation comes from a Vec of that layout
    unsafe { Vec::from_raw_parts(ptr.cast(), 0, cap) }
}

/// Extends a node reference's lifetime to `'static`.
///
/// The normalizer keeps node references of the current document in buffers reused across
/// documents; every such buffer is cleared before the document it points into is dropped or
/// reparsed (see `normalize_item`), so no reference outlives its document.
fn unsafe_lifetime<'d, 'a>(node: NodeRef<'d, 'a>) -> NodeRef<'static, 'static> {
    // SAFETY: see above; NodeRef is two words with no drop glue, and the lifetimes are the
    // only difference between the two types.
    unsafe { std::mem::transmute::<NodeRef<'d, 'a>, NodeRef<'static, 'static>>(node) }
}

/// Where a part of a JSON text comes from: from byte `offset` of the text on, the text is line
/// `line` (1-based) on of the document `name` (e.g. a file as the user knows it).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TextOrigin {
    /// Byte offset in the text where this part starts.
    pub offset: usize,
    /// The document's name.
    pub name: Arc<str>,
    /// The line of the document at `offset`.
    pub line: u64,
}

/// The error for invalid JSON found while parsing the document that follows byte `start` of
/// `text`: with the name and line of its origin when known (the line where the document starts:
/// JSON lines hold one document a line), and what the parser said.
pub(crate) fn invalid_json(
    context: &str,
    text: &str,
    start: usize,
    e: &crate::json::JsonError,
    origins: &[TextOrigin],
) -> Error {
    let bytes = text.as_bytes();
    let start = start.min(bytes.len());
    let doc_start = start
        + bytes[start..]
            .iter()
            .take_while(|b| matches!(b, b' ' | b'\t' | b'\r' | b'\n'))
            .count();
    let Some(origin) = origins
        .iter()
        .rev()
        .find(|o| o.offset <= doc_start)
        .filter(|o| !o.name.is_empty())
    else {
        return Error::data(format!("invalid JSON in the data of {context}: {e}"));
    };
    let line =
        origin.line + memchr::memchr_iter(b'\n', &bytes[origin.offset..doc_start]).count() as u64;
    let at = e.offset.clamp(doc_start, bytes.len());
    let column = if memchr::memchr(b'\n', &bytes[doc_start..at]).is_none() {
        format!(", column {}", e.column)
    } else {
        String::new()
    };
    Error::data(format!(
        "invalid JSON in `{}` at line {line}{column}: {} (data of {context})",
        origin.name, e.message
    ))
}

#[cfg(test)]
mod tests;
