//! Installed plugin manifests (`<name>.sluice-plugin.toml` beside the library), read without
//! loading any code.
//!
//! The file is the plugin's own `sluice-plugin.toml` ([`sluice_sdk::manifest::Manifest`]: name,
//! kind, description, config and secret keys) with what its build script adds:
//! `manifest_version`, `version`, `[abi]` and the library of each platform under `[library]`.
//! [`PluginManifest`] is that [`Manifest`] plus the added keys and the file's location; it
//! dereferences to the [`Manifest`], so `m.name`, `m.kind` and `m.config` read through, and
//! `&PluginManifest` goes wherever a `&Manifest` is expected (config resolution).

use std::collections::BTreeMap;
use std::ops::Deref;
use std::path::{Path, PathBuf};

use serde::Deserialize;
use sluice_sdk::manifest::Manifest;

use crate::error::{Error, Result};

/// The highest manifest format version this host reads.
pub const MANIFEST_VERSION: u32 = 1;

/// The format version alone, checked before the rest so that a newer file says "upgrade
/// sluice" rather than failing on what the newer format changed.
#[derive(Debug, Deserialize)]
struct RawVersion {
    #[serde(default = "one")]
    manifest_version: u32,
}

#[derive(Debug, Clone, Deserialize)]
struct RawManifest {
    #[serde(flatten)]
    manifest: Manifest,
    #[serde(default)]
    abi: Option<RawAbi>,
    #[serde(default)]
    library: BTreeMap<String, toml::Value>,
}

fn one() -> u32 {
    1
}

#[derive(Debug, Clone, Deserialize)]
struct RawAbi {
    major: u32,
    #[serde(default)]
    minor: u32,
}

/// A parsed installed manifest: the plugin's [`Manifest`] (which this dereferences to), the
/// ABI it was built for, and its library for this platform.
#[derive(Debug, Clone)]
pub struct PluginManifest {
    /// The manifest file.
    pub path: PathBuf,
    /// What the plugin's author wrote: name, kind, version, description, config and secrets.
    pub manifest: Manifest,
    /// Declared ABI major and minor.
    pub abi: (u32, u32),
    /// The library for this platform (absolute), if the manifest names one.
    pub library: Option<PathBuf>,
    /// Expected sha256 of the library (hex), if given.
    pub sha256: Option<String>,
}

impl Deref for PluginManifest {
    type Target = Manifest;

    fn deref(&self) -> &Manifest {
        &self.manifest
    }
}

/// This platform's key in `[library]`, e.g. `linux_x86_64`.
pub fn platform_key() -> String {
    sluice_plugin_build::platform_key(std::env::consts::OS, std::env::consts::ARCH)
}

impl PluginManifest {
    /// Reads and parses the manifest at `path`.
    pub fn read(path: &Path) -> Result<Self> {
        let text = std::fs::read_to_string(path).map_err(|e| Error::Manifest {
            path: path.to_path_buf(),
            message: e.to_string(),
        })?;
        Self::parse(&text, path)
    }

    /// Parses manifest `text` found at `path`.
    pub fn parse(text: &str, path: &Path) -> Result<Self> {
        let bad = |message: String| Error::Manifest {
            path: path.to_path_buf(),
            message,
        };
        let version: RawVersion = toml::from_str(text).map_err(|e| bad(e.to_string()))?;
        if version.manifest_version > MANIFEST_VERSION {
            return Err(bad(format!(
                "manifest_version {} is newer than this sluice reads ({MANIFEST_VERSION}); upgrade sluice",
                version.manifest_version
            )));
        }
        let raw: RawManifest = toml::from_str(text).map_err(|e| bad(e.to_string()))?;
        let abi = raw
            .abi
            .map(|a| (a.major, a.minor))
            .ok_or_else(|| bad("missing [abi] table with `major`".into()))?;
        let dir = path.parent().unwrap_or(Path::new("."));
        let key = platform_key();
        let (library, sha256) = match raw.library.get(&key) {
            Some(toml::Value::String(file)) => {
                let sha = raw
                    .library
                    .get("sha256")
                    .and_then(|t| t.get(&key))
                    .and_then(toml::Value::as_str)
                    .map(String::from);
                if let Some(sha) = &sha {
                    if sha.len() != 64 || !sha.bytes().all(|b| b.is_ascii_hexdigit()) {
                        return Err(bad(format!(
                            "`[library.sha256]` `{key}` must be 64 hex digits (a sha256), got `{sha}`"
                        )));
                    }
                }
                (Some(dir.join(file)), sha)
            }
            _ => (None, None),
        };
        Ok(Self {
            path: path.to_path_buf(),
            manifest: raw.manifest,
            abi,
            library,
            sha256,
        })
    }

    /// Why this manifest cannot be loaded by this host, if it cannot (checked without code).
    pub fn incompatibility(&self) -> Option<String> {
        if self.abi.0 != sluice_abi::ABI_MAJOR {
            return Some(format!(
                "built for plugin ABI {}.{}, this sluice speaks {}.{}",
                self.abi.0,
                self.abi.1,
                sluice_abi::ABI_MAJOR,
                sluice_abi::ABI_MINOR
            ));
        }
        match &self.library {
            None => Some(format!("no library for platform `{}`", platform_key())),
            Some(lib) if !lib.exists() => {
                Some(format!("library `{}` does not exist", lib.display()))
            }
            Some(_) => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use sluice_sdk::PluginKind;

    use super::*;

    #[test]
    fn parses_a_manifest() {
        let text = format!(
            "manifest_version = 1\nversion = \"0.2.0\"\nname = \"x\"\nkind = \"source\"\n\
             [[config]]\nkey = \"owner\"\nrequired = true\n\n[abi]\nmajor = 1\nminor = 0\n\n\
             [library]\n{} = \"libx.so\"\n",
            platform_key()
        );
        let m = PluginManifest::parse(&text, Path::new("/p/x.sluice-plugin.toml")).expect("ok");
        assert_eq!(m.name, "x");
        assert_eq!(m.kind, PluginKind::Source);
        assert_eq!(m.version, "0.2.0");
        assert_eq!(m.abi, (1, 0));
        assert_eq!(m.library.as_deref(), Some(Path::new("/p/libx.so")));
        assert_eq!(m.config[0].key, "owner");
        assert!(m.incompatibility().is_some()); // the library does not exist
    }

    #[test]
    fn rejects_bad_kinds_and_future_versions() {
        let err = PluginManifest::parse(
            "name = \"x\"\nkind = \"sink\"\n[abi]\nmajor = 1\n",
            Path::new("x.toml"),
        )
        .expect_err("kind");
        let message = err.to_string();
        assert!(
            message.starts_with("invalid plugin manifest `x.toml`: "),
            "{message}"
        );
        assert!(
            message.contains("kind must be `source` or `destination`, got `sink`"),
            "{message}"
        );
        let err = PluginManifest::parse(
            "manifest_version = 9\nname = \"x\"\nkind = \"source\"\n[abi]\nmajor = 1\n",
            Path::new("x.toml"),
        )
        .expect_err("version");
        assert!(err.to_string().contains("upgrade sluice"));
        // a newer format is reported as such, even when it brings a kind this host lacks
        let err = PluginManifest::parse(
            "manifest_version = 2\nname = \"x\"\nkind = \"transform\"\n[abi]\nmajor = 1\n",
            Path::new("x.toml"),
        )
        .expect_err("version");
        assert!(err.to_string().contains("upgrade sluice"), "{err}");
    }
}
