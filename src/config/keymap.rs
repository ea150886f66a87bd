//! Key bindings: [`KeyChord`] (parse/print `ctrl-x`, `shift-tab`, `A`, ...),
//! the console's [`Action`] vocabulary, the default map, the `[keys]`
//! config section that remaps it, and validation. `ctrl-c` always quits and
//! cannot be rebound. The help screen is generated from [`Keymap::help`].

use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// What a key can do in the console.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Action {
    Quit,
    Help,
    FocusNext,
    FocusPrev,
    Up,
    Down,
    Approve,
    ApproveAll,
    Edit,
    Reject,
    Retry,
    Palette,
    CycleMode,
    CycleGlobalMode,
    PushDown,
    PushUp,
    AutoDown,
    AutoUp,
    ShowDown,
    ShowUp,
    TopKDown,
    TopKUp,
    WindowDown,
    WindowUp,
    DebounceDown,
    DebounceUp,
    TogglePause,
    PauseAll,
    Filter,
    Sort,
    /// Open the selected call's agent-widget page in a browser.
    OpenWidget,
    /// In config only: remove a default binding.
    None,
}

impl Action {
    /// One line for the help screen.
    pub fn describe(self) -> &'static str {
        match self {
            Self::Quit => "quit",
            Self::Help => "show or hide this help",
            Self::FocusNext => "focus the next pane",
            Self::FocusPrev => "focus the previous pane",
            Self::Up => "move up / scroll up",
            Self::Down => "move down / scroll down",
            Self::Approve => "approve (send) the selected suggestion",
            Self::ApproveAll => "approve every listed suggestion at or above push",
            Self::Edit => "edit the selected suggestion, then send",
            Self::Reject => "reject the selected suggestion",
            Self::Retry => "retry the selected failed push",
            Self::Palette => "push any article by hand",
            Self::CycleMode => "cycle the selected conversation's mode",
            Self::CycleGlobalMode => "cycle the global mode",
            Self::PushDown => "lower the push threshold",
            Self::PushUp => "raise the push threshold",
            Self::AutoDown => "lower the auto threshold",
            Self::AutoUp => "raise the auto threshold",
            Self::ShowDown => "lower the show threshold",
            Self::ShowUp => "raise the show threshold",
            Self::TopKDown => "fewer matches (top-k)",
            Self::TopKUp => "more matches (top-k)",
            Self::WindowDown => "shorter query window",
            Self::WindowUp => "longer query window",
            Self::DebounceDown => "shorter debounce",
            Self::DebounceUp => "longer debounce",
            Self::TogglePause => "pause or resume the selected conversation",
            Self::PauseAll => "pause or resume everything",
            Self::Filter => "filter conversations",
            Self::Sort => "change the conversation sort order",
            Self::OpenWidget => "open the selected call's agent widget in a browser",
            Self::None => "(unbound)",
        }
    }
}

/// A key with modifiers, as written in config: `q`, `A`, `?`, `enter`,
/// `shift-tab`, `ctrl-r`, `alt-x`, `f5`, `space`, `pageup`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct KeyChord {
    pub code: ChordKey,
    pub ctrl: bool,
    pub alt: bool,
    pub shift: bool,
}

/// The key part of a chord (an ordered, hashable mirror of `KeyCode`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ChordKey {
    Char(char),
    F(u8),
    Named(&'static str),
}

const NAMED: [&str; 14] = [
    "enter",
    "esc",
    "tab",
    "backspace",
    "delete",
    "insert",
    "up",
    "down",
    "left",
    "right",
    "home",
    "end",
    "pageup",
    "pagedown",
];

impl FromStr for KeyChord {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let mut chord = Self { code: ChordKey::Named("esc"), ctrl: false, alt: false, shift: false };
        let parts: Vec<&str> = if s == "-" { vec!["-"] } else { s.split('-').collect() };
        let (key, mods) = parts.split_last().ok_or_else(|| format!("empty key `{s}`"))?;
        for m in mods {
            match m.to_ascii_lowercase().as_str() {
                "ctrl" | "c" => chord.ctrl = true,
                "alt" | "a" | "m" => chord.alt = true,
                "shift" | "s" => chord.shift = true,
                other => return Err(format!("unknown modifier `{other}` in `{s}` (use ctrl, alt, shift)")),
            }
        }
        let lower = key.to_ascii_lowercase();
        chord.code = if key.chars().count() == 1 {
            let c = key.chars().next().unwrap_or(' ');
            // An upper-case letter is its own chord (`A`), typed with shift.
            if c.is_ascii_uppercase() {
                chord.shift = false;
            }
            ChordKey::Char(if chord.shift && c.is_ascii_lowercase() { c.to_ascii_uppercase() } else { c })
        } else if lower == "space" {
            ChordKey::Char(' ')
        } else if let Some(n) =
            lower.strip_prefix('f').and_then(|n| n.parse::<u8>().ok()).filter(|n| (1..=12).contains(n))
        {
            ChordKey::F(n)
        } else if let Some(name) = NAMED.iter().find(|n| **n == lower) {
            ChordKey::Named(name)
        } else {
            return Err(format!("unknown key `{key}` in `{s}`"));
        };
        if let ChordKey::Char(c) = chord.code {
            if chord.ctrl {
                // Terminals report ctrl-letters in lower case.
                chord.code = ChordKey::Char(c.to_ascii_lowercase());
            } else if c.is_ascii_uppercase() {
                chord.shift = false;
            }
        }
        Ok(chord)
    }
}

impl fmt::Display for KeyChord {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.ctrl {
            f.write_str("ctrl-")?;
        }
        if self.alt {
            f.write_str("alt-")?;
        }
        if self.shift {
            f.write_str("shift-")?;
        }
        match self.code {
            ChordKey::Char(' ') => f.write_str("space"),
            ChordKey::Char(c) => write!(f, "{c}"),
            ChordKey::F(n) => write!(f, "f{n}"),
            ChordKey::Named(n) => f.write_str(n),
        }
    }
}

impl KeyChord {
    fn is_ctrl_c(&self) -> bool {
        self.ctrl && self.code == ChordKey::Char('c')
    }
}

/// The default bindings. Nothing that sends to an agent sits on a chord a
/// terminal multiplexer uses (`ctrl-b`, `ctrl-a`).
pub const DEFAULT_KEYS: [(&str, Action); 38] = [
    ("q", Action::Quit),
    ("?", Action::Help),
    ("tab", Action::FocusNext),
    ("shift-tab", Action::FocusPrev),
    ("j", Action::Down),
    ("down", Action::Down),
    ("k", Action::Up),
    ("up", Action::Up),
    ("enter", Action::Approve),
    ("a", Action::Approve),
    ("A", Action::ApproveAll),
    ("e", Action::Edit),
    ("r", Action::Reject),
    ("R", Action::Retry),
    ("p", Action::Palette),
    ("m", Action::CycleMode),
    ("M", Action::CycleGlobalMode),
    ("[", Action::PushDown),
    ("]", Action::PushUp),
    ("{", Action::AutoDown),
    ("}", Action::AutoUp),
    ("(", Action::ShowDown),
    (")", Action::ShowUp),
    ("-", Action::TopKDown),
    ("+", Action::TopKUp),
    ("=", Action::TopKUp),
    ("<", Action::WindowDown),
    (">", Action::WindowUp),
    (",", Action::DebounceDown),
    (".", Action::DebounceUp),
    ("space", Action::TogglePause),
    ("P", Action::PauseAll),
    ("/", Action::Filter),
    ("s", Action::Sort),
    ("w", Action::OpenWidget),
    ("pagedown", Action::Down),
    ("pageup", Action::Up),
    ("f1", Action::Help),
];

/// The `[keys]` section: `"chord" = "action"` entries over the defaults;
/// `"x" = "none"` unbinds a default.
#[derive(Debug, Clone, PartialEq, Eq, Default, Deserialize)]
#[serde(transparent)]
pub struct KeysConfig(pub BTreeMap<String, Action>);

/// The resolved map from chord to action.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Keymap {
    map: BTreeMap<KeyChord, Action>,
}

impl KeysConfig {
    /// Defaults plus the user's entries; every problem in one message.
    pub fn keymap(&self) -> Result<Keymap, String> {
        let mut map = BTreeMap::new();
        for (k, a) in DEFAULT_KEYS {
            map.insert(k.parse::<KeyChord>()?, a);
        }
        let mut problems = Vec::new();
        let mut seen: BTreeMap<KeyChord, &str> = BTreeMap::new();
        for (text, action) in &self.0 {
            let chord = match text.parse::<KeyChord>() {
                Ok(c) => c,
                Err(e) => {
                    problems.push(e);
                    continue;
                }
            };
            if chord.is_ctrl_c() {
                problems.push("`ctrl-c` always quits and cannot be rebound".into());
                continue;
            }
            if let Some(first) = seen.insert(chord, text) {
                problems.push(format!("`{first}` and `{text}` are the same key ({chord}); bind it once"));
                continue;
            }
            if *action == Action::None {
                map.remove(&chord);
            } else {
                map.insert(chord, *action);
            }
        }
        if problems.is_empty() { Ok(Keymap { map }) } else { Err(problems.join("; ")) }
    }
}

impl Keymap {
    /// The defaults.
    pub fn default_map() -> Self {
        KeysConfig::default().keymap().unwrap_or(Keymap { map: BTreeMap::new() })
    }

    /// The action bound to a chord; `ctrl-c` is always `Quit`.
    pub fn action(&self, chord: KeyChord) -> Option<Action> {
        if chord.is_ctrl_c() {
            return Some(Action::Quit);
        }
        self.map.get(&chord).copied()
    }

    /// Every action with its chords, in declaration order, for help.
    pub fn help(&self) -> Vec<(Action, Vec<KeyChord>)> {
        let mut by_action: BTreeMap<Action, Vec<KeyChord>> = BTreeMap::new();
        for (c, a) in &self.map {
            by_action.entry(*a).or_default().push(*c);
        }
        by_action.into_iter().collect()
    }

    /// The first chord bound to an action, for hints.
    pub fn chord_for(&self, action: Action) -> Option<KeyChord> {
        self.map.iter().find(|(_, a)| **a == action).map(|(c, _)| *c)
    }
}

#[cfg(test)]
#[path = "keymap_tests.rs"]
mod tests;
