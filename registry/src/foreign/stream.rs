//! Wraps `sluice_abi::FfiResourceStream` (core/abi/src/source.rs) and its Arrow C stream
//! (`sluice_abi::ArrowArrayStream`, core/abi/src/arrow_c.rs) as a [`BatchProducer`]:
//! [`ForeignStream`]. The plugin side that fills them is `sluice_sdk::export::stream`.
//!
//! The Arrow stream is moved out of the `FfiResourceStream` into arrow-rs's reader on first
//! use; the wrapper stays behind for the structured error, the final state and the metrics.
//! Both are released in the plugin when this is dropped, the reader first.

use std::sync::Arc;

use arrow_array::ffi_stream::{FFI_ArrowArrayStream, RecordBatchStreamReader};
use arrow_array::{RecordBatch, RecordBatchReader};
use arrow_schema::SchemaRef;
use serde_json::Value;
use sluice_abi::FfiResourceStream;
use sluice_sdk::{BatchProducer, Error, Result};

use crate::loader::LoadedPlugin;

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
