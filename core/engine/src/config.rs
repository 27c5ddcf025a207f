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
///
/// Its `Debug` output shows the files and the shape of each document, never a value: every
/// value of secrets.toml and the environment, and every string of config.toml, is `***`.
#[derive(Clone, Default)]
pub struct Providers {
    env: BTreeMap<String, String>,
    secrets: Value,
    config: Value,
    secrets_path: Option<PathBuf>,
    config_path: Option<PathBuf>,
}

/// A resolved plugin configuration: the config and secrets objects the plugin gets.
///
/// Its `Debug` output shows the config with its strings masked and only the keys of the secrets.
#[derive(Clone, Default)]
pub struct Resolved {
    /// Non-secret values.
    pub config: Value,
    /// Secret values (never logged).
    pub secrets: Value,
}

/// `value` with every leaf replaced by `***` (`all`), or only every string (`!all`).
fn masked(value: &Value, all: bool) -> Value {
    match value {
        Value::Object(m) => {
            Value::Object(m.iter().map(|(k, v)| (k.clone(), masked(v, all))).collect())
        }
        Value::Array(a) => Value::Array(a.iter().map(|v| masked(v, all)).collect()),
        Value::String(_) => Value::String("***".into()),
        other if all && !other.is_null() => Value::String("***".into()),
        other => other.clone(),
    }
}

impl std::fmt::Debug for Providers {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Providers")
            .field(
                "env",
                &format_args!("<{} variables, values hidden>", self.env.len()),
            )
            .field("secrets_path", &self.secrets_path)
            .field("secrets", &masked(&self.secrets, true))
            .field("config_path", &self.config_path)
            .field("config", &masked(&self.config, false))
            .finish()
    }
}

impl std::fmt::Debug for Resolved {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Resolved")
            .field("config", &masked(&self.config, false))
            .field("secrets", &masked(&self.secrets, true))
            .finish()
    }
}

/// Where in `text` the byte offset `at` is: 1-based line and column (in characters).
fn line_column(text: &str, at: usize) -> (usize, usize) {
    let mut at = at.min(text.len());
    while !text.is_char_boundary(at) {
        at -= 1;
    }
    let before = &text[..at];
    let line = before.matches('\n').count() + 1;
    let column = before
        .rsplit_once('\n')
        .map_or(before, |(_, l)| l)
        .chars()
        .count()
        + 1;
    (line, column)
}

/// What a TOML parser error says went wrong, with no text of the document: the parser's message
/// (never its quote of the source line) on one line, where every backquoted part that is not a
/// plain key name or a short token is masked.
fn error_kind(message: &str) -> String {
    let keep = |quoted: &str| {
        (!quoted.is_empty()
            && quoted.len() <= 64
            && quoted
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.')))
            || (quoted.len() <= 4 && quoted.chars().all(|c| c.is_ascii_punctuation()))
    };
    let mut out = String::new();
    for line in message.lines().map(str::trim).filter(|l| !l.is_empty()) {
        if !out.is_empty() {
            out.push_str("; ");
        }
        for (i, part) in line.split('`').enumerate() {
            if i % 2 == 0 {
                out.push_str(part);
            } else {
                out.push('`');
                out.push_str(if keep(part) { part } else { "..." });
                out.push('`');
            }
        }
    }
    if out.is_empty() {
        "invalid TOML".into()
    } else {
        out
    }
}

/// Reads a TOML provider file. A syntax error names the file, the line and column and what is
/// wrong, but never shows the line: in secrets.toml it may hold a secret (the parser's own
/// message quotes the source line).
fn read_toml(path: &Path) -> Result<Value> {
    let text = std::fs::read_to_string(path).map_err(|e| Error::io(path, e))?;
    let v: toml::Value = toml::from_str(&text).map_err(|e| {
        let at = match e.span() {
            Some(span) => {
                let (line, column) = line_column(&text, span.start);
                format!(" at line {line}, column {column}")
            }
            None => String::new(),
        };
        Error::config(format!(
            "{}: invalid TOML{at}: {}\nhint: the line is not shown, as the file may hold secrets",
            path.display(),
            error_kind(e.message())
        ))
    })?;
    serde_json::to_value(v).map_err(|_| {
        Error::config(format!(
            "{}: a value cannot be represented as JSON",
            path.display()
        ))
    })
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
                        let v = convert(key, v, kind, section, is_secret)?;
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
fn convert(key: &ConfigKey, v: Value, kind: &str, section: &str, is_secret: bool) -> Result<Value> {
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
            // only short scalar values of config keys are shown: a string given where a table
            // was expected may be a connection string with its password, and a secret is never
            // shown
            if !is_secret && matches!(key.ty.as_str(), "integer" | "number" | "boolean") {
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

    #[test]
    fn debug_output_hides_every_secret_and_env_value() {
        let p = Providers::from_parts(
            env(&[("SOURCES__GITHUB__ACCESS_TOKEN", "env-canary-1")]),
            json!({"sources": {"github": {"access_token": "toml-canary-2", "pin": 4242}}}),
            json!({"sources": {"github": {"owner": "o", "dsn": "postgresql://u:cfg-canary-3@h/db", "per_page": 50}}}),
        );
        let text = format!("{p:?} {p:#?}");
        for canary in ["env-canary-1", "toml-canary-2", "4242", "cfg-canary-3"] {
            assert!(!text.contains(canary), "{canary} in {text}");
        }
        // the shape stays visible for debugging
        assert!(
            text.contains("access_token") && text.contains("per_page") && text.contains("50"),
            "{text}"
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
        let text = format!("{r:?} {r:#?}");
        assert!(!text.contains("env-canary-1"), "{text}");
        assert!(text.contains("access_token"), "{text}");
    }

    #[test]
    fn a_secret_of_the_wrong_type_is_not_shown() {
        let m = Manifest::from_toml(
            "name = \"x\"\nkind = \"source\"\n[[secrets]]\nkey = \"pin\"\ntype = \"integer\"\n",
        )
        .expect("manifest");
        let p = Providers::from_parts(
            env(&[("SOURCES__X__PIN", "pin-canary")]),
            json!({}),
            json!({}),
        );
        let e = p
            .resolve(&m, "sources", "x", None, &json!({}), &json!({}))
            .expect_err("not an integer")
            .to_string();
        assert!(e.contains("`pin`") && !e.contains("pin-canary"), "{e}");
    }

    #[test]
    fn a_syntax_error_names_the_place_but_never_shows_the_line() {
        let cases: &[(&str, &str, (usize, usize))] = &[
            // an unterminated string: the toml crate would quote the whole line
            (
                "[sources.github]\naccess_token = \"canary-unterminated\n",
                "canary-unterminated",
                (2, 36),
            ),
            // a bare value
            (
                "[destination.postgres]\npassword = canary-bare-value\n",
                "canary-bare-value",
                (2, 12),
            ),
            // a secret pasted on a line of its own
            ("\n\ncanary-pasted-line\n", "canary-pasted-line", (3, 19)),
            // a duplicate key: the key is named, the values are not
            (
                "token = \"canary-first\"\ntoken = \"canary-second\"\n",
                "canary-",
                (2, 1),
            ),
            // a connection string as a quoted key
            (
                "\"postgresql://u:canary-key-pw@h/db\" = 1\n\"postgresql://u:canary-key-pw@h/db\" = 2\n",
                "canary-key-pw",
                (2, 1),
            ),
        ];
        for (text, canary, (line, column)) in cases {
            for file in ["secrets.toml", "config.toml"] {
                let dir = tempfile::tempdir().expect("tmp");
                std::fs::create_dir_all(dir.path().join(".sluice")).expect("mkdir");
                std::fs::write(dir.path().join(".sluice").join(file), text).expect("write");
                let e = Providers::load_with_env(dir.path(), BTreeMap::new())
                    .expect_err("syntax error")
                    .to_string();
                assert!(!e.contains(canary), "{canary} shown: {e}");
                assert!(e.contains(file), "{e}");
                assert!(
                    e.contains(&format!("at line {line}, column {column}")),
                    "{text:?}: {e}"
                );
                assert!(!e.contains(" | "), "a source excerpt: {e}");
            }
        }
        // the kind of error stays readable
        let dir = tempfile::tempdir().expect("tmp");
        std::fs::create_dir_all(dir.path().join(".sluice")).expect("mkdir");
        std::fs::write(
            dir.path().join(".sluice/secrets.toml"),
            "token = 1\ntoken = 2\n",
        )
        .expect("write");
        let e = Providers::load_with_env(dir.path(), BTreeMap::new())
            .expect_err("duplicate")
            .to_string();
        assert!(e.contains("duplicate key `token`"), "{e}");
    }
}
