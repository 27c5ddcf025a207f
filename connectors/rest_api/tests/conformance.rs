//! The source conformance kit (`sluice_sdk::testing::check_source`) on the rest_api source,
//! against a JSON server on loopback: a parent resource and a child resource that reads each
//! parent's page.

use std::io::{BufRead, BufReader, Write};
use std::net::TcpListener;

use serde_json::json;
use sluice_connector_rest_api::RestApi;
use sluice_sdk::testing::{check_source, SourceChecks};

/// Serves `body(path)` as JSON to every request, one connection per request, until the
/// process ends. Returns the base URL.
fn serve(body: fn(&str) -> String) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let url = format!("http://{}", listener.local_addr().expect("addr"));
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            std::thread::spawn(move || {
                let mut reader = BufReader::new(stream);
                let mut request = String::new();
                if reader.read_line(&mut request).is_err() {
                    return;
                }
                let mut line = String::new();
                while reader.read_line(&mut line).is_ok_and(|n| n > 2) {
                    line.clear();
                }
                let path = request.split(' ').nth(1).unwrap_or("/").to_string();
                let text = body(path.split('?').next().unwrap_or("/"));
                let mut stream = reader.into_inner();
                let _ = write!(
                    stream,
                    "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{text}",
                    text.len()
                );
            });
        }
    });
    url
}

fn body(path: &str) -> String {
    match path {
        "/posts" => json!([{"id": 1, "title": "a"}, {"id": 2, "title": "b"}]),
        p if p.starts_with("/posts/") && p.ends_with("/comments") => {
            json!([{"id": 10, "text": "c"}])
        }
        _ => json!([]),
    }
    .to_string()
}

#[test]
fn passes_the_source_kit() {
    let url = serve(body);
    let source = RestApi::open(
        json!({
            "client": {"base_url": url, "paginator": "single_page"},
            "resources": [
                {"name": "posts", "endpoint": {"path": "posts"}},
                {"name": "comments", "endpoint": {"path": "posts/{resources.posts.id}/comments"}},
            ],
        }),
        json!({}),
    )
    .expect("open");
    let report = check_source(&source, &SourceChecks::default()).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(report.rows["posts"], 2, "{report:?}");
    assert_eq!(report.rows["comments"], 2, "{report:?}");
}
