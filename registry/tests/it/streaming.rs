use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use arrow_array::cast::AsArray;
use arrow_array::types::{Float64Type, Int64Type};
use serde_json::json;
use sluice_registry::{blocking, Registry, SearchPath};
use sluice_sdk::{CancelFlag, ErrorCode, ResourceRequest, Source, StreamContext};

use crate::support::*;

fn request(resource: &str, state: serde_json::Value) -> ResourceRequest {
    ResourceRequest {
        resource: resource.into(),
        state,
        ..Default::default()
    }
}

#[test]
fn arrow_batches_stream_with_incremental_state() {
    let plugin = registry().load("source", "sample").expect("load");
    let source = plugin
        .open_source(
            &json!({"rows": 250, "batch_size": 100}),
            &json!({"token": "t0ken"}),
        )
        .expect("open");
    let ctx = StreamContext::new(CancelFlag::new().token());
    let mut stream = source
        .open_resource(request("numbers", json!(null)), ctx.clone())
        .expect("stream");
    let schema = stream.schema().expect("schema");
    assert_eq!(schema.field(0).name(), "n");
    let mut sizes = Vec::new();
    let mut last = -1;
    while let Some(batch) = stream.next_batch().expect("batch") {
        sizes.push(batch.num_rows());
        let n = batch.column(0).as_primitive::<Int64Type>();
        last = n.value(n.len() - 1);
    }
    assert_eq!(sizes, [100, 100, 50]);
    assert_eq!(last, 249);
    let state = stream.final_state().expect("state");
    assert_eq!(state, json!({"last": 249}));

    // the next run continues after the stored state
    let mut stream = source
        .open_resource(request("numbers", state), ctx)
        .expect("stream");
    let first = stream.next_batch().expect("batch").expect("some");
    assert_eq!(first.column(0).as_primitive::<Int64Type>().value(0), 250);
}

#[test]
fn json_documents_stream_from_an_async_producer() {
    let plugin = registry().load("source", "sample").expect("load");
    let source = plugin
        .open_source(&json!({"rows": 5000}), &json!({}))
        .expect("open");
    let mut stream = source
        .open_resource(
            request("events", json!({"cursor": 10})),
            StreamContext::new(CancelFlag::new().token()),
        )
        .expect("stream");
    let mut docs = Vec::new();
    while let Some(batch) = stream.next_batch().expect("batch") {
        for text in sluice_sdk::json_texts(&batch).expect("texts") {
            docs.push(serde_json::from_str::<serde_json::Value>(text).expect("json"));
        }
    }
    assert_eq!(docs.len(), 5000);
    assert_eq!(docs[0]["id"], 11);
    assert_eq!(docs[0]["payload"]["owner"]["login"], "user4");
    assert_eq!(stream.final_state(), Some(json!({"cursor": 5010})));
}

#[test]
fn an_out_of_tree_plugin_is_discovered_and_streams() {
    let lib = fixtures_dir().join("libsluice_source_oot.so");
    let (dir, _manifest) = private_copy(&lib, "oot", "source", sluice_abi::ABI_MAJOR);
    let registry = Registry::new(SearchPath::from_dirs([dir.path().to_path_buf()]));
    let found = registry.find("source", "oot").expect("discovered");
    assert!(found.incompatibility().is_none());
    let plugin = registry.load("source", "oot").expect("load");
    let declared = plugin.declaration;
    assert_eq!(declared.abi_major, sluice_abi::ABI_MAJOR);
    let source = plugin.open_source(&json!({}), &json!({})).expect("open");
    let mut stream = source
        .open_resource(
            request("squares", json!(null)),
            StreamContext::new(CancelFlag::new().token()),
        )
        .expect("stream");
    let mut total = 0.0;
    let mut rows = 0;
    while let Some(b) = stream.next_batch().expect("batch") {
        rows += b.num_rows();
        total += b
            .column(0)
            .as_primitive::<Float64Type>()
            .values()
            .iter()
            .sum::<f64>();
    }
    assert_eq!(rows, 30);
    assert_eq!(total, (0..30).map(|i| (i * i) as f64).sum::<f64>());
    assert_eq!(stream.final_state(), Some(json!({"done": true})));
}

#[test]
fn cancellation_ends_a_stream_promptly() {
    let plugin = registry().load("source", "sample").expect("load");
    let source = plugin.open_source(&json!({}), &json!({})).expect("open");
    let flag = CancelFlag::new();
    let mut stream = source
        .open_resource(
            request("slow", json!(null)),
            StreamContext::new(flag.token()),
        )
        .expect("stream");
    assert!(stream.next_batch().expect("first").is_some());
    flag.cancel();
    let started = Instant::now();
    let err = loop {
        match stream.next_batch() {
            Ok(Some(_)) => assert!(
                started.elapsed() < Duration::from_secs(2),
                "still streaming"
            ),
            Ok(None) => panic!("a cancelled stream must end with CANCELLED"),
            Err(e) => break e,
        }
    };
    assert_eq!(err.code, ErrorCode::CANCELLED, "{err}");
    assert!(
        started.elapsed() < Duration::from_millis(500),
        "took {:?}",
        started.elapsed()
    );
}

#[test]
fn plugin_calls_never_block_the_async_host() {
    let plugin = registry().load("source", "sample").expect("load");
    let source = Arc::new(plugin.open_source(&json!({}), &json!({})).expect("open"));
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let ticks = Arc::new(AtomicU64::new(0));
    rt.block_on(async {
        let t = ticks.clone();
        let ticker = tokio::spawn(async move {
            loop {
                tokio::time::sleep(Duration::from_millis(5)).await;
                t.fetch_add(1, Ordering::Relaxed);
            }
        });
        let src = source.clone();
        let stream = blocking(move || {
            src.open_resource(
                request("slow", json!(null)),
                StreamContext::new(CancelFlag::new().token()),
            )
        })
        .await
        .expect("open");
        let stream = Arc::new(Mutex::new(stream));
        // five batches take >= 200 ms inside the plugin; the single host thread keeps ticking
        for _ in 0..5 {
            let s = stream.clone();
            blocking(move || s.lock().expect("lock").next_batch())
                .await
                .expect("batch");
        }
        ticker.abort();
    });
    assert!(
        ticks.load(Ordering::Relaxed) >= 20,
        "ticks: {}",
        ticks.load(Ordering::Relaxed)
    );
}
