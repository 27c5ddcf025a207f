//! Runs a golden case through sluice's extract (resource hints) and normalize steps and checks
//! schemas, versions, column types and (for append-only cases) rows.
//!
//! The case format is read as the pipeline runner reads it (see its module docs):
//! `{"$decimal": "1.2"}` becomes dlt's typed-JSON form of a Python Decimal (`"\u{F026}1.2"`),
//! which the normalizer decodes into a decimal; `destination_kwargs`' identifier lengths give
//! the naming's limit as the engine takes it from DuckDB's capabilities (the smaller of the two,
//! 65536 and more: none).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde_json::{json, Value};
use sluice::extract;
use sluice::naming::{Naming, NamingKind};
use sluice::normalize::{NormalizeOptions, Normalizer};
use sluice::schema::Schema;
use sluice::writer::ParquetWriter;
use sluice_destination_duckdb::duckdb;
use sluice_sdk::resource::ResourceDescriptor;
use sluice_sdk::schema::{Column, DataType, WriteDisposition};
use sluice_tests::compare::{match_rows, Bindings};

use crate::pipeline_runner::{decode_values, identifier_limits};

fn read_json(path: &Path) -> Result<Value, String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
    serde_json::from_str(&text).map_err(|e| format!("{}: {e}", path.display()))
}

/// The resource a golden run describes.
pub fn descriptor_of(run: &Value) -> Result<ResourceDescriptor, String> {
    let mut d = json!({ "name": run["table_name"] });
    for k in [
        "write_disposition",
        "primary_key",
        "merge_key",
        "max_table_nesting",
        "columns",
        "schema_contract",
        "incremental",
    ] {
        if let Some(v) = run.get(k) {
            d[k] = v.clone();
        }
    }
    serde_json::from_value(d).map_err(|e| format!("cannot read the run's resource hints: {e}"))
}

/// DuckDB's type name for a dlt column (spec c.5).
pub fn duckdb_type(c: &Column) -> String {
    match c.data_type.unwrap_or(DataType::Text) {
        DataType::Text => "VARCHAR".into(),
        DataType::Bigint => match c.precision {
            Some(p) if p <= 8 => "TINYINT".into(),
            Some(p) if p <= 16 => "SMALLINT".into(),
            Some(p) if p <= 32 => "INTEGER".into(),
            Some(p) if p > 64 => "HUGEINT".into(),
            _ => "BIGINT".into(),
        },
        DataType::Double => "DOUBLE".into(),
        DataType::Bool => "BOOLEAN".into(),
        DataType::Timestamp => {
            if c.timezone.unwrap_or(true) {
                "TIMESTAMP WITH TIME ZONE".into()
            } else {
                match c.precision {
                    Some(0) => "TIMESTAMP_S".into(),
                    Some(p) if p <= 3 => "TIMESTAMP_MS".into(),
                    Some(p) if p > 6 => "TIMESTAMP_NS".into(),
                    _ => "TIMESTAMP".into(),
                }
            }
        }
        DataType::Date => "DATE".into(),
        DataType::Time => "TIME".into(),
        DataType::Decimal => {
            let p = c.precision.unwrap_or(38);
            let s = c.scale.unwrap_or(9).min(p);
            format!("DECIMAL({p},{s})")
        }
        DataType::Wei => "DECIMAL(38,0)".into(),
        DataType::Binary => "BLOB".into(),
        DataType::Json => "JSON".into(),
    }
}

fn quote(s: &str) -> String {
    format!("\"{}\"", s.replace('"', "\"\""))
}

/// Loads the parquet files of a table into DuckDB with the schema's column types and reads it
/// back the way the golden generator dumps tables.
fn load_and_dump(
    con: &duckdb::Connection,
    table: &str,
    columns: &[Column],
    files: &[PathBuf],
) -> Result<Vec<BTreeMap<String, Value>>, String> {
    let ddl: Vec<String> = columns
        .iter()
        .map(|c| format!("{} {}", quote(&c.name), duckdb_type(c)))
        .collect();
    let sql = format!(
        "CREATE OR REPLACE TABLE {} ({})",
        quote(table),
        ddl.join(", ")
    );
    con.execute_batch(&sql).map_err(|e| format!("{sql}: {e}"))?;
    if !files.is_empty() {
        let list: Vec<String> = files
            .iter()
            .map(|f| format!("'{}'", f.display().to_string().replace('\'', "''")))
            .collect();
        let sql = format!(
            "INSERT INTO {} BY NAME SELECT * FROM read_parquet([{}], union_by_name = true)",
            quote(table),
            list.join(", ")
        );
        con.execute_batch(&sql).map_err(|e| format!("{sql}: {e}"))?;
    }
    let select: Vec<String> = columns
        .iter()
        .map(|c| {
            let t = duckdb_type(c);
            if sluice_tests::DUCKDB_NATIVE.contains(&t.as_str()) {
                quote(&c.name)
            } else {
                format!("CAST({} AS VARCHAR)", quote(&c.name))
            }
        })
        .collect();
    let sql = format!("SELECT {} FROM {}", select.join(", "), quote(table));
    let mut stmt = con.prepare(&sql).map_err(|e| format!("{sql}: {e}"))?;
    let mut rows = stmt.query([]).map_err(|e| e.to_string())?;
    let mut out = Vec::new();
    while let Some(r) = rows.next().map_err(|e| e.to_string())? {
        let mut m = BTreeMap::new();
        for (i, c) in columns.iter().enumerate() {
            let v: duckdb::types::Value = r.get(i).map_err(|e| e.to_string())?;
            m.insert(c.name.clone(), sluice_tests::duck_value(v));
        }
        out.push(m);
    }
    Ok(out)
}

/// Runs one case. Ok carries a note (e.g. which checks were skipped).
pub fn run_case(dir: &Path) -> Result<String, String> {
    let case = dir
        .file_name()
        .and_then(|n| n.to_str())
        .unwrap_or("case")
        .to_string();
    let input = read_json(&dir.join("input.json"))?;
    let expected = read_json(&dir.join("expected.json"))?;
    let kind = input
        .pointer("/env/SCHEMA__NAMING")
        .and_then(Value::as_str)
        .map_or(Some(NamingKind::SnakeCase), NamingKind::parse)
        .ok_or("unknown naming convention in env")?;
    let (tables_max, columns_max) = identifier_limits(&input)?;
    let max_len = Some(
        tables_max
            .unwrap_or(65536)
            .min(columns_max.unwrap_or(65536)),
    )
    .filter(|&m| m < 65536);
    let pipeline_name = format!("golden_{case}");
    let mut schema = Schema::new(&pipeline_name, Naming::new(kind, max_len));
    let tmp = tempfile::tempdir().map_err(|e| e.to_string())?;
    let runs = input["runs"].as_array().ok_or("input has no runs")?;
    let exp_runs = expected["runs"].as_array().ok_or("expected has no runs")?;
    let append_only = runs.iter().all(|r| {
        r.get("incremental").is_none() && r.get("write_disposition").is_none_or(|w| w == "append")
    });
    let mut files: BTreeMap<String, Vec<PathBuf>> = BTreeMap::new();
    let mut state_extracted = false;
    for (i, (run, exp)) in runs.iter().zip(exp_runs).enumerate() {
        let resource = descriptor_of(run)?;
        let load_id = format!("{}.{:06}", 1_795_300_000 + i as u64, i);
        let exp_ok = exp
            .pointer("/outcome/ok")
            .and_then(Value::as_bool)
            .unwrap_or(false);
        let exp_step = exp
            .pointer("/outcome/step")
            .and_then(Value::as_str)
            .unwrap_or("");
        // extract
        let table = match extract::apply_resource(&mut schema, &resource) {
            Ok(t) => t,
            Err(e) => {
                if !exp_ok && exp_step == "extract" {
                    continue;
                }
                return Err(format!("run {i}: extract failed: {e}"));
            }
        };
        if !state_extracted {
            extract::ensure_state_table(&mut schema);
        }
        schema.bump_version();
        // normalize
        let out_dir = tmp.path().join(format!("run{i}"));
        let writer = ParquetWriter::new(&out_dir).map_err(|e| e.to_string())?;
        let mut normalizer = Normalizer::new(schema, &load_id, writer, NormalizeOptions::default());
        let mut result = Ok(());
        if let Some(table) = &table {
            let text =
                serde_json::to_string(&decode_values(&run["data"])).map_err(|e| e.to_string())?;
            result = normalizer.normalize_json_text(table, &text);
        }
        if result.is_ok() && !state_extracted {
            let state_row = json!({
                "version": 1, "engine_version": 4, "pipeline_name": pipeline_name,
                "state": "eJyrVkrLz1eyUkpKLFKqBQAdegQ0", "created_at": "2026-11-22T00:00:00Z",
                "version_hash": "x", "_dlt_load_id": load_id,
            });
            result = normalizer.normalize_json_text("_dlt_pipeline_state", &state_row.to_string());
        }
        if let Err(e) = result {
            if !exp_ok && exp_step == "normalize" {
                // dlt keeps the extracted package; the schema changes of extract stay
                // (the normalizer's copy is dropped)
                return Ok(String::new());
            }
            return Err(format!("run {i}: normalize failed: {e}"));
        }
        let (_report, writer, evolved) = normalizer.finish().map_err(|e| e.to_string())?;
        schema = evolved;
        let jobs = writer.finish().map_err(|e| e.to_string())?;
        state_extracted = true;
        schema.bump_version();
        if !exp_ok {
            return Err(format!(
                "run {i}: expected dlt to fail at `{exp_step}`, sluice succeeded"
            ));
        }
        for j in jobs {
            files
                .entry(j.table.clone())
                .or_default()
                .push(j.path.clone());
        }
        // the schema version hash dlt recorded for this load
        let exp_tables = exp["tables"]
            .as_object()
            .ok_or("expected run has no tables")?;
        let exp_hash = exp_tables
            .get("_dlt_loads")
            .and_then(|t| t["rows"].as_array())
            .and_then(|rows| rows.last())
            .and_then(|r| r["schema_version_hash"].as_str())
            .unwrap_or("");
        if exp_hash != schema.version_hash() {
            let ours = serde_json::to_string(&schema.to_value()).unwrap_or_default();
            return Err(format!(
                "run {i}: schema version hash {} != dlt's {exp_hash}\n  our schema: {ours}",
                schema.version_hash()
            ));
        }
        let exp_version = exp_tables
            .get("_dlt_version")
            .and_then(|t| t["rows"].as_array())
            .and_then(|rows| rows.iter().filter_map(|r| r["version"].as_u64()).max())
            .unwrap_or(0);
        if exp_version != schema.version() {
            return Err(format!(
                "run {i}: schema version {} != dlt's {exp_version}",
                schema.version()
            ));
        }
        // columns of every table
        for (tname, t) in exp_tables {
            let ours = schema
                .table(tname)
                .ok_or(format!("run {i}: table `{tname}` is missing"))?;
            let ours: Vec<(String, String, bool)> = ours
                .columns
                .values()
                .filter(|c| c.is_complete())
                .map(|c| (c.name.clone(), duckdb_type(c), c.is_nullable()))
                .collect();
            let theirs: Vec<(String, String, bool)> = t["columns"]
                .as_array()
                .map(|cols| {
                    cols.iter()
                        .map(|c| {
                            (
                                c[0].as_str().unwrap_or("").to_string(),
                                c[1].as_str().unwrap_or("").to_string(),
                                c[2].as_bool().unwrap_or(true),
                            )
                        })
                        .collect()
                })
                .unwrap_or_default();
            if ours != theirs {
                return Err(format!("run {i}: columns of `{tname}` differ\n  expected: {theirs:?}\n  actual:   {ours:?}"));
            }
        }
        let extra: Vec<&String> = schema
            .tables()
            .iter()
            .filter(|(n, t)| {
                t.columns.values().any(Column::is_complete) && !exp_tables.contains_key(*n)
            })
            .map(|(n, _)| n)
            .collect();
        if !extra.is_empty() {
            return Err(format!("run {i}: tables not in dlt's output: {extra:?}"));
        }
    }
    if !append_only {
        return Ok("  (schema, versions, columns; rows need the loader)".into());
    }
    // rows: the union of all normalized rows per table is what append loads
    let last = exp_runs.last().ok_or("no runs")?;
    let con = duckdb::Connection::open_in_memory().map_err(|e| e.to_string())?;
    // no ICU extension is linked: DuckDB prints TIMESTAMPTZ values in UTC
    let mut bindings = Bindings::default();
    for (tname, t) in last["tables"].as_object().ok_or("no tables")? {
        if tname.starts_with("_dlt") {
            continue;
        }
        let Some(table) = schema.table(tname) else {
            continue;
        };
        if schema.write_disposition_of(tname) != WriteDisposition::Append {
            continue;
        }
        let columns: Vec<Column> = table
            .columns
            .values()
            .filter(|c| c.is_complete())
            .cloned()
            .collect();
        let actual = load_and_dump(
            &con,
            tname,
            &columns,
            files.get(tname).map(Vec::as_slice).unwrap_or(&[]),
        )?;
        let expected_rows: Vec<BTreeMap<String, Value>> = t["rows"]
            .as_array()
            .map(|rows| {
                rows.iter()
                    .filter_map(|r| serde_json::from_value(r.clone()).ok())
                    .collect()
            })
            .unwrap_or_default();
        let names: Vec<String> = columns.iter().map(|c| c.name.clone()).collect();
        match_rows(tname, &expected_rows, &actual, &names, &mut bindings)?;
    }
    Ok(String::new())
}
