//! The bodies of berth's fuzz targets. Each takes one input, feeds it to a parser of hostile
//! input and panics when an invariant breaks (a panic inside berth is a finding too).
//!
//! Compiled twice: by `cargo fuzz` as the library of the `berth-fuzz` crate (one binary per
//! target in `fuzz_targets/`), and by the stable test suite (`tests/fuzz/main.rs`), which
//! replays the seed corpora and the saved crash inputs through the same functions.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

/// Image references: parse; whatever parses prints to a reference that parses back to itself,
/// and so do its familiar and `name@digest` forms.
pub fn reference(data: &[u8]) {
    let Ok(input) = std::str::from_utf8(data) else {
        return;
    };
    let r = match berth::image::Reference::parse(input) {
        Ok(r) => r,
        Err(e) => {
            assert!(!e.to_string().is_empty());
            return;
        }
    };
    let printed = r.to_string();
    let again = berth::image::Reference::parse(&printed)
        .unwrap_or_else(|e| panic!("{input:?} parsed as {printed:?}, which does not parse: {e}"));
    assert_eq!(again, r, "{input:?} -> {printed:?} parses differently");
    let familiar = r.familiar();
    let again = berth::image::Reference::parse(&familiar).unwrap_or_else(|e| {
        panic!("{input:?}: the familiar form {familiar:?} does not parse: {e}")
    });
    assert_eq!(again, r, "{input:?}: familiar form {familiar:?} differs");
    // The pieces the puller and the policy use.
    let _ = (r.name(), r.familiar_name(), r.registry_host());
    if let Ok(t) = r.with_tag("fuzz") {
        assert_eq!(t.tag(), Some("fuzz"));
    }
}

/// Dockerfiles: parse; every error names a line of the file; every instruction of a parsed file
/// has a line in range, and its words expand (or fail with a message) as the builder does it.
pub fn dockerfile(data: &[u8]) {
    use berth::image::build::{Dockerfile, dockerfile::split_words, vars};
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let lines = text.lines().count();
    let df = match Dockerfile::parse("Dockerfile", text) {
        Ok(df) => df,
        Err(e) => {
            assert_eq!(e.file, "Dockerfile");
            assert!(
                e.line <= lines.max(1),
                "error on line {} of a {lines}-line file: {e}",
                e.line
            );
            return;
        }
    };
    let lookup = |name: &str| match name {
        "EMPTY" => Some(String::new()),
        "SET" | "HOME" | "PATH" => Some(format!("/v/{name}")),
        _ => None,
    };
    for stage in &df.stages {
        assert!(
            (1..=lines).contains(&stage.line),
            "FROM on line {}",
            stage.line
        );
        let _ = vars::expand(&stage.base, df.escape, &lookup);
        let _ = df.stage_index(stage.name.as_deref().unwrap_or("x"));
        for ins in &stage.instructions {
            assert!(
                ins.line >= stage.line && ins.line <= lines,
                "{} on line {} (stage from {}, {lines} lines)",
                ins.keyword,
                ins.line,
                stage.line
            );
            let _ = vars::expand_words(&ins.text, df.escape, &lookup, true);
            let _ = split_words(&ins.text, df.escape);
        }
    }
}

/// Policy files: parse; every error names `file:line`; a policy that loads decides every action
/// for a plain and a demanding request without panicking.
pub fn policy(data: &[u8]) {
    use berth::security::policy::{Facts, HostBind, Request};
    use berth::security::{Policy, Subject};
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let p = match Policy::parse(text, "fuzz.toml", berth::api::Command::ACTIONS) {
        Ok(p) => p,
        Err(e) => {
            let msg = e.to_string();
            assert!(msg.starts_with("fuzz.toml:"), "no file:line in {msg:?}");
            return;
        }
    };
    let demanding = Facts {
        image: Some("127.0.0.1:5000/team/app:v1".into()),
        privileged: true,
        cap_add: vec!["SYS_ADMIN".into(), "ALL".into()],
        binds: vec![
            HostBind {
                path: PathBuf::from("/srv/../etc"),
                read_only: false,
            },
            HostBind {
                path: PathBuf::from("relative/x"),
                read_only: true,
            },
        ],
        user: Some("0:0".into()),
        memory: Some(u64::MAX),
        cpus: Some(f64::NAN),
        pids_limit: Some(-1),
        network_host: true,
        pid_host: true,
        ipc_host: true,
        seccomp_unconfined: true,
        host_ports: vec![0, 80, 65535],
    };
    let subjects = [
        Subject {
            uid: 0,
            gid: 0,
            groups: vec![],
        },
        Subject {
            uid: 1000,
            gid: 1000,
            groups: vec![0, 27, 65534],
        },
    ];
    for action in berth::api::Command::ACTIONS {
        for facts in [Facts::default(), demanding.clone()] {
            let req = Request {
                action: (*action).to_owned(),
                target: Some("busybox".into()),
                facts,
            };
            for s in &subjects {
                let d = p.decide(s, &req);
                let e = p.explain(s, &req);
                assert_eq!(d.verdict, e.decision.verdict, "explain and decide differ");
            }
        }
    }
}

/// Where the unpack target's hostile layers aim: a directory outside every layer it unpacks,
/// with a victim file, at a fixed path so that seeds can name it. Checked after every input.
pub const OUTSIDE: &str = "/var/tmp/berth-fuzz-outside";

fn outside_listing() -> Vec<(String, u64, u32, u64)> {
    use std::os::unix::fs::MetadataExt;
    let mut v: Vec<_> = std::fs::read_dir(OUTSIDE)
        .expect("read the outside dir")
        .map(|e| {
            let e = e.unwrap();
            let m = std::fs::symlink_metadata(e.path()).unwrap();
            (
                e.file_name().to_string_lossy().into_owned(),
                m.len(),
                m.mode(),
                m.nlink(),
            )
        })
        .collect();
    v.sort();
    v
}

/// A directory for this process's lifetime, `<tmp>/<prefix>.<pid>`. A static is never dropped,
/// so a process cannot remove its own: each removes those of processes that are gone.
fn process_dir(prefix: &str) -> PathBuf {
    let tmp = std::env::temp_dir();
    if let Ok(rd) = std::fs::read_dir(&tmp) {
        for e in rd.flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            let Some(pid) = name.strip_prefix(prefix).and_then(|r| r.strip_prefix('.')) else {
                continue;
            };
            if pid.parse::<u32>().is_ok() && !Path::new("/proc").join(pid).exists() {
                make_removable(&e.path());
                let _ = std::fs::remove_dir_all(e.path());
            }
        }
    }
    let dir = tmp.join(format!("{prefix}.{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

struct UnpackEnv {
    base: PathBuf,
    listing: Vec<(String, u64, u32, u64)>,
}

fn unpack_env() -> &'static UnpackEnv {
    static ENV: OnceLock<UnpackEnv> = OnceLock::new();
    ENV.get_or_init(|| {
        std::fs::create_dir_all(OUTSIDE).unwrap();
        let victim = Path::new(OUTSIDE).join("victim");
        if std::fs::read(&victim).ok().as_deref() != Some(b"original") {
            std::fs::write(&victim, b"original").unwrap();
        }
        UnpackEnv {
            base: process_dir("berth-fuzz-unpack"),
            listing: outside_listing(),
        }
    })
}

/// Layer unpack: the first byte picks the compression (none, gzip, zstd), the rest is the
/// layer. Unpacked into a fresh directory beside a sentinel one; whether it succeeds or is
/// refused, nothing may appear or change outside the layer directory, neither beside it nor in
/// [`OUTSIDE`], and what was made inside must be within it (no symlink is followed out by the
/// checks either: they look with lstat).
pub fn unpack(data: &[u8]) {
    use berth::image::layout::Compression;
    let Some((&mode, layer)) = data.split_first() else {
        return;
    };
    let env = unpack_env();
    let work = tempfile::tempdir_in(&env.base).unwrap();
    let dest = work.path().join("layer");
    std::fs::create_dir(&dest).unwrap();
    let beside = work.path().join("beside");
    std::fs::write(&beside, b"beside").unwrap();
    let res = match mode % 3 {
        0 => berth::image::unpack::unpack_layer(layer, &dest, "fuzz"),
        1 => berth::image::unpack::unpack_compressed(
            layer,
            Compression::Gzip,
            &dest,
            "fuzz",
            Some(layer.len() as u64),
        )
        .map(|(_, s)| s),
        _ => berth::image::unpack::unpack_compressed(
            layer,
            Compression::Zstd,
            &dest,
            "fuzz",
            Some(layer.len() as u64),
        )
        .map(|(_, s)| s),
    };
    if let Err(e) = &res {
        assert!(!e.to_string().is_empty());
    }
    let mut names: Vec<_> = std::fs::read_dir(work.path())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    names.sort();
    assert_eq!(
        names,
        ["beside", "layer"],
        "something appeared beside the layer"
    );
    assert_eq!(std::fs::read(&beside).unwrap(), b"beside");
    assert_eq!(
        outside_listing(),
        env.listing,
        "something changed in {OUTSIDE}"
    );
    assert_eq!(
        std::fs::read(Path::new(OUTSIDE).join("victim")).unwrap(),
        b"original"
    );
    // Directories the layer made without write permission would stop the cleanup.
    make_removable(&dest);
}

fn make_removable(dir: &Path) {
    use std::os::unix::fs::PermissionsExt;
    let Ok(m) = std::fs::symlink_metadata(dir) else {
        return;
    };
    if !m.is_dir() {
        return;
    }
    let _ = std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700));
    if let Ok(rd) = std::fs::read_dir(dir) {
        for e in rd.flatten() {
            make_removable(&e.path());
        }
    }
}

/// The policy the API target's engine runs with: conditions that must be evaluated on the way,
/// and every request refused in the end, so that nothing a request asks for is carried out.
const DENY_ALL: &str = r#"
[[rule]]
action = "container.create"
privileged = true
decision = "deny"
reason = "fuzz: privileged"

[[rule]]
action = "container.create"
bind_prefixes = ["/srv"]
cap_add = ["SYS_ADMIN"]
decision = "deny"
reason = "fuzz: binds"

[[rule]]
action = "image.*"
registries = ["docker.io"]
decision = "deny"
reason = "fuzz: registry"

[[rule]]
action = "*"
decision = "deny"
reason = "fuzz: everything is refused"
"#;

struct ApiEnv {
    rt: tokio::runtime::Runtime,
    service: berth::api::http::Service,
    caller: berth::api::Caller,
}

fn api_env() -> &'static ApiEnv {
    static ENV: OnceLock<ApiEnv> = OnceLock::new();
    ENV.get_or_init(|| {
        let root = process_dir("berth-fuzz-api");
        let policy = root.join("policy.toml");
        std::fs::write(&policy, DENY_ALL).unwrap();
        let engine = berth::api::Engine::open(berth::api::EngineOptions {
            root: Some(root.join("root")),
            policy: Some(policy),
        })
        .expect("open an engine for the API target");
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        // The router reads host facts; build it inside the runtime.
        let service =
            rt.block_on(async { berth::api::http::Service::new(engine).half_close(true) });
        ApiEnv {
            rt,
            service,
            caller: berth::api::Caller::current(),
        }
    })
}

/// Send `request` on a fresh connection, half-close, and read the whole answer.
async fn exchange(env: &ApiEnv, request: &[u8]) -> Vec<u8> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let (mut client, server) = tokio::io::duplex(64 * 1024);
    let service = env.service.clone();
    let caller = env.caller.clone();
    let conn = tokio::spawn(async move { service.serve_connection(server, Ok(caller)).await });
    let write = async {
        let _ = client.write_all(request).await;
        let _ = client.shutdown().await;
    };
    let (mut reader, _w) = {
        write.await;
        tokio::io::split(client)
    };
    let mut out = Vec::new();
    let _ = reader.read_to_end(&mut out).await;
    let _ = conn.await;
    out
}

/// The HTTP API: raw bytes as one client connection to the real server (hyper's HTTP/1
/// parser, the version prefix, the router, query and JSON body parsing, the mapping to engine
/// commands and the policy check) of an engine whose policy refuses everything. The server must
/// answer with HTTP, never with a 5xx but 501 (not implemented), and keep serving: a ping on a
/// new connection is answered after every input.
pub fn api(data: &[u8]) {
    let env = api_env();
    env.rt.block_on(async {
        let answer = tokio::time::timeout(std::time::Duration::from_secs(10), exchange(env, data))
            .await
            .expect("the server hung on a request");
        if std::env::var_os("BERTH_FUZZ_DEBUG").is_some() {
            eprintln!(
                "{:?} {}",
                statuses(&answer),
                String::from_utf8_lossy(&answer)
                    .chars()
                    .take(300)
                    .collect::<String>()
            );
        }
        for status in statuses(&answer) {
            // 501: an endpoint berth does not implement yet says so; any other 5xx is a fault.
            assert!(
                !(500..600).contains(&status) || status == 501,
                "the server answered {status}:\n{}",
                String::from_utf8_lossy(&answer)
            );
        }
        let ping = tokio::time::timeout(
            std::time::Duration::from_secs(10),
            exchange(env, b"GET /_ping HTTP/1.1\r\nHost: x\r\n\r\n"),
        )
        .await
        .expect("the server hung on a ping");
        assert!(
            ping.starts_with(b"HTTP/1.1 200"),
            "no answer to a ping after the input: {}",
            String::from_utf8_lossy(&ping)
        );
    });
}

/// The status codes of the responses in `answer`, walking each head and skipping its body
/// (`content-length` or chunked). A 101 switches protocols: what follows is not HTTP.
fn statuses(answer: &[u8]) -> Vec<u16> {
    let mut out = Vec::new();
    let mut rest = answer;
    while !rest.is_empty() {
        let Some(end) = find(rest, b"\r\n\r\n") else {
            panic!(
                "a response head does not end: {:?}",
                String::from_utf8_lossy(rest)
            );
        };
        let head = String::from_utf8_lossy(&rest[..end]).to_ascii_lowercase();
        let status: u16 = head
            .strip_prefix("http/1.1 ")
            .or_else(|| head.strip_prefix("http/1.0 "))
            .and_then(|s| s.get(..3))
            .and_then(|s| s.parse().ok())
            .unwrap_or_else(|| panic!("not an HTTP response: {head:?}"));
        out.push(status);
        rest = &rest[end + 4..];
        if status == 101 {
            break;
        }
        let header = |name: &str| {
            head.lines()
                .skip(1)
                .filter_map(|l| l.split_once(':'))
                .find(|(k, _)| k.trim() == name)
                .map(|(_, v)| v.trim().to_owned())
        };
        // The answer to a HEAD has a content-length but no body: the next response follows.
        if rest.starts_with(b"HTTP/1.") {
            continue;
        }
        if header("transfer-encoding").is_some_and(|v| v.contains("chunked")) {
            loop {
                let Some(eol) = find(rest, b"\r\n") else {
                    return out;
                };
                let size = std::str::from_utf8(&rest[..eol])
                    .ok()
                    .and_then(|s| usize::from_str_radix(s.split(';').next()?.trim(), 16).ok())
                    .unwrap_or_else(|| {
                        panic!("bad chunk size in {:?}", String::from_utf8_lossy(rest))
                    });
                rest = rest.get(eol + 2 + size + 2..).unwrap_or_default();
                if size == 0 {
                    break;
                }
            }
        } else if let Some(n) = header("content-length").and_then(|v| v.parse::<usize>().ok()) {
            rest = rest.get(n..).unwrap_or_default();
        }
    }
    out
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

/// Reads every file of `dir` (sorted), for replays. Empty when there is no such directory.
pub fn inputs(dir: &Path) -> Vec<(PathBuf, Vec<u8>)> {
    let Ok(rd) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut v: Vec<_> = rd
        .flatten()
        .filter(|e| e.file_type().is_ok_and(|t| t.is_file()))
        .map(|e| {
            let mut data = Vec::new();
            std::fs::File::open(e.path())
                .and_then(|mut f| f.read_to_end(&mut data))
                .unwrap();
            (e.path(), data)
        })
        .collect();
    v.sort();
    v
}
