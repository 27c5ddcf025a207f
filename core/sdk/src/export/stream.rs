//! Fills `sluice_abi::FfiResourceStream` (core/abi/src/source.rs) and the Arrow C stream it
//! carries, `sluice_abi::ArrowArrayStream` (core/abi/src/arrow_c.rs): a [`BatchStream`] read
//! by the host one batch at a time. The host-side wrapper is `sluice_registry::ForeignStream`.
//!
//! # Ownership
//!
//! [`export_stream`] makes one `Arc<StreamShared>` and hands out two references to it:
//!
//! * the Arrow stream's `private_data`, a `Box<ArrowPrivate>` freed by `arrow_release` (the
//!   Arrow consumer calls it once; it also drops the producer, which stops an async one);
//! * the wrapper's `private_data`, the raw `Arc` itself, freed by `stream_release`.
//!
//! The host may move the Arrow stream elsewhere (to a destination) and release the two in
//! either order; the shared state lives until both are gone.

use std::ffi::{c_char, c_int, c_void, CString};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use arrow_array::ffi::{FFI_ArrowArray, FFI_ArrowSchema};
use arrow_array::{Array, StructArray};
use serde_json::Value;
use sluice_abi::{
    ArrowArray, ArrowArrayStream, ArrowSchema, FfiError, FfiResourceStream, ROption, RString,
    ResourceStreamVTable, ResourceStreamVTableRef, WithMetadata,
};

use super::{guard_release, panic_error, poisoned_error, PluginState};
use crate::source::BatchStream;
use crate::{Error, Result};

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

// ---------------------------------------------------------------------------------------------
// the Arrow C stream (ArrowArrayStream)

/// `ArrowArrayStream::get_schema`: `0`, or an errno with the message kept for
/// `get_last_error`.
///
/// # Safety
///
/// `stream` is null or an [`ArrowArrayStream`] made by [`export_stream`] and not released, with
/// no other call on it running (the C stream contract: one consumer). `out` is null or valid
/// for writing one [`ArrowSchema`], which the caller then owns.
unsafe extern "C" fn arrow_get_schema(
    stream: *mut ArrowArrayStream,
    out: *mut ArrowSchema,
) -> c_int {
    if stream.is_null() || out.is_null() {
        return libc_errno::EINVAL;
    }
    // SAFETY: the stream is ours and alive (the consumer has not released it), and its one
    // consumer is in this call, so the private data is not borrowed elsewhere.
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

/// `ArrowArrayStream::get_next`: writes the next batch as a struct array, or a released array
/// at the end of the stream (after keeping the producer's final state for the wrapper).
///
/// # Safety
///
/// As for [`arrow_get_schema`], with `out` valid for writing one [`ArrowArray`].
unsafe extern "C" fn arrow_get_next(stream: *mut ArrowArrayStream, out: *mut ArrowArray) -> c_int {
    if stream.is_null() || out.is_null() {
        return libc_errno::EINVAL;
    }
    // SAFETY: the stream is ours and alive, and its one consumer is in this call.
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

/// `ArrowArrayStream::get_last_error`: the message of the last failed call, or null. The
/// pointer stays valid until the next call on the stream or its release.
///
/// # Safety
///
/// `stream` is null or an [`ArrowArrayStream`] made by [`export_stream`] and not released.
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

/// `ArrowArrayStream::release`: frees the Arrow side and drops the producer; marks the stream
/// released.
///
/// # Safety
///
/// `stream` is null or an [`ArrowArrayStream`] made by [`export_stream`], released once by its
/// consumer (a second call finds `private_data` null and does nothing).
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

// ---------------------------------------------------------------------------------------------
// the wrapper (ResourceStreamVTable)

/// `ResourceStreamVTable::last_error`: the structured error behind the last failed Arrow call.
///
/// # Safety
///
/// `this` is the `private_data` of an [`FfiResourceStream`] made by [`export_stream`] whose
/// wrapper the host has not released.
unsafe extern "C" fn stream_last_error(this: *const c_void) -> ROption<FfiError> {
    // SAFETY: `this` is the Arc<StreamShared> we handed out, still held by the wrapper.
    let shared = unsafe { &*(this as *const StreamShared) };
    match shared.last_error.lock() {
        Ok(g) => g.clone().map(FfiError::from).into(),
        Err(_) => ROption::RNone,
    }
}

/// `ResourceStreamVTable::final_state_json`: the state kept at the end of the stream, or
/// `null`.
///
/// # Safety
///
/// As for [`stream_last_error`].
unsafe extern "C" fn stream_final_state(this: *const c_void) -> RString {
    // SAFETY: `this` is the Arc<StreamShared> we handed out, still held by the wrapper.
    let shared = unsafe { &*(this as *const StreamShared) };
    let text = match shared.final_state.lock() {
        Ok(g) => g
            .as_ref()
            .map_or_else(|| "null".to_string(), Value::to_string),
        Err(_) => "null".to_string(),
    };
    RString::from(text)
}

/// `ResourceStreamVTable::metrics_json`: the producer's counters (`{}` once it is gone).
///
/// # Safety
///
/// As for [`stream_last_error`].
unsafe extern "C" fn stream_metrics(this: *const c_void) -> RString {
    // SAFETY: `this` is the Arc<StreamShared> we handed out, still held by the wrapper.
    let shared = unsafe { &*(this as *const StreamShared) };
    let out = catch_unwind(AssertUnwindSafe(|| match shared.producer.lock() {
        Ok(g) => g
            .as_ref()
            .map_or_else(|| "{}".to_string(), |p| p.metrics().to_string()),
        Err(_) => "{}".to_string(),
    }));
    RString::from(out.unwrap_or_else(|_| "{}".to_string()))
}

/// `ResourceStreamVTable::release`: drops the wrapper's reference to the shared state.
///
/// # Safety
///
/// `this` is the `private_data` of an [`FfiResourceStream`] made by [`export_stream`], passed
/// here once; no other wrapper call on it runs or follows.
unsafe extern "C" fn stream_release(this: *mut c_void) {
    guard_release(|| {
        // SAFETY: the wrapper's reference, released once.
        drop(unsafe { Arc::from_raw(this as *const StreamShared) });
    });
}
