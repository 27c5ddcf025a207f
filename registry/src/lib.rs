//! `sluice-registry`: finds sluice plugins, checks them and loads them.
//!
//! Discovery reads only manifests (`<name>.sluice-plugin.toml`), so listing plugins runs no
//! plugin code. Loading a plugin goes through the declaration and layout checks of
//! [`loader`] and returns a [`LoadedPlugin`], whose sources and destinations are used through
//! the SDK's traits ([`ForeignSource`] implements `sluice_sdk::Source`, and so on).
//!
//! ```no_run
//! use sluice_registry::Registry;
//! use sluice_sdk::Source;
//!
//! let registry = Registry::standard();
//! let plugin = registry.load("source", "github")?;
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
pub use search::SearchPath;

/// A plugin found on the search path, with its manifest (or why it could not be read) and
/// whether this host can load it.
#[derive(Debug)]
pub struct Discovered {
    /// The manifest file.
    pub path: PathBuf,
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
            .manifest_files()
            .into_iter()
            .map(|path| Discovered {
                manifest: PluginManifest::read(&path),
                path,
            })
            .collect()
    }

    /// The manifest of the `kind` plugin `name` (first on the search path), or an error that
    /// lists every directory searched and the plugins that exist.
    pub fn find(&self, kind: &str, name: &str) -> Result<PluginManifest> {
        let mut available = Vec::new();
        for found in self.discover() {
            match found.manifest {
                Ok(m) if m.kind == kind && m.name == name => return Ok(m),
                Ok(m) if m.kind == kind => {
                    if !available.contains(&m.name) {
                        available.push(m.name)
                    }
                }
                Ok(_) => {}
                Err(e) => {
                    tracing::warn!(target: "sluice::registry", "skipping {}: {e}", found.path.display())
                }
            }
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
    /// contains a path separator or ends in `.toml`/`.so`.
    pub fn load(&self, kind: &str, name: &str) -> Result<Arc<LoadedPlugin>> {
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
