//! The plugin side of the boundary: [`Plugin`], the per-plugin [`PluginState`], the guard
//! around every exported function, and the vtables that fill the ABI's objects.
//!
//! One file per ABI area, named after the file of `sluice-abi` that declares what it fills:
//!
//! | file | fills (`sluice_abi`) | host-side wrapper (`sluice-registry`) |
//! |---|---|---|
//! | `root.rs` | `PluginModule` (`root.rs`): `manifest_json`, `init`, `open_*`, `shutdown` | the loader |
//! | `source.rs` | `FfiSource` (`source.rs`) | `ForeignSource` |
//! | `stream.rs` | `FfiResourceStream` (`source.rs`) and its `ArrowArrayStream` (`arrow_c.rs`) | `ForeignStream` |
//! | `destination.rs` | `FfiDestination`, `FfiDestinationClient` (`destination.rs`) | `ForeignDestination`, `ForeignClient` |
//!
//! # Ownership
//!
//! Objects handed to the host are boxes owned by the host until it calls `release`, which
//! drops the box here, in the plugin. Each `private_data` pointer is only ever passed back to
//! the functions of the vtable it came with, which is what the `# Safety` sections of the
//! exported functions rely on. The Arrow stream of a resource and its wrapper share one
//! `Arc`ed state, so either may be released first.
//!
//! # Panics
//!
//! Every `extern "C"` function body runs under [`std::panic::catch_unwind`] (a panic escaping
//! an `extern "C"` function would abort the host). A caught panic becomes
//! [`ErrorCode::PANIC`] and poisons the plugin: every later call answers
//! [`ErrorCode::POISONED`], while the host and other plugins keep working.

use std::any::Any;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock};

use serde_json::Value;
use sluice_abi::{ErrorCode, FfiResult, HostApi, RResult};

use crate::destination::Destination;
use crate::manifest::{self, Manifest};
use crate::source::Source;
use crate::{Error, Result};

mod destination;
mod root;
mod source;
mod stream;

pub use destination::{export_client, export_destination};
#[doc(hidden)]
pub use root::{init, manifest_json, open_destination, open_source, shutdown};
pub use source::export_source;
pub use stream::export_stream;

type SourceCtor = Box<dyn Fn(Value, Value) -> Result<Arc<dyn Source>> + Send + Sync>;
type DestinationCtor = Box<dyn Fn(Value, Value) -> Result<Arc<dyn Destination>> + Send + Sync>;

/// What a plugin offers: its manifest and constructors for its source and/or destination.
///
/// ```
/// use sluice_sdk::{Plugin, Source, ResourceDescriptor, ResourceRequest, StreamContext, BatchStream, Result};
///
/// struct Hello;
/// impl Source for Hello {
///     fn describe(&self) -> Result<Vec<ResourceDescriptor>> {
///         Ok(vec![ResourceDescriptor::new("hello")])
///     }
///     fn open_resource(&self, _req: ResourceRequest, _ctx: StreamContext) -> Result<BatchStream> {
///         Ok(BatchStream::from_batches(sluice_sdk::json_schema(), Vec::new(), None))
///     }
/// }
///
/// pub fn plugin() -> Plugin {
///     Plugin::new("name = \"hello\"\nkind = \"source\"\n", "0.1.0")
///         .source(|_config, _secrets| Ok(Hello))
/// }
/// # let _ = plugin();
/// ```
pub struct Plugin {
    manifest: Result<Manifest>,
    source: Option<SourceCtor>,
    destination: Option<DestinationCtor>,
}

impl std::fmt::Debug for Plugin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Plugin")
            .field("manifest", &self.manifest)
            .finish_non_exhaustive()
    }
}

impl Plugin {
    /// A plugin described by `manifest_toml` (the contents of its `sluice-plugin.toml`, usually
    /// `include_str!`ed) at `version` (usually `env!("CARGO_PKG_VERSION")`).
    pub fn new(manifest_toml: &str, version: &str) -> Self {
        let manifest = Manifest::from_toml(manifest_toml).map(|mut m| {
            if m.version.is_empty() {
                m.version = version.to_string();
            }
            m
        });
        Self {
            manifest,
            source: None,
            destination: None,
        }
    }

    /// Registers the source constructor: it gets the resolved config and secrets (validated
    /// against the manifest first).
    pub fn source<S, F>(mut self, open: F) -> Self
    where
        S: Source,
        F: Fn(Value, Value) -> Result<S> + Send + Sync + 'static,
    {
        self.source = Some(Box::new(move |c, s| {
            Ok(Arc::new(open(c, s)?) as Arc<dyn Source>)
        }));
        self
    }

    /// Registers the destination constructor.
    pub fn destination<D, F>(mut self, open: F) -> Self
    where
        D: Destination,
        F: Fn(Value, Value) -> Result<D> + Send + Sync + 'static,
    {
        self.destination = Some(Box::new(move |c, s| {
            Ok(Arc::new(open(c, s)?) as Arc<dyn Destination>)
        }));
        self
    }

    /// The manifest.
    pub fn manifest(&self) -> Result<&Manifest> {
        self.manifest.as_ref().map_err(Clone::clone)
    }

    fn validated(&self, config: &str, secrets: &str) -> Result<(&Manifest, Value, Value)> {
        let m = self.manifest()?;
        let config: Value = parse_json_object(config, "config")?;
        let secrets: Value = parse_json_object(secrets, "secrets")?;
        manifest::validate(
            &m.config,
            &config,
            &format!("config of {} `{}`", m.kind, m.name),
        )?;
        manifest::validate(
            &m.secrets,
            &secrets,
            &format!("secrets of {} `{}`", m.kind, m.name),
        )?;
        Ok((m, config, secrets))
    }

    /// Opens the source directly (for tests and statically linked hosts).
    pub fn open_source(&self, config: Value, secrets: Value) -> Result<Arc<dyn Source>> {
        let (m, c, s) = self.validated(&config.to_string(), &secrets.to_string())?;
        let open = self
            .source
            .as_ref()
            .ok_or_else(|| Error::unsupported(format!("plugin `{}` has no source", m.name)))?;
        open(c, s)
    }

    /// Opens the destination directly (for tests and statically linked hosts).
    pub fn open_destination(&self, config: Value, secrets: Value) -> Result<Arc<dyn Destination>> {
        let (m, c, s) = self.validated(&config.to_string(), &secrets.to_string())?;
        let open = self
            .destination
            .as_ref()
            .ok_or_else(|| Error::unsupported(format!("plugin `{}` has no destination", m.name)))?;
        open(c, s)
    }
}

fn parse_json_object(text: &str, what: &str) -> Result<Value> {
    if text.trim().is_empty() {
        return Ok(Value::Object(Default::default()));
    }
    serde_json::from_str(text)
        .map_err(|e| Error::config(format!("the host sent invalid {what} JSON: {e}")))
}

/// Per-plugin state behind the exported functions: the plugin, its poison flag, the host's
/// callbacks and the plugin's runtime. One static per plugin, created by
/// [`declare_plugin!`](crate::declare_plugin).
pub struct PluginState {
    poisoned: AtomicBool,
    name: OnceLock<String>,
    host: OnceLock<HostApi>,
    runtime: OnceLock<tokio::runtime::Runtime>,
    plugin: OnceLock<Plugin>,
}

impl std::fmt::Debug for PluginState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PluginState")
            .field("name", &self.name.get())
            .field("poisoned", &self.is_poisoned())
            .finish()
    }
}

impl PluginState {
    /// An empty state (for a `static`).
    #[allow(clippy::new_without_default)]
    pub const fn new() -> Self {
        Self {
            poisoned: AtomicBool::new(false),
            name: OnceLock::new(),
            host: OnceLock::new(),
            runtime: OnceLock::new(),
            plugin: OnceLock::new(),
        }
    }

    /// Whether a panic poisoned the plugin.
    pub fn is_poisoned(&self) -> bool {
        self.poisoned.load(Ordering::Acquire)
    }

    fn poison(&self) {
        self.poisoned.store(true, Ordering::Release);
    }

    /// The plugin name (from its manifest), once known.
    pub fn name(&self) -> &str {
        self.name
            .get()
            .map(String::as_str)
            .unwrap_or("(unnamed plugin)")
    }

    /// The host's callbacks, after `init`.
    pub fn host(&self) -> Option<&HostApi> {
        self.host.get()
    }

    /// The plugin's runtime (created with defaults if `init` did not create it).
    pub fn runtime(&self) -> tokio::runtime::Handle {
        if let Some(rt) = self.runtime.get() {
            return rt.handle().clone();
        }
        match crate::runtime::build(self.name(), 2) {
            Ok(rt) => {
                // another thread may have won the race; its runtime is as good as ours
                let _ = self.runtime.set(rt);
                match self.runtime.get() {
                    Some(rt) => rt.handle().clone(),
                    None => crate::runtime::fallback_handle(),
                }
            }
            Err(_) => crate::runtime::fallback_handle(),
        }
    }

    fn plugin(&self, ctor: fn() -> Plugin) -> &Plugin {
        let plugin = self.plugin.get_or_init(ctor);
        if self.name.get().is_none() {
            if let Ok(m) = plugin.manifest() {
                let _ = self.name.set(m.name.clone());
            }
        }
        plugin
    }
}

fn panic_message(payload: &(dyn Any + Send)) -> String {
    if let Some(s) = payload.downcast_ref::<&str>() {
        (*s).to_string()
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s.clone()
    } else {
        "(non-string panic payload)".to_string()
    }
}

/// Turns a caught panic into an error and poisons the plugin.
pub(crate) fn panic_error(
    state: Option<&PluginState>,
    payload: &(dyn Any + Send),
    what: &str,
) -> Error {
    let name = state
        .map(PluginState::name)
        .unwrap_or("(plugin)")
        .to_string();
    if let Some(s) = state {
        s.poison();
    }
    Error::new(
        ErrorCode::PANIC,
        format!(
            "plugin `{name}` panicked {what}: {}; the plugin is now disabled for this process \
             (hint: this is a bug in the plugin, report it with the message above)",
            panic_message(payload)
        ),
    )
}

fn poisoned_error(state: &PluginState) -> Error {
    Error::new(
        ErrorCode::POISONED,
        format!(
            "plugin `{}` panicked earlier and was disabled; restart the process to use it again",
            state.name()
        ),
    )
}

/// Runs `f` for an exported function: refuses when poisoned, catches panics (poisoning), and
/// converts errors to [`FfiError`](sluice_abi::FfiError).
pub fn guard<T>(state: &PluginState, what: &str, f: impl FnOnce() -> Result<T>) -> FfiResult<T> {
    if state.is_poisoned() {
        return RResult::RErr(poisoned_error(state).into());
    }
    match catch_unwind(AssertUnwindSafe(f)) {
        Ok(Ok(v)) => RResult::ROk(v),
        Ok(Err(e)) => RResult::RErr(e.into()),
        Err(payload) => RResult::RErr(panic_error(Some(state), payload.as_ref(), what).into()),
    }
}

/// Runs a release function: never unwinds (a panic while freeing is logged and swallowed).
fn guard_release(f: impl FnOnce()) {
    let _ = catch_unwind(AssertUnwindSafe(f));
}
