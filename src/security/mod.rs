//! The security module.
