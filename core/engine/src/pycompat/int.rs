//! Python's `int(text, base)`.

use std::borrow::Cow;

use super::text::{is_ascii_space, to_ascii_number};

/// An integer as Python's `int(text, base)` reads it.
pub(crate) struct PyInt<'s> {
    negative: bool,
    /// Digits in the base, without `_`, at least one.
    digits: Cow<'s, [u8]>,
    base: u32,
}

impl<'s> PyInt<'s> {
    pub(crate) fn parse(s: &'s str, base: u32) -> Option<Self> {
        let ascii = to_ascii_number(s)?;
        let b = ascii.as_bytes();
        let mut i = 0;
        while i < b.len() && is_ascii_space(b[i]) {
            i += 1;
        }
        let mut negative = false;
        match b.get(i) {
            Some(b'+') => i += 1,
            Some(b'-') => {
                negative = true;
                i += 1;
            }
            _ => {}
        }
        if base == 16 && b.get(i) == Some(&b'0') && matches!(b.get(i + 1), Some(b'x' | b'X')) {
            i += 2;
            // one underscore is allowed after the prefix
            if b.get(i) == Some(&b'_') {
                i += 1;
            }
        }
        let start = i;
        let is_digit = |c: u8| (c as char).is_digit(base);
        let mut has_underscore = false;
        let mut prev_digit = false;
        while i < b.len() && (is_digit(b[i]) || b[i] == b'_') {
            if b[i] == b'_' {
                if !prev_digit {
                    return None;
                }
                has_underscore = true;
                prev_digit = false;
            } else {
                prev_digit = true;
            }
            i += 1;
        }
        let end = i;
        if !prev_digit {
            // no digits, or a trailing underscore
            return None;
        }
        while i < b.len() && is_ascii_space(b[i]) {
            i += 1;
        }
        if i != b.len() {
            return None;
        }
        let digits: Cow<'s, [u8]> = match (&ascii, has_underscore) {
            (Cow::Borrowed(orig), false) => Cow::Borrowed(&orig.as_bytes()[start..end]),
            _ => Cow::Owned(
                b[start..end]
                    .iter()
                    .copied()
                    .filter(|&c| c != b'_')
                    .collect(),
            ),
        };
        Some(PyInt {
            negative,
            digits,
            base,
        })
    }

    pub(crate) fn to_i64(&self) -> Result<i64, ()> {
        let mut magnitude = 0u64;
        for &c in self.digits.iter() {
            let d = (c as char).to_digit(self.base).ok_or(())?;
            magnitude = magnitude
                .checked_mul(u64::from(self.base))
                .and_then(|m| m.checked_add(u64::from(d)))
                .ok_or(())?;
        }
        if self.negative {
            0i64.checked_sub_unsigned(magnitude).ok_or(())
        } else {
            i64::try_from(magnitude).map_err(|_| ())
        }
    }

    /// The value as decimal digits, `-` when negative and not zero.
    pub(crate) fn to_decimal_string(&self) -> String {
        let mut magnitude = if self.base == 10 {
            let d = &self.digits[self
                .digits
                .iter()
                .position(|&c| c != b'0')
                .unwrap_or(self.digits.len())..];
            String::from_utf8_lossy(d).into_owned()
        } else {
            // base 10^9 limbs, least significant first
            let mut limbs: Vec<u32> = Vec::new();
            for &c in self.digits.iter() {
                let mut carry = u64::from((c as char).to_digit(self.base).unwrap_or(0));
                for limb in limbs.iter_mut() {
                    let v = u64::from(*limb) * u64::from(self.base) + carry;
                    *limb = (v % 1_000_000_000) as u32;
                    carry = v / 1_000_000_000;
                }
                while carry > 0 {
                    limbs.push((carry % 1_000_000_000) as u32);
                    carry /= 1_000_000_000;
                }
            }
            let mut s = String::new();
            for (k, limb) in limbs.iter().rev().enumerate() {
                if k == 0 {
                    s.push_str(&limb.to_string());
                } else {
                    s.push_str(&format!("{limb:09}"));
                }
            }
            s
        };
        if magnitude.is_empty() {
            return "0".to_owned();
        }
        if self.negative {
            magnitude.insert(0, '-');
        }
        magnitude
    }
}
