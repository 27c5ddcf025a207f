//! Python's bytes from text and ints: `bytes.fromhex`, `base64.b64decode(validate=True)`,
//! `int.to_bytes(n, "little")`.

pub(crate) fn le_bytes(u: u64) -> Vec<u8> {
    let n = (64 - u.leading_zeros() as usize).div_ceil(8);
    u.to_le_bytes()[..n].to_vec()
}

/// Decimal digits to minimal little-endian bytes.
pub(crate) fn decimal_to_le_bytes(digits: &[u8]) -> Vec<u8> {
    let mut out: Vec<u8> = Vec::new();
    for &c in digits {
        let mut carry = u32::from(c.wrapping_sub(b'0'));
        for byte in out.iter_mut() {
            let v = u32::from(*byte) * 10 + carry;
            *byte = v as u8;
            carry = v >> 8;
        }
        while carry > 0 {
            out.push(carry as u8);
            carry >>= 8;
        }
    }
    out
}

/// `bytes.fromhex`: pairs of hex digits, ASCII whitespace allowed between pairs.
pub(crate) fn bytes_fromhex(s: &str) -> Result<Vec<u8>, ()> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len() / 2);
    let mut i = 0;
    let is_space = |c: u8| c == b' ' || (b'\t'..=b'\r').contains(&c);
    while i < b.len() {
        if is_space(b[i]) {
            i += 1;
            continue;
        }
        let hi = hex_value(b[i]).ok_or(())?;
        let lo = b.get(i + 1).copied().and_then(hex_value).ok_or(())?;
        out.push((hi << 4) | lo);
        i += 2;
    }
    Ok(out)
}

fn hex_value(c: u8) -> Option<u8> {
    (c as char).to_digit(16).map(|d| d as u8)
}

/// `base64.b64decode(s, validate=True)` of Python 3.11.7: the text must match
/// `[A-Za-z0-9+/]*={0,2}`, then `binascii.a2b_base64(strict_mode=True)` as 3.11 to 3.12.3 have
/// it: no leading `=`; a final group of 1 data char fails, one of 2 needs exactly `==`, one of
/// 3 exactly `=`; after a complete group, pads are ignored; unused bits are ignored.
pub(crate) fn b64decode_validate(s: &str) -> Result<Vec<u8>, ()> {
    let b = s.as_bytes();
    let data_len = b.iter().position(|&c| c == b'=').unwrap_or(b.len());
    let pads = b.len() - data_len;
    let valid_data = b[..data_len]
        .iter()
        .all(|&c| c.is_ascii_alphanumeric() || c == b'+' || c == b'/');
    if !valid_data || pads > 2 || b[data_len..].iter().any(|&c| c != b'=') {
        return Err(());
    }
    let ok = match data_len % 4 {
        0 => data_len > 0 || pads == 0,
        1 => false,
        2 => pads == 2,
        _ => pads == 1,
    };
    if !ok {
        return Err(());
    }
    let sextet = |c: u8| -> u32 {
        u32::from(match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'+' => 62,
            _ => 63,
        })
    };
    let mut out = Vec::with_capacity(data_len / 4 * 3 + 2);
    for chunk in b[..data_len].chunks(4) {
        let mut acc = 0u32;
        for (k, &c) in chunk.iter().enumerate() {
            acc |= sextet(c) << (18 - 6 * k);
        }
        let bytes = [(acc >> 16) as u8, (acc >> 8) as u8, acc as u8];
        out.extend_from_slice(&bytes[..chunk.len() - 1]);
    }
    Ok(out)
}
