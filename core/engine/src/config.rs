//! Configuration as dlt resolves it (spec j): explicit values, then environment variables, then
//! `secrets.toml`, then `config.toml`, then the plugin's defaults; keys looked up from the most
//! specific section to the least (`<pipeline>.sources.<name>.<key>` → `sources.<name>.<key>` →
//! `sources.<key>` → `<key>`), every provider consulted for one path before the next path.
//!
//! The project folder is `.sluice/` (or a dlt project's `.dlt/` when `.sluice/` is absent).
//! Environment variables are the sections and key joined by `__`, upper-cased
//! (`SOURCES__GITHUB__ACCESS_TOKEN`, `DESTINATION__POSTGRES__CREDENTIALS__HOST`). Values that
//! look like numbers stay strings where the plugin declares a string (tokens, passwords).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde_json::{Map, Value};
use sluice_sdk::manifest::{ConfigKey, Manifest};

use crate::{Error, Result};

/// The placeholder `sluice init` writes; a value still equal to it counts as missing.
pub const PLACEHOLDER: &str = "<configure me>";

/// Where values come from.
#[derive(Debug, Clone, Default)]
pub struct Providers {
    env: BTreeMap<String, String>,
    secrets: Value,
    config: Value,
    secrets_path: Option<PathBuf>,
    config_path: Option<PathBuf>,
}

/// A resolved plugin configuration: the config and secrets objects the plugin gets.
#[derive(Debug, Clone, Default)]
pub struct Resolved {
    /// Non-secret values.
    pub config: Value,
    /// Secret values (never logged).
    pub secrets: Value,
}

fn read_toml(path: &Path) -> Result<Value> {
    let text = std::fs::read_to_string(path).map_err(|e| Error::io(path, e))?;
    let v: toml::Value = toml::from_str(&text)
        .map_err(|e| Error::config(format!("{}: {}", path.display(), e.to_string().trim_end())))?;
    serde_json::to_value(v).map_err(|e| Error::config(format!("{}: {e}", path.display())))
}

impl Providers {
    /// Reads the project's `.sluice/` (or `.dlt/`) in `project_dir` and the process environment.
    pub fn load(project_dir: &Path) -> Result<Self> {
        Self::load_with_env(project_dir, std::env::vars().collect())
    }

    /// Like [`Providers::load`] with an explicit environment (tests).
    pub fn load_with_env(project_dir: &Path, env: BTreeMap<String, String>) -> Result<Self> {
        let sluice = project_dir.join(".sluice");
        let dir = if sluice.is_dir() {
            sluice
        } else if project_dir.join(".dlt").is_dir() {
            project_dir.join(".dlt")
        } else {
            sluice
        };
        let mut p = Self {
            env,
            ..Default::default()
        };
        let secrets = dir.join("secrets.toml");
        if secrets.is_file() {
            p.secrets = read_toml(&secrets)?;
            p.secrets_path = Some(secrets);
        }
        let config = dir.join("config.toml");
        if config.is_file() {
            p.config = read_toml(&config)?;
            p.config_path = Some(config);
        }
        Ok(p)
    }

    /// Providers from in-memory documents (tests).
    pub fn from_parts(env: BTreeMap<String, String>, secrets: Value, config: Value) -> Self {
        Self {
            env,
            secrets,
            config,
            ..Default::default()
        }
    }

    /// A value at a path of sections and key, from one provider.
    fn toml_at<'a>(doc: &'a Value, path: &[String]) -> Option<&'a Value> {
        let mut cur = doc;
        for p in path {
            cur = cur.get(p)?;
        }
        Some(cur)
    }

    fn env_name(path: &[String]) -> String {
        path.iter()
            .map(|p| p.to_ascii_uppercase())
            .collect::<Vec<_>>()
            .join("__")
    }

    /// The value of `path` from the environment: the variable itself, or (for tables) the
    /// variables below it (`..__CREDENTIALS__HOST`).
    fn env_at(&self, path: &[String]) -> Option<Value> {
        let name = Self::env_name(path);
        if let Some(v) = self.env.get(&name) {
            return Some(Value::String(v.clone()));
        }
        let prefix = format!("{name}__");
        let mut table = Map::new();
        for (k, v) in self.env.range(prefix.clone()..) {
            let Some(rest) = k.strip_prefix(&prefix) else {
                break;
            };
            let mut cur = &mut table;
            let parts: Vec<String> = rest.split("__").map(str::to_ascii_lowercase).collect();
            for (i, part) in parts.iter().enumerate() {
                if i + 1 == parts.len() {
                    cur.insert(part.clone(), Value::String(v.clone()));
                } else {
                    let next = cur
                        .entry(part.clone())
                        .or_insert_with(|| Value::Object(Map::new()));
                    if !next.is_object() {
                        *next = Value::Object(Map::new());
                    }
                    cur = next.as_object_mut().expect("object");
                }
            }
        }
        (!table.is_empty()).then_some(Value::Object(table))
    }

    /// Resolves the config and secrets of a plugin.
    ///
    /// `kind` is `sources` or `destination`; `explicit` are values given in the pipeline file
    /// (they win); `pipeline` is the pipeline name (its sections are tried first). A missing
    /// required value gives one error listing every key and variable that was tried.
    pub fn resolve(
        &self,
        manifest: &Manifest,
        kind: &str,
        section: &str,
        pipeline: Option<&str>,
        explicit_config: &Value,
        explicit_secrets: &Value,
    ) -> Result<Resolved> {
        let mut out = Resolved {
            config: Value::Object(Map::new()),
            secrets: Value::Object(Map::new()),
        };
        let mut missing: Vec<String> = Vec::new();
        let secret_names: Vec<&str> = manifest.secrets.iter().map(|k| k.key.as_str()).collect();
        for (keys, is_secret) in [(&manifest.config, false), (&manifest.secrets, true)] {
            for key in keys {
                let explicit = if is_secret {
                    explicit_secrets
                } else {
                    explicit_config
                };
                let both = !is_secret && secret_names.contains(&key.key.as_str());
                let found = match explicit.get(&key.key).filter(|v| !is_missing(v)) {
                    Some(v) => Some(v.clone()),
                    None => self.lookup(key, kind, section, pipeline, is_secret, both)?,
                };
                let target = if is_secret {
                    &mut out.secrets
                } else {
                    &mut out.config
                };
                match found {
                    Some(v) => {
                        let v = convert(key, v, kind, section)?;
                        target
                            .as_object_mut()
                            .expect("object")
                            .insert(key.key.clone(), v);
                    }
                    None if key.required && key.default.is_none() => {
                        missing.push(self.tried(key, kind, section, pipeline, is_secret));
                    }
                    None => {}
                }
            }
        }
        // explicit keys the manifest does not declare pass through (plugins may accept more)
        for (explicit, target) in [
            (explicit_config, &mut out.config),
            (explicit_secrets, &mut out.secrets),
        ] {
            if let (Some(e), Some(t)) = (explicit.as_object(), target.as_object_mut()) {
                for (k, v) in e {
                    t.entry(k.clone()).or_insert_with(|| v.clone());
                }
            }
        }
        if !missing.is_empty() {
            let what = if kind == "sources" {
                "source"
            } else {
                "destination"
            };
            return Err(Error::config(format!(
                "missing configuration for {what} `{section}`:\n{}\nhint: set them in {}, {} or the environment, or run `sluice init`",
                missing.join("\n"),
                self.secrets_path.as_deref().map_or(".sluice/secrets.toml".into(), |p| p.display().to_string()),
                self.config_path.as_deref().map_or(".sluice/config.toml".into(), |p| p.display().to_string()),
            )));
        }
        Ok(out)
    }

    fn paths(key: &str, kind: &str, section: &str, pipeline: Option<&str>) -> Vec<Vec<String>> {
        let mut bases: Vec<Vec<String>> = vec![
            vec![kind.into(), section.into(), key.into()],
            vec![kind.into(), key.into()],
        ];
        if kind == "sources" {
            bases.push(vec![key.into()]);
        }
        let mut out = Vec::new();
        for b in bases {
            if let Some(p) = pipeline {
                let mut with = vec![p.to_string()];
                with.extend(b.iter().cloned());
                out.push(with);
            }
            out.push(b);
        }
        out
    }

    fn lookup(
        &self,
        key: &ConfigKey,
        kind: &str,
        section: &str,
        pipeline: Option<&str>,
        is_secret: bool,
        also_secret: bool,
    ) -> Result<Option<Value>> {
        for path in Self::paths(&key.key, kind, section, pipeline) {
            // a key with a secret part too (`credentials`): its config side takes only
            // config.toml, so values from the environment and secrets.toml stay secrets
            if !also_secret {
                if let Some(v) = self.env_at(&path).filter(|v| !is_missing(v)) {
                    return Ok(Some(v));
                }
            }
            if is_secret {
                if let Some(v) = Self::toml_at(&self.secrets, &path).filter(|v| !is_missing(v)) {
                    return Ok(Some(v.clone()));
                }
            }
            if let Some(v) = Self::toml_at(&self.config, &path).filter(|v| !is_missing(v)) {
                if is_secret {
                    return Err(Error::config(format!(
                        "`{}` in {} is a secret: move it to secrets.toml (or an environment variable)",
                        path.join("."),
                        self.config_path.as_deref().map_or("config.toml".into(), |p| p.display().to_string())
                    )));
                }
                return Ok(Some(v.clone()));
            }
        }
        Ok(None)
    }

    fn tried(
        &self,
        key: &ConfigKey,
        kind: &str,
        section: &str,
        pipeline: Option<&str>,
        is_secret: bool,
    ) -> String {
        let paths = Self::paths(&key.key, kind, section, pipeline);
        let keys: Vec<String> = paths.iter().map(|p| p.join(".")).collect();
        let envs: Vec<String> = paths.iter().map(|p| Self::env_name(p)).collect();
        format!(
            "  `{}`{} ({}): tried keys {} in {}; environment variables {}",
            key.key,
            if key.description.is_empty() {
                String::new()
            } else {
                format!(" — {}", key.description)
            },
            if is_secret { "secret" } else { "config" },
            keys.join(", "),
            if is_secret {
                "secrets.toml"
            } else {
                "secrets.toml and config.toml"
            },
            envs.join(", ")
        )
    }
}

fn is_missing(v: &Value) -> bool {
    match v {
        Value::Null => true,
        Value::String(s) => s.trim() == PLACEHOLDER,
        _ => false,
    }
}

/// Converts a provider value (environment values are strings) to the declared type.
fn convert(key: &ConfigKey, v: Value, kind: &str, section: &str) -> Result<Value> {
    let Value::String(s) = &v else { return Ok(v) };
    let bad = |ty: &str| {
        Error::config(format!(
            "`{}` of {} `{section}` must be {ty}, got `{}`",
            key.key,
            if kind == "sources" {
                "source"
            } else {
                "destination"
            },
            // only short scalar values are shown: a string given where a table was expected may
            // be a connection string with its password
            if matches!(key.ty.as_str(), "integer" | "number" | "boolean") {
                s.as_str()
            } else {
                "..."
            }
        ))
    };
    let accepts_string = key.ty == "string" || key.also.iter().any(|t| t == "string");
    Ok(match key.ty.as_str() {
        "string" => v,
        "integer" => s
            .trim()
            .parse::<i64>()
            .map(Value::from)
            .map_err(|_| bad("an integer"))?,
        "number" => s
            .trim()
            .parse::<f64>()
            .ok()
            .and_then(|f| serde_json::Number::from_f64(f).map(Value::Number))
            .ok_or_else(|| bad("a number"))?,
        "boolean" => match s.trim().to_ascii_lowercase().as_str() {
            "true" | "1" | "yes" | "on" => Value::Bool(true),
            "false" | "0" | "no" | "off" => Value::Bool(false),
            _ => return Err(bad("true or false")),
        },
        "array" | "object" => match parse_literal(s) {
            Some(p) if (key.ty == "array") == p.is_array() && (p.is_array() || p.is_object()) => p,
            _ if accepts_string => v,
            _ => {
                return Err(bad(if key.ty == "array" {
                    "a list"
                } else {
                    "a table"
                }))
            }
        },
        // `any`: TOML/JSON literals for lists and tables, the text otherwise
        _ => match parse_literal(s) {
            Some(p) if p.is_array() || p.is_object() => p,
            _ => v,
        },
    })
}

/// A JSON or TOML inline literal (`{"a": 1}`, `[1, 2]`, `{ a = 1 }`).
fn parse_literal(s: &str) -> Option<Value> {
    let t = s.trim();
    if !(t.starts_with('{') || t.starts_with('[')) {
        return None;
    }
    if let Ok(v) = serde_json::from_str::<Value>(t) {
        return Some(v);
    }
    let doc: toml::Value = toml::from_str(&format!("v = {t}")).ok()?;
    serde_json::to_value(doc.get("v")?).ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn manifest() -> Manifest {
        Manifest::from_toml(
            r#"
name = "github"
kind = "source"
[[config]]
key = "owner"
required = true
[[config]]
key = "per_page"
type = "integer"
default = 100
[[config]]
key = "credentials"
type = "object"
[[secrets]]
key = "access_token"
required = true
[[secrets]]
key = "credentials"
type = "object"
"#,
        )
        .expect("manifest")
    }

    fn env(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn precedence_env_over_secrets_over_config_and_section_fallback() {
        let p = Providers::from_parts(
            env(&[("SOURCES__GITHUB__ACCESS_TOKEN", "0123")]),
            json!({"sources": {"github": {"access_token": "from-secrets"}}}),
            json!({"sources": {"owner": "dlt-hub", "github": {"per_page": 50}}}),
        );
        let r = p
            .resolve(
                &manifest(),
                "sources",
                "github",
                None,
                &json!({}),
                &json!({}),
            )
            .expect("resolve");
        // a token that looks like a number stays a string
        assert_eq!(r.secrets["access_token"], json!("0123"));
        // `sources.owner` found after `sources.github.owner` missed
        assert_eq!(r.config["owner"], json!("dlt-hub"));
        assert_eq!(r.config["per_page"], json!(50));
        // the pipeline-name section wins over the plain one; env integers are parsed
        let p = Providers::from_parts(
            env(&[
                ("MYPIPE__SOURCES__GITHUB__PER_PAGE", "7"),
                ("SOURCES__GITHUB__PER_PAGE", "9"),
            ]),
            json!({"sources": {"github": {"access_token": "t"}}}),
            json!({"sources": {"github": {"owner": "o"}}}),
        );
        let r = p
            .resolve(
                &manifest(),
                "sources",
                "github",
                Some("mypipe"),
                &json!({}),
                &json!({}),
            )
            .expect("resolve");
        assert_eq!(r.config["per_page"], json!(7));
        // explicit values (the pipeline file) win
        let r = p
            .resolve(
                &manifest(),
                "sources",
                "github",
                Some("mypipe"),
                &json!({"per_page": 3}),
                &json!({}),
            )
            .expect("resolve");
        assert_eq!(r.config["per_page"], json!(3));
    }

    #[test]
    fn tables_from_env_parts_and_secret_placement() {
        let p = Providers::from_parts(
            env(&[
                ("SOURCES__GITHUB__CREDENTIALS__AWS_ACCESS_KEY_ID", "AKIA"),
                (
                    "SOURCES__GITHUB__CREDENTIALS__AWS_SECRET_ACCESS_KEY",
                    "s3cr3t",
                ),
            ]),
            json!({"sources": {"github": {"access_token": "t"}}}),
            json!({"sources": {"github": {"owner": "o", "credentials": {"endpoint_url": "http://x"}}}}),
        );
        let r = p
            .resolve(
                &manifest(),
                "sources",
                "github",
                None,
                &json!({}),
                &json!({}),
            )
            .expect("resolve");
        assert_eq!(
            r.secrets["credentials"],
            json!({"aws_access_key_id": "AKIA", "aws_secret_access_key": "s3cr3t"})
        );
        // the config part of the same key comes from config.toml only
        assert_eq!(r.config["credentials"], json!({"endpoint_url": "http://x"}));
        // a secret in config.toml is refused
        let p = Providers::from_parts(
            BTreeMap::new(),
            json!({}),
            json!({"sources": {"github": {"owner": "o", "access_token": "leak"}}}),
        );
        let e = p
            .resolve(
                &manifest(),
                "sources",
                "github",
                None,
                &json!({}),
                &json!({}),
            )
            .expect_err("secret in config");
        assert!(e.to_string().contains("is a secret"), "{e}");
        assert!(!e.to_string().contains("leak"));
    }

    #[test]
    fn missing_values_list_every_key_and_variable_tried() {
        let p = Providers::from_parts(
            BTreeMap::new(),
            json!({"sources": {"github": {"access_token": PLACEHOLDER}}}),
            json!({}),
        );
        let e = p
            .resolve(
                &manifest(),
                "sources",
                "github",
                Some("gh"),
                &json!({}),
                &json!({}),
            )
            .expect_err("missing")
            .to_string();
        for needle in [
            "`owner`",
            "`access_token`",
            "gh.sources.github.owner",
            "sources.github.owner",
            "SOURCES__GITHUB__ACCESS_TOKEN",
            "GH__SOURCES__GITHUB__ACCESS_TOKEN",
            "SOURCES__ACCESS_TOKEN",
            "ACCESS_TOKEN",
        ] {
            assert!(e.contains(needle), "{needle} not in {e}");
        }
    }

    #[test]
    fn typed_env_values_are_checked() {
        let p = Providers::from_parts(
            env(&[
                ("SOURCES__GITHUB__PER_PAGE", "many"),
                ("SOURCES__GITHUB__OWNER", "o"),
                ("SOURCES__GITHUB__ACCESS_TOKEN", "t"),
            ]),
            json!({}),
            json!({}),
        );
        let e = p
            .resolve(
                &manifest(),
                "sources",
                "github",
                None,
                &json!({}),
                &json!({}),
            )
            .expect_err("bad int")
            .to_string();
        assert!(e.contains("per_page") && e.contains("integer"), "{e}");
    }
}
