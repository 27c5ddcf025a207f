//! The `sluice` binary end to end: every command, the happy paths and the error paths. The
//! plugins are the workspace's own, found next to the binary (`scripts/test.sh` builds them
//! first). Output is snapshotted with temporary paths and timings filtered.

use std::path::{Path, PathBuf};
use std::process::Output;

use assert_cmd::Command;

mod common;
use common::psql;

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("root")
        .to_path_buf()
}

struct Env {
    tmp: tempfile::TempDir,
}

impl Env {
    fn new() -> Self {
        Self {
            tmp: tempfile::tempdir().expect("tmp"),
        }
    }
    fn dir(&self) -> &Path {
        self.tmp.path()
    }
    fn cmd(&self) -> Command {
        let mut c = Command::cargo_bin("sluice").expect("binary");
        c.current_dir(self.dir())
            .env("SLUICE_DATA_DIR", self.dir().join("data"))
            .env_remove("SLUICE_PLUGIN_PATH")
            .env("NO_COLOR", "1");
        c
    }
    fn run(&self, args: &[&str]) -> Output {
        self.cmd().args(args).output().expect("run")
    }
    /// stdout + stderr with the temp dir, load ids, timings and versions made stable.
    fn text(&self, out: &Output) -> String {
        let mut s = String::from_utf8_lossy(&out.stdout).to_string();
        s.push_str(&String::from_utf8_lossy(&out.stderr));
        let s = s.replace(&self.dir().display().to_string(), "[TMP]");
        let s = regex::Regex::new(r"\d{10}\.\d{6}")
            .expect("re")
            .replace_all(&s, "[LOAD_ID]")
            .to_string();
        let s = regex::Regex::new(r"\d+\.\d\d seconds")
            .expect("re")
            .replace_all(&s, "[N] seconds")
            .to_string();
        regex::Regex::new(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z")
            .expect("re")
            .replace_all(&s, "[TIME]")
            .to_string()
    }
    fn copy_sample(&self) {
        let dst = self.dir().join("sample_data");
        std::fs::create_dir_all(&dst).expect("mkdir");
        for f in ["issues.jsonl", "customers.csv", "sample_pipeline.toml"] {
            std::fs::copy(repo_root().join("sample_data").join(f), dst.join(f)).expect("copy");
        }
    }
}

fn code(out: &Output) -> i32 {
    out.status.code().unwrap_or(-1)
}

#[test]
fn version_and_help() {
    let e = Env::new();
    let out = e.run(&["--version"]);
    assert_eq!(code(&out), 0);
    let v = String::from_utf8_lossy(&out.stdout);
    assert!(v.starts_with("sluice ") && v.contains("plugin ABI"), "{v}");
    for sub in [
        &["--help"][..],
        &["run", "--help"],
        &["init", "--help"],
        &["pipeline", "--help"],
        &["plugins", "--help"],
    ] {
        let out = e.run(sub);
        assert_eq!(code(&out), 0, "{sub:?}");
        assert!(!out.stdout.is_empty());
    }
    for sub in ["run", "init", "pipeline", "plugins", "completions"] {
        let out = e.run(&[sub, "--help"]);
        assert!(
            String::from_utf8_lossy(&out.stdout).contains("Example"),
            "{sub} --help has no examples"
        );
    }
    let out = e.run(&["completions", "bash"]);
    assert_eq!(code(&out), 0);
    assert!(String::from_utf8_lossy(&out.stdout).contains("_sluice"));
    let out = e.run(&["no-such-command"]);
    assert_eq!(code(&out), 2);
}

#[test]
fn plugins_list_and_info() {
    let e = Env::new();
    let out = e.run(&["plugins", "list"]);
    assert_eq!(code(&out), 0);
    let t = e.text(&out);
    assert!(
        t.contains("duckdb")
            && t.contains("filesystem")
            && t.contains("destination")
            && t.contains("source"),
        "{t}"
    );
    let out = e.run(&["plugins", "info", "filesystem"]);
    assert_eq!(code(&out), 0);
    assert!(e.text(&out).contains("bucket_url"));
    let out = e.run(&["plugins", "info", "nope"]);
    assert_ne!(code(&out), 0);
}

#[test]
fn quickstart_runs_then_is_a_no_op_and_the_pipeline_can_be_inspected() {
    let e = Env::new();
    e.copy_sample();
    let out = e.run(&[
        "run",
        "sample_data/sample_pipeline.toml",
        "--progress",
        "log",
    ]);
    let t = e.text(&out);
    assert_eq!(code(&out), 0, "{t}");
    assert!(
        t.contains("issues: 120 rows") && t.contains("customers: 200 rows"),
        "{t}"
    );
    assert!(
        t.contains(
            "1 load package(s) were loaded to destination duckdb and into dataset sample_data"
        ),
        "{t}"
    );
    assert!(e.dir().join("sample.duckdb").is_file());
    // no new files: nothing extracted
    let out = e.run(&["run", "sample_data/sample_pipeline.toml", "--json"]);
    assert_eq!(code(&out), 0);
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    assert_eq!(v["packages"].as_array().map(Vec::len), Some(0), "{v}");
    assert_eq!(v["has_failed_jobs"], false);

    let out = e.run(&["pipeline", "--list"]);
    insta::assert_snapshot!(
        "pipeline_list",
        regex::Regex::new(r"\(last run: .*\)")
            .expect("re")
            .replace_all(&e.text(&out), "(last run: [WHEN])")
    );
    let out = e.run(&["pipeline", "sample", "info"]);
    assert_eq!(code(&out), 0);
    let t = e.text(&out);
    assert!(
        t.contains("dataset_name: sample_data")
            && t.contains("tables: ")
            && t.contains("issues__labels"),
        "{t}"
    );
    let out = e.run(&["pipeline", "sample", "show", "customers", "--rows", "2"]);
    let t = e.text(&out);
    assert_eq!(code(&out), 0, "{t}");
    assert!(
        t.contains("customers: 200 rows") && t.contains("customer_id"),
        "{t}"
    );
    let out = e.run(&[
        "pipeline",
        "sample",
        "query",
        "SELECT state, count(*) AS n FROM sample_data.issues GROUP BY 1 ORDER BY 1",
    ]);
    let t = e.text(&out);
    assert_eq!(code(&out), 0, "{t}");
    insta::assert_snapshot!("pipeline_query", t);
    let out = e.run(&["pipeline", "sample", "schema", "--format", "json"]);
    assert_eq!(code(&out), 0);
    let schema: serde_json::Value = serde_json::from_slice(&out.stdout).expect("schema json");
    assert!(
        schema["tables"]["issues__labels"]["parent"] == "issues",
        "{schema}"
    );
    let out = e.run(&["pipeline", "sample", "schema"]);
    assert!(e.text(&out).contains("issues__assignees:"));
    let out = e.run(&["pipeline", "sample", "trace"]);
    assert!(e.text(&out).contains("\"status\": \"ok\""));
    let out = e.run(&["pipeline", "sample", "load-package"]);
    let t = e.text(&out);
    assert!(
        t.contains("is LOADED") && t.contains("job files deleted after the load"),
        "{t}"
    );
    let out = e.run(&["pipeline", "sample", "failed-jobs"]);
    assert!(e.text(&out).contains("no failed jobs"));
    let out = e.run(&["pipeline", "sample", "drop-pending-packages"]);
    assert!(e.text(&out).contains("dropped 0"));
    let out = e.run(&["pipeline", "sample", "sync"]);
    assert_eq!(code(&out), 0, "{}", e.text(&out));
    // drop a resource: its tables go, its file state resets, the next run loads it again
    let out = e.run(&["pipeline", "sample", "drop", "issues"]);
    let t = e.text(&out);
    assert_eq!(code(&out), 0, "{t}");
    assert!(t.contains("issues__labels"), "{t}");
    let out = e.run(&["pipeline", "sample", "query", "SELECT count(*) AS n FROM information_schema.tables WHERE table_schema = 'sample_data' AND table_name LIKE 'issues%'"]);
    assert!(e.text(&out).contains("| 0 "), "{}", e.text(&out));
    let out = e.run(&["pipeline", "sample", "drop", "nope"]);
    assert_eq!(code(&out), 2);
    let out = e.run(&[
        "run",
        "sample_data/sample_pipeline.toml",
        "--progress",
        "log",
    ]);
    let t = e.text(&out);
    assert_eq!(code(&out), 0, "{t}");
    assert!(
        t.contains("issues: 120 rows") && !t.contains("customers: 200"),
        "{t}"
    );
    let out = e.run(&["pipeline", "nope", "info"]);
    assert_eq!(code(&out), 2);
}

#[test]
fn init_scaffolds_and_asks_before_overwriting() {
    let e = Env::new();
    let out = e.run(&["init", "filesystem", "duckdb"]);
    assert_eq!(code(&out), 0, "{}", e.text(&out));
    insta::assert_snapshot!("init_output", e.text(&out));
    let pipeline =
        std::fs::read_to_string(e.dir().join("filesystem_pipeline.toml")).expect("pipeline file");
    insta::assert_snapshot!("init_pipeline_file", pipeline);
    let config = std::fs::read_to_string(e.dir().join(".sluice/config.toml")).expect("config");
    assert!(
        config.contains("bucket_url = \"<configure me>\""),
        "{config}"
    );
    let gi = std::fs::read_to_string(e.dir().join(".gitignore")).expect("gitignore");
    assert!(gi.contains(".sluice/secrets.toml"));
    // running it now names the missing value and every key tried
    let out = e.run(&["run"]);
    let t = e.text(&out);
    assert_eq!(code(&out), 2, "{t}");
    assert!(
        t.contains("missing configuration for source `filesystem`")
            && t.contains("SOURCES__FILESYSTEM__BUCKET_URL"),
        "{t}"
    );
    // the environment fills it in
    std::fs::create_dir_all(e.dir().join("files")).expect("mkdir");
    std::fs::write(e.dir().join("files/a.csv"), "x,y\n1,2\n").expect("write");
    let out = e
        .cmd()
        .args(["run", "filesystem_pipeline.toml"])
        .env("SOURCES__FILESYSTEM__BUCKET_URL", "files")
        .env("SOURCES__FILESYSTEM__FILE_GLOB", "*.csv")
        .output()
        .expect("run");
    assert_eq!(code(&out), 0, "{}", e.text(&out));
    // existing files are not overwritten without --yes
    let out = e.run(&["init", "filesystem", "duckdb"]);
    assert_eq!(code(&out), 2);
    assert!(e.text(&out).contains("--yes"));
    let out = e.run(&["init", "filesystem", "duckdb", "--yes"]);
    assert_eq!(code(&out), 0);
    // unknown destination lists the known ones; unknown source gets the rest_api template
    let out = e.run(&["init", "filesystem", "nodb"]);
    assert_eq!(code(&out), 2);
    assert!(
        e.text(&out).contains("known destinations are: duckdb"),
        "{}",
        e.text(&out)
    );
    let out = e.run(&["init", "my_api", "duckdb", "--yes"]);
    assert_eq!(code(&out), 0);
    let p = std::fs::read_to_string(e.dir().join("my_api_pipeline.toml")).expect("template");
    assert!(
        p.contains("name = \"rest_api\"") && p.contains("base_url"),
        "{p}"
    );
    let out = e.run(&["init", "--list-sources"]);
    assert!(e.text(&out).contains("filesystem"));
    let out = e.run(&["init", "--list-destinations"]);
    assert!(e.text(&out).contains("duckdb"));
}

#[test]
fn error_paths_exit_2_with_clear_messages() {
    let e = Env::new();
    // malformed pipeline file: line and column
    std::fs::write(
        e.dir().join("bad_pipeline.toml"),
        "[pipeline]\nname = \"x\"\ndestination = duckdb\n",
    )
    .expect("write");
    let out = e.run(&["run", "bad_pipeline.toml"]);
    assert_eq!(code(&out), 2);
    insta::assert_snapshot!("malformed_pipeline_file", e.text(&out));
    // unknown source plugin
    std::fs::write(
        e.dir().join("x_pipeline.toml"),
        "[pipeline]\nname = \"x\"\n[source]\nname = \"nosuch\"\n",
    )
    .expect("write");
    let out = e.run(&["run", "x_pipeline.toml"]);
    assert_eq!(code(&out), 2);
    assert!(e.text(&out).contains("nosuch"), "{}", e.text(&out));
    // no pipeline file at all
    let empty = tempfile::tempdir().expect("tmp");
    let out = e
        .cmd()
        .current_dir(empty.path())
        .arg("run")
        .output()
        .expect("run");
    assert_eq!(code(&out), 2);
    assert!(String::from_utf8_lossy(&out.stderr).contains("sluice init"));
    // an unwritable working directory
    std::fs::write(
        e.dir().join("ok_pipeline.toml"),
        "[pipeline]\nname = \"w\"\npipelines_dir = \"/proc/forbidden\"\n[source]\nname = \"filesystem\"\n[source.config]\nbucket_url = \".\"\nfile_glob = \"*.csv\"\n",
    )
    .expect("write");
    let out = e.run(&["run", "ok_pipeline.toml"]);
    assert_eq!(code(&out), 2);
    assert!(
        e.text(&out).contains("cannot create the working directory"),
        "{}",
        e.text(&out)
    );
}

#[test]
fn a_missing_secret_names_every_key_tried_and_plugins_validate() {
    let e = Env::new();
    // a plugin manifest that requires a secret (config is resolved before any library loads)
    let exe = assert_cmd::cargo::cargo_bin("sluice");
    let release = exe.parent().expect("release dir");
    let text =
        std::fs::read_to_string(release.join("filesystem.sluice-plugin.toml")).expect("manifest");
    let lib = release.join("libsluice_source_filesystem.so");
    let text = text
        .replace("name = \"filesystem\"", "name = \"vault\"")
        .replace(
            "\"libsluice_source_filesystem.so\"",
            &format!("{:?}", lib.display().to_string()),
        );
    let (head, tail) = text.split_once("[library]").expect("library section");
    let manifest = format!("{head}[[secrets]]\nkey = \"api_token\"\nrequired = true\ndescription = \"the vault token\"\n\n[library]{tail}");
    let plugins = e.dir().join("plugins");
    std::fs::create_dir_all(&plugins).expect("mkdir");
    std::fs::write(plugins.join("vault.sluice-plugin.toml"), manifest).expect("write");
    std::fs::write(
        e.dir().join("vault_pipeline.toml"),
        "[pipeline]\nname = \"v\"\n[source]\nname = \"vault\"\n[source.config]\nbucket_url = \".\"\nfile_glob = \"*.csv\"\n",
    )
    .expect("write");
    let out = e
        .cmd()
        .args([
            "--plugin-dir",
            plugins.to_str().expect("utf8"),
            "run",
            "vault_pipeline.toml",
        ])
        .output()
        .expect("run");
    let t = e.text(&out);
    assert_eq!(code(&out), 2, "{t}");
    for needle in [
        "`api_token`",
        "(secret)",
        "v.sources.vault.api_token",
        "SOURCES__VAULT__API_TOKEN",
        "V__SOURCES__VAULT__API_TOKEN",
    ] {
        assert!(t.contains(needle), "{needle} not in {t}");
    }
    // given in the environment it is found (and never printed)
    let out = e
        .cmd()
        .args([
            "--plugin-dir",
            plugins.to_str().expect("utf8"),
            "run",
            "vault_pipeline.toml",
        ])
        .env("SOURCES__VAULT__API_TOKEN", "s3cr3t-t0ken")
        .output()
        .expect("run");
    let t = e.text(&out);
    assert!(!t.contains("s3cr3t-t0ken"), "{t}");
    assert!(!t.contains("missing configuration"), "{t}");
    // plugins validate: a real library passes, a non-plugin file is refused with the reason
    let out = e.run(&["plugins", "validate", lib.to_str().expect("utf8")]);
    assert_eq!(code(&out), 0, "{}", e.text(&out));
    let out = e.run(&[
        "plugins",
        "validate",
        e.dir().join("vault_pipeline.toml").to_str().expect("utf8"),
    ]);
    assert_ne!(code(&out), 0, "{}", e.text(&out));
}

/// `sluice init sql_database duckdb`, the secret filled in, `sluice run`: a PostgreSQL table of
/// the machine's server (127.0.0.1:5432, trust auth) lands in DuckDB.
#[test]
fn init_sql_database_duckdb_runs_against_postgres() {
    let schema = format!("sluice_cli_{}", std::process::id());
    psql(&format!(
        "DROP SCHEMA IF EXISTS {schema} CASCADE; CREATE SCHEMA {schema}; CREATE TABLE {schema}.customers (id int PRIMARY KEY, name text, since date); INSERT INTO {schema}.customers SELECT i, 'c' || i, date '2024-01-01' + i FROM generate_series(1, 250) i;"
    ));
    let e = Env::new();
    let out = e.run(&["init", "sql_database", "duckdb"]);
    assert_eq!(code(&out), 0, "{}", e.text(&out));
    let secrets_path = e.dir().join(".sluice/secrets.toml");
    let secrets = std::fs::read_to_string(&secrets_path).expect("secrets");
    assert!(
        secrets.contains("[sources.sql_database]\ncredentials = \"<configure me>\""),
        "{secrets}"
    );
    // not filled in yet: the run says which value is missing
    let out = e.run(&["run"]);
    let t = e.text(&out);
    assert_eq!(code(&out), 2, "{t}");
    assert!(t.contains("credentials"), "{t}");
    std::fs::write(
        &secrets_path,
        secrets.replace(
            "\"<configure me>\"",
            "\"postgresql://postgres@127.0.0.1:5432/test\"",
        ),
    )
    .expect("write secrets");
    let config_path = e.dir().join(".sluice/config.toml");
    let mut config = std::fs::read_to_string(&config_path).expect("config");
    config.push_str(&format!(
        "\n[sources.sql_database]\nschema = \"{schema}\"\n"
    ));
    std::fs::write(&config_path, config).expect("write config");
    let out = e.run(&["run"]);
    let t = e.text(&out);
    assert_eq!(code(&out), 0, "{t}");
    assert!(
        !t.contains("postgresql://postgres@"),
        "no connection string in the output: {t}"
    );
    let out = e.run(&[
        "pipeline",
        "sql_database_pipeline",
        "query",
        "SELECT count(*) AS n, sum(id) AS s, max(since) AS last FROM sql_database_data.customers",
    ]);
    let t = e.text(&out);
    assert_eq!(code(&out), 0, "{t}");
    assert!(
        t.contains("250") && t.contains("31375") && t.contains("2024-09-07"),
        "{t}"
    );
    psql(&format!("DROP SCHEMA {schema} CASCADE"));
}

/// stdout and stderr as printed (no value masked).
fn raw(out: &Output) -> String {
    let mut s = String::from_utf8_lossy(&out.stdout).to_string();
    s.push_str(&String::from_utf8_lossy(&out.stderr));
    s
}

/// `show` and `query` print every type the destinations produce, from a real loaded table (a
/// PostgreSQL table of every kind, loaded by the sql_database source into DuckDB and into
/// PostgreSQL), and on DuckDB every type a query can make of it (timestamp precisions, lists,
/// structs, intervals, hugeints).
#[test]
fn show_and_query_print_every_type_on_duckdb_and_postgres() {
    let pid = std::process::id();
    let src = format!("sluice_types_src_{pid}");
    let dst = format!("sluice_types_dst_{pid}");
    psql(&format!(
        "DROP SCHEMA IF EXISTS {src} CASCADE; DROP SCHEMA IF EXISTS {dst} CASCADE; CREATE SCHEMA {src};
         CREATE TABLE {src}.everything (id int PRIMARY KEY, ts_tz timestamptz, ts timestamp, ts_ms timestamp(3),
           t time, d date, amount numeric(12,4), doc jsonb, blob bytea, tags int[], note text, flag bool,
           ratio float8, big bigint, u uuid, span interval);
         INSERT INTO {src}.everything VALUES
           (1, '2024-01-15 10:30:00+00', '2024-01-15 10:30:00.123456', '2024-01-15 10:30:00.123',
            '12:34:56.789', '2024-02-29', 1234.5678, '{{\"a\": [1, 2]}}', '\\xdeadbeef', '{{1,2,3}}',
            'héllo', true, 0.25, 9007199254740993, 'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11', '1 day 2 hours'),
           (2, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL);"
    ));
    let e = Env::new();
    // the pipelines' credentials as a user sets them; DuckDB's file is `<pipeline name>.duckdb`
    let sluice = |args: &[&str]| {
        e.cmd()
            .args(args)
            .env(
                "SOURCES__SQL_DATABASE__CREDENTIALS",
                "postgresql://postgres@127.0.0.1:5432/test",
            )
            .env(
                "DESTINATION__POSTGRES__CREDENTIALS",
                "postgresql://postgres@127.0.0.1:5432/test",
            )
            .output()
            .expect("sluice")
    };
    for (name, destination) in [("types_duck", "duckdb"), ("types_pg", "postgres")] {
        let file = e.dir().join(format!("{name}.toml"));
        std::fs::write(
            &file,
            format!(
                "[pipeline]\nname = \"{name}\"\ndestination = \"{destination}\"\ndataset = \"{dst}\"\n\n\
                 [source]\nname = \"sql_database\"\n\n[source.config]\nschema = \"{src}\"\n"
            ),
        )
        .expect("pipeline file");
        let out = sluice(&["run", &format!("{name}.toml")]);
        assert_eq!(code(&out), 0, "{destination}: {}", raw(&out));
        // every value as the destination prints it: (column, text on DuckDB, text on PostgreSQL)
        let expected = [
            ("ts_tz", "2024-01-15T10:30:00Z", "2024-01-15 10:30:00+00"),
            (
                "ts",
                "2024-01-15T10:30:00.123456",
                "2024-01-15 10:30:00.123456",
            ),
            (
                "ts_ms",
                "2024-01-15T10:30:00.123",
                "2024-01-15 10:30:00.123",
            ),
            ("t", "12:34:56.789", "12:34:56.789"),
            ("d", "2024-02-29", "2024-02-29"),
            ("amount", "1234.5678", "1234.5678"),
            ("doc", "\"a\"", "\"a\""),
            ("blob", "deadbeef", "\\xdeadbeef"),
            ("tags", "[1,2,3]", "[1, 2, 3]"),
            ("note", "héllo", "héllo"),
            ("big", "9007199254740993", "9007199254740993"),
            (
                "u",
                "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11",
                "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11",
            ),
        ];
        let show = sluice(&["pipeline", name, "show"]);
        let show_text = raw(&show);
        assert_eq!(code(&show), 0, "{destination}: {show_text}");
        assert!(show_text.contains("everything: 2 rows"), "{show_text}");
        for (column, duck, pg) in expected {
            let want = if destination == "duckdb" { duck } else { pg };
            let q = sluice(&[
                "pipeline",
                name,
                "query",
                &format!("SELECT id, \"{column}\" FROM \"{dst}\".\"everything\" ORDER BY id"),
            ]);
            let t = raw(&q);
            assert_eq!(code(&q), 0, "{destination} {column}: {t}");
            assert!(
                t.contains(want),
                "{destination} {column}: expected {want:?} in\n{t}"
            );
            assert!(
                show_text.contains(want),
                "{destination} show {column}: expected {want:?} in\n{show_text}"
            );
        }
    }
    // DuckDB: every type a query makes of the loaded table
    let q = sluice(&[
        "pipeline",
        "types_duck",
        "query",
        &format!(
            "SELECT ts::TIMESTAMP_NS AS ns, ts::TIMESTAMP_MS AS ms, ts::TIMESTAMP_S AS s, \
             ts_tz::TIMESTAMPTZ AS tz, t::TIMETZ AS ttz, \
             [id, id + 1] AS list, {{'a': id, 'b': note}} AS st, MAP {{'k': id}} AS m, span AS iv, \
             INTERVAL 1 DAY AS iv2, 170141183460469231731687303715884105727::HUGEINT AS huge, \
             amount::DECIMAL(38,9) AS wide, u::UUID AS uid, blob AS bin, doc AS j, ratio::FLOAT AS f, \
             ['x', 'y'][1] AS e FROM \"{dst}\".\"everything\" WHERE id = 1"
        ),
    ]);
    let t = raw(&q);
    assert_eq!(code(&q), 0, "{t}");
    for want in [
        "2024-01-15T10:30:00.123456",
        "2024-01-15T10:30:00.123",
        "2024-01-15T10:30:00",
        "| 12:34:56.789 |",
        "{k: 1}",
        "P1DT2H",
        "0.25",
        "[1, 2]",
        "{a: 1, b: héllo}",
        "170141183460469231731687303715884105727",
        "1234.567800000",
        "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11",
        "deadbeef",
        "1 days",
    ] {
        assert!(t.contains(want), "expected {want:?} in\n{t}");
    }
    psql(&format!(
        "DROP SCHEMA {src} CASCADE; DROP SCHEMA IF EXISTS {dst} CASCADE"
    ));
}
