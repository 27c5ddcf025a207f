//! Helpers the CLI's test files share.

/// Runs `sql` on the machine's PostgreSQL (127.0.0.1:5432, trust auth, database `test`)
/// through psql; a failing statement fails the test with psql's message.
pub fn psql(sql: &str) {
    let out = std::process::Command::new("psql")
        .args([
            "-h",
            "127.0.0.1",
            "-U",
            "postgres",
            "-d",
            "test",
            "-v",
            "ON_ERROR_STOP=1",
            "-q",
            "-c",
            sql,
        ])
        .output()
        .expect("psql");
    assert!(
        out.status.success(),
        "{sql}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}
