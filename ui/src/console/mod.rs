//! The terminal console: one loop, one `select!` over keys, engine events and replies; drain
//! everything queued, then draw once, and only when something changed.
//!
//! - `app`: state and `update` (keys and messages in, effects out)
//! - `keys`: the keymap table (help and footer are generated from it); `config`: user overrides
//! - `popup`: menus, confirmations, inputs, the run form, pull progress
//! - `views`: logs, stats and inspect state; `view`: rendering; `theme`: colours
//!
//! `BERTH_FRAME_LOG=FILE` (off by default) appends one line per drawn frame to FILE: the
//! microseconds `terminal.draw` took (render and write to the terminal). The load tests
//! (tests/load) read it; it costs one formatted write per frame when set, nothing when not.

mod app;
pub mod config;
pub mod keys;
mod popup;
mod terminal;
mod theme;
pub mod view;
mod views;

pub use app::{App, Effect, JobError, Msg, Query};
pub use popup::parse_size;
pub use theme::Theme;
pub use view::View;

use berth::api::{ApiError, Caller, Command, Engine, LogOptions, Reply};
use crossterm::event::{
    DisableMouseCapture, EnableMouseCapture, Event as TermEvent, EventStream, KeyCode, KeyEvent,
    KeyEventKind, KeyModifiers, MouseEventKind,
};
use futures_util::StreamExt;
use tokio::sync::{broadcast, mpsc};
use tokio::task::JoinHandle;

/// Run the console on an engine until the user quits. The terminal is restored on every exit
/// path: normal return, error, and panic (ratatui's hook).
pub async fn run(engine: Engine, label: String, config: config::Config) -> color_eyre::Result<()> {
    let mut terminal = ratatui::init();
    let _ = crossterm::execute!(std::io::stdout(), EnableMouseCapture);
    let result = event_loop(&mut terminal, engine, label, config).await;
    let _ = crossterm::execute!(std::io::stdout(), DisableMouseCapture);
    ratatui::restore();
    result
}

/// How often the containers pane samples CPU and memory (each sample itself spans
/// half a second in the engine).
const USAGE_EVERY: std::time::Duration = std::time::Duration::from_secs(2);

fn unix_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}

/// Carries out effects off the UI task; answers come back as `Msg`s.
struct Effects {
    engine: Engine,
    tx: mpsc::UnboundedSender<Msg>,
    logs: Option<JoinHandle<()>>,
    stats: Option<JoinHandle<()>>,
    /// A container list is on its way; `relist`: another was asked for meanwhile. One list at
    /// a time: under a storm of events (200 containers removed at once) overlapping lists
    /// kept the engine's threads busy and the keys waited (tests/load).
    listing: bool,
    relist: bool,
}

fn job_error(e: ApiError) -> JobError {
    match e {
        ApiError::Denied { rule, reason } => JobError::Denied { rule, reason },
        ApiError::ConfirmationRequired { rule, reason } => {
            JobError::NeedsConfirmation { rule, reason }
        }
        other => JobError::Failed(other.to_string()),
    }
}

impl Effects {
    fn spawn<F>(&self, fut: F)
    where
        F: std::future::Future<Output = Option<Msg>> + Send + 'static,
    {
        let tx = self.tx.clone();
        tokio::spawn(async move {
            if let Some(m) = fut.await {
                let _ = tx.send(m);
            }
        });
    }

    /// A container list arrived: the one asked for meanwhile, if any, goes now.
    fn listed(&mut self) {
        self.listing = false;
        if std::mem::take(&mut self.relist) {
            self.run(Effect::Query(Query::Containers));
        }
    }

    /// The console lists every container and filters running ones itself (`a`).
    fn run(&mut self, effect: Effect) {
        if effect == Effect::Query(Query::Containers) {
            if self.listing {
                self.relist = true;
                return;
            }
            self.listing = true;
        }
        let engine = self.engine.clone();
        match effect {
            Effect::Query(q) => self.spawn(async move {
                Some(match q {
                    Query::Containers => match engine
                        .submit(Command::ContainerList { all: true })
                        .await
                    {
                        Ok(Reply::Containers(v)) => Msg::Containers(Ok(v)),
                        Ok(other) => Msg::Containers(Err(format!("unexpected reply {other:?}"))),
                        Err(e) => Msg::Containers(Err(e.to_string())),
                    },
                    Query::Images => match engine.submit(Command::ImageList).await {
                        Ok(Reply::Images(v)) => Msg::Images(Ok(v)),
                        Ok(other) => Msg::Images(Err(format!("unexpected reply {other:?}"))),
                        Err(e) => Msg::Images(Err(e.to_string())),
                    },
                    Query::Networks => match engine.submit(Command::NetworkList).await {
                        Ok(Reply::Networks(v)) => Msg::Networks(Ok(v)),
                        Ok(other) => Msg::Networks(Err(format!("unexpected reply {other:?}"))),
                        Err(e) => Msg::Networks(Err(e.to_string())),
                    },
                    Query::Volumes => match engine.submit(Command::VolumeList).await {
                        Ok(Reply::Volumes(v)) => Msg::Volumes(Ok(v)),
                        Ok(other) => Msg::Volumes(Err(format!("unexpected reply {other:?}"))),
                        Err(e) => Msg::Volumes(Err(e.to_string())),
                    },
                    Query::Audit => match engine.submit(Command::AuditLog { limit: 500 }).await {
                        Ok(Reply::Audit(v)) => Msg::Audit(Ok(v)),
                        Ok(other) => Msg::Audit(Err(format!("unexpected reply {other:?}"))),
                        Err(e) => Msg::Audit(Err(e.to_string())),
                    },
                })
            }),
            Effect::Submit(job) => self.spawn(async move {
                let caller = Caller {
                    confirmed: job.confirmed,
                    ..Caller::current()
                };
                let result = match engine.submit_as(&caller, job.cmd.clone()).await {
                    Ok(Reply::ContainerId(id)) => Ok(Some(id)),
                    Ok(_) => Ok(None),
                    Err(e) => Err(job_error(e)),
                };
                Some(Msg::Done { job, result })
            }),
            Effect::OpenLogs(id) => {
                if let Some(h) = self.logs.take() {
                    h.abort();
                }
                let tx = self.tx.clone();
                self.logs = Some(tokio::spawn(async move {
                    let options = LogOptions {
                        follow: true,
                        tail: Some(5000),
                        stdout: true,
                        stderr: true,
                        ..Default::default()
                    };
                    match engine
                        .submit(Command::ContainerLogs {
                            id: id.clone(),
                            options,
                        })
                        .await
                    {
                        Ok(Reply::Logs(mut rx)) => {
                            while let Some(line) = rx.recv().await {
                                if tx
                                    .send(Msg::LogLine {
                                        id: id.clone(),
                                        line,
                                    })
                                    .is_err()
                                {
                                    return;
                                }
                            }
                            let _ = tx.send(Msg::LogEnd { id, error: None });
                        }
                        Ok(_) => {}
                        Err(e) => {
                            let _ = tx.send(Msg::LogEnd {
                                id,
                                error: Some(e.to_string()),
                            });
                        }
                    }
                }));
            }
            Effect::OpenStats(id) => {
                if let Some(h) = self.stats.take() {
                    h.abort();
                }
                let tx = self.tx.clone();
                self.stats = Some(tokio::spawn(async move {
                    match engine
                        .submit(Command::ContainerStats { id, stream: true })
                        .await
                    {
                        Ok(Reply::Stats(mut rx)) => {
                            while let Some(s) = rx.recv().await {
                                if tx.send(Msg::Stat(s)).is_err() {
                                    return;
                                }
                            }
                        }
                        Ok(_) => {}
                        Err(e) => {
                            let _ = tx.send(Msg::Inspected {
                                title: String::new(),
                                result: Err(format!("stats: {e}")),
                            });
                        }
                    }
                }));
            }
            Effect::Inspect(target) => self.spawn(async move {
                let (title, cmd) = match target {
                    app::InspectTarget::Container(id) => (
                        format!("container {}", id.short()),
                        Command::ContainerInspect { id },
                    ),
                    app::InspectTarget::Image(r) => {
                        (format!("image {r}"), Command::ImageInspect { reference: r })
                    }
                };
                let result = match engine.submit(cmd).await {
                    Ok(Reply::Json(v)) => Ok(v),
                    Ok(other) => Err(format!("unexpected reply {other:?}")),
                    Err(e) => Err(e.to_string()),
                };
                Some(Msg::Inspected { title, result })
            }),
            Effect::SaveLogs { path, text } => self.spawn(async move {
                let p = path.clone();
                let r = tokio::task::spawn_blocking(move || std::fs::write(&p, text)).await;
                Some(Msg::Saved(match r {
                    Ok(Ok(())) => Ok(path),
                    Ok(Err(e)) => Err(format!("{}: {e}", path.display())),
                    Err(e) => Err(e.to_string()),
                }))
            }),
            Effect::SetMouse(on) => {
                let _ = if on {
                    crossterm::execute!(std::io::stdout(), EnableMouseCapture)
                } else {
                    crossterm::execute!(std::io::stdout(), DisableMouseCapture)
                };
            }
            Effect::ResizeShell { target, rows, cols } => self.spawn(async move {
                let cmd = match target {
                    app::ResizeTarget::Exec(exec_id) => Command::ExecResize {
                        exec_id,
                        height: rows,
                        width: cols,
                    },
                    app::ResizeTarget::Container(id) => Command::ContainerResize {
                        id,
                        height: rows,
                        width: cols,
                    },
                };
                let _ = engine.submit(cmd).await;
                None
            }),
            Effect::PollUsage => self.spawn(async move {
                Some(Msg::Usage(
                    match engine.submit(Command::ContainerStatsAll).await {
                        Ok(Reply::StatsAll(v)) => Ok(v),
                        Ok(other) => Err(JobError::Failed(format!("unexpected reply {other:?}"))),
                        Err(e) => Err(job_error(e)),
                    },
                ))
            }),
            Effect::Attach {
                session,
                container,
                rows,
                cols,
            } => {
                let tx = self.tx.clone();
                tokio::spawn(attach(engine, tx, session, container, (rows, cols)));
            }
            Effect::OpenShell {
                session,
                container,
                rows,
                cols,
            } => {
                let tx = self.tx.clone();
                tokio::spawn(async move {
                    let ended = |exit_code, error| Msg::ShellEnded {
                        session,
                        exit_code,
                        error,
                    };
                    let config = berth::api::ExecConfig {
                        container,
                        cmd: vec!["sh".into()],
                        env: vec!["TERM=xterm-256color".into()],
                        tty: true,
                        stdin: true,
                        ..Default::default()
                    };
                    let exec_id = match engine
                        .submit(Command::ExecCreate {
                            config: Box::new(config),
                        })
                        .await
                    {
                        Ok(Reply::ExecId(id)) => id,
                        Ok(_) => return,
                        Err(e) => {
                            let _ = tx.send(ended(None, Some(e.to_string())));
                            return;
                        }
                    };
                    let start = Command::ExecStart {
                        exec_id: exec_id.clone(),
                        detach: false,
                        console_size: Some((rows, cols)),
                    };
                    let session_io = match engine.submit(start).await {
                        Ok(Reply::Io(s)) => s,
                        Ok(_) => return,
                        Err(e) => {
                            let _ = tx.send(ended(None, Some(e.to_string())));
                            return;
                        }
                    };
                    let berth::api::IoSession {
                        stdin, mut output, ..
                    } = session_io;
                    if let Some(input) = stdin {
                        let _ = tx.send(Msg::ShellStarted {
                            session,
                            resize: Some(app::ResizeTarget::Exec(exec_id.clone())),
                            input: Some(input),
                        });
                    }
                    while let Some(chunk) = output.recv().await {
                        if tx
                            .send(Msg::ShellOutput {
                                session,
                                data: chunk.data,
                            })
                            .is_err()
                        {
                            return;
                        }
                    }
                    let code = match engine.submit(Command::ExecInspect { exec_id }).await {
                        Ok(Reply::Exec(info)) => info.exit_code,
                        _ => None,
                    };
                    let _ = tx.send(ended(code, None));
                });
            }
        }
    }
}

/// Attach to a container's own stdio, as `docker attach` does: with a TTY, keys go to it and its
/// screen comes back (sized to the pane); without one, its output is shown and nothing is sent,
/// so detaching can never close the stdin of a container that keeps it open. Detaching drops
/// the connection only; the container keeps running.
async fn attach(
    engine: Engine,
    tx: mpsc::UnboundedSender<Msg>,
    session: u32,
    container: berth::api::ContainerId,
    (rows, cols): (u16, u16),
) {
    let ended = |exit_code, error| Msg::ShellEnded {
        session,
        exit_code,
        error,
    };
    // Whether it has a TTY decides whether stdin is attached at all.
    let tty = match engine
        .submit(Command::ContainerInspect {
            id: container.clone(),
        })
        .await
    {
        Ok(Reply::Json(v)) => v["Config"]["Tty"].as_bool().unwrap_or(false),
        Ok(_) => false,
        Err(e) => {
            let _ = tx.send(ended(None, Some(e.to_string())));
            return;
        }
    };
    let io = match engine
        .submit(Command::ContainerAttach {
            id: container.clone(),
            stdin: tty,
        })
        .await
    {
        Ok(Reply::Io(io)) => io,
        Ok(other) => {
            let _ = tx.send(ended(None, Some(format!("unexpected reply {other:?}"))));
            return;
        }
        Err(e) => {
            let _ = tx.send(ended(None, Some(e.to_string())));
            return;
        }
    };
    let berth::api::IoSession {
        stdin,
        mut output,
        tty,
    } = io;
    if tty {
        let _ = engine
            .submit(Command::ContainerResize {
                id: container.clone(),
                height: rows,
                width: cols,
            })
            .await;
    }
    let _ = tx.send(Msg::ShellStarted {
        session,
        resize: tty.then(|| app::ResizeTarget::Container(container.clone())),
        input: if tty { stdin } else { None },
    });
    while let Some(chunk) = output.recv().await {
        // Without a TTY nothing turns "\n" into "\r\n" on the way: do it for the screen.
        let data = if tty {
            chunk.data
        } else {
            bytes::Bytes::from(
                String::from_utf8_lossy(&chunk.data)
                    .replace('\n', "\r\n")
                    .into_bytes(),
            )
        };
        if tx.send(Msg::ShellOutput { session, data }).is_err() {
            return;
        }
    }
    // The output ends when the container's process has exited.
    let code = match engine
        .submit(Command::ContainerInspect { id: container })
        .await
    {
        Ok(Reply::Json(v)) if v["State"]["Running"] == false => {
            v["State"]["ExitCode"].as_i64().map(|c| c as i32)
        }
        _ => None,
    };
    let _ = tx.send(Msg::ShellEnded {
        session,
        exit_code: code,
        error: None,
    });
}

async fn event_loop(
    terminal: &mut ratatui::DefaultTerminal,
    engine: Engine,
    label: String,
    config: config::Config,
) -> color_eyre::Result<()> {
    let mut theme = Theme::from_env();
    if let Some(c) = config.color {
        theme.color = c && theme.color;
    }
    let (tx, mut replies) = mpsc::unbounded_channel::<Msg>();
    let mut keys = EventStream::new();
    let mut events = engine.subscribe()?;
    // An embedded engine cleans up what crashed berth processes left, in the background; what
    // it removed arrives as an event (a remote engine's server did so when it started).
    let _ = engine.repair_crash_debris();
    let size = terminal.size()?;
    let mut app = App::new(label, config.keymap, size.width, size.height);
    let mut effects = Effects {
        engine,
        tx,
        logs: None,
        stats: None,
        listing: false,
        relist: false,
    };
    for e in App::initial_effects() {
        effects.run(e);
    }
    let mut frame_log = FrameLog::from_env();
    let mut redraw = true;
    // When the containers pane last asked for CPU/memory samples.
    let mut last_usage: Option<tokio::time::Instant> = None;
    // A big list leaves the allocator holding the pages of the list before it and of its
    // parse: once the console has been quiet for a moment after one, they go back to the
    // kernel (1.7 MB of an idle console's 18 MB with 1,000 containers).
    let mut trim_at: Option<tokio::time::Instant> = None;
    loop {
        if redraw {
            app.now = unix_now();
            let began = std::time::Instant::now();
            terminal.draw(|f| f.render_widget(View { app: &app, theme }, f.area()))?;
            if let Some(log) = &mut frame_log {
                log.record(began.elapsed());
            }
            redraw = false;
        }
        // The sampling timer runs only while the pane shows running containers; otherwise the
        // loop sleeps until a key or an event.
        let usage_at = app
            .wants_usage()
            .then(|| last_usage.map_or_else(tokio::time::Instant::now, |t| t + USAGE_EVERY));
        let first = tokio::select! {
            () = async {
                match trim_at {
                    Some(t) => tokio::time::sleep_until(t).await,
                    None => std::future::pending().await,
                }
            } => {
                trim_at = None;
                berth::runtime::sys::release_free_memory();
                None
            },
            () = async {
                match usage_at {
                    Some(t) => tokio::time::sleep_until(t).await,
                    None => std::future::pending().await,
                }
            } => {
                last_usage = Some(tokio::time::Instant::now());
                Some(Msg::UsageTick)
            },
            key = keys.next() => match key {
                Some(Ok(ev)) => term_msg(ev),
                Some(Err(e)) => return Err(e.into()),
                None => break,
            },
            ev = events.recv() => match ev {
                Ok(rec) => Some(Msg::Engine(Box::new(rec))),
                Err(broadcast::error::RecvError::Lagged(n)) => Some(Msg::Lagged(n)),
                Err(broadcast::error::RecvError::Closed) => break,
            },
            Some(msg) = replies.recv() => Some(msg),
        };
        // Drain whatever else is already queued, then draw once.
        let mut batch: Vec<Msg> = first.into_iter().collect();
        loop {
            match events.try_recv() {
                Ok(rec) => batch.push(Msg::Engine(Box::new(rec))),
                Err(broadcast::error::TryRecvError::Lagged(n)) => batch.push(Msg::Lagged(n)),
                Err(_) => break,
            }
        }
        while let Ok(m) = replies.try_recv() {
            batch.push(m);
        }
        let mut todo: Vec<Effect> = Vec::new();
        let mut listed = false;
        for msg in batch {
            listed |= matches!(msg, Msg::Containers(_));
            if matches!(&msg, Msg::Containers(Ok(l)) if l.len() >= TRIM_AFTER_LIST_OF) {
                trim_at = Some(tokio::time::Instant::now() + TRIM_WHEN_QUIET_FOR);
            }
            let out = app.update(msg);
            redraw |= out.redraw;
            for e in out.effects {
                // Refreshes asked for twice in one batch run once; everything else runs as asked.
                if !(matches!(e, Effect::Query(_)) && todo.contains(&e)) {
                    todo.push(e);
                }
            }
        }
        if listed {
            effects.listed();
        }
        for e in todo {
            effects.run(e);
        }
        if app.quit {
            break;
        }
    }
    Ok(())
}

/// Lists at least this long are followed by returning free memory to the kernel, ...
const TRIM_AFTER_LIST_OF: usize = 100;
/// ... once no other big list has come for this long.
const TRIM_WHEN_QUIET_FOR: std::time::Duration = std::time::Duration::from_secs(1);

/// Per-frame draw times, when `BERTH_FRAME_LOG` names a file (see the module docs).
struct FrameLog(std::fs::File);

impl FrameLog {
    fn from_env() -> Option<Self> {
        let path = std::env::var_os("BERTH_FRAME_LOG").filter(|p| !p.is_empty())?;
        std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .ok()
            .map(Self)
    }

    /// One line per frame, written at once (a reader sees whole lines as they happen).
    fn record(&mut self, took: std::time::Duration) {
        use std::io::Write;
        let _ = self
            .0
            .write_all(format!("{}\n", took.as_micros()).as_bytes());
    }
}

fn term_msg(ev: TermEvent) -> Option<Msg> {
    match ev {
        TermEvent::Key(k) if k.kind != KeyEventKind::Release => Some(Msg::Key(k)),
        TermEvent::Resize(width, height) => Some(Msg::Resize { width, height }),
        TermEvent::Mouse(m) => match m.kind {
            MouseEventKind::ScrollDown => {
                Some(Msg::Key(KeyEvent::new(KeyCode::Down, KeyModifiers::NONE)))
            }
            MouseEventKind::ScrollUp => {
                Some(Msg::Key(KeyEvent::new(KeyCode::Up, KeyModifiers::NONE)))
            }
            _ => None,
        },
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Container lists asked for while one is on its way become one more list once it
    /// arrives, not one each (an event storm asked for hundreds).
    #[tokio::test]
    async fn one_container_list_at_a_time_and_one_more_for_those_asked_meanwhile() {
        let dir = tempfile::tempdir().unwrap();
        let engine = Engine::open(berth::api::EngineOptions {
            root: Some(dir.path().join("root")),
            policy: None,
        })
        .unwrap();
        let (tx, mut rx) = mpsc::unbounded_channel();
        let mut effects = Effects {
            engine,
            tx,
            logs: None,
            stats: None,
            listing: false,
            relist: false,
        };
        for _ in 0..5 {
            effects.run(Effect::Query(Query::Containers));
        }
        assert!(matches!(rx.recv().await, Some(Msg::Containers(Ok(_)))));
        effects.listed();
        assert!(matches!(rx.recv().await, Some(Msg::Containers(Ok(_)))));
        effects.listed();
        assert!(!effects.listing, "nothing more was asked for");
        assert!(rx.try_recv().is_err(), "five asks, two lists");
    }
}
