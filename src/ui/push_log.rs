//! The push log: each push to each sink with its age, call, article, who
//! sent it, the sink, and outcome (recording; pushed with status, attempts,
//! latency and whether an agent page acknowledged it; retrying with attempt
//! and reason; failed with the server's message), and what agents said
//! ("agent: useful"). Newest first. Knowledge-base reloads have lines of
//! their own, and a push of an article that changed since says so.

use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::style::Style;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Borders, Paragraph};

use super::View;
use super::conversations::short_id;
use super::state::{Focus, age};
use super::theme;
use crate::engine::{Actor, PushStatus};

pub fn render(frame: &mut Frame, area: Rect, v: &View) {
    let log = v.engine.push_log();
    let block = Block::default()
        .borders(Borders::ALL)
        .title(format!(" Push log ({}) ", log.len()))
        .border_style(theme::focused_border(v.ui.focus == Focus::PushLog));
    let lines: Vec<Line> = log
        .iter()
        .rev()
        .skip(v.ui.push_log_scroll)
        .enumerate()
        .map(|(i, e)| {
            if let PushStatus::Kb { ok, text } = &e.status {
                let style = Style::new().fg(if *ok { theme::OK } else { theme::BAD });
                let line = Line::from(vec![
                    Span::styled(format!("{:>6} ago ", age(v.now, e.at)), theme::dim()),
                    Span::styled(text.clone(), style),
                ]);
                return if i == 0 && v.ui.focus == Focus::PushLog {
                    line.style(theme::selected())
                } else {
                    line
                };
            }
            let (mut outcome, style) = match &e.status {
                PushStatus::Recording => ("recording".to_string(), Style::new().fg(theme::WARN)),
                PushStatus::Sending => ("sending".to_string(), Style::new().fg(theme::WARN)),
                PushStatus::Agent { feedback } => {
                    (format!("agent: {}", feedback.as_str()), Style::new().fg(theme::OK))
                }
                PushStatus::Retrying { attempt, reason } => {
                    (format!("retrying after attempt {attempt}: {reason}"), Style::new().fg(theme::WARN))
                }
                PushStatus::Pushed { status, attempts, latency_ms, acknowledged } => (
                    format!(
                        "pushed {} · {attempts} attempt{} · {latency_ms} ms{}",
                        status.map_or_else(|| "-".into(), |s| s.to_string()),
                        if *attempts == 1 { "" } else { "s" },
                        if *acknowledged { " · seen by agent" } else { "" }
                    ),
                    Style::new().fg(theme::OK),
                ),
                PushStatus::Failed { error, attempts } => {
                    (format!("failed after {attempts}: {error}"), Style::new().fg(theme::BAD))
                }
                PushStatus::Kb { text, .. } => (text.clone(), theme::dim()),
            };
            if v.engine.article_deleted(&e.article_id) {
                outcome.push_str(" · article deleted since");
            } else if v.engine.article_changed_since(&e.article_id, e.at) {
                outcome.push_str(" · article changed since");
            }
            let by = match e.by {
                Actor::Auto => "auto",
                Actor::Operator => "op",
            };
            let line = Line::from(vec![
                Span::styled(format!("{:>6} ago ", age(v.now, e.at)), theme::dim()),
                Span::raw(format!("{:<8} ", short_id(&e.conversation_id))),
                Span::raw(format!("{:<22} ", e.article_id)),
                Span::styled(format!("{by:<4} "), theme::dim()),
                Span::styled(format!("{:<8} ", sink_label(e.sink)), theme::dim()),
                Span::styled(outcome, style),
            ]);
            if i == 0 && v.ui.focus == Focus::PushLog { line.style(theme::selected()) } else { line }
        })
        .collect();
    let body = if lines.is_empty() {
        Paragraph::new("Nothing pushed yet.").style(theme::dim())
    } else {
        Paragraph::new(lines)
    };
    frame.render_widget(body.block(block), area);
}

/// Short sink names, so the outcome keeps its room on narrow terminals.
fn sink_label(sink: crate::domain::Sink) -> &'static str {
    use crate::domain::Sink;
    match sink {
        Sink::Widget => "widget",
        Sink::Webhook => "webhook",
        Sink::GenesysAttributes => "attrs",
        Sink::GenesysCopilot => "copilot",
    }
}
