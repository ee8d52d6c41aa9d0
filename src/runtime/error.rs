//! The runtime's error type: one enum, every variant with the context needed to act on it.

use std::path::PathBuf;

/// Errors of the embedded runtime.
#[derive(Debug, thiserror::Error)]
pub enum RuntimeError {
    #[error("{op} {path}: {source}")]
    Io {
        op: &'static str,
        path: PathBuf,
        source: std::io::Error,
    },

    #[error("{op}: {source}")]
    Sys { op: String, source: std::io::Error },

    #[error("invalid OCI spec {path}: {reason}")]
    InvalidSpec { path: PathBuf, reason: String },

    #[error("unsupported ociVersion {version} (supported: 1.0.x to 1.3.0)")]
    UnsupportedVersion { version: String },

    #[error("invalid container id {id:?}: {reason}")]
    InvalidId { id: String, reason: String },

    #[error("container {id} not found")]
    NotFound { id: String },

    #[error("container {id} already exists")]
    AlreadyExists { id: String },

    #[error("container {id} is {state}: {action} needs it {needed}")]
    WrongState {
        id: String,
        state: String,
        action: &'static str,
        needed: &'static str,
    },

    #[error("seccomp profile: {reason}")]
    Seccomp { reason: String },

    #[error("unknown capability {name:?}")]
    UnknownCapability { name: String },

    #[error("unknown signal {name:?}")]
    UnknownSignal { name: String },

    #[error("cgroup {path}: {reason}")]
    Cgroup { path: PathBuf, reason: String },

    #[error("path {path:?} escapes or is unusable in the rootfs: {reason}")]
    UnsafePath { path: PathBuf, reason: String },

    #[error("container {id}: monitor unreachable: {reason}")]
    Monitor { id: String, reason: String },

    #[error("container init failed: {0}")]
    Init(String),

    #[error("bad request: {0}")]
    BadRequest(String),

    #[error("state file {path}: {reason}")]
    State { path: PathBuf, reason: String },
}

pub type Result<T> = std::result::Result<T, RuntimeError>;

impl RuntimeError {
    pub(crate) fn io(op: &'static str, path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        RuntimeError::Io {
            op,
            path: path.into(),
            source,
        }
    }
    pub(crate) fn sys(op: impl Into<String>, source: impl Into<std::io::Error>) -> Self {
        RuntimeError::Sys {
            op: op.into(),
            source: source.into(),
        }
    }
}

/// Extension to attach a path and an operation to io errors.
pub(crate) trait IoContext<T> {
    fn ctx(self, op: &'static str, path: impl Into<PathBuf>) -> Result<T>;
}

impl<T> IoContext<T> for std::io::Result<T> {
    fn ctx(self, op: &'static str, path: impl Into<PathBuf>) -> Result<T> {
        self.map_err(|e| RuntimeError::io(op, path, e))
    }
}

impl<T> IoContext<T> for nix::Result<T> {
    fn ctx(self, op: &'static str, path: impl Into<PathBuf>) -> Result<T> {
        self.map_err(|e| RuntimeError::io(op, path, e.into()))
    }
}
