//! `sluice`: the command line of the sluice data load tool.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use sluice_registry::{Registry, SearchPath};

mod plugins;

const LONG_VERSION: &str = concat!(
    env!("CARGO_PKG_VERSION"),
    " (plugin ABI ",
    // kept in step with sluice_abi::ABI_MAJOR/MINOR by a test
    "1.0",
    ")"
);

/// sluice: load data from APIs, databases and files into warehouses, the dlt way, fast.
#[derive(Debug, Parser)]
#[command(name = "sluice", version = LONG_VERSION, propagate_version = true)]
struct Cli {
    /// Extra directory to search for plugins (before SLUICE_PLUGIN_PATH and the defaults).
    #[arg(long, global = true, value_name = "DIR")]
    plugin_dir: Vec<PathBuf>,

    /// More log output (-v info, -vv debug, -vvv trace).
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    verbose: u8,

    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// List, inspect and validate plugins.
    #[command(subcommand)]
    Plugins(plugins::PluginsCommand),
}

fn init_tracing(verbose: u8) {
    let level = match verbose {
        0 => "warn",
        1 => "info",
        2 => "debug",
        _ => "trace",
    };
    let filter = tracing_subscriber::EnvFilter::try_from_env("SLUICE_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(level));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .try_init();
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    init_tracing(cli.verbose);
    let mut search = SearchPath::standard();
    for dir in cli.plugin_dir.iter().rev() {
        search.prepend(dir.clone());
    }
    let registry = Registry::new(search);
    let result = match cli.command {
        Command::Plugins(cmd) => plugins::run(&registry, cmd),
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::from(2)
        }
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn version_names_the_abi() {
        assert!(super::LONG_VERSION.contains(&format!(
            "plugin ABI {}.{}",
            sluice_abi::ABI_MAJOR,
            sluice_abi::ABI_MINOR
        )));
    }
}
