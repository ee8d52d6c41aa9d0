//! Regression tests for container-escape CVEs.

use std::process::Command;

use berth::runtime::{BindMount, ExecRequest, Rootfs, StdioMode};

use crate::fixture::{self, Env};
use crate::support;

const EROFS: i32 = 30;
const ETXTBSY: i32 = 26;

/// argv[0] of a process.
fn argv0(pid: u32) -> String {
    let c = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
    String::from_utf8_lossy(c.split(|b| *b == 0).next().unwrap_or_default()).into_owned()
}

fn exe_is_sealed(pid: u32) {
    let exe = format!("/proc/{pid}/exe");
    assert_eq!(
        argv0(pid),
        "berth-sealed",
        "{exe} was re-executed from the sealed image"
    );
    let err = std::fs::OpenOptions::new()
        .write(true)
        .open(&exe)
        .unwrap_err();
    assert!(
        matches!(err.raw_os_error(), Some(EROFS) | Some(ETXTBSY)),
        "{exe}: {err}"
    );
    // Not even after it exits: the file itself is on a read-only mount.
    let err = std::fs::OpenOptions::new()
        .append(true)
        .open(&exe)
        .unwrap_err();
    assert!(
        matches!(err.raw_os_error(), Some(EROFS) | Some(ETXTBSY)),
        "{exe}: {err}"
    );
}

/// CVE-2019-5736: the berth processes that create or enter a container (monitor, exec helper
/// and the exec'd process before its exec) run from a sealed, read-only image (a detached
/// read-only bind mount of the binary): opening their /proc/PID/exe for writing fails.
#[test]
fn cve_2019_5736_host_binary_unreachable() {
    if !support::require_root() {
        return;
    }
    let env = Env::new();
    let id = fixture::id("5736");
    env.rt.create(&env.req(&id, "exec sleep 1000")).unwrap();
    env.rt.start(&id).unwrap();
    let st = env.rt.state(&id).unwrap();
    exe_is_sealed(st.monitor_pid.unwrap() as u32);
    // The init is the container's own program now.
    let init_exe = std::fs::read_link(format!("/proc/{}/exe", st.pid)).unwrap();
    assert!(init_exe.ends_with("busybox"), "{init_exe:?}");
    // An exec helper while it runs.
    let ex = env
        .rt
        .exec(
            &id,
            &ExecRequest {
                args: vec!["sleep".into(), "2".into()],
                ..Default::default()
            },
            StdioMode::Pipes,
        )
        .unwrap();
    fixture::eventually(10, "exec helper re-executed sealed", || {
        (argv0(ex.pid() as u32) == "berth-sealed").then_some(())
    });
    exe_is_sealed(ex.pid() as u32);
    // The "#!/proc/self/exe" trick: the interpreter a container script gets is the sealed image.
    let req = ExecRequest {
        args: vec![
            "sh".into(),
            "-c".into(),
            "printf '#!/proc/self/exe\\n' > /tmp/evil; chmod +x /tmp/evil; /tmp/evil; echo rc=$?"
                .into(),
        ],
        ..Default::default()
    };
    let out = env
        .rt
        .exec(&id, &req, StdioMode::Pipes)
        .unwrap()
        .child
        .wait_with_output()
        .unwrap();
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("rc="),
        "{out:?}"
    );
    let host = support::berth_bin();
    let before = std::fs::metadata(&host).unwrap().len();
    assert_eq!(
        std::fs::metadata(&host).unwrap().len(),
        before,
        "host binary untouched"
    );
    env.rt.remove(&id, true).unwrap();
}

/// CVE-2024-21626: a cwd naming a leaked fd (`/proc/self/fd/N`) must never give the process
/// a cwd outside the container; every fd but stdio is closed at exec.
#[test]
fn cve_2024_21626_cwd_and_leaked_fds() {
    if !support::require_root() {
        return;
    }
    let env = Env::new();
    for n in 3..9 {
        let id = fixture::id(&format!("21626-{n}"));
        let mut req = env.req(&id, "pwd; ls /..");
        req.cwd = Some(format!("/proc/self/fd/{n}"));
        match env.rt.create(&req) {
            Err(e) => {
                let msg = e.to_string();
                assert!(msg.contains("chdir") || msg.contains("cwd"), "{msg}");
            }
            Ok(_) => {
                env.rt.start(&id).unwrap();
                env.rt.wait(&id).unwrap();
                let out = env.log_text(&id);
                assert!(!out.contains("containers"), "cwd escaped: {out}");
                env.rt.remove(&id, true).unwrap();
            }
        }
    }
    let id = fixture::id("fds");
    let (code, out) = env.run(&env.req(&id, "exec ls /proc/self/fd"));
    assert_eq!(code, 0);
    let fds: Vec<&str> = out.split_whitespace().collect();
    assert_eq!(
        fds,
        vec!["0", "1", "2", "3"],
        "only stdio (and ls's own dir fd)"
    );
}

/// CVE-2021-30465 (and CVE-2024-45310): a symlink in the rootfs pointing at a host path must
/// not redirect a bind-mount target (or the directories created for it) onto the host.
#[test]
fn cve_2021_30465_mount_target_symlink_stays_in_rootfs() {
    if !support::require_root() {
        return;
    }
    let env = Env::new();
    let id = fixture::id("30465");
    let host_target = env.tmp.path().join("host-target");
    std::fs::create_dir(&host_target).unwrap();
    let src = env.tmp.path().join("src");
    std::fs::create_dir(&src).unwrap();
    std::fs::write(src.join("greeting"), "inside\n").unwrap();
    let mut req = env.req(&id, "cat /evil/sub/greeting");
    let Some(Rootfs::Overlay(o)) = &req.rootfs else {
        unreachable!()
    };
    std::os::unix::fs::symlink(&host_target, o.upperdir.join("evil")).unwrap();
    req.binds.push(BindMount {
        source: src,
        destination: "/evil/sub".into(),
        readonly: true,
        propagation: None,
    });
    let (code, out) = env.run(&req);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("inside"), "{out}");
    assert!(
        std::fs::read_dir(&host_target).unwrap().next().is_none(),
        "nothing created or mounted on the host path"
    );
}

/// CVE-2025-31133: masked paths are bound from /dev/null only after checking it is the real
/// null device; a rootfs that supplies its own /dev/null (here a regular file) is refused.
#[test]
fn cve_2025_31133_fake_dev_null_refused() {
    if !support::require_root() {
        return;
    }
    let env = Env::new();
    let id = fixture::id("31133");
    let rootfs = env.tmp.path().join("rootfs");
    fixture::make_busybox_rootfs(&rootfs);
    std::fs::write(rootfs.join("dev/null"), "not a device").unwrap();
    let req = env.req(&id, "cat /proc/kcore | wc -c");
    let mut spec = req.to_spec(std::path::Path::new("/unused")).unwrap();
    spec.root = Some(berth::runtime::spec::Root {
        path: rootfs.clone(),
        readonly: false,
    });
    spec.annotations.clear();
    spec.mounts.retain(|m| !m.destination.starts_with("/dev"));
    let bundle = env.tmp.path().join("bundle");
    std::fs::create_dir(&bundle).unwrap();
    std::fs::write(
        bundle.join("config.json"),
        serde_json::to_vec(&spec).unwrap(),
    )
    .unwrap();
    let out = Command::new(support::berth_bin())
        .args(["runtime", "--root"])
        .arg(env.tmp.path().join("cli"))
        .args(["run", "--bundle"])
        .arg(&bundle)
        .arg(id.as_str())
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("/dev/null") && err.contains("not the null device"),
        "{err}"
    );
}
