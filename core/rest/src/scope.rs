//! Where credentials may go: the origin of `base_url` plus the origins the user lists in
//! `auth_origins`, nowhere else.
//!
//! The check runs on every request the client sends, so it covers an endpoint path, a next
//! link from the body, a `Link` header and every redirect hop alike (redirects are followed by
//! the client itself, one hop at a time, for this reason). A request to another origin carries
//! no auth (bearer, basic, OAuth2, an api_key header or query parameter) and only the
//! content-negotiation headers of [`PUBLIC_HEADERS`]; any other configured header may hold a
//! key (`X-Api-Token`, `Cookie`) and stays with the trusted origins.

use sluice_sdk::{redact_url, Error, Result};
use url::{Origin, Url};

/// Configured headers sent to any origin; every other configured header goes only where
/// credentials go.
pub const PUBLIC_HEADERS: &[&str] = &["accept", "accept-language", "content-type", "user-agent"];

/// Whether a configured header may go to an untrusted origin.
pub(crate) fn is_public_header(name: &str) -> bool {
    PUBLIC_HEADERS.iter().any(|h| h.eq_ignore_ascii_case(name))
}

/// The trusted origins of one client.
#[derive(Debug, Clone, Default)]
pub(crate) struct Scope {
    origins: Vec<Origin>,
}

/// An absolute http(s) URL, or `None`.
fn http_url(text: &str) -> Option<Url> {
    Url::parse(text)
        .ok()
        .filter(|u| matches!(u.scheme(), "http" | "https") && u.host().is_some())
}

impl Scope {
    /// `base_url`'s origin (none when `base_url` is empty) plus `extra`.
    pub(crate) fn new(base_url: &str, extra: &[String]) -> Result<Self> {
        let mut origins = Vec::new();
        if !base_url.trim().is_empty() {
            let u = http_url(base_url.trim()).ok_or_else(|| {
                Error::config(format!(
                    "`client.base_url` `{}` is not an absolute http(s) URL (like https://api.example.com/v1)",
                    redact_url(base_url)
                ))
            })?;
            origins.push(u.origin());
        }
        for o in extra {
            let u = http_url(o.trim()).ok_or_else(|| {
                Error::config(format!(
                    "`client.auth_origins`: `{}` is not an origin like https://uploads.example.com",
                    redact_url(o)
                ))
            })?;
            origins.push(u.origin());
        }
        Ok(Self { origins })
    }

    /// Whether credentials may go to `url`: scheme, host and port equal a trusted origin's.
    pub(crate) fn trusts(&self, url: &Url) -> bool {
        let o = url.origin();
        o.is_tuple() && self.origins.contains(&o)
    }
}

/// The next hop of a redirect from `from` to `location`; refuses a downgrade from https to
/// http and any scheme but http(s). The error says why, without the URLs (the caller adds them,
/// redacted).
pub(crate) fn redirect_target(from: &Url, location: &str) -> std::result::Result<Url, String> {
    let next = from
        .join(location.trim())
        .map_err(|e| format!("an invalid Location ({e})"))?;
    match (from.scheme(), next.scheme()) {
        ("https", "http") => Err("a redirect from https to plain http, refused".into()),
        (_, "http" | "https") => Ok(next),
        (_, other) => Err(format!("a redirect to a `{other}:` URL, refused")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn u(s: &str) -> Url {
        Url::parse(s).expect("url")
    }

    #[test]
    fn trusts_the_base_origin_and_listed_origins_only() {
        let s = Scope::new(
            "https://api.example.com/v1/",
            &["https://uploads.example.com".into()],
        )
        .expect("scope");
        assert!(s.trusts(&u("https://api.example.com/v2/x?page=2")));
        assert!(s.trusts(&u("https://API.example.com:443/x")));
        assert!(s.trusts(&u("https://uploads.example.com/f")));
        assert!(!s.trusts(&u("http://api.example.com/x")), "scheme");
        assert!(!s.trusts(&u("https://api.example.com:8443/x")), "port");
        assert!(!s.trusts(&u("https://evil.example.com/x")), "host");
        assert!(
            !s.trusts(&u("https://api.example.com.evil.net/x")),
            "suffix"
        );
        assert!(Scope::new("api.example.com", &[]).is_err());
        assert!(Scope::new("https://a", &["not an origin".into()]).is_err());
        assert!(!Scope::new("", &[]).expect("empty").trusts(&u("https://a/")));
    }

    #[test]
    fn redirects_never_downgrade_to_http() {
        let from = u("https://api.example.com/a?page=1");
        assert_eq!(
            redirect_target(&from, "/b?page=2").expect("same").as_str(),
            "https://api.example.com/b?page=2"
        );
        assert!(redirect_target(&from, "http://api.example.com/b")
            .expect_err("downgrade")
            .contains("https to plain http"));
        assert!(redirect_target(&from, "file:///etc/passwd").is_err());
        assert!(redirect_target(&u("http://h/a"), "https://h/b").is_ok());
        assert!(redirect_target(&u("http://h/a"), "http://other/b").is_ok());
    }

    #[test]
    fn only_content_negotiation_headers_cross_origins() {
        assert!(is_public_header("Accept"));
        assert!(!is_public_header("Authorization"));
        assert!(!is_public_header("X-Api-Key"));
        assert!(!is_public_header("Cookie"));
    }
}
