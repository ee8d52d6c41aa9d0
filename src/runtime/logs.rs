//! Container logs: JSON lines like Docker's json-file driver
//! (`{"log":"hello\n","stream":"stdout","time":"2026-11-28T20:00:00.123456789Z"}`), written by
//! the monitor, read with tail/since/until and followed through inotify.

use std::fs::File;
use std::io::{BufRead, BufReader, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use nix::sys::inotify::{AddWatchFlags, InitFlags, Inotify};
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use super::error::{IoContext, Result, RuntimeError};
use super::state::{ContainerDir, Status};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Stream {
    Stdout,
    Stderr,
}

/// One log record.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LogEntry {
    pub log: String,
    pub stream: Stream,
    pub time: String,
}

/// Splits output into lines and appends records.
pub struct LogWriter {
    file: File,
    partial: [Vec<u8>; 2],
}

const MAX_PARTIAL: usize = 16 * 1024;

impl LogWriter {
    pub fn open(path: &Path) -> Result<LogWriter> {
        let file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .ctx("open log", path)?;
        Ok(LogWriter {
            file,
            partial: [Vec::new(), Vec::new()],
        })
    }

    /// Append output of `stream`; complete lines become records at once.
    pub fn write(&mut self, stream: Stream, data: &[u8]) {
        let i = stream as usize;
        self.partial[i].extend_from_slice(data);
        while let Some(pos) = self.partial[i].iter().position(|b| *b == b'\n') {
            let line: Vec<u8> = self.partial[i].drain(..=pos).collect();
            self.record(stream, &line);
        }
        if self.partial[i].len() >= MAX_PARTIAL {
            let chunk = std::mem::take(&mut self.partial[i]);
            self.record(stream, &chunk);
        }
    }

    /// Write out incomplete lines (at exit).
    pub fn flush(&mut self) {
        for stream in [Stream::Stdout, Stream::Stderr] {
            let chunk = std::mem::take(&mut self.partial[stream as usize]);
            if !chunk.is_empty() {
                self.record(stream, &chunk);
            }
        }
    }

    fn record(&mut self, stream: Stream, data: &[u8]) {
        let e = LogEntry {
            log: String::from_utf8_lossy(data).into_owned(),
            stream,
            time: now(),
        };
        let mut line = serde_json::to_vec(&e).expect("serialisable");
        line.push(b'\n');
        let _ = self.file.write_all(&line);
    }
}

fn now() -> String {
    OffsetDateTime::now_utc()
        .format(&Rfc3339)
        .unwrap_or_default()
}

/// What to read.
#[derive(Debug, Clone, Default)]
pub struct LogOptions {
    pub follow: bool,
    /// Only the last N records (before following).
    pub tail: Option<usize>,
    /// RFC 3339 bounds.
    pub since: Option<String>,
    pub until: Option<String>,
    /// Streams; both false means both.
    pub stdout: bool,
    pub stderr: bool,
}

fn parse_time(s: &str) -> Result<OffsetDateTime> {
    OffsetDateTime::parse(s, &Rfc3339)
        .map_err(|e| RuntimeError::BadRequest(format!("bad time {s:?}: {e}")))
}

/// A blocking iterator over log records; with `follow` it waits for new records until the
/// container stops.
pub struct Logs {
    reader: BufReader<File>,
    path: PathBuf,
    dir: ContainerDir,
    opts: LogOptions,
    since: Option<OffsetDateTime>,
    until: Option<OffsetDateTime>,
    backlog: std::collections::VecDeque<LogEntry>,
    inotify: Option<Inotify>,
    done: bool,
}

impl Logs {
    pub fn open(dir: &ContainerDir, opts: LogOptions) -> Result<Logs> {
        let path = dir.log();
        if !path.exists() {
            File::create(&path).ctx("create log", &path)?;
        }
        let since = opts.since.as_deref().map(parse_time).transpose()?;
        let until = opts.until.as_deref().map(parse_time).transpose()?;
        let inotify = if opts.follow {
            let ino = Inotify::init(InitFlags::IN_CLOEXEC)
                .map_err(|e| RuntimeError::sys("inotify_init", std::io::Error::from(e)))?;
            ino.add_watch(&path, AddWatchFlags::IN_MODIFY)
                .ctx("inotify watch", &path)?;
            ino.add_watch(
                &dir.dir,
                AddWatchFlags::IN_MOVED_TO | AddWatchFlags::IN_DELETE_SELF,
            )
            .ctx("inotify watch", &dir.dir)?;
            Some(ino)
        } else {
            None
        };
        let file = File::open(&path).ctx("open log", &path)?;
        let mut l = Logs {
            reader: BufReader::new(file),
            path,
            dir: dir.clone(),
            opts,
            since,
            until,
            backlog: Default::default(),
            inotify,
            done: false,
        };
        // Existing records first (tail needs them all to pick the last N).
        let mut all = Vec::new();
        while let Some(e) = l.read_record()? {
            if l.wanted(&e) {
                all.push(e);
            }
        }
        let skip = l
            .opts
            .tail
            .map(|n| all.len().saturating_sub(n))
            .unwrap_or(0);
        l.backlog = all.into_iter().skip(skip).collect();
        Ok(l)
    }

    fn wanted(&self, e: &LogEntry) -> bool {
        let any = !self.opts.stdout && !self.opts.stderr;
        let stream_ok = any
            || (e.stream == Stream::Stdout && self.opts.stdout)
            || (e.stream == Stream::Stderr && self.opts.stderr);
        if !stream_ok {
            return false;
        }
        if self.since.is_some() || self.until.is_some() {
            let Ok(t) = OffsetDateTime::parse(&e.time, &Rfc3339) else {
                return false;
            };
            if self.since.is_some_and(|s| t < s) || self.until.is_some_and(|u| t > u) {
                return false;
            }
        }
        true
    }

    /// The next complete record in the file, if any.
    fn read_record(&mut self) -> Result<Option<LogEntry>> {
        loop {
            let pos = self.reader.stream_position().ctx("seek", &self.path)?;
            let mut line = Vec::new();
            let n = self
                .reader
                .read_until(b'\n', &mut line)
                .ctx("read", &self.path)?;
            if n == 0 {
                return Ok(None);
            }
            if line.last() != Some(&b'\n') {
                // A record being written: read it again later.
                self.reader
                    .seek(SeekFrom::Start(pos))
                    .ctx("seek", &self.path)?;
                return Ok(None);
            }
            match serde_json::from_slice::<LogEntry>(&line) {
                Ok(e) => return Ok(Some(e)),
                Err(_) => continue,
            }
        }
    }

    fn container_stopped(&self) -> bool {
        match self.dir.read_state() {
            Ok(s) => matches!(s.status, Status::Stopped),
            Err(_) => true,
        }
    }
}

impl Iterator for Logs {
    type Item = Result<LogEntry>;

    fn next(&mut self) -> Option<Self::Item> {
        if let Some(e) = self.backlog.pop_front() {
            return Some(Ok(e));
        }
        if self.done || !self.opts.follow {
            return None;
        }
        loop {
            match self.read_record() {
                Ok(Some(e)) => {
                    if self.wanted(&e) {
                        return Some(Ok(e));
                    }
                    continue;
                }
                Ok(None) => {}
                Err(e) => return Some(Err(e)),
            }
            if self.container_stopped() {
                // One last read: the monitor writes the log before the final state.
                loop {
                    match self.read_record() {
                        Ok(Some(e)) if self.wanted(&e) => return Some(Ok(e)),
                        Ok(Some(_)) => continue,
                        _ => break,
                    }
                }
                self.done = true;
                return None;
            }
            let ino = self.inotify.as_ref().expect("follow has inotify");
            if let Err(e) = ino.read_events() {
                return Some(Err(RuntimeError::sys(
                    "inotify read",
                    std::io::Error::from(e),
                )));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::runtime::state::ContainerId;

    #[test]
    fn lines_partial_and_tail() {
        let t = tempfile::tempdir().unwrap();
        let d = ContainerDir::new(t.path(), &ContainerId::new("x").unwrap());
        std::fs::create_dir_all(&d.dir).unwrap();
        let mut w = LogWriter::open(&d.log()).unwrap();
        w.write(Stream::Stdout, b"one\ntw");
        w.write(Stream::Stderr, b"err\n");
        w.write(Stream::Stdout, b"o\nthree");
        w.flush();
        let all: Vec<_> = Logs::open(&d, LogOptions::default())
            .unwrap()
            .map(|e| e.unwrap())
            .collect();
        let logs: Vec<_> = all.iter().map(|e| e.log.as_str()).collect();
        assert_eq!(logs, vec!["one\n", "err\n", "two\n", "three"]);
        let tail: Vec<_> = Logs::open(
            &d,
            LogOptions {
                tail: Some(2),
                ..Default::default()
            },
        )
        .unwrap()
        .map(|e| e.unwrap().log)
        .collect();
        assert_eq!(tail, vec!["two\n", "three"]);
        let errs: Vec<_> = Logs::open(
            &d,
            LogOptions {
                stderr: true,
                ..Default::default()
            },
        )
        .unwrap()
        .map(|e| e.unwrap().log)
        .collect();
        assert_eq!(errs, vec!["err\n"]);
        let future = "2999-01-01T00:00:00Z".to_string();
        assert_eq!(
            Logs::open(
                &d,
                LogOptions {
                    since: Some(future),
                    ..Default::default()
                }
            )
            .unwrap()
            .count(),
            0
        );
        assert!(
            Logs::open(
                &d,
                LogOptions {
                    since: Some("yesterday".into()),
                    ..Default::default()
                }
            )
            .is_err()
        );
    }
}
