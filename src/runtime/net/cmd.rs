//! Running the iproute2 / iptables / util-linux tools.
//!
//! Namespaces are made and entered in-process (a thread of ours unshares or joins one), which
//! saves an `unshare` and an `nsenter` process per container; a container's own links,
//! addresses and routes are set up by [`super::rtnl`], in-process too.
//!
//! Why commands and not netlink from Rust: every operation here is a handful of well-known
//! `ip`/`iptables` invocations on a slow path (container create and remove), and these tools
//! are the reference implementations of the kernel's netlink and nf_tables interfaces (the
//! nft-backed `iptables` in particular speaks the kernel's current ABI, which no maintained
//! Rust crate covers). A failing step reports the exact command and its stderr, so a user can
//! reproduce it by hand.

use std::fs::File;
use std::io::Write;
use std::path::Path;
use std::process::{Command, Stdio};

use nix::mount::{MsFlags, mount};
use nix::sched::{CloneFlags, setns, unshare};

use super::NetError;

/// Run `prog args…`, feeding `stdin`; an error carries the command line and its stderr.
pub fn run(prog: &str, args: &[&str], stdin: Option<&str>) -> Result<String, NetError> {
    let line = || format!("{prog} {}", args.join(" "));
    let mut child = Command::new(prog)
        .args(args)
        .stdin(if stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| NetError::Command {
            cmd: line(),
            stderr: format!("cannot run it: {e} (is iproute2/iptables installed?)"),
        })?;
    if let (Some(data), Some(mut w)) = (stdin, child.stdin.take()) {
        let _ = w.write_all(data.as_bytes());
    }
    let out = child.wait_with_output().map_err(|e| NetError::Command {
        cmd: line(),
        stderr: e.to_string(),
    })?;
    if !out.status.success() {
        return Err(NetError::Command {
            cmd: match stdin {
                Some(s) => format!("{} <<< {:?}", line(), s),
                None => line(),
            },
            stderr: String::from_utf8_lossy(&out.stderr).trim().to_owned(),
        });
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// `ip -batch -` on the host.
pub fn ip_batch(script: &str) -> Result<(), NetError> {
    run("ip", &["-batch", "-"], Some(script)).map(drop)
}

/// Run `f` on a thread of its own that has joined the network namespace bound at `ns` (the
/// namespace is per thread: the engine's other threads stay where they are).
pub fn in_netns<T: Send>(
    ns: &Path,
    f: impl FnOnce() -> Result<T, NetError> + Send,
) -> Result<T, NetError> {
    let fd = File::open(ns).map_err(|e| NetError::Io {
        context: "opening the network namespace",
        path: ns.to_owned(),
        source: e,
    })?;
    std::thread::scope(|s| {
        s.spawn(|| {
            setns(&fd, CloneFlags::CLONE_NEWNET).map_err(|e| NetError::Io {
                context: "joining the network namespace",
                path: ns.to_owned(),
                source: e.into(),
            })?;
            f()
        })
        .join()
        .unwrap_or_else(|p| std::panic::resume_unwind(p))
    })
}

/// Create a network namespace and bind it at `at` (an existing empty file), in-process: a
/// thread unshares its network namespace and the namespace outlives it through the mount.
pub fn new_netns(at: &Path) -> Result<(), NetError> {
    let err = |context: &'static str| {
        move |e: nix::Error| NetError::Io {
            context,
            path: at.to_owned(),
            source: e.into(),
        }
    };
    std::thread::scope(|s| {
        s.spawn(|| {
            unshare(CloneFlags::CLONE_NEWNET).map_err(err("creating a network namespace for"))?;
            mount(
                Some("/proc/thread-self/ns/net"),
                at,
                None::<&str>,
                MsFlags::MS_BIND,
                None::<&str>,
            )
            .map_err(err("binding the network namespace at"))
        })
        .join()
        .unwrap_or_else(|p| std::panic::resume_unwind(p))
    })
}

/// `iptables -w -t TABLE args…`.
pub fn iptables(table: &str, args: &[&str]) -> Result<String, NetError> {
    let mut a = vec!["-w", "-t", table];
    a.extend_from_slice(args);
    run("iptables", &a, None)
}

/// Whether a link exists on the host.
pub fn link_exists(name: &str) -> bool {
    Path::new("/sys/class/net").join(name).exists()
}

/// Whether a link exists on the host and is up (administratively: IFF_UP in its flags).
pub fn link_is_up(name: &str) -> bool {
    std::fs::read_to_string(Path::new("/sys/class/net").join(name).join("flags"))
        .ok()
        .and_then(|f| u32::from_str_radix(f.trim().trim_start_matches("0x"), 16).ok())
        .is_some_and(|f| f & 1 != 0)
}
