//! Cancellation: a host-owned flag shared with plugin code.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use sluice_abi::FfiCancel;

use crate::{Error, Result};

/// A cancellation token as plugin code sees it: cheap to clone, thread-safe.
///
/// Inside a plugin it wraps the host's reference-counted [`FfiCancel`]; on the host side it is
/// created by a [`CancelFlag`].
#[derive(Clone, Debug)]
pub struct CancelToken(Arc<FfiCancel>);

impl CancelToken {
    /// Wraps a flag received from the host.
    pub fn from_ffi(cancel: FfiCancel) -> Self {
        Self(Arc::new(cancel))
    }

    /// A token that is never cancelled.
    pub fn never() -> Self {
        Self(Arc::new(FfiCancel::never()))
    }

    /// A new reference to pass across the boundary.
    pub fn to_ffi(&self) -> FfiCancel {
        (*self.0).clone()
    }

    /// Whether cancellation was requested.
    pub fn is_cancelled(&self) -> bool {
        self.0.is_cancelled()
    }

    /// `Err(cancelled)` once cancellation was requested: call between pages and batches.
    pub fn check(&self) -> Result<()> {
        if self.is_cancelled() {
            Err(Error::cancelled())
        } else {
            Ok(())
        }
    }

    /// Completes when cancellation is requested (polls every 10 ms: the flag has no
    /// notification across the boundary). Use in `tokio::select!` next to I/O.
    pub async fn cancelled(&self) {
        while !self.is_cancelled() {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }
}

/// The host side of a cancellation flag.
#[derive(Clone, Debug, Default)]
pub struct CancelFlag(Arc<AtomicBool>);

impl CancelFlag {
    /// A new, unset flag.
    pub fn new() -> Self {
        Self::default()
    }

    /// Requests cancellation.
    pub fn cancel(&self) {
        self.0.store(true, Ordering::Release);
    }

    /// Whether cancellation was requested.
    pub fn is_cancelled(&self) -> bool {
        self.0.load(Ordering::Acquire)
    }

    /// A token observing this flag.
    pub fn token(&self) -> CancelToken {
        CancelToken::from_ffi(FfiCancel::new(self.0.clone()))
    }
}
