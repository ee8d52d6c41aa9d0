//! Crash safety of the store: `berth pull` killed (SIGKILL) at random moments, over and over.
//! After each kill the store must be consistent — every blob matches its digest and every blob
//! an image names is there — and a pull afterwards must work and give a runnable image.

use crate::smallfs::SmallFs;
use crate::support::berth_bin;
use std::process::{Command, Stdio};
use std::time::{Duration, SystemTime};

/// `berth --root ROOT ARGS…`, its output.
pub(crate) fn berth(root: &std::path::Path, args: &[&str]) -> std::process::Output {
    Command::new(berth_bin())
        .arg("--root")
        .arg(root)
        .args(args)
        .output()
        .unwrap()
}

fn check(root: &std::path::Path, repair: bool) -> serde_json::Value {
    let mut args = vec!["system", "check"];
    if repair {
        args.push("--repair");
    }
    let out = berth(root, &args);
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "check output: {e}: {}",
            String::from_utf8_lossy(&out.stderr)
        )
    });
    assert!(out.status.success(), "inconsistent store: {report:#}");
    report
}

#[test]
fn pulls_killed_at_random_points_leave_a_consistent_store() {
    if !crate::support::require_root() {
        return;
    }
    let image = crate::fixtures::fixtures().multi_ref.clone();
    let dir = crate::registry::tempdir();
    let root = dir.path();
    // A small xorshift seeded from the clock: different kill points every run, printed so a
    // failure can be replayed.
    let mut seed = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap()
        .as_nanos() as u64
        | 1;
    eprintln!("kill-point seed {seed}");
    let mut next = || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed
    };
    let trials = 16;
    let mut killed_mid_pull = 0;
    for _ in 0..trials {
        let mut child = Command::new(berth_bin())
            .arg("--root")
            .arg(root)
            .args(["pull", &image])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        // The kill point: a random moment in the life of the pull (fault injection, not a wait).
        std::thread::sleep(Duration::from_millis(next() % 250));
        let finished = child.try_wait().unwrap().is_some();
        let _ = child.kill();
        let _ = child.wait();
        if !finished {
            killed_mid_pull += 1;
        }
        let report = check(root, false);
        assert!(report["blobs_checked"].as_u64().is_some());
        // Start the next trial from nothing pulled, so every trial downloads and unpacks.
        let _ = berth(root, &["rmi", "-f", &image]);
        let _ = berth(root, &["image", "prune", "-a", "-f"]);
    }
    assert!(
        killed_mid_pull > 0,
        "no kill landed before the pull finished"
    );
    // Afterwards: a repair leaves no debris, a pull works, and the image runs.
    check(root, true);
    let report = check(root, false);
    assert_eq!(
        report["stale_temp"].as_array().map(Vec::len),
        Some(0),
        "{report:#}"
    );
    let out = berth(root, &["pull", &image]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = berth(root, &["run", "--rm", &image, "cat", "/etc/base"]);
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "base layer\n",
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    eprintln!("{trials} trials, {killed_mid_pull} killed mid-pull, store consistent after each");
}

#[test]
fn a_full_disk_during_a_pull_is_a_clear_error_and_a_retry_with_room_works() {
    if !crate::support::require_root() {
        return;
    }
    let image = crate::fixtures::fixtures().multi_ref.clone();
    // Room for the store's skeleton but not for the image's layers.
    let fs = SmallFs::new("600k");
    let root = fs.root();
    let out = berth(&root, &["pull", &image]);
    assert!(!out.status.success(), "the pull fitted in 600k?");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("No space left on device"),
        "unclear error: {err}"
    );
    let report = check(&root, false);
    assert_eq!(
        report["missing_blobs"].as_array().map(Vec::len),
        Some(0),
        "{report:#}"
    );
    assert!(
        !String::from_utf8_lossy(&berth(&root, &["images"]).stdout).contains("multi"),
        "a half image is listed"
    );
    // Room again: the same pull works and the image runs.
    fs.resize("64m");
    let out = berth(&root, &["pull", &image]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = berth(&root, &["run", "--rm", &image, "cat", "/etc/base"]);
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "base layer\n",
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    drop(fs);
}
