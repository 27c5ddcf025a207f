//! The plan of a package: how each root table's chain is written (into the dataset's tables,
//! or staged and then merged, copied or swapped in), the staging tables a load empties, the
//! rows of each job, and the completion's follow-up statements.

use sluice_sdk::destination::{JobReport, LoadCompletion, LoadJob, LoadPlan, SchemaUpdate};
use sluice_sdk::schema::{ReplaceStrategy, Schema, Table, WriteDisposition};
use sluice_sdk::{Error, Result};

use super::{Catalog, SqlConnection, SqlJobClient, Target, PARTIALLY_APPLIED};
use crate::jobs::{self, qualified, quote, Followup};

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
    /// Creates missing tables and columns of `tables` in `dataset`; `scratch` tables are
    /// emptied before every use (the dialect may create them without a WAL). Tables of the
    /// dataset that this creates are noted for their constraints.
    pub(super) fn sync_tables(
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
    pub(super) fn apply_pending(&mut self, load_id: Option<&str>) -> Result<()> {
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

    pub(super) fn load(
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

    pub(super) fn complete(&mut self, load_id: &str, completion: &LoadCompletion) -> Result<()> {
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

    /// The follow-up statements of every staged chain, then the package's system rows, then
    /// the commit.
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
        self.record_load(load_id, completion)?;
        self.commit()
    }

    /// `start_load`: the package's transaction (its lock, the schema changes) and the staging
    /// tables of its staged chains, emptied with the tables a direct replace empties.
    pub(super) fn begin_load(&mut self, load_id: &str, plan: &LoadPlan) -> Result<()> {
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
