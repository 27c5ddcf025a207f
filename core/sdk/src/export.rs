//! The plugin side of the boundary: [`Plugin`], the guard around every exported function, and
//! the vtables that expose [`Source`], [`BatchStream`] and [`Destination`] objects over the ABI.
//!
//! # Ownership
//!
//! Objects handed to the host are boxes owned by the host until it calls `release`, which
//! drops the box here, in the plugin. The Arrow stream of a resource and its wrapper share one
//! `Arc`ed state, so either may be released first.
//!
//! # Panics
//!
//! Every `extern "C"` function body runs under [`std::panic::catch_unwind`] (a panic escaping
//! an `extern "C"` function would abort the host). A caught panic becomes
//! [`ErrorCode::PANIC`] and poisons the plugin: every later call answers
//! [`ErrorCode::POISONED`], while the host and other plugins keep working.

use std::any::Any;
use std::ffi::{c_char, c_int, c_void, CString};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, OnceLock};

use arrow_array::ffi::{FFI_ArrowArray, FFI_ArrowSchema};
use arrow_array::ffi_stream::{FFI_ArrowArrayStream, RecordBatchStreamReader};
use arrow_array::{Array, StructArray};
use serde_json::Value;
use sluice_abi::{
    ArrowArray, ArrowArrayStream, ArrowSchema, DestinationClientVTable, DestinationClientVTableRef,
    DestinationVTable, DestinationVTableRef, ErrorCode, FfiCancel, FfiDestination,
    FfiDestinationClient, FfiError, FfiResourceStream, FfiResult, FfiSource, HostApi, ROption,
    RResult, RStr, RString, ResourceStreamVTable, ResourceStreamVTableRef, SourceVTable,
    SourceVTableRef, WithMetadata,
};

use crate::destination::{
    ClientRequest, Destination, DestinationClient, DropTablesRequest, LoadCompletion, LoadJob,
    LoadPlan, SchemaUpdateRequest,
};
use crate::manifest::{self, Manifest};
use crate::resource::ResourceRequest;
use crate::schema::Schema;
use crate::source::{BatchStream, Source, StreamContext};
use crate::{CancelToken, Error, Result};

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
/// converts errors to [`FfiError`].
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

// ---------------------------------------------------------------------------------------------
// root module functions, called from the `extern "C"` shims `declare_plugin!` generates

#[doc(hidden)]
pub fn manifest_json(state: &'static PluginState, ctor: fn() -> Plugin) -> RString {
    let out = catch_unwind(AssertUnwindSafe(|| match state.plugin(ctor).manifest() {
        Ok(m) => m.to_json().to_string(),
        Err(e) => serde_json::json!({ "error": e.message }).to_string(),
    }));
    RString::from(out.unwrap_or_else(|_| "{\"error\":\"manifest_json panicked\"}".into()))
}

#[doc(hidden)]
pub fn init(
    state: &'static PluginState,
    ctor: fn() -> Plugin,
    host: HostApi,
    settings_json: RStr<'_>,
) -> FfiResult<()> {
    guard(state, "in init", || {
        let plugin = state.plugin(ctor);
        plugin.manifest()?;
        let settings: Value = parse_json_object(settings_json.as_str(), "settings")?;
        if state.host.set(host).is_ok() {
            crate::bridge::install(state);
        }
        let workers = settings
            .get("worker_threads")
            .and_then(Value::as_u64)
            .unwrap_or(2) as usize;
        if state.runtime.get().is_none() {
            let rt = crate::runtime::build(state.name(), workers).map_err(|e| {
                Error::internal(format!(
                    "cannot start the runtime of `{}`: {e}",
                    state.name()
                ))
            })?;
            let _ = state.runtime.set(rt);
        }
        Ok(())
    })
}

#[doc(hidden)]
pub fn open_source(
    state: &'static PluginState,
    ctor: fn() -> Plugin,
    config_json: RStr<'_>,
    secrets_json: RStr<'_>,
) -> FfiResult<FfiSource> {
    guard(state, "while opening its source", || {
        let plugin = state.plugin(ctor);
        let (m, config, secrets) = plugin.validated(config_json.as_str(), secrets_json.as_str())?;
        let open = plugin.source.as_ref().ok_or_else(|| {
            Error::unsupported(format!("plugin `{}` is a {}, not a source", m.name, m.kind))
        })?;
        let source = open(config, secrets)?;
        Ok(export_source(source, state))
    })
}

#[doc(hidden)]
pub fn open_destination(
    state: &'static PluginState,
    ctor: fn() -> Plugin,
    config_json: RStr<'_>,
    secrets_json: RStr<'_>,
) -> FfiResult<FfiDestination> {
    guard(state, "while opening its destination", || {
        let plugin = state.plugin(ctor);
        let (m, config, secrets) = plugin.validated(config_json.as_str(), secrets_json.as_str())?;
        let open = plugin.destination.as_ref().ok_or_else(|| {
            Error::unsupported(format!(
                "plugin `{}` is a {}, not a destination",
                m.name, m.kind
            ))
        })?;
        let destination = open(config, secrets)?;
        Ok(export_destination(destination, state))
    })
}

#[doc(hidden)]
pub fn shutdown(state: &'static PluginState) -> FfiResult<()> {
    guard(state, "in shutdown", || {
        crate::bridge::flush();
        Ok(())
    })
}

// ---------------------------------------------------------------------------------------------
// sources

struct SourceBox {
    source: Arc<dyn Source>,
    state: &'static PluginState,
}

const SOURCE_VTABLE: &WithMetadata<SourceVTable> = &WithMetadata::new(SourceVTable {
    describe: source_describe,
    open_resource: source_open_resource,
    release: source_release,
});

/// Exposes `source` as an [`FfiSource`].
pub fn export_source(source: Arc<dyn Source>, state: &'static PluginState) -> FfiSource {
    let boxed = Box::new(SourceBox { source, state });
    FfiSource {
        vtable: SourceVTableRef(SOURCE_VTABLE.static_as_prefix()),
        private_data: Box::into_raw(boxed).cast(),
    }
}

unsafe extern "C" fn source_describe(this: *const c_void) -> FfiResult<RString> {
    // SAFETY: `this` is the SourceBox we handed out and the host still owns it.
    let b = unsafe { &*(this as *const SourceBox) };
    guard(b.state, "in describe", || {
        let resources = b.source.describe()?;
        Ok(RString::from(serde_json::to_string(&resources)?))
    })
}

unsafe extern "C" fn source_open_resource(
    this: *const c_void,
    request_json: RStr<'_>,
    cancel: FfiCancel,
) -> FfiResult<FfiResourceStream> {
    // SAFETY: `this` is the SourceBox we handed out.
    let b = unsafe { &*(this as *const SourceBox) };
    guard(b.state, "while opening a resource", || {
        let request: ResourceRequest = serde_json::from_str(request_json.as_str())
            .map_err(|e| Error::config(format!("invalid resource request from the host: {e}")))?;
        let ctx = StreamContext::for_plugin(CancelToken::from_ffi(cancel), b.state);
        let stream = b.source.open_resource(request, ctx)?;
        Ok(export_stream(stream, Some(b.state)))
    })
}

unsafe extern "C" fn source_release(this: *mut c_void) {
    guard_release(|| {
        // SAFETY: the host releases each source exactly once.
        drop(unsafe { Box::from_raw(this as *mut SourceBox) });
    });
}

// ---------------------------------------------------------------------------------------------
// resource streams

struct StreamShared {
    producer: Mutex<Option<BatchStream>>,
    last_error: Mutex<Option<Error>>,
    final_state: Mutex<Option<Value>>,
    finished: AtomicBool,
    state: Option<&'static PluginState>,
}

impl StreamShared {
    fn record(&self, e: Error) -> c_int {
        let code = if e.is_cancelled() {
            libc_errno::ECANCELED
        } else {
            libc_errno::EIO
        };
        if let Ok(mut g) = self.last_error.lock() {
            *g = Some(e);
        }
        code
    }

    fn run<T>(&self, what: &str, f: impl FnOnce(&mut BatchStream) -> Result<T>) -> Result<T> {
        if let Some(s) = self.state {
            if s.is_poisoned() {
                return Err(poisoned_error(s));
            }
        }
        let mut guard = self
            .producer
            .lock()
            .map_err(|_| Error::internal("resource stream state is poisoned"))?;
        let producer = guard
            .as_mut()
            .ok_or_else(|| Error::internal("the resource stream was already released"))?;
        match catch_unwind(AssertUnwindSafe(|| f(producer))) {
            Ok(r) => r,
            Err(payload) => Err(panic_error(self.state, payload.as_ref(), what)),
        }
    }
}

/// errno values used by the Arrow C stream (Linux/macOS agree on these).
mod libc_errno {
    use std::ffi::c_int;
    pub const EIO: c_int = 5;
    pub const EINVAL: c_int = 22;
    pub const ECANCELED: c_int = 125;
}

struct ArrowPrivate {
    shared: Arc<StreamShared>,
    message: Option<CString>,
}

const STREAM_VTABLE: &WithMetadata<ResourceStreamVTable> =
    &WithMetadata::new(ResourceStreamVTable {
        last_error: stream_last_error,
        final_state_json: stream_final_state,
        metrics_json: stream_metrics,
        release: stream_release,
    });

/// Exposes a batch stream as an [`FfiResourceStream`] (an Arrow C stream plus wrapper).
pub fn export_stream(
    stream: BatchStream,
    state: Option<&'static PluginState>,
) -> FfiResourceStream {
    let shared = Arc::new(StreamShared {
        producer: Mutex::new(Some(stream)),
        last_error: Mutex::new(None),
        final_state: Mutex::new(None),
        finished: AtomicBool::new(false),
        state,
    });
    let arrow_private = Box::new(ArrowPrivate {
        shared: shared.clone(),
        message: None,
    });
    let arrow = ArrowArrayStream {
        get_schema: Some(arrow_get_schema),
        get_next: Some(arrow_get_next),
        get_last_error: Some(arrow_get_last_error),
        release: Some(arrow_release),
        private_data: Box::into_raw(arrow_private).cast(),
    };
    FfiResourceStream {
        arrow,
        vtable: ResourceStreamVTableRef(STREAM_VTABLE.static_as_prefix()),
        private_data: Arc::into_raw(shared) as *mut c_void,
    }
}

unsafe extern "C" fn arrow_get_schema(
    stream: *mut ArrowArrayStream,
    out: *mut ArrowSchema,
) -> c_int {
    if stream.is_null() || out.is_null() {
        return libc_errno::EINVAL;
    }
    // SAFETY: the stream is ours and alive (the consumer has not released it).
    let private = unsafe { &mut *((*stream).private_data as *mut ArrowPrivate) };
    let shared = private.shared.clone();
    let result = shared.run("while reading a resource's schema", |p| {
        let schema = p.schema()?;
        FFI_ArrowSchema::try_from(schema.as_ref()).map_err(Error::from)
    });
    match result {
        Ok(ffi) => {
            // SAFETY: `out` points to writable memory for one ArrowSchema (C stream contract).
            unsafe { std::ptr::write(out, ArrowSchema::from(ffi)) };
            0
        }
        Err(e) => {
            private.message = CString::new(e.message.clone()).ok();
            shared.record(e)
        }
    }
}

unsafe extern "C" fn arrow_get_next(stream: *mut ArrowArrayStream, out: *mut ArrowArray) -> c_int {
    if stream.is_null() || out.is_null() {
        return libc_errno::EINVAL;
    }
    // SAFETY: the stream is ours and alive.
    let private = unsafe { &mut *((*stream).private_data as *mut ArrowPrivate) };
    let shared = private.shared.clone();
    let result = shared.run("while producing a batch", |p| match p.next_batch()? {
        Some(batch) => {
            let array = StructArray::from(batch);
            Ok(Some(FFI_ArrowArray::new(&array.to_data())))
        }
        None => {
            let state = p.final_state();
            if let Ok(mut g) = shared.final_state.lock() {
                *g = state;
            }
            shared.finished.store(true, Ordering::Release);
            Ok(None)
        }
    });
    match result {
        Ok(Some(array)) => {
            // SAFETY: `out` points to writable memory for one ArrowArray.
            unsafe { std::ptr::write(out, ArrowArray::from(array)) };
            0
        }
        Ok(None) => {
            // end of stream: a released array
            // SAFETY: as above.
            unsafe { std::ptr::write(out, ArrowArray::from(FFI_ArrowArray::empty())) };
            // SAFETY: the array we just wrote; mark it released so the consumer sees the end.
            unsafe { (*out).release = None };
            0
        }
        Err(e) => {
            private.message = CString::new(e.message.clone()).ok();
            shared.record(e)
        }
    }
}

unsafe extern "C" fn arrow_get_last_error(stream: *mut ArrowArrayStream) -> *const c_char {
    if stream.is_null() {
        return std::ptr::null();
    }
    // SAFETY: the stream is ours and alive.
    let private = unsafe { &*((*stream).private_data as *const ArrowPrivate) };
    private
        .message
        .as_ref()
        .map_or(std::ptr::null(), |m| m.as_ptr())
}

unsafe extern "C" fn arrow_release(stream: *mut ArrowArrayStream) {
    guard_release(|| {
        if stream.is_null() {
            return;
        }
        // SAFETY: called once by the consumer; we free our private data and mark it released.
        unsafe {
            let private = (*stream).private_data as *mut ArrowPrivate;
            if !private.is_null() {
                let private = Box::from_raw(private);
                // the producer goes with the Arrow stream: dropping it closes an async
                // producer's channel, which stops its task
                let producer = private
                    .shared
                    .producer
                    .lock()
                    .ok()
                    .and_then(|mut g| g.take());
                drop(producer);
            }
            (*stream).private_data = std::ptr::null_mut();
            (*stream).release = None;
        }
    });
}

unsafe extern "C" fn stream_last_error(this: *const c_void) -> ROption<FfiError> {
    // SAFETY: `this` is the Arc<StreamShared> we handed out.
    let shared = unsafe { &*(this as *const StreamShared) };
    match shared.last_error.lock() {
        Ok(g) => g.clone().map(FfiError::from).into(),
        Err(_) => ROption::RNone,
    }
}

unsafe extern "C" fn stream_final_state(this: *const c_void) -> RString {
    // SAFETY: as above.
    let shared = unsafe { &*(this as *const StreamShared) };
    let text = match shared.final_state.lock() {
        Ok(g) => g
            .as_ref()
            .map_or_else(|| "null".to_string(), Value::to_string),
        Err(_) => "null".to_string(),
    };
    RString::from(text)
}

unsafe extern "C" fn stream_metrics(this: *const c_void) -> RString {
    // SAFETY: as above.
    let shared = unsafe { &*(this as *const StreamShared) };
    let out = catch_unwind(AssertUnwindSafe(|| match shared.producer.lock() {
        Ok(g) => g
            .as_ref()
            .map_or_else(|| "{}".to_string(), |p| p.metrics().to_string()),
        Err(_) => "{}".to_string(),
    }));
    RString::from(out.unwrap_or_else(|_| "{}".to_string()))
}

unsafe extern "C" fn stream_release(this: *mut c_void) {
    guard_release(|| {
        // SAFETY: the wrapper's reference, released once.
        drop(unsafe { Arc::from_raw(this as *const StreamShared) });
    });
}

// ---------------------------------------------------------------------------------------------
// destinations

struct DestinationBox {
    destination: Arc<dyn Destination>,
    state: &'static PluginState,
}

const DESTINATION_VTABLE: &WithMetadata<DestinationVTable> =
    &WithMetadata::new(DestinationVTable {
        capabilities_json: destination_capabilities,
        open_client: destination_open_client,
        release: destination_release,
    });

/// Exposes `destination` as an [`FfiDestination`].
pub fn export_destination(
    destination: Arc<dyn Destination>,
    state: &'static PluginState,
) -> FfiDestination {
    let boxed = Box::new(DestinationBox { destination, state });
    FfiDestination {
        vtable: DestinationVTableRef(DESTINATION_VTABLE.static_as_prefix()),
        private_data: Box::into_raw(boxed).cast(),
    }
}

unsafe extern "C" fn destination_capabilities(this: *const c_void) -> RString {
    // SAFETY: `this` is our DestinationBox.
    let b = unsafe { &*(this as *const DestinationBox) };
    let out = guard(b.state, "in capabilities", || {
        Ok(serde_json::to_string(&b.destination.capabilities())?)
    });
    match out {
        RResult::ROk(s) => RString::from(s),
        RResult::RErr(e) => {
            RString::from(serde_json::json!({"error": e.message.as_str()}).to_string())
        }
    }
}

unsafe extern "C" fn destination_open_client(
    this: *const c_void,
    request_json: RStr<'_>,
) -> FfiResult<FfiDestinationClient> {
    // SAFETY: `this` is our DestinationBox.
    let b = unsafe { &*(this as *const DestinationBox) };
    guard(b.state, "while opening a destination client", || {
        let request: ClientRequest = serde_json::from_str(request_json.as_str())
            .map_err(|e| Error::config(format!("invalid client request from the host: {e}")))?;
        let client = b.destination.open_client(request)?;
        Ok(export_client(client, b.state))
    })
}

unsafe extern "C" fn destination_release(this: *mut c_void) {
    guard_release(|| {
        // SAFETY: released once by the host.
        drop(unsafe { Box::from_raw(this as *mut DestinationBox) });
    });
}

struct ClientBox {
    client: Mutex<Box<dyn DestinationClient>>,
    state: &'static PluginState,
}

impl ClientBox {
    fn call<T>(
        &self,
        what: &str,
        f: impl FnOnce(&mut dyn DestinationClient) -> Result<T>,
    ) -> FfiResult<T> {
        guard(self.state, what, || {
            let mut client = self
                .client
                .lock()
                .map_err(|_| Error::internal("destination client state is poisoned"))?;
            f(client.as_mut())
        })
    }
}

const CLIENT_VTABLE: &WithMetadata<DestinationClientVTable> =
    &WithMetadata::new(DestinationClientVTable {
        initialize_storage: client_initialize_storage,
        is_storage_initialized: client_is_storage_initialized,
        drop_storage: client_drop_storage,
        get_stored_schema: client_get_stored_schema,
        get_stored_state: client_get_stored_state,
        update_stored_schema: client_update_stored_schema,
        start_load: client_start_load,
        write_table: client_write_table,
        load_file: client_load_file,
        complete_load: client_complete_load,
        is_load_completed: client_is_load_completed,
        drop_tables: client_drop_tables,
        query: client_query,
        release: client_release,
    });

/// Exposes a job client as an [`FfiDestinationClient`].
pub fn export_client(
    client: Box<dyn DestinationClient>,
    state: &'static PluginState,
) -> FfiDestinationClient {
    let boxed = Box::new(ClientBox {
        client: Mutex::new(client),
        state,
    });
    FfiDestinationClient {
        vtable: DestinationClientVTableRef(CLIENT_VTABLE.static_as_prefix()),
        private_data: Box::into_raw(boxed).cast(),
    }
}

fn client<'a>(this: *const c_void) -> &'a ClientBox {
    // SAFETY: every caller passes the ClientBox pointer we handed out, still owned by the host.
    unsafe { &*(this as *const ClientBox) }
}

fn parse<T: serde::de::DeserializeOwned>(text: &str, what: &str) -> Result<T> {
    serde_json::from_str(text)
        .map_err(|e| Error::config(format!("invalid {what} from the host: {e}")))
}

unsafe extern "C" fn client_initialize_storage(this: *const c_void) -> FfiResult<()> {
    client(this).call("in initialize_storage", |c| c.initialize_storage())
}

unsafe extern "C" fn client_is_storage_initialized(this: *const c_void) -> FfiResult<bool> {
    client(this).call("in is_storage_initialized", |c| c.is_storage_initialized())
}

unsafe extern "C" fn client_drop_storage(this: *const c_void) -> FfiResult<()> {
    client(this).call("in drop_storage", |c| c.drop_storage())
}

unsafe extern "C" fn client_get_stored_schema(
    this: *const c_void,
    schema_name: RStr<'_>,
) -> FfiResult<ROption<RString>> {
    client(this).call("in get_stored_schema", |c| {
        let stored = c.get_stored_schema(schema_name.as_str())?;
        Ok(match stored {
            Some(s) => ROption::RSome(RString::from(serde_json::to_string(&s)?)),
            None => ROption::RNone,
        })
    })
}

unsafe extern "C" fn client_get_stored_state(
    this: *const c_void,
    pipeline_name: RStr<'_>,
) -> FfiResult<ROption<RString>> {
    client(this).call("in get_stored_state", |c| {
        let stored = c.get_stored_state(pipeline_name.as_str())?;
        Ok(match stored {
            Some(s) => ROption::RSome(RString::from(serde_json::to_string(&s)?)),
            None => ROption::RNone,
        })
    })
}

unsafe extern "C" fn client_update_stored_schema(
    this: *const c_void,
    schema_json: RStr<'_>,
    request_json: RStr<'_>,
) -> FfiResult<RString> {
    client(this).call("in update_stored_schema", |c| {
        let schema: Schema = parse(schema_json.as_str(), "schema")?;
        let request: SchemaUpdateRequest = parse(request_json.as_str(), "schema update request")?;
        let update = c.update_stored_schema(&schema, schema_json.as_str(), &request)?;
        Ok(RString::from(serde_json::to_string(&update)?))
    })
}

unsafe extern "C" fn client_start_load(
    this: *const c_void,
    load_id: RStr<'_>,
    plan_json: RStr<'_>,
) -> FfiResult<()> {
    client(this).call("in start_load", |c| {
        let plan: LoadPlan = parse(plan_json.as_str(), "load plan")?;
        c.start_load(load_id.as_str(), &plan)
    })
}

unsafe extern "C" fn client_write_table(
    this: *const c_void,
    load_id: RStr<'_>,
    job_json: RStr<'_>,
    data: ArrowArrayStream,
    cancel: FfiCancel,
) -> FfiResult<RString> {
    // take ownership of the host's stream first, so it is released even if parsing fails
    let data = FFI_ArrowArrayStream::from(data);
    client(this).call("in write_table", |c| {
        let job: LoadJob = parse(job_json.as_str(), "load job")?;
        let reader = RecordBatchStreamReader::try_new(data)
            .map_err(|e| Error::internal(format!("cannot read the host's batch stream: {e}")))?;
        let cancel = CancelToken::from_ffi(cancel);
        let report = c.write_table(load_id.as_str(), &job, Box::new(reader), &cancel)?;
        Ok(RString::from(serde_json::to_string(&report)?))
    })
}

unsafe extern "C" fn client_load_file(
    this: *const c_void,
    load_id: RStr<'_>,
    job_json: RStr<'_>,
    path: RStr<'_>,
    cancel: FfiCancel,
) -> FfiResult<RString> {
    client(this).call("in load_file", |c| {
        let job: LoadJob = parse(job_json.as_str(), "load job")?;
        let cancel = CancelToken::from_ffi(cancel);
        let report = c.load_file(load_id.as_str(), &job, Path::new(path.as_str()), &cancel)?;
        Ok(RString::from(serde_json::to_string(&report)?))
    })
}

unsafe extern "C" fn client_complete_load(
    this: *const c_void,
    load_id: RStr<'_>,
    completion_json: RStr<'_>,
) -> FfiResult<()> {
    client(this).call("in complete_load", |c| {
        let completion: LoadCompletion = parse(completion_json.as_str(), "load completion")?;
        c.complete_load(load_id.as_str(), &completion)
    })
}

unsafe extern "C" fn client_is_load_completed(
    this: *const c_void,
    load_id: RStr<'_>,
) -> FfiResult<bool> {
    client(this).call("in is_load_completed", |c| {
        c.is_load_completed(load_id.as_str())
    })
}

unsafe extern "C" fn client_drop_tables(
    this: *const c_void,
    request_json: RStr<'_>,
) -> FfiResult<()> {
    client(this).call("in drop_tables", |c| {
        let request: DropTablesRequest = parse(request_json.as_str(), "drop tables request")?;
        c.drop_tables(&request)
    })
}

unsafe extern "C" fn client_query(
    this: *const c_void,
    sql: RStr<'_>,
    cancel: FfiCancel,
) -> FfiResult<FfiResourceStream> {
    let b = client(this);
    b.call("in query", |c| {
        let cancel = CancelToken::from_ffi(cancel);
        let stream = c.query(sql.as_str(), &cancel)?;
        Ok(export_stream(stream, Some(b.state)))
    })
}

unsafe extern "C" fn client_release(this: *mut c_void) {
    guard_release(|| {
        // SAFETY: released once by the host.
        drop(unsafe { Box::from_raw(this as *mut ClientBox) });
    });
}

/// Declares the plugin module of an implementation crate: `declare_plugin!(pub fn
/// plugin_module = plugin)` generates `pub fn plugin_module() -> PluginModuleRef` with its own
/// per-plugin state, where `plugin` is a `fn() -> Plugin`. The cdylib crate then exports it
/// with [`export_plugin!`](crate::export_plugin).
#[macro_export]
macro_rules! declare_plugin {
    ($vis:vis fn $name:ident = $ctor:path) => {
        /// The plugin's root module (exported by its cdylib crate with `export_plugin!`).
        $vis fn $name() -> $crate::abi::PluginModuleRef {
            static STATE: $crate::export::PluginState = $crate::export::PluginState::new();
            extern "C" fn manifest_json() -> $crate::abi::RString {
                $crate::export::manifest_json(&STATE, $ctor)
            }
            extern "C" fn init(
                host: $crate::abi::HostApi,
                settings: $crate::abi::RStr<'_>,
            ) -> $crate::abi::FfiResult<()> {
                $crate::export::init(&STATE, $ctor, host, settings)
            }
            extern "C" fn open_source(
                config: $crate::abi::RStr<'_>,
                secrets: $crate::abi::RStr<'_>,
            ) -> $crate::abi::FfiResult<$crate::abi::FfiSource> {
                $crate::export::open_source(&STATE, $ctor, config, secrets)
            }
            extern "C" fn open_destination(
                config: $crate::abi::RStr<'_>,
                secrets: $crate::abi::RStr<'_>,
            ) -> $crate::abi::FfiResult<$crate::abi::FfiDestination> {
                $crate::export::open_destination(&STATE, $ctor, config, secrets)
            }
            extern "C" fn shutdown() -> $crate::abi::FfiResult<()> {
                $crate::export::shutdown(&STATE)
            }
            const MODULE: &$crate::abi::WithMetadata<$crate::abi::PluginModule> =
                &$crate::abi::WithMetadata::new($crate::abi::PluginModule::new(
                    manifest_json,
                    init,
                    open_source,
                    open_destination,
                    shutdown,
                ));
            $crate::abi::PluginModuleRef(MODULE.static_as_prefix())
        }
    };
}

/// Exports a plugin module from a cdylib crate: `sluice_sdk::export_plugin!(my_crate::plugin_module);`
///
/// Emits the `sluice_plugin_declaration` static and the root module symbol. Every plugin
/// exports the same symbols, so one library holds exactly one plugin.
#[macro_export]
macro_rules! export_plugin {
    ($module:path) => {
        $crate::abi::export_root_module!($module);
    };
    // Declares another ABI version: only for tests of the host's version check.
    ($module:path, abi = ($major:expr, $minor:expr)) => {
        $crate::abi::export_root_module!(
            $module,
            $crate::abi::PluginDeclaration::current().with_abi($major, $minor)
        );
    };
}
