//! The source conformance kit (`sluice_sdk::testing::check_source`) on the filesystem source
//! over files in a temporary folder: JSON lines (documents) and CSV (typed Arrow).

use serde_json::json;
use sluice_connector_filesystem::Filesystem;
use sluice_sdk::testing::{check_source, SourceChecks};

#[test]
fn passes_the_source_kit() {
    let dir = tempfile::tempdir().expect("tmp");
    std::fs::write(
        dir.path().join("a.jsonl"),
        "{\"id\": 1}\n{\"id\": 2, \"tags\": [\"x\"]}\n",
    )
    .expect("write");
    std::fs::write(dir.path().join("b.jsonl"), "{\"id\": 3}\n").expect("write");
    std::fs::write(dir.path().join("c.csv"), "id,name\n1,a\n2,b\n").expect("write");
    let source = Filesystem::open(
        json!({
            "bucket_url": dir.path(),
            "resources": [
                {"name": "docs", "file_glob": "*.jsonl"},
                {"name": "rows", "file_glob": "*.csv", "format": "csv"},
            ],
        }),
        json!({}),
    )
    .expect("open");
    let report = check_source(&source, &SourceChecks::default()).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(report.rows["docs"], 3, "{report:?}");
    assert_eq!(report.rows["rows"], 2, "{report:?}");
}
