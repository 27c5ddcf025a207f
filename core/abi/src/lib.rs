//! `sluice-abi`: the stable binary interface between the sluice host and its plugins.
//!
//! This is the only crate of the project that touches `abi_stable`. Everything that crosses a
//! plugin boundary is declared here, and nothing else crosses:
//!
//! * [`PluginDeclaration`] — a plain C static every plugin exports under the symbol
//!   [`DECLARATION_SYMBOL`]. The host reads it right after `dlopen`, before any plugin code runs,
//!   to refuse libraries built for another ABI major or with `panic = "abort"`.
//! * [`PluginModule`] — the root module (an `abi_stable` prefix type, so later minor versions can
//!   append fields): `manifest_json`, `init`, `open_source`, `open_destination`, `shutdown`.
//! * The object types [`FfiSource`], [`FfiResourceStream`], [`FfiDestination`] and
//!   [`FfiDestinationClient`]: a prefix-type vtable of `extern "C"` functions plus an opaque
//!   `private_data` pointer owned by the producer.
//! * [`ArrowArrayStream`], [`ArrowArray`], [`ArrowSchema`] — our own `#[repr(C)]` mirrors of the
//!   Arrow C Data / C Stream Interface, with zero-copy conversions to arrow-rs 60 (feature
//!   `arrow-60`).
//! * [`FfiError`] / [`FfiResult`], the reference-counted [`FfiCancel`] flag and the [`HostApi`]
//!   callbacks (log, progress, metric).
//!
//! # Ownership rules
//!
//! * **The producer frees.** Every object carries a `release` function that runs inside the
//!   library that created it. An object moved across the boundary by value transfers ownership;
//!   the receiver must eventually drop it (our Rust types call `release` in `Drop`).
//! * **Strings** cross as `RStr` (borrowed for the duration of the call) and `RString` (owned,
//!   freed through its own vtable, so the allocator question does not arise).
//! * **Arrow data** follows the Arrow C Data Interface: the consumer calls the array's/stream's
//!   `release` when done; it never frees producer memory itself.
//! * **Calls are blocking.** Objects are `Send`; a stream or client has one caller at a time.
//!   Only [`FfiCancel::is_cancelled`] may be called from any thread concurrently.
//! * **Panics never cross.** Plugin functions catch unwinding inside the plugin (the SDK does this
//!   for every exported function); a panic becomes [`ErrorCode::PANIC`] and poisons the plugin.
//!
//! # Versioning
//!
//! [`ABI_MAJOR`] changes on any incompatible change; [`ABI_MINOR`] when fields are appended to a
//! prefix type (readers see appended fields as `Option`). Hosts and plugins of the same major
//! interoperate whatever their minors.
//!
//! ```
//! let decl = sluice_abi::PluginDeclaration::current();
//! assert_eq!(decl.abi_major, sluice_abi::ABI_MAJOR);
//! assert!(decl.check_magic());
//! ```

#![warn(missing_docs)]

mod arrow_c;
mod cancel;
mod declaration;
mod destination;
mod error;
mod host;
mod root;
mod source;

pub use arrow_c::{ArrowArray, ArrowArrayStream, ArrowSchema};
pub use cancel::FfiCancel;
pub use declaration::{layout_fingerprint, PluginDeclaration, DECLARATION_SYMBOL, MAGIC};
pub use destination::{
    DestinationClientVTable, DestinationClientVTableRef, DestinationVTable, DestinationVTableRef,
    FfiDestination, FfiDestinationClient,
};
pub use error::{ErrorCode, FfiError, FfiResult};
pub use host::{HostApi, HostVTable, HostVTableRef, LogLevel};
pub use root::{load_root_module, LayoutError, PluginModule, PluginModuleRef};
pub use source::{
    FfiResourceStream, FfiSource, ResourceStreamVTable, ResourceStreamVTableRef, SourceVTable,
    SourceVTableRef,
};

/// FFI-safe standard types used in the ABI, re-exported so no other crate names `abi_stable`.
pub use abi_stable::std_types::{ROption, RResult, RStr, RString, RVec};

/// Builds a `&'static` prefix-type reference from a constant vtable value.
///
/// Used by the SDK to create the vtables it hands out:
/// `static_prefix!(SourceVTable, SourceVTableRef, SourceVTable { .. })`.
#[doc(hidden)]
pub use abi_stable::prefix_type::WithMetadata;

/// Major version of the plugin ABI. A host refuses plugins of another major.
pub const ABI_MAJOR: u32 = sluice_plugin_build::ABI_MAJOR;
/// Minor version of the plugin ABI: fields appended to prefix types since the major.
pub const ABI_MINOR: u32 = sluice_plugin_build::ABI_MINOR;

#[doc(hidden)]
pub mod __private {
    //! Items used by the `export_root_module!` macro; not part of the public API.
    pub use abi_stable;
}

/// Exports `$ctor` (a `fn() -> PluginModuleRef`) as this library's root module and the
/// [`PluginDeclaration`] static. Used by `sluice_sdk::export_plugin!`; a plugin author never
/// calls this directly.
///
/// The expansion mirrors `abi_stable`'s `#[export_root_module]` attribute, with paths through
/// this crate so that plugin crates need no direct dependency on `abi_stable`.
#[macro_export]
macro_rules! export_root_module {
    ($ctor:path) => {
        $crate::export_root_module!($ctor, $crate::PluginDeclaration::current());
    };
    ($ctor:path, $decl:expr) => {
        /// The plain C declaration the host reads before running any code of this library.
        #[no_mangle]
        #[allow(non_upper_case_globals)]
        pub static sluice_plugin_declaration: $crate::PluginDeclaration = $decl;

        #[export_name = "_1as_0lib_1header_0root_bmodule_bloader"]
        pub static __SLUICE_ROOT_MODULE_LOADER: $crate::__private::abi_stable::library::LibHeader = {
            extern "C" fn __sluice_erased_module(
            ) -> $crate::__private::abi_stable::library::RootModuleResult {
                $crate::__private::abi_stable::library::__call_root_module_loader(
                    $ctor as fn() -> $crate::PluginModuleRef,
                )
            }
            unsafe {
                $crate::__private::abi_stable::library::LibHeader::from_constructor::<
                    $crate::PluginModuleRef,
                >(
                    __sluice_erased_module,
                    $crate::__private::abi_stable::library::CheckTypeLayout::Yes,
                )
            }
        };
    };
}

#[cfg(test)]
mod tests {
    #[test]
    fn root_module_symbol_matches_abi_stable() {
        assert_eq!(
            abi_stable::library::ROOT_MODULE_LOADER_NAME,
            "_1as_0lib_1header_0root_bmodule_bloader"
        );
    }
}
