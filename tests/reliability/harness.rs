//! The reliability tests' tools: an engine root of their own driven through the `berth` CLI
//! (the embedded engine), seeded kill points, and the host-leak scan (mounts, cgroups,
//! processes, interfaces) for everything that root ever held.
#![allow(dead_code)]

use std::collections::BTreeSet;
use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant, SystemTime};

use crate::support::berth_bin;

/// A small xorshift, seeded from `BERTH_SEED` (to replay a failure) or the clock; the seed is
/// printed so any failure can be replayed.
pub struct Rng(u64);

impl Rng {
    pub fn new(what: &str) -> Rng {
        let seed = std::env::var("BERTH_SEED")
            .ok()
            .and_then(|s| s.parse::<u64>().ok())
            .unwrap_or_else(|| {
                SystemTime::now()
                    .duration_since(SystemTime::UNIX_EPOCH)
                    .unwrap()
                    .as_nanos() as u64
            })
            | 1;
        eprintln!("{what}: kill-point seed {seed} (replay with BERTH_SEED={seed})");
        Rng(seed)
    }

    pub fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    /// A duration in `[0, max)`.
    pub fn below(&mut self, max: Duration) -> Duration {
        let ms = max.as_millis().max(1) as u64;
        Duration::from_micros(self.next() % (ms * 1000))
    }
}

/// An engine state root of the test's own, in /var/tmp. On drop every container in it is
/// removed (force), so a failing test leaves no monitor, cgroup or interface behind.
pub struct Root {
    dir: tempfile::TempDir,
    /// Every container id this root was ever seen to hold (for the leak scan).
    pub seen: BTreeSet<String>,
}

/// The root's directories with an entry per container (or half-made one).
pub const PER_CONTAINER_DIRS: [&str; 3] = ["containers", "snapshots", "net/containers"];

/// The kinds of crash debris a `system check` reports, each a list.
pub const DEBRIS: &[&str] = &[
    "stale_temp",
    "half_layers",
    "orphan_snapshots",
    "half_containers",
    "orphan_networks",
];

impl Root {
    pub fn new() -> Root {
        Root {
            dir: tempfile::Builder::new()
                .prefix("berth-rel-")
                .tempdir_in("/var/tmp")
                .unwrap(),
            seen: BTreeSet::new(),
        }
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    pub fn cmd(&self, args: &[&str]) -> Command {
        let mut c = Command::new(berth_bin());
        c.arg("--root").arg(self.path()).args(args);
        c
    }

    pub fn run(&self, args: &[&str]) -> Output {
        self.cmd(args).stdin(Stdio::null()).output().unwrap()
    }

    /// Runs and asserts success; returns stdout.
    pub fn ok(&self, args: &[&str]) -> String {
        let out = self.run(args);
        assert!(
            out.status.success(),
            "berth {args:?} failed ({}):\n{}\n{}",
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// Runs and asserts failure; returns stderr.
    pub fn fails(&self, args: &[&str]) -> String {
        let out = self.run(args);
        assert!(
            !out.status.success(),
            "berth {args:?} should have failed:\n{}",
            String::from_utf8_lossy(&out.stdout)
        );
        String::from_utf8_lossy(&out.stderr).into_owned()
    }

    /// Starts a command in the background (stdio to /dev/null), for a kill point.
    pub fn spawn(&self, args: &[&str]) -> Child {
        self.cmd(args)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap()
    }

    /// `berth system check [--repair]`: the report; asserts the store is consistent.
    pub fn check(&self, repair: bool) -> serde_json::Value {
        let mut args = vec!["system", "check"];
        if repair {
            args.push("--repair");
        }
        let out = self.run(&args);
        let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
            panic!(
                "system check output: {e}: {}",
                String::from_utf8_lossy(&out.stderr)
            )
        });
        assert!(out.status.success(), "inconsistent store: {report:#}");
        report
    }

    /// Full ids of every container `ps -a` lists, recorded as seen.
    pub fn containers(&mut self) -> Vec<serde_json::Value> {
        let ids = self.ok(&["ps", "-a", "-q"]);
        let ids: Vec<&str> = ids.lines().filter(|l| !l.is_empty()).collect();
        if ids.is_empty() {
            return Vec::new();
        }
        let mut args = vec!["container", "inspect"];
        args.extend(&ids);
        let v: Vec<serde_json::Value> = serde_json::from_str(&self.ok(&args)).unwrap();
        for c in &v {
            self.seen.insert(c["Id"].as_str().unwrap().to_owned());
        }
        v
    }

    /// What the root's per-container directories hold, by directory (empty ones left out):
    /// once no container is left, nothing.
    pub fn container_dirs_left(&self) -> Vec<(&'static str, Vec<String>)> {
        PER_CONTAINER_DIRS
            .iter()
            .map(|sub| {
                let names: Vec<String> = std::fs::read_dir(self.path().join(sub))
                    .into_iter()
                    .flatten()
                    .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
                    .collect();
                (*sub, names)
            })
            .filter(|(_, names)| !names.is_empty())
            .collect()
    }

    /// Records the ids of whatever the root's directories name (also half-made containers the
    /// engine does not list).
    pub fn note_ids_on_disk(&mut self) {
        for sub in PER_CONTAINER_DIRS {
            for e in std::fs::read_dir(self.path().join(sub))
                .into_iter()
                .flatten()
            {
                let name = e.unwrap().file_name().to_string_lossy().into_owned();
                if name.len() == 64 && name.bytes().all(|b| b.is_ascii_hexdigit()) {
                    self.seen.insert(name);
                }
            }
        }
    }

    /// `system check --repair`, then a check that finds no [`DEBRIS`] left; how many items
    /// of it the repair removed.
    pub fn repair_debris(&self) -> usize {
        let repaired = self.check(true);
        let count = DEBRIS
            .iter()
            .map(|k| repaired[k].as_array().map_or(0, Vec::len))
            .sum();
        let report = self.check(false);
        for k in DEBRIS {
            assert_eq!(
                report[k].as_array().map(Vec::len),
                Some(0),
                "{k} left after a repair: {report:#}"
            );
        }
        count
    }

    /// Names of the bridges of this root's networks.
    pub fn bridges(&self) -> Vec<String> {
        let mut out = Vec::new();
        for e in std::fs::read_dir(self.path().join("net/networks"))
            .into_iter()
            .flatten()
        {
            let Ok(d) = std::fs::read(e.unwrap().path()) else {
                continue;
            };
            if let Ok(v) = serde_json::from_slice::<serde_json::Value>(&d)
                && let Some(b) = v["bridge"].as_str()
            {
                out.push(b.to_owned());
            }
        }
        out
    }

    /// Everything of this root left on the host: mounts under it, cgroups and interfaces of
    /// its containers, processes that name it or live in its containers' cgroups, and its
    /// bridges and NAT chains once its network state is torn down (which this does). Call
    /// once every container is removed: the answer must be empty.
    pub fn host_leaks(&mut self) -> Vec<String> {
        self.note_ids_on_disk();
        let root = self.path().to_string_lossy().into_owned();
        let mut leaks = Vec::new();
        let mountinfo = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
        for l in mountinfo.lines() {
            if l.split_whitespace()
                .nth(4)
                .is_some_and(|m| m.starts_with(&root))
            {
                leaks.push(format!("mount: {l}"));
            }
        }
        for ctrl in std::fs::read_dir("/sys/fs/cgroup").unwrap().flatten() {
            for id in &self.seen {
                let p = ctrl.path().join("berth").join(id);
                if p.exists() {
                    leaks.push(format!("cgroup: {}", p.display()));
                }
            }
        }
        for p in std::fs::read_dir("/proc").unwrap().flatten() {
            let name = p.file_name().to_string_lossy().into_owned();
            let Ok(pid) = name.parse::<i32>() else {
                continue;
            };
            if pid == std::process::id() as i32 {
                continue;
            }
            let cmdline = std::fs::read(p.path().join("cmdline")).unwrap_or_default();
            let cmdline = String::from_utf8_lossy(&cmdline).replace('\0', " ");
            let cwd = std::fs::read_link(p.path().join("cwd")).unwrap_or_default();
            let cgroup = std::fs::read_to_string(p.path().join("cgroup")).unwrap_or_default();
            if cmdline.contains(&root)
                || cwd.starts_with(self.path())
                || self.seen.iter().any(|id| cgroup.contains(id.as_str()))
            {
                leaks.push(format!("process {pid}: {cmdline}"));
            }
        }
        // The bridges and the NAT chains stay up between containers, until the root's network
        // state is torn down (before the root is deleted): that must work now (it is refused
        // while a container still has a network) and leave nothing.
        match berth::runtime::net::Net::open(self.path()) {
            Ok(n) => {
                if let Err(e) = n.teardown() {
                    leaks.push(format!("network teardown: {e}"));
                }
                let nat = Command::new("iptables-save")
                    .args(["-t", "nat"])
                    .output()
                    .unwrap();
                let nat = String::from_utf8_lossy(&nat.stdout);
                if let Some(l) = nat.lines().find(|l| l.contains(&n.chains().dnat)) {
                    leaks.push(format!("nat rule: {l}"));
                }
            }
            Err(e) => leaks.push(format!("network state: {e}")),
        }
        let links = Command::new("ip").args(["-o", "link"]).output().unwrap();
        let links = String::from_utf8_lossy(&links.stdout);
        let mut names: Vec<String> = self
            .seen
            .iter()
            .map(|id| format!("vb{}", &id[..11]))
            .collect();
        names.extend(self.bridges());
        for l in links.lines() {
            let Some(dev) = l.split(": ").nth(1) else {
                continue;
            };
            let dev = dev.split('@').next().unwrap_or(dev);
            if names.iter().any(|n| dev.starts_with(n.as_str())) {
                leaks.push(format!("interface: {dev}"));
            }
        }
        leaks
    }

    /// [`Root::host_leaks`] once the monitors of auto-removed containers, which tear down after
    /// `run --rm` returns, are done (polled up to 20 s).
    pub fn host_leaks_settled(&mut self) -> Vec<String> {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let leaks = self.host_leaks();
            if leaks.is_empty() || Instant::now() > deadline {
                return leaks;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Force-removes every container the engine lists.
    pub fn remove_all(&mut self) {
        for c in self.containers() {
            let id = c["Id"].as_str().unwrap().to_owned();
            self.ok(&["rm", "-f", &id]);
        }
    }
}

impl Drop for Root {
    fn drop(&mut self) {
        let ids = self.run(&["ps", "-a", "-q"]);
        for id in String::from_utf8_lossy(&ids.stdout).lines() {
            let _ = self.run(&["rm", "-f", id]);
        }
        // Monitors of containers the engine no longer lists (a failed test's debris).
        for p in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
            let cmdline = std::fs::read(p.path().join("cmdline")).unwrap_or_default();
            let cmdline = String::from_utf8_lossy(&cmdline).replace('\0', " ");
            if cmdline.contains("__monitor")
                && cmdline.contains(&*self.path().to_string_lossy())
                && let Ok(pid) = p.file_name().to_string_lossy().parse::<i32>()
            {
                let _ = Command::new("kill").args(["-9", &pid.to_string()]).status();
            }
        }
        if let Ok(n) = berth::runtime::net::Net::open(self.path()) {
            let _ = n.teardown();
        }
    }
}

/// Waits until `f` holds, up to `timeout`.
pub fn wait_for(what: &str, timeout: Duration, mut f: impl FnMut() -> bool) {
    let deadline = Instant::now() + timeout;
    while !f() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Kills (SIGKILL) `child` after `delay` unless it finished first; whether the kill landed.
pub fn kill_after(mut child: Child, delay: Duration) -> bool {
    // The kill point: a random moment in the life of the command (fault injection, not a wait).
    let deadline = Instant::now() + delay;
    loop {
        if child.try_wait().unwrap().is_some() {
            return false;
        }
        let now = Instant::now();
        if now >= deadline {
            break;
        }
        std::thread::sleep((deadline - now).min(Duration::from_millis(5)));
    }
    let landed = child.try_wait().unwrap().is_none();
    let _ = child.kill();
    let _ = child.wait();
    landed
}

/// How long a command takes when nothing interrupts it (to spread kill points over its life).
pub fn timed(f: impl FnOnce()) -> Duration {
    let t = Instant::now();
    f();
    t.elapsed()
}
