//! Arrow batches encoded as PostgreSQL's binary COPY format (`COPY ... FROM STDIN (FORMAT
//! binary)`): the server parses no text, and each value is sent in the wire form of its
//! column's type.
//!
//! The stream is a header (signature, flags, extension length), then per row a 16-bit field
//! count and per field a 32-bit length (-1 for NULL) and the value's bytes in network order,
//! then a trailer of -1. Values are converted to the destination column's type here: integers
//! narrowed with a range check, timestamps to microseconds since 2000-01-01, dates to days since
//! then, decimals to base-10000 numeric digits, JSON prefixed with jsonb's version byte.

use std::sync::Arc;

use arrow_array::cast::AsArray;
use arrow_array::types::{
    Date32Type, Decimal128Type, Decimal256Type, Float64Type, Int64Type, Time64MicrosecondType,
};
use arrow_array::{Array, ArrayRef, BooleanArray, PrimitiveArray, RecordBatch, StringArray};
use arrow_cast::{cast_with_options, CastOptions};
use arrow_schema::{DataType as ArrowType, Field, Schema as ArrowSchema, TimeUnit};
use sluice_sdk::schema::{DataType, Table};
use sluice_sdk::{Error, Result};

use crate::types::{pg_type, PgType};

/// The binary COPY header: signature, flags (0), header extension length (0).
pub const HEADER: &[u8] = b"PGCOPY\n\xff\r\n\0\0\0\0\0\0\0\0\0";
/// The binary COPY trailer: a field count of -1.
pub const TRAILER: &[u8] = &[0xff, 0xff];

/// Days from 1970-01-01 to PostgreSQL's epoch 2000-01-01.
const EPOCH_DAYS: i32 = 10_957;
/// Microseconds from 1970-01-01 to 2000-01-01.
const EPOCH_MICROS: i64 = 946_684_800_000_000;

/// One column of the COPY: its name, wire type and (for numeric) scale.
#[derive(Debug, Clone)]
struct Target {
    name: String,
    ty: PgType,
    /// The type dlt makes for the column.
    dlt_type: PgType,
    /// The column's decimal scale (numeric columns).
    scale: i8,
}

/// Encodes batches of one load file for one table.
#[derive(Debug, Clone)]
pub struct Encoder {
    table: String,
    targets: Vec<Target>,
}

/// A column converted for encoding.
enum Prepared {
    Bool(BooleanArray),
    Int(PrimitiveArray<Int64Type>, PgType),
    Float(PrimitiveArray<Float64Type>),
    /// doubles sent as `real`, each checked to fit
    Float4(PrimitiveArray<Float64Type>),
    Text(StringArray),
    /// jsonb: the text after a version byte
    Jsonb(StringArray),
    Bytes(ArrayRef),
    Date(PrimitiveArray<Date32Type>),
    /// microseconds since 1970 (timestamp values of any unit, converted)
    Micros(ArrayRef),
    Time(PrimitiveArray<Time64MicrosecondType>),
    Dec128(PrimitiveArray<Decimal128Type>, i8),
    Dec256(PrimitiveArray<Decimal256Type>, i8),
}

fn strict() -> CastOptions<'static> {
    CastOptions {
        safe: false,
        ..Default::default()
    }
}

impl Encoder {
    /// An encoder for batches with `file_schema` into `table` (its columns by name).
    pub fn new(table: &Table, file_schema: &ArrowSchema) -> Result<Self> {
        let mut targets = Vec::with_capacity(file_schema.fields().len());
        for f in file_schema.fields() {
            let column = table
                .columns
                .get(f.name())
                .filter(|c| c.is_complete())
                .ok_or_else(|| {
                    Error::schema(format!(
                        "the load file of table `{}` has column `{}`, which the schema does not have",
                        table.name,
                        f.name()
                    ))
                })?;
            let scale = match column.data_type {
                Some(DataType::Decimal) => crate::types::decimal(column).1.min(38) as i8,
                _ => 0,
            };
            let ty = pg_type(column)?;
            targets.push(Target {
                name: column.name.clone(),
                ty,
                dlt_type: ty,
                scale,
            });
        }
        Ok(Self {
            table: table.name.clone(),
            targets,
        })
    }

    /// The encoder for the columns as the server has them: `actual` maps each column of
    /// `dataset.table` to its type (`pg_type.typname`). Values are sent in the wire form of
    /// that type when it holds them without loss (`json` without jsonb's version byte,
    /// `integer` or `real` with the range checked, text as json); a column of another kind
    /// (a `numeric` or `integer` column where dlt has a double, say) is refused rather than
    /// rounded.
    pub fn for_columns(
        mut self,
        dataset: &str,
        actual: &std::collections::BTreeMap<String, String>,
    ) -> Result<Self> {
        for t in &mut self.targets {
            let Some(typname) = actual.get(&t.name) else {
                return Err(Error::schema(format!(
                    "table `{dataset}.{}` has no column `{}` to load into\nhint: the table was changed outside sluice; add the column or drop the table",
                    self.table, t.name
                )));
            };
            let ty = PgType::from_catalog(typname).filter(|ty| holds(t.dlt_type, *ty));
            t.ty = ty.ok_or_else(|| {
                Error::schema(format!(
                    "column `{}` of table `{dataset}.{}` has PostgreSQL type `{typname}`, which cannot hold the column's values ({}) without change\nhint: alter the column to {}, or drop the table and let sluice create it",
                    t.name,
                    self.table,
                    t.dlt_type.sql_name(),
                    t.dlt_type.sql_name()
                ))
            })?;
        }
        Ok(self)
    }

    /// The quoted column list of the COPY statement, in file order.
    pub fn column_list(&self) -> String {
        self.targets
            .iter()
            .map(|t| sluice_sql::jobs::quote(&t.name))
            .collect::<Vec<_>>()
            .join(", ")
    }

    fn value_error(&self, target: &Target, what: impl std::fmt::Display) -> Error {
        Error::data(format!(
            "column `{}` of table `{}`: {what}",
            target.name, self.table
        ))
    }

    fn prepare(&self, target: &Target, array: &ArrayRef) -> Result<Prepared> {
        let cast = |to: &ArrowType| -> Result<ArrayRef> {
            cast_with_options(array, to, &strict()).map_err(|e| {
                self.value_error(
                    target,
                    format!(
                        "cannot load {} values as PostgreSQL {:?}: {e}",
                        array.data_type(),
                        target.ty
                    ),
                )
            })
        };
        let value_type = match array.data_type() {
            ArrowType::Dictionary(_, v) => v.as_ref().clone(),
            other => other.clone(),
        };
        Ok(match target.ty {
            PgType::Bool => Prepared::Bool(cast(&ArrowType::Boolean)?.as_boolean().clone()),
            PgType::Int2 | PgType::Int4 | PgType::Int8 => Prepared::Int(
                cast(&ArrowType::Int64)?.as_primitive::<Int64Type>().clone(),
                target.ty,
            ),
            PgType::Float8 => Prepared::Float(
                cast(&ArrowType::Float64)?
                    .as_primitive::<Float64Type>()
                    .clone(),
            ),
            PgType::Float4 => Prepared::Float4(
                cast(&ArrowType::Float64)?
                    .as_primitive::<Float64Type>()
                    .clone(),
            ),
            PgType::Text | PgType::Json => Prepared::Text(self.text(target, array, &value_type)?),
            PgType::Jsonb => Prepared::Jsonb(self.text(target, array, &value_type)?),
            PgType::Bytea => Prepared::Bytes(match value_type {
                ArrowType::Binary | ArrowType::LargeBinary if array.data_type() == &value_type => {
                    array.clone()
                }
                _ => cast(&ArrowType::Binary)?,
            }),
            PgType::Date => Prepared::Date(
                cast(&ArrowType::Date32)?
                    .as_primitive::<Date32Type>()
                    .clone(),
            ),
            PgType::Timestamp => {
                // same zone, microseconds: the stored instants are kept as they are
                let tz = match &value_type {
                    ArrowType::Timestamp(_, tz) => tz.clone(),
                    // an offset, not a zone name: arrow-cast knows zone names only with
                    // its chrono-tz feature
                    _ => Some(Arc::from("+00:00")),
                };
                Prepared::Micros(cast(&ArrowType::Timestamp(TimeUnit::Microsecond, tz))?)
            }
            PgType::Time => Prepared::Time(
                cast(&ArrowType::Time64(TimeUnit::Microsecond))?
                    .as_primitive::<Time64MicrosecondType>()
                    .clone(),
            ),
            PgType::Numeric => match value_type {
                ArrowType::Decimal128(_, s) if array.data_type() == &value_type => {
                    Prepared::Dec128(array.as_primitive::<Decimal128Type>().clone(), s)
                }
                ArrowType::Decimal256(_, s) if array.data_type() == &value_type => {
                    Prepared::Dec256(array.as_primitive::<Decimal256Type>().clone(), s)
                }
                ArrowType::Decimal256(_, s) => Prepared::Dec256(
                    cast(&ArrowType::Decimal256(76, s))?
                        .as_primitive::<Decimal256Type>()
                        .clone(),
                    s,
                ),
                ArrowType::Decimal128(_, s) => Prepared::Dec128(
                    cast(&ArrowType::Decimal128(38, s))?
                        .as_primitive::<Decimal128Type>()
                        .clone(),
                    s,
                ),
                _ => Prepared::Dec128(
                    cast(&ArrowType::Decimal128(38, target.scale))?
                        .as_primitive::<Decimal128Type>()
                        .clone(),
                    target.scale,
                ),
            },
        })
    }

    /// Text of a text or json column: strings as they are, nested Arrow values as JSON.
    fn text(
        &self,
        target: &Target,
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
                    target,
                    format!("cannot load {} values as text: {e}", array.data_type()),
                )
            })?;
            return Ok(a.as_string::<i32>().clone());
        }
        let field = Arc::new(Field::new(&target.name, array.data_type().clone(), true));
        let options = arrow_json::writer::EncoderOptions::default().with_explicit_nulls(true);
        let mut encoder = arrow_json::writer::make_encoder(&field, array.as_ref(), &options)
            .map_err(|e| {
                self.value_error(
                    target,
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

    /// Appends the rows of `batch` (columns in the file's order) to `out`.
    pub fn encode(&self, batch: &RecordBatch, out: &mut Vec<u8>) -> Result<()> {
        if batch.num_columns() != self.targets.len() {
            return Err(Error::internal(format!(
                "a batch of table `{}` has {} columns, the COPY {}",
                self.table,
                batch.num_columns(),
                self.targets.len()
            )));
        }
        let prepared = self
            .targets
            .iter()
            .zip(batch.columns())
            .map(|(t, a)| self.prepare(t, a))
            .collect::<Result<Vec<_>>>()?;
        let fields = (self.targets.len() as i16).to_be_bytes();
        for row in 0..batch.num_rows() {
            out.extend_from_slice(&fields);
            for (p, t) in prepared.iter().zip(&self.targets) {
                self.write(p, t, row, out)?;
            }
        }
        Ok(())
    }

    #[inline]
    fn write(&self, p: &Prepared, t: &Target, row: usize, out: &mut Vec<u8>) -> Result<()> {
        let null = match p {
            Prepared::Bool(a) => a.is_null(row),
            Prepared::Int(a, _) => a.is_null(row),
            Prepared::Float(a) => a.is_null(row),
            Prepared::Float4(a) => a.is_null(row),
            Prepared::Text(a) | Prepared::Jsonb(a) => a.is_null(row),
            Prepared::Bytes(a) | Prepared::Micros(a) => a.is_null(row),
            Prepared::Date(a) => a.is_null(row),
            Prepared::Time(a) => a.is_null(row),
            Prepared::Dec128(a, _) => a.is_null(row),
            Prepared::Dec256(a, _) => a.is_null(row),
        };
        if null {
            out.extend_from_slice(&(-1i32).to_be_bytes());
            return Ok(());
        }
        match p {
            Prepared::Bool(a) => {
                out.extend_from_slice(&1i32.to_be_bytes());
                out.push(u8::from(a.value(row)));
            }
            Prepared::Int(a, ty) => {
                let v = a.value(row);
                match ty {
                    PgType::Int2 => {
                        let v = i16::try_from(v).map_err(|_| {
                            self.value_error(t, format!("{v} does not fit smallint, the column's type\nhint: widen the column (a precision hint of 16 bits makes smallint): drop the hint and recreate the column, or ALTER it to bigint"))
                        })?;
                        out.extend_from_slice(&2i32.to_be_bytes());
                        out.extend_from_slice(&v.to_be_bytes());
                    }
                    PgType::Int4 => {
                        let v = i32::try_from(v).map_err(|_| {
                            self.value_error(t, format!("{v} does not fit integer, the column's type\nhint: widen the column (a precision hint of 32 bits makes integer): drop the hint and recreate the column, or ALTER it to bigint"))
                        })?;
                        out.extend_from_slice(&4i32.to_be_bytes());
                        out.extend_from_slice(&v.to_be_bytes());
                    }
                    _ => {
                        out.extend_from_slice(&8i32.to_be_bytes());
                        out.extend_from_slice(&v.to_be_bytes());
                    }
                }
            }
            Prepared::Float(a) => {
                out.extend_from_slice(&8i32.to_be_bytes());
                out.extend_from_slice(&a.value(row).to_be_bytes());
            }
            Prepared::Float4(a) => {
                let v = a.value(row);
                let narrow = v as f32;
                if v.is_finite() && !narrow.is_finite() {
                    return Err(self.value_error(
                        t,
                        format!("{v} is out of the range of real, the column's type\nhint: ALTER the column to double precision"),
                    ));
                }
                out.extend_from_slice(&4i32.to_be_bytes());
                out.extend_from_slice(&narrow.to_be_bytes());
            }
            Prepared::Text(a) => put_bytes(out, a.value(row).as_bytes(), None),
            Prepared::Jsonb(a) => put_bytes(out, a.value(row).as_bytes(), Some(1)),
            Prepared::Bytes(a) => match a.data_type() {
                ArrowType::LargeBinary => put_bytes(out, a.as_binary::<i64>().value(row), None),
                _ => put_bytes(out, a.as_binary::<i32>().value(row), None),
            },
            Prepared::Date(a) => {
                out.extend_from_slice(&4i32.to_be_bytes());
                out.extend_from_slice(&(a.value(row) - EPOCH_DAYS).to_be_bytes());
            }
            Prepared::Micros(a) => {
                let v = a
                    .as_primitive::<arrow_array::types::TimestampMicrosecondType>()
                    .value(row);
                out.extend_from_slice(&8i32.to_be_bytes());
                out.extend_from_slice(&(v - EPOCH_MICROS).to_be_bytes());
            }
            Prepared::Time(a) => {
                out.extend_from_slice(&8i32.to_be_bytes());
                out.extend_from_slice(&a.value(row).to_be_bytes());
            }
            Prepared::Dec128(a, s) => numeric_i128(out, a.value(row), *s),
            Prepared::Dec256(a, s) => numeric_digits(out, &a.value(row).to_string(), *s),
        }
        Ok(())
    }
}

/// Whether a column of type `actual` holds the values dlt types as `dlt` without change: the
/// same type, another integer width or `real` (range-checked per value), an integer in
/// `numeric`, or text and JSON in each other (the server checks the JSON).
fn holds(dlt: PgType, actual: PgType) -> bool {
    use PgType::*;
    dlt == actual
        || matches!(
            (dlt, actual),
            (Int2 | Int4 | Int8, Int2 | Int4 | Int8 | Numeric)
                | (Float8, Float4)
                | (Text | Json | Jsonb, Text | Json | Jsonb)
        )
}

/// A length-prefixed value, with an optional leading byte (jsonb's version 1).
#[inline]
fn put_bytes(out: &mut Vec<u8>, v: &[u8], prefix: Option<u8>) {
    let len = v.len() + usize::from(prefix.is_some());
    out.extend_from_slice(&(len as i32).to_be_bytes());
    if let Some(b) = prefix {
        out.push(b);
    }
    out.extend_from_slice(v);
}

/// Writes a numeric from its base-10000 digits, most significant first, `weight` being the
/// power of 10000 of the first digit.
fn put_numeric(out: &mut Vec<u8>, negative: bool, groups: &[i16], weight: i16, dscale: u16) {
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

/// A numeric from an unscaled 128-bit value and its scale.
fn numeric_i128(out: &mut Vec<u8>, v: i128, scale: i8) {
    if scale < 0 {
        return numeric_digits(out, &v.to_string(), scale);
    }
    let s = scale as u32;
    let negative = v < 0;
    let abs = v.unsigned_abs();
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
    put_numeric(
        out,
        negative,
        &groups[..n + frac_groups],
        n as i16 - 1,
        s as u16,
    );
}

/// A numeric from the decimal digits of an unscaled value (optional `-`) and its scale.
fn numeric_digits(out: &mut Vec<u8>, text: &str, scale: i8) {
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
    put_numeric(
        out,
        negative,
        &groups,
        int_groups as i16 - 1,
        scale.max(0) as u16,
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    fn numeric(v: i128, s: i8) -> Vec<u8> {
        let mut out = Vec::new();
        numeric_i128(&mut out, v, s);
        let mut text = Vec::new();
        numeric_digits(&mut text, &v.to_string(), s);
        assert_eq!(out, text, "both paths agree for {v} scale {s}");
        out
    }

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
        numeric_digits(&mut scaled, "5", -2);
        assert_eq!(fields(&scaled), (1, 0, 0, 0, vec![500]));
    }

    #[test]
    fn rows_are_encoded_in_file_order_with_nulls() {
        let mut t = Table {
            name: "t".into(),
            ..Default::default()
        };
        let mut small = sluice_sdk::schema::Column::new("small", DataType::Bigint);
        small.precision = Some(16);
        for c in [
            small,
            sluice_sdk::schema::Column::new("name", DataType::Text),
            sluice_sdk::schema::Column::new("doc", DataType::Json),
            sluice_sdk::schema::Column::new("day", DataType::Date),
        ] {
            t.columns.insert(c.name.clone(), c);
        }
        let schema = Arc::new(ArrowSchema::new(vec![
            Field::new("name", ArrowType::Utf8, true),
            Field::new("small", ArrowType::Int64, true),
            Field::new("doc", ArrowType::Utf8, true),
            Field::new("day", ArrowType::Date32, true),
        ]));
        let batch = RecordBatch::try_new(
            schema.clone(),
            vec![
                Arc::new(StringArray::from(vec![Some("ab"), None])),
                Arc::new(arrow_array::Int64Array::from(vec![Some(7), Some(-2)])),
                Arc::new(StringArray::from(vec![Some("{}"), None])),
                Arc::new(arrow_array::Date32Array::from(vec![Some(10_958), None])),
            ],
        )
        .expect("batch");
        let enc = Encoder::new(&t, &schema).expect("encoder");
        assert_eq!(enc.column_list(), r#""name", "small", "doc", "day""#);
        let mut out = Vec::new();
        enc.encode(&batch, &mut out).expect("encode");
        let mut want: Vec<u8> = Vec::new();
        want.extend(4i16.to_be_bytes());
        want.extend(2i32.to_be_bytes());
        want.extend(b"ab");
        want.extend(2i32.to_be_bytes());
        want.extend(7i16.to_be_bytes());
        want.extend(3i32.to_be_bytes());
        want.extend(b"\x01{}");
        want.extend(4i32.to_be_bytes());
        want.extend(1i32.to_be_bytes());
        want.extend(4i16.to_be_bytes());
        want.extend((-1i32).to_be_bytes());
        want.extend(2i32.to_be_bytes());
        want.extend((-2i16).to_be_bytes());
        want.extend((-1i32).to_be_bytes());
        want.extend((-1i32).to_be_bytes());
        assert_eq!(out, want);
        // a value too wide for smallint names the column and the table
        let big = RecordBatch::try_new(
            schema.clone(),
            vec![
                Arc::new(StringArray::from(vec![Some("x")])),
                Arc::new(arrow_array::Int64Array::from(vec![Some(70_000)])),
                Arc::new(StringArray::from(vec![Some("1")])),
                Arc::new(arrow_array::Date32Array::from(vec![Some(1)])),
            ],
        )
        .expect("batch");
        let e = enc.encode(&big, &mut out).expect_err("too wide");
        assert!(
            e.to_string()
                .contains("column `small` of table `t`: 70000 does not fit smallint"),
            "{e}"
        );
    }
}
