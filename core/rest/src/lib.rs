//! `sluice-rest`: the REST client that source plugins link (dlt's `RESTClient`, spec i).
//!
//! * [`RestClient`]: base URL, headers, auth, timeouts, retries on 429 / 5xx / connection errors
//!   with exponential backoff honouring `Retry-After`, an optional rate limit, gzip.
//! * [`paginate`](RestClient::paginate): walks an endpoint's pages with a configured or
//!   auto-detected paginator, extracting the records with a data selector; a paginator that
//!   produces the same request twice stops with an error instead of looping.
//! * [`Auth`]: bearer, api_key (header or query), http_basic, oauth2 client credentials (token
//!   cached and refreshed before expiry). Secrets never appear in errors or logs: URLs in
//!   messages have secret query values masked.

pub mod paginate;
pub mod select;

use std::collections::HashSet;
use std::sync::Arc;
use std::time::{Duration, Instant};

use base64::Engine;
use serde::Deserialize;
use serde_json::Value;
use sluice_sdk::{Error, PageRequest, PageResponse, Paginator, Result, Secret};
use tokio::sync::Mutex;

pub use paginate::PaginatorConfig;

/// Retry and timeout settings (dlt's `[runtime]` request settings).
#[derive(Debug, Clone, Deserialize)]
#[serde(default)]
pub struct RetryConfig {
    /// Total attempts per request.
    pub request_max_attempts: u32,
    /// Backoff factor: waits are factor × 2^(attempt-1) seconds.
    pub request_backoff_factor: f64,
    /// Cap of one wait, seconds.
    pub request_max_retry_delay: f64,
    /// Timeout of one request, seconds.
    pub request_timeout: f64,
    /// Longest wait for a rate limit to reset (a 403/429 with `Retry-After`, or with
    /// `x-ratelimit-remaining: 0` and `x-ratelimit-reset`); a longer one fails the run with
    /// the reset time.
    pub max_rate_limit_wait: f64,
}

impl Default for RetryConfig {
    fn default() -> Self {
        Self {
            request_max_attempts: 5,
            request_backoff_factor: 1.0,
            request_max_retry_delay: 300.0,
            request_timeout: 60.0,
            max_rate_limit_wait: 60.0,
        }
    }
}

/// How long a rate-limited response (403/429) asks to wait: `Retry-After` (seconds or an HTTP
/// date), else the time to `x-ratelimit-reset` when `x-ratelimit-remaining` is 0. `None`: not
/// a rate limit (a plain 403 is a permissions error).
fn rate_limit_wait(headers: &reqwest::header::HeaderMap) -> Option<f64> {
    let get = |k: &str| headers.get(k).and_then(|v| v.to_str().ok()).map(str::trim);
    if let Some(ra) = get("retry-after") {
        if let Ok(s) = ra.parse::<f64>() {
            return Some(s.max(0.0));
        }
        if let Ok(t) = chrono::DateTime::parse_from_rfc2822(ra) {
            return Some(
                ((t.with_timezone(&chrono::Utc) - chrono::Utc::now()).num_milliseconds() as f64
                    / 1000.0)
                    .max(0.0),
            );
        }
    }
    if get("x-ratelimit-remaining") == Some("0") {
        let reset: i64 = get("x-ratelimit-reset")?.parse().ok()?;
        return Some((reset - chrono::Utc::now().timestamp()).max(0) as f64 + 1.0);
    }
    None
}

/// Authentication, as dlt's rest_api config gives it.
#[derive(Debug, Clone, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Auth {
    /// `Authorization: Bearer <token>`.
    Bearer {
        /// The token.
        token: Secret<String>,
    },
    /// An API key in a header or the query string.
    ApiKey {
        /// The key.
        api_key: Secret<String>,
        /// Header or parameter name.
        #[serde(default = "default_key_name")]
        name: String,
        /// `header` (default) or `query` / `param`.
        #[serde(default = "default_location")]
        location: String,
    },
    /// `Authorization: Basic ...`.
    HttpBasic {
        /// User name.
        username: String,
        /// Password.
        password: Secret<String>,
    },
    /// OAuth2 client credentials.
    #[serde(rename = "oauth2_client_credentials")]
    OAuth2ClientCredentials {
        /// Token endpoint.
        access_token_url: String,
        /// Client id.
        client_id: Secret<String>,
        /// Client secret.
        client_secret: Secret<String>,
        /// Extra form fields of the token request.
        #[serde(default)]
        access_token_request_data: serde_json::Map<String, Value>,
        /// Lifetime when the token response has no `expires_in`.
        #[serde(default = "default_expiration")]
        default_token_expiration: u64,
    },
}

fn default_key_name() -> String {
    "Authorization".into()
}
fn default_location() -> String {
    "header".into()
}
fn default_expiration() -> u64 {
    3600
}

#[derive(Debug, Default)]
struct TokenCache {
    token: Option<(Secret<String>, Instant)>,
}

/// The client of one API.
#[derive(Debug, Clone)]
pub struct RestClient {
    base_url: String,
    headers: Vec<(String, String)>,
    auth: Option<Auth>,
    retry: RetryConfig,
    http: reqwest::Client,
    min_interval: Option<Duration>,
    last_request: Arc<Mutex<Option<Instant>>>,
    token: Arc<Mutex<TokenCache>>,
    /// what to call it in messages (the resource)
    label: String,
}

/// One page of records.
#[derive(Debug, Clone)]
pub struct Page {
    /// The records.
    pub records: Vec<Value>,
    /// The response.
    pub response: PageResponse,
}

/// What to do with a response before the default status check (dlt's `response_actions`).
#[derive(Debug, Clone, Deserialize, PartialEq)]
pub struct ResponseAction {
    /// Matches this status.
    #[serde(default)]
    pub status_code: Option<u16>,
    /// Matches when the body contains this text.
    #[serde(default)]
    pub content: Option<String>,
    /// `ignore`: end this request sequence without data and without error.
    pub action: String,
}

impl RestClient {
    /// A client for `base_url`.
    pub fn new(
        base_url: &str,
        headers: Vec<(String, String)>,
        auth: Option<Auth>,
        retry: RetryConfig,
    ) -> Result<Self> {
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs_f64(retry.request_timeout.max(0.001)))
            .gzip(true)
            .user_agent(concat!("sluice/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| Error::internal(format!("cannot build the HTTP client: {e}")))?;
        Ok(Self {
            base_url: base_url.trim_end_matches('/').to_string(),
            headers,
            auth,
            retry,
            http,
            min_interval: None,
            last_request: Arc::new(Mutex::new(None)),
            token: Arc::new(Mutex::new(TokenCache::default())),
            label: String::new(),
        })
    }

    /// At most `per_second` requests per second from this client.
    pub fn with_rate_limit(mut self, per_second: f64) -> Self {
        if per_second > 0.0 {
            self.min_interval = Some(Duration::from_secs_f64(1.0 / per_second));
        }
        self
    }

    /// The name used in messages (e.g. the resource).
    pub fn with_label(mut self, label: &str) -> Self {
        self.label = label.to_string();
        self
    }

    /// Overrides the auth (an endpoint's own).
    pub fn with_auth(mut self, auth: Option<Auth>) -> Self {
        if auth.is_some() {
            self.auth = auth;
            self.token = Arc::new(Mutex::new(TokenCache::default()));
        }
        self
    }

    /// The URL of `path`: base_url + `/` + path, or the path itself when absolute.
    pub fn url(&self, path: &str) -> String {
        if path.starts_with("http://") || path.starts_with("https://") {
            path.to_string()
        } else {
            format!("{}/{}", self.base_url, path.trim_start_matches('/'))
        }
    }

    /// A URL for messages: query values of secret parameters masked.
    pub fn display_url(&self, request: &PageRequest) -> String {
        let secret_param = match &self.auth {
            Some(Auth::ApiKey { name, location, .. }) if location != "header" => {
                Some(name.as_str())
            }
            _ => None,
        };
        let mut q: Vec<String> = request
            .query
            .iter()
            .filter(|(k, _)| Some(k.as_str()) != secret_param)
            .map(|(k, v)| format!("{k}={v}"))
            .collect();
        // the key goes on the wire as a query parameter; in messages it is masked
        if let Some(name) = secret_param {
            q.push(format!("{name}=***"));
        }
        if q.is_empty() {
            request.url.clone()
        } else {
            format!("{}?{}", request.url, q.join("&"))
        }
    }

    async fn bearer_from_oauth(&self) -> Result<Option<String>> {
        let Some(Auth::OAuth2ClientCredentials {
            access_token_url,
            client_id,
            client_secret,
            access_token_request_data,
            default_token_expiration,
        }) = &self.auth
        else {
            return Ok(None);
        };
        let mut cache = self.token.lock().await;
        if let Some((t, until)) = &cache.token {
            if Instant::now() < *until {
                return Ok(Some(t.expose().clone()));
            }
        }
        let mut form: Vec<(String, String)> = vec![
            ("grant_type".into(), "client_credentials".into()),
            ("client_id".into(), client_id.expose().clone()),
            ("client_secret".into(), client_secret.expose().clone()),
        ];
        for (k, v) in access_token_request_data {
            form.push((
                k.clone(),
                v.as_str()
                    .map(String::from)
                    .unwrap_or_else(|| v.to_string()),
            ));
        }
        let resp = self
            .http
            .post(access_token_url)
            .form(&form)
            .send()
            .await
            .map_err(|e| {
                Error::network(format!(
                    "{}: the OAuth2 token request to {access_token_url} failed: {}",
                    self.label,
                    e.without_url()
                ))
                .retryable()
            })?;
        let status = resp.status();
        if !status.is_success() {
            return Err(Error::auth(format!(
                "{}: the OAuth2 token request to {access_token_url} was refused: {status}\nhint: check client_id and client_secret",
                self.label
            )));
        }
        let body: Value = resp.json().await.map_err(|e| {
            Error::auth(format!(
                "{}: the OAuth2 token response of {access_token_url} is not JSON: {}",
                self.label,
                e.without_url()
            ))
        })?;
        let token = body
            .get("access_token")
            .and_then(Value::as_str)
            .ok_or_else(|| {
                Error::auth(format!(
                    "{}: the OAuth2 token response of {access_token_url} has no access_token",
                    self.label
                ))
            })?
            .to_string();
        let ttl = body
            .get("expires_in")
            .and_then(Value::as_u64)
            .unwrap_or(*default_token_expiration);
        // refreshed a little before it expires
        let until = Instant::now() + Duration::from_secs(ttl.saturating_sub(ttl.min(60) / 2));
        cache.token = Some((Secret::new(token.clone()), until));
        Ok(Some(token))
    }

    async fn throttle(&self) {
        let Some(min) = self.min_interval else { return };
        let mut last = self.last_request.lock().await;
        if let Some(t) = *last {
            let elapsed = t.elapsed();
            if elapsed < min {
                tokio::time::sleep(min - elapsed).await;
            }
        }
        *last = Some(Instant::now());
    }

    fn retry_wait(&self, attempt: u32, retry_after: Option<&str>) -> Duration {
        let cap = self.retry.request_max_retry_delay;
        if let Some(h) = retry_after {
            let secs = h.trim().parse::<f64>().ok().or_else(|| {
                chrono::DateTime::parse_from_rfc2822(h.trim())
                    .ok()
                    .map(|t| {
                        (t.with_timezone(&chrono::Utc) - chrono::Utc::now()).num_milliseconds()
                            as f64
                            / 1000.0
                    })
            });
            if let Some(s) = secs.filter(|s| *s > 0.0) {
                return Duration::from_secs_f64(s.min(cap));
            }
        }
        let wait = self.retry.request_backoff_factor * 2f64.powi(attempt as i32 - 1);
        Duration::from_secs_f64(wait.clamp(0.0, cap))
    }

    /// Sends one request with retries; returns the response (any status) with its JSON body.
    pub async fn send(&self, request: &PageRequest) -> Result<(PageResponse, String)> {
        let shown = self.display_url(request);
        let method = reqwest::Method::from_bytes(request.method.to_ascii_uppercase().as_bytes())
            .map_err(|_| {
                Error::config(format!(
                    "{}: invalid HTTP method `{}`",
                    self.label, request.method
                ))
            })?;
        let mut attempt = 0;
        let mut rate_waits = 0;
        loop {
            attempt += 1;
            self.throttle().await;
            let mut b = self
                .http
                .request(method.clone(), &request.url)
                .query(&request.query);
            for (k, v) in self.headers.iter().chain(request.headers.iter()) {
                b = b.header(k, v);
            }
            b = match &self.auth {
                Some(Auth::Bearer { token }) => b.bearer_auth(token.expose()),
                Some(Auth::ApiKey {
                    api_key,
                    name,
                    location,
                }) => {
                    if location == "header" {
                        b.header(name.as_str(), api_key.expose().as_str())
                    } else {
                        b.query(&[(name.as_str(), api_key.expose().as_str())])
                    }
                }
                Some(Auth::HttpBasic { username, password }) => {
                    let raw = format!("{username}:{}", password.expose());
                    b.header(
                        "Authorization",
                        format!(
                            "Basic {}",
                            base64::engine::general_purpose::STANDARD.encode(raw)
                        ),
                    )
                }
                Some(Auth::OAuth2ClientCredentials { .. }) => match self.bearer_from_oauth().await?
                {
                    Some(t) => b.bearer_auth(t),
                    None => b,
                },
                None => b,
            };
            if let Some(j) = &request.json {
                b = b.json(j);
            }
            let outcome = b.send().await;
            let retryable_err = match outcome {
                Ok(resp) => {
                    let status = resp.status().as_u16();
                    if status == 403 || status == 429 {
                        if let Some(wait) = rate_limit_wait(resp.headers()) {
                            if wait <= self.retry.max_rate_limit_wait && rate_waits < 10 {
                                rate_waits += 1;
                                attempt -= 1;
                                tracing::warn!(target: "sluice::rest", "{}: rate limited on {shown}; waiting {wait:.0}s for the limit to reset", self.label);
                                tokio::time::sleep(Duration::from_secs_f64(wait.max(0.0))).await;
                                continue;
                            }
                            let reset = chrono::Utc::now()
                                + chrono::Duration::milliseconds((wait * 1000.0) as i64);
                            return Err(Error::network(format!(
                                "{}: rate limited on {} {shown}: the limit resets at {} (in {wait:.0}s), longer than the {:.0}s this run waits\nhint: use an access token (higher limits), or raise max_rate_limit_wait",
                                self.label,
                                request.method,
                                reset.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
                                self.retry.max_rate_limit_wait
                            ))
                            .retryable());
                        }
                    }
                    let retry = status == 429 || (500..600).contains(&status);
                    if retry && attempt < self.retry.request_max_attempts {
                        let wait = self.retry_wait(
                            attempt,
                            resp.headers()
                                .get("retry-after")
                                .and_then(|v| v.to_str().ok()),
                        );
                        tracing::warn!(target: "sluice::rest", "{}: {} {shown} answered {status}; retry {attempt} of {} in {:.1}s", self.label, request.method, self.retry.request_max_attempts - 1, wait.as_secs_f64());
                        tokio::time::sleep(wait).await;
                        continue;
                    }
                    let url = resp.url().to_string();
                    let headers: Vec<(String, String)> = resp
                        .headers()
                        .iter()
                        .map(|(k, v)| {
                            (
                                k.as_str().to_ascii_lowercase(),
                                v.to_str().unwrap_or("").to_string(),
                            )
                        })
                        .collect();
                    let text = resp.text().await.map_err(|e| {
                        Error::network(format!(
                            "{}: reading the response of {} {shown} failed: {}",
                            self.label,
                            request.method,
                            e.without_url()
                        ))
                        .retryable()
                    })?;
                    return Ok((
                        PageResponse {
                            status,
                            headers,
                            body: Value::Null,
                            url,
                        },
                        text,
                    ));
                }
                Err(e) => e,
            };
            let what = if retryable_err.is_timeout() {
                format!("timed out after {:.0}s", self.retry.request_timeout)
            } else if retryable_err.is_connect() {
                "could not connect".to_string()
            } else {
                retryable_err.without_url().to_string()
            };
            if attempt < self.retry.request_max_attempts {
                let wait = self.retry_wait(attempt, None);
                tracing::warn!(target: "sluice::rest", "{}: {} {shown} {what}; retry {attempt} of {} in {:.1}s", self.label, request.method, self.retry.request_max_attempts - 1, wait.as_secs_f64());
                tokio::time::sleep(wait).await;
                continue;
            }
            return Err(Error::network(format!(
                "{}: {} {shown} {what} (after {attempt} attempts)",
                self.label, request.method
            ))
            .retryable());
        }
    }

    /// The pages of `request`: call [`Pager::next_page`] until it returns `None`.
    pub fn pages(
        &self,
        request: PageRequest,
        paginator: Option<Box<dyn Paginator>>,
        data_selector: Option<&str>,
        actions: &[ResponseAction],
    ) -> Pager<'_> {
        Pager {
            client: self,
            request,
            paginator,
            selector: data_selector.map(String::from),
            actions: actions.to_vec(),
            seen: HashSet::new(),
            started: false,
            done: false,
        }
    }
}

/// Walks an endpoint's pages (see [`RestClient::pages`]).
pub struct Pager<'c> {
    client: &'c RestClient,
    request: PageRequest,
    paginator: Option<Box<dyn Paginator>>,
    selector: Option<String>,
    actions: Vec<ResponseAction>,
    seen: HashSet<String>,
    started: bool,
    done: bool,
}

impl std::fmt::Debug for Pager<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pager")
            .field("url", &self.request.url)
            .finish_non_exhaustive()
    }
}

impl Pager<'_> {
    /// The next page, or `None` after the last one. A paginator that asks for the same
    /// request twice is an error (the API repeats a page).
    pub async fn next_page(&mut self) -> Result<Option<Page>> {
        if self.done {
            return Ok(None);
        }
        let client = self.client;
        if !self.started {
            self.started = true;
            if let Some(p) = self.paginator.as_mut() {
                p.init_request(&mut self.request);
            }
        }
        let request = self.request.clone();
        let fingerprint = format!("{} {:?} {:?}", request.url, request.query, request.json);
        if !self.seen.insert(fingerprint) {
            return Err(Error::data(format!(
                "{}: the paginator {} asked for {} a second time: the API repeats a page, stopping instead of looping\nhint: configure the paginator explicitly (e.g. its total_path, stop_after_empty_page or maximum)",
                client.label,
                self.paginator.as_ref().map_or("auto".into(), |p| p.describe()),
                client.display_url(&request)
            )));
        }
        let (mut response, text) = client.send(&request).await?;
        let shown = client.display_url(&request);
        for a in &self.actions {
            let status_ok = a.status_code.is_none_or(|s| s == response.status);
            let content_ok = a.content.as_ref().is_none_or(|c| text.contains(c.as_str()));
            if status_ok && content_ok && (a.status_code.is_some() || a.content.is_some()) {
                if a.action == "ignore" {
                    tracing::info!(target: "sluice::rest", "{}: {} {shown} answered {}: ignored by a response action", client.label, request.method, response.status);
                    self.done = true;
                    return Ok(None);
                }
                return Err(Error::config(format!(
                    "{}: unknown response action `{}` (only `ignore` is supported)",
                    client.label, a.action
                )));
            }
        }
        if response.status >= 400 {
            let reason = reqwest::StatusCode::from_u16(response.status)
                .ok()
                .and_then(|s| s.canonical_reason())
                .unwrap_or("");
            let kind = if response.status >= 500 {
                "Server"
            } else {
                "Client"
            };
            let snippet: String = text.chars().take(200).collect();
            let msg = format!(
                "{}: {} {kind} Error: {reason} for {} {shown}{}",
                client.label,
                response.status,
                request.method,
                if snippet.trim().is_empty() {
                    String::new()
                } else {
                    format!("\nresponse: {}", snippet.trim())
                }
            );
            return Err(match response.status {
                401 | 403 => Error::auth(format!(
                    "{msg}\nhint: check the credentials (auth) of this API"
                )),
                404 => Error::not_found(msg),
                s if s >= 500 || s == 429 => Error::network(msg).retryable(),
                _ => Error::data(msg),
            });
        }
        response.body = if text.trim().is_empty() {
            Value::Null
        } else {
            serde_json::from_str(&text).map_err(|e| {
                let ctype = response.header("content-type").unwrap_or("?").to_string();
                let snippet: String = text.chars().take(120).collect();
                Error::data(format!(
                    "{}: the response of {} {shown} is not JSON ({e}; content-type {ctype}): {}",
                    client.label,
                    request.method,
                    snippet.trim()
                ))
            })?
        };
        let sel = self
            .selector
            .get_or_insert_with(|| select::detect_selector(&response.body))
            .clone();
        let records = select::select_records(&response.body, &sel);
        let mut p = match self.paginator.take() {
            Some(p) => p,
            None => paginate::detect(&response, &records),
        };
        p.update_state(&response, &records)?;
        if p.has_next_page() {
            p.update_request(&mut self.request);
        } else {
            self.done = true;
        }
        self.paginator = Some(p);
        Ok(Some(Page { records, response }))
    }
}
