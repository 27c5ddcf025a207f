//! The GitHub source (dlt's verified `github` sources, spec l.1, over the REST API).
//!
//! It is the REST API source of `sluice-rest` (the one the `rest_api` plugin is) with GitHub's
//! endpoints, Link-header pagination, auth and rate limits filled in: [`GithubConfig`] (the
//! plugin's config keys) writes a typed [`RestApiConfig`]. See README.md for the resources and
//! the tables each produces.
//!
//! ```
//! use serde_json::json;
//! use sluice_connector_github::GithubConfig;
//!
//! let config = GithubConfig::from_json(&json!({"owner": "dlt-hub", "name": "dlt"}))?;
//! let rest = config.rest_api_config();
//! assert_eq!(rest.client.base_url, "https://api.github.com");
//! assert_eq!(rest.resources[0]["endpoint"]["path"], "repos/dlt-hub/dlt/issues");
//! # Ok::<(), sluice_sdk::Error>(())
//! ```

mod config;

use indexmap::IndexMap;
use serde_json::{json, Value};
use sluice_rest::config::{ClientConfig, RestApiConfig, RestApiSecrets};
use sluice_rest::source::RestApi;
use sluice_rest::{Limits, PaginatorConfig, RetryConfig};
use sluice_sdk::prelude::*;

pub use config::{GithubConfig, GithubSecrets};

impl GithubConfig {
    /// The REST API source that reads this repository: GitHub's endpoints, headers and
    /// Link-header pagination.
    pub fn rest_api_config(&self) -> RestApiConfig {
        let per_page = self.items_per_page;
        let repo = format!("repos/{}/{}", self.owner, self.name);
        let mut listing = json!({"per_page": per_page});
        if !self.state.is_empty() {
            listing["state"] = json!(self.state);
        }
        let merge_updated = |path: &str, params: Value, since: bool| {
            let mut inc = json!({"cursor_path": "updated_at"});
            if since {
                inc["start_param"] = json!("since");
            }
            json!({"path": path, "params": params, "incremental": inc})
        };
        let resources = vec![
            json!({"name": "issues", "primary_key": "id", "write_disposition": "merge",
             "endpoint": merge_updated(&format!("{repo}/issues"), listing.clone(), true)}),
            json!({"name": "pull_requests", "primary_key": "id", "write_disposition": "merge",
             "endpoint": merge_updated(&format!("{repo}/pulls"), listing.clone(), false)}),
            json!({"name": "issue_comments", "primary_key": "id", "write_disposition": "merge",
             "endpoint": merge_updated(&format!("{repo}/issues/comments"), json!({"per_page": per_page}), true)}),
            json!({"name": "review_comments", "primary_key": "id", "write_disposition": "merge",
             "endpoint": merge_updated(&format!("{repo}/pulls/comments"), json!({"per_page": per_page}), true)}),
            json!({"name": "reactions", "primary_key": "id", "write_disposition": "merge", "selected": false,
             "include_from_parent": ["number"],
             "endpoint": {"path": format!("{repo}/issues/{{resources.issues.number}}/reactions"), "params": {"per_page": per_page},
                          "response_actions": [{"status_code": 404, "action": "ignore"}]}}),
            json!({"name": "stargazers", "write_disposition": "replace",
             "endpoint": {"path": format!("{repo}/stargazers"), "params": {"per_page": per_page}}}),
            json!({"name": "releases", "primary_key": "id", "write_disposition": "merge",
             "endpoint": {"path": format!("{repo}/releases"), "params": {"per_page": per_page}}}),
            json!({"name": "commits", "primary_key": "sha", "write_disposition": "merge",
             "endpoint": {"path": format!("{repo}/commits"), "params": {"per_page": per_page},
                          "incremental": {"cursor_path": "commit.committer.date", "start_param": "since"}}}),
            json!({"name": "repo_events", "primary_key": "id", "write_disposition": "append", "max_table_nesting": 2,
             "table_name_path": "type",
             "endpoint": {"path": format!("{repo}/events"), "params": {"per_page": per_page},
                          "incremental": {"cursor_path": "created_at", "initial_value": "1970-01-01T00:00:00Z", "row_order": "desc"}}}),
        ];
        RestApiConfig {
            client: ClientConfig {
                base_url: self.base_url.clone(),
                headers: IndexMap::from([
                    ("Accept".into(), "application/vnd.github.v3+json".into()),
                    ("X-GitHub-Api-Version".into(), "2022-11-28".into()),
                ]),
                auth: None,
                paginator: Some(PaginatorConfig::Name("header_link".into())),
                auth_origins: Vec::new(),
            },
            resources,
            resource_defaults: Some(json!({"endpoint": {"data_selector": "$"}})),
            rate_limit: None,
            retry: RetryConfig {
                max_rate_limit_wait: self.max_rate_limit_wait,
                request_max_attempts: self.request_max_attempts,
                ..RetryConfig::default()
            },
            limits: Limits::default(),
        }
    }
}

impl GithubSecrets {
    /// The REST API source's secrets: GitHub's `token` scheme when an access token is set.
    pub fn rest_api_secrets(&self) -> RestApiSecrets {
        RestApiSecrets {
            auth: self.token().map(|t| {
                Secret::new(json!({
                    "type": "api_key", "name": "Authorization", "location": "header",
                    "api_key": format!("token {t}")
                }))
            }),
        }
    }
}

/// The rest_api config for a repository, as JSON (see [`GithubConfig::rest_api_config`]).
pub fn rest_config(config: &Value) -> Result<Value> {
    let config = GithubConfig::from_json(config)?.rest_api_config();
    serde_json::to_value(config).map_err(|e| {
        Error::internal(format!(
            "source `github`: cannot write its rest_api config: {e}"
        ))
    })
}

/// The rest_api secrets as JSON: GitHub's `token` scheme when an access token is set.
pub fn rest_secrets(secrets: &Value) -> Value {
    match GithubSecrets::from_json(secrets).rest_api_secrets().auth {
        Some(auth) => json!({"auth": auth.expose()}),
        None => json!({}),
    }
}

/// Opens the source: the REST API source with GitHub's endpoints.
fn open(config: Value, secrets: Value) -> Result<RestApi> {
    RestApi::from_config(
        &GithubConfig::from_json(&config)?.rest_api_config(),
        &GithubSecrets::from_json(&secrets).rest_api_secrets(),
    )
}

fn plugin() -> Plugin {
    Plugin::new(
        include_str!("../sluice-plugin.toml"),
        env!("CARGO_PKG_VERSION"),
    )
    .source(open)
}

sluice_sdk::declare_plugin!(pub fn plugin_module = plugin);
