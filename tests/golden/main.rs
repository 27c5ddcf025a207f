//! The golden harness: runs every case of `$GOLDEN_DIR` (default `tests/golden/cases`)
//! through sluice and compares with what dlt 1.31 produced.
//!
//! `GOLDEN_DIR=<dir> cargo test --release --test golden [-- <case filter>...]`
//!
//! Each case runs end to end: real pipelines into the DuckDB destination plugin loaded from its
//! `.so`, then into the PostgreSQL plugin on the machine's server (`$SLUICE_TEST_PG_URL`,
//! default `postgresql://postgres@127.0.0.1:5432/test`, schema `golden`), and after every run
//! the whole dataset is compared with dlt's (tables, columns with types and nullability, rows
//! with placeholders, decoded state rows, `state.sources`, the load info text, and the failing
//! step). `SLUICE_GOLDEN_DESTINATIONS=duckdb` (or `postgres`) runs one destination only.
//! `SLUICE_GOLDEN_MODE=normalize` instead checks the normalize step alone (schemas, versions,
//! columns, and rows of append-only cases).
//!
//! One line per case and destination, then `N passed, N failed`.

mod normalize_runner;
mod pipeline_runner;

use std::process::ExitCode;

use pipeline_runner::Target;

fn main() -> ExitCode {
    let filters: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with('-'))
        .collect();
    let dir = sluice_tests::golden_dir();
    let cases = sluice_tests::case_names(&dir, &filters);
    if cases.is_empty() {
        eprintln!("no golden cases found in {}", dir.display());
        return ExitCode::FAILURE;
    }
    let (mut passed, mut failed) = (0, 0);
    let normalize = std::env::var("SLUICE_GOLDEN_MODE").as_deref() == Ok("normalize");
    let wanted = std::env::var("SLUICE_GOLDEN_DESTINATIONS")
        .unwrap_or_else(|_| "duckdb,postgres".to_string());
    let targets: Vec<Target> = [Target::DuckDb, Target::Postgres]
        .into_iter()
        .filter(|t| wanted.split(',').any(|w| w.trim() == t.name()))
        .collect();
    for target in &targets {
        for case in &cases {
            let result = if normalize {
                if *target != Target::DuckDb {
                    continue;
                }
                normalize_runner::run_case(&dir.join(case))
            } else {
                pipeline_runner::run_case(&dir.join(case), *target)
            };
            let label = format!("{:<8} {case}", target.name());
            match result {
                Ok(note) => {
                    passed += 1;
                    println!("ok    {label}{note}");
                }
                Err(msg) => {
                    failed += 1;
                    println!("FAIL  {label}: {}", msg.replace('\n', "\n      "));
                }
            }
        }
    }
    println!("{passed} passed, {failed} failed");
    if failed > 0 {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    }
}
