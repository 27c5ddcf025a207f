//! The extract stage: a source's resources read (concurrently when independent) and
//! normalized into a new load package, with the run's state and schema versions.

use std::collections::BTreeMap;
use std::sync::Arc;

use serde_json::{json, Map, Value};
use sluice_sdk::destination::StoredState;
use sluice_sdk::resource::{DataFormat, ResourceDescriptor};
use sluice_sdk::Source;

use super::items::Item;
use super::{now_iso, package, state, PackageManifest, Pipeline, RunOptions, Step};
use crate::extract;
use crate::naming::Naming;
use crate::normalize::parallel::ParallelNormalizer;
use crate::normalize::NormalizeOptions;
use crate::schema::Schema;
use crate::writer::ParquetWriter;
use crate::{Error, Result};

/// The longest schema name (dlt's `InvalidSchemaName.MAXIMUM_SCHEMA_NAME_LENGTH`).
const MAX_SCHEMA_NAME_LENGTH: usize = 64;

impl Pipeline {
    /// Extract + normalize into a new package. Returns whether a package was produced.
    pub(super) fn extract_normalize(
        &mut self,
        source: &dyn Source,
        options: &RunOptions,
        load_id: &str,
    ) -> Result<bool> {
        let section = options.section.clone().unwrap_or_else(|| self.name.clone());
        // a schema name is not a destination identifier: dlt's `normalize_schema_name` keeps
        // up to 64 characters whatever the destination's `max_identifier_length`
        let schema_name =
            Naming::new(self.naming, Some(MAX_SCHEMA_NAME_LENGTH)).normalize_path(&section);
        let mut schema = match &self.schema {
            Some(s) if s.name() == schema_name => s.clone(),
            _ => Schema::new(&schema_name, self.naming_for()),
        };
        let mut state = self.state.clone();
        // the resources to run
        let described = source
            .describe()
            .map_err(|e| self.step_error(Step::Extract, Some(load_id), e.into()))?;
        let mut resources: Vec<ResourceDescriptor> = match &options.resources {
            Some(names) => {
                let mut out = Vec::new();
                for n in names {
                    let r = described.iter().find(|r| &r.name == n).ok_or_else(|| {
                        let known: Vec<&str> = described.iter().map(|r| r.name.as_str()).collect();
                        self.step_error(
                            Step::Extract,
                            Some(load_id),
                            Error::config(format!(
                                "the source has no resource `{n}`\nhint: its resources are {}",
                                known.join(", ")
                            )),
                        )
                    })?;
                    out.push(r.clone());
                }
                out
            }
            None => described.into_iter().filter(|r| r.selected).collect(),
        };
        if let Some(wd) = &options.write_disposition {
            for r in &mut resources {
                r.write_disposition = Some(wd.clone());
            }
        }
        // extract stage: resource hints into the schema
        let mut tables: Vec<(ResourceDescriptor, Option<String>)> = Vec::new();
        for r in &resources {
            if r.table_name_path.is_some() && r.data_format == DataFormat::Json {
                // tables named by the data: created (with these hints) as names arrive
                tables.push((r.clone(), Some(String::new())));
                continue;
            }
            let t = extract::apply_resource(&mut schema, r)
                .map_err(|e| self.step_error(Step::Extract, Some(load_id), e))?;
            tables.push((r.clone(), t));
        }
        let extract_schema = schema.clone();
        // stream and normalize
        let dir = self.storage.new_package_dir(load_id)?;
        let writer = ParquetWriter::new(&dir.join("jobs"))?;
        let mut normalizer = ParallelNormalizer::new(
            schema,
            load_id,
            writer,
            NormalizeOptions::default(),
            self.workers,
        );
        let created_at = now_iso();
        // resources with a table, each with the state it starts from (dlt resets the state of
        // a replaced resource, creating its source section)
        let mut jobs_in: Vec<(&ResourceDescriptor, &str, Option<Map<String, Value>>)> = Vec::new();
        for (r, table) in &tables {
            let Some(table) = table else { continue };
            if r.write_disposition.as_ref().map(|w| w.disposition())
                == Some(sluice_sdk::schema::WriteDisposition::Replace)
            {
                state.reset_resource_state(&section, &r.name);
            }
            jobs_in.push((
                r,
                table.as_str(),
                state.resource_state(&section, &r.name).cloned(),
            ));
        }
        let this: &Pipeline = self;
        let normalize_err = |e: Error| this.step_error(Step::Normalize, Some(load_id), e);
        let mut dynamic: BTreeMap<(String, String), String> = BTreeMap::new();
        let mut push = |item: Item| -> Result<()> {
            match item {
                Item::Json(t, text, origins) => {
                    normalizer.push_shared_from(&t, Arc::new(text), origins.into())
                }
                Item::Shared(t, text, origin) => normalizer.push_shared_from(
                    &t,
                    text,
                    origin.into_iter().collect::<Vec<_>>().into(),
                ),
                Item::Arrow(t, b) => normalizer.push_arrow(&t, &b, this.arrow_options),
                Item::Routed(desc, raw, text) => {
                    let key = (desc.name.clone(), raw.clone());
                    let table = match dynamic.get(&key) {
                        Some(t) => t.clone(),
                        None => {
                            let mut d = (*desc).clone();
                            d.table_name = Some(raw.clone());
                            d.table_name_path = None;
                            let name = normalizer
                                .update_schema(|s| extract::apply_resource(s, &d))?
                                .ok_or_else(|| {
                                    Error::data(format!(
                                        "resource `{}`: no table for `{raw}` (filtered by a contract?)",
                                        desc.name
                                    ))
                                })?;
                            dynamic.insert(key, name.clone());
                            name
                        }
                    };
                    normalizer.push(&table, text)
                }
            }
            .map_err(normalize_err)
        };
        let results: Vec<Result<Option<Map<String, Value>>>> = if jobs_in.len() <= 1
            || options.sequential
        {
            jobs_in
                .iter()
                .map(|(r, t, prev)| {
                    this.extract_resource(
                        source,
                        r,
                        t,
                        prev.clone(),
                        &mut push,
                        options,
                        load_id,
                        &[],
                    )
                })
                .collect()
        } else {
            // independent resources extract concurrently (one thread each); their items meet in
            // one bounded channel that feeds the normalizer on this thread
            // the resources read together (a source may share work between their streams,
            // e.g. request a parent's pages once for the parent and its children)
            let together: Vec<String> = jobs_in.iter().map(|(r, _, _)| r.name.clone()).collect();
            let together = &together;
            std::thread::scope(|scope| {
                let (tx, rx) = std::sync::mpsc::sync_channel::<Item>(8);
                let handles: Vec<_> = jobs_in
                    .iter()
                    .map(|(r, t, prev)| {
                        let tx = tx.clone();
                        let prev = prev.clone();
                        scope.spawn(move || {
                            let mut send = |item: Item| -> Result<()> {
                                tx.send(item).map_err(|_| {
                                    Error::data("stopped: another resource of this run failed")
                                })
                            };
                            this.extract_resource(
                                source, r, t, prev, &mut send, options, load_id, together,
                            )
                        })
                    })
                    .collect();
                drop(tx);
                let mut first_err: Option<Error> = None;
                for item in rx.iter() {
                    if let Err(e) = push(item) {
                        first_err = Some(e);
                        break;
                    }
                }
                // dropping the receiver stops the producers (their sends fail)
                drop(rx);
                let mut results: Vec<Result<Option<Map<String, Value>>>> = handles
                    .into_iter()
                    .map(|h| {
                        h.join().unwrap_or_else(|_| {
                            Err(Error::internal("a resource's extract thread panicked"))
                        })
                    })
                    .collect();
                if let Some(e) = first_err {
                    results.insert(0, Err(e));
                }
                results
            })
        };
        let dynamic_tables: Vec<String> = dynamic.into_values().collect();
        // the first real error wins over the "stopped" errors it caused in other resources
        let mut stopped: Option<Error> = None;
        let mut new_states = Vec::new();
        for res in results {
            match res {
                Ok(s) => new_states.push(s),
                Err(e) if e.to_string().contains("stopped: another resource") => {
                    stopped.get_or_insert(e);
                }
                Err(e) => return Err(e),
            }
        }
        if let Some(e) = stopped {
            return Err(e);
        }
        for ((r, _, _), new_state) in jobs_in.iter().zip(new_states) {
            if let Some(ns) = new_state {
                *state.resource_state_mut(&section, &r.name) = ns;
            }
        }
        let (report, writer, mut schema) = normalizer
            .finish()
            .map_err(|e| self.step_error(Step::Normalize, Some(load_id), e))?;
        let jobs = writer
            .finish()
            .map_err(|e| self.step_error(Step::Normalize, Some(load_id), e))?;
        // state: dlt's top-level keys, then the version bump
        state.set("dataset_name", json!(self.dataset));
        let mut names: Vec<String> = state
            .get("schema_names")
            .and_then(Value::as_array)
            .map(|a| {
                a.iter()
                    .filter_map(Value::as_str)
                    .map(String::from)
                    .collect()
            })
            .unwrap_or_default();
        if !names.contains(&schema_name) {
            names.push(schema_name.clone());
        }
        state.set("schema_names", json!(names));
        state.set("default_schema_name", json!(schema_name));
        state.set(
            "destination_type",
            json!(self.capabilities.destination_type),
        );
        state.set(
            "destination_name",
            if self
                .capabilities
                .destination_type
                .ends_with(&format!(".{}", self.destination_name))
            {
                Value::Null
            } else {
                json!(self.destination_name)
            },
        );
        state.bump_version();
        let state_changed = state.needs_extract();
        // schema versions: extract stage (hints + state table), then normalize
        let mut extract_stage = extract_schema;
        if state_changed {
            extract::ensure_state_table(&mut extract_stage);
        }
        extract_stage.bump_version();
        if state_changed {
            extract::ensure_state_table(&mut schema);
            schema.mark_seen_data(sluice_sdk::schema::STATE_TABLE);
        }
        schema.adopt_version_of(&extract_stage);
        schema.bump_version();
        let state_created_at = now_iso();
        let state_row = if state_changed {
            state.mark_extracted(&state_created_at);
            Some(StoredState {
                version: state.version(),
                engine_version: state::STATE_ENGINE_VERSION,
                pipeline_name: self.name.clone(),
                state: state::compress_state(&state.synced())?,
                created_at: state_created_at.clone(),
                version_hash: state.version_hash().map(String::from),
                load_id: load_id.to_string(),
            })
        } else {
            None
        };
        let mut root_tables: Vec<String> = tables
            .iter()
            .filter_map(|(_, t)| t.clone())
            .filter(|t| !t.is_empty())
            .collect();
        for t in dynamic_tables {
            if !root_tables.contains(&t) {
                root_tables.push(t);
            }
        }
        if jobs.is_empty()
            && state_row.is_none()
            && root_tables.iter().all(|t| {
                schema.write_disposition_of(t) != sluice_sdk::schema::WriteDisposition::Replace
            })
        {
            // nothing to load; keep the schema if the hints changed it
            std::fs::remove_dir_all(&dir).map_err(|e| Error::io(&dir, e))?;
            self.schema = Some(schema);
            self.state = state;
            self.save_local()?;
            return Ok(false);
        }
        let manifest = PackageManifest {
            load_id: load_id.to_string(),
            schema_name: schema.name().to_string(),
            created_at,
            jobs,
            root_tables,
            state_row,
            pipeline_state: state.to_value(),
            rows: report.rows.clone(),
            failed: BTreeMap::new(),
            completed_at: None,
            jobs_deleted: false,
        };
        let schema_json = serde_json::to_string(&schema.to_value())?;
        self.storage.commit_new(&manifest, &schema_json)?;
        // the schema of extract + normalize is the pipeline's from now on (as dlt saves it)
        self.schema = Some(schema);
        if let Some(s) = &self.schema {
            package::create_dir(&self.working_dir.join("schemas"))?;
            package::write_atomic(
                &self.schema_path(s.name()),
                &serde_json::to_vec_pretty(&s.to_value())?,
            )?;
        }
        Ok(true)
    }
}
