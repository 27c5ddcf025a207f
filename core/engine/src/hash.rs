//! dlt's deterministic hashes (spec b.3, d.2, h): row ids, key and row hashes, incremental
//! dedup hashes and the schema version hash, plus orjson-compatible compact serialization.

use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD};
use base64::Engine;
use serde_json::Value;
use sha3::{Digest, Sha3_256};
use tiny_keccak::{Hasher, Shake, Xof};

use crate::json::{write_f64, write_str};

/// Length in bytes of dlt's generated `_dlt_id`s (env `DLT_DLT_ID_LENGTH_BYTES` in dlt).
pub const DLT_ID_LENGTH_BYTES: usize = 10;

/// `b64(shake128(data, n))` without padding.
pub fn shake128_b64(data: &[u8], n: usize) -> String {
    let mut buf = [0u8; 64];
    let n = n.min(buf.len());
    if n <= 16 {
        crate::keccak::shake128_short(data, &mut buf[..n]);
    } else {
        let mut hasher = Shake::v128();
        hasher.update(data);
        hasher.squeeze(&mut buf[..n]);
    }
    STANDARD_NO_PAD.encode(&buf[..n])
}

/// The characters of a generated `_dlt_id`: base64 (no padding) of 10 bytes.
pub type IdChars = [u8; 14];

fn id_chars(bytes: &[u8; DLT_ID_LENGTH_BYTES]) -> IdChars {
    let mut out = [0u8; 14];
    // 10 bytes always encode to 14 characters
    let _ = STANDARD_NO_PAD.encode_slice(bytes, &mut out);
    out
}

/// An id's characters as text.
pub fn id_str(chars: &IdChars) -> &str {
    // base64 output is ASCII
    std::str::from_utf8(chars).unwrap_or("")
}

/// The message hashed for a child row's `_dlt_id`: `"{parent_id}_{table}_{idx}"`.
pub fn child_row_message(
    parent_row_id: &str,
    child_table: &str,
    list_idx: usize,
    out: &mut Vec<u8>,
) {
    out.extend_from_slice(parent_row_id.as_bytes());
    out.push(b'_');
    out.extend_from_slice(child_table.as_bytes());
    out.push(b'_');
    out.extend_from_slice(itoa::Buffer::new().format(list_idx).as_bytes());
}

/// The `_dlt_id` of a child row: `b64(shake128("{parent_id}_{table}_{idx}", 10))`.
pub fn child_row_id(parent_row_id: &str, child_table: &str, list_idx: usize) -> String {
    let mut s = Vec::with_capacity(parent_row_id.len() + child_table.len() + 8);
    child_row_message(parent_row_id, child_table, list_idx, &mut s);
    shake128_b64(&s, DLT_ID_LENGTH_BYTES)
}

/// The `_dlt_id`s of many child rows at once, from their messages (see [`child_row_message`])
/// laid end to end in `buf` (message `i` ends at `ends[i]`): hashed side by side where the CPU
/// allows.
pub fn child_row_ids(buf: &[u8], ends: &[usize], out: &mut Vec<IdChars>) {
    crate::keccak::shake128_batch(buf, ends, |digest| {
        let mut bytes = [0u8; DLT_ID_LENGTH_BYTES];
        bytes.copy_from_slice(&digest[..DLT_ID_LENGTH_BYTES]);
        out.push(id_chars(&bytes));
    });
}

/// A random `_dlt_id`: base64 of 10 random bytes (14 characters).
pub fn random_row_id() -> String {
    id_str(&random_row_id_chars()).to_string()
}

/// `rows` random `_dlt_id`s as one string array, built without a per-row allocation.
pub fn random_row_id_array(rows: usize) -> arrow_array::StringArray {
    let mut random = vec![0u8; rows * DLT_ID_LENGTH_BYTES];
    rand::fill(&mut random[..]);
    let mut values = Vec::with_capacity(rows * 14);
    for chunk in random.chunks_exact(DLT_ID_LENGTH_BYTES) {
        let mut bytes = [0u8; DLT_ID_LENGTH_BYTES];
        bytes.copy_from_slice(chunk);
        values.extend_from_slice(&id_chars(&bytes));
    }
    let offsets = arrow_buffer::OffsetBuffer::from_lengths(std::iter::repeat_n(14, rows));
    // base64 characters are ASCII: the values are valid UTF-8 at every offset (checked)
    arrow_array::StringArray::new(offsets, arrow_buffer::Buffer::from_vec(values), None)
}

/// [`random_row_id`] as characters.
pub fn random_row_id_chars() -> IdChars {
    let bytes: [u8; DLT_ID_LENGTH_BYTES] = rand::random();
    id_chars(&bytes)
}

/// The digest dlt uses for key hashes, scd2 row hashes: `b64(shake128(json, 10))` over the
/// key-sorted compact JSON text.
pub fn digest_row_json(sorted_json: &str) -> String {
    shake128_b64(sorted_json.as_bytes(), DLT_ID_LENGTH_BYTES)
}

/// The incremental dedup hash: `b64(shake128(json, 9))` (12 characters).
pub fn dedup_hash(sorted_json: &str) -> String {
    shake128_b64(sorted_json.as_bytes(), 9)
}

/// Writes a serde_json value as orjson would with `OPT_SORT_KEYS`: compact, keys sorted,
/// non-ASCII kept, floats shortest round-trip.
pub fn write_sorted_value(value: &Value, out: &mut String) {
    match value {
        Value::Null => out.push_str("null"),
        Value::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        Value::Number(n) => {
            if let Some(i) = n.as_i64() {
                out.push_str(itoa::Buffer::new().format(i));
            } else if let Some(u) = n.as_u64() {
                out.push_str(itoa::Buffer::new().format(u));
            } else if let Some(f) = n.as_f64() {
                write_f64(f, out);
            } else {
                out.push_str(&n.to_string());
            }
        }
        Value::String(s) => write_str(s, out),
        Value::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_sorted_value(item, out);
            }
            out.push(']');
        }
        Value::Object(map) => {
            let mut keys: Vec<&String> = map.keys().collect();
            keys.sort();
            out.push('{');
            for (i, k) in keys.into_iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_str(k, out);
                out.push(':');
                write_sorted_value(&map[k], out);
            }
            out.push('}');
        }
    }
}

/// [`write_sorted_value`] into a new string.
pub fn sorted_json(value: &Value) -> String {
    let mut out = String::new();
    write_sorted_value(value, &mut out);
    out
}

/// dlt's schema version hash (spec d.2): base64 (padded) SHA3-256 over the key-sorted compact
/// JSON of the stored schema without `version`, `version_hash`, `imported_version_hash` and
/// `previous_hashes`, followed by each table name (sorted) and its column names in order.
pub fn schema_version_hash(stored: &Value) -> String {
    let mut copy = match stored {
        Value::Object(m) => m.clone(),
        _ => serde_json::Map::new(),
    };
    for k in [
        "version",
        "version_hash",
        "imported_version_hash",
        "previous_hashes",
    ] {
        copy.remove(k);
    }
    let copy = Value::Object(copy);
    let content = sorted_json(&copy);
    let mut h = Sha3_256::new();
    Digest::update(&mut h, content.as_bytes());
    if let Some(Value::Object(tables)) = copy.get("tables") {
        let mut names: Vec<&String> = tables.keys().collect();
        names.sort();
        for name in names {
            Digest::update(&mut h, name.as_bytes());
            if let Some(Value::Object(cols)) = tables[name].get("columns") {
                for c in cols.keys() {
                    Digest::update(&mut h, c.as_bytes());
                }
            }
        }
    }
    STANDARD.encode(h.finalize())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn golden() -> Value {
        let path = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../tests/golden/hash_cases.json"
        );
        let path = std::env::var("GOLDEN_DIR")
            .map(|d| format!("{d}/../hash_cases.json"))
            .unwrap_or_else(|_| path.to_string());
        serde_json::from_str(&std::fs::read_to_string(path).expect("hash_cases.json"))
            .expect("json")
    }

    #[test]
    fn golden_hash_cases() {
        let g = golden();
        assert_eq!(g["dlt_id_length_bytes"], DLT_ID_LENGTH_BYTES);
        for case in g["orjson_dumps"].as_array().expect("cases") {
            assert_eq!(
                sorted_json(&case["row"]),
                case["dumps_sorted"].as_str().expect("s")
            );
        }
        for case in g["row_hash"].as_array().expect("cases") {
            // the scd2 row hash drops keys starting with _dlt
            let mut row = case["row"].as_object().expect("row").clone();
            row.retain(|k, _| !k.starts_with("_dlt"));
            let got = digest_row_json(&sorted_json(&Value::Object(row)));
            assert_eq!(got, case["hash"].as_str().expect("hash"), "{case}");
        }
        for case in g["key_hash"].as_array().expect("cases") {
            let mut key = serde_json::Map::new();
            for pk in case["primary_key"].as_array().expect("pk") {
                let pk = pk.as_str().expect("pk");
                key.insert(pk.to_string(), case["row"][pk].clone());
            }
            let got = digest_row_json(&sorted_json(&Value::Object(key)));
            assert_eq!(got, case["hash"].as_str().expect("hash"), "{case}");
        }
        for case in g["nested_row_hash"].as_array().expect("cases") {
            let got = child_row_id(
                case["parent_row_id"].as_str().expect("p"),
                case["nested_table"].as_str().expect("t"),
                case["list_idx"].as_u64().expect("i") as usize,
            );
            assert_eq!(got, case["hash"].as_str().expect("hash"), "{case}");
        }
        for case in g["dedup_hash"].as_array().expect("cases") {
            // datetimes arrive typed ({"$datetime": ...}); they hash as epoch microseconds
            let value = &case["value"];
            let text = match value.get("$datetime").and_then(Value::as_str) {
                Some(ts) => {
                    let micros = chrono::DateTime::parse_from_rfc3339(ts)
                        .expect("ts")
                        .timestamp_micros();
                    micros.to_string()
                }
                None => sorted_json(value),
            };
            assert_eq!(
                dedup_hash(&text),
                case["hash"].as_str().expect("hash"),
                "{case}"
            );
        }
    }

    #[test]
    fn random_ids_have_dlt_shape() {
        let id = random_row_id();
        assert_eq!(id.len(), 14);
        assert_ne!(id, random_row_id());
        let ids = random_row_id_array(3);
        assert_eq!(arrow_array::Array::len(&ids), 3);
        assert!(ids.iter().all(|v| v.is_some_and(|v| v.len() == 14
            && v.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'+' || b == b'/'))));
        assert_ne!(ids.value(0), ids.value(1));
    }
}
