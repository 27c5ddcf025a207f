//! Opening connections over sqlx with the credentials' timeout and the TLS their connection
//! string asks for (`sslmode` for PostgreSQL, `ssl-mode` for MySQL/MariaDB), and connection
//! errors that say what to fix without showing the password.
//!
//! TLS, as libpq and the MySQL client do it:
//!
//! | PostgreSQL `sslmode` | MySQL `ssl-mode` | what happens |
//! |---|---|---|
//! | `disable` | `DISABLED` | no TLS |
//! | `allow` | — | no TLS; TLS only if the server refuses the plain login |
//! | `prefer` (default) | `PREFERRED` (default) | TLS if the server offers it, else plain; a PostgreSQL server on this machine (loopback) is tried without TLS first, since TLS on loopback protects nothing and its handshake costs ~140 ms a connection |
//! | `require` | `REQUIRED` | TLS or no connection; the certificate is not checked |
//! | `verify-ca` | `VERIFY_CA` | TLS with a certificate signed by `sslrootcert` (`ssl-ca`) or a well-known CA |
//! | `verify-full` | `VERIFY_IDENTITY` | `verify-ca` and the certificate names the host |
//!
//! Two differences from libpq, both from the TLS stack (sqlx 0.9 on rustls 0.23): `require`
//! with an `sslrootcert` does not check the certificate (libpq then checks it as `verify-ca`;
//! ask for `verify-ca`), and `verify-ca` also checks that the certificate names the host, as
//! `verify-full` does (sqlx's host-name exemption misses rustls' newer error variant).
//!
//! `sslrootcert`, `sslcert`, `sslkey` (MySQL: `ssl-ca`, `ssl-cert`, `ssl-key`, or with `_`) are
//! file paths. A connection to another machine that carries a password without TLS
//! (`disable`, `allow`, `DISABLED`) is logged at WARN, once per target, without the password.

use std::collections::BTreeSet;
use std::sync::Mutex;

use sluice_sdk::{Error, Result};

use crate::{Credentials, Dialect};

/// Runs a connect future under the credentials' connect timeout, with errors made clear.
pub async fn with_timeout<T>(
    creds: &Credentials,
    fut: impl std::future::Future<Output = std::result::Result<T, sqlx::Error>>,
) -> Result<T> {
    match tokio::time::timeout(creds.connect_timeout(), fut).await {
        Ok(r) => r.map_err(|e| connect_error(creds, e)),
        Err(_) => Err(Error::network(format!(
            "cannot connect to {} within {:?}\nhint: check host and port, or raise connect_timeout (?connect_timeout=30)",
            creds.redacted(),
            creds.connect_timeout()
        ))
        .retryable()),
    }
}

/// A connection-time error, with the fix.
pub fn connect_error(creds: &Credentials, e: sqlx::Error) -> Error {
    let target = creds.redacted();
    match &e {
        sqlx::Error::Database(d) => {
            // PostgreSQL's SQLSTATE; MySQL's error number (its SQLSTATEs are too coarse)
            let code = d.code().map(|c| c.to_string()).unwrap_or_default();
            #[cfg(feature = "mysql")]
            let code = d
                .try_downcast_ref::<sqlx::mysql::MySqlDatabaseError>()
                .map_or(code, |m| m.number().to_string());
            match code.as_str() {
                // pg_hba.conf has a `hostssl` line only: the plain connection was refused
                "28000" if d.message().contains("no encryption") => Error::auth(format!(
                    "cannot log in to {target}: {}\nhint: the server accepts this login only over TLS; set sslmode=require (or verify-full) instead of sslmode=disable",
                    d.message()
                )),
                // invalid password / authorization (PostgreSQL), access denied (MySQL)
                "28P01" | "28000" | "1045" | "1044" | "1698" => Error::auth(format!(
                    "cannot log in to {target}: {}\nhint: check the username and password in the credentials ({})",
                    d.message(),
                    creds.origin.path
                )),
                "3D000" | "1049" => Error::config(format!(
                    "the database of {target} does not exist: {}\nhint: check the database name in the connection string",
                    d.message()
                )),
                // the database does not accept connections now (ALLOW_CONNECTIONS false,
                // starting up, shutting down, too many clients): worth another try later
                "55000" | "57P03" | "53300" | "08006" | "08001" | "08004" => Error::network(format!(
                    "{target} refused the connection: {}\nhint: the server does not accept connections to this database now; check it with the database administrator, then run again",
                    d.message()
                ))
                .retryable(),
                _ => Error::data(format!("{target}: {}", d.message())),
            }
        }
        // rustls' refusals arrive as I/O errors
        sqlx::Error::Io(io) if is_tls_refusal(io) => tls_error(creds, io),
        sqlx::Error::Io(io) => Error::network(format!(
            "cannot reach {target}: {io}\nhint: is the server running and are host and port right?"
        ))
        .retryable(),
        sqlx::Error::Tls(t) => tls_error(creds, t),
        other => Error::network(format!("cannot connect to {target}: {other}")),
    }
}

/// Whether an I/O error is a TLS refusal (a certificate that does not verify).
fn is_tls_refusal(io: &std::io::Error) -> bool {
    let text = io.to_string();
    text.contains("certificate") || text.contains("peer sent") || text.contains("handshake")
}

/// A TLS failure, with the fix; not retryable: a server without TLS or a certificate that does
/// not verify stays so.
fn tls_error(creds: &Credentials, e: impl std::fmt::Display) -> Error {
    let hint = if creds.dialect == Dialect::MySql {
        "the connection string asks for TLS (ssl-mode); check that the server has TLS on and that its certificate is signed by ssl-ca and names the host, or lower ssl-mode (PREFERRED)"
    } else {
        "the connection string asks for TLS (sslmode); check that the server has ssl = on and that its certificate is signed by sslrootcert and names the host (verify-ca and verify-full), or lower sslmode (require checks no certificate, prefer falls back to no TLS)"
    };
    Error::config(format!(
        "TLS with {} failed: {e}\nhint: {hint}",
        creds.redacted()
    ))
}

/// Whether the credentials name this machine (`localhost`, `127.0.0.0/8`, `::1`; no host means
/// localhost too).
pub fn is_loopback(creds: &Credentials) -> bool {
    match creds.host.as_deref() {
        None | Some("localhost") => true,
        Some(h) => h
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback()),
    }
}

/// The warning for credentials that cross the network without TLS (`setting` is what turned
/// TLS off, e.g. `sslmode=disable`), or `None` when there is nothing to warn about: no
/// password, or a server on this machine. It never holds the password.
pub fn unencrypted_warning(creds: &Credentials, setting: &str) -> Option<String> {
    if creds.password.is_none() || is_loopback(creds) {
        return None;
    }
    let fix = if creds.dialect == Dialect::MySql {
        "ssl-mode=REQUIRED (or VERIFY_IDENTITY with ssl-ca)"
    } else {
        "sslmode=require (or verify-full with sslrootcert)"
    };
    Some(format!(
        "the connection to {} is not encrypted ({setting}): its credentials and data cross the network in clear text\nhint: set {fix} in the connection string",
        creds.redacted()
    ))
}

/// Logs [`unencrypted_warning`] at WARN, once per target in this process (a source opens a
/// connection per table).
fn warn_unencrypted(creds: &Credentials, setting: &str) {
    static WARNED: Mutex<BTreeSet<String>> = Mutex::new(BTreeSet::new());
    let Some(message) = unencrypted_warning(creds, setting) else {
        return;
    };
    let first = WARNED
        .lock()
        .map(|mut w| w.insert(creds.redacted()))
        .unwrap_or(true);
    if first {
        tracing::warn!(target: "sluice::sql", "{message}");
    }
}

/// A file path option of the connection string (`sslrootcert=/path`), under any of `keys`.
fn path_option<'a>(creds: &'a Credentials, keys: &[&str]) -> Option<&'a str> {
    keys.iter()
        .find_map(|k| creds.query.get(*k))
        .map(String::as_str)
        .filter(|v| !v.is_empty())
}

/// PostgreSQL connections.
#[cfg(feature = "postgres")]
pub mod postgres {
    use sqlx::postgres::{PgConnectOptions, PgConnection, PgSslMode};
    use sqlx::Connection;

    use super::*;

    /// libpq's `sslmode`.
    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    pub enum SslMode {
        /// No TLS.
        Disable,
        /// No TLS unless the server refuses the plain login.
        Allow,
        /// TLS when the server offers it (the default).
        Prefer,
        /// TLS without checking the certificate.
        Require,
        /// TLS with a certificate signed by a trusted CA.
        VerifyCa,
        /// `VerifyCa` and the certificate names the host.
        VerifyFull,
    }

    impl SslMode {
        /// The mode of `creds` (`?sslmode=`, default `prefer`).
        pub fn of(creds: &Credentials) -> Result<Self> {
            Ok(match creds.query.get("sslmode").map(String::as_str) {
                None | Some("") | Some("prefer") => Self::Prefer,
                Some("disable") => Self::Disable,
                Some("allow") => Self::Allow,
                Some("require") => Self::Require,
                Some("verify-ca") => Self::VerifyCa,
                Some("verify-full") => Self::VerifyFull,
                Some(other) => {
                    return Err(Error::config(format!(
                        "{}: sslmode `{other}` is not one of disable, allow, prefer, require, verify-ca, verify-full",
                        creds.origin.who
                    )))
                }
            })
        }

        fn name(self) -> &'static str {
            match self {
                Self::Disable => "disable",
                Self::Allow => "allow",
                Self::Prefer => "prefer",
                Self::Require => "require",
                Self::VerifyCa => "verify-ca",
                Self::VerifyFull => "verify-full",
            }
        }
    }

    /// Connects with `creds` (fields from the connection string or the config), then runs
    /// `session_sql` (settings of the session, e.g. `SET TIME ZONE 'UTC'`), both under the
    /// connect timeout. TLS follows `sslmode` (see the module docs); every session also gets
    /// TCP keepalives on the server's side (`tcp_keepalives_idle` 60 s, `_interval` 10 s,
    /// `_count` 6), so that the server ends the session of a client whose machine or network
    /// vanished and frees its locks within about two minutes, where the OS default is two hours.
    pub async fn connect(creds: &Credentials, session_sql: &str) -> Result<PgConnection> {
        let mut o = PgConnectOptions::new_without_pgpass()
            .host(creds.host.as_deref().unwrap_or("localhost"))
            .port(creds.port.unwrap_or(5432))
            .application_name("sluice");
        if let Some(u) = &creds.username {
            o = o.username(u);
        }
        if let Some(p) = &creds.password {
            o = o.password(p.expose());
        }
        if let Some(d) = &creds.database {
            o = o.database(d);
        }
        if let Some(enc) = creds.query.get("client_encoding") {
            if !enc.eq_ignore_ascii_case("utf8") && !enc.eq_ignore_ascii_case("utf-8") {
                return Err(Error::config(format!(
                    "client_encoding `{enc}` is not supported: sluice talks UTF-8 to PostgreSQL\nhint: leave client_encoding out"
                )));
            }
        }
        let mode = SslMode::of(creds)?;
        if let Some(root) = path_option(creds, &["sslrootcert"]).filter(|p| *p != "system") {
            o = o.ssl_root_cert(root);
        }
        if let Some(cert) = path_option(creds, &["sslcert"]) {
            o = o.ssl_client_cert(cert);
        }
        if let Some(key) = path_option(creds, &["sslkey"]) {
            o = o.ssl_client_key(key);
        }
        if matches!(mode, SslMode::Disable | SslMode::Allow) {
            warn_unencrypted(creds, &format!("sslmode={}", mode.name()));
        }
        // TLS that checks nothing: the second try of allow and prefer, and require
        let unchecked = o.clone().ssl_mode(PgSslMode::Require);
        let plain = o.clone().ssl_mode(PgSslMode::Disable);
        let session = |mut con: PgConnection| async move {
            let sql = format!(
                "SET tcp_keepalives_idle = 60; SET tcp_keepalives_interval = 10; SET tcp_keepalives_count = 6{}{session_sql}",
                if session_sql.is_empty() { "" } else { "; " }
            );
            sqlx::raw_sql(sqlx::AssertSqlSafe(sql))
                .execute(&mut con)
                .await
                .map(|_| con)
        };
        with_timeout(creds, async {
            let con = match mode {
                SslMode::Disable => PgConnection::connect_with(&plain).await?,
                // plain first, TLS only if the server insists (pg_hba.conf has only a
                // `hostssl` line for this login: SQLSTATE 28000). Any other failure (a wrong
                // password, a server that is down) is the answer, not tried twice.
                SslMode::Allow => plain_then_tls(&plain, &unchecked).await?,
                // a server on this machine: libpq's `allow` (see the module docs)
                SslMode::Prefer if is_loopback(creds) => plain_then_tls(&plain, &unchecked).await?,
                SslMode::Prefer => {
                    PgConnection::connect_with(&o.clone().ssl_mode(PgSslMode::Prefer)).await?
                }
                SslMode::Require => PgConnection::connect_with(&unchecked).await?,
                SslMode::VerifyCa => {
                    PgConnection::connect_with(&o.clone().ssl_mode(PgSslMode::VerifyCa)).await?
                }
                SslMode::VerifyFull => {
                    PgConnection::connect_with(&o.clone().ssl_mode(PgSslMode::VerifyFull)).await?
                }
            };
            session(con).await
        })
        .await
    }

    async fn plain_then_tls(
        plain: &PgConnectOptions,
        tls: &PgConnectOptions,
    ) -> std::result::Result<PgConnection, sqlx::Error> {
        match PgConnection::connect_with(plain).await {
            Err(sqlx::Error::Database(d)) if d.code().as_deref() == Some("28000") => {
                PgConnection::connect_with(tls).await
            }
            other => other,
        }
    }
}

/// MySQL and MariaDB connection options.
#[cfg(feature = "mysql")]
pub mod mysql {
    use sqlx::mysql::{MySqlConnectOptions, MySqlSslMode};

    use super::*;

    /// `o` with the TLS of `creds`: `?ssl-mode=` (also `ssl_mode`; `DISABLED`, `PREFERRED`
    /// (default), `REQUIRED`, `VERIFY_CA`, `VERIFY_IDENTITY`, any case, `-` or `_`), `ssl-ca`,
    /// `ssl-cert`, `ssl-key`.
    pub fn with_tls(
        creds: &Credentials,
        mut o: MySqlConnectOptions,
    ) -> Result<MySqlConnectOptions> {
        let mode = path_option(creds, &["ssl-mode", "ssl_mode", "sslmode"])
            .map(|m| m.to_ascii_uppercase().replace('-', "_"));
        let mode = match mode.as_deref() {
            None | Some("PREFERRED") => MySqlSslMode::Preferred,
            Some("DISABLED") => MySqlSslMode::Disabled,
            Some("REQUIRED") => MySqlSslMode::Required,
            Some("VERIFY_CA") => MySqlSslMode::VerifyCa,
            Some("VERIFY_IDENTITY") => MySqlSslMode::VerifyIdentity,
            Some(other) => {
                return Err(Error::config(format!(
                    "{}: ssl-mode `{other}` is not one of DISABLED, PREFERRED, REQUIRED, VERIFY_CA, VERIFY_IDENTITY",
                    creds.origin.who
                )))
            }
        };
        if matches!(mode, MySqlSslMode::Disabled) {
            warn_unencrypted(creds, "ssl-mode=DISABLED");
        }
        if let Some(ca) = path_option(creds, &["ssl-ca", "ssl_ca"]) {
            o = o.ssl_ca(ca);
        }
        if let Some(cert) = path_option(creds, &["ssl-cert", "ssl_cert"]) {
            o = o.ssl_client_cert(cert);
        }
        if let Some(key) = path_option(creds, &["ssl-key", "ssl_key"]) {
            o = o.ssl_client_key(key);
        }
        Ok(o.ssl_mode(mode))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Origin;

    const O: Origin = Origin {
        who: "t",
        path: "t",
    };

    #[test]
    fn loopback_hosts_are_this_machine() {
        for (url, local) in [
            ("postgresql://u@localhost/d", true),
            ("postgresql://u@127.0.0.1:5432/d", true),
            ("postgresql://u@127.1.2.3/d", true),
            ("postgresql://u@[::1]/d", true),
            ("postgresql:///d", true),
            ("postgresql://u@db.example.com/d", false),
            ("postgresql://u@10.0.0.5/d", false),
        ] {
            let c = Credentials::parse(url, O).expect("url");
            assert_eq!(is_loopback(&c), local, "{url}");
        }
    }

    /// A password sent to another machine without TLS is warned about, without the password;
    /// a server on this machine or a login without a password is not.
    #[test]
    fn unencrypted_credentials_to_another_machine_are_warned_about_without_the_secret() {
        let w = |url: &str, setting: &str| {
            unencrypted_warning(&Credentials::parse(url, O).expect("url"), setting)
        };
        let m = w(
            "postgresql://loader:s3cret-pw@db.example.com:5432/dlt?sslmode=disable",
            "sslmode=disable",
        )
        .expect("a warning");
        assert!(
            m.contains("postgresql://loader:***@db.example.com:5432/dlt")
                && m.contains("sslmode=disable")
                && m.contains("sslmode=require"),
            "{m}"
        );
        assert!(!m.contains("s3cret-pw"), "{m}");
        let m = w("mysql://root:s3cret-pw@10.1.2.3/test", "ssl-mode=DISABLED").expect("mysql");
        assert!(
            m.contains("ssl-mode=REQUIRED") && !m.contains("s3cret-pw"),
            "{m}"
        );
        assert_eq!(
            w("postgresql://loader:pw@127.0.0.1/dlt", "sslmode=disable"),
            None
        );
        assert_eq!(
            w("postgresql://loader:pw@localhost/dlt", "sslmode=allow"),
            None
        );
        assert_eq!(
            w("postgresql://loader@db.example.com/dlt", "sslmode=disable"),
            None
        );
    }

    /// The WARN is logged once per target (a source opens a connection per table) and holds
    /// no secret.
    #[test]
    #[cfg(feature = "postgres")]
    fn the_warning_is_logged_once_at_warn() {
        use std::io::Write;
        #[derive(Clone, Default)]
        struct Buf(std::sync::Arc<Mutex<Vec<u8>>>);
        impl Write for Buf {
            fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
                self.0.lock().expect("buf").extend_from_slice(b);
                Ok(b.len())
            }
            fn flush(&mut self) -> std::io::Result<()> {
                Ok(())
            }
        }
        let buf = Buf::default();
        let out = buf.clone();
        let subscriber = tracing_subscriber::fmt()
            .with_writer(move || out.clone())
            .with_max_level(tracing::Level::WARN)
            .finish();
        let c = Credentials::parse(
            "postgresql://loader:s3cret-pw@warned.example.com/dlt?sslmode=allow",
            O,
        )
        .expect("url");
        tracing::subscriber::with_default(subscriber, || {
            warn_unencrypted(&c, "sslmode=allow");
            warn_unencrypted(&c, "sslmode=allow");
        });
        let text = String::from_utf8(buf.0.lock().expect("buf").clone()).expect("utf8");
        assert_eq!(text.matches("is not encrypted").count(), 1, "{text}");
        assert!(
            text.contains("WARN") && !text.contains("s3cret-pw"),
            "{text}"
        );
    }

    #[test]
    #[cfg(feature = "postgres")]
    fn sslmode_is_read_as_libpq_reads_it() {
        use postgres::SslMode;
        let m = |url: &str| SslMode::of(&Credentials::parse(url, O).expect("url"));
        assert_eq!(m("postgresql://h/d").expect("default"), SslMode::Prefer);
        assert_eq!(
            m("postgresql://h/d?sslmode=require").expect("require"),
            SslMode::Require
        );
        assert_eq!(
            m("postgresql://h/d?sslmode=verify-full").expect("full"),
            SslMode::VerifyFull
        );
        let e = m("postgresql://h/d?sslmode=on").expect_err("bad mode");
        assert!(e.to_string().contains("sslmode `on`"), "{e}");
    }
}
