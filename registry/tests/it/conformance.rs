use serde_json::json;
use sluice_sdk::testing::{check_destination, check_source, SourceChecks};

use crate::support::*;

#[test]
fn the_sample_source_passes_the_source_kit_through_its_library() {
    let plugin = registry().load("source", "sample").expect("load");
    let source = plugin
        .open_source(&json!({"rows": 250, "batch_size": 100}), &json!({}))
        .expect("open");
    let report = check_source(&source, &SourceChecks::default()).expect("conformance");
    assert_eq!(report.rows["numbers"], 250);
    assert_eq!(report.rows["events"], 250);
    assert_eq!(report.final_states["numbers"], json!({"last": 249}));
    assert_eq!(report.final_states["events"], json!({"cursor": 250}));
}

#[test]
fn the_recorder_destination_passes_the_destination_kit_through_its_library() {
    let dir = tempfile::tempdir().expect("tmp");
    let plugin = registry().load("destination", "recorder").expect("load");
    let destination = plugin
        .open_destination(&json!({"path": dir.path()}), &json!({}))
        .expect("open");
    let report =
        check_destination(&destination, "conformance_ds").unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(report.rows_written, 3);
    // without `query` the suite runs what the job client alone shows, and says what it skipped
    for check in [
        "storage",
        "schema.versions",
        "load.completion",
        "state.restore",
    ] {
        assert!(report.passed.iter().any(|c| c == check), "{report}");
    }
    assert!(
        report.skipped.iter().any(|(c, _)| c == "merge.upsert"),
        "{report}"
    );
}

#[test]
fn the_out_of_tree_plugin_passes_the_source_kit() {
    let plugin = registry()
        .load_path(&fixtures_dir().join("libsluice_source_oot.so"))
        .expect("load out-of-tree plugin");
    assert_eq!(plugin.name(), "oot");
    let source = plugin.open_source(&json!({}), &json!({})).expect("open");
    let report = check_source(&source, &SourceChecks::default()).expect("conformance");
    assert_eq!(report.rows["squares"], 30);
}

/// The filesystem plugin's JSON lines streams carry where their documents come from (file and
/// line, in two extra columns): the source kit accepts that shape.
#[test]
fn the_filesystem_plugin_passes_the_source_kit_with_json_lines_origins() {
    let dir = tempfile::tempdir().expect("tmp");
    std::fs::write(dir.path().join("a.jsonl"), "{\"id\": 1}\n{\"id\": 2}\n").expect("write");
    std::fs::write(dir.path().join("b.jsonl"), "{\"id\": 3}\n").expect("write");
    let plugin = registry().load("source", "filesystem").expect("load");
    let source = plugin
        .open_source(
            &json!({"bucket_url": dir.path(), "file_glob": "*.jsonl", "table_name": "items"}),
            &json!({}),
        )
        .expect("open");
    let report = check_source(&source, &SourceChecks::default()).expect("conformance");
    assert_eq!(report.rows.values().sum::<u64>(), 3, "{:?}", report.rows);
}
