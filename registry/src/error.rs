//! Registry errors: each names the plugin, what was tried, and what to do.

use std::path::PathBuf;

/// `Result` with the registry's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// What can go wrong finding, checking and loading a plugin.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// No manifest with that kind and name on the search path.
    #[error("{}", not_found_message(.kind, .name, .searched, .available))]
    NotFound {
        /// `source` or `destination`.
        kind: String,
        /// The plugin name asked for.
        name: String,
        /// Every directory searched, in order.
        searched: Vec<PathBuf>,
        /// Names of the plugins of that kind that were found.
        available: Vec<String>,
    },
    /// A plugin in the project folder has the kind and name of an installed plugin, and project
    /// plugins are not trusted.
    #[error(
        "the project folder has its own {kind} plugin `{name}` ({}), which would replace the \
         installed one ({}) and receive its secrets; refusing to use either\nhint: if you \
         trust this project's plugin, pass --trust-project-plugins (or set \
         SLUICE_TRUST_PROJECT_PLUGINS=1); to use the installed plugin, remove or rename `{}`",
        .project.display(),
        .installed.display(),
        .project.display()
    )]
    Shadowed {
        /// `source` or `destination`.
        kind: String,
        /// The plugin name.
        name: String,
        /// The project folder's manifest.
        project: PathBuf,
        /// The installed manifest it would replace.
        installed: PathBuf,
    },
    /// A manifest file could not be read or parsed.
    #[error("invalid plugin manifest `{}`: {message}", .path.display())]
    Manifest {
        /// The manifest file.
        path: PathBuf,
        /// What is wrong.
        message: String,
    },
    /// The plugin was built for another ABI major.
    #[error(
        "plugin `{name}` ({}) was built for plugin ABI {plugin_major}.{plugin_minor} but this \
         sluice speaks ABI {host_major}.{host_minor}\nhint: rebuild the plugin against a \
         sluice-sdk with ABI {host_major}.x, or use a sluice release that speaks ABI \
         {plugin_major} (plugin rustc: {plugin_rustc}; host rustc: {host_rustc})",
        .path.display()
    )]
    AbiMismatch {
        /// Plugin name.
        name: String,
        /// Library path.
        path: PathBuf,
        /// ABI major the plugin declares.
        plugin_major: u32,
        /// ABI minor the plugin declares.
        plugin_minor: u32,
        /// Our ABI major.
        host_major: u32,
        /// Our ABI minor.
        host_minor: u32,
        /// The plugin's compiler.
        plugin_rustc: String,
        /// Ours.
        host_rustc: String,
    },
    /// The library's layout check failed although it declared our ABI version.
    #[error(
        "plugin `{name}` ({}) declares ABI {major} but its types do not match this sluice's:\n\
         {summary}\nhint: the plugin was built against a different sluice-abi with the same \
         version number; rebuild it against the sluice-sdk of this release",
        .path.display()
    )]
    Layout {
        /// Plugin name.
        name: String,
        /// Library path.
        path: PathBuf,
        /// Declared major.
        major: u32,
        /// The differing items.
        summary: String,
    },
    /// The library could not be loaded or is not a sluice plugin.
    #[error("cannot load plugin `{name}` from `{}`: {message}", .path.display())]
    Load {
        /// Plugin name.
        name: String,
        /// Library path.
        path: PathBuf,
        /// What went wrong, with a hint.
        message: String,
    },
    /// The plugin itself returned an error.
    #[error("{0}")]
    Plugin(#[from] sluice_sdk::Error),
}

fn not_found_message(kind: &str, name: &str, searched: &[PathBuf], available: &[String]) -> String {
    let mut msg =
        format!("no {kind} plugin `{name}` found (looked for `{name}.sluice-plugin.toml` in:");
    if searched.is_empty() {
        msg.push_str(" no directories");
    }
    for dir in searched {
        msg.push_str(&format!("\n  {}", dir.display()));
    }
    msg.push(')');
    if available.is_empty() {
        msg.push_str(&format!("\nhint: no {kind} plugins were found at all; build them (`cargo build --release`) or set SLUICE_PLUGIN_PATH to the folder that holds them"));
    } else {
        msg.push_str(&format!(
            "\nhint: known {kind}s: {}; or set SLUICE_PLUGIN_PATH to the folder of `{name}`",
            available.join(", ")
        ));
    }
    msg
}

impl From<Error> for sluice_sdk::Error {
    fn from(e: Error) -> Self {
        match e {
            Error::Plugin(inner) => inner,
            Error::NotFound { .. } => sluice_sdk::Error::not_found(e.to_string()),
            other => sluice_sdk::Error::config(other.to_string()),
        }
    }
}
