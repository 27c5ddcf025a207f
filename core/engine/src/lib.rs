//! `sluice`: the engine of the sluice data load tool.
//!
//! It turns streams of JSON documents and typed Arrow batches into relational tables exactly as
//! dlt does (naming, nested tables, types, variants, schema evolution and contracts), writes
//! them as parquet load files, and drives pipelines that load them into destinations.

#![warn(missing_docs)]

#[cfg(feature = "mimalloc")]
pub mod alloc;
pub mod coerce;
pub mod config;
pub mod detect;
mod error;
pub mod extract;
pub mod hash;
pub mod json;
mod keccak;
pub mod naming;
pub mod normalize;
pub mod pipeline;
mod pycompat;
pub mod schema;
pub mod types;
pub mod writer;

pub use error::{Error, Result};
pub use types::{Coerced, DataType, Scalar};
