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
    let paths = AppPaths::resolve()?;
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
