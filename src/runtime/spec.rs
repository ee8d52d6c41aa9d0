//! The OCI runtime spec (`config.json`) as far as berth's runtime implements it.
//!
//! Our own serde model rather than oci-spec's getters: direct field access keeps the init code
//! readable, and unknown fields are ignored (the spec allows extensions). ociVersion 1.0.x to
//! 1.3.0 are accepted.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::error::{IoContext, Result, RuntimeError};

/// Annotation carrying an overlay rootfs description (JSON of [`OverlayRootfs`]); when present,
/// `root.path` is the mountpoint and the overlay is mounted inside the container's own mount
/// namespace, so nothing is left on the host when the container dies.
pub const OVERLAY_ANNOTATION: &str = "org.berth.rootfs.overlay";

#[derive(Debug, Clone, Serialize, Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct Spec {
    pub oci_version: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub process: Option<Process>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub root: Option<Root>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hostname: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub domainname: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub mounts: Vec<Mount>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub linux: Option<Linux>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub annotations: BTreeMap<String, String>,
}

#[derive(Debug, Clone, Serialize, Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct Process {
    #[serde(default)]
    pub terminal: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub console_size: Option<ConsoleSize>,
    #[serde(default)]
    pub user: User,
    #[serde(default)]
    pub args: Vec<String>,
    #[serde(default)]
    pub env: Vec<String>,
    #[serde(default = "default_cwd")]
    pub cwd: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub capabilities: Option<Capabilities>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub rlimits: Vec<Rlimit>,
    #[serde(default)]
    pub no_new_privileges: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub oom_score_adj: Option<i32>,
}

fn default_cwd() -> String {
    "/".into()
}

#[derive(Debug, Clone, Copy, Serialize, Deserialize, Default)]
pub struct ConsoleSize {
    pub height: u16,
    pub width: u16,
}

#[derive(Debug, Clone, Serialize, Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct User {
    #[serde(default)]
    pub uid: u32,
    #[serde(default)]
    pub gid: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub umask: Option<u32>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub additional_gids: Vec<u32>,
}

#[derive(Debug, Clone, Serialize, Deserialize, Default, PartialEq, Eq)]
pub struct Capabilities {
    #[serde(default)]
    pub bounding: Vec<String>,
    #[serde(default)]
    pub effective: Vec<String>,
    #[serde(default)]
    pub inheritable: Vec<String>,
    #[serde(default)]
    pub permitted: Vec<String>,
    #[serde(default)]
    pub ambient: Vec<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Rlimit {
    #[serde(rename = "type")]
    pub kind: String,
    pub hard: u64,
    pub soft: u64,
}

#[derive(Debug, Clone, Serialize, Deserialize, Default)]
pub struct Root {
    pub path: PathBuf,
    #[serde(default)]
    pub readonly: bool,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Mount {
    pub destination: PathBuf,
    #[serde(rename = "type", default, skip_serializing_if = "Option::is_none")]
    pub kind: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<PathBuf>,
    #[serde(default)]
    pub options: Vec<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct Linux {
    #[serde(default)]
    pub namespaces: Vec<Namespace>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub uid_mappings: Vec<IdMapping>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub gid_mappings: Vec<IdMapping>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resources: Option<Resources>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cgroups_path: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    /// The OCI `linux.seccomp` object (see [`super::seccomp`] for what berth compiles).
    pub seccomp: Option<serde_json::Value>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub masked_paths: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub readonly_paths: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rootfs_propagation: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub devices: Vec<Device>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub sysctl: BTreeMap<String, String>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Namespace {
    #[serde(rename = "type")]
    pub kind: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path: Option<PathBuf>,
}

#[derive(Debug, Clone, Copy, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct IdMapping {
    #[serde(rename = "containerID")]
    pub container_id: u32,
    #[serde(rename = "hostID")]
    pub host_id: u32,
    pub size: u32,
}

#[derive(Debug, Clone, Serialize, Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct Resources {
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub devices: Vec<DeviceRule>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub memory: Option<Memory>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cpu: Option<Cpu>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pids: Option<Pids>,
}

#[derive(Debug, Clone, Serialize, Deserialize, Default, PartialEq, Eq)]
pub struct DeviceRule {
    pub allow: bool,
    #[serde(rename = "type", default, skip_serializing_if = "Option::is_none")]
    pub kind: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub major: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub minor: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub access: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize, Default, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct Memory {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub limit: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reservation: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub swap: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub swappiness: Option<u64>,
    #[serde(
        default,
        rename = "disableOOMKiller",
        skip_serializing_if = "Option::is_none"
    )]
    pub disable_oom_killer: Option<bool>,
}

#[derive(Debug, Clone, Serialize, Deserialize, Default, PartialEq, Eq)]
pub struct Cpu {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shares: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub quota: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub period: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cpus: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mems: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize, Default, PartialEq, Eq)]
pub struct Pids {
    pub limit: i64,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct Device {
    #[serde(rename = "type")]
    pub kind: String,
    pub path: PathBuf,
    #[serde(default)]
    pub major: i64,
    #[serde(default)]
    pub minor: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub file_mode: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub uid: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gid: Option<u32>,
}

/// An overlay rootfs: read-only lower dirs (top first), a writable upper dir and its work dir.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct OverlayRootfs {
    pub lowerdirs: Vec<PathBuf>,
    pub upperdir: PathBuf,
    pub workdir: PathBuf,
}

impl Spec {
    /// Load and validate `bundle/config.json`.
    pub fn load(bundle: &Path) -> Result<Spec> {
        let path = bundle.join("config.json");
        let data = std::fs::read(&path).ctx("read", &path)?;
        Self::parse(&data, &path)
    }

    /// Parse and validate config.json bytes (`path` is for error messages).
    pub fn parse(data: &[u8], path: &Path) -> Result<Spec> {
        let spec: Spec = serde_json::from_slice(data).map_err(|e| RuntimeError::InvalidSpec {
            path: path.into(),
            reason: e.to_string(),
        })?;
        spec.validate(path)?;
        Ok(spec)
    }

    fn validate(&self, path: &Path) -> Result<()> {
        check_version(&self.oci_version)?;
        let invalid = |reason: &str| RuntimeError::InvalidSpec {
            path: path.into(),
            reason: reason.into(),
        };
        let p = self.process.as_ref().ok_or_else(|| invalid("no process"))?;
        if p.args.is_empty() {
            return Err(invalid("process.args is empty"));
        }
        if !p.cwd.starts_with('/') {
            return Err(invalid("process.cwd must be absolute"));
        }
        if self.root.is_none() {
            return Err(invalid("no root"));
        }
        for m in &self.mounts {
            if !m.destination.is_absolute() {
                return Err(invalid(&format!(
                    "mount destination {:?} is not absolute",
                    m.destination
                )));
            }
        }
        if let Some(l) = &self.linux {
            for ns in &l.namespaces {
                if namespace_flag(&ns.kind).is_none() {
                    return Err(invalid(&format!("unknown namespace type {:?}", ns.kind)));
                }
            }
        }
        Ok(())
    }

    pub fn process(&self) -> &Process {
        self.process.as_ref().expect("validated: process present")
    }

    pub fn linux(&self) -> &Linux {
        static EMPTY: std::sync::OnceLock<Linux> = std::sync::OnceLock::new();
        self.linux
            .as_ref()
            .unwrap_or_else(|| EMPTY.get_or_init(Linux::default))
    }

    /// The rootfs path, resolved against the bundle directory when relative.
    pub fn rootfs(&self, bundle: &Path) -> PathBuf {
        let p = &self.root.as_ref().expect("validated: root present").path;
        if p.is_absolute() {
            p.clone()
        } else {
            bundle.join(p)
        }
    }

    pub fn overlay(&self) -> Result<Option<OverlayRootfs>> {
        match self.annotations.get(OVERLAY_ANNOTATION) {
            None => Ok(None),
            Some(s) => serde_json::from_str(s)
                .map(Some)
                .map_err(|e| RuntimeError::InvalidSpec {
                    path: OVERLAY_ANNOTATION.into(),
                    reason: e.to_string(),
                }),
        }
    }

    /// Whether the spec asks for a new namespace of this type (no `path` = new).
    pub fn has_namespace(&self, kind: &str) -> bool {
        self.linux().namespaces.iter().any(|n| n.kind == kind)
    }
}

/// Accept ociVersion 1.0.x through 1.3.0.
pub fn check_version(v: &str) -> Result<()> {
    let bad = || RuntimeError::UnsupportedVersion { version: v.into() };
    let core = v.split(['-', '+']).next().unwrap_or("");
    let mut it = core.split('.').map(|p| p.parse::<u32>());
    let (Some(Ok(maj)), Some(Ok(min)), Some(Ok(patch))) = (it.next(), it.next(), it.next()) else {
        return Err(bad());
    };
    let ok = maj == 1 && (min <= 2 || (min == 3 && patch == 0));
    if ok { Ok(()) } else { Err(bad()) }
}

/// CLONE_NEW* flag of an OCI namespace type.
pub fn namespace_flag(kind: &str) -> Option<libc::c_int> {
    Some(match kind {
        "pid" => libc::CLONE_NEWPID,
        "network" => libc::CLONE_NEWNET,
        "mount" => libc::CLONE_NEWNS,
        "ipc" => libc::CLONE_NEWIPC,
        "uts" => libc::CLONE_NEWUTS,
        "user" => libc::CLONE_NEWUSER,
        "cgroup" => libc::CLONE_NEWCGROUP,
        "time" => libc::CLONE_NEWTIME,
        _ => return None,
    })
}

/// The /proc/PID/ns/ file name of an OCI namespace type.
pub fn namespace_proc_name(kind: &str) -> Option<&'static str> {
    Some(match kind {
        "pid" => "pid",
        "network" => "net",
        "mount" => "mnt",
        "ipc" => "ipc",
        "uts" => "uts",
        "user" => "user",
        "cgroup" => "cgroup",
        "time" => "time",
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions() {
        for ok in ["1.0.0", "1.0.2-dev", "1.1.0", "1.2.1", "1.3.0"] {
            assert!(check_version(ok).is_ok(), "{ok}");
        }
        for bad in ["0.9.0", "1.3.1", "1.4.0", "2.0.0", "x", "1.0"] {
            assert!(check_version(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn parse_runc_spec_shape() {
        let json =
            br#"{"ociVersion":"1.0.2-dev","process":{"terminal":true,"user":{"uid":0,"gid":0},
          "args":["sh"],"env":["PATH=/bin"],"cwd":"/","capabilities":{"bounding":["CAP_KILL"]},
          "rlimits":[{"type":"RLIMIT_NOFILE","hard":1024,"soft":1024}],"noNewPrivileges":true},
          "root":{"path":"rootfs","readonly":true},"hostname":"runc",
          "mounts":[{"destination":"/proc","type":"proc","source":"proc"}],
          "linux":{"resources":{"devices":[{"allow":false,"access":"rwm"}]},
          "namespaces":[{"type":"pid"},{"type":"network"}],"maskedPaths":["/proc/kcore"]}}"#;
        let s = Spec::parse(json, Path::new("config.json")).unwrap();
        assert!(s.process().terminal);
        assert_eq!(s.rootfs(Path::new("/b")), PathBuf::from("/b/rootfs"));
        assert!(s.has_namespace("pid") && !s.has_namespace("user"));
        assert_eq!(s.linux().masked_paths, vec!["/proc/kcore".to_string()]);
    }

    #[test]
    fn rejects_bad_specs() {
        let no_args =
            br#"{"ociVersion":"1.0.0","process":{"args":[],"cwd":"/"},"root":{"path":"r"}}"#;
        assert!(matches!(
            Spec::parse(no_args, Path::new("c")),
            Err(RuntimeError::InvalidSpec { .. })
        ));
        let rel = br#"{"ociVersion":"1.0.0","process":{"args":["x"],"cwd":"/"},"root":{"path":"r"},
            "mounts":[{"destination":"proc"}]}"#;
        assert!(Spec::parse(rel, Path::new("c")).is_err());
        let ns = br#"{"ociVersion":"1.0.0","process":{"args":["x"],"cwd":"/"},"root":{"path":"r"},
            "linux":{"namespaces":[{"type":"bogus"}]}}"#;
        assert!(Spec::parse(ns, Path::new("c")).is_err());
        let ver = br#"{"ociVersion":"1.4.0","process":{"args":["x"]},"root":{"path":"r"}}"#;
        assert!(matches!(
            Spec::parse(ver, Path::new("c")),
            Err(RuntimeError::UnsupportedVersion { .. })
        ));
    }
}
