//! The console end to end: the real `berth` binary under tmux, driven by keys, against the
//! real engine and the test registry.

#[path = "../support/images.rs"]
mod images;
#[path = "../support/registry.rs"]
mod registry;
#[path = "../support/mod.rs"]
mod support;

use std::time::Duration;
use support::tmux::Tmux;

const T: Duration = Duration::from_secs(30);

/// A state root whose containers are removed when the test ends, however it ends.
struct Root(tempfile::TempDir);

impl Root {
    fn new() -> Self {
        Self(registry::tempdir())
    }

    fn berth(&self, args: &[&str]) -> std::process::Output {
        std::process::Command::new(support::berth_bin())
            .arg("--root")
            .arg(self.0.path())
            .args(args)
            .output()
            .unwrap()
    }
}

impl Drop for Root {
    fn drop(&mut self) {
        let ids = self.berth(&["ps", "-aq"]);
        for id in String::from_utf8_lossy(&ids.stdout).split_whitespace() {
            let _ = self.berth(&["rm", "-f", id]);
        }
    }
}

fn type_text(t: &Tmux, s: &str) {
    // -l: literal text, no key-name lookup
    t.send(&["-l", s]);
}

#[test]
fn pull_run_logs_shell_stop_remove_quit_from_the_keyboard() {
    if !support::require_root() {
        return;
    }
    let image = images::busybox_image();
    let root = Root::new();
    let cmd = format!(
        "{} --root {}; echo BERTH-EXITED-$?; sleep 60",
        support::berth_bin().display(),
        root.0.path().display()
    );
    let t = Tmux::start("flow", 120, 40, &cmd);
    t.wait_text("No containers", T);

    // Pull through the dialog, with per-layer progress, until it says so.
    t.send(&["P"]);
    t.wait_text("Pull image", T);
    type_text(&t, &image);
    t.send(&["Enter"]);
    t.wait_text("Pulled. Enter closes.", T);
    t.send(&["Enter"]);
    t.send(&["2"]);
    t.wait_text("berth-test/busybox:latest", T);

    // Run from the form: the selected image is filled in, the name field has the focus.
    t.send(&["n"]);
    t.wait_text("Run a container", T);
    type_text(&t, "flow");
    t.send(&["Tab"]);
    type_text(&t, "sh -c 'echo hello-from-flow; sleep 600'");
    t.send(&["Enter"]);
    // The console switches to the new container's log.
    t.wait_for("the log line in the logs pane", T, |s| {
        s.contains("Logs of")
            && s.lines()
                .any(|l| l.trim_start_matches('│').starts_with("hello-from-flow"))
    });

    // A shell inside it, in the console's own terminal pane.
    t.send(&["1"]);
    t.wait_for("flow running", T, |s| {
        s.lines()
            .any(|l| l.contains("flow") && l.contains("running"))
    });
    t.send(&["e"]);
    t.wait_text("Shell in flow", T);
    t.wait_text("/ #", T);
    type_text(&t, "echo $((6*7))-inside");
    t.send(&["Enter"]);
    t.wait_text("42-inside", T);
    t.send(&["C-]"]);
    t.wait_text("detached from flow", T);

    // Stop, then remove (it asks first).
    t.send(&["s"]);
    t.wait_for("flow exited", T, |s| {
        s.lines()
            .any(|l| l.contains("flow") && l.contains("exited"))
    });
    t.send(&["d"]);
    t.wait_text("Remove flow?", T);
    t.send(&["y"]);
    t.wait_text("No containers", T);

    t.send(&["q"]);
    t.wait_text("BERTH-EXITED-0", T);
    let left = root.berth(&["ps", "-aq"]);
    assert!(String::from_utf8_lossy(&left.stdout).trim().is_empty());
}

#[test]
fn a_container_started_elsewhere_shows_up_and_its_exit_too() {
    if !support::require_root() {
        return;
    }
    let image = images::busybox_image();
    let root = Root::new();
    assert!(root.berth(&["pull", &image]).status.success());
    let cmd = format!(
        "{} --root {}",
        support::berth_bin().display(),
        root.0.path().display()
    );
    let t = Tmux::start("elsewhere", 120, 40, &cmd);
    t.wait_text("No containers", T);
    // Another process starts a container: the console learns it from the engine's events.
    let out = root.berth(&["run", "-d", "--name", "outside", &image, "sleep", "600"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    t.wait_for("outside running", T, |s| {
        s.lines()
            .any(|l| l.contains("outside") && l.contains("running"))
    });
    // Killed by another process (its monitor records the exit): no key pressed, the row changes.
    assert!(root.berth(&["kill", "outside"]).status.success());
    t.wait_for("outside exited", T, |s| {
        s.lines()
            .any(|l| l.contains("outside") && l.contains("exited"))
    });
}
