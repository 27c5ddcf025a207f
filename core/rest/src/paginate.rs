//! dlt's paginators (spec i.3) over `sluice_sdk::Paginator`, configured from dlt's dicts.

use serde::{Deserialize, Serialize};
use serde_json::Value;
use sluice_sdk::paginator::SinglePage;
use sluice_sdk::{Error, PageRequest, PageResponse, Paginator, Result};

use crate::select::find;

/// A paginator as configured: `"json_link"` or `{type = "offset", limit = 100, ...}`.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(untagged)]
pub enum PaginatorConfig {
    /// A type name with default options.
    Name(String),
    /// A type with options (boxed: the options are large, a name is one string).
    Config(Box<PaginatorOptions>),
}

/// Every paginator option (each type reads its own; dlt's names and defaults).
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize, Default)]
#[serde(deny_unknown_fields)]
pub struct PaginatorOptions {
    #[serde(rename = "type")]
    kind: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    next_url_path: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    links_next_key: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    cursor_key: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    cursor_path: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    cursor_param: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    cursor_body_path: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    limit: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    offset: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    offset_param: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    limit_param: Option<String>,
    #[serde(default = "default_total", deserialize_with = "nullable")]
    total_path: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    maximum_offset: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    base_page: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    page: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    page_param: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    maximum_page: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    stop_after_empty_page: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    has_more_path: Option<String>,
}

fn default_total() -> Option<String> {
    Some("total".into())
}

fn nullable<'de, D: serde::Deserializer<'de>>(
    d: D,
) -> std::result::Result<Option<String>, D::Error> {
    Option::<String>::deserialize(d)
}

impl PaginatorConfig {
    /// Builds the paginator (`None` for `auto`: detect from the first response).
    pub fn build(&self) -> Result<Option<Box<dyn Paginator>>> {
        let o = match self {
            Self::Name(n) => PaginatorOptions {
                kind: n.clone(),
                total_path: default_total(),
                ..Default::default()
            },
            Self::Config(c) => (**c).clone(),
        };
        let stop_empty = o.stop_after_empty_page;
        Ok(Some(match o.kind.as_str() {
            "auto" => return Ok(None),
            "single_page" => Box::new(SinglePage::default()),
            "json_link" | "json_response" => Box::new(NextLink::json(o.next_url_path.as_deref().unwrap_or("next"))),
            "header_link" => Box::new(NextLink::header(o.links_next_key.as_deref().unwrap_or("next"))),
            "header_cursor" => Box::new(Cursor {
                from_header: o.cursor_key.or(Some("next".into())),
                path: String::new(),
                param: o.cursor_param.unwrap_or_else(|| "cursor".into()),
                body_path: None,
                stop_after_empty_page: stop_empty.unwrap_or(false),
                has_more_path: None,
                cursor: None,
                started: false,
            }),
            "cursor" => Box::new(Cursor {
                from_header: None,
                path: o.cursor_path.unwrap_or_else(|| "cursors.next".into()),
                param: o.cursor_param.unwrap_or_else(|| "cursor".into()),
                body_path: o.cursor_body_path,
                stop_after_empty_page: stop_empty.unwrap_or(false),
                has_more_path: o.has_more_path,
                cursor: None,
                started: false,
            }),
            "offset" => {
                let limit = o.limit.ok_or_else(|| {
                    Error::config("paginator `offset` needs `limit` (the page size)")
                })?;
                Box::new(Offset {
                    limit,
                    offset: o.offset.unwrap_or(0),
                    offset_param: o.offset_param.unwrap_or_else(|| "offset".into()),
                    limit_param: o.limit_param.unwrap_or_else(|| "limit".into()),
                    total_path: o.total_path,
                    maximum: o.maximum_offset,
                    stop_after_empty_page: stop_empty.unwrap_or(true),
                    has_more_path: o.has_more_path,
                    done: false,
                    page_kind: false,
                })
            }
            "page_number" => {
                let base = o.base_page.unwrap_or(0);
                Box::new(Offset {
                    limit: 1,
                    offset: o.page.unwrap_or(base),
                    offset_param: o.page_param.unwrap_or_else(|| "page".into()),
                    limit_param: String::new(),
                    total_path: o.total_path,
                    maximum: o.maximum_page,
                    stop_after_empty_page: stop_empty.unwrap_or(true),
                    has_more_path: o.has_more_path,
                    done: false,
                    page_kind: true,
                })
                .with_base(base)
            }
            other => {
                return Err(Error::config(format!(
                    "unknown paginator type `{other}` (known: json_link, header_link, header_cursor, cursor, offset, page_number, single_page, auto)"
                )))
            }
        }))
    }
}

trait WithBase {
    fn with_base(self, base: u64) -> Box<dyn Paginator>;
}

impl WithBase for Box<Offset> {
    fn with_base(self, base: u64) -> Box<dyn Paginator> {
        Box::new(PageNumber { inner: *self, base })
    }
}

fn truthy(v: &Value) -> bool {
    match v {
        Value::Bool(b) => *b,
        Value::String(s) => matches!(s.to_ascii_lowercase().as_str(), "true" | "1" | "yes"),
        Value::Number(n) => n.as_f64().is_some_and(|f| f != 0.0),
        Value::Null => false,
        _ => true,
    }
}

/// Where the next page's URL comes from.
#[derive(Debug)]
enum LinkFrom {
    /// a JSON path in the body (json_link)
    Body(String),
    /// a relation of the `Link` header (header_link)
    Header(String),
}

/// The next page's full URL from the body (dlt's `json_link`) or the `Link` header
/// (`header_link`).
#[derive(Debug)]
pub struct NextLink {
    from: LinkFrom,
    next: Option<String>,
    started: bool,
}

impl NextLink {
    /// A json_link paginator reading `next_url_path`.
    pub fn json(path: &str) -> Self {
        Self::new(LinkFrom::Body(path.into()))
    }

    /// A header_link paginator following relation `key`.
    pub fn header(key: &str) -> Self {
        Self::new(LinkFrom::Header(key.into()))
    }

    fn new(from: LinkFrom) -> Self {
        Self {
            from,
            next: None,
            started: false,
        }
    }
}

fn resolve_url(base: &str, next: &str) -> String {
    match url::Url::parse(base).and_then(|b| b.join(next)) {
        Ok(u) => u.to_string(),
        Err(_) => next.to_string(),
    }
}

fn set_url(request: &mut PageRequest, full: &str) {
    // the next link carries its own query: the first request's parameters are dropped
    match url::Url::parse(full) {
        Ok(u) => {
            request.query = u
                .query_pairs()
                .map(|(k, v)| (k.into_owned(), v.into_owned()))
                .collect();
            let mut bare = u.clone();
            bare.set_query(None);
            request.url = bare.to_string();
        }
        Err(_) => {
            request.url = full.to_string();
            request.query.clear();
        }
    }
}

/// The URL of relation `rel` in a Link header.
pub fn link_rel(header: &str, rel: &str) -> Option<String> {
    for part in header.split(',') {
        let mut pieces = part.split(';');
        let url = pieces
            .next()?
            .trim()
            .trim_start_matches('<')
            .trim_end_matches('>');
        for p in pieces {
            let p = p.trim();
            if let Some(v) = p.strip_prefix("rel=") {
                if v.trim_matches('"').split_whitespace().any(|r| r == rel) {
                    return Some(url.to_string());
                }
            }
        }
    }
    None
}

impl Paginator for NextLink {
    fn update_state(&mut self, response: &PageResponse, _records: &[Value]) -> Result<()> {
        self.started = true;
        let found = match &self.from {
            LinkFrom::Body(path) => match find(&response.body, path) {
                Some(Value::String(s)) if !s.is_empty() => Some(s.clone()),
                Some(Value::Object(m)) => m
                    .get("href")
                    .or_else(|| m.get("url"))
                    .and_then(Value::as_str)
                    .map(String::from),
                _ => None,
            },
            LinkFrom::Header(key) => response.header("link").and_then(|h| link_rel(h, key)),
        };
        self.next = found.map(|u| resolve_url(&response.url, &u));
        Ok(())
    }
    fn update_request(&mut self, request: &mut PageRequest) {
        if let Some(n) = &self.next {
            set_url(request, n);
        }
    }
    fn has_next_page(&self) -> bool {
        !self.started || self.next.is_some()
    }
    fn describe(&self) -> String {
        match &self.from {
            LinkFrom::Body(p) => format!("json_link(next_url_path={p})"),
            LinkFrom::Header(k) => format!("header_link(links_next_key={k})"),
        }
    }
}

/// A cursor from the body (or a header) sent back as a query parameter or body field.
#[derive(Debug)]
pub struct Cursor {
    from_header: Option<String>,
    path: String,
    param: String,
    body_path: Option<String>,
    stop_after_empty_page: bool,
    has_more_path: Option<String>,
    cursor: Option<String>,
    started: bool,
}

impl Paginator for Cursor {
    fn update_state(&mut self, response: &PageResponse, records: &[Value]) -> Result<()> {
        self.started = true;
        let value = match &self.from_header {
            Some(h) => response.header(h).map(|s| Value::String(s.to_string())),
            None => find(&response.body, &self.path).cloned(),
        };
        self.cursor = match value {
            Some(Value::String(s)) if !s.is_empty() => Some(s),
            Some(Value::Number(n)) => Some(n.to_string()),
            _ => None,
        };
        if self.stop_after_empty_page && records.is_empty() {
            self.cursor = None;
        }
        if let Some(p) = &self.has_more_path {
            if !find(&response.body, p).is_some_and(truthy) {
                self.cursor = None;
            }
        }
        Ok(())
    }
    fn update_request(&mut self, request: &mut PageRequest) {
        let Some(c) = &self.cursor else { return };
        match &self.body_path {
            Some(bp) => {
                let body = request
                    .json
                    .get_or_insert_with(|| Value::Object(Default::default()));
                set_json_path(body, bp, Value::String(c.clone()));
            }
            None => request.set_query(&self.param, c.clone()),
        }
    }
    fn has_next_page(&self) -> bool {
        !self.started || self.cursor.is_some()
    }
    fn describe(&self) -> String {
        match &self.from_header {
            Some(h) => format!("header_cursor(cursor_key={h}, cursor_param={})", self.param),
            None => format!(
                "cursor(cursor_path={}, cursor_param={})",
                self.path, self.param
            ),
        }
    }
}

fn set_json_path(body: &mut Value, path: &str, v: Value) {
    let mut cur = body;
    let parts: Vec<&str> = path.trim_start_matches("$.").split('.').collect();
    for (i, p) in parts.iter().enumerate() {
        if !cur.is_object() {
            *cur = Value::Object(Default::default());
        }
        let m = cur.as_object_mut().expect("object");
        if i + 1 == parts.len() {
            m.insert(p.to_string(), v);
            return;
        }
        cur = m
            .entry(p.to_string())
            .or_insert_with(|| Value::Object(Default::default()));
    }
}

/// offset/limit (and, through [`PageNumber`], page numbers).
#[derive(Debug)]
pub struct Offset {
    limit: u64,
    offset: u64,
    offset_param: String,
    limit_param: String,
    total_path: Option<String>,
    maximum: Option<u64>,
    stop_after_empty_page: bool,
    has_more_path: Option<String>,
    done: bool,
    page_kind: bool,
}

impl Offset {
    fn read_total(&self, response: &PageResponse) -> Result<Option<u64>> {
        let Some(tp) = &self.total_path else {
            return Ok(None);
        };
        match find(&response.body, tp) {
            Some(Value::Number(n)) => Ok(n.as_u64()),
            Some(Value::String(s)) => Ok(s.parse().ok()),
            Some(Value::Null) => Ok(None),
            None if self.has_more_path.is_some() || self.maximum.is_some() => Ok(None),
            None if self.stop_after_empty_page => Ok(None),
            _ => Err(Error::data(format!(
                "paginator `{}`: the response has no total at `{tp}`\nhint: set `total_path` to where the API puts it, or to null when it has none",
                if self.page_kind { "page_number" } else { "offset" }
            ))),
        }
    }

    fn step(&mut self, response: &PageResponse, records: &[Value], base: u64) -> Result<()> {
        if self.stop_after_empty_page && records.is_empty() {
            self.done = true;
            return Ok(());
        }
        let total = self.read_total(response)?;
        self.offset += self.limit;
        if let Some(t) = total {
            if self.offset >= t + if self.page_kind { base } else { 0 } {
                self.done = true;
            }
        }
        if self.maximum.is_some_and(|m| self.offset >= m) {
            self.done = true;
        }
        if let Some(p) = &self.has_more_path {
            if !find(&response.body, p).is_some_and(truthy) {
                self.done = true;
            }
        }
        Ok(())
    }

    fn apply(&self, request: &mut PageRequest) {
        request.set_query(&self.offset_param, self.offset.to_string());
        if !self.page_kind {
            request.set_query(&self.limit_param, self.limit.to_string());
        }
    }
}

impl Paginator for Offset {
    fn init_request(&mut self, request: &mut PageRequest) {
        self.apply(request);
    }
    fn update_state(&mut self, response: &PageResponse, records: &[Value]) -> Result<()> {
        self.step(response, records, 0)
    }
    fn update_request(&mut self, request: &mut PageRequest) {
        self.apply(request);
    }
    fn has_next_page(&self) -> bool {
        !self.done
    }
    fn describe(&self) -> String {
        format!(
            "offset(limit={}, offset_param={}, limit_param={})",
            self.limit, self.offset_param, self.limit_param
        )
    }
}

/// Page numbers (`base_page`, total pages at `total_path`).
#[derive(Debug)]
pub struct PageNumber {
    inner: Offset,
    base: u64,
}

impl Paginator for PageNumber {
    fn init_request(&mut self, request: &mut PageRequest) {
        self.inner.apply(request);
    }
    fn update_state(&mut self, response: &PageResponse, records: &[Value]) -> Result<()> {
        self.inner.step(response, records, self.base)
    }
    fn update_request(&mut self, request: &mut PageRequest) {
        self.inner.apply(request);
    }
    fn has_next_page(&self) -> bool {
        !self.inner.done
    }
    fn describe(&self) -> String {
        format!(
            "page_number(page_param={}, base_page={})",
            self.inner.offset_param, self.base
        )
    }
}

/// dlt's auto-detection from the first response (spec i.3).
pub fn detect(response: &PageResponse, records: &[Value]) -> Box<dyn Paginator> {
    if response
        .header("link")
        .and_then(|h| link_rel(h, "next"))
        .is_some()
    {
        return Box::new(NextLink::header("next"));
    }
    // a `next...` key holding a URL
    fn next_key(v: &Value, path: &mut Vec<String>, want_url: bool) -> Option<String> {
        if let Value::Object(m) = v {
            for (k, child) in m {
                path.push(k.clone());
                let is_next = k.to_ascii_lowercase().starts_with("next");
                if is_next {
                    let url_like = match child {
                        Value::String(s) => s.starts_with("http") || s.starts_with('/'),
                        Value::Object(o) => o.contains_key("href") || o.contains_key("url"),
                        _ => false,
                    };
                    let cursor_like = matches!(child, Value::String(_) | Value::Number(_));
                    if (want_url && url_like) || (!want_url && cursor_like && !url_like) {
                        return Some(path.join("."));
                    }
                }
                if let Some(p) = next_key(child, path, want_url) {
                    return Some(p);
                }
                path.pop();
            }
        }
        None
    }
    if let Some(p) = next_key(&response.body, &mut Vec::new(), true) {
        return Box::new(NextLink::json(&p));
    }
    if let Value::Object(m) = &response.body {
        for key in ["total_pages", "pages", "totalpages", "totalPages"] {
            if m.get(key).is_some_and(|v| v.as_u64().is_some()) {
                return Box::new(PageNumber {
                    inner: Offset {
                        limit: 1,
                        offset: 1,
                        offset_param: "page".into(),
                        limit_param: String::new(),
                        total_path: Some(key.into()),
                        maximum: None,
                        stop_after_empty_page: true,
                        has_more_path: None,
                        done: false,
                        page_kind: true,
                    },
                    base: 1,
                });
            }
        }
    }
    if let Some(p) = next_key(&response.body, &mut Vec::new(), false) {
        return Box::new(Cursor {
            from_header: None,
            path: p,
            param: "cursor".into(),
            body_path: None,
            stop_after_empty_page: false,
            has_more_path: None,
            cursor: None,
            started: false,
        });
    }
    if response.body.is_array() && !records.is_empty() {
        tracing::warn!(
            target: "sluice::rest",
            "no paginator configured or detected for {}: reading a single page",
            sluice_sdk::redact_url(&response.url)
        );
    }
    Box::new(SinglePage::default())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn resp(body: Value, link: Option<&str>) -> PageResponse {
        PageResponse {
            status: 200,
            headers: link
                .map(|l| vec![("link".to_string(), l.to_string())])
                .unwrap_or_default(),
            body,
            url: "http://h/api/items?x=1".into(),
        }
    }

    #[test]
    fn link_headers_and_detection() {
        let h =
            r#"<http://h/api/items?page=2>; rel="next", <http://h/api/items?page=9>; rel="last""#;
        assert_eq!(
            link_rel(h, "next").as_deref(),
            Some("http://h/api/items?page=2")
        );
        assert!(detect(&resp(json!([]), Some(h)), &[])
            .describe()
            .starts_with("header_link"));
        assert!(detect(
            &resp(json!({"next": "/api/items?p=2", "data": []}), None),
            &[]
        )
        .describe()
        .starts_with("json_link"));
        assert!(
            detect(&resp(json!({"total_pages": 3, "data": []}), None), &[])
                .describe()
                .starts_with("page_number")
        );
        assert!(
            detect(&resp(json!({"next_cursor": "abc", "data": []}), None), &[])
                .describe()
                .starts_with("cursor")
        );
        assert_eq!(
            detect(&resp(json!({"data": []}), None), &[]).describe(),
            "single_page"
        );
    }

    #[test]
    fn the_single_page_warning_redacts_the_url() {
        use std::sync::{Arc, Mutex};
        #[derive(Clone, Default)]
        struct Buf(Arc<Mutex<Vec<u8>>>);
        impl std::io::Write for Buf {
            fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
                self.0.lock().expect("lock").extend_from_slice(b);
                Ok(b.len())
            }
            fn flush(&mut self) -> std::io::Result<()> {
                Ok(())
            }
        }
        let buf = Buf::default();
        let w = buf.clone();
        let subscriber = tracing_subscriber::fmt()
            .with_writer(move || w.clone())
            .with_ansi(false)
            .finish();
        let mut r = resp(json!([{"id": 1}]), None);
        r.url = "https://u:pw@h/api/items?per_page=50&api_key=K-SECRET".into();
        tracing::subscriber::with_default(subscriber, || {
            assert_eq!(detect(&r, &[json!({"id": 1})]).describe(), "single_page");
        });
        let logged = String::from_utf8(buf.0.lock().expect("lock").clone()).expect("utf8");
        assert!(logged.contains("WARN"), "{logged}");
        assert!(
            logged.contains("https://***@h/api/items?per_page=50&api_key=***"),
            "{logged}"
        );
        assert!(
            !logged.contains("K-SECRET") && !logged.contains("pw@"),
            "{logged}"
        );
    }

    #[test]
    fn offset_stops_on_total_and_missing_total_is_explained() {
        let mut p = PaginatorConfig::Config(
            serde_json::from_value(json!({"type": "offset", "limit": 2})).expect("cfg"),
        )
        .build()
        .expect("build")
        .expect("some");
        let mut req = PageRequest::default();
        p.init_request(&mut req);
        assert_eq!(req.query_value("offset"), Some("0"));
        p.update_state(&resp(json!({"total": 3}), None), &[json!(1), json!(2)])
            .expect("state");
        assert!(p.has_next_page());
        p.update_request(&mut req);
        assert_eq!(req.query_value("offset"), Some("2"));
        p.update_state(&resp(json!({"total": 3}), None), &[json!(3)])
            .expect("state");
        assert!(!p.has_next_page());
        let mut p = PaginatorConfig::Config(
            serde_json::from_value(
                json!({"type": "offset", "limit": 2, "stop_after_empty_page": false}),
            )
            .expect("cfg"),
        )
        .build()
        .expect("build")
        .expect("some");
        let e = p
            .update_state(&resp(json!({}), None), &[json!(1)])
            .expect_err("no total");
        assert!(e.to_string().contains("total_path"), "{e}");
        assert!(PaginatorConfig::Name("nope".into()).build().is_err());
        assert!(PaginatorConfig::Name("offset".into()).build().is_err());
    }
}
