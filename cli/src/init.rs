//! `sluice init <source> <destination>`: scaffolds a pipeline project from the plugins'
//! manifests (no plugin code runs).

use std::io::{BufRead, IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::Args;
use serde_json::Value;
use sluice_registry::{PluginKind, PluginManifest, Registry};
use sluice_sdk::manifest::ConfigKey;

use crate::plugins::names_of_kind;

/// Create a pipeline project: the pipeline file, .sluice/config.toml, .sluice/secrets.toml and
/// a .gitignore that keeps the secrets out of git.
///
/// Examples:
///   sluice init filesystem duckdb
///   sluice init github postgres --yes
///   sluice init --list-sources
#[derive(Debug, Args)]
pub struct InitArgs {
    /// The source plugin (an unknown name gets a rest_api-based template).
    pub source: Option<String>,
    /// The destination plugin.
    pub destination: Option<String>,
    /// Overwrite existing files without asking.
    #[arg(short, long)]
    pub yes: bool,
    /// List the source plugins and exit.
    #[arg(long)]
    pub list_sources: bool,
    /// List the destination plugins and exit.
    #[arg(long)]
    pub list_destinations: bool,
    /// The project folder (default: the current folder).
    #[arg(long, value_name = "DIR", default_value = ".")]
    pub location: PathBuf,
}

fn toml_value(v: &Value) -> String {
    match v {
        Value::String(s) => format!("{s:?}"),
        other => toml::to_string(&serde_json::json!({ "v": other }))
            .ok()
            .and_then(|t| t.strip_prefix("v = ").map(|x| x.trim_end().to_string()))
            .unwrap_or_else(|| other.to_string()),
    }
}

fn placeholder_for(k: &ConfigKey) -> String {
    match k.ty.as_str() {
        "integer" | "number" | "boolean" | "array" => toml_value(
            k.example
                .as_ref()
                .or(k.default.as_ref())
                .unwrap_or(&Value::String(sluice::config::PLACEHOLDER.into())),
        ),
        _ => format!("{:?}", sluice::config::PLACEHOLDER),
    }
}

fn commented_keys(out: &mut String, keys: &[ConfigKey]) {
    for k in keys {
        let value = k
            .example
            .as_ref()
            .or(k.default.as_ref())
            .map(toml_value)
            .unwrap_or_else(|| format!("{:?}", sluice::config::PLACEHOLDER));
        let mut note = k.description.clone();
        if let Some(d) = &k.default {
            note.push_str(&format!(" (default: {})", toml_value(d)));
        }
        if k.required && k.default.is_none() {
            note.push_str(" [required]");
        }
        out.push_str(&format!("# {} = {}\n", k.key, value));
        if !note.trim().is_empty() {
            out.push_str(&format!("#   {}\n", note.trim()));
        }
    }
}

pub fn run(registry: &Registry, args: InitArgs) -> Result<ExitCode, String> {
    if args.list_sources || args.list_destinations {
        let kind = if args.list_sources {
            PluginKind::Source
        } else {
            PluginKind::Destination
        };
        for (name, description) in names_of_kind(registry, kind) {
            println!("{name:<16} {description}");
        }
        return Ok(ExitCode::SUCCESS);
    }
    let (Some(source), Some(destination)) = (args.source.clone(), args.destination.clone()) else {
        return Err(
            "usage: sluice init <source> <destination> (see `sluice init --list-sources`)".into(),
        );
    };
    // the source name names the pipeline file: one plain path component
    sluice::pipeline::workdir::check_name("source", &source).map_err(|e| e.to_string())?;
    let dest = registry
        .find(PluginKind::Destination, &destination)
        .map_err(|e| {
            if matches!(e, sluice_registry::Error::Shadowed { .. }) {
                return e.to_string();
            }
            let known: Vec<String> = names_of_kind(registry, PluginKind::Destination)
                .into_iter()
                .map(|(n, _)| n)
                .collect();
            format!(
                "unknown destination `{destination}`; the known destinations are: {}",
                if known.is_empty() {
                    "(none found)".into()
                } else {
                    known.join(", ")
                }
            )
        })?;
    let src = match registry.find(PluginKind::Source, &source) {
        Ok(m) => Some(m),
        Err(e @ sluice_registry::Error::Shadowed { .. }) => return Err(e.to_string()),
        Err(_) => None,
    };
    let files = render(&source, src.as_ref(), &dest);
    let dir = &args.location;
    let existing: Vec<&(PathBuf, String)> =
        files.iter().filter(|(p, _)| dir.join(p).exists()).collect();
    if !existing.is_empty() && !args.yes {
        let names: Vec<String> = existing
            .iter()
            .map(|(p, _)| p.display().to_string())
            .collect();
        if !std::io::stdin().is_terminal() {
            return Err(format!(
                "{} already exist(s) in {}; pass --yes to overwrite",
                names.join(", "),
                dir.display()
            ));
        }
        eprint!("{} already exist(s). Overwrite? [y/N] ", names.join(", "));
        let _ = std::io::stderr().flush();
        let mut answer = String::new();
        std::io::stdin()
            .lock()
            .read_line(&mut answer)
            .map_err(|e| e.to_string())?;
        if !matches!(answer.trim(), "y" | "Y" | "yes") {
            eprintln!("nothing written");
            return Ok(ExitCode::from(1));
        }
    }
    for (rel, text) in &files {
        if rel == Path::new(SECRETS_FILE) {
            write_private(&dir.join(rel), text)?;
        } else {
            write(&dir.join(rel), text)?;
        }
    }
    let pipeline_file = files[0].0.display().to_string();
    println!(
        "Created a {source} -> {destination} pipeline in {}:\n  {pipeline_file}\n  .sluice/config.toml\n  .sluice/secrets.toml\n  .gitignore",
        dir.display()
    );
    if src.is_none() {
        println!("`{source}` is not an installed source plugin: the pipeline uses the rest_api source; describe the API in {pipeline_file}.");
    }
    println!("Next: fill in the \"<configure me>\" values in .sluice/secrets.toml and .sluice/config.toml, then run:\n  sluice run {pipeline_file}");
    Ok(ExitCode::SUCCESS)
}

/// Where `sluice init` puts the secrets, relative to the project folder.
const SECRETS_FILE: &str = ".sluice/secrets.toml";

/// Creates `path`'s parent folders; the project's `.sluice/` folder, when this creates it, is
/// private to the user (0700).
fn create_parents(path: &Path) -> Result<(), String> {
    let Some(parent) = path.parent() else {
        return Ok(());
    };
    if parent.is_dir() {
        return Ok(());
    }
    let mut builder = std::fs::DirBuilder::new();
    builder.recursive(true);
    if parent.file_name().is_some_and(|n| n == ".sluice") {
        use std::os::unix::fs::DirBuilderExt;
        builder.mode(0o700);
    }
    builder
        .create(parent)
        .map_err(|e| format!("cannot create `{}`: {e}", parent.display()))
}

fn write(path: &Path, text: &str) -> Result<(), String> {
    create_parents(path)?;
    std::fs::write(path, text).map_err(|e| format!("cannot write `{}`: {e}", path.display()))
}

/// Writes a file only its owner can read (0600): a new file of that mode is written beside it,
/// then renamed over it, so an existing file's looser mode is not kept and a link at `path` is
/// replaced, not followed.
fn write_private(path: &Path, text: &str) -> Result<(), String> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    create_parents(path)?;
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().to_string())
        .unwrap_or_default();
    let tmp = path.with_file_name(format!(".{name}.{}.tmp", std::process::id()));
    let result = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&tmp)
        .and_then(|mut f| {
            f.write_all(text.as_bytes())?;
            f.sync_all()
        })
        .and_then(|()| std::fs::rename(&tmp, path));
    result.map_err(|e| {
        let _ = std::fs::remove_file(&tmp);
        format!("cannot write `{}`: {e}", path.display())
    })
}

/// The files to write, the pipeline file first.
pub fn render(
    source: &str,
    src: Option<&PluginManifest>,
    dest: &PluginManifest,
) -> Vec<(PathBuf, String)> {
    let name = format!("{source}_pipeline");
    let plugin = if src.is_some() { source } else { "rest_api" };
    let mut p = String::new();
    p.push_str(&format!(
        "# A sluice pipeline: `sluice run {name}.toml`.\n# Values set here win over .sluice/ and the environment; leave secrets out of this file.\n\n[pipeline]\nname = {name:?}\ndestination = {:?}\ndataset = {:?}\n\n[source]\nname = {plugin:?}\n",
        dest.name,
        format!("{source}_data")
    ));
    match src {
        Some(m) => {
            p.push_str(&format!("\n[source.config]\n# every key of the `{}` source (config.toml and the environment work too):\n", m.name));
            commented_keys(&mut p, &m.config);
            if !m.secrets.is_empty() {
                p.push_str("# secrets (set them in .sluice/secrets.toml):\n");
                commented_keys(&mut p, &m.secrets);
            }
        }
        None => {
            p.push_str(&format!(
                "section = {source:?}\n\n# `{source}` is not a source plugin here: a REST API described declaratively (dlt's rest_api)\n[source.config.client]\nbase_url = \"https://api.example.com/v1/\"\n# auth = {{ type = \"bearer\", token = \"...\" }}  (put the token in .sluice/secrets.toml)\n\n[[source.config.resources]]\nname = \"items\"\nendpoint = {{ path = \"items\", data_selector = \"data\" }}\nprimary_key = \"id\"\nwrite_disposition = \"merge\"\n"
            ));
        }
    }
    p.push_str(&format!(
        "\n[destination.config]\n# every key of the `{}` destination:\n",
        dest.name
    ));
    commented_keys(&mut p, &dest.config);

    let mut config = String::from("# sluice configuration (non-secret). Environment variables override it:\n# SOURCES__<SOURCE>__<KEY>, DESTINATION__<NAME>__<KEY>.\n\n[runtime]\nlog_level = \"WARNING\"\n");
    if let Some(m) = src {
        let required: Vec<&ConfigKey> = m
            .config
            .iter()
            .filter(|k| k.required && k.default.is_none())
            .collect();
        if !required.is_empty() {
            config.push_str(&format!("\n[sources.{}]\n", m.name));
            for k in required {
                config.push_str(&format!("{} = {}\n", k.key, placeholder_for(k)));
            }
        }
    }
    let mut secrets =
        String::from("# sluice secrets: never commit this file (.gitignore keeps it out).\n");
    let src_secrets: Vec<ConfigKey> = src.map(|m| m.secrets.clone()).unwrap_or_default();
    if !src_secrets.is_empty() || src.is_none() {
        secrets.push_str(&format!("\n[sources.{source}]\n"));
        for k in &src_secrets {
            secrets.push_str(&format!("{} = {}\n", k.key, placeholder_for(k)));
        }
        if src.is_none() {
            secrets.push_str(&format!("# token = {:?}\n", sluice::config::PLACEHOLDER));
        }
    }
    if !dest.secrets.is_empty() {
        secrets.push_str(&format!("\n[destination.{}]\n", dest.name));
        for k in &dest.secrets {
            secrets.push_str(&format!("{} = {}\n", k.key, placeholder_for(k)));
        }
    }
    let gitignore = ".sluice/secrets.toml\n*.duckdb\n*.duckdb.wal\n".to_string();
    vec![
        (PathBuf::from(format!("{name}.toml")), p),
        (PathBuf::from(".sluice/config.toml"), config),
        (PathBuf::from(SECRETS_FILE), secrets),
        (PathBuf::from(".gitignore"), gitignore),
    ]
}
