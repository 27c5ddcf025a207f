//! `sluice-sdk`: what a sluice plugin author uses.
//!
//! A plugin is a Rust crate that implements [`Source`] and/or [`Destination`], describes itself
//! in a `sluice-plugin.toml` manifest, and is compiled into a dynamic library the sluice host
//! discovers at run time. The SDK hides the stable ABI ([`sluice_abi`]): it exports the
//! functions, catches panics (poisoning the plugin instead of aborting the host), owns the
//! plugin's tokio runtime, forwards `tracing`/`log` records and panic messages to the host, and
//! turns [`BatchStream`]s into Arrow C streams.
//!
//! # Writing a source plugin
//!
//! ```
//! use std::sync::Arc;
//! use sluice_sdk::prelude::*;
//!
//! struct Numbers;
//!
//! impl Source for Numbers {
//!     fn describe(&self) -> Result<Vec<ResourceDescriptor>> {
//!         Ok(vec![ResourceDescriptor::new("numbers")])
//!     }
//!
//!     fn open_resource(&self, request: ResourceRequest, ctx: StreamContext) -> Result<BatchStream> {
//!         if request.resource != "numbers" {
//!             return Err(Error::not_found(format!("no resource `{}`", request.resource)));
//!         }
//!         // an async producer on the plugin's runtime; `send` waits while the host is busy
//!         Ok(ctx.spawn(Some(json_schema()), |sink| async move {
//!             let mut docs = JsonBatchBuilder::default();
//!             for i in 0..10 {
//!                 docs.push_value(&serde_json::json!({ "n": i }))?;
//!             }
//!             sink.send(docs.finish()).await?;
//!             Ok(None)
//!         }))
//!     }
//! }
//!
//! fn plugin() -> Plugin {
//!     Plugin::new("name = \"numbers\"\nkind = \"source\"\n", "0.1.0")
//!         .source(|_config, _secrets| Ok(Numbers))
//! }
//! sluice_sdk::declare_plugin!(pub fn plugin_module = plugin);
//!
//! // and in the plugin's cdylib crate (`plugin/src/lib.rs`):
//! // sluice_sdk::export_plugin!(my_connector::plugin_module);
//! # #[cfg(feature = "testing")]
//! # assert_eq!(sluice_sdk::testing::check_source(&Numbers, &Default::default()).unwrap().rows["numbers"], 10);
//! ```
//!
//! The cdylib's `build.rs` calls `sluice_plugin_build::emit_manifest()` so the manifest lands
//! next to the library.

#![warn(missing_docs)]

mod bridge;
mod cancel;
pub mod destination;
mod error;
#[doc(hidden)]
pub mod export;
mod json;
pub mod manifest;
pub mod paginator;
mod redact;
pub mod resource;
mod runtime;
pub mod schema;
mod secret;
mod source;
#[cfg(feature = "testing")]
pub mod testing;

/// The ABI crate, re-exported for the export macros.
pub use sluice_abi as abi;

pub use cancel::{CancelFlag, CancelToken};
pub use destination::{Capabilities, Destination, DestinationClient};
pub use error::{Error, Result};
pub use export::Plugin;
pub use json::{
    json_located_schema, json_schema, json_text_array, json_text_batch, json_text_batch_from,
    json_text_origins, json_texts, JsonBatchBuilder, JSON_LINE_COLUMN, JSON_ORIGIN_COLUMN,
};
pub use manifest::PluginKind;
pub use paginator::{PageRequest, PageResponse, Paginator};
pub use redact::{redact_url, redact_urls, URL_QUERY_ALLOW_LIST};
pub use resource::{
    DataFormat, IncrementalSpec, KeyHint, ResourceDescriptor, ResourceRequest,
    WriteDispositionHint, JSON_COLUMN,
};
pub use secret::Secret;
pub use sluice_abi::ErrorCode;
pub use source::{BatchProducer, BatchSink, BatchStream, Source, StreamContext, StreamReader};

/// Everything a plugin author usually needs.
pub mod prelude {
    pub use crate::destination::{
        BatchReader, ClientRequest, DropTablesRequest, JobReport, LoadCompletion, LoadJob,
        LoadPlan, SchemaUpdate, SchemaUpdateRequest, StoredSchema, StoredState,
    };
    pub use crate::schema::{Column, DataType, Schema, Table, WriteDisposition};
    pub use crate::{
        json_schema, BatchSink, BatchStream, CancelToken, Capabilities, DataFormat, Destination,
        DestinationClient, Error, ErrorCode, JsonBatchBuilder, Plugin, ResourceDescriptor,
        ResourceRequest, Result, Secret, Source, StreamContext,
    };
}
