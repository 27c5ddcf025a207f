//! A destination without transactions (BigQuery, the filesystem destination): DuckDB driven
//! through the shared SQL job client with `SqlConnection::transactions` false, so every
//! statement commits on its own. It passes the destination conformance suite (a failed job
//! leaves nothing, a retried package loads once), and a package cut right after any statement
//! of its completion, then loaded again by the engine, ends as if it was loaded once.

use std::path::Path;
use std::sync::{Arc, Mutex};

use serde_json::{json, Value};
use sluice::pipeline::{CodeSource, Pipeline, Resource, RunOptions};
use sluice_destination_duckdb::{duckdb, DuckDbConfig, DuckDbConnection, DuckDbDestination};
use sluice_sdk::destination::{BatchReader, ClientRequest, JobReport};
use sluice_sdk::schema::{ReplaceStrategy, Table};
use sluice_sdk::testing::DestinationChecks;
use sluice_sdk::{
    BatchStream, CancelToken, Capabilities, Destination, DestinationClient, Error, Result,
};
use sluice_sql::client::{
    Catalog, SqlClientOptions, SqlConnection, SqlJobClient, Target, TextRows,
};
use sluice_sql::jobs::SqlDialect;

/// The statement (by a piece of its text) after which the next load is cut once, and whether
/// as a lost connection (retryable) or as a refusal (not retryable).
type Cut = Arc<Mutex<Option<(String, bool)>>>;

/// DuckDB without transactions; `cut` makes the first matching statement fail after it ran,
/// as a connection lost right after the server committed it, or a refusal after it.
struct Autocommit {
    inner: DuckDbConnection,
    cut: Cut,
}

impl Autocommit {
    fn after(&self, sql: &str, result: Result<()>) -> Result<()> {
        result?;
        let mut cut = self.cut.lock().expect("cut");
        match cut.take() {
            Some((p, retryable)) if sql.contains(&p) => Err(if retryable {
                Error::network(format!("connection lost after `{sql}`")).retryable()
            } else {
                Error::destination(format!("refused after `{sql}`"))
            }),
            other => {
                *cut = other;
                Ok(())
            }
        }
    }
}

impl SqlConnection for Autocommit {
    fn name(&self) -> &'static str {
        "duckdb"
    }
    fn dialect(&self) -> &dyn SqlDialect {
        self.inner.dialect()
    }
    fn transactions(&self) -> bool {
        false
    }
    fn execute(&mut self, sql: &str) -> Result<()> {
        let r = self.inner.execute(sql);
        self.after(sql, r)
    }
    fn query_text(&mut self, what: &str, sql: &str, params: &[Option<&str>]) -> Result<TextRows> {
        let rows = self.inner.query_text(what, sql, params);
        let rows = rows?;
        self.after(sql, Ok(()))?;
        Ok(rows)
    }
    fn param(&self, n: usize) -> String {
        self.inner.param(n)
    }
    fn existing_columns(&mut self, dataset: &str) -> Result<Catalog> {
        self.inner.existing_columns(dataset)
    }
    fn table_exists(&mut self, dataset: &str, table: &str) -> Result<bool> {
        self.inner.table_exists(dataset, table)
    }
    fn dataset_exists(&mut self, dataset: &str) -> Result<bool> {
        self.inner.dataset_exists(dataset)
    }
    fn check_tables(&self, dataset: &str, tables: &[&Table], existing: &Catalog) -> Result<()> {
        self.inner.check_tables(dataset, tables, existing)
    }
    fn write_rows(
        &mut self,
        target: Target<'_>,
        data: BatchReader,
        cancel: &CancelToken,
    ) -> Result<JobReport> {
        self.inner.write_rows(target, data, cancel)
    }
    fn load_file(
        &mut self,
        target: Target<'_>,
        path: &Path,
        cancel: &CancelToken,
    ) -> Result<JobReport> {
        self.inner.load_file(target, path, cancel)
    }
    fn check_merge(&mut self, staging: &str, chain: &[&Table]) -> Result<()> {
        self.inner.check_merge(staging, chain)
    }
    fn query(&mut self, sql: &str, cancel: &CancelToken) -> Result<BatchStream> {
        self.inner.query(sql, cancel)
    }
}

struct AutocommitDuckDb {
    config: DuckDbConfig,
    cut: Cut,
}

impl AutocommitDuckDb {
    fn new(db: &Path, replace_strategy: ReplaceStrategy) -> Self {
        Self {
            config: serde_json::from_value(json!({
                "credentials": db.display().to_string(),
                "replace_strategy": replace_strategy,
            }))
            .expect("config"),
            cut: Cut::default(),
        }
    }
}

impl Destination for AutocommitDuckDb {
    fn capabilities(&self) -> Capabilities {
        Capabilities {
            supports_transactions: false,
            ..DuckDbDestination::new(self.config.clone()).capabilities()
        }
    }

    fn open_client(&self, request: ClientRequest) -> Result<Box<dyn DestinationClient>> {
        let dataset = request.dataset_name.clone();
        let staging = self.config.staging_dataset(&dataset);
        let inner = DuckDbConnection::open(&self.config, &request, &[&dataset, &staging])?;
        let con = Autocommit {
            inner,
            cut: self.cut.clone(),
        };
        Ok(Box::new(SqlJobClient::new(
            con,
            SqlClientOptions {
                dataset,
                staging,
                replace_strategy: self.config.replace_strategy.unwrap_or_default(),
            },
        )))
    }
}

#[test]
fn a_destination_without_transactions_passes_the_conformance_suite() {
    let dir = tempfile::tempdir().expect("tmp");
    let db = dir.path().join("autocommit.duckdb");
    let open = |strategy: ReplaceStrategy| -> Result<Box<dyn Destination>> {
        Ok(Box::new(AutocommitDuckDb::new(&db, strategy)))
    };
    let report = DestinationChecks::new()
        .replace_strategies(&open)
        .run(
            &AutocommitDuckDb::new(&db, ReplaceStrategy::default()),
            "autocommit",
        )
        .unwrap_or_else(|e| panic!("{e}"));
    println!("{report}");
    for check in [
        "failure.reader_error",
        "failure.abandoned_attempt",
        "merge.scd2",
        "replace[insert-from-staging]",
        "replace.failed_keeps_old_rows[truncate-and-insert]",
    ] {
        assert!(
            report.passed.iter().any(|c| c == check),
            "{check}: {report}"
        );
    }
}

/// One run's rows: three new events (append, a nested list), people 1..=3 renamed (merge
/// delete-insert on `id`, a nested list), the reference list replaced, and `kv` upserted with
/// key 2 hard-deleted after the first run.
fn source(run: u64) -> CodeSource {
    let events: Vec<Value> = (0..3)
        .map(|i| json!({"id": run * 10 + i, "tags": [format!("r{run}"), "x"]}))
        .collect();
    let people: Vec<Value> = (1..=3)
        .map(|id| json!({"id": id, "name": format!("p{id}-run{run}"), "pets": [format!("pet{run}")]}))
        .collect();
    CodeSource::new(
        "autocommit_source",
        vec![
            // incremental on `id`: the pipeline state changes every run, so each package
            // writes a state row
            Resource::from_values("events", events).incremental(
                serde_json::from_value(json!({"cursor_path": "id", "initial_value": -1}))
                    .expect("spec"),
            ),
            Resource::from_values("people", people)
                .write_disposition("merge")
                .primary_key(["id"]),
            Resource::from_values("refs", vec![json!({"name": format!("ref{run}")})])
                .write_disposition("replace"),
            Resource::from_values(
                "kv",
                vec![
                    json!({"id": 1, "name": format!("v{run}"), "deleted": false}),
                    json!({"id": 2, "name": format!("v{run}"), "deleted": run > 0}),
                ],
            )
            .write_disposition(json!({"disposition": "merge", "strategy": "upsert"}))
            .primary_key(["id"])
            .columns(json!({"deleted": {"data_type": "bool", "hard_delete": true}})),
        ],
    )
}

fn rows(db: &Path, sql: &str) -> Vec<String> {
    let con = duckdb::Connection::open(db).expect("open");
    let mut st = con.prepare(sql).expect("query");
    let rows = st.query_map([], |r| r.get::<_, String>(0)).expect("rows");
    rows.map(|r| r.expect("row")).collect()
}

#[test]
fn a_package_cut_after_any_statement_of_its_completion_loads_once_when_retried() {
    let dir = tempfile::tempdir().expect("tmp");
    let db = dir.path().join("cut.duckdb");
    let destination = Arc::new(AutocommitDuckDb::new(&db, ReplaceStrategy::default()));
    let cut = destination.cut.clone();
    let mut p = Pipeline::builder("autocommit_pipeline")
        .destination("duckdb", destination)
        .dataset_name("ds")
        .pipelines_dir(dir.path().join("pipelines"))
        .build()
        .expect("pipeline");
    // every statement that writes the dataset's tables when a package completes
    let cuts = [
        r#"INSERT INTO "ds"."events" "#,
        r#"INSERT INTO "ds"."events__tags""#,
        r#"INSERT INTO "ds"."people" "#,
        r#"INSERT INTO "ds"."people__pets""#,
        r#"INSERT INTO "ds"."refs" "#,
        r#"MERGE INTO "ds"."kv" "#,
        r#"INSERT INTO "ds"."_dlt_pipeline_state""#,
        r#"INSERT INTO "ds"."_dlt_loads""#,
    ];
    p.run(&source(0), &RunOptions::default())
        .expect("first run");
    for (i, statement) in cuts.iter().enumerate() {
        let run = i as u64 + 1;
        *cut.lock().expect("cut") = Some((statement.to_string(), true));
        let info = p
            .run(&source(run), &RunOptions::default())
            .unwrap_or_else(|e| panic!("run cut after {statement}: {e}"));
        assert!(!info.has_failed_jobs());
        assert!(
            cut.lock().expect("cut").is_none(),
            "the load never ran `{statement}`"
        );
        let what = format!("after a cut after `{statement}`");
        let events = rows(&db, r#"SELECT CAST(count(*) AS TEXT) FROM "ds"."events""#);
        assert_eq!(events, [((run + 1) * 3).to_string()], "events {what}");
        let tags = rows(
            &db,
            r#"SELECT CAST(count(*) AS TEXT) FROM "ds"."events__tags""#,
        );
        assert_eq!(tags, [((run + 1) * 6).to_string()], "event tags {what}");
        let people = rows(&db, r#"SELECT name FROM "ds"."people" ORDER BY id"#);
        let expected: Vec<String> = (1..=3).map(|id| format!("p{id}-run{run}")).collect();
        assert_eq!(people, expected, "people {what}");
        let pets = rows(&db, r#"SELECT value FROM "ds"."people__pets""#);
        assert_eq!(pets, vec![format!("pet{run}"); 3], "pets {what}");
        let refs = rows(&db, r#"SELECT name FROM "ds"."refs""#);
        assert_eq!(refs, [format!("ref{run}")], "refs {what}");
        let kv = rows(
            &db,
            r#"SELECT id || '=' || name FROM "ds"."kv" ORDER BY id"#,
        );
        assert_eq!(kv, [format!("1=v{run}")], "kv {what}");
        let loads = rows(
            &db,
            r#"SELECT CAST(count(*) AS TEXT) FROM "ds"."_dlt_loads""#,
        );
        assert_eq!(loads, [(run + 1).to_string()], "loads {what}");
        let states = rows(
            &db,
            r#"SELECT CAST(count(*) - count(DISTINCT _dlt_load_id) AS TEXT) FROM "ds"."_dlt_pipeline_state""#,
        );
        assert_eq!(states, ["0"], "one state row per package {what}");
    }
}

#[test]
fn a_refusal_after_part_of_a_package_was_applied_keeps_it_pending_and_the_next_run_applies_it_once()
{
    let dir = tempfile::tempdir().expect("tmp");
    let db = dir.path().join("refused.duckdb");
    let destination = Arc::new(AutocommitDuckDb::new(&db, ReplaceStrategy::default()));
    let cut = destination.cut.clone();
    let mut p = Pipeline::builder("refused_pipeline")
        .destination("duckdb", destination)
        .dataset_name("ds")
        .pipelines_dir(dir.path().join("pipelines"))
        .build()
        .expect("pipeline");
    p.run(&source(0), &RunOptions::default())
        .expect("first run");
    // the events of run 1 are applied, then the destination refuses: failing the package
    // would extract its rows again under a new load id and append them twice
    *cut.lock().expect("cut") = Some((r#"INSERT INTO "ds"."events" "#.into(), false));
    let e = p
        .run(&source(1), &RunOptions::default())
        .expect_err("refused")
        .to_string();
    assert!(
        e.contains("may be partly applied to `ds`") && e.contains("it stays pending"),
        "{e}"
    );
    assert_eq!(p.storage().pending().expect("pending").len(), 1);
    // the next run applies the pending package (events once), then extracts nothing new
    p.run(&source(1), &RunOptions::default()).expect("rerun");
    let events = rows(&db, r#"SELECT CAST(count(*) AS TEXT) FROM "ds"."events""#);
    assert_eq!(events, ["6"]);
    let loads = rows(
        &db,
        r#"SELECT CAST(count(*) AS TEXT) FROM "ds"."_dlt_loads""#,
    );
    assert_eq!(loads, ["2"]);
}
