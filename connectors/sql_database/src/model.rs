//! What reflection finds (tables, columns, their kinds) and how a column becomes Arrow: the
//! field for a reflection level, and a builder that the dialects append decoded values to.

use std::collections::HashMap;
use std::sync::Arc;

use arrow_array::builder::{
    BinaryBuilder, BooleanBuilder, Date32Builder, Decimal128Builder, Float32Builder,
    Float64Builder, Int16Builder, Int32Builder, Int64Builder, Int8Builder, StringBuilder,
    Time64MicrosecondBuilder, TimestampMicrosecondBuilder,
};
use arrow_array::{ArrayRef, RecordBatch};
use arrow_schema::{DataType as ArrowType, Field, SchemaRef, TimeUnit};
use serde_json::Value;
use sluice_sdk::prelude::*;

/// dlt's reflection levels.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Deserialize, serde::Serialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum ReflectionLevel {
    /// Names, nullability and primary keys.
    Minimal,
    /// Plus data types.
    #[default]
    Full,
    /// Plus integer widths, decimal precision and scale, text and binary lengths.
    FullWithPrecision,
}

/// How a column's values are decoded and typed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Bool,
    /// Integers by width in bytes (1, 2, 4, 8).
    Int(u8),
    /// An unsigned 64-bit integer: decimal(20, 0), which holds every value.
    UInt64,
    Float32,
    Float64,
    /// `None` when the database gives no precision (PostgreSQL's bare `numeric`).
    Decimal(Option<(u8, i8)>),
    Text,
    Json,
    Binary,
    Uuid,
    Date,
    Time,
    Timestamp {
        tz: bool,
    },
}

/// One reflected column.
#[derive(Debug, Clone)]
pub struct SqlColumn {
    /// Its name in the database.
    pub name: String,
    /// Its type as the database writes it (for messages and literals).
    pub sql_type: String,
    /// How values are decoded.
    pub kind: Kind,
    /// Whether NULL is allowed.
    pub nullable: bool,
    /// Character or byte length (`varchar(n)`, `binary(n)`).
    pub length: Option<u32>,
    /// Read as text (`text_columns`, or a type the database can only give as text).
    pub as_text: bool,
}

/// One reflected table.
#[derive(Debug, Clone)]
pub struct TableInfo {
    /// Its name in the database.
    pub name: String,
    /// Its columns, in order.
    pub columns: Vec<SqlColumn>,
    /// The primary key's columns, in key order.
    pub primary_key: Vec<String>,
}

/// dlt's default decimal, used when the database gives no precision.
const DEFAULT_DECIMAL: (u8, i8) = (38, 9);

impl SqlColumn {
    /// The decimal precision and scale the column loads with.
    fn decimal(&self, level: ReflectionLevel) -> (u8, i8) {
        match (self.kind, level) {
            (Kind::UInt64, _) => (20, 0),
            (Kind::Decimal(Some((p, s))), ReflectionLevel::FullWithPrecision) => (p, s),
            // dlt's default decimal(38,9), unless the column's values would not fit in it
            (Kind::Decimal(Some((p, s))), _) => {
                let (dp, ds) = DEFAULT_DECIMAL;
                if s <= ds && i16::from(p) - i16::from(s) <= i16::from(dp) - i16::from(ds) {
                    DEFAULT_DECIMAL
                } else {
                    (p, s)
                }
            }
            _ => DEFAULT_DECIMAL,
        }
    }

    /// The Arrow type of the column's batches at `level`.
    pub fn arrow_type(&self, level: ReflectionLevel) -> ArrowType {
        if self.as_text {
            return ArrowType::Utf8;
        }
        match self.kind {
            Kind::Bool => ArrowType::Boolean,
            Kind::Int(w) if level == ReflectionLevel::FullWithPrecision => match w {
                1 => ArrowType::Int8,
                2 => ArrowType::Int16,
                4 => ArrowType::Int32,
                _ => ArrowType::Int64,
            },
            Kind::Int(_) => ArrowType::Int64,
            Kind::UInt64 | Kind::Decimal(_) => {
                let (p, s) = self.decimal(level);
                ArrowType::Decimal128(p, s)
            }
            Kind::Float32 => ArrowType::Float32,
            Kind::Float64 => ArrowType::Float64,
            Kind::Text | Kind::Json | Kind::Uuid => ArrowType::Utf8,
            Kind::Binary => ArrowType::Binary,
            Kind::Date => ArrowType::Date32,
            Kind::Time => ArrowType::Time64(TimeUnit::Microsecond),
            Kind::Timestamp { tz } => {
                ArrowType::Timestamp(TimeUnit::Microsecond, tz.then(|| Arc::from("UTC")))
            }
        }
    }

    /// The Arrow field of the column.
    pub fn field(&self, level: ReflectionLevel) -> Field {
        let f = Field::new(&self.name, self.arrow_type(level), self.nullable);
        if self.kind == Kind::Json && !self.as_text {
            f.with_metadata(HashMap::from([("x-dlt-type".into(), "json".into())]))
        } else {
            f
        }
    }

    /// The column hint the resource declares (nullability always; lengths with precision).
    pub fn hint(&self, level: ReflectionLevel) -> Column {
        let mut c = Column {
            name: self.name.clone(),
            nullable: Some(self.nullable),
            ..Default::default()
        };
        if level == ReflectionLevel::FullWithPrecision
            && matches!(self.kind, Kind::Text | Kind::Binary)
            && !self.as_text
        {
            c.precision = self.length;
        }
        c
    }
}

/// The kind of a decimal of `precision` and `scale` as the database declares it: one that
/// Arrow's decimal128 cannot hold (precision over 38, a negative scale or one over the
/// precision) is read as text (the flag), so no value is cut.
pub fn decimal_kind(precision: i64, scale: i64) -> (Kind, bool) {
    if (1..=38).contains(&precision) && (0..=precision).contains(&scale) {
        (Kind::Decimal(Some((precision as u8, scale as i8))), false)
    } else {
        (Kind::Decimal(None), true)
    }
}

/// The error for a value that does not fit its column.
pub fn value_error(table: &str, column: &SqlColumn, what: impl std::fmt::Display) -> Error {
    Error::data(format!(
        "column `{}` ({}) of table `{table}`: {what}\nhint: read it as text (`tables.{table}.text_columns = [\"{}\"]`) or leave it out (`excluded_columns`)",
        column.name, column.sql_type, column.name
    ))
}

/// An Arrow builder for one column.
pub enum ColumnBuilder {
    Bool(BooleanBuilder),
    Int8(Int8Builder),
    Int16(Int16Builder),
    Int32(Int32Builder),
    Int64(Int64Builder),
    Float32(Float32Builder),
    Float64(Float64Builder),
    Decimal(Decimal128Builder, u8, i8),
    Text(StringBuilder),
    Binary(BinaryBuilder),
    Date(Date32Builder),
    Time(Time64MicrosecondBuilder),
    Timestamp(TimestampMicrosecondBuilder, Option<Arc<str>>),
}

impl ColumnBuilder {
    /// A builder for `ty` with room for `rows`.
    pub fn new(ty: &ArrowType, rows: usize) -> Self {
        match ty {
            ArrowType::Boolean => Self::Bool(BooleanBuilder::with_capacity(rows)),
            ArrowType::Int8 => Self::Int8(Int8Builder::with_capacity(rows)),
            ArrowType::Int16 => Self::Int16(Int16Builder::with_capacity(rows)),
            ArrowType::Int32 => Self::Int32(Int32Builder::with_capacity(rows)),
            ArrowType::Int64 => Self::Int64(Int64Builder::with_capacity(rows)),
            ArrowType::Float32 => Self::Float32(Float32Builder::with_capacity(rows)),
            ArrowType::Float64 => Self::Float64(Float64Builder::with_capacity(rows)),
            ArrowType::Decimal128(p, s) => {
                Self::Decimal(Decimal128Builder::with_capacity(rows), *p, *s)
            }
            ArrowType::Binary => Self::Binary(BinaryBuilder::with_capacity(rows, rows * 16)),
            ArrowType::Date32 => Self::Date(Date32Builder::with_capacity(rows)),
            ArrowType::Time64(_) => Self::Time(Time64MicrosecondBuilder::with_capacity(rows)),
            ArrowType::Timestamp(_, tz) => {
                Self::Timestamp(TimestampMicrosecondBuilder::with_capacity(rows), tz.clone())
            }
            _ => Self::Text(StringBuilder::with_capacity(rows, rows * 16)),
        }
    }

    /// The scale of a decimal column (0 for others).
    pub fn scale(&self) -> i8 {
        match self {
            Self::Decimal(_, _, s) => *s,
            _ => 0,
        }
    }

    /// Appends a NULL.
    pub fn append_null(&mut self) {
        match self {
            Self::Bool(b) => b.append_null(),
            Self::Int8(b) => b.append_null(),
            Self::Int16(b) => b.append_null(),
            Self::Int32(b) => b.append_null(),
            Self::Int64(b) => b.append_null(),
            Self::Float32(b) => b.append_null(),
            Self::Float64(b) => b.append_null(),
            Self::Decimal(b, _, _) => b.append_null(),
            Self::Text(b) => b.append_null(),
            Self::Binary(b) => b.append_null(),
            Self::Date(b) => b.append_null(),
            Self::Time(b) => b.append_null(),
            Self::Timestamp(b, _) => b.append_null(),
        }
    }

    /// Appends an integer; `false` when the builder is not an integer column or it does not fit.
    pub fn append_int(&mut self, v: i64) -> bool {
        match self {
            Self::Int8(b) => i8::try_from(v).map(|v| b.append_value(v)).is_ok(),
            Self::Int16(b) => i16::try_from(v).map(|v| b.append_value(v)).is_ok(),
            Self::Int32(b) => i32::try_from(v).map(|v| b.append_value(v)).is_ok(),
            Self::Int64(b) => {
                b.append_value(v);
                true
            }
            Self::Bool(b) => {
                b.append_value(v != 0);
                true
            }
            Self::Float64(b) => {
                b.append_value(v as f64);
                true
            }
            Self::Decimal(_, _, _) => self.append_decimal(i128::from(v), 0),
            _ => false,
        }
    }

    /// Appends a float (float columns only).
    pub fn append_float(&mut self, v: f64) -> bool {
        match self {
            Self::Float64(b) => b.append_value(v),
            Self::Float32(b) => b.append_value(v as f32),
            _ => return false,
        }
        true
    }

    /// Appends `unscaled * 10^-scale` to a decimal column (rescaled, rounding half away from
    /// zero); `false` when it does not fit the column's precision.
    pub fn append_decimal(&mut self, unscaled: i128, scale: i8) -> bool {
        let Self::Decimal(b, p, s) = self else {
            return false;
        };
        let Some(v) = rescale(unscaled, scale, *s) else {
            return false;
        };
        if v.unsigned_abs() >= 10u128.pow(u32::from(*p)) {
            return false;
        }
        b.append_value(v);
        true
    }

    /// Appends text (text columns only).
    pub fn append_str(&mut self, v: &str) -> bool {
        match self {
            Self::Text(b) => b.append_value(v),
            _ => return false,
        }
        true
    }

    /// Appends bytes (binary columns only).
    pub fn append_bytes(&mut self, v: &[u8]) -> bool {
        match self {
            Self::Binary(b) => b.append_value(v),
            _ => return false,
        }
        true
    }

    /// Appends days since 1970-01-01 (date columns), or microseconds (time, timestamp).
    pub fn append_temporal(&mut self, v: i64) -> bool {
        match self {
            Self::Date(b) => match i32::try_from(v) {
                Ok(d) => b.append_value(d),
                Err(_) => return false,
            },
            Self::Time(b) => b.append_value(v),
            Self::Timestamp(b, _) => b.append_value(v),
            _ => return false,
        }
        true
    }

    /// The finished array.
    pub fn finish(&mut self) -> ArrayRef {
        match self {
            Self::Bool(b) => Arc::new(b.finish()),
            Self::Int8(b) => Arc::new(b.finish()),
            Self::Int16(b) => Arc::new(b.finish()),
            Self::Int32(b) => Arc::new(b.finish()),
            Self::Int64(b) => Arc::new(b.finish()),
            Self::Float32(b) => Arc::new(b.finish()),
            Self::Float64(b) => Arc::new(b.finish()),
            Self::Decimal(b, p, s) => Arc::new(
                b.finish()
                    .with_precision_and_scale(*p, *s)
                    .expect("precision checked by the builder's type"),
            ),
            Self::Text(b) => Arc::new(b.finish()),
            Self::Binary(b) => Arc::new(b.finish()),
            Self::Date(b) => Arc::new(b.finish()),
            Self::Time(b) => Arc::new(b.finish()),
            Self::Timestamp(b, tz) => Arc::new(b.finish().with_timezone_opt(tz.clone())),
        }
    }
}

/// 16 bytes as a hyphenated lowercase UUID.
pub fn uuid_text(b: &[u8]) -> String {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(36);
    for (i, x) in b.iter().enumerate() {
        if matches!(i, 4 | 6 | 8 | 10) {
            s.push('-');
        }
        s.push(HEX[(x >> 4) as usize] as char);
        s.push(HEX[(x & 15) as usize] as char);
    }
    s
}

/// Days from 1970-01-01 to `d`.
pub fn days_since_epoch(d: chrono::NaiveDate) -> i64 {
    (d - chrono::NaiveDate::from_ymd_opt(1970, 1, 1).unwrap_or_default()).num_days()
}

/// `v * 10^(to - from)`, rounding half away from zero when the scale shrinks.
pub fn rescale(v: i128, from: i8, to: i8) -> Option<i128> {
    let d = i32::from(to) - i32::from(from);
    if d >= 0 {
        v.checked_mul(10i128.checked_pow(d as u32)?)
    } else {
        let div = 10i128.checked_pow((-d) as u32)?;
        let q = v / div;
        let r = (v % div).abs();
        Some(if r * 2 >= div { q + v.signum() } else { q })
    }
}

/// Parses a decimal literal (`-12.345`, `1e3` not accepted) to `unscaled` at `scale`.
pub fn parse_decimal(s: &str, scale: i8) -> Option<i128> {
    let s = s.trim();
    let (neg, digits) = match s.as_bytes().first() {
        Some(b'-') => (true, &s[1..]),
        Some(b'+') => (false, &s[1..]),
        _ => (false, s),
    };
    let (int, frac) = digits.split_once('.').unwrap_or((digits, ""));
    if int.is_empty() && frac.is_empty()
        || !int.bytes().all(|b| b.is_ascii_digit())
        || !frac.bytes().all(|b| b.is_ascii_digit())
    {
        return None;
    }
    let mut v: i128 = 0;
    for b in int.bytes().chain(frac.bytes().take(38)) {
        v = v.checked_mul(10)?.checked_add(i128::from(b - b'0'))?;
    }
    let from = i8::try_from(frac.len().min(38)).ok()?;
    let v = rescale(v, from, scale)?;
    Some(if neg { -v } else { v })
}

/// Collects rows into builders and hands out batches of `chunk_size` rows.
pub struct BatchAssembler {
    pub schema: SchemaRef,
    pub builders: Vec<ColumnBuilder>,
    pub rows: usize,
    pub chunk_size: usize,
}

impl BatchAssembler {
    /// Builders for `schema`.
    pub fn new(schema: SchemaRef, chunk_size: usize) -> Self {
        let builders = schema
            .fields()
            .iter()
            .map(|f| ColumnBuilder::new(f.data_type(), chunk_size.min(65536)))
            .collect();
        Self {
            schema,
            builders,
            rows: 0,
            chunk_size: chunk_size.max(1),
        }
    }

    /// Whether a batch is due.
    pub fn is_full(&self) -> bool {
        self.rows >= self.chunk_size
    }

    /// Counts a row appended to every builder and sends the batch when one is due (stopping
    /// there if the host cancelled the run).
    pub async fn row_done(&mut self, sink: &BatchSink) -> Result<()> {
        self.rows += 1;
        if self.is_full() {
            if sink.cancel().is_cancelled() {
                return Err(Error::cancelled());
            }
            if let Some(batch) = self.finish()? {
                sink.send(batch).await?;
            }
        }
        Ok(())
    }

    /// The rows so far as a batch (`None` when there are none).
    pub fn finish(&mut self) -> Result<Option<RecordBatch>> {
        if self.rows == 0 {
            return Ok(None);
        }
        let arrays: Vec<ArrayRef> = self.builders.iter_mut().map(|b| b.finish()).collect();
        self.rows = 0;
        RecordBatch::try_new(self.schema.clone(), arrays)
            .map(Some)
            .map_err(|e| Error::internal(format!("assembling a batch: {e}")))
    }
}

/// A JSON value as SQL literal text (numbers bare, strings quoted with quotes doubled; the
/// PostgreSQL session has `standard_conforming_strings` on, so backslashes are plain).
pub fn literal(v: &Value) -> Option<String> {
    match v {
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(if *b { "TRUE".into() } else { "FALSE".into() }),
        Value::String(s) => Some(format!("'{}'", s.replace('\'', "''"))),
        _ => None,
    }
}

/// A string literal for MySQL, where a backslash escapes unless `NO_BACKSLASH_ESCAPES`: both
/// escaped, so the value cannot end the literal either way.
pub fn mysql_string(s: &str) -> String {
    format!("'{}'", s.replace('\\', "\\\\").replace('\'', "''"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decimals_rescale_and_parse_with_rounding() {
        assert_eq!(rescale(12345, 3, 2), Some(1235));
        assert_eq!(rescale(-12345, 3, 2), Some(-1235));
        assert_eq!(rescale(12344, 3, 2), Some(1234));
        assert_eq!(rescale(12, 0, 3), Some(12000));
        assert_eq!(parse_decimal("-12.345", 2), Some(-1235));
        assert_eq!(parse_decimal("0.5", 0), Some(1));
        assert_eq!(parse_decimal("7", 2), Some(700));
        assert_eq!(parse_decimal(".25", 2), Some(25));
        assert_eq!(parse_decimal("1e3", 0), None);
        assert_eq!(parse_decimal("", 0), None);
        assert_eq!(
            parse_decimal("99999999999999999999999999999.999999999", 9),
            Some(99_999_999_999_999_999_999_999_999_999_999_999_999)
        );
    }

    #[test]
    fn decimal_builders_refuse_what_does_not_fit() {
        let mut b = ColumnBuilder::new(&ArrowType::Decimal128(5, 2), 4);
        assert!(b.append_decimal(12345, 2));
        assert!(!b.append_decimal(123456, 2), "1234.56 does not fit (5,2)");
        assert!(b.append_decimal(-999995, 4), "rounds to -100.00");
        let a = b.finish();
        let d = a
            .as_any()
            .downcast_ref::<arrow_array::Decimal128Array>()
            .expect("decimal");
        assert_eq!(d.value(0), 12345);
        assert_eq!(d.value(1), -10000);
    }

    #[test]
    fn full_reflection_uses_dlts_default_decimal_when_values_fit() {
        let col = |p, s| SqlColumn {
            name: "x".into(),
            sql_type: format!("numeric({p},{s})"),
            kind: Kind::Decimal(Some((p, s))),
            nullable: true,
            length: None,
            as_text: false,
        };
        assert_eq!(
            col(10, 2).arrow_type(ReflectionLevel::Full),
            ArrowType::Decimal128(38, 9)
        );
        assert_eq!(
            col(10, 2).arrow_type(ReflectionLevel::FullWithPrecision),
            ArrowType::Decimal128(10, 2)
        );
        assert_eq!(
            col(38, 20).arrow_type(ReflectionLevel::Full),
            ArrowType::Decimal128(38, 20),
            "more fraction digits than the default holds: kept"
        );
        assert_eq!(
            col(36, 0).arrow_type(ReflectionLevel::Full),
            ArrowType::Decimal128(36, 0),
            "more integer digits than the default holds: kept"
        );
    }

    #[test]
    fn mysql_literals_cannot_be_ended_by_a_backslash() {
        assert_eq!(mysql_string("\\' OR 1=1 -- "), "'\\\\'' OR 1=1 -- '");
        assert_eq!(decimal_kind(10, 2), (Kind::Decimal(Some((10, 2))), false));
        assert!(decimal_kind(65, 30).1, "over 38 digits: text");
        assert!(decimal_kind(2, 5).1, "scale over precision: text");
        assert!(decimal_kind(5, -2).1, "negative scale: text");
    }

    #[test]
    fn literals_quote_strings() {
        assert_eq!(literal(&serde_json::json!("it's")), Some("'it''s'".into()));
        assert_eq!(literal(&serde_json::json!(3)), Some("3".into()));
        assert_eq!(literal(&serde_json::json!(null)), None);
    }
}
