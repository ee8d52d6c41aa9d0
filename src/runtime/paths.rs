//! Resolving paths inside a container rootfs without ever leaving it (CVE-2021-30465,
//! CVE-2024-45310): every lookup is `openat2(root, path, RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS)`,
//! every creation is `mkdirat`/`openat(O_EXCL|O_NOFOLLOW)` relative to an already-resolved parent
//! fd, and mounts then target `/proc/self/fd/N` of the resolved fd, so a symlink swapped in
//! after the check cannot redirect them.

use std::ffi::CString;
use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Component, Path, PathBuf};

use nix::fcntl::OFlag;
use nix::sys::stat::Mode;

use super::error::{Result, RuntimeError};
use super::sys;

const RESOLVE_IN_ROOT: u64 = 0x10;
const RESOLVE_NO_MAGICLINKS: u64 = 0x02;

fn cpath(p: &Path) -> CString {
    CString::new(p.as_os_str().as_bytes()).unwrap_or_else(|_| c"\u{1}invalid".to_owned())
}

/// The path relative to the root, with `/` and `.` removed (`..` is kept: RESOLVE_IN_ROOT
/// clamps it at the root).
pub fn relative(p: &Path) -> PathBuf {
    p.components()
        .filter(|c| {
            !matches!(
                c,
                Component::RootDir | Component::CurDir | Component::Prefix(_)
            )
        })
        .collect()
}

/// Open `p` below `root` as an O_PATH fd, resolving symlinks as if `root` were `/`.
pub fn open_in_root(root: BorrowedFd<'_>, p: &Path, extra: OFlag) -> io::Result<OwnedFd> {
    let rel = relative(p);
    let rel = if rel.as_os_str().is_empty() {
        PathBuf::from(".")
    } else {
        rel
    };
    let flags = (OFlag::O_PATH | OFlag::O_CLOEXEC | extra).bits() as u64;
    sys::openat2(
        root,
        &cpath(&rel),
        flags,
        0,
        RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS,
    )
}

/// Open `p` below `root` for real I/O (not O_PATH).
pub fn open_in_root_rw(root: BorrowedFd<'_>, p: &Path, flags: OFlag) -> io::Result<OwnedFd> {
    let rel = relative(p);
    sys::openat2(
        root,
        &cpath(&rel),
        (flags | OFlag::O_CLOEXEC).bits() as u64,
        0,
        RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS,
    )
}

fn unsafe_path(p: &Path, reason: impl Into<String>) -> RuntimeError {
    RuntimeError::UnsafePath {
        path: p.into(),
        reason: reason.into(),
    }
}

/// Make sure directory `p` exists below `root` (creating missing components with mode 0755)
/// and return an O_PATH fd to it. Symlinks met on the way are followed as if `root` were `/`
/// (a dangling one has its target created inside the root, like securejoin's MkdirAll).
pub fn mkdir_all(root: BorrowedFd<'_>, p: &Path) -> Result<OwnedFd> {
    use std::collections::VecDeque;
    use std::ffi::OsString;
    let comps = |q: &Path| -> VecDeque<OsString> {
        q.components()
            .filter_map(|c| match c {
                Component::Normal(n) => Some(n.to_os_string()),
                Component::ParentDir => Some(OsString::from("..")),
                _ => None,
            })
            .collect()
    };
    let mut todo = comps(p);
    let mut prefix = PathBuf::new();
    let open_prefix = |prefix: &Path| {
        let q = if prefix.as_os_str().is_empty() {
            Path::new(".")
        } else {
            prefix
        };
        open_in_root(root, q, OFlag::O_DIRECTORY)
            .map_err(|e| unsafe_path(p, format!("{}: {e}", q.display())))
    };
    let mut cur = open_prefix(&prefix)?;
    let mut links = 0;
    while let Some(comp) = todo.pop_front() {
        if comp == ".." {
            prefix.pop();
            cur = open_prefix(&prefix)?;
            continue;
        }
        let next = prefix.join(&comp);
        match open_in_root(root, &next, OFlag::O_DIRECTORY) {
            Ok(fd) => {
                prefix = next;
                cur = fd;
            }
            Err(e) if e.raw_os_error() == Some(libc::ENOENT) => {
                if let Ok(target) = nix::fcntl::readlinkat(cur.as_fd(), comp.as_os_str()) {
                    // A symlink whose target does not exist yet: continue at its target,
                    // inside the root.
                    links += 1;
                    if links > 40 {
                        return Err(unsafe_path(p, "too many symlinks"));
                    }
                    let t = PathBuf::from(target);
                    if t.is_absolute() {
                        prefix = PathBuf::new();
                        cur = open_prefix(&prefix)?;
                    }
                    let mut new = comps(&t);
                    new.extend(todo);
                    todo = new;
                    continue;
                }
                match nix::sys::stat::mkdirat(
                    cur.as_fd(),
                    comp.as_os_str(),
                    Mode::from_bits_truncate(0o755),
                ) {
                    Ok(()) | Err(nix::errno::Errno::EEXIST) => {}
                    Err(e) => return Err(unsafe_path(p, format!("mkdir {}: {e}", next.display()))),
                }
                cur = open_prefix(&next)?;
                prefix = next;
            }
            Err(e) => return Err(unsafe_path(p, format!("{}: {e}", next.display()))),
        }
    }
    Ok(cur)
}

/// Make sure a regular file `p` exists below `root` (for file bind mounts) and return an
/// O_PATH fd to whatever is there.
pub fn touch(root: BorrowedFd<'_>, p: &Path) -> Result<OwnedFd> {
    if let Ok(fd) = open_in_root(root, p, OFlag::empty()) {
        return Ok(fd);
    }
    let rel = relative(p);
    let parent = rel.parent().unwrap_or(Path::new(""));
    let name = rel
        .file_name()
        .ok_or_else(|| unsafe_path(p, "no file name"))?;
    let dir = mkdir_all(root, parent)?;
    match nix::fcntl::openat(
        dir.as_fd(),
        name,
        OFlag::O_CREAT | OFlag::O_EXCL | OFlag::O_NOFOLLOW | OFlag::O_WRONLY | OFlag::O_CLOEXEC,
        Mode::from_bits_truncate(0o644),
    ) {
        Ok(_) | Err(nix::errno::Errno::EEXIST) => {}
        Err(e) => return Err(unsafe_path(p, format!("create: {e}"))),
    }
    open_in_root(root, p, OFlag::empty()).map_err(|e| unsafe_path(p, e.to_string()))
}

/// `/proc/self/fd/N` of an fd, the mount-safe handle on a resolved path.
pub fn proc_fd(fd: &OwnedFd) -> PathBuf {
    PathBuf::from(sys::fd_path(fd.as_fd()))
}

/// The real path of an fd as the kernel sees it (for checks and messages).
pub fn fd_realpath(fd: &OwnedFd) -> io::Result<PathBuf> {
    std::fs::read_link(format!("/proc/self/fd/{}", fd.as_raw_fd()))
}

/// Open a directory as an O_PATH fd (no symlink following at the last component).
pub fn open_dir(p: &Path) -> io::Result<OwnedFd> {
    let fd = nix::fcntl::open(
        p,
        OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
        Mode::empty(),
    )
    .map_err(io::Error::from)?;
    Ok(fd)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::symlink;

    #[test]
    fn symlinks_cannot_escape() {
        let t = tempfile::tempdir().unwrap();
        let root = t.path().join("root");
        std::fs::create_dir_all(root.join("etc")).unwrap();
        let outside = t.path().join("outside");
        std::fs::create_dir(&outside).unwrap();
        // An absolute symlink and a ../ symlink that would both point outside on the host,
        // and a dangling one naming a host path.
        symlink("/", root.join("abs")).unwrap();
        symlink("../../..", root.join("up")).unwrap();
        symlink(&outside, root.join("dangling")).unwrap();
        let rfd = open_dir(&root).unwrap();
        let fd = mkdir_all(rfd.as_fd(), Path::new("/abs/outside/x")).unwrap();
        assert_eq!(fd_realpath(&fd).unwrap(), root.join("outside/x"));
        let fd = mkdir_all(rfd.as_fd(), Path::new("/up/y")).unwrap();
        assert_eq!(fd_realpath(&fd).unwrap(), root.join("y"));
        assert!(
            std::fs::read_dir(&outside).unwrap().next().is_none(),
            "nothing created outside"
        );
        let f = touch(rfd.as_fd(), Path::new("/abs/etc/hosts")).unwrap();
        assert_eq!(fd_realpath(&f).unwrap(), root.join("etc/hosts"));
    }
}
