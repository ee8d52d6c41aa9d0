//! What a container can and cannot do: capabilities, seccomp, cgroup limits, masked and
//! read-only paths, bind mounts.

use berth::runtime::{BindMount, SeccompChoice};

use crate::fixture::{self, Env};
use crate::support;

fn status_field(out: &str, key: &str) -> String {
    out.lines()
        .find(|l| l.starts_with(key))
        .and_then(|l| l.split_whitespace().nth(1))
        .unwrap_or("")
        .to_string()
}

#[test]
fn default_capability_set_is_dockers() {
    if !support::require_root() {
        return;
    }
    let env = Env::new();
    let id = fixture::id("caps");
    let (code, out) = env.run(&env.req(
        &id,
        "grep -E '^(Cap|Seccomp:|NoNewPrivs)' /proc/self/status",
    ));
    assert_eq!(code, 0, "{out}");
    for k in ["CapEff:", "CapPrm:", "CapBnd:"] {
        assert_eq!(status_field(&out, k), "00000000a80425fb", "{k} in {out}");
    }
    assert_eq!(status_field(&out, "CapInh:"), "0000000000000000");
    assert_eq!(status_field(&out, "Seccomp:"), "2", "seccomp filter mode");
    assert_eq!(status_field(&out, "NoNewPrivs:"), "0");

    let id = fixture::id("caps-drop");
    let mut req = env.req(&id, "grep ^CapEff /proc/self/status");
    req.cap_drop = vec!["ALL".into()];
    req.cap_add = vec!["NET_BIND_SERVICE".into()];
    req.no_new_privileges = true;
    let (_, out) = env.run(&req);
    assert_eq!(status_field(&out, "CapEff:"), "0000000000000400");
}

#[test]
fn seccomp_blocks_unshare_but_unconfined_allows_it() {
    if !support::require_root() {
        return;
    }
    let env = Env::new();
    // Creating a user namespace needs no capability: only the seccomp profile stops it.
    let script = "unshare -U true && echo allowed || echo blocked";
    let id = fixture::id("seccomp");
    let (_, out) = env.run(&env.req(&id, script));
    assert!(out.contains("blocked"), "{out}");
    assert!(out.contains("Operation not permitted"), "{out}");
    let id = fixture::id("unconfined");
    let mut req = env.req(&id, script);
    req.seccomp = SeccompChoice::Unconfined;
    let (_, out) = env.run(&req);
    assert!(out.contains("allowed"), "{out}");
}

#[test]
fn memory_limit_oom_kills_and_is_reported() {
    if !support::require_root() {
        return;
    }
    let env = Env::new();
    let id = fixture::id("oom");
    // tail buffers the "line" forever: /dev/zero has no newline.
    let mut req = env.req(&id, "tail /dev/zero");
    req.memory = Some(32 << 20);
    req.memory_swap = Some(32 << 20);
    env.rt.create(&req).unwrap();
    let cg = std::path::Path::new("/sys/fs/cgroup/memory/berth")
        .join(id.as_str())
        .join("memory.limit_in_bytes");
    assert_eq!(
        std::fs::read_to_string(&cg).unwrap().trim(),
        (32u64 << 20).to_string()
    );
    env.rt.start(&id).unwrap();
    let info = env.rt.wait(&id).unwrap();
    assert_eq!(info.exit_code, 137);
    assert!(info.oom_killed, "OOM kill reported");
    assert!(env.rt.state(&id).unwrap().oom_killed);
    env.rt.remove(&id, false).unwrap();
}

#[test]
fn pids_limit_stops_forks() {
    if !support::require_root() {
        return;
    }
    let env = Env::new();
    let id = fixture::id("pids");
    let mut req = env.req(&id, "for i in 1 2 3 4 5 6 7 8; do sleep 2 & done; wait");
    req.pids_limit = Some(4);
    env.rt.create(&req).unwrap();
    let max = std::path::Path::new("/sys/fs/cgroup/pids/berth")
        .join(id.as_str())
        .join("pids.max");
    assert_eq!(std::fs::read_to_string(&max).unwrap().trim(), "4");
    env.rt.start(&id).unwrap();
    env.rt.wait(&id).unwrap();
    let out = env.log_text(&id);
    assert!(
        out.contains("can't fork") && out.contains("Resource temporarily unavailable"),
        "{out}"
    );
    env.rt.remove(&id, false).unwrap();
}

#[test]
fn masked_and_readonly_paths() {
    if !support::require_root() {
        return;
    }
    let env = Env::new();
    let id = fixture::id("masked");
    let script = "wc -c < /proc/timer_list; ls /sys/firmware | wc -l; \
        echo 1 > /proc/sys/vm/drop_caches && echo sys-writable || echo sys-readonly; \
        touch /sys/fs/cgroup/x 2>/dev/null && echo cg-writable || echo cg-readonly";
    let (code, out) = env.run(&env.req(&id, script));
    assert_eq!(code, 0, "{out}");
    let lines: Vec<&str> = out
        .lines()
        .filter(|l| !l.contains("can't create") && !l.contains("Read-only"))
        .collect();
    assert_eq!(lines[0].trim(), "0", "/proc/timer_list masked: {out}");
    assert_eq!(lines[1].trim(), "0", "/sys/firmware masked: {out}");
    // Both are non-empty on the host, so the zeros come from the masks.
    assert!(!std::fs::read("/proc/timer_list").unwrap().is_empty());
    assert!(std::fs::read_dir("/sys/firmware").unwrap().next().is_some());
    assert!(out.contains("sys-readonly"), "{out}");
    assert!(out.contains("cg-readonly"), "{out}");
}

#[test]
fn read_only_rootfs_and_bind_mounts() {
    if !support::require_root() {
        return;
    }
    let env = Env::new();
    let host = env.tmp.path().join("hostdir");
    std::fs::create_dir(&host).unwrap();
    std::fs::write(host.join("greeting"), "hello from the host\n").unwrap();
    let rw = env.tmp.path().join("rwdir");
    std::fs::create_dir(&rw).unwrap();
    let id = fixture::id("robind");
    let script = "touch /newfile 2>&1 || true; cat /data/greeting; touch /data/x 2>&1 || true; \
        echo written > /out/file; touch /tmp/ok 2>&1 || true";
    let mut req = env.req(&id, script);
    req.read_only = true;
    req.binds.push(BindMount {
        source: host.clone(),
        destination: "/data".into(),
        readonly: true,
        propagation: None,
    });
    req.binds.push(BindMount {
        source: rw.clone(),
        destination: "/out".into(),
        readonly: false,
        propagation: None,
    });
    let (code, out) = env.run(&req);
    assert_eq!(code, 0, "{out}");
    assert!(
        out.contains("touch: /newfile: Read-only file system"),
        "{out}"
    );
    assert!(out.contains("hello from the host"), "{out}");
    assert!(
        out.contains("touch: /data/x: Read-only file system"),
        "{out}"
    );
    assert_eq!(
        std::fs::read_to_string(rw.join("file")).unwrap(),
        "written\n"
    );
    assert!(!host.join("x").exists());
}

#[test]
fn user_namespace_maps_container_root_to_an_unprivileged_host_uid() {
    if !support::require_root() {
        return;
    }
    let env = Env::new();
    let id = fixture::id("userns");
    let rootfs = env.tmp.path().join("rootfs");
    fixture::make_busybox_rootfs(&rootfs);
    assert!(
        std::process::Command::new("chown")
            .args(["-R", "200000:200000"])
            .arg(&rootfs)
            .status()
            .unwrap()
            .success()
    );
    let req = env.req(&id, "id -u; cat /proc/self/uid_map; touch /tmp/x && echo wrote; cat /proc/1/status | grep ^CapEff");
    let mut spec = req.to_spec(std::path::Path::new("/unused")).unwrap();
    spec.root = Some(berth::runtime::spec::Root {
        path: rootfs.clone(),
        readonly: false,
    });
    spec.annotations.clear();
    let l = spec.linux.as_mut().unwrap();
    l.namespaces.push(berth::runtime::spec::Namespace {
        kind: "user".into(),
        path: None,
    });
    let map = berth::runtime::spec::IdMapping {
        container_id: 0,
        host_id: 200000,
        size: 65536,
    };
    l.uid_mappings = vec![map];
    l.gid_mappings = vec![map];
    let bundle = env.tmp.path().join("bundle");
    std::fs::create_dir(&bundle).unwrap();
    std::fs::write(
        bundle.join("config.json"),
        serde_json::to_vec(&spec).unwrap(),
    )
    .unwrap();
    let out = std::process::Command::new(support::berth_bin())
        .args(["runtime", "--root"])
        .arg(env.tmp.path().join("cli"))
        .args(["run", "--bundle"])
        .arg(&bundle)
        .arg(id.as_str())
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout} {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(lines[0], "0", "root inside");
    assert_eq!(
        lines[1].split_whitespace().collect::<Vec<_>>(),
        vec!["0", "200000", "65536"]
    );
    assert_eq!(lines[2], "wrote");
    // The file belongs to the mapped host uid.
    use std::os::unix::fs::MetadataExt;
    assert_eq!(
        std::fs::metadata(rootfs.join("tmp/x")).unwrap().uid(),
        200000
    );
}

#[test]
fn overlay_rootfs_with_many_layers_is_mounted_inside_the_container_only() {
    if !support::require_root() {
        return;
    }
    let env = Env::new();
    let id = fixture::id("layers");
    let mut req = env.req(
        &id,
        "ls /layers | wc -l; cat /layers/f0 /layers/f63; echo new > /written",
    );
    let Some(berth::runtime::Rootfs::Overlay(o)) = &mut req.rootfs else {
        unreachable!()
    };
    // 64 layers with long paths: more than mount(2)'s one-page option string holds.
    let mut lowers = Vec::new();
    for i in 0..64 {
        let d = env
            .tmp
            .path()
            .join(format!("layer-{i:02}-{}", "x".repeat(60)));
        std::fs::create_dir_all(d.join("layers")).unwrap();
        std::fs::write(
            d.join("layers").join(format!("f{i}")),
            format!("layer {i}\n"),
        )
        .unwrap();
        lowers.push(d);
    }
    lowers.reverse();
    lowers.push(fixture::busybox_rootfs().to_path_buf());
    o.lowerdirs = lowers;
    let upper = o.upperdir.clone();
    let (code, out) = env.run(&req);
    assert_eq!(code, 0, "{out}");
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines[0].trim(), "64", "{out}");
    assert_eq!(lines[1], "layer 0");
    assert_eq!(lines[2], "layer 63");
    assert_eq!(
        std::fs::read_to_string(upper.join("written")).unwrap(),
        "new\n"
    );
    let mi = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    assert!(
        !mi.contains(&*upper.to_string_lossy()),
        "no overlay mount on the host"
    );
}

#[test]
fn cgroup_v1_limits_are_written() {
    if !support::require_root() {
        return;
    }
    let env = Env::new();
    let id = fixture::id("limits");
    let mut req = env.req(
        &id,
        "cat /sys/fs/cgroup/cpu/cpu.cfs_quota_us /sys/fs/cgroup/cpuset/cpuset.cpus",
    );
    req.cpus = Some(0.5);
    req.cpu_shares = Some(512);
    req.cpuset_cpus = Some("0".into());
    req.memory = Some(64 << 20);
    req.memory_swap = Some(96 << 20);
    env.rt.create(&req).unwrap();
    let read = |ctrl: &str, file: &str| {
        std::fs::read_to_string(
            std::path::Path::new("/sys/fs/cgroup")
                .join(ctrl)
                .join("berth")
                .join(id.as_str())
                .join(file),
        )
        .unwrap()
        .trim()
        .to_string()
    };
    assert_eq!(read("cpu", "cpu.cfs_quota_us"), "50000");
    assert_eq!(read("cpu", "cpu.cfs_period_us"), "100000");
    assert_eq!(read("cpu", "cpu.shares"), "512");
    assert_eq!(read("cpuset", "cpuset.cpus"), "0");
    assert_eq!(
        read("memory", "memory.limit_in_bytes"),
        (64u64 << 20).to_string()
    );
    if std::path::Path::new("/sys/fs/cgroup/memory/memory.memsw.limit_in_bytes").exists() {
        assert_eq!(
            read("memory", "memory.memsw.limit_in_bytes"),
            (96u64 << 20).to_string()
        );
    }
    assert_eq!(
        read("devices", "devices.list")
            .lines()
            .filter(|l| l.starts_with("a "))
            .count(),
        0,
        "deny-all by default"
    );
    env.rt.start(&id).unwrap();
    env.rt.wait(&id).unwrap();
    let out = env.log_text(&id);
    assert_eq!(
        out.lines().collect::<Vec<_>>(),
        vec!["50000", "0"],
        "the container sees its own cgroup"
    );
    env.rt.remove(&id, false).unwrap();
}

#[test]
fn privileged_gets_all_caps_host_devices_and_no_filters() {
    if !support::require_root() {
        return;
    }
    let env = Env::new();
    let id = fixture::id("priv");
    let mut req = env.req(&id, "grep -E '^(CapEff|Seccomp):' /proc/self/status; ls /dev; mount -t tmpfs none /mnt && echo mounted");
    req.privileged = true;
    let (code, out) = env.run(&req);
    assert_eq!(code, 0, "{out}");
    assert_eq!(status_field(&out, "Seccomp:"), "0");
    let host_caps = std::fs::read_to_string("/proc/self/status").unwrap();
    assert_eq!(
        status_field(&out, "CapEff:"),
        status_field(&host_caps, "CapBnd:"),
        "every capability the host has"
    );
    assert!(out.contains("mounted"), "{out}");
    // A host block/char device beyond the default set is there.
    let extra = std::fs::read_dir("/dev")
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .find(|n| n.starts_with("vd") || n.starts_with("sd") || n == "kmsg" || n == "mem");
    if let Some(dev) = extra {
        assert!(out.lines().any(|l| l == dev), "{dev} in {out}");
    }
}
