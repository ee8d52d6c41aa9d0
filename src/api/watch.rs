//! Container lifecycle events from the runtime's state files.
//!
//! Every berth process that has subscribers watches the containers' state files (inotify,
//! through the runtime's `Watcher`). One of them at a time — the holder of an exclusive `flock`
//! on `watch.lock` — turns each change into events and publishes them to the shared journal;
//! the others receive them from the journal like any other event, so nothing arrives twice, and
//! `berth serve` can replay them (`docker events --since`). When the leader exits, its lock is
//! released and the next watcher to see a change takes over. A container that exits while no
//! command is running (its monitor records the exit) is reported all the same.

use super::event::Event;
use super::events::EventBus;
use super::handlers::container::{Record, api_state};
use super::types::{ContainerId, ContainerState};
use crate::runtime::{Runtime, State};
use nix::fcntl::{Flock, FlockArg};
use std::collections::HashMap;
use std::fs::File;

/// Start the watcher thread. Failure to watch is reported as an event, not fatal.
pub(crate) fn spawn(runtime: Runtime, bus: EventBus) {
    let started = std::thread::Builder::new()
        .name("berth-watch".into())
        .spawn(move || {
            let report = |e: &dyn std::fmt::Display| {
                bus.publish_local(Event::Error {
                    context: "watching containers".into(),
                    message: e.to_string(),
                })
            };
            let mut watcher = match runtime.watch() {
                Ok(w) => w,
                Err(e) => return report(&e),
            };
            let mut last: HashMap<String, (ContainerState, u32)> = runtime
                .list()
                .unwrap_or_default()
                .iter()
                .map(|st| (st.id.as_str().to_owned(), (api_state(st), st.restart_count)))
                .collect();
            let lock_path = runtime.root().join("watch.lock");
            let mut leader: Option<Flock<File>> = None;
            loop {
                let changes = match watcher.read_changes() {
                    Ok(c) => c,
                    Err(e) => return report(&e),
                };
                if leader.is_none() {
                    leader = File::options()
                        .create(true)
                        .truncate(false)
                        .write(true)
                        .open(&lock_path)
                        .ok()
                        .and_then(|f| Flock::lock(f, FlockArg::LockExclusiveNonblock).ok());
                }
                let mut events = Vec::new();
                for change in changes {
                    let key = change.id.as_str().to_owned();
                    let id = ContainerId(key.clone());
                    match change.state {
                        None => {
                            if let Some((was, _)) = last.remove(&key) {
                                // A fast auto-removed container can be gone before its stopped
                                // state was read: its exit comes from its monitor's record.
                                let info = runtime.exit_record(&change.id);
                                // (created and removed without ever running: no exit to tell)
                                if was.is_alive()
                                    || (was == ContainerState::Created && info.is_some())
                                {
                                    events.push(Event::ContainerExited {
                                        id: id.clone(),
                                        exit_code: info.map_or(-1, |i| i.exit_code),
                                        oom_killed: info.is_some_and(|i| i.oom_killed),
                                    });
                                }
                                events.push(Event::ContainerRemoved { id });
                            }
                        }
                        Some(st) => {
                            let now = (api_state(&st), st.restart_count);
                            let before = last.insert(key, now);
                            events.extend(transition(&runtime, &st, before, now, id));
                        }
                    }
                }
                // Followers keep their `last` map current (to lead well later) but publish nothing.
                if leader.is_some() {
                    for e in events {
                        bus.publish(e);
                    }
                }
            }
        });
    if let Err(e) = started {
        eprintln!("berth: cannot start the container watcher: {e}");
    }
}

/// The events a state change means.
fn transition(
    runtime: &Runtime,
    st: &State,
    before: Option<(ContainerState, u32)>,
    now: (ContainerState, u32),
    id: ContainerId,
) -> Vec<Event> {
    use ContainerState as S;
    let mut out = Vec::new();
    if before.is_none() {
        let rec: Option<Record> = runtime
            .record(&st.id)
            .ok()
            .and_then(|v| serde_json::from_value(v).ok());
        out.push(Event::ContainerCreated {
            id: id.clone(),
            name: rec.as_ref().map(|r| r.name.clone()).unwrap_or_default(),
            image: rec.map(|r| r.image).unwrap_or_default(),
        });
    }
    let prev = before.map(|b| b.0).unwrap_or(S::Created);
    match (prev, now.0) {
        (a, b) if a == b && before.map(|b| b.1) == Some(now.1) => {}
        (S::Paused, S::Running) => out.push(Event::ContainerUnpaused { id }),
        (_, S::Paused) => out.push(Event::ContainerPaused { id }),
        (_, S::Running) => out.push(Event::ContainerStarted { id }),
        (_, S::Restarting) => out.push(Event::ContainerRestarting { id }),
        (_, S::Exited | S::Dead) => out.push(Event::ContainerExited {
            id,
            exit_code: st.exit_code.unwrap_or(-1),
            oom_killed: st.oom_killed,
        }),
        (_, S::Created) => {}
    }
    out
}
