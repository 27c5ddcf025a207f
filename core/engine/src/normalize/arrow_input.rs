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
        if options.add_dlt_id || has(cols::DLT_ID) || scd2 {
            if self
                .schema
                .table(table)
                .and_then(|t| t.columns.get(cols::DLT_ID))
                .is_none()
            {
                new_columns.push(
                    self.schema
                        .infer_column(cols::DLT_ID, DataType::Text, false),
                );
            }
            fields.push(Field::new(cols::DLT_ID, ArrowType::Utf8, false));
            arrays.push(Arc::new(hash::random_row_id_array(rows)));
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
