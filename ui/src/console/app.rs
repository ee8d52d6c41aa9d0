//! The console's state and its one `update` function. Rendering (in `view`) only reads it.
//!
//! A key goes to the popup on top first; if there is none, the focused pane's bindings, then the
//! list bindings, then the global ones get it (see [`App::scopes`]). Everything the engine must
//! do leaves `update` as an [`Effect`] for the event loop to carry out off the UI task.

use super::keys::{self, Action, Binding, Scope};
use super::popup::{self, Confirm, Input, InputKind, Menu, MenuItem, Popup, PullView, RunForm};
use super::terminal::SessionKind;
use super::views::{InspectView, LogView, StatsView};
use berth::api::{
    Command, ContainerId, ContainerSummary, Event, EventRecord, ImageRef, ImageSummary, LogLine,
    StatsSample,
};
use berth::security::{AuditRecord, Verdict};
use crossterm::event::KeyEvent;
use std::collections::{HashMap, HashSet, VecDeque};

/// The panes, in Tab order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Pane {
    Containers,
    Images,
    Logs,
    Stats,
    Inspect,
    Events,
    Policy,
    Shell,
    Networks,
    Volumes,
}

impl Pane {
    pub const ALL: [Pane; 10] = [
        Pane::Containers,
        Pane::Images,
        Pane::Logs,
        Pane::Stats,
        Pane::Inspect,
        Pane::Events,
        Pane::Policy,
        Pane::Shell,
        Pane::Networks,
        Pane::Volumes,
    ];

    pub fn title(self) -> &'static str {
        match self {
            Self::Containers => "Containers",
            Self::Images => "Images",
            Self::Logs => "Logs",
            Self::Stats => "Stats",
            Self::Inspect => "Inspect",
            Self::Events => "Events",
            Self::Policy => "Policy",
            Self::Shell => "Shell",
            Self::Networks => "Networks",
            Self::Volumes => "Volumes",
        }
    }

    fn index(self) -> usize {
        Self::ALL.iter().position(|p| *p == self).unwrap_or(0)
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
    Audit,
    Networks,
    Volumes,
}

/// One command for the engine, with what to call it in messages.
#[derive(Debug, Clone, PartialEq)]
pub struct Job {
    pub cmd: Command,
    pub confirmed: bool,
    /// "stop web", "pull busybox": shown in the status line.
    pub what: String,
    /// For `run`: start the container once created (and show its logs).
    pub then_start: bool,
}

impl Job {
    pub fn new(cmd: Command, what: impl Into<String>) -> Self {
        Self {
            cmd,
            confirmed: false,
            what: what.into(),
            then_start: false,
        }
    }
}

/// Why a job failed, as the console needs to know it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum JobError {
    Denied {
        rule: Option<String>,
        reason: String,
    },
    NeedsConfirmation {
        rule: Option<String>,
        reason: String,
    },
    Failed(String),
}

/// What the console shows about an item the policy refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Denial {
    pub rule: Option<String>,
    pub reason: String,
}

/// What to inspect.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum InspectTarget {
    Container(ContainerId),
    Image(ImageRef),
}

/// Work for the event loop: everything that talks to the engine or the outside world.
#[derive(Debug, Clone, PartialEq)]
pub enum Effect {
    Query(Query),
    Submit(Job),
    OpenLogs(ContainerId),
    OpenStats(ContainerId),
    Inspect(InspectTarget),
    SaveLogs {
        path: std::path::PathBuf,
        text: String,
    },
    SetMouse(bool),
    /// Start a shell in a container for terminal session `session`.
    OpenShell {
        session: u32,
        container: ContainerId,
        rows: u16,
        cols: u16,
    },
    /// Resize a session's terminal: an exec's, or a container's own (attach).
    ResizeShell {
        target: ResizeTarget,
        rows: u16,
        cols: u16,
    },
    /// Attach to a container's own stdio for terminal session `session` (its TTY when it has
    /// one; its output, read-only, when it has none).
    Attach {
        session: u32,
        container: ContainerId,
        rows: u16,
        cols: u16,
    },
    /// Ask the engine for one CPU/memory sample of every running container.
    PollUsage,
}

/// Whose terminal a resize is for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ResizeTarget {
    Exec(String),
    Container(ContainerId),
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
    Audit(Result<Vec<AuditRecord>, String>),
    Networks(Result<Vec<berth::api::NetworkInfo>, String>),
    Volumes(Result<Vec<berth::api::VolumeInfo>, String>),
    /// A job ended; `created` is the container a create made.
    Done {
        job: Job,
        result: Result<Option<ContainerId>, JobError>,
    },
    LogLine {
        id: ContainerId,
        line: LogLine,
    },
    LogEnd {
        id: ContainerId,
        error: Option<String>,
    },
    Stat(StatsSample),
    Inspected {
        title: String,
        result: Result<serde_json::Value, String>,
    },
    Saved(Result<std::path::PathBuf, String>),
    /// A session is connected. `input` is `None` for a read-only one (a container attached
    /// without a TTY); `resize` says where its size goes (none without a TTY).
    ShellStarted {
        session: u32,
        resize: Option<ResizeTarget>,
        input: Option<tokio::sync::mpsc::Sender<bytes::Bytes>>,
    },
    ShellOutput {
        session: u32,
        data: bytes::Bytes,
    },
    ShellEnded {
        session: u32,
        exit_code: Option<i32>,
        error: Option<String>,
    },
    /// Time to sample the running containers again (the loop's timer, only while
    /// [`App::wants_usage`]).
    UsageTick,
    /// One sample per running container, or why there is none.
    Usage(Result<Vec<StatsSample>, JobError>),
}

/// What an update asks of the event loop.
#[derive(Debug, Default, PartialEq)]
pub struct Outcome {
    pub redraw: bool,
    pub effects: Vec<Effect>,
}

impl Outcome {
    fn effect(&mut self, e: Effect) {
        if !self.effects.contains(&e) {
            self.effects.push(e);
        }
    }
}

/// The columns the containers pane sorts by, in the order `o` cycles through them.
pub const CONTAINER_SORTS: [&str; 8] = [
    "name", "image", "state", "status", "cpu", "memory", "ports", "created",
];
/// The columns the images pane sorts by.
pub const IMAGE_SORTS: [&str; 3] = ["repository", "size", "created"];

/// What the containers pane shows of a running container's resource use.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Usage {
    /// Percent of one CPU.
    pub cpu: f64,
    pub memory: u64,
    pub limit: Option<u64>,
}

impl Usage {
    /// The texts the pane shows; a new sample redraws only when one of them changes.
    pub fn texts(&self) -> (String, String, Option<String>) {
        (
            format!("{:.1}%", self.cpu),
            super::view::human_size(self.memory),
            self.limit.map(super::view::human_size),
        )
    }
}

/// Order two containers (each with its sample, if any) by one of [`CONTAINER_SORTS`] (ties by
/// name, so the order is stable while values change). Containers without a sample (stopped)
/// come first when ascending.
pub fn compare_containers(
    (a, ua): (&ContainerSummary, Option<Usage>),
    (b, ub): (&ContainerSummary, Option<Usage>),
    column: usize,
) -> std::cmp::Ordering {
    use std::cmp::Ordering;
    let o = match column {
        0 => Ordering::Equal,
        1 => a.image.cmp(&b.image),
        2 => a.state.as_str().cmp(b.state.as_str()),
        3 => status_key(a).cmp(&status_key(b)),
        4 => match (ua, ub) {
            (Some(x), Some(y)) => x.cpu.total_cmp(&y.cpu),
            (x, y) => x.is_some().cmp(&y.is_some()),
        },
        5 => ua.map(|x| x.memory).cmp(&ub.map(|x| x.memory)),
        6 => port_key(a).cmp(&port_key(b)),
        _ => a.created.cmp(&b.created),
    };
    o.then_with(|| a.name.cmp(&b.name))
}

/// The STATUS column in reading order: up (longest running first), paused, restarting, then
/// created, then exited (most recent first).
fn status_key(c: &ContainerSummary) -> (u8, i64) {
    use berth::api::ContainerState as S;
    match c.state {
        S::Running => (0, c.started_at.unwrap_or(c.created)),
        S::Paused => (1, c.started_at.unwrap_or(c.created)),
        S::Restarting => (2, 0),
        S::Created => (3, -c.created),
        S::Exited | S::Dead => (4, -c.finished_at.unwrap_or(0)),
    }
}

/// Containers with published ports first, by their first host port.
fn port_key(c: &ContainerSummary) -> (bool, u16, u16) {
    match c.ports.first() {
        Some(p) => (false, p.host_port, p.container_port),
        None => (true, 0, 0),
    }
}

/// Columns a list can be sorted by.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Sort {
    pub column: usize,
    pub reverse: bool,
}

/// Per list pane: selection, scroll, filter, sort, marks.
#[derive(Debug, Clone, Default)]
pub struct ListState {
    pub selected: usize,
    pub offset: usize,
    pub filter: String,
    pub sort: Option<Sort>,
    pub marked: HashSet<String>,
}

/// A row of the policy pane.
pub type PolicyRow = AuditRecord;

const EVENTS_KEPT: usize = 1000;
const POLICY_KEPT: usize = 500;

/// The console's whole state.
pub struct App {
    pub keymap: Vec<Binding>,
    /// Shown in the header: which engine (root directory) this console drives.
    pub engine_label: String,
    pub pane: Pane,
    pub containers: Loaded<ContainerSummary>,
    pub images: Loaded<ImageSummary>,
    pub networks: Loaded<berth::api::NetworkInfo>,
    pub volumes: Loaded<berth::api::VolumeInfo>,
    pub events: VecDeque<EventRecord>,
    pub policy: VecDeque<PolicyRow>,
    /// Rows of the containers and images panes after filter and sort: indices into the lists.
    pub container_rows: Vec<usize>,
    pub image_rows: Vec<usize>,
    pub lists: HashMap<Pane, ListState>,
    pub show_all: bool,
    pub popups: Vec<Popup>,
    pub status: Option<Status>,
    /// Policy refusals, by the item they were about (container id or image ref).
    pub denials: HashMap<String, Denial>,
    pub logs: LogView,
    pub stats: StatsView,
    pub inspect: InspectView,
    /// Shells inside the console; the one shown in the Shell pane.
    pub sessions: Vec<super::terminal::Session>,
    pub active_session: Option<u32>,
    next_session: u32,
    /// Rows and columns a shell gets (the Shell pane's inside).
    pub shell_size: (u16, u16),
    pub mouse: bool,
    pub quit: bool,
    /// Rows a list area shows (from the last resize).
    pub list_rows: usize,
    pub width: u16,
    /// Unix seconds "now" for relative times, set by the loop when it draws.
    pub now: i64,
    /// The last CPU/memory sample of each running container, by id.
    pub usage: HashMap<String, Usage>,
    /// A sample has been asked for and not answered yet.
    usage_pending: bool,
    /// The policy refused the samples: not asked again (each refusal is an audit record).
    usage_denied: bool,
}

impl App {
    pub fn new(
        engine_label: impl Into<String>,
        keymap: Vec<Binding>,
        width: u16,
        height: u16,
    ) -> Self {
        let mut lists = HashMap::new();
        for p in Pane::ALL {
            lists.insert(p, ListState::default());
        }
        let mut app = Self {
            keymap,
            engine_label: engine_label.into(),
            pane: Pane::Containers,
            containers: Loaded::Loading,
            images: Loaded::Loading,
            networks: Loaded::Loading,
            volumes: Loaded::Loading,
            events: VecDeque::new(),
            policy: VecDeque::new(),
            container_rows: Vec::new(),
            image_rows: Vec::new(),
            lists,
            show_all: true,
            popups: Vec::new(),
            status: None,
            denials: HashMap::new(),
            logs: LogView::default(),
            stats: StatsView::default(),
            inspect: InspectView::default(),
            sessions: Vec::new(),
            active_session: None,
            next_session: 1,
            shell_size: (1, 1),
            mouse: true,
            quit: false,
            list_rows: 1,
            width,
            now: 0,
            usage: HashMap::new(),
            usage_pending: false,
            usage_denied: false,
        };
        app.resize(width, height);
        app
    }

    /// What to ask the engine at start-up.
    pub fn initial_effects() -> Vec<Effect> {
        vec![
            Effect::Query(Query::Containers),
            Effect::Query(Query::Images),
            Effect::Query(Query::Audit),
        ]
    }

    fn resize(&mut self, width: u16, height: u16) {
        self.width = width;
        // header, footer, status line and the pane's border
        self.shell_size = (
            height.saturating_sub(5).max(1),
            width.saturating_sub(2).max(1),
        );
        // header, footer, status line, the list's border (2) and its column header
        self.list_rows = usize::from(height).saturating_sub(6).max(1);
        for p in Pane::ALL {
            self.scroll_into_view(p);
        }
        self.logs.page = self.list_rows + 1;
        self.inspect.page = self.list_rows + 1;
    }

    pub fn list(&self, pane: Pane) -> &ListState {
        &self.lists[&pane]
    }

    fn list_mut(&mut self, pane: Pane) -> &mut ListState {
        self.lists.entry(pane).or_default()
    }

    /// The number of rows a pane shows.
    pub fn len(&self, pane: Pane) -> usize {
        match pane {
            Pane::Containers => self.container_rows.len(),
            Pane::Images => self.image_rows.len(),
            Pane::Events => self.events.len(),
            Pane::Policy => self.policy.len(),
            Pane::Logs => self.logs.lines.len(),
            Pane::Inspect => self.inspect.rows.len(),
            Pane::Networks => self.networks.items().len(),
            Pane::Volumes => self.volumes.items().len(),
            Pane::Stats | Pane::Shell => 0,
        }
    }

    /// Whether the loop's sampling timer should run: the Containers pane is in view, some
    /// container is running, and no sample is on its way. Idle otherwise (no wake-ups).
    pub fn wants_usage(&self) -> bool {
        self.pane == Pane::Containers
            && !self.usage_pending
            && !self.usage_denied
            && self
                .containers
                .items()
                .iter()
                .any(|c| c.state == berth::api::ContainerState::Running)
    }

    /// The selected container (after filter and sort).
    pub fn selected_container(&self) -> Option<&ContainerSummary> {
        let i = *self
            .container_rows
            .get(self.list(Pane::Containers).selected)?;
        self.containers.items().get(i)
    }

    pub fn selected_image(&self) -> Option<&ImageSummary> {
        let i = *self.image_rows.get(self.list(Pane::Images).selected)?;
        self.images.items().get(i)
    }

    /// The containers an action applies to: the marked ones, else the selected one.
    fn container_targets(&self) -> Vec<&ContainerSummary> {
        let marked = &self.list(Pane::Containers).marked;
        if marked.is_empty() {
            return self.selected_container().into_iter().collect();
        }
        self.containers
            .items()
            .iter()
            .filter(|c| marked.contains(c.id.as_str()))
            .collect()
    }

    fn scroll_into_view(&mut self, pane: Pane) {
        let len = self.len(pane);
        let rows = self.list_rows;
        let l = self.list_mut(pane);
        l.selected = l.selected.min(len.saturating_sub(1));
        if l.selected < l.offset {
            l.offset = l.selected;
        } else if l.selected >= l.offset + rows {
            l.offset = l.selected + 1 - rows;
        }
        l.offset = l.offset.min(len.saturating_sub(rows));
    }

    fn select(&mut self, pane: Pane, to: impl FnOnce(usize, usize) -> usize) {
        let len = self.len(pane);
        let l = self.list_mut(pane);
        l.selected = to(l.selected, len).min(len.saturating_sub(1));
        self.scroll_into_view(pane);
    }

    /// Recompute the filtered, sorted rows of the containers and images panes, keeping the
    /// selection on the same item.
    pub fn rebuild_rows(&mut self) {
        let keep = self.selected_container().map(|c| c.id.clone());
        let l = self.list(Pane::Containers);
        let filter = l.filter.to_lowercase();
        let items = self.containers.items();
        let mut rows: Vec<usize> = (0..items.len())
            .filter(|&i| self.show_all || items[i].state.is_alive())
            .filter(|&i| {
                filter.is_empty()
                    || [
                        &items[i].name,
                        &items[i].image,
                        items[i].id.as_str(),
                        items[i].state.as_str(),
                    ]
                    .iter()
                    .any(|f| f.to_lowercase().contains(&filter))
            })
            .collect();
        if let Some(sort) = l.sort {
            // one lookup per container, not two per comparison
            let usage: Vec<Option<Usage>> = if sort.column == 4 || sort.column == 5 {
                items
                    .iter()
                    .map(|c| self.usage.get(c.id.as_str()).copied())
                    .collect()
            } else {
                vec![None; items.len()]
            };
            rows.sort_by(|&a, &b| {
                let o =
                    compare_containers((&items[a], usage[a]), (&items[b], usage[b]), sort.column);
                if sort.reverse { o.reverse() } else { o }
            });
        }
        self.container_rows = rows;
        if let Some(id) = keep
            && let Some(pos) = self
                .container_rows
                .iter()
                .position(|&i| self.containers.items()[i].id == id)
        {
            self.list_mut(Pane::Containers).selected = pos;
        }

        let keep = self.selected_image().map(|i| i.id.clone());
        let l = self.list(Pane::Images);
        let filter = l.filter.to_lowercase();
        let items = self.images.items();
        let mut rows: Vec<usize> = (0..items.len())
            .filter(|&i| {
                filter.is_empty()
                    || items[i].id.as_str().contains(&filter)
                    || items[i]
                        .repo_tags
                        .iter()
                        .any(|t| t.to_lowercase().contains(&filter))
            })
            .collect();
        if let Some(sort) = l.sort {
            rows.sort_by(|&a, &b| {
                let (a, b) = (&items[a], &items[b]);
                let o = match sort.column {
                    0 => a.repo_tags.first().cmp(&b.repo_tags.first()),
                    1 => a.size.cmp(&b.size),
                    _ => a.created.cmp(&b.created),
                };
                if sort.reverse { o.reverse() } else { o }
            });
        }
        self.image_rows = rows;
        if let Some(id) = keep
            && let Some(pos) = self
                .image_rows
                .iter()
                .position(|&i| self.images.items()[i].id == id)
        {
            self.list_mut(Pane::Images).selected = pos;
        }
        self.scroll_into_view(Pane::Containers);
        self.scroll_into_view(Pane::Images);
    }

    pub fn info(&mut self, text: impl Into<String>) {
        self.status = Some(Status {
            kind: StatusKind::Info,
            text: text.into(),
        });
    }

    pub fn error(&mut self, text: impl Into<String>) {
        self.status = Some(Status {
            kind: StatusKind::Error,
            text: text.into(),
        });
    }

    /// The key scopes in the order they get a key, for the focused pane.
    pub fn scopes(&self) -> Vec<Scope> {
        match self.pane {
            Pane::Containers => vec![Scope::Containers, Scope::List, Scope::Global],
            Pane::Images => vec![Scope::Images, Scope::List, Scope::Global],
            Pane::Logs => vec![Scope::Logs, Scope::Global],
            Pane::Inspect | Pane::Events | Pane::Policy | Pane::Networks | Pane::Volumes => {
                vec![Scope::List, Scope::Global]
            }
            Pane::Stats | Pane::Shell => vec![Scope::Global],
        }
    }

    /// Apply one message. Returns whether the screen changed and what to ask the engine.
    pub fn update(&mut self, msg: Msg) -> Outcome {
        let mut out = Outcome::default();
        match msg {
            Msg::Key(k) => self.on_key(&k, &mut out),
            Msg::Resize { width, height } => {
                self.resize(width, height);
                let (rows, cols) = self.shell_size;
                for sess in self.sessions.iter_mut().filter(|s| !s.ended()) {
                    sess.parser
                        .set_size(super::terminal::nz(rows), super::terminal::nz(cols));
                    if let Some(target) = &sess.resize {
                        out.effects.push(Effect::ResizeShell {
                            target: target.clone(),
                            rows,
                            cols,
                        });
                    }
                }
                out.redraw = true;
            }
            Msg::ShellStarted {
                session,
                resize,
                input,
            } => {
                if let Some(s) = self.sessions.iter_mut().find(|s| s.id == session) {
                    s.resize = resize;
                    s.input = input;
                    s.started = true;
                    let early = std::mem::take(&mut s.typed_early);
                    if let Some(i) = &s.input
                        && !early.is_empty()
                    {
                        let _ = i.try_send(bytes::Bytes::from(early));
                    }
                }
                out.redraw = true;
            }
            Msg::UsageTick => {
                if self.wants_usage() {
                    self.usage_pending = true;
                    out.effect(Effect::PollUsage);
                }
            }
            Msg::Usage(r) => {
                self.usage_pending = false;
                match r {
                    Ok(samples) => {
                        let fresh: HashMap<String, Usage> = samples
                            .into_iter()
                            .map(|s| {
                                (
                                    s.id.0,
                                    Usage {
                                        cpu: s.cpu_percent,
                                        memory: s.memory_bytes,
                                        limit: s.memory_limit,
                                    },
                                )
                            })
                            .collect();
                        let same = fresh.len() == self.usage.len()
                            && fresh.iter().all(|(id, u)| {
                                self.usage.get(id).map(Usage::texts) == Some(u.texts())
                            });
                        self.usage = fresh;
                        if !same {
                            let sorted_by_usage = self
                                .list(Pane::Containers)
                                .sort
                                .is_some_and(|s| s.column == 4 || s.column == 5);
                            if sorted_by_usage {
                                self.rebuild_rows();
                            }
                            out.redraw = self.pane == Pane::Containers;
                        }
                    }
                    Err(JobError::Denied { rule, reason }) => {
                        self.usage_denied = true;
                        self.error(format!(
                            "CPU and memory columns off: container.stats denied: {reason}{}",
                            rule.map(|r| format!(" ({r})")).unwrap_or_default()
                        ));
                        out.redraw = true;
                    }
                    Err(e) => {
                        let text = format!(
                            "container stats: {}",
                            match e {
                                JobError::Failed(m)
                                | JobError::NeedsConfirmation { reason: m, .. }
                                | JobError::Denied { reason: m, .. } => m,
                            }
                        );
                        if self.status.as_ref().map(|s| &s.text) != Some(&text) {
                            self.error(text);
                            out.redraw = true;
                        }
                    }
                }
            }
            Msg::ShellOutput { session, data } => {
                if let Some(s) = self.sessions.iter_mut().find(|s| s.id == session) {
                    s.parser.process(&data);
                    out.redraw = self.pane == Pane::Shell && self.active_session == Some(session);
                }
            }
            Msg::ShellEnded {
                session,
                exit_code,
                error,
            } => {
                if let Some(s) = self.sessions.iter_mut().find(|s| s.id == session) {
                    s.input = None;
                    s.exit_code = exit_code;
                    if let Some(e) = &error {
                        self.status = Some(Status {
                            kind: StatusKind::Error,
                            text: format!("shell in {}: {e}", s.name),
                        });
                    }
                    s.error = error;
                }
                out.redraw = true;
            }
            Msg::Engine(rec) => self.on_event(*rec, &mut out),
            Msg::Lagged(n) => {
                self.info(format!("missed {n} engine events; refreshed"));
                out.effects = Self::initial_effects();
                out.redraw = true;
            }
            Msg::Containers(r) => {
                match r {
                    Ok(v) => {
                        let ids: HashSet<&str> = v.iter().map(|c| c.id.as_str()).collect();
                        self.list_mut(Pane::Containers)
                            .marked
                            .retain(|m| ids.contains(m.as_str()));
                        self.containers = Loaded::Ready(v);
                    }
                    Err(e) => self.error(format!("listing containers: {e}")),
                }
                self.rebuild_rows();
                out.redraw = true;
            }
            Msg::Images(r) => {
                match r {
                    Ok(v) => self.images = Loaded::Ready(v),
                    Err(e) => self.error(format!("listing images: {e}")),
                }
                self.rebuild_rows();
                out.redraw = true;
            }
            Msg::Networks(r) => {
                match r {
                    Ok(v) => self.networks = Loaded::Ready(v),
                    Err(e) => self.error(format!("listing networks: {e}")),
                }
                self.scroll_into_view(Pane::Networks);
                out.redraw = true;
            }
            Msg::Volumes(r) => {
                match r {
                    Ok(v) => self.volumes = Loaded::Ready(v),
                    Err(e) => self.error(format!("listing volumes: {e}")),
                }
                self.scroll_into_view(Pane::Volumes);
                out.redraw = true;
            }
            Msg::Audit(r) => {
                match r {
                    Ok(v) => self.policy = v.into_iter().collect(),
                    Err(e) => self.error(format!("reading policy decisions: {e}")),
                }
                self.scroll_into_view(Pane::Policy);
                out.redraw = true;
            }
            Msg::Done { job, result } => self.on_done(job, result, &mut out),
            Msg::LogLine { id, line } => {
                if self.logs.container.as_ref().is_some_and(|(c, _)| *c == id) {
                    self.logs.push(line);
                    out.redraw = self.pane == Pane::Logs;
                }
            }
            Msg::LogEnd { id, error } => {
                if self.logs.container.as_ref().is_some_and(|(c, _)| *c == id) {
                    self.logs.ended = true;
                    if let Some(e) = error {
                        self.error(format!("logs: {e}"));
                    }
                    out.redraw = true;
                }
            }
            Msg::Stat(s) => {
                if self
                    .stats
                    .container
                    .as_ref()
                    .is_some_and(|(c, _)| *c == s.id)
                {
                    self.stats.push(s);
                    out.redraw = self.pane == Pane::Stats;
                }
            }
            Msg::Inspected { title, result } => {
                match result {
                    Ok(v) => {
                        self.inspect = InspectView::new(title, v, self.list_rows + 1);
                        self.pane = Pane::Inspect;
                    }
                    Err(e) => self.error(format!("inspect: {e}")),
                }
                out.redraw = true;
            }
            Msg::Saved(r) => {
                match r {
                    Ok(p) => self.info(format!("log saved to {}", p.display())),
                    Err(e) => self.error(format!("saving the log: {e}")),
                }
                out.redraw = true;
            }
        }
        out
    }

    fn on_done(
        &mut self,
        job: Job,
        result: Result<Option<ContainerId>, JobError>,
        out: &mut Outcome,
    ) {
        out.redraw = true;
        let target = job.cmd.target().unwrap_or_default();
        if let Command::ImageBuild { .. } = job.cmd {
            for p in &mut self.popups {
                if let Popup::Build(b) = p {
                    b.done = Some(result.as_ref().map(|_| ()).map_err(|e| match e {
                        JobError::Denied { reason, .. }
                        | JobError::NeedsConfirmation { reason, .. } => reason.clone(),
                        JobError::Failed(m) => m.clone(),
                    }));
                }
            }
        }
        match result {
            Ok(created) => {
                self.denials.remove(&target);
                if let Some(p) = self.popups.iter_mut().find_map(|p| match p {
                    Popup::Pull(v) if job.what.ends_with(&v.reference) => Some(v),
                    _ => None,
                }) {
                    p.done = Some(Ok(()));
                }
                match (job.then_start, created) {
                    (true, Some(id)) => {
                        out.effect(Effect::Submit(Job::new(
                            Command::ContainerStart { id: id.clone() },
                            format!("start {}", id.short()),
                        )));
                        self.open_logs(id.clone(), id.short().to_owned(), out);
                    }
                    _ => self.info(format!("{}: done", job.what)),
                }
            }
            Err(JobError::NeedsConfirmation { rule, reason }) => {
                let mut confirmed = job.clone();
                confirmed.confirmed = true;
                self.popups.push(Popup::Confirm(Confirm::new(
                    "Policy asks for confirmation",
                    vec![
                        format!("{}: {reason}", job.what),
                        rule.map(|r| format!("rule {r}")).unwrap_or_default(),
                        "Go ahead?".into(),
                    ],
                    vec![confirmed],
                )));
            }
            Err(JobError::Denied { rule, reason }) => {
                self.error(format!(
                    "{} denied: {reason}{}",
                    job.what,
                    rule.as_ref().map(|r| format!(" ({r})")).unwrap_or_default()
                ));
                self.denials.insert(target, Denial { rule, reason });
                self.fail_pull(&job);
            }
            Err(JobError::Failed(e)) => {
                self.error(format!("{}: {e}", job.what));
                self.fail_pull(&job);
            }
        }
    }

    fn fail_pull(&mut self, job: &Job) {
        let msg = self
            .status
            .as_ref()
            .map(|s| s.text.clone())
            .unwrap_or_default();
        for p in &mut self.popups {
            if let Popup::Pull(v) = p
                && job.what.ends_with(&v.reference)
            {
                v.done = Some(Err(msg.clone()));
            }
        }
    }

    fn open_logs(&mut self, id: ContainerId, name: String, out: &mut Outcome) {
        if self.logs.container.as_ref().map(|(c, _)| c) != Some(&id) {
            self.logs = LogView::open(id.clone(), name, self.list_rows + 1);
            out.effect(Effect::OpenLogs(id));
        }
        self.pane = Pane::Logs;
    }

    fn open_stats(&mut self, id: ContainerId, name: String, out: &mut Outcome) {
        if self.stats.container.as_ref().map(|(c, _)| c) != Some(&id) {
            self.stats = StatsView::open(id.clone(), name);
            out.effect(Effect::OpenStats(id));
        }
        self.pane = Pane::Stats;
    }

    fn on_key(&mut self, k: &KeyEvent, out: &mut Outcome) {
        // The popup on top takes the key first.
        if let Some(top) = self.popups.last_mut() {
            out.redraw = true;
            match popup::handle_key(top, k, &self.keymap) {
                popup::Reaction::Keep => {}
                popup::Reaction::Close => {
                    self.popups.pop();
                }
                popup::Reaction::Submit(jobs) => {
                    self.popups.pop();
                    for j in jobs {
                        self.info(format!("{}…", j.what));
                        out.effect(Effect::Submit(j));
                    }
                }
                popup::Reaction::Menu(action) => {
                    self.popups.pop();
                    self.act(action, out);
                }
                popup::Reaction::Input(kind, text) => {
                    self.popups.pop();
                    self.on_input(kind, text, out);
                }
                popup::Reaction::Live(kind, text) => self.on_live_input(kind, &text),
                popup::Reaction::Pull(reference) => {
                    self.popups.pop();
                    self.start_pull(reference, out);
                }
            }
            return;
        }
        let active = self.active_session;
        if self.pane == Pane::Shell
            && let Some(sess) = active.and_then(|a| self.sessions.iter_mut().find(|s| s.id == a))
            && !sess.ended()
        {
            let mut note = None;
            if super::terminal::is_detach(k) {
                let back = match sess.kind {
                    SessionKind::Shell => "e or 8 goes back",
                    SessionKind::Attach => "A or 8 goes back",
                };
                self.pane = Pane::Containers;
                note = Some(format!(
                    "detached from {}; it keeps running ({back})",
                    sess.title()
                ));
            } else if !sess.started {
                // Typed while connecting: kept for the session, not lost.
                if let Some(bytes) = super::terminal::encode_key(k) {
                    sess.typed_early.extend(bytes);
                }
            } else if sess.read_only() {
                note =
                    Some("no TTY: this shows the container's output only (Ctrl-] detaches)".into());
            } else if let (Some(bytes), Some(input)) = (super::terminal::encode_key(k), &sess.input)
            {
                // The shell's echo redraws; a full buffer drops the key rather than block the UI.
                let _ = input.try_send(bytes::Bytes::from(bytes));
            }
            if let Some(n) = note {
                self.info(n);
                out.redraw = true;
            }
            return;
        }
        let Some(action) = keys::lookup(&self.keymap, &self.scopes(), k) else {
            return;
        };
        out.redraw = true;
        self.act(action, out);
    }

    /// Open (or go back to) a shell in a container.
    fn open_shell(&mut self, container: ContainerId, name: String, out: &mut Outcome) {
        self.open_session(SessionKind::Shell, container, name, out);
    }

    /// Open (or go back to) a terminal session of one kind on a container: one live session
    /// per container and kind; an ended one is replaced.
    fn open_session(
        &mut self,
        kind: SessionKind,
        container: ContainerId,
        name: String,
        out: &mut Outcome,
    ) {
        if let Some(s) = self
            .sessions
            .iter()
            .find(|s| s.container == container && s.kind == kind && !s.ended())
        {
            self.active_session = Some(s.id);
        } else {
            let id = self.next_session;
            self.next_session += 1;
            let (rows, cols) = self.shell_size;
            self.sessions
                .retain(|s| !(s.container == container && s.kind == kind && s.ended()));
            self.sessions.push(super::terminal::Session::new(
                id,
                kind,
                container.clone(),
                name,
                rows,
                cols,
            ));
            self.active_session = Some(id);
            out.effects.push(match kind {
                SessionKind::Shell => Effect::OpenShell {
                    session: id,
                    container,
                    rows,
                    cols,
                },
                SessionKind::Attach => Effect::Attach {
                    session: id,
                    container,
                    rows,
                    cols,
                },
            });
        }
        self.pane = Pane::Shell;
    }

    fn act(&mut self, action: Action, out: &mut Outcome) {
        let pane = self.pane;
        let page = self.list_rows.max(1);
        match (pane, action) {
            (_, Action::Quit) => self.quit = true,
            (_, Action::Help) => self.popups.push(Popup::Help),
            (_, Action::Back) => {
                let l = self.list_mut(pane);
                if !l.filter.is_empty() {
                    l.filter.clear();
                    self.rebuild_rows();
                } else if pane == Pane::Logs && self.logs.search.is_some() {
                    self.logs.set_search(None);
                } else if pane != Pane::Containers {
                    self.pane = Pane::Containers;
                }
            }
            (_, Action::CommandLine) => self
                .popups
                .push(Popup::Input(Box::new(Input::new(InputKind::Command, "")))),
            (_, Action::NextPane | Action::PrevPane) => {
                let n = Pane::ALL.len();
                let i = pane.index();
                let j = if action == Action::NextPane {
                    (i + 1) % n
                } else {
                    (i + n - 1) % n
                };
                self.pane = Pane::ALL[j];
            }
            (_, Action::ContainersPane) => self.pane = Pane::Containers,
            (_, Action::ImagesPane) => self.pane = Pane::Images,
            (_, Action::LogsPane) => match self
                .selected_container()
                .map(|c| (c.id.clone(), c.name.clone()))
            {
                Some((id, name)) if self.logs.container.is_none() => self.open_logs(id, name, out),
                _ => self.pane = Pane::Logs,
            },
            (_, Action::StatsPane) => match self
                .selected_container()
                .map(|c| (c.id.clone(), c.name.clone()))
            {
                Some((id, name)) if self.stats.container.is_none() => {
                    self.open_stats(id, name, out)
                }
                _ => self.pane = Pane::Stats,
            },
            (_, Action::InspectPane) => self.pane = Pane::Inspect,
            (_, Action::EventsPane) => self.pane = Pane::Events,
            (_, Action::ShellPane) => {
                if self.active_session.is_none()
                    && let Some(c) = self
                        .selected_container()
                        .filter(|c| c.state == berth::api::ContainerState::Running)
                {
                    let (id, name) = (c.id.clone(), c.name.clone());
                    self.open_shell(id, name, out);
                } else {
                    self.pane = Pane::Shell;
                }
            }
            (_, Action::NetworksPane) => {
                self.pane = Pane::Networks;
                out.effect(Effect::Query(Query::Networks));
            }
            (_, Action::VolumesPane) => {
                self.pane = Pane::Volumes;
                out.effect(Effect::Query(Query::Volumes));
            }
            (_, Action::PolicyPane) => {
                self.pane = Pane::Policy;
                out.effect(Effect::Query(Query::Audit));
            }
            (_, Action::ToggleMouse) => {
                self.mouse = !self.mouse;
                out.effect(Effect::SetMouse(self.mouse));
                self.info(if self.mouse {
                    "mouse on"
                } else {
                    "mouse off: select text with the terminal"
                });
            }
            (_, Action::RunForm) => {
                let image = self
                    .selected_image()
                    .filter(|_| pane == Pane::Images)
                    .and_then(|i| i.repo_tags.first().cloned())
                    .unwrap_or_default();
                self.popups.push(Popup::Run(Box::new(RunForm::new(&image))));
            }
            (_, Action::BuildForm) => self.popups.push(Popup::Input(Box::new(Input::new(
                InputKind::Build,
                ". -t ",
            )))),
            (_, Action::PullForm) => self
                .popups
                .push(Popup::Input(Box::new(Input::new(InputKind::Pull, "")))),
            (Pane::Logs, a) => self.logs_action(a, out),
            (Pane::Inspect, Action::Menu | Action::Mark) => self.inspect.toggle(),
            (Pane::Inspect, Action::Down) => self.inspect.move_by(1),
            (Pane::Inspect, Action::Up) => self.inspect.move_by(-1),
            (Pane::Inspect, Action::PageDown) => self.inspect.move_by(page as isize),
            (Pane::Inspect, Action::PageUp) => self.inspect.move_by(-(page as isize)),
            (Pane::Inspect, Action::Top) => self.inspect.move_by(isize::MIN / 2),
            (Pane::Inspect, Action::Bottom) => self.inspect.move_by(isize::MAX / 2),
            (_, Action::Down) => self.select(pane, |s, _| s + 1),
            (_, Action::Up) => self.select(pane, |s, _| s.saturating_sub(1)),
            (_, Action::Top) => self.select(pane, |_, _| 0),
            (_, Action::Bottom) => self.select(pane, |_, len| len),
            (_, Action::PageDown) => self.select(pane, |s, _| s + page),
            (_, Action::PageUp) => self.select(pane, |s, _| s.saturating_sub(page)),
            (Pane::Containers | Pane::Images, Action::Filter) => {
                let current = self.list(pane).filter.clone();
                self.popups.push(Popup::Input(Box::new(Input::new(
                    InputKind::Filter(pane),
                    &current,
                ))));
            }
            (Pane::Containers | Pane::Images, Action::SortNext | Action::SortReverse) => {
                let columns = if pane == Pane::Containers {
                    CONTAINER_SORTS.len()
                } else {
                    IMAGE_SORTS.len()
                };
                let l = self.list_mut(pane);
                l.sort = Some(match (l.sort, action) {
                    (None, _) => Sort {
                        column: 0,
                        reverse: false,
                    },
                    (Some(s), Action::SortReverse) => Sort {
                        reverse: !s.reverse,
                        ..s
                    },
                    (Some(s), _) => Sort {
                        column: (s.column + 1) % columns,
                        reverse: false,
                    },
                });
                self.rebuild_rows();
            }
            (Pane::Containers, Action::Mark) => {
                if let Some(id) = self.selected_container().map(|c| c.id.0.clone()) {
                    let m = &mut self.list_mut(Pane::Containers).marked;
                    if !m.remove(&id) {
                        m.insert(id);
                    }
                    self.select(Pane::Containers, |s, _| s + 1);
                }
            }
            (Pane::Containers, Action::ToggleAll) => {
                self.show_all = !self.show_all;
                self.rebuild_rows();
            }
            (Pane::Containers, Action::Menu) => {
                if let Some(c) = self.selected_container() {
                    self.popups
                        .push(Popup::Menu(container_menu(c, &self.keymap)));
                }
            }
            (Pane::Images, Action::Menu) => {
                if let Some(i) = self.selected_image() {
                    self.popups.push(Popup::Menu(image_menu(i, &self.keymap)));
                }
            }
            (Pane::Containers, Action::Inspect) => {
                if let Some(c) = self.selected_container() {
                    out.effect(Effect::Inspect(InspectTarget::Container(c.id.clone())));
                }
            }
            (Pane::Images, Action::Inspect) => {
                if let Some(i) = self.selected_image() {
                    out.effect(Effect::Inspect(InspectTarget::Image(ImageRef(
                        i.id.0.clone(),
                    ))));
                }
            }
            (Pane::Containers, a) => self.container_action(a, out),
            (Pane::Images, a) => self.image_action(a),
            _ => out.redraw = false,
        }
    }

    fn container_action(&mut self, action: Action, out: &mut Outcome) {
        let targets: Vec<(ContainerId, String, bool, bool)> = self
            .container_targets()
            .iter()
            .map(|c| {
                (
                    c.id.clone(),
                    c.name.clone(),
                    c.state.is_alive(),
                    c.state == berth::api::ContainerState::Paused,
                )
            })
            .collect();
        if targets.is_empty() {
            return;
        }
        let jobs = |f: &dyn Fn(&ContainerId) -> Command, verb: &str| -> Vec<Job> {
            targets
                .iter()
                .map(|(id, name, ..)| Job::new(f(id), format!("{verb} {name}")))
                .collect()
        };
        let names = targets
            .iter()
            .map(|t| t.1.as_str())
            .collect::<Vec<_>>()
            .join(", ");
        let submit = match action {
            Action::Start => jobs(&|id| Command::ContainerStart { id: id.clone() }, "start"),
            Action::Stop => jobs(
                &|id| Command::ContainerStop {
                    id: id.clone(),
                    timeout: None,
                },
                "stop",
            ),
            Action::Restart => jobs(
                &|id| Command::ContainerRestart {
                    id: id.clone(),
                    timeout: None,
                },
                "restart",
            ),
            Action::PauseToggle => targets
                .iter()
                .map(|(id, name, _, paused)| {
                    if *paused {
                        Job::new(
                            Command::ContainerUnpause { id: id.clone() },
                            format!("unpause {name}"),
                        )
                    } else {
                        Job::new(
                            Command::ContainerPause { id: id.clone() },
                            format!("pause {name}"),
                        )
                    }
                })
                .collect(),
            Action::Kill => {
                let ids: Vec<(ContainerId, String)> =
                    targets.iter().map(|t| (t.0.clone(), t.1.clone())).collect();
                self.popups.push(Popup::Menu(popup::signal_menu(ids)));
                return;
            }
            Action::Remove | Action::ForceRemove => {
                let force = action == Action::ForceRemove;
                let running = targets.iter().filter(|t| t.2).count();
                let mut text = vec![format!("Remove {names}?")];
                if running > 0 && !force {
                    text.push(format!(
                        "{running} running: removal will be refused (D forces)."
                    ));
                } else if force && running > 0 {
                    text.push(format!("{running} running: they will be killed first."));
                }
                let jobs = jobs(
                    &|id| Command::ContainerRemove {
                        id: id.clone(),
                        force,
                    },
                    "remove",
                );
                self.popups.push(Popup::Confirm(Confirm::new(
                    "Remove containers",
                    text,
                    jobs,
                )));
                return;
            }
            Action::Logs => {
                let (id, name, ..) = targets[0].clone();
                self.open_logs(id, name, out);
                return;
            }
            Action::Exec => {
                let (id, name, ..) = targets[0].clone();
                self.open_shell(id, name, out);
                return;
            }
            Action::Attach => {
                let (id, name, alive, _) = targets[0].clone();
                if alive {
                    self.open_session(SessionKind::Attach, id, name, out);
                } else {
                    self.error(format!(
                        "{name} is not running: start it (u) to attach to it"
                    ));
                }
                return;
            }
            _ => return,
        };
        for j in submit {
            out.effect(Effect::Submit(j));
        }
        self.info(format!("{} …", names));
    }

    fn image_action(&mut self, action: Action) {
        let Some(img) = self.selected_image() else {
            return;
        };
        let name = img
            .repo_tags
            .first()
            .cloned()
            .unwrap_or_else(|| img.id.short().to_owned());
        let reference = ImageRef(
            img.repo_tags
                .first()
                .cloned()
                .unwrap_or_else(|| img.id.0.clone()),
        );
        match action {
            Action::Remove | Action::ForceRemove => {
                let force = action == Action::ForceRemove;
                let mut text = vec![format!("Remove image {name}?")];
                if img.containers > 0 {
                    text.push(format!(
                        "{} container(s) use it: {}",
                        img.containers,
                        if force {
                            "it goes anyway"
                        } else {
                            "removal will be refused (D forces)"
                        }
                    ));
                }
                let job = Job::new(
                    Command::ImageRemove { reference, force },
                    format!("remove image {name}"),
                );
                self.popups.push(Popup::Confirm(Confirm::new(
                    "Remove image",
                    text,
                    vec![job],
                )));
            }
            Action::TagImage => self.popups.push(Popup::Input(Box::new(Input::new(
                InputKind::Tag(reference),
                "",
            )))),
            Action::Prune => {
                // Show what goes before asking: the images no container uses, and the space.
                let unused: Vec<&ImageSummary> = self
                    .images
                    .items()
                    .iter()
                    .filter(|i| i.containers == 0)
                    .collect();
                let dangling = unused.iter().filter(|i| i.repo_tags.is_empty()).count();
                let freed: u64 = unused.iter().map(|i| i.size).sum();
                let mut text = vec![format!(
                    "Remove {} unused image(s) ({} untagged), about {}:",
                    unused.len(),
                    dangling,
                    super::view::human_size(freed)
                )];
                text.extend(unused.iter().take(8).map(|i| {
                    format!(
                        "  {}",
                        i.repo_tags
                            .first()
                            .cloned()
                            .unwrap_or_else(|| format!("<none> {}", i.id.short()))
                    )
                }));
                if unused.len() > 8 {
                    text.push(format!("  … and {} more", unused.len() - 8));
                }
                let job = Job::new(Command::ImagePrune { all: true }, "prune images");
                self.popups.push(Popup::Confirm(Confirm::new(
                    "Prune images",
                    text,
                    vec![job],
                )));
            }
            _ => {}
        }
    }

    fn logs_action(&mut self, action: Action, _out: &mut Outcome) {
        let page = self.list_rows.max(1);
        match action {
            Action::Follow => self.logs.follow = !self.logs.follow,
            Action::Wrap => self.logs.wrap = !self.logs.wrap,
            Action::Timestamps => self.logs.timestamps = !self.logs.timestamps,
            Action::Search => {
                let q = self.logs.search.clone().unwrap_or_default();
                self.popups
                    .push(Popup::Input(Box::new(Input::new(InputKind::Search, &q))));
            }
            Action::SearchNext => self.logs.next_match(true),
            Action::SearchPrev => self.logs.next_match(false),
            Action::SaveLogs => {
                let name = self
                    .logs
                    .container
                    .as_ref()
                    .map(|(_, n)| n.clone())
                    .unwrap_or_default();
                self.popups.push(Popup::Input(Box::new(Input::new(
                    InputKind::SaveLogs,
                    &format!("{name}.log"),
                ))));
            }
            Action::Down => self.logs.scroll_by(1),
            Action::Up => self.logs.scroll_by(-1),
            Action::PageDown => self.logs.scroll_by(page as isize),
            Action::PageUp => self.logs.scroll_by(-(page as isize)),
            Action::Top => self.logs.scroll_by(isize::MIN / 2),
            Action::Bottom => {
                self.logs.follow = true;
                self.logs.scroll_by(isize::MAX / 2);
            }
            _ => {}
        }
    }

    fn on_live_input(&mut self, kind: InputKind, text: &str) {
        match kind {
            InputKind::Filter(pane) => {
                self.list_mut(pane).filter = text.to_owned();
                self.rebuild_rows();
            }
            InputKind::Search => self
                .logs
                .set_search(Some(text.to_owned()).filter(|t| !t.is_empty())),
            _ => {}
        }
    }

    fn on_input(&mut self, kind: InputKind, text: String, out: &mut Outcome) {
        match kind {
            InputKind::Filter(_) | InputKind::Search => self.on_live_input(kind, &text),
            InputKind::Pull => {
                if !text.trim().is_empty() {
                    self.start_pull(text.trim().to_owned(), out)
                }
            }
            InputKind::Tag(source) => {
                if !text.trim().is_empty() {
                    let target = ImageRef(text.trim().to_owned());
                    out.effect(Effect::Submit(Job::new(
                        Command::ImageTag {
                            source: source.clone(),
                            target: target.clone(),
                        },
                        format!("tag {source} as {target}"),
                    )));
                }
            }
            InputKind::SaveLogs => {
                let text_out = self.logs.export();
                out.effect(Effect::SaveLogs {
                    path: text.trim().into(),
                    text: text_out,
                });
            }
            InputKind::Command => self.command_line(&text, out),
            InputKind::Build => match popup::parse_build(&text) {
                Ok(cfg) => {
                    let title = format!(
                        "Build {}{}",
                        cfg.context.display(),
                        cfg.tags
                            .first()
                            .map(|t| format!(" as {t}"))
                            .unwrap_or_default()
                    );
                    self.popups
                        .push(Popup::Build(popup::BuildView::new(title.clone())));
                    out.effect(Effect::Submit(Job::new(
                        Command::ImageBuild {
                            config: Box::new(cfg),
                        },
                        title,
                    )));
                }
                Err(e) => self.error(format!("build: {e}")),
            },
        }
    }

    fn start_pull(&mut self, reference: String, out: &mut Outcome) {
        self.popups.push(Popup::Pull(PullView::new(&reference)));
        out.effect(Effect::Submit(Job::new(
            Command::ImagePull {
                reference: ImageRef(reference.clone()),
                platform: None,
            },
            format!("pull {reference}"),
        )));
    }

    /// `:run IMAGE [CMD…]`, `:pull REF`, `:images`, `:q` …
    fn command_line(&mut self, line: &str, out: &mut Outcome) {
        let words = popup::split_words(line);
        let Some((first, rest)) = words.split_first() else {
            return;
        };
        match (first.as_str(), rest) {
            ("q" | "quit", _) => self.quit = true,
            ("c" | "containers" | "ps", _) => self.pane = Pane::Containers,
            ("i" | "images", _) => self.pane = Pane::Images,
            ("logs", _) => self.act(Action::LogsPane, out),
            ("stats", _) => self.act(Action::StatsPane, out),
            ("events", _) => self.pane = Pane::Events,
            ("policy", _) => self.act(Action::PolicyPane, out),
            ("help", _) => self.popups.push(Popup::Help),
            ("pull", [r]) => self.start_pull(r.clone(), out),
            ("run", [image, cmd @ ..]) => {
                let config = berth::api::ContainerConfig {
                    image: ImageRef(image.clone()),
                    cmd: cmd.to_vec(),
                    ..Default::default()
                };
                let mut job = Job::new(
                    Command::ContainerCreate {
                        config: Box::new(config),
                        pull: true,
                    },
                    format!("run {image}"),
                );
                job.then_start = true;
                out.effect(Effect::Submit(job));
            }
            ("run", []) => {
                self.popups.push(Popup::Run(Box::new(RunForm::new(""))));
            }
            _ => self.error(format!(
                ":{line}: unknown command (try :run, :pull, :images, :containers, :logs, :q)"
            )),
        }
    }

    fn on_event(&mut self, rec: EventRecord, out: &mut Outcome) {
        match &rec.event {
            Event::Transfer {
                reference,
                layer,
                phase,
                current,
                total,
            } => {
                for p in &mut self.popups {
                    if let Popup::Pull(v) = p
                        && v.reference == reference.0
                    {
                        v.update(layer, *phase, *current, *total);
                        out.redraw = true;
                    }
                }
                return;
            }
            Event::Stats(s) => {
                if self
                    .stats
                    .container
                    .as_ref()
                    .is_some_and(|(c, _)| *c == s.id)
                {
                    self.stats.push(s.clone());
                    out.redraw = self.pane == Pane::Stats;
                }
                return;
            }
            Event::BuildOutput { line } => {
                for p in &mut self.popups {
                    if let Popup::Build(b) = p {
                        b.push(line.clone());
                        out.redraw = true;
                    }
                }
                return;
            }
            Event::PolicyDecision {
                subject,
                action,
                target,
                verdict,
                rule,
                reason,
            } => {
                if self.policy.len() == POLICY_KEPT {
                    self.policy.pop_front();
                }
                self.policy.push_back(AuditRecord {
                    time: super::view::clock(rec.time),
                    subject: subject.clone(),
                    uid: 0,
                    action: action.clone(),
                    target: target.clone(),
                    decision: *verdict,
                    rule: rule.clone(),
                    reason: reason.clone(),
                });
                self.scroll_into_view(Pane::Policy);
                if *verdict == Verdict::Deny && rec.origin.is_empty() {
                    self.error(reason.clone());
                }
            }
            Event::Error { context, message } => self.error(format!("{context}: {message}")),
            Event::ContainerRemoved { id } => {
                if self.logs.container.as_ref().is_some_and(|(c, _)| c == id) {
                    self.logs.ended = true;
                }
                out.effect(Effect::Query(Query::Containers));
            }
            e if e.container().is_some() => {
                out.effect(Effect::Query(Query::Containers));
                // who is on a network, and who uses a volume, change with containers
                match self.pane {
                    Pane::Networks => out.effect(Effect::Query(Query::Networks)),
                    Pane::Volumes => out.effect(Effect::Query(Query::Volumes)),
                    _ => {}
                }
            }
            Event::ImagePulled { .. }
            | Event::ImageTagged { .. }
            | Event::ImageUntagged { .. }
            | Event::ImageRemoved { .. }
            | Event::ImagesPruned { .. }
            | Event::ImageBuilt { .. } => out.effect(Effect::Query(Query::Images)),
            // A dead build's RUN containers were listed.
            Event::DebrisRemoved { .. } => out.effect(Effect::Query(Query::Containers)),
            _ => {}
        }
        if self.events.len() == EVENTS_KEPT {
            self.events.pop_front();
        }
        self.events.push_back(rec);
        self.scroll_into_view(Pane::Events);
        out.redraw = true;
    }
}

fn menu_item(keymap: &[Binding], scope: Scope, action: Action, label: &str) -> MenuItem {
    let key = keymap
        .iter()
        .find(|b| b.action == action && b.scope == scope)
        .map(keys::key_label)
        .unwrap_or_default();
    MenuItem {
        label: label.to_owned(),
        key,
        action,
    }
}

/// The actions that make sense for a container in its state.
fn container_menu(c: &ContainerSummary, keymap: &[Binding]) -> Menu {
    use berth::api::ContainerState as S;
    let s = Scope::Containers;
    let mut items = Vec::new();
    match c.state {
        S::Running => {
            items.push(menu_item(keymap, s, Action::Exec, "shell (exec sh)"));
            items.push(menu_item(
                keymap,
                s,
                Action::Attach,
                "attach (its own terminal)",
            ));
            items.push(menu_item(keymap, s, Action::Stop, "stop"));
            items.push(menu_item(keymap, s, Action::Restart, "restart"));
            items.push(menu_item(keymap, s, Action::PauseToggle, "pause"));
            items.push(menu_item(keymap, s, Action::Kill, "kill…"));
        }
        S::Paused => {
            items.push(menu_item(keymap, s, Action::PauseToggle, "unpause"));
            items.push(menu_item(keymap, s, Action::Kill, "kill…"));
        }
        S::Restarting => items.push(menu_item(keymap, s, Action::Stop, "stop")),
        S::Created | S::Exited | S::Dead => {
            items.push(menu_item(keymap, s, Action::Start, "start"));
            items.push(menu_item(keymap, s, Action::Remove, "remove"));
        }
    }
    items.push(menu_item(keymap, s, Action::Logs, "logs"));
    items.push(menu_item(keymap, Scope::Global, Action::StatsPane, "stats"));
    items.push(menu_item(keymap, Scope::List, Action::Inspect, "inspect"));
    if c.state.is_alive() {
        items.push(menu_item(keymap, s, Action::ForceRemove, "remove (force)"));
    }
    Menu::new(format!("{} ({})", c.name, c.state.as_str()), items)
}

fn image_menu(i: &ImageSummary, keymap: &[Binding]) -> Menu {
    let s = Scope::Images;
    let items = vec![
        menu_item(
            keymap,
            Scope::Global,
            Action::RunForm,
            "run a container from it",
        ),
        menu_item(keymap, s, Action::TagImage, "tag"),
        menu_item(keymap, Scope::List, Action::Inspect, "inspect"),
        menu_item(keymap, s, Action::Remove, "remove"),
        menu_item(keymap, s, Action::ForceRemove, "remove (force)"),
    ];
    let name = i
        .repo_tags
        .first()
        .cloned()
        .unwrap_or_else(|| i.id.short().to_owned());
    Menu::new(name, items)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crossterm::event::{KeyCode, KeyModifiers};

    pub fn key(c: char) -> Msg {
        Msg::Key(KeyEvent::new(KeyCode::Char(c), KeyModifiers::NONE))
    }

    fn app() -> App {
        App::new("t", keys::default_keymap(), 80, 24)
    }

    fn container(name: &str, state: berth::api::ContainerState) -> ContainerSummary {
        ContainerSummary {
            id: ContainerId(format!("{name:0<64}")),
            name: name.into(),
            image: "busybox".into(),
            command: "sh".into(),
            created: 0,
            state,
            started_at: None,
            finished_at: None,
            exit_code: None,
            oom_killed: false,
            pid: None,
            ports: vec![],
        }
    }

    fn sample(id: &ContainerId, cpu: f64, memory: u64) -> StatsSample {
        StatsSample {
            id: id.clone(),
            cpu_percent: cpu,
            memory_bytes: memory,
            memory_limit: Some(64 << 20),
            ..Default::default()
        }
    }

    /// Five containers that differ in every sortable column.
    fn sortable() -> (App, HashMap<String, &'static str>) {
        use berth::api::{ContainerState as S, PortMapping};
        let mut app = app();
        let port = |p: u16| PortMapping {
            host_ip: None,
            host_port: p,
            container_port: 80,
            protocol: "tcp".into(),
        };
        let mut cs = vec![
            container("web", S::Running),
            container("db", S::Running),
            container("old", S::Exited),
            container("new", S::Created),
            container("frozen", S::Paused),
        ];
        cs[0].image = "nginx".into();
        cs[1].image = "postgres".into();
        cs[2].image = "alpine".into();
        cs[3].image = "busybox".into();
        cs[4].image = "redis".into();
        cs[0].started_at = Some(500); // up for less time than db
        cs[1].started_at = Some(100);
        cs[4].started_at = Some(50);
        cs[2].finished_at = Some(900);
        cs[0].ports = vec![port(8080)];
        cs[1].ports = vec![port(5432)];
        for (i, c) in cs.iter_mut().enumerate() {
            c.created = [30, 10, 50, 40, 20][i];
        }
        let names = cs.iter().map(|c| (c.id.0.clone(), leak(&c.name))).collect();
        let (web, db, frozen) = (cs[0].id.clone(), cs[1].id.clone(), cs[4].id.clone());
        app.update(Msg::Containers(Ok(cs)));
        app.update(Msg::Usage(Ok(vec![
            sample(&web, 75.0, 30 << 20),
            sample(&db, 5.0, 200 << 20),
            sample(&frozen, 0.0, 1 << 20),
        ])));
        (app, names)
    }

    fn leak(s: &str) -> &'static str {
        Box::leak(s.to_owned().into_boxed_str())
    }

    fn order(app: &App, names: &HashMap<String, &'static str>) -> Vec<&'static str> {
        app.container_rows
            .iter()
            .map(|&i| names[app.containers.items()[i].id.as_str()])
            .collect()
    }

    #[test]
    fn sorting_by_every_column_and_back() {
        let (mut app, names) = sortable();
        let expect: [(&str, [&str; 5]); 8] = [
            ("name", ["db", "frozen", "new", "old", "web"]),
            ("image", ["old", "new", "web", "db", "frozen"]),
            ("state", ["new", "old", "frozen", "db", "web"]),
            // up longest first, then paused, created, exited
            ("status", ["db", "web", "frozen", "new", "old"]),
            // stopped ones (no sample) first, then by CPU
            ("cpu", ["new", "old", "frozen", "db", "web"]),
            ("memory", ["new", "old", "frozen", "web", "db"]),
            // with published ports first, by host port
            ("ports", ["db", "web", "frozen", "new", "old"]),
            ("created", ["db", "frozen", "web", "new", "old"]),
        ];
        for (column, want) in expect {
            app.update(key('o'));
            let s = app.list(Pane::Containers).sort.unwrap();
            assert_eq!(CONTAINER_SORTS[s.column], column);
            assert_eq!(order(&app, &names), want, "sorted by {column}");
            app.update(key('O'));
            let mut rev = want;
            rev.reverse();
            assert_eq!(order(&app, &names), rev, "sorted by {column}, reversed");
            app.update(key('O'));
        }
        app.update(key('o'));
        assert_eq!(app.list(Pane::Containers).sort.unwrap().column, 0, "cycles");
    }

    #[test]
    fn a_cpu_sort_follows_new_samples_and_keeps_the_selection() {
        let (mut app, names) = sortable();
        for _ in 0..5 {
            app.update(key('o'));
        }
        assert_eq!(
            CONTAINER_SORTS[app.list(Pane::Containers).sort.unwrap().column],
            "cpu"
        );
        app.update(key('G')); // web, the busiest
        assert_eq!(app.selected_container().unwrap().name, "web");
        let id = |n: &str| {
            app.containers
                .items()
                .iter()
                .find(|c| c.name == n)
                .unwrap()
                .id
                .clone()
        };
        let (web, db, frozen) = (id("web"), id("db"), id("frozen"));
        let out = app.update(Msg::Usage(Ok(vec![
            sample(&web, 1.0, 30 << 20),
            sample(&db, 90.0, 200 << 20),
            sample(&frozen, 0.0, 1 << 20),
        ])));
        assert!(out.redraw);
        assert_eq!(order(&app, &names), ["new", "old", "frozen", "web", "db"]);
        assert_eq!(app.selected_container().unwrap().name, "web");
    }

    #[test]
    fn usage_redraws_only_when_what_shows_changes_and_polls_only_when_useful() {
        use berth::api::ContainerState as S;
        let mut app = app();
        app.update(Msg::Containers(Ok(vec![container("old", S::Exited)])));
        assert!(!app.wants_usage(), "nothing running: no timer");
        assert_eq!(app.update(Msg::UsageTick).effects, vec![]);
        app.update(Msg::Containers(Ok(vec![container("web", S::Running)])));
        assert!(app.wants_usage());
        let out = app.update(Msg::UsageTick);
        assert_eq!(out.effects, vec![Effect::PollUsage]);
        assert!(!app.wants_usage(), "one sample at a time");
        let id = app.containers.items()[0].id.clone();
        assert!(
            app.update(Msg::Usage(Ok(vec![sample(&id, 12.34, 5_000_000)])))
                .redraw
        );
        // the same texts (12.3%, 5.0MB): no redraw
        let out = app.update(Msg::Usage(Ok(vec![sample(&id, 12.31, 5_000_100)])));
        assert!(!out.redraw);
        assert!(
            app.update(Msg::Usage(Ok(vec![sample(&id, 50.0, 5_000_000)])))
                .redraw
        );
        // a refusal by the policy stops the sampling (each would be an audit record)
        let mut denied = App::new("t", keys::default_keymap(), 80, 24);
        denied.update(Msg::Containers(Ok(vec![container("web", S::Running)])));
        denied.update(Msg::UsageTick);
        denied.update(Msg::Usage(Err(JobError::Denied {
            rule: Some("p:3".into()),
            reason: "no stats".into(),
        })));
        assert!(!denied.wants_usage());
        assert!(denied.status.as_ref().unwrap().text.contains("no stats"));
        // another pane: no sampling, no redraw for samples in flight
        app.update(key('2'));
        assert!(!app.wants_usage());
        assert!(!app.update(Msg::Usage(Ok(vec![sample(&id, 1.0, 1)]))).redraw);
    }

    #[test]
    fn attach_opens_a_session_and_detach_leaves_it_running() {
        use berth::api::ContainerState as S;
        let mut app = app();
        app.update(Msg::Containers(Ok(vec![container("web", S::Running)])));
        let id = app.containers.items()[0].id.clone();
        let out = app.update(key('A'));
        assert!(
            matches!(&out.effects[..], [Effect::Attach { container, .. }] if *container == id),
            "{out:?}"
        );
        assert_eq!(app.pane, Pane::Shell);
        let session = app.active_session.unwrap();
        app.update(key('e'));
        app.update(key('c'));
        let (tx, mut rx) = tokio::sync::mpsc::channel(4);
        app.update(Msg::ShellStarted {
            session,
            resize: Some(ResizeTarget::Container(id.clone())),
            input: Some(tx),
        });
        assert_eq!(rx.try_recv().unwrap(), &b"ec"[..], "typed while connecting");
        app.update(key('x'));
        assert_eq!(
            rx.try_recv().unwrap(),
            &b"x"[..],
            "keys go to the container"
        );
        let out = app.update(Msg::Resize {
            width: 100,
            height: 30,
        });
        assert!(out.effects.iter().any(|e| matches!(
            e,
            Effect::ResizeShell { target: ResizeTarget::Container(c), .. } if *c == id
        )));
        app.update(Msg::Key(KeyEvent::new(
            KeyCode::Char(']'),
            KeyModifiers::CONTROL,
        )));
        assert_eq!(app.pane, Pane::Containers);
        assert!(!app.sessions[0].ended(), "detached, not ended");
        // back to the same session, not a second attach
        let out = app.update(key('A'));
        assert!(out.effects.is_empty());
        assert_eq!(app.active_session, Some(session));
        // the menu offers it too
        app.update(Msg::Key(KeyEvent::new(
            KeyCode::Char(']'),
            KeyModifiers::CONTROL,
        )));
        app.update(Msg::Key(KeyEvent::new(KeyCode::Enter, KeyModifiers::NONE)));
        let Some(Popup::Menu(m)) = app.popups.last() else {
            panic!("no menu")
        };
        assert!(
            m.items
                .iter()
                .any(|i| i.action == Action::Attach && i.key == "A")
        );
    }

    #[test]
    fn an_attach_without_a_tty_is_read_only_and_a_stopped_container_says_why() {
        use berth::api::ContainerState as S;
        let mut app = app();
        app.update(Msg::Containers(Ok(vec![container("old", S::Exited)])));
        let out = app.update(key('A'));
        assert!(out.effects.is_empty());
        assert!(app.status.as_ref().unwrap().text.contains("not running"));
        app.update(Msg::Containers(Ok(vec![container("web", S::Running)])));
        app.update(key('A'));
        let session = app.active_session.unwrap();
        app.update(Msg::ShellStarted {
            session,
            resize: None,
            input: None,
        });
        assert!(app.sessions[0].read_only());
        assert!(app.sessions[0].title().contains("no TTY"));
        app.update(key('x'));
        assert!(app.status.as_ref().unwrap().text.contains("output only"));
        assert_eq!(app.pane, Pane::Shell);
    }

    #[test]
    fn unknown_keys_do_not_redraw() {
        let mut app = app();
        assert_eq!(app.update(key('Z')), Outcome::default());
    }

    #[test]
    fn help_popup_swallows_other_keys() {
        let mut app = app();
        app.update(key('?'));
        assert!(matches!(app.popups.last(), Some(Popup::Help)));
        app.update(key('2'));
        assert_eq!(app.pane, Pane::Containers);
        app.update(Msg::Key(KeyEvent::new(KeyCode::Esc, KeyModifiers::NONE)));
        assert!(app.popups.is_empty());
        app.update(key('2'));
        assert_eq!(app.pane, Pane::Images);
    }

    #[test]
    fn container_events_refresh_the_container_list() {
        let mut app = app();
        let out = app.update(Msg::Engine(Box::new(EventRecord {
            time: 0,
            origin: "o".into(),
            event: Event::ContainerStarted { id: "abc".into() },
        })));
        assert_eq!(out.effects, vec![Effect::Query(Query::Containers)]);
        assert!(out.redraw);
        assert_eq!(app.events.len(), 1);
    }

    #[test]
    fn filter_sort_and_marks() {
        use berth::api::ContainerState as S;
        let mut app = app();
        app.update(Msg::Containers(Ok(vec![
            container("web", S::Running),
            container("db", S::Running),
            container("old", S::Exited),
        ])));
        assert_eq!(app.container_rows.len(), 3);
        app.update(key('o')); // sort by name
        let names: Vec<&str> = app
            .container_rows
            .iter()
            .map(|&i| app.containers.items()[i].name.as_str())
            .collect();
        assert_eq!(names, ["db", "old", "web"]);
        app.update(key('/'));
        for c in "we".chars() {
            app.update(key(c));
        }
        assert_eq!(app.container_rows.len(), 1, "live filter");
        app.update(Msg::Key(KeyEvent::new(KeyCode::Enter, KeyModifiers::NONE)));
        assert_eq!(app.list(Pane::Containers).filter, "we");
        app.update(Msg::Key(KeyEvent::new(KeyCode::Esc, KeyModifiers::NONE)));
        assert_eq!(app.container_rows.len(), 3);
        // mark two, stop both
        app.update(key('g'));
        app.update(key(' '));
        app.update(key(' '));
        let out = app.update(key('s'));
        let stops: Vec<_> = out
            .effects
            .iter()
            .filter(
                |e| matches!(e, Effect::Submit(j) if matches!(j.cmd, Command::ContainerStop{..})),
            )
            .collect();
        assert_eq!(stops.len(), 2);
    }

    #[test]
    fn remove_asks_first_and_confirm_rule_reopens_with_confirmation() {
        use berth::api::ContainerState as S;
        let mut app = app();
        app.update(Msg::Containers(Ok(vec![container("web", S::Exited)])));
        let out = app.update(key('d'));
        assert!(out.effects.is_empty(), "nothing happens before the answer");
        assert!(matches!(app.popups.last(), Some(Popup::Confirm(_))));
        let out = app.update(key('y'));
        let Some(Effect::Submit(job)) = out.effects.first() else {
            panic!("{out:?}")
        };
        assert!(matches!(
            job.cmd,
            Command::ContainerRemove { force: false, .. }
        ));
        // the engine says the policy wants a confirmation: the console asks, then resubmits
        let job = job.clone();
        app.update(Msg::Done {
            job,
            result: Err(JobError::NeedsConfirmation {
                rule: Some("p:1".into()),
                reason: "careful".into(),
            }),
        });
        assert!(matches!(app.popups.last(), Some(Popup::Confirm(_))));
        let out = app.update(key('y'));
        let Some(Effect::Submit(job)) = out.effects.first() else {
            panic!()
        };
        assert!(job.confirmed);
    }

    #[test]
    fn denial_is_shown_with_rule_and_reason_next_to_the_item() {
        use berth::api::ContainerState as S;
        let mut app = app();
        app.update(Msg::Containers(Ok(vec![container("web", S::Running)])));
        let id = app.containers.items()[0].id.clone();
        app.update(Msg::Done {
            job: Job::new(
                Command::ContainerStop {
                    id: id.clone(),
                    timeout: None,
                },
                "stop web",
            ),
            result: Err(JobError::Denied {
                rule: Some("policy.toml:4".into()),
                reason: "not yours".into(),
            }),
        });
        let s = app.status.clone().unwrap();
        assert_eq!(s.kind, StatusKind::Error);
        assert!(
            s.text.contains("not yours") && s.text.contains("policy.toml:4"),
            "{s:?}"
        );
        assert_eq!(app.denials[id.as_str()].reason, "not yours");
    }

    #[test]
    fn command_line_run_creates_then_starts() {
        let mut app = app();
        app.update(key(':'));
        for c in "run busybox echo hi".chars() {
            app.update(key(c));
        }
        let out = app.update(Msg::Key(KeyEvent::new(KeyCode::Enter, KeyModifiers::NONE)));
        let Some(Effect::Submit(job)) = out.effects.first() else {
            panic!("{out:?}")
        };
        assert!(job.then_start);
        let Command::ContainerCreate { config, .. } = &job.cmd else {
            panic!()
        };
        assert_eq!(config.cmd, ["echo", "hi"]);
        let out = app.update(Msg::Done {
            job: job.clone(),
            result: Ok(Some(ContainerId("c".repeat(64)))),
        });
        assert!(out.effects.iter().any(
            |e| matches!(e, Effect::Submit(j) if matches!(j.cmd, Command::ContainerStart{..}))
        ));
        assert!(out.effects.iter().any(|e| matches!(e, Effect::OpenLogs(_))));
        assert_eq!(app.pane, Pane::Logs);
    }
}
