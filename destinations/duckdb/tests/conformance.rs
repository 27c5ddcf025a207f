//! The destination conformance suite (`sluice_sdk::testing`) against DuckDB, once per replace
//! strategy the destination declares.

use serde_json::json;
use sluice_destination_duckdb::{DuckDbConfig, DuckDbDestination};
use sluice_sdk::schema::ReplaceStrategy;
use sluice_sdk::testing::DestinationChecks;
use sluice_sdk::{Destination, Result};

/// Runs the whole suite on a new DuckDB file, once per replace strategy; with `load_files`
/// every job is a parquet file for `load_file` (the engine's path, as DuckDB lists parquet).
fn suite(load_files: bool) {
    let dir = tempfile::tempdir().expect("tmp");
    let path = dir.path().join("conformance.duckdb");
    let open = |strategy: ReplaceStrategy| -> Result<Box<dyn Destination>> {
        let config: DuckDbConfig = serde_json::from_value(json!({
            "credentials": path.display().to_string(),
            "replace_strategy": strategy,
        }))?;
        Ok(Box::new(DuckDbDestination::new(config)))
    };
    let default = open(ReplaceStrategy::default()).expect("destination");
    let mut checks = DestinationChecks::new().replace_strategies(&open);
    if load_files {
        checks = checks.load_files();
    }
    let report = checks
        .run(default.as_ref(), "conformance")
        .unwrap_or_else(|e| panic!("{e}"));
    println!("{report}");
    assert_eq!(report.rows_written, 3);
    for check in [
        "failure.reader_error",
        "merge.scd2",
        "replace.nested[insert-from-staging]",
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

/// A deliberately broken wrapper (for this test only): it hides the plan's `root_tables`, so a
/// replace that produced no rows would keep the old rows. The suite must catch it.
struct ForgetsEmptyReplaces(DuckDbDestination);

struct ForgetsEmptyReplacesClient(Box<dyn sluice_sdk::DestinationClient>);

impl Destination for ForgetsEmptyReplaces {
    fn capabilities(&self) -> sluice_sdk::Capabilities {
        self.0.capabilities()
    }

    fn open_client(
        &self,
        request: sluice_sdk::destination::ClientRequest,
    ) -> Result<Box<dyn sluice_sdk::DestinationClient>> {
        Ok(Box::new(ForgetsEmptyReplacesClient(
            self.0.open_client(request)?,
        )))
    }
}

impl sluice_sdk::DestinationClient for ForgetsEmptyReplacesClient {
    fn initialize_storage(&mut self) -> Result<()> {
        self.0.initialize_storage()
    }
    fn is_storage_initialized(&mut self) -> Result<bool> {
        self.0.is_storage_initialized()
    }
    fn drop_storage(&mut self) -> Result<()> {
        self.0.drop_storage()
    }
    fn get_stored_schema(
        &mut self,
        name: &str,
    ) -> Result<Option<sluice_sdk::destination::StoredSchema>> {
        self.0.get_stored_schema(name)
    }
    fn get_stored_state(
        &mut self,
        name: &str,
    ) -> Result<Option<sluice_sdk::destination::StoredState>> {
        self.0.get_stored_state(name)
    }
    fn update_stored_schema(
        &mut self,
        schema: &sluice_sdk::schema::Schema,
        json: &str,
        request: &sluice_sdk::destination::SchemaUpdateRequest,
    ) -> Result<sluice_sdk::destination::SchemaUpdate> {
        self.0.update_stored_schema(schema, json, request)
    }
    fn start_load(
        &mut self,
        load_id: &str,
        plan: &sluice_sdk::destination::LoadPlan,
    ) -> Result<()> {
        let mut plan = plan.clone();
        plan.extra.shift_remove("root_tables");
        self.0.start_load(load_id, &plan)
    }
    fn write_table(
        &mut self,
        load_id: &str,
        job: &sluice_sdk::destination::LoadJob,
        data: sluice_sdk::destination::BatchReader,
        cancel: &sluice_sdk::CancelToken,
    ) -> Result<sluice_sdk::destination::JobReport> {
        self.0.write_table(load_id, job, data, cancel)
    }
    fn complete_load(
        &mut self,
        load_id: &str,
        completion: &sluice_sdk::destination::LoadCompletion,
    ) -> Result<()> {
        self.0.complete_load(load_id, completion)
    }
    fn is_load_completed(&mut self, load_id: &str) -> Result<bool> {
        self.0.is_load_completed(load_id)
    }
    fn drop_tables(&mut self, request: &sluice_sdk::destination::DropTablesRequest) -> Result<()> {
        self.0.drop_tables(request)
    }
    fn query(
        &mut self,
        sql: &str,
        cancel: &sluice_sdk::CancelToken,
    ) -> Result<sluice_sdk::BatchStream> {
        self.0.query(sql, cancel)
    }
}

#[test]
fn the_suite_catches_a_destination_that_keeps_rows_of_an_empty_replace() {
    let dir = tempfile::tempdir().expect("tmp");
    let config: DuckDbConfig = serde_json::from_value(json!({
        "credentials": dir.path().join("broken.duckdb").display().to_string(),
    }))
    .expect("config");
    let broken = ForgetsEmptyReplaces(DuckDbDestination::new(config));
    let err = DestinationChecks::new()
        .only("replace.without_rows")
        .run(&broken, "broken")
        .expect_err("the suite must fail");
    assert!(
        err.message.contains("1 of 1 checks failed")
            && err
                .message
                .contains("a replace without rows empties the table"),
        "{err}"
    );
}
