//! Schema evolution (spec d.3): a new column, a new table, a variant column, each in a new
//! schema version stored before the package that brings the data.

use serde_json::json;

use super::kit::{load, merge_root, nested, primary_key, root, schema, Ctx, Package};
use crate::schema::{Column, DataType, MergeStrategy, Table, WriteDisposition};
use crate::Result;

fn base() -> Vec<Table> {
    let mut keyed = merge_root(
        "keyed",
        MergeStrategy::DeleteInsert,
        &[("id", DataType::Bigint), ("name", DataType::Text)],
    );
    primary_key(&mut keyed, &["id"]);
    vec![
        root(
            "items",
            WriteDisposition::Append,
            &[("id", DataType::Bigint), ("name", DataType::Text)],
        ),
        keyed,
    ]
}

fn add_column(tables: &mut [Table], table: &str, column: Column) {
    if let Some(t) = tables.iter_mut().find(|t| t.name == table) {
        // new columns come after the existing ones, as the normalizer adds them
        t.columns.insert(column.name.clone(), column);
    }
}

/// A column added by a later schema version: older rows have NULL in it; a merge table (whose
/// rows go through staging) takes it too.
pub fn new_column(ctx: &mut Ctx<'_>) -> Result<()> {
    let v1 = schema("evolution_new_column", 1, base());
    let mut tables = base();
    add_column(&mut tables, "items", Column::new("extra", DataType::Text));
    add_column(&mut tables, "keyed", Column::new("extra", DataType::Bigint));
    let v2 = schema("evolution_new_column", 2, tables);
    let mut client = ctx.client()?;
    let p = Package::new(
        &v1,
        "1700000001.000001",
        &[
            ("items", vec![json!({"id": 1, "name": "a"})]),
            (
                "keyed",
                vec![json!({"id": 1, "name": "a"}), json!({"id": 2, "name": "b"})],
            ),
        ],
    )?;
    load(client.as_mut(), &v1, &p)?;
    let p = Package::new(
        &v2,
        "1700000002.000001",
        &[
            ("items", vec![json!({"id": 2, "name": "b", "extra": "e"})]),
            ("keyed", vec![json!({"id": 2, "name": "b2", "extra": 7})]),
        ],
    )?;
    load(client.as_mut(), &v2, &p)?;
    ctx.expect_rows(
        client.as_mut(),
        "an appended table with a new column",
        &format!("SELECT id, name, extra FROM {}", ctx.table("items")),
        &["1 | a | NULL", "2 | b | e"],
    )?;
    ctx.expect_rows(
        client.as_mut(),
        "a merged table with a new column",
        &format!("SELECT id, name, extra FROM {}", ctx.table("keyed")),
        &["1 | a | NULL", "2 | b2 | 7"],
    )
}

/// A table (and a nested table of an existing one) added by a later schema version.
pub fn new_table(ctx: &mut Ctx<'_>) -> Result<()> {
    let v1 = schema("evolution_new_table", 1, base());
    let mut tables = base();
    tables.push(nested(
        "items__tags",
        "items",
        &[("value", DataType::Text)],
        false,
    ));
    tables.push(root(
        "more",
        WriteDisposition::Append,
        &[("n", DataType::Double)],
    ));
    let v2 = schema("evolution_new_table", 2, tables);
    let mut client = ctx.client()?;
    let p = Package::new(
        &v1,
        "1700000001.000001",
        &[("items", vec![json!({"id": 1, "name": "a"})])],
    )?;
    load(client.as_mut(), &v1, &p)?;
    let p = Package::new(
        &v2,
        "1700000002.000001",
        &[
            (
                "items",
                vec![json!({"id": 2, "name": "b", "_dlt_id": "i2"})],
            ),
            (
                "items__tags",
                vec![json!({"value": "t", "_dlt_parent_id": "i2", "_dlt_list_idx": 0})],
            ),
            ("more", vec![json!({"n": 1.5})]),
        ],
    )?;
    load(client.as_mut(), &v2, &p)?;
    ctx.expect_rows(
        client.as_mut(),
        "the table that was there",
        &format!("SELECT id, name FROM {}", ctx.table("items")),
        &["1 | a", "2 | b"],
    )?;
    ctx.expect_rows(
        client.as_mut(),
        "a new nested table",
        &format!(
            "SELECT value, _dlt_parent_id FROM {}",
            ctx.table("items__tags")
        ),
        &["t | i2"],
    )?;
    ctx.expect_rows(
        client.as_mut(),
        "a new table",
        &format!("SELECT n FROM {}", ctx.table("more")),
        &["1.5"],
    )
}

/// A variant column (`id__v_text`, spec c.4) added next to the column whose type a value did
/// not fit.
pub fn variant_column(ctx: &mut Ctx<'_>) -> Result<()> {
    let v1 = schema("evolution_variant", 1, base());
    let mut tables = base();
    let mut variant = Column::new("id__v_text", DataType::Text);
    variant.variant = Some(true);
    add_column(&mut tables, "items", variant);
    let v2 = schema("evolution_variant", 2, tables);
    let mut client = ctx.client()?;
    let p = Package::new(
        &v1,
        "1700000001.000001",
        &[("items", vec![json!({"id": 1, "name": "a"})])],
    )?;
    load(client.as_mut(), &v1, &p)?;
    let p = Package::new(
        &v2,
        "1700000002.000001",
        &[(
            "items",
            vec![
                json!({"id": null, "name": "b", "id__v_text": "x"}),
                json!({"id": 3, "name": "c", "id__v_text": null}),
            ],
        )],
    )?;
    load(client.as_mut(), &v2, &p)?;
    ctx.expect_rows(
        client.as_mut(),
        "a variant column",
        &format!("SELECT id, id__v_text, name FROM {}", ctx.table("items")),
        &["1 | NULL | a", "3 | NULL | c", "NULL | x | b"],
    )
}
