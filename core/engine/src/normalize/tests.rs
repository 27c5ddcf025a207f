//! Normalizer behaviour on shapes and on malformed input.

use serde_json::{json, Value};

use super::*;
use crate::naming::Naming;

fn normalize(text: &str) -> Result<(NormalizeReport, MemorySink, Schema)> {
    let mut n = Normalizer::new(
        Schema::new("t", Naming::snake_case()),
        "1.1",
        MemorySink::default(),
        NormalizeOptions::default(),
    );
    n.normalize_json_text("items", text)?;
    n.finish()
}

fn columns(s: &Schema, table: &str) -> Vec<String> {
    s.table(table)
        .map(|t| t.columns.keys().cloned().collect())
        .unwrap_or_default()
}

#[test]
fn flattening_order_is_dlts_lifo() {
    let (_, _, s) = normalize(r#"{"a":{"x":1,"deep":{"q":1}},"b":{"y":2},"c":3}"#).expect("ok");
    assert_eq!(
        columns(&s, "items"),
        ["c", "b__y", "a__x", "a__deep__q", "_dlt_load_id", "_dlt_id"]
    );
}

#[test]
fn lists_become_child_tables_with_dlt_ids() {
    let (report, _, s) =
        normalize(r#"{"id":1,"tags":["x","y"],"orders":[{"n":1,"items":[{"sku":"a"}]}]}"#)
            .expect("ok");
    assert_eq!(report.rows["items__tags"], 2);
    assert_eq!(report.rows["items__orders__items"], 1);
    assert_eq!(
        columns(&s, "items__tags"),
        ["value", "_dlt_parent_id", "_dlt_list_idx", "_dlt_id"]
    );
    assert_eq!(
        s.table("items__orders__items")
            .and_then(|t| t.parent.clone())
            .as_deref(),
        Some("items__orders")
    );
}

#[test]
fn integers_beyond_64_bits_are_kept_exactly_as_text_variants() {
    // dlt's extract fails on them; sluice keeps the digits (no precision is lost)
    let (_, sink, s) = normalize(r#"{"n": 1} {"n": 123456789012345678901234567890}"#).expect("ok");
    let cols = columns(&s, "items");
    assert!(cols.contains(&"n".to_string()));
    let variant = cols
        .iter()
        .find(|c| c.starts_with("n__v_"))
        .expect("a variant for the big integer");
    let batch = &sink.tables["items"][0];
    let col = batch.column_by_name(variant).expect("variant column");
    let text = arrow_cast::display::array_value_to_string(col, 1).expect("value");
    assert_eq!(text, "123456789012345678901234567890");
}

#[test]
fn nan_and_infinity_are_doubles() {
    let (_, sink, s) =
        normalize(r#"{"x": NaN} {"x": Infinity} {"x": -Infinity} {"x": 1.5}"#).expect("ok");
    assert_eq!(
        s.table("items").and_then(|t| t.columns["x"].data_type),
        Some(DataType::Double)
    );
    assert_eq!(sink.tables["items"][0].num_rows(), 4);
}

#[test]
fn invalid_json_names_the_table_line_and_column_and_loads_nothing() {
    let err = normalize("{\"a\": 1}\n{\"a\": tru}\n").expect_err("invalid");
    let msg = err.to_string();
    assert!(
        msg.contains("invalid JSON in the data of table `items`"),
        "{msg}"
    );
    assert!(msg.contains("line 2 column 7"), "{msg}");
}

#[test]
fn invalid_utf8_is_reported_with_its_offset() {
    let mut n = Normalizer::new(
        Schema::new("t", Naming::snake_case()),
        "1.1",
        MemorySink::default(),
        NormalizeOptions::default(),
    );
    let err = n
        .normalize_json_bytes("items", b"{\"a\": \"ok\"}\n{\"a\": \"\xff\"}")
        .expect_err("utf8");
    assert!(
        err.to_string().contains("invalid UTF-8 at byte 19"),
        "{err}"
    );
}

#[test]
fn ten_thousand_levels_of_nesting_become_a_json_column() {
    let depth = 10_000;
    let doc = format!("{{\"deep\": {}1{}}}", "[".repeat(depth), "]".repeat(depth));
    let mut n = Normalizer::new(
        Schema::new("t", Naming::snake_case()),
        "1.1",
        MemorySink::default(),
        NormalizeOptions::default(),
    );
    n.normalize_json_text("items", &doc)
        .expect("deep documents normalize");
    let (report, _, s) = n.finish().expect("finish");
    // each list in a list costs two levels of dlt's default budget of 1000: 500 levels of
    // `__list` tables, then json
    assert_eq!(report.rows.len(), 501);
    let deepest = s
        .tables()
        .values()
        .filter(|t| {
            t.columns
                .values()
                .any(|c| c.data_type == Some(DataType::Json))
        })
        .count();
    assert!(deepest >= 1);
}

#[test]
fn keys_that_are_sql_keywords_or_quotes_are_plain_columns() {
    let (_, _, s) =
        normalize(r#"{"select": 1, "from": 2, "a\"b": 3, "it's": 4, "": 5, "  ": 6, "__": 7}"#)
            .expect("ok");
    let cols = columns(&s, "items");
    for c in ["select", "from", "a_b", "it_s", "_empty"] {
        assert!(cols.contains(&c.to_string()), "{c} missing from {cols:?}");
    }
}

#[test]
fn a_not_null_violation_is_an_error_naming_the_column() {
    let mut schema = Schema::new("t", Naming::snake_case());
    let mut table = sluice_sdk::schema::Table {
        name: "items".into(),
        ..Default::default()
    };
    table.columns.insert(
        "code".into(),
        sluice_sdk::schema::Column {
            nullable: Some(false),
            ..sluice_sdk::schema::Column::new("code", DataType::Text)
        },
    );
    schema.doc_mut().tables.insert("items".into(), table);
    let mut n = Normalizer::new(
        schema,
        "1.1",
        MemorySink::default(),
        NormalizeOptions::default(),
    );
    let err = n
        .normalize_json_text("items", r#"{"code": null}"#)
        .expect_err("not null");
    assert!(
        err.to_string()
            .contains("column `code` of table `items` is NOT NULL"),
        "{err}"
    );
}

#[test]
fn typed_arrow_passes_through_with_system_columns() {
    use arrow_array::{Int32Array, RecordBatch, StringArray};
    use arrow_schema::{DataType as A, Field, Schema as AS};
    use std::sync::Arc;
    let batch = RecordBatch::try_new(
        Arc::new(AS::new(vec![
            Field::new("UserId", A::Int32, false),
            Field::new("Full Name", A::Utf8, true),
        ])),
        vec![
            Arc::new(Int32Array::from(vec![1, 2])),
            Arc::new(StringArray::from(vec![Some("a"), None])),
        ],
    )
    .expect("batch");
    let mut n = Normalizer::new(
        Schema::new("t", Naming::snake_case()),
        "1.1",
        MemorySink::default(),
        NormalizeOptions::default(),
    );
    n.normalize_arrow("users", &batch, arrow_input::ArrowOptions::default())
        .expect("arrow");
    let (report, sink, s) = n.finish().expect("finish");
    assert_eq!(report.rows["users"], 2);
    assert_eq!(
        columns(&s, "users"),
        ["user_id", "full_name", "_dlt_load_id", "_dlt_id"]
    );
    let t = s.table("users").expect("table");
    assert_eq!(t.columns["user_id"].precision, Some(32));
    assert_eq!(t.columns["user_id"].nullable, Some(false));
    let out = &sink.tables["users"][0];
    assert_eq!(out.schema().field(0).name(), "user_id");
    // the data columns are the input's arrays (no per-value work)
    assert!(Arc::ptr_eq(out.column(0), batch.column(0)));
}

#[test]
fn a_frozen_column_contract_names_table_column_and_contract() {
    let mut schema = Schema::new("t", Naming::snake_case());
    let mut table = sluice_sdk::schema::Table {
        name: "items".into(),
        schema_contract: Some(json!({"columns": "freeze"})),
        ..Default::default()
    };
    table.columns.insert(
        "id".into(),
        sluice_sdk::schema::Column::new("id", DataType::Bigint),
    );
    schema.doc_mut().tables.insert("items".into(), table);
    let mut n = Normalizer::new(
        schema,
        "1.1",
        MemorySink::default(),
        NormalizeOptions::default(),
    );
    let err = n
        .normalize_json_text("items", r#"{"id": 1, "extra": true}"#)
        .expect_err("frozen");
    let msg = err.to_string();
    assert!(msg.contains("table `items`, column `extra`"), "{msg}");
    assert!(msg.contains("the `columns` contract is `freeze`"), "{msg}");
    let _: Value = json!(null);
}
