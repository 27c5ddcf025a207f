//! Comparing tables with golden expectations.
//!
//! Expected cells may be placeholders (`LOAD_ID_<k>`, `ID_<k>`, `TS_<k>`, `VOLATILE_<k>`): a
//! placeholder matches any value, but the same placeholder must stand for the same value
//! everywhere in a case, and different placeholders of one kind for different values. Rows are
//! compared as multisets.

use std::collections::BTreeMap;

use serde_json::Value;

/// A table: column names, and rows as maps from column name to value.
#[derive(Debug, Clone, Default)]
pub struct TableData {
    /// `[name, type, nullable]` per column, in order.
    pub columns: Vec<(String, String, bool)>,
    /// Rows.
    pub rows: Vec<BTreeMap<String, Value>>,
}

fn placeholder_re() -> &'static regex::Regex {
    static RE: std::sync::OnceLock<regex::Regex> = std::sync::OnceLock::new();
    RE.get_or_init(|| {
        regex::Regex::new(r"^(LOAD_ID|ID|TS|VOLATILE)_x?\d+$").unwrap_or_else(|_| unreachable!())
    })
}

/// Whether `v` is a placeholder string.
pub fn is_placeholder(v: &Value) -> bool {
    v.as_str().is_some_and(|s| placeholder_re().is_match(s))
}

/// Placeholder bindings of a case (placeholder -> actual value and back).
#[derive(Debug, Clone, Default)]
pub struct Bindings {
    forward: BTreeMap<String, Value>,
    backward: BTreeMap<String, String>,
}

impl Bindings {
    fn key(v: &Value) -> String {
        v.to_string()
    }

    /// Whether expected cell `e` can match actual `a`; binds placeholders.
    fn unify(&mut self, e: &Value, a: &Value, trail: &mut Vec<String>) -> bool {
        if is_placeholder(e) {
            let p = e.as_str().unwrap_or_default().to_string();
            if a.is_null() {
                return false;
            }
            match self.forward.get(&p) {
                Some(bound) => bound == a,
                None => {
                    if let Some(other) = self.backward.get(&Self::key(a)) {
                        // another placeholder of the same kind already stands for this value
                        let kind = |s: &str| s.split('_').next().unwrap_or("").to_string();
                        if kind(other) == kind(&p) {
                            return false;
                        }
                    }
                    self.forward.insert(p.clone(), a.clone());
                    self.backward.insert(Self::key(a), p.clone());
                    trail.push(p);
                    true
                }
            }
        } else {
            // placeholders may also stand inside objects and arrays (a decoded state's hash)
            match (e, a) {
                (Value::Object(eo), Value::Object(ao)) if eo.len() == ao.len() => eo
                    .iter()
                    .all(|(k, ev)| ao.get(k).is_some_and(|av| self.unify(ev, av, trail))),
                (Value::Array(ea), Value::Array(aa)) if ea.len() == aa.len() => {
                    ea.iter().zip(aa).all(|(x, y)| self.unify(x, y, trail))
                }
                _ => values_equal(e, a),
            }
        }
    }

    fn undo(&mut self, trail: &[String]) {
        for p in trail {
            if let Some(v) = self.forward.remove(p) {
                self.backward.remove(&Self::key(&v));
            }
        }
    }
}

/// Equality of expected and actual cells (numbers compare numerically).
pub fn values_equal(e: &Value, a: &Value) -> bool {
    match (e, a) {
        (Value::Number(x), Value::Number(y)) => match (x.as_f64(), y.as_f64()) {
            (Some(x), Some(y)) => x == y,
            _ => x == y,
        },
        _ => e == a,
    }
}

/// Matches expected rows against actual rows as multisets, binding placeholders. Returns a
/// description of the first mismatch.
pub fn match_rows(
    table: &str,
    expected: &[BTreeMap<String, Value>],
    actual: &[BTreeMap<String, Value>],
    columns: &[String],
    bindings: &mut Bindings,
) -> Result<(), String> {
    if expected.len() != actual.len() {
        return Err(format!(
            "table `{table}`: expected {} rows, got {}\n  expected: {}\n  actual:   {}",
            expected.len(),
            actual.len(),
            rows_text(expected, columns),
            rows_text(actual, columns)
        ));
    }
    let mut used = vec![false; actual.len()];
    if assign(0, expected, actual, columns, &mut used, bindings, &mut 0) {
        Ok(())
    } else {
        Err(format!(
            "table `{table}`: rows differ\n  expected: {}\n  actual:   {}",
            rows_text(expected, columns),
            rows_text(actual, columns)
        ))
    }
}

fn rows_text(rows: &[BTreeMap<String, Value>], columns: &[String]) -> String {
    rows.iter()
        .map(|r| {
            let cells: Vec<String> = columns
                .iter()
                .map(|c| r.get(c).map_or_else(|| "-".to_string(), Value::to_string))
                .collect();
            format!("({})", cells.join(", "))
        })
        .collect::<Vec<_>>()
        .join("\n            ")
}

fn assign(
    i: usize,
    expected: &[BTreeMap<String, Value>],
    actual: &[BTreeMap<String, Value>],
    columns: &[String],
    used: &mut Vec<bool>,
    bindings: &mut Bindings,
    steps: &mut usize,
) -> bool {
    if i == expected.len() {
        return true;
    }
    *steps += 1;
    if *steps > 200_000 {
        return false;
    }
    for j in 0..actual.len() {
        if used[j] {
            continue;
        }
        let mut trail = Vec::new();
        let ok = columns.iter().all(|c| {
            let e = expected[i].get(c).unwrap_or(&Value::Null);
            let a = actual[j].get(c).unwrap_or(&Value::Null);
            bindings.unify(e, a, &mut trail)
        });
        if ok {
            used[j] = true;
            if assign(i + 1, expected, actual, columns, used, bindings, steps) {
                return true;
            }
            used[j] = false;
        }
        bindings.undo(&trail);
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn row(v: Value) -> BTreeMap<String, Value> {
        serde_json::from_value(v).expect("row")
    }

    #[test]
    fn placeholders_bind_consistently() {
        let cols = vec!["id".to_string(), "p".to_string()];
        let expected = vec![
            row(json!({"id": "ID_1", "p": null})),
            row(json!({"id": "ID_2", "p": "ID_1"})),
        ];
        let good = vec![
            row(json!({"id": "b", "p": "a"})),
            row(json!({"id": "a", "p": null})),
        ];
        let bad = vec![
            row(json!({"id": "b", "p": "c"})),
            row(json!({"id": "a", "p": null})),
        ];
        assert!(match_rows("t", &expected, &good, &cols, &mut Bindings::default()).is_ok());
        assert!(match_rows("t", &expected, &bad, &cols, &mut Bindings::default()).is_err());
    }
}
