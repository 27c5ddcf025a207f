//! The GitHub source end to end through the CLI, on recorded GitHub API responses
//! (@octokit/fixtures served by @octokit/fixtures-server on 127.0.0.1:3055, started by
//! `scripts/peers.sh start`): `sluice init github duckdb`, fill the config, `sluice run`, check the
//! tables against the fixture, run again incrementally.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use sluice_destination_duckdb::duckdb;

fn bin() -> PathBuf {
    let exe = std::env::current_exe().expect("exe");
    exe.parent()
        .and_then(Path::parent)
        .expect("profile dir")
        .join("sluice")
}

fn sluice(dir: &Path, args: &[&str]) -> Output {
    Command::new(bin())
        .args(args)
        .current_dir(dir)
        .env("SLUICE_DATA_DIR", dir.join("data"))
        .env_remove("SLUICE_PLUGIN_PATH")
        .output()
        .expect("sluice")
}

fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

/// Loads a recorded scenario; returns its base URL (it answers each recorded request once).
fn scenario(name: &str) -> String {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect("127.0.0.1:3055").unwrap_or_else(|_| {
        panic!("@octokit/fixtures-server is not listening on 127.0.0.1:3055: run `bash scripts/peers.sh install && bash scripts/peers.sh start`")
    });
    let body = format!("{{\"scenario\": \"{name}\"}}");
    write!(s, "POST /fixtures HTTP/1.1\r\nHost: 127.0.0.1:3055\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}", body.len()).expect("send");
    let mut out = String::new();
    s.read_to_string(&mut out).expect("read");
    let json = &out[out.find('{').expect("json body")..];
    let v: serde_json::Value =
        serde_json::from_str(json.trim_end_matches(|c: char| c != '}')).expect("fixture json");
    v["url"].as_str().expect("url").to_string()
}

fn configure(dir: &Path, url: &str) {
    std::fs::write(
        dir.join(".sluice/config.toml"),
        format!("[sources.github]\nowner = \"octokit-fixture-org\"\nname = \"paginate-issues\"\nbase_url = \"{url}\"\nitems_per_page = 3\nstate = \"\"\n"),
    )
    .expect("config");
}

#[test]
fn init_run_and_rerun_on_recorded_github_responses() {
    let tmp = tempfile::tempdir().expect("tmp");
    let dir = tmp.path();
    let out = sluice(dir, &["init", "github", "duckdb"]);
    assert!(out.status.success(), "{}", text(&out));
    let secrets = std::fs::read_to_string(dir.join(".sluice/secrets.toml")).expect("secrets");
    assert!(
        secrets.contains("[sources.github]")
            && secrets.contains("access_token = \"<configure me>\""),
        "{secrets}"
    );
    let pipeline =
        std::fs::read_to_string(dir.join("github_pipeline.toml")).expect("pipeline file");
    assert!(
        pipeline.contains("name = \"github\"") && pipeline.contains("# owner ="),
        "{pipeline}"
    );
    // without owner/name the run names what is missing
    let out = sluice(dir, &["run"]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(
        text(&out).contains("`owner`") && text(&out).contains("SOURCES__GITHUB__OWNER"),
        "{}",
        text(&out)
    );
    // fill the config and the token the recording was made with
    configure(dir, &scenario("paginate-issues"));
    std::fs::write(
        dir.join(".sluice/secrets.toml"),
        "[sources.github]\naccess_token = \"0000000000000000000000000000000000000001\"\n",
    )
    .expect("secrets");
    let out = sluice(dir, &["run", "--resources", "issues", "--progress", "log"]);
    let t = text(&out);
    assert!(out.status.success(), "{t}");
    assert!(t.contains("issues: 13 rows"), "{t}");
    let db = dir.join("github_pipeline.duckdb");
    let con = duckdb::Connection::open(&db).expect("db");
    let n: i64 = con
        .query_row(r#"SELECT count(*) FROM github_data.issues"#, [], |r| {
            r.get(0)
        })
        .expect("count");
    assert_eq!(n, 13, "5 pages of 3 issues, the last with 1");
    let users: i64 = con
        .query_row(
            r#"SELECT count(*) FROM github_data.issues WHERE user__login IS NOT NULL"#,
            [],
            |r| r.get(0),
        )
        .expect("users");
    assert_eq!(users, 13);
    drop(con);
    // the second run asks only for what changed: `since` the newest updated_at; the recording has
    // no response for that request, so the run fails naming it, and nothing is loaded twice
    configure(dir, &scenario("paginate-issues"));
    let out = sluice(dir, &["run", "--resources", "issues", "--progress", "none"]);
    let t = text(&out);
    assert!(t.contains("since=2017-10-10T16:00:00Z"), "{t}");
    assert!(
        !t.contains("0000000000000000000000000000000000000001"),
        "the token leaked: {t}"
    );
    let con = duckdb::Connection::open(&db).expect("db");
    let n: i64 = con
        .query_row(r#"SELECT count(*) FROM github_data.issues"#, [], |r| {
            r.get(0)
        })
        .expect("count");
    assert_eq!(n, 13);
}
