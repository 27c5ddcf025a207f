//! `sluice run [FILE]`: runs a pipeline file.

use std::io::IsTerminal;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Instant;

use clap::{Args, ValueEnum};
use serde_json::{json, Value};
use sluice::config::Providers;
use sluice::pipeline::{Pipeline, ProgressEvent, ProgressHook, RunOptions, Step};
use sluice_registry::{PluginKind, Registry};

use crate::destination::Resolved;
use crate::pipeline_file;

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Progress {
    /// one line per step (default when stderr is not a terminal)
    Log,
    /// a live status line per step on a terminal
    Bar,
    /// nothing but the summary
    None,
}

/// Run a pipeline file (TOML, JSON or YAML).
///
/// Examples:
///   sluice run sample_pipeline.toml
///   sluice run --destination postgres --dataset staging
///   sluice run github_pipeline.toml --resources issues,pull_requests --limit 2 --json
#[derive(Debug, Args)]
pub struct RunArgs {
    /// The pipeline file (default: the only `*pipeline*.toml|json|yaml` in the current folder).
    pub file: Option<PathBuf>,
    /// Load into this destination instead of the file's (a plugin name: duckdb, postgres, ...).
    #[arg(long)]
    pub destination: Option<String>,
    /// Load into this dataset instead of the file's.
    #[arg(long)]
    pub dataset: Option<String>,
    /// Only these resources (comma-separated).
    #[arg(long, value_delimiter = ',')]
    pub resources: Vec<String>,
    /// Stop each resource after this many items or pages.
    #[arg(long)]
    pub limit: Option<u64>,
    /// Write every resource this way instead of its own: append, replace, merge or skip (dlt's
    /// `pipeline.run(write_disposition=...)`; the file's `[source] write_disposition`).
    #[arg(long, value_name = "DISPOSITION")]
    pub write_disposition: Option<String>,
    /// Start over: a fresh working directory and a new dataset with a timestamp suffix (dlt's
    /// dev_mode).
    #[arg(long)]
    pub full_refresh: bool,
    /// Where the pipeline's working directories live (default: $SLUICE_DATA_DIR/pipelines).
    #[arg(long, value_name = "DIR")]
    pub pipelines_dir: Option<PathBuf>,
    /// How to show progress.
    #[arg(long, value_enum)]
    pub progress: Option<Progress>,
    /// Wait up to this many seconds for another sluice process working on the pipeline
    /// (default: fail at once, naming it).
    #[arg(long, value_name = "SECONDS", default_value_t = 0)]
    pub wait: u64,
    /// Print the load info as JSON on stdout (for orchestrators).
    #[arg(long)]
    pub json: bool,
}

/// Exit codes: 0 loaded, 1 failed jobs or a failed run, 2 usage or config error.
pub fn run(registry: Registry, args: RunArgs) -> Result<ExitCode, String> {
    let started = Instant::now();
    let cwd = std::env::current_dir().map_err(|e| format!("no current directory: {e}"))?;
    let file = match &args.file {
        Some(f) => f.clone(),
        None => pipeline_file::find_default(&cwd)?,
    };
    let pf = pipeline_file::read(&file)?;
    // the name becomes a folder: refused before anything is loaded or touched
    sluice::pipeline::workdir::check_name("pipeline", &pf.pipeline.name)
        .map_err(|e| e.to_string())?;
    let project_dir = std::path::absolute(&file)
        .ok()
        .and_then(|p| p.parent().map(PathBuf::from))
        .unwrap_or_else(|| cwd.clone());
    // a write disposition the run cannot use is refused before any plugin is opened
    let write_disposition = args
        .write_disposition
        .clone()
        .map(Value::String)
        .or(pf.source.write_disposition.clone())
        .map(|wd| sluice::pipeline::parse_write_disposition(&wd))
        .transpose()
        .map_err(|e| e.to_string())?;
    let providers = Providers::load(&project_dir).map_err(|e| e.to_string())?;
    let name = pf.pipeline.name.clone();
    let progress = args.progress.unwrap_or(if std::io::stderr().is_terminal() {
        Progress::Bar
    } else {
        Progress::Log
    });
    let say = |msg: &str| {
        if progress != Progress::None && !args.json {
            eprintln!("{msg}");
        }
    };

    // the source plugin
    let src_manifest = registry
        .find(PluginKind::Source, &pf.source.name)
        .map_err(|e| e.to_string())?;
    let section = pf
        .source
        .section
        .clone()
        .unwrap_or_else(|| pf.source.name.clone());
    let src_conf = providers
        .resolve(
            &src_manifest,
            "sources",
            &section,
            Some(&name),
            &pf.source.config,
            &pf.source.secrets,
        )
        .map_err(|e| e.to_string())?;

    // the destination plugin
    let dest_name = args
        .destination
        .clone()
        .or(pf.pipeline.destination.clone())
        .or(pf.destination.name.clone())
        .unwrap_or_else(|| "duckdb".to_string());
    let dest_manifest = registry
        .find(PluginKind::Destination, &dest_name)
        .map_err(|e| e.to_string())?;
    // a destination override from the command line does not take the file's destination config
    let same_dest = args.destination.is_none()
        || args.destination.as_deref() == pf.pipeline.destination.as_deref();
    let (dc, ds) = if same_dest {
        (
            pf.destination.config.clone(),
            pf.destination.secrets.clone(),
        )
    } else {
        (Value::Null, Value::Null)
    };
    let dest_conf = providers
        .resolve(
            &dest_manifest,
            "destination",
            &dest_name,
            Some(&name),
            &dc,
            &ds,
        )
        .map_err(|e| e.to_string())?;

    let source = registry
        .load(PluginKind::Source, &pf.source.name)
        .and_then(|p| p.open_source(&src_conf.config, &src_conf.secrets))
        .map_err(|e| e.to_string())?;

    // the destination, resolved once here as the source is: the engine takes it as it is
    let destination = Resolved::open(
        &registry,
        &dest_name,
        &name,
        &src_or_empty(dest_conf.config),
        &src_or_empty(dest_conf.secrets),
    )?;
    let mut builder = destination
        .into_builder(Pipeline::builder(&name))
        .dev_mode(args.full_refresh || pf.pipeline.dev_mode)
        .lock_wait(std::time::Duration::from_secs(args.wait))
        .delete_completed_jobs(delete_completed_jobs(pf.pipeline.delete_completed_jobs)?)
        .arrow_options(arrow_options(&pf.pipeline)?);
    if let Some(d) = args.dataset.clone().or(pf.pipeline.dataset.clone()) {
        builder = builder.dataset_name(&d);
    }
    if let Some(dir) = args
        .pipelines_dir
        .clone()
        .or(pf.pipeline.pipelines_dir.clone())
    {
        builder = builder.pipelines_dir(dir);
    }
    let mut pipeline = builder.build().map_err(|e| e.to_string())?;
    say(&format!(
        "sluice: running pipeline {name}: source {} -> destination {dest_name}, dataset {}",
        pf.source.name,
        pipeline.dataset_name()
    ));
    let resources = if args.resources.is_empty() {
        pf.source.resources.clone()
    } else {
        Some(args.resources.clone())
    };
    let hook = if args.json {
        None
    } else {
        progress_hook(progress)
    };
    let options = RunOptions {
        resources,
        limit: args.limit,
        section: Some(section),
        progress: hook,
        write_disposition,
        ..Default::default()
    };
    let outcome = pipeline.run(&source, &options);
    // the trace of this run, for `sluice pipeline <name> trace`
    let trace = match &outcome {
        Ok(info) => {
            json!({"pipeline_name": name, "started_at": chrono_now(), "elapsed_seconds": started.elapsed().as_secs_f64(),
                           "source": pf.source.name, "destination": dest_name, "status": if info.has_failed_jobs() {"failed_jobs"} else {"ok"},
                           "load_info": info})
        }
        Err(e) => {
            json!({"pipeline_name": name, "started_at": chrono_now(), "elapsed_seconds": started.elapsed().as_secs_f64(),
                         "source": pf.source.name, "destination": dest_name, "status": "failed", "error": format!("{e:#}")})
        }
    };
    if let Err(e) = sluice::pipeline::package::write_atomic(
        &pipeline.working_dir().join("trace.json"),
        &serde_json::to_vec_pretty(&trace).unwrap_or_default(),
    ) {
        tracing::warn!(target: "sluice::cli", "cannot write the trace: {e}");
    }
    match outcome {
        Ok(info) => {
            if args.json {
                let mut v = serde_json::to_value(&info).unwrap_or(Value::Null);
                if let Value::Object(m) = &mut v {
                    m.insert(
                        "elapsed_seconds".into(),
                        json!(started.elapsed().as_secs_f64()),
                    );
                    m.insert("has_failed_jobs".into(), json!(info.has_failed_jobs()));
                }
                println!("{}", serde_json::to_string_pretty(&v).unwrap_or_default());
            } else {
                if info.packages.is_empty() {
                    println!("Pipeline {name}: no new data to load (nothing was extracted)");
                } else {
                    for p in &info.packages {
                        for (table, rows) in &p.rows {
                            say(&format!("  {table}: {rows} rows"));
                        }
                    }
                }
                println!("{info}");
            }
            Ok(if info.has_failed_jobs() {
                ExitCode::from(1)
            } else {
                ExitCode::SUCCESS
            })
        }
        Err(e) => {
            if args.json {
                println!(
                    "{}",
                    serde_json::to_string_pretty(
                        &json!({"pipeline_name": name, "error": format!("{e:#}")})
                    )
                    .unwrap_or_default()
                );
            }
            eprintln!("error: {e:#}");
            // a bad configuration found while running is still a config error
            Ok(if matches!(e, sluice::Error::Config(_)) {
                ExitCode::from(2)
            } else {
                ExitCode::from(1)
            })
        }
    }
}

/// `LOAD__DELETE_COMPLETED_JOBS` (dlt's key), else the pipeline file's
/// `delete_completed_jobs` (`file`), else true.
pub fn delete_completed_jobs(file: Option<bool>) -> Result<bool, String> {
    flag("LOAD__DELETE_COMPLETED_JOBS", file, true)
}

/// dlt's `normalize.parquet_normalizer` settings: the environment wins over the pipeline file;
/// both off by default, as in dlt.
pub fn arrow_options(
    pf: &crate::pipeline_file::PipelineSection,
) -> Result<sluice::pipeline::ArrowOptions, String> {
    Ok(sluice::pipeline::ArrowOptions {
        add_dlt_id: flag(
            "NORMALIZE__PARQUET_NORMALIZER__ADD_DLT_ID",
            pf.add_dlt_id,
            false,
        )?,
        add_dlt_load_id: flag(
            "NORMALIZE__PARQUET_NORMALIZER__ADD_DLT_LOAD_ID",
            pf.add_dlt_load_id,
            false,
        )?,
    })
}

/// A boolean setting: environment variable `var`, else the pipeline file's value, else
/// `default`.
fn flag(var: &str, file: Option<bool>, default: bool) -> Result<bool, String> {
    match std::env::var(var) {
        Ok(v) => match v.trim().to_ascii_lowercase().as_str() {
            "true" | "1" | "yes" | "on" => Ok(true),
            "false" | "0" | "no" | "off" => Ok(false),
            _ => Err(format!("{var} is `{v}`\nhint: set it to true or false")),
        },
        Err(_) => Ok(file.unwrap_or(default)),
    }
}

fn src_or_empty(v: Value) -> Value {
    if v.is_null() {
        json!({})
    } else {
        v
    }
}

fn chrono_now() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

/// The progress display: live bars per resource on a terminal, or a line per event.
fn progress_hook(mode: Progress) -> Option<ProgressHook> {
    use std::collections::HashMap;
    use std::sync::{Arc, Mutex};
    match mode {
        Progress::None => None,
        Progress::Log => {
            let started: Mutex<HashMap<String, Instant>> = Mutex::new(HashMap::new());
            Some(ProgressHook(Arc::new(move |e: &ProgressEvent| match e {
                ProgressEvent::ResourceStarted { resource } => {
                    if let Ok(mut m) = started.lock() {
                        m.insert(resource.clone(), Instant::now());
                    }
                    eprintln!("extract: {resource} started");
                }
                ProgressEvent::ResourceDone { resource, items } => {
                    let secs = started
                        .lock()
                        .ok()
                        .and_then(|m| m.get(resource).map(|t| t.elapsed().as_secs_f64()))
                        .unwrap_or(0.0);
                    let rate = if secs > 0.0 {
                        *items as f64 / secs
                    } else {
                        0.0
                    };
                    eprintln!(
                        "extract: {resource} done: {items} items in {secs:.2}s ({rate:.0}/s)"
                    );
                }
                ProgressEvent::StepStarted(step) => eprintln!("{}: started", step.name()),
                ProgressEvent::StepDone(Step::Normalize) => {
                    eprintln!("extract and normalize: done")
                }
                ProgressEvent::StepDone(step) => eprintln!("{}: done", step.name()),
                ProgressEvent::Items { .. } => {}
            })))
        }
        Progress::Bar => {
            let multi = indicatif::MultiProgress::new();
            let style = indicatif::ProgressStyle::with_template(
                "{spinner} {prefix:>20}: {human_pos} items  {per_sec:>12}  {elapsed}",
            )
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_spinner());
            let bars: Mutex<HashMap<String, indicatif::ProgressBar>> = Mutex::new(HashMap::new());
            let step_bar: Mutex<Option<indicatif::ProgressBar>> = Mutex::new(None);
            Some(ProgressHook(Arc::new(move |e: &ProgressEvent| {
                let Ok(mut bars) = bars.lock() else { return };
                match e {
                    ProgressEvent::ResourceStarted { resource } => {
                        let b = multi.add(indicatif::ProgressBar::new_spinner());
                        b.set_style(style.clone());
                        b.set_prefix(resource.clone());
                        b.enable_steady_tick(std::time::Duration::from_millis(120));
                        bars.insert(resource.clone(), b);
                    }
                    ProgressEvent::Items { resource, items } => {
                        if let Some(b) = bars.get(resource) {
                            b.set_position(*items);
                        }
                    }
                    ProgressEvent::ResourceDone { resource, items } => {
                        if let Some(b) = bars.get(resource) {
                            b.set_position(*items);
                            b.finish();
                        }
                    }
                    ProgressEvent::StepStarted(step) => {
                        let b = multi.add(indicatif::ProgressBar::new_spinner());
                        b.set_message(format!("{}...", step.name()));
                        b.enable_steady_tick(std::time::Duration::from_millis(120));
                        if let Ok(mut s) = step_bar.lock() {
                            *s = Some(b);
                        }
                    }
                    ProgressEvent::StepDone(step) => {
                        if let Ok(mut s) = step_bar.lock() {
                            if let Some(b) = s.take() {
                                b.finish_with_message(format!("{}: done", step.name()));
                            }
                        }
                    }
                }
            })))
        }
    }
}

#[cfg(test)]
mod tests {
    use clap::Parser;
    use sluice_registry::SearchPath;

    use super::*;

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        run: RunArgs,
    }

    /// Runs `sluice run <file> <args>` with a registry that holds no plugin.
    fn run_file(file: &std::path::Path, args: &[&str]) -> Result<ExitCode, String> {
        let mut argv = vec!["sluice".to_string(), file.display().to_string()];
        argv.extend(args.iter().map(|a| a.to_string()));
        let cli = Cli::try_parse_from(argv).expect("arguments");
        let dir = file.parent().expect("folder").to_path_buf();
        run(Registry::new(SearchPath::from_dirs([dir])), cli.run)
    }

    #[test]
    fn an_invalid_write_disposition_stops_the_run_naming_the_accepted_ones() {
        let tmp = tempfile::tempdir().expect("tmp");
        let file = tmp.path().join("wd_pipeline.toml");
        std::fs::write(
            &file,
            "[pipeline]\nname = \"wd\"\n[source]\nname = \"filesystem\"\nwrite_disposition = \"upsert\"\n",
        )
        .expect("write");
        // from the file: refused before the (missing) source plugin is looked up
        let e = run_file(&file, &["--progress", "none"]).expect_err("invalid in the file");
        assert!(
            e.contains("invalid write disposition `upsert`")
                && e.contains("`append`, `replace`, `merge`"),
            "{e}"
        );
        // the command line wins over the file, and is checked the same way
        let e = run_file(&file, &["--write-disposition", "sometimes"]).expect_err("invalid");
        assert!(e.contains("`sometimes`") && e.contains("`skip`"), "{e}");
        // a valid one gets as far as the source plugin, which this registry does not have
        let e = run_file(&file, &["--write-disposition", "replace"]).expect_err("no plugin");
        assert!(
            !e.contains("write disposition") && e.contains("filesystem"),
            "{e}"
        );
    }
}
