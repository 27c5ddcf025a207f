//! `dlt.sources.incremental` (spec h): the cursor window of a resource run, row filtering with
//! boundary deduplication, and the state kept under
//! `sources.<section>.resources.<resource>.incremental.<cursor_path>`.

use std::cmp::Ordering;

use arrow_array::{Array, BooleanArray, RecordBatch};
use serde_json::{json, Map, Value};
use sluice_sdk::resource::{IncrementalSpec, IncrementalWindow};

use crate::hash::{dedup_hash, sorted_json};
use crate::json::{self, Doc, NodeRef, Parser};
use crate::{Error, Result};

fn compare(a: &Value, b: &Value) -> Option<Ordering> {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => {
            if let (Some(x), Some(y)) = (x.as_i64(), y.as_i64()) {
                Some(x.cmp(&y))
            } else {
                x.as_f64()?.partial_cmp(&y.as_f64()?)
            }
        }
        (Value::String(x), Value::String(y)) => {
            // ISO datetimes in different styles (`Z` and `+00:00`, with and without fractions)
            // compare as instants; strings of one style compare as text
            if x.len() != y.len() {
                if let (Ok(a), Ok(b)) = (
                    chrono::DateTime::parse_from_rfc3339(x),
                    chrono::DateTime::parse_from_rfc3339(y),
                ) {
                    return Some(a.cmp(&b));
                }
            }
            Some(x.cmp(y))
        }
        (Value::Bool(x), Value::Bool(y)) => Some(x.cmp(y)),
        _ => None,
    }
}

/// One resource run's incremental filter.
#[derive(Debug, Clone)]
pub struct Incremental {
    spec: IncrementalSpec,
    resource: String,
    max: bool,
    /// the stored state at the start of the run (`initial_value`, `last_value`, ...)
    start_value: Option<Value>,
    initial_value: Option<Value>,
    last_value: Option<Value>,
    last_at_start: Option<Value>,
    stored_hashes: Vec<String>,
    boundary_hashes: Vec<String>,
    primary_key: Option<Vec<String>>,
    yielded: bool,
    path: Vec<String>,
    /// `row_order` says no later row can be in the window: the source may stop.
    stop: bool,
}

/// `value` moved by `lag`: numbers by units, ISO datetimes by seconds, ISO dates by days
/// (spec h); a value of another kind is returned unchanged.
fn apply_lag(value: &Value, lag: f64) -> Value {
    match value {
        Value::Number(n) => match (n.as_i64(), lag.fract() == 0.0) {
            (Some(i), true) => json!(i + lag as i64),
            _ => n.as_f64().map_or(value.clone(), |f| json!(f + lag)),
        },
        Value::String(s) => {
            if let Ok(d) = chrono::NaiveDate::parse_from_str(s, "%Y-%m-%d") {
                let days = chrono::Duration::days(lag.trunc() as i64);
                return json!(d
                    .checked_add_signed(days)
                    .unwrap_or(d)
                    .format("%Y-%m-%d")
                    .to_string());
            }
            let micros = chrono::Duration::microseconds((lag * 1e6).round() as i64);
            if let Ok(t) = chrono::DateTime::parse_from_rfc3339(s) {
                let moved = t.checked_add_signed(micros).unwrap_or(t);
                // keep the value's own style: `Z` or an offset
                let utc_z = s.ends_with('Z') || s.ends_with('z');
                return json!(moved.to_rfc3339_opts(chrono::SecondsFormat::AutoSi, utc_z));
            }
            for fmt in ["%Y-%m-%dT%H:%M:%S%.f", "%Y-%m-%d %H:%M:%S%.f"] {
                if let Ok(t) = chrono::NaiveDateTime::parse_from_str(s, fmt) {
                    let moved = t.checked_add_signed(micros).unwrap_or(t);
                    let out = moved.format("%Y-%m-%dT%H:%M:%S%.f").to_string();
                    return json!(if fmt.contains(' ') {
                        out.replacen('T', " ", 1)
                    } else {
                        out
                    });
                }
            }
            value.clone()
        }
        _ => value.clone(),
    }
}

fn value_of(node: NodeRef<'_, '_>) -> Value {
    let mut s = String::new();
    json::write_compact(node, &mut s);
    serde_json::from_str(&s).unwrap_or(Value::Null)
}

impl Incremental {
    /// The filter for `spec` given the stored incremental state (the `incremental.<cursor>`
    /// object, if any) and the resource's primary key.
    pub fn new(
        resource: &str,
        spec: &IncrementalSpec,
        stored: Option<&Map<String, Value>>,
        resource_primary_key: Option<Vec<String>>,
    ) -> Result<Self> {
        let max = match spec.last_value_func.as_deref() {
            None | Some("max") => true,
            Some("min") => false,
            Some(other) => {
                return Err(Error::config(format!(
                    "incremental `last_value_func` of resource `{resource}` must be `max` or `min`, got `{other}`"
                )))
            }
        };
        let initial_value = spec.initial_value.clone();
        let last_value = stored
            .and_then(|s| s.get("last_value").cloned())
            .filter(|v| !v.is_null())
            .or_else(|| initial_value.clone());
        let stored_hashes = stored
            .and_then(|s| s.get("unique_hashes"))
            .and_then(Value::as_array)
            .map(|a| {
                a.iter()
                    .filter_map(Value::as_str)
                    .map(String::from)
                    .collect()
            })
            .unwrap_or_default();
        let primary_key = match &spec.primary_key {
            Some(k) => Some(
                k.columns()
                    .into_iter()
                    .map(String::from)
                    .collect::<Vec<_>>(),
            ),
            None => resource_primary_key,
        };
        let path: Vec<String> = spec
            .cursor_path
            .trim_start_matches("$.")
            .split('.')
            .map(String::from)
            .collect();
        let start_value = match (spec.lag, &last_value) {
            (Some(lag), Some(v)) => Some(apply_lag(v, if max { -lag } else { lag })),
            _ => last_value.clone(),
        };
        Ok(Self {
            spec: spec.clone(),
            resource: resource.to_string(),
            max,
            start_value,
            initial_value,
            last_at_start: last_value.clone(),
            last_value,
            stored_hashes,
            boundary_hashes: Vec::new(),
            primary_key,
            yielded: false,
            path,
            stop: false,
        })
    }

    /// The window the source may use to narrow its query.
    pub fn window(&self) -> IncrementalWindow {
        IncrementalWindow {
            spec: self.spec.clone(),
            start_value: self.start_value.clone(),
            last_value: self.last_value.clone(),
            end_value: self.spec.end_value.clone(),
        }
    }

    fn func_is_new(&self, v: &Value, than: &Value) -> Result<bool> {
        let ord = compare(v, than).ok_or_else(|| {
            Error::data(format!(
                "resource `{}`: cannot compare cursor `{}` values {v} and {than}: they have different types",
                self.resource, self.spec.cursor_path
            ))
        })?;
        Ok(if self.max {
            ord == Ordering::Greater
        } else {
            ord == Ordering::Less
        })
    }

    fn dedup_disabled(&self) -> bool {
        self.spec.range_start.as_deref() == Some("open")
            || self.spec.end_value.is_some()
            || self.spec.lag.is_some()
            || self.primary_key.as_ref().is_some_and(Vec::is_empty)
    }

    fn row_hash(&self, item: NodeRef<'_, '_>) -> String {
        let text = match &self.primary_key {
            Some(pk) if pk.len() == 1 => item
                .get(&pk[0])
                .map(|n| {
                    let mut s = String::new();
                    json::write_sorted(n, &mut s);
                    s
                })
                .unwrap_or_else(|| "null".into()),
            Some(pk) => {
                let vals: Vec<Value> = pk
                    .iter()
                    .map(|k| item.get(k).map(value_of).unwrap_or(Value::Null))
                    .collect();
                sorted_json(&Value::Array(vals))
            }
            None => {
                let mut s = String::new();
                json::write_sorted(item, &mut s);
                s
            }
        };
        dedup_hash(&text)
    }

    /// Decides whether to keep an item, updating the run's state.
    pub fn keep(&mut self, item: NodeRef<'_, '_>) -> Result<bool> {
        let mut node = Some(item);
        for key in &self.path {
            node = node.and_then(|n| n.get(key));
        }
        let cursor = match node {
            Some(n) if !n.is_null() => Some(value_of(n)),
            _ => None,
        };
        let mut hash = |this: &Self| this.row_hash(item);
        self.keep_cursor(cursor, &mut hash)
    }

    /// The decision for one row given its cursor value (`None` when missing or null);
    /// `hash` computes the row's deduplication hash when the boundary needs it.
    fn keep_cursor(
        &mut self,
        cursor: Option<Value>,
        hash: &mut dyn FnMut(&Self) -> String,
    ) -> Result<bool> {
        let cursor = match cursor {
            Some(c) => c,
            None => {
                return match self.spec.on_cursor_value_missing.as_deref() {
                    Some("include") => Ok(true),
                    Some("exclude") => Ok(false),
                    _ => Err(Error::data(format!(
                        "resource `{}`: an item has no value for the incremental cursor `{}`\nhint: set `on_cursor_value_missing` to `include` or `exclude`",
                        self.resource, self.spec.cursor_path
                    ))),
                }
            }
        };
        if let Some(end) = &self.spec.end_value {
            let past = self.func_is_new(&cursor, end)?;
            let at_end = compare(&cursor, end) == Some(Ordering::Equal);
            if past || (at_end && self.spec.range_end.as_deref() != Some("closed")) {
                // rows in ascending order: everything after this one is past the end too
                self.stop |= self.spec.row_order.as_deref() == Some("asc");
                return Ok(false);
            }
        }
        let advances = match &self.last_value {
            None => true,
            Some(last) => self.func_is_new(&cursor, last)?,
        };
        if advances {
            self.last_value = Some(cursor);
            self.boundary_hashes.clear();
            if !self.dedup_disabled() {
                let h = hash(self);
                self.boundary_hashes.push(h);
            }
            self.yielded = true;
            return Ok(true);
        }
        if let Some(start) = &self.start_value {
            let equal_start = compare(&cursor, start) == Some(Ordering::Equal);
            if equal_start {
                if self.spec.range_start.as_deref() == Some("open") {
                    return Ok(false);
                }
                if !self.dedup_disabled() {
                    let h = hash(self);
                    if self.stored_hashes.contains(&h) {
                        return Ok(false);
                    }
                }
            } else if !self.func_is_new(&cursor, start)? {
                // behind the start value; in descending order so is everything after it
                self.stop |= self.spec.row_order.as_deref() == Some("desc");
                return Ok(false);
            }
        }
        if !self.dedup_disabled()
            && self
                .last_value
                .as_ref()
                .is_some_and(|l| compare(&cursor, l) == Some(Ordering::Equal))
        {
            let h = hash(self);
            if !self.boundary_hashes.contains(&h) {
                self.boundary_hashes.push(h);
            }
        }
        self.yielded = true;
        Ok(true)
    }

    /// Filters a typed Arrow batch on its cursor column (a top-level column, as dlt requires
    /// for Arrow tables): the kept rows, in order.
    pub fn filter_batch(&mut self, batch: &RecordBatch) -> Result<RecordBatch> {
        let schema = batch.schema();
        let name = self.spec.cursor_path.trim_start_matches("$.");
        let idx = schema.index_of(name).map_err(|_| {
            Error::data(format!(
                "resource `{}`: the incremental cursor `{}` is not a column of the data (columns: {})",
                self.resource,
                self.spec.cursor_path,
                schema.fields().iter().map(|f| f.name().as_str()).collect::<Vec<_>>().join(", ")
            ))
        })?;
        let cursor_col = batch.column(idx).clone();
        let pk_idx: Option<Vec<usize>> = self
            .primary_key
            .as_ref()
            .map(|pk| pk.iter().filter_map(|k| schema.index_of(k).ok()).collect());
        let mut mask = Vec::with_capacity(batch.num_rows());
        for row in 0..batch.num_rows() {
            if self.stop {
                mask.push(false);
                continue;
            }
            let cursor = arrow_value(cursor_col.as_ref(), row);
            let cursor = (!cursor.is_null()).then_some(cursor);
            let mut hash = |_: &Self| -> String {
                let text = match &pk_idx {
                    Some(cols) if cols.len() == 1 => {
                        sorted_json(&arrow_value(batch.column(cols[0]).as_ref(), row))
                    }
                    Some(cols) => sorted_json(&Value::Array(
                        cols.iter()
                            .map(|&c| arrow_value(batch.column(c).as_ref(), row))
                            .collect(),
                    )),
                    None => {
                        let m: Map<String, Value> = schema
                            .fields()
                            .iter()
                            .enumerate()
                            .map(|(i, f)| {
                                (f.name().clone(), arrow_value(batch.column(i).as_ref(), row))
                            })
                            .collect();
                        sorted_json(&Value::Object(m))
                    }
                };
                dedup_hash(&text)
            };
            mask.push(self.keep_cursor(cursor, &mut hash)?);
        }
        if mask.iter().all(|&k| k) {
            return Ok(batch.clone());
        }
        arrow_select::filter::filter_record_batch(batch, &BooleanArray::from(mask))
            .map_err(|e| Error::internal(format!("incremental filter: {e}")))
    }

    /// Whether `row_order` tells that no later row can be in the window (the source's stream
    /// is then closed early, as dlt closes the generator).
    pub fn should_stop(&self) -> bool {
        self.stop
    }

    /// Filters a text of JSON documents; the kept items are appended to `out` as JSON lines.
    pub fn filter_text(&mut self, text: &str, out: &mut String) -> Result<()> {
        self.filter_text_from(text, out, None)
    }

    /// [`Incremental::filter_text`] of a text that comes from `origin` (a file and the line
    /// the text starts at): invalid JSON is reported with the name and line.
    pub fn filter_text_from(
        &mut self,
        text: &str,
        out: &mut String,
        origin: Option<&crate::normalize::TextOrigin>,
    ) -> Result<()> {
        let mut parser = Parser::new(text);
        let mut doc = Doc::new();
        loop {
            let start = parser.offset();
            let more = parser.next_document(&mut doc).map_err(|e| match origin {
                Some(o) => crate::normalize::invalid_json(
                    &format!("resource `{}`", self.resource),
                    text,
                    start,
                    &e,
                    std::slice::from_ref(o),
                ),
                None => Error::data(format!(
                    "invalid JSON from resource `{}`: {e}",
                    self.resource
                )),
            })?;
            if !more {
                break;
            }
            let root = doc.root();
            let items: Vec<NodeRef<'_, '_>> = if root.is_array() {
                root.items().collect()
            } else {
                vec![root]
            };
            for item in items {
                if self.stop {
                    return Ok(());
                }
                if self.keep(item)? {
                    json::write_compact(item, out);
                    out.push('\n');
                }
            }
        }
        Ok(())
    }

    /// The incremental state after the run (`None` when `end_value` is set: dlt keeps no state
    /// for a bounded window).
    pub fn final_state(&self, previous: Option<&Map<String, Value>>) -> Option<Value> {
        if self.spec.end_value.is_some() {
            return previous.map(|p| Value::Object(p.clone()));
        }
        let mut hashes = self.boundary_hashes.clone();
        if self.last_value == self.last_at_start {
            for h in &self.stored_hashes {
                if !hashes.contains(h) {
                    hashes.push(h.clone());
                }
            }
        }
        let start_value = if self.yielded {
            self.last_at_start.clone()
        } else {
            previous
                .and_then(|p| p.get("start_value").cloned())
                .or_else(|| self.last_at_start.clone())
        };
        Some(json!({
            "initial_value": self.initial_value.clone().unwrap_or(Value::Null),
            "last_value": self.last_value.clone().unwrap_or(Value::Null),
            "unique_hashes": hashes,
            "start_value": start_value.unwrap_or(Value::Null),
        }))
    }
}

/// One Arrow value as JSON, as the incremental cursor compares it: numbers, text, booleans,
/// dates as `YYYY-MM-DD`, timestamps as ISO 8601 (`+00:00` when zoned or naive UTC).
fn arrow_value(col: &dyn Array, row: usize) -> Value {
    use arrow_array::cast::AsArray;
    use arrow_array::types::*;
    use arrow_schema::{DataType, TimeUnit};
    if col.is_null(row) {
        return Value::Null;
    }
    match col.data_type() {
        DataType::Int8 => json!(col.as_primitive::<Int8Type>().value(row)),
        DataType::Int16 => json!(col.as_primitive::<Int16Type>().value(row)),
        DataType::Int32 => json!(col.as_primitive::<Int32Type>().value(row)),
        DataType::Int64 => json!(col.as_primitive::<Int64Type>().value(row)),
        DataType::UInt8 => json!(col.as_primitive::<UInt8Type>().value(row)),
        DataType::UInt16 => json!(col.as_primitive::<UInt16Type>().value(row)),
        DataType::UInt32 => json!(col.as_primitive::<UInt32Type>().value(row)),
        DataType::UInt64 => json!(col.as_primitive::<UInt64Type>().value(row)),
        DataType::Float32 => json!(col.as_primitive::<Float32Type>().value(row)),
        DataType::Float64 => json!(col.as_primitive::<Float64Type>().value(row)),
        DataType::Boolean => json!(col.as_boolean().value(row)),
        DataType::Utf8 => json!(col.as_string::<i32>().value(row)),
        DataType::LargeUtf8 => json!(col.as_string::<i64>().value(row)),
        DataType::Utf8View => json!(col.as_string_view().value(row)),
        DataType::Date32 => {
            let days = col.as_primitive::<Date32Type>().value(row);
            chrono::NaiveDate::from_num_days_from_ce_opt(days + 719_163)
                .map_or(Value::Null, |d| json!(d.format("%Y-%m-%d").to_string()))
        }
        DataType::Timestamp(unit, _) => {
            let v = match unit {
                TimeUnit::Second => {
                    col.as_primitive::<TimestampSecondType>().value(row) * 1_000_000
                }
                TimeUnit::Millisecond => {
                    col.as_primitive::<TimestampMillisecondType>().value(row) * 1_000
                }
                TimeUnit::Microsecond => col.as_primitive::<TimestampMicrosecondType>().value(row),
                TimeUnit::Nanosecond => {
                    col.as_primitive::<TimestampNanosecondType>().value(row) / 1_000
                }
            };
            chrono::DateTime::from_timestamp_micros(v).map_or(Value::Null, |t| {
                json!(t.to_rfc3339_opts(chrono::SecondsFormat::AutoSi, false))
            })
        }
        _ => {
            let s = arrow_cast::display::array_value_to_string(col, row).unwrap_or_default();
            json!(s)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec() -> IncrementalSpec {
        serde_json::from_value(
            json!({"cursor_path": "updated_at", "initial_value": 2, "primary_key": "id"}),
        )
        .expect("spec")
    }

    #[test]
    fn golden_incremental_cursor_two_runs() {
        let mut inc = Incremental::new("tickets", &spec(), None, None).expect("inc");
        let mut out = String::new();
        inc.filter_text(
            r#"[{"id":1,"updated_at":1},{"id":2,"updated_at":2},{"id":3,"updated_at":3},{"id":4,"updated_at":3}]"#,
            &mut out,
        )
        .expect("filter");
        assert_eq!(out.lines().count(), 3);
        let state = inc.final_state(None).expect("state");
        assert_eq!(
            state,
            json!({"initial_value": 2, "last_value": 3, "unique_hashes": ["Cn/dwi436vBb", "9ydaHrzwo9f8"], "start_value": 2})
        );
        let stored = state.as_object().cloned();
        let mut inc = Incremental::new("tickets", &spec(), stored.as_ref(), None).expect("inc");
        let mut out = String::new();
        inc.filter_text(
            r#"[{"id":3,"updated_at":3},{"id":4,"updated_at":3},{"id":5,"updated_at":3},{"id":6,"updated_at":4},{"id":7,"updated_at":2}]"#,
            &mut out,
        )
        .expect("filter");
        let ids: Vec<Value> = out
            .lines()
            .map(|l| serde_json::from_str::<Value>(l).expect("json")["id"].clone())
            .collect();
        assert_eq!(ids, vec![json!(5), json!(6)]);
        assert_eq!(
            inc.final_state(stored.as_ref()).expect("state"),
            json!({"initial_value": 2, "last_value": 4, "unique_hashes": ["Idkwk/6E20TE"], "start_value": 3})
        );
    }

    #[test]
    fn missing_cursor_values_follow_the_setting() {
        let mut s = spec();
        let mut inc = Incremental::new("t", &s, None, None).expect("inc");
        let mut out = String::new();
        let err = inc
            .filter_text(r#"{"id": 1}"#, &mut out)
            .expect_err("raise");
        assert!(
            err.to_string()
                .contains("no value for the incremental cursor `updated_at`"),
            "{err}"
        );
        s.on_cursor_value_missing = Some("include".into());
        let mut inc = Incremental::new("t", &s, None, None).expect("inc");
        inc.filter_text(r#"{"id": 1}"#, &mut out).expect("include");
        assert_eq!(out.lines().count(), 1);
    }

    #[test]
    fn lag_moves_the_start_of_numbers_datetimes_and_dates() {
        assert_eq!(apply_lag(&json!(10), -3.0), json!(7));
        assert_eq!(apply_lag(&json!(1.5), -0.5), json!(1.0));
        assert_eq!(
            apply_lag(&json!("2024-03-01T00:00:30Z"), -60.0),
            json!("2024-02-29T23:59:30Z")
        );
        assert_eq!(
            apply_lag(&json!("2024-03-01T10:00:00+02:00"), -3600.0),
            json!("2024-03-01T09:00:00+02:00")
        );
        assert_eq!(
            apply_lag(&json!("2024-03-01 10:00:00"), 1.5),
            json!("2024-03-01 10:00:01.500")
        );
        assert_eq!(apply_lag(&json!("2024-03-01"), -2.0), json!("2024-02-28"));
        assert_eq!(apply_lag(&json!("abc"), -2.0), json!("abc"));
    }

    #[test]
    fn lag_reloads_the_lagged_window_but_keeps_last_value() {
        let s: IncrementalSpec = serde_json::from_value(
            json!({"cursor_path": "ts", "initial_value": "2024-01-01T00:00:00Z", "lag": 3600}),
        )
        .expect("spec");
        let stored = json!({"initial_value": "2024-01-01T00:00:00Z", "last_value": "2024-01-02T12:00:00Z",
            "unique_hashes": [], "start_value": "2024-01-01T00:00:00Z"});
        let mut inc = Incremental::new("t", &s, stored.as_object(), None).expect("inc");
        assert_eq!(
            inc.window().start_value,
            Some(json!("2024-01-02T11:00:00Z"))
        );
        let mut out = String::new();
        inc.filter_text(
            r#"{"ts": "2024-01-02T10:59:59Z"} {"ts": "2024-01-02T11:30:00Z"} {"ts": "2024-01-02T12:00:00Z"}"#,
            &mut out,
        )
        .expect("filter");
        assert_eq!(out.lines().count(), 2, "{out}");
        let state = inc.final_state(stored.as_object()).expect("state");
        assert_eq!(state["last_value"], json!("2024-01-02T12:00:00Z"));
    }

    #[test]
    fn row_order_stops_at_the_end_of_the_window() {
        let asc: IncrementalSpec = serde_json::from_value(
            json!({"cursor_path": "n", "initial_value": 0, "end_value": 3, "row_order": "asc"}),
        )
        .expect("spec");
        let mut inc = Incremental::new("t", &asc, None, None).expect("inc");
        let mut out = String::new();
        inc.filter_text(r#"{"n": 1} {"n": 2} {"n": 3} {"n": 1}"#, &mut out)
            .expect("filter");
        assert_eq!(out.lines().count(), 2);
        assert!(inc.should_stop());
        // without row_order every row is looked at
        let mut unordered = asc.clone();
        unordered.row_order = None;
        let mut inc = Incremental::new("t", &unordered, None, None).expect("inc");
        let mut out = String::new();
        inc.filter_text(r#"{"n": 1} {"n": 3} {"n": 2}"#, &mut out)
            .expect("filter");
        assert_eq!(out.lines().count(), 2);
        assert!(!inc.should_stop());
        // descending: a row behind the start ends the window
        let desc: IncrementalSpec = serde_json::from_value(
            json!({"cursor_path": "n", "initial_value": 5, "row_order": "desc"}),
        )
        .expect("spec");
        let mut inc = Incremental::new("t", &desc, None, None).expect("inc");
        let mut out = String::new();
        inc.filter_text(r#"{"n": 9} {"n": 7} {"n": 4} {"n": 8}"#, &mut out)
            .expect("filter");
        assert_eq!(out.lines().count(), 2);
        assert!(inc.should_stop());
    }

    #[test]
    fn arrow_batches_filter_on_a_column_with_boundary_dedup() {
        use arrow_array::{Int64Array, StringArray, TimestampMicrosecondArray};
        use std::sync::Arc;
        let schema = Arc::new(arrow_schema::Schema::new(vec![
            arrow_schema::Field::new("id", arrow_schema::DataType::Int64, false),
            arrow_schema::Field::new(
                "ts",
                arrow_schema::DataType::Timestamp(arrow_schema::TimeUnit::Microsecond, None),
                true,
            ),
            arrow_schema::Field::new("v", arrow_schema::DataType::Utf8, true),
        ]));
        let day = 86_400_000_000i64;
        let batch = RecordBatch::try_new(
            schema,
            vec![
                Arc::new(Int64Array::from(vec![1, 2, 3, 4])),
                Arc::new(TimestampMicrosecondArray::from(vec![
                    day,
                    2 * day,
                    3 * day,
                    3 * day,
                ])),
                Arc::new(StringArray::from(vec!["a", "b", "c", "d"])),
            ],
        )
        .expect("batch");
        let spec: IncrementalSpec = serde_json::from_value(
            json!({"cursor_path": "ts", "initial_value": "1970-01-03T00:00:00Z"}),
        )
        .expect("spec");
        let mut inc = Incremental::new("t", &spec, None, Some(vec!["id".into()])).expect("inc");
        let kept = inc.filter_batch(&batch).expect("filter");
        // the initial value is inclusive, in another ISO style than the column's
        assert_eq!(kept.num_rows(), 3);
        let state = inc.final_state(None).expect("state");
        assert_eq!(state["last_value"], json!("1970-01-04T00:00:00+00:00"));
        assert_eq!(state["unique_hashes"].as_array().map(Vec::len), Some(2));
        // the next run: rows at the boundary seen before are dropped
        let stored = state.as_object().cloned().expect("obj");
        let mut next =
            Incremental::new("t", &spec, Some(&stored), Some(vec!["id".into()])).expect("inc");
        assert_eq!(next.filter_batch(&batch).expect("filter").num_rows(), 0);
        // a missing cursor column is named
        let e = Incremental::new(
            "t",
            &serde_json::from_value(json!({"cursor_path": "nope"})).expect("spec"),
            None,
            None,
        )
        .expect("inc")
        .filter_batch(&batch)
        .expect_err("missing column");
        assert!(e.to_string().contains("`nope` is not a column"), "{e}");
    }
}
