//! Unix socket paths are limited to 108 bytes (`sun_path`), and a container's directory under a
//! state root with 64-hex ids easily exceeds that. Long paths are bound and connected through
//! `/proc/self/fd/N/NAME`, where N is an `O_PATH` descriptor of the socket's directory: a short
//! path to the very same place, without changing the process's working directory.

use std::io;
use std::os::fd::AsRawFd;
use std::os::unix::fs::OpenOptionsExt;
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};

/// Longest path passed to the kernel as is (leaves room for the terminating NUL).
const SUN_PATH_MAX: usize = 107;

fn via_short<T>(path: &Path, f: impl FnOnce(&Path) -> io::Result<T>) -> io::Result<T> {
    if path.as_os_str().len() <= SUN_PATH_MAX {
        return f(path);
    }
    let (dir, name) = match (path.parent(), path.file_name()) {
        (Some(d), Some(n)) => (d, n),
        _ => {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "socket path without a file name",
            ));
        }
    };
    let dirfd = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_PATH | libc::O_DIRECTORY | libc::O_CLOEXEC)
        .open(dir)?;
    let short = PathBuf::from(format!("/proc/self/fd/{}", dirfd.as_raw_fd())).join(name);
    f(&short)
}

pub fn bind(path: &Path) -> io::Result<UnixListener> {
    via_short(path, |p| UnixListener::bind(p))
}

pub fn connect(path: &Path) -> io::Result<UnixStream> {
    via_short(path, |p| UnixStream::connect(p))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_paths_bind_and_connect() {
        let dir = tempfile::tempdir().unwrap();
        let deep = dir.path().join("d".repeat(60)).join("e".repeat(60));
        std::fs::create_dir_all(&deep).unwrap();
        let p = deep.join("monitor.sock");
        assert!(p.as_os_str().len() > 108);
        let l = bind(&p).unwrap();
        assert!(p.exists(), "the socket is at the long path itself");
        let _c = connect(&p).unwrap();
        let _ = l.accept().unwrap();
    }
}
