//! `agent-assist worker`: one member of a floor (see `crate::floor`).

use std::path::Path;
use std::process::ExitCode;

use color_eyre::eyre::Result;

use crate::cli::WorkerArgs;
use crate::config::Config;
use crate::floor::worker::WorkerPlan;
use crate::paths::AppPaths;

/// The config from file and environment, with the command line on top.
pub fn config(args: &WorkerArgs, file: Option<&Path>, paths: &AppPaths) -> Result<Config> {
    let mut c = Config::load(file, &paths.config_file(), &|k| std::env::var(k).ok())?;
    if let Some(m) = args.mode {
        c.policy.mode = m;
    }
    if !args.queues.is_empty() {
        c.genesys.queues.clone_from(&args.queues);
    }
    if let Some(url) = &args.nats {
        c.nats.url.clone_from(url);
    }
    if let Some(ttl) = args.lease_ttl {
        c.nats.lease_ttl_ms = u64::try_from(ttl.as_millis()).unwrap_or(u64::MAX);
    }
    super::console::with_kb_and_widget(c, &args.source, &args.widget)
}

pub fn run(args: &WorkerArgs, file: Option<&Path>, paths: &AppPaths) -> Result<ExitCode> {
    let config = config(args, file, paths)?;
    let plan = WorkerPlan {
        url: config.nats.url.clone(),
        queues: config.genesys.queues.clone(),
        exit_after: args.exit_after,
    };
    let rt = tokio::runtime::Runtime::new()?;
    rt.block_on(crate::floor::worker::run(&config, paths, plan))
}
