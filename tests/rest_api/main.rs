//! The rest_api source end to end: the plugin library loaded through the registry, a real HTTP
//! server in this process on loopback (tiny_http), records loaded into DuckDB.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
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
        self.run_with(config, secrets, None)
            .map_err(|e| format!("{e:#}"))
    }
    /// A run with a page limit (dlt's `add_limit`), keeping the engine's error.
    fn run_with(
        &mut self,
        config: Value,
        secrets: Value,
        limit: Option<u64>,
    ) -> Result<sluice::pipeline::LoadInfo, sluice::Error> {
        let src = registry()
            .load("source", "rest_api")
            .and_then(|p| p.open_source(&config, &secrets))
            .map_err(|e| sluice::Error::Plugin(e.into()))?;
        self.pipeline.run(
            &src,
            &RunOptions {
                section: Some("rest_api".into()),
                limit,
                ..Default::default()
            },
        )
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

/// How many requests each path got.
fn hits(log: &Mutex<Vec<Req>>) -> HashMap<String, u64> {
    let mut out = HashMap::new();
    for r in log.lock().expect("lock").iter() {
        let page = r
            .query
            .get("page")
            .map(|p| format!("?page={p}"))
            .unwrap_or_default();
        *out.entry(format!("{}{page}", r.path)).or_insert(0) += 1;
    }
    out
}

#[test]
fn a_parent_is_requested_once_for_its_table_and_its_children() {
    // repos: 2 pages of 5; stars and details per repo; fans per star (a grandchild)
    let (url, log) = recording_server(|r| {
        let parts: Vec<&str> = r.path.trim_start_matches('/').split('/').collect();
        match parts.as_slice() {
            ["repos"] => {
                let p = page_of(&r.query, "page", 1);
                let data: Vec<Value> = (0..5)
                    .map(|i| json!({"id": (p - 1) * 5 + i, "name": format!("repo{}", (p - 1) * 5 + i)}))
                    .collect();
                ok(json!({"items": data, "total_pages": 2}))
            }
            ["repos", id, "stars"] => {
                ok(json!([{"user": format!("a{id}")}, {"user": format!("b{id}")}]))
            }
            ["repos", id] => ok(json!({"id": id, "detail": true})),
            ["users", user, "fans"] => ok(json!([{"fan": format!("f-{user}")}])),
            _ => Reply {
                status: 404,
                headers: vec![],
                body: String::new(),
                delay: None,
            },
        }
    });
    let config = json!({"client": {"base_url": url}, "resources": [
        {"name": "repos", "endpoint": {"path": "repos", "paginator": {"type": "page_number", "base_page": 1, "total_path": "total_pages"}}},
        {"name": "stars", "endpoint": {"path": "repos/{resources.repos.id}/stars"}, "include_from_parent": ["name"]},
        {"name": "details", "endpoint": {"path": "repos/{id}", "params": {"id": {"type": "resolve", "resource": "repos", "field": "id"}}}},
        {"name": "fans", "endpoint": {"path": "users/{resources.stars.user}/fans"}},
    ]});
    let mut run = setup();
    run.run(config.clone(), json!({})).expect("run");
    assert_eq!(run.count("repos"), 10);
    assert_eq!(run.count("stars"), 20);
    assert_eq!(
        run.q(
            r#"SELECT count(*) FROM "api"."stars" WHERE _repos_name = 'repo7' AND "user" = 'a7'"#
        ),
        1
    );
    assert_eq!(run.count("details"), 10);
    assert_eq!(run.count("fans"), 20);
    let seen = hits(&log);
    // dlt forks a parent's items to its transformers: each page and record is requested once
    assert_eq!(seen.get("/repos?page=1"), Some(&1), "{seen:?}");
    assert_eq!(seen.get("/repos?page=2"), Some(&1), "{seen:?}");
    for id in 0..10 {
        assert_eq!(
            seen.get(&format!("/repos/{id}/stars")),
            Some(&1),
            "{seen:?}"
        );
        assert_eq!(seen.get(&format!("/repos/{id}")), Some(&1), "{seen:?}");
        assert_eq!(
            seen.get(&format!("/users/a{id}/fans")),
            Some(&1),
            "{seen:?}"
        );
    }
    assert_eq!(seen.values().sum::<u64>(), 2 + 10 + 10 + 20, "{seen:?}");

    // the parent not selected: it is still requested once for the two streams that need it
    log.lock().expect("lock").clear();
    let mut run = setup();
    let src = registry()
        .load("source", "rest_api")
        .and_then(|p| p.open_source(&config, &json!({})))
        .expect("source");
    run.pipeline
        .run(
            &src,
            &RunOptions {
                section: Some("rest_api".into()),
                resources: Some(vec!["stars".into(), "fans".into()]),
                ..Default::default()
            },
        )
        .expect("run");
    assert_eq!(run.count("stars"), 20);
    assert_eq!(run.count("fans"), 20);
    let seen = hits(&log);
    assert_eq!(seen.get("/repos?page=1"), Some(&1), "{seen:?}");
    assert_eq!(seen.get("/repos?page=2"), Some(&1), "{seen:?}");
    assert_eq!(seen.get("/repos/3/stars"), Some(&1), "{seen:?}");
    assert_eq!(seen.values().sum::<u64>(), 2 + 10 + 20, "{seen:?}");

    // one after another (sequential extract), each stream walks on its own and loads the same
    log.lock().expect("lock").clear();
    let mut run = setup();
    run.pipeline
        .run(
            &src,
            &RunOptions {
                section: Some("rest_api".into()),
                sequential: true,
                ..Default::default()
            },
        )
        .expect("run");
    assert_eq!(run.count("repos"), 10);
    assert_eq!(run.count("stars"), 20);
    assert_eq!(run.count("details"), 10);
    assert_eq!(run.count("fans"), 20);
    // (the counting sees repeats: there, each of the four streams walked the parent itself)
    assert_eq!(hits(&log).get("/repos?page=1"), Some(&4));
}

#[test]
fn a_failing_child_fails_the_run_with_its_error_and_loads_nothing() {
    // many parent pages, a child that fails on one of them: no hang, the child's error
    let (url, _log) = recording_server(|r| {
        if r.path == "/repos" {
            let p = page_of(&r.query, "page", 1);
            let data: Vec<Value> = (0..5).map(|i| json!({"id": (p - 1) * 5 + i})).collect();
            return ok(json!({"items": data, "total_pages": 40}));
        }
        if r.path == "/repos/3/stars" {
            return Reply {
                status: 400,
                headers: vec![],
                body: "{\"message\": \"bad\"}".into(),
                delay: None,
            };
        }
        ok(json!([{"user": "u"}]))
    });
    let mut run = setup();
    let e = run
        .run(
            fast_retries(json!({"client": {"base_url": url}, "resources": [
                {"name": "repos", "endpoint": {"path": "repos", "paginator": {"type": "page_number", "base_page": 1, "total_path": "total_pages"}}},
                {"name": "stars", "endpoint": {"path": "repos/{resources.repos.id}/stars"}},
            ]})),
            json!({}),
        )
        .expect_err("the child fails");
    assert!(e.contains("400"), "{e}");
    let tables = run.q("SELECT count(*) FROM information_schema.tables WHERE table_schema = 'api' AND table_name NOT LIKE '_dlt%'");
    assert_eq!(tables, 0, "nothing loaded");
}

// ---------------------------------------------------------------------------------------------
// Hostile servers (issue 22): credentials stay with their origin, paths cannot be steered,
// bodies and page walks are bounded, waits and settings cannot panic, silence ends in a timeout.

/// Everything a request showed a server: path, query, headers (for grepping secrets).
fn seen_text(r: &Req) -> String {
    format!("{} {:?} {:?} {}", r.path, r.query, r.headers, r.body)
}

/// A server answering with `handler` that records every request it gets.
fn recording_server(
    handler: impl Fn(&Req) -> Reply + Send + Sync + 'static,
) -> (String, Arc<Mutex<Vec<Req>>>) {
    let log: Arc<Mutex<Vec<Req>>> = Arc::default();
    let l2 = log.clone();
    let url = serve(move |r| {
        l2.lock().expect("lock").push(r.clone());
        handler(r)
    });
    (url, log)
}

#[test]
fn credentials_reach_the_base_url_origin_only() {
    // B: another origin (another port of 127.0.0.1) that every route of A points to
    let (b_url, b_log) = recording_server(|r| {
        if r.path.ends_with("/list") {
            ok(json!([{"id": 101}]))
        } else {
            ok(json!({"data": [{"id": 100}], "next": null}))
        }
    });
    let b = b_url.clone();
    let (a_url, a_log) = recording_server(move |r| match r.path.as_str() {
        "/token" => ok(json!({"access_token": "T-oauth-secret", "expires_in": 3600})),
        // a json_link next link to B that echoes the query key
        "/json" => ok(
            json!({"data": [{"id": 1}], "next": format!("{b}/b/json?api_key=K-query-secret&page=2")}),
        ),
        // a Link header to B
        "/link" => {
            let mut reply = ok(json!([{"id": 2}]));
            reply
                .headers
                .push(("Link".into(), format!("<{b}/b/list?page=2>; rel=\"next\"")));
            reply
        }
        // a redirect to B that echoes the query key
        "/redirect" => Reply {
            status: 302,
            headers: vec![(
                "Location".into(),
                format!("{b}/b/redirected?api_key=K-query-secret"),
            )],
            body: String::new(),
            delay: None,
        },
        _ => Reply {
            status: 404,
            headers: vec![],
            body: String::new(),
            delay: None,
        },
    });
    let secrets = [
        (
            "bearer",
            json!({"type": "bearer", "token": "T-bearer-secret"}),
            "T-bearer-secret",
        ),
        (
            "header_key",
            json!({"type": "api_key", "name": "X-Api-Key", "api_key": "K-header-secret"}),
            "K-header-secret",
        ),
        (
            "query_key",
            json!({"type": "api_key", "name": "api_key", "location": "query", "api_key": "K-query-secret"}),
            "K-query-secret",
        ),
        (
            "basic",
            json!({"type": "http_basic", "username": "user", "password": "P-basic-secret"}),
            "dXNlcjpQLWJhc2ljLXNlY3JldA==",
        ),
        (
            "oauth",
            json!({"type": "oauth2_client_credentials", "access_token_url": format!("{a_url}/token"), "client_id": "cid", "client_secret": "C-client-secret"}),
            "T-oauth-secret",
        ),
    ];
    let config = |extra_origins: Value| {
        json!({"client": {"base_url": a_url, "auth_origins": extra_origins,
                   "headers": {"Accept": "application/json", "X-Session-Token": "H-header-secret"}},
        "resources": [
            {"name": "json", "endpoint": {"path": "json", "paginator": "json_link"}},
            {"name": "link", "endpoint": {"path": "link", "paginator": "header_link"}},
            {"name": "redirect", "endpoint": {"path": "redirect"}},
        ]})
    };
    for (kind, auth, on_the_wire) in &secrets {
        a_log.lock().expect("lock").clear();
        b_log.lock().expect("lock").clear();
        let mut run = setup();
        run.run(config(json!([])), json!({"auth": auth}))
            .unwrap_or_else(|e| panic!("{kind}: {e}"));
        assert_eq!(run.count("json"), 2, "{kind}");
        assert_eq!(run.count("link"), 2, "{kind}");
        assert_eq!(run.count("redirect"), 1, "{kind}");
        let a = a_log.lock().expect("lock").clone();
        let b = b_log.lock().expect("lock").clone();
        assert_eq!(
            b.len(),
            3,
            "{kind}: B got the next link, the Link header and the redirect"
        );
        let a_text: String = a
            .iter()
            .filter(|r| r.path != "/token")
            .map(seen_text)
            .collect();
        assert!(
            a_text.contains(on_the_wire),
            "{kind}: A got the credentials: {a_text}"
        );
        assert!(
            a_text.contains("H-header-secret"),
            "{kind}: A got the configured headers"
        );
        for r in &b {
            let t = seen_text(r);
            // (A's links echo `api_key=K-query-secret`: only the query_key run owns that key)
            for secret in [
                *on_the_wire,
                "H-header-secret",
                "C-client-secret",
                "authorization",
                "x-api-key",
                "x-session-token",
            ] {
                assert!(
                    !t.to_ascii_lowercase()
                        .contains(&secret.to_ascii_lowercase()),
                    "{kind}: `{secret}` reached B: {t}"
                );
            }
            if *kind == "query_key" {
                assert!(
                    !r.query.contains_key("api_key"),
                    "{kind}: the key reached B: {t}"
                );
            }
            assert_eq!(
                r.headers.get("accept").map(String::as_str),
                Some("application/json"),
                "{kind}: content negotiation goes anywhere"
            );
        }
    }
    // an origin the user lists gets them
    let (kind, auth, on_the_wire) = &secrets[0];
    b_log.lock().expect("lock").clear();
    let mut run = setup();
    run.run(config(json!([b_url])), json!({"auth": auth}))
        .unwrap_or_else(|e| panic!("{kind}: {e}"));
    let b: String = b_log.lock().expect("lock").iter().map(seen_text).collect();
    assert!(
        b.contains(on_the_wire) && b.contains("H-header-secret"),
        "{b}"
    );
    // a 401 from the other origin says why the credentials were not sent
    let (c_url, _) = recording_server(|_| Reply {
        status: 401,
        headers: vec![],
        body: "{}".into(),
        delay: None,
    });
    let c = c_url.clone();
    let (d_url, _) =
        recording_server(move |_| ok(json!({"data": [{"id": 1}], "next": format!("{c}/more")})));
    let e = setup()
        .run(json!({"client": {"base_url": d_url}, "resources": [{"name": "x", "endpoint": {"path": "x", "paginator": "json_link"}}]}),
             json!({"auth": {"token": "T"}}))
        .expect_err("401");
    assert!(e.contains("401") && e.contains("auth_origins"), "{e}");
}

#[test]
fn parent_values_cannot_steer_child_requests() {
    let (url, log) = recording_server(|r| match r.path.as_str() {
        "/parents" => ok(
            json!([{"id": "../../admin"}, {"id": "https://evil.example/x"}, {"id": "a b?c=1#d"}, {"id": 42}]),
        ),
        "/dots" => ok(json!([{"id": ".."}])),
        p if p.starts_with("/items/") => ok(json!([{"ok": true}])),
        _ => ok(json!([{"pwned": true}])),
    });
    let config = |parents: &str| {
        json!({"client": {"base_url": url}, "resources": [
            {"name": "parents", "endpoint": {"path": parents}},
            {"name": "details", "endpoint": {"path": "items/{resources.parents.id}/detail"}},
        ]})
    };
    let mut run = setup();
    run.run(config("parents"), json!({"auth": {"token": "T-secret"}}))
        .expect("run");
    let mut paths: Vec<String> = log
        .lock()
        .expect("lock")
        .iter()
        .filter(|r| r.path != "/parents")
        .inspect(|r| {
            assert_eq!(
                r.headers.get("authorization").map(String::as_str),
                Some("Bearer T-secret")
            )
        })
        .map(|r| r.path.clone())
        .collect();
    paths.sort();
    assert_eq!(
        paths,
        vec![
            "/items/..%2F..%2Fadmin/detail",
            "/items/42/detail",
            "/items/a%20b%3Fc%3D1%23d/detail",
            "/items/https%3A%2F%2Fevil.example%2Fx/detail",
        ]
    );
    assert_eq!(run.count("details"), 4);
    // `..` alone cannot be encoded away (URL parsing resolves it): refused
    let e = setup().run(config("dots"), json!({})).expect_err("climbs");
    assert!(
        e.contains("resource `details`") && e.contains("climb"),
        "{e}"
    );
}

/// A raw HTTP/1.1 server: reads each request's head, then `respond` writes whatever it likes
/// on the socket (so a test controls every byte and its timing).
fn raw_server(
    respond: impl Fn(&str, &mut std::net::TcpStream) -> std::io::Result<()> + Send + Sync + 'static,
) -> String {
    use std::io::{BufRead, BufReader};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = listener.local_addr().expect("addr").port();
    let respond = Arc::new(respond);
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            let respond = respond.clone();
            std::thread::spawn(move || {
                let Ok(mut w) = stream.try_clone() else {
                    return;
                };
                let mut r = BufReader::new(stream);
                loop {
                    let mut line = String::new();
                    if r.read_line(&mut line).unwrap_or(0) == 0 {
                        return;
                    }
                    loop {
                        let mut h = String::new();
                        if r.read_line(&mut h).unwrap_or(0) == 0 {
                            return;
                        }
                        if h.trim().is_empty() {
                            break;
                        }
                    }
                    if respond(&line, &mut w).is_err() {
                        return;
                    }
                }
            });
        }
    });
    format!("http://127.0.0.1:{port}")
}

/// Streams `total` bytes of JSON whitespace after `head`, counting what the socket took.
fn stream_body(
    w: &mut std::net::TcpStream,
    head: &str,
    total: u64,
    sent: &AtomicU64,
) -> std::io::Result<()> {
    use std::io::Write;
    w.write_all(head.as_bytes())?;
    let chunk = vec![b' '; 64 << 10];
    let mut left = total;
    while left > 0 {
        let n = left.min(chunk.len() as u64) as usize;
        w.write_all(&chunk[..n])?;
        sent.fetch_add(n as u64, Ordering::SeqCst);
        left -= n as u64;
    }
    Err(std::io::Error::other("done"))
}

#[test]
fn a_2_gb_body_is_refused_at_the_cap_without_reading_it() {
    const TWO_GB: u64 = 2 << 30;
    let sent = Arc::new(AtomicU64::new(0));
    let s2 = sent.clone();
    let url = raw_server(move |line, w| {
        let head = if line.contains("/sized") {
            format!("HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {TWO_GB}\r\n\r\n")
        } else {
            // no length: the body runs until the connection closes
            "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nConnection: close\r\n\r\n".into()
        };
        stream_body(w, &head, TWO_GB, &s2)
    });
    // with its Content-Length, at the default cap: refused before reading
    let t = Instant::now();
    let e = setup()
        .run(json!({"client": {"base_url": url}, "resources": [{"name": "big", "endpoint": {"path": "sized", "params": {"api_key": "K-secret"}}}]}), json!({}))
        .expect_err("too big");
    assert!(
        e.contains("resource `big`")
            && e.contains("max_response_bytes")
            && e.contains("536870912")
            && e.contains("/sized")
            && e.contains("Content-Length 2147483648"),
        "{e}"
    );
    assert!(!e.contains("K-secret"), "{e}");
    assert!(t.elapsed() < Duration::from_secs(10), "{:?}", t.elapsed());
    // without one, at a 1 MiB cap: refused once past it, having read about that much
    std::thread::sleep(Duration::from_millis(200));
    sent.store(0, Ordering::SeqCst);
    let e = setup()
        .run(json!({"client": {"base_url": url}, "max_response_bytes": 1048576, "resources": [{"name": "endless", "endpoint": {"path": "unsized"}}]}), json!({}))
        .expect_err("too big");
    assert!(
        e.contains("max_response_bytes (1048576 bytes)") && e.contains("/unsized"),
        "{e}"
    );
    std::thread::sleep(Duration::from_millis(200));
    let n = sent.load(Ordering::SeqCst);
    assert!(
        n < 64 << 20,
        "the server got {n} bytes out: the body was read on past the cap"
    );
}

#[test]
fn a_gzip_bomb_is_refused() {
    use std::io::Write;
    // 256 MiB of zeros in about 256 KiB of gzip
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    let zeros = vec![b' '; 1 << 20];
    for _ in 0..256 {
        enc.write_all(&zeros).expect("gz");
    }
    let bomb = Arc::new(enc.finish().expect("gz"));
    assert!(bomb.len() < 1 << 20);
    let b2 = bomb.clone();
    let url = raw_server(move |_, w| {
        let head = format!(
            "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Encoding: gzip\r\nContent-Length: {}\r\n\r\n",
            b2.len()
        );
        w.write_all(head.as_bytes())?;
        w.write_all(&b2)
    });
    let e = setup()
        .run(json!({"client": {"base_url": url}, "max_response_bytes": 4194304, "resources": [{"name": "bomb", "endpoint": {"path": "bomb"}}]}), json!({}))
        .expect_err("bomb");
    assert!(
        e.contains("resource `bomb`")
            && e.contains("max_response_bytes (4194304 bytes)")
            && e.contains("gzip")
            && e.contains("/bomb"),
        "{e}"
    );
}

#[test]
fn endless_pages_stop_at_max_pages_or_the_users_limit() {
    let calls = Arc::new(AtomicUsize::new(0));
    let c2 = calls.clone();
    // every page has a fresh cursor: the repeat check never fires
    let url = serve(move |r| {
        c2.fetch_add(1, Ordering::SeqCst);
        let n = page_of(&r.query, "cursor", 0);
        ok(json!({"data": [{"id": n}], "next_cursor": (n + 1).to_string()}))
    });
    let config = |max_pages: Option<u64>| {
        let mut c = json!({"client": {"base_url": url}, "resources": [{"name": "endless", "endpoint": {"path": "endless",
            "paginator": {"type": "cursor", "cursor_path": "next_cursor", "cursor_param": "cursor"}}}]});
        if let Some(m) = max_pages {
            c["max_pages"] = json!(m);
        }
        c
    };
    let e = setup()
        .run(config(Some(25)), json!({}))
        .expect_err("endless");
    assert!(
        e.contains("resource `endless`")
            && e.contains("max_pages (25)")
            && e.contains("/endless?cursor=25"),
        "{e}"
    );
    assert_eq!(calls.load(Ordering::SeqCst), 25);
    // the user's limit stops it cleanly, with the default cap
    calls.store(0, Ordering::SeqCst);
    let mut run = setup();
    run.run_with(config(None), json!({}), Some(10))
        .expect("limited");
    assert_eq!(run.count("endless"), 10);
    assert_eq!(calls.load(Ordering::SeqCst), 10);
}

#[test]
fn a_slow_body_and_a_redirect_loop_end_in_clear_errors() {
    use std::io::Write;
    let hops = Arc::new(AtomicUsize::new(0));
    let h2 = hops.clone();
    let url = raw_server(move |line, w| {
        if line.contains("/trickle") {
            // headers at once, then one byte every 200 ms: never done
            w.write_all(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n[")?;
            loop {
                std::thread::sleep(Duration::from_millis(200));
                w.write_all(b" ")?;
            }
        }
        h2.fetch_add(1, Ordering::SeqCst);
        let to = if line.contains("/loop/a") {
            "/loop/b"
        } else {
            "/loop/a"
        };
        w.write_all(format!("HTTP/1.1 302 Found\r\nLocation: {to}?api_key=K-secret\r\nContent-Length: 0\r\n\r\n").as_bytes())
    });
    let t = Instant::now();
    let e = setup()
        .run(json!({"client": {"base_url": url}, "request_timeout": 1, "request_max_attempts": 2, "request_backoff_factor": 0.01,
                    "resources": [{"name": "trickle", "endpoint": {"path": "trickle"}}]}), json!({}))
        .expect_err("slow");
    assert!(
        e.contains("resource `trickle`")
            && e.contains("timed out after 1s")
            && e.contains("after 2 attempts"),
        "{e}"
    );
    assert!(t.elapsed() < Duration::from_secs(8), "{:?}", t.elapsed());
    let e = setup()
        .run(json!({"client": {"base_url": url}, "resources": [{"name": "loop", "endpoint": {"path": "loop/a"}}]}), json!({}))
        .expect_err("loop");
    assert!(
        e.contains("resource `loop`") && e.contains("redirect loop") && e.contains("/loop/a"),
        "{e}"
    );
    assert!(!e.contains("K-secret"), "{e}");
    assert_eq!(
        hops.load(Ordering::SeqCst),
        11,
        "the first request and 10 redirects"
    );
}

#[test]
fn infinite_or_huge_waits_and_extreme_settings_are_errors_not_panics() {
    let url = serve(|r| {
        let (k, v) = match r.path.as_str() {
            "/inf" => ("Retry-After", "inf".to_string()),
            "/huge" => ("Retry-After", "1e300".to_string()),
            "/date" => ("Retry-After", "Fri, 31 Dec 9999 23:59:59 GMT".to_string()),
            _ => ("x-ratelimit-reset", i64::MAX.to_string()),
        };
        let mut headers = vec![(k.to_string(), v)];
        if r.path == "/reset" {
            headers.push(("x-ratelimit-remaining".into(), "0".into()));
        }
        Reply {
            status: 429,
            headers,
            body: "{}".into(),
            delay: None,
        }
    });
    for path in ["inf", "huge", "date", "reset"] {
        let e = setup()
            .run(fast_retries(json!({"client": {"base_url": url}, "resources": [{"name": path, "endpoint": {"path": path}}]})), json!({}))
            .expect_err(path);
        assert!(
            e.contains("rate limited") && e.contains("max_rate_limit_wait") && !e.contains("panic"),
            "{path}: {e}"
        );
    }
    for (key, value) in [
        ("request_timeout", json!(1e300)),
        ("request_timeout", json!(-1)),
        ("request_timeout", json!(0)),
        ("request_max_retry_delay", json!(1e300)),
        ("max_rate_limit_wait", json!(1e300)),
        ("request_backoff_factor", json!(-1)),
        ("rate_limit", json!(1e-300)),
        ("rate_limit", json!(-5)),
    ] {
        let mut c = json!({"client": {"base_url": url}, "resources": ["x"]});
        c[key] = value.clone();
        let e = match registry()
            .load("source", "rest_api")
            .and_then(|p| p.open_source(&c, &json!({})))
        {
            Ok(_) => panic!("{key} = {value} accepted"),
            Err(e) => e.to_string(),
        };
        assert!(
            e.contains(&format!("`{key}`")) && !e.contains("panic"),
            "{key} = {value}: {e}"
        );
    }
}

/// A TCP proxy to `upstream` that, while `blackhole` is set, forwards the first 200 bytes of
/// the answer to any request for `page=2` and then goes silent, holding the connection open:
/// a network that stops mid-page.
fn blackhole_proxy(upstream: &str, blackhole: Arc<AtomicBool>) -> String {
    use std::io::{Read, Write};
    let upstream = upstream.trim_start_matches("http://").to_string();
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = listener.local_addr().expect("addr").port();
    std::thread::spawn(move || {
        for client in listener.incoming().flatten() {
            let Ok(server) = std::net::TcpStream::connect(&upstream) else {
                continue;
            };
            let cut = Arc::new(AtomicBool::new(false));
            let (mut c_in, mut s_out) = (
                client.try_clone().expect("clone"),
                server.try_clone().expect("clone"),
            );
            let (cut1, hole) = (cut.clone(), blackhole.clone());
            std::thread::spawn(move || {
                let mut buf = [0u8; 16384];
                while let Ok(n) = c_in.read(&mut buf) {
                    if n == 0 {
                        return;
                    }
                    if hole.load(Ordering::SeqCst)
                        && String::from_utf8_lossy(&buf[..n]).contains("page=2")
                    {
                        cut1.store(true, Ordering::SeqCst);
                    }
                    if s_out.write_all(&buf[..n]).is_err() {
                        return;
                    }
                }
            });
            let (mut s_in, mut c_out) = (server, client);
            std::thread::spawn(move || {
                let mut buf = [0u8; 16384];
                let mut after_cut = 0usize;
                while let Ok(n) = s_in.read(&mut buf) {
                    if n == 0 {
                        return;
                    }
                    let n = if cut.load(Ordering::SeqCst) {
                        let room = 200usize.saturating_sub(after_cut);
                        after_cut += n;
                        n.min(room)
                    } else {
                        n
                    };
                    if n > 0 && c_out.write_all(&buf[..n]).is_err() {
                        return;
                    }
                }
            });
        }
    });
    format!("http://127.0.0.1:{port}")
}

#[test]
fn a_network_that_goes_silent_mid_page_fails_retryably_and_the_next_run_loads_once() {
    let backend = serve(|r| {
        let p = page_of(&r.query, "page", 1);
        ok(
            json!({"data": items((p - 1) * 50, 50), "next": if p < 3 { json!(format!("/items?page={}", p + 1)) } else { Value::Null }}),
        )
    });
    let hole = Arc::new(AtomicBool::new(true));
    let proxy = blackhole_proxy(&backend, hole.clone());
    let config = json!({"client": {"base_url": proxy}, "request_timeout": 1, "request_max_attempts": 2, "request_backoff_factor": 0.01,
        "resources": [{"name": "items", "endpoint": {"path": "items", "paginator": "json_link"}}]});
    let mut run = setup();
    let t = Instant::now();
    let e = run
        .run_with(config.clone(), json!({}), None)
        .expect_err("silent network");
    let msg = format!("{e:#}");
    assert!(e.is_retryable(), "retryable: {msg}");
    assert!(
        msg.contains("resource `items`") && msg.contains("timed out") && msg.contains("page=2"),
        "{msg}"
    );
    // two attempts of one second each
    assert!(t.elapsed() < Duration::from_secs(10), "{:?}", t.elapsed());
    hole.store(false, Ordering::SeqCst);
    let info = run.run_with(config, json!({}), None).expect("the next run");
    assert!(!info.has_failed_jobs());
    assert_eq!(run.count("items"), 150);
    assert_eq!(
        run.q(r#"SELECT count(DISTINCT id) FROM "api"."items""#),
        150,
        "each record exactly once"
    );
}
