//! `sluice plugins list | info NAME | validate PATH`.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Subcommand;
use sluice_registry::{PluginKind, Registry, SearchPath};

/// Plugin subcommands.
#[derive(Debug, Subcommand)]
pub enum PluginsCommand {
    /// List every plugin on the search path (reads manifests only; no plugin code runs).
    ///
    /// Example: `sluice plugins list`
    List,
    /// Show a plugin's manifest: kind, version, ABI, library, configuration keys.
    ///
    /// Example: `sluice plugins info duckdb`
    Info {
        /// Plugin name.
        name: String,
    },
    /// Load a plugin library or manifest and run every check (ABI, layout, manifest, init).
    ///
    /// Example: `sluice plugins validate ./target/release/libsluice_destination_duckdb.so`
    Validate {
        /// A `*.sluice-plugin.toml` manifest or a plugin library.
        path: PathBuf,
    },
}

pub fn run(registry: &Registry, cmd: PluginsCommand) -> Result<ExitCode, String> {
    match cmd {
        PluginsCommand::List => list(registry),
        PluginsCommand::Info { name } => info(registry, &name),
        PluginsCommand::Validate { path } => validate(registry, &path),
    }
}

fn list(registry: &Registry) -> Result<ExitCode, String> {
    let found = registry.discover();
    if found.is_empty() {
        println!("no plugins found; searched:");
        for d in registry.search_path().dirs() {
            println!("  {}", d.display());
        }
        return Ok(ExitCode::SUCCESS);
    }
    let mut rows = vec![[
        "NAME".to_string(),
        "KIND".into(),
        "VERSION".into(),
        "ABI".into(),
        "STATUS".into(),
        "PATH".into(),
    ]];
    let trusted = registry.search_path().trusts_project_plugins();
    for d in &found {
        let status = match (d.incompatibility(), registry.shadowed_by(d)) {
            (Some(why), _) => format!("incompatible: {why}"),
            (None, Some(installed)) if trusted => format!(
                "ok (project plugin, replaces {} as --trust-project-plugins is given)",
                installed.display()
            ),
            (None, Some(installed)) => format!(
                "refused: a project plugin with the name of {}; use --trust-project-plugins to use it",
                installed.display()
            ),
            (None, None) => "ok".to_string(),
        };
        match &d.manifest {
            Ok(m) => rows.push([
                m.name.clone(),
                m.kind.to_string(),
                m.version.clone(),
                format!("{}.{}", m.abi.0, m.abi.1),
                status,
                d.path.display().to_string(),
            ]),
            Err(_) => rows.push([
                "?".into(),
                "?".into(),
                "?".into(),
                "?".into(),
                status,
                d.path.display().to_string(),
            ]),
        }
    }
    print_table(&rows);
    Ok(ExitCode::SUCCESS)
}

fn print_table(rows: &[[String; 6]]) {
    let mut widths = [0usize; 6];
    for row in rows {
        for (i, cell) in row.iter().enumerate() {
            widths[i] = widths[i].max(cell.chars().count());
        }
    }
    for row in rows {
        let mut line = String::new();
        for (i, cell) in row.iter().enumerate() {
            if i + 1 == row.len() {
                line.push_str(cell);
            } else {
                line.push_str(&format!("{cell:<w$}  ", w = widths[i]));
            }
        }
        println!("{}", line.trim_end());
    }
}

fn info(registry: &Registry, name: &str) -> Result<ExitCode, String> {
    let shadowed =
        |e: &sluice_registry::Error| matches!(e, sluice_registry::Error::Shadowed { .. });
    let manifest = match registry.find(PluginKind::Source, name) {
        Ok(m) => m,
        Err(e) if shadowed(&e) => return Err(e.to_string()),
        Err(_) => registry.find(PluginKind::Destination, name).map_err(|e| {
            if shadowed(&e) {
                return e.to_string();
            }
            let mut known: Vec<String> = registry
                .discover()
                .into_iter()
                .filter_map(|d| d.manifest.ok())
                .map(|m| format!("{} ({})", m.name, m.kind))
                .collect();
            known.sort();
            let dirs: Vec<String> = registry
                .search_path()
                .dirs()
                .iter()
                .map(|d| format!("  {}", d.display()))
                .collect();
            format!(
                "no plugin `{name}` found (looked for `{name}.sluice-plugin.toml` in:\n{})\nhint: known plugins: {}",
                dirs.join("\n"),
                if known.is_empty() { "none".to_string() } else { known.join(", ") }
            )
        })?,
    };
    println!("name:        {}", manifest.name);
    println!("kind:        {}", manifest.kind);
    println!("version:     {}", manifest.version);
    println!("description: {}", manifest.description);
    println!("abi:         {}.{}", manifest.abi.0, manifest.abi.1);
    println!("manifest:    {}", manifest.path.display());
    match &manifest.library {
        Some(l) => println!("library:     {}", l.display()),
        None => println!(
            "library:     (none for {})",
            sluice_registry::manifest::platform_key()
        ),
    }
    if let Some(why) = manifest.incompatibility() {
        println!("status:      incompatible: {why}");
    } else {
        println!("status:      ok");
    }
    for (title, keys) in [("config", &manifest.config), ("secrets", &manifest.secrets)] {
        if keys.is_empty() {
            continue;
        }
        println!("{title}:");
        for k in keys {
            let mut extra = Vec::new();
            if k.required {
                extra.push("required".to_string());
            }
            if let Some(d) = &k.default {
                extra.push(format!("default {d}"));
            }
            let extra = if extra.is_empty() {
                String::new()
            } else {
                format!(" ({})", extra.join(", "))
            };
            println!("  {} [{}]{extra}  {}", k.key, k.ty, k.description);
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn validate(registry: &Registry, path: &std::path::Path) -> Result<ExitCode, String> {
    let plugin = Registry::new(SearchPath::from_dirs(Vec::new()))
        .load_path(path)
        .or_else(|_| registry.load_path(path))
        .map_err(|e| e.to_string())?;
    let d = &plugin.declaration;
    println!(
        "ok: {} plugin `{}` {}",
        plugin.manifest.kind,
        plugin.name(),
        plugin.manifest.version
    );
    println!("  library:  {}", plugin.library.display());
    println!(
        "  abi:      {}.{} (this sluice: {}.{})",
        d.abi_major,
        d.abi_minor,
        sluice_abi::ABI_MAJOR,
        sluice_abi::ABI_MINOR
    );
    println!("  built by: {} for {}", d.rustc_version(), d.target());
    Ok(ExitCode::SUCCESS)
}

/// The names and descriptions of the compatible plugins of a kind, sorted.
pub fn names_of_kind(registry: &Registry, kind: PluginKind) -> Vec<(String, String)> {
    let mut out: Vec<(String, String)> = registry
        .discover()
        .into_iter()
        .filter_map(|d| d.manifest.ok())
        .filter(|m| m.kind == kind && m.incompatibility().is_none())
        .map(|m| (m.manifest.name, m.manifest.description))
        .collect();
    out.sort();
    out.dedup_by(|a, b| a.0 == b.0);
    out
}
