//! The security module: who may do what, with which limits.
//!
//! - [`policy`]: ordered `[[rule]]`s from a TOML file, first match wins, `allow`/`deny`/`confirm`.
//! - [`subject`]: the caller a decision is about (the console's uid, an API peer's credentials).
//! - [`audit`]: one JSON line per decision.

pub mod audit;
pub mod policy;
pub mod subject;

pub use audit::{AuditLog, AuditRecord};
pub use policy::{Decision, Facts, HostBind, Policy, PolicyError, Request, Verdict};
pub use subject::Subject;
