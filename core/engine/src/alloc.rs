//! The allocator of the sluice binaries: mimalloc.
//!
//! The normalizer allocates per row and hands whole column buffers from worker threads to the
//! writer thread; mimalloc is faster than glibc's malloc at both. It also keeps freed memory
//! for reuse longer, so the pipeline calls [`release`] between normalizing and loading: the
//! destination (DuckDB's buffer pool, in the same process) then does not stack on top of the
//! normalizer's freed buffers.
//!
//! ```ignore
//! #[global_allocator]
//! static GLOBAL: sluice::alloc::Allocator = sluice::alloc::ALLOCATOR;
//! ```

/// The allocator type.
pub type Allocator = mimalloc::MiMalloc;

/// The allocator, for `#[global_allocator]`.
pub const ALLOCATOR: Allocator = mimalloc::MiMalloc;

unsafe extern "C" {
    fn mi_collect(force: bool);
}

/// Returns the memory freed so far to the OS.
pub fn release() {
    // SAFETY: mimalloc is linked (this module's dependency); mi_collect is thread-safe
    unsafe { mi_collect(true) };
}
