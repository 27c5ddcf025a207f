//! Secrets never leave (issue 22, section 3): a distinct canary secret in every provider
//! (`.sluice/secrets.toml`, environment variables, the pipeline file's `[source.secrets]`, a
//! connection string's password, a REST bearer token, an api_key sent in the query, a URL's
//! userinfo, S3 and Azure keys), every command of the CLI at `-vvv`, failures forced (a wrong
//! PostgreSQL password against 127.0.0.1:5432, a 401 and a 500 from a local HTTP server, 403s
//! from a local object store, syntax errors in secrets.toml, config.toml and the pipeline file,
//! a secret put in config.toml, a panic inside a plugin), and stdout, stderr and every file sluice
//! wrote (the pipelines folder: trace.json, state, schemas, load packages; the DuckDB files)
//! searched for the canaries: zero hits.
//!
//! Each scenario is its own test; a failure lists every hit with the command (or file) and the
//! line it is in.
//!
//! The plugins are the workspace's own, found next to the binary (`scripts/test.sh` builds them;
//! the panic scenario uses the `sample` test source). `CANARY_SHOW=1` prints every command and
//! its output.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::Output;

use assert_cmd::Command;

mod common;
use common::psql;

/// Every canary has this prefix, so a partly masked one is found too.
const MARK: &str = "cnry-";

const TOML_BEARER: &str = "cnry-toml-bearer-5b1f";
const ENV_BEARER: &str = "cnry-env-bearer-0c7d";
const PIPELINE_API_KEY: &str = "cnry-pipeline-apikey-93ae";
const TOML_API_KEY: &str = "cnry-toml-apikey-77c2";
const URL_USERINFO: &str = "cnry-url-userinfo-4d0b";
const PG_PASSWORD: &str = "cnry-pg-password-e21a";
const ENV_PG_PASSWORD: &str = "cnry-env-pg-password-61f0";
const AWS_KEY_ID: &str = "cnry-aws-key-id-0f3e";
const AWS_SECRET: &str = "cnry-aws-secret-b5d2";
const AWS_SECRET_IN_CONFIG: &str = "cnry-aws-secret-in-config-2c9a";
const AZURE_SAS_SIG: &str = "cnry-azure-sas-sig-8e4d";
const SAMPLE_TOKEN: &str = "cnry-sample-token-3a6b";
const ENV_UNRELATED: &str = "cnry-env-unrelated-d4c8";
const SYNTAX_SECRET: &str = "cnry-syntax-secret-1b9f";
const SYNTAX_CONFIG: &str = "cnry-syntax-config-f60e";
const SYNTAX_PIPELINE: &str = "cnry-syntax-pipeline-2e7a";

/// The Azure account key must be base64: this is `cnry-azure-key-7b2` encoded. Its decoded form
/// carries the common prefix too.
const AZURE_KEY_B64: &str = "Y25yeS1henVyZS1rZXktN2Iy";

fn all_canaries() -> Vec<&'static str> {
    vec![
        TOML_BEARER,
        ENV_BEARER,
        PIPELINE_API_KEY,
        TOML_API_KEY,
        URL_USERINFO,
        PG_PASSWORD,
        ENV_PG_PASSWORD,
        AWS_KEY_ID,
        AWS_SECRET,
        AWS_SECRET_IN_CONFIG,
        AZURE_SAS_SIG,
        AZURE_KEY_B64,
        SAMPLE_TOKEN,
        ENV_UNRELATED,
        SYNTAX_SECRET,
        SYNTAX_CONFIG,
        SYNTAX_PIPELINE,
        MARK,
    ]
}

// ---------------------------------------------------------------------------------------------
// a local HTTP server: REST endpoints and an object store that refuses everyone

/// Serves `/ok/...` (200, a JSON list), `/401/...`, `/500/...`, and answers anything else
/// (the object stores) with 403. Bodies never echo the request.
struct HttpServer {
    port: u16,
}

impl HttpServer {
    fn start() -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let port = listener.local_addr().expect("addr").port();
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                std::thread::spawn(move || {
                    let _ = handle(stream);
                });
            }
        });
        Self { port }
    }

    fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}/{path}", self.port)
    }
}

/// Answers one request on `stream` (every response closes the connection).
fn handle(stream: TcpStream) -> std::io::Result<()> {
    let mut reader = BufReader::new(stream.try_clone()?);
    let mut request_line = String::new();
    if reader.read_line(&mut request_line)? == 0 {
        return Ok(());
    }
    let path = request_line
        .split_whitespace()
        .nth(1)
        .unwrap_or("/")
        .to_string();
    let mut length = 0usize;
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line)? == 0 {
            return Ok(());
        }
        let line = line.trim_end();
        if line.is_empty() {
            break;
        }
        if let Some((k, v)) = line.split_once(':') {
            if k.eq_ignore_ascii_case("content-length") {
                length = v.trim().parse().unwrap_or(0);
            }
        }
    }
    let mut body = vec![0u8; length];
    reader.read_exact(&mut body)?;
    let (status, content_type, text) = if path.starts_with("/ok") {
        (
            "200 OK",
            "application/json",
            r#"[{"id": 1, "name": "one"}, {"id": 2, "name": "two"}]"#,
        )
    } else if path.starts_with("/401") {
        (
            "401 Unauthorized",
            "application/json",
            r#"{"message": "Bad credentials"}"#,
        )
    } else if path.starts_with("/500") {
        (
            "500 Internal Server Error",
            "application/json",
            r#"{"message": "Internal error"}"#,
        )
    } else {
        (
            "403 Forbidden",
            "application/xml",
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?><Error><Code>AccessDenied</Code><Message>Access Denied</Message></Error>",
        )
    };
    let mut out = stream;
    write!(
        out,
        "HTTP/1.1 {status}\r\ncontent-type: {content_type}\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{text}",
        text.len()
    )?;
    out.flush()
}

// ---------------------------------------------------------------------------------------------
// a project folder, the commands run in it, and the search for the canaries

/// One command's output, kept for the search.
struct Ran {
    args: Vec<String>,
    out: Output,
}

struct Project {
    tmp: tempfile::TempDir,
    env: BTreeMap<String, String>,
    ran: Vec<Ran>,
    /// Files this test wrote itself (they hold the canaries on purpose).
    inputs: Vec<PathBuf>,
}

impl Project {
    fn new() -> Self {
        let mut env = BTreeMap::new();
        // present in every command's environment, never used by any plugin
        env.insert("SOURCES__UNRELATED__TOKEN".into(), ENV_UNRELATED.into());
        env.insert("UNRELATED_PASSWORD".into(), ENV_UNRELATED.into());
        Self {
            tmp: tempfile::tempdir().expect("tmp"),
            env,
            ran: Vec::new(),
            inputs: Vec::new(),
        }
    }

    fn dir(&self) -> &Path {
        self.tmp.path()
    }

    fn data(&self) -> PathBuf {
        self.dir().join("data")
    }

    fn write(&mut self, rel: &str, text: &str) {
        let path = self.dir().join(rel);
        if let Some(p) = path.parent() {
            std::fs::create_dir_all(p).expect("mkdir");
        }
        std::fs::write(&path, text).expect("write");
        if !self.inputs.contains(&path) {
            self.inputs.push(path);
        }
    }

    fn set_env(&mut self, k: &str, v: &str) {
        self.env.insert(k.into(), v.into());
    }

    /// `sluice -vvv <args>` in the project folder.
    fn sluice(&mut self, args: &[&str]) -> &Output {
        let mut c = Command::cargo_bin("sluice").expect("binary");
        c.current_dir(self.dir())
            .env("SLUICE_DATA_DIR", self.data())
            .env_remove("SLUICE_PLUGIN_PATH")
            .env_remove("SLUICE_LOG")
            .env_remove("RUST_LOG")
            .env("RUST_BACKTRACE", "1")
            .env("NO_COLOR", "1")
            .envs(&self.env)
            .arg("-vvv")
            .args(args)
            .timeout(std::time::Duration::from_secs(120));
        let out = c.output().expect("run sluice");
        if std::env::var_os("CANARY_SHOW").is_some() {
            eprintln!(
                "$ sluice -vvv {} (exit {:?})\n{}{}",
                args.join(" "),
                out.status.code(),
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            );
        }
        self.ran.push(Ran {
            args: args.iter().map(|a| a.to_string()).collect(),
            out,
        });
        &self.ran.last().expect("ran").out
    }

    /// Runs `sluice pipeline <name> <command>` for every command.
    fn every_pipeline_command(&mut self, name: &str, dataset: &str, table: &str) {
        self.sluice(&["pipeline", "--list"]);
        for cmd in [
            &["info"][..],
            &["show"],
            &["show", table, "--rows", "3"],
            &["query", &format!("SELECT * FROM {dataset}.{table}")],
            &["trace"],
            &["schema"],
            &["schema", "--format", "json"],
            &["load-package"],
            &["failed-jobs"],
            &["drop-pending-packages"],
            &["drop", table],
            // last: a sync that cannot reach the destination has already removed the local
            // state (core/engine/src/pipeline/mod.rs, `Pipeline::sync`)
            &["sync"],
        ] {
            let mut args = vec!["pipeline", name];
            args.extend_from_slice(cmd);
            self.sluice(&args);
        }
    }

    /// Every hit of a canary in the output of the commands run and in the files sluice wrote.
    fn leaks(&self) -> Vec<String> {
        let mut leaks = Vec::new();
        for ran in &self.ran {
            for (stream, bytes) in [("stdout", &ran.out.stdout), ("stderr", &ran.out.stderr)] {
                for hit in hits(bytes) {
                    leaks.push(format!(
                        "`sluice -vvv {}` {stream}: {hit}",
                        ran.args.join(" ")
                    ));
                }
            }
        }
        let mut files = Vec::new();
        walk(self.dir(), &mut files);
        for f in files {
            if self.inputs.contains(&f) {
                continue;
            }
            let Ok(bytes) = std::fs::read(&f) else {
                continue;
            };
            for hit in hits(&bytes) {
                leaks.push(format!("file {}: {hit}", f.display()));
            }
        }
        leaks
    }

    /// Fails with every leak, the command or file and the line it is in.
    fn assert_no_leaks(&self) {
        let leaks = self.leaks();
        assert!(
            leaks.is_empty(),
            "{} canary hit(s):\n{}",
            leaks.len(),
            leaks.join("\n")
        );
    }

    fn text(&self) -> String {
        let ran = self.ran.last().expect("ran");
        format!(
            "{}{}",
            String::from_utf8_lossy(&ran.out.stdout),
            String::from_utf8_lossy(&ran.out.stderr)
        )
    }

    fn code(&self) -> i32 {
        self.ran
            .last()
            .and_then(|r| r.out.status.code())
            .unwrap_or(-1)
    }
}

fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(rd) = std::fs::read_dir(dir) else {
        return;
    };
    for e in rd.flatten() {
        let p = e.path();
        match e.file_type() {
            Ok(t) if t.is_dir() => walk(&p, out),
            Ok(t) if t.is_file() => out.push(p),
            _ => {}
        }
    }
}

/// The lines of `bytes` that hold a canary (each once), shortened.
fn hits(bytes: &[u8]) -> Vec<String> {
    let text = String::from_utf8_lossy(bytes);
    let mut out = Vec::new();
    for line in text.lines() {
        if let Some(c) = all_canaries().into_iter().find(|c| line.contains(c)) {
            let at = line.find(c).unwrap_or(0);
            let start = line[..at]
                .char_indices()
                .rev()
                .nth(160)
                .map_or(0, |(i, _)| i);
            let excerpt: String = line[start..].chars().take(320).collect();
            out.push(format!("[{c}] {excerpt}"));
        }
    }
    // a canary in a binary file (DuckDB, parquet) need not sit on a text line
    if out.is_empty() {
        for c in all_canaries() {
            if bytes.windows(c.len()).any(|w| w == c.as_bytes()) {
                out.push(format!("[{c}] (in binary content)"));
            }
        }
    }
    out
}

fn rest_pipeline(
    name: &str,
    section: &str,
    base_url: &str,
    extra_config: &str,
    extra: &str,
) -> String {
    format!(
        "[pipeline]\nname = \"{name}\"\ndestination = \"duckdb\"\ndataset = \"{name}_data\"\n\n\
         [source]\nname = \"rest_api\"\nsection = \"{section}\"\n\n\
         [source.config]\nrequest_max_attempts = 2\nrequest_backoff_factor = 0\nrequest_timeout = 10\n{extra_config}\n\
         [source.config.client]\nbase_url = \"{base_url}\"\n\n\
         [[source.config.resources]]\nname = \"items\"\nendpoint = {{ path = \"items\", paginator = \"single_page\" }}\nprimary_key = \"id\"\n\n\
         [destination.config]\ncredentials = \"{name}.duckdb\"\n{extra}"
    )
}

fn assert_failed(p: &Project, what: &str) {
    assert_ne!(p.code(), 0, "{what} should fail: {}", p.text());
}

// ---------------------------------------------------------------------------------------------
// the scenarios

/// A 401 with a bearer token from secrets.toml, a 500 with one from the environment: each
/// pipeline loads once from `/ok/`, then its API fails; the run fails and every pipeline command
/// runs over the working directory the failure left.
#[test]
fn rest_401_and_500_do_not_show_the_tokens() {
    let server = HttpServer::start();
    let mut p = Project::new();
    p.write(
        ".sluice/secrets.toml",
        &format!("[sources.api401.auth]\ntype = \"bearer\"\ntoken = \"{TOML_BEARER}\"\n"),
    );
    p.set_env("SOURCES__API500__AUTH__TYPE", "bearer");
    p.set_env("SOURCES__API500__AUTH__TOKEN", ENV_BEARER);
    for (name, section, status) in [("p401", "api401", "401"), ("p500", "api500", "500")] {
        let file = format!("{name}_pipeline.toml");
        p.write(
            &file,
            &rest_pipeline(name, section, &server.url("ok/"), "", ""),
        );
        p.sluice(&["run", &file]);
        assert_eq!(p.code(), 0, "{}", p.text());
        p.write(
            &file,
            &rest_pipeline(name, section, &server.url(&format!("{status}/")), "", ""),
        );
        p.sluice(&["run", &file]);
        assert_failed(&p, status);
        assert!(p.text().contains(status), "{}", p.text());
        p.sluice(&["run", &file, "--json"]);
        assert_failed(&p, status);
        p.every_pipeline_command(name, &format!("{name}_data"), "items");
    }
    p.assert_no_leaks();
}

/// A password in the base URL's userinfo: the URL is named in errors and logs.
#[test]
fn rest_userinfo_is_not_shown() {
    let server = HttpServer::start();
    let mut p = Project::new();
    let with_userinfo =
        |url: String| url.replace("http://", &format!("http://user:{URL_USERINFO}@"));
    p.write(
        "pu_pipeline.toml",
        &rest_pipeline("pu", "apiu", &with_userinfo(server.url("ok/")), "", ""),
    );
    p.sluice(&["run", "pu_pipeline.toml"]);
    assert_eq!(p.code(), 0, "{}", p.text());
    p.write(
        "pu_pipeline.toml",
        &rest_pipeline("pu", "apiu", &with_userinfo(server.url("500/")), "", ""),
    );
    p.sluice(&["run", "pu_pipeline.toml"]);
    assert_failed(&p, "a 500");
    p.every_pipeline_command("pu", "pu_data", "items");
    p.assert_no_leaks();
}

/// An api_key sent in the query, given in the pipeline file's `[source.secrets]` (and one in
/// secrets.toml for a 401): the run loads into DuckDB; then every pipeline command.
#[test]
fn rest_api_key_in_the_query_is_not_shown() {
    let server = HttpServer::start();
    let mut p = Project::new();
    let mut pipeline = rest_pipeline("pq", "apiq", &server.url("ok/"), "", "");
    pipeline.push_str(&format!(
        "\n[source.secrets.auth]\ntype = \"api_key\"\nname = \"api_key\"\nlocation = \"query\"\napi_key = \"{PIPELINE_API_KEY}\"\n"
    ));
    p.write("pq_pipeline.toml", &pipeline);
    p.sluice(&["run", "pq_pipeline.toml"]);
    assert_eq!(p.code(), 0, "{}", p.text());
    p.sluice(&["run", "pq_pipeline.toml", "--json"]);
    assert_eq!(p.code(), 0, "{}", p.text());
    p.every_pipeline_command("pq", "pq_data", "items");

    p.write(
        ".sluice/secrets.toml",
        &format!("[sources.apiq401.auth]\ntype = \"api_key\"\nname = \"key\"\nlocation = \"query\"\napi_key = \"{TOML_API_KEY}\"\n"),
    );
    p.write(
        "pq401_pipeline.toml",
        &rest_pipeline("pq401", "apiq401", &server.url("401/"), "", ""),
    );
    p.sluice(&["run", "pq401_pipeline.toml"]);
    assert_failed(&p, "a 401");
    p.assert_no_leaks();
}

/// A plain list without a paginator: the REST client warns with the URL of the page, which
/// holds the api_key (masked by the REST client's URL redactor).
#[test]
fn rest_api_key_in_the_query_is_not_shown_when_the_paginator_is_guessed() {
    let server = HttpServer::start();
    let mut p = Project::new();
    let pipeline = rest_pipeline("pg", "apig", &server.url("ok/"), "", "")
        .replace(", paginator = \"single_page\"", "");
    p.write(
        ".sluice/secrets.toml",
        &format!("[sources.apig.auth]\ntype = \"api_key\"\nname = \"api_key\"\nlocation = \"query\"\napi_key = \"{TOML_API_KEY}\"\n"),
    );
    p.write("pg_pipeline.toml", &pipeline);
    p.sluice(&["run", "pg_pipeline.toml"]);
    assert_eq!(p.code(), 0, "{}", p.text());
    p.assert_no_leaks();
}

/// A wrong password for the password-checked role of scripts/pg-setup.sh (`sluice_pw`), as a
/// connection string in secrets.toml and as a credentials field from the environment: the
/// pipeline loads once with the right password, then the run and every command that opens the
/// destination fail.
#[test]
fn a_wrong_postgres_password_is_not_shown() {
    let server = HttpServer::start();
    for (i, variant) in ["connection string", "environment field"]
        .into_iter()
        .enumerate()
    {
        let name = format!("canary_pg_{}_{i}", std::process::id());
        let dataset = format!("{name}_data");
        psql(&format!("DROP SCHEMA IF EXISTS {dataset} CASCADE"));
        let mut p = Project::new();
        let pipeline = rest_pipeline(&name, "apipg", &server.url("ok/"), "", "")
            .replace("destination = \"duckdb\"", "destination = \"postgres\"")
            .replace(
                &format!("[destination.config]\ncredentials = \"{name}.duckdb\"\n"),
                "",
            );
        let file = format!("{name}_pipeline.toml");
        p.write(&file, &pipeline);
        let connect = |p: &mut Project, password: &str| {
            match variant {
            "connection string" => p.write(
                ".sluice/secrets.toml",
                &format!("[destination.postgres]\ncredentials = \"postgresql://sluice_pw:{password}@127.0.0.1:5432/test?connect_timeout=5\"\n"),
            ),
            _ => {
                p.write(
                    ".sluice/config.toml",
                    "[destination.postgres.credentials]\nhost = \"127.0.0.1\"\nport = 5432\ndatabase = \"test\"\nusername = \"sluice_pw\"\n",
                );
                p.set_env("DESTINATION__POSTGRES__CREDENTIALS__PASSWORD", password);
            }
        }
        };
        connect(&mut p, "sluice-pw-test");
        p.sluice(&["run", &file]);
        assert_eq!(p.code(), 0, "{variant}: {}", p.text());
        let wrong = if i == 0 { PG_PASSWORD } else { ENV_PG_PASSWORD };
        connect(&mut p, wrong);
        p.sluice(&["run", &file]);
        assert_failed(&p, "a wrong password");
        let t = p.text();
        assert!(
            t.contains("password authentication failed"),
            "{variant}: {t}"
        );
        p.every_pipeline_command(&name, &dataset, "items");
        p.assert_no_leaks();
        psql(&format!("DROP SCHEMA IF EXISTS {dataset} CASCADE"));
    }
}

/// S3 keys from secrets.toml and an Azure key and SAS token against a local object store that
/// answers 403; an S3 secret put in config.toml is refused without being shown.
#[test]
fn object_store_keys_are_not_shown() {
    let server = HttpServer::start();
    let mut p = Project::new();
    let fs_pipeline = |name: &str, section: &str, bucket: &str| {
        format!(
            "[pipeline]\nname = \"{name}\"\ndestination = \"duckdb\"\n\n[source]\nname = \"filesystem\"\nsection = \"{section}\"\n\n\
             [source.config]\nbucket_url = \"{bucket}\"\nfile_glob = \"*.csv\"\n\n[destination.config]\ncredentials = \"{name}.duckdb\"\n"
        )
    };
    p.write(
        ".sluice/secrets.toml",
        &format!(
            "[sources.s3.credentials]\naws_access_key_id = \"{AWS_KEY_ID}\"\naws_secret_access_key = \"{AWS_SECRET}\"\n\n\
             [sources.azkey.credentials]\nazure_storage_account_name = \"devaccount\"\nazure_storage_account_key = \"{AZURE_KEY_B64}\"\n\n\
             [sources.azsas.credentials]\nazure_storage_account_name = \"devaccount\"\nazure_storage_sas_token = \"sv=2022-11-02&ss=b&srt=co&sp=rl&sig={AZURE_SAS_SIG}\"\n"
        ),
    );
    p.write(
        ".sluice/config.toml",
        &format!(
            "[sources.s3.credentials]\nendpoint_url = \"{0}\"\n\n[sources.azkey.credentials]\nendpoint_url = \"{0}\"\n\n[sources.azsas.credentials]\nendpoint_url = \"{0}\"\n\n\
             [sources.s3cfg.credentials]\nendpoint_url = \"{0}\"\naws_access_key_id = \"AKIDEXAMPLE\"\naws_secret_access_key = \"{AWS_SECRET_IN_CONFIG}\"\n",
            server.url("store")
        ),
    );
    for (name, section, bucket) in [
        ("ps3", "s3", "s3://bucket/data"),
        ("pazkey", "azkey", "az://container/data"),
        ("pazsas", "azsas", "az://container/data"),
        ("ps3cfg", "s3cfg", "s3://bucket/data"),
    ] {
        let file = format!("{name}_pipeline.toml");
        p.write(&file, &fs_pipeline(name, section, bucket));
        p.sluice(&["run", &file]);
        assert_failed(&p, name);
    }
    p.assert_no_leaks();
}

/// A panic inside a source plugin that got a token: the panic is reported, the token is not.
#[test]
fn a_panic_in_a_plugin_does_not_show_its_secrets() {
    let exe = assert_cmd::cargo::cargo_bin("sluice");
    let release = exe.parent().expect("profile dir");
    assert!(
        release.join("sample.sluice-plugin.toml").is_file(),
        "the `sample` test source is not built next to {}: run `cargo build --release --workspace` (scripts/test.sh does)",
        exe.display()
    );
    let mut p = Project::new();
    p.write(
        ".sluice/secrets.toml",
        &format!("[sources.sample]\ntoken = \"{SAMPLE_TOKEN}\"\n"),
    );
    p.write(
        "ps_pipeline.toml",
        "[pipeline]\nname = \"ps\"\ndestination = \"duckdb\"\ndataset = \"ps_data\"\n\n[source]\nname = \"sample\"\n\n[source.config]\nrows = 5\n\n[destination.config]\ncredentials = \"ps.duckdb\"\n",
    );
    p.sluice(&["run", "ps_pipeline.toml", "--resources", "numbers"]);
    assert_eq!(p.code(), 0, "{}", p.text());
    for resource in ["panic_on_open", "panic_in_next"] {
        p.sluice(&["run", "ps_pipeline.toml", "--resources", resource]);
        assert_failed(&p, resource);
        assert!(p.text().contains("panicked"), "{}", p.text());
    }
    p.every_pipeline_command("ps", "ps_data", "numbers");
    p.assert_no_leaks();
}

/// Syntax errors in secrets.toml and config.toml name the file, line and column, never the
/// line; every command that reads them says so.
#[test]
fn a_syntax_error_in_secrets_or_config_does_not_show_the_line() {
    let server = HttpServer::start();
    let mut p = Project::new();
    // a working pipeline first, so the pipeline commands have something to open
    p.write(
        ".sluice/secrets.toml",
        &format!("[sources.apis.auth]\ntype = \"bearer\"\ntoken = \"{TOML_BEARER}\"\n"),
    );
    p.write(
        "ps_pipeline.toml",
        &rest_pipeline("ps", "apis", &server.url("ok/"), "", ""),
    );
    p.sluice(&["run", "ps_pipeline.toml"]);
    assert_eq!(p.code(), 0, "{}", p.text());
    let broken = [
        (
            ".sluice/secrets.toml",
            format!("[sources.apis.auth]\ntype = \"bearer\"\ntoken = \"{SYNTAX_SECRET}\n"),
        ),
        (
            ".sluice/secrets.toml",
            format!("[sources.apis.auth]\ntype = \"bearer\"\ntoken = {SYNTAX_SECRET}\n"),
        ),
        (
            ".sluice/secrets.toml",
            format!("[sources.apis.auth]\n{SYNTAX_SECRET}\n"),
        ),
    ];
    for (file, text) in &broken {
        p.write(file, text);
        p.sluice(&["run", "ps_pipeline.toml"]);
        assert_eq!(p.code(), 2, "{}", p.text());
        let t = p.text();
        assert!(
            t.contains("secrets.toml") && t.contains("at line ") && t.contains("column"),
            "{t}"
        );
        for cmd in ["show", "query", "sync"] {
            let mut args = vec!["pipeline", "ps", cmd];
            if cmd == "query" {
                args.push("SELECT 1");
            }
            p.sluice(&args);
        }
    }
    p.write(
        ".sluice/secrets.toml",
        &format!("[sources.apis.auth]\ntype = \"bearer\"\ntoken = \"{TOML_BEARER}\"\n"),
    );
    p.write(
        ".sluice/config.toml",
        &format!("[sources.apis]\nrate_limit = \"{SYNTAX_CONFIG}\nx = 1\n"),
    );
    p.sluice(&["run", "ps_pipeline.toml"]);
    assert_eq!(p.code(), 2, "{}", p.text());
    assert!(p.text().contains("config.toml"), "{}", p.text());
    p.sluice(&["pipeline", "ps", "show"]);
    p.assert_no_leaks();
}

/// A syntax error in the pipeline file itself, on a line of its `[source.secrets]`.
#[test]
fn a_syntax_error_in_the_pipeline_file_does_not_show_the_line() {
    let mut p = Project::new();
    p.write(
        "px_pipeline.toml",
        &format!("[pipeline]\nname = \"px\"\n\n[source]\nname = \"rest_api\"\n\n[source.secrets.auth]\ntype = \"bearer\"\ntoken = \"{SYNTAX_PIPELINE}\n"),
    );
    p.sluice(&["run", "px_pipeline.toml"]);
    assert_eq!(p.code(), 2, "{}", p.text());
    p.assert_no_leaks();
}

/// `sluice init`, `sluice plugins ...` and `sluice completions` with canaries in the
/// environment; and the files `init` writes: secrets.toml 0600 in a 0700 `.sluice/`.
#[test]
fn init_plugins_and_completions_do_not_show_the_environment() {
    use std::os::unix::fs::PermissionsExt;
    let mut p = Project::new();
    p.set_env(
        "SOURCES__SQL_DATABASE__CREDENTIALS",
        &format!("postgresql://u:{PG_PASSWORD}@127.0.0.1/x"),
    );
    p.set_env(
        "DESTINATION__POSTGRES__CREDENTIALS__PASSWORD",
        ENV_PG_PASSWORD,
    );
    p.set_env("SOURCES__REST_API__AUTH__TOKEN", ENV_BEARER);
    p.sluice(&["init", "sql_database", "postgres"]);
    assert_eq!(p.code(), 0, "{}", p.text());
    let dir = p.dir().to_path_buf();
    let mode = |rel: &str| {
        std::fs::metadata(dir.join(rel))
            .expect("stat")
            .permissions()
            .mode()
            & 0o777
    };
    assert_eq!(mode(".sluice"), 0o700);
    assert_eq!(mode(".sluice/secrets.toml"), 0o600);
    // an existing secrets.toml readable by others is replaced by a private one
    std::fs::set_permissions(
        p.dir().join(".sluice/secrets.toml"),
        std::fs::Permissions::from_mode(0o644),
    )
    .expect("chmod");
    p.sluice(&["init", "rest_api", "duckdb", "--yes"]);
    assert_eq!(p.code(), 0, "{}", p.text());
    assert_eq!(mode(".sluice/secrets.toml"), 0o600);
    p.sluice(&["init", "my_api", "duckdb", "--yes"]);
    p.sluice(&["init", "--list-sources"]);
    p.sluice(&["init", "--list-destinations"]);
    p.sluice(&["plugins", "list"]);
    for name in [
        "rest_api",
        "postgres",
        "filesystem",
        "sql_database",
        "duckdb",
    ] {
        p.sluice(&["plugins", "info", name]);
    }
    let exe = assert_cmd::cargo::cargo_bin("sluice");
    let lib = exe
        .parent()
        .expect("dir")
        .join("libsluice_destination_postgres.so");
    p.sluice(&["plugins", "validate", lib.to_str().expect("utf8")]);
    p.sluice(&["completions", "bash"]);
    p.sluice(&["--version"]);
    p.assert_no_leaks();
}

/// The search itself: a canary on a text line, a partly masked one, one inside binary content,
/// and the files the test wrote (which hold the canaries on purpose) left out.
#[test]
fn the_search_finds_every_canary() {
    let line = format!("error: GET http://h/x?key={PIPELINE_API_KEY} failed");
    assert_eq!(hits(line.as_bytes()).len(), 1);
    assert!(hits(line.as_bytes())[0].starts_with(&format!("[{PIPELINE_API_KEY}]")));
    assert_eq!(
        hits(b"token cnry-toml-bea***").len(),
        1,
        "the common prefix"
    );
    let mut binary = vec![0u8, 159, 146, 150];
    binary.extend_from_slice(AWS_SECRET.as_bytes());
    binary.extend_from_slice(&[0, 255]);
    assert_eq!(hits(&binary).len(), 1);
    assert!(hits(b"nothing to see\nhere").is_empty());
    let mut p = Project::new();
    p.write(
        ".sluice/secrets.toml",
        &format!("token = \"{TOML_BEARER}\"\n"),
    );
    std::fs::create_dir_all(p.data().join("pipelines/x")).expect("mkdir");
    std::fs::write(p.data().join("pipelines/x/trace.json"), &line).expect("write");
    let leaks = p.leaks();
    assert_eq!(leaks.len(), 1, "{leaks:?}");
    assert!(leaks[0].contains("trace.json"), "{leaks:?}");
}
