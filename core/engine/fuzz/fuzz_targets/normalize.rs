//! Fuzzes the relational normalizer: arbitrary bytes as JSON lines, under settings chosen by the
//! first byte (naming convention, nesting limit, contract, detections). It must never panic; when
//! it succeeds, what it produced must agree with itself: rows per table as reported, every batch
//! matching its table's columns, and a schema document that reloads to the same content hash.
#![no_main]

use libfuzzer_sys::fuzz_target;
use serde_json::json;
use sluice::naming::{Naming, NamingKind};
use sluice::normalize::{MemorySink, NormalizeOptions, Normalizer};
use sluice::schema::Schema;

fuzz_target!(|data: &[u8]| {
    let Some((&knobs, body)) = data.split_first() else {
        return;
    };
    let kind = match knobs & 0b111 {
        0 | 5 => NamingKind::SnakeCase,
        1 => NamingKind::SqlCsV1,
        2 => NamingKind::SqlCiV1,
        3 => NamingKind::DuckCase,
        _ => NamingKind::Direct,
    };
    let max_len = (knobs & 0b1000 != 0).then_some(16);
    let mut schema = Schema::new("fuzz", Naming::new(kind, max_len));
    {
        let doc = schema.doc_mut();
        let mut table = sluice_sdk::schema::Table {
            name: "items".into(),
            ..Default::default()
        };
        match (knobs >> 4) & 0b11 {
            1 => table.schema_contract = Some(json!({"columns": "discard_value", "data_type": "discard_row"})),
            2 => table.schema_contract = Some(json!({"columns": "discard_row", "data_type": "discard_value"})),
            3 => {
                table.extra.insert("x-normalizer".into(), json!({"max_nesting": 1}));
            }
            _ => {}
        }
        if knobs & 0x40 != 0 {
            doc.settings = json!({
                "detections": ["iso_timestamp", "iso_date", "large_integer", "timestamp"]
            });
        }
        doc.tables.insert("items".into(), table);
    }
    if schema.recompile().is_err() {
        return;
    }
    let mut n = Normalizer::new(schema, "1700000000.1", MemorySink::default(), NormalizeOptions {
        batch_rows: if knobs & 0x80 != 0 { 3 } else { 64 * 1024 },
        ..NormalizeOptions::default()
    });
    // two chunks: the second sees the schema the first evolved
    let cut = body.iter().position(|b| *b == 0).unwrap_or(body.len());
    if n.normalize_json_bytes("items", &body[..cut]).is_err() {
        return;
    }
    if cut < body.len() && n.normalize_json_bytes("items", &body[cut + 1..]).is_err() {
        return;
    }
    let Ok((report, sink, schema)) = n.finish() else {
        return;
    };
    for (table, batches) in &sink.tables {
        let rows: usize = batches.iter().map(|b| b.num_rows()).sum();
        assert_eq!(report.rows.get(table).copied().unwrap_or(0) as usize, rows, "{table}");
        let t = schema.table(table).expect("a table with rows is in the schema");
        for b in batches {
            for f in b.schema().fields() {
                assert!(t.columns.contains_key(f.name()), "{table}.{} not in the schema", f.name());
            }
        }
    }
    let doc: sluice_sdk::schema::Schema =
        serde_json::from_value(schema.to_value()).expect("the schema document reloads");
    let again = Schema::from_doc(doc, max_len).expect("the schema document compiles");
    assert_eq!(again.content_hash(), schema.content_hash());
});
