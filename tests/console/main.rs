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

/// The screen's rows with the pane border taken off.
fn pane_lines(screen: &str) -> impl Iterator<Item = &str> {
    screen
        .lines()
        .map(|l| l.trim_start_matches('│').trim_end_matches('│').trim())
}

#[test]
fn attach_to_a_containers_own_tty_type_detach_and_it_keeps_running() {
    if !support::require_root() {
        return;
    }
    let image = images::busybox_image();
    let root = Root::new();
    assert!(root.berth(&["pull", &image]).status.success());
    let out = root.berth(&["run", "-d", "-t", "--name", "att", &image, "sh"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let cmd = format!(
        "{} --root {}",
        support::berth_bin().display(),
        root.0.path().display()
    );
    let t = Tmux::start("attach", 120, 40, &cmd);
    t.wait_for("att running", T, |s| {
        s.lines()
            .any(|l| l.contains("att") && l.contains("running"))
    });
    // From the action menu, as a user finds it.
    t.send(&["Enter"]);
    t.wait_text("attach (its own terminal)", T);
    t.send(&["A"]);
    t.wait_text("Attached to att", T);
    type_text(&t, "echo hi-attach");
    t.send(&["Enter"]);
    // the command's output on a line of its own (the typed line holds "echo hi-attach")
    t.wait_for("hi-attach printed by the container's sh", T, |s| {
        pane_lines(s).any(|l| l == "hi-attach")
    });
    t.send(&["C-]"]);
    t.wait_text("detached from att", T);
    // Still running: the list says so, and a new process can join it.
    t.wait_for("att still running", T, |s| {
        s.lines()
            .any(|l| l.contains("att") && l.contains("running"))
    });
    let exec = root.berth(&["exec", "att", "echo", "alive"]);
    assert!(
        exec.status.success() && String::from_utf8_lossy(&exec.stdout).contains("alive"),
        "the container stopped after the detach: {}",
        String::from_utf8_lossy(&exec.stderr)
    );
    // A again goes back to the same session, with what was on it.
    t.send(&["A"]);
    t.wait_for("the session again", T, |s| {
        s.contains("Attached to att") && pane_lines(s).any(|l| l == "hi-attach")
    });
    t.send(&["C-]"]);
    t.wait_text("detached from att", T);
}

#[test]
fn attach_without_a_tty_shows_the_output_read_only() {
    if !support::require_root() {
        return;
    }
    let image = images::busybox_image();
    let root = Root::new();
    assert!(root.berth(&["pull", &image]).status.success());
    let out = root.berth(&[
        "run",
        "-d",
        "--name",
        "ticker",
        &image,
        "sh",
        "-c",
        "i=0; while :; do i=$((i+1)); echo tick-$i; sleep 0.2; done",
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let cmd = format!(
        "{} --root {}",
        support::berth_bin().display(),
        root.0.path().display()
    );
    let t = Tmux::start("attach-ro", 120, 40, &cmd);
    t.wait_for("ticker running", T, |s| {
        s.lines()
            .any(|l| l.contains("ticker") && l.contains("running"))
    });
    t.send(&["A"]);
    t.wait_text("no TTY: output only", T);
    // live output, each line at the start of a row (no staircase)
    t.wait_for("two ticks in a column", T, |s| {
        pane_lines(s).filter(|l| l.starts_with("tick-")).count() >= 2
    });
    t.send(&["x"]);
    t.wait_text("shows the container's output only", T);
    t.send(&["C-]"]);
    t.wait_text("detached from ticker", T);
    t.wait_for("ticker still running", T, |s| {
        s.lines()
            .any(|l| l.contains("ticker") && l.contains("running"))
    });
}

#[test]
fn a_busy_container_shows_its_cpu_and_memory_in_the_list() {
    if !support::require_root() {
        return;
    }
    let image = images::busybox_image();
    let root = Root::new();
    assert!(root.berth(&["pull", &image]).status.success());
    for (name, script) in [("busy", "while :; do :; done"), ("calm", "sleep 600")] {
        let out = root.berth(&["run", "-d", "--name", name, &image, "sh", "-c", script]);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    assert!(
        root.berth(&["run", "--name", "done", &image, "true"])
            .status
            .success()
    );
    let cmd = format!(
        "{} --root {}",
        support::berth_bin().display(),
        root.0.path().display()
    );
    let t = Tmux::start("cpu", 160, 40, &cmd);
    // The CPU % of a row: the one field ending in '%'.
    fn cpu_of(screen: &str, name: &str) -> Option<f64> {
        let line = screen
            .lines()
            .find(|l| l.split_whitespace().nth(1) == Some(name))?;
        line.split_whitespace()
            .find_map(|w| w.strip_suffix('%')?.parse().ok())
    }
    let s = t.wait_for("a busy CPU %", T, |s| {
        cpu_of(s, "busy").is_some_and(|c| c > 10.0)
    });
    let calm = cpu_of(&s, "calm").expect("calm has a CPU %");
    assert!(calm < 5.0, "sleep uses {calm}%:\n{s}");
    // memory use shown for running containers, "-" for the stopped one
    let row = |n: &str| {
        s.lines()
            .find(|l| l.split_whitespace().nth(1) == Some(n))
            .unwrap_or_default()
            .to_owned()
    };
    let size = |w: &str| w.ends_with('B') && w.starts_with(|c: char| c.is_ascii_digit());
    assert!(
        row("busy").split_whitespace().any(size),
        "no memory use: {}",
        row("busy")
    );
    let done = row("done");
    assert!(
        done.contains(" - ") && !done.contains('%'),
        "a stopped container shows dashes: {done}"
    );
    // Sorted by CPU, reversed: the busy one on top.
    for _ in 0..5 {
        t.send(&["o"]);
    }
    t.send(&["O"]);
    t.wait_for("busy first under CPU %▼", T, |s| {
        s.contains("CPU %▼")
            && s.lines()
                .filter_map(|l| l.split_whitespace().nth(1))
                .find(|n| ["busy", "calm", "done"].contains(n))
                == Some("busy")
    });
}

/// The pid of the console running on `root` (`berth --root DIR`, nothing else on its line).
fn console_pid(root: &std::path::Path) -> Option<u32> {
    let want = [
        support::berth_bin().display().to_string(),
        "--root".into(),
        root.display().to_string(),
    ];
    std::fs::read_dir("/proc").ok()?.flatten().find_map(|e| {
        let pid: u32 = e.file_name().to_str()?.parse().ok()?;
        let raw = std::fs::read(e.path().join("cmdline")).ok()?;
        let args: Vec<String> = raw
            .split(|b| *b == 0)
            .filter(|a| !a.is_empty())
            .map(|a| String::from_utf8_lossy(a).into_owned())
            .collect();
        (args == want).then_some(pid)
    })
}

/// Context switches of all a process's threads: each wake-up of any of them counts.
fn wakeups(pid: u32) -> u64 {
    std::fs::read_dir(format!("/proc/{pid}/task"))
        .unwrap()
        .flatten()
        .filter_map(|t| std::fs::read_to_string(t.path().join("status")).ok())
        .flat_map(|st| {
            st.lines()
                .filter(|l| l.contains("ctxt_switches"))
                .filter_map(|l| l.split_whitespace().nth(1)?.parse::<u64>().ok())
                .collect::<Vec<_>>()
        })
        .sum()
}

/// utime + stime of a process, in clock ticks.
fn cpu_ticks(pid: u32) -> u64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    // fields after the command (which may hold spaces) end with ')'
    let rest = &stat[stat.rfind(')').unwrap() + 2..];
    let f: Vec<&str> = rest.split_whitespace().collect();
    f[11].parse::<u64>().unwrap() + f[12].parse::<u64>().unwrap()
}

#[test]
fn an_idle_console_with_no_running_container_does_not_wake_up() {
    if !support::require_root() {
        return;
    }
    let image = images::busybox_image();
    let root = Root::new();
    assert!(root.berth(&["pull", &image]).status.success());
    assert!(
        root.berth(&["run", "--name", "stopped", &image, "true"])
            .status
            .success()
    );
    let cmd = format!(
        "{} --root {}",
        support::berth_bin().display(),
        root.0.path().display()
    );
    let t = Tmux::start("idle", 120, 40, &cmd);
    t.wait_for("stopped exited", T, |s| {
        s.lines()
            .any(|l| l.contains("stopped") && l.contains("exited"))
    });
    let pid = console_pid(root.0.path()).expect("the console's process");
    let (before, woke_before) = (cpu_ticks(pid), wakeups(pid));
    // A measuring window, not a wait for something: nothing is supposed to happen in it.
    std::thread::sleep(Duration::from_secs(5));
    let used = cpu_ticks(pid) - before;
    let woke = wakeups(pid) - woke_before;
    // The CPU column's sampler, were it running, wakes the console's threads ~40 times in 5 s
    // (measured); with nothing running the console does not wake at all.
    assert!(
        woke <= 2 && used <= 1,
        "the idle console woke {woke} times and used {used} ticks in 5 s"
    );
}
