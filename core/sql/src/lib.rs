//! `sluice-sql`: what sluice's SQL plugins share.
//!
//! - [`Credentials`]: a SQLAlchemy-style connection string or dlt's credential fields, parsed
//!   once for the sql_database source and the SQL destinations, never showing the password.
//! - [`connect`] (features `postgres`, `mysql`): connections over sqlx under the credentials'
//!   timeout, with errors that name the fix.
//! - [`client`]: the job client every SQL destination shares ([`client::SqlJobClient`]): dlt's
//!   system tables, the per-package transaction, the staging plan and state restore, over a
//!   destination's [`client::SqlConnection`].
//! - [`jobs`]: the statements of dlt's write dispositions for a SQL destination (DDL, replace,
//!   merge with delete-insert, upsert, insert-only and scd2), written once for every
//!   [`jobs::SqlDialect`].
//! - [`pgcopy`] (feature `pgcopy`): PostgreSQL's binary COPY format, Arrow batches written
//!   and read back, for the postgres destination's loads and the sql_database source's reads.
//!
//! ```
//! use sluice_sql::{Credentials, Origin};
//! let origin = Origin { who: "destination `postgres`", path: "destination.postgres.credentials" };
//! let c = Credentials::parse("postgresql://loader:s3cret@localhost:5432/dlt_data", origin)?;
//! assert_eq!(c.redacted(), "postgresql://loader:***@localhost:5432/dlt_data");
//! # Ok::<(), sluice_sdk::Error>(())
//! ```

#![warn(missing_docs)]

pub mod client;
#[cfg(any(feature = "postgres", feature = "mysql"))]
pub mod connect;
mod credentials;
pub mod jobs;
pub mod naming;
#[cfg(feature = "pgcopy")]
pub mod pgcopy;

pub use credentials::{Credentials, Dialect, Origin};
