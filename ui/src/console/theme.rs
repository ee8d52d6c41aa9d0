//! Colours. Only the 16 basic ANSI colours are used, so the console looks right on terminals
//! without true colour; with `NO_COLOR` set, meaning is carried by text and bold/reverse only.

use berth::api::ContainerState;
use ratatui::style::{Color, Modifier, Style};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Theme {
    pub color: bool,
}

impl Theme {
    /// Honour `NO_COLOR` (any non-empty value), as <https://no-color.org> asks.
    pub fn from_env() -> Self {
        Self {
            color: std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty()),
        }
    }

    fn fg(self, c: Color) -> Style {
        if self.color {
            Style::new().fg(c)
        } else {
            Style::new()
        }
    }

    pub fn title(self) -> Style {
        self.fg(Color::Cyan).add_modifier(Modifier::BOLD)
    }

    pub fn tab_active(self) -> Style {
        Style::new().add_modifier(Modifier::REVERSED | Modifier::BOLD)
    }

    pub fn dim(self) -> Style {
        if self.color {
            Style::new().fg(Color::DarkGray)
        } else {
            Style::new()
        }
    }

    pub fn header(self) -> Style {
        Style::new().add_modifier(Modifier::BOLD)
    }

    pub fn selected(self) -> Style {
        Style::new().add_modifier(Modifier::REVERSED)
    }

    pub fn key(self) -> Style {
        self.fg(Color::Yellow).add_modifier(Modifier::BOLD)
    }

    pub fn error(self) -> Style {
        self.fg(Color::Red).add_modifier(Modifier::BOLD)
    }

    pub fn info(self) -> Style {
        self.fg(Color::Green)
    }

    /// A container's state colour: the colour carries meaning, the text says it too.
    pub fn state(self, s: ContainerState, exit_code: Option<i32>) -> Style {
        self.fg(match s {
            ContainerState::Running => Color::Green,
            ContainerState::Paused => Color::Yellow,
            ContainerState::Restarting => Color::Magenta,
            ContainerState::Created => Color::Blue,
            ContainerState::Exited if exit_code == Some(0) => Color::Gray,
            ContainerState::Exited | ContainerState::Dead => Color::Red,
        })
    }
}

impl Theme {
    pub fn stderr(self) -> Style {
        self.fg(Color::LightRed)
    }

    /// A search match in the log.
    pub fn highlight(self) -> Style {
        if self.color {
            Style::new().fg(Color::Black).bg(Color::Yellow)
        } else {
            Style::new().add_modifier(Modifier::UNDERLINED | Modifier::BOLD)
        }
    }

    pub fn verdict(self, v: berth::security::Verdict) -> Style {
        use berth::security::Verdict;
        match v {
            Verdict::Allow => self.fg(Color::Green),
            Verdict::Deny => self.error(),
            Verdict::Confirm => self.fg(Color::Yellow),
        }
    }
}
