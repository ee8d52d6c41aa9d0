//! CVE-2019-5736: the host `berth` binary must never be reachable from inside a container.
//!
//! Every berth process that creates or joins a container (run, the monitor, exec) first
//! re-executes itself from a sealed image, so the `/proc/self/exe` a container process could
//! reach names a file nobody can write:
//! 1. preferred: a detached, read-only bind mount of the binary itself (open_tree +
//!    mount_setattr), never attached to any mount tree: no host mount, nothing to clean up,
//!    no new superblock, two syscalls. Writes through `/proc/PID/exe` (or any reopening of it)
//!    fail with EROFS, and nobody but host root can make that mount writable. This is crun's
//!    ro-bind seal without the temporary file and the private mount namespace.
//! 2. fallback: a detached read-only overlayfs of the binary's directory (fsopen/fsmount).
//! 3. fallback: a sealed memfd copy (F_SEAL_WRITE|GROW|SHRINK|SEAL).
//!
//! The re-executed process gets argv[0] = [`SEALED_ARGV0`]; [`is_sealed`] checks that marker and
//! that the running image is really on overlayfs or a memfd.

use std::ffi::{CString, OsString};
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::path::PathBuf;

use nix::fcntl::OFlag;
use nix::sys::stat::Mode;

use super::error::{Result, RuntimeError};
use super::sys;

pub const SEALED_ARGV0: &str = "berth-sealed";

/// Environment variable carrying the host binary's path into the sealed process (which can
/// no longer name its own executable), for spawning monitors and exec helpers.
pub const HOST_EXE_ENV: &str = "BERTH_HOST_EXE";

/// The `berth` binary to spawn helpers from: the host path, also from a sealed process.
pub fn host_exe() -> std::io::Result<PathBuf> {
    if is_sealed()
        && let Some(p) = std::env::var_os(HOST_EXE_ENV)
    {
        return Ok(PathBuf::from(p));
    }
    std::env::current_exe()
}

const TMPFS_MAGIC: i64 = 0x0102_1994;
const HUGETLBFS_MAGIC: i64 = 0x9584_58f6;

/// Whether this process runs from a sealed image (and was started as such).
pub fn is_sealed() -> bool {
    let argv0 = std::env::args_os().next().unwrap_or_default();
    if argv0 != SEALED_ARGV0 {
        return false;
    }
    // A read-only mount (the ro bind or overlay seal) or a memfd.
    let ro = nix::sys::statvfs::statvfs("/proc/self/exe")
        .map(|s| s.flags().contains(nix::sys::statvfs::FsFlags::ST_RDONLY))
        .unwrap_or(false);
    ro || match nix::sys::statfs::statfs("/proc/self/exe") {
        Ok(s) => matches!(s.filesystem_type().0, TMPFS_MAGIC | HUGETLBFS_MAGIC),
        Err(_) => false,
    }
}

/// An fd to a sealed image of the running binary.
pub fn sealed_exe() -> Result<OwnedFd> {
    let exe: PathBuf = std::fs::read_link("/proc/self/exe")
        .map_err(|e| RuntimeError::io("readlink", "/proc/self/exe", e))?;
    if let Ok(fd) = sys::open_tree_readonly(c"/proc/self/exe") {
        return Ok(fd);
    }
    match overlay_seal(&exe) {
        Ok(fd) => Ok(fd),
        Err(_) => memfd_seal(),
    }
}

fn overlay_seal(exe: &std::path::Path) -> std::io::Result<OwnedFd> {
    let dir = exe
        .parent()
        .ok_or_else(|| std::io::Error::other("binary has no parent dir"))?;
    let name = exe
        .file_name()
        .ok_or_else(|| std::io::Error::other("binary has no name"))?;
    let esc = dir
        .to_string_lossy()
        .replace('\\', "\\\\")
        .replace(':', "\\:")
        .replace(',', "\\,");
    // Without an upper dir overlayfs wants two lower dirs; the second is an empty directory.
    let empty = std::path::Path::new("/run/berth-seal-empty");
    match std::fs::create_dir(empty) {
        Err(e) if e.kind() != std::io::ErrorKind::AlreadyExists => return Err(e),
        _ => {}
    }
    let lower =
        CString::new(format!("{esc}:{}", empty.display())).map_err(std::io::Error::other)?;
    const MOUNT_ATTR_RDONLY: u32 = 0x1;
    const MOUNT_ATTR_NODEV: u32 = 0x4;
    let mnt = sys::fsmount_detached(
        c"overlay",
        &[(c"lowerdir", &lower)],
        MOUNT_ATTR_RDONLY | MOUNT_ATTR_NODEV,
    )?;
    let fd = nix::fcntl::openat(
        mnt.as_fd(),
        name,
        OFlag::O_PATH | OFlag::O_CLOEXEC,
        Mode::empty(),
    )?;
    Ok(fd)
}

fn memfd_seal() -> Result<OwnedFd> {
    let mem = sys::memfd_sealable(c"berth").map_err(|e| RuntimeError::sys("memfd_create", e))?;
    let src = std::fs::File::open("/proc/self/exe")
        .map_err(|e| RuntimeError::io("open", "/proc/self/exe", e))?;
    let len = src.metadata().map(|m| m.len() as usize).unwrap_or(0);
    let mut done = 0;
    while done < len {
        let n = sys::sendfile(mem.as_fd(), src.as_fd(), len - done)
            .map_err(|e| RuntimeError::sys("sendfile", e))?;
        if n == 0 {
            break;
        }
        done += n;
    }
    sys::add_seals(
        mem.as_fd(),
        libc::F_SEAL_SEAL | libc::F_SEAL_SHRINK | libc::F_SEAL_GROW | libc::F_SEAL_WRITE,
    )
    .map_err(|e| RuntimeError::sys("seal memfd", e))?;
    Ok(mem)
}

/// A command that runs the binary `exe` straight from a sealed image, so the helper it
/// starts (monitor, exec helper) does not have to re-execute itself once more: one exec of
/// the binary instead of two. The seal is the detached read-only bind mount of `exe`; the
/// returned fd must stay open until the command has been spawned (the child execs
/// `/proc/self/fd/N`, which it inherited). `None` where that seal is not available: spawn
/// `exe` itself then, and it seals itself as before.
///
/// Fork-without-exec is not involved: `std::process::Command` forks (or vforks) and execs at
/// once, which is safe from the multi-threaded engine.
pub fn sealed_command(exe: &std::path::Path) -> Option<(std::process::Command, OwnedFd)> {
    use std::os::fd::AsRawFd;
    use std::os::unix::process::CommandExt;
    let path = CString::new(exe.as_os_str().as_bytes()).ok()?;
    let fd = sys::open_tree_readonly(&path).ok()?;
    let mut cmd = std::process::Command::new(format!("/proc/self/fd/{}", fd.as_raw_fd()));
    cmd.arg0(SEALED_ARGV0).env(HOST_EXE_ENV, exe);
    Some((cmd, fd))
}

/// Re-execute the current invocation from a sealed image. Returns only on error.
pub fn reexec_sealed(args: &[OsString]) -> RuntimeError {
    let host = std::fs::read_link("/proc/self/exe").unwrap_or_default();
    let fd = match sealed_exe() {
        Ok(fd) => fd,
        Err(e) => return e,
    };
    let mut argv = vec![CString::new(SEALED_ARGV0).expect("no NUL")];
    for a in args {
        match CString::new(a.clone().into_vec()) {
            Ok(c) => argv.push(c),
            Err(_) => return RuntimeError::BadRequest("NUL byte in an argument".into()),
        }
    }
    let mut envp: Vec<CString> = std::env::vars_os()
        .filter(|(k, _)| k != HOST_EXE_ENV)
        .filter_map(|(k, v)| {
            let mut b = k.as_bytes().to_vec();
            b.push(b'=');
            b.extend_from_slice(v.as_bytes());
            CString::new(b).ok()
        })
        .collect();
    let mut h = format!("{HOST_EXE_ENV}=").into_bytes();
    h.extend_from_slice(host.as_os_str().as_bytes());
    if let Ok(c) = CString::new(h) {
        envp.push(c);
    }
    let e = sys::execveat_fd(fd.as_fd(), &argv, &envp);
    RuntimeError::sys("re-exec from sealed image", e)
}

#[cfg(test)]
mod tests {
    use super::*;

    const OVERLAYFS_SUPER_MAGIC: i64 = 0x794c_7630;

    #[test]
    fn ro_bind_seal_is_read_only() {
        if !nix::unistd::geteuid().is_root() {
            return;
        }
        let fd = sys::open_tree_readonly(c"/proc/self/exe").expect("open_tree");
        let p = format!("/proc/self/fd/{}", std::os::fd::AsRawFd::as_raw_fd(&fd));
        let err = std::fs::OpenOptions::new()
            .write(true)
            .open(&p)
            .unwrap_err();
        assert!(
            matches!(err.raw_os_error(), Some(libc::EROFS) | Some(libc::ETXTBSY)),
            "{err}"
        );
        let err = std::fs::OpenOptions::new()
            .append(true)
            .open(&p)
            .unwrap_err();
        assert!(
            matches!(err.raw_os_error(), Some(libc::EROFS) | Some(libc::ETXTBSY)),
            "{err}"
        );
        assert!(
            nix::sys::statvfs::statvfs(p.as_str())
                .unwrap()
                .flags()
                .contains(nix::sys::statvfs::FsFlags::ST_RDONLY)
        );
    }

    #[test]
    fn overlay_seal_is_read_only() {
        if !nix::unistd::geteuid().is_root() {
            return;
        }
        let exe = std::fs::read_link("/proc/self/exe").unwrap();
        let fd = overlay_seal(&exe).expect("overlay seal");
        let p = format!("/proc/self/fd/{}", std::os::fd::AsRawFd::as_raw_fd(&fd));
        let err = std::fs::OpenOptions::new()
            .write(true)
            .open(&p)
            .unwrap_err();
        assert_eq!(err.raw_os_error(), Some(libc::EROFS), "{err}");
        assert_eq!(
            nix::sys::statfs::statfs(p.as_str())
                .unwrap()
                .filesystem_type()
                .0,
            OVERLAYFS_SUPER_MAGIC
        );
    }
}
