//! `Foreign*` wrappers: the SDK's traits implemented over a loaded plugin library, so the host
//! drives a plugin exactly as it would drive a statically linked source or destination.
//!
//! Every call into a plugin is blocking (the ABI has no async). On an async host, call them
//! through [`blocking`] (or the `*_async` helpers), which run them on tokio's blocking pool:
//! a plugin blocking inside its own runtime on one of our async worker threads would stall it,
//! and tokio cannot detect that across two copies of itself.

use std::path::Path;
use std::sync::Arc;

use arrow_array::ffi_stream::{FFI_ArrowArrayStream, RecordBatchStreamReader};
use arrow_array::{RecordBatch, RecordBatchReader};
use arrow_schema::SchemaRef;
use serde_json::Value;
use sluice_abi::{
    ArrowArrayStream, FfiDestination, FfiDestinationClient, FfiResourceStream, FfiSource, RStr,
};
use sluice_sdk::destination::{
    BatchReader, ClientRequest, DropTablesRequest, JobReport, LoadCompletion, LoadJob, LoadPlan,
    SchemaUpdate, SchemaUpdateRequest, StoredSchema, StoredState,
};
use sluice_sdk::schema::Schema;
use sluice_sdk::{
    BatchProducer, BatchStream, CancelToken, Capabilities, Destination, DestinationClient, Error,
    ResourceDescriptor, ResourceRequest, Result, Source, StreamContext,
};

use crate::loader::LoadedPlugin;

/// Runs a blocking plugin call on tokio's blocking pool and awaits it.
pub async fn blocking<T, F>(f: F) -> Result<T>
where
    F: FnOnce() -> Result<T> + Send + 'static,
    T: Send + 'static,
{
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| Error::internal(format!("a plugin call did not complete: {e}")))?
}

fn check<T>(plugin: &LoadedPlugin, result: sluice_abi::FfiResult<T>) -> Result<T> {
    result.into_result().map_err(|e| {
        let e = Error::from(e);
        plugin.note_error(&e);
        e
    })
}

fn parse<T: serde::de::DeserializeOwned>(
    plugin: &LoadedPlugin,
    text: &str,
    what: &str,
) -> Result<T> {
    serde_json::from_str(text).map_err(|e| {
        Error::internal(format!(
            "plugin `{}` returned invalid {what}: {e}",
            plugin.name()
        ))
    })
}

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
        // SAFETY: private_data belongs to this vtable and we own the source.
        let out = unsafe { (self.ffi.vtable.describe())(self.ffi.private_data) };
        let text = check(&self.plugin, out)?;
        parse(&self.plugin, text.as_str(), "resource descriptors")
    }

    fn open_resource(&self, request: ResourceRequest, ctx: StreamContext) -> Result<BatchStream> {
        let json = serde_json::to_string(&request)?;
        // SAFETY: as above; the cancel flag reference moves into the plugin.
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

/// The stream of one resource run of a loaded plugin (or of a destination query).
pub struct ForeignStream {
    // field order = drop order: the Arrow reader is released before the wrapper
    reader: Option<RecordBatchStreamReader>,
    stream: FfiResourceStream,
    plugin: Arc<LoadedPlugin>,
    done: bool,
}

impl ForeignStream {
    pub(crate) fn new(stream: FfiResourceStream, plugin: Arc<LoadedPlugin>) -> Self {
        Self {
            reader: None,
            stream,
            plugin,
            done: false,
        }
    }

    /// The plugin's structured error for a failed Arrow call, or a generic one.
    fn error(&self, arrow: arrow_schema::ArrowError) -> Error {
        let e = match self.stream.last_error() {
            Some(e) => Error::from(e),
            None => Error::internal(format!(
                "plugin `{}` failed to stream a batch: {arrow}",
                self.plugin.name()
            )),
        };
        self.plugin.note_error(&e);
        e
    }

    fn reader(&mut self) -> Result<&mut RecordBatchStreamReader> {
        if self.reader.is_none() {
            let arrow = FFI_ArrowArrayStream::from(self.stream.arrow.take());
            let reader = RecordBatchStreamReader::try_new(arrow).map_err(|e| self.error(e))?;
            self.reader = Some(reader);
        }
        self.reader
            .as_mut()
            .ok_or_else(|| Error::internal("stream reader missing"))
    }
}

impl BatchProducer for ForeignStream {
    fn schema(&mut self) -> Result<SchemaRef> {
        Ok(self.reader()?.schema())
    }

    fn next_batch(&mut self) -> Result<Option<RecordBatch>> {
        if self.done {
            return Ok(None);
        }
        let next = self.reader()?.next();
        match next {
            Some(Ok(batch)) => Ok(Some(batch)),
            Some(Err(e)) => {
                self.done = true;
                Err(self.error(e))
            }
            None => {
                self.done = true;
                Ok(None)
            }
        }
    }

    fn final_state(&mut self) -> Option<Value> {
        let text = self.stream.final_state_json();
        match serde_json::from_str::<Value>(&text) {
            Ok(Value::Null) | Err(_) => None,
            Ok(v) => Some(v),
        }
    }

    fn metrics(&self) -> Value {
        serde_json::from_str(&self.stream.metrics_json()).unwrap_or(Value::Null)
    }
}

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
        // SAFETY: private_data belongs to this vtable.
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
        // SAFETY: private_data belongs to this vtable.
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

macro_rules! call {
    ($self:ident, $fn:ident $(, $arg:expr)*) => {{
        // SAFETY: private_data belongs to this vtable and we own the client.
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
