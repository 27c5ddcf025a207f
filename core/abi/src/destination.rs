//! Destination objects: an opened destination and its job client.

use std::ffi::c_void;

use abi_stable::std_types::{ROption, RStr, RString};
use abi_stable::StableAbi;

use crate::{ArrowArrayStream, FfiCancel, FfiResourceStream, FfiResult};

/// The functions of an opened destination.
#[repr(C)]
#[derive(StableAbi)]
#[sabi(kind(Prefix(prefix_ref = DestinationVTableRef)))]
#[sabi(missing_field(option))]
pub struct DestinationVTable {
    /// What the destination can do, as JSON: file formats it reads itself, identifier rules,
    /// type map, merge and replace strategies, transactions.
    pub capabilities_json: unsafe extern "C" fn(this: *const c_void) -> RString,
    /// Opens a job client for one dataset. `request_json` carries the dataset name, the
    /// pipeline name and options.
    pub open_client: unsafe extern "C" fn(
        this: *const c_void,
        request_json: RStr<'_>,
    ) -> FfiResult<FfiDestinationClient>,
    /// Frees the destination (runs in the plugin).
    #[sabi(last_prefix_field)]
    pub release: unsafe extern "C" fn(this: *mut c_void),
}

/// An opened destination, owned by the host.
///
/// # Safety
///
/// `private_data` belongs to the plugin.
#[repr(C)]
#[derive(StableAbi)]
pub struct FfiDestination {
    /// The functions.
    pub vtable: DestinationVTableRef,
    /// Plugin-owned state.
    pub private_data: *mut c_void,
}

// SAFETY: the SDK requires destinations to be Send + Sync.
unsafe impl Send for FfiDestination {}
// SAFETY: see above.
unsafe impl Sync for FfiDestination {}

impl Drop for FfiDestination {
    fn drop(&mut self) {
        if !self.private_data.is_null() {
            // SAFETY: we own the destination; release is called exactly once.
            unsafe { (self.vtable.release())(self.private_data) };
            self.private_data = std::ptr::null_mut();
        }
    }
}

/// The job client of a destination, mirroring dlt's job client: storage, schema and state
/// synchronisation, one write per table and file, and the completion of a load package.
///
/// All JSON payloads are documented on the SDK's `DestinationClient` trait, which is the typed
/// face of this vtable.
#[repr(C)]
#[derive(StableAbi)]
#[sabi(kind(Prefix(prefix_ref = DestinationClientVTableRef)))]
#[sabi(missing_field(option))]
pub struct DestinationClientVTable {
    /// Creates the dataset (schema, folder) if needed.
    pub initialize_storage: unsafe extern "C" fn(this: *const c_void) -> FfiResult<()>,
    /// Whether the dataset exists.
    pub is_storage_initialized: unsafe extern "C" fn(this: *const c_void) -> FfiResult<bool>,
    /// Drops the whole dataset.
    pub drop_storage: unsafe extern "C" fn(this: *const c_void) -> FfiResult<()>,
    /// The newest stored schema document named `schema_name`, if any (from `_dlt_version`).
    pub get_stored_schema: unsafe extern "C" fn(
        this: *const c_void,
        schema_name: RStr<'_>,
    ) -> FfiResult<ROption<RString>>,
    /// The newest completed pipeline state row of `pipeline_name`, as JSON, if any.
    pub get_stored_state: unsafe extern "C" fn(
        this: *const c_void,
        pipeline_name: RStr<'_>,
    ) -> FfiResult<ROption<RString>>,
    /// Brings tables in line with the schema (create/alter) and records the schema version.
    /// Returns the applied changes as JSON.
    pub update_stored_schema: unsafe extern "C" fn(
        this: *const c_void,
        schema_json: RStr<'_>,
        request_json: RStr<'_>,
    ) -> FfiResult<RString>,
    /// Announces a load package: its tables, dispositions and jobs (JSON).
    pub start_load: unsafe extern "C" fn(
        this: *const c_void,
        load_id: RStr<'_>,
        plan_json: RStr<'_>,
    ) -> FfiResult<()>,
    /// Writes a stream of batches (produced by the host, released by the plugin) to a table
    /// of the load. Returns a job report as JSON.
    pub write_table: unsafe extern "C" fn(
        this: *const c_void,
        load_id: RStr<'_>,
        job_json: RStr<'_>,
        data: ArrowArrayStream,
        cancel: FfiCancel,
    ) -> FfiResult<RString>,
    /// Loads a file the destination reads itself (parquet, jsonl) into a table of the load.
    /// `UNSUPPORTED` when the destination does not read files.
    pub load_file: unsafe extern "C" fn(
        this: *const c_void,
        load_id: RStr<'_>,
        job_json: RStr<'_>,
        path: RStr<'_>,
        cancel: FfiCancel,
    ) -> FfiResult<RString>,
    /// Completes the package: merge/replace statements, the `_dlt_loads` row and the state row,
    /// in one transaction where the destination has them.
    pub complete_load: unsafe extern "C" fn(
        this: *const c_void,
        load_id: RStr<'_>,
        completion_json: RStr<'_>,
    ) -> FfiResult<()>,
    /// Whether `load_id` was completed (a `_dlt_loads` row exists).
    pub is_load_completed:
        unsafe extern "C" fn(this: *const c_void, load_id: RStr<'_>) -> FfiResult<bool>,
    /// Drops tables (and their rows in the system tables as the request says).
    pub drop_tables:
        unsafe extern "C" fn(this: *const c_void, request_json: RStr<'_>) -> FfiResult<()>,
    /// Runs a read-only query and streams the result. `UNSUPPORTED` where not possible.
    pub query: unsafe extern "C" fn(
        this: *const c_void,
        sql: RStr<'_>,
        cancel: FfiCancel,
    ) -> FfiResult<FfiResourceStream>,
    /// Frees the client (runs in the plugin).
    #[sabi(last_prefix_field)]
    pub release: unsafe extern "C" fn(this: *mut c_void),
}

/// A destination job client, owned by the host; one caller at a time.
///
/// # Safety
///
/// `private_data` belongs to the plugin.
#[repr(C)]
#[derive(StableAbi)]
pub struct FfiDestinationClient {
    /// The functions.
    pub vtable: DestinationClientVTableRef,
    /// Plugin-owned state.
    pub private_data: *mut c_void,
}

// SAFETY: clients are Send on the plugin side; calls are serialized by the single owner.
unsafe impl Send for FfiDestinationClient {}

impl Drop for FfiDestinationClient {
    fn drop(&mut self) {
        if !self.private_data.is_null() {
            // SAFETY: we own the client; release is called exactly once.
            unsafe { (self.vtable.release())(self.private_data) };
            self.private_data = std::ptr::null_mut();
        }
    }
}
