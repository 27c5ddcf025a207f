//! Where plugins are looked for, in order (first match wins):
//!
//! 1. an explicit path (a manifest or a library) given in the pipeline config or on the CLI;
//! 2. `SLUICE_PLUGIN_PATH` (`:`-separated);
//! 3. the project's `./.sluice/plugins`;
//! 4. the user data dir: `$XDG_DATA_HOME/sluice/plugins` or `~/.local/share/sluice/plugins`;
//! 5. the running executable's directory and its `../lib/sluice/plugins` (a workspace build
//!    leaves every plugin next to the `sluice` binary); for a cargo example or test binary
//!    (`target/<profile>/examples` or `deps`) also the profile directory above it;
//! 6. system dirs `/usr/local/lib/sluice/plugins`, `/usr/lib/sluice/plugins`.

use std::path::{Path, PathBuf};

use crate::manifest::PluginManifest;

/// Suffix of manifest files.
pub const MANIFEST_SUFFIX: &str = ".sluice-plugin.toml";

/// An ordered list of directories to search.
#[derive(Debug, Clone, Default)]
pub struct SearchPath {
    dirs: Vec<PathBuf>,
}

impl SearchPath {
    /// The standard search path of this process (environment, project, user, executable, system).
    pub fn standard() -> Self {
        let mut dirs = Vec::new();
        if let Some(paths) = std::env::var_os("SLUICE_PLUGIN_PATH") {
            dirs.extend(std::env::split_paths(&paths).filter(|p| !p.as_os_str().is_empty()));
        }
        if let Ok(cwd) = std::env::current_dir() {
            dirs.push(cwd.join(".sluice").join("plugins"));
        }
        if let Some(data) = user_data_dir() {
            dirs.push(data.join("sluice").join("plugins"));
        }
        if let Some(exe_dir) = std::env::current_exe()
            .ok()
            .and_then(|p| p.canonicalize().ok())
            .and_then(|p| p.parent().map(Path::to_path_buf))
        {
            dirs.push(
                exe_dir
                    .join("..")
                    .join("lib")
                    .join("sluice")
                    .join("plugins"),
            );
            let cargo_profile_dir = exe_dir
                .file_name()
                .is_some_and(|n| n == "examples" || n == "deps")
                .then(|| exe_dir.parent().map(Path::to_path_buf))
                .flatten();
            dirs.insert(dirs.len() - 1, exe_dir);
            dirs.extend(cargo_profile_dir);
        }
        dirs.push(PathBuf::from("/usr/local/lib/sluice/plugins"));
        dirs.push(PathBuf::from("/usr/lib/sluice/plugins"));
        Self { dirs }
    }

    /// Exactly these directories.
    pub fn from_dirs(dirs: impl IntoIterator<Item = PathBuf>) -> Self {
        Self {
            dirs: dirs.into_iter().collect(),
        }
    }

    /// Puts `dir` first.
    pub fn prepend(&mut self, dir: PathBuf) {
        self.dirs.insert(0, dir);
    }

    /// The directories in order.
    pub fn dirs(&self) -> &[PathBuf] {
        &self.dirs
    }

    /// Every manifest file on the path, in search order (duplicates by canonical path removed).
    pub fn manifest_files(&self) -> Vec<PathBuf> {
        let mut seen = std::collections::HashSet::new();
        let mut out = Vec::new();
        for dir in &self.dirs {
            let Ok(entries) = std::fs::read_dir(dir) else {
                continue;
            };
            let mut files: Vec<PathBuf> = entries
                .filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|p| {
                    p.file_name()
                        .and_then(|n| n.to_str())
                        .is_some_and(|n| n.ends_with(MANIFEST_SUFFIX))
                })
                .collect();
            files.sort();
            for f in files {
                let key = f.canonicalize().unwrap_or_else(|_| f.clone());
                if seen.insert(key) {
                    out.push(f);
                }
            }
        }
        out
    }

    /// Every manifest on the path, parsed (or the parse error), in search order.
    pub fn manifests(&self) -> Vec<crate::Result<PluginManifest>> {
        self.manifest_files()
            .iter()
            .map(|p| PluginManifest::read(p))
            .collect()
    }
}

fn user_data_dir() -> Option<PathBuf> {
    if let Some(x) = std::env::var_os("XDG_DATA_HOME").filter(|v| !v.is_empty()) {
        return Some(PathBuf::from(x));
    }
    std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".local").join("share"))
}
