//! The embedded OCI container runtime.
//!
//! Module map:
//! - [`entry`]: the hidden and `runtime …` entry points the `berth` binary dispatches first.
//! - [`spec`]: the OCI runtime spec model; [`state`]: on-disk container state.
//! - container creation: [`launch`] (parent side: cgroup, clone, sync) and [`init`] (child
//!   side), with [`rootfs`] and [`paths`] (mounts resolved inside the rootfs), [`caps`],
//!   [`seccomp`] (which filter, from the security module, and installing it), [`cgroups`] (v1
//!   and v2 behind a trait), [`seal`] (CVE-2019-5736).
//! - [`foreground`]: `runtime run` without a monitor; [`cli`]: the runc-like command line.
//! - the manager: [`manager::Runtime`] over a state root, [`request`] (high-level create
//!   requests → OCI spec with Docker's defaults), [`monitor`] (per-container monitor process),
//!   [`exec`] (exec helper), [`logs`], [`watch`] (inotify change stream).
//! - [`sys`]: the only `unsafe` code, thin syscall wrappers.

pub mod caps;
pub mod cgroups;
pub mod cli;
pub mod error;
pub mod exec;
pub mod foreground;
pub mod init;
pub mod launch;
pub mod logs;
pub mod manager;
pub mod monitor;
pub mod net;
pub mod paths;
pub mod request;
pub mod rootfs;
pub mod seal;
pub mod seccomp;
pub mod signals;
pub mod sockpath;
pub mod spec;
pub mod state;
pub mod sys;
pub mod tty;
pub mod user;
pub mod watch;

pub use error::{Result, RuntimeError};
pub use logs::{LogEntry, LogOptions, Logs, Stream};
pub use manager::{
    ExecProcess, ExecRequest, ExitInfo, MONITOR_GONE_EXIT_UNKNOWN, NetStats, ProcessInfo, Runtime,
    Stats, StdioMode, Top, unmonitored,
};
pub use request::{
    BindMount, CreateRequest, NetworkMode, RestartPolicy, Rootfs, SeccompChoice, TmpfsMount,
};
pub use spec::OverlayRootfs;
pub use state::{ContainerId, State, Status};
pub use sys::WinSize;
pub use user::{ResolvedUser, resolve_user};
pub use watch::{Change, Watcher};

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
    trace_time("entry");
    if a0 != "runtime" && !a0.starts_with("__") {
        return None;
    }
    if needs_seal(args) && !seal::is_sealed() {
        let e = seal::reexec_sealed(args);
        eprintln!("berth: {e}");
        return Some(1);
    }
    Some(match a0 {
        "runtime" => cli::main(&args[1..]),
        "__monitor" => monitor::main(args),
        "__exec" => exec::main(args),
        _ => {
            eprintln!("berth: unknown helper entry {a0}");
            2
        }
    })
}

/// Debug timing trace (BERTH_TRACE_TIMES=1): wall-clock microseconds, the pid and a label on
/// stderr; BERTH_TRACE_TIMES=/abs/path appends them to that file instead (the monitor's stderr
/// is its container's log, which `--rm` deletes).
#[doc(hidden)]
pub fn trace_time(label: &str) {
    static TO: std::sync::OnceLock<Option<std::ffi::OsString>> = std::sync::OnceLock::new();
    let Some(to) = TO.get_or_init(|| std::env::var_os("BERTH_TRACE_TIMES")) else {
        return;
    };
    let t = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    let line = format!(
        "{:>12} {:>7} {label}\n",
        t.as_micros() % 1_000_000_000,
        std::process::id()
    );
    if to.as_encoded_bytes().starts_with(b"/") {
        use std::io::Write;
        if let Ok(mut f) = std::fs::OpenOptions::new()
            .append(true)
            .create(true)
            .open(to)
        {
            let _ = f.write_all(line.as_bytes());
        }
    } else {
        eprint!("{line}");
    }
}
