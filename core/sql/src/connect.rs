//! Opening connections over sqlx with the credentials' timeout, and connection errors that
//! say what to fix without showing the password.

use sluice_sdk::{Error, Result};

use crate::Credentials;

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

/// PostgreSQL connections.
#[cfg(feature = "postgres")]
pub mod postgres {
    use sqlx::postgres::{PgConnectOptions, PgConnection};
    use sqlx::Connection;

    use super::*;

    /// Connects with `creds` (fields from the connection string or the config), then runs
    /// `session_sql` (settings of the session, e.g. `SET TIME ZONE 'UTC'`). Without an
    /// `sslmode`, a server on this machine is tried without TLS first (libpq's `allow`), any
    /// other with TLS first (`prefer`, libpq's default).
    pub async fn connect(creds: &Credentials, session_sql: &'static str) -> Result<PgConnection> {
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
        if let Some(mode) = creds.query.get("sslmode") {
            let mode = mode
                .parse()
                .map_err(|_| Error::config(format!("sslmode `{mode}` is not one of disable, allow, prefer, require, verify-ca, verify-full")))?;
            o = o.ssl_mode(mode);
        }
        if let Some(enc) = creds.query.get("client_encoding") {
            if !enc.eq_ignore_ascii_case("utf8") && !enc.eq_ignore_ascii_case("utf-8") {
                return Err(Error::config(format!(
                    "client_encoding `{enc}` is not supported: sluice talks UTF-8 to PostgreSQL\nhint: leave client_encoding out"
                )));
            }
        }
        let mut con = if creds.query.contains_key("sslmode") || !is_loopback(creds) {
            with_timeout(creds, PgConnection::connect_with(&o)).await?
        } else {
            // a server on this machine: plain TCP first, TLS only if the server insists
            // (libpq's `allow`). TLS on loopback protects nothing, and sqlx's rustls handshake
            // cost ~140 ms a connection here (plain: ~7 ms).
            // Only a refusal of the unencrypted connection (pg_hba.conf has no `host` line for
            // it: SQLSTATE 28000) is tried again with TLS; any other failure (a wrong password,
            // a server that is down) is the answer, not tried twice.
            let plain = o.clone().ssl_mode(sqlx::postgres::PgSslMode::Disable);
            let attempt = with_timeout(creds, async {
                match PgConnection::connect_with(&plain).await {
                    Ok(c) => Ok(Some(c)),
                    Err(sqlx::Error::Database(d)) if d.code().as_deref() == Some("28000") => {
                        Ok(None)
                    }
                    Err(e) => Err(e),
                }
            })
            .await?;
            match attempt {
                Some(c) => c,
                None => with_timeout(creds, PgConnection::connect_with(&o)).await?,
            }
        };
        if !session_sql.is_empty() {
            sqlx::raw_sql(session_sql)
                .execute(&mut con)
                .await
                .map_err(|e| connect_error(creds, e))?;
        }
        Ok(con)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Origin;

    #[test]
    fn loopback_hosts_are_this_machine() {
        let o = Origin {
            who: "t",
            path: "t",
        };
        for (url, local) in [
            ("postgresql://u@localhost/d", true),
            ("postgresql://u@127.0.0.1:5432/d", true),
            ("postgresql://u@127.1.2.3/d", true),
            ("postgresql://u@[::1]/d", true),
            ("postgresql:///d", true),
            ("postgresql://u@db.example.com/d", false),
            ("postgresql://u@10.0.0.5/d", false),
        ] {
            let c = Credentials::parse(url, o).expect("url");
            assert_eq!(is_loopback(&c), local, "{url}");
        }
    }
}
