//! Key handling: a terminal key event becomes either a change of the
//! console's own state or engine [`Command`]s. Order: `ctrl-c` always quits;
//! an open overlay (editor, palette, filter, help) takes the key; otherwise
//! the keymap decides. Only key presses count, not releases or repeats.

use ratatui::crossterm::event::{KeyCode, KeyEvent, KeyEventKind, KeyModifiers};
use ratatui_textarea::TextArea;

use crate::config::keymap::{Action, ChordKey, KeyChord, Keymap};
use crate::engine::{ArticleRef, Command, Engine, Knob};
use crate::kb::store::StoredArticle;
use crate::ui::state::{
    EditTarget, Focus, Overlay, UiState, match_rows, palette_results, selected, visible_conversations,
};

/// Applies one key event; returns the commands for the engine.
pub fn on_key(
    ev: KeyEvent,
    ui: &mut UiState,
    engine: &Engine,
    keymap: &Keymap,
    catalog: &[StoredArticle],
) -> Vec<Command> {
    if ev.kind == KeyEventKind::Release {
        return Vec::new();
    }
    if ev.modifiers.contains(KeyModifiers::CONTROL) && ev.code == KeyCode::Char('c') {
        ui.quit = true;
        return Vec::new();
    }
    match std::mem::take(&mut ui.overlay) {
        Overlay::None => {}
        Overlay::Help => return Vec::new(),
        Overlay::Editor { target, text } => return editor_key(ev, ui, target, text),
        Overlay::Palette { query, selected } => return palette_key(ev, ui, engine, catalog, query, selected),
        Overlay::Filter => {
            filter_key(ev, ui);
            return Vec::new();
        }
    }
    match chord_of(&ev).and_then(|c| keymap.action(c)) {
        Some(a) => on_action(a, ui, engine),
        None => Vec::new(),
    }
}

fn editor_key(
    ev: KeyEvent,
    ui: &mut UiState,
    target: EditTarget,
    mut text: Box<TextArea<'static>>,
) -> Vec<Command> {
    let send = (ev.modifiers.contains(KeyModifiers::CONTROL) && ev.code == KeyCode::Char('s'))
        || (ev.modifiers.contains(KeyModifiers::ALT) && ev.code == KeyCode::Enter);
    if ev.code == KeyCode::Esc {
        return Vec::new();
    }
    if !send {
        text.input(ev);
        ui.overlay = Overlay::Editor { target, text };
        return Vec::new();
    }
    let body = text.lines().join("\n");
    match target.suggestion {
        Some(suggestion) => vec![Command::Edit { suggestion, text: body }],
        None => vec![Command::PushArticle {
            conversation: target.conversation,
            article: ArticleRef { id: target.article_id, title: target.title, content: body },
        }],
    }
}

fn palette_key(
    ev: KeyEvent,
    ui: &mut UiState,
    engine: &Engine,
    catalog: &[StoredArticle],
    mut query: String,
    mut chosen: usize,
) -> Vec<Command> {
    match ev.code {
        KeyCode::Esc => return Vec::new(),
        KeyCode::Enter => {
            let results = palette_results(catalog, &query);
            let Some(article) =
                results.get(chosen.min(results.len().saturating_sub(1))).and_then(|&i| catalog.get(i))
            else {
                return Vec::new();
            };
            let Some(conv) = selected(engine, ui) else { return Vec::new() };
            return vec![Command::PushArticle {
                conversation: conv.id.clone(),
                article: ArticleRef {
                    id: article.id.clone(),
                    title: article.title.clone(),
                    content: article.content.clone(),
                },
            }];
        }
        KeyCode::Up => chosen = chosen.saturating_sub(1),
        KeyCode::Down => {
            chosen = chosen.saturating_add(1).min(palette_results(catalog, &query).len().saturating_sub(1))
        }
        KeyCode::Backspace => {
            query.pop();
            chosen = 0;
        }
        KeyCode::Char(c) if !ev.modifiers.contains(KeyModifiers::CONTROL) => {
            query.push(c);
            chosen = 0;
        }
        _ => {}
    }
    ui.overlay = Overlay::Palette { query, selected: chosen };
    Vec::new()
}

fn filter_key(ev: KeyEvent, ui: &mut UiState) {
    match ev.code {
        KeyCode::Esc => ui.filter.clear(),
        KeyCode::Enter => {}
        KeyCode::Backspace => {
            ui.filter.pop();
            ui.overlay = Overlay::Filter;
        }
        KeyCode::Char(c) if !ev.modifiers.contains(KeyModifiers::CONTROL) => {
            ui.filter.push(c);
            ui.overlay = Overlay::Filter;
        }
        _ => ui.overlay = Overlay::Filter,
    }
}

fn adjust(knob: Knob, steps: i32) -> Vec<Command> {
    vec![Command::Adjust { knob, steps }]
}

/// What a bound key does.
pub fn on_action(action: Action, ui: &mut UiState, engine: &Engine) -> Vec<Command> {
    let conv = selected(engine, ui);
    let rows = conv.map(match_rows).unwrap_or_default();
    let row = rows.get(ui.selected_match.min(rows.len().saturating_sub(1))).copied();
    match action {
        Action::Quit => ui.quit = true,
        Action::Help => ui.overlay = Overlay::Help,
        Action::FocusNext => ui.focus = ui.focus.next(),
        Action::FocusPrev => ui.focus = ui.focus.prev(),
        Action::Up | Action::Down => {
            let down = action == Action::Down;
            move_selection(ui, engine, down, rows.len());
        }
        Action::Approve => {
            if let (Some(c), Some(r)) = (conv, row) {
                return match r.suggestion.filter(|s| s.state.is_sendable()) {
                    Some(s) => vec![Command::Approve { suggestion: s.id.clone() }],
                    // A match that is not (or no longer) a suggestion: send it by hand.
                    None => vec![Command::PushArticle {
                        conversation: c.id.clone(),
                        article: ArticleRef {
                            id: r.hit.article_id.clone(),
                            title: r.hit.title.clone(),
                            content: r.hit.text.clone(),
                        },
                    }],
                };
            }
        }
        Action::ApproveAll => {
            if let Some(c) = conv {
                return vec![Command::ApproveAll { conversation: c.id.clone() }];
            }
        }
        Action::Edit => {
            if let (Some(c), Some(r)) = (conv, row) {
                let suggestion = r.suggestion.filter(|s| s.state.is_sendable());
                let content = suggestion.map_or(r.hit.text.clone(), |s| s.content.clone());
                let mut text = TextArea::new(content.lines().map(str::to_string).collect());
                text.move_cursor(ratatui_textarea::CursorMove::Bottom);
                text.move_cursor(ratatui_textarea::CursorMove::End);
                let target = EditTarget {
                    conversation: c.id.clone(),
                    suggestion: suggestion.map(|s| s.id.clone()),
                    article_id: r.hit.article_id.clone(),
                    title: r.hit.title.clone(),
                };
                ui.overlay = Overlay::Editor { target, text: Box::new(text) };
            }
        }
        Action::Reject => {
            if let Some(s) = row.and_then(|r| r.suggestion) {
                return vec![Command::Reject { suggestion: s.id.clone() }];
            }
        }
        Action::Retry => {
            // From the push log: the selected entry; elsewhere: the selected match.
            let from_log = (ui.focus == Focus::PushLog)
                .then(|| {
                    engine.push_log().iter().rev().nth(ui.push_log_scroll).map(|e| e.suggestion_id.clone())
                })
                .flatten();
            if let Some(id) = from_log.or_else(|| row.and_then(|r| r.suggestion).map(|s| s.id.clone())) {
                return vec![Command::Retry { suggestion: id }];
            }
        }
        Action::Palette => ui.overlay = Overlay::Palette { query: String::new(), selected: 0 },
        Action::CycleMode => {
            if let Some(c) = conv {
                let mode = c.effective_mode(engine.policy().mode).next();
                return vec![Command::SetMode { conversation: Some(c.id.clone()), mode }];
            }
        }
        Action::CycleGlobalMode => {
            return vec![Command::SetMode { conversation: None, mode: engine.policy().mode.next() }];
        }
        Action::PushDown => return adjust(Knob::Push, -1),
        Action::PushUp => return adjust(Knob::Push, 1),
        Action::AutoDown => return adjust(Knob::Auto, -1),
        Action::AutoUp => return adjust(Knob::Auto, 1),
        Action::ShowDown => return adjust(Knob::Show, -1),
        Action::ShowUp => return adjust(Knob::Show, 1),
        Action::TopKDown => return adjust(Knob::TopK, -1),
        Action::TopKUp => return adjust(Knob::TopK, 1),
        Action::WindowDown => return adjust(Knob::Window, -1),
        Action::WindowUp => return adjust(Knob::Window, 1),
        Action::DebounceDown => return adjust(Knob::DebounceMs, -1),
        Action::DebounceUp => return adjust(Knob::DebounceMs, 1),
        Action::TogglePause => {
            if let Some(c) = conv {
                return vec![Command::SetPaused { conversation: Some(c.id.clone()), paused: !c.paused }];
            }
        }
        Action::PauseAll => {
            return vec![Command::SetPaused { conversation: None, paused: !engine.paused_all() }];
        }
        Action::Filter => ui.overlay = Overlay::Filter,
        Action::Sort => ui.sort = ui.sort.next(),
        Action::OpenWidget => ui.open_widget = conv.map(|c| c.id.clone()),
        Action::None => {}
    }
    Vec::new()
}

fn move_selection(ui: &mut UiState, engine: &Engine, down: bool, match_count: usize) {
    let step =
        |i: usize, len: usize| if down { (i + 1).min(len.saturating_sub(1)) } else { i.saturating_sub(1) };
    match ui.focus {
        Focus::Conversations => {
            let list = visible_conversations(engine, ui);
            let current =
                selected(engine, ui).and_then(|c| list.iter().position(|x| x.id == c.id)).unwrap_or(0);
            ui.selected_conversation = list.get(step(current, list.len())).map(|c| c.id.clone());
            ui.selected_match = 0;
            ui.transcript_scroll = 0;
        }
        Focus::Matches => ui.selected_match = step(ui.selected_match, match_count),
        Focus::Transcript => {
            ui.transcript_scroll =
                if down { ui.transcript_scroll.saturating_sub(1) } else { ui.transcript_scroll + 1 };
        }
        Focus::PushLog => ui.push_log_scroll = step(ui.push_log_scroll, engine.push_log().len()),
    }
}

/// The chord a terminal key event is, if it can be one (the keymap itself
/// knows nothing of terminal events).
pub fn chord_of(ev: &KeyEvent) -> Option<KeyChord> {
    let m = ev.modifiers;
    let mut chord = KeyChord {
        code: ChordKey::Named("esc"),
        ctrl: m.contains(KeyModifiers::CONTROL),
        alt: m.contains(KeyModifiers::ALT),
        shift: false,
    };
    chord.code = match ev.code {
        // Shift is already in the character (`A`, `?`, `}`).
        KeyCode::Char(c) => ChordKey::Char(if chord.ctrl { c.to_ascii_lowercase() } else { c }),
        KeyCode::BackTab => {
            chord.shift = true;
            ChordKey::Named("tab")
        }
        KeyCode::F(n) => ChordKey::F(n),
        other => {
            let name = match other {
                KeyCode::Enter => "enter",
                KeyCode::Esc => "esc",
                KeyCode::Tab => "tab",
                KeyCode::Backspace => "backspace",
                KeyCode::Delete => "delete",
                KeyCode::Insert => "insert",
                KeyCode::Up => "up",
                KeyCode::Down => "down",
                KeyCode::Left => "left",
                KeyCode::Right => "right",
                KeyCode::Home => "home",
                KeyCode::End => "end",
                KeyCode::PageUp => "pageup",
                KeyCode::PageDown => "pagedown",
                _ => return None,
            };
            chord.shift = m.contains(KeyModifiers::SHIFT);
            ChordKey::Named(name)
        }
    };
    Some(chord)
}
