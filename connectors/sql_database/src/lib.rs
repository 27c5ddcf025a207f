//! The sql_database source (dlt's `sql_database`, spec l.2) with typed Arrow batches end to end:
//! PostgreSQL, MySQL/MariaDB and SQLite over sqlx.
//!
//! The tables are reflected when the source opens (one resource per table: name, Arrow types by
//! reflection level, nullability, primary key); each resource run opens its own connection (at
//! most `concurrency` at once) and streams the table in batches of `chunk_size` rows. An
//! incremental cursor is pushed into the query as dlt does; the host still filters and
//! deduplicates at the boundary. See `docs/architecture.md` for the type mapping and the
//! differences from dlt.

mod config;
mod model;
mod mysql;
mod pg;
mod query;
mod sqlite;

use std::sync::Arc;

use serde_json::Value;
use sluice_sdk::prelude::*;
use sluice_sdk::resource::KeyHint;
pub use sluice_sql::{Credentials, Dialect, Origin};

use config::{ConfigError, SqlDatabaseConfig, SqlDatabaseSecrets};
pub use model::ReflectionLevel;
use model::{BatchAssembler, TableInfo};
use query::ReadPlan;

/// An error while reading a table.
fn read_error(schema: &str, table: &str, e: sqlx::Error) -> Error {
    let missing = match &e {
        sqlx::Error::Database(d) => {
            matches!(d.code().as_deref(), Some("42P01") | Some("42S02"))
                || d.message().contains("no such table")
        }
        _ => false,
    };
    if missing {
        return Error::not_found(format!(
            "table `{schema}.{table}` is gone: {e}\nhint: it was dropped or renamed after the source reflected it; run again to reflect the tables anew"
        ));
    }
    match e {
        sqlx::Error::Io(io) => Error::network(format!(
            "reading table `{schema}.{table}`: the connection failed: {io}"
        ))
        .retryable(),
        other => Error::data(format!("reading table `{schema}.{table}`: {other}")),
    }
}

fn missing_table(schema: &str, table: &str) -> Error {
    Error::not_found(format!(
        "source `sql_database`: there is no table `{table}` in schema `{schema}`\nhint: check `table_names` (names are case-sensitive) and `schema`"
    ))
}

fn unmapped_type(table: &str, column: &str, sql_type: &str) -> Error {
    Error::schema(format!(
        "column `{column}` of table `{table}` has type `{sql_type}`, which sluice cannot map to a dlt type\nhint: read it as text (`tables.{table}.text_columns = [\"{column}\"]`) or leave it out (`tables.{table}.excluded_columns = [\"{column}\"]`)"
    ))
}

/// An open connection of any dialect.
enum Conn {
    Pg(sqlx::PgConnection),
    My(sqlx::MySqlConnection),
    Lite(sqlx::SqliteConnection),
}

impl Conn {
    async fn open(creds: &Credentials) -> Result<Self> {
        Ok(match creds.dialect {
            Dialect::Postgres => Self::Pg(pg::connect(creds).await?),
            Dialect::MySql => Self::My(mysql::connect(creds).await?),
            Dialect::Sqlite => Self::Lite(sqlite::connect(creds).await?),
        })
    }

    async fn close(self) {
        use sqlx::Connection;
        let _ = match self {
            Self::Pg(c) => c.close().await,
            Self::My(c) => c.close().await,
            Self::Lite(c) => c.close().await,
        };
    }
}

/// Reflects the configured tables.
async fn reflect_all(
    creds: &Credentials,
    config: &SqlDatabaseConfig,
) -> Result<(String, Vec<TableInfo>)> {
    let mut con = Conn::open(creds).await?;
    // read as text: `text_columns`, and columns not read at all (excluded or not included),
    // whose type then does not matter
    let text_of = |t: &str| {
        let o = config.table(t);
        move |c: &str| o.text_columns.iter().any(|x| x == c) || !o.reads(c)
    };
    let result = async {
        let schema = match (&config.schema, &mut con) {
            (Some(s), _) => s.clone(),
            (None, Conn::Pg(c)) => pg::current_schema(c).await?,
            (None, Conn::My(c)) => mysql::current_schema(c).await?,
            (None, Conn::Lite(_)) => "main".to_string(),
        };
        let names = match &config.table_names {
            Some(n) => n.clone(),
            None => match &mut con {
                Conn::Pg(c) => pg::list_tables(c, &schema, config.include_views).await?,
                Conn::My(c) => mysql::list_tables(c, &schema, config.include_views).await?,
                Conn::Lite(c) => sqlite::list_tables(c, config.include_views).await?,
            },
        };
        let mut tables = Vec::with_capacity(names.len());
        for t in &names {
            tables.push(match &mut con {
                Conn::Pg(c) => pg::reflect(c, &schema, t, &text_of(t)).await?,
                Conn::My(c) => mysql::reflect(c, &schema, t, &text_of(t)).await?,
                Conn::Lite(c) => sqlite::reflect(c, t, &text_of(t)).await?,
            });
        }
        Ok::<_, Error>((schema, tables))
    }
    .await;
    con.close().await;
    result
}

/// The sql_database source.
pub struct SqlDatabase {
    creds: Arc<Credentials>,
    schema: String,
    tables: Vec<Arc<TableInfo>>,
    config: Arc<SqlDatabaseConfig>,
    permits: Arc<tokio::sync::Semaphore>,
}

impl SqlDatabase {
    /// Opens the source: resolves the credentials and reflects the tables.
    pub fn open(config: Value, secrets: Value) -> Result<Self> {
        let config = SqlDatabaseConfig::from_json(config)?;
        let creds = SqlDatabaseSecrets::from_json(&secrets).resolve(config.credentials.as_ref())?;
        // reflection runs on its own thread and runtime: `open` may be called from anywhere
        let (schema, tables) = {
            let creds = creds.clone();
            let config = config.clone();
            std::thread::spawn(move || {
                let rt = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .map_err(|e| Error::internal(format!("cannot start a runtime: {e}")))?;
                rt.block_on(reflect_all(&creds, &config))
            })
            .join()
            .map_err(|_| Error::internal("the reflection thread panicked"))??
        };
        config.check_tables(&tables.iter().map(|t| t.name.as_str()).collect::<Vec<_>>())?;
        tracing::info!(target: "sluice::sql_database", database = %creds.redacted(), schema = %schema, tables = tables.len(), "reflected");
        let permits = Arc::new(tokio::sync::Semaphore::new(config.concurrency.max(1)));
        Ok(Self {
            creds: Arc::new(creds),
            schema,
            tables: tables.into_iter().map(Arc::new).collect(),
            config: Arc::new(config),
            permits,
        })
    }

    /// The columns read from `t`.
    fn read_columns<'a>(&self, t: &'a TableInfo) -> Result<Vec<&'a model::SqlColumn>, ConfigError> {
        let o = self.config.table(&t.name);
        let cols: Vec<_> = t.columns.iter().filter(|c| o.reads(&c.name)).collect();
        if cols.is_empty() {
            return Err(ConfigError::NoColumns {
                table: t.name.clone(),
            });
        }
        Ok(cols)
    }
}

impl Source for SqlDatabase {
    fn describe(&self) -> Result<Vec<ResourceDescriptor>> {
        let level = self.config.reflection_level;
        let mut out = Vec::with_capacity(self.tables.len());
        for t in &self.tables {
            let o = self.config.table(&t.name);
            let mut d = ResourceDescriptor::new(&t.name);
            d.table_name = o.table_name.clone();
            d.data_format = DataFormat::Arrow;
            d.write_disposition = o
                .write_disposition
                .clone()
                .or_else(|| self.config.write_disposition.clone());
            d.primary_key = o.primary_key.clone().or_else(|| match t.primary_key.len() {
                0 => None,
                1 => Some(KeyHint::One(t.primary_key[0].clone())),
                _ => Some(KeyHint::Many(t.primary_key.clone())),
            });
            d.merge_key = o.merge_key.clone();
            d.incremental = o.incremental.clone();
            if level == ReflectionLevel::FullWithPrecision {
                for c in self.read_columns(t)? {
                    let h = c.hint(level);
                    if h.precision.is_some() {
                        let mut h = h;
                        h.data_type = Some(match c.kind {
                            model::Kind::Binary => DataType::Binary,
                            _ => DataType::Text,
                        });
                        d.columns.insert(c.name.clone(), h);
                    }
                }
            }
            d.description = Some(format!("table {}.{}", self.schema, t.name));
            out.push(d);
        }
        Ok(out)
    }

    fn open_resource(&self, request: ResourceRequest, ctx: StreamContext) -> Result<BatchStream> {
        let table = self
            .tables
            .iter()
            .find(|t| t.name == request.resource)
            .cloned()
            .ok_or_else(|| {
                Error::not_found(format!(
                    "source `sql_database` has no resource `{}` (it has {})",
                    request.resource,
                    self.tables
                        .iter()
                        .map(|t| t.name.as_str())
                        .collect::<Vec<_>>()
                        .join(", ")
                ))
            })?;
        let level = self.config.reflection_level;
        let names: Vec<String> = self
            .read_columns(&table)?
            .iter()
            .map(|c| c.name.clone())
            .collect();
        let creds = self.creds.clone();
        let schema = self.schema.clone();
        let permits = self.permits.clone();
        let mut chunk = self.config.chunk_size.max(1);
        if let Some(n) = request.max_batch_rows {
            chunk = chunk.min(n.max(1));
        }
        let ctx2 = ctx.clone();
        let ranges = self.config.parallel_ranges.max(1);
        Ok(ctx.spawn(None, move |sink| async move {
            let _permit = permits
                .acquire_owned()
                .await
                .map_err(|_| Error::internal("the connection limit was closed"))?;
            let columns: Vec<&model::SqlColumn> = table
                .columns
                .iter()
                .filter(|c| names.contains(&c.name))
                .collect();
            let arrow = Arc::new(arrow_schema::Schema::new(
                columns.iter().map(|c| c.field(level)).collect::<Vec<_>>(),
            ));
            sink.declare_schema(arrow.clone()).await?;
            let plan = ReadPlan {
                table: &table,
                columns,
                window: request.incremental.as_ref(),
                // dlt's add_limit counts chunks
                limit_rows: request.limit.map(|n| n.saturating_mul(chunk as u64)),
                range: None,
            };
            let mut out = BatchAssembler::new(arrow, chunk);
            let started = std::time::Instant::now();
            let mut con = Conn::open(&creds).await?;
            let rows = match &mut con {
                Conn::Pg(c) => {
                    pg::read_in_ranges(c, &creds, &schema, &plan, &mut out, &sink, ranges).await
                }
                Conn::My(c) => mysql::read(c, &schema, &plan, &mut out, &sink).await,
                Conn::Lite(c) => sqlite::read(c, &plan, &mut out, &sink).await,
            };
            con.close().await;
            let rows = rows?;
            if let Some(batch) = out.finish()? {
                sink.send(batch).await?;
            }
            ctx2.progress(&table.name, rows, 0);
            tracing::info!(target: "sluice::sql_database", table = %table.name, rows, seconds = started.elapsed().as_secs_f64(), "read");
            Ok((!request.state.is_null()).then_some(request.state.clone()))
        }))
    }
}

fn plugin() -> Plugin {
    Plugin::new(
        include_str!("../sluice-plugin.toml"),
        env!("CARGO_PKG_VERSION"),
    )
    .source(SqlDatabase::open)
}

sluice_sdk::declare_plugin!(pub fn plugin_module = plugin);

#[cfg(test)]
mod tests;
