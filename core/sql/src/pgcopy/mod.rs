//! PostgreSQL's binary COPY format (`COPY ... (FORMAT binary)`), written once for the
//! postgres destination (which loads Arrow batches with `COPY ... FROM STDIN`) and the
//! sql_database source (which reads tables with `COPY (SELECT ...) TO STDOUT`).
//!
//! A stream is [`HEADER`] (the signature `PGCOPY\n\xff\r\n\0`, 32-bit flags, a 32-bit header
//! extension length and that many bytes), then one tuple per row: a 16-bit field count, and
//! per field a 32-bit length (-1 for NULL) and that many bytes, then [`TRAILER`] (a field
//! count of -1). Integers are big-endian. Each value is in its type's `send`/`recv` form:
//!
//! | type | bytes |
//! |---|---|
//! | `bool` | 1: 0 or 1 |
//! | `int2`, `int4`, `int8` | 2, 4, 8 |
//! | `float4`, `float8` | IEEE 754 bits, 4 or 8 |
//! | `numeric` | digit count, weight (power of 10000 of the first digit), sign (`0x4000` negative, `0xC000` NaN, `0xD000` / `0xF000` ±Infinity), display scale, then base-10000 digits, all 16-bit |
//! | `text`, `varchar`, `json` | UTF-8 text |
//! | `jsonb` | version byte 1, then the text |
//! | `bytea` | the bytes |
//! | `uuid` | 16 bytes |
//! | `date` | days since 2000-01-01, 32-bit (`i32::MIN` / `i32::MAX` for ±infinity) |
//! | `time` | microseconds since midnight, 64-bit |
//! | `timestamp`, `timestamptz` | microseconds since 2000-01-01 00:00 (UTC for `timestamptz`), 64-bit (`i64::MIN` / `i64::MAX` for ±infinity) |
//!
//! - [`encode`]: each value's writer, and [`Encoder`], which writes Arrow batches column by
//!   column in the wire form of each target column's [`PgType`].
//! - [`decode`]: [`CopyReader`], which cuts a stream arriving in chunks into whole tuples,
//!   [`decode::value`], which reads one field of a [`PgType`], and [`ArrowDecoder`], which
//!   reads a stream back into the Arrow types the encoder takes.
//!
//! ```
//! use std::sync::Arc;
//! use arrow_array::{ArrayRef, Int32Array, RecordBatch, StringArray};
//! use sluice_sql::pgcopy::{ArrowDecoder, Column, Encoder, PgType, HEADER, TRAILER};
//!
//! let batch = RecordBatch::try_from_iter([
//!     ("id", Arc::new(Int32Array::from(vec![Some(1), None])) as ArrayRef),
//!     ("name", Arc::new(StringArray::from(vec![Some("ünï"), Some("")])) as ArrayRef),
//! ])?;
//! let columns = vec![
//!     Column::new("id", PgType::Int4),
//!     Column::new("name", PgType::Text),
//! ];
//! let mut stream = HEADER.to_vec();
//! Encoder::new("t", columns).encode(&batch, &mut stream)?;
//! stream.extend_from_slice(TRAILER);
//!
//! let mut decoder = ArrowDecoder::new(batch.schema(), &[PgType::Int4, PgType::Text])?;
//! decoder.decode(&stream)?;
//! assert!(decoder.is_finished());
//! assert_eq!(decoder.batch()?, batch);
//! # Ok::<(), sluice_sdk::Error>(())
//! ```

pub mod decode;
pub mod encode;
#[cfg(test)]
mod tests;

pub use decode::{ArrowDecoder, CopyReader, FieldError, Tuple, Tuples, Value};
pub use encode::{Column, Encoder};

/// The binary COPY header: signature, flags (0), header extension length (0).
pub const HEADER: &[u8] = b"PGCOPY\n\xff\r\n\0\0\0\0\0\0\0\0\0";
/// The signature that opens every binary COPY stream.
pub const SIGNATURE: &[u8] = b"PGCOPY\n\xff\r\n\0";
/// The binary COPY trailer: a field count of -1.
pub const TRAILER: &[u8] = &[0xff, 0xff];
/// The version byte before the text of a binary `jsonb`.
pub const JSONB_VERSION: u8 = 1;

/// Days from 1970-01-01 to PostgreSQL's epoch 2000-01-01.
pub const EPOCH_DAYS: i32 = 10_957;
/// Microseconds from 1970-01-01 to PostgreSQL's epoch 2000-01-01.
pub const EPOCH_MICROS: i64 = 946_684_800_000_000;

/// The wire form of a column: the PostgreSQL types that binary COPY sends and receives alike
/// share one (`varchar` and `text`, `timestamp` and `timestamptz`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PgType {
    /// `boolean`
    Bool,
    /// `smallint`
    Int2,
    /// `integer`
    Int4,
    /// `bigint`
    Int8,
    /// `real`
    Float4,
    /// `double precision`
    Float8,
    /// `text`, `varchar`, `char`, `name`, `citext`, and any type read as `::text`
    Text,
    /// `jsonb`: the text after a version byte
    Jsonb,
    /// `json`: the text as it is
    Json,
    /// `bytea`
    Bytea,
    /// `uuid`
    Uuid,
    /// `date`
    Date,
    /// `timestamp [(p)] with[out] time zone` (the same wire form)
    Timestamp,
    /// `time [(p)] without time zone`
    Time,
    /// `numeric(p,s)`
    Numeric,
}

impl PgType {
    /// The type's SQL name as dlt's DDL writes it, for messages.
    pub fn sql_name(self) -> &'static str {
        match self {
            Self::Bool => "boolean",
            Self::Int2 => "smallint",
            Self::Int4 => "integer",
            Self::Int8 => "bigint",
            Self::Float4 => "real",
            Self::Float8 => "double precision",
            Self::Text => "varchar",
            Self::Jsonb => "jsonb",
            Self::Json => "json",
            Self::Bytea => "bytea",
            Self::Uuid => "uuid",
            Self::Date => "date",
            Self::Timestamp => "timestamp",
            Self::Time => "time",
            Self::Numeric => "numeric",
        }
    }

    /// The wire form of PostgreSQL type `typname` (`pg_type.typname`), or `None` for a type
    /// that binary COPY does not send in one of these forms.
    pub fn from_catalog(typname: &str) -> Option<Self> {
        Some(match typname {
            "bool" => Self::Bool,
            "int2" => Self::Int2,
            "int4" => Self::Int4,
            "int8" => Self::Int8,
            "float4" => Self::Float4,
            "float8" => Self::Float8,
            "text" | "varchar" | "bpchar" | "name" | "citext" => Self::Text,
            "jsonb" => Self::Jsonb,
            "json" => Self::Json,
            "bytea" => Self::Bytea,
            "uuid" => Self::Uuid,
            "date" => Self::Date,
            "timestamp" | "timestamptz" => Self::Timestamp,
            "time" => Self::Time,
            "numeric" => Self::Numeric,
            _ => return None,
        })
    }
}

/// Days since 2000-01-01 of a day counted from 1970-01-01 (`None` past `i32`).
#[inline]
pub fn date_to_pg(days: i32) -> Option<i32> {
    days.checked_sub(EPOCH_DAYS)
}

/// Days since 1970-01-01 of a day counted from 2000-01-01.
#[inline]
pub fn date_from_pg(days: i32) -> i64 {
    i64::from(days) + i64::from(EPOCH_DAYS)
}

/// Microseconds since 2000-01-01 of an instant counted from 1970-01-01 (`None` past `i64`).
#[inline]
pub fn timestamp_to_pg(micros: i64) -> Option<i64> {
    micros.checked_sub(EPOCH_MICROS)
}

/// Microseconds since 1970-01-01 of an instant counted from 2000-01-01 (`None` past `i64`).
#[inline]
pub fn timestamp_from_pg(micros: i64) -> Option<i64> {
    micros.checked_add(EPOCH_MICROS)
}

/// A UUID's 16 bytes as hyphenated lowercase text, written into `buf` (no allocation).
pub fn uuid_text<'b>(bytes: &[u8; 16], buf: &'b mut [u8; 36]) -> &'b str {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let mut o = 0;
    for (i, x) in bytes.iter().enumerate() {
        if matches!(i, 4 | 6 | 8 | 10) {
            buf[o] = b'-';
            o += 1;
        }
        buf[o] = HEX[usize::from(x >> 4)];
        buf[o + 1] = HEX[usize::from(x & 15)];
        o += 2;
    }
    // only ASCII hex digits and hyphens were written
    std::str::from_utf8(buf).unwrap_or_default()
}

/// A UUID's 16 bytes from its text: 32 hex digits, with or without hyphens, optionally in
/// braces (the forms PostgreSQL's `uuid_in` takes).
pub fn uuid_parse(text: &str) -> Option<[u8; 16]> {
    let t = text.trim();
    let t = t
        .strip_prefix('{')
        .and_then(|t| t.strip_suffix('}'))
        .unwrap_or(t);
    let mut out = [0u8; 16];
    let mut n = 0usize;
    let mut high: Option<u8> = None;
    for c in t.bytes() {
        if c == b'-' && high.is_none() && n > 0 && n < 16 {
            continue;
        }
        let d = (c as char).to_digit(16)? as u8;
        match high.take() {
            None => high = Some(d),
            Some(h) => {
                *out.get_mut(n)? = (h << 4) | d;
                n += 1;
            }
        }
    }
    (n == 16 && high.is_none()).then_some(out)
}
