//! A fast local REST API for the rest_api benchmark (bench/rest_bench.sh): `/r<k>?page=N` serves
//! page N (1-based) of PAGES pages of 100 nested GitHub-issue-like records, with a json_link
//! `next`. Usage: rest_bench_server PORT [PAGES]. Pages are pre-rendered and served from a thread
//! per connection, so the server is not the bottleneck.

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
    // a plain HTTP/1.1 server with keep-alive and TCP_NODELAY (as production servers set it;
    // without it a kept-alive connection waits 40 ms per response on delayed ACKs)
    let listener = std::net::TcpListener::bind(("127.0.0.1", port)).expect("bind");
    eprintln!("rest_bench_server on 127.0.0.1:{port}, 4 resources x {pages} pages x 100 records");
    for stream in listener.incoming() {
        let Ok(stream) = stream else { continue };
        let bodies = bodies.clone();
        std::thread::spawn(move || serve_connection(stream, &bodies));
    }
}

fn serve_connection(stream: std::net::TcpStream, bodies: &[Vec<String>]) {
    use std::io::{BufRead, BufReader, Write};
    let _ = stream.set_nodelay(true);
    let mut writer = match stream.try_clone() {
        Ok(w) => w,
        Err(_) => return,
    };
    let mut reader = BufReader::new(stream);
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line).unwrap_or(0) == 0 {
            return;
        }
        // skip the headers
        loop {
            let mut h = String::new();
            if reader.read_line(&mut h).unwrap_or(0) == 0 {
                return;
            }
            if h == "\r\n" || h == "\n" {
                break;
            }
        }
        let url = line.split_whitespace().nth(1).unwrap_or("/");
        let (path, q) = url.split_once('?').unwrap_or((url, ""));
        let r: usize = path.trim_start_matches("/r").parse().unwrap_or(99);
        let p: usize = q
            .split('&')
            .find_map(|kv| kv.strip_prefix("page="))
            .and_then(|v| v.parse().ok())
            .unwrap_or(1);
        let (status, body) = match bodies.get(r).and_then(|b| b.get(p.max(1) - 1)) {
            Some(b) => ("200 OK", b.as_str()),
            None => ("404 Not Found", "not found"),
        };
        let head = format!(
            "HTTP/1.1 {status}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n",
            body.len()
        );
        let mut out = Vec::with_capacity(head.len() + body.len());
        out.extend_from_slice(head.as_bytes());
        out.extend_from_slice(body.as_bytes());
        if writer.write_all(&out).is_err() {
            return;
        }
    }
}
