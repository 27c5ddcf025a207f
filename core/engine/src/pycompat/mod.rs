//! Python's own behaviour where dlt's results depend on it: how `int()`, `float()` and
//! `Decimal()` read text, `repr(float)`, `str(Decimal)`, `base64.b64decode` and
//! `bytes.fromhex`, `date.fromisoformat`, pendulum's ISO 8601 parser, and the Unicode digits and
//! whitespace Python's `str` methods know. Each is ported rule by rule from CPython 3.11 or
//! pendulum 3.3 and verified against them through dlt 1.31; [`crate::coerce`] and
//! [`crate::detect`] build dlt's coercions and detections on them.

pub(crate) mod binary;
pub(crate) mod calendar;
pub(crate) mod date;
pub(crate) mod decimal;
pub(crate) mod float;
pub(crate) mod int;
pub(crate) mod iso8601;
pub(crate) mod text;
