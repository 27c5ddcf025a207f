//! Pipelines: extract -> normalize -> load through load packages, with dlt's state, schema
//! versioning and restore-from-destination semantics (spec e, f, h).
//!
//! ```no_run
//! use serde_json::json;
//! use sluice::pipeline::{CodeSource, Pipeline, Resource, RunOptions};
//!
//! let data = vec![json!({"id": 1, "name": "alice"}), json!({"id": 2, "name": "bob"})];
//! let source = CodeSource::new("simple_source", vec![
//!     Resource::from_values("people", data).write_disposition("replace"),
//! ]);
//! // the destination is resolved by the caller: here the DuckDB plugin, found through the
//! // plugin registry and opened with its config (as `sluice run` does)
//! let duckdb = sluice_registry::Registry::standard()
//!     .load("destination", "duckdb")?
//!     .open_destination(&json!({"credentials": "simple.duckdb"}), &json!({}))?;
//! let mut pipeline = Pipeline::builder("simple_pipeline")
//!     .destination("duckdb", std::sync::Arc::new(duckdb))
//!     .dataset_name("mydata")
//!     .build()?;
//! let info = pipeline.run(&source, &RunOptions::default())?;
//! println!("{info}");
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! Decisions where sluice differs from dlt on purpose (documented in docs/architecture.md):
//! * extract and normalize run as one streaming step; its package becomes durable when it is
//!   complete (a run killed before that re-extracts on the next run, and no state is committed);
//! * a package loads in one destination transaction where the destination has them, so a failed
//!   replace never leaves an empty table (dlt #3025).

mod builder;
mod extract;
pub mod incremental;
pub mod info;
mod items;
mod load;
mod maintenance;
mod options;
pub mod package;
mod progress;
pub mod resource;
pub mod state;
mod verify;
pub mod workdir;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde_json::Value;
use sluice_sdk::destination::ClientRequest;
use sluice_sdk::{CancelFlag, Capabilities, Destination, DestinationClient, Source};

use crate::naming::{Naming, NamingKind};
use crate::schema::Schema;
use crate::{Error, Result};
use load::with_retry;

pub use crate::normalize::arrow_input::ArrowOptions;
pub use builder::PipelineBuilder;
pub use incremental::Incremental;
pub use info::{LoadInfo, PackageInfo};
pub use options::{parse_write_disposition, RunOptions};
pub use package::{LoadStorage, PackageManifest};
pub use progress::{ProgressEvent, ProgressHook};
pub use resource::{CodeSource, Resource};
pub use state::PipelineState;
pub use workdir::{LockMode, WorkdirLock};

/// The pipeline step an error happened in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    /// Syncing state with the destination.
    Sync,
    /// Reading the source.
    Extract,
    /// Normalizing into load files.
    Normalize,
    /// Loading into the destination.
    Load,
}

impl Step {
    /// dlt's step name.
    pub fn name(self) -> &'static str {
        match self {
            Step::Sync => "sync",
            Step::Extract => "extract",
            Step::Normalize => "normalize",
            Step::Load => "load",
        }
    }
}

/// An error of a pipeline step (dlt's `PipelineStepFailed`).
#[derive(Debug, thiserror::Error)]
#[error("pipeline `{pipeline}` failed at step `{}`{}: {source}", .step.name(), .load_id.as_ref().map(|l| format!(" (load package {l})")).unwrap_or_default())]
pub struct StepError {
    /// The pipeline.
    pub pipeline: String,
    /// The step.
    pub step: Step,
    /// The package, when one was being processed.
    pub load_id: Option<String>,
    /// The cause.
    #[source]
    pub source: Error,
}

/// A pipeline: moves data from sources into one dataset of one destination.
pub struct Pipeline {
    name: String,
    dataset: String,
    working_dir: PathBuf,
    destination: Arc<dyn Destination>,
    destination_name: String,
    destination_location: String,
    capabilities: Capabilities,
    naming: NamingKind,
    dev_mode: bool,
    restore_from_destination: bool,
    delete_completed_jobs: bool,
    arrow_options: ArrowOptions,
    synced: bool,
    workers: usize,
    state: PipelineState,
    schema: Option<Schema>,
    storage: LoadStorage,
    lock: WorkdirLock,
}

impl std::fmt::Debug for Pipeline {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pipeline")
            .field("name", &self.name)
            .field("dataset", &self.dataset)
            .field("working_dir", &self.working_dir)
            .finish_non_exhaustive()
    }
}

/// The default data directory: `SLUICE_DATA_DIR`, else `$XDG_DATA_HOME/sluice`, else
/// `~/.local/share/sluice`.
pub fn default_data_dir() -> PathBuf {
    if let Some(d) = std::env::var_os("SLUICE_DATA_DIR") {
        return PathBuf::from(d);
    }
    if let Some(x) = std::env::var_os("XDG_DATA_HOME").filter(|v| !v.is_empty()) {
        return PathBuf::from(x).join("sluice");
    }
    match std::env::var_os("HOME") {
        Some(h) => PathBuf::from(h).join(".local").join("share").join("sluice"),
        None => std::env::temp_dir().join("sluice"),
    }
}

/// A new load id: dlt's format, unix time as a float string, strictly increasing per process.
pub fn new_load_id() -> String {
    use std::sync::atomic::{AtomicU64, Ordering};
    static LAST: AtomicU64 = AtomicU64::new(0);
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_micros() as u64)
        .unwrap_or(0);
    let mut prev = LAST.load(Ordering::SeqCst);
    loop {
        let next = now.max(prev + 1);
        match LAST.compare_exchange(prev, next, Ordering::SeqCst, Ordering::SeqCst) {
            Ok(_) => return format!("{}.{:06}", next / 1_000_000, next % 1_000_000),
            Err(p) => prev = p,
        }
    }
}

fn now_iso() -> String {
    chrono::Utc::now()
        .format("%Y-%m-%dT%H:%M:%S%.6f+00:00")
        .to_string()
}

impl Pipeline {
    /// The pipeline name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The dataset name.
    pub fn dataset_name(&self) -> &str {
        &self.dataset
    }

    /// The working directory.
    pub fn working_dir(&self) -> &Path {
        &self.working_dir
    }

    /// The committed state.
    pub fn state(&self) -> &PipelineState {
        &self.state
    }

    /// The committed schema, if any run completed.
    pub fn schema(&self) -> Option<&Schema> {
        self.schema.as_ref()
    }

    /// The destination.
    pub fn destination(&self) -> &Arc<dyn Destination> {
        &self.destination
    }

    /// The load storage.
    pub fn storage(&self) -> &LoadStorage {
        &self.storage
    }

    fn step_error(&self, step: Step, load_id: Option<&str>, source: Error) -> Error {
        let e = StepError {
            pipeline: self.name.clone(),
            step,
            load_id: load_id.map(String::from),
            source,
        };
        Error::Step(Box::new(e))
    }

    /// Refuses a writing operation on a pipeline opened with a shared lock.
    fn require_writer(&self, what: &str) -> Result<()> {
        if self.lock.is_exclusive() {
            return Ok(());
        }
        Err(Error::internal(format!(
            "pipeline `{}` was opened for reading (shared lock); `{what}` needs it opened for writing",
            self.name
        )))
    }

    fn state_path(&self) -> PathBuf {
        self.working_dir.join("state.json")
    }

    fn schema_path(&self, name: &str) -> PathBuf {
        self.working_dir
            .join("schemas")
            .join(format!("{name}.schema.json"))
    }

    /// The naming convention with the destination's length limit. As dlt's
    /// `import_normalizers`, one limit shortens table and column names alike: the smaller of
    /// `max_identifier_length` and `max_column_identifier_length` (0 means "not set", as dlt's
    /// `None`); 65536 and more (dlt's DuckDB) is no limit.
    fn naming_for(&self) -> Naming {
        let caps = &self.capabilities;
        let max = match (
            caps.max_identifier_length,
            caps.max_column_identifier_length,
        ) {
            (0, 0) => usize::MAX,
            (0, c) => c,
            (t, 0) => t,
            (t, c) => t.min(c),
        };
        Naming::new(self.naming, (max < 65536).then_some(max))
    }

    fn load_local(&mut self) -> Result<()> {
        let path = self.state_path();
        if path.exists() {
            let text = std::fs::read_to_string(&path).map_err(|e| Error::io(&path, e))?;
            let v: Value = serde_json::from_str(&text)
                .map_err(|e| Error::data(format!("the local state `{}` is corrupted: {e}\nhint: `sluice pipeline {} sync` restores it from the destination", path.display(), self.name)))?;
            self.state = PipelineState::from_value(v)?;
            if let Some(name) = self
                .state
                .get("default_schema_name")
                .and_then(Value::as_str)
                .map(String::from)
            {
                workdir::check_name("schema", &name)?;
                let sp = self.schema_path(&name);
                if sp.exists() {
                    let text = std::fs::read_to_string(&sp).map_err(|e| Error::io(&sp, e))?;
                    let doc = serde_json::from_str(&text)?;
                    self.schema = Some(Schema::from_doc(doc, self.naming_for().max_length)?);
                }
            }
        }
        // a package half-written by a killed process is discarded (its data is re-extracted);
        // only by the writer: under a shared lock no writer runs, and none may start meanwhile
        if self.lock.is_exclusive() {
            self.storage.discard_new()?;
        }
        Ok(())
    }

    fn save_local(&self) -> Result<()> {
        package::write_atomic(
            &self.state_path(),
            &serde_json::to_vec_pretty(&self.state.to_value())?,
        )?;
        if let Some(s) = &self.schema {
            package::create_dir(&self.working_dir.join("schemas"))?;
            package::write_atomic(
                &self.schema_path(s.name()),
                &serde_json::to_vec_pretty(&s.to_value())?,
            )?;
        }
        Ok(())
    }

    fn open_client(&self) -> Result<Box<dyn DestinationClient>> {
        self.destination
            .open_client(ClientRequest {
                dataset_name: self.dataset.clone(),
                pipeline_name: self.name.clone(),
                ..Default::default()
            })
            .map_err(Error::Plugin)
    }

    /// Runs a SQL query on the destination (through the plugin's client) and collects the
    /// result; `sluice pipeline <name> show | query` use it.
    pub fn query(&self, sql: &str) -> Result<Vec<arrow_array::RecordBatch>> {
        let mut client = self.open_client()?;
        let flag = CancelFlag::new();
        let mut stream = client.query(sql, &flag.token()).map_err(Error::Plugin)?;
        let mut out = Vec::new();
        while let Some(b) = stream.next_batch().map_err(Error::Plugin)? {
            out.push(b);
        }
        Ok(out)
    }

    /// Runs `source`: loads pending packages first (and returns without extracting new data
    /// if there were any, as dlt does), else extracts, normalizes and loads a new package.
    pub fn run(&mut self, source: &dyn Source, options: &RunOptions) -> Result<LoadInfo> {
        self.require_writer("run")?;
        // state sync needs the destination only once per pipeline object; the connection is not
        // kept open while the source is read (a DuckDB file stays usable by others meanwhile)
        if !self.synced {
            let mut client = self
                .open_client()
                .map_err(|e| self.step_error(Step::Sync, None, e))?;
            self.sync_from_destination(client.as_mut())
                .map_err(|e| self.step_error(Step::Sync, None, e))?;
        }
        let pending = self.storage.pending()?;
        if !pending.is_empty() {
            tracing::warn!(target: "sluice::pipeline", pipeline = %self.name, count = pending.len(), "loading pending packages first; new data is not extracted in this run");
            let mut info = self.load_pending_ids(&pending)?;
            info.loaded_pending_only = true;
            return Ok(info);
        }
        let load_id = new_load_id();
        options.report(ProgressEvent::StepStarted(Step::Extract));
        let produced = self.extract_normalize(source, options, &load_id)?;
        // the normalizer's buffers are free now: give them back before the destination (which may
        // run in this process, as DuckDB does) allocates its own
        #[cfg(feature = "mimalloc")]
        crate::alloc::release();
        options.report(ProgressEvent::StepDone(Step::Normalize));
        if !produced {
            return Ok(self.empty_info());
        }
        options.report(ProgressEvent::StepStarted(Step::Load));
        let info = self.load_pending_ids(std::slice::from_ref(&load_id));
        options.report(ProgressEvent::StepDone(Step::Load));
        info
    }

    fn load_pending_ids(&mut self, ids: &[String]) -> Result<LoadInfo> {
        let first = ids.first().cloned();
        let mut client = with_retry(|| self.open_client())
            .map_err(|e| self.step_error(Step::Load, first.as_deref(), e))?;
        self.load_packages(client.as_mut(), ids)
    }

    /// Loads the pending packages, if any.
    pub fn load_pending(&mut self) -> Result<LoadInfo> {
        self.require_writer("load")?;
        let mut client = self
            .open_client()
            .map_err(|e| self.step_error(Step::Sync, None, e))?;
        let pending = self.storage.pending()?;
        self.load_packages(client.as_mut(), &pending)
    }

    fn empty_info(&self) -> LoadInfo {
        LoadInfo {
            pipeline_name: self.name.clone(),
            destination_name: self.destination_name.clone(),
            destination_location: self.destination_location.clone(),
            dataset_name: self.dataset.clone(),
            packages: Vec::new(),
            load_duration: std::time::Duration::ZERO,
            load_seconds: 0.0,
            loaded_pending_only: false,
        }
    }
}
