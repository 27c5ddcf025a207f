//! The rest_api source end to end: the plugin library loaded through the registry, a real HTTP
//! server in this process on loopback (tiny_http), records loaded into DuckDB.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use sluice::pipeline::{Pipeline, RunOptions};
use sluice_destination_duckdb::duckdb;
use sluice_tests::{duckdb_pipeline, registry};

/// What the handler sees of a request.
#[derive(Debug, Clone)]
struct Req {
    path: String,
    query: HashMap<String, String>,
    headers: HashMap<String, String>,
    body: String,
}

struct Reply {
    status: u16,
    headers: Vec<(String, String)>,
    body: String,
    delay: Option<Duration>,
}

fn ok(v: Value) -> Reply {
    Reply {
        status: 200,
        headers: vec![("Content-Type".into(), "application/json".into())],
        body: v.to_string(),
        delay: None,
    }
}

/// A server on 127.0.0.1 answering with `handler`; returns its base URL.
fn serve(handler: impl Fn(&Req) -> Reply + Send + Sync + 'static) -> String {
    let server = tiny_http::Server::http("127.0.0.1:0").expect("server");
    let port = server.server_addr().to_ip().expect("ip").port();
    let handler = Arc::new(handler);
    std::thread::spawn(move || {
        for mut rq in server.incoming_requests() {
            let handler = handler.clone();
            std::thread::spawn(move || {
                let url = rq.url().to_string();
                let (path, q) = url.split_once('?').unwrap_or((&url, ""));
                let query = q
                    .split('&')
                    .filter(|s| !s.is_empty())
                    .map(|kv| {
                        let (k, v) = kv.split_once('=').unwrap_or((kv, ""));
                        (k.to_string(), v.replace("%3A", ":").replace("%2B", "+"))
                    })
                    .collect();
                let headers = rq
                    .headers()
                    .iter()
                    .map(|h| {
                        (
                            h.field.as_str().as_str().to_ascii_lowercase(),
                            h.value.as_str().to_string(),
                        )
                    })
                    .collect();
                let mut body = String::new();
                let _ = std::io::Read::read_to_string(rq.as_reader(), &mut body);
                let req = Req {
                    path: path.to_string(),
                    query,
                    headers,
                    body,
                };
                let reply = handler(&req);
                if let Some(d) = reply.delay {
                    std::thread::sleep(d);
                }
                let mut resp =
                    tiny_http::Response::from_string(reply.body).with_status_code(reply.status);
                for (k, v) in reply.headers {
                    resp.add_header(
                        tiny_http::Header::from_bytes(k.as_bytes(), v.as_bytes()).expect("header"),
                    );
                }
                let _ = rq.respond(resp);
            });
        }
    });
    format!("http://127.0.0.1:{port}")
}

struct Run {
    _tmp: tempfile::TempDir,
    db: PathBuf,
    pipeline: Pipeline,
}

fn setup() -> Run {
    let tmp = tempfile::tempdir().expect("tmp");
    let db = tmp.path().join("rest.duckdb");
    let pipeline = duckdb_pipeline("rest", "api", &tmp.path().join("pipelines"), &db);
    Run {
        _tmp: tmp,
        db,
        pipeline,
    }
}

impl Run {
    fn run(&mut self, config: Value, secrets: Value) -> Result<sluice::pipeline::LoadInfo, String> {
        let src = registry()
            .load("source", "rest_api")
            .and_then(|p| p.open_source(&config, &secrets))
            .map_err(|e| e.to_string())?;
        self.pipeline
            .run(
                &src,
                &RunOptions {
                    section: Some("rest_api".into()),
                    ..Default::default()
                },
            )
            .map_err(|e| format!("{e:#}"))
    }
    fn q(&self, sql: &str) -> i64 {
        let con = duckdb::Connection::open(&self.db).expect("open");
        con.query_row(sql, [], |r| r.get::<_, i64>(0))
            .unwrap_or_else(|e| panic!("{sql}: {e}"))
    }
    fn count(&self, t: &str) -> i64 {
        self.q(&format!(r#"SELECT count(*) FROM "api"."{t}""#))
    }
}

fn fast_retries(mut c: Value) -> Value {
    c["request_max_attempts"] = json!(3);
    c["request_backoff_factor"] = json!(0.01);
    c["request_timeout"] = json!(2);
    c
}

fn items(from: u64, n: u64) -> Vec<Value> {
    (from..from + n)
        .map(|i| json!({"id": i, "title": format!("item {i}"), "user": {"login": format!("u{}", i % 3)}, "labels": [{"name": "bug"}]}))
        .collect()
}

fn page_of(q: &HashMap<String, String>, key: &str, default: u64) -> u64 {
    q.get(key).and_then(|v| v.parse().ok()).unwrap_or(default)
}

#[test]
fn github_style_link_headers_with_nested_records() {
    let base = Arc::new(Mutex::new(String::new()));
    let b2 = base.clone();
    let url = serve(move |r| {
        let page = page_of(&r.query, "page", 1);
        let mut reply = ok(json!(items(
            (page - 1) * 30 + 1,
            if page < 3 { 30 } else { 10 }
        )));
        if page < 3 {
            let b = b2.lock().expect("lock").clone();
            reply.headers.push(("Link".into(), format!("<{b}/repos/o/r/issues?page={}&per_page=30>; rel=\"next\", <{b}/repos/o/r/issues?page=3>; rel=\"last\"", page + 1)));
        }
        reply
    });
    *base.lock().expect("lock") = url.clone();
    let mut run = setup();
    let info = run
        .run(json!({"client": {"base_url": url}, "resources": [{"name": "issues", "endpoint": {"path": "repos/o/r/issues", "params": {"per_page": 30}}, "primary_key": "id", "write_disposition": "merge"}]}), json!({}))
        .expect("run");
    assert!(!info.has_failed_jobs());
    assert_eq!(run.count("issues"), 70);
    assert_eq!(run.count("issues__labels"), 70);
    assert_eq!(
        run.q(r#"SELECT count(DISTINCT user__login) FROM "api"."issues""#),
        3
    );
}

#[test]
fn stripe_style_cursor_offset_with_total_and_page_numbers() {
    let url = serve(|r| match r.path.as_str() {
        "/v1/charges" => {
            let after = page_of(&r.query, "starting_after", 0);
            let data = items(after + 1, if after < 20 { 10 } else { 5 });
            let last = data.last().and_then(|d| d["id"].as_u64()).unwrap_or(0);
            ok(json!({"object": "list", "data": data, "has_more": after < 20, "next_cursor": last}))
        }
        "/offset" => {
            let off = page_of(&r.query, "offset", 0);
            let lim = page_of(&r.query, "limit", 0);
            let n = lim.min(45u64.saturating_sub(off));
            ok(json!({"total": 45, "results": items(off, n)}))
        }
        "/pages" => {
            let p = page_of(&r.query, "page", 1);
            ok(json!({"total_pages": 4, "page": p, "items": items(p * 100, 7)}))
        }
        _ => Reply {
            status: 404,
            headers: vec![],
            body: "not found".into(),
            delay: None,
        },
    });
    let mut run = setup();
    run.run(
        json!({"client": {"base_url": url}, "resources": [
            {"name": "charges", "endpoint": {"path": "v1/charges", "paginator": {"type": "cursor", "cursor_path": "next_cursor", "cursor_param": "starting_after", "has_more_path": "has_more"}}},
            {"name": "offsets", "endpoint": {"path": "offset", "paginator": {"type": "offset", "limit": 10}}},
            {"name": "numbered", "endpoint": {"path": "pages", "paginator": {"type": "page_number", "base_page": 1, "total_path": "total_pages"}}},
            {"name": "numbered_auto", "endpoint": {"path": "pages"}},
        ]}),
        json!({}),
    )
    .expect("run");
    assert_eq!(run.count("charges"), 25);
    assert_eq!(run.count("offsets"), 45);
    assert_eq!(run.count("numbered"), 28);
    assert_eq!(
        run.count("numbered_auto"),
        28,
        "page_number detected from total_pages"
    );
}

#[test]
fn auth_flows_bearer_api_key_basic_and_oauth2() {
    let token_requests = Arc::new(AtomicUsize::new(0));
    let tr = token_requests.clone();
    let url = serve(move |r| {
        let auth = r.headers.get("authorization").cloned().unwrap_or_default();
        let good = match r.path.as_str() {
            "/token" => {
                tr.fetch_add(1, Ordering::SeqCst);
                let okay = r.body.contains("client_id=cid")
                    && r.body.contains("client_secret=csecret")
                    && r.body.contains("grant_type=client_credentials");
                return if okay {
                    ok(json!({"access_token": "tok-123", "expires_in": 3600}))
                } else {
                    Reply {
                        status: 401,
                        headers: vec![],
                        body: "{}".into(),
                        delay: None,
                    }
                };
            }
            "/bearer" => auth == "Bearer s3cret",
            "/key" => r.query.get("api_key").map(String::as_str) == Some("k3y"),
            "/basic" => auth == "Basic dXNlcjpwYXNz", // user:pass
            "/oauth" => auth == "Bearer tok-123",
            _ => false,
        };
        if good {
            let p = page_of(&r.query, "page", 1);
            ok(
                json!({"data": items(p * 10, 2), "next": if p < 3 { json!(format!("{}?page={}", r.path, p + 1)) } else { Value::Null }}),
            )
        } else {
            Reply {
                status: 401,
                headers: vec![],
                body: "{\"message\": \"Bad credentials\"}".into(),
                delay: None,
            }
        }
    });
    let mut run = setup();
    let res =
        |path: &str| json!([{"name": path.trim_start_matches('/'), "endpoint": {"path": path}}]);
    run.run(
        json!({"client": {"base_url": url}, "resources": res("/bearer")}),
        json!({"auth": {"type": "bearer", "token": "s3cret"}}),
    )
    .expect("bearer");
    run.run(json!({"client": {"base_url": url}, "resources": res("/key")}), json!({"auth": {"type": "api_key", "api_key": "k3y", "name": "api_key", "location": "query"}})).expect("api key");
    run.run(
        json!({"client": {"base_url": url}, "resources": res("/basic")}),
        json!({"auth": {"type": "http_basic", "username": "user", "password": "pass"}}),
    )
    .expect("basic");
    run.run(
        json!({"client": {"base_url": url}, "resources": res("/oauth")}),
        json!({"auth": {"type": "oauth2_client_credentials", "access_token_url": format!("{url}/token"), "client_id": "cid", "client_secret": "csecret"}}),
    )
    .expect("oauth2");
    for t in ["bearer", "key", "basic", "oauth"] {
        assert_eq!(run.count(t), 6, "{t}");
    }
    assert_eq!(
        token_requests.load(Ordering::SeqCst),
        1,
        "the token is cached across pages"
    );
    // a wrong key: a 401 naming the resource and the URL, the key masked
    let e = run
        .run(json!({"client": {"base_url": url}, "resources": res("/key")}), json!({"auth": {"type": "api_key", "api_key": "WRONG-k3y", "name": "api_key", "location": "query"}}))
        .expect_err("401");
    assert!(
        e.contains("resource `key`")
            && e.contains("401")
            && e.contains("/key")
            && e.contains("api_key=***"),
        "{e}"
    );
    assert!(!e.contains("WRONG-k3y"), "secret leaked: {e}");
}

#[test]
fn retries_honour_retry_after_then_succeed() {
    let calls = Arc::new(AtomicUsize::new(0));
    let c = calls.clone();
    let url = serve(move |_| {
        let n = c.fetch_add(1, Ordering::SeqCst);
        match n {
            0 => Reply {
                status: 429,
                headers: vec![("Retry-After".into(), "1".into())],
                body: "slow down".into(),
                delay: None,
            },
            1 => Reply {
                status: 503,
                headers: vec![],
                body: "busy".into(),
                delay: None,
            },
            _ => ok(json!([{"id": 1}, {"id": 2}])),
        }
    });
    let mut run = setup();
    let t = Instant::now();
    run.run(
        fast_retries(json!({"client": {"base_url": url}, "resources": ["things"]})),
        json!({}),
    )
    .expect("run");
    assert!(
        t.elapsed() >= Duration::from_millis(950),
        "Retry-After: 1 was honoured"
    );
    assert_eq!(run.count("things"), 2);
    assert_eq!(calls.load(Ordering::SeqCst), 3);
}

#[test]
fn child_resource_over_100_parents_with_include_from_parent() {
    let url = serve(|r| {
        if r.path == "/repos" {
            let p = page_of(&r.query, "page", 1);
            let data: Vec<Value> = (0..50).map(|i| json!({"id": (p - 1) * 50 + i, "name": format!("repo{}", (p - 1) * 50 + i)})).collect();
            return ok(json!({"items": data, "total_pages": 2}));
        }
        if let Some(rest) = r.path.strip_prefix("/repos/") {
            let id: u64 = rest.trim_end_matches("/stars").parse().unwrap_or(9999);
            if id == 13 {
                return Reply {
                    status: 404,
                    headers: vec![],
                    body: "{\"message\": \"gone\"}".into(),
                    delay: None,
                };
            }
            return ok(
                json!([{"user": format!("s{id}"), "at": "2024-01-01T00:00:00Z"}, {"user": "x", "at": "2024-01-02T00:00:00Z"}]),
            );
        }
        Reply {
            status: 404,
            headers: vec![],
            body: String::new(),
            delay: None,
        }
    });
    let mut run = setup();
    run.run(
        json!({"client": {"base_url": url}, "resources": [
            {"name": "repos", "endpoint": {"path": "repos", "paginator": {"type": "page_number", "base_page": 1, "total_path": "total_pages"}}},
            {"name": "stars", "endpoint": {"path": "repos/{resources.repos.id}/stars", "response_actions": [{"status_code": 404, "action": "ignore"}]},
             "include_from_parent": ["name"]},
        ]}),
        json!({}),
    )
    .expect("run");
    assert_eq!(run.count("repos"), 100);
    assert_eq!(
        run.count("stars"),
        99 * 2,
        "the 404 parent is ignored by its response action"
    );
    assert_eq!(
        run.q(r#"SELECT count(*) FROM "api"."stars" WHERE _repos_name = 'repo7'"#),
        2
    );
}

#[test]
fn incremental_cursor_bound_to_a_query_param_over_two_runs() {
    let seen_since: Arc<Mutex<Vec<String>>> = Arc::default();
    let s2 = seen_since.clone();
    let rows = Arc::new(Mutex::new(vec![
        json!({"id": 1, "updated_at": "2024-01-01T00:00:00Z"}),
        json!({"id": 2, "updated_at": "2024-01-02T00:00:00Z"}),
    ]));
    let r2 = rows.clone();
    let url = serve(move |r| {
        let since = r.query.get("since").cloned().unwrap_or_default();
        s2.lock().expect("lock").push(since.clone());
        let all = r2.lock().expect("lock").clone();
        ok(json!(all
            .into_iter()
            .filter(|x| x["updated_at"].as_str().unwrap_or("") >= since.as_str())
            .collect::<Vec<_>>()))
    });
    let config = json!({"client": {"base_url": url}, "resources": [{"name": "events", "primary_key": "id", "write_disposition": "merge",
        "endpoint": {"path": "events", "incremental": {"cursor_path": "updated_at", "initial_value": "2023-12-31T00:00:00Z", "start_param": "since"}}}]});
    let mut run = setup();
    run.run(config.clone(), json!({})).expect("run 1");
    assert_eq!(run.count("events"), 2);
    rows.lock()
        .expect("lock")
        .push(json!({"id": 3, "updated_at": "2024-01-03T00:00:00Z"}));
    run.run(config, json!({})).expect("run 2");
    assert_eq!(run.count("events"), 3);
    let since = seen_since.lock().expect("lock").clone();
    assert_eq!(
        since,
        vec![
            "2023-12-31T00:00:00Z".to_string(),
            "2024-01-02T00:00:00Z".to_string()
        ]
    );
}

#[test]
fn bad_responses_end_in_clear_errors() {
    let url = serve(|r| match r.path.as_str() {
        "/html" => Reply {
            status: 500,
            headers: vec![("Content-Type".into(), "text/html".into())],
            body: "<html><body><h1>Internal Server Error</h1></body></html>".into(),
            delay: None,
        },
        "/notjson" => Reply {
            status: 200,
            headers: vec![("Content-Type".into(), "text/html".into())],
            body: "<html>maintenance</html>".into(),
            delay: None,
        },
        "/slow" => Reply {
            status: 200,
            headers: vec![],
            body: "[]".into(),
            delay: Some(Duration::from_secs(3)),
        },
        "/forever" => ok(json!({"data": [{"id": 1}], "next": "/forever?page=2"})),
        _ => Reply {
            status: 404,
            headers: vec![],
            body: String::new(),
            delay: None,
        },
    });
    let cases = [
        (
            "/html",
            vec!["resource `html`", "500", "Internal Server Error", "/html"],
        ),
        (
            "/notjson",
            vec!["resource `notjson`", "not JSON", "text/html"],
        ),
        ("/slow", vec!["resource `slow`", "timed out", "/slow"]),
        (
            "/forever",
            vec!["resource `forever`", "second time", "/forever?page=2"],
        ),
    ];
    for (path, needles) in cases {
        let mut run = setup();
        let mut c = fast_retries(
            json!({"client": {"base_url": url}, "resources": [{"name": path.trim_start_matches('/'), "endpoint": {"path": path}}]}),
        );
        c["request_timeout"] = json!(0.5);
        c["request_max_attempts"] = json!(2);
        let e = run.run(c, json!({})).expect_err(path);
        for n in needles {
            assert!(e.contains(n), "{path}: `{n}` not in {e}");
        }
        let tables = run.q("SELECT count(*) FROM information_schema.tables WHERE table_schema = 'api' AND table_name NOT LIKE '_dlt%'");
        assert_eq!(tables, 0, "{path}: nothing loaded");
    }
}

#[test]
fn config_errors_are_named() {
    let e = match registry().load("source", "rest_api").and_then(|p| p.open_source(&json!({"client": {"base_url": "http://x"}, "resources": [{"name": "c", "endpoint": {"path": "a/{resources.nope.id}"}}]}), &json!({}))) {
        Ok(_) => panic!("accepted"),
        Err(e) => e.to_string(),
    };
    assert!(e.contains("`nope`") && e.contains("not a resource"), "{e}");
    let e = match registry().load("source", "rest_api").and_then(|p| p.open_source(&json!({"client": {"base_url": "http://x"}, "resources": [{"name": "c", "endpoint": {"paginator": {"type": "offset"}}}]}), &json!({}))) {
        Ok(_) => panic!("accepted"),
        Err(e) => e.to_string(),
    };
    assert!(e.contains("limit"), "{e}");
}

#[test]
fn dlt_seed_configs_translate_key_for_key() {
    let posted: Arc<Mutex<Vec<Value>>> = Arc::default();
    let p2 = posted.clone();
    let url = serve(move |r| match r.path.as_str() {
        "/orgs/myorg/repos" => {
            assert_eq!(
                r.headers.get("x-team").map(String::as_str),
                Some("data"),
                "resource_defaults headers"
            );
            ok(json!([{"id": 1, "name": "a"}, {"id": 2, "name": "b"}]))
        }
        "/repos/myorg/a/issues" | "/repos/myorg/b/issues" => {
            let since = r.query.get("since").cloned().unwrap_or_default();
            assert_eq!(
                since, "2024-01-01T00:00:00Z",
                "the legacy incremental param sends the initial value"
            );
            ok(json!([{"number": 1, "updated_at": "2024-02-01T00:00:00Z"}]))
        }
        "/search" => {
            let body: Value = serde_json::from_str(&r.body).unwrap_or(Value::Null);
            p2.lock().expect("lock").push(body.clone());
            let page = body["page"]["cursor"].as_str().unwrap_or("");
            match page {
                "" => ok(json!({"hits": [{"k": 1}, {"k": 2}], "next": "c2"})),
                "c2" => ok(json!({"hits": [{"k": 3}], "next": null})),
                _ => ok(json!({"hits": []})),
            }
        }
        _ => Reply {
            status: 404,
            headers: vec![],
            body: String::new(),
            delay: None,
        },
    });
    let mut run = setup();
    run.run(
        json!({
            "client": {"base_url": url},
            "resource_defaults": {"endpoint": {"headers": {"x-team": "data"}}, "write_disposition": "append"},
            "resources": [
                {"name": "repos", "endpoint": {"path": "orgs/{org}/repos", "params": {"org": "myorg"}}},
                {"name": "issues", "endpoint": {
                    "path": "repos/myorg/{repo}/issues",
                    "params": {
                        "repo": {"type": "resolve", "resource": "repos", "field": "name"},
                        "since": {"type": "incremental", "cursor_path": "updated_at", "initial_value": "2024-01-01T00:00:00Z"},
                    }}},
                {"name": "search", "endpoint": {"path": "search", "method": "POST", "json": {"query": "sluice", "size": 2},
                    "data_selector": "hits", "paginator": {"type": "cursor", "cursor_path": "next", "cursor_body_path": "page.cursor"}}},
            ]
        }),
        json!({}),
    )
    .expect("run");
    assert_eq!(run.count("repos"), 2);
    assert_eq!(run.count("issues"), 2);
    assert_eq!(run.count("search"), 3);
    let bodies = posted.lock().expect("lock").clone();
    assert_eq!(bodies[0], json!({"query": "sluice", "size": 2}));
    assert_eq!(bodies[1]["page"]["cursor"], "c2");
}

#[test]
fn the_rate_limit_spaces_requests() {
    let url = serve(|r| {
        let p = page_of(&r.query, "page", 1);
        ok(
            json!({"data": items(p * 10, 3), "next": if p < 5 { json!(format!("/z?page={}", p + 1)) } else { Value::Null }}),
        )
    });
    let mut run = setup();
    let t = Instant::now();
    run.run(json!({"client": {"base_url": url}, "rate_limit": 10, "resources": [{"name": "z", "endpoint": {"path": "z"}}]}), json!({}))
        .expect("run");
    assert_eq!(run.count("z"), 15);
    assert!(
        t.elapsed() >= Duration::from_millis(380),
        "5 requests at 10/s take at least 0.4 s: {:?}",
        t.elapsed()
    );
}

#[test]
fn rate_limits_wait_when_short_and_fail_naming_the_reset_when_long() {
    let calls = Arc::new(AtomicUsize::new(0));
    let c = calls.clone();
    let url = serve(move |r| {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .expect("now")
            .as_secs();
        if r.path == "/long" {
            return Reply {
                status: 403,
                headers: vec![
                    ("x-ratelimit-remaining".into(), "0".into()),
                    ("x-ratelimit-reset".into(), (now + 3600).to_string()),
                ],
                body: "{\"message\": \"API rate limit exceeded\"}".into(),
                delay: None,
            };
        }
        if c.fetch_add(1, Ordering::SeqCst) == 0 {
            // primary limit: remaining 0, reset in a second
            return Reply {
                status: 403,
                headers: vec![
                    ("x-ratelimit-remaining".into(), "0".into()),
                    ("x-ratelimit-reset".into(), (now + 1).to_string()),
                ],
                body: "{\"message\": \"API rate limit exceeded\"}".into(),
                delay: None,
            };
        }
        ok(json!([{"id": 1}]))
    });
    let mut run = setup();
    run.run(
        json!({"client": {"base_url": url}, "resources": ["short"]}),
        json!({}),
    )
    .expect("waited");
    assert_eq!(run.count("short"), 1);
    let e = run
        .run(
            json!({"client": {"base_url": url}, "max_rate_limit_wait": 5, "resources": ["long"]}),
            json!({}),
        )
        .expect_err("too long");
    assert!(
        e.contains("rate limited") && e.contains("resets at") && e.contains("max_rate_limit_wait"),
        "{e}"
    );
}

/// A one-route HTTP/1.1 server that answers every request with gzip-compressed JSON (plain
/// sockets, so the bytes on the wire are exactly these).
fn gzip_server() -> String {
    use std::io::{BufRead, BufReader, Write};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = listener.local_addr().expect("addr").port();
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            std::thread::spawn(move || {
                let _ = stream.set_nodelay(true);
                let Ok(mut w) = stream.try_clone() else {
                    return;
                };
                let mut r = BufReader::new(stream);
                loop {
                    let mut line = String::new();
                    if r.read_line(&mut line).unwrap_or(0) == 0 {
                        return;
                    }
                    let mut accepts_gzip = false;
                    loop {
                        let mut h = String::new();
                        if r.read_line(&mut h).unwrap_or(0) == 0 {
                            return;
                        }
                        if h.trim().is_empty() {
                            break;
                        }
                        if h.to_ascii_lowercase().starts_with("accept-encoding:")
                            && h.contains("gzip")
                        {
                            accepts_gzip = true;
                        }
                    }
                    let page: u64 = line
                        .split_whitespace()
                        .nth(1)
                        .and_then(|u| u.split("page=").nth(1))
                        .and_then(|v| v.parse().ok())
                        .unwrap_or(1);
                    let body = json!({"data": items(page * 10, 3), "next": if page < 3 { json!(format!("/z?page={}", page + 1)) } else { Value::Null }}).to_string();
                    let mut enc =
                        flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
                    enc.write_all(body.as_bytes()).expect("gz");
                    let gz = enc.finish().expect("gz");
                    let (status, payload) = if accepts_gzip {
                        ("200 OK", gz)
                    } else {
                        ("406 Not Acceptable", b"gzip only".to_vec())
                    };
                    let head = format!(
                        "HTTP/1.1 {status}\r\nContent-Type: application/json\r\nContent-Encoding: gzip\r\nContent-Length: {}\r\n\r\n",
                        payload.len()
                    );
                    if w.write_all(head.as_bytes())
                        .and_then(|_| w.write_all(&payload))
                        .is_err()
                    {
                        return;
                    }
                }
            });
        }
    });
    format!("http://127.0.0.1:{port}")
}

#[test]
fn gzip_compressed_responses_are_decoded() {
    let url = gzip_server();
    let mut run = setup();
    run.run(json!({"client": {"base_url": url}, "resources": [{"name": "z", "endpoint": {"path": "z"}}]}), json!({}))
        .expect("run");
    assert_eq!(run.count("z"), 9);
}
