//! The help overlay, generated from the keymap (so a remapped key shows as
//! remapped), plus the fixed keys of the editor and the palette.

use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::Style;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Borders, Clear, Paragraph};

use super::View;
use super::theme;

pub fn render(frame: &mut Frame, area: Rect, v: &View) {
    let help: Vec<(String, &str)> = v
        .keymap
        .help()
        .into_iter()
        .map(|(action, chords)| {
            (chords.iter().map(ToString::to_string).collect::<Vec<_>>().join(", "), action.describe())
        })
        .collect();
    let key_width = help.iter().map(|(k, _)| k.chars().count()).max().unwrap_or(0);
    let entries: Vec<Line> = help
        .into_iter()
        .map(|(keys, describe)| {
            Line::from(vec![
                Span::styled(format!("{keys:>key_width$}  "), Style::new().fg(theme::CUSTOMER)),
                Span::raw(describe),
            ])
        })
        .collect();
    frame.render_widget(Clear, area);
    let block = Block::default()
        .borders(Borders::ALL)
        .title(" Help · keys from the keymap ([keys] in the config remaps them) ");
    let inner = block.inner(area);
    frame.render_widget(block, area);
    let [body, foot] = Layout::vertical([Constraint::Min(0), Constraint::Length(3)]).areas(inner);
    // Two columns when one would not fit.
    let per_column =
        if entries.len() <= usize::from(body.height) { entries.len() } else { entries.len().div_ceil(2) };
    let [left, right] =
        Layout::horizontal([Constraint::Percentage(50), Constraint::Percentage(50)]).areas(body);
    let (first, second) = entries.split_at(per_column.min(entries.len()));
    if second.is_empty() {
        frame.render_widget(Paragraph::new(first.to_vec()), body);
    } else {
        frame.render_widget(Paragraph::new(first.to_vec()), left);
        frame.render_widget(Paragraph::new(second.to_vec()), right);
    }
    let notes = vec![
        Line::styled("Editor: ctrl-s sends the edited text, esc cancels.", theme::dim()),
        Line::styled("Palette: type to search, ↑/↓ choose, enter pushes, esc closes.", theme::dim()),
        Line::styled("ctrl-c always quits. Any key closes this help.", theme::dim()),
    ];
    frame.render_widget(Paragraph::new(notes), foot);
}
