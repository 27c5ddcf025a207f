//! A fast local REST API for the rest_api benchmark (bench/rest_bench.sh): `/r<k>?page=N` serves
//! page N (1-based) of PAGES pages of 100 nested GitHub-issue-like records, with a json_link
//! `next`. Usage: rest_bench_server PORT [PAGES]. Pages are pre-rendered; one thread per core
//! plus one per connection keeps the server from being the bottleneck.

use std::sync::Arc;

fn page(resource: usize, page: usize, pages: usize, port: u16) -> String {
    let records: Vec<serde_json::Value> = (0..100)
        .map(|i| {
            let id = (page - 1) * 100 + i;
            serde_json::json!({
                "id": id, "number": id, "resource": resource,
                "title": format!("Issue {id} in resource {resource}"),
                "state": if id % 3 == 0 { "closed" } else { "open" },
                "user": {"login": format!("user{}", id % 97), "id": id % 97, "site_admin": false},
                "labels": [{"name": "bug", "color": "d73a4a"}, {"name": format!("area-{}", id % 7), "color": "ededed"}],
                "assignees": [{"login": format!("dev{}", id % 11)}],
                "comments": id % 17,
                "created_at": "2024-01-03T09:15:00Z",
                "updated_at": "2024-02-03T09:15:00Z",
                "reactions": {"total_count": id % 5, "+1": id % 3},
                "body": "Steps to reproduce: run the pipeline, look at the table, see the numbers."
            })
        })
        .collect();
    let next = if page < pages {
        serde_json::Value::String(format!(
            "http://127.0.0.1:{port}/r{resource}?page={}",
            page + 1
        ))
    } else {
        serde_json::Value::Null
    };
    serde_json::json!({"data": records, "next": next}).to_string()
}

fn main() {
    let mut args = std::env::args().skip(1);
    let port: u16 = args.next().and_then(|p| p.parse().ok()).unwrap_or(8077);
    let pages: usize = args.next().and_then(|p| p.parse().ok()).unwrap_or(1000);
    // resource k serves the same content with its own number
    let bodies: Arc<Vec<Vec<String>>> = Arc::new(
        (0..4)
            .map(|r| (1..=pages).map(|p| page(r, p, pages, port)).collect())
            .collect(),
    );
    let server = Arc::new(tiny_http::Server::http(("127.0.0.1", port)).expect("bind"));
    eprintln!("rest_bench_server on 127.0.0.1:{port}, 4 resources x {pages} pages x 100 records");
    let workers: Vec<_> = (0..8)
        .map(|_| {
            let server = server.clone();
            let bodies = bodies.clone();
            std::thread::spawn(move || {
                for rq in server.incoming_requests() {
                    let url = rq.url().to_string();
                    let (path, q) = url.split_once('?').unwrap_or((&url, ""));
                    let r: usize = path.trim_start_matches("/r").parse().unwrap_or(99);
                    let p: usize = q
                        .split('&')
                        .find_map(|kv| kv.strip_prefix("page="))
                        .and_then(|v| v.parse().ok())
                        .unwrap_or(1);
                    let resp = match bodies.get(r).and_then(|b| b.get(p - 1)) {
                        Some(body) => tiny_http::Response::from_string(body.clone()).with_header(
                            tiny_http::Header::from_bytes(
                                &b"Content-Type"[..],
                                &b"application/json"[..],
                            )
                            .expect("header"),
                        ),
                        None => tiny_http::Response::from_string("not found").with_status_code(404),
                    };
                    let _ = rq.respond(resp);
                }
            })
        })
        .collect();
    for w in workers {
        let _ = w.join();
    }
}
