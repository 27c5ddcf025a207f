//! Typed Arrow input (SQL tables, parquet files): passed through with names normalized, hints
//! applied, system columns added (`_dlt_load_id`, `_dlt_id`) and types mapped, without
//! per-value work on the data columns.
//!
//! Documented difference from dlt: dlt adds `_dlt_load_id`/`_dlt_id` to Arrow tables only when
//! `normalize.parquet_normalizer.add_dlt_load_id/add_dlt_id` are set; sluice adds both by
//! default so every table of a dataset can be traced to its load (set
//! [`ArrowOptions::add_dlt_id`] / [`ArrowOptions::add_dlt_load_id`] to false for dlt's layout).

use std::sync::Arc;

use arrow_array::{ArrayRef, RecordBatch, StringArray};
use arrow_schema::{DataType as ArrowType, Field, Schema as ArrowSchema, TimeUnit};
use sluice_sdk::schema::{Column, DataType};

use super::{BatchSink, Normalizer};
use crate::schema::cols;
use crate::{hash, Error, Result};

/// Options of the Arrow pass-through: dlt's `normalize.parquet_normalizer` settings, off by
/// default as in dlt.
#[derive(Debug, Clone, Copy, Default)]
pub struct ArrowOptions {
    /// Add a `_dlt_load_id` column.
    pub add_dlt_load_id: bool,
    /// Add a random `_dlt_id` column.
    pub add_dlt_id: bool,
}

/// The dlt column an Arrow field maps to (dlt's arrow type mapping).
pub fn column_of_field(name: &str, field: &Field) -> Column {
    let mut c = Column {
        name: name.to_string(),
        nullable: Some(field.is_nullable()),
        ..Default::default()
    };
    let t = match field.data_type() {
        ArrowType::Dictionary(_, v) => v.as_ref(),
        other => other,
    };
    c.data_type = Some(match t {
        ArrowType::Boolean => DataType::Bool,
        ArrowType::Int8 | ArrowType::UInt8 => {
            c.precision = Some(8);
            DataType::Bigint
        }
        ArrowType::Int16 | ArrowType::UInt16 => {
            c.precision = Some(16);
            DataType::Bigint
        }
        ArrowType::Int32 | ArrowType::UInt32 => {
            c.precision = Some(32);
            DataType::Bigint
        }
        ArrowType::Int64 | ArrowType::UInt64 => DataType::Bigint,
        ArrowType::Float16 | ArrowType::Float32 | ArrowType::Float64 => DataType::Double,
        ArrowType::Utf8 | ArrowType::LargeUtf8 | ArrowType::Utf8View => DataType::Text,
        ArrowType::Binary
        | ArrowType::LargeBinary
        | ArrowType::BinaryView
        | ArrowType::FixedSizeBinary(_) => DataType::Binary,
        ArrowType::Date32 | ArrowType::Date64 => DataType::Date,
        ArrowType::Time32(_) | ArrowType::Time64(_) => DataType::Time,
        ArrowType::Timestamp(unit, tz) => {
            c.timezone = Some(tz.is_some());
            c.precision = Some(match unit {
                TimeUnit::Second => 0,
                TimeUnit::Millisecond => 3,
                TimeUnit::Microsecond => 6,
                TimeUnit::Nanosecond => 9,
            });
            DataType::Timestamp
        }
        ArrowType::Decimal128(p, s) | ArrowType::Decimal256(p, s) => {
            c.precision = Some(u32::from(*p));
            c.scale = Some((*s).max(0) as u32);
            DataType::Decimal
        }
        ArrowType::Null => DataType::Text,
        _ => DataType::Json,
    });
    if field
        .metadata()
        .get(super::buffer::DLT_TYPE_METADATA)
        .map(String::as_str)
        == Some("json")
    {
        c.data_type = Some(DataType::Json);
    }
    c
}

impl<S: BatchSink> Normalizer<S> {
    /// Passes a typed Arrow batch of root table `table` through: normalized names, new columns
    /// added to the schema (subject to the contract), system columns appended.
    pub fn normalize_arrow(
        &mut self,
        table: &str,
        batch: &RecordBatch,
        options: ArrowOptions,
    ) -> Result<()> {
        let tid = self.table_id(table, vec![Box::from(table)], None);
        if self.filtered_tables.contains(table) || batch.num_rows() == 0 {
            return Ok(());
        }
        let naming = self.schema.naming().clone();
        let mut fields = Vec::with_capacity(batch.num_columns() + 2);
        let mut arrays: Vec<ArrayRef> = Vec::with_capacity(batch.num_columns() + 2);
        let mut new_columns = Vec::new();
        for (field, array) in batch.schema().fields().iter().zip(batch.columns()) {
            let name = naming.normalize_path(field.name());
            let incoming = column_of_field(&name, field);
            let existing = self
                .schema
                .table(table)
                .and_then(|t| t.columns.get(&name))
                .cloned();
            let (array, column) = match existing {
                Some(c) if c.is_complete() => {
                    let want = super::buffer::arrow_type_of(&c);
                    let keep = compatible(array.data_type(), &want);
                    let array = if keep {
                        array.clone()
                    } else {
                        arrow_cast::cast(array, &want).map_err(|e| {
                            Error::schema(format!(
                                "column `{name}` of table `{table}` is {} but the source sends {}: {e}",
                                c.data_type.map_or("?", |t| t.as_str()),
                                array.data_type()
                            ))
                        })?
                    };
                    (array, c)
                }
                Some(incomplete) => {
                    let mut merged = incoming.clone();
                    super::merge_column(&mut merged, &incomplete);
                    new_columns.push(merged.clone());
                    (array.clone(), merged)
                }
                None => {
                    new_columns.push(incoming.clone());
                    (array.clone(), incoming)
                }
            };
            // parquet has no second-unit timestamps (arrow-rs writes them as plain INT64, which
            // destinations then cannot cast): carry them as milliseconds, same instant
            let array = match array.data_type() {
                ArrowType::Timestamp(TimeUnit::Second, tz) => arrow_cast::cast(
                    &array,
                    &ArrowType::Timestamp(TimeUnit::Millisecond, tz.clone()),
                )?,
                _ => array,
            };
            fields.push(Field::new(&column.name, array.data_type().clone(), true));
            arrays.push(array);
        }
        let rows = batch.num_rows();
        let has = |col: &str| {
            self.schema
                .table(table)
                .and_then(|t| t.columns.get(col))
                .is_some_and(Column::is_complete)
        };
        let scd2 = self.schema.table(table).and_then(|t| t.merge_strategy())
            == Some(sluice_sdk::schema::MergeStrategy::Scd2);
        if options.add_dlt_load_id || has(cols::LOAD_ID) {
            if self
                .schema
                .table(table)
                .and_then(|t| t.columns.get(cols::LOAD_ID))
                .is_none()
            {
                new_columns.push(
                    self.schema
                        .infer_column(cols::LOAD_ID, DataType::Text, false),
                );
            }
            fields.push(Field::new(cols::LOAD_ID, ArrowType::Utf8, false));
            arrays.push(Arc::new(StringArray::from(vec![&*self.load_id; rows])));
        }
        // a `_dlt_id` the source sends is kept, as the JSON path keeps an item's own `_dlt_id`
        let sent_id = fields.iter().any(|f| f.name() == cols::DLT_ID);
        if (options.add_dlt_id || has(cols::DLT_ID) || scd2) && !sent_id {
            // scd2 whose row version column is `_dlt_id` (the default): the row hash, so that
            // an unchanged row keeps its version (see `row_hashes`)
            let row_hash = scd2
                && self
                    .schema
                    .table(table)
                    .and_then(|t| t.columns.values().find(|c| c.hint("x-row-version")))
                    .is_none_or(|c| c.name == cols::DLT_ID);
            let inferred = self
                .schema
                .infer_column(cols::DLT_ID, DataType::Text, false);
            match self
                .schema
                .table(table)
                .and_then(|t| t.columns.get(cols::DLT_ID))
            {
                None => new_columns.push(inferred),
                // the hints of scd2 (`x-row-version`, not unique) leave `_dlt_id` incomplete:
                // completed here as the JSON path completes it
                Some(c) if !c.is_complete() => {
                    let mut merged = inferred;
                    super::merge_column(&mut merged, c);
                    new_columns.push(merged);
                }
                Some(_) => {}
            }
            fields.push(Field::new(cols::DLT_ID, ArrowType::Utf8, false));
            if row_hash {
                arrays.push(Arc::new(row_hashes(batch)?));
            } else {
                arrays.push(Arc::new(hash::random_row_id_array(rows)));
            }
        }
        if !new_columns.is_empty() {
            let mut values: Vec<(super::Target, crate::types::Coerced<'static>)> = Vec::new();
            let Some(kept) = self.apply_contract(tid, new_columns, &mut values)? else {
                return Ok(());
            };
            let kept_names: Vec<String> = kept.iter().map(|c| c.name.clone()).collect();
            self.add_columns(tid, kept)?;
            // columns a contract discarded are dropped from the batch
            let dropped: Vec<usize> = fields
                .iter()
                .enumerate()
                .filter(|(_, f)| {
                    self.tables[tid].filters.contains_key(f.name())
                        && !kept_names.contains(f.name())
                })
                .map(|(i, _)| i)
                .collect();
            for i in dropped.into_iter().rev() {
                fields.remove(i);
                arrays.remove(i);
            }
        }
        let out = RecordBatch::try_new(Arc::new(ArrowSchema::new(fields)), arrays)?;
        self.tables[tid].rows_total += rows as u64;
        self.sink.write(table, out)
    }
}

/// The scd2 row hash (`_dlt_id`) of every row of a typed Arrow batch.
///
/// dlt 1.31 has none: its Arrow normalizer adds `_dlt_id` only with
/// `parquet_normalizer.add_dlt_id`, and then random (`normalize/items_normalizers/arrow.py`,
/// a TODO there), so an scd2 resource yielding Arrow fails in normalize (`_dlt_id` receives no
/// data) or, with `add_dlt_id`, makes a new version of every row on every load. sluice hashes
/// the row as dlt hashes a JSON row (spec b.3): `b64(shake128(json, 10))` over the compact
/// JSON object of the batch's own (un-normalized) field names, without those starting with
/// `_dlt`, keys sorted. Values are written as the JSON a document source would send for them:
/// null, booleans, integers, floats (orjson's form), strings, lists and structs (keys sorted)
/// as JSON, so such a row gets the same `_dlt_id` as the same row sent as JSON. Other types
/// (timestamps, dates, times, decimals, binary, maps, ...) are written as JSON strings of
/// their Arrow display form (zoned timestamps shown in UTC, `2024-01-15T10:00:00+00:00`;
/// `12.50`; hex bytes): deterministic, but not always the text dlt's JSON path hashes for a
/// Python datetime or Decimal.
pub fn row_hashes(batch: &RecordBatch) -> Result<StringArray> {
    let schema = batch.schema();
    // dictionaries are written as their values: decoded once here
    let mut prepared: Vec<(&str, ArrayRef)> = Vec::new();
    for (field, array) in schema.fields().iter().zip(batch.columns()) {
        if field.name().starts_with(cols::DLT_PREFIX) {
            continue;
        }
        let array = match array.data_type() {
            ArrowType::Dictionary(_, v) => arrow_cast::cast(array, v)?,
            _ => array.clone(),
        };
        // named time zones (`UTC`, `Europe/Berlin`) cannot be displayed without chrono-tz; the
        // values are UTC instants whatever the zone, shown with offset +00:00
        let array = match utc_offset_type(array.data_type()) {
            Some(t) => arrow_cast::cast(&array, &t)?,
            None => array,
        };
        prepared.push((field.name().as_str(), array));
    }
    let mut columns: Vec<(&str, ValueWriter<'_>)> = Vec::with_capacity(prepared.len());
    for (name, array) in &prepared {
        columns.push((name, ValueWriter::new(array.as_ref())?));
    }
    columns.sort_by(|a, b| a.0.cmp(b.0));
    let mut keys = Vec::with_capacity(columns.len());
    for (name, _) in &columns {
        let mut k = String::new();
        crate::json::write_str(name, &mut k);
        k.push(':');
        keys.push(k);
    }
    let mut text = String::new();
    let mut out = Vec::with_capacity(batch.num_rows());
    for row in 0..batch.num_rows() {
        text.clear();
        text.push('{');
        for (i, ((_, w), key)) in columns.iter().zip(&keys).enumerate() {
            if i > 0 {
                text.push(',');
            }
            text.push_str(key);
            w.write(row, &mut text)?;
        }
        text.push('}');
        out.push(hash::digest_row_json(&text));
    }
    Ok(StringArray::from(out))
}

/// `t` with every zoned timestamp (at any depth) zoned `+00:00` instead; `None`: unchanged.
fn utc_offset_type(t: &ArrowType) -> Option<ArrowType> {
    use ArrowType::*;
    let field = |f: &arrow_schema::FieldRef| {
        utc_offset_type(f.data_type()).map(|t| Arc::new(f.as_ref().clone().with_data_type(t)))
    };
    match t {
        Timestamp(unit, Some(tz)) if tz.as_ref() != "+00:00" => {
            Some(Timestamp(*unit, Some("+00:00".into())))
        }
        List(f) => field(f).map(List),
        LargeList(f) => field(f).map(LargeList),
        FixedSizeList(f, n) => field(f).map(|f| FixedSizeList(f, *n)),
        Map(f, sorted) => field(f).map(|f| Map(f, *sorted)),
        Struct(fields) => {
            let changed: Vec<_> = fields.iter().map(field).collect();
            changed.iter().any(Option::is_some).then(|| {
                Struct(
                    fields
                        .iter()
                        .zip(changed)
                        .map(|(f, c)| c.unwrap_or_else(|| f.clone()))
                        .collect(),
                )
            })
        }
        _ => None,
    }
}

/// Writes the values of one Arrow array as JSON (see [`row_hashes`]).
struct ValueWriter<'a> {
    array: &'a dyn arrow_array::Array,
    /// Display form for the types written as strings.
    display: Option<arrow_cast::display::ArrayFormatter<'a>>,
}

impl<'a> ValueWriter<'a> {
    fn new(array: &'a dyn arrow_array::Array) -> Result<Self> {
        let display = if json_native(array.data_type()) {
            None
        } else {
            Some(arrow_cast::display::ArrayFormatter::try_new(
                array,
                &arrow_cast::display::FormatOptions::default(),
            )?)
        };
        Ok(Self { array, display })
    }

    fn write(&self, row: usize, out: &mut String) -> Result<()> {
        match &self.display {
            Some(_) if self.array.is_null(row) => out.push_str("null"),
            Some(f) => crate::json::write_str(&f.value(row).to_string(), out),
            None => write_json_value(self.array, row, out)?,
        }
        Ok(())
    }
}

/// Whether values of `t` are written as JSON of their own kind (not as display strings).
fn json_native(t: &ArrowType) -> bool {
    use ArrowType::*;
    match t {
        Null | Boolean | Int8 | Int16 | Int32 | Int64 | UInt8 | UInt16 | UInt32 | UInt64
        | Float16 | Float32 | Float64 | Utf8 | LargeUtf8 | Utf8View => true,
        List(f) | LargeList(f) | FixedSizeList(f, _) => json_native(f.data_type()),
        Struct(fields) => fields.iter().all(|f| json_native(f.data_type())),
        Dictionary(_, v) => json_native(v),
        _ => false,
    }
}

/// Writes value `row` of `array` (of a [`json_native`] type) as compact JSON, struct keys
/// sorted.
fn write_json_value(array: &dyn arrow_array::Array, row: usize, out: &mut String) -> Result<()> {
    use arrow_array::cast::AsArray;
    use arrow_array::types::*;
    if array.is_null(row) {
        out.push_str("null");
        return Ok(());
    }
    macro_rules! int {
        ($t:ty) => {
            out.push_str(itoa::Buffer::new().format(array.as_primitive::<$t>().value(row)))
        };
    }
    match array.data_type() {
        ArrowType::Null => out.push_str("null"),
        ArrowType::Boolean => out.push_str(if array.as_boolean().value(row) {
            "true"
        } else {
            "false"
        }),
        ArrowType::Int8 => int!(Int8Type),
        ArrowType::Int16 => int!(Int16Type),
        ArrowType::Int32 => int!(Int32Type),
        ArrowType::Int64 => int!(Int64Type),
        ArrowType::UInt8 => int!(UInt8Type),
        ArrowType::UInt16 => int!(UInt16Type),
        ArrowType::UInt32 => int!(UInt32Type),
        ArrowType::UInt64 => int!(UInt64Type),
        ArrowType::Float16 => crate::json::write_f64(
            f64::from(array.as_primitive::<Float16Type>().value(row)),
            out,
        ),
        ArrowType::Float32 => crate::json::write_f64(
            f64::from(array.as_primitive::<Float32Type>().value(row)),
            out,
        ),
        ArrowType::Float64 => {
            crate::json::write_f64(array.as_primitive::<Float64Type>().value(row), out)
        }
        ArrowType::Utf8 => crate::json::write_str(array.as_string::<i32>().value(row), out),
        ArrowType::LargeUtf8 => crate::json::write_str(array.as_string::<i64>().value(row), out),
        ArrowType::Utf8View => crate::json::write_str(array.as_string_view().value(row), out),
        ArrowType::List(_) => write_json_list(&array.as_list::<i32>().value(row), out)?,
        ArrowType::LargeList(_) => write_json_list(&array.as_list::<i64>().value(row), out)?,
        ArrowType::FixedSizeList(..) => {
            write_json_list(&array.as_fixed_size_list().value(row), out)?
        }
        ArrowType::Struct(_) => {
            let s = array.as_struct();
            let mut fields: Vec<(&str, &ArrayRef)> = s
                .fields()
                .iter()
                .map(|f| f.name().as_str())
                .zip(s.columns())
                .collect();
            fields.sort_by(|a, b| a.0.cmp(b.0));
            out.push('{');
            for (i, (name, child)) in fields.into_iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                crate::json::write_str(name, out);
                out.push(':');
                write_json_value(child.as_ref(), row, out)?;
            }
            out.push('}');
        }
        ArrowType::Dictionary(_, v) => {
            // (a dictionary nested in a list or struct; top-level ones are decoded up front)
            let one = arrow_cast::cast(&array.slice(row, 1), v)?;
            write_json_value(one.as_ref(), 0, out)?;
        }
        other => {
            return Err(Error::schema(format!(
                "no JSON form for Arrow type {other} in the scd2 row hash"
            )))
        }
    }
    Ok(())
}

fn write_json_list(values: &ArrayRef, out: &mut String) -> Result<()> {
    out.push('[');
    for i in 0..values.len() {
        if i > 0 {
            out.push(',');
        }
        write_json_value(values.as_ref(), i, out)?;
    }
    out.push(']');
    Ok(())
}

fn compatible(have: &ArrowType, want: &ArrowType) -> bool {
    use ArrowType::*;
    match (have, want) {
        (a, b) if a == b => true,
        (Int8 | Int16 | Int32 | Int64 | UInt8 | UInt16 | UInt32 | UInt64, Int64) => true,
        (Float16 | Float32, Float64) => true,
        (Utf8 | LargeUtf8 | Utf8View, Utf8) => true,
        (Binary | LargeBinary | BinaryView | FixedSizeBinary(_), Binary) => true,
        (Timestamp(..), Timestamp(..)) => true,
        (Date32 | Date64, Date32) => true,
        (Time32(_) | Time64(_), Time64(_)) => true,
        (Decimal128(..) | Decimal256(..), Decimal128(..)) => true,
        (Dictionary(_, v), w) => compatible(v, w),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow_array::builder::{Int64Builder, ListBuilder};
    use arrow_array::types::Int32Type;
    use arrow_array::{BooleanArray, DictionaryArray, Float64Array, Int64Array, NullArray};

    fn hashes(columns: Vec<(&str, ArrayRef)>) -> Vec<String> {
        let batch = RecordBatch::try_from_iter(columns).expect("batch");
        row_hashes(&batch)
            .expect("hash")
            .iter()
            .map(|v| v.expect("id").to_string())
            .collect()
    }

    /// The rows of `tests/golden/hash_cases.json` (`row_hash`, recorded from dlt's JSON path)
    /// sent as typed Arrow get the same hash.
    #[test]
    fn arrow_rows_hash_as_the_same_json_rows() {
        let id = |v: i64| -> ArrayRef { Arc::new(Int64Array::from(vec![v])) };
        let text = |v: &str| -> ArrayRef { Arc::new(StringArray::from(vec![v])) };
        assert_eq!(hashes(vec![("id", id(1))]), ["z5jIxXIbUnmbKw"]);
        assert_eq!(
            hashes(vec![("v", text("a")), ("id", id(1))]),
            ["lknCZL/MuP9QCg"]
        );
        assert_eq!(
            hashes(vec![
                ("id", id(2)),
                ("v", text("b")),
                ("_dlt_load_id", text("x"))
            ]),
            ["YFuW8j64Vw2OkQ"]
        );
        let mut sub = ListBuilder::new(Int64Builder::new());
        sub.values().append_value(1);
        sub.values().append_value(2);
        sub.append(true);
        assert_eq!(
            hashes(vec![
                ("id", id(1)),
                ("v", text("a")),
                ("sub", Arc::new(sub.finish()))
            ]),
            ["dGgcL8SCRgJiLQ"]
        );
        assert_eq!(
            hashes(vec![
                ("name", text("\u{fc}")),
                ("f", Arc::new(Float64Array::from(vec![1.5]))),
                ("n", Arc::new(NullArray::new(1))),
                ("b", Arc::new(BooleanArray::from(vec![true]))),
            ]),
            ["ObQkTK0ZBVnshA"]
        );
        // a dictionary-encoded column hashes as its values
        let dict: DictionaryArray<Int32Type> = vec!["a"].into_iter().collect();
        assert_eq!(
            hashes(vec![("v", Arc::new(dict)), ("id", id(1))]),
            ["lknCZL/MuP9QCg"]
        );
    }

    /// Equal rows hash equal, a changed value or a null changes the hash; types written as
    /// display strings are deterministic.
    #[test]
    fn arrow_row_hashes_follow_the_values() {
        let ts: ArrayRef = Arc::new(
            arrow_array::TimestampMicrosecondArray::from(vec![
                Some(1_700_000_000_000_000),
                Some(1_700_000_000_000_000),
                Some(1_700_000_000_000_001),
                None,
            ])
            .with_timezone("UTC"),
        );
        let id: ArrayRef = Arc::new(Int64Array::from(vec![1, 1, 1, 1]));
        let h = hashes(vec![("id", id.clone()), ("at", ts.clone())]);
        assert_eq!(h[0], h[1]);
        assert_ne!(h[1], h[2]);
        assert_ne!(h[2], h[3]);
        assert_eq!(h, hashes(vec![("at", ts.clone()), ("id", id.clone())]));
        // a named zone other than UTC: the same instants, the same hashes
        let berlin: ArrayRef = Arc::new(
            ts.as_any()
                .downcast_ref::<arrow_array::TimestampMicrosecondArray>()
                .expect("ts")
                .clone()
                .with_timezone("Europe/Berlin"),
        );
        assert_eq!(h, hashes(vec![("id", id), ("at", berlin)]));
    }
}
