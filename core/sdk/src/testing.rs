//! Conformance kits (feature `testing`): checks any source or destination plugin can run
//! against itself, directly or through a loaded library (the host's `Foreign*` wrappers
//! implement the same traits).
//!
//! ```ignore
//! let report = sluice_sdk::testing::check_source(&my_source, &Default::default())?;
//! assert!(report.rows["issues"] > 0);
//! ```

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use arrow_array::{Int64Array, RecordBatch, RecordBatchIterator, StringArray};
use arrow_schema::{DataType as ArrowType, Field, Schema as ArrowSchema};
use serde_json::Value;

use crate::destination::{
    ClientRequest, Destination, LoadCompletion, LoadJob, LoadPlan, SchemaUpdateRequest, StoredState,
};
use crate::json::json_texts;
use crate::resource::{DataFormat, ResourceRequest};
use crate::schema::{self, Column, DataType, Schema, Table, WriteDisposition};
use crate::source::{Source, StreamContext};
use crate::{CancelFlag, Error, ErrorCode, Result};

/// Options of [`check_source`].
#[derive(Debug, Clone, Default)]
pub struct SourceChecks {
    /// Resources to run (all selected ones when empty).
    pub resources: Vec<String>,
    /// Stop reading a resource after this many batches (0 = no limit).
    pub max_batches: usize,
    /// Parameters passed in each request.
    pub params: Value,
}

/// What [`check_source`] saw.
#[derive(Debug, Clone, Default)]
pub struct SourceReport {
    /// Rows (documents for JSON resources) per resource.
    pub rows: BTreeMap<String, u64>,
    /// Final states per resource.
    pub final_states: BTreeMap<String, Value>,
}

fn fail(message: impl Into<String>) -> Error {
    Error::internal(format!("conformance: {}", message.into()))
}

/// Runs the source conformance checks: unique non-empty resource names, every resource
/// streams batches of one fixed schema (JSON resources: one `LargeUtf8` column of valid JSON),
/// final states are JSON, an unknown resource is `NOT_FOUND`, and a cancelled run ends
/// promptly with `CANCELLED` or a clean end.
pub fn check_source(source: &dyn Source, checks: &SourceChecks) -> Result<SourceReport> {
    let resources = source.describe()?;
    if resources.is_empty() {
        return Err(fail("describe() returned no resources"));
    }
    let mut names = std::collections::HashSet::new();
    for r in &resources {
        if r.name.trim().is_empty() {
            return Err(fail("a resource has an empty name"));
        }
        if !names.insert(r.name.clone()) {
            return Err(fail(format!("resource `{}` is described twice", r.name)));
        }
    }
    let mut report = SourceReport::default();
    for r in &resources {
        let wanted = if checks.resources.is_empty() {
            r.selected
        } else {
            checks.resources.contains(&r.name)
        };
        if !wanted {
            continue;
        }
        let request = ResourceRequest {
            resource: r.name.clone(),
            params: checks.params.clone(),
            ..Default::default()
        };
        let mut stream =
            source.open_resource(request, StreamContext::new(CancelFlag::new().token()))?;
        let schema = stream.schema()?;
        if r.data_format == DataFormat::Json && !json_batch_shape(&schema) {
            return Err(fail(format!(
                "JSON resource `{}` must stream a LargeUtf8 column `{}` (and optionally `{}` \
                 LargeUtf8 and `{}` UInt64, where the documents come from), got {schema:?}",
                r.name,
                crate::resource::JSON_COLUMN,
                crate::json::JSON_ORIGIN_COLUMN,
                crate::json::JSON_LINE_COLUMN
            )));
        }
        let mut rows = 0u64;
        let mut batches = 0usize;
        while let Some(batch) = stream.next_batch()? {
            if batch.schema().fields() != schema.fields() {
                return Err(fail(format!(
                    "resource `{}` changed its schema mid-stream",
                    r.name
                )));
            }
            if r.data_format == DataFormat::Json {
                for text in json_texts(&batch)? {
                    let mut de = serde_json::Deserializer::from_str(text).into_iter::<Value>();
                    for doc in de.by_ref() {
                        doc.map_err(|e| {
                            fail(format!("resource `{}` sent invalid JSON: {e}", r.name))
                        })?;
                        rows += 1;
                    }
                }
            } else {
                rows += batch.num_rows() as u64;
            }
            batches += 1;
            if checks.max_batches > 0 && batches >= checks.max_batches {
                break;
            }
        }
        if checks.max_batches == 0 || batches < checks.max_batches {
            if let Some(state) = stream.final_state() {
                report.final_states.insert(r.name.clone(), state);
            }
        }
        report.rows.insert(r.name.clone(), rows);
    }

    // unknown resources are NOT_FOUND
    let unknown = ResourceRequest {
        resource: "__no_such_resource__".into(),
        ..Default::default()
    };
    match source.open_resource(unknown, StreamContext::new(CancelFlag::new().token())) {
        Err(e) if e.code == ErrorCode::NOT_FOUND => {}
        Err(e) => {
            return Err(fail(format!(
                "an unknown resource gave {:?} instead of NOT_FOUND: {}",
                e.code, e.message
            )))
        }
        Ok(_) => return Err(fail("an unknown resource was opened")),
    }

    // a cancelled run ends promptly
    if let Some(first) = resources.iter().find(|r| r.selected) {
        let flag = CancelFlag::new();
        flag.cancel();
        let started = Instant::now();
        let request = ResourceRequest {
            resource: first.name.clone(),
            params: checks.params.clone(),
            ..Default::default()
        };
        if let Ok(mut stream) = source.open_resource(request, StreamContext::new(flag.token())) {
            loop {
                match stream.next_batch() {
                    Ok(Some(_)) if started.elapsed() < Duration::from_secs(5) => continue,
                    Ok(Some(_)) => {
                        return Err(fail(format!(
                            "resource `{}` kept streaming 5 s after cancellation",
                            first.name
                        )))
                    }
                    Ok(None) => break,
                    Err(e) if e.is_cancelled() => break,
                    Err(e) => {
                        return Err(fail(format!(
                            "a cancelled run of `{}` failed with {:?} instead of CANCELLED: {}",
                            first.name, e.code, e.message
                        )))
                    }
                }
            }
        }
    }
    Ok(report)
}

/// A small dlt schema: the three system tables and a table `items (id bigint, name text)`
/// with dlt's system columns.
pub fn sample_schema(name: &str) -> Schema {
    let mut items = Table {
        name: "items".into(),
        write_disposition: Some(WriteDisposition::Append),
        resource: Some("items".into()),
        ..Default::default()
    };
    for c in [
        Column::new("id", DataType::Bigint),
        Column::new("name", DataType::Text),
        Column {
            nullable: Some(false),
            ..Column::new("_dlt_load_id", DataType::Text)
        },
        Column {
            nullable: Some(false),
            unique: Some(true),
            row_key: Some(true),
            ..Column::new("_dlt_id", DataType::Text)
        },
    ] {
        items.columns.insert(c.name.clone(), c);
    }
    let mut s = Schema {
        version: 1,
        version_hash: format!("conformance-{name}-1"),
        engine_version: 11,
        name: name.into(),
        ..Default::default()
    };
    for t in [
        schema::version_table(),
        schema::loads_table(),
        items,
        schema::state_table(),
    ] {
        s.tables.insert(t.name.clone(), t);
    }
    s
}

fn items_batch(ids: &[i64], load_id: &str) -> Result<RecordBatch> {
    let schema = Arc::new(ArrowSchema::new(vec![
        Field::new("id", ArrowType::Int64, true),
        Field::new("name", ArrowType::Utf8, true),
        Field::new("_dlt_load_id", ArrowType::Utf8, false),
        Field::new("_dlt_id", ArrowType::Utf8, false),
    ]));
    let names: Vec<String> = ids.iter().map(|i| format!("item {i}")).collect();
    Ok(RecordBatch::try_new(
        schema,
        vec![
            Arc::new(Int64Array::from(ids.to_vec())),
            Arc::new(StringArray::from(names)),
            Arc::new(StringArray::from(vec![load_id; ids.len()])),
            Arc::new(StringArray::from(
                ids.iter()
                    .map(|i| format!("{load_id}-{i}"))
                    .collect::<Vec<_>>(),
            )),
        ],
    )?)
}

/// What [`check_destination`] saw.
#[derive(Debug, Clone, Default)]
pub struct DestinationReport {
    /// Rows reported written.
    pub rows_written: u64,
}

/// Runs the destination conformance checks against a fresh `dataset`: storage initialization
/// is idempotent, a schema is stored and read back, a load package (one arrow job) is written
/// and completed, its state row is read back, and `drop_storage` removes the dataset.
pub fn check_destination(
    destination: &dyn Destination,
    dataset: &str,
) -> Result<DestinationReport> {
    let caps = destination.capabilities();
    if caps.max_identifier_length == 0 || caps.supported_loader_file_formats.is_empty() {
        return Err(fail(
            "capabilities must name identifier limits and file formats",
        ));
    }
    let mut client = destination.open_client(ClientRequest {
        dataset_name: dataset.into(),
        pipeline_name: "conformance".into(),
        ..Default::default()
    })?;
    client.initialize_storage()?;
    client.initialize_storage()?;
    if !client.is_storage_initialized()? {
        return Err(fail("storage is not initialized after initialize_storage"));
    }
    let schema = sample_schema("conformance");
    let schema_json = serde_json::to_string(&schema)?;
    client.update_stored_schema(&schema, &schema_json, &SchemaUpdateRequest::default())?;
    let stored = client
        .get_stored_schema("conformance")?
        .ok_or_else(|| fail("the stored schema was not found"))?;
    if stored.version_hash != schema.version_hash {
        return Err(fail(format!(
            "stored schema hash {} != {}",
            stored.version_hash, schema.version_hash
        )));
    }
    let load_id = "1700000000.123456";
    let job = LoadJob {
        job_id: "items.0000000001".into(),
        table_name: "items".into(),
        file_format: "arrow".into(),
        ..Default::default()
    };
    client.start_load(
        load_id,
        &LoadPlan {
            schema_name: "conformance".into(),
            schema_version_hash: schema.version_hash.clone(),
            jobs: vec![job.clone()],
            ..Default::default()
        },
    )?;
    let batch = items_batch(&[1, 2, 3], load_id)?;
    let reader = RecordBatchIterator::new(vec![Ok(batch.clone())], batch.schema());
    let report = client.write_table(load_id, &job, Box::new(reader), &CancelFlag::new().token())?;
    if client.is_load_completed(load_id)? {
        return Err(fail("the load is completed before complete_load"));
    }
    let state = StoredState {
        version: 1,
        engine_version: 4,
        pipeline_name: "conformance".into(),
        state: "eJyrVkrLz1eyUkpKLFKqBQAdegQ0".into(),
        created_at: "2024-01-01T00:00:00+00:00".into(),
        version_hash: Some("hash".into()),
        load_id: load_id.into(),
    };
    client.complete_load(
        load_id,
        &LoadCompletion {
            schema_name: "conformance".into(),
            schema_version_hash: schema.version_hash.clone(),
            inserted_at: "2024-01-01T00:00:01+00:00".into(),
            state: Some(state.clone()),
            ..Default::default()
        },
    )?;
    if !client.is_load_completed(load_id)? {
        return Err(fail("the load is not completed after complete_load"));
    }
    let got = client
        .get_stored_state("conformance")?
        .ok_or_else(|| fail("the stored state was not found"))?;
    if got.state != state.state || got.version != state.version || got.load_id != load_id {
        return Err(fail(format!("stored state differs: {got:?}")));
    }
    client.drop_storage()?;
    if client.is_storage_initialized()? {
        return Err(fail("storage still exists after drop_storage"));
    }
    Ok(DestinationReport {
        rows_written: report.rows,
    })
}

/// The shape of a [`DataFormat::Json`] stream: the documents in a LargeUtf8 column named
/// [`crate::resource::JSON_COLUMN`], optionally where they come from (file and first line).
fn json_batch_shape(schema: &arrow_schema::Schema) -> bool {
    let mut documents = false;
    for f in schema.fields() {
        let ok = match f.name().as_str() {
            n if n == crate::resource::JSON_COLUMN => {
                documents = f.data_type() == &ArrowType::LargeUtf8;
                documents
            }
            n if n == crate::json::JSON_ORIGIN_COLUMN => f.data_type() == &ArrowType::LargeUtf8,
            n if n == crate::json::JSON_LINE_COLUMN => f.data_type() == &ArrowType::UInt64,
            _ => false,
        };
        if !ok {
            return false;
        }
    }
    documents
}
