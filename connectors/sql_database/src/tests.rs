use super::*;

#[test]
fn a_source_without_credentials_says_where_they_go() {
    let e = SqlDatabase::open(serde_json::json!({}), Value::Null)
        .err()
        .expect("no credentials");
    assert!(
        e.to_string().contains("sources.sql_database.credentials"),
        "{e}"
    );
    let e = SqlDatabase::open(serde_json::json!({"chunk_sise": 3}), Value::Null)
        .err()
        .expect("unknown key");
    assert!(e.to_string().contains("chunk_sise"), "{e}");
}
