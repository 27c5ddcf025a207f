//! The source side: [`Source`], and the [`BatchStream`] one resource run produces.

use std::future::Future;
use std::sync::{Arc, Mutex};

use arrow_array::{RecordBatch, RecordBatchReader};
use arrow_schema::{ArrowError, SchemaRef};
use futures::FutureExt;
use serde_json::Value;
use tokio::sync::mpsc;

use crate::resource::{ResourceDescriptor, ResourceRequest};
use crate::{runtime, CancelToken, Error, Result};

/// A source: a set of resources, each of which can be run to produce a stream of batches.
///
/// Implemented by plugin authors (and, on the host side, by the registry's `ForeignSource`
/// over a loaded library). All methods are blocking; async work runs on the plugin's own
/// runtime ([`StreamContext::runtime`]).
pub trait Source: Send + Sync + 'static {
    /// The resources this source offers.
    fn describe(&self) -> Result<Vec<ResourceDescriptor>>;

    /// Starts one run of one resource. An unknown resource name is a `NOT_FOUND` error.
    fn open_resource(&self, request: ResourceRequest, ctx: StreamContext) -> Result<BatchStream>;
}

/// What a resource run gets besides its request: the cancellation token and the runtime.
#[derive(Clone, Debug)]
pub struct StreamContext {
    /// Set when the host wants the run to stop; check it between pages and batches.
    pub cancel: CancelToken,
    runtime: tokio::runtime::Handle,
    plugin: Option<&'static crate::export::PluginState>,
}

impl StreamContext {
    /// A context with the given cancellation token, on the SDK's shared runtime.
    pub fn new(cancel: CancelToken) -> Self {
        Self {
            cancel,
            runtime: runtime::fallback_handle(),
            plugin: None,
        }
    }

    pub(crate) fn for_plugin(
        cancel: CancelToken,
        plugin: &'static crate::export::PluginState,
    ) -> Self {
        Self {
            cancel,
            runtime: plugin.runtime(),
            plugin: Some(plugin),
        }
    }

    /// The plugin's own tokio runtime.
    pub fn runtime(&self) -> tokio::runtime::Handle {
        self.runtime.clone()
    }

    /// Reports plugin-internal progress of `resource` to the host (no-op outside a plugin).
    pub fn progress(&self, resource: &str, rows: u64, bytes: u64) {
        if let Some(host) = self.plugin.and_then(|p| p.host()) {
            host.progress(resource, rows, bytes);
        }
    }

    /// Runs `producer` on the plugin's runtime and returns the stream of what it sends.
    ///
    /// The producer gets a [`BatchSink`] backed by a bounded channel (backpressure: it waits
    /// when the host is not pulling) and returns the resource's final state. `default_schema`
    /// is the stream's schema when the producer ends without sending anything (e.g.
    /// [`json_schema`](crate::json_schema) for JSON resources).
    pub fn spawn<F, Fut>(&self, default_schema: Option<SchemaRef>, producer: F) -> BatchStream
    where
        F: FnOnce(BatchSink) -> Fut + Send + 'static,
        Fut: Future<Output = Result<Option<Value>>> + Send + 'static,
    {
        let (tx, rx) = mpsc::channel(2);
        let outcome: Arc<Mutex<Option<Result<Option<Value>>>>> = Arc::new(Mutex::new(None));
        // The task keeps a sender until its result is stored, so the channel closes only after
        // the outcome is visible to the consumer.
        let keep_open = tx.clone();
        let sink = BatchSink {
            tx,
            cancel: self.cancel.clone(),
        };
        let slot = outcome.clone();
        let plugin = self.plugin;
        self.runtime.spawn(async move {
            let result = match std::panic::AssertUnwindSafe(producer(sink))
                .catch_unwind()
                .await
            {
                Ok(result) => result,
                Err(payload) => Err(crate::export::panic_error(
                    plugin,
                    payload.as_ref(),
                    "in a resource producer",
                )),
            };
            if let Ok(mut guard) = slot.lock() {
                *guard = Some(result);
            }
            drop(keep_open);
        });
        BatchStream::new(ChannelProducer {
            runtime: self.runtime.clone(),
            rx,
            outcome,
            schema: None,
            default_schema,
            pending: None,
            final_state: None,
            cancel: self.cancel.clone(),
            finished: false,
        })
    }
}

/// A producer of record batches for one resource run.
///
/// All batches share one schema ([`BatchProducer::schema`], which may block until it is
/// known). `next_batch` returns `Ok(None)` at the end; [`BatchProducer::final_state`] is then
/// the resource's new state.
pub trait BatchProducer: Send {
    /// The schema of every batch.
    fn schema(&mut self) -> Result<SchemaRef>;
    /// The next batch, or `None` at the end of the stream.
    fn next_batch(&mut self) -> Result<Option<RecordBatch>>;
    /// After the end: the resource state to store (`None` = unchanged).
    fn final_state(&mut self) -> Option<Value> {
        None
    }
    /// Counters for the run (pages, requests, bytes read) as a JSON object.
    fn metrics(&self) -> Value {
        Value::Object(Default::default())
    }
}

/// The stream of one resource run.
pub struct BatchStream {
    inner: Box<dyn BatchProducer>,
}

impl std::fmt::Debug for BatchStream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BatchStream").finish_non_exhaustive()
    }
}

impl BatchStream {
    /// Wraps a producer.
    pub fn new(producer: impl BatchProducer + 'static) -> Self {
        Self {
            inner: Box::new(producer),
        }
    }

    /// A stream over ready batches (all of `schema`), with a final state.
    pub fn from_batches(
        schema: SchemaRef,
        batches: Vec<Result<RecordBatch>>,
        final_state: Option<Value>,
    ) -> Self {
        Self::new(IterProducer {
            schema,
            iter: Box::new(batches.into_iter()),
            final_state,
        })
    }

    /// A stream driven by an iterator: batches are produced on the caller's thread as the host
    /// pulls them (no thread hop).
    pub fn from_iter<I>(schema: SchemaRef, iter: I, final_state: Option<Value>) -> Self
    where
        I: Iterator<Item = Result<RecordBatch>> + Send + 'static,
    {
        Self::new(IterProducer {
            schema,
            iter: Box::new(iter),
            final_state,
        })
    }

    /// The schema of the batches.
    pub fn schema(&mut self) -> Result<SchemaRef> {
        self.inner.schema()
    }

    /// The next batch.
    pub fn next_batch(&mut self) -> Result<Option<RecordBatch>> {
        self.inner.next_batch()
    }

    /// The final resource state (after the end).
    pub fn final_state(&mut self) -> Option<Value> {
        self.inner.final_state()
    }

    /// Run counters.
    pub fn metrics(&self) -> Value {
        self.inner.metrics()
    }

    /// The producer behind the stream.
    pub fn into_producer(self) -> Box<dyn BatchProducer> {
        self.inner
    }

    /// An arrow-rs [`RecordBatchReader`] over this stream (the schema is resolved first).
    pub fn into_reader(mut self) -> Result<StreamReader> {
        let schema = self.inner.schema()?;
        Ok(StreamReader {
            schema,
            stream: self,
            done: false,
        })
    }
}

/// [`BatchStream`] as a [`RecordBatchReader`]; errors travel as `ArrowError::ExternalError`
/// holding our [`Error`].
#[derive(Debug)]
pub struct StreamReader {
    schema: SchemaRef,
    stream: BatchStream,
    done: bool,
}

impl StreamReader {
    /// The stream back (e.g. to read its final state after the end).
    pub fn into_stream(self) -> BatchStream {
        self.stream
    }

    /// The final state after the end.
    pub fn final_state(&mut self) -> Option<Value> {
        self.stream.final_state()
    }
}

impl Iterator for StreamReader {
    type Item = std::result::Result<RecordBatch, ArrowError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.done {
            return None;
        }
        match self.stream.next_batch() {
            Ok(Some(b)) => Some(Ok(b)),
            Ok(None) => {
                self.done = true;
                None
            }
            Err(e) => {
                self.done = true;
                Some(Err(e.into()))
            }
        }
    }
}

impl RecordBatchReader for StreamReader {
    fn schema(&self) -> SchemaRef {
        self.schema.clone()
    }
}

struct IterProducer {
    schema: SchemaRef,
    iter: Box<dyn Iterator<Item = Result<RecordBatch>> + Send>,
    final_state: Option<Value>,
}

impl BatchProducer for IterProducer {
    fn schema(&mut self) -> Result<SchemaRef> {
        Ok(self.schema.clone())
    }
    fn next_batch(&mut self) -> Result<Option<RecordBatch>> {
        self.iter.next().transpose()
    }
    fn final_state(&mut self) -> Option<Value> {
        self.final_state.take()
    }
}

enum Msg {
    Schema(SchemaRef),
    Batch(RecordBatch),
}

/// Where an async producer sends its batches (see [`StreamContext::spawn`]).
#[derive(Debug)]
pub struct BatchSink {
    tx: mpsc::Sender<Msg>,
    cancel: CancelToken,
}

impl BatchSink {
    /// Declares the schema before the first batch (lets the host start without waiting for
    /// data, e.g. for an empty table).
    pub async fn declare_schema(&self, schema: SchemaRef) -> Result<()> {
        self.tx
            .send(Msg::Schema(schema))
            .await
            .map_err(|_| Error::cancelled())
    }

    /// Sends a batch, waiting while the host is busy. Fails with `CANCELLED` when the host
    /// cancelled or dropped the stream: stop producing then.
    pub async fn send(&self, batch: RecordBatch) -> Result<()> {
        self.cancel.check()?;
        self.tx
            .send(Msg::Batch(batch))
            .await
            .map_err(|_| Error::cancelled())
    }

    /// The run's cancellation token.
    pub fn cancel(&self) -> &CancelToken {
        &self.cancel
    }
}

struct ChannelProducer {
    runtime: tokio::runtime::Handle,
    rx: mpsc::Receiver<Msg>,
    outcome: Arc<Mutex<Option<Result<Option<Value>>>>>,
    schema: Option<SchemaRef>,
    default_schema: Option<SchemaRef>,
    pending: Option<RecordBatch>,
    final_state: Option<Value>,
    cancel: CancelToken,
    finished: bool,
}

impl ChannelProducer {
    fn take_outcome(&mut self) -> Result<()> {
        if self.finished {
            // taken already (the producer ended before sending anything: `schema` took it)
            return Ok(());
        }
        let outcome = self.outcome.lock().ok().and_then(|mut g| g.take());
        match outcome {
            Some(Ok(state)) => {
                self.final_state = state;
                self.finished = true;
                Ok(())
            }
            Some(Err(e)) => Err(e),
            None => Err(Error::internal(
                "the resource's producer task ended without a result (it panicked or its runtime shut down)",
            )),
        }
    }

    fn recv(&mut self) -> Option<Msg> {
        // Poll the cancel flag while waiting, so a producer stuck in I/O cannot hang the host.
        loop {
            match self.rx.try_recv() {
                Ok(m) => return Some(m),
                Err(mpsc::error::TryRecvError::Disconnected) => return None,
                Err(mpsc::error::TryRecvError::Empty) => {}
            }
            if self.cancel.is_cancelled() {
                return None;
            }
            let got = self.runtime.block_on(async {
                tokio::time::timeout(std::time::Duration::from_millis(50), self.rx.recv()).await
            });
            match got {
                Ok(m) => return m,
                Err(_) => continue,
            }
        }
    }
}

impl BatchProducer for ChannelProducer {
    fn schema(&mut self) -> Result<SchemaRef> {
        if let Some(s) = &self.schema {
            return Ok(s.clone());
        }
        let schema = match self.recv() {
            Some(Msg::Schema(s)) => s,
            Some(Msg::Batch(b)) => {
                let s = b.schema();
                self.pending = Some(b);
                s
            }
            None => {
                self.cancel.check()?;
                // the producer ended before sending anything: surface its error, if any
                self.take_outcome()?;
                self.default_schema.clone().ok_or_else(|| {
                    Error::internal(
                        "the resource ended without data and without declaring a schema",
                    )
                })?
            }
        };
        self.schema = Some(schema.clone());
        Ok(schema)
    }

    fn next_batch(&mut self) -> Result<Option<RecordBatch>> {
        if self.schema.is_none() {
            self.schema()?;
        }
        if let Some(b) = self.pending.take() {
            return Ok(Some(b));
        }
        loop {
            match self.recv() {
                Some(Msg::Batch(b)) => return Ok(Some(b)),
                Some(Msg::Schema(_)) => continue,
                None => {
                    self.cancel.check()?;
                    self.take_outcome()?;
                    return Ok(None);
                }
            }
        }
    }

    fn final_state(&mut self) -> Option<Value> {
        self.final_state.take()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::CancelFlag;

    #[test]
    fn a_producer_that_sends_nothing_ends_cleanly_with_its_state() {
        let flag = CancelFlag::new();
        let ctx = StreamContext::new(flag.token());
        let mut stream = ctx.spawn(Some(crate::json_schema()), |_sink| async move {
            Ok(Some(serde_json::json!({"cursor": 7})))
        });
        assert_eq!(stream.schema().expect("schema"), crate::json_schema());
        assert!(stream.next_batch().expect("end").is_none());
        assert_eq!(stream.final_state(), Some(serde_json::json!({"cursor": 7})));
    }
}
