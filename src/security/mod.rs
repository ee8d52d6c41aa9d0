//! The security module: who may do what, with which limits.
//!
//! - [`policy`]: ordered `[[rule]]`s from a TOML file, first applicable rule wins,
//!   `allow`/`deny`/`confirm`, conditions on the request; `explain` for `berth policy explain`.
//! - [`subject`]: the caller a decision is about (the console's uid, an API peer's credentials).
//! - [`audit`]: one JSON line per decision.
//! - [`caps`]: capability names and sets, Docker's 14 defaults, `--cap-add`/`--cap-drop`.
//! - [`seccomp`]: the default seccomp profile (reviewed data in `assets/seccomp/`), custom
//!   Docker-format profiles, compilation to BPF for a container's capability set.
//! - [`container`]: a container's security settings from `docker run`-style options (caps,
//!   seccomp, no-new-privileges, masked and read-only paths, `--user`, user-namespace remapping).
//! - [`image_name`]: Docker's normalisation of image references (registry, repository).

pub mod audit;
pub mod caps;
pub mod container;
pub mod image_name;
pub mod policy;
pub mod seccomp;
pub mod subject;

pub use audit::{AuditLog, AuditRecord};
pub use caps::{Cap, CapName, CapSet};
pub use container::{ContainerSecurity, SecurityOptions, UserSpec, UsernsRemap};
pub use image_name::ImageName;
pub use policy::{
    Condition, Decision, Explanation, Fact, Facts, HostBind, Policy, PolicyError, Request,
    RuleMiss, RuleTrace, Verdict,
};
pub use subject::Subject;
