//! Helpers shared by sluice's end-to-end tests: golden case files and the comparison of loaded
//! tables with dlt's expected output (placeholders as described in tests/golden/README.md).

pub mod compare;

/// `<target>/<profile>`: where the workspace build leaves the plugins and binaries (the test
/// executable lives in `<profile>/deps`).
pub fn plugin_dir() -> PathBuf {
    let exe = std::env::current_exe().expect("test executable");
    exe.parent()
        .and_then(Path::parent)
        .expect("profile dir")
        .to_path_buf()
}

/// A registry that finds the workspace's plugins.
pub fn registry() -> sluice_registry::Registry {
    sluice_registry::Registry::new(sluice_registry::SearchPath::from_dirs([plugin_dir()]))
}

use std::path::{Path, PathBuf};
use std::sync::Arc;

/// The destination plugin `name`, found through `registry` and opened with `config` and
/// `secrets`: what `sluice run` resolves and hands the engine.
pub fn open_destination(
    registry: &sluice_registry::Registry,
    name: &str,
    config: &serde_json::Value,
    secrets: &serde_json::Value,
) -> Result<Arc<dyn sluice_sdk::Destination>, String> {
    let plugin = registry
        .load(sluice_registry::PluginKind::Destination, name)
        .map_err(|e| format!("cannot load destination `{name}`: {e}"))?;
    let destination = plugin
        .open_destination(config, secrets)
        .map_err(|e| format!("cannot open destination `{name}`: {e}"))?;
    Ok(Arc::new(destination))
}

/// The workspace's destination plugin `name` (see [`registry`]) opened with `config` and
/// `secrets`; panics with the plugin's message when it refuses them.
pub fn destination(
    name: &str,
    config: serde_json::Value,
    secrets: serde_json::Value,
) -> Arc<dyn sluice_sdk::Destination> {
    open_destination(&registry(), name, &config, &secrets).unwrap_or_else(|e| panic!("{e}"))
}

/// A pipeline `name` loading dataset `dataset` into the DuckDB file `db` through the loaded
/// DuckDB plugin, with its working directories under `pipelines_dir`.
pub fn duckdb_pipeline(
    name: &str,
    dataset: &str,
    pipelines_dir: &Path,
    db: &Path,
) -> sluice::pipeline::Pipeline {
    sluice::pipeline::Pipeline::builder(name)
        .destination(
            "duckdb",
            destination(
                "duckdb",
                serde_json::json!({"credentials": db.to_string_lossy()}),
                serde_json::json!({}),
            ),
        )
        .dataset_name(dataset)
        .pipelines_dir(pipelines_dir)
        .build()
        .expect("pipeline")
}

/// The folder of golden cases: `$GOLDEN_DIR`, else the repository's own copy,
/// `tests/golden/cases` (observed from dlt 1.31; tests/golden/README.md says how to refresh it).
pub fn golden_dir() -> PathBuf {
    match std::env::var_os("GOLDEN_DIR") {
        Some(d) => PathBuf::from(d),
        None => Path::new(env!("CARGO_MANIFEST_DIR")).join("golden/cases"),
    }
}

/// The names of the case directories in `dir` (sorted), optionally filtered by substrings.
pub fn case_names(dir: &Path, filters: &[String]) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .map(|rd| {
            rd.filter_map(|e| e.ok())
                .filter(|e| e.path().join("input.json").exists())
                .filter_map(|e| e.file_name().to_str().map(String::from))
                .collect()
        })
        .unwrap_or_default();
    names.retain(|n| filters.is_empty() || filters.iter().any(|f| n.contains(f.as_str())));
    names.sort();
    names
}

/// The PostgreSQL server the tests load into: `$SLUICE_TEST_PG_URL`, else the machine's own
/// (127.0.0.1:5432, trust auth, database `test`; `.ci/run` starts it).
pub fn pg_url() -> String {
    std::env::var("SLUICE_TEST_PG_URL")
        .unwrap_or_else(|_| "postgresql://postgres@127.0.0.1:5432/test".to_string())
}

fn pg_runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime")
}

/// Runs `sql` (one or more statements) on the test server.
pub fn pg_exec(sql: &str) {
    use sqlx::{Connection, Executor};
    pg_runtime().block_on(async {
        let mut c = sqlx::PgConnection::connect(&pg_url())
            .await
            .expect("connect to PostgreSQL");
        c.execute(sqlx::raw_sql(sqlx::AssertSqlSafe(sql.to_string())))
            .await
            .unwrap_or_else(|e| panic!("{sql}: {e}"));
    })
}

/// The rows of `sql` on the test server, every cell as PostgreSQL's text (NULL as `None`):
/// the simple query protocol sends every value as text, whatever its type.
pub fn pg_rows(sql: &str) -> Vec<Vec<Option<String>>> {
    use sqlx::{Connection, Executor, Row, ValueRef};
    pg_runtime().block_on(async {
        let mut c = sqlx::PgConnection::connect(&pg_url())
            .await
            .expect("connect to PostgreSQL");
        c.execute("SET TIME ZONE 'UTC'").await.expect("set");
        let rows = sqlx::raw_sql(sqlx::AssertSqlSafe(sql.to_string()))
            .fetch_all(&mut c)
            .await
            .unwrap_or_else(|e| panic!("{sql}: {e}"));
        rows.iter()
            .map(|r| {
                (0..r.len())
                    .map(|i| {
                        let v = r.try_get_raw(i).expect("cell");
                        (!v.is_null()).then(|| v.as_str().expect("text").to_string())
                    })
                    .collect()
            })
            .collect()
    })
}

/// A pipeline `name` loading dataset `dataset` into the test PostgreSQL server through the
/// loaded postgres plugin, with its working directories under `pipelines_dir`.
pub fn postgres_pipeline(
    name: &str,
    dataset: &str,
    pipelines_dir: &Path,
) -> sluice::pipeline::Pipeline {
    sluice::pipeline::Pipeline::builder(name)
        .destination(
            "postgres",
            destination(
                "postgres",
                serde_json::json!({}),
                serde_json::json!({"credentials": pg_url()}),
            ),
        )
        .dataset_name(dataset)
        .pipelines_dir(pipelines_dir)
        .build()
        .expect("pipeline")
}

/// A dataset as loaded: per table its columns (`name`, type, nullable) in order and its rows
/// (column name -> JSON value).
pub type Dump = std::collections::BTreeMap<
    String,
    (
        Vec<(String, String, bool)>,
        Vec<std::collections::BTreeMap<String, serde_json::Value>>,
    ),
>;

/// Every table of schema `dataset` on the test server: types as `format_type` prints them,
/// integers, floats and booleans as JSON numbers and booleans, everything else as PostgreSQL's
/// text (timestamps in UTC).
pub fn pg_dump(dataset: &str) -> Dump {
    let lit = |s: &str| format!("'{}'", s.replace('\'', "''"));
    let cols = pg_rows(&format!(
        "SELECT c.relname::text, a.attname::text, format_type(a.atttypid, a.atttypmod), (NOT a.attnotnull)::text \
         FROM pg_catalog.pg_attribute a JOIN pg_catalog.pg_class c ON c.oid = a.attrelid \
         JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace \
         WHERE n.nspname = {} AND c.relkind = 'r' AND a.attnum > 0 AND NOT a.attisdropped \
         ORDER BY c.relname, a.attnum",
        lit(dataset)
    ));
    let mut out = Dump::new();
    for r in cols {
        let cell = |i: usize| r[i].clone().unwrap_or_default();
        out.entry(cell(0))
            .or_default()
            .0
            .push((cell(1), cell(2), cell(3) == "true"));
    }
    for (table, (cols, rows)) in out.iter_mut() {
        let select: Vec<String> = cols
            .iter()
            .map(|(n, _, _)| format!("\"{}\"::text", n.replace('"', "\"\"")))
            .collect();
        let data = pg_rows(&format!(
            "SELECT {} FROM \"{}\".\"{}\"",
            select.join(", "),
            dataset.replace('"', "\"\""),
            table.replace('"', "\"\"")
        ));
        for r in data {
            let mut m = std::collections::BTreeMap::new();
            for ((name, ty, _), v) in cols.iter().zip(r) {
                let v = match v {
                    None => serde_json::Value::Null,
                    Some(t) => match ty.as_str() {
                        "bigint" | "integer" | "smallint" => t
                            .parse::<i64>()
                            .map(serde_json::Value::from)
                            .unwrap_or(serde_json::Value::String(t)),
                        "double precision" | "real" => t
                            .parse::<f64>()
                            .ok()
                            .and_then(serde_json::Number::from_f64)
                            .map(serde_json::Value::Number)
                            .unwrap_or(serde_json::Value::String(t)),
                        "boolean" => serde_json::Value::Bool(t == "true" || t == "t"),
                        _ => serde_json::Value::String(t),
                    },
                };
                m.insert(name.clone(), v);
            }
            rows.push(m);
        }
    }
    out
}

/// DuckDB's types read back as native JSON values; the others are read as `VARCHAR`.
pub const DUCKDB_NATIVE: [&str; 8] = [
    "BIGINT", "INTEGER", "SMALLINT", "TINYINT", "DOUBLE", "BOOLEAN", "VARCHAR", "HUGEINT",
];

/// A DuckDB value as JSON (integers, floats, booleans and text natively; anything else as its
/// debug form).
pub fn duck_value(v: sluice_destination_duckdb::duckdb::types::Value) -> serde_json::Value {
    use serde_json::json;
    use sluice_destination_duckdb::duckdb::types::Value as D;
    match v {
        D::Null => serde_json::Value::Null,
        D::Boolean(b) => json!(b),
        D::TinyInt(i) => json!(i),
        D::SmallInt(i) => json!(i),
        D::Int(i) => json!(i),
        D::BigInt(i) => json!(i),
        D::HugeInt(i) => json!(i as f64),
        D::UTinyInt(i) => json!(i),
        D::USmallInt(i) => json!(i),
        D::UInt(i) => json!(i),
        D::UBigInt(i) => json!(i),
        D::Float(f) => json!(f),
        D::Double(f) => json!(f),
        D::Text(s) => json!(s),
        other => json!(format!("{other:?}")),
    }
}

/// Every table of schema `dataset` in the DuckDB file `db`, as the golden generator reads
/// them: DuckDB's type names, native values for integers, doubles, booleans and text, and
/// `CAST(.. AS VARCHAR)` for the rest (timestamps in UTC). A missing file is an empty dataset.
pub fn duckdb_dump(db: &Path, dataset: &str) -> Result<Dump, String> {
    use sluice_destination_duckdb::duckdb;
    let mut out = Dump::new();
    if !db.exists() {
        return Ok(out);
    }
    let quote = |s: &str| format!("\"{}\"", s.replace('"', "\"\""));
    let con = duckdb::Connection::open(db).map_err(|e| format!("open {}: {e}", db.display()))?;
    let tables: Vec<String> = {
        let mut st = con
            .prepare("SELECT table_name FROM information_schema.tables WHERE table_schema = ? ORDER BY table_name")
            .map_err(|e| e.to_string())?;
        let rows = st
            .query_map([dataset], |r| r.get::<_, String>(0))
            .map_err(|e| e.to_string())?;
        rows.filter_map(|r| r.ok()).collect()
    };
    for t in tables {
        let cols: Vec<(String, String, bool)> = {
            let mut st = con
                .prepare("SELECT column_name, data_type, is_nullable FROM information_schema.columns WHERE table_schema = ? AND table_name = ? ORDER BY ordinal_position")
                .map_err(|e| e.to_string())?;
            let rows = st
                .query_map([dataset, t.as_str()], |r| {
                    Ok((
                        r.get::<_, String>(0)?,
                        r.get::<_, String>(1)?,
                        r.get::<_, String>(2)? == "YES",
                    ))
                })
                .map_err(|e| e.to_string())?;
            rows.filter_map(|r| r.ok()).collect()
        };
        let select: Vec<String> = cols
            .iter()
            .map(|(n, ty, _)| {
                if DUCKDB_NATIVE.contains(&ty.to_uppercase().as_str()) {
                    quote(n)
                } else {
                    format!("CAST({} AS VARCHAR)", quote(n))
                }
            })
            .collect();
        let sql = format!(
            "SELECT {} FROM {}.{}",
            select.join(", "),
            quote(dataset),
            quote(&t)
        );
        let mut st = con.prepare(&sql).map_err(|e| format!("{sql}: {e}"))?;
        let mut rows = st.query([]).map_err(|e| e.to_string())?;
        let mut data = Vec::new();
        while let Some(r) = rows.next().map_err(|e| e.to_string())? {
            let mut m = std::collections::BTreeMap::new();
            for (i, (n, _, _)) in cols.iter().enumerate() {
                let v: duckdb::types::Value = r.get(i).map_err(|e| e.to_string())?;
                m.insert(n.clone(), duck_value(v));
            }
            data.push(m);
        }
        out.insert(t, (cols, data));
    }
    Ok(out)
}
