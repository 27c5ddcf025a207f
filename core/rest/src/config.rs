//! The configuration of a declarative REST API source (dlt's `rest_api_source` dict, spec i),
//! as the `rest_api` plugin reads it and as sources built on it (the `github` plugin) write it.
//!
//! * [`RestApiConfig`]: `client`, `resources`, `resource_defaults`, the request settings
//!   ([`RetryConfig`]) and limits ([`Limits`]).
//! * [`ClientConfig`]: `base_url`, `headers`, `paginator`, `auth` (secrets belong in
//!   [`RestApiSecrets`]), `auth_origins`.
//! * [`ResourceConfig`] and its [`Endpoint`]: what each entry of `resources` reads as, once
//!   `resource_defaults` are merged in.
//!
//! ```
//! use serde_json::json;
//! use sluice_rest::config::RestApiConfig;
//!
//! let config: RestApiConfig = serde_json::from_value(json!({
//!     "client": {"base_url": "https://api.example.com/v1/"},
//!     "resources": ["posts"],
//! }))?;
//! assert_eq!(config.client.base_url, "https://api.example.com/v1/");
//! assert_eq!(config.retry.request_max_attempts, 5);
//! # Ok::<(), serde_json::Error>(())
//! ```

use indexmap::IndexMap;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use sluice_sdk::resource::{IncrementalSpec, KeyHint, WriteDispositionHint};
use sluice_sdk::Secret;

use crate::{Limits, PaginatorConfig, ResponseAction, RetryConfig};

/// A REST API source: its client, its resources and the request settings.
#[derive(Debug, Clone, Deserialize, Serialize)]
pub struct RestApiConfig {
    /// The client every resource requests through.
    pub client: ClientConfig,
    /// The resources: a name, or a table read as a [`ResourceConfig`] once
    /// `resource_defaults` are merged in.
    pub resources: Vec<Value>,
    /// Keys every resource gets unless it sets them (`endpoint`, its `params` and `json`
    /// merge one level deep, `columns` column by column).
    #[serde(default)]
    pub resource_defaults: Option<Value>,
    /// At most this many requests per second.
    #[serde(default)]
    pub rate_limit: Option<f64>,
    /// Attempts, backoff, timeouts and the longest rate-limit wait.
    #[serde(flatten)]
    pub retry: RetryConfig,
    /// Bounds on what one server can make the client read.
    #[serde(flatten)]
    pub limits: Limits,
}

/// The client of a REST API source.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct ClientConfig {
    /// The URL every resource's path is relative to; credentials go to its origin.
    pub base_url: String,
    /// Headers of every request.
    #[serde(default)]
    pub headers: IndexMap<String, String>,
    /// The auth without its secrets (a `type` and its non-secret fields); the secrets'
    /// `auth` wins.
    #[serde(default)]
    pub auth: Option<Value>,
    /// The paginator of resources that name none.
    #[serde(default)]
    pub paginator: Option<PaginatorConfig>,
    /// Origins besides base_url's that get the credentials (sluice's; dlt sends them
    /// anywhere).
    #[serde(default)]
    pub auth_origins: Vec<String>,
}

/// An endpoint's incremental cursor and the query parameters its window goes to.
#[derive(Debug, Clone, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct IncrementalConfig {
    /// The cursor, as `dlt.sources.incremental` takes it.
    #[serde(flatten)]
    pub spec: IncrementalSpec,
    /// The query parameter the window's start goes to.
    #[serde(default)]
    pub start_param: Option<String>,
    /// The query parameter the window's end goes to.
    #[serde(default)]
    pub end_param: Option<String>,
}

/// What a resource requests.
#[derive(Debug, Clone, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct Endpoint {
    /// The path, relative to `base_url` (default: the resource's name); `{...}` placeholders
    /// are filled from the parent record, the incremental window or `params`.
    #[serde(default)]
    pub path: Option<String>,
    /// The HTTP method (default `GET`).
    #[serde(default)]
    pub method: Option<String>,
    /// Query parameters; `{type = "resolve", ...}` and `{type = "incremental", ...}` are
    /// dlt's legacy forms of a parent reference and of an incremental cursor.
    #[serde(default)]
    pub params: Map<String, Value>,
    /// The JSON body.
    #[serde(default)]
    pub json: Option<Value>,
    /// Headers of this endpoint's requests.
    #[serde(default)]
    pub headers: IndexMap<String, String>,
    /// This endpoint's paginator (default: the client's).
    #[serde(default)]
    pub paginator: Option<PaginatorConfig>,
    /// Where the records are in a response (default: detected).
    #[serde(default)]
    pub data_selector: Option<String>,
    /// What to do with some responses (e.g. ignore a 404).
    #[serde(default)]
    pub response_actions: Vec<ResponseAction>,
    /// The incremental cursor.
    #[serde(default)]
    pub incremental: Option<IncrementalConfig>,
    /// This endpoint's auth instead of the client's.
    #[serde(default)]
    pub auth: Option<Value>,
}

/// One resource: its endpoint and its hints.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ResourceConfig {
    /// The resource's name.
    pub name: String,
    /// A path, or an [`Endpoint`] table.
    #[serde(default)]
    pub endpoint: Option<Value>,
    /// The table (default: the name).
    #[serde(default)]
    pub table_name: Option<String>,
    /// append, replace or merge (or dlt's dict form).
    #[serde(default)]
    pub write_disposition: Option<WriteDispositionHint>,
    /// The primary key.
    #[serde(default)]
    pub primary_key: Option<KeyHint>,
    /// The merge key.
    #[serde(default)]
    pub merge_key: Option<KeyHint>,
    /// Column hints.
    #[serde(default)]
    pub columns: Option<Value>,
    /// How deep nested data becomes child tables.
    #[serde(default)]
    pub max_table_nesting: Option<u32>,
    /// The schema contract.
    #[serde(default)]
    pub schema_contract: Option<Value>,
    /// Whether the resource is loaded unless named (default true).
    #[serde(default)]
    pub selected: Option<bool>,
    /// Fields of the parent record added to each record as `_<parent>_<field>`.
    #[serde(default)]
    pub include_from_parent: Vec<String>,
    /// sluice's declarative form of dlt's callable table names: a field of each record whose
    /// value names its table (e.g. `type` for GitHub events).
    #[serde(default)]
    pub table_name_path: Option<String>,
}

/// The secrets of a REST API source, each a [`Secret`].
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(default)]
pub struct RestApiSecrets {
    /// The client's auth with its secrets: `{type = "bearer", token}`,
    /// `{type = "api_key", api_key, name, location}`, `{type = "http_basic", username,
    /// password}`, `{type = "oauth2_client_credentials", access_token_url, client_id,
    /// client_secret}`; a table without `type` is bearer (as in dlt).
    pub auth: Option<Secret<Value>>,
}

impl RestApiSecrets {
    /// Reads the secrets the host resolved; anything but a table reads as none (and is never
    /// quoted).
    pub fn from_json(secrets: &Value) -> Self {
        serde_json::from_value(secrets.clone()).unwrap_or_default()
    }
}
