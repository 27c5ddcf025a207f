//! The plugin manifest: what a plugin is and which configuration it takes.
//!
//! A plugin's folder holds `sluice-plugin.toml`, written by its author:
//!
//! ```toml
//! name = "github"
//! kind = "source"
//! description = "GitHub issues, pull requests, comments, ..."
//!
//! [[config]]
//! key = "owner"
//! type = "string"
//! required = true
//! description = "Repository owner"
//!
//! [[secrets]]
//! key = "access_token"
//! type = "string"
//! description = "A GitHub token (optional for public data)"
//! ```
//!
//! The plugin's build script copies it next to the compiled library (adding the version, the
//! ABI and the library path), so the registry and `sluice init` read it without loading code;
//! the plugin embeds the same file and returns it from `manifest_json`, with JSON Schemas of
//! its config and secrets generated from the key lists.
//!
//! [`Manifest`] is that file as the author writes it, and the one type every reader of it
//! uses: the plugin validates its config with it, and the registry's `PluginManifest` (the
//! installed copy) is a [`Manifest`] plus what the build adds and where the file was found.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::{json, Map, Value};

use crate::{Error, Result};

/// One configuration key of a plugin.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ConfigKey {
    /// Key name; dots nest (`credentials.host`).
    pub key: String,
    /// JSON type: `string`, `integer`, `number`, `boolean`, `array`, `object`, or `any`.
    #[serde(rename = "type", default = "default_type")]
    pub ty: String,
    /// Whether the key must be given.
    #[serde(default)]
    pub required: bool,
    /// Default value.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub default: Option<Value>,
    /// Example value for scaffolds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub example: Option<Value>,
    /// What the key means (becomes a comment in `sluice init` scaffolds).
    #[serde(default)]
    pub description: String,
    /// Types accepted besides `type` (e.g. a connection string or a table of fields).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub also: Vec<String>,
}

fn default_type() -> String {
    "string".into()
}

/// What a plugin is: the `kind` of its manifest, and the first word of its config sections.
///
/// Written `"source"` or `"destination"` (in TOML, JSON and messages alike):
///
/// ```
/// use sluice_sdk::manifest::PluginKind;
///
/// assert_eq!("destination".parse::<PluginKind>().unwrap(), PluginKind::Destination);
/// assert_eq!(PluginKind::Source.to_string(), "source");
/// assert_eq!(
///     "sink".parse::<PluginKind>().unwrap_err().to_string(),
///     "kind must be `source` or `destination`, got `sink`"
/// );
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum PluginKind {
    /// Reads data: implements [`Source`](crate::Source).
    Source,
    /// Loads data: implements [`Destination`](crate::Destination).
    Destination,
}

impl PluginKind {
    /// Every kind, in the order messages list them.
    pub const ALL: [PluginKind; 2] = [PluginKind::Source, PluginKind::Destination];

    /// The kind as written in manifests: `source` or `destination`.
    pub fn as_str(self) -> &'static str {
        match self {
            PluginKind::Source => "source",
            PluginKind::Destination => "destination",
        }
    }
}

impl fmt::Display for PluginKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A `kind` that is not one of [`PluginKind::ALL`]; its message names the accepted values.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnknownKind(
    /// The kind that was given.
    pub String,
);

impl fmt::Display for UnknownKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let accepted: Vec<String> = PluginKind::ALL.iter().map(|k| format!("`{k}`")).collect();
        write!(
            f,
            "kind must be {}, got `{}`",
            accepted.join(" or "),
            self.0
        )
    }
}

impl std::error::Error for UnknownKind {}

impl From<UnknownKind> for Error {
    fn from(e: UnknownKind) -> Self {
        Error::config(e.to_string())
    }
}

impl FromStr for PluginKind {
    type Err = UnknownKind;

    fn from_str(s: &str) -> std::result::Result<Self, UnknownKind> {
        PluginKind::ALL
            .into_iter()
            .find(|k| k.as_str() == s)
            .ok_or_else(|| UnknownKind(s.to_string()))
    }
}

impl TryFrom<&str> for PluginKind {
    type Error = UnknownKind;

    fn try_from(s: &str) -> std::result::Result<Self, UnknownKind> {
        s.parse()
    }
}

impl Serialize for PluginKind {
    fn serialize<S: Serializer>(&self, serializer: S) -> std::result::Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for PluginKind {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> std::result::Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

/// A plugin manifest as the plugin author writes it (`sluice-plugin.toml`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Manifest {
    /// Plugin name: the word on the command line.
    pub name: String,
    /// Source or destination.
    pub kind: PluginKind,
    /// Plugin version.
    #[serde(default)]
    pub version: String,
    /// One-line description.
    #[serde(default)]
    pub description: String,
    /// Configuration keys.
    #[serde(default)]
    pub config: Vec<ConfigKey>,
    /// Secret keys.
    #[serde(default)]
    pub secrets: Vec<ConfigKey>,
}

impl Manifest {
    /// Parses a manifest (TOML): the template, or the installed copy (whose extra keys the
    /// registry reads; they are ignored here).
    pub fn from_toml(text: &str) -> Result<Self> {
        toml::from_str(text).map_err(|e| {
            Error::config(format!("invalid plugin manifest (sluice-plugin.toml): {e}"))
        })
    }

    /// JSON Schema of an object with `keys`.
    pub fn json_schema(keys: &[ConfigKey]) -> Value {
        let mut root = Map::new();
        root.insert("type".into(), json!("object"));
        let mut props = Map::new();
        let mut required = Vec::new();
        for k in keys {
            let mut path = k.key.split('.').peekable();
            let mut props_at = &mut props;
            let mut required_at = Some(&mut required);
            while let Some(part) = path.next() {
                if path.peek().is_none() {
                    let mut prop = Map::new();
                    if k.ty != "any" {
                        let mut types = vec![Value::from(k.ty.clone())];
                        types.extend(k.also.iter().cloned().map(Value::from));
                        prop.insert(
                            "type".into(),
                            if types.len() == 1 {
                                types.remove(0)
                            } else {
                                Value::Array(types)
                            },
                        );
                    }
                    if !k.description.is_empty() {
                        prop.insert("description".into(), json!(k.description));
                    }
                    if let Some(d) = &k.default {
                        prop.insert("default".into(), d.clone());
                    }
                    props_at.insert(part.to_string(), Value::Object(prop));
                    if k.required {
                        if let Some(r) = required_at.take() {
                            r.push(Value::from(part));
                        }
                    }
                } else {
                    let entry = props_at
                        .entry(part.to_string())
                        .or_insert_with(|| json!({"type": ["object", "string"], "properties": {}}));
                    required_at = None;
                    let Some(obj) = entry.as_object_mut() else {
                        break;
                    };
                    let Some(Value::Object(p)) = obj.get_mut("properties") else {
                        break;
                    };
                    props_at = p;
                }
            }
        }
        root.insert("properties".into(), Value::Object(props));
        if !required.is_empty() {
            root.insert("required".into(), Value::Array(required));
        }
        Value::Object(root)
    }

    /// The manifest as the plugin's `manifest_json` returns it.
    pub fn to_json(&self) -> Value {
        json!({
            "manifest_version": 1,
            "name": self.name,
            "kind": self.kind,
            "version": self.version,
            "description": self.description,
            "abi": {"major": sluice_abi::ABI_MAJOR, "minor": sluice_abi::ABI_MINOR},
            "config": self.config,
            "secrets": self.secrets,
            "config_schema": Self::json_schema(&self.config),
            "secrets_schema": Self::json_schema(&self.secrets),
        })
    }
}

/// Checks `value` (a JSON object) against `keys`: required keys present and types right.
/// Unknown keys are allowed (forward compatibility). `what` names the thing in messages, e.g.
/// ``config of source `github` ``.
pub fn validate(keys: &[ConfigKey], value: &Value, what: &str) -> Result<()> {
    let empty = Map::new();
    let obj = match value {
        Value::Object(m) => m,
        Value::Null => &empty,
        other => {
            return Err(Error::config(format!(
                "{what} must be an object, got `{}`",
                type_name(other)
            )))
        }
    };
    for k in keys {
        let found = lookup(obj, &k.key);
        match found {
            None | Some(Value::Null) => {
                if k.required && k.default.is_none() {
                    return Err(Error::config(format!(
                        "missing `{}` in {what}{}",
                        k.key,
                        if k.description.is_empty() {
                            String::new()
                        } else {
                            format!(" ({})", k.description)
                        }
                    )));
                }
            }
            Some(v) => {
                let accepted: Vec<&str> = std::iter::once(k.ty.as_str())
                    .chain(k.also.iter().map(String::as_str))
                    .collect();
                if !accepted.iter().any(|t| type_matches(t, v)) {
                    return Err(Error::config(format!(
                        "`{}` in {what} must be {}, got {}",
                        k.key,
                        accepted.join(" or "),
                        type_name(v)
                    )));
                }
            }
        }
    }
    Ok(())
}

fn lookup<'a>(obj: &'a Map<String, Value>, dotted: &str) -> Option<&'a Value> {
    let mut current: Option<&Value> = None;
    let mut map = obj;
    for part in dotted.split('.') {
        let v = map.get(part)?;
        current = Some(v);
        match v {
            Value::Object(m) => map = m,
            // a connection string standing for a table of fields
            _ => {
                if !dotted.ends_with(part) {
                    return None;
                }
            }
        }
    }
    current
}

fn type_matches(ty: &str, v: &Value) -> bool {
    match ty {
        "any" => true,
        "string" => v.is_string(),
        "integer" => v.is_i64() || v.is_u64(),
        "number" => v.is_number(),
        "boolean" => v.is_boolean(),
        "array" => v.is_array(),
        "object" => v.is_object(),
        _ => true,
    }
}

fn type_name(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(n) if n.is_f64() => "a number",
        Value::Number(_) => "an integer",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "a table",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TEMPLATE: &str = r#"
name = "demo"
kind = "source"
description = "demo source"

[[config]]
key = "owner"
required = true
description = "repository owner"

[[config]]
key = "credentials.host"
default = "localhost"

[[config]]
key = "items_per_page"
type = "integer"
default = 100

[[secrets]]
key = "access_token"
"#;

    #[test]
    fn parses_and_generates_schemas() {
        let m = Manifest::from_toml(TEMPLATE).expect("manifest");
        assert_eq!(m.name, "demo");
        let schema = Manifest::json_schema(&m.config);
        assert_eq!(schema["required"], json!(["owner"]));
        assert_eq!(schema["properties"]["items_per_page"]["type"], "integer");
        assert_eq!(
            schema["properties"]["credentials"]["properties"]["host"]["default"],
            "localhost"
        );
        assert_eq!(m.to_json()["abi"]["major"], sluice_abi::ABI_MAJOR);
    }

    #[test]
    fn validates_required_keys_and_types() {
        let m = Manifest::from_toml(TEMPLATE).expect("manifest");
        let err = validate(&m.config, &json!({}), "config of source `demo`").expect_err("missing");
        assert_eq!(
            err.message,
            "missing `owner` in config of source `demo` (repository owner)"
        );
        let err = validate(
            &m.config,
            &json!({"owner": "o", "items_per_page": "x"}),
            "config",
        )
        .expect_err("type");
        assert!(err
            .message
            .contains("`items_per_page` in config must be integer, got a string"));
        validate(&m.config, &json!({"owner": "o", "unknown": 1}), "config").expect("ok");
    }

    #[test]
    fn plugin_kinds_parse_and_print_as_written_in_manifests() {
        for kind in PluginKind::ALL {
            assert_eq!(kind.as_str().parse::<PluginKind>(), Ok(kind));
            assert_eq!(json!(kind), json!(kind.to_string()));
        }
        assert_eq!(PluginKind::try_from("source"), Ok(PluginKind::Source));
        let m = Manifest::from_toml(TEMPLATE).expect("manifest");
        assert_eq!(m.kind, PluginKind::Source);
        assert_eq!(m.to_json()["kind"], "source");
    }

    #[test]
    fn unknown_plugin_kinds_name_the_accepted_values() {
        for bad in ["sink", "Source", "sources", ""] {
            let err = bad.parse::<PluginKind>().expect_err(bad);
            assert_eq!(
                err.to_string(),
                format!("kind must be `source` or `destination`, got `{bad}`")
            );
        }
        let err = Manifest::from_toml("name = \"x\"\nkind = \"sink\"\n").expect_err("kind");
        assert!(
            err.message
                .starts_with("invalid plugin manifest (sluice-plugin.toml): "),
            "{}",
            err.message
        );
        assert!(
            err.message
                .contains("kind must be `source` or `destination`, got `sink`"),
            "{}",
            err.message
        );
        let err = serde_json::from_value::<PluginKind>(json!(7)).expect_err("not a string");
        assert!(err.to_string().contains("expected a string"), "{err}");
    }
}
