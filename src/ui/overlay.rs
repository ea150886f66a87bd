//! The editor, palette and filter overlays.

use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::Style;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Borders, Clear, Paragraph};
use ratatui_textarea::TextArea;

use super::View;
use super::conversations::short_id;
use super::state::{EditTarget, palette_results, selected};
use super::theme;

pub fn editor(frame: &mut Frame, area: Rect, target: &EditTarget, text: &TextArea<'static>) {
    frame.render_widget(Clear, area);
    let block = Block::default().borders(Borders::ALL).title(format!(
        " Edit · {} → {} · ctrl-s send · esc cancel ",
        target.article_id,
        short_id(&target.conversation)
    ));
    let inner = block.inner(area);
    frame.render_widget(block, area);
    frame.render_widget(text, inner);
}

pub fn palette(frame: &mut Frame, area: Rect, v: &View, query: &str, chosen: usize) {
    frame.render_widget(Clear, area);
    let target = selected(v.engine, v.ui)
        .map_or("(no conversation selected)".to_string(), |c| short_id(&c.id).to_string());
    let block = Block::default()
        .borders(Borders::ALL)
        .title(format!(" Push an article to {target} · enter push · esc close "));
    let inner = block.inner(area);
    frame.render_widget(block, area);
    let [input, list] = Layout::vertical([Constraint::Length(2), Constraint::Min(0)]).areas(inner);
    let results = palette_results(v.catalog, query);
    frame.render_widget(
        Paragraph::new(vec![
            Line::from(vec![
                Span::styled("search ▸ ", theme::dim()),
                Span::raw(query.to_string()),
                Span::raw("▏"),
            ]),
            Line::styled(format!("{} of {} articles", results.len(), v.catalog.len()), theme::dim()),
        ]),
        input,
    );
    let height = usize::from(list.height);
    let chosen = chosen.min(results.len().saturating_sub(1));
    let first = chosen.saturating_sub(height.saturating_sub(1));
    let lines: Vec<Line> = results
        .iter()
        .enumerate()
        .skip(first)
        .take(height)
        .map(|(i, &a)| {
            let art = &v.catalog[a];
            let line = Line::from(vec![
                Span::raw(format!("{:<24} ", art.id)),
                Span::styled(art.title.clone(), theme::title()),
                Span::styled(format!("  {}", art.tags.join(", ")), theme::dim()),
            ]);
            if i == chosen { line.style(theme::selected()) } else { line }
        })
        .collect();
    frame.render_widget(Paragraph::new(lines), list);
}

pub fn filter(frame: &mut Frame, area: Rect, text: &str) {
    frame.render_widget(Clear, area);
    let line = Line::from(vec![
        Span::styled(" filter conversations ▸ ", Style::new().fg(theme::CUSTOMER)),
        Span::raw(text.to_string()),
        Span::raw("▏  (enter keep · esc clear)"),
    ]);
    frame.render_widget(Paragraph::new(line), area);
}
