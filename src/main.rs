//! The `agent-assist` binary: parses the command line and hands over to the
//! library. Errors print as one readable line on stderr, never a backtrace.

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    let cli = agent_assist::cli::Cli::parse();
    match agent_assist::cmd::run(cli) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}
