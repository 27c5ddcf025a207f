//! The golden harness: runs every case of `$GOLDEN_DIR` (default `../shared/golden/cases`)
//! through sluice and compares with what dlt 1.31 produced.
//!
//! `GOLDEN_DIR=<dir> cargo test --release --test golden [-- <case filter>...]`
//!
//! Per run it checks the outcome (ok, or the step that failed), the schema version hash dlt
//! recorded in `_dlt_loads`, the schema version, and every table's columns (name, DuckDB type,
//! nullability). Rows are compared for cases whose runs only append (the normalized rows are
//! loaded into DuckDB from the package's parquet files, so values print exactly as DuckDB
//! prints them).
//!
//! One line per case, then `N passed, N failed`.

mod normalize_runner;

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
        match normalize_runner::run_case(&dir.join(case)) {
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
