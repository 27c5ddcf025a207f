//! dlt's data selectors: a JSONPath subset (`$`, `$.a.b`, `a.b`, `a[0]`, `a[*]`) and the
//! auto-detection of the records list in a response (spec i.4).

use serde_json::Value;

fn steps(path: &str) -> Vec<String> {
    let p = path.trim();
    let p = p.strip_prefix('$').unwrap_or(p);
    let p = p.strip_prefix('.').unwrap_or(p);
    let mut out = Vec::new();
    for part in p.split('.').filter(|s| !s.is_empty()) {
        // a[0] / a[*] / ['a']
        let mut rest = part;
        if let Some(i) = rest.find('[') {
            if i > 0 {
                out.push(rest[..i].to_string());
            }
            rest = &rest[i..];
            while let Some(end) = rest.find(']') {
                let inner = rest[1..end].trim_matches(|c| c == '\'' || c == '"');
                out.push(if inner == "*" {
                    "*".into()
                } else {
                    inner.to_string()
                });
                rest = &rest[end + 1..];
                if !rest.starts_with('[') {
                    break;
                }
            }
        } else {
            out.push(rest.to_string());
        }
    }
    out
}

/// All values at `path` (a `*` step fans out over arrays and objects).
pub fn find_all<'a>(value: &'a Value, path: &str) -> Vec<&'a Value> {
    let mut cur = vec![value];
    for s in steps(path) {
        let mut next = Vec::new();
        for v in cur {
            match (s.as_str(), v) {
                ("*", Value::Array(a)) => next.extend(a.iter()),
                ("*", Value::Object(m)) => next.extend(m.values()),
                (k, Value::Object(m)) => next.extend(m.get(k)),
                (k, Value::Array(a)) => {
                    if let Ok(i) = k.parse::<usize>() {
                        next.extend(a.get(i));
                    }
                }
                _ => {}
            }
        }
        cur = next;
    }
    cur
}

/// The first value at `path`.
pub fn find<'a>(value: &'a Value, path: &str) -> Option<&'a Value> {
    find_all(value, path).into_iter().next()
}

/// The records of a page by `selector` (dlt: one list match is the page; nothing is an empty
/// page; anything else is wrapped in a list).
pub fn select_records(body: &Value, selector: &str) -> Vec<Value> {
    let found = find_all(body, selector);
    match found.as_slice() {
        [] => Vec::new(),
        [Value::Array(a)] => a.clone(),
        [Value::Null] => Vec::new(),
        [one] => vec![(*one).clone()],
        many => many.iter().map(|v| (*v).clone()).collect(),
    }
}

const RECORD_KEYS: [&str; 11] = [
    "data", "items", "results", "entries", "records", "rows", "entities", "payload", "content",
    "objects", "values",
];

/// dlt's auto-detected data selector for a response body.
pub fn detect_selector(body: &Value) -> String {
    if body.is_array() {
        return "$".into();
    }
    let mut lists: Vec<Vec<String>> = Vec::new();
    fn walk(v: &Value, path: &mut Vec<String>, out: &mut Vec<Vec<String>>) {
        if path.len() >= 3 {
            return;
        }
        if let Value::Object(m) = v {
            for (k, child) in m {
                path.push(k.clone());
                if child.is_array() {
                    out.push(path.clone());
                } else {
                    walk(child, path, out);
                }
                path.pop();
            }
        }
    }
    walk(body, &mut Vec::new(), &mut lists);
    let pick = lists
        .iter()
        .find(|p| p.last().is_some_and(|k| RECORD_KEYS.contains(&k.as_str())))
        .or_else(|| lists.first());
    match pick {
        Some(p) => p.join("."),
        None => "$".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn paths_and_detection() {
        let body =
            json!({"meta": {"x": [1]}, "data": {"items": [{"id": 1}, {"id": 2}]}, "next": null});
        assert_eq!(detect_selector(&body), "data.items");
        assert_eq!(select_records(&body, "$.data.items").len(), 2);
        assert_eq!(
            select_records(&body, "data.items[*].id"),
            vec![json!(1), json!(2)]
        );
        assert_eq!(find(&body, "data.items[1].id"), Some(&json!(2)));
        assert!(select_records(&body, "nope").is_empty());
        assert_eq!(detect_selector(&json!([1, 2])), "$");
        assert_eq!(detect_selector(&json!({"id": 1})), "$");
        assert_eq!(
            select_records(&json!({"id": 1}), "$"),
            vec![json!({"id": 1})]
        );
        assert_eq!(
            detect_selector(&json!({"a": [1], "results": [2]})),
            "results"
        );
    }
}
