//! The operator console's rendering: a pure function of the engine, the
//! console's own state and a few status facts. One file per screen region.
//!
//! ```text
//! ┌ Conversations ─────────┐┌ Transcript ──────────────────────┐
//! │ call  queue dur mode … ││ 0s  Agent    Thanks for calling…   │
//! │▶…                      ││▌12s Customer I forgot my password  │
//! └────────────────────────┘└───────────────────────────────────┘
//! ┌ Matches · top 3 ────────────────────────────────────────────┐
//! │ query “…”   ┃show ┃push ┃auto                               │
//! │▶ 0.732 ███████████┃███┃█·· password-reset  Resetting…  queued│
//! │ passage of the selected match…                             │
//! └─────────────────────────────────────────────────────────────┘
//! ┌ Push log ───────────────────────────────────────────────────┐
//! └─────────────────────────────────────────────────────────────┘
//!  ● LIVE ♥ 3s · token 23h59m · notifications  MANUAL  show … ▁▂▅
//!  a approve  e edit  r reject  p push article …  ? help  q quit
//! ```
//!
//! Overlays (help, editor, palette, filter) draw on top. Very small
//! terminals get a message instead of a broken layout.

pub mod conversations;
pub mod help;
pub mod matches;
pub mod overlay;
pub mod push_log;
pub mod state;
pub mod status_bar;
pub mod theme;
pub mod transcript;

use std::time::Instant;

use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::widgets::Paragraph;

use crate::config::keymap::Keymap;
use crate::engine::Engine;
use crate::kb::store::StoredArticle;
use state::{FloorInfo, Overlay, StatusInfo, UiState};

/// Everything a frame is drawn from.
pub struct View<'a> {
    pub engine: &'a Engine,
    pub ui: &'a UiState,
    pub keymap: &'a Keymap,
    pub status: &'a StatusInfo,
    pub catalog: &'a [StoredArticle],
    /// The time the frame shows (fixed in tests).
    pub now: Instant,
    /// A floor console's link and owners; `None` over a local engine.
    pub floor: Option<&'a FloorInfo>,
}

/// Smallest usable size; below it the console asks for a bigger window.
pub const MIN_WIDTH: u16 = 60;
pub const MIN_HEIGHT: u16 = 16;

/// Draws one frame.
pub fn render(frame: &mut Frame, v: &View) {
    let area = frame.area();
    if area.width < MIN_WIDTH || area.height < MIN_HEIGHT {
        let msg = format!(
            "agent-assist needs at least {MIN_WIDTH}×{MIN_HEIGHT} (now {}×{}). q quits.",
            area.width, area.height
        );
        frame.render_widget(Paragraph::new(msg).wrap(ratatui::widgets::Wrap { trim: true }), area);
        return;
    }
    let [main, bar] = Layout::vertical([Constraint::Min(0), Constraint::Length(2)]).areas(area);
    let show_log = main.height >= 24;
    let [top, middle, bottom] = Layout::vertical([
        Constraint::Percentage(if show_log { 42 } else { 50 }),
        Constraint::Min(8),
        Constraint::Percentage(if show_log { 22 } else { 0 }),
    ])
    .areas(main);
    let [left, right] =
        Layout::horizontal([Constraint::Percentage(42), Constraint::Percentage(58)]).areas(top);
    conversations::render(frame, left, v);
    transcript::render(frame, right, v);
    matches::render(frame, middle, v);
    if show_log {
        push_log::render(frame, bottom, v);
    }
    status_bar::render(frame, bar, v);
    match &v.ui.overlay {
        Overlay::None => {}
        Overlay::Help => help::render(frame, centered(area, if area.width < 110 { 98 } else { 76 }, 94), v),
        Overlay::Editor { target, text } => overlay::editor(frame, centered(area, 80, 60), target, text),
        Overlay::Palette { query, selected } => {
            overlay::palette(frame, centered(area, 80, 70), v, query, *selected)
        }
        Overlay::Filter => {
            let line = Rect { y: bar.y, height: 1, ..bar };
            overlay::filter(frame, line, &v.ui.filter);
        }
    }
}

/// A rectangle of the given percentages of `area`, centred.
pub fn centered(area: Rect, width_pct: u16, height_pct: u16) -> Rect {
    let [_, v, _] = Layout::vertical([
        Constraint::Percentage((100 - height_pct) / 2),
        Constraint::Percentage(height_pct),
        Constraint::Min(0),
    ])
    .areas(area);
    let [_, h, _] = Layout::horizontal([
        Constraint::Percentage((100 - width_pct) / 2),
        Constraint::Percentage(width_pct),
        Constraint::Min(0),
    ])
    .areas(v);
    h
}
