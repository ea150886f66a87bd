//! The dashboard's loop: the runtime, terminal key events and drawing.
//! Drawing happens at most once per frame interval and only when something
//! changed; key events come from a reader thread so the loop never blocks on
//! the terminal. The terminal is restored on every way out, panics included
//! (ratatui's init installs the hook).

use std::time::{Duration, Instant, SystemTime};

use ratatui::DefaultTerminal;
use ratatui::crossterm::event::{self, Event};
use tokio::sync::mpsc;

use crate::config::keymap::Keymap;
use crate::engine::Msg;
use crate::input::on_key;
use crate::net::Dialect;
use crate::runtime::Runtime;
use crate::ui::state::{StatusInfo, UiState};
use crate::ui::{View, render};

/// Frames are drawn at most this often.
const FRAME: Duration = Duration::from_millis(50);
/// Clocks on screen (ages, durations) are refreshed this often when idle.
const IDLE_REDRAW: Duration = Duration::from_millis(500);

/// Reads terminal events on a thread of its own.
fn spawn_event_reader() -> mpsc::UnboundedReceiver<Event> {
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
    let signal = crate::cmd::console::shutdown_signal();
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

fn draw(terminal: &mut DefaultTerminal, rt: &Runtime, ui: &UiState, screen: &Screen) -> std::io::Result<()> {
    let status = StatusInfo {
        dialect: screen.dialect,
        token_expires_at: rt.token_info().expires_at,
        wall_now: SystemTime::now(),
        queue_depth: rt.queue_depth(),
        sim_url: screen.sim_url.clone(),
    };
    let catalog = rt.catalog().clone();
    let view = View {
        engine: rt.engine(),
        ui,
        keymap: &screen.keymap,
        status: &status,
        catalog: &catalog,
        now: Instant::now(),
    };
    terminal.draw(|f| render(f, &view))?;
    Ok(())
}
