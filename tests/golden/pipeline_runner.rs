//! Runs a golden case end to end: real pipelines through a destination plugin (the loaded
//! `.so`: DuckDB, or PostgreSQL on the machine's server), then compares the whole dataset with
//! dlt's after every run: tables, columns with their types and nullability, rows (placeholders
//! bound consistently across the case), the decoded pipeline state rows, `state.sources`, the
//! load info text, and which step failed.
//!
//! dlt's cases were recorded on DuckDB. On PostgreSQL the expectations are translated, not
//! loosened: DuckDB's type names become PostgreSQL's (`VARCHAR` -> `character varying`, `JSON`
//! -> `jsonb`, ...), JSON cells compare as JSON (jsonb reorders keys), the load info names the
//! postgres destination and its location, and the state's `destination_type` is
//! `dlt.destinations.postgres` (so the state's hash is a different, but still consistent,
//! value).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde_json::{json, Value};
use sluice::naming::NamingKind;
use sluice::pipeline::{state::decompress_state, CodeSource, Pipeline, Resource, RunOptions};
use sluice_registry::{Registry, SearchPath};
use sluice_tests::compare::{match_rows, Bindings};
use sluice_tests::{duckdb_dump, pg_dump, pg_exec, pg_url};

/// Where a case is loaded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Target {
    /// A fresh DuckDB file.
    DuckDb,
    /// Schema `golden` of the test PostgreSQL server (dropped before each case).
    Postgres,
}

impl Target {
    /// The destination plugin's name.
    pub fn name(self) -> &'static str {
        match self {
            Target::DuckDb => "duckdb",
            Target::Postgres => "postgres",
        }
    }
}

/// PostgreSQL's type (as `format_type` prints it) of a DuckDB type in dlt's expectations.
fn pg_type_of(duck: &str) -> String {
    match duck {
        "VARCHAR" => "character varying".into(),
        "BIGINT" => "bigint".into(),
        "INTEGER" => "integer".into(),
        "SMALLINT" | "TINYINT" => "smallint".into(),
        "DOUBLE" => "double precision".into(),
        "BOOLEAN" => "boolean".into(),
        "TIMESTAMP WITH TIME ZONE" => "timestamp with time zone".into(),
        "TIMESTAMP" => "timestamp without time zone".into(),
        "DATE" => "date".into(),
        "TIME" => "time without time zone".into(),
        "JSON" => "jsonb".into(),
        "BLOB" => "bytea".into(),
        other => match other
            .strip_prefix("DECIMAL(")
            .and_then(|r| r.strip_suffix(')'))
        {
            Some(ps) => format!("numeric({ps})"),
            None => other.to_lowercase(),
        },
    }
}

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

/// Runs one case end to end.
pub fn run_case(dir: &Path, target: Target) -> Result<String, String> {
    let case = dir
        .file_name()
        .and_then(|n| n.to_str())
        .unwrap_or("case")
        .to_string();
    let input = read_json(&dir.join("input.json"))?;
    let expected = read_json(&dir.join("expected.json"))?;
    let tmp = tempfile::tempdir().map_err(|e| e.to_string())?;
    let db = tmp.path().join("dest.duckdb");
    let (mut config, secrets) = match target {
        Target::DuckDb => (
            json!({ "credentials": db.display().to_string() }),
            json!({}),
        ),
        Target::Postgres => {
            pg_exec("DROP SCHEMA IF EXISTS golden CASCADE; DROP SCHEMA IF EXISTS golden_staging CASCADE");
            (json!({}), json!({ "credentials": pg_url() }))
        }
    };
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
        .destination(target.name())
        .destination_config(config, secrets)
        .registry(registry)
        .dataset_name("golden")
        .pipelines_dir(tmp.path().join("pipelines"))
        .naming(naming)
        .build()
        .map_err(|e| format!("cannot build the pipeline: {e}"))?;
    let runs = input["runs"].as_array().ok_or("no runs")?;
    let exp_runs = expected["runs"].as_array().ok_or("no expected runs")?;
    let mut bindings = Bindings::default();
    let mut hashes: BTreeMap<String, String> = BTreeMap::new();
    let load_id_re = regex::Regex::new(r"\d{10}\.\d+").map_err(|e| e.to_string())?;
    let duration_re = regex::Regex::new(r"finished in [^\n]*").map_err(|e| e.to_string())?;
    // the location dlt would print: the connection string without the password
    let location = regex::Regex::new(r"(postgresql://[^:@/]*):[^@]*@")
        .map_err(|e| e.to_string())?
        .replace(&pg_url(), "$1:***@")
        .to_string();
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
            let text = load_id_re.replace_all(&text, "<LOAD_ID>").to_string();
            let text = duration_re
                .replace_all(&text, "finished in <DURATION>")
                .to_string();
            let mut exp_text = exp
                .pointer("/outcome/load_info")
                .and_then(Value::as_str)
                .unwrap_or("")
                .to_string();
            if target == Target::Postgres {
                exp_text = exp_text
                    .replace("destination duckdb", "destination postgres")
                    .replace(
                        "The duckdb destination used duckdb:///<WORKDIR>/dest.duckdb location",
                        &format!("The postgres destination used {location} location"),
                    );
            }
            if text != exp_text {
                return Err(format!(
                    "run {i}: load info differs\n  expected: {exp_text:?}\n  actual:   {text:?}"
                ));
            }
        }
        // the dataset
        let mut actual = match target {
            Target::DuckDb => duckdb_dump(&db, "golden")?,
            Target::Postgres => pg_dump("golden"),
        };
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
                            let ty = c[1].as_str().unwrap_or("");
                            (
                                c[0].as_str().unwrap_or("").into(),
                                match target {
                                    Target::DuckDb => ty.into(),
                                    Target::Postgres => pg_type_of(ty),
                                },
                                c[2].as_bool().unwrap_or(true),
                            )
                        })
                        .collect()
                })
                .unwrap_or_default();
            // dlt's load ids are varchar(64) on PostgreSQL (the precision DuckDB ignores)
            let cols: Vec<(String, String, bool)> = cols
                .into_iter()
                .map(|(n, ty, null)| {
                    let ty = match ty.as_str() {
                        "character varying(64)"
                            if (tname == "_dlt_loads" && n == "load_id")
                                || (tname == "_dlt_pipeline_state" && n == "_dlt_load_id") =>
                        {
                            "character varying".to_string()
                        }
                        _ => ty,
                    };
                    (n, ty, null)
                })
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
            if target == Target::Postgres {
                translate_rows(tname, &cols, &mut expected, &mut rows, &mut hashes);
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

/// dlt's expectations as they read on PostgreSQL: JSON cells as parsed JSON on both sides
/// (jsonb orders keys its own way), the state's destination type, and the state hashes (of a
/// state that names another destination) as placeholders, one per distinct dlt hash.
fn translate_rows(
    table: &str,
    cols: &[(String, String, bool)],
    expected: &mut [BTreeMap<String, Value>],
    actual: &mut [BTreeMap<String, Value>],
    hashes: &mut BTreeMap<String, String>,
) {
    for (name, ty, _) in cols {
        if ty != "jsonb" {
            continue;
        }
        for r in expected.iter_mut().chain(actual.iter_mut()) {
            if let Some(Value::String(s)) = r.get(name) {
                if let Ok(v) = serde_json::from_str::<Value>(s) {
                    r.insert(name.clone(), json!({ "json": v }));
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
            if d.get("destination_type").and_then(Value::as_str) == Some("dlt.destinations.duckdb")
            {
                d.insert(
                    "destination_type".into(),
                    json!("dlt.destinations.postgres"),
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
