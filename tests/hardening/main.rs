//! Hardening (issue 22): names never become paths, one process writes a working directory at a
//! time, a package the destination refuses does not wedge the pipeline, poison data either loads
//! or fails naming the table, and a full disk loses nothing. Every test here failed on the main
//! branch before these changes.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use sluice::pipeline::{CodeSource, LockMode, Pipeline, Resource, RunOptions};
use sluice_destination_duckdb::duckdb;
use sluice_tests::plugin_dir;

fn builder(name: &str, pipelines: &Path, db: &Path) -> sluice::pipeline::PipelineBuilder {
    Pipeline::builder(name)
        .destination(
            "duckdb",
            sluice_tests::destination(
                "duckdb",
                json!({"credentials": db.to_string_lossy()}),
                json!({}),
            ),
        )
        .dataset_name("data")
        .pipelines_dir(pipelines)
}

fn run_values(
    p: &mut Pipeline,
    table: &str,
    rows: Vec<Value>,
) -> sluice::Result<sluice::pipeline::LoadInfo> {
    let source = CodeSource::new("src", vec![Resource::from_values(table, rows)]);
    p.run(&source, &RunOptions::default())
}

fn count(db: &Path, sql: &str) -> i64 {
    let con = duckdb::Connection::open(db).expect("open db");
    con.query_row(sql, [], |r| r.get::<_, i64>(0)).expect(sql)
}

fn sluice_bin() -> PathBuf {
    plugin_dir().join("sluice")
}

/// `sluice pipeline <name> <args...>` with the given pipelines folder and DuckDB file.
fn pipeline_cmd(pipelines: &Path, db: &Path, name: &str, args: &[&str]) -> std::process::Output {
    Command::new(sluice_bin())
        .env("DESTINATION__DUCKDB__CREDENTIALS", db)
        .arg("pipeline")
        .arg("--pipelines-dir")
        .arg(pipelines)
        .arg(name)
        .args(args)
        .env("SLUICE_PLUGIN_PATH", plugin_dir())
        .output()
        .expect("run sluice")
}

// ---------------------------------------------------------------- 1. names are never paths

#[test]
fn a_pipeline_name_that_is_not_one_folder_is_refused_before_anything_is_touched() {
    let tmp = tempfile::tempdir().expect("tmp");
    let pipelines = tmp.path().join("pipelines");
    std::fs::create_dir_all(&pipelines).expect("mk");
    let precious = tmp.path().join("precious.txt");
    std::fs::write(&precious, "mine").expect("w");
    let home_like = tmp.path().join("home");
    std::fs::create_dir_all(&home_like).expect("mk");
    std::fs::write(home_like.join("notes.txt"), "mine").expect("w");
    let absolute = home_like.to_string_lossy().to_string();
    for name in ["..", "", ".", absolute.as_str(), "../home", "a/b"] {
        // dev mode (--full-refresh) used to remove_dir_all whatever the name joined to
        let e = builder(name, &pipelines, &tmp.path().join("d.duckdb"))
            .dev_mode(true)
            .build()
            .expect_err(name);
        assert!(e.to_string().contains("the pipeline name"), "{name:?}: {e}");
    }
    assert!(
        precious.exists(),
        "the folder above the pipelines folder was touched"
    );
    assert!(
        home_like.join("notes.txt").exists(),
        "an absolute name was followed"
    );
    assert_eq!(std::fs::read_dir(&pipelines).expect("ls").count(), 0);
}

#[test]
fn dev_mode_clears_only_a_working_directory_sluice_wrote() {
    let tmp = tempfile::tempdir().expect("tmp");
    let pipelines = tmp.path().join("pipelines");
    let db = tmp.path().join("d.duckdb");
    {
        let mut p = builder("p", &pipelines, &db).build().expect("build");
        run_values(&mut p, "items", vec![json!({"id": 1})]).expect("run");
    }
    // a working directory holding something sluice did not write is not emptied
    std::fs::write(pipelines.join("p").join("my_notes.txt"), "mine").expect("w");
    let e = builder("p", &pipelines, &db)
        .dev_mode(true)
        .build()
        .expect_err("refused");
    assert!(e.to_string().contains("my_notes.txt"), "{e}");
    assert!(pipelines.join("p").join("my_notes.txt").exists());
    assert!(
        pipelines.join("p").join("state.json").exists(),
        "nothing was deleted"
    );
    // without it, dev mode starts from an empty working directory
    std::fs::remove_file(pipelines.join("p").join("my_notes.txt")).expect("rm");
    let p = builder("p", &pipelines, &db)
        .dev_mode(true)
        .build()
        .expect("dev mode");
    assert!(!pipelines.join("p").join("state.json").exists());
    assert!(
        p.dataset_name().starts_with("data_"),
        "{}",
        p.dataset_name()
    );
}

#[test]
fn a_schema_name_read_from_the_destination_is_checked_before_it_names_a_file() {
    let tmp = tempfile::tempdir().expect("tmp");
    let pipelines = tmp.path().join("pipelines");
    let db = tmp.path().join("d.duckdb");
    {
        let mut p = builder("evil", &pipelines, &db).build().expect("build");
        run_values(&mut p, "items", vec![json!({"id": 1})]).expect("run");
    }
    // a destination whose stored state names a schema `../../x`
    let con = duckdb::Connection::open(&db).expect("open");
    let state: String = con
        .query_row(
            "SELECT state FROM data._dlt_pipeline_state ORDER BY _dlt_load_id DESC LIMIT 1",
            [],
            |r| r.get(0),
        )
        .expect("state");
    let mut v = sluice::pipeline::state::decompress_state(&state).expect("decode");
    v["default_schema_name"] = json!("../../escaped");
    v["_state_version"] = json!(99);
    v["_version_hash"] = json!("changed");
    let packed = sluice::pipeline::state::compress_state(&v).expect("encode");
    con.execute(
        "UPDATE data._dlt_pipeline_state SET state = ?, version = 99",
        [packed],
    )
    .expect("update");
    drop(con);
    std::fs::remove_dir_all(pipelines.join("evil")).expect("rm");
    let mut p = builder("evil", &pipelines, &db).build().expect("build");
    let e = run_values(&mut p, "items", vec![json!({"id": 2})]).expect_err("refused");
    assert!(format!("{e:#}").contains("the schema name"), "{e:#}");
    assert!(!tmp.path().join("escaped.schema.json").exists());
    assert!(!pipelines.join("escaped.schema.json").exists());
    drop(p);

    // a valid schema name whose stored document names itself `../../escaped2`
    let con = duckdb::Connection::open(&db).expect("open");
    v["default_schema_name"] = json!("evil");
    let packed = sluice::pipeline::state::compress_state(&v).expect("encode");
    con.execute("UPDATE data._dlt_pipeline_state SET state = ?", [packed])
        .expect("update");
    con.execute_batch(
        "UPDATE data._dlt_version SET schema = json_merge_patch(schema, '{\"name\": \"../../escaped2\"}')",
    )
    .expect("update schema");
    drop(con);
    std::fs::remove_dir_all(pipelines.join("evil")).expect("rm");
    let mut p = builder("evil", &pipelines, &db).build().expect("build");
    let e = run_values(&mut p, "items", vec![json!({"id": 3})]).expect_err("refused");
    assert!(format!("{e:#}").contains("names itself"), "{e:#}");
    assert!(!pipelines.join("escaped2.schema.json").exists());
    assert!(!tmp.path().join("escaped2.schema.json").exists());
}

#[test]
fn long_and_deep_names_make_short_file_names_and_load() {
    let tmp = tempfile::tempdir().expect("tmp");
    let pipelines = tmp.path().join("pipelines");
    let db = tmp.path().join("d.duckdb");
    let mut p = builder("long", &pipelines, &db).build().expect("build");
    // a 300-character key holding a list: its child table's name is over 255 bytes
    let key = "k".repeat(300);
    // lists nested 100 deep: a chain of 100 nested tables with ever longer names
    let mut deep = json!(1);
    for _ in 0..100 {
        deep = json!([deep]);
    }
    let info = run_values(
        &mut p,
        "items",
        vec![json!({"id": 1, key.clone(): [1, 2, 3], "deep": deep})],
    )
    .expect("loaded");
    assert!(!info.has_failed_jobs());
    let tables = count(
        &db,
        "SELECT count(*) FROM information_schema.tables WHERE table_schema = 'data' AND table_name LIKE 'items\\_\\_%' ESCAPE '\\'",
    );
    assert!(tables >= 100, "nested tables: {tables}");
    let long_table = format!("items__{key}");
    assert_eq!(
        count(&db, &format!("SELECT count(*) FROM data.\"{long_table}\"")),
        3
    );
    // the deepest value made it
    let deepest = count(
        &db,
        "SELECT max(length(table_name)) FROM information_schema.tables WHERE table_schema = 'data'",
    );
    assert!(deepest > 255, "{deepest}");
}

#[test]
fn ten_thousand_tables_from_map_like_keys_load_with_bounded_open_files() {
    let tmp = tempfile::tempdir().expect("tmp");
    let db = tmp.path().join("d.duckdb");
    // each key holds a list: one child table per key
    let mut m = serde_json::Map::new();
    for i in 0..10_000 {
        m.insert(format!("key_{i}"), json!([i]));
    }
    let file = tmp.path().join("wide.jsonl");
    std::fs::write(
        &file,
        json!({"id": 1, "m": Value::Object(m)}).to_string() + "\n",
    )
    .expect("w");
    // in a process allowed 1,024 open files (a common default): one file per table would not fit
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_crash_child"));
    cmd.arg("jsonl-file")
        .arg(tmp.path().join("pipelines"))
        .arg(&db)
        .arg(plugin_dir())
        .arg(&file);
    use std::os::unix::process::CommandExt;
    // SAFETY: setrlimit only, between fork and exec
    unsafe {
        cmd.pre_exec(|| {
            let lim = libc::rlimit {
                rlim_cur: 1024,
                rlim_max: 1024,
            };
            if libc::setrlimit(libc::RLIMIT_NOFILE, &lim) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let out = cmd.output().expect("spawn");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let tables = count(
        &db,
        "SELECT count(*) FROM information_schema.tables WHERE table_schema = 'jsonl_dataset' AND table_name LIKE 'items__m__key_%'",
    );
    assert_eq!(tables, 10_000);
    assert_eq!(
        count(
            &db,
            "SELECT sum(value) FROM jsonl_dataset.items__m__key_9999"
        ),
        9999
    );
}

// ---------------------------------------------------------------- 2. one process per working directory

#[test]
fn a_second_writer_is_refused_and_readers_never_touch_a_running_package() {
    let tmp = tempfile::tempdir().expect("tmp");
    let pipelines = tmp.path().join("pipelines");
    let db = tmp.path().join("d.duckdb");
    let mut p = builder("busy", &pipelines, &db).build().expect("build");
    run_values(&mut p, "items", vec![json!({"id": 1})]).expect("run");
    // a package being written by the run that holds the pipeline
    let new_pkg = pipelines.join("busy/load/new/1.5/jobs");
    std::fs::create_dir_all(&new_pkg).expect("mk");
    std::fs::write(new_pkg.join("items.x.0.parquet"), "being written").expect("w");

    // a second writer in this process
    let e = builder("busy", &pipelines, &db)
        .build()
        .expect_err("second writer");
    let msg = e.to_string();
    assert!(msg.contains("in use by another sluice process"), "{msg}");
    assert!(
        msg.contains(&format!("pid {}", std::process::id())),
        "{msg}"
    );
    // and a reader: refused while the writer runs
    assert!(builder("busy", &pipelines, &db)
        .lock_mode(LockMode::Shared)
        .build()
        .is_err());
    // the CLI: show (a reader) and sync / drop-pending-packages (writers) are refused, naming
    // the holder, and touch nothing
    for args in [
        vec!["show"],
        vec!["sync"],
        vec!["drop-pending-packages"],
        vec!["info"],
    ] {
        let out = pipeline_cmd(&pipelines, &db, "busy", &args);
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{args:?} ran beside the writer");
        assert!(
            err.contains("in use by another sluice process") || err.contains("being written"),
            "{args:?}: {err}"
        );
    }
    assert!(
        new_pkg.join("items.x.0.parquet").exists(),
        "a reader deleted the run's job files"
    );
    // a bounded wait, then the message
    let started = Instant::now();
    let out = pipeline_cmd(&pipelines, &db, "busy", &["--wait", "1", "info"]);
    assert!(!out.status.success());
    assert!(started.elapsed() >= Duration::from_millis(900));
    drop(p);
    // readers share
    let r1 = builder("busy", &pipelines, &db)
        .lock_mode(LockMode::Shared)
        .build()
        .expect("r1");
    let out = pipeline_cmd(&pipelines, &db, "busy", &["show"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("items: 1 rows"));
    assert!(
        builder("busy", &pipelines, &db).build().is_err(),
        "a writer beside a reader"
    );
    drop(r1);
    // the next writer discards what a killed run left half-written
    let _w = builder("busy", &pipelines, &db).build().expect("writer");
    assert!(!new_pkg.exists());
}

#[test]
fn sync_against_an_unreachable_destination_keeps_the_local_state() {
    let tmp = tempfile::tempdir().expect("tmp");
    let pipelines = tmp.path().join("pipelines");
    let db = tmp.path().join("d.duckdb");
    {
        let mut p = builder("kept", &pipelines, &db).build().expect("build");
        run_values(&mut p, "items", vec![json!({"id": 1})]).expect("run");
    }
    let nowhere = tmp.path().join("no/such/folder/d.duckdb");
    let out = pipeline_cmd(&pipelines, &nowhere, "kept", &["sync"]);
    assert!(!out.status.success());
    assert!(
        pipelines.join("kept/state.json").exists(),
        "sync deleted the state before connecting"
    );
    assert!(pipelines.join("kept/schemas").exists());
}

#[test]
fn a_killed_holder_releases_the_lock() {
    let tmp = tempfile::tempdir().expect("tmp");
    let pipelines = tmp.path().join("pipelines");
    let db = tmp.path().join("d.duckdb");
    let mut child = Command::new(env!("CARGO_BIN_EXE_crash_child"))
        .arg("hold-pipeline")
        .arg(&pipelines)
        .arg(&db)
        .arg(plugin_dir())
        .arg("60")
        .stdout(Stdio::piped())
        .spawn()
        .expect("spawn");
    let mut line = String::new();
    use std::io::BufRead;
    std::io::BufReader::new(child.stdout.take().expect("stdout"))
        .read_line(&mut line)
        .expect("read");
    assert_eq!(line.trim(), "locked");
    let e = builder("crash", &pipelines, &db).build().expect_err("held");
    assert!(
        e.to_string().contains(&format!("pid {}", child.id())),
        "{e}"
    );
    // `sluice run` of the same pipeline from a pipeline file: refused, naming the holder
    let data = tmp.path().join("data");
    std::fs::create_dir_all(&data).expect("mk");
    std::fs::write(data.join("items.jsonl"), "{\"id\": 1}\n{\"id\": 2}\n").expect("w");
    let file = tmp.path().join("crash_pipeline.toml");
    std::fs::write(
        &file,
        format!(
            "[pipeline]\nname = \"crash\"\ndestination = \"duckdb\"\ndataset = \"data\"\n[source]\nname = \"filesystem\"\n[source.config]\nbucket_url = \"{}\"\nfile_glob = \"*.jsonl\"\ntable_name = \"items\"\n",
            data.display()
        ),
    )
    .expect("w");
    let sluice_run = || {
        Command::new(sluice_bin())
            .arg("run")
            .arg(&file)
            .arg("--pipelines-dir")
            .arg(&pipelines)
            .arg("--progress")
            .arg("none")
            .env("SLUICE_PLUGIN_PATH", plugin_dir())
            .env("DESTINATION__DUCKDB__CREDENTIALS", &db)
            .current_dir(tmp.path())
            .output()
            .expect("sluice run")
    };
    let out = sluice_run();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "a second run ran beside the first");
    assert!(err.contains(&format!("pid {}", child.id())), "{err}");
    // SAFETY: our own child process
    unsafe {
        libc::kill(child.id() as i32, libc::SIGKILL);
    }
    let _ = child.wait();
    let started = Instant::now();
    drop(
        builder("crash", &pipelines, &db)
            .build()
            .expect("free after the kill"),
    );
    assert!(started.elapsed() < Duration::from_secs(2));
    let out = sluice_run();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(count(&db, "SELECT count(*) FROM data.items"), 2);
}

#[test]
fn concurrent_writes_use_their_own_temp_files() {
    let tmp = tempfile::tempdir().expect("tmp");
    let target = tmp.path().join("state.json");
    let threads: Vec<_> = (0..8)
        .map(|i| {
            let target = target.clone();
            std::thread::spawn(move || {
                for j in 0..50 {
                    let body = format!("{{\"writer\": {i}, \"n\": {j}}}");
                    sluice::pipeline::package::write_atomic(&target, body.as_bytes())
                        .expect("write");
                }
            })
        })
        .collect();
    for t in threads {
        t.join().expect("join");
    }
    // whole documents only, and no temp file left behind
    let v: Value =
        serde_json::from_str(&std::fs::read_to_string(&target).expect("r")).expect("json");
    assert!(v["writer"].is_u64());
    let left: Vec<_> = std::fs::read_dir(tmp.path()).expect("ls").collect();
    assert_eq!(left.len(), 1);
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(&target)
        .expect("meta")
        .permissions()
        .mode()
        & 0o777;
    assert_eq!(mode, 0o600);
}

#[test]
fn working_directories_and_their_files_are_private() {
    use std::os::unix::fs::PermissionsExt;
    let tmp = tempfile::tempdir().expect("tmp");
    let pipelines = tmp.path().join("pipelines");
    let db = tmp.path().join("d.duckdb");
    let mut p = builder("private", &pipelines, &db)
        .delete_completed_jobs(false)
        .build()
        .expect("build");
    run_values(&mut p, "items", vec![json!({"id": 1, "l": [1]})]).expect("run");
    let wd = pipelines.join("private");
    let mode = |p: &Path| std::fs::metadata(p).expect("meta").permissions().mode() & 0o777;
    assert_eq!(mode(&wd), 0o700);
    assert_eq!(mode(&wd.join("state.json")), 0o600);
    assert_eq!(mode(&wd.join("load")), 0o700);
    let loaded = p.storage().loaded().expect("loaded");
    let pkg = p.storage().loaded_dir(&loaded[0]);
    assert_eq!(mode(&pkg.join("package.json")), 0o600);
    for f in std::fs::read_dir(pkg.join("jobs")).expect("jobs") {
        assert_eq!(mode(&f.expect("f").path()), 0o600);
    }
}

// ---------------------------------------------------------------- 6. a bad package does not wedge the pipeline

#[test]
fn a_package_the_destination_refuses_is_marked_failed_and_the_next_run_proceeds() {
    let tmp = tempfile::tempdir().expect("tmp");
    let pipelines = tmp.path().join("pipelines");
    let db = tmp.path().join("d.duckdb");
    let mut p = builder("poison", &pipelines, &db).build().expect("build");
    let resource = |rows: Vec<Value>| {
        Resource::from_values("items", rows).with_state(|_| Some(json!({"seen": true})))
    };
    let good = CodeSource::new("src", vec![resource(vec![json!({"id": 1, "v": "a"})])]);
    p.run(&good, &RunOptions::default()).expect("first load");
    // the table gets a CHECK constraint (as a DBA might add one): the destination refuses rows
    // that break it, for good
    let con = duckdb::Connection::open(&db).expect("open");
    con.execute_batch(
        "CREATE TABLE data.keep AS SELECT * FROM data.items; DROP TABLE data.items; \
         CREATE TABLE data.items (id BIGINT CHECK (id > 0), v VARCHAR, _dlt_load_id VARCHAR NOT NULL, _dlt_id VARCHAR NOT NULL); \
         INSERT INTO data.items SELECT id, v, _dlt_load_id, _dlt_id FROM data.keep; DROP TABLE data.keep;",
    )
    .expect("constraint");
    drop(con);
    let bad = CodeSource::new(
        "src",
        vec![resource(vec![
            json!({"id": 2, "v": "b"}),
            json!({"id": -1, "v": "c"}),
        ])],
    );
    let info = p
        .run(&bad, &RunOptions::default())
        .expect("the run ends with a failed package");
    assert!(info.has_failed_jobs());
    let failed = &info.packages[0];
    assert_eq!(failed.state, "FAILED");
    let (job, message) = &failed.failed_jobs[0];
    assert!(job.contains("items"), "{job}");
    assert!(!message.is_empty());
    assert!(info.to_string().contains("FAILED job"), "{info}");
    assert!(
        p.storage().pending().expect("pending").is_empty(),
        "the package stays pending"
    );
    assert_eq!(p.storage().failed().expect("failed").len(), 1);
    // nothing of it was committed
    assert_eq!(count(&db, "SELECT count(*) FROM data.items"), 1);
    assert_eq!(count(&db, "SELECT count(*) FROM data._dlt_loads"), 1);
    // the CLI lists it
    drop(p);
    let out = pipeline_cmd(&pipelines, &db, "poison", &["failed-jobs"]);
    let listed = String::from_utf8_lossy(&out.stdout);
    assert!(
        listed.contains("(failed)") && listed.contains("items"),
        "{listed}"
    );
    // and the next run proceeds: extracts and loads new data
    let mut p = builder("poison", &pipelines, &db).build().expect("build");
    let next = CodeSource::new("src", vec![resource(vec![json!({"id": 3, "v": "d"})])]);
    let info = p.run(&next, &RunOptions::default()).expect("next run");
    assert!(
        !info.loaded_pending_only && !info.has_failed_jobs(),
        "{info}"
    );
    assert_eq!(count(&db, "SELECT count(*) FROM data.items"), 2);
    assert_eq!(count(&db, "SELECT count(*) FROM data._dlt_loads"), 2);
}

// ---------------------------------------------------------------- 5. bounded input (engine side)

#[test]
fn a_jsonl_line_past_the_cap_is_refused_with_the_resource_and_the_setting() {
    let tmp = tempfile::tempdir().expect("tmp");
    let file = tmp.path().join("one_line.jsonl");
    // no line break at all: 40 MiB
    let body = format!("{{\"a\": \"{}\"}}", "x".repeat(40 << 20));
    std::fs::write(&file, body).expect("w");
    let out = Command::new(env!("CARGO_BIN_EXE_crash_child"))
        .arg("jsonl-file")
        .arg(tmp.path().join("pipelines"))
        .arg(tmp.path().join("d.duckdb"))
        .arg(plugin_dir())
        .arg(&file)
        .env("SLUICE_MAX_LINE_BYTES", (8 << 20).to_string())
        .output()
        .expect("spawn");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(
        err.contains("longer than 8388608 bytes") && err.contains("SLUICE_MAX_LINE_BYTES"),
        "{err}"
    );
}

// ---------------------------------------------------------------- 9. disk full

/// A tmpfs of `size` mounted at `dir` (root only; CI runs as root). None where mounting is not
/// permitted, and the test says so.
struct Tmpfs(PathBuf);

impl Tmpfs {
    fn mount(dir: &Path, size: &str) -> Option<Self> {
        std::fs::create_dir_all(dir).expect("mk");
        let ok = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(dir)
            .status()
            .map(|s| s.success())
            .unwrap_or(false);
        ok.then(|| Self(dir.to_path_buf()))
    }

    fn resize(&self, size: &str) {
        let st = Command::new("mount")
            .args(["-o", &format!("remount,size={size}")])
            .arg(&self.0)
            .status()
            .expect("remount");
        assert!(st.success());
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.0).status();
    }
}

#[test]
fn a_full_disk_fails_clearly_and_the_next_run_loads_everything_once() {
    let tmp = tempfile::tempdir().expect("tmp");
    let small = tmp.path().join("small");
    let Some(fs) = Tmpfs::mount(&small, "2m") else {
        assert_ne!(
            unsafe { libc::geteuid() },
            0,
            "root could not mount a tmpfs for the full-disk test"
        );
        eprintln!("SKIPPED: mounting a tmpfs needs root");
        return;
    };
    let pipelines = small.join("pipelines");
    let db = tmp.path().join("d.duckdb");
    let rows: Vec<Value> = (0..60_000)
        .map(|i| json!({"id": i, "text": format!("row {i} with some text to fill the disk"), "l": [i, i + 1]}))
        .collect();
    {
        let mut p = builder("full", &pipelines, &db).build().expect("build");
        let e = run_values(&mut p, "items", rows.clone()).expect_err("the disk is full");
        let msg = format!("{e:#}");
        assert!(
            msg.contains("disk holding") && msg.contains(&pipelines.display().to_string()),
            "{msg}"
        );
        assert!(
            p.storage().pending().expect("pending").is_empty(),
            "a half-written package was committed"
        );
    }
    assert!(
        !db.exists()
            || count(
                &db,
                "SELECT count(*) FROM information_schema.tables WHERE table_name = 'items'"
            ) == 0
    );
    // space again: the next run loads everything, once
    fs.resize("256m");
    let mut p = builder("full", &pipelines, &db).build().expect("build");
    let info = run_values(&mut p, "items", rows).expect("loaded");
    assert!(!info.has_failed_jobs());
    assert_eq!(count(&db, "SELECT count(*) FROM data.items"), 60_000);
    assert_eq!(count(&db, "SELECT count(*) FROM data.items__l"), 120_000);
    assert_eq!(count(&db, "SELECT count(*) FROM data._dlt_loads"), 1);
}

/// A clone of the repository has nothing beside it: no test, script, benchmark case or pipeline
/// file may name a path outside the repository (the reference data observed from dlt lives in
/// tests/golden). `.ci/run` also runs the whole suite with the folder beside the checkout out
/// of reach.
#[test]
fn nothing_the_tests_and_scripts_run_names_a_path_outside_the_repository() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("repository root")
        .to_path_buf();
    // spelled in pieces so that this file does not match itself
    let shared = ["..", "/shared"].concat();
    let forbidden = [
        format!("{shared}/"),
        ["/work", "/shared"].concat(),
        ["shared/", "golden"].concat(),
        ["shared/", "bench"].concat(),
        ["~/", "bench"].concat(),
    ];
    let mut hits = Vec::new();
    let mut stack = vec![root.clone()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).expect("read dir").flatten() {
            let path = entry.path();
            let name = entry.file_name().to_string_lossy().to_string();
            if path.is_dir() {
                if !name.starts_with('.') || name == ".ci" {
                    if name != "target" && name != "docs" {
                        stack.push(path);
                    }
                }
                continue;
            }
            let code = ["rs", "sh", "py", "toml", "txt", "json", "yaml"]
                .iter()
                .any(|ext| name.ends_with(&format!(".{ext}")))
                || dir.ends_with(".ci");
            if !code {
                continue;
            }
            let Ok(text) = std::fs::read_to_string(&path) else {
                continue;
            };
            for (n, line) in text.lines().enumerate() {
                if forbidden.iter().any(|f| line.contains(f.as_str())) {
                    hits.push(format!(
                        "{}:{}: {}",
                        path.strip_prefix(&root).unwrap_or(&path).display(),
                        n + 1,
                        line.trim()
                    ));
                }
            }
        }
    }
    assert!(
        hits.is_empty(),
        "paths outside the repository:\n{}",
        hits.join("\n")
    );
}
