//! `append` and `replace` (spec g.1, g.2), and what every package does: `is_load_completed`
//! before and after, the rows each job reports, `_dlt_load_id` and `_dlt_loads`.

use serde_json::{json, Value};

use super::fail;
use super::kit::{load, nested, primary_key, root, schema, Ctx, Package};
use crate::schema::{DataType, Schema, WriteDisposition};
use crate::Result;

/// A package of three rows: not completed before `complete_load` (also asked in the middle of
/// the load, as the engine may), completed after, by this client and a new one; its job
/// reports three rows.
pub fn completion(ctx: &mut Ctx<'_>) -> Result<()> {
    let s = super::sample_schema("conformance");
    let id = "1700000001.000001";
    let mut client = ctx.client()?;
    super::kit::store_schema(client.as_mut(), &s)?;
    if client.is_load_completed(id)? {
        return Err(fail(
            "is_load_completed is true before the package was loaded",
        ));
    }
    let p = Package {
        jobs: vec![super::kit::Job {
            table: "items".into(),
            batches: vec![super::sample_items(&[1, 2, 3], id)?],
            fail_after: None,
        }],
        ..Package::new(&s, id, &[])?
    };
    let rows = super::kit::start_and_write(client.as_mut(), &s, &p)?;
    if rows != 3 {
        return Err(fail(format!(
            "the job reported {rows} rows written, expected 3"
        )));
    }
    ctx.rows_written = rows;
    if client.is_load_completed(id)? {
        return Err(fail("the load is completed before complete_load"));
    }
    // asked in the middle of the load, the question must not end it: the engine may ask it
    // before a retry, and a destination that commits or rolls back here would lose the jobs
    client
        .complete_load(
            id,
            &crate::destination::LoadCompletion {
                schema_name: s.name.clone(),
                schema_version_hash: s.version_hash.clone(),
                inserted_at: super::kit::created_at(id),
                ..Default::default()
            },
        )
        .map_err(|e| {
            fail(format!(
                "complete_load after is_load_completed was asked mid-load: {}",
                e.message
            ))
        })?;
    if !client.is_load_completed(id)? {
        return Err(fail("the load is not completed after complete_load"));
    }
    drop(client);
    let mut client = ctx.client()?;
    if !client.is_load_completed(id)? {
        return Err(fail("a new client does not see the completed load"));
    }
    if client.is_load_completed("1700000009.000001")? {
        return Err(fail("a load id never loaded is completed"));
    }
    if ctx.destination.capabilities().supports_query {
        ctx.expect_rows(
            client.as_mut(),
            "the rows of the package",
            &format!("SELECT id, name, _dlt_load_id FROM {}", ctx.table("items")),
            &[
                "1 | item 1 | 1700000001.000001",
                "2 | item 2 | 1700000001.000001",
                "3 | item 3 | 1700000001.000001",
            ],
        )?;
    }
    Ok(())
}

fn items_schema(check: &str, version: u64, disposition: WriteDisposition) -> Schema {
    let mut items = root(
        "items",
        disposition,
        &[("id", DataType::Bigint), ("name", DataType::Text)],
    );
    if disposition == WriteDisposition::Append {
        // a primary key alone does not deduplicate appended rows (golden append_twice)
        primary_key(&mut items, &["id"]);
    }
    schema(check, version, vec![items])
}

fn item(id: i64, name: &str) -> Value {
    json!({"id": id, "name": name})
}

/// Two packages append all their rows, a repeated primary key included (golden
/// `append_twice`); each row carries its package's `_dlt_load_id`.
pub fn append(ctx: &mut Ctx<'_>) -> Result<()> {
    let s = items_schema("append", 1, WriteDisposition::Append);
    let mut client = ctx.client()?;
    let p = Package::new(
        &s,
        "1700000001.000001",
        &[("items", vec![item(1, "a"), item(2, "b"), item(3, "c")])],
    )?;
    load(client.as_mut(), &s, &p)?;
    let p = Package::new(
        &s,
        "1700000002.000001",
        &[("items", vec![item(3, "c2"), item(4, "d")])],
    )?;
    load(client.as_mut(), &s, &p)?;
    ctx.expect_rows(
        client.as_mut(),
        "append keeps every row of both packages",
        &format!("SELECT id, name, _dlt_load_id FROM {}", ctx.table("items")),
        &[
            "1 | a | 1700000001.000001",
            "2 | b | 1700000001.000001",
            "3 | c | 1700000001.000001",
            "3 | c2 | 1700000002.000001",
            "4 | d | 1700000002.000001",
        ],
    )?;
    ctx.expect_rows(
        client.as_mut(),
        "_dlt_loads",
        &format!(
            "SELECT load_id, schema_name, status, schema_version_hash FROM {}",
            ctx.table("_dlt_loads")
        ),
        &[
            "1700000001.000001 | conformance | 0 | append-v1",
            "1700000002.000001 | conformance | 0 | append-v1",
        ],
    )
}

/// Nested tables of an appended root: every level, with parent ids and list positions.
pub fn append_nested(ctx: &mut Ctx<'_>) -> Result<()> {
    let s = schema(
        "append_nested",
        1,
        vec![
            root(
                "docs",
                WriteDisposition::Append,
                &[("id", DataType::Bigint)],
            ),
            nested("docs__tags", "docs", &[("value", DataType::Text)], false),
            nested(
                "docs__tags__notes",
                "docs__tags",
                &[("note", DataType::Text)],
                false,
            ),
        ],
    );
    let mut client = ctx.client()?;
    let p = Package::new(
        &s,
        "1700000001.000001",
        &[
            (
                "docs",
                vec![
                    json!({"id": 1, "_dlt_id": "d1"}),
                    json!({"id": 2, "_dlt_id": "d2"}),
                ],
            ),
            (
                "docs__tags",
                vec![
                    json!({"value": "x", "_dlt_parent_id": "d1", "_dlt_list_idx": 0, "_dlt_id": "t1"}),
                    json!({"value": "y", "_dlt_parent_id": "d1", "_dlt_list_idx": 1, "_dlt_id": "t2"}),
                    json!({"value": "z", "_dlt_parent_id": "d2", "_dlt_list_idx": 0, "_dlt_id": "t3"}),
                ],
            ),
            (
                "docs__tags__notes",
                vec![
                    json!({"note": "n", "_dlt_parent_id": "t2", "_dlt_list_idx": 0, "_dlt_id": "n1"}),
                ],
            ),
        ],
    )?;
    load(client.as_mut(), &s, &p)?;
    ctx.expect_rows(
        client.as_mut(),
        "root rows",
        &format!(
            "SELECT id, _dlt_id, _dlt_load_id FROM {}",
            ctx.table("docs")
        ),
        &["1 | d1 | 1700000001.000001", "2 | d2 | 1700000001.000001"],
    )?;
    ctx.expect_rows(
        client.as_mut(),
        "nested rows",
        &format!(
            "SELECT p.id, c.value, c._dlt_list_idx FROM {} AS c JOIN {} AS p ON p._dlt_id = c._dlt_parent_id",
            ctx.table("docs__tags"),
            ctx.table("docs")
        ),
        &["1 | x | 0", "1 | y | 1", "2 | z | 0"],
    )?;
    ctx.expect_rows(
        client.as_mut(),
        "second-level nested rows",
        &format!(
            "SELECT t.value, n.note, n._dlt_list_idx FROM {} AS n JOIN {} AS t ON t._dlt_id = n._dlt_parent_id",
            ctx.table("docs__tags__notes"),
            ctx.table("docs__tags")
        ),
        &["y | n | 0"],
    )
}

fn replace_schema(check: &str) -> Schema {
    schema(
        check,
        1,
        vec![
            root(
                "items",
                WriteDisposition::Replace,
                &[("id", DataType::Bigint), ("name", DataType::Text)],
            ),
            nested("items__tags", "items", &[("value", DataType::Text)], false),
            root(
                "other",
                WriteDisposition::Append,
                &[("id", DataType::Bigint)],
            ),
        ],
    )
}

/// Each replace package leaves exactly its rows; an append table in the same packages keeps
/// all of them.
pub fn replace(ctx: &mut Ctx<'_>) -> Result<()> {
    let s = replace_schema("replace");
    let mut client = ctx.client()?;
    for (n, ids) in [(1, vec![1, 2, 3]), (2, vec![3, 4])] {
        let p = Package::new(
            &s,
            &format!("170000000{n}.000001"),
            &[
                (
                    "items",
                    ids.iter().map(|i| item(*i, &format!("v{n}"))).collect(),
                ),
                ("other", vec![json!({"id": n})]),
            ],
        )?;
        load(client.as_mut(), &s, &p)?;
    }
    ctx.expect_rows(
        client.as_mut(),
        "replace leaves the rows of the last package",
        &format!("SELECT id, name, _dlt_load_id FROM {}", ctx.table("items")),
        &["3 | v2 | 1700000002.000001", "4 | v2 | 1700000002.000001"],
    )?;
    ctx.expect_rows(
        client.as_mut(),
        "an append table loaded with the replace",
        &format!("SELECT id FROM {}", ctx.table("other")),
        &["1", "2"],
    )
}

/// Replace empties the nested tables too, also when the new rows have no nested rows
/// (golden `replace_twice`).
pub fn replace_nested(ctx: &mut Ctx<'_>) -> Result<()> {
    let s = replace_schema("replace_nested");
    let mut client = ctx.client()?;
    let p = Package::new(
        &s,
        "1700000001.000001",
        &[
            (
                "items",
                vec![
                    json!({"id": 1, "name": "a", "_dlt_id": "i1"}),
                    json!({"id": 2, "name": "b", "_dlt_id": "i2"}),
                ],
            ),
            (
                "items__tags",
                vec![
                    json!({"value": "x", "_dlt_parent_id": "i1", "_dlt_list_idx": 0}),
                    json!({"value": "y", "_dlt_parent_id": "i2", "_dlt_list_idx": 0}),
                ],
            ),
        ],
    )?;
    load(client.as_mut(), &s, &p)?;
    let p = Package::new(
        &s,
        "1700000002.000001",
        &[
            (
                "items",
                vec![json!({"id": 3, "name": "c", "_dlt_id": "i3"})],
            ),
            (
                "items__tags",
                vec![json!({"value": "z", "_dlt_parent_id": "i3", "_dlt_list_idx": 0})],
            ),
        ],
    )?;
    load(client.as_mut(), &s, &p)?;
    ctx.expect_rows(
        client.as_mut(),
        "nested rows after the second replace",
        &format!(
            "SELECT value, _dlt_parent_id FROM {}",
            ctx.table("items__tags")
        ),
        &["z | i3"],
    )?;
    // a package with root rows and no nested rows
    let p = Package::new(
        &s,
        "1700000003.000001",
        &[(
            "items",
            vec![json!({"id": 4, "name": "d", "_dlt_id": "i4"})],
        )],
    )?;
    load(client.as_mut(), &s, &p)?;
    ctx.expect_rows(
        client.as_mut(),
        "root rows after a replace without nested rows",
        &format!("SELECT id FROM {}", ctx.table("items")),
        &["4"],
    )?;
    ctx.expect_rows(
        client.as_mut(),
        "a replace without nested rows empties the nested table",
        &format!("SELECT count(*) FROM {}", ctx.table("items__tags")),
        &["0"],
    )
}

/// A replace that produced no rows (the engine lists the table in `root_tables` with no job)
/// still empties the table and its nested tables.
pub fn replace_without_rows(ctx: &mut Ctx<'_>) -> Result<()> {
    let s = replace_schema("replace_without_rows");
    let mut client = ctx.client()?;
    let p = Package::new(
        &s,
        "1700000001.000001",
        &[
            (
                "items",
                vec![json!({"id": 1, "name": "a", "_dlt_id": "i1"})],
            ),
            (
                "items__tags",
                vec![json!({"value": "x", "_dlt_parent_id": "i1", "_dlt_list_idx": 0})],
            ),
        ],
    )?;
    load(client.as_mut(), &s, &p)?;
    let mut p = Package::new(
        &s,
        "1700000002.000001",
        &[("other", vec![json!({"id": 1})])],
    )?;
    p.empty_roots = vec!["items".into()];
    load(client.as_mut(), &s, &p)?;
    ctx.expect_rows(
        client.as_mut(),
        "a replace without rows empties the table",
        &format!(
            "SELECT 'items', count(*) FROM {} UNION ALL SELECT 'items__tags', count(*) FROM {}",
            ctx.table("items"),
            ctx.table("items__tags")
        ),
        &["items | 0", "items__tags | 0"],
    )?;
    ctx.expect_rows(
        client.as_mut(),
        "the append table of the same package",
        &format!("SELECT id FROM {}", ctx.table("other")),
        &["1"],
    )
}
