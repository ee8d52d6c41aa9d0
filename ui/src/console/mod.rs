//! The terminal console: one loop, one `select!` over keys, engine events and replies; drain
//! everything queued, then draw once, and only when something changed.

mod app;
pub mod keys;
mod theme;
pub mod view;

pub use app::{App, Msg, Query};
pub use theme::Theme;
pub use view::View;

use berth::api::{Engine, Reply};
use crossterm::event::{Event as TermEvent, EventStream, KeyEventKind};
use futures_util::StreamExt;
use tokio::sync::{broadcast, mpsc};

/// Run the console on an engine until the user quits. The terminal is restored on every exit
/// path: normal return, error, and panic (ratatui's hook).
pub async fn run(engine: Engine, label: String) -> color_eyre::Result<()> {
    let mut terminal = ratatui::init();
    let result = event_loop(&mut terminal, engine, label).await;
    ratatui::restore();
    result
}

fn unix_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}

/// Ask the engine for a list without blocking the loop; the answer comes back as a `Msg`.
fn spawn_query(engine: &Engine, q: Query, show_all: bool, tx: &mpsc::UnboundedSender<Msg>) {
    let engine = engine.clone();
    let tx = tx.clone();
    tokio::spawn(async move {
        let reply = engine.submit(q.command(show_all)).await;
        let msg = match (q, reply) {
            (Query::Containers, Ok(Reply::Containers(v))) => Msg::Containers(Ok(v)),
            (Query::Images, Ok(Reply::Images(v))) => Msg::Images(Ok(v)),
            (Query::Containers, Err(e)) => Msg::Containers(Err(e.to_string())),
            (Query::Images, Err(e)) => Msg::Images(Err(e.to_string())),
            (_, Ok(other)) => Msg::Containers(Err(format!("unexpected reply {other:?}"))),
        };
        let _ = tx.send(msg);
    });
}

async fn event_loop(
    terminal: &mut ratatui::DefaultTerminal,
    engine: Engine,
    label: String,
) -> color_eyre::Result<()> {
    let theme = Theme::from_env();
    let (tx, mut replies) = mpsc::unbounded_channel::<Msg>();
    let mut keys = EventStream::new();
    let mut events = engine.subscribe()?;
    let size = terminal.size()?;
    let mut app = App::new(label, size.width, size.height);
    for q in App::initial_queries() {
        spawn_query(&engine, q, app.show_all, &tx);
    }
    let mut redraw = true;
    loop {
        if redraw {
            app.now = unix_now();
            terminal.draw(|f| f.render_widget(View { app: &app, theme }, f.area()))?;
            redraw = false;
        }
        let first = tokio::select! {
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
        let mut queries = Vec::new();
        for msg in batch {
            let out = app.update(msg);
            redraw |= out.redraw;
            for q in out.queries {
                if !queries.contains(&q) {
                    queries.push(q);
                }
            }
        }
        for q in queries {
            spawn_query(&engine, q, app.show_all, &tx);
        }
        if app.quit {
            break;
        }
    }
    Ok(())
}

fn term_msg(ev: TermEvent) -> Option<Msg> {
    match ev {
        TermEvent::Key(k) if k.kind != KeyEventKind::Release => Some(Msg::Key(k)),
        TermEvent::Resize(width, height) => Some(Msg::Resize { width, height }),
        _ => None,
    }
}
