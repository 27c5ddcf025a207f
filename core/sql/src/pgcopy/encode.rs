//! Values and Arrow batches written as binary COPY tuples (`COPY ... FROM STDIN (FORMAT
//! binary)`): the server parses no text.
//!
//! The `put_*` functions append one field (its length, then its bytes). [`Encoder`] converts
//! each column of a batch once to the Arrow type of its target's [`PgType`] (integers to
//! `Int64`, timestamps of any unit to microseconds, nested values to JSON text, ...), then
//! writes the rows: per value only a match on the column's form, no allocation (but for
//! `Decimal256`) and no dynamic dispatch.

use std::sync::Arc;

use arrow_array::cast::AsArray;
use arrow_array::types::{
    Date32Type, Decimal128Type, Decimal256Type, Float64Type, Int64Type, Time64MicrosecondType,
    TimestampMicrosecondType,
};
use arrow_array::{
    Array, ArrayRef, BinaryArray, FixedSizeBinaryArray, LargeBinaryArray, RecordBatch, StringArray,
};
use arrow_buffer::{i256, BooleanBuffer, NullBuffer, ScalarBuffer};
use arrow_cast::{cast_with_options, CastOptions};
use arrow_schema::{DataType as ArrowType, Field, TimeUnit};
use sluice_sdk::{Error, Result};

use super::{date_to_pg, timestamp_to_pg, PgType, JSONB_VERSION};

/// Appends a NULL field.
#[inline]
pub fn put_null(out: &mut Vec<u8>) {
    out.extend_from_slice(&(-1i32).to_be_bytes());
}

/// Appends a `bool` field.
#[inline]
pub fn put_bool(out: &mut Vec<u8>, v: bool) {
    out.extend_from_slice(&1i32.to_be_bytes());
    out.push(u8::from(v));
}

/// Appends an `int2` field.
#[inline]
pub fn put_i16(out: &mut Vec<u8>, v: i16) {
    out.extend_from_slice(&2i32.to_be_bytes());
    out.extend_from_slice(&v.to_be_bytes());
}

/// Appends an `int4` field (and a `date` in days since 2000-01-01).
#[inline]
pub fn put_i32(out: &mut Vec<u8>, v: i32) {
    out.extend_from_slice(&4i32.to_be_bytes());
    out.extend_from_slice(&v.to_be_bytes());
}

/// Appends an `int8` field (and a `time` or `timestamp` in microseconds).
#[inline]
pub fn put_i64(out: &mut Vec<u8>, v: i64) {
    out.extend_from_slice(&8i32.to_be_bytes());
    out.extend_from_slice(&v.to_be_bytes());
}

/// Appends a `float4` field.
#[inline]
pub fn put_f32(out: &mut Vec<u8>, v: f32) {
    out.extend_from_slice(&4i32.to_be_bytes());
    out.extend_from_slice(&v.to_be_bytes());
}

/// Appends a `float8` field.
#[inline]
pub fn put_f64(out: &mut Vec<u8>, v: f64) {
    out.extend_from_slice(&8i32.to_be_bytes());
    out.extend_from_slice(&v.to_be_bytes());
}

/// Appends a field of bytes as they are (`bytea`, `text`, `json`).
#[inline]
pub fn put_bytes(out: &mut Vec<u8>, v: &[u8]) {
    out.extend_from_slice(&(v.len() as i32).to_be_bytes());
    out.extend_from_slice(v);
}

/// Appends a `jsonb` field: the version byte, then the JSON text.
#[inline]
pub fn put_jsonb(out: &mut Vec<u8>, json: &[u8]) {
    out.extend_from_slice(&(json.len() as i32 + 1).to_be_bytes());
    out.push(JSONB_VERSION);
    out.extend_from_slice(json);
}

/// Appends a `uuid` field.
#[inline]
pub fn put_uuid(out: &mut Vec<u8>, v: &[u8; 16]) {
    out.extend_from_slice(&16i32.to_be_bytes());
    out.extend_from_slice(v);
}

/// Appends a `numeric` field from its base-10000 digits, most significant first, `weight`
/// being the power of 10000 of the first digit.
fn put_numeric_groups(out: &mut Vec<u8>, negative: bool, groups: &[i16], weight: i16, dscale: u16) {
    // leading and trailing zero groups carry no value
    let first = groups.iter().position(|g| *g != 0);
    let (groups, weight) = match first {
        None => (&groups[..0], 0),
        Some(i) => {
            let last = groups.iter().rposition(|g| *g != 0).unwrap_or(i);
            (&groups[i..=last], weight - i as i16)
        }
    };
    let len = 8 + 2 * groups.len();
    out.extend_from_slice(&(len as i32).to_be_bytes());
    out.extend_from_slice(&(groups.len() as i16).to_be_bytes());
    out.extend_from_slice(&weight.to_be_bytes());
    let sign: u16 = if negative && !groups.is_empty() {
        0x4000
    } else {
        0
    };
    out.extend_from_slice(&sign.to_be_bytes());
    out.extend_from_slice(&dscale.to_be_bytes());
    for g in groups {
        out.extend_from_slice(&g.to_be_bytes());
    }
}

/// Appends a `numeric` field of `unscaled * 10^-scale` (display scale `scale`, 0 when
/// negative).
pub fn put_numeric(out: &mut Vec<u8>, unscaled: i128, scale: i8) {
    if scale < 0 {
        let mut digits = [0u8; 40];
        return put_numeric_digits(out, i128_digits(unscaled, &mut digits), scale);
    }
    let s = scale as u32;
    let negative = unscaled < 0;
    let abs = unscaled.unsigned_abs();
    let pow = 10u128.pow(s);
    let (mut int, mut frac) = (abs / pow, abs % pow);
    // fraction groups from the least significant end: the last group is padded with zeros
    let frac_groups = s.div_ceil(4) as usize;
    let pad = (frac_groups as u32) * 4 - s;
    let mut fg = [0i16; 10];
    for (k, g) in fg[..frac_groups].iter_mut().rev().enumerate() {
        if k == 0 && pad > 0 {
            let keep = 10u128.pow(4 - pad);
            *g = ((frac % keep) * 10u128.pow(pad)) as i16;
            frac /= keep;
        } else {
            *g = (frac % 10_000) as i16;
            frac /= 10_000;
        }
    }
    let mut ig = [0i16; 10];
    let mut n = 0;
    while int > 0 {
        ig[n] = (int % 10_000) as i16;
        int /= 10_000;
        n += 1;
    }
    let mut groups = [0i16; 20];
    for i in 0..n {
        groups[i] = ig[n - 1 - i];
    }
    groups[n..n + frac_groups].copy_from_slice(&fg[..frac_groups]);
    put_numeric_groups(
        out,
        negative,
        &groups[..n + frac_groups],
        n as i16 - 1,
        s as u16,
    );
}

/// The decimal digits of `v` (with a leading `-`), written into `buf`.
fn i128_digits(v: i128, buf: &mut [u8; 40]) -> &str {
    let mut abs = v.unsigned_abs();
    let mut i = buf.len();
    loop {
        i -= 1;
        buf[i] = b'0' + (abs % 10) as u8;
        abs /= 10;
        if abs == 0 {
            break;
        }
    }
    if v < 0 {
        i -= 1;
        buf[i] = b'-';
    }
    std::str::from_utf8(&buf[i..]).unwrap_or_default()
}

/// Appends a `numeric` field from the decimal digits of an unscaled value (an optional `-`,
/// then ASCII digits) and its scale: `("-12345", 2)` is -123.45, `("5", -2)` is 500.
pub fn put_numeric_digits(out: &mut Vec<u8>, text: &str, scale: i8) {
    let (negative, digits) = match text.strip_prefix('-') {
        Some(d) => (true, d),
        None => (false, text),
    };
    // as integer and fraction digit strings
    let (int, frac): (String, String) = if scale <= 0 {
        let mut i = digits.to_string();
        i.extend(std::iter::repeat_n('0', scale.unsigned_abs() as usize));
        (i, String::new())
    } else {
        let s = scale as usize;
        let padded = format!("{digits:0>width$}", width = s + 1);
        let (i, f) = padded.split_at(padded.len() - s);
        (i.to_string(), f.to_string())
    };
    let mut groups: Vec<i16> = Vec::new();
    let lead = (4 - int.len() % 4) % 4;
    let int_padded = format!("{}{int}", "0".repeat(lead));
    for c in int_padded.as_bytes().chunks(4) {
        groups.push(
            std::str::from_utf8(c)
                .ok()
                .and_then(|s| s.parse().ok())
                .unwrap_or(0),
        );
    }
    let int_groups = groups.len();
    let trail = (4 - frac.len() % 4) % 4;
    let frac_padded = format!("{frac}{}", "0".repeat(trail));
    for c in frac_padded.as_bytes().chunks(4) {
        groups.push(
            std::str::from_utf8(c)
                .ok()
                .and_then(|s| s.parse().ok())
                .unwrap_or(0),
        );
    }
    put_numeric_groups(
        out,
        negative,
        &groups,
        int_groups as i16 - 1,
        scale.max(0) as u16,
    );
}

/// One column of a COPY: its name, the wire form of its PostgreSQL type and, for `numeric`,
/// the scale values of a non-decimal Arrow type are converted at.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Column {
    /// The column's name (for the column list and messages).
    pub name: String,
    /// The wire form values are written in.
    pub ty: PgType,
    /// The decimal scale of a `numeric` column.
    pub scale: i8,
}

impl Column {
    /// A column of `ty` (scale 0).
    pub fn new(name: impl Into<String>, ty: PgType) -> Self {
        Self {
            name: name.into(),
            ty,
            scale: 0,
        }
    }

    /// With decimal scale `scale`.
    pub fn with_scale(mut self, scale: i8) -> Self {
        self.scale = scale;
        self
    }
}

/// Writes Arrow batches of one table as binary COPY tuples, column `i` of each batch in the
/// wire form of `columns[i]`. Values are converted as the column's type takes them: integers
/// narrowed with a range check, doubles to `real` when they fit, timestamps of any unit and
/// zone to microseconds, text to `uuid`, nested values to JSON text; a value that does not
/// convert is an error naming the column and the table.
#[derive(Debug, Clone)]
pub struct Encoder {
    table: String,
    columns: Vec<Column>,
}

/// A column converted for encoding: its nulls and its values in the target's Arrow type.
struct Prepared {
    nulls: Option<NullBuffer>,
    values: Values,
}

enum Values {
    Bool(BooleanBuffer),
    Int2(ScalarBuffer<i64>),
    Int4(ScalarBuffer<i64>),
    Int8(ScalarBuffer<i64>),
    Float8(ScalarBuffer<f64>),
    /// doubles sent as `real`, each checked to fit
    Float4(ScalarBuffer<f64>),
    Text(StringArray),
    /// jsonb: the text after a version byte
    Jsonb(StringArray),
    Binary(BinaryArray),
    LargeBinary(LargeBinaryArray),
    Uuid(FixedSizeBinaryArray),
    /// uuid text, parsed per value
    UuidText(StringArray),
    /// days since 1970
    Date(ScalarBuffer<i32>),
    /// microseconds since 1970 (timestamp values of any unit, converted)
    Micros(ScalarBuffer<i64>),
    Time(ScalarBuffer<i64>),
    Dec128(ScalarBuffer<i128>, i8),
    Dec256(ScalarBuffer<i256>, i8),
}

fn strict() -> CastOptions<'static> {
    CastOptions {
        safe: false,
        ..Default::default()
    }
}

impl Encoder {
    /// An encoder for batches of `table` whose columns are `columns`, in batch order.
    pub fn new(table: impl Into<String>, columns: Vec<Column>) -> Self {
        Self {
            table: table.into(),
            columns,
        }
    }

    /// The table's name.
    pub fn table(&self) -> &str {
        &self.table
    }

    /// The columns, in batch order.
    pub fn columns(&self) -> &[Column] {
        &self.columns
    }

    /// The columns, to change their wire forms (to those of the table as the server has it).
    pub fn columns_mut(&mut self) -> &mut [Column] {
        &mut self.columns
    }

    /// The quoted column list of the COPY statement, in batch order.
    pub fn column_list(&self) -> String {
        self.columns
            .iter()
            .map(|c| crate::jobs::quote(&c.name))
            .collect::<Vec<_>>()
            .join(", ")
    }

    fn value_error(&self, column: &Column, what: impl std::fmt::Display) -> Error {
        Error::data(format!(
            "column `{}` of table `{}`: {what}",
            column.name, self.table
        ))
    }

    fn prepare(&self, column: &Column, array: &ArrayRef) -> Result<Prepared> {
        let cast = |to: &ArrowType| -> Result<ArrayRef> {
            cast_with_options(array, to, &strict()).map_err(|e| {
                self.value_error(
                    column,
                    format!(
                        "cannot load {} values as PostgreSQL {:?}: {e}",
                        array.data_type(),
                        column.ty
                    ),
                )
            })
        };
        let value_type = match array.data_type() {
            ArrowType::Dictionary(_, v) => v.as_ref().clone(),
            other => other.clone(),
        };
        let plain = array.data_type() == &value_type;
        let ints = |a: ArrayRef| {
            let a = a.as_primitive::<Int64Type>();
            (a.nulls().cloned(), a.values().clone())
        };
        let floats = |a: ArrayRef| {
            let a = a.as_primitive::<Float64Type>();
            (a.nulls().cloned(), a.values().clone())
        };
        let strings = |a: StringArray| (a.nulls().cloned(), a);
        let (nulls, values) = match column.ty {
            PgType::Bool => {
                let a = cast(&ArrowType::Boolean)?;
                let a = a.as_boolean();
                (a.nulls().cloned(), Values::Bool(a.values().clone()))
            }
            PgType::Int2 => {
                let (n, v) = ints(cast(&ArrowType::Int64)?);
                (n, Values::Int2(v))
            }
            PgType::Int4 => {
                let (n, v) = ints(cast(&ArrowType::Int64)?);
                (n, Values::Int4(v))
            }
            PgType::Int8 => {
                let (n, v) = ints(cast(&ArrowType::Int64)?);
                (n, Values::Int8(v))
            }
            PgType::Float8 => {
                let (n, v) = floats(cast(&ArrowType::Float64)?);
                (n, Values::Float8(v))
            }
            PgType::Float4 => {
                let (n, v) = floats(cast(&ArrowType::Float64)?);
                (n, Values::Float4(v))
            }
            PgType::Text | PgType::Json => {
                let (n, a) = strings(self.text(column, array, &value_type)?);
                (n, Values::Text(a))
            }
            PgType::Jsonb => {
                let (n, a) = strings(self.text(column, array, &value_type)?);
                (n, Values::Jsonb(a))
            }
            PgType::Bytea => match value_type {
                ArrowType::LargeBinary if plain => {
                    let a = array.as_binary::<i64>().clone();
                    (a.nulls().cloned(), Values::LargeBinary(a))
                }
                ArrowType::Binary if plain => {
                    let a = array.as_binary::<i32>().clone();
                    (a.nulls().cloned(), Values::Binary(a))
                }
                _ => {
                    let a = cast(&ArrowType::Binary)?.as_binary::<i32>().clone();
                    (a.nulls().cloned(), Values::Binary(a))
                }
            },
            PgType::Uuid => match value_type {
                ArrowType::FixedSizeBinary(16) => {
                    let a = cast(&ArrowType::FixedSizeBinary(16))?
                        .as_fixed_size_binary()
                        .clone();
                    (a.nulls().cloned(), Values::Uuid(a))
                }
                _ => {
                    let (n, a) = strings(self.text(column, array, &value_type)?);
                    (n, Values::UuidText(a))
                }
            },
            PgType::Date => {
                let a = cast(&ArrowType::Date32)?;
                let a = a.as_primitive::<Date32Type>();
                (a.nulls().cloned(), Values::Date(a.values().clone()))
            }
            PgType::Timestamp => {
                // same zone, microseconds: the stored instants are kept as they are
                let tz = match &value_type {
                    ArrowType::Timestamp(_, tz) => tz.clone(),
                    // an offset, not a zone name: arrow-cast knows zone names only with
                    // its chrono-tz feature
                    _ => Some(Arc::from("+00:00")),
                };
                let a = cast(&ArrowType::Timestamp(TimeUnit::Microsecond, tz))?;
                let a = a.as_primitive::<TimestampMicrosecondType>();
                (a.nulls().cloned(), Values::Micros(a.values().clone()))
            }
            PgType::Time => {
                let a = cast(&ArrowType::Time64(TimeUnit::Microsecond))?;
                let a = a.as_primitive::<Time64MicrosecondType>();
                (a.nulls().cloned(), Values::Time(a.values().clone()))
            }
            PgType::Numeric => {
                let (to, s) = match value_type {
                    ArrowType::Decimal128(_, s) if plain => (None, s),
                    ArrowType::Decimal256(_, s) if plain => (None, s),
                    ArrowType::Decimal256(_, s) => (Some(ArrowType::Decimal256(76, s)), s),
                    ArrowType::Decimal128(_, s) => (Some(ArrowType::Decimal128(38, s)), s),
                    _ => (Some(ArrowType::Decimal128(38, column.scale)), column.scale),
                };
                let a = match to {
                    Some(to) => cast(&to)?,
                    None => array.clone(),
                };
                match a.data_type() {
                    ArrowType::Decimal256(..) => {
                        let a = a.as_primitive::<Decimal256Type>();
                        (a.nulls().cloned(), Values::Dec256(a.values().clone(), s))
                    }
                    _ => {
                        let a = a.as_primitive::<Decimal128Type>();
                        (a.nulls().cloned(), Values::Dec128(a.values().clone(), s))
                    }
                }
            }
        };
        Ok(Prepared { nulls, values })
    }

    /// Text of a text or json column: strings as they are, nested Arrow values as JSON.
    fn text(
        &self,
        column: &Column,
        array: &ArrayRef,
        value_type: &ArrowType,
    ) -> Result<StringArray> {
        use ArrowType::*;
        if array.data_type() == &Utf8 {
            return Ok(array.as_string::<i32>().clone());
        }
        let nested = matches!(
            value_type,
            Struct(_) | List(_) | LargeList(_) | FixedSizeList(..) | Map(..) | ListView(_)
        );
        if !nested {
            let a = cast_with_options(array, &Utf8, &strict()).map_err(|e| {
                self.value_error(
                    column,
                    format!("cannot load {} values as text: {e}", array.data_type()),
                )
            })?;
            return Ok(a.as_string::<i32>().clone());
        }
        let field = Arc::new(Field::new(&column.name, array.data_type().clone(), true));
        let options = arrow_json::writer::EncoderOptions::default().with_explicit_nulls(true);
        let mut encoder = arrow_json::writer::make_encoder(&field, array.as_ref(), &options)
            .map_err(|e| {
                self.value_error(
                    column,
                    format!("cannot write {} values as JSON: {e}", array.data_type()),
                )
            })?;
        let mut out = arrow_array::builder::StringBuilder::new();
        let mut buf = Vec::new();
        for i in 0..array.len() {
            if encoder.is_null(i) {
                out.append_null();
            } else {
                buf.clear();
                encoder.encode(i, &mut buf);
                out.append_value(String::from_utf8_lossy(&buf));
            }
        }
        Ok(out.finish())
    }

    /// Appends the rows of `batch` (columns in the encoder's order) to `out` as tuples.
    pub fn encode(&self, batch: &RecordBatch, out: &mut Vec<u8>) -> Result<()> {
        if batch.num_columns() != self.columns.len() {
            return Err(Error::internal(format!(
                "a batch of table `{}` has {} columns, the COPY {}",
                self.table,
                batch.num_columns(),
                self.columns.len()
            )));
        }
        let prepared = self
            .columns
            .iter()
            .zip(batch.columns())
            .map(|(c, a)| self.prepare(c, a))
            .collect::<Result<Vec<_>>>()?;
        let fields = (self.columns.len() as i16).to_be_bytes();
        for row in 0..batch.num_rows() {
            out.extend_from_slice(&fields);
            for (p, c) in prepared.iter().zip(&self.columns) {
                if p.nulls.as_ref().is_some_and(|n| n.is_null(row)) {
                    put_null(out);
                } else {
                    self.write(&p.values, c, row, out)?;
                }
            }
        }
        Ok(())
    }

    #[inline]
    fn write(&self, values: &Values, c: &Column, row: usize, out: &mut Vec<u8>) -> Result<()> {
        match values {
            Values::Bool(a) => put_bool(out, a.value(row)),
            Values::Int2(a) => {
                let v = a[row];
                let v = i16::try_from(v).map_err(|_| {
                    self.value_error(c, format!("{v} does not fit smallint, the column's type\nhint: widen the column (a precision hint of 16 bits makes smallint): drop the hint and recreate the column, or ALTER it to bigint"))
                })?;
                put_i16(out, v);
            }
            Values::Int4(a) => {
                let v = a[row];
                let v = i32::try_from(v).map_err(|_| {
                    self.value_error(c, format!("{v} does not fit integer, the column's type\nhint: widen the column (a precision hint of 32 bits makes integer): drop the hint and recreate the column, or ALTER it to bigint"))
                })?;
                put_i32(out, v);
            }
            Values::Int8(a) => put_i64(out, a[row]),
            Values::Float8(a) => put_f64(out, a[row]),
            Values::Float4(a) => {
                let v = a[row];
                let narrow = v as f32;
                if v.is_finite() && !narrow.is_finite() {
                    return Err(self.value_error(
                        c,
                        format!("{v} is out of the range of real, the column's type\nhint: ALTER the column to double precision"),
                    ));
                }
                put_f32(out, narrow);
            }
            Values::Text(a) => put_bytes(out, a.value(row).as_bytes()),
            Values::Jsonb(a) => put_jsonb(out, a.value(row).as_bytes()),
            Values::Binary(a) => put_bytes(out, a.value(row)),
            Values::LargeBinary(a) => put_bytes(out, a.value(row)),
            Values::Uuid(a) => {
                let v: &[u8; 16] = a
                    .value(row)
                    .try_into()
                    .map_err(|_| self.value_error(c, "a uuid of other than 16 bytes"))?;
                put_uuid(out, v);
            }
            Values::UuidText(a) => {
                let text = a.value(row);
                let v = super::uuid_parse(text)
                    .ok_or_else(|| self.value_error(c, format!("`{text}` is not a UUID")))?;
                put_uuid(out, &v);
            }
            Values::Date(a) => {
                let d = date_to_pg(a[row]).ok_or_else(|| {
                    self.value_error(c, format!("day {} is out of the range of date", a[row]))
                })?;
                put_i32(out, d);
            }
            Values::Micros(a) => {
                let t = timestamp_to_pg(a[row]).ok_or_else(|| {
                    self.value_error(c, format!("{} µs is out of the range of timestamp", a[row]))
                })?;
                put_i64(out, t);
            }
            Values::Time(a) => put_i64(out, a[row]),
            Values::Dec128(a, s) => put_numeric(out, a[row], *s),
            Values::Dec256(a, s) => put_numeric_digits(out, &a[row].to_string(), *s),
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn numeric(v: i128, s: i8) -> Vec<u8> {
        let mut out = Vec::new();
        put_numeric(&mut out, v, s);
        let mut text = Vec::new();
        put_numeric_digits(&mut text, &v.to_string(), s);
        assert_eq!(out, text, "both paths agree for {v} scale {s}");
        out
    }

    /// The numeric's digit count, weight, sign, display scale and digits (after the length).
    fn fields(b: &[u8]) -> (i16, i16, u16, u16, Vec<i16>) {
        let g = |i: usize| i16::from_be_bytes([b[i], b[i + 1]]);
        let n = g(4);
        (
            n,
            g(6),
            g(8) as u16,
            g(10) as u16,
            (0..n as usize).map(|k| g(12 + 2 * k)).collect(),
        )
    }

    #[test]
    fn numerics_are_base_10000_digits_with_weight_sign_and_scale() {
        // 12.3456 at scale 4: digits [12, 3456], weight 0
        assert_eq!(fields(&numeric(123456, 4)), (2, 0, 0, 4, vec![12, 3456]));
        // -12.35 at scale 2: [12, 3500], weight 0, negative
        assert_eq!(
            fields(&numeric(-1235, 2)),
            (2, 0, 0x4000, 2, vec![12, 3500])
        );
        // 0.000000001 at scale 9: [0, 0, 1000] -> weight -3, digit 1000
        assert_eq!(fields(&numeric(1, 9)), (1, -3, 0, 9, vec![1000]));
        // 1e30 at scale 0: one digit 100 at weight 7
        assert_eq!(fields(&numeric(10i128.pow(30), 0)), (1, 7, 0, 0, vec![100]));
        // zero: no digits
        assert_eq!(fields(&numeric(0, 9)), (0, 0, 0, 9, vec![]));
        // the extremes of decimal(38, 9)
        let max = 10i128.pow(38) - 1;
        let (n, w, sign, s, d) = fields(&numeric(-max, 9));
        // 29 nines before the point: one digit 9 then seven 9999; nine after: 9999 9999 9000
        assert_eq!((n, w, sign, s), (11, 7, 0x4000, 9));
        assert_eq!((d[0], d[1], d[7], d[10]), (9, 9999, 9999, 9000));
        let mut scaled = Vec::new();
        put_numeric_digits(&mut scaled, "5", -2);
        assert_eq!(fields(&scaled), (1, 0, 0, 0, vec![500]));
        // a negative scale through the 128-bit path
        assert_eq!(fields(&numeric(-5, -2)), (1, 0, 0x4000, 0, vec![500]));
        assert_eq!(fields(&numeric(i128::MIN, 0)).0, 10);
    }

    #[test]
    fn digits_of_i128_cover_the_extremes() {
        let mut buf = [0u8; 40];
        for v in [0, 7, -7, i128::MAX, i128::MIN, 10i128.pow(38)] {
            assert_eq!(i128_digits(v, &mut buf), v.to_string());
        }
    }
}
