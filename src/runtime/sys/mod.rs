//! Thin syscall wrappers: the only place in berth where `unsafe` is allowed.
//!
//! Each function does one syscall (or one tightly coupled pair) and returns `io::Result`.
//! Everything that nix already offers safely is used from nix directly by the callers; this
//! module holds what nix lacks or marks unsafe (clone without a new stack, execveat, openat2,
//! close_range, seccomp, the new mount API, a few ioctls and prctls).
#![allow(unsafe_code)]

use std::ffi::{CStr, CString};
use std::io;
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};

fn cvt(r: libc::c_long) -> io::Result<libc::c_long> {
    if r < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(r)
    }
}

fn cvt_int(r: libc::c_int) -> io::Result<libc::c_int> {
    if r < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(r)
    }
}

/// Outcome of [`clone_fork`].
pub enum Forked {
    /// We are the new process.
    Child,
    /// We are the caller; the child has this pid (in our pid namespace).
    Parent(libc::pid_t),
}

/// `clone(flags | SIGCHLD)` with no new stack: fork semantics plus namespace flags.
///
/// Only call this from a single-threaded process (the runtime's `run`, monitor and exec paths
/// never start threads before forking), so the child's copy of the address space holds no lock
/// owned by another thread.
pub fn clone_fork(flags: libc::c_int) -> io::Result<Forked> {
    // SAFETY: raw clone with a null stack behaves like fork(2): the child resumes on a
    // copy-on-write copy of our stack. The arguments after the stack (ptid, ctid, tls) are
    // unused because no CLONE_*SETTID/SETTLS flag is passed.
    let r = unsafe {
        libc::syscall(
            libc::SYS_clone,
            (flags | libc::SIGCHLD) as libc::c_ulong,
            0usize,
            0usize,
            0usize,
            0usize,
        )
    };
    match cvt(r)? {
        0 => Ok(Forked::Child),
        pid => Ok(Forked::Parent(pid as libc::pid_t)),
    }
}

/// Immediately terminate the current process without running atexit handlers or destructors
/// (used by forked children that must not unwind into the parent's code).
pub fn exit_now(code: i32) -> ! {
    // SAFETY: _exit never returns and takes no pointers.
    unsafe { libc::_exit(code) }
}

fn prctl(op: libc::c_int, a: libc::c_ulong) -> io::Result<()> {
    // SAFETY: the prctl operations used here take integer arguments only.
    cvt_int(unsafe {
        libc::prctl(
            op,
            a,
            0 as libc::c_ulong,
            0 as libc::c_ulong,
            0 as libc::c_ulong,
        )
    })
    .map(drop)
}

/// PR_SET_DUMPABLE: a non-dumpable process's /proc entries cannot be opened by processes
/// without CAP_SYS_PTRACE (CVE-2016-9962, CVE-2019-5736 defence in depth).
pub fn set_dumpable(on: bool) -> io::Result<()> {
    prctl(libc::PR_SET_DUMPABLE, on as libc::c_ulong)
}

/// PR_SET_PDEATHSIG: signal delivered to us when our parent thread dies.
pub fn set_parent_death_signal(sig: libc::c_int) -> io::Result<()> {
    prctl(libc::PR_SET_PDEATHSIG, sig as libc::c_ulong)
}

/// PR_SET_KEEPCAPS: keep permitted capabilities across a setuid away from 0.
pub fn set_keep_caps(on: bool) -> io::Result<()> {
    prctl(libc::PR_SET_KEEPCAPS, on as libc::c_ulong)
}

/// PR_SET_NO_NEW_PRIVS (irreversible).
pub fn set_no_new_privs() -> io::Result<()> {
    // SAFETY: integer-only prctl.
    cvt_int(unsafe { libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1 as libc::c_ulong, 0, 0, 0) })
        .map(drop)
}

/// PR_SET_CHILD_SUBREAPER: orphaned descendants are re-parented to us.
pub fn set_child_subreaper() -> io::Result<()> {
    prctl(libc::PR_SET_CHILD_SUBREAPER, 1)
}

/// PR_CAPBSET_DROP for one capability number.
pub fn capbset_drop(cap: u32) -> io::Result<()> {
    prctl(libc::PR_CAPBSET_DROP, cap as libc::c_ulong)
}

/// close_range(first, ~0, CLOSE_RANGE_CLOEXEC): every fd from `first` up is closed at exec.
pub fn cloexec_from(first: u32) -> io::Result<()> {
    // SAFETY: close_range takes integers only; with CLOEXEC it only sets flags.
    let r = unsafe {
        libc::syscall(
            libc::SYS_close_range,
            first,
            u32::MAX,
            libc::CLOSE_RANGE_CLOEXEC,
        )
    };
    cvt(r).map(drop)
}

/// Install a classic-BPF seccomp filter on the calling thread.
/// The caller must either hold CAP_SYS_ADMIN or have set no_new_privs.
pub fn seccomp_install(prog: &[libc::sock_filter]) -> io::Result<()> {
    let fprog = libc::sock_fprog {
        len: prog.len() as libc::c_ushort,
        filter: prog.as_ptr() as *mut libc::sock_filter,
    };
    // SAFETY: fprog points at `prog`, which outlives the call; the kernel copies the program.
    let r = unsafe {
        libc::syscall(
            libc::SYS_seccomp,
            libc::SECCOMP_SET_MODE_FILTER,
            0 as libc::c_uint,
            &fprog as *const libc::sock_fprog,
        )
    };
    cvt(r).map(drop)
}

/// openat2(2): resolve `path` below `dirfd` with the given RESOLVE_* flags.
pub fn openat2(
    dirfd: BorrowedFd<'_>,
    path: &CStr,
    flags: u64,
    mode: u64,
    resolve: u64,
) -> io::Result<OwnedFd> {
    let mut how: libc::open_how = open_how_zeroed();
    how.flags = flags;
    how.mode = mode;
    how.resolve = resolve;
    loop {
        // SAFETY: `how` is a valid open_how of the size we pass; `path` is NUL-terminated.
        let r = unsafe {
            libc::syscall(
                libc::SYS_openat2,
                dirfd.as_raw_fd(),
                path.as_ptr(),
                &how as *const libc::open_how,
                std::mem::size_of::<libc::open_how>(),
            )
        };
        match cvt(r) {
            // SAFETY: the kernel returned a fresh fd that nobody else owns.
            Ok(fd) => return Ok(unsafe { OwnedFd::from_raw_fd(fd as RawFd) }),
            Err(e)
                if e.raw_os_error() == Some(libc::EAGAIN)
                    || e.raw_os_error() == Some(libc::EINTR) =>
            {
                continue;
            }
            Err(e) => return Err(e),
        }
    }
}

fn open_how_zeroed() -> libc::open_how {
    // SAFETY: open_how is a plain C struct of integers; all-zero is its documented default.
    unsafe { std::mem::zeroed() }
}

/// execveat(fd, "", argv, envp, AT_EMPTY_PATH): run the file behind `fd`. Returns only on error.
pub fn execveat_fd(fd: BorrowedFd<'_>, argv: &[CString], envp: &[CString]) -> io::Error {
    let argv_p: Vec<*const libc::c_char> = argv
        .iter()
        .map(|a| a.as_ptr())
        .chain(std::iter::once(std::ptr::null()))
        .collect();
    let envp_p: Vec<*const libc::c_char> = envp
        .iter()
        .map(|a| a.as_ptr())
        .chain(std::iter::once(std::ptr::null()))
        .collect();
    // SAFETY: argv/envp are NULL-terminated arrays of pointers into CStrings that outlive the call.
    unsafe {
        libc::syscall(
            libc::SYS_execveat,
            fd.as_raw_fd(),
            c"".as_ptr(),
            argv_p.as_ptr(),
            envp_p.as_ptr(),
            libc::AT_EMPTY_PATH,
        )
    };
    io::Error::last_os_error()
}

/// execve(path, argv, envp). Returns only on error.
pub fn execve(path: &CStr, argv: &[CString], envp: &[CString]) -> io::Error {
    let argv_p: Vec<*const libc::c_char> = argv
        .iter()
        .map(|a| a.as_ptr())
        .chain(std::iter::once(std::ptr::null()))
        .collect();
    let envp_p: Vec<*const libc::c_char> = envp
        .iter()
        .map(|a| a.as_ptr())
        .chain(std::iter::once(std::ptr::null()))
        .collect();
    // SAFETY: as for execveat_fd.
    unsafe { libc::execve(path.as_ptr(), argv_p.as_ptr(), envp_p.as_ptr()) };
    io::Error::last_os_error()
}

/// fsopen + fsconfig + fsmount: a detached, never-attached mount of `fstype` with string
/// options. Returns the mount fd (the root of the new mount).
pub fn fsmount_detached(
    fstype: &CStr,
    options: &[(&CStr, &CStr)],
    attr: u32,
) -> io::Result<OwnedFd> {
    const FSOPEN_CLOEXEC: libc::c_uint = 1;
    const FSCONFIG_SET_STRING: libc::c_uint = 1;
    const FSCONFIG_CMD_CREATE: libc::c_uint = 6;
    const FSMOUNT_CLOEXEC: libc::c_uint = 1;
    // SAFETY: fstype is NUL-terminated.
    let fsfd = cvt(unsafe { libc::syscall(libc::SYS_fsopen, fstype.as_ptr(), FSOPEN_CLOEXEC) })?;
    // SAFETY: fresh fd from the kernel.
    let fsfd = unsafe { OwnedFd::from_raw_fd(fsfd as RawFd) };
    for (k, v) in options {
        // SAFETY: key and value are NUL-terminated strings that outlive the call.
        cvt(unsafe {
            libc::syscall(
                libc::SYS_fsconfig,
                fsfd.as_raw_fd(),
                FSCONFIG_SET_STRING,
                k.as_ptr(),
                v.as_ptr(),
                0,
            )
        })?;
    }
    // SAFETY: integer/null arguments only.
    cvt(unsafe {
        libc::syscall(
            libc::SYS_fsconfig,
            fsfd.as_raw_fd(),
            FSCONFIG_CMD_CREATE,
            std::ptr::null::<libc::c_char>(),
            std::ptr::null::<libc::c_char>(),
            0,
        )
    })?;
    // SAFETY: integer arguments only.
    let m =
        cvt(unsafe { libc::syscall(libc::SYS_fsmount, fsfd.as_raw_fd(), FSMOUNT_CLOEXEC, attr) })?;
    // SAFETY: fresh fd from the kernel.
    Ok(unsafe { OwnedFd::from_raw_fd(m as RawFd) })
}

/// memfd_create(name, MFD_CLOEXEC | MFD_ALLOW_SEALING).
pub fn memfd_sealable(name: &CStr) -> io::Result<OwnedFd> {
    // SAFETY: name is NUL-terminated.
    let fd = cvt_int(unsafe {
        libc::memfd_create(name.as_ptr(), libc::MFD_CLOEXEC | libc::MFD_ALLOW_SEALING)
    })?;
    // SAFETY: fresh fd.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// Add F_SEAL_* seals to a memfd.
pub fn add_seals(fd: BorrowedFd<'_>, seals: libc::c_int) -> io::Result<()> {
    // SAFETY: integer arguments only.
    cvt_int(unsafe { libc::fcntl(fd.as_raw_fd(), libc::F_ADD_SEALS, seals) }).map(drop)
}

/// sendfile(out, in, NULL, count): returns bytes copied.
pub fn sendfile(out: BorrowedFd<'_>, inp: BorrowedFd<'_>, count: usize) -> io::Result<usize> {
    // SAFETY: null offset means "use and update the file offset".
    let r = unsafe {
        libc::sendfile(
            out.as_raw_fd(),
            inp.as_raw_fd(),
            std::ptr::null_mut(),
            count,
        )
    };
    if r < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(r as usize)
    }
}

/// A terminal window size.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
pub struct WinSize {
    pub rows: u16,
    pub cols: u16,
}

/// TIOCSWINSZ on a terminal fd.
pub fn set_winsize(fd: BorrowedFd<'_>, ws: WinSize) -> io::Result<()> {
    let w = libc::winsize {
        ws_row: ws.rows,
        ws_col: ws.cols,
        ws_xpixel: 0,
        ws_ypixel: 0,
    };
    // SAFETY: w is a valid winsize read by the kernel.
    cvt_int(unsafe { libc::ioctl(fd.as_raw_fd(), libc::TIOCSWINSZ, &w as *const libc::winsize) })
        .map(drop)
}

/// TIOCGWINSZ on a terminal fd.
pub fn get_winsize(fd: BorrowedFd<'_>) -> io::Result<WinSize> {
    let mut w = libc::winsize {
        ws_row: 0,
        ws_col: 0,
        ws_xpixel: 0,
        ws_ypixel: 0,
    };
    // SAFETY: w is a valid winsize written by the kernel.
    cvt_int(unsafe {
        libc::ioctl(
            fd.as_raw_fd(),
            libc::TIOCGWINSZ,
            &mut w as *mut libc::winsize,
        )
    })?;
    Ok(WinSize {
        rows: w.ws_row,
        cols: w.ws_col,
    })
}

/// TIOCSCTTY: make `fd` our controlling terminal (we must be a session leader).
pub fn set_controlling_tty(fd: BorrowedFd<'_>) -> io::Result<()> {
    // SAFETY: integer arguments only.
    cvt_int(unsafe { libc::ioctl(fd.as_raw_fd(), libc::TIOCSCTTY, 0) }).map(drop)
}

/// Given a freshly opened `ptmx` (a new pty master of some devpts instance), unlock it and
/// open its slave; returns (master, slave). TIOCGPTPEER opens the slave relative to the
/// master's own devpts instance, so no path lookup (which a container could race) is involved.
pub fn pty_pair(master: OwnedFd) -> io::Result<(OwnedFd, OwnedFd)> {
    let unlock: libc::c_int = 0;
    // SAFETY: TIOCSPTLCK reads an int.
    cvt_int(unsafe {
        libc::ioctl(
            master.as_raw_fd(),
            libc::TIOCSPTLCK,
            &unlock as *const libc::c_int,
        )
    })?;
    // SAFETY: integer arguments only.
    let s = cvt_int(unsafe {
        libc::ioctl(
            master.as_raw_fd(),
            libc::TIOCGPTPEER,
            libc::O_RDWR | libc::O_NOCTTY | libc::O_CLOEXEC,
        )
    })?;
    // SAFETY: fresh fd.
    let slave = unsafe { OwnedFd::from_raw_fd(s) };
    Ok((master, slave))
}

/// Bring the loopback interface up in the current network namespace.
pub fn loopback_up() -> io::Result<()> {
    // SAFETY: plain socket creation.
    let s =
        cvt_int(unsafe { libc::socket(libc::AF_INET, libc::SOCK_DGRAM | libc::SOCK_CLOEXEC, 0) })?;
    // SAFETY: fresh fd.
    let s = unsafe { OwnedFd::from_raw_fd(s) };
    // SAFETY: ifreq is plain data; all-zero is valid.
    let mut ifr: libc::ifreq = unsafe { std::mem::zeroed() };
    for (d, b) in ifr.ifr_name.iter_mut().zip(b"lo\0") {
        *d = *b as libc::c_char;
    }
    // SAFETY: SIOCGIFFLAGS fills ifr.ifr_ifru.ifru_flags of a valid ifreq.
    cvt_int(unsafe {
        libc::ioctl(
            s.as_raw_fd(),
            libc::SIOCGIFFLAGS,
            &mut ifr as *mut libc::ifreq,
        )
    })?;
    // SAFETY: reading the union member that SIOCGIFFLAGS just wrote.
    let flags = unsafe { ifr.ifr_ifru.ifru_flags };
    ifr.ifr_ifru.ifru_flags = flags | libc::IFF_UP as libc::c_short;
    // SAFETY: SIOCSIFFLAGS reads a valid ifreq.
    cvt_int(unsafe {
        libc::ioctl(
            s.as_raw_fd(),
            libc::SIOCSIFFLAGS,
            &ifr as *const libc::ifreq,
        )
    })
    .map(drop)
}

/// pidfd_open(pid, 0).
pub fn pidfd_open(pid: libc::pid_t) -> io::Result<OwnedFd> {
    // SAFETY: integer arguments only.
    let fd = cvt(unsafe { libc::syscall(libc::SYS_pidfd_open, pid, 0) })?;
    // SAFETY: fresh fd.
    Ok(unsafe { OwnedFd::from_raw_fd(fd as RawFd) })
}

/// pidfd_send_signal(pidfd, sig, NULL, 0).
pub fn pidfd_send_signal(pidfd: BorrowedFd<'_>, sig: libc::c_int) -> io::Result<()> {
    // SAFETY: null siginfo is allowed; integer arguments otherwise.
    cvt(unsafe {
        libc::syscall(
            libc::SYS_pidfd_send_signal,
            pidfd.as_raw_fd(),
            sig,
            std::ptr::null::<libc::siginfo_t>(),
            0,
        )
    })
    .map(drop)
}

/// The current thread's signal mask is set to block exactly `sigs` (and returns the old mask).
pub fn block_signals(sigs: &[libc::c_int]) -> io::Result<libc::sigset_t> {
    // SAFETY: sigset_t is plain data; sigemptyset initialises it.
    let mut set: libc::sigset_t = unsafe { std::mem::zeroed() };
    // SAFETY: set is a valid sigset_t.
    let mut old: libc::sigset_t = unsafe { std::mem::zeroed() };
    // SAFETY: valid pointer.
    unsafe { libc::sigemptyset(&mut set) };
    for s in sigs {
        // SAFETY: valid pointer and signal number.
        unsafe { libc::sigaddset(&mut set, *s) };
    }
    // SAFETY: valid pointers to sigset_t.
    let r = unsafe { libc::pthread_sigmask(libc::SIG_BLOCK, &set, &mut old) };
    if r != 0 {
        return Err(io::Error::from_raw_os_error(r));
    }
    Ok(old)
}

/// Reset the signal mask to empty and every handler to default (for a child about to exec).
pub fn reset_signals() {
    // SAFETY: plain data.
    let mut set: libc::sigset_t = unsafe { std::mem::zeroed() };
    // SAFETY: valid pointer.
    unsafe { libc::sigemptyset(&mut set) };
    // SAFETY: valid pointer.
    unsafe { libc::pthread_sigmask(libc::SIG_SETMASK, &set, std::ptr::null_mut()) };
    for s in 1..32 {
        if s == libc::SIGKILL || s == libc::SIGSTOP {
            continue;
        }
        // SAFETY: setting the default disposition is always valid.
        unsafe { libc::signal(s, libc::SIG_DFL) };
    }
}

/// The raw fd number of a BorrowedFd, for building /proc/self/fd/N paths.
pub fn fd_path(fd: BorrowedFd<'_>) -> String {
    format!("/proc/self/fd/{}", fd.as_raw_fd())
}

/// Return the allocator's free memory to the kernel (glibc `malloc_trim(0)`, which also
/// releases free pages in the middle of the heap, not only at its top): after a burst of
/// short-lived allocations, such as listing 1,000 containers, so an idle process does not
/// keep their pages. A no-op elsewhere than glibc.
pub fn release_free_memory() {
    #[cfg(target_env = "gnu")]
    // SAFETY: malloc_trim takes a plain size and only walks the allocator's own state.
    unsafe {
        libc::malloc_trim(0);
    }
}

/// getpid without caching.
pub fn getpid() -> libc::pid_t {
    // SAFETY: no arguments.
    unsafe { libc::getpid() }
}

/// dup2(from, to) on raw descriptor numbers (for wiring stdio before exec); when `from == to`
/// only clears close-on-exec, which dup2 would leave set.
pub fn dup_onto(from: RawFd, to: RawFd) -> io::Result<()> {
    if from == to {
        // SAFETY: integer-only fcntl.
        let fl = cvt_int(unsafe { libc::fcntl(from, libc::F_GETFD) })?;
        // SAFETY: integer-only fcntl.
        return cvt_int(unsafe { libc::fcntl(from, libc::F_SETFD, fl & !libc::FD_CLOEXEC) })
            .map(drop);
    }
    // SAFETY: dup2 on integers; `to` is one of our stdio slots, replaced atomically.
    cvt_int(unsafe { libc::dup2(from, to) }).map(drop)
}

/// Take ownership of a raw fd that the kernel just handed us (SCM_RIGHTS, a fresh open).
/// Callers must only pass fds nothing else owns.
pub fn owned_raw(fd: RawFd) -> OwnedFd {
    // SAFETY: per the contract above, `fd` is a fresh descriptor with no other owner.
    unsafe { OwnedFd::from_raw_fd(fd) }
}

/// Borrow a raw fd for a short, local use (poll sets). The caller keeps the owner alive for
/// as long as the borrow is used.
pub fn borrow_raw(fd: RawFd) -> BorrowedFd<'static> {
    // SAFETY: per the contract above, the fd is open for the duration of the borrow's use.
    unsafe { BorrowedFd::borrow_raw(fd) }
}

/// move_mount(fd, "", AT_FDCWD, target, MOVE_MOUNT_F_EMPTY_PATH): attach a detached mount.
pub fn move_mount_to(fd: BorrowedFd<'_>, target: &CStr) -> io::Result<()> {
    const MOVE_MOUNT_F_EMPTY_PATH: libc::c_uint = 0x4;
    // SAFETY: both paths are NUL-terminated; integers otherwise.
    cvt(unsafe {
        libc::syscall(
            libc::SYS_move_mount,
            fd.as_raw_fd(),
            c"".as_ptr(),
            libc::AT_FDCWD,
            target.as_ptr(),
            MOVE_MOUNT_F_EMPTY_PATH,
        )
    })
    .map(drop)
}

/// open_tree(AT_FDCWD, path, OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC) followed by
/// mount_setattr(MOUNT_ATTR_RDONLY | MOUNT_ATTR_NODEV | MOUNT_ATTR_NOSUID): a detached,
/// read-only bind mount of `path` (file or directory) that was never attached anywhere.
pub fn open_tree_readonly(path: &CStr) -> io::Result<OwnedFd> {
    const OPEN_TREE_CLONE: libc::c_uint = 1;
    const OPEN_TREE_CLOEXEC: libc::c_uint = libc::O_CLOEXEC as libc::c_uint;
    // SAFETY: path is NUL-terminated; integers otherwise.
    let fd = cvt(unsafe {
        libc::syscall(
            libc::SYS_open_tree,
            libc::AT_FDCWD,
            path.as_ptr(),
            OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC,
        )
    })?;
    // SAFETY: fresh fd from the kernel.
    let fd = unsafe { OwnedFd::from_raw_fd(fd as RawFd) };
    #[repr(C)]
    struct MountAttr {
        attr_set: u64,
        attr_clr: u64,
        propagation: u64,
        userns_fd: u64,
    }
    const MOUNT_ATTR_RDONLY: u64 = 0x1;
    const MOUNT_ATTR_NOSUID: u64 = 0x2;
    const MOUNT_ATTR_NODEV: u64 = 0x4;
    let attr = MountAttr {
        attr_set: MOUNT_ATTR_RDONLY | MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV,
        attr_clr: 0,
        propagation: 0,
        userns_fd: 0,
    };
    // SAFETY: attr is a valid mount_attr of the size we pass; "" with AT_EMPTY_PATH names fd.
    cvt(unsafe {
        libc::syscall(
            libc::SYS_mount_setattr,
            fd.as_raw_fd(),
            c"".as_ptr(),
            libc::AT_EMPTY_PATH,
            &attr as *const MountAttr,
            std::mem::size_of::<MountAttr>(),
        )
    })?;
    Ok(fd)
}
