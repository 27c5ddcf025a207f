//! Normalize benchmark: JSON lines in, parquet load files out (the normalize step alone).
//!
//! `cargo run --release -p sluice --example normalize_file -- <file.jsonl> <table> [out_dir]`
//!
//! Prints rows per table, the wall time and the peak RSS of the process.

use std::time::Instant;

use sluice::naming::Naming;
use sluice::normalize::parallel::ParallelNormalizer;
use sluice::normalize::NormalizeOptions;
use sluice::schema::Schema;
use sluice::writer::ParquetWriter;

sluice::use_allocator!();

fn peak_rss_mib() -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines().find(|l| l.starts_with("VmHWM:")).and_then(|l| {
                l.split_whitespace()
                    .nth(1)
                    .and_then(|v| v.parse::<f64>().ok())
            })
        })
        .map_or(0.0, |kb| kb / 1024.0)
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    let file = args
        .get(1)
        .ok_or("usage: normalize_file <file.jsonl> <table> [out_dir]")?;
    let table = args.get(2).map(String::as_str).unwrap_or("items");
    let out = args
        .get(3)
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| std::env::temp_dir().join("sluice-normalize-bench"));
    let _ = std::fs::remove_dir_all(&out);
    let started = Instant::now();
    let schema = Schema::new("bench", Naming::snake_case());
    let writer = ParquetWriter::new(&out)?;
    let workers = std::env::var("SLUICE_WORKERS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(2, |n| n.get()));
    let mut n = ParallelNormalizer::new(
        schema,
        "1795300000.000001",
        writer,
        NormalizeOptions::default(),
        workers,
    );
    // stream the file in chunks that end at a newline
    use std::io::Read;
    let mut f = std::fs::File::open(file)?;
    let mut buf = vec![0u8; 4 << 20];
    let mut carry: Vec<u8> = Vec::new();
    loop {
        let read = f.read(&mut buf)?;
        if read == 0 {
            break;
        }
        carry.extend_from_slice(&buf[..read]);
        if let Some(pos) = memchr_last_newline(&carry) {
            let rest = carry.split_off(pos + 1);
            let text = String::from_utf8(std::mem::replace(&mut carry, rest))?;
            n.push(table, text)?;
        }
    }
    if !carry.is_empty() {
        n.push(table, String::from_utf8(carry)?)?;
    }
    let (report, writer, _schema) = n.finish()?;
    let jobs = writer.finish()?;
    let elapsed = started.elapsed();
    for (t, rows) in &report.rows {
        println!("{t}: {rows} rows");
    }
    println!(
        "{} files, {:.2} s, peak RSS {:.0} MiB",
        jobs.len(),
        elapsed.as_secs_f64(),
        peak_rss_mib()
    );
    Ok(())
}

fn memchr_last_newline(b: &[u8]) -> Option<usize> {
    b.iter().rposition(|&c| c == b'\n')
}
