//! Popups stack on top of the panes and get every key first: help, action menus, confirmations,
//! one-line inputs (filter, search, command line, pull, tag, save), the run form, pull progress.

use super::app::{Job, Pane};
use super::keys::{self, Action, Binding, Scope};
use berth::api::{Command, ContainerConfig, ContainerId, Digest, ImageRef, TransferPhase};
use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
use ratatui::style::Style;
use ratatui_textarea::TextArea;
use std::collections::BTreeMap;

/// What a popup made of a key.
#[derive(Debug)]
pub enum Reaction {
    /// Stay open.
    Keep,
    Close,
    /// Close and submit these jobs.
    Submit(Vec<Job>),
    /// Close and do this action on the current selection.
    Menu(Action),
    /// Close with the text typed.
    Input(InputKind, String),
    /// The text changed (live filter or search); stay open.
    Live(InputKind, String),
    /// Close and pull this reference (with a progress popup).
    Pull(String),
}

pub enum Popup {
    Help,
    Menu(Menu),
    Confirm(Confirm),
    Input(Box<Input>),
    Run(Box<RunForm>),
    Pull(PullView),
    Build(BuildView),
}

impl std::fmt::Debug for Popup {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::Help => "Help",
            Self::Menu(_) => "Menu",
            Self::Confirm(_) => "Confirm",
            Self::Input(_) => "Input",
            Self::Run(_) => "Run",
            Self::Pull(_) => "Pull",
            Self::Build(_) => "Build",
        })
    }
}

/// One entry of an action menu.
#[derive(Debug, Clone)]
pub struct MenuItem {
    pub label: String,
    /// The direct key for the same action, shown beside it.
    pub key: String,
    pub action: Action,
}

/// A list of actions; Enter picks, Esc closes. Signal menus carry their own jobs.
pub struct Menu {
    pub title: String,
    pub items: Vec<MenuItem>,
    pub selected: usize,
    /// For the kill menu: the jobs behind each item.
    pub jobs: Option<Vec<Vec<Job>>>,
}

impl Menu {
    pub fn new(title: String, items: Vec<MenuItem>) -> Self {
        Self {
            title,
            items,
            selected: 0,
            jobs: None,
        }
    }
}

/// The signals offered by the kill menu.
pub const SIGNALS: [&str; 8] = ["TERM", "KILL", "INT", "HUP", "QUIT", "USR1", "USR2", "STOP"];

/// Choose a signal to send to these containers.
pub fn signal_menu(targets: Vec<(ContainerId, String)>) -> Menu {
    let names = targets
        .iter()
        .map(|t| t.1.as_str())
        .collect::<Vec<_>>()
        .join(", ");
    let items = SIGNALS
        .iter()
        .map(|s| MenuItem {
            label: format!("SIG{s}"),
            key: String::new(),
            action: Action::Kill,
        })
        .collect();
    let jobs = SIGNALS
        .iter()
        .map(|s| {
            targets
                .iter()
                .map(|(id, name)| {
                    Job::new(
                        Command::ContainerKill {
                            id: id.clone(),
                            signal: (*s).to_owned(),
                        },
                        format!("kill -{s} {name}"),
                    )
                })
                .collect()
        })
        .collect();
    Menu {
        title: format!("Send a signal to {names}"),
        items,
        selected: 0,
        jobs: Some(jobs),
    }
}

/// A yes/no question. Cancel is the default: Enter alone does not confirm by accident unless
/// the user moved to Yes; `y` confirms at once.
pub struct Confirm {
    pub title: String,
    pub text: Vec<String>,
    pub jobs: Vec<Job>,
    pub yes: bool,
}

impl Confirm {
    pub fn new(title: &str, text: Vec<String>, jobs: Vec<Job>) -> Self {
        Self {
            title: title.to_owned(),
            text: text.into_iter().filter(|l| !l.is_empty()).collect(),
            jobs,
            yes: false,
        }
    }
}

/// What a one-line input is for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum InputKind {
    Filter(Pane),
    Search,
    Command,
    Pull,
    Tag(ImageRef),
    SaveLogs,
    Build,
}

impl InputKind {
    pub fn title(&self) -> String {
        match self {
            Self::Filter(p) => format!("Filter {}", p.title().to_lowercase()),
            Self::Search => "Search the log".into(),
            Self::Command => "Command (:run IMAGE [CMD], :pull REF, :images, :q)".into(),
            Self::Pull => "Pull image (e.g. busybox, 127.0.0.1:5000/app:1)".into(),
            Self::Tag(src) => format!("Tag {src} as"),
            Self::SaveLogs => "Save the log to file".into(),
            Self::Build => "Build (CONTEXT [-t NAME] [-f Dockerfile] [--no-cache])".into(),
        }
    }

    fn live(&self) -> bool {
        matches!(self, Self::Filter(_) | Self::Search)
    }
}

pub struct Input {
    pub kind: InputKind,
    pub area: TextArea<'static>,
}

fn single_line(text: &str) -> TextArea<'static> {
    let mut area = TextArea::new(vec![text.to_owned()]);
    area.set_cursor_line_style(Style::default());
    area.move_cursor(ratatui_textarea::CursorMove::End);
    area
}

impl Input {
    pub fn new(kind: InputKind, text: &str) -> Self {
        Self {
            kind,
            area: single_line(text),
        }
    }

    pub fn text(&self) -> String {
        self.area.lines().join("")
    }
}

/// The run form's fields, in order.
pub const RUN_FIELDS: [&str; 10] = [
    "Image",
    "Name",
    "Command",
    "Env (K=V …)",
    "Ports (8080:80 …)",
    "Volumes (/h:/c …)",
    "Memory (512m)",
    "CPUs (1.5)",
    "Restart (no|always|on-failure[:N]|unless-stopped)",
    "Network (none|host|bridge)",
];

/// `docker run` as a form: text fields, Tab moves, Enter runs.
pub struct RunForm {
    pub fields: Vec<TextArea<'static>>,
    pub focus: usize,
    pub error: Option<String>,
}

impl RunForm {
    pub fn new(image: &str) -> Self {
        let mut fields: Vec<TextArea<'static>> =
            RUN_FIELDS.iter().map(|_| single_line("")).collect();
        fields[0] = single_line(image);
        Self {
            fields,
            focus: if image.is_empty() { 0 } else { 1 },
            error: None,
        }
    }

    fn value(&self, i: usize) -> String {
        self.fields[i].lines().join("").trim().to_owned()
    }

    /// The container this form describes, or what is wrong with it.
    pub fn config(&self) -> Result<ContainerConfig, String> {
        let image = self.value(0);
        if image.is_empty() {
            return Err("an image is needed".into());
        }
        let opt = |s: String| (!s.is_empty()).then_some(s);
        let memory = match opt(self.value(6)) {
            Some(m) => Some(
                parse_size(&m)
                    .ok_or_else(|| format!("memory {m:?}: use a size like 512m or 2g"))?,
            ),
            None => None,
        };
        let cpus = match opt(self.value(7)) {
            Some(c) => Some(
                c.parse::<f64>()
                    .ok()
                    .filter(|c| *c > 0.0)
                    .ok_or_else(|| format!("CPUs {c:?}: a positive number"))?,
            ),
            None => None,
        };
        let restart = self.value(8).parse().map_err(|e: String| e)?;
        let network = match opt(self.value(9)) {
            Some(n) => n.parse()?,
            None => Default::default(),
        };
        Ok(ContainerConfig {
            image: ImageRef(image),
            name: opt(self.value(1)),
            cmd: split_words(&self.value(2)),
            env: split_words(&self.value(3)),
            publish: split_words(&self.value(4)),
            volumes: split_words(&self.value(5)),
            memory,
            cpus,
            restart,
            network,
            ..Default::default()
        })
    }
}

/// Docker's sizes: `512`, `64k`, `512m`, `2g` (binary units).
pub fn parse_size(s: &str) -> Option<u64> {
    let s = s.trim().to_ascii_lowercase();
    let s = s.strip_suffix('b').unwrap_or(&s);
    let (num, mult) = match s.char_indices().last()? {
        (i, 'k') => (&s[..i], 1u64 << 10),
        (i, 'm') => (&s[..i], 1 << 20),
        (i, 'g') => (&s[..i], 1 << 30),
        (i, 't') => (&s[..i], 1 << 40),
        _ => (s, 1),
    };
    let n: f64 = num.parse().ok()?;
    (n >= 0.0).then_some((n * mult as f64) as u64)
}

/// Split like a shell: whitespace separates, single and double quotes group, `\` escapes.
pub fn split_words(s: &str) -> Vec<String> {
    let mut words = Vec::new();
    let mut cur = String::new();
    let mut in_word = false;
    let mut quote: Option<char> = None;
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        match (quote, c) {
            (Some(q), c) if c == q => quote = None,
            (Some(_), '\\') | (None, '\\') => {
                if let Some(n) = chars.next() {
                    cur.push(n);
                }
                in_word = true;
            }
            (Some(_), c) => cur.push(c),
            (None, '\'' | '"') => {
                quote = Some(c);
                in_word = true;
            }
            (None, c) if c.is_whitespace() => {
                if in_word {
                    words.push(std::mem::take(&mut cur));
                    in_word = false;
                }
            }
            (None, c) => {
                cur.push(c);
                in_word = true;
            }
        }
    }
    if in_word {
        words.push(cur);
    }
    words
}

/// A build in progress: its output lines, then how it ended.
pub struct BuildView {
    pub title: String,
    pub lines: std::collections::VecDeque<String>,
    pub done: Option<Result<(), String>>,
}

impl BuildView {
    const KEPT: usize = 500;

    pub fn new(title: String) -> Self {
        Self {
            title,
            lines: Default::default(),
            done: None,
        }
    }

    pub fn push(&mut self, line: String) {
        if self.lines.len() == Self::KEPT {
            self.lines.pop_front();
        }
        self.lines.push_back(line);
    }
}

/// `CONTEXT [-t NAME]… [-f FILE] [--no-cache] [--target STAGE] [--build-arg K=V]…` → a build.
pub fn parse_build(line: &str) -> Result<berth::api::BuildConfig, String> {
    let words = split_words(line);
    let mut cfg = berth::api::BuildConfig::default();
    let mut context = None;
    let mut it = words.into_iter();
    while let Some(w) = it.next() {
        let mut value = |flag: &str| it.next().ok_or_else(|| format!("{flag} needs a value"));
        match w.as_str() {
            "-t" | "--tag" => cfg.tags.push(value(&w)?),
            "-f" | "--file" => cfg.dockerfile = Some(value(&w)?.into()),
            "--target" => cfg.target = Some(value(&w)?),
            "--build-arg" => {
                let kv = value(&w)?;
                let (k, v) = kv
                    .split_once('=')
                    .ok_or_else(|| format!("--build-arg {kv}: use KEY=VALUE"))?;
                cfg.build_args.push((k.to_owned(), v.to_owned()));
            }
            "--no-cache" => cfg.no_cache = true,
            f if f.starts_with('-') => return Err(format!("unknown option {f}")),
            c if context.is_none() => context = Some(c.to_owned()),
            extra => return Err(format!("one context only (got {extra:?} too)")),
        }
    }
    cfg.context = context.ok_or("a context directory is needed")?.into();
    Ok(cfg)
}

/// One layer's progress.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LayerProgress {
    pub phase: TransferPhase,
    pub current: u64,
    pub total: Option<u64>,
}

/// A pull in progress: a bar per layer, from `Transfer` events.
pub struct PullView {
    pub reference: String,
    pub layers: BTreeMap<Digest, LayerProgress>,
    pub done: Option<Result<(), String>>,
}

impl PullView {
    pub fn new(reference: &str) -> Self {
        Self {
            reference: reference.to_owned(),
            layers: BTreeMap::new(),
            done: None,
        }
    }

    pub fn update(
        &mut self,
        layer: &Digest,
        phase: TransferPhase,
        current: u64,
        total: Option<u64>,
    ) {
        self.layers.insert(
            layer.clone(),
            LayerProgress {
                phase,
                current,
                total,
            },
        );
    }
}

fn is_enter(k: &KeyEvent) -> bool {
    k.code == KeyCode::Enter
}

fn is_esc(k: &KeyEvent) -> bool {
    k.code == KeyCode::Esc
}

/// Feed a key to the popup on top.
pub fn handle_key(popup: &mut Popup, k: &KeyEvent, keymap: &[Binding]) -> Reaction {
    if k.code == KeyCode::Char('c') && k.modifiers.contains(KeyModifiers::CONTROL) {
        return Reaction::Close;
    }
    match popup {
        Popup::Help => match keys::lookup(keymap, &[Scope::Global], k) {
            Some(Action::Help | Action::Back | Action::Quit) => Reaction::Close,
            _ if is_esc(k) => Reaction::Close,
            _ => Reaction::Keep,
        },
        Popup::Menu(m) => match k.code {
            KeyCode::Esc => Reaction::Close,
            KeyCode::Down | KeyCode::Char('j') => {
                m.selected = (m.selected + 1).min(m.items.len().saturating_sub(1));
                Reaction::Keep
            }
            KeyCode::Up | KeyCode::Char('k') => {
                m.selected = m.selected.saturating_sub(1);
                Reaction::Keep
            }
            KeyCode::Enter => match &mut m.jobs {
                Some(jobs) if m.selected < jobs.len() => {
                    Reaction::Submit(std::mem::take(&mut jobs[m.selected]))
                }
                _ => m
                    .items
                    .get(m.selected)
                    .map_or(Reaction::Close, |i| Reaction::Menu(i.action)),
            },
            _ => {
                // an item's direct key works inside the menu too
                match m.items.iter().find(|i| {
                    !i.key.is_empty()
                        && KeyCode::Char(i.key.chars().next().unwrap_or('\0')) == k.code
                        && i.key.chars().count() == 1
                }) {
                    Some(i) if m.jobs.is_none() => Reaction::Menu(i.action),
                    _ => Reaction::Keep,
                }
            }
        },
        Popup::Confirm(c) => match k.code {
            KeyCode::Char('y') | KeyCode::Char('Y') => {
                Reaction::Submit(std::mem::take(&mut c.jobs))
            }
            KeyCode::Char('n') | KeyCode::Char('N') | KeyCode::Esc => Reaction::Close,
            KeyCode::Tab
            | KeyCode::Left
            | KeyCode::Right
            | KeyCode::Char('h')
            | KeyCode::Char('l') => {
                c.yes = !c.yes;
                Reaction::Keep
            }
            KeyCode::Enter if c.yes => Reaction::Submit(std::mem::take(&mut c.jobs)),
            KeyCode::Enter => Reaction::Close,
            _ => Reaction::Keep,
        },
        Popup::Input(i) => {
            if is_esc(k) {
                // Esc on a live filter clears it
                if i.kind.live() {
                    return Reaction::Input(i.kind.clone(), String::new());
                }
                return Reaction::Close;
            }
            if is_enter(k) {
                let text = i.text();
                return match i.kind {
                    InputKind::Pull if !text.trim().is_empty() => {
                        Reaction::Pull(text.trim().to_owned())
                    }
                    _ => Reaction::Input(i.kind.clone(), text),
                };
            }
            if i.area.input(*k) && i.kind.live() {
                return Reaction::Live(i.kind.clone(), i.text());
            }
            Reaction::Keep
        }
        Popup::Run(f) => match k.code {
            KeyCode::Esc => Reaction::Close,
            KeyCode::Tab | KeyCode::Down => {
                f.focus = (f.focus + 1) % f.fields.len();
                Reaction::Keep
            }
            KeyCode::BackTab | KeyCode::Up => {
                f.focus = (f.focus + f.fields.len() - 1) % f.fields.len();
                Reaction::Keep
            }
            KeyCode::Enter => match f.config() {
                Ok(config) => {
                    let what = format!("run {}", config.image);
                    let mut job = Job::new(
                        Command::ContainerCreate {
                            config: Box::new(config),
                            pull: true,
                        },
                        what,
                    );
                    job.then_start = true;
                    Reaction::Submit(vec![job])
                }
                Err(e) => {
                    f.error = Some(e);
                    Reaction::Keep
                }
            },
            _ => {
                f.fields[f.focus].input(*k);
                f.error = None;
                Reaction::Keep
            }
        },
        Popup::Pull(_) | Popup::Build(_) => {
            if is_esc(k) || is_enter(k) {
                Reaction::Close
            } else {
                Reaction::Keep
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shell_like_words() {
        assert_eq!(
            split_words("sh -c 'echo hi; exit 3'"),
            ["sh", "-c", "echo hi; exit 3"]
        );
        assert_eq!(split_words(r#"A="x y" B=\"z"#), ["A=x y", "B=\"z"]);
        assert_eq!(split_words("  "), Vec::<String>::new());
        assert_eq!(split_words("''"), [""]);
    }

    #[test]
    fn build_lines() {
        let b = parse_build("./app -t web:1 -f app/Dockerfile --build-arg V=2 --no-cache").unwrap();
        assert_eq!(b.context, std::path::PathBuf::from("./app"));
        assert_eq!(b.tags, ["web:1"]);
        assert_eq!(b.build_args, [("V".to_owned(), "2".to_owned())]);
        assert!(b.no_cache);
        assert!(parse_build("-t x").unwrap_err().contains("context"));
        assert!(parse_build(". --colour").is_err());
    }

    #[test]
    fn sizes() {
        assert_eq!(parse_size("512m"), Some(512 << 20));
        assert_eq!(parse_size("2G"), Some(2 << 30));
        assert_eq!(parse_size("1.5g"), Some(3 << 29));
        assert_eq!(parse_size("100"), Some(100));
        assert_eq!(parse_size("lots"), None);
    }

    #[test]
    fn run_form_validates_and_builds_the_config() {
        let mut f = RunForm::new("busybox");
        let type_into = |f: &mut RunForm, i: usize, s: &str| {
            f.focus = i;
            for c in s.chars() {
                f.fields[i].input(KeyEvent::from(KeyCode::Char(c)));
            }
        };
        type_into(&mut f, 2, "sh -c 'sleep 1'");
        type_into(&mut f, 6, "64m");
        type_into(&mut f, 8, "on-failure:3");
        let c = f.config().unwrap();
        assert_eq!(c.cmd, ["sh", "-c", "sleep 1"]);
        assert_eq!(c.memory, Some(64 << 20));
        assert_eq!(
            c.restart,
            berth::api::RestartPolicy::OnFailure {
                max_retries: Some(3)
            }
        );
        type_into(&mut f, 7, "-1");
        assert!(f.config().unwrap_err().contains("CPUs"));
    }
}
