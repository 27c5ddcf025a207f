//! Values as the normalizer sees them, and typed values after coercion into a column.

use std::borrow::Cow;

pub use sluice_sdk::schema::DataType;

/// A scalar value of a document (or one field of a typed row), before it is fitted into a
/// column. Nested objects and arrays only reach coercion as [`Scalar::Json`] (their compact
/// JSON text), when they are stored in a `json` column.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Scalar<'a> {
    /// JSON `null` / a missing value.
    Null,
    /// A boolean.
    Bool(bool),
    /// An integer in the `i64` range.
    Int(i64),
    /// An integer above `i64::MAX` that fits `u64`.
    UInt(u64),
    /// An integer literal beyond 64 bits: optional `-`, then digits.
    BigInt(&'a str),
    /// A floating point number (finite).
    Float(f64),
    /// A string.
    Str(&'a str),
    /// An object or array, as compact JSON text (keys in document order).
    Json(&'a str),
    /// A Python `Decimal`: the text after dlt's typed-JSON marker U+F026 of a string (how dlt
    /// carries a `Decimal` through its JSON load files), which reads as `Decimal(text)` (see
    /// [`decimal_marker`]).
    Decimal(&'a str),
}

/// dlt's typed-JSON marker of a `Decimal` (`dlt.common.json._DECIMAL`, the first of its
/// private-use markers U+F026..).
pub const DECIMAL_MARKER: char = '\u{F026}';

/// The decimal text of a string that starts with dlt's decimal marker and reads as a finite
/// `Decimal` (dlt's normalizer decodes such strings with `custom_pua_decode`; a string whose
/// rest does not parse stays a string, marker included, as in dlt).
#[inline]
pub fn decimal_marker(s: &str) -> Option<&str> {
    // U+F026 is EF 80 A6 in UTF-8: one byte compare on the common path
    if s.as_bytes().first() != Some(&0xEF) {
        return None;
    }
    let rest = s.strip_prefix(DECIMAL_MARKER)?;
    crate::pycompat::decimal::is_py_decimal(rest).then_some(rest)
}

impl Scalar<'_> {
    /// dlt's type of the value as it arrives (spec c.2: str -> text, int -> bigint,
    /// float -> double, bool -> bool, dict/list -> json). `None` for null.
    ///
    /// Integers beyond the `i64` range are `text` (documented difference: dlt types them
    /// `bigint` and then fails to load them; sluice keeps their digits exactly, in a text
    /// column or a `__v_text` variant, unless the column is `wei`/`decimal`, which takes them).
    pub fn py_type(&self) -> Option<DataType> {
        Some(match self {
            Scalar::Null => return None,
            Scalar::Bool(_) => DataType::Bool,
            Scalar::Int(_) => DataType::Bigint,
            Scalar::UInt(_) | Scalar::BigInt(_) => DataType::Text,
            Scalar::Float(_) => DataType::Double,
            Scalar::Str(_) => DataType::Text,
            Scalar::Json(_) => DataType::Json,
            Scalar::Decimal(_) => DataType::Decimal,
        })
    }
}

/// A value coerced into a column's type, ready for the column buffer.
#[derive(Debug, Clone, PartialEq)]
pub enum Coerced<'a> {
    /// Text.
    Text(Cow<'a, str>),
    /// 64-bit integer.
    Bigint(i64),
    /// 64-bit float.
    Double(f64),
    /// Boolean.
    Bool(bool),
    /// Microseconds since the Unix epoch, UTC (naive input is taken as UTC).
    Timestamp(i64),
    /// Days since the Unix epoch.
    Date(i32),
    /// Microseconds since midnight.
    Time(i64),
    /// A decimal number as canonical text (`-12.3456`, `5`); the column buffer scales and
    /// rounds it to the column's precision and scale.
    Decimal(Cow<'a, str>),
    /// An integer of any size as decimal digits (optional `-`), for `wei` columns.
    Wei(Cow<'a, str>),
    /// Bytes.
    Binary(Cow<'a, [u8]>),
    /// JSON text (compact).
    Json(Cow<'a, str>),
}

impl Coerced<'_> {
    /// The data type this value is stored as.
    pub fn data_type(&self) -> DataType {
        match self {
            Coerced::Text(_) => DataType::Text,
            Coerced::Bigint(_) => DataType::Bigint,
            Coerced::Double(_) => DataType::Double,
            Coerced::Bool(_) => DataType::Bool,
            Coerced::Timestamp(_) => DataType::Timestamp,
            Coerced::Date(_) => DataType::Date,
            Coerced::Time(_) => DataType::Time,
            Coerced::Decimal(_) => DataType::Decimal,
            Coerced::Wei(_) => DataType::Wei,
            Coerced::Binary(_) => DataType::Binary,
            Coerced::Json(_) => DataType::Json,
        }
    }
}
