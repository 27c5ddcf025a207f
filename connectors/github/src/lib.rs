//! The GitHub source (dlt's verified `github` sources, spec l.1, over the REST API).
//!
//! It is the `rest_api` source with GitHub's endpoints, Link-header pagination, auth and rate
//! limits filled in; see README.md for the resources and the tables each produces.

use serde_json::{json, Value};
use sluice_connector_rest_api::RestApi;
use sluice_sdk::prelude::*;

/// The rest_api config for a repository.
pub fn rest_config(config: &Value) -> Result<Value> {
    let s = |k: &str| config.get(k).and_then(Value::as_str).map(str::to_string);
    let owner = s("owner")
        .filter(|v| !v.is_empty())
        .ok_or_else(|| Error::config("source `github`: set `owner` (the repository's owner)"))?;
    let name = s("name")
        .filter(|v| !v.is_empty())
        .ok_or_else(|| Error::config("source `github`: set `name` (the repository's name)"))?;
    let base = s("base_url").unwrap_or_else(|| "https://api.github.com".into());
    let per_page = config
        .get("items_per_page")
        .and_then(Value::as_u64)
        .unwrap_or(100);
    let state = s("state").unwrap_or_else(|| "all".into());
    let repo = format!("repos/{owner}/{name}");
    let mut listing = json!({"per_page": per_page});
    if !state.is_empty() {
        listing["state"] = json!(state);
    }
    let merge_updated = |path: &str, params: Value, since: bool| {
        let mut inc = json!({"cursor_path": "updated_at"});
        if since {
            inc["start_param"] = json!("since");
        }
        json!({"path": path, "params": params, "incremental": inc})
    };
    let resources = json!([
        {"name": "issues", "primary_key": "id", "write_disposition": "merge",
         "endpoint": merge_updated(&format!("{repo}/issues"), listing.clone(), true)},
        {"name": "pull_requests", "primary_key": "id", "write_disposition": "merge",
         "endpoint": merge_updated(&format!("{repo}/pulls"), listing.clone(), false)},
        {"name": "issue_comments", "primary_key": "id", "write_disposition": "merge",
         "endpoint": merge_updated(&format!("{repo}/issues/comments"), json!({"per_page": per_page}), true)},
        {"name": "review_comments", "primary_key": "id", "write_disposition": "merge",
         "endpoint": merge_updated(&format!("{repo}/pulls/comments"), json!({"per_page": per_page}), true)},
        {"name": "reactions", "primary_key": "id", "write_disposition": "merge", "selected": false,
         "include_from_parent": ["number"],
         "endpoint": {"path": format!("{repo}/issues/{{resources.issues.number}}/reactions"), "params": {"per_page": per_page},
                      "response_actions": [{"status_code": 404, "action": "ignore"}]}},
        {"name": "stargazers", "write_disposition": "replace",
         "endpoint": {"path": format!("{repo}/stargazers"), "params": {"per_page": per_page}}},
        {"name": "releases", "primary_key": "id", "write_disposition": "merge",
         "endpoint": {"path": format!("{repo}/releases"), "params": {"per_page": per_page}}},
        {"name": "commits", "primary_key": "sha", "write_disposition": "merge",
         "endpoint": {"path": format!("{repo}/commits"), "params": {"per_page": per_page},
                      "incremental": {"cursor_path": "commit.committer.date", "start_param": "since"}}},
        {"name": "repo_events", "primary_key": "id", "write_disposition": "append", "max_table_nesting": 2,
         "table_name_path": "type",
         "endpoint": {"path": format!("{repo}/events"), "params": {"per_page": per_page},
                      "incremental": {"cursor_path": "created_at", "initial_value": "1970-01-01T00:00:00Z", "row_order": "desc"}}},
    ]);
    let mut out = json!({
        "client": {
            "base_url": base,
            "headers": {"Accept": "application/vnd.github.v3+json", "X-GitHub-Api-Version": "2022-11-28"},
            "paginator": {"type": "header_link"},
        },
        "resource_defaults": {"endpoint": {"data_selector": "$"}},
        "resources": resources,
        "max_rate_limit_wait": config.get("max_rate_limit_wait").cloned().unwrap_or(json!(60)),
    });
    if let Some(a) = config.get("request_max_attempts") {
        out["request_max_attempts"] = a.clone();
    }
    Ok(out)
}

/// The rest_api secrets: GitHub's `token` scheme when an access token is set.
pub fn rest_secrets(secrets: &Value) -> Value {
    match secrets
        .get("access_token")
        .and_then(Value::as_str)
        .map(str::trim)
    {
        Some(t) if !t.is_empty() && t != "<configure me>" => json!({"auth": {
            "type": "api_key", "name": "Authorization", "location": "header", "api_key": format!("token {t}")
        }}),
        _ => json!({}),
    }
}

fn open(config: Value, secrets: Value) -> Result<RestApi> {
    RestApi::open(rest_config(&config)?, rest_secrets(&secrets))
}

fn plugin() -> Plugin {
    Plugin::new(
        include_str!("../sluice-plugin.toml"),
        env!("CARGO_PKG_VERSION"),
    )
    .source(open)
}

sluice_sdk::declare_plugin!(pub fn plugin_module = plugin);
