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

use serde::{Deserialize, Serialize};
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

/// A plugin manifest as the plugin author writes it (plus what the build adds).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Manifest {
    /// Plugin name: the word on the command line.
    pub name: String,
    /// `source` or `destination`.
    pub kind: String,
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
    /// Parses a manifest template (TOML).
    pub fn from_toml(text: &str) -> Result<Self> {
        toml::from_str(text).map_err(|e| Error::config(format!("invalid plugin manifest: {e}")))
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
}
