//! The source conformance kit (`sluice_sdk::testing::check_source`) on the GitHub source,
//! against a server on loopback that answers every endpoint with one item of GitHub's shape.

use std::io::{BufRead, BufReader, Write};
use std::net::TcpListener;

use serde_json::json;
use sluice_connector_github::{rest_config, rest_secrets};
use sluice_rest::source::RestApi;
use sluice_sdk::testing::{check_source, SourceChecks};

/// Serves one JSON array of one item to every request; returns the base URL.
fn serve() -> String {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let url = format!("http://{}", listener.local_addr().expect("addr"));
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            std::thread::spawn(move || {
                let mut reader = BufReader::new(stream);
                let mut line = String::new();
                while reader.read_line(&mut line).is_ok_and(|n| n > 2) {
                    line.clear();
                }
                let text = json!([{
                    "id": 1, "number": 1, "sha": "a1", "type": "PushEvent",
                    "updated_at": "2024-01-01T00:00:00Z", "created_at": "2024-01-01T00:00:00Z",
                    "commit": {"committer": {"date": "2024-01-01T00:00:00Z"}},
                }])
                .to_string();
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

#[test]
fn passes_the_source_kit() {
    let config =
        rest_config(&json!({"owner": "o", "name": "r", "base_url": serve()})).expect("config");
    let source = RestApi::open(config, rest_secrets(&json!({}))).expect("open");
    let report = check_source(&source, &SourceChecks::default()).unwrap_or_else(|e| panic!("{e}"));
    for resource in [
        "issues",
        "pull_requests",
        "commits",
        "stargazers",
        "repo_events",
    ] {
        assert_eq!(report.rows[resource], 1, "{resource}: {report:?}");
    }
}
