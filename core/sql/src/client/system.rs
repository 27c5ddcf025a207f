//! dlt's system tables as the job client writes and reads them: the `_dlt_version` row of a
//! new schema version, a package's `_dlt_pipeline_state` and `_dlt_loads` rows, and reading
//! the newest schema, the state of the newest completed load and a load's row back.

use sluice_sdk::destination::{LoadCompletion, SchemaUpdate, StoredSchema, StoredState};
use sluice_sdk::schema::Table;
use sluice_sdk::{Error, Result};

use super::{SqlConnection, SqlJobClient};
use crate::jobs::qualified;

impl<C: SqlConnection> SqlJobClient<C> {
    /// Brings the dataset in line with the schema in the open transaction and stores the
    /// schema's version row if it is new.
    pub(super) fn apply_schema(&mut self, only: Option<&[String]>) -> Result<SchemaUpdate> {
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

    /// The package's `_dlt_pipeline_state` row (if it has one) and its `_dlt_loads` row, last.
    pub(super) fn record_load(&mut self, load_id: &str, completion: &LoadCompletion) -> Result<()> {
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
        Ok(())
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

    /// The newest `_dlt_version` row of `schema_name`.
    pub(super) fn read_stored_schema(&mut self, schema_name: &str) -> Result<Option<StoredSchema>> {
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

    /// The state row of the newest completed load of `pipeline_name`.
    pub(super) fn read_stored_state(&mut self, pipeline_name: &str) -> Result<Option<StoredState>> {
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

    /// Whether `_dlt_loads` has the row of package `load_id`.
    pub(super) fn load_recorded(&mut self, load_id: &str) -> Result<bool> {
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
