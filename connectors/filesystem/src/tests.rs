use super::*;

fn item(name: &str, secs: i64) -> FileItem {
    FileItem::for_tests(name, DateTime::from_timestamp(secs, 0).expect("time"))
}

#[test]
fn incremental_files_take_new_and_changed_files_only() {
    let files = vec![item("a.csv", 100), item("b.csv", 200), item("c.csv", 200)];
    // first run: everything
    let first = select_files(files.clone(), &Value::Null);
    assert_eq!(first.len(), 3);
    let state = files_state(&Value::Null, &first);
    assert_eq!(
        state["files_at_last_modification"],
        json!(["b.csv", "c.csv"])
    );
    // nothing new: nothing read, state unchanged
    assert!(select_files(files.clone(), &state).is_empty());
    assert_eq!(files_state(&state, &[]), state);
    // a new file at the same instant as the boundary, a changed file, an untouched one
    let next = vec![
        item("a.csv", 300),
        item("b.csv", 200),
        item("c.csv", 200),
        item("d.csv", 200),
    ];
    let picked: Vec<String> = select_files(next, &state)
        .into_iter()
        .map(|f| f.file_name)
        .collect();
    assert_eq!(picked, vec!["a.csv", "d.csv"]);
}

#[test]
fn boundary_files_accumulate_when_the_newest_date_stays() {
    let s1 = files_state(&Value::Null, &[item("a", 50)]);
    let s2 = files_state(&s1, &[item("b", 50)]);
    assert_eq!(s2["files_at_last_modification"], json!(["a", "b"]));
    let s3 = files_state(&s2, &[item("c", 60)]);
    assert_eq!(s3["files_at_last_modification"], json!(["c"]));
}

#[test]
fn formats_from_names_and_types_widen() {
    assert_eq!(Format::from_name("x/flights.csv.gz"), Some(Format::Csv));
    assert_eq!(Format::from_name("*.ndjson"), Some(Format::Jsonl));
    assert_eq!(Format::from_name("**/*.parquet"), Some(Format::Parquet));
    assert_eq!(Format::from_name("*"), None);
    use arrow_schema::DataType::*;
    assert_eq!(read::widen(&Int64, &Float64), Float64);
    assert_eq!(read::widen(&Int64, &Utf8), Utf8);
    assert_eq!(read::widen(&Null, &Boolean), Boolean);
}

#[test]
fn config_errors_name_the_fix() {
    let dir = tempfile::tempdir().expect("dir");
    let url = dir.path().display().to_string();
    let e = Filesystem::open(json!({"bucket_url": url, "file_glob": "*"}), Value::Null)
        .err()
        .expect("no format");
    assert!(e.to_string().contains("set `format`"), "{e}");
    let e = Filesystem::open(
        json!({"bucket_url": format!("{url}/missing"), "file_glob": "*.csv"}),
        Value::Null,
    )
    .err()
    .expect("missing dir");
    assert!(e.to_string().contains("does not exist"), "{e}");
    let e = Filesystem::open(
        json!({"bucket_url": "ftp://x/y", "file_glob": "*.csv"}),
        Value::Null,
    )
    .err()
    .expect("scheme");
    assert!(e.to_string().contains("unsupported scheme"), "{e}");
    let ok = Filesystem::open(
        json!({"bucket_url": url, "file_glob": "**/*.jsonl"}),
        Value::Null,
    )
    .expect("ok");
    let names: Vec<String> = ok
        .describe()
        .expect("describe")
        .into_iter()
        .map(|d| d.name)
        .collect();
    assert_eq!(names, vec!["read_jsonl", "filesystem"]);
}

#[test]
fn object_store_urls_open_without_network() {
    // building the stores does no I/O; listing is what reaches the service
    let empty = Map::new();
    for url in [
        "s3://bucket/prefix",
        "gs://bucket/prefix",
        "az://container/prefix",
        "abfss://container@account.dfs.core.windows.net/prefix",
    ] {
        let mut config = Map::new();
        config.insert("endpoint_url".into(), json!("http://127.0.0.1:1"));
        let mut secrets = Map::new();
        secrets.insert(
            "azure_storage_account_name".into(),
            json!("devstoreaccount1"),
        );
        secrets.insert("azure_storage_account_key".into(), json!("a2V5"));
        let s = Store::open(url, &config, &secrets).unwrap_or_else(|e| panic!("{url}: {e}"));
        assert_eq!(s.url, url);
        let _ = &empty;
    }
}

#[test]
fn a_jsonl_line_or_a_json_file_past_its_cap_is_refused_naming_the_file_and_setting() {
    let lines = format!("{{\"a\": 1}}\n{{\"b\": \"{}\"}}\n", "x".repeat(4096));
    let mut batches = 0;
    let e = read::read_jsonl(
        Box::new(std::io::Cursor::new(lines.clone().into_bytes())),
        "s3://b/big.jsonl",
        1 << 20,
        1024,
        &mut |_| {
            batches += 1;
            Ok(())
        },
    )
    .expect_err("line 2 is over 1024 bytes");
    let msg = e.to_string();
    assert!(
        msg.contains("s3://b/big.jsonl") && msg.contains("line 2"),
        "{msg}"
    );
    assert!(msg.contains("max_line_bytes"), "{msg}");
    // under the cap it reads
    let rows = read::read_jsonl(
        Box::new(std::io::Cursor::new(lines.into_bytes())),
        "s3://b/big.jsonl",
        1 << 20,
        8192,
        &mut |_| Ok(()),
    )
    .expect("fits");
    assert_eq!(rows, 2);
    let doc = format!("[{{\"a\": \"{}\"}}]", "y".repeat(4096));
    let e = read::read_json(
        Box::new(std::io::Cursor::new(doc.clone().into_bytes())),
        "gs://b/big.json",
        1024,
        &mut |_| Ok(()),
    )
    .expect_err("over 1024 bytes");
    assert!(
        e.to_string().contains("max_json_file_bytes") && e.to_string().contains("gs://b/big.json"),
        "{e}"
    );
    let n = read::read_json(
        Box::new(std::io::Cursor::new(doc.into_bytes())),
        "gs://b/big.json",
        1 << 20,
        &mut |_| Ok(()),
    )
    .expect("fits");
    assert_eq!(n, 1);
}
