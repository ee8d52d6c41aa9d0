//! The clean-up at the start of `berth serve`: what crashed berth processes left on the root
//! (half-made containers, orphan snapshots, temp files and cut-short unpacks of processes that
//! are gone) is removed in the background, and said in serve's log and as an event; what live
//! containers and live processes' operations use is left alone. The one-shot CLI does not
//! clean up (it is the hot path of `run --rm`).

use crate::harness::{Root, kill_after};
use crate::serve_kill::{Serve, cleanup_count, long_running};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

/// A pid no process has (one that just ended).
fn dead_pid() -> u32 {
    let mut c = Command::new("true").spawn().unwrap();
    let pid = c.id();
    c.wait().unwrap();
    pid
}

fn hex64(seed: u8) -> String {
    format!("{:02x}", seed).repeat(32)
}

/// Makes `path` as a directory holding one file.
fn dir_with_file(path: &Path) -> PathBuf {
    std::fs::create_dir_all(path).unwrap();
    std::fs::write(path.join("f"), b"x").unwrap();
    path.to_owned()
}

#[test]
fn serve_removes_crash_debris_at_start_and_leaves_live_containers_and_operations_alone() {
    if !crate::support::require_root() {
        return;
    }
    let image = crate::images::busybox_image();
    let mut root = Root::new();
    root.ok(&["pull", &image]);
    let sh = ["sh", "-c", "trap 'exit 0' TERM; sleep 1000 & wait"];
    let mut args = vec!["run", "-d", "--name", "keep", &image];
    args.extend(sh);
    root.ok(&args);
    root.ok(&["run", "--name", "done", &image, "true"]);
    // What a CLI killed mid-run leaves (whatever the moment: the hand-made debris below is
    // there in every case).
    for (i, ms) in [30u64, 60, 120].into_iter().enumerate() {
        let name = format!("killed{i}");
        let mut args = vec!["run", "-d", "--name", &name, &image];
        args.extend(sh);
        let child = root.spawn(&args);
        kill_after(child, Duration::from_millis(ms));
    }
    let r = root.path().to_owned();
    let dead = dead_pid();
    // Debris of processes that are gone: a container directory with no state (a create cut
    // short), a snapshot with no container, a remover's trash, a half-written layer.
    let debris = [
        dir_with_file(&r.join("containers").join(hex64(0xd1))),
        dir_with_file(&r.join("snapshots").join(hex64(0xd2))),
        dir_with_file(&r.join("snapshots").join(format!(".trash-{dead}-1"))),
        dir_with_file(&r.join("layers").join(format!(".tmp-{dead}-1"))),
    ];
    // What a live process (standing in for another berth process's operation) is writing.
    let mut live = Command::new("sleep")
        .arg("1000")
        .stdin(Stdio::null())
        .spawn()
        .unwrap();
    let lp = live.id();
    let in_use = [
        dir_with_file(&r.join("snapshots").join(format!(".trash-{lp}-1"))),
        dir_with_file(&r.join("layers").join(format!(".tmp-{lp}-1"))),
    ];
    let ingest = r.join("images/ingest").join(format!("{lp}-1"));
    std::fs::write(&ingest, b"half a blob").unwrap();

    // The check sees the debris (else this test could not fail).
    let before = root.check(false);
    let count = |v: &serde_json::Value| -> usize {
        ["half_containers", "orphan_snapshots", "stale_temp"]
            .iter()
            .map(|k| v[k].as_array().map_or(0, Vec::len))
            .sum()
    };
    // (The half-written layer is not among them: opening the store, as the check's engine
    // does, drops dead processes' temp layers; the killed runs may or may not have left any.)
    let seen = &debris[..3];
    assert!(count(&before) >= seen.len(), "{before:#}");
    // The one-shot CLI leaves the containers' debris (no clean-up on its hot path; opening
    // the image store does drop dead processes' temp files, as it always did).
    root.ok(&["ps", "-a"]);
    for d in seen {
        assert!(d.exists(), "the CLI removed {}", d.display());
    }

    let sock = tempfile::Builder::new()
        .prefix("berth-rel-sock-")
        .tempdir()
        .unwrap();
    let mut serve = Serve::start(&root, sock.path());
    // Serve answers at once; the clean-up comes in the background.
    let line = serve.await_cleanup();
    eprintln!("serve at start: {line}");
    assert!(
        cleanup_count(&line) >= seen.len(),
        "{line}\n{}",
        serve.log()
    );
    for d in &debris {
        assert!(!d.exists(), "{} left: {line}", d.display());
    }
    for name in [hex64(0xd1), hex64(0xd2)] {
        assert!(line.contains(&name), "{name} not reported: {line}");
    }
    for p in in_use.iter().chain([&ingest]) {
        assert!(p.exists(), "{} of a live process was removed", p.display());
    }
    // The report is an event too (journaled: consoles on the root see it).
    let journal = std::fs::read_to_string(r.join("events.jsonl")).unwrap();
    assert!(
        journal.contains("\"debris_removed\"") && journal.contains(&hex64(0xd1)),
        "no debris_removed event"
    );
    // The containers are untouched: `keep` runs and serve controls it, `done` is as it was.
    let keep = serve.json("GET", "/containers/keep/json", None);
    assert_eq!(keep["State"]["Status"], "running", "{keep:#}");
    let done = serve.json("GET", "/containers/done/json", None);
    assert_eq!(done["State"]["Status"], "exited", "{done:#}");
    assert_eq!(done["State"]["ExitCode"], 0);
    let after = root.check(false);
    assert_eq!(count(&after), 0, "debris left: {after:#}");
    serve.ok("POST", "/containers/keep/stop?t=5", None);
    let keep = serve.json("GET", "/containers/keep/json", None);
    assert_eq!(keep["State"]["Status"], "exited", "{keep:#}");

    // A restart on a clean root says there was nothing.
    serve.stop();
    let mut serve = Serve::start(&root, sock.path());
    let line = serve.await_cleanup();
    assert!(line.contains("no crash debris"), "{line}");
    // Still the one engine: everything goes through it.
    for c in serve
        .json("GET", "/containers/json?all=1", None)
        .as_array()
        .unwrap()
    {
        root.seen.insert(c["Id"].as_str().unwrap().to_owned());
        serve.ok(
            "DELETE",
            &format!("/containers/{}?force=1", c["Id"].as_str().unwrap()),
            None,
        );
    }
    let id = crate::serve_kill::run(&serve, &image, "after", long_running());
    serve.ok("DELETE", &format!("/containers/{id}?force=1"), None);
    serve.stop();
    let _ = live.kill();
    let _ = live.wait();
    for p in in_use.iter().chain([&ingest]) {
        let _ = std::fs::remove_dir_all(p);
        let _ = std::fs::remove_file(p);
    }
    let leaks = root.host_leaks_settled();
    assert!(leaks.is_empty(), "left on the host: {leaks:#?}");
}
