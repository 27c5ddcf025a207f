//! The statements a SQL destination runs for a load package (spec g): DDL from the schema, and
//! the follow-up statements of each write disposition and merge strategy, run when the package
//! completes. Written once; what differs between destinations is a [`SqlDialect`].
//!
//! ```
//! use sluice_sdk::schema::{Column, DataType, Table};
//! use sluice_sql::jobs::{create_table, SqlDialect};
//!
//! struct Plain;
//! impl SqlDialect for Plain {
//!     fn column_type(&self, c: &Column) -> sluice_sdk::Result<String> {
//!         Ok(if c.data_type == Some(DataType::Bigint) { "BIGINT" } else { "TEXT" }.into())
//!     }
//!     fn load_order(&self) -> &'static str {
//!         "rowid"
//!     }
//! }
//! let mut t = Table { name: "items".into(), ..Default::default() };
//! t.columns.insert("id".into(), Column { nullable: Some(false), ..Column::new("id", DataType::Bigint) });
//! assert_eq!(
//!     create_table(&Plain, "ds", &t, false)?,
//!     r#"CREATE TABLE IF NOT EXISTS "ds"."items" ("id" BIGINT NOT NULL)"#
//! );
//! # Ok::<(), sluice_sdk::Error>(())
//! ```

use std::collections::{BTreeMap, BTreeSet};

use serde_json::Value;
use sluice_sdk::destination::{LoadCompletion, LoadPlan, SchemaUpdate};
use sluice_sdk::schema::{Column, DataType, MergeStrategy, Schema, Table, WriteDisposition};
use sluice_sdk::Result;

/// What differs between SQL destinations in the statements of this module.
pub trait SqlDialect {
    /// The column's type in DDL (it may carry storage clauses, e.g. DuckDB's compression).
    fn column_type(&self, column: &Column) -> Result<String>;

    /// An expression that orders a staging table's rows as they were loaded, for "the first
    /// staged row wins" (DuckDB `rowid`, PostgreSQL `ctid`).
    fn load_order(&self) -> &'static str;

    /// The longest identifier: temporary table names are shortened to it.
    fn max_identifier_length(&self) -> usize {
        usize::MAX
    }

    /// The start of a `CREATE TABLE` statement; `staging` tables are scratch space that is
    /// emptied before every use (PostgreSQL makes them `UNLOGGED`).
    fn create_table_keyword(&self, staging: bool) -> &'static str {
        let _ = staging;
        "CREATE TABLE"
    }

    /// The statement that empties a table (`DELETE FROM` unless the destination has a faster
    /// transactional one).
    fn truncate(&self, qualified_table: &str) -> String {
        format!("DELETE FROM {qualified_table}")
    }

    /// The statements that empty `qualified_tables` in a load's transaction (one
    /// [`Self::truncate`] each unless the destination empties many at once).
    fn empty_tables(&self, qualified_tables: &[String]) -> Vec<String> {
        qualified_tables.iter().map(|t| self.truncate(t)).collect()
    }

    /// Whether a staging table can take its table's place ([`Self::swap_in`]): `replace`
    /// with `staging-optimized`. Without it that strategy runs as `insert-from-staging`.
    fn supports_swap(&self) -> bool {
        false
    }

    /// The statements that put `staging.table` in place of `dataset.table` and leave an empty
    /// staging table of the same shape.
    fn swap_in(&self, dataset: &str, staging: &str, table: &str) -> Vec<String> {
        let _ = (dataset, staging, table);
        Vec::new()
    }
}

/// A quoted identifier.
pub fn quote(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

/// A quoted string literal (standard SQL: quotes doubled, backslashes literal).
pub fn literal(value: &str) -> String {
    format!("'{}'", value.replace('\'', "''"))
}

/// `"dataset"."table"`.
pub fn qualified(dataset: &str, table: &str) -> String {
    format!("{}.{}", quote(dataset), quote(table))
}

/// Complete columns of a table, in order.
pub fn complete_columns(table: &Table) -> Vec<&Column> {
    table.columns.values().filter(|c| c.is_complete()).collect()
}

/// The tables of the chain rooted at `root` that have columns (nested tables follow their
/// parents).
pub fn chain<'a>(schema: &'a Schema, root: &'a str) -> Vec<&'a Table> {
    schema
        .table_chain(root)
        .into_iter()
        .filter_map(|n| schema.tables.get(n))
        .filter(|t| t.columns.values().any(Column::is_complete))
        .collect()
}

/// `CREATE TABLE IF NOT EXISTS` for a table's complete columns.
pub fn create_table(
    d: &dyn SqlDialect,
    dataset: &str,
    table: &Table,
    staging: bool,
) -> Result<String> {
    let mut cols = Vec::new();
    for c in complete_columns(table) {
        let mut def = format!("{} {}", quote(&c.name), d.column_type(c)?);
        if !c.is_nullable() {
            def.push_str(" NOT NULL");
        }
        cols.push(def);
    }
    Ok(format!(
        "{} IF NOT EXISTS {} ({})",
        d.create_table_keyword(staging),
        qualified(dataset, &table.name),
        cols.join(", ")
    ))
}

/// The statements that bring `tables` of `dataset` in line with the schema, given the columns
/// that `existing` tables have: `CREATE TABLE` for missing tables, `ADD COLUMN` for missing
/// columns. What they change is recorded in `update`.
pub fn schema_changes(
    d: &dyn SqlDialect,
    dataset: &str,
    tables: &[&Table],
    existing: &BTreeMap<String, BTreeSet<String>>,
    staging: bool,
    update: &mut SchemaUpdate,
) -> Result<Vec<String>> {
    let mut out = Vec::new();
    for t in tables {
        let cols = complete_columns(t);
        if cols.is_empty() {
            continue;
        }
        match existing.get(&t.name) {
            None => {
                out.push(create_table(d, dataset, t, staging)?);
                update.created_tables.insert(
                    t.name.clone(),
                    cols.iter().map(|c| c.name.clone()).collect(),
                );
            }
            Some(have) => {
                for c in cols.into_iter().filter(|c| !have.contains(&c.name)) {
                    out.push(add_column(d, dataset, &t.name, c)?);
                    update
                        .added_columns
                        .entry(t.name.clone())
                        .or_default()
                        .push(c.name.clone());
                }
            }
        }
    }
    Ok(out)
}

/// The root tables a load plan touches: those of its jobs, and those the host lists as loaded
/// without rows (`root_tables`: a replace that produced nothing still empties its tables).
pub fn plan_roots(schema: &Schema, plan: &LoadPlan) -> Vec<String> {
    let listed = plan
        .extra
        .get("root_tables")
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(Value::as_str)
                .map(String::from)
                .collect::<Vec<_>>()
        })
        .unwrap_or_default();
    let mut roots: Vec<String> = Vec::new();
    for t in plan.jobs.iter().map(|j| j.table_name.clone()).chain(listed) {
        let root = schema.root_of(&t).to_string();
        if !roots.contains(&root) {
            roots.push(root);
        }
    }
    roots
}

/// Whether the rows of the chain rooted at `root` are loaded into the staging dataset first:
/// merge always, replace unless it truncates and inserts directly.
pub fn uses_staging(schema: &Schema, root: &str, truncate_and_insert: bool) -> bool {
    match schema.write_disposition_of(root) {
        WriteDisposition::Merge => true,
        WriteDisposition::Replace => !truncate_and_insert,
        _ => false,
    }
}

/// `ALTER TABLE ... ADD COLUMN` (one column per statement). NOT NULL and UNIQUE are left out:
/// a table with rows cannot take a NOT NULL column without a default. dlt emits both here, and
/// its ALTER fails on a table with rows; this is a deliberate difference.
pub fn add_column(d: &dyn SqlDialect, dataset: &str, table: &str, c: &Column) -> Result<String> {
    Ok(format!(
        "ALTER TABLE {} ADD COLUMN {} {}",
        qualified(dataset, table),
        quote(&c.name),
        d.column_type(c)?
    ))
}

fn col_list(cols: &[&Column], prefix: &str) -> String {
    cols.iter()
        .map(|c| format!("{prefix}{}", quote(&c.name)))
        .collect::<Vec<_>>()
        .join(", ")
}

fn hard_delete_column(table: &Table) -> Option<&Column> {
    table
        .columns
        .values()
        .find(|c| c.hint("hard_delete") && c.is_complete())
}

/// The condition under which a staged row is a hard delete, or None.
fn hard_delete_condition(table: &Table, alias: &str) -> Option<String> {
    let col = hard_delete_column(table)?;
    let q = format!("{alias}{}", quote(&col.name));
    Some(if col.data_type == Some(DataType::Bool) {
        format!("{q} = TRUE")
    } else {
        format!("{q} IS NOT NULL")
    })
}

fn not_deleted(table: &Table, alias: &str) -> Option<String> {
    let col = hard_delete_column(table)?;
    let q = format!("{alias}{}", quote(&col.name));
    Some(if col.data_type == Some(DataType::Bool) {
        format!("{q} IS DISTINCT FROM TRUE")
    } else {
        format!("{q} IS NULL")
    })
}

fn key_condition(root: &Table) -> Option<String> {
    let pk = root.columns_with_hint("primary_key");
    let mk = root.columns_with_hint("merge_key");
    let group = |keys: &[&str]| {
        keys.iter()
            .map(|k| format!("d.{q} = s.{q}", q = quote(k)))
            .collect::<Vec<_>>()
            .join(" AND ")
    };
    let mut groups = Vec::new();
    if !pk.is_empty() {
        groups.push(format!("({})", group(&pk)));
    }
    if !mk.is_empty() {
        groups.push(format!("({})", group(&mk)));
    }
    (!groups.is_empty()).then(|| groups.join(" OR "))
}

fn row_key<'a>(t: &'a Table, hint: &str, default: &'a str) -> &'a str {
    t.columns
        .values()
        .find(|c| c.hint(hint))
        .map_or(default, |c| c.name.as_str())
}

/// The boundary timestamp of an scd2 load: the table's `x-boundary-timestamp`, else the
/// package's `created_at`, else the completion time.
pub fn scd2_boundary(root: &Table, completion: &LoadCompletion) -> String {
    root.extra
        .get("x-boundary-timestamp")
        .and_then(Value::as_str)
        .or_else(|| completion.extra.get("created_at").and_then(Value::as_str))
        .unwrap_or(&completion.inserted_at)
        .to_string()
}

/// The follow-up statements of one load package in one dataset and its staging dataset.
pub struct Followup<'a> {
    /// The destination's dialect.
    pub dialect: &'a dyn SqlDialect,
    /// The dataset written.
    pub dataset: &'a str,
    /// Its staging dataset.
    pub staging: &'a str,
    /// A random suffix for temporary tables.
    pub temp_suffix: &'a str,
    /// The package's load id when every statement must give the same result if run again
    /// (a destination without transactions applying an interrupted package again): rows are
    /// then copied from staging only into tables that do not hold them yet.
    pub once: Option<&'a str>,
}

impl std::fmt::Debug for Followup<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Followup")
            .field("dataset", &self.dataset)
            .field("staging", &self.staging)
            .finish()
    }
}

impl Followup<'_> {
    /// The statements that move a staged chain into place: `replace` with
    /// `insert-from-staging`, merge with the root table's strategy, or append (staged only by
    /// a destination without transactions). `boundary` is the scd2 boundary timestamp
    /// (ISO 8601).
    pub fn statements(
        &self,
        chain: &[&Table],
        disposition: WriteDisposition,
        boundary: &str,
    ) -> Vec<String> {
        match disposition {
            WriteDisposition::Replace => self.insert_from_staging(chain),
            WriteDisposition::Merge => match chain[0].merge_strategy().unwrap_or_default() {
                MergeStrategy::DeleteInsert => self.delete_insert(chain),
                MergeStrategy::Upsert => self.upsert(chain),
                MergeStrategy::InsertOnly => self.insert_only(chain),
                MergeStrategy::Scd2 => {
                    self.scd2(chain, &format!("{}::TIMESTAMPTZ", literal(boundary)))
                }
            },
            WriteDisposition::Append => self.copy_from_staging(chain),
            _ => Vec::new(),
        }
    }

    fn d(&self, table: &str) -> String {
        qualified(self.dataset, table)
    }

    fn s(&self, table: &str) -> String {
        qualified(self.staging, table)
    }

    /// A temporary table's name, `<root>_<what>_<suffix>` shortened to the dialect's limit.
    fn temp(&self, root: &str, what: &str) -> String {
        let tail = format!("_{what}_{}", self.temp_suffix);
        let room = self
            .dialect
            .max_identifier_length()
            .saturating_sub(tail.len());
        let head: String = root.chars().take(room).collect();
        let mut head = head;
        while head.len() > room {
            head.pop();
        }
        quote(&format!("{head}{tail}"))
    }

    /// `INSERT INTO dest SELECT FROM staging` for every table of a chain (append staged by a
    /// destination without transactions, merge without keys), each skipped where the table
    /// holds the rows already if [`Self::once`] is set.
    pub fn copy_from_staging(&self, chain: &[&Table]) -> Vec<String> {
        self.copy(chain, self.once)
    }

    fn copy(&self, chain: &[&Table], once: Option<&str>) -> Vec<String> {
        chain
            .iter()
            .map(|t| {
                let cols = complete_columns(t);
                let (d, s) = (self.d(&t.name), self.s(&t.name));
                let guard = once.and_then(|load_id| {
                    let has = |name: &str| cols.iter().any(|c| c.name == name);
                    let id = row_key(t, "row_key", "_dlt_id");
                    if has("_dlt_load_id") {
                        Some(format!(
                            " WHERE NOT EXISTS (SELECT 1 FROM {d} WHERE {} = {})",
                            quote("_dlt_load_id"),
                            literal(load_id)
                        ))
                    } else if has(id) {
                        // a nested table has no load id: row by row, by the ids the
                        // package's rows carry every time it is loaded
                        Some(format!(
                            " AS s WHERE NOT EXISTS (SELECT 1 FROM {d} AS d WHERE d.{q} = s.{q})",
                            q = quote(id)
                        ))
                    } else {
                        None
                    }
                });
                format!(
                    "INSERT INTO {d} ({c}) SELECT {c} FROM {s}{g}",
                    c = col_list(&cols, ""),
                    g = guard.unwrap_or_default()
                )
            })
            .collect()
    }

    /// Replace with `insert-from-staging`: truncate each table of the chain and copy from
    /// staging.
    pub fn insert_from_staging(&self, chain: &[&Table]) -> Vec<String> {
        let mut out: Vec<String> = chain
            .iter()
            .map(|t| self.dialect.truncate(&self.d(&t.name)))
            .collect();
        // the tables were just emptied: no guard needed
        out.extend(self.copy(chain, None));
        out
    }

    /// Merge with `delete-insert` (spec g.3).
    pub fn delete_insert(&self, chain: &[&Table]) -> Vec<String> {
        let root = chain[0];
        let Some(cond) = key_condition(root) else {
            // no keys: merge behaves like append
            return self.copy_from_staging(chain);
        };
        let d = self.d(&root.name);
        let s = self.s(&root.name);
        let nested = &chain[1..];
        let root_id = quote(row_key(root, "row_key", "_dlt_id"));
        let order = self.dialect.load_order();
        let mut out = Vec::new();
        // 1. delete matching destination rows (with their nested rows)
        if nested.is_empty() {
            out.push(format!(
                "DELETE FROM {d} AS d WHERE EXISTS (SELECT 1 FROM {s} AS s WHERE {cond})"
            ));
        } else {
            let del = self.temp(&root.name, "delete");
            out.push(format!(
                "CREATE TEMPORARY TABLE {del} AS SELECT d.{root_id} FROM {d} AS d WHERE EXISTS (SELECT 1 FROM {s} AS s WHERE {cond})"
            ));
            for t in nested {
                let rk = quote(row_key(t, "root_key", "_dlt_root_id"));
                out.push(format!(
                    "DELETE FROM {} WHERE {rk} IN (SELECT * FROM {del})",
                    self.d(&t.name)
                ));
            }
            out.push(format!(
                "DELETE FROM {d} WHERE {root_id} IN (SELECT * FROM {del})"
            ));
            out.push(format!("DROP TABLE {del}"));
        }
        // 2. insert, deduplicated on the primary key
        let pk = root.columns_with_hint("primary_key");
        let deduplicate = !pk.is_empty()
            && !root
                .extra
                .get("x-stage-data-deduplicated")
                .and_then(Value::as_bool)
                .unwrap_or(false);
        let root_cols = complete_columns(root);
        let not_del = not_deleted(root, "");
        let select_root = if deduplicate {
            let order = match root.columns.values().find(|c| c.dedup_sort.is_some()) {
                Some(c) => format!(
                    "{} {}",
                    quote(&c.name),
                    if c.dedup_sort.as_deref() == Some("asc") {
                        "ASC"
                    } else {
                        "DESC"
                    }
                ),
                // dlt's (SELECT NULL): the first staged row wins, kept in load order here
                None => order.to_string(),
            };
            let partition = pk.iter().map(|k| quote(k)).collect::<Vec<_>>().join(", ");
            let mut filter = "_dlt_dedup_rn = 1".to_string();
            if let Some(nd) = &not_del {
                filter.push_str(&format!(" AND {nd}"));
            }
            format!(
                "SELECT {cols} FROM (SELECT ROW_NUMBER() OVER (PARTITION BY {partition} ORDER BY {order}) AS _dlt_dedup_rn, * FROM {s}) AS _dlt_dedup WHERE {filter}",
                cols = col_list(&root_cols, "")
            )
        } else {
            let filter = not_del
                .as_ref()
                .map(|nd| format!(" WHERE {nd}"))
                .unwrap_or_default();
            format!("SELECT {} FROM {s}{filter}", col_list(&root_cols, ""))
        };
        if nested.is_empty() {
            out.push(format!(
                "INSERT INTO {d} ({}) {select_root}",
                col_list(&root_cols, "")
            ));
        } else {
            let ins = self.temp(&root.name, "insert");
            out.push(format!(
                "CREATE TEMPORARY TABLE {ins} AS SELECT {root_id} FROM ({select_root}) AS _dlt_rows"
            ));
            out.push(format!(
                "INSERT INTO {d} ({cols}) SELECT {cols} FROM {s} WHERE {root_id} IN (SELECT * FROM {ins})",
                cols = col_list(&root_cols, "")
            ));
            for t in nested {
                let cols = complete_columns(t);
                let rk = quote(row_key(t, "root_key", "_dlt_root_id"));
                let id = quote(row_key(t, "row_key", "_dlt_id"));
                out.push(format!(
                    "INSERT INTO {dt} ({c}) SELECT {c} FROM (SELECT ROW_NUMBER() OVER (PARTITION BY {id} ORDER BY {order}) AS _dlt_dedup_rn, * FROM {st} WHERE {rk} IN (SELECT * FROM {ins})) AS _dlt_dedup WHERE _dlt_dedup_rn = 1",
                    dt = self.d(&t.name),
                    st = self.s(&t.name),
                    c = col_list(&cols, "")
                ));
            }
            out.push(format!("DROP TABLE {ins}"));
        }
        out
    }

    /// Merge with `upsert` (spec g.4). Without a primary key dlt refuses upsert; here it falls
    /// back to delete-insert semantics on the merge key.
    pub fn upsert(&self, chain: &[&Table]) -> Vec<String> {
        let root = chain[0];
        let pk = root.columns_with_hint("primary_key");
        if pk.is_empty() {
            return self.delete_insert(chain);
        }
        let on = pk
            .iter()
            .map(|k| format!("d.{q} = s.{q}", q = quote(k)))
            .collect::<Vec<_>>()
            .join(" AND ");
        let mut out = Vec::new();
        // repeated after a cut, a deleted key is no longer matched: its tombstone must not be
        // inserted then (dlt inserts tombstones of keys it never saw; repeatable statements
        // cannot tell those apart, so they skip them)
        let insert_filter = self
            .once
            .and_then(|_| not_deleted(root, "s."))
            .map(|c| format!(" AND {c}"))
            .unwrap_or_default();
        let merge = |t: &Table, on: &str, deleted: Option<String>| {
            let cols = complete_columns(t);
            let set = cols
                .iter()
                .map(|c| format!("{q} = s.{q}", q = quote(&c.name)))
                .collect::<Vec<_>>()
                .join(", ");
            let (delete, filter) = match deleted {
                Some(cond) => (
                    format!(" WHEN MATCHED AND {cond} THEN DELETE"),
                    insert_filter.as_str(),
                ),
                None => (String::new(), ""),
            };
            format!(
                "MERGE INTO {dt} AS d USING {st} AS s ON {on}{delete} WHEN MATCHED THEN UPDATE SET {set} WHEN NOT MATCHED{filter} THEN INSERT ({c}) VALUES ({sc})",
                dt = self.d(&t.name),
                st = self.s(&t.name),
                c = col_list(&cols, ""),
                sc = col_list(&cols, "s.")
            )
        };
        out.push(merge(root, &on, hard_delete_condition(root, "s.")));
        let root_id = quote(row_key(root, "row_key", "_dlt_id"));
        let sroot = self.s(&root.name);
        for t in &chain[1..] {
            let id = quote(row_key(t, "row_key", "_dlt_id"));
            let rk = quote(row_key(t, "root_key", "_dlt_root_id"));
            out.push(merge(t, &format!("d.{id} = s.{id}"), None));
            // rows of re-sent roots that are no longer in their lists
            // NOT EXISTS, not NOT IN: an anti-join (PostgreSQL runs NOT IN over a subquery
            // row by row once it outgrows work_mem)
            out.push(format!(
                "DELETE FROM {dt} WHERE {rk} IN (SELECT {root_id} FROM {sroot}) AND NOT EXISTS (SELECT 1 FROM {st} AS s WHERE s.{id} = {dt}.{id})",
                dt = self.d(&t.name),
                st = self.s(&t.name)
            ));
            if let Some(cond) = hard_delete_condition(root, "") {
                out.push(format!(
                    "DELETE FROM {dt} WHERE {rk} IN (SELECT {root_id} FROM {sroot} WHERE {cond})",
                    dt = self.d(&t.name)
                ));
            }
        }
        out
    }

    /// Merge with `insert-only`: insert rows whose key is new.
    pub fn insert_only(&self, chain: &[&Table]) -> Vec<String> {
        let root = chain[0];
        let pk = root.columns_with_hint("primary_key");
        let cols = complete_columns(root);
        let on = pk
            .iter()
            .map(|k| format!("d.{q} = s.{q}", q = quote(k)))
            .collect::<Vec<_>>()
            .join(" AND ");
        let filter = not_deleted(root, "s.")
            .map(|c| format!(" AND {c}"))
            .unwrap_or_default();
        let mut out = vec![format!(
            "INSERT INTO {dt} ({c}) SELECT {sc} FROM {st} AS s WHERE NOT EXISTS (SELECT 1 FROM {dt} AS d WHERE {on}){filter}",
            dt = self.d(&root.name),
            st = self.s(&root.name),
            c = col_list(&cols, ""),
            sc = col_list(&cols, "s.")
        )];
        out.extend(self.insert_new_nested(&chain[1..]));
        out
    }

    /// Nested rows whose `_dlt_id` is not in the destination yet.
    fn insert_new_nested(&self, nested: &[&Table]) -> Vec<String> {
        nested
            .iter()
            .map(|t| {
                let cols = complete_columns(t);
                let id = quote(row_key(t, "row_key", "_dlt_id"));
                format!(
                    "INSERT INTO {dt} ({c}) SELECT {c} FROM {st} AS s WHERE NOT EXISTS (SELECT 1 FROM {dt} AS d WHERE d.{id} = s.{id})",
                    dt = self.d(&t.name),
                    st = self.s(&t.name),
                    c = col_list(&cols, "")
                )
            })
            .collect()
    }

    /// Merge with `scd2` (spec g.5). `boundary` is a timestamp literal.
    pub fn scd2(&self, chain: &[&Table], boundary: &str) -> Vec<String> {
        let root = chain[0];
        let from = root
            .columns
            .values()
            .find(|c| c.hint("x-valid-from"))
            .map_or("_dlt_valid_from", |c| c.name.as_str());
        let to_col = root.columns.values().find(|c| c.hint("x-valid-to"));
        let to = to_col.map_or("_dlt_valid_to", |c| c.name.as_str());
        let active_ts = to_col
            .and_then(|c| c.extra.get("x-active-record-timestamp"))
            .and_then(Value::as_str)
            .map(String::from);
        let active = |prefix: &str| match &active_ts {
            Some(ts) => format!("{prefix}{} = {}::TIMESTAMPTZ", quote(to), literal(ts)),
            None => format!("{prefix}{} IS NULL", quote(to)),
        };
        let active_value = match &active_ts {
            Some(ts) => format!("{}::TIMESTAMPTZ", literal(ts)),
            None => "NULL".to_string(),
        };
        let hash = root
            .columns
            .values()
            .find(|c| c.hint("x-row-version"))
            .map_or("_dlt_id", |c| c.name.as_str());
        let d = self.d(&root.name);
        let s = self.s(&root.name);
        let mk = root.columns_with_hint("merge_key");
        let mut retire = format!(
            "UPDATE {d} SET {to} = {boundary} WHERE {active} AND NOT EXISTS (SELECT 1 FROM {s} AS s WHERE s.{h} = {d}.{h})",
            to = quote(to),
            h = quote(hash),
            active = active("")
        );
        if !mk.is_empty() {
            let keys = mk.iter().map(|k| quote(k)).collect::<Vec<_>>().join(", ");
            retire.push_str(&format!(" AND ({keys}) IN (SELECT {keys} FROM {s})"));
        }
        let cols: Vec<&Column> = complete_columns(root)
            .into_iter()
            .filter(|c| c.name != from && c.name != to)
            .collect();
        let insert = format!(
            "INSERT INTO {d} ({c}, {f}, {t}) SELECT {c}, {boundary}, {active_value} FROM {s} AS s WHERE NOT EXISTS (SELECT 1 FROM {d} AS d WHERE {active} AND d.{h} = s.{h})",
            c = col_list(&cols, ""),
            f = quote(from),
            t = quote(to),
            h = quote(hash),
            active = active("d.")
        );
        let mut out = vec![retire, insert];
        out.extend(self.insert_new_nested(&chain[1..]));
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Short;
    impl SqlDialect for Short {
        fn column_type(&self, _: &Column) -> Result<String> {
            Ok("TEXT".into())
        }
        fn load_order(&self) -> &'static str {
            "ctid"
        }
        fn max_identifier_length(&self) -> usize {
            20
        }
        fn truncate(&self, t: &str) -> String {
            format!("TRUNCATE {t}")
        }
    }

    fn table(name: &str, parent: Option<&str>, cols: &[(&str, &[&str])]) -> Table {
        let mut t = Table {
            name: name.into(),
            parent: parent.map(String::from),
            ..Default::default()
        };
        for (c, hints) in cols {
            let mut col = Column::new(*c, DataType::Text);
            for h in *hints {
                match *h {
                    "primary_key" => col.primary_key = Some(true),
                    "row_key" => col.row_key = Some(true),
                    "root_key" => col.root_key = Some(true),
                    _ => {}
                }
            }
            t.columns.insert(c.to_string(), col);
        }
        t
    }

    #[test]
    fn delete_insert_with_nested_tables_uses_short_temporary_names_and_the_load_order() {
        let root = table(
            "a_long_root_table_name",
            None,
            &[("id", &["primary_key"]), ("_dlt_id", &["row_key"])],
        );
        let child = table(
            "a_long_root_table_name__c",
            Some("a_long_root_table_name"),
            &[
                ("v", &[]),
                ("_dlt_root_id", &["root_key"]),
                ("_dlt_id", &["row_key"]),
            ],
        );
        let f = Followup {
            dialect: &Short,
            dataset: "ds",
            staging: "ds_staging",
            temp_suffix: "1a2b",
            once: None,
        };
        let sql = f.delete_insert(&[&root, &child]);
        assert_eq!(
            sql[0],
            r#"CREATE TEMPORARY TABLE "a_long_r_delete_1a2b" AS SELECT d."_dlt_id" FROM "ds"."a_long_root_table_name" AS d WHERE EXISTS (SELECT 1 FROM "ds_staging"."a_long_root_table_name" AS s WHERE (d."id" = s."id"))"#
        );
        assert!(sql.iter().all(|s| !s.contains("rowid")), "{sql:?}");
        assert!(
            sql.iter()
                .any(|s| s.contains("PARTITION BY \"id\" ORDER BY ctid")),
            "{sql:?}"
        );
        assert!(sql.contains(&r#"DROP TABLE "a_long_r_insert_1a2b""#.to_string()));
        let replace = f.insert_from_staging(&[&root]);
        assert_eq!(replace[0], r#"TRUNCATE "ds"."a_long_root_table_name""#);
    }

    #[test]
    fn a_repeatable_copy_skips_tables_that_hold_the_package_already() {
        let root = table(
            "items",
            None,
            &[
                ("id", &[]),
                ("_dlt_load_id", &[]),
                ("_dlt_id", &["row_key"]),
            ],
        );
        let child = table(
            "items__tags",
            Some("items"),
            &[("v", &[]), ("_dlt_id", &["row_key"])],
        );
        let bare = table("bare", None, &[("v", &[])]);
        let mut f = Followup {
            dialect: &Short,
            dataset: "ds",
            staging: "st",
            temp_suffix: "1a2b",
            once: Some("17.5"),
        };
        let sql = f.statements(&[&root, &child], WriteDisposition::Append, "");
        assert_eq!(
            sql,
            [
                r#"INSERT INTO "ds"."items" ("id", "_dlt_load_id", "_dlt_id") SELECT "id", "_dlt_load_id", "_dlt_id" FROM "st"."items" WHERE NOT EXISTS (SELECT 1 FROM "ds"."items" WHERE "_dlt_load_id" = '17.5')"#,
                r#"INSERT INTO "ds"."items__tags" ("v", "_dlt_id") SELECT "v", "_dlt_id" FROM "st"."items__tags" AS s WHERE NOT EXISTS (SELECT 1 FROM "ds"."items__tags" AS d WHERE d."_dlt_id" = s."_dlt_id")"#,
            ]
        );
        // neither dlt column: copied as it is (at least once)
        assert_eq!(
            f.copy_from_staging(&[&bare]),
            [r#"INSERT INTO "ds"."bare" ("v") SELECT "v" FROM "st"."bare""#]
        );
        // a truncated table needs no guard
        let replace = f.insert_from_staging(&[&root]);
        assert!(!replace[1].contains("NOT EXISTS"), "{replace:?}");
        // with transactions: plain copies
        f.once = None;
        let sql = f.statements(&[&root], WriteDisposition::Append, "");
        assert!(!sql[0].contains("WHERE"), "{sql:?}");
    }
}
