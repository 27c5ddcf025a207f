//! Fills `sluice_abi::FfiDestination` and `sluice_abi::FfiDestinationClient`
//! (core/abi/src/destination.rs): an opened [`Destination`] behind the `DestinationVTable`,
//! and each of its job clients behind the `DestinationClientVTable`. The host-side wrappers
//! are `sluice_registry::ForeignDestination` and `sluice_registry::ForeignClient`.
//!
//! `private_data` is a `Box<DestinationBox>` made by [`export_destination`] or a
//! `Box<ClientBox>` made by [`export_client`]; the host owns each and frees it, exactly once,
//! through its `release`. A client serialises its calls behind a mutex (the ABI allows one
//! caller at a time; the mutex makes a second one wait instead of racing).

use std::ffi::c_void;
use std::path::Path;
use std::sync::{Arc, Mutex};

use arrow_array::ffi_stream::{FFI_ArrowArrayStream, RecordBatchStreamReader};
use sluice_abi::{
    ArrowArrayStream, DestinationClientVTable, DestinationClientVTableRef, DestinationVTable,
    DestinationVTableRef, FfiCancel, FfiDestination, FfiDestinationClient, FfiResourceStream,
    FfiResult, ROption, RResult, RStr, RString, WithMetadata,
};

use super::stream::export_stream;
use super::{guard, guard_release, PluginState};
use crate::destination::{
    ClientRequest, Destination, DestinationClient, DropTablesRequest, LoadCompletion, LoadJob,
    LoadPlan, SchemaUpdateRequest,
};
use crate::schema::Schema;
use crate::{CancelToken, Error, Result};

// ---------------------------------------------------------------------------------------------
// the destination (FfiDestination)

struct DestinationBox {
    destination: Arc<dyn Destination>,
    state: &'static PluginState,
}

const DESTINATION_VTABLE: &WithMetadata<DestinationVTable> =
    &WithMetadata::new(DestinationVTable {
        capabilities_json: destination_capabilities,
        open_client: destination_open_client,
        release: destination_release,
    });

/// Exposes `destination` as an [`FfiDestination`].
pub fn export_destination(
    destination: Arc<dyn Destination>,
    state: &'static PluginState,
) -> FfiDestination {
    let boxed = Box::new(DestinationBox { destination, state });
    FfiDestination {
        vtable: DestinationVTableRef(DESTINATION_VTABLE.static_as_prefix()),
        private_data: Box::into_raw(boxed).cast(),
    }
}

/// `DestinationVTable::capabilities_json` (`{"error": ...}` if the plugin fails).
///
/// # Safety
///
/// `this` is the `private_data` of an [`FfiDestination`] made by [`export_destination`] that
/// the host has not released.
unsafe extern "C" fn destination_capabilities(this: *const c_void) -> RString {
    // SAFETY: `this` is our DestinationBox, still owned by the host.
    let b = unsafe { &*(this as *const DestinationBox) };
    let out = guard(b.state, "in capabilities", || {
        Ok(serde_json::to_string(&b.destination.capabilities())?)
    });
    match out {
        RResult::ROk(s) => RString::from(s),
        RResult::RErr(e) => {
            RString::from(serde_json::json!({"error": e.message.as_str()}).to_string())
        }
    }
}

/// `DestinationVTable::open_client`.
///
/// # Safety
///
/// As for [`destination_capabilities`].
unsafe extern "C" fn destination_open_client(
    this: *const c_void,
    request_json: RStr<'_>,
) -> FfiResult<FfiDestinationClient> {
    // SAFETY: `this` is our DestinationBox, still owned by the host.
    let b = unsafe { &*(this as *const DestinationBox) };
    guard(b.state, "while opening a destination client", || {
        let request: ClientRequest = serde_json::from_str(request_json.as_str())
            .map_err(|e| Error::config(format!("invalid client request from the host: {e}")))?;
        let client = b.destination.open_client(request)?;
        Ok(export_client(client, b.state))
    })
}

/// `DestinationVTable::release`: drops the destination (its open clients keep their own
/// state).
///
/// # Safety
///
/// `this` is the `private_data` of an [`FfiDestination`] made by [`export_destination`],
/// passed here once; no other call on it runs or follows.
unsafe extern "C" fn destination_release(this: *mut c_void) {
    guard_release(|| {
        // SAFETY: released once by the host, after its last call.
        drop(unsafe { Box::from_raw(this as *mut DestinationBox) });
    });
}

// ---------------------------------------------------------------------------------------------
// the job client (FfiDestinationClient)

struct ClientBox {
    client: Mutex<Box<dyn DestinationClient>>,
    state: &'static PluginState,
}

impl ClientBox {
    fn call<T>(
        &self,
        what: &str,
        f: impl FnOnce(&mut dyn DestinationClient) -> Result<T>,
    ) -> FfiResult<T> {
        guard(self.state, what, || {
            let mut client = self
                .client
                .lock()
                .map_err(|_| Error::internal("destination client state is poisoned"))?;
            f(client.as_mut())
        })
    }
}

const CLIENT_VTABLE: &WithMetadata<DestinationClientVTable> =
    &WithMetadata::new(DestinationClientVTable {
        initialize_storage: client_initialize_storage,
        is_storage_initialized: client_is_storage_initialized,
        drop_storage: client_drop_storage,
        get_stored_schema: client_get_stored_schema,
        get_stored_state: client_get_stored_state,
        update_stored_schema: client_update_stored_schema,
        start_load: client_start_load,
        write_table: client_write_table,
        load_file: client_load_file,
        complete_load: client_complete_load,
        is_load_completed: client_is_load_completed,
        drop_tables: client_drop_tables,
        query: client_query,
        release: client_release,
    });

/// Exposes a job client as an [`FfiDestinationClient`].
pub fn export_client(
    client: Box<dyn DestinationClient>,
    state: &'static PluginState,
) -> FfiDestinationClient {
    let boxed = Box::new(ClientBox {
        client: Mutex::new(client),
        state,
    });
    FfiDestinationClient {
        vtable: DestinationClientVTableRef(CLIENT_VTABLE.static_as_prefix()),
        private_data: Box::into_raw(boxed).cast(),
    }
}

/// The client behind `this`.
///
/// # Safety
///
/// `this` is the `private_data` of an [`FfiDestinationClient`] made by [`export_client`] that
/// the host has not released, and it outlives `'a` (the call it is borrowed for). Every
/// `client_*` function below requires the same of its own `this`.
unsafe fn client<'a>(this: *const c_void) -> &'a ClientBox {
    // SAFETY: the caller passes the ClientBox pointer we handed out, still owned by the host.
    unsafe { &*(this as *const ClientBox) }
}

fn parse<T: serde::de::DeserializeOwned>(text: &str, what: &str) -> Result<T> {
    serde_json::from_str(text)
        .map_err(|e| Error::config(format!("invalid {what} from the host: {e}")))
}

/// `DestinationClientVTable::initialize_storage`.
///
/// # Safety
///
/// As for [`client`].
unsafe extern "C" fn client_initialize_storage(this: *const c_void) -> FfiResult<()> {
    // SAFETY: our caller's contract is `client`'s.
    let b = unsafe { client(this) };
    b.call("in initialize_storage", |c| c.initialize_storage())
}

/// `DestinationClientVTable::is_storage_initialized`.
///
/// # Safety
///
/// As for [`client`].
unsafe extern "C" fn client_is_storage_initialized(this: *const c_void) -> FfiResult<bool> {
    // SAFETY: our caller's contract is `client`'s.
    let b = unsafe { client(this) };
    b.call("in is_storage_initialized", |c| c.is_storage_initialized())
}

/// `DestinationClientVTable::drop_storage`.
///
/// # Safety
///
/// As for [`client`].
unsafe extern "C" fn client_drop_storage(this: *const c_void) -> FfiResult<()> {
    // SAFETY: our caller's contract is `client`'s.
    let b = unsafe { client(this) };
    b.call("in drop_storage", |c| c.drop_storage())
}

/// `DestinationClientVTable::get_stored_schema`.
///
/// # Safety
///
/// As for [`client`].
unsafe extern "C" fn client_get_stored_schema(
    this: *const c_void,
    schema_name: RStr<'_>,
) -> FfiResult<ROption<RString>> {
    // SAFETY: our caller's contract is `client`'s.
    let b = unsafe { client(this) };
    b.call("in get_stored_schema", |c| {
        let stored = c.get_stored_schema(schema_name.as_str())?;
        Ok(match stored {
            Some(s) => ROption::RSome(RString::from(serde_json::to_string(&s)?)),
            None => ROption::RNone,
        })
    })
}

/// `DestinationClientVTable::get_stored_state`.
///
/// # Safety
///
/// As for [`client`].
unsafe extern "C" fn client_get_stored_state(
    this: *const c_void,
    pipeline_name: RStr<'_>,
) -> FfiResult<ROption<RString>> {
    // SAFETY: our caller's contract is `client`'s.
    let b = unsafe { client(this) };
    b.call("in get_stored_state", |c| {
        let stored = c.get_stored_state(pipeline_name.as_str())?;
        Ok(match stored {
            Some(s) => ROption::RSome(RString::from(serde_json::to_string(&s)?)),
            None => ROption::RNone,
        })
    })
}

/// `DestinationClientVTable::update_stored_schema`.
///
/// # Safety
///
/// As for [`client`].
unsafe extern "C" fn client_update_stored_schema(
    this: *const c_void,
    schema_json: RStr<'_>,
    request_json: RStr<'_>,
) -> FfiResult<RString> {
    // SAFETY: our caller's contract is `client`'s.
    let b = unsafe { client(this) };
    b.call("in update_stored_schema", |c| {
        let schema: Schema = parse(schema_json.as_str(), "schema")?;
        let request: SchemaUpdateRequest = parse(request_json.as_str(), "schema update request")?;
        let update = c.update_stored_schema(&schema, schema_json.as_str(), &request)?;
        Ok(RString::from(serde_json::to_string(&update)?))
    })
}

/// `DestinationClientVTable::start_load`.
///
/// # Safety
///
/// As for [`client`].
unsafe extern "C" fn client_start_load(
    this: *const c_void,
    load_id: RStr<'_>,
    plan_json: RStr<'_>,
) -> FfiResult<()> {
    // SAFETY: our caller's contract is `client`'s.
    let b = unsafe { client(this) };
    b.call("in start_load", |c| {
        let plan: LoadPlan = parse(plan_json.as_str(), "load plan")?;
        c.start_load(load_id.as_str(), &plan)
    })
}

/// `DestinationClientVTable::write_table`: reads the host's Arrow stream (owned from here on,
/// released by us whatever happens) into the table of `job_json`.
///
/// # Safety
///
/// As for [`client`]; `data` is an Arrow C stream the caller hands over (moved, not
/// borrowed).
unsafe extern "C" fn client_write_table(
    this: *const c_void,
    load_id: RStr<'_>,
    job_json: RStr<'_>,
    data: ArrowArrayStream,
    cancel: FfiCancel,
) -> FfiResult<RString> {
    // take ownership of the host's stream first, so it is released even if parsing fails
    let data = FFI_ArrowArrayStream::from(data);
    // SAFETY: our caller's contract is `client`'s.
    let b = unsafe { client(this) };
    b.call("in write_table", |c| {
        let job: LoadJob = parse(job_json.as_str(), "load job")?;
        let reader = RecordBatchStreamReader::try_new(data)
            .map_err(|e| Error::internal(format!("cannot read the host's batch stream: {e}")))?;
        let cancel = CancelToken::from_ffi(cancel);
        let report = c.write_table(load_id.as_str(), &job, Box::new(reader), &cancel)?;
        Ok(RString::from(serde_json::to_string(&report)?))
    })
}

/// `DestinationClientVTable::load_file`.
///
/// # Safety
///
/// As for [`client`].
unsafe extern "C" fn client_load_file(
    this: *const c_void,
    load_id: RStr<'_>,
    job_json: RStr<'_>,
    path: RStr<'_>,
    cancel: FfiCancel,
) -> FfiResult<RString> {
    // SAFETY: our caller's contract is `client`'s.
    let b = unsafe { client(this) };
    b.call("in load_file", |c| {
        let job: LoadJob = parse(job_json.as_str(), "load job")?;
        let cancel = CancelToken::from_ffi(cancel);
        let report = c.load_file(load_id.as_str(), &job, Path::new(path.as_str()), &cancel)?;
        Ok(RString::from(serde_json::to_string(&report)?))
    })
}

/// `DestinationClientVTable::complete_load`.
///
/// # Safety
///
/// As for [`client`].
unsafe extern "C" fn client_complete_load(
    this: *const c_void,
    load_id: RStr<'_>,
    completion_json: RStr<'_>,
) -> FfiResult<()> {
    // SAFETY: our caller's contract is `client`'s.
    let b = unsafe { client(this) };
    b.call("in complete_load", |c| {
        let completion: LoadCompletion = parse(completion_json.as_str(), "load completion")?;
        c.complete_load(load_id.as_str(), &completion)
    })
}

/// `DestinationClientVTable::is_load_completed`.
///
/// # Safety
///
/// As for [`client`].
unsafe extern "C" fn client_is_load_completed(
    this: *const c_void,
    load_id: RStr<'_>,
) -> FfiResult<bool> {
    // SAFETY: our caller's contract is `client`'s.
    let b = unsafe { client(this) };
    b.call("in is_load_completed", |c| {
        c.is_load_completed(load_id.as_str())
    })
}

/// `DestinationClientVTable::drop_tables`.
///
/// # Safety
///
/// As for [`client`].
unsafe extern "C" fn client_drop_tables(
    this: *const c_void,
    request_json: RStr<'_>,
) -> FfiResult<()> {
    // SAFETY: our caller's contract is `client`'s.
    let b = unsafe { client(this) };
    b.call("in drop_tables", |c| {
        let request: DropTablesRequest = parse(request_json.as_str(), "drop tables request")?;
        c.drop_tables(&request)
    })
}

/// `DestinationClientVTable::query`: the result rows as a resource stream.
///
/// # Safety
///
/// As for [`client`].
unsafe extern "C" fn client_query(
    this: *const c_void,
    sql: RStr<'_>,
    cancel: FfiCancel,
) -> FfiResult<FfiResourceStream> {
    // SAFETY: our caller's contract is `client`'s.
    let b = unsafe { client(this) };
    b.call("in query", |c| {
        let cancel = CancelToken::from_ffi(cancel);
        let stream = c.query(sql.as_str(), &cancel)?;
        Ok(export_stream(stream, Some(b.state)))
    })
}

/// `DestinationClientVTable::release`: drops the client.
///
/// # Safety
///
/// `this` is the `private_data` of an [`FfiDestinationClient`] made by [`export_client`],
/// passed here once; no other call on it runs or follows.
unsafe extern "C" fn client_release(this: *mut c_void) {
    guard_release(|| {
        // SAFETY: released once by the host, after its last call.
        drop(unsafe { Box::from_raw(this as *mut ClientBox) });
    });
}
