//! Running the iproute2 / iptables / util-linux tools.
//!
//! Why commands and not netlink from Rust: every operation here is a handful of well-known
//! `ip`/`iptables` invocations on a slow path (container create and remove), and these tools
//! are the reference implementations of the kernel's netlink and nf_tables interfaces (the
//! nft-backed `iptables` in particular speaks the kernel's current ABI, which no maintained
//! Rust crate covers). A failing step reports the exact command and its stderr, so a user can
//! reproduce it by hand.

use std::io::Write;
use std::path::Path;
use std::process::{Command, Stdio};

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

/// `ip -batch -` inside the network namespace bound at `ns`.
pub fn ip_batch_in(ns: &Path, script: &str) -> Result<(), NetError> {
    let arg = format!("--net={}", ns.display());
    run("nsenter", &[&arg, "ip", "-batch", "-"], Some(script)).map(drop)
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
