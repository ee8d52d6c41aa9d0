//! Hostile input, by seeded random mutation (bounded in count; the seed is printed so a
//! failure replays). The coverage-guided fuzzing (`cargo fuzz`, on stable) is `tests/fuzz.sh`;
//! its seeds and every crash it found are replayed by `tests/fuzz`.
//!
//! Each parser must answer every input with a value or a typed error — never a panic — and the
//! API server must keep serving whatever it is sent.

#[path = "../support/mod.rs"]
mod support;

use std::io::{Read, Write};
use std::time::{Duration, SystemTime};

struct Rng(u64);

impl Rng {
    fn seeded(name: &str) -> Self {
        let s = SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .unwrap()
            .as_nanos() as u64
            | 1;
        eprintln!("{name}: seed {s}");
        Self(s)
    }
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
    /// A mutation of `seed`: bytes flipped, inserted, deleted, duplicated, or spliced.
    fn mutate(&mut self, seed: &[u8], alphabet: &[u8]) -> Vec<u8> {
        let mut v = seed.to_vec();
        for _ in 0..1 + self.below(4) {
            let at = self.below(v.len() + 1);
            match self.below(5) {
                0 if !v.is_empty() => {
                    let i = at.min(v.len() - 1);
                    v[i] = alphabet[self.below(alphabet.len())];
                }
                1 => v.insert(at, alphabet[self.below(alphabet.len())]),
                2 if at < v.len() => {
                    v.remove(at);
                }
                3 => {
                    let end = (at + self.below(8)).min(v.len());
                    let chunk = v[at..end].to_vec();
                    v.splice(at..at, chunk);
                }
                _ => v.insert(at, self.next() as u8),
            }
        }
        v
    }
}

#[test]
fn image_references_never_panic_and_valid_ones_round_trip() {
    let seeds: &[&str] = &[
        "busybox",
        "library/busybox:1.36",
        "127.0.0.1:5000/team/app:v1",
        "ghcr.io/a/b@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef",
        "localhost/x:y@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef",
        "[::1]:5000/x",
    ];
    let alphabet = b"abcXYZ019:/@._-[]sha256";
    let mut rng = Rng::seeded("references");
    let (mut ok, mut refused) = (0, 0);
    for i in 0..30_000 {
        let seed = seeds[i % seeds.len()].as_bytes();
        let input = String::from_utf8_lossy(&rng.mutate(seed, alphabet)).into_owned();
        match berth::image::Reference::parse(&input) {
            Ok(r) => {
                ok += 1;
                let again = berth::image::Reference::parse(&r.to_string()).unwrap_or_else(|e| {
                    panic!("{input:?} parsed as {r} which does not parse again: {e}")
                });
                assert_eq!(again.to_string(), r.to_string(), "{input:?}");
            }
            Err(e) => {
                refused += 1;
                assert!(!e.to_string().is_empty());
            }
        }
    }
    eprintln!("references: {ok} accepted, {refused} refused with a typed error");
    assert!(ok > 0 && refused > 0);
}

#[test]
fn policy_files_never_panic_and_errors_name_a_line() {
    let seed = berth::security::policy::DEFAULT_POLICY.as_bytes();
    let alphabet = b"[]=\\\"\\n*.:_ actiondecisonallowdenyconfirmsubjectuid0privilegedtruefalse#";
    let mut rng = Rng::seeded("policy");
    let actions = berth::api::Command::ACTIONS;
    let (mut ok, mut refused) = (0, 0);
    for _ in 0..5_000 {
        let text = String::from_utf8_lossy(&rng.mutate(seed, alphabet)).into_owned();
        match berth::security::Policy::parse(&text, "fuzz.toml", actions) {
            Ok(_) => ok += 1,
            Err(e) => {
                refused += 1;
                let msg = e.to_string();
                assert!(msg.starts_with("fuzz.toml:"), "no file:line in {msg:?}");
            }
        }
    }
    eprintln!("policy: {ok} loaded, {refused} refused with file:line");
    assert!(refused > 0);
}

#[test]
fn the_api_server_keeps_serving_whatever_it_is_sent() {
    if !support::require_root() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let sock = dir.path().join("b.sock");
    let mut server = std::process::Command::new(support::berth_bin())
        .arg("--root")
        .arg(dir.path().join("root"))
        .args(["serve", "--socket"])
        .arg(&sock)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    while std::os::unix::net::UnixStream::connect(&sock).is_err() {
        assert!(
            std::time::Instant::now() < deadline,
            "berth serve did not start"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    let good = [
        "POST /v1.44/containers/create HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 17\r\n\r\n{\"Image\":\"nosuch\"}",
        "POST /berth/v1/command HTTP/1.1\r\nHost: x\r\nContent-Length: 44\r\n\r\n{\"command\":{\"command\":\"image_list\"},\"confirmed\":false}",
        "GET /v1.44/containers/json?all=1&filters=%7B%22status%22%3A%5B%22running%22%5D%7D HTTP/1.1\r\nHost: x\r\n\r\n",
        "POST /v1.44/images/create?fromImage=a%2Fb&tag=c HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n",
    ];
    let alphabet = b"{}[]\":,\\/?&=%0aZ \r\n";
    let mut rng = Rng::seeded("api");
    let mut answered = 0;
    for i in 0..400 {
        let mut req = rng.mutate(good[i % good.len()].as_bytes(), alphabet);
        if i % 50 == 0 {
            // a body far larger than it claims, and one far larger than any limit
            req.extend(std::iter::repeat_n(b'x', 1 << 20));
        }
        let mut s =
            std::os::unix::net::UnixStream::connect(&sock).expect("the server stopped accepting");
        s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        let _ = s.write_all(&req);
        let _ = s.shutdown(std::net::Shutdown::Write);
        let mut buf = [0u8; 64];
        if matches!(s.read(&mut buf), Ok(n) if n > 0) {
            answered += 1;
        }
    }
    // Still healthy afterwards.
    let mut s = std::os::unix::net::UnixStream::connect(&sock).unwrap();
    s.write_all(b"GET /_ping HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .unwrap();
    let mut resp = String::new();
    s.read_to_string(&mut resp).unwrap();
    assert!(
        resp.starts_with("HTTP/1.1 200") && resp.ends_with("OK"),
        "{resp}"
    );
    eprintln!("api: 400 mutated requests, {answered} answered, server healthy");
    let _ = server.kill();
    let _ = server.wait();
}
