//! The host-owned, reference-counted cancellation flag.

use std::ffi::c_void;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use abi_stable::StableAbi;

/// A cancellation flag owned by the host and shared with a plugin.
///
/// Passing it by value transfers one reference; [`Clone`] retains another and [`Drop`] releases
/// it, so a plugin's background task may keep it alive after the host dropped its stream.
/// The functions live in the library that created the flag (the host), which is never unloaded.
/// [`FfiCancel::is_cancelled`] is thread-safe.
///
/// # Safety
///
/// `ctx` is only touched through the three functions, which the creator implements consistently.
#[repr(C)]
#[derive(StableAbi)]
pub struct FfiCancel {
    ctx: *const c_void,
    is_cancelled: unsafe extern "C" fn(ctx: *const c_void) -> bool,
    retain: unsafe extern "C" fn(ctx: *const c_void),
    release: unsafe extern "C" fn(ctx: *const c_void),
}

// SAFETY: the flag is an atomic behind an `Arc`; all three functions are thread-safe.
unsafe impl Send for FfiCancel {}
// SAFETY: see above.
unsafe impl Sync for FfiCancel {}

unsafe extern "C" fn arc_is_cancelled(ctx: *const c_void) -> bool {
    if ctx.is_null() {
        return false;
    }
    // SAFETY: ctx comes from `Arc::into_raw` and we hold a reference.
    let flag = unsafe { &*(ctx as *const AtomicBool) };
    flag.load(Ordering::Acquire)
}

unsafe extern "C" fn arc_retain(ctx: *const c_void) {
    if !ctx.is_null() {
        // SAFETY: ctx comes from `Arc::into_raw` and we hold a reference.
        unsafe { Arc::increment_strong_count(ctx as *const AtomicBool) };
    }
}

unsafe extern "C" fn arc_release(ctx: *const c_void) {
    if !ctx.is_null() {
        // SAFETY: ctx comes from `Arc::into_raw`; this drops the reference we own.
        unsafe { Arc::decrement_strong_count(ctx as *const AtomicBool) };
    }
}

impl FfiCancel {
    /// A cancel flag backed by `flag`: setting it to `true` cancels.
    pub fn new(flag: Arc<AtomicBool>) -> Self {
        Self {
            ctx: Arc::into_raw(flag) as *const c_void,
            is_cancelled: arc_is_cancelled,
            retain: arc_retain,
            release: arc_release,
        }
    }

    /// A flag that is never cancelled.
    pub fn never() -> Self {
        Self {
            ctx: std::ptr::null(),
            is_cancelled: arc_is_cancelled,
            retain: arc_retain,
            release: arc_release,
        }
    }

    /// Whether the host asked to cancel.
    pub fn is_cancelled(&self) -> bool {
        // SAFETY: the functions were set by the creator for this ctx.
        unsafe { (self.is_cancelled)(self.ctx) }
    }
}

impl Clone for FfiCancel {
    fn clone(&self) -> Self {
        // SAFETY: retain adds the reference the clone will release.
        unsafe { (self.retain)(self.ctx) };
        Self {
            ctx: self.ctx,
            is_cancelled: self.is_cancelled,
            retain: self.retain,
            release: self.release,
        }
    }
}

impl Drop for FfiCancel {
    fn drop(&mut self) {
        // SAFETY: we own one reference.
        unsafe { (self.release)(self.ctx) };
    }
}

impl std::fmt::Debug for FfiCancel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FfiCancel")
            .field("cancelled", &self.is_cancelled())
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clones_share_the_flag_and_keep_it_alive() {
        let flag = Arc::new(AtomicBool::new(false));
        let cancel = FfiCancel::new(flag.clone());
        let other = cancel.clone();
        assert!(!other.is_cancelled());
        flag.store(true, Ordering::Release);
        assert!(cancel.is_cancelled() && other.is_cancelled());
        drop(cancel);
        drop(flag);
        assert!(other.is_cancelled()); // still alive through the clone
        assert!(!FfiCancel::never().is_cancelled());
    }
}
