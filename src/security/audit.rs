//! The audit log: one JSON line per policy decision, rotated by size.

use super::policy::Verdict;
use serde::{Deserialize, Serialize};
use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

/// One decision, as written to `audit.log`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AuditRecord {
    /// RFC 3339, UTC.
    pub time: String,
    /// `uid N` or `name(uid N)`.
    pub subject: String,
    pub uid: u32,
    pub action: String,
    pub target: Option<String>,
    pub decision: Verdict,
    /// `file:line` of the deciding rule.
    pub rule: Option<String>,
    pub reason: String,
}

/// An append-only audit file. Each record is one `write(2)` on an `O_APPEND` descriptor, so
/// records from several processes never interleave.
#[derive(Debug)]
pub struct AuditLog {
    path: PathBuf,
    max_bytes: u64,
}

impl AuditLog {
    /// Size at which `audit.log` is moved to `audit.log.1`.
    pub const DEFAULT_MAX_BYTES: u64 = 8 << 20;

    pub fn new(path: impl Into<PathBuf>) -> Self {
        Self {
            path: path.into(),
            max_bytes: Self::DEFAULT_MAX_BYTES,
        }
    }

    pub fn with_max_bytes(mut self, max: u64) -> Self {
        self.max_bytes = max;
        self
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    fn open(&self) -> io::Result<File> {
        OpenOptions::new()
            .create(true)
            .append(true)
            .mode(0o600)
            .open(&self.path)
    }

    /// Append one record, rotating first when the file has grown past its limit.
    pub fn append(&self, record: &AuditRecord) -> io::Result<()> {
        let mut line = serde_json::to_vec(record).map_err(io::Error::other)?;
        line.push(b'\n');
        let mut f = self.open()?;
        if f.metadata()?.len() + line.len() as u64 > self.max_bytes {
            // Whoever renames first wins; the others' rename fails harmlessly or moves an
            // almost-empty file. Either way no record is lost: it goes to the reopened file.
            let rotated = self.path.with_extension("log.1");
            let _ = std::fs::rename(&self.path, rotated);
            f = self.open()?;
        }
        f.write_all(&line)
    }

    /// The last `n` records, oldest first (for the console's policy pane).
    pub fn tail(&self, n: usize) -> io::Result<Vec<AuditRecord>> {
        let text = match std::fs::read_to_string(&self.path) {
            Ok(t) => t,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(vec![]),
            Err(e) => return Err(e),
        };
        let mut out: Vec<AuditRecord> = text
            .lines()
            .rev()
            .filter_map(|l| serde_json::from_str(l).ok())
            .take(n)
            .collect();
        out.reverse();
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(action: &str) -> AuditRecord {
        AuditRecord {
            time: "2026-01-01T00:00:00Z".into(),
            subject: "uid 0".into(),
            uid: 0,
            action: action.into(),
            target: None,
            decision: Verdict::Deny,
            rule: Some("p:1".into()),
            reason: "no".into(),
        }
    }

    #[test]
    fn appends_and_rotates() {
        let dir = tempfile::tempdir().unwrap();
        let log = AuditLog::new(dir.path().join("audit.log")).with_max_bytes(400);
        for i in 0..6 {
            log.append(&record(&format!("a{i}"))).unwrap();
        }
        assert!(dir.path().join("audit.log.1").exists());
        let tail = log.tail(10).unwrap();
        assert!(!tail.is_empty());
        assert_eq!(tail.last().unwrap().action, "a5");
    }
}
