//! Integration tests of the foundation: the console under a real terminal, and several berth
//! processes sharing one state root.

#[path = "../support/mod.rs"]
mod support;

use std::time::Duration;
use support::tmux::Tmux;

const T: Duration = Duration::from_secs(20);

fn berth() -> String {
    support::berth_bin().display().to_string()
}

#[test]
fn console_starts_quits_on_q_and_restores_the_terminal() {
    let root = tempfile::tempdir().unwrap();
    let cmd = format!(
        "{} --root {}; echo BERTH-EXITED-$?; sleep 60",
        berth(),
        root.path().display()
    );
    let tmux = Tmux::start("quit", 80, 24, &cmd);
    let screen = tmux.wait_text("No containers", T);
    assert!(screen.contains("1 Containers"), "{screen}");
    assert!(screen.contains("? help"), "footer missing:\n{screen}");
    tmux.send(&["?"]);
    tmux.wait_text("show or hide this help", T);
    tmux.send(&["Escape"]);
    tmux.wait_for("help to close", T, |s| {
        !s.contains("show or hide this help")
    });
    tmux.send(&["q"]);
    // Back on the shell's screen: the alternate screen is gone and berth exited cleanly.
    let screen = tmux.wait_text("BERTH-EXITED-0", T);
    assert!(
        !screen.contains("1 Containers"),
        "console still on screen:\n{screen}"
    );
}

#[test]
fn another_process_change_shows_up_in_a_running_console() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("root");
    let deny = dir.path().join("deny.toml");
    std::fs::write(
        &deny,
        "[[rule]]\naction = \"container.list\"\ndecision = \"deny\"\nreason = \"listing is off today\"\n",
    )
    .unwrap();
    let cmd = format!("{} --root {}", berth(), root.display());
    let tmux = Tmux::start("twoproc", 100, 30, &cmd);
    tmux.wait_text("No containers", T);
    tmux.send(&["6"]);
    tmux.wait_text("No events yet", T);

    // A second berth process on the same root is refused by its policy: an audited decision
    // that the console, a different process, must show without any key being pressed.
    let out = std::process::Command::new(support::berth_bin())
        .args([
            "--root",
            root.to_str().unwrap(),
            "--policy",
            deny.to_str().unwrap(),
            "ps",
        ])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("denied by policy") && err.contains("listing is off today"),
        "{err}"
    );

    let screen = tmux.wait_text("policy deny: container.list", T);
    assert!(screen.contains("listing is off today"), "{screen}");
}

#[test]
fn invalid_policy_refuses_to_start_with_file_and_line() {
    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("bad.toml");
    std::fs::write(
        &bad,
        "[[rule]]\naction = \"container.fly\"\ndecision = \"allow\"\n",
    )
    .unwrap();
    let out = std::process::Command::new(support::berth_bin())
        .args([
            "--root",
            dir.path().join("r").to_str().unwrap(),
            "--policy",
            bad.to_str().unwrap(),
            "ps",
        ])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("bad.toml:1") && err.contains("unknown action"),
        "{err}"
    );
}

#[test]
fn a_bad_request_is_refused_before_anything_is_pulled() {
    // (busybox is not in the store: a pull would be attempted, and fail, after the checks)
    let dir = tempfile::tempdir().unwrap();
    let out = std::process::Command::new(support::berth_bin())
        .args([
            "--root",
            dir.path().to_str().unwrap(),
            "run",
            "-p",
            "70000:80/sctp",
            "busybox",
        ])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("invalid argument") && err.contains("port spec"),
        "{err}"
    );
}
