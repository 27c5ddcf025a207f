//! Normalizing on several cores with dlt's sequential semantics.
//!
//! dlt decides every column's type by the first value it sees, in document order, so chunks of
//! documents cannot simply be normalized independently. The [`ParallelNormalizer`] normalizes
//! chunks speculatively: each worker starts a chunk from the schema as it stood when the chunk
//! was dispatched, and the results are merged strictly in chunk order. A chunk's result is
//! exactly what sequential processing would have produced when
//! * the chunk changed nothing in the schema (then every column it used already existed with
//!   the type it used, and columns that earlier chunks added meanwhile cannot change a value's
//!   treatment without the chunk adding a column itself), or
//! * no earlier chunk changed the schema since it was dispatched.
//!
//! Any other chunk is normalized again, sequentially, from the current schema. Once a dataset's
//! schema settles (after the first documents), every chunk merges as is and the work runs on
//! all cores; the merging thread also writes the parquet files.

use std::collections::BTreeMap;
use std::sync::mpsc::{self, Receiver, Sender, SyncSender};
use std::sync::Arc;
use std::thread::JoinHandle;

use arrow_array::RecordBatch;
use arrow_schema::Schema as ArrowSchema;

use super::{
    BatchSink, ChunkOutput, MemorySink, NormalizeOptions, NormalizeReport, Normalizer, TextOrigin,
};
use crate::schema::Schema;
use crate::{Error, Result};

/// JSON text shared between the thread that pushes it and a worker.
pub type SharedText = Arc<dyn AsRef<str> + Send + Sync>;

fn text_of(t: &SharedText) -> &str {
    (**t).as_ref()
}

/// Where the parts of a chunk come from (empty: unknown), for error messages.
pub type Origins = Arc<[TextOrigin]>;

/// A chunk kept until it is merged (a chunk normalized on an outdated schema runs again).
type Input = (Arc<str>, SharedText, Origins);

struct Job {
    seq: u64,
    table: Arc<str>,
    /// the chunk (shared: no copy of the text on the way to the worker)
    text: SharedText,
    origins: Origins,
    /// the master schema and its generation, when the worker's copy is outdated
    schema: Option<(u64, Schema)>,
}

struct Done {
    seq: u64,
    worker: usize,
    generation: u64,
    result: Result<(ChunkOutput, Vec<(String, RecordBatch)>, Option<Schema>)>,
}

/// A normalizer that spreads chunks of JSON documents over worker threads (see the module
/// docs for why the result is identical to sequential normalization).
pub struct ParallelNormalizer<W: BatchSink> {
    master: Schema,
    generation: u64,
    load_id: String,
    options: NormalizeOptions,
    sink: W,
    workers: Workers,
    worker_generation: Vec<u64>,
    done: Receiver<Done>,
    next_seq: u64,
    next_merge: u64,
    inputs: BTreeMap<u64, Input>,
    arrived: BTreeMap<u64, Done>,
    next_worker: usize,
    report: NormalizeReport,
}

/// The worker threads; dropping stops them (closing their job channels) and joins them.
struct Workers {
    jobs: Vec<SyncSender<Job>>,
    threads: Vec<JoinHandle<()>>,
}

impl Drop for Workers {
    fn drop(&mut self) {
        self.jobs.clear();
        for t in self.threads.drain(..) {
            let _ = t.join();
        }
    }
}

impl<W: BatchSink> std::fmt::Debug for ParallelNormalizer<W> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ParallelNormalizer")
            .field("workers", &self.workers.jobs.len())
            .finish()
    }
}

fn worker_loop(
    worker: usize,
    load_id: String,
    options: NormalizeOptions,
    jobs: Receiver<Job>,
    done: Sender<Done>,
) {
    let mut normalizer: Option<(u64, Normalizer<MemorySink>)> = None;
    while let Ok(job) = jobs.recv() {
        if let Some((generation, schema)) = job.schema {
            normalizer = Some((
                generation,
                Normalizer::new(schema, &load_id, MemorySink::default(), options.clone()),
            ));
        }
        let Some((generation, n)) = normalizer.as_mut() else {
            let _ = done.send(Done {
                seq: job.seq,
                worker,
                generation: 0,
                result: Err(Error::internal(
                    "a normalize worker got a chunk before a schema",
                )),
            });
            continue;
        };
        let generation = *generation;
        let result = (|| {
            n.normalize_json_text_from(&job.table, text_of(&job.text), &job.origins)?;
            let out = n.take_output()?;
            let batches = take_batches(n.sink_mut());
            let schema = out.schema_changed.then(|| n.schema().clone());
            Ok((out, batches, schema))
        })();
        let changed_or_failed = match &result {
            Ok((out, _, _)) => out.schema_changed,
            Err(_) => true,
        };
        if done
            .send(Done {
                seq: job.seq,
                worker,
                generation,
                result,
            })
            .is_err()
        {
            return;
        }
        if changed_or_failed {
            // our schema copy may now differ from the master's: wait for a fresh one
            normalizer = None;
        }
    }
}

fn take_batches(sink: &mut MemorySink) -> Vec<(String, RecordBatch)> {
    let mut out = Vec::new();
    for (table, batches) in std::mem::take(&mut sink.tables) {
        for b in batches {
            out.push((table.clone(), b));
        }
    }
    out
}

impl<W: BatchSink> ParallelNormalizer<W> {
    /// A normalizer with `workers` threads (at least 1) writing to `sink`.
    pub fn new(
        schema: Schema,
        load_id: &str,
        sink: W,
        options: NormalizeOptions,
        workers: usize,
    ) -> Self {
        let workers = workers.max(1);
        let (done_tx, done_rx) = mpsc::channel();
        let mut jobs = Vec::new();
        let mut threads = Vec::new();
        for w in 0..workers {
            let (tx, rx) = mpsc::sync_channel::<Job>(2);
            let done = done_tx.clone();
            let load_id = load_id.to_string();
            let options = options.clone();
            let handle = std::thread::Builder::new()
                .name(format!("sluice-normalize-{w}"))
                .spawn(move || worker_loop(w, load_id, options, rx, done));
            if let Ok(h) = handle {
                jobs.push(tx);
                threads.push(h);
            }
        }
        let n = jobs.len();
        Self {
            master: schema,
            generation: 1,
            load_id: load_id.to_string(),
            options,
            sink,
            workers: Workers { jobs, threads },
            worker_generation: vec![0; n],
            done: done_rx,
            next_seq: 0,
            next_merge: 0,
            inputs: BTreeMap::new(),
            arrived: BTreeMap::new(),
            next_worker: 0,
            report: NormalizeReport::default(),
        }
    }

    /// The schema as evolved by the chunks merged so far.
    pub fn schema(&self) -> &Schema {
        &self.master
    }

    /// Queues a chunk of JSON documents of root table `table` (whitespace-separated documents;
    /// top-level arrays stand for their elements). Blocks while the workers are busy.
    pub fn push(&mut self, table: &str, text: String) -> Result<()> {
        self.push_shared_from(table, Arc::new(text), Arc::new([]))
    }

    /// Normalizes a chunk of JSON text that stays where it is (e.g. the value buffer of the
    /// source's Arrow batch): the workers read it without a copy.
    pub fn push_shared(&mut self, table: &str, text: SharedText) -> Result<()> {
        self.push_shared_from(table, text, Arc::new([]))
    }

    /// [`ParallelNormalizer::push_shared`] of a text whose parts come from `origins` (named
    /// documents, e.g. files): invalid JSON is reported with the name and line.
    pub fn push_shared_from(
        &mut self,
        table: &str,
        text: SharedText,
        origins: Origins,
    ) -> Result<()> {
        if self.workers.jobs.is_empty() {
            // no threads could be started: normalize here
            let seq = self.next_seq;
            self.next_seq += 1;
            self.inputs.insert(seq, (Arc::from(table), text, origins));
            return self.rerun(seq);
        }
        let seq = self.next_seq;
        self.next_seq += 1;
        let table: Arc<str> = Arc::from(table);
        self.inputs
            .insert(seq, (table.clone(), text.clone(), origins.clone()));
        // bound the work in flight: two chunks per worker
        while self.inputs.len() > self.workers.jobs.len() * 2 {
            self.merge_one()?;
        }
        let w = self.next_worker;
        self.next_worker = (self.next_worker + 1) % self.workers.jobs.len();
        let schema = (self.worker_generation[w] != self.generation).then(|| {
            self.worker_generation[w] = self.generation;
            (self.generation, self.master.clone())
        });
        let job = Job {
            seq,
            table,
            text,
            origins,
            schema,
        };
        if self.workers.jobs[w].send(job).is_err() {
            return Err(Error::internal("a normalize worker stopped unexpectedly"));
        }
        Ok(())
    }

    /// Normalizes a typed Arrow batch of root table `table` (after merging the chunks in
    /// flight, so schema changes stay in order).
    pub fn push_arrow(
        &mut self,
        table: &str,
        batch: &RecordBatch,
        options: super::arrow_input::ArrowOptions,
    ) -> Result<()> {
        while self.next_merge < self.next_seq {
            self.merge_one()?;
        }
        let mut n = Normalizer::new(
            self.master.clone(),
            &self.load_id,
            MemorySink::default(),
            self.options.clone(),
        );
        n.normalize_arrow(table, batch, options)?;
        let out = n.take_output()?;
        let batches = take_batches(n.sink_mut());
        if out.schema_changed {
            self.master = n.schema().clone();
            self.generation += 1;
        }
        self.report.add(out);
        for (table, batch) in batches {
            self.sink.write(&table, batch)?;
        }
        Ok(())
    }

    /// Changes the schema between chunks (e.g. a table whose name came from the data, with its
    /// resource's hints): the chunks in flight are merged first, and the workers get the new
    /// schema with their next chunk.
    pub fn update_schema<T>(&mut self, f: impl FnOnce(&mut Schema) -> Result<T>) -> Result<T> {
        while self.next_merge < self.next_seq {
            self.merge_one()?;
        }
        let out = f(&mut self.master)?;
        self.generation += 1;
        Ok(out)
    }

    /// Waits for the next chunk in order and merges it.
    fn merge_one(&mut self) -> Result<()> {
        let seq = self.next_merge;
        let done = loop {
            if let Some(d) = self.arrived.remove(&seq) {
                break d;
            }
            match self.done.recv() {
                Ok(d) => {
                    self.arrived.insert(d.seq, d);
                }
                Err(_) => {
                    return Err(Error::internal(
                        "the normalize workers stopped unexpectedly",
                    ))
                }
            }
        };
        match done.result {
            Ok((out, batches, schema)) => {
                let valid = !out.schema_changed || done.generation == self.generation;
                if valid {
                    if let Some(s) = schema {
                        self.master = s;
                        self.generation += 1;
                        // the worker continues from a fresh copy (it dropped its own)
                        self.worker_generation[done.worker] = 0;
                    }
                    self.report.add(out);
                    for (table, batch) in batches {
                        let batch = self.in_schema_order(&table, batch)?;
                        self.sink.write(&table, batch)?;
                    }
                    self.inputs.remove(&seq);
                } else {
                    self.worker_generation[done.worker] = 0;
                    self.rerun(seq)?;
                }
            }
            Err(e) => {
                // an error in a chunk dispatched on an outdated schema may not be real: rerun
                self.worker_generation[done.worker] = 0;
                if done.generation == self.generation {
                    self.inputs.remove(&seq);
                    self.next_merge += 1;
                    return Err(e);
                }
                self.rerun(seq)?;
            }
        }
        self.next_merge = self.next_merge.max(seq + 1);
        Ok(())
    }

    /// Normalizes chunk `seq` on this thread from the current schema.
    fn rerun(&mut self, seq: u64) -> Result<()> {
        let Some((table, text, origins)) = self.inputs.remove(&seq) else {
            return Ok(());
        };
        let schema = self.master.clone();
        let mut n = Normalizer::new(
            schema,
            &self.load_id,
            MemorySink::default(),
            self.options.clone(),
        );
        n.normalize_json_text_from(&table, text_of(&text), &origins)?;
        let out = n.take_output()?;
        let batches = take_batches(n.sink_mut());
        if out.schema_changed {
            self.master = n.schema().clone();
            self.generation += 1;
        }
        self.report.add(out);
        for (table, batch) in batches {
            let batch = self.in_schema_order(&table, batch)?;
            self.sink.write(&table, batch)?;
        }
        self.next_merge = self.next_merge.max(seq + 1);
        Ok(())
    }

    /// Reorders a batch's columns into the schema's column order, so batches of different
    /// workers share one layout.
    fn in_schema_order(&self, table: &str, batch: RecordBatch) -> Result<RecordBatch> {
        let Some(t) = self.master.table(table) else {
            return Ok(batch);
        };
        let schema = batch.schema();
        let mut order: Vec<usize> = Vec::with_capacity(batch.num_columns());
        for c in t.columns.values() {
            if let Ok(i) = schema.index_of(&c.name) {
                order.push(i);
            }
        }
        if order.len() != batch.num_columns() || order.iter().enumerate().all(|(i, j)| i == *j) {
            return Ok(batch);
        }
        let fields: Vec<_> = order.iter().map(|i| schema.field(*i).clone()).collect();
        let columns: Vec<_> = order.iter().map(|i| batch.column(*i).clone()).collect();
        Ok(RecordBatch::try_new(
            std::sync::Arc::new(ArrowSchema::new(fields)),
            columns,
        )?)
    }

    /// Merges everything in flight, stops the workers, marks tables that received rows as having
    /// seen data, and returns the report, the sink and the evolved schema.
    pub fn finish(mut self) -> Result<(NormalizeReport, W, Schema)> {
        while self.next_merge < self.next_seq {
            self.merge_one()?;
        }
        drop(self.workers);
        let mut report = std::mem::take(&mut self.report);
        report.finalize(&mut self.master);
        Ok((report, self.sink, self.master))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::naming::Naming;

    fn sequential(text: &str) -> (NormalizeReport, Schema) {
        let mut n = Normalizer::new(
            Schema::new("t", Naming::snake_case()),
            "1.1",
            MemorySink::default(),
            NormalizeOptions::default(),
        );
        n.normalize_json_text("items", text).expect("normalize");
        let (r, _, s) = n.finish().expect("finish");
        (r, s)
    }

    #[test]
    fn matches_sequential_normalization_whatever_the_chunking() {
        // types decided by the first value in document order; new columns appear late
        let mut docs = Vec::new();
        for i in 0..400 {
            let mut d = serde_json::json!({"id": i, "tags": [i, i + 1]});
            if i == 7 {
                d["v"] = serde_json::json!(1);
            }
            if i == 150 {
                d["v"] = serde_json::json!("text");
            }
            if i == 151 {
                d["late"] = serde_json::json!({"x": [1, 2]});
            }
            if i % 50 == 0 {
                d["w"] = serde_json::json!(i * 10);
            }
            if i == 390 {
                d["w"] = serde_json::json!("not a number");
            }
            docs.push(d.to_string());
        }
        let all = docs.join("\n");
        let (seq_report, seq_schema) = sequential(&all);
        for chunk in [1, 3, 17, 100] {
            for workers in [1, 2, 3] {
                let mut p = ParallelNormalizer::new(
                    Schema::new("t", Naming::snake_case()),
                    "1.1",
                    MemorySink::default(),
                    NormalizeOptions::default(),
                    workers,
                );
                for c in docs.chunks(chunk) {
                    p.push("items", c.join("\n")).expect("push");
                }
                let (report, sink, schema) = p.finish().expect("finish");
                assert_eq!(
                    report.rows, seq_report.rows,
                    "chunk {chunk} workers {workers}"
                );
                assert_eq!(
                    schema.to_value(),
                    seq_schema.to_value(),
                    "chunk {chunk} workers {workers}"
                );
                let rows: usize = sink.tables["items"].iter().map(|b| b.num_rows()).sum();
                assert_eq!(rows, 400);
            }
        }
    }

    #[test]
    fn an_error_in_a_chunk_is_reported() {
        let mut p = ParallelNormalizer::new(
            Schema::new("t", Naming::snake_case()),
            "1.1",
            MemorySink::default(),
            NormalizeOptions::default(),
            2,
        );
        p.push("items", "{\"a\": 1}".into()).expect("push");
        let _ = p.push("items", "{\"a\": }".into());
        let err = p.finish().expect_err("invalid json");
        assert!(err.to_string().contains("invalid JSON"), "{err}");
    }

    #[test]
    fn invalid_json_is_reported_with_the_file_and_line_it_came_from() {
        // two files in one chunk: a.jsonl (2 lines), then b.jsonl from its line 1
        let a = "{\"a\": 1}\n{\"a\": 2}\n";
        let b = "{\"a\": 3}\n\n{\"a\": 4,, \"b\": 1}\n{\"a\": 5}\n";
        for workers in [1, 2] {
            let mut p = ParallelNormalizer::new(
                Schema::new("t", Naming::snake_case()),
                "1.1",
                MemorySink::default(),
                NormalizeOptions::default(),
                workers,
            );
            let origins: Origins = vec![
                TextOrigin {
                    offset: 0,
                    name: Arc::from("a.jsonl"),
                    line: 1,
                },
                TextOrigin {
                    offset: a.len(),
                    name: Arc::from("dir/b.jsonl"),
                    line: 1,
                },
            ]
            .into();
            p.push_shared_from("items", Arc::new(format!("{a}{b}")), origins)
                .expect("push");
            let err = p.finish().expect_err("invalid json").to_string();
            assert!(
                err.contains("`dir/b.jsonl` at line 3, column ") && err.contains("table `items`"),
                "{err}"
            );
        }
        // a document cut off by the end of its line is reported at the line where it starts
        let mut n = Normalizer::new(
            Schema::new("t", Naming::snake_case()),
            "1.1",
            MemorySink::default(),
            NormalizeOptions::default(),
        );
        let origins = [TextOrigin {
            offset: 0,
            name: Arc::from("s3://bucket/x.jsonl"),
            line: 41,
        }];
        let err = n
            .normalize_json_text_from("items", "{\"a\": 1}\n{\"a\": [1, 2\n{\"a\": 3}\n", &origins)
            .expect_err("cut off")
            .to_string();
        assert!(err.contains("`s3://bucket/x.jsonl` at line 42:"), "{err}");
    }
}
