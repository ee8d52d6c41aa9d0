//! Data carried by commands, replies and events: owned, `Clone`, serialisable.

use serde::{Deserialize, Serialize};
use std::fmt;

macro_rules! string_newtype {
    ($(#[$m:meta])* $name:ident) => {
        $(#[$m])*
        #[derive(Debug, Clone, Default, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        #[serde(transparent)]
        pub struct $name(pub String);

        impl $name {
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl From<&str> for $name {
            fn from(s: &str) -> Self {
                Self(s.to_owned())
            }
        }

        impl From<String> for $name {
            fn from(s: String) -> Self {
                Self(s)
            }
        }
    };
}

string_newtype!(
    /// A container's full id (64 hex digits), or, in a command, what the user typed to name one:
    /// a full id, a unique prefix or a name. The engine resolves it.
    ContainerId
);
string_newtype!(
    /// An image reference as the user wrote it (`busybox`, `127.0.0.1:5000/x:1`, `name@sha256:…`),
    /// or an image id.
    ImageRef
);
string_newtype!(
    /// A content digest, `algorithm:hex` (`sha256:…`).
    Digest
);

impl ContainerId {
    /// The 12-character short form the docker CLI shows.
    pub fn short(&self) -> &str {
        &self.0[..self.0.len().min(12)]
    }
}

impl Digest {
    /// The hex part, shortened to 12 characters, as `docker images` shows ids.
    pub fn short(&self) -> &str {
        let hex = self.0.split_once(':').map_or(self.0.as_str(), |(_, h)| h);
        &hex[..hex.len().min(12)]
    }
}

/// Where a container is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ContainerState {
    Created,
    Running,
    Paused,
    Restarting,
    Exited,
    Dead,
}

impl ContainerState {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Created => "created",
            Self::Running => "running",
            Self::Paused => "paused",
            Self::Restarting => "restarting",
            Self::Exited => "exited",
            Self::Dead => "dead",
        }
    }

    /// Running or paused: a process exists.
    pub fn is_alive(self) -> bool {
        matches!(self, Self::Running | Self::Paused | Self::Restarting)
    }
}

/// What `docker ps` shows for one container.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ContainerSummary {
    pub id: ContainerId,
    pub name: String,
    pub image: String,
    pub command: String,
    /// Unix seconds.
    pub created: i64,
    pub state: ContainerState,
    /// Unix seconds, when the current (or last) run started.
    pub started_at: Option<i64>,
    /// Unix seconds, when the last run ended.
    pub finished_at: Option<i64>,
    pub exit_code: Option<i32>,
    pub oom_killed: bool,
    pub pid: Option<u32>,
    pub ports: Vec<PortMapping>,
}

/// A published port.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PortMapping {
    pub host_ip: Option<String>,
    pub host_port: u16,
    pub container_port: u16,
    pub protocol: String,
}

/// What `docker images` shows for one image.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ImageSummary {
    /// The config digest.
    pub id: Digest,
    pub repo_tags: Vec<String>,
    pub repo_digests: Vec<String>,
    /// Bytes of the layers, compressed as stored.
    pub size: u64,
    /// Unix seconds, from the image config.
    pub created: Option<i64>,
    /// Containers created from it.
    pub containers: u32,
}

/// The restart policy of a container, Docker's four.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(tag = "name", rename_all = "kebab-case")]
pub enum RestartPolicy {
    #[default]
    No,
    OnFailure {
        max_retries: Option<u32>,
    },
    Always,
    UnlessStopped,
}

impl std::str::FromStr for RestartPolicy {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "" | "no" => Ok(Self::No),
            "always" => Ok(Self::Always),
            "unless-stopped" => Ok(Self::UnlessStopped),
            "on-failure" => Ok(Self::OnFailure { max_retries: None }),
            _ => match s.strip_prefix("on-failure:") {
                Some(n) => n
                    .parse()
                    .map(|n| Self::OnFailure {
                        max_retries: Some(n),
                    })
                    .map_err(|_| {
                        format!("invalid restart policy {s:?}: the retry count must be a number")
                    }),
                None => Err(format!(
                    "invalid restart policy {s:?} (expected no, always, unless-stopped or on-failure[:N])"
                )),
            },
        }
    }
}

/// How a container is networked.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum NetworkMode {
    /// Own namespace with loopback only.
    None,
    /// The host's namespace.
    Host,
    /// The default bridge (or a named network).
    #[default]
    Bridge,
    Named(String),
    /// Another container's namespace.
    Container(String),
}

impl std::str::FromStr for NetworkMode {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        Ok(match s {
            "none" => Self::None,
            "host" => Self::Host,
            "bridge" | "default" => Self::Bridge,
            "" => return Err("empty network name".into()),
            _ => match s.strip_prefix("container:") {
                Some("") => return Err("--network container: needs a container name".into()),
                Some(c) => Self::Container(c.to_owned()),
                None => Self::Named(s.to_owned()),
            },
        })
    }
}

/// Everything `docker create` / `docker run` can say about a new container (the parts berth
/// implements). Field names follow Docker's flags.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct ContainerConfig {
    pub image: ImageRef,
    pub name: Option<String>,
    /// Replaces the image's CMD when non-empty.
    pub cmd: Vec<String>,
    /// Replaces the image's ENTRYPOINT when set (an empty vector clears it).
    pub entrypoint: Option<Vec<String>>,
    /// `KEY=VALUE`, added to (and overriding) the image's.
    pub env: Vec<String>,
    pub workdir: Option<String>,
    /// `uid[:gid]` or `name[:group]`.
    pub user: Option<String>,
    pub hostname: Option<String>,
    pub tty: bool,
    pub open_stdin: bool,
    /// Bytes.
    pub memory: Option<u64>,
    /// Bytes of memory plus swap; -1 = unlimited.
    pub memory_swap: Option<i64>,
    /// CPUs, fractional (`--cpus 1.5`).
    pub cpus: Option<f64>,
    pub cpu_shares: Option<u64>,
    pub cpuset_cpus: Option<String>,
    pub pids_limit: Option<i64>,
    pub cap_add: Vec<String>,
    pub cap_drop: Vec<String>,
    pub privileged: bool,
    pub read_only: bool,
    /// `no-new-privileges`, `seccomp=unconfined`, `seccomp=/path.json`.
    pub security_opt: Vec<String>,
    pub restart: RestartPolicy,
    pub network: NetworkMode,
    /// `-p` specs as written: `[ip:]host:container[/proto]`.
    pub publish: Vec<String>,
    /// `-P`: publish every port the image exposes on a free host port.
    pub publish_all: bool,
    /// `--network-alias`: more names on user-defined networks.
    pub network_aliases: Vec<String>,
    /// `-v` specs as written: `src:dst[:opts]`.
    pub volumes: Vec<String>,
    pub tmpfs: Vec<String>,
    pub labels: Vec<(String, String)>,
    /// Seconds between SIGTERM and SIGKILL on stop.
    pub stop_timeout: Option<u32>,
    pub stop_signal: Option<String>,
    /// Remove the container when it exits (`--rm`).
    pub auto_remove: bool,
    /// `--pid host`.
    pub pid_host: bool,
    /// `--ipc host`.
    pub ipc_host: bool,
    /// `--platform` for an implicit pull.
    pub platform: Option<String>,
}

/// How to read a container's log.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct LogOptions {
    pub follow: bool,
    /// Only the last N lines.
    pub tail: Option<usize>,
    /// Only lines at or after this time (unix nanoseconds).
    pub since: Option<i64>,
    pub until: Option<i64>,
    pub timestamps: bool,
    pub stdout: bool,
    pub stderr: bool,
}

/// Which stream a log line or an output chunk came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Stream {
    Stdout,
    Stderr,
}

/// One line of a container's log.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LogLine {
    pub stream: Stream,
    /// Unix nanoseconds.
    pub time: i64,
    pub line: String,
}

/// An exec into a running container.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct ExecConfig {
    pub container: ContainerId,
    pub cmd: Vec<String>,
    pub env: Vec<String>,
    pub user: Option<String>,
    pub workdir: Option<String>,
    pub tty: bool,
    pub stdin: bool,
    pub privileged: bool,
}

/// One resource sample of a running container.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct StatsSample {
    pub id: ContainerId,
    /// Unix nanoseconds.
    pub time: i64,
    /// Cumulative CPU time, nanoseconds.
    pub cpu_total_ns: u64,
    /// CPU use since the previous sample, percent of one CPU.
    pub cpu_percent: f64,
    pub memory_bytes: u64,
    pub memory_limit: Option<u64>,
    pub pids: u64,
    pub block_read: u64,
    pub block_write: u64,
    pub net_rx: u64,
    pub net_tx: u64,
}

/// How far one layer of a pull or a push has come.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TransferPhase {
    Waiting,
    Downloading,
    Verifying,
    Extracting,
    Complete,
    AlreadyExists,
    Pushing,
}

/// What an image build is told to do.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct BuildConfig {
    pub context: std::path::PathBuf,
    /// Relative to the context unless absolute.
    pub dockerfile: Option<std::path::PathBuf>,
    pub tags: Vec<String>,
    pub build_args: Vec<(String, String)>,
    pub no_cache: bool,
    pub target: Option<String>,
}

/// What `ContainerWait` waits for (Docker's `condition=`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum WaitCondition {
    /// Returns at once if the container is not running, else when it exits.
    #[default]
    NotRunning,
    /// The next exit from now (even if the container has not started yet).
    NextExit,
    /// The container has been removed (`--rm`).
    Removed,
}

/// What `ExecInspect` tells about an exec.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExecInfo {
    pub id: String,
    pub container: ContainerId,
    pub running: bool,
    pub exit_code: Option<i32>,
    pub pid: Option<u32>,
    pub tty: bool,
    pub cmd: Vec<String>,
}

/// One line of `docker rmi` output.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum ImageDeleted {
    Untagged(String),
    Deleted(Digest),
}

/// A network as `network ls` / `network inspect` show it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NetworkInfo {
    pub id: String,
    pub name: String,
    /// Always `bridge` (berth's only driver); `host` and `none` are modes, not networks.
    pub driver: String,
    pub subnet: String,
    pub gateway: String,
    /// The host's bridge device (present while the network has containers).
    pub bridge: String,
    /// Unix seconds.
    pub created: i64,
    pub labels: std::collections::BTreeMap<String, String>,
    pub containers: Vec<NetworkEndpoint>,
}

/// A container on a network.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NetworkEndpoint {
    pub id: String,
    pub name: String,
    pub ip: String,
}

/// A named volume.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VolumeInfo {
    pub name: String,
    /// Always `local`.
    pub driver: String,
    /// Where the data lives on the host.
    pub mountpoint: String,
    /// Unix seconds.
    pub created: i64,
    pub labels: std::collections::BTreeMap<String, String>,
    /// Containers that mount it (names).
    pub used_by: Vec<String>,
}
