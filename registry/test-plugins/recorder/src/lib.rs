//! A small, real destination plugin used by the registry's tests (not shipped).
//!
//! Everything it receives is recorded under `<path>/<dataset>/`: `calls.jsonl` (one line per
//! client call), `schemas.jsonl` (`_dlt_version` rows), `loads.jsonl` (`_dlt_loads` rows),
//! `state.jsonl` (`_dlt_pipeline_state` rows) and `tables/<table>.jsonl` (the rows, as arrow-json
//! writes them). Rows of a load become visible in `tables/` only at `complete_load`, like a
//! transaction: until then they wait in `pending/<load_id>/`.

use std::fs::{self, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};

use serde_json::{json, Value};
use sluice_sdk::prelude::*;

struct Recorder {
    root: PathBuf,
}

impl Destination for Recorder {
    fn capabilities(&self) -> Capabilities {
        Capabilities {
            destination_type: "sluice.destinations.recorder".into(),
            supports_transactions: true,
            ..Capabilities::default()
        }
    }

    fn open_client(&self, request: ClientRequest) -> Result<Box<dyn DestinationClient>> {
        if request.dataset_name.is_empty() || request.dataset_name.contains(['/', '\\']) {
            return Err(Error::config(format!(
                "invalid dataset name `{}`",
                request.dataset_name
            )));
        }
        Ok(Box::new(RecorderClient {
            dir: self.root.join(&request.dataset_name),
        }))
    }
}

struct RecorderClient {
    dir: PathBuf,
}

fn io(e: std::io::Error, path: &Path) -> Error {
    Error::io(format!("`{}`: {e}", path.display()))
}

fn append(path: &Path, line: &Value) -> Result<()> {
    if let Some(parent) = path.parent() {
        fs::create_dir_all(parent).map_err(|e| io(e, parent))?;
    }
    let mut f = OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .map_err(|e| io(e, path))?;
    writeln!(f, "{line}").map_err(|e| io(e, path))
}

fn read_lines(path: &Path) -> Result<Vec<Value>> {
    match fs::read_to_string(path) {
        Ok(text) => text
            .lines()
            .filter(|l| !l.trim().is_empty())
            .map(|l| serde_json::from_str(l).map_err(Error::from))
            .collect(),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Vec::new()),
        Err(e) => Err(io(e, path)),
    }
}

impl RecorderClient {
    fn call(&self, name: &str, args: Value) -> Result<()> {
        append(
            &self.dir.join("calls.jsonl"),
            &json!({ "call": name, "args": args }),
        )
    }
}

impl DestinationClient for RecorderClient {
    fn initialize_storage(&mut self) -> Result<()> {
        fs::create_dir_all(&self.dir).map_err(|e| io(e, &self.dir))?;
        self.call("initialize_storage", Value::Null)
    }

    fn is_storage_initialized(&mut self) -> Result<bool> {
        Ok(self.dir.is_dir())
    }

    fn drop_storage(&mut self) -> Result<()> {
        match fs::remove_dir_all(&self.dir) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(io(e, &self.dir)),
        }
    }

    fn get_stored_schema(&mut self, schema_name: &str) -> Result<Option<StoredSchema>> {
        let rows = read_lines(&self.dir.join("schemas.jsonl"))?;
        let newest = rows
            .into_iter()
            .filter(|r| r["schema_name"] == schema_name)
            .max_by_key(|r| r["version"].as_i64().unwrap_or(0));
        Ok(match newest {
            Some(r) => Some(serde_json::from_value(r)?),
            None => None,
        })
    }

    fn get_stored_state(&mut self, pipeline_name: &str) -> Result<Option<StoredState>> {
        let loads = read_lines(&self.dir.join("loads.jsonl"))?;
        let completed: Vec<&str> = loads.iter().filter_map(|l| l["load_id"].as_str()).collect();
        let states = read_lines(&self.dir.join("state.jsonl"))?;
        let newest = states
            .into_iter()
            .filter(|s| s["pipeline_name"] == pipeline_name)
            .filter(|s| {
                s["load_id"]
                    .as_str()
                    .is_some_and(|id| completed.contains(&id))
            })
            .max_by(|a, b| a["load_id"].as_str().cmp(&b["load_id"].as_str()));
        Ok(match newest {
            Some(s) => Some(serde_json::from_value(s)?),
            None => None,
        })
    }

    fn update_stored_schema(
        &mut self,
        schema: &Schema,
        schema_json: &str,
        request: &SchemaUpdateRequest,
    ) -> Result<SchemaUpdate> {
        self.call(
            "update_stored_schema",
            json!({ "version_hash": schema.version_hash, "request": request }),
        )?;
        let mut update = SchemaUpdate::default();
        if self
            .get_stored_schema(&schema.name)?
            .map(|s| s.version_hash)
            != Some(schema.version_hash.clone())
        {
            let row = StoredSchema {
                version: schema.version as i64,
                engine_version: i64::from(schema.engine_version),
                inserted_at: "recorded".into(),
                schema_name: schema.name.clone(),
                version_hash: schema.version_hash.clone(),
                schema: schema_json.to_string(),
            };
            append(
                &self.dir.join("schemas.jsonl"),
                &serde_json::to_value(&row)?,
            )?;
            update.stored_version = true;
        }
        for (name, table) in &schema.tables {
            update.created_tables.insert(
                name.clone(),
                table.complete_columns().map(|c| c.name.clone()).collect(),
            );
        }
        Ok(update)
    }

    fn start_load(&mut self, load_id: &str, plan: &LoadPlan) -> Result<()> {
        let pending = self.dir.join("pending").join(load_id);
        // a retried package starts over: drop what an interrupted attempt left
        if pending.exists() {
            fs::remove_dir_all(&pending).map_err(|e| io(e, &pending))?;
        }
        fs::create_dir_all(&pending).map_err(|e| io(e, &pending))?;
        self.call(
            "start_load",
            json!({ "load_id": load_id, "jobs": plan.jobs.len() }),
        )
    }

    fn write_table(
        &mut self,
        load_id: &str,
        job: &LoadJob,
        data: BatchReader,
        cancel: &CancelToken,
    ) -> Result<JobReport> {
        let path = self
            .dir
            .join("pending")
            .join(load_id)
            .join(format!("{}.jsonl", job.table_name));
        let file = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)
            .map_err(|e| io(e, &path))?;
        let mut writer = arrow_json::LineDelimitedWriter::new(file);
        let mut rows = 0u64;
        for batch in data {
            cancel.check()?;
            let batch = batch.map_err(Error::from)?;
            rows += batch.num_rows() as u64;
            writer.write(&batch).map_err(Error::from)?;
        }
        writer.finish().map_err(Error::from)?;
        self.call(
            "write_table",
            json!({ "load_id": load_id, "table": job.table_name, "rows": rows }),
        )?;
        Ok(JobReport {
            rows,
            ..Default::default()
        })
    }

    fn complete_load(&mut self, load_id: &str, completion: &LoadCompletion) -> Result<()> {
        let pending = self.dir.join("pending").join(load_id);
        if let Ok(entries) = fs::read_dir(&pending) {
            for entry in entries.flatten() {
                let from = entry.path();
                let text = fs::read_to_string(&from).map_err(|e| io(e, &from))?;
                let to = self.dir.join("tables").join(entry.file_name());
                if let Some(parent) = to.parent() {
                    fs::create_dir_all(parent).map_err(|e| io(e, parent))?;
                }
                let mut f = OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(&to)
                    .map_err(|e| io(e, &to))?;
                f.write_all(text.as_bytes()).map_err(|e| io(e, &to))?;
            }
            fs::remove_dir_all(&pending).map_err(|e| io(e, &pending))?;
        }
        if let Some(state) = &completion.state {
            append(&self.dir.join("state.jsonl"), &serde_json::to_value(state)?)?;
        }
        append(
            &self.dir.join("loads.jsonl"),
            &json!({
                "load_id": load_id,
                "schema_name": completion.schema_name,
                "status": 0,
                "inserted_at": completion.inserted_at,
                "schema_version_hash": completion.schema_version_hash,
            }),
        )?;
        tracing::info!(load_id, "load completed");
        self.call("complete_load", json!({ "load_id": load_id }))
    }

    fn is_load_completed(&mut self, load_id: &str) -> Result<bool> {
        let loads = read_lines(&self.dir.join("loads.jsonl"))?;
        Ok(loads.iter().any(|l| l["load_id"] == load_id))
    }

    fn drop_tables(&mut self, request: &DropTablesRequest) -> Result<()> {
        for t in &request.tables {
            let path = self.dir.join("tables").join(format!("{t}.jsonl"));
            if path.exists() {
                fs::remove_file(&path).map_err(|e| io(e, &path))?;
            }
        }
        self.call("drop_tables", json!({ "tables": request.tables }))
    }
}

fn plugin() -> Plugin {
    Plugin::new(
        include_str!("../sluice-plugin.toml"),
        env!("CARGO_PKG_VERSION"),
    )
    .destination(|config, _secrets| {
        let root = config
            .get("path")
            .and_then(Value::as_str)
            .ok_or_else(|| Error::config("missing `path` of destination `recorder`"))?;
        Ok(Recorder {
            root: PathBuf::from(root),
        })
    })
}

sluice_sdk::declare_plugin!(fn plugin_module = plugin);
sluice_sdk::export_plugin!(plugin_module);
