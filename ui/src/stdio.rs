//! Connecting the terminal the CLI runs in to a container's or exec's stdio session.

use berth::api::{IoSession, Stream};
use std::io::{IsTerminal, Read, Write};

/// Puts the local terminal in raw mode while alive (for `-t` sessions), restoring it on drop.
pub struct RawMode(bool);

impl RawMode {
    pub fn enable(tty: bool) -> Self {
        let on =
            tty && std::io::stdin().is_terminal() && crossterm::terminal::enable_raw_mode().is_ok();
        Self(on)
    }
}

impl Drop for RawMode {
    fn drop(&mut self) {
        if self.0 {
            let _ = crossterm::terminal::disable_raw_mode();
        }
    }
}

/// The local terminal's size, for a new TTY session.
pub fn terminal_size() -> Option<(u16, u16)> {
    if !std::io::stdout().is_terminal() {
        return None;
    }
    crossterm::terminal::size().ok().map(|(w, h)| (h, w))
}

/// Copy the session's output to our stdout/stderr until it ends; feed our stdin to it when
/// `interactive`. Returns when the process's output is drained.
pub async fn pump(session: IoSession, interactive: bool) {
    let IoSession {
        stdin, mut output, ..
    } = session;
    if interactive && let Some(tx) = stdin {
        // A plain thread: reading our stdin blocks, and must not hold the process open after
        // the container exits (the thread dies with the process).
        std::thread::spawn(move || {
            let mut buf = [0u8; 8192];
            let mut input = std::io::stdin().lock();
            loop {
                match input.read(&mut buf) {
                    Ok(0) | Err(_) => break,
                    Ok(n) => {
                        if tx
                            .blocking_send(bytes::Bytes::copy_from_slice(&buf[..n]))
                            .is_err()
                        {
                            break;
                        }
                    }
                }
            }
        });
    }
    while let Some(chunk) = output.recv().await {
        let r = match chunk.stream {
            Stream::Stdout => {
                let mut o = std::io::stdout().lock();
                o.write_all(&chunk.data).and_then(|_| o.flush())
            }
            Stream::Stderr => {
                let mut e = std::io::stderr().lock();
                e.write_all(&chunk.data).and_then(|_| e.flush())
            }
        };
        if r.is_err() {
            break;
        }
    }
}
