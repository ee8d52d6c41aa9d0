//! The per-container monitor: `berth __monitor ROOT ID`, re-executed from a sealed image and
//! detached (double fork + setsid), so it outlives the console and the engine.
//!
//! It creates the container (clone + init), holds the pty master or the stdio pipes, writes the
//! log, serves requests on `monitor.sock` (one JSON line in, one JSON line out; `attach` turns the
//! connection into a stream), reaps the init, records exit code and OOM kills, applies the
//! restart policy, and on the final exit removes the cgroup (and the container with auto-remove).
//! It is the only writer of `state.json` while it runs.

use std::ffi::OsString;
use std::io::{BufRead, BufReader, Read, Write};
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
use nix::sys::signal::{SigSet, Signal};
use nix::sys::signalfd::SignalFd;
use nix::sys::wait::{WaitPidFlag, WaitStatus, waitpid};
use nix::unistd::Pid;
use serde::{Deserialize, Serialize};

use super::cgroups::Cgroup;
use super::error::{IoContext, Result, RuntimeError};
use super::launch::{self, LaunchOpts};
use super::logs::{LogWriter, Stream};
use super::request::MonitorOptions;
use super::spec::Spec;
use super::state::{self, ContainerDir, ContainerId, State, Status};
use super::sys::{self, WinSize};

/// A request to the monitor.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
pub enum Request {
    Ping,
    Start,
    Kill {
        signal: i32,
        all: bool,
    },
    /// Signal, then SIGKILL after the timeout; answered when the container has exited.
    Stop {
        signal: i32,
        timeout_ms: u64,
    },
    Pause,
    Unpause,
    /// Answered when the container has exited.
    Wait,
    /// Answered when the monitor is done: for an auto-removed container after its directory
    /// has left `containers/` (what a `run --rm` waits for), else when it ends. The reply
    /// carries the exit. Saves the waiter a watch of the state root (an inotify instance,
    /// whose release costs milliseconds).
    WaitRemoved,
    /// After the reply the connection streams the container's output (raw with a terminal,
    /// else 8-byte-header frames as Docker's attach: `[stream,0,0,0,len_be32]`); bytes sent by
    /// the client go to its stdin when `stdin`.
    Attach {
        stdin: bool,
    },
    Resize {
        rows: u16,
        cols: u16,
    },
    /// Kill (if asked) and end the monitor without restarting; answered at the end.
    Shutdown {
        kill: bool,
    },
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Response {
    pub ok: bool,
    #[serde(default)]
    pub error: Option<String>,
    #[serde(default)]
    pub state: Option<State>,
}

/// Send one request and read the reply.
pub fn call(sock: &Path, id: &str, req: &Request) -> Result<Response> {
    let (resp, _) = call_keep(sock, id, req)?;
    Ok(resp)
}

/// Send one request, read the reply, keep the connection (for attach).
pub fn call_keep(sock: &Path, id: &str, req: &Request) -> Result<(Response, UnixStream)> {
    let err = |reason: String| RuntimeError::Monitor {
        id: id.into(),
        reason,
    };
    let mut s = super::sockpath::connect(sock)
        .map_err(|e| err(format!("connect {}: {e}", sock.display())))?;
    let mut line = serde_json::to_vec(req).expect("serialisable");
    line.push(b'\n');
    s.write_all(&line).map_err(|e| err(format!("send: {e}")))?;
    let buf = read_reply_line(&mut s).map_err(|e| match e.kind() {
        std::io::ErrorKind::UnexpectedEof => err("monitor closed the connection".into()),
        _ => err(format!("read: {e}")),
    })?;
    let resp: Response =
        serde_json::from_slice(&buf).map_err(|e| err(format!("bad reply: {e}")))?;
    Ok((resp, s))
}

/// Reads the reply line (without its newline) and nothing after it: whatever follows (attach
/// output) stays in the socket. Peeks at what has arrived and consumes up to the newline, two
/// syscalls for a reply instead of one per byte.
fn read_reply_line(s: &mut UnixStream) -> std::io::Result<Vec<u8>> {
    use nix::sys::socket::{MsgFlags, recv};
    let mut line = Vec::new();
    let mut chunk = [0u8; 4096];
    loop {
        let n = match recv(s.as_raw_fd(), &mut chunk, MsgFlags::MSG_PEEK) {
            Ok(0) => return Err(std::io::ErrorKind::UnexpectedEof.into()),
            Ok(n) => n,
            Err(nix::errno::Errno::EINTR) => continue,
            Err(e) => return Err(e.into()),
        };
        let (take, done) = match chunk[..n].iter().position(|b| *b == b'\n') {
            Some(i) => (i + 1, true),
            None => (n, false),
        };
        s.read_exact(&mut chunk[..take])?;
        line.extend_from_slice(&chunk[..take - usize::from(done)]);
        if done {
            return Ok(line);
        }
    }
}

enum ClientKind {
    /// Answered when the container exits.
    Pending,
    /// Answered when the monitor is done ([`Request::WaitRemoved`]).
    PendingRemoval,
    Attached {
        stdin: bool,
    },
}

struct Client {
    stream: UnixStream,
    kind: ClientKind,
}

struct Running {
    pid: i32,
    sock: Option<UnixStream>,
    master: Option<OwnedFd>,
    stdin_w: Option<OwnedFd>,
    out_r: Option<OwnedFd>,
    err_r: Option<OwnedFd>,
    started: Instant,
}

struct Monitor {
    dir: ContainerDir,
    spec: Spec,
    bundle: PathBuf,
    opts: MonitorOptions,
    state: State,
    cgroup: Option<Cgroup>,
    run: Option<Running>,
    log: LogWriter,
    listener: UnixListener,
    clients: Vec<Client>,
    stop_deadline: Option<Instant>,
    restart_at: Option<Instant>,
    shutting_down: bool,
    oom_base: u64,
    backoff: Duration,
}

/// `__monitor ROOT ID [start]`: returns the exit code of the (intermediate) process.
pub fn main(args: &[OsString]) -> i32 {
    let root = PathBuf::from(args.get(1).cloned().unwrap_or_default());
    let Ok(id) = ContainerId::new(
        args.get(2)
            .and_then(|s| s.to_str())
            .unwrap_or("")
            .to_string(),
    ) else {
        report("err bad container id");
        return 2;
    };
    let start_now = args.get(3).and_then(|s| s.to_str()) == Some("start");
    // Detach: the spawner reaps our parent at once; we belong to nobody's session.
    match sys::clone_fork(0) {
        Ok(sys::Forked::Parent(_)) => return 0,
        Ok(sys::Forked::Child) => {}
        Err(e) => {
            report(&format!("err fork: {e}"));
            return 1;
        }
    }
    let _ = nix::unistd::setsid();
    super::trace_time("monitor: forked");
    let _ = sys::set_dumpable(false);
    // Do not keep the caller's cwd (maybe a mount point) busy for the container's lifetime.
    let _ = std::env::set_current_dir("/");
    let dir = ContainerDir::new(&root, &id);
    match Monitor::new(dir, start_now) {
        Ok(mut m) => {
            report(&format!("ok {}", m.state.pid));
            super::trace_time("monitor: launched, reported");
            detach_stdio(&m.dir);
            m.run_loop();
            0
        }
        Err(e) => {
            report(&format!("err {e}"));
            1
        }
    }
}

/// Tells the spawner how the start went. The spawner may be gone (killed mid-`run`): the
/// monitor must then carry on with its container, so a write error is no error here (`println!`
/// would panic on the broken pipe and take the monitor down, orphaning the container).
fn report(line: &str) {
    let mut out = std::io::stdout();
    let _ = writeln!(out, "{line}");
    let _ = out.flush();
}

fn detach_stdio(dir: &ContainerDir) {
    if let Ok(null) = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open("/dev/null")
    {
        let _ = sys::dup_onto(null.as_raw_fd(), 0);
        let _ = sys::dup_onto(null.as_raw_fd(), 1);
    }
    if let Ok(f) = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(dir.dir.join("monitor.log"))
    {
        let _ = sys::dup_onto(f.as_raw_fd(), 2);
    }
}

fn pipe() -> Result<(OwnedFd, OwnedFd)> {
    nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC)
        .map_err(|e| RuntimeError::sys("pipe", std::io::Error::from(e)))
}

fn set_nonblock(fd: &OwnedFd) {
    let _ = nix::fcntl::fcntl(
        fd,
        nix::fcntl::FcntlArg::F_SETFL(nix::fcntl::OFlag::O_NONBLOCK),
    );
}

impl Monitor {
    fn new(dir: ContainerDir, start_now: bool) -> Result<Monitor> {
        let data = std::fs::read(dir.config()).ctx("read", dir.config())?;
        let spec = Spec::parse(&data, &dir.config())?;
        let opts: MonitorOptions = match std::fs::read(dir.options()) {
            Ok(d) => serde_json::from_slice(&d).map_err(|e| RuntimeError::State {
                path: dir.options(),
                reason: e.to_string(),
            })?,
            Err(_) => MonitorOptions::default(),
        };
        let state = dir.read_state()?;
        let bundle = state.bundle.clone();
        let log = LogWriter::open(&dir.log())?;
        let _ = std::fs::remove_file(dir.socket());
        let listener = super::sockpath::bind(&dir.socket()).ctx("bind", dir.socket())?;
        listener
            .set_nonblocking(true)
            .ctx("nonblock", dir.socket())?;
        // SIGCHLD through a signalfd; SIGTERM/SIGINT/SIGHUP are ignored (only requests end us).
        let mut set = SigSet::empty();
        for s in [
            Signal::SIGCHLD,
            Signal::SIGTERM,
            Signal::SIGINT,
            Signal::SIGHUP,
            Signal::SIGPIPE,
        ] {
            set.add(s);
        }
        set.thread_block()
            .map_err(|e| RuntimeError::sys("block signals", std::io::Error::from(e)))?;
        let mut m = Monitor {
            dir,
            spec,
            bundle,
            opts,
            state,
            cgroup: None,
            run: None,
            log,
            listener,
            clients: Vec::new(),
            stop_deadline: None,
            restart_at: None,
            shutting_down: false,
            oom_base: 0,
            backoff: Duration::from_millis(100),
        };
        m.state.stopped_by_user = false;
        if let Err(e) = m.launch(start_now) {
            m.state.status = Status::Stopped;
            m.state.error = Some(e.to_string());
            m.state.pid = 0;
            m.state.monitor_pid = None;
            let _ = m.save();
            let _ = std::fs::remove_file(m.dir.socket());
            return Err(e);
        }
        Ok(m)
    }

    fn save(&mut self) -> Result<()> {
        let _g = self.dir.lock()?;
        // Not fsynced for an auto-removed container (see `Runtime::create`).
        self.dir
            .write_state_with(&mut self.state, !self.opts.auto_remove)
    }

    fn launch(&mut self, start_now: bool) -> Result<()> {
        let terminal = self.spec.process().terminal;
        let (stdin_r, stdin_w) = if !terminal && self.opts.open_stdin {
            let (r, w) = pipe()?;
            (Some(r), Some(w))
        } else {
            (None, None)
        };
        let null = std::fs::File::open("/dev/null").ctx("open", "/dev/null")?;
        let (out_r, out_w, err_r, err_w) = if terminal {
            (None, None, None, None)
        } else {
            let (or, ow) = pipe()?;
            let (er, ew) = pipe()?;
            (Some(or), Some(ow), Some(er), Some(ew))
        };
        let stdio = if terminal {
            None
        } else {
            Some([
                stdin_r
                    .as_ref()
                    .map(|f| f.as_raw_fd())
                    .unwrap_or(null.as_raw_fd()),
                out_w.as_ref().expect("pipes").as_raw_fd(),
                err_w.as_ref().expect("pipes").as_raw_fd(),
            ])
        };
        let cg_rel = launch::cgroup_rel(&self.spec, self.dir.id.as_str());
        self.oom_base = Cgroup::host(super::cgroups::Layout::detect()?, &cg_rel).oom_kills();
        let l = launch::launch(
            self.spec.clone(),
            &self.bundle,
            self.dir.id.as_str(),
            &LaunchOpts {
                wait_for_start: true,
                stdio,
                seccomp_cache: super::seccomp::cache_dir_of(&self.dir.dir),
            },
        )?;
        drop((stdin_r, out_w, err_w, null));
        let mut master = l.master;
        if let (Some(m), Some(cs)) = (&master, &self.opts.console_socket) {
            super::foreground::send_console(cs, m)?;
            master = None;
        }
        for fd in [&master, &out_r, &err_r].into_iter().flatten() {
            set_nonblock(fd);
        }
        self.state.pid = l.pid;
        self.state.pid_start_time = state::proc_start_time(l.pid).unwrap_or(0);
        self.state.monitor_pid = Some(sys::getpid());
        self.state.cgroup = l.cgroup.rel().to_path_buf();
        self.state.status = Status::Created;
        self.state.exit_code = None;
        self.state.oom_killed = false;
        self.state.error = None;
        self.cgroup = Some(l.cgroup);
        self.run = Some(Running {
            pid: l.pid,
            sock: l.sock,
            master,
            stdin_w,
            out_r,
            err_r,
            started: Instant::now(),
        });
        if start_now { self.start() } else { self.save() }
    }

    fn start(&mut self) -> Result<()> {
        let Some(run) = self.run.as_mut() else {
            return Err(RuntimeError::WrongState {
                id: self.dir.id.to_string(),
                state: self.state.status.to_string(),
                action: "start",
                needed: "created",
            });
        };
        let Some(mut sock) = run.sock.take() else {
            return Err(RuntimeError::WrongState {
                id: self.dir.id.to_string(),
                state: self.state.status.to_string(),
                action: "start",
                needed: "created",
            });
        };
        if let Err(e) = launch::start(&mut sock) {
            // The init reported the failure and exits: record it before answering, so the
            // caller sees a stopped container with the reason.
            let pid = run.pid;
            self.state.error = Some(e.to_string());
            if let Ok(ws) = waitpid(Pid::from_raw(pid), None) {
                self.on_exit(ws);
            }
            return Err(e);
        }
        let run = self.run.as_mut().expect("checked above");
        run.started = Instant::now();
        self.state.status = Status::Running;
        self.state.started = Some(state::now_rfc3339());
        self.save()
    }

    fn reply(stream: &mut UnixStream, r: &Response) {
        let mut line = serde_json::to_vec(r).expect("serialisable");
        line.push(b'\n');
        let _ = stream.write_all(&line);
    }

    fn ok(&self) -> Response {
        Response {
            ok: true,
            error: None,
            state: Some(self.state.clone()),
        }
    }

    fn fail(&self, e: impl std::fmt::Display) -> Response {
        Response {
            ok: false,
            error: Some(e.to_string()),
            state: Some(self.state.clone()),
        }
    }

    fn handle(&mut self, mut stream: UnixStream) {
        let _ = stream.set_read_timeout(Some(Duration::from_secs(2)));
        let mut line = Vec::new();
        {
            let mut r = BufReader::new(&mut stream);
            if r.read_until(b'\n', &mut line).is_err() || line.is_empty() {
                return;
            }
        }
        let _ = stream.set_read_timeout(None);
        let req: Request = match serde_json::from_slice(&line) {
            Ok(r) => r,
            Err(e) => return Self::reply(&mut stream, &self.fail(format!("bad request: {e}"))),
        };
        let running = self.run.is_some() && self.state.status != Status::Stopped;
        match req {
            Request::Ping => Self::reply(&mut stream, &self.ok()),
            Request::Start => {
                let r = match self.start() {
                    Ok(()) => self.ok(),
                    Err(e) => self.fail(e),
                };
                Self::reply(&mut stream, &r);
            }
            Request::Kill { signal, all } => {
                let r = if !running {
                    self.fail(format!("container {} is not running", self.dir.id))
                } else {
                    self.signal(signal, all);
                    self.ok()
                };
                Self::reply(&mut stream, &r);
            }
            Request::Stop { signal, timeout_ms } => {
                self.restart_at = None;
                self.state.stopped_by_user = true;
                if !running {
                    let _ = self.save();
                    return Self::reply(&mut stream, &self.ok());
                }
                let _ = self.save();
                if self.state.status == Status::Created {
                    // Not started: the init is still berth's code waiting for "start".
                    self.signal(libc::SIGKILL, false);
                } else if self.state.status == Status::Paused {
                    // A frozen process cannot handle the signal.
                    self.signal(signal, false);
                    self.thaw();
                } else {
                    self.signal(signal, false);
                }
                self.stop_deadline = Some(Instant::now() + Duration::from_millis(timeout_ms));
                self.clients.push(Client {
                    stream,
                    kind: ClientKind::Pending,
                });
            }
            Request::Pause | Request::Unpause => {
                let pause = matches!(req, Request::Pause);
                let r = match (&self.cgroup, running) {
                    (Some(cg), true) => match cg.set_frozen(pause) {
                        Ok(()) => {
                            self.state.status = if pause {
                                Status::Paused
                            } else {
                                Status::Running
                            };
                            let _ = self.save();
                            self.ok()
                        }
                        Err(e) => self.fail(e),
                    },
                    _ => self.fail(format!("container {} is not running", self.dir.id)),
                };
                Self::reply(&mut stream, &r);
            }
            Request::Wait => {
                if running || self.restart_at.is_some() {
                    self.clients.push(Client {
                        stream,
                        kind: ClientKind::Pending,
                    });
                } else {
                    Self::reply(&mut stream, &self.ok());
                }
            }
            // The monitor of a live container (also a created or stopped one awaiting a
            // start) runs its loop until it finishes: the answer comes then.
            Request::WaitRemoved => self.clients.push(Client {
                stream,
                kind: ClientKind::PendingRemoval,
            }),
            Request::Attach { stdin } => {
                Self::reply(&mut stream, &self.ok());
                let _ = stream.set_nonblocking(true);
                self.clients.push(Client {
                    stream,
                    kind: ClientKind::Attached { stdin },
                });
            }
            Request::Resize { rows, cols } => {
                let r = match self.run.as_ref().and_then(|r| r.master.as_ref()) {
                    Some(m) => match sys::set_winsize(m.as_fd(), WinSize { rows, cols }) {
                        Ok(()) => self.ok(),
                        Err(e) => self.fail(e),
                    },
                    None => self.fail("container has no terminal"),
                };
                Self::reply(&mut stream, &r);
            }
            Request::Shutdown { kill } => {
                self.shutting_down = true;
                self.restart_at = None;
                if running && kill {
                    self.thaw();
                    if let Some(cg) = &self.cgroup {
                        cg.kill_all();
                    }
                    self.signal(libc::SIGKILL, false);
                }
                if self.run.is_some() {
                    self.clients.push(Client {
                        stream,
                        kind: ClientKind::Pending,
                    });
                } else {
                    Self::reply(&mut stream, &self.ok());
                }
            }
        }
    }

    fn thaw(&mut self) {
        if let Some(cg) = &self.cgroup
            && cg.is_frozen()
        {
            let _ = cg.set_frozen(false);
            self.state.status = Status::Running;
        }
    }

    fn signal(&self, sig: i32, all: bool) {
        let Some(run) = &self.run else { return };
        if all && let Some(cg) = &self.cgroup {
            for p in cg.procs() {
                let _ = nix::sys::signal::kill(Pid::from_raw(p), Signal::try_from(sig).ok());
            }
            return;
        }
        let _ = nix::sys::signal::kill(Pid::from_raw(run.pid), Signal::try_from(sig).ok());
    }

    /// Forward container output to the log and to attached clients.
    fn output(&mut self, stream: Stream, data: &[u8], tty: bool) {
        self.log.write(stream, data);
        let mut framed = Vec::new();
        if !tty {
            framed.extend_from_slice(&[if stream == Stream::Stdout { 1 } else { 2 }, 0, 0, 0]);
            framed.extend_from_slice(&(data.len() as u32).to_be_bytes());
            framed.extend_from_slice(data);
        }
        let payload = if tty { data } else { &framed[..] };
        self.clients.retain_mut(|c| match c.kind {
            ClientKind::Attached { .. } => {
                // A client that stops reading must not stall the container's output (or
                // the monitor): it gets a second, then it is dropped.
                let _ = c.stream.set_nonblocking(false);
                let _ = c.stream.set_write_timeout(Some(Duration::from_secs(1)));
                let ok = c.stream.write_all(payload).is_ok();
                let _ = c.stream.set_nonblocking(true);
                ok
            }
            ClientKind::Pending | ClientKind::PendingRemoval => true,
        });
    }

    fn read_outputs(&mut self, which: &[(usize, PollFlags)]) {
        let mut buf = vec![0u8; 32 * 1024];
        for (i, rev) in which {
            if !rev.intersects(PollFlags::POLLIN | PollFlags::POLLHUP | PollFlags::POLLERR) {
                continue;
            }
            let Some(run) = self.run.as_mut() else { return };
            let tty = run.master.is_some();
            let (fd, stream) = match (*i, tty) {
                (0, true) => (run.master.as_ref(), Stream::Stdout),
                (0, false) => (run.out_r.as_ref(), Stream::Stdout),
                _ => (run.err_r.as_ref(), Stream::Stderr),
            };
            let Some(fd) = fd else { continue };
            match nix::unistd::read(fd, &mut buf) {
                Ok(n) if n > 0 => {
                    let data = buf[..n].to_vec();
                    self.output(stream, &data, tty);
                }
                Ok(_) | Err(nix::errno::Errno::EIO) => {
                    // EOF (or EIO: the pty's last slave closed).
                    let run = self.run.as_mut().expect("checked");
                    match (*i, tty) {
                        (0, true) => run.master = None,
                        (0, false) => run.out_r = None,
                        _ => run.err_r = None,
                    }
                }
                Err(_) => {}
            }
        }
    }

    fn drain_outputs(&mut self) {
        for _ in 0..1000 {
            let Some(run) = &self.run else { return };
            if run.master.is_none() && run.out_r.is_none() && run.err_r.is_none() {
                break;
            }
            let before = (
                run.master.is_some(),
                run.out_r.is_some(),
                run.err_r.is_some(),
            );
            let mut got = false;
            let mut buf = vec![0u8; 32 * 1024];
            for i in 0..2 {
                let run = self.run.as_ref().expect("checked");
                let tty = run.master.is_some();
                let fd = match (i, tty) {
                    (0, true) => run.master.as_ref(),
                    (0, false) => run.out_r.as_ref(),
                    (_, true) => None,
                    _ => run.err_r.as_ref(),
                };
                let Some(fd) = fd else { continue };
                match nix::unistd::read(fd, &mut buf) {
                    Ok(n) if n > 0 => {
                        got = true;
                        let data = buf[..n].to_vec();
                        self.output(
                            if i == 0 {
                                Stream::Stdout
                            } else {
                                Stream::Stderr
                            },
                            &data,
                            tty,
                        );
                    }
                    Err(nix::errno::Errno::EAGAIN) => {}
                    _ => {
                        let run = self.run.as_mut().expect("checked");
                        match (i, tty) {
                            (0, true) => run.master = None,
                            (0, false) => run.out_r = None,
                            _ => run.err_r = None,
                        }
                        got = true;
                    }
                }
            }
            let run = self.run.as_ref().expect("checked");
            if !got
                && before
                    == (
                        run.master.is_some(),
                        run.out_r.is_some(),
                        run.err_r.is_some(),
                    )
            {
                break;
            }
        }
        self.log.flush();
    }

    fn client_input(&mut self, idx: usize) -> bool {
        let mut buf = [0u8; 8192];
        let c = &mut self.clients[idx];
        let ClientKind::Attached { stdin } = c.kind else {
            return true;
        };
        match c.stream.read(&mut buf) {
            Ok(0) => {
                // Client closed its write side: close the container's stdin pipe.
                if stdin && let Some(run) = self.run.as_mut() {
                    run.stdin_w = None;
                }
                false
            }
            Ok(n) => {
                if stdin && let Some(run) = &self.run {
                    if let Some(m) = &run.master {
                        super::tty::write_all(m.as_fd(), &buf[..n]);
                    } else if let Some(w) = &run.stdin_w {
                        super::tty::write_all(w.as_fd(), &buf[..n]);
                    }
                }
                true
            }
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => true,
            Err(_) => false,
        }
    }

    fn on_exit(&mut self, ws: WaitStatus) {
        let code = super::foreground::exit_code(ws).unwrap_or(255);
        self.drain_outputs();
        let oom = self.cgroup.as_ref().map(|c| c.oom_kills()).unwrap_or(0) > self.oom_base;
        let ran_for = self
            .run
            .as_ref()
            .map(|r| r.started.elapsed())
            .unwrap_or_default();
        self.run = None;
        self.stop_deadline = None;
        self.state.status = Status::Stopped;
        self.state.exit_code = Some(code);
        self.state.oom_killed = oom;
        self.state.finished = Some(state::now_rfc3339());
        self.state.pid = 0;
        self.state.pid_start_time = 0;
        if let Some(cg) = &self.cgroup {
            cg.kill_all();
        }
        let restart = !self.shutting_down
            && self.opts.restart.should_restart(
                code,
                self.state.restart_count,
                self.state.stopped_by_user,
            );
        if restart {
            if ran_for >= Duration::from_secs(10) {
                self.backoff = Duration::from_millis(100);
            }
            self.restart_at = Some(Instant::now() + self.backoff);
            self.backoff = (self.backoff * 2).min(Duration::from_secs(60));
        } else {
            self.state.monitor_pid = None;
        }
        let _ = self.save();
        // Answer everyone waiting for the exit; attached streams end; who waits for the
        // removal waits on.
        let resp = self.ok();
        let clients = std::mem::take(&mut self.clients);
        for mut c in clients {
            match c.kind {
                ClientKind::Pending => Self::reply(&mut c.stream, &resp),
                ClientKind::PendingRemoval => self.clients.push(c),
                ClientKind::Attached { .. } => {}
            }
        }
    }

    /// Answer whoever waits for the monitor to be done.
    fn answer_removal_waiters(&mut self) {
        let resp = self.ok();
        for mut c in std::mem::take(&mut self.clients) {
            if let ClientKind::PendingRemoval = c.kind {
                Self::reply(&mut c.stream, &resp);
            }
        }
    }

    fn finish(&mut self) {
        super::trace_time("monitor: finish");
        if let Some(cg) = self.cgroup.take() {
            cg.kill_all();
            let _ = cg.destroy();
        }
        super::trace_time("monitor: cgroup destroyed");
        let _ = std::fs::remove_file(self.dir.socket());
        if self.opts.auto_remove && !self.shutting_down {
            // Whoever waits for this container after it is gone still learns how it ended.
            if let Some(exits) = super::manager::exits_dir(&self.dir.dir) {
                let info = super::manager::ExitInfo {
                    exit_code: self.state.exit_code.unwrap_or(-1),
                    oom_killed: self.state.oom_killed,
                };
                let _ = std::fs::create_dir_all(&exits);
                // Not fsynced: it serves a waiter within seconds, and a crash takes the
                // waiter with it.
                let _ = super::state::write_atomic_volatile(
                    &exits.join(format!("{}.json", self.dir.id.as_str())),
                    &serde_json::to_vec(&info).unwrap_or_default(),
                );
            }
            // The container is gone the moment its directory leaves containers/ (one rename,
            // which is what a `--rm` waiter waits for); deleting the files happens after,
            // off everyone's critical path.
            let g = self.dir.lock();
            let trashed = super::manager::move_to_trash(&self.dir.dir);
            drop(g);
            super::trace_time("monitor: trashed");
            self.answer_removal_waiters();
            // Its network too (namespace, veth, address, published ports), when the API layer
            // prepared one: no engine may be running to do it.
            if let Some(root) = self.dir.dir.parent().and_then(|d| d.parent()) {
                super::net::detach_if_attached(root, self.dir.id.as_str());
            }
            if let Some(t) = trashed {
                let _ = std::fs::remove_dir_all(t);
            }
            for d in &self.opts.remove_with {
                let _ = std::fs::remove_dir_all(d);
            }
            super::trace_time("monitor: removed");
        }
        self.answer_removal_waiters();
    }

    fn run_loop(&mut self) {
        let mut set = SigSet::empty();
        set.add(Signal::SIGCHLD);
        let Ok(sfd) = SignalFd::with_flags(
            &set,
            nix::sys::signalfd::SfdFlags::SFD_NONBLOCK | nix::sys::signalfd::SfdFlags::SFD_CLOEXEC,
        ) else {
            return;
        };
        loop {
            if self.run.is_none() && self.restart_at.is_none() {
                self.finish();
                return;
            }
            let now = Instant::now();
            if let Some(t) = self.restart_at
                && now >= t
            {
                self.restart_at = None;
                self.state.restart_count += 1;
                if let Err(e) = self.launch(true) {
                    self.state.error = Some(e.to_string());
                    self.state.monitor_pid = None;
                    let _ = self.save();
                    continue;
                }
                continue;
            }
            if let Some(d) = self.stop_deadline
                && now >= d
            {
                self.stop_deadline = None;
                if let Some(cg) = &self.cgroup {
                    cg.kill_all();
                }
                self.signal(libc::SIGKILL, false);
            }
            let timeout = [self.restart_at, self.stop_deadline]
                .into_iter()
                .flatten()
                .map(|t| t.saturating_duration_since(now))
                .min()
                .map(|d| {
                    PollTimeout::try_from(d.as_millis().min(60_000) as u32 + 1)
                        .unwrap_or(PollTimeout::MAX)
                })
                .unwrap_or(PollTimeout::NONE);

            let (out_fd, err_fd) = match &self.run {
                Some(r) => (
                    r.master
                        .as_ref()
                        .or(r.out_r.as_ref())
                        .map(|f| f.as_raw_fd()),
                    r.err_r.as_ref().map(|f| f.as_raw_fd()),
                ),
                None => (None, None),
            };
            let mut fds = vec![
                PollFd::new(sfd.as_fd(), PollFlags::POLLIN),
                PollFd::new(self.listener.as_fd(), PollFlags::POLLIN),
            ];
            let out_b = out_fd.map(sys::borrow_raw);
            let err_b = err_fd.map(sys::borrow_raw);
            let out_idx = out_b.map(|b| {
                fds.push(PollFd::new(b, PollFlags::POLLIN));
                fds.len() - 1
            });
            let err_idx = err_b.map(|b| {
                fds.push(PollFd::new(b, PollFlags::POLLIN));
                fds.len() - 1
            });
            let client_base = fds.len();
            let client_fds: Vec<_> = self.clients.iter().map(|c| c.stream.as_raw_fd()).collect();
            for fd in &client_fds {
                fds.push(PollFd::new(sys::borrow_raw(*fd), PollFlags::POLLIN));
            }
            match poll(&mut fds, timeout) {
                Ok(_) => {}
                Err(nix::errno::Errno::EINTR) => continue,
                Err(_) => continue,
            }
            let rev: Vec<PollFlags> = fds
                .iter()
                .map(|f| f.revents().unwrap_or(PollFlags::empty()))
                .collect();
            drop(fds);

            let mut outs = Vec::new();
            if let Some(i) = out_idx {
                outs.push((0usize, rev[i]));
            }
            if let Some(i) = err_idx {
                outs.push((1usize, rev[i]));
            }
            self.read_outputs(&outs);

            // Client input / hangups (iterate backwards so removal keeps indices valid).
            for k in (0..client_fds.len()).rev() {
                let r = rev[client_base + k];
                if r.is_empty() || k >= self.clients.len() {
                    continue;
                }
                if r.intersects(PollFlags::POLLIN | PollFlags::POLLHUP | PollFlags::POLLERR) {
                    let keep = match self.clients[k].kind {
                        ClientKind::Attached { .. } => self.client_input(k),
                        // A pending client that hung up needs no answer.
                        ClientKind::Pending | ClientKind::PendingRemoval => {
                            !r.intersects(PollFlags::POLLHUP | PollFlags::POLLERR)
                        }
                    };
                    if !keep {
                        self.clients.remove(k);
                    }
                }
            }

            if rev[1].contains(PollFlags::POLLIN) {
                while let Ok((s, _)) = self.listener.accept() {
                    let _ = s.set_nonblocking(false);
                    self.handle(s);
                }
            }

            if rev[0].contains(PollFlags::POLLIN) {
                while let Ok(Some(_)) = sfd.read_signal() {}
                loop {
                    match waitpid(Pid::from_raw(-1), Some(WaitPidFlag::WNOHANG)) {
                        Ok(WaitStatus::StillAlive) | Err(_) => break,
                        Ok(ws) => {
                            let pid = ws.pid().map(|p| p.as_raw());
                            if pid.is_some() && pid == self.run.as_ref().map(|r| r.pid) {
                                self.on_exit(ws);
                            }
                        }
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod reply_tests {
    use super::*;

    /// The reply line is read whole, and the bytes after it (attach output) stay in the socket,
    /// also when the line arrives in pieces.
    #[test]
    fn reply_line_leaves_what_follows() {
        let (mut a, mut b) = UnixStream::pair().unwrap();
        a.write_all(b"{\"ok\":true}\nOUTPUT").unwrap();
        assert_eq!(read_reply_line(&mut b).unwrap(), b"{\"ok\":true}");
        let mut rest = [0u8; 6];
        b.read_exact(&mut rest).unwrap();
        assert_eq!(&rest, b"OUTPUT");

        let writer = std::thread::spawn(move || {
            let long = vec![b'x'; 10_000];
            // longer than one peek: the line is taken in several pieces
            a.write_all(&long).unwrap();
            a.write_all(b"yz\nafter").unwrap();
            a
        });
        let line = read_reply_line(&mut b).unwrap();
        assert_eq!(line.len(), 10_002);
        assert!(line.ends_with(b"xyz"));
        let mut rest = [0u8; 5];
        b.read_exact(&mut rest).unwrap();
        assert_eq!(&rest, b"after");
        drop(writer.join().unwrap());
        // closed before a newline
        assert_eq!(
            read_reply_line(&mut b).unwrap_err().kind(),
            std::io::ErrorKind::UnexpectedEof
        );
    }
}
