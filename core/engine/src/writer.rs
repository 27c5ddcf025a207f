//! Load files: per-table parquet files written as batches arrive.
//!
//! Each table gets one open file at a time. A batch whose schema differs from the open file's
//! (a column was added) closes it and starts a new one, so a package may hold several files per
//! table, each one job. Row groups are flushed when they reach a row or byte limit, so memory
//! stays bounded whatever the input size.

use std::fs::File;
use std::io::BufWriter;
use std::path::{Path, PathBuf};

use ahash::AHashMap;
use arrow_array::RecordBatch;
use arrow_schema::SchemaRef;
use parquet::arrow::ArrowWriter;
use parquet::basic::{Compression, Encoding};
use parquet::file::properties::{EnabledStatistics, WriterProperties, WriterVersion};
use parquet::schema::types::ColumnPath;
use serde::{Deserialize, Serialize};

use crate::normalize::BatchSink;
use crate::{Error, Result};

/// A finished load file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct JobFile {
    /// The table it holds rows of.
    pub table: String,
    /// The file.
    pub path: PathBuf,
    /// `parquet`.
    pub format: String,
    /// Rows in the file.
    pub rows: u64,
    /// Size in bytes.
    pub bytes: u64,
}

struct OpenFile {
    writer: ArrowWriter<BufWriter<File>>,
    schema: SchemaRef,
    path: PathBuf,
    rows: u64,
    /// bytes written when the kernel was last asked to start writing the file back
    kicked: usize,
    /// the writer's write count when this file was last written (least recently written files
    /// are closed first when too many are open)
    used: u64,
}

/// The most load files one writer keeps open: each holds a file handle, a write buffer and up
/// to a row group of rows, so data with thousands of tables (map-like keys) would otherwise
/// exhaust handles and memory. Past it the least recently written file is finished; its table
/// gets a new file when it has rows again.
const MAX_OPEN_FILES: usize = 64;

/// Starts the kernel writing back what reached the file so far, without waiting: the fsync at
/// close then waits only for the tail, and the disk works while the normalizer does. (Linux
/// otherwise starts writeback only at 10% of RAM dirty: several GB.)
fn start_writeback(file: &File) {
    #[cfg(target_os = "linux")]
    {
        use std::os::fd::AsRawFd;
        // SAFETY: a valid open descriptor; the call only schedules writeback
        unsafe {
            libc::sync_file_range(file.as_raw_fd(), 0, 0, libc::SYNC_FILE_RANGE_WRITE);
        }
    }
    #[cfg(not(target_os = "linux"))]
    let _ = file;
}

/// Bytes between writeback kicks.
const WRITEBACK_EVERY: usize = 16 << 20;

/// Bytes of a row group, the most each open table buffers before it writes: 8 MiB keeps the
/// normalizer of the nested benchmark (5 tables) about 25 MiB lower than 16 MiB did, at the
/// same speed, and DuckDB loads the files as fast (4 MiB made its checkpoint slower).
const ROW_GROUP_BYTES: usize = 8 << 20;

/// Writes parquet load files into a directory.
pub struct ParquetWriter {
    dir: PathBuf,
    open: AHashMap<String, OpenFile>,
    jobs: Vec<JobFile>,
    props: WriterProperties,
    writes: u64,
}

impl std::fmt::Debug for ParquetWriter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ParquetWriter")
            .field("dir", &self.dir)
            .finish()
    }
}

/// Longest table part of a job file name (bytes); longer ones are cut and tagged with a hash
/// of the whole name, as dlt shortens identifiers (file names are limited to 255 bytes).
const MAX_FILE_TABLE_BYTES: usize = 160;

/// A file-name-safe form of a table name (the table name itself is recorded in the job), at
/// most [`MAX_FILE_TABLE_BYTES`] long.
pub fn file_safe(table: &str) -> String {
    let out = escape_file_name(table);
    if out.len() <= MAX_FILE_TABLE_BYTES {
        return out;
    }
    use sha3::Digest;
    let digest = sha3::Sha3_256::digest(table.as_bytes());
    let tag: String = digest[..5].iter().map(|b| format!("{b:02x}")).collect();
    // the escaped form is ASCII; never cut inside a `%XX`
    let mut end = MAX_FILE_TABLE_BYTES - tag.len() - 1;
    if let Some(pct) = out[end.saturating_sub(2)..end].find('%') {
        end = end - 2 + pct;
    }
    format!("{}_{tag}", &out[..end])
}

fn escape_file_name(table: &str) -> String {
    let mut out = String::with_capacity(table.len());
    for c in table.chars() {
        if c.is_ascii_alphanumeric() || c == '_' || c == '-' {
            out.push(c);
        } else {
            let mut buf = [0u8; 4];
            for b in c.encode_utf8(&mut buf).bytes() {
                out.push_str(&format!("%{b:02X}"));
            }
        }
    }
    out
}

/// A new random file id (10 hex characters, like dlt's).
pub fn new_file_id() -> String {
    let bytes: [u8; 5] = rand::random();
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

impl ParquetWriter {
    /// A writer into `dir` (created if missing).
    pub fn new(dir: &Path) -> Result<Self> {
        std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
        // Load files are read once, whole, by the destination, and the normalizer writes every
        // byte of the input into them: plain encoding without dictionaries, statistics or
        // compression costs the normalizer far less (dictionary interning and min/max of every
        // string were ~15%, snappy another ~20% of normalizing nested documents) and DuckDB
        // reads it as fast or faster. The files are about 3x larger than with snappy:
        // SLUICE_PARQUET_COMPRESSION=snappy|lz4 trades time for disk.
        // `_dlt_load_id` holds one value per package: its dictionary has one entry.
        let compression = match std::env::var("SLUICE_PARQUET_COMPRESSION").as_deref() {
            Ok("snappy") => Compression::SNAPPY,
            Ok("lz4") => Compression::LZ4_RAW,
            Ok("none") | Ok("uncompressed") | Err(_) => Compression::UNCOMPRESSED,
            Ok(other) => {
                tracing::warn!(target: "sluice::writer", "SLUICE_PARQUET_COMPRESSION={other} is not one of none, snappy, lz4: writing uncompressed");
                Compression::UNCOMPRESSED
            }
        };
        let builder = WriterProperties::builder()
            .set_writer_version(WriterVersion::PARQUET_1_0)
            .set_compression(compression)
            .set_dictionary_enabled(false)
            .set_encoding(Encoding::PLAIN)
            .set_statistics_enabled(EnabledStatistics::None)
            .set_column_dictionary_enabled(ColumnPath::from("_dlt_load_id"), true);
        let props = builder
            .set_max_row_group_row_count(Some(128 * 1024))
            .set_max_row_group_bytes(Some(ROW_GROUP_BYTES))
            .build();
        Ok(Self {
            dir: dir.to_path_buf(),
            open: AHashMap::new(),
            jobs: Vec::new(),
            props,
            writes: 0,
        })
    }

    fn close(&mut self, table: &str) -> Result<()> {
        if let Some(f) = self.open.remove(table) {
            // finish the file and make it durable before the package is committed
            let buffered = f.writer.into_inner().map_err(|e| Error::io(&f.path, e))?;
            let file = buffered
                .into_inner()
                .map_err(|e| Error::io(&f.path, e.error()))?;
            file.sync_all().map_err(|e| Error::io(&f.path, e))?;
            let bytes = std::fs::metadata(&f.path).map(|m| m.len()).unwrap_or(0);
            self.jobs.push(JobFile {
                table: table.to_string(),
                path: f.path,
                format: "parquet".into(),
                rows: f.rows,
                bytes,
            });
        }
        Ok(())
    }

    /// Closes every file and returns the jobs, in the order files were finished.
    pub fn finish(mut self) -> Result<Vec<JobFile>> {
        let tables: Vec<String> = self.open.keys().cloned().collect();
        let mut tables = tables;
        tables.sort();
        for t in tables {
            self.close(&t)?;
        }
        Ok(self.jobs)
    }
}

impl BatchSink for ParquetWriter {
    fn write(&mut self, table: &str, batch: RecordBatch) -> Result<()> {
        let reopen = self
            .open
            .get(table)
            .is_some_and(|f| f.schema.fields() != batch.schema().fields());
        if reopen {
            self.close(table)?;
        }
        self.writes += 1;
        if !self.open.contains_key(table) {
            if self.open.len() >= MAX_OPEN_FILES {
                let oldest = self
                    .open
                    .iter()
                    .min_by_key(|(_, f)| f.used)
                    .map(|(t, _)| t.clone());
                if let Some(t) = oldest {
                    self.close(&t)?;
                }
            }
            let path = self
                .dir
                .join(format!("{}.{}.0.parquet", file_safe(table), new_file_id()));
            let file = {
                use std::os::unix::fs::OpenOptionsExt;
                std::fs::OpenOptions::new()
                    .write(true)
                    .create_new(true)
                    .mode(0o600)
                    .open(&path)
                    .map_err(|e| Error::io(&path, e))?
            };
            let writer = ArrowWriter::try_new(
                BufWriter::with_capacity(1 << 20, file),
                batch.schema(),
                Some(self.props.clone()),
            )?;
            self.open.insert(
                table.to_string(),
                OpenFile {
                    writer,
                    schema: batch.schema(),
                    path,
                    rows: 0,
                    kicked: 0,
                    used: 0,
                },
            );
        }
        if let Some(f) = self.open.get_mut(table) {
            f.used = self.writes;
            f.rows += batch.num_rows() as u64;
            // a failed write (a full disk) names the file it was writing
            f.writer.write(&batch).map_err(|e| Error::io(&f.path, e))?;
            let written = f.writer.bytes_written();
            if written - f.kicked >= WRITEBACK_EVERY {
                f.kicked = written;
                start_writeback(f.writer.inner().get_ref());
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use arrow_array::{Int64Array, RecordBatch};
    use arrow_schema::{DataType, Field, Schema};

    use super::*;

    #[test]
    fn rotates_files_when_columns_change() {
        let dir = tempfile::tempdir().expect("tmp");
        let mut w = ParquetWriter::new(dir.path()).expect("writer");
        let one = Arc::new(Schema::new(vec![Field::new("a", DataType::Int64, true)]));
        let two = Arc::new(Schema::new(vec![
            Field::new("a", DataType::Int64, true),
            Field::new("b", DataType::Int64, true),
        ]));
        let b1 =
            RecordBatch::try_new(one, vec![Arc::new(Int64Array::from(vec![1, 2]))]).expect("b1");
        let b2 = RecordBatch::try_new(
            two,
            vec![
                Arc::new(Int64Array::from(vec![3])),
                Arc::new(Int64Array::from(vec![4])),
            ],
        )
        .expect("b2");
        w.write("my table/x", b1.clone()).expect("w1");
        w.write("my table/x", b1).expect("w2");
        w.write("my table/x", b2).expect("w3");
        let jobs = w.finish().expect("finish");
        assert_eq!(jobs.len(), 2);
        assert_eq!(jobs[0].rows, 4);
        assert_eq!(jobs[1].rows, 1);
        assert!(jobs[0]
            .path
            .file_name()
            .expect("name")
            .to_string_lossy()
            .starts_with("my%20table%2Fx."));
    }

    #[test]
    fn open_files_are_bounded_however_many_tables() {
        let dir = tempfile::tempdir().expect("tmp");
        let mut w = ParquetWriter::new(dir.path()).expect("writer");
        let one = Arc::new(Schema::new(vec![Field::new("a", DataType::Int64, true)]));
        let b = RecordBatch::try_new(one, vec![Arc::new(Int64Array::from(vec![1]))]).expect("b");
        for round in 0..2 {
            for t in 0..(MAX_OPEN_FILES * 3) {
                w.write(&format!("t{t}"), b.clone()).expect("write");
                assert!(
                    w.open.len() <= MAX_OPEN_FILES,
                    "round {round}: {}",
                    w.open.len()
                );
            }
        }
        let jobs = w.finish().expect("finish");
        let rows: u64 = jobs.iter().map(|j| j.rows).sum();
        assert_eq!(
            rows,
            (MAX_OPEN_FILES * 3 * 2) as u64,
            "every row is in a file"
        );
    }

    #[test]
    fn long_table_names_give_short_distinct_file_names() {
        let a = "t__".repeat(200) + "a";
        let b = "t__".repeat(200) + "b";
        let (fa, fb) = (file_safe(&a), file_safe(&b));
        assert!(fa.len() <= MAX_FILE_TABLE_BYTES, "{}", fa.len());
        assert_ne!(fa, fb);
        let multi = "é".repeat(200);
        let f = file_safe(&multi);
        assert!(f.len() <= MAX_FILE_TABLE_BYTES);
        assert!(!f.contains("%_") && !f.ends_with('%'), "{f}");
        // and a file of that name can be made
        let dir = tempfile::tempdir().expect("tmp");
        let mut w = ParquetWriter::new(dir.path()).expect("writer");
        let one = Arc::new(Schema::new(vec![Field::new("a", DataType::Int64, true)]));
        let b1 = RecordBatch::try_new(one, vec![Arc::new(Int64Array::from(vec![1]))]).expect("b1");
        w.write(&multi, b1).expect("write under a long name");
        assert_eq!(w.finish().expect("finish").len(), 1);
    }
}
