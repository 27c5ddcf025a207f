//! The PostgreSQL job client.
//!
//! A load package runs in one transaction, schema changes included. `update_stored_schema`
//! only checks the schema (names, PostgreSQL's column limit) and notes it; the transaction
//! that loads a package first takes the package's lock (an advisory lock on dataset and load
//! id, see `lock_load`), then brings the dataset in line with the schema
//! (tables created, columns added, the `_dlt_version` row): `is_load_completed` or
//! `start_load` does it, whichever comes first. So a second run of the same package waits for
//! the first (whose process may have died while its session commits) before it reads the
//! catalog, and never alters a table under it. `start_load` then empties the staging tables
//! (and, for `replace` with `truncate-and-insert`, the tables themselves), every job streams
//! its file with binary COPY, and `complete_load` runs the merge/replace
//! statements, adds the UNIQUE constraints of tables created by this load (after their data, so
//! the index is built once instead of row by row), writes the state and `_dlt_loads` rows and
//! commits. A failure or a killed process anywhere before the commit leaves the dataset as it
//! was, and the package is loaded again by the next run: append is exactly-once per package,
//! and a failed replace never leaves an empty table (dlt commits the truncation first, dlt
//! issue #3025).
//!
//! The client is blocking: it owns a current-thread runtime for sqlx, and a COPY reads and
//! encodes its file on a thread of its own while the runtime sends the previous chunk.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::sync::Arc;

use arrow_array::{ArrayRef, RecordBatch};
use arrow_schema::{DataType as ArrowType, Field, Schema as ArrowSchema};
use sluice_sdk::destination::{
    BatchReader, ClientRequest, DropTablesRequest, JobReport, LoadCompletion, LoadJob, LoadPlan,
    SchemaUpdate, SchemaUpdateRequest, StoredSchema, StoredState,
};
use sluice_sdk::schema::{MergeStrategy, Schema, Table, WriteDisposition};
use sluice_sdk::{BatchStream, CancelToken, DestinationClient, Error, Result};
use sluice_sql::jobs::{self, qualified, quote, Followup};
use sqlx::postgres::{PgConnection, PgRow};
use sqlx::{Column as _, Row, TypeInfo as _, ValueRef as _};

use crate::config::{PostgresConfig, ReplaceStrategy};
use crate::copy::{Encoder, HEADER, TRAILER};
use crate::types::Postgres;

/// Bytes of COPY data sent at a time.
const CHUNK: usize = 1 << 20;
/// Chunks encoded ahead of the one being sent.
const AHEAD: usize = 4;
/// How long past `statement_timeout` sluice waits for the server's answer to a statement
/// (the server's own timeout error needs a moment to arrive) before it takes the connection
/// for dead.
const ANSWER_MARGIN: std::time::Duration = std::time::Duration::from_secs(5);
/// PostgreSQL's limit of columns in a table (MaxHeapAttributeNumber).
const MAX_COLUMNS: usize = 1600;
/// Rows per batch read from a load file.
const BATCH_ROWS: usize = 16 * 1024;

/// A job client for one dataset (schema) of one PostgreSQL database.
pub struct PostgresClient {
    rt: tokio::runtime::Runtime,
    con: Option<PgConnection>,
    config: Arc<PostgresConfig>,
    dataset: String,
    staging: String,
    schema: Option<Schema>,
    /// The schema document of `schema`, stored in `_dlt_version`.
    schema_json: Option<String>,
    /// `update_stored_schema` was called and the dataset is not yet in line with `schema`:
    /// the tables it named (all: `None`).
    pending_schema: Option<Option<Vec<String>>>,
    /// The load id whose lock the open transaction holds.
    locked: Option<String>,
    plan: Option<LoadPlan>,
    /// `BEGIN` was sent and neither `COMMIT` nor `ROLLBACK` yet.
    in_transaction: bool,
    /// The open transaction carries a load (`start_load` ran in it).
    load_started: bool,
    /// Tables created (or swapped in) by the open transaction: they get their UNIQUE
    /// constraints when the load completes.
    created: BTreeSet<String>,
    /// `server_version_num`, e.g. 150004.
    server_version: u32,
}

impl std::fmt::Debug for PostgresClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PostgresClient")
            .field("database", &self.config.credentials.redacted())
            .field("dataset", &self.dataset)
            .finish()
    }
}

/// Whether tables being created are staging tables, and of which kind.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Staging {
    /// A table of the dataset.
    No,
    /// Scratch space emptied before every use: no WAL.
    Unlogged,
    /// A staging table that `staging-optimized` replace swaps into the dataset.
    Logged,
}

/// What the encoding thread sends to the COPY.
enum Chunk {
    /// Rows (the first chunk starts with the header).
    Data(Vec<u8>),
    /// The last rows and the trailer: only after it is the COPY finished (committed to the
    /// transaction); a stream that ends without it is aborted.
    Last(Vec<u8>),
    /// Reading or encoding the file failed.
    Failed(Error),
}

/// Sends the chunks of `rx` as the data of COPY `statement`; finishes the COPY only after the
/// last chunk, and aborts it when the stream fails or ends early (the encoding thread died),
/// so that a partial file is never loaded.
async fn copy_in(
    con: &mut PgConnection,
    statement: &str,
    mut rx: tokio::sync::mpsc::Receiver<Chunk>,
) -> std::result::Result<u64, CopyError> {
    let mut copy = con.copy_in_raw(statement).await?;
    loop {
        match rx.recv().await {
            Some(Chunk::Data(bytes)) => {
                copy.send(bytes).await?;
            }
            Some(Chunk::Last(bytes)) => {
                copy.send(bytes).await?;
                return Ok(copy.finish().await?);
            }
            Some(Chunk::Failed(e)) => {
                let _ = copy.abort(e.message.clone()).await;
                return Err(CopyError::Data(e));
            }
            None => {
                let msg = "the thread encoding the load file stopped before its end";
                let _ = copy.abort(msg).await;
                return Err(CopyError::Data(Error::internal(format!(
                    "{msg}; nothing of the file was loaded"
                ))));
            }
        }
    }
}

/// An error of COPY: from the database, or from reading and encoding the file.
enum CopyError {
    Db(sqlx::Error),
    Data(Error),
}

impl From<sqlx::Error> for CopyError {
    fn from(e: sqlx::Error) -> Self {
        Self::Db(e)
    }
}

/// Runs `fut` for at most `deadline` (without one: to its end); `None` when time ran out.
async fn bounded<F: std::future::Future>(
    deadline: Option<std::time::Duration>,
    fut: F,
) -> Option<F::Output> {
    match deadline {
        Some(d) => tokio::time::timeout(d, fut).await.ok(),
        None => Some(fut.await),
    }
}

/// What a failed COPY into `table` was doing: the column and row the server names in the
/// error's context (`COPY items, line 3, column name`), so that the message says which column
/// holds the value it refused.
fn copy_context(table: &str, e: &sqlx::Error) -> String {
    let place = match e {
        sqlx::Error::Database(d) => d
            .try_downcast_ref::<sqlx::postgres::PgDatabaseError>()
            .and_then(|pg| pg.r#where())
            .and_then(|w| {
                let w = w.lines().find(|l| l.starts_with("COPY "))?;
                let (_, rest) = w.split_once(", line ")?;
                let (line, column) = match rest.split_once(", column ") {
                    Some((line, column)) => (line, Some(column)),
                    None => (rest.split(':').next().unwrap_or(rest), None),
                };
                let row = line.trim();
                Some(match column {
                    Some(c) => {
                        let c = c.split(':').next().unwrap_or(c).trim();
                        format!(", column `{c}` (row {row} of the load file)")
                    }
                    None => format!(" (row {row} of the load file)"),
                })
            }),
        _ => None,
    };
    format!(
        "cannot load table `{table}`{} with COPY",
        place.unwrap_or_default()
    )
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
fn check_tables(tables: &[Table], existing: &BTreeMap<String, BTreeSet<String>>) -> Result<()> {
    let none = BTreeSet::new();
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

impl PostgresClient {
    /// Connects for `request`'s dataset.
    pub fn open(config: Arc<PostgresConfig>, request: &ClientRequest) -> Result<Self> {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| Error::internal(format!("cannot start a runtime: {e}")))?;
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
        let mut client = Self {
            rt,
            con: None,
            config,
            dataset,
            staging,
            schema: None,
            schema_json: None,
            pending_schema: None,
            locked: None,
            plan: None,
            in_transaction: false,
            load_started: false,
            created: BTreeSet::new(),
            server_version: 0,
        };
        client.connect()?;
        Ok(client)
    }

    /// Where the data goes, for load info: the connection string without the password.
    pub fn location(&self) -> String {
        self.config.credentials.redacted()
    }

    fn connect(&mut self) -> Result<()> {
        if self.con.is_none() {
            let session = self.config.session_sql();
            let con = self.rt.block_on(sluice_sql::connect::postgres::connect(
                &self.config.credentials,
                &session,
            ))?;
            self.server_version = con.server_version_num().unwrap_or(0);
            self.con = Some(con);
            self.in_transaction = false;
            self.load_started = false;
            self.locked = None;
            self.created.clear();
        }
        Ok(())
    }

    /// Drops a connection that is gone (or that stopped answering), and says what became of
    /// the load: a retryable error.
    fn lost(&mut self, context: impl std::fmt::Display, what: impl std::fmt::Display) -> Error {
        self.con = None;
        self.in_transaction = false;
        self.load_started = false;
        self.locked = None;
        self.created.clear();
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
    fn answer_deadline(&self) -> Option<std::time::Duration> {
        self.config.statement_timeout.map(|t| t + ANSWER_MARGIN)
    }

    /// The error of a statement whose answer did not come within [`Self::answer_deadline`]:
    /// the server or the network path to it stopped answering (the server would have ended
    /// the statement itself at `statement_timeout`). The connection is dropped.
    fn no_answer(&mut self, context: impl std::fmt::Display) -> Error {
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
    fn fail(&mut self, context: impl std::fmt::Display, e: sqlx::Error) -> Error {
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

    fn exec(&mut self, sql: &str) -> Result<()> {
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
    fn fetch(&mut self, what: &str, sql: &str, params: &[&str]) -> Result<Vec<PgRow>> {
        let params: Vec<Option<&str>> = params.iter().map(|p| Some(*p)).collect();
        self.fetch_opt(what, sql, &params)
    }

    /// Takes the lock of package `load_id` in this dataset (an advisory lock), waiting up to
    /// `lock_timeout` for another session that holds it: a process killed just after sending
    /// COMMIT leaves a server session that may still commit the package, and the next attempt
    /// must see that commit before it reads the catalog and asks `_dlt_loads` whether to load
    /// the package again. In a transaction the lock is held to its end; outside one this only
    /// waits. Other packages and datasets are not held up.
    fn lock_load(&mut self, load_id: &str) -> Result<()> {
        if self.in_transaction && self.locked.as_deref() == Some(load_id) {
            return Ok(());
        }
        let dataset = self.dataset.clone();
        let started = std::time::Instant::now();
        loop {
            let rows = self.fetch(
                "cannot lock the load package",
                "SELECT pg_catalog.pg_try_advisory_xact_lock(pg_catalog.hashtext($1), pg_catalog.hashtext($2))",
                &[&dataset, load_id],
            )?;
            if rows.first().and_then(|r| r.try_get::<bool, _>(0).ok()) == Some(true) {
                if self.in_transaction {
                    self.locked = Some(load_id.to_string());
                }
                return Ok(());
            }
            let wait = self.config.lock_timeout;
            if wait.is_some_and(|w| started.elapsed() >= w) {
                let holder = self
                    .fetch(
                        "cannot read pg_locks",
                        "SELECT l.pid::text FROM pg_catalog.pg_locks l WHERE l.locktype = 'advisory' AND l.granted AND l.objsubid = 2 AND l.classid = pg_catalog.hashtext($1)::oid AND l.objid = pg_catalog.hashtext($2)::oid LIMIT 1",
                        &[&dataset, load_id],
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

    fn begin(&mut self) -> Result<()> {
        if !self.in_transaction {
            // READ COMMITTED whatever the server's default: every statement sees what
            // committed before it (a package committed by another session while this one
            // waited for its lock, above all)
            self.exec("BEGIN ISOLATION LEVEL READ COMMITTED")?;
            self.in_transaction = true;
            self.load_started = false;
            self.locked = None;
            self.created.clear();
        }
        Ok(())
    }

    fn commit(&mut self) -> Result<()> {
        if self.in_transaction {
            self.exec("COMMIT")?;
            self.in_transaction = false;
            self.load_started = false;
            self.locked = None;
            self.created.clear();
        }
        Ok(())
    }

    fn rollback(&mut self) {
        if self.in_transaction {
            if self.exec("ROLLBACK").is_err() {
                self.con = None;
            }
            self.in_transaction = false;
            self.load_started = false;
            self.locked = None;
            self.created.clear();
        }
    }

    /// Ends a transaction that holds only schema changes (of a package that turned out to be
    /// loaded already); a transaction with a load in it is rolled back.
    fn settle(&mut self) -> Result<()> {
        self.apply_pending(None)?;
        if self.in_transaction && !self.load_started {
            self.commit()
        } else {
            self.rollback();
            Ok(())
        }
    }

    fn table_exists(&mut self, dataset: &str, table: &str) -> Result<bool> {
        let rows = self.fetch(
            "cannot look up a table",
            "SELECT 1 FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = $1 AND c.relname = $2",
            &[dataset, table],
        )?;
        Ok(!rows.is_empty())
    }

    fn existing_columns(&mut self, dataset: &str) -> Result<BTreeMap<String, BTreeSet<String>>> {
        let rows = self.fetch(
            "cannot read the catalog",
            "SELECT c.relname::text, a.attname::text FROM pg_catalog.pg_attribute a \
             JOIN pg_catalog.pg_class c ON c.oid = a.attrelid \
             JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace \
             WHERE n.nspname = $1 AND c.relkind IN ('r', 'p') AND a.attnum > 0 AND NOT a.attisdropped",
            &[dataset],
        )?;
        let mut out: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
        for r in rows {
            let t: String = r.try_get(0).unwrap_or_default();
            let c: String = r.try_get(1).unwrap_or_default();
            out.entry(t).or_default().insert(c);
        }
        Ok(out)
    }

    fn create_schema(&mut self, dataset: &str) -> Result<()> {
        self.exec(&format!("CREATE SCHEMA IF NOT EXISTS {}", quote(dataset)))
    }

    /// Creates missing tables and columns of `tables` in `dataset`. Staging tables are
    /// `UNLOGGED` unless they will be swapped in (`staging-optimized` replace).
    fn sync_tables(
        &mut self,
        dataset: &str,
        tables: &[Table],
        staging: Staging,
        update: &mut SchemaUpdate,
    ) -> Result<()> {
        // the staging dataset's name is checked when it is first used
        check_name("dataset", dataset)?;
        check_tables(tables, &BTreeMap::new())?;
        self.create_schema(dataset)?;
        let existing = self.existing_columns(dataset)?;
        check_tables(tables, &existing)?;
        let tables: Vec<&Table> = tables.iter().collect();
        let mut changes = SchemaUpdate::default();
        let unlogged = staging == Staging::Unlogged;
        for s in jobs::schema_changes(
            &Postgres,
            dataset,
            &tables,
            &existing,
            unlogged,
            &mut changes,
        )? {
            self.exec(&s)?;
        }
        if staging == Staging::No {
            self.created.extend(changes.created_tables.keys().cloned());
        }
        update.created_tables.extend(changes.created_tables);
        update.added_columns.extend(changes.added_columns);
        Ok(())
    }

    fn schema(&self) -> Result<&Schema> {
        self.schema
            .as_ref()
            .ok_or_else(|| Error::internal("the load started before the schema was stored"))
    }

    /// Brings the dataset in line with the schema noted by `update_stored_schema`, if it is
    /// not yet: in the open transaction (one is begun), after taking the lock of package
    /// `load_id` when the schema changes are those of a package. On failure the transaction
    /// is rolled back.
    fn apply_pending(&mut self, load_id: Option<&str>) -> Result<()> {
        let Some(only) = self.pending_schema.take() else {
            return Ok(());
        };
        let result = (|| {
            self.begin()?;
            if let Some(load_id) = load_id {
                self.lock_load(load_id)?;
            }
            let json = self.schema_json.clone().unwrap_or_default();
            self.apply_schema(&json, only.as_deref())
        })();
        if result.is_err() {
            self.rollback();
        }
        result.map(|_| ())
    }

    /// Brings the dataset in line with the schema in the open transaction and stores the
    /// schema's version row if it is new.
    fn apply_schema(&mut self, schema_json: &str, only: Option<&[String]>) -> Result<SchemaUpdate> {
        let schema = self.schema()?.clone();
        let tables: Vec<Table> = schema
            .tables
            .values()
            .filter(|t| only.is_none_or(|o| o.contains(&t.name)))
            .cloned()
            .collect();
        let mut update = SchemaUpdate::default();
        let dataset = self.dataset.clone();
        self.sync_tables(&dataset, &tables, Staging::No, &mut update)?;
        let version = qualified(&self.dataset, "_dlt_version");
        let found = self.fetch(
            "cannot read _dlt_version",
            &format!("SELECT 1 FROM {version} WHERE version_hash = $1"),
            &[&schema.version_hash],
        )?;
        if found.is_empty() {
            let now = chrono::Utc::now()
                .format("%Y-%m-%d %H:%M:%S%.6f+00")
                .to_string();
            let sql = format!(
                "INSERT INTO {version} (version, engine_version, inserted_at, schema_name, version_hash, schema) VALUES ($1::text::bigint, $2::text::bigint, $3::timestamptz, $4, $5, $6)"
            );
            self.fetch(
                "cannot store the schema version",
                &sql,
                &[
                    &schema.version.to_string(),
                    &schema.engine_version.to_string(),
                    &now,
                    &schema.name,
                    &schema.version_hash,
                    schema_json,
                ],
            )?;
            update.stored_version = true;
        }
        Ok(update)
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
        let truncate = self.config.replace_strategy == ReplaceStrategy::TruncateAndInsert;
        Ok(jobs::uses_staging(self.schema()?, root, truncate))
    }

    /// The types (`pg_type.typname`) of the columns of `dataset.table` as the server has them.
    fn column_types(&mut self, dataset: &str, table: &str) -> Result<BTreeMap<String, String>> {
        let rows = self.fetch(
            "cannot read the catalog",
            "SELECT a.attname::text, t.typname::text FROM pg_catalog.pg_attribute a \
             JOIN pg_catalog.pg_type t ON t.oid = a.atttypid \
             JOIN pg_catalog.pg_class c ON c.oid = a.attrelid \
             JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace \
             WHERE n.nspname = $1 AND c.relname = $2 AND a.attnum > 0 AND NOT a.attisdropped",
            &[dataset, table],
        )?;
        Ok(rows
            .iter()
            .filter_map(|r| Some((r.try_get(0).ok()?, r.try_get(1).ok()?)))
            .collect())
    }

    /// Streams `data` into `dataset.table` with binary COPY, each value in the wire form of
    /// its column's type as the server has it (a table made by hand may have `json` or
    /// `integer` where dlt makes `jsonb` or `bigint`).
    fn copy(
        &mut self,
        dataset: &str,
        table: &str,
        data: BatchReader,
        cancel: &CancelToken,
    ) -> Result<u64> {
        let t = self.schema()?.tables.get(table).cloned().ok_or_else(|| {
            Error::schema(format!("the schema has no table `{table}` to load into"))
        })?;
        let actual = self.column_types(dataset, table)?;
        let encoder = Encoder::new(&t, &data.schema())?.for_columns(dataset, &actual)?;
        let statement = format!(
            "COPY {} ({}) FROM STDIN (FORMAT binary)",
            qualified(dataset, table),
            encoder.column_list()
        );
        tracing::debug!(target: "sluice::postgres", "{statement}");
        let (tx, rx) = tokio::sync::mpsc::channel::<Chunk>(AHEAD);
        let producer_cancel = cancel.clone();
        let producer = std::thread::Builder::new()
            .name("sluice-pg-copy".into())
            .spawn(move || {
                let mut buf = Vec::with_capacity(CHUNK + CHUNK / 4);
                buf.extend_from_slice(HEADER);
                let step = (|| {
                    for batch in data {
                        producer_cancel.check()?;
                        let batch = batch.map_err(Error::from)?;
                        encoder.encode(&batch, &mut buf)?;
                        if buf.len() >= CHUNK {
                            let full =
                                std::mem::replace(&mut buf, Vec::with_capacity(CHUNK + CHUNK / 4));
                            if tx.blocking_send(Chunk::Data(full)).is_err() {
                                return Ok(()); // the COPY stopped; its error is reported
                            }
                        }
                    }
                    buf.extend_from_slice(TRAILER);
                    let _ = tx.blocking_send(Chunk::Last(std::mem::take(&mut buf)));
                    Ok(())
                })();
                if let Err(e) = step {
                    let _ = tx.blocking_send(Chunk::Failed(e));
                }
            })
            .map_err(|e| Error::internal(format!("cannot start the COPY thread: {e}")))?;
        self.connect()?;
        let deadline = self.answer_deadline();
        let Self { rt, con, .. } = self;
        let Some(con) = con.as_mut() else {
            return Err(Error::internal("no connection"));
        };
        // on a timeout the COPY (and with it the receiving end of the channel) is dropped: the
        // encoding thread's next send fails and it ends
        let result = rt.block_on(bounded(deadline, copy_in(con, &statement, rx)));
        if producer.join().is_err() {
            // it never sent its last chunk: the COPY was aborted
            return Err(Error::internal(format!(
                "the thread encoding the load file of table `{table}` panicked; nothing of the file was loaded"
            )));
        }
        match result {
            Some(Ok(rows)) => Ok(rows),
            Some(Err(CopyError::Data(e))) => Err(e),
            Some(Err(CopyError::Db(e))) => {
                let context = copy_context(table, &e);
                Err(self.fail(context, e))
            }
            None => Err(self.no_answer(format!("cannot load table `{table}` with COPY"))),
        }
    }

    /// The statements of `replace` with `staging-optimized`: the staging table takes the
    /// table's place (dlt's PostgresStagingReplaceJob), and an empty staging table is made
    /// again.
    fn staging_optimized(&mut self, chain: &[&Table]) -> Vec<String> {
        let mut out = Vec::new();
        for t in chain {
            let d = qualified(&self.dataset, &t.name);
            let s = qualified(&self.staging, &t.name);
            out.push(format!("DROP TABLE IF EXISTS {d}"));
            out.push(format!(
                "ALTER TABLE {s} SET SCHEMA {}",
                quote(&self.dataset)
            ));
            // a staging table made by a merge is unlogged: the swapped-in table must not be
            // (a no-op for the logged staging tables this strategy creates)
            out.push(format!("ALTER TABLE {d} SET LOGGED"));
            out.push(format!("CREATE TABLE {s} (LIKE {d} INCLUDING ALL)"));
            self.created.insert(t.name.clone());
        }
        out
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
    fn check_duplicate_keys(&mut self, root: &Table) -> Result<()> {
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
            qualified(&self.staging, &root.name)
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

    /// UNIQUE constraints of the tables this transaction created, added after their data.
    fn unique_constraints(&self) -> Result<Vec<String>> {
        if !self.config.create_indexes {
            return Ok(Vec::new());
        }
        let schema = self.schema()?;
        let mut out = Vec::new();
        for name in &self.created {
            let Some(t) = schema.tables.get(name) else {
                continue;
            };
            for c in jobs::complete_columns(t) {
                if c.unique == Some(true) {
                    out.push(format!(
                        "ALTER TABLE {} ADD UNIQUE ({})",
                        qualified(&self.dataset, name),
                        quote(&c.name)
                    ));
                }
            }
        }
        Ok(out)
    }

    fn complete(&mut self, load_id: &str, completion: &LoadCompletion) -> Result<()> {
        let schema = self.schema()?.clone();
        let suffix: String = format!("{:08x}", rand::random::<u32>());
        for root in self.plan_roots()? {
            let chain = jobs::chain(&schema, &root);
            if chain.is_empty() || !self.uses_staging(&root)? {
                continue;
            }
            let disposition = schema.write_disposition_of(&root);
            let statements = if disposition == WriteDisposition::Replace
                && self.config.replace_strategy == ReplaceStrategy::StagingOptimized
            {
                self.staging_optimized(&chain)
            } else {
                if disposition == WriteDisposition::Merge
                    && chain[0].merge_strategy() == Some(MergeStrategy::Upsert)
                    && self.server_version < 150_000
                {
                    return Err(Error::unsupported(format!(
                        "table `{root}`: merge strategy `upsert` needs PostgreSQL 15 or newer (MERGE); the server is {}\nhint: use the delete-insert strategy",
                        self.server_version
                    )));
                }
                if disposition == WriteDisposition::Merge {
                    self.check_duplicate_keys(chain[0])?;
                }
                let followup = Followup {
                    dialect: &Postgres,
                    dataset: &self.dataset,
                    staging: &self.staging,
                    temp_suffix: &suffix,
                };
                let boundary = jobs::scd2_boundary(chain[0], completion);
                followup.statements(&chain, disposition, &boundary)
            };
            for s in statements {
                self.exec(&s)?;
            }
        }
        for s in self.unique_constraints()? {
            self.exec(&s)?;
        }
        if let Some(state) = &completion.state {
            let id: [u8; 10] = rand::random();
            let id: String = id.iter().map(|b| format!("{b:02x}")).collect();
            let sql = format!(
                "INSERT INTO {} (version, engine_version, pipeline_name, state, created_at, version_hash, _dlt_load_id, _dlt_id) VALUES ($1::text::bigint, $2::text::bigint, $3, $4, $5::timestamptz, $6, $7, $8)",
                qualified(&self.dataset, "_dlt_pipeline_state")
            );
            let version = state.version.to_string();
            let engine = state.engine_version.to_string();
            self.fetch_opt(
                "cannot store the pipeline state",
                &sql,
                &[
                    Some(&version),
                    Some(&engine),
                    Some(&state.pipeline_name),
                    Some(&state.state),
                    Some(&state.created_at),
                    state.version_hash.as_deref(),
                    Some(load_id),
                    Some(&id),
                ],
            )?;
        }
        let sql = format!(
            "INSERT INTO {} (load_id, schema_name, status, inserted_at, schema_version_hash) VALUES ($1, $2, 0, $3::timestamptz, $4)",
            qualified(&self.dataset, "_dlt_loads")
        );
        self.fetch(
            "cannot record the load in _dlt_loads",
            &sql,
            &[
                load_id,
                &completion.schema_name,
                &completion.inserted_at,
                &completion.schema_version_hash,
            ],
        )?;
        self.commit()
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

impl Drop for PostgresClient {
    fn drop(&mut self) {
        self.rollback();
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

impl DestinationClient for PostgresClient {
    fn initialize_storage(&mut self) -> Result<()> {
        self.settle()?;
        let dataset = self.dataset.clone();
        self.create_schema(&dataset)
    }

    fn is_storage_initialized(&mut self) -> Result<bool> {
        self.apply_pending(None)?;
        let dataset = self.dataset.clone();
        let rows = self.fetch(
            "cannot read the catalog",
            "SELECT 1 FROM pg_catalog.pg_namespace WHERE nspname = $1",
            &[&dataset],
        )?;
        Ok(!rows.is_empty())
    }

    fn drop_storage(&mut self) -> Result<()> {
        self.pending_schema = None;
        self.rollback();
        for ds in [self.dataset.clone(), self.staging.clone()] {
            self.exec(&format!("DROP SCHEMA IF EXISTS {} CASCADE", quote(&ds)))?;
        }
        Ok(())
    }

    fn get_stored_schema(&mut self, schema_name: &str) -> Result<Option<StoredSchema>> {
        self.apply_pending(None)?;
        let dataset = self.dataset.clone();
        if !self.table_exists(&dataset, "_dlt_version")? {
            return Ok(None);
        }
        let sql = format!(
            "SELECT version::text, engine_version::text, inserted_at::text, schema_name, version_hash, schema FROM {} WHERE schema_name = $1 ORDER BY inserted_at DESC, version DESC LIMIT 1",
            qualified(&dataset, "_dlt_version")
        );
        let rows = self.fetch("cannot read _dlt_version", &sql, &[schema_name])?;
        let Some(r) = rows.first() else {
            return Ok(None);
        };
        let text = |i: usize| {
            r.try_get::<Option<String>, _>(i)
                .ok()
                .flatten()
                .unwrap_or_default()
        };
        Ok(Some(StoredSchema {
            version: text(0).parse().unwrap_or(0),
            engine_version: text(1).parse().unwrap_or(0),
            inserted_at: text(2),
            schema_name: text(3),
            version_hash: text(4),
            schema: text(5),
        }))
    }

    fn get_stored_state(&mut self, pipeline_name: &str) -> Result<Option<StoredState>> {
        self.apply_pending(None)?;
        let dataset = self.dataset.clone();
        if !self.table_exists(&dataset, "_dlt_pipeline_state")?
            || !self.table_exists(&dataset, "_dlt_loads")?
        {
            return Ok(None);
        }
        let sql = format!(
            "SELECT s.version::text, s.engine_version::text, s.pipeline_name, s.state, s.created_at::text, s.version_hash, s._dlt_load_id FROM {} AS s JOIN {} AS l ON l.load_id = s._dlt_load_id WHERE s.pipeline_name = $1 AND l.status = 0 ORDER BY l.load_id DESC LIMIT 1",
            qualified(&dataset, "_dlt_pipeline_state"),
            qualified(&dataset, "_dlt_loads")
        );
        let rows = self.fetch("cannot read the pipeline state", &sql, &[pipeline_name])?;
        let Some(r) = rows.first() else {
            return Ok(None);
        };
        let text = |i: usize| r.try_get::<Option<String>, _>(i).ok().flatten();
        Ok(Some(StoredState {
            version: text(0).and_then(|v| v.parse().ok()).unwrap_or(0),
            engine_version: text(1).and_then(|v| v.parse().ok()).unwrap_or(0),
            pipeline_name: text(2).unwrap_or_default(),
            state: text(3).unwrap_or_default(),
            created_at: text(4).unwrap_or_default(),
            version_hash: text(5),
            load_id: text(6).unwrap_or_default(),
        }))
    }

    fn update_stored_schema(
        &mut self,
        schema: &Schema,
        schema_json: &str,
        request: &SchemaUpdateRequest,
    ) -> Result<SchemaUpdate> {
        self.settle()?;
        // what needs no catalog is checked now; the changes themselves are made by the
        // transaction that loads the package, after it holds the package's lock (or by the
        // next call that reads or changes the dataset)
        check_name("dataset", &self.dataset)?;
        let tables: Vec<Table> = schema
            .tables
            .values()
            .filter(|t| (request.only_tables.as_ref()).is_none_or(|o| o.contains(&t.name)))
            .cloned()
            .collect();
        check_tables(&tables, &BTreeMap::new())?;
        self.schema = Some(schema.clone());
        self.schema_json = Some(schema_json.to_string());
        self.pending_schema = Some(request.only_tables.clone());
        Ok(SchemaUpdate::default())
    }

    fn start_load(&mut self, load_id: &str, plan: &LoadPlan) -> Result<()> {
        self.plan = Some(plan.clone());
        let result = (|| {
            let ready = self.pending_schema.is_none()
                && self.in_transaction
                && !self.load_started
                && self.locked.as_deref() == Some(load_id);
            if !ready {
                // the transaction that loads the package takes its lock first, then makes
                // the schema changes (is_load_completed did both already, unless this is a
                // retry: then they were rolled back with the failed attempt)
                self.pending_schema = None;
                self.rollback();
                self.begin()?;
                self.lock_load(load_id)?;
                let json = self.schema_json.clone().unwrap_or_default();
                self.apply_schema(&json, None)?;
            }
            self.load_started = true;
            let schema = self.schema()?.clone();
            let staging = self.staging.clone();
            let dataset = self.dataset.clone();
            let mut staging_update = SchemaUpdate::default();
            let mut empty: Vec<String> = Vec::new();
            for root in self.plan_roots()? {
                let chain: Vec<Table> = jobs::chain(&schema, &root).into_iter().cloned().collect();
                if self.uses_staging(&root)? {
                    let swapped = schema.write_disposition_of(&root) == WriteDisposition::Replace
                        && self.config.replace_strategy == ReplaceStrategy::StagingOptimized;
                    let kind = if swapped {
                        Staging::Logged
                    } else {
                        Staging::Unlogged
                    };
                    self.sync_tables(&staging, &chain, kind, &mut staging_update)?;
                    empty.extend(chain.iter().map(|t| qualified(&staging, &t.name)));
                } else if schema.write_disposition_of(&root) == WriteDisposition::Replace {
                    empty.extend(chain.iter().map(|t| qualified(&dataset, &t.name)));
                }
            }
            if !empty.is_empty() {
                self.exec(&format!("TRUNCATE {}", empty.join(", ")))?;
            }
            Ok(())
        })();
        if result.is_err() {
            self.rollback();
        }
        tracing::debug!(target: "sluice::postgres", load_id, "load started");
        result
    }

    fn write_table(
        &mut self,
        _load_id: &str,
        job: &LoadJob,
        data: BatchReader,
        cancel: &CancelToken,
    ) -> Result<JobReport> {
        cancel.check()?;
        if !self.load_started {
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
        let rows = match self.copy(&dataset, &job.table_name, data, cancel) {
            Ok(rows) => rows,
            Err(e) => {
                self.rollback();
                return Err(e);
            }
        };
        Ok(JobReport {
            rows,
            ..Default::default()
        })
    }

    fn load_file(
        &mut self,
        load_id: &str,
        job: &LoadJob,
        path: &Path,
        cancel: &CancelToken,
    ) -> Result<JobReport> {
        let file = std::fs::File::open(path).map_err(|e| {
            Error::io(format!(
                "cannot open the load file `{}`: {e}",
                path.display()
            ))
        })?;
        let bytes = file.metadata().map(|m| m.len()).unwrap_or(0);
        let reader = parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder::try_new(file)
            .and_then(|b| b.with_batch_size(BATCH_ROWS).build())
            .map_err(|e| {
                Error::data(format!(
                    "cannot read the load file `{}`: {e}",
                    path.display()
                ))
            })?;
        let mut report = self.write_table(load_id, job, Box::new(reader), cancel)?;
        report.bytes = bytes;
        Ok(report)
    }

    fn complete_load(&mut self, load_id: &str, completion: &LoadCompletion) -> Result<()> {
        if !self.load_started {
            return Err(Error::internal("complete_load without start_load"));
        }
        let result = self.complete(load_id, completion);
        if result.is_err() {
            self.rollback();
        }
        result
    }

    fn is_load_completed(&mut self, load_id: &str) -> Result<bool> {
        // an earlier attempt of this package may still be committing in a session whose
        // process died: its lock first, then the schema changes of the package (if
        // update_stored_schema noted some), then the look-up
        if self.pending_schema.is_some() {
            match self.apply_pending(Some(load_id)) {
                Ok(()) => {}
                // a transient failure of the schema changes (a lock wait that timed out, a
                // catalog race): start_load makes them again, under the host's retries
                Err(e) if e.retryable => {
                    tracing::debug!(target: "sluice::postgres", "schema changes left to start_load: {e}");
                    self.lock_load(load_id)?;
                }
                Err(e) => return Err(e),
            }
        } else {
            if self.in_transaction && !self.load_started && self.locked.as_deref() != Some(load_id)
            {
                // schema changes made without the package's lock (a read flushed them): they
                // are committed as they are, and start_load begins anew under the lock
                self.settle()?;
            }
            self.lock_load(load_id)?;
        }
        let dataset = self.dataset.clone();
        if !self.table_exists(&dataset, "_dlt_loads")? {
            return Ok(false);
        }
        let sql = format!(
            "SELECT 1 FROM {} WHERE load_id = $1",
            qualified(&dataset, "_dlt_loads")
        );
        Ok(!self
            .fetch("cannot read _dlt_loads", &sql, &[load_id])?
            .is_empty())
    }

    fn drop_tables(&mut self, request: &DropTablesRequest) -> Result<()> {
        self.settle()?;
        for t in &request.tables {
            self.exec(&format!(
                "DROP TABLE IF EXISTS {}",
                qualified(&self.dataset, t)
            ))?;
            if request.staging {
                self.exec(&format!(
                    "DROP TABLE IF EXISTS {}",
                    qualified(&self.staging, t)
                ))?;
            }
        }
        Ok(())
    }

    fn query(&mut self, sql: &str, _cancel: &CancelToken) -> Result<BatchStream> {
        self.settle()?;
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
}

#[cfg(test)]
mod tests {
    use super::*;
    use sqlx::Connection as _;

    /// The machine's PostgreSQL server (as the workspace tests use it).
    fn url() -> String {
        std::env::var("SLUICE_TEST_PG_URL")
            .unwrap_or_else(|_| "postgresql://postgres@127.0.0.1:5432/test".to_string())
    }

    fn one_row() -> Vec<u8> {
        let mut row = Vec::new();
        row.extend_from_slice(&1i16.to_be_bytes());
        row.extend_from_slice(&8i32.to_be_bytes());
        row.extend_from_slice(&42i64.to_be_bytes());
        row
    }

    async fn count(con: &mut PgConnection) -> i64 {
        sqlx::query_scalar::<_, i64>("SELECT count(*) FROM copy_in_t")
            .fetch_one(con)
            .await
            .expect("count")
    }

    /// A COPY is finished only after the encoding thread's last chunk: when the thread stops
    /// without it (a panic drops its sender), the COPY is aborted and nothing is loaded.
    /// PostgreSQL itself would accept the binary stream without its trailer, so finishing on
    /// a closed channel would load a partial file.
    #[test]
    fn a_copy_whose_encoder_stops_early_is_aborted_not_finished() {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime");
        rt.block_on(async {
            let mut con = PgConnection::connect(&url()).await.expect("connect");
            sqlx::raw_sql("CREATE TEMP TABLE copy_in_t (a bigint)")
                .execute(&mut con)
                .await
                .expect("table");
            let statement = "COPY copy_in_t (a) FROM STDIN (FORMAT binary)";
            // the thread sends rows, then dies without its last chunk
            let (tx, rx) = tokio::sync::mpsc::channel::<Chunk>(4);
            let mut first = HEADER.to_vec();
            first.extend(one_row());
            tx.send(Chunk::Data(first.clone())).await.expect("send");
            drop(tx);
            match copy_in(&mut con, statement, rx).await {
                Err(CopyError::Data(e)) => {
                    assert!(e.to_string().contains("stopped before its end"), "{e}")
                }
                Err(CopyError::Db(e)) => panic!("expected the encoder's error, got {e}"),
                Ok(n) => panic!("a partial file was loaded ({n} rows)"),
            }
            assert_eq!(count(&mut con).await, 0);
            // the same rows with the last chunk load
            let (tx, rx) = tokio::sync::mpsc::channel::<Chunk>(4);
            tx.send(Chunk::Data(first)).await.expect("send");
            tx.send(Chunk::Last(TRAILER.to_vec())).await.expect("send");
            drop(tx);
            let n = copy_in(&mut con, statement, rx)
                .await
                .unwrap_or_else(|_| panic!("the complete stream loads"));
            assert_eq!(n, 1);
            assert_eq!(count(&mut con).await, 1);
        });
    }
}
