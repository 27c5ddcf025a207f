//! `Foreign*` wrappers: the SDK's traits implemented over a loaded plugin library, so the host
//! drives a plugin exactly as it would drive a statically linked source or destination.
//!
//! One file per ABI area, named after the file of `sluice-abi` that declares what it wraps
//! (the plugin side that fills the same structs is `sluice_sdk::export`, laid out alike):
//!
//! | file | wraps (`sluice_abi`) | implements (`sluice_sdk`) |
//! |---|---|---|
//! | `source.rs` | `FfiSource` (`source.rs`) | [`Source`](sluice_sdk::Source) as [`ForeignSource`] |
//! | `stream.rs` | `FfiResourceStream` (`source.rs`) with its `ArrowArrayStream` (`arrow_c.rs`) | [`BatchProducer`](sluice_sdk::BatchProducer) as [`ForeignStream`] |
//! | `destination.rs` | `FfiDestination`, `FfiDestinationClient` (`destination.rs`) | [`Destination`](sluice_sdk::Destination), [`DestinationClient`](sluice_sdk::DestinationClient) as [`ForeignDestination`], [`ForeignClient`] |
//!
//! # Ownership
//!
//! Each wrapper owns its `Ffi*` object, whose `Drop` calls the plugin's `release` (libraries
//! are never unloaded, so the code is still there), and shares the [`LoadedPlugin`] it came
//! from. Every `unsafe` call passes an object's `private_data` only to the functions of its
//! own vtable, which is all those functions ask of the host besides not calling them after
//! `release`.
//!
//! # Blocking
//!
//! Every call into a plugin is blocking (the ABI has no async). On an async host, call them
//! through [`blocking`] (or the `*_async` helpers), which run them on tokio's blocking pool:
//! a plugin blocking inside its own runtime on one of our async worker threads would stall it,
//! and tokio cannot detect that across two copies of itself.

use sluice_sdk::{Error, Result};

use crate::loader::LoadedPlugin;

mod destination;
mod source;
mod stream;

pub use destination::{ForeignClient, ForeignDestination};
pub use source::ForeignSource;
pub use stream::ForeignStream;

/// Runs a blocking plugin call on tokio's blocking pool and awaits it.
pub async fn blocking<T, F>(f: F) -> Result<T>
where
    F: FnOnce() -> Result<T> + Send + 'static,
    T: Send + 'static,
{
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| Error::internal(format!("a plugin call did not complete: {e}")))?
}

/// The plugin's result as ours; a panic or poisoning error also marks the plugin poisoned.
fn check<T>(plugin: &LoadedPlugin, result: sluice_abi::FfiResult<T>) -> Result<T> {
    result.into_result().map_err(|e| {
        let e = Error::from(e);
        plugin.note_error(&e);
        e
    })
}

/// Parses JSON the plugin returned; invalid JSON is the plugin's bug and says so.
fn parse<T: serde::de::DeserializeOwned>(
    plugin: &LoadedPlugin,
    text: &str,
    what: &str,
) -> Result<T> {
    serde_json::from_str(text).map_err(|e| {
        Error::internal(format!(
            "plugin `{}` returned invalid {what}: {e}",
            plugin.name()
        ))
    })
}
