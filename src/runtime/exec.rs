//! The exec helper: `berth __exec ROOT ID REQUEST_JSON [console PATH | proxy]`, re-executed from
//! a sealed image. It joins the container's cgroup and namespaces, forks (to enter the pid
//! namespace), and the child becomes the requested process with the container's capabilities,
//! seccomp filter and limits. The helper stays on the host side of the pid namespace (invisible
//! to the container), waits, and exits with the process's code.

use std::ffi::OsString;
use std::io::{IoSlice, IoSliceMut, Read, Write};
use std::os::fd::{AsFd, AsRawFd, OwnedFd, RawFd};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};

use nix::sys::socket::{ControlMessage, ControlMessageOwned, MsgFlags, recvmsg, sendmsg};
use nix::sys::wait::{WaitStatus, waitpid};
use nix::unistd::Pid;

use super::caps::CapSets;
use super::cgroups::{Cgroup, Layout};
use super::error::{Result, RuntimeError};
use super::manager::ExecRequest;
use super::spec::{Process, Spec, namespace_flag, namespace_proc_name};
use super::state::{self, ContainerDir, ContainerId, Status};
use super::{paths, rootfs, seccomp, sys};

/// Receive one fd over a unix socket (SCM_RIGHTS).
pub fn recv_fd(s: &UnixStream) -> Result<OwnedFd> {
    let mut buf = [0u8; 64];
    let mut cmsg = nix::cmsg_space!([RawFd; 1]);
    let mut iov = [IoSliceMut::new(&mut buf)];
    let msg = recvmsg::<()>(
        s.as_raw_fd(),
        &mut iov,
        Some(&mut cmsg),
        MsgFlags::MSG_CMSG_CLOEXEC,
    )
    .map_err(|e| RuntimeError::sys("recvmsg", std::io::Error::from(e)))?;
    for c in msg
        .cmsgs()
        .map_err(|e| RuntimeError::sys("cmsgs", std::io::Error::from(e)))?
    {
        if let ControlMessageOwned::ScmRights(fds) = c
            && let Some(fd) = fds.first()
        {
            return Ok(sys::owned_raw(*fd));
        }
    }
    Err(RuntimeError::Init("no fd received".into()))
}

fn send_fd(s: &UnixStream, fd: RawFd) -> Result<()> {
    let fds = [fd];
    let iov = [IoSlice::new(b"/dev/ptmx")];
    sendmsg::<()>(
        s.as_raw_fd(),
        &iov,
        &[ControlMessage::ScmRights(&fds)],
        MsgFlags::empty(),
        None,
    )
    .map_err(|e| RuntimeError::sys("sendmsg", std::io::Error::from(e)))?;
    Ok(())
}

pub fn main(args: &[OsString]) -> i32 {
    match run(args) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("berth exec: {e}");
            126
        }
    }
}

fn run(args: &[OsString]) -> Result<i32> {
    let s = |i: usize| args.get(i).and_then(|a| a.to_str()).unwrap_or("");
    let root = PathBuf::from(s(1));
    let id = ContainerId::new(s(2))?;
    let req: ExecRequest = serde_json::from_str(s(3))
        .map_err(|e| RuntimeError::BadRequest(format!("exec request: {e}")))?;
    let (console, proxy) = match s(4) {
        "console" => (Some(PathBuf::from(s(5))), false),
        "proxy" => (None, true),
        _ => (None, false),
    };
    let dir = ContainerDir::new(&root, &id);
    let st = dir.read_state()?;
    if st.status != Status::Running || !state::alive(st.pid, st.pid_start_time) {
        return Err(RuntimeError::WrongState {
            id: id.to_string(),
            state: st.status.to_string(),
            action: "exec",
            needed: "running",
        });
    }
    let spec = Spec::parse(
        &std::fs::read(dir.config()).map_err(|e| RuntimeError::io("read", dir.config(), e))?,
        &dir.config(),
    )?;
    let process = build_process(&spec, &req);
    let caps = process
        .capabilities
        .as_ref()
        .map(CapSets::from_spec)
        .transpose()?;
    let filters = seccomp::programs_for(
        &spec,
        process.capabilities.as_ref(),
        Some(&seccomp::cache_dir(&root)),
    )?;
    // Namespace fds first, pinned by a pidfd + start-time check against pid reuse.
    let pidfd = sys::pidfd_open(st.pid).map_err(|e| RuntimeError::sys("pidfd_open", e))?;
    let mut ns = Vec::new();
    let order = [
        "user", "ipc", "uts", "network", "cgroup", "pid", "time", "mount",
    ];
    for kind in order {
        if !spec.linux().namespaces.iter().any(|n| n.kind == kind) {
            continue;
        }
        let p = format!(
            "/proc/{}/ns/{}",
            st.pid,
            namespace_proc_name(kind).expect("known")
        );
        let f = std::fs::File::open(&p).map_err(|e| RuntimeError::io("open", &p, e))?;
        ns.push((kind, OwnedFd::from(f)));
    }
    if state::proc_start_time(st.pid) != Some(st.pid_start_time) {
        return Err(RuntimeError::WrongState {
            id: id.to_string(),
            state: "stopped".into(),
            action: "exec",
            needed: "running",
        });
    }
    drop(pidfd);
    // Only the exec'd process joins the container's cgroup (not this helper, which would show
    // up in `top` and count against the pids limit): open the cgroup.procs files now, while
    // host paths still resolve, and write the child's pid once it exists.
    let mut procs = Vec::new();
    for d in Cgroup::host(Layout::detect()?, &st.cgroup).dirs() {
        let p = d.join("cgroup.procs");
        procs.push(
            std::fs::OpenOptions::new()
                .write(true)
                .open(&p)
                .map_err(|e| RuntimeError::io("open", &p, e))?,
        );
    }
    // The pid file is a host path: open its directory and a temp file now.
    let pid_file = match &req.pid_file {
        Some(p) => {
            let dir_path = p
                .parent()
                .filter(|d| !d.as_os_str().is_empty())
                .unwrap_or(Path::new("."));
            let name = p
                .file_name()
                .ok_or_else(|| RuntimeError::BadRequest(format!("pid file {p:?}")))?
                .to_owned();
            let dir =
                paths::open_dir(dir_path).map_err(|e| RuntimeError::io("open", dir_path, e))?;
            let tmp = format!(".{}.tmp{}", name.to_string_lossy(), sys::getpid());
            let f = nix::fcntl::openat(
                dir.as_fd(),
                tmp.as_str(),
                nix::fcntl::OFlag::O_CREAT
                    | nix::fcntl::OFlag::O_WRONLY
                    | nix::fcntl::OFlag::O_TRUNC
                    | nix::fcntl::OFlag::O_CLOEXEC,
                nix::sys::stat::Mode::from_bits_truncate(0o644),
            )
            .map_err(|e| RuntimeError::io("create", p, e.into()))?;
            Some((dir, name, tmp, f))
        }
        None => None,
    };
    // The console socket is a host path: connect before entering the mount namespace.
    let console_sock = match &console {
        Some(p) => Some(
            super::sockpath::connect(p)
                .map_err(|e| RuntimeError::io("connect console socket", p, e))?,
        ),
        None => None,
    };
    sys::set_dumpable(false).map_err(|e| RuntimeError::sys("prctl(PR_SET_DUMPABLE)", e))?;
    for (kind, fd) in &ns {
        let f = nix::sched::CloneFlags::from_bits_truncate(namespace_flag(kind).expect("known"));
        nix::sched::setns(fd, f)
            .map_err(|e| RuntimeError::sys(format!("setns {kind}"), std::io::Error::from(e)))?;
    }
    drop(ns);
    let pty = if req.tty || process.terminal {
        let root_fd =
            paths::open_dir(Path::new("/")).map_err(|e| RuntimeError::io("open", "/", e))?;
        let (m, sl) = rootfs::open_pty_in(&root_fd)?;
        rootfs::verify_pty_slave(&sl)?;
        if let Some(ws) = req.size {
            let _ = sys::set_winsize(m.as_fd(), ws);
        }
        Some((m, sl))
    } else {
        None
    };
    let (mut parent, mut child) =
        UnixStream::pair().map_err(|e| RuntimeError::sys("socketpair", e))?;
    // Forwarded signals must not kill us before the child exists.
    let sigs = super::foreground::forwarded();
    sigs.thread_block()
        .map_err(|e| RuntimeError::sys("block signals", std::io::Error::from(e)))?;
    match sys::clone_fork(0).map_err(|e| RuntimeError::sys("fork", e))? {
        sys::Forked::Child => {
            drop(parent);
            let r = (|| -> Result<super::init::Never> {
                drop(procs);
                let mut b = [0u8; 1];
                if child.read(&mut b).ok() != Some(1) || b[0] != b'C' {
                    return Err(RuntimeError::Init("exec helper went away".into()));
                }
                nix::unistd::setsid()
                    .map_err(|e| RuntimeError::sys("setsid", std::io::Error::from(e)))?;
                if let Some((_, sl)) = &pty {
                    sys::set_controlling_tty(sl.as_fd())
                        .map_err(|e| RuntimeError::sys("TIOCSCTTY", e))?;
                    for fd in 0..3 {
                        sys::dup_onto(sl.as_raw_fd(), fd)
                            .map_err(|e| RuntimeError::sys("dup2", e))?;
                    }
                }
                drop(pty);
                let userns = spec.has_namespace("user");
                super::init::exec_process(&process, caps.as_ref(), filters.as_deref(), userns, None)
            })();
            let Err(e) = r;
            let _ = child.write_all(format!("E{e}").as_bytes());
            sys::exit_now(127)
        }
        sys::Forked::Parent(pid) => {
            drop(child);
            let joined = procs
                .iter_mut()
                .try_for_each(|f| f.write_all(pid.to_string().as_bytes()));
            if let Err(e) = joined {
                let _ =
                    nix::sys::signal::kill(Pid::from_raw(pid), nix::sys::signal::Signal::SIGKILL);
                let _ = waitpid(Pid::from_raw(pid), None);
                return Err(RuntimeError::sys("join the container's cgroup", e));
            }
            drop(procs);
            let _ = parent.write_all(b"C");
            let mut msg = Vec::new();
            let _ = parent.read_to_end(&mut msg);
            let master = pty.map(|(m, _)| m);
            if let Some(b'E') = msg.first() {
                let _ = waitpid(Pid::from_raw(pid), None);
                if let Some((dir, _, tmp, _)) = &pid_file {
                    let _ = nix::unistd::unlinkat(
                        dir.as_fd(),
                        tmp.as_str(),
                        nix::unistd::UnlinkatFlags::NoRemoveDir,
                    );
                }
                return Err(RuntimeError::Init(
                    String::from_utf8_lossy(&msg[1..]).into_owned(),
                ));
            }
            if let Some((dir, name, tmp, f)) = &pid_file {
                // Written through fds opened on the host before entering the container.
                nix::unistd::write(f, pid.to_string().as_bytes())
                    .map_err(|e| RuntimeError::sys("write pid file", std::io::Error::from(e)))?;
                nix::fcntl::renameat(dir.as_fd(), tmp.as_str(), dir.as_fd(), name.as_os_str())
                    .map_err(|e| RuntimeError::sys("rename pid file", std::io::Error::from(e)))?;
            }
            if let (Some(s), Some(m)) = (&console_sock, &master) {
                send_fd(s, m.as_raw_fd())?;
            }
            let master = if proxy { master } else { None };
            supervise(pid, &sigs, master)
        }
    }
}

fn supervise(pid: i32, sigs: &nix::sys::signal::SigSet, master: Option<OwnedFd>) -> Result<i32> {
    if master.is_none() {
        // Plain wait, forwarding signals.
        let sfd = nix::sys::signalfd::SignalFd::new(sigs)
            .map_err(|e| RuntimeError::sys("signalfd", std::io::Error::from(e)))?;
        loop {
            match sfd.read_signal() {
                Ok(Some(si)) if si.ssi_signo as i32 == libc::SIGCHLD => loop {
                    match waitpid(
                        Pid::from_raw(pid),
                        Some(nix::sys::wait::WaitPidFlag::WNOHANG),
                    ) {
                        Ok(WaitStatus::StillAlive) => break,
                        Ok(ws) => {
                            if let Some(c) = super::foreground::exit_code(ws) {
                                return Ok(c);
                            }
                        }
                        Err(e) => {
                            return Err(RuntimeError::sys("waitpid", std::io::Error::from(e)));
                        }
                    }
                },
                Ok(Some(si)) => {
                    let _ = nix::sys::signal::kill(
                        Pid::from_raw(pid),
                        nix::sys::signal::Signal::try_from(si.ssi_signo as i32).ok(),
                    );
                }
                _ => {}
            }
        }
    }
    super::foreground::supervise_pub(pid, sigs, master)
}

/// The process to run: the container's process as the base (capabilities, rlimits, env,
/// no_new_privileges), with the request's command, env, cwd and user.
pub fn build_process(spec: &Spec, req: &ExecRequest) -> Process {
    let base = spec.process().clone();
    if let Some(p) = &req.process {
        let mut p = p.clone();
        if p.capabilities.is_none() {
            p.capabilities = base.capabilities.clone();
        }
        return p;
    }
    let mut p = base;
    p.args = req.args.clone();
    for e in &req.env {
        let key = e.split('=').next().unwrap_or("");
        p.env.retain(|x| x.split('=').next() != Some(key));
        p.env.push(e.clone());
    }
    if let Some(c) = &req.cwd {
        p.cwd = c.clone();
    }
    if let Some(u) = req.uid {
        p.user.uid = u;
        p.user.additional_gids = req.additional_gids.clone();
    }
    if let Some(g) = req.gid {
        p.user.gid = g;
    }
    p.terminal = req.tty;
    p.oom_score_adj = None;
    p
}
