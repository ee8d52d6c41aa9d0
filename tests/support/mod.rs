//! Shared helpers for the integration tests (include with `#[path = "../support/mod.rs"] mod support;`).
#![allow(dead_code)]

pub mod tmux;

/// Fails loudly in CI (`CI` set) when not root; elsewhere returns false so the caller can skip.
pub fn require_root() -> bool {
    let root = nix_uid_is_root();
    if !root && std::env::var_os("CI").is_some() {
        panic!("this test needs root, and CI is set: refusing to skip");
    }
    if !root {
        eprintln!("skipping: needs root");
    }
    root
}

fn nix_uid_is_root() -> bool {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("Uid:"))
                .and_then(|l| l.split_whitespace().nth(2).map(|e| e == "0"))
        })
        .unwrap_or(false)
}

/// The `berth` binary under test.
pub fn berth_bin() -> std::path::PathBuf {
    std::path::PathBuf::from(env!("CARGO_BIN_EXE_berth"))
}
