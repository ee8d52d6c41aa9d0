//! What a command answers with.

use super::types::*;
use serde::{Deserialize, Serialize};

/// Engine version facts (`berth version`, `GET /version`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VersionInfo {
    pub version: String,
    /// The Docker Engine API version `berth serve` advertises.
    pub api_version: String,
    pub min_api_version: String,
    pub os: String,
    pub arch: String,
    pub kernel: String,
}

/// Engine-wide facts (`berth info`, `GET /info`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SystemInfo {
    pub root: String,
    pub containers: usize,
    pub containers_running: usize,
    pub images: usize,
    pub cgroup_version: String,
    pub policy: String,
}

/// The answer to a command.
#[derive(Debug)]
pub enum Reply {
    /// Done; nothing to report.
    Done,
    ContainerId(ContainerId),
    Containers(Vec<ContainerSummary>),
    Images(Vec<ImageSummary>),
    ImageId(Digest),
    /// A container's exit code (wait).
    ExitCode(i32),
    /// Inspect, history, top: structured data shown as-is.
    Json(serde_json::Value),
    Version(VersionInfo),
    Info(SystemInfo),
}
