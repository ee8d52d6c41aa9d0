//! A container's monitor killed (SIGKILL) while the container runs: the engine says what is
//! known (running unmonitored; afterwards exited with its status unknown, never a made-up 0),
//! the container stays stoppable and removable, nothing of it is left on the host, and new
//! containers run.

use std::time::Duration;

use crate::harness::{Root, wait_for};

fn inspect(root: &Root, name: &str) -> serde_json::Value {
    let v: Vec<serde_json::Value> =
        serde_json::from_str(&root.ok(&["container", "inspect", name])).unwrap();
    v.into_iter().next().unwrap()
}

/// The pid of the monitor of container `id` (its command line names the root and the id).
fn monitor_of(root: &Root, id: &str) -> i32 {
    let r = root.path().to_string_lossy().into_owned();
    for p in std::fs::read_dir("/proc").unwrap().flatten() {
        let cmdline = std::fs::read(p.path().join("cmdline")).unwrap_or_default();
        let cmdline = String::from_utf8_lossy(&cmdline).replace('\0', " ");
        if cmdline.contains("__monitor") && cmdline.contains(&r) && cmdline.contains(id) {
            return p.file_name().to_string_lossy().parse().unwrap();
        }
    }
    panic!("no monitor for {id}");
}

fn gone(pid: i32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Err(_) => true,
        Ok(s) => s
            .rsplit_once(')')
            .is_some_and(|(_, r)| r.trim_start().starts_with('Z')),
    }
}

fn kill9(pid: i32) {
    assert!(
        std::process::Command::new("kill")
            .args(["-9", &pid.to_string()])
            .status()
            .unwrap()
            .success()
    );
    wait_for(
        &format!("pid {pid} to die"),
        Duration::from_secs(10),
        || gone(pid),
    );
}

fn ps_line(root: &Root, name: &str) -> String {
    root.ok(&["ps", "-a"])
        .lines()
        .find(|l| l.ends_with(name))
        .unwrap_or_else(|| panic!("{name} not in ps -a"))
        .to_owned()
}

#[test]
fn a_killed_monitor_is_reported_and_its_container_stays_controllable() {
    if !crate::support::require_root() {
        return;
    }
    let image = crate::images::busybox_image();
    let mut root = Root::new();
    root.ok(&["pull", &image]);
    let mut faults = 0;

    // 1. Monitor killed while the container runs; then the container is stopped.
    root.ok(&["run", "-d", "--name", "m1", &image, "sleep", "1000"]);
    let c = inspect(&root, "m1");
    let id = c["Id"].as_str().unwrap().to_owned();
    let init = c["State"]["Pid"].as_i64().unwrap() as i32;
    kill9(monitor_of(&root, &id));
    faults += 1;
    let c = inspect(&root, "m1");
    assert_eq!(c["State"]["Status"], "running", "{c:#}");
    assert_eq!(c["State"]["Pid"], init);
    let err = c["State"]["Error"].as_str().unwrap();
    assert!(
        err.contains("monitor is gone") && err.contains("unmonitored"),
        "{err}"
    );
    assert!(ps_line(&root, "m1").contains("Up "));
    root.ok(&["stop", "-t", "1", "m1"]);
    assert!(gone(init), "the init survived stop");
    let c = inspect(&root, "m1");
    assert_eq!(c["State"]["Status"], "exited", "{c:#}");
    assert_eq!(c["State"]["ExitCode"], -1, "a made-up exit code: {c:#}");
    assert!(
        c["State"]["Error"]
            .as_str()
            .unwrap()
            .contains("exit status is unknown"),
        "{c:#}"
    );
    let line = ps_line(&root, "m1");
    assert!(line.contains("Exited (unknown)"), "{line}");
    assert_eq!(root.ok(&["wait", "m1"]), "-1\n");
    root.ok(&["rm", "m1"]);

    // 2. Monitor killed, then the container's own process dies (nobody reaps it for berth).
    root.ok(&["run", "-d", "--name", "m2", &image, "sleep", "1000"]);
    let c = inspect(&root, "m2");
    let id = c["Id"].as_str().unwrap().to_owned();
    let init = c["State"]["Pid"].as_i64().unwrap() as i32;
    kill9(monitor_of(&root, &id));
    kill9(init);
    faults += 2;
    let c = inspect(&root, "m2");
    assert_eq!(c["State"]["Status"], "exited", "{c:#}");
    assert_eq!(c["State"]["ExitCode"], -1, "{c:#}");
    assert!(ps_line(&root, "m2").contains("Exited (unknown)"));
    // Started again, it has a monitor of its own again.
    root.ok(&["start", "m2"]);
    let c = inspect(&root, "m2");
    assert_eq!(c["State"]["Status"], "running", "{c:#}");
    assert_eq!(c["State"]["Error"], "", "{c:#}");
    root.ok(&["rm", "-f", "m2"]);

    // 3. Monitor of a created (never started) container killed: still created, and it starts.
    root.ok(&["create", "--name", "m3", &image, "sleep", "1000"]);
    let id = inspect(&root, "m3")["Id"].as_str().unwrap().to_owned();
    kill9(monitor_of(&root, &id));
    faults += 1;
    wait_for("the created init to end", Duration::from_secs(10), || {
        inspect(&root, "m3")["State"]["Status"] != "running"
    });
    let c = inspect(&root, "m3");
    assert_eq!(c["State"]["Status"], "created", "{c:#}");
    root.ok(&["start", "m3"]);
    assert_eq!(inspect(&root, "m3")["State"]["Status"], "running");
    // And stop/rm with a monitor killed mid-way through force removal.
    let id = inspect(&root, "m3")["Id"].as_str().unwrap().to_owned();
    kill9(monitor_of(&root, &id));
    faults += 1;
    root.ok(&["rm", "-f", "m3"]);

    // Nothing is left, and new containers run.
    root.check(true);
    let leaks = root.host_leaks();
    assert!(leaks.is_empty(), "left on the host: {leaks:#?}");
    assert_eq!(
        root.ok(&["run", "--rm", &image, "echo", "alive"]),
        "alive\n"
    );
    eprintln!("monitor death: 3 containers, {faults} processes killed, all controllable");
}

/// Regression: a monitor whose spawner is gone before it reports (a `run` or `start` killed at
/// that moment) carries on with its container. It used to panic on the broken pipe and leave
/// the container unmonitored. Here the monitor is started the way `start` does, with its
/// report pipe already closed.
#[test]
fn a_monitor_whose_spawner_is_gone_carries_on() {
    if !crate::support::require_root() {
        return;
    }
    let image = crate::images::busybox_image();
    let root = Root::new();
    root.ok(&["pull", &image]);
    root.ok(&[
        "create",
        "--name",
        "orphaned",
        "--network",
        "none",
        &image,
        "sleep",
        "1000",
    ]);
    root.ok(&["stop", "-t", "1", "orphaned"]);
    let id = inspect(&root, "orphaned")["Id"]
        .as_str()
        .unwrap()
        .to_owned();
    let (reader, writer) = std::io::pipe().unwrap();
    drop(reader);
    let st = std::process::Command::new(crate::support::berth_bin())
        .arg("__monitor")
        .arg(root.path())
        .arg(&id)
        .arg("start")
        .stdin(std::process::Stdio::null())
        .stdout(writer)
        .status()
        .unwrap();
    assert!(st.success(), "{st}");
    wait_for("the container to run", Duration::from_secs(10), || {
        inspect(&root, "orphaned")["State"]["Status"] == "running"
    });
    let monitor = monitor_of(&root, &id);
    // The report comes right after the state is saved as running: a monitor that died of it
    // is gone (or a zombie) by now, its container unmonitored (checked without the fix).
    let c = inspect(&root, "orphaned");
    assert!(!gone(monitor), "the monitor died: {c:#}");
    assert_eq!(c["State"]["Error"], "", "{c:#}");
    // Controlled through its monitor: stop records a real exit code.
    root.ok(&["stop", "-t", "1", "orphaned"]);
    let c = inspect(&root, "orphaned");
    assert_eq!(c["State"]["Status"], "exited", "{c:#}");
    assert_eq!(c["State"]["ExitCode"], 137, "{c:#}");
    root.ok(&["rm", "orphaned"]);
}
