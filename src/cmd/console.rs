//! `agent-assist console`: the whole pipeline against a configured org.
//! With `--headless` it writes one JSON object per line to stdout (the
//! production mode for unattended auto-send, and how scripts drive it);
//! otherwise it opens the dashboard.

use std::path::Path;
use std::process::ExitCode;

use color_eyre::eyre::Result;

use crate::cli::{ConsoleArgs, KbSource, WidgetArgs};
use crate::config::Config;
use crate::domain::{ConnectionState, StreamEvent};
use crate::engine::Msg;
use crate::paths::AppPaths;
use crate::runtime::{Options, Runtime};

/// The config from file and environment, with the command line on top.
pub fn config(args: &ConsoleArgs, file: Option<&Path>, paths: &AppPaths) -> Result<Config> {
    let mut c = Config::load(file, &paths.config_file(), &|k| std::env::var(k).ok())?;
    if let Some(m) = args.mode {
        c.policy.mode = m;
    }
    if let Some(d) = args.dialect {
        c.genesys.dialect = d;
    }
    if !args.queues.is_empty() {
        c.genesys.queues.clone_from(&args.queues);
    }
    with_kb_and_widget(c, &args.source, &args.widget)
}

/// The KB and widget switches `console` and `worker` share, applied on top
/// of the config, then the config's own checks.
pub fn with_kb_and_widget(mut c: Config, source: &KbSource, widget: &WidgetArgs) -> Result<Config> {
    if !source.kb.is_empty() {
        c.kb.paths.clone_from(&source.kb);
    }
    if let Some(i) = source.index {
        c.kb.index = i;
    }
    widget.apply(&mut c.widget)?;
    c.validate()?;
    Ok(c)
}

pub fn run(args: &ConsoleArgs, file: Option<&Path>, paths: &AppPaths) -> Result<ExitCode> {
    let config = config(args, file, paths)?;
    let rt = tokio::runtime::Runtime::new()?;
    if let Some(url) = args.nats.clone() {
        let plan = crate::floor::console::ConsolePlan {
            url,
            queues: args.queues.clone(),
            exit_after: args.exit_after,
        };
        if !args.headless {
            return rt.block_on(crate::floor::dashboard::run(&config, plan));
        }
        return rt.block_on(crate::floor::console::run_headless(&config, plan));
    }
    if args.headless {
        rt.block_on(headless(&config, paths, args.exit_after))
    } else {
        rt.block_on(crate::app::dashboard(&config, paths, None))
    }
}

/// Operator commands for the headless console, one JSON object per line
/// on stdin (`{"command":"approve","suggestion":"…"}`, the same vocabulary
/// as the dashboard's keys). A line that does not parse is reported on the
/// output and skipped. Nothing is read from a terminal.
pub fn spawn_stdin_commands() -> tokio::sync::mpsc::Receiver<Result<crate::engine::Command, String>> {
    let (tx, rx) = tokio::sync::mpsc::channel(64);
    if std::io::IsTerminal::is_terminal(&std::io::stdin()) {
        return rx;
    }
    let spawned = std::thread::Builder::new().name("stdin-commands".into()).spawn(move || {
        use std::io::BufRead;
        for line in std::io::stdin().lock().lines() {
            let Ok(line) = line else { break };
            if line.trim().is_empty() {
                continue;
            }
            let parsed = serde_json::from_str(&line).map_err(|e| format!("command not understood: {e}"));
            if tx.blocking_send(parsed).is_err() {
                break;
            }
        }
    });
    if let Err(e) = spawned {
        tracing::error!(error = %e, "cannot read commands from stdin");
    }
    rx
}

/// Runs without a UI until a signal, `--exit-after`, or a permanent
/// connection failure (exit code 1).
pub async fn headless(
    config: &Config,
    paths: &AppPaths,
    exit_after: Option<std::time::Duration>,
) -> Result<ExitCode> {
    let opts = Options { headless_out: Some(Box::new(std::io::stdout())), ..Options::default() };
    // Before starting: a signal during start-up stops the process cleanly.
    let stop = crate::app::stop_requested(exit_after);
    let mut rt = Runtime::start(config, paths, opts).await?;
    tokio::pin!(stop);
    let mut failed = false;
    let mut commands = spawn_stdin_commands();
    let mut stdin_open = true;
    loop {
        tokio::select! {
            () = &mut stop => break,
            line = commands.recv(), if stdin_open => match line {
                Some(Ok(cmd)) => {
                    rt.handle(Msg::Command(cmd));
                }
                Some(Err(message)) => rt.note(serde_json::json!({ "event": "command_error", "message": message })),
                None => stdin_open = false,
            },
            msg = rt.next() => if pump(&mut rt, msg) {
                failed = true;
                break;
            },
        }
    }
    rt.shutdown().await;
    Ok(if failed { ExitCode::FAILURE } else { ExitCode::SUCCESS })
}

/// Hands one message to the runtime, then whatever else is ready; true
/// when the connection has failed for good (the process then exits 1).
pub fn pump(rt: &mut Runtime, msg: Msg) -> bool {
    let failed = matches!(msg, Msg::Stream(StreamEvent::Connection(ConnectionState::Failed { .. })));
    rt.handle(msg);
    rt.drain_ready(256);
    failed
}
