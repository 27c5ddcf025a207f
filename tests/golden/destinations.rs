//! The destinations the golden cases run on: one [`GoldenDestination`] per destination plugin,
//! listed in [`DESTINATIONS`] and found by the plugin's name (the name `sluice run` takes, the
//! registry loads and `SLUICE_GOLDEN_DESTINATIONS` lists).
//!
//! dlt's cases were recorded on DuckDB ([`RECORDED`]). Everything else the harness does on
//! another destination follows from its entry: the recorded types become [`column_type`]'s,
//! names longer than its [`max_identifier_length`] become what dlt shortens them to, and the
//! load info, the state's destination type and its hashes are translated (see
//! `pipeline_runner.rs`).
//!
//! Adding a destination: write its entry (a `const` like [`POSTGRES`] with the functions it
//! names) and list it in [`DESTINATIONS`].
//!
//! [`column_type`]: GoldenDestination::column_type
//! [`max_identifier_length`]: GoldenDestination::max_identifier_length

use std::path::{Path, PathBuf};

use serde_json::{json, Value};
use sluice_tests::{duckdb_dump, pg_dump, pg_exec, pg_url, Dump};

/// Every destination the harness knows, in the order they run.
pub const DESTINATIONS: &[GoldenDestination] = &[DUCKDB, POSTGRES];

/// The destination dlt's expectations were recorded on (`run_golden.py`).
pub const RECORDED: &GoldenDestination = &DUCKDB;

/// Where dlt's recording loaded (`dest.duckdb` in the case's working directory), as its load
/// info prints it; [`DUCKDB`]'s location is the same.
pub const RECORDED_LOCATION: &str = "duckdb:///<WORKDIR>/dest.duckdb";

/// How the golden cases run on one destination plugin.
pub struct GoldenDestination {
    /// The destination plugin's name: what `sluice run` takes, what the registry loads the
    /// plugin by, and what `SLUICE_GOLDEN_DESTINATIONS` lists.
    pub name: &'static str,
    /// The longest identifier dlt uses on this destination (its `max_identifier_length`
    /// capability). A case's `max_identifier_length` / `max_column_identifier_length` are
    /// capped at it, and names dlt kept longer on [`RECORDED`] are shortened as dlt does.
    pub max_identifier_length: usize,
    /// Makes `dataset` fresh and empty for one case whose working directory is `workdir`
    /// (dropping what an earlier case left), and says how the plugin reaches it.
    pub fresh_dataset: fn(workdir: &Path, dataset: &str) -> Connection,
    /// Every table of `dataset` as loaded in the case working in `workdir`, in the common form
    /// ([`Dump`]): columns with this destination's type names, cells as JSON values
    /// (integers, floats and booleans natively, everything else as the destination's text).
    pub dump: fn(workdir: &Path, dataset: &str) -> Result<Dump, String>,
    /// The type this destination reports for a column of the type dlt's expectations show
    /// (a DuckDB type name, as recorded on [`RECORDED`]).
    pub column_type: fn(recorded: &str) -> String,
}

/// How the destination plugin reaches a case's fresh dataset.
pub struct Connection {
    /// The plugin's config (its non-secret keys; the harness adds the case's own keys).
    pub config: Value,
    /// The plugin's secrets.
    pub secrets: Value,
    /// Where the data goes, as dlt's load info prints it (`duckdb:///<file>`; a connection
    /// string with its password as `***`).
    pub location: String,
    /// Whether the plugin announces [`location`](Self::location) itself; otherwise the
    /// pipeline is told it, as `sluice run` works it out for a file.
    pub announced: bool,
}

impl GoldenDestination {
    /// Whether this is the destination dlt's expectations were recorded on (they apply
    /// untranslated).
    pub fn is_recorded(&self) -> bool {
        self.name == RECORDED.name
    }
}

/// The destination plugin `name` in [`DESTINATIONS`], or an error naming the known ones.
pub fn by_name(name: &str) -> Result<&'static GoldenDestination, String> {
    DESTINATIONS.iter().find(|d| d.name == name).ok_or_else(|| {
        format!(
            "the golden harness knows no destination `{name}` (known: {})",
            known_names()
        )
    })
}

/// The destinations listed (comma separated plugin names) in `wanted`, in [`DESTINATIONS`]'
/// order; an unknown name, or none at all, is an error naming the known ones.
pub fn selected(wanted: &str) -> Result<Vec<&'static GoldenDestination>, String> {
    let names: Vec<&str> = wanted
        .split(',')
        .map(str::trim)
        .filter(|n| !n.is_empty())
        .collect();
    if names.is_empty() {
        return Err(format!(
            "no destination named in `{wanted}` (known: {})",
            known_names()
        ));
    }
    for name in &names {
        by_name(name)?;
    }
    Ok(DESTINATIONS
        .iter()
        .filter(|d| names.contains(&d.name))
        .collect())
}

fn known_names() -> String {
    DESTINATIONS
        .iter()
        .map(|d| d.name)
        .collect::<Vec<_>>()
        .join(", ")
}

/// A fresh DuckDB file in the case's working directory.
pub const DUCKDB: GoldenDestination = GoldenDestination {
    name: "duckdb",
    // dlt's DuckDB limit (none in practice)
    max_identifier_length: 65536,
    fresh_dataset: duckdb_dataset,
    dump: |workdir, dataset| duckdb_dump(&duckdb_file(workdir), dataset),
    column_type: str::to_string,
};

/// The DuckDB file of the case working in `workdir` (the file name dlt's recording used).
fn duckdb_file(workdir: &Path) -> PathBuf {
    workdir.join("dest.duckdb")
}

fn duckdb_dataset(workdir: &Path, _dataset: &str) -> Connection {
    let db = duckdb_file(workdir);
    Connection {
        config: json!({ "credentials": db.display().to_string() }),
        secrets: json!({}),
        location: format!("duckdb:///{}", db.display()),
        announced: false,
    }
}

/// The dataset's schema (and its staging schema) on the test PostgreSQL server
/// (`$SLUICE_TEST_PG_URL`), dropped before each case.
pub const POSTGRES: GoldenDestination = GoldenDestination {
    name: "postgres",
    // PostgreSQL's longest identifier
    max_identifier_length: 63,
    fresh_dataset: postgres_dataset,
    dump: |_workdir, dataset| Ok(postgres_dump(dataset)),
    column_type: postgres_type,
};

fn postgres_dataset(_workdir: &Path, dataset: &str) -> Connection {
    pg_exec(&format!(
        "DROP SCHEMA IF EXISTS \"{dataset}\" CASCADE; DROP SCHEMA IF EXISTS \"{dataset}_staging\" CASCADE"
    ));
    // the location dlt prints: the connection string without the password
    let location = regex::Regex::new(r"(postgresql://[^:@/]*):[^@]*@")
        .expect("valid regex")
        .replace(&pg_url(), "$1:***@")
        .to_string();
    Connection {
        config: json!({}),
        secrets: json!({ "credentials": pg_url() }),
        location,
        announced: true,
    }
}

/// [`pg_dump`] with dlt's load ids, `varchar(64)` on PostgreSQL, as `character varying` (the
/// precision DuckDB ignores).
fn postgres_dump(dataset: &str) -> Dump {
    let mut dump = pg_dump(dataset);
    for (table, (cols, _)) in &mut dump {
        for (name, ty, _) in cols {
            let load_id = (table == "_dlt_loads" && name == "load_id")
                || (table == "_dlt_pipeline_state" && name == "_dlt_load_id");
            if load_id && ty == "character varying(64)" {
                *ty = "character varying".to_string();
            }
        }
    }
    dump
}

/// PostgreSQL's type (as `format_type` prints it) of a DuckDB type in dlt's expectations.
fn postgres_type(duck: &str) -> String {
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
