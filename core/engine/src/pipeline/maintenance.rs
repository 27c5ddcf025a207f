//! Work on a pipeline besides runs: dropping resources, restoring state and schema from the
//! destination, wiping the working directory.

use serde_json::Value;
use sluice_sdk::DestinationClient;

use super::{now_iso, resource, state, workdir, Pipeline, PipelineState, RunOptions};
use crate::schema::Schema;
use crate::{Error, Result};

impl Pipeline {
    /// Drops the tables of `resources` (with their nested tables) in the destination and from
    /// the schema, forgets the resources' state, and stores the new schema and state in the
    /// destination with a load package of its own (`sluice pipeline <name> drop`, dlt's
    /// `pipeline drop`). Returns the dropped tables.
    pub fn drop_resources(&mut self, resources: &[String]) -> Result<Vec<String>> {
        self.require_writer("drop")?;
        if !self.synced {
            let mut client = self.open_client()?;
            self.sync_from_destination(client.as_mut())?;
            self.synced = true;
        }
        let mut schema = self.schema.clone().ok_or_else(|| {
            Error::config(format!(
                "pipeline `{}` has no schema yet: nothing to drop",
                self.name
            ))
        })?;
        let known: Vec<String> = schema
            .tables()
            .iter()
            .filter(|(n, t)| t.parent.is_none() && !n.starts_with("_dlt"))
            .map(|(n, t)| t.resource.clone().unwrap_or_else(|| n.clone()))
            .collect();
        for r in resources {
            if !known.contains(r) {
                return Err(Error::config(format!(
                    "pipeline `{}` has no resource `{r}` (its resources: {})",
                    self.name,
                    known.join(", ")
                )));
            }
        }
        let roots: Vec<String> = schema
            .tables()
            .iter()
            .filter(|(n, t)| {
                t.parent.is_none()
                    && resources.contains(&t.resource.clone().unwrap_or_else(|| n.to_string()))
            })
            .map(|(n, _)| n.clone())
            .collect();
        let tables: Vec<String> = schema
            .tables()
            .keys()
            .filter(|n| roots.iter().any(|r| schema.root_table_of(n) == r))
            .cloned()
            .collect();
        let mut client = self.open_client()?;
        client
            .drop_tables(&sluice_sdk::destination::DropTablesRequest {
                tables: tables.clone(),
                staging: true,
            })
            .map_err(Error::Plugin)?;
        drop(client);
        for t in &tables {
            schema.doc_mut().tables.shift_remove(t);
        }
        schema.recompile()?;
        let section = self
            .state
            .get("sources")
            .and_then(Value::as_object)
            .and_then(|srcs| {
                srcs.iter().find_map(|(name, v)| {
                    let rs = v.get("resources")?.as_object()?;
                    resources
                        .iter()
                        .any(|r| rs.contains_key(r))
                        .then(|| name.clone())
                })
            })
            .unwrap_or_else(|| schema.name().to_string());
        for r in resources {
            self.state.reset_resource_state(&section, r);
        }
        self.schema = Some(schema);
        self.save_local()?;
        // a package with the new schema and state only, so the destination forgets them too
        let empty = resource::CodeSource::new(&section, Vec::new());
        self.run(
            &empty,
            &RunOptions {
                section: Some(section.clone()),
                resources: Some(Vec::new()),
                ..Default::default()
            },
        )?;
        Ok(tables)
    }

    /// Forgets the local state and schemas and restores them from the destination now
    /// (`sluice pipeline <name> sync`); pending packages are kept.
    pub fn sync(&mut self) -> Result<()> {
        self.require_writer("sync")?;
        // connect first: a destination that cannot be reached (a wrong password) leaves the
        // local state as it was
        let mut client = self.open_client()?;
        client.is_storage_initialized()?;
        // the restore runs in memory; the local files are replaced only once it worked
        let (state, schema) = (self.state.clone(), self.schema.take());
        self.state = PipelineState::new(&self.name);
        self.synced = false;
        if let Err(e) = self.sync_from_destination_in_memory(client.as_mut()) {
            self.state = state;
            self.schema = schema;
            return Err(e);
        }
        self.synced = true;
        let schemas = self.working_dir.join("schemas");
        if schemas.is_dir() {
            std::fs::remove_dir_all(&schemas).map_err(|e| Error::io(&schemas, e))?;
        }
        self.save_local()
    }

    /// Restores state and schema from the destination when the local ones are missing or
    /// older (spec e.3), and saves them. Runs once per pipeline object.
    pub(super) fn sync_from_destination(
        &mut self,
        client: &mut dyn DestinationClient,
    ) -> Result<()> {
        if self.sync_from_destination_in_memory(client)? {
            self.save_local()?;
        }
        Ok(())
    }

    /// The restore of [`Self::sync_from_destination`] without touching the local files;
    /// returns whether anything was restored.
    fn sync_from_destination_in_memory(
        &mut self,
        client: &mut dyn DestinationClient,
    ) -> Result<bool> {
        if self.synced || self.dev_mode || !self.restore_from_destination {
            self.synced = true;
            return Ok(false);
        }
        self.synced = true;
        if !client.is_storage_initialized()? {
            return Ok(false);
        }
        let Some(stored) = client.get_stored_state(&self.name)? else {
            return Ok(false);
        };
        let remote = state::decompress_state(&stored.state)?;
        let remote_version = remote
            .get("_state_version")
            .and_then(Value::as_i64)
            .unwrap_or(0);
        let remote_hash = remote
            .get("_version_hash")
            .and_then(Value::as_str)
            .map(String::from);
        if remote_version < self.state.version()
            || remote_hash.as_deref() == self.state.version_hash()
        {
            return Ok(false);
        }
        tracing::info!(target: "sluice::pipeline", pipeline = %self.name, version = remote_version, "restoring state from the destination");
        let local = self.state.get("_local").cloned();
        let mut restored = PipelineState::from_value(remote)?;
        if let Some(l) = local {
            restored.set("_local", l);
        }
        restored.mark_extracted(&now_iso());
        if let Some(name) = restored
            .get("default_schema_name")
            .and_then(Value::as_str)
            .map(String::from)
        {
            // a name read from the destination becomes a file name
            workdir::check_name("schema", &name)?;
            if let Some(s) = client.get_stored_schema(&name)? {
                let doc = serde_json::from_str(&s.schema).map_err(|e| {
                    Error::data(format!(
                        "the schema `{name}` stored in the destination is not valid JSON: {e}"
                    ))
                })?;
                let schema = Schema::from_doc(doc, self.naming_for().max_length)?;
                // the document's own name becomes the file name: it must be the one asked for
                if schema.name() != name {
                    return Err(Error::data(format!(
                        "the schema `{name}` stored in the destination names itself {:?}; it is refused",
                        schema.name()
                    )));
                }
                self.schema = Some(schema);
            }
        }
        self.state = restored;
        Ok(true)
    }

    /// Wipes the local working directory (state, schemas, packages); the destination is
    /// untouched, and the next run restores from it.
    pub fn drop(&mut self) -> Result<()> {
        self.require_writer("drop")?;
        workdir::clear(&self.working_dir, &self.name)?;
        self.state = PipelineState::new(&self.name);
        self.schema = None;
        self.synced = false;
        Ok(())
    }
}
