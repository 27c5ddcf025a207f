//! The golden harness: runs every case of `$GOLDEN_DIR` (default `../shared/golden/cases`)
//! through sluice and compares with what dlt 1.31 produced.
//!
//! `GOLDEN_DIR=<dir> cargo test --release --test golden [-- <case filter>...]`
//!
//! Each case runs end to end: real pipelines into the DuckDB destination plugin loaded from its
//! `.so`, then after every run the whole dataset is compared with dlt's (tables, columns with
//! types and nullability, rows with placeholders, decoded state rows, `state.sources`, the load
//! info text, and the failing step). `SLUICE_GOLDEN_MODE=normalize` instead checks the
//! normalize step alone (schemas, versions, columns, and rows of append-only cases).
//!
//! One line per case, then `N passed, N failed`.

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
    for case in &cases {
        let result = if std::env::var("SLUICE_GOLDEN_MODE").as_deref() == Ok("normalize") {
            normalize_runner::run_case(&dir.join(case))
        } else {
            pipeline_runner::run_case(&dir.join(case))
        };
        match result {
            Ok(note) => {
                passed += 1;
                println!("ok    {case}{note}");
            }
            Err(msg) => {
                failed += 1;
                println!("FAIL  {case}: {}", msg.replace('\n', "\n      "));
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
