//! dlt's declarative `rest_api` source (spec i): a dlt user's `rest_api_source` dict, written as
//! TOML or JSON, key for key.
//!
//! * `client`: `base_url`, `headers`, `paginator`, `auth` (secrets: `[sources.rest_api.auth]`),
//!   `auth_origins` (sluice: the credentials go to `base_url`'s origin and these only).
//! * `resources`: names or tables with `endpoint` (`path`, `method`, `params`, `json`, `headers`,
//!   `paginator`, `data_selector`, `response_actions`, `incremental`, `auth`) and resource hints
//!   (`write_disposition`, `primary_key`, `merge_key`, `columns`, `table_name`,
//!   `max_table_nesting`, `selected`, `include_from_parent`); `resource_defaults` merged in.
//! * Parent → child: `{resources.<parent>.<field>}` placeholders (or the legacy
//!   `{type = "resolve", resource, field}` params) make a resource request once per parent record.
//! * Incremental: `endpoint.incremental` (`cursor_path`, `initial_value`, `start_param`,
//!   `end_param`, ...) binds the window to query parameters; `{incremental.start_value}`
//!   placeholders work in path, params and json. The host filters the records and keeps state.
//! * Values from the data substituted into a path are percent-encoded as one segment, so a
//!   record cannot steer a request (`../../admin`, `https://evil/`).
//! * Limits (sluice): `max_response_bytes`, `max_pages` (see `sluice_rest::Limits`).

mod config;

/// The config model, from `sluice-rest` (sources built on this one write it too).
pub use sluice_rest::config::{
    ClientConfig, Endpoint, IncrementalConfig, ResourceConfig, RestApiConfig, RestApiSecrets,
};
/// The source, from `sluice-rest`.
pub use sluice_rest::source::RestApi;

fn plugin() -> sluice_sdk::Plugin {
    sluice_sdk::Plugin::new(
        include_str!("../sluice-plugin.toml"),
        env!("CARGO_PKG_VERSION"),
    )
    .source(RestApi::open)
}

sluice_sdk::declare_plugin!(pub fn plugin_module = plugin);
