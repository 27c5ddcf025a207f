//! Loading a plugin library, with the checks in order:
//!
//! 1. manifest: ABI major, platform library present, optional sha256 — no code loaded;
//! 2. `dlopen(RTLD_NOW | RTLD_LOCAL | RTLD_NODELETE)`: missing symbols fail here, with the
//!    loader's message; each plugin keeps its own std, tokio and arrow private. The library is
//!    opened once, and every later step reads through that one loaded object (abi_stable's
//!    `dlopen` of the same name returns it: the dynamic loader matches loaded objects by name);
//! 3. the `sluice_plugin_declaration` static: magic, ABI major, `panic = "unwind"` — still no
//!    plugin function has run;
//! 4. abi_stable's header and recursive layout check of the root module;
//! 5. `manifest_json` cross-checked with the manifest, then `init` with the host callbacks.
//!
//! A manifest that pins the library's sha256 gets the bytes it checked, not whatever the path
//! holds a moment later: the file is opened once and copied through the hash into a sealed
//! `memfd` (no write, grow, shrink or further seals), the digest is compared, and the loader
//! maps that memfd (`dlopen("/proc/self/fd/N")`). Replacing the file (rename) or rewriting it in
//! place after the check changes nothing that is loaded. The memfd stays open for the life of
//! the process, so its `/proc/self/fd/N` name can never name another library (the dynamic loader
//! would hand out the first one for the same name). The price is the library's size in memory
//! for pinned plugins; unpinned plugins load from their path. (Off Linux there is no memfd: the
//! file is hashed, then loaded by path, which is not race-free.)
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
    /// What the dynamic loader mapped: `library`, or for a library pinned by sha256 the sealed
    /// in-memory copy that was checked (`/proc/self/fd/N`).
    pub loaded_from: PathBuf,
    /// What the library declared.
    pub declaration: PluginDeclaration,
    /// The manifest the library itself returned.
    pub manifest_json: Value,
    module: PluginModuleRef,
    poisoned: AtomicBool,
    /// The sha256 the loaded bytes were checked against, for a pinned library.
    verified_sha256: Option<String>,
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

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn sha_mismatch(name: &str, library: &Path, actual: &str, expected: &str) -> Error {
    load_error(
        name,
        library,
        format!("its sha256 is {actual} but the manifest expects {expected}; the file was changed or replaced, so it is not loaded\nhint: reinstall the plugin, or update `[library.sha256]` in its manifest if you replaced the library on purpose"),
    )
}

/// Opens `library` once, copies it through sha256 into a sealed memfd, compares the digest with
/// `expected`, and returns the path the dynamic loader can map the copy by
/// (`/proc/self/fd/N`). The memfd is kept open for the rest of the process.
#[cfg(target_os = "linux")]
fn pinned_copy(name: &str, library: &Path, expected: &str) -> Result<PathBuf> {
    use sha2::{Digest, Sha256};
    use std::io::{Read, Write};
    use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};

    let io = |what: &str, e: std::io::Error| load_error(name, library, format!("{what}: {e}"));
    let mut file = std::fs::File::open(library).map_err(|e| io("cannot open it", e))?;
    let meta = file.metadata().map_err(|e| io("cannot stat it", e))?;
    if !meta.is_file() {
        return Err(load_error(name, library, "it is not a regular file"));
    }
    let memfd_name = std::ffi::CString::new(format!("sluice-plugin-{name}"))
        .unwrap_or_else(|_| c"sluice-plugin".to_owned());
    // SAFETY: a plain syscall with a valid C string; the result is checked.
    let fd = unsafe {
        libc::memfd_create(
            memfd_name.as_ptr(),
            libc::MFD_CLOEXEC | libc::MFD_ALLOW_SEALING,
        )
    };
    if fd < 0 {
        return Err(io(
            "cannot create the in-memory copy it is checked and loaded from",
            std::io::Error::last_os_error(),
        ));
    }
    // SAFETY: `fd` was just created and is owned by nothing else.
    let mut copy = unsafe { std::fs::File::from_raw_fd(fd) };
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = match file.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(io("cannot read it", e)),
        };
        hasher.update(&buf[..n]);
        copy.write_all(&buf[..n])
            .map_err(|e| io("cannot copy it to memory", e))?;
    }
    drop(file);
    let actual = hex(&hasher.finalize());
    if !actual.eq_ignore_ascii_case(expected) {
        return Err(sha_mismatch(name, library, &actual, expected));
    }
    let seals = libc::F_SEAL_SEAL | libc::F_SEAL_SHRINK | libc::F_SEAL_GROW | libc::F_SEAL_WRITE;
    // SAFETY: fcntl on a valid fd we own.
    if unsafe { libc::fcntl(copy.as_raw_fd(), libc::F_ADD_SEALS, seals) } != 0 {
        return Err(io(
            "cannot seal its in-memory copy",
            std::io::Error::last_os_error(),
        ));
    }
    let mut fd: OwnedFd = copy.into();
    // The loader matches loaded objects by name first. Our fd number cannot name one of ours
    // (those fds stay open), but should anything else in this process have loaded a
    // `/proc/self/fd/N` and closed N, take another number.
    let mut tried: Vec<OwnedFd> = Vec::new();
    let path = loop {
        let path = PathBuf::from(format!("/proc/self/fd/{}", fd.as_raw_fd()));
        let c = std::ffi::CString::new(path.as_os_str().to_string_lossy().as_bytes())
            .map_err(|e| load_error(name, library, e.to_string()))?;
        // SAFETY: RTLD_NOLOAD maps nothing and runs no code; it only looks the name up.
        let existing = unsafe { libc::dlopen(c.as_ptr(), libc::RTLD_NOLOAD | libc::RTLD_LAZY) };
        if existing.is_null() {
            break path;
        }
        // SAFETY: drops the reference the lookup took.
        unsafe { libc::dlclose(existing) };
        if tried.len() >= 16 {
            return Err(load_error(
                name,
                library,
                "no free name to load its checked copy by",
            ));
        }
        let next = fd
            .try_clone()
            .map_err(|e| io("cannot duplicate a descriptor", e))?;
        tried.push(std::mem::replace(&mut fd, next));
    };
    drop(tried);
    if !path.exists() {
        return Err(load_error(
            name,
            library,
            "/proc is not mounted, so its checked copy cannot be loaded",
        ));
    }
    // the name must stay unique for the life of the process: this fd is never closed (if the
    // load fails below, the copy is kept too; loads are few and failures end the command)
    let _ = std::os::fd::IntoRawFd::into_raw_fd(fd);
    Ok(path)
}

/// Off Linux: hash the file, then load it by path (not race-free: see the module docs).
#[cfg(not(target_os = "linux"))]
fn pinned_copy(name: &str, library: &Path, expected: &str) -> Result<PathBuf> {
    use sha2::{Digest, Sha256};
    let bytes = std::fs::read(library).map_err(|e| load_error(name, library, e.to_string()))?;
    let actual = hex(&Sha256::digest(&bytes));
    if !actual.eq_ignore_ascii_case(expected) {
        return Err(sha_mismatch(name, library, &actual, expected));
    }
    Ok(library.to_path_buf())
}

/// Reads the declaration of the library at `path` (step 2 and 3). The library stays loaded.
pub fn read_declaration(name: &str, path: &Path) -> Result<PluginDeclaration> {
    declaration_at(name, path, path)
}

/// [`read_declaration`] of the library the loader maps from `load_path`; errors name `shown`
/// (the file the user knows).
fn declaration_at(name: &str, shown: &Path, load_path: &Path) -> Result<PluginDeclaration> {
    let path = shown;
    // SAFETY: opening a library runs its initializers; sluice plugins have no life before main
    // (the SDK does all setup in `init`). RTLD_NODELETE keeps it mapped forever.
    let lib = unsafe {
        libloading::os::unix::Library::open(
            Some(load_path),
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
        // a pinned manifest only gets an instance whose bytes were checked against its digest
        if let Some(expected) = &manifest.sha256 {
            if !p
                .verified_sha256
                .as_deref()
                .is_some_and(|v| v.eq_ignore_ascii_case(expected))
            {
                return Err(load_error(
                    &name,
                    library,
                    format!("it was loaded earlier in this process without the check of sha256 {expected} its manifest `{}` asks for", manifest.path.display()),
                ));
            }
        }
        return Ok(p.clone());
    }
    // a pinned library is checked and loaded from one in-memory copy of one open file
    let load_path = match &manifest.sha256 {
        Some(expected) => pinned_copy(&name, library, expected)?,
        None => library.to_path_buf(),
    };
    let declaration = declaration_at(&name, library, &load_path)?;
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
    // the layouts recursively before we call anything. The same name reaches the object
    // opened above.
    let module = unsafe { sluice_abi::load_root_module(&load_path) }.map_err(|e| {
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
    let verified_sha256 = manifest.sha256.clone();
    let plugin = Arc::new(LoadedPlugin {
        manifest,
        library: library.to_path_buf(),
        loaded_from: load_path.clone(),
        declaration,
        manifest_json,
        module,
        poisoned: AtomicBool::new(false),
        verified_sha256,
    });
    cache.insert(library.to_path_buf(), plugin.clone());
    tracing::debug!(target: "sluice::registry", plugin = %plugin.name(), library = %library.display(), loaded_from = %load_path.display(), "plugin loaded");
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
        manifest: m,
        abi: (decl.abi_major, decl.abi_minor),
        library: Some(library.to_path_buf()),
        sha256: None,
    })
}
