//! The fuzz targets' inputs replayed on stable, in the normal suite: every seed
//! (`fuzz/seeds/<target>/`) and every input a fuzzing run ever failed on
//! (`fuzz/regressions/<target>/`, kept after the bug was fixed) goes through the same target
//! body the fuzzer runs (`fuzz/src/lib.rs`), so a fixed crash stays fixed. The fuzzing itself
//! (coverage-guided, libFuzzer) is `tests/fuzz.sh`.

#[path = "../support/mod.rs"]
mod support;

#[path = "../../fuzz/src/lib.rs"]
mod targets;

use std::path::Path;

/// Runs `target` on every seed and regression input of `name`; returns how many there were.
fn replay(name: &str, target: fn(&[u8])) -> usize {
    let fuzz = Path::new(env!("CARGO_MANIFEST_DIR")).join("../fuzz");
    let mut n = 0;
    for kind in ["seeds", "regressions"] {
        for (path, data) in targets::inputs(&fuzz.join(kind).join(name)) {
            eprintln!("{name}: {}", path.display());
            target(&data);
            n += 1;
        }
    }
    eprintln!("{name}: {n} inputs replayed");
    n
}

#[test]
fn reference_inputs() {
    assert!(replay("reference", targets::reference) > 0);
}

#[test]
fn dockerfile_inputs() {
    assert!(replay("dockerfile", targets::dockerfile) > 0);
}

#[test]
fn policy_inputs() {
    assert!(replay("policy", targets::policy) > 0);
}

#[test]
fn unpack_inputs() {
    // Layers keep owners and make device nodes: root's work.
    if !support::require_root() {
        return;
    }
    assert!(replay("unpack", targets::unpack) > 0);
}

#[test]
fn api_inputs() {
    if !support::require_root() {
        return;
    }
    assert!(replay("api", targets::api) > 0);
}
