//! The [`Paginator`] trait: how a REST source walks pages.
//!
//! Paginators live inside source plugins (implemented by `sluice-rest` for dlt's standard
//! kinds, or by a plugin author for an exotic API); they are not ABI objects, because they
//! rewrite a request and read a response on every page.

use serde_json::Value;

use crate::Result;

/// An HTTP request a paginator may rewrite.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct PageRequest {
    /// Absolute URL (without the query string).
    pub url: String,
    /// HTTP method.
    pub method: String,
    /// Query parameters in order.
    pub query: Vec<(String, String)>,
    /// Headers in order.
    pub headers: Vec<(String, String)>,
    /// JSON body, if any.
    pub json: Option<Value>,
}

impl PageRequest {
    /// Sets (or replaces) a query parameter.
    pub fn set_query(&mut self, name: &str, value: impl Into<String>) {
        let value = value.into();
        match self.query.iter_mut().find(|(k, _)| k == name) {
            Some(entry) => entry.1 = value,
            None => self.query.push((name.to_string(), value)),
        }
    }

    /// The value of a query parameter.
    pub fn query_value(&self, name: &str) -> Option<&str> {
        self.query
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }
}

/// What a paginator sees of a response.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct PageResponse {
    /// HTTP status.
    pub status: u16,
    /// Headers (lowercase names).
    pub headers: Vec<(String, String)>,
    /// The parsed JSON body (`Null` when empty or not JSON).
    pub body: Value,
    /// The final URL of the request (after redirects).
    pub url: String,
}

impl PageResponse {
    /// A header value by (case-insensitive) name.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// Walks the pages of an endpoint, as dlt's paginators do: `init_request` before the first
/// request, then after every response `update_state` (with the page's records) and, while
/// `has_next_page`, `update_request` to build the next request.
pub trait Paginator: Send {
    /// Prepares the first request (e.g. sets `offset=0&limit=100`).
    fn init_request(&mut self, request: &mut PageRequest) {
        let _ = request;
    }
    /// Reads what the response says about the next page.
    fn update_state(&mut self, response: &PageResponse, records: &[Value]) -> Result<()>;
    /// Rewrites the request for the next page.
    fn update_request(&mut self, request: &mut PageRequest);
    /// Whether there is another page.
    fn has_next_page(&self) -> bool;
    /// A short description for logs and errors (`json_link(next_url_path=next)`).
    fn describe(&self) -> String;
}

/// The paginator of a single request.
#[derive(Debug, Clone, Default)]
pub struct SinglePage {
    done: bool,
}

impl Paginator for SinglePage {
    fn update_state(&mut self, _response: &PageResponse, _records: &[Value]) -> Result<()> {
        self.done = true;
        Ok(())
    }
    fn update_request(&mut self, _request: &mut PageRequest) {}
    fn has_next_page(&self) -> bool {
        !self.done
    }
    fn describe(&self) -> String {
        "single_page".into()
    }
}
