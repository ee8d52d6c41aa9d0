//! `runtime run` in the foreground: this process is the container's parent and supervisor
//! (no monitor), forwards signals, proxies the terminal if there is one, and exits with the
//! container's exit code. The fast path the benchmark measures.

use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::path::Path;

use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
use nix::sys::signal::{SigSet, Signal};
use nix::sys::signalfd::SignalFd;
use nix::sys::wait::{WaitPidFlag, WaitStatus, waitpid};
use nix::unistd::Pid;

use super::error::{IoContext, Result, RuntimeError};
use super::launch::{self, LaunchOpts};
use super::spec::Spec;
use super::state::{self, ContainerDir, ContainerId, State, Status};
use super::sys;

/// Signals we forward to the container (and SIGCHLD, which we handle).
pub(crate) fn forwarded() -> SigSet {
    let mut s = SigSet::empty();
    for sig in [
        Signal::SIGCHLD,
        Signal::SIGINT,
        Signal::SIGTERM,
        Signal::SIGHUP,
        Signal::SIGQUIT,
        Signal::SIGUSR1,
        Signal::SIGUSR2,
        Signal::SIGWINCH,
        Signal::SIGCONT,
    ] {
        s.add(sig);
    }
    s
}

/// Exit code convention: the status, or 128 + signal.
pub fn exit_code(ws: WaitStatus) -> Option<i32> {
    match ws {
        WaitStatus::Exited(_, c) => Some(c),
        WaitStatus::Signaled(_, s, _) => Some(128 + s as i32),
        _ => None,
    }
}

pub fn run(
    root: &Path,
    bundle: &Path,
    id: &ContainerId,
    pid_file: Option<&Path>,
    console_socket: Option<&Path>,
) -> Result<i32> {
    let spec = Spec::load(bundle)?;
    super::trace_time("spec loaded");
    let dir = ContainerDir::new(root, id);
    std::fs::create_dir_all(dir.dir.parent().expect("has parent")).ctx("mkdir", &dir.dir)?;
    match std::fs::create_dir(&dir.dir) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
            return Err(RuntimeError::AlreadyExists { id: id.to_string() });
        }
        Err(e) => return Err(RuntimeError::io("mkdir", &dir.dir, e)),
    }
    let res = run_in_dir(&dir, spec, bundle, id, pid_file, console_socket);
    let _ = std::fs::remove_dir_all(&dir.dir);
    res
}

fn run_in_dir(
    dir: &ContainerDir,
    spec: Spec,
    bundle: &Path,
    id: &ContainerId,
    pid_file: Option<&Path>,
    console_socket: Option<&Path>,
) -> Result<i32> {
    let sigs = forwarded();
    sigs.thread_block()
        .map_err(|e| RuntimeError::sys("block signals", std::io::Error::from(e)))?;
    let terminal = spec.process().terminal;
    let oci_version = spec.oci_version.clone();
    let annotations = spec.annotations.clone();
    let opts = LaunchOpts {
        seccomp_cache: super::seccomp::cache_dir_of(&dir.dir),
        ..Default::default()
    };
    let l = launch::launch(spec, bundle, id.as_str(), &opts)?;
    super::trace_time("launched (exec done)");
    let pid = l.pid;
    let mut st = State {
        oci_version,
        id: id.clone(),
        status: Status::Running,
        pid,
        pid_start_time: state::proc_start_time(pid).unwrap_or(0),
        bundle: bundle.to_path_buf(),
        annotations,
        created: state::now_rfc3339(),
        started: Some(state::now_rfc3339()),
        finished: None,
        exit_code: None,
        oom_killed: false,
        restart_count: 0,
        monitor_pid: Some(std::process::id() as i32),
        cgroup: l.cgroup.rel().to_path_buf(),
        terminal,
        error: None,
        stopped_by_user: false,
        seq: 0,
    };
    dir.write_state_volatile(&mut st)?;
    if let Some(p) = pid_file {
        super::state::write_atomic_volatile(p, pid.to_string().as_bytes())?;
    }
    let mut master = l.master;
    if let (Some(m), Some(sock)) = (&master, console_socket) {
        send_console(sock, m)?;
        master = None;
    }
    let code = supervise_pub(pid, &sigs, master)?;
    super::trace_time("child exited");
    let _ = l.cgroup.destroy();
    super::trace_time("cgroup destroyed");
    Ok(code)
}

/// Send a pty master to a runc-style console socket (SCM_RIGHTS).
pub fn send_console(sock: &Path, master: &OwnedFd) -> Result<()> {
    use nix::sys::socket::{ControlMessage, MsgFlags, sendmsg};
    let s = super::sockpath::connect(sock)
        .map_err(|e| RuntimeError::io("connect console socket", sock, e))?;
    let fds = [master.as_raw_fd()];
    let name = b"/dev/ptmx";
    let iov = [std::io::IoSlice::new(name)];
    sendmsg::<()>(
        s.as_raw_fd(),
        &iov,
        &[ControlMessage::ScmRights(&fds)],
        MsgFlags::empty(),
        None,
    )
    .map_err(|e| RuntimeError::sys("send console fd", std::io::Error::from(e)))?;
    Ok(())
}

pub(crate) fn supervise_pub(pid: i32, sigs: &SigSet, master: Option<OwnedFd>) -> Result<i32> {
    let sfd =
        SignalFd::new(sigs).map_err(|e| RuntimeError::sys("signalfd", std::io::Error::from(e)))?;
    let stdin = std::io::stdin();
    let _raw = match &master {
        Some(m) => {
            let g = super::tty::RawGuard::new(stdin.as_fd());
            if let Ok(ws) = sys::get_winsize(stdin.as_fd()) {
                let _ = sys::set_winsize(m.as_fd(), ws);
            }
            g
        }
        None => None,
    };
    let mut stdin_open = master.is_some();
    loop {
        let mut fds = vec![PollFd::new(sfd.as_fd(), PollFlags::POLLIN)];
        if let Some(m) = &master {
            fds.push(PollFd::new(m.as_fd(), PollFlags::POLLIN));
            if stdin_open {
                fds.push(PollFd::new(stdin.as_fd(), PollFlags::POLLIN));
            }
        }
        match poll(&mut fds, PollTimeout::NONE) {
            Ok(_) => {}
            Err(nix::errno::Errno::EINTR) => continue,
            Err(e) => return Err(RuntimeError::sys("poll", std::io::Error::from(e))),
        }
        let rev: Vec<PollFlags> = fds
            .iter()
            .map(|f| f.revents().unwrap_or(PollFlags::empty()))
            .collect();
        drop(fds);
        if let Some(m) = &master {
            if rev
                .get(1)
                .is_some_and(|r| r.intersects(PollFlags::POLLIN | PollFlags::POLLHUP))
            {
                let mut buf = [0u8; 8192];
                match nix::unistd::read(m, &mut buf) {
                    Ok(n) if n > 0 => super::tty::write_all(std::io::stdout().as_fd(), &buf[..n]),
                    _ => {}
                }
            }
            if stdin_open
                && rev
                    .get(2)
                    .is_some_and(|r| r.intersects(PollFlags::POLLIN | PollFlags::POLLHUP))
            {
                let mut buf = [0u8; 8192];
                match nix::unistd::read(&stdin, &mut buf) {
                    Ok(n) if n > 0 => super::tty::write_all(m.as_fd(), &buf[..n]),
                    _ => stdin_open = false,
                }
            }
        }
        if rev[0].contains(PollFlags::POLLIN) {
            while let Ok(Some(si)) = sfd.read_signal() {
                let sig = si.ssi_signo as i32;
                if sig == libc::SIGCHLD {
                    loop {
                        match waitpid(Pid::from_raw(-1), Some(WaitPidFlag::WNOHANG)) {
                            Ok(WaitStatus::StillAlive) | Err(_) => break,
                            Ok(ws) => {
                                if ws.pid() == Some(Pid::from_raw(pid))
                                    && let Some(code) = exit_code(ws)
                                {
                                    if let Some(m) = &master {
                                        drain(m);
                                    }
                                    return Ok(code);
                                }
                            }
                        }
                    }
                } else if sig == libc::SIGWINCH {
                    if let Some(m) = &master
                        && let Ok(ws) = sys::get_winsize(stdin.as_fd())
                    {
                        let _ = sys::set_winsize(m.as_fd(), ws);
                    }
                } else {
                    let _ = nix::sys::signal::kill(Pid::from_raw(pid), Signal::try_from(sig).ok());
                }
            }
        }
    }
}

fn drain(m: &OwnedFd) {
    let _ = nix::fcntl::fcntl(
        m,
        nix::fcntl::FcntlArg::F_SETFL(nix::fcntl::OFlag::O_NONBLOCK),
    );
    let mut buf = [0u8; 8192];
    while let Ok(n) = nix::unistd::read(m, &mut buf) {
        if n == 0 {
            break;
        }
        super::tty::write_all(std::io::stdout().as_fd(), &buf[..n]);
    }
}
