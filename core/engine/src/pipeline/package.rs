//! Load packages on disk (spec f, with sluice's layout).
//!
//! ```text
//! <working dir>/
//!   state.json                     committed pipeline state (with `_local`)
//!   schemas/<schema>.schema.json   committed schema
//!   load/new/<load_id>/            a package being written (discarded if the process dies)
//!   load/normalized/<load_id>/     complete, pending load: package.json, schema.json, jobs/
//!   load/loaded/<load_id>/         loaded: package.json with `completed_at` (and jobs/ only
//!                                  with `delete_completed_jobs = false`)
//!   load/failed/<load_id>/         refused for good by the destination (a terminal job
//!                                  failure): package.json with `failed`, and its jobs/
//! ```
//!
//! A package moves between the three folders by atomic renames, so a run killed at any point
//! leaves either no package or a complete one, which the next run loads before extracting new
//! data. Its state (the pipeline state to commit and the `_dlt_pipeline_state` row) is part of
//! the package and becomes the pipeline's only once the load completed.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use serde_json::Value;
use sluice_sdk::destination::StoredState;

use crate::writer::JobFile;
use crate::{Error, Result};

/// The package manifest (`package.json`).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PackageManifest {
    /// Load id.
    pub load_id: String,
    /// Schema name.
    pub schema_name: String,
    /// Creation time (UTC, ISO 8601); the default scd2 boundary.
    pub created_at: String,
    /// Load files.
    pub jobs: Vec<JobFile>,
    /// Root tables whose resources ran in this package (even without rows).
    pub root_tables: Vec<String>,
    /// The `_dlt_pipeline_state` row to store with the load, if the state changed.
    pub state_row: Option<StoredState>,
    /// The pipeline state to commit when the load completes.
    pub pipeline_state: Value,
    /// Rows per table.
    #[serde(default)]
    pub rows: std::collections::BTreeMap<String, u64>,
    /// Failed jobs: job file name -> message.
    #[serde(default)]
    pub failed: std::collections::BTreeMap<String, String>,
    /// When the load completed.
    #[serde(default)]
    pub completed_at: Option<String>,
    /// Whether the job files were deleted once the package loaded (the manifest still lists
    /// them, with their rows and sizes).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub jobs_deleted: bool,
}

/// The load storage of a pipeline.
#[derive(Debug, Clone)]
pub struct LoadStorage {
    root: PathBuf,
}

fn io(path: &Path, e: std::io::Error) -> Error {
    Error::io(path, e)
}

impl LoadStorage {
    /// The storage under `working_dir/load`.
    pub fn new(working_dir: &Path) -> Self {
        Self {
            root: working_dir.join("load"),
        }
    }

    /// `load/new/<load_id>`, created empty.
    pub fn new_package_dir(&self, load_id: &str) -> Result<PathBuf> {
        let dir = self.root.join("new").join(load_id);
        if dir.exists() {
            std::fs::remove_dir_all(&dir).map_err(|e| io(&dir, e))?;
        }
        create_dir(&dir.join("jobs"))?;
        Ok(dir)
    }

    /// Removes packages left half-written by a killed process.
    pub fn discard_new(&self) -> Result<()> {
        let dir = self.root.join("new");
        if dir.exists() {
            std::fs::remove_dir_all(&dir).map_err(|e| io(&dir, e))?;
        }
        Ok(())
    }

    /// Writes the manifest and schema of a new package and moves it to `normalized/`.
    pub fn commit_new(&self, manifest: &PackageManifest, schema_json: &str) -> Result<PathBuf> {
        let dir = self.root.join("new").join(&manifest.load_id);
        write_atomic(&dir.join("schema.json"), schema_json.as_bytes())?;
        write_atomic(
            &dir.join("package.json"),
            &serde_json::to_vec_pretty(manifest)?,
        )?;
        let target_dir = self.root.join("normalized");
        create_dir(&target_dir)?;
        let target = target_dir.join(&manifest.load_id);
        std::fs::rename(&dir, &target).map_err(|e| io(&target, e))?;
        sync_dir(&target_dir);
        sync_dir(&self.root.join("new"));
        Ok(target)
    }

    /// Load ids of packages pending load, oldest first.
    pub fn pending(&self) -> Result<Vec<String>> {
        list_dirs(&self.root.join("normalized"))
    }

    /// Load ids of loaded packages, oldest first.
    pub fn loaded(&self) -> Result<Vec<String>> {
        list_dirs(&self.root.join("loaded"))
    }

    /// The folder of a pending package.
    pub fn pending_dir(&self, load_id: &str) -> PathBuf {
        self.root.join("normalized").join(load_id)
    }

    /// The folder of a loaded package.
    pub fn loaded_dir(&self, load_id: &str) -> PathBuf {
        self.root.join("loaded").join(load_id)
    }

    /// Reads a package manifest from `dir`.
    pub fn read_manifest(dir: &Path) -> Result<PackageManifest> {
        let path = dir.join("package.json");
        let text = std::fs::read_to_string(&path).map_err(|e| io(&path, e))?;
        serde_json::from_str(&text).map_err(|e| {
            Error::data(format!(
                "corrupted package manifest `{}`: {e}",
                path.display()
            ))
        })
    }

    /// Rewrites the manifest of a pending package.
    pub fn write_manifest(dir: &Path, manifest: &PackageManifest) -> Result<()> {
        write_atomic(
            &dir.join("package.json"),
            &serde_json::to_vec_pretty(manifest)?,
        )
    }

    /// Moves a pending package to `loaded/`; with `delete_jobs` its job files are deleted once
    /// it is there (the data is in the destination; the manifest keeps the job list).
    pub fn mark_loaded(&self, manifest: &mut PackageManifest, delete_jobs: bool) -> Result<()> {
        manifest.jobs_deleted = delete_jobs;
        let to = self.move_pending(manifest, "loaded")?;
        if delete_jobs {
            // past the rename the package counts as loaded whatever happens here: a failure to
            // delete leaves files behind, never a package to load again
            let jobs = to.join("jobs");
            if let Err(e) = std::fs::remove_dir_all(&jobs) {
                if e.kind() != std::io::ErrorKind::NotFound {
                    tracing::warn!(target: "sluice::pipeline", path = %jobs.display(), error = %e, "cannot delete the job files of a loaded package");
                }
            }
        }
        Ok(())
    }

    /// Moves a pending package whose load failed for good to `failed/`, with its job files (kept
    /// for inspection; never loaded again).
    pub fn mark_failed(&self, manifest: &mut PackageManifest) -> Result<()> {
        self.move_pending(manifest, "failed").map(|_| ())
    }

    /// Writes a pending package's manifest and renames the package into `load/<folder>/`
    /// (replacing a leftover of the same id), then fsyncs both folders. Returns its new path.
    fn move_pending(&self, manifest: &PackageManifest, folder: &str) -> Result<PathBuf> {
        let from = self.pending_dir(&manifest.load_id);
        Self::write_manifest(&from, manifest)?;
        let target_dir = self.root.join(folder);
        create_dir(&target_dir)?;
        let to = target_dir.join(&manifest.load_id);
        if to.exists() {
            std::fs::remove_dir_all(&to).map_err(|e| io(&to, e))?;
        }
        std::fs::rename(&from, &to).map_err(|e| io(&to, e))?;
        sync_dir(&target_dir);
        sync_dir(&self.root.join("normalized"));
        Ok(to)
    }

    /// Load ids of packages whose load failed for good, oldest first.
    pub fn failed(&self) -> Result<Vec<String>> {
        list_dirs(&self.root.join("failed"))
    }

    /// The folder of a failed package.
    pub fn failed_dir(&self, load_id: &str) -> PathBuf {
        self.root.join("failed").join(load_id)
    }

    /// Deletes every pending package (dlt's `drop-pending-packages`).
    pub fn drop_pending(&self) -> Result<usize> {
        let ids = self.pending()?;
        for id in &ids {
            let d = self.pending_dir(id);
            std::fs::remove_dir_all(&d).map_err(|e| io(&d, e))?;
        }
        Ok(ids.len())
    }
}

fn list_dirs(dir: &Path) -> Result<Vec<String>> {
    let mut out: Vec<String> = match std::fs::read_dir(dir) {
        Ok(rd) => rd
            .filter_map(|e| e.ok())
            .filter(|e| e.path().is_dir())
            .filter_map(|e| e.file_name().to_str().map(String::from))
            .collect(),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Vec::new(),
        Err(e) => return Err(io(dir, e)),
    };
    out.sort_by(|a, b| {
        let fa: f64 = a.parse().unwrap_or(0.0);
        let fb: f64 = b.parse().unwrap_or(0.0);
        fa.partial_cmp(&fb)
            .unwrap_or(std::cmp::Ordering::Equal)
            .then(a.cmp(b))
    });
    Ok(out)
}

/// Writes a file atomically: a temp file of its own (0600, unique to this process and call),
/// fsync, rename, fsync of the folder. The folder must exist: a folder that another step moved
/// away (a committed package) is never recreated by a late write.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    use std::sync::atomic::{AtomicU64, Ordering};
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let dir = path.parent().unwrap_or(Path::new("."));
    let tmp = dir.join(format!(
        ".{}.{}-{}.tmp",
        path.file_name().and_then(|n| n.to_str()).unwrap_or("file"),
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed)
    ));
    let written = (|| {
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()
    })();
    if let Err(e) = written {
        let _ = std::fs::remove_file(&tmp);
        return Err(io(&tmp, e));
    }
    if let Err(e) = std::fs::rename(&tmp, path) {
        let _ = std::fs::remove_file(&tmp);
        return Err(io(path, e));
    }
    sync_dir(dir);
    Ok(())
}

/// Creates `dir` and its missing parents, 0700.
pub fn create_dir(dir: &Path) -> Result<()> {
    super::workdir::create_private_dir(dir).map_err(|e| io(dir, e))
}

fn sync_dir(dir: &Path) {
    if let Ok(f) = std::fs::File::open(dir) {
        let _ = f.sync_all();
    }
}
