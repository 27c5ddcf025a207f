//! The declarative REST API source (dlt's `rest_api`, spec i): [`RestApi`], opened from a
//! [`RestApiConfig`](crate::config::RestApiConfig) and read through [`RestClient`]. The
//! `rest_api` plugin is this source; the `github` plugin is this source with GitHub's
//! endpoints filled in.
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
//! * Limits (sluice): `max_response_bytes`, `max_pages` (see [`Limits`](crate::Limits)).

use std::collections::{BTreeSet, HashMap, HashSet};
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};

use futures::FutureExt;
use indexmap::IndexMap;
use serde_json::{Map, Value};
use sluice_sdk::prelude::*;
use sluice_sdk::resource::{IncrementalSpec, IncrementalWindow};
use sluice_sdk::PageRequest;
use tokio::sync::{mpsc, oneshot};

use crate::config::{Endpoint, IncrementalConfig, ResourceConfig, RestApiConfig, RestApiSecrets};
use crate::{Auth, PaginatorConfig, RestClient};

#[derive(Debug, Clone)]
struct Resource {
    descriptor: ResourceDescriptor,
    endpoint: Endpoint,
    path: String,
    parent: Option<String>,
    include_from_parent: Vec<String>,
    /// legacy `{type = "resolve"}` params: name -> (resource, field)
    resolve: Vec<(String, String, String)>,
    client: RestClient,
    paginator: Option<PaginatorConfig>,
}

/// The source.
pub struct RestApi {
    resources: Arc<IndexMap<String, Resource>>,
    /// streams of a run waiting to share a walk (see [`RestApi::join_group`])
    hub: Arc<Mutex<Hub>>,
}

fn config_error(e: impl std::fmt::Display) -> Error {
    Error::config(format!("config of source `rest_api`: {e}"))
}

/// dlt's merge of `resource_defaults` into a resource: resource keys win; `endpoint` merges key
/// by key with `params` and `json` one level deep; `columns` merge column-wise.
fn merge_defaults(defaults: &Value, resource: Value) -> Value {
    let (Value::Object(d), Value::Object(mut r)) = (defaults.clone(), resource.clone()) else {
        return resource;
    };
    for (k, dv) in d {
        match (k.as_str(), r.get_mut(&k)) {
            (_, None) => {
                r.insert(k, dv);
            }
            ("endpoint", Some(rv)) => {
                if let Value::String(p) = rv {
                    *rv = serde_json::json!({ "path": p.clone() });
                }
                if let (Value::Object(de), Value::Object(re)) = (dv, rv) {
                    for (ek, ev) in de {
                        match (ek.as_str(), re.get_mut(&ek)) {
                            (_, None) => {
                                re.insert(ek, ev);
                            }
                            ("params" | "json", Some(Value::Object(inner))) => {
                                if let Value::Object(evm) = ev {
                                    for (pk, pv) in evm {
                                        inner.entry(pk).or_insert(pv);
                                    }
                                }
                            }
                            _ => {}
                        }
                    }
                }
            }
            ("columns", Some(Value::Object(rc))) => {
                if let Value::Object(dc) = dv {
                    for (ck, cv) in dc {
                        rc.entry(ck).or_insert(cv);
                    }
                }
            }
            _ => {}
        }
    }
    Value::Object(r)
}

fn parse_auth(v: &Value) -> Result<Auth> {
    let mut v = v.clone();
    if let Value::Object(m) = &mut v {
        // dlt: a dict without `type` is bearer
        m.entry("type")
            .or_insert_with(|| Value::String("bearer".into()));
    }
    serde_json::from_value(v).map_err(|e| {
        // never echo the secret values: only the error's shape
        Error::config(format!(
            "config of source `rest_api`: invalid `auth` ({})",
            e.to_string().split(" at line").next().unwrap_or("invalid")
        ))
    })
}

/// The placeholders `{resources.<name>.<field>}` in a text.
fn parent_refs(text: &str, out: &mut Vec<(String, String)>) {
    let mut rest = text;
    while let Some(i) = rest.find("{resources.") {
        let after = &rest[i + 11..];
        if let Some(end) = after.find('}') {
            let inner = &after[..end];
            if let Some((res, field)) = inner.split_once('.') {
                out.push((res.to_string(), field.to_string()));
            }
            rest = &after[end..];
        } else {
            break;
        }
    }
}

fn value_refs(v: &Value, out: &mut Vec<(String, String)>) {
    match v {
        Value::String(s) => parent_refs(s, out),
        Value::Array(a) => a.iter().for_each(|x| value_refs(x, out)),
        Value::Object(m) => m.iter().for_each(|(k, x)| {
            parent_refs(k, out);
            value_refs(x, out)
        }),
        _ => {}
    }
}

/// What placeholders resolve against.
struct Ctx<'a> {
    parent_name: Option<&'a str>,
    parent: Option<&'a Value>,
    incremental: Option<&'a IncrementalWindow>,
    /// static/legacy values for `{name}` path placeholders
    named: &'a Map<String, Value>,
    /// the names in `named` that come from parent records (legacy resolve params)
    named_from_data: &'a [String],
}

/// A value substituted into a path, percent-encoded as one path segment: only RFC 3986's
/// unreserved characters stay, so a parent record's `../../admin`, `https://evil/` or
/// `a?b#c` cannot leave its segment, add a query or change the host.
fn encode_segment(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for b in text.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// Whether a path has a `.` or `..` segment (which URL parsing resolves away, so no encoding
/// keeps one from climbing).
fn has_dot_segment(path: &str) -> bool {
    let path = path.split(['?', '#']).next().unwrap_or(path);
    path.split('/').any(|s| s == "." || s == "..")
}

fn value_text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

impl Ctx<'_> {
    fn lookup(&self, key: &str, resource: &str) -> Result<Value> {
        if let Some(rest) = key.strip_prefix("resources.") {
            let (res, field) = rest.split_once('.').unwrap_or((rest, ""));
            let item = match (self.parent_name, self.parent) {
                (Some(p), Some(item)) if p == res => item,
                _ => {
                    return Err(Error::config(format!(
                        "resource `{resource}`: placeholder `{{{key}}}` refers to `{res}`, which is not its parent"
                    )))
                }
            };
            return crate::select::find(item, field).cloned().ok_or_else(|| {
                Error::data(format!(
                    "resource `{resource}`: the parent `{res}` record has no field `{field}` (placeholder `{{{key}}}`)"
                ))
            });
        }
        if let Some(which) = key.strip_prefix("incremental.") {
            let w = self.incremental.ok_or_else(|| {
                Error::config(format!(
                    "resource `{resource}`: `{{{key}}}` needs `endpoint.incremental`"
                ))
            })?;
            let v = match which {
                "start_value" => w
                    .start_value
                    .clone()
                    .or_else(|| w.spec.initial_value.clone()),
                "last_value" => w
                    .last_value
                    .clone()
                    .or_else(|| w.spec.initial_value.clone()),
                "initial_value" => w.spec.initial_value.clone(),
                "end_value" => w.end_value.clone(),
                other => {
                    return Err(Error::config(format!(
                        "resource `{resource}`: unknown placeholder `{{incremental.{other}}}`"
                    )))
                }
            };
            return Ok(v.unwrap_or(Value::Null));
        }
        self.named.get(key).cloned().ok_or_else(|| {
            Error::config(format!(
                "resource `{resource}`: placeholder `{{{key}}}` has no value (use `{{resources.<parent>.<field>}}`, `{{incremental.start_value}}` or a param of that name; literal braces are doubled)"
            ))
        })
    }

    /// Whether the value of `{key}` comes from data (a parent record, the incremental
    /// state) rather than from the config.
    fn is_from_data(&self, key: &str) -> bool {
        key.starts_with("resources.")
            || key.starts_with("incremental.")
            || self.named_from_data.iter().any(|n| n == key)
    }

    fn render(&self, text: &str, resource: &str) -> Result<String> {
        self.render_as(text, resource, false)
    }

    /// An endpoint path with its placeholders filled: values from data are percent-encoded
    /// (one segment each); config values (a static `{org}` param) go in as written.
    fn render_path(&self, text: &str, resource: &str) -> Result<String> {
        let path = self.render_as(text, resource, true)?;
        if has_dot_segment(&path) && !has_dot_segment(text) {
            return Err(Error::data(format!(
                "resource `{resource}`: a value from the data makes the path `{text}` climb (`.` or `..` as a segment): refused"
            )));
        }
        Ok(path)
    }

    fn render_as(&self, text: &str, resource: &str, path: bool) -> Result<String> {
        let mut out = String::with_capacity(text.len());
        let mut chars = text.char_indices().peekable();
        while let Some((i, c)) = chars.next() {
            match c {
                '{' if text[i + 1..].starts_with('{') => {
                    out.push('{');
                    chars.next();
                }
                '}' if text[i + 1..].starts_with('}') => {
                    out.push('}');
                    chars.next();
                }
                '{' => {
                    let end = text[i..].find('}').ok_or_else(|| {
                        Error::config(format!("resource `{resource}`: unclosed `{{` in `{text}`"))
                    })?;
                    let key = &text[i + 1..i + end];
                    let value = value_text(&self.lookup(key, resource)?);
                    if path && self.is_from_data(key) {
                        out.push_str(&encode_segment(&value));
                    } else {
                        out.push_str(&value);
                    }
                    while chars.peek().is_some_and(|(j, _)| *j <= i + end) {
                        chars.next();
                    }
                }
                _ => out.push(c),
            }
        }
        Ok(out)
    }

    fn render_value(&self, v: &Value, resource: &str) -> Result<Value> {
        Ok(match v {
            Value::String(s) => {
                let t = s.trim();
                // exactly one placeholder keeps the value's type
                if t.starts_with('{')
                    && t.ends_with('}')
                    && !t.starts_with("{{")
                    && t[1..].find('{').is_none()
                {
                    self.lookup(&t[1..t.len() - 1], resource)?
                } else {
                    Value::String(self.render(s, resource)?)
                }
            }
            Value::Array(a) => Value::Array(
                a.iter()
                    .map(|x| self.render_value(x, resource))
                    .collect::<Result<_>>()?,
            ),
            Value::Object(m) => {
                let mut o = Map::new();
                for (k, x) in m {
                    o.insert(self.render(k, resource)?, self.render_value(x, resource)?);
                }
                Value::Object(o)
            }
            other => other.clone(),
        })
    }
}

impl RestApi {
    /// Opens the source from the config and secrets the host resolved (JSON).
    pub fn open(config: Value, secrets: Value) -> Result<Self> {
        let config: RestApiConfig = serde_json::from_value(config).map_err(config_error)?;
        Self::from_config(&config, &RestApiSecrets::from_json(&secrets))
    }

    /// Opens the source from a typed config (a source built on this one writes it).
    pub fn from_config(config: &RestApiConfig, secrets: &RestApiSecrets) -> Result<Self> {
        let client_auth = match secrets
            .auth
            .as_ref()
            .map(Secret::expose)
            .or(config.client.auth.as_ref())
        {
            Some(v) if !v.is_null() => Some(parse_auth(v)?),
            _ => None,
        };
        let mut headers: Vec<(String, String)> =
            config.client.headers.clone().into_iter().collect();
        headers.retain(|(k, _)| !k.is_empty());
        let mut base = RestClient::new(
            &config.client.base_url,
            headers,
            client_auth,
            config.retry.clone(),
        )
        .and_then(|c| c.with_auth_origins(&config.client.auth_origins))
        .map_err(config_error)?
        .with_limits(config.limits.clone());
        if let Some(r) = config.rate_limit {
            base = base.with_rate_limit(r).map_err(config_error)?;
        }
        let defaults = config.resource_defaults.clone().unwrap_or(Value::Null);
        let mut resources: IndexMap<String, Resource> = IndexMap::new();
        for raw in &config.resources {
            let raw = match raw {
                Value::String(name) => serde_json::json!({"name": name}),
                other => other.clone(),
            };
            let merged = merge_defaults(&defaults, raw);
            let rc: ResourceConfig = serde_json::from_value(merged).map_err(config_error)?;
            let endpoint: Endpoint = match rc.endpoint.clone() {
                None => Endpoint::default(),
                Some(Value::String(p)) => Endpoint {
                    path: Some(p),
                    ..Default::default()
                },
                Some(v) => serde_json::from_value(v)
                    .map_err(|e| config_error(format!("resource `{}`: endpoint: {e}", rc.name)))?,
            };
            let path = endpoint.path.clone().unwrap_or_else(|| rc.name.clone());
            // the parent, from placeholders and legacy resolve params
            let mut refs = Vec::new();
            parent_refs(&path, &mut refs);
            for (k, v) in &endpoint.params {
                parent_refs(k, &mut refs);
                value_refs(v, &mut refs);
            }
            if let Some(j) = &endpoint.json {
                value_refs(j, &mut refs);
            }
            for (k, v) in &endpoint.headers {
                parent_refs(k, &mut refs);
                parent_refs(v, &mut refs);
            }
            let mut resolve = Vec::new();
            let mut params_incremental: Option<IncrementalConfig> = None;
            for (k, v) in &endpoint.params {
                match v.get("type").and_then(Value::as_str) {
                    Some("resolve") => {
                        let res = v
                            .get("resource")
                            .and_then(Value::as_str)
                            .unwrap_or_default()
                            .to_string();
                        let field = v
                            .get("field")
                            .and_then(Value::as_str)
                            .unwrap_or_default()
                            .to_string();
                        refs.push((res.clone(), field.clone()));
                        resolve.push((k.clone(), res, field));
                    }
                    Some("incremental") => {
                        let spec: IncrementalSpec =
                            serde_json::from_value(v.clone()).map_err(|e| {
                                config_error(format!("resource `{}`: params.{k}: {e}", rc.name))
                            })?;
                        params_incremental = Some(IncrementalConfig {
                            spec,
                            start_param: Some(k.clone()),
                            end_param: None,
                        });
                    }
                    _ => {}
                }
            }
            let mut parents: Vec<String> = refs.iter().map(|(r, _)| r.clone()).collect();
            parents.dedup();
            if parents.len() > 1 {
                return Err(config_error(format!(
                    "resource `{}` refers to several parents ({}): all placeholders of a resource must reference the same parent",
                    rc.name,
                    parents.join(", ")
                )));
            }
            let parent = parents.pop();
            if let Some(p) = &parent {
                if !resources.contains_key(p) {
                    return Err(config_error(format!(
                        "resource `{}` refers to `{p}`, which is not a resource defined before it",
                        rc.name
                    )));
                }
            }
            if !rc.include_from_parent.is_empty() && parent.is_none() {
                return Err(config_error(format!(
                    "resource `{}` has include_from_parent but no parent resource",
                    rc.name
                )));
            }
            let incremental = endpoint.incremental.clone().or(params_incremental);
            let mut endpoint = endpoint;
            endpoint.incremental = incremental.clone();
            // single entity: the last path segment is a placeholder
            let single = path
                .rsplit('/')
                .next()
                .is_some_and(|s| s.contains('{') && !s.contains("{{"));
            if single && endpoint.data_selector.is_none() {
                endpoint.data_selector = Some("$".into());
            }
            let paginator = endpoint
                .paginator
                .clone()
                .or_else(|| single.then(|| PaginatorConfig::Name("single_page".into())))
                .or_else(|| config.client.paginator.clone());
            if let Some(p) = &paginator {
                p.build()
                    .map_err(|e| config_error(format!("resource `{}`: {e}", rc.name)))?;
            }
            let mut client = base.clone().with_label(&format!("resource `{}`", rc.name));
            if let Some(a) = &endpoint.auth {
                client = client.with_auth(Some(parse_auth(a)?));
            }
            let mut d = ResourceDescriptor::new(&rc.name);
            d.table_name = rc.table_name.clone();
            d.table_name_path = rc.table_name_path.clone();
            d.write_disposition = rc.write_disposition.clone();
            d.primary_key = rc.primary_key.clone();
            d.merge_key = rc.merge_key.clone();
            if let Some(c) = &rc.columns {
                d.columns = serde_json::from_value(c.clone())
                    .map_err(|e| config_error(format!("resource `{}`: columns: {e}", rc.name)))?;
            }
            d.max_table_nesting = rc.max_table_nesting;
            d.schema_contract = rc.schema_contract.clone();
            d.selected = rc.selected.unwrap_or(true);
            d.incremental = incremental.as_ref().map(|i| i.spec.clone());
            d.depends_on = parent.iter().cloned().collect();
            resources.insert(
                rc.name.clone(),
                Resource {
                    descriptor: d,
                    endpoint,
                    path,
                    parent,
                    include_from_parent: rc.include_from_parent.clone(),
                    resolve,
                    client,
                    paginator,
                },
            );
        }
        if resources.is_empty() {
            return Err(config_error("`resources` is empty"));
        }
        Ok(Self {
            resources: Arc::new(resources),
            hub: Arc::default(),
        })
    }
}

type BoxFut<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// Where a resource's pages go.
type Emit = dyn FnMut(Vec<Value>) -> BoxFut<'static, Result<()>> + Send;

/// Requests `res` (once, or for one parent record) and hands each page's records to `emit`.
async fn run_endpoint(
    res: &Resource,
    parent_name: Option<&str>,
    parent: Option<&Value>,
    window: Option<&IncrementalWindow>,
    page_limit: Option<u64>,
    emit: &mut Emit,
) -> Result<u64> {
    let name = res.descriptor.name.as_str();
    let mut named = Map::new();
    let named_from_data: Vec<String> = res.resolve.iter().map(|(p, _, _)| p.clone()).collect();
    // legacy resolve params and static params fill `{name}` path placeholders
    for (k, v) in &res.endpoint.params {
        if !v.is_object() {
            named.insert(k.clone(), v.clone());
        }
    }
    if let Some(item) = parent {
        for (param, _res, field) in &res.resolve {
            let v = crate::select::find(item, field).cloned().ok_or_else(|| {
                Error::data(format!("resource `{name}`: the parent record has no field `{field}` (resolve param `{param}`)"))
            })?;
            named.insert(param.clone(), v);
        }
    }
    let ctx = Ctx {
        parent_name,
        parent,
        incremental: window,
        named: &named,
        named_from_data: &named_from_data,
    };
    let path = ctx.render_path(&res.path, name)?;
    let mut request = PageRequest {
        url: res.client.url(&path),
        method: res.endpoint.method.clone().unwrap_or_else(|| "GET".into()),
        ..Default::default()
    };
    for (k, v) in &res.endpoint.params {
        let placeholder_in_path = res.path.contains(&format!("{{{k}}}"));
        let special = v.get("type").and_then(Value::as_str).is_some();
        if placeholder_in_path || special {
            continue;
        }
        let v = ctx.render_value(v, name)?;
        if !v.is_null() {
            request.set_query(&ctx.render(k, name)?, value_text(&v));
        }
    }
    for (k, v) in &res.endpoint.headers {
        request
            .headers
            .push((ctx.render(k, name)?, ctx.render(v, name)?));
    }
    if let Some(j) = &res.endpoint.json {
        request.json = Some(ctx.render_value(j, name)?);
    }
    if let (Some(inc), Some(w)) = (&res.endpoint.incremental, window) {
        let start = w
            .start_value
            .clone()
            .or_else(|| w.spec.initial_value.clone());
        if let (Some(p), Some(v)) = (&inc.start_param, start) {
            request.set_query(p, value_text(&v));
        }
        if let (Some(p), Some(v)) = (&inc.end_param, w.end_value.clone()) {
            request.set_query(p, value_text(&v));
        }
    }
    let paginator = match &res.paginator {
        Some(p) => p.build()?,
        None => None,
    };
    let mut pager = res.client.pages(
        request,
        paginator,
        res.endpoint.data_selector.as_deref(),
        &res.endpoint.response_actions,
    );
    let mut pages = 0;
    while let Some(page) = pager.next_page().await? {
        pages += 1;
        let mut records = page.records;
        if let (Some(pn), Some(item)) = (parent_name, parent) {
            for f in &res.include_from_parent {
                let v = crate::select::find(item, f).cloned().ok_or_else(|| {
                    Error::data(format!("resource `{name}`: include_from_parent field `{f}` is missing in the `{pn}` record"))
                })?;
                for r in records.iter_mut() {
                    if let Value::Object(m) = r {
                        m.insert(format!("_{pn}_{f}"), v.clone());
                    }
                }
            }
        }
        emit(records).await?;
        if page_limit.is_some_and(|l| pages >= l) {
            break;
        }
    }
    Ok(pages)
}

/// How long a stream whose parent pages are shared waits for the other streams of its run to
/// open (the host opens them all within moments); then each walks on its own.
const JOIN_WAIT: std::time::Duration = std::time::Duration::from_secs(10);

/// What a stream gets from a walk.
enum Msg {
    Page(Vec<Value>),
    Done,
    Failed(Error),
}

/// How a stream starts: walking on its own, or reading a walk shared with other streams.
enum Start {
    Alone,
    Shared(mpsc::Receiver<Msg>),
}

/// A stream waiting for the other streams of its group.
struct Joined {
    name: String,
    window: Option<IncrementalWindow>,
    limit: Option<u64>,
    start: oneshot::Sender<Start>,
}

/// Groups of streams of one run that read one walk: by (run id, root resource).
#[derive(Default)]
struct Hub {
    waiting: HashMap<(String, String), (BTreeSet<String>, Vec<Joined>)>,
    /// groups given up on (a stream did not open in time): late streams walk on their own
    abandoned: HashSet<(String, String)>,
}

/// One walk of a tree of resources: every resource is requested once, and each page goes to the
/// stream of its resource (when one reads it) and, record by record, to the children that
/// lead to a stream (as dlt forks a parent's items to its transformers and its own table).
struct Walk {
    resources: Arc<IndexMap<String, Resource>>,
    /// the streams: resource -> (its incremental window, where its pages go)
    members: HashMap<String, (Option<IncrementalWindow>, mpsc::Sender<Msg>)>,
    limit: Option<u64>,
}

impl Walk {
    /// Whether a stream still reads `name`'s pages, or a child's that need them.
    fn needed(&self, name: &str) -> bool {
        self.members
            .get(name)
            .is_some_and(|(_, tx)| !tx.is_closed())
            || self
                .resources
                .values()
                .filter(|r| r.parent.as_deref() == Some(name))
                .any(|r| self.needed(&r.descriptor.name))
    }

    /// Requests `name` (once, or for one parent record) and hands on its pages.
    fn drive<'a>(
        &'a self,
        name: &'a str,
        parent: Option<(&'a str, &'a Value)>,
    ) -> BoxFut<'a, Result<()>> {
        Box::pin(async move {
            let res = self.resources.get(name).ok_or_else(|| {
                Error::not_found(format!("source `rest_api` has no resource `{name}`"))
            })?;
            let kids: Vec<&str> = self
                .resources
                .values()
                .filter(|r| r.parent.as_deref() == Some(name))
                .map(|r| r.descriptor.name.as_str())
                .collect();
            // a non-stream parent is walked without a window (every parent record)
            let window = self.members.get(name).and_then(|(w, _)| w.as_ref());
            // the pages stream into the children as they arrive: the next page is fetched
            // while the children of this one are requested (two pages held at most)
            let (tx, mut rx) = mpsc::channel::<Vec<Value>>(2);
            let producer = async move {
                let mut feed = move |recs: Vec<Value>| -> BoxFut<'static, Result<()>> {
                    let tx = tx.clone();
                    Box::pin(async move { tx.send(recs).await.map_err(|_| Error::cancelled()) })
                };
                run_endpoint(
                    res,
                    parent.map(|p| p.0),
                    parent.map(|p| p.1),
                    window,
                    self.limit,
                    &mut feed,
                )
                .await
            };
            // owns the receiver: when it stops, the producer's next send fails at once
            let consumer = async move {
                while let Some(page) = rx.recv().await {
                    if !self.needed(name) {
                        // every stream that wanted these pages is gone
                        return Ok(false);
                    }
                    for item in &page {
                        for kid in &kids {
                            if self.needed(kid) {
                                self.drive(kid, Some((name, item))).await?;
                            }
                        }
                    }
                    if let Some((_, out)) = self.members.get(name) {
                        // a stream that is gone no longer takes pages
                        let _ = out.send(Msg::Page(page)).await;
                    }
                }
                Ok::<bool, Error>(true)
            };
            let (p, c) = tokio::join!(producer, consumer);
            // a child's error first (the parent then only saw its channel close)
            if c? {
                p?;
            }
            Ok(())
        })
    }

    /// Walks from `root` and tells every stream how it ended.
    async fn run(self, root: String) {
        // a panic must reach every stream with its message, as one in a walk of its own does
        let end = match std::panic::AssertUnwindSafe(self.drive(&root, None))
            .catch_unwind()
            .await
        {
            Ok(end) => end,
            Err(payload) => {
                let what = payload
                    .downcast_ref::<&str>()
                    .map(|s| s.to_string())
                    .or_else(|| payload.downcast_ref::<String>().cloned())
                    .unwrap_or_else(|| "a panic".to_string());
                Err(Error::internal(format!(
                    "the rest_api walk of `{root}` and its children panicked: {what}"
                )))
            }
        };
        for (_, tx) in self.members.values() {
            let msg = match &end {
                Ok(()) => Msg::Done,
                Err(e) => Msg::Failed(e.clone()),
            };
            let _ = tx.send(msg).await;
        }
    }
}

impl RestApi {
    fn root_of<'a>(&'a self, mut name: &'a str) -> &'a str {
        // parents are defined before their children: no cycles
        while let Some(p) = self.resources.get(name).and_then(|r| r.parent.as_deref()) {
            name = p;
        }
        name
    }

    fn is_ancestor<'a>(&'a self, ancestor: &str, mut name: &'a str) -> bool {
        while let Some(p) = self.resources.get(name).and_then(|r| r.parent.as_deref()) {
            if p == ancestor {
                return true;
            }
            name = p;
        }
        false
    }

    /// The streams of `run` that read one walk with `name`'s: its root and their names, when
    /// there are two or more. A resource with an incremental cursor that is the parent of
    /// another stream keeps its own walk: its requests carry its window, while its children
    /// take every parent record (as when they run without it).
    fn shared_group(&self, name: &str, run: &[String]) -> Option<(String, BTreeSet<String>)> {
        let in_run: Vec<&str> = run
            .iter()
            .map(String::as_str)
            .filter(|r| self.resources.contains_key(*r))
            .collect();
        if !in_run.contains(&name) {
            return None;
        }
        let joins = |r: &str| {
            self.resources[r].descriptor.incremental.is_none()
                || !in_run.iter().any(|&d| self.is_ancestor(r, d))
        };
        if !joins(name) {
            return None;
        }
        let root = self.root_of(name);
        let members: BTreeSet<String> = in_run
            .iter()
            .filter(|&&r| joins(r) && self.root_of(r) == root)
            .map(|&r| r.to_string())
            .collect();
        (members.len() >= 2).then(|| (root.to_string(), members))
    }

    /// Joins the group of streams `request` belongs to; the last one to join starts the walk.
    fn join_group(
        &self,
        request: &ResourceRequest,
        ctx: &StreamContext,
    ) -> Option<(oneshot::Receiver<Start>, (String, String))> {
        let run_id = request.run_id.as_ref()?;
        let (root, expected) = self.shared_group(&request.resource, &request.run_resources)?;
        let key = (run_id.clone(), root.clone());
        let mut hub = self.hub.lock().unwrap_or_else(|p| p.into_inner());
        if hub.abandoned.contains(&key) {
            return None;
        }
        let (tx, rx) = oneshot::channel();
        let entry = hub
            .waiting
            .entry(key.clone())
            .or_insert_with(|| (expected, Vec::new()));
        if entry.1.iter().any(|j| j.name == request.resource) {
            // opened twice in one run: the second walks on its own
            return None;
        }
        entry.1.push(Joined {
            name: request.resource.clone(),
            window: request.incremental.clone(),
            limit: request.limit,
            start: tx,
        });
        if entry.1.len() == entry.0.len() {
            let (_, joined) = hub.waiting.remove(&key)?;
            let limit = joined.first().and_then(|j| j.limit);
            let mut members = HashMap::new();
            for j in joined {
                let (mtx, mrx) = mpsc::channel(2);
                members.insert(j.name, (j.window, mtx));
                let _ = j.start.send(Start::Shared(mrx));
            }
            tracing::debug!(target: "sluice::rest_api", root = %root, streams = members.len(), "one walk for the streams of a parent");
            let walk = Walk {
                resources: self.resources.clone(),
                members,
                limit,
            };
            ctx.runtime().spawn(walk.run(root));
        }
        Some((rx, key))
    }

    /// Waits for the group to start; a group not complete in time is given up: each of its
    /// streams walks on its own.
    async fn wait_for_group(
        hub: Arc<Mutex<Hub>>,
        mut rx: oneshot::Receiver<Start>,
        key: (String, String),
    ) -> Start {
        if let Ok(start) = tokio::time::timeout(JOIN_WAIT, &mut rx).await {
            return start.unwrap_or(Start::Alone);
        }
        {
            let mut hub = hub.lock().unwrap_or_else(|p| p.into_inner());
            if let Some((_, joined)) = hub.waiting.remove(&key) {
                tracing::debug!(target: "sluice::rest_api", root = %key.1, "not every stream of the run opened: each walks on its own");
                for j in joined {
                    let _ = j.start.send(Start::Alone);
                }
                hub.abandoned.insert(key);
            }
        }
        rx.await.unwrap_or(Start::Alone)
    }
}

impl Source for RestApi {
    fn describe(&self) -> Result<Vec<ResourceDescriptor>> {
        Ok(self
            .resources
            .values()
            .map(|r| r.descriptor.clone())
            .collect())
    }

    fn open_resource(&self, request: ResourceRequest, ctx: StreamContext) -> Result<BatchStream> {
        if !self.resources.contains_key(&request.resource) {
            return Err(Error::not_found(format!(
                "source `rest_api` has no resource `{}` (it has {})",
                request.resource,
                self.resources
                    .keys()
                    .cloned()
                    .collect::<Vec<_>>()
                    .join(", ")
            )));
        }
        let group = self.join_group(&request, &ctx);
        let hub = self.hub.clone();
        let resources = self.resources.clone();
        let root = self.root_of(&request.resource).to_string();
        Ok(
            ctx.spawn(Some(sluice_sdk::json_schema()), move |sink| async move {
                let start = match group {
                    Some((rx, key)) => Self::wait_for_group(hub, rx, key).await,
                    None => Start::Alone,
                };
                // a stream of its own: this resource's walk (through its parents) runs here
                let (mut rx, walk) = match start {
                    Start::Shared(rx) => (rx, None),
                    Start::Alone => {
                        let (tx, rx) = mpsc::channel(4);
                        let members = HashMap::from([(
                            request.resource.clone(),
                            (request.incremental.clone(), tx),
                        )]);
                        let walk = Walk {
                            resources,
                            members,
                            limit: request.limit,
                        };
                        (rx, Some(walk))
                    }
                };
                let producer = async move {
                    if let Some(w) = walk {
                        w.run(root).await;
                    }
                };
                // pages flow through small bounded channels into JSON batches (backpressure
                // end to end); dropping the receiver tells the walk this stream is gone
                let consumer = async move {
                    let mut docs = JsonBatchBuilder::new(1 << 20);
                    loop {
                        match rx.recv().await {
                            Some(Msg::Page(recs)) => {
                                for v in &recs {
                                    docs.push_value(v)?;
                                }
                                if docs.is_full() {
                                    sink.send(docs.finish()).await?;
                                }
                            }
                            Some(Msg::Done) => break,
                            Some(Msg::Failed(e)) => return Err(e),
                            None => {
                                return Err(Error::internal(format!(
                                    "resource `{}`: the walk of its pages stopped without an end",
                                    request.resource
                                )))
                            }
                        }
                    }
                    if !docs.is_empty() {
                        sink.send(docs.finish()).await?;
                    }
                    Ok::<(), Error>(())
                };
                let ((), c) = tokio::join!(producer, consumer);
                c?;
                Ok(None)
            }),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn data_values_in_paths_stay_one_segment() {
        assert_eq!(encode_segment("../../admin"), "..%2F..%2Fadmin");
        assert_eq!(encode_segment("https://evil/"), "https%3A%2F%2Fevil%2F");
        assert_eq!(encode_segment("a b?c#d%"), "a%20b%3Fc%23d%25");
        assert_eq!(encode_segment("owner-1_x.y~"), "owner-1_x.y~");
        assert_eq!(encode_segment("é"), "%C3%A9");
        let parent = json!({"id": "../../admin", "dots": "..", "n": 7});
        let named = Map::from_iter([("org".to_string(), json!("my/org"))]);
        let ctx = Ctx {
            parent_name: Some("p"),
            parent: Some(&parent),
            incremental: None,
            named: &named,
            named_from_data: &[],
        };
        assert_eq!(
            ctx.render_path("orgs/{org}/items/{resources.p.id}/n/{resources.p.n}", "c")
                .expect("path"),
            "orgs/my/org/items/..%2F..%2Fadmin/n/7",
            "config values as written, data values encoded"
        );
        let e = ctx
            .render_path("items/{resources.p.dots}/detail", "c")
            .expect_err("climbs");
        assert!(e.message.contains("climb"), "{e}");
        assert!(ctx.render_path("items/{resources.p.dots}x", "c").is_ok());
        // params (query values) are encoded by the HTTP client, not here
        assert_eq!(
            ctx.render("{resources.p.id}", "c").expect("text"),
            "../../admin"
        );
    }
}
