//! High-level container requests (what the API layer fills in) and their translation into an
//! OCI spec with Docker's defaults.

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use super::caps;
use super::error::{Result, RuntimeError};
use super::seccomp;
use super::spec::{
    Cpu, Linux, Memory, Mount, Namespace, OVERLAY_ANNOTATION, OverlayRootfs, Pids, Process,
    Resources, Rlimit, Root, Spec, User,
};
use super::state::ContainerId;
use crate::security::container::{READONLY_PATHS, default_masked_paths};
use crate::security::seccomp::Profile;

/// The container's root filesystem.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Rootfs {
    /// A prepared directory.
    Dir(PathBuf),
    /// Layers mounted as overlayfs inside the container's mount namespace.
    Overlay(OverlayRootfs),
}

/// Which seccomp profile applies.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub enum SeccompChoice {
    /// Berth's built-in Docker-equivalent default.
    #[default]
    Default,
    /// No filter.
    Unconfined,
    /// A profile file: berth's format or Docker's (`--security-opt seccomp=FILE`).
    File(PathBuf),
    /// A profile given as data.
    Profile(Profile),
}

/// Network namespace of the container.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub enum NetworkMode {
    /// A new network namespace with only loopback (up).
    #[default]
    None,
    /// The host's network namespace.
    Host,
    /// Join a network namespace prepared by someone else (the hook for bridge networking:
    /// the API layer creates and wires a netns, e.g. bind-mounted under /run/netns, and passes
    /// its path).
    Join(PathBuf),
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BindMount {
    pub source: PathBuf,
    pub destination: PathBuf,
    #[serde(default)]
    pub readonly: bool,
    /// `rprivate` (default), `rslave`, `rshared`…
    #[serde(default)]
    pub propagation: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TmpfsMount {
    pub destination: PathBuf,
    /// e.g. `["size=64m", "mode=1777"]`.
    #[serde(default)]
    pub options: Vec<String>,
}

/// Docker's restart policies.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(tag = "name", rename_all = "kebab-case")]
pub enum RestartPolicy {
    #[default]
    No,
    OnFailure {
        #[serde(default)]
        max_retries: Option<u32>,
    },
    Always,
    UnlessStopped,
}

impl std::str::FromStr for RestartPolicy {
    type Err = RuntimeError;
    fn from_str(s: &str) -> Result<Self> {
        let (name, n) = s
            .split_once(':')
            .map(|(a, b)| (a, Some(b)))
            .unwrap_or((s, None));
        let bad = || RuntimeError::BadRequest(format!("invalid restart policy {s:?}"));
        Ok(match (name, n) {
            ("no" | "", None) => RestartPolicy::No,
            ("always", None) => RestartPolicy::Always,
            ("unless-stopped", None) => RestartPolicy::UnlessStopped,
            ("on-failure", None) => RestartPolicy::OnFailure { max_retries: None },
            ("on-failure", Some(n)) => RestartPolicy::OnFailure {
                max_retries: Some(n.parse().map_err(|_| bad())?),
            },
            _ => return Err(bad()),
        })
    }
}

impl RestartPolicy {
    /// Whether to restart after an exit with `code`, having restarted `count` times already.
    /// A manual stop never restarts.
    pub fn should_restart(&self, code: i32, count: u32, stopped_by_user: bool) -> bool {
        if stopped_by_user {
            return false;
        }
        match self {
            RestartPolicy::No => false,
            RestartPolicy::Always | RestartPolicy::UnlessStopped => true,
            RestartPolicy::OnFailure { max_retries } => {
                code != 0 && max_retries.is_none_or(|m| count < m)
            }
        }
    }
}

/// How the monitor runs the container (kept in `options.json`).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct MonitorOptions {
    #[serde(default)]
    pub restart: RestartPolicy,
    /// Signal number for stop (default SIGTERM).
    #[serde(default)]
    pub stop_signal: Option<i32>,
    /// Seconds before SIGKILL (default 10).
    #[serde(default)]
    pub stop_timeout: Option<u32>,
    #[serde(default)]
    pub auto_remove: bool,
    #[serde(default)]
    pub open_stdin: bool,
    /// Send the pty master to this runc-style console socket instead of keeping it.
    #[serde(default)]
    pub console_socket: Option<PathBuf>,
    /// With `auto_remove`: more directories to delete with the container.
    #[serde(default)]
    pub remove_with: Vec<PathBuf>,
}

/// Everything needed to create a container.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct CreateRequest {
    pub id: Option<ContainerId>,
    pub rootfs: Option<Rootfs>,
    pub args: Vec<String>,
    #[serde(default)]
    pub env: Vec<String>,
    #[serde(default)]
    pub cwd: Option<String>,
    #[serde(default)]
    pub uid: u32,
    #[serde(default)]
    pub gid: u32,
    #[serde(default)]
    pub additional_gids: Vec<u32>,
    #[serde(default)]
    pub tty: bool,
    #[serde(default)]
    pub open_stdin: bool,
    #[serde(default)]
    pub hostname: Option<String>,
    /// Bytes.
    #[serde(default)]
    pub memory: Option<i64>,
    /// Memory + swap, bytes (-1 = unlimited swap).
    #[serde(default)]
    pub memory_swap: Option<i64>,
    /// CPUs (e.g. 0.5), as a CFS quota over a 100 ms period.
    #[serde(default)]
    pub cpus: Option<f64>,
    #[serde(default)]
    pub cpu_shares: Option<u64>,
    #[serde(default)]
    pub cpuset_cpus: Option<String>,
    #[serde(default)]
    pub pids_limit: Option<i64>,
    #[serde(default)]
    pub cap_add: Vec<String>,
    #[serde(default)]
    pub cap_drop: Vec<String>,
    #[serde(default)]
    pub privileged: bool,
    #[serde(default)]
    pub read_only: bool,
    #[serde(default)]
    pub no_new_privileges: bool,
    #[serde(default)]
    pub seccomp: SeccompChoice,
    #[serde(default)]
    pub binds: Vec<BindMount>,
    #[serde(default)]
    pub tmpfs: Vec<TmpfsMount>,
    #[serde(default)]
    pub network: NetworkMode,
    #[serde(default)]
    pub restart: RestartPolicy,
    #[serde(default)]
    pub stop_signal: Option<String>,
    #[serde(default)]
    pub stop_timeout: Option<u32>,
    #[serde(default)]
    pub auto_remove: bool,
    /// Directories the container owns outside its state directory (its snapshot: overlay
    /// upper and work dirs), deleted with it when it is auto-removed.
    #[serde(default)]
    pub remove_with: Vec<PathBuf>,
    #[serde(default)]
    pub annotations: BTreeMap<String, String>,
    /// Opaque to the runtime: stored at create, returned by list/inspect.
    #[serde(default)]
    pub record: serde_json::Value,
}

/// The smallest memory limit a container may have (Docker's): below it the init cannot start.
pub const MIN_MEMORY: i64 = 6 << 20;

pub const DEFAULT_PATH: &str = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

fn m(dest: &str, kind: &str, src: &str, opts: &[&str]) -> Mount {
    Mount {
        destination: dest.into(),
        kind: Some(kind.into()),
        source: Some(src.into()),
        options: opts.iter().map(|s| s.to_string()).collect(),
    }
}

/// Docker's default mounts.
pub fn docker_mounts() -> Vec<Mount> {
    vec![
        m("/proc", "proc", "proc", &["nosuid", "noexec", "nodev"]),
        m(
            "/dev",
            "tmpfs",
            "tmpfs",
            &["nosuid", "strictatime", "mode=755", "size=65536k"],
        ),
        m(
            "/dev/pts",
            "devpts",
            "devpts",
            &[
                "nosuid",
                "noexec",
                "newinstance",
                "ptmxmode=0666",
                "mode=0620",
                "gid=5",
            ],
        ),
        m(
            "/sys",
            "sysfs",
            "sysfs",
            &["nosuid", "noexec", "nodev", "ro"],
        ),
        m(
            "/sys/fs/cgroup",
            "cgroup",
            "cgroup",
            &["ro", "nosuid", "noexec", "nodev"],
        ),
        m(
            "/dev/mqueue",
            "mqueue",
            "mqueue",
            &["nosuid", "noexec", "nodev"],
        ),
        m(
            "/dev/shm",
            "tmpfs",
            "shm",
            &["nosuid", "noexec", "nodev", "mode=1777", "size=65536k"],
        ),
    ]
}

impl CreateRequest {
    pub fn id(&self) -> Result<&ContainerId> {
        self.id
            .as_ref()
            .ok_or_else(|| RuntimeError::BadRequest("no container id".into()))
    }

    /// The options the monitor needs.
    pub fn monitor_options(&self) -> Result<MonitorOptions> {
        Ok(MonitorOptions {
            restart: self.restart,
            stop_signal: self
                .stop_signal
                .as_deref()
                .map(super::signals::parse)
                .transpose()?,
            stop_timeout: self.stop_timeout,
            auto_remove: self.auto_remove,
            open_stdin: self.open_stdin,
            console_socket: None,
            remove_with: if self.auto_remove {
                self.remove_with.clone()
            } else {
                Vec::new()
            },
        })
    }

    /// The OCI spec for this request, with Docker's defaults.
    ///
    /// A memory limit below [`MIN_MEMORY`] is refused.
    pub fn to_spec(&self, rootfs_mountpoint: &std::path::Path) -> Result<Spec> {
        let id = self.id()?;
        if self.args.is_empty() {
            return Err(RuntimeError::BadRequest(format!(
                "container {id}: no command"
            )));
        }
        if let Some(m) = self.memory
            && m > 0
            && m < MIN_MEMORY
        {
            // The kernel takes any limit, then the OOM killer ends the init before it is ready:
            // an unclear failure, refused here instead (Docker's minimum).
            return Err(RuntimeError::BadRequest(format!(
                "container {id}: memory limit {m} bytes is below the minimum of 6 MiB"
            )));
        }
        if self.auto_remove && self.restart != RestartPolicy::No {
            return Err(RuntimeError::BadRequest(
                "auto-remove conflicts with a restart policy".into(),
            ));
        }
        let capsets = caps::docker_sets(self.privileged, &self.cap_add, &self.cap_drop)?;
        let mut env = self.env.clone();
        if !env.iter().any(|e| e.starts_with("PATH=")) {
            env.insert(0, DEFAULT_PATH.into());
        }
        if !env.iter().any(|e| e.starts_with("HOSTNAME=")) {
            env.push(format!(
                "HOSTNAME={}",
                self.hostname.clone().unwrap_or_else(|| short(id))
            ));
        }
        if self.tty && !env.iter().any(|e| e.starts_with("TERM=")) {
            env.push("TERM=xterm".into());
        }
        let process = Process {
            terminal: self.tty,
            console_size: None,
            user: User {
                uid: self.uid,
                gid: self.gid,
                umask: None,
                additional_gids: self.additional_gids.clone(),
            },
            args: self.args.clone(),
            env,
            cwd: self
                .cwd
                .clone()
                .filter(|c| !c.is_empty())
                .unwrap_or_else(|| "/".into()),
            capabilities: Some(capsets),
            // Docker's default nofile, clamped to what we may set (no CAP_SYS_RESOURCE here).
            rlimits: nofile_rlimit(),
            no_new_privileges: self.no_new_privileges,
            oom_score_adj: None,
        };
        let mut mounts = docker_mounts();
        for t in &self.tmpfs {
            let mut opts = vec![
                "nosuid".to_string(),
                "nodev".to_string(),
                "noexec".to_string(),
            ];
            opts.extend(t.options.iter().cloned());
            mounts.push(Mount {
                destination: t.destination.clone(),
                kind: Some("tmpfs".into()),
                source: Some("tmpfs".into()),
                options: opts,
            });
        }
        for b in &self.binds {
            if !b.destination.is_absolute() {
                return Err(RuntimeError::BadRequest(format!(
                    "bind destination {:?} is not absolute",
                    b.destination
                )));
            }
            if !b.source.is_absolute() {
                return Err(RuntimeError::BadRequest(format!(
                    "bind source {:?} is not absolute",
                    b.source
                )));
            }
            let mut opts = vec![
                "rbind".to_string(),
                b.propagation.clone().unwrap_or_else(|| "rprivate".into()),
            ];
            if b.readonly {
                opts.push("ro".into());
            }
            mounts.push(Mount {
                destination: b.destination.clone(),
                kind: Some("bind".into()),
                source: Some(b.source.clone()),
                options: opts,
            });
        }
        let mut namespaces: Vec<Namespace> = ["pid", "ipc", "uts", "mount"]
            .iter()
            .map(|k| Namespace {
                kind: k.to_string(),
                path: None,
            })
            .collect();
        match &self.network {
            NetworkMode::None => namespaces.push(Namespace {
                kind: "network".into(),
                path: None,
            }),
            NetworkMode::Host => {}
            NetworkMode::Join(p) => namespaces.push(Namespace {
                kind: "network".into(),
                path: Some(p.clone()),
            }),
        }
        let mut resources = Resources::default();
        if self.memory.is_some() || self.memory_swap.is_some() {
            let swap = match (self.memory, self.memory_swap) {
                // Docker: no --memory-swap means swap = memory (memory+swap = 2×memory).
                (Some(mem), None) => Some(mem * 2),
                (_, s) => s,
            };
            resources.memory = Some(Memory {
                limit: self.memory,
                swap,
                ..Default::default()
            });
        }
        if self.cpus.is_some() || self.cpu_shares.is_some() || self.cpuset_cpus.is_some() {
            let period = 100_000u64;
            resources.cpu = Some(Cpu {
                shares: self.cpu_shares,
                quota: self.cpus.map(|c| (c * period as f64).round() as i64),
                period: self.cpus.map(|_| period),
                cpus: self.cpuset_cpus.clone(),
                mems: None,
            });
        }
        if let Some(p) = self.pids_limit {
            resources.pids = Some(Pids { limit: p });
        }
        if !self.privileged {
            resources.devices.push(super::spec::DeviceRule {
                allow: false,
                access: Some("rwm".into()),
                ..Default::default()
            });
        }
        // Which profile berth compiles (an annotation) and its OCI form (for other tools).
        let profile = match (&self.seccomp, self.privileged) {
            (_, true) | (SeccompChoice::Unconfined, _) => None,
            (SeccompChoice::Default, _) => Some(None),
            (SeccompChoice::File(p), _) => Some(Some(Profile::load(p).map_err(|e| {
                RuntimeError::Seccomp {
                    reason: e.to_string(),
                }
            })?)),
            (SeccompChoice::Profile(p), _) => Some(Some(p.clone())),
        };
        let cap_set = seccomp::cap_set(process.capabilities.as_ref())?;
        let mut annotations = self.annotations.clone();
        annotations.remove(seccomp::PROFILE_ANNOTATION);
        let seccomp = match profile {
            None => None,
            Some(None) => {
                annotations.insert(seccomp::PROFILE_ANNOTATION.into(), seccomp::DEFAULT.into());
                Some(seccomp::default_oci_form(cap_set)?)
            }
            Some(Some(p)) => {
                annotations.insert(
                    seccomp::PROFILE_ANNOTATION.into(),
                    serde_json::to_string(&p).expect("a profile serialises"),
                );
                Some(seccomp::oci_form(&p, cap_set)?)
            }
        };
        let root_path = match &self.rootfs {
            Some(Rootfs::Dir(d)) => d.clone(),
            Some(Rootfs::Overlay(o)) => {
                annotations.insert(
                    OVERLAY_ANNOTATION.into(),
                    serde_json::to_string(o).expect("serialisable"),
                );
                rootfs_mountpoint.to_path_buf()
            }
            None => {
                return Err(RuntimeError::BadRequest(format!(
                    "container {id}: no rootfs"
                )));
            }
        };
        Ok(Spec {
            oci_version: "1.2.0".into(),
            process: Some(process),
            root: Some(Root {
                path: root_path,
                readonly: self.read_only,
            }),
            hostname: Some(self.hostname.clone().unwrap_or_else(|| short(id))),
            domainname: None,
            mounts,
            linux: Some(Linux {
                namespaces,
                resources: Some(resources),
                cgroups_path: Some(format!("/berth/{id}")),
                seccomp,
                masked_paths: if self.privileged {
                    vec![]
                } else {
                    default_masked_paths()
                },
                readonly_paths: if self.privileged {
                    vec![]
                } else {
                    READONLY_PATHS.iter().map(|p| p.to_string()).collect()
                },
                devices: if self.privileged {
                    host_devices()
                } else {
                    vec![]
                },
                ..Default::default()
            }),
            annotations,
        })
    }
}

/// Every char and block device directly under the host's /dev (and /dev/{dri,snd,net,...}),
/// as Docker gives a privileged container; the pty, shm and mqueue mounts are the
/// container's own.
pub fn host_devices() -> Vec<super::spec::Device> {
    use std::os::unix::fs::{FileTypeExt, MetadataExt};
    let mut out = Vec::new();
    let mut dirs = vec![std::path::PathBuf::from("/dev")];
    while let Some(d) = dirs.pop() {
        let Ok(rd) = std::fs::read_dir(&d) else {
            continue;
        };
        for e in rd.flatten() {
            let p = e.path();
            let Ok(m) = std::fs::symlink_metadata(&p) else {
                continue;
            };
            let ft = m.file_type();
            if ft.is_dir() {
                if !matches!(p.to_str(), Some("/dev/pts" | "/dev/shm" | "/dev/mqueue"))
                    && d == std::path::Path::new("/dev")
                {
                    dirs.push(p);
                }
                continue;
            }
            let kind = if ft.is_char_device() {
                "c"
            } else if ft.is_block_device() {
                "b"
            } else {
                continue;
            };
            if matches!(p.to_str(), Some("/dev/console" | "/dev/ptmx" | "/dev/tty")) {
                continue;
            }
            let rdev = m.rdev();
            out.push(super::spec::Device {
                kind: kind.into(),
                path: p,
                major: nix::sys::stat::major(rdev) as i64,
                minor: nix::sys::stat::minor(rdev) as i64,
                file_mode: Some(m.mode() & 0o777),
                uid: Some(m.uid()),
                gid: Some(m.gid()),
            });
        }
    }
    out.sort_by(|a, b| a.path.cmp(&b.path));
    out
}

fn short(id: &ContainerId) -> String {
    id.as_str().chars().take(12).collect()
}

fn nofile_rlimit() -> Vec<Rlimit> {
    let (_, hard) = nix::sys::resource::getrlimit(nix::sys::resource::Resource::RLIMIT_NOFILE)
        .unwrap_or((1024, 1024));
    let v = hard.min(1_048_576);
    vec![Rlimit {
        kind: "RLIMIT_NOFILE".into(),
        hard: v,
        soft: v,
    }]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req() -> CreateRequest {
        CreateRequest {
            id: Some(ContainerId::new("abc").unwrap()),
            rootfs: Some(Rootfs::Dir("/r".into())),
            args: vec!["sh".into()],
            ..Default::default()
        }
    }

    #[test]
    fn docker_defaults() {
        let s = req().to_spec(std::path::Path::new("/unused")).unwrap();
        let p = s.process();
        assert_eq!(p.capabilities.as_ref().unwrap().bounding.len(), 14);
        assert!(p.env.iter().any(|e| e.starts_with("PATH=")));
        assert!(s.has_namespace("network") && s.has_namespace("pid"));
        let l = s.linux();
        assert!(l.masked_paths.contains(&"/proc/kcore".to_string()));
        assert!(l.readonly_paths.contains(&"/proc/sys".to_string()));
        assert!(l.seccomp.is_some());
        assert_eq!(
            s.annotations
                .get(seccomp::PROFILE_ANNOTATION)
                .map(String::as_str),
            Some(seccomp::DEFAULT)
        );
        assert_eq!(s.hostname.as_deref(), Some("abc"));
    }

    #[test]
    fn memory_below_the_minimum_is_refused() {
        let mut r = req();
        r.memory = Some(1024);
        match r.to_spec(std::path::Path::new("/x")) {
            Err(RuntimeError::BadRequest(m)) => assert!(m.contains("below the minimum"), "{m}"),
            other => panic!("expected a bad request, got {other:?}"),
        }
        r.memory = Some(MIN_MEMORY);
        assert!(r.to_spec(std::path::Path::new("/x")).is_ok());
    }

    #[test]
    fn limits_and_mounts() {
        let mut r = req();
        r.memory = Some(64 << 20);
        r.cpus = Some(0.5);
        r.pids_limit = Some(10);
        r.binds.push(BindMount {
            source: "/src".into(),
            destination: "/dst".into(),
            readonly: true,
            propagation: None,
        });
        r.network = NetworkMode::Host;
        let s = r.to_spec(std::path::Path::new("/x")).unwrap();
        let res = s.linux().resources.clone().unwrap();
        assert_eq!(res.memory.unwrap().swap, Some(128 << 20));
        assert_eq!(res.cpu.unwrap().quota, Some(50_000));
        assert_eq!(res.pids.unwrap().limit, 10);
        assert!(!s.has_namespace("network"));
        let b = s
            .mounts
            .iter()
            .find(|m| m.destination == std::path::Path::new("/dst"))
            .unwrap();
        assert!(b.options.contains(&"ro".to_string()));
    }

    #[test]
    fn bad_requests() {
        let mut r = req();
        r.args.clear();
        assert!(matches!(
            r.to_spec(std::path::Path::new("/")),
            Err(RuntimeError::BadRequest(_))
        ));
        let mut r = req();
        r.binds.push(BindMount {
            source: "rel".into(),
            destination: "/d".into(),
            readonly: false,
            propagation: None,
        });
        assert!(r.to_spec(std::path::Path::new("/")).is_err());
        let mut r = req();
        r.auto_remove = true;
        r.restart = RestartPolicy::Always;
        assert!(r.to_spec(std::path::Path::new("/")).is_err());
    }

    #[test]
    fn restart_policies() {
        assert_eq!(
            "on-failure:3".parse::<RestartPolicy>().unwrap(),
            RestartPolicy::OnFailure {
                max_retries: Some(3)
            }
        );
        assert!("sometimes".parse::<RestartPolicy>().is_err());
        let p = RestartPolicy::OnFailure {
            max_retries: Some(2),
        };
        assert!(p.should_restart(1, 1, false));
        assert!(!p.should_restart(1, 2, false));
        assert!(!p.should_restart(0, 0, false));
        assert!(RestartPolicy::Always.should_restart(0, 100, false));
        assert!(!RestartPolicy::Always.should_restart(0, 0, true));
        assert!(!RestartPolicy::No.should_restart(1, 0, false));
    }
}
