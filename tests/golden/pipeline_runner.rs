//! Runs a golden case end to end: real pipelines through a destination plugin (the loaded
//! `.so`, found by the name of its [`GoldenDestination`] entry: DuckDB, PostgreSQL on the
//! machine's server, ...), then compares the whole dataset with dlt's after every run: tables,
//! columns with their types and nullability, rows (placeholders bound consistently across the
//! case), the decoded pipeline state rows, `state.sources`, the load info text, and which step
//! failed.
//!
//! dlt's cases were recorded on DuckDB ([`RECORDED`]). On another destination the
//! expectations are translated, not loosened: DuckDB's type names become the destination's
//! ([`GoldenDestination::column_type`], e.g. `VARCHAR` -> `character varying`, `JSON` ->
//! `jsonb` on PostgreSQL), JSON cells compare as JSON (jsonb reorders keys), the load info
//! names the destination and its location, and the state's `destination_type` is
//! `dlt.destinations.<name>` (so the state's hash is a different, but still consistent,
//! value).
//!
//! Names longer than the destination's [`GoldenDestination::max_identifier_length`] (63 on
//! PostgreSQL): dlt keeps them on DuckDB (its limit is 65536) and shortens them there, so the
//! expected table and column names (and the keys of the expected rows) are translated to what
//! dlt makes of them at that limit with the engine's naming functions ([`shortened_name`]:
//! every fragment of a `__` path is a normalized identifier, shortened on its own as
//! `normalize_identifier` does, then the joined path is shortened as `shorten_fragments` does;
//! a variant column `<column>__v_<type>` is made from its column's shortened name). The
//! schema's version hash then differs from dlt's DuckDB one, so the `_dlt_version.version_hash`
//! and `_dlt_loads.schema_version_hash` cells of such a case become placeholders (one per
//! distinct dlt hash). The translation assumes that a fragment longer than the limit was given
//! already normalized (its shortening tag is computed from the raw key, which the DuckDB output
//! does not show); the cases are written that way.
//!
//! The case format of tests/golden/README.md is implemented in full:
//! * `{"$decimal": "1.2"}` in a run's `data` is a Python `Decimal` in dlt. It reaches sluice as
//!   dlt's own typed-JSON form of a Decimal, the string `"\u{F026}1.2"` (U+F026 is the decimal
//!   marker with which dlt writes Decimals into its extracted JSON files; its normalizer, and
//!   sluice's, decode a string so marked into a Decimal). So type inference gives `decimal`
//!   (DECIMAL(38,9) on DuckDB, numeric(38,9) on PostgreSQL), decimals coerce into other columns
//!   and other values into a decimal column as in dlt, and variant columns arise where dlt's
//!   do, in root and nested tables alike. The alternatives were rejected: an Arrow
//!   `Decimal128` batch passes through without child tables, variants or dlt's system columns,
//!   and records a precision and scale dlt does not; a `decimal` column hint coerces every
//!   value into the column instead of making variants, and changes the schema and its hash.
//! * `destination_kwargs` are dlt's destination factory arguments. `max_identifier_length` and
//!   `max_column_identifier_length` become the destination config keys of the same names
//!   (at most the destination's own limit, 63 on PostgreSQL); any other key is refused by
//!   name.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde_json::{json, Value};
use sluice::naming::{Naming, NamingKind};
use sluice::pipeline::{state::decompress_state, CodeSource, Pipeline, Resource, RunOptions};
use sluice_registry::{Registry, SearchPath};
use sluice_tests::compare::{match_rows, Bindings};

use crate::destinations::{GoldenDestination, RECORDED, RECORDED_LOCATION};
use crate::normalize_runner::descriptor_of;

fn read_json(path: &Path) -> Result<Value, String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
    serde_json::from_str(&text).map_err(|e| format!("{}: {e}", path.display()))
}

/// `<target>/<profile>`, where the plugin libraries and manifests are.
pub fn plugin_dir() -> PathBuf {
    if let Some(d) = std::env::var_os("SLUICE_TEST_PLUGIN_DIR") {
        return PathBuf::from(d);
    }
    let exe = std::env::current_exe().unwrap_or_default();
    exe.parent()
        .and_then(Path::parent)
        .map(Path::to_path_buf)
        .unwrap_or_default()
}

fn expected_rows(t: &Value) -> Vec<BTreeMap<String, Value>> {
    t["rows"]
        .as_array()
        .map(|rows| {
            rows.iter()
                .filter_map(|r| serde_json::from_value(r.clone()).ok())
                .collect()
        })
        .unwrap_or_default()
}

/// The dataset every case loads into (dlt's recording used the same).
const DATASET: &str = "golden";

/// Runs one case end to end on `destination`.
pub fn run_case(dir: &Path, destination: &GoldenDestination) -> Result<String, String> {
    let case = dir
        .file_name()
        .and_then(|n| n.to_str())
        .unwrap_or("case")
        .to_string();
    let input = read_json(&dir.join("input.json"))?;
    let expected = read_json(&dir.join("expected.json"))?;
    let tmp = tempfile::tempdir().map_err(|e| e.to_string())?;
    let workdir = tmp.path();
    let connection = (destination.fresh_dataset)(workdir, DATASET);
    let mut config = connection.config;
    let mut naming = NamingKind::SnakeCase;
    if let Some(env) = input.get("env").and_then(Value::as_object) {
        for (k, v) in env {
            let v = v.as_str().unwrap_or_default();
            match k.as_str() {
                "SCHEMA__NAMING" => naming = NamingKind::parse(v).ok_or("unknown naming")?,
                "DESTINATION__REPLACE_STRATEGY" => config["replace_strategy"] = json!(v),
                other => return Err(format!("the harness does not know env `{other}`")),
            }
        }
    }
    let limits = identifier_limits(&input)?;
    for (key, value) in [
        ("max_identifier_length", limits.0),
        ("max_column_identifier_length", limits.1),
    ] {
        if let Some(v) = value {
            config[key] = json!(v.min(destination.max_identifier_length));
        }
    }
    // dlt's names on this destination: shortened at its limit where DuckDB's kept them longer
    let shortened_naming = {
        let own = destination.max_identifier_length;
        let limit = |v: Option<usize>| v.unwrap_or(own).min(own);
        let recorded = |v: Option<usize>| v.unwrap_or(RECORDED.max_identifier_length);
        let max = limit(limits.0).min(limit(limits.1));
        (max < recorded(limits.0).min(recorded(limits.1))).then(|| Naming::new(naming, Some(max)))
    };
    let registry = Registry::new(SearchPath::from_dirs([plugin_dir()]));
    let pipeline_name = format!("golden_{case}");
    let plugin =
        sluice_tests::open_destination(&registry, destination.name, &config, &connection.secrets)?;
    let mut builder = Pipeline::builder(&pipeline_name).destination(destination.name, plugin);
    if !connection.announced {
        // where the destination writes, as `sluice run` works it out
        builder = builder.destination_location(&connection.location);
    }
    let mut pipeline = builder
        .dataset_name(DATASET)
        .pipelines_dir(workdir.join("pipelines"))
        .naming(naming)
        .build()
        .map_err(|e| format!("cannot build the pipeline: {e}"))?;
    let runs = input["runs"].as_array().ok_or("no runs")?;
    let exp_runs = expected["runs"].as_array().ok_or("no expected runs")?;
    let mut bindings = Bindings::default();
    let mut hashes: BTreeMap<String, String> = BTreeMap::new();
    let load_id_re = regex::Regex::new(r"\d{10}\.\d+").map_err(|e| e.to_string())?;
    let duration_re = regex::Regex::new(r"finished in [^\n]*").map_err(|e| e.to_string())?;
    let workdir_text = workdir.display().to_string();
    // dlt's load info names the destination and its location
    let load_info_names = [
        (
            format!("destination {}", RECORDED.name),
            format!("destination {}", destination.name),
        ),
        (
            format!(
                "The {} destination used {RECORDED_LOCATION} location",
                RECORDED.name
            ),
            format!(
                "The {} destination used {} location",
                destination.name,
                connection.location.replace(&workdir_text, "<WORKDIR>")
            ),
        ),
    ];
    for (i, (run, exp)) in runs.iter().zip(exp_runs).enumerate() {
        let descriptor = descriptor_of(run)?;
        let data = match decode_values(&run["data"]) {
            Value::Array(items) => items,
            _ => Vec::new(),
        };
        let resource = Resource::from_values(run["table_name"].as_str().unwrap_or("items"), data)
            .descriptor(descriptor);
        let source = Arc::new(CodeSource::new(&pipeline_name, vec![resource]));
        let result = pipeline.run(source.as_ref(), &RunOptions::default());
        let exp_ok = exp
            .pointer("/outcome/ok")
            .and_then(Value::as_bool)
            .unwrap_or(false);
        match (&result, exp_ok) {
            (Ok(_), true) => {}
            (Err(e), false) => {
                let exp_step = exp
                    .pointer("/outcome/step")
                    .and_then(Value::as_str)
                    .unwrap_or("");
                let step = e.step().map(|s| s.name()).unwrap_or("?");
                if step != exp_step {
                    return Err(format!(
                        "run {i}: failed at `{step}` but dlt failed at `{exp_step}`: {e}"
                    ));
                }
            }
            (Ok(_), false) => return Err(format!("run {i}: dlt failed, sluice succeeded")),
            (Err(e), true) => return Err(format!("run {i}: {e}")),
        }
        if let Ok(info) = &result {
            // load_info prints like dlt's (paths and ids sanitized as the generator does)
            let text = info.to_string();
            let text = text.replace(&workdir_text, "<WORKDIR>");
            let text = load_id_re.replace_all(&text, "<LOAD_ID>").to_string();
            let text = duration_re
                .replace_all(&text, "finished in <DURATION>")
                .to_string();
            let mut exp_text = exp
                .pointer("/outcome/load_info")
                .and_then(Value::as_str)
                .unwrap_or("")
                .to_string();
            if !destination.is_recorded() {
                for (recorded, here) in &load_info_names {
                    exp_text = exp_text.replace(recorded, here);
                }
            }
            if text != exp_text {
                return Err(format!(
                    "run {i}: load info differs\n  expected: {exp_text:?}\n  actual:   {text:?}"
                ));
            }
        }
        // the dataset
        let mut actual = (destination.dump)(workdir, DATASET)?;
        let mut exp_tables = exp["tables"].as_object().cloned().unwrap_or_default();
        if let Some(shortened) = &shortened_naming {
            exp_tables = translate_names(shortened, exp_tables, &mut hashes);
        }
        let names_exp: Vec<&String> = exp_tables.keys().collect();
        let names_act: Vec<&String> = actual.keys().collect();
        if names_exp != names_act {
            return Err(format!(
                "run {i}: tables differ\n  expected: {names_exp:?}\n  actual:   {names_act:?}"
            ));
        }
        for (tname, t) in &exp_tables {
            let (cols, rows) = actual.remove(tname).unwrap_or_default();
            // the columns as dlt recorded them, then with this destination's types
            let recorded_cols: Vec<(String, &str, bool)> = t["columns"]
                .as_array()
                .map(|c| {
                    c.iter()
                        .map(|c| {
                            (
                                c[0].as_str().unwrap_or("").into(),
                                c[1].as_str().unwrap_or(""),
                                c[2].as_bool().unwrap_or(true),
                            )
                        })
                        .collect()
                })
                .unwrap_or_default();
            let exp_cols: Vec<(String, String, bool)> = recorded_cols
                .iter()
                .map(|(n, ty, null)| (n.clone(), (destination.column_type)(ty), *null))
                .collect();
            let json_columns: Vec<&str> = recorded_cols
                .iter()
                .filter(|(_, ty, _)| *ty == "JSON")
                .map(|(n, _, _)| n.as_str())
                .collect();
            if exp_cols != cols {
                return Err(format!("run {i}: columns of `{tname}` differ\n  expected: {exp_cols:?}\n  actual:   {cols:?}"));
            }
            let mut names: Vec<String> = cols.iter().map(|c| c.0.clone()).collect();
            let mut rows = rows;
            if tname == "_dlt_pipeline_state" {
                for r in &mut rows {
                    let decoded = r
                        .get("state")
                        .and_then(Value::as_str)
                        .map(decompress_state)
                        .transpose()
                        .map_err(|e| e.to_string())?
                        .unwrap_or(Value::Null);
                    r.insert("state".into(), json!("<compressed: see state__decoded>"));
                    r.insert("state__decoded".into(), decoded);
                }
                names.push("state__decoded".into());
            }
            if tname == "_dlt_version" {
                for r in &mut rows {
                    r.insert("schema".into(), json!("<full stored schema JSON omitted>"));
                }
            }
            let mut expected = expected_rows(t);
            if !destination.is_recorded() {
                translate_rows(
                    destination,
                    tname,
                    &json_columns,
                    &mut expected,
                    &mut rows,
                    &mut hashes,
                );
            }
            match_rows(tname, &expected, &rows, &names, &mut bindings)
                .map_err(|e| format!("run {i}: {e}"))?;
        }
        // state.sources
        let exp_sources = exp.get("state_sources").cloned().unwrap_or(json!({}));
        let ours = pipeline
            .state()
            .get("sources")
            .cloned()
            .unwrap_or(json!({}));
        if exp_sources != ours {
            return Err(format!(
                "run {i}: state.sources differ\n  expected: {exp_sources}\n  actual:   {ours}"
            ));
        }
    }
    Ok(String::new())
}

/// The case's `destination_kwargs` as (`max_identifier_length`, `max_column_identifier_length`);
/// other keys are refused.
pub fn identifier_limits(input: &Value) -> Result<(Option<usize>, Option<usize>), String> {
    let mut out = (None, None);
    let Some(kwargs) = input.get("destination_kwargs").and_then(Value::as_object) else {
        return Ok(out);
    };
    for (k, v) in kwargs {
        let n = v.as_u64().filter(|&n| n > 0).ok_or(format!(
            "destination_kwargs `{k}` must be a positive integer, got {v}"
        ))? as usize;
        match k.as_str() {
            "max_identifier_length" => out.0 = Some(n),
            "max_column_identifier_length" => out.1 = Some(n),
            other => {
                return Err(format!(
                    "the harness does not know destination_kwargs `{other}` (only the identifier lengths are destination config keys)"
                ))
            }
        }
    }
    Ok(out)
}

/// The case's data with `{"$decimal": "1.2"}` turned into dlt's typed-JSON form of a Python
/// Decimal, `"\u{F026}1.2"` (see the module docs).
pub fn decode_values(v: &Value) -> Value {
    match v {
        Value::Object(m) => {
            if m.len() == 1 {
                if let Some(Value::String(d)) = m.get("$decimal") {
                    return Value::String(format!("\u{F026}{d}"));
                }
            }
            Value::Object(
                m.iter()
                    .map(|(k, v)| (k.clone(), decode_values(v)))
                    .collect(),
            )
        }
        Value::Array(items) => Value::Array(items.iter().map(decode_values).collect()),
        other => other.clone(),
    }
}

/// The data types a variant column is named after (`<column>__v_<type>`).
const VARIANT_TYPES: [&str; 11] = [
    "text",
    "bigint",
    "double",
    "bool",
    "timestamp",
    "date",
    "time",
    "decimal",
    "wei",
    "binary",
    "json",
];

/// The name dlt gives at `naming`'s maximum length (a destination's shorter limit) to a
/// table or column it named `name` on DuckDB (see the module docs): a name within the limit is
/// unchanged; otherwise every `__` fragment is shortened as an identifier and the path as
/// `shorten_fragments` does, a variant from its column's shortened name.
pub fn shortened_name(naming: &Naming, name: &str) -> String {
    let max = naming.max_length.unwrap_or(usize::MAX);
    if name.chars().count() <= max {
        return name.to_string();
    }
    let sep = naming.path_separator();
    let fragments: Vec<&str> = name.split(sep).collect();
    if let Some((last, init)) = fragments.split_last() {
        let is_variant = last
            .strip_prefix("v_")
            .is_some_and(|t| VARIANT_TYPES.contains(&t));
        if is_variant && !init.is_empty() {
            let base = shortened_name(naming, &init.join(sep));
            return naming.shorten_fragments(&[base.as_str(), *last]);
        }
    }
    let shortened: Vec<String> = fragments
        .iter()
        .map(|f| Naming::shorten_identifier(f, f, max))
        .collect();
    let refs: Vec<&str> = shortened.iter().map(String::as_str).collect();
    naming.shorten_fragments(&refs)
}

/// dlt's expected tables with the names it would give at `naming`'s maximum length; when any
/// name changes, the schema hashes of `_dlt_version` and `_dlt_loads` become placeholders.
fn translate_names(
    naming: &Naming,
    tables: serde_json::Map<String, Value>,
    hashes: &mut BTreeMap<String, String>,
) -> serde_json::Map<String, Value> {
    let mut changed = false;
    // sorted by the new names, as the dumps are
    let mut out: BTreeMap<String, Value> = BTreeMap::new();
    for (tname, mut t) in tables {
        let new_name = shortened_name(naming, &tname);
        changed |= new_name != tname;
        if let Some(cols) = t.get_mut("columns").and_then(Value::as_array_mut) {
            for c in cols {
                if let Some(n) = c.get(0).and_then(Value::as_str).map(String::from) {
                    let new = shortened_name(naming, &n);
                    changed |= new != n;
                    c[0] = json!(new);
                }
            }
        }
        if let Some(rows) = t.get_mut("rows").and_then(Value::as_array_mut) {
            for r in rows {
                if let Value::Object(m) = r {
                    *m = std::mem::take(m)
                        .into_iter()
                        .map(|(k, v)| (shortened_name(naming, &k), v))
                        .collect();
                }
            }
        }
        out.insert(new_name, t);
    }
    if changed {
        for (table, column) in [
            ("_dlt_version", "version_hash"),
            ("_dlt_loads", "schema_version_hash"),
        ] {
            let rows = out
                .get_mut(table)
                .and_then(|t| t.get_mut("rows"))
                .and_then(Value::as_array_mut);
            for r in rows.into_iter().flatten() {
                if let Some(h) = r.get(column).and_then(Value::as_str).map(String::from) {
                    let n = hashes.len();
                    let p = hashes
                        .entry(h)
                        .or_insert_with(|| format!("VOLATILE_x{}", 900 + n))
                        .clone();
                    r[column] = json!(p);
                }
            }
        }
    }
    out.into_iter().collect()
}

/// dlt's expectations of `table` as they read on `destination` (not the recorded one): the
/// cells of `json_columns` as parsed JSON on both sides (PostgreSQL's jsonb orders keys its own
/// way), the state's destination type, and the state hashes (of a state that names another
/// destination) as placeholders, one per distinct dlt hash.
fn translate_rows(
    destination: &GoldenDestination,
    table: &str,
    json_columns: &[&str],
    expected: &mut [BTreeMap<String, Value>],
    actual: &mut [BTreeMap<String, Value>],
    hashes: &mut BTreeMap<String, String>,
) {
    for &name in json_columns {
        for r in expected.iter_mut().chain(actual.iter_mut()) {
            if let Some(Value::String(s)) = r.get(name) {
                if let Ok(v) = serde_json::from_str::<Value>(s) {
                    r.insert(name.to_string(), json!({ "json": v }));
                }
            }
        }
    }
    if table != "_dlt_pipeline_state" {
        return;
    }
    let mut placeholder = |h: &str| {
        let n = hashes.len();
        hashes
            .entry(h.to_string())
            .or_insert_with(|| format!("VOLATILE_x{}", 900 + n))
            .clone()
    };
    for r in expected.iter_mut() {
        if let Some(h) = r
            .get("version_hash")
            .and_then(Value::as_str)
            .map(String::from)
        {
            r.insert("version_hash".into(), json!(placeholder(&h)));
        }
        if let Some(d) = r.get_mut("state__decoded").and_then(Value::as_object_mut) {
            let recorded_type = format!("dlt.destinations.{}", RECORDED.name);
            if d.get("destination_type").and_then(Value::as_str) == Some(recorded_type.as_str()) {
                d.insert(
                    "destination_type".into(),
                    json!(format!("dlt.destinations.{}", destination.name)),
                );
            }
            if let Some(h) = d
                .get("_version_hash")
                .and_then(Value::as_str)
                .map(String::from)
            {
                d.insert("_version_hash".into(), json!(placeholder(&h)));
            }
        }
    }
}
