//! Load: many containers at once with the console on them, and many API clients at once.
//!
//! - `two_hundred_containers_and_a_responsive_console`: N containers (200) started at once with
//!   `berth run -d`, the real console under tmux on that root: key latency (key sent to its
//!   effect on the screen) and frame times (`BERTH_FRAME_LOG`), then all removed at once while
//!   the console watches; nothing may be left (monitors, cgroups, mounts).
//! - `fifty_api_clients_run_and_remove_with_no_error_and_no_leak`: C clients (50) doing
//!   `docker run --rm`-like loops against `berth serve` over raw HTTP on its unix socket for a
//!   bounded time; no error, nothing left, the server's fd count flat.
//!
//! Bounded by default (a minute or two each on a 2-core machine); longer soak runs through the
//! environment (tests/bench.sh `load` does): `BERTH_LOAD_CONTAINERS` (200), `BERTH_LOAD_WORKERS`
//! (concurrent `berth` commands, 8), `BERTH_LOAD_KEY_ROUNDS` (5), `BERTH_LOAD_CLIENTS` (50),
//! `BERTH_LOAD_SECS` (API loop duration, 20). Figures are printed as `LOAD <name> <value>` lines.

#[path = "../support/images.rs"]
mod images;
#[path = "../support/registry.rs"]
mod registry;
#[path = "../support/mod.rs"]
mod support;

use std::collections::BTreeSet;
use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};
use support::tmux::Tmux;

const T: Duration = Duration::from_secs(60);

/// One load test at a time: each measures the machine it loads.
static SERIAL: Mutex<()> = Mutex::new(());

fn one_at_a_time() -> std::sync::MutexGuard<'static, ()> {
    SERIAL.lock().unwrap_or_else(|p| p.into_inner())
}

fn env_num(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn figure(name: &str, value: impl std::fmt::Display) {
    eprintln!("LOAD {name} {value}");
}

/// Nearest-rank percentiles of a sample, in its unit.
struct Summary {
    n: usize,
    p50: f64,
    p95: f64,
    p99: f64,
    max: f64,
}

fn summary(samples: &[f64]) -> Summary {
    let mut v = samples.to_vec();
    v.sort_by(|a, b| a.total_cmp(b));
    let at = |p: f64| {
        if v.is_empty() {
            return f64::NAN;
        }
        let rank = ((p / 100.0) * v.len() as f64).ceil() as usize;
        v[rank.clamp(1, v.len()) - 1]
    };
    Summary {
        n: v.len(),
        p50: at(50.0),
        p95: at(95.0),
        p99: at(99.0),
        max: v.last().copied().unwrap_or(f64::NAN),
    }
}

fn report(name: &str, unit: &str, samples: &[f64]) -> Summary {
    let s = summary(samples);
    figure(
        name,
        format!(
            "n={} p50={:.1}{unit} p95={:.1}{unit} p99={:.1}{unit} max={:.1}{unit}",
            s.n, s.p50, s.p95, s.p99, s.max
        ),
    );
    s
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

/// Runs `f(i)` for `i in 0..n` on `workers` threads at once; results in index order.
fn parallel<T: Send>(n: usize, workers: usize, f: impl Fn(usize) -> T + Sync) -> Vec<T> {
    let next = AtomicUsize::new(0);
    let out: Mutex<Vec<Option<T>>> = Mutex::new((0..n).map(|_| None).collect());
    std::thread::scope(|s| {
        for _ in 0..workers.max(1) {
            s.spawn(|| {
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    if i >= n {
                        break;
                    }
                    let r = f(i);
                    out.lock().unwrap()[i] = Some(r);
                }
            });
        }
    });
    out.into_inner()
        .unwrap()
        .into_iter()
        .map(|r| r.expect("every index ran"))
        .collect()
}

/// A private state root; whatever containers it still has are removed on drop, however the
/// test ends.
struct Root {
    dir: tempfile::TempDir,
    path: PathBuf,
}

impl Root {
    fn new() -> Self {
        let dir = registry::tempdir();
        let path = dir.path().join("root");
        std::fs::create_dir(&path).unwrap();
        // The engine canonicalises the root; so do we, to find it in cmdlines and mounts.
        let path = std::fs::canonicalize(&path).unwrap();
        Self { dir, path }
    }

    fn berth(&self, args: &[&str]) -> Output {
        Command::new(support::berth_bin())
            .arg("--root")
            .arg(&self.path)
            .args(args)
            .stdin(Stdio::null())
            .output()
            .unwrap()
    }

    #[track_caller]
    fn ok(&self, args: &[&str]) -> String {
        let o = self.berth(args);
        assert!(
            o.status.success(),
            "berth {args:?} failed: {}",
            String::from_utf8_lossy(&o.stderr)
        );
        String::from_utf8_lossy(&o.stdout).into_owned()
    }

    fn all_ids(&self) -> Vec<String> {
        let o = self.berth(&["ps", "-aq"]);
        String::from_utf8_lossy(&o.stdout)
            .split_whitespace()
            .map(str::to_owned)
            .collect()
    }
}

impl Drop for Root {
    fn drop(&mut self) {
        let ids = self.all_ids();
        for chunk in ids.chunks(50) {
            let mut args = vec!["rm", "-f"];
            args.extend(chunk.iter().map(String::as_str));
            let _ = self.berth(&args);
        }
    }
}

// ---- what a removed container may not leave behind ------------------------------------------

/// The command lines of the engine's helper processes (monitors, exec helpers) for `root`.
fn helpers_of(root: &Path) -> Vec<(u32, Vec<String>)> {
    let root = root.to_string_lossy();
    let mut out = Vec::new();
    for e in std::fs::read_dir("/proc").unwrap().flatten() {
        let Some(pid) = e.file_name().to_str().and_then(|p| p.parse::<u32>().ok()) else {
            continue;
        };
        let Ok(raw) = std::fs::read(e.path().join("cmdline")) else {
            continue;
        };
        let args: Vec<String> = raw
            .split(|b| *b == 0)
            .map(|a| String::from_utf8_lossy(a).into_owned())
            .collect();
        if args.len() > 2
            && (args[1] == "__monitor" || args[1] == "__exec")
            && args[2] == root.as_ref()
        {
            out.push((pid, args));
        }
    }
    out
}

/// The container ids the running monitors of `root` serve.
fn monitored_ids(root: &Path) -> BTreeSet<String> {
    helpers_of(root)
        .into_iter()
        .filter(|(_, a)| a[1] == "__monitor" && a.len() > 3)
        .map(|(_, a)| a[3].clone())
        .collect()
}

/// Cgroup directories (`/sys/fs/cgroup/<hierarchy>/berth/<id>`) of any of `ids` still there.
fn cgroups_of(ids: &[String]) -> Vec<PathBuf> {
    let mut left = Vec::new();
    for h in std::fs::read_dir("/sys/fs/cgroup").unwrap().flatten() {
        for id in ids {
            let p = h.path().join("berth").join(id);
            if p.exists() {
                left.push(p);
            }
        }
    }
    left
}

/// Mount points at or under `dir` in the host's mount namespace.
fn mounts_under(dir: &Path) -> Vec<String> {
    let d = dir.to_string_lossy();
    std::fs::read_to_string("/proc/self/mountinfo")
        .unwrap()
        .lines()
        .filter_map(|l| l.split(' ').nth(4))
        .filter(|m| m.starts_with(d.as_ref()))
        .map(str::to_owned)
        .collect()
}

/// Children of `pid` that exited and were never reaped.
fn zombie_children(pid: u32) -> Vec<u32> {
    let mut out = Vec::new();
    for e in std::fs::read_dir("/proc").unwrap().flatten() {
        let Some(p) = e.file_name().to_str().and_then(|p| p.parse::<u32>().ok()) else {
            continue;
        };
        let Ok(stat) = std::fs::read_to_string(e.path().join("stat")) else {
            continue;
        };
        // "pid (comm) S ppid …": comm may hold spaces, so split after its closing paren
        let Some(rest) = stat.rsplit_once(") ").map(|(_, r)| r) else {
            continue;
        };
        let mut f = rest.split(' ');
        let (state, ppid) = (f.next(), f.next().and_then(|p| p.parse::<u32>().ok()));
        if state == Some("Z") && ppid == Some(pid) {
            out.push(p);
        }
    }
    out
}

fn fd_count(pid: u32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/fd"))
        .map(|d| d.count())
        .unwrap_or(0)
}

/// Waits (bounded) until `root` has no helper processes, `ids` no cgroups and `root` no mounts;
/// panics with what is left.
#[track_caller]
fn assert_nothing_left(root: &Path, ids: &[String]) {
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let (h, c, m) = (helpers_of(root), cgroups_of(ids), mounts_under(root));
        if h.is_empty() && c.is_empty() && m.is_empty() {
            let containers = std::fs::read_dir(root.join("containers")).unwrap().count();
            assert_eq!(containers, 0, "container directories left in {root:?}");
            return;
        }
        assert!(
            Instant::now() < deadline,
            "left behind: {} helper processes {h:?}, {} cgroups {c:?}, {} mounts {m:?}",
            h.len(),
            c.len(),
            m.len()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

// ---- 1. many containers, the console on them --------------------------------------------------

/// The first container name (`ld-NNNN`) on a screen, in reading order: the top row of the list
/// (compared instead of every row shown: how many rows fit can change with the status line).
fn first_name_on(screen: &str) -> Option<String> {
    screen
        .split(|c: char| c.is_whitespace() || c == '│')
        .find(|w| {
            w.strip_prefix("ld-")
                .is_some_and(|n| n.len() == 4 && n.bytes().all(|b| b.is_ascii_digit()))
        })
        .map(str::to_owned)
}

/// Sends `keys` and waits until the screen satisfies `pred`: the time from the key to its
/// effect on the screen (tmux round trips included, polled every few ms).
fn key_latency(t: &Tmux, keys: &[&str], what: &str, pred: impl Fn(&str) -> bool) -> Duration {
    let sent = Instant::now();
    t.send(keys);
    let deadline = sent + T;
    loop {
        let s = t.screen();
        if pred(&s) {
            return sent.elapsed();
        }
        assert!(
            Instant::now() < deadline,
            "no effect of {keys:?} ({what}) within {T:?}; screen:\n{s}"
        );
        std::thread::sleep(Duration::from_millis(3));
    }
}

#[test]
fn two_hundred_containers_and_a_responsive_console() {
    if !support::require_root() {
        return;
    }
    let _serial = one_at_a_time();
    let n = env_num("BERTH_LOAD_CONTAINERS", 200);
    let workers = env_num("BERTH_LOAD_WORKERS", 8);
    let rounds = env_num("BERTH_LOAD_KEY_ROUNDS", 5);
    let image = images::busybox_image();
    let root = Root::new();
    root.ok(&["pull", &image]);

    // N containers, created and started `workers` at a time.
    let began = Instant::now();
    let runs = parallel(n, workers, |i| {
        let t = Instant::now();
        let name = format!("ld-{i:04}");
        let o = root.berth(&[
            "run",
            "-d",
            "--network",
            "none",
            "--name",
            &name,
            &image,
            "sleep",
            "3600",
        ]);
        let id = String::from_utf8_lossy(&o.stdout).trim().to_owned();
        if o.status.success() && !id.is_empty() {
            Ok((id, t.elapsed()))
        } else {
            Err(format!("{name}: {}", String::from_utf8_lossy(&o.stderr)))
        }
    });
    let took = began.elapsed();
    let failed: Vec<&String> = runs.iter().filter_map(|r| r.as_ref().err()).collect();
    assert!(
        failed.is_empty(),
        "{} runs failed: {failed:?}",
        failed.len()
    );
    let ids: Vec<String> = runs.iter().flatten().map(|(id, _)| id.clone()).collect();
    let run_ms: Vec<f64> = runs.iter().flatten().map(|(_, d)| ms(*d)).collect();
    figure("containers", n);
    figure(
        "run_-d_all",
        format!(
            "{:.1}s ({:.1} containers/s, {workers} at once)",
            took.as_secs_f64(),
            n as f64 / took.as_secs_f64()
        ),
    );
    report("run_-d_each", "ms", &run_ms);

    // The engine agrees: all N running, each with its own monitor.
    let running: BTreeSet<String> = root
        .ok(&["ps", "-q"])
        .split_whitespace()
        .map(str::to_owned)
        .collect();
    let short: BTreeSet<String> = ids.iter().map(|id| id[..12].to_owned()).collect();
    assert_eq!(
        running, short,
        "ps -q lists exactly the N started, all running"
    );
    let want: BTreeSet<String> = ids.iter().cloned().collect();
    assert_eq!(monitored_ids(&root.path), want, "one monitor per container");

    // The console on that root, with its frame times logged.
    let frames = root.dir.path().join("frames.log");
    let cmd = format!(
        "BERTH_FRAME_LOG={} {} --root {}; echo CONSOLE-EXITED-$?; sleep 600",
        frames.display(),
        support::berth_bin().display(),
        root.path.display()
    );
    let start = Instant::now();
    let t = Tmux::start(&format!("load-{}", std::process::id()), 160, 50, &cmd);
    let title = format!("Containers ({n} all)");
    let first = t.wait_text(&title, T);
    figure(
        "console_first_full_list_ms",
        format!("{:.0}", ms(start.elapsed())),
    );
    let top = first_name_on(&first);
    assert!(top.is_some(), "no container rows on the screen:\n{first}");

    // Key latency: Bottom/Top (the rows shown change), and a filter typed key by key (each
    // key narrows the list and shows in the title), then Esc (cleared).
    let (mut nav, mut typing, mut clear) = (Vec::new(), Vec::new(), Vec::new());
    for r in 0..rounds {
        nav.push(ms(key_latency(&t, &["G"], "bottom", |s| {
            first_name_on(s).is_some_and(|f| Some(f) != top)
        })));
        nav.push(ms(key_latency(&t, &["g"], "top", |s| {
            first_name_on(s) == top
        })));
        let target = format!("ld-{:04}", (r * 37 + 11) % n);
        t.send(&["/"]);
        for k in 1..=target.len() {
            let prefix = &target[..k];
            let shown = format!("all) /{prefix}");
            typing.push(ms(key_latency(
                &t,
                &["-l", &target[k - 1..k]],
                "filter",
                |s| s.contains(&shown),
            )));
        }
        let one = format!("Containers (1 all) /{target}");
        assert!(t.screen().contains(&one), "the filter narrows to {target}");
        clear.push(ms(key_latency(&t, &["Escape"], "clear filter", |s| {
            s.contains(&title) && !s.contains("all) /")
        })));
    }
    let nav = report("key_latency_G_g", "ms", &nav);
    let typing = report("key_latency_filter_typing", "ms", &typing);
    report("key_latency_esc_clear", "ms", &clear);

    // Everything removed at once while the console watches; it follows. Meanwhile a filter
    // is typed and cleared over and over: the keys' latency while events pour in.
    let began = Instant::now();
    let removing = std::sync::atomic::AtomicBool::new(true);
    let mut busy = Vec::new();
    let removed = std::thread::scope(|s| {
        let rm = s.spawn(|| {
            let r = parallel(ids.len(), workers, |i| {
                let o = root.berth(&["rm", "-f", &ids[i]]);
                o.status
                    .success()
                    .then_some(())
                    .ok_or_else(|| format!("{}: {}", ids[i], String::from_utf8_lossy(&o.stderr)))
            });
            removing.store(false, Ordering::SeqCst);
            r
        });
        while removing.load(Ordering::SeqCst) {
            t.send(&["/"]);
            for (k, c) in ["l", "d", "-", "0"].iter().enumerate() {
                let shown = format!(") /{}", &"ld-0"[..=k]);
                busy.push(ms(key_latency(
                    &t,
                    &["-l", c],
                    "filter while removing",
                    |s| s.contains(&shown),
                )));
            }
            busy.push(ms(key_latency(
                &t,
                &["Escape"],
                "clear while removing",
                |s| s.contains("Containers (") && !s.contains(") /"),
            )));
        }
        rm.join().unwrap()
    });
    let rm_took = began.elapsed();
    let busy = report("key_latency_while_removing", "ms", &busy);
    let failed: Vec<&String> = removed.iter().filter_map(|r| r.as_ref().err()).collect();
    assert!(
        failed.is_empty(),
        "{} rm -f failed: {failed:?}",
        failed.len()
    );
    figure(
        "rm_-f_all",
        format!(
            "{:.1}s ({:.1} containers/s)",
            rm_took.as_secs_f64(),
            n as f64 / rm_took.as_secs_f64()
        ),
    );
    let after = Instant::now();
    t.wait_text("No containers.", T);
    figure(
        "console_empty_after_last_rm_ms",
        format!("{:.0}", ms(after.elapsed())),
    );
    t.send(&["q"]);
    t.wait_text("CONSOLE-EXITED-0", T);

    let frame_ms: Vec<f64> = std::fs::read_to_string(&frames)
        .expect("the console wrote its frame log")
        .lines()
        .map(|l| l.parse::<f64>().expect("microseconds per line") / 1000.0)
        .collect();
    let frame = report("frame_time", "ms", &frame_ms);

    assert!(root.all_ids().is_empty(), "containers left in the engine");
    assert_nothing_left(&root.path, &ids);

    // Generous bounds for a loaded 2-core machine with a debug build; the figures above are
    // what matters, the bounds catch a console that stalls.
    assert!(nav.p95 < 500.0, "G/g p95 {:.0} ms", nav.p95);
    assert!(typing.p95 < 500.0, "filter typing p95 {:.0} ms", typing.p95);
    assert!(
        busy.p95 < 500.0,
        "keys while removing p95 {:.0} ms",
        busy.p95
    );
    assert!(frame.p95 < 250.0, "frame time p95 {:.0} ms", frame.p95);
}

// ---- 2. many API clients ---------------------------------------------------------------------

/// `berth serve` on a private root and socket, stopped on drop (before the root cleans up).
struct Serve {
    child: Child,
    socket: PathBuf,
    log: PathBuf,
}

impl Serve {
    fn start(root: &Root) -> Self {
        let socket = root.dir.path().join("berth.sock");
        let log = root.dir.path().join("serve.log");
        let child = Command::new(support::berth_bin())
            .arg("--root")
            .arg(&root.path)
            .arg("serve")
            .arg("--socket")
            .arg(&socket)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .unwrap();
        let mut s = Self { child, socket, log };
        let deadline = Instant::now() + T;
        while UnixStream::connect(&s.socket).is_err() {
            if let Some(st) = s.child.try_wait().unwrap() {
                panic!("berth serve exited ({st}):\n{}", s.log());
            }
            assert!(Instant::now() < deadline, "berth serve did not listen");
            std::thread::sleep(Duration::from_millis(20));
        }
        s
    }

    fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    fn pid(&self) -> u32 {
        self.child.id()
    }
}

impl Drop for Serve {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// One HTTP/1.1 request on a fresh connection (`Connection: close`).
fn send(socket: &Path, method: &str, path: &str, body: Option<&str>) -> Result<UnixStream, String> {
    let mut c = UnixStream::connect(socket).map_err(|e| format!("connect: {e}"))?;
    c.set_read_timeout(Some(T)).unwrap();
    let body = body.unwrap_or("");
    let req = format!(
        "{method} /v1.44{path} HTTP/1.1\r\nHost: berth\r\nConnection: close\r\n\
         Content-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    );
    c.write_all(req.as_bytes())
        .map_err(|e| format!("{method} {path}: write: {e}"))?;
    Ok(c)
}

/// Reads the status line and headers; returns the status, whether the body is chunked, and
/// what was read past the headers.
fn read_head(c: &mut UnixStream, what: &str) -> Result<(u16, bool, Vec<u8>), String> {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    loop {
        if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&buf[..end]).to_ascii_lowercase();
            let status = head
                .split(' ')
                .nth(1)
                .and_then(|s| s.parse().ok())
                .ok_or_else(|| format!("{what}: bad status line in {head:?}"))?;
            let chunked = head.contains("transfer-encoding: chunked");
            return Ok((status, chunked, buf[end + 4..].to_vec()));
        }
        let k = c
            .read(&mut chunk)
            .map_err(|e| format!("{what}: read: {e}"))?;
        if k == 0 {
            return Err(format!(
                "{what}: connection closed in the headers: {:?}",
                String::from_utf8_lossy(&buf)
            ));
        }
        buf.extend_from_slice(&chunk[..k]);
    }
}

/// Reads the rest of the answer (the server closes the connection) and decodes the body.
fn read_body(
    c: &mut UnixStream,
    chunked: bool,
    mut got: Vec<u8>,
    what: &str,
) -> Result<String, String> {
    c.read_to_end(&mut got)
        .map_err(|e| format!("{what}: read: {e}"))?;
    if !chunked {
        return Ok(String::from_utf8_lossy(&got).into_owned());
    }
    let mut out = Vec::new();
    let mut rest = &got[..];
    loop {
        let Some(eol) = rest.windows(2).position(|w| w == b"\r\n") else {
            return Err(format!("{what}: truncated chunked body"));
        };
        let size_hex = String::from_utf8_lossy(&rest[..eol]);
        let size = usize::from_str_radix(size_hex.split(';').next().unwrap().trim(), 16)
            .map_err(|_| format!("{what}: bad chunk size {size_hex:?}"))?;
        rest = &rest[eol + 2..];
        if size == 0 {
            return Ok(String::from_utf8_lossy(&out).into_owned());
        }
        if rest.len() < size + 2 {
            return Err(format!("{what}: truncated chunk"));
        }
        out.extend_from_slice(&rest[..size]);
        rest = &rest[size + 2..];
    }
}

/// One whole exchange: the status and the body.
fn http(
    socket: &Path,
    method: &str,
    path: &str,
    body: Option<&str>,
) -> Result<(u16, String), String> {
    let what = format!("{method} {path}");
    let mut c = send(socket, method, path, body)?;
    let (status, chunked, got) = read_head(&mut c, &what)?;
    Ok((status, read_body(&mut c, chunked, got, &what)?))
}

#[track_caller]
fn expect(what: &str, got: Result<(u16, String), String>, want: u16) -> Result<String, String> {
    match got? {
        (s, body) if s == want => Ok(body),
        (s, body) => Err(format!("{what}: {s} (wanted {want}): {}", body.trim())),
    }
}

fn exit_code_of(what: &str, body: &str) -> Result<i64, String> {
    let v: serde_json::Value =
        serde_json::from_str(body.trim()).map_err(|e| format!("{what}: bad JSON {body:?}: {e}"))?;
    if let Some(err) = v.get("Error").filter(|e| !e.is_null()) {
        return Err(format!("{what}: error in the body: {err}"));
    }
    v.get("StatusCode")
        .and_then(|c| c.as_i64())
        .ok_or_else(|| format!("{what}: no StatusCode in {body:?}"))
}

/// `docker run --rm IMAGE true`, one of two ways: `auto` the way the docker CLI does it
/// (AutoRemove, wait for `removed` before the start), else create, start, wait, DELETE.
fn run_rm(
    socket: &Path,
    image: &str,
    name: &str,
    auto: bool,
    created: &Mutex<Vec<String>>,
) -> Result<(), String> {
    let create = serde_json::json!({
        "Image": image,
        "Cmd": ["true"],
        "HostConfig": {"NetworkMode": "none", "AutoRemove": auto},
    })
    .to_string();
    let body = expect(
        "create",
        http(
            socket,
            "POST",
            &format!("/containers/create?name={name}"),
            Some(&create),
        ),
        201,
    )?;
    let id = serde_json::from_str::<serde_json::Value>(&body)
        .ok()
        .and_then(|v| v.get("Id").and_then(|i| i.as_str()).map(str::to_owned))
        .ok_or_else(|| format!("create: no Id in {body:?}"))?;
    created.lock().unwrap().push(id.clone());
    let result = (|| {
        if auto {
            let what = format!("wait {name} removed");
            let mut w = send(
                socket,
                "POST",
                &format!("/containers/{id}/wait?condition=removed"),
                None,
            )?;
            let (status, chunked, got) = read_head(&mut w, &what)?;
            if status != 200 {
                return Err(format!("{what}: {status}"));
            }
            expect(
                "start",
                http(socket, "POST", &format!("/containers/{id}/start"), None),
                204,
            )?;
            let code = exit_code_of(&what, &read_body(&mut w, chunked, got, &what)?)?;
            if code != 0 {
                return Err(format!("{name}: exit code {code}"));
            }
            // Removed means removed: the engine no longer knows it.
            expect(
                "inspect after removal",
                http(socket, "GET", &format!("/containers/{id}/json"), None),
                404,
            )?;
        } else {
            expect(
                "start",
                http(socket, "POST", &format!("/containers/{id}/start"), None),
                204,
            )?;
            let body = expect(
                "wait",
                http(socket, "POST", &format!("/containers/{id}/wait"), None),
                200,
            )?;
            let code = exit_code_of("wait", &body)?;
            if code != 0 {
                return Err(format!("{name}: exit code {code}"));
            }
            expect(
                "delete",
                http(socket, "DELETE", &format!("/containers/{id}"), None),
                204,
            )?;
        }
        Ok(())
    })();
    if result.is_err() {
        // Keep the loop going on a clean slate; the error is what gets reported.
        let _ = http(socket, "DELETE", &format!("/containers/{id}?force=1"), None);
    }
    result.map_err(|e| format!("{name} ({id}): {e}"))
}

#[test]
fn fifty_api_clients_run_and_remove_with_no_error_and_no_leak() {
    if !support::require_root() {
        return;
    }
    let _serial = one_at_a_time();
    let clients = env_num("BERTH_LOAD_CLIENTS", 50);
    let secs = env_num("BERTH_LOAD_SECS", 20) as u64;
    let image = images::busybox_image();
    let root = Root::new();
    root.ok(&["pull", &image]);
    let serve = Serve::start(&root);
    let socket = serve.socket.clone();
    let tag = std::process::id();

    // Warm up both ways once, then take the server's fd count as the baseline.
    let created: Mutex<Vec<String>> = Mutex::new(Vec::new());
    run_rm(&socket, &image, &format!("ldw-{tag}-a"), true, &created).unwrap();
    run_rm(&socket, &image, &format!("ldw-{tag}-b"), false, &created).unwrap();
    let fds_before = fd_count(serve.pid());

    let deadline = Instant::now() + Duration::from_secs(secs);
    let errors: Mutex<Vec<String>> = Mutex::new(Vec::new());
    let cycles: Mutex<Vec<f64>> = Mutex::new(Vec::new());
    let began = Instant::now();
    std::thread::scope(|s| {
        for c in 0..clients {
            let (socket, image, errors, cycles, created) =
                (&socket, &image, &errors, &cycles, &created);
            s.spawn(move || {
                let mut k = 0;
                while Instant::now() < deadline {
                    let t = Instant::now();
                    let name = format!("lda-{tag}-{c}-{k}");
                    match run_rm(socket, image, &name, c % 2 == 0, created) {
                        Ok(()) => cycles.lock().unwrap().push(ms(t.elapsed())),
                        Err(e) => errors.lock().unwrap().push(e),
                    }
                    k += 1;
                }
            });
        }
    });
    let took = began.elapsed();
    let cycles = cycles.into_inner().unwrap();
    let errors = errors.into_inner().unwrap();
    figure("api_clients", clients);
    figure(
        "api_run_rm_ops",
        format!(
            "{} in {:.1}s = {:.2} ops/s, {} errors",
            cycles.len(),
            took.as_secs_f64(),
            cycles.len() as f64 / took.as_secs_f64(),
            errors.len()
        ),
    );
    report("api_run_rm_cycle", "ms", &cycles);
    assert!(
        errors.is_empty(),
        "{} of {} cycles failed; first ones: {:#?}\nserve log tail:\n{}",
        errors.len(),
        errors.len() + cycles.len(),
        &errors[..errors.len().min(10)],
        serve
            .log()
            .lines()
            .rev()
            .take(20)
            .collect::<Vec<_>>()
            .join("\n")
    );
    assert!(!cycles.is_empty(), "not one cycle finished in {secs}s");

    // Nothing left: no containers, helpers, cgroups, mounts, zombies; fds back to the baseline.
    let listed = expect(
        "list",
        http(&socket, "GET", "/containers/json?all=1", None),
        200,
    )
    .unwrap();
    assert_eq!(listed.trim(), "[]", "containers left");
    let created = created.into_inner().unwrap();
    figure("api_containers_created", created.len());
    assert_nothing_left(&root.path, &created);
    let pid = serve.pid();
    let deadline = Instant::now() + Duration::from_secs(10);
    let fds_after = loop {
        let (fds, zombies) = (fd_count(pid), zombie_children(pid));
        if (fds <= fds_before + 2 && zombies.is_empty()) || Instant::now() > deadline {
            assert!(
                zombies.is_empty(),
                "unreaped children of berth serve: {zombies:?}"
            );
            break fds;
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    figure(
        "api_serve_fds",
        format!("before={fds_before} after={fds_after}"),
    );
    assert!(
        fds_after <= fds_before + 2,
        "berth serve's open fds grew from {fds_before} to {fds_after}"
    );
    assert!(
        serve.log().lines().all(|l| !l.contains("panicked")),
        "serve log:\n{}",
        serve.log()
    );
}
