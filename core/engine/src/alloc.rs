//! The allocator of the sluice binaries: mimalloc.
//!
//! The normalizer allocates per row and hands whole column buffers from worker threads to the
//! writer thread; mimalloc is faster than glibc's malloc at both. It also keeps freed memory
//! for reuse longer, so the pipeline calls [`release`] between normalizing and loading: the
//! destination (DuckDB's buffer pool, in the same process) then does not stack on top of the
//! normalizer's freed buffers.
//!
//! ```ignore
//! sluice::use_allocator!();
//! ```

/// The allocator type.
pub type Allocator = mimalloc::MiMalloc;

/// The allocator, for `#[global_allocator]`.
pub const ALLOCATOR: Allocator = mimalloc::MiMalloc;

unsafe extern "C" {
    fn mi_collect(force: bool);
    fn mi_option_set(option: std::ffi::c_int, value: std::ffi::c_long);
    fn mi_option_get(option: std::ffi::c_int) -> std::ffi::c_long;
}

/// `mi_option_arena_eager_commit` in mimalloc.h (the same index in mimalloc 2 and 3).
const MI_OPTION_ARENA_EAGER_COMMIT: std::ffi::c_int = 4;

/// Sets the allocator's options before the first allocation (see [`use_allocator!`]).
///
/// mimalloc commits its arenas eagerly where the OS overcommits. With transparent huge pages
/// set to `always` (common on Linux servers) the kernel then backs each first touch of an arena
/// with a 2 MiB page, so memory mimalloc merely reserved shows up in the RSS (83 MiB for a
/// 2,000-line file instead of 39; about 30 MiB on the nested benchmark's normalizer).
/// Committing on demand keeps the RSS to what is used, and saves the kernel time of those
/// faults. It must run before the first allocation creates the first arena, hence a
/// constructor rather than a call in `main`. A `MIMALLOC_ARENA_EAGER_COMMIT` set in the
/// environment wins.
///
/// # Safety
/// Only as the constructor [`use_allocator!`] registers: mimalloc's options are plain globals,
/// and setting one while other threads allocate is a data race.
#[doc(hidden)]
pub unsafe extern "C" fn configure_at_start() {
    // SAFETY: a NUL-terminated name; getenv does not allocate
    let user_set = unsafe { !libc::getenv(c"MIMALLOC_ARENA_EAGER_COMMIT".as_ptr()).is_null() };
    if !user_set {
        // SAFETY: mimalloc is linked; setting an option needs no initialized heap, and the
        // loader runs constructors before any thread of the program exists
        unsafe { mi_option_set(MI_OPTION_ARENA_EAGER_COMMIT, 0) };
    }
}

/// mimalloc's `arena_eager_commit` option as it stands (0 once [`configure_at_start`] ran;
/// mimalloc's default is 2).
#[allow(clippy::useless_conversion)] // c_long is i32 on some targets
pub fn arena_eager_commit() -> i64 {
    // SAFETY: mimalloc is linked; reading an option is thread-safe
    i64::from(unsafe { mi_option_get(MI_OPTION_ARENA_EAGER_COMMIT) })
}

/// Makes mimalloc the binary's allocator, configured before `main` (see
/// [`configure_at_start`]; the constructor is an ELF `.init_array` entry, so on targets other
/// than Linux mimalloc keeps its defaults). One line at the top level of a binary crate:
///
/// ```ignore
/// sluice::use_allocator!();
/// ```
#[macro_export]
macro_rules! use_allocator {
    () => {
        #[global_allocator]
        static GLOBAL: $crate::alloc::Allocator = $crate::alloc::ALLOCATOR;

        // a constructor of the binary itself (the linker keeps it; one in the library's rlib
        // could be dropped), run by the loader before the Rust runtime allocates
        #[used]
        #[cfg_attr(target_os = "linux", link_section = ".init_array")]
        static CONFIGURE_ALLOCATOR: unsafe extern "C" fn() = $crate::alloc::configure_at_start;
    };
}

/// Returns the memory freed so far to the OS.
pub fn release() {
    // SAFETY: mimalloc is linked (this module's dependency); mi_collect is thread-safe
    unsafe { mi_collect(true) };
}
