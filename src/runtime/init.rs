//! The container's init: what the freshly cloned child does, in its new namespaces, between
//! clone and the exec of the container's process.
//!
//! It talks to its parent (the monitor, or `runtime run`) over a unix socketpair:
//! child → parent `R` (ready: waiting for start), `P` + an fd (the pty master), `E` + message
//! (failed, then it exits). Parent → child: `M` (id maps written) and `S` (start). Our end is
//! close-on-exec, so EOF after `R` means the exec succeeded.

use std::ffi::CString;
use std::io::{IoSlice, Read, Write};
use std::os::fd::{AsFd, AsRawFd, RawFd};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};

use nix::sys::socket::{ControlMessage, MsgFlags, sendmsg};

use super::caps::CapSets;
use super::error::{Result, RuntimeError};
use super::rootfs::{self, RootfsPlan};
use super::spec::{OverlayRootfs, Spec};
use super::sys;

/// Everything the init needs, computed by the parent before clone.
pub struct InitConfig {
    pub spec: Spec,
    pub rootfs: PathBuf,
    pub overlay: Option<OverlayRootfs>,
    pub cgroup_mounts: Vec<(PathBuf, PathBuf)>,
    pub cgroup_v2: bool,
    pub caps: Option<CapSets>,
    pub seccomp: Option<Vec<Vec<libc::sock_filter>>>,
    /// Wait for the parent's `S` before exec (create/start); `run` does not.
    pub wait_for_start: bool,
    /// fds to dup onto 0,1,2 before exec (monitor pipes), when not using a terminal.
    pub stdio: Option<[RawFd; 3]>,
}

/// Run the init. Never returns: exec or `_exit`.
pub fn run(cfg: &InitConfig, mut sock: UnixStream) -> ! {
    match setup(cfg, &mut sock) {
        Ok(never) => match never {},
        Err(e) => {
            let msg = format!("E{e}");
            let _ = sock.write_all(msg.as_bytes());
            sys::exit_now(1)
        }
    }
}

pub(crate) enum Never {}

fn io_err(op: &str) -> impl FnOnce(std::io::Error) -> RuntimeError + '_ {
    move |e| RuntimeError::sys(op, e)
}

fn wait_byte(sock: &mut UnixStream, want: u8) -> Result<()> {
    let mut b = [0u8; 1];
    match sock.read(&mut b) {
        Ok(1) if b[0] == want => Ok(()),
        Ok(_) => Err(RuntimeError::Init(format!(
            "parent went away before sending {:?}",
            want as char
        ))),
        Err(e) => Err(RuntimeError::sys("read sync socket", e)),
    }
}

fn setup(cfg: &InitConfig, sock: &mut UnixStream) -> Result<Never> {
    let spec = &cfg.spec;
    let process = spec.process();
    let linux = spec.linux();
    // Nobody in the container may open our /proc entries (exe, mem, fds) while we still run
    // berth's code.
    sys::set_dumpable(false).map_err(io_err("prctl(PR_SET_DUMPABLE)"))?;
    super::trace_time("child start");
    let userns = spec.has_namespace("user");
    if userns {
        wait_byte(sock, b'M')?;
        nix::unistd::setresgid(0.into(), 0.into(), 0.into())
            .map_err(|e| RuntimeError::sys("setresgid 0", std::io::Error::from(e)))?;
        nix::unistd::setresuid(0.into(), 0.into(), 0.into())
            .map_err(|e| RuntimeError::sys("setresuid 0", std::io::Error::from(e)))?;
    }
    // The parent moves us into the container's cgroup while we build the filesystem view
    // (joining a v1 hierarchy waits for an RCU grace period: milliseconds we spend in
    // parallel). We must be in it before a cgroup namespace is created, and before exec.
    let cgroupns = spec.has_namespace("cgroup");
    if cgroupns {
        wait_byte(sock, b'C')?;
        nix::sched::unshare(nix::sched::CloneFlags::CLONE_NEWCGROUP)
            .map_err(|e| RuntimeError::sys("unshare(CLONE_NEWCGROUP)", std::io::Error::from(e)))?;
    }
    if spec.has_namespace("uts")
        && let Some(h) = &spec.hostname
    {
        nix::unistd::sethostname(h)
            .map_err(|e| RuntimeError::sys("sethostname", std::io::Error::from(e)))?;
    }
    if spec.has_namespace("network")
        && linux
            .namespaces
            .iter()
            .any(|n| n.kind == "network" && n.path.is_none())
    {
        sys::loopback_up().map_err(io_err("bring lo up"))?;
    }

    let plan = RootfsPlan {
        spec,
        rootfs: cfg.rootfs.clone(),
        overlay: cfg.overlay.clone(),
        cgroup_mounts: cfg.cgroup_mounts.clone(),
        cgroup_v2: cfg.cgroup_v2,
        cgroupns: spec.has_namespace("cgroup"),
        userns,
    };
    let (root, console) = rootfs::prepare(&plan, process.terminal)?;
    super::trace_time("mounts done");
    if let Some((master, slave)) = &console {
        send_fd(sock, b'P', master.as_raw_fd())?;
        let _ = master;
        nix::unistd::setsid().map_err(|e| RuntimeError::sys("setsid", std::io::Error::from(e)))?;
        sys::set_controlling_tty(slave.as_fd()).map_err(io_err("TIOCSCTTY"))?;
        for fd in 0..3 {
            dup_onto(slave.as_raw_fd(), fd)?;
        }
    } else if let Some(stdio) = cfg.stdio {
        for (i, fd) in stdio.iter().enumerate() {
            dup_onto(*fd, i as RawFd)?;
        }
    }
    drop(console);
    rootfs::pivot(&root)?;
    drop(root);
    rootfs::finalize(spec)?;
    if !cgroupns {
        wait_byte(sock, b'C')?;
    }
    super::trace_time("finalize done");

    exec_process(
        process,
        cfg.caps.as_ref(),
        cfg.seccomp.as_deref(),
        userns,
        cfg.wait_for_start.then_some(sock),
    )
}

/// The common end of init and exec: limits, cwd (verified), identity, capabilities, seccomp,
/// fds, then (after the parent's `S` when `sync` is given) exec.
pub(crate) fn exec_process(
    process: &super::spec::Process,
    caps: Option<&CapSets>,
    seccomp: Option<&[Vec<libc::sock_filter>]>,
    userns: bool,
    sync: Option<&mut UnixStream>,
) -> Result<Never> {
    if let Some(adj) = process.oom_score_adj {
        std::fs::write("/proc/self/oom_score_adj", adj.to_string())
            .map_err(|e| RuntimeError::io("write", "/proc/self/oom_score_adj", e))?;
    }
    for r in &process.rlimits {
        let res = rlimit_resource(&r.kind)
            .ok_or_else(|| RuntimeError::BadRequest(format!("unknown rlimit {}", r.kind)))?;
        nix::sys::resource::setrlimit(res, r.soft, r.hard).map_err(|e| {
            RuntimeError::sys(
                format!("setrlimit {} {}/{}", r.kind, r.soft, r.hard),
                std::io::Error::from(e),
            )
        })?;
    }

    // cwd: resolve inside the new root and verify (CVE-2024-21626).
    nix::unistd::chdir(Path::new(&process.cwd)).map_err(|e| {
        RuntimeError::sys(format!("chdir {}", process.cwd), std::io::Error::from(e))
    })?;
    verify_cwd()?;

    let path = resolve_exe(&process.args[0], &process.env)?;
    let argv: Vec<CString> = process
        .args
        .iter()
        .map(|a| cstr(a))
        .collect::<Result<_>>()?;
    let envp: Vec<CString> = process.env.iter().map(|a| cstr(a)).collect::<Result<_>>()?;

    // Capabilities and identity.
    if let Some(c) = &caps {
        c.apply_bounding()
            .map_err(io_err("drop bounding capabilities"))?;
    }
    let nnp = process.no_new_privileges;
    if let (Some(prog), false) = (&seccomp, nnp) {
        // Without no_new_privs we need CAP_SYS_ADMIN to install the filter: do it now.
        super::seccomp::install(prog).map_err(io_err("install seccomp filter"))?;
    }
    sys::set_keep_caps(true).map_err(io_err("PR_SET_KEEPCAPS"))?;
    let u = &process.user;
    let groups: Vec<nix::unistd::Gid> = u
        .additional_gids
        .iter()
        .map(|g| nix::unistd::Gid::from_raw(*g))
        .collect();
    if !userns || !groups.is_empty() {
        nix::unistd::setgroups(&groups)
            .map_err(|e| RuntimeError::sys("setgroups", std::io::Error::from(e)))?;
    }
    let gid = nix::unistd::Gid::from_raw(u.gid);
    let uid = nix::unistd::Uid::from_raw(u.uid);
    nix::unistd::setresgid(gid, gid, gid)
        .map_err(|e| RuntimeError::sys(format!("setresgid {}", u.gid), std::io::Error::from(e)))?;
    nix::unistd::setresuid(uid, uid, uid)
        .map_err(|e| RuntimeError::sys(format!("setresuid {}", u.uid), std::io::Error::from(e)))?;
    sys::set_keep_caps(false).map_err(io_err("PR_SET_KEEPCAPS"))?;
    if let Some(c) = &caps {
        c.apply_process_sets()
            .map_err(|e| RuntimeError::Init(format!("set capabilities: {e}")))?;
    }
    nix::sys::stat::umask(nix::sys::stat::Mode::from_bits_truncate(
        u.umask.unwrap_or(0o022) as libc::mode_t,
    ));
    if nnp {
        sys::set_no_new_privs().map_err(io_err("PR_SET_NO_NEW_PRIVS"))?;
        if let Some(prog) = &seccomp {
            super::seccomp::install(prog).map_err(io_err("install seccomp filter"))?;
        }
    }

    // Every fd but stdio and our sync socket (close-on-exec itself) goes at exec.
    sys::cloexec_from(3).map_err(io_err("close_range"))?;
    if let Some(sock) = sync {
        sock.write_all(b"R").map_err(io_err("write sync socket"))?;
        wait_byte(sock, b'S')?;
    }
    sys::reset_signals();
    super::trace_time("about to exec");
    let e = sys::execve(&path, &argv, &envp);
    Err(RuntimeError::Init(format!(
        "exec {:?}: {e}",
        process.args[0]
    )))
}

fn cstr(s: &str) -> Result<CString> {
    CString::new(s).map_err(|_| RuntimeError::BadRequest(format!("NUL byte in {s:?}")))
}

fn dup_onto(from: RawFd, to: RawFd) -> Result<()> {
    sys::dup_onto(from, to).map_err(|e| RuntimeError::sys(format!("dup2 {from}->{to}"), e))
}

fn send_fd(sock: &UnixStream, tag: u8, fd: RawFd) -> Result<()> {
    let fds = [fd];
    let iov = [IoSlice::new(std::slice::from_ref(&tag))];
    let cmsg = [ControlMessage::ScmRights(&fds)];
    sendmsg::<()>(sock.as_raw_fd(), &iov, &cmsg, MsgFlags::empty(), None)
        .map_err(|e| RuntimeError::sys("send pty master", std::io::Error::from(e)))?;
    Ok(())
}

/// After chdir: the kernel must be able to name our cwd from our root (a cwd outside the root,
/// as a leaked host fd would give, makes getcwd fail or report "(unreachable)").
fn verify_cwd() -> Result<()> {
    let cwd = nix::unistd::getcwd().map_err(|e| RuntimeError::UnsafePath {
        path: "cwd".into(),
        reason: format!("getcwd failed ({e}): possible container breakout"),
    })?;
    if !cwd.is_absolute() || cwd.as_os_str().as_bytes().starts_with(b"(unreachable)") {
        return Err(RuntimeError::UnsafePath {
            path: cwd,
            reason: "cwd is outside the container root".into(),
        });
    }
    Ok(())
}

/// PATH lookup inside the container (after pivot_root), with the container's PATH.
fn resolve_exe(arg0: &str, env: &[String]) -> Result<CString> {
    if arg0.contains('/') {
        return cstr(arg0);
    }
    let path = env
        .iter()
        .find_map(|e| e.strip_prefix("PATH="))
        .unwrap_or("/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin");
    for dir in path.split(':').filter(|d| !d.is_empty()) {
        let p = Path::new(dir).join(arg0);
        if let Ok(m) = std::fs::metadata(&p) {
            use std::os::unix::fs::PermissionsExt;
            if m.is_file() && m.permissions().mode() & 0o111 != 0 {
                return cstr(&p.to_string_lossy());
            }
        }
    }
    Err(RuntimeError::Init(format!(
        "executable {arg0:?} not found in $PATH ({path})"
    )))
}

fn rlimit_resource(name: &str) -> Option<nix::sys::resource::Resource> {
    use nix::sys::resource::Resource::*;
    Some(match name {
        "RLIMIT_AS" => RLIMIT_AS,
        "RLIMIT_CORE" => RLIMIT_CORE,
        "RLIMIT_CPU" => RLIMIT_CPU,
        "RLIMIT_DATA" => RLIMIT_DATA,
        "RLIMIT_FSIZE" => RLIMIT_FSIZE,
        "RLIMIT_LOCKS" => RLIMIT_LOCKS,
        "RLIMIT_MEMLOCK" => RLIMIT_MEMLOCK,
        "RLIMIT_MSGQUEUE" => RLIMIT_MSGQUEUE,
        "RLIMIT_NICE" => RLIMIT_NICE,
        "RLIMIT_NOFILE" => RLIMIT_NOFILE,
        "RLIMIT_NPROC" => RLIMIT_NPROC,
        "RLIMIT_RSS" => RLIMIT_RSS,
        "RLIMIT_RTPRIO" => RLIMIT_RTPRIO,
        "RLIMIT_RTTIME" => RLIMIT_RTTIME,
        "RLIMIT_SIGPENDING" => RLIMIT_SIGPENDING,
        "RLIMIT_STACK" => RLIMIT_STACK,
        _ => return None,
    })
}
