//! Key chord parsing, defaults, remapping and validation.

use ratatui::crossterm::event::{KeyCode, KeyEvent, KeyModifiers};

use super::*;

fn key(code: KeyCode, m: KeyModifiers) -> KeyEvent {
    KeyEvent::new(code, m)
}

/// What the console does with a key event: translate it, then look it up.
fn act(km: &Keymap, ev: &KeyEvent) -> Option<Action> {
    crate::input::chord_of(ev).and_then(|c| km.action(c))
}

#[test]
fn chords_round_trip_through_text() {
    for s in ["q", "A", "?", "enter", "shift-tab", "ctrl-r", "alt-x", "f5", "space", "pageup", "-", "+", "{"]
    {
        let c: KeyChord = s.parse().unwrap();
        assert_eq!(c.to_string(), s, "{s}");
        assert_eq!(c.to_string().parse::<KeyChord>().unwrap(), c);
    }
    assert_eq!("shift-a".parse::<KeyChord>().unwrap(), "A".parse().unwrap());
    assert_eq!("Enter".parse::<KeyChord>().unwrap(), "enter".parse().unwrap());
    assert!("hyper-x".parse::<KeyChord>().unwrap_err().contains("unknown modifier"));
    assert!("banana".parse::<KeyChord>().unwrap_err().contains("unknown key"));
}

#[test]
fn every_default_binding_produces_its_action() {
    let km = Keymap::default_map();
    for (text, action) in DEFAULT_KEYS {
        let chord: KeyChord = text.parse().unwrap();
        let ev = match chord.code {
            ChordKey::Char(c) => {
                let m = if c.is_ascii_uppercase() { KeyModifiers::SHIFT } else { KeyModifiers::NONE };
                key(KeyCode::Char(c), m)
            }
            ChordKey::F(n) => key(KeyCode::F(n), KeyModifiers::NONE),
            ChordKey::Named("tab") if chord.shift => key(KeyCode::BackTab, KeyModifiers::SHIFT),
            ChordKey::Named(n) => {
                let code = match n {
                    "enter" => KeyCode::Enter,
                    "tab" => KeyCode::Tab,
                    "up" => KeyCode::Up,
                    "down" => KeyCode::Down,
                    "pageup" => KeyCode::PageUp,
                    "pagedown" => KeyCode::PageDown,
                    other => panic!("add {other} to this test"),
                };
                key(code, KeyModifiers::NONE)
            }
        };
        assert_eq!(act(&km, &ev), Some(action), "{text}");
    }
    assert_eq!(act(&km, &key(KeyCode::Char('c'), KeyModifiers::CONTROL)), Some(Action::Quit));
    assert_eq!(act(&km, &key(KeyCode::Char('z'), KeyModifiers::NONE)), None);
}

#[test]
fn config_remaps_unbinds_and_rejects_duplicates_and_ctrl_c() {
    let cfg = |pairs: &[(&str, Action)]| KeysConfig(pairs.iter().map(|(k, a)| (k.to_string(), *a)).collect());
    let km = cfg(&[("x", Action::Approve), ("a", Action::None), ("ctrl-q", Action::Quit)]).keymap().unwrap();
    assert_eq!(act(&km, &key(KeyCode::Char('x'), KeyModifiers::NONE)), Some(Action::Approve));
    assert_eq!(act(&km, &key(KeyCode::Char('a'), KeyModifiers::NONE)), None);
    assert_eq!(act(&km, &key(KeyCode::Char('q'), KeyModifiers::CONTROL)), Some(Action::Quit));
    assert_eq!(act(&km, &key(KeyCode::Enter, KeyModifiers::NONE)), Some(Action::Approve));

    let err = cfg(&[("Enter", Action::Quit), ("enter", Action::Help)]).keymap().unwrap_err();
    assert!(err.contains("same key (enter)"), "{err}");
    let err = cfg(&[("ctrl-c", Action::Help), ("nope", Action::Help)]).keymap().unwrap_err();
    assert!(err.contains("ctrl-c") && err.contains("unknown key `nope`"), "all problems at once: {err}");
}

#[test]
fn help_lists_every_bound_action() {
    let help = Keymap::default_map().help();
    let approve = help.iter().find(|(a, _)| *a == Action::Approve).unwrap();
    let keys: Vec<String> = approve.1.iter().map(ToString::to_string).collect();
    assert!(keys.contains(&"enter".to_string()) && keys.contains(&"a".to_string()));
    assert!(help.iter().all(|(a, _)| *a != Action::None));
}
