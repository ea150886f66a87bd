//! `agent-assist demo`: one command with nothing configured. Builds or loads
//! the index of the sample KB, starts the simulator in-process on a free port
//! playing the bundled calls (round and round), and opens the dashboard
//! against it in manual mode. On quit the terminal is restored and the
//! simulator stopped (a panic takes the in-process simulator down with it).

use std::path::Path;
use std::process::ExitCode;
use std::time::Duration;

use color_eyre::eyre::Result;

use crate::cli::DemoArgs;
use crate::config::Config;
use crate::domain::Sink;
use crate::net::Secret;
use crate::paths::AppPaths;
use crate::sim::{self, SimConfig};

pub fn run(args: &DemoArgs, file: Option<&Path>, paths: &AppPaths) -> Result<ExitCode> {
    // The user's file may remap keys or tune the policy; the demo ignores
    // its org settings (and the environment's) and talks to the simulator.
    let mut config = match file {
        Some(f) => Config::from_file(f)?,
        None if paths.config_file().is_file() => Config::from_file(&paths.config_file())?,
        None => Config::default(),
    };
    let mut sim_config = SimConfig::new(sim::load_scripts(&sim::default_conversations())?);
    sim_config.port = args.sim_port;
    sim_config.speed = args.speed;
    sim_config.repeat = true;
    sim_config.concurrency = args.concurrency.max(1);
    sim_config.faults.clone_from(&args.faults);
    // The ledger outlives the run but the simulator starts its calls over:
    // fresh ids keep them from continuing a previous run's records.
    sim_config.first_round = rand::random::<u16>().saturating_add(1).into();
    let rt = tokio::runtime::Runtime::new()?;
    rt.block_on(async move {
        let sim = sim::spawn(sim_config).await?;
        let g = &mut config.genesys;
        g.dialect = args.dialect;
        g.api_base.clone_from(&sim.base_url);
        g.login_base.clone_from(&sim.base_url);
        g.client_id = "demo".into();
        g.client_secret = Secret::new("demo");
        g.queues = vec![sim.queue_id.clone()];
        g.users.clear();
        config.policy.mode = args.mode;
        // The demo keeps its own ledger: a console running against a real
        // org on this machine holds the default one's lock.
        config.ledger.path = Some(paths.data_dir.join("demo").join("ledger.redb"));
        if !args.source.kb.is_empty() {
            config.kb.paths.clone_from(&args.source.kb);
        }
        if let Some(i) = args.source.index {
            config.kb.index = i;
        }
        // The agent's view in a browser beside the console, plus the
        // webhook the simulator records; the widget stays on loopback, so
        // it needs no sign-in.
        config.delivery.sinks = vec![Sink::Widget, Sink::Webhook];
        config.widget.auth = crate::widget::AuthMode::None;
        args.widget.apply(&mut config.widget)?;
        config.validate()?;
        let url = sim.base_url.clone();
        let outcome = crate::app::dashboard(&config, paths, Some(url)).await;
        // Give the simulator a moment to finish answering, then stop it.
        let _ = tokio::time::timeout(Duration::from_secs(2), sim.stop()).await;
        outcome
    })
}
