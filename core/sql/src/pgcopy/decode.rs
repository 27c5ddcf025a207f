//! Binary COPY tuples read back (`COPY ... TO STDOUT (FORMAT binary)`).
//!
//! [`CopyReader`] takes the stream in the chunks it arrives in and hands out whole tuples,
//! keeping a tuple cut at a chunk's end for the next chunk (the only copy it makes).
//! [`value`] reads one field in the wire form of its [`PgType`] (through the type's own
//! function: [`int4`], [`numeric`], [`timestamp`], ...). [`ArrowDecoder`] builds Arrow
//! arrays of the types [`super::Encoder`] takes, so that a batch written and read back is the
//! same batch.

use std::sync::Arc;

use arrow_array::builder::{
    BinaryBuilder, BooleanBuilder, Date32Builder, Decimal128Builder, Decimal256Builder,
    FixedSizeBinaryBuilder, Float32Builder, Float64Builder, Int16Builder, Int32Builder,
    Int64Builder, StringBuilder, Time64MicrosecondBuilder, TimestampMicrosecondBuilder,
};
use arrow_array::{ArrayRef, RecordBatch};
use arrow_buffer::i256;
use arrow_schema::{DataType as ArrowType, SchemaRef, TimeUnit};
use sluice_sdk::{Error, Result};

use super::{date_from_pg, timestamp_from_pg, uuid_text, PgType, JSONB_VERSION, SIGNATURE};

#[inline]
fn be_i16(b: &[u8]) -> i16 {
    i16::from_be_bytes([b[0], b[1]])
}

#[inline]
fn be_i32(b: &[u8]) -> i32 {
    i32::from_be_bytes([b[0], b[1], b[2], b[3]])
}

/// A stream that does not open with the binary COPY signature.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NotBinary;

impl std::fmt::Display for NotBinary {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("the COPY data is not in binary format (no PGCOPY signature)")
    }
}

impl std::error::Error for NotBinary {}

/// Cuts a binary COPY stream, arriving in chunks of any size, into whole tuples.
///
/// ```
/// use sluice_sql::pgcopy::{CopyReader, HEADER, TRAILER};
/// let mut stream = HEADER.to_vec();
/// stream.extend([0, 1, 0, 0, 0, 2, 0, 7]); // one tuple: one int2 field, 7
/// stream.extend(TRAILER);
/// let mut reader = CopyReader::new();
/// let mut fields = Vec::new();
/// for chunk in stream.chunks(5) {
///     let mut tuples = reader.feed(chunk)?;
///     while let Some(tuple) = tuples.next() {
///         fields.extend(tuple.fields().map(|f| f.map(<[u8]>::to_vec)));
///     }
/// }
/// assert!(reader.is_finished());
/// assert_eq!(fields, [Some(vec![0, 7])]);
/// # Ok::<(), sluice_sql::pgcopy::decode::NotBinary>(())
/// ```
#[derive(Debug, Default)]
pub struct CopyReader {
    /// The start of a tuple (or the header) cut at the last chunk's end.
    carry: Vec<u8>,
    header_done: bool,
    finished: bool,
}

impl CopyReader {
    /// A reader at the start of a stream.
    pub fn new() -> Self {
        Self::default()
    }

    /// Whether the trailer was read: the stream is complete.
    pub fn is_finished(&self) -> bool {
        self.finished
    }

    /// The whole tuples of `chunk` and of what the previous chunks left; what remains of the
    /// chunk is kept when the returned [`Tuples`] is dropped. `Err` when the stream does not
    /// open with the signature.
    pub fn feed<'a>(&'a mut self, chunk: &'a [u8]) -> Result<Tuples<'a>, NotBinary> {
        let owned = if self.carry.is_empty() {
            None
        } else {
            let mut joined = std::mem::take(&mut self.carry);
            joined.extend_from_slice(chunk);
            Some(joined)
        };
        let mut tuples = Tuples {
            reader: self,
            chunk,
            owned,
            pos: 0,
        };
        if !tuples.reader.header_done {
            let buf = tuples.owned.as_deref().unwrap_or(tuples.chunk);
            // signature, flags, header extension length and bytes
            if buf.len() >= 19 {
                if &buf[..SIGNATURE.len()] != SIGNATURE {
                    return Err(NotBinary);
                }
                let end = 19 + be_i32(&buf[15..]).max(0) as usize;
                if buf.len() >= end {
                    tuples.pos = end;
                    tuples.reader.header_done = true;
                }
            }
        }
        Ok(tuples)
    }
}

/// The whole tuples of a chunk, handed out by [`Tuples::next`].
#[derive(Debug)]
pub struct Tuples<'a> {
    reader: &'a mut CopyReader,
    chunk: &'a [u8],
    /// what the last chunk left, followed by this chunk
    owned: Option<Vec<u8>>,
    pos: usize,
}

impl Tuples<'_> {
    /// The next whole tuple, or `None` at the chunk's end or the stream's trailer.
    #[allow(
        clippy::should_implement_trait,
        reason = "a lending iterator: each tuple borrows the chunk"
    )]
    #[inline]
    pub fn next(&mut self) -> Option<Tuple<'_>> {
        if self.reader.finished || !self.reader.header_done {
            return None;
        }
        let buf = match &self.owned {
            Some(v) => v.as_slice(),
            None => self.chunk,
        };
        let pos = self.pos;
        if pos + 2 > buf.len() {
            return None;
        }
        let count = be_i16(&buf[pos..]);
        if count == -1 {
            self.reader.finished = true;
            self.pos += 2;
            return None;
        }
        let count = count as usize;
        let end = tuple_end(buf, pos, count)?;
        self.pos = end;
        Some(Tuple {
            data: &buf[pos + 2..end],
            count,
        })
    }
}

impl Drop for Tuples<'_> {
    fn drop(&mut self) {
        match self.owned.take() {
            Some(mut joined) => {
                joined.drain(..self.pos.min(joined.len()));
                self.reader.carry = joined;
            }
            None => self
                .reader
                .carry
                .extend_from_slice(&self.chunk[self.pos.min(self.chunk.len())..]),
        }
    }
}

/// The end of the tuple at `pos` with `n` fields, if it is all in `buf`.
#[inline]
fn tuple_end(buf: &[u8], pos: usize, n: usize) -> Option<usize> {
    let mut p = pos + 2;
    for _ in 0..n {
        if p + 4 > buf.len() {
            return None;
        }
        let len = be_i32(&buf[p..]);
        p += 4;
        if len > 0 {
            p += len as usize;
        }
    }
    (p <= buf.len()).then_some(p)
}

/// One whole tuple (row).
#[derive(Debug, Clone, Copy)]
pub struct Tuple<'a> {
    data: &'a [u8],
    count: usize,
}

impl<'a> Tuple<'a> {
    /// The number of fields.
    pub fn len(&self) -> usize {
        self.count
    }

    /// Whether it has no fields.
    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    /// The fields in order: each value's bytes, `None` for NULL.
    #[inline]
    pub fn fields(&self) -> Fields<'a> {
        Fields {
            data: self.data,
            left: self.count,
        }
    }
}

/// The fields of a [`Tuple`].
#[derive(Debug, Clone)]
pub struct Fields<'a> {
    data: &'a [u8],
    left: usize,
}

impl<'a> Iterator for Fields<'a> {
    type Item = Option<&'a [u8]>;

    #[inline]
    fn next(&mut self) -> Option<Self::Item> {
        if self.left == 0 {
            return None;
        }
        self.left -= 1;
        // the lengths were checked against the data when the tuple was cut
        let len = be_i32(self.data);
        let rest = &self.data[4..];
        if len < 0 {
            self.data = rest;
            return Some(None);
        }
        let (value, rest) = rest.split_at(len as usize);
        self.data = rest;
        Some(Some(value))
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        (self.left, Some(self.left))
    }
}

impl ExactSizeIterator for Fields<'_> {}

/// One field's value, as [`value`] reads it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Value<'a> {
    /// `bool`
    Bool(bool),
    /// `int2`
    Int2(i16),
    /// `int4`
    Int4(i32),
    /// `int8`
    Int8(i64),
    /// `float4`
    Float4(f32),
    /// `float8`
    Float8(f64),
    /// `numeric`: the unscaled value at the scale asked for
    Numeric(i128),
    /// `text`, `json`, `jsonb` (without its version byte)
    Text(&'a str),
    /// `bytea`
    Bytes(&'a [u8]),
    /// `uuid`
    Uuid([u8; 16]),
    /// `date`: days since 1970-01-01
    Date(i64),
    /// `time`: microseconds since midnight
    Time(i64),
    /// `timestamp`, `timestamptz`: microseconds since 1970-01-01 00:00 (UTC)
    Timestamp(i64),
}

/// Why a field could not be read; the messages continue "column `x` of table `t` ...".
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FieldError {
    /// A field of a length its type does not have.
    Malformed(usize),
    /// A numeric that is no decimal value or does not fit (what it holds).
    Numeric(&'static str),
    /// Text that is not UTF-8.
    NotUtf8,
    /// A jsonb of another version than 1.
    JsonbVersion(u8),
    /// `date` `±infinity`.
    InfiniteDate,
    /// `timestamp` `±infinity`.
    InfiniteTimestamp,
    /// A timestamp past what microseconds since 1970 hold.
    OutOfRange,
}

impl std::fmt::Display for FieldError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Malformed(len) => write!(f, "has a field of {len} bytes that is malformed"),
            Self::Numeric(what) => write!(f, "holds {what}"),
            Self::NotUtf8 => f.write_str("holds text that is not UTF-8"),
            Self::JsonbVersion(v) => write!(f, "holds jsonb of version {v}, not 1"),
            Self::InfiniteDate => f.write_str("holds an infinite date"),
            Self::InfiniteTimestamp => f.write_str("holds an infinite timestamp"),
            Self::OutOfRange => f.write_str("is out of range"),
        }
    }
}

impl std::error::Error for FieldError {}

/// Reads field `v` in the wire form of `ty`; `scale` is the scale a `numeric` is read at
/// (rounded half away from zero). A reader that appends to its own builders can match on the
/// type and call the type's function ([`int4`], [`timestamp`], ...) instead.
#[inline]
pub fn value(ty: PgType, scale: i8, v: &[u8]) -> Result<Value<'_>, FieldError> {
    Ok(match ty {
        PgType::Bool => Value::Bool(boolean(v)?),
        PgType::Int2 => Value::Int2(int2(v)?),
        PgType::Int4 => Value::Int4(int4(v)?),
        PgType::Int8 => Value::Int8(int8(v)?),
        PgType::Float4 => Value::Float4(float4(v)?),
        PgType::Float8 => Value::Float8(float8(v)?),
        PgType::Numeric => Value::Numeric(numeric(v, scale).map_err(FieldError::Numeric)?),
        PgType::Text | PgType::Json => Value::Text(text(v)?),
        PgType::Jsonb => Value::Text(jsonb(v)?),
        PgType::Bytea => Value::Bytes(v),
        PgType::Uuid => Value::Uuid(uuid(v)?),
        PgType::Date => Value::Date(date(v)?),
        PgType::Time => Value::Time(time(v)?),
        PgType::Timestamp => Value::Timestamp(timestamp(v)?),
    })
}

/// The `N` bytes of a fixed-size field.
#[inline]
fn fixed<const N: usize>(v: &[u8]) -> Result<[u8; N], FieldError> {
    match v.try_into() {
        Ok(b) => Ok(b),
        Err(_) => Err(malformed(v)),
    }
}

#[cold]
#[inline(never)]
fn malformed(v: &[u8]) -> FieldError {
    FieldError::Malformed(v.len())
}

/// A `bool` field.
#[inline]
pub fn boolean(v: &[u8]) -> Result<bool, FieldError> {
    Ok(fixed::<1>(v)?[0] != 0)
}

/// An `int2` field.
#[inline]
pub fn int2(v: &[u8]) -> Result<i16, FieldError> {
    Ok(i16::from_be_bytes(fixed(v)?))
}

/// An `int4` field.
#[inline]
pub fn int4(v: &[u8]) -> Result<i32, FieldError> {
    Ok(i32::from_be_bytes(fixed(v)?))
}

/// An `int8` field.
#[inline]
pub fn int8(v: &[u8]) -> Result<i64, FieldError> {
    Ok(i64::from_be_bytes(fixed(v)?))
}

/// A `float4` field.
#[inline]
pub fn float4(v: &[u8]) -> Result<f32, FieldError> {
    Ok(f32::from_be_bytes(fixed(v)?))
}

/// A `float8` field.
#[inline]
pub fn float8(v: &[u8]) -> Result<f64, FieldError> {
    Ok(f64::from_be_bytes(fixed(v)?))
}

/// A `text`, `varchar` or `json` field.
#[inline]
pub fn text(v: &[u8]) -> Result<&str, FieldError> {
    std::str::from_utf8(v).map_err(|_| FieldError::NotUtf8)
}

/// A `jsonb` field: its text after the version byte.
#[inline]
pub fn jsonb(v: &[u8]) -> Result<&str, FieldError> {
    match v.split_first() {
        Some((&JSONB_VERSION, json)) => text(json),
        Some((version, _)) => Err(FieldError::JsonbVersion(*version)),
        None => Err(FieldError::Malformed(0)),
    }
}

/// A `uuid` field.
#[inline]
pub fn uuid(v: &[u8]) -> Result<[u8; 16], FieldError> {
    fixed(v)
}

/// A `date` field as days since 1970-01-01 (`±infinity` refused).
#[inline]
pub fn date(v: &[u8]) -> Result<i64, FieldError> {
    let d = i32::from_be_bytes(fixed(v)?);
    if d == i32::MAX || d == i32::MIN {
        return Err(FieldError::InfiniteDate);
    }
    Ok(date_from_pg(d))
}

/// A `time` field as microseconds since midnight.
#[inline]
pub fn time(v: &[u8]) -> Result<i64, FieldError> {
    int8(v)
}

/// A `timestamp` or `timestamptz` field as microseconds since 1970-01-01 00:00 (UTC)
/// (`±infinity` refused).
#[inline]
pub fn timestamp(v: &[u8]) -> Result<i64, FieldError> {
    let t = i64::from_be_bytes(fixed(v)?);
    if t == i64::MAX || t == i64::MIN {
        return Err(FieldError::InfiniteTimestamp);
    }
    timestamp_from_pg(t).ok_or(FieldError::OutOfRange)
}

/// An unscaled decimal that a numeric is read into.
trait Unscaled: Copy {
    const ZERO: Self;
    fn digit(d: i32) -> Self;
    fn pow10(e: u32) -> Option<Self>;
    fn checked_mul(self, o: Self) -> Option<Self>;
    fn checked_add(self, o: Self) -> Option<Self>;
    fn neg(self) -> Self;
}

impl Unscaled for i128 {
    const ZERO: Self = 0;
    #[inline]
    fn digit(d: i32) -> Self {
        Self::from(d)
    }
    #[inline]
    fn pow10(e: u32) -> Option<Self> {
        10i128.checked_pow(e)
    }
    #[inline]
    fn checked_mul(self, o: Self) -> Option<Self> {
        i128::checked_mul(self, o)
    }
    #[inline]
    fn checked_add(self, o: Self) -> Option<Self> {
        i128::checked_add(self, o)
    }
    #[inline]
    fn neg(self) -> Self {
        -self
    }
}

impl Unscaled for i256 {
    const ZERO: Self = i256::ZERO;
    fn digit(d: i32) -> Self {
        i256::from_i128(i128::from(d))
    }
    fn pow10(e: u32) -> Option<Self> {
        i256::from_i128(10).checked_pow(e)
    }
    fn checked_mul(self, o: Self) -> Option<Self> {
        i256::checked_mul(self, o)
    }
    fn checked_add(self, o: Self) -> Option<Self> {
        i256::checked_add(self, o)
    }
    fn neg(self) -> Self {
        self.wrapping_neg()
    }
}

/// A binary `numeric` as an unscaled 128-bit value at `scale` (rounded half away from zero);
/// `Err` names what it holds instead.
#[inline]
pub fn numeric(b: &[u8], scale: i8) -> Result<i128, &'static str> {
    numeric_at(b, scale)
}

/// A binary `numeric` as an unscaled 256-bit value at `scale` (rounded half away from zero).
pub fn numeric_i256(b: &[u8], scale: i8) -> Result<i256, &'static str> {
    numeric_at(b, scale)
}

#[inline]
fn numeric_at<T: Unscaled>(b: &[u8], scale: i8) -> Result<T, &'static str> {
    if b.len() < 8 {
        return Err("a malformed numeric");
    }
    let ndigits = i32::from(be_i16(b));
    let weight = i32::from(be_i16(&b[2..]));
    let sign = u16::from_be_bytes([b[4], b[5]]);
    match sign {
        0xC000 => return Err("NaN, which a decimal column cannot hold"),
        0xD000 => return Err("Infinity, which a decimal column cannot hold"),
        0xF000 => return Err("-Infinity, which a decimal column cannot hold"),
        _ => {}
    }
    if ndigits < 0 || b.len() < 8 + 2 * ndigits as usize {
        return Err("a malformed numeric");
    }
    let too_big = "a value too large for the column's decimal";
    let mut acc = T::ZERO;
    let mut round_up = false;
    for i in 0..ndigits {
        let d = i32::from(be_i16(&b[8 + 2 * i as usize..]));
        // the power of ten of this base-10000 digit, at the target scale
        let e = 4 * (weight - i) + i32::from(scale);
        if e >= 0 {
            let m = T::pow10(e as u32).ok_or(too_big)?;
            acc = T::digit(d)
                .checked_mul(m)
                .and_then(|x| acc.checked_add(x))
                .ok_or(too_big)?;
        } else if e > -4 {
            let div = 10i32.pow((-e) as u32);
            acc = acc.checked_add(T::digit(d / div)).ok_or(too_big)?;
            round_up = (d % div) * 2 >= div;
            break;
        } else {
            round_up = e == -4 && d >= 5000;
            break;
        }
    }
    if round_up {
        acc = acc.checked_add(T::digit(1)).ok_or(too_big)?;
    }
    Ok(if sign == 0x4000 { acc.neg() } else { acc })
}

/// An Arrow builder for one column.
enum Builder {
    Bool(BooleanBuilder),
    Int16(Int16Builder),
    Int32(Int32Builder),
    Int64(Int64Builder),
    Float32(Float32Builder),
    Float64(Float64Builder),
    Dec128(Decimal128Builder, u8, i8),
    Dec256(Decimal256Builder, u8, i8),
    Text(StringBuilder),
    Binary(BinaryBuilder),
    Uuid(FixedSizeBinaryBuilder),
    Date(Date32Builder),
    Time(Time64MicrosecondBuilder),
    Timestamp(TimestampMicrosecondBuilder, Option<Arc<str>>),
}

impl Builder {
    /// The builder reading `ty` into Arrow `to`, if it is one that [`super::Encoder`] writes
    /// as `ty` unchanged.
    fn new(ty: PgType, to: &ArrowType) -> Option<Self> {
        use ArrowType as A;
        Some(match (ty, to) {
            (PgType::Bool, A::Boolean) => Self::Bool(BooleanBuilder::new()),
            (PgType::Int2, A::Int16) => Self::Int16(Int16Builder::new()),
            (PgType::Int4, A::Int32) => Self::Int32(Int32Builder::new()),
            (PgType::Int8, A::Int64) => Self::Int64(Int64Builder::new()),
            (PgType::Float4, A::Float32) => Self::Float32(Float32Builder::new()),
            (PgType::Float8, A::Float64) => Self::Float64(Float64Builder::new()),
            (PgType::Numeric, A::Decimal128(p, s)) => {
                Self::Dec128(Decimal128Builder::new(), *p, *s)
            }
            (PgType::Numeric, A::Decimal256(p, s)) => {
                Self::Dec256(Decimal256Builder::new(), *p, *s)
            }
            (PgType::Text | PgType::Json | PgType::Jsonb | PgType::Uuid, A::Utf8) => {
                Self::Text(StringBuilder::new())
            }
            (PgType::Bytea, A::Binary) => Self::Binary(BinaryBuilder::new()),
            (PgType::Uuid, A::FixedSizeBinary(16)) => Self::Uuid(FixedSizeBinaryBuilder::new(16)),
            (PgType::Date, A::Date32) => Self::Date(Date32Builder::new()),
            (PgType::Time, A::Time64(TimeUnit::Microsecond)) => {
                Self::Time(Time64MicrosecondBuilder::new())
            }
            (PgType::Timestamp, A::Timestamp(TimeUnit::Microsecond, tz)) => {
                Self::Timestamp(TimestampMicrosecondBuilder::new(), tz.clone())
            }
            _ => return None,
        })
    }

    fn scale(&self) -> i8 {
        match self {
            Self::Dec128(_, _, s) | Self::Dec256(_, _, s) => *s,
            _ => 0,
        }
    }

    fn append_null(&mut self) {
        match self {
            Self::Bool(b) => b.append_null(),
            Self::Int16(b) => b.append_null(),
            Self::Int32(b) => b.append_null(),
            Self::Int64(b) => b.append_null(),
            Self::Float32(b) => b.append_null(),
            Self::Float64(b) => b.append_null(),
            Self::Dec128(b, ..) => b.append_null(),
            Self::Dec256(b, ..) => b.append_null(),
            Self::Text(b) => b.append_null(),
            Self::Binary(b) => b.append_null(),
            Self::Uuid(b) => b.append_null(),
            Self::Date(b) => b.append_null(),
            Self::Time(b) => b.append_null(),
            Self::Timestamp(b, _) => b.append_null(),
        }
    }

    /// Appends field `v` of type `ty`; `Err` says why it does not fit.
    fn append(&mut self, ty: PgType, v: &[u8]) -> std::result::Result<(), String> {
        let too_many = "holds a value with more digits than the column's decimal";
        if let Self::Dec256(b, p, s) = self {
            let x = numeric_i256(v, *s).map_err(|e| format!("holds {e}"))?;
            let limit = i256::from_i128(10)
                .checked_pow(u32::from(*p))
                .unwrap_or(i256::MAX);
            if x >= limit || x <= limit.wrapping_neg() {
                return Err(too_many.into());
            }
            b.append_value(x);
            return Ok(());
        }
        let value = value(ty, self.scale(), v).map_err(|e| e.to_string())?;
        match (self, value) {
            (Self::Bool(b), Value::Bool(x)) => b.append_value(x),
            (Self::Int16(b), Value::Int2(x)) => b.append_value(x),
            (Self::Int32(b), Value::Int4(x)) => b.append_value(x),
            (Self::Int64(b), Value::Int8(x)) => b.append_value(x),
            (Self::Float32(b), Value::Float4(x)) => b.append_value(x),
            (Self::Float64(b), Value::Float8(x)) => b.append_value(x),
            (Self::Dec128(b, p, _), Value::Numeric(x)) => {
                if x.unsigned_abs() >= 10u128.pow(u32::from((*p).min(38))) {
                    return Err(too_many.into());
                }
                b.append_value(x)
            }
            (Self::Text(b), Value::Text(x)) => b.append_value(x),
            (Self::Text(b), Value::Uuid(x)) => b.append_value(uuid_text(&x, &mut [0; 36])),
            (Self::Binary(b), Value::Bytes(x)) => b.append_value(x),
            (Self::Uuid(b), Value::Uuid(x)) => b
                .append_value(x)
                .map_err(|e| format!("holds a uuid Arrow refuses: {e}"))?,
            (Self::Date(b), Value::Date(x)) => {
                b.append_value(i32::try_from(x).map_err(|_| FieldError::OutOfRange.to_string())?)
            }
            (Self::Time(b), Value::Time(x)) => b.append_value(x),
            (Self::Timestamp(b, _), Value::Timestamp(x)) => b.append_value(x),
            (_, v) => return Err(format!("holds {v:?}, which does not fit the column")),
        }
        Ok(())
    }

    fn finish(&mut self) -> Result<ArrayRef> {
        Ok(match self {
            Self::Bool(b) => Arc::new(b.finish()),
            Self::Int16(b) => Arc::new(b.finish()),
            Self::Int32(b) => Arc::new(b.finish()),
            Self::Int64(b) => Arc::new(b.finish()),
            Self::Float32(b) => Arc::new(b.finish()),
            Self::Float64(b) => Arc::new(b.finish()),
            Self::Dec128(b, p, s) => Arc::new(b.finish().with_precision_and_scale(*p, *s)?),
            Self::Dec256(b, p, s) => Arc::new(b.finish().with_precision_and_scale(*p, *s)?),
            Self::Text(b) => Arc::new(b.finish()),
            Self::Binary(b) => Arc::new(b.finish()),
            Self::Uuid(b) => Arc::new(b.finish()),
            Self::Date(b) => Arc::new(b.finish()),
            Self::Time(b) => Arc::new(b.finish()),
            Self::Timestamp(b, tz) => Arc::new(b.finish().with_timezone_opt(tz.clone())),
        })
    }
}

/// Reads a binary COPY stream into Arrow arrays of the types [`super::Encoder`] takes without
/// conversion: `bool` as `Boolean`, `int2`/`int4`/`int8` as `Int16`/`Int32`/`Int64`,
/// `float4`/`float8` as `Float32`/`Float64`, `numeric` as `Decimal128` or `Decimal256` (at
/// the field's precision and scale), `text`, `json` and `jsonb` as `Utf8`, `bytea` as `Binary`,
/// `uuid` as hyphenated `Utf8` or `FixedSizeBinary(16)`, `date` as `Date32`, `time` as
/// `Time64(µs)` and `timestamp[tz]` as `Timestamp(µs, zone)`.
pub struct ArrowDecoder {
    schema: SchemaRef,
    types: Vec<PgType>,
    builders: Vec<Builder>,
    reader: CopyReader,
    rows: usize,
}

impl std::fmt::Debug for ArrowDecoder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ArrowDecoder")
            .field("schema", &self.schema)
            .field("types", &self.types)
            .field("rows", &self.rows)
            .finish_non_exhaustive()
    }
}

impl ArrowDecoder {
    /// A decoder of tuples whose field `i` has wire form `types[i]` into column `i` of
    /// `schema`.
    pub fn new(schema: SchemaRef, types: &[PgType]) -> Result<Self> {
        if schema.fields().len() != types.len() {
            return Err(Error::internal(format!(
                "{} wire types for {} Arrow fields",
                types.len(),
                schema.fields().len()
            )));
        }
        let builders = schema
            .fields()
            .iter()
            .zip(types)
            .map(|(f, ty)| {
                Builder::new(*ty, f.data_type()).ok_or_else(|| {
                    Error::schema(format!(
                        "column `{}`: PostgreSQL {} is not read as Arrow {}",
                        f.name(),
                        ty.sql_name(),
                        f.data_type()
                    ))
                })
            })
            .collect::<Result<_>>()?;
        Ok(Self {
            schema,
            types: types.to_vec(),
            builders,
            reader: CopyReader::new(),
            rows: 0,
        })
    }

    /// Decodes the whole tuples of `chunk` (and of what earlier chunks left).
    pub fn decode(&mut self, chunk: &[u8]) -> Result<()> {
        let mut tuples = self
            .reader
            .feed(chunk)
            .map_err(|e| Error::data(e.to_string()))?;
        while let Some(tuple) = tuples.next() {
            if tuple.len() != self.types.len() {
                return Err(Error::data(format!(
                    "a tuple of {} fields for {} columns",
                    tuple.len(),
                    self.types.len()
                )));
            }
            for (((field, ty), b), f) in tuple
                .fields()
                .zip(&self.types)
                .zip(&mut self.builders)
                .zip(self.schema.fields())
            {
                match field {
                    None => b.append_null(),
                    Some(v) => b
                        .append(*ty, v)
                        .map_err(|what| Error::data(format!("column `{}`: {what}", f.name())))?,
                }
            }
            self.rows += 1;
        }
        Ok(())
    }

    /// Whether the stream's trailer was read.
    pub fn is_finished(&self) -> bool {
        self.reader.is_finished()
    }

    /// The rows decoded since the last batch.
    pub fn batch(&mut self) -> Result<RecordBatch> {
        let arrays = self
            .builders
            .iter_mut()
            .map(Builder::finish)
            .collect::<Result<Vec<_>>>()?;
        let rows = std::mem::take(&mut self.rows);
        let options = arrow_array::RecordBatchOptions::new().with_row_count(Some(rows));
        Ok(RecordBatch::try_new_with_options(
            self.schema.clone(),
            arrays,
            &options,
        )?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn num(ndigits: i16, weight: i16, sign: u16, dscale: u16, digits: &[i16]) -> Vec<u8> {
        let mut v = Vec::new();
        v.extend_from_slice(&ndigits.to_be_bytes());
        v.extend_from_slice(&weight.to_be_bytes());
        v.extend_from_slice(&sign.to_be_bytes());
        v.extend_from_slice(&dscale.to_be_bytes());
        for d in digits {
            v.extend_from_slice(&d.to_be_bytes());
        }
        v
    }

    #[test]
    fn binary_numerics_decode_at_the_column_scale() {
        // 12345.6789 = [1, 2345, 6789], weight 1
        let b = num(3, 1, 0, 4, &[1, 2345, 6789]);
        assert_eq!(numeric(&b, 4), Ok(123_456_789));
        assert_eq!(numeric(&b, 2), Ok(1_234_568), "rounded half up");
        assert_eq!(numeric(&b, 0), Ok(12_346));
        assert_eq!(numeric_i256(&b, 2), Ok(i256::from_i128(1_234_568)));
        // -0.00005 = [5000] at weight -2
        let b = num(1, -2, 0x4000, 5, &[5000]);
        assert_eq!(numeric(&b, 5), Ok(-5));
        assert_eq!(numeric(&b, 4), Ok(-1), "half away from zero");
        assert_eq!(numeric(&b, 3), Ok(0));
        assert_eq!(numeric_i256(&b, 4), Ok(i256::from_i128(-1)));
        // 10^40 does not fit 128 bits, but 256
        let b = num(1, 10, 0, 0, &[1]);
        assert!(numeric(&b, 0).is_err());
        assert_eq!(
            numeric_i256(&b, 0),
            Ok(i256::from_i128(10).checked_pow(40).expect("fits"))
        );
        assert!(numeric(&num(0, 0, 0xC000, 0, &[]), 2)
            .expect_err("NaN")
            .contains("NaN"));
        assert_eq!(numeric(&num(0, 0, 0, 0, &[]), 2), Ok(0));
        assert!(numeric(&num(3, 0, 0, 0, &[1]), 0).is_err(), "cut short");
    }

    #[test]
    fn fields_are_read_in_their_wire_form_or_refused() {
        assert_eq!(value(PgType::Int2, 0, &[0xff, 0xfe]), Ok(Value::Int2(-2)));
        assert_eq!(
            value(PgType::Int4, 0, &[0, 1]),
            Err(FieldError::Malformed(2))
        );
        assert_eq!(value(PgType::Jsonb, 0, b"\x01{}"), Ok(Value::Text("{}")));
        assert_eq!(
            value(PgType::Jsonb, 0, b"\x02{}"),
            Err(FieldError::JsonbVersion(2))
        );
        assert_eq!(value(PgType::Text, 0, b"\xff"), Err(FieldError::NotUtf8));
        assert_eq!(
            value(PgType::Date, 0, &i32::MAX.to_be_bytes()),
            Err(FieldError::InfiniteDate)
        );
        assert_eq!(
            value(PgType::Date, 0, &(-10_957i32).to_be_bytes()),
            Ok(Value::Date(0))
        );
        assert_eq!(
            value(PgType::Timestamp, 0, &i64::MIN.to_be_bytes()),
            Err(FieldError::InfiniteTimestamp)
        );
        assert_eq!(
            value(PgType::Timestamp, 0, &(i64::MAX - 1).to_be_bytes()),
            Err(FieldError::OutOfRange)
        );
        assert_eq!(
            FieldError::Malformed(3).to_string(),
            "has a field of 3 bytes that is malformed"
        );
    }

    #[test]
    fn a_stream_without_the_signature_is_refused_once_the_header_is_in() {
        let mut r = CopyReader::new();
        assert!(r.feed(b"1\t2\n").is_ok(), "too short to tell yet");
        assert_eq!(r.feed(b"3\t4\n5\t6\n7\t8\n9\t0\n").err(), Some(NotBinary));
    }
}
