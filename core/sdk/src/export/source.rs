//! Fills `sluice_abi::FfiSource` (core/abi/src/source.rs): an opened [`Source`] behind the
//! `SourceVTable`. The host-side wrapper is `sluice_registry::ForeignSource`.
//!
//! `private_data` is a `Box<SourceBox>` made by [`export_source`]; the host owns it and frees
//! it, exactly once, through `release`.

use std::ffi::c_void;
use std::sync::Arc;

use sluice_abi::{
    FfiCancel, FfiResourceStream, FfiResult, FfiSource, RStr, RString, SourceVTable,
    SourceVTableRef, WithMetadata,
};

use super::stream::export_stream;
use super::{guard, guard_release, PluginState};
use crate::resource::ResourceRequest;
use crate::source::{Source, StreamContext};
use crate::{CancelToken, Error};

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

/// `SourceVTable::describe`.
///
/// # Safety
///
/// `this` is the `private_data` of an [`FfiSource`] made by [`export_source`] that the host
/// has not released.
unsafe extern "C" fn source_describe(this: *const c_void) -> FfiResult<RString> {
    // SAFETY: `this` is the SourceBox we handed out and the host still owns it.
    let b = unsafe { &*(this as *const SourceBox) };
    guard(b.state, "in describe", || {
        let resources = b.source.describe()?;
        Ok(RString::from(serde_json::to_string(&resources)?))
    })
}

/// `SourceVTable::open_resource`. The returned stream owns the reference to `cancel`.
///
/// # Safety
///
/// As for [`source_describe`].
unsafe extern "C" fn source_open_resource(
    this: *const c_void,
    request_json: RStr<'_>,
    cancel: FfiCancel,
) -> FfiResult<FfiResourceStream> {
    // SAFETY: `this` is the SourceBox we handed out and the host still owns it.
    let b = unsafe { &*(this as *const SourceBox) };
    guard(b.state, "while opening a resource", || {
        let request: ResourceRequest = serde_json::from_str(request_json.as_str())
            .map_err(|e| Error::config(format!("invalid resource request from the host: {e}")))?;
        let ctx = StreamContext::for_plugin(CancelToken::from_ffi(cancel), b.state);
        let stream = b.source.open_resource(request, ctx)?;
        Ok(export_stream(stream, Some(b.state)))
    })
}

/// `SourceVTable::release`: drops the source.
///
/// # Safety
///
/// `this` is the `private_data` of an [`FfiSource`] made by [`export_source`], passed here
/// once; no other call on it runs or follows.
unsafe extern "C" fn source_release(this: *mut c_void) {
    guard_release(|| {
        // SAFETY: the host releases each source exactly once, after its last call.
        drop(unsafe { Box::from_raw(this as *mut SourceBox) });
    });
}
