//! The one URL redactor: every URL that is logged, printed, put in an error or in trace.json
//! goes through [`redact_url`] (or [`redact_urls`] for free text that may hold URLs).
//!
//! A URL can carry a secret in three places: the userinfo (`https://user:pass@host`), a query
//! value (`?api_key=...`, `?sig=...` of a presigned URL) and the fragment (`#access_token=...`).
//! The redactor masks all three and keeps what a reader needs to tell requests apart: the
//! scheme, host, port, path, the query *names*, and the values of the pagination and windowing
//! parameters in [`URL_QUERY_ALLOW_LIST`]. It parses by hand (no URL crate) so that anything,
//! even a string that is not a valid URL, comes out masked rather than echoed.
//!
//! A secret in the path (a bot token as a path segment) cannot be told from a record id and is
//! not masked: such an API needs its token in a header instead.

/// Query parameters whose values are shown: page positions and windows, never credentials.
/// Matched case-insensitively; any other parameter's value prints as `***`.
pub const URL_QUERY_ALLOW_LIST: &[&str] = &[
    "page",
    "per_page",
    "page_size",
    "pagesize",
    "limit",
    "offset",
    "cursor",
    "after",
    "before",
    "starting_after",
    "ending_before",
    "since",
    "until",
    "sort",
    "order",
    "direction",
];

const MASK: &str = "***";

fn allowed(name: &str) -> bool {
    URL_QUERY_ALLOW_LIST
        .iter()
        .any(|a| a.eq_ignore_ascii_case(name))
}

/// `url` with its userinfo, its fragment and every query value outside
/// [`URL_QUERY_ALLOW_LIST`] replaced by `***`:
///
/// ```
/// assert_eq!(
///     sluice_sdk::redact_url("https://me:pw@api.example.com/v1/items?page=2&api_key=s3cret#tok"),
///     "https://***@api.example.com/v1/items?page=2&api_key=***#***"
/// );
/// ```
pub fn redact_url(url: &str) -> String {
    let mut out = String::with_capacity(url.len() + 8);
    let (before_fragment, fragment) = match url.split_once('#') {
        Some((b, f)) => (b, Some(f)),
        None => (url, None),
    };
    let (before_query, query) = match before_fragment.split_once('?') {
        Some((b, q)) => (b, Some(q)),
        None => (before_fragment, None),
    };
    match before_query.find("://") {
        Some(i) => {
            let (scheme, rest) = before_query.split_at(i + 3);
            out.push_str(scheme);
            // the authority ends at the first `/` (or `\`, which browsers and WHATWG read as one)
            let end = rest.find(['/', '\\']).unwrap_or(rest.len());
            let (authority, path) = rest.split_at(end);
            match authority.rfind('@') {
                Some(at) => {
                    out.push_str(MASK);
                    out.push_str(&authority[at..]);
                }
                None => out.push_str(authority),
            }
            out.push_str(path);
        }
        None => out.push_str(before_query),
    }
    if let Some(q) = query {
        out.push('?');
        for (i, pair) in q.split('&').enumerate() {
            if i > 0 {
                out.push('&');
            }
            match pair.split_once('=') {
                // `;` is a pair separator to some servers: a value holding one is masked
                Some((k, v)) => {
                    out.push_str(k);
                    out.push('=');
                    if v.is_empty() || (allowed(k) && !v.contains(';')) {
                        out.push_str(v);
                    } else {
                        out.push_str(MASK);
                    }
                }
                // a bare item may itself be a token
                None if pair.is_empty() || allowed(pair) => out.push_str(pair),
                None => out.push_str(MASK),
            }
        }
    }
    if let Some(f) = fragment {
        out.push('#');
        if !f.is_empty() {
            out.push_str(MASK);
        }
    }
    out
}

/// `text` with every URL in it (`scheme://...` up to a space, quote or bracket) passed through
/// [`redact_url`]; the rest is unchanged. For messages built elsewhere (a library's error text,
/// a log line) that may quote a URL.
pub fn redact_urls(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(i) = rest.find("://") {
        // back over the scheme's characters
        let start = rest[..i]
            .rfind(|c: char| !(c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.')))
            .map_or(0, |j| j + 1);
        if start == i {
            // `://` without a scheme: not a URL
            out.push_str(&rest[..i + 3]);
            rest = &rest[i + 3..];
            continue;
        }
        let after = &rest[i + 3..];
        let end = i
            + 3
            + after
                .find(|c: char| c.is_whitespace() || matches!(c, '"' | '\'' | '<' | '>' | '`'))
                .unwrap_or(after.len());
        out.push_str(&rest[..start]);
        out.push_str(&redact_url(&rest[start..end]));
        rest = &rest[end..];
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn masks_userinfo_query_values_and_fragment() {
        let cases = [
            (
                "https://api.example.com/v1/items",
                "https://api.example.com/v1/items",
            ),
            (
                "https://api.example.com/items?page=2&per_page=100&api_key=K1",
                "https://api.example.com/items?page=2&per_page=100&api_key=***",
            ),
            (
                "http://u:p@h:8080/x?token=abc",
                "http://***@h:8080/x?token=***",
            ),
            ("https://u@h/a@b?x", "https://***@h/a@b?***"),
            (
                "postgresql://loader:pw@db:5432/dwh",
                "postgresql://***@db:5432/dwh",
            ),
            ("https://h/cb#access_token=T", "https://h/cb#***"),
            (
                "https://h/p?PAGE=3&Limit=10&empty=",
                "https://h/p?PAGE=3&Limit=10&empty=",
            ),
            ("https://h/p?page=1;api_key=K", "https://h/p?page=***"),
            (
                "https://h/p?cursor=abc%3D%3D&sig=xyz",
                "https://h/p?cursor=abc%3D%3D&sig=***",
            ),
            (
                "/relative/path?key=K&offset=5",
                "/relative/path?key=***&offset=5",
            ),
            ("not a url", "not a url"),
            ("", ""),
        ];
        for (input, want) in cases {
            assert_eq!(redact_url(input), want, "{input}");
        }
    }

    #[test]
    fn redacts_urls_inside_text() {
        let t =
            "GET https://h/x?api_key=K1 failed (see \"http://u:pw@h2/y?page=1&sig=S\"); :// alone";
        let r = redact_urls(t);
        assert_eq!(
            r,
            "GET https://h/x?api_key=*** failed (see \"http://***@h2/y?page=1&sig=***\"); :// alone"
        );
        assert!(
            !r.contains("K1") && !r.contains("pw") && !r.contains("S\""),
            "{r}"
        );
    }
}
