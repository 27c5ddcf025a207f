//! Where plugins are looked for, in order (first match wins):
//!
//! 1. an explicit path (a manifest or a library) given in the pipeline config or on the CLI;
//! 2. `--plugin-dir` and `SLUICE_PLUGIN_PATH` (`:`-separated);
//! 3. the project's `./.sluice/plugins`;
//! 4. the user data dir: `$XDG_DATA_HOME/sluice/plugins` or `~/.local/share/sluice/plugins`;
//! 5. the running executable's directory and its `../lib/sluice/plugins` (a workspace build
//!    leaves every plugin next to the `sluice` binary); for a cargo example or test binary
//!    (`target/<profile>/examples` or `deps`) also the profile directory above it;
//! 6. system dirs `/usr/local/lib/sluice/plugins`, `/usr/lib/sluice/plugins`.
//!
//! The project folder is not trusted like the others: a cloned repository can ship
//! `.sluice/plugins/postgres.sluice-plugin.toml`, and whichever plugin answers to `postgres`
//! receives the destination's secrets. So a plugin found in the project folder may add a new
//! (kind, name), but one that has the (kind, name) of an installed plugin (4-6) is refused unless
//! the user opts in with `--trust-project-plugins` or `SLUICE_TRUST_PROJECT_PLUGINS=1` (see
//! [`crate::Registry::find`]). The project's own files (`.sluice/config.toml`, the pipeline file)
//! cannot opt in: the folder being distrusted would vouch for itself.

use std::path::{Path, PathBuf};

use crate::manifest::PluginManifest;

/// Suffix of manifest files.
pub const MANIFEST_SUFFIX: &str = ".sluice-plugin.toml";

/// The environment variable that lets project-folder plugins replace installed ones (`1`,
/// `true`, `yes` or `on`).
pub const TRUST_PROJECT_PLUGINS_ENV: &str = "SLUICE_TRUST_PROJECT_PLUGINS";

/// Where a search directory comes from, which decides what its plugins may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DirOrigin {
    /// Named by the user: `--plugin-dir`, `SLUICE_PLUGIN_PATH`, or [`SearchPath::from_dirs`].
    Explicit,
    /// The project's `./.sluice/plugins`: may add plugins, replaces an installed one only when
    /// project plugins are trusted.
    Project,
    /// Installed for the user or the system: the user data dir, next to the executable, the
    /// system dirs.
    Installed,
}

/// A manifest file on the search path and the kind of directory it was found in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ManifestFile {
    /// The manifest file, as found (not canonicalized).
    pub path: PathBuf,
    /// The directory's origin.
    pub origin: DirOrigin,
}

/// An ordered list of directories to search.
#[derive(Debug, Clone, Default)]
pub struct SearchPath {
    dirs: Vec<PathBuf>,
    origins: Vec<DirOrigin>,
    trust_project: bool,
}

impl SearchPath {
    /// The standard search path of this process (environment, project, user, executable, system).
    /// Project plugins are trusted to replace installed ones when `SLUICE_TRUST_PROJECT_PLUGINS`
    /// is set to a true value.
    pub fn standard() -> Self {
        let mut s = Self::default();
        if let Some(paths) = std::env::var_os("SLUICE_PLUGIN_PATH") {
            for p in std::env::split_paths(&paths).filter(|p| !p.as_os_str().is_empty()) {
                s.push(p, DirOrigin::Explicit);
            }
        }
        if let Ok(cwd) = std::env::current_dir() {
            s.push(cwd.join(".sluice").join("plugins"), DirOrigin::Project);
        }
        if let Some(data) = user_data_dir() {
            s.push(data.join("sluice").join("plugins"), DirOrigin::Installed);
        }
        if let Some(exe_dir) = std::env::current_exe()
            .ok()
            .and_then(|p| p.canonicalize().ok())
            .and_then(|p| p.parent().map(Path::to_path_buf))
        {
            let cargo_profile_dir = exe_dir
                .file_name()
                .is_some_and(|n| n == "examples" || n == "deps")
                .then(|| exe_dir.parent().map(Path::to_path_buf))
                .flatten();
            s.push(exe_dir.clone(), DirOrigin::Installed);
            s.push(
                exe_dir
                    .join("..")
                    .join("lib")
                    .join("sluice")
                    .join("plugins"),
                DirOrigin::Installed,
            );
            if let Some(d) = cargo_profile_dir {
                s.push(d, DirOrigin::Installed);
            }
        }
        s.push(
            PathBuf::from("/usr/local/lib/sluice/plugins"),
            DirOrigin::Installed,
        );
        s.push(
            PathBuf::from("/usr/lib/sluice/plugins"),
            DirOrigin::Installed,
        );
        s.trust_project = std::env::var(TRUST_PROJECT_PLUGINS_ENV).is_ok_and(|v| {
            matches!(
                v.trim().to_ascii_lowercase().as_str(),
                "1" | "true" | "yes" | "on"
            )
        });
        s
    }

    /// Exactly these directories (all [`DirOrigin::Explicit`]).
    pub fn from_dirs(dirs: impl IntoIterator<Item = PathBuf>) -> Self {
        let mut s = Self::default();
        for d in dirs {
            s.push(d, DirOrigin::Explicit);
        }
        s
    }

    /// Adds `dir` of `origin` last.
    pub fn push(&mut self, dir: PathBuf, origin: DirOrigin) {
        self.dirs.push(dir);
        self.origins.push(origin);
    }

    /// Puts `dir` first (an explicit directory, like `--plugin-dir`).
    pub fn prepend(&mut self, dir: PathBuf) {
        self.dirs.insert(0, dir);
        self.origins.insert(0, DirOrigin::Explicit);
    }

    /// Whether a project-folder plugin may replace an installed plugin of the same kind and
    /// name (`--trust-project-plugins`).
    pub fn trust_project_plugins(mut self, trust: bool) -> Self {
        self.trust_project = trust;
        self
    }

    /// Whether project-folder plugins may replace installed ones.
    pub fn trusts_project_plugins(&self) -> bool {
        self.trust_project
    }

    /// The directories in order.
    pub fn dirs(&self) -> &[PathBuf] {
        &self.dirs
    }

    /// The directories in order, with their origins.
    pub fn entries(&self) -> impl Iterator<Item = (&Path, DirOrigin)> {
        self.dirs
            .iter()
            .map(PathBuf::as_path)
            .zip(self.origins.iter().copied())
    }

    /// Every manifest file on the path, in search order (duplicates by canonical path removed).
    pub fn manifest_files(&self) -> Vec<PathBuf> {
        self.manifest_entries()
            .into_iter()
            .map(|m| m.path)
            .collect()
    }

    /// Every manifest file on the path with the origin of its directory, in search order.
    ///
    /// A file reachable from several directories (the same directory listed twice, or a symlink)
    /// is listed once, at its first place; a file the project folder shares with an explicit or
    /// installed directory (the project folder *is* that directory, or links to its manifest)
    /// counts as that directory's, so a link cannot pass an installed manifest off as a project
    /// one, nor an installed one as shadowed.
    pub fn manifest_entries(&self) -> Vec<ManifestFile> {
        let mut found: Vec<(ManifestFile, PathBuf)> = Vec::new();
        for (dir, origin) in self.entries() {
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
                found.push((ManifestFile { path: f, origin }, key));
            }
        }
        let trusted: std::collections::HashSet<PathBuf> = found
            .iter()
            .filter(|(m, _)| m.origin != DirOrigin::Project)
            .map(|(_, k)| k.clone())
            .collect();
        let mut seen = std::collections::HashSet::new();
        let mut out = Vec::new();
        for (m, key) in found {
            if m.origin == DirOrigin::Project && trusted.contains(&key) {
                continue;
            }
            if seen.insert(key) {
                out.push(m);
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
