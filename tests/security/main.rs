//! Integration tests: security.
//!
//! The seccomp tests install the compiled default profile on a thread of their own and run a
//! real program from that thread: the child inherits the filter, exactly as a container's
//! process will. The program is Debian's `python3`, which makes raw syscalls through `ctypes`
//! (no `unsafe` in this crate) and reports each errno, and which itself needs a few hundred
//! ordinary syscalls to start, so a filter that is too tight fails the test too.
//! Needs: root, the `python3` package.

#[path = "../support/mod.rs"]
mod support;

use berth::security::CapSet;
use berth::security::seccomp::{Arch, CompiledFilter, default_program};
use std::collections::BTreeMap;
use std::process::Command as Process;

/// The probe: each line of stdin is `label nr arg0 … arg5`; it prints `label errno` (0 when
/// the call succeeded). Pointers are passed as 0 (NULL); the calls are chosen so that NULL
/// gives a distinctive errno when seccomp lets the call through.
const PROBE: &str = r#"
import ctypes, sys
libc = ctypes.CDLL(None, use_errno=True)
libc.syscall.restype = ctypes.c_long
libc.syscall.argtypes = [ctypes.c_long] * 7
for line in sys.stdin:
    label, *nums = line.split()
    nums = [int(n, 0) for n in nums] + [0] * 7
    ctypes.set_errno(0)
    r = libc.syscall(*nums[:7])
    print(label, 0 if r >= 0 else ctypes.get_errno(), flush=True)
"#;

fn python() -> &'static str {
    if std::path::Path::new("/usr/bin/python3").exists() {
        "/usr/bin/python3"
    } else {
        "python3"
    }
}

/// The calls the test makes, by label.
fn probes(arch: Arch) -> String {
    let nr = |name: &str| arch.syscall(name).unwrap_or_else(|| panic!("{name}"));
    let calls: &[(&str, &str, &[i64])] = &[
        // CLONE_NEWNS: root without a filter may unshare its mount namespace.
        ("unshare", "unshare", &[0x20000]),
        // mount(NULL, NULL, NULL, 0, NULL): EFAULT or ENOENT-ish when allowed, never a mount.
        ("mount", "mount", &[0, 0, 0, 0, 0]),
        // umount2(NULL, 0)
        ("umount2", "umount2", &[0, 0]),
        // keyctl(KEYCTL_GET_KEYRING_ID, KEY_SPEC_SESSION_KEYRING, 0): succeeds when allowed.
        ("keyctl", "keyctl", &[0, -3, 0]),
        // ptrace(PTRACE_ATTACH, pid that cannot exist): ESRCH when allowed.
        ("ptrace", "ptrace", &[16, 0x3fff_ffff, 0, 0]),
        // clone3(NULL, 0): EINVAL when allowed.
        ("clone3", "clone3", &[0, 0]),
        // setns(-1, 0): EBADF when allowed.
        ("setns", "setns", &[-1, 0]),
        // socket(AF_ALG, SOCK_SEQPACKET, 0) is blocked; socket(AF_INET, SOCK_STREAM) is not.
        ("socket_alg", "socket", &[38, 5, 0]),
        // AF_VSOCK is blocked too. The kernel reads the family as an int, so junk in the
        // upper half of the register must not get past the filter.
        ("socket_vsock", "socket", &[40, 1, 0]),
        ("socket_vsock_high", "socket", &[(1 << 32) | 40, 1, 0]),
        ("socket_inet", "socket", &[2, 1, 0]),
        // Ordinary calls.
        ("getpid", "getpid", &[]),
        ("uname_null", "uname", &[0]),
        // personality(0xffffffff) only queries.
        ("personality_query", "personality", &[0xffff_ffff]),
    ];
    calls
        .iter()
        .map(|(label, name, args)| {
            let args: Vec<String> = args.iter().map(|a| a.to_string()).collect();
            format!("{label} {} {}\n", nr(name), args.join(" "))
        })
        .collect()
}

/// Run the probe in a child of a fresh thread that has `filter` installed (no filter: `None`).
/// Returns label → errno.
fn run_probe(filter: Option<&CompiledFilter>) -> BTreeMap<String, i32> {
    let arch = Arch::native().unwrap();
    let input = probes(arch);
    let filter = filter.cloned();
    let out = std::thread::spawn(move || {
        if let Some(f) = &filter {
            f.apply().expect("installing the filter");
        }
        use std::io::Write;
        let mut child = Process::new(python())
            .args(["-c", PROBE])
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .expect("spawning python3 under the filter");
        child
            .stdin
            .take()
            .unwrap()
            .write_all(input.as_bytes())
            .unwrap();
        child.wait_with_output().unwrap()
    })
    .join()
    .unwrap();
    assert!(
        out.status.success(),
        "python3 under the filter failed: {:?}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| {
            let (label, errno) = l.split_once(' ').unwrap();
            (label.to_owned(), errno.parse().unwrap())
        })
        .collect()
}

const EPERM: i32 = libc_errno::EPERM;
const ENOSYS: i32 = libc_errno::ENOSYS;

/// The few errno values the assertions use (the test crate does not depend on libc).
mod libc_errno {
    pub const EPERM: i32 = 1;
    pub const ESRCH: i32 = 3;
    pub const EBADF: i32 = 9;
    pub const EFAULT: i32 = 14;
    pub const EINVAL: i32 = 22;
    pub const ENOSYS: i32 = 38;
}

#[test]
fn default_seccomp_profile_blocks_escapes_and_allows_ordinary_calls() {
    if !support::require_root() {
        return;
    }
    // Control: without a filter, root gets past seccomp on every call, so the errnos below
    // really come from the filter.
    let free = run_probe(None);
    assert_eq!(free["unshare"], 0, "{free:?}");
    assert_ne!(free["mount"], EPERM, "{free:?}");
    assert_eq!(free["keyctl"], 0, "{free:?}");
    assert_eq!(free["ptrace"], libc_errno::ESRCH, "{free:?}");
    assert_eq!(free["clone3"], libc_errno::EINVAL, "{free:?}");
    assert_eq!(free["setns"], libc_errno::EBADF, "{free:?}");
    assert_ne!(free["socket_alg"], EPERM, "{free:?}");
    assert_eq!(
        free["socket_vsock"], 0,
        "AF_VSOCK sockets work here: {free:?}"
    );
    assert_eq!(
        free["socket_vsock_high"], 0,
        "the kernel truncates the family: {free:?}"
    );

    let filter = default_program(CapSet::docker_default()).unwrap();
    let confined = run_probe(Some(&filter));
    for blocked in [
        "unshare",
        "mount",
        "umount2",
        "keyctl",
        "ptrace",
        "setns",
        "socket_alg",
    ] {
        assert_eq!(confined[blocked], EPERM, "{blocked}: {confined:?}");
    }
    assert_eq!(confined["clone3"], ENOSYS, "{confined:?}");
    assert_eq!(confined["getpid"], 0, "{confined:?}");
    assert_eq!(confined["socket_inet"], 0, "{confined:?}");
    assert_eq!(confined["personality_query"], 0, "{confined:?}");
    assert_eq!(confined["uname_null"], libc_errno::EFAULT, "{confined:?}");
}

#[test]
fn seccomp_profile_allows_what_added_capabilities_open() {
    if !support::require_root() {
        return;
    }
    let caps = CapSet::docker_default().union(CapSet::parse(&["SYS_ADMIN", "SYS_PTRACE"]).unwrap());
    let filter = default_program(caps).unwrap();
    let r = run_probe(Some(&filter));
    // Through the filter: the kernel's own answer (the python child is root with all caps).
    assert_eq!(r["unshare"], 0, "{r:?}");
    assert_ne!(r["mount"], EPERM, "{r:?}");
    assert_eq!(r["ptrace"], libc_errno::ESRCH, "{r:?}");
    assert_eq!(r["clone3"], libc_errno::EINVAL, "{r:?}");
    assert_eq!(r["setns"], libc_errno::EBADF, "{r:?}");
    // Never allowed by the profile, whatever the capabilities.
    assert_eq!(r["keyctl"], EPERM, "{r:?}");
    assert_eq!(r["socket_alg"], EPERM, "{r:?}");
    assert_eq!(r["socket_vsock_high"], EPERM, "{r:?}");
}

#[test]
fn compiled_filter_from_bytes_behaves_like_the_original() {
    if !support::require_root() {
        return;
    }
    let filter = default_program(CapSet::docker_default()).unwrap();
    let restored = CompiledFilter::from_bytes(&filter.to_bytes()).unwrap();
    let r = run_probe(Some(&restored));
    assert_eq!(r["mount"], EPERM, "{r:?}");
    assert_eq!(r["clone3"], ENOSYS, "{r:?}");
    assert_eq!(r["getpid"], 0, "{r:?}");
}

// ---- policy through the engine ----

use berth::api::{ApiError, Caller, Command, ContainerConfig, Engine, EngineOptions};
use berth::security::{AuditLog, Verdict};

const POLICY: &str = r#"
[[rule]]
action = "container.create"
decision = "confirm"
privileged = true
reason = "privileged containers need a yes"

[[rule]]
action = "container.create"
decision = "deny"
bind_read_only = false
reason = "binds must be read-only"

[[rule]]
action = "image.pull"
decision = "allow"
registries = ["127.0.0.1:5000", "docker.io"]

[[rule]]
action = "image.pull"
decision = "deny"
reason = "only the local registry and Docker Hub"

[[rule]]
action = "*"
decision = "allow"
"#;

fn engine(dir: &std::path::Path) -> Engine {
    let policy = dir.join("policy.toml");
    std::fs::write(&policy, POLICY).unwrap();
    Engine::open(EngineOptions {
        root: Some(dir.join("root")),
        policy: Some(policy),
    })
    .unwrap()
}

fn is_policy_error(e: &ApiError) -> bool {
    matches!(
        e,
        ApiError::Denied { .. } | ApiError::ConfirmationRequired { .. }
    )
}

/// The denial of POLICY's image.pull rule (line 19).
fn assert_pull_denied(err: &ApiError) {
    match err {
        ApiError::Denied { rule, reason } => {
            assert!(
                rule.as_deref().unwrap().ends_with("policy.toml:19"),
                "{rule:?}"
            );
            assert_eq!(reason, "only the local registry and Docker Hub");
        }
        other => panic!("expected the pull to be denied, got {other:?}"),
    }
}

fn stored_blobs(root: &std::path::Path) -> usize {
    std::fs::read_dir(root.join("images/blobs/sha256"))
        .map(|d| d.count())
        .unwrap_or(0)
}

#[tokio::test]
async fn a_pull_from_an_unlisted_registry_is_denied_does_nothing_and_is_audited() {
    let dir = tempfile::tempdir().unwrap();
    let engine = engine(dir.path());
    let err = engine
        .submit(Command::ImagePull {
            reference: "ghcr.io/acme/tool:1".into(),
            platform: None,
        })
        .await
        .unwrap_err();
    assert_pull_denied(&err);
    let root = engine.root().unwrap().path();
    let blobs = stored_blobs(root);
    assert_eq!(blobs, 0, "a denied request stored blobs");
    let audit = AuditLog::new(root.join("audit.log")).tail(10).unwrap();
    assert_eq!(audit.len(), 1);
    assert_eq!(audit[0].decision, Verdict::Deny);
    assert_eq!(audit[0].target.as_deref(), Some("ghcr.io/acme/tool:1"));

    // The explanation names the allow rule's failed condition and the deciding rule.
    let req = berth::security::Request {
        action: "image.pull".into(),
        target: None,
        facts: berth::security::Facts {
            image: Some("ghcr.io/acme/tool:1".into()),
            ..Default::default()
        },
    };
    let e = engine
        .policy()
        .unwrap()
        .explain(&berth::security::Subject::current(), &req);
    let text = e.to_string();
    assert!(
        text.contains("registries = [\"127.0.0.1:5000\", \"docker.io\"] does not hold: registry ghcr.io is not listed"),
        "{text}"
    );
    assert_eq!(e.decision.verdict, Verdict::Deny);
}

#[tokio::test]
async fn a_writable_bind_is_denied_before_anything_happens() {
    let dir = tempfile::tempdir().unwrap();
    let engine = engine(dir.path());
    let err = engine
        .submit(Command::ContainerCreate {
            config: Box::new(ContainerConfig {
                image: "busybox".into(),
                volumes: vec!["/srv:/data".into()],
                ..Default::default()
            }),
            pull: true,
        })
        .await
        .unwrap_err();
    assert!(
        matches!(&err, ApiError::Denied { reason, .. } if reason == "binds must be read-only"),
        "{err:?}"
    );
    let root = engine.root().unwrap().path();
    assert_eq!(
        std::fs::read_dir(root.join("containers")).unwrap().count(),
        0
    );
    let blobs = std::fs::read_dir(root.join("images/blobs/sha256"))
        .map(|d| d.count())
        .unwrap_or(0);
    assert_eq!(blobs, 0, "a denied request stored blobs");
}

#[tokio::test]
async fn a_confirm_rule_blocks_the_api_until_the_caller_confirms() {
    let dir = tempfile::tempdir().unwrap();
    let engine = engine(dir.path());
    let create = || Command::ContainerCreate {
        config: Box::new(ContainerConfig {
            image: "busybox".into(),
            privileged: true,
            ..Default::default()
        }),
        pull: false,
    };
    let err = engine.submit(create()).await.unwrap_err();
    match &err {
        ApiError::ConfirmationRequired { rule, reason } => {
            assert!(
                rule.as_deref().unwrap().ends_with("policy.toml:2"),
                "{rule:?}"
            );
            assert_eq!(reason, "privileged containers need a yes");
        }
        other => panic!("expected a confirmation request, got {other:?}"),
    }
    // Confirmed (what the console does after asking), the policy lets it through; whatever
    // happens next is the runtime's business, not a policy error.
    let confirmed = Caller {
        confirmed: true,
        ..Caller::current()
    };
    let outcome = engine.submit_as(&confirmed, create()).await;
    assert!(!outcome.as_ref().is_err_and(is_policy_error), "{outcome:?}");
    let audit = AuditLog::new(engine.root().unwrap().audit_path())
        .tail(10)
        .unwrap();
    assert_eq!(audit.len(), 2, "both decisions are audited");
    assert!(audit.iter().all(|r| r.decision == Verdict::Confirm));
}

#[tokio::test]
async fn an_implicit_pull_by_create_is_authorised_as_image_pull() {
    let dir = tempfile::tempdir().unwrap();
    let engine = engine(dir.path());
    let create = |pull| Command::ContainerCreate {
        config: Box::new(ContainerConfig {
            image: "ghcr.io/acme/tool:1".into(),
            ..Default::default()
        }),
        pull,
    };
    // container.create is allowed, but the missing image would be pulled from a registry the
    // policy does not allow pulls from: the image.pull rule stops it before anything happens.
    let err = engine.submit(create(true)).await.unwrap_err();
    assert_pull_denied(&err);
    let root = engine.root().unwrap().path();
    assert_eq!(
        std::fs::read_dir(root.join("containers"))
            .map(|d| d.count())
            .unwrap_or(0),
        0
    );
    assert_eq!(stored_blobs(root), 0, "a denied pull stored blobs");
    let audit = AuditLog::new(engine.root().unwrap().audit_path())
        .tail(10)
        .unwrap();
    let decisions: Vec<_> = audit
        .iter()
        .map(|r| (r.action.as_str(), r.decision))
        .collect();
    assert_eq!(
        decisions,
        [
            ("container.create", Verdict::Allow),
            ("image.pull", Verdict::Deny)
        ]
    );
    // Without --pull nothing is pulled, so no pull is authorised: the create fails on the
    // missing image instead, not on the policy.
    let err = engine.submit(create(false)).await.unwrap_err();
    assert!(!is_policy_error(&err), "{err:?}");
}

// ---- `berth policy` through the binary ----

fn berth_policy(args: &[&str]) -> (bool, String, String) {
    let out = Process::new(support::berth_bin())
        .args(args)
        .env_remove("BERTH_ROOT")
        .output()
        .unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn policy_file(dir: &std::path::Path, name: &str, text: &str) -> String {
    let p = dir.join(name);
    std::fs::write(&p, text).unwrap();
    p.display().to_string()
}

#[test]
fn policy_check_prints_the_rule_count_or_file_line_reason() {
    let dir = tempfile::tempdir().unwrap();
    let good = policy_file(dir.path(), "good.toml", POLICY);
    let (ok, out, _) = berth_policy(&["policy", "check", &good]);
    assert!(ok);
    assert_eq!(out.trim(), format!("{good}: 5 rules, valid"));
    // No FILE: the policy in effect (here the one given with --policy).
    let (ok, out, _) = berth_policy(&["--policy", &good, "policy", "check"]);
    assert!(ok);
    assert!(out.starts_with(&format!("{good}: 5 rules")), "{out}");

    let bad = policy_file(
        dir.path(),
        "bad.toml",
        &format!("{POLICY}\n[[rule]]\naction = \"image.pul\"\ndecision = \"deny\"\n"),
    );
    let (ok, out, err) = berth_policy(&["policy", "check", &bad]);
    assert!(!ok, "{out}");
    assert!(
        err.contains(&format!("{bad}:28:")) && err.contains("image.pul"),
        "{err}"
    );
    // An invalid policy in effect is reported the same way (the engine would refuse to start).
    let (ok, _, err) = berth_policy(&["--policy", &bad, "policy", "check"]);
    assert!(!ok && err.contains(&format!("{bad}:28:")), "{err}");
    let (ok, _, err) = berth_policy(&["policy", "check", "/nonexistent/policy.toml"]);
    assert!(!ok && err.contains("/nonexistent/policy.toml"), "{err}");
}

#[test]
fn policy_explain_parses_a_docker_command_line_and_shows_the_deciding_rule() {
    let dir = tempfile::tempdir().unwrap();
    let file = policy_file(dir.path(), "p.toml", POLICY);
    let explain = |cmd: &[&str]| {
        let mut args = vec!["--policy", file.as_str(), "policy", "explain"];
        args.extend_from_slice(cmd);
        let (ok, out, err) = berth_policy(&args);
        assert!(ok, "{err}");
        out
    };
    let out = explain(&["run", "--privileged", "-v", "/etc:/x", "busybox"]);
    assert!(
        out.contains(&format!(
            "=> confirm by {file}:2: privileged containers need a yes"
        )),
        "{out}"
    );
    // The implicit pull and the start are explained too.
    assert!(out.contains("image.pull by"), "{out}");
    assert!(out.contains("container.start by"), "{out}");

    let out = explain(&["run", "-v", "/etc:/x", "busybox", "sh", "-c", "true"]);
    assert!(
        out.contains(&format!("{file}:2  confirm container.create")),
        "each rule tried is listed: {out}"
    );
    assert!(out.contains("privileged = true does not hold"), "{out}");
    assert!(
        out.contains(&format!("=> deny by {file}:8: binds must be read-only")),
        "{out}"
    );
    let out = explain(&["create", "-v", "/etc:/x:ro", "busybox"]);
    assert!(
        !out.contains("binds must be read-only") && out.contains(&format!("=> allow by {file}:")),
        "{out}"
    );

    let out = explain(&["pull", "ghcr.io/x/y"]);
    assert!(
        out.contains("registry ghcr.io is not listed")
            && out.contains(&format!(
                "=> deny by {file}:19: only the local registry and Docker Hub"
            )),
        "{out}"
    );
    let out = explain(&["pull", "docker.io/library/busybox"]);
    assert!(out.contains(&format!("=> allow by {file}:14")), "{out}");

    // Not a command line the CLI accepts, or not one the engine runs: an error, exit 1.
    let (ok, _, err) = berth_policy(&["--policy", &file, "policy", "explain", "run"]);
    assert!(!ok && err.contains("IMAGE"), "{err}");
    let (ok, _, err) = berth_policy(&["--policy", &file, "policy", "explain", "serve"]);
    assert!(!ok && err.contains("serve"), "{err}");
}
