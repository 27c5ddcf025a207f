//! The GitHub source's configuration (`[sources.github]`, see `sluice-plugin.toml` and
//! README.md): the repository, and the request settings passed on to the REST client.
//!
//! [`GithubConfig`] and [`GithubSecrets`] list the manifest's keys with its defaults; a test
//! reads the manifest and checks both.

use serde::{Deserialize, Serialize};
use serde_json::Value;
use sluice_rest::RetryConfig;
use sluice_sdk::{Error, Result, Secret};

/// GitHub's REST API.
pub const DEFAULT_BASE_URL: &str = "https://api.github.com";

/// `per_page` of every request: GitHub's maximum.
pub const DEFAULT_ITEMS_PER_PAGE: u64 = 100;

/// Issues and pull requests in every state.
pub const DEFAULT_STATE: &str = "all";

/// Configuration keys of the GitHub source. A key left out takes its default
/// ([`GithubConfig::default`]); `owner` and `name` must be set.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(default)]
pub struct GithubConfig {
    /// The repository's owner (user or organization).
    pub owner: String,
    /// The repository's name.
    pub name: String,
    /// The API's base URL (GitHub Enterprise: `https://HOST/api/v3`).
    pub base_url: String,
    /// `per_page` of every request.
    pub items_per_page: u64,
    /// Issues and pull requests in this state: `all`, `open` or `closed` (empty: the API's
    /// default, `open`).
    pub state: String,
    /// Longest wait, seconds, for GitHub's rate limit to reset; a longer one fails naming the
    /// reset time (default: the REST client's, [`RetryConfig`]).
    pub max_rate_limit_wait: f64,
    /// Attempts per request; 5xx and connection errors are retried (default: the REST
    /// client's).
    pub request_max_attempts: u32,
}

impl Default for GithubConfig {
    /// Every key at its default; `owner` and `name` empty (unset).
    fn default() -> Self {
        let retry = RetryConfig::default();
        Self {
            owner: String::new(),
            name: String::new(),
            base_url: DEFAULT_BASE_URL.to_string(),
            items_per_page: DEFAULT_ITEMS_PER_PAGE,
            state: DEFAULT_STATE.to_string(),
            max_rate_limit_wait: retry.max_rate_limit_wait,
            request_max_attempts: retry.request_max_attempts,
        }
    }
}

impl GithubConfig {
    /// Reads the config the host resolved, requiring `owner` and `name`.
    pub fn from_json(config: &Value) -> Result<Self> {
        let config: Self = match config {
            Value::Null => Self::default(),
            config => serde_json::from_value(config.clone())
                .map_err(|e| Error::config(format!("config of source `github`: {e}")))?,
        };
        if config.owner.is_empty() {
            return Err(Error::config(
                "source `github`: set `owner` (the repository's owner)",
            ));
        }
        if config.name.is_empty() {
            return Err(Error::config(
                "source `github`: set `name` (the repository's name)",
            ));
        }
        Ok(config)
    }
}

/// Secret keys of the GitHub source, each a [`Secret`].
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(default)]
pub struct GithubSecrets {
    /// A GitHub token (optional for public repositories; raises the rate limit from 60 to
    /// 5,000 requests an hour). `<configure me>`, the scaffold's placeholder, counts as unset.
    pub access_token: Option<Secret<Value>>,
}

impl GithubSecrets {
    /// Reads the secrets the host resolved (a secret that is not text is ignored, never
    /// quoted).
    pub fn from_json(secrets: &Value) -> Self {
        serde_json::from_value(secrets.clone()).unwrap_or_default()
    }

    /// The token, when one is set.
    pub fn token(&self) -> Option<&str> {
        self.access_token
            .as_ref()
            .and_then(|t| t.expose().as_str())
            .map(str::trim)
            .filter(|t| !t.is_empty() && *t != "<configure me>")
    }
}

#[cfg(test)]
mod tests {

    use serde_json::json;

    use super::*;

    #[test]
    fn config_keys_agree_with_the_manifest() {
        let manifest = sluice_sdk::testing::assert_manifest_keys::<GithubConfig, GithubSecrets>(
            include_str!("../sluice-plugin.toml"),
        );
        // every secret key is a `Secret`: set, none of them prints
        let secrets = sluice_sdk::testing::assert_secrets_hidden(
            &manifest.secrets,
            &json!(sluice_sdk::testing::SECRET_CANARY),
            |v| GithubSecrets::from_json(&v),
        );
        assert_eq!(secrets.token(), Some(sluice_sdk::testing::SECRET_CANARY));
    }

    #[test]
    fn owner_and_name_are_required_and_a_placeholder_token_is_no_token() {
        let e = GithubConfig::from_json(&json!({"name": "r"})).expect_err("owner");
        assert!(e.message.contains("set `owner`"), "{e}");
        let e = GithubConfig::from_json(&json!({"owner": "o"})).expect_err("name");
        assert!(e.message.contains("set `name`"), "{e}");
        let e = GithubConfig::from_json(&json!({"owner": "o", "name": "r", "items_per_page": "x"}))
            .expect_err("not a number");
        assert!(e.message.contains("config of source `github`"), "{e}");
        for unset in [
            json!({}),
            json!({"access_token": " "}),
            json!({"access_token": "<configure me>"}),
            json!({"access_token": 7}),
        ] {
            assert_eq!(GithubSecrets::from_json(&unset).token(), None, "{unset}");
        }
    }
}
