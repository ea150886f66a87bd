//! Command entry points: one function per subcommand, called from `main`.
//! These are the only places that print to stdout.

pub mod bench;
pub mod console;
pub mod demo;
pub mod kb;
pub mod sim;
pub mod worker;

use std::process::ExitCode;

use color_eyre::eyre::Result;

use crate::cli::{Cli, Command};
use crate::paths::AppPaths;

/// Runs the parsed command line.
pub fn run(cli: Cli) -> Result<ExitCode> {
    let paths = with_configured_model(AppPaths::resolve()?, &cli)?;
    let _log = crate::logging::init(&paths.log_dir(), &cli.log_level);
    tracing::info!(version = env!("CARGO_PKG_VERSION"), "agent-assist starting");
    match cli.command {
        Command::Kb(c) => kb::run(c, cli.config.as_deref(), &paths),
        Command::Sim(args) => sim::run(&args),
        Command::Bench(c) => bench::run(c, &paths),
        Command::Demo(args) => demo::run(&args, cli.config.as_deref(), &paths),
        Command::Console(args) => console::run(&args, cli.config.as_deref(), &paths),
        Command::Worker(args) => worker::run(&args, cli.config.as_deref(), &paths),
    }
}

/// Points the paths at the model `[kb] model` names, before any command
/// runs, so every place that loads the model (the live runtime, rebuilds,
/// need detection, benches) loads the same one. A config file that does not
/// load is left for the command itself to report in full; only an unknown
/// model name fails here.
fn with_configured_model(paths: AppPaths, cli: &Cli) -> Result<AppPaths> {
    let loaded =
        crate::config::Config::load(cli.config.as_deref(), &paths.config_file(), &|k| std::env::var(k).ok());
    let Ok(config) = loaded else { return Ok(paths) };
    let info = crate::kb::embed::models::by_name(&config.kb.model)?;
    Ok(paths.with_model(info.name, info.folder))
}
