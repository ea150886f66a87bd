//! Key handling: each default binding produces its command (or its console
//! change), the overlays take keys while open, and ctrl-c always quits.

use std::time::Instant;

use agent_assist::config::keymap::{Keymap, KeysConfig};
use agent_assist::engine::{Command, Engine, Knob, Mode};
use agent_assist::input::on_key;
use agent_assist::kb::store::StoredArticle;
use agent_assist::ui::state::{Focus, Overlay, SortBy, UiState};
use ratatui::crossterm::event::{KeyCode, KeyEvent, KeyModifiers};

use crate::render::{catalog, live_engine};

fn k(c: char) -> KeyEvent {
    let m = if c.is_ascii_uppercase() { KeyModifiers::SHIFT } else { KeyModifiers::NONE };
    KeyEvent::new(KeyCode::Char(c), m)
}

fn code(c: KeyCode) -> KeyEvent {
    KeyEvent::new(c, KeyModifiers::NONE)
}

struct Console {
    engine: Engine,
    ui: UiState,
    keymap: Keymap,
    catalog: Vec<StoredArticle>,
}

impl Console {
    fn new() -> Self {
        Self {
            engine: live_engine(Instant::now()),
            ui: UiState::default(),
            keymap: Keymap::default_map(),
            catalog: catalog(),
        }
    }
    fn press(&mut self, ev: KeyEvent) -> Vec<Command> {
        on_key(ev, &mut self.ui, &self.engine, &self.keymap, &self.catalog)
    }
    fn suggestion(&self, article: &str) -> String {
        let c = self.engine.conversation("c-alpha-0001-aaaa").unwrap();
        c.suggestions.iter().rev().find(|s| s.article_id == article).unwrap().id.clone()
    }
}

#[test]
fn suggestion_keys_produce_engine_commands() {
    let mut c = Console::new();
    c.press(code(KeyCode::Tab)); // focus the matches
    assert_eq!(c.ui.focus, Focus::Matches);
    c.press(k('j'));
    assert_eq!(c.ui.selected_match, 1);
    let queued = c.suggestion("password-reset");
    assert_eq!(c.press(k('a')), vec![Command::Approve { suggestion: queued.clone() }]);
    assert_eq!(c.press(code(KeyCode::Enter)), vec![Command::Approve { suggestion: queued.clone() }]);
    assert_eq!(c.press(k('r')), vec![Command::Reject { suggestion: queued.clone() }]);
    assert_eq!(c.press(k('R')), vec![Command::Retry { suggestion: queued }]);
    assert_eq!(c.press(k('A')), vec![Command::ApproveAll { conversation: "c-alpha-0001-aaaa".into() }]);
    // The third match is only a candidate: approving it still sends it.
    c.press(k('j'));
    assert_eq!(c.press(k('a')), vec![Command::Approve { suggestion: c.suggestion("two-factor-setup") }]);
}

#[test]
fn tuning_mode_and_pause_keys() {
    let mut c = Console::new();
    let adjust = |knob, steps| vec![Command::Adjust { knob, steps }];
    for (ch, knob, steps) in [
        ('[', Knob::Push, -1),
        (']', Knob::Push, 1),
        ('{', Knob::Auto, -1),
        ('}', Knob::Auto, 1),
        ('(', Knob::Show, -1),
        (')', Knob::Show, 1),
        ('-', Knob::TopK, -1),
        ('+', Knob::TopK, 1),
        ('<', Knob::Window, -1),
        ('>', Knob::Window, 1),
        (',', Knob::DebounceMs, -1),
        ('.', Knob::DebounceMs, 1),
    ] {
        assert_eq!(c.press(k(ch)), adjust(knob, steps), "{ch}");
    }
    assert_eq!(
        c.press(k('m')),
        vec![Command::SetMode { conversation: Some("c-alpha-0001-aaaa".into()), mode: Mode::Auto }]
    );
    assert_eq!(c.press(k('M')), vec![Command::SetMode { conversation: None, mode: Mode::Auto }]);
    assert_eq!(
        c.press(k(' ')),
        vec![Command::SetPaused { conversation: Some("c-alpha-0001-aaaa".into()), paused: true }]
    );
    assert_eq!(c.press(k('P')), vec![Command::SetPaused { conversation: None, paused: true }]);
}

#[test]
fn console_keys_change_focus_selection_sort_filter_and_quit() {
    let mut c = Console::new();
    c.press(k('j'));
    assert_eq!(c.ui.selected_conversation.as_deref(), Some("c-bravo-0002-bbbb"));
    c.press(k('k'));
    assert_eq!(c.ui.selected_conversation.as_deref(), Some("c-alpha-0001-aaaa"));
    c.press(KeyEvent::new(KeyCode::BackTab, KeyModifiers::SHIFT));
    assert_eq!(c.ui.focus, Focus::PushLog);
    c.press(k('s'));
    assert_eq!(c.ui.sort, SortBy::Activity);
    c.press(k('/'));
    for ch in "bravo".chars() {
        assert!(c.press(k(ch)).is_empty(), "keys go to the filter, not the keymap");
    }
    c.press(code(KeyCode::Enter));
    assert_eq!(c.ui.filter, "bravo");
    assert!(matches!(c.ui.overlay, Overlay::None));
    c.press(k('?'));
    assert!(matches!(c.ui.overlay, Overlay::Help));
    c.press(k('x'));
    assert!(matches!(c.ui.overlay, Overlay::None) && !c.ui.quit);
    c.press(k('q'));
    assert!(c.ui.quit);
}

#[test]
fn the_editor_sends_edited_text_and_esc_cancels() {
    let mut c = Console::new();
    c.ui.selected_match = 1;
    c.press(k('e'));
    assert!(matches!(c.ui.overlay, Overlay::Editor { .. }));
    for ch in " Then restart the app.".chars() {
        assert!(c.press(k(ch)).is_empty());
    }
    let sent = c.press(KeyEvent::new(KeyCode::Char('s'), KeyModifiers::CONTROL));
    let Command::Edit { suggestion, text } = &sent[0] else { panic!("{sent:?}") };
    assert_eq!(suggestion, &c.suggestion("password-reset"));
    assert!(text.starts_with("Forgot your password?") && text.ends_with("Then restart the app."), "{text}");
    c.press(k('e'));
    assert!(c.press(code(KeyCode::Esc)).is_empty());
    assert!(matches!(c.ui.overlay, Overlay::None));
    // ctrl-c quits even from inside the editor.
    c.press(k('e'));
    c.press(KeyEvent::new(KeyCode::Char('c'), KeyModifiers::CONTROL));
    assert!(c.ui.quit);
}

#[test]
fn the_palette_searches_and_pushes_the_chosen_article() {
    let mut c = Console::new();
    c.press(k('p'));
    for ch in "pair".chars() {
        c.press(k(ch));
    }
    let sent = c.press(code(KeyCode::Enter));
    let Command::PushArticle { conversation, article } = &sent[0] else { panic!("{sent:?}") };
    assert_eq!((conversation.as_str(), article.id.as_str()), ("c-alpha-0001-aaaa", "device-pairing"));
    assert_eq!(article.content, "Content of device-pairing.");
    c.press(k('p'));
    c.press(code(KeyCode::Down));
    assert!(c.press(code(KeyCode::Esc)).is_empty());
}

#[test]
fn remapped_keys_take_effect() {
    let mut c = Console::new();
    let cfg: KeysConfig = toml::from_str("\"x\" = \"approve\"\n\"a\" = \"none\"").unwrap();
    c.keymap = cfg.keymap().unwrap();
    c.ui.selected_match = 1;
    assert!(c.press(k('a')).is_empty());
    assert_eq!(c.press(k('x')), vec![Command::Approve { suggestion: c.suggestion("password-reset") }]);
}
