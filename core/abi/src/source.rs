//! Source objects: an opened source and the stream of one resource run.

use std::ffi::c_void;

use abi_stable::std_types::{ROption, RStr, RString};
use abi_stable::StableAbi;

use crate::{ArrowArrayStream, FfiCancel, FfiError, FfiResult};

/// The functions of an opened source. A prefix type: minor versions may append functions.
#[repr(C)]
#[derive(StableAbi)]
#[sabi(kind(Prefix(prefix_ref = SourceVTableRef)))]
#[sabi(missing_field(option))]
pub struct SourceVTable {
    /// The resources this source offers, as a JSON array of resource descriptors.
    pub describe: unsafe extern "C" fn(this: *const c_void) -> FfiResult<RString>,
    /// Starts one run of one resource. `request_json` names the resource and carries the
    /// incoming incremental/resource state, limits and batch size hints. The returned stream
    /// owns a reference to `cancel`.
    pub open_resource: unsafe extern "C" fn(
        this: *const c_void,
        request_json: RStr<'_>,
        cancel: FfiCancel,
    ) -> FfiResult<FfiResourceStream>,
    /// Frees the source (runs in the plugin).
    #[sabi(last_prefix_field)]
    pub release: unsafe extern "C" fn(this: *mut c_void),
}

/// An opened source, owned by the host. Dropping it releases it in the plugin.
///
/// # Safety
///
/// `private_data` belongs to the plugin and is only passed back to the vtable functions.
#[repr(C)]
#[derive(StableAbi)]
pub struct FfiSource {
    /// The functions.
    pub vtable: SourceVTableRef,
    /// Plugin-owned state.
    pub private_data: *mut c_void,
}

// SAFETY: sources are required to be Send + Sync on the plugin side (the SDK enforces it).
unsafe impl Send for FfiSource {}
// SAFETY: see above.
unsafe impl Sync for FfiSource {}

impl Drop for FfiSource {
    fn drop(&mut self) {
        if !self.private_data.is_null() {
            // SAFETY: we own the source; release is called exactly once.
            unsafe { (self.vtable.release())(self.private_data) };
            self.private_data = std::ptr::null_mut();
        }
    }
}

/// Functions of a resource stream beyond the Arrow C stream itself.
#[repr(C)]
#[derive(StableAbi)]
#[sabi(kind(Prefix(prefix_ref = ResourceStreamVTableRef)))]
#[sabi(missing_field(option))]
pub struct ResourceStreamVTable {
    /// The structured error behind the last failed `get_next`/`get_schema`, if any.
    pub last_error: unsafe extern "C" fn(this: *const c_void) -> ROption<FfiError>,
    /// After the end of the stream: the resource's new state as JSON (`null` when unchanged).
    pub final_state_json: unsafe extern "C" fn(this: *const c_void) -> RString,
    /// Counters the plugin kept (pages, requests, bytes read) as a JSON object.
    pub metrics_json: unsafe extern "C" fn(this: *const c_void) -> RString,
    /// Frees the wrapper state (the Arrow stream is released separately).
    #[sabi(last_prefix_field)]
    pub release: unsafe extern "C" fn(this: *mut c_void),
}

/// One run of one resource: an Arrow C stream plus structured errors, final state and metrics.
///
/// The host may move `arrow` out (leaving a released stream) to hand the batches straight to a
/// destination, and still ask the wrapper for `last_error` and `final_state_json`.
///
/// # Safety
///
/// One consumer at a time. Dropping releases the Arrow stream (if still owned) and then the
/// wrapper, both inside the plugin.
#[repr(C)]
#[derive(StableAbi)]
pub struct FfiResourceStream {
    /// The batches.
    pub arrow: ArrowArrayStream,
    /// The wrapper functions.
    pub vtable: ResourceStreamVTableRef,
    /// Plugin-owned state of the wrapper.
    pub private_data: *mut c_void,
}

// SAFETY: a stream has a single owner that serializes calls; the SDK makes the state Send.
unsafe impl Send for FfiResourceStream {}

impl FfiResourceStream {
    /// The structured error of the last failed call, if the plugin recorded one.
    pub fn last_error(&self) -> Option<FfiError> {
        // SAFETY: private_data belongs to this vtable.
        unsafe { (self.vtable.last_error())(self.private_data) }.into_option()
    }

    /// The final resource state (JSON text; `null` when the plugin has none).
    pub fn final_state_json(&self) -> String {
        // SAFETY: private_data belongs to this vtable.
        unsafe { (self.vtable.final_state_json())(self.private_data) }.into_string()
    }

    /// Plugin metrics as a JSON object.
    pub fn metrics_json(&self) -> String {
        // SAFETY: private_data belongs to this vtable.
        unsafe { (self.vtable.metrics_json())(self.private_data) }.into_string()
    }
}

impl Drop for FfiResourceStream {
    fn drop(&mut self) {
        // Release the batches first: their producer may still reference the wrapper state.
        drop(self.arrow.take());
        if !self.private_data.is_null() {
            // SAFETY: we own the wrapper; release is called exactly once.
            unsafe { (self.vtable.release())(self.private_data) };
            self.private_data = std::ptr::null_mut();
        }
    }
}
