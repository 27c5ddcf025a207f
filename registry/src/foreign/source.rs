//! Wraps `sluice_abi::FfiSource` (core/abi/src/source.rs) as a [`Source`]: [`ForeignSource`].
//! The plugin side that fills it is `sluice_sdk::export::source`.

use std::sync::Arc;

use sluice_abi::{FfiSource, RStr};
use sluice_sdk::{BatchStream, ResourceDescriptor, ResourceRequest, Result, Source, StreamContext};

use super::stream::ForeignStream;
use super::{blocking, check, parse};
use crate::loader::LoadedPlugin;

/// A source living in a loaded plugin.
pub struct ForeignSource {
    ffi: FfiSource,
    plugin: Arc<LoadedPlugin>,
}

impl std::fmt::Debug for ForeignSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ForeignSource")
            .field("plugin", &self.plugin.name())
            .finish()
    }
}

impl ForeignSource {
    pub(crate) fn new(ffi: FfiSource, plugin: Arc<LoadedPlugin>) -> Self {
        Self { ffi, plugin }
    }

    /// The plugin behind it.
    pub fn plugin(&self) -> &Arc<LoadedPlugin> {
        &self.plugin
    }

    /// [`Source::describe`] off the async workers.
    pub async fn describe_async(self: &Arc<Self>) -> Result<Vec<ResourceDescriptor>> {
        let this = self.clone();
        blocking(move || this.describe()).await
    }

    /// [`Source::open_resource`] off the async workers.
    pub async fn open_resource_async(
        self: &Arc<Self>,
        request: ResourceRequest,
        ctx: StreamContext,
    ) -> Result<BatchStream> {
        let this = self.clone();
        blocking(move || this.open_resource(request, ctx)).await
    }
}

impl Source for ForeignSource {
    fn describe(&self) -> Result<Vec<ResourceDescriptor>> {
        // SAFETY: private_data belongs to this vtable and we own the source (not released).
        let out = unsafe { (self.ffi.vtable.describe())(self.ffi.private_data) };
        let text = check(&self.plugin, out)?;
        parse(&self.plugin, text.as_str(), "resource descriptors")
    }

    fn open_resource(&self, request: ResourceRequest, ctx: StreamContext) -> Result<BatchStream> {
        let json = serde_json::to_string(&request)?;
        // SAFETY: as above; `json` outlives the call that borrows it, and the cancel flag
        // reference moves into the plugin.
        let out = unsafe {
            (self.ffi.vtable.open_resource())(
                self.ffi.private_data,
                RStr::from(json.as_str()),
                ctx.cancel.to_ffi(),
            )
        };
        let stream = check(&self.plugin, out)?;
        Ok(BatchStream::new(ForeignStream::new(
            stream,
            self.plugin.clone(),
        )))
    }
}
