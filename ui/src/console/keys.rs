//! Every key binding in one table: the event loop looks keys up here, and the help screen and
//! the footer are generated from it, so they can never disagree. `~/.config/berth/config.toml`
//! can rebind any action (see `config`).

use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
use serde::Deserialize;

/// Where a binding applies. The focused pane gets first refusal, then `List`, then `Global`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Scope {
    Global,
    /// Any list pane.
    List,
    Containers,
    Images,
    Logs,
}

impl Scope {
    pub fn title(self) -> &'static str {
        match self {
            Self::Global => "Everywhere",
            Self::List => "In lists",
            Self::Containers => "Containers",
            Self::Images => "Images",
            Self::Logs => "Logs",
        }
    }
}

/// What a key does. Names (snake_case) are what the config file uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Action {
    Quit,
    Help,
    Back,
    CommandLine,
    NextPane,
    PrevPane,
    ContainersPane,
    ImagesPane,
    LogsPane,
    StatsPane,
    InspectPane,
    EventsPane,
    PolicyPane,
    ShellPane,
    NetworksPane,
    VolumesPane,
    ToggleMouse,
    RunForm,
    PullForm,
    BuildForm,
    Down,
    Up,
    Top,
    Bottom,
    PageDown,
    PageUp,
    Filter,
    SortNext,
    SortReverse,
    Mark,
    Menu,
    Inspect,
    ToggleAll,
    Start,
    Stop,
    Restart,
    Kill,
    PauseToggle,
    Remove,
    ForceRemove,
    Exec,
    Attach,
    Logs,
    TagImage,
    Prune,
    Follow,
    Wrap,
    Timestamps,
    Search,
    SearchNext,
    SearchPrev,
    SaveLogs,
}

/// One key binding.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Binding {
    pub code: KeyCode,
    pub mods: KeyModifiers,
    pub action: Action,
    pub scope: Scope,
    /// Shown in the help screen.
    pub help: &'static str,
    /// Short label for the footer, when the binding is worth one there.
    pub footer: Option<&'static str>,
}

const fn b(code: KeyCode, action: Action, scope: Scope, help: &'static str) -> Binding {
    Binding {
        code,
        mods: KeyModifiers::NONE,
        action,
        scope,
        help,
        footer: None,
    }
}

const fn f(mut bd: Binding, label: &'static str) -> Binding {
    bd.footer = Some(label);
    bd
}

const fn ctrl(mut bd: Binding) -> Binding {
    bd.mods = KeyModifiers::CONTROL;
    bd
}

use Action as A;
use KeyCode::Char as C;
use Scope as S;

/// The default keymap.
pub fn default_keymap() -> Vec<Binding> {
    vec![
        f(b(C('q'), A::Quit, S::Global, "quit"), "quit"),
        ctrl(b(C('c'), A::Quit, S::Global, "quit at once")),
        f(
            b(C('?'), A::Help, S::Global, "show or hide this help"),
            "help",
        ),
        b(
            KeyCode::Esc,
            A::Back,
            S::Global,
            "close the popup, clear the filter",
        ),
        b(
            C(':'),
            A::CommandLine,
            S::Global,
            "command line (:run, :pull, :images, :q …)",
        ),
        b(KeyCode::Tab, A::NextPane, S::Global, "next pane"),
        b(KeyCode::BackTab, A::PrevPane, S::Global, "previous pane"),
        b(C('1'), A::ContainersPane, S::Global, "containers pane"),
        b(C('2'), A::ImagesPane, S::Global, "images pane"),
        b(
            C('3'),
            A::LogsPane,
            S::Global,
            "logs of the selected container",
        ),
        b(
            C('4'),
            A::StatsPane,
            S::Global,
            "stats of the selected container",
        ),
        b(C('5'), A::InspectPane, S::Global, "inspect pane"),
        b(C('6'), A::EventsPane, S::Global, "events pane"),
        b(C('7'), A::PolicyPane, S::Global, "policy decisions pane"),
        b(
            C('8'),
            A::ShellPane,
            S::Global,
            "shell pane (Ctrl-] in a shell detaches)",
        ),
        b(C('9'), A::NetworksPane, S::Global, "networks pane"),
        b(C('0'), A::VolumesPane, S::Global, "volumes pane"),
        b(
            C('m'),
            A::ToggleMouse,
            S::Global,
            "mouse on/off (off lets you select text)",
        ),
        f(
            b(C('n'), A::RunForm, S::Global, "run a new container (form)"),
            "run",
        ),
        f(b(C('P'), A::PullForm, S::Global, "pull an image"), "pull"),
        b(
            C('B'),
            A::BuildForm,
            S::Global,
            "build an image (context path, -t NAME, -f FILE)",
        ),
        b(C('j'), A::Down, S::List, "move down"),
        b(KeyCode::Down, A::Down, S::List, "move down"),
        b(C('k'), A::Up, S::List, "move up"),
        b(KeyCode::Up, A::Up, S::List, "move up"),
        b(C('g'), A::Top, S::List, "first item"),
        b(KeyCode::Home, A::Top, S::List, "first item"),
        b(C('G'), A::Bottom, S::List, "last item"),
        b(KeyCode::End, A::Bottom, S::List, "last item"),
        b(KeyCode::PageDown, A::PageDown, S::List, "page down"),
        b(KeyCode::PageUp, A::PageUp, S::List, "page up"),
        f(b(C('/'), A::Filter, S::List, "filter the list"), "filter"),
        b(
            C('o'),
            A::SortNext,
            S::List,
            "sort by the next column (the header marks it)",
        ),
        b(C('O'), A::SortReverse, S::List, "reverse the sort order"),
        b(C(' '), A::Mark, S::List, "mark for a bulk action"),
        f(
            b(
                KeyCode::Enter,
                A::Menu,
                S::List,
                "actions for the selected item",
            ),
            "actions",
        ),
        b(C('i'), A::Inspect, S::List, "inspect the selected item"),
        b(
            C('a'),
            A::ToggleAll,
            S::Containers,
            "show all / running only",
        ),
        b(C('u'), A::Start, S::Containers, "start"),
        f(
            b(C('s'), A::Stop, S::Containers, "stop (marked or selected)"),
            "stop",
        ),
        b(C('R'), A::Restart, S::Containers, "restart"),
        b(C('K'), A::Kill, S::Containers, "kill (choose the signal)"),
        b(C('p'), A::PauseToggle, S::Containers, "pause / unpause"),
        f(
            b(C('d'), A::Remove, S::Containers, "remove (asks first)"),
            "rm",
        ),
        b(
            C('D'),
            A::ForceRemove,
            S::Containers,
            "remove, killing it if running (asks first)",
        ),
        f(
            b(C('e'), A::Exec, S::Containers, "shell inside the container"),
            "exec",
        ),
        b(
            C('A'),
            A::Attach,
            S::Containers,
            "attach to the container's own terminal (Ctrl-] detaches)",
        ),
        f(b(C('l'), A::Logs, S::Containers, "logs"), "logs"),
        f(
            b(C('d'), A::Remove, S::Images, "remove image (asks first)"),
            "rmi",
        ),
        b(
            C('D'),
            A::ForceRemove,
            S::Images,
            "remove image even if used (asks first)",
        ),
        b(C('t'), A::TagImage, S::Images, "tag image"),
        f(
            b(
                C('x'),
                A::Prune,
                S::Images,
                "prune unused images (shows what first)",
            ),
            "prune",
        ),
        f(
            b(C('f'), A::Follow, S::Logs, "follow (pause / resume)"),
            "follow",
        ),
        b(C('w'), A::Wrap, S::Logs, "wrap long lines"),
        b(C('T'), A::Timestamps, S::Logs, "timestamps"),
        f(b(C('/'), A::Search, S::Logs, "search"), "search"),
        b(C('n'), A::SearchNext, S::Logs, "next match"),
        b(C('N'), A::SearchPrev, S::Logs, "previous match"),
        b(C('S'), A::SaveLogs, S::Logs, "save the log to a file"),
        b(C('j'), A::Down, S::Logs, "scroll down"),
        b(C('k'), A::Up, S::Logs, "scroll up"),
        b(C('g'), A::Top, S::Logs, "top"),
        b(C('G'), A::Bottom, S::Logs, "end (and follow)"),
        b(KeyCode::PageDown, A::PageDown, S::Logs, "page down"),
        b(KeyCode::PageUp, A::PageUp, S::Logs, "page up"),
    ]
}

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
        KeyCode::F(n) => format!("F{n}"),
        other => format!("{other:?}"),
    };
    if b.mods.contains(KeyModifiers::CONTROL) {
        format!("C-{base}")
    } else {
        base
    }
}

/// Parse a key as written in the config file: `q`, `C-c`, `Enter`, `F5`, `space`.
pub fn parse_key(s: &str) -> Option<(KeyCode, KeyModifiers)> {
    let (mods, rest) = match s.strip_prefix("C-").or_else(|| s.strip_prefix("ctrl-")) {
        Some(r) => (KeyModifiers::CONTROL, r),
        None => (KeyModifiers::NONE, s),
    };
    let code = match rest {
        "space" => KeyCode::Char(' '),
        "Enter" | "enter" => KeyCode::Enter,
        "Esc" | "esc" => KeyCode::Esc,
        "Tab" | "tab" => KeyCode::Tab,
        "S-Tab" | "backtab" => KeyCode::BackTab,
        "Up" | "up" => KeyCode::Up,
        "Down" | "down" => KeyCode::Down,
        "Home" | "home" => KeyCode::Home,
        "End" | "end" => KeyCode::End,
        "PgUp" | "pageup" => KeyCode::PageUp,
        "PgDn" | "pagedown" => KeyCode::PageDown,
        f if f.len() > 1 && f.starts_with('F') => KeyCode::F(f[1..].parse().ok()?),
        c if c.chars().count() == 1 => KeyCode::Char(c.chars().next()?),
        _ => return None,
    };
    Some((code, mods))
}

/// The action bound to a key in the first of `scopes` that binds it. Shift is ignored for
/// characters (`G` arrives as Shift+`G` on some terminals and plain `G` on others).
pub fn lookup(keymap: &[Binding], scopes: &[Scope], ev: &KeyEvent) -> Option<Action> {
    let mods = ev.modifiers - KeyModifiers::SHIFT;
    scopes.iter().find_map(|s| {
        keymap
            .iter()
            .find(|b| b.scope == *s && b.code == ev.code && b.mods == mods)
            .map(|b| b.action)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn no_key_is_bound_twice_in_one_scope() {
        let km = default_keymap();
        for (i, a) in km.iter().enumerate() {
            for b in &km[i + 1..] {
                assert!(
                    !(a.scope == b.scope && a.code == b.code && a.mods == b.mods),
                    "{} is bound to {:?} and {:?} in {:?}",
                    key_label(a),
                    a.action,
                    b.action,
                    a.scope
                );
            }
        }
    }

    #[test]
    fn pane_keys_win_over_global_ones() {
        let km = default_keymap();
        let n = KeyEvent::new(KeyCode::Char('n'), KeyModifiers::NONE);
        assert_eq!(
            lookup(&km, &[S::Logs, S::List, S::Global], &n),
            Some(A::SearchNext)
        );
        assert_eq!(
            lookup(&km, &[S::Containers, S::List, S::Global], &n),
            Some(A::RunForm)
        );
    }

    #[test]
    fn shifted_capitals_and_ctrl_c_resolve() {
        let km = default_keymap();
        let g = KeyEvent::new(KeyCode::Char('G'), KeyModifiers::SHIFT);
        assert_eq!(lookup(&km, &[S::List], &g), Some(A::Bottom));
        let cc = KeyEvent::new(KeyCode::Char('c'), KeyModifiers::CONTROL);
        assert_eq!(lookup(&km, &[S::Global], &cc), Some(A::Quit));
        assert_eq!(
            lookup(
                &km,
                &[S::Global],
                &KeyEvent::new(KeyCode::Char('c'), KeyModifiers::NONE)
            ),
            None
        );
    }

    #[test]
    fn config_key_syntax() {
        assert_eq!(
            parse_key("C-d"),
            Some((KeyCode::Char('d'), KeyModifiers::CONTROL))
        );
        assert_eq!(
            parse_key("space"),
            Some((KeyCode::Char(' '), KeyModifiers::NONE))
        );
        assert_eq!(parse_key("F5"), Some((KeyCode::F(5), KeyModifiers::NONE)));
        assert_eq!(parse_key("nope"), None);
    }
}
