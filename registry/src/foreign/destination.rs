//! Wraps `sluice_abi::FfiDestination` and `sluice_abi::FfiDestinationClient`
//! (core/abi/src/destination.rs) as a [`Destination`] and its [`DestinationClient`]s:
//! [`ForeignDestination`] and [`ForeignClient`]. The plugin side that fills them is
//! `sluice_sdk::export::destination`.
//!
//! Payloads cross as JSON text borrowed for the call (`RStr`); a table's rows cross as an
//! Arrow C stream that the plugin owns (and releases) from the call on.

use std::path::Path;
use std::sync::Arc;

use arrow_array::ffi_stream::FFI_ArrowArrayStream;
use sluice_abi::{ArrowArrayStream, FfiDestination, FfiDestinationClient, RStr};
use sluice_sdk::destination::{
    BatchReader, ClientRequest, DropTablesRequest, JobReport, LoadCompletion, LoadJob, LoadPlan,
    SchemaUpdate, SchemaUpdateRequest, StoredSchema, StoredState,
};
use sluice_sdk::schema::Schema;
use sluice_sdk::{BatchStream, CancelToken, Capabilities, Destination, DestinationClient, Result};

use super::stream::ForeignStream;
use super::{check, parse};
use crate::loader::LoadedPlugin;

/// A destination living in a loaded plugin.
pub struct ForeignDestination {
    ffi: FfiDestination,
    plugin: Arc<LoadedPlugin>,
}

impl std::fmt::Debug for ForeignDestination {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ForeignDestination")
            .field("plugin", &self.plugin.name())
            .finish()
    }
}

impl ForeignDestination {
    pub(crate) fn new(ffi: FfiDestination, plugin: Arc<LoadedPlugin>) -> Self {
        Self { ffi, plugin }
    }

    /// The plugin behind it.
    pub fn plugin(&self) -> &Arc<LoadedPlugin> {
        &self.plugin
    }

    /// Opens a typed client (the same as [`Destination::open_client`] without boxing).
    pub fn open_foreign_client(&self, request: &ClientRequest) -> Result<ForeignClient> {
        let json = serde_json::to_string(request)?;
        // SAFETY: private_data belongs to this vtable and we own the destination (not
        // released); `json` outlives the call that borrows it.
        let out = unsafe {
            (self.ffi.vtable.open_client())(self.ffi.private_data, RStr::from(json.as_str()))
        };
        let ffi = check(&self.plugin, out)?;
        Ok(ForeignClient {
            ffi,
            plugin: self.plugin.clone(),
        })
    }
}

impl Destination for ForeignDestination {
    fn capabilities(&self) -> Capabilities {
        // SAFETY: private_data belongs to this vtable and we own the destination.
        let text = unsafe { (self.ffi.vtable.capabilities_json())(self.ffi.private_data) };
        serde_json::from_str(text.as_str()).unwrap_or_else(|e| {
            tracing::warn!(target: "sluice::registry", plugin = %self.plugin.name(), "invalid capabilities ({e}); using defaults");
            Capabilities::default()
        })
    }

    fn open_client(&self, request: ClientRequest) -> Result<Box<dyn DestinationClient>> {
        Ok(Box::new(self.open_foreign_client(&request)?))
    }
}

/// A destination job client of a loaded plugin.
pub struct ForeignClient {
    ffi: FfiDestinationClient,
    plugin: Arc<LoadedPlugin>,
}

impl std::fmt::Debug for ForeignClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ForeignClient")
            .field("plugin", &self.plugin.name())
            .finish()
    }
}

/// Calls the client's vtable function `$fn` with `$args` and checks the result. The
/// arguments borrow (`RStr`) only values of the calling method, which outlive the call.
macro_rules! call {
    ($self:ident, $fn:ident $(, $arg:expr)*) => {{
        // SAFETY: private_data belongs to this vtable and we own the client (not released);
        // `&mut self` makes this the client's only caller, as the ABI asks.
        let out = unsafe { ($self.ffi.vtable.$fn())($self.ffi.private_data $(, $arg)*) };
        check(&$self.plugin, out)
    }};
}

impl DestinationClient for ForeignClient {
    fn initialize_storage(&mut self) -> Result<()> {
        call!(self, initialize_storage)
    }

    fn is_storage_initialized(&mut self) -> Result<bool> {
        call!(self, is_storage_initialized)
    }

    fn drop_storage(&mut self) -> Result<()> {
        call!(self, drop_storage)
    }

    fn get_stored_schema(&mut self, schema_name: &str) -> Result<Option<StoredSchema>> {
        let out = call!(self, get_stored_schema, RStr::from(schema_name))?;
        match out.into_option() {
            Some(text) => Ok(Some(parse(&self.plugin, text.as_str(), "stored schema")?)),
            None => Ok(None),
        }
    }

    fn get_stored_state(&mut self, pipeline_name: &str) -> Result<Option<StoredState>> {
        let out = call!(self, get_stored_state, RStr::from(pipeline_name))?;
        match out.into_option() {
            Some(text) => Ok(Some(parse(&self.plugin, text.as_str(), "stored state")?)),
            None => Ok(None),
        }
    }

    fn update_stored_schema(
        &mut self,
        _schema: &Schema,
        schema_json: &str,
        request: &SchemaUpdateRequest,
    ) -> Result<SchemaUpdate> {
        let request = serde_json::to_string(request)?;
        let out = call!(
            self,
            update_stored_schema,
            RStr::from(schema_json),
            RStr::from(request.as_str())
        )?;
        parse(&self.plugin, out.as_str(), "schema update")
    }

    fn start_load(&mut self, load_id: &str, plan: &LoadPlan) -> Result<()> {
        let plan = serde_json::to_string(plan)?;
        call!(
            self,
            start_load,
            RStr::from(load_id),
            RStr::from(plan.as_str())
        )
    }

    fn write_table(
        &mut self,
        load_id: &str,
        job: &LoadJob,
        data: BatchReader,
        cancel: &CancelToken,
    ) -> Result<JobReport> {
        let job = serde_json::to_string(job)?;
        let stream = ArrowArrayStream::from(FFI_ArrowArrayStream::new(data));
        let out = call!(
            self,
            write_table,
            RStr::from(load_id),
            RStr::from(job.as_str()),
            stream,
            cancel.to_ffi()
        )?;
        parse(&self.plugin, out.as_str(), "job report")
    }

    fn load_file(
        &mut self,
        load_id: &str,
        job: &LoadJob,
        path: &Path,
        cancel: &CancelToken,
    ) -> Result<JobReport> {
        let job = serde_json::to_string(job)?;
        let path = path.to_string_lossy();
        let out = call!(
            self,
            load_file,
            RStr::from(load_id),
            RStr::from(job.as_str()),
            RStr::from(path.as_ref()),
            cancel.to_ffi()
        )?;
        parse(&self.plugin, out.as_str(), "job report")
    }

    fn complete_load(&mut self, load_id: &str, completion: &LoadCompletion) -> Result<()> {
        let completion = serde_json::to_string(completion)?;
        call!(
            self,
            complete_load,
            RStr::from(load_id),
            RStr::from(completion.as_str())
        )
    }

    fn is_load_completed(&mut self, load_id: &str) -> Result<bool> {
        call!(self, is_load_completed, RStr::from(load_id))
    }

    fn drop_tables(&mut self, request: &DropTablesRequest) -> Result<()> {
        let request = serde_json::to_string(request)?;
        call!(self, drop_tables, RStr::from(request.as_str()))
    }

    fn query(&mut self, sql: &str, cancel: &CancelToken) -> Result<BatchStream> {
        let stream = call!(self, query, RStr::from(sql), cancel.to_ffi())?;
        Ok(BatchStream::new(ForeignStream::new(
            stream,
            self.plugin.clone(),
        )))
    }
}
