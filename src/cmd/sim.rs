//! `agent-assist sim`: the simulator as a process. Prints one JSON line with
//! its address once ready, then serves until interrupted.

use std::process::ExitCode;
use std::time::Duration;

use color_eyre::eyre::{Result, eyre};

use crate::cli::SimArgs;
use crate::sim::{self, SimConfig};

/// Builds the simulator's config from the command line.
pub fn config(args: &SimArgs) -> Result<SimConfig> {
    let dir = args.conversations.clone().unwrap_or_else(sim::default_conversations);
    let mut c = SimConfig::new(sim::load_scripts(&dir)?);
    if !(args.heartbeat_s.is_finite() && args.heartbeat_s > 0.0) {
        return Err(eyre!("--heartbeat-s must be a positive number of seconds"));
    }
    c.port = args.port;
    c.speed = args.speed;
    c.faults = args.faults.clone();
    c.heartbeat = crate::duration::from_secs_f64(args.heartbeat_s)
        .ok_or_else(|| eyre!("--heartbeat-s {} is too large", args.heartbeat_s))?;
    c.token_ttl = Duration::from_secs(args.token_ttl_s.max(1));
    c.channel_ttl = Duration::from_secs(args.channel_ttl_s.max(1));
    c.concurrency = args.concurrency.max(1);
    c.repeat = args.repeat;
    c.credentials = args.client_id.clone().zip(args.client_secret.clone());
    c.copilot_every = args.copilot_every;
    if let Some(k) = &args.knowledge {
        c.knowledge_dir = Some(k.clone());
    }
    c.knowledge_page_size = args.knowledge_page_size.max(1);
    Ok(c)
}

pub fn run(args: &SimArgs) -> Result<ExitCode> {
    let config = config(args)?;
    let rt = tokio::runtime::Runtime::new()?;
    rt.block_on(async move {
        let handle = sim::spawn(config).await?;
        let ready = serde_json::json!({ "base_url": handle.base_url, "queue_id": handle.queue_id });
        println!("{ready}");
        tokio::signal::ctrl_c().await?;
        handle.stop().await;
        Ok(ExitCode::SUCCESS)
    })
}
