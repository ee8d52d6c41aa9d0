//! Integration tests: runtime. Privileged (real containers, as root); in CI without root they
//! fail loudly (`support::require_root`).

#[path = "../support/mod.rs"]
mod support;

mod cli;
mod fixture;
mod hardening;
mod isolation;
mod lifecycle;
mod seccomp;
