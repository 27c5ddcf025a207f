//! The source kit: [`check_source`] runs any [`Source`] (in-process or a loaded plugin) and
//! checks what every source must do.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use arrow_schema::DataType as ArrowType;
use serde_json::Value;

use super::fail;
use crate::json::json_texts;
use crate::resource::{DataFormat, ResourceRequest};
use crate::source::{Source, StreamContext};
use crate::{CancelFlag, ErrorCode, Result};

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
