//! The readers: csv and parquet into typed Arrow, jsonl / json into JSON document batches.
//! Each reads one file as a stream (bounded memory: a sample for csv inference, then batches).

use std::io::{BufRead, BufReader, Cursor, Read};
use std::sync::Arc;

use arrow_array::{new_null_array, ArrayRef, RecordBatch};
use arrow_schema::{DataType, Field, Schema, SchemaRef};
use serde::{Deserialize, Serialize};
use sluice_sdk::{json_text_batch, json_text_batch_from, Error, Result};

/// File formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Format {
    /// comma-separated values (typed Arrow)
    Csv,
    /// JSON lines (documents for the normalizer)
    #[serde(alias = "ndjson")]
    Jsonl,
    /// a JSON document or an array of documents per file
    Json,
    /// parquet (typed Arrow, passed through)
    Parquet,
}

impl Format {
    /// The format a file name says (`.gz` suffixes are looked through).
    pub fn from_name(name: &str) -> Option<Self> {
        let lower = name.to_ascii_lowercase();
        let lower = lower.strip_suffix(".gz").unwrap_or(&lower);
        let ext = lower.rsplit('.').next()?;
        match ext {
            "csv" | "tsv" => Some(Self::Csv),
            "jsonl" | "ndjson" => Some(Self::Jsonl),
            "json" => Some(Self::Json),
            "parquet" | "pq" => Some(Self::Parquet),
            _ => None,
        }
    }

    /// The reader name dlt gives this format's resource.
    pub fn reader_name(self) -> &'static str {
        match self {
            Self::Csv => "read_csv",
            Self::Jsonl => "read_jsonl",
            Self::Json => "read_json",
            Self::Parquet => "read_parquet",
        }
    }

    /// Whether batches are typed Arrow (else JSON documents).
    pub fn is_arrow(self) -> bool {
        matches!(self, Self::Csv | Self::Parquet)
    }
}

/// Whether a file is gzip-compressed (by name).
pub fn is_gzip(name: &str) -> bool {
    name.to_ascii_lowercase().ends_with(".gz")
}

/// csv options.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct CsvOptions {
    /// field delimiter (one byte)
    pub delimiter: String,
    /// quote character
    pub quote: String,
    /// escape character (default: quotes are doubled)
    pub escape: Option<String>,
    /// whether the first line names the columns
    pub has_header: bool,
    /// lines starting with this byte are skipped
    pub comment: Option<String>,
    /// values matching this regex are null (default: the empty value)
    pub null_value: Option<String>,
    /// rows sampled to infer the column types
    pub infer_rows: usize,
}

impl Default for CsvOptions {
    fn default() -> Self {
        Self {
            delimiter: ",".into(),
            quote: "\"".into(),
            escape: None,
            has_header: true,
            comment: None,
            null_value: None,
            infer_rows: 20_480,
        }
    }
}

fn one_byte(what: &str, s: &str) -> Result<u8> {
    let s = if s == "\\t" { "\t" } else { s };
    match s.as_bytes() {
        [b] => Ok(*b),
        _ => Err(Error::config(format!(
            "csv `{what}` must be a single ASCII character, got `{s}`"
        ))),
    }
}

impl CsvOptions {
    fn format(&self) -> Result<arrow_csv::reader::Format> {
        let mut f = arrow_csv::reader::Format::default()
            .with_header(self.has_header)
            .with_delimiter(one_byte("delimiter", &self.delimiter)?)
            .with_quote(one_byte("quote", &self.quote)?);
        if let Some(e) = &self.escape {
            f = f.with_escape(one_byte("escape", e)?);
        }
        if let Some(c) = &self.comment {
            f = f.with_comment(one_byte("comment", c)?);
        }
        if let Some(n) = &self.null_value {
            let re = regex::Regex::new(n).map_err(|e| {
                Error::config(format!("csv `null_value` is not a valid regex: {e}"))
            })?;
            f = f.with_null_regex(re);
        }
        Ok(f)
    }
}

/// How much of a csv file is held to infer its types.
const SAMPLE_BYTES: usize = 8 << 20;
/// Rows per Arrow batch.
pub const BATCH_ROWS: usize = 65_536;

fn io_error(file: &str, e: impl std::fmt::Display) -> Error {
    Error::io(format!("cannot read `{file}`: {e}"))
}

/// Reads up to `SAMPLE_BYTES` from the start of `r`, ending at a line break (unless the file is
/// shorter); returns the sample and whether the file ended within it.
fn read_sample(r: &mut dyn Read, file: &str) -> Result<(Vec<u8>, Vec<u8>, bool)> {
    let mut buf = Vec::with_capacity(64 << 10);
    let mut chunk = [0u8; 64 << 10];
    loop {
        let n = r.read(&mut chunk).map_err(|e| io_error(file, e))?;
        if n == 0 {
            return Ok((buf, Vec::new(), true));
        }
        buf.extend_from_slice(&chunk[..n]);
        if buf.len() >= SAMPLE_BYTES {
            break;
        }
    }
    // the sample ends at the last line break; the rest goes back in front of the stream
    let cut = memchr_last_newline(&buf).map_or(buf.len(), |i| i + 1);
    let rest = buf.split_off(cut);
    Ok((buf, rest, false))
}

fn memchr_last_newline(b: &[u8]) -> Option<usize> {
    b.iter().rposition(|&c| c == b'\n')
}

fn csv_error(file: &str, e: arrow_schema::ArrowError) -> Error {
    let text = match e {
        arrow_schema::ArrowError::CsvError(t) | arrow_schema::ArrowError::ParseError(t) => t,
        other => other.to_string(),
    };
    Error::data(format!("csv file `{file}`: {text}"))
}

/// A csv file opened for reading: its inferred schema and the reader positioned at the start.
pub struct CsvFile {
    /// the inferred schema of this file (header order)
    pub schema: Schema,
    sample: Vec<u8>,
    rest: Vec<u8>,
    reader: Box<dyn Read + Send>,
    format: arrow_csv::reader::Format,
    file: String,
}

impl CsvFile {
    /// Opens `reader` (already decompressed) and infers the types from a sample.
    pub fn open(
        mut reader: Box<dyn Read + Send>,
        options: &CsvOptions,
        file: &str,
    ) -> Result<Self> {
        let format = options.format()?;
        let (sample, rest, _eof) = read_sample(&mut reader, file)?;
        if let Err(e) = std::str::from_utf8(&sample) {
            let line = sample[..e.valid_up_to()]
                .iter()
                .filter(|&&c| c == b'\n')
                .count()
                + 1;
            return Err(Error::data(format!(
                "csv file `{file}`: invalid UTF-8 at line {line} (byte {})\nhint: the file must be UTF-8 encoded",
                e.valid_up_to()
            )));
        }
        let (schema, _) = format
            .infer_schema(Cursor::new(&sample), Some(options.infer_rows.max(1)))
            .map_err(|e| csv_error(file, e))?;
        if schema.fields().is_empty() {
            return Err(Error::data(format!(
                "csv file `{file}` has no columns (is it empty?)"
            )));
        }
        // a column with no value in the sample is read as text
        let fields: Vec<Field> = schema
            .fields()
            .iter()
            .map(|f| {
                let ty = if *f.data_type() == DataType::Null {
                    DataType::Utf8
                } else {
                    f.data_type().clone()
                };
                Field::new(f.name(), ty, true)
            })
            .collect();
        Ok(Self {
            schema: Schema::new(fields),
            sample,
            rest,
            reader,
            format,
            file: file.to_string(),
        })
    }

    /// Reads the file with `schema` (this file's columns, types possibly widened), each batch
    /// mapped onto `target` (the resource's schema) and handed to `emit`.
    pub fn read(
        self,
        schema: SchemaRef,
        target: &SchemaRef,
        emit: &mut dyn FnMut(RecordBatch) -> Result<()>,
    ) -> Result<u64> {
        let file = self.file.clone();
        let stream = Cursor::new(self.sample)
            .chain(Cursor::new(self.rest))
            .chain(self.reader);
        let reader = arrow_csv::ReaderBuilder::new(schema)
            .with_format(self.format)
            .with_batch_size(BATCH_ROWS)
            .build(BufReader::with_capacity(1 << 20, stream))
            .map_err(|e| csv_error(&file, e))?;
        let mut rows = 0;
        for batch in reader {
            let batch = batch.map_err(|e| {
                let msg = e.to_string();
                if msg.contains("UTF-8") || msg.contains("utf-8") || msg.contains("utf8") {
                    Error::data(format!(
                        "csv file `{file}`: {msg}\nhint: the file must be UTF-8 encoded"
                    ))
                } else {
                    csv_error(&file, e)
                }
            })?;
            rows += batch.num_rows() as u64;
            emit(conform(&batch, target, &file)?)?;
        }
        Ok(rows)
    }
}

/// Widens two types for one column of a resource read from several files.
pub fn widen(a: &DataType, b: &DataType) -> DataType {
    use DataType::*;
    match (a, b) {
        _ if a == b => a.clone(),
        (Null, x) | (x, Null) => x.clone(),
        (Int64, Float64) | (Float64, Int64) => Float64,
        (Int8 | Int16 | Int32 | Int64, Int8 | Int16 | Int32 | Int64) => Int64,
        (Float16 | Float32 | Float64, Float16 | Float32 | Float64) => Float64,
        (Utf8 | LargeUtf8, _) | (_, Utf8 | LargeUtf8) => Utf8,
        _ => Utf8,
    }
}

/// The union of several files' schemas: columns in order of first appearance, types widened.
pub fn union_schema(schemas: &[Schema]) -> Schema {
    let mut fields: Vec<Field> = Vec::new();
    for s in schemas {
        for f in s.fields() {
            match fields.iter_mut().find(|x| x.name() == f.name()) {
                Some(existing) => {
                    let ty = widen(existing.data_type(), f.data_type());
                    *existing = Field::new(existing.name(), ty, true);
                }
                None => fields.push(Field::new(f.name(), f.data_type().clone(), true)),
            }
        }
    }
    Schema::new(fields)
}

/// `file_schema` with each column's type taken from `target`.
pub fn file_schema_in(file_schema: &Schema, target: &Schema) -> SchemaRef {
    let fields: Vec<Field> = file_schema
        .fields()
        .iter()
        .map(|f| {
            let ty = target
                .field_with_name(f.name())
                .map(|t| t.data_type().clone())
                .unwrap_or_else(|_| f.data_type().clone());
            Field::new(f.name(), ty, true)
        })
        .collect();
    Arc::new(Schema::new(fields))
}

/// Maps a batch onto `target`: columns by name, cast where the type differs, nulls for missing.
pub fn conform(batch: &RecordBatch, target: &SchemaRef, file: &str) -> Result<RecordBatch> {
    if batch.schema().as_ref() == target.as_ref() {
        return Ok(batch.clone());
    }
    let n = batch.num_rows();
    let mut cols: Vec<ArrayRef> = Vec::with_capacity(target.fields().len());
    for f in target.fields() {
        match batch.column_by_name(f.name()) {
            Some(c) if c.data_type() == f.data_type() => cols.push(c.clone()),
            Some(c) => cols.push(arrow_cast::cast(c, f.data_type()).map_err(|e| {
                Error::data(format!(
                    "file `{file}`: column `{}` of type {} cannot be read as {} like the other files: {e}",
                    f.name(),
                    c.data_type(),
                    f.data_type()
                ))
            })?),
            None => cols.push(new_null_array(f.data_type(), n)),
        }
    }
    RecordBatch::try_new(target.clone(), cols)
        .map_err(|e| Error::internal(format!("file `{file}`: {e}")))
}

/// Byte caps on what is read into memory at once (config keys `max_line_bytes` and
/// `max_json_file_bytes`): a file without line breaks or a huge `.json` file is refused with
/// its name instead of filling memory.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// One JSON lines line.
    pub line: u64,
    /// A whole `.json` file (decompressed), which is parsed at once.
    pub json_file: u64,
}

impl Limits {
    /// 256 MiB a line, 1 GiB a `.json` file.
    pub const DEFAULT: Limits = Limits {
        line: 256 << 20,
        json_file: 1 << 30,
    };
}

/// Reads JSON lines from `reader` into document batches of about `target_bytes`, checking UTF-8
/// (the error names the line), that no line is longer than `max_line` bytes, and that the file
/// does not end in a cut-off document.
pub fn read_jsonl(
    reader: Box<dyn Read + Send>,
    file: &str,
    target_bytes: usize,
    max_line: u64,
    emit: &mut dyn FnMut(RecordBatch) -> Result<()>,
) -> Result<u64> {
    let mut r = BufReader::with_capacity(1 << 20, reader);
    let new_chunk = || Vec::with_capacity(target_bytes + (64 << 10));
    let mut chunk: Vec<u8> = new_chunk();
    let mut line_no: u64 = 0;
    let mut lines: u64 = 0;
    let mut last_line: Vec<u8> = Vec::new();
    loop {
        let start = chunk.len();
        let n = (&mut r)
            .take(max_line.saturating_add(1))
            .read_until(b'\n', &mut chunk)
            .map_err(|e| io_error(file, e))?;
        if n as u64 > max_line && chunk.last() != Some(&b'\n') {
            return Err(Error::data(format!(
                "jsonl file `{file}`: line {} is longer than {max_line} bytes (max_line_bytes)\nhint: is it JSON lines (one document a line)? For a single large document use format `json`, or raise `max_line_bytes`",
                line_no + 1
            )));
        }
        if n > 0 {
            line_no += 1;
            let line = &chunk[start..];
            if line.iter().any(|c| !c.is_ascii_whitespace()) {
                lines += 1;
                last_line.clear();
                last_line.extend_from_slice(line);
            }
        }
        if chunk.len() >= target_bytes || (n == 0 && !chunk.is_empty()) {
            let first_line = line_no - chunk.iter().filter(|&&c| c == b'\n').count() as u64
                + u64::from(chunk.last() == Some(&b'\n'));
            // the chunk's buffer becomes the batch's (no copy); the next chunk gets a new one
            let text = String::from_utf8(std::mem::replace(&mut chunk, new_chunk())).map_err(|e| {
                let bytes = e.as_bytes();
                let line = first_line
                    + bytes[..e.utf8_error().valid_up_to()].iter().filter(|&&c| c == b'\n').count() as u64;
                Error::data(format!(
                    "jsonl file `{file}`: invalid UTF-8 at line {line}\nhint: the file must be UTF-8 encoded"
                ))
            })?;
            // with the file and line, so invalid JSON anywhere in it is reported with them
            emit(json_text_batch_from(text, file, first_line))?;
        }
        if n == 0 {
            break;
        }
    }
    // a file cut off mid-document (a truncated download or upload) fails here, with its name
    if !last_line.is_empty() {
        if let Err(e) = serde_json::from_slice::<serde::de::IgnoredAny>(&last_line) {
            return Err(Error::data(format!(
                "jsonl file `{file}`: the last document (line {line_no}) is not valid JSON ({e}); is the file truncated?"
            )));
        }
    }
    Ok(lines)
}

/// Reads a JSON file (a document or an array of documents) into one batch.
pub fn read_json(
    reader: Box<dyn Read + Send>,
    file: &str,
    max_bytes: u64,
    emit: &mut dyn FnMut(RecordBatch) -> Result<()>,
) -> Result<u64> {
    let mut bytes = Vec::new();
    reader
        .take(max_bytes.saturating_add(1))
        .read_to_end(&mut bytes)
        .map_err(|e| io_error(file, e))?;
    if bytes.len() as u64 > max_bytes {
        return Err(Error::data(format!(
            "json file `{file}` is larger than {max_bytes} bytes (max_json_file_bytes); a .json file is parsed whole, in memory\nhint: write it as JSON lines (format `jsonl`, read in bounded chunks), or raise `max_json_file_bytes`"
        )));
    }
    let text = String::from_utf8(bytes).map_err(|e| {
        let line = e.as_bytes()[..e.utf8_error().valid_up_to()]
            .iter()
            .filter(|&&c| c == b'\n')
            .count()
            + 1;
        Error::data(format!("json file `{file}`: invalid UTF-8 at line {line}"))
    })?;
    let value: serde_json::Value = serde_json::from_str(&text).map_err(|e| {
        Error::data(format!(
            "json file `{file}`: not valid JSON at line {}, column {}: {e}",
            e.line(),
            e.column()
        ))
    })?;
    let count = match &value {
        serde_json::Value::Array(a) => a.len() as u64,
        _ => 1,
    };
    emit(json_text_batch(text))?;
    Ok(count)
}

/// Wraps a reader in a gzip decoder when the file name ends in `.gz`; decoding errors (a
/// truncated archive) name the file.
pub fn maybe_gunzip(reader: Box<dyn Read + Send>, name: &str) -> Box<dyn Read + Send> {
    if is_gzip(name) {
        Box::new(flate2::read::MultiGzDecoder::new(BufReader::with_capacity(
            1 << 20,
            reader,
        )))
    } else {
        reader
    }
}
