//! Every user action, as one enum. The console, the one-shot CLI and the REST server all build
//! these; the [`Dispatcher`](super::Dispatcher) is the only thing that carries them out.

use super::types::*;
use serde::{Deserialize, Serialize};

/// A request to the engine. Each variant says when it is legal; the dispatcher checks the
/// policy for every one of them (see [`Command::action`]) before anything else happens.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "command", rename_all = "snake_case")]
pub enum Command {
    /// List containers; running ones only unless `all`.
    ContainerList { all: bool },
    /// Create a container from an image (pulling it first when missing and `pull` is set).
    ContainerCreate {
        config: Box<ContainerConfig>,
        pull: bool,
    },
    /// Start a created or exited container.
    ContainerStart { id: ContainerId },
    /// SIGTERM (or the container's stop signal), then SIGKILL after `timeout` seconds.
    ContainerStop {
        id: ContainerId,
        timeout: Option<u32>,
    },
    /// Send a signal (name like `KILL`/`SIGHUP` or number) to a running container.
    ContainerKill { id: ContainerId, signal: String },
    /// Stop (if running), then start.
    ContainerRestart {
        id: ContainerId,
        timeout: Option<u32>,
    },
    /// Freeze every process of a running container.
    ContainerPause { id: ContainerId },
    /// Thaw a paused container.
    ContainerUnpause { id: ContainerId },
    /// Remove a container; a running one only with `force` (which kills it first).
    ContainerRemove { id: ContainerId, force: bool },
    /// Rename a container.
    ContainerRename { id: ContainerId, name: String },
    /// Wait until the condition holds; replies with the exit code.
    ContainerWait {
        id: ContainerId,
        condition: WaitCondition,
    },
    /// Connect to a container's stdio (its TTY when it has one). Legal before start, so no
    /// early output is lost; the session ends when the container's process exits.
    ContainerAttach { id: ContainerId, stdin: bool },
    /// Resize a container's TTY.
    ContainerResize {
        id: ContainerId,
        height: u16,
        width: u16,
    },
    /// Prepare a process to run in a running container; replies with the exec id.
    ExecCreate { config: Box<ExecConfig> },
    /// Start a prepared exec: replies with its stdio session, or `Done` when `detach`.
    ExecStart {
        exec_id: String,
        detach: bool,
        console_size: Option<(u16, u16)>,
    },
    /// Resize an exec's TTY.
    ExecResize {
        exec_id: String,
        height: u16,
        width: u16,
    },
    /// Whether an exec is running, and its exit code once it has ended.
    ExecInspect { exec_id: String },
    /// Read a container's log.
    ContainerLogs {
        id: ContainerId,
        options: LogOptions,
    },
    /// Resource use: one sample, or a stream of them.
    ContainerStats { id: ContainerId, stream: bool },
    /// One sample of every running or paused container (CPU % over a short interval between
    /// two readings, memory use and limit), in one reply: what a list of containers shows.
    ContainerStatsAll,
    /// The processes of a running container.
    ContainerTop { id: ContainerId },
    /// Everything the engine knows about one container.
    ContainerInspect { id: ContainerId },
    /// Remove every stopped container.
    ContainerPrune,

    /// List images.
    ImageList,
    /// Pull an image from its registry.
    ImagePull {
        reference: ImageRef,
        platform: Option<String>,
    },
    /// Push a local image to its registry.
    ImagePush { reference: ImageRef },
    /// Build an image from a Dockerfile.
    ImageBuild { config: Box<BuildConfig> },
    /// Give an image another name.
    ImageTag { source: ImageRef, target: ImageRef },
    /// Untag an image, and delete it when no name is left; an image in use only with `force`.
    ImageRemove { reference: ImageRef, force: bool },
    /// Delete dangling images, or every unused one with `all`.
    ImagePrune { all: bool },
    /// Config, env, cmd, entrypoint, labels, exposed ports of an image.
    ImageInspect { reference: ImageRef },
    /// The history entries of an image.
    ImageHistory { reference: ImageRef },
    /// Write images to a `docker save`-compatible archive (also an OCI archive) at `path`.
    ImageSave {
        references: Vec<ImageRef>,
        path: std::path::PathBuf,
    },
    /// Load every image of a `docker save` or OCI archive; replies with what was loaded.
    ImageLoad { path: std::path::PathBuf },
    /// Make a one-layer image from a rootfs tarball, named `reference` when given.
    ImageImport {
        path: std::path::PathBuf,
        reference: Option<ImageRef>,
    },
    /// Store credentials for a registry (Docker's config file).
    RegistryLogin {
        registry: String,
        username: String,
        password: String,
    },

    /// List networks (the default `bridge` one included).
    NetworkList,
    /// Create a bridge network; `subnet` (`10.90.0.0/16`) is picked from a private pool when
    /// not given.
    NetworkCreate {
        name: String,
        subnet: Option<String>,
        labels: Vec<(String, String)>,
    },
    /// One network by name or id.
    NetworkInspect { name: String },
    /// Remove a network no container is connected to.
    NetworkRemove { name: String },
    /// Connect a created or running container (on a bridge network) to one more network.
    NetworkConnect {
        network: String,
        container: ContainerId,
    },
    /// Disconnect a container from a network.
    NetworkDisconnect {
        network: String,
        container: ContainerId,
    },
    /// List named volumes.
    VolumeList,
    /// Create a named volume (a generated name when `None`); creating an existing one is a
    /// no-op, as in Docker.
    VolumeCreate {
        name: Option<String>,
        labels: Vec<(String, String)>,
    },
    /// One volume by name.
    VolumeInspect { name: String },
    /// Remove a volume no container uses.
    VolumeRemove { name: String },
    /// Remove every volume no container uses.
    VolumePrune,

    /// The most recent policy decisions from the audit log, oldest first.
    AuditLog { limit: usize },
    /// Check the store for corruption and crash debris; remove what is bad with `repair`.
    SystemCheck { repair: bool },
    /// Engine version and build.
    SystemVersion,
    /// Engine-wide facts: counts, root directory, drivers.
    SystemInfo,
}

impl Command {
    /// The policy action name of this command (`container.create`, `image.pull`, …): the
    /// `action` key of policy rules matches against it.
    pub fn action(&self) -> &'static str {
        match self {
            Self::ContainerList { .. } => "container.list",
            Self::ContainerCreate { .. } => "container.create",
            Self::ContainerStart { .. } => "container.start",
            Self::ContainerStop { .. } => "container.stop",
            Self::ContainerKill { .. } => "container.kill",
            Self::ContainerRestart { .. } => "container.restart",
            Self::ContainerPause { .. } => "container.pause",
            Self::ContainerUnpause { .. } => "container.unpause",
            Self::ContainerRemove { .. } => "container.remove",
            Self::ContainerRename { .. } => "container.rename",
            Self::ContainerWait { .. } => "container.wait",
            Self::ContainerAttach { .. } => "container.attach",
            Self::ContainerResize { .. } => "container.resize",
            Self::ExecCreate { .. } => "container.exec",
            Self::ExecStart { .. } => "container.exec",
            Self::ExecResize { .. } => "container.exec",
            Self::ExecInspect { .. } => "container.inspect",
            Self::ContainerLogs { .. } => "container.logs",
            Self::ContainerStats { .. } => "container.stats",
            Self::ContainerStatsAll => "container.stats",
            Self::ContainerTop { .. } => "container.top",
            Self::ContainerInspect { .. } => "container.inspect",
            Self::ContainerPrune => "container.prune",
            Self::ImageList => "image.list",
            Self::ImagePull { .. } => "image.pull",
            Self::ImagePush { .. } => "image.push",
            Self::ImageBuild { .. } => "image.build",
            Self::ImageTag { .. } => "image.tag",
            Self::ImageRemove { .. } => "image.remove",
            Self::ImagePrune { .. } => "image.prune",
            Self::ImageInspect { .. } => "image.inspect",
            Self::ImageHistory { .. } => "image.history",
            Self::ImageSave { .. } => "image.save",
            Self::ImageLoad { .. } => "image.load",
            Self::ImageImport { .. } => "image.import",
            Self::RegistryLogin { .. } => "registry.login",
            Self::NetworkList => "network.list",
            Self::NetworkCreate { .. } => "network.create",
            Self::NetworkInspect { .. } => "network.inspect",
            Self::NetworkRemove { .. } => "network.remove",
            Self::NetworkConnect { .. } => "network.connect",
            Self::NetworkDisconnect { .. } => "network.disconnect",
            Self::VolumeList => "volume.list",
            Self::VolumeCreate { .. } => "volume.create",
            Self::VolumeInspect { .. } => "volume.inspect",
            Self::VolumeRemove { .. } => "volume.remove",
            Self::VolumePrune => "volume.prune",
            Self::AuditLog { .. } => "system.audit",
            Self::SystemCheck { .. } => "system.check",
            Self::SystemVersion => "system.version",
            Self::SystemInfo => "system.info",
        }
    }

    /// Every action name, for validating policy files.
    pub const ACTIONS: &'static [&'static str] = &[
        "container.list",
        "container.create",
        "container.start",
        "container.stop",
        "container.kill",
        "container.restart",
        "container.pause",
        "container.unpause",
        "container.remove",
        "container.rename",
        "container.wait",
        "container.attach",
        "container.resize",
        "container.exec",
        "container.logs",
        "container.stats",
        "container.top",
        "container.inspect",
        "container.prune",
        "image.list",
        "image.pull",
        "image.push",
        "image.build",
        "image.tag",
        "image.remove",
        "image.prune",
        "image.inspect",
        "image.history",
        "image.save",
        "image.load",
        "image.import",
        "registry.login",
        "network.list",
        "network.create",
        "network.inspect",
        "network.remove",
        "network.connect",
        "network.disconnect",
        "volume.list",
        "volume.create",
        "volume.inspect",
        "volume.remove",
        "volume.prune",
        "system.audit",
        "system.check",
        "system.version",
        "system.info",
    ];

    /// What the command acts on, for the audit log and denial messages.
    pub fn target(&self) -> Option<String> {
        match self {
            Self::ContainerStart { id }
            | Self::ContainerStop { id, .. }
            | Self::ContainerKill { id, .. }
            | Self::ContainerRestart { id, .. }
            | Self::ContainerPause { id }
            | Self::ContainerUnpause { id }
            | Self::ContainerRemove { id, .. }
            | Self::ContainerRename { id, .. }
            | Self::ContainerWait { id, .. }
            | Self::ContainerAttach { id, .. }
            | Self::ContainerResize { id, .. }
            | Self::ContainerLogs { id, .. }
            | Self::ContainerStats { id, .. }
            | Self::ContainerTop { id }
            | Self::ContainerInspect { id } => Some(id.0.clone()),
            Self::ExecCreate { config } => Some(config.container.0.clone()),
            Self::ExecStart { exec_id, .. }
            | Self::ExecResize { exec_id, .. }
            | Self::ExecInspect { exec_id } => Some(format!("exec {exec_id}")),
            Self::ContainerCreate { config, .. } => Some(config.image.0.clone()),
            Self::ImagePull { reference, .. }
            | Self::ImagePush { reference }
            | Self::ImageRemove { reference, .. }
            | Self::ImageInspect { reference }
            | Self::ImageHistory { reference } => Some(reference.0.clone()),
            Self::ImageTag { source, target } => Some(format!("{source} -> {target}")),
            Self::ImageBuild { config } => Some(config.context.display().to_string()),
            Self::ImageSave { references, .. } => Some(
                references
                    .iter()
                    .map(|r| r.0.as_str())
                    .collect::<Vec<_>>()
                    .join(" "),
            ),
            Self::ImageLoad { path } => Some(path.display().to_string()),
            Self::ImageImport { path, reference } => Some(match reference {
                Some(r) => format!("{} as {r}", path.display()),
                None => path.display().to_string(),
            }),
            Self::RegistryLogin {
                registry, username, ..
            } => Some(format!("{username}@{registry}")),
            Self::NetworkCreate { name, .. }
            | Self::NetworkInspect { name }
            | Self::NetworkRemove { name }
            | Self::VolumeInspect { name }
            | Self::VolumeRemove { name } => Some(name.clone()),
            Self::NetworkConnect { network, container }
            | Self::NetworkDisconnect { network, container } => {
                Some(format!("{container} on {network}"))
            }
            Self::VolumeCreate { name, .. } => name.clone(),
            Self::NetworkList | Self::VolumeList | Self::VolumePrune => None,
            Self::ContainerList { .. }
            | Self::ContainerStatsAll
            | Self::ContainerPrune
            | Self::ImageList
            | Self::ImagePrune { .. }
            | Self::AuditLog { .. }
            | Self::SystemCheck { .. }
            | Self::SystemVersion
            | Self::SystemInfo => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_action_is_listed_once() {
        let mut seen = std::collections::HashSet::new();
        for a in Command::ACTIONS {
            assert!(seen.insert(a), "{a} listed twice");
        }
        // a sample of commands maps into the list
        for c in [
            Command::ContainerPrune,
            Command::ImageList,
            Command::SystemInfo,
            Command::ContainerList { all: true },
        ] {
            assert!(Command::ACTIONS.contains(&c.action()));
        }
    }
}
