//! The PostgreSQL connection under sluice's shared SQL job client ([`SqlJobClient`]): a
//! blocking connection over sqlx (a current-thread runtime of its own) with the session
//! settings of the config, the catalog read from `pg_catalog`, errors that name the fix
//! (SQLSTATE hints, a lost connection or a server that stopped answering is retryable), the
//! package lock (an advisory lock on dataset and load id, see [`PostgresConnection::lock`]),
//! the checks PostgreSQL needs before a merge, and the bulk load: binary COPY (`crate::load`).
//!
//! The transaction of a package, the staging plan, dlt's system tables and the follow-up
//! statements are `sluice_sql::client`'s, shared with every SQL destination.

use std::path::Path;
use std::sync::Arc;

use arrow_array::{ArrayRef, RecordBatch};
use arrow_schema::{DataType as ArrowType, Field, Schema as ArrowSchema};
use sluice_sdk::destination::{BatchReader, ClientRequest, JobReport};
use sluice_sdk::schema::{MergeStrategy, Table};
use sluice_sdk::{BatchStream, CancelToken, Error, Result};
use sluice_sql::client::{
    Catalog, SqlClientOptions, SqlConnection, SqlJobClient, Target, TextRows,
};
use sluice_sql::jobs::{self, qualified, quote, SqlDialect};
use sqlx::postgres::{PgConnection, PgRow};
use sqlx::{Column as _, Row, TypeInfo as _, ValueRef as _};

use crate::config::PostgresConfig;
use crate::types::Postgres;

/// How long past `statement_timeout` sluice waits for the server's answer to a statement
/// (the server's own timeout error needs a moment to arrive) before it takes the connection
/// for dead.
const ANSWER_MARGIN: std::time::Duration = std::time::Duration::from_secs(5);
/// PostgreSQL's limit of columns in a table (MaxHeapAttributeNumber).
const MAX_COLUMNS: usize = 1600;

/// The job client of one dataset (schema) of one PostgreSQL database.
pub type PostgresClient = SqlJobClient<PostgresConnection>;

/// Connects the job client of `request`'s dataset.
pub fn open_client(config: Arc<PostgresConfig>, request: &ClientRequest) -> Result<PostgresClient> {
    let dataset = request.dataset_name.clone();
    if dataset.is_empty() {
        return Err(Error::config(
            "destination `postgres` needs a dataset name (the schema to write)",
        ));
    }
    let staging = request
        .staging_dataset_name
        .clone()
        .unwrap_or_else(|| config.staging_dataset(&dataset));
    check_name("dataset", &dataset)?;
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| Error::internal(format!("cannot start a runtime: {e}")))?;
    let replace_strategy = config.replace_strategy;
    let mut con = PostgresConnection {
        rt,
        con: None,
        config,
        server_version: 0,
        generation: 0,
    };
    con.connect()?;
    Ok(SqlJobClient::new(
        con,
        SqlClientOptions {
            dataset,
            staging,
            replace_strategy,
        },
    ))
}

/// A connection to one PostgreSQL database.
pub struct PostgresConnection {
    pub(crate) rt: tokio::runtime::Runtime,
    pub(crate) con: Option<PgConnection>,
    config: Arc<PostgresConfig>,
    /// `server_version_num`, e.g. 150004.
    server_version: u32,
    /// Counts dropped connections ([`SqlConnection::session`]).
    generation: u64,
}

impl std::fmt::Debug for PostgresConnection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PostgresConnection")
            .field("database", &self.config.credentials.redacted())
            .finish()
    }
}

pub(crate) async fn bounded<F: std::future::Future>(
    deadline: Option<std::time::Duration>,
    fut: F,
) -> Option<F::Output> {
    match deadline {
        Some(d) => tokio::time::timeout(d, fut).await.ok(),
        None => Some(fut.await),
    }
}

fn truncate(sql: &str) -> String {
    match sql.char_indices().nth(300) {
        Some((i, _)) => format!("{}...", &sql[..i]),
        None => sql.to_string(),
    }
}

/// Refuses a name PostgreSQL would cut: it keeps 63 bytes of a name, and the normalizer
/// shortens names to 63 characters (dlt's rule), which a name with non-ASCII characters can
/// exceed in bytes; the cut name would no longer match the schema.
fn check_name(what: &str, name: &str) -> Result<()> {
    if name.len() <= crate::types::MAX_IDENTIFIER {
        return Ok(());
    }
    let message = format!(
        "{what} name `{name}` is {} bytes long in UTF-8; PostgreSQL keeps {} bytes of a name and would cut it",
        name.len(),
        crate::types::MAX_IDENTIFIER
    );
    Err(if what == "dataset" {
        Error::config(format!("{message}\nhint: choose a shorter dataset_name (merge and staged replace also use `<dataset>_staging`)"))
    } else {
        Error::schema(format!("{message}\nhint: give the {what} a shorter name"))
    })
}

/// Refuses tables PostgreSQL cannot hold: a name it would cut, or more columns than its limit
/// of 1600 (with the columns a table already has in `existing`), naming the table, the first
/// column over the limit and the fix, before any statement is sent.
fn check_tables(tables: &[&Table], existing: &Catalog) -> Result<()> {
    let none = std::collections::BTreeSet::new();
    for t in tables {
        check_name("table", &t.name)?;
        let has = existing.get(&t.name).unwrap_or(&none);
        let mut count = has.len();
        let mut over: Option<String> = None;
        for c in jobs::complete_columns(t) {
            check_name("column", &c.name)?;
            if !has.contains(&c.name) {
                count += 1;
                if count > MAX_COLUMNS && over.is_none() {
                    over = Some(c.name.clone());
                }
            }
        }
        if let Some(column) = over {
            return Err(Error::schema(format!(
                "table `{}` would have {count} columns (the first over the limit is column `{column}`); PostgreSQL allows at most {MAX_COLUMNS} columns in a table\nhint: keep fewer columns in this table: load nested data as one json column (a columns hint with data_type json on its parent field, or a lower max_table_nesting), or leave columns out in the source; nothing of this load package was loaded",
                t.name
            )));
        }
    }
    Ok(())
}

/// Whether an error means the connection is gone (it is dropped and reopened).
fn connection_lost(e: &sqlx::Error) -> bool {
    match e {
        sqlx::Error::Io(_)
        | sqlx::Error::Protocol(_)
        | sqlx::Error::Tls(_)
        | sqlx::Error::WorkerCrashed => true,
        // administrator command, crash shutdown, cannot connect now
        sqlx::Error::Database(d) => {
            matches!(d.code().as_deref(), Some("57P01" | "57P02" | "57P03"))
        }
        _ => false,
    }
}

impl PostgresConnection {
    /// Where the data goes, for load info: the connection string without the password.
    pub fn location(&self) -> String {
        self.config.credentials.redacted()
    }

    pub(crate) fn connect(&mut self) -> Result<()> {
        if self.con.is_none() {
            let session = self.config.session_sql();
            let con = self.rt.block_on(sluice_sql::connect::postgres::connect(
                &self.config.credentials,
                &session,
            ))?;
            self.server_version = con.server_version_num().unwrap_or(0);
            self.con = Some(con);
        }
        Ok(())
    }

    /// Drops a connection that is gone (or that stopped answering), and says what became of
    /// the load: a retryable error.
    fn lost(&mut self, context: impl std::fmt::Display, what: impl std::fmt::Display) -> Error {
        self.discard();
        let context = context.to_string();
        let hint = if context.contains("`COMMIT`") {
            // the server may have committed before the connection went: whoever loads the
            // package again first asks _dlt_loads whether it is there
            "the load package may or may not have been committed; sluice looks its load id up in _dlt_loads before loading it again, so it is loaded once"
        } else {
            "nothing of this load package was committed; sluice retries it, and the next run loads it again"
        };
        Error::network(format!("{context}: {what}\nhint: {hint}")).retryable()
    }

    /// How long sluice waits for the answer to one statement: `statement_timeout` and a
    /// margin for the server's own timeout error (none without a `statement_timeout`).
    pub(crate) fn answer_deadline(&self) -> Option<std::time::Duration> {
        self.config.statement_timeout.map(|t| t + ANSWER_MARGIN)
    }

    /// The error of a statement whose answer did not come within [`Self::answer_deadline`]:
    /// the server or the network path to it stopped answering (the server would have ended
    /// the statement itself at `statement_timeout`). The connection is dropped.
    pub(crate) fn no_answer(&mut self, context: impl std::fmt::Display) -> Error {
        let target = self.config.credentials.redacted();
        let waited = self.answer_deadline().unwrap_or_default();
        let timeout = self.config.statement_timeout.unwrap_or_default();
        self.lost(
            context,
            format!(
                "no answer from {target} within {:.1}s (statement_timeout {:.1}s + {}s): the server or the network path to it stopped answering\nhint: if statements of this load really run that long, raise statement_timeout in [destination.postgres] (0 turns it off)",
                waited.as_secs_f64(),
                timeout.as_secs_f64(),
                ANSWER_MARGIN.as_secs()
            ),
        )
    }

    /// The error of a failed statement, with the connection dropped if it is gone.
    pub(crate) fn fail(&mut self, context: impl std::fmt::Display, e: sqlx::Error) -> Error {
        let target = self.config.credentials.redacted();
        if connection_lost(&e) {
            return self.lost(context, format!("the connection to {target} was lost: {e}"));
        }
        match &e {
            sqlx::Error::Database(d) => {
                let pg = d.try_downcast_ref::<sqlx::postgres::PgDatabaseError>();
                let code = d.code().map(|c| c.to_string()).unwrap_or_default();
                let mut msg = format!("{context}: {} (SQLSTATE {code})", d.message());
                if let Some(pg) = pg {
                    if let Some(detail) = pg.detail() {
                        msg.push_str(&format!("\ndetail: {detail}"));
                    }
                    if let Some(w) = pg.r#where() {
                        msg.push_str(&format!("\nwhere: {w}"));
                    }
                }
                let hint = match code.as_str() {
                    "22001" => Some("a value is longer than its column allows (varchar(n) from a precision hint); widen or drop the hint"),
                    "22003" => Some("a number is out of its column's range (a precision or scale hint); widen the column's type"),
                    "22P02" | "22007" | "22008" => Some("a value does not fit its column's type; check the column's data_type hint"),
                    "22P03" => Some("the server did not accept a value's binary form: the column's type was probably changed while the load ran; run again"),
                    "22021" if d.message().contains("0x00") => Some("PostgreSQL text cannot hold NUL (\\u0000) characters; remove them in the source, or give the column data_type binary"),
                    "22021" => Some("a value is not valid UTF-8; fix the source's encoding, or give the column data_type binary"),
                    "22P05" => Some("PostgreSQL jsonb cannot hold the NUL character (\\u0000) in a string; remove it in the source, or give the column data_type text"),
                    "54011" => Some("PostgreSQL allows at most 1600 columns in a table, and columns dropped from it still count; keep fewer columns (load nested data as one json column: a columns hint with data_type json, or a lower max_table_nesting), or recreate the table"),
                    "55P03" => Some("another session holds a lock on a table this load changes (another load of the same dataset, or a long query) for longer than lock_timeout; nothing of this load package was committed and the next run tries again; raise lock_timeout in [destination.postgres] to wait longer"),
                    "57014" if d.message().contains("statement timeout") => Some("a statement ran longer than statement_timeout; nothing of this load package was committed; raise statement_timeout in [destination.postgres] (0 turns it off) if statements of this load really run that long"),
                    "23505" if pg.and_then(|p| p.schema()) != Some("pg_catalog") => Some("a UNIQUE constraint was violated; the table already holds a row with this key"),
                    "23502" => Some("a NOT NULL column got NULL; check the column's nullable hint"),
                    "42939" => Some("names starting with pg_ are reserved by PostgreSQL; choose another dataset name"),
                    "42501" => Some("the user lacks a privilege; grant it CREATE on the database and USAGE, CREATE on the dataset's schema"),
                    "53100" => Some("the server's disk is full; free space, then run again: the package is still pending"),
                    "21000" if context.to_string().contains("MERGE") => Some("two rows of this load have the same primary key as one row of the table, and a MERGE cannot update a row twice (dlt fails the same way); send one row per key (deduplicate in the source), or use the delete-insert merge strategy, which keeps one row per primary key (a dedup_sort column hint chooses which)"),
                    "0A000" if context.to_string().contains("MERGE") => Some("merge strategy upsert needs PostgreSQL 15 or newer; use delete-insert"),
                    _ => None,
                };
                if let Some(h) = hint {
                    msg.push_str(&format!("\nhint: {h}"));
                }
                // two sessions creating the same schema or table at once: the loser hits a
                // unique index of the catalog (pg_namespace_nspname_index, ...); a retry
                // finds the object there
                let catalog_race =
                    code == "23505" && pg.and_then(|p| p.schema()) == Some("pg_catalog");
                if catalog_race {
                    msg.push_str("\nhint: another session created the same schema or table at the same moment; sluice retries");
                }
                let retryable = code.starts_with("40")
                    || code.starts_with("53")
                    || code == "55P03"
                    || code == "57014"
                    || catalog_race;
                let err = Error::destination(msg);
                if retryable {
                    err.retryable()
                } else {
                    err
                }
            }
            other => Error::destination(format!("{context}: {other}")),
        }
    }

    fn run(&mut self, sql: &str) -> Result<()> {
        tracing::debug!(target: "sluice::postgres", "{sql}");
        self.connect()?;
        let deadline = self.answer_deadline();
        let Self { rt, con, .. } = self;
        let Some(con) = con.as_mut() else {
            return Err(Error::internal("no connection"));
        };
        let r = rt.block_on(bounded(
            deadline,
            sqlx::raw_sql(sqlx::AssertSqlSafe(sql.to_string())).execute(con),
        ));
        let context = || format!("postgres failed to run `{}`", truncate(sql));
        match r {
            Some(Ok(_)) => Ok(()),
            Some(Err(e)) => Err(self.fail(context(), e)),
            None => Err(self.no_answer(context())),
        }
    }

    /// Runs a query with text parameters and returns its rows.
    pub(crate) fn fetch(&mut self, what: &str, sql: &str, params: &[&str]) -> Result<Vec<PgRow>> {
        let params: Vec<Option<&str>> = params.iter().map(|p| Some(*p)).collect();
        self.fetch_opt(what, sql, &params)
    }

    /// Takes the lock of package `load_id` in this dataset (an advisory lock), waiting up to
    /// `lock_timeout` for another session that holds it: a process killed just after sending
    /// COMMIT leaves a server session that may still commit the package, and the next attempt
    /// must see that commit before it reads the catalog and asks `_dlt_loads` whether to load
    /// the package again. In a transaction the lock is held to its end; outside one this only
    /// waits. Other packages and datasets are not held up.
    fn lock(&mut self, dataset: &str, load_id: &str) -> Result<()> {
        let started = std::time::Instant::now();
        loop {
            let rows = self.fetch(
                "cannot lock the load package",
                "SELECT pg_catalog.pg_try_advisory_xact_lock(pg_catalog.hashtext($1), pg_catalog.hashtext($2))",
                &[dataset, load_id],
            )?;
            if rows.first().and_then(|r| r.try_get::<bool, _>(0).ok()) == Some(true) {
                return Ok(());
            }
            let wait = self.config.lock_timeout;
            if wait.is_some_and(|w| started.elapsed() >= w) {
                let holder = self
                    .fetch(
                        "cannot read pg_locks",
                        "SELECT l.pid::text FROM pg_catalog.pg_locks l WHERE l.locktype = 'advisory' AND l.granted AND l.objsubid = 2 AND l.classid = pg_catalog.hashtext($1)::oid AND l.objid = pg_catalog.hashtext($2)::oid LIMIT 1",
                        &[dataset, load_id],
                    )
                    .ok()
                    .and_then(|r| r.first().and_then(|r| r.try_get::<String, _>(0).ok()))
                    .unwrap_or_else(|| "?".into());
                return Err(Error::destination(format!(
                    "load package {load_id} of dataset `{dataset}` is held by another PostgreSQL session (pid {holder}) for more than {:.1}s (lock_timeout)\nhint: an earlier attempt of this package may still be running or committing; if its process is gone, end the session with SELECT pg_terminate_backend({holder}) and run again",
                    wait.unwrap_or_default().as_secs_f64()
                ))
                .retryable());
            }
            std::thread::sleep(std::time::Duration::from_millis(100));
        }
    }

    /// Fails a load that holds two rows of one primary key for a root table whose `_dlt_id` is
    /// the hash of that key (merge strategies upsert and insert-only, spec b.3) while `_dlt_id`
    /// carries its UNIQUE constraint (`create_indexes`, dlt's default): both rows get the same
    /// `_dlt_id`. dlt 1.31 fails on such a load too (the insert into its staging table, which
    /// has the constraint as well, violates it: `items__dlt_id_key`); sluice's staging tables
    /// have no constraints, so it checks the staged rows before the merge and names the table,
    /// the key and the fix instead of a `_dlt_id` hash. Without `create_indexes` the rows go
    /// to the merge as in dlt: two rows of a new key are both inserted, two rows of a key the
    /// table holds fail the MERGE (SQLSTATE 21000, see `fail`).
    fn check_duplicate_keys(&mut self, staging: &str, root: &Table) -> Result<()> {
        let strategy = root.merge_strategy();
        if !self.config.create_indexes
            || !matches!(
                strategy,
                Some(MergeStrategy::Upsert) | Some(MergeStrategy::InsertOnly)
            )
        {
            return Ok(());
        }
        let unique_id = jobs::complete_columns(root)
            .iter()
            .any(|c| c.name == "_dlt_id" && c.unique == Some(true));
        let pk: Vec<String> = root
            .columns_with_hint("primary_key")
            .into_iter()
            .map(String::from)
            .collect();
        if !unique_id || pk.is_empty() {
            return Ok(());
        }
        let object = pk
            .iter()
            .map(|k| format!("'{}', s.{}", k.replace('\'', "''"), quote(k)))
            .collect::<Vec<_>>()
            .join(", ");
        let group = pk
            .iter()
            .map(|k| format!("s.{}", quote(k)))
            .collect::<Vec<_>>()
            .join(", ");
        let sql = format!(
            "SELECT pg_catalog.json_build_object({object})::text, count(*)::text FROM {} AS s GROUP BY {group} HAVING count(*) > 1 LIMIT 1",
            qualified(staging, &root.name)
        );
        let rows = self.fetch("cannot check the staged rows for repeated keys", &sql, &[])?;
        let Some(row) = rows.first() else {
            return Ok(());
        };
        let key: String = row.try_get(0).unwrap_or_default();
        let n: String = row.try_get(1).unwrap_or_default();
        let strategy = if strategy == Some(MergeStrategy::Upsert) {
            "upsert"
        } else {
            "insert-only"
        };
        let columns = pk
            .iter()
            .map(|k| format!("`{k}`"))
            .collect::<Vec<_>>()
            .join(", ");
        Err(Error::destination(format!(
            "table `{table}`: {n} rows of this load have the same primary key ({columns}) {key}; \
             merge strategy `{strategy}` gives them one `_dlt_id` (the hash of the key), which \
             is UNIQUE on PostgreSQL (create_indexes), so they cannot be loaded (dlt fails on \
             this load too); nothing of this load package was committed\n\
             hint: send one row per key (deduplicate in the source), or use the delete-insert \
             merge strategy, which keeps one row per primary key (a dedup_sort column hint \
             chooses which)",
            table = root.name
        )))
    }

    /// [`Self::fetch`] with optional (NULL) parameters.
    fn fetch_opt(&mut self, what: &str, sql: &str, params: &[Option<&str>]) -> Result<Vec<PgRow>> {
        tracing::debug!(target: "sluice::postgres", "{sql}");
        self.connect()?;
        let deadline = self.answer_deadline();
        let Self { rt, con, .. } = self;
        let Some(con) = con.as_mut() else {
            return Err(Error::internal("no connection"));
        };
        let mut q = sqlx::query(sqlx::AssertSqlSafe(sql.to_string()));
        for p in params {
            q = q.bind(*p);
        }
        match rt.block_on(bounded(deadline, q.fetch_all(con))) {
            Some(r) => r.map_err(|e| self.fail(what, e)),
            None => Err(self.no_answer(what)),
        }
    }
}

/// A text cell of a row read with the simple query protocol.
fn text_cell(row: &PgRow, i: usize) -> Option<String> {
    let v = row.try_get_raw(i).ok()?;
    if v.is_null() {
        return None;
    }
    v.as_str().ok().map(String::from)
}

/// A cell of a row read with the extended protocol, as text.
fn cell(row: &PgRow, i: usize) -> Option<String> {
    if let Ok(v) = row.try_get::<Option<String>, _>(i) {
        return v;
    }
    if let Ok(v) = row.try_get::<Option<i64>, _>(i) {
        return v.map(|v| v.to_string());
    }
    if let Ok(v) = row.try_get::<Option<i32>, _>(i) {
        return v.map(|v| v.to_string());
    }
    if let Ok(v) = row.try_get::<Option<bool>, _>(i) {
        return v.map(|v| v.to_string());
    }
    None
}

impl SqlConnection for PostgresConnection {
    fn name(&self) -> &'static str {
        "postgres"
    }

    fn dialect(&self) -> &dyn SqlDialect {
        &Postgres
    }

    fn execute(&mut self, sql: &str) -> Result<()> {
        self.run(sql)
    }

    fn query_text(&mut self, what: &str, sql: &str, params: &[Option<&str>]) -> Result<TextRows> {
        let rows = self.fetch_opt(what, sql, params)?;
        Ok(rows
            .iter()
            .map(|r| (0..r.len()).map(|i| cell(r, i)).collect())
            .collect())
    }

    fn param(&self, n: usize) -> String {
        format!("${n}::text")
    }

    /// READ COMMITTED whatever the server's default: every statement sees what committed
    /// before it (a package committed by another session while this one waited for its lock,
    /// above all).
    fn begin_statement(&self) -> &'static str {
        "BEGIN ISOLATION LEVEL READ COMMITTED"
    }

    fn existing_columns(&mut self, dataset: &str) -> Result<Catalog> {
        let rows = self.fetch(
            "cannot read the catalog",
            "SELECT c.relname::text, a.attname::text FROM pg_catalog.pg_attribute a \
             JOIN pg_catalog.pg_class c ON c.oid = a.attrelid \
             JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace \
             WHERE n.nspname = $1 AND c.relkind IN ('r', 'p') AND a.attnum > 0 AND NOT a.attisdropped",
            &[dataset],
        )?;
        let mut out = Catalog::new();
        for r in rows {
            let t: String = r.try_get(0).unwrap_or_default();
            let c: String = r.try_get(1).unwrap_or_default();
            out.entry(t).or_default().insert(c);
        }
        Ok(out)
    }

    fn table_exists(&mut self, dataset: &str, table: &str) -> Result<bool> {
        let rows = self.fetch(
            "cannot look up a table",
            "SELECT 1 FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = $1 AND c.relname = $2",
            &[dataset, table],
        )?;
        Ok(!rows.is_empty())
    }

    fn dataset_exists(&mut self, dataset: &str) -> Result<bool> {
        let rows = self.fetch(
            "cannot read the catalog",
            "SELECT 1 FROM pg_catalog.pg_namespace WHERE nspname = $1",
            &[dataset],
        )?;
        Ok(!rows.is_empty())
    }

    fn lock_load(&mut self, dataset: &str, load_id: &str) -> Result<()> {
        self.lock(dataset, load_id)
    }

    /// Names PostgreSQL would cut, and tables over its column limit (the staging dataset's
    /// name is checked when it is first used).
    fn check_tables(&self, dataset: &str, tables: &[&Table], existing: &Catalog) -> Result<()> {
        check_name("dataset", dataset)?;
        check_tables(tables, existing)
    }

    fn write_rows(
        &mut self,
        target: Target<'_>,
        data: BatchReader,
        cancel: &CancelToken,
    ) -> Result<JobReport> {
        let rows = self.copy(target.dataset, target.table, data, cancel)?;
        Ok(JobReport {
            rows,
            ..Default::default()
        })
    }

    fn load_file(
        &mut self,
        target: Target<'_>,
        path: &Path,
        cancel: &CancelToken,
    ) -> Result<JobReport> {
        let (reader, bytes) = crate::load::read_parquet(path)?;
        let mut report = self.write_rows(target, reader, cancel)?;
        report.bytes = bytes;
        Ok(report)
    }

    /// `upsert` needs MERGE (PostgreSQL 15); rows that would share a UNIQUE `_dlt_id` are
    /// refused with the key and the fix.
    fn check_merge(&mut self, staging: &str, chain: &[&Table]) -> Result<()> {
        let root = chain[0];
        if root.merge_strategy() == Some(MergeStrategy::Upsert) && self.server_version < 150_000 {
            return Err(Error::unsupported(format!(
                "table `{}`: merge strategy `upsert` needs PostgreSQL 15 or newer (MERGE); the server is {}\nhint: use the delete-insert strategy",
                root.name, self.server_version
            )));
        }
        self.check_duplicate_keys(staging, root)
    }

    fn unique_constraints(&self) -> bool {
        self.config.create_indexes
    }

    fn query(&mut self, sql: &str, _cancel: &CancelToken) -> Result<BatchStream> {
        // the simple query protocol returns every value as text; numbers and booleans are
        // typed back, the rest stays text
        self.connect()?;
        let deadline = self.answer_deadline();
        let Self { rt, con, .. } = self;
        let Some(con) = con.as_mut() else {
            return Err(Error::internal("no connection"));
        };
        let r = rt.block_on(bounded(
            deadline,
            sqlx::raw_sql(sqlx::AssertSqlSafe(sql.to_string())).fetch_all(con),
        ));
        let rows = match r {
            Some(r) => r.map_err(|e| self.fail("query failed", e))?,
            None => return Err(self.no_answer("query failed")),
        };
        let names: Vec<(String, String)> = rows
            .first()
            .map(|r| {
                r.columns()
                    .iter()
                    .map(|c| (c.name().to_string(), c.type_info().name().to_string()))
                    .collect()
            })
            .unwrap_or_default();
        let mut fields = Vec::new();
        let mut arrays: Vec<ArrayRef> = Vec::new();
        for (i, (name, ty)) in names.iter().enumerate() {
            let cells = rows.iter().map(|r| text_cell(r, i));
            let (t, a): (ArrowType, ArrayRef) = match ty.as_str() {
                "INT2" | "INT4" | "INT8" => (
                    ArrowType::Int64,
                    Arc::new(arrow_array::Int64Array::from_iter(
                        cells.map(|c| c.and_then(|v| v.parse::<i64>().ok())),
                    )),
                ),
                "FLOAT4" | "FLOAT8" => (
                    ArrowType::Float64,
                    Arc::new(arrow_array::Float64Array::from_iter(
                        cells.map(|c| c.and_then(|v| v.parse::<f64>().ok())),
                    )),
                ),
                "BOOL" => (
                    ArrowType::Boolean,
                    Arc::new(arrow_array::BooleanArray::from_iter(
                        cells.map(|c| c.map(|v| v == "t")),
                    )),
                ),
                _ => (
                    ArrowType::Utf8,
                    Arc::new(arrow_array::StringArray::from_iter(cells)),
                ),
            };
            fields.push(Field::new(name, t, true));
            arrays.push(a);
        }
        let schema = Arc::new(ArrowSchema::new(fields));
        let batches: Vec<Result<RecordBatch>> = if arrays.is_empty() {
            Vec::new()
        } else {
            vec![RecordBatch::try_new(schema.clone(), arrays).map_err(Error::from)]
        };
        Ok(BatchStream::from_batches(schema, batches, None))
    }

    fn session(&self) -> u64 {
        self.generation
    }

    fn discard(&mut self) {
        self.con = None;
        self.generation += 1;
    }
}
