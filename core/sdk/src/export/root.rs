//! Fills `sluice_abi::PluginModule` (core/abi/src/root.rs): the functions behind the root
//! module's `manifest_json`, `init`, `open_source`, `open_destination` and `shutdown`, and the
//! [`declare_plugin!`](crate::declare_plugin) and [`export_plugin!`](crate::export_plugin)
//! macros that generate the `extern "C"` shims calling them with the plugin's own state.
//!
//! These are safe functions: the shims take no pointers (strings arrive as `RStr`, borrowed
//! for the duration of the call), so there is nothing for the host to uphold beyond the ABI.

use std::panic::{catch_unwind, AssertUnwindSafe};

use serde_json::Value;
use sluice_abi::{FfiDestination, FfiResult, FfiSource, HostApi, RStr, RString};

use super::destination::export_destination;
use super::source::export_source;
use super::{guard, parse_json_object, Plugin, PluginState};
use crate::Error;

/// `PluginModule::manifest_json`: the manifest as JSON, or `{"error": ...}` when the embedded
/// manifest is invalid.
#[doc(hidden)]
pub fn manifest_json(state: &'static PluginState, ctor: fn() -> Plugin) -> RString {
    let out = catch_unwind(AssertUnwindSafe(|| match state.plugin(ctor).manifest() {
        Ok(m) => m.to_json().to_string(),
        Err(e) => serde_json::json!({ "error": e.message }).to_string(),
    }));
    RString::from(out.unwrap_or_else(|_| "{\"error\":\"manifest_json panicked\"}".into()))
}

/// `PluginModule::init`: keeps the host's callbacks, installs the log bridge and starts the
/// plugin's runtime.
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

/// `PluginModule::open_source`: validates config and secrets against the manifest and opens
/// the source.
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

/// `PluginModule::open_destination`: validates config and secrets against the manifest and
/// opens the destination.
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

/// `PluginModule::shutdown`: flushes the log bridge.
#[doc(hidden)]
pub fn shutdown(state: &'static PluginState) -> FfiResult<()> {
    guard(state, "in shutdown", || {
        crate::bridge::flush();
        Ok(())
    })
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
