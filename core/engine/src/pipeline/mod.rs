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
//! let mut pipeline = Pipeline::builder("simple_pipeline")
//!     .destination("duckdb")
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

pub mod incremental;
pub mod info;
pub mod package;
pub mod resource;
pub mod state;
pub mod workdir;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use arrow_array::RecordBatchReader;
use serde_json::{json, Map, Value};
use sluice_sdk::destination::{
    ClientRequest, LoadCompletion, LoadJob, LoadPlan, SchemaUpdateRequest, StoredState,
};
use sluice_sdk::resource::{DataFormat, ResourceDescriptor, ResourceRequest};
use sluice_sdk::{CancelFlag, Capabilities, Destination, DestinationClient, Source, StreamContext};

use crate::extract;
use crate::naming::{Naming, NamingKind};
use crate::normalize::parallel::ParallelNormalizer;
use crate::normalize::{NormalizeOptions, TextOrigin};
use crate::schema::Schema;
use crate::writer::ParquetWriter;
use crate::{Error, Result};

pub use crate::normalize::arrow_input::ArrowOptions;
pub use incremental::Incremental;
pub use info::{LoadInfo, PackageInfo};
pub use package::{LoadStorage, PackageManifest};
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

/// What a run reports while it goes (for progress bars and logs).
#[derive(Debug, Clone)]
pub enum ProgressEvent {
    /// A resource started extracting.
    ResourceStarted {
        /// Resource name.
        resource: String,
    },
    /// Items read so far from a resource (JSON documents are counted by line).
    Items {
        /// Resource name.
        resource: String,
        /// Items so far.
        items: u64,
    },
    /// A resource finished.
    ResourceDone {
        /// Resource name.
        resource: String,
        /// Items read.
        items: u64,
    },
    /// A step started.
    StepStarted(Step),
    /// A step finished.
    StepDone(Step),
}

/// A progress callback.
#[derive(Clone)]
pub struct ProgressHook(pub Arc<dyn Fn(&ProgressEvent) + Send + Sync>);

impl std::fmt::Debug for ProgressHook {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ProgressHook")
    }
}

impl RunOptions {
    fn report(&self, e: ProgressEvent) {
        if let Some(h) = &self.progress {
            (h.0)(&e);
        }
    }
}

/// JSON texts of at least this size go to the normalizer as they are, smaller ones are gathered
/// into chunks of about 4 MiB. Resources with an incremental cursor (filtered text) or
/// `table_name_path` (routed documents) always gather.
const SHARED_TEXT: usize = 1 << 20;

/// The longest schema name (dlt's `InvalidSchemaName.MAXIMUM_SCHEMA_NAME_LENGTH`).
const MAX_SCHEMA_NAME_LENGTH: usize = 64;

/// One JSON text of a source's batch. The array keeps the whole batch buffer alive (including
/// small texts of it already gathered) until the chunk is merged: at most the chunks in flight,
/// two per worker, plus the 8 items of the multi-resource channel.
struct BatchText(arrow_array::LargeStringArray, usize);

impl AsRef<str> for BatchText {
    fn as_ref(&self) -> &str {
        self.0.value(self.1)
    }
}

/// What a resource hands to the normalizer.
enum Item {
    /// JSON documents (lines) for a table, and where their parts come from (for errors).
    Json(String, String, Vec<TextOrigin>),
    /// A big JSON text of a source's batch for a table, passed on without a copy, and where it
    /// comes from.
    Shared(
        String,
        crate::normalize::parallel::SharedText,
        Option<TextOrigin>,
    ),
    /// A typed Arrow batch for a table.
    Arrow(String, arrow_array::RecordBatch),
    /// JSON documents whose table is named by the data (`table_name_path`): the resource, the
    /// raw table name, the documents.
    Routed(Arc<ResourceDescriptor>, String, String),
}

/// Options of one run.
#[derive(Debug, Clone, Default)]
pub struct RunOptions {
    /// Extract the resources one after the other (default: independent resources run
    /// concurrently, one thread each).
    pub sequential: bool,
    /// Called with progress events.
    pub progress: Option<ProgressHook>,
    /// Only these resources (default: the source's selected resources).
    pub resources: Option<Vec<String>>,
    /// Stop each resource after this many items/pages.
    pub limit: Option<u64>,
    /// The source section in the state and the schema name (default: the pipeline name).
    pub section: Option<String>,
    /// Overrides the write disposition of every resource.
    pub write_disposition: Option<Value>,
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

/// Builds a [`Pipeline`].
pub struct PipelineBuilder {
    name: String,
    destination: Option<(String, Arc<dyn Destination>)>,
    destination_plugin: Option<String>,
    destination_config: Value,
    destination_secrets: Value,
    destination_location: Option<String>,
    dataset_name: Option<String>,
    pipelines_dir: Option<PathBuf>,
    dev_mode: bool,
    restore_from_destination: bool,
    delete_completed_jobs: bool,
    arrow_options: ArrowOptions,
    naming: Option<NamingKind>,
    workers: Option<usize>,
    registry: Option<sluice_registry::Registry>,
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

impl PipelineBuilder {
    /// The destination by plugin name (found through the registry), e.g. `duckdb`.
    pub fn destination(mut self, plugin: &str) -> Self {
        self.destination_plugin = Some(plugin.to_string());
        self
    }

    /// The destination's configuration and secrets (JSON objects).
    pub fn destination_config(mut self, config: Value, secrets: Value) -> Self {
        self.destination_config = config;
        self.destination_secrets = secrets;
        self
    }

    /// A destination given directly (linked in, or already loaded), with its name.
    pub fn destination_impl(mut self, name: &str, destination: Arc<dyn Destination>) -> Self {
        self.destination = Some((name.to_string(), destination));
        self
    }

    /// How the destination location is shown in load info (without secrets).
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

    /// The plugin registry to find the destination in (default: the standard search path).
    pub fn registry(mut self, registry: sluice_registry::Registry) -> Self {
        self.registry = Some(registry);
        self
    }

    /// Builds the pipeline: resolves the destination and opens (or creates) the working dir.
    pub fn build(self) -> Result<Pipeline> {
        // the name becomes a folder: checked before anything is loaded or touched
        workdir::check_name("pipeline", &self.name)?;
        let (destination_name, destination) = match (self.destination, &self.destination_plugin) {
            (Some(d), _) => d,
            (None, Some(name)) => {
                let registry = self
                    .registry
                    .clone()
                    .unwrap_or_else(sluice_registry::Registry::standard);
                let plugin = registry
                    .load("destination", name)
                    .map_err(|e| Error::Plugin(e.into()))?;
                let dest = plugin
                    .open_destination(&self.destination_config, &self.destination_secrets)
                    .map_err(|e| Error::Plugin(e.into()))?;
                (
                    plugin.name().to_string(),
                    Arc::new(dest) as Arc<dyn Destination>,
                )
            }
            (None, None) => {
                return Err(Error::config(format!(
                "pipeline `{}` has no destination\nhint: set one, e.g. `destination = \"duckdb\"`",
                self.name
            )))
            }
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
        // the destination says where it writes (without secrets) when it knows; DuckDB's file
        // path is worked out here from its config
        let announced = capabilities
            .extra
            .get("destination_location")
            .and_then(Value::as_str)
            .map(String::from);
        let location = self.destination_location.or(announced).unwrap_or_else(|| {
            let path = self
                .destination_config
                .get("credentials")
                .and_then(Value::as_str)
                .map(String::from)
                .unwrap_or_else(|| format!("{}.duckdb", self.name));
            if destination_name == "duckdb" {
                let abs = std::path::absolute(&path).unwrap_or_else(|_| PathBuf::from(&path));
                format!("duckdb:///{}", abs.display())
            } else {
                destination_name.clone()
            }
        });
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
            destination_plugin: None,
            destination_config: json!({}),
            destination_secrets: json!({}),
            destination_location: None,
            dataset_name: None,
            pipelines_dir: None,
            dev_mode: false,
            restore_from_destination: true,
            delete_completed_jobs: true,
            arrow_options: ArrowOptions::default(),
            naming: None,
            workers: None,
            registry: None,
            lock_mode: LockMode::Exclusive,
            lock_wait: std::time::Duration::ZERO,
        }
    }

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
    fn sync_from_destination(&mut self, client: &mut dyn DestinationClient) -> Result<()> {
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

    /// Extract + normalize into a new package. Returns whether a package was produced.
    fn extract_normalize(
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
                r.write_disposition = serde_json::from_value(wd.clone()).ok();
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

    #[allow(clippy::too_many_arguments)]
    /// Reads one resource: its items go to `out` (JSON texts or Arrow batches, incremental
    /// filtering applied); returns the resource's new state (`None`: leave it as it is).
    /// `together`: the resources read at the same time as this one (empty: one by one).
    fn extract_resource(
        &self,
        source: &dyn Source,
        r: &ResourceDescriptor,
        table: &str,
        previous: Option<Map<String, Value>>,
        out: &mut dyn FnMut(Item) -> Result<()>,
        options: &RunOptions,
        load_id: &str,
        together: &[String],
    ) -> Result<Option<Map<String, Value>>> {
        let extract_err = |e: Error| self.step_error(Step::Extract, Some(load_id), e);
        let normalize_err = |e: Error| e;
        let mut resource_state = previous.clone().unwrap_or_default();
        let stored_incremental = resource_state.remove("incremental");
        let mut incremental = match &r.incremental {
            Some(spec) => {
                let stored = stored_incremental
                    .as_ref()
                    .and_then(|i| i.get(&spec.cursor_path))
                    .and_then(Value::as_object);
                let pk = r
                    .primary_key
                    .as_ref()
                    .map(|k| k.columns().into_iter().map(String::from).collect());
                Some(Incremental::new(&r.name, spec, stored, pk).map_err(extract_err)?)
            }
            None => None,
        };
        let request = ResourceRequest {
            resource: r.name.clone(),
            state: if resource_state.is_empty() {
                Value::Null
            } else {
                Value::Object(resource_state.clone())
            },
            incremental: incremental.as_ref().map(Incremental::window),
            limit: options.limit,
            run_resources: together.to_vec(),
            run_id: (!together.is_empty()).then(|| load_id.to_string()),
            ..Default::default()
        };
        let flag = CancelFlag::new();
        let mut stream = source
            .open_resource(request, StreamContext::new(flag.token()))
            .map_err(|e| extract_err(e.into()))?;
        let mut pending = String::new();
        // where the parts of `pending` come from (the files of a source that names them)
        let mut origins: Vec<TextOrigin> = Vec::new();
        let mut routed: BTreeMap<String, String> = BTreeMap::new();
        let shared = Arc::new(r.clone());
        options.report(ProgressEvent::ResourceStarted {
            resource: r.name.clone(),
        });
        let mut items: u64 = 0;
        while let Some(batch) = stream.next_batch().map_err(|e| extract_err(e.into()))? {
            if options.progress.is_some() {
                items += match r.data_format {
                    DataFormat::Arrow => batch.num_rows() as u64,
                    DataFormat::Json => sluice_sdk::json_texts(&batch)
                        .map(|texts| {
                            texts
                                .map(|t| {
                                    let n = memchr::memchr_iter(b'\n', t.as_bytes()).count() as u64;
                                    n + u64::from(!t.trim_end().is_empty() && !t.ends_with('\n'))
                                })
                                .sum()
                        })
                        .unwrap_or(0),
                };
                options.report(ProgressEvent::Items {
                    resource: r.name.clone(),
                    items,
                });
            }
            match r.data_format {
                DataFormat::Json if r.table_name_path.is_some() => {
                    for text in sluice_sdk::json_texts(&batch).map_err(|e| extract_err(e.into()))? {
                        let kept;
                        let text = match incremental.as_mut() {
                            Some(inc) => {
                                let mut s = String::new();
                                inc.filter_text(text, &mut s).map_err(extract_err)?;
                                kept = s;
                                kept.as_str()
                            }
                            None => text,
                        };
                        route_documents(r, text, &mut routed).map_err(extract_err)?;
                        if incremental.as_ref().is_some_and(Incremental::should_stop) {
                            break;
                        }
                    }
                    for (raw, docs) in routed.iter_mut() {
                        if docs.len() >= 4 << 20 {
                            out(Item::Routed(
                                shared.clone(),
                                raw.clone(),
                                std::mem::take(docs),
                            ))?;
                        }
                    }
                }
                DataFormat::Json => {
                    let texts =
                        sluice_sdk::json_text_array(&batch).map_err(|e| extract_err(e.into()))?;
                    let located = sluice_sdk::json_text_origins(&batch);
                    for (row, text) in texts.iter().enumerate() {
                        let Some(text) = text else { continue };
                        // the name and first line of this text, when the source gives them
                        let origin = located.and_then(|(names, lines)| {
                            use arrow_array::Array as _;
                            let name = names.is_valid(row).then(|| names.value(row))?;
                            let line = lines.is_valid(row).then(|| lines.value(row))?;
                            let name = match origins.last() {
                                Some(o) if &*o.name == name => o.name.clone(),
                                _ => Arc::from(name),
                            };
                            Some(TextOrigin {
                                offset: 0,
                                name,
                                line,
                            })
                        });
                        match incremental.as_mut() {
                            Some(inc) => inc
                                .filter_text_from(text, &mut pending, origin.as_ref())
                                .map_err(extract_err)?,
                            None if text.len() >= SHARED_TEXT => {
                                // a chunk of a file or a big page: the workers read it from the
                                // batch itself (two copies of every byte fewer)
                                if !pending.is_empty() {
                                    out(Item::Json(
                                        table.to_string(),
                                        std::mem::take(&mut pending),
                                        std::mem::take(&mut origins),
                                    ))
                                    .map_err(normalize_err)?;
                                }
                                let shared = BatchText(texts.clone(), row);
                                out(Item::Shared(table.to_string(), Arc::new(shared), origin))
                                    .map_err(normalize_err)?;
                            }
                            None => {
                                match origin {
                                    Some(mut o) => {
                                        o.offset = pending.len();
                                        origins.push(o);
                                    }
                                    // a text of unknown origin after named ones
                                    None if !origins.is_empty() => origins.push(TextOrigin {
                                        offset: pending.len(),
                                        name: Arc::from(""),
                                        line: 0,
                                    }),
                                    None => {}
                                }
                                // exact room for the text and its newline: growing by doubling
                                // would copy each 4 MiB chunk once more
                                pending.reserve(text.len() + 1);
                                pending.push_str(text);
                                pending.push('\n');
                            }
                        }
                        if incremental.as_ref().is_some_and(Incremental::should_stop) {
                            break;
                        }
                        if pending.len() >= 4 << 20 {
                            out(Item::Json(
                                table.to_string(),
                                std::mem::take(&mut pending),
                                std::mem::take(&mut origins),
                            ))
                            .map_err(normalize_err)?;
                        }
                    }
                }
                DataFormat::Arrow => {
                    if !pending.is_empty() {
                        out(Item::Json(
                            table.to_string(),
                            std::mem::take(&mut pending),
                            std::mem::take(&mut origins),
                        ))
                        .map_err(normalize_err)?;
                    }
                    let batch = match incremental.as_mut() {
                        Some(inc) => inc.filter_batch(&batch).map_err(extract_err)?,
                        None => batch,
                    };
                    if batch.num_rows() > 0 {
                        out(Item::Arrow(table.to_string(), batch)).map_err(normalize_err)?;
                    }
                }
            }
            if incremental.as_ref().is_some_and(Incremental::should_stop) {
                // row_order: nothing later is in the window; close the stream (no more pages)
                tracing::debug!(target: "sluice::pipeline", resource = %r.name, "incremental row_order reached the end of the window");
                break;
            }
        }
        if !pending.is_empty() {
            out(Item::Json(table.to_string(), pending, origins)).map_err(normalize_err)?;
        }
        for (raw, docs) in routed {
            if !docs.is_empty() {
                out(Item::Routed(shared.clone(), raw, docs))?;
            }
        }
        options.report(ProgressEvent::ResourceDone {
            resource: r.name.clone(),
            items,
        });
        // the resource's new state
        let mut new_state = match stream.final_state() {
            Some(Value::Object(m)) => m,
            Some(_) | None => resource_state,
        };
        if let (Some(inc), Some(spec)) = (&incremental, &r.incremental) {
            let prev = stored_incremental
                .as_ref()
                .and_then(|i| i.get(&spec.cursor_path))
                .and_then(Value::as_object);
            if let Some(s) = inc.final_state(prev) {
                let mut incs = stored_incremental
                    .as_ref()
                    .and_then(Value::as_object)
                    .cloned()
                    .unwrap_or_default();
                incs.insert(spec.cursor_path.clone(), s);
                new_state.insert("incremental".into(), Value::Object(incs));
            }
        } else if let Some(i) = stored_incremental {
            new_state.insert("incremental".into(), i);
        }
        Ok((!new_state.is_empty() || previous.is_some()).then_some(new_state))
    }

    /// Loads the packages with `load_ids` in order.
    fn load_packages(
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
/// cannot read; fixing those and running again loads the package.
fn refused(e: Error, job: Option<String>) -> Result<PackageOutcome> {
    use sluice_sdk::ErrorCode;
    match e {
        Error::Plugin(p)
            if !p.retryable
                && [ErrorCode::DESTINATION, ErrorCode::DATA, ErrorCode::SCHEMA]
                    .contains(&p.code) =>
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
fn with_retry<T>(mut f: impl FnMut() -> Result<T>) -> Result<T> {
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

/// Groups documents by the table their `table_name_path` field names (dlt's callable table
/// names, e.g. GitHub events by `type`).
fn route_documents(
    r: &ResourceDescriptor,
    text: &str,
    routed: &mut BTreeMap<String, String>,
) -> Result<()> {
    let path: Vec<&str> = r
        .table_name_path
        .as_deref()
        .unwrap_or_default()
        .trim_start_matches("$.")
        .split('.')
        .collect();
    let mut parser = crate::json::Parser::new(text);
    let mut doc = crate::json::Doc::new();
    while parser
        .next_document(&mut doc)
        .map_err(|e| Error::data(format!("invalid JSON from resource `{}`: {e}", r.name)))?
    {
        let root = doc.root();
        let items: Vec<crate::json::NodeRef<'_, '_>> = if root.is_array() {
            root.items().collect()
        } else {
            vec![root]
        };
        for item in items {
            let mut node = Some(item);
            for k in &path {
                node = node.and_then(|n| n.get(k));
            }
            let name = node.and_then(|n| n.as_str()).ok_or_else(|| {
                Error::data(format!(
                    "resource `{}`: a document has no text at `{}`, which names its table",
                    r.name,
                    r.table_name_path.as_deref().unwrap_or_default()
                ))
            })?;
            let slot = routed.entry(name.to_string()).or_default();
            crate::json::write_compact(item, slot);
            slot.push('\n');
        }
    }
    Ok(())
}
