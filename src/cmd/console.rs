//! `agent-assist console`: the whole pipeline against a configured org.
//! With `--headless` it writes one JSON object per line to stdout (the
//! production mode for unattended auto-send, and how scripts drive it);
//! otherwise it opens the dashboard.

use std::path::Path;
use std::process::ExitCode;

use color_eyre::eyre::Result;

use crate::app::Screen;
use crate::cli::ConsoleArgs;
use crate::config::Config;
use crate::domain::{ConnectionState, StreamEvent};
use crate::engine::Msg;
use crate::kb::store::BuildProgress;
use crate::paths::AppPaths;
use crate::runtime::{Options, Runtime};
use std::io::IsTerminal;

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
    if !args.source.kb.is_empty() {
        c.kb.paths.clone_from(&args.source.kb);
    }
    if let Some(i) = args.source.index {
        c.kb.index = i;
    }
    c.validate()?;
    Ok(c)
}

pub fn run(args: &ConsoleArgs, file: Option<&Path>, paths: &AppPaths) -> Result<ExitCode> {
    let config = config(args, file, paths)?;
    let rt = tokio::runtime::Runtime::new()?;
    if args.headless {
        rt.block_on(headless(&config, paths, args.exit_after))
    } else {
        rt.block_on(dashboard(&config, paths, None))
    }
}

/// A progress bar on stderr while the index builds (before the dashboard
/// takes over the screen).
pub fn index_progress() -> Box<dyn FnMut(BuildProgress) + Send> {
    let mut bar: Option<indicatif::ProgressBar> = None;
    Box::new(move |p| {
        let BuildProgress::Embedding { done, total } = p;
        if !std::io::stderr().is_terminal() {
            return;
        }
        let b = bar.get_or_insert_with(|| {
            let b = indicatif::ProgressBar::new(total as u64);
            if let Ok(style) = indicatif::ProgressStyle::with_template(
                "building index {bar:30} {pos}/{len} chunks  eta {eta}",
            ) {
                b.set_style(style);
            }
            b
        });
        b.set_position(done as u64);
        if done >= total {
            b.finish_and_clear();
        }
    })
}

/// The dashboard over a started runtime; restores the terminal on the way out.
pub async fn dashboard(config: &Config, paths: &AppPaths, sim_url: Option<String>) -> Result<ExitCode> {
    let keymap = config.keys.keymap().map_err(|e| color_eyre::eyre::eyre!("config `keys`: {e}"))?;
    let opts = Options { progress: index_progress(), ..Options::default() };
    let rt = Runtime::start(config, paths, opts).await?;
    let terminal = ratatui::init();
    let screen = Screen { keymap, dialect: config.genesys.dialect, sim_url };
    let result = crate::app::run(rt, terminal, screen).await;
    ratatui::restore();
    let rt = result?;
    rt.shutdown().await;
    Ok(ExitCode::SUCCESS)
}

/// Waits for ctrl-c or SIGTERM.
pub async fn shutdown_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        if let Ok(mut term) = signal(SignalKind::terminate()) {
            tokio::select! {
                _ = tokio::signal::ctrl_c() => {}
                _ = term.recv() => {}
            }
            return;
        }
    }
    let _ = tokio::signal::ctrl_c().await;
}

/// Operator commands for the headless console, one JSON object per line
/// on stdin (`{"command":"approve","suggestion":"…"}`, the same vocabulary
/// as the dashboard's keys). A line that does not parse is reported on the
/// output and skipped. Nothing is read from a terminal.
fn spawn_stdin_commands() -> tokio::sync::mpsc::Receiver<Result<crate::engine::Command, String>> {
    let (tx, rx) = tokio::sync::mpsc::channel(64);
    if std::io::stdin().is_terminal() {
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
    let mut rt = Runtime::start(config, paths, opts).await?;
    let stop = tokio::time::sleep(exit_after.unwrap_or(std::time::Duration::MAX / 4));
    tokio::pin!(stop);
    let signal = shutdown_signal();
    tokio::pin!(signal);
    let mut failed = false;
    let mut commands = spawn_stdin_commands();
    let mut stdin_open = true;
    loop {
        tokio::select! {
            () = &mut stop => break,
            () = &mut signal => break,
            line = commands.recv(), if stdin_open => match line {
                Some(Ok(cmd)) => {
                    rt.handle(Msg::Command(cmd));
                }
                Some(Err(message)) => rt.note(serde_json::json!({ "event": "command_error", "message": message })),
                None => stdin_open = false,
            },
            msg = rt.next() => {
                failed |= matches!(msg, Msg::Stream(StreamEvent::Connection(ConnectionState::Failed { .. })));
                rt.handle(msg);
                rt.drain_ready(256);
                if failed {
                    break;
                }
            }
        }
    }
    rt.shutdown().await;
    Ok(if failed { ExitCode::FAILURE } else { ExitCode::SUCCESS })
}
