//! The filesystem source (dlt's `filesystem` + readers, spec l.3): lists files under a bucket URL
//! (local disk, S3, GCS, Azure Blob) that match a glob, and reads them — csv and parquet as typed
//! Arrow, jsonl and json as documents for the normalizer (nested data becomes child tables).
//!
//! Config (see `sluice-plugin.toml`): `bucket_url`, `file_glob`, `format`, `table_name`,
//! `incremental_files`, the usual resource hints, `csv` options, or `resources = [...]` for
//! several tables from one bucket. Each configured table is a resource; a resource named
//! `filesystem` lists the file items themselves (not selected unless named).
//!
//! Incremental by file: with `incremental_files = true` a run reads only the files modified
//! after the last run's newest file (files with exactly that modification date are told apart
//! by name, as dlt deduplicates on `file_url`). The state is the resource's
//! `{"last_modification_date": ..., "files_at_last_modification": [...]}`.

mod config;
mod read;
mod store;

use std::sync::Arc;

use arrow_schema::{Schema, SchemaRef};
use chrono::{DateTime, SecondsFormat, Utc};
use futures::StreamExt;
use serde_json::{json, Map, Value};
use sluice_sdk::prelude::*;
use sluice_sdk::resource::KeyHint;

use config::{ConfigError, FilesystemConfig, FilesystemSecrets};
pub use read::{CsvOptions, Format};
use store::{compile_glob, FileItem, Store};

#[derive(Debug, Clone)]
struct Table {
    name: String,
    glob: String,
    format: Format,
    incremental_files: bool,
    csv: CsvOptions,
    limits: read::Limits,
    descriptor: ResourceDescriptor,
}

/// The filesystem source.
pub struct Filesystem {
    store: Arc<Store>,
    tables: Vec<Table>,
    listing_glob: String,
}

impl Filesystem {
    /// Opens the source from its resolved config and secrets.
    pub fn open(config: Value, secrets: Value) -> Result<Self> {
        let config = FilesystemConfig::from_json(config)?;
        let secret_creds = FilesystemSecrets::from_json(&secrets).credentials()?;
        let store = Store::open(
            &config.bucket_url,
            config.credentials.as_ref().unwrap_or(&Map::new()),
            &secret_creds,
        )?;
        let limits = config.limits();
        let mut tables = Vec::new();
        for t in config.tables()? {
            let (name, glob, format) = (t.name, t.file_glob, t.format);
            let mut desc = ResourceDescriptor::new(&name);
            desc.data_format = if format.is_arrow() {
                DataFormat::Arrow
            } else {
                DataFormat::Json
            };
            desc.write_disposition = t.write_disposition;
            desc.primary_key = t.primary_key;
            desc.merge_key = t.merge_key;
            desc.incremental = t.incremental;
            desc.max_table_nesting = t.max_table_nesting;
            if let Some(cols) = t.columns {
                desc.columns =
                    serde_json::from_value(Value::Object(cols)).map_err(ConfigError::Invalid)?;
            }
            desc.description = Some(format!(
                "{} files matching `{glob}`",
                format.reader_name().trim_start_matches("read_")
            ));
            tables.push(Table {
                name,
                glob,
                format,
                incremental_files: t.incremental_files,
                csv: t.csv,
                limits,
                descriptor: desc,
            });
        }
        Ok(Self {
            store: Arc::new(store),
            tables,
            listing_glob: config.file_glob,
        })
    }
}

/// The files of this run: all, or with `incremental_files` those new or changed since the state.
fn select_files(files: Vec<FileItem>, state: &Value) -> Vec<FileItem> {
    let last = state
        .get("last_modification_date")
        .and_then(Value::as_str)
        .and_then(|s| DateTime::parse_from_rfc3339(s).ok())
        .map(|d| d.with_timezone(&Utc));
    let Some(last) = last else { return files };
    let seen: Vec<&str> = state
        .get("files_at_last_modification")
        .and_then(Value::as_array)
        .map(|a| a.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    files
        .into_iter()
        .filter(|f| {
            f.modified > last || (f.modified == last && !seen.contains(&f.file_name.as_str()))
        })
        .collect()
}

/// The state after reading `files` (on top of `previous`).
fn files_state(previous: &Value, files: &[FileItem]) -> Value {
    let prev_last = previous
        .get("last_modification_date")
        .and_then(Value::as_str)
        .and_then(|s| DateTime::parse_from_rfc3339(s).ok())
        .map(|d| d.with_timezone(&Utc));
    let newest = files.iter().map(|f| f.modified).max();
    let last = match (prev_last, newest) {
        (Some(p), Some(n)) => p.max(n),
        (p, n) => match p.or(n) {
            Some(x) => x,
            None => return previous.clone(),
        },
    };
    let mut at_last: Vec<String> = files
        .iter()
        .filter(|f| f.modified == last)
        .map(|f| f.file_name.clone())
        .collect();
    if prev_last == Some(last) {
        if let Some(a) = previous
            .get("files_at_last_modification")
            .and_then(Value::as_array)
        {
            for v in a.iter().filter_map(Value::as_str) {
                if !at_last.iter().any(|x| x == v) {
                    at_last.push(v.to_string());
                }
            }
        }
    }
    at_last.sort();
    let mut m = match previous {
        Value::Object(m) => m.clone(),
        _ => Map::new(),
    };
    m.insert(
        "last_modification_date".into(),
        json!(last.to_rfc3339_opts(SecondsFormat::AutoSi, true)),
    );
    m.insert("files_at_last_modification".into(), json!(at_last));
    Value::Object(m)
}

/// Sends from a blocking thread.
fn send(
    handle: &tokio::runtime::Handle,
    sink: &BatchSink,
    batch: arrow_array::RecordBatch,
) -> Result<()> {
    handle.block_on(sink.send(batch))
}

impl Filesystem {
    fn run_table(
        store: Arc<Store>,
        table: Table,
        state: Value,
        limit: Option<u64>,
        sink: BatchSink,
        handle: tokio::runtime::Handle,
        ctx: StreamContext,
    ) -> Result<Option<Value>> {
        let glob = compile_glob(&table.glob)?;
        let listed = handle.block_on(store.list(&glob))?;
        let listed_count = listed.len();
        let mut files = if table.incremental_files {
            select_files(listed, &state)
        } else {
            listed
        };
        if let Some(n) = limit {
            files.truncate(n as usize);
        }
        tracing::info!(resource = %table.name, bucket = %store.url, glob = %table.glob, listed = listed_count, reading = files.len(), "filesystem: files to read");
        let mut rows_total = 0u64;
        let mut bytes_total = 0u64;
        match table.format {
            Format::Csv => {
                // open every file (type inference on a sample), then read them into one schema
                let mut opened = Vec::with_capacity(files.len());
                for f in &files {
                    let r = store.open_read(f, &handle)?;
                    let r = read::maybe_gunzip(r, &f.file_name);
                    opened.push(read::CsvFile::open(r, &table.csv, &f.file_url)?);
                    // keep at most a few files open at once: read the others later again
                    if opened.len() >= 8 {
                        break;
                    }
                }
                let mut schemas: Vec<Schema> = opened.iter().map(|o| o.schema.clone()).collect();
                // files past the open window: infer from a fresh open
                for f in files.iter().skip(opened.len()) {
                    let r = read::maybe_gunzip(store.open_read(f, &handle)?, &f.file_name);
                    schemas.push(read::CsvFile::open(r, &table.csv, &f.file_url)?.schema);
                }
                let target: SchemaRef = Arc::new(read::union_schema(&schemas));
                // no file: an empty schema (the host creates no table)
                handle.block_on(sink.declare_schema(target.clone()))?;
                let mut opened = opened.into_iter();
                for f in &files {
                    let csv = match opened.next() {
                        Some(o) => o,
                        None => {
                            let r = read::maybe_gunzip(store.open_read(f, &handle)?, &f.file_name);
                            read::CsvFile::open(r, &table.csv, &f.file_url)?
                        }
                    };
                    let schema = read::file_schema_in(&csv.schema, &target);
                    let rows = csv.read(schema, &target, &mut |b| send(&handle, &sink, b))?;
                    rows_total += rows;
                    bytes_total += f.size;
                    ctx.progress(&table.name, rows_total, bytes_total);
                }
            }
            Format::Parquet => {
                let mut schemas = Vec::with_capacity(files.len());
                for f in &files {
                    schemas.push(Self::parquet_schema(&store, f, &handle)?);
                }
                let target: SchemaRef = Arc::new(read::union_schema(&schemas));
                // no file: an empty schema (the host creates no table)
                handle.block_on(sink.declare_schema(target.clone()))?;
                for f in &files {
                    rows_total += Self::read_parquet(&store, f, &target, &handle, &sink)?;
                    bytes_total += f.size;
                    ctx.progress(&table.name, rows_total, bytes_total);
                }
            }
            Format::Jsonl | Format::Json => {
                for f in &files {
                    let r = read::maybe_gunzip(store.open_read(f, &handle)?, &f.file_name);
                    rows_total += if table.format == Format::Jsonl {
                        read::read_jsonl(r, &f.file_url, 4 << 20, table.limits.line, &mut |b| {
                            send(&handle, &sink, b)
                        })?
                    } else {
                        read::read_json(r, &f.file_url, table.limits.json_file, &mut |b| {
                            send(&handle, &sink, b)
                        })?
                    };
                    bytes_total += f.size;
                    ctx.progress(&table.name, rows_total, bytes_total);
                }
            }
        }
        tracing::info!(resource = %table.name, files = files.len(), rows = rows_total, bytes = bytes_total, "filesystem: read");
        if table.incremental_files {
            Ok(Some(files_state(&state, &files)))
        } else {
            Ok((!state.is_null()).then_some(state))
        }
    }

    fn parquet_schema(
        store: &Store,
        f: &FileItem,
        handle: &tokio::runtime::Handle,
    ) -> Result<Schema> {
        let err = |e: parquet::errors::ParquetError| {
            Error::data(format!(
                "parquet file `{}`: {e} (is it truncated or not a parquet file?)",
                f.file_url
            ))
        };
        if let Some(path) = store.local_path(f) {
            let file = std::fs::File::open(&path)
                .map_err(|e| Error::io(format!("cannot open `{}`: {e}", f.file_url)))?;
            let b = parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder::try_new(file)
                .map_err(err)?;
            return Ok(b.schema().as_ref().clone());
        }
        let b = handle
            .block_on(parquet::arrow::ParquetRecordBatchStreamBuilder::new(
                store.parquet_reader(f),
            ))
            .map_err(err)?;
        Ok(b.schema().as_ref().clone())
    }

    fn read_parquet(
        store: &Store,
        f: &FileItem,
        target: &SchemaRef,
        handle: &tokio::runtime::Handle,
        sink: &BatchSink,
    ) -> Result<u64> {
        let err = |e: &dyn std::fmt::Display| {
            Error::data(format!(
                "parquet file `{}`: {e} (is it truncated or not a parquet file?)",
                f.file_url
            ))
        };
        let mut rows = 0u64;
        if let Some(path) = store.local_path(f) {
            let file = std::fs::File::open(&path)
                .map_err(|e| Error::io(format!("cannot open `{}`: {e}", f.file_url)))?;
            let reader =
                parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder::try_new(file)
                    .map_err(|e| err(&e))?
                    .with_batch_size(read::BATCH_ROWS)
                    .build()
                    .map_err(|e| err(&e))?;
            for b in reader {
                let b = b.map_err(|e| err(&e))?;
                rows += b.num_rows() as u64;
                send(handle, sink, read::conform(&b, target, &f.file_url)?)?;
            }
            return Ok(rows);
        }
        let mut stream = handle
            .block_on(parquet::arrow::ParquetRecordBatchStreamBuilder::new(
                store.parquet_reader(f),
            ))
            .map_err(|e| err(&e))?
            .with_batch_size(read::BATCH_ROWS)
            .build()
            .map_err(|e| err(&e))?;
        while let Some(b) = handle.block_on(stream.next()) {
            let b = b.map_err(|e| err(&e))?;
            rows += b.num_rows() as u64;
            send(handle, sink, read::conform(&b, target, &f.file_url)?)?;
        }
        Ok(rows)
    }
}

impl Source for Filesystem {
    fn describe(&self) -> Result<Vec<ResourceDescriptor>> {
        let mut out: Vec<ResourceDescriptor> =
            self.tables.iter().map(|t| t.descriptor.clone()).collect();
        if !self.tables.iter().any(|t| t.name == "filesystem") {
            let mut listing = ResourceDescriptor::new("filesystem");
            listing.primary_key = Some(KeyHint::One("file_url".into()));
            listing.selected = false;
            listing.description = Some(format!("the file items matching `{}` (file_url, file_name, size_in_bytes, modification_date, ...)", self.listing_glob));
            out.push(listing);
        }
        Ok(out)
    }

    fn open_resource(&self, request: ResourceRequest, ctx: StreamContext) -> Result<BatchStream> {
        let store = self.store.clone();
        if request.resource == "filesystem" && !self.tables.iter().any(|t| t.name == "filesystem") {
            let glob = compile_glob(&self.listing_glob)?;
            return Ok(
                ctx.spawn(Some(sluice_sdk::json_schema()), move |sink| async move {
                    let files = store.list(&glob).await?;
                    let mut docs = JsonBatchBuilder::default();
                    for f in files
                        .iter()
                        .take(request.limit.map_or(usize::MAX, |l| l as usize))
                    {
                        docs.push_value(&f.to_json())?;
                        if docs.is_full() {
                            sink.send(docs.finish()).await?;
                        }
                    }
                    if !docs.is_empty() {
                        sink.send(docs.finish()).await?;
                    }
                    Ok(None)
                }),
            );
        }
        let table = self
            .tables
            .iter()
            .find(|t| t.name == request.resource)
            .cloned()
            .ok_or_else(|| {
                Error::not_found(format!(
                    "source `filesystem` has no resource `{}` (it has {})",
                    request.resource,
                    self.tables
                        .iter()
                        .map(|t| t.name.as_str())
                        .collect::<Vec<_>>()
                        .join(", ")
                ))
            })?;
        let default_schema = if table.format.is_arrow() {
            None
        } else {
            Some(sluice_sdk::json_schema())
        };
        let handle = ctx.runtime();
        let state = request.state.clone();
        let limit = request.limit;
        let ctx2 = ctx.clone();
        Ok(ctx.spawn(default_schema, move |sink| async move {
            let h = handle.clone();
            tokio::task::spawn_blocking(move || {
                Self::run_table(store, table, state, limit, sink, h, ctx2)
            })
            .await
            .map_err(|e| Error::internal(format!("filesystem reader task failed: {e}")))?
        }))
    }
}

fn plugin() -> Plugin {
    Plugin::new(
        include_str!("../sluice-plugin.toml"),
        env!("CARGO_PKG_VERSION"),
    )
    .source(Filesystem::open)
}

sluice_sdk::declare_plugin!(pub fn plugin_module = plugin);

#[cfg(test)]
mod tests;
