//! The DuckDB destination of sluice (issue #4 builds it out; today this crate only proves that
//! the statically linked DuckDB library, with its parquet and json extensions, works).

#[cfg(test)]
mod tests {
    #[test]
    fn the_linked_duckdb_has_parquet_and_json() {
        let dir = tempfile::tempdir().expect("tmp");
        let file = dir.path().join("x.parquet");
        let conn = duckdb::Connection::open_in_memory().expect("open");
        conn.execute_batch(&format!(
            "COPY (SELECT 42 AS answer, '{{\"a\": 1}}'::JSON AS doc) TO '{}' (FORMAT parquet)",
            file.display()
        ))
        .expect("write parquet");
        let (answer, a): (i64, i64) = conn
            .query_row(
                &format!(
                    "SELECT answer, (doc->>'a')::BIGINT FROM read_parquet('{}')",
                    file.display()
                ),
                [],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .expect("read parquet");
        assert_eq!((answer, a), (42, 1));
    }
}
