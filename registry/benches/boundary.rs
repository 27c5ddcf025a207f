//! Plugin boundary benchmark (not a test): `cargo bench -p sluice-registry --bench boundary`
//! after `cargo build --release --workspace`.
//!
//! 1. Loading a plugin: manifest read, dlopen, declaration and layout checks, manifest
//!    cross-check and `init`, on fresh copies of the sample source (each copy is a new
//!    library instance, so nothing is cached).
//! 2. Crossing the boundary per batch: 200,000 one-row batches streamed from the sample source
//!    through its library, against the same batches through arrow-rs's own C stream export and
//!    import in-process (the Arrow C Data cost), and against a plain in-process iterator.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use arrow_array::ffi_stream::{FFI_ArrowArrayStream, RecordBatchStreamReader};
use arrow_array::{Int64Array, RecordBatch, RecordBatchIterator, StringArray};
use arrow_schema::{DataType, Field, Schema};
use serde_json::json;
use sluice_registry::{PluginKind, Registry, SearchPath};
use sluice_sdk::{CancelFlag, ResourceRequest, Source, StreamContext};

const BATCHES: u64 = 200_000;

fn plugin_dir() -> PathBuf {
    let exe = std::env::current_exe().expect("exe");
    exe.parent()
        .and_then(Path::parent)
        .expect("profile dir")
        .to_path_buf()
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn one_row_batch() -> RecordBatch {
    let schema = Arc::new(Schema::new(vec![
        Field::new("n", DataType::Int64, false),
        Field::new("label", DataType::Utf8, true),
    ]));
    RecordBatch::try_new(
        schema,
        vec![
            Arc::new(Int64Array::from(vec![0])),
            Arc::new(StringArray::from(vec!["row 0"])),
        ],
    )
    .expect("batch")
}

fn main() {
    let dir = plugin_dir();
    let lib = dir.join("libsluice_source_sample.so");
    assert!(
        lib.exists(),
        "build the plugins first: cargo build --release --workspace"
    );

    // 1. load time on fresh copies
    let mut loads = Vec::new();
    let mut keep = Vec::new();
    for _ in 0..15 {
        let tmp = tempfile::tempdir().expect("tmp");
        std::fs::copy(&lib, tmp.path().join("libsluice_source_sample.so")).expect("copy");
        std::fs::copy(
            dir.join("sample.sluice-plugin.toml"),
            tmp.path().join("sample.sluice-plugin.toml"),
        )
        .expect("copy manifest");
        let registry = Registry::new(SearchPath::from_dirs([tmp.path().to_path_buf()]));
        let started = Instant::now();
        let plugin = registry.load(PluginKind::Source, "sample").expect("load");
        loads.push(started.elapsed());
        keep.push((tmp, plugin));
    }
    let size_mb = std::fs::metadata(&lib)
        .map(|m| m.len() as f64 / 1e6)
        .unwrap_or(0.0);
    println!(
        "plugin load (manifest + dlopen + checks + init), {size_mb:.1} MB library: median {:.2} ms, max {:.2} ms over {} fresh copies",
        median(loads.clone()).as_secs_f64() * 1e3,
        loads.iter().max().expect("some").as_secs_f64() * 1e3,
        loads.len()
    );

    // 2. per-batch crossing
    let plugin = &keep[0].1;
    let source = plugin
        .open_source(&json!({"rows": BATCHES}), &json!({}))
        .expect("open");
    let mut through_plugin = Vec::new();
    for _ in 0..5 {
        let mut stream = source
            .open_resource(
                ResourceRequest {
                    resource: "bench".into(),
                    ..Default::default()
                },
                StreamContext::new(CancelFlag::new().token()),
            )
            .expect("stream");
        let started = Instant::now();
        let mut n = 0u64;
        while let Some(b) = stream.next_batch().expect("batch") {
            n += b.num_rows() as u64;
        }
        through_plugin.push(started.elapsed());
        assert_eq!(n, BATCHES);
    }

    let batch = one_row_batch();
    let mut arrow_ffi = Vec::new();
    let mut plain = Vec::new();
    for _ in 0..5 {
        let b = batch.clone();
        let iter = (0..BATCHES).map(move |_| Ok(b.clone()));
        let reader = RecordBatchIterator::new(iter, batch.schema());
        let started = Instant::now();
        let ffi = FFI_ArrowArrayStream::new(Box::new(reader));
        let reader = RecordBatchStreamReader::try_new(ffi).expect("import");
        let n: usize = reader.map(|b| b.expect("batch").num_rows()).sum();
        arrow_ffi.push(started.elapsed());
        assert_eq!(n as u64, BATCHES);

        let b = batch.clone();
        let started = Instant::now();
        let n: usize = (0..BATCHES)
            .map(|_| std::hint::black_box(b.clone()).num_rows())
            .sum();
        plain.push(started.elapsed());
        assert_eq!(n as u64, BATCHES);
    }
    let per = |d: Duration| d.as_secs_f64() * 1e9 / BATCHES as f64;
    let p = per(median(through_plugin));
    let a = per(median(arrow_ffi));
    let i = per(median(plain));
    println!("per batch, {BATCHES} one-row batches (median of 5):");
    println!("  through the plugin library (sluice C stream + wrapper): {p:>7.0} ns");
    println!("  arrow-rs C stream export + import in-process:           {a:>7.0} ns");
    println!("  plain in-process iterator (no Arrow C Data):            {i:>7.0} ns");
    println!(
        "  sluice boundary overhead beyond the Arrow C Data itself: {:>6.0} ns",
        p - a
    );
}
