//! Every key binding in one table: the event loop looks keys up here, and the help screen and
//! the footer are generated from it, so they can never disagree.

use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};

/// Where a binding applies.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    /// Everywhere, unless a popup takes the key first.
    Global,
    /// In any list pane.
    List,
}

/// What a key does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Action {
    Quit,
    Help,
    /// Close the popup on top.
    Back,
    NextPane,
    PrevPane,
    ContainersPane,
    ImagesPane,
    EventsPane,
    Down,
    Up,
    Top,
    Bottom,
    PageDown,
    PageUp,
    ToggleAll,
}

/// One key binding.
#[derive(Debug, Clone, Copy)]
pub struct Binding {
    pub code: KeyCode,
    pub mods: KeyModifiers,
    pub action: Action,
    pub scope: Scope,
    /// Shown in the help screen.
    pub help: &'static str,
    /// Shown in the footer when set (short label).
    pub footer: Option<&'static str>,
}

const fn key(code: KeyCode, action: Action, scope: Scope, help: &'static str) -> Binding {
    Binding {
        code,
        mods: KeyModifiers::NONE,
        action,
        scope,
        help,
        footer: None,
    }
}

const fn with_footer(mut b: Binding, label: &'static str) -> Binding {
    b.footer = Some(label);
    b
}

const fn ctrl(mut b: Binding) -> Binding {
    b.mods = KeyModifiers::CONTROL;
    b
}

/// The default keymap.
pub const DEFAULT_KEYMAP: &[Binding] = &[
    with_footer(
        key(KeyCode::Char('q'), Action::Quit, Scope::Global, "quit"),
        "quit",
    ),
    ctrl(key(
        KeyCode::Char('c'),
        Action::Quit,
        Scope::Global,
        "quit at once",
    )),
    with_footer(
        key(
            KeyCode::Char('?'),
            Action::Help,
            Scope::Global,
            "show or hide this help",
        ),
        "help",
    ),
    key(KeyCode::Esc, Action::Back, Scope::Global, "close the popup"),
    with_footer(
        key(KeyCode::Tab, Action::NextPane, Scope::Global, "next pane"),
        "pane",
    ),
    key(
        KeyCode::BackTab,
        Action::PrevPane,
        Scope::Global,
        "previous pane",
    ),
    key(
        KeyCode::Char('1'),
        Action::ContainersPane,
        Scope::Global,
        "containers pane",
    ),
    key(
        KeyCode::Char('2'),
        Action::ImagesPane,
        Scope::Global,
        "images pane",
    ),
    key(
        KeyCode::Char('3'),
        Action::EventsPane,
        Scope::Global,
        "events pane",
    ),
    with_footer(
        key(KeyCode::Char('j'), Action::Down, Scope::List, "move down"),
        "move",
    ),
    key(KeyCode::Down, Action::Down, Scope::List, "move down"),
    key(KeyCode::Char('k'), Action::Up, Scope::List, "move up"),
    key(KeyCode::Up, Action::Up, Scope::List, "move up"),
    key(KeyCode::Char('g'), Action::Top, Scope::List, "first item"),
    key(KeyCode::Home, Action::Top, Scope::List, "first item"),
    key(KeyCode::Char('G'), Action::Bottom, Scope::List, "last item"),
    key(KeyCode::End, Action::Bottom, Scope::List, "last item"),
    key(
        KeyCode::PageDown,
        Action::PageDown,
        Scope::List,
        "page down",
    ),
    key(KeyCode::PageUp, Action::PageUp, Scope::List, "page up"),
    with_footer(
        key(
            KeyCode::Char('a'),
            Action::ToggleAll,
            Scope::List,
            "containers: show all / running only",
        ),
        "all",
    ),
];

/// The key as the help screen writes it.
pub fn key_label(b: &Binding) -> String {
    let base = match b.code {
        KeyCode::Char(' ') => "space".to_owned(),
        KeyCode::Char(c) => c.to_string(),
        KeyCode::Tab => "Tab".into(),
        KeyCode::BackTab => "S-Tab".into(),
        KeyCode::Up => "↑".into(),
        KeyCode::Down => "↓".into(),
        KeyCode::Home => "Home".into(),
        KeyCode::End => "End".into(),
        KeyCode::PageUp => "PgUp".into(),
        KeyCode::PageDown => "PgDn".into(),
        KeyCode::Enter => "Enter".into(),
        KeyCode::Esc => "Esc".into(),
        other => format!("{other:?}"),
    };
    if b.mods.contains(KeyModifiers::CONTROL) {
        format!("C-{base}")
    } else {
        base
    }
}

/// The binding for a key press, if any. Shift is ignored for characters (`G` arrives as
/// Shift+`G` on some terminals and plain `G` on others).
pub fn lookup(keymap: &[Binding], ev: &KeyEvent) -> Option<Action> {
    let mods = ev.modifiers - KeyModifiers::SHIFT;
    keymap
        .iter()
        .find(|b| b.code == ev.code && b.mods == mods)
        .map(|b| b.action)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn no_key_is_bound_twice() {
        for (i, a) in DEFAULT_KEYMAP.iter().enumerate() {
            for b in &DEFAULT_KEYMAP[i + 1..] {
                assert!(
                    !(a.code == b.code && a.mods == b.mods),
                    "{} is bound to {:?} and {:?}",
                    key_label(a),
                    a.action,
                    b.action
                );
            }
        }
    }

    #[test]
    fn shifted_capitals_and_ctrl_c_resolve() {
        let g = KeyEvent::new(KeyCode::Char('G'), KeyModifiers::SHIFT);
        assert_eq!(lookup(DEFAULT_KEYMAP, &g), Some(Action::Bottom));
        let cc = KeyEvent::new(KeyCode::Char('c'), KeyModifiers::CONTROL);
        assert_eq!(lookup(DEFAULT_KEYMAP, &cc), Some(Action::Quit));
        let c = KeyEvent::new(KeyCode::Char('c'), KeyModifiers::NONE);
        assert_eq!(lookup(DEFAULT_KEYMAP, &c), None);
    }
}
