//! What a command answers with.

use super::types::*;
use bytes::Bytes;
use serde::{Deserialize, Serialize};
use tokio::sync::mpsc;

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

/// A chunk of a process's output. A TTY's output is all `Stdout`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutputChunk {
    pub stream: Stream,
    pub data: Bytes,
}

/// Docker's stdio frame header (`[stream, 0, 0, 0, len as u32 BE]`): which stream, how many
/// bytes follow. 2 is stderr; stdin echo (0) and stdout (1) are both output.
pub(crate) fn frame_header(h: &[u8; 8]) -> (Stream, usize) {
    let len = u32::from_be_bytes([h[4], h[5], h[6], h[7]]) as usize;
    (
        if h[0] == 2 {
            Stream::Stderr
        } else {
            Stream::Stdout
        },
        len,
    )
}

/// A live connection to a process's stdio (attach, exec start).
#[derive(Debug)]
pub struct IoSession {
    /// Bytes for the process's stdin; dropping the sender closes stdin. `None` when stdin was not
    /// asked for or the process has none.
    pub stdin: Option<mpsc::Sender<Bytes>>,
    /// Output as it is produced; the channel closes once the process has exited and its output
    /// is drained.
    pub output: mpsc::Receiver<OutputChunk>,
    /// Whether the process has a TTY (raw output, no stdout/stderr split).
    pub tty: bool,
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
    /// Images loaded from an archive: id and the names they got.
    Loaded(Vec<(Digest, Vec<String>)>),
    /// A container's exit code (wait).
    ExitCode(i32),
    /// Inspect, history, top: structured data shown as-is.
    Json(serde_json::Value),
    Version(VersionInfo),
    Info(SystemInfo),
    /// Log lines; with `follow`, the channel stays open until the container stops.
    Logs(mpsc::Receiver<LogLine>),
    /// Stats samples; one, or a stream until the container stops or the receiver is dropped.
    Stats(mpsc::Receiver<StatsSample>),
    /// One sample per running container (`ContainerStatsAll`).
    StatsAll(Vec<StatsSample>),
    /// A stdio session (attach, exec start).
    Io(IoSession),
    ExecId(String),
    Exec(ExecInfo),
    /// What `ImageRemove` untagged and deleted.
    ImagesDeleted(Vec<ImageDeleted>),
    /// Policy decisions, oldest first.
    Audit(Vec<crate::security::AuditRecord>),
    Networks(Vec<NetworkInfo>),
    Network(NetworkInfo),
    Volumes(Vec<VolumeInfo>),
    Volume(VolumeInfo),
    /// What a prune removed (ids) and the bytes it freed.
    Pruned {
        removed: Vec<String>,
        freed: u64,
    },
}
