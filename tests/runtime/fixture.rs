//! Fixtures for runtime tests: a busybox rootfs (Debian's busybox-static), state roots,
//! requests, bundles, and waiting on conditions with deadlines.

use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use berth::runtime::{ContainerId, CreateRequest, OverlayRootfs, Rootfs, Runtime};

use crate::support;

/// A read-only busybox rootfs shared by the tests of this process (bin/busybox plus one
/// symlink per applet, and the usual empty mount points).
pub fn busybox_rootfs() -> &'static Path {
    static ROOT: OnceLock<PathBuf> = OnceLock::new();
    ROOT.get_or_init(|| {
        let bb = Path::new("/bin/busybox");
        assert!(
            bb.exists(),
            "tests need Debian's busybox-static (/bin/busybox)"
        );
        let dir = std::env::temp_dir().join(format!("berth-test-busybox-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        make_busybox_rootfs(&dir);
        dir
    })
}

/// Build a busybox rootfs at `dir`.
pub fn make_busybox_rootfs(dir: &Path) {
    for d in ["bin", "proc", "sys", "dev", "etc", "tmp", "root", "mnt"] {
        std::fs::create_dir_all(dir.join(d)).unwrap();
    }
    std::fs::copy("/bin/busybox", dir.join("bin/busybox")).unwrap();
    let list = std::process::Command::new("/bin/busybox")
        .arg("--list")
        .output()
        .unwrap();
    for applet in String::from_utf8_lossy(&list.stdout).lines() {
        if applet == "busybox" || applet.is_empty() {
            continue;
        }
        let _ = std::os::unix::fs::symlink("busybox", dir.join("bin").join(applet));
    }
    std::fs::write(
        dir.join("etc/passwd"),
        "root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/:/bin/false\n",
    )
    .unwrap();
    std::fs::write(dir.join("etc/group"), "root:x:0:\nnogroup:x:65534:\n").unwrap();
}

/// A unique container id for this test process.
pub fn id(name: &str) -> ContainerId {
    ContainerId::new(format!("t{}-{name}", std::process::id())).unwrap()
}

/// A state root in a temp dir and a Runtime using the berth binary under test.
pub struct Env {
    pub tmp: tempfile::TempDir,
    pub rt: Runtime,
}

impl Env {
    pub fn new() -> Env {
        let tmp = tempfile::tempdir().unwrap();
        let rt = Runtime::open(&tmp.path().join("root"))
            .unwrap()
            .with_exe(support::berth_bin());
        Env { tmp, rt }
    }

    /// A request with an overlay rootfs on the shared busybox lower dir.
    pub fn req(&self, id: &ContainerId, script: &str) -> CreateRequest {
        let upper = self.tmp.path().join(format!("upper-{id}"));
        let work = self.tmp.path().join(format!("work-{id}"));
        std::fs::create_dir_all(&upper).unwrap();
        std::fs::create_dir_all(&work).unwrap();
        CreateRequest {
            id: Some(id.clone()),
            rootfs: Some(Rootfs::Overlay(OverlayRootfs {
                lowerdirs: vec![busybox_rootfs().to_path_buf()],
                upperdir: upper,
                workdir: work,
            })),
            args: vec!["sh".into(), "-c".into(), script.into()],
            ..Default::default()
        }
    }

    /// Create, start, wait; returns (exit code, stdout+stderr log text).
    pub fn run(&self, req: &CreateRequest) -> (i32, String) {
        let id = req.id.clone().unwrap();
        self.rt.create(req).unwrap();
        self.rt.start(&id).unwrap();
        let info = self.rt.wait(&id).unwrap();
        let out = self.log_text(&id);
        self.rt.remove(&id, true).unwrap();
        (info.exit_code, out)
    }

    pub fn log_text(&self, id: &ContainerId) -> String {
        self.rt
            .logs(id, Default::default())
            .unwrap()
            .map(|e| e.unwrap().log)
            .collect()
    }
}

impl Drop for Env {
    /// A failing test must not leave containers, monitors or cgroups behind.
    fn drop(&mut self) {
        // The manager's root, and the roots the CLI tests pass to `berth runtime --root`.
        let mut roots = vec![self.rt.clone()];
        for extra in ["cli-root", "cli"] {
            let p = self.tmp.path().join(extra);
            if p.exists()
                && let Ok(rt) = Runtime::open(&p)
            {
                roots.push(rt.with_exe(support::berth_bin()));
            }
        }
        for rt in roots {
            for st in rt.list().unwrap_or_default() {
                let _ = rt.remove(&st.id, true);
            }
        }
    }
}

/// Poll `f` until it returns Some, failing after `secs` (for conditions with no event to wait on).
pub fn eventually<T>(secs: u64, what: &str, mut f: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + Duration::from_secs(secs);
    loop {
        if let Some(v) = f() {
            return v;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// Write an OCI bundle (config.json from a request, with the shared busybox rootfs read-only).
pub fn bundle(dir: &Path, req: &CreateRequest) -> PathBuf {
    let mut req = req.clone();
    req.rootfs = Some(Rootfs::Dir(busybox_rootfs().to_path_buf()));
    req.read_only = true;
    let spec = req.to_spec(Path::new("/unused")).unwrap();
    std::fs::create_dir_all(dir).unwrap();
    std::fs::write(
        dir.join("config.json"),
        serde_json::to_vec_pretty(&spec).unwrap(),
    )
    .unwrap();
    dir.to_path_buf()
}

/// cgroup v1 directories of a container on this host (to check for leaks).
pub fn cgroup_dirs(id: &ContainerId) -> Vec<PathBuf> {
    std::fs::read_dir("/sys/fs/cgroup")
        .map(|rd| {
            rd.flatten()
                .map(|e| e.path().join("berth").join(id.as_str()))
                .filter(|p| p.exists())
                .collect()
        })
        .unwrap_or_default()
}
