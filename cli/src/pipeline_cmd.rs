//! `sluice pipeline --list` and `sluice pipeline <name> <command>`: inspect and manage a
//! pipeline's working directory and its dataset.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{Args, Subcommand, ValueEnum};
use serde_json::Value;
use sluice::config::Providers;
use sluice::pipeline::workdir::check_name;
use sluice::pipeline::{default_data_dir, LoadStorage, LockMode, Pipeline, WorkdirLock};
use sluice_registry::{PluginKind, Registry};

/// Inspect and manage pipelines.
///
/// Examples:
///   sluice pipeline --list
///   sluice pipeline sample info
///   sluice pipeline sample show issues
///   sluice pipeline sample query "SELECT state, count(*) FROM issues GROUP BY 1"
#[derive(Debug, Args)]
pub struct PipelineArgs {
    /// List the pipelines in the pipelines folder.
    #[arg(short, long)]
    pub list: bool,
    /// The pipelines folder (default: $SLUICE_DATA_DIR/pipelines).
    #[arg(long, value_name = "DIR")]
    pub pipelines_dir: Option<PathBuf>,
    /// Wait up to this many seconds for another sluice process working on the pipeline
    /// (default: fail at once, naming it).
    #[arg(long, value_name = "SECONDS", default_value_t = 0)]
    pub wait: u64,
    /// The pipeline name.
    pub name: Option<String>,
    #[command(subcommand)]
    pub command: Option<PipelineCommand>,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum SchemaFormat {
    Yaml,
    Json,
}

#[derive(Debug, Subcommand)]
pub enum PipelineCommand {
    /// State, resources, tables and packages of the pipeline.
    Info,
    /// Tables with row counts and a preview of rows (or one table's preview).
    Show {
        /// Only this table.
        table: Option<String>,
        /// Preview rows per table.
        #[arg(long, default_value_t = 5)]
        rows: usize,
    },
    /// Run SQL on the destination dataset and print the result.
    Query {
        /// The SQL (tables are found in the dataset).
        sql: String,
    },
    /// The last run: steps, rows per table, packages.
    Trace,
    /// The pipeline's schema.
    Schema {
        #[arg(long, value_enum, default_value = "yaml")]
        format: SchemaFormat,
    },
    /// A load package (default: the newest): state, jobs, sizes.
    LoadPackage {
        /// Load id.
        load_id: Option<String>,
    },
    /// Failed jobs with their messages, across packages.
    FailedJobs,
    /// Drop resources: their tables (and nested tables) in the destination, their schema and
    /// their state, so the next run loads them from scratch.
    Drop {
        /// The resources to drop.
        #[arg(required = true)]
        resources: Vec<String>,
    },
    /// Delete the packages that were extracted but not loaded.
    DropPendingPackages,
    /// Drop the local state and schemas and restore them from the destination.
    Sync,
}

fn pipelines_dir(args: &PipelineArgs) -> PathBuf {
    args.pipelines_dir
        .clone()
        .unwrap_or_else(|| default_data_dir().join("pipelines"))
}

fn read_json(path: &Path) -> Option<Value> {
    serde_json::from_str(&std::fs::read_to_string(path).ok()?).ok()
}

fn ago(t: std::time::SystemTime) -> String {
    let secs = t.elapsed().map(|d| d.as_secs()).unwrap_or(0);
    match secs {
        0..=59 => format!("{secs} seconds ago"),
        60..=3599 => format!("{} minutes ago", secs / 60),
        3600..=86_399 => format!("{} hours ago", secs / 3600),
        _ => format!("{} days ago", secs / 86_400),
    }
}

pub fn run(registry: Registry, args: PipelineArgs) -> Result<ExitCode, String> {
    let dir = pipelines_dir(&args);
    if args.list || args.name.is_none() {
        let mut names: Vec<(String, std::time::SystemTime)> = std::fs::read_dir(&dir)
            .map(|rd| {
                rd.filter_map(|e| e.ok())
                    .filter(|e| e.path().join("state.json").is_file())
                    .map(|e| {
                        let m = std::fs::metadata(e.path().join("state.json"))
                            .and_then(|m| m.modified())
                            .unwrap_or(std::time::UNIX_EPOCH);
                        (e.file_name().to_string_lossy().to_string(), m)
                    })
                    .collect()
            })
            .unwrap_or_default();
        names.sort();
        println!("{} pipelines found in {}", names.len(), dir.display());
        for (n, t) in names {
            let ts = chrono::DateTime::<chrono::Utc>::from(t)
                .to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
            println!("{n} (last run: {} ({ts}))", ago(t));
        }
        return Ok(ExitCode::SUCCESS);
    }
    let name = args.name.clone().unwrap_or_default();
    check_name("pipeline", &name).map_err(|e| e.to_string())?;
    let wd = dir.join(&name);
    if !wd.join("state.json").is_file() {
        return Err(format!(
            "no pipeline `{name}` in {} (see `sluice pipeline --list`)",
            dir.display()
        ));
    }
    let command = args.command.unwrap_or(PipelineCommand::Info);
    // one writer or many readers (`sluice run` takes the writer's lock too); the commands that
    // open the pipeline take it through the builder
    let mode = match command {
        PipelineCommand::Drop { .. }
        | PipelineCommand::DropPendingPackages
        | PipelineCommand::Sync => LockMode::Exclusive,
        _ => LockMode::Shared,
    };
    let wait = std::time::Duration::from_secs(args.wait);
    let opens_pipeline = matches!(
        command,
        PipelineCommand::Show { .. }
            | PipelineCommand::Query { .. }
            | PipelineCommand::Drop { .. }
            | PipelineCommand::Sync
    );
    let _lock = if opens_pipeline {
        None
    } else {
        Some(WorkdirLock::acquire(&wd, &name, mode, wait).map_err(|e| e.to_string())?)
    };
    let lock = (mode, wait);
    let state = read_json(&wd.join("state.json")).unwrap_or(Value::Null);
    let storage = LoadStorage::new(&wd);
    match command {
        PipelineCommand::Info => {
            println!("Pipeline {name} working dir: {}", wd.display());
            for k in [
                "pipeline_name",
                "destination_name",
                "destination_type",
                "dataset_name",
                "default_schema_name",
                "_state_version",
            ] {
                if let Some(v) = state.get(k) {
                    println!(
                        "  {k}: {}",
                        v.as_str()
                            .map(String::from)
                            .unwrap_or_else(|| v.to_string())
                    );
                }
            }
            if let Some(sources) = state.get("sources").and_then(Value::as_object) {
                for (s, v) in sources {
                    println!("source {s}:");
                    if let Some(rs) = v.get("resources").and_then(Value::as_object) {
                        for (r, rv) in rs {
                            println!("  resource {r}: {}", rv);
                        }
                    }
                }
            }
            if let Some(schema) = schema_doc(&wd, &state) {
                let tables: Vec<&String> = schema
                    .get("tables")
                    .and_then(Value::as_object)
                    .map(|t| t.keys().filter(|k| !k.starts_with("_dlt")).collect())
                    .unwrap_or_default();
                println!(
                    "tables: {}",
                    tables
                        .iter()
                        .map(|s| s.as_str())
                        .collect::<Vec<_>>()
                        .join(", ")
                );
            }
            let loaded = storage.loaded().map_err(|e| e.to_string())?;
            let pending = storage.pending().map_err(|e| e.to_string())?;
            let failed = storage.failed().map_err(|e| e.to_string())?;
            println!(
                "{} completed load packages, {} pending, {} failed",
                loaded.len(),
                pending.len(),
                failed.len()
            );
            for id in &pending {
                println!("  pending: {id}");
            }
            for id in &failed {
                println!("  failed: {id} (see `sluice pipeline {name} failed-jobs`)");
            }
            Ok(ExitCode::SUCCESS)
        }
        PipelineCommand::Schema { format } => {
            let schema = schema_doc(&wd, &state)
                .ok_or_else(|| format!("pipeline `{name}` has no schema yet"))?;
            match format {
                SchemaFormat::Json => println!(
                    "{}",
                    serde_json::to_string_pretty(&schema).unwrap_or_default()
                ),
                SchemaFormat::Yaml => print!(
                    "{}",
                    serde_yaml::to_string(&schema).map_err(|e| e.to_string())?
                ),
            }
            Ok(ExitCode::SUCCESS)
        }
        PipelineCommand::Trace => {
            let trace = read_json(&wd.join("trace.json")).ok_or_else(|| {
                format!("pipeline `{name}` has no trace yet (it is written by `sluice run`)")
            })?;
            println!(
                "{}",
                serde_json::to_string_pretty(&trace).unwrap_or_default()
            );
            Ok(ExitCode::SUCCESS)
        }
        PipelineCommand::LoadPackage { load_id } => {
            let mut all: Vec<(String, PathBuf, &str)> = Vec::new();
            for id in storage.loaded().map_err(|e| e.to_string())? {
                all.push((id.clone(), storage.loaded_dir(&id), "LOADED"));
            }
            for id in storage.pending().map_err(|e| e.to_string())? {
                all.push((id.clone(), storage.pending_dir(&id), "NORMALIZED (pending)"));
            }
            for id in storage.failed().map_err(|e| e.to_string())? {
                all.push((id.clone(), storage.failed_dir(&id), "FAILED (not loaded)"));
            }
            all.sort();
            let pick = match &load_id {
                Some(id) => all.iter().find(|(i, _, _)| i == id),
                None => all.last(),
            }
            .ok_or_else(|| {
                format!(
                    "no load package {} in pipeline `{name}`",
                    load_id.as_deref().unwrap_or("")
                )
            })?;
            println!("Package {} is {} ({})", pick.0, pick.2, pick.1.display());
            let manifest = read_json(&pick.1.join("package.json"));
            let deleted = manifest
                .as_ref()
                .and_then(|m| m.get("jobs_deleted"))
                .and_then(Value::as_bool)
                .unwrap_or(false);
            if deleted {
                println!(
                    "  job files deleted after the load (delete_completed_jobs); the jobs were:"
                );
                let jobs = manifest
                    .as_ref()
                    .and_then(|m| m.get("jobs"))
                    .and_then(Value::as_array)
                    .cloned()
                    .unwrap_or_default();
                for j in jobs {
                    let file = j
                        .get("path")
                        .and_then(Value::as_str)
                        .and_then(|p| Path::new(p).file_name())
                        .map(|n| n.to_string_lossy().into_owned())
                        .unwrap_or_default();
                    let rows = j.get("rows").and_then(Value::as_u64).unwrap_or(0);
                    let bytes = j.get("bytes").and_then(Value::as_u64).unwrap_or(0);
                    println!("  job {file} ({rows} rows, {bytes} bytes)");
                }
            } else {
                let mut files: Vec<_> = std::fs::read_dir(pick.1.join("jobs"))
                    .map(|r| r.filter_map(|e| e.ok()).collect())
                    .unwrap_or_default();
                files.sort_by_key(|e| e.file_name());
                for f in files {
                    let size = f.metadata().map(|m| m.len()).unwrap_or(0);
                    println!("  job {} ({size} bytes)", f.file_name().to_string_lossy());
                }
            }
            if let Some(m) = manifest {
                println!("{}", serde_json::to_string_pretty(&m).unwrap_or_default());
            }
            Ok(ExitCode::SUCCESS)
        }
        PipelineCommand::FailedJobs => {
            // a package the destination refused for good is in `failed/`; one whose load failed
            // for a reason that may pass (a connection) stays pending with its failure recorded
            let mut n = 0;
            let mut packages: Vec<(String, PathBuf, &str)> = Vec::new();
            for id in storage.failed().map_err(|e| e.to_string())? {
                packages.push((id.clone(), storage.failed_dir(&id), "failed"));
            }
            for id in storage.pending().map_err(|e| e.to_string())? {
                packages.push((id.clone(), storage.pending_dir(&id), "pending"));
            }
            for (id, pdir, what) in packages {
                if let Some(m) = read_json(&pdir.join("package.json")) {
                    if let Some(failed) = m.get("failed").and_then(Value::as_object) {
                        for (job, message) in failed {
                            n += 1;
                            let message = message.as_str().unwrap_or_default();
                            println!("{id} ({what}): {job}: {message}");
                        }
                    }
                }
            }
            if n == 0 {
                println!("no failed jobs");
            }
            Ok(ExitCode::SUCCESS)
        }
        PipelineCommand::DropPendingPackages => {
            let n = storage.drop_pending().map_err(|e| e.to_string())?;
            println!("dropped {n} pending load package(s) of pipeline `{name}`");
            Ok(ExitCode::SUCCESS)
        }
        PipelineCommand::Show { table, rows } => {
            let p = open(&registry, &name, &dir, &state, lock)?;
            let tables: Vec<String> = match table {
                Some(t) => vec![t],
                None => schema_doc(&wd, &state)
                    .and_then(|s| {
                        s.get("tables").and_then(Value::as_object).map(|t| {
                            t.keys()
                                .filter(|k| !k.starts_with("_dlt"))
                                .cloned()
                                .collect()
                        })
                    })
                    .unwrap_or_default(),
            };
            let ds = p.dataset_name().to_string();
            for t in tables {
                let qt = format!("{}.{}", quote(&ds), quote(&t));
                let count = p
                    .query(&format!("SELECT count(*) AS rows FROM {qt}"))
                    .map_err(|e| e.to_string())?;
                let n = arrow_cast::display::array_value_to_string(count[0].column(0), 0)
                    .unwrap_or_default();
                println!("{t}: {n} rows");
                let preview = p
                    .query(&format!("SELECT * FROM {qt} LIMIT {rows}"))
                    .map_err(|e| e.to_string())?;
                println!("{}", table_text(&preview)?);
            }
            Ok(ExitCode::SUCCESS)
        }
        PipelineCommand::Query { sql } => {
            let p = open(&registry, &name, &dir, &state, lock)?;
            let batches = p.query(&sql).map_err(|e| e.to_string())?;
            println!("{}", table_text(&batches)?);
            Ok(ExitCode::SUCCESS)
        }
        PipelineCommand::Drop { resources } => {
            let mut p = open(&registry, &name, &dir, &state, lock)?;
            let tables = p.drop_resources(&resources).map_err(|e| e.to_string())?;
            println!(
                "pipeline `{name}`: dropped resources {} (tables {}); their state was reset",
                resources.join(", "),
                tables.join(", ")
            );
            Ok(ExitCode::SUCCESS)
        }
        PipelineCommand::Sync => {
            let mut p = open(&registry, &name, &dir, &state, lock)?;
            p.sync().map_err(|e| e.to_string())?;
            println!("pipeline `{name}`: state and schema restored from the destination");
            Ok(ExitCode::SUCCESS)
        }
    }
}

/// `batches` as a text table. Every type prints: timestamps with a named zone (`UTC`, as DuckDB
/// names its `TIMESTAMP WITH TIME ZONE`) through chrono-tz, and a column whose type Arrow cannot
/// format is cast to text, or else shown as `<type>` per value, never an error that hides the
/// other columns.
fn table_text(batches: &[arrow_array::RecordBatch]) -> Result<String, String> {
    use arrow_array::{Array, ArrayRef, RecordBatch, StringArray};
    use arrow_cast::display::{ArrayFormatter, FormatOptions};
    use std::sync::Arc;
    let options = FormatOptions::default();
    let mut printable = Vec::with_capacity(batches.len());
    for batch in batches {
        let mut fields = Vec::with_capacity(batch.num_columns());
        let mut columns: Vec<ArrayRef> = Vec::with_capacity(batch.num_columns());
        for (field, column) in batch.schema().fields().iter().zip(batch.columns()) {
            if ArrayFormatter::try_new(column.as_ref(), &options).is_ok() {
                fields.push(field.as_ref().clone());
                columns.push(column.clone());
                continue;
            }
            let text: ArrayRef = match arrow_cast::cast(column, &arrow_schema::DataType::Utf8) {
                Ok(t) => t,
                Err(_) => {
                    let label = format!("<{}>", column.data_type());
                    Arc::new(StringArray::from_iter(
                        (0..column.len()).map(|i| (!column.is_null(i)).then(|| label.clone())),
                    ))
                }
            };
            fields.push(arrow_schema::Field::new(
                field.name(),
                arrow_schema::DataType::Utf8,
                true,
            ));
            columns.push(text);
        }
        let schema = Arc::new(arrow_schema::Schema::new(fields));
        printable.push(RecordBatch::try_new(schema, columns).map_err(|e| e.to_string())?);
    }
    arrow_cast::pretty::pretty_format_batches_with_options(&printable, &options)
        .map(|t| t.to_string())
        .map_err(|e| e.to_string())
}

fn quote(ident: &str) -> String {
    format!("\"{}\"", ident.replace('"', "\"\""))
}

fn schema_doc(wd: &Path, state: &Value) -> Option<Value> {
    let name = state.get("default_schema_name")?.as_str()?;
    read_json(&wd.join("schemas").join(format!("{name}.schema.json")))
}

/// The pipeline with its destination, configured from `.sluice/` in the current folder and
/// the environment (as `sluice run` resolves it).
fn open(
    registry: &Registry,
    name: &str,
    dir: &Path,
    state: &Value,
    (mode, wait): (LockMode, std::time::Duration),
) -> Result<Pipeline, String> {
    let dest = ["destination_name", "destination_type"]
        .iter()
        .find_map(|k| state.get(*k).and_then(Value::as_str))
        .map(|s| s.rsplit('.').next().unwrap_or(s).to_string())
        .ok_or_else(|| format!("pipeline `{name}` has not loaded anything yet"))?;
    let dataset = state
        .get("dataset_name")
        .and_then(Value::as_str)
        .unwrap_or_default();
    let manifest = registry
        .find(PluginKind::Destination, &dest)
        .map_err(|e| e.to_string())?;
    let providers = Providers::load(&std::env::current_dir().map_err(|e| e.to_string())?)
        .map_err(|e| e.to_string())?;
    let conf = providers
        .resolve(
            &manifest,
            "destination",
            &dest,
            Some(name),
            &Value::Null,
            &Value::Null,
        )
        .map_err(|e| e.to_string())?;
    crate::destination::Resolved::open(registry, &dest, name, &conf.config, &conf.secrets)?
        .into_builder(Pipeline::builder(name))
        .dataset_name(dataset)
        .pipelines_dir(dir)
        .lock_mode(mode)
        .lock_wait(wait)
        // no pipeline file here: the environment or the default
        .delete_completed_jobs(crate::run::delete_completed_jobs(None)?)
        .build()
        .map_err(|e| e.to_string())
}
