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
    // dlt's parquet_normalizer defaults: no system columns on Arrow tables
    n.normalize_arrow("plain", &batch, arrow_input::ArrowOptions::default())
        .expect("arrow");
    let on = arrow_input::ArrowOptions {
        add_dlt_id: true,
        add_dlt_load_id: true,
    };
    n.normalize_arrow("users", &batch, on).expect("arrow");
    let (report, sink, s) = n.finish().expect("finish");
    assert_eq!(report.rows["users"], 2);
    assert_eq!(columns(&s, "plain"), ["user_id", "full_name"]);
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

#[test]
fn keys_in_a_new_order_land_in_their_own_columns() {
    // the trie guesses a key from its position in the last object: a changed order, a missing
    // key and a new key at a known position must still find their own columns
    let text = r#"{"a":1,"b":"x","n":{"p":1,"q":2}}
{"b":"y","a":2,"n":{"q":4,"p":3}}
{"c":true,"a":3,"n":{"r":5}}
{"a":4,"b":"z","n":{"p":6,"q":7}}"#;
    let (_, sink, s) = normalize(text).expect("ok");
    let batch = arrow_select::concat::concat_batches(
        &sink.tables["items"][0].schema(),
        &sink.tables["items"],
    )
    .expect("concat");
    let col = |name: &str| -> Vec<String> {
        let idx = batch.schema().index_of(name).expect(name);
        let arr = arrow_cast::cast(batch.column(idx), &arrow_schema::DataType::Utf8).expect("cast");
        let arr = arr
            .as_any()
            .downcast_ref::<arrow_array::StringArray>()
            .expect("strings")
            .clone();
        (0..arrow_array::Array::len(&arr))
            .map(|i| {
                if arrow_array::Array::is_null(&arr, i) {
                    "-".into()
                } else {
                    arr.value(i).to_string()
                }
            })
            .collect()
    };
    assert_eq!(col("a"), ["1", "2", "3", "4"]);
    assert_eq!(col("b"), ["x", "y", "-", "z"]);
    assert_eq!(col("c"), ["-", "-", "true", "-"]);
    assert_eq!(col("n__p"), ["1", "3", "-", "6"]);
    assert_eq!(col("n__q"), ["2", "4", "-", "7"]);
    assert_eq!(col("n__r"), ["-", "-", "5", "-"]);
    assert!(columns(&s, "items").contains(&"n__r".to_string()));
}

#[test]
fn child_ids_hashed_in_batches_match_one_by_one() {
    // a row with many children across lists (more than one batch of eight)
    let mut doc = json!({"id": 1, "a": [], "b": []});
    for i in 0..11 {
        doc["a"].as_array_mut().expect("a").push(json!({"i": i}));
    }
    for i in 0..3 {
        doc["b"].as_array_mut().expect("b").push(json!(i));
    }
    let (_, sink, _) = normalize(&doc.to_string()).expect("ok");
    let ids = |table: &str| -> Vec<(String, String, i64)> {
        let mut out = Vec::new();
        for b in &sink.tables[table] {
            let s = b.schema();
            let get = |n: &str| b.column(s.index_of(n).expect(n)).clone();
            let id = get("_dlt_id");
            let parent = get("_dlt_parent_id");
            let idx = get("_dlt_list_idx");
            let id = id
                .as_any()
                .downcast_ref::<arrow_array::StringArray>()
                .expect("id");
            let parent = parent
                .as_any()
                .downcast_ref::<arrow_array::StringArray>()
                .expect("p");
            let idx = idx
                .as_any()
                .downcast_ref::<arrow_array::Int64Array>()
                .expect("i");
            for r in 0..b.num_rows() {
                out.push((
                    id.value(r).to_string(),
                    parent.value(r).to_string(),
                    idx.value(r),
                ));
            }
        }
        out
    };
    for table in ["items__a", "items__b"] {
        let rows = ids(table);
        assert!(!rows.is_empty());
        for (id, parent, idx) in rows {
            assert_eq!(
                id,
                hash::child_row_id(&parent, table, idx as usize),
                "{table} {idx}"
            );
        }
    }
}

#[test]
fn child_rows_with_their_own_dlt_id_keep_it_and_are_linked_to_their_parent() {
    // dlt keeps the id but skips `_dlt_parent_id`/`_dlt_list_idx` then, and its load fails on
    // the NOT NULL parent key; sluice links the row (and its own children) as usual
    let (report, sink, s) = normalize(
        r#"{"id":1,"_dlt_id":"root1","items":[{"_dlt_id":"own","x":1,"sub":[7]},{"x":2}]}"#,
    )
    .expect("ok");
    assert_eq!(report.rows["items__items"], 2);
    let text = |table: &str, col: &str| -> Vec<String> {
        sink.tables[table]
            .iter()
            .flat_map(|b| {
                let c = b.column_by_name(col).expect(col).clone();
                (0..b.num_rows())
                    .map(move |r| arrow_cast::display::array_value_to_string(&c, r).expect("v"))
            })
            .collect()
    };
    assert_eq!(
        columns(&s, "items__items"),
        ["_dlt_id", "x", "_dlt_parent_id", "_dlt_list_idx"]
    );
    assert_eq!(
        text("items__items", "_dlt_id"),
        ["own", &hash::child_row_id("root1", "items__items", 1)]
    );
    assert_eq!(text("items__items", "_dlt_parent_id"), ["root1", "root1"]);
    assert_eq!(text("items__items", "_dlt_list_idx"), ["0", "1"]);
    assert_eq!(text("items__items__sub", "_dlt_parent_id"), ["own"]);
    assert_eq!(
        text("items__items__sub", "_dlt_id"),
        [hash::child_row_id("own", "items__items__sub", 0)]
    );
}
