//! The transcript pane: the selected call's utterances, customer and agent
//! distinguished, the current query window highlighted, newest at the
//! bottom, scrollable.

use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::style::{Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Borders, Paragraph, Wrap};

use super::View;
use super::conversations::short_id;
use super::state::{Focus, selected, short_duration};
use super::theme;
use crate::domain::Speaker;

pub fn render(frame: &mut Frame, area: Rect, v: &View) {
    let conv = selected(v.engine, v.ui);
    let owner = |id: &str| v.floor.and_then(|f| f.owners.get(id)).map(|w| format!("· worker {w} "));
    let title = conv.map_or_else(
        || " Transcript ".to_string(),
        |c| format!(" Transcript · {} {}", short_id(&c.id), owner(&c.id).unwrap_or_default()),
    );
    let block = Block::default()
        .borders(Borders::ALL)
        .title(title)
        .border_style(theme::focused_border(v.ui.focus == Focus::Transcript));
    let Some(c) = conv else {
        let empty =
            Paragraph::new("No conversations yet. Waiting for calls…").style(theme::dim()).block(block);
        frame.render_widget(empty, area);
        return;
    };
    let mut lines: Vec<Line> = Vec::new();
    for u in &c.utterances {
        let (who, color) = match u.speaker {
            Speaker::Customer => ("Customer", theme::CUSTOMER),
            Speaker::Agent => ("Agent   ", theme::AGENT),
        };
        let in_window = c.window.contains(&u.id);
        let mut text_style = Style::new();
        if in_window {
            text_style = text_style.add_modifier(Modifier::BOLD).fg(theme::CUSTOMER);
        }
        if !u.is_final {
            text_style = text_style.add_modifier(Modifier::ITALIC);
        }
        let marker = if in_window { "▌" } else { " " };
        lines.push(Line::from(vec![
            Span::styled(marker, Style::new().fg(theme::PUSH)),
            Span::styled(
                format!("{:>5} ", short_duration(u.at.saturating_duration_since(c.started_at))),
                theme::dim(),
            ),
            Span::styled(format!("{who} "), Style::new().fg(color)),
            Span::styled(u.text.clone(), text_style),
        ]));
    }
    if c.ended_at.is_some() {
        lines.push(Line::styled("— call ended —", theme::dim()));
    }
    // Bottom-anchored: scroll counts lines up from the newest.
    let inner_width = usize::from(area.width.saturating_sub(2)).max(1);
    let rows: usize = lines.iter().map(|l| l.width().div_ceil(inner_width).max(1)).sum();
    let height = usize::from(area.height.saturating_sub(2));
    let top = rows.saturating_sub(height).saturating_sub(v.ui.transcript_scroll);
    let para = Paragraph::new(lines)
        .block(block)
        .wrap(Wrap { trim: false })
        .scroll((u16::try_from(top).unwrap_or(u16::MAX), 0));
    frame.render_widget(para, area);
}
