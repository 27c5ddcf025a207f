//! SQL for DuckDB: DDL from the schema, and the follow-up statements of each write disposition
//! and merge strategy (spec g), run when a load package completes.

use sluice_sdk::schema::{Column, DataType, Schema, Table};

use crate::types::{column_type, literal, quote};

/// `"dataset"."table"`.
pub fn qualified(dataset: &str, table: &str) -> String {
    format!("{}.{}", quote(dataset), quote(table))
}

/// Complete columns of a table, in order.
pub fn complete_columns(table: &Table) -> Vec<&Column> {
    table.columns.values().filter(|c| c.is_complete()).collect()
}

/// The column's type, with the compression DuckDB is told to use where its own choice is slow.
///
/// The row, parent and root keys (`_dlt_id`, `_dlt_parent_id`, `_dlt_root_id`; also a user's
/// column given one of those hints) are random or hashed base64 text: DuckDB's default analysis tries DICT_FSST on them, which costs about
/// twice the rest of the load of such a column and saves almost nothing; zstd stores them about
/// as small. Measured on the nested benchmark's package (1.93 M rows in 5 tables): the inserts
/// take 2.35 s instead of 2.65-2.69 s, and the database is 173 MB instead of 165-189 MB.
fn column_type_def(c: &Column) -> String {
    let ty = column_type(c);
    let is_key = c.row_key == Some(true) || c.parent_key == Some(true) || c.root_key == Some(true);
    if is_key && c.data_type.unwrap_or(DataType::Text) == DataType::Text {
        format!("{ty} USING COMPRESSION zstd")
    } else {
        ty
    }
}

/// `CREATE TABLE` for a table's complete columns.
pub fn create_table(dataset: &str, table: &Table) -> String {
    let cols: Vec<String> = complete_columns(table)
        .into_iter()
        .map(|c| {
            let mut def = format!("{} {}", quote(&c.name), column_type_def(c));
            if !c.is_nullable() {
                def.push_str(" NOT NULL");
            }
            def
        })
        .collect();
    format!(
        "CREATE TABLE IF NOT EXISTS {} ({})",
        qualified(dataset, &table.name),
        cols.join(", ")
    )
}

/// `ALTER TABLE ... ADD COLUMN` (one column per statement; DuckDB cannot add NOT NULL columns
/// to a table with rows, so the constraint is left out as dlt does).
pub fn add_column(dataset: &str, table: &str, c: &Column) -> String {
    format!(
        "ALTER TABLE {} ADD COLUMN {} {}",
        qualified(dataset, table),
        quote(&c.name),
        column_type_def(c)
    )
}

fn col_list(cols: &[&Column], prefix: &str) -> String {
    cols.iter()
        .map(|c| format!("{prefix}{}", quote(&c.name)))
        .collect::<Vec<_>>()
        .join(", ")
}

/// The condition under which a staged row is a hard delete, or None.
fn hard_delete_condition(table: &Table, alias: &str) -> Option<String> {
    let col = table
        .columns
        .values()
        .find(|c| c.hint("hard_delete") && c.is_complete())?;
    let q = format!("{alias}{}", quote(&col.name));
    Some(if col.data_type == Some(DataType::Bool) {
        format!("{q} = TRUE")
    } else {
        format!("{q} IS NOT NULL")
    })
}

fn not_deleted(table: &Table, alias: &str) -> Option<String> {
    let col = table
        .columns
        .values()
        .find(|c| c.hint("hard_delete") && c.is_complete())?;
    let q = format!("{alias}{}", quote(&col.name));
    Some(if col.data_type == Some(DataType::Bool) {
        format!("{q} IS DISTINCT FROM TRUE")
    } else {
        format!("{q} IS NULL")
    })
}

/// `INSERT INTO dest SELECT FROM staging` for every table of a chain (merge without keys,
/// replace from staging after the truncation).
pub fn copy_from_staging(dataset: &str, staging: &str, chain: &[&Table]) -> Vec<String> {
    chain
        .iter()
        .map(|t| {
            let cols = complete_columns(t);
            format!(
                "INSERT INTO {} ({}) SELECT {} FROM {}",
                qualified(dataset, &t.name),
                col_list(&cols, ""),
                col_list(&cols, ""),
                qualified(staging, &t.name)
            )
        })
        .collect()
}

/// Replace with `insert-from-staging`: truncate each table of the chain and copy from staging.
pub fn insert_from_staging(dataset: &str, staging: &str, chain: &[&Table]) -> Vec<String> {
    let mut out: Vec<String> = chain
        .iter()
        .map(|t| format!("DELETE FROM {}", qualified(dataset, &t.name)))
        .collect();
    out.extend(copy_from_staging(dataset, staging, chain));
    out
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

/// Merge with `delete-insert` (spec g.3).
pub fn delete_insert(
    dataset: &str,
    staging: &str,
    chain: &[&Table],
    temp_suffix: &str,
) -> Vec<String> {
    let root = chain[0];
    let Some(cond) = key_condition(root) else {
        // no keys: merge behaves like append
        return copy_from_staging(dataset, staging, chain);
    };
    let d = qualified(dataset, &root.name);
    let s = qualified(staging, &root.name);
    let nested = &chain[1..];
    let root_id = quote(row_key(root, "row_key", "_dlt_id"));
    let mut out = Vec::new();
    // 1. delete matching destination rows (with their nested rows)
    if nested.is_empty() {
        out.push(format!(
            "DELETE FROM {d} AS d WHERE EXISTS (SELECT 1 FROM {s} AS s WHERE {cond})"
        ));
    } else {
        let del = quote(&format!("{}_delete_{temp_suffix}", root.name));
        out.push(format!(
            "CREATE TEMPORARY TABLE {del} AS SELECT d.{root_id} FROM {d} AS d WHERE EXISTS (SELECT 1 FROM {s} AS s WHERE {cond})"
        ));
        for t in nested {
            let rk = quote(row_key(t, "root_key", "_dlt_root_id"));
            out.push(format!(
                "DELETE FROM {} WHERE {rk} IN (SELECT * FROM {del})",
                qualified(dataset, &t.name)
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
            .and_then(serde_json::Value::as_bool)
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
            // dlt's (SELECT NULL): the first staged row wins, which DuckDB keeps in rowid order
            None => "rowid".to_string(),
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
        let ins = quote(&format!("{}_insert_{temp_suffix}", root.name));
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
                "INSERT INTO {dt} ({c}) SELECT {c} FROM (SELECT ROW_NUMBER() OVER (PARTITION BY {id} ORDER BY rowid) AS _dlt_dedup_rn, * FROM {st} WHERE {rk} IN (SELECT * FROM {ins})) AS _dlt_dedup WHERE _dlt_dedup_rn = 1",
                dt = qualified(dataset, &t.name),
                st = qualified(staging, &t.name),
                c = col_list(&cols, "")
            ));
        }
        out.push(format!("DROP TABLE {ins}"));
    }
    out
}

/// Merge with `upsert` (spec g.4). Without a primary key dlt refuses upsert; here it falls
/// back to delete-insert semantics on the merge key.
pub fn upsert(dataset: &str, staging: &str, chain: &[&Table], temp_suffix: &str) -> Vec<String> {
    let root = chain[0];
    let pk = root.columns_with_hint("primary_key");
    if pk.is_empty() {
        return delete_insert(dataset, staging, chain, temp_suffix);
    }
    let on = pk
        .iter()
        .map(|k| format!("d.{q} = s.{q}", q = quote(k)))
        .collect::<Vec<_>>()
        .join(" AND ");
    let mut out = Vec::new();
    let merge = |t: &Table, on: &str, deleted: Option<String>| {
        let cols = complete_columns(t);
        let set = cols
            .iter()
            .map(|c| format!("{q} = s.{q}", q = quote(&c.name)))
            .collect::<Vec<_>>()
            .join(", ");
        let delete = deleted
            .map(|cond| format!(" WHEN MATCHED AND {cond} THEN DELETE"))
            .unwrap_or_default();
        format!(
            "MERGE INTO {dt} AS d USING {st} AS s ON {on}{delete} WHEN MATCHED THEN UPDATE SET {set} WHEN NOT MATCHED THEN INSERT ({c}) VALUES ({sc})",
            dt = qualified(dataset, &t.name),
            st = qualified(staging, &t.name),
            c = col_list(&cols, ""),
            sc = col_list(&cols, "s.")
        )
    };
    out.push(merge(root, &on, hard_delete_condition(root, "s.")));
    let root_id = quote(row_key(root, "row_key", "_dlt_id"));
    let sroot = qualified(staging, &root.name);
    for t in &chain[1..] {
        let id = quote(row_key(t, "row_key", "_dlt_id"));
        let rk = quote(row_key(t, "root_key", "_dlt_root_id"));
        out.push(merge(t, &format!("d.{id} = s.{id}"), None));
        // rows of re-sent roots that are no longer in their lists
        out.push(format!(
            "DELETE FROM {dt} WHERE {rk} IN (SELECT {root_id} FROM {sroot}) AND {id} NOT IN (SELECT {id} FROM {st})",
            dt = qualified(dataset, &t.name),
            st = qualified(staging, &t.name)
        ));
        if let Some(cond) = hard_delete_condition(root, "") {
            out.push(format!(
                "DELETE FROM {dt} WHERE {rk} IN (SELECT {root_id} FROM {sroot} WHERE {cond})",
                dt = qualified(dataset, &t.name)
            ));
        }
    }
    out
}

/// Merge with `insert-only`: insert rows whose key is new.
pub fn insert_only(dataset: &str, staging: &str, chain: &[&Table]) -> Vec<String> {
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
        dt = qualified(dataset, &root.name),
        st = qualified(staging, &root.name),
        c = col_list(&cols, ""),
        sc = col_list(&cols, "s.")
    )];
    for t in &chain[1..] {
        let cols = complete_columns(t);
        let id = quote(row_key(t, "row_key", "_dlt_id"));
        out.push(format!(
            "INSERT INTO {dt} ({c}) SELECT {c} FROM {st} WHERE {id} NOT IN (SELECT {id} FROM {dt})",
            dt = qualified(dataset, &t.name),
            st = qualified(staging, &t.name),
            c = col_list(&cols, "")
        ));
    }
    out
}

/// Merge with `scd2` (spec g.5). `boundary` is a timestamp literal.
pub fn scd2(dataset: &str, staging: &str, chain: &[&Table], boundary: &str) -> Vec<String> {
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
        .and_then(serde_json::Value::as_str)
        .map(String::from);
    let active = match &active_ts {
        Some(ts) => format!("{} = {}::TIMESTAMPTZ", quote(to), literal(ts)),
        None => format!("{} IS NULL", quote(to)),
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
    let d = qualified(dataset, &root.name);
    let s = qualified(staging, &root.name);
    let mk = root.columns_with_hint("merge_key");
    let mut retire = format!(
        "UPDATE {d} SET {to} = {boundary} WHERE {active} AND {h} NOT IN (SELECT {h} FROM {s})",
        to = quote(to),
        h = quote(hash)
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
        "INSERT INTO {d} ({c}, {f}, {t}) SELECT {c}, {boundary}, {active_value} FROM {s} WHERE {h} NOT IN (SELECT {h} FROM {d} WHERE {active})",
        c = col_list(&cols, ""),
        f = quote(from),
        t = quote(to),
        h = quote(hash)
    );
    let mut out = vec![retire, insert];
    for t in &chain[1..] {
        let cols = complete_columns(t);
        let id = quote(row_key(t, "row_key", "_dlt_id"));
        out.push(format!(
            "INSERT INTO {dt} ({c}) SELECT {c} FROM {st} WHERE {id} NOT IN (SELECT {id} FROM {dt})",
            dt = qualified(dataset, &t.name),
            st = qualified(staging, &t.name),
            c = col_list(&cols, "")
        ));
    }
    out
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

#[cfg(test)]
mod tests {
    use super::*;

    fn child_table() -> Table {
        let mut t = Table {
            name: "issues__labels".into(),
            parent: Some("issues".into()),
            ..Default::default()
        };
        let mut name = Column::new("name", DataType::Text);
        name.nullable = Some(true);
        let mut parent = Column::new("_dlt_parent_id", DataType::Text);
        parent.nullable = Some(false);
        parent.parent_key = Some(true);
        let mut id = Column::new("_dlt_id", DataType::Text);
        id.nullable = Some(false);
        id.row_key = Some(true);
        for c in [name, parent, id] {
            t.columns.insert(c.name.clone(), c);
        }
        t
    }

    /// DuckDB keeps the compression of each column in the table's DDL: the keys are zstd,
    /// other text is left to DuckDB's analysis, also for a key added by ALTER TABLE.
    #[test]
    fn row_parent_and_root_keys_are_stored_with_zstd() {
        let con = duckdb::Connection::open_in_memory().expect("open");
        con.execute_batch("CREATE SCHEMA \"ds\"").expect("schema");
        let t = child_table();
        con.execute_batch(&create_table("ds", &t)).expect("create");
        let mut root = Column::new("_dlt_root_id", DataType::Text);
        root.root_key = Some(true);
        con.execute_batch(&add_column("ds", &t.name, &root))
            .expect("add");
        let ddl: String = con
            .query_row(
                "SELECT sql FROM duckdb_tables() WHERE table_name = 'issues__labels'",
                [],
                |r| r.get(0),
            )
            .expect("ddl");
        for key in ["_dlt_parent_id", "_dlt_id", "_dlt_root_id"] {
            assert!(
                ddl.contains(&format!("{key} VARCHAR USING COMPRESSION ZSTD")),
                "{key} in {ddl}"
            );
        }
        assert!(ddl.contains("\"name\" VARCHAR,"), "{ddl}");
    }
}
