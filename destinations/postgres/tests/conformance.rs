//! The destination conformance suite (`sluice_sdk::testing`) against the machine's PostgreSQL
//! (`$SLUICE_TEST_PG_URL`, default 127.0.0.1:5432, database `test`), once per replace strategy
//! the destination declares, in schemas named for this run and dropped by the suite.

use serde_json::json;
use sluice_destination_postgres::PostgresDestination;
use sluice_sdk::schema::ReplaceStrategy;
use sluice_sdk::testing::DestinationChecks;
use sluice_sdk::{CancelFlag, Destination, Result};

fn url() -> String {
    std::env::var("SLUICE_TEST_PG_URL")
        .unwrap_or_else(|_| "postgresql://postgres@127.0.0.1:5432/test".into())
}

/// Runs the whole suite in schemas named for this run, once per replace strategy; with
/// `load_files` every job is a parquet file for `load_file` (the engine's path, as PostgreSQL
/// lists parquet). Every check must drop its schemas, also the failed ones.
fn suite(load_files: bool) {
    let open = |strategy: ReplaceStrategy| -> Result<Box<dyn Destination>> {
        Ok(Box::new(PostgresDestination::from_json(
            json!({ "replace_strategy": strategy }),
            json!({ "credentials": url() }),
        )?))
    };
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or_default();
    let dataset = format!("sluice_conf_{}_{load_files}_{nanos}", std::process::id());
    let default = open(ReplaceStrategy::default()).expect("destination");
    let mut checks = DestinationChecks::new().replace_strategies(&open);
    if load_files {
        checks = checks.load_files();
    }
    let result = checks.run(default.as_ref(), &dataset);

    // every check dropped its dataset (and staging dataset), also the failed ones
    let mut client = sluice_sdk::testing::open_client(default.as_ref(), "public").expect("client");
    let mut left = client
        .query(
            &format!("SELECT nspname FROM pg_catalog.pg_namespace WHERE nspname LIKE '{dataset}%'"),
            &CancelFlag::new().token(),
        )
        .expect("catalog");
    let mut names = Vec::new();
    while let Some(b) = left.next_batch().expect("rows") {
        if b.num_rows() > 0 {
            names.push(format!("{:?}", b.column(0)));
        }
    }
    let report = result.unwrap_or_else(|e| panic!("{e}"));
    println!("{report}");
    assert!(names.is_empty(), "schemas left behind: {names:?}");
    assert_eq!(report.rows_written, 3);
    for check in [
        "failure.reader_error",
        "merge.upsert",
        "replace[staging-optimized]",
    ] {
        assert!(
            report.passed.iter().any(|c| c == check),
            "{check}: {report}"
        );
    }
}

#[test]
fn passes_the_destination_conformance_suite() {
    suite(false);
}

#[test]
fn passes_the_conformance_suite_with_load_files() {
    suite(true);
}
