//! Change notification without polling: inotify on the state files the monitors write
//! (atomically, by rename), so the console learns of exits, OOM kills and restarts that
//! monitors cause on their own.
//!
//! [`Watcher`] is a blocking iterator; for tokio, wrap its fd in `AsyncFd` and call
//! [`Watcher::read_changes`] when readable, or use [`Watcher::into_channel`].

use std::collections::{HashMap, VecDeque};
use std::ffi::OsStr;
use std::os::fd::{AsFd, BorrowedFd};
use std::path::{Path, PathBuf};

use nix::sys::inotify::{AddWatchFlags, InitFlags, Inotify, WatchDescriptor};

use super::error::{IoContext, Result, RuntimeError};
use super::state::{ContainerDir, ContainerId, State};

/// A container's new state, or `None` when it was removed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Change {
    pub id: ContainerId,
    pub state: Option<State>,
}

pub struct Watcher {
    ino: Inotify,
    root: PathBuf,
    root_wd: WatchDescriptor,
    dirs: HashMap<WatchDescriptor, ContainerId>,
    seen: HashMap<ContainerId, u64>,
    pending: VecDeque<Change>,
}

impl Watcher {
    pub fn new(root: &Path) -> Result<Watcher> {
        Self::with_flags(root, InitFlags::IN_CLOEXEC)
    }

    /// Non-blocking variant, for `tokio::io::unix::AsyncFd`.
    pub fn new_nonblocking(root: &Path) -> Result<Watcher> {
        Self::with_flags(root, InitFlags::IN_CLOEXEC | InitFlags::IN_NONBLOCK)
    }

    fn with_flags(root: &Path, flags: InitFlags) -> Result<Watcher> {
        let ino = Inotify::init(flags)
            .map_err(|e| RuntimeError::sys("inotify_init", std::io::Error::from(e)))?;
        let c = root.join("containers");
        std::fs::create_dir_all(&c).ctx("mkdir", &c)?;
        let root_wd = ino
            .add_watch(
                &c,
                AddWatchFlags::IN_CREATE
                    | AddWatchFlags::IN_DELETE
                    | AddWatchFlags::IN_MOVED_TO
                    | AddWatchFlags::IN_MOVED_FROM
                    | AddWatchFlags::IN_ONLYDIR,
            )
            .ctx("inotify watch", &c)?;
        let mut w = Watcher {
            ino,
            root: root.to_path_buf(),
            root_wd,
            dirs: HashMap::new(),
            seen: HashMap::new(),
            pending: VecDeque::new(),
        };
        for e in std::fs::read_dir(&c).ctx("read dir", &c)?.flatten() {
            if let Ok(id) = ContainerId::new(e.file_name().to_string_lossy().into_owned()) {
                w.add_dir(&id, false);
            }
        }
        Ok(w)
    }

    fn add_dir(&mut self, id: &ContainerId, emit: bool) {
        let d = ContainerDir::new(&self.root, id);
        if let Ok(wd) = self.ino.add_watch(
            &d.dir,
            AddWatchFlags::IN_MOVED_TO | AddWatchFlags::IN_ONLYDIR,
        ) {
            self.dirs.insert(wd, id.clone());
        }
        // The state may have been written before the watch existed.
        if let Ok(st) = d.read_state() {
            let newer = self.seen.get(id).is_none_or(|s| *s != st.seq);
            self.seen.insert(id.clone(), st.seq);
            if emit && newer {
                self.pending.push_back(Change {
                    id: id.clone(),
                    state: Some(st),
                });
            }
        }
    }

    fn handle(&mut self, wd: WatchDescriptor, mask: AddWatchFlags, name: Option<&OsStr>) {
        if wd == self.root_wd {
            let Some(id) =
                name.and_then(|n| ContainerId::new(n.to_string_lossy().into_owned()).ok())
            else {
                return;
            };
            if mask.intersects(AddWatchFlags::IN_CREATE | AddWatchFlags::IN_MOVED_TO) {
                self.add_dir(&id, true);
            } else if mask.intersects(AddWatchFlags::IN_DELETE | AddWatchFlags::IN_MOVED_FROM) {
                self.dirs.retain(|_, v| *v != id);
                if self.seen.remove(&id).is_some() {
                    self.pending.push_back(Change { id, state: None });
                }
            }
            return;
        }
        if name != Some(OsStr::new("state.json")) {
            return;
        }
        let Some(id) = self.dirs.get(&wd).cloned() else {
            return;
        };
        if let Ok(st) = ContainerDir::new(&self.root, &id).read_state()
            && self.seen.get(&id) != Some(&st.seq)
        {
            self.seen.insert(id.clone(), st.seq);
            self.pending.push_back(Change {
                id,
                state: Some(st),
            });
        }
    }

    /// Read whatever events are available (blocks unless non-blocking) and return the changes.
    pub fn read_changes(&mut self) -> Result<Vec<Change>> {
        match self.ino.read_events() {
            Ok(evs) => {
                for e in evs {
                    self.handle(e.wd, e.mask, e.name.as_deref());
                }
            }
            Err(nix::errno::Errno::EAGAIN) => {}
            Err(e) => return Err(RuntimeError::sys("inotify read", std::io::Error::from(e))),
        }
        Ok(self.pending.drain(..).collect())
    }

    /// Feed changes into a tokio channel from a dedicated thread.
    pub fn into_channel(mut self) -> tokio::sync::mpsc::UnboundedReceiver<Result<Change>> {
        let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
        std::thread::Builder::new()
            .name("berth-watch".into())
            .spawn(move || {
                loop {
                    match self.read_changes() {
                        Ok(cs) => {
                            for c in cs {
                                if tx.send(Ok(c)).is_err() {
                                    return;
                                }
                            }
                        }
                        Err(e) => {
                            let _ = tx.send(Err(e));
                            return;
                        }
                    }
                }
            })
            .expect("spawn watch thread");
        rx
    }
}

impl AsFd for Watcher {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.ino.as_fd()
    }
}

impl Iterator for Watcher {
    type Item = Result<Change>;
    fn next(&mut self) -> Option<Self::Item> {
        loop {
            if let Some(c) = self.pending.pop_front() {
                return Some(Ok(c));
            }
            if let Err(e) = self.read_changes().map(|cs| self.pending.extend(cs)) {
                return Some(Err(e));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::runtime::state::{Status, now_rfc3339};

    fn state(id: &ContainerId, status: Status) -> State {
        State {
            oci_version: "1.2.0".into(),
            id: id.clone(),
            status,
            pid: 0,
            pid_start_time: 0,
            bundle: "/b".into(),
            annotations: Default::default(),
            created: now_rfc3339(),
            started: None,
            finished: None,
            exit_code: None,
            oom_killed: false,
            restart_count: 0,
            monitor_pid: None,
            cgroup: "berth/x".into(),
            terminal: false,
            error: None,
            stopped_by_user: false,
            seq: 0,
        }
    }

    #[test]
    fn sees_creation_updates_and_removal() {
        let t = tempfile::tempdir().unwrap();
        let mut w = Watcher::new_nonblocking(t.path()).unwrap();
        assert!(w.read_changes().unwrap().is_empty());
        let id = ContainerId::new("w1").unwrap();
        let d = ContainerDir::new(t.path(), &id);
        std::fs::create_dir(&d.dir).unwrap();
        let mut st = state(&id, Status::Created);
        d.write_state(&mut st).unwrap();
        let mut got = w.read_changes().unwrap();
        // The directory event may arrive before the state file: read again if needed.
        if got.is_empty() {
            got = w.read_changes().unwrap();
        }
        assert_eq!(
            got.last().unwrap().state.as_ref().unwrap().status,
            Status::Created
        );
        st.status = Status::Stopped;
        st.exit_code = Some(3);
        d.write_state(&mut st).unwrap();
        let got = w.read_changes().unwrap();
        assert_eq!(got.len(), 1);
        assert_eq!(got[0].state.as_ref().unwrap().exit_code, Some(3));
        std::fs::remove_dir_all(&d.dir).unwrap();
        let got = w.read_changes().unwrap();
        assert_eq!(got, vec![Change { id, state: None }]);
    }
}
