//! SQL credentials: a SQLAlchemy-style connection string or dlt's fields (spec j.3).

use std::collections::BTreeMap;
use std::time::Duration;

use serde_json::{Map, Value};
use sluice_sdk::{Error, Result, Secret};

/// The database kinds sluice talks to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dialect {
    /// PostgreSQL (`postgresql://`, `postgres://`, `postgresql+psycopg2://` ...).
    Postgres,
    /// MySQL and MariaDB (`mysql://`, `mariadb://`).
    MySql,
    /// SQLite (`sqlite:///relative.db`, `sqlite:////absolute.db`).
    Sqlite,
}

/// Which plugin the credentials belong to, for messages: `who` names it (``source
/// `sql_database` ``) and `path` is where its credentials are configured
/// (`sources.sql_database.credentials`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Origin {
    /// The plugin, as messages name it.
    pub who: &'static str,
    /// The config path of its credentials.
    pub path: &'static str,
}

/// Connection settings, from a connection string or fields. `Debug` never shows the password.
#[derive(Debug, Clone)]
pub struct Credentials {
    /// The database kind.
    pub dialect: Dialect,
    /// The scheme as given (`postgresql+psycopg2`).
    pub drivername: String,
    /// Host name or address.
    pub host: Option<String>,
    /// Port.
    pub port: Option<u16>,
    /// Database (SQLite: the file path).
    pub database: Option<String>,
    /// User name.
    pub username: Option<String>,
    /// Password.
    pub password: Option<Secret<String>>,
    /// Query options (`sslmode`, `connect_timeout`, ...).
    pub query: BTreeMap<String, String>,
    /// Whose credentials these are.
    pub origin: Origin,
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
    fn dialect_of(drivername: &str, origin: Origin) -> Result<Dialect> {
        let base = drivername.split('+').next().unwrap_or("");
        match base {
            "postgresql" | "postgres" | "pg" => Ok(Dialect::Postgres),
            "mysql" | "mariadb" => Ok(Dialect::MySql),
            "sqlite" => Ok(Dialect::Sqlite),
            other => Err(Error::config(format!(
                "{}: unsupported database `{other}`\nhint: use a postgresql://, mysql://, mariadb:// or sqlite:/// connection string",
                origin.who
            ))),
        }
    }

    /// Resolves credentials the way dlt does: `secret` (the resolved `credentials` secret) is
    /// a connection string or an object of fields, completed by the non-secret `fields` from the
    /// config; `default_driver` applies when no `drivername` is given (a destination knows its
    /// own).
    pub fn resolve(
        secret: Option<&Value>,
        fields: &Map<String, Value>,
        default_driver: Option<&str>,
        origin: Origin,
    ) -> Result<Self> {
        match secret {
            Some(Value::String(s)) => Self::parse(s, origin),
            Some(Value::Object(m)) => {
                let mut all = fields.clone();
                all.extend(m.clone());
                Self::from_fields(&all, default_driver, origin)
            }
            _ if !fields.is_empty() => Self::from_fields(fields, default_driver, origin),
            _ => Err(Error::config(format!(
                "{} has no credentials\nhint: set {} in .sluice/secrets.toml to a connection string, e.g. \"postgresql://user:password@localhost:5432/db\"",
                origin.who, origin.path
            ))),
        }
    }

    /// Parses `scheme://user:password@host:port/database?k=v` (SQLAlchemy's form; SQLite:
    /// `sqlite:///relative.db`, `sqlite:////absolute.db`).
    pub fn parse(url: &str, origin: Origin) -> Result<Self> {
        let (scheme, rest) = url.split_once("://").ok_or_else(|| {
            Error::config(format!("{}: the credentials are not a connection string (expected scheme://...)\nhint: postgresql://user:password@host:5432/database", origin.who))
        })?;
        let dialect = Self::dialect_of(scheme, origin)?;
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
        // a password with an unescaped `@` leaves part of itself in front of the host: refuse
        // it without echoing any of it
        if userinfo.is_some() && dialect != Dialect::Sqlite {
            let before_query = rest.split('?').next().unwrap_or_default();
            if before_query.contains('@') {
                return Err(Error::config(format!(
                    "{}: the connection string has another `@` after the one before its host: a password (or database name) holds an `@`\nhint: percent-encode `@` as %40 (and in a password `:` as %3A, `/` as %2F)",
                    origin.who
                )));
            }
        }
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
            origin,
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
                Error::config(format!(
                    "{}: the port of the connection string is not a number",
                    origin.who
                ))
            })?),
            None => None,
        };
        c.host = (!host.is_empty()).then(|| host.to_string());
        c.port = port;
        Ok(c)
    }

    /// From fields (`drivername`, `host`, `port`, `database`, `username`, `password`, `query`,
    /// and beside them dlt's `connect_timeout` and `sslmode`, and the TLS files `sslrootcert`,
    /// `sslcert`, `sslkey` (MySQL: `ssl_mode`, `ssl_ca`, `ssl_cert`, `ssl_key`)).
    pub fn from_fields(
        m: &Map<String, Value>,
        default_driver: Option<&str>,
        origin: Origin,
    ) -> Result<Self> {
        let s = |k: &str| m.get(k).and_then(Value::as_str).map(String::from);
        let drivername = s("drivername")
            .or_else(|| default_driver.map(String::from))
            .ok_or_else(|| {
                Error::config(format!("{}: the credentials have no `drivername`\nhint: drivername = \"postgresql\" (or mysql, mariadb, sqlite), or give a connection string", origin.who))
            })?;
        let port = match m.get("port") {
            None | Some(Value::Null) => None,
            Some(v) => Some(
                v.as_u64()
                    .and_then(|p| u16::try_from(p).ok())
                    .or_else(|| v.as_str().and_then(|p| p.parse().ok()))
                    .ok_or_else(|| {
                        Error::config(format!(
                            "{}: credentials `port` is not a port number",
                            origin.who
                        ))
                    })?,
            ),
        };
        let text = |v: &Value| v.as_str().map_or_else(|| v.to_string(), String::from);
        let mut query: BTreeMap<String, String> = m
            .get("query")
            .and_then(Value::as_object)
            .map(|q| q.iter().map(|(k, v)| (k.clone(), text(v))).collect())
            .unwrap_or_default();
        for key in [
            "connect_timeout",
            "sslmode",
            "sslrootcert",
            "sslcert",
            "sslkey",
            "ssl_mode",
            "ssl_ca",
            "ssl_cert",
            "ssl_key",
            "client_encoding",
        ] {
            if let Some(v) = m.get(key).filter(|v| !v.is_null()) {
                query.insert(key.to_string(), text(v));
            }
        }
        Ok(Self {
            dialect: Self::dialect_of(&drivername, origin)?,
            drivername,
            host: s("host"),
            port,
            database: s("database"),
            username: s("username"),
            password: s("password").map(Secret::new),
            query,
            origin,
        })
    }

    /// The connection string with the password left out, for messages and load info.
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

    /// The connect timeout (`?connect_timeout=` seconds, default 15).
    pub fn connect_timeout(&self) -> Duration {
        self.query
            .get("connect_timeout")
            .and_then(|v| v.parse::<f64>().ok())
            .and_then(|s| Duration::try_from_secs_f64(s).ok())
            .filter(|d| !d.is_zero())
            .unwrap_or(Duration::from_secs(15))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SRC: Origin = Origin {
        who: "source `sql_database`",
        path: "sources.sql_database.credentials",
    };

    #[test]
    fn connection_strings_parse_as_sqlalchemy_writes_them() {
        let c = Credentials::parse("postgresql+psycopg2://loader:p%40ss:w@db.local:6543/dlt_data?sslmode=disable&connect_timeout=3", SRC)
            .expect("pg");
        assert_eq!(c.dialect, Dialect::Postgres);
        assert_eq!(c.host.as_deref(), Some("db.local"));
        assert_eq!(c.port, Some(6543));
        assert_eq!(c.username.as_deref(), Some("loader"));
        assert_eq!(
            c.password.as_ref().map(|p| p.expose().as_str()),
            Some("p@ss:w")
        );
        assert_eq!(c.database.as_deref(), Some("dlt_data"));
        assert_eq!(c.query.get("sslmode").map(String::as_str), Some("disable"));
        assert_eq!(c.connect_timeout(), Duration::from_secs(3));
        assert_eq!(
            c.redacted(),
            "postgresql+psycopg2://loader:***@db.local:6543/dlt_data"
        );
        assert!(
            !format!("{c:?}").contains("p@ss"),
            "Debug hides the password"
        );

        let m = Credentials::parse("mariadb://root@127.0.0.1/test", SRC).expect("mariadb");
        assert_eq!(
            (m.dialect, m.port, m.password.is_none()),
            (Dialect::MySql, None, true)
        );
        assert_eq!(m.redacted(), "mariadb://root@127.0.0.1/test");

        let rel = Credentials::parse("sqlite:///data/x.db", SRC).expect("sqlite");
        assert_eq!(rel.database.as_deref(), Some("data/x.db"));
        let abs = Credentials::parse("sqlite:////tmp/x.db", SRC).expect("sqlite abs");
        assert_eq!(abs.database.as_deref(), Some("/tmp/x.db"));

        let v6 = Credentials::parse("postgresql://u@[::1]/d", SRC).expect("v6");
        assert_eq!((v6.host.as_deref(), v6.port), (Some("::1"), None));
        let v6 = Credentials::parse("postgresql://u@[::1]:5433/d", SRC).expect("v6 port");
        assert_eq!((v6.host.as_deref(), v6.port), (Some("::1"), Some(5433)));
        let t = Credentials::parse("postgresql://h/d?connect_timeout=-1", SRC).expect("timeout");
        assert_eq!(
            t.connect_timeout(),
            Duration::from_secs(15),
            "a bad timeout is the default"
        );

        // SQLAlchemy lets a password hold `/`, `?` and `:`; none of it may reach a message
        let c = Credentials::parse(
            "postgresql://loader:12/x?y:z@db.local:5432/dlt?sslmode=disable",
            SRC,
        )
        .expect("password with / ? :");
        assert_eq!(
            c.password.as_ref().map(|p| p.expose().as_str()),
            Some("12/x?y:z")
        );
        assert_eq!(
            (c.host.as_deref(), c.port, c.database.as_deref()),
            (Some("db.local"), Some(5432), Some("dlt"))
        );
        assert_eq!(c.redacted(), "postgresql://loader:***@db.local:5432/dlt");
        let e = Credentials::parse("postgresql://u:s3cret@h:5x/d", SRC).expect_err("bad port");
        assert!(
            !e.to_string().contains("s3cret") && e.to_string().contains("port"),
            "{e}"
        );
        // an unescaped `@` in the password: refused, and no part of the password is shown
        for url in [
            "postgresql://loader:se@cr3t@db.local:5432/dlt",
            "postgresql://lo@der:secr3t@db.local/dlt",
            "postgresql://loader:se@cr3t/x@db.local/dlt",
        ] {
            let e = Credentials::parse(url, SRC).expect_err("unescaped @");
            let msg = e.to_string();
            assert!(msg.contains("%40"), "{msg}");
            assert!(!msg.contains("cr3t") && !msg.contains("db.local"), "{msg}");
        }
        let hp = Credentials::parse("postgresql://h:5433/d", SRC).expect("no user");
        assert_eq!(
            (hp.host.as_deref(), hp.port, hp.username.is_none()),
            (Some("h"), Some(5433), true)
        );

        let e = Credentials::parse("oracle://x@y/z", SRC).expect_err("unsupported");
        assert!(
            e.to_string()
                .contains("source `sql_database`: unsupported database `oracle`"),
            "{e}"
        );
        let e = Credentials::parse("localhost:5432", SRC).expect_err("not a url");
        assert!(e.to_string().contains("connection string"), "{e}");
        let e = Credentials::parse("postgresql://u@h:54x/d", SRC).expect_err("port");
        assert!(
            e.to_string().contains("port of the connection string"),
            "{e}"
        );
    }

    #[test]
    fn credentials_from_fields_need_a_drivername_unless_the_plugin_knows_it() {
        let f = serde_json::json!({"drivername": "postgresql", "host": "h", "port": 5433, "username": "u", "password": "secret", "database": "d", "connect_timeout": 4});
        let c = Credentials::from_fields(f.as_object().expect("obj"), None, SRC).expect("fields");
        assert_eq!(
            (
                c.port,
                c.redacted().contains("secret"),
                c.connect_timeout().as_secs()
            ),
            (Some(5433), false, 4)
        );
        let bad = serde_json::json!({"drivername": "mysql", "port": "x"});
        let e = Credentials::from_fields(bad.as_object().expect("obj"), None, SRC)
            .expect_err("bad port");
        assert!(e.to_string().contains("`port`"), "{e}");
        let host = serde_json::json!({"host": "h"});
        let e = Credentials::from_fields(host.as_object().expect("obj"), None, SRC)
            .expect_err("no driver");
        assert!(e.to_string().contains("drivername"), "{e}");
        let c = Credentials::from_fields(host.as_object().expect("obj"), Some("postgresql"), SRC)
            .expect("a destination's own driver");
        assert_eq!(c.dialect, Dialect::Postgres);
    }

    #[test]
    fn resolve_merges_secret_fields_over_config_fields_and_says_where_credentials_go() {
        let fields = serde_json::json!({"host": "h", "database": "d", "username": "u"});
        let secret = serde_json::json!({"password": "pw", "database": "other"});
        let c = Credentials::resolve(
            Some(&secret),
            fields.as_object().expect("obj"),
            Some("postgresql"),
            SRC,
        )
        .expect("merged");
        assert_eq!(c.redacted(), "postgresql://u:***@h/other");
        let e = Credentials::resolve(None, &Map::new(), None, SRC).expect_err("none");
        assert!(
            e.to_string().contains("sources.sql_database.credentials"),
            "{e}"
        );
    }
}
