//! The event bus: local subscribers get every event at once; journaled events are also
//! appended to `root/events.jsonl`, which every berth process on the root follows with inotify,
//! so a console sees what a one-shot command or `berth serve` did, without polling.

use super::event::{Event, EventRecord};
use nix::sys::inotify::{AddWatchFlags, InitFlags, Inotify};
use std::fs::{File, OpenOptions};
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, OnceLock};
use tokio::sync::broadcast;

/// How many events a slow subscriber may fall behind before it loses some (it is told so).
const CHANNEL_CAPACITY: usize = 4096;
/// The journal is moved aside to `events.jsonl.1` once it grows past this.
const JOURNAL_MAX_BYTES: u64 = 16 << 20;

/// Publishes events to this process's subscribers and to the shared journal.
#[derive(Clone)]
pub struct EventBus {
    inner: Arc<Inner>,
}

struct Inner {
    origin: String,
    journal: PathBuf,
    tx: broadcast::Sender<EventRecord>,
    /// Serialises this process's journal appends and rotations.
    write_lock: Mutex<()>,
    follower: OnceLock<io::Result<()>>,
}

fn now_nanos() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as i64)
}

impl EventBus {
    pub fn new(journal: impl Into<PathBuf>) -> Self {
        let (tx, _) = broadcast::channel(CHANNEL_CAPACITY);
        Self {
            inner: Arc::new(Inner {
                origin: format!("{}.{:08x}", std::process::id(), rand::random::<u32>()),
                journal: journal.into(),
                tx,
                write_lock: Mutex::new(()),
                follower: OnceLock::new(),
            }),
        }
    }

    /// This engine instance's origin tag.
    pub fn origin(&self) -> &str {
        &self.inner.origin
    }

    /// Publish an event: to local subscribers, and to the journal when it is journaled.
    /// A journal write failure is reported as an `Error` event, never lost silently.
    pub fn publish(&self, event: Event) {
        let record = EventRecord {
            time: now_nanos(),
            origin: self.inner.origin.clone(),
            event,
        };
        if record.event.is_journaled()
            && let Err(e) = self.append(&record)
        {
            let _ = self.inner.tx.send(EventRecord {
                time: record.time,
                origin: record.origin.clone(),
                event: Event::Error {
                    context: format!("writing {}", self.inner.journal.display()),
                    message: e.to_string(),
                },
            });
        }
        let _ = self.inner.tx.send(record);
    }

    /// Publish to this process's subscribers only, whatever the event. For events every berth
    /// process derives by itself (container lifecycle, from the runtime's state files).
    pub fn publish_local(&self, event: Event) {
        let _ = self.inner.tx.send(EventRecord {
            time: now_nanos(),
            origin: self.inner.origin.clone(),
            event,
        });
    }

    fn append(&self, record: &EventRecord) -> io::Result<()> {
        let mut line = serde_json::to_vec(record).map_err(io::Error::other)?;
        line.push(b'\n');
        let _guard = self
            .inner
            .write_lock
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        let mut f = open_append(&self.inner.journal)?;
        if f.metadata()?.len() > JOURNAL_MAX_BYTES {
            let _ = std::fs::rename(
                &self.inner.journal,
                self.inner.journal.with_extension("jsonl.1"),
            );
            f = open_append(&self.inner.journal)?;
        }
        // One write(2) on an O_APPEND descriptor: lines from several processes never interleave.
        f.write_all(&line)
    }

    /// Subscribe to every event from now on: this process's and, once the journal follower is
    /// running (started here on first use), other processes'.
    pub fn subscribe(&self) -> io::Result<broadcast::Receiver<EventRecord>> {
        let rx = self.inner.tx.subscribe();
        self.start_follower()?;
        Ok(rx)
    }

    fn start_follower(&self) -> io::Result<()> {
        let started = self.inner.follower.get_or_init(|| {
            let follower = Follower::new(&self.inner.journal)?;
            let inner = Arc::downgrade(&self.inner);
            std::thread::Builder::new()
                .name("berth-events".into())
                .spawn(move || follower.run(inner))?;
            Ok(())
        });
        match started {
            Ok(()) => Ok(()),
            Err(e) => Err(io::Error::new(e.kind(), e.to_string())),
        }
    }
}

fn open_append(path: &Path) -> io::Result<File> {
    OpenOptions::new()
        .create(true)
        .append(true)
        .mode(0o600)
        .open(path)
}

/// Tails the journal: reads what other processes append, reopening after a rotation.
struct Follower {
    inotify: Inotify,
    path: PathBuf,
    file: File,
    inode: u64,
    pending: Vec<u8>,
}

impl Follower {
    fn new(path: &Path) -> io::Result<Self> {
        let dir = path.parent().unwrap_or(Path::new("."));
        let inotify = Inotify::init(InitFlags::IN_CLOEXEC)?;
        // Watch the directory, not the file, so a rotation (rename + new file) is seen too.
        inotify.add_watch(
            dir,
            AddWatchFlags::IN_MODIFY | AddWatchFlags::IN_CREATE | AddWatchFlags::IN_MOVED_TO,
        )?;
        // Create it if nobody has yet, so there is a file (and an inode) to follow.
        drop(open_append(path)?);
        let mut file = File::open(path)?;
        let inode = file.metadata()?.ino();
        file.seek(SeekFrom::End(0))?;
        Ok(Self {
            inotify,
            path: path.to_owned(),
            file,
            inode,
            pending: Vec::new(),
        })
    }

    fn run(mut self, inner: std::sync::Weak<Inner>) {
        let name = self.path.file_name().map(|n| n.to_owned());
        loop {
            let events = match self.inotify.read_events() {
                Ok(ev) => ev,
                Err(nix::errno::Errno::EINTR) => continue,
                Err(_) => return,
            };
            if !events.iter().any(|e| e.name.as_deref() == name.as_deref()) {
                continue;
            }
            let Some(inner) = inner.upgrade() else { return };
            self.drain(&inner);
            // Rotated: finish the old file (done above), then follow the new one from its start.
            if let Ok(meta) = std::fs::metadata(&self.path)
                && meta.ino() != self.inode
                && let Ok(f) = File::open(&self.path)
            {
                self.file = f;
                self.inode = meta.ino();
                self.pending.clear();
                self.drain(&inner);
            }
        }
    }

    fn drain(&mut self, inner: &Inner) {
        let mut buf = Vec::new();
        if self.file.read_to_end(&mut buf).is_err() {
            return;
        }
        self.pending.extend_from_slice(&buf);
        let Some(last_nl) = self.pending.iter().rposition(|&b| b == b'\n') else {
            return;
        };
        let complete: Vec<u8> = self.pending.drain(..=last_nl).collect();
        for line in complete.split(|&b| b == b'\n').filter(|l| !l.is_empty()) {
            match serde_json::from_slice::<EventRecord>(line) {
                Ok(rec) if rec.origin != inner.origin => {
                    let _ = inner.tx.send(rec);
                }
                Ok(_) => {}
                // A line from a newer berth with an event this build does not know: skip it.
                Err(_) => {}
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::types::ContainerId;

    #[tokio::test]
    async fn another_bus_on_the_same_journal_sees_journaled_events_only() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("events.jsonl");
        let a = EventBus::new(&path);
        let b = EventBus::new(&path);
        let mut rx = a.subscribe().unwrap();
        b.publish(Event::BuildOutput {
            line: "local only".into(),
        });
        b.publish(Event::ContainerRemoved {
            id: ContainerId::from("abc"),
        });
        let rec = tokio::time::timeout(std::time::Duration::from_secs(5), rx.recv())
            .await
            .expect("event from the other bus")
            .unwrap();
        assert_eq!(rec.origin, b.origin());
        assert_eq!(
            rec.event,
            Event::ContainerRemoved {
                id: ContainerId::from("abc")
            }
        );
    }

    #[tokio::test]
    async fn own_events_arrive_once() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("events.jsonl");
        let a = EventBus::new(&path);
        let b = EventBus::new(&path);
        let mut rx = a.subscribe().unwrap();
        a.publish(Event::ContainerStarted { id: "x".into() });
        b.publish(Event::ContainerStarted { id: "y".into() });
        // The follower reads the journal in order: a's own line first (which it must skip),
        // then b's. A duplicate of a's event would arrive before b's.
        let first = rx.recv().await.unwrap();
        assert_eq!(first.event, Event::ContainerStarted { id: "x".into() });
        let second = tokio::time::timeout(std::time::Duration::from_secs(5), rx.recv())
            .await
            .unwrap()
            .unwrap();
        assert_eq!(second.event, Event::ContainerStarted { id: "y".into() });
    }
}
