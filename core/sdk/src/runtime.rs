//! The plugin-owned tokio runtime.
//!
//! Every plugin library links its own copy of tokio, whose runtime context is a thread-local of
//! that copy: a host runtime handle is useless inside a plugin. So each plugin creates its own
//! multi-thread runtime at `init` (worker count from the host's settings), keeps it for the life
//! of the process and never drops it (libraries are never unloaded).

use std::sync::OnceLock;

use tokio::runtime::{Builder, Handle, Runtime};

/// Builds a runtime named after `name` with `workers` worker threads.
pub(crate) fn build(name: &str, workers: usize) -> std::io::Result<Runtime> {
    let thread_name = format!("sluice-{name}-rt");
    Builder::new_multi_thread()
        .worker_threads(workers.max(1))
        .thread_name(thread_name)
        .enable_all()
        .build()
}

/// A shared runtime for SDK code running outside a plugin (host-side wrappers, tests).
pub(crate) fn fallback_handle() -> Handle {
    static RT: OnceLock<Option<Runtime>> = OnceLock::new();
    match RT.get_or_init(|| build("sdk", 2).ok()) {
        Some(rt) => rt.handle().clone(),
        // Without threads we cannot run async producers at all; a current-thread runtime would
        // deadlock the blocking consumer, so this is a hard failure of the environment.
        None => panic!("cannot start the sluice SDK runtime: the OS refused to create threads"),
    }
}
