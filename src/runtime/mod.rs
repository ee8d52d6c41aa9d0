//! The embedded OCI container runtime.

pub mod sys;
