//! The container manager: monitor, logs, exec, stats, pause, stop, restart, re-adoption.

use std::io::{Read, Write};
use std::time::{Duration, Instant};

use berth::runtime::{
    ExecRequest, LogOptions, RestartPolicy, RuntimeError, Status, StdioMode, Stream, WinSize,
};

use crate::fixture::{self, Env};
use crate::support;

#[test]
fn logs_record_streams_and_follow() {
    if !support::require_root() {
        return;
    }
    let env = Env::new();
    let id = fixture::id("logs");
    env.rt
        .create(&env.req(
            &id,
            "echo out1; echo err1 >&2; read line; echo got:$line; echo out2",
        ))
        .map(drop)
        .unwrap_or_else(|e| panic!("{e}"));
    // open_stdin is off: `read` gets EOF at once.
    env.rt.start(&id).unwrap();
    let follow: Vec<_> = env
        .rt
        .logs(
            &id,
            LogOptions {
                follow: true,
                ..Default::default()
            },
        )
        .unwrap()
        .map(|e| e.unwrap())
        .collect();
    let text: Vec<(Stream, String)> = follow.iter().map(|e| (e.stream, e.log.clone())).collect();
    assert!(
        text.contains(&(Stream::Stdout, "out1\n".into())),
        "{text:?}"
    );
    assert!(
        text.contains(&(Stream::Stderr, "err1\n".into())),
        "{text:?}"
    );
    let last_out = text
        .iter()
        .rev()
        .find(|(s, _)| *s == Stream::Stdout)
        .unwrap();
    assert_eq!(last_out.1, "out2\n", "follow ends after the last line");
    let tail: Vec<_> = env
        .rt
        .logs(
            &id,
            LogOptions {
                tail: Some(1),
                stdout: true,
                ..Default::default()
            },
        )
        .unwrap()
        .map(|e| e.unwrap().log)
        .collect();
    assert_eq!(tail, vec!["out2\n"]);
    let err: Vec<_> = env
        .rt
        .logs(
            &id,
            LogOptions {
                stderr: true,
                ..Default::default()
            },
        )
        .unwrap()
        .map(|e| e.unwrap().log)
        .collect();
    assert_eq!(err, vec!["err1\n"]);
    assert!(follow.iter().all(|e| e.time.ends_with('Z')));
    env.rt.remove(&id, false).unwrap();
}

#[test]
fn attach_with_stdin() {
    if !support::require_root() {
        return;
    }
    let env = Env::new();
    let id = fixture::id("attach");
    let mut req = env.req(&id, "read line; echo got:$line");
    req.open_stdin = true;
    env.rt.create(&req).unwrap();
    let mut s = env.rt.attach(&id, true).unwrap();
    env.rt.start(&id).unwrap();
    s.write_all(b"hello\n").unwrap();
    let mut out = Vec::new();
    s.read_to_end(&mut out).unwrap();
    // Docker-style frame: stream 1, length, payload.
    assert_eq!(&out[..8], &[1, 0, 0, 0, 0, 0, 0, 10]);
    assert_eq!(&out[8..], b"got:hello\n");
    assert_eq!(env.rt.wait(&id).unwrap().exit_code, 0);
    env.rt.remove(&id, false).unwrap();
}

#[test]
fn exec_with_pty_and_resize_stats_top_pause() {
    if !support::require_root() {
        return;
    }
    let env = Env::new();
    let id = fixture::id("exec");
    env.rt.create(&env.req(&id, "exec sleep 1000")).unwrap();
    env.rt.start(&id).unwrap();

    // exec with a pty
    let req = ExecRequest {
        args: vec!["sh".into()],
        tty: true,
        size: Some(WinSize { rows: 24, cols: 80 }),
        ..Default::default()
    };
    let mut ex = env.rt.exec(&id, &req, StdioMode::Pty).unwrap();
    let master = ex.master.take().unwrap();
    let mut m = std::fs::File::from(master.try_clone().unwrap());
    ex.master = Some(master);
    m.write_all(b"tty; stty size; echo caps=$(grep CapEff /proc/self/status | cut -f2)\n")
        .unwrap();
    let mut seen = String::new();
    let mut buf = [0u8; 4096];
    while !seen.contains("caps=0") {
        let n = m.read(&mut buf).unwrap();
        seen.push_str(&String::from_utf8_lossy(&buf[..n]));
    }
    assert!(seen.contains("/dev/pts/"), "{seen}");
    assert!(seen.contains("24 80"), "{seen}");
    assert!(
        seen.contains("caps=00000000a80425fb"),
        "exec gets the container's caps: {seen}"
    );
    ex.resize(WinSize {
        rows: 50,
        cols: 132,
    })
    .unwrap();
    m.write_all(b"stty size; exit 3\n").unwrap();
    let mut rest = String::new();
    loop {
        match m.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => rest.push_str(&String::from_utf8_lossy(&buf[..n])),
        }
    }
    assert!(rest.contains("50 132"), "{rest}");
    assert_eq!(ex.wait().unwrap(), 3);

    // exec with pipes
    let req = ExecRequest {
        args: vec![
            "sh".into(),
            "-c".into(),
            "echo $$; cat /etc/hostname 2>/dev/null; hostname".into(),
        ],
        ..Default::default()
    };
    let ex = env.rt.exec(&id, &req, StdioMode::Pipes).unwrap();
    let out = ex.child.wait_with_output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success());
    assert_ne!(text.lines().next().unwrap(), "1", "exec is not pid 1");

    // top and stats
    let top = env.rt.top(&id).unwrap();
    assert!(
        top.processes.iter().any(|p| p.cmd == "sleep 1000"),
        "{top:?}"
    );
    let st = env.rt.stats(&id).unwrap();
    assert!(st.cgroup.pids_current >= 1);
    assert!(st.cgroup.memory_usage > 0);
    assert!(st.cgroup.cpu_usage_ns > 0);
    assert!(st.networks.contains_key("lo"));
    let samples: Vec<_> = env
        .rt
        .stats_stream(&id, Duration::from_millis(20))
        .take(2)
        .collect();
    assert_eq!(samples.len(), 2);

    // pause / unpause
    let s = env.rt.pause(&id).unwrap();
    assert_eq!(s.status, Status::Paused);
    let freezer = std::path::Path::new("/sys/fs/cgroup/freezer/berth")
        .join(id.as_str())
        .join("freezer.state");
    assert_eq!(std::fs::read_to_string(&freezer).unwrap().trim(), "FROZEN");
    assert!(matches!(
        env.rt.remove(&id, false),
        Err(RuntimeError::WrongState { .. })
    ));
    let s = env.rt.unpause(&id).unwrap();
    assert_eq!(s.status, Status::Running);
    assert_eq!(std::fs::read_to_string(&freezer).unwrap().trim(), "THAWED");

    env.rt.remove(&id, true).unwrap();
    assert!(fixture::cgroup_dirs(&id).is_empty());
}

#[test]
fn stop_escalates_to_sigkill_after_timeout() {
    if !support::require_root() {
        return;
    }
    let env = Env::new();
    let id = fixture::id("stop");
    env.rt
        .create(&env.req(
            &id,
            "trap '' TERM; echo ready; while true; do sleep 1; done",
        ))
        .unwrap();
    env.rt.start(&id).unwrap();
    fixture::eventually(10, "ready", || {
        env.log_text(&id).contains("ready").then_some(())
    });
    let t = Instant::now();
    let st = env.rt.stop(&id, Some(Duration::from_millis(700))).unwrap();
    let took = t.elapsed();
    assert_eq!(st.status, Status::Stopped);
    assert_eq!(st.exit_code, Some(137), "SIGKILL after the timeout");
    assert!(
        took >= Duration::from_millis(700) && took < Duration::from_secs(5),
        "{took:?}"
    );

    let id2 = fixture::id("stop2");
    env.rt
        .create(&env.req(
            &id2,
            "trap 'exit 42' TERM; echo ready; while true; do sleep 1; done",
        ))
        .unwrap();
    env.rt.start(&id2).unwrap();
    fixture::eventually(10, "ready", || {
        env.log_text(&id2).contains("ready").then_some(())
    });
    let t = Instant::now();
    let st = env.rt.stop(&id2, Some(Duration::from_secs(10))).unwrap();
    assert_eq!(st.exit_code, Some(42), "SIGTERM handled by the container");
    assert!(t.elapsed() < Duration::from_secs(5));
    // a stopped container starts again
    let st = env.rt.start(&id2).unwrap();
    assert_eq!(st.status, Status::Running);
    env.rt.remove(&id2, true).unwrap();
    env.rt.remove(&id, false).unwrap();
}

#[test]
fn restart_policy_on_failure_with_watch() {
    if !support::require_root() {
        return;
    }
    let env = Env::new();
    let mut watch = env.rt.watch().unwrap();
    let id = fixture::id("restart");
    let mut req = env.req(&id, "echo run; exit 3");
    req.restart = RestartPolicy::OnFailure {
        max_retries: Some(2),
    };
    env.rt.create(&req).unwrap();
    env.rt.start(&id).unwrap();
    // Follow the monitor's own state changes through the watcher until it gives up.
    let mut exits = 0;
    let mut final_state = None;
    for change in &mut watch {
        let change = change.unwrap();
        if change.id != id {
            continue;
        }
        let st = change.state.expect("not removed");
        if st.status == Status::Stopped {
            exits += 1;
            if st.monitor_pid.is_none() {
                final_state = Some(st);
                break;
            }
        }
    }
    let st = final_state.unwrap();
    assert_eq!(st.restart_count, 2);
    assert_eq!(st.exit_code, Some(3));
    // Intermediate states may be coalesced by the time the watcher reads them.
    assert!(exits >= 1);
    assert_eq!(env.log_text(&id).matches("run\n").count(), 3);
    env.rt.remove(&id, false).unwrap();
    let removed = watch.find(|c| {
        c.as_ref()
            .map(|c| c.id == id && c.state.is_none())
            .unwrap_or(false)
    });
    assert!(removed.is_some());
}

#[test]
fn engine_killed_mid_run_container_keeps_running_and_is_readopted() {
    if !support::require_root() {
        return;
    }
    let env = Env::new();
    let id = fixture::id("adopt");
    env.rt
        .create(&env.req(&id, "echo hi; exec sleep 1000"))
        .unwrap();
    env.rt.start(&id).unwrap();
    let before = env.rt.state(&id).unwrap();
    // An "engine" process holding the container (blocked in wait on its monitor) is killed.
    let mut engine = std::process::Command::new(support::berth_bin())
        .arg("runtime")
        .arg("--root")
        .arg(env.rt.root())
        .args(["wait", id.as_str()])
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    fixture::eventually(10, "engine connected to the monitor", || {
        let fds = std::fs::read_dir(format!("/proc/{}/fd", engine.id())).ok()?;
        fds.flatten()
            .any(|e| {
                std::fs::read_link(e.path())
                    .is_ok_and(|l| l.to_string_lossy().starts_with("socket:"))
            })
            .then_some(())
    });
    engine.kill().unwrap(); // SIGKILL
    engine.wait().unwrap();

    // A fresh runtime handle (the restarted engine) sees the exact state, and the container runs.
    let rt = berth::runtime::Runtime::open(env.rt.root())
        .unwrap()
        .with_exe(support::berth_bin());
    let st = rt.state(&id).unwrap();
    assert_eq!(st.status, Status::Running);
    assert_eq!(st.pid, before.pid);
    assert!(std::path::Path::new(&format!("/proc/{}", st.pid)).exists());
    let ex = rt
        .exec(
            &id,
            &ExecRequest {
                args: vec!["true".into()],
                ..Default::default()
            },
            StdioMode::Pipes,
        )
        .unwrap();
    assert!(ex.child.wait_with_output().unwrap().status.success());
    assert_eq!(rt.list().unwrap().iter().filter(|s| s.id == id).count(), 1);
    let monitor = st.monitor_pid.unwrap();
    rt.remove(&id, true).unwrap();
    // Nothing leaks: no monitor, no cgroup, no state, no mount.
    assert!(
        !std::path::Path::new(&format!("/proc/{monitor}")).exists() || {
            let s = std::fs::read_to_string(format!("/proc/{monitor}/stat")).unwrap_or_default();
            s.contains(") Z")
        }
    );
    assert!(fixture::cgroup_dirs(&id).is_empty());
    assert!(!env.rt.root().join("containers").join(id.as_str()).exists());
    let mi = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    assert!(!mi.contains(id.as_str()), "no mount left for the container");
}

#[test]
fn bad_requests_are_typed_errors_and_leave_nothing_behind() {
    if !support::require_root() {
        return;
    }
    let env = Env::new();
    let ghost = fixture::id("ghost");
    assert!(matches!(
        env.rt.state(&ghost),
        Err(RuntimeError::NotFound { .. })
    ));
    assert!(matches!(
        env.rt.start(&ghost),
        Err(RuntimeError::NotFound { .. })
    ));
    assert!(matches!(
        env.rt.remove(&ghost, true),
        Err(RuntimeError::NotFound { .. })
    ));

    let id = fixture::id("dup");
    env.rt.create(&env.req(&id, "exec sleep 1000")).unwrap();
    assert!(matches!(
        env.rt.create(&env.req(&id, "true")),
        Err(RuntimeError::AlreadyExists { .. })
    ));
    env.rt.start(&id).unwrap();
    assert!(matches!(
        env.rt.start(&id),
        Err(RuntimeError::WrongState { .. })
    ));
    assert!(matches!(
        env.rt.remove(&id, false),
        Err(RuntimeError::WrongState { .. })
    ));
    env.rt.remove(&id, true).unwrap();

    // A command that does not exist: create fails, and no state, cgroup or monitor is left.
    let id = fixture::id("noexe");
    let mut req = env.req(&id, "");
    req.args = vec!["/no/such/binary".into()];
    env.rt.create(&req).unwrap();
    let err = env.rt.start(&id).unwrap_err();
    assert!(err.to_string().contains("/no/such/binary"), "{err}");
    let st = env.rt.state(&id).unwrap();
    assert_eq!(st.status, Status::Stopped);
    env.rt.remove(&id, false).unwrap();
    assert!(fixture::cgroup_dirs(&id).is_empty());

    let id = fixture::id("badbind");
    let mut req = env.req(&id, "true");
    req.binds.push(berth::runtime::BindMount {
        source: "/no/such/dir".into(),
        destination: "/x".into(),
        readonly: false,
        propagation: None,
    });
    let err = env.rt.create(&req).unwrap_err();
    assert!(err.to_string().contains("/no/such/dir"), "{err}");
    assert!(!env.rt.root().join("containers").join(id.as_str()).exists());
    assert!(fixture::cgroup_dirs(&id).is_empty());
}

#[test]
fn monitor_killed_container_still_controllable_and_cleaned_up() {
    if !support::require_root() {
        return;
    }
    let env = Env::new();
    let id = fixture::id("orphan");
    env.rt.create(&env.req(&id, "exec sleep 1000")).unwrap();
    env.rt.start(&id).unwrap();
    let st = env.rt.state(&id).unwrap();
    let monitor = st.monitor_pid.unwrap();
    assert!(
        std::process::Command::new("kill")
            .args(["-KILL", &monitor.to_string()])
            .status()
            .unwrap()
            .success()
    );
    fixture::eventually(10, "monitor gone", || {
        let s = std::fs::read_to_string(format!("/proc/{monitor}/stat")).unwrap_or_default();
        (s.is_empty() || s.contains(") Z")).then_some(())
    });
    // The container outlives its monitor and is still reported running.
    let st2 = env.rt.state(&id).unwrap();
    assert_eq!(st2.status, Status::Running);
    assert_eq!(st2.pid, st.pid);
    // Stop falls back to signalling the init through a pidfd.
    let t = Instant::now();
    let st3 = env.rt.stop(&id, Some(Duration::from_millis(300))).unwrap();
    assert_eq!(st3.status, Status::Stopped);
    assert!(t.elapsed() < Duration::from_secs(10));
    assert!(
        !std::path::Path::new(&format!("/proc/{}", st.pid)).exists() || {
            let s = std::fs::read_to_string(format!("/proc/{}/stat", st.pid)).unwrap_or_default();
            s.is_empty() || s.contains(") Z")
        }
    );
    env.rt.remove(&id, false).unwrap();
    assert!(
        fixture::cgroup_dirs(&id).is_empty(),
        "the dead monitor's cgroup is removed too"
    );
}
