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

use std::io::Read;
use std::sync::Arc;

use arrow_array::RecordBatch;
use arrow_schema::SchemaRef;
use serde_json::Value;
use sluice_sdk::resource::{
    DataFormat, IncrementalSpec, KeyHint, ResourceDescriptor, ResourceRequest, WriteDispositionHint,
};
use sluice_sdk::{
    json_schema, json_text_batch, BatchStream, Error, JsonBatchBuilder, Result, Source,
    StreamContext,
};

type ValuesFn = dyn Fn(&ResourceRequest) -> Box<dyn Iterator<Item = Value> + Send> + Send + Sync;
type BatchesFn = dyn Fn(&ResourceRequest) -> Vec<RecordBatch> + Send + Sync;
type ReaderFn = dyn Fn(&ResourceRequest) -> Result<Box<dyn Read + Send>> + Send + Sync;

enum Data {
    Values(Arc<ValuesFn>),
    Arrow(SchemaRef, Arc<BatchesFn>),
    JsonLines(Arc<ReaderFn>),
}

/// Bytes of JSON text per batch read from a reader.
const READ_CHUNK: usize = 4 << 20;

/// A resource defined in code.
pub struct Resource {
    descriptor: ResourceDescriptor,
    data: Data,
    state: Option<Arc<dyn Fn(&ResourceRequest) -> Option<Value> + Send + Sync>>,
    limit: Option<u64>,
    /// Hints that did not parse: reported when the source is described.
    invalid: Vec<String>,
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
            limit: None,
            invalid: Vec::new(),
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
            limit: None,
            invalid: Vec::new(),
        }
    }

    /// A resource reading JSON lines (or any whitespace-separated JSON documents) from the reader
    /// that `open` returns on each run. The text goes to the normalizer unparsed, in chunks of
    /// whole lines, so a file of any size streams in bounded memory.
    pub fn from_json_reader<F>(name: &str, open: F) -> Self
    where
        F: Fn(&ResourceRequest) -> Result<Box<dyn Read + Send>> + Send + Sync + 'static,
    {
        Self {
            descriptor: ResourceDescriptor::new(name),
            data: Data::JsonLines(Arc::new(open)),
            state: None,
            limit: None,
            invalid: Vec::new(),
        }
    }

    /// A resource reading the JSON lines file at `path` (see [`Resource::from_json_reader`]).
    pub fn from_json_file(name: &str, path: impl Into<std::path::PathBuf>) -> Self {
        let path = path.into();
        Self::from_json_reader(name, move |_| {
            let file = std::fs::File::open(&path)
                .map_err(|e| Error::not_found(format!("cannot open `{}`: {e}", path.display())))?;
            Ok(Box::new(file) as Box<dyn Read + Send>)
        })
    }

    /// Stops the resource after `n` items on every run, as dlt's `add_limit`: documents for
    /// value resources, lines for JSON readers, batches for Arrow resources.
    pub fn add_limit(mut self, n: u64) -> Self {
        self.limit = Some(n);
        self
    }

    /// Sets the table name (default: the resource name).
    pub fn table_name(mut self, name: &str) -> Self {
        self.descriptor.table_name = Some(name.to_string());
        self
    }

    /// Sets the write disposition: `append`, `replace`, `merge`, or dlt's dict form
    /// (`json!({"disposition": "merge", "strategy": "scd2"})`).
    pub fn write_disposition(mut self, wd: impl Into<Value>) -> Self {
        let wd = wd.into();
        match serde_json::from_value::<WriteDispositionHint>(wd.clone()) {
            Ok(hint) => self.descriptor.write_disposition = Some(hint),
            Err(e) => self.invalid.push(format!("write disposition {wd}: {e}")),
        }
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
        match serde_json::from_value(columns) {
            Ok(c) => self.descriptor.columns = c,
            Err(e) => self.invalid.push(format!("columns: {e}")),
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
        if let Some(r) = self.resources.iter().find(|r| !r.invalid.is_empty()) {
            return Err(Error::config(format!(
                "resource `{}` of source `{}` has invalid hints: {}",
                r.descriptor.name,
                self.name,
                r.invalid.join("; ")
            )));
        }
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
        let limit = match (request.limit, r.limit) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        match &r.data {
            Data::Values(f) => {
                let limit = limit.map_or(usize::MAX, |l| l as usize);
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
                let batches: Vec<Result<RecordBatch>> = f(&request)
                    .into_iter()
                    .take(limit.map_or(usize::MAX, |l| l as usize))
                    .map(Ok)
                    .collect();
                Ok(BatchStream::from_batches(schema.clone(), batches, state))
            }
            Data::JsonLines(open) => {
                let reader = open(&request)?;
                let chunks = LineChunks {
                    reader,
                    resource: request.resource.clone(),
                    carry: Vec::new(),
                    offset: 0,
                    lines_left: limit,
                    done: false,
                    chunk: READ_CHUNK,
                };
                let cancel = ctx.cancel.clone();
                let iter = chunks.map(move |chunk| {
                    cancel.check()?;
                    // the chunk's buffer becomes the batch's: no copy
                    Ok(json_text_batch(chunk?))
                });
                Ok(BatchStream::from_iter(json_schema(), iter, state))
            }
        }
    }
}

/// The longest line a JSON lines resource reads (bytes): 256 MiB, or `SLUICE_MAX_LINE_BYTES`.
fn max_line_bytes() -> u64 {
    static MAX: std::sync::OnceLock<u64> = std::sync::OnceLock::new();
    *MAX.get_or_init(|| {
        std::env::var("SLUICE_MAX_LINE_BYTES")
            .ok()
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or(256 << 20)
    })
}

/// Splits a reader into UTF-8 chunks of whole lines of about [`READ_CHUNK`] bytes.
struct LineChunks {
    reader: Box<dyn Read + Send>,
    resource: String,
    carry: Vec<u8>,
    /// Bytes of the input before `carry`.
    offset: u64,
    lines_left: Option<u64>,
    done: bool,
    /// Bytes to read per step.
    chunk: usize,
}

impl LineChunks {
    fn next_chunk(&mut self) -> Result<Option<String>> {
        if self.done || self.lines_left == Some(0) {
            // add_limit(0) reads nothing, as in dlt
            return Ok(None);
        }
        // one allocation of the chunk's size (the carried tail of the last one, then a chunk
        // read straight into the spare capacity: nothing is zeroed first)
        let mut buf = Vec::with_capacity(self.carry.len() + self.chunk);
        buf.append(&mut self.carry);
        // read at least a chunk more, and on until the buffer holds a new line (or the end)
        let mut cut = None;
        while cut.is_none() && !self.done {
            let searched = buf.len();
            let want = self.chunk as u64;
            let n = (&mut self.reader)
                .take(want)
                .read_to_end(&mut buf)
                .map_err(|e| {
                    Error::io(format!(
                        "resource `{}`: read failed at byte {}: {e}",
                        self.resource,
                        self.offset + buf.len() as u64
                    ))
                })?;
            if (n as u64) < want {
                self.done = true;
            }
            cut = memchr::memrchr(b'\n', &buf[searched..]).map(|p| searched + p + 1);
            if cut.is_none() && !self.done && buf.len() as u64 > max_line_bytes() {
                return Err(Error::data(format!(
                    "resource `{}`: a line starting near byte {} is longer than {} bytes\nhint: is the input JSON lines (one document a line)? Raise SLUICE_MAX_LINE_BYTES for longer lines",
                    self.resource,
                    self.offset,
                    max_line_bytes()
                )));
            }
        }
        let mut cut = if self.done {
            buf.len()
        } else {
            cut.unwrap_or(buf.len())
        };
        if let Some(left) = self.lines_left.as_mut() {
            let mut seen = 0;
            for p in memchr::memchr_iter(b'\n', &buf[..cut]) {
                seen += 1;
                if seen == *left {
                    cut = p + 1;
                    break;
                }
            }
            *left -= seen.min(*left);
            if *left == 0 {
                self.done = true;
            }
        }
        self.carry = if self.done {
            Vec::new()
        } else {
            buf.split_off(cut)
        };
        buf.truncate(cut);
        let offset = self.offset;
        self.offset += buf.len() as u64;
        if buf.is_empty() {
            return Ok(None);
        }
        String::from_utf8(buf).map(Some).map_err(|e| {
            Error::data(format!(
                "resource `{}`: invalid UTF-8 at byte {}\nhint: the input must be UTF-8 text",
                self.resource,
                offset + e.utf8_error().valid_up_to() as u64
            ))
        })
    }
}

impl Iterator for LineChunks {
    type Item = Result<String>;

    fn next(&mut self) -> Option<Result<String>> {
        match self.next_chunk() {
            Ok(Some(s)) => Some(Ok(s)),
            Ok(None) => None,
            Err(e) => {
                self.done = true;
                Some(Err(e))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn chunks(text: &[u8], chunk: usize, limit: Option<u64>) -> Result<Vec<String>> {
        LineChunks {
            reader: Box::new(std::io::Cursor::new(text.to_vec())),
            resource: "r".into(),
            carry: Vec::new(),
            offset: 0,
            lines_left: limit,
            done: false,
            chunk,
        }
        .collect()
    }

    #[test]
    fn chunks_hold_whole_lines_and_lose_nothing() {
        let text: String = (0..100)
            .map(|i| format!("{{\"i\":{i},\"s\":\"é{i}\"}}\n"))
            .collect();
        for chunk in [1, 7, 64, 1 << 20] {
            let got = chunks(text.as_bytes(), chunk, None).expect("chunks");
            assert!(got.iter().all(|c| c.ends_with('\n')), "chunk {chunk}");
            assert_eq!(got.concat(), text, "chunk {chunk}");
        }
        // no final new line, a line longer than the chunk
        let got =
            chunks(b"{\"a\":1}\n{\"long\":\"xxxxxxxxxxxxxxxxxxxx\"}", 4, None).expect("chunks");
        assert_eq!(
            got.concat(),
            "{\"a\":1}\n{\"long\":\"xxxxxxxxxxxxxxxxxxxx\"}"
        );
    }

    #[test]
    fn the_limit_counts_lines() {
        let text: String = (0..10).map(|i| format!("{{\"i\":{i}}}\n")).collect();
        for chunk in [3, 1000] {
            let got = chunks(text.as_bytes(), chunk, Some(4))
                .expect("chunks")
                .concat();
            assert_eq!(got.lines().count(), 4, "chunk {chunk}");
            let none = chunks(text.as_bytes(), chunk, Some(0)).expect("chunks");
            assert!(none.is_empty(), "limit 0, chunk {chunk}: {none:?}");
        }
    }

    #[test]
    fn invalid_utf8_names_the_resource_and_byte() {
        let err = chunks(b"{\"a\":1}\n{\"b\":\"\xff\"}\n", 1000, None).expect_err("bad utf-8");
        assert!(
            err.to_string()
                .contains("resource `r`: invalid UTF-8 at byte 14"),
            "{err}"
        );
    }
}
