//! The container manager over a state root: what the API layer calls.
//!
//! Every container lives in `<root>/containers/<id>/` and is owned by its monitor process
//! (see [`super::monitor`]); the manager talks to monitors over their sockets, reads state
//! files, and spawns monitors and exec helpers (the `berth` binary, re-executed). Several berth
//! processes may use one root: state changes happen under the container's flock.

use std::io::{BufRead, BufReader};
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use super::cgroups::{Cgroup, CgroupStats, Layout};
use super::error::{IoContext, Result, RuntimeError};
use super::logs::{LogOptions, Logs};
use super::monitor::{self, Request, Response};
use super::request::{CreateRequest, MonitorOptions};
use super::spec::{Process, Spec};
use super::state::{self, ContainerDir, ContainerId, OciState, State, Status};
use super::sys::{self, WinSize};
use super::watch::Watcher;

/// Handle on a state root.
#[derive(Debug, Clone)]
pub struct Runtime {
    root: PathBuf,
    exe: PathBuf,
}

/// How an exec'd process gets its stdio.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StdioMode {
    /// The caller's own stdio (CLI).
    Inherit,
    /// Pipes, available on [`ExecProcess::child`].
    Pipes,
    /// A pty in the container; the master is returned in [`ExecProcess::master`].
    Pty,
    /// A pty whose master goes to this runc-style console socket.
    ConsoleSocket(PathBuf),
    /// A pty proxied by the helper to its own (the caller's) stdio (CLI `exec -t`).
    ProxyTerminal,
}

/// A process to run in a running container.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct ExecRequest {
    pub args: Vec<String>,
    #[serde(default)]
    pub env: Vec<String>,
    #[serde(default)]
    pub cwd: Option<String>,
    #[serde(default)]
    pub uid: Option<u32>,
    #[serde(default)]
    pub gid: Option<u32>,
    #[serde(default)]
    pub additional_gids: Vec<u32>,
    #[serde(default)]
    pub tty: bool,
    /// Initial terminal size.
    #[serde(default)]
    pub size: Option<WinSize>,
    /// Full process (from `--process`); overrides the fields above when set.
    #[serde(default)]
    pub process: Option<Process>,
    /// Write the host pid of the process (not of the helper) here once it runs.
    #[serde(default)]
    pub pid_file: Option<PathBuf>,
}

impl ExecRequest {
    pub fn from_process(p: Process) -> ExecRequest {
        ExecRequest {
            args: p.args.clone(),
            tty: p.terminal,
            process: Some(p),
            ..Default::default()
        }
    }
}

/// A running exec.
pub struct ExecProcess {
    /// The exec helper (host side); its exit code is the process's.
    pub child: Child,
    pub master: Option<OwnedFd>,
}

impl ExecProcess {
    /// Pid of the helper that owns the process.
    pub fn pid(&self) -> i32 {
        self.child.id() as i32
    }

    /// Wait for the process; returns its exit code (128 + signal when killed).
    pub fn wait(&mut self) -> Result<i32> {
        use std::os::unix::process::ExitStatusExt;
        let st = self
            .child
            .wait()
            .map_err(|e| RuntimeError::sys("wait exec helper", e))?;
        Ok(st.code().unwrap_or_else(|| 128 + st.signal().unwrap_or(0)))
    }

    pub fn resize(&self, ws: WinSize) -> Result<()> {
        let m = self
            .master
            .as_ref()
            .ok_or_else(|| RuntimeError::BadRequest("exec has no terminal".into()))?;
        sys::set_winsize(m.as_fd(), ws).map_err(|e| RuntimeError::sys("resize", e))
    }
}

/// Where monitors of auto-removed containers record their exit: `ROOT/exits`, next to
/// `ROOT/containers/<id>`.
pub(crate) fn exits_dir(container_dir: &Path) -> Option<PathBuf> {
    Some(container_dir.parent()?.parent()?.join("exits"))
}

/// Where removed containers' directories wait to be deleted: `<root>/trash`.
pub(crate) fn trash_dir(root: &Path) -> PathBuf {
    root.join("trash")
}

/// Take a container directory out of `containers/` with one rename (into the root's trash,
/// as `<id>.<pid of the remover>`), so that the container is gone at once and deleting its
/// files can happen later. Falls back to deleting it in place. Returns where it went.
pub(crate) fn move_to_trash(container_dir: &Path) -> Option<PathBuf> {
    let root = container_dir.parent()?.parent()?;
    let name = container_dir.file_name()?.to_str()?;
    let trash = trash_dir(root);
    let _ = std::fs::create_dir(&trash);
    let dest = trash.join(format!("{name}.{}", std::process::id()));
    match std::fs::rename(container_dir, &dest) {
        Ok(()) => Some(dest),
        Err(_) => {
            let _ = std::fs::remove_dir_all(container_dir);
            None
        }
    }
}

/// Remove a stopped container's directory, under its lock. It leaves `containers/` with one
/// rename first: an operation that opens the lock file meanwhile (a monitor saving its last
/// state, a state refresh) then finds no container, where it used to re-create the file in a
/// directory being emptied, and the removal failed with ENOTEMPTY (seen under `docker rm -f`
/// of many containers at once).
fn remove_dir(dir: &ContainerDir) -> Result<()> {
    let g = dir.lock()?;
    let trashed = move_to_trash(&dir.dir);
    drop(g);
    match trashed {
        // What the delete leaves is swept once this process is gone (the entry names it).
        Some(t) => {
            let _ = std::fs::remove_dir_all(t);
            Ok(())
        }
        // Not renamed (no trash dir could be made): deleted in place.
        None if dir.dir.exists() => std::fs::remove_dir_all(&dir.dir).ctx("remove", &dir.dir),
        None => Ok(()),
    }
}

/// The trash's entries (`<id>.<remover pid>`): path, container id, and whether the remover
/// is still alive.
fn trash_entries(root: &Path) -> Vec<(PathBuf, String, bool)> {
    let Ok(entries) = std::fs::read_dir(trash_dir(root)) else {
        return Vec::new();
    };
    entries
        .flatten()
        .map(|e| {
            let name = e.file_name().to_string_lossy().into_owned();
            let (id, pid) = name.rsplit_once('.').unwrap_or((&name, ""));
            let alive = pid.parse::<i32>().is_ok_and(|p| state::alive(p, 0));
            (e.path(), id.to_owned(), alive)
        })
        .collect()
}

/// Delete, on a background thread, what is left in the trash by removers that died before
/// finishing (their pid is gone). Entries of live removers are theirs to delete.
fn sweep_trash(root: &Path) {
    let stale: Vec<PathBuf> = trash_entries(root)
        .into_iter()
        .filter(|(_, _, alive)| !alive)
        .map(|(p, _, _)| p)
        .collect();
    if stale.is_empty() {
        return;
    }
    let _ = std::thread::Builder::new()
        .name("berth-trash".into())
        .spawn(move || {
            for p in stale {
                let _ = std::fs::remove_dir_all(p);
            }
        });
}

/// Ids of removed containers whose remover (a monitor, an `rm`) is still at work on them: their
/// directory is in the trash under a live pid. Their network is the remover's to take down.
pub fn being_removed(root: &Path) -> Vec<String> {
    trash_entries(root)
        .into_iter()
        .filter(|(_, _, alive)| *alive)
        .map(|(_, id, _)| id)
        .collect()
}

/// Exit information.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExitInfo {
    pub exit_code: i32,
    pub oom_killed: bool,
}

/// Network counters of one interface.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct NetStats {
    pub rx_bytes: u64,
    pub rx_packets: u64,
    pub tx_bytes: u64,
    pub tx_packets: u64,
}

/// One stats sample.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Stats {
    pub read: String,
    pub cgroup: CgroupStats,
    /// Host CPU time (all CPUs), nanoseconds, for Docker's CPU % formula.
    pub system_cpu_ns: u64,
    pub online_cpus: u32,
    pub networks: std::collections::BTreeMap<String, NetStats>,
}

/// One row of `top`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProcessInfo {
    pub uid: u32,
    pub pid: i32,
    pub ppid: i32,
    pub stime: String,
    pub tty: String,
    pub time: String,
    pub cmd: String,
}

impl ProcessInfo {
    pub fn columns(&self) -> Vec<String> {
        vec![
            self.uid.to_string(),
            self.pid.to_string(),
            self.ppid.to_string(),
            self.stime.clone(),
            self.tty.clone(),
            self.time.clone(),
            self.cmd.clone(),
        ]
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Top {
    pub titles: Vec<String>,
    pub processes: Vec<ProcessInfo>,
}

/// The error recorded for a container whose monitor died while it ran: nobody reaped its init.
pub const MONITOR_GONE_EXIT_UNKNOWN: &str =
    "the container's monitor exited unexpectedly while it ran: the exit status is unknown";

/// Whether the container's monitor is gone while its init still runs (unmonitored: it can be
/// stopped and removed, but its exit status will not be known).
pub fn unmonitored(st: &State) -> bool {
    matches!(
        st.status,
        Status::Running | Status::Paused | Status::Created
    ) && st.monitor_pid.is_some_and(|p| !state::alive(p, 0))
        && st.pid > 0
        && state::alive(st.pid, st.pid_start_time)
}

fn monitor_err(id: &ContainerId, reason: impl Into<String>) -> RuntimeError {
    RuntimeError::Monitor {
        id: id.to_string(),
        reason: reason.into(),
    }
}

impl Runtime {
    /// Open (creating if needed) a state root. The berth binary for monitors and exec helpers
    /// is the running executable; see [`Runtime::with_exe`].
    pub fn open(root: &Path) -> Result<Runtime> {
        let root = &std::path::absolute(root).map_err(|e| RuntimeError::io("resolve", root, e))?;
        let c = root.join("containers");
        std::fs::create_dir_all(&c).ctx("mkdir", &c)?;
        use std::os::unix::fs::PermissionsExt;
        let _ = std::fs::set_permissions(root, std::fs::Permissions::from_mode(0o700));
        let exe = super::seal::host_exe()
            .map_err(|e| RuntimeError::io("current_exe", "/proc/self/exe", e))?;
        sweep_trash(root);
        Ok(Runtime {
            root: root.to_path_buf(),
            exe,
        })
    }

    /// Use this `berth` binary for monitors and exec helpers.
    pub fn with_exe(mut self, exe: impl Into<PathBuf>) -> Runtime {
        self.exe = exe.into();
        self
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    fn dir(&self, id: &ContainerId) -> ContainerDir {
        ContainerDir::new(&self.root, id)
    }

    fn new_dir(&self, id: &ContainerId) -> Result<ContainerDir> {
        let d = self.dir(id);
        match std::fs::create_dir(&d.dir) {
            Ok(()) => Ok(d),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                Err(RuntimeError::AlreadyExists { id: id.to_string() })
            }
            Err(e) => Err(RuntimeError::io("mkdir", &d.dir, e)),
        }
    }

    /// Create a container from a high-level request: writes the spec and the API's record,
    /// spawns the monitor, which clones the init and leaves it waiting for [`Runtime::start`].
    pub fn create(&self, req: &CreateRequest) -> Result<State> {
        let id = req.id()?.clone();
        let opts = req.monitor_options()?;
        let dir = self.new_dir(&id)?;
        let res = (|| {
            let mountpoint = dir.dir.join("rootfs");
            let spec = req.to_spec(&mountpoint)?;
            if spec.overlay()?.is_some() {
                std::fs::create_dir_all(&mountpoint).ctx("mkdir", &mountpoint)?;
            }
            let record = if req.record.is_null() {
                serde_json::json!({})
            } else {
                req.record.clone()
            };
            // An auto-removed container is transient: a crash ends it (Docker removes such
            // containers when it restarts), so nothing of it needs to survive one and its
            // files are not fsynced (7 fsyncs fewer per `run --rm`). A container whose files
            // a crash left unreadable is taken away by [`Runtime::list`].
            state::write_atomic_with(
                &dir.record(),
                &serde_json::to_vec(&record).expect("serialisable"),
                !opts.auto_remove,
            )?;
            self.create_from_spec(&dir, spec, &dir.dir, opts)
        })();
        if res.is_err() {
            let _ = std::fs::remove_dir_all(&dir.dir);
        }
        res
    }

    /// Create from an OCI bundle (`runtime create`).
    pub fn create_bundle(
        &self,
        id: &ContainerId,
        bundle: &Path,
        console_socket: Option<&Path>,
    ) -> Result<State> {
        let spec = Spec::load(bundle)?;
        let dir = self.new_dir(id)?;
        let opts = MonitorOptions {
            console_socket: console_socket.map(Path::to_path_buf),
            ..Default::default()
        };
        let res = self.create_from_spec(&dir, spec, bundle, opts);
        if res.is_err() {
            let _ = std::fs::remove_dir_all(&dir.dir);
        }
        res
    }

    fn create_from_spec(
        &self,
        dir: &ContainerDir,
        spec: Spec,
        bundle: &Path,
        opts: MonitorOptions,
    ) -> Result<State> {
        let _g = dir.lock()?;
        let durable = !opts.auto_remove;
        state::write_atomic_with(
            &dir.config(),
            &serde_json::to_vec_pretty(&spec).expect("serialisable"),
            durable,
        )?;
        state::write_atomic_with(
            &dir.options(),
            &serde_json::to_vec(&opts).expect("serialisable"),
            durable,
        )?;
        let mut st = State {
            oci_version: spec.oci_version.clone(),
            id: dir.id.clone(),
            status: Status::Creating,
            pid: 0,
            pid_start_time: 0,
            bundle: bundle.to_path_buf(),
            annotations: spec.annotations.clone(),
            created: state::now_rfc3339(),
            started: None,
            finished: None,
            exit_code: None,
            oom_killed: false,
            restart_count: 0,
            monitor_pid: None,
            cgroup: super::launch::cgroup_rel(&spec, dir.id.as_str()),
            terminal: spec.process().terminal,
            error: None,
            stopped_by_user: false,
            seq: 0,
        };
        dir.write_state_with(&mut st, durable)?;
        drop(_g);
        super::trace_time("create: files written");
        self.spawn_monitor(dir, false)?;
        super::trace_time("create: monitor reported");
        dir.read_state()
    }

    fn spawn_monitor(&self, dir: &ContainerDir, start: bool) -> Result<()> {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(dir.dir.join("monitor.log"))
            .ctx("open", dir.dir.join("monitor.log"))?;
        // From a sealed image at once: the monitor does not re-execute itself.
        let (mut cmd, _seal) = match super::seal::sealed_command(&self.exe) {
            Some((c, fd)) => (c, Some(fd)),
            None => (Command::new(&self.exe), None),
        };
        cmd.arg("__monitor")
            .arg(&self.root)
            .arg(dir.id.as_str())
            .arg(if start { "start" } else { "create" });
        cmd.stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::from(log));
        let mut child = cmd
            .spawn()
            .map_err(|e| RuntimeError::io("spawn monitor", &self.exe, e))?;
        let out = child.stdout.take().expect("piped");
        let mut line = String::new();
        let _ = BufReader::new(out).read_line(&mut line);
        let _ = child.wait();
        match line.trim().split_once(' ') {
            Some(("ok", _)) => Ok(()),
            Some(("err", msg)) => Err(RuntimeError::Init(msg.to_string())),
            _ => Err(monitor_err(
                &dir.id,
                format!("monitor did not report readiness ({:?})", line.trim()),
            )),
        }
    }

    fn call(&self, dir: &ContainerDir, req: &Request) -> Result<Response> {
        let r = monitor::call(&dir.socket(), dir.id.as_str(), req)?;
        if r.ok {
            Ok(r)
        } else {
            Err(monitor_err(&dir.id, r.error.unwrap_or_default()))
        }
    }

    /// Current state, reconciled with reality: a dead monitor with a dead init is `stopped`.
    pub fn state(&self, id: &ContainerId) -> Result<State> {
        let dir = self.dir(id);
        let st = dir.read_state()?;
        if matches!(st.status, Status::Stopped) {
            return Ok(st);
        }
        let monitor_alive = st.monitor_pid.is_some_and(|p| state::alive(p, 0));
        if monitor_alive || (st.status == Status::Creating && st.monitor_pid.is_none()) {
            return Ok(st);
        }
        if st.pid > 0 && state::alive(st.pid, st.pid_start_time) {
            return Ok(st);
        }
        let _g = dir.lock()?;
        let mut st = dir.read_state()?;
        if st.status != Status::Stopped {
            // Nobody reaped the init: how it ended is not known, and stays unknown (no exit
            // code is made up).
            let ran = matches!(st.status, Status::Running | Status::Paused);
            st.status = Status::Stopped;
            st.pid = 0;
            st.pid_start_time = 0;
            st.monitor_pid = None;
            if ran {
                st.exit_code = None;
                st.oom_killed = false;
            }
            st.error.get_or_insert_with(|| {
                if ran {
                    MONITOR_GONE_EXIT_UNKNOWN.into()
                } else {
                    "the container's monitor exited unexpectedly".into()
                }
            });
            st.finished.get_or_insert_with(state::now_rfc3339);
            dir.write_state(&mut st)?;
            // What the monitor would have cleaned up: processes the init left, its cgroup.
            if let Ok(cg) = self.cgroup(&st)
                && cg.exists()
            {
                cg.kill_all();
                let _ = cg.destroy();
            }
        }
        Ok(st)
    }

    pub fn oci_state(&self, id: &ContainerId) -> Result<OciState> {
        let st = self.state(id)?;
        let rootfs = Spec::parse(
            &std::fs::read(self.dir(id).config()).ctx("read", self.dir(id).config())?,
            &self.dir(id).config(),
        )
        .map(|s| s.rootfs(&st.bundle))
        .unwrap_or_default();
        Ok(OciState {
            oci_version: st.oci_version,
            id: st.id.to_string(),
            status: st.status,
            pid: if matches!(st.status, Status::Stopped) {
                0
            } else {
                st.pid
            },
            bundle: st.bundle,
            rootfs,
            created: st.created,
            annotations: st.annotations,
        })
    }

    /// All containers, sorted by id.
    pub fn list(&self) -> Result<Vec<State>> {
        self.list_map(|st| st)
    }

    /// `f` of every container's state, in id order. Each state is dropped after `f`: a list
    /// of 1,000 containers never holds 1,000 states at once (what the caller keeps is
    /// usually much smaller).
    pub fn list_map<T>(&self, mut f: impl FnMut(State) -> T) -> Result<Vec<T>> {
        let c = self.root.join("containers");
        let mut ids = Vec::new();
        for e in std::fs::read_dir(&c).ctx("read dir", &c)? {
            let e = e.ctx("read dir", &c)?;
            if let Ok(id) = ContainerId::new(e.file_name().to_string_lossy().into_owned()) {
                ids.push(id);
            }
        }
        ids.sort();
        let mut out = Vec::with_capacity(ids.len());
        for id in ids {
            match self.state(&id) {
                Ok(s) => out.push(f(s)),
                Err(RuntimeError::NotFound { .. }) => continue,
                Err(RuntimeError::State { .. }) if self.remove_crash_leftover(&id) => continue,
                Err(e) => return Err(e),
            }
        }
        Ok(out)
    }

    /// An auto-removed container's files are not fsynced: a crash can leave its state
    /// unreadable. Such a container was going to be removed anyway: remove it now (its
    /// files in the background). Returns whether it was one.
    fn remove_crash_leftover(&self, id: &ContainerId) -> bool {
        let dir = self.dir(id);
        let opts = match std::fs::read(dir.options()) {
            Ok(d) if d.is_empty() => MonitorOptions {
                auto_remove: true,
                ..Default::default()
            },
            Ok(d) => match serde_json::from_slice::<MonitorOptions>(&d) {
                Ok(o) => o,
                Err(_) => return false,
            },
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => MonitorOptions {
                auto_remove: true,
                ..Default::default()
            },
            Err(_) => return false,
        };
        if !opts.auto_remove {
            return false;
        }
        let trashed = move_to_trash(&dir.dir);
        let _ = std::thread::Builder::new()
            .name("berth-trash".into())
            .spawn(move || {
                for d in trashed.into_iter().chain(opts.remove_with) {
                    let _ = std::fs::remove_dir_all(d);
                }
            });
        true
    }

    /// The API layer's record, parsed straight into the caller's type (no intermediate
    /// `serde_json::Value`); `None` when it is missing or does not parse.
    pub fn record_as<T: serde::de::DeserializeOwned>(&self, id: &ContainerId) -> Option<T> {
        serde_json::from_slice(&std::fs::read(self.dir(id).record()).ok()?).ok()
    }

    /// The API layer's record, as passed at create.
    pub fn record(&self, id: &ContainerId) -> Result<serde_json::Value> {
        let p = self.dir(id).record();
        match std::fs::read(&p) {
            Ok(d) => serde_json::from_slice(&d).map_err(|e| RuntimeError::State {
                path: p,
                reason: e.to_string(),
            }),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                if self.dir(id).exists() {
                    Ok(serde_json::json!({}))
                } else {
                    Err(RuntimeError::NotFound { id: id.to_string() })
                }
            }
            Err(e) => Err(RuntimeError::io("read", p, e)),
        }
    }

    /// The container's OCI spec.
    pub fn spec(&self, id: &ContainerId) -> Result<Spec> {
        let p = self.dir(id).config();
        let d = std::fs::read(&p).map_err(|e| {
            if e.kind() == std::io::ErrorKind::NotFound {
                RuntimeError::NotFound { id: id.to_string() }
            } else {
                RuntimeError::io("read", &p, e)
            }
        })?;
        Spec::parse(&d, &p)
    }

    fn options(&self, id: &ContainerId) -> MonitorOptions {
        std::fs::read(self.dir(id).options())
            .ok()
            .and_then(|d| serde_json::from_slice(&d).ok())
            .unwrap_or_default()
    }

    /// Start a created container, or start a stopped one again (new monitor).
    pub fn start(&self, id: &ContainerId) -> Result<State> {
        let dir = self.dir(id);
        let st = self.state(id)?;
        match st.status {
            Status::Created => Ok(self.call(&dir, &Request::Start)?.state.unwrap_or(st)),
            Status::Stopped if st.monitor_pid.is_some_and(|p| state::alive(p, 0)) => {
                Err(RuntimeError::WrongState {
                    id: id.to_string(),
                    state: "restarting".into(),
                    action: "start",
                    needed: "created or stopped",
                })
            }
            Status::Stopped => {
                self.spawn_monitor(&dir, true)?;
                self.state(id)
            }
            s => Err(RuntimeError::WrongState {
                id: id.to_string(),
                state: s.to_string(),
                action: "start",
                needed: "created or stopped",
            }),
        }
    }

    fn wait_monitor_gone(&self, st: &State, timeout: Duration) {
        let Some(pid) = st.monitor_pid else { return };
        // A pidfd becomes readable when the process exits: no polling.
        let Ok(pfd) = sys::pidfd_open(pid) else {
            return;
        };
        let mut fds = [nix::poll::PollFd::new(
            pfd.as_fd(),
            nix::poll::PollFlags::POLLIN,
        )];
        let ms = timeout.as_millis().min(u32::MAX as u128) as u32;
        let _ = nix::poll::poll(
            &mut fds,
            nix::poll::PollTimeout::try_from(ms).unwrap_or(nix::poll::PollTimeout::MAX),
        );
    }

    /// Stop: the stop signal, then SIGKILL after `timeout` (default: the container's, else 10 s).
    /// Returns once the container has exited.
    pub fn stop(&self, id: &ContainerId, timeout: Option<Duration>) -> Result<State> {
        let dir = self.dir(id);
        let st = self.state(id)?;
        if matches!(st.status, Status::Stopped) && st.monitor_pid.is_none() {
            return Ok(st);
        }
        let opts = self.options(id);
        let timeout =
            timeout.unwrap_or(Duration::from_secs(opts.stop_timeout.unwrap_or(10) as u64));
        let signal = opts.stop_signal.unwrap_or(libc::SIGTERM);
        match self.call(
            &dir,
            &Request::Stop {
                signal,
                timeout_ms: timeout.as_millis() as u64,
            },
        ) {
            Ok(_) => {}
            Err(RuntimeError::Monitor { .. })
                if st.pid > 0 && state::alive(st.pid, st.pid_start_time) =>
            {
                // Unmonitored (the monitor was killed): signal directly through a pidfd.
                self.kill_direct(&st, signal)?;
                let Ok(pfd) = sys::pidfd_open(st.pid) else {
                    return self.state(id);
                };
                let mut fds = [nix::poll::PollFd::new(
                    pfd.as_fd(),
                    nix::poll::PollFlags::POLLIN,
                )];
                let ms = timeout.as_millis() as u32;
                if nix::poll::poll(
                    &mut fds,
                    nix::poll::PollTimeout::try_from(ms).unwrap_or(nix::poll::PollTimeout::MAX),
                ) == Ok(0)
                {
                    let _ = sys::pidfd_send_signal(pfd.as_fd(), libc::SIGKILL);
                    let _ = nix::poll::poll(&mut fds, nix::poll::PollTimeout::NONE);
                }
            }
            Err(e) => return Err(e),
        }
        self.wait_monitor_gone(&st, Duration::from_secs(30));
        self.state(id)
    }

    fn kill_direct(&self, st: &State, sig: i32) -> Result<()> {
        let pfd = sys::pidfd_open(st.pid).map_err(|e| RuntimeError::sys("pidfd_open", e))?;
        // The pidfd pins the process: checking the start time after opening it rules out pid reuse.
        if state::proc_start_time(st.pid) != Some(st.pid_start_time) {
            return Err(RuntimeError::WrongState {
                id: st.id.to_string(),
                state: "stopped".into(),
                action: "kill",
                needed: "running",
            });
        }
        sys::pidfd_send_signal(pfd.as_fd(), sig)
            .map_err(|e| RuntimeError::sys("pidfd_send_signal", e))
    }

    /// Send a signal to the container's init.
    pub fn kill(&self, id: &ContainerId, sig: i32) -> Result<()> {
        let st = self.state(id)?;
        if !matches!(
            st.status,
            Status::Running | Status::Paused | Status::Created
        ) {
            return Err(RuntimeError::WrongState {
                id: id.to_string(),
                state: st.status.to_string(),
                action: "kill",
                needed: "running",
            });
        }
        match self.call(
            &self.dir(id),
            &Request::Kill {
                signal: sig,
                all: false,
            },
        ) {
            Err(RuntimeError::Monitor { .. }) if st.pid > 0 => self.kill_direct(&st, sig),
            r => r.map(drop),
        }
    }

    /// Send a signal to every process of the container.
    pub fn kill_all(&self, id: &ContainerId, sig: i32) -> Result<()> {
        self.call(
            &self.dir(id),
            &Request::Kill {
                signal: sig,
                all: true,
            },
        )
        .map(drop)
    }

    /// Stop (if running), then start again.
    pub fn restart(&self, id: &ContainerId, timeout: Option<Duration>) -> Result<State> {
        let st = self.state(id)?;
        if matches!(st.status, Status::Running | Status::Paused) || st.monitor_pid.is_some() {
            self.stop(id, timeout)?;
        }
        self.start(id)
    }

    pub fn pause(&self, id: &ContainerId) -> Result<State> {
        let r = self.call(&self.dir(id), &Request::Pause)?;
        r.state.ok_or_else(|| monitor_err(id, "no state in reply"))
    }

    pub fn unpause(&self, id: &ContainerId) -> Result<State> {
        let r = self.call(&self.dir(id), &Request::Unpause)?;
        r.state.ok_or_else(|| monitor_err(id, "no state in reply"))
    }

    /// Whether the container is "creating" with nobody left to finish it: no monitor recorded
    /// and none listening on its socket (its creator was killed before the monitor started).
    /// A monitor whose spawner died still finishes the creation: that is not abandoned.
    pub fn creation_abandoned(&self, st: &State) -> bool {
        st.status == Status::Creating
            && st.monitor_pid.is_none()
            && super::sockpath::connect(&self.dir(&st.id).socket()).is_err()
    }

    /// Remove a container. A running (or paused) one is refused unless `force`, which kills it.
    pub fn remove(&self, id: &ContainerId, force: bool) -> Result<()> {
        let dir = self.dir(id);
        let mut st = self.state(id)?;
        // A monitor still setting the container up (its spawner was killed mid-create) records
        // its state in a moment: removing under it would leave its cgroup and init behind.
        let deadline = Instant::now() + Duration::from_secs(10);
        while st.status == Status::Creating
            && !self.creation_abandoned(&st)
            && Instant::now() < deadline
        {
            std::thread::sleep(Duration::from_millis(20));
            st = self.state(id)?;
        }
        let live = matches!(st.status, Status::Running | Status::Paused);
        if live && !force {
            return Err(RuntimeError::WrongState {
                id: id.to_string(),
                state: st.status.to_string(),
                action: "remove",
                needed: "stopped (or force)",
            });
        }
        if st.monitor_pid.is_some() {
            match self.call(&dir, &Request::Shutdown { kill: true }) {
                Ok(_) => self.wait_monitor_gone(&st, Duration::from_secs(30)),
                Err(RuntimeError::Monitor { .. }) => {}
                Err(e) => return Err(e),
            }
        }
        if st.pid > 0 && state::alive(st.pid, st.pid_start_time) {
            let _ = self.kill_direct(&st, libc::SIGKILL);
        }
        // Leftovers of a monitor that died: the cgroup.
        if let Ok(layout) = Layout::detect() {
            let cg = Cgroup::host(layout, &st.cgroup);
            if cg.exists() {
                cg.kill_all();
                cg.destroy()?;
            }
        }
        remove_dir(&dir)
    }

    /// Block until the container's monitor is done: for an auto-removed container, until it
    /// is removed. Returns how it ended, or `None` when the monitor could not be asked (gone
    /// already, or one from an older berth): then [`Runtime::wait`] and a watch are the way.
    pub fn wait_removed(&self, id: &ContainerId) -> Option<ExitInfo> {
        let r = self.call(&self.dir(id), &Request::WaitRemoved).ok()?;
        let st = r.state?;
        (st.status == Status::Stopped).then(|| ExitInfo {
            exit_code: st.exit_code.unwrap_or(-1),
            oom_killed: st.oom_killed,
        })
    }

    /// Block until the container exits (the next exit when running); returns how it ended.
    pub fn wait(&self, id: &ContainerId) -> Result<ExitInfo> {
        let st = match self.state(id) {
            Ok(st) => st,
            // Auto-removed already: its monitor left the exit behind.
            Err(RuntimeError::NotFound { .. }) if self.exit_record(id).is_some() => {
                return Ok(self.exit_record(id).expect("checked"));
            }
            Err(e) => return Err(e),
        };
        let st = if matches!(st.status, Status::Stopped) && st.monitor_pid.is_none() {
            st
        } else {
            match self.call(&self.dir(id), &Request::Wait) {
                Ok(r) => r.state.unwrap_or(st),
                Err(RuntimeError::Monitor { .. }) => {
                    // Monitor gone: wait on the init itself if it still runs.
                    if st.pid > 0
                        && state::alive(st.pid, st.pid_start_time)
                        && let Ok(pfd) = sys::pidfd_open(st.pid)
                    {
                        let mut fds = [nix::poll::PollFd::new(
                            pfd.as_fd(),
                            nix::poll::PollFlags::POLLIN,
                        )];
                        let _ = nix::poll::poll(&mut fds, nix::poll::PollTimeout::NONE);
                    }
                    self.state(id)?
                }
                Err(e) => return Err(e),
            }
        };
        Ok(ExitInfo {
            exit_code: st.exit_code.unwrap_or(-1),
            oom_killed: st.oom_killed,
        })
    }

    /// How an auto-removed container ended (kept an hour, for late waiters).
    pub fn exit_record(&self, id: &ContainerId) -> Option<ExitInfo> {
        let dir = self.root.join("exits");
        // Old records go on the way: a waiter comes within seconds, not hours.
        if let Ok(entries) = std::fs::read_dir(&dir) {
            for e in entries.flatten() {
                let old = e
                    .metadata()
                    .ok()
                    .and_then(|m| m.modified().ok())
                    .and_then(|t| t.elapsed().ok());
                if old.is_some_and(|age| age > Duration::from_secs(3600)) {
                    let _ = std::fs::remove_file(e.path());
                }
            }
        }
        let data = std::fs::read(dir.join(format!("{}.json", id.as_str()))).ok()?;
        serde_json::from_slice(&data).ok()
    }

    /// Read the logs (see [`LogOptions`]); with `follow`, the iterator blocks for new lines and
    /// ends when the container stops.
    pub fn logs(&self, id: &ContainerId, opts: LogOptions) -> Result<Logs> {
        let dir = self.dir(id);
        if !dir.exists() {
            return Err(RuntimeError::NotFound { id: id.to_string() });
        }
        Logs::open(&dir, opts)
    }

    /// Attach to the container's stdio through its monitor. The stream carries raw output with
    /// a terminal, Docker-style 8-byte frames otherwise; writes go to the container's stdin
    /// (when `stdin` and the container has one).
    pub fn attach(&self, id: &ContainerId, stdin: bool) -> Result<UnixStream> {
        let dir = self.dir(id);
        let (r, s) = monitor::call_keep(&dir.socket(), id.as_str(), &Request::Attach { stdin })?;
        if !r.ok {
            return Err(monitor_err(id, r.error.unwrap_or_default()));
        }
        Ok(s)
    }

    /// Resize the container's terminal.
    pub fn resize(&self, id: &ContainerId, ws: WinSize) -> Result<()> {
        self.call(
            &self.dir(id),
            &Request::Resize {
                rows: ws.rows,
                cols: ws.cols,
            },
        )
        .map(drop)
    }

    fn cgroup(&self, st: &State) -> Result<Cgroup> {
        Ok(Cgroup::host(Layout::detect()?, &st.cgroup))
    }

    /// One stats sample.
    pub fn stats(&self, id: &ContainerId) -> Result<Stats> {
        let st = self.state(id)?;
        let cg = self.cgroup(&st)?;
        let mut s = Stats {
            read: state::now_rfc3339(),
            cgroup: cg.stats(),
            ..Default::default()
        };
        s.online_cpus = std::thread::available_parallelism()
            .map(|n| n.get() as u32)
            .unwrap_or(1);
        s.system_cpu_ns = system_cpu_ns();
        if st.pid > 0 && matches!(st.status, Status::Running | Status::Paused) {
            s.networks = net_dev(st.pid);
        }
        Ok(s)
    }

    /// Samples every `interval` until the container stops (Docker's stats stream).
    pub fn stats_stream(
        &self,
        id: &ContainerId,
        interval: Duration,
    ) -> impl Iterator<Item = Result<Stats>> + '_ {
        let id = id.clone();
        let mut first = true;
        let mut done = false;
        std::iter::from_fn(move || {
            if done {
                return None;
            }
            if !first {
                std::thread::sleep(interval);
            }
            first = false;
            let r = self.stats(&id);
            match self.state(&id) {
                Ok(st) if matches!(st.status, Status::Running | Status::Paused) => {}
                _ => done = true,
            }
            Some(r)
        })
    }

    /// The container's processes.
    pub fn top(&self, id: &ContainerId) -> Result<Top> {
        let st = self.state(id)?;
        let cg = self.cgroup(&st)?;
        let mut processes: Vec<ProcessInfo> =
            cg.procs().into_iter().filter_map(process_info).collect();
        processes.sort_by_key(|p| p.pid);
        Ok(Top {
            titles: ["UID", "PID", "PPID", "STIME", "TTY", "TIME", "CMD"]
                .iter()
                .map(|s| s.to_string())
                .collect(),
            processes,
        })
    }

    /// Run a process in a running container (joins its namespaces, cgroup, capabilities and
    /// seccomp filter) through an exec helper.
    pub fn exec(
        &self,
        id: &ContainerId,
        req: &ExecRequest,
        mode: StdioMode,
    ) -> Result<ExecProcess> {
        let st = self.state(id)?;
        if !matches!(st.status, Status::Running) {
            return Err(RuntimeError::WrongState {
                id: id.to_string(),
                state: st.status.to_string(),
                action: "exec",
                needed: "running",
            });
        }
        let json = serde_json::to_string(req).expect("serialisable");
        let (mut cmd, _seal) = match super::seal::sealed_command(&self.exe) {
            Some((c, fd)) => (c, Some(fd)),
            None => (Command::new(&self.exe), None),
        };
        cmd.arg("__exec")
            .arg(&self.root)
            .arg(id.as_str())
            .arg(&json);
        let mut listener = None;
        let mut sock_path = None;
        match &mode {
            StdioMode::Inherit => {}
            StdioMode::Pipes => {
                cmd.stdin(Stdio::piped())
                    .stdout(Stdio::piped())
                    .stderr(Stdio::piped());
            }
            StdioMode::ConsoleSocket(p) => {
                cmd.arg("console").arg(p);
            }
            StdioMode::ProxyTerminal => {
                cmd.arg("proxy");
            }
            StdioMode::Pty => {
                let p =
                    self.dir(id)
                        .dir
                        .join(format!("exec-{}-{}.sock", std::process::id(), nanos()));
                let l = super::sockpath::bind(&p).ctx("bind", &p)?;
                cmd.arg("console").arg(&p);
                cmd.stdin(Stdio::null()).stdout(Stdio::null());
                listener = Some(l);
                sock_path = Some(p);
            }
        }
        let mut child = cmd
            .spawn()
            .map_err(|e| RuntimeError::io("spawn exec helper", &self.exe, e))?;
        let master = match listener {
            Some(l) => {
                let r = accept_console(&l, &mut child);
                let _ = std::fs::remove_file(sock_path.expect("set with listener"));
                match r {
                    Ok(m) => Some(m),
                    Err(e) => {
                        let _ = child.kill();
                        let _ = child.wait();
                        return Err(e);
                    }
                }
            }
            None => None,
        };
        Ok(ExecProcess { child, master })
    }

    /// Watch every container's state changes (see [`Watcher`]).
    pub fn watch(&self) -> Result<Watcher> {
        Watcher::new(&self.root)
    }
}

fn nanos() -> u128 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0)
}

/// Accept the helper's connection and receive the pty master, giving up if the helper exits.
fn accept_console(l: &UnixListener, child: &mut Child) -> Result<OwnedFd> {
    l.set_nonblocking(true)
        .map_err(|e| RuntimeError::sys("nonblock", e))?;
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        match l.accept() {
            Ok((s, _)) => {
                s.set_nonblocking(false)
                    .map_err(|e| RuntimeError::sys("block", e))?;
                return super::exec::recv_fd(&s);
            }
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
            Err(e) => return Err(RuntimeError::sys("accept console", e)),
        }
        if let Ok(Some(st)) = child.try_wait() {
            return Err(RuntimeError::Init(format!(
                "exec helper exited ({st}) before sending the terminal"
            )));
        }
        if Instant::now() > deadline {
            return Err(RuntimeError::Init(
                "exec helper did not send the terminal".into(),
            ));
        }
        let mut fds = [nix::poll::PollFd::new(
            l.as_fd(),
            nix::poll::PollFlags::POLLIN,
        )];
        let _ = nix::poll::poll(&mut fds, nix::poll::PollTimeout::from(100u8));
    }
}

fn system_cpu_ns() -> u64 {
    let Ok(s) = std::fs::read_to_string("/proc/stat") else {
        return 0;
    };
    let Some(line) = s.lines().next() else {
        return 0;
    };
    let ticks: u64 = line
        .split_whitespace()
        .skip(1)
        .take(8)
        .filter_map(|v| v.parse::<u64>().ok())
        .sum();
    let hz = nix::unistd::sysconf(nix::unistd::SysconfVar::CLK_TCK)
        .ok()
        .flatten()
        .unwrap_or(100) as u64;
    ticks * (1_000_000_000 / hz.max(1))
}

fn net_dev(pid: i32) -> std::collections::BTreeMap<String, NetStats> {
    let mut m = std::collections::BTreeMap::new();
    let Ok(s) = std::fs::read_to_string(format!("/proc/{pid}/net/dev")) else {
        return m;
    };
    for line in s.lines().skip(2) {
        let Some((name, rest)) = line.split_once(':') else {
            continue;
        };
        let f: Vec<u64> = rest
            .split_whitespace()
            .filter_map(|v| v.parse().ok())
            .collect();
        if f.len() < 10 {
            continue;
        }
        m.insert(
            name.trim().to_string(),
            NetStats {
                rx_bytes: f[0],
                rx_packets: f[1],
                tx_bytes: f[8],
                tx_packets: f[9],
            },
        );
    }
    m
}

fn process_info(pid: i32) -> Option<ProcessInfo> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let close = stat.rfind(')')?;
    let f: Vec<&str> = stat[close + 2..].split_whitespace().collect();
    let ppid = f.get(1)?.parse().ok()?;
    let tty_nr: u64 = f.get(4)?.parse().ok()?;
    let utime: u64 = f.get(11)?.parse().ok()?;
    let stime_t: u64 = f.get(12)?.parse().ok()?;
    let start: u64 = f.get(19)?.parse().ok()?;
    let hz = nix::unistd::sysconf(nix::unistd::SysconfVar::CLK_TCK)
        .ok()
        .flatten()
        .unwrap_or(100) as u64;
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let uid = status
        .lines()
        .find(|l| l.starts_with("Uid:"))?
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()?;
    let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).ok()?;
    let cmd = if cmdline.is_empty() {
        format!("[{}]", &stat[stat.find('(')? + 1..close])
    } else {
        String::from_utf8_lossy(&cmdline)
            .trim_end_matches('\0')
            .replace('\0', " ")
    };
    let secs = (utime + stime_t) / hz.max(1);
    let boot = std::fs::read_to_string("/proc/stat")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("btime"))
                .and_then(|l| l.split_whitespace().nth(1)?.parse::<i64>().ok())
        })
        .unwrap_or(0);
    let started = time::OffsetDateTime::from_unix_timestamp(boot + (start / hz.max(1)) as i64).ok();
    let stime = started
        .map(|t| format!("{:02}:{:02}", t.hour(), t.minute()))
        .unwrap_or_else(|| "?".into());
    let tty = if tty_nr == 0 {
        "?".to_string()
    } else {
        let major = (tty_nr >> 8) & 0xfff;
        let minor = (tty_nr & 0xff) | ((tty_nr >> 12) & 0xfff00);
        if (136..=143).contains(&major) {
            format!("pts/{}", (major - 136) * 256 + minor)
        } else {
            format!("{major}:{minor}")
        }
    };
    Some(ProcessInfo {
        uid,
        pid,
        ppid,
        stime,
        tty,
        time: format!(
            "{:02}:{:02}:{:02}",
            secs / 3600,
            (secs / 60) % 60,
            secs % 60
        ),
        cmd,
    })
}

#[cfg(test)]
mod trash_tests {
    use super::*;

    fn root() -> tempfile::TempDir {
        tempfile::tempdir().unwrap()
    }

    #[test]
    fn move_to_trash_takes_the_container_away_at_once() {
        let r = root();
        let rt = Runtime::open(r.path()).unwrap();
        let id = ContainerId::new("c1").unwrap();
        let d = rt.dir(&id);
        std::fs::create_dir_all(d.dir.join("sub")).unwrap();
        std::fs::write(d.dir.join("sub/f"), b"x").unwrap();
        let t = move_to_trash(&d.dir).expect("renamed");
        assert!(!d.dir.exists());
        assert_eq!(t.parent().unwrap(), trash_dir(r.path()));
        assert!(t.join("sub/f").exists());
        assert!(matches!(rt.state(&id), Err(RuntimeError::NotFound { .. })));
    }

    /// Removal races with whatever opens the container's lock file (a monitor's last save, a
    /// state refresh): the directory goes, the racer finds no container, nothing is re-created.
    #[test]
    fn removal_is_whole_while_others_open_the_lock_file() {
        let r = root();
        let rt = Runtime::open(r.path()).unwrap();
        let id = ContainerId::new("c1").unwrap();
        let d = rt.dir(&id);
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let hammer = {
            let (d, stop) = (rt.dir(&id), stop.clone());
            std::thread::spawn(move || {
                let mut not_found = 0;
                while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                    match d.lock() {
                        Ok(_) => {}
                        Err(RuntimeError::NotFound { .. }) => not_found += 1,
                        Err(e) => panic!("lock: {e}"),
                    }
                }
                not_found
            })
        };
        for i in 0..300 {
            std::fs::create_dir_all(&d.dir).unwrap();
            for f in ["config.json", "state.json", "record.json", "container.log"] {
                std::fs::write(d.dir.join(f), b"{}").unwrap();
            }
            remove_dir(&d).unwrap_or_else(|e| panic!("removal {i}: {e}"));
            assert!(!d.dir.exists(), "removal {i} left the directory");
        }
        stop.store(true, std::sync::atomic::Ordering::Relaxed);
        assert!(hammer.join().unwrap() > 0, "the racer never found it gone");
        assert!(matches!(rt.state(&id), Err(RuntimeError::NotFound { .. })));
    }

    #[test]
    fn open_sweeps_trash_of_dead_removers_only() {
        let r = root();
        let trash = trash_dir(r.path());
        // pid 0 is nobody's; our own pid is alive
        let dead = trash.join("c1.0");
        let live = trash.join(format!("c2.{}", std::process::id()));
        std::fs::create_dir_all(dead.join("x")).unwrap();
        std::fs::create_dir_all(&live).unwrap();
        let _rt = Runtime::open(r.path()).unwrap();
        let deadline = Instant::now() + Duration::from_secs(10);
        while dead.exists() && Instant::now() < deadline {
            std::thread::yield_now();
        }
        assert!(!dead.exists(), "stale trash entry swept");
        assert!(live.exists(), "a live remover's entry is left alone");
    }

    /// A crash can leave an auto-removed container (not fsynced) with an unreadable state:
    /// the list goes on without it and it is removed; a durable container's broken state is
    /// still an error.
    #[test]
    fn list_removes_unreadable_auto_removed_container() {
        let r = root();
        let rt = Runtime::open(r.path()).unwrap();
        let snap = r.path().join("snap");
        std::fs::create_dir_all(&snap).unwrap();
        let id = ContainerId::new("gone").unwrap();
        let d = rt.dir(&id);
        std::fs::create_dir_all(&d.dir).unwrap();
        let opts = MonitorOptions {
            auto_remove: true,
            remove_with: vec![snap.clone()],
            ..Default::default()
        };
        std::fs::write(d.options(), serde_json::to_vec(&opts).unwrap()).unwrap();
        std::fs::write(d.state(), b"").unwrap();
        assert!(rt.list().unwrap().is_empty());
        assert!(!d.dir.exists());
        let deadline = Instant::now() + Duration::from_secs(10);
        while snap.exists() && Instant::now() < deadline {
            std::thread::yield_now();
        }
        assert!(!snap.exists(), "its snapshot goes with it");

        let id = ContainerId::new("kept").unwrap();
        let d = rt.dir(&id);
        std::fs::create_dir_all(&d.dir).unwrap();
        std::fs::write(
            d.options(),
            serde_json::to_vec(&MonitorOptions::default()).unwrap(),
        )
        .unwrap();
        std::fs::write(d.state(), b"{").unwrap();
        assert!(matches!(rt.list(), Err(RuntimeError::State { .. })));
        assert!(d.dir.exists());
    }
}
