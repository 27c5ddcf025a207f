//! What the destination checks share: building dlt tables and Arrow batches, driving a job
//! client through a load package as the engine does, and reading rows back.

use std::cell::Cell;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use arrow_array::{
    Array, ArrayRef, BooleanArray, Float64Array, Int64Array, RecordBatch, RecordBatchIterator,
    StringArray, TimestampMicrosecondArray,
};
use arrow_schema::{ArrowError, DataType as ArrowType, Field, Schema as ArrowSchema, TimeUnit};
use serde_json::{json, Value};

use super::fail;
use crate::destination::{
    ClientRequest, Destination, DestinationClient, LoadCompletion, LoadJob, LoadPlan,
    SchemaUpdateRequest, StoredState,
};
use crate::schema::{self, Column, DataType, MergeStrategy, Schema, Table, WriteDisposition};
use crate::{CancelFlag, Error, Result};

thread_local! {
    /// Whether the running suite hands jobs to `load_file` as parquet files.
    static LOAD_FILES: Cell<bool> = const { Cell::new(false) };
}

/// Hands jobs to `load_file` while it lives (the suite's `load_files` option).
pub struct LoadFiles(bool);

impl LoadFiles {
    pub fn set(on: bool) -> Self {
        Self(LOAD_FILES.with(|f| f.replace(on)))
    }
}

impl Drop for LoadFiles {
    fn drop(&mut self) {
        LOAD_FILES.with(|f| f.set(self.0));
    }
}

/// A job's batches as a parquet file in a folder of its own, removed when dropped; a job the
/// suite cuts after `fail_after` batches is written to there and then truncated.
struct JobFile(PathBuf);

impl JobFile {
    fn write(spec: &Job, schema: Arc<ArrowSchema>) -> Result<Self> {
        static N: AtomicU64 = AtomicU64::new(0);
        let dir = std::env::temp_dir().join(format!(
            "sluice-conformance-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        ));
        std::fs::create_dir_all(&dir)
            .map_err(|e| fail(format!("cannot create `{}`: {e}", dir.display())))?;
        let file = JobFile(dir);
        let path = file.path();
        let out = std::fs::File::create(&path)
            .map_err(|e| fail(format!("cannot create `{}`: {e}", path.display())))?;
        let parquet_err = |e: parquet::errors::ParquetError| fail(format!("parquet: {e}"));
        let mut writer =
            parquet::arrow::ArrowWriter::try_new(out, schema, None).map_err(parquet_err)?;
        for (i, b) in spec.batches.iter().enumerate() {
            if spec.fail_after == Some(i) {
                break;
            }
            writer.write(b).map_err(parquet_err)?;
        }
        writer.close().map_err(parquet_err)?;
        if spec.fail_after.is_some() {
            let len = std::fs::metadata(&path).map(|m| m.len()).unwrap_or(0);
            std::fs::OpenOptions::new()
                .write(true)
                .open(&path)
                .and_then(|f| f.set_len(len / 2))
                .map_err(|e| fail(format!("cannot cut `{}`: {e}", path.display())))?;
        }
        Ok(file)
    }

    fn path(&self) -> PathBuf {
        self.0.join("job.parquet")
    }
}

impl Drop for JobFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// The pipeline name every check writes as.
pub const PIPELINE: &str = "conformance";

/// One check's view of the destination: its own dataset.
pub struct Ctx<'a> {
    pub destination: &'a dyn Destination,
    pub dataset: String,
    /// Rows the `load.completion` check saw written.
    pub rows_written: u64,
}

impl<'a> Ctx<'a> {
    pub fn new(destination: &'a dyn Destination, dataset: String) -> Self {
        Self {
            destination,
            dataset,
            rows_written: 0,
        }
    }

    /// A new job client for the check's dataset (as a new run of the pipeline would open).
    pub fn client(&self) -> Result<Box<dyn DestinationClient>> {
        self.destination
            .open_client(ClientRequest {
                dataset_name: self.dataset.clone(),
                pipeline_name: PIPELINE.into(),
                ..Default::default()
            })
            .map_err(|e| fail(format!("open_client: {}", e.message)))
    }

    /// Drops the check's dataset with a new client.
    pub fn drop_dataset(&self) -> Result<()> {
        let mut client = self.client()?;
        client.drop_storage()?;
        if client.is_storage_initialized()? {
            return Err(fail("the dataset still exists after drop_storage"));
        }
        Ok(())
    }

    /// `"dataset"."table"`.
    pub fn table(&self, table: &str) -> String {
        format!("{}.{}", quote(&self.dataset), quote(table))
    }

    /// Runs `sql` and renders each row as its cells joined by ` | ` (NULL as `NULL`), sorted.
    pub fn rows(&self, client: &mut dyn DestinationClient, sql: &str) -> Result<Vec<String>> {
        let mut stream = client
            .query(sql, &CancelFlag::new().token())
            .map_err(|e| fail(format!("query `{sql}` failed: {}", e.message)))?;
        let mut out = Vec::new();
        while let Some(batch) = stream
            .next_batch()
            .map_err(|e| fail(format!("query `{sql}` failed: {}", e.message)))?
        {
            for row in 0..batch.num_rows() {
                let mut cells = Vec::new();
                for (i, col) in batch.columns().iter().enumerate() {
                    cells.push(render(col, row).map_err(|t| {
                        fail(format!(
                            "query `{sql}`: cannot compare column `{}` of type {t}; cast it in the query",
                            batch.schema().field(i).name()
                        ))
                    })?);
                }
                out.push(cells.join(" | "));
            }
        }
        out.sort();
        Ok(out)
    }

    /// Checks that `sql` returns exactly `expected` (in any order).
    pub fn expect_rows(
        &self,
        client: &mut dyn DestinationClient,
        what: &str,
        sql: &str,
        expected: &[&str],
    ) -> Result<()> {
        let got = self.rows(client, sql)?;
        let mut want: Vec<String> = expected.iter().map(|s| s.to_string()).collect();
        want.sort();
        if got != want {
            return Err(fail(format!(
                "{what}: expected rows\n    {}\n  got\n    {}\n  (query: {sql})",
                want.join("\n    "),
                got.join("\n    ")
            )));
        }
        Ok(())
    }
}

/// A quoted SQL identifier.
pub fn quote(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

fn render(col: &ArrayRef, row: usize) -> std::result::Result<String, String> {
    if col.is_null(row) {
        return Ok("NULL".into());
    }
    let any = col.as_any();
    macro_rules! try_as {
        ($($t:ty),*) => {
            $(if let Some(a) = any.downcast_ref::<$t>() {
                return Ok(a.value(row).to_string());
            })*
        };
    }
    try_as!(
        arrow_array::Int8Array,
        arrow_array::Int16Array,
        arrow_array::Int32Array,
        Int64Array,
        arrow_array::UInt8Array,
        arrow_array::UInt16Array,
        arrow_array::UInt32Array,
        arrow_array::UInt64Array,
        Float64Array,
        arrow_array::Float32Array,
        BooleanArray,
        StringArray,
        arrow_array::LargeStringArray,
        arrow_array::StringViewArray
    );
    if let Some(a) = any.downcast_ref::<arrow_array::Decimal128Array>() {
        // integers (e.g. DuckDB's HUGEINT sums) come back as decimals of scale 0
        if a.scale() == 0 {
            return Ok(a.value(row).to_string());
        }
    }
    Err(col.data_type().to_string())
}

// ---------------------------------------------------------------------------------------
// schemas

/// A root table with `columns` (all nullable), then dlt's `_dlt_load_id` and `_dlt_id`.
pub fn root(name: &str, disposition: WriteDisposition, columns: &[(&str, DataType)]) -> Table {
    let mut t = Table {
        name: name.into(),
        write_disposition: Some(disposition),
        resource: Some(name.into()),
        ..Default::default()
    };
    for (c, ty) in columns {
        t.columns.insert(c.to_string(), Column::new(*c, *ty));
    }
    t.columns.insert(
        "_dlt_load_id".into(),
        Column {
            nullable: Some(false),
            ..Column::new("_dlt_load_id", DataType::Text)
        },
    );
    t.columns.insert("_dlt_id".into(), row_key());
    t
}

fn row_key() -> Column {
    Column {
        nullable: Some(false),
        unique: Some(true),
        row_key: Some(true),
        ..Column::new("_dlt_id", DataType::Text)
    }
}

/// A merge root table with `strategy`.
pub fn merge_root(name: &str, strategy: MergeStrategy, columns: &[(&str, DataType)]) -> Table {
    let mut t = root(name, WriteDisposition::Merge, columns);
    t.extra
        .insert("x-merge-strategy".into(), json!(strategy.as_str()));
    t
}

/// A nested table of `parent` as dlt's normalizer makes it: `columns`, then `_dlt_root_id`
/// (when `root_key`), `_dlt_parent_id`, `_dlt_list_idx`, `_dlt_id`.
pub fn nested(name: &str, parent: &str, columns: &[(&str, DataType)], root_key: bool) -> Table {
    let mut t = Table {
        name: name.into(),
        parent: Some(parent.into()),
        ..Default::default()
    };
    for (c, ty) in columns {
        t.columns.insert(c.to_string(), Column::new(*c, *ty));
    }
    if root_key {
        t.columns.insert(
            "_dlt_root_id".into(),
            Column {
                nullable: Some(false),
                root_key: Some(true),
                ..Column::new("_dlt_root_id", DataType::Text)
            },
        );
    }
    t.columns.insert(
        "_dlt_parent_id".into(),
        Column {
            nullable: Some(false),
            parent_key: Some(true),
            ..Column::new("_dlt_parent_id", DataType::Text)
        },
    );
    t.columns.insert(
        "_dlt_list_idx".into(),
        Column {
            nullable: Some(false),
            ..Column::new("_dlt_list_idx", DataType::Bigint)
        },
    );
    t.columns.insert("_dlt_id".into(), row_key());
    t
}

/// Sets hints of column `name` of `table`.
pub fn hint(table: &mut Table, name: &str, f: impl FnOnce(&mut Column)) {
    if let Some(c) = table.columns.get_mut(name) {
        f(c);
    }
}

/// Marks `columns` as the primary key (NOT NULL, as dlt makes key columns).
pub fn primary_key(table: &mut Table, columns: &[&str]) {
    for c in columns {
        hint(table, c, |c| {
            c.primary_key = Some(true);
            c.nullable = Some(false);
        });
    }
}

/// A schema `conformance` of `tables` with dlt's system tables, at `version` (its hash names
/// the check and the version, so each version is stored once).
pub fn schema(check: &str, version: u64, tables: Vec<Table>) -> Schema {
    let mut s = Schema {
        version,
        version_hash: format!("{check}-v{version}"),
        engine_version: 11,
        name: PIPELINE.into(),
        ..Default::default()
    };
    for t in [schema::version_table(), schema::loads_table()]
        .into_iter()
        .chain(tables)
        .chain([schema::state_table()])
    {
        s.tables.insert(t.name.clone(), t);
    }
    s
}

// ---------------------------------------------------------------------------------------
// batches

/// The Arrow type the engine writes for a dlt column.
fn arrow_type(c: &Column) -> ArrowType {
    match c.data_type.unwrap_or(DataType::Text) {
        DataType::Bigint => ArrowType::Int64,
        DataType::Double => ArrowType::Float64,
        DataType::Bool => ArrowType::Boolean,
        DataType::Timestamp => ArrowType::Timestamp(
            TimeUnit::Microsecond,
            c.timezone.unwrap_or(true).then(|| Arc::from("UTC")),
        ),
        _ => ArrowType::Utf8,
    }
}

/// A batch of `rows` (JSON objects) for table `table` of `schema`, as the engine's normalizer
/// writes it: the columns any row has, in the table's order; `_dlt_load_id` of root rows is
/// filled in with `load_id` and a missing `_dlt_id` with `<load_id>.<table>.<n>`. Timestamps
/// are given as microseconds since the epoch.
pub fn batch(schema: &Schema, table: &str, load_id: &str, rows: &[Value]) -> Result<RecordBatch> {
    let t = schema
        .table(table)
        .ok_or_else(|| fail(format!("the check's schema has no table `{table}`")))?;
    let mut rows: Vec<serde_json::Map<String, Value>> = rows
        .iter()
        .map(|r| r.as_object().cloned().unwrap_or_default())
        .collect();
    for (i, r) in rows.iter_mut().enumerate() {
        if t.parent.is_none() && t.columns.contains_key("_dlt_load_id") {
            r.entry("_dlt_load_id").or_insert_with(|| json!(load_id));
        }
        if t.columns.contains_key("_dlt_id") {
            r.entry("_dlt_id")
                .or_insert_with(|| json!(format!("{load_id}.{table}.{i}")));
        }
        for k in r.keys() {
            if !t.columns.contains_key(k) {
                return Err(fail(format!(
                    "a row of the check has column `{k}` that table `{table}` lacks"
                )));
            }
        }
    }
    let mut fields = Vec::new();
    let mut arrays: Vec<ArrayRef> = Vec::new();
    for c in t.complete_columns() {
        if !rows.iter().any(|r| r.contains_key(&c.name)) {
            continue;
        }
        let cells: Vec<&Value> = rows
            .iter()
            .map(|r| r.get(&c.name).unwrap_or(&Value::Null))
            .collect();
        let ty = arrow_type(c);
        let array: ArrayRef = match &ty {
            ArrowType::Int64 => Arc::new(Int64Array::from_iter(cells.iter().map(|v| v.as_i64()))),
            ArrowType::Float64 => {
                Arc::new(Float64Array::from_iter(cells.iter().map(|v| v.as_f64())))
            }
            ArrowType::Boolean => {
                Arc::new(BooleanArray::from_iter(cells.iter().map(|v| v.as_bool())))
            }
            ArrowType::Timestamp(_, tz) => Arc::new(
                TimestampMicrosecondArray::from_iter(cells.iter().map(|v| v.as_i64()))
                    .with_timezone_opt(tz.clone()),
            ),
            _ => Arc::new(StringArray::from_iter(cells.iter().map(|v| match v {
                Value::Null => None,
                Value::String(s) => Some(s.clone()),
                other => Some(other.to_string()),
            }))),
        };
        // nullable in Arrow whatever the hint: the destination, not the file, enforces NOT NULL
        fields.push(Field::new(&c.name, ty, true));
        arrays.push(array);
    }
    RecordBatch::try_new(Arc::new(ArrowSchema::new(fields)), arrays).map_err(Error::from)
}

// ---------------------------------------------------------------------------------------
// packages

/// One job of a package: the batches of one table; `fail_after` makes the stream end with an
/// error after that many batches.
pub struct Job {
    pub table: String,
    pub batches: Vec<RecordBatch>,
    pub fail_after: Option<usize>,
}

/// A load package as the engine hands it to a destination.
pub struct Package {
    pub load_id: String,
    pub jobs: Vec<Job>,
    /// Root tables loaded without rows (a replace that produced nothing).
    pub empty_roots: Vec<String>,
    pub state: Option<StoredState>,
    /// The package's creation time (the scd2 boundary).
    pub created_at: String,
}

impl Package {
    /// A package with one job per `(table, rows)`.
    pub fn new(schema: &Schema, load_id: &str, tables: &[(&str, Vec<Value>)]) -> Result<Self> {
        let mut jobs = Vec::new();
        for (table, rows) in tables {
            jobs.push(Job {
                table: table.to_string(),
                batches: vec![batch(schema, table, load_id, rows)?],
                fail_after: None,
            });
        }
        Ok(Self {
            load_id: load_id.into(),
            jobs,
            empty_roots: Vec::new(),
            state: None,
            created_at: created_at(load_id),
        })
    }

    /// The plan the engine gives `start_load`.
    fn plan(&self, schema: &Schema) -> LoadPlan {
        let jobs: Vec<LoadJob> = self
            .jobs
            .iter()
            .enumerate()
            .map(|(i, j)| LoadJob {
                job_id: format!("{}.{:010x}.arrow", j.table, i),
                table_name: j.table.clone(),
                file_format: "arrow".into(),
                rows: Some(j.batches.iter().map(|b| b.num_rows() as u64).sum()),
                ..Default::default()
            })
            .collect();
        let mut roots: Vec<String> = Vec::new();
        for t in self
            .jobs
            .iter()
            .map(|j| j.table.as_str())
            .chain(self.empty_roots.iter().map(String::as_str))
        {
            let r = schema.root_of(t).to_string();
            if !roots.contains(&r) {
                roots.push(r);
            }
        }
        let mut plan = LoadPlan {
            schema_name: schema.name.clone(),
            schema_version_hash: schema.version_hash.clone(),
            jobs,
            ..Default::default()
        };
        plan.extra.insert("root_tables".into(), json!(roots));
        plan.extra
            .insert("created_at".into(), json!(self.created_at));
        plan
    }

    fn completion(&self, schema: &Schema) -> LoadCompletion {
        let mut c = LoadCompletion {
            schema_name: schema.name.clone(),
            schema_version_hash: schema.version_hash.clone(),
            inserted_at: created_at(&self.load_id),
            state: self.state.clone(),
            ..Default::default()
        };
        c.extra.insert("created_at".into(), json!(self.created_at));
        c
    }
}

/// A load id's creation time: load ids are `<unix seconds>.<fraction>`.
pub fn created_at(load_id: &str) -> String {
    let secs: i64 = load_id
        .split('.')
        .next()
        .and_then(|s| s.parse().ok())
        .unwrap_or(1_700_000_000);
    iso(secs)
}

/// `secs` since the epoch as dlt's ISO 8601 UTC text.
pub fn iso(secs: i64) -> String {
    // days to civil date (Howard Hinnant's algorithm), to keep the SDK free of chrono
    let days = secs.div_euclid(86_400);
    let rem = secs.rem_euclid(86_400);
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}.000000+00:00",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

fn step<T>(what: &str, load_id: &str, r: Result<T>) -> Result<T> {
    r.map_err(|e| {
        let mut err = fail(format!("{what} of package {load_id}: {}", e.message));
        err.code = e.code;
        err.retryable = e.retryable;
        err
    })
}

/// Stores `schema` as the engine does before each package (`initialize_storage`,
/// `update_stored_schema`).
pub fn store_schema(client: &mut dyn DestinationClient, schema: &Schema) -> Result<()> {
    let json = serde_json::to_string(schema)?;
    step("initialize_storage", "-", client.initialize_storage())?;
    step(
        "update_stored_schema",
        "-",
        client.update_stored_schema(schema, &json, &SchemaUpdateRequest::default()),
    )?;
    Ok(())
}

/// One attempt at a package from `start_load` to `complete_load`, as the engine's load step
/// makes it; returns the rows the jobs reported.
pub fn attempt(
    client: &mut dyn DestinationClient,
    schema: &Schema,
    package: &Package,
) -> Result<u64> {
    let rows = start_and_write(client, schema, package)?;
    let id = package.load_id.as_str();
    step(
        "complete_load",
        id,
        client.complete_load(id, &package.completion(schema)),
    )?;
    Ok(rows)
}

/// `start_load` and the jobs of a package, without `complete_load`.
pub fn start_and_write(
    client: &mut dyn DestinationClient,
    schema: &Schema,
    package: &Package,
) -> Result<u64> {
    let id = package.load_id.as_str();
    let plan = package.plan(schema);
    step("start_load", id, client.start_load(id, &plan))?;
    let cancel = CancelFlag::new().token();
    let mut rows = 0;
    for (job, spec) in plan.jobs.iter().zip(&package.jobs) {
        let arrow_schema = spec
            .batches
            .first()
            .map(|b| b.schema())
            .unwrap_or_else(|| Arc::new(ArrowSchema::empty()));
        if LOAD_FILES.with(Cell::get) {
            let file = JobFile::write(spec, arrow_schema)?;
            let job = LoadJob {
                file_format: "parquet".into(),
                ..job.clone()
            };
            let report = step(
                &format!("load_file of job `{}`", job.job_id),
                id,
                client.load_file(id, &job, &file.path(), &cancel),
            )?;
            rows += report.rows;
            continue;
        }
        let mut items: Vec<std::result::Result<RecordBatch, ArrowError>> = Vec::new();
        for (i, b) in spec.batches.iter().enumerate() {
            if spec.fail_after == Some(i) {
                break;
            }
            items.push(Ok(b.clone()));
        }
        if spec.fail_after.is_some() {
            items.push(Err(ArrowError::ExternalError(
                "the conformance suite cut this stream on purpose".into(),
            )));
        }
        let reader = RecordBatchIterator::new(items, arrow_schema);
        let report = step(
            &format!("write_table of job `{}`", job.job_id),
            id,
            client.write_table(id, job, Box::new(reader), &cancel),
        )?;
        rows += report.rows;
    }
    Ok(rows)
}

/// Loads a package as the engine does, checking `is_load_completed` before (false) and after
/// (true); returns the rows the jobs reported.
pub fn load(client: &mut dyn DestinationClient, schema: &Schema, package: &Package) -> Result<u64> {
    let id = package.load_id.as_str();
    store_schema(client, schema)?;
    if step("is_load_completed", id, client.is_load_completed(id))? {
        return Err(fail(format!(
            "is_load_completed({id}) is true before the package was loaded"
        )));
    }
    let rows = attempt(client, schema, package)?;
    if !step("is_load_completed", id, client.is_load_completed(id))? {
        return Err(fail(format!(
            "is_load_completed({id}) is false after complete_load returned"
        )));
    }
    Ok(rows)
}

/// A pipeline state row of `load_id` at `version`.
pub fn state_row(version: i64, load_id: &str, pipeline: &str) -> StoredState {
    StoredState {
        version,
        engine_version: 4,
        pipeline_name: pipeline.into(),
        // base64 of zlib of `{}` with a version marker, as dlt encodes state
        state: format!("eJyrVkrLz1eyUkpKLFKqBQAdegQ0-{version}"),
        created_at: created_at(load_id),
        version_hash: Some(format!("state-hash-{version}")),
        load_id: load_id.into(),
    }
}
