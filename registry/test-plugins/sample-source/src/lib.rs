//! A small, real source plugin used by the registry's tests (not shipped).
//!
//! Resources:
//! * `numbers` (Arrow): `n` (int64) and `label` (utf8), `rows` rows in batches of `batch_size`,
//!   continuing after the last `n` in its state (incremental); produced on the caller's thread.
//! * `events` (JSON): nested documents from an async producer on the plugin's runtime; state
//!   `{"cursor": last id}`.
//! * `bench` (Arrow): `rows` one-row batches of one prebuilt batch (boundary-cost benchmark).
//! * `slow` (Arrow): a batch every 50 ms until cancelled.
//! * `panic_on_open`, `panic_in_next`: panic while opening / inside the first `next`.
//! * `instance` (JSON): one document with how many sources this library instance opened
//!   (tests that two copies of the library are independent).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use arrow_array::{Int64Array, RecordBatch, StringArray};
use arrow_schema::{DataType, Field, Schema, SchemaRef};
use serde_json::{json, Value};
use sluice_sdk::prelude::*;
use sluice_sdk::IncrementalSpec;

static OPENED: AtomicU64 = AtomicU64::new(0);

struct Sample {
    rows: u64,
    batch_size: u64,
}

fn numbers_schema() -> SchemaRef {
    Arc::new(Schema::new(vec![
        Field::new("n", DataType::Int64, false),
        Field::new("label", DataType::Utf8, true),
    ]))
}

fn numbers(from: u64, to: u64) -> Result<RecordBatch> {
    let n: Vec<i64> = (from..to).map(|i| i as i64).collect();
    let labels: Vec<String> = n.iter().map(|i| format!("row {i}")).collect();
    Ok(RecordBatch::try_new(
        numbers_schema(),
        vec![
            Arc::new(Int64Array::from(n)),
            Arc::new(StringArray::from(labels)),
        ],
    )?)
}

impl Source for Sample {
    fn describe(&self) -> Result<Vec<ResourceDescriptor>> {
        let mut numbers = ResourceDescriptor::new("numbers");
        numbers.data_format = DataFormat::Arrow;
        numbers.primary_key = Some(sluice_sdk::KeyHint::One("n".into()));
        numbers.incremental = Some(IncrementalSpec {
            cursor_path: "n".into(),
            ..Default::default()
        });
        let events = ResourceDescriptor::new("events");
        let mut bench = ResourceDescriptor::new("bench");
        bench.data_format = DataFormat::Arrow;
        bench.selected = false;
        let mut slow = ResourceDescriptor::new("slow");
        slow.data_format = DataFormat::Arrow;
        slow.selected = false;
        let mut panic_on_open = ResourceDescriptor::new("panic_on_open");
        panic_on_open.selected = false;
        let mut panic_in_next = ResourceDescriptor::new("panic_in_next");
        panic_in_next.selected = false;
        let mut instance = ResourceDescriptor::new("instance");
        instance.selected = false;
        Ok(vec![
            numbers,
            events,
            bench,
            slow,
            panic_on_open,
            panic_in_next,
            instance,
        ])
    }

    fn open_resource(&self, request: ResourceRequest, ctx: StreamContext) -> Result<BatchStream> {
        tracing::info!(resource = %request.resource, "opening resource");
        log::debug!("request: {:?}", request.limit);
        match request.resource.as_str() {
            "numbers" => {
                let start = request
                    .state
                    .get("last")
                    .and_then(Value::as_u64)
                    .map_or(0, |l| l + 1);
                let end = start + self.rows;
                let step = self.batch_size.max(1);
                let cancel = ctx.cancel.clone();
                let mut next = start;
                let iter = std::iter::from_fn(move || {
                    if next >= end {
                        return None;
                    }
                    if let Err(e) = cancel.check() {
                        next = end;
                        return Some(Err(e));
                    }
                    let to = (next + step).min(end);
                    let batch = numbers(next, to);
                    next = to;
                    Some(batch)
                });
                let state = (end > start).then(|| json!({ "last": end - 1 }));
                Ok(BatchStream::from_iter(numbers_schema(), iter, state))
            }
            "events" => {
                let from = request
                    .state
                    .get("cursor")
                    .and_then(Value::as_u64)
                    .unwrap_or(0);
                let rows = self.rows;
                Ok(ctx.spawn(Some(json_schema()), move |sink| async move {
                    let mut docs = JsonBatchBuilder::new(64 * 1024);
                    let mut last = from;
                    for id in from + 1..=from + rows {
                        docs.push_value(&json!({
                            "id": id,
                            "kind": if id % 2 == 0 { "even" } else { "odd" },
                            "payload": {"size": id * 10, "owner": {"login": format!("user{}", id % 7)}},
                            "tags": ["a", "b"],
                        }))?;
                        last = id;
                        if docs.is_full() {
                            sink.send(docs.finish()).await?;
                        }
                    }
                    if !docs.is_empty() {
                        sink.send(docs.finish()).await?;
                    }
                    Ok(Some(json!({ "cursor": last })))
                }))
            }
            "bench" => {
                let one = numbers(0, 1)?;
                let count = self.rows;
                let mut sent = 0;
                let iter = std::iter::from_fn(move || {
                    if sent >= count {
                        return None;
                    }
                    sent += 1;
                    Some(Ok(one.clone()))
                });
                Ok(BatchStream::from_iter(numbers_schema(), iter, None))
            }
            "slow" => Ok(ctx.spawn(Some(numbers_schema()), |sink| async move {
                let mut i = 0;
                loop {
                    sink.send(numbers(i, i + 1)?).await?;
                    i += 1;
                    tokio::select! {
                        _ = sink.cancel().cancelled() => return Err(Error::cancelled()),
                        _ = tokio::time::sleep(Duration::from_millis(50)) => {}
                    }
                }
            })),
            "panic_on_open" => panic!("boom while opening a resource"),
            "panic_in_next" => {
                let iter = std::iter::from_fn(|| -> Option<Result<RecordBatch>> {
                    panic!("boom inside next_batch")
                });
                Ok(BatchStream::from_iter(numbers_schema(), iter, None))
            }
            "instance" => {
                let opened = OPENED.load(Ordering::SeqCst);
                let mut docs = JsonBatchBuilder::default();
                docs.push_value(&json!({ "opened": opened }))?;
                let batch = docs.finish();
                Ok(BatchStream::from_batches(
                    json_schema(),
                    vec![Ok(batch)],
                    None,
                ))
            }
            other => Err(Error::not_found(format!(
                "source `sample` has no resource `{other}` (it has numbers, events, bench, slow)"
            ))),
        }
    }
}

fn plugin() -> Plugin {
    Plugin::new(
        include_str!("../sluice-plugin.toml"),
        env!("CARGO_PKG_VERSION"),
    )
    .source(|config, secrets| {
        OPENED.fetch_add(1, Ordering::SeqCst);
        if let Some(marker) = config.get("marker").and_then(Value::as_str) {
            let _ = std::fs::write(marker, "opened");
        }
        // a secret is accepted but never echoed
        let _token: Option<Secret<String>> = secrets
            .get("token")
            .and_then(|t| serde_json::from_value(t.clone()).ok());
        Ok(Sample {
            rows: config.get("rows").and_then(Value::as_u64).unwrap_or(1000),
            batch_size: config
                .get("batch_size")
                .and_then(Value::as_u64)
                .unwrap_or(100),
        })
    })
}

sluice_sdk::declare_plugin!(fn plugin_module = plugin);
sluice_sdk::export_plugin!(plugin_module);
