//! Integration tests of `berth serve`: the real docker CLI (28.2; `/usr/local/bin/docker`, or
//! `DOCKER_CLI`) against the berth binary on a unix socket, as root and as other users.
//!
//! The tests marked `#[ignore = "needs the runtime …"]` drive containers and images; they are
//! written to run as they are once the dispatcher answers those commands. They pull from the
//! registry at `BERTH_TEST_REGISTRY` (tests/run.sh starts one; default 127.0.0.1:5055), into
//! which they push a busybox image built with umoci and skopeo.

#[path = "../support/mod.rs"]
mod support;

use std::io::{BufRead, Read, Write};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

const T: Duration = Duration::from_secs(30);
/// The unprivileged user the access-control tests run the CLI as.
const NOBODY: u32 = 65534;

fn docker_cli() -> String {
    let cli = std::env::var("DOCKER_CLI").unwrap_or_else(|_| "/usr/local/bin/docker".into());
    assert!(
        Path::new(&cli).exists(),
        "these tests need the docker CLI 28.x at {cli} (set DOCKER_CLI)"
    );
    cli
}

/// A `berth serve` process on a private root and socket, stopped on drop.
struct Serve {
    child: Child,
    dir: tempfile::TempDir,
    socket: PathBuf,
    root: PathBuf,
}

impl Serve {
    fn start(policy: Option<&str>) -> Self {
        Self::start_with(policy, &[])
    }

    /// With more `berth serve` arguments.
    fn start_with(policy: Option<&str>, serve_args: &[&str]) -> Self {
        let dir = tempfile::tempdir().unwrap();
        // Reachable by the unprivileged users of the access tests.
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
        let root = dir.path().join("root");
        let socket = dir.path().join("berth.sock");
        let log = std::fs::File::create(dir.path().join("serve.log")).unwrap();
        let mut cmd = Command::new(support::berth_bin());
        cmd.arg("--root").arg(&root);
        if let Some(p) = policy {
            let path = dir.path().join("policy.toml");
            std::fs::write(&path, p).unwrap();
            cmd.arg("--policy").arg(path);
        }
        let child = cmd
            .arg("serve")
            .arg("--socket")
            .arg(&socket)
            .args(serve_args)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .unwrap();
        let mut s = Self {
            child,
            dir,
            socket,
            root,
        };
        s.wait_ready();
        s
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("serve.log")).unwrap_or_default()
    }

    fn wait_ready(&mut self) {
        let deadline = Instant::now() + T;
        while std::os::unix::net::UnixStream::connect(&self.socket).is_err() {
            if let Some(status) = self.child.try_wait().unwrap() {
                panic!("berth serve exited ({status}):\n{}", self.log());
            }
            assert!(
                Instant::now() < deadline,
                "berth serve did not listen:\n{}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    fn host(&self) -> String {
        format!("unix://{}", self.socket.display())
    }

    /// A docker CLI command against this server, with a private config directory.
    fn cmd(&self, args: &[&str]) -> Command {
        let cfg = self.dir.path().join("docker-config");
        std::fs::create_dir_all(&cfg).unwrap();
        std::fs::set_permissions(&cfg, std::fs::Permissions::from_mode(0o777)).unwrap();
        let mut c = Command::new(docker_cli());
        c.args(args)
            .env("DOCKER_HOST", self.host())
            .env("DOCKER_CONFIG", &cfg)
            .stdin(Stdio::null());
        c
    }

    fn docker(&self, args: &[&str]) -> Output {
        run(self.cmd(args))
    }

    /// The CLI as another user (no supplementary groups). Opens the socket to everyone first:
    /// the socket's mode is not what is under test here, the policy is.
    fn docker_as(&self, uid: u32, args: &[&str]) -> Output {
        std::fs::set_permissions(&self.socket, std::fs::Permissions::from_mode(0o666)).unwrap();
        let mut c = Command::new("setpriv");
        c.args([
            &format!("--reuid={uid}"),
            &format!("--regid={uid}"),
            "--clear-groups",
            &docker_cli(),
        ])
        .args(args)
        .env("DOCKER_HOST", self.host())
        .env("DOCKER_CONFIG", self.dir.path().join("docker-config"))
        .stdin(Stdio::null());
        std::fs::create_dir_all(self.dir.path().join("docker-config")).unwrap();
        std::fs::set_permissions(
            self.dir.path().join("docker-config"),
            std::fs::Permissions::from_mode(0o777),
        )
        .unwrap();
        run(c)
    }

    fn audit(&self) -> String {
        std::fs::read_to_string(self.root.join("audit.log")).unwrap_or_default()
    }

    /// One raw HTTP/1.1 exchange on the socket; returns the whole answer.
    fn raw(&self, request: &str) -> String {
        let mut c = std::os::unix::net::UnixStream::connect(&self.socket).unwrap();
        c.set_read_timeout(Some(T)).unwrap();
        c.write_all(request.as_bytes()).unwrap();
        let mut out = Vec::new();
        c.read_to_end(&mut out).unwrap();
        String::from_utf8_lossy(&out).into_owned()
    }
}

impl Drop for Serve {
    fn drop(&mut self) {
        // What a test made, also when it failed: containers (monitors, cgroups, network
        // namespaces) and networks (bridges, NAT rules) live outside the temp dir.
        if self.root.exists() && matches!(self.child.try_wait(), Ok(None)) {
            let ids = try_run(self.cmd(&["ps", "-aq"]))
                .map(|o| text(&o.stdout))
                .unwrap_or_default();
            let ids: Vec<&str> = ids.split_whitespace().collect();
            if !ids.is_empty() {
                let mut args = vec!["rm", "-f"];
                args.extend(ids);
                let _ = try_run(self.cmd(&args));
            }
            let _ = try_run(self.cmd(&["network", "prune", "-f"]));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Run a command to its end (or for T at most), its output captured.
fn try_run(mut c: Command) -> Option<Output> {
    let child = c
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .ok()?;
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(child.wait_with_output());
    });
    rx.recv_timeout(T).ok()?.ok()
}

fn run(c: Command) -> Output {
    try_run(c).expect("the docker CLI did not start or did not finish")
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

#[track_caller]
fn ok(o: &Output) -> String {
    assert!(
        o.status.success(),
        "docker failed ({}):\nstdout: {}\nstderr: {}",
        o.status,
        text(&o.stdout),
        text(&o.stderr)
    );
    text(&o.stdout)
}

#[track_caller]
fn refused(o: &Output) -> String {
    assert!(
        !o.status.success(),
        "docker should have failed:\n{}",
        text(&o.stdout)
    );
    text(&o.stderr)
}

/// Root may do anything; nobody may list containers and nothing else.
const GRANT_LIST_TO_NOBODY: &str = r#"
[[rule]]
action = "container.list"
subject = "uid:65534"
decision = "allow"
reason = "nobody may look"

[[rule]]
action = "*"
subject = "uid:0"
decision = "allow"

[[rule]]
action = "*"
decision = "deny"
reason = "not granted by the serve test policy"
"#;

// ---------------------------------------------------------------------------------------------
// What works with today's engine.

#[test]
fn docker_version_negotiates_api_1_44() {
    if !support::require_root() {
        return;
    }
    let s = Serve::start(None);
    let out = ok(&s.docker(&[
        "version",
        "--format",
        "{{.Client.APIVersion}}|{{.Server.APIVersion}}|{{.Server.MinAPIVersion}}|{{.Server.Os}}|{{.Server.Arch}}",
    ]));
    let arch = match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        a => a,
    };
    assert_eq!(out.trim(), format!("1.44|1.44|1.24|linux|{arch}"));
    let plain = ok(&s.docker(&["version"]));
    assert!(plain.contains("downgraded from"), "{plain}");
    assert!(
        plain.contains(&format!("Version:          {}", env!("CARGO_PKG_VERSION"))),
        "{plain}"
    );
}

#[test]
fn docker_info_shows_the_engine() {
    if !support::require_root() {
        return;
    }
    let s = Serve::start(None);
    let out = ok(&s.docker(&[
        "info",
        "--format",
        "{{.Containers}}|{{.Images}}|{{.DockerRootDir}}|{{.Swarm.LocalNodeState}}|{{.OSType}}|{{.CgroupVersion}}",
    ]));
    let root = std::fs::canonicalize(&s.root).unwrap();
    assert_eq!(
        out.trim(),
        format!("0|0|{}|inactive|linux|1", root.display())
    );
    // The whole `docker info` renders without a server-side error.
    let full = s.docker(&["info"]);
    let all = ok(&full);
    assert!(all.contains("Server Version:"), "{all}");
    assert!(
        !text(&full.stderr).contains("rror"),
        "{}",
        text(&full.stderr)
    );
}

#[test]
fn docker_ps_and_images_list_nothing_yet() {
    if !support::require_root() {
        return;
    }
    let s = Serve::start(None);
    let ps = ok(&s.docker(&["ps", "-a"]));
    assert_eq!(
        ps.lines().collect::<Vec<_>>(),
        ["CONTAINER ID   IMAGE     COMMAND   CREATED   STATUS    PORTS     NAMES"]
    );
    assert_eq!(ok(&s.docker(&["ps", "-aq"])), "");
    assert_eq!(
        ok(&s.docker(&["ps", "--filter", "status=exited", "-q"])),
        ""
    );
    let images = ok(&s.docker(&["images"]));
    assert_eq!(images.lines().count(), 1, "{images}");
    assert!(images.starts_with("REPOSITORY"), "{images}");
    let df = ok(&s.docker(&["system", "df", "--format", "{{.Type}}={{.TotalCount}}"]));
    assert_eq!(
        df.lines().collect::<Vec<_>>(),
        [
            "Images=0",
            "Containers=0",
            "Local Volumes=0",
            "Build Cache=0"
        ]
    );
    // An unknown filter is the daemon's 400, shown by the CLI.
    let bad = refused(&s.docker(&["ps", "--filter", "volume=x"]));
    assert!(bad.contains("invalid filter 'volume'"), "{bad}");
}

#[test]
fn docker_inspect_of_an_unknown_name_is_no_such_object() {
    if !support::require_root() {
        return;
    }
    let s = Serve::start(None);
    let o = s.docker(&["inspect", "nosuch"]);
    let err = refused(&o);
    assert!(err.contains("No such object: nosuch"), "{err}");
    assert_eq!(text(&o.stdout).trim(), "[]");
    // Each kind on its own: 404 → the CLI's own not-found messages.
    let err = refused(&s.docker(&["container", "inspect", "nosuch"]));
    assert!(err.contains("No such container: nosuch"), "{err}");
    let err = refused(&s.docker(&["image", "inspect", "nosuch"]));
    assert!(err.contains("No such image: nosuch"), "{err}");
    let err = refused(&s.docker(&["volume", "inspect", "nosuch"]));
    assert!(err.contains("no such volume"), "{err}");
    let err = refused(&s.docker(&["network", "inspect", "nosuch"]));
    assert!(err.contains("network nosuch not found"), "{err}");
}

#[test]
fn a_user_the_policy_does_not_allow_is_refused_with_the_reason_and_audited() {
    if !support::require_root() {
        return;
    }
    let s = Serve::start(None); // the shipped policy: root only
    let err = refused(&s.docker_as(NOBODY, &["ps"]));
    assert!(
        err.contains("Error response from daemon: denied by policy"),
        "{err}"
    );
    assert!(
        err.contains("only root may use the engine unless the policy grants it"),
        "{err}"
    );
    let err = refused(&s.docker_as(NOBODY, &["info"]));
    assert!(err.contains("denied by policy"), "{err}");
    // The decision is audited with the peer's uid, not the server's.
    let audit = s.audit();
    let denial = audit
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
        .find(|r| r["action"] == "container.list")
        .unwrap_or_else(|| panic!("no audit record of the refused list:\n{audit}"));
    assert_eq!(denial["uid"], NOBODY);
    assert_eq!(denial["decision"], "deny");
    // Root, through the same socket, is served.
    ok(&s.docker(&["ps"]));
}

#[test]
fn the_policy_subject_is_the_connecting_user() {
    if !support::require_root() {
        return;
    }
    let s = Serve::start(Some(GRANT_LIST_TO_NOBODY));
    // nobody may list …
    let ps = ok(&s.docker_as(NOBODY, &["ps", "-a"]));
    assert!(ps.starts_with("CONTAINER ID"), "{ps}");
    // … and nothing else, with the rule's reason.
    let err = refused(&s.docker_as(NOBODY, &["images"]));
    assert!(
        err.contains("not granted by the serve test policy"),
        "{err}"
    );
    assert!(err.contains("policy.toml:"), "the rule is named: {err}");
}

#[test]
fn a_confirm_rule_is_refused_because_the_api_cannot_ask() {
    if !support::require_root() {
        return;
    }
    let s = Serve::start(Some(
        "[[rule]]\naction = \"system.info\"\ndecision = \"confirm\"\nreason = \"info is sensitive\"\n\n[[rule]]\naction = \"*\"\ndecision = \"allow\"\n",
    ));
    let err = refused(&s.docker(&["info"]));
    assert!(err.contains("needs confirmation"), "{err}");
    assert!(err.contains("info is sensitive"), "{err}");
    assert!(err.contains("cannot ask"), "{err}");
}

#[test]
fn docker_events_streams_an_audited_decision_as_it_happens() {
    if !support::require_root() {
        return;
    }
    let s = Serve::start(None);
    let since = now_secs() - 1;
    // A first refusal before the stream opens: `--since` replays it from the journal. Seeing
    // it proves the stream is subscribed (the server subscribes before it replays) …
    refused(&s.docker_as(NOBODY, &["version"]));
    let mut events = s
        .cmd(&[
            "events",
            "--since",
            &since.to_string(),
            "--filter",
            "type=policy",
            "--format",
            "{{json .}}",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let (tx, rx) = mpsc::channel::<String>();
    let stdout = events.stdout.take().unwrap();
    std::thread::spawn(move || {
        for line in std::io::BufReader::new(stdout)
            .lines()
            .map_while(Result::ok)
        {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let next = |what: &str| -> serde_json::Value {
        let line = rx
            .recv_timeout(T)
            .unwrap_or_else(|_| panic!("no event for {what}"));
        serde_json::from_str(&line).unwrap()
    };
    let first = next("the replayed refusal");
    assert_eq!(first["Type"], "policy");
    assert_eq!(first["Action"], "deny");
    assert_eq!(first["Actor"]["ID"], "system.version");
    // … so this one must arrive live.
    refused(&s.docker_as(NOBODY, &["ps"]));
    let second = next("the live refusal");
    assert_eq!(second["Actor"]["ID"], "container.list");
    assert!(
        second["Actor"]["Attributes"]["subject"]
            .as_str()
            .unwrap()
            .contains("65534"),
        "{second}"
    );
    assert_eq!(
        second["Actor"]["Attributes"]["reason"],
        "only root may use the engine unless the policy grants it"
    );
    let _ = events.kill();
    let _ = events.wait();
}

fn now_secs() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

#[test]
fn docker_events_until_ends_the_stream_and_filters_apply() {
    if !support::require_root() {
        return;
    }
    let s = Serve::start(None);
    let since = (now_secs() - 1).to_string();
    refused(&s.docker_as(NOBODY, &["ps"]));
    refused(&s.docker_as(NOBODY, &["images"]));
    // `until` a second ahead: the replay, then the stream ends by itself.
    let until = (now_secs() + 1).to_string();
    let window = ["events", "--since", &since, "--until", &until];
    let policy = ok(&s.docker(
        &[
            &window[..],
            &["--filter", "type=policy", "--format", "{{.Actor.ID}}"],
        ]
        .concat(),
    ));
    assert_eq!(
        policy.lines().collect::<Vec<_>>(),
        ["container.list", "image.list"]
    );
    let only_images = ok(&s.docker(
        &[
            &window[..],
            &[
                "--filter",
                "event=deny",
                "--filter",
                "type=policy",
                "--format",
                "{{.Actor.ID}}",
            ],
        ]
        .concat(),
    ));
    assert_eq!(only_images.lines().count(), 2, "{only_images}");
    let containers = ok(&s.docker(
        &[
            &window[..],
            &["--filter", "type=container", "--format", "{{.Actor.ID}}"],
        ]
        .concat(),
    ));
    assert_eq!(containers, "", "no container events happened");
}

#[test]
fn following_events_needs_the_right_to_read_engine_facts_and_nothing_more() {
    if !support::require_root() {
        return;
    }
    let s = Serve::start(Some(
        "[[rule]]\naction = \"system.info\"\nsubject = \"uid:65534\"\ndecision = \"allow\"\n\n\
         [[rule]]\naction = \"*\"\nsubject = \"uid:0\"\ndecision = \"allow\"\n\n\
         [[rule]]\naction = \"*\"\ndecision = \"deny\"\nreason = \"no\"\n",
    ));
    let since = (now_secs() - 1).to_string();
    let until = (now_secs() + 1).to_string();
    ok(&s.docker_as(NOBODY, &["events", "--since", &since, "--until", &until]));
    // The implicit container list (for event attributes) was not attempted, so not refused.
    assert!(
        !s.audit().contains("container.list"),
        "an unasked-for refusal was audited:\n{}",
        s.audit()
    );
    // Without the right to read the engine's facts, events are refused with the reason.
    let s = Serve::start(None);
    let err = refused(&s.docker_as(NOBODY, &["events", "--since", &since, "--until", &until]));
    assert!(err.contains("only root may use the engine"), "{err}");
}

#[test]
fn ping_answers_head_and_get_with_the_headers_clients_read() {
    if !support::require_root() {
        return;
    }
    let s = Serve::start(None);
    let head =
        s.raw("HEAD /_ping HTTP/1.1\r\nHost: api.moby.localhost\r\nConnection: close\r\n\r\n");
    let lower = head.to_ascii_lowercase();
    assert!(head.starts_with("HTTP/1.1 200 OK\r\n"), "{head}");
    for h in [
        "api-version: 1.44",
        "ostype: linux",
        "docker-experimental: false",
        "builder-version: 1",
        "swarm: inactive",
        "cache-control: no-cache, no-store, must-revalidate",
        "pragma: no-cache",
    ] {
        assert!(
            lower.contains(&format!("\r\n{h}\r\n")),
            "missing {h}:\n{head}"
        );
    }
    let get = s.raw("GET /v1.44/_ping HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
    assert!(get.ends_with("\r\n\r\nOK"), "{get}");
    let too_new = s.raw("GET /v1.45/version HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
    assert!(
        too_new.starts_with("HTTP/1.1 400 Bad Request\r\n"),
        "{too_new}"
    );
    assert!(
        too_new.contains(
            r#"{"message":"client version 1.45 is too new. Maximum supported API version is 1.44"}"#
        ),
        "{too_new}"
    );
    let unknown = s.raw("GET /v1.44/swarm HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
    assert!(
        unknown.starts_with("HTTP/1.1 404 Not Found\r\n"),
        "{unknown}"
    );
    assert!(
        unknown.contains(r#"{"message":"page not found: /swarm"}"#),
        "{unknown}"
    );
}

#[test]
fn the_socket_is_0660_and_a_second_server_refuses_it() {
    if !support::require_root() {
        return;
    }
    let s = Serve::start(None);
    let mode = std::fs::metadata(&s.socket).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o660);
    let out = Command::new(support::berth_bin())
        .arg("--root")
        .arg(s.dir.path().join("root2"))
        .arg("serve")
        .arg("--socket")
        .arg(&s.socket)
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(
        text(&out.stderr).contains("another server is already listening"),
        "{}",
        text(&out.stderr)
    );
    // The first one still serves.
    ok(&s.docker(&["version"]));
}

// ---------------------------------------------------------------------------------------------
// Containers and images: these need the runtime and the image manager behind the dispatcher.

const NEEDS: &str = "needs the runtime and image manager (lead wires them)";

fn registry() -> String {
    std::env::var("BERTH_TEST_REGISTRY").unwrap_or_else(|_| "127.0.0.1:5055".into())
}

/// `REGISTRY/berth-serve-test/busybox:latest`: a one-layer image of the static busybox, with
/// its applets linked in /bin, built with umoci and pushed with skopeo (once per test run).
fn test_image() -> String {
    static IMAGE: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    IMAGE
        .get_or_init(|| {
            let reference = format!("{}/berth-serve-test/busybox:latest", registry());
            let dir = tempfile::tempdir().unwrap();
            let layout = dir.path().join("oci");
            let bundle = dir.path().join("bundle");
            let sh = |script: &str| {
                let out = Command::new("sh").arg("-ec").arg(script).output().unwrap();
                assert!(
                    out.status.success(),
                    "{script}\n{}{}",
                    text(&out.stdout),
                    text(&out.stderr)
                );
            };
            sh(&format!(
                "umoci init --layout {l}
                 umoci new --image {l}:latest
                 umoci unpack --rootless --image {l}:latest {b}
                 mkdir -p {b}/rootfs/bin {b}/rootfs/tmp
                 cp /bin/busybox {b}/rootfs/bin/busybox
                 for a in $(/bin/busybox --list); do [ -e {b}/rootfs/bin/$a ] || ln -s busybox {b}/rootfs/bin/$a; done
                 umoci repack --image {l}:latest {b}
                 umoci config --image {l}:latest --config.cmd sh --config.env PATH=/bin
                 skopeo copy --dest-tls-verify=false oci:{l}:latest docker://{r}",
                l = layout.display(),
                b = bundle.display(),
                r = reference,
            ));
            reference
        })
        .clone()
}

/// Poll `cond` until it holds (or fail after T).
fn eventually(what: &str, mut cond: impl FnMut() -> bool) {
    let deadline = Instant::now() + T;
    while !cond() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn docker_pull_shows_progress_then_images_lists_it() {
    let _ = NEEDS;
    if !support::require_root() {
        return;
    }
    let image = test_image();
    let s = Serve::start(None);
    let out = ok(&s.docker(&["pull", &image]));
    assert!(
        out.contains("Pulling from berth-serve-test/busybox"),
        "{out}"
    );
    assert!(
        out.contains("Pull complete") || out.contains("Already exists"),
        "{out}"
    );
    assert!(
        out.contains(&format!("Status: Downloaded newer image for {image}")),
        "{out}"
    );
    assert!(out.trim_end().ends_with(&image), "{out}");
    let again = ok(&s.docker(&["pull", &image]));
    assert!(again.contains("Image is up to date"), "{again}");
    let images = ok(&s.docker(&["images", "--format", "{{.Repository}}:{{.Tag}}"]));
    assert_eq!(images.trim(), image);
    let inspect = ok(&s.docker(&[
        "image",
        "inspect",
        "--format",
        "{{json .Config.Cmd}}",
        &image,
    ]));
    assert_eq!(inspect.trim(), r#"["sh"]"#);
    let history = ok(&s.docker(&["history", "-q", &image]));
    assert!(!history.trim().is_empty());
}

#[test]
fn docker_run_rm_prints_hi_and_removes_the_container() {
    if !support::require_root() {
        return;
    }
    let image = test_image();
    let s = Serve::start(None);
    // Not pulled yet: create answers 404, the CLI pulls and creates again.
    let o = s.docker(&["run", "--rm", &image, "echo", "hi"]);
    assert_eq!(ok(&o), "hi\n", "stderr: {}", text(&o.stderr));
    assert!(
        text(&o.stderr).contains("Unable to find image"),
        "{}",
        text(&o.stderr)
    );
    assert_eq!(ok(&s.docker(&["ps", "-aq"])), "", "--rm left a container");
    // Exit codes and stderr come through.
    let o = s.docker(&["run", "--rm", &image, "sh", "-c", "echo oops >&2; exit 7"]);
    assert_eq!(o.status.code(), Some(7));
    assert_eq!(text(&o.stderr), "oops\n");
}

#[test]
fn detached_container_life_ps_logs_stop_restart_rm() {
    if !support::require_root() {
        return;
    }
    let image = test_image();
    let s = Serve::start(None);
    ok(&s.docker(&["pull", &image]));
    let id = ok(&s.docker(&[
        "run",
        "-d",
        "--name",
        "ticker",
        &image,
        "sh",
        "-c",
        "echo started; trap 'echo bye; exit 0' TERM; while true; do sleep 0.2; done",
    ]));
    let id = id.trim().to_owned();
    assert_eq!(id.len(), 64, "{id}");
    let ps = ok(&s.docker(&["ps", "--format", "{{.ID}} {{.Names}} {{.Status}}"]));
    assert!(ps.starts_with(&format!("{} ticker Up", &id[..12])), "{ps}");
    // logs -f follows until the container stops.
    let mut follow = s
        .cmd(&["logs", "-f", "ticker"])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut fout = follow.stdout.take().unwrap();
    let mut first = [0u8; 8];
    fout.read_exact(&mut first).unwrap();
    assert_eq!(&first, b"started\n");
    ok(&s.docker(&["stop", "ticker"]));
    let mut rest = String::new();
    fout.read_to_string(&mut rest).unwrap();
    assert_eq!(rest, "bye\n");
    assert!(follow.wait().unwrap().success());
    let ps = ok(&s.docker(&["ps", "-a", "--format", "{{.Status}}"]));
    assert!(ps.starts_with("Exited (0)"), "{ps}");
    // A second stop is a 304: the CLI treats it as success.
    ok(&s.docker(&["stop", "ticker"]));
    ok(&s.docker(&["restart", "ticker"]));
    let state = ok(&s.docker(&[
        "inspect",
        "--format",
        "{{.State.Status}} {{.Config.Tty}} {{.Name}}",
        "ticker",
    ]));
    assert_eq!(state.trim(), "running false /ticker");
    let logs = ok(&s.docker(&["logs", "ticker"]));
    assert!(logs.starts_with("started\nbye\nstarted\n"), "{logs}");
    // rm without -f of a running container is a 409 …
    let err = refused(&s.docker(&["rm", "ticker"]));
    assert!(err.contains("Error response from daemon"), "{err}");
    // … with -f it goes.
    ok(&s.docker(&["rm", "-f", "ticker"]));
    assert_eq!(ok(&s.docker(&["ps", "-aq"])), "");
}

#[test]
fn docker_exec_with_and_without_a_tty() {
    if !support::require_root() {
        return;
    }
    let image = test_image();
    let s = Serve::start(None);
    ok(&s.docker(&["pull", &image]));
    ok(&s.docker(&["run", "-d", "--name", "box", &image, "sleep", "600"]));
    // Without a TTY: separate streams, the exit code from /exec/ID/json.
    let o = s.docker(&["exec", "box", "sh", "-c", "echo out; echo err >&2; exit 4"]);
    assert_eq!(o.status.code(), Some(4));
    assert_eq!(
        (text(&o.stdout), text(&o.stderr)),
        ("out\n".into(), "err\n".into())
    );
    // stdin, half-closed by the CLI at its end.
    let mut c = s.cmd(&["exec", "-i", "box", "tr", "a-z", "A-Z"]);
    c.stdin(Stdio::piped());
    let mut child = c.stdout(Stdio::piped()).spawn().unwrap();
    child.stdin.take().unwrap().write_all(b"shout\n").unwrap();
    let out = child.wait_with_output().unwrap();
    assert_eq!(text(&out.stdout), "SHOUT\n");
    // With a TTY, under tmux: an interactive shell, resized, and its exit code.
    let cmd = format!(
        "DOCKER_HOST={} DOCKER_CONFIG={} {} exec -it box sh; echo EXEC-EXIT-$?; sleep 60",
        s.host(),
        s.dir.path().join("docker-config").display(),
        docker_cli()
    );
    let tmux = support::tmux::Tmux::start("serve-exec", 100, 30, &cmd);
    tmux.wait_text("#", T);
    tmux.send(&["echo tty-$((6*7)) $(stty size)", "Enter"]);
    tmux.wait_text("tty-42 30 100", T);
    tmux.send(&["exit 3", "Enter"]);
    tmux.wait_text("EXEC-EXIT-3", T);
    ok(&s.docker(&["rm", "-f", "box"]));
}

#[test]
fn docker_stats_no_stream_and_top() {
    if !support::require_root() {
        return;
    }
    let image = test_image();
    let s = Serve::start(None);
    ok(&s.docker(&["pull", &image]));
    ok(&s.docker(&[
        "run", "-d", "--name", "busy", "--memory", "64m", &image, "sleep", "600",
    ]));
    let stats = ok(&s.docker(&[
        "stats",
        "--no-stream",
        "--format",
        "{{.Name}}|{{.MemUsage}}|{{.PIDs}}",
    ]));
    let line = stats.lines().next().unwrap_or_default();
    let parts: Vec<&str> = line.split('|').collect();
    assert_eq!(parts.first(), Some(&"busy"), "{stats}");
    assert!(parts[1].ends_with("/ 64MiB"), "{stats}");
    assert_eq!(parts[2], "1", "{stats}");
    let top = ok(&s.docker(&["top", "busy"]));
    assert!(top.contains("sleep 600"), "{top}");
    ok(&s.docker(&["rm", "-f", "busy"]));
}

#[test]
fn docker_events_shows_the_run() {
    if !support::require_root() {
        return;
    }
    let image = test_image();
    let s = Serve::start(None);
    ok(&s.docker(&["pull", &image]));
    let since = now_secs() - 1;
    ok(&s.docker(&["run", "--rm", "--name", "once", &image, "true"]));
    let until = since + 3600;
    let mut ev = s
        .cmd(&[
            "events",
            "--since",
            &since.to_string(),
            "--until",
            &until.to_string(),
            "--filter",
            "container=once",
            "--format",
            "{{.Type}} {{.Action}} {{.Actor.Attributes.name}}",
        ])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = std::io::BufReader::new(ev.stdout.take().unwrap()).lines();
    let mut seen = Vec::new();
    eventually("the destroy event", || {
        let Some(Ok(l)) = lines.next() else {
            return true;
        };
        seen.push(l.clone());
        l == "container destroy once"
    });
    let _ = ev.kill();
    let _ = ev.wait();
    assert_eq!(
        seen,
        [
            "container create once",
            "container start once",
            "container die once",
            "container destroy once"
        ]
    );
}

#[test]
fn docker_tag_push_rmi() {
    if !support::require_root() {
        return;
    }
    let image = test_image();
    let s = Serve::start(None);
    ok(&s.docker(&["pull", &image]));
    let pushed = format!("{}/berth-serve-test/pushed:v1", registry());
    ok(&s.docker(&["tag", &image, &pushed]));
    let out = ok(&s.docker(&["push", &pushed]));
    assert!(out.contains("The push refers to repository"), "{out}");
    assert!(out.contains("v1: digest: sha256:"), "{out}");
    let rmi = ok(&s.docker(&["rmi", &pushed]));
    assert!(rmi.contains(&format!("Untagged: {pushed}")), "{rmi}");
    // Pull it back from the registry: the push really happened.
    ok(&s.docker(&["pull", &pushed]));
    let err = refused(&s.docker(&["rmi", "nosuch:1"]));
    assert!(
        err.contains("No such image") || err.contains("no such image"),
        "{err}"
    );
}

#[test]
fn docker_build_with_the_classic_builder() {
    if !support::require_root() {
        return;
    }
    let image = test_image();
    let s = Serve::start(None);
    ok(&s.docker(&["pull", &image]));
    let ctx = s.dir.path().join("ctx");
    std::fs::create_dir_all(&ctx).unwrap();
    std::fs::write(ctx.join("hello.txt"), "hello from the context\n").unwrap();
    std::fs::write(
        ctx.join("Dockerfile"),
        format!("FROM {image}\nCOPY hello.txt /hello.txt\nCMD [\"cat\", \"/hello.txt\"]\n"),
    )
    .unwrap();
    let mut c = s.cmd(&["build", "-t", "built:1", ctx.to_str().unwrap()]);
    c.env("DOCKER_BUILDKIT", "0");
    let out = ok(&run(c));
    assert!(out.contains("Successfully built"), "{out}");
    assert!(out.contains("Successfully tagged built:1"), "{out}");
    assert_eq!(
        ok(&s.docker(&["run", "--rm", "built:1"])),
        "hello from the context\n"
    );
}

#[test]
fn docker_save_then_load() {
    if !support::require_root() {
        return;
    }
    let image = test_image();
    let s = Serve::start(None);
    ok(&s.docker(&["pull", &image]));
    let tar = s.dir.path().join("img.tar");
    ok(&s.docker(&["save", "-o", tar.to_str().unwrap(), &image]));
    ok(&s.docker(&["rmi", &image]));
    let out = ok(&s.docker(&["load", "-i", tar.to_str().unwrap()]));
    assert!(out.contains(&format!("Loaded image: {image}")), "{out}");
}

/// `berth --host unix://…`: the CLI and the console drive a running `berth serve`, and see
/// what the docker CLI did through the same engine.
#[test]
fn berth_cli_and_console_drive_a_running_serve() {
    if !support::require_root() {
        return;
    }
    let image = test_image();
    let s = Serve::start(None);
    ok(&s.docker(&["pull", &image]));
    let berth = |args: &[&str]| {
        Command::new(support::berth_bin())
            .env_remove("BERTH_ROOT")
            .arg("--host")
            .arg(s.host())
            .args(args)
            .output()
            .unwrap()
    };
    // a one-shot run through the remote engine, output and exit code included
    let out = berth(&[
        "run",
        "--rm",
        &image,
        "sh",
        "-c",
        "echo hi-over-the-socket; exit 3",
    ]);
    assert_eq!(
        out.status.code(),
        Some(3),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(text(&out.stdout), "hi-over-the-socket\n");
    // a container the docker CLI started is there for berth
    ok(&s.docker(&["run", "-d", "--name", "from-docker", &image, "sleep", "600"]));
    let ps = berth(&["ps"]);
    assert!(
        text(&ps.stdout).contains("from-docker"),
        "{}",
        text(&ps.stdout)
    );
    let exec = berth(&["exec", "from-docker", "sh", "-c", "echo inside >&2; exit 5"]);
    assert_eq!(
        (exec.status.code(), text(&exec.stderr)),
        (Some(5), "inside\n".to_owned())
    );
    // the console on the remote engine: the list, then a change made by docker, live
    let cmd = format!("{} --host {}", support::berth_bin().display(), s.host());
    let t = support::tmux::Tmux::start("remote-console", 120, 30, &cmd);
    t.wait_text("from-docker", Duration::from_secs(20));
    assert!(
        t.screen().contains("berth.sock"),
        "the header names the remote engine"
    );
    // its CPU % and memory come over the socket too (one ContainerStatsAll per refresh)
    t.wait_for("a CPU % for from-docker", Duration::from_secs(20), |sc| {
        sc.lines().any(|l| {
            l.contains("from-docker")
                && l.split_whitespace().any(|w| {
                    w.strip_suffix('%')
                        .is_some_and(|n| n.parse::<f64>().is_ok())
                })
        })
    });
    // attach to a TTY container docker started, from the console, over the socket
    ok(&s.docker(&["run", "-d", "-t", "--name", "tty-docker", &image, "sh"]));
    t.wait_text("tty-docker", Duration::from_secs(20));
    t.send(&["/"]);
    t.send(&["-l", "tty-docker"]);
    t.send(&["Enter"]);
    t.send(&["A"]);
    t.wait_text("Attached to tty-docker", Duration::from_secs(20));
    t.send(&["-l", "echo remote-$((40+2))"]);
    t.send(&["Enter"]);
    t.wait_for("the attached sh answering", Duration::from_secs(20), |sc| {
        sc.lines()
            .any(|l| l.trim_matches(|c| c == '│' || c == ' ') == "remote-42")
    });
    t.send(&["C-]"]);
    t.wait_text("detached from tty-docker", Duration::from_secs(20));
    t.send(&["Escape"]);
    ok(&s.docker(&["rm", "-f", "from-docker", "tty-docker"]));
    t.wait_for("the removal", Duration::from_secs(20), |sc| {
        !sc.contains("from-docker")
    });
}

// ---------------------------------------------------------------------------------------------
// Networks, published ports and volumes.

/// A TCP port on 127.0.0.1 that nothing listens on right now.
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// The shell of a container that serves `text` over HTTP on port 80 (busybox httpd).
fn httpd(text: &str) -> String {
    format!("mkdir -p /www && echo {text} > /www/index.html && exec httpd -f -p 80 -h /www")
}

#[test]
fn docker_network_create_ls_inspect_rm_and_containers_reach_each_other_by_name() {
    if !support::require_root() {
        return;
    }
    let image = test_image();
    let s = Serve::start(None);
    ok(&s.docker(&["pull", &image]));
    let id = ok(&s.docker(&["network", "create", "--label", "team=a", "app-net"]));
    assert_eq!(id.trim().len(), 64, "{id}");
    // Refused, not ignored: what berth's bridge networks cannot be.
    let err = refused(&s.docker(&["network", "create", "--internal", "sealed"]));
    assert!(err.contains("--internal"), "{err}");
    let err = refused(&s.docker(&["network", "create", "app-net"]));
    assert!(err.contains("already exists"), "{err}");

    let ls = ok(&s.docker(&[
        "network",
        "ls",
        "--format",
        "{{.Name}} {{.Driver}} {{.Scope}}",
    ]));
    let mut lines: Vec<&str> = ls.lines().collect();
    lines.sort();
    assert_eq!(
        lines,
        [
            "app-net bridge local",
            "bridge bridge local",
            "host host local",
            "none null local"
        ]
    );
    let labelled = ok(&s.docker(&["network", "ls", "-q", "--filter", "label=team=a"]));
    assert_eq!(labelled.trim(), &id.trim()[..12]);
    let custom = ok(&s.docker(&[
        "network",
        "ls",
        "--format",
        "{{.Name}}",
        "-f",
        "type=custom",
    ]));
    assert_eq!(custom.trim(), "app-net");

    // A server known by its name and an alias, a client on the same network.
    ok(&s.docker(&[
        "run",
        "-d",
        "--name",
        "web",
        "--network",
        "app-net",
        "--network-alias",
        "db",
        &image,
        "sh",
        "-c",
        &httpd("hello-from-web"),
    ]));
    for host in ["web", "db"] {
        let url = format!("http://{host}/");
        let mut got = String::new();
        // httpd may not listen yet when the client starts: retry until it answers.
        eventually(&format!("{url} to answer"), || {
            let o = s.docker(&[
                "run",
                "--rm",
                "--network",
                "app-net",
                &image,
                "wget",
                "-qO-",
                &url,
            ]);
            got = text(&o.stdout);
            o.status.success()
        });
        assert_eq!(got, "hello-from-web\n", "through {host}");
    }
    // Its address, as inspect and network inspect show it.
    let ip = ok(&s.docker(&[
        "inspect", "--format",
        "{{range $n, $e := .NetworkSettings.Networks}}{{$n}} {{$e.IPAddress}} {{$e.Aliases}}{{end}}",
        "web",
    ]));
    let parts: Vec<&str> = ip.trim().splitn(3, ' ').collect();
    assert_eq!(parts[0], "app-net", "{ip}");
    assert!(parts[2].contains("db"), "{ip}");
    let members = ok(&s.docker(&[
        "network",
        "inspect",
        "--format",
        "{{range .Containers}}{{.Name}} {{.IPv4Address}}{{end}} {{(index .IPAM.Config 0).Subnet}}",
        "app-net",
    ]));
    assert!(
        members.starts_with(&format!("web {}/", parts[1])),
        "{members} vs {ip}"
    );
    // The CLI's mode network is the configured one.
    let mode = ok(&s.docker(&["inspect", "--format", "{{.HostConfig.NetworkMode}}", "web"]));
    assert_eq!(mode.trim(), "app-net");

    // Connect to a second network, then disconnect again.
    ok(&s.docker(&["network", "create", "side-net"]));
    ok(&s.docker(&["network", "connect", "side-net", "web"]));
    let nets = ok(&s.docker(&[
        "inspect",
        "--format",
        "{{range $n, $e := .NetworkSettings.Networks}}{{$n}} {{end}}",
        "web",
    ]));
    assert_eq!(nets.trim(), "app-net side-net");
    let side = ok(&s.docker(&[
        "network",
        "inspect",
        "--format",
        "{{len .Containers}}",
        "side-net",
    ]));
    assert_eq!(side.trim(), "1");
    ok(&s.docker(&["network", "disconnect", "side-net", "web"]));
    let side = ok(&s.docker(&[
        "network",
        "inspect",
        "--format",
        "{{len .Containers}}",
        "side-net",
    ]));
    assert_eq!(side.trim(), "0");

    // In use: refused; built in: refused; unknown: not found.
    let err = refused(&s.docker(&["network", "rm", "app-net"]));
    assert!(err.contains("active endpoints"), "{err}");
    let err = refused(&s.docker(&["network", "rm", "bridge"]));
    assert!(err.contains("pre-defined"), "{err}");
    let err = refused(&s.docker(&["network", "inspect", "no-such-net"]));
    assert!(err.contains("network no-such-net not found"), "{err}");
    ok(&s.docker(&["rm", "-f", "web"]));
    ok(&s.docker(&["network", "rm", "app-net"]));
    let err = refused(&s.docker(&["inspect", "app-net"]));
    assert!(err.contains("No such object"), "{err}");

    // Prune takes the unused user-defined networks and leaves the built-in ones.
    ok(&s.docker(&["network", "create", "spare-net"]));
    let out = ok(&s.docker(&["network", "prune", "-f"]));
    assert!(out.contains("Deleted Networks:"), "{out}");
    assert!(
        out.contains("side-net") && out.contains("spare-net"),
        "{out}"
    );
    let ls = ok(&s.docker(&["network", "ls", "--format", "{{.Name}}"]));
    let mut left: Vec<&str> = ls.lines().collect();
    left.sort();
    assert_eq!(left, ["bridge", "host", "none"]);
}

#[test]
fn docker_run_publish_is_reachable_from_the_host_on_loopback() {
    if !support::require_root() {
        return;
    }
    let image = test_image();
    let s = Serve::start(None);
    ok(&s.docker(&["pull", &image]));
    let port = free_port();
    let publish = format!("127.0.0.1:{port}:80");
    ok(&s.docker(&[
        "run",
        "-d",
        "--name",
        "pub",
        "-p",
        &publish,
        &image,
        "sh",
        "-c",
        &httpd("published"),
    ]));
    let mut body = String::new();
    eventually("the published port to answer", || {
        let Ok(mut c) = std::net::TcpStream::connect(("127.0.0.1", port)) else {
            return false;
        };
        c.set_read_timeout(Some(T)).unwrap();
        if c.write_all(b"GET / HTTP/1.0\r\nHost: x\r\n\r\n").is_err() {
            return false;
        }
        body.clear();
        c.read_to_string(&mut body).is_ok() && body.starts_with("HTTP/1.")
    });
    assert!(body.ends_with("\r\n\r\npublished\n"), "{body}");
    let ports = ok(&s.docker(&["port", "pub"]));
    assert_eq!(ports.trim(), format!("80/tcp -> 127.0.0.1:{port}"));
    let bindings = ok(&s.docker(&[
        "inspect",
        "--format",
        "{{json .HostConfig.PortBindings}}",
        "pub",
    ]));
    assert_eq!(
        bindings.trim(),
        format!(r#"{{"80/tcp":[{{"HostIp":"127.0.0.1","HostPort":"{port}"}}]}}"#)
    );
    let ps = ok(&s.docker(&["ps", "--format", "{{.Ports}}"]));
    assert_eq!(ps.trim(), format!("127.0.0.1:{port}->80/tcp"));
    // The port is taken: a second container cannot have it.
    let err = refused(&s.docker(&["run", "-d", "-p", &publish, &image, "true"]));
    assert!(err.contains("already allocated"), "{err}");
    ok(&s.docker(&["rm", "-f", "pub"]));
    eventually("the port to be released", || {
        std::net::TcpStream::connect(("127.0.0.1", port)).is_err()
    });
}

#[test]
fn docker_volumes_persist_across_containers_and_prune() {
    if !support::require_root() {
        return;
    }
    let image = test_image();
    let s = Serve::start(None);
    ok(&s.docker(&["pull", &image]));
    let name = ok(&s.docker(&["volume", "create", "--label", "team=a", "keep"]));
    assert_eq!(name.trim(), "keep");
    let ls = ok(&s.docker(&["volume", "ls", "--format", "{{.Driver}} {{.Name}}"]));
    assert_eq!(ls.trim(), "local keep");
    let mountpoint = ok(&s.docker(&["volume", "inspect", "--format", "{{.Mountpoint}}", "keep"]));
    assert_eq!(
        Path::new(mountpoint.trim()),
        s.root.join("volumes/keep/_data")
    );
    let err = refused(&s.docker(&["volume", "create", "--driver", "nfs", "remote"]));
    assert!(err.contains("nfs"), "{err}");

    // Written by one container, read by the next.
    ok(&s.docker(&[
        "run",
        "--rm",
        "-v",
        "keep:/data",
        &image,
        "sh",
        "-c",
        "echo kept > /data/f",
    ]));
    let out = ok(&s.docker(&[
        "run",
        "--rm",
        "-v",
        "keep:/data:ro",
        &image,
        "cat",
        "/data/f",
    ]));
    assert_eq!(out, "kept\n");
    assert_eq!(
        std::fs::read_to_string(s.root.join("volumes/keep/_data/f")).unwrap(),
        "kept\n"
    );
    // --mount creates a volume on first use.
    ok(&s.docker(&[
        "run",
        "--rm",
        "--mount",
        "type=volume,src=made,dst=/m",
        &image,
        "sh",
        "-c",
        "echo m > /m/x",
    ]));
    let out = ok(&s.docker(&[
        "run",
        "--rm",
        "--mount",
        "src=made,dst=/m",
        &image,
        "cat",
        "/m/x",
    ]));
    assert_eq!(out, "m\n");

    // In use: refused, and inspect shows the mount.
    ok(&s.docker(&[
        "run",
        "-d",
        "--name",
        "user",
        "-v",
        "keep:/data",
        &image,
        "sleep",
        "600",
    ]));
    let err = refused(&s.docker(&["volume", "rm", "keep"]));
    assert!(err.contains("in use"), "{err}");
    let mounts = ok(&s.docker(&[
        "inspect",
        "--format",
        "{{range .Mounts}}{{.Type}} {{.Name}} {{.Destination}} {{.RW}}{{end}}",
        "user",
    ]));
    assert_eq!(mounts.trim(), "volume keep /data true");
    let dangling = ok(&s.docker(&["volume", "ls", "-q", "-f", "dangling=true"]));
    assert_eq!(dangling.trim(), "made");
    ok(&s.docker(&["rm", "-f", "user"]));

    // An anonymous volume, left behind by a removed container.
    let c = ok(&s.docker(&["create", "-v", "/anon", &image, "true"]));
    let anon = ok(&s.docker(&[
        "inspect",
        "--format",
        "{{range .Mounts}}{{.Name}}{{end}}",
        c.trim(),
    ]));
    assert_eq!(anon.trim().len(), 64, "{anon}");
    ok(&s.docker(&["rm", c.trim()]));
    // Prune takes anonymous volumes only, `-a` every unused one.
    let out = ok(&s.docker(&["volume", "prune", "-f"]));
    assert!(out.contains(anon.trim()), "{out}");
    let mut names: Vec<String> = ok(&s.docker(&["volume", "ls", "-q"]))
        .lines()
        .map(str::to_owned)
        .collect();
    names.sort();
    assert_eq!(names, ["keep", "made"]);
    let out = ok(&s.docker(&["volume", "prune", "-af"]));
    assert!(out.contains("keep") && out.contains("made"), "{out}");
    assert_eq!(ok(&s.docker(&["volume", "ls", "-q"])), "");

    // Unknown: not found, unless forced.
    let err = refused(&s.docker(&["volume", "rm", "gone"]));
    assert!(err.contains("no such volume"), "{err}");
    ok(&s.docker(&["volume", "rm", "-f", "gone"]));
    let err = refused(&s.docker(&["volume", "inspect", "gone"]));
    assert!(err.contains("no such volume"), "{err}");
    ok(&s.docker(&["volume", "create", "short-lived"]));
    ok(&s.docker(&["volume", "rm", "short-lived"]));
}

// ---------------------------------------------------------------------------------------------
// TCP with TLS client certificates.

/// A CA, a server certificate for 127.0.0.1 and client certificates (`CN=root`, `CN=nobody`,
/// `CN=berth-no-such-user`) signed by it, plus a client certificate (`CN=root`) from another CA.
fn make_pki(dir: &Path) {
    let script = r#"
        key='-newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes'
        ca() { openssl req -x509 $key -keyout $1-key.pem -out $1.pem -days 2 -subj "/CN=$1"; }
        leaf() {
            openssl req $key -keyout $1-key.pem -out $1.csr -subj "/O=berth tests/CN=$2"
            openssl x509 -req -in $1.csr -CA $3.pem -CAkey $3-key.pem -CAcreateserial \
                -out $1.pem -days 2 -extfile $4.ext
        }
        printf 'subjectAltName=IP:127.0.0.1\nextendedKeyUsage=serverAuth\n' > server.ext
        printf 'extendedKeyUsage=clientAuth\n' > client.ext
        ca ca; ca other-ca
        leaf server localhost ca server
        leaf root root ca client
        leaf nobody nobody ca client
        leaf stranger berth-no-such-user ca client
        leaf forged root other-ca client
    "#;
    let out = Command::new("sh")
        .arg("-ec")
        .arg(script)
        .current_dir(dir)
        .output()
        .expect("openssl (Debian package openssl) is needed");
    assert!(out.status.success(), "{}", text(&out.stderr));
}

impl Serve {
    /// `berth serve --tcp 127.0.0.1:0` with the test PKI in `pki`; returns the server and
    /// its `tcp://127.0.0.1:PORT`.
    fn start_tls(policy: Option<&str>, pki: &Path) -> (Self, String) {
        let f = |n: &str| pki.join(n).display().to_string();
        let (ca, cert, key) = (f("ca.pem"), f("server.pem"), f("server-key.pem"));
        let s = Self::start_with(
            policy,
            &[
                "--tcp",
                "127.0.0.1:0",
                "--tlscacert",
                &ca,
                "--tlscert",
                &cert,
                "--tlskey",
                &key,
            ],
        );
        let mut host = String::new();
        eventually("berth serve to say its tcp address", || {
            let log = s.log();
            match log.split("on tcp://").nth(1) {
                Some(rest) => {
                    host = format!("tcp://{}", rest.split_whitespace().next().unwrap_or(""));
                    true
                }
                None => false,
            }
        });
        (s, host)
    }

    /// The docker CLI over TCP with TLS, presenting client certificate `client` (none: `None`).
    fn docker_tls(&self, host: &str, pki: &Path, client: Option<&str>, args: &[&str]) -> Output {
        let cfg = self.dir.path().join("docker-config");
        std::fs::create_dir_all(&cfg).unwrap();
        let mut c = Command::new(docker_cli());
        c.arg("--tlsverify")
            .arg("--tlscacert")
            .arg(pki.join("ca.pem"));
        if let Some(name) = client {
            c.arg("--tlscert")
                .arg(pki.join(format!("{name}.pem")))
                .arg("--tlskey")
                .arg(pki.join(format!("{name}-key.pem")));
        }
        c.arg("-H")
            .arg(host)
            .args(args)
            .env_remove("DOCKER_HOST")
            .env_remove("DOCKER_TLS_VERIFY")
            .env_remove("DOCKER_CERT_PATH")
            .env("DOCKER_CONFIG", &cfg)
            .stdin(Stdio::null());
        run(c)
    }
}

#[test]
fn serve_tcp_refuses_to_start_without_its_tls_files() {
    if !support::require_root() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let out = Command::new(support::berth_bin())
        .arg("--root")
        .arg(dir.path().join("root"))
        .args(["serve", "--socket"])
        .arg(dir.path().join("s.sock"))
        .args(["--tcp", "127.0.0.1:0", "--tlscacert"])
        .arg(dir.path().join("missing-ca.pem"))
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = text(&out.stderr);
    assert!(
        err.contains("missing-ca.pem") && err.contains("--tcp needs TLS with client certificates"),
        "{err}"
    );
    assert!(!dir.path().join("s.sock").exists(), "nothing is served");
    // TLS files without --tcp make no sense: refused by the argument parser.
    let out = Command::new(support::berth_bin())
        .arg("--root")
        .arg(dir.path().join("root"))
        .args(["serve", "--tlscacert", "/x.pem"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(text(&out.stderr).contains("--tcp"), "{}", text(&out.stderr));
}

#[test]
fn docker_over_tcp_needs_a_client_certificate_from_the_ca_and_its_cn_is_the_subject() {
    if !support::require_root() {
        return;
    }
    let pki = tempfile::tempdir().unwrap();
    make_pki(pki.path());
    let (s, host) = Serve::start_tls(Some(GRANT_LIST_TO_NOBODY), pki.path());
    assert!(host.starts_with("tcp://127.0.0.1:"), "{host}");
    let p = pki.path();

    // CN=root: root's rights.
    let v = ok(&s.docker_tls(
        &host,
        p,
        Some("root"),
        &["version", "--format", "{{.Server.APIVersion}}"],
    ));
    assert_eq!(v.trim(), "1.44");
    ok(&s.docker_tls(&host, p, Some("root"), &["network", "ls"]));

    // No client certificate: the handshake is refused.
    let err = refused(&s.docker_tls(&host, p, None, &["version"]));
    assert!(err.to_lowercase().contains("certificate"), "{err}");
    // A certificate from another CA: refused too, whatever its CN says.
    let err = refused(&s.docker_tls(&host, p, Some("forged"), &["version"]));
    assert!(
        err.to_lowercase().contains("certificate") || err.contains("tls"),
        "{err}"
    );

    // CN=nobody: the policy's rules for uid 65534 apply (list yes, anything else no).
    ok(&s.docker_tls(&host, p, Some("nobody"), &["ps"]));
    let err = refused(&s.docker_tls(&host, p, Some("nobody"), &["network", "ls"]));
    assert!(
        err.contains("not granted by the serve test policy"),
        "{err}"
    );
    let audit = s.audit();
    assert!(
        audit
            .lines()
            .any(|l| l.contains("network.list") && l.contains("65534")),
        "{audit}"
    );
    // A CN that names no local user has no rights at all.
    let err = refused(&s.docker_tls(&host, p, Some("stranger"), &["ps"]));
    assert!(err.contains("not a user of this host"), "{err}");

    // The unix socket is still served, as before.
    ok(&s.docker(&["version"]));
}
