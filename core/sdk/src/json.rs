//! Building batches of JSON documents ([`DataFormat::Json`](crate::DataFormat::Json)).

use std::sync::{Arc, OnceLock};

use arrow_array::builder::LargeStringBuilder;
use arrow_array::{Array, LargeStringArray, RecordBatch, UInt64Array};
use arrow_buffer::{Buffer, OffsetBuffer, ScalarBuffer};
use arrow_schema::{DataType, Field, Schema, SchemaRef};

use crate::resource::JSON_COLUMN;
use crate::{Error, Result};

/// The schema of JSON document batches: one non-null `LargeUtf8` column [`JSON_COLUMN`].
pub fn json_schema() -> SchemaRef {
    static SCHEMA: OnceLock<SchemaRef> = OnceLock::new();
    SCHEMA
        .get_or_init(|| {
            Arc::new(Schema::new(vec![Field::new(
                JSON_COLUMN,
                DataType::LargeUtf8,
                false,
            )]))
        })
        .clone()
}

/// A batch of one JSON text (one or more whitespace-separated documents), holding the string's
/// buffer as it is: nothing is copied.
pub fn json_text_batch(text: String) -> RecordBatch {
    // a Vec's length is at most isize::MAX
    let len = i64::try_from(text.len()).expect("a string's length fits in i64");
    let offsets = OffsetBuffer::new(ScalarBuffer::from(vec![0i64, len]));
    let values = Buffer::from_vec(text.into_bytes());
    // SAFETY: the values are a `String`'s bytes, so valid UTF-8, and the offsets span them
    let array = unsafe { LargeStringArray::new_unchecked(offsets, values, None) };
    RecordBatch::try_new(json_schema(), vec![Arc::new(array)])
        .expect("one non-null LargeUtf8 column matches json_schema")
}

/// Optional column of [`DataFormat::Json`](crate::DataFormat::Json) batches: where each text
/// comes from, as the user knows it (a file's path in its bucket or its URL without secrets).
pub const JSON_ORIGIN_COLUMN: &str = "_sluice_origin";

/// Optional column beside [`JSON_ORIGIN_COLUMN`]: the 1-based line of its origin that each text
/// starts at (`UInt64`).
pub const JSON_LINE_COLUMN: &str = "_sluice_line";

/// The schema of JSON document batches that say where their texts come from: [`json_schema`]'s
/// column, then [`JSON_ORIGIN_COLUMN`] and [`JSON_LINE_COLUMN`]. The host reports invalid JSON
/// with the name and line (hosts that do not know these columns ignore them).
pub fn json_located_schema() -> SchemaRef {
    static SCHEMA: OnceLock<SchemaRef> = OnceLock::new();
    SCHEMA
        .get_or_init(|| {
            Arc::new(Schema::new(vec![
                Field::new(JSON_COLUMN, DataType::LargeUtf8, false),
                Field::new(JSON_ORIGIN_COLUMN, DataType::LargeUtf8, false),
                Field::new(JSON_LINE_COLUMN, DataType::UInt64, false),
            ]))
        })
        .clone()
}

/// [`json_text_batch`] of a text that is lines `first_line`.. of `origin` (a file): a batch of
/// [`json_located_schema`].
pub fn json_text_batch_from(text: String, origin: &str, first_line: u64) -> RecordBatch {
    let texts = json_text_batch(text).column(0).clone();
    RecordBatch::try_new(
        json_located_schema(),
        vec![
            texts,
            Arc::new(LargeStringArray::from(vec![origin])),
            Arc::new(UInt64Array::from(vec![first_line])),
        ],
    )
    .expect("three non-null columns of one row match json_located_schema")
}

/// Where the texts of a document batch come from: the origin and first line columns, when the
/// batch has them.
pub fn json_text_origins(batch: &RecordBatch) -> Option<(&LargeStringArray, &UInt64Array)> {
    let origin = batch
        .column_by_name(JSON_ORIGIN_COLUMN)?
        .as_any()
        .downcast_ref::<LargeStringArray>()?;
    let line = batch
        .column_by_name(JSON_LINE_COLUMN)?
        .as_any()
        .downcast_ref::<UInt64Array>()?;
    Some((origin, line))
}

/// Accumulates JSON documents into batches of about `target_bytes` of text.
#[derive(Debug)]
pub struct JsonBatchBuilder {
    builder: LargeStringBuilder,
    rows: usize,
    bytes: usize,
    target_bytes: usize,
    scratch: Vec<u8>,
}

impl Default for JsonBatchBuilder {
    fn default() -> Self {
        Self::new(4 << 20)
    }
}

impl JsonBatchBuilder {
    /// A builder whose batches hold about `target_bytes` of JSON text.
    pub fn new(target_bytes: usize) -> Self {
        Self {
            builder: LargeStringBuilder::new(),
            rows: 0,
            bytes: 0,
            target_bytes: target_bytes.max(1),
            scratch: Vec::new(),
        }
    }

    /// Adds one document.
    pub fn push_value(&mut self, value: &serde_json::Value) -> Result<()> {
        self.scratch.clear();
        serde_json::to_writer(&mut self.scratch, value)?;
        let text = std::str::from_utf8(&self.scratch)
            .map_err(|e| Error::internal(format!("serde_json wrote invalid UTF-8: {e}")))?;
        self.bytes += text.len();
        self.builder.append_value(text);
        self.rows += 1;
        Ok(())
    }

    /// Adds JSON text as is: one or more whitespace-separated documents (e.g. JSON lines, or a
    /// whole page that is an array of records). The host validates it while normalizing.
    pub fn push_raw(&mut self, text: &str) {
        self.bytes += text.len();
        self.builder.append_value(text);
        self.rows += 1;
    }

    /// Whether the batch reached its target size.
    pub fn is_full(&self) -> bool {
        self.bytes >= self.target_bytes
    }

    /// Whether nothing was added since the last batch.
    pub fn is_empty(&self) -> bool {
        self.rows == 0
    }

    /// Bytes of JSON text in the current batch.
    pub fn bytes(&self) -> usize {
        self.bytes
    }

    /// Finishes the current batch (possibly empty) and starts a new one.
    pub fn finish(&mut self) -> RecordBatch {
        let array: LargeStringArray = self.builder.finish();
        self.rows = 0;
        self.bytes = 0;
        // the schema matches the single non-null column by construction
        RecordBatch::try_new(json_schema(), vec![Arc::new(array)])
            .unwrap_or_else(|_| RecordBatch::new_empty(json_schema()))
    }
}

/// The column of JSON texts of a document batch.
pub fn json_text_array(batch: &RecordBatch) -> Result<&LargeStringArray> {
    let column = batch
        .column_by_name(JSON_COLUMN)
        .or_else(|| (batch.num_columns() == 1).then(|| batch.column(0)))
        .ok_or_else(|| {
            Error::data(format!(
                "a JSON document batch must have one column `{JSON_COLUMN}`, got {:?}",
                batch
                    .schema()
                    .fields()
                    .iter()
                    .map(|f| f.name())
                    .collect::<Vec<_>>()
            ))
        })?;
    column
        .as_any()
        .downcast_ref::<LargeStringArray>()
        .ok_or_else(|| {
            Error::data(format!(
                "column `{JSON_COLUMN}` must be LargeUtf8, got {}",
                column.data_type()
            ))
        })
}

/// Iterates over the JSON texts of a document batch.
pub fn json_texts(batch: &RecordBatch) -> Result<impl Iterator<Item = &str>> {
    Ok(json_text_array(batch)?.iter().flatten())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builds_and_reads_batches() {
        let mut b = JsonBatchBuilder::new(10);
        b.push_value(&serde_json::json!({"a": 1})).expect("push");
        assert!(!b.is_full());
        b.push_raw("{\"a\":2}\n{\"a\":3}");
        assert!(b.is_full());
        let batch = b.finish();
        assert!(b.is_empty());
        let texts: Vec<&str> = json_texts(&batch).expect("texts").collect();
        assert_eq!(texts, vec!["{\"a\":1}", "{\"a\":2}\n{\"a\":3}"]);
    }

    #[test]
    fn a_text_batch_holds_the_string_as_it_is() {
        let text = String::from("{\"a\":\"\u{e9}\"}\n{\"a\":2}\n");
        let owned = text.clone();
        let ptr = owned.as_ptr();
        let batch = json_text_batch(owned);
        batch
            .column(0)
            .to_data()
            .validate_full()
            .expect("valid array");
        let array = batch
            .column(0)
            .as_any()
            .downcast_ref::<LargeStringArray>()
            .expect("large utf8");
        assert_eq!(array.value_data().as_ptr(), ptr, "not copied");
        let texts: Vec<&str> = json_texts(&batch).expect("texts").collect();
        assert_eq!(texts, vec![text.as_str()]);
    }
}
