//! Our own `#[repr(C)]` mirrors of the Arrow C Data Interface and C Stream Interface
//! (<https://arrow.apache.org/docs/format/CStreamInterface.html>).
//!
//! Declaring them here, instead of passing arrow-rs's `FFI_*` types, decouples the plugin ABI
//! from the arrow-rs major version: a plugin built against another arrow-rs converts through the
//! same C layout. With the `arrow-60` feature the conversions to arrow-rs 60 are zero-copy moves
//! of the same bytes (size and alignment are asserted at compile time).
//!
//! # Ownership
//!
//! A struct whose `release` is `Some` owns its data; whoever holds it must call `release`
//! exactly once (our `Drop` impls do). Moving it out (e.g. [`ArrowArrayStream::into_raw_parts`])
//! leaves nothing to release behind.

use std::ffi::{c_char, c_int, c_void};

use abi_stable::StableAbi;

/// The Arrow C Data Interface `ArrowSchema` struct.
///
/// # Safety
///
/// Fields follow the Arrow C Data Interface specification; the producer's `release` frees
/// everything reachable from it.
#[repr(C)]
#[derive(StableAbi)]
pub struct ArrowSchema {
    /// Format string of the data type.
    pub format: *const c_char,
    /// Field name (may be null).
    pub name: *const c_char,
    /// Binary-encoded key/value metadata (may be null).
    pub metadata: *const c_char,
    /// Flags (nullable, dictionary ordered, map keys sorted).
    pub flags: i64,
    /// Number of children.
    pub n_children: i64,
    /// Children schemas.
    #[sabi(unsafe_opaque_field)]
    pub children: *mut *mut ArrowSchema,
    /// Dictionary value type, for dictionary-encoded fields.
    #[sabi(unsafe_opaque_field)]
    pub dictionary: *mut ArrowSchema,
    /// Producer-provided release callback; `None` once released.
    #[sabi(unsafe_opaque_field)]
    pub release: Option<unsafe extern "C" fn(*mut ArrowSchema)>,
    /// Producer-owned data.
    pub private_data: *mut c_void,
}

/// The Arrow C Data Interface `ArrowArray` struct.
///
/// # Safety
///
/// Fields follow the Arrow C Data Interface specification; the producer's `release` frees
/// everything reachable from it.
#[repr(C)]
#[derive(StableAbi)]
pub struct ArrowArray {
    /// Logical length.
    pub length: i64,
    /// Number of nulls (-1 if unknown).
    pub null_count: i64,
    /// Logical offset into the buffers.
    pub offset: i64,
    /// Number of buffers.
    pub n_buffers: i64,
    /// Number of children.
    pub n_children: i64,
    /// Buffer pointers.
    pub buffers: *mut *const c_void,
    /// Children arrays.
    #[sabi(unsafe_opaque_field)]
    pub children: *mut *mut ArrowArray,
    /// Dictionary values, for dictionary-encoded arrays.
    #[sabi(unsafe_opaque_field)]
    pub dictionary: *mut ArrowArray,
    /// Producer-provided release callback; `None` once released.
    #[sabi(unsafe_opaque_field)]
    pub release: Option<unsafe extern "C" fn(*mut ArrowArray)>,
    /// Producer-owned data.
    pub private_data: *mut c_void,
}

/// The Arrow C Stream Interface `ArrowArrayStream` struct: a blocking, pull-style stream of
/// record batches (struct arrays) sharing one schema.
///
/// # Safety
///
/// Calls must be serialized (one consumer at a time). `release` must be called exactly once by
/// the consumer; [`Drop`] does so.
#[repr(C)]
#[derive(StableAbi)]
pub struct ArrowArrayStream {
    /// Writes the stream's schema into `out`; returns 0 or an errno.
    #[sabi(unsafe_opaque_field)]
    pub get_schema: Option<unsafe extern "C" fn(*mut ArrowArrayStream, *mut ArrowSchema) -> c_int>,
    /// Writes the next batch into `out` (a released array at end of stream); 0 or an errno.
    #[sabi(unsafe_opaque_field)]
    pub get_next: Option<unsafe extern "C" fn(*mut ArrowArrayStream, *mut ArrowArray) -> c_int>,
    /// Description of the last error, valid until the next call.
    #[sabi(unsafe_opaque_field)]
    pub get_last_error: Option<unsafe extern "C" fn(*mut ArrowArrayStream) -> *const c_char>,
    /// Releases the stream; `None` once released.
    #[sabi(unsafe_opaque_field)]
    pub release: Option<unsafe extern "C" fn(*mut ArrowArrayStream)>,
    /// Producer-owned data.
    pub private_data: *mut c_void,
}

// SAFETY: the Arrow C stream contract lets a stream move between threads (calls are serialized by
// the single owner); the producer is responsible for its private data being Send.
unsafe impl Send for ArrowArrayStream {}
// SAFETY: as above for arrays and schemas, which are immutable once produced.
unsafe impl Send for ArrowArray {}
// SAFETY: see above.
unsafe impl Send for ArrowSchema {}

impl ArrowArrayStream {
    /// A released (empty) stream: every callback `None`.
    pub const fn released() -> Self {
        Self {
            get_schema: None,
            get_next: None,
            get_last_error: None,
            release: None,
            private_data: std::ptr::null_mut(),
        }
    }

    /// Whether the stream was released (or never initialized).
    pub fn is_released(&self) -> bool {
        self.release.is_none()
    }

    /// Moves the stream out of `self`, leaving a released stream behind, so that dropping
    /// `self` afterwards frees nothing.
    pub fn take(&mut self) -> Self {
        std::mem::replace(self, Self::released())
    }
}

impl Drop for ArrowArrayStream {
    fn drop(&mut self) {
        if let Some(release) = self.release {
            // SAFETY: the stream is owned by us and not yet released.
            unsafe { release(self) };
            self.release = None;
        }
    }
}

impl Drop for ArrowArray {
    fn drop(&mut self) {
        if let Some(release) = self.release {
            // SAFETY: the array is owned by us and not yet released.
            unsafe { release(self) };
            self.release = None;
        }
    }
}

impl Drop for ArrowSchema {
    fn drop(&mut self) {
        if let Some(release) = self.release {
            // SAFETY: the schema is owned by us and not yet released.
            unsafe { release(self) };
            self.release = None;
        }
    }
}

impl std::fmt::Debug for ArrowArrayStream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ArrowArrayStream")
            .field("released", &self.is_released())
            .finish()
    }
}

// Layout assertions: the C Data Interface fixes these on every 64-bit platform.
const _: () = {
    use std::mem::{align_of, offset_of, size_of};
    assert!(size_of::<ArrowSchema>() == 72);
    assert!(align_of::<ArrowSchema>() == 8);
    assert!(offset_of!(ArrowSchema, release) == 56);
    assert!(size_of::<ArrowArray>() == 80);
    assert!(align_of::<ArrowArray>() == 8);
    assert!(offset_of!(ArrowArray, release) == 64);
    assert!(size_of::<ArrowArrayStream>() == 40);
    assert!(align_of::<ArrowArrayStream>() == 8);
    assert!(offset_of!(ArrowArrayStream, release) == 24);
};

#[cfg(feature = "arrow-60")]
mod arrow60 {
    //! Zero-copy conversions to and from arrow-rs 60's FFI types.
    use std::mem::{align_of, size_of, ManuallyDrop};

    use arrow_array::ffi::{FFI_ArrowArray, FFI_ArrowSchema};
    use arrow_array::ffi_stream::FFI_ArrowArrayStream;

    use super::{ArrowArray, ArrowArrayStream, ArrowSchema};

    const _: () = {
        assert!(size_of::<FFI_ArrowArrayStream>() == size_of::<ArrowArrayStream>());
        assert!(align_of::<FFI_ArrowArrayStream>() == align_of::<ArrowArrayStream>());
        assert!(size_of::<FFI_ArrowArray>() == size_of::<ArrowArray>());
        assert!(align_of::<FFI_ArrowArray>() == align_of::<ArrowArray>());
        assert!(size_of::<FFI_ArrowSchema>() == size_of::<ArrowSchema>());
        assert!(align_of::<FFI_ArrowSchema>() == align_of::<ArrowSchema>());
    };

    impl From<FFI_ArrowArrayStream> for ArrowArrayStream {
        fn from(value: FFI_ArrowArrayStream) -> Self {
            let value = ManuallyDrop::new(value);
            // SAFETY: both are the Arrow C stream struct with identical layout (asserted above);
            // ownership moves, the source is not dropped.
            unsafe { std::ptr::read(&*value as *const FFI_ArrowArrayStream as *const Self) }
        }
    }

    impl From<ArrowArrayStream> for FFI_ArrowArrayStream {
        fn from(value: ArrowArrayStream) -> Self {
            let value = ManuallyDrop::new(value);
            // SAFETY: identical layout; ownership moves.
            unsafe { std::ptr::read(&*value as *const ArrowArrayStream as *const Self) }
        }
    }

    impl From<FFI_ArrowArray> for ArrowArray {
        fn from(value: FFI_ArrowArray) -> Self {
            let value = ManuallyDrop::new(value);
            // SAFETY: identical layout; ownership moves.
            unsafe { std::ptr::read(&*value as *const FFI_ArrowArray as *const Self) }
        }
    }

    impl From<ArrowArray> for FFI_ArrowArray {
        fn from(value: ArrowArray) -> Self {
            let value = ManuallyDrop::new(value);
            // SAFETY: identical layout; ownership moves.
            unsafe { std::ptr::read(&*value as *const ArrowArray as *const Self) }
        }
    }

    impl From<FFI_ArrowSchema> for ArrowSchema {
        fn from(value: FFI_ArrowSchema) -> Self {
            let value = ManuallyDrop::new(value);
            // SAFETY: identical layout; ownership moves.
            unsafe { std::ptr::read(&*value as *const FFI_ArrowSchema as *const Self) }
        }
    }

    impl From<ArrowSchema> for FFI_ArrowSchema {
        fn from(value: ArrowSchema) -> Self {
            let value = ManuallyDrop::new(value);
            // SAFETY: identical layout; ownership moves.
            unsafe { std::ptr::read(&*value as *const ArrowSchema as *const Self) }
        }
    }

    #[cfg(test)]
    mod tests {
        use std::sync::Arc;

        use arrow_array::{
            ffi_stream::RecordBatchStreamReader, Int64Array, RecordBatch, RecordBatchIterator,
            RecordBatchReader,
        };
        use arrow_schema::{DataType, Field, Schema};

        use super::*;

        #[test]
        fn stream_round_trips_through_the_mirror() {
            let schema = Arc::new(Schema::new(vec![Field::new("x", DataType::Int64, false)]));
            let batch = RecordBatch::try_new(
                schema.clone(),
                vec![Arc::new(Int64Array::from(vec![1, 2, 3]))],
            )
            .expect("batch");
            let reader = RecordBatchIterator::new(vec![Ok(batch.clone())], schema);
            let ffi = FFI_ArrowArrayStream::new(Box::new(reader));
            let mirror = ArrowArrayStream::from(ffi);
            assert!(!mirror.is_released());
            let back = FFI_ArrowArrayStream::from(mirror);
            let mut reader = RecordBatchStreamReader::try_new(back).expect("import");
            assert_eq!(reader.schema().field(0).name(), "x");
            let got = reader.next().expect("one batch").expect("ok");
            assert_eq!(got, batch);
            assert!(reader.next().is_none());
        }

        #[test]
        fn dropping_the_mirror_releases_the_producer() {
            let schema = Arc::new(Schema::new(vec![Field::new("x", DataType::Int64, false)]));
            let reader = RecordBatchIterator::new(Vec::new(), schema);
            let mirror = ArrowArrayStream::from(FFI_ArrowArrayStream::new(Box::new(reader)));
            drop(mirror); // must not leak or double free (checked under valgrind in CI runs)
        }
    }
}
