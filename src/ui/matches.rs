//! The matches pane: the top-k articles for the selected call's current
//! window, each with its score as a number and a bar on which the `show`,
//! `push` and `auto` thresholds are drawn, its title, and the state of its
//! suggestion and what agents said of the article (useful / not useful);
//! under them, the selected match's passage with the agents' counts, and how
//! many recent matches would pass the `push` threshold. A suggestion whose
//! article changed in the knowledge base since is marked `changed`.

use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::{Color, Style};
use ratatui::text::{Line, Span, Text};
use ratatui::widgets::{Block, Borders, Paragraph, Wrap};

use super::View;
use super::state::{Focus, MatchRow, match_rows, selected};
use super::theme;
use crate::engine::{ArticleFeedback, Policy, SuggestionState};

/// A score bar of `width` cells (score 1.0 fills it) with the threshold
/// marks drawn in, as styled spans.
pub fn bar(score: f32, p: &Policy, width: usize) -> Vec<Span<'static>> {
    let mark = |t: f32| (t.clamp(0.0, 1.0) * width as f32).round() as usize;
    let (s, pu, a) = (mark(p.show), mark(p.push), mark(p.auto));
    let filled = (score.clamp(0.0, 1.0) * width as f32).round() as usize;
    let color = if score >= p.auto {
        theme::AUTO
    } else if score >= p.push {
        theme::PUSH
    } else if score >= p.show {
        theme::SHOW
    } else {
        Color::DarkGray
    };
    (0..width)
        .map(|i| {
            let on = i < filled;
            let (glyph, style) = if i == a {
                ("┃", Style::new().fg(theme::AUTO))
            } else if i == pu {
                ("┃", Style::new().fg(theme::PUSH))
            } else if i == s {
                ("┃", Style::new().fg(theme::SHOW))
            } else if on {
                ("█", Style::new().fg(color))
            } else {
                ("·", theme::dim())
            };
            Span::styled(glyph, style)
        })
        .collect()
}

fn state_span(row: &MatchRow, p: &Policy) -> Span<'static> {
    let Some(s) = row.suggestion else {
        let label = if row.hit.score >= p.show { "cooldown" } else { "below show" };
        return Span::styled(label, theme::dim());
    };
    let color = match &s.state {
        SuggestionState::Pushed => theme::OK,
        SuggestionState::Failed(_) => theme::BAD,
        SuggestionState::Sending | SuggestionState::Queued => theme::WARN,
        _ => Color::Gray,
    };
    let mut text = s.state.name().to_string();
    if s.state == SuggestionState::Sending && s.attempts > 0 {
        text = format!("retrying #{}", s.attempts + 1);
    }
    if let SuggestionState::Failed(reason) = &s.state {
        text = format!("failed: {reason}");
    }
    if s.original.is_some() {
        text.push_str(" (edited)");
    }
    // The article was edited in the KB after this was shown (or sent).
    if s.article_changed {
        text.push_str(" changed");
    }
    Span::styled(text, Style::new().fg(color))
}

/// Agents' verdicts on an article, compact for its row ("+3 −1", used and
/// not useful), padded to one column width; blank until a page showed it.
fn verdict_span(f: ArticleFeedback) -> Span<'static> {
    if f.shown == 0 {
        return Span::raw(format!("{:8}", ""));
    }
    let color = if f.not_useful > f.useful + f.copied { theme::BAD } else { theme::OK };
    Span::styled(
        format!("{:<8}", format!("+{} −{}", f.useful + f.copied, f.not_useful)),
        Style::new().fg(color),
    )
}

/// The full counts, for the selected match's detail.
fn verdict_line(f: ArticleFeedback) -> Option<Line<'static>> {
    (f.shown > 0).then(|| {
        Line::from(Span::styled(
            format!(
                "agents: shown {} · useful {} · not useful {} · copied {}",
                f.shown, f.useful, f.not_useful, f.copied
            ),
            theme::dim(),
        ))
    })
}

pub fn render(frame: &mut Frame, area: Rect, v: &View) {
    let p = v.engine.policy();
    let conv = selected(v.engine, v.ui);
    let block = Block::default()
        .borders(Borders::ALL)
        .title(format!(" Matches · top {} ", p.top_k))
        .border_style(theme::focused_border(v.ui.focus == Focus::Matches));
    let inner = block.inner(area);
    frame.render_widget(block, area);
    let Some(c) = conv else { return };
    let rows = match_rows(c);
    let [legend, list, detail] = Layout::vertical([
        Constraint::Length(2),
        Constraint::Length(u16::try_from(rows.len()).unwrap_or(0).max(1)),
        Constraint::Min(0),
    ])
    .areas(inner);
    let (pass, total) = v.engine.would_pass(p.push);
    let legend_lines = vec![
        Line::from(vec![
            Span::styled("query ", theme::dim()),
            Span::raw(if c.matches_query.is_empty() {
                "(waiting for the customer to speak)".into()
            } else {
                format!("“{}”", c.matches_query)
            }),
        ]),
        Line::from(vec![
            Span::styled(format!("┃show {:.2} ", p.show), Style::new().fg(theme::SHOW)),
            Span::styled(format!("┃push {:.2} ", p.push), Style::new().fg(theme::PUSH)),
            Span::styled(
                if p.agreement_bonus > 0.0 || p.lead_weight > 0.0 {
                    format!("┃auto {:.2} less credit ", p.auto)
                } else {
                    format!("┃auto {:.2} ", p.auto)
                },
                Style::new().fg(theme::AUTO),
            ),
            Span::styled(format!(" {pass} of {total} matches in the last 10 min pass push"), theme::dim()),
        ]),
    ];
    frame.render_widget(Paragraph::new(legend_lines), legend);
    if rows.is_empty() {
        frame.render_widget(Paragraph::new("No matches yet.").style(theme::dim()), list);
        return;
    }
    let chosen = v.ui.selected_match.min(rows.len() - 1);
    // Wider terminals get a finer bar (one cell is 1/width of the score range).
    let bar_width = usize::from(inner.width / 4).clamp(20, 40);
    let with_verdicts = rows.iter().any(|r| v.engine.article_feedback(&r.hit.article_id).shown > 0);
    let lines: Vec<Line> = rows
        .iter()
        .enumerate()
        .map(|(i, r)| {
            let pointer = if i == chosen { "▶ " } else { "  " };
            // A calibrated KB says how likely the article is right; else the raw score.
            let figure = r
                .hit
                .probability
                .map_or_else(|| format!("{:.3} ", r.hit.score), |p| format!("{:>3.0}% likely ", p * 100.0));
            let mut spans = vec![Span::raw(pointer), Span::raw(figure)];
            spans.extend(bar(r.hit.score, p, bar_width));
            let mut state = state_span(r, p);
            state.content = format!(" {:<11} ", state.content).into();
            spans.push(state);
            spans.push(Span::raw(format!("{:<22} ", r.hit.article_id)));
            // The verdict column appears once agents have seen any of these.
            if with_verdicts {
                spans.push(verdict_span(v.engine.article_feedback(&r.hit.article_id)));
            }
            spans.push(Span::styled(r.hit.title.clone(), theme::title()));
            let line = Line::from(spans);
            if i == chosen && v.ui.focus == Focus::Matches { line.style(theme::selected()) } else { line }
        })
        .collect();
    frame.render_widget(Paragraph::new(lines), list);
    let row = &rows[chosen];
    let text = row.suggestion.map_or(row.hit.text.as_str(), |s| s.content.as_str());
    let mut body = Text::styled(text.to_string(), Style::new().fg(Color::Gray));
    // Why the hit ranks here: cosine, BM25 and the query terms it contains.
    if let Some(why) = crate::kb::rank::explain(row.hit) {
        body.lines.insert(0, Line::from(Span::styled(why, theme::dim())));
    }
    if let Some(line) = verdict_line(v.engine.article_feedback(&row.hit.article_id)) {
        body.lines.insert(0, line);
    }
    // Why auto mode did or did not send the best article (auto mode only).
    if let Some(note) = c.auto_note.as_ref().filter(|_| c.effective_mode(p.mode) == crate::engine::Mode::Auto)
    {
        body.lines.insert(0, Line::from(Span::styled(note.clone(), theme::dim())));
    }
    let passage = Paragraph::new(body).wrap(Wrap { trim: true });
    frame.render_widget(passage, detail);
}
