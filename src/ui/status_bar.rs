//! The status bar (connection, heartbeat age, token expiry, dialect, mode,
//! thresholds, queue depth, end-to-end latency with a sparkline, the last
//! knowledge-base reload for a while, or a failed one until it succeeds) and the
//! hint line under it (key hints from the keymap, or the latest notice).

use std::time::Duration;

use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::{Color, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Paragraph, Sparkline};

use super::View;
use super::state::{FloorInfo, short_duration};
use super::theme;
use crate::config::keymap::Action;
use crate::domain::ConnectionState;
use crate::engine::Stage;

/// How long a notice stays on the hint line.
const NOTICE_FOR: Duration = Duration::from_secs(8);

fn connection(v: &View) -> Span<'static> {
    match v.engine.connection() {
        ConnectionState::Live => Span::styled(" ● LIVE ", Style::new().fg(Color::Black).bg(theme::OK)),
        ConnectionState::Connecting => {
            Span::styled(" ◌ CONNECTING ", Style::new().fg(Color::Black).bg(theme::WARN))
        }
        ConnectionState::Reconnecting { attempt, delay_ms, .. } => {
            let since =
                v.engine.connection_since().map_or(Duration::ZERO, |t| v.now.saturating_duration_since(t));
            let left = Duration::from_millis(*delay_ms).saturating_sub(since);
            Span::styled(
                format!(" ↻ RECONNECTING in {:.1}s (#{attempt}) ", left.as_secs_f64()),
                Style::new().fg(Color::Black).bg(theme::WARN),
            )
        }
        ConnectionState::Failed { reason } => {
            Span::styled(format!(" ✖ FAILED: {reason} "), Style::new().fg(Color::White).bg(theme::BAD))
        }
    }
}

/// The floor link, the workers heard from and the commands awaiting an answer.
fn floor_link(v: &View, f: &FloorInfo) -> Span<'static> {
    let since = f.link_since.map_or(Duration::ZERO, |t| v.now.saturating_duration_since(t));
    let waiting = if f.pending > 0 { format!(" · {} waiting", f.pending) } else { String::new() };
    if f.link_up {
        let n = f.workers_present(v.now);
        let workers = if n == 1 { "1 worker".to_string() } else { format!("{n} workers") };
        Span::styled(format!(" ⇄ FLOOR {workers}{waiting} "), Style::new().fg(Color::Black).bg(theme::OK))
    } else {
        Span::styled(
            format!(" ✖ FLOOR LINK DOWN {}{waiting} ", short_duration(since)),
            Style::new().fg(Color::White).bg(theme::BAD),
        )
    }
}

pub fn render(frame: &mut Frame, area: Rect, v: &View) {
    let [status, hints] = Layout::vertical([Constraint::Length(1), Constraint::Length(1)]).areas(area);
    let p = v.engine.policy();
    let heartbeat = v
        .engine
        .last_heartbeat()
        .map_or_else(|| "–".into(), |t| short_duration(v.now.saturating_duration_since(t)));
    let token = v
        .status
        .token_expires_at
        .and_then(|t| t.duration_since(v.status.wall_now).ok())
        .map_or_else(|| "–".into(), short_duration);
    let latency = v
        .engine
        .metrics()
        .percentiles(Stage::EndToEnd)
        .map_or_else(|| "e2e –".to_string(), |l| format!("e2e {:.0}/{:.0}ms", l.p50_ms, l.p99_ms));
    let paused = if v.engine.paused_all() { " PAUSED" } else { "" };
    let mut spans = Vec::new();
    // A floor console heard no worker's stream state yet: say nothing of it.
    if v.floor.is_none() || v.engine.connection_since().is_some() {
        spans.push(connection(v));
    }
    if let Some(f) = v.floor {
        spans.push(floor_link(v, f));
    }
    if let Some(kb) = v.engine.kb_status_line() {
        if !kb.ok {
            spans
                .push(Span::styled(format!(" ✖ {} ", kb.text), Style::new().fg(Color::White).bg(theme::BAD)));
        } else if v.now.saturating_duration_since(kb.at) < crate::engine::kb_reload::SHOW_RELOAD_FOR {
            spans.push(Span::styled(format!(" {} ", kb.text), Style::new().fg(Color::Black).bg(theme::OK)));
        }
    }
    if !v.engine.ledger_ok() {
        // Auto mode sends nothing until the ledger records again: say so
        // where the operator looks first.
        spans
            .push(Span::styled(" ✖ DELIVERY STATE NOT SAVED ", Style::new().fg(Color::White).bg(theme::BAD)));
    }
    spans.extend([
        if v.floor.is_some() {
            // The workers hold the stream and the token; the console has neither.
            Span::styled(format!(" {} ", v.status.dialect), theme::dim())
        } else {
            Span::styled(format!(" ♥{heartbeat} tok {token} {} ", v.status.dialect), theme::dim())
        },
        Span::styled(format!("{}{paused} ", p.mode.as_str().to_uppercase()), theme::title()),
        Span::styled(format!("S{:.2} ", p.show), Style::new().fg(theme::SHOW)),
        Span::styled(format!("P{:.2} ", p.push), Style::new().fg(theme::PUSH)),
        Span::styled(format!("A{:.2} ", p.auto), Style::new().fg(theme::AUTO)),
        Span::raw(format!(
            "k{} w{} {}ms q{} {latency} ",
            p.top_k,
            p.window,
            p.debounce.as_millis(),
            v.status.queue_depth
        )),
    ]);
    let line = Line::from(spans);
    let text_width = u16::try_from(line.width()).unwrap_or(u16::MAX);
    let [text_area, spark_area] =
        Layout::horizontal([Constraint::Length(text_width.min(status.width)), Constraint::Min(0)])
            .areas(status);
    frame.render_widget(Paragraph::new(line), text_area);
    let data: Vec<u64> = v.engine.metrics().recent_e2e_ms.iter().copied().collect();
    let tail = data.len().saturating_sub(usize::from(spark_area.width));
    frame.render_widget(
        Sparkline::default().data(&data[tail..]).style(Style::new().fg(theme::AUTO)),
        spark_area,
    );

    let notice = v.engine.notices().back().filter(|n| v.now.saturating_duration_since(n.at) < NOTICE_FOR);
    let hint = match notice {
        Some(n) => Line::styled(format!(" ! {}", n.text), Style::new().fg(theme::WARN)),
        None if v.ui.widget_link.is_some() => {
            let link = v.ui.widget_link.as_deref().unwrap_or_default();
            Line::styled(format!(" agent widget: {link}"), theme::title())
        }
        None => {
            let key = |a: Action| v.keymap.chord_for(a).map_or_else(|| "–".into(), |c| c.to_string());
            let pairs = [
                (Action::Approve, "approve"),
                (Action::Edit, "edit"),
                (Action::Reject, "reject"),
                (Action::Palette, "push article"),
                (Action::CycleMode, "mode"),
                (Action::PushUp, "push+"),
                (Action::Help, "help"),
                (Action::Quit, "quit"),
            ];
            let mut spans = Vec::new();
            for (a, label) in pairs {
                spans.push(Span::styled(
                    format!(" {} ", key(a)),
                    Style::new().fg(Color::Black).bg(Color::Gray),
                ));
                spans.push(Span::raw(format!(" {label} ")));
            }
            if let Some(url) = &v.status.sim_url {
                spans.push(Span::styled(format!(" sim {url}"), theme::dim()));
            }
            if let Some(url) = &v.status.widget_url {
                spans.push(Span::styled(format!(" widget {url}"), theme::dim()));
            }
            Line::from(spans)
        }
    };
    frame.render_widget(Paragraph::new(hint), hints);
}
