//! Column buffers: the rows of one table being built into Arrow arrays.
//!
//! Rows are sparse (a document may lack any column), so every column tracks its own length and
//! is padded with nulls up to the table's row count before a value is appended and when the
//! batch is finished.

use std::sync::Arc;

use arrow_array::builder::{
    BinaryBuilder, BooleanBuilder, Date32Builder, Decimal128Builder, Float64Builder, Int64Builder,
    StringBuilder, Time64MicrosecondBuilder, TimestampMicrosecondBuilder,
};
use arrow_array::{ArrayRef, RecordBatch};
use arrow_schema::{DataType as ArrowType, Field, Schema as ArrowSchema, SchemaRef, TimeUnit};
use sluice_sdk::schema::{Column, DataType};

use crate::types::Coerced;
use crate::{Error, Result};

/// Field metadata key carrying the dlt type where Arrow's type is ambiguous (json).
pub const DLT_TYPE_METADATA: &str = "x-dlt-type";

/// The Arrow type sluice writes for a dlt column.
pub fn arrow_type_of(column: &Column) -> ArrowType {
    match column.data_type.unwrap_or(DataType::Text) {
        DataType::Text | DataType::Json => ArrowType::Utf8,
        DataType::Bigint => ArrowType::Int64,
        DataType::Double => ArrowType::Float64,
        DataType::Bool => ArrowType::Boolean,
        DataType::Timestamp => {
            let tz = column.timezone.unwrap_or(true).then(|| Arc::from("UTC"));
            ArrowType::Timestamp(TimeUnit::Microsecond, tz)
        }
        DataType::Date => ArrowType::Date32,
        DataType::Time => ArrowType::Time64(TimeUnit::Microsecond),
        DataType::Decimal => {
            let (p, s) = decimal_precision(column);
            ArrowType::Decimal128(p, s)
        }
        DataType::Wei => ArrowType::Decimal128(38, 0),
        DataType::Binary => ArrowType::Binary,
    }
}

/// Precision and scale of a decimal column: each missing one from dlt's default (38, 9), as
/// dlt's type mappers fill them (`precision: 10` alone is (10, 9)); a scale above the
/// precision is lowered to it.
pub fn decimal_precision(column: &Column) -> (u8, i8) {
    let p = column.precision.unwrap_or(38).clamp(1, 38) as u8;
    let s = column.scale.unwrap_or(9);
    (p, (s as i8).min(p as i8))
}

/// The Arrow field of a dlt column.
pub fn arrow_field_of(column: &Column) -> Field {
    let mut f = Field::new(&column.name, arrow_type_of(column), column.is_nullable());
    if column.data_type == Some(DataType::Json) {
        let mut md = std::collections::HashMap::new();
        md.insert(DLT_TYPE_METADATA.to_string(), "json".to_string());
        f = f.with_metadata(md);
    }
    f
}

enum Builder {
    Utf8(StringBuilder),
    Int64(Int64Builder),
    Float64(Float64Builder),
    Bool(BooleanBuilder),
    Timestamp(TimestampMicrosecondBuilder, Option<Arc<str>>),
    Date(Date32Builder),
    Time(Time64MicrosecondBuilder),
    Decimal(Decimal128Builder, u8, i8),
    Binary(BinaryBuilder),
}

/// One column being built.
pub struct ColumnBuffer {
    field: Field,
    data_type: DataType,
    builder: Builder,
    len: usize,
}

impl ColumnBuffer {
    /// A buffer for `column`.
    pub fn new(column: &Column) -> Self {
        let field = arrow_field_of(column);
        let builder = match field.data_type() {
            ArrowType::Utf8 => Builder::Utf8(StringBuilder::new()),
            ArrowType::Int64 => Builder::Int64(Int64Builder::new()),
            ArrowType::Float64 => Builder::Float64(Float64Builder::new()),
            ArrowType::Boolean => Builder::Bool(BooleanBuilder::new()),
            ArrowType::Timestamp(_, tz) => {
                Builder::Timestamp(TimestampMicrosecondBuilder::new(), tz.clone())
            }
            ArrowType::Date32 => Builder::Date(Date32Builder::new()),
            ArrowType::Time64(_) => Builder::Time(Time64MicrosecondBuilder::new()),
            ArrowType::Decimal128(p, s) => Builder::Decimal(Decimal128Builder::new(), *p, *s),
            _ => Builder::Binary(BinaryBuilder::new()),
        };
        Self {
            data_type: column.data_type.unwrap_or(DataType::Text),
            field,
            builder,
            len: 0,
        }
    }

    /// The dlt type.
    pub fn data_type(&self) -> DataType {
        self.data_type
    }

    /// The Arrow field.
    pub fn field(&self) -> &Field {
        &self.field
    }

    fn pad_to(&mut self, rows: usize) {
        if self.len >= rows {
            return;
        }
        let n = rows - self.len;
        match &mut self.builder {
            Builder::Utf8(b) => b.append_nulls(n),
            Builder::Int64(b) => b.append_nulls(n),
            Builder::Float64(b) => b.append_nulls(n),
            Builder::Bool(b) => b.append_nulls(n),
            Builder::Timestamp(b, _) => b.append_nulls(n),
            Builder::Date(b) => b.append_nulls(n),
            Builder::Time(b) => b.append_nulls(n),
            Builder::Decimal(b, ..) => b.append_nulls(n),
            Builder::Binary(b) => b.append_nulls(n),
        }
        self.len = rows;
    }

    /// Appends `value` as row `row` (padding earlier rows with nulls).
    pub fn append(&mut self, row: usize, value: &Coerced<'_>) -> Result<()> {
        self.pad_to(row);
        match (&mut self.builder, value) {
            (Builder::Utf8(b), Coerced::Text(s) | Coerced::Json(s)) => b.append_value(s),
            (Builder::Int64(b), Coerced::Bigint(v)) => b.append_value(*v),
            (Builder::Float64(b), Coerced::Double(v)) => b.append_value(*v),
            (Builder::Bool(b), Coerced::Bool(v)) => b.append_value(*v),
            (Builder::Timestamp(b, _), Coerced::Timestamp(v)) => b.append_value(*v),
            (Builder::Date(b), Coerced::Date(v)) => b.append_value(*v),
            (Builder::Time(b), Coerced::Time(v)) => b.append_value(*v),
            (Builder::Decimal(b, p, s), Coerced::Decimal(t) | Coerced::Wei(t)) => {
                let v = parse_decimal(t, *p, *s).ok_or_else(|| {
                    Error::data(format!(
                        "value `{t}` does not fit column `{}` of type decimal({p},{s})",
                        self.field.name()
                    ))
                })?;
                b.append_value(v)
            }
            (Builder::Binary(b), Coerced::Binary(v)) => b.append_value(v),
            (_, other) => {
                return Err(Error::internal(format!(
                    "a {} value reached column `{}` of type {}",
                    other.data_type(),
                    self.field.name(),
                    self.data_type
                )))
            }
        }
        self.len += 1;
        Ok(())
    }

    /// Finishes the column at `rows` rows.
    pub fn finish(&mut self, rows: usize) -> ArrayRef {
        self.pad_to(rows);
        self.len = 0;
        // the next batch is likely as large: start its builder at this one's size instead of
        // growing (and copying) it from empty
        let array = self.finish_builder();
        match &mut self.builder {
            Builder::Utf8(b) => {
                let bytes = array
                    .as_any()
                    .downcast_ref::<arrow_array::StringArray>()
                    .map_or(0, |a| a.values().len());
                *b = StringBuilder::with_capacity(rows, bytes)
            }
            Builder::Int64(b) => *b = Int64Builder::with_capacity(rows),
            Builder::Float64(b) => *b = Float64Builder::with_capacity(rows),
            _ => {}
        }
        array
    }

    fn finish_builder(&mut self) -> ArrayRef {
        match &mut self.builder {
            Builder::Utf8(b) => Arc::new(b.finish()),
            Builder::Int64(b) => Arc::new(b.finish()),
            Builder::Float64(b) => Arc::new(b.finish()),
            Builder::Bool(b) => Arc::new(b.finish()),
            Builder::Timestamp(b, tz) => Arc::new(b.finish().with_timezone_opt(tz.clone())),
            Builder::Date(b) => Arc::new(b.finish()),
            Builder::Time(b) => Arc::new(b.finish()),
            Builder::Decimal(b, p, s) => Arc::new(
                b.finish()
                    .with_precision_and_scale(*p, *s)
                    .unwrap_or_else(|_| arrow_array::Decimal128Array::from(Vec::<i128>::new())),
            ),
            Builder::Binary(b) => Arc::new(b.finish()),
        }
    }

    /// Approximate bytes buffered.
    pub fn bytes(&self) -> usize {
        match &self.builder {
            Builder::Utf8(b) => b.values_slice().len() + self.len * 4,
            Builder::Binary(b) => b.values_slice().len() + self.len * 4,
            _ => self.len * 8,
        }
    }
}

/// Parses decimal text into an i128 at `scale`, rounding half away from zero, checking that it
/// fits `precision` digits.
pub fn parse_decimal(text: &str, precision: u8, scale: i8) -> Option<i128> {
    let t = text.trim();
    let (neg, t) = match t.strip_prefix('-') {
        Some(r) => (true, r),
        None => (false, t.strip_prefix('+').unwrap_or(t)),
    };
    // split exponent
    let (mantissa, exp) = match t.find(['e', 'E']) {
        Some(i) => (&t[..i], t[i + 1..].parse::<i32>().ok()?),
        None => (t, 0),
    };
    let (int_part, frac_part) = match mantissa.find('.') {
        Some(i) => (&mantissa[..i], &mantissa[i + 1..]),
        None => (mantissa, ""),
    };
    if int_part.is_empty() && frac_part.is_empty() {
        return None;
    }
    let mut digits: Vec<u8> = Vec::with_capacity(int_part.len() + frac_part.len());
    for c in int_part.bytes().chain(frac_part.bytes()) {
        if !c.is_ascii_digit() {
            return None;
        }
        digits.push(c - b'0');
    }
    // value = digits * 10^(exp - frac_len); we want value * 10^scale
    let shift = exp - frac_part.len() as i32 + i32::from(scale);
    let mut v: i128 = 0;
    let keep = if shift >= 0 {
        digits.len()
    } else {
        digits.len().saturating_sub((-shift) as usize)
    };
    for d in &digits[..keep] {
        v = v.checked_mul(10)?.checked_add(i128::from(*d))?;
    }
    if shift > 0 {
        for _ in 0..shift {
            v = v.checked_mul(10)?;
        }
    } else if shift < 0 {
        // round half away from zero on the first dropped digit
        let dropped = &digits[keep..];
        if dropped.first().is_some_and(|d| *d >= 5) {
            v = v.checked_add(1)?;
        }
    }
    let max = 10i128.checked_pow(u32::from(precision))?;
    if v >= max {
        return None;
    }
    Some(if neg { -v } else { v })
}

/// The rows of one table being built.
pub struct TableBuffer {
    /// Table name.
    pub name: String,
    /// Columns in schema order (complete columns only).
    pub columns: Vec<ColumnBuffer>,
    /// Rows in the current batch.
    pub rows: usize,
}

impl TableBuffer {
    /// An empty buffer for table `name`.
    pub fn new(name: &str) -> Self {
        Self {
            name: name.to_string(),
            columns: Vec::new(),
            rows: 0,
        }
    }

    /// Adds a column; returns its index.
    pub fn add_column(&mut self, column: &Column) -> usize {
        self.columns.push(ColumnBuffer::new(column));
        self.columns.len() - 1
    }

    /// Approximate bytes buffered.
    pub fn bytes(&self) -> usize {
        self.columns.iter().map(ColumnBuffer::bytes).sum()
    }

    /// The Arrow schema of the current columns.
    pub fn arrow_schema(&self) -> SchemaRef {
        Arc::new(ArrowSchema::new(
            self.columns
                .iter()
                .map(|c| c.field.clone())
                .collect::<Vec<_>>(),
        ))
    }

    /// Finishes the current batch (None when empty).
    pub fn finish(&mut self) -> Result<Option<RecordBatch>> {
        if self.rows == 0 {
            return Ok(None);
        }
        let rows = self.rows;
        let schema = self.arrow_schema();
        let arrays: Vec<ArrayRef> = self.columns.iter_mut().map(|c| c.finish(rows)).collect();
        self.rows = 0;
        let options = arrow_array::RecordBatchOptions::new().with_row_count(Some(rows));
        Ok(Some(RecordBatch::try_new_with_options(
            schema, arrays, &options,
        )?))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decimals_scale_and_round() {
        assert_eq!(parse_decimal("12.3456", 10, 2), Some(1235));
        assert_eq!(parse_decimal("-12.345", 10, 2), Some(-1235));
        assert_eq!(parse_decimal("12.344", 10, 2), Some(1234));
        assert_eq!(parse_decimal("5", 38, 9), Some(5_000_000_000));
        assert_eq!(parse_decimal("1e3", 10, 2), Some(100_000));
        assert_eq!(parse_decimal("1.5E-1", 10, 2), Some(15));
        assert_eq!(parse_decimal("123456789", 5, 0), None);
        assert_eq!(parse_decimal("abc", 10, 2), None);
    }

    #[test]
    fn sparse_rows_are_padded_with_nulls() {
        let mut t = TableBuffer::new("t");
        let a = t.add_column(&Column::new("a", DataType::Bigint));
        let b = t.add_column(&Column::new("b", DataType::Text));
        t.columns[a].append(0, &Coerced::Bigint(1)).expect("a");
        t.rows = 1;
        t.columns[b]
            .append(1, &Coerced::Text("x".into()))
            .expect("b");
        t.rows = 2;
        let batch = t.finish().expect("finish").expect("batch");
        assert_eq!(batch.num_rows(), 2);
        assert_eq!(batch.column(0).null_count(), 1);
        assert_eq!(batch.column(1).null_count(), 1);
    }
}
