//! `sluice-registry`: finds sluice plugins, checks them and loads them.
//!
//! Discovery reads only manifests (`<name>.sluice-plugin.toml`), so listing plugins runs no
//! plugin code. Loading a plugin goes through the declaration and layout checks of
//! [`loader`] and returns a [`LoadedPlugin`], whose sources and destinations are used through
//! the SDK's traits ([`ForeignSource`] implements `sluice_sdk::Source`, and so on).
//!
//! ```no_run
//! use sluice_registry::{PluginKind, Registry};
//! use sluice_sdk::Source;
//!
//! let registry = Registry::standard();
//! let plugin = registry.load(PluginKind::Source, "github")?;
//! let source = plugin.open_source(&serde_json::json!({"owner": "dlt-hub"}), &serde_json::json!({}))?;
//! for resource in source.describe()? {
//!     println!("{}", resource.name);
//! }
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

#![warn(missing_docs)]

mod error;
pub mod foreign;
mod host;
pub mod loader;
pub mod manifest;
pub mod search;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde_json::Value;

pub use error::{Error, Result};
pub use foreign::{blocking, ForeignClient, ForeignDestination, ForeignSource, ForeignStream};
pub use loader::LoadedPlugin;
pub use manifest::PluginManifest;
pub use search::{DirOrigin, ManifestFile, SearchPath, TRUST_PROJECT_PLUGINS_ENV};
pub use sluice_sdk::PluginKind;

/// A plugin found on the search path, with its manifest (or why it could not be read) and
/// whether this host can load it.
#[derive(Debug)]
pub struct Discovered {
    /// The manifest file.
    pub path: PathBuf,
    /// The kind of directory it was found in.
    pub origin: DirOrigin,
    /// The parsed manifest, or the parse error.
    pub manifest: Result<PluginManifest>,
}

impl Discovered {
    /// Why this plugin cannot be loaded, if it cannot (from the manifest only).
    pub fn incompatibility(&self) -> Option<String> {
        match &self.manifest {
            Ok(m) => m.incompatibility(),
            Err(e) => Some(e.to_string()),
        }
    }
}

/// Finds and loads plugins.
#[derive(Debug, Clone)]
pub struct Registry {
    search: SearchPath,
    settings: Value,
}

impl Registry {
    /// A registry over the standard search path.
    pub fn standard() -> Self {
        Self::new(SearchPath::standard())
    }

    /// A registry over `search`.
    pub fn new(search: SearchPath) -> Self {
        Self {
            search,
            settings: serde_json::json!({}),
        }
    }

    /// Settings passed to each plugin's `init` (e.g. `{"worker_threads": 4}`).
    pub fn with_settings(mut self, settings: Value) -> Self {
        self.settings = settings;
        self
    }

    /// The search path.
    pub fn search_path(&self) -> &SearchPath {
        &self.search
    }

    /// Every plugin manifest on the search path (no code is loaded).
    pub fn discover(&self) -> Vec<Discovered> {
        self.search
            .manifest_entries()
            .into_iter()
            .map(|f| Discovered {
                manifest: PluginManifest::read(&f.path),
                path: f.path,
                origin: f.origin,
            })
            .collect()
    }

    /// For a plugin found in the project folder: the installed (or explicitly given) manifest
    /// of the same kind and name that it would replace, if there is one.
    pub fn shadowed_by(&self, found: &Discovered) -> Option<PathBuf> {
        let m = found.manifest.as_ref().ok()?;
        if found.origin != DirOrigin::Project {
            return None;
        }
        self.discover()
            .into_iter()
            .filter(|d| d.origin != DirOrigin::Project)
            .find(|d| {
                d.manifest
                    .as_ref()
                    .is_ok_and(|o| o.kind == m.kind && o.name == m.name)
            })
            .map(|d| d.path)
    }

    /// The manifest of the `kind` plugin `name` (first on the search path), or an error that
    /// lists every directory searched and the plugins that exist.
    ///
    /// `kind` is a [`PluginKind`], or its name (`"source"`, `"destination"`; another name is
    /// refused with the accepted ones).
    ///
    /// A plugin in the project folder (`./.sluice/plugins`) that has the kind and name of an
    /// installed plugin is refused with [`Error::Shadowed`], which says how to opt in, unless
    /// project plugins are trusted ([`SearchPath::trust_project_plugins`]); then it is used,
    /// with a warning.
    pub fn find<K>(&self, kind: K, name: &str) -> Result<PluginManifest>
    where
        K: TryInto<PluginKind>,
        K::Error: std::fmt::Display,
    {
        let kind = plugin_kind(kind)?;
        let mut available = Vec::new();
        let mut project: Option<PluginManifest> = None;
        for found in self.discover() {
            match found.manifest {
                Ok(m) if m.kind == kind && m.name == name => match (&project, found.origin) {
                    (None, DirOrigin::Project) => project = Some(m),
                    (Some(_), DirOrigin::Project) => {}
                    (None, _) => return Ok(m),
                    (Some(p), _) => {
                        if !self.search.trusts_project_plugins() {
                            return Err(Error::Shadowed {
                                kind: kind.to_string(),
                                name: name.to_string(),
                                project: p.path.clone(),
                                installed: m.path,
                            });
                        }
                        warn_once(kind, name, &p.path, &m.path);
                        return Ok(project.take().expect("project manifest"));
                    }
                },
                Ok(m) if m.kind == kind => {
                    if !available.contains(&m.name) {
                        available.push(m.manifest.name)
                    }
                }
                Ok(_) => {}
                Err(e) => {
                    tracing::warn!(target: "sluice::registry", "skipping {}: {e}", found.path.display())
                }
            }
        }
        // a new name from the project folder
        if let Some(p) = project {
            return Ok(p);
        }
        available.sort();
        Err(Error::NotFound {
            kind: kind.to_string(),
            name: name.to_string(),
            searched: self.search.dirs().to_vec(),
            available,
        })
    }

    /// Finds and loads the `kind` plugin `name`, or the plugin at an explicit path when `name`
    /// contains a path separator or ends in `.toml`/`.so`. `kind` is as for [`Registry::find`].
    pub fn load<K>(&self, kind: K, name: &str) -> Result<Arc<LoadedPlugin>>
    where
        K: TryInto<PluginKind>,
        K::Error: std::fmt::Display,
    {
        let kind = plugin_kind(kind)?;
        if name.contains(std::path::MAIN_SEPARATOR)
            || name.ends_with(".toml")
            || name.ends_with(std::env::consts::DLL_SUFFIX)
        {
            let plugin = self.load_path(Path::new(name))?;
            if plugin.manifest.kind != kind {
                return Err(Error::Load {
                    name: plugin.name().to_string(),
                    path: plugin.library.clone(),
                    message: format!("it is a {}, not a {kind}", plugin.manifest.kind),
                });
            }
            return Ok(plugin);
        }
        let manifest = self.find(kind, name)?;
        loader::load(&manifest, &self.settings)
    }

    /// Loads the plugin at an explicit path: a manifest file, or a library (whose manifest is
    /// looked for next to it, else read from the library itself).
    pub fn load_path(&self, path: &Path) -> Result<Arc<LoadedPlugin>> {
        let path = path.canonicalize().map_err(|e| Error::Load {
            name: path.display().to_string(),
            path: path.to_path_buf(),
            message: e.to_string(),
        })?;
        let is_manifest = path
            .file_name()
            .and_then(|n| n.to_str())
            .is_some_and(|n| n.ends_with(".toml"));
        if is_manifest {
            let manifest = PluginManifest::read(&path)?;
            return loader::load(&manifest, &self.settings);
        }
        // a library: prefer a manifest next to it that names it
        let sibling = path
            .parent()
            .map(|dir| SearchPath::from_dirs([dir.to_path_buf()]));
        if let Some(sibling) = sibling {
            for m in sibling.manifests().into_iter().flatten() {
                let same = m
                    .library
                    .as_ref()
                    .and_then(|l| l.canonicalize().ok())
                    .is_some_and(|l| l == path);
                if same {
                    return loader::load(&m, &self.settings);
                }
            }
        }
        let manifest = loader::manifest_from_library(&path)?;
        loader::load_library(manifest, &path, &self.settings)
    }
}

/// `kind` as a [`PluginKind`]; a name that is none refuses the call (with the accepted names).
fn plugin_kind<K>(kind: K) -> Result<PluginKind>
where
    K: TryInto<PluginKind>,
    K::Error: std::fmt::Display,
{
    kind.try_into()
        .map_err(|e| Error::Plugin(sluice_sdk::Error::config(format!("plugin {e}"))))
}

/// The warning for a trusted project plugin that replaces an installed one, once per process
/// for each plugin (a run looks a plugin up more than once).
fn warn_once(kind: PluginKind, name: &str, project: &Path, installed: &Path) {
    type Seen = Vec<(PluginKind, String, PathBuf)>;
    static WARNED: std::sync::Mutex<Seen> = std::sync::Mutex::new(Vec::new());
    let key = (kind, name.to_string(), project.to_path_buf());
    let first = WARNED.lock().map_or(true, |mut w| {
        if w.contains(&key) {
            false
        } else {
            w.push(key);
            true
        }
    });
    if first {
        tracing::warn!(
            target: "sluice::registry",
            "using the project's {kind} plugin `{name}` ({}) instead of the installed one ({}), because project plugins are trusted (--trust-project-plugins or {}); it receives the {kind}'s secrets",
            project.display(),
            installed.display(),
            TRUST_PROJECT_PLUGINS_ENV
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_kind_is_a_plugin_kind_or_its_name() {
        let registry = Registry::new(SearchPath::from_dirs(Vec::<PathBuf>::new()));
        let err = registry.find("sink", "x").expect_err("unknown kind");
        assert_eq!(
            err.to_string(),
            "plugin kind must be `source` or `destination`, got `sink`"
        );
        // a known name and the enum ask the same question (nothing is installed here)
        for err in [
            registry
                .find("destination", "x")
                .expect_err("nothing installed"),
            registry
                .find(PluginKind::Destination, "x")
                .expect_err("nothing installed"),
        ] {
            assert!(
                err.to_string()
                    .starts_with("no destination plugin `x` found"),
                "{err}"
            );
        }
    }
}
