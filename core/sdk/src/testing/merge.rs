//! `merge` with each strategy (spec g.3 delete-insert, g.4 upsert and insert-only, g.5 scd2),
//! as dlt 1.31 loads it.

use serde_json::{json, Value};

use super::kit::{created_at, hint, load, merge_root, nested, primary_key, schema, Ctx, Package};
use crate::schema::{Column, DataType, MergeStrategy, Schema, Table};
use crate::Result;

const L1: &str = "1700000001.000001";
const L2: &str = "1700000002.000001";
const L3: &str = "1700000003.000001";

fn items(strategy: MergeStrategy) -> Table {
    merge_root(
        "items",
        strategy,
        &[("id", DataType::Bigint), ("name", DataType::Text)],
    )
}

fn item(id: i64, name: &str) -> Value {
    json!({"id": id, "name": name})
}

/// The rows of a package, per table.
type Tables<'a> = Vec<(&'a str, Vec<Value>)>;

fn load_all(
    ctx: &Ctx<'_>,
    s: &Schema,
    packages: Vec<(&str, Tables<'_>)>,
) -> Result<Box<dyn crate::DestinationClient>> {
    let mut client = ctx.client()?;
    for (id, tables) in packages {
        let p = Package::new(s, id, &tables)?;
        load(client.as_mut(), s, &p)?;
    }
    Ok(client)
}

/// Merge without a primary or merge key appends (golden `merge_no_keys`).
pub fn no_keys(ctx: &mut Ctx<'_>) -> Result<()> {
    let s = schema("merge_no_keys", 1, vec![items(MergeStrategy::DeleteInsert)]);
    let rows = || vec![item(1, "a"), item(2, "b")];
    let mut client = load_all(
        ctx,
        &s,
        vec![(L1, vec![("items", rows())]), (L2, vec![("items", rows())])],
    )?;
    ctx.expect_rows(
        client.as_mut(),
        "merge without keys keeps every row",
        &format!("SELECT id, name, _dlt_load_id FROM {}", ctx.table("items")),
        &[
            "1 | a | 1700000001.000001",
            "1 | a | 1700000002.000001",
            "2 | b | 1700000001.000001",
            "2 | b | 1700000002.000001",
        ],
    )
}

/// delete-insert on a primary key: a key in the package replaces the stored row; repeated
/// keys of one package are deduplicated to one row (which one is arbitrary in dlt without
/// `dedup_sort`); other keys are untouched.
pub fn delete_insert_primary_key(ctx: &mut Ctx<'_>) -> Result<()> {
    let mut t = items(MergeStrategy::DeleteInsert);
    primary_key(&mut t, &["id"]);
    let s = schema("merge_delete_insert_pk", 1, vec![t]);
    let mut client = load_all(
        ctx,
        &s,
        vec![
            (L1, vec![("items", vec![item(1, "a"), item(2, "b")])]),
            (
                L2,
                vec![("items", vec![item(2, "b2"), item(3, "c"), item(3, "c_dup")])],
            ),
        ],
    )?;
    ctx.expect_rows(
        client.as_mut(),
        "one row per key",
        &format!(
            "SELECT id, count(*) FROM {} GROUP BY id",
            ctx.table("items")
        ),
        &["1 | 1", "2 | 1", "3 | 1"],
    )?;
    ctx.expect_rows(
        client.as_mut(),
        "rows of keys loaded once",
        &format!(
            "SELECT id, name, _dlt_load_id FROM {} WHERE id < 3",
            ctx.table("items")
        ),
        &["1 | a | 1700000001.000001", "2 | b2 | 1700000002.000001"],
    )?;
    ctx.expect_rows(
        client.as_mut(),
        "the row kept of a repeated key is one of the package's",
        &format!(
            "SELECT count(*) FROM {} WHERE id = 3 AND name IN ('c', 'c_dup')",
            ctx.table("items")
        ),
        &["1"],
    )
}

/// `dedup_sort`: `desc` keeps the row with the highest value of the column, `asc` the lowest.
pub fn delete_insert_dedup_sort(ctx: &mut Ctx<'_>) -> Result<()> {
    let table = |name: &str, order: &str| {
        let mut t = merge_root(
            name,
            MergeStrategy::DeleteInsert,
            &[
                ("id", DataType::Bigint),
                ("seq", DataType::Bigint),
                ("name", DataType::Text),
            ],
        );
        primary_key(&mut t, &["id"]);
        hint(&mut t, "seq", |c| c.dedup_sort = Some(order.into()));
        t
    };
    let s = schema(
        "merge_dedup_sort",
        1,
        vec![table("items_desc", "desc"), table("items_asc", "asc")],
    );
    let rows = || {
        vec![
            json!({"id": 1, "seq": 1, "name": "x"}),
            json!({"id": 1, "seq": 3, "name": "z"}),
            json!({"id": 1, "seq": 2, "name": "y"}),
            json!({"id": 2, "seq": 5, "name": "only"}),
        ]
    };
    let mut client = load_all(
        ctx,
        &s,
        vec![
            (
                L1,
                vec![(
                    "items_desc",
                    vec![json!({"id": 1, "seq": 0, "name": "old"})],
                )],
            ),
            (L2, vec![("items_desc", rows()), ("items_asc", rows())]),
        ],
    )?;
    ctx.expect_rows(
        client.as_mut(),
        "dedup_sort desc keeps the highest",
        &format!("SELECT id, seq, name FROM {}", ctx.table("items_desc")),
        &["1 | 3 | z", "2 | 5 | only"],
    )?;
    ctx.expect_rows(
        client.as_mut(),
        "dedup_sort asc keeps the lowest",
        &format!("SELECT id, seq, name FROM {}", ctx.table("items_asc")),
        &["1 | 1 | x", "2 | 5 | only"],
    )
}

/// `hard_delete`: a boolean column deletes on TRUE (NULL and FALSE keep), any other type on
/// NOT NULL; a deleted row of an unknown key is dropped (golden `merge_hard_delete`).
pub fn delete_insert_hard_delete(ctx: &mut Ctx<'_>) -> Result<()> {
    let mut flagged = merge_root(
        "flagged",
        MergeStrategy::DeleteInsert,
        &[
            ("id", DataType::Bigint),
            ("name", DataType::Text),
            ("deleted", DataType::Bool),
        ],
    );
    primary_key(&mut flagged, &["id"]);
    hint(&mut flagged, "deleted", |c| c.hard_delete = Some(true));
    let mut stamped = merge_root(
        "stamped",
        MergeStrategy::DeleteInsert,
        &[("id", DataType::Bigint), ("deleted_at", DataType::Text)],
    );
    primary_key(&mut stamped, &["id"]);
    hint(&mut stamped, "deleted_at", |c| c.hard_delete = Some(true));
    let s = schema("merge_hard_delete", 1, vec![flagged, stamped]);
    let mut client = load_all(
        ctx,
        &s,
        vec![
            (
                L1,
                vec![
                    ("flagged", vec![item(1, "a"), item(2, "b"), item(3, "c")]),
                    ("stamped", vec![json!({"id": 1}), json!({"id": 2})]),
                ],
            ),
            (
                L2,
                vec![
                    (
                        "flagged",
                        vec![
                            json!({"id": 2, "deleted": true}),
                            json!({"id": 3, "name": "c2", "deleted": false}),
                            json!({"id": 4, "name": "d", "deleted": true}),
                            json!({"id": 5, "name": "e", "deleted": null}),
                        ],
                    ),
                    (
                        "stamped",
                        vec![
                            json!({"id": 1, "deleted_at": "2024-01-01"}),
                            json!({"id": 3}),
                        ],
                    ),
                ],
            ),
        ],
    )?;
    ctx.expect_rows(
        client.as_mut(),
        "a boolean hard_delete column",
        &format!("SELECT id, name FROM {}", ctx.table("flagged")),
        &["1 | a", "3 | c2", "5 | e"],
    )?;
    ctx.expect_rows(
        client.as_mut(),
        "a text hard_delete column",
        &format!("SELECT id FROM {}", ctx.table("stamped")),
        &["2", "3"],
    )
}

/// A merge key without a primary key replaces whole partitions: every stored row of a key in
/// the package goes, every staged row is inserted (golden `merge_key_partition`).
pub fn delete_insert_merge_key(ctx: &mut Ctx<'_>) -> Result<()> {
    let mut t = merge_root(
        "events",
        MergeStrategy::DeleteInsert,
        &[("day", DataType::Text), ("n", DataType::Bigint)],
    );
    hint(&mut t, "day", |c| {
        c.merge_key = Some(true);
        c.nullable = Some(false);
    });
    let s = schema("merge_key", 1, vec![t]);
    let e = |day: &str, n: i64| json!({"day": day, "n": n});
    let mut client = load_all(
        ctx,
        &s,
        vec![
            (
                L1,
                vec![("events", vec![e("d1", 1), e("d1", 2), e("d2", 3)])],
            ),
            (
                L2,
                vec![("events", vec![e("d2", 4), e("d2", 5), e("d2", 5)])],
            ),
        ],
    )?;
    ctx.expect_rows(
        client.as_mut(),
        "partitions of the package replaced, others untouched",
        &format!("SELECT day, n FROM {}", ctx.table("events")),
        &["d1 | 1", "d1 | 2", "d2 | 4", "d2 | 5", "d2 | 5"],
    )
}

fn orders_schema(check: &str, strategy: MergeStrategy, deleted: bool) -> Schema {
    let mut cols = vec![("id", DataType::Bigint)];
    if deleted {
        cols.push(("deleted", DataType::Bool));
    }
    let mut root = merge_root("orders", strategy, &cols);
    primary_key(&mut root, &["id"]);
    if deleted {
        hint(&mut root, "deleted", |c| c.hard_delete = Some(true));
    }
    schema(
        check,
        1,
        vec![
            root,
            nested("orders__lines", "orders", &[("sku", DataType::Text)], true),
        ],
    )
}

fn line(root: &str, idx: i64, sku: &str, id: &str) -> Value {
    json!({"sku": sku, "_dlt_root_id": root, "_dlt_parent_id": root, "_dlt_list_idx": idx, "_dlt_id": id})
}

/// delete-insert with a nested table: the nested rows of a key in the package are replaced
/// with the package's, those of other keys untouched.
pub fn delete_insert_nested(ctx: &mut Ctx<'_>) -> Result<()> {
    let s = orders_schema(
        "merge_delete_insert_nested",
        MergeStrategy::DeleteInsert,
        false,
    );
    let mut client = load_all(
        ctx,
        &s,
        vec![
            (
                L1,
                vec![
                    (
                        "orders",
                        vec![
                            json!({"id": 1, "_dlt_id": "o1"}),
                            json!({"id": 2, "_dlt_id": "o2"}),
                        ],
                    ),
                    (
                        "orders__lines",
                        vec![
                            line("o1", 0, "a", "l1"),
                            line("o1", 1, "b", "l2"),
                            line("o2", 0, "c", "l3"),
                        ],
                    ),
                ],
            ),
            (
                L2,
                vec![
                    ("orders", vec![json!({"id": 1, "_dlt_id": "o1b"})]),
                    ("orders__lines", vec![line("o1b", 0, "z", "l4")]),
                ],
            ),
        ],
    )?;
    ctx.expect_rows(
        client.as_mut(),
        "root rows",
        &format!("SELECT id, _dlt_id FROM {}", ctx.table("orders")),
        &["1 | o1b", "2 | o2"],
    )?;
    ctx.expect_rows(
        client.as_mut(),
        "nested rows of a merged key are replaced",
        &format!(
            "SELECT o.id, l.sku, l._dlt_list_idx FROM {} AS l JOIN {} AS o ON o._dlt_id = l._dlt_root_id",
            ctx.table("orders__lines"),
            ctx.table("orders")
        ),
        &["1 | z | 0", "2 | c | 0"],
    )?;
    ctx.expect_rows(
        client.as_mut(),
        "no orphaned nested rows",
        &format!("SELECT count(*) FROM {}", ctx.table("orders__lines")),
        &["2"],
    )
}

/// upsert: stored rows of keys in the package are updated in place, new keys inserted
/// (spec g.4; `_dlt_id` is the key's hash, so stable per key).
pub fn upsert(ctx: &mut Ctx<'_>) -> Result<()> {
    let mut t = items(MergeStrategy::Upsert);
    primary_key(&mut t, &["id"]);
    let s = schema("merge_upsert", 1, vec![t]);
    let k = |id: i64, name: &str| json!({"id": id, "name": name, "_dlt_id": format!("k{id}")});
    let mut client = load_all(
        ctx,
        &s,
        vec![
            (L1, vec![("items", vec![k(1, "a"), k(2, "b")])]),
            (L2, vec![("items", vec![k(2, "b2"), k(3, "c")])]),
        ],
    )?;
    ctx.expect_rows(
        client.as_mut(),
        "upserted rows",
        &format!(
            "SELECT id, name, _dlt_id, _dlt_load_id FROM {}",
            ctx.table("items")
        ),
        &[
            "1 | a | k1 | 1700000001.000001",
            "2 | b2 | k2 | 1700000002.000001",
            "3 | c | k3 | 1700000002.000001",
        ],
    )
}

/// upsert with `hard_delete`: a stored key flagged deleted is deleted; a new key flagged
/// deleted is inserted, as dlt 1.31 does (spec g.4, m.8).
pub fn upsert_hard_delete(ctx: &mut Ctx<'_>) -> Result<()> {
    let mut t = merge_root(
        "items",
        MergeStrategy::Upsert,
        &[
            ("id", DataType::Bigint),
            ("name", DataType::Text),
            ("deleted", DataType::Bool),
        ],
    );
    primary_key(&mut t, &["id"]);
    hint(&mut t, "deleted", |c| c.hard_delete = Some(true));
    let s = schema("merge_upsert_hard_delete", 1, vec![t]);
    let k = |v: Value| {
        let mut v = v;
        let id = v["id"].as_i64().unwrap_or_default();
        v["_dlt_id"] = json!(format!("k{id}"));
        v
    };
    let mut client = load_all(
        ctx,
        &s,
        vec![
            (
                L1,
                vec![(
                    "items",
                    vec![k(item(1, "a")), k(item(2, "b")), k(item(3, "c"))],
                )],
            ),
            (
                L2,
                vec![(
                    "items",
                    vec![
                        k(json!({"id": 1, "deleted": true})),
                        k(json!({"id": 2, "name": "b2", "deleted": false})),
                        k(json!({"id": 9, "name": "x", "deleted": true})),
                    ],
                )],
            ),
        ],
    )?;
    // dlt's MERGE inserts the tombstone of a key it never saw (9); a destination without
    // transactions, whose statements must give the same rows when repeated after a cut,
    // cannot tell it from a key its first attempt deleted, and inserts no tombstone
    let expected: &[&str] = if ctx.destination.capabilities().supports_transactions {
        &["2 | b2", "3 | c", "9 | x"]
    } else {
        &["2 | b2", "3 | c"]
    };
    ctx.expect_rows(
        client.as_mut(),
        "upsert with hard deletes",
        &format!("SELECT id, name FROM {}", ctx.table("items")),
        expected,
    )
}

/// upsert with a nested table (nested `_dlt_id` = hash of parent, table and position): a
/// list that shrank loses its tail, a changed element is updated in place (golden
/// `merge_upsert`), and a hard-deleted root loses its nested rows.
pub fn upsert_nested(ctx: &mut Ctx<'_>) -> Result<()> {
    let s = orders_schema("merge_upsert_nested", MergeStrategy::Upsert, true);
    let order = |id: i64| json!({"id": id, "_dlt_id": format!("k{id}")});
    let l =
        |id: i64, idx: i64, sku: &str| line(&format!("k{id}"), idx, sku, &format!("k{id}_{idx}"));
    let mut client = load_all(
        ctx,
        &s,
        vec![
            (
                L1,
                vec![
                    ("orders", vec![order(1), order(2), order(3)]),
                    (
                        "orders__lines",
                        vec![l(1, 0, "x"), l(1, 1, "y"), l(2, 0, "w"), l(3, 0, "v")],
                    ),
                ],
            ),
            (
                L2,
                vec![
                    ("orders", vec![order(1)]),
                    ("orders__lines", vec![l(1, 0, "z")]),
                ],
            ),
            (
                L3,
                vec![(
                    "orders",
                    vec![json!({"id": 2, "deleted": true, "_dlt_id": "k2"})],
                )],
            ),
        ],
    )?;
    ctx.expect_rows(
        client.as_mut(),
        "root rows",
        &format!("SELECT id FROM {}", ctx.table("orders")),
        &["1", "3"],
    )?;
    ctx.expect_rows(
        client.as_mut(),
        "nested rows",
        &format!(
            "SELECT _dlt_id, sku, _dlt_root_id FROM {}",
            ctx.table("orders__lines")
        ),
        &["k1_0 | z | k1", "k3_0 | v | k3"],
    )
}

/// insert-only: only rows of new keys are inserted.
pub fn insert_only(ctx: &mut Ctx<'_>) -> Result<()> {
    let mut t = items(MergeStrategy::InsertOnly);
    primary_key(&mut t, &["id"]);
    let s = schema("merge_insert_only", 1, vec![t]);
    let k = |id: i64, name: &str| json!({"id": id, "name": name, "_dlt_id": format!("k{id}")});
    let mut client = load_all(
        ctx,
        &s,
        vec![
            (L1, vec![("items", vec![k(1, "a")])]),
            (L2, vec![("items", vec![k(1, "a2"), k(2, "b")])]),
        ],
    )?;
    ctx.expect_rows(
        client.as_mut(),
        "insert-only keeps stored keys",
        &format!("SELECT id, name FROM {}", ctx.table("items")),
        &["1 | a", "2 | b"],
    )
}

/// The scd2 root table as the engine declares it: validity columns and `_dlt_id` as the row
/// version (not unique, not a row key).
fn scd2_schema(check: &str, merge_key: bool) -> Schema {
    let mut t = merge_root(
        "dim",
        MergeStrategy::Scd2,
        &[("id", DataType::Bigint), ("v", DataType::Text)],
    );
    let mut vf = Column::new("_dlt_valid_from", DataType::Timestamp);
    vf.extra.insert("x-valid-from".into(), json!(true));
    let mut vt = Column::new("_dlt_valid_to", DataType::Timestamp);
    vt.extra.insert("x-valid-to".into(), json!(true));
    vt.extra
        .insert("x-active-record-timestamp".into(), Value::Null);
    t.columns.insert(vf.name.clone(), vf);
    t.columns.insert(vt.name.clone(), vt);
    hint(&mut t, "_dlt_id", |c| {
        c.unique = Some(false);
        c.row_key = Some(false);
        c.extra.insert("x-row-version".into(), json!(true));
    });
    if merge_key {
        hint(&mut t, "id", |c| {
            c.merge_key = Some(true);
            c.nullable = Some(false);
        });
    }
    schema(check, 1, vec![t])
}

fn version(id: i64, v: &str) -> Value {
    json!({"id": id, "v": v, "_dlt_id": format!("h{id}{v}")})
}

/// `_dlt_valid_from` / `_dlt_valid_to` named by the package that set them (`L1`, `L2`:
/// their `created_at`, the boundary timestamp), `active` for NULL.
fn validity_sql(ctx: &Ctx<'_>) -> String {
    let at = |col: &str| {
        format!(
            "CASE WHEN {col} IS NULL THEN 'active' WHEN {col} = CAST('{}' AS TIMESTAMP WITH TIME ZONE) THEN 'L1' WHEN {col} = CAST('{}' AS TIMESTAMP WITH TIME ZONE) THEN 'L2' ELSE 'other' END",
            created_at(L1),
            created_at(L2)
        )
    };
    format!(
        "SELECT id, v, {}, {} FROM {}",
        at("_dlt_valid_from"),
        at("_dlt_valid_to"),
        ctx.table("dim")
    )
}

/// scd2 without a merge key: each package is a full snapshot; a changed row is retired at the
/// package's boundary and its new version inserted, a missing row retired, an unchanged one
/// kept (golden `scd2`).
pub fn scd2(ctx: &mut Ctx<'_>) -> Result<()> {
    let s = scd2_schema("merge_scd2", false);
    let mut client = load_all(
        ctx,
        &s,
        vec![
            (
                L1,
                vec![(
                    "dim",
                    vec![version(1, "a"), version(2, "b"), version(3, "c")],
                )],
            ),
            (L2, vec![("dim", vec![version(1, "a2"), version(3, "c")])]),
        ],
    )?;
    ctx.expect_rows(
        client.as_mut(),
        "scd2 validity ranges",
        &validity_sql(ctx),
        &[
            "1 | a | L1 | L2",
            "1 | a2 | L2 | active",
            "2 | b | L1 | L2",
            "3 | c | L1 | active",
        ],
    )
}

/// scd2 with a merge key: only records whose key is in the package can be retired.
pub fn scd2_merge_key(ctx: &mut Ctx<'_>) -> Result<()> {
    let s = scd2_schema("merge_scd2_merge_key", true);
    let mut client = load_all(
        ctx,
        &s,
        vec![
            (L1, vec![("dim", vec![version(1, "a"), version(2, "b")])]),
            (L2, vec![("dim", vec![version(1, "a2")])]),
        ],
    )?;
    ctx.expect_rows(
        client.as_mut(),
        "scd2 validity ranges with a merge key",
        &validity_sql(ctx),
        &[
            "1 | a | L1 | L2",
            "1 | a2 | L2 | active",
            "2 | b | L1 | active",
        ],
    )
}
