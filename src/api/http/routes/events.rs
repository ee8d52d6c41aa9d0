//! `GET /events`: the engine's events as Docker's, filtered, with `since` replayed from the
//! journal and `until` ending the stream.

use super::{AppState, Params};
use crate::api::dispatch::Caller;
use crate::api::http::docker::event::{EVENT_FILTERS, Names, docker_events, event_matches};
use crate::api::http::docker::{Filters, now_nanos, parse_time_param};
use crate::api::http::error::{HttpError, HttpResult};
use crate::api::http::stream;
use crate::api::{Command, EventRecord, Reply};
use axum::Extension;
use axum::extract::State;
use axum::response::Response;
use serde_json::Value;
use std::collections::HashSet;
use std::io::BufRead;
use std::path::Path;
use tokio::sync::{broadcast, mpsc};

pub(super) async fn events(
    State(st): State<AppState>,
    Extension(caller): Extension<Caller>,
    q: Params,
) -> HttpResult<Response> {
    let filters = q.filters()?;
    filters
        .only(EVENT_FILTERS)
        .map_err(HttpError::bad_request)?;
    let since = q
        .get("since")
        .filter(|s| !s.is_empty())
        .map(parse_time_param)
        .transpose()
        .map_err(HttpError::bad_request)?;
    let until = q
        .get("until")
        .filter(|s| !s.is_empty())
        .map(parse_time_param)
        .transpose()
        .map_err(HttpError::bad_request)?;
    // The engine has no command for following events, so none the policy could decide on:
    // whoever may read the engine's facts may follow its events (and a refusal says why).
    st.submit(&caller, Command::SystemInfo).await?;
    let live = st
        .engine
        .subscribe()
        .map_err(|e| HttpError::from(crate::api::ApiError::engine("following events", e)))?;
    // Names and images of existing containers, for the attributes of their events — when the
    // caller may list them. Asked of the policy directly first, so a caller who may not does
    // not get an audited refusal of a list they never asked for.
    let mut names = Names::default();
    // (A server always runs an embedded engine: it has a policy and a root.)
    let may_list = st.engine.policy().is_some_and(|p| {
        p.decide(
            &caller.subject,
            &crate::security::Request {
                action: "container.list".into(),
                ..Default::default()
            },
        )
        .verdict
            == crate::security::Verdict::Allow
    });
    if may_list
        && let Ok(Reply::Containers(list)) = st
            .submit(&caller, Command::ContainerList { all: true })
            .await
    {
        names.seed(&list);
    }
    let journal = st.engine.root().map(|r| r.events_path()).ok_or_else(|| {
        HttpError::from(crate::api::ApiError::engine(
            "following events",
            "no local journal",
        ))
    })?;
    let (tx, rx) = mpsc::channel::<Value>(64);
    tokio::spawn(async move {
        let mut ctx = Feed { tx, names, filters };
        let mut replayed = HashSet::new();
        if let Some(since) = since {
            let past = tokio::task::spawn_blocking(move || read_journal(&journal, since, until))
                .await
                .unwrap_or_default();
            for rec in past {
                replayed.insert((rec.origin.clone(), rec.time));
                if !ctx.send(&rec).await {
                    return;
                }
            }
        }
        if until.is_some_and(|u| u <= now_nanos()) {
            return;
        }
        follow(ctx, live, replayed, until).await;
    });
    Ok(stream::json_lines(stream::from_receiver(rx)))
}

struct Feed {
    tx: mpsc::Sender<Value>,
    names: Names,
    filters: Filters,
}

impl Feed {
    /// Send the Docker events of one record that pass the filters; false once the client is gone.
    async fn send(&mut self, rec: &EventRecord) -> bool {
        for ev in docker_events(rec, &mut self.names) {
            if event_matches(&ev, &self.filters) && self.tx.send(ev).await.is_err() {
                return false;
            }
        }
        true
    }
}

async fn follow(
    mut ctx: Feed,
    mut live: broadcast::Receiver<EventRecord>,
    replayed: HashSet<(String, i64)>,
    until: Option<i64>,
) {
    let deadline = until.map(|u| {
        let wait = u.saturating_sub(now_nanos()).max(0) as u64;
        tokio::time::Instant::now() + std::time::Duration::from_nanos(wait)
    });
    loop {
        let rec = tokio::select! {
            _ = ctx.tx.closed() => return,
            _ = async { tokio::time::sleep_until(deadline.unwrap()).await }, if deadline.is_some() => return,
            rec = live.recv() => rec,
        };
        match rec {
            Ok(rec) => {
                if replayed.contains(&(rec.origin.clone(), rec.time)) {
                    continue;
                }
                if !ctx.send(&rec).await {
                    return;
                }
            }
            // A slow client lost some events; Docker's stream has no way to say so.
            Err(broadcast::error::RecvError::Lagged(_)) => continue,
            Err(broadcast::error::RecvError::Closed) => return,
        }
    }
}

/// Journaled events in `[since, until]`, oldest first, from the rotated file and the current one.
fn read_journal(path: &Path, since: i64, until: Option<i64>) -> Vec<EventRecord> {
    let mut out = Vec::new();
    for p in [path.with_extension("jsonl.1"), path.to_owned()] {
        let Ok(f) = std::fs::File::open(&p) else {
            continue;
        };
        for line in std::io::BufReader::new(f).lines() {
            let Ok(line) = line else { break };
            if let Ok(rec) = serde_json::from_str::<EventRecord>(&line)
                && rec.time >= since
                && until.is_none_or(|u| rec.time <= u)
            {
                out.push(rec);
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::Event;

    #[test]
    fn the_journal_is_replayed_between_since_and_until() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("events.jsonl");
        let line = |t: i64, id: &str| {
            serde_json::to_string(&EventRecord {
                time: t,
                origin: "o".into(),
                event: Event::ContainerStarted { id: id.into() },
            })
            .unwrap()
        };
        std::fs::write(
            path.with_extension("jsonl.1"),
            format!("{}\n", line(10, "a")),
        )
        .unwrap();
        std::fs::write(
            &path,
            format!(
                "{}\nnot json\n{}\n{}\n",
                line(20, "b"),
                line(30, "c"),
                line(40, "d")
            ),
        )
        .unwrap();
        let ids = |v: Vec<EventRecord>| {
            v.into_iter()
                .map(|r| r.event.container().unwrap().0.clone())
                .collect::<Vec<_>>()
        };
        assert_eq!(ids(read_journal(&path, 0, None)), ["a", "b", "c", "d"]);
        assert_eq!(ids(read_journal(&path, 20, Some(30))), ["b", "c"]);
    }
}
