//! Reliability: a pipeline process killed with SIGKILL at random points of extract, normalize
//! and load, then rerun, leaves the destination with exactly the expected rows (nothing lost,
//! nothing duplicated for merge, append exactly once per package); a destination that is
//! unavailable mid-load leaves the package pending and a rerun completes it. The kill scenarios
//! run against DuckDB and against the machine's PostgreSQL server.

mod autocommit;

use sluice_tests::{pg_exec, pg_rows, pg_url, plugin_dir};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use rand::{Rng, SeedableRng};
use serde_json::Value;
use sluice_destination_duckdb::duckdb;

const ROWS: u64 = 20_000;

struct Env {
    _tmp: tempfile::TempDir,
    pipelines: PathBuf,
    db: PathBuf,
    /// The PostgreSQL dataset, when the pipeline loads into the test server instead of DuckDB.
    pg: Option<String>,
}

impl Env {
    fn new() -> Self {
        let tmp = tempfile::tempdir().expect("tmp");
        Self {
            pipelines: tmp.path().join("pipelines"),
            db: tmp.path().join("dest.duckdb"),
            _tmp: tmp,
            pg: None,
        }
    }

    /// Loading into dataset `sluice_crash_<tag>_<pid>` of the test PostgreSQL server.
    fn postgres(tag: &str) -> Self {
        let dataset = format!("sluice_crash_{tag}_{}", std::process::id());
        pg_exec(&format!(
            "DROP SCHEMA IF EXISTS \"{dataset}\" CASCADE; DROP SCHEMA IF EXISTS \"{dataset}_staging\" CASCADE"
        ));
        Self {
            pg: Some(dataset),
            ..Self::new()
        }
    }

    fn command(&self, mode: &str) -> Command {
        let mut c = Command::new(env!("CARGO_BIN_EXE_crash_child"));
        c.arg(mode).arg(&self.pipelines);
        match &self.pg {
            Some(_) => c.arg(pg_url()),
            None => c.arg(&self.db),
        };
        c.arg(plugin_dir()).arg(ROWS.to_string());
        if let Some(ds) = &self.pg {
            c.arg(ds);
        }
        c.stdout(Stdio::piped()).stderr(Stdio::piped());
        c
    }

    /// Runs to completion; returns (pending_only, batch).
    fn run(&self, mode: &str) -> (bool, u64) {
        let out = self.command(mode).output().expect("spawn");
        assert!(
            out.status.success(),
            "a rerun failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let line = String::from_utf8_lossy(&out.stdout);
        let v: Value = serde_json::from_str(line.trim()).expect("child output");
        (
            v["pending_only"].as_bool().unwrap_or(false),
            v["batch"].as_u64().unwrap_or(0),
        )
    }

    /// Starts a run and kills it with SIGKILL after `delay`.
    fn run_killed(&self, mode: &str, delay: Duration) -> bool {
        let mut child = self.command(mode).spawn().expect("spawn");
        std::thread::sleep(delay);
        let finished = child.try_wait().expect("wait").is_some();
        // SAFETY: sending a signal to our own child process.
        unsafe {
            libc::kill(child.id() as i32, libc::SIGKILL);
        }
        let _ = child.wait();
        !finished
    }

    /// Integer results of `sql`, where `"data"` names the dataset.
    fn query(&self, sql: &str) -> Vec<Vec<i64>> {
        if let Some(ds) = &self.pg {
            let sql = sql.replace("\"data\"", &format!("\"{ds}\""));
            return pg_rows(&sql)
                .into_iter()
                .map(|r| {
                    r.into_iter()
                        .map(|v| {
                            v.and_then(|v| v.parse::<f64>().ok())
                                .map_or(0, |f| f as i64)
                        })
                        .collect()
                })
                .collect();
        }
        let con = duckdb::Connection::open(&self.db).expect("open db");
        let mut st = con.prepare(sql).expect("prepare");
        let n = st.column_count();
        let rows = st
            .query_map([], |r| {
                (0..n)
                    .map(|i| r.get::<_, i64>(i))
                    .collect::<Result<Vec<i64>, _>>()
            })
            .expect("query");
        rows.map(|r| r.expect("row")).collect()
    }
}

fn scenario(mode: &str, kills: usize, seed: u64) {
    scenario_in(Env::new(), mode, kills, seed);
}

fn scenario_in(env: Env, mode: &str, kills: usize, seed: u64) {
    // a normal run first, to learn how long a run takes
    let started = Instant::now();
    let (pending, batch) = env.run(mode);
    assert!(!pending);
    assert_eq!(batch, 0);
    let full = started.elapsed();
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    let mut killed_midway = 0;
    for _ in 0..kills {
        let delay = full.mul_f64(rng.random_range(0.02..1.1));
        if env.run_killed(mode, delay) {
            killed_midway += 1;
        }
        // recover: reruns load what is pending, then one run extracts a new batch
        let mut guard = 0;
        loop {
            let (pending_only, _) = env.run(mode);
            guard += 1;
            assert!(guard < 5, "reruns keep loading pending packages");
            if !pending_only {
                break;
            }
        }
    }
    assert!(
        killed_midway * 2 >= kills,
        "too few kills landed while the run was working ({killed_midway} of {kills})"
    );
    let batches = env.query("SELECT count(*) FROM \"data\".\"_dlt_loads\"")[0][0] as u64;
    let distinct_loads =
        env.query("SELECT count(DISTINCT load_id) FROM \"data\".\"_dlt_loads\"")[0][0] as u64;
    assert_eq!(batches, distinct_loads, "a load was recorded twice");
    let rows = env.query("SELECT count(*), count(DISTINCT id) FROM \"data\".\"items\"")[0].clone();
    let per_batch =
        env.query("SELECT batch, count(*) FROM \"data\".\"items\" GROUP BY batch ORDER BY batch");
    let children = env.query("SELECT count(*) FROM \"data\".\"items__tags\"")[0][0];
    let orphans = env.query(
        "SELECT count(*) FROM \"data\".\"items__tags\" t WHERE NOT EXISTS (SELECT 1 FROM \"data\".\"items\" i WHERE i._dlt_id = t._dlt_parent_id)",
    )[0][0];
    assert_eq!(orphans, 0, "child rows without a parent");
    assert_eq!(children, rows[0] * 2, "every row has exactly its two tags");
    match mode {
        "append" => {
            // every batch exactly once
            assert_eq!(per_batch.len() as u64, batches, "{per_batch:?}");
            for (k, b) in per_batch.iter().enumerate() {
                assert_eq!(
                    b,
                    &vec![k as i64, ROWS as i64],
                    "batch {k} loaded {} times the rows",
                    b[1]
                );
            }
            assert_eq!(rows[0], rows[1], "duplicate rows");
        }
        "replace" => {
            // dlt resets a replaced resource's state, so every run extracts batch 0 again: the
            // table must hold exactly one load's rows after each of them
            assert_eq!(
                per_batch,
                vec![vec![0, ROWS as i64]],
                "exactly the last load stays"
            );
            let loads_in_table =
                env.query("SELECT count(DISTINCT _dlt_load_id) FROM \"data\".\"items\"")[0][0];
            assert_eq!(loads_in_table, 1);
        }
        _ => {
            // merge on id: every id once, with the value of the last batch that had it
            assert_eq!(rows[0], rows[1], "duplicate keys after merge");
            let expected_ids = (batches - 1) * (ROWS / 2) + ROWS;
            assert_eq!(rows[1] as u64, expected_ids);
            let stale = env.query(&format!(
                "SELECT count(*) FROM \"data\".\"items\" WHERE batch <> least({last}, (id - id % {half}) / {half})",
                last = batches - 1,
                half = ROWS / 2
            ))[0][0];
            assert_eq!(stale, 0, "rows that were not updated by the latest batch");
        }
    }
    eprintln!(
        "{mode}: {kills} kills ({killed_midway} mid-run), {batches} packages loaded, {} rows",
        rows[0]
    );
}

#[test]
fn sigkill_during_append_loses_nothing_and_duplicates_nothing() {
    scenario("append", 17, 1);
}

#[test]
fn sigkill_during_replace_leaves_exactly_the_last_load() {
    scenario("replace", 17, 2);
}

#[test]
fn sigkill_during_merge_leaves_each_key_once() {
    scenario("merge", 17, 3);
}

#[test]
fn sigkill_during_postgres_loads_loses_nothing_and_duplicates_nothing() {
    for (k, mode) in ["append", "replace", "merge"].into_iter().enumerate() {
        scenario_in(Env::postgres(mode), mode, 8, 10 + k as u64);
    }
}

#[test]
fn a_locked_destination_leaves_the_package_pending_until_a_rerun() {
    let env = Env::new();
    assert!(!env.run("append").0);
    // the next run's source starts another process that holds the database while it loads
    let out = env.command("append-lock").output().expect("spawn");
    let locker: i32 = std::fs::read_to_string(format!("{}.locker", env.db.display()))
        .expect("locker pid")
        .trim()
        .parse()
        .expect("pid");
    assert!(
        !out.status.success(),
        "the load must fail while the database is locked"
    );
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("failed at step `load`"), "{err}");
    assert!(
        err.contains("another process has the database open"),
        "{err}"
    );
    // the package is kept
    let pending = std::fs::read_dir(env.pipelines.join("crash/load/normalized"))
        .expect("pending dir")
        .count();
    assert_eq!(pending, 1);
    // SAFETY: killing the lock holder, a process of this test.
    unsafe {
        libc::kill(locker, libc::SIGKILL);
    }
    std::thread::sleep(Duration::from_millis(200));
    let (pending_only, _) = env.run("append");
    assert!(pending_only, "the rerun loads the pending package first");
    let batches =
        env.query("SELECT count(DISTINCT batch), count(*) FROM \"data\".\"items\"")[0].clone();
    assert_eq!(batches, vec![2, 2 * ROWS as i64]);
}
