//! Python's floats: `repr(float)` and `float(str)`.

use super::text::{is_ascii_space, to_ascii_number};

/// Python's `repr(float)`: the shortest digits that read back to the same float, in fixed
/// notation when the decimal exponent is in `-4..16` (`0.0001`, `1234567890123456.0`), else in
/// scientific notation with at least two exponent digits (`1e-05`, `1e+16`, `1.5e+300`).
pub fn float_repr(v: f64) -> String {
    if v.is_nan() {
        return "nan".to_owned();
    }
    if v.is_infinite() {
        return if v > 0.0 { "inf" } else { "-inf" }.to_owned();
    }
    if v == 0.0 {
        return if v.is_sign_negative() { "-0.0" } else { "0.0" }.to_owned();
    }
    // ryu prints the shortest round-trip digits and breaks exact ties to even, as Python's
    // dtoa does (Rust's own `{:e}` rounds such ties up: 114030231829.07812 vs ...813)
    let mut buf = ryu::Buffer::new();
    let (digits, decpt) = shortest_digits(buf.format_finite(v.abs()));
    let mut out = String::with_capacity(digits.len() + 8);
    if v < 0.0 {
        out.push('-');
    }
    // value = 0.DIGITS × 10^decpt
    let exp = decpt - 1;
    let n = digits.len() as i32;
    if decpt <= -4 || decpt > 16 {
        out.push_str(&digits[..1]);
        if n > 1 {
            out.push('.');
            out.push_str(&digits[1..]);
        }
        out.push('e');
        out.push(if exp < 0 { '-' } else { '+' });
        out.push_str(&format!("{:02}", exp.unsigned_abs()));
    } else if decpt <= 0 {
        out.push_str("0.");
        out.extend(std::iter::repeat_n('0', (-decpt) as usize));
        out.push_str(&digits);
    } else if decpt >= n {
        out.push_str(&digits);
        out.extend(std::iter::repeat_n('0', (decpt - n) as usize));
        out.push_str(".0");
    } else {
        out.push_str(&digits[..decpt as usize]);
        out.push('.');
        out.push_str(&digits[decpt as usize..]);
    }
    out
}

/// The significant digits of a positive float printed by ryu (`1.5e-7`, `100.0`, `1e20`), and
/// the position of the decimal point: the value is `0.DIGITS × 10^decpt`.
fn shortest_digits(printed: &str) -> (String, i32) {
    let (mantissa, exp) = printed.split_once(['e', 'E']).unwrap_or((printed, "0"));
    let exp: i32 = exp.parse().unwrap_or(0);
    let (int, frac) = mantissa.split_once('.').unwrap_or((mantissa, ""));
    let mut decpt = int.len() as i32 + exp;
    let all = int.bytes().chain(frac.bytes());
    let mut digits = String::with_capacity(int.len() + frac.len());
    for c in all {
        if c == b'0' && digits.is_empty() {
            decpt -= 1;
        } else {
            digits.push(c as char);
        }
    }
    let trimmed = digits.trim_end_matches('0').len();
    digits.truncate(trimmed.max(1));
    (digits, decpt)
}

/// Python's `float(str)`.
pub(crate) fn py_float(s: &str) -> Option<f64> {
    let ascii = to_ascii_number(s)?;
    let t = ascii.trim_matches(|c: char| c.is_ascii() && is_ascii_space(c as u8));
    if !t.contains('_') {
        return parse_float_body(t);
    }
    // `_` only between two digits
    let b = t.as_bytes();
    let mut clean = String::with_capacity(t.len());
    for (i, &c) in b.iter().enumerate() {
        if c == b'_' {
            let prev_digit = i > 0 && b[i - 1].is_ascii_digit();
            let next_digit = b.get(i + 1).is_some_and(u8::is_ascii_digit);
            if !prev_digit || !next_digit {
                return None;
            }
        } else {
            clean.push(c as char);
        }
    }
    parse_float_body(&clean)
}

/// `_PyOS_ascii_strtod` on a trimmed string: decimal literals and `inf`/`infinity`/`nan`.
fn parse_float_body(t: &str) -> Option<f64> {
    // Rust's grammar is the same set of strings once whitespace and `_` are handled
    if t.bytes().any(|c| c.is_ascii_whitespace() || c == b'_') {
        return None;
    }
    t.parse::<f64>().ok()
}
