//! The cgroup hierarchy refusing a write: limits the kernel rejects (a cpuset of CPUs that do
//! not exist, a CFS quota under its minimum, memory+swap below memory). `run` fails with an
//! error that names the cgroup file, leaves no container, snapshot, cgroup or interface behind,
//! and the same run with valid values works. A memory limit too small for any init is refused
//! before the kernel is asked.

use crate::harness::Root;

#[test]
fn refused_cgroup_writes_are_clear_errors_that_leave_nothing_and_a_valid_retry_works() {
    if !crate::support::require_root() {
        return;
    }
    let image = crate::images::busybox_image();
    let mut root = Root::new();
    root.ok(&["pull", &image]);
    // (flags, the cgroup file the error must name; empty: refused before the kernel)
    let cases: &[(&[&str], &str)] = &[
        (&["--cpuset-cpus", "99"], "cpuset.cpus"),
        (&["--cpus", "0.001"], "cpu.cfs_quota_us"),
        (
            &["--memory", "64m", "--memory-swap", "32m"],
            "memory.memsw.limit_in_bytes",
        ),
        (&["--memory", "1k"], ""),
    ];
    let mut refused = 0;
    for (i, (flags, file)) in cases.iter().enumerate() {
        let name = format!("cg{i}");
        let mut args = vec!["run", "--name", &name];
        args.extend_from_slice(flags);
        args.extend([image.as_str(), "echo", "ran"]);
        let err = root.fails(&args);
        refused += 1;
        if file.is_empty() {
            assert!(err.contains("below the minimum"), "unclear error: {err}");
        } else {
            assert!(
                err.contains("/sys/fs/cgroup/") && err.contains(file),
                "the error does not name the cgroup file {file}: {err}"
            );
            // The cgroup it names is gone.
            let path = err
                .split_whitespace()
                .find(|w| w.starts_with("/sys/fs/cgroup/"))
                .unwrap()
                .trim_end_matches(':');
            let dir = std::path::Path::new(path).parent().unwrap();
            assert!(!dir.exists(), "{} left behind", dir.display());
        }
        assert!(
            root.containers().is_empty(),
            "a container is left after {flags:?}: {err}"
        );
        let left = root.container_dirs_left();
        assert!(left.is_empty(), "after {flags:?}: {left:?}");
        let leaks = root.host_leaks();
        assert!(leaks.is_empty(), "left on the host: {leaks:#?}");
        let report = root.check(false);
        assert_eq!(report["orphan_snapshots"].as_array().map(Vec::len), Some(0));
    }
    // The same runs with values the kernel takes work.
    for flags in [
        &["--cpuset-cpus", "0"][..],
        &["--cpus", "0.5"],
        &["--memory", "64m", "--memory-swap", "128m"],
        &["--memory", "6m"],
    ] {
        let mut args = vec!["run", "--rm"];
        args.extend_from_slice(flags);
        args.extend([image.as_str(), "echo", "ran"]);
        assert_eq!(root.ok(&args), "ran\n", "{flags:?}");
    }
    let leaks = root.host_leaks_settled();
    assert!(leaks.is_empty(), "left on the host: {leaks:#?}");
    eprintln!(
        "cgroup refusals: {refused} runs refused (3 by the kernel, 1 up front), each clean; 4 valid retries ran"
    );
}
