//! `sluice-rest`: the REST client that source plugins link (dlt's `RESTClient`, spec i).
//!
//! * [`RestClient`]: base URL, headers, auth, timeouts, retries on 429 / 5xx / connection errors
//!   with exponential backoff honouring `Retry-After`, an optional rate limit, gzip.
//! * [`paginate`](RestClient::paginate): walks an endpoint's pages with a configured or
//!   auto-detected paginator, extracting the records with a data selector; a paginator that
//!   produces the same request twice stops with an error instead of looping, and one that
//!   never stops ends at [`Limits::max_pages`].
//! * [`Auth`]: bearer, api_key (header or query), http_basic, oauth2 client credentials (token
//!   cached and refreshed before expiry).
//!
//! Against a hostile or broken server:
//!
//! * Credentials go only to the origin of `base_url` and the origins listed with
//!   [`RestClient::with_auth_origins`]: a next link, a `Link` header or a redirect elsewhere
//!   gets no auth and none of the configured headers but [`PUBLIC_HEADERS`]. Redirects are
//!   followed hop by hop (at most [`MAX_REDIRECTS`]); https -> http is refused.
//! * Bodies are capped ([`Limits::max_response_bytes`]) on the wire and after gzip.
//! * Every URL in a message or a log line goes through [`sluice_sdk::redact_url`]: userinfo,
//!   fragments and query values outside its allow-list print as `***`.
//! * Timeouts, waits and rates outside sane bounds are config errors, and a `Retry-After` of
//!   `inf` or a year is a clear error, never a panic.

mod body;
pub mod config;
pub mod paginate;
mod scope;
pub mod select;
pub mod source;

use std::collections::HashSet;
use std::hash::{Hash, Hasher};
use std::sync::Arc;
use std::time::{Duration, Instant};

use base64::Engine;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use sluice_sdk::{
    redact_url, Error, ErrorCode, PageRequest, PageResponse, Paginator, Result, Secret,
};
use tokio::sync::Mutex;

pub use paginate::PaginatorConfig;
pub use scope::PUBLIC_HEADERS;

/// Redirects followed for one request (as browsers and `requests` bound them); more is a
/// redirect loop.
pub const MAX_REDIRECTS: usize = 10;

/// The longest time any setting may name, seconds (a year): longer is a typo or an attack.
const MAX_SECONDS: f64 = 365.0 * 86400.0;

/// Retry and timeout settings (dlt's `[runtime]` request settings).
#[derive(Debug, Clone, Deserialize, Serialize)]
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

impl RetryConfig {
    /// Refuses values that cannot be waited for: negative, not finite, or over a year.
    pub fn validate(&self) -> Result<()> {
        seconds("request_timeout", self.request_timeout, false)?;
        seconds(
            "request_max_retry_delay",
            self.request_max_retry_delay,
            true,
        )?;
        seconds("max_rate_limit_wait", self.max_rate_limit_wait, true)?;
        seconds("request_backoff_factor", self.request_backoff_factor, true)?;
        Ok(())
    }
}

/// `value` as a wait of at most [`MAX_SECONDS`], or a config error naming `name`.
fn seconds(name: &str, value: f64, zero_ok: bool) -> Result<Duration> {
    let ok =
        value.is_finite() && value <= MAX_SECONDS && (value > 0.0 || (zero_ok && value == 0.0));
    match Duration::try_from_secs_f64(value) {
        Ok(d) if ok => Ok(d),
        _ => Err(Error::config(format!(
            "`{name}` is {value}: it must be a number of seconds {} and at most {MAX_SECONDS} (a year)",
            if zero_ok { "from 0" } else { "above 0" }
        ))),
    }
}

/// Bounds on what one server can make the client read (sluice's own; dlt has none). A limit
/// reached fails the run with an error naming the URL and the setting to raise.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(default)]
pub struct Limits {
    /// Largest response body in bytes, counted on the wire and again after gzip decoding.
    /// Default 512 MiB: far above any paged API's pages (kilobytes to a few megabytes) and
    /// above the single-response exports dlt users load whole, yet a 2 GB or endless body, or
    /// a gzip bomb, is refused before it takes the machine's memory.
    pub max_response_bytes: u64,
    /// Most pages one request sequence reads (an endpoint, or a child endpoint for one parent
    /// record); 0 = no cap. Default 1,000,000: 100 million records at a typical 100 per page,
    /// more than any endpoint walk we know of, so a pager still going is broken or hostile.
    pub max_pages: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_response_bytes: 512 << 20,
            max_pages: 1_000_000,
        }
    }
}

/// How long a rate-limited response (403/429) asks to wait: `Retry-After` (seconds or an HTTP
/// date), else the time to `x-ratelimit-reset` when `x-ratelimit-remaining` is 0. `None`: not
/// a rate limit (a plain 403 is a permissions error). May be huge or infinite (`inf`).
fn rate_limit_wait(headers: &reqwest::header::HeaderMap) -> Option<f64> {
    let get = |k: &str| headers.get(k).and_then(|v| v.to_str().ok()).map(str::trim);
    if let Some(ra) = get("retry-after") {
        if let Ok(s) = ra.parse::<f64>() {
            // NaN and negatives are "now"
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
        return Some(reset.saturating_sub(chrono::Utc::now().timestamp()).max(0) as f64 + 1.0);
    }
    None
}

/// When a wait of `wait` seconds ends, for a message: `at <time> (in <n>s)`, or the raw ask
/// when no clock can hold it.
fn wait_ends(wait: f64) -> String {
    let at = (wait.is_finite() && wait < 1e15)
        .then(|| chrono::TimeDelta::try_milliseconds((wait * 1000.0) as i64))
        .flatten()
        .and_then(|d| chrono::Utc::now().checked_add_signed(d));
    match at {
        Some(t) => format!(
            "at {} (in {wait:.0}s)",
            t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
        ),
        None => format!("only after a wait of {wait} seconds"),
    }
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
    limits: Limits,
    scope: scope::Scope,
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
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
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

/// Why one attempt failed.
enum Failure {
    /// The network failed (connect, reset, timeout), before or during the body: retried.
    Transient(reqwest::Error),
    /// Retrying cannot help (a refused redirect, a body over the cap).
    Fatal(Error),
}

impl RestClient {
    /// A client for `base_url` (its origin is the one credentials go to). Refuses timeouts and
    /// waits that are negative, not finite or over a year.
    pub fn new(
        base_url: &str,
        headers: Vec<(String, String)>,
        auth: Option<Auth>,
        retry: RetryConfig,
    ) -> Result<Self> {
        retry.validate()?;
        let timeout = seconds("request_timeout", retry.request_timeout, false)?;
        let http = reqwest::Client::builder()
            .timeout(timeout)
            // gzip is asked for and decoded by the client itself, under the body cap
            .gzip(false)
            // redirects are followed hop by hop, each hop scoped like any request
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(concat!("sluice/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| Error::internal(format!("cannot build the HTTP client: {e}")))?;
        Ok(Self {
            base_url: base_url.trim_end_matches('/').to_string(),
            scope: scope::Scope::new(base_url, &[])?,
            headers,
            auth,
            retry,
            limits: Limits::default(),
            http,
            min_interval: None,
            last_request: Arc::new(Mutex::new(None)),
            token: Arc::new(Mutex::new(TokenCache::default())),
            label: String::new(),
        })
    }

    /// At most `per_second` requests per second from this client (0: no limit). A negative,
    /// non-finite or vanishing rate (under one request a year) is a config error.
    pub fn with_rate_limit(mut self, per_second: f64) -> Result<Self> {
        if per_second == 0.0 {
            return Ok(self);
        }
        if !(per_second.is_finite() && per_second > 0.0) {
            return Err(Error::config(format!(
                "`rate_limit` is {per_second}: it must be a number of requests per second above 0 (or 0 for no limit)"
            )));
        }
        let interval = Duration::try_from_secs_f64(1.0 / per_second)
            .ok()
            .filter(|d| d.as_secs_f64() <= MAX_SECONDS)
            .ok_or_else(|| {
                Error::config(format!(
                    "`rate_limit` is {per_second}: under one request a year; it must be a number of requests per second above 0 (or 0 for no limit)"
                ))
            })?;
        self.min_interval = Some(interval);
        Ok(self)
    }

    /// The body and page caps.
    pub fn with_limits(mut self, limits: Limits) -> Self {
        self.limits = limits;
        self
    }

    /// Origins besides `base_url`'s that get the credentials (`https://uploads.example.com`).
    pub fn with_auth_origins(mut self, origins: &[String]) -> Result<Self> {
        self.scope = scope::Scope::new(&self.base_url, origins)?;
        Ok(self)
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

    /// The query parameter the api_key goes in, if the auth is an api_key in the query.
    fn query_key_name(&self) -> Option<&str> {
        match &self.auth {
            Some(Auth::ApiKey { name, location, .. }) if location != "header" => {
                Some(name.as_str())
            }
            _ => None,
        }
    }

    /// The request's URL for messages, through [`redact_url`]; a query api_key shows as
    /// `name=***`.
    pub fn display_url(&self, request: &PageRequest) -> String {
        // values as written (readable: `since=2024-01-01T00:00:00Z`); a value holding `&` or
        // `#` only makes the redactor mask more
        let mut full = request.url.clone();
        for (i, (k, v)) in request.query.iter().enumerate() {
            full.push(match (i, request.url.contains('?')) {
                (0, false) => '?',
                _ => '&',
            });
            full.push_str(k);
            full.push('=');
            full.push_str(v);
        }
        let mut shown = redact_url(&full);
        // the key goes on the wire as a query parameter; in messages it is masked whatever its name
        if let Some(name) = self.query_key_name() {
            shown.push(if shown.contains('?') { '&' } else { '?' });
            shown.push_str(name);
            shown.push_str("=***");
        }
        shown
    }

    /// `text` (a response quoted in an error) with this client's secrets masked: a server may
    /// echo the key it refused (`invalid api key: ...`).
    fn scrub(&self, text: &str) -> String {
        let mut secrets: Vec<String> = Vec::new();
        match &self.auth {
            Some(Auth::Bearer { token }) => secrets.push(token.expose().clone()),
            Some(Auth::ApiKey { api_key, .. }) => secrets.push(api_key.expose().clone()),
            Some(Auth::HttpBasic { username, password }) => {
                secrets.push(password.expose().clone());
                secrets.push(
                    base64::engine::general_purpose::STANDARD
                        .encode(format!("{username}:{}", password.expose())),
                );
            }
            Some(Auth::OAuth2ClientCredentials {
                client_id,
                client_secret,
                ..
            }) => {
                secrets.push(client_secret.expose().clone());
                secrets.push(client_id.expose().clone());
            }
            None => {}
        }
        if let Ok(cache) = self.token.try_lock() {
            if let Some((t, _)) = &cache.token {
                secrets.push(t.expose().clone());
            }
        }
        // configured headers other than content negotiation may hold keys too
        secrets.extend(
            self.headers
                .iter()
                .filter(|(k, _)| !scope::is_public_header(k))
                .map(|(_, v)| v.clone()),
        );
        // `token ghp_...`: the bare key too
        let bare: Vec<String> = secrets
            .iter()
            .filter_map(|s| s.split_whitespace().nth(1).map(String::from))
            .collect();
        secrets.extend(bare);
        let mut out = text.to_string();
        for s in secrets.iter().filter(|s| s.len() >= 4) {
            out = out.replace(s.as_str(), "***");
        }
        out
    }

    /// `"{label}: {method} {url}"` for messages.
    fn what(&self, method: &str, url: &url::Url) -> String {
        format!("{}: {method} {}", self.label, redact_url(url.as_str()))
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
        let shown = redact_url(access_token_url);
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
        let mut resp = self
            .http
            .post(access_token_url)
            .form(&form)
            .send()
            .await
            .map_err(|e| {
                Error::network(format!(
                    "{}: the OAuth2 token request to {shown} failed: {}",
                    self.label,
                    e.without_url()
                ))
                .retryable()
            })?;
        let status = resp.status();
        if !status.is_success() {
            return Err(Error::auth(format!(
                "{}: the OAuth2 token request to {shown} was refused: {status}\nhint: check client_id and client_secret",
                self.label
            )));
        }
        let what = || format!("{}: the OAuth2 token response of {shown}", self.label);
        let bytes = match body::read_body(&mut resp, self.limits.max_response_bytes, &what).await {
            Ok(b) => b,
            Err(body::BodyError::Fatal(e)) => return Err(e),
            Err(body::BodyError::Transient(e)) => {
                return Err(Error::network(format!(
                    "{} failed: {}",
                    what(),
                    e.without_url()
                )))
            }
        };
        let body: Value = serde_json::from_slice(&bytes)
            .map_err(|e| Error::auth(format!("{} is not JSON: {e}", what())))?;
        let token = body
            .get("access_token")
            .and_then(Value::as_str)
            .ok_or_else(|| Error::auth(format!("{} has no access_token", what())))?
            .to_string();
        let ttl = body
            .get("expires_in")
            .and_then(Value::as_u64)
            .unwrap_or(*default_token_expiration)
            .min(MAX_SECONDS as u64);
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
        // validated finite and at most a year, so every wait below converts
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
                return Duration::try_from_secs_f64(s.min(cap)).unwrap_or_default();
            }
        }
        let wait = self.retry.request_backoff_factor * 2f64.powi(attempt.min(64) as i32 - 1);
        Duration::try_from_secs_f64(wait.clamp(0.0, cap)).unwrap_or_default()
    }

    /// Attaches the configured headers and the auth to a request to `url`: everything when
    /// `url`'s origin is trusted, else only [`PUBLIC_HEADERS`].
    async fn prepare(
        &self,
        method: &reqwest::Method,
        mut url: url::Url,
        request: &PageRequest,
        json: Option<&Value>,
    ) -> Result<reqwest::RequestBuilder> {
        let trusted = self.scope.trusts(&url);
        let key_param = self.query_key_name();
        if let Some(name) = key_param {
            // never a key the server echoed into a link; ours only where it belongs
            if url.query_pairs().any(|(k, _)| k == name) {
                let kept: Vec<(String, String)> = url
                    .query_pairs()
                    .filter(|(k, _)| k != name)
                    .map(|(k, v)| (k.into_owned(), v.into_owned()))
                    .collect();
                url.set_query(None);
                if !kept.is_empty() {
                    url.query_pairs_mut().extend_pairs(&kept);
                }
            }
        }
        if trusted {
            if let Some(Auth::ApiKey { api_key, name, .. }) = &self.auth {
                if key_param.is_some() {
                    url.query_pairs_mut()
                        .append_pair(name, api_key.expose().as_str());
                }
            }
        }
        let mut b = self.http.request(method.clone(), url);
        let mut has_encoding = false;
        for (k, v) in self.headers.iter().chain(request.headers.iter()) {
            if trusted || scope::is_public_header(k) {
                has_encoding |= k.eq_ignore_ascii_case("accept-encoding");
                b = b.header(k, v);
            }
        }
        if !has_encoding {
            b = b.header(reqwest::header::ACCEPT_ENCODING, "gzip");
        }
        if trusted {
            b = match &self.auth {
                Some(Auth::Bearer { token }) => b.bearer_auth(token.expose()),
                Some(Auth::ApiKey {
                    api_key,
                    name,
                    location,
                }) if location == "header" => b.header(name.as_str(), api_key.expose().as_str()),
                Some(Auth::ApiKey { .. }) => b,
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
                Some(Auth::OAuth2ClientCredentials { .. }) => {
                    match self.bearer_from_oauth().await? {
                        Some(t) => b.bearer_auth(t),
                        None => b,
                    }
                }
                None => b,
            };
        }
        if let Some(j) = json {
            b = b.json(j);
        }
        Ok(b)
    }

    /// One attempt: the request and the redirects it leads to, each hop scoped on its own.
    async fn exchange(
        &self,
        method: &reqwest::Method,
        first: &url::Url,
        request: &PageRequest,
    ) -> std::result::Result<reqwest::Response, Failure> {
        let mut method = method.clone();
        let mut url = first.clone();
        let mut json = request.json.as_ref();
        for _hop in 0..=MAX_REDIRECTS {
            self.throttle().await;
            let b = self
                .prepare(&method, url.clone(), request, json)
                .await
                .map_err(Failure::Fatal)?;
            let resp = b.send().await.map_err(Failure::Transient)?;
            let status = resp.status();
            let location = resp
                .headers()
                .get(reqwest::header::LOCATION)
                .filter(|_| status.is_redirection() && status.as_u16() != 304);
            let Some(location) = location else {
                return Ok(resp);
            };
            let next = location
                .to_str()
                .map_err(|_| "a Location that is not text".to_string())
                .and_then(|l| scope::redirect_target(&url, l))
                .map_err(|why| {
                    Failure::Fatal(Error::new(
                        ErrorCode::NETWORK,
                        format!(
                            "{}: answered {status} with {why}",
                            self.what(method.as_str(), &url)
                        ),
                    ))
                })?;
            tracing::debug!(target: "sluice::rest", "{}: {} redirected ({status}) to {}", self.label, redact_url(url.as_str()), redact_url(next.as_str()));
            // as browsers and `requests` do: 303 (and 301/302 after a POST) continue as a GET
            let s = status.as_u16();
            if (s == 303 && method != reqwest::Method::HEAD)
                || ((s == 301 || s == 302) && method == reqwest::Method::POST)
            {
                method = reqwest::Method::GET;
                json = None;
            }
            url = next;
        }
        Err(Failure::Fatal(Error::new(
            ErrorCode::NETWORK,
            format!(
                "{}: more than {MAX_REDIRECTS} redirects (a redirect loop?); the last one to {}",
                self.what(request.method.as_str(), first),
                redact_url(url.as_str())
            ),
        )))
    }

    /// The request's URL with its query.
    fn request_url(&self, request: &PageRequest) -> Result<url::Url> {
        let mut u = url::Url::parse(&request.url).map_err(|e| {
            Error::config(format!(
                "{}: `{}` is not a URL ({e})",
                self.label,
                redact_url(&request.url)
            ))
        })?;
        if !request.query.is_empty() {
            u.query_pairs_mut().extend_pairs(&request.query);
        }
        Ok(u)
    }

    /// Sends one request with retries; returns the response (any status) with its body.
    pub async fn send(&self, request: &PageRequest) -> Result<(PageResponse, String)> {
        let method = reqwest::Method::from_bytes(request.method.to_ascii_uppercase().as_bytes())
            .map_err(|_| {
                Error::config(format!(
                    "{}: invalid HTTP method `{}`",
                    self.label, request.method
                ))
            })?;
        let url = self.request_url(request)?;
        let shown = || self.display_url(request);
        let mut attempt = 0;
        let mut rate_waits = 0;
        loop {
            attempt += 1;
            let transient = match self.exchange(&method, &url, request).await {
                Err(Failure::Fatal(e)) => return Err(e),
                Err(Failure::Transient(e)) => e,
                Ok(mut resp) => {
                    let status = resp.status().as_u16();
                    if status == 403 || status == 429 {
                        if let Some(wait) = rate_limit_wait(resp.headers()) {
                            if wait <= self.retry.max_rate_limit_wait && rate_waits < 10 {
                                rate_waits += 1;
                                attempt -= 1;
                                tracing::warn!(target: "sluice::rest", "{}: rate limited on {}; waiting {wait:.0}s for the limit to reset", self.label, shown());
                                tokio::time::sleep(
                                    Duration::try_from_secs_f64(wait).unwrap_or_default(),
                                )
                                .await;
                                continue;
                            }
                            return Err(Error::network(format!(
                                "{}: rate limited on {} {}: the limit resets {}, longer than the {:.0}s this run waits\nhint: use an access token (higher limits), or raise max_rate_limit_wait",
                                self.label,
                                request.method,
                                shown(),
                                wait_ends(wait),
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
                        tracing::warn!(target: "sluice::rest", "{}: {} {} answered {status}; retry {attempt} of {} in {:.1}s", self.label, request.method, shown(), self.retry.request_max_attempts - 1, wait.as_secs_f64());
                        tokio::time::sleep(wait).await;
                        continue;
                    }
                    let final_url = resp.url().to_string();
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
                    let what = || format!("{}: {} {}", self.label, request.method, shown());
                    match body::read_body(&mut resp, self.limits.max_response_bytes, &what).await {
                        Ok(bytes) => {
                            return Ok((
                                PageResponse {
                                    status,
                                    headers,
                                    body: Value::Null,
                                    url: final_url,
                                },
                                body::into_text(bytes),
                            ))
                        }
                        Err(body::BodyError::Fatal(e)) => return Err(e),
                        Err(body::BodyError::Transient(e)) => e,
                    }
                }
            };
            let what = if transient.is_timeout() {
                format!("timed out after {}s", self.retry.request_timeout)
            } else if transient.is_connect() {
                "could not connect".to_string()
            } else if transient.is_body() || transient.is_decode() {
                format!(
                    "broke off while sending its body ({})",
                    transient.without_url()
                )
            } else {
                transient.without_url().to_string()
            };
            if attempt < self.retry.request_max_attempts {
                let wait = self.retry_wait(attempt, None);
                tracing::warn!(target: "sluice::rest", "{}: {} {} {what}; retry {attempt} of {} in {:.1}s", self.label, request.method, shown(), self.retry.request_max_attempts - 1, wait.as_secs_f64());
                tokio::time::sleep(wait).await;
                continue;
            }
            return Err(Error::network(format!(
                "{}: {} {} {what} (after {attempt} attempts)",
                self.label,
                request.method,
                shown()
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
            pages: 0,
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
    /// hashes of the requests sent (8 bytes a page, however long the URLs)
    seen: HashSet<u64>,
    pages: u64,
    started: bool,
    done: bool,
}

impl std::fmt::Debug for Pager<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pager")
            .field("url", &self.client.display_url(&self.request))
            .finish_non_exhaustive()
    }
}

impl Pager<'_> {
    /// The next page, or `None` after the last one. A paginator that asks for the same
    /// request twice is an error (the API repeats a page), and so is one still asking after
    /// [`Limits::max_pages`] pages.
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
        let max_pages = client.limits.max_pages;
        if max_pages > 0 && self.pages >= max_pages {
            return Err(Error::data(format!(
                "{}: still a next page after max_pages ({max_pages}) pages; stopped at {} {}\nhint: if the API really has more, raise `max_pages` (0 = no cap); else bound the paginator (maximum_page, maximum_offset, total_path, stop_after_empty_page)",
                client.label,
                self.request.method,
                client.display_url(&self.request)
            )));
        }
        let request = self.request.clone();
        let mut h = std::hash::DefaultHasher::new();
        (&request.url, &request.query).hash(&mut h);
        request.json.as_ref().map(Value::to_string).hash(&mut h);
        if !self.seen.insert(h.finish()) {
            return Err(Error::data(format!(
                "{}: the paginator {} asked for {} a second time: the API repeats a page, stopping instead of looping\nhint: configure the paginator explicitly (e.g. its total_path, stop_after_empty_page or maximum)",
                client.label,
                self.paginator.as_ref().map_or("auto".into(), |p| p.describe()),
                client.display_url(&request)
            )));
        }
        self.pages += 1;
        let (mut response, text) = client.send(&request).await?;
        let shown = || client.display_url(&request);
        for a in &self.actions {
            let status_ok = a.status_code.is_none_or(|s| s == response.status);
            let content_ok = a.content.as_ref().is_none_or(|c| text.contains(c.as_str()));
            if status_ok && content_ok && (a.status_code.is_some() || a.content.is_some()) {
                if a.action == "ignore" {
                    tracing::info!(target: "sluice::rest", "{}: {} {} answered {}: ignored by a response action", client.label, request.method, shown(), response.status);
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
            let snippet = client.scrub(&text.chars().take(200).collect::<String>());
            let msg = format!(
                "{}: {} {kind} Error: {reason} for {} {}{}",
                client.label,
                response.status,
                request.method,
                shown(),
                if snippet.trim().is_empty() {
                    String::new()
                } else {
                    format!("\nresponse: {}", snippet.trim())
                }
            );
            // credentials withheld from another origin explain a 401 there
            let withheld = client.auth.is_some()
                && url::Url::parse(&response.url).is_ok_and(|u| !client.scope.trusts(&u));
            return Err(match response.status {
                401 | 403 if withheld => Error::auth(format!(
                    "{msg}\nhint: the credentials go only to the origin of base_url; list this origin in `client.auth_origins` if it should get them"
                )),
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
                let snippet = client.scrub(&text.chars().take(120).collect::<String>());
                Error::data(format!(
                    "{}: the response of {} {} is not JSON ({e}; content-type {ctype}): {}",
                    client.label,
                    request.method,
                    shown(),
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

#[cfg(test)]
mod tests {
    use super::*;

    fn client() -> RestClient {
        RestClient::new(
            "https://api.example.com/v1",
            vec![],
            None,
            RetryConfig::default(),
        )
        .expect("client")
    }

    #[test]
    fn extreme_settings_are_config_errors() {
        for (key, v) in [
            ("request_timeout", 0.0),
            ("request_timeout", -1.0),
            ("request_timeout", f64::INFINITY),
            ("request_timeout", f64::NAN),
            ("request_timeout", 1e300),
            ("request_max_retry_delay", 1e300),
            ("max_rate_limit_wait", f64::INFINITY),
            ("request_backoff_factor", -2.0),
        ] {
            let mut r = RetryConfig::default();
            match key {
                "request_timeout" => r.request_timeout = v,
                "request_max_retry_delay" => r.request_max_retry_delay = v,
                "max_rate_limit_wait" => r.max_rate_limit_wait = v,
                _ => r.request_backoff_factor = v,
            }
            let e = RestClient::new("https://h", vec![], None, r).expect_err(key);
            assert_eq!(e.code, ErrorCode::CONFIG, "{e}");
            assert!(e.message.contains(key), "{e}");
        }
        for rate in [-1.0, f64::INFINITY, f64::NAN, 1e-300] {
            let e = client().with_rate_limit(rate).expect_err("rate");
            assert!(e.message.contains("rate_limit"), "{e}");
        }
        assert!(client()
            .with_rate_limit(0.0)
            .expect("0 = none")
            .min_interval
            .is_none());
        assert!(client().with_rate_limit(1e300).is_ok());
    }

    #[test]
    fn huge_and_infinite_waits_never_panic() {
        let mut h = reqwest::header::HeaderMap::new();
        for ra in ["inf", "1e300", "-5", "NaN", "Fri, 31 Dec 9999 23:59:59 GMT"] {
            h.insert("retry-after", ra.parse().expect("hv"));
            let w = rate_limit_wait(&h).expect("a wait");
            let _ = wait_ends(w);
            let _ = client().retry_wait(3, Some(ra));
        }
        h.clear();
        h.insert("x-ratelimit-remaining", "0".parse().expect("hv"));
        h.insert(
            "x-ratelimit-reset",
            i64::MIN.to_string().parse().expect("hv"),
        );
        assert!(rate_limit_wait(&h).is_some());
        h.insert(
            "x-ratelimit-reset",
            i64::MAX.to_string().parse().expect("hv"),
        );
        assert!(wait_ends(rate_limit_wait(&h).expect("wait")).contains("wait"));
        assert!(wait_ends(f64::INFINITY).contains("inf"));
        assert!(wait_ends(30.0).starts_with("at "));
        let _ = client().retry_wait(u32::MAX, None);
    }

    #[test]
    fn quoted_responses_lose_the_secrets() {
        let c = RestClient::new(
            "https://h",
            vec![
                ("Accept".into(), "application/json".into()),
                ("X-Session".into(), "H-SESSION".into()),
            ],
            Some(Auth::ApiKey {
                api_key: Secret::new("token GHP-KEY".into()),
                name: "Authorization".into(),
                location: "header".into(),
            }),
            RetryConfig::default(),
        )
        .expect("client");
        assert_eq!(
            c.scrub("bad credentials `token GHP-KEY` (GHP-KEY, H-SESSION) for application/json"),
            "bad credentials `***` (***, ***) for application/json"
        );
    }

    #[test]
    fn display_urls_are_redacted() {
        let c = client().with_auth(Some(Auth::ApiKey {
            api_key: Secret::new("K3Y".into()),
            name: "page".into(),
            location: "query".into(),
        }));
        let r = PageRequest {
            url: "https://u:pw@api.example.com/v1/items".into(),
            method: "GET".into(),
            query: vec![
                ("per_page".into(), "50".into()),
                ("token".into(), "T0K".into()),
            ],
            ..Default::default()
        };
        let shown = c.display_url(&r);
        assert_eq!(
            shown,
            "https://***@api.example.com/v1/items?per_page=50&token=***&page=***"
        );
    }
}
