//! Resources defined in Rust code: from serde values or Arrow batches, with dlt's hints.
//!
//! ```
//! use sluice::pipeline::{Resource, CodeSource};
//! use serde_json::json;
//!
//! let people = Resource::from_values("people", vec![json!({"id": 1, "name": "alice"})])
//!     .primary_key(["id"])
//!     .write_disposition("merge");
//! let source = CodeSource::new("simple_source", vec![people]);
//! ```

use std::sync::Arc;

use arrow_array::RecordBatch;
use arrow_schema::SchemaRef;
use serde_json::Value;
use sluice_sdk::resource::{
    DataFormat, IncrementalSpec, KeyHint, ResourceDescriptor, ResourceRequest, WriteDispositionHint,
};
use sluice_sdk::{
    json_schema, BatchStream, Error, JsonBatchBuilder, Result, Source, StreamContext,
};

type ValuesFn = dyn Fn(&ResourceRequest) -> Box<dyn Iterator<Item = Value> + Send> + Send + Sync;
type BatchesFn = dyn Fn(&ResourceRequest) -> Vec<RecordBatch> + Send + Sync;

enum Data {
    Values(Arc<ValuesFn>),
    Arrow(SchemaRef, Arc<BatchesFn>),
}

/// A resource defined in code.
pub struct Resource {
    descriptor: ResourceDescriptor,
    data: Data,
    state: Option<Arc<dyn Fn(&ResourceRequest) -> Option<Value> + Send + Sync>>,
}

impl std::fmt::Debug for Resource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Resource")
            .field("descriptor", &self.descriptor)
            .finish_non_exhaustive()
    }
}

impl Resource {
    /// A resource yielding `values` on every run (each a document; arrays stand for their
    /// elements, as when a dlt resource yields a list).
    pub fn from_values(name: &str, values: Vec<Value>) -> Self {
        let values = Arc::new(values);
        Self::from_fn(name, move |_req| {
            let v = values.clone();
            Box::new((0..v.len()).map(move |i| v[i].clone()))
        })
    }

    /// A resource whose documents come from a function of the run's request (its state and
    /// incremental window).
    pub fn from_fn<F>(name: &str, f: F) -> Self
    where
        F: Fn(&ResourceRequest) -> Box<dyn Iterator<Item = Value> + Send> + Send + Sync + 'static,
    {
        Self {
            descriptor: ResourceDescriptor::new(name),
            data: Data::Values(Arc::new(f)),
            state: None,
        }
    }

    /// A resource of typed Arrow batches.
    pub fn from_batches(name: &str, schema: SchemaRef, batches: Vec<RecordBatch>) -> Self {
        let mut descriptor = ResourceDescriptor::new(name);
        descriptor.data_format = DataFormat::Arrow;
        let batches = Arc::new(batches);
        Self {
            descriptor,
            data: Data::Arrow(schema, Arc::new(move |_| batches.as_ref().clone())),
            state: None,
        }
    }

    /// Sets the table name (default: the resource name).
    pub fn table_name(mut self, name: &str) -> Self {
        self.descriptor.table_name = Some(name.to_string());
        self
    }

    /// Sets the write disposition: `append`, `replace`, `merge`, or dlt's dict form
    /// (`json!({"disposition": "merge", "strategy": "scd2"})`).
    pub fn write_disposition(mut self, wd: impl Into<Value>) -> Self {
        self.descriptor.write_disposition =
            serde_json::from_value::<WriteDispositionHint>(wd.into()).ok();
        self
    }

    /// Sets the primary key.
    pub fn primary_key<I: IntoIterator<Item = S>, S: Into<String>>(mut self, cols: I) -> Self {
        self.descriptor.primary_key =
            Some(KeyHint::Many(cols.into_iter().map(Into::into).collect()));
        self
    }

    /// Sets the merge key.
    pub fn merge_key<I: IntoIterator<Item = S>, S: Into<String>>(mut self, cols: I) -> Self {
        self.descriptor.merge_key = Some(KeyHint::Many(cols.into_iter().map(Into::into).collect()));
        self
    }

    /// Sets column hints (`json!({"amount": {"data_type": "decimal", "precision": 10}})`).
    pub fn columns(mut self, columns: Value) -> Self {
        if let Ok(c) = serde_json::from_value(columns) {
            self.descriptor.columns = c;
        }
        self
    }

    /// Sets an incremental cursor.
    pub fn incremental(mut self, spec: IncrementalSpec) -> Self {
        self.descriptor.incremental = Some(spec);
        self
    }

    /// Sets `max_table_nesting`.
    pub fn max_table_nesting(mut self, n: u32) -> Self {
        self.descriptor.max_table_nesting = Some(n);
        self
    }

    /// Sets the schema contract.
    pub fn schema_contract(mut self, contract: Value) -> Self {
        self.descriptor.schema_contract = Some(contract);
        self
    }

    /// Sets the whole descriptor (keeps the name and data).
    pub fn descriptor(mut self, d: ResourceDescriptor) -> Self {
        let name = self.descriptor.name.clone();
        let format = self.descriptor.data_format;
        self.descriptor = d;
        self.descriptor.name = name;
        self.descriptor.data_format = format;
        self
    }

    /// Computes the resource's state after each run from the request.
    pub fn with_state<F>(mut self, f: F) -> Self
    where
        F: Fn(&ResourceRequest) -> Option<Value> + Send + Sync + 'static,
    {
        self.state = Some(Arc::new(f));
        self
    }

    /// The descriptor.
    pub fn describe(&self) -> &ResourceDescriptor {
        &self.descriptor
    }
}

/// A source made of code resources.
#[derive(Debug)]
pub struct CodeSource {
    name: String,
    resources: Vec<Resource>,
}

impl CodeSource {
    /// A source named `name` (its schema and state section name).
    pub fn new(name: &str, resources: Vec<Resource>) -> Self {
        Self {
            name: name.to_string(),
            resources,
        }
    }

    /// The source name.
    pub fn name(&self) -> &str {
        &self.name
    }
}

impl Source for CodeSource {
    fn describe(&self) -> Result<Vec<ResourceDescriptor>> {
        Ok(self
            .resources
            .iter()
            .map(|r| r.descriptor.clone())
            .collect())
    }

    fn open_resource(&self, request: ResourceRequest, ctx: StreamContext) -> Result<BatchStream> {
        let r = self
            .resources
            .iter()
            .find(|r| r.descriptor.name == request.resource)
            .ok_or_else(|| {
                Error::not_found(format!(
                    "source `{}` has no resource `{}`",
                    self.name, request.resource
                ))
            })?;
        let state = r.state.as_ref().and_then(|f| f(&request));
        match &r.data {
            Data::Values(f) => {
                let limit = request.limit.map_or(usize::MAX, |l| l as usize);
                let mut items = f(&request).take(limit);
                let cancel = ctx.cancel.clone();
                let mut done = false;
                let iter = std::iter::from_fn(move || {
                    if done {
                        return None;
                    }
                    if let Err(e) = cancel.check() {
                        done = true;
                        return Some(Err(e));
                    }
                    let mut b = JsonBatchBuilder::new(4 << 20);
                    for v in items.by_ref() {
                        if let Err(e) = b.push_value(&v) {
                            done = true;
                            return Some(Err(e));
                        }
                        if b.is_full() {
                            return Some(Ok(b.finish()));
                        }
                    }
                    done = true;
                    (!b.is_empty()).then(|| Ok(b.finish()))
                });
                Ok(BatchStream::from_iter(json_schema(), iter, state))
            }
            Data::Arrow(schema, f) => {
                let batches: Vec<Result<RecordBatch>> = f(&request).into_iter().map(Ok).collect();
                Ok(BatchStream::from_batches(schema.clone(), batches, state))
            }
        }
    }
}
