//! Kill points of the long-running engine: `berth serve` SIGKILLed at random moments while
//! Docker API requests are in flight (a pull from the test registry, creates and starts, a
//! stop and remove, a container prune), with containers left running beside them. After every
//! kill serve is started again on the same root, and: the store is consistent, every container
//! is whole or absent, the containers that were running before the kill still run and the
//! restarted serve controls them (stop, rm), and once everything is removed nothing of the root
//! is left on the host.

use crate::harness::{Rng, Root, wait_for};
use serde_json::{Value, json};
use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

pub const T: Duration = Duration::from_secs(60);

/// `berth serve` on the test's root, its socket and log in a directory of their own.
pub struct Serve {
    child: Child,
    pub socket: PathBuf,
    log: PathBuf,
    /// The start-up clean-up lines of earlier serves in the log (it is appended to).
    cleanups_before: usize,
}

impl Serve {
    /// Started, not waited for.
    pub fn spawn(root: &Root, dir: &Path) -> Serve {
        let socket = dir.join("berth.sock");
        let log = dir.join("serve.log");
        let err = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&log)
            .unwrap();
        let cleanups_before = cleanup_lines(&std::fs::read_to_string(&log).unwrap()).len();
        let child = root
            .cmd(&["serve", "--socket"])
            .arg(&socket)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(err)
            .spawn()
            .unwrap();
        Serve {
            child,
            socket,
            log,
            cleanups_before,
        }
    }

    /// Started and answering.
    pub fn start(root: &Root, dir: &Path) -> Serve {
        let mut s = Serve::spawn(root, dir);
        let deadline = Instant::now() + T;
        // Ready once it answers a request (a stale socket of a killed serve refuses connects).
        while api(&s.socket, "GET", "/_ping", None).is_err() {
            if let Some(status) = s.child.try_wait().unwrap() {
                panic!("berth serve exited ({status}):\n{}", s.log());
            }
            assert!(
                Instant::now() < deadline,
                "serve did not listen:\n{}",
                s.log()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        s
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Serve's log line on its start-up clean-up (which runs in the background), awaited.
    pub fn await_cleanup(&self) -> String {
        let deadline = Instant::now() + T;
        loop {
            if let Some(l) = cleanup_lines(&self.log()).get(self.cleanups_before) {
                return l.clone();
            }
            assert!(
                Instant::now() < deadline,
                "no start-up clean-up:\n{}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// The request, asserting a 2xx answer; the body.
    pub fn ok(&self, method: &str, path: &str, body: Option<&Value>) -> Vec<u8> {
        match api(&self.socket, method, path, body) {
            Ok((code, b)) if (200..300).contains(&code) => b,
            other => panic!(
                "{method} {path}: {:?}\nserve log:\n{}",
                other.map(|(c, b)| (c, String::from_utf8_lossy(&b).into_owned())),
                self.log()
            ),
        }
    }

    pub fn json(&self, method: &str, path: &str, body: Option<&Value>) -> Value {
        serde_json::from_slice(&self.ok(method, path, body)).unwrap()
    }

    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// SIGTERM, and the exit awaited: a clean stop.
    pub fn stop(&mut self) {
        let _ = Command::new("kill")
            .args(["-TERM", &self.pid().to_string()])
            .status();
        let deadline = Instant::now() + T;
        while self.child.try_wait().unwrap().is_none() {
            assert!(Instant::now() < deadline, "serve did not stop on SIGTERM");
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Serve {
    fn drop(&mut self) {
        self.kill();
    }
}

fn cleanup_lines(log: &str) -> Vec<String> {
    log.lines()
        .filter(|l| l.contains("start-up clean-up"))
        .map(str::to_owned)
        .collect()
}

/// How many items a start-up clean-up line says were removed.
pub fn cleanup_count(line: &str) -> usize {
    line.split("removed ")
        .nth(1)
        .and_then(|r| r.split(' ').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or(0)
}

/// One HTTP/1.1 exchange on the socket: the status and the whole body (chunks joined). An
/// answer cut short (the server killed mid-way) is an error.
pub fn api(
    socket: &Path,
    method: &str,
    path: &str,
    body: Option<&Value>,
) -> std::io::Result<(u16, Vec<u8>)> {
    let cut = |what: &str| std::io::Error::new(std::io::ErrorKind::UnexpectedEof, what.to_owned());
    let mut c = UnixStream::connect(socket)?;
    c.set_read_timeout(Some(T))?;
    let body = body.map(Value::to_string).unwrap_or_default();
    write!(
        c,
        "{method} /v1.44{path} HTTP/1.1\r\nHost: berth\r\nConnection: close\r\n\
         Content-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    )?;
    let mut out = Vec::new();
    c.read_to_end(&mut out)?;
    let end = out
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .ok_or_else(|| cut("no header"))?;
    let head = String::from_utf8_lossy(&out[..end]).to_ascii_lowercase();
    let code: u16 = head
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .ok_or_else(|| cut("no status"))?;
    let mut rest = &out[end + 4..];
    if head.contains("transfer-encoding: chunked") {
        let mut body = Vec::new();
        loop {
            let nl = rest
                .windows(2)
                .position(|w| w == b"\r\n")
                .ok_or_else(|| cut("chunk cut short"))?;
            let len = usize::from_str_radix(String::from_utf8_lossy(&rest[..nl]).trim(), 16)
                .map_err(|_| cut("bad chunk size"))?;
            rest = &rest[nl + 2..];
            if len == 0 {
                return Ok((code, body));
            }
            if rest.len() < len + 2 {
                return Err(cut("chunk cut short"));
            }
            body.extend_from_slice(&rest[..len]);
            rest = &rest[len + 2..];
        }
    }
    if let Some(len) = head
        .lines()
        .find_map(|l| l.strip_prefix("content-length:"))
        .and_then(|l| l.trim().parse::<usize>().ok())
        && rest.len() < len
    {
        return Err(cut("body cut short"));
    }
    Ok((code, rest.to_vec()))
}

/// `REGISTRY/berth-rel/serve-pull:latest`: an image of two layers of incompressible bytes
/// (4 MiB), so that a pull spends a while downloading and unpacking.
fn pull_image() -> String {
    use crate::registry::{Comp, Entry, build_image, layer, push_built, tar_of};
    let mut rng = 0x9e37_79b9_7f4a_7c15u64;
    let mut bytes = |n: usize| -> Vec<u8> {
        (0..n)
            .map(|_| {
                rng ^= rng << 13;
                rng ^= rng >> 7;
                rng ^= rng << 17;
                rng as u8
            })
            .collect()
    };
    let (a, b) = (bytes(2 << 20), bytes(2 << 20));
    let layers = [
        layer(tar_of(&[Entry::File("a", &a, 0o644)]), Comp::Gzip),
        layer(tar_of(&[Entry::File("b", &b, 0o644)]), Comp::Gzip),
    ];
    let dir = crate::registry::tempdir();
    let layout = dir.path().join("layout");
    let built = build_image(&layout, &layers, "amd64", json!({"Cmd": ["/a"]}));
    let reference = format!(
        "{}/berth-rel/serve-pull:latest",
        crate::registry::require_registry()
    );
    push_built(&layout, &built, "latest", &reference, &[]);
    reference
}

/// A container's main process that ends at once on SIGTERM (so stops are quick).
pub fn long_running() -> Value {
    json!(["sh", "-c", "trap 'exit 0' TERM; sleep 1000 & wait"])
}

/// Create and start; the id.
pub fn run(s: &Serve, image: &str, name: &str, cmd: Value) -> String {
    let v = s.json(
        "POST",
        &format!("/containers/create?name={name}"),
        Some(&json!({"Image": image, "Cmd": cmd})),
    );
    let id = v["Id"].as_str().unwrap().to_owned();
    s.ok("POST", &format!("/containers/{id}/start"), None);
    id
}

/// What one operation of a batch came to.
#[derive(Debug)]
enum Outcome {
    Done,
    /// An answer the operation does not expect: a failure unless the kill cut it short.
    Failed(String),
}

/// The operations of one trial, run at once on threads of their own; the number in flight
/// is kept in `inflight`.
fn batch(
    socket: &Path,
    image: &str,
    pull: &str,
    i: usize,
    inflight: &Arc<AtomicUsize>,
) -> Vec<std::thread::JoinHandle<Vec<(String, Outcome)>>> {
    let step = move |socket: &Path,
                     inflight: &AtomicUsize,
                     what: String,
                     method: &str,
                     path: String,
                     body: Option<Value>,
                     fine: &[u16]|
          -> (String, Outcome, Option<Vec<u8>>) {
        inflight.fetch_add(1, Ordering::SeqCst);
        let r = api(socket, method, &path, body.as_ref());
        inflight.fetch_sub(1, Ordering::SeqCst);
        match r {
            Ok((code, body)) if (200..300).contains(&code) || fine.contains(&code) => {
                (what, Outcome::Done, Some(body))
            }
            Ok((code, body)) => {
                let msg = format!("{code} {}", String::from_utf8_lossy(&body));
                (what, Outcome::Failed(msg), None)
            }
            Err(e) => (what, Outcome::Failed(e.to_string()), None),
        }
    };
    let mut threads = Vec::new();
    // A pull from the registry (the image is removed before each trial).
    {
        let (socket, inflight, pull) = (socket.to_owned(), inflight.clone(), pull.to_owned());
        threads.push(std::thread::spawn(move || {
            let (repo, tag) = pull.rsplit_once(':').unwrap();
            let (what, mut out, body) = step(
                &socket,
                &inflight,
                "pull".into(),
                "POST",
                format!("/images/create?fromImage={repo}&tag={tag}"),
                None,
                &[],
            );
            // A pull's failure comes inside its 200 stream.
            if let Some(b) = body
                && String::from_utf8_lossy(&b).contains("\"error\"")
            {
                out = Outcome::Failed(String::from_utf8_lossy(&b).into_owned());
            }
            vec![(what, out)]
        }));
    }
    // A prune (of the exited containers made for it), then two runs: create, start.
    {
        let (socket, inflight, image) = (socket.to_owned(), inflight.clone(), image.to_owned());
        threads.push(std::thread::spawn(move || {
            let mut done = Vec::new();
            let (w, o, _) = step(
                &socket,
                &inflight,
                "prune".into(),
                "POST",
                "/containers/prune".into(),
                None,
                &[],
            );
            let stop = matches!(o, Outcome::Failed(_));
            done.push((w, o));
            if stop {
                return done;
            }
            for k in 0..2 {
                let name = format!("n{i}-{k}");
                let (w, o, body) = step(
                    &socket,
                    &inflight,
                    format!("create {name}"),
                    "POST",
                    format!("/containers/create?name={name}"),
                    Some(json!({"Image": image, "Cmd": long_running()})),
                    &[],
                );
                done.push((w, o));
                let Some(body) = body else {
                    return done;
                };
                let id: Value = serde_json::from_slice(&body).unwrap();
                let (w, o, _) = step(
                    &socket,
                    &inflight,
                    format!("start {name}"),
                    "POST",
                    format!("/containers/{}/start", id["Id"].as_str().unwrap()),
                    None,
                    &[],
                );
                let stop = matches!(o, Outcome::Failed(_));
                done.push((w, o));
                if stop {
                    return done;
                }
            }
            done
        }));
    }
    // A stop, then a remove (a 404 when a prune took the stopped container first).
    {
        let (socket, inflight) = (socket.to_owned(), inflight.clone());
        threads.push(std::thread::spawn(move || {
            let name = format!("s{i}");
            let (w, o, _) = step(
                &socket,
                &inflight,
                format!("stop {name}"),
                "POST",
                format!("/containers/{name}/stop?t=5"),
                None,
                &[],
            );
            let stop = matches!(o, Outcome::Failed(_));
            let mut done = vec![(w, o)];
            if stop {
                return done;
            }
            let (w, o, _) = step(
                &socket,
                &inflight,
                format!("rm {name}"),
                "DELETE",
                format!("/containers/{name}"),
                None,
                &[404],
            );
            done.push((w, o));
            done
        }));
    }
    threads
}

/// The trial's starting point, made through serve: `a{i}` (left running, nothing touches it),
/// `s{i}` (running, to be stopped and removed), `x{i}-0..1` (exited, for the prune), and the
/// pull image absent.
fn setup(s: &Serve, image: &str, pull: &str, i: usize) {
    run(s, image, &format!("a{i}"), long_running());
    // Its stop takes a while (its TERM handler dawdles), so that kills land mid-stop too.
    run(
        s,
        image,
        &format!("s{i}"),
        json!([
            "sh",
            "-c",
            "trap 'sleep 0.4; exit 0' TERM; sleep 1000 & wait"
        ]),
    );
    for k in 0..2 {
        let id = run(s, image, &format!("x{i}-{k}"), json!(["true"]));
        s.ok("POST", &format!("/containers/{id}/wait"), None);
    }
    let (code, body) = api(
        &s.socket,
        "DELETE",
        &format!("/images/{pull}?force=1"),
        None,
    )
    .unwrap();
    assert!(
        code == 200 || code == 404,
        "rmi {pull}: {code} {}",
        String::from_utf8_lossy(&body)
    );
    // Its layers too, so the next pull downloads and unpacks again.
    s.ok(
        "POST",
        "/images/prune?filters=%7B%22dangling%22%3A%5B%22false%22%5D%7D",
        None,
    );
}

#[derive(Default, Debug)]
struct Figures {
    trials: usize,
    /// Kills that landed while at least one request was in flight.
    kills_landed: usize,
    /// Requests in flight when serve was killed, over all trials.
    requests_cut: usize,
    /// Containers of the trial found whole after the restart.
    whole_after: usize,
    /// Containers running before the kill still running after it, and stopped through the
    /// restarted serve.
    running_kept: usize,
    /// Containers left created by a kill between create and start, started afterwards.
    created_started: usize,
    /// The pull image, whole after the kill (else absent).
    pulls_whole: usize,
    /// Answers serve gave before the kill (created, started, stopped, removed, pruned, pulled)
    /// found to hold after it.
    acks_held: usize,
    /// Restarted serves killed again (every third trial) before their start-up clean-up was
    /// done.
    cleanups_killed: usize,
    /// Debris of the kills the restarted serve removed by itself at start.
    cleaned_at_start: usize,
    /// Debris a `system check --repair` found after that: none.
    debris_repaired: usize,
}

/// The checks after a kill and a restart: what serve answered before the kill holds (`acked`:
/// the operations done), everything of trial `i` is whole or absent, and is then removed
/// through the restarted serve; nothing is left of it on disk or on the host.
fn settle(root: &mut Root, s: &Serve, pull: &str, i: usize, acked: &[String], fig: &mut Figures) {
    root.note_ids_on_disk();
    // The restarted serve removes the kill's debris by itself, in the background.
    let line = s.await_cleanup();
    assert!(!line.contains("failed"), "{line}");
    fig.cleaned_at_start += cleanup_count(&line);
    root.check(false);
    let list = s.json("GET", "/containers/json?all=1", None);
    let list = list.as_array().unwrap();
    let names: Vec<String> = list
        .iter()
        .map(|c| c["Names"][0].as_str().unwrap_or_default().to_owned())
        .collect();
    let status_of = |name: &str| -> Option<String> {
        let c = list.iter().find(|c| c["Names"][0] == format!("/{name}"))?;
        let id = c["Id"].as_str().unwrap();
        let v = s.json("GET", &format!("/containers/{id}/json"), None);
        Some(v["State"]["Status"].as_str().unwrap_or_default().to_owned())
    };
    // Every answer serve gave before the kill holds after it.
    for op in acked {
        let (verb, name) = op.split_once(' ').unwrap_or((op.as_str(), ""));
        let st = status_of(name);
        match verb {
            "create" => assert!(st.is_some(), "{name} was created, then lost: {names:?}"),
            "start" => assert_eq!(st.as_deref(), Some("running"), "{name} was started"),
            "stop" => assert_ne!(st.as_deref(), Some("running"), "{name} was stopped"),
            "rm" => assert_eq!(st, None, "{name} was removed"),
            "prune" => {
                for k in 0..2 {
                    assert_eq!(status_of(&format!("x{i}-{k}")), None, "x{i}-{k} was pruned");
                }
            }
            _ => {}
        }
        fig.acks_held += 1;
    }
    // a{i} was running before the kill and nothing touched it: it still runs.
    assert!(
        names.contains(&format!("/a{i}")),
        "a{i}, running before the kill, is gone: {names:?}"
    );
    for c in list {
        let id = c["Id"].as_str().unwrap().to_owned();
        root.seen.insert(id.clone());
        let name = c["Names"][0].as_str().unwrap_or_default();
        let ours = [
            format!("/a{i}"),
            format!("/s{i}"),
            format!("/n{i}-0"),
            format!("/n{i}-1"),
            format!("/x{i}-0"),
            format!("/x{i}-1"),
        ];
        assert!(ours.iter().any(|o| o == name), "stray container {c:#}");
        assert_eq!(
            names.iter().filter(|n| *n == name).count(),
            1,
            "{name} listed twice"
        );
        let inspect = s.json("GET", &format!("/containers/{id}/json"), None);
        let status = inspect["State"]["Status"].as_str().unwrap_or_default();
        assert!(
            ["created", "running", "exited"].contains(&status),
            "{name} in state {status:?} after a kill: {inspect:#}"
        );
        assert!(
            !inspect["Image"].as_str().unwrap_or_default().is_empty()
                && !inspect["Config"]["Cmd"].is_null(),
            "a half container is listed: {inspect:#}"
        );
        fig.whole_after += 1;
        if name == format!("/a{i}") {
            assert_eq!(status, "running", "a{i} no longer runs: {inspect:#}");
        }
        if name.starts_with("/x") {
            assert_eq!(status, "exited", "{inspect:#}");
        }
        let mut status = status.to_owned();
        if status == "created" {
            // Cut between create and start: whole, so it starts.
            s.ok("POST", &format!("/containers/{id}/start"), None);
            fig.created_started += 1;
            status = "running".into();
        }
        if status == "running" {
            // 304 when it ended between the inspect and the stop: a stop the kill cut short
            // had already sent its TERM (s{i}'s handler exits 0.4 s later).
            let (code, body) = api(
                &s.socket,
                "POST",
                &format!("/containers/{id}/stop?t=5"),
                None,
            )
            .unwrap();
            assert!(
                code == 204 || (code == 304 && name == format!("/s{i}")),
                "stop {name}: {code} {}",
                String::from_utf8_lossy(&body)
            );
            let after = s.json("GET", &format!("/containers/{id}/json"), None);
            assert_eq!(after["State"]["Status"], "exited", "{after:#}");
            if name == format!("/a{i}") || name == format!("/s{i}") {
                fig.running_kept += 1;
            }
        }
        s.ok("DELETE", &format!("/containers/{id}"), None);
    }
    assert_eq!(
        s.json("GET", "/containers/json?all=1", None),
        json!([]),
        "containers left after rm"
    );
    // The pull image: whole (it inspects, and the check above found every blob), or absent.
    match api(&s.socket, "GET", &format!("/images/{pull}/json"), None).unwrap() {
        (200, _) => fig.pulls_whole += 1,
        (404, _) => assert!(
            !acked.iter().any(|a| a == "pull"),
            "{pull} was pulled, then lost"
        ),
        (code, b) => panic!("inspect {pull}: {code} {}", String::from_utf8_lossy(&b)),
    }
    fig.debris_repaired += root.repair_debris();
    // Serve's start-up clean-up left nothing for a manual repair.
    assert_eq!(
        fig.debris_repaired, 0,
        "a repair after serve's start-up clean-up removed some"
    );
    let left = root.container_dirs_left();
    assert!(left.is_empty(), "with no container left: {left:?}");
    // Nothing of the trial on the host but serve itself (its command line names the root).
    let serve = format!("process {}:", s.pid());
    let settled = Instant::now() + Duration::from_secs(20);
    let leaks = loop {
        let mut leaks = root.host_leaks();
        leaks.retain(|l| !l.starts_with(&serve));
        if leaks.is_empty() || Instant::now() > settled {
            break leaks;
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(leaks.is_empty(), "left on the host: {leaks:#?}");
}

#[test]
fn serve_killed_at_random_points_mid_request_keeps_containers_whole_and_controllable() {
    if !crate::support::require_root() {
        return;
    }
    let image = crate::images::busybox_image();
    let pull = pull_image();
    let mut root = Root::new();
    root.ok(&["pull", &image]);
    let sock_dir = tempfile::Builder::new()
        .prefix("berth-rel-sock-")
        .tempdir()
        .unwrap();
    let mut rng = Rng::new("serve kill");
    let mut serve = Serve::start(&root, sock_dir.path());
    let inflight = Arc::new(AtomicUsize::new(0));

    // Calibration: one batch to its end, every operation answered.
    let calib = 1000;
    setup(&serve, &image, &pull, calib);
    let t = Instant::now();
    let results: Vec<_> = batch(&serve.socket, &image, &pull, calib, &inflight)
        .into_iter()
        .flat_map(|h| h.join().unwrap())
        .collect();
    let mut span = t.elapsed();
    for (what, o) in &results {
        assert!(matches!(o, Outcome::Done), "{what}: {o:?}");
    }
    let mut fig = Figures::default();
    let acked: Vec<String> = results.into_iter().map(|(w, _)| w).collect();
    settle(&mut root, &serve, &pull, calib, &acked, &mut fig);
    fig = Figures::default();

    for i in 0..12 {
        setup(&serve, &image, &pull, i);
        let t = Instant::now();
        let threads = batch(&serve.socket, &image, &pull, i, &inflight);
        fig.trials += 1;
        // The kill point: a random moment in the batch's life. Fault injection, not a wait.
        let delay = rng.below(span);
        let at = t + delay;
        while Instant::now() < at && threads.iter().any(|h| !h.is_finished()) {
            std::thread::sleep(Duration::from_millis(1).min(at - Instant::now()));
        }
        if threads.iter().all(|h| h.is_finished()) {
            // The batch was quicker than the span (the calibration pulled cold): the next
            // kill points spread over this one's life.
            span = t.elapsed();
        }
        let cut = inflight.load(Ordering::SeqCst);
        serve.kill();
        let results: Vec<_> = threads
            .into_iter()
            .flat_map(|h| h.join().unwrap())
            .collect();
        if cut > 0 {
            fig.kills_landed += 1;
            fig.requests_cut += cut;
        } else {
            for (what, o) in &results {
                assert!(
                    matches!(o, Outcome::Done),
                    "{what} failed with no kill during it: {o:?}"
                );
            }
        }
        eprintln!(
            "trial {i}: killed after {delay:?} with {cut} requests in flight: {:?}",
            results
                .iter()
                .map(|(w, o)| match o {
                    Outcome::Done => format!("{w}: done"),
                    Outcome::Failed(m) =>
                        format!("{w}: {}", m.chars().take(60).collect::<String>()),
                })
                .collect::<Vec<_>>()
        );
        if i % 3 == 2 {
            // A second fault: the restarted serve killed again, while it starts and cleans up.
            let mut again = Serve::spawn(&root, sock_dir.path());
            std::thread::sleep(rng.below(Duration::from_millis(150)));
            let before = again.log();
            again.kill();
            if cleanup_lines(&before).len() == again.cleanups_before {
                fig.cleanups_killed += 1;
            }
        }
        serve = Serve::start(&root, sock_dir.path());
        let acked: Vec<String> = results
            .into_iter()
            .filter(|(_, o)| matches!(o, Outcome::Done))
            .map(|(w, _)| w)
            .collect();
        settle(&mut root, &serve, &pull, i, &acked, &mut fig);
    }
    // Afterwards the engine works as before, and stops cleanly.
    let id = run(&serve, &image, "after", json!(["true"]));
    let w = serve.json("POST", &format!("/containers/{id}/wait"), None);
    assert_eq!(w["StatusCode"], 0);
    serve.ok("DELETE", &format!("/containers/{id}"), None);
    serve.stop();
    wait_for("serve's socket removed", T, || !serve.socket.exists());
    let leaks = root.host_leaks_settled();
    assert!(leaks.is_empty(), "left on the host: {leaks:#?}");
    eprintln!("serve kill points: {fig:?} (span {span:?})");
    assert!(fig.kills_landed > 0, "no kill landed mid-request");
    assert!(
        fig.running_kept >= fig.trials,
        "running containers not kept"
    );
}
