//! Python's view of Unicode text: decimal digits (what `\\d` matches and `int()` reads),
//! whitespace (`str.isspace`, `str.strip`), and the ASCII form `int()` and `float()` parse.

use std::borrow::Cow;

/// Code points of the digit zero of every run of Unicode (14.0, Python 3.11's) decimal digits
/// (category Nd); each run holds the ten digits in order.
const UNICODE_DIGIT_ZEROS: [u32; 66] = [
    0x30, 0x660, 0x6f0, 0x7c0, 0x966, 0x9e6, 0xa66, 0xae6, 0xb66, 0xbe6, 0xc66, 0xce6, 0xd66,
    0xde6, 0xe50, 0xed0, 0xf20, 0x1040, 0x1090, 0x17e0, 0x1810, 0x1946, 0x19d0, 0x1a80, 0x1a90,
    0x1b50, 0x1bb0, 0x1c40, 0x1c50, 0xa620, 0xa8d0, 0xa900, 0xa9d0, 0xa9f0, 0xaa50, 0xabf0, 0xff10,
    0x104a0, 0x10d30, 0x11066, 0x110f0, 0x11136, 0x111d0, 0x112f0, 0x11450, 0x114d0, 0x11650,
    0x116c0, 0x11730, 0x118e0, 0x11950, 0x11c50, 0x11d50, 0x11da0, 0x16a60, 0x16ac0, 0x16b50,
    0x1d7ce, 0x1d7d8, 0x1d7e2, 0x1d7ec, 0x1d7f6, 0x1e140, 0x1e2f0, 0x1e950, 0x1fbf0,
];

/// The value of a Unicode decimal digit (what Python's `\d` matches and `int()` reads).
pub(crate) fn decimal_value(c: char) -> Option<u32> {
    let c = c as u32;
    if c < 0x80 {
        return (0x30..=0x39).contains(&c).then(|| c - 0x30);
    }
    let idx = UNICODE_DIGIT_ZEROS.partition_point(|&z| z <= c);
    let zero = UNICODE_DIGIT_ZEROS[idx.checked_sub(1)?];
    (c - zero < 10).then(|| c - zero)
}

/// Python's `str.isspace()` for one char: Rust's White_Space plus the ASCII separators
/// U+001C..U+001F.
pub(crate) fn py_isspace(c: char) -> bool {
    c.is_whitespace() || ('\u{1c}'..='\u{1f}').contains(&c)
}

/// Python's `str.strip()` without arguments.
pub(crate) fn py_strip(s: &str) -> &str {
    s.trim_matches(py_isspace)
}

/// Python's `_PyUnicode_TransformDecimalAndSpaceToASCII`: Unicode digits to ASCII digits,
/// Unicode whitespace to spaces; `None` for any other non-ASCII char (or DEL), which makes
/// `int()` / `float()` fail.
pub(crate) fn to_ascii_number(s: &str) -> Option<Cow<'_, str>> {
    if s.bytes().all(|c| c < 0x7f) {
        return Some(Cow::Borrowed(s));
    }
    s.chars()
        .map(|c| {
            if (c as u32) < 0x7f {
                Some(c)
            } else if py_isspace(c) {
                Some(' ')
            } else {
                decimal_value(c).and_then(|d| char::from_digit(d, 10))
            }
        })
        .collect::<Option<String>>()
        .map(Cow::Owned)
}

/// Python's `Py_ISSPACE` (ASCII whitespace only).
pub(crate) fn is_ascii_space(c: u8) -> bool {
    c == b' ' || (b'\t'..=b'\r').contains(&c)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unicode_digits_and_whitespace() {
        assert_eq!(decimal_value('٥'), Some(5));
        assert_eq!(decimal_value('𝟗'), Some(9));
        assert_eq!(decimal_value('a'), None);
        assert_eq!(decimal_value('²'), None);
        assert_eq!(py_strip("\u{1c} x \u{3000}"), "x");
    }
}
