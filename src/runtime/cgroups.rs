//! Our own small cgroupfs code for cgroup v1 (this host: hybrid, v1 controllers) and v2.
//!
//! [`Cgroup`] holds the logic (which file gets which value on which version); all filesystem
//! access goes through the [`CgroupFs`] trait so the v2 logic, which cannot run on this host,
//! is unit-tested against [`FakeFs`]. [`HostFs`] is the real thing.

use std::collections::BTreeMap;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use serde::{Deserialize, Serialize};

use super::error::{Result, RuntimeError};
use super::spec::{DeviceRule, Resources};

/// Filesystem operations on cgroupfs.
pub trait CgroupFs: Send + Sync {
    fn mkdir(&self, path: &Path) -> io::Result<()>;
    fn write(&self, path: &Path, value: &str) -> io::Result<()>;
    fn read(&self, path: &Path) -> io::Result<String>;
    fn rmdir(&self, path: &Path) -> io::Result<()>;
    fn exists(&self, path: &Path) -> bool;
}

/// The real cgroupfs.
#[derive(Debug, Default, Clone, Copy)]
pub struct HostFs;

impl CgroupFs for HostFs {
    fn mkdir(&self, path: &Path) -> io::Result<()> {
        match std::fs::create_dir(path) {
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => Ok(()),
            r => r,
        }
    }
    fn write(&self, path: &Path, value: &str) -> io::Result<()> {
        use std::io::Write;
        // One write(2) per value: cgroupfs parses each write separately.
        let mut f = std::fs::OpenOptions::new().write(true).open(path)?;
        f.write_all(value.as_bytes())
    }
    fn read(&self, path: &Path) -> io::Result<String> {
        std::fs::read_to_string(path)
    }
    fn rmdir(&self, path: &Path) -> io::Result<()> {
        std::fs::remove_dir(path)
    }
    fn exists(&self, path: &Path) -> bool {
        path.exists()
    }
}

/// An in-memory cgroupfs that records writes, for unit tests.
#[derive(Debug, Default)]
pub struct FakeFs {
    pub files: Mutex<BTreeMap<PathBuf, String>>,
    pub dirs: Mutex<Vec<PathBuf>>,
    pub writes: Mutex<Vec<(PathBuf, String)>>,
    /// Writes to these files fail with EINVAL (error injection).
    pub fail_writes: Mutex<Vec<PathBuf>>,
}

impl FakeFs {
    pub fn with_files(files: &[(&str, &str)]) -> FakeFs {
        let f = FakeFs::default();
        for (p, v) in files {
            f.files
                .lock()
                .unwrap()
                .insert(PathBuf::from(p), v.to_string());
        }
        f
    }
    pub fn written(&self, path: &str) -> Option<String> {
        self.writes
            .lock()
            .unwrap()
            .iter()
            .rev()
            .find(|(p, _)| p == Path::new(path))
            .map(|(_, v)| v.clone())
    }
}

impl CgroupFs for FakeFs {
    fn mkdir(&self, path: &Path) -> io::Result<()> {
        self.dirs.lock().unwrap().push(path.into());
        Ok(())
    }
    fn write(&self, path: &Path, value: &str) -> io::Result<()> {
        if self.fail_writes.lock().unwrap().iter().any(|p| p == path) {
            return Err(io::Error::from_raw_os_error(libc::EINVAL));
        }
        self.writes
            .lock()
            .unwrap()
            .push((path.into(), value.into()));
        self.files.lock().unwrap().insert(path.into(), value.into());
        Ok(())
    }
    fn read(&self, path: &Path) -> io::Result<String> {
        self.files
            .lock()
            .unwrap()
            .get(path)
            .cloned()
            .ok_or_else(|| io::Error::from_raw_os_error(libc::ENOENT))
    }
    fn rmdir(&self, path: &Path) -> io::Result<()> {
        self.dirs.lock().unwrap().retain(|d| d != path);
        Ok(())
    }
    fn exists(&self, path: &Path) -> bool {
        self.files.lock().unwrap().contains_key(path)
            || self.dirs.lock().unwrap().iter().any(|d| d == path)
    }
}

/// Which cgroup version is mounted, and where.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Layout {
    /// v1: hierarchy mount point → the controllers (or `name=…`) it carries.
    V1 {
        hierarchies: BTreeMap<PathBuf, Vec<String>>,
    },
    /// v2 unified at this mount point.
    V2 { root: PathBuf },
}

impl Layout {
    /// Detect from /proc/self/mountinfo. A hybrid host (v1 controllers plus a v2 mount that
    /// holds no controller of ours) counts as v1.
    pub fn detect() -> Result<Layout> {
        let mi = std::fs::read_to_string("/proc/self/mountinfo")
            .map_err(|e| RuntimeError::io("read", "/proc/self/mountinfo", e))?;
        Ok(Self::from_mountinfo(&mi))
    }

    pub fn from_mountinfo(mi: &str) -> Layout {
        let mut v1 = BTreeMap::new();
        let mut v2 = None;
        for line in mi.lines() {
            let Some((pre, post)) = line.split_once(" - ") else {
                continue;
            };
            let mut pf = pre.split(' ');
            let mountpoint = pf.nth(4).unwrap_or("");
            let mut po = post.split(' ');
            let fstype = po.next().unwrap_or("");
            let _src = po.next();
            let opts = po.next().unwrap_or("");
            match fstype {
                "cgroup" => {
                    let ctrls: Vec<String> = opts
                        .split(',')
                        .filter(|o| {
                            !matches!(*o, "rw" | "ro")
                                && !o.starts_with("relatime")
                                && *o != "nosuid"
                                && *o != "nodev"
                                && *o != "noexec"
                                && !o.starts_with("release_agent")
                                && *o != "clone_children"
                        })
                        .map(String::from)
                        .collect();
                    v1.insert(PathBuf::from(unescape(mountpoint)), ctrls);
                }
                "cgroup2" if v2.is_none() => v2 = Some(PathBuf::from(unescape(mountpoint))),
                _ => {}
            }
        }
        match (v1.is_empty(), v2) {
            (true, Some(root)) => Layout::V2 { root },
            (_, _) => Layout::V1 { hierarchies: v1 },
        }
    }

    pub fn is_v2(&self) -> bool {
        matches!(self, Layout::V2 { .. })
    }
}

fn unescape(s: &str) -> String {
    s.replace("\\040", " ")
}

/// Resource usage read from the cgroup.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CgroupStats {
    /// Total CPU time, nanoseconds.
    pub cpu_usage_ns: u64,
    pub memory_usage: u64,
    pub memory_limit: Option<u64>,
    /// Page cache (v1 `cache`, v2 `file`) and inactive file pages, for Docker's usage formula.
    pub memory_cache: u64,
    pub memory_inactive_file: u64,
    pub pids_current: u64,
    pub pids_limit: Option<u64>,
    pub blkio_read_bytes: u64,
    pub blkio_write_bytes: u64,
    pub oom_kills: u64,
}

/// One container's cgroup (all its v1 hierarchies, or one v2 directory).
pub struct Cgroup<F: CgroupFs = HostFs> {
    fs: F,
    layout: Layout,
    /// Path relative to each hierarchy root, e.g. `berth/<id>`.
    rel: PathBuf,
}

impl<F: CgroupFs> std::fmt::Debug for Cgroup<F> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Cgroup")
            .field("layout", &self.layout)
            .field("rel", &self.rel)
            .finish()
    }
}

impl Cgroup<HostFs> {
    pub fn host(layout: Layout, rel: impl Into<PathBuf>) -> Self {
        Cgroup::new(HostFs, layout, rel)
    }
}

impl<F: CgroupFs> Cgroup<F> {
    pub fn new(fs: F, layout: Layout, rel: impl Into<PathBuf>) -> Self {
        let rel: PathBuf = rel.into();
        let rel = rel.strip_prefix("/").map(Path::to_path_buf).unwrap_or(rel);
        Cgroup { fs, layout, rel }
    }

    pub fn layout(&self) -> &Layout {
        &self.layout
    }

    pub fn rel(&self) -> &Path {
        &self.rel
    }

    /// Every directory of this cgroup (one per v1 hierarchy, one on v2).
    pub fn dirs(&self) -> Vec<PathBuf> {
        match &self.layout {
            Layout::V1 { hierarchies } => hierarchies.keys().map(|h| h.join(&self.rel)).collect(),
            Layout::V2 { root } => vec![root.join(&self.rel)],
        }
    }

    /// (mount point of the hierarchy, directory of this cgroup in it), for the container's
    /// /sys/fs/cgroup view.
    pub fn mounts(&self) -> Vec<(PathBuf, PathBuf)> {
        match &self.layout {
            Layout::V1 { hierarchies } => hierarchies
                .keys()
                .map(|h| (h.clone(), h.join(&self.rel)))
                .collect(),
            Layout::V2 { root } => vec![(root.clone(), root.join(&self.rel))],
        }
    }

    fn ctrl_dir(&self, ctrl: &str) -> Option<PathBuf> {
        match &self.layout {
            Layout::V1 { hierarchies } => hierarchies
                .iter()
                .find(|(_, c)| c.iter().any(|x| x == ctrl))
                .map(|(h, _)| h.join(&self.rel)),
            Layout::V2 { root } => Some(root.join(&self.rel)),
        }
    }

    fn err(&self, path: &Path, what: &str, e: io::Error) -> RuntimeError {
        RuntimeError::Cgroup {
            path: path.into(),
            reason: format!("{what}: {e}"),
        }
    }

    fn write(&self, dir: &Path, file: &str, value: &str) -> Result<()> {
        let p = dir.join(file);
        self.fs
            .write(&p, value)
            .map_err(|e| self.err(&p, &format!("write {value:?}"), e))
    }

    fn read(&self, dir: &Path, file: &str) -> Option<String> {
        self.fs.read(&dir.join(file)).ok()
    }

    /// Create the directories (parents included) and apply the limits.
    pub fn create(&self, res: Option<&Resources>) -> Result<()> {
        match &self.layout {
            Layout::V1 { hierarchies } => {
                for (h, ctrls) in hierarchies {
                    let mut cur = h.clone();
                    for comp in self.rel.components() {
                        cur.push(comp);
                        if self.fs.exists(&cur) {
                            continue;
                        }
                        self.fs
                            .mkdir(&cur)
                            .map_err(|e| self.err(&cur, "mkdir", e))?;
                        if ctrls.iter().any(|c| c == "cpuset") {
                            // A new v1 cpuset is empty; tasks cannot join until cpus/mems are set.
                            let parent = cur
                                .parent()
                                .expect("below the hierarchy root")
                                .to_path_buf();
                            for f in ["cpuset.cpus", "cpuset.mems"] {
                                let v = self.read(&parent, f).unwrap_or_default();
                                let v = v.trim();
                                if !v.is_empty() {
                                    self.write(&cur, f, v)?;
                                }
                            }
                        }
                    }
                }
            }
            Layout::V2 { root } => {
                let mut cur = root.clone();
                let comps: Vec<_> = self.rel.components().collect();
                for (i, comp) in comps.iter().enumerate() {
                    // Enable the controllers we use in every ancestor's subtree.
                    let avail = self.read(&cur, "cgroup.controllers").unwrap_or_default();
                    let want: Vec<String> = ["cpu", "cpuset", "memory", "pids", "io"]
                        .iter()
                        .filter(|c| avail.split_whitespace().any(|a| a == **c))
                        .map(|c| format!("+{c}"))
                        .collect();
                    if !want.is_empty() {
                        self.write(&cur, "cgroup.subtree_control", &want.join(" "))?;
                    }
                    cur.push(comp);
                    if !self.fs.exists(&cur) || i + 1 == comps.len() {
                        self.fs
                            .mkdir(&cur)
                            .map_err(|e| self.err(&cur, "mkdir", e))?;
                    }
                }
            }
        }
        if let Some(r) = res {
            self.apply(r)?;
        }
        Ok(())
    }

    /// Write the limits of `r`.
    pub fn apply(&self, r: &Resources) -> Result<()> {
        let v2 = self.layout.is_v2();
        if let Some(m) = &r.memory {
            let dir = self.ctrl_dir("memory");
            if let Some(dir) = dir {
                if v2 {
                    if let Some(l) = m.limit {
                        self.write(&dir, "memory.max", &limit_str(l))?;
                    }
                    if let Some(r) = m.reservation {
                        self.write(&dir, "memory.low", &limit_str(r))?;
                    }
                    // OCI swap = memory+swap; v2 wants swap alone.
                    if let Some(s) = m.swap {
                        let v = match (s, m.limit) {
                            (s, _) if s < 0 => "max".to_string(),
                            (s, Some(l)) if l > 0 => (s - l).max(0).to_string(),
                            (s, _) => s.to_string(),
                        };
                        self.write(&dir, "memory.swap.max", &v)?;
                    }
                } else {
                    if let Some(l) = m.limit {
                        self.write(&dir, "memory.limit_in_bytes", &l.to_string())?;
                    }
                    if let Some(r) = m.reservation {
                        self.write(&dir, "memory.soft_limit_in_bytes", &r.to_string())?;
                    }
                    if let Some(s) = m.swap
                        && self.fs.exists(&dir.join("memory.memsw.limit_in_bytes"))
                    {
                        self.write(&dir, "memory.memsw.limit_in_bytes", &s.to_string())?;
                    }
                    if let Some(sw) = m.swappiness
                        && sw <= 100
                    {
                        self.write(&dir, "memory.swappiness", &sw.to_string())?;
                    }
                    if m.disable_oom_killer == Some(true) {
                        self.write(&dir, "memory.oom_control", "1")?;
                    }
                }
            }
        }
        if let Some(c) = &r.cpu {
            if let Some(dir) = self.ctrl_dir("cpu") {
                if v2 {
                    if let Some(s) = c.shares
                        && s > 0
                    {
                        self.write(&dir, "cpu.weight", &shares_to_weight(s).to_string())?;
                    }
                    if c.quota.is_some() || c.period.is_some() {
                        let period = c.period.unwrap_or(100_000);
                        let q = match c.quota {
                            Some(q) if q > 0 => q.to_string(),
                            _ => "max".into(),
                        };
                        self.write(&dir, "cpu.max", &format!("{q} {period}"))?;
                    }
                } else {
                    if let Some(s) = c.shares
                        && s > 0
                    {
                        self.write(&dir, "cpu.shares", &s.to_string())?;
                    }
                    if let Some(p) = c.period {
                        self.write(&dir, "cpu.cfs_period_us", &p.to_string())?;
                    }
                    if let Some(q) = c.quota {
                        self.write(&dir, "cpu.cfs_quota_us", &q.to_string())?;
                    }
                }
            }
            if let Some(dir) = self.ctrl_dir("cpuset") {
                if let Some(cpus) = &c.cpus {
                    self.write(&dir, "cpuset.cpus", cpus)?;
                }
                if let Some(mems) = &c.mems {
                    self.write(&dir, "cpuset.mems", mems)?;
                }
            }
        }
        if let Some(p) = &r.pids
            && let Some(dir) = self.ctrl_dir("pids")
        {
            self.write(
                &dir,
                "pids.max",
                &if p.limit > 0 {
                    p.limit.to_string()
                } else {
                    "max".into()
                },
            )?;
        }
        if !r.devices.is_empty() && !v2 {
            // v2 device control needs an eBPF program: not implemented (see module docs).
            if let Some(dir) = self.ctrl_dir("devices") {
                for d in &r.devices {
                    let file = if d.allow {
                        "devices.allow"
                    } else {
                        "devices.deny"
                    };
                    self.write(&dir, file, &device_rule(d))?;
                }
            }
        }
        Ok(())
    }

    /// Move a process into every hierarchy of this cgroup.
    pub fn add_pid(&self, pid: i32) -> Result<()> {
        for d in self.dirs() {
            self.write(&d, "cgroup.procs", &pid.to_string())?;
        }
        Ok(())
    }

    /// Pids of the processes in the cgroup.
    pub fn procs(&self) -> Vec<i32> {
        let dir = match &self.layout {
            Layout::V1 { .. } => self.ctrl_dir("pids").or_else(|| self.ctrl_dir("memory")),
            Layout::V2 { root } => Some(root.join(&self.rel)),
        };
        dir.and_then(|d| self.read(&d, "cgroup.procs"))
            .map(|s| s.lines().filter_map(|l| l.trim().parse().ok()).collect())
            .unwrap_or_default()
    }

    /// Freeze (`true`) or thaw; waits until the kernel reports the new state.
    pub fn set_frozen(&self, frozen: bool) -> Result<()> {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        match &self.layout {
            Layout::V1 { .. } => {
                let dir = self
                    .ctrl_dir("freezer")
                    .ok_or_else(|| RuntimeError::Cgroup {
                        path: self.rel.clone(),
                        reason: "no freezer hierarchy".into(),
                    })?;
                let want = if frozen { "FROZEN" } else { "THAWED" };
                loop {
                    self.write(&dir, "freezer.state", want)?;
                    if self
                        .read(&dir, "freezer.state")
                        .map(|s| s.trim() == want)
                        .unwrap_or(false)
                    {
                        return Ok(());
                    }
                    if std::time::Instant::now() > deadline {
                        return Err(RuntimeError::Cgroup {
                            path: dir,
                            reason: format!("did not become {want}"),
                        });
                    }
                    std::thread::sleep(std::time::Duration::from_millis(1));
                }
            }
            Layout::V2 { root } => {
                let dir = root.join(&self.rel);
                self.write(&dir, "cgroup.freeze", if frozen { "1" } else { "0" })?;
                let want = if frozen { "frozen 1" } else { "frozen 0" };
                loop {
                    if self
                        .read(&dir, "cgroup.events")
                        .map(|s| s.lines().any(|l| l.trim() == want))
                        .unwrap_or(false)
                    {
                        return Ok(());
                    }
                    if std::time::Instant::now() > deadline {
                        return Err(RuntimeError::Cgroup {
                            path: dir,
                            reason: format!("did not report {want}"),
                        });
                    }
                    std::thread::sleep(std::time::Duration::from_millis(1));
                }
            }
        }
    }

    pub fn is_frozen(&self) -> bool {
        match &self.layout {
            Layout::V1 { .. } => self
                .ctrl_dir("freezer")
                .and_then(|d| self.read(&d, "freezer.state"))
                .map(|s| s.trim() == "FROZEN")
                .unwrap_or(false),
            Layout::V2 { root } => self
                .read(&root.join(&self.rel), "cgroup.events")
                .map(|s| s.lines().any(|l| l.trim() == "frozen 1"))
                .unwrap_or(false),
        }
    }

    /// Number of OOM kills so far in this cgroup.
    pub fn oom_kills(&self) -> u64 {
        let (file, key) = if self.layout.is_v2() {
            ("memory.events", "oom_kill")
        } else {
            ("memory.oom_control", "oom_kill")
        };
        self.ctrl_dir("memory")
            .and_then(|d| self.read(&d, file))
            .and_then(|s| kv(&s, key))
            .unwrap_or(0)
    }

    /// Read usage counters.
    pub fn stats(&self) -> CgroupStats {
        let mut s = CgroupStats::default();
        let num = |d: &Option<PathBuf>, f: &str| -> Option<u64> {
            d.as_ref()
                .and_then(|d| self.read(d, f))
                .and_then(|v| v.trim().parse().ok())
        };
        s.oom_kills = self.oom_kills();
        if self.layout.is_v2() {
            let d = self.ctrl_dir("memory");
            s.cpu_usage_ns = d
                .as_ref()
                .and_then(|d| self.read(d, "cpu.stat"))
                .and_then(|v| kv(&v, "usage_usec"))
                .unwrap_or(0)
                * 1000;
            s.memory_usage = num(&d, "memory.current").unwrap_or(0);
            s.memory_limit = num(&d, "memory.max");
            if let Some(st) = d.as_ref().and_then(|d| self.read(d, "memory.stat")) {
                s.memory_cache = kv(&st, "file").unwrap_or(0);
                s.memory_inactive_file = kv(&st, "inactive_file").unwrap_or(0);
            }
            s.pids_current = num(&d, "pids.current").unwrap_or(0);
            s.pids_limit = num(&d, "pids.max");
            if let Some(io) = d.as_ref().and_then(|d| self.read(d, "io.stat")) {
                for line in io.lines() {
                    for f in line.split_whitespace() {
                        if let Some(v) = f.strip_prefix("rbytes=") {
                            s.blkio_read_bytes += v.parse::<u64>().unwrap_or(0);
                        } else if let Some(v) = f.strip_prefix("wbytes=") {
                            s.blkio_write_bytes += v.parse::<u64>().unwrap_or(0);
                        }
                    }
                }
            }
        } else {
            s.cpu_usage_ns = num(&self.ctrl_dir("cpuacct"), "cpuacct.usage").unwrap_or(0);
            let m = self.ctrl_dir("memory");
            s.memory_usage = num(&m, "memory.usage_in_bytes").unwrap_or(0);
            s.memory_limit = num(&m, "memory.limit_in_bytes").filter(|l| *l < (1u64 << 62));
            if let Some(st) = m.as_ref().and_then(|d| self.read(d, "memory.stat")) {
                s.memory_cache = kv(&st, "total_cache")
                    .or_else(|| kv(&st, "cache"))
                    .unwrap_or(0);
                s.memory_inactive_file = kv(&st, "total_inactive_file")
                    .or_else(|| kv(&st, "inactive_file"))
                    .unwrap_or(0);
            }
            let p = self.ctrl_dir("pids");
            s.pids_current = num(&p, "pids.current").unwrap_or(0);
            s.pids_limit = num(&p, "pids.max");
            let b = self.ctrl_dir("blkio");
            let blk = b.as_ref().and_then(|d| {
                self.read(d, "blkio.throttle.io_service_bytes_recursive")
                    .or_else(|| self.read(d, "blkio.io_service_bytes_recursive"))
            });
            if let Some(io) = blk {
                for line in io.lines() {
                    let f: Vec<&str> = line.split_whitespace().collect();
                    if f.len() == 3 {
                        let v: u64 = f[2].parse().unwrap_or(0);
                        match f[1] {
                            "Read" => s.blkio_read_bytes += v,
                            "Write" => s.blkio_write_bytes += v,
                            _ => {}
                        }
                    }
                }
            }
        }
        s
    }

    /// SIGKILL every process in the cgroup (v2: cgroup.kill when available).
    pub fn kill_all(&self) {
        if let Layout::V2 { root } = &self.layout {
            let d = root.join(&self.rel);
            if self.fs.exists(&d.join("cgroup.kill")) && self.write(&d, "cgroup.kill", "1").is_ok()
            {
                return;
            }
        }
        for pid in self.procs() {
            let _ = nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(pid),
                nix::sys::signal::Signal::SIGKILL,
            );
        }
    }

    /// Remove the directories (leaf only; shared parents stay). Retries while the kernel
    /// still counts exiting tasks.
    pub fn destroy(&self) -> Result<()> {
        // A frozen cgroup cannot be emptied: thaw first.
        if self.is_frozen() {
            let _ = self.set_frozen(false);
        }
        for d in self.dirs() {
            let mut tries = 0;
            loop {
                match self.fs.rmdir(&d) {
                    Ok(()) => break,
                    Err(e) if e.kind() == io::ErrorKind::NotFound => break,
                    Err(e) if e.raw_os_error() == Some(libc::EBUSY) && tries < 200 => {
                        tries += 1;
                        std::thread::sleep(std::time::Duration::from_millis(5));
                    }
                    Err(e) => return Err(self.err(&d, "rmdir", e)),
                }
            }
        }
        Ok(())
    }

    pub fn exists(&self) -> bool {
        self.dirs().iter().any(|d| self.fs.exists(d))
    }
}

fn kv(s: &str, key: &str) -> Option<u64> {
    s.lines().find_map(|l| {
        let mut it = l.split_whitespace();
        (it.next() == Some(key))
            .then(|| it.next().and_then(|v| v.parse().ok()))
            .flatten()
    })
}

fn limit_str(v: i64) -> String {
    if v < 0 { "max".into() } else { v.to_string() }
}

/// cgroup v1 cpu.shares (2..262144) to v2 cpu.weight (1..10000), as runc/crun convert.
pub fn shares_to_weight(shares: u64) -> u64 {
    let s = shares.clamp(2, 262_144);
    1 + ((s - 2) * 9999) / 262_142
}

fn device_rule(d: &DeviceRule) -> String {
    let kind = d.kind.as_deref().unwrap_or("a");
    if kind == "a" && d.major.is_none() && d.minor.is_none() {
        return "a".into();
    }
    let n = |x: Option<i64>| {
        x.filter(|v| *v >= 0)
            .map(|v| v.to_string())
            .unwrap_or_else(|| "*".into())
    };
    format!(
        "{kind} {}:{} {}",
        n(d.major),
        n(d.minor),
        d.access.as_deref().unwrap_or("rwm")
    )
}

#[cfg(test)]
mod tests {
    use super::super::spec::{Cpu, Memory, Pids};
    use super::*;

    const HYBRID: &str = "\
25 22 0:22 / /sys/fs/cgroup ro,nosuid,nodev,noexec shared:9 - tmpfs tmpfs ro,mode=755
26 25 0:23 / /sys/fs/cgroup/unified rw,nosuid,nodev,noexec,relatime shared:10 - cgroup2 cgroup2 rw
27 25 0:24 / /sys/fs/cgroup/memory rw,relatime shared:11 - cgroup cgroup rw,memory
28 25 0:25 / /sys/fs/cgroup/cpu,cpuacct rw,relatime shared:12 - cgroup cgroup rw,cpu,cpuacct
29 25 0:26 / /sys/fs/cgroup/systemd rw - cgroup cgroup rw,xattr,name=systemd
";
    const UNIFIED: &str = "30 22 0:27 / /sys/fs/cgroup rw,nosuid,nodev,noexec,relatime shared:4 - cgroup2 cgroup2 rw,nsdelegate\n";

    fn res() -> Resources {
        Resources {
            memory: Some(Memory {
                limit: Some(64 << 20),
                swap: Some(96 << 20),
                ..Default::default()
            }),
            cpu: Some(Cpu {
                shares: Some(512),
                quota: Some(50_000),
                period: Some(100_000),
                cpus: Some("0".into()),
                ..Default::default()
            }),
            pids: Some(Pids { limit: 64 }),
            devices: vec![],
        }
    }

    #[test]
    fn detects_hybrid_as_v1() {
        let l = Layout::from_mountinfo(HYBRID);
        let Layout::V1 { hierarchies } = &l else {
            panic!("{l:?}")
        };
        assert_eq!(
            hierarchies[Path::new("/sys/fs/cgroup/cpu,cpuacct")],
            vec!["cpu", "cpuacct"]
        );
        assert_eq!(
            hierarchies[Path::new("/sys/fs/cgroup/systemd")],
            vec!["xattr", "name=systemd"]
        );
        assert_eq!(
            Layout::from_mountinfo(UNIFIED),
            Layout::V2 {
                root: "/sys/fs/cgroup".into()
            }
        );
    }

    #[test]
    fn v2_limits() {
        let fs = FakeFs::with_files(&[(
            "/sys/fs/cgroup/cgroup.controllers",
            "cpuset cpu io memory pids",
        )]);
        let cg = Cgroup::new(
            fs,
            Layout::V2 {
                root: "/sys/fs/cgroup".into(),
            },
            "/berth/c1",
        );
        cg.create(Some(&res())).unwrap();
        let fs = &cg.fs;
        assert_eq!(
            fs.written("/sys/fs/cgroup/cgroup.subtree_control").unwrap(),
            "+cpu +cpuset +memory +pids +io"
        );
        assert_eq!(
            fs.written("/sys/fs/cgroup/berth/c1/memory.max").unwrap(),
            "67108864"
        );
        assert_eq!(
            fs.written("/sys/fs/cgroup/berth/c1/memory.swap.max")
                .unwrap(),
            (32u64 << 20).to_string()
        );
        assert_eq!(
            fs.written("/sys/fs/cgroup/berth/c1/cpu.max").unwrap(),
            "50000 100000"
        );
        assert_eq!(
            fs.written("/sys/fs/cgroup/berth/c1/cpu.weight").unwrap(),
            shares_to_weight(512).to_string()
        );
        assert_eq!(
            fs.written("/sys/fs/cgroup/berth/c1/cpuset.cpus").unwrap(),
            "0"
        );
        assert_eq!(
            fs.written("/sys/fs/cgroup/berth/c1/pids.max").unwrap(),
            "64"
        );
        cg.add_pid(42).unwrap();
        assert_eq!(
            fs.written("/sys/fs/cgroup/berth/c1/cgroup.procs").unwrap(),
            "42"
        );
    }

    #[test]
    fn v2_unlimited_and_freeze() {
        let fs = FakeFs::with_files(&[("/cg/berth/x/cgroup.events", "populated 1\nfrozen 1\n")]);
        let cg = Cgroup::new(fs, Layout::V2 { root: "/cg".into() }, "berth/x");
        let r = Resources {
            memory: Some(Memory {
                limit: Some(-1),
                swap: Some(-1),
                ..Default::default()
            }),
            cpu: Some(Cpu {
                quota: Some(-1),
                ..Default::default()
            }),
            pids: Some(Pids { limit: 0 }),
            devices: vec![],
        };
        cg.apply(&r).unwrap();
        assert_eq!(cg.fs.written("/cg/berth/x/memory.max").unwrap(), "max");
        assert_eq!(cg.fs.written("/cg/berth/x/memory.swap.max").unwrap(), "max");
        assert_eq!(cg.fs.written("/cg/berth/x/cpu.max").unwrap(), "max 100000");
        assert_eq!(cg.fs.written("/cg/berth/x/pids.max").unwrap(), "max");
        cg.set_frozen(true).unwrap();
        assert_eq!(cg.fs.written("/cg/berth/x/cgroup.freeze").unwrap(), "1");
        assert!(cg.is_frozen());
    }

    #[test]
    fn v2_stats_and_oom() {
        let fs = FakeFs::with_files(&[
            ("/cg/c/cpu.stat", "usage_usec 1500\nuser_usec 1000\n"),
            ("/cg/c/memory.current", "4096\n"),
            ("/cg/c/memory.max", "max\n"),
            (
                "/cg/c/memory.events",
                "low 0\nhigh 0\nmax 3\noom 1\noom_kill 1\n",
            ),
            ("/cg/c/memory.stat", "anon 1\nfile 300\ninactive_file 200\n"),
            ("/cg/c/pids.current", "3\n"),
            (
                "/cg/c/io.stat",
                "8:0 rbytes=10 wbytes=20 rios=1 wios=2\n8:16 rbytes=1 wbytes=2\n",
            ),
        ]);
        let cg = Cgroup::new(fs, Layout::V2 { root: "/cg".into() }, "c");
        let s = cg.stats();
        assert_eq!(s.cpu_usage_ns, 1_500_000);
        assert_eq!((s.memory_usage, s.memory_limit), (4096, None));
        assert_eq!((s.memory_cache, s.memory_inactive_file), (300, 200));
        assert_eq!(s.pids_current, 3);
        assert_eq!((s.blkio_read_bytes, s.blkio_write_bytes), (11, 22));
        assert_eq!(s.oom_kills, 1);
    }

    #[test]
    fn v1_cpuset_inherits_parent_and_errors_carry_path() {
        let fs = FakeFs::with_files(&[
            ("/h/cpuset/cpuset.cpus", "0-1\n"),
            ("/h/cpuset/cpuset.mems", "0\n"),
        ]);
        fs.fail_writes
            .lock()
            .unwrap()
            .push("/h/pids/b/c/pids.max".into());
        let mut h = BTreeMap::new();
        h.insert(PathBuf::from("/h/cpuset"), vec!["cpuset".to_string()]);
        h.insert(PathBuf::from("/h/pids"), vec!["pids".to_string()]);
        let cg = Cgroup::new(fs, Layout::V1 { hierarchies: h }, "b/c");
        let err = cg.create(Some(&res())).unwrap_err();
        assert!(
            matches!(&err, RuntimeError::Cgroup { path, .. } if path == Path::new("/h/pids/b/c/pids.max")),
            "{err}"
        );
        assert_eq!(cg.fs.written("/h/cpuset/b/cpuset.cpus").unwrap(), "0-1");
        assert_eq!(cg.fs.written("/h/cpuset/b/c/cpuset.mems").unwrap(), "0");
    }

    /// The controller-independent part of v2 (dirs, membership, freeze, kill) for real on this
    /// host's cgroup2 mount (hybrid: it carries no controllers, but those features are core).
    #[test]
    fn v2_core_for_real_on_the_unified_mount() {
        let root = Path::new("/sys/fs/cgroup/unified");
        if !nix::unistd::geteuid().is_root() || !root.join("cgroup.procs").exists() {
            return;
        }
        let cg = Cgroup::host(
            Layout::V2 { root: root.into() },
            format!("berth-unit-{}", std::process::id()),
        );
        cg.create(None).unwrap();
        let mut child = std::process::Command::new("sleep")
            .arg("100")
            .spawn()
            .unwrap();
        let pid = child.id() as i32;
        cg.add_pid(pid).unwrap();
        assert_eq!(cg.procs(), vec![pid]);
        cg.set_frozen(true).unwrap();
        assert!(cg.is_frozen());
        cg.set_frozen(false).unwrap();
        assert!(!cg.is_frozen());
        cg.kill_all();
        use std::os::unix::process::ExitStatusExt;
        assert_eq!(child.wait().unwrap().signal(), Some(libc::SIGKILL));
        cg.destroy().unwrap();
        assert!(!cg.exists());
    }

    #[test]
    fn weights_and_device_rules() {
        assert_eq!(shares_to_weight(2), 1);
        assert_eq!(shares_to_weight(1024), 39);
        assert_eq!(shares_to_weight(262_144), 10_000);
        assert_eq!(
            device_rule(&DeviceRule {
                allow: false,
                access: Some("rwm".into()),
                ..Default::default()
            }),
            "a"
        );
        let r = DeviceRule {
            allow: true,
            kind: Some("c".into()),
            major: Some(1),
            minor: Some(3),
            access: Some("rwm".into()),
        };
        assert_eq!(device_rule(&r), "c 1:3 rwm");
        let any = DeviceRule {
            allow: true,
            kind: Some("c".into()),
            major: Some(136),
            minor: None,
            access: Some("rwm".into()),
        };
        assert_eq!(device_rule(&any), "c 136:* rwm");
    }
}
