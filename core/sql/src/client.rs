//! The job client every SQL destination shares: dlt's system tables, the per-package
//! transaction, the plan of which tables are staged, emptied or swapped for each write
//! disposition, the follow-up statements of [`crate::jobs`], state restore and drop. A
//! destination supplies a [`SqlConnection`]: how it runs statements, its catalog, its bulk
//! load of a job's rows, and its [`SqlDialect`].
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
use sluice_sdk::schema::{ReplaceStrategy, Schema, Table, WriteDisposition};
use sluice_sdk::{BatchStream, CancelToken, DestinationClient, Error, Result};

use crate::jobs::{self, qualified, quote, Followup, SqlDialect};

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

/// How a root table's chain is written in a load.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Route {
    /// Into the dataset's tables (append, or replace with `truncate-and-insert` after they
    /// were emptied).
    Direct,
    /// Into staging tables, then moved by the follow-up statements.
    Staged,
    /// Into staging tables that take the tables' place (`staging-optimized` replace).
    Swapped,
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

    /// Creates missing tables and columns of `tables` in `dataset`; `scratch` tables are
    /// emptied before every use (the dialect may create them without a WAL). Tables of the
    /// dataset that this creates are noted for their constraints.
    fn sync_tables(
        &mut self,
        dataset: &str,
        tables: &[&Table],
        scratch: bool,
        update: &mut SchemaUpdate,
    ) -> Result<()> {
        self.con.check_tables(dataset, tables, &Catalog::new())?;
        self.exec(&format!("CREATE SCHEMA IF NOT EXISTS {}", quote(dataset)))?;
        let existing = self
            .con
            .existing_columns(dataset)
            .map_err(|e| self.after_error(e))?;
        self.con.check_tables(dataset, tables, &existing)?;
        let mut changes = SchemaUpdate::default();
        let statements = jobs::schema_changes(
            self.con.dialect(),
            dataset,
            tables,
            &existing,
            scratch,
            &mut changes,
        )?;
        for s in statements {
            self.exec(&s)?;
        }
        if dataset == self.dataset {
            self.created.extend(changes.created_tables.keys().cloned());
        }
        update.created_tables.extend(changes.created_tables);
        update.added_columns.extend(changes.added_columns);
        Ok(())
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
            self.apply_schema(only.as_deref())
        })();
        if result.is_err() {
            self.rollback();
        }
        result.map(|_| ())
    }

    /// Brings the dataset in line with the schema in the open transaction and stores the
    /// schema's version row if it is new.
    fn apply_schema(&mut self, only: Option<&[String]>) -> Result<SchemaUpdate> {
        let schema = self.schema()?.clone();
        let schema_json = self.schema_json.clone().unwrap_or_default();
        let tables: Vec<&Table> = schema
            .tables
            .values()
            .filter(|t| only.is_none_or(|o| o.contains(&t.name)))
            .collect();
        let mut update = SchemaUpdate::default();
        let dataset = self.dataset.clone();
        self.sync_tables(&dataset, &tables, false, &mut update)?;
        let version = qualified(&self.dataset, "_dlt_version");
        let found = self.fetch(
            "cannot read _dlt_version",
            &format!("SELECT 1 FROM {version} WHERE version_hash = {}", self.p(1)),
            &[Some(&schema.version_hash)],
        )?;
        if found.is_empty() {
            let now = chrono::Utc::now()
                .format("%Y-%m-%d %H:%M:%S%.6f+00")
                .to_string();
            let sql = format!(
                "INSERT INTO {version} (version, engine_version, inserted_at, schema_name, version_hash, schema) VALUES (CAST({} AS BIGINT), CAST({} AS BIGINT), CAST({} AS TIMESTAMPTZ), {}, {}, {})",
                self.p(1),
                self.p(2),
                self.p(3),
                self.p(4),
                self.p(5),
                self.p(6)
            );
            self.fetch(
                "cannot store the schema version",
                &sql,
                &[
                    Some(&schema.version.to_string()),
                    Some(&schema.engine_version.to_string()),
                    Some(&now),
                    Some(&schema.name),
                    Some(&schema.version_hash),
                    Some(&schema_json),
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

    /// How the chain rooted at `root` is written.
    fn route(&self, root: &str) -> Result<Route> {
        let schema = self.schema()?;
        let truncate = self.replace == ReplaceStrategy::TruncateAndInsert;
        // without transactions nothing is written to the dataset's tables before the end
        let staged = if self.con.transactions() {
            jobs::uses_staging(schema, root, truncate)
        } else {
            schema.write_disposition_of(root) != WriteDisposition::Skip
        };
        if !staged {
            return Ok(Route::Direct);
        }
        let swap = schema.write_disposition_of(root) == WriteDisposition::Replace
            && self.replace == ReplaceStrategy::StagingOptimized
            && self.con.dialect().supports_swap();
        Ok(if swap { Route::Swapped } else { Route::Staged })
    }

    fn target_dataset(&self, table: &str) -> Result<String> {
        let root = self.schema()?.root_of(table).to_string();
        Ok(if self.route(&root)? == Route::Direct {
            self.dataset.clone()
        } else {
            self.staging.clone()
        })
    }

    fn load(
        &mut self,
        job: &LoadJob,
        run: impl FnOnce(&mut C, Target<'_>) -> Result<JobReport>,
    ) -> Result<JobReport> {
        if !self.load_started {
            return Err(Error::internal(
                "a job was loaded outside start_load/complete_load",
            ));
        }
        let result = (|| {
            let dataset = self.target_dataset(&job.table_name)?;
            let table = self
                .schema()?
                .tables
                .get(&job.table_name)
                .cloned()
                .ok_or_else(|| {
                    Error::schema(format!(
                        "the schema has no table `{}` to load into",
                        job.table_name
                    ))
                })?;
            let target = Target {
                dataset: &dataset,
                table: &table,
                job,
            };
            run(&mut self.con, target)
        })();
        result.map_err(|e| {
            let e = self.after_error(e);
            self.rollback();
            e
        })
    }

    fn complete(&mut self, load_id: &str, completion: &LoadCompletion) -> Result<()> {
        let schema = self.schema()?.clone();
        let roots = self.plan_roots()?;
        // every staged merge chain is checked before the first statement that writes the
        // dataset (without transactions that statement stays)
        for root in &roots {
            let chain = jobs::chain(&schema, root);
            if !chain.is_empty()
                && self.route(root)? == Route::Staged
                && schema.write_disposition_of(root) == WriteDisposition::Merge
            {
                let staging = self.staging.clone();
                self.con
                    .check_merge(&staging, &chain)
                    .map_err(|e| self.after_error(e))?;
            }
        }
        if self.con.transactions() {
            return self.apply(&schema, &roots, load_id, completion);
        }
        self.apply(&schema, &roots, load_id, completion)
            .map_err(|e| {
                // some statements may have stayed: the package must be applied again, not
                // failed (its data would then be extracted again and appended twice)
                let hint = format!(
                    "the package may be partly applied to `{}` ({} has no transactions); it stays pending: fix the cause and run again, every step gives the same result when repeated",
                    self.dataset,
                    self.con.name()
                );
                let mut e = e;
                if !e.details.is_object() {
                    e.details = serde_json::json!({});
                }
                e.details[PARTIALLY_APPLIED] = true.into();
                e.message = format!("{}\nhint: {hint}", e.message);
                e
            })
    }

    /// The follow-up statements of every staged chain, the state row and the `_dlt_loads` row.
    fn apply(
        &mut self,
        schema: &Schema,
        roots: &[String],
        load_id: &str,
        completion: &LoadCompletion,
    ) -> Result<()> {
        let suffix: String = format!("{:08x}", rand::random::<u32>());
        for root in roots {
            let chain = jobs::chain(schema, root);
            let route = self.route(root)?;
            if chain.is_empty() || route == Route::Direct {
                continue;
            }
            let disposition = schema.write_disposition_of(root);
            let statements = if route == Route::Swapped {
                let mut out = Vec::new();
                for t in &chain {
                    out.extend(
                        self.con
                            .dialect()
                            .swap_in(&self.dataset, &self.staging, &t.name),
                    );
                    self.created.insert(t.name.clone());
                }
                out
            } else {
                let followup = Followup {
                    dialect: self.con.dialect(),
                    dataset: &self.dataset,
                    staging: &self.staging,
                    temp_suffix: &suffix,
                    once: (!self.con.transactions()).then_some(load_id),
                };
                let boundary = jobs::scd2_boundary(chain[0], completion);
                followup.statements(&chain, disposition, &boundary)
            };
            for s in statements {
                self.exec(&s)?;
            }
        }
        if self.con.unique_constraints() {
            for s in self.unique_constraint_statements(schema) {
                self.exec(&s)?;
            }
        }
        // without transactions an earlier attempt may have stored it already
        let write_state = match completion.state {
            Some(_) if !self.con.transactions() => !self.state_stored(load_id)?,
            Some(_) => true,
            None => false,
        };
        if let Some(state) = completion.state.as_ref().filter(|_| write_state) {
            let id: [u8; 10] = rand::random();
            let id: String = id.iter().map(|b| format!("{b:02x}")).collect();
            let sql = format!(
                "INSERT INTO {} (version, engine_version, pipeline_name, state, created_at, version_hash, _dlt_load_id, _dlt_id) VALUES (CAST({} AS BIGINT), CAST({} AS BIGINT), {}, {}, CAST({} AS TIMESTAMPTZ), {}, {}, {})",
                qualified(&self.dataset, "_dlt_pipeline_state"),
                self.p(1),
                self.p(2),
                self.p(3),
                self.p(4),
                self.p(5),
                self.p(6),
                self.p(7),
                self.p(8)
            );
            let version = state.version.to_string();
            let engine = state.engine_version.to_string();
            self.fetch(
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
            "INSERT INTO {} (load_id, schema_name, status, inserted_at, schema_version_hash) VALUES ({}, {}, 0, CAST({} AS TIMESTAMPTZ), {})",
            qualified(&self.dataset, "_dlt_loads"),
            self.p(1),
            self.p(2),
            self.p(3),
            self.p(4)
        );
        self.fetch(
            "cannot record the load in _dlt_loads",
            &sql,
            &[
                Some(load_id),
                Some(&completion.schema_name),
                Some(&completion.inserted_at),
                Some(&completion.schema_version_hash),
            ],
        )?;
        self.commit()
    }

    /// Whether the state row of package `load_id` is stored (a destination without
    /// transactions applying a package again).
    fn state_stored(&mut self, load_id: &str) -> Result<bool> {
        let sql = format!(
            "SELECT 1 FROM {} WHERE _dlt_load_id = {}",
            qualified(&self.dataset, "_dlt_pipeline_state"),
            self.p(1)
        );
        Ok(!self
            .fetch("cannot read _dlt_pipeline_state", &sql, &[Some(load_id)])?
            .is_empty())
    }

    /// UNIQUE constraints of the tables this transaction created, added after their data (the
    /// index is built once instead of row by row).
    fn unique_constraint_statements(&self, schema: &Schema) -> Vec<String> {
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
        out
    }
}

impl<C: SqlConnection> Drop for SqlJobClient<C> {
    fn drop(&mut self) {
        self.rollback();
    }
}

fn text(row: &[Option<String>], i: usize) -> Option<String> {
    row.get(i).cloned().flatten()
}

/// A version number of a system table's row.
fn number<T: std::str::FromStr>(table: &str, column: &str, value: &str) -> Result<T> {
    value.parse().map_err(|_| {
        Error::destination(format!(
            "{table}.{column} holds `{value}`, not a whole number\nhint: the dataset's system tables were changed by hand; restore the row or drop the dataset"
        ))
    })
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
        let dataset = self.dataset.clone();
        if !self
            .con
            .table_exists(&dataset, "_dlt_version")
            .map_err(|e| self.after_error(e))?
        {
            return Ok(None);
        }
        let sql = format!(
            "SELECT CAST(version AS TEXT), CAST(engine_version AS TEXT), CAST(inserted_at AS TEXT), schema_name, version_hash, schema FROM {} WHERE schema_name = {} ORDER BY inserted_at DESC, version DESC LIMIT 1",
            qualified(&dataset, "_dlt_version"),
            self.p(1)
        );
        let rows = self.fetch("cannot read _dlt_version", &sql, &[Some(schema_name)])?;
        let Some(r) = rows.first() else {
            return Ok(None);
        };
        let text = |i| text(r, i).unwrap_or_default();
        Ok(Some(StoredSchema {
            version: number("_dlt_version", "version", &text(0))?,
            engine_version: number("_dlt_version", "engine_version", &text(1))?,
            inserted_at: text(2),
            schema_name: text(3),
            version_hash: text(4),
            schema: text(5),
        }))
    }

    fn get_stored_state(&mut self, pipeline_name: &str) -> Result<Option<StoredState>> {
        self.apply_pending(None)?;
        let dataset = self.dataset.clone();
        for table in ["_dlt_pipeline_state", "_dlt_loads"] {
            if !self
                .con
                .table_exists(&dataset, table)
                .map_err(|e| self.after_error(e))?
            {
                return Ok(None);
            }
        }
        let sql = format!(
            "SELECT CAST(s.version AS TEXT), CAST(s.engine_version AS TEXT), s.pipeline_name, s.state, CAST(s.created_at AS TEXT), s.version_hash, s._dlt_load_id FROM {} AS s JOIN {} AS l ON l.load_id = s._dlt_load_id WHERE s.pipeline_name = {} AND l.status = 0 ORDER BY l.load_id DESC LIMIT 1",
            qualified(&dataset, "_dlt_pipeline_state"),
            qualified(&dataset, "_dlt_loads"),
            self.p(1)
        );
        let rows = self.fetch(
            "cannot read the pipeline state",
            &sql,
            &[Some(pipeline_name)],
        )?;
        let Some(r) = rows.first() else {
            return Ok(None);
        };
        let text = |i| text(r, i);
        Ok(Some(StoredState {
            version: number(
                "_dlt_pipeline_state",
                "version",
                &text(0).unwrap_or_default(),
            )?,
            engine_version: number(
                "_dlt_pipeline_state",
                "engine_version",
                &text(1).unwrap_or_default(),
            )?,
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
                self.apply_schema(None)?;
            }
            self.load_started = true;
            let schema = self.schema()?.clone();
            let staging = self.staging.clone();
            let mut staging_update = SchemaUpdate::default();
            let mut empty: Vec<String> = Vec::new();
            for root in self.plan_roots()? {
                let chain = jobs::chain(&schema, &root);
                match self.route(&root)? {
                    route @ (Route::Staged | Route::Swapped) => {
                        let scratch = route == Route::Staged;
                        self.sync_tables(&staging, &chain, scratch, &mut staging_update)?;
                        empty.extend(chain.iter().map(|t| qualified(&staging, &t.name)));
                    }
                    Route::Direct => {
                        if schema.write_disposition_of(&root) == WriteDisposition::Replace {
                            empty.extend(chain.iter().map(|t| qualified(&self.dataset, &t.name)));
                        }
                    }
                }
            }
            for s in self.con.dialect().empty_tables(&empty) {
                self.exec(&s)?;
            }
            Ok(())
        })();
        if result.is_err() {
            self.rollback();
        }
        tracing::debug!(target: "sluice::sql", destination = self.con.name(), load_id, "load started");
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
        let dataset = self.dataset.clone();
        if !self
            .con
            .table_exists(&dataset, "_dlt_loads")
            .map_err(|e| self.after_error(e))?
        {
            return Ok(false);
        }
        let sql = format!(
            "SELECT 1 FROM {} WHERE load_id = {}",
            qualified(&dataset, "_dlt_loads"),
            self.p(1)
        );
        Ok(!self
            .fetch("cannot read _dlt_loads", &sql, &[Some(load_id)])?
            .is_empty())
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
