//! Terminal helpers for the processes that proxy a container's pty.

use std::os::fd::{AsFd, BorrowedFd, OwnedFd};

use nix::sys::termios::{self, SetArg, Termios};

/// Puts a terminal in raw mode and restores it on drop.
pub struct RawGuard {
    fd: OwnedFd,
    saved: Termios,
}

impl RawGuard {
    /// None when `fd` is not a terminal.
    pub fn new(fd: BorrowedFd<'_>) -> Option<RawGuard> {
        let saved = termios::tcgetattr(fd).ok()?;
        let mut raw = saved.clone();
        termios::cfmakeraw(&mut raw);
        termios::tcsetattr(fd, SetArg::TCSANOW, &raw).ok()?;
        Some(RawGuard {
            fd: fd.try_clone_to_owned().ok()?,
            saved,
        })
    }
}

impl Drop for RawGuard {
    fn drop(&mut self) {
        let _ = termios::tcsetattr(self.fd.as_fd(), SetArg::TCSANOW, &self.saved);
    }
}

/// Write everything, retrying on EINTR/EAGAIN; errors (a closed reader) drop the data.
pub fn write_all(fd: BorrowedFd<'_>, mut buf: &[u8]) {
    while !buf.is_empty() {
        match nix::unistd::write(fd, buf) {
            Ok(0) => return,
            Ok(n) => buf = &buf[n..],
            Err(nix::errno::Errno::EINTR) => continue,
            Err(nix::errno::Errno::EAGAIN) => {
                let mut p = [nix::poll::PollFd::new(fd, nix::poll::PollFlags::POLLOUT)];
                let _ = nix::poll::poll(&mut p, nix::poll::PollTimeout::from(1000u16));
            }
            Err(_) => return,
        }
    }
}
