//! Rendering: a pure function of `&App`. Nothing here changes state.

use super::app::{App, Loaded, Pane, StatusKind};
use super::keys::{Scope, key_label};
use super::theme::Theme;
use berth::api::{ContainerState, ContainerSummary, Event, EventRecord, ImageSummary};
use ratatui::buffer::Buffer;
use ratatui::layout::{Constraint, Flex, Layout, Rect};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Cell, Clear, Paragraph, Row, Table, Widget};

/// The frame of a list pane: its title, which pane's selection it shows, its columns.
struct ListFrame<'r> {
    title: String,
    pane: usize,
    head: Row<'r>,
    widths: &'r [Constraint],
}

/// The app as drawn with a theme.
pub struct View<'a> {
    pub app: &'a App,
    pub theme: Theme,
}

impl Widget for View<'_> {
    fn render(self, area: Rect, buf: &mut Buffer) {
        let [header, body, footer, status] = Layout::vertical([
            Constraint::Length(1),
            Constraint::Fill(1),
            Constraint::Length(1),
            Constraint::Length(1),
        ])
        .areas(area);
        self.header(header, buf);
        match self.app.pane {
            Pane::Containers => self.containers(body, buf),
            Pane::Images => self.images(body, buf),
            Pane::Events => self.events(body, buf),
        }
        self.footer(footer, buf);
        self.status(status, buf);
        if self.app.help {
            self.help(area, buf);
        }
    }
}

impl View<'_> {
    fn header(&self, area: Rect, buf: &mut Buffer) {
        let t = self.theme;
        let mut spans = vec![Span::styled(" berth ", t.title())];
        for (i, p) in Pane::ALL.iter().enumerate() {
            let label = format!(" {} {} ", i + 1, p.title());
            let style = if *p == self.app.pane {
                t.tab_active()
            } else {
                t.dim()
            };
            spans.push(Span::styled(label, style));
        }
        Line::from(spans).render(area, buf);
        let right = format!("{} ", self.app.engine_label);
        let w = right.chars().count() as u16;
        let used: u16 = 7 + Pane::ALL
            .iter()
            .enumerate()
            .map(|(i, p)| format!(" {} {} ", i + 1, p.title()).len() as u16)
            .sum::<u16>();
        if area.width > used + w {
            Line::styled(right, t.dim())
                .right_aligned()
                .render(area, buf);
        }
    }

    fn block(&self, title: String) -> Block<'static> {
        Block::bordered().title(Span::styled(format!(" {title} "), self.theme.title()))
    }

    /// An empty list says what to press; a list not loaded yet says so.
    fn hint(&self, area: Rect, buf: &mut Buffer, title: String, text: &str) {
        let block = self.block(title);
        let inner = block.inner(area);
        block.render(area, buf);
        Paragraph::new(Line::styled(text.to_owned(), self.theme.dim())).render(inner, buf);
    }

    fn list<'r>(
        &self,
        area: Rect,
        buf: &mut Buffer,
        frame: ListFrame<'r>,
        rows: impl Iterator<Item = Row<'r>>,
    ) {
        let app = self.app;
        let (sel, off) = (app.selected[frame.pane], app.offset[frame.pane]);
        let rows = rows
            .enumerate()
            .skip(off)
            .take(app.list_rows)
            .map(|(i, r)| {
                if i == sel {
                    r.style(self.theme.selected())
                } else {
                    r
                }
            });
        Table::new(rows, frame.widths.to_vec())
            .header(frame.head.style(self.theme.header()))
            .column_spacing(1)
            .block(self.block(frame.title))
            .render(area, buf);
    }

    fn containers(&self, area: Rect, buf: &mut Buffer) {
        let app = self.app;
        let shown: Vec<&ContainerSummary> = app
            .containers
            .items()
            .iter()
            .filter(|c| app.show_all || c.state.is_alive())
            .collect();
        let which = if app.show_all { "all" } else { "running" };
        let title = format!("Containers ({} {which})", shown.len());
        match &app.containers {
            Loaded::Loading => return self.hint(area, buf, title, "loading…"),
            Loaded::Ready(_) if shown.is_empty() => {
                let text = if app.show_all {
                    "No containers. Start one with `berth run IMAGE`."
                } else {
                    "No running containers. Press a to show all."
                };
                return self.hint(area, buf, title, text);
            }
            Loaded::Ready(_) => {}
        }
        let head = Row::new(["NAME", "IMAGE", "STATE", "STATUS", "ID"]);
        let widths = [
            Constraint::Fill(2),
            Constraint::Fill(2),
            Constraint::Length(10),
            Constraint::Fill(2),
            Constraint::Length(12),
        ];
        let t = self.theme;
        let now = app.now;
        let rows = shown.into_iter().map(move |c| {
            Row::new(vec![
                Cell::from(c.name.clone()),
                Cell::from(c.image.clone()),
                Cell::from(Span::styled(
                    c.state.as_str(),
                    t.state(c.state, c.exit_code),
                )),
                Cell::from(status_text(c, now)),
                Cell::from(c.id.short().to_owned()),
            ])
        });
        self.list(
            area,
            buf,
            ListFrame {
                title,
                pane: 0,
                head,
                widths: &widths,
            },
            rows,
        );
    }

    fn images(&self, area: Rect, buf: &mut Buffer) {
        let app = self.app;
        let title = format!("Images ({})", app.images.items().len());
        match &app.images {
            Loaded::Loading => return self.hint(area, buf, title, "loading…"),
            Loaded::Ready(v) if v.is_empty() => {
                return self.hint(
                    area,
                    buf,
                    title,
                    "No images. Pull one with `berth pull IMAGE`.",
                );
            }
            Loaded::Ready(_) => {}
        }
        let head = Row::new(["REPOSITORY:TAG", "ID", "SIZE", "CREATED", "USED BY"]);
        let widths = [
            Constraint::Fill(3),
            Constraint::Length(12),
            Constraint::Length(9),
            Constraint::Length(14),
            Constraint::Length(7),
        ];
        let now = app.now;
        let rows = app.images.items().iter().map(move |i: &ImageSummary| {
            let name = i
                .repo_tags
                .first()
                .cloned()
                .unwrap_or_else(|| "<none>:<none>".into());
            Row::new(vec![
                Cell::from(name),
                Cell::from(i.id.short().to_owned()),
                Cell::from(human_size(i.size)),
                Cell::from(
                    i.created
                        .map(|c| format!("{} ago", human_duration(now - c)))
                        .unwrap_or_default(),
                ),
                Cell::from(i.containers.to_string()),
            ])
        });
        self.list(
            area,
            buf,
            ListFrame {
                title,
                pane: 1,
                head,
                widths: &widths,
            },
            rows,
        );
    }

    fn events(&self, area: Rect, buf: &mut Buffer) {
        let app = self.app;
        let title = format!("Events ({})", app.events.len());
        if app.events.is_empty() {
            return self.hint(
                area,
                buf,
                title,
                "No events yet. Changes made by any berth process on this engine show up here.",
            );
        }
        let head = Row::new(["TIME", "EVENT"]);
        let widths = [Constraint::Length(8), Constraint::Fill(1)];
        let rows = app
            .events
            .iter()
            .map(|r| Row::new(vec![Cell::from(clock(r.time)), Cell::from(describe(r))]));
        self.list(
            area,
            buf,
            ListFrame {
                title,
                pane: 2,
                head,
                widths: &widths,
            },
            rows,
        );
    }

    fn footer(&self, area: Rect, buf: &mut Buffer) {
        let t = self.theme;
        let mut spans = Vec::new();
        for b in self.app.keymap.iter().filter(|b| b.footer.is_some()) {
            if b.scope == Scope::List
                && self.app.pane != Pane::Containers
                && b.action == super::keys::Action::ToggleAll
            {
                continue;
            }
            spans.push(Span::styled(format!(" {}", key_label(b)), t.key()));
            spans.push(Span::raw(format!(" {} ", b.footer.unwrap_or_default())));
        }
        Line::from(spans).render(area, buf);
    }

    fn status(&self, area: Rect, buf: &mut Buffer) {
        if let Some(s) = &self.app.status {
            let style = match s.kind {
                StatusKind::Error => self.theme.error(),
                StatusKind::Info => self.theme.info(),
            };
            Line::styled(format!(" {}", s.text), style).render(area, buf);
        }
    }

    fn help(&self, area: Rect, buf: &mut Buffer) {
        let t = self.theme;
        let mut lines = vec![Line::styled("Keys", t.header())];
        for scope in [Scope::Global, Scope::List] {
            lines.push(Line::styled(
                match scope {
                    Scope::Global => "Everywhere",
                    Scope::List => "In lists",
                },
                t.dim(),
            ));
            // one line per action, with every key bound to it
            let mut seen = Vec::new();
            for b in self.app.keymap.iter().filter(|b| b.scope == scope) {
                if seen.contains(&b.action) {
                    continue;
                }
                seen.push(b.action);
                let keys: Vec<String> = self
                    .app
                    .keymap
                    .iter()
                    .filter(|o| o.action == b.action)
                    .map(key_label)
                    .collect();
                lines.push(Line::from(vec![
                    Span::styled(format!("  {:<12}", keys.join(" ")), t.key()),
                    Span::raw(b.help),
                ]));
            }
        }
        lines.push(Line::styled("? or Esc closes this help", t.dim()));
        let height = (lines.len() as u16 + 2).min(area.height);
        let width = 56.min(area.width);
        let [popup] = Layout::vertical([Constraint::Length(height)])
            .flex(Flex::Center)
            .areas(area);
        let [popup] = Layout::horizontal([Constraint::Length(width)])
            .flex(Flex::Center)
            .areas(popup);
        Clear.render(popup, buf);
        Paragraph::new(lines)
            .block(self.block("Help".into()))
            .render(popup, buf);
    }
}

/// Docker's STATUS column: "Up 3 minutes", "Exited (0) 2 hours ago", "Created".
pub fn status_text(c: &ContainerSummary, now: i64) -> String {
    match c.state {
        ContainerState::Running => format!(
            "Up {}",
            human_duration(now - c.started_at.unwrap_or(c.created))
        ),
        ContainerState::Paused => format!(
            "Up {} (Paused)",
            human_duration(now - c.started_at.unwrap_or(c.created))
        ),
        ContainerState::Restarting => "Restarting".into(),
        ContainerState::Created => "Created".into(),
        ContainerState::Exited | ContainerState::Dead => {
            let code = c.exit_code.map(|e| format!(" ({e})")).unwrap_or_default();
            let oom = if c.oom_killed { " OOM" } else { "" };
            let ago = c
                .finished_at
                .map(|f| format!(" {} ago", human_duration(now - f)))
                .unwrap_or_default();
            format!("Exited{code}{oom}{ago}")
        }
    }
}

/// "5 seconds", "3 minutes", "2 hours", "4 days".
pub fn human_duration(secs: i64) -> String {
    let s = secs.max(0);
    let (n, unit) = match s {
        0..60 => (s, "second"),
        60..3600 => (s / 60, "minute"),
        3600..86400 => (s / 3600, "hour"),
        _ => (s / 86400, "day"),
    };
    format!("{n} {unit}{}", if n == 1 { "" } else { "s" })
}

/// Docker's decimal sizes: "1.2MB", "512kB".
pub fn human_size(bytes: u64) -> String {
    const UNITS: [&str; 5] = ["B", "kB", "MB", "GB", "TB"];
    let mut v = bytes as f64;
    let mut u = 0;
    while v >= 1000.0 && u < UNITS.len() - 1 {
        v /= 1000.0;
        u += 1;
    }
    if u == 0 {
        format!("{bytes}B")
    } else {
        format!("{v:.1}{}", UNITS[u])
    }
}

fn clock(nanos: i64) -> String {
    time::OffsetDateTime::from_unix_timestamp_nanos(nanos as i128)
        .map(|t| format!("{:02}:{:02}:{:02}", t.hour(), t.minute(), t.second()))
        .unwrap_or_default()
}

/// One line for the events pane.
pub fn describe(r: &EventRecord) -> String {
    match &r.event {
        Event::ContainerCreated { id, name, image } => {
            format!("container {name} ({}) created from {image}", id.short())
        }
        Event::ContainerStarted { id } => format!("container {} started", id.short()),
        Event::ContainerExited {
            id,
            exit_code,
            oom_killed,
        } => format!(
            "container {} exited with code {exit_code}{}",
            id.short(),
            if *oom_killed { " (OOM-killed)" } else { "" }
        ),
        Event::ContainerRestarting { id } => format!("container {} restarting", id.short()),
        Event::ContainerPaused { id } => format!("container {} paused", id.short()),
        Event::ContainerUnpaused { id } => format!("container {} unpaused", id.short()),
        Event::ContainerRenamed { id, name } => {
            format!("container {} renamed to {name}", id.short())
        }
        Event::ContainerRemoved { id } => format!("container {} removed", id.short()),
        Event::ExecStarted { id, exec_id } => format!("exec {exec_id} started in {}", id.short()),
        Event::Transfer {
            reference,
            layer,
            phase,
            ..
        } => format!("{reference} {}: {phase:?}", layer.short()),
        Event::ImagePulled { reference, id } => format!("pulled {reference} ({})", id.short()),
        Event::ImagePushed { reference, .. } => format!("pushed {reference}"),
        Event::ImageTagged { id, tag } => format!("tagged {} as {tag}", id.short()),
        Event::ImageUntagged { id, tag } => format!("untagged {tag} from {}", id.short()),
        Event::ImageRemoved { id } => format!("image {} removed", id.short()),
        Event::ImagesPruned { removed, freed } => format!(
            "pruned {} images, freed {}",
            removed.len(),
            human_size(*freed)
        ),
        Event::BuildOutput { line } => line.clone(),
        Event::ImageBuilt { id, tags } => format!("built {} {}", id.short(), tags.join(", ")),
        Event::Stats(s) => format!("stats {}", s.id.short()),
        Event::PolicyDecision {
            subject,
            action,
            target,
            verdict,
            reason,
            ..
        } => format!(
            "policy {verdict}: {action}{} by {subject}: {reason}",
            target.as_ref().map(|t| format!(" {t}")).unwrap_or_default()
        ),
        Event::Error { context, message } => format!("error: {context}: {message}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::console::app::{Loaded, Msg};
    use berth::api::{ContainerId, Digest};
    use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
    use ratatui::Terminal;
    use ratatui::backend::TestBackend;
    use ratatui::style::Color;

    const NOW: i64 = 1_800_000_000;

    fn draw(app: &App, w: u16, h: u16, theme: Theme) -> Terminal<TestBackend> {
        let mut t = Terminal::new(TestBackend::new(w, h)).unwrap();
        t.draw(|f| f.render_widget(View { app, theme }, f.area()))
            .unwrap();
        t
    }

    fn empty_app(w: u16, h: u16) -> App {
        let mut app = App::new("/var/lib/berth", w, h);
        app.containers = Loaded::Ready(vec![]);
        app.images = Loaded::Ready(vec![]);
        app.now = NOW;
        app
    }

    fn container(name: &str, state: ContainerState, exit: Option<i32>) -> ContainerSummary {
        ContainerSummary {
            id: ContainerId(format!("{:0<64}", name.len().to_string() + name)),
            name: name.into(),
            image: "127.0.0.1:5055/busybox:latest".into(),
            command: "sleep 1000".into(),
            created: NOW - 7200,
            state,
            started_at: Some(NOW - 300),
            finished_at: exit.map(|_| NOW - 60),
            exit_code: exit,
            oom_killed: false,
            pid: None,
            ports: vec![],
        }
    }

    #[test]
    fn empty_console_80x24() {
        let app = empty_app(80, 24);
        insta::assert_snapshot!(draw(&app, 80, 24, Theme { color: true }).backend());
    }

    #[test]
    fn help_screen_80x24() {
        let mut app = empty_app(80, 24);
        app.update(Msg::Key(KeyEvent::new(
            KeyCode::Char('?'),
            KeyModifiers::NONE,
        )));
        insta::assert_snapshot!(draw(&app, 80, 24, Theme { color: true }).backend());
    }

    #[test]
    fn container_list_160x48_with_state_colours() {
        let mut app = empty_app(160, 48);
        app.containers = Loaded::Ready(vec![
            container("web", ContainerState::Running, None),
            container("batch", ContainerState::Exited, Some(0)),
            container("crashy", ContainerState::Exited, Some(137)),
            container("frozen", ContainerState::Paused, None),
        ]);
        app.images = Loaded::Ready(vec![ImageSummary {
            id: Digest("sha256:0123456789abcdef".into()),
            repo_tags: vec!["busybox:latest".into()],
            repo_digests: vec![],
            size: 2_100_000,
            created: Some(NOW - 86400 * 3),
            containers: 4,
        }]);
        let t = draw(&app, 160, 48, Theme { color: true });
        insta::assert_snapshot!(t.backend());
        // The state column carries meaning in colour: find each state word and check its style.
        let buf = t.backend().buffer();
        let colour_of = |word: &str, row_name: &str| {
            let y = (0..48u16)
                .find(|&y| {
                    (0..160u16)
                        .map(|x| buf[(x, y)].symbol().to_owned())
                        .collect::<String>()
                        .contains(row_name)
                })
                .unwrap();
            let line: String = (0..160u16)
                .map(|x| buf[(x, y)].symbol().to_owned())
                .collect();
            let x = line.find(&format!(" {word} ")).unwrap() as u16 + 1;
            buf[(x, y)].fg
        };
        assert_eq!(colour_of("paused", "frozen"), Color::Yellow);
        assert_eq!(colour_of("exited", "crashy"), Color::Red);
        assert_eq!(colour_of("exited", "batch"), Color::Gray);
        // the first row is selected: reversed, so its colour stays but it is highlighted
        assert_eq!(colour_of("running", "web"), Color::Green);
    }

    #[test]
    fn no_color_drops_every_colour() {
        let mut app = empty_app(80, 24);
        app.containers = Loaded::Ready(vec![container("web", ContainerState::Running, None)]);
        let t = draw(&app, 80, 24, Theme { color: false });
        for cell in t.backend().buffer().content() {
            assert_eq!(cell.fg, Color::Reset, "coloured cell {cell:?}");
        }
    }

    #[test]
    fn docker_style_texts() {
        assert_eq!(human_duration(1), "1 second");
        assert_eq!(human_duration(125), "2 minutes");
        assert_eq!(human_size(2_100_000), "2.1MB");
        assert_eq!(human_size(999), "999B");
        let c = container("x", ContainerState::Exited, Some(3));
        assert_eq!(status_text(&c, NOW), "Exited (3) 1 minute ago");
    }
}
