//! Type detections (spec c.3); the ISO-like date/time parser they use is
//! [`crate::pycompat::iso8601`].
//!
//! # Detections
//! A schema's `settings.detections` name functions that run, in order, on the first value of a
//! NEW column; the first that returns a type wins ([`autodetect`]). They mirror
//! `dlt/common/schema/detections.py`:
//! * `timestamp`: an int or float (not a bool) within "now ± 5 × 365 days" (seconds) →
//!   `timestamp`. "Now" is read once per process, as dlt reads it once at import.
//! * `iso_timestamp`: a non-empty string that [`parse_iso_like`] parses to a date *and* time →
//!   `timestamp`.
//! * `iso_date`: a non-empty string that is not an ISO timestamp and parses to a date → `date`.
//! * `large_integer`: an int above `2^63 - 1` → `wei`, above `578960446186580977117854925043439539266`
//!   (BigQuery's BIGDECIMAL bound) → `text`. Negative big ints are not detected.
//! * `hexbytes_to_text`, `wei_to_double`: they match Python's `HexBytes` / `Wei` objects, which
//!   never come out of JSON documents, so they never match a [`Scalar`].
//!

use std::sync::OnceLock;
use std::time::{SystemTime, UNIX_EPOCH};

pub use crate::pycompat::iso8601::{parse_iso_like, ParsedTime};
use crate::types::{DataType, Scalar};

/// The detections of a schema's `settings.detections`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Detection {
    /// `timestamp`: numbers within five years of now are unix timestamps.
    Timestamp,
    /// `iso_timestamp`: ISO-like date-time strings are timestamps (dlt's default).
    IsoTimestamp,
    /// `iso_date`: ISO-like date strings are dates.
    IsoDate,
    /// `large_integer`: integers beyond `i64` are `wei` (or `text` when beyond BigQuery's range).
    LargeInteger,
    /// `hexbytes_to_text`: Python `HexBytes` are text (never matches a JSON value).
    HexbytesToText,
    /// `wei_to_double`: Python `Wei` values are doubles (never matches a JSON value).
    WeiToDouble,
}

impl Detection {
    /// Parses a detection by its dlt name (`"iso_timestamp"`, ...).
    pub fn parse(name: &str) -> Option<Self> {
        Some(match name {
            "timestamp" => Self::Timestamp,
            "iso_timestamp" => Self::IsoTimestamp,
            "iso_date" => Self::IsoDate,
            "large_integer" => Self::LargeInteger,
            "hexbytes_to_text" => Self::HexbytesToText,
            "wei_to_double" => Self::WeiToDouble,
            _ => return None,
        })
    }

    /// The dlt name of the detection.
    pub fn name(self) -> &'static str {
        match self {
            Self::Timestamp => "timestamp",
            Self::IsoTimestamp => "iso_timestamp",
            Self::IsoDate => "iso_date",
            Self::LargeInteger => "large_integer",
            Self::HexbytesToText => "hexbytes_to_text",
            Self::WeiToDouble => "wei_to_double",
        }
    }

    /// Runs this one detection on a value: `Some(type)` when it matches.
    pub fn detect(self, value: &Scalar<'_>) -> Option<DataType> {
        match self {
            Self::Timestamp => is_timestamp(value),
            Self::IsoTimestamp => match value {
                Scalar::Str(s) if is_iso_timestamp(s) => Some(DataType::Timestamp),
                _ => None,
            },
            Self::IsoDate => match value {
                Scalar::Str(s) if !s.is_empty() => match parse_iso_like(s) {
                    Some(ParsedTime::Date(_)) => Some(DataType::Date),
                    _ => None,
                },
                _ => None,
            },
            Self::LargeInteger => is_large_integer(value),
            Self::HexbytesToText | Self::WeiToDouble => None,
        }
    }
}

/// Runs detections in order on a NEW column's first value; `Some(type)` of the first that matches.
pub fn autodetect(detections: &[Detection], value: &Scalar<'_>) -> Option<DataType> {
    detections.iter().find_map(|d| d.detect(value))
}

/// Seconds in dlt's "year" for the `timestamp` detection (`5 * 31536000.0` is the range).
const TIMESTAMP_RANGE_SECS: f64 = 5.0 * 31_536_000.0;

/// Unix time (seconds) when first asked; dlt takes it once at import.
fn now_ts() -> f64 {
    static NOW: OnceLock<f64> = OnceLock::new();
    *NOW.get_or_init(|| {
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_secs_f64())
            .unwrap_or(0.0)
    })
}

fn is_timestamp(value: &Scalar<'_>) -> Option<DataType> {
    // dlt: `t in [int, float]` - exact types, so bool does not count
    let v = match *value {
        Scalar::Int(i) => i as f64,
        Scalar::Float(f) => f,
        // u64 and bigger integers are far outside "now ± 5 years"
        _ => return None,
    };
    let now = now_ts();
    (v >= now - TIMESTAMP_RANGE_SECS && v <= now + TIMESTAMP_RANGE_SECS)
        .then_some(DataType::Timestamp)
}

fn is_iso_timestamp(s: &str) -> bool {
    !s.is_empty() && matches!(parse_iso_like(s), Some(ParsedTime::DateTime { .. }))
}

/// BigQuery's BIGDECIMAL maximum, above which dlt turns integers into text.
const WEI_MAX_DIGITS: &str = "578960446186580977117854925043439539266";

fn is_large_integer(value: &Scalar<'_>) -> Option<DataType> {
    match *value {
        // u64 values are above i64::MAX and far below the wei bound
        Scalar::UInt(_) => Some(DataType::Wei),
        Scalar::BigInt(digits) => {
            if digits.starts_with('-') {
                return None;
            }
            let digits = digits.trim_start_matches('0');
            let above_wei = digits.len() > WEI_MAX_DIGITS.len()
                || (digits.len() == WEI_MAX_DIGITS.len() && digits > WEI_MAX_DIGITS);
            if above_wei {
                Some(DataType::Text)
            } else if digits.len() > 19 || (digits.len() == 19 && digits > "9223372036854775807") {
                Some(DataType::Wei)
            } else {
                None
            }
        }
        _ => None,
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, reason = "a test fails loudly")]
mod tests {
    use super::*;

    #[test]
    fn detect_names_round_trip() {
        for d in [
            Detection::Timestamp,
            Detection::IsoTimestamp,
            Detection::IsoDate,
            Detection::LargeInteger,
            Detection::HexbytesToText,
            Detection::WeiToDouble,
        ] {
            assert_eq!(Detection::parse(d.name()), Some(d));
        }
        assert_eq!(Detection::parse("iso"), None);
    }

    #[test]
    fn detections_like_dlt() {
        let all = [
            Detection::IsoTimestamp,
            Detection::IsoDate,
            Detection::LargeInteger,
            Detection::Timestamp,
        ];
        let run = |v: Scalar<'_>| autodetect(&all, &v);
        assert_eq!(
            run(Scalar::Str("2024-01-01T00:00:00Z")),
            Some(DataType::Timestamp)
        );
        assert_eq!(run(Scalar::Str("2024-01-01")), Some(DataType::Date));
        assert_eq!(run(Scalar::Str("10:30:00")), None);
        assert_eq!(run(Scalar::Str("")), None);
        assert_eq!(run(Scalar::Str("abc")), None);
        assert_eq!(run(Scalar::UInt(1 << 63)), Some(DataType::Wei));
        assert_eq!(
            run(Scalar::BigInt("10000000000000000000000000000000000000000")),
            Some(DataType::Text)
        );
        assert_eq!(
            run(Scalar::BigInt("578960446186580977117854925043439539266")),
            Some(DataType::Wei)
        );
        assert_eq!(
            run(Scalar::BigInt("578960446186580977117854925043439539267")),
            Some(DataType::Text)
        );
        assert_eq!(run(Scalar::BigInt("-100000000000000000000")), None);
        assert_eq!(run(Scalar::Int(i64::MAX)), None);
        assert_eq!(run(Scalar::Int(1)), None);
        assert_eq!(run(Scalar::Bool(true)), None);
        let now = now_ts();
        assert_eq!(run(Scalar::Int(now as i64)), Some(DataType::Timestamp));
        assert_eq!(
            run(Scalar::Float(now - 4.0 * 31_536_000.0)),
            Some(DataType::Timestamp)
        );
        assert_eq!(run(Scalar::Float(now + 6.0 * 31_536_000.0)), None);
        // only iso_timestamp, as dlt's default
        assert_eq!(
            autodetect(&[Detection::IsoTimestamp], &Scalar::Str("2024-01-01")),
            None
        );
        assert_eq!(autodetect(&[], &Scalar::Str("2024-01-01T00:00:00Z")), None);
    }
}
