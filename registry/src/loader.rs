//! Loading a plugin library, with the checks in order:
//!
//! 1. manifest: ABI major, platform library present, optional sha256 — no code loaded;
//! 2. `dlopen(RTLD_NOW | RTLD_LOCAL | RTLD_NODELETE)`: missing symbols fail here, with the
//!    loader's message; each plugin keeps its own std, tokio and arrow private;
//! 3. the `sluice_plugin_declaration` static: magic, ABI major, `panic = "unwind"` — still no
//!    plugin function has run;
//! 4. abi_stable's header and recursive layout check of the root module;
//! 5. `manifest_json` cross-checked with the manifest, then `init` with the host callbacks.
//!
//! Libraries are never unloaded (unloading Rust libraries with thread-locals is unsound), so a
//! loaded plugin lives as long as the process; loading the same file twice returns the same
//! instance.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, OnceLock};

use serde_json::Value;
use sluice_abi::{PluginDeclaration, PluginModuleRef, RStr, DECLARATION_SYMBOL};

use crate::error::{Error, Result};
use crate::foreign::{ForeignDestination, ForeignSource};
use crate::manifest::PluginManifest;

/// A plugin library that passed every check and was initialized.
pub struct LoadedPlugin {
    /// Its manifest (from the file, or from the library when loaded by explicit path).
    pub manifest: PluginManifest,
    /// The library file (canonical).
    pub library: PathBuf,
    /// What the library declared.
    pub declaration: PluginDeclaration,
    /// The manifest the library itself returned.
    pub manifest_json: Value,
    module: PluginModuleRef,
    poisoned: AtomicBool,
}

impl std::fmt::Debug for LoadedPlugin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LoadedPlugin")
            .field("name", &self.manifest.name)
            .field("library", &self.library)
            .finish()
    }
}

impl LoadedPlugin {
    /// The plugin name.
    pub fn name(&self) -> &str {
        &self.manifest.name
    }

    /// Whether a panic inside the plugin disabled it.
    pub fn is_poisoned(&self) -> bool {
        self.poisoned.load(Ordering::Acquire)
    }

    pub(crate) fn note_error(&self, e: &sluice_sdk::Error) {
        if e.code == sluice_abi::ErrorCode::PANIC || e.code == sluice_abi::ErrorCode::POISONED {
            self.poisoned.store(true, Ordering::Release);
        }
    }

    /// Opens the plugin's source with resolved config and secrets (JSON objects).
    pub fn open_source(self: &Arc<Self>, config: &Value, secrets: &Value) -> Result<ForeignSource> {
        let config = config.to_string();
        let secrets = secrets.to_string();
        let result =
            (self.module.open_source())(RStr::from(config.as_str()), RStr::from(secrets.as_str()));
        match result.into_result() {
            Ok(ffi) => Ok(ForeignSource::new(ffi, self.clone())),
            Err(e) => {
                let e = sluice_sdk::Error::from(e);
                self.note_error(&e);
                Err(Error::Plugin(e))
            }
        }
    }

    /// Opens the plugin's destination with resolved config and secrets.
    pub fn open_destination(
        self: &Arc<Self>,
        config: &Value,
        secrets: &Value,
    ) -> Result<ForeignDestination> {
        let config = config.to_string();
        let secrets = secrets.to_string();
        let result = (self.module.open_destination())(
            RStr::from(config.as_str()),
            RStr::from(secrets.as_str()),
        );
        match result.into_result() {
            Ok(ffi) => Ok(ForeignDestination::new(ffi, self.clone())),
            Err(e) => {
                let e = sluice_sdk::Error::from(e);
                self.note_error(&e);
                Err(Error::Plugin(e))
            }
        }
    }

    /// Asks the plugin to flush and stop background work (it stays loaded).
    pub fn shutdown(&self) -> Result<()> {
        (self.module.shutdown())()
            .into_result()
            .map_err(|e| Error::Plugin(e.into()))
    }
}

fn loaded() -> &'static Mutex<HashMap<PathBuf, Arc<LoadedPlugin>>> {
    static LOADED: OnceLock<Mutex<HashMap<PathBuf, Arc<LoadedPlugin>>>> = OnceLock::new();
    LOADED.get_or_init(|| Mutex::new(HashMap::new()))
}

fn load_error(name: &str, path: &Path, message: impl Into<String>) -> Error {
    Error::Load {
        name: name.to_string(),
        path: path.to_path_buf(),
        message: message.into(),
    }
}

fn sha256_hex(path: &Path) -> std::io::Result<String> {
    use sha2::{Digest, Sha256};
    let bytes = std::fs::read(path)?;
    let digest = Sha256::digest(&bytes);
    Ok(digest.iter().map(|b| format!("{b:02x}")).collect())
}

/// Reads the declaration of the library at `path` (step 2 and 3). The library stays loaded.
pub fn read_declaration(name: &str, path: &Path) -> Result<PluginDeclaration> {
    // SAFETY: opening a library runs its initializers; sluice plugins have no life before main
    // (the SDK does all setup in `init`). RTLD_NODELETE keeps it mapped forever.
    let lib = unsafe {
        libloading::os::unix::Library::open(
            Some(path),
            libloading::os::unix::RTLD_NOW | libloading::os::unix::RTLD_LOCAL | libc::RTLD_NODELETE,
        )
    }
    .map_err(|e| {
        load_error(
            name,
            path,
            format!("{e}\nhint: the library or one of its dependencies is missing or was built for another platform"),
        )
    })?;
    // SAFETY: we only read the address of a static; its layout is checked below before use.
    let symbol = unsafe { lib.get::<*const PluginDeclaration>(DECLARATION_SYMBOL) };
    let decl_ptr = match symbol {
        Ok(s) => *s,
        Err(_) => {
            std::mem::forget(lib);
            return Err(load_error(
                name,
                path,
                "it exports no `sluice_plugin_declaration`: not a sluice plugin\nhint: plugins are built with `sluice_sdk::export_plugin!`",
            ));
        }
    };
    // never unload: the library's code and statics must outlive everything that points into it
    std::mem::forget(lib);
    if decl_ptr.is_null() {
        return Err(load_error(name, path, "its declaration is null"));
    }
    // SAFETY: the first 8 bytes of any sluice declaration are the magic; read those first.
    let magic = unsafe { std::ptr::read_unaligned(decl_ptr as *const [u8; 8]) };
    if magic != sluice_abi::MAGIC {
        return Err(load_error(
            name,
            path,
            "its `sluice_plugin_declaration` has the wrong magic: not a sluice plugin or a corrupted file",
        ));
    }
    // SAFETY: the magic matches, so the plugin wrote at least the fixed v1 prefix of the struct.
    let size = unsafe { std::ptr::read_unaligned(&(*decl_ptr).decl_size) } as usize;
    if size < std::mem::size_of::<PluginDeclaration>() {
        return Err(load_error(
            name,
            path,
            format!(
                "its declaration is {size} bytes, older than this sluice reads; rebuild the plugin"
            ),
        ));
    }
    // SAFETY: the plugin's declaration is at least as large as ours.
    Ok(unsafe { std::ptr::read_unaligned(decl_ptr) })
}

/// Loads (or returns the already loaded) plugin of `manifest`, running every check.
pub fn load(manifest: &PluginManifest, settings: &Value) -> Result<Arc<LoadedPlugin>> {
    let name = manifest.name.as_str();
    if manifest.abi.0 != sluice_abi::ABI_MAJOR {
        return Err(Error::AbiMismatch {
            name: name.into(),
            path: manifest
                .library
                .clone()
                .unwrap_or_else(|| manifest.path.clone()),
            plugin_major: manifest.abi.0,
            plugin_minor: manifest.abi.1,
            host_major: sluice_abi::ABI_MAJOR,
            host_minor: sluice_abi::ABI_MINOR,
            plugin_rustc: "unknown (checked from the manifest, the library was not loaded)".into(),
            host_rustc: sluice_abi::PluginDeclaration::current().rustc_version(),
        });
    }
    let library = manifest.library.clone().ok_or_else(|| {
        load_error(
            name,
            &manifest.path,
            format!(
                "its manifest has no library for platform `{}`",
                crate::manifest::platform_key()
            ),
        )
    })?;
    let library = library.canonicalize().map_err(|e| {
        load_error(
            name,
            &library,
            format!(
                "{e}\nhint: build the plugin, or fix `[library]` in `{}`",
                manifest.path.display()
            ),
        )
    })?;
    load_library(manifest.clone(), &library, settings)
}

pub(crate) fn load_library(
    manifest: PluginManifest,
    library: &Path,
    settings: &Value,
) -> Result<Arc<LoadedPlugin>> {
    let name = manifest.name.clone();
    // dlerror is not thread-safe everywhere: load under one lock
    let mut cache = loaded()
        .lock()
        .map_err(|_| load_error(&name, library, "the plugin registry lock is poisoned"))?;
    if let Some(p) = cache.get(library) {
        return Ok(p.clone());
    }
    if let Some(expected) = &manifest.sha256 {
        let actual = sha256_hex(library).map_err(|e| load_error(&name, library, e.to_string()))?;
        if !actual.eq_ignore_ascii_case(expected) {
            return Err(load_error(
                &name,
                library,
                format!("its sha256 is {actual} but the manifest expects {expected}; the file was changed or replaced"),
            ));
        }
    }
    let declaration = read_declaration(&name, library)?;
    let host = PluginDeclaration::current();
    if declaration.abi_major != sluice_abi::ABI_MAJOR {
        return Err(Error::AbiMismatch {
            name,
            path: library.to_path_buf(),
            plugin_major: declaration.abi_major,
            plugin_minor: declaration.abi_minor,
            host_major: sluice_abi::ABI_MAJOR,
            host_minor: sluice_abi::ABI_MINOR,
            plugin_rustc: declaration.rustc_version(),
            host_rustc: host.rustc_version(),
        });
    }
    if declaration.panic_unwind != 1 {
        return Err(load_error(
            &name,
            library,
            "it was built with `panic = \"abort\"`, so a panic inside it would kill sluice\nhint: build plugins with `panic = \"unwind\"` in every profile",
        ));
    }
    // SAFETY: the declaration says this is a sluice plugin of our ABI; abi_stable now checks
    // the layouts recursively before we call anything.
    let module = unsafe { sluice_abi::load_root_module(library) }.map_err(|e| {
        tracing::debug!(target: "sluice::registry", plugin = %name, report = %e.full, "layout check failed");
        Error::Layout {
            name: name.clone(),
            path: library.to_path_buf(),
            major: declaration.abi_major,
            summary: e.summary,
        }
    })?;
    if declaration.layout_fingerprint != host.layout_fingerprint {
        return Err(Error::Layout {
            name,
            path: library.to_path_buf(),
            major: declaration.abi_major,
            summary: format!(
                "layout fingerprint {:#x} differs from this sluice's {:#x}",
                declaration.layout_fingerprint, host.layout_fingerprint
            ),
        });
    }
    let manifest_json: Value =
        serde_json::from_str((module.manifest_json())().as_str()).map_err(|e| {
            load_error(
                &name,
                library,
                format!("its manifest_json is not JSON: {e}"),
            )
        })?;
    if let Some(err) = manifest_json.get("error").and_then(Value::as_str) {
        return Err(load_error(
            &name,
            library,
            format!("its embedded manifest is invalid: {err}"),
        ));
    }
    let embedded = manifest_json
        .get("name")
        .and_then(Value::as_str)
        .unwrap_or("");
    if embedded != name {
        return Err(load_error(
            &name,
            library,
            format!("the library says it is plugin `{embedded}`, but its manifest names `{name}`; the manifest belongs to another library"),
        ));
    }
    let settings_text = settings.to_string();
    (module.init())(
        crate::host::host_api(&name),
        RStr::from(settings_text.as_str()),
    )
    .into_result()
    .map_err(|e| Error::Plugin(e.into()))?;
    let plugin = Arc::new(LoadedPlugin {
        manifest,
        library: library.to_path_buf(),
        declaration,
        manifest_json,
        module,
        poisoned: AtomicBool::new(false),
    });
    cache.insert(library.to_path_buf(), plugin.clone());
    tracing::debug!(target: "sluice::registry", plugin = %plugin.name(), library = %library.display(), "plugin loaded");
    Ok(plugin)
}

/// A manifest built from the library itself (explicit path without a manifest file). Loads
/// the library through the declaration and layout checks to read it.
pub(crate) fn manifest_from_library(library: &Path) -> Result<PluginManifest> {
    let name = library
        .file_stem()
        .and_then(|s| s.to_str())
        .unwrap_or("plugin")
        .trim_start_matches("lib")
        .to_string();
    let decl = read_declaration(&name, library)?;
    if decl.abi_major != sluice_abi::ABI_MAJOR {
        return Err(Error::AbiMismatch {
            name,
            path: library.to_path_buf(),
            plugin_major: decl.abi_major,
            plugin_minor: decl.abi_minor,
            host_major: sluice_abi::ABI_MAJOR,
            host_minor: sluice_abi::ABI_MINOR,
            plugin_rustc: decl.rustc_version(),
            host_rustc: PluginDeclaration::current().rustc_version(),
        });
    }
    // SAFETY: declaration checked; abi_stable checks layouts before we call manifest_json.
    let module = unsafe { sluice_abi::load_root_module(library) }.map_err(|e| {
        tracing::debug!(target: "sluice::registry", plugin = %name, report = %e.full, "layout check failed");
        Error::Layout {
            name: name.clone(),
            path: library.to_path_buf(),
            major: decl.abi_major,
            summary: e.summary,
        }
    })?;
    let json: Value = serde_json::from_str((module.manifest_json())().as_str()).map_err(|e| {
        load_error(
            &name,
            library,
            format!("its manifest_json is not JSON: {e}"),
        )
    })?;
    let m: sluice_sdk::manifest::Manifest = serde_json::from_value(json.clone()).map_err(|e| {
        load_error(
            &name,
            library,
            format!("its embedded manifest is invalid: {e}"),
        )
    })?;
    Ok(PluginManifest {
        path: library.to_path_buf(),
        name: m.name,
        kind: m.kind,
        version: m.version,
        description: m.description,
        abi: (decl.abi_major, decl.abi_minor),
        library: Some(library.to_path_buf()),
        sha256: None,
        config: m.config,
        secrets: m.secrets,
    })
}
