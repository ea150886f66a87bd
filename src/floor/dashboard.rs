//! `agent-assist console --nats URL`: the dashboard over a floor. The same
//! screens and keys as the single-process console, drawn from a
//! [`FloorModel`] that the stream feeds (history first, then live) instead
//! of a local engine. A key's commands go by request/reply to the worker
//! owning the call's queue, and its answer (accepted, refused, no owner, no
//! answer in time) shows on the status line; the decision itself comes
//! back through the stream, so every console shows it the same way. It
//! never pushes anything itself, and says so when asked for what only a
//! worker can do.

use std::process::ExitCode;
use std::time::{Duration, Instant, SystemTime};

use color_eyre::eyre::Result;
use ratatui::DefaultTerminal;
use ratatui::crossterm::event::Event;
use tokio::sync::mpsc;

use super::console::{ConsolePlan, ask, read_stream};
use super::model::{Answer, FloorModel, StreamItem, outcome, verb};
use super::{Floor, Link};
use crate::app::{FRAME, IDLE_REDRAW, shutdown_signal, spawn_event_reader};
use crate::config::Config;
use crate::config::keymap::Keymap;
use crate::engine::Command;
use crate::input::on_key;
use crate::kb::store::StoredArticle;
use crate::ui::state::{Overlay, StatusInfo, UiState};
use crate::ui::{View, render};

/// How often ended calls are forgotten.
const PRUNE_EVERY: Duration = Duration::from_secs(1);
/// Stream events applied per turn of the loop, so keys stay responsive
/// while a long history replays.
const BATCH: usize = 2048;

/// A command's answer, back from its request task.
type Answered = (Command, String, Answer);

/// Runs the floor dashboard until the operator quits, a signal, or
/// `exit_after`; restores the terminal on the way out.
pub async fn run(config: &Config, plan: ConsolePlan) -> Result<ExitCode> {
    let keymap = config.keys.keymap().map_err(|e| color_eyre::eyre::eyre!("config `keys`: {e}"))?;
    let id = super::member_id("console");
    let (link_tx, links) = mpsc::unbounded_channel();
    let client = super::connect(&config.nats, &plan.url, &id, link_tx).await?;
    let floor = Floor::open(client, &config.nats).await?;
    let sources = config.kb.sources();
    let loaded = tokio::task::spawn_blocking(move || load_catalog(&sources)).await;
    let (catalog, catalog_note) = match loaded {
        Ok(Ok(c)) => (c, None),
        Ok(Err(e)) => (Vec::new(), Some(e)),
        Err(e) => (Vec::new(), Some(e.to_string())),
    };
    let mut model =
        FloorModel::new(config.policy.clone(), &config.delivery.sinks, catalog, plan.queues.clone());
    model.set_link(true, Instant::now());
    let (events_tx, events) = mpsc::channel::<StreamItem>(8192);
    let reader = tokio::spawn(read_stream(floor.clone(), plan.queues.clone(), events_tx));
    let screen =
        Screen { keymap, dialect: config.genesys.dialect, catalog_note, exit_after: plan.exit_after };
    let terminal = ratatui::init();
    let result = run_loop(terminal, &mut model, &floor, &screen, events, links).await;
    ratatui::restore();
    reader.abort();
    result?;
    Ok(ExitCode::SUCCESS)
}

/// The console's copy of the knowledge base: titles and passages for the
/// matches, articles for the palette. Read from the sources, never
/// embedded (the workers search; the console only shows).
fn load_catalog(sources: &[std::path::PathBuf]) -> Result<Vec<StoredArticle>, String> {
    let articles = crate::kb::source::load_sources(sources).map_err(|e| e.to_string())?;
    Ok(articles
        .into_iter()
        .map(|a| StoredArticle { id: a.id, title: a.title, url: a.url, tags: a.tags, content: a.content })
        .collect())
}

struct Screen {
    keymap: Keymap,
    dialect: crate::net::Dialect,
    /// Why there is no local copy of the KB, when there is none.
    catalog_note: Option<String>,
    exit_after: Option<Duration>,
}

async fn run_loop(
    mut terminal: DefaultTerminal,
    model: &mut FloorModel,
    floor: &Floor,
    screen: &Screen,
    mut events: mpsc::Receiver<StreamItem>,
    mut links: mpsc::UnboundedReceiver<Link>,
) -> std::io::Result<()> {
    let mut ui = UiState::default();
    let mut keys = spawn_event_reader();
    let (answers_tx, mut answers) = mpsc::unbounded_channel::<Answered>();
    let signal = shutdown_signal();
    tokio::pin!(signal);
    let stop = tokio::time::sleep(screen.exit_after.unwrap_or(Duration::MAX / 4));
    tokio::pin!(stop);
    let mut prune = tokio::time::interval(PRUNE_EVERY);
    let mut dirty = true;
    let mut last_draw = Instant::now().checked_sub(FRAME).unwrap_or_else(Instant::now);
    loop {
        if (dirty || last_draw.elapsed() >= IDLE_REDRAW) && last_draw.elapsed() >= FRAME {
            draw(&mut terminal, model, &ui, screen, events.len())?;
            last_draw = Instant::now();
            dirty = false;
        }
        let next_frame =
            tokio::time::sleep(FRAME.saturating_sub(last_draw.elapsed()).max(Duration::from_millis(5)));
        tokio::select! {
            Some(item) = events.recv() => {
                let (now, wall) = (Instant::now(), SystemTime::now());
                model.apply(item, now, wall);
                for _ in 0..BATCH {
                    let Ok(item) = events.try_recv() else { break };
                    model.apply(item, now, wall);
                }
                dirty = true;
            }
            Some(link) = links.recv() => {
                model.set_link(link == Link::Up, Instant::now());
                dirty = true;
            }
            Some((cmd, queue, answer)) = answers.recv() => {
                model.info.pending = model.info.pending.saturating_sub(1);
                model.tell(Instant::now(), outcome(&cmd, &queue, &answer));
                dirty = true;
            }
            Some(ev) = keys.recv() => {
                if let Event::Key(key) = ev {
                    on_terminal_key(key, &mut ui, model, floor, screen, &answers_tx);
                }
                dirty = true;
                if ui.quit {
                    break;
                }
            }
            _ = prune.tick() => model.tick(Instant::now()),
            () = &mut signal => break,
            () = &mut stop => break,
            () = next_frame => {}
        }
    }
    Ok(())
}

/// A key: the dashboard's own handling, then each command to its owner.
fn on_terminal_key(
    key: ratatui::crossterm::event::KeyEvent,
    ui: &mut UiState,
    model: &mut FloorModel,
    floor: &Floor,
    screen: &Screen,
    answers: &mpsc::UnboundedSender<Answered>,
) {
    let catalog = model.catalog().clone();
    let palette_before = matches!(ui.overlay, Overlay::Palette { .. });
    let commands = on_key(key, ui, model.engine(), &screen.keymap, &catalog);
    let now = Instant::now();
    if catalog.is_empty() && !palette_before && matches!(ui.overlay, Overlay::Palette { .. }) {
        ui.overlay = Overlay::None;
        let why = screen.catalog_note.as_deref().unwrap_or("no articles");
        model
            .tell(now, format!("no article palette: this console has no copy of the knowledge base ({why})"));
    }
    if ui.open_widget.take().is_some() {
        model.tell(now, "agent widget pages are served by the workers, not by a floor console".into());
    }
    for cmd in commands {
        send(cmd, model, floor, answers, now);
    }
}

/// Sends one command to the owner of each queue it concerns.
fn send(
    cmd: Command,
    model: &mut FloorModel,
    floor: &Floor,
    answers: &mpsc::UnboundedSender<Answered>,
    now: Instant,
) {
    let v = verb(&cmd);
    if !model.info.link_up {
        return model.tell(now, format!("✖ {v}: not sent, the floor link is down"));
    }
    let queues = match model.route(&cmd) {
        Ok(q) => q,
        Err(why) => return model.tell(now, format!("✖ {v}: {why}")),
    };
    model.tell(now, format!("… {v} sent to the owner of {}", queues.join(", ")));
    for queue in queues {
        model.info.pending += 1;
        let (floor, cmd, answers) = (floor.clone(), cmd.clone(), answers.clone());
        tokio::spawn(async move {
            let answer = ask(&floor, &queue, &cmd).await;
            let _ = answers.send((cmd, queue, answer));
        });
    }
}

fn draw(
    terminal: &mut DefaultTerminal,
    model: &FloorModel,
    ui: &UiState,
    screen: &Screen,
    backlog: usize,
) -> std::io::Result<()> {
    let status = StatusInfo {
        dialect: screen.dialect,
        token_expires_at: None,
        wall_now: SystemTime::now(),
        queue_depth: backlog,
        sim_url: None,
        widget_url: None,
    };
    let catalog = model.catalog().clone();
    let view = View {
        engine: model.engine(),
        ui,
        keymap: &screen.keymap,
        status: &status,
        catalog: &catalog,
        now: Instant::now(),
        floor: Some(&model.info),
    };
    terminal.draw(|f| render(f, &view))?;
    Ok(())
}
