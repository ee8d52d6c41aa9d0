//! Seccomp and capabilities in real containers: the default profile (the security module's,
//! compiled for the container's capability set) against escape syscalls, the AF_VSOCK
//! high-bits bypass, clone3, setuid binaries with and without no-new-privileges, and custom
//! profiles. The probe is a small static C program (`probe.c`, built with the host's cc).

use std::collections::BTreeMap;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use berth::runtime::{ContainerId, CreateRequest, SeccompChoice};

use crate::fixture::{self, Env};
use crate::support;

fn probe_binary() -> &'static Path {
    static PROBE: OnceLock<PathBuf> = OnceLock::new();
    PROBE.get_or_init(|| {
        let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/runtime/probe.c");
        // Built once per test process into cargo's scratch dir (one file, replaced atomically).
        let dir = Path::new(env!("CARGO_TARGET_TMPDIR"));
        let out = dir.join("berth-seccomp-probe");
        let tmp = dir.join(format!("berth-seccomp-probe.{}", std::process::id()));
        let st = std::process::Command::new("cc")
            .args(["-static", "-O1", "-o"])
            .arg(&tmp)
            .arg(&src)
            .status()
            .expect("tests need a C compiler (cc) and static libc (libc6-dev)");
        assert!(st.success(), "building {}", src.display());
        std::fs::rename(&tmp, &out).unwrap();
        out
    })
}

/// A request running the probe with `calls`; the probe is placed in the container's upper
/// layer at /probe (setuid root when `setuid`).
fn probe_req(env: &Env, id: &ContainerId, calls: &str, setuid: bool) -> CreateRequest {
    let req = env.req(id, &format!("/probe {calls}"));
    let upper = env.tmp.path().join(format!("upper-{id}"));
    let dst = upper.join("probe");
    std::fs::copy(probe_binary(), &dst).unwrap();
    let mode = if setuid { 0o4755 } else { 0o755 };
    std::fs::set_permissions(&dst, std::fs::Permissions::from_mode(mode)).unwrap();
    req
}

fn results(out: &str) -> BTreeMap<String, String> {
    out.lines()
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
        .collect()
}

/// Run the probe in a container configured by `f`; returns call → errno (as text).
fn probe(
    env: &Env,
    name: &str,
    calls: &str,
    f: impl FnOnce(&mut CreateRequest),
) -> BTreeMap<String, String> {
    let id = fixture::id(name);
    let mut req = probe_req(env, &id, calls, false);
    f(&mut req);
    let (code, out) = env.run(&req);
    assert_eq!(code, 0, "{name}: {out}");
    results(&out)
}

fn expect(got: &BTreeMap<String, String>, want: &[(&str, i32)], what: &str) {
    for (call, errno) in want {
        assert_eq!(
            got.get(*call).map(String::as_str),
            Some(errno.to_string().as_str()),
            "{what}: {call} (0 = success, else errno) in {got:?}"
        );
    }
}

const EPERM: i32 = 1;
const EINVAL: i32 = 22;
const ENOSYS: i32 = 38;

#[test]
fn default_profile_blocks_escape_syscalls_and_capabilities_reopen_them() {
    if !support::require_root() {
        return;
    }
    let env = Env::new();
    // unshare_user last: in a new user namespace the process has no capability over the rest.
    let calls = "mount keyctl ptrace unix unshare_ns unshare_user";
    let got = probe(&env, "sc-default", calls, |_| {});
    expect(
        &got,
        &[
            ("unshare_ns", EPERM),
            ("unshare_user", EPERM),
            ("mount", EPERM),
            ("keyctl", EPERM),
            ("ptrace", EPERM),
            ("unix", 0),
        ],
        "default container",
    );
    // The compiled default filter is kept under the state root for the next container.
    let cached: Vec<String> = std::fs::read_dir(env.tmp.path().join("root/seccomp"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert!(
        cached.iter().any(|n| n.starts_with("default-")),
        "{cached:?}"
    );
    let got = probe(&env, "sc-admin", calls, |r| {
        r.cap_add = vec!["SYS_ADMIN".into()]
    });
    expect(
        &got,
        &[
            ("unshare_ns", 0),
            ("mount", 0),
            ("keyctl", EPERM),
            ("ptrace", EPERM),
        ],
        "--cap-add SYS_ADMIN",
    );
    let got = probe(&env, "sc-ptrace", calls, |r| {
        r.cap_add = vec!["SYS_PTRACE".into()]
    });
    expect(
        &got,
        &[("ptrace", 0), ("mount", EPERM)],
        "--cap-add SYS_PTRACE",
    );
    let got = probe(&env, "sc-priv", calls, |r| r.privileged = true);
    expect(
        &got,
        &[
            ("unshare_ns", 0),
            ("unshare_user", 0),
            ("mount", 0),
            ("keyctl", 0),
            ("ptrace", 0),
        ],
        "--privileged",
    );
}

#[test]
fn af_vsock_with_high_bits_in_the_family_is_refused() {
    if !support::require_root() {
        return;
    }
    let env = Env::new();
    let calls = "vsock vsock_high alg_high unix";
    let got = probe(&env, "vsock", calls, |_| {});
    expect(
        &got,
        &[
            ("vsock", EPERM),
            ("vsock_high", EPERM),
            ("alg_high", EPERM),
            ("unix", 0),
        ],
        "default container",
    );
    // The probe really reaches AF_VSOCK with the high bits set when nothing filters it.
    let got = probe(&env, "vsock-unconfined", calls, |r| {
        r.seccomp = SeccompChoice::Unconfined
    });
    expect(&got, &[("vsock_high", 0)], "seccomp=unconfined");
}

#[test]
fn clone3_fails_with_enosys_unless_sys_admin() {
    if !support::require_root() {
        return;
    }
    let env = Env::new();
    let got = probe(&env, "clone3", "clone3", |_| {});
    expect(&got, &[("clone3", ENOSYS)], "default container");
    // With CAP_SYS_ADMIN the call reaches the kernel, which rejects the NULL arguments.
    let got = probe(&env, "clone3-admin", "clone3", |r| {
        r.cap_add = vec!["SYS_ADMIN".into()]
    });
    expect(&got, &[("clone3", EINVAL)], "--cap-add SYS_ADMIN");
}

#[test]
fn setuid_root_binary_works_unless_no_new_privileges() {
    if !support::require_root() {
        return;
    }
    let env = Env::new();
    for (name, nnp, want) in [("suid", false, "0"), ("suid-nnp", true, "65534")] {
        let id = fixture::id(name);
        let mut req = probe_req(&env, &id, "euid", true);
        req.args = vec![
            "sh".into(),
            "-c".into(),
            "grep -E '^(Seccomp|NoNewPrivs):' /proc/self/status; /probe euid".into(),
        ];
        req.uid = 65534;
        req.gid = 65534;
        req.no_new_privileges = nnp;
        let (code, out) = env.run(&req);
        assert_eq!(code, 0, "{out}");
        let status = |k: &str| {
            out.lines()
                .find(|l| l.starts_with(k))
                .and_then(|l| l.split_whitespace().nth(1))
                .unwrap_or("")
                .to_string()
        };
        assert_eq!(status("Seccomp:"), "2", "the filter is installed: {out}");
        assert_eq!(status("NoNewPrivs:"), if nnp { "1" } else { "0" }, "{out}");
        assert_eq!(
            results(&out).get("euid").map(String::as_str),
            Some(want),
            "{name}: {out}"
        );
    }
}

#[test]
fn custom_docker_profile_file_and_plain_oci_bundle_profile_apply() {
    if !support::require_root() {
        return;
    }
    let env = Env::new();
    let file = env.tmp.path().join("profile.json");
    std::fs::write(
        &file,
        r#"{"defaultAction":"SCMP_ACT_ALLOW","syscalls":[
            {"names":["mkdir","mkdirat"],"action":"SCMP_ACT_ERRNO","errnoRet":13}]}"#,
    )
    .unwrap();
    let id = fixture::id("custom");
    let mut req = env.req(
        &id,
        "mkdir /tmp/x && echo made || echo refused; unshare -U true && echo userns",
    );
    req.seccomp = SeccompChoice::File(file);
    let (_, out) = env.run(&req);
    assert!(
        out.contains("refused") && out.contains("Permission denied"),
        "{out}"
    );
    // The custom profile replaces the default: unshare is allowed again.
    assert!(out.contains("userns"), "{out}");

    // A bundle whose config.json has only an OCI `linux.seccomp` (no berth annotation), run
    // with `berth runtime run`: the OCI profile applies.
    let id = fixture::id("oci-bundle");
    let req = env.req(&id, "unshare -U true && echo allowed || echo blocked");
    let dir = env.tmp.path().join("bundle");
    fixture::bundle(&dir, &req);
    let cfg = dir.join("config.json");
    let mut spec: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&cfg).unwrap()).unwrap();
    let ann = spec["annotations"].as_object_mut().unwrap();
    assert!(
        ann.remove(berth::runtime::seccomp::PROFILE_ANNOTATION)
            .is_some()
    );
    assert!(spec["linux"]["seccomp"].is_object());
    std::fs::write(&cfg, serde_json::to_vec(&spec).unwrap()).unwrap();
    let out = std::process::Command::new(support::berth_bin())
        .arg("runtime")
        .arg("--root")
        .arg(env.tmp.path().join("cli-root"))
        .args(["run", "--bundle"])
        .arg(&dir)
        .arg(id.as_str())
        .output()
        .unwrap();
    let text =
        String::from_utf8_lossy(&out.stdout).to_string() + &String::from_utf8_lossy(&out.stderr);
    assert!(text.contains("blocked"), "{text}");
}

#[test]
fn exec_into_a_container_gets_its_filter_and_capabilities() {
    if !support::require_root() {
        return;
    }
    let env = Env::new();
    for (name, admin) in [("exec-default", false), ("exec-admin", true)] {
        let id = fixture::id(name);
        let mut req = probe_req(&env, &id, "", false);
        req.args = vec!["sleep".into(), "1000".into()];
        if admin {
            req.cap_add = vec!["SYS_ADMIN".into()];
        }
        env.rt.create(&req).unwrap();
        env.rt.start(&id).unwrap();
        let exec = berth::runtime::ExecRequest {
            args: vec![
                "/probe".into(),
                "mount".into(),
                "vsock_high".into(),
                "clone3".into(),
            ],
            ..Default::default()
        };
        let ex = env
            .rt
            .exec(&id, &exec, berth::runtime::StdioMode::Pipes)
            .unwrap();
        let out = ex.child.wait_with_output().unwrap();
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(out.status.success(), "{text}");
        let want: &[(&str, i32)] = if admin {
            &[("mount", 0), ("vsock_high", EPERM), ("clone3", EINVAL)]
        } else {
            &[("mount", EPERM), ("vsock_high", EPERM), ("clone3", ENOSYS)]
        };
        expect(&results(&text), want, name);
        env.rt.remove(&id, true).unwrap();
    }
}
