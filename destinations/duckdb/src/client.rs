//! The DuckDB job client.
//!
//! A load package runs in one DuckDB transaction: `start_load` begins it (and truncates the
//! tables a `truncate-and-insert` replace empties), every job inserts its parquet file with
//! DuckDB's own reader, and `complete_load` runs the merge/replace statements, writes the
//! `_dlt_loads` row and commits. A process killed anywhere before the commit leaves the dataset
//! as it was (DuckDB rolls the transaction back from its WAL), and the package is replayed:
//! append is exactly-once per package, and a failed replace never leaves an empty table (unlike
//! dlt, whose truncate-and-insert commits the truncation first, dlt issue #3025).

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use duckdb::{params, Connection};

use sluice_sdk::destination::{
    BatchReader, ClientRequest, DropTablesRequest, JobReport, LoadCompletion, LoadJob, LoadPlan,
    SchemaUpdate, SchemaUpdateRequest, StoredSchema, StoredState,
};
use sluice_sdk::schema::{Schema, Table, WriteDisposition};
use sluice_sdk::{BatchStream, CancelToken, DestinationClient, Error, Result};

use crate::config::DuckDbConfig;
use crate::sql;
use crate::types::{literal, quote};
use sluice_sql::jobs;

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

/// A job client for one dataset of one DuckDB file.
pub struct DuckDbClient {
    con: Connection,
    path: String,
    dataset: String,
    staging: String,
    config: DuckDbConfig,
    schema: Option<Schema>,
    plan: Option<LoadPlan>,
    in_transaction: bool,
}

impl std::fmt::Debug for DuckDbClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DuckDbClient")
            .field("path", &self.path)
            .field("dataset", &self.dataset)
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

impl DuckDbClient {
    /// Opens the database file of `request`'s pipeline.
    pub fn open(config: &DuckDbConfig, request: &ClientRequest) -> Result<Self> {
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
        let dataset = request.dataset_name.clone();
        let staging = request
            .staging_dataset_name
            .clone()
            .unwrap_or_else(|| config.staging_dataset(&dataset));
        let alias = catalog_name(&path, &[&dataset, &staging]);
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
        Ok(Self {
            con,
            path,
            dataset,
            staging,
            config: config.clone(),
            schema: None,
            plan: None,
            in_transaction: false,
        })
    }

    fn exec(&self, sql: &str) -> Result<()> {
        tracing::debug!(target: "sluice::duckdb", "{sql}");
        self.con
            .execute_batch(sql)
            .map_err(|e| db_err(format!("duckdb failed to run `{}`", truncate(sql)), e))
    }

    fn table_exists(&self, dataset: &str, table: &str) -> Result<bool> {
        let n: i64 = self
            .con
            .query_row(
                "SELECT count(*) FROM information_schema.tables WHERE table_catalog = current_database() AND table_schema = ? AND table_name = ?",
                params![dataset, table],
                |r| r.get(0),
            )
            .map_err(|e| db_err("cannot read information_schema", e))?;
        Ok(n > 0)
    }

    fn existing_columns(&self, dataset: &str) -> Result<BTreeMap<String, BTreeSet<String>>> {
        let mut stmt = self
            .con
            .prepare("SELECT table_name, column_name FROM information_schema.columns WHERE table_catalog = current_database() AND table_schema = ?")
            .map_err(|e| db_err("cannot read information_schema", e))?;
        let mut rows = stmt
            .query(params![dataset])
            .map_err(|e| db_err("cannot read information_schema", e))?;
        let mut out: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
        while let Some(r) = rows.next().map_err(|e| db_err("information_schema", e))? {
            let t: String = r.get(0).map_err(|e| db_err("information_schema", e))?;
            let c: String = r.get(1).map_err(|e| db_err("information_schema", e))?;
            out.entry(t).or_default().insert(c);
        }
        Ok(out)
    }

    /// Creates missing tables and columns of `tables` in `dataset`.
    fn sync_tables(
        &self,
        dataset: &str,
        tables: &[&Table],
        update: &mut SchemaUpdate,
    ) -> Result<()> {
        self.exec(&format!("CREATE SCHEMA IF NOT EXISTS {}", quote(dataset)))?;
        let existing = self.existing_columns(dataset)?;
        for s in jobs::schema_changes(&sql::DuckDb, dataset, tables, &existing, false, update)? {
            self.exec(&s)?;
        }
        Ok(())
    }

    fn schema(&self) -> Result<&Schema> {
        self.schema
            .as_ref()
            .ok_or_else(|| Error::internal("the load started before the schema was stored"))
    }

    /// Root tables touched by the plan (with jobs, or listed as loaded without rows).
    fn plan_roots(&self) -> Result<Vec<String>> {
        let schema = self.schema()?;
        Ok(self
            .plan
            .as_ref()
            .map(|p| jobs::plan_roots(schema, p))
            .unwrap_or_default())
    }

    /// Whether rows of the chain rooted at `root` go through the staging dataset.
    fn uses_staging(&self, root: &str) -> Result<bool> {
        let truncate = self
            .config
            .replace_strategy
            .as_deref()
            .is_none_or(|s| s == "truncate-and-insert");
        Ok(jobs::uses_staging(self.schema()?, root, truncate))
    }

    fn rollback(&mut self) {
        if self.in_transaction {
            let _ = self.con.execute_batch("ROLLBACK");
            self.in_transaction = false;
        }
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

impl Drop for DuckDbClient {
    fn drop(&mut self) {
        self.rollback();
    }
}

impl DestinationClient for DuckDbClient {
    fn initialize_storage(&mut self) -> Result<()> {
        self.exec(&format!(
            "CREATE SCHEMA IF NOT EXISTS {}",
            quote(&self.dataset)
        ))
    }

    fn is_storage_initialized(&mut self) -> Result<bool> {
        let n: i64 = self
            .con
            .query_row(
                "SELECT count(*) FROM information_schema.schemata WHERE catalog_name = current_database() AND schema_name = ?",
                params![self.dataset],
                |r| r.get(0),
            )
            .map_err(|e| db_err("cannot read information_schema", e))?;
        Ok(n > 0)
    }

    fn drop_storage(&mut self) -> Result<()> {
        self.rollback();
        for ds in [self.dataset.clone(), self.staging.clone()] {
            self.exec(&format!("DROP SCHEMA IF EXISTS {} CASCADE", quote(&ds)))?;
        }
        Ok(())
    }

    fn get_stored_schema(&mut self, schema_name: &str) -> Result<Option<StoredSchema>> {
        if !self.table_exists(&self.dataset, "_dlt_version")? {
            return Ok(None);
        }
        let sql = format!(
            "SELECT version, engine_version, CAST(inserted_at AS VARCHAR), schema_name, version_hash, schema FROM {} WHERE schema_name = ? ORDER BY inserted_at DESC, version DESC LIMIT 1",
            sql::qualified(&self.dataset, "_dlt_version")
        );
        let mut stmt = self
            .con
            .prepare(&sql)
            .map_err(|e| db_err("cannot read _dlt_version", e))?;
        let mut rows = stmt
            .query(params![schema_name])
            .map_err(|e| db_err("cannot read _dlt_version", e))?;
        match rows
            .next()
            .map_err(|e| db_err("cannot read _dlt_version", e))?
        {
            None => Ok(None),
            Some(r) => Ok(Some(StoredSchema {
                version: r.get(0).map_err(|e| db_err("_dlt_version", e))?,
                engine_version: r.get(1).map_err(|e| db_err("_dlt_version", e))?,
                inserted_at: r.get(2).map_err(|e| db_err("_dlt_version", e))?,
                schema_name: r.get(3).map_err(|e| db_err("_dlt_version", e))?,
                version_hash: r.get(4).map_err(|e| db_err("_dlt_version", e))?,
                schema: r.get(5).map_err(|e| db_err("_dlt_version", e))?,
            })),
        }
    }

    fn get_stored_state(&mut self, pipeline_name: &str) -> Result<Option<StoredState>> {
        if !self.table_exists(&self.dataset, "_dlt_pipeline_state")?
            || !self.table_exists(&self.dataset, "_dlt_loads")?
        {
            return Ok(None);
        }
        let sql = format!(
            "SELECT s.version, s.engine_version, s.pipeline_name, s.state, CAST(s.created_at AS VARCHAR), s.version_hash, s._dlt_load_id FROM {} AS s JOIN {} AS l ON l.load_id = s._dlt_load_id WHERE s.pipeline_name = ? AND l.status = 0 ORDER BY l.load_id DESC LIMIT 1",
            sql::qualified(&self.dataset, "_dlt_pipeline_state"),
            sql::qualified(&self.dataset, "_dlt_loads")
        );
        let mut stmt = self
            .con
            .prepare(&sql)
            .map_err(|e| db_err("cannot read the pipeline state", e))?;
        let mut rows = stmt
            .query(params![pipeline_name])
            .map_err(|e| db_err("cannot read the pipeline state", e))?;
        match rows.next().map_err(|e| db_err("pipeline state", e))? {
            None => Ok(None),
            Some(r) => Ok(Some(StoredState {
                version: r.get(0).map_err(|e| db_err("pipeline state", e))?,
                engine_version: r.get(1).map_err(|e| db_err("pipeline state", e))?,
                pipeline_name: r.get(2).map_err(|e| db_err("pipeline state", e))?,
                state: r.get(3).map_err(|e| db_err("pipeline state", e))?,
                created_at: r.get(4).map_err(|e| db_err("pipeline state", e))?,
                version_hash: r.get(5).map_err(|e| db_err("pipeline state", e))?,
                load_id: r.get(6).map_err(|e| db_err("pipeline state", e))?,
            })),
        }
    }

    fn update_stored_schema(
        &mut self,
        schema: &Schema,
        schema_json: &str,
        request: &SchemaUpdateRequest,
    ) -> Result<SchemaUpdate> {
        let mut update = SchemaUpdate::default();
        let tables: Vec<&Table> = schema
            .tables
            .values()
            .filter(|t| {
                request
                    .only_tables
                    .as_ref()
                    .is_none_or(|only| only.contains(&t.name))
            })
            .collect();
        self.sync_tables(&self.dataset.clone(), &tables, &mut update)?;
        // record the schema version once
        let n: i64 = self
            .con
            .query_row(
                &format!(
                    "SELECT count(*) FROM {} WHERE version_hash = ?",
                    sql::qualified(&self.dataset, "_dlt_version")
                ),
                params![schema.version_hash],
                |r| r.get(0),
            )
            .map_err(|e| db_err("cannot read _dlt_version", e))?;
        if n == 0 {
            let now = chrono::Utc::now()
                .format("%Y-%m-%d %H:%M:%S%.6f+00")
                .to_string();
            self.con
                .execute(
                    &format!(
                        "INSERT INTO {} (version, engine_version, inserted_at, schema_name, version_hash, schema) VALUES (?, ?, ?::TIMESTAMPTZ, ?, ?, ?)",
                        sql::qualified(&self.dataset, "_dlt_version")
                    ),
                    params![
                        schema.version as i64,
                        i64::from(schema.engine_version),
                        now,
                        schema.name,
                        schema.version_hash,
                        schema_json
                    ],
                )
                .map_err(|e| db_err("cannot store the schema version", e))?;
            update.stored_version = true;
        }
        self.schema = Some(schema.clone());
        Ok(update)
    }

    fn start_load(&mut self, load_id: &str, plan: &LoadPlan) -> Result<()> {
        self.rollback();
        self.plan = Some(plan.clone());
        let roots = self.plan_roots()?;
        // staging tables are created (and evolved) outside the load transaction
        let mut update = SchemaUpdate::default();
        for root in &roots {
            if self.uses_staging(root)? {
                let schema = self.schema()?.clone();
                let chain = sql::chain(&schema, root);
                self.sync_tables(&self.staging.clone(), &chain, &mut update)?;
            }
        }
        self.exec("BEGIN TRANSACTION")?;
        self.in_transaction = true;
        let result = (|| {
            let schema = self.schema()?.clone();
            for root in &roots {
                let chain = sql::chain(&schema, root);
                if self.uses_staging(root)? {
                    for t in &chain {
                        self.exec(&format!(
                            "DELETE FROM {}",
                            sql::qualified(&self.staging, &t.name)
                        ))?;
                    }
                } else if schema.write_disposition_of(root) == WriteDisposition::Replace {
                    for t in &chain {
                        self.exec(&format!(
                            "DELETE FROM {}",
                            sql::qualified(&self.dataset, &t.name)
                        ))?;
                    }
                }
            }
            Ok(())
        })();
        if result.is_err() {
            self.rollback();
        }
        tracing::debug!(target: "sluice::duckdb", load_id, roots = ?roots, "load started");
        result
    }

    fn write_table(
        &mut self,
        load_id: &str,
        job: &LoadJob,
        data: BatchReader,
        cancel: &CancelToken,
    ) -> Result<JobReport> {
        // stage the batches as a parquet file DuckDB reads itself
        let dir = std::env::temp_dir().join(format!("sluice-duckdb-{}", std::process::id()));
        std::fs::create_dir_all(&dir)
            .map_err(|e| Error::io(format!("`{}`: {e}", dir.display())))?;
        let path = dir.join(format!("{}.{}.parquet", load_id, rand::random::<u64>()));
        {
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
        }
        let report = self.load_file(load_id, job, &path, cancel);
        let _ = std::fs::remove_file(&path);
        report
    }

    fn load_file(
        &mut self,
        _load_id: &str,
        job: &LoadJob,
        path: &Path,
        cancel: &CancelToken,
    ) -> Result<JobReport> {
        cancel.check()?;
        if !self.in_transaction {
            return Err(Error::internal(
                "a job was loaded outside start_load/complete_load",
            ));
        }
        let root = self.schema()?.root_of(&job.table_name).to_string();
        let dataset = if self.uses_staging(&root)? {
            self.staging.clone()
        } else {
            self.dataset.clone()
        };
        let sql = format!(
            "INSERT INTO {} BY NAME SELECT * FROM read_parquet({})",
            sql::qualified(&dataset, &job.table_name),
            literal(&path.display().to_string())
        );
        tracing::debug!(target: "sluice::duckdb", "{sql}");
        let rows = self.con.execute(&sql, []).map_err(|e| {
            db_err(
                format!(
                    "cannot load `{}` into table `{}`",
                    path.display(),
                    job.table_name
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

    fn complete_load(&mut self, load_id: &str, completion: &LoadCompletion) -> Result<()> {
        if !self.in_transaction {
            return Err(Error::internal("complete_load without start_load"));
        }
        let result = (|| {
            let schema = self.schema()?.clone();
            let suffix: String = format!("{:08x}", rand::random::<u32>());
            for root in self.plan_roots()? {
                let chain = sql::chain(&schema, &root);
                if chain.is_empty() || !self.uses_staging(&root)? {
                    continue;
                }
                let followup = sql::Followup {
                    dialect: &sql::DuckDb,
                    dataset: &self.dataset,
                    staging: &self.staging,
                    temp_suffix: &suffix,
                };
                let boundary = sluice_sql::jobs::scd2_boundary(chain[0], completion);
                let statements =
                    followup.statements(&chain, schema.write_disposition_of(&root), &boundary);
                for s in statements {
                    self.exec(&s)?;
                }
            }
            if let Some(state) = &completion.state {
                let id: [u8; 10] = rand::random();
                let id: String = id.iter().map(|b| format!("{b:02x}")).collect();
                self.con
                    .execute(
                        &format!(
                            "INSERT INTO {} (version, engine_version, pipeline_name, state, created_at, version_hash, _dlt_load_id, _dlt_id) VALUES (?, ?, ?, ?, ?::TIMESTAMPTZ, ?, ?, ?)",
                            sql::qualified(&self.dataset, "_dlt_pipeline_state")
                        ),
                        params![
                            state.version,
                            state.engine_version,
                            state.pipeline_name,
                            state.state,
                            state.created_at,
                            state.version_hash,
                            load_id,
                            id
                        ],
                    )
                    .map_err(|e| db_err("cannot store the pipeline state", e))?;
            }
            self.con
                .execute(
                    &format!(
                        "INSERT INTO {} (load_id, schema_name, status, inserted_at, schema_version_hash) VALUES (?, ?, 0, ?::TIMESTAMPTZ, ?)",
                        sql::qualified(&self.dataset, "_dlt_loads")
                    ),
                    params![load_id, completion.schema_name, completion.inserted_at, completion.schema_version_hash],
                )
                .map_err(|e| db_err("cannot record the load in _dlt_loads", e))?;
            self.exec("COMMIT")?;
            self.in_transaction = false;
            Ok(())
        })();
        if result.is_err() {
            self.rollback();
        }
        result
    }

    fn is_load_completed(&mut self, load_id: &str) -> Result<bool> {
        if !self.table_exists(&self.dataset, "_dlt_loads")? {
            return Ok(false);
        }
        let n: i64 = self
            .con
            .query_row(
                &format!(
                    "SELECT count(*) FROM {} WHERE load_id = ?",
                    sql::qualified(&self.dataset, "_dlt_loads")
                ),
                params![load_id],
                |r| r.get(0),
            )
            .map_err(|e| db_err("cannot read _dlt_loads", e))?;
        Ok(n > 0)
    }

    fn drop_tables(&mut self, request: &DropTablesRequest) -> Result<()> {
        for t in &request.tables {
            self.exec(&format!(
                "DROP TABLE IF EXISTS {}",
                sql::qualified(&self.dataset, t)
            ))?;
            if request.staging {
                self.exec(&format!(
                    "DROP TABLE IF EXISTS {}",
                    sql::qualified(&self.staging, t)
                ))?;
            }
        }
        Ok(())
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

    fn request() -> ClientRequest {
        ClientRequest {
            dataset_name: "ds".into(),
            pipeline_name: "p".into(),
            ..Default::default()
        }
    }

    fn setting(client: &DuckDbClient, name: &str) -> String {
        client
            .con
            .query_row("SELECT current_setting(?)::VARCHAR", [name], |r| r.get(0))
            .expect("setting")
    }

    #[test]
    fn a_load_runs_with_a_192mb_buffer_pool_unless_configured() {
        let dir = tempfile::tempdir().expect("tmp");
        let request = request();
        let mut config = DuckDbConfig {
            credentials: Some(dir.path().join("a.duckdb").display().to_string()),
            ..Default::default()
        };
        let client = DuckDbClient::open(&config, &request).expect("open");
        // DuckDB prints the limit in MiB: 192 MB = 183.1 MiB
        assert_eq!(setting(&client, "memory_limit"), "183.1 MiB");
        assert_eq!(setting(&client, "preserve_insertion_order"), "false");
        drop(client);
        config.memory_limit = Some("1GB".into());
        let client = DuckDbClient::open(&config, &request).expect("open");
        assert_eq!(setting(&client, "memory_limit"), "953.6 MiB");
    }

    fn row_groups_of(client: &DuckDbClient, rows: u64) -> i64 {
        client
            .con
            .execute_batch(&format!(
                "CREATE TABLE t AS SELECT range AS id, 'v' || range AS v FROM range({rows})"
            ))
            .expect("insert");
        client
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
        let client = DuckDbClient::open(&config, &request).expect("open");
        // 100k rows: 4 row groups of at most 30720 rows (DuckDB's 122880 would make one)
        assert_eq!(row_groups_of(&client, 100_000), 4);
        // the file is the current catalog, named as DuckDB names a file it opens, and spills
        // next to it
        let catalog: String = client
            .con
            .query_row("SELECT current_database()", [], |r| r.get(0))
            .expect("catalog");
        assert_eq!(catalog, "sales");
        assert_eq!(setting(&client, "temp_directory"), format!("{path}.tmp"));
        // the instance's own `memory` catalog is gone: a dataset of that name is unambiguous
        client
            .con
            .execute_batch("CREATE SCHEMA memory; CREATE TABLE memory.m AS SELECT 1 AS a")
            .expect("a dataset named memory");
        let a: i64 = client
            .con
            .query_row("SELECT a FROM memory.m", [], |r| r.get(0))
            .expect("memory.m");
        assert_eq!(a, 1);
        drop(client);
        config.row_group_size = Some(0);
        config.credentials = Some(dir.path().join("b.duckdb").display().to_string());
        let client = DuckDbClient::open(&config, &request).expect("open");
        assert_eq!(row_groups_of(&client, 100_000), 1);
        drop(client);
        config.row_group_size = Some(1000);
        let err = DuckDbClient::open(&config, &request).expect_err("not a multiple of 2048");
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
            let mut client = DuckDbClient::open(&config, &request()).expect("open");
            client.initialize_storage().expect("create the dataset");
            client
                .exec(r#"CREATE TABLE IF NOT EXISTS "ds"."t" (a BIGINT); INSERT INTO "ds"."t" VALUES (1)"#)
                .expect("write");
            let n: i64 = client
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
