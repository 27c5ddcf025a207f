//! The load stage: packages handed to the destination in order, each committed in one
//! destination transaction where the destination has them; transient failures are retried.

use std::path::Path;
use std::time::Instant;

use arrow_array::RecordBatchReader;
use serde_json::json;
use sluice_sdk::destination::{LoadCompletion, LoadJob, LoadPlan, SchemaUpdateRequest};
use sluice_sdk::{CancelFlag, DestinationClient};

use super::{
    now_iso, LoadInfo, LoadStorage, PackageInfo, PackageManifest, Pipeline, PipelineState, Step,
};
use crate::schema::Schema;
use crate::{Error, Result};

impl Pipeline {
    /// Loads the packages with `load_ids` in order.
    pub(super) fn load_packages(
        &mut self,
        client: &mut dyn DestinationClient,
        load_ids: &[String],
    ) -> Result<LoadInfo> {
        let started = Instant::now();
        let mut info = self.empty_info();
        for load_id in load_ids {
            let dir = self.storage.pending_dir(load_id);
            let mut manifest = LoadStorage::read_manifest(&dir)?;
            let result = self.load_package(client, &dir, &manifest);
            match result {
                Ok(PackageOutcome::Loaded) => {
                    manifest.completed_at = Some(now_iso());
                    manifest.failed.clear();
                    self.storage
                        .mark_loaded(&mut manifest, self.delete_completed_jobs)?;
                    // commit the package's state and schema
                    let mut committed = PipelineState::from_value(manifest.pipeline_state.clone())?;
                    if manifest.state_row.is_none() {
                        // keep the local markers of the current state
                        if let Some(l) = self.state.get("_local").cloned() {
                            committed.set("_local", l);
                        }
                    }
                    self.state = committed;
                    let schema_text = std::fs::read_to_string(
                        self.storage.loaded_dir(load_id).join("schema.json"),
                    )
                    .map_err(|e| Error::io(&dir, e))?;
                    self.schema = Some(Schema::from_doc(
                        serde_json::from_str(&schema_text)?,
                        self.naming_for().max_length,
                    )?);
                    self.save_local()?;
                    info.packages.push(PackageInfo {
                        load_id: load_id.clone(),
                        state: "LOADED".into(),
                        failed_jobs: Vec::new(),
                        rows: manifest.rows.clone(),
                    });
                }
                Ok(PackageOutcome::Failed { job, message }) => {
                    // terminal: the destination refused the package and committed none of it.
                    // The package moves to `failed/` (kept for inspection, never loaded again);
                    // its state is not committed, so the next run extracts the data again.
                    tracing::error!(target: "sluice::pipeline", pipeline = %self.name, load_id = %load_id, job = %job, "load package failed: {message}");
                    manifest.completed_at = Some(now_iso());
                    manifest.failed.insert(job.clone(), message.clone());
                    self.storage.mark_failed(&mut manifest)?;
                    info.packages.push(PackageInfo {
                        load_id: load_id.clone(),
                        state: "FAILED".into(),
                        failed_jobs: vec![(job, message)],
                        rows: manifest.rows.clone(),
                    });
                }
                Err(e) => {
                    // a transient failure (retries exhausted) or a configuration problem: the
                    // package stays pending and the next run loads it
                    manifest.failed.insert("package".into(), e.to_string());
                    let _ = LoadStorage::write_manifest(&dir, &manifest);
                    return Err(self.step_error(Step::Load, Some(load_id), e));
                }
            }
        }
        info.load_duration = started.elapsed();
        info.load_seconds = info.load_duration.as_secs_f64();
        Ok(info)
    }

    /// Loads one package. A non-retryable refusal by the destination (creating the dataset,
    /// migrating the schema, a job, the commit) is [`PackageOutcome::Failed`]; a retryable
    /// failure (retries exhausted) or a local one is an error and leaves the package pending.
    fn load_package(
        &self,
        client: &mut dyn DestinationClient,
        dir: &Path,
        manifest: &PackageManifest,
    ) -> Result<PackageOutcome> {
        let schema_json =
            std::fs::read_to_string(dir.join("schema.json")).map_err(|e| Error::io(dir, e))?;
        let schema_doc: sluice_sdk::schema::Schema = serde_json::from_str(&schema_json)?;
        super::verify::check(
            &schema_doc,
            &self.capabilities,
            &self.destination_name,
            &self.name,
        )?;
        let prepared = (|| {
            with_retry(|| client.initialize_storage().map_err(Error::Plugin))?;
            with_retry(|| {
                client
                    .update_stored_schema(
                        &schema_doc,
                        &schema_json,
                        &SchemaUpdateRequest::default(),
                    )
                    .map_err(Error::Plugin)
            })?;
            client
                .is_load_completed(&manifest.load_id)
                .map_err(Error::Plugin)
        })();
        match prepared {
            Ok(true) => {
                tracing::info!(target: "sluice::pipeline", load_id = %manifest.load_id, "package already loaded by an earlier run");
                return Ok(PackageOutcome::Loaded);
            }
            Ok(false) => {}
            Err(e) => return refused(e, None),
        }
        let jobs: Vec<LoadJob> = manifest
            .jobs
            .iter()
            .map(|j| LoadJob {
                job_id: j
                    .path
                    .file_name()
                    .and_then(|n| n.to_str())
                    .unwrap_or("job")
                    .to_string(),
                table_name: j.table.clone(),
                file_format: j.format.clone(),
                rows: Some(j.rows),
                ..Default::default()
            })
            .collect();
        let mut plan = LoadPlan {
            schema_name: manifest.schema_name.clone(),
            schema_version_hash: schema_doc.version_hash.clone(),
            jobs: jobs.clone(),
            ..Default::default()
        };
        plan.extra
            .insert("root_tables".into(), json!(manifest.root_tables));
        plan.extra
            .insert("created_at".into(), json!(manifest.created_at));
        let reads_files = self
            .capabilities
            .supported_loader_file_formats
            .iter()
            .any(|f| f == "parquet");
        let mut attempt = 0;
        // the job being loaded when an attempt failed
        let mut failed_job: Option<String> = None;
        let loaded = with_retry(|| {
            attempt += 1;
            failed_job = None;
            // an attempt cut while committing may have committed: ask before loading again
            if attempt > 1 && client.is_load_completed(&manifest.load_id)? {
                tracing::info!(target: "sluice::pipeline", load_id = %manifest.load_id, "the failed attempt committed the package");
                return Ok(());
            }
            client
                .start_load(&manifest.load_id, &plan)
                .map_err(Error::Plugin)?;
            let cancel = CancelFlag::new().token();
            for (job, file) in jobs.iter().zip(&manifest.jobs) {
                failed_job = Some(format!("{} (table `{}`)", job.job_id, job.table_name));
                let path = dir
                    .join("jobs")
                    .join(file.path.file_name().unwrap_or_default());
                if reads_files {
                    client
                        .load_file(&manifest.load_id, job, &path, &cancel)
                        .map_err(Error::Plugin)?;
                } else {
                    let f = std::fs::File::open(&path).map_err(|e| Error::io(&path, e))?;
                    let reader =
                        parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder::try_new(f)?
                            .build()?;
                    let reader: Box<dyn RecordBatchReader + Send> = Box::new(reader);
                    client
                        .write_table(&manifest.load_id, job, reader, &cancel)
                        .map_err(Error::Plugin)?;
                }
            }
            let mut completion = LoadCompletion {
                schema_name: manifest.schema_name.clone(),
                schema_version_hash: schema_doc.version_hash.clone(),
                inserted_at: now_iso(),
                state: manifest.state_row.clone(),
                ..Default::default()
            };
            completion
                .extra
                .insert("created_at".into(), json!(manifest.created_at));
            failed_job = None;
            client
                .complete_load(&manifest.load_id, &completion)
                .map_err(Error::Plugin)
        });
        match loaded {
            Ok(()) => Ok(PackageOutcome::Loaded),
            Err(e) => refused(e, failed_job),
        }
    }
}

/// How loading one package ended (errors aside).
enum PackageOutcome {
    /// Loaded and committed (now or by an earlier attempt).
    Loaded,
    /// Refused by the destination for good; nothing of it was committed.
    Failed {
        /// The job (file and table) that failed, or `package`.
        job: String,
        /// The destination's message.
        message: String,
    },
}

/// A destination's non-retryable refusal of the package's content (a value or a table it
/// refuses, a constraint, a schema change it cannot make: codes `destination`, `data`,
/// `schema`) fails the package. Anything else is an error that leaves it pending: a retryable
/// failure, wrong credentials (`auth`), a configuration or network problem, a file the engine
/// cannot read, or a refusal after part of the package was applied to a destination without
/// transactions; fixing those and running again loads the package.
fn refused(e: Error, job: Option<String>) -> Result<PackageOutcome> {
    use sluice_sdk::ErrorCode;
    match e {
        Error::Plugin(p)
            if !p.retryable
                && [ErrorCode::DESTINATION, ErrorCode::DATA, ErrorCode::SCHEMA]
                    .contains(&p.code)
                && p.details[sluice_sdk::destination::PARTIALLY_APPLIED] != true =>
        {
            Ok(PackageOutcome::Failed {
                job: job.unwrap_or_else(|| "package".into()),
                message: p.to_string(),
            })
        }
        e => Err(e),
    }
}

/// Retries transient (retryable) failures a few times with a short backoff.
pub(super) fn with_retry<T>(mut f: impl FnMut() -> Result<T>) -> Result<T> {
    let mut attempt = 0;
    loop {
        match f() {
            Ok(v) => return Ok(v),
            Err(e) if attempt < 4 && e.is_retryable() => {
                attempt += 1;
                let wait = std::time::Duration::from_millis(250 * (1 << attempt));
                tracing::warn!(target: "sluice::pipeline", attempt, "transient failure, retrying in {wait:?}: {e}");
                std::thread::sleep(wait);
            }
            Err(e) => return Err(e),
        }
    }
}
