//! Callbacks the host gives a plugin at `init`.

use std::ffi::c_void;

use abi_stable::std_types::RStr;
use abi_stable::StableAbi;

/// Log levels, as `tracing` orders them (`ERROR` is the most severe).
#[repr(transparent)]
#[derive(StableAbi, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Debug)]
pub struct LogLevel(pub u8);

impl LogLevel {
    /// Nothing is forwarded.
    pub const OFF: Self = Self(0);
    /// Errors.
    pub const ERROR: Self = Self(1);
    /// Warnings.
    pub const WARN: Self = Self(2);
    /// Information.
    pub const INFO: Self = Self(3);
    /// Debugging detail.
    pub const DEBUG: Self = Self(4);
    /// Everything.
    pub const TRACE: Self = Self(5);
}

/// The host's callbacks. A prefix type: hosts may append callbacks in minor versions.
///
/// Every callback is thread-safe, returns quickly, never unwinds into the plugin and must not
/// call back into the same plugin.
#[repr(C)]
#[derive(StableAbi)]
#[sabi(kind(Prefix(prefix_ref = HostVTableRef)))]
#[sabi(missing_field(option))]
pub struct HostVTable {
    /// A log record: level, target (module path), message, and structured fields as JSON.
    pub log: unsafe extern "C" fn(
        ctx: *const c_void,
        level: LogLevel,
        target: RStr<'_>,
        message: RStr<'_>,
        fields_json: RStr<'_>,
    ),
    /// Plugin-internal progress of a resource (pages fetched, files listed, rows read).
    pub progress:
        unsafe extern "C" fn(ctx: *const c_void, resource: RStr<'_>, rows: u64, bytes: u64),
    /// A named metric value with labels as JSON.
    #[sabi(last_prefix_field)]
    pub metric:
        unsafe extern "C" fn(ctx: *const c_void, name: RStr<'_>, value: f64, labels_json: RStr<'_>),
}

/// What the host passes to a plugin's `init`: a context pointer valid for the life of the
/// process, the most verbose level the host wants, and the callbacks.
#[repr(C)]
#[derive(StableAbi, Clone, Copy)]
pub struct HostApi {
    /// Host context passed back to every callback.
    pub ctx: *const c_void,
    /// Records more verbose than this are dropped inside the plugin.
    pub max_level: LogLevel,
    /// The callbacks.
    pub vtable: HostVTableRef,
}

// SAFETY: the host promises `ctx` is valid forever and the callbacks are thread-safe.
unsafe impl Send for HostApi {}
// SAFETY: see above.
unsafe impl Sync for HostApi {}

impl HostApi {
    /// Forwards a log record to the host.
    pub fn log(&self, level: LogLevel, target: &str, message: &str, fields_json: &str) {
        if level > self.max_level || level == LogLevel::OFF {
            return;
        }
        // SAFETY: the host's callback contract above.
        unsafe {
            (self.vtable.log())(
                self.ctx,
                level,
                RStr::from(target),
                RStr::from(message),
                RStr::from(fields_json),
            )
        }
    }

    /// Reports plugin-internal progress.
    pub fn progress(&self, resource: &str, rows: u64, bytes: u64) {
        // SAFETY: the host's callback contract above.
        unsafe { (self.vtable.progress())(self.ctx, RStr::from(resource), rows, bytes) }
    }

    /// Reports a metric.
    pub fn metric(&self, name: &str, value: f64, labels_json: &str) {
        // SAFETY: the host's callback contract above.
        unsafe {
            (self.vtable.metric())(self.ctx, RStr::from(name), value, RStr::from(labels_json))
        }
    }
}

impl std::fmt::Debug for HostApi {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HostApi")
            .field("max_level", &self.max_level)
            .finish()
    }
}
