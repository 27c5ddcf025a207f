use super::*;

#[test]
fn connection_strings_parse_as_sqlalchemy_writes_them() {
    let c = Credentials::parse("postgresql+psycopg2://loader:p%40ss:w@db.local:6543/dlt_data?sslmode=disable&connect_timeout=3")
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
    let shown = c.redacted();
    assert_eq!(
        shown,
        "postgresql+psycopg2://loader:***@db.local:6543/dlt_data"
    );
    assert!(
        !format!("{c:?}").contains("p@ss"),
        "Debug hides the password"
    );

    let m = Credentials::parse("mariadb://root@127.0.0.1/test").expect("mariadb");
    assert_eq!(
        (m.dialect, m.port, m.password.is_none()),
        (Dialect::MySql, None, true)
    );
    assert_eq!(m.redacted(), "mariadb://root@127.0.0.1/test");

    let rel = Credentials::parse("sqlite:///data/x.db").expect("sqlite");
    assert_eq!(rel.database.as_deref(), Some("data/x.db"));
    let abs = Credentials::parse("sqlite:////tmp/x.db").expect("sqlite abs");
    assert_eq!(abs.database.as_deref(), Some("/tmp/x.db"));

    let v6 = Credentials::parse("postgresql://u@[::1]/d").expect("v6");
    assert_eq!((v6.host.as_deref(), v6.port), (Some("::1"), None));
    let v6 = Credentials::parse("postgresql://u@[::1]:5433/d").expect("v6 port");
    assert_eq!((v6.host.as_deref(), v6.port), (Some("::1"), Some(5433)));
    let t = Credentials::parse("postgresql://h/d?connect_timeout=-1").expect("timeout");
    assert_eq!(
        t.connect_timeout(),
        Duration::from_secs(15),
        "a bad timeout is the default"
    );

    // SQLAlchemy lets a password hold `/`, `?` and `:`; none of it may reach a message
    let c = Credentials::parse("postgresql://loader:12/x?y:z@db.local:5432/dlt?sslmode=disable")
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
    let e = Credentials::parse("postgresql://u:s3cret@h:5x/d")
        .err()
        .expect("bad port");
    assert!(
        !e.to_string().contains("s3cret") && e.to_string().contains("port"),
        "{e}"
    );
    let hp = Credentials::parse("postgresql://h:5433/d").expect("no user");
    assert_eq!(
        (hp.host.as_deref(), hp.port, hp.username.is_none()),
        (Some("h"), Some(5433), true)
    );

    let e = Credentials::parse("oracle://x@y/z")
        .err()
        .expect("unsupported");
    assert!(
        e.to_string().contains("unsupported database `oracle`"),
        "{e}"
    );
    let e = Credentials::parse("localhost:5432")
        .err()
        .expect("not a url");
    assert!(e.to_string().contains("connection string"), "{e}");
    let e = Credentials::parse("postgresql://u@h:54x/d")
        .err()
        .expect("port");
    assert!(
        e.to_string().contains("port of the connection string"),
        "{e}"
    );
}

#[test]
fn credentials_from_fields_need_a_drivername() {
    let f = serde_json::json!({"drivername": "postgresql", "host": "h", "port": 5433, "username": "u", "password": "secret", "database": "d"});
    let c = Credentials::from_fields(f.as_object().expect("obj")).expect("fields");
    assert_eq!(
        (c.port, c.redacted().contains("secret")),
        (Some(5433), false)
    );
    let bad = serde_json::json!({"drivername": "mysql", "port": "x"});
    let e = Credentials::from_fields(bad.as_object().expect("obj"))
        .err()
        .expect("bad port");
    assert!(e.to_string().contains("`port`"), "{e}");
    let e = Credentials::from_fields(serde_json::json!({"host": "h"}).as_object().expect("obj"))
        .err()
        .expect("no driver");
    assert!(e.to_string().contains("drivername"), "{e}");
}

#[test]
fn a_source_without_credentials_says_where_they_go() {
    let e = SqlDatabase::open(serde_json::json!({}), Value::Null)
        .err()
        .expect("no credentials");
    assert!(
        e.to_string().contains("sources.sql_database.credentials"),
        "{e}"
    );
    let e = SqlDatabase::open(serde_json::json!({"chunk_sise": 3}), Value::Null)
        .err()
        .expect("unknown key");
    assert!(e.to_string().contains("chunk_sise"), "{e}");
}
