//! Rendering: a pure function of `&App`. Nothing here changes state.

use super::app::{App, CONTAINER_SORTS, IMAGE_SORTS, Loaded, Pane, StatusKind};
use super::keys::{Scope, key_label};
use super::popup::{InputKind, Popup, RUN_FIELDS};
use super::terminal::SessionKind;
use super::theme::Theme;
use berth::api::{
    ContainerState, ContainerSummary, Event, EventRecord, ImageSummary, TransferPhase,
};
use ratatui::buffer::Buffer;
use ratatui::layout::{Constraint, Flex, Layout, Rect};
use ratatui::style::{Modifier, Style};
use ratatui::symbols::Marker;
use ratatui::text::{Line, Span};
use ratatui::widgets::{
    Axis, Block, Cell, Chart, Clear, Dataset, Gauge, GraphType, Paragraph, Row, Table, Widget, Wrap,
};

/// The frame of a list pane: its title, which pane's selection it shows, its columns.
struct ListFrame<'r> {
    title: String,
    pane: Pane,
    head: Row<'r>,
    widths: &'r [Constraint],
    /// The rows given start at the list's scroll offset (the pane builds only what shows).
    windowed: bool,
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
            Pane::Logs => self.logs(body, buf),
            Pane::Stats => self.stats(body, buf),
            Pane::Inspect => self.inspect(body, buf),
            Pane::Events => self.events(body, buf),
            Pane::Policy => self.policy(body, buf),
            Pane::Shell => self.shell(body, buf),
            Pane::Networks => self.networks(body, buf),
            Pane::Volumes => self.volumes(body, buf),
        }
        self.footer(footer, buf);
        self.status(status, buf);
        for p in &self.app.popups {
            self.popup(p, area, buf);
        }
    }
}

/// A centred rectangle of at most `w` x `h` inside `area`.
fn centered(area: Rect, w: u16, h: u16) -> Rect {
    let [r] = Layout::vertical([Constraint::Length(h.min(area.height))])
        .flex(Flex::Center)
        .areas(area);
    let [r] = Layout::horizontal([Constraint::Length(w.min(area.width))])
        .flex(Flex::Center)
        .areas(r);
    r
}

impl View<'_> {
    fn header(&self, area: Rect, buf: &mut Buffer) {
        let t = self.theme;
        let mut spans = vec![Span::styled(" berth ", t.title())];
        let mut used = 7u16;
        for (i, p) in Pane::ALL.iter().enumerate() {
            // narrow terminals get the numbers only for panes that are not focused
            let label = if *p == self.app.pane || area.width >= 150 {
                format!(" {} {} ", (i + 1) % 10, p.title())
            } else {
                format!(" {} ", (i + 1) % 10)
            };
            used += label.chars().count() as u16;
            let style = if *p == self.app.pane {
                t.tab_active()
            } else {
                t.dim()
            };
            spans.push(Span::styled(label, style));
        }
        Line::from(spans).render(area, buf);
        // The engine this console drives, shortened from the left when space is short.
        let room = usize::from(area.width.saturating_sub(used + 1));
        let label = &self.app.engine_label;
        let n = label.chars().count();
        let right = if n < room {
            format!("{label} ")
        } else if room > 8 {
            let tail: String = label.chars().skip(n + 2 - room).collect();
            format!("…{tail} ")
        } else {
            String::new()
        };
        if !right.is_empty() {
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
        Paragraph::new(Line::styled(text.to_owned(), self.theme.dim()))
            .wrap(Wrap { trim: true })
            .render(inner, buf);
    }

    fn list<'r>(
        &self,
        area: Rect,
        buf: &mut Buffer,
        frame: ListFrame<'r>,
        rows: impl Iterator<Item = Row<'r>>,
    ) {
        let l = self.app.list(frame.pane);
        let (sel, off) = (l.selected, l.offset);
        let start = if frame.windowed { off } else { 0 };
        let rows = rows
            .enumerate()
            .map(|(i, r)| (i + start, r))
            .skip(off - start)
            .take(self.app.list_rows)
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

    fn list_title(&self, pane: Pane, base: String) -> String {
        let l = self.app.list(pane);
        let mut t = base;
        if !l.filter.is_empty() {
            t.push_str(&format!(" /{}", l.filter));
        }
        if let Some(s) = l.sort {
            let names: &[&str] = if pane == Pane::Images {
                &IMAGE_SORTS
            } else {
                &CONTAINER_SORTS
            };
            t.push_str(&format!(
                " sort: {} {}",
                names.get(s.column).unwrap_or(&"?"),
                sort_arrow(s.reverse)
            ));
        }
        if !l.marked.is_empty() {
            t.push_str(&format!(" {} marked", l.marked.len()));
        }
        t
    }

    fn containers(&self, area: Rect, buf: &mut Buffer) {
        let app = self.app;
        let which = if app.show_all { "all" } else { "running" };
        let title = self.list_title(
            Pane::Containers,
            format!("Containers ({} {which})", app.container_rows.len()),
        );
        match &app.containers {
            Loaded::Loading => return self.hint(area, buf, title, "loading…"),
            Loaded::Ready(_) if app.container_rows.is_empty() => {
                let text = if !app.list(Pane::Containers).filter.is_empty() {
                    "Nothing matches the filter. Esc clears it."
                } else if app.show_all {
                    "No containers. Press n to run one (or :run IMAGE)."
                } else {
                    "No running containers. Press a to show all."
                };
                return self.hint(area, buf, title, text);
            }
            Loaded::Ready(_) => {}
        }
        // Narrow terminals keep what identifies a container and what it is doing: below 100
        // columns the STATE column goes (STATUS says it, in the state's colour); ports,
        // creation time, id and the memory limit come in from 120 columns.
        let wide = area.width >= 120;
        let state_col = area.width >= 100;
        let sort = app.list(Pane::Containers).sort;
        // (header, sort column it shows, width)
        let mut columns: Vec<(&str, Option<usize>, Constraint)> = vec![
            ("", None, Constraint::Length(1)),
            ("NAME", Some(0), Constraint::Fill(2)),
            ("IMAGE", Some(1), Constraint::Fill(2)),
            ("STATE", Some(2), Constraint::Length(10)),
            ("STATUS", Some(3), Constraint::Fill(3)),
            ("CPU %", Some(4), Constraint::Length(6)),
            (
                "MEM",
                Some(5),
                Constraint::Length(if wide { 17 } else { 7 }),
            ),
        ];
        if !state_col {
            columns.remove(3);
        }
        if wide {
            columns.extend([
                ("PORTS", Some(6), Constraint::Fill(2)),
                ("CREATED", Some(7), Constraint::Length(14)),
                ("ID", None, Constraint::Length(12)),
            ]);
        }
        let head = Row::new(columns.iter().map(|(name, col, _)| match (sort, col) {
            (Some(s), Some(c)) if s.column == *c => {
                Cell::from(format!("{name}{}", sort_arrow(s.reverse)))
            }
            _ => Cell::from(*name),
        }));
        let widths: Vec<Constraint> = columns.iter().map(|c| c.2).collect();
        let t = self.theme;
        let now = app.now;
        let marked = &app.list(Pane::Containers).marked;
        let items = app.containers.items();
        let off = app.list(Pane::Containers).offset;
        let rows = app.container_rows[off.min(app.container_rows.len())..]
            .iter()
            .take(app.list_rows)
            .map(move |&i| {
                let c = &items[i];
                let status = match app.denials.get(c.id.as_str()) {
                    Some(d) => Cell::from(Span::styled(format!("denied: {}", d.reason), t.error())),
                    None if state_col => Cell::from(status_text(c, now)),
                    None => Cell::from(Span::styled(
                        status_text(c, now),
                        t.state(c.state, c.exit_code),
                    )),
                };
                let (cpu, memory) = match app.usage.get(c.id.as_str()) {
                    _ if !c.state.is_alive() => ("-".to_owned(), "-".to_owned()),
                    Some(u) => {
                        let (cpu, mem, limit) = u.texts();
                        let memory = match limit {
                            Some(l) if wide => format!("{mem} / {l}"),
                            _ => mem,
                        };
                        (cpu, memory)
                    }
                    None => (String::new(), String::new()),
                };
                let mut cells = vec![
                    Cell::from(if marked.contains(c.id.as_str()) {
                        "*"
                    } else {
                        " "
                    }),
                    Cell::from(c.name.clone()),
                    Cell::from(c.image.clone()),
                ];
                if state_col {
                    cells.push(Cell::from(Span::styled(
                        c.state.as_str(),
                        t.state(c.state, c.exit_code),
                    )));
                }
                cells.extend([
                    status,
                    Cell::from(Line::from(cpu).right_aligned()),
                    Cell::from(Line::from(memory).right_aligned()),
                ]);
                if wide {
                    cells.push(Cell::from(ports_text(c)));
                    cells.push(Cell::from(format!(
                        "{} ago",
                        human_duration(now - c.created)
                    )));
                    cells.push(Cell::from(c.id.short().to_owned()));
                }
                Row::new(cells)
            });
        self.list(
            area,
            buf,
            ListFrame {
                title,
                pane: Pane::Containers,
                head,
                widths: &widths,
                windowed: true,
            },
            rows,
        );
    }

    fn images(&self, area: Rect, buf: &mut Buffer) {
        let app = self.app;
        let title = self.list_title(Pane::Images, format!("Images ({})", app.image_rows.len()));
        match &app.images {
            Loaded::Loading => return self.hint(area, buf, title, "loading…"),
            Loaded::Ready(v) if v.is_empty() => {
                return self.hint(
                    area,
                    buf,
                    title,
                    "No images. Press P to pull one (or :pull REF).",
                );
            }
            Loaded::Ready(_) if app.image_rows.is_empty() => {
                return self.hint(
                    area,
                    buf,
                    title,
                    "Nothing matches the filter. Esc clears it.",
                );
            }
            Loaded::Ready(_) => {}
        }
        let sort = app.list(Pane::Images).sort;
        let head = Row::new(
            [
                ("REPOSITORY:TAG", Some(0)),
                ("ID", None),
                ("SIZE", Some(1)),
                ("CREATED", Some(2)),
                ("USED BY", None),
            ]
            .map(|(name, col)| match (sort, col) {
                (Some(s), Some(c)) if s.column == c => {
                    Cell::from(format!("{name}{}", sort_arrow(s.reverse)))
                }
                _ => Cell::from(name),
            }),
        );
        let widths = [
            Constraint::Fill(3),
            Constraint::Length(12),
            Constraint::Length(9),
            Constraint::Length(14),
            Constraint::Length(7),
        ];
        let now = app.now;
        let t = self.theme;
        let items = app.images.items();
        let rows = app.image_rows.iter().map(move |&idx| {
            let i: &ImageSummary = &items[idx];
            let name = i
                .repo_tags
                .first()
                .cloned()
                .unwrap_or_else(|| "<none>:<none>".into());
            let denied = i.repo_tags.iter().find_map(|tag| app.denials.get(tag));
            Row::new(vec![
                match denied {
                    Some(d) => Cell::from(Line::from(vec![
                        Span::raw(name),
                        Span::styled(format!(" denied: {}", d.reason), t.error()),
                    ])),
                    None => Cell::from(name),
                },
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
                pane: Pane::Images,
                head,
                widths: &widths,
                windowed: false,
            },
            rows,
        );
    }

    fn logs(&self, area: Rect, buf: &mut Buffer) {
        let v = &self.app.logs;
        let Some((_, name)) = &v.container else {
            return self.hint(
                area,
                buf,
                "Logs".into(),
                "Select a container and press l to see its log.",
            );
        };
        let mut flags = Vec::new();
        if v.follow {
            flags.push("following");
        } else {
            flags.push("paused");
        }
        if v.wrap {
            flags.push("wrap");
        }
        if v.ended {
            flags.push("ended");
        }
        let search = match &v.search {
            Some(q) => format!(
                " /{q} {}/{}",
                v.current.map_or(0, |c| c + 1),
                v.matches.len()
            ),
            None => String::new(),
        };
        let title = format!(
            "Logs of {name} ({} lines, {}){search}",
            v.lines.len(),
            flags.join(", ")
        );
        let block = self.block(title);
        let inner = block.inner(area);
        block.render(area, buf);
        if v.lines.is_empty() {
            Paragraph::new(Line::styled("No output yet.", self.theme.dim())).render(inner, buf);
            return;
        }
        let first = if v.follow {
            v.lines.len().saturating_sub(inner.height as usize)
        } else {
            v.first_visible()
        };
        let current_line = v.current.and_then(|c| v.matches.get(c)).copied();
        let lines: Vec<Line> = v
            .lines
            .iter()
            .enumerate()
            .skip(first)
            .take(inner.height as usize)
            .map(|(i, l)| {
                let mut spans = Vec::new();
                if v.timestamps {
                    spans.push(Span::styled(
                        format!("{} ", rfc3339(l.time)),
                        self.theme.dim(),
                    ));
                }
                let style = if l.stream == berth::api::Stream::Stderr {
                    self.theme.stderr()
                } else {
                    Style::new()
                };
                spans.extend(highlight(
                    &l.line,
                    v.search.as_deref(),
                    style,
                    self.theme,
                    Some(i) == current_line,
                ));
                Line::from(spans)
            })
            .collect();
        let mut p = Paragraph::new(lines);
        if v.wrap {
            p = p.wrap(Wrap { trim: false });
        }
        p.render(inner, buf);
    }

    fn stats(&self, area: Rect, buf: &mut Buffer) {
        let s = &self.app.stats;
        let Some((_, name)) = &s.container else {
            return self.hint(
                area,
                buf,
                "Stats".into(),
                "Select a running container and press 4 to see its stats.",
            );
        };
        let Some(last) = s.samples.back() else {
            return self.hint(
                area,
                buf,
                format!("Stats of {name}"),
                "Waiting for the first sample…",
            );
        };
        let block = self.block(format!("Stats of {name}"));
        let inner = block.inner(area);
        block.render(area, buf);
        let [facts, charts] =
            Layout::vertical([Constraint::Length(2), Constraint::Fill(1)]).areas(inner);
        let mem = match last.memory_limit {
            Some(l) if l > 0 => format!(
                "{} / {} ({:.1}%)",
                human_size(last.memory_bytes),
                human_size(l),
                last.memory_bytes as f64 * 100.0 / l as f64
            ),
            _ => human_size(last.memory_bytes),
        };
        Paragraph::new(vec![
            Line::from(format!(
                "CPU {:.1}%   memory {mem}   pids {}",
                last.cpu_percent, last.pids
            )),
            Line::from(format!(
                "block I/O {} / {}   net I/O {} / {}",
                human_size(last.block_read),
                human_size(last.block_write),
                human_size(last.net_rx),
                human_size(last.net_tx)
            )),
        ])
        .render(facts, buf);
        let [cpu_area, mem_area] =
            Layout::horizontal([Constraint::Fill(1), Constraint::Fill(1)]).areas(charts);
        let cpu: Vec<(f64, f64)> = s
            .samples
            .iter()
            .enumerate()
            .map(|(i, x)| (i as f64, x.cpu_percent))
            .collect();
        let memv: Vec<(f64, f64)> = s
            .samples
            .iter()
            .enumerate()
            .map(|(i, x)| (i as f64, x.memory_bytes as f64 / 1e6))
            .collect();
        let n = s.samples.len().max(2) as f64;
        for (area, data, title, unit) in [
            (cpu_area, &cpu, "CPU", "%"),
            (mem_area, &memv, "memory", "MB"),
        ] {
            let max = data.iter().map(|p| p.1).fold(1.0f64, f64::max) * 1.1;
            let ds = Dataset::default()
                .marker(Marker::Braille)
                .graph_type(GraphType::Line)
                .style(self.theme.info())
                .data(data);
            Chart::new(vec![ds])
                .block(Block::bordered().title(format!(" {title} ")))
                .x_axis(Axis::default().bounds([0.0, n - 1.0]))
                .y_axis(
                    Axis::default()
                        .bounds([0.0, max])
                        .labels([Line::from("0"), Line::from(format!("{max:.0}{unit}"))]),
                )
                .render(area, buf);
        }
    }

    fn inspect(&self, area: Rect, buf: &mut Buffer) {
        let v = &self.app.inspect;
        if v.rows.is_empty() {
            return self.hint(
                area,
                buf,
                "Inspect".into(),
                "Select a container or image and press i.",
            );
        }
        let block = self.block(format!("Inspect {} (Enter folds)", v.title));
        let inner = block.inner(area);
        block.render(area, buf);
        let lines: Vec<Line> = v
            .rows
            .iter()
            .enumerate()
            .skip(v.offset)
            .take(inner.height as usize)
            .map(|(i, r)| {
                let marker = match (r.foldable, r.folded) {
                    (true, true) => "▸ ",
                    (true, false) => "▾ ",
                    _ => "  ",
                };
                let line = Line::from(vec![
                    Span::raw("  ".repeat(r.depth)),
                    Span::raw(marker),
                    Span::styled(r.key.clone(), self.theme.header()),
                    Span::raw(if r.value.is_empty() {
                        String::new()
                    } else {
                        format!(": {}", r.value)
                    }),
                ]);
                if i == v.selected {
                    line.style(self.theme.selected())
                } else {
                    line
                }
            })
            .collect();
        Paragraph::new(lines).render(inner, buf);
    }

    fn shell(&self, area: Rect, buf: &mut Buffer) {
        let app = self.app;
        let Some(sess) = app
            .active_session
            .and_then(|a| app.sessions.iter().find(|s| s.id == a))
        else {
            return self.hint(
                area,
                buf,
                "Shell".into(),
                "Select a running container and press e for a shell inside it.",
            );
        };
        let others: Vec<String> = app
            .sessions
            .iter()
            .filter(|s| s.id != sess.id)
            .map(|s| match s.kind {
                SessionKind::Shell => s.title(),
                SessionKind::Attach => format!("{} (attached)", s.title()),
            })
            .collect();
        let mut title = match sess.kind {
            SessionKind::Shell => format!("Shell in {} (Ctrl-] detaches)", sess.title()),
            SessionKind::Attach => format!(
                "Attached to {} (Ctrl-] detaches, it keeps running)",
                sess.title()
            ),
        };
        if !others.is_empty() {
            title.push_str(&format!("  also: {}", others.join(", ")));
        }
        let block = self.block(title);
        let inner = block.inner(area);
        block.render(area, buf);
        if let Some(e) = &sess.error {
            Paragraph::new(Line::styled(e.clone(), self.theme.error())).render(inner, buf);
            return;
        }
        super::terminal::render(sess.parser.screen(), inner, buf, self.theme.color);
    }

    fn networks(&self, area: Rect, buf: &mut Buffer) {
        let app = self.app;
        let title = format!("Networks ({})", app.networks.items().len());
        match &app.networks {
            Loaded::Loading => return self.hint(area, buf, title, "loading…"),
            Loaded::Ready(v) if v.is_empty() => {
                return self.hint(
                    area,
                    buf,
                    title,
                    "No networks yet: the default bridge appears with its first container.",
                );
            }
            Loaded::Ready(_) => {}
        }
        let head = Row::new(["NAME", "SUBNET", "GATEWAY", "BRIDGE", "CONTAINERS"]);
        let widths = [
            Constraint::Fill(2),
            Constraint::Length(18),
            Constraint::Length(15),
            Constraint::Length(14),
            Constraint::Fill(3),
        ];
        let rows = app.networks.items().iter().map(|n| {
            let members: Vec<String> = n
                .containers
                .iter()
                .map(|c| format!("{} {}", c.name, c.ip))
                .collect();
            Row::new(vec![
                Cell::from(n.name.clone()),
                Cell::from(n.subnet.clone()),
                Cell::from(n.gateway.clone()),
                Cell::from(n.bridge.clone()),
                Cell::from(members.join(", ")),
            ])
        });
        self.list(
            area,
            buf,
            ListFrame {
                title,
                pane: Pane::Networks,
                head,
                widths: &widths,
                windowed: false,
            },
            rows,
        );
    }

    fn volumes(&self, area: Rect, buf: &mut Buffer) {
        let app = self.app;
        let title = format!("Volumes ({})", app.volumes.items().len());
        match &app.volumes {
            Loaded::Loading => return self.hint(area, buf, title, "loading…"),
            Loaded::Ready(v) if v.is_empty() => {
                return self.hint(
                    area,
                    buf,
                    title,
                    "No volumes. `-v NAME:/path` in the run form makes one.",
                );
            }
            Loaded::Ready(_) => {}
        }
        let head = Row::new(["NAME", "USED BY", "MOUNTPOINT"]);
        let widths = [
            Constraint::Fill(2),
            Constraint::Fill(2),
            Constraint::Fill(3),
        ];
        let rows = app.volumes.items().iter().map(|v| {
            Row::new(vec![
                Cell::from(v.name.clone()),
                Cell::from(v.used_by.join(", ")),
                Cell::from(v.mountpoint.clone()),
            ])
        });
        self.list(
            area,
            buf,
            ListFrame {
                title,
                pane: Pane::Volumes,
                head,
                widths: &widths,
                windowed: false,
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
                pane: Pane::Events,
                head,
                widths: &widths,
                windowed: false,
            },
            rows,
        );
    }

    fn policy(&self, area: Rect, buf: &mut Buffer) {
        let app = self.app;
        let title = format!("Policy decisions ({})", app.policy.len());
        if app.policy.is_empty() {
            return self.hint(
                area,
                buf,
                title,
                "No policy decisions yet: refusals, confirmations and changes are listed here.",
            );
        }
        let t = self.theme;
        let head = Row::new([
            "TIME",
            "DECISION",
            "ACTION",
            "TARGET",
            "SUBJECT",
            "RULE / REASON",
        ]);
        let widths = [
            Constraint::Length(8),
            Constraint::Length(8),
            Constraint::Length(17),
            Constraint::Fill(1),
            Constraint::Length(14),
            Constraint::Fill(2),
        ];
        let rows = app.policy.iter().map(move |r| {
            let time = r.time.get(11..19).unwrap_or(&r.time).to_owned();
            Row::new(vec![
                Cell::from(time),
                Cell::from(Span::styled(r.decision.to_string(), t.verdict(r.decision))),
                Cell::from(r.action.clone()),
                Cell::from(r.target.clone().unwrap_or_default()),
                Cell::from(r.subject.clone()),
                Cell::from(format!(
                    "{}{}",
                    r.rule
                        .as_ref()
                        .map(|x| format!("{x}: "))
                        .unwrap_or_default(),
                    r.reason
                )),
            ])
        });
        self.list(
            area,
            buf,
            ListFrame {
                title,
                pane: Pane::Policy,
                head,
                widths: &widths,
                windowed: false,
            },
            rows,
        );
    }

    fn footer(&self, area: Rect, buf: &mut Buffer) {
        let t = self.theme;
        let scopes = self.app.scopes();
        let mut spans = Vec::new();
        let mut seen = Vec::new();
        // the focused pane's keys first, then the general ones
        for scope in &scopes {
            for b in self
                .app
                .keymap
                .iter()
                .filter(|b| b.scope == *scope && b.footer.is_some())
            {
                if seen.contains(&b.action) {
                    continue;
                }
                seen.push(b.action);
                spans.push(Span::styled(format!(" {}", key_label(b)), t.key()));
                spans.push(Span::raw(format!(" {}", b.footer.unwrap_or_default())));
            }
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

    fn popup(&self, p: &Popup, area: Rect, buf: &mut Buffer) {
        let t = self.theme;
        match p {
            Popup::Help => self.help(area, buf),
            Popup::Menu(m) => {
                let width = m
                    .items
                    .iter()
                    .map(|i| i.label.chars().count() + 8)
                    .max()
                    .unwrap_or(20)
                    .max(m.title.chars().count() + 4) as u16;
                let r = centered(area, width, m.items.len() as u16 + 2);
                Clear.render(r, buf);
                let lines: Vec<Line> = m
                    .items
                    .iter()
                    .enumerate()
                    .map(|(i, it)| {
                        let l = Line::from(vec![
                            Span::styled(format!(" {:>3} ", it.key), t.key()),
                            Span::raw(it.label.clone()),
                        ]);
                        if i == m.selected {
                            l.style(t.selected())
                        } else {
                            l
                        }
                    })
                    .collect();
                Paragraph::new(lines)
                    .block(self.block(m.title.clone()))
                    .render(r, buf);
            }
            Popup::Confirm(c) => {
                let width = c
                    .text
                    .iter()
                    .map(|l| l.chars().count())
                    .max()
                    .unwrap_or(20)
                    .max(30) as u16
                    + 4;
                let r = centered(area, width, c.text.len() as u16 + 4);
                Clear.render(r, buf);
                let mut lines: Vec<Line> = c.text.iter().map(|l| Line::from(l.clone())).collect();
                lines.push(Line::from(""));
                let (yes, no) = if c.yes {
                    (t.selected(), Style::new())
                } else {
                    (Style::new(), t.selected())
                };
                lines.push(Line::from(vec![
                    Span::styled(" y Yes ", yes),
                    Span::raw("   "),
                    Span::styled(" n Cancel ", no),
                ]));
                Paragraph::new(lines)
                    .block(self.block(c.title.clone()))
                    .render(r, buf);
            }
            Popup::Input(i) => {
                let width = (area.width.saturating_sub(10)).clamp(20, 70);
                let r = if i.kind == InputKind::Command
                    || matches!(i.kind, InputKind::Filter(_) | InputKind::Search)
                {
                    // command line and filters sit at the bottom, over the status line
                    Rect {
                        x: area.x,
                        y: area.bottom().saturating_sub(3),
                        width: area.width,
                        height: 3.min(area.height),
                    }
                } else {
                    centered(area, width, 3)
                };
                Clear.render(r, buf);
                let block = self.block(i.kind.title());
                let inner = block.inner(r);
                block.render(r, buf);
                (&i.area).render(inner, buf);
            }
            Popup::Run(f) => {
                let h = RUN_FIELDS.len() as u16 + 4;
                let r = centered(area, 76, h);
                Clear.render(r, buf);
                let block =
                    self.block("Run a container (Tab next field, Enter runs, Esc cancels)".into());
                let inner = block.inner(r);
                block.render(r, buf);
                let rows = Layout::vertical(vec![Constraint::Length(1); RUN_FIELDS.len() + 2])
                    .split(inner);
                for (i, label) in RUN_FIELDS.iter().enumerate() {
                    let [l, v] = Layout::horizontal([Constraint::Length(24), Constraint::Fill(1)])
                        .areas(rows[i]);
                    let style = if i == f.focus { t.key() } else { t.dim() };
                    let short = label.split(" (").next().unwrap_or(label);
                    Line::styled(format!("{short:>22}: "), style).render(l, buf);
                    if i == f.focus {
                        (&f.fields[i]).render(v, buf);
                    } else {
                        Line::from(f.fields[i].lines().join("")).render(v, buf);
                    }
                }
                let hint = RUN_FIELDS[f.focus]
                    .split_once(" (")
                    .map(|(_, h)| h.trim_end_matches(')'))
                    .unwrap_or("");
                match &f.error {
                    Some(e) => {
                        Line::styled(e.clone(), t.error()).render(rows[RUN_FIELDS.len() + 1], buf)
                    }
                    None => Line::styled(hint.to_owned(), t.dim())
                        .render(rows[RUN_FIELDS.len() + 1], buf),
                }
            }
            Popup::Build(b) => {
                let r = centered(
                    area,
                    area.width.saturating_sub(8),
                    area.height.saturating_sub(6),
                );
                Clear.render(r, buf);
                let block = self.block(b.title.clone());
                let inner = block.inner(r);
                block.render(r, buf);
                let [out_area, last] =
                    Layout::vertical([Constraint::Fill(1), Constraint::Length(1)]).areas(inner);
                let shown = usize::from(out_area.height);
                let lines: Vec<Line> = b
                    .lines
                    .iter()
                    .skip(b.lines.len().saturating_sub(shown))
                    .map(|l| Line::from(l.clone()))
                    .collect();
                Paragraph::new(lines).render(out_area, buf);
                match &b.done {
                    Some(Ok(())) => {
                        Line::styled("Built. Enter closes.", t.info()).render(last, buf)
                    }
                    Some(Err(e)) => Line::styled(e.clone(), t.error()).render(last, buf),
                    None => Line::styled("building… Esc hides this; the build goes on.", t.dim())
                        .render(last, buf),
                }
            }
            Popup::Pull(v) => {
                let h = v.layers.len() as u16 + 4;
                let r = centered(area, 70, h.max(5));
                Clear.render(r, buf);
                let block = self.block(format!("Pull {}", v.reference));
                let inner = block.inner(r);
                block.render(r, buf);
                let rows =
                    Layout::vertical(vec![Constraint::Length(1); v.layers.len() + 2]).split(inner);
                if v.layers.is_empty() && v.done.is_none() {
                    Line::styled("resolving…", t.dim()).render(rows[0], buf);
                }
                for (i, (layer, p)) in v.layers.iter().enumerate() {
                    let [l, g] = Layout::horizontal([Constraint::Length(26), Constraint::Fill(1)])
                        .areas(rows[i]);
                    Line::from(format!("{} {:<12}", layer.short(), phase_text(p.phase)))
                        .render(l, buf);
                    let ratio = match (p.phase, p.total) {
                        (TransferPhase::Complete | TransferPhase::AlreadyExists, _) => 1.0,
                        (_, Some(tot)) if tot > 0 => (p.current as f64 / tot as f64).min(1.0),
                        _ => 0.0,
                    };
                    let label = match p.total {
                        Some(tot) => format!("{} / {}", human_size(p.current), human_size(tot)),
                        None => human_size(p.current),
                    };
                    Gauge::default()
                        .ratio(ratio)
                        .label(label)
                        .gauge_style(t.info())
                        .render(g, buf);
                }
                let last = rows[rows.len() - 1];
                match &v.done {
                    Some(Ok(())) => {
                        Line::styled("Pulled. Enter closes.", t.info()).render(last, buf)
                    }
                    Some(Err(e)) => Line::styled(e.clone(), t.error()).render(last, buf),
                    None => {
                        Line::styled("Esc hides this; the pull goes on.", t.dim()).render(last, buf)
                    }
                }
            }
        }
    }

    fn help(&self, area: Rect, buf: &mut Buffer) {
        let t = self.theme;
        // Two columns when there is room: global keys left, the focused pane's right.
        let scopes: Vec<Scope> = std::iter::once(Scope::Global)
            .chain(
                self.app
                    .scopes()
                    .into_iter()
                    .filter(|s| *s != Scope::Global),
            )
            .collect();
        let mut lines = Vec::new();
        for scope in scopes {
            lines.push(Line::styled(scope.title(), t.header()));
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
                    .filter(|o| o.action == b.action && o.scope == scope)
                    .map(key_label)
                    .collect();
                lines.push(Line::from(vec![
                    Span::styled(format!(" {:<9}", keys.join(" ")), t.key()),
                    Span::raw(b.help),
                ]));
            }
        }
        let two_cols = area.width >= 120;
        let height = if two_cols {
            (lines.len() as u16).div_ceil(2) + 3
        } else {
            lines.len() as u16 + 3
        };
        let width = if two_cols { 116 } else { 60 };
        let r = centered(area, width, height);
        Clear.render(r, buf);
        let block = self.block("Help (? or Esc closes)".into());
        let inner = block.inner(r);
        block.render(r, buf);
        if two_cols {
            let half = lines.len().div_ceil(2);
            let right = lines.split_off(half);
            let [a, b] =
                Layout::horizontal([Constraint::Fill(1), Constraint::Fill(1)]).areas(inner);
            Paragraph::new(lines).render(a, buf);
            Paragraph::new(right).render(b, buf);
        } else {
            Paragraph::new(lines).render(inner, buf);
        }
    }
}

fn phase_text(p: TransferPhase) -> &'static str {
    match p {
        TransferPhase::Waiting => "waiting",
        TransferPhase::Downloading => "downloading",
        TransferPhase::Verifying => "verifying",
        TransferPhase::Extracting => "extracting",
        TransferPhase::Complete => "complete",
        TransferPhase::AlreadyExists => "exists",
        TransferPhase::Pushing => "pushing",
    }
}

/// Split a log line into spans, highlighting every occurrence of `q`.
fn highlight(
    line: &str,
    q: Option<&str>,
    base: Style,
    t: Theme,
    current: bool,
) -> Vec<Span<'static>> {
    let Some(q) = q.filter(|q| !q.is_empty()) else {
        return vec![Span::styled(line.to_owned(), base)];
    };
    let hl = if current {
        t.selected().add_modifier(Modifier::BOLD)
    } else {
        t.highlight()
    };
    let mut spans = Vec::new();
    let mut rest = line;
    while let Some(pos) = rest.find(q) {
        if pos > 0 {
            spans.push(Span::styled(rest[..pos].to_owned(), base));
        }
        spans.push(Span::styled(q.to_owned(), hl));
        rest = &rest[pos + q.len()..];
    }
    if !rest.is_empty() {
        spans.push(Span::styled(rest.to_owned(), base));
    }
    spans
}

/// The sort direction as the header and the title show it.
fn sort_arrow(reverse: bool) -> &'static str {
    if reverse { "▼" } else { "▲" }
}

fn ports_text(c: &ContainerSummary) -> String {
    c.ports
        .iter()
        .map(|p| {
            format!(
                "{}:{}->{}/{}",
                p.host_ip.as_deref().unwrap_or("0.0.0.0"),
                p.host_port,
                p.container_port,
                p.protocol
            )
        })
        .collect::<Vec<_>>()
        .join(", ")
}

/// RFC 3339 with nanoseconds, as `docker logs -t` prints.
pub fn rfc3339(nanos: i64) -> String {
    time::OffsetDateTime::from_unix_timestamp_nanos(nanos as i128)
        .ok()
        .and_then(|t| {
            t.format(&time::format_description::well_known::Rfc3339)
                .ok()
        })
        .unwrap_or_default()
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
            // Unknown when the container's monitor died: said so, not a made-up 0.
            let code = c
                .exit_code
                .map_or_else(|| " (unknown)".to_owned(), |e| format!(" ({e})"));
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

/// `HH:MM:SS` of a unix-nanosecond time, UTC.
pub fn clock(nanos: i64) -> String {
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
        Event::DebrisRemoved { removed } => format!(
            "removed {} items of crash debris: {}",
            removed.len(),
            removed.join(", ")
        ),
        Event::Error { context, message } => format!("error: {context}: {message}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::console::app::{Msg, Pane};
    use crate::console::keys::default_keymap;
    use berth::api::{ContainerId, Digest, ImageRef, LogLine, Stream};
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

    fn key(app: &mut App, code: KeyCode) {
        app.update(Msg::Key(KeyEvent::new(code, KeyModifiers::NONE)));
    }

    fn typed(app: &mut App, s: &str) {
        for c in s.chars() {
            key(app, KeyCode::Char(c));
        }
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

    /// An app at a size, with data loaded (or empty lists).
    fn app(w: u16, h: u16, filled: bool) -> App {
        let mut app = App::new("/var/lib/berth", default_keymap(), w, h);
        app.now = NOW;
        let (cs, is) = if filled {
            (
                vec![
                    container("web", ContainerState::Running, None),
                    container("batch", ContainerState::Exited, Some(0)),
                    container("crashy", ContainerState::Exited, Some(137)),
                    container("frozen", ContainerState::Paused, None),
                ],
                vec![
                    ImageSummary {
                        id: Digest("sha256:0123456789abcdef".into()),
                        repo_tags: vec!["busybox:latest".into()],
                        repo_digests: vec![],
                        size: 2_100_000,
                        created: Some(NOW - 86400 * 3),
                        containers: 4,
                    },
                    ImageSummary {
                        id: Digest("sha256:fedcba9876543210".into()),
                        repo_tags: vec![],
                        repo_digests: vec![],
                        size: 52_000_000,
                        created: Some(NOW - 86400 * 30),
                        containers: 0,
                    },
                ],
            )
        } else {
            (vec![], vec![])
        };
        let running: Vec<ContainerId> = cs
            .iter()
            .filter(|c| c.state.is_alive())
            .map(|c| c.id.clone())
            .collect();
        app.update(Msg::Containers(Ok(cs)));
        // one sample per live container: web busy, frozen idle
        app.update(Msg::Usage(Ok(running
            .into_iter()
            .zip([(42.5, 48_200_000u64), (0.0, 1_300_000)])
            .map(|(id, (cpu, mem))| berth::api::StatsSample {
                id,
                cpu_percent: cpu,
                memory_bytes: mem,
                memory_limit: Some(256_000_000),
                ..Default::default()
            })
            .collect())));
        app.update(Msg::Images(Ok(is)));
        app.update(Msg::Audit(Ok(vec![])));
        app
    }

    /// Snapshot the same state at 80x24 and 160x48.
    fn snap(name: &str, setup: impl Fn(&mut App)) {
        for (w, h) in [(80, 24), (160, 48)] {
            let mut a = app(w, h, true);
            setup(&mut a);
            let t = draw(&a, w, h, Theme { color: true });
            insta::assert_snapshot!(format!("{name}_{w}x{h}"), t.backend());
        }
    }

    #[test]
    fn empty_console_80x24() {
        let app = app(80, 24, false);
        insta::assert_snapshot!(draw(&app, 80, 24, Theme { color: true }).backend());
    }

    #[test]
    fn help_screen_80x24() {
        let mut app = app(80, 24, false);
        key(&mut app, KeyCode::Char('?'));
        insta::assert_snapshot!(draw(&app, 80, 24, Theme { color: true }).backend());
    }

    #[test]
    fn panes() {
        snap("containers", |_| {});
        snap("images", |a| key(a, KeyCode::Char('2')));
        snap("events", |a| {
            a.update(Msg::Engine(Box::new(berth::api::EventRecord {
                time: NOW * 1_000_000_000,
                origin: "o".into(),
                event: berth::api::Event::ContainerExited {
                    id: ContainerId("c".repeat(64)),
                    exit_code: 137,
                    oom_killed: true,
                },
            })));
            key(a, KeyCode::Char('6'));
        });
        snap("policy", |a| {
            a.update(Msg::Audit(Ok(vec![berth::security::AuditRecord {
                time: "2027-01-15T08:00:00Z".into(),
                subject: "alice(uid 1000)".into(),
                uid: 1000,
                action: "container.create".into(),
                target: Some("busybox".into()),
                decision: berth::security::Verdict::Deny,
                rule: Some("/etc/berth/policy.toml:12".into()),
                reason: "only root may run containers".into(),
            }])));
            key(a, KeyCode::Char('7'));
        });
        snap("logs", |a| {
            key(a, KeyCode::Char('l'));
            let id = a.containers.items()[0].id.clone();
            for i in 0..60 {
                let line = LogLine {
                    stream: if i % 7 == 0 {
                        Stream::Stderr
                    } else {
                        Stream::Stdout
                    },
                    time: NOW * 1_000_000_000 + i,
                    line: format!(
                        "request {i} served{}",
                        if i % 10 == 4 { " slow" } else { "" }
                    ),
                };
                a.update(Msg::LogLine {
                    id: id.clone(),
                    line,
                });
            }
            key(a, KeyCode::Char('/'));
            typed(a, "slow");
            key(a, KeyCode::Enter);
        });
        snap("stats", |a| {
            key(a, KeyCode::Char('4'));
            let id = a.containers.items()[0].id.clone();
            for i in 0..30u64 {
                a.update(Msg::Stat(berth::api::StatsSample {
                    id: id.clone(),
                    cpu_percent: (i % 7) as f64 * 10.0,
                    memory_bytes: 20_000_000 + i * 1_000_000,
                    memory_limit: Some(64 << 20),
                    pids: 3,
                    ..Default::default()
                }));
            }
        });
        snap("networks", |a| {
            a.update(Msg::Networks(Ok(vec![berth::api::NetworkInfo {
                id: "n1".into(),
                name: "backend".into(),
                driver: "bridge".into(),
                subnet: "10.88.1.0/24".into(),
                gateway: "10.88.1.1".into(),
                bridge: "berth1".into(),
                created: NOW,
                labels: Default::default(),
                containers: vec![berth::api::NetworkEndpoint {
                    id: "c".into(),
                    name: "db".into(),
                    ip: "10.88.1.2".into(),
                }],
            }])));
            key(a, KeyCode::Char('9'));
        });
        snap("volumes", |a| {
            a.update(Msg::Volumes(Ok(vec![berth::api::VolumeInfo {
                name: "data".into(),
                driver: "local".into(),
                mountpoint: "/var/lib/berth/volumes/data/_data".into(),
                created: NOW,
                labels: Default::default(),
                used_by: vec!["db".into()],
            }])));
            key(a, KeyCode::Char('0'));
        });
        snap("inspect", |a| {
            a.update(Msg::Inspected {
                title: "container web".into(),
                result: Ok(serde_json::json!({"Id": "3web", "Name": "web", "State": {"Status": "running", "Pid": 42}, "Config": {"Env": ["PATH=/bin"], "Cmd": ["sleep", "1000"]}})),
            });
        });
    }

    #[test]
    fn dialogs() {
        snap("menu", |a| key(a, KeyCode::Enter));
        snap("confirm_remove", |a| key(a, KeyCode::Char('d')));
        snap("kill_signal", |a| key(a, KeyCode::Char('K')));
        snap("run_form", |a| {
            key(a, KeyCode::Char('n'));
            typed(a, "busybox");
            key(a, KeyCode::Tab);
            typed(a, "web");
        });
        snap("pull_progress", |a| {
            key(a, KeyCode::Char('P'));
            typed(a, "127.0.0.1:5055/busybox:latest");
            key(a, KeyCode::Enter);
            for (layer, phase, cur) in [
                ("sha256:aaaa1111", TransferPhase::Downloading, 400_000u64),
                ("sha256:bbbb2222", TransferPhase::Complete, 900_000),
            ] {
                a.update(Msg::Engine(Box::new(berth::api::EventRecord {
                    time: 0,
                    origin: "o".into(),
                    event: berth::api::Event::Transfer {
                        reference: ImageRef("127.0.0.1:5055/busybox:latest".into()),
                        layer: Digest(layer.into()),
                        phase,
                        current: cur,
                        total: Some(900_000),
                    },
                })));
            }
        });
        snap("prune_preview", |a| {
            key(a, KeyCode::Char('2'));
            key(a, KeyCode::Char('x'));
        });
        snap("command_line", |a| {
            key(a, KeyCode::Char(':'));
            typed(a, "run busybox echo hi");
        });
        snap("build_output", |a| {
            key(a, KeyCode::Char('B'));
            typed(a, "web");
            key(a, KeyCode::Enter);
            for l in [
                "Step 1/2 : FROM busybox",
                " ---> 0b80f8c2d4d1",
                "Step 2/2 : RUN echo hi",
                "hi",
            ] {
                a.update(Msg::Engine(Box::new(berth::api::EventRecord {
                    time: 0,
                    origin: "o".into(),
                    event: berth::api::Event::BuildOutput { line: l.into() },
                })));
            }
        });
        // sorted by CPU, busiest first: the header marks the column and the direction
        snap("sorted_by_cpu", |a| {
            for _ in 0..5 {
                key(a, KeyCode::Char('o'));
            }
            key(a, KeyCode::Char('O'));
        });
        // a column narrow terminals leave out: the title still names it
        snap("sorted_by_created", |a| {
            for _ in 0..8 {
                key(a, KeyCode::Char('o'));
            }
        });
        snap("attached_read_only", |a| {
            key(a, KeyCode::Char('A'));
            let session = a.active_session.unwrap();
            a.update(Msg::ShellStarted {
                session,
                resize: None,
                input: None,
            });
            a.update(Msg::ShellOutput {
                session,
                data: bytes::Bytes::from_static(b"GET / 200\r\nGET /health 200\r\n"),
            });
        });
        snap("filter", |a| {
            key(a, KeyCode::Char('/'));
            typed(a, "cr");
        });
    }

    #[test]
    fn container_state_colours_carry_meaning() {
        let a = app(160, 48, true);
        let t = draw(&a, 160, 48, Theme { color: true });
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
        assert_eq!(colour_of("running", "web"), Color::Green);
    }

    #[test]
    fn at_80_columns_the_status_carries_the_state_colour() {
        let a = app(80, 24, true);
        let t = draw(&a, 80, 24, Theme { color: true });
        let buf = t.backend().buffer();
        let colour_of = |text: &str| {
            for y in 0..24u16 {
                let line: String = (0..80u16)
                    .map(|x| buf[(x, y)].symbol().to_owned())
                    .collect();
                if let Some(x) = line.find(text) {
                    let x = line[..x].chars().count() as u16;
                    return buf[(x, y)].fg;
                }
            }
            panic!("{text} not on screen")
        };
        assert_eq!(colour_of("Exited (137)"), Color::Red);
        assert_eq!(colour_of("Exited (0)"), Color::Gray);
        assert_eq!(colour_of("Up 5 minutes (Paused"), Color::Yellow);
        assert_eq!(colour_of("Up 5 minutes "), Color::Green);
    }

    #[test]
    fn stopped_containers_show_a_dash_for_cpu_and_memory() {
        let a = app(160, 48, true);
        let t = draw(&a, 160, 48, Theme { color: true });
        let screen: Vec<String> = (0..48u16)
            .map(|y| {
                (0..160u16)
                    .map(|x| t.backend().buffer()[(x, y)].symbol().to_owned())
                    .collect()
            })
            .collect();
        let row = |name: &str| screen.iter().find(|l| l.contains(name)).unwrap().clone();
        assert!(row("batch").contains("  -  "), "{}", row("batch"));
        assert!(row("web").contains("42.5%") && row("web").contains("48.2MB / 256.0MB"));
        assert!(row("frozen").contains("0.0%"));
    }

    #[test]
    fn no_color_drops_every_colour() {
        let mut a = app(80, 24, true);
        let t = draw(&a, 80, 24, Theme { color: false });
        for cell in t.backend().buffer().content() {
            assert_eq!(cell.fg, Color::Reset, "coloured cell {cell:?}");
        }
        a.pane = Pane::Images;
        let t = draw(&a, 80, 24, Theme { color: false });
        assert!(
            t.backend()
                .buffer()
                .content()
                .iter()
                .all(|c| c.fg == Color::Reset)
        );
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
