//! Plugin manifests (`<name>.sluice-plugin.toml`), read without loading any code.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::Deserialize;
use sluice_sdk::manifest::ConfigKey;

use crate::error::{Error, Result};

/// The highest manifest format version this host reads.
pub const MANIFEST_VERSION: u32 = 1;

#[derive(Debug, Clone, Deserialize)]
struct RawManifest {
    #[serde(default = "one")]
    manifest_version: u32,
    name: String,
    kind: String,
    #[serde(default)]
    version: String,
    #[serde(default)]
    description: String,
    #[serde(default)]
    abi: Option<RawAbi>,
    #[serde(default)]
    library: BTreeMap<String, toml::Value>,
    #[serde(default)]
    config: Vec<ConfigKey>,
    #[serde(default)]
    secrets: Vec<ConfigKey>,
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

/// A parsed plugin manifest.
#[derive(Debug, Clone)]
pub struct PluginManifest {
    /// The manifest file.
    pub path: PathBuf,
    /// Plugin name.
    pub name: String,
    /// `source` or `destination`.
    pub kind: String,
    /// Plugin version.
    pub version: String,
    /// One-line description.
    pub description: String,
    /// Declared ABI major and minor.
    pub abi: (u32, u32),
    /// The library for this platform (absolute), if the manifest names one.
    pub library: Option<PathBuf>,
    /// Expected sha256 of the library (hex), if given.
    pub sha256: Option<String>,
    /// Configuration keys.
    pub config: Vec<ConfigKey>,
    /// Secret keys.
    pub secrets: Vec<ConfigKey>,
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
        let raw: RawManifest = toml::from_str(text).map_err(|e| bad(e.to_string()))?;
        if raw.manifest_version > MANIFEST_VERSION {
            return Err(bad(format!(
                "manifest_version {} is newer than this sluice reads ({MANIFEST_VERSION}); upgrade sluice",
                raw.manifest_version
            )));
        }
        if raw.kind != "source" && raw.kind != "destination" {
            return Err(bad(format!(
                "kind must be `source` or `destination`, got `{}`",
                raw.kind
            )));
        }
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
            name: raw.name,
            kind: raw.kind,
            version: raw.version,
            description: raw.description,
            abi,
            library,
            sha256,
            config: raw.config,
            secrets: raw.secrets,
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
        assert!(err
            .to_string()
            .contains("kind must be `source` or `destination`"));
        let err = PluginManifest::parse(
            "manifest_version = 9\nname = \"x\"\nkind = \"source\"\n[abi]\nmajor = 1\n",
            Path::new("x.toml"),
        )
        .expect_err("version");
        assert!(err.to_string().contains("upgrade sluice"));
    }
}
