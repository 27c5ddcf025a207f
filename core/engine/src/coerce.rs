//! Coercion of values into column types (spec c.4), as dlt 1.31's `coerce_value` does it.
//!
//! A value whose type equals the column's is kept as is (the hot path: no allocation, borrowed
//! text and JSON). Otherwise the pair (column type ← value type) is looked up in dlt's dispatch
//! table (`dlt/common/data_types/type_helpers.py`); a pair that is not there, or a conversion
//! that raises `ValueError`, returns `Err(())` and the caller makes a variant column.
//!
//! The conversions, as verified against dlt 1.31 (Python 3.11, pendulum 3.3, orjson):
//! * text ← any scalar: Python's `str()`: `True`/`False`, `repr()` of floats (`2.5`, `1e+20`,
//!   `1e-05`, `100.0`; shortest digits with exact ties broken to even, as CPython's dtoa:
//!   `114030231829.07812`), JSON as its compact text.
//! * bigint ← text: `str.strip()`, then `int(s)` (sign, `_` between digits, Unicode digits,
//!   surrounding whitespace) or, after a literal `0x`, `int(rest, 16)` (which itself allows
//!   `0x`/`0X`, a sign and whitespace: `0x-1f` is -31). bigint ← double only when integral.
//! * double ← text (`float()`: also `nan`, `inf`, `1_0.5`; `0x` as for bigint) / bigint.
//! * bool ← text (`yes/true/t/y/1`, `no/false/f/n/0`, any case, no trimming) / numbers
//!   (truthiness). bool → anything other than text fails.
//! * timestamp ← text (`parse_iso_like` rules; a date is midnight; a time fails; anything else
//!   that `float()` reads is unix seconds: `"1700000000"`), ← bigint / double (unix seconds).
//! * date ← text: Python's `date.fromisoformat` first (3.11's C version, which ignores what
//!   follows a 10-byte prefix: `2024101915` is 2024-10-19), then as timestamp ← text and the
//!   date in UTC (`2024-01-01T23:00:00-05:00` is 2024-01-02); ← bigint / double (unix seconds).
//! * time ← text: only strings that parse to a time of day; an offset is applied (UTC).
//! * decimal ← text (`Decimal()`: whitespace stripped first, then every `_` dropped, so `5__0`
//!   is 50 but `2 _` fails; exponents allowed) / bigint / double (through `repr`, so 0.1 is
//!   exactly `0.1`). wei ← the same.
//! * binary ← text (`0x` + `bytes.fromhex`, else `base64.b64decode(validate=True)`, which in
//!   Python 3.11.7 is strict: exact padding, no leading `=`; an empty string is zero bytes and
//!   `abcd` is base64) / bigint (`to_bytes(n, "little")`, minimal length, negative fails).
//! * json ← text (orjson's `loads`: standard JSON only; integers beyond 64 bits become floats).
//!
//! Decisions where dlt cannot be followed exactly:
//! * Python's ints have no bounds: dlt keeps an int beyond `i64` in a bigint column (the load
//!   then fails) and 1e20 → bigint gives 100000000000000000000. Here every bigint result beyond
//!   `i64` (also `u64` values and literals beyond 64 bits) is `Err` (variant).
//! * Timestamps are microseconds: pendulum's parser drops digits past the sixth (truncation);
//!   unix seconds given as a float are rounded half-even to the microsecond, as CPython's
//!   `datetime.fromtimestamp` does. Years outside 1..=9999 fail.
//! * Decimals are returned as plain text (no exponent: `1E+3` → `1000`, `1e-05` → `0.00001`),
//!   keeping the digits Python's `Decimal` keeps (`1.50`, `-0`). `NaN`/`Infinity`, which
//!   `Decimal()` accepts (the load then fails), are `Err` here, as are decimals whose plain text
//!   would exceed [`MAX_DECIMAL_CHARS`].
//! * [`Coerced::Wei`] holds integers, so a wei from a non-integral decimal (`"1.5"`, 2.5),
//!   which dlt keeps as `Wei('1.5')`, is `Err`. When a NEW column is typed wei, dlt also turns
//!   a wei beyond ±578960446186580977117854925043439539266 into a `text` variant; that decision
//!   belongs to the caller.
//! * JSON text is re-serialized compactly by `serde_json` (keys in order, a repeated key keeps
//!   its first place and last value, floats in shortest form, e.g. `[1e2]` → `[100.0]`, like
//!   orjson's dumps). serde_json limits nesting to 128 levels where orjson allows 1024.
//! * The context timezone is UTC (dlt's default); the `timezone` hint does not change the
//!   stored instant (naive columns keep UTC wall time), so no [`ColumnHints`] field currently
//!   changes a coercion result.
//! * Python `Decimal`s arrive as [`Scalar::Decimal`]: a string opened by dlt's typed-JSON
//!   decimal marker U+F026 (how dlt's own load files carry them) whose rest reads as a finite
//!   `Decimal`; they coerce as dlt's `coerce_value` does from `decimal` (`str(Decimal)`, which
//!   may be scientific: `1E+3`; `int()` of an integral value; `float()`; `bool()`; nothing
//!   else). dlt's other markers (datetime, date, time, uuid, bytes, wei: U+F027..U+F02D) are
//!   not decoded: such strings stay text. dlt strips all of its markers from strings inside
//!   json values; sluice keeps json values as given (markers included).
//! * Cases where dlt crashes instead of raising `ValueError` (`"10:"` into a time column:
//!   `TypeError`; 1e17 into a timestamp: `OSError`; offsets of ±24h or more) are `Err` here.

use std::borrow::Cow;

use base64::Engine as _;

use crate::pycompat::binary::{b64decode_validate, bytes_fromhex, decimal_to_le_bytes, le_bytes};
use crate::pycompat::calendar::{
    civil_from_days, MAX_MICROS, MICROS_PER_DAY, MICROS_PER_SEC, MIN_MICROS,
};
use crate::pycompat::date::date_fromisoformat;
use crate::pycompat::decimal::{is_plain_decimal, PyDecimal};
pub use crate::pycompat::float::float_repr;
use crate::pycompat::float::py_float;
use crate::pycompat::int::PyInt;
use crate::pycompat::iso8601::{parse_iso_like, ParsedTime};
use crate::pycompat::text::py_strip;
use crate::types::{Coerced, DataType, Scalar};

/// Column properties that affect coercion.
///
/// dlt's coercions do not read them today (see the module docs); they are passed so that the
/// rules stay in one place when they do.
#[derive(Debug, Clone, Copy, Default)]
pub struct ColumnHints {
    /// `precision` of the column.
    pub precision: Option<u32>,
    /// `scale` of the column.
    pub scale: Option<u32>,
    /// `timezone` of a timestamp column (`None` means dlt's default, true).
    pub timezone: Option<bool>,
}

/// The longest plain text of a decimal (or wei) accepted from text or a float.
pub const MAX_DECIMAL_CHARS: usize = 4096;

/// Coerces `value` into a column of type `to`. `Err(())` means dlt would raise ValueError (the
/// caller then creates a variant column). Null never reaches this function.
#[allow(
    clippy::result_unit_err,
    reason = "the only failure is 'make a variant'"
)]
#[inline]
pub fn coerce<'a>(to: DataType, value: &Scalar<'a>, hints: ColumnHints) -> Result<Coerced<'a>, ()> {
    match (to, *value) {
        (DataType::Text, Scalar::Str(s)) => Ok(Coerced::Text(Cow::Borrowed(s))),
        (DataType::Bigint, Scalar::Int(i)) => Ok(Coerced::Bigint(i)),
        (DataType::Double, Scalar::Float(f)) => Ok(Coerced::Double(f)),
        (DataType::Bool, Scalar::Bool(b)) => Ok(Coerced::Bool(b)),
        (DataType::Json, Scalar::Json(j)) => Ok(Coerced::Json(Cow::Borrowed(j))),
        _ => coerce_other(to, *value, hints),
    }
}

/// Every pair but the same-type ones of [`coerce`].
#[inline(never)]
fn coerce_other<'a>(
    to: DataType,
    value: Scalar<'a>,
    _hints: ColumnHints,
) -> Result<Coerced<'a>, ()> {
    if value == Scalar::Null {
        return Err(());
    }
    Ok(match to {
        DataType::Text => Coerced::Text(scalar_text(value)),
        DataType::Bigint => Coerced::Bigint(to_bigint(value)?),
        DataType::Double => Coerced::Double(to_double(value)?),
        DataType::Bool => Coerced::Bool(to_bool(value)?),
        DataType::Timestamp => Coerced::Timestamp(to_timestamp(value)?),
        DataType::Date => Coerced::Date(to_date(value)?),
        DataType::Time => match value {
            Scalar::Str(s) => Coerced::Time(text_to_time(s)?),
            _ => return Err(()),
        },
        DataType::Decimal => Coerced::Decimal(to_decimal(value, false)?),
        DataType::Wei => Coerced::Wei(to_decimal(value, true)?),
        DataType::Binary => Coerced::Binary(Cow::Owned(to_binary(value)?)),
        DataType::Json => match value {
            Scalar::Json(j) => Coerced::Json(Cow::Borrowed(j)),
            Scalar::Str(s) => Coerced::Json(text_to_json(s)?),
            _ => return Err(()),
        },
    })
}

/// Formats a Coerced value as text the way dlt's `str()` would (used for text <- other and for
/// messages): Python `repr` of floats, `True`/`False`, ISO 8601 (`isoformat()`) for
/// timestamps (always UTC, `+00:00`), dates and times, base64 for bytes, decimals as their
/// plain text.
pub fn to_text<'b>(value: &'b Coerced<'_>) -> Cow<'b, str> {
    match value {
        Coerced::Text(s) | Coerced::Decimal(s) | Coerced::Wei(s) | Coerced::Json(s) => {
            Cow::Borrowed(s.as_ref())
        }
        Coerced::Bigint(i) => Cow::Owned(itoa::Buffer::new().format(*i).to_owned()),
        Coerced::Double(f) => Cow::Owned(float_repr(*f)),
        Coerced::Bool(b) => Cow::Borrowed(if *b { "True" } else { "False" }),
        Coerced::Timestamp(us) => {
            let mut s = format_date(us.div_euclid(MICROS_PER_DAY));
            s.push('T');
            s.push_str(&format_time(us.rem_euclid(MICROS_PER_DAY)));
            s.push_str("+00:00");
            Cow::Owned(s)
        }
        Coerced::Date(d) => Cow::Owned(format_date(i64::from(*d))),
        Coerced::Time(us) => Cow::Owned(format_time(*us)),
        Coerced::Binary(b) => Cow::Owned(base64::engine::general_purpose::STANDARD.encode(b)),
    }
}

fn format_date(days: i64) -> String {
    let (y, m, d) = civil_from_days(days);
    format!("{y:04}-{m:02}-{d:02}")
}

/// `time.isoformat()`: `HH:MM:SS`, plus `.ffffff` when there are microseconds.
fn format_time(us: i64) -> String {
    let secs = us / MICROS_PER_SEC;
    let (h, m, s, frac) = (secs / 3600, secs / 60 % 60, secs % 60, us % MICROS_PER_SEC);
    if frac == 0 {
        format!("{h:02}:{m:02}:{s:02}")
    } else {
        format!("{h:02}:{m:02}:{s:02}.{frac:06}")
    }
}

// ------------------------------------------------------------------------------------------
// per target type

fn scalar_text(value: Scalar<'_>) -> Cow<'_, str> {
    match value {
        // `str(Decimal)`
        Scalar::Decimal(t) => match PyDecimal::parse(t) {
            Some(d) => Cow::Owned(d.sci_string()),
            None => Cow::Borrowed(t),
        },
        Scalar::Str(s) | Scalar::BigInt(s) | Scalar::Json(s) => Cow::Borrowed(s),
        Scalar::Bool(b) => Cow::Borrowed(if b { "True" } else { "False" }),
        Scalar::Int(i) => Cow::Owned(itoa::Buffer::new().format(i).to_owned()),
        Scalar::UInt(u) => Cow::Owned(itoa::Buffer::new().format(u).to_owned()),
        Scalar::Float(f) => Cow::Owned(float_repr(f)),
        Scalar::Null => Cow::Borrowed("None"),
    }
}

fn to_bigint(value: Scalar<'_>) -> Result<i64, ()> {
    match value {
        Scalar::Int(i) => Ok(i),
        // `value % 1 != 0` raises, else `int(value)`, which must fit i64 here
        Scalar::Decimal(t) => PyDecimal::parse(t)
            .ok_or(())?
            .plain(true)?
            .parse::<i64>()
            .map_err(|_| ()),
        Scalar::Float(f) => float_to_i64(f),
        Scalar::Str(s) => {
            let t = py_strip(s);
            let int = match t.strip_prefix("0x") {
                Some(hex) => PyInt::parse(hex, 16),
                None => PyInt::parse(t, 10),
            };
            int.ok_or(())?.to_i64()
        }
        // bool is not coercible; ints beyond i64 do not fit (see module docs)
        _ => Err(()),
    }
}

/// `value % 1 != 0` raises, else `int(value)`, which must fit i64 here.
fn float_to_i64(f: f64) -> Result<i64, ()> {
    if !f.is_finite() || f.fract() != 0.0 {
        return Err(());
    }
    // i64 range is [-2^63, 2^63)
    if (-9_223_372_036_854_775_808.0..9_223_372_036_854_775_808.0).contains(&f) {
        Ok(f as i64)
    } else {
        Err(())
    }
}

fn to_double(value: Scalar<'_>) -> Result<f64, ()> {
    match value {
        Scalar::Float(f) => Ok(f),
        // `float(Decimal)`: correctly rounded
        Scalar::Decimal(t) => {
            let d = PyDecimal::parse(t).ok_or(())?;
            let sign = if d.negative { "-" } else { "" };
            format!("{sign}{}e{}", d.coefficient, d.exponent)
                .parse::<f64>()
                .map_err(|_| ())
        }
        Scalar::Int(i) => Ok(i as f64),
        Scalar::UInt(u) => Ok(u as f64),
        Scalar::BigInt(s) => finite(s.parse::<f64>().map_err(|_| ())?),
        Scalar::Str(s) => {
            let t = py_strip(s);
            match t.strip_prefix("0x") {
                // float(int(rest, 16)): exact int, correctly rounded, OverflowError past f64
                Some(hex) => {
                    let int = PyInt::parse(hex, 16).ok_or(())?;
                    finite(int.to_decimal_string().parse::<f64>().map_err(|_| ())?)
                }
                None => py_float(t).ok_or(()),
            }
        }
        _ => Err(()),
    }
}

fn finite(f: f64) -> Result<f64, ()> {
    if f.is_finite() {
        Ok(f)
    } else {
        Err(())
    }
}

fn to_bool(value: Scalar<'_>) -> Result<bool, ()> {
    match value {
        Scalar::Bool(b) => Ok(b),
        Scalar::Int(i) => Ok(i != 0),
        Scalar::UInt(u) => Ok(u != 0),
        Scalar::BigInt(s) => Ok(s.bytes().any(|c| (b'1'..=b'9').contains(&c))),
        Scalar::Float(f) => Ok(f != 0.0),
        Scalar::Decimal(t) => Ok(PyDecimal::parse(t).ok_or(())?.coefficient != "0"),
        Scalar::Str(s) => str2bool(s),
        _ => Err(()),
    }
}

/// `dlt.common.utils.str2bool`: `v.lower()` against fixed words (only ASCII letters can lower
/// to them, so an ASCII case fold is exact).
fn str2bool(s: &str) -> Result<bool, ()> {
    const TRUE: [&str; 5] = ["yes", "true", "t", "y", "1"];
    const FALSE: [&str; 5] = ["no", "false", "f", "n", "0"];
    if TRUE.iter().any(|w| w.eq_ignore_ascii_case(s)) {
        Ok(true)
    } else if FALSE.iter().any(|w| w.eq_ignore_ascii_case(s)) {
        Ok(false)
    } else {
        Err(())
    }
}

fn to_timestamp(value: Scalar<'_>) -> Result<i64, ()> {
    match value {
        Scalar::Int(i) => timestamp_from_secs(i),
        Scalar::Float(f) => timestamp_from_float(f),
        Scalar::Str(s) => text_to_timestamp(s),
        _ => Err(()),
    }
}

/// `pendulum.from_timestamp(int)`: years 1..=9999 only.
fn timestamp_from_secs(secs: i64) -> Result<i64, ()> {
    const MIN_SECS: i64 = MIN_MICROS / MICROS_PER_SEC;
    const MAX_SECS: i64 = MAX_MICROS / MICROS_PER_SEC;
    if (MIN_SECS..=MAX_SECS).contains(&secs) {
        Ok(secs * MICROS_PER_SEC)
    } else {
        Err(())
    }
}

/// `pendulum.from_timestamp(float)`, i.e. CPython's `datetime.fromtimestamp`: the fraction of
/// a second (`modf`) times 10^6, rounded half to even.
fn timestamp_from_float(f: f64) -> Result<i64, ()> {
    if !f.is_finite() {
        return Err(());
    }
    let mut secs = f.trunc();
    let mut micros = ((f - secs) * 1e6).round_ties_even();
    if micros >= 1e6 {
        micros -= 1e6;
        secs += 1.0;
    } else if micros < 0.0 {
        micros += 1e6;
        secs -= 1.0;
    }
    if !(-1e15..1e15).contains(&secs) {
        return Err(());
    }
    Ok(timestamp_from_secs(secs as i64)? + micros as i64)
}

/// `dlt.common.time.ensure_datetime(str)`: ISO-like parse (a date is midnight, a time fails),
/// else `float(value)` as unix seconds.
fn text_to_timestamp(s: &str) -> Result<i64, ()> {
    match parse_iso_like(s) {
        Some(ParsedTime::DateTime { micros_utc, .. }) => Ok(micros_utc),
        Some(ParsedTime::Date(days)) => Ok(i64::from(days) * MICROS_PER_DAY),
        Some(ParsedTime::Time(_)) => Err(()),
        // every string the ISO parser accepts contains a char `float()` rejects, so strings it
        // accepted but could not convert to UTC fail here too, as they do in dlt
        None => timestamp_from_float(py_float(s).ok_or(())?),
    }
}

fn to_date(value: Scalar<'_>) -> Result<i32, ()> {
    let micros = match value {
        Scalar::Str(s) => {
            if let Some(days) = date_fromisoformat(s) {
                return Ok(days);
            }
            text_to_timestamp(s)?
        }
        Scalar::Int(i) => timestamp_from_secs(i)?,
        Scalar::Float(f) => timestamp_from_float(f)?,
        _ => return Err(()),
    };
    i32::try_from(micros.div_euclid(MICROS_PER_DAY)).map_err(|_| ())
}

/// `ensure_pendulum_time(str)`: the string must parse to a time of day.
fn text_to_time(s: &str) -> Result<i64, ()> {
    match parse_iso_like(s) {
        Some(ParsedTime::Time(us)) => Ok(us),
        _ => Err(()),
    }
}

/// decimal (or, with `integral`, wei) from a scalar.
fn to_decimal(value: Scalar<'_>, integral: bool) -> Result<Cow<'_, str>, ()> {
    match value {
        Scalar::Int(i) => Ok(Cow::Owned(itoa::Buffer::new().format(i).to_owned())),
        Scalar::UInt(u) => Ok(Cow::Owned(itoa::Buffer::new().format(u).to_owned())),
        Scalar::BigInt(s) => Ok(Cow::Borrowed(s)),
        Scalar::Float(f) => {
            let repr = float_repr(f);
            let dec = PyDecimal::parse(&repr).ok_or(())?;
            Ok(Cow::Owned(dec.plain(integral)?))
        }
        // `Decimal(value)` / `Wei(value)` of a Decimal
        Scalar::Decimal(t) => {
            if is_plain_decimal(t) && (!integral || !t.contains('.')) && t != "-0" {
                return Ok(Cow::Borrowed(t));
            }
            let dec = PyDecimal::parse(t).ok_or(())?;
            Ok(Cow::Owned(dec.plain(integral)?))
        }
        Scalar::Str(s) => {
            let t = py_strip(s);
            if let Some(hex) = t.strip_prefix("0x") {
                return Ok(Cow::Owned(
                    PyInt::parse(hex, 16).ok_or(())?.to_decimal_string(),
                ));
            }
            if is_plain_decimal(t) && (!integral || !t.contains('.')) && t != "-0" {
                return Ok(Cow::Borrowed(t));
            }
            let dec = PyDecimal::parse(t).ok_or(())?;
            Ok(Cow::Owned(dec.plain(integral)?))
        }
        _ => Err(()),
    }
}

fn to_binary(value: Scalar<'_>) -> Result<Vec<u8>, ()> {
    match value {
        Scalar::Str(s) => match s.strip_prefix("0x") {
            Some(hex) => bytes_fromhex(hex),
            None => b64decode_validate(s),
        },
        // int.to_bytes((bit_length + 7) // 8, "little"); negative raises OverflowError
        Scalar::Int(i) => u64::try_from(i).map(le_bytes).map_err(|_| ()),
        Scalar::UInt(u) => Ok(le_bytes(u)),
        Scalar::BigInt(s) => {
            if s.starts_with('-') {
                return Err(());
            }
            Ok(decimal_to_le_bytes(s.as_bytes()))
        }
        _ => Err(()),
    }
}

/// orjson's `loads`, re-serialized compactly; borrowed when the text is already that.
fn text_to_json(s: &str) -> Result<Cow<'_, str>, ()> {
    let value: serde_json::Value = match negative_zero_ints_to_zero(s) {
        Some(fixed) => serde_json::from_str(&fixed),
        None => serde_json::from_str(s),
    }
    .map_err(|_| ())?;
    let out = serde_json::to_string(&value).map_err(|_| ())?;
    Ok(if out == s {
        Cow::Borrowed(s)
    } else {
        Cow::Owned(out)
    })
}

/// serde_json reads the integer `-0` as the float `-0.0`, orjson as the int `0`: rewrites
/// `-0` tokens (outside strings, not followed by a fraction or exponent) to ` 0`. `None` when
/// there are none.
fn negative_zero_ints_to_zero(s: &str) -> Option<String> {
    if !s.contains("-0") {
        return None;
    }
    let b = s.as_bytes();
    let mut fixed: Option<Vec<u8>> = None;
    let (mut in_string, mut escaped) = (false, false);
    for i in 0..b.len() {
        let c = b[i];
        if in_string {
            if escaped {
                escaped = false;
            } else if c == b'\\' {
                escaped = true;
            } else if c == b'"' {
                in_string = false;
            }
        } else if c == b'"' {
            in_string = true;
        } else if c == b'-'
            // a sign, not an exponent's
            && (i == 0 || !matches!(b[i - 1], b'e' | b'E'))
            && b.get(i + 1) == Some(&b'0')
            && !matches!(b.get(i + 2), Some(b'.' | b'e' | b'E' | b'0'..=b'9'))
        {
            fixed.get_or_insert_with(|| b.to_vec())[i] = b' ';
        }
    }
    // only an ASCII byte was replaced by another
    fixed.and_then(|f| String::from_utf8(f).ok())
}

#[cfg(test)]
#[allow(clippy::unwrap_used, reason = "a test fails loudly")]
mod tests {
    use super::*;
    use serde_json::Value;

    const GOLDEN: &str = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../tests/golden/type_cases.json"
    );

    fn c<'a>(to: DataType, v: Scalar<'a>) -> Result<Coerced<'a>, ()> {
        coerce(to, &v, ColumnHints::default())
    }

    fn text(s: &str) -> Coerced<'_> {
        Coerced::Text(Cow::Borrowed(s))
    }

    fn micros(s: &str) -> i64 {
        if let Ok(d) = chrono::DateTime::parse_from_str(s, "%Y-%m-%d %H:%M:%S%.f%:z") {
            return d.timestamp_micros();
        }
        let naive = chrono::NaiveDateTime::parse_from_str(s, "%Y-%m-%d %H:%M:%S%.f")
            .unwrap_or_else(|e| panic!("bad datetime {s}: {e}"));
        naive.and_utc().timestamp_micros()
    }

    fn days(s: &str) -> i32 {
        let d =
            chrono::NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap_or_else(|e| panic!("{s}: {e}"));
        (d - chrono::NaiveDate::from_ymd_opt(1970, 1, 1).unwrap()).num_days() as i32
    }

    fn time_micros(s: &str) -> i64 {
        let t = chrono::NaiveTime::parse_from_str(s, "%H:%M:%S%.f")
            .unwrap_or_else(|e| panic!("{s}: {e}"));
        (t - chrono::NaiveTime::MIN).num_microseconds().unwrap()
    }

    /// The golden `result` notation as the value we must produce.
    fn expected(to: DataType, result: &Value) -> Coerced<'static> {
        match result {
            Value::Bool(b) => Coerced::Bool(*b),
            Value::Number(n) if to == DataType::Double => Coerced::Double(n.as_f64().unwrap()),
            Value::Number(n) => Coerced::Bigint(n.as_i64().unwrap()),
            Value::String(s) => {
                let owned = |x: &str| Cow::Owned(x.to_owned());
                match s.split_once(':') {
                    Some(("datetime" | "DateTime", v)) => Coerced::Timestamp(micros(v)),
                    Some(("Date", v)) => Coerced::Date(days(v)),
                    Some(("Time", v)) => Coerced::Time(time_micros(v)),
                    Some(("Decimal", v)) => Coerced::Decimal(owned(v)),
                    Some(("Wei", v)) => Coerced::Wei(owned(v)),
                    Some(("bytes", v)) => {
                        let bytes = (0..v.len() / 2)
                            .map(|i| u8::from_str_radix(&v[2 * i..2 * i + 2], 16).unwrap())
                            .collect();
                        Coerced::Binary(Cow::Owned(bytes))
                    }
                    _ => Coerced::Text(owned(s)),
                }
            }
            other => Coerced::Json(Cow::Owned(serde_json::to_string(other).unwrap())),
        }
    }

    fn data_type(name: &str) -> DataType {
        serde_json::from_value(Value::String(name.to_owned())).unwrap()
    }

    #[test]
    fn golden_type_cases() {
        let doc: Value = serde_json::from_str(&std::fs::read_to_string(GOLDEN).unwrap()).unwrap();
        let mut passed = 0;

        let coercions = doc["coercion"].as_array().unwrap();
        for case in coercions {
            let to = data_type(case["to"].as_str().unwrap());
            let from = case["from"].as_str().unwrap();
            let value = &case["value"];
            let json_text = serde_json::to_string(value).unwrap();
            if from == "timestamp" {
                // no scalar is a timestamp: check the text form of a timestamp value
                let Some(ParsedTime::DateTime { micros_utc, .. }) =
                    parse_iso_like(value.as_str().unwrap())
                else {
                    panic!("{case}");
                };
                assert_eq!(to, DataType::Text);
                assert_eq!(
                    to_text(&Coerced::Timestamp(micros_utc)),
                    case["result"].as_str().unwrap(),
                    "{case}"
                );
                passed += 1;
                continue;
            }
            let scalar = match from {
                "text" => Scalar::Str(value.as_str().unwrap()),
                "bigint" => Scalar::Int(value.as_i64().unwrap()),
                "double" => Scalar::Float(value.as_f64().unwrap()),
                "bool" => Scalar::Bool(value.as_bool().unwrap()),
                "json" => Scalar::Json(&json_text),
                other => panic!("unexpected source type {other}"),
            };
            assert_eq!(scalar.py_type(), Some(data_type(from)));
            let got = coerce(to, &scalar, ColumnHints::default());
            if case.get("error").is_some() {
                assert_eq!(got, Err(()), "{case}");
            } else {
                let want = expected(to, &case["result"]);
                let got = got.unwrap_or_else(|()| panic!("failed: {case}"));
                match (&got, &want) {
                    (Coerced::Json(g), Coerced::Json(w)) => {
                        let g: Value = serde_json::from_str(g).unwrap();
                        let w: Value = serde_json::from_str(w).unwrap();
                        assert_eq!(g, w, "{case}");
                    }
                    _ => assert_eq!(got, want, "{case}"),
                }
            }
            passed += 1;
        }
        assert_eq!(passed, coercions.len());

        // inference: the values of golden/unit_cases.py that a JSON document can carry
        let all = [
            crate::detect::Detection::IsoTimestamp,
            crate::detect::Detection::IsoDate,
            crate::detect::Detection::LargeInteger,
            crate::detect::Detection::Timestamp,
        ];
        let inference = doc["inference"].as_array().unwrap();
        let mut inferred = 0;
        for case in inference {
            let scalar = match case["label"].as_str().unwrap() {
                "str" => Scalar::Str("abc"),
                "int" => Scalar::Int(1),
                "float" => Scalar::Float(1.5),
                "bool" => Scalar::Bool(true),
                "dict" => Scalar::Json(r#"{"a":1}"#),
                "list" => Scalar::Json("[1]"),
                "iso_ts_str" => Scalar::Str("2024-01-01T00:00:00Z"),
                "iso_date_str" => Scalar::Str("2024-01-01"),
                "big_int" => Scalar::UInt(1 << 63),
                "huge_int" => Scalar::BigInt("10000000000000000000000000000000000000000"),
                // Decimal, datetime, date, time, bytes: Python objects, never a JSON scalar
                _ => continue,
            };
            let detected = |v: &Value| v.as_str().map(data_type);
            let want_py = data_type(case["py_type_to_sc_type"].as_str().unwrap());
            if matches!(scalar, Scalar::UInt(_) | Scalar::BigInt(_)) {
                // documented difference (types.rs): dlt says bigint and then fails to load
                // the value; sluice types integers beyond i64 as text to keep their digits
                assert_eq!(want_py, DataType::Bigint, "{case}");
                assert_eq!(scalar.py_type(), Some(DataType::Text), "{case}");
            } else {
                assert_eq!(scalar.py_type(), Some(want_py), "{case}");
            }
            assert_eq!(
                crate::detect::autodetect(&[crate::detect::Detection::IsoTimestamp], &scalar),
                detected(&case["default_detections(iso_timestamp)"]),
                "{case}"
            );
            assert_eq!(
                crate::detect::autodetect(&all, &scalar),
                detected(&case["all_detections"]),
                "{case}"
            );
            inferred += 1;
        }
        assert_eq!(inferred, 10);
        eprintln!(
            "golden: {passed}/{} coercions, {inferred}/{} inference cases",
            coercions.len(),
            inference.len()
        );
    }

    #[test]
    fn same_type_is_borrowed() {
        let s = String::from("hello");
        match c(DataType::Text, Scalar::Str(&s)) {
            Ok(Coerced::Text(Cow::Borrowed(b))) => assert!(std::ptr::eq(b, s.as_str())),
            other => panic!("{other:?}"),
        }
        assert!(matches!(
            c(DataType::Json, Scalar::Json("[1]")),
            Ok(Coerced::Json(Cow::Borrowed("[1]")))
        ));
        assert_eq!(
            c(DataType::Bigint, Scalar::Int(-3)),
            Ok(Coerced::Bigint(-3))
        );
        assert_eq!(
            c(DataType::Double, Scalar::Float(0.5)),
            Ok(Coerced::Double(0.5))
        );
        assert_eq!(
            c(DataType::Bool, Scalar::Bool(false)),
            Ok(Coerced::Bool(false))
        );
        assert_eq!(c(DataType::Text, Scalar::Null), Err(()));
    }

    #[test]
    fn text_from_scalars_like_python_str() {
        let t = |v: Scalar<'_>| match c(DataType::Text, v) {
            Ok(Coerced::Text(s)) => s.into_owned(),
            other => panic!("{other:?}"),
        };
        assert_eq!(t(Scalar::Bool(false)), "False");
        assert_eq!(t(Scalar::Int(-5)), "-5");
        assert_eq!(t(Scalar::UInt(u64::MAX)), "18446744073709551615");
        assert_eq!(
            t(Scalar::BigInt("-123456789012345678901234")),
            "-123456789012345678901234"
        );
        assert_eq!(t(Scalar::Json(r#"{"a":[1]}"#)), r#"{"a":[1]}"#);
        // repr(float), each checked in Python 3.11
        for (f, s) in [
            (2.5, "2.5"),
            (1e20, "1e+20"),
            (1e-5, "1e-05"),
            (100.0, "100.0"),
            (1e16, "1e+16"),
            (1234567890123456.0, "1234567890123456.0"),
            (0.0001, "0.0001"),
            (-0.0, "-0.0"),
            (0.0, "0.0"),
            (1.5e300, "1.5e+300"),
            (5e-324, "5e-324"),
            (0.1 + 0.2, "0.30000000000000004"),
            (1e22, "1e+22"),
            (123456789012345678.0, "1.2345678901234568e+17"),
            (-1.25e-7, "-1.25e-07"),
            (114030231829.07812, "114030231829.07812"),
            (-1883816349491543.2, "-1883816349491543.2"),
            (1e-4, "0.0001"),
            (123.456, "123.456"),
            (1.7976931348623157e308, "1.7976931348623157e+308"),
            (f64::NAN, "nan"),
            (f64::NEG_INFINITY, "-inf"),
        ] {
            assert_eq!(t(Scalar::Float(f)), s);
            assert_eq!(float_repr(f), s);
        }
    }

    #[test]
    fn bigint_and_double_from_text_like_python() {
        let big = |s: &'static str| c(DataType::Bigint, Scalar::Str(s));
        let dbl = |s: &'static str| c(DataType::Double, Scalar::Str(s));
        for (s, i) in [
            (" 5 ", 5),
            ("+5", 5),
            ("5_000", 5000),
            ("٥", 5),
            ("0x1f", 31),
            ("0x 1f", 31),
            ("0x-1f", -31),
            ("0x0x1f", 31),
            ("0x0x_1f", 31),
            ("-0", 0),
            ("\t5\n", 5),
            ("\u{1c}5", 5),
            ("007", 7),
            ("-9223372036854775808", i64::MIN),
            ("0x7fffffffffffffff", i64::MAX),
        ] {
            assert_eq!(big(s), Ok(Coerced::Bigint(i)), "{s:?}");
        }
        for s in [
            "0X1F",
            "0x_1f",
            "1.0",
            "1e3",
            "5__0",
            "_5",
            "5_",
            "0x",
            "0b101",
            "abc",
            "",
            "9223372036854775808",
            "0x8000000000000000",
            "1 2",
        ] {
            assert_eq!(big(s), Err(()), "{s:?}");
        }
        for (s, f) in [
            (" 5 ", 5.0),
            ("1e3", 1000.0),
            ("5_000", 5000.0),
            ("1_0.5", 10.5),
            ("٥", 5.0),
            ("0x1f", 31.0),
            ("0x-1f", -31.0),
            ("inf", f64::INFINITY),
            ("-Infinity", f64::NEG_INFINITY),
            (".5", 0.5),
            ("5.", 5.0),
            ("9223372036854775808", 9.223372036854776e18),
            ("0xffffffffffffffffffff", 1.2089258196146292e24),
        ] {
            assert_eq!(dbl(s), Ok(Coerced::Double(f)), "{s:?}");
        }
        assert!(matches!(dbl("nan"), Ok(Coerced::Double(f)) if f.is_nan()));
        for s in [
            "5__0", "_5", "5_", "0X1F", "1e", ".", "e5", "1 0", "0x", "infinit",
        ] {
            assert_eq!(dbl(s), Err(()), "{s:?}");
        }
        // numbers
        assert_eq!(
            c(DataType::Bigint, Scalar::Float(-0.0)),
            Ok(Coerced::Bigint(0))
        );
        assert_eq!(
            c(DataType::Bigint, Scalar::Float(1e16)),
            Ok(Coerced::Bigint(10_000_000_000_000_000))
        );
        assert_eq!(c(DataType::Bigint, Scalar::Float(1e20)), Err(()));
        assert_eq!(c(DataType::Bigint, Scalar::Float(5e-324)), Err(()));
        assert_eq!(c(DataType::Bigint, Scalar::UInt(1 << 63)), Err(()));
        assert_eq!(c(DataType::Bigint, Scalar::Json("[1]")), Err(()));
        assert_eq!(
            c(DataType::Double, Scalar::UInt(u64::MAX)),
            Ok(Coerced::Double(1.8446744073709552e19))
        );
        assert_eq!(
            c(DataType::Double, Scalar::BigInt("100000000000000000000")),
            Ok(Coerced::Double(1e20))
        );
        assert_eq!(c(DataType::Double, Scalar::Bool(true)), Err(()));
    }

    #[test]
    fn bool_like_str2bool_and_truthiness() {
        let b = |v: Scalar<'static>| c(DataType::Bool, v);
        for (s, v) in [
            ("yes", true),
            ("YES", true),
            ("Y", true),
            ("1", true),
            ("TRUE", true),
            ("f", false),
            ("0", false),
            ("No", false),
        ] {
            assert_eq!(b(Scalar::Str(s)), Ok(Coerced::Bool(v)), "{s:?}");
        }
        for s in [" yes", "", "maybe", "2", "on"] {
            assert_eq!(b(Scalar::Str(s)), Err(()), "{s:?}");
        }
        assert_eq!(b(Scalar::Int(0)), Ok(Coerced::Bool(false)));
        assert_eq!(b(Scalar::Int(-2)), Ok(Coerced::Bool(true)));
        assert_eq!(b(Scalar::Float(0.0)), Ok(Coerced::Bool(false)));
        assert_eq!(b(Scalar::Float(0.1)), Ok(Coerced::Bool(true)));
        assert_eq!(b(Scalar::UInt(u64::MAX)), Ok(Coerced::Bool(true)));
        assert_eq!(
            b(Scalar::BigInt("100000000000000000000")),
            Ok(Coerced::Bool(true))
        );
        assert_eq!(b(Scalar::Json("{}")), Err(()));
    }

    #[test]
    fn timestamps_dates_times_like_dlt() {
        let ts = |v: Scalar<'static>| c(DataType::Timestamp, v);
        let at = |s: &str| Ok(Coerced::Timestamp(micros(s)));
        // text, each checked with coerce_value('timestamp', 'text', ...)
        assert_eq!(
            ts(Scalar::Str("2024-01-15T10:30:00+02:00")),
            at("2024-01-15 08:30:00")
        );
        assert_eq!(
            ts(Scalar::Str("2024-01-15T10:30:00.1234569Z")),
            at("2024-01-15 10:30:00.123456")
        );
        assert_eq!(ts(Scalar::Str("2024")), at("2024-01-01 00:00:00"));
        assert_eq!(ts(Scalar::Str("1700000000")), at("2023-11-14 22:13:20"));
        assert_eq!(ts(Scalar::Str(" 1700000000 ")), at("2023-11-14 22:13:20"));
        assert_eq!(ts(Scalar::Str("1700000000.5")), at("2023-11-14 22:13:20.5"));
        assert_eq!(ts(Scalar::Str("1_700_000_000")), at("2023-11-14 22:13:20"));
        assert_eq!(ts(Scalar::Str("١٧٠٠٠٠٠٠٠٠")), at("2023-11-14 22:13:20"));
        assert_eq!(ts(Scalar::Str("-1")), at("1969-12-31 23:59:59"));
        for s in [
            "inf",
            "nan",
            "1e20",
            "10:30",
            "10:",
            "P1D",
            "0x10",
            "garbage",
            "2024-01-01/2024-01-02",
            "2024-01-15T10:30:00-25:00",
            "2024-01-15T10:30:00+24:00",
            "9999-12-31T23:59:59-01:00",
        ] {
            assert_eq!(ts(Scalar::Str(s)), Err(()), "{s:?}");
        }
        // numbers: pendulum.from_timestamp
        assert_eq!(ts(Scalar::Int(-62_135_596_800)), at("0001-01-01 00:00:00"));
        assert_eq!(ts(Scalar::Int(253_402_300_799)), at("9999-12-31 23:59:59"));
        assert_eq!(ts(Scalar::Int(-62_135_596_801)), Err(()));
        assert_eq!(ts(Scalar::Int(253_402_300_800)), Err(()));
        assert_eq!(ts(Scalar::Int(100_000_000_000_000_000)), Err(()));
        assert_eq!(ts(Scalar::UInt(1 << 63)), Err(()));
        assert_eq!(
            ts(Scalar::Float(1700000000.0000005)),
            at("2023-11-14 22:13:20")
        );
        assert_eq!(
            ts(Scalar::Float(1700000000.0000014)),
            at("2023-11-14 22:13:20.000001")
        );
        assert_eq!(ts(Scalar::Float(5e-7)), at("1970-01-01 00:00:00"));
        assert_eq!(ts(Scalar::Float(-5e-7)), at("1970-01-01 00:00:00"));
        assert_eq!(ts(Scalar::Float(-1.5)), at("1969-12-31 23:59:58.5"));
        assert_eq!(ts(Scalar::Float(253402300800.0)), Err(()));
        assert_eq!(ts(Scalar::Bool(true)), Err(()));

        let date = |v: Scalar<'static>| c(DataType::Date, v);
        let day = |s: &str| Ok(Coerced::Date(days(s)));
        assert_eq!(date(Scalar::Str("2024-01-01T23:00:00Z")), day("2024-01-01"));
        assert_eq!(
            date(Scalar::Str("2024-01-01T23:00:00-05:00")),
            day("2024-01-02")
        );
        assert_eq!(
            date(Scalar::Str("2024-01-15T10:30:00+23:59")),
            day("2024-01-14")
        );
        assert_eq!(date(Scalar::Str("2024-01-01T23:00:00")), day("2024-01-01"));
        assert_eq!(date(Scalar::Str("1700000000")), day("2023-11-14"));
        assert_eq!(date(Scalar::Str("2024")), day("2024-01-01"));
        // CPython 3.11 date.fromisoformat reads a prefix of 10-byte strings
        assert_eq!(date(Scalar::Str("2024101915")), day("2024-10-19"));
        assert_eq!(date(Scalar::Str("20240503-2")), day("2024-05-03"));
        assert_eq!(date(Scalar::Str("2024W01315")), day("2024-01-03"));
        assert_eq!(date(Scalar::Str("2024W403-2")), day("2024-10-02"));
        assert_eq!(date(Scalar::Str("20240115é")), day("2024-01-15"));
        assert_eq!(date(Scalar::Str("2024-W03")), day("2024-01-15"));
        assert_eq!(date(Scalar::Str("2020-W53-7")), day("2021-01-03"));
        assert_eq!(date(Scalar::Str("2024-W00-1")), day("2023-12-25"));
        for s in [
            "10:30",
            "2024-13-45",
            "garbage",
            "9999-12-31T23:59:59-01:00",
            "0001-01-01T00:00:00+01:00",
            "2024-01-15T10:30:00+24:00",
        ] {
            assert_eq!(date(Scalar::Str(s)), Err(()), "{s:?}");
        }
        assert_eq!(date(Scalar::Int(1_700_000_000)), day("2023-11-14"));
        assert_eq!(date(Scalar::Float(-1.5)), day("1969-12-31"));
        assert_eq!(date(Scalar::Bool(false)), Err(()));

        let time = |s: &'static str| c(DataType::Time, Scalar::Str(s));
        let tod = |s: &str| Ok(Coerced::Time(time_micros(s)));
        assert_eq!(time("10:30:00"), tod("10:30:00"));
        assert_eq!(time("10:30:00Z"), tod("10:30:00"));
        assert_eq!(time("T10:30+02:00"), tod("08:30:00"));
        assert_eq!(time("00:30+02:00"), tod("22:30:00"));
        assert_eq!(time("T1030"), tod("10:30:00"));
        assert_eq!(time("10:30:00.1234567"), tod("10:30:00.123456"));
        assert_eq!(time(" 10:30"), tod("10:30:00"));
        assert_eq!(time("10:30:00+0530"), tod("05:00:00"));
        assert_eq!(time("1:2"), tod("01:02:00"));
        for s in [
            "10:30:00-25:00",
            "24:00",
            "1030",
            "10:",
            "2024-01-01T10:00:00",
            "2024",
            "10:60",
            "23:59:60",
            "10:30:00.",
        ] {
            assert_eq!(time(s), Err(()), "{s:?}");
        }
        assert_eq!(c(DataType::Time, Scalar::Int(5)), Err(()));
    }

    #[test]
    fn decimal_and_wei_like_python_decimal() {
        let dec = |v: Scalar<'static>| c(DataType::Decimal, v);
        let wei = |v: Scalar<'static>| c(DataType::Wei, v);
        let d = |s: &str| Ok(Coerced::Decimal(Cow::Owned(s.to_owned())));
        let w = |s: &str| Ok(Coerced::Wei(Cow::Owned(s.to_owned())));
        for (s, want) in [
            ("1.23", "1.23"),
            (" 5 ", "5"),
            ("+5", "5"),
            ("5_000", "5000"),
            ("5__0", "50"),
            ("_5", "5"),
            ("٥", "5"),
            ("0x1f", "31"),
            ("0x-1f", "-31"),
            ("1.0", "1.0"),
            ("1e3", "1000"),
            ("1E-3", "0.001"),
            ("-0", "-0"),
            ("007.50", "7.50"),
            ("0.00", "0.00"),
            (".5", "0.5"),
            ("5.", "5"),
            ("1.5e1", "15"),
            ("9223372036854775808", "9223372036854775808"),
            ("0xffffffffffffffffffff", "1208925819614629174706175"),
        ] {
            assert_eq!(dec(Scalar::Str(s)), d(want), "{s:?}");
        }
        assert!(matches!(
            dec(Scalar::Str("1.23")),
            Ok(Coerced::Decimal(Cow::Borrowed("1.23")))
        ));
        assert_eq!(dec(Scalar::Str("0E-99999")), d("0"));
        assert_eq!(dec(Scalar::Str("0E+99999")), d("0"));
        for s in [
            "0X1F", "NaN", "Infinity", "-inf", "sNaN", "abc", "", "1e", "1 0", "_", "1e99999",
            "2 _", "_ 42", "5_\t_",
        ] {
            assert_eq!(dec(Scalar::Str(s)), Err(()), "{s:?}");
        }
        let tiny = format!("0.{}5", "0".repeat(323));
        for (f, want) in [
            (0.1, "0.1"),
            (2.5, "2.5"),
            (1e20, "100000000000000000000"),
            (1e-5, "0.00001"),
            (100.0, "100.0"),
            (-0.0, "-0.0"),
            (1.25, "1.25"),
            (5e-324, tiny.as_str()),
        ] {
            assert_eq!(dec(Scalar::Float(f)), d(want), "{f}");
        }
        assert_eq!(dec(Scalar::Int(-7)), d("-7"));
        assert_eq!(dec(Scalar::UInt(u64::MAX)), d("18446744073709551615"));
        assert_eq!(
            dec(Scalar::BigInt("-100000000000000000000")),
            Ok(Coerced::Decimal(Cow::Borrowed("-100000000000000000000")))
        );
        assert_eq!(dec(Scalar::Bool(true)), Err(()));

        for (s, want) in [
            ("5", "5"),
            ("1e3", "1000"),
            ("1.0", "1"),
            ("-0", "0"),
            ("0x1f", "31"),
            ("1.50e2", "150"),
            ("-12", "-12"),
        ] {
            assert_eq!(wei(Scalar::Str(s)), w(want), "{s:?}");
        }
        for s in ["1.5", "0.1", "NaN", "abc"] {
            assert_eq!(wei(Scalar::Str(s)), Err(()), "{s:?}");
        }
        assert_eq!(wei(Scalar::Float(1e20)), w("100000000000000000000"));
        assert_eq!(wei(Scalar::Float(100.0)), w("100"));
        assert_eq!(wei(Scalar::Float(2.5)), Err(()));
        assert_eq!(wei(Scalar::UInt(1 << 63)), w("9223372036854775808"));
        assert_eq!(
            wei(Scalar::BigInt("10000000000000000000000")),
            Ok(Coerced::Wei(Cow::Borrowed("10000000000000000000000")))
        );
    }

    #[test]
    fn binary_like_python() {
        let bin = |v: Scalar<'static>| c(DataType::Binary, v);
        let bytes = |b: &[u8]| Ok(Coerced::Binary(Cow::Owned(b.to_vec())));
        for (s, want) in [
            ("0x6162", &b"ab"[..]),
            ("YWI=", b"ab"),
            ("", b""),
            ("0x", b""),
            ("0x61 62", b"ab"),
            ("0x61\t62", b"ab"),
            ("0xAbCd", b"\xab\xcd"),
            ("YWJj", b"abc"),
            ("YWJj=", b"abc"),
            ("YWJj==", b"abc"),
            ("YW==", b"a"),
            ("abcd", b"i\xb7\x1d"),
            ("YR==", b"a"),
        ] {
            assert_eq!(bin(Scalar::Str(s)), bytes(want), "{s:?}");
        }
        for s in [
            "0x6 162",
            "0X6162",
            "YWI",
            "YW=",
            "Y",
            "YWI=x",
            "a b",
            "0x616",
            "0x61\u{a0}62",
            "Y W I =",
            "YWI===",
            "é",
            "YWI==",
            "=",
            "==",
            "YWJjZ=",
            "YWJjZA=",
        ] {
            assert_eq!(bin(Scalar::Str(s)), Err(()), "{s:?}");
        }
        assert_eq!(bin(Scalar::Int(0)), bytes(b""));
        assert_eq!(bin(Scalar::Int(1)), bytes(b"\x01"));
        assert_eq!(bin(Scalar::Int(256)), bytes(b"\x00\x01"));
        assert_eq!(bin(Scalar::Int(-1)), Err(()));
        assert_eq!(bin(Scalar::UInt(u64::MAX)), bytes(&[0xff; 8]));
        assert_eq!(
            bin(Scalar::BigInt("18446744073709551616")),
            bytes(&[0, 0, 0, 0, 0, 0, 0, 0, 1])
        );
        assert_eq!(bin(Scalar::BigInt("-18446744073709551616")), Err(()));
        assert_eq!(bin(Scalar::Float(1.0)), Err(()));
    }

    #[test]
    fn json_like_orjson_loads() {
        let j = |s: &str| match c(DataType::Json, Scalar::Str(s)) {
            Ok(Coerced::Json(t)) => Ok(t.into_owned()),
            Ok(other) => panic!("{other:?}"),
            Err(()) => Err(()),
        };
        assert!(matches!(
            c(DataType::Json, Scalar::Str("[1,2]")),
            Ok(Coerced::Json(Cow::Borrowed("[1,2]")))
        ));
        assert_eq!(
            j(" {\"a\": 1.0, \"b\" : [1e2, \"x\"]} "),
            Ok(r#"{"a":1.0,"b":[100.0,"x"]}"#.to_owned())
        );
        assert_eq!(j("5"), Ok("5".to_owned()));
        assert_eq!(j(r#""x""#), Ok(r#""x""#.to_owned()));
        assert_eq!(
            j(r#"{"a":1,"b":2,"a":3}"#),
            Ok(r#"{"a":3,"b":2}"#.to_owned())
        );
        assert_eq!(
            j("18446744073709551616"),
            Ok("1.8446744073709552e+19".to_owned())
        );
        assert_eq!(
            j("-9223372036854775809"),
            Ok("-9.223372036854776e+18".to_owned())
        );
        assert_eq!(j("-0"), Ok("0".to_owned()));
        assert_eq!(
            j(r#"[-0,-0.0,-0e0,"-0",{"-0":-0}]"#),
            Ok(r#"[0,-0.0,-0.0,"-0",{"-0":0}]"#.to_owned())
        );
        assert_eq!(j("-01"), Err(()));
        assert_eq!(
            j(r#"[1e-0,1E-0,"\"-0"]"#),
            Ok(r#"[1.0,1.0,"\"-0"]"#.to_owned())
        );
        // orjson.dumps of the same floats, byte for byte
        assert_eq!(
            j("[1.8446744073709552e19, 1E20, 1e-7, 100.0, 1e16, 1.5e300, 0.1, -0.0, 123456789012345678.0, 1e15]"),
            Ok("[1.8446744073709552e+19,1e+20,1e-7,100.0,1e+16,1.5e+300,0.1,-0.0,1.2345678901234568e+17,1000000000000000.0]".to_owned())
        );
        for s in [
            "not json",
            "NaN",
            "[1e400]",
            "[1,2] x",
            "[1,]",
            "",
            "\u{feff}[1]",
            r#""\ud800""#,
        ] {
            assert_eq!(j(s), Err(()), "{s:?}");
        }
        assert_eq!(c(DataType::Json, Scalar::Int(1)), Err(()));
    }

    #[test]
    fn to_text_like_python_str() {
        assert_eq!(
            to_text(&Coerced::Timestamp(micros("2024-01-01 00:00:00"))),
            "2024-01-01T00:00:00+00:00"
        );
        assert_eq!(
            to_text(&Coerced::Timestamp(micros("0001-02-03 04:05:06.000007"))),
            "0001-02-03T04:05:06.000007+00:00"
        );
        assert_eq!(
            to_text(&Coerced::Timestamp(-1)),
            "1969-12-31T23:59:59.999999+00:00"
        );
        assert_eq!(to_text(&Coerced::Date(days("2024-02-29"))), "2024-02-29");
        assert_eq!(
            to_text(&Coerced::Time(time_micros("10:30:00.5"))),
            "10:30:00.500000"
        );
        assert_eq!(to_text(&Coerced::Time(0)), "00:00:00");
        assert_eq!(to_text(&Coerced::Binary(Cow::Borrowed(b"ab"))), "YWI=");
        assert_eq!(to_text(&Coerced::Double(1e20)), "1e+20");
        assert_eq!(to_text(&Coerced::Bool(true)), "True");
        assert_eq!(to_text(&Coerced::Bigint(i64::MIN)), "-9223372036854775808");
        assert_eq!(to_text(&Coerced::Decimal(Cow::Borrowed("1.50"))), "1.50");
        assert_eq!(to_text(&text("x")), "x");
    }

    /// A Python `Decimal` (dlt's marked string) into every type, as dlt's `coerce_value`
    /// (checked against dlt 1.31: golden case `decimal_values`).
    #[test]
    fn python_decimals_coerce_like_dlt() {
        fn d(t: &str) -> Scalar<'_> {
            Scalar::Decimal(t)
        }
        let h = ColumnHints::default();
        let text_of = |t: &str| match coerce(DataType::Text, &Scalar::Decimal(t), h) {
            Ok(Coerced::Text(s)) => s.into_owned(),
            other => panic!("{other:?}"),
        };
        // str(Decimal)
        assert_eq!(text_of("1E+3"), "1E+3");
        assert_eq!(text_of("0.0000001"), "1E-7");
        assert_eq!(text_of("0.000001"), "0.000001");
        assert_eq!(text_of("1.50"), "1.50");
        assert_eq!(text_of("-0"), "-0");
        assert_eq!(text_of("0.00"), "0.00");
        assert_eq!(text_of("123.4e-1"), "12.34");
        assert_eq!(text_of("1.5e10"), "1.5E+10");
        assert_eq!(
            coerce(DataType::Bigint, &d("4.0"), h),
            Ok(Coerced::Bigint(4))
        );
        assert_eq!(
            coerce(DataType::Bigint, &d("1E+3"), h),
            Ok(Coerced::Bigint(1000))
        );
        assert_eq!(coerce(DataType::Bigint, &d("4.5"), h), Err(()));
        assert_eq!(
            coerce(DataType::Double, &d("0.25"), h),
            Ok(Coerced::Double(0.25))
        );
        assert_eq!(
            coerce(DataType::Double, &d("-1.2"), h),
            Ok(Coerced::Double(-1.2))
        );
        assert_eq!(
            coerce(DataType::Bool, &d("0.0"), h),
            Ok(Coerced::Bool(false))
        );
        assert_eq!(coerce(DataType::Bool, &d("2"), h), Ok(Coerced::Bool(true)));
        assert_eq!(
            coerce(DataType::Decimal, &d("1E+3"), h),
            Ok(Coerced::Decimal(Cow::Owned("1000".into())))
        );
        assert_eq!(
            coerce(DataType::Decimal, &d("1.2"), h),
            Ok(Coerced::Decimal(Cow::Borrowed("1.2")))
        );
        assert_eq!(
            coerce(DataType::Wei, &d("7"), h),
            Ok(Coerced::Wei(Cow::Borrowed("7")))
        );
        for to in [
            DataType::Json,
            DataType::Timestamp,
            DataType::Date,
            DataType::Time,
            DataType::Binary,
        ] {
            assert_eq!(coerce(to, &d("1"), h), Err(()), "{to:?}");
        }
        assert_eq!(d("1").py_type(), Some(DataType::Decimal));
        // only a marked string that reads as a finite Decimal is one
        assert_eq!(crate::types::decimal_marker("\u{F026}1.2"), Some("1.2"));
        assert_eq!(crate::types::decimal_marker("\u{F026}abc"), None);
        assert_eq!(crate::types::decimal_marker("\u{F026}NaN"), None);
        assert_eq!(crate::types::decimal_marker("1.2"), None);
        assert_eq!(crate::types::decimal_marker("\u{F027}2024-01-01"), None);
    }
}
