//! The cgroup hierarchy refusing the container's cgroup itself: `berth run` inside a private
//! mount namespace (`unshare -m`, propagation private) where the berth cgroup parent
//! (`/sys/fs/cgroup/<hierarchy>/berth`, under which each container gets `berth/<id>`) is a
//! read-only bind mount, so creating the container's cgroup directory fails with EROFS. Two
//! cases: only the memory hierarchy read-only (the container's directories in the hierarchies
//! before it are made first, then must be removed), and every hierarchy read-only (the first
//! mkdir fails). `run` must fail with an error naming the directory, leave nothing (no
//! container record, snapshot, mount, monitor, cgroup directory or veth), and the same run
//! outside the restriction works. The read-only mounts live and die with the namespace: the
//! host's mount table never shows them.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use crate::harness::Root;
use crate::support::berth_bin;

const CGROUP: &str = "/sys/fs/cgroup";

/// The v1 hierarchies (cgroup mounts under /sys/fs/cgroup), as berth detects them.
fn hierarchies() -> Vec<PathBuf> {
    let mi = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    let mut out: Vec<PathBuf> = mi
        .lines()
        .filter_map(|l| {
            let (pre, post) = l.split_once(" - ")?;
            if post.split(' ').next() != Some("cgroup") {
                return None;
            }
            pre.split(' ').nth(4).map(PathBuf::from)
        })
        .collect();
    out.sort();
    out
}

/// Host mounts on or under the berth cgroup parents (there must be none of ours).
fn host_berth_cgroup_mounts() -> Vec<String> {
    std::fs::read_to_string("/proc/self/mountinfo")
        .unwrap()
        .lines()
        .filter(|l| {
            l.split(' ')
                .nth(4)
                .is_some_and(|m| m.starts_with(CGROUP) && m.contains("/berth"))
        })
        .map(String::from)
        .collect()
}

/// Runs `berth --root ROOT args…` in a new private mount namespace where each of `readonly`
/// is bind-mounted read-only over itself; after berth exits, the namespace's mount table is
/// saved to `mountinfo_out` (so the test sees what berth left mounted there). Returns
/// (success, stderr).
fn run_restricted(
    root: &Root,
    readonly: &[PathBuf],
    mountinfo_out: &Path,
    args: &[&str],
) -> (bool, String) {
    let mut script = String::from("set -e\n");
    for d in readonly {
        let d = d.display();
        script.push_str(&format!(
            "mount --bind '{d}' '{d}'\nmount -o remount,bind,ro '{d}'\n"
        ));
    }
    // berth's status is the script's; the mount table is saved whatever it was.
    script.push_str(&format!(
        "set +e\n\"$0\" \"$@\"\nrc=$?\ncat /proc/self/mountinfo > '{}'\nexit $rc\n",
        mountinfo_out.display()
    ));
    let out = Command::new("unshare")
        .args([
            "--mount",
            "--propagation",
            "private",
            "--",
            "sh",
            "-c",
            &script,
        ])
        .arg(berth_bin())
        .arg("--root")
        .arg(root.path())
        .args(args)
        .stdin(Stdio::null())
        .output()
        .expect("unshare (util-linux)");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn a_read_only_cgroup_parent_fails_run_clearly_leaves_nothing_and_a_retry_outside_works() {
    if !crate::support::require_root() {
        return;
    }
    let image = crate::images::busybox_image();
    let mut root = Root::new();
    root.ok(&["pull", &image]);
    let hier = hierarchies();
    assert!(
        hier.iter().any(|h| h.ends_with("memory")),
        "a v1 memory hierarchy: {hier:?}"
    );
    // The berth parents exist once any container ran; make them as berth would otherwise.
    for h in &hier {
        std::fs::create_dir_all(h.join("berth")).unwrap();
    }
    let host_mounts_before = host_berth_cgroup_mounts();
    let memory = hier.iter().find(|h| h.ends_with("memory")).unwrap().clone();
    let cases: Vec<(&str, Vec<PathBuf>, PathBuf)> = vec![
        (
            "memory read-only",
            vec![memory.join("berth")],
            memory.clone(),
        ),
        (
            "every hierarchy read-only",
            hier.iter().map(|h| h.join("berth")).collect(),
            hier[0].clone(),
        ),
    ];
    for (i, (what, readonly, refused_in)) in cases.iter().enumerate() {
        let mountinfo = root.path().join(format!("ns-mountinfo-{i}"));
        let name = format!("cgro{i}-{}", std::process::id());
        let (ok, err) = run_restricted(
            &root,
            readonly,
            &mountinfo,
            &[
                "run", "--name", &name, "--memory", "64m", &image, "echo", "ran",
            ],
        );
        assert!(!ok, "{what}: run succeeded");
        // The error names the directory it could not make, and why.
        let prefix = format!("{}/berth/", refused_in.display());
        let path = err
            .split_whitespace()
            .find(|w| w.starts_with(&prefix))
            .unwrap_or_else(|| panic!("{what}: the error does not name {prefix}<id>: {err}"))
            .trim_end_matches(':');
        assert!(
            err.contains("mkdir") && err.contains("Read-only file system"),
            "{what}: unclear error: {err}"
        );
        let id = Path::new(path).file_name().unwrap().to_string_lossy();
        assert_eq!(id.len(), 64, "{what}: a container id in {path}");
        root.seen.insert(id.to_string());
        eprintln!("{what}: {}", err.trim());

        // Nothing is left: no cgroup directory of it in any hierarchy (those made before the
        // refusal removed), no container, snapshot, mount, monitor or interface.
        for h in &hier {
            let d = h.join("berth").join(&*id);
            assert!(!d.exists(), "{what}: {} left behind", d.display());
        }
        assert!(
            root.containers().is_empty(),
            "{what}: a container is left: {err}"
        );
        let left = root.container_dirs_left();
        assert!(left.is_empty(), "{what}: {left:?}");
        // Inside the namespace, after berth exited: nothing of the root is mounted.
        let ns = std::fs::read_to_string(&mountinfo).unwrap();
        let rootp = root.path().to_string_lossy().into_owned();
        let left: Vec<&str> = ns
            .lines()
            .filter(|l| l.split(' ').nth(4).is_some_and(|m| m.starts_with(&rootp)))
            .collect();
        assert!(
            left.is_empty(),
            "{what}: mounted in the namespace: {left:#?}"
        );
        assert!(
            ns.lines()
                .any(|l| l.split(' ').nth(4) == Some(&*readonly[0].to_string_lossy())),
            "{what}: the restriction was not in place"
        );
        let leaks = root.host_leaks();
        assert!(leaks.is_empty(), "{what}: left on the host: {leaks:#?}");
        let report = root.check(false);
        assert_eq!(report["orphan_snapshots"].as_array().map(Vec::len), Some(0));
        // The namespace's read-only mounts never reached the host.
        assert_eq!(
            host_berth_cgroup_mounts(),
            host_mounts_before,
            "{what}: a mount leaked to the host"
        );
    }
    // Outside the restriction the same run works.
    assert_eq!(
        root.ok(&["run", "--rm", "--memory", "64m", &image, "echo", "ran"]),
        "ran\n"
    );
    let leaks = root.host_leaks_settled();
    assert!(leaks.is_empty(), "left on the host: {leaks:#?}");
}
