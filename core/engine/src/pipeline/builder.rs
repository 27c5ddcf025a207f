//! [`PipelineBuilder`]: the settings of a pipeline, and `build`, which opens (or creates) its
//! working directory.

use std::path::PathBuf;
use std::sync::Arc;

use serde_json::Value;
use sluice_sdk::Destination;

use super::{
    default_data_dir, workdir, ArrowOptions, LoadStorage, LockMode, Pipeline, PipelineState,
    WorkdirLock,
};
use crate::naming::NamingKind;
use crate::{Error, Result};

/// Builds a [`Pipeline`].
pub struct PipelineBuilder {
    name: String,
    destination: Option<(String, Arc<dyn Destination>)>,
    destination_location: Option<String>,
    dataset_name: Option<String>,
    pipelines_dir: Option<PathBuf>,
    dev_mode: bool,
    restore_from_destination: bool,
    delete_completed_jobs: bool,
    arrow_options: ArrowOptions,
    naming: Option<NamingKind>,
    workers: Option<usize>,
    lock_mode: LockMode,
    lock_wait: std::time::Duration,
}

impl std::fmt::Debug for PipelineBuilder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PipelineBuilder")
            .field("name", &self.name)
            .finish_non_exhaustive()
    }
}

impl PipelineBuilder {
    /// The destination, resolved by the caller: a plugin loaded through the registry and opened
    /// with its config (as `sluice run` does), or one linked in. `name` is the destination's
    /// name in load info and state (`duckdb`, `postgres`).
    pub fn destination(mut self, name: &str, destination: Arc<dyn Destination>) -> Self {
        self.destination = Some((name.to_string(), destination));
        self
    }

    /// How the destination location is shown in load info (without secrets); default: the
    /// location the destination announces in its capabilities (`destination_location`), else
    /// its name.
    pub fn destination_location(mut self, location: &str) -> Self {
        self.destination_location = Some(location.to_string());
        self
    }

    /// The dataset (default `<pipeline_name>_dataset`).
    pub fn dataset_name(mut self, name: &str) -> Self {
        self.dataset_name = Some(name.to_string());
        self
    }

    /// The folder holding pipeline working directories (default `<data dir>/pipelines`).
    pub fn pipelines_dir(mut self, dir: impl Into<PathBuf>) -> Self {
        self.pipelines_dir = Some(dir.into());
        self
    }

    /// dev mode: a fresh working dir and a dataset name suffixed with the creation time.
    pub fn dev_mode(mut self, on: bool) -> Self {
        self.dev_mode = on;
        self
    }

    /// Whether a missing or older local state is restored from the destination (default true).
    pub fn restore_from_destination(mut self, on: bool) -> Self {
        self.restore_from_destination = on;
        self
    }

    /// Whether a loaded package's job files are deleted (default true; dlt's
    /// `load.delete_completed_jobs`, whose default is false). The package folder stays, with
    /// its manifest (jobs, rows, sizes, state) and schema.
    pub fn delete_completed_jobs(mut self, on: bool) -> Self {
        self.delete_completed_jobs = on;
        self
    }

    /// Whether typed Arrow tables (SQL tables, parquet and csv files) get `_dlt_id` and
    /// `_dlt_load_id` columns: dlt's `normalize.parquet_normalizer.add_dlt_id` and
    /// `add_dlt_load_id`, off by default as in dlt (a table that has the column keeps getting
    /// it).
    pub fn arrow_options(mut self, options: ArrowOptions) -> Self {
        self.arrow_options = options;
        self
    }

    /// The naming convention of new schemas (default `snake_case`).
    pub fn naming(mut self, kind: NamingKind) -> Self {
        self.naming = Some(kind);
        self
    }

    /// Normalize worker threads (default: available cores).
    pub fn workers(mut self, n: usize) -> Self {
        self.workers = Some(n);
        self
    }

    /// How the working directory is locked (default [`LockMode::Exclusive`]): a pipeline that
    /// only reads (show, query) takes a shared lock, and then never touches half-written
    /// packages, which belong to the writer.
    pub fn lock_mode(mut self, mode: LockMode) -> Self {
        self.lock_mode = mode;
        self
    }

    /// How long to wait for another process's lock on the working directory (default: not at
    /// all; the build fails at once with a message naming the holder).
    pub fn lock_wait(mut self, wait: std::time::Duration) -> Self {
        self.lock_wait = wait;
        self
    }

    /// Builds the pipeline: opens (or creates) the working dir and reads its state.
    pub fn build(self) -> Result<Pipeline> {
        // the name becomes a folder: checked before anything is touched
        workdir::check_name("pipeline", &self.name)?;
        let Some((destination_name, destination)) = self.destination else {
            return Err(Error::config(format!(
                "pipeline `{}` has no destination\nhint: pass one to `PipelineBuilder::destination`",
                self.name
            )));
        };
        let capabilities = destination.capabilities();
        let pipelines_dir = self
            .pipelines_dir
            .unwrap_or_else(|| default_data_dir().join("pipelines"));
        let working_dir = pipelines_dir.join(&self.name);
        let mut dataset = self
            .dataset_name
            .unwrap_or_else(|| format!("{}_dataset", self.name));
        workdir::create_private_dir(&working_dir).map_err(|e| {
            Error::config(format!(
                "cannot create the working directory `{}` of pipeline `{}`: {e}\nhint: set SLUICE_DATA_DIR or `pipelines_dir` to a writable folder",
                working_dir.display(),
                self.name
            ))
        })?;
        let lock = WorkdirLock::acquire(&working_dir, &self.name, self.lock_mode, self.lock_wait)?;
        if self.dev_mode {
            if !lock.is_exclusive() {
                return Err(Error::config(format!(
                    "pipeline `{}`: dev mode clears the working directory and needs the exclusive lock",
                    self.name
                )));
            }
            workdir::clear(&working_dir, &self.name)?;
            dataset = format!("{dataset}_{}", chrono::Utc::now().format("%Y%m%d%H%M%S"));
        }
        // the destination says where it writes (without secrets) when it knows
        let announced = capabilities
            .extra
            .get("destination_location")
            .and_then(Value::as_str)
            .map(String::from);
        let location = self
            .destination_location
            .or(announced)
            .unwrap_or_else(|| destination_name.clone());
        let storage = LoadStorage::new(&working_dir);
        let mut p = Pipeline {
            name: self.name.clone(),
            dataset,
            working_dir,
            destination,
            destination_name,
            destination_location: location,
            capabilities,
            naming: self.naming.unwrap_or(NamingKind::SnakeCase),
            dev_mode: self.dev_mode,
            restore_from_destination: self.restore_from_destination,
            delete_completed_jobs: self.delete_completed_jobs,
            arrow_options: self.arrow_options,
            synced: false,
            workers: self
                .workers
                .unwrap_or_else(|| std::thread::available_parallelism().map_or(2, |n| n.get())),
            state: PipelineState::new(&self.name),
            schema: None,
            storage,
            lock,
        };
        p.load_local()?;
        Ok(p)
    }
}

impl Pipeline {
    /// A builder for pipeline `name`.
    pub fn builder(name: &str) -> PipelineBuilder {
        PipelineBuilder {
            name: name.to_string(),
            destination: None,
            destination_location: None,
            dataset_name: None,
            pipelines_dir: None,
            dev_mode: false,
            restore_from_destination: true,
            delete_completed_jobs: true,
            arrow_options: ArrowOptions::default(),
            naming: None,
            workers: None,
            lock_mode: LockMode::Exclusive,
            lock_wait: std::time::Duration::ZERO,
        }
    }
}
