//! The DuckDB connection under sluice's shared SQL job client ([`SqlJobClient`]): how a
//! database file is opened (an in-memory instance that attaches it, with the buffer pool,
//! row group size and spill folder set), its statements, and its bulk load: every job's
//! parquet file is read by DuckDB itself (`INSERT ... BY NAME SELECT * FROM read_parquet`).
//!
//! A load package runs in one DuckDB transaction (see `sluice_sql::client`): a process killed
//! anywhere before the commit leaves the dataset as it was (DuckDB rolls the transaction back
//! from its WAL), and the package is replayed.

use std::path::Path;

use duckdb::Connection;

use sluice_sdk::destination::{BatchReader, ClientRequest, JobReport};
use sluice_sdk::{BatchStream, CancelToken, Error, Result};
use sluice_sql::client::{SqlClientOptions, SqlConnection, SqlJobClient, Target, TextRows};
use sluice_sql::jobs::SqlDialect;

use crate::config::DuckDbConfig;
use crate::sql;
use crate::types::{literal, quote};

/// Caps glibc's malloc at two arenas, once per process, before DuckDB starts its threads.
///
/// DuckDB allocates with the C library's malloc (its buffer pool is bounded by `memory_limit`,
/// its other allocations are not). glibc gives each allocating thread an arena of its own, up to
/// eight per core, and keeps what is freed in each; over a long load the arenas of DuckDB's
/// threads held more and more beyond the buffer pool (5x the nested benchmark: 651 MiB peak,
/// against 580 MiB with two arenas; with a 256MB limit 366 MiB, flat against the 1x input's
/// 331 MiB). The host allocates with mimalloc, so the cap applies to the C and C++ code in the
/// process and to plugins' Rust code (plugins keep the system allocator). A limit the user set
/// (`MALLOC_ARENA_MAX`, or `arena_max` in `GLIBC_TUNABLES`) is left alone.
fn cap_malloc_arenas() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        static ONCE: std::sync::Once = std::sync::Once::new();
        ONCE.call_once(|| {
            let user_set = std::env::var_os("MALLOC_ARENA_MAX").is_some()
                || std::env::var("GLIBC_TUNABLES").is_ok_and(|t| t.contains("arena_max"));
            if !user_set {
                // SAFETY: mallopt only sets a malloc parameter (under glibc's arena lock);
                // arenas that exist stay usable. glibc marks it MT-unsafe because of that
                // global: it runs once, before this destination's DuckDB threads exist.
                unsafe {
                    libc::mallopt(libc::M_ARENA_MAX, 2);
                }
            }
        });
    }
}

fn db_err(context: impl std::fmt::Display, e: duckdb::Error) -> Error {
    let text = e.to_string();
    // the machine, not the data: a full disk, an I/O failure or memory; the package stays
    // pending and loads once the machine is fixed (a refusal of the data fails the package)
    if text.starts_with("IO Error")
        || text.contains("Out of Memory")
        || text.contains("No space left")
    {
        return Error::io(format!(
            "{context}: {text}\nhint: free disk space or memory, or lower memory_limit, and run again: the package is still pending"
        ));
    }
    Error::destination(format!("{context}: {text}"))
}

/// The job client of one dataset of one DuckDB file.
pub type DuckDbClient = SqlJobClient<DuckDbConnection>;

/// Opens the job client of `request`'s dataset in the database file of `config`.
pub fn open_client(config: &DuckDbConfig, request: &ClientRequest) -> Result<DuckDbClient> {
    let dataset = request.dataset_name.clone();
    let staging = request
        .staging_dataset_name
        .clone()
        .unwrap_or_else(|| config.staging_dataset(&dataset));
    let con = DuckDbConnection::open(config, request, &[&dataset, &staging])?;
    Ok(SqlJobClient::new(
        con,
        SqlClientOptions {
            dataset,
            staging,
            replace_strategy: config.replace_strategy.unwrap_or_default(),
        },
    ))
}

/// A connection to one DuckDB database file.
pub struct DuckDbConnection {
    con: Connection,
    path: String,
}

impl std::fmt::Debug for DuckDbConnection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DuckDbConnection")
            .field("path", &self.path)
            .finish()
    }
}

/// The catalog name of an attached database file: its file name up to the first dot, as DuckDB
/// names a file it opens itself (`sales.duckdb` -> `sales`); `memory`, `system`, `temp` and
/// `main` get a `_db` suffix and a nameless file is `sluice_db` (sluice's own choices). A name
/// equal to one of the `datasets` written (DuckDB compares names without case) gets `_db` too:
/// with a catalog and a schema of one name, DuckDB refuses `"sales"."t"` as ambiguous.
fn catalog_name(path: &str, datasets: &[&str]) -> String {
    let file = Path::new(path)
        .file_name()
        .and_then(|f| f.to_str())
        .unwrap_or_default();
    let mut name = match file.split('.').next().unwrap_or_default() {
        "" => "sluice_db".to_string(),
        s => s.to_string(),
    };
    let taken = |n: &str| {
        let n = n.to_ascii_lowercase();
        ["memory", "system", "temp", "main"].contains(&n.as_str())
            || datasets.iter().any(|d| d.to_ascii_lowercase() == n)
    };
    while taken(&name) {
        name.push_str("_db");
    }
    name
}

impl DuckDbConnection {
    /// Opens the database file of `request`'s pipeline; `datasets` are the datasets it will
    /// write (the catalog's name must differ from theirs).
    pub fn open(config: &DuckDbConfig, request: &ClientRequest, datasets: &[&str]) -> Result<Self> {
        let path = config.database_path(&request.pipeline_name);
        if path == ":memory:" {
            return Err(Error::config(
                "duckdb credentials `:memory:` are not supported: the data would vanish when the load ends\nhint: give a file path, e.g. credentials = \"my_pipeline.duckdb\"",
            ));
        }
        if let Some(parent) = Path::new(&path)
            .parent()
            .filter(|p| !p.as_os_str().is_empty())
        {
            if !parent.exists() {
                return Err(Error::config(format!(
                    "the folder of the duckdb database `{path}` does not exist\nhint: create it or point `credentials` elsewhere"
                )));
            }
        }
        let row_group_size = config.row_group_size()?;
        cap_malloc_arenas();
        // an in-memory instance that attaches the file (the row group size is an ATTACH option),
        // then drops its own `memory` catalog, which a dataset of that name would clash with
        let con = Connection::open_in_memory().map_err(|e| db_err("cannot start duckdb", e))?;
        if let Some(t) = config.threads {
            con.execute_batch(&format!("SET threads = {t}"))
                .map_err(|e| db_err("cannot set threads", e))?;
        }
        let limit = config
            .memory_limit
            .clone()
            .unwrap_or_else(|| crate::config::DEFAULT_MEMORY_LIMIT.to_string());
        if !limit.eq_ignore_ascii_case("none") {
            if limit.is_empty()
                || !limit
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '.' || c == ' ')
            {
                return Err(Error::config(format!(
                    "duckdb `memory_limit` must look like `512MB` or `2GB` (or `none`), got `{limit}`"
                )));
            }
            con.execute_batch(&format!("SET memory_limit = '{limit}'"))
                .map_err(|e| db_err("cannot set memory_limit", e))?;
        }
        if !config.preserve_insertion_order.unwrap_or(false) {
            // lets DuckDB insert in parallel without keeping the file's row order: 20-25% faster
            // loads (flat 1.8 -> 1.4 s, nested 8.7 -> 6.9 s); tables have no order in SQL anyway
            con.execute_batch("SET preserve_insertion_order = false")
                .map_err(|e| db_err("cannot set preserve_insertion_order", e))?;
        }
        // spill next to the database, as DuckDB does for a database it opens itself (an
        // in-memory instance would spill to `.tmp` in the working directory)
        con.execute_batch(&format!(
            "SET temp_directory = {}",
            literal(&format!("{path}.tmp"))
        ))
        .map_err(|e| db_err("cannot set temp_directory", e))?;
        let alias = catalog_name(&path, datasets);
        let options = match row_group_size {
            Some(n) => format!(" (ROW_GROUP_SIZE {n})"),
            None => String::new(),
        };
        con.execute_batch(&format!(
            "ATTACH {} AS {}{options}; USE {}; DETACH memory",
            literal(&path),
            quote(&alias),
            quote(&alias)
        ))
        .map_err(|e| {
            let msg = e.to_string();
            let mut err = db_err(format!("cannot open the duckdb database `{path}`"), e);
            if msg.contains("lock") {
                err.message
                    .push_str("\nhint: another process has the database open; close it and retry");
                err.retryable = true;
            }
            err
        })?;
        Ok(Self { con, path })
    }
}

fn truncate(sql: &str) -> String {
    if sql.len() > 300 {
        format!(
            "{}...",
            &sql[..sql.char_indices().nth(300).map_or(sql.len(), |(i, _)| i)]
        )
    } else {
        sql.to_string()
    }
}

impl DuckDbConnection {
    /// Loads parquet file `path` into `target` with DuckDB's own reader.
    fn insert_parquet(
        &mut self,
        target: Target<'_>,
        path: &Path,
        cancel: &CancelToken,
    ) -> Result<JobReport> {
        cancel.check()?;
        let sql = format!(
            "INSERT INTO {} BY NAME SELECT * FROM read_parquet({})",
            sql::qualified(target.dataset, &target.table.name),
            literal(&path.display().to_string())
        );
        tracing::debug!(target: "sluice::duckdb", "{sql}");
        let rows = self.con.execute(&sql, []).map_err(|e| {
            db_err(
                format!(
                    "cannot load `{}` into table `{}`",
                    path.display(),
                    target.table.name
                ),
                e,
            )
        })?;
        let bytes = std::fs::metadata(path).map(|m| m.len()).unwrap_or(0);
        Ok(JobReport {
            rows: rows as u64,
            bytes,
            ..Default::default()
        })
    }
}

impl SqlConnection for DuckDbConnection {
    fn name(&self) -> &'static str {
        "duckdb"
    }

    fn dialect(&self) -> &dyn SqlDialect {
        &sql::DuckDb
    }

    fn execute(&mut self, sql: &str) -> Result<()> {
        tracing::debug!(target: "sluice::duckdb", "{sql}");
        self.con
            .execute_batch(sql)
            .map_err(|e| db_err(format!("duckdb failed to run `{}`", truncate(sql)), e))
    }

    fn query_text(&mut self, what: &str, sql: &str, params: &[Option<&str>]) -> Result<TextRows> {
        tracing::debug!(target: "sluice::duckdb", "{sql}");
        let mut stmt = self.con.prepare(sql).map_err(|e| db_err(what, e))?;
        let mut rows = stmt
            .query(duckdb::params_from_iter(params.iter()))
            .map_err(|e| db_err(what, e))?;
        let mut out = TextRows::new();
        while let Some(r) = rows.next().map_err(|e| db_err(what, e))? {
            let n = r.as_ref().column_count();
            let mut row = Vec::with_capacity(n);
            for i in 0..n {
                let v: duckdb::types::Value = r.get(i).map_err(|e| db_err(what, e))?;
                row.push(match v {
                    duckdb::types::Value::Null => None,
                    duckdb::types::Value::Text(t) => Some(t),
                    duckdb::types::Value::Boolean(b) => Some(b.to_string()),
                    duckdb::types::Value::TinyInt(v) => Some(v.to_string()),
                    duckdb::types::Value::SmallInt(v) => Some(v.to_string()),
                    duckdb::types::Value::Int(v) => Some(v.to_string()),
                    duckdb::types::Value::BigInt(v) => Some(v.to_string()),
                    duckdb::types::Value::HugeInt(v) => Some(v.to_string()),
                    other => {
                        return Err(Error::internal(format!(
                            "{what}: a value that is not text ({other:?}); cast it to TEXT"
                        )))
                    }
                });
            }
            out.push(row);
        }
        Ok(out)
    }

    fn param(&self, _n: usize) -> String {
        "?".into()
    }

    fn write_rows(
        &mut self,
        target: Target<'_>,
        data: BatchReader,
        cancel: &CancelToken,
    ) -> Result<JobReport> {
        // stage the batches as a parquet file DuckDB reads itself
        // in a folder of its own (created private and new: no other user can put a file
        // where DuckDB reads), removed with everything in it when the job ends
        let dir = tempfile::Builder::new()
            .prefix("sluice-duckdb-")
            .tempdir()
            .map_err(|e| {
                Error::io(format!(
                    "cannot create a temporary folder for a load file: {e}"
                ))
            })?;
        let path = dir.path().join("rows.parquet");
        let written = (|| {
            let file = std::fs::File::create(&path)
                .map_err(|e| Error::io(format!("`{}`: {e}", path.display())))?;
            let schema = data.schema();
            let mut writer = parquet::arrow::ArrowWriter::try_new(file, schema, None)
                .map_err(|e| Error::internal(format!("parquet: {e}")))?;
            for batch in data {
                cancel.check()?;
                let batch = batch.map_err(Error::from)?;
                writer
                    .write(&batch)
                    .map_err(|e| Error::internal(format!("parquet: {e}")))?;
            }
            writer
                .close()
                .map_err(|e| Error::internal(format!("parquet: {e}")))?;
            Ok(())
        })();
        written.and_then(|()| self.insert_parquet(target, &path, cancel))
    }

    fn load_file(
        &mut self,
        target: Target<'_>,
        path: &Path,
        cancel: &CancelToken,
    ) -> Result<JobReport> {
        self.insert_parquet(target, path, cancel)
    }

    fn query(&mut self, sql: &str, _cancel: &CancelToken) -> Result<BatchStream> {
        let mut stmt = self
            .con
            .prepare(sql)
            .map_err(|e| db_err("invalid query", e))?;
        let arrow = stmt
            .query_arrow([])
            .map_err(|e| db_err("query failed", e))?;
        let schema = arrow.get_schema();
        let batches: Vec<Result<arrow_array::RecordBatch>> = arrow.map(Ok).collect();
        Ok(BatchStream::from_batches(schema, batches, None))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use sluice_sdk::DestinationClient;

    fn request() -> ClientRequest {
        ClientRequest {
            dataset_name: "ds".into(),
            pipeline_name: "p".into(),
            ..Default::default()
        }
    }

    fn setting(client: &DuckDbClient, name: &str) -> String {
        client
            .connection()
            .con
            .query_row("SELECT current_setting(?)::VARCHAR", [name], |r| r.get(0))
            .expect("setting")
    }

    #[test]
    fn a_load_file_whose_path_has_glob_characters_is_read_as_it_is() {
        // read_parquet takes a glob; DuckDB reads a path that exists as it is, so a pipelines
        // folder named like `runs[1]` works (pinned here: an upgrade that changes it fails)
        let dir = tempfile::tempdir().expect("tmp");
        let jobs = dir.path().join("runs[1]*?{a,b}");
        std::fs::create_dir_all(&jobs).expect("mkdir");
        let file = jobs.join("items.parquet");
        let con = Connection::open_in_memory().expect("duckdb");
        con.execute_batch(&format!(
            "COPY (SELECT 7 AS id) TO {} (FORMAT parquet)",
            literal(&file.display().to_string())
        ))
        .expect("write parquet");
        let config = DuckDbConfig {
            credentials: Some(dir.path().join("glob.duckdb").display().to_string()),
            ..Default::default()
        };
        let mut con = DuckDbConnection::open(&config, &request(), &["ds"]).expect("open");
        con.execute("CREATE SCHEMA ds; CREATE TABLE ds.items (id BIGINT)")
            .expect("table");
        let table = sluice_sdk::schema::Table {
            name: "items".into(),
            ..Default::default()
        };
        let job = sluice_sdk::destination::LoadJob::default();
        let target = Target {
            dataset: "ds",
            table: &table,
            job: &job,
        };
        let report = con
            .load_file(target, &file, &sluice_sdk::CancelFlag::new().token())
            .expect("load the file");
        assert_eq!(report.rows, 1);
        let id: i64 = con
            .con
            .query_row("SELECT id FROM ds.items", [], |r| r.get(0))
            .expect("row");
        assert_eq!(id, 7);
    }

    #[test]
    fn a_load_runs_with_a_192mb_buffer_pool_unless_configured() {
        let dir = tempfile::tempdir().expect("tmp");
        let request = request();
        let mut config = DuckDbConfig {
            credentials: Some(dir.path().join("a.duckdb").display().to_string()),
            ..Default::default()
        };
        let client = open_client(&config, &request).expect("open");
        // DuckDB prints the limit in MiB: 192 MB = 183.1 MiB
        assert_eq!(setting(&client, "memory_limit"), "183.1 MiB");
        assert_eq!(setting(&client, "preserve_insertion_order"), "false");
        drop(client);
        config.memory_limit = Some("1GB".into());
        let client = open_client(&config, &request).expect("open");
        assert_eq!(setting(&client, "memory_limit"), "953.6 MiB");
    }

    fn row_groups_of(client: &DuckDbClient, rows: u64) -> i64 {
        client
            .connection()
            .con
            .execute_batch(&format!(
                "CREATE TABLE t AS SELECT range AS id, 'v' || range AS v FROM range({rows})"
            ))
            .expect("insert");
        client
            .connection()
            .con
            .query_row(
                "SELECT count(DISTINCT row_group_id) FROM pragma_storage_info('t')",
                [],
                |r| r.get(0),
            )
            .expect("storage info")
    }

    #[test]
    fn tables_get_row_groups_of_30720_rows_unless_configured() {
        let dir = tempfile::tempdir().expect("tmp");
        let request = request();
        let path = dir.path().join("sales.v1.duckdb").display().to_string();
        let mut config = DuckDbConfig {
            credentials: Some(path.clone()),
            ..Default::default()
        };
        let client = open_client(&config, &request).expect("open");
        // 100k rows: 4 row groups of at most 30720 rows (DuckDB's 122880 would make one)
        assert_eq!(row_groups_of(&client, 100_000), 4);
        // the file is the current catalog, named as DuckDB names a file it opens, and spills
        // next to it
        let catalog: String = client
            .connection()
            .con
            .query_row("SELECT current_database()", [], |r| r.get(0))
            .expect("catalog");
        assert_eq!(catalog, "sales");
        assert_eq!(setting(&client, "temp_directory"), format!("{path}.tmp"));
        // the instance's own `memory` catalog is gone: a dataset of that name is unambiguous
        client
            .connection()
            .con
            .execute_batch("CREATE SCHEMA memory; CREATE TABLE memory.m AS SELECT 1 AS a")
            .expect("a dataset named memory");
        let a: i64 = client
            .connection()
            .con
            .query_row("SELECT a FROM memory.m", [], |r| r.get(0))
            .expect("memory.m");
        assert_eq!(a, 1);
        drop(client);
        config.row_group_size = Some(0);
        config.credentials = Some(dir.path().join("b.duckdb").display().to_string());
        let client = open_client(&config, &request).expect("open");
        assert_eq!(row_groups_of(&client, 100_000), 1);
        drop(client);
        config.row_group_size = Some(1000);
        let err = open_client(&config, &request).expect_err("not a multiple of 2048");
        assert!(
            err.to_string()
                .contains("`row_group_size` must be a multiple of 2048"),
            "{err}"
        );
    }

    /// `ds.duckdb` holding dataset `ds`: DuckDB would find `"ds"."t"` ambiguous (catalog or
    /// schema) on the second run if the catalog were named after the file.
    #[test]
    fn a_dataset_named_like_the_file_loads_on_every_run() {
        let dir = tempfile::tempdir().expect("tmp");
        let config = DuckDbConfig {
            credentials: Some(dir.path().join("ds.duckdb").display().to_string()),
            ..Default::default()
        };
        for run in 1..=2i64 {
            let mut client = open_client(&config, &request()).expect("open");
            client.initialize_storage().expect("create the dataset");
            client
                .connection_mut()
                .execute(r#"CREATE TABLE IF NOT EXISTS "ds"."t" (a BIGINT); INSERT INTO "ds"."t" VALUES (1)"#)
                .expect("write");
            let n: i64 = client
                .connection()
                .con
                .query_row(r#"SELECT count(*) FROM "ds"."t""#, [], |r| r.get(0))
                .expect("read");
            assert_eq!(n, run);
        }
    }

    #[test]
    fn catalog_names_follow_duckdb() {
        assert_eq!(catalog_name("/x/sales.duckdb", &[]), "sales");
        assert_eq!(catalog_name("a.b.duckdb", &["b"]), "a");
        assert_eq!(catalog_name("memory.duckdb", &[]), "memory_db");
        assert_eq!(catalog_name("/x/.duckdb", &[]), "sluice_db");
        assert_eq!(catalog_name("/x/Sales.duckdb", &["sales"]), "Sales_db");
        assert_eq!(
            catalog_name("/x/sales.duckdb", &["sales", "sales_db"]),
            "sales_db_db"
        );
    }
}
