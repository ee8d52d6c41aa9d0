//! The console's state and its one `update` function. Rendering (in `view`) only reads it.

use super::keys::{self, Action, Binding};
use berth::api::{Command, ContainerSummary, Event, EventRecord, ImageSummary};
use crossterm::event::KeyEvent;
use std::collections::VecDeque;

/// The panes, in Tab order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pane {
    Containers,
    Images,
    Events,
}

impl Pane {
    pub const ALL: [Pane; 3] = [Pane::Containers, Pane::Images, Pane::Events];

    pub fn title(self) -> &'static str {
        match self {
            Self::Containers => "Containers",
            Self::Images => "Images",
            Self::Events => "Events",
        }
    }

    fn index(self) -> usize {
        match self {
            Self::Containers => 0,
            Self::Images => 1,
            Self::Events => 2,
        }
    }
}

/// How serious a status-line message is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StatusKind {
    Info,
    Error,
}

/// The one-line message at the bottom.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Status {
    pub kind: StatusKind,
    pub text: String,
}

/// A list the engine may not have answered yet.
#[derive(Debug, Clone, PartialEq)]
pub enum Loaded<T> {
    Loading,
    Ready(Vec<T>),
}

impl<T> Loaded<T> {
    pub fn items(&self) -> &[T] {
        match self {
            Self::Loading => &[],
            Self::Ready(v) => v,
        }
    }
}

/// Which list a reply refreshes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Query {
    Containers,
    Images,
}

impl Query {
    pub fn command(self, show_all: bool) -> Command {
        match self {
            Self::Containers => Command::ContainerList { all: show_all },
            Self::Images => Command::ImageList,
        }
    }
}

/// Everything that can wake the console.
#[derive(Debug)]
pub enum Msg {
    Key(KeyEvent),
    Resize {
        width: u16,
        height: u16,
    },
    Engine(Box<EventRecord>),
    /// The subscriber fell behind and lost this many events: refresh everything.
    Lagged(u64),
    Containers(Result<Vec<ContainerSummary>, String>),
    Images(Result<Vec<ImageSummary>, String>),
}

/// What an update asks of the event loop.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Outcome {
    pub redraw: bool,
    pub queries: Vec<Query>,
}

const EVENTS_KEPT: usize = 1000;

/// The console's whole state.
pub struct App {
    pub keymap: &'static [Binding],
    /// Shown in the header: which engine (root directory) this console drives.
    pub engine_label: String,
    pub pane: Pane,
    pub containers: Loaded<ContainerSummary>,
    pub images: Loaded<ImageSummary>,
    pub events: VecDeque<EventRecord>,
    pub show_all: bool,
    pub help: bool,
    pub status: Option<Status>,
    pub quit: bool,
    /// Per pane: selected row and first visible row.
    pub selected: [usize; 3],
    pub offset: [usize; 3],
    /// Rows the list area shows (from the last resize).
    pub list_rows: usize,
    /// Unix seconds "now" for relative times, set by the loop when it draws.
    pub now: i64,
}

impl App {
    pub fn new(engine_label: impl Into<String>, width: u16, height: u16) -> Self {
        let mut app = Self {
            keymap: keys::DEFAULT_KEYMAP,
            engine_label: engine_label.into(),
            pane: Pane::Containers,
            containers: Loaded::Loading,
            images: Loaded::Loading,
            events: VecDeque::new(),
            show_all: true,
            help: false,
            status: None,
            quit: false,
            selected: [0; 3],
            offset: [0; 3],
            list_rows: 1,
            now: 0,
        };
        app.resize(width, height);
        app
    }

    /// The queries to make at start-up.
    pub fn initial_queries() -> Vec<Query> {
        vec![Query::Containers, Query::Images]
    }

    fn resize(&mut self, _width: u16, height: u16) {
        // header, footer, status line, the list's border (2) and its column header
        self.list_rows = usize::from(height).saturating_sub(6).max(1);
        for p in Pane::ALL {
            self.scroll_into_view(p);
        }
    }

    /// The number of rows in a pane.
    pub fn len(&self, pane: Pane) -> usize {
        match pane {
            Pane::Containers => self.containers.items().len(),
            Pane::Images => self.images.items().len(),
            Pane::Events => self.events.len(),
        }
    }

    fn scroll_into_view(&mut self, pane: Pane) {
        let i = pane.index();
        let len = self.len(pane);
        self.selected[i] = self.selected[i].min(len.saturating_sub(1));
        if self.selected[i] < self.offset[i] {
            self.offset[i] = self.selected[i];
        } else if self.selected[i] >= self.offset[i] + self.list_rows {
            self.offset[i] = self.selected[i] + 1 - self.list_rows;
        }
        self.offset[i] = self.offset[i].min(len.saturating_sub(self.list_rows));
    }

    fn select(&mut self, to: impl FnOnce(usize, usize) -> usize) {
        let i = self.pane.index();
        let len = self.len(self.pane);
        self.selected[i] = to(self.selected[i], len).min(len.saturating_sub(1));
        self.scroll_into_view(self.pane);
    }

    /// Apply one message. Returns whether the screen changed and what to ask the engine.
    pub fn update(&mut self, msg: Msg) -> Outcome {
        let mut out = Outcome::default();
        match msg {
            Msg::Key(k) => self.on_key(&k, &mut out),
            Msg::Resize { width, height } => {
                self.resize(width, height);
                out.redraw = true;
            }
            Msg::Engine(rec) => self.on_event(*rec, &mut out),
            Msg::Lagged(n) => {
                self.status = Some(Status {
                    kind: StatusKind::Info,
                    text: format!("missed {n} engine events; refreshed"),
                });
                out.queries = Self::initial_queries();
                out.redraw = true;
            }
            Msg::Containers(r) => {
                match r {
                    Ok(v) => self.containers = Loaded::Ready(v),
                    Err(e) => self.error(format!("listing containers: {e}")),
                }
                self.scroll_into_view(Pane::Containers);
                out.redraw = true;
            }
            Msg::Images(r) => {
                match r {
                    Ok(v) => self.images = Loaded::Ready(v),
                    Err(e) => self.error(format!("listing images: {e}")),
                }
                self.scroll_into_view(Pane::Images);
                out.redraw = true;
            }
        }
        out
    }

    fn error(&mut self, text: String) {
        self.status = Some(Status {
            kind: StatusKind::Error,
            text,
        });
    }

    fn on_key(&mut self, k: &KeyEvent, out: &mut Outcome) {
        let Some(action) = keys::lookup(self.keymap, k) else {
            return;
        };
        // The help popup takes every key but its own toggle and quit, and closes on Esc.
        if self.help && !matches!(action, Action::Help | Action::Quit | Action::Back) {
            return;
        }
        out.redraw = true;
        let page = self.list_rows.max(1);
        match action {
            Action::Quit => self.quit = true,
            Action::Help => self.help = !self.help,
            Action::Back => self.help = false,
            Action::NextPane | Action::PrevPane => {
                let i = self.pane.index();
                let n = Pane::ALL.len();
                let j = if action == Action::NextPane {
                    (i + 1) % n
                } else {
                    (i + n - 1) % n
                };
                self.pane = Pane::ALL[j];
            }
            Action::ContainersPane => self.pane = Pane::Containers,
            Action::ImagesPane => self.pane = Pane::Images,
            Action::EventsPane => self.pane = Pane::Events,
            Action::Down => self.select(|s, _| s + 1),
            Action::Up => self.select(|s, _| s.saturating_sub(1)),
            Action::Top => self.select(|_, _| 0),
            Action::Bottom => self.select(|_, len| len),
            Action::PageDown => self.select(|s, _| s + page),
            Action::PageUp => self.select(|s, _| s.saturating_sub(page)),
            Action::ToggleAll => {
                self.show_all = !self.show_all;
                out.queries.push(Query::Containers);
            }
        }
    }

    fn on_event(&mut self, rec: EventRecord, out: &mut Outcome) {
        let refresh = match &rec.event {
            Event::Stats(_) | Event::BuildOutput { .. } | Event::Transfer { .. } => None,
            Event::PolicyDecision {
                verdict,
                action,
                reason,
                rule,
                ..
            } if *verdict != berth::security::Verdict::Allow => {
                self.error(format!(
                    "{action} {verdict}: {reason}{}",
                    rule.as_ref().map(|r| format!(" ({r})")).unwrap_or_default()
                ));
                None
            }
            Event::PolicyDecision { .. } => None,
            Event::Error { context, message } => {
                self.error(format!("{context}: {message}"));
                None
            }
            e if e.container().is_some() => Some(Query::Containers),
            Event::ImagePulled { .. }
            | Event::ImageTagged { .. }
            | Event::ImageUntagged { .. }
            | Event::ImageRemoved { .. }
            | Event::ImagesPruned { .. }
            | Event::ImageBuilt { .. } => Some(Query::Images),
            _ => None,
        };
        if let Some(q) = refresh {
            out.queries.push(q);
        }
        if !matches!(
            rec.event,
            Event::Stats(_) | Event::Transfer { .. } | Event::BuildOutput { .. }
        ) {
            if self.events.len() == EVENTS_KEPT {
                self.events.pop_front();
            }
            self.events.push_back(rec);
            self.scroll_into_view(Pane::Events);
            out.redraw = true;
        }
        out.redraw |= self.status.is_some() && refresh.is_none();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crossterm::event::{KeyCode, KeyModifiers};

    fn key(c: char) -> Msg {
        Msg::Key(KeyEvent::new(KeyCode::Char(c), KeyModifiers::NONE))
    }

    #[test]
    fn unknown_keys_do_not_redraw() {
        let mut app = App::new("t", 80, 24);
        assert_eq!(app.update(key('z')), Outcome::default());
    }

    #[test]
    fn help_swallows_other_keys() {
        let mut app = App::new("t", 80, 24);
        app.update(key('?'));
        assert!(app.help);
        app.update(key('2'));
        assert_eq!(app.pane, Pane::Containers);
        app.update(key('?'));
        assert!(!app.help);
        app.update(key('2'));
        assert_eq!(app.pane, Pane::Images);
    }

    #[test]
    fn container_events_refresh_the_container_list() {
        let mut app = App::new("t", 80, 24);
        let out = app.update(Msg::Engine(Box::new(EventRecord {
            time: 0,
            origin: "o".into(),
            event: Event::ContainerStarted { id: "abc".into() },
        })));
        assert_eq!(out.queries, vec![Query::Containers]);
        assert!(out.redraw);
        assert_eq!(app.events.len(), 1);
    }
}
