//! `berth runtime …` on bundle directories (runc's conventions).

use std::process::Command;

use crate::fixture::{self, Env};
use crate::support;

fn berth(root: &std::path::Path) -> Command {
    let mut c = Command::new(support::berth_bin());
    c.arg("runtime").arg("--root").arg(root);
    c
}

#[test]
fn run_isolates_pid_uts_mount_and_network() {
    if !support::require_root() {
        return;
    }
    let env = Env::new();
    let id = fixture::id("cli-ns");
    let mut req = env.req(&id, "echo pid=$$; hostname; ls /sys/class/net; awk '{print $5}' /proc/self/mountinfo | tr '\\n' ' '; echo; exit 7");
    req.hostname = Some("berth-test".into());
    let b = fixture::bundle(&env.tmp.path().join("bundle"), &req);
    let root = env.tmp.path().join("cli-root");
    let out = berth(&root)
        .arg("run")
        .arg("--bundle")
        .arg(&b)
        .arg(id.as_str())
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        out.status.code(),
        Some(7),
        "exit code propagates; stderr: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(lines[0], "pid=1");
    assert_eq!(lines[1], "berth-test");
    assert_ne!(
        std::fs::read_to_string("/proc/sys/kernel/hostname")
            .unwrap()
            .trim(),
        "berth-test"
    );
    assert_eq!(
        lines[2], "lo",
        "only loopback in the network namespace: {stdout}"
    );
    // Its own mount table: exactly what the spec asked for, nothing of the host's.
    let spec = req.to_spec(std::path::Path::new("/unused")).unwrap();
    let l = spec.linux.as_ref().unwrap();
    let allowed = |m: &str| {
        m == "/"
            || spec
                .mounts
                .iter()
                .any(|x| x.destination == std::path::Path::new(m))
            || m.starts_with("/sys/fs/cgroup/")
            || l.masked_paths.iter().any(|p| p == m)
            || l.readonly_paths.iter().any(|p| p == m)
    };
    let inside: Vec<&str> = lines[3].split_whitespace().collect();
    assert!(
        inside.iter().all(|m| allowed(m)),
        "unexpected mounts in {inside:?}"
    );
    assert!(
        inside.contains(&"/proc")
            && inside.contains(&"/dev/pts")
            && inside.contains(&"/dev/mqueue")
    );
    assert!(
        !inside.contains(&"/sys/fs/cgroup/unified"),
        "host-only mount visible: {inside:?}"
    );
    assert!(
        !root.join("containers").join(id.as_str()).exists(),
        "state removed after run"
    );
    assert!(
        fixture::cgroup_dirs(&id).is_empty(),
        "cgroup removed after run"
    );
}

#[test]
fn create_start_state_kill_delete() {
    if !support::require_root() {
        return;
    }
    let env = Env::new();
    let id = fixture::id("cli-life");
    let req = env.req(&id, "echo up; exec sleep 1000");
    let b = fixture::bundle(&env.tmp.path().join("bundle"), &req);
    let root = env.tmp.path().join("cli-root");
    let pidfile = env.tmp.path().join("pid");
    let st = berth(&root)
        .args(["create", "--bundle"])
        .arg(&b)
        .arg("--pid-file")
        .arg(&pidfile)
        .arg(id.as_str())
        .status()
        .unwrap();
    assert!(st.success());
    let state = |root: &std::path::Path| -> serde_json::Value {
        let o = berth(root).args(["state", id.as_str()]).output().unwrap();
        serde_json::from_slice(&o.stdout).unwrap()
    };
    let s = state(&root);
    assert_eq!(s["status"], "created");
    assert_eq!(s["ociVersion"], "1.2.0");
    let pid: i64 = std::fs::read_to_string(&pidfile)
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    assert_eq!(s["pid"], pid);
    assert!(
        berth(&root)
            .args(["start", id.as_str()])
            .status()
            .unwrap()
            .success()
    );
    assert_eq!(state(&root)["status"], "running");
    let ps = berth(&root)
        .args(["ps", "--format", "json", id.as_str()])
        .output()
        .unwrap();
    let pids: Vec<i64> = serde_json::from_slice(&ps.stdout).unwrap();
    assert_eq!(pids, vec![pid]);
    // exec -d --pid-file: the file names the exec'd process (not a helper) when exec returns.
    let epf = env.tmp.path().join("exec.pid");
    let st = berth(&root)
        .args(["exec", "-d", "--pid-file"])
        .arg(&epf)
        .args([id.as_str(), "sleep", "30"])
        .status()
        .unwrap();
    assert!(st.success());
    let epid: i64 = std::fs::read_to_string(&epf)
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    let ps = berth(&root)
        .args(["ps", "--format", "json", id.as_str()])
        .output()
        .unwrap();
    let pids: Vec<i64> = serde_json::from_slice(&ps.stdout).unwrap();
    assert_eq!(pids, vec![pid, epid]);
    let out = berth(&root)
        .args(["exec", id.as_str(), "sh", "-c", "exit 4"])
        .status()
        .unwrap();
    assert_eq!(out.code(), Some(4), "exec exit code");
    // delete refuses a running container
    assert!(
        !berth(&root)
            .args(["delete", id.as_str()])
            .status()
            .unwrap()
            .success()
    );
    assert!(
        berth(&root)
            .args(["kill", id.as_str(), "KILL"])
            .status()
            .unwrap()
            .success()
    );
    let rt = berth::runtime::Runtime::open(&root).unwrap();
    let info = rt.wait(&id).unwrap();
    assert_eq!(info.exit_code, 137);
    assert_eq!(state(&root)["status"], "stopped");
    assert!(
        berth(&root)
            .args(["delete", id.as_str()])
            .status()
            .unwrap()
            .success()
    );
    assert!(!root.join("containers").join(id.as_str()).exists());
    assert!(fixture::cgroup_dirs(&id).is_empty());
}

#[test]
fn run_with_a_terminal_proxies_stdio() {
    if !support::require_root() {
        return;
    }
    use std::io::{Read, Write};
    let env = Env::new();
    let id = fixture::id("cli-tty");
    let mut req = env.req(&id, "tty; read x; echo got:$x");
    req.tty = true;
    let b = fixture::bundle(&env.tmp.path().join("bundle"), &req);
    let mut child = berth(&env.tmp.path().join("cli-root"))
        .arg("run")
        .arg("--bundle")
        .arg(&b)
        .arg(id.as_str())
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(b"hi\n").unwrap();
    let mut out = String::new();
    child
        .stdout
        .take()
        .unwrap()
        .read_to_string(&mut out)
        .unwrap();
    assert!(child.wait().unwrap().success());
    assert!(out.contains("/dev/pts/0"), "{out:?}");
    assert!(out.contains("got:hi"), "{out:?}");
}

#[test]
fn create_with_console_socket_sends_the_pty_master() {
    if !support::require_root() {
        return;
    }
    use std::io::Read;
    let env = Env::new();
    let id = fixture::id("cli-console");
    let mut req = env.req(&id, "echo hello-console");
    req.tty = true;
    let b = fixture::bundle(&env.tmp.path().join("bundle"), &req);
    let sock = env.tmp.path().join("console.sock");
    let listener = std::os::unix::net::UnixListener::bind(&sock).unwrap();
    let receiver = std::thread::spawn(move || {
        let (s, _) = listener.accept().unwrap();
        berth::runtime::exec::recv_fd(&s).unwrap()
    });
    let root = env.tmp.path().join("cli-root");
    let st = berth(&root)
        .args(["create", "--bundle"])
        .arg(&b)
        .arg("--console-socket")
        .arg(&sock)
        .arg(id.as_str())
        .status()
        .unwrap();
    assert!(st.success());
    let master = receiver.join().unwrap();
    assert!(
        berth(&root)
            .args(["start", id.as_str()])
            .status()
            .unwrap()
            .success()
    );
    let mut m = std::fs::File::from(master);
    let mut out = Vec::new();
    let mut buf = [0u8; 1024];
    while !String::from_utf8_lossy(&out).contains("hello-console") {
        match m.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => out.extend_from_slice(&buf[..n]),
        }
    }
    assert!(String::from_utf8_lossy(&out).contains("hello-console"));
    let wait = berth(&root).args(["wait", id.as_str()]).output().unwrap();
    assert_eq!(String::from_utf8_lossy(&wait.stdout).trim(), "0");
    assert!(
        berth(&root)
            .args(["delete", id.as_str()])
            .status()
            .unwrap()
            .success()
    );
}

#[test]
fn run_forwards_signals_and_reports_the_exit_code() {
    if !support::require_root() {
        return;
    }
    use std::io::{BufRead, BufReader};
    let env = Env::new();
    let id = fixture::id("cli-sig");
    let req = env.req(
        &id,
        "trap 'exit 9' TERM; echo ready; while true; do sleep 1; done",
    );
    let b = fixture::bundle(&env.tmp.path().join("bundle"), &req);
    let mut child = berth(&env.tmp.path().join("cli-root"))
        .arg("run")
        .arg("--bundle")
        .arg(&b)
        .arg(id.as_str())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    assert_eq!(line, "ready\n");
    assert!(
        Command::new("kill")
            .args(["-TERM", &child.id().to_string()])
            .status()
            .unwrap()
            .success()
    );
    assert_eq!(child.wait().unwrap().code(), Some(9));
}
