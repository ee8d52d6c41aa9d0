//! Integration tests: reliability. Crash recovery (the `berth` CLI, with its embedded engine,
//! SIGKILLed at random points of run, build, remove and prune) and fault injection (a registry
//! that lies about lengths, a cgroup hierarchy that refuses a write, a container's monitor
//! killed). Each test prints its figures: trials run, faults injected. Privileged (as root).

#[path = "../support/images.rs"]
mod images;
#[path = "../support/registry.rs"]
mod registry;
#[path = "../support/mod.rs"]
mod support;

mod cgroup_readonly;
mod cgroup_refusal;
mod harness;
mod kill_points;
mod monitor_death;
mod serve_kill;
mod startup_repair;
mod wait_removed;
