//! The host callbacks every loaded plugin gets: its log records become `tracing` events of the
//! host (target `sluice::plugin`, with the plugin's name and original target as fields).

use std::ffi::c_void;

use sluice_abi::{HostApi, HostVTable, HostVTableRef, LogLevel, RStr, WithMetadata};

/// Per-plugin context behind `HostApi.ctx`; leaked, because a plugin may call back for the
/// life of the process (libraries are never unloaded).
struct HostContext {
    plugin: String,
}

const HOST_VTABLE: &WithMetadata<HostVTable> = &WithMetadata::new(HostVTable {
    log: host_log,
    progress: host_progress,
    metric: host_metric,
});

/// The most verbose level the host's subscriber accepts.
fn max_level() -> LogLevel {
    use tracing::level_filters::LevelFilter;
    match LevelFilter::current() {
        LevelFilter::OFF => LogLevel::OFF,
        LevelFilter::ERROR => LogLevel::ERROR,
        LevelFilter::WARN => LogLevel::WARN,
        LevelFilter::INFO => LogLevel::INFO,
        LevelFilter::DEBUG => LogLevel::DEBUG,
        _ => LogLevel::TRACE,
    }
}

/// A `HostApi` for the plugin named `plugin`.
pub(crate) fn host_api(plugin: &str) -> HostApi {
    let ctx: &'static HostContext = Box::leak(Box::new(HostContext {
        plugin: plugin.to_string(),
    }));
    HostApi {
        ctx: ctx as *const HostContext as *const c_void,
        max_level: max_level(),
        vtable: HostVTableRef(HOST_VTABLE.static_as_prefix()),
    }
}

fn plugin_name<'a>(ctx: *const c_void) -> &'a str {
    if ctx.is_null() {
        return "(unknown)";
    }
    // SAFETY: ctx is a leaked HostContext created by `host_api`.
    unsafe { &(*(ctx as *const HostContext)).plugin }
}

unsafe extern "C" fn host_log(
    ctx: *const c_void,
    level: LogLevel,
    target: RStr<'_>,
    message: RStr<'_>,
    fields_json: RStr<'_>,
) {
    // never unwind into the plugin
    let _ = std::panic::catch_unwind(|| {
        let plugin = plugin_name(ctx);
        let target = target.as_str();
        let message = message.as_str();
        let fields = fields_json.as_str();
        let fields = if fields == "{}" { "" } else { fields };
        macro_rules! emit {
            ($lvl:expr) => {
                tracing::event!(target: "sluice::plugin", $lvl, plugin = plugin, origin = target, fields = fields, "{message}")
            };
        }
        match level {
            LogLevel::ERROR => emit!(tracing::Level::ERROR),
            LogLevel::WARN => emit!(tracing::Level::WARN),
            LogLevel::INFO => emit!(tracing::Level::INFO),
            LogLevel::DEBUG => emit!(tracing::Level::DEBUG),
            LogLevel::TRACE => emit!(tracing::Level::TRACE),
            _ => {}
        }
    });
}

unsafe extern "C" fn host_progress(ctx: *const c_void, resource: RStr<'_>, rows: u64, bytes: u64) {
    let _ = std::panic::catch_unwind(|| {
        tracing::trace!(
            target: "sluice::plugin::progress",
            plugin = plugin_name(ctx),
            resource = resource.as_str(),
            rows,
            bytes
        );
    });
}

unsafe extern "C" fn host_metric(
    ctx: *const c_void,
    name: RStr<'_>,
    value: f64,
    labels_json: RStr<'_>,
) {
    let _ = std::panic::catch_unwind(|| {
        tracing::debug!(
            target: "sluice::plugin::metric",
            plugin = plugin_name(ctx),
            metric = name.as_str(),
            value,
            labels = labels_json.as_str()
        );
    });
}
