//! On-disk container state under `<root>/containers/<id>/`.
//!
//! Files: `config.json` (the OCI spec), `state.json` (written only with [`write_atomic`]: temp
//! file, fsync, rename, so readers and inotify watchers only ever see whole states),
//! `record.json` (the api layer's opaque record), `container.log` (JSON lines),
//! `monitor.sock`, `lock` (flock around state changes).

use std::collections::BTreeMap;
use std::fs::File;
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::error::{IoContext, Result, RuntimeError};

/// A container id: 1–128 of `[A-Za-z0-9_.-]`, not starting with `.` or `-`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct ContainerId(String);

impl ContainerId {
    pub fn new(id: impl Into<String>) -> Result<ContainerId> {
        let id = id.into();
        let bad = |r: &str| {
            Err(RuntimeError::InvalidId {
                id: id.clone(),
                reason: r.into(),
            })
        };
        if id.is_empty() || id.len() > 128 {
            return bad("length must be 1 to 128");
        }
        if id.starts_with('.') || id.starts_with('-') {
            return bad("must not start with '.' or '-'");
        }
        if !id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"_.-".contains(&b))
        {
            return bad("only letters, digits, '_', '.', '-' are allowed");
        }
        Ok(ContainerId(id))
    }
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Display for ContainerId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.pad(&self.0)
    }
}

/// OCI status (plus `paused`, as runc reports it).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    Creating,
    Created,
    Running,
    Paused,
    Stopped,
}

impl std::fmt::Display for Status {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.pad(match self {
            Status::Creating => "creating",
            Status::Created => "created",
            Status::Running => "running",
            Status::Paused => "paused",
            Status::Stopped => "stopped",
        })
    }
}

/// The full state record of a container (a superset of the OCI state).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct State {
    pub oci_version: String,
    pub id: ContainerId,
    pub status: Status,
    /// Host pid of the container's init (0 when not running).
    pub pid: i32,
    /// The init's start time (clock ticks since boot), to detect pid reuse.
    #[serde(default)]
    pub pid_start_time: u64,
    pub bundle: PathBuf,
    #[serde(default)]
    pub annotations: BTreeMap<String, String>,
    /// RFC 3339 times.
    pub created: String,
    #[serde(default)]
    pub started: Option<String>,
    #[serde(default)]
    pub finished: Option<String>,
    #[serde(default)]
    pub exit_code: Option<i32>,
    #[serde(default)]
    pub oom_killed: bool,
    #[serde(default)]
    pub restart_count: u32,
    /// Pid of the monitor process owning the container (none for a foreground `runtime run`).
    #[serde(default)]
    pub monitor_pid: Option<i32>,
    /// cgroup path relative to the hierarchy roots.
    pub cgroup: PathBuf,
    #[serde(default)]
    pub terminal: bool,
    /// Why the last start failed, if it did.
    #[serde(default)]
    pub error: Option<String>,
    /// Set by a manual stop/kill so the restart policy does not restart.
    #[serde(default)]
    pub stopped_by_user: bool,
    /// Increases on every write: watchers can order updates.
    #[serde(default)]
    pub seq: u64,
}

/// The OCI state object, as `runtime state` prints it.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct OciState {
    pub oci_version: String,
    pub id: String,
    pub status: Status,
    pub pid: i32,
    pub bundle: PathBuf,
    pub rootfs: PathBuf,
    pub created: String,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub annotations: BTreeMap<String, String>,
}

/// The directory of one container.
#[derive(Debug, Clone)]
pub struct ContainerDir {
    pub dir: PathBuf,
    pub id: ContainerId,
}

impl ContainerDir {
    pub fn new(root: &Path, id: &ContainerId) -> ContainerDir {
        ContainerDir {
            dir: root.join("containers").join(id.as_str()),
            id: id.clone(),
        }
    }
    pub fn config(&self) -> PathBuf {
        self.dir.join("config.json")
    }
    pub fn state(&self) -> PathBuf {
        self.dir.join("state.json")
    }
    pub fn record(&self) -> PathBuf {
        self.dir.join("record.json")
    }
    pub fn options(&self) -> PathBuf {
        self.dir.join("options.json")
    }
    pub fn log(&self) -> PathBuf {
        self.dir.join("container.log")
    }
    pub fn socket(&self) -> PathBuf {
        self.dir.join("monitor.sock")
    }
    pub fn lock_path(&self) -> PathBuf {
        self.dir.join("lock")
    }
    pub fn exists(&self) -> bool {
        self.dir.join("state.json").exists()
    }

    /// Exclusive flock on the container's lock file, held until the guard drops.
    pub fn lock(&self) -> Result<nix::fcntl::Flock<File>> {
        let p = self.lock_path();
        let f = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .mode(0o600)
            .open(&p)
            .map_err(|e| match e.kind() {
                // Its directory is gone: so is the container (removed, or never made).
                std::io::ErrorKind::NotFound => RuntimeError::NotFound {
                    id: self.id.to_string(),
                },
                _ => RuntimeError::io("open", &p, e),
            })?;
        nix::fcntl::Flock::lock(f, nix::fcntl::FlockArg::LockExclusive)
            .map_err(|(_, e)| RuntimeError::io("flock", p, e.into()))
    }

    pub fn read_state(&self) -> Result<State> {
        let p = self.state();
        let data = match std::fs::read(&p) {
            Ok(d) => d,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Err(RuntimeError::NotFound {
                    id: self.id.to_string(),
                });
            }
            Err(e) => return Err(RuntimeError::io("read", p, e)),
        };
        serde_json::from_slice(&data).map_err(|e| RuntimeError::State {
            path: p,
            reason: e.to_string(),
        })
    }

    /// Write the state atomically, bumping `seq`.
    pub fn write_state(&self, st: &mut State) -> Result<()> {
        st.seq += 1;
        let data = serde_json::to_vec_pretty(st).map_err(|e| RuntimeError::State {
            path: self.state(),
            reason: e.to_string(),
        })?;
        write_atomic(&self.state(), &data)
    }

    /// Write the state atomically; fsynced when `durable`.
    pub fn write_state_with(&self, st: &mut State, durable: bool) -> Result<()> {
        if durable {
            self.write_state(st)
        } else {
            self.write_state_volatile(st)
        }
    }

    /// Write the state atomically without fsync (transient containers).
    pub fn write_state_volatile(&self, st: &mut State) -> Result<()> {
        st.seq += 1;
        let data = serde_json::to_vec(st).map_err(|e| RuntimeError::State {
            path: self.state(),
            reason: e.to_string(),
        })?;
        write_atomic_volatile(&self.state(), &data)
    }
}

/// Write via a temp file in the same directory, fsync, rename.
pub fn write_atomic(path: &Path, data: &[u8]) -> Result<()> {
    write_atomic_with(path, data, true)
}

/// Atomic but not durable (no fsync): for state that is deleted when the process ends anyway
/// (a foreground `runtime run`).
pub fn write_atomic_volatile(path: &Path, data: &[u8]) -> Result<()> {
    write_atomic_with(path, data, false)
}

/// Write via a temp file in the same directory and rename; fsynced first when `durable`.
pub fn write_atomic_with(path: &Path, data: &[u8], durable: bool) -> Result<()> {
    let dir = path.parent().unwrap_or(Path::new("."));
    let tmp = dir.join(format!(
        ".{}.tmp{}",
        path.file_name().and_then(|n| n.to_str()).unwrap_or("f"),
        std::process::id()
    ));
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .truncate(true)
        .write(true)
        .mode(0o600)
        .open(&tmp)
        .ctx("create", &tmp)?;
    f.write_all(data).ctx("write", &tmp)?;
    if durable {
        f.sync_data().ctx("fsync", &tmp)?;
    }
    std::fs::rename(&tmp, path).ctx("rename", path)?;
    Ok(())
}

/// RFC 3339 UTC timestamp with nanoseconds, as Docker writes them.
pub fn now_rfc3339() -> String {
    let t = time::OffsetDateTime::now_utc();
    t.format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default()
}

/// Start time (field 22 of /proc/PID/stat) of a process, or None if it is gone.
pub fn proc_start_time(pid: i32) -> Option<u64> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let after = &s[s.rfind(')')? + 2..];
    after.split_whitespace().nth(19)?.parse().ok()
}

/// Whether the process recorded as (pid, start time) still exists (and is not a zombie).
pub fn alive(pid: i32, start: u64) -> bool {
    if pid <= 0 {
        return false;
    }
    let Ok(s) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
        return false;
    };
    let Some(i) = s.rfind(')') else { return false };
    let f: Vec<&str> = s[i + 2..].split_whitespace().collect();
    if f.first() == Some(&"Z") || f.first() == Some(&"X") {
        return false;
    }
    start == 0 || f.get(19).and_then(|v| v.parse::<u64>().ok()) == Some(start)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids() {
        assert!(ContainerId::new("abc-1.2_x").is_ok());
        for bad in ["", ".x", "-x", "a/b", "a b", &"x".repeat(129)] {
            assert!(
                matches!(ContainerId::new(bad), Err(RuntimeError::InvalidId { .. })),
                "{bad}"
            );
        }
    }

    #[test]
    fn state_roundtrip_and_atomic_write() {
        let t = tempfile::tempdir().unwrap();
        let id = ContainerId::new("c1").unwrap();
        let d = ContainerDir::new(t.path(), &id);
        std::fs::create_dir_all(&d.dir).unwrap();
        assert!(matches!(d.read_state(), Err(RuntimeError::NotFound { .. })));
        let mut st = State {
            oci_version: "1.2.0".into(),
            id: id.clone(),
            status: Status::Created,
            pid: 5,
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
            cgroup: "berth/c1".into(),
            terminal: false,
            error: None,
            stopped_by_user: false,
            seq: 0,
        };
        d.write_state(&mut st).unwrap();
        let back = d.read_state().unwrap();
        assert_eq!(back, st);
        assert_eq!(back.seq, 1);
        let leftovers: Vec<_> = std::fs::read_dir(&d.dir)
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(leftovers, vec![std::ffi::OsString::from("state.json")]);
        std::fs::write(d.state(), b"{garbage").unwrap();
        assert!(matches!(d.read_state(), Err(RuntimeError::State { .. })));
    }

    #[test]
    fn liveness() {
        let me = std::process::id() as i32;
        let st = proc_start_time(me).unwrap();
        assert!(alive(me, st));
        assert!(!alive(me, st + 1));
        assert!(!alive(0, 0));
    }
}
