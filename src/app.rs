//! The dashboard: starting it over a runtime ([`dashboard`]), its loop (the
//! runtime, terminal key events and drawing), and the shutdown signal the
//! headless console shares.
//! Drawing happens at most once per frame interval and only when something
//! changed; key events come from a reader thread so the loop never blocks on
//! the terminal. The terminal is restored on every way out, panics included
//! (ratatui's init installs the hook).

use std::io::IsTerminal;
use std::process::ExitCode;
use std::time::{Duration, Instant, SystemTime};

use color_eyre::eyre::Result;
use ratatui::DefaultTerminal;
use ratatui::crossterm::event::{self, Event};
use tokio::sync::mpsc;

use crate::config::Config;
use crate::config::keymap::Keymap;
use crate::engine::Msg;
use crate::input::on_key;
use crate::kb::store::BuildProgress;
use crate::net::Dialect;
use crate::paths::AppPaths;
use crate::runtime::{Options, Runtime};
use crate::ui::state::{StatusInfo, UiState};
use crate::ui::{View, render};

/// Frames are drawn at most this often.
pub const FRAME: Duration = Duration::from_millis(50);
/// Clocks on screen (ages, durations) are refreshed this often when idle.
pub const IDLE_REDRAW: Duration = Duration::from_millis(500);

/// Reads terminal events on a thread of its own.
pub fn spawn_event_reader() -> mpsc::UnboundedReceiver<Event> {
    let (tx, rx) = mpsc::unbounded_channel();
    let spawned = std::thread::Builder::new().name("terminal-events".into()).spawn(move || {
        while let Ok(ev) = event::read() {
            if tx.send(ev).is_err() {
                break;
            }
        }
    });
    if let Err(e) = spawned {
        tracing::error!(error = %e, "cannot read terminal events");
    }
    rx
}

/// What the dashboard shows beyond the engine.
pub struct Screen {
    pub keymap: Keymap,
    pub dialect: Dialect,
    pub sim_url: Option<String>,
}

/// Runs the dashboard until the operator quits or a signal arrives.
pub async fn run(mut rt: Runtime, mut terminal: DefaultTerminal, screen: Screen) -> std::io::Result<Runtime> {
    let mut ui = UiState::default();
    let mut keys = spawn_event_reader();
    let signal = shutdown_signal();
    tokio::pin!(signal);
    let mut dirty = true;
    let mut last_draw = Instant::now().checked_sub(FRAME).unwrap_or_else(Instant::now);
    loop {
        if dirty || last_draw.elapsed() >= IDLE_REDRAW {
            let wait = FRAME.saturating_sub(last_draw.elapsed());
            if wait.is_zero() {
                draw(&mut terminal, &rt, &ui, &screen)?;
                last_draw = Instant::now();
                dirty = false;
            }
        }
        let next_frame =
            tokio::time::sleep(FRAME.saturating_sub(last_draw.elapsed()).max(Duration::from_millis(5)));
        tokio::select! {
            msg = rt.next() => {
                rt.handle(msg);
                rt.drain_ready(512);
                dirty = true;
            }
            Some(ev) = keys.recv() => {
                if let Event::Key(key) = ev {
                    let catalog = rt.catalog().clone();
                    for cmd in on_key(key, &mut ui, rt.engine(), &screen.keymap, &catalog) {
                        rt.handle(Msg::Command(cmd));
                    }
                }
                if let Some(id) = ui.open_widget.take() {
                    ui.widget_link = rt.widget_page(&id);
                    if let Some(url) = &ui.widget_link {
                        open_in_browser(url);
                    }
                }
                dirty = true;
                if ui.quit {
                    break;
                }
            }
            () = &mut signal => break,
            () = next_frame => {}
        }
    }
    Ok(rt)
}

/// Opens `url` with the desktop's handler when there is one (`xdg-open`);
/// without one the hint line still shows the link to copy.
fn open_in_browser(url: &str) {
    let opened = std::process::Command::new("xdg-open")
        .arg(url)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn();
    if let Err(e) = opened {
        tracing::info!(error = %e, "no browser to open the widget page; its link is on the hint line");
    }
}

fn draw(terminal: &mut DefaultTerminal, rt: &Runtime, ui: &UiState, screen: &Screen) -> std::io::Result<()> {
    let status = StatusInfo {
        dialect: screen.dialect,
        token_expires_at: rt.token_info().expires_at,
        wall_now: SystemTime::now(),
        queue_depth: rt.queue_depth(),
        sim_url: screen.sim_url.clone(),
        widget_url: rt.widget_url().map(str::to_string),
    };
    let catalog = rt.catalog().clone();
    let view = View {
        engine: rt.engine(),
        ui,
        keymap: &screen.keymap,
        status: &status,
        catalog: &catalog,
        now: Instant::now(),
        floor: None,
    };
    terminal.draw(|f| render(f, &view))?;
    Ok(())
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
    let result = run(rt, terminal, screen).await;
    ratatui::restore();
    let rt = result?;
    rt.shutdown().await;
    Ok(ExitCode::SUCCESS)
}

/// Resolves at a shutdown signal or once `exit_after` has passed: how the
/// headless console, the floor console and a worker end.
pub fn stop_requested(exit_after: Option<std::time::Duration>) -> impl std::future::Future<Output = ()> {
    let signal = shutdown_signal();
    async move {
        tokio::select! {
            () = tokio::time::sleep(exit_after.unwrap_or(std::time::Duration::MAX / 4)) => {}
            () = signal => {}
        }
    }
}

/// SIGTERM or Ctrl-C. The handlers are installed when this is called, not
/// when the future is first polled: a signal that arrives while the
/// process is still starting must stop it cleanly, not kill it.
pub fn shutdown_signal() -> impl std::future::Future<Output = ()> {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        let term = signal(SignalKind::terminate()).ok();
        let int = signal(SignalKind::interrupt()).ok();
        async move {
            let wait = |s: Option<tokio::signal::unix::Signal>| async move {
                match s {
                    Some(mut s) => {
                        s.recv().await;
                    }
                    None => std::future::pending::<()>().await,
                }
            };
            tokio::select! {
                () = wait(term) => {}
                () = wait(int) => {}
            }
        }
    }
    #[cfg(not(unix))]
    async {
        let _ = tokio::signal::ctrl_c().await;
    }
}
