//! The golden harness: runs every case of `$GOLDEN_DIR` (default `tests/golden/cases`)
//! through sluice and compares with what dlt 1.31 produced.
//!
//! `GOLDEN_DIR=<dir> cargo test --release --test golden [-- <case filter>...]`
//!
//! Each case runs end to end on every destination of [`destinations::DESTINATIONS`], each
//! loaded by its plugin name from its `.so`: DuckDB, then PostgreSQL on the machine's server
//! (`$SLUICE_TEST_PG_URL`, default `postgresql://postgres@127.0.0.1:5432/test`, schema
//! `golden`), and after every run the whole dataset is compared with dlt's (tables, columns
//! with types and nullability, rows with placeholders, decoded state rows, `state.sources`, the
//! load info text, and the failing step). `SLUICE_GOLDEN_DESTINATIONS=duckdb` (comma separated
//! plugin names, e.g. `postgres` or `duckdb,postgres`) runs only those; an unknown name is an
//! error. `SLUICE_GOLDEN_MODE=normalize` instead checks the normalize step alone (schemas,
//! versions, columns, and rows of append-only cases), once, under the recorded destination's
//! name.
//!
//! One line per case and destination, then `N passed, N failed`.

mod destinations;
mod normalize_runner;
mod pipeline_runner;

use std::process::ExitCode;

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
    let selected = match std::env::var("SLUICE_GOLDEN_DESTINATIONS") {
        Ok(wanted) => destinations::selected(&wanted),
        Err(_) => Ok(destinations::DESTINATIONS.iter().collect()),
    };
    let selected = match selected {
        Ok(selected) => selected,
        Err(e) => {
            eprintln!("SLUICE_GOLDEN_DESTINATIONS: {e}");
            return ExitCode::FAILURE;
        }
    };
    for destination in selected {
        for case in &cases {
            let result = if normalize {
                // the normalize step does not depend on the destination: checked once
                if !destination.is_recorded() {
                    continue;
                }
                normalize_runner::run_case(&dir.join(case))
            } else {
                pipeline_runner::run_case(&dir.join(case), destination)
            };
            let label = format!("{:<8} {case}", destination.name);
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
