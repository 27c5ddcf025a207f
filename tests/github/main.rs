//! The GitHub source end to end through the CLI, on recorded GitHub API responses
//! (@octokit/fixtures served by @octokit/fixtures-server on 127.0.0.1:3055, started by
//! `scripts/peers.sh start`): `sluice init github duckdb`, fill the config, `sluice run`, check the
//! tables against the fixture, run again incrementally.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use sluice_destination_duckdb::duckdb;

fn bin() -> PathBuf {
    sluice_tests::plugin_dir().join("sluice")
}

fn sluice(dir: &Path, args: &[&str]) -> Output {
    let started = std::time::Instant::now();
    let out = sluice_inner(dir, args);
    eprintln!("sluice {args:?}: {:?}", started.elapsed());
    out
}

fn sluice_inner(dir: &Path, args: &[&str]) -> Output {
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

/// A small GitHub lookalike on loopback: every list endpoint has two pages linked by `Link`. A
/// plain HTTP/1.1 server (keep-alive, TCP_NODELAY, a thread per connection): tiny_http stalled a
/// request now and then under eight concurrent keep-alive clients.
fn github_lookalike() -> String {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = listener.local_addr().expect("addr").port();
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            std::thread::spawn(move || serve_connection(stream, port));
        }
    });
    format!("http://127.0.0.1:{port}")
}

fn serve_connection(stream: std::net::TcpStream, port: u16) {
    use std::io::{BufRead, BufReader, Write};
    let _ = stream.set_nodelay(true);
    let Ok(mut writer) = stream.try_clone() else {
        return;
    };
    let mut reader = BufReader::new(stream);
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line).unwrap_or(0) == 0 {
            return;
        }
        let mut auth_ok = false;
        loop {
            let mut h = String::new();
            if reader.read_line(&mut h).unwrap_or(0) == 0 {
                return;
            }
            if h.trim().is_empty() {
                break;
            }
            if let Some((k, v)) = h.split_once(':') {
                if k.eq_ignore_ascii_case("authorization") && v.trim() == "token t0k" {
                    auth_ok = true;
                }
            }
        }
        let url = line.split_whitespace().nth(1).unwrap_or("/").to_string();
        let (body, link) = respond(&url, port);
        let status = if auth_ok {
            "200 OK"
        } else {
            "401 Unauthorized"
        };
        let link = link.map(|l| format!("Link: {l}\r\n")).unwrap_or_default();
        let head = format!(
            "HTTP/1.1 {status}\r\nContent-Type: application/json\r\n{link}Content-Length: {}\r\n\r\n",
            body.len()
        );
        if writer
            .write_all(format!("{head}{body}").as_bytes())
            .is_err()
        {
            return;
        }
    }
}

fn respond(url: &str, port: u16) -> (String, Option<String>) {
    let (path, q) = url.split_once('?').unwrap_or((url, ""));
    let page: u64 = q
        .split('&')
        .find_map(|kv| kv.strip_prefix("page="))
        .and_then(|v| v.parse().ok())
        .unwrap_or(1);
    let kind = path.trim_start_matches("/repos/o/r/");
    let rows: Vec<serde_json::Value> = (0..3)
        .map(|i| {
            let id = page * 10 + i;
            match kind {
                "issues" => serde_json::json!({"id": id, "number": id, "title": "t", "updated_at": "2024-01-01T00:00:00Z",
                    "user": {"login": "u"}, "labels": [{"name": "bug"}],
                    "pull_request": if i == 0 { serde_json::json!({"url": "http://x/pulls/1"}) } else { serde_json::Value::Null }}),
                "pulls" => serde_json::json!({"id": id, "number": id, "updated_at": "2024-01-01T00:00:00Z", "head": {"ref": "main"}}),
                "issues/comments" | "pulls/comments" => serde_json::json!({"id": id, "body": "b", "updated_at": "2024-01-01T00:00:00Z"}),
                "stargazers" => serde_json::json!({"login": format!("s{id}"), "id": id}),
                "releases" => serde_json::json!({"id": id, "tag_name": format!("v{id}"), "assets": [{"name": "a.tgz"}]}),
                "commits" => serde_json::json!({"sha": format!("{id:040}"), "commit": {"committer": {"date": "2024-01-01T00:00:00Z"}, "message": "m"}, "parents": [{"sha": "p"}]}),
                "events" => serde_json::json!({"id": id.to_string(), "type": if i == 0 { "WatchEvent" } else { "PushEvent" },
                    "created_at": format!("2024-01-0{}T00:00:00Z", 3 - page), "payload": {"commits": [{"sha": "c"}]}}),
                _ => serde_json::Value::Null,
            }
        })
        .collect();
    let link = (page == 1)
        .then(|| format!("<http://127.0.0.1:{port}{path}?per_page=3&page=2>; rel=\"next\""));
    (serde_json::Value::Array(rows).to_string(), link)
}

#[test]
fn every_default_resource_and_its_tables() {
    let t0 = std::time::Instant::now();
    let url = github_lookalike();
    eprintln!("server up {:?}", t0.elapsed());
    let tmp = tempfile::tempdir().expect("tmp");
    let dir = tmp.path();
    assert!(sluice(dir, &["init", "github", "duckdb"]).status.success());
    std::fs::write(
        dir.join(".sluice/config.toml"),
        format!("[sources.github]\nowner = \"o\"\nname = \"r\"\nbase_url = \"{url}\"\nitems_per_page = 3\n"),
    )
    .expect("config");
    std::fs::write(
        dir.join(".sluice/secrets.toml"),
        "[sources.github]\naccess_token = \"t0k\"\n",
    )
    .expect("secrets");
    let out = sluice(dir, &["run", "--progress", "log"]);
    let t = text(&out);
    eprintln!("{t}");
    assert!(out.status.success(), "{t}");
    {
        let con = duckdb::Connection::open(dir.join("github_pipeline.duckdb")).expect("db");
        let count = |t: &str| -> i64 {
            con.query_row(
                &format!(r#"SELECT count(*) FROM github_data."{t}""#),
                [],
                |r| r.get(0),
            )
            .unwrap_or_else(|e| panic!("{t}: {e}"))
        };
        for (table, n) in [
            ("issues", 6),
            ("issues__labels", 6),
            ("pull_requests", 6),
            ("issue_comments", 6),
            ("review_comments", 6),
            ("stargazers", 6),
            ("releases", 6),
            ("releases__assets", 6),
            ("commits", 6),
            ("commits__parents", 6),
            ("watch_event", 2),
            ("push_event", 4),
            ("push_event__payload__commits", 4),
        ] {
            assert_eq!(count(table), n, "{table}");
        }
        // pull requests among the issues are marked
        assert_eq!(
            con.query_row(
                r#"SELECT count(*) FROM github_data.issues WHERE pull_request__url IS NOT NULL"#,
                [],
                |r| r.get::<_, i64>(0)
            )
            .expect("prs"),
            2
        );
    }
    // a wrong token: a 401 naming the resource, the token not printed
    std::fs::write(
        dir.join(".sluice/secrets.toml"),
        "[sources.github]\naccess_token = \"wr0ng-t0ken\"\n",
    )
    .expect("secrets");
    let out = sluice(dir, &["run", "--resources", "stargazers"]);
    let t = text(&out);
    assert_eq!(out.status.code(), Some(1), "{t}");
    assert!(t.contains("401") && t.contains("stargazers"), "{t}");
    assert!(!t.contains("wr0ng-t0ken"), "{t}");
    eprintln!("body done {:?}", t0.elapsed());
}
