//! The conversations pane: every live call with queue, duration, mode, last
//! activity, suggestion count and last push status; ended calls greyed.

use ratatui::Frame;
use ratatui::layout::{Constraint, Rect};
use ratatui::style::Style;
use ratatui::text::Span;
use ratatui::widgets::{Block, Borders, Cell, Row, Table};

use super::View;
use super::state::{Focus, age, selected, short_duration, short_worker, visible_conversations};
use super::theme;
use crate::engine::{Conversation, SuggestionState};

/// A short form of a conversation id: long UUIDs keep their first 8 chars.
pub fn short_id(id: &str) -> &str {
    if id.len() > 12 && id.is_char_boundary(8) { &id[..8] } else { id }
}

fn last_push(c: &Conversation) -> (String, Style) {
    let latest = c.suggestions.iter().filter(|s| s.sent_at.is_some()).max_by_key(|s| s.sent_at);
    match latest.map(|s| &s.state) {
        Some(SuggestionState::Pushed) => ("pushed".into(), Style::new().fg(theme::OK)),
        Some(SuggestionState::Sending) => ("sending".into(), Style::new().fg(theme::WARN)),
        Some(SuggestionState::Failed(_)) => ("failed".into(), Style::new().fg(theme::BAD)),
        _ => ("-".into(), theme::dim()),
    }
}

pub fn render(frame: &mut Frame, area: Rect, v: &View) {
    let list = visible_conversations(v.engine, v.ui);
    // Narrow panes drop the queue and last-activity columns.
    let narrow = area.width < 56;
    let chosen = selected(v.engine, v.ui).map(|c| c.id.clone());
    let global = v.engine.policy().mode;
    let rows: Vec<Row> = list
        .iter()
        .map(|c| {
            let end = c.ended_at.unwrap_or(v.now);
            let mut mode = c.effective_mode(global).as_str().to_string();
            if c.paused || v.engine.paused_all() {
                mode.push_str(" ⏸");
            }
            let (push, push_style) = last_push(c);
            let listed = c.suggestions.iter().filter(|s| s.state.is_open() || s.sent_at.is_some()).count();
            let mut cells = vec![
                Cell::from(short_id(&c.id).to_string()),
                Cell::from(c.queue_id.as_deref().map_or("-", short_id).to_string()),
                Cell::from(short_duration(end.saturating_duration_since(c.started_at))),
                Cell::from(mode),
                Cell::from(age(v.now, c.last_activity)),
                Cell::from(listed.to_string()),
                Cell::from(Span::styled(push, push_style)),
            ];
            if let Some(f) = v.floor {
                // Which worker assists the call: its events come from it.
                let owner = f.owners.get(&c.id).map_or("-", |w| short_worker(w));
                cells.insert(2, Cell::from(Span::styled(owner.to_string(), theme::dim())));
            }
            if narrow {
                cells.remove(if v.floor.is_some() { 5 } else { 4 });
                cells.remove(1);
            }
            let mut row = Row::new(cells);
            if c.ended_at.is_some() {
                row = row.style(theme::dim());
            }
            if Some(&c.id) == chosen.as_ref() {
                row = row.style(theme::selected());
            }
            row
        })
        .collect();
    let title = if v.ui.filter.is_empty() {
        format!(" Conversations ({}) · by {} ", list.len(), v.ui.sort.label())
    } else {
        format!(" Conversations ({}) · filter \"{}\" ", list.len(), v.ui.filter)
    };
    let block = Block::default()
        .borders(Borders::ALL)
        .title(title)
        .border_style(theme::focused_border(v.ui.focus == Focus::Conversations));
    let mut widths = vec![
        Constraint::Length(8),
        Constraint::Length(8),
        Constraint::Length(6),
        Constraint::Length(8),
        Constraint::Length(5),
        Constraint::Length(3),
        Constraint::Min(6),
    ];
    let mut header = vec!["call", "queue", "dur", "mode", "last", "#", "push"];
    if v.floor.is_some() {
        widths.insert(2, Constraint::Length(12));
        header.insert(2, "worker");
    }
    let last = if v.floor.is_some() { 5 } else { 4 };
    if narrow {
        for i in [last, 1] {
            widths.remove(i);
            header.remove(i);
        }
    }
    let header = Row::new(header).style(theme::title());
    frame.render_widget(Table::new(rows, widths).header(header).block(block).column_spacing(1), area);
}
