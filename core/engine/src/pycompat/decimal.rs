//! Python's `Decimal(text)`, `str(Decimal)` and `'{:f}'.format(Decimal)`.

use super::text::{decimal_value, py_isspace, py_strip};
use crate::coerce::MAX_DECIMAL_CHARS;

/// A finite decimal as Python's `Decimal(text)` reads it: coefficient digits and exponent.
pub(crate) struct PyDecimal {
    pub(crate) negative: bool,
    /// Coefficient digits without leading zeros ("0" for zero).
    pub(crate) coefficient: String,
    pub(crate) exponent: i64,
}

impl PyDecimal {
    /// `Decimal(text)`: every `_` is dropped, Unicode digits read, whitespace trimmed; then
    /// `[sign] (digits [. [digits]] | . digits) [(e|E) [sign] digits]`. Infinity and NaN are
    /// `None` (see the module docs).
    pub(crate) fn parse(s: &str) -> Option<Self> {
        // `numeric_as_ascii`: strip first, then drop underscores; inner whitespace fails
        let mut ascii = String::with_capacity(s.len());
        for c in py_strip(s).chars() {
            if c == '_' {
                continue;
            }
            if c != '\0' && (c as u32) < 0x80 {
                ascii.push(c);
            } else if py_isspace(c) {
                ascii.push(' ');
            } else {
                ascii.push(char::from_digit(decimal_value(c)?, 10)?);
            }
        }
        let b = ascii.as_bytes();
        let mut i = 0;
        let negative = match b.first() {
            Some(b'-') => {
                i = 1;
                true
            }
            Some(b'+') => {
                i = 1;
                false
            }
            _ => false,
        };
        let int_start = i;
        while i < b.len() && b[i].is_ascii_digit() {
            i += 1;
        }
        let int_digits = &b[int_start..i];
        let mut frac_digits: &[u8] = &[];
        if b.get(i) == Some(&b'.') {
            i += 1;
            let frac_start = i;
            while i < b.len() && b[i].is_ascii_digit() {
                i += 1;
            }
            frac_digits = &b[frac_start..i];
        }
        if int_digits.is_empty() && frac_digits.is_empty() {
            return None;
        }
        let mut exponent: i64 = 0;
        if matches!(b.get(i), Some(b'e' | b'E')) {
            i += 1;
            let exp_negative = match b.get(i) {
                Some(b'-') => {
                    i += 1;
                    true
                }
                Some(b'+') => {
                    i += 1;
                    false
                }
                _ => false,
            };
            let exp_start = i;
            while i < b.len() && b[i].is_ascii_digit() {
                // beyond any plain text we produce; saturate
                exponent = exponent
                    .saturating_mul(10)
                    .saturating_add(i64::from(b[i] - b'0'));
                i += 1;
            }
            if i == exp_start {
                return None;
            }
            if exp_negative {
                exponent = -exponent;
            }
        }
        if i != b.len() {
            return None;
        }
        let mut coefficient: String = int_digits
            .iter()
            .chain(frac_digits)
            .skip_while(|&&c| c == b'0')
            .map(|&c| c as char)
            .collect();
        if coefficient.is_empty() {
            coefficient.push('0');
        }
        Some(PyDecimal {
            negative,
            coefficient,
            exponent: exponent.saturating_sub(frac_digits.len() as i64),
        })
    }

    /// `str(Decimal)`: plain notation when the exponent is at most 0 and the value is not
    /// below 1E-6 in magnitude, scientific otherwise (`1E+3`, `1E-7`, `1.50`, `-0`).
    pub(crate) fn sci_string(&self) -> String {
        let c = &self.coefficient;
        let n = c.len() as i64;
        let leftdigits = self.exponent + n;
        let dotplace = if self.exponent <= 0 && leftdigits > -6 {
            leftdigits
        } else {
            1
        };
        let mut out = String::with_capacity(c.len() + 8);
        if self.negative {
            out.push('-');
        }
        if dotplace <= 0 {
            out.push_str("0.");
            out.extend(std::iter::repeat_n('0', dotplace.unsigned_abs() as usize));
            out.push_str(c);
        } else if dotplace >= n {
            out.push_str(c);
            out.extend(std::iter::repeat_n('0', (dotplace - n) as usize));
        } else {
            out.push_str(&c[..dotplace as usize]);
            out.push('.');
            out.push_str(&c[dotplace as usize..]);
        }
        if leftdigits != dotplace {
            let e = leftdigits - dotplace;
            out.push('E');
            out.push(if e < 0 { '-' } else { '+' });
            out.push_str(&e.unsigned_abs().to_string());
        }
        out
    }

    /// Plain text (`'{:f}'.format(d)`), or with `integral` the integer digits of an integral
    /// value (`Err` for a fraction).
    pub(crate) fn plain(&self, integral: bool) -> Result<String, ()> {
        let c = &self.coefficient;
        let zero = c == "0";
        let len = c.len() as i64;
        let too_long = |n: i64| n > MAX_DECIMAL_CHARS as i64;
        let mut out = String::new();
        if self.negative && !(integral && zero) {
            out.push('-');
        }
        if self.exponent >= 0 {
            if zero {
                out.push('0');
            } else {
                if too_long(len + self.exponent) {
                    return Err(());
                }
                out.push_str(c);
                out.extend(std::iter::repeat_n('0', self.exponent as usize));
            }
            return Ok(out);
        }
        let k = self.exponent.unsigned_abs() as usize;
        if integral {
            if zero {
                return Ok("0".to_owned());
            }
            if k >= c.len() || c[c.len() - k..].bytes().any(|d| d != b'0') {
                return Err(());
            }
            out.push_str(&c[..c.len() - k]);
            return Ok(out);
        }
        if too_long(k as i64 + 2) {
            // a zero is still a zero
            return if zero { Ok("0".to_owned()) } else { Err(()) };
        }
        if c.len() > k {
            out.push_str(&c[..c.len() - k]);
            out.push('.');
            out.push_str(&c[c.len() - k..]);
        } else {
            out.push_str("0.");
            out.extend(std::iter::repeat_n('0', k - c.len()));
            out.push_str(c);
        }
        Ok(out)
    }
}

/// Whether `Decimal(text)` reads `text` as a finite number (the test dlt's `custom_pua_decode`
/// applies to a string with the decimal marker).
pub(crate) fn is_py_decimal(text: &str) -> bool {
    PyDecimal::parse(text).is_some()
}

/// `-?(0|[1-9][0-9]*)(\.[0-9]+)?`: text that is its own plain form.
pub(crate) fn is_plain_decimal(t: &str) -> bool {
    let b = t.strip_prefix('-').unwrap_or(t).as_bytes();
    let (int, frac) = match b.iter().position(|&c| c == b'.') {
        Some(i) => (&b[..i], Some(&b[i + 1..])),
        None => (b, None),
    };
    let int_ok =
        !int.is_empty() && int.iter().all(u8::is_ascii_digit) && (int.len() == 1 || int[0] != b'0');
    let frac_ok = frac.is_none_or(|f| !f.is_empty() && f.iter().all(u8::is_ascii_digit));
    int_ok && frac_ok
}
