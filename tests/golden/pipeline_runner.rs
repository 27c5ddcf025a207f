//! Runs a golden case end to end: real pipelines through the DuckDB destination plugin (the
//! loaded `.so`), then compares the whole dataset with dlt's after every run: tables, columns
//! with DuckDB types and nullability, rows (placeholders bound consistently across the case),
//! the decoded pipeline state rows, `state.sources`, and which step failed.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde_json::{json, Value};
use sluice::naming::NamingKind;
use sluice::pipeline::{state::decompress_state, CodeSource, Pipeline, Resource, RunOptions};
use sluice_destination_duckdb::duckdb;
use sluice_registry::{Registry, SearchPath};
use sluice_tests::compare::{match_rows, Bindings};

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

const NATIVE: [&str; 8] = [
    "BIGINT", "INTEGER", "SMALLINT", "TINYINT", "DOUBLE", "BOOLEAN", "VARCHAR", "HUGEINT",
];

fn quote(s: &str) -> String {
    format!("\"{}\"", s.replace('"', "\"\""))
}

fn duck_value(v: duckdb::types::Value) -> Value {
    use duckdb::types::Value as D;
    match v {
        D::Null => Value::Null,
        D::Boolean(b) => json!(b),
        D::TinyInt(i) => json!(i),
        D::SmallInt(i) => json!(i),
        D::Int(i) => json!(i),
        D::BigInt(i) => json!(i),
        D::HugeInt(i) => json!(i as f64),
        D::Float(f) => json!(f),
        D::Double(f) => json!(f),
        D::Text(s) => json!(s),
        other => json!(format!("{other:?}")),
    }
}

type Dump = BTreeMap<String, (Vec<(String, String, bool)>, Vec<BTreeMap<String, Value>>)>;

/// Reads every table of dataset `golden` the way the golden generator does.
fn dump(db: &Path) -> Result<Dump, String> {
    let mut out = Dump::new();
    if !db.exists() {
        return Ok(out);
    }
    let con = duckdb::Connection::open(db).map_err(|e| format!("open {}: {e}", db.display()))?;
    let tables: Vec<String> = {
        let mut st = con
            .prepare("SELECT table_name FROM information_schema.tables WHERE table_schema = 'golden' ORDER BY table_name")
            .map_err(|e| e.to_string())?;
        let rows = st
            .query_map([], |r| r.get::<_, String>(0))
            .map_err(|e| e.to_string())?;
        rows.filter_map(|r| r.ok()).collect()
    };
    for t in tables {
        let cols: Vec<(String, String, bool)> = {
            let mut st = con
                .prepare("SELECT column_name, data_type, is_nullable FROM information_schema.columns WHERE table_schema = 'golden' AND table_name = ? ORDER BY ordinal_position")
                .map_err(|e| e.to_string())?;
            let rows = st
                .query_map([&t], |r| {
                    Ok((
                        r.get::<_, String>(0)?,
                        r.get::<_, String>(1)?,
                        r.get::<_, String>(2)? == "YES",
                    ))
                })
                .map_err(|e| e.to_string())?;
            rows.filter_map(|r| r.ok()).collect()
        };
        let select: Vec<String> = cols
            .iter()
            .map(|(n, ty, _)| {
                if NATIVE.contains(&ty.to_uppercase().as_str()) {
                    quote(n)
                } else {
                    format!("CAST({} AS VARCHAR)", quote(n))
                }
            })
            .collect();
        let sql = format!("SELECT {} FROM \"golden\".{}", select.join(", "), quote(&t));
        let mut st = con.prepare(&sql).map_err(|e| format!("{sql}: {e}"))?;
        let mut rows = st.query([]).map_err(|e| e.to_string())?;
        let mut data = Vec::new();
        while let Some(r) = rows.next().map_err(|e| e.to_string())? {
            let mut m = BTreeMap::new();
            for (i, (n, _, _)) in cols.iter().enumerate() {
                let v: duckdb::types::Value = r.get(i).map_err(|e| e.to_string())?;
                m.insert(n.clone(), duck_value(v));
            }
            data.push(m);
        }
        out.insert(t, (cols, data));
    }
    Ok(out)
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

/// Runs one case end to end.
pub fn run_case(dir: &Path) -> Result<String, String> {
    let case = dir
        .file_name()
        .and_then(|n| n.to_str())
        .unwrap_or("case")
        .to_string();
    let input = read_json(&dir.join("input.json"))?;
    let expected = read_json(&dir.join("expected.json"))?;
    let tmp = tempfile::tempdir().map_err(|e| e.to_string())?;
    let db = tmp.path().join("dest.duckdb");
    let mut config = json!({ "credentials": db.display().to_string() });
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
    if input
        .get("destination_kwargs")
        .is_some_and(|d| d.as_object().is_some_and(|m| !m.is_empty()))
    {
        return Err("destination_kwargs are not supported by the harness yet".into());
    }
    let registry = Registry::new(SearchPath::from_dirs([plugin_dir()]));
    let pipeline_name = format!("golden_{case}");
    let mut pipeline = Pipeline::builder(&pipeline_name)
        .destination("duckdb")
        .destination_config(config, json!({}))
        .registry(registry)
        .dataset_name("golden")
        .pipelines_dir(tmp.path().join("pipelines"))
        .naming(naming)
        .build()
        .map_err(|e| format!("cannot build the pipeline: {e}"))?;
    let runs = input["runs"].as_array().ok_or("no runs")?;
    let exp_runs = expected["runs"].as_array().ok_or("no expected runs")?;
    let mut bindings = Bindings::default();
    for (i, (run, exp)) in runs.iter().zip(exp_runs).enumerate() {
        let descriptor = descriptor_of(run)?;
        let data = run["data"].as_array().cloned().unwrap_or_default();
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
            let text = text.replace(&tmp.path().display().to_string(), "<WORKDIR>");
            let re = regex::Regex::new(r"\d{10}\.\d+").map_err(|e| e.to_string())?;
            let text = re.replace_all(&text, "<LOAD_ID>").to_string();
            let re = regex::Regex::new(r"finished in [^\n]*").map_err(|e| e.to_string())?;
            let text = re.replace_all(&text, "finished in <DURATION>").to_string();
            let exp_text = exp
                .pointer("/outcome/load_info")
                .and_then(Value::as_str)
                .unwrap_or("");
            if text != exp_text {
                return Err(format!(
                    "run {i}: load info differs\n  expected: {exp_text:?}\n  actual:   {text:?}"
                ));
            }
        }
        // the dataset
        let mut actual = dump(&db)?;
        let exp_tables = exp["tables"].as_object().cloned().unwrap_or_default();
        let names_exp: Vec<&String> = exp_tables.keys().collect();
        let names_act: Vec<&String> = actual.keys().collect();
        if names_exp != names_act {
            return Err(format!(
                "run {i}: tables differ\n  expected: {names_exp:?}\n  actual:   {names_act:?}"
            ));
        }
        for (tname, t) in &exp_tables {
            let (cols, rows) = actual.remove(tname).unwrap_or_default();
            let exp_cols: Vec<(String, String, bool)> = t["columns"]
                .as_array()
                .map(|c| {
                    c.iter()
                        .map(|c| {
                            (
                                c[0].as_str().unwrap_or("").into(),
                                c[1].as_str().unwrap_or("").into(),
                                c[2].as_bool().unwrap_or(true),
                            )
                        })
                        .collect()
                })
                .unwrap_or_default();
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
            match_rows(tname, &expected_rows(t), &rows, &names, &mut bindings)
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
