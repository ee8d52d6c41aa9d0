//! berth's embedded container engine.
//!
//! Module map:
//! - [`api`]: the engine's one front door. `Command`s in, `Event`s out; the `Dispatcher` checks
//!   every command against the security policy, then calls the runtime or the image manager.
//!   The state root (`root`), the cross-process event journal (`events`) and the `Engine` handle
//!   that the console and the REST server hold live here too.
//! - [`runtime`]: the embedded OCI runtime (namespaces, mounts, cgroups, capabilities, seccomp,
//!   the per-container monitor, exec, logs, stats).
//! - [`image`]: the image manager (references, registry client, content store, unpack, snapshots).
//! - [`security`]: the policy engine, subjects, default profiles, audit log.
//!
//! Dependencies point one way: `api` uses the other three; `runtime` uses `security` for its
//! profiles; nothing imports `api`.

pub mod api;
pub mod image;
pub mod runtime;
pub mod security;
