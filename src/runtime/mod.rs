//! The embedded OCI container runtime.
//!
//! Module map:
//! - [`entry`]: the hidden and `runtime …` entry points the `berth` binary dispatches first.
//! - [`spec`]: the OCI runtime spec model; [`state`]: on-disk container state.
//! - container creation: [`launch`] (parent side: cgroup, clone, sync) and [`init`] (child
//!   side), with [`rootfs`] and [`paths`] (mounts resolved inside the rootfs), [`caps`],
//!   [`seccomp`], [`cgroups`] (v1 and v2 behind a trait), [`seal`] (CVE-2019-5736).
//! - [`foreground`]: `runtime run` without a monitor; [`cli`]: the runc-like command line.
//! - [`sys`]: the only `unsafe` code, thin syscall wrappers.

pub mod caps;
pub mod cgroups;
pub mod error;
pub mod foreground;
pub mod init;
pub mod launch;
pub mod paths;
pub mod rootfs;
pub mod seal;
pub mod seccomp;
pub mod signals;
pub mod spec;
pub mod state;
pub mod sys;
pub mod tty;

pub use error::{Result, RuntimeError};
pub use state::{ContainerId, Status};

use std::ffi::OsString;

/// Invocations that create or join containers and so must run from a sealed image.
fn needs_seal(args: &[OsString]) -> bool {
    let a0 = args.first().and_then(|a| a.to_str()).unwrap_or("");
    if a0.starts_with("__") {
        return true;
    }
    if a0 != "runtime" {
        return false;
    }
    args.iter()
        .skip(1)
        .filter_map(|a| a.to_str())
        .any(|a| matches!(a, "run" | "create" | "exec"))
}

/// The `berth` binary calls this first with `argv[1..]`. Returns `Some(exit code)` when the
/// invocation was the runtime's (`runtime …` or a hidden helper entry), `None` otherwise.
pub fn entry(args: &[OsString]) -> Option<i32> {
    let a0 = args.first()?.to_str()?;
    if a0 != "runtime" && !a0.starts_with("__") {
        return None;
    }
    if needs_seal(args) && !seal::is_sealed() {
        let e = seal::reexec_sealed(args);
        eprintln!("berth: {e}");
        return Some(1);
    }
    Some(match a0 {
        "runtime" => foreground_cli(&args[1..]),
        _ => {
            eprintln!("berth: unknown helper entry {a0}");
            2
        }
    })
}

fn foreground_cli(args: &[OsString]) -> i32 {
    let s: Vec<String> = args
        .iter()
        .map(|a| a.to_string_lossy().into_owned())
        .collect();
    let mut root = std::path::PathBuf::from("/run/berth-runtime");
    let mut bundle = std::path::PathBuf::from(".");
    let mut id = None;
    let mut i = 0;
    while i < s.len() {
        match s[i].as_str() {
            "--root" => {
                i += 1;
                root = s[i].clone().into();
            }
            "-b" | "--bundle" => {
                i += 1;
                bundle = s[i].clone().into();
            }
            "run" => {}
            x => id = Some(x.to_string()),
        }
        i += 1;
    }
    let id = ContainerId::new(id.unwrap_or_default()).unwrap();
    let bundle = std::path::absolute(bundle).unwrap();
    match foreground::run(&root, &bundle, &id, None, None) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("berth runtime: {e}");
            1
        }
    }
}
