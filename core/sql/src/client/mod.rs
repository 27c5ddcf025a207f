//! The job client every SQL destination shares: dlt's system tables, the per-package
//! transaction, the plan of which tables are staged, emptied or swapped for each write
//! disposition, the follow-up statements of [`crate::jobs`], state restore and drop. A
//! destination supplies a [`SqlConnection`]: how it runs statements, its catalog, its bulk
//! load of a job's rows, and its [`SqlDialect`]. This file holds the connection contract, the
//! transaction bookkeeping and the `DestinationClient` entry points; `plan.rs` the route of
//! each chain, the load and the completion; `system.rs` dlt's system tables.
//!
//! One package is one transaction, schema changes included. `update_stored_schema` only checks
//! the schema and notes it; the transaction that loads a package first takes the package's
//! lock ([`SqlConnection::lock_load`]), then brings the dataset in line with the schema (tables
//! created, columns added, the `_dlt_version` row): `is_load_completed` or `start_load` does it,
//! whichever comes first. So a second attempt of a package waits for the first (whose process
//! may have died while its session commits) before it reads the catalog. `start_load` then
//! empties the staging tables (and, for `replace` with `truncate-and-insert`, the tables
//! themselves), every job loads its rows, and `complete_load` runs the merge/replace
//! statements, writes the `_dlt_pipeline_state` and `_dlt_loads` rows and commits. A failure
//! or a killed process anywhere before the commit leaves the dataset as it was, and the
//! package is loaded again: append is exactly-once per package, and a failed replace never
//! leaves an empty table (dlt commits the truncation first, dlt issue #3025).
//!
//! A destination without transactions ([`SqlConnection::transactions`] is false, as BigQuery)
//! gets another plan with the same guarantee: every chain is loaded into staging tables,
//! append and `truncate-and-insert` included, so a failed job leaves the dataset's tables
//! untouched; `complete_load` checks every merge chain, then applies the staged chains one
//! statement at a time, each repeatable: append copies a root table's staged rows only if the
//! table holds none of the package's `_dlt_load_id`, and a nested table's rows whose `_dlt_id`
//! it does not hold; merge and replace statements give the same rows when run again (upsert
//! then inserts no tombstone of a hard-deleted key); the state row is written once per package;
//! the `_dlt_loads` row comes last. A package cut anywhere is loaded again from its files and
//! ends as if loaded once; an error after the first statement carries
//! [`PARTIALLY_APPLIED`] so the engine keeps the package pending instead of failing it. Such
//! a destination's [`SqlConnection::lock_load`] must wait for statements a killed attempt left
//! running on the server. (A table with neither dlt column, such as Arrow rows loaded without
//! them, is copied again after a cut: at least once.)
//!
//! ```no_run
//! # use sluice_sql::client::{SqlConnection, SqlJobClient, SqlClientOptions};
//! # fn open<C: SqlConnection + 'static>(con: C) -> Box<dyn sluice_sdk::DestinationClient> {
//! let options = SqlClientOptions {
//!     dataset: "my_data".into(),
//!     staging: "my_data_staging".into(),
//!     replace_strategy: Default::default(),
//! };
//! Box::new(SqlJobClient::new(con, options))
//! # }
//! ```

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use sluice_sdk::destination::{
    BatchReader, DropTablesRequest, JobReport, LoadCompletion, LoadJob, LoadPlan, SchemaUpdate,
    SchemaUpdateRequest, StoredSchema, StoredState,
};
use sluice_sdk::schema::{ReplaceStrategy, Schema, Table};
use sluice_sdk::{BatchStream, CancelToken, DestinationClient, Error, Result};

use crate::jobs::{qualified, quote, SqlDialect};

mod plan;
mod system;

/// The key of an error's details that says a package may be partly applied (a destination
/// without transactions): the engine keeps such a package pending instead of failing it.
pub use sluice_sdk::destination::PARTIALLY_APPLIED;

/// Rows read back with every cell as text (`None`: NULL).
pub type TextRows = Vec<Vec<Option<String>>>;

/// Tables and their columns as a dataset has them.
pub type Catalog = BTreeMap<String, BTreeSet<String>>;

/// The table a job's rows go to.
#[derive(Debug, Clone, Copy)]
pub struct Target<'a> {
    /// The dataset (the staging dataset for a staged chain).
    pub dataset: &'a str,
    /// The table as the schema has it.
    pub table: &'a Table,
    /// The job.
    pub job: &'a LoadJob,
}

/// What a SQL destination supplies to [`SqlJobClient`]: its connection and what only it knows.
///
/// Statements the client writes use standard SQL: quoted identifiers, `CAST(x AS TEXT)` to
/// read values back as text, `CAST(p AS BIGINT|TIMESTAMPTZ)` on text parameters, and
/// `BEGIN`/`COMMIT`/`ROLLBACK`.
pub trait SqlConnection: Send {
    /// The destination's name, for messages (`duckdb`).
    fn name(&self) -> &'static str;

    /// The destination's dialect.
    fn dialect(&self) -> &dyn SqlDialect;

    /// Runs statements that return nothing.
    fn execute(&mut self, sql: &str) -> Result<()>;

    /// Runs one statement with text parameters (`None`: NULL), written with
    /// [`Self::param`] placeholders, and returns its rows as text. `what` opens the error.
    fn query_text(&mut self, what: &str, sql: &str, params: &[Option<&str>]) -> Result<TextRows>;

    /// Whether statements run in transactions (`BEGIN` ... `COMMIT`); without them the client
    /// stages every chain and applies it at the end, one repeatable statement at a time (the
    /// module documentation). The destination's `supports_transactions` capability.
    fn transactions(&self) -> bool {
        true
    }

    /// The placeholder of the `n`th parameter (1-based): `?` or `$1`; it may carry a cast that
    /// makes the parameter text (`$1::text`).
    fn param(&self, n: usize) -> String;

    /// The statement that begins a load's transaction.
    fn begin_statement(&self) -> &'static str {
        "BEGIN TRANSACTION"
    }

    /// Tables and their columns in `dataset` (`information_schema` of the current database
    /// unless the destination has a faster catalog).
    fn existing_columns(&mut self, dataset: &str) -> Result<Catalog> {
        let sql = format!(
            "SELECT CAST(table_name AS TEXT), CAST(column_name AS TEXT) FROM information_schema.columns WHERE table_catalog = current_database() AND table_schema = {}",
            self.param(1)
        );
        let rows = self.query_text("cannot read the catalog", &sql, &[Some(dataset)])?;
        let mut out = Catalog::new();
        for mut r in rows {
            let c = r.pop().flatten().unwrap_or_default();
            let t = r.pop().flatten().unwrap_or_default();
            out.entry(t).or_default().insert(c);
        }
        Ok(out)
    }

    /// Whether `dataset.table` exists.
    fn table_exists(&mut self, dataset: &str, table: &str) -> Result<bool> {
        let sql = format!(
            "SELECT 1 FROM information_schema.tables WHERE table_catalog = current_database() AND table_schema = {} AND table_name = {}",
            self.param(1),
            self.param(2)
        );
        Ok(!self
            .query_text(
                "cannot look up a table",
                &sql,
                &[Some(dataset), Some(table)],
            )?
            .is_empty())
    }

    /// Whether the dataset (schema) exists.
    fn dataset_exists(&mut self, dataset: &str) -> Result<bool> {
        let sql = format!(
            "SELECT 1 FROM information_schema.schemata WHERE catalog_name = current_database() AND schema_name = {}",
            self.param(1)
        );
        Ok(!self
            .query_text("cannot read the catalog", &sql, &[Some(dataset)])?
            .is_empty())
    }

    /// Takes the lock of package `load_id` of `dataset` for the open transaction, waiting for
    /// another session that holds it; outside a transaction it only waits. Destinations that
    /// one process holds exclusively need none.
    fn lock_load(&mut self, dataset: &str, load_id: &str) -> Result<()> {
        let _ = (dataset, load_id);
        Ok(())
    }

    /// Refuses names or tables the destination cannot hold, before any statement is sent:
    /// `existing` has the columns the tables already have (empty when not read yet).
    fn check_tables(&self, dataset: &str, tables: &[&Table], existing: &Catalog) -> Result<()> {
        let _ = (dataset, tables, existing);
        Ok(())
    }

    /// Loads a job's rows into `target`.
    fn write_rows(
        &mut self,
        target: Target<'_>,
        data: BatchReader,
        cancel: &CancelToken,
    ) -> Result<JobReport>;

    /// Loads a job's load file into `target`.
    fn load_file(
        &mut self,
        target: Target<'_>,
        path: &Path,
        cancel: &CancelToken,
    ) -> Result<JobReport>;

    /// Checks a staged merge chain before its statements run (server features, keys the
    /// destination's constraints would refuse).
    fn check_merge(&mut self, staging: &str, chain: &[&Table]) -> Result<()> {
        let _ = (staging, chain);
        Ok(())
    }

    /// Whether tables created by a load get UNIQUE constraints on their `unique` columns,
    /// added after their rows (`create_indexes`).
    fn unique_constraints(&self) -> bool {
        false
    }

    /// Runs a read-only query and returns its rows as Arrow.
    fn query(&mut self, sql: &str, cancel: &CancelToken) -> Result<BatchStream>;

    /// A number that changes whenever the connection is dropped: a transaction begun on an
    /// earlier one is gone.
    fn session(&self) -> u64 {
        0
    }

    /// Drops a connection that could not even roll back (it is opened again when next used).
    fn discard(&mut self) {}
}

/// How a [`SqlJobClient`] writes.
#[derive(Debug, Clone, Default)]
pub struct SqlClientOptions {
    /// The dataset written.
    pub dataset: String,
    /// Its staging dataset.
    pub staging: String,
    /// The replace strategy.
    pub replace_strategy: ReplaceStrategy,
}

/// The job client of a SQL destination: [`DestinationClient`] over a [`SqlConnection`].
pub struct SqlJobClient<C: SqlConnection> {
    con: C,
    dataset: String,
    staging: String,
    replace: ReplaceStrategy,
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
    /// The connection's [`SqlConnection::session`] when the transaction began.
    session: u64,
    /// The open transaction carries a load (`start_load` ran in it).
    load_started: bool,
    /// Tables created (or swapped in) by the open transaction: they get their UNIQUE
    /// constraints when the load completes.
    created: BTreeSet<String>,
}

impl<C: SqlConnection> std::fmt::Debug for SqlJobClient<C> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SqlJobClient")
            .field("destination", &self.con.name())
            .field("dataset", &self.dataset)
            .finish()
    }
}

impl<C: SqlConnection> SqlJobClient<C> {
    /// A client of `options.dataset` over `con`.
    pub fn new(con: C, options: SqlClientOptions) -> Self {
        Self {
            con,
            dataset: options.dataset,
            staging: options.staging,
            replace: options.replace_strategy,
            schema: None,
            schema_json: None,
            pending_schema: None,
            locked: None,
            plan: None,
            in_transaction: false,
            session: 0,
            load_started: false,
            created: BTreeSet::new(),
        }
    }

    /// The connection.
    pub fn connection(&self) -> &C {
        &self.con
    }

    /// The connection, to run statements of the destination's own (tests, maintenance).
    pub fn connection_mut(&mut self) -> &mut C {
        &mut self.con
    }

    /// The dataset written.
    pub fn dataset(&self) -> &str {
        &self.dataset
    }

    fn forget_transaction(&mut self) {
        self.in_transaction = false;
        self.load_started = false;
        self.locked = None;
        self.created.clear();
    }

    /// Notes a connection that was dropped under the open transaction.
    fn after_error(&mut self, e: Error) -> Error {
        if self.in_transaction && self.con.session() != self.session {
            self.forget_transaction();
        }
        e
    }

    fn exec(&mut self, sql: &str) -> Result<()> {
        if self.in_transaction && self.con.session() != self.session {
            self.forget_transaction();
            return Err(Error::network(format!(
                "the connection to {} was lost during the load\nhint: nothing of this load package was committed; sluice retries it, and the next run loads it again",
                self.con.name()
            ))
            .retryable());
        }
        self.con.execute(sql).map_err(|e| self.after_error(e))
    }

    fn fetch(&mut self, what: &str, sql: &str, params: &[Option<&str>]) -> Result<TextRows> {
        self.con
            .query_text(what, sql, params)
            .map_err(|e| self.after_error(e))
    }

    fn p(&self, n: usize) -> String {
        self.con.param(n)
    }

    fn begin(&mut self) -> Result<()> {
        if !self.in_transaction {
            if self.con.transactions() {
                let begin = self.con.begin_statement();
                self.exec(begin)?;
            }
            self.in_transaction = true;
            self.session = self.con.session();
            self.load_started = false;
            self.locked = None;
            self.created.clear();
        }
        Ok(())
    }

    fn commit(&mut self) -> Result<()> {
        if self.in_transaction {
            // a failed COMMIT ends the transaction too (DuckDB rolls it back; PostgreSQL
            // answers a COMMIT outside one with a warning only, DuckDB with an error)
            let result = if self.con.transactions() {
                self.exec("COMMIT")
            } else {
                Ok(())
            };
            self.forget_transaction();
            result?;
        }
        Ok(())
    }

    fn rollback(&mut self) {
        if self.in_transaction {
            if self.con.transactions()
                && self.con.session() == self.session
                && self.con.execute("ROLLBACK").is_err()
            {
                self.con.discard();
            }
            self.forget_transaction();
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

    /// Takes the lock of package `load_id` (held to the end of the open transaction).
    fn lock_load(&mut self, load_id: &str) -> Result<()> {
        if self.in_transaction && self.locked.as_deref() == Some(load_id) {
            return Ok(());
        }
        let dataset = self.dataset.clone();
        self.con
            .lock_load(&dataset, load_id)
            .map_err(|e| self.after_error(e))?;
        if self.in_transaction {
            self.locked = Some(load_id.to_string());
        }
        Ok(())
    }

    fn schema(&self) -> Result<&Schema> {
        self.schema
            .as_ref()
            .ok_or_else(|| Error::internal("the load started before the schema was stored"))
    }
}

impl<C: SqlConnection> Drop for SqlJobClient<C> {
    fn drop(&mut self) {
        self.rollback();
    }
}

impl<C: SqlConnection> DestinationClient for SqlJobClient<C> {
    fn initialize_storage(&mut self) -> Result<()> {
        self.settle()?;
        let sql = format!("CREATE SCHEMA IF NOT EXISTS {}", quote(&self.dataset));
        self.exec(&sql)
    }

    fn is_storage_initialized(&mut self) -> Result<bool> {
        self.apply_pending(None)?;
        let dataset = self.dataset.clone();
        self.con
            .dataset_exists(&dataset)
            .map_err(|e| self.after_error(e))
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
        self.read_stored_schema(schema_name)
    }

    fn get_stored_state(&mut self, pipeline_name: &str) -> Result<Option<StoredState>> {
        self.apply_pending(None)?;
        self.read_stored_state(pipeline_name)
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
        let tables: Vec<&Table> = schema
            .tables
            .values()
            .filter(|t| (request.only_tables.as_ref()).is_none_or(|o| o.contains(&t.name)))
            .collect();
        self.con
            .check_tables(&self.dataset, &tables, &Catalog::new())?;
        self.schema = Some(schema.clone());
        self.schema_json = Some(schema_json.to_string());
        self.pending_schema = Some(request.only_tables.clone());
        Ok(SchemaUpdate::default())
    }

    fn start_load(&mut self, load_id: &str, plan: &LoadPlan) -> Result<()> {
        self.begin_load(load_id, plan)
    }

    fn write_table(
        &mut self,
        _load_id: &str,
        job: &LoadJob,
        data: BatchReader,
        cancel: &CancelToken,
    ) -> Result<JobReport> {
        cancel.check()?;
        self.load(job, |con, target| con.write_rows(target, data, cancel))
    }

    fn load_file(
        &mut self,
        _load_id: &str,
        job: &LoadJob,
        path: &Path,
        cancel: &CancelToken,
    ) -> Result<JobReport> {
        cancel.check()?;
        self.load(job, |con, target| con.load_file(target, path, cancel))
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
                    tracing::debug!(target: "sluice::sql", "schema changes left to start_load: {e}");
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
        self.load_recorded(load_id)
    }

    fn drop_tables(&mut self, request: &DropTablesRequest) -> Result<()> {
        self.settle()?;
        for t in &request.tables {
            let mut datasets = vec![self.dataset.clone()];
            if request.staging {
                datasets.push(self.staging.clone());
            }
            for ds in datasets {
                self.exec(&format!("DROP TABLE IF EXISTS {}", qualified(&ds, t)))?;
            }
        }
        Ok(())
    }

    fn query(&mut self, sql: &str, cancel: &CancelToken) -> Result<BatchStream> {
        self.settle()?;
        self.con.query(sql, cancel).map_err(|e| self.after_error(e))
    }
}
