//! Drive a terminal program under tmux: start it, read the screen, type keys.

use std::process::Command;
use std::time::{Duration, Instant};

/// A tmux session on a private server socket, killed on drop.
pub struct Tmux {
    socket: String,
    session: String,
}

impl Tmux {
    /// Start `shell_cmd` (run by `sh -c`) in a detached session of the given size.
    pub fn start(name: &str, width: u16, height: u16, shell_cmd: &str) -> Self {
        let socket = format!("berth-test-{}-{name}", std::process::id());
        let t = Self {
            socket,
            session: name.to_owned(),
        };
        let status = t
            .cmd()
            .args([
                "new-session",
                "-d",
                "-s",
                name,
                "-x",
                &width.to_string(),
                "-y",
                &height.to_string(),
            ])
            .arg(shell_cmd)
            .env_remove("TMUX")
            .status()
            .expect("tmux must be installed (apt-get install tmux)");
        assert!(status.success(), "tmux new-session failed");
        t
    }

    fn cmd(&self) -> Command {
        let mut c = Command::new("tmux");
        c.args(["-L", &self.socket]);
        c
    }

    /// The visible screen as text.
    pub fn screen(&self) -> String {
        let out = self
            .cmd()
            .args(["capture-pane", "-p", "-t", &self.session])
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// Type keys (tmux key names: `q`, `Enter`, `C-c`, …).
    pub fn send(&self, keys: &[&str]) {
        let st = self
            .cmd()
            .args(["send-keys", "-t", &self.session])
            .args(keys)
            .status()
            .unwrap();
        assert!(st.success());
    }

    /// Wait until the screen satisfies `pred`; panic with the last screen after `timeout`.
    pub fn wait_for(&self, what: &str, timeout: Duration, pred: impl Fn(&str) -> bool) -> String {
        let deadline = Instant::now() + timeout;
        loop {
            let s = self.screen();
            if pred(&s) {
                return s;
            }
            if Instant::now() > deadline {
                panic!("timed out waiting for {what}; screen:\n{s}");
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Wait until `text` appears on the screen.
    pub fn wait_text(&self, text: &str, timeout: Duration) -> String {
        self.wait_for(&format!("{text:?}"), timeout, |s| s.contains(text))
    }
}

impl Drop for Tmux {
    fn drop(&mut self) {
        let _ = self.cmd().arg("kill-server").status();
    }
}
