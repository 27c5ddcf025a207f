//! Conformance kits (feature `testing`): one suite per plugin trait, which every source and
//! destination runs against itself in its own tests, directly or through a loaded library (the
//! host's `Foreign*` wrappers implement the same traits), as every `object_store` backend runs
//! `object_store::integration`.
//!
//! * [`check_source`]: resource names, one fixed schema per stream, JSON shape, final states,
//!   unknown resources, cancellation.
//! * [`check_destination`]: the destination suite. Each check builds a dlt schema and Arrow
//!   batches, drives a job client as the engine does (`initialize_storage`,
//!   `update_stored_schema`, `is_load_completed`, `start_load`, `write_table` per job,
//!   `complete_load`) and, where the destination runs queries, reads the tables back and
//!   compares the rows exactly. The expected rows are dlt's (write dispositions and merge
//!   strategies as dlt 1.31 loads them), plus sluice's own guarantee that a failed package
//!   leaves nothing behind. Checks the capabilities do not declare are skipped and listed as
//!   such in the [`DestinationReport`]. With [`DestinationChecks::load_files`] every job is a
//!   parquet file handed to `load_file` instead.
//!
//! ```ignore
//! let report = sluice_sdk::testing::check_source(&my_source, &Default::default())?;
//! assert!(report.rows["issues"] > 0);
//!
//! // a destination whose replace strategy is a config key
//! let open = |strategy| -> Result<Box<dyn Destination>> { Ok(Box::new(MyDestination::new(strategy))) };
//! let report = DestinationChecks::new()
//!     .replace_strategies(&open)
//!     .run(&MyDestination::default(), "conformance")?;
//! println!("{report}");
//! ```
//!
//! Every check writes its own dataset, `<dataset>_<check>`, and drops it when it ends (also when
//! it fails), so the checks are independent and nothing is left behind.

mod config;
mod dispositions;
mod evolution;
mod failures;
mod kit;
mod merge;
mod source;
mod storage;

use std::sync::Arc;

use arrow_array::{Int64Array, RecordBatch, StringArray};
use arrow_schema::{DataType as ArrowType, Field, Schema as ArrowSchema};

use crate::destination::{ClientRequest, Destination};
use crate::schema::WriteDisposition;
use crate::schema::{self, Column, DataType, MergeStrategy, ReplaceStrategy, Schema, Table};
use crate::{Error, Result};

pub use config::{assert_config_keys, assert_manifest_keys, assert_secrets_hidden, SECRET_CANARY};
pub use source::{check_source, SourceChecks, SourceReport};

use kit::Ctx;

fn fail(message: impl Into<String>) -> Error {
    Error::internal(format!("conformance: {}", message.into()))
}

/// Opens the destination under test configured with a replace strategy (dlt's
/// `destination.<name>.replace_strategy`).
pub type ReplaceStrategyOpener<'a> = &'a dyn Fn(ReplaceStrategy) -> Result<Box<dyn Destination>>;

/// Options of the destination suite; [`check_destination`] runs it with the defaults.
#[derive(Clone, Copy, Default)]
pub struct DestinationChecks<'a> {
    replace_strategies: Option<ReplaceStrategyOpener<'a>>,
    only: Option<&'a str>,
    load_files: bool,
}

impl std::fmt::Debug for DestinationChecks<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DestinationChecks")
            .field("replace_strategies", &self.replace_strategies.is_some())
            .field("only", &self.only)
            .finish()
    }
}

/// What the destination suite did: the checks that passed, and those it skipped with why.
#[derive(Debug, Clone, Default)]
pub struct DestinationReport {
    /// Names of the checks that passed, in the order they ran.
    pub passed: Vec<String>,
    /// Checks not run, with the reason (a capability the destination does not declare).
    pub skipped: Vec<(String, String)>,
    /// Rows the first package of the `load` check reported written (3).
    pub rows_written: u64,
}

impl std::fmt::Display for DestinationReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        writeln!(f, "{} checks passed:", self.passed.len())?;
        for p in &self.passed {
            writeln!(f, "  ok    {p}")?;
        }
        for (s, why) in &self.skipped {
            writeln!(f, "  skip  {s}: {why}")?;
        }
        Ok(())
    }
}

/// What a check needs from the destination.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Needs {
    /// Nothing beyond the job client.
    Client,
    /// `query` (to read the rows back).
    Query,
    /// `query` and a merge strategy.
    Merge(MergeStrategy),
}

/// One check: a name (`area.case`), what it needs, and the function.
struct Check {
    name: &'static str,
    needs: Needs,
    run: fn(&mut Ctx<'_>) -> Result<()>,
}

/// The checks that do not depend on a replace strategy.
fn checks() -> Vec<Check> {
    use MergeStrategy::*;
    use Needs::*;
    let c = |name, needs, run| Check { name, needs, run };
    vec![
        c(
            "storage",
            Client,
            storage::storage as fn(&mut Ctx<'_>) -> Result<()>,
        ),
        c("schema.versions", Client, storage::schema_versions),
        c("load.completion", Client, dispositions::completion),
        c("state.restore", Client, storage::state_restore),
        c("append", Query, dispositions::append),
        c("append.nested", Query, dispositions::append_nested),
        c("merge.no_keys", Merge(DeleteInsert), merge::no_keys),
        c(
            "merge.delete_insert.primary_key",
            Merge(DeleteInsert),
            merge::delete_insert_primary_key,
        ),
        c(
            "merge.delete_insert.dedup_sort",
            Merge(DeleteInsert),
            merge::delete_insert_dedup_sort,
        ),
        c(
            "merge.delete_insert.hard_delete",
            Merge(DeleteInsert),
            merge::delete_insert_hard_delete,
        ),
        c(
            "merge.delete_insert.merge_key",
            Merge(DeleteInsert),
            merge::delete_insert_merge_key,
        ),
        c(
            "merge.delete_insert.nested",
            Merge(DeleteInsert),
            merge::delete_insert_nested,
        ),
        c("merge.upsert", Merge(Upsert), merge::upsert),
        c(
            "merge.upsert.hard_delete",
            Merge(Upsert),
            merge::upsert_hard_delete,
        ),
        c("merge.upsert.nested", Merge(Upsert), merge::upsert_nested),
        c("merge.insert_only", Merge(InsertOnly), merge::insert_only),
        c("merge.scd2", Merge(Scd2), merge::scd2),
        c("merge.scd2.merge_key", Merge(Scd2), merge::scd2_merge_key),
        c("evolution.new_column", Query, evolution::new_column),
        c("evolution.new_table", Query, evolution::new_table),
        c("evolution.variant_column", Query, evolution::variant_column),
        c("drop_tables", Query, storage::drop_tables),
        c("failure.reader_error", Query, failures::reader_error),
        c(
            "failure.attempt_ended",
            Query,
            failures::failed_attempt_is_ended,
        ),
        c("failure.not_null", Query, failures::not_null),
        c(
            "failure.abandoned_attempt",
            Query,
            failures::abandoned_attempt,
        ),
        c(
            "failure.completed_package_is_not_loaded_again",
            Client,
            failures::completed_once,
        ),
    ]
}

/// The checks run once per replace strategy.
fn replace_checks() -> Vec<Check> {
    let c = |name, run| Check {
        name,
        needs: Needs::Query,
        run,
    };
    vec![
        c(
            "replace",
            dispositions::replace as fn(&mut Ctx<'_>) -> Result<()>,
        ),
        c("replace.nested", dispositions::replace_nested),
        c("replace.without_rows", dispositions::replace_without_rows),
        c(
            "replace.failed_keeps_old_rows",
            failures::failed_replace_keeps_old_rows,
        ),
    ]
}

fn strategy_name(s: ReplaceStrategy) -> &'static str {
    match s {
        ReplaceStrategy::TruncateAndInsert => "truncate-and-insert",
        ReplaceStrategy::InsertFromStaging => "insert-from-staging",
        ReplaceStrategy::StagingOptimized => "staging-optimized",
    }
}

impl<'a> DestinationChecks<'a> {
    /// The default suite.
    pub fn new() -> Self {
        Self::default()
    }

    /// Runs the replace checks once per replace strategy the capabilities declare, each with
    /// the destination `open` returns for it. Without it they run once, with the destination
    /// as given (whatever strategy it is configured with).
    pub fn replace_strategies(mut self, open: ReplaceStrategyOpener<'a>) -> Self {
        self.replace_strategies = Some(open);
        self
    }

    /// Hands every job to `load_file` as a parquet file (what the engine does when the
    /// capabilities list `parquet`) instead of streaming it to `write_table`; a job stream the
    /// suite cuts becomes a truncated file.
    pub fn load_files(mut self) -> Self {
        self.load_files = true;
        self
    }

    /// Runs only the checks whose name starts with `prefix` (e.g. `merge.upsert`).
    pub fn only(mut self, prefix: &'a str) -> Self {
        self.only = Some(prefix);
        self
    }

    /// Runs the suite against `destination`, each check in dataset `<dataset>_<n>`. Fails with
    /// every failed check and its message; otherwise the report says what ran and what was
    /// skipped.
    pub fn run(&self, destination: &dyn Destination, dataset: &str) -> Result<DestinationReport> {
        let caps = destination.capabilities();
        if caps.max_identifier_length == 0 || caps.supported_loader_file_formats.is_empty() {
            return Err(fail(
                "capabilities must name identifier limits and file formats",
            ));
        }
        let format = if self.load_files { "parquet" } else { "arrow" };
        if !caps
            .supported_loader_file_formats
            .iter()
            .any(|f| f == format)
        {
            return Err(fail(format!(
                "the suite writes {}: the capabilities must list the `{format}` format",
                if self.load_files {
                    "parquet files (`load_file`)"
                } else {
                    "Arrow streams (`write_table`)"
                }
            )));
        }
        let _files = kit::LoadFiles::set(self.load_files);
        let mut report = DestinationReport::default();
        let mut failures: Vec<String> = Vec::new();
        let mut n = 0usize;
        let wanted = |name: &str| self.only.is_none_or(|p| name.starts_with(p));
        let mut run_one = |name: String,
                           check: &Check,
                           dest: &dyn Destination,
                           report: &mut DestinationReport,
                           failures: &mut Vec<String>| {
            let caps = dest.capabilities();
            let skip = match check.needs {
                Needs::Client => None,
                Needs::Query | Needs::Merge(_) if !caps.supports_query => {
                    Some("the destination does not run queries (supports_query)".to_string())
                }
                Needs::Merge(s) if !caps.supported_merge_strategies.contains(&s) => Some(format!(
                    "merge strategy `{}` is not in supported_merge_strategies",
                    s.as_str()
                )),
                _ => None,
            };
            if let Some(why) = skip {
                report.skipped.push((name, why));
                return;
            }
            n += 1;
            let mut ctx = Ctx::new(dest, format!("{dataset}_{n}"));
            let result = (check.run)(&mut ctx);
            let cleanup = ctx.drop_dataset();
            match (result, cleanup) {
                (Ok(()), Ok(())) => {
                    if name == "load.completion" {
                        report.rows_written = ctx.rows_written;
                    }
                    report.passed.push(name);
                }
                (Err(e), _) => {
                    failures.push(format!("{name} (dataset `{}`): {}", ctx.dataset, e.message))
                }
                (Ok(()), Err(e)) => failures.push(format!(
                    "{name}: cannot drop dataset `{}` at the end: {}",
                    ctx.dataset, e.message
                )),
            }
        };
        for check in checks().iter().filter(|c| wanted(c.name)) {
            run_one(
                check.name.to_string(),
                check,
                destination,
                &mut report,
                &mut failures,
            );
        }
        let replace: Vec<Check> = replace_checks()
            .into_iter()
            .filter(|c| wanted(c.name))
            .collect();
        if !replace.is_empty() {
            match self.replace_strategies {
                Some(open) => {
                    for strategy in &caps.supported_replace_strategies {
                        let dest = match open(*strategy) {
                            Ok(d) => d,
                            Err(e) => {
                                failures.push(format!(
                                    "replace[{}]: cannot open the destination with this strategy: {}",
                                    strategy_name(*strategy),
                                    e.message
                                ));
                                continue;
                            }
                        };
                        for check in &replace {
                            let name = format!("{}[{}]", check.name, strategy_name(*strategy));
                            run_one(name, check, dest.as_ref(), &mut report, &mut failures);
                        }
                    }
                }
                None => {
                    for check in &replace {
                        let name = format!("{}[as configured]", check.name);
                        run_one(name, check, destination, &mut report, &mut failures);
                    }
                    for strategy in caps.supported_replace_strategies.iter().skip(1) {
                        report.skipped.push((
                            format!("replace[{}]", strategy_name(*strategy)),
                            "no way to configure the strategy was given (DestinationChecks::replace_strategies)".into(),
                        ));
                    }
                }
            }
        }
        if failures.is_empty() {
            Ok(report)
        } else {
            Err(fail(format!(
                "{} of {} checks failed:\n- {}\n{report}",
                failures.len(),
                failures.len() + report.passed.len(),
                failures.join("\n- ")
            )))
        }
    }
}

/// Runs the destination suite with its defaults (replace checks with the destination as
/// configured): see [`DestinationChecks`].
pub fn check_destination(
    destination: &dyn Destination,
    dataset: &str,
) -> Result<DestinationReport> {
    DestinationChecks::new().run(destination, dataset)
}

/// Opens a job client of `destination` for `dataset` (pipeline `conformance`).
pub fn open_client(
    destination: &dyn Destination,
    dataset: &str,
) -> Result<Box<dyn crate::DestinationClient>> {
    destination.open_client(ClientRequest {
        dataset_name: dataset.into(),
        pipeline_name: "conformance".into(),
        ..Default::default()
    })
}

/// A small dlt schema: the three system tables and a table `items (id bigint, name text)`
/// with dlt's system columns.
pub fn sample_schema(name: &str) -> Schema {
    let mut items = Table {
        name: "items".into(),
        write_disposition: Some(WriteDisposition::Append),
        resource: Some("items".into()),
        ..Default::default()
    };
    for c in [
        Column::new("id", DataType::Bigint),
        Column::new("name", DataType::Text),
        Column {
            nullable: Some(false),
            ..Column::new("_dlt_load_id", DataType::Text)
        },
        Column {
            nullable: Some(false),
            unique: Some(true),
            row_key: Some(true),
            ..Column::new("_dlt_id", DataType::Text)
        },
    ] {
        items.columns.insert(c.name.clone(), c);
    }
    let mut s = Schema {
        version: 1,
        version_hash: format!("conformance-{name}-1"),
        engine_version: 11,
        name: name.into(),
        ..Default::default()
    };
    for t in [
        schema::version_table(),
        schema::loads_table(),
        items,
        schema::state_table(),
    ] {
        s.tables.insert(t.name.clone(), t);
    }
    s
}

/// A batch of [`sample_schema`]'s `items` for `load_id`.
pub fn sample_items(ids: &[i64], load_id: &str) -> Result<RecordBatch> {
    let schema = Arc::new(ArrowSchema::new(vec![
        Field::new("id", ArrowType::Int64, true),
        Field::new("name", ArrowType::Utf8, true),
        Field::new("_dlt_load_id", ArrowType::Utf8, false),
        Field::new("_dlt_id", ArrowType::Utf8, false),
    ]));
    let names: Vec<String> = ids.iter().map(|i| format!("item {i}")).collect();
    Ok(RecordBatch::try_new(
        schema,
        vec![
            Arc::new(Int64Array::from(ids.to_vec())),
            Arc::new(StringArray::from(names)),
            Arc::new(StringArray::from(vec![load_id; ids.len()])),
            Arc::new(StringArray::from(
                ids.iter()
                    .map(|i| format!("{load_id}-{i}"))
                    .collect::<Vec<_>>(),
            )),
        ],
    )?)
}
