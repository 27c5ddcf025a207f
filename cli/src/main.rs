//! `sluice`: the command line of the sluice data load tool.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use sluice_registry::{Registry, SearchPath};

mod destination;
mod init;
mod pipeline_cmd;
mod pipeline_file;
mod plugins;
mod run;

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

    /// Use a plugin of the project's ./.sluice/plugins even where it replaces an installed
    /// plugin of the same kind and name (it then gets that plugin's secrets). Without this
    /// (or SLUICE_TRUST_PROJECT_PLUGINS=1) such a plugin is refused.
    #[arg(long, global = true)]
    trust_project_plugins: bool,

    /// More log output (-v info, -vv debug, -vvv trace).
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    verbose: u8,

    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Create a pipeline project for a source and a destination.
    #[command(
        after_help = "Examples:\n  sluice init filesystem duckdb\n  sluice init github postgres --yes\n  sluice init --list-sources"
    )]
    Init(init::InitArgs),
    /// Run a pipeline file: extract, normalize and load.
    #[command(
        after_help = "Examples:\n  sluice run sample_data/sample_pipeline.toml\n  sluice run --destination postgres --dataset staging\n  sluice run github_pipeline.toml --resources issues,pull_requests --limit 2 --json\n\nExit codes: 0 loaded, 1 failed jobs or a failed run, 2 usage or configuration error."
    )]
    Run(run::RunArgs),
    /// Inspect and manage pipelines: info, show, query, trace, schema, packages, sync.
    #[command(
        after_help = "Examples:\n  sluice pipeline --list\n  sluice pipeline sample info\n  sluice pipeline sample show issues --rows 10\n  sluice pipeline sample query \"SELECT state, count(*) FROM sample_data.issues GROUP BY 1\"\n  sluice pipeline sample schema --format json"
    )]
    Pipeline(pipeline_cmd::PipelineArgs),
    /// Print shell completions (bash, zsh, fish, elvish, powershell).
    ///
    /// Example: `sluice completions bash > /etc/bash_completion.d/sluice`
    Completions {
        /// The shell.
        shell: clap_complete::Shell,
    },
    /// List, inspect and validate plugins.
    #[command(
        subcommand,
        after_help = "Examples:\n  sluice plugins list\n  sluice plugins info duckdb\n  sluice plugins validate ./libsluice_source_my.so"
    )]
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

sluice::use_allocator!();

fn main() -> ExitCode {
    let cli = Cli::parse();
    init_tracing(cli.verbose);
    let mut search = SearchPath::standard();
    for dir in cli.plugin_dir.iter().rev() {
        search.prepend(dir.clone());
    }
    if cli.trust_project_plugins {
        search = search.trust_project_plugins(true);
    }
    let registry = Registry::new(search);
    let result = match cli.command {
        Command::Init(args) => init::run(&registry, args),
        Command::Run(args) => run::run(registry, args),
        Command::Pipeline(args) => pipeline_cmd::run(registry, args),
        Command::Plugins(cmd) => plugins::run(&registry, cmd),
        Command::Completions { shell } => {
            use clap::CommandFactory;
            clap_complete::generate(shell, &mut Cli::command(), "sluice", &mut std::io::stdout());
            Ok(ExitCode::SUCCESS)
        }
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
