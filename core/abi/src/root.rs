//! The root module every plugin library exports, and its loader.

use std::path::Path;

use abi_stable::library::{lib_header_from_path, LibraryError, RootModule};
use abi_stable::sabi_types::VersionStrings;
use abi_stable::std_types::{RStr, RString};
use abi_stable::StableAbi;

use crate::{FfiDestination, FfiResult, FfiSource, HostApi};

/// The root module of a plugin library: an `abi_stable` prefix type, so fields can be appended
/// in minor ABI versions (read as `Option` by older hosts).
#[repr(C)]
#[derive(StableAbi)]
#[sabi(kind(Prefix(prefix_ref = PluginModuleRef)))]
#[sabi(missing_field(option))]
pub struct PluginModule {
    /// The plugin's manifest as JSON: name, kinds, version, config and secrets JSON Schemas.
    pub manifest_json: extern "C" fn() -> RString,
    /// Test only (feature `__test-layout-break`): a field the host's layout does not have.
    #[cfg(feature = "__test-layout-break")]
    pub layout_break: u64,
    /// Called once before anything else: host callbacks and settings (JSON: worker threads...).
    pub init: extern "C" fn(host: HostApi, settings_json: RStr<'_>) -> FfiResult<()>,
    /// Opens the plugin's source with resolved config and secrets (two JSON objects).
    /// `UNSUPPORTED` if the plugin has no source.
    pub open_source:
        extern "C" fn(config_json: RStr<'_>, secrets_json: RStr<'_>) -> FfiResult<FfiSource>,
    /// Opens the plugin's destination with resolved config and secrets.
    /// `UNSUPPORTED` if the plugin has no destination.
    pub open_destination:
        extern "C" fn(config_json: RStr<'_>, secrets_json: RStr<'_>) -> FfiResult<FfiDestination>,
    /// Flushes and stops background work. Not an unload: libraries are never unloaded.
    #[sabi(last_prefix_field)]
    pub shutdown: extern "C" fn() -> FfiResult<()>,
}

impl PluginModule {
    /// The root module of ABI 1.0 from its functions.
    pub const fn new(
        manifest_json: extern "C" fn() -> RString,
        init: extern "C" fn(host: HostApi, settings_json: RStr<'_>) -> FfiResult<()>,
        open_source: extern "C" fn(RStr<'_>, RStr<'_>) -> FfiResult<FfiSource>,
        open_destination: extern "C" fn(RStr<'_>, RStr<'_>) -> FfiResult<FfiDestination>,
        shutdown: extern "C" fn() -> FfiResult<()>,
    ) -> Self {
        Self {
            manifest_json,
            #[cfg(feature = "__test-layout-break")]
            layout_break: 0,
            init,
            open_source,
            open_destination,
            shutdown,
        }
    }
}

impl RootModule for PluginModuleRef {
    abi_stable::declare_root_module_statics! {PluginModuleRef}
    const BASE_NAME: &'static str = "sluice_plugin";
    const NAME: &'static str = "sluice_plugin";
    // Only the major matters to abi_stable's check; our own minor lives in the declaration, and
    // any two minors of one major interoperate.
    const VERSION_STRINGS: VersionStrings = VersionStrings::new("1.0.0");
}

const _: () = assert!(
    crate::ABI_MAJOR == 1,
    "update VERSION_STRINGS with the ABI major"
);

/// The layout check of a library failed: its root module (or a type reachable from it) does not
/// match ours although it declared the same ABI version.
#[derive(Debug, Clone)]
pub struct LayoutError {
    /// The few lines that say what differs (abi_stable's `Error:` lines with their
    /// expected/found values).
    pub summary: String,
    /// abi_stable's full report (kilobytes of type layouts), for debug logs.
    pub full: String,
}

impl std::fmt::Display for LayoutError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.summary)
    }
}

impl std::error::Error for LayoutError {}

/// Reads the root module of the library at `path` through abi_stable's checks (abi_stable
/// version, library version, recursive type-layout comparison) and returns it.
///
/// Never uses `RootModule::load_from*`, which caches the first module per type and would return
/// it for every later path.
///
/// # Safety
///
/// Loading a library runs its initializers; the caller must trust the library (the registry
/// checks the declaration before calling this).
pub unsafe fn load_root_module(path: &Path) -> Result<PluginModuleRef, LayoutError> {
    let header = lib_header_from_path(path).map_err(summarize)?;
    header
        .init_root_module::<PluginModuleRef>()
        .map_err(summarize)
}

fn summarize(err: LibraryError) -> LayoutError {
    let full = err.to_string();
    let lines: Vec<&str> = full.lines().collect();
    let mut picked: Vec<String> = Vec::new();
    let mut i = 0;
    while i < lines.len() && picked.len() < 4 {
        let line = lines[i].trim();
        let Some(what) = line.strip_prefix("Error:") else {
            i += 1;
            continue;
        };
        // abi_stable prints "Expected:" and "Found:" blocks of indented lines after the error
        let mut expected = Vec::new();
        let mut found = Vec::new();
        let mut current: Option<&mut Vec<String>> = None;
        let mut j = i + 1;
        while j < lines.len() {
            let l = lines[j].trim();
            if l.starts_with("Error:") {
                break;
            }
            if l == "Expected:" {
                current = Some(&mut expected);
            } else if l == "Found:" {
                current = Some(&mut found);
            } else if l.is_empty() {
                current = None;
            } else if let Some(block) = current.as_deref_mut() {
                if block.len() < 2 {
                    block.push(l.to_string());
                }
            }
            j += 1;
        }
        let mut entry = format!("  {}", what.trim());
        if !expected.is_empty() || !found.is_empty() {
            entry.push_str(&format!(
                " (expected `{}`, found `{}`)",
                expected.join(" "),
                found.join(" ")
            ));
        }
        if !picked.contains(&entry) {
            picked.push(entry);
        }
        i = j;
    }
    let summary = if picked.is_empty() {
        full.lines().take(3).collect::<Vec<_>>().join(" ")
    } else {
        picked.join("\n")
    };
    LayoutError { summary, full }
}
