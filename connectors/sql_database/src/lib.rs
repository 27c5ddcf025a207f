//! The sql_database source (dlt's `sql_database`, spec l.2) with typed Arrow batches end to end:
//! PostgreSQL, MySQL/MariaDB and SQLite over sqlx.
//!
//! The tables are reflected when the source opens (one resource per table: name, Arrow types by
//! reflection level, nullability, primary key); each resource run opens its own connection (at
//! most `concurrency` at once) and streams the table in batches of `chunk_size` rows. An
//! incremental cursor is pushed into the query as dlt does; the host still filters and
//! deduplicates at the boundary. See `docs/architecture.md` for the type mapping and the
//! differences from dlt.

mod model;
mod mysql;
mod pg;
mod query;
mod sqlite;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use serde::Deserialize;
use serde_json::{Map, Value};
use sluice_sdk::prelude::*;
use sluice_sdk::resource::{IncrementalSpec, KeyHint, WriteDispositionHint};

pub use model::ReflectionLevel;
use model::{BatchAssembler, TableInfo};
use query::ReadPlan;

/// Options of one table (`tables.<name>`).
#[derive(Debug, Clone, Deserialize, Default)]
#[serde(default, deny_unknown_fields)]
struct TableOptions {
    primary_key: Option<KeyHint>,
    merge_key: Option<KeyHint>,
    write_disposition: Option<WriteDispositionHint>,
    incremental: Option<IncrementalSpec>,
    included_columns: Option<Vec<String>>,
    excluded_columns: Vec<String>,
    text_columns: Vec<String>,
    table_name: Option<String>,
}

fn default_chunk_size() -> usize {
    50_000
}
fn default_concurrency() -> usize {
    2
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct Config {
    #[serde(default)]
    schema: Option<String>,
    #[serde(default)]
    table_names: Option<Vec<String>>,
    #[serde(default = "default_chunk_size")]
    chunk_size: usize,
    #[serde(default)]
    reflection_level: ReflectionLevel,
    #[serde(default)]
    include_views: bool,
    #[serde(default = "default_concurrency")]
    concurrency: usize,
    #[serde(default)]
    write_disposition: Option<WriteDispositionHint>,
    #[serde(default)]
    tables: BTreeMap<String, TableOptions>,
    #[serde(default)]
    credentials: Map<String, Value>,
}

/// The database kinds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dialect {
    Postgres,
    MySql,
    Sqlite,
}

/// Connection settings, from a connection string or fields.
#[derive(Debug, Clone)]
pub struct Credentials {
    dialect: Dialect,
    drivername: String,
    host: Option<String>,
    port: Option<u16>,
    database: Option<String>,
    username: Option<String>,
    password: Option<Secret<String>>,
    query: BTreeMap<String, String>,
}

fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' && i + 2 < b.len() {
            if let Ok(v) = u8::from_str_radix(s.get(i + 1..i + 3).unwrap_or(""), 16) {
                out.push(v);
                i += 3;
                continue;
            }
        }
        out.push(b[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

impl Credentials {
    fn dialect_of(drivername: &str) -> Result<Dialect> {
        let base = drivername.split('+').next().unwrap_or("");
        match base {
            "postgresql" | "postgres" | "pg" => Ok(Dialect::Postgres),
            "mysql" | "mariadb" => Ok(Dialect::MySql),
            "sqlite" => Ok(Dialect::Sqlite),
            other => Err(Error::config(format!(
                "source `sql_database`: unsupported database `{other}`\nhint: use a postgresql://, mysql://, mariadb:// or sqlite:/// connection string"
            ))),
        }
    }

    /// Parses `scheme://user:password@host:port/database?k=v` (SQLAlchemy's form; SQLite:
    /// `sqlite:///relative.db`, `sqlite:////absolute.db`).
    pub fn parse(url: &str) -> Result<Self> {
        let (scheme, rest) = url.split_once("://").ok_or_else(|| {
            Error::config("source `sql_database`: the credentials are not a connection string (expected scheme://...)\nhint: postgresql://user:password@host:5432/database")
        })?;
        let dialect = Self::dialect_of(scheme)?;
        // SQLAlchemy's grammar: user (no `:` `/` `@`), then `:password` up to the first `@`
        // (it may hold `/`, `?` and `:`), then host, port, `/database`, `?query`
        let ulen = rest.find([':', '/', '@', '?']).unwrap_or(rest.len());
        let (userinfo, rest) = match rest.as_bytes().get(ulen) {
            Some(b'@') => (Some((&rest[..ulen], None)), &rest[ulen + 1..]),
            Some(b':') => match rest[ulen + 1..].find('@') {
                Some(p) => (
                    Some((&rest[..ulen], Some(&rest[ulen + 1..ulen + 1 + p]))),
                    &rest[ulen + 2 + p..],
                ),
                None => (None, rest),
            },
            _ => (None, rest),
        };
        let (rest, query_text) = rest.split_once('?').unwrap_or((rest, ""));
        let query: BTreeMap<String, String> = query_text
            .split('&')
            .filter(|kv| !kv.is_empty())
            .map(|kv| {
                let (k, v) = kv.split_once('=').unwrap_or((kv, ""));
                (percent_decode(k), percent_decode(v))
            })
            .collect();
        let mut c = Self {
            dialect,
            drivername: scheme.to_string(),
            host: None,
            port: None,
            database: None,
            username: None,
            password: None,
            query,
        };
        if let Some((user, pass)) = userinfo {
            c.username = (!user.is_empty()).then(|| percent_decode(user));
            c.password = pass.map(|p| Secret::new(percent_decode(p)));
        }
        if dialect == Dialect::Sqlite {
            // sqlite:///rel.db -> "rel.db"; sqlite:////abs.db -> "/abs.db"
            let path = rest.strip_prefix('/').unwrap_or(rest);
            c.database = (!path.is_empty()).then(|| percent_decode(path));
            return Ok(c);
        }
        let (hostport, db) = rest.split_once('/').unwrap_or((rest, ""));
        c.database = (!db.is_empty()).then(|| percent_decode(db));
        // `host`, `host:port`, `[v6]`, `[v6]:port`
        let (host, port) = if let Some(v6) = hostport.strip_prefix('[') {
            match v6.split_once(']') {
                Some((h, "")) => (h, None),
                Some((h, rest)) => (h, Some(rest.strip_prefix(':').unwrap_or(rest))),
                None => (v6, None),
            }
        } else {
            match hostport.rsplit_once(':') {
                Some((h, p)) => (h, Some(p)),
                None => (hostport, None),
            }
        };
        let port = match port {
            Some(p) => Some(p.parse::<u16>().map_err(|_| {
                Error::config(
                    "source `sql_database`: the port of the connection string is not a number",
                )
            })?),
            None => None,
        };
        c.host = (!host.is_empty()).then(|| host.to_string());
        c.port = port;
        Ok(c)
    }

    /// From fields (`drivername`, `host`, `port`, `database`, `username`, `password`, `query`).
    fn from_fields(m: &Map<String, Value>) -> Result<Self> {
        let s = |k: &str| m.get(k).and_then(Value::as_str).map(String::from);
        let drivername = s("drivername").ok_or_else(|| {
            Error::config("source `sql_database`: the credentials have no `drivername`\nhint: drivername = \"postgresql\" (or mysql, mariadb, sqlite), or give a connection string")
        })?;
        let port = match m.get("port") {
            None | Some(Value::Null) => None,
            Some(v) => Some(
                v.as_u64()
                    .and_then(|p| u16::try_from(p).ok())
                    .or_else(|| v.as_str().and_then(|p| p.parse().ok()))
                    .ok_or_else(|| {
                        Error::config(
                            "source `sql_database`: credentials `port` is not a port number",
                        )
                    })?,
            ),
        };
        Ok(Self {
            dialect: Self::dialect_of(&drivername)?,
            drivername,
            host: s("host"),
            port,
            database: s("database"),
            username: s("username"),
            password: s("password").map(Secret::new),
            query: m
                .get("query")
                .and_then(Value::as_object)
                .map(|q| {
                    q.iter()
                        .map(|(k, v)| {
                            (
                                k.clone(),
                                v.as_str().map_or_else(|| v.to_string(), String::from),
                            )
                        })
                        .collect()
                })
                .unwrap_or_default(),
        })
    }

    /// The connection string with the password left out, for messages.
    pub fn redacted(&self) -> String {
        if self.dialect == Dialect::Sqlite {
            return format!(
                "{}:///{}",
                self.drivername,
                self.database.as_deref().unwrap_or("")
            );
        }
        format!(
            "{}://{}{}{}{}/{}",
            self.drivername,
            self.username.as_deref().unwrap_or(""),
            if self.password.is_some() { ":***" } else { "" },
            if self.username.is_some() || self.password.is_some() {
                "@"
            } else {
                ""
            },
            match (&self.host, self.port) {
                (Some(h), p) => {
                    let h = if h.contains(':') {
                        format!("[{h}]")
                    } else {
                        h.clone()
                    };
                    p.map_or(h.clone(), |p| format!("{h}:{p}"))
                }
                (None, _) => "localhost".into(),
            },
            self.database.as_deref().unwrap_or("")
        )
    }

    fn connect_timeout(&self) -> Duration {
        self.query
            .get("connect_timeout")
            .and_then(|v| v.parse::<f64>().ok())
            .and_then(|s| Duration::try_from_secs_f64(s).ok())
            .filter(|d| !d.is_zero())
            .unwrap_or(Duration::from_secs(15))
    }
}

/// Runs a connect future under the credentials' connect timeout, with errors made clear.
async fn with_timeout<T>(
    creds: &Credentials,
    fut: impl std::future::Future<Output = std::result::Result<T, sqlx::Error>>,
) -> Result<T> {
    match tokio::time::timeout(creds.connect_timeout(), fut).await {
        Ok(r) => r.map_err(|e| db_error(creds, e)),
        Err(_) => Err(Error::network(format!(
            "cannot connect to {} within {:?}\nhint: check host and port, or raise connect_timeout (?connect_timeout=30)",
            creds.redacted(),
            creds.connect_timeout()
        ))
        .retryable()),
    }
}

/// A connection-time error, with the fix.
fn db_error(creds: &Credentials, e: sqlx::Error) -> Error {
    let target = creds.redacted();
    match &e {
        sqlx::Error::Database(d) => {
            // PostgreSQL's SQLSTATE; MySQL's error number (its SQLSTATEs are too coarse)
            let code = match d.try_downcast_ref::<sqlx::mysql::MySqlDatabaseError>() {
                Some(m) => m.number().to_string(),
                None => d.code().map(|c| c.to_string()).unwrap_or_default(),
            };
            match code.as_str() {
                // invalid password / authorization (PostgreSQL), access denied (MySQL)
                "28P01" | "28000" | "1045" | "1044" | "1698" => Error::auth(format!(
                    "cannot log in to {target}: {}\nhint: check the username and password in the credentials (sources.sql_database.credentials)",
                    d.message()
                )),
                "3D000" | "1049" => Error::config(format!(
                    "the database of {target} does not exist: {}\nhint: check the database name in the connection string",
                    d.message()
                )),
                _ => Error::data(format!("{target}: {}", d.message())),
            }
        }
        sqlx::Error::Io(io) => Error::network(format!(
            "cannot reach {target}: {io}\nhint: is the server running and are host and port right?"
        ))
        .retryable(),
        sqlx::Error::Tls(t) => Error::network(format!(
            "TLS with {target} failed: {t}\nhint: check the server's certificate, or set ?sslmode=prefer (or disable) in the connection string"
        )),
        other => Error::network(format!("cannot connect to {target}: {other}")),
    }
}

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
async fn reflect_all(creds: &Credentials, config: &Config) -> Result<(String, Vec<TableInfo>)> {
    let mut con = Conn::open(creds).await?;
    // read as text: `text_columns`, and columns not read at all (excluded or not included),
    // whose type then does not matter
    let text_of = |t: &str| {
        let o = config.tables.get(t).cloned().unwrap_or_default();
        move |c: &str| {
            o.text_columns.iter().any(|x| x == c)
                || o.excluded_columns.iter().any(|x| x == c)
                || o.included_columns
                    .as_ref()
                    .is_some_and(|i| !i.iter().any(|x| x == c))
        }
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
    config: Arc<Config>,
    permits: Arc<tokio::sync::Semaphore>,
}

impl SqlDatabase {
    /// Opens the source: resolves the credentials and reflects the tables.
    pub fn open(config: Value, secrets: Value) -> Result<Self> {
        let config: Config = serde_json::from_value(config)
            .map_err(|e| Error::config(format!("config of source `sql_database`: {e}")))?;
        let creds = match secrets.get("credentials") {
            Some(Value::String(s)) => Credentials::parse(s)?,
            Some(Value::Object(m)) => {
                let mut all = config.credentials.clone();
                all.extend(m.clone());
                Credentials::from_fields(&all)?
            }
            _ if !config.credentials.is_empty() => Credentials::from_fields(&config.credentials)?,
            _ => {
                return Err(Error::config(
                    "source `sql_database` has no credentials\nhint: set sources.sql_database.credentials in .sluice/secrets.toml to a connection string, e.g. \"postgresql://user:password@localhost:5432/db\"",
                ))
            }
        };
        for (name, o) in &config.tables {
            if let Some(inc) = &o.incremental {
                let read = o
                    .included_columns
                    .as_ref()
                    .is_none_or(|w| w.contains(&inc.cursor_path))
                    && !o.excluded_columns.contains(&inc.cursor_path);
                if !read {
                    return Err(Error::config(format!(
                        "source `sql_database`: table `{name}` has cursor `{}` but does not read it\nhint: keep it in included_columns and out of excluded_columns",
                        inc.cursor_path
                    )));
                }
            }
        }
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
        for name in config.tables.keys() {
            if !tables.iter().any(|t| &t.name == name) {
                return Err(Error::config(format!(
                    "source `sql_database`: `tables.{name}` names a table that is not read (the tables are {})",
                    tables.iter().map(|t| t.name.as_str()).collect::<Vec<_>>().join(", ")
                )));
            }
        }
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

    fn options(&self, table: &str) -> TableOptions {
        self.config.tables.get(table).cloned().unwrap_or_default()
    }

    /// The columns read from `t`.
    fn read_columns<'a>(&self, t: &'a TableInfo) -> Result<Vec<&'a model::SqlColumn>> {
        let o = self.options(&t.name);
        let cols: Vec<_> = t
            .columns
            .iter()
            .filter(|c| {
                o.included_columns
                    .as_ref()
                    .is_none_or(|inc| inc.contains(&c.name))
                    && !o.excluded_columns.contains(&c.name)
            })
            .collect();
        if cols.is_empty() {
            return Err(Error::config(format!(
                "source `sql_database`: no column of table `{}` is left to read\nhint: check included_columns and excluded_columns",
                t.name
            )));
        }
        Ok(cols)
    }
}

impl Source for SqlDatabase {
    fn describe(&self) -> Result<Vec<ResourceDescriptor>> {
        let level = self.config.reflection_level;
        let mut out = Vec::with_capacity(self.tables.len());
        for t in &self.tables {
            let o = self.options(&t.name);
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
            };
            let mut out = BatchAssembler::new(arrow, chunk);
            let started = std::time::Instant::now();
            let mut con = Conn::open(&creds).await?;
            let rows = match &mut con {
                Conn::Pg(c) => pg::read(c, &schema, &plan, &mut out, &sink).await,
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
