//! What a run reports while it goes: events and the callback that receives them.

use std::sync::Arc;

use super::Step;

/// What a run reports while it goes (for progress bars and logs).
#[derive(Debug, Clone)]
pub enum ProgressEvent {
    /// A resource started extracting.
    ResourceStarted {
        /// Resource name.
        resource: String,
    },
    /// Items read so far from a resource (JSON documents are counted by line).
    Items {
        /// Resource name.
        resource: String,
        /// Items so far.
        items: u64,
    },
    /// A resource finished.
    ResourceDone {
        /// Resource name.
        resource: String,
        /// Items read.
        items: u64,
    },
    /// A step started.
    StepStarted(Step),
    /// A step finished.
    StepDone(Step),
}

/// A progress callback.
#[derive(Clone)]
pub struct ProgressHook(pub Arc<dyn Fn(&ProgressEvent) + Send + Sync>);

impl std::fmt::Debug for ProgressHook {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ProgressHook")
    }
}
