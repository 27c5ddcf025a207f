//! Fuzzes the JSON tape parser against serde_json: both accept or both reject a text of JSON
//! documents, and what ours accepts prints back to the same values. NaN/Infinity (accepted like Python's json)
//! and nesting beyond serde_json's limit of 128 are left out of the comparison.
#![no_main]

use libfuzzer_sys::fuzz_target;
use sluice::json::{write_compact, Doc, Parser};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    // all documents of the text, or None at the first error
    let mut parser = Parser::new(text);
    let mut doc = Doc::new();
    let mut ours = Some(Vec::new());
    loop {
        match parser.next_document(&mut doc) {
            Ok(true) => {
                let mut s = String::new();
                write_compact(doc.root(), &mut s);
                let v: serde_json::Value = match serde_json::from_str(&s) {
                    Ok(v) => v,
                    // an integer of more than 308 digits: exact for Python and sluice, out of
                    // serde_json's range (it reads big integers as f64)
                    Err(e) if e.to_string().contains("number out of range") => return,
                    Err(e) => panic!("our output {s:?} is not JSON: {e}"),
                };
                if let Some(list) = ours.as_mut() {
                    list.push(v);
                }
            }
            Ok(false) => break,
            Err(_) => {
                ours = None;
                break;
            }
        }
    }
    let depth = text.bytes().filter(|b| *b == b'[' || *b == b'{').count();
    if depth > 100 || text.contains("NaN") || text.contains("Infinity") {
        return;
    }
    let theirs: Option<Vec<serde_json::Value>> = match serde_json::Deserializer::from_str(text)
        .into_iter::<serde_json::Value>()
        .collect::<Result<_, _>>()
    {
        Ok(v) => Some(v),
        // a float beyond f64 is infinity for Python (and sluice), an error for serde_json
        Err(e) if e.to_string().contains("number out of range") => return,
        Err(_) => None,
    };
    match (ours, theirs) {
        (Some(o), Some(t)) => {
            assert_eq!(o.len(), t.len(), "{text:?}");
            for (o, t) in o.iter().zip(&t) {
                assert!(same(o, t), "{text:?}: ours {o:?}, serde_json {t:?}");
            }
        }
        (None, None) => {}
        (o, t) => panic!("disagree on {text:?}: ours {o:?}, serde_json {t:?}"),
    }
});

/// Equal values; numbers compare by value, since Python (and sluice) read `-0` as the integer 0
/// where serde_json reads the float -0.0.
fn same(a: &serde_json::Value, b: &serde_json::Value) -> bool {
    use serde_json::Value as V;
    match (a, b) {
        (V::Number(x), V::Number(y)) => match (x.as_i64(), y.as_i64(), x.as_u64(), y.as_u64()) {
            (Some(x), Some(y), _, _) => x == y,
            (_, _, Some(x), Some(y)) => x == y,
            _ => x.as_f64() == y.as_f64(),
        },
        (V::Array(x), V::Array(y)) => x.len() == y.len() && x.iter().zip(y).all(|(x, y)| same(x, y)),
        (V::Object(x), V::Object(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|((kx, vx), (ky, vy))| kx == ky && same(vx, vy))
        }
        _ => a == b,
    }
}
