//! Networking and volumes through the `berth` CLI, for real: bridge networks, veth pairs,
//! published ports (kernel NAT) reached on 127.0.0.1, name resolution on user networks,
//! named volumes, read-only binds, and nothing left on the host once containers are gone.
//!
//! Tests talk only to 127.0.0.1 and to addresses inside the namespaces they created. Each uses
//! its own state root; subnets come from berth's private pool (10.88.0.0/16 and up), which
//! never overlaps a route of this host.

#[path = "../support/images.rs"]
mod images;
#[path = "../support/registry.rs"]
mod registry;
#[path = "../support/mod.rs"]
mod support;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

/// A state root of our own; every container and user network in it is removed on drop.
struct Berth {
    root: tempfile::TempDir,
}

impl Berth {
    fn new() -> Self {
        Self {
            root: tempfile::Builder::new()
                .prefix("berth-net-")
                .tempdir()
                .unwrap(),
        }
    }

    fn cmd(&self, args: &[&str]) -> Command {
        let mut c = Command::new(support::berth_bin());
        c.arg("--root").arg(self.root.path()).args(args);
        c
    }

    fn run(&self, args: &[&str]) -> Output {
        self.cmd(args).stdin(Stdio::null()).output().unwrap()
    }

    fn ok(&self, args: &[&str]) -> String {
        let out = self.run(args);
        assert!(
            out.status.success(),
            "berth {args:?} failed: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    fn fails(&self, args: &[&str]) -> String {
        let out = self.run(args);
        assert!(!out.status.success(), "berth {args:?} succeeded");
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    }

    fn image(&self) -> String {
        let image = images::busybox_image();
        self.ok(&["pull", &image]);
        image
    }

    fn inspect(&self, c: &str) -> serde_json::Value {
        let v: serde_json::Value = serde_json::from_str(&self.ok(&["inspect", c])).unwrap();
        v[0].clone()
    }

    /// The bridge devices of this root's networks.
    fn bridges(&self) -> Vec<String> {
        std::fs::read_dir(self.root.path().join("net/networks"))
            .map(|d| {
                d.flatten()
                    .filter_map(|e| {
                        let v: serde_json::Value =
                            serde_json::from_slice(&std::fs::read(e.path()).ok()?).ok()?;
                        v["bridge"].as_str().map(str::to_owned)
                    })
                    .collect()
            })
            .unwrap_or_default()
    }

    /// Mounts under this root (the namespaces' nsfs binds).
    fn mounts(&self) -> Vec<String> {
        let root = self.root.path().canonicalize().unwrap();
        std::fs::read_to_string("/proc/self/mountinfo")
            .unwrap()
            .lines()
            .filter(|l| l.contains(&*root.to_string_lossy()))
            .map(str::to_owned)
            .collect()
    }
}

impl Drop for Berth {
    fn drop(&mut self) {
        let out = self.run(&["ps", "-aq"]);
        for id in String::from_utf8_lossy(&out.stdout).split_whitespace() {
            let _ = self.run(&["rm", "-f", id]);
        }
        let out = self.run(&["network", "ls", "-q"]);
        for id in String::from_utf8_lossy(&out.stdout).split_whitespace() {
            let _ = self.run(&["network", "rm", id]);
        }
        // The default bridge and the root's chains stay up between containers: the root is
        // about to go, so they go now.
        if let Ok(n) = berth::runtime::net::Net::open(self.root.path()) {
            let _ = n.teardown();
        }
    }
}

/// A TCP port nothing on 127.0.0.1 listens on now.
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// GET `path` from 127.0.0.1:`port`, retried until `deadline` (the server is starting).
fn http_get(port: u16, path: &str, deadline: Duration) -> String {
    let end = Instant::now() + deadline;
    let mut last = String::new();
    while Instant::now() < end {
        match TcpStream::connect_timeout(&([127, 0, 0, 1], port).into(), Duration::from_secs(2)) {
            Ok(mut s) => {
                s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
                let req = format!("GET {path} HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n");
                let mut body = String::new();
                if s.write_all(req.as_bytes()).is_ok() && s.read_to_string(&mut body).is_ok() {
                    if body.starts_with("HTTP/1.") {
                        return body;
                    }
                    last = body;
                }
            }
            Err(e) => last = e.to_string(),
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    panic!("nothing answered on 127.0.0.1:{port}{path}: {last}");
}

fn links() -> String {
    String::from_utf8_lossy(
        &Command::new("ip")
            .args(["-o", "link"])
            .output()
            .unwrap()
            .stdout,
    )
    .into_owned()
}

fn nat_rules() -> String {
    String::from_utf8_lossy(
        &Command::new("iptables")
            .args(["-w", "-t", "nat", "-S"])
            .output()
            .unwrap()
            .stdout,
    )
    .into_owned()
}

/// The NAT chain of the root that holds `id`'s rules.
fn chain_of(id: &str) -> String {
    let rules = nat_rules();
    let line = rules
        .lines()
        .find(|l| l.contains(&format!("c:{}", &id[..24])))
        .unwrap_or_else(|| panic!("no NAT rule for {id}:\n{rules}"));
    line.split_whitespace().nth(1).unwrap().to_owned()
}

const HTTPD: &str =
    "mkdir -p /www && echo \"$MSG\" > /www/index.html && exec httpd -f -p 80 -h /www";

#[test]
fn a_bridged_container_serves_its_published_port_on_loopback() {
    if !support::require_root() {
        return;
    }
    let b = Berth::new();
    let image = b.image();
    let port = free_port();
    let publish = format!("127.0.0.1:{port}:80");
    let id = b
        .ok(&[
            "run",
            "-d",
            "--name",
            "web",
            "-e",
            "MSG=hello from the bridge",
            "-p",
            &publish,
            &image,
            "sh",
            "-c",
            HTTPD,
        ])
        .trim()
        .to_owned();
    let answer = http_get(port, "/", Duration::from_secs(10));
    assert!(answer.contains("hello from the bridge"), "{answer}");

    // Docker's view of it: an address in the default network's private subnet, the port
    let c = b.inspect("web");
    let ns = &c["NetworkSettings"];
    let ip: std::net::Ipv4Addr = ns["IPAddress"].as_str().unwrap().parse().unwrap();
    assert!(ip.is_private(), "{ip}");
    assert_eq!(ns["Ports"]["80/tcp"][0]["HostPort"], port.to_string());
    assert_eq!(ns["Networks"]["bridge"]["IPAddress"], ip.to_string());
    let nets: serde_json::Value =
        serde_json::from_str(&b.ok(&["network", "inspect", "bridge"])).unwrap();
    assert_eq!(nets[0]["containers"][0]["ip"], ip.to_string());

    // the container's own files
    let files = b.ok(&["exec", "web", "cat", "/etc/hosts", "/etc/hostname"]);
    assert!(files.contains(&format!("{ip}\t{}", &id[..12])), "{files}");
    let mine = b.ok(&["exec", "web", "ip", "-o", "-4", "addr", "show", "eth0"]);
    assert!(mine.contains(&format!("inet {ip}/")), "{mine}");

    // a second container cannot take the same host port
    let err = b.fails(&["run", "-d", "-p", &publish, &image, "sleep", "5"]);
    assert!(err.contains("already allocated"), "{err}");

    // removal takes the rule, the veth and the namespace with it; the bridge and the root's
    // chains stay up for the next container (as docker0 does)
    let chain = chain_of(&id);
    let bridges = b.bridges();
    assert_eq!(bridges.len(), 1, "{bridges:?}");
    b.ok(&["rm", "-f", "web"]);
    let rules = nat_rules();
    assert!(!rules.contains(&format!("c:{}", &id[..24])), "{rules}");
    assert!(rules.contains(&chain), "{rules}");
    let l = links();
    assert!(!l.contains(&format!("vb{}", &id[..11])), "{l}");
    assert!(l.contains(&bridges[0]), "{l}");
    assert!(b.mounts().is_empty(), "{:?}", b.mounts());
    assert!(
        TcpStream::connect_timeout(&([127, 0, 0, 1], port).into(), Duration::from_secs(1)).is_err(),
        "the port still answers after the container is gone"
    );
    // the next container is on the same bridge, with its own address and port
    let port2 = free_port();
    let publish2 = format!("127.0.0.1:{port2}:80");
    b.ok(&[
        "run",
        "-d",
        "--name",
        "web2",
        "-e",
        "MSG=again",
        "-p",
        &publish2,
        &image,
        "sh",
        "-c",
        HTTPD,
    ]);
    assert!(http_get(port2, "/", Duration::from_secs(10)).contains("again"));
    b.ok(&["rm", "-f", "web2"]);
    // tearing the root's network state down (before deleting a root) takes the rest
    berth::runtime::net::Net::open(b.root.path())
        .unwrap()
        .teardown()
        .unwrap();
    let rules = nat_rules();
    assert!(
        !rules.contains(&chain),
        "the root's chains outlived its teardown: {rules}"
    );
    let l = links();
    assert!(!l.contains(&bridges[0]), "bridge left: {l}");
}

#[test]
fn containers_on_a_user_network_reach_each_other_by_name() {
    if !support::require_root() {
        return;
    }
    let b = Berth::new();
    let image = b.image();
    b.ok(&["network", "create", "appnet"]);
    let ls = b.ok(&["network", "ls"]);
    assert!(ls.contains("appnet") && ls.contains("bridge"), "{ls}");
    b.ok(&[
        "run",
        "-d",
        "--name",
        "db",
        "--network",
        "appnet",
        "--network-alias",
        "database",
        "-e",
        "MSG=db speaking",
        &image,
        "sh",
        "-c",
        HTTPD,
    ]);
    // by name and by alias, from a container started after it
    let script = "for i in $(seq 100); do wget -qO- http://db/ && break; sleep 0.1; done; wget -qO- http://database/";
    let got = b.ok(&[
        "run",
        "--rm",
        "--name",
        "client",
        "--network",
        "appnet",
        &image,
        "sh",
        "-c",
        script,
    ]);
    assert_eq!(got, "db speaking\ndb speaking\n");
    // and the first one learns the later one's name too
    b.ok(&[
        "run",
        "-d",
        "--name",
        "late",
        "--network",
        "appnet",
        "-e",
        "MSG=late too",
        &image,
        "sh",
        "-c",
        HTTPD,
    ]);
    let hosts = b.ok(&["exec", "db", "cat", "/etc/hosts"]);
    assert!(hosts.contains("\tlate"), "{hosts}");
    let script = "for i in $(seq 100); do wget -qO- http://late/ && break; sleep 0.1; done";
    assert_eq!(b.ok(&["exec", "db", "sh", "-c", script]), "late too\n");
    // the default bridge does not resolve names (as in Docker)
    let hosts = b.ok(&["run", "--rm", &image, "cat", "/etc/hosts"]);
    assert!(!hosts.contains("\tdb"), "{hosts}");
    let out = b.run(&[
        "run",
        "--rm",
        &image,
        "wget",
        "-T",
        "2",
        "-qO-",
        "http://db/",
    ]);
    assert!(!out.status.success());

    // connect / disconnect a container on the default bridge
    b.ok(&["run", "-d", "--name", "other", &image, "sleep", "60"]);
    b.ok(&["network", "connect", "appnet", "other"]);
    b.ok(&["exec", "other", "wget", "-qO-", "http://db/"]);
    let hosts = b.ok(&["exec", "db", "cat", "/etc/hosts"]);
    assert!(hosts.contains("\tother"), "{hosts}");
    b.ok(&["network", "disconnect", "appnet", "other"]);
    let hosts = b.ok(&["exec", "db", "cat", "/etc/hosts"]);
    assert!(!hosts.contains("\tother"), "{hosts}");
    b.fails(&["exec", "other", "wget", "-T", "2", "-qO-", "http://db/"]);

    // --network container:db shares db's namespace: db answers on its localhost
    let got = b.ok(&[
        "run",
        "--rm",
        "--network",
        "container:db",
        &image,
        "wget",
        "-qO-",
        "http://127.0.0.1/",
    ]);
    assert_eq!(got, "db speaking\n");

    // a network in use cannot go; empty, it can
    let err = b.fails(&["network", "rm", "appnet"]);
    assert!(err.contains("active endpoints"), "{err}");
    b.ok(&["rm", "-f", "db", "late"]);
    b.ok(&["network", "rm", "appnet"]);
    assert!(!b.ok(&["network", "ls"]).contains("appnet"));
}

#[test]
fn a_container_without_network_has_only_loopback() {
    if !support::require_root() {
        return;
    }
    let b = Berth::new();
    let image = b.image();
    let out = b.ok(&[
        "run",
        "--rm",
        "--network",
        "none",
        &image,
        "ls",
        "/sys/class/net",
    ]);
    assert_eq!(out.split_whitespace().collect::<Vec<_>>(), ["lo"]);
    let up = b.ok(&[
        "run",
        "--rm",
        "--network",
        "none",
        &image,
        "ip",
        "-o",
        "link",
        "show",
        "lo",
    ]);
    assert!(up.contains("UP"), "{up}");
    // and publishing a port there is refused before anything is created
    let err = b.fails(&["run", "--network", "none", "-p", "8080:80", &image, "true"]);
    assert!(err.contains("bridge network"), "{err}");
    assert!(b.ok(&["ps", "-aq"]).trim().is_empty());
}

#[test]
fn a_named_volume_keeps_its_data_across_containers() {
    if !support::require_root() {
        return;
    }
    let b = Berth::new();
    let image = b.image();
    // created on first use
    b.ok(&[
        "run",
        "--name",
        "writer",
        "-v",
        "keep:/data",
        &image,
        "sh",
        "-c",
        "echo persisted > /data/f",
    ]);
    let ls = b.ok(&["volume", "ls"]);
    assert!(ls.contains("keep"), "{ls}");
    let err = b.fails(&["volume", "rm", "keep"]);
    assert!(err.contains("in use"), "{err}");
    b.ok(&["rm", "writer"]);
    let got = b.ok(&[
        "run",
        "--rm",
        "--mount",
        "type=volume,source=keep,target=/v,readonly",
        &image,
        "cat",
        "/v/f",
    ]);
    assert_eq!(got, "persisted\n");
    let v: serde_json::Value = serde_json::from_str(&b.ok(&["volume", "inspect", "keep"])).unwrap();
    let mountpoint = v[0]["mountpoint"].as_str().unwrap().to_owned();
    assert_eq!(
        std::fs::read_to_string(Path::new(&mountpoint).join("f")).unwrap(),
        "persisted\n"
    );

    // a fresh volume is seeded with what the image has at the mount point
    let got = b.ok(&[
        "run",
        "--rm",
        "-v",
        "etcvol:/etc",
        &image,
        "cat",
        "/etc/passwd",
    ]);
    assert!(got.starts_with("root:x:0:0"), "{got}");

    // explicit create, prune of the unused, rm
    b.ok(&["volume", "create", "spare"]);
    b.ok(&[
        "run",
        "-d",
        "--name",
        "holder",
        "-v",
        "keep:/data",
        &image,
        "sleep",
        "60",
    ]);
    let pruned = b.ok(&["volume", "prune", "-f"]);
    assert!(
        pruned.contains("spare") && pruned.contains("etcvol") && !pruned.contains("keep"),
        "{pruned}"
    );
    b.ok(&["rm", "-f", "holder"]);
    b.ok(&["volume", "rm", "keep"]);
    assert!(b.ok(&["volume", "ls", "-q"]).trim().is_empty());
    let err = b.fails(&["run", "--rm", "-v", "../x:/d", &image, "true"]);
    assert!(err.contains("invalid"), "{err}");
}

#[test]
fn a_read_only_bind_refuses_writes_and_a_writable_one_reaches_the_host() {
    if !support::require_root() {
        return;
    }
    let b = Berth::new();
    let image = b.image();
    let host = tempfile::tempdir().unwrap();
    std::fs::write(host.path().join("seen"), "from the host\n").unwrap();
    let h = host.path().to_str().unwrap();
    let ro = format!("{h}:/mnt:ro");
    let out = b.run(&[
        "run",
        "--rm",
        "-v",
        &ro,
        &image,
        "sh",
        "-c",
        "cat /mnt/seen && echo x > /mnt/new",
    ]);
    assert!(!out.status.success());
    assert_eq!(String::from_utf8_lossy(&out.stdout), "from the host\n");
    assert!(String::from_utf8_lossy(&out.stderr).contains("Read-only file system"));
    assert!(!host.path().join("new").exists());
    let mount = format!("type=bind,source={h},target=/mnt,readonly");
    b.fails(&[
        "run", "--rm", "--mount", &mount, &image, "touch", "/mnt/new",
    ]);
    assert!(!host.path().join("new").exists());
    // rw, and a tmpfs beside it
    let rw = format!("{h}:/mnt");
    b.ok(&[
        "run",
        "--rm",
        "-v",
        &rw,
        "--tmpfs",
        "/scratch:size=1m",
        &image,
        "sh",
        "-c",
        "echo back > /mnt/new && grep -q '/scratch tmpfs' /proc/mounts",
    ]);
    assert_eq!(
        std::fs::read_to_string(host.path().join("new")).unwrap(),
        "back\n"
    );
}

#[test]
fn nothing_is_left_on_the_host_after_a_killed_engine_once_containers_are_removed() {
    if !support::require_root() {
        return;
    }
    let b = Berth::new();
    let image = b.image();
    b.ok(&["network", "create", "killnet"]);
    let port = free_port();
    let publish = format!("127.0.0.1:{port}:80");
    // The engine of a foreground `run` is the CLI process: kill it hard mid-life.
    let mut engine = b
        .cmd(&[
            "run",
            "--name",
            "fg",
            "--network",
            "killnet",
            "-e",
            "MSG=still here",
            "-p",
            &publish,
            &image,
            "sh",
            "-c",
            HTTPD,
        ])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    http_get(port, "/", Duration::from_secs(10));
    engine.kill().unwrap();
    engine.wait().unwrap();
    // The port needs no berth process: it still answers.
    assert!(http_get(port, "/", Duration::from_secs(5)).contains("still here"));
    let id = b.inspect("fg")["Id"].as_str().unwrap().to_owned();
    let chain = chain_of(&id);
    // A container removed by its monitor (`--rm`), with no engine to tear its network down.
    b.ok(&[
        "run",
        "--rm",
        "--name",
        "brief",
        "--network",
        "killnet",
        &image,
        "true",
    ]);
    // Its monitor tears its network down with it (no engine command runs meanwhile).
    let attached = || -> Vec<String> {
        std::fs::read_dir(b.root.path().join("net/containers"))
            .unwrap()
            .flatten()
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .collect()
    };
    let end = Instant::now() + Duration::from_secs(10);
    while attached() != [id.as_str()] && Instant::now() < end {
        std::thread::sleep(Duration::from_millis(20));
    }
    assert_eq!(
        attached(),
        [id.as_str()],
        "the --rm container's network outlived it"
    );
    let bridges = b.bridges();
    assert!(!bridges.is_empty());

    // A new engine removes the rest (the network's bridge and the root's chains go with the
    // network).
    b.ok(&["rm", "-f", "fg"]);
    let net: serde_json::Value =
        serde_json::from_str(&b.ok(&["network", "inspect", "killnet"])).unwrap();
    assert_eq!(net[0]["containers"], serde_json::json!([]), "{net}");
    assert!(!nat_rules().contains(&format!("c:{}", &id[..24])));
    b.ok(&["network", "rm", "killnet"]);
    let rules = nat_rules();
    assert!(!rules.contains(&chain), "{rules}");
    let l = links();
    for br in &bridges {
        assert!(!l.contains(br.as_str()), "bridge {br} leaked: {l}");
    }
    assert!(!l.contains(&format!("vb{}", &id[..11])), "veth leaked: {l}");
    assert!(b.mounts().is_empty(), "mounts leaked: {:?}", b.mounts());
    let left: Vec<_> = std::fs::read_dir(b.root.path().join("net/containers"))
        .unwrap()
        .flatten()
        .map(|e| e.file_name())
        .collect();
    assert!(left.is_empty(), "{left:?}");
}

#[test]
fn what_a_deleted_state_root_left_in_the_kernel_goes_at_any_engines_next_sweep() {
    if !support::require_root() {
        return;
    }
    let b = Berth::new();
    let image = b.image();
    let port = free_port();
    let publish = format!("127.0.0.1:{port}:80");
    let id = b
        .ok(&["run", "-d", "-p", &publish, &image, "sleep", "600"])
        .trim()
        .to_owned();
    let chain = chain_of(&id);
    let bridges = b.bridges();
    b.ok(&["stop", "-t", "0", &id]);
    // The root vanishes under its stopped container (as a temp root deleted too early does):
    // its records are gone, the kernel state is not.
    for d in ["containers", "net/networks"] {
        std::fs::remove_dir_all(b.root.path().join(d)).unwrap();
    }
    assert!(!b.mounts().is_empty());
    // Any engine, on any root, cleans it up at its next sweep.
    let other = Berth::new();
    other.ok(&["network", "ls"]);
    let l = links();
    for br in &bridges {
        assert!(!l.contains(br.as_str()), "bridge {br} left: {l}");
    }
    assert!(!nat_rules().contains(&chain), "{}", nat_rules());
    assert!(b.mounts().is_empty(), "{:?}", b.mounts());
}

#[test]
fn a_subnet_allocation_reaps_what_a_deleted_root_left_not_only_a_sweep() {
    if !support::require_root() {
        return;
    }
    let b = Berth::new();
    let image = b.image();
    b.ok(&["run", "--rm", &image, "true"]);
    let bridges = b.bridges();
    let chain = berth::runtime::net::Net::open(b.root.path())
        .unwrap()
        .chains()
        .dnat
        .clone();
    // the bridge and the chains outlive the container
    assert!(links().contains(&bridges[0]), "{}", links());
    assert!(nat_rules().contains(&chain), "{}", nat_rules());
    // the root's records go (a deleted root), and another root allocates a subnet before any
    // sweep ran: the dead root's registry entry is dropped only with its kernel state
    std::fs::remove_dir_all(b.root.path().join("net/networks")).unwrap();
    let other = tempfile::Builder::new()
        .prefix("berth-net-")
        .tempdir()
        .unwrap();
    berth::runtime::net::Net::open(other.path())
        .unwrap()
        .list()
        .unwrap();
    assert!(!links().contains(&bridges[0]), "{}", links());
    assert!(!nat_rules().contains(&chain), "{}", nat_rules());
}

#[test]
fn an_images_volume_seeds_a_fresh_volume_and_unmounted_ones_get_anonymous_volumes() {
    if !support::require_root() {
        return;
    }
    use registry::{Comp, Entry, build_image, layer, push_built, tar_of};
    let bb = registry::busybox();
    let entries = [
        Entry::Dir("bin/"),
        Entry::HostFile("bin/busybox", &bb, 0o755),
        Entry::Symlink("bin/sh", "busybox"),
        Entry::Symlink("bin/cat", "busybox"),
        Entry::Dir("seed/"),
        Entry::File("seed/file", b"from the image\n", 0o644),
        Entry::Dir("tmp/"),
    ];
    let dir = registry::tempdir();
    let layout = dir.path().join("layout");
    let run = serde_json::json!({"Cmd": ["sh"], "Volumes": {"/seed": {}}});
    let built = build_image(
        &layout,
        &[layer(tar_of(&entries), Comp::Gzip)],
        "amd64",
        run,
    );
    let image = format!(
        "{}/berth-test/net-volume:latest",
        registry::require_registry()
    );
    push_built(&layout, &built, "latest", &image, &[]);
    let b = Berth::new();
    b.ok(&["pull", &image]);
    // a named volume at the image's VOLUME path starts with its content, and keeps changes
    let got = b.ok(&[
        "run",
        "--rm",
        "--network",
        "none",
        "-v",
        "seeded:/seed",
        &image,
        "sh",
        "-c",
        "cat /seed/file; echo mine > /seed/file",
    ]);
    assert_eq!(got, "from the image\n");
    let got = b.ok(&[
        "run",
        "--rm",
        "--network",
        "none",
        "-v",
        "seeded:/seed",
        &image,
        "cat",
        "/seed/file",
    ]);
    assert_eq!(got, "mine\n", "a used volume is not seeded again");
    // without -v, /seed is an anonymous volume seeded the same way
    b.ok(&[
        "run",
        "--name",
        "anon",
        "--network",
        "none",
        &image,
        "cat",
        "/seed/file",
    ]);
    assert_eq!(b.ok(&["logs", "anon"]), "from the image\n");
    let vols = b.ok(&["volume", "ls", "-q"]);
    assert_eq!(vols.lines().count(), 2, "{vols}");
    assert!(vols.lines().any(|v| v.len() == 64), "{vols}");
}
