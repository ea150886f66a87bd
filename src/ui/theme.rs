//! Colours and styles, in one place so the panes agree.

use ratatui::style::{Color, Modifier, Style};

pub const CUSTOMER: Color = Color::Cyan;
pub const AGENT: Color = Color::Yellow;
pub const SHOW: Color = Color::Blue;
pub const PUSH: Color = Color::Magenta;
pub const AUTO: Color = Color::Green;
pub const OK: Color = Color::Green;
pub const WARN: Color = Color::Yellow;
pub const BAD: Color = Color::Red;

pub fn focused_border(focused: bool) -> Style {
    if focused {
        Style::new().fg(Color::Cyan).add_modifier(Modifier::BOLD)
    } else {
        Style::new().fg(Color::DarkGray)
    }
}

pub fn selected() -> Style {
    Style::new().add_modifier(Modifier::REVERSED)
}

pub fn dim() -> Style {
    Style::new().fg(Color::DarkGray)
}

pub fn title() -> Style {
    Style::new().add_modifier(Modifier::BOLD)
}
