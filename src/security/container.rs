//! A container's security settings, worked out from the options a user gives (`docker run`'s
//! `--privileged`, `--cap-add`, `--cap-drop`, `--security-opt`, `--read-only`, `--user`), the
//! way Docker does: one value the runtime applies.

use super::caps::{CapSet, UnknownCapability};
use super::seccomp::{SeccompConfig, SeccompError};
use serde::{Deserialize, Serialize};

/// Paths Docker hides from a container (`/dev/null` over files, an empty read-only tmpfs over
/// directories), unless it is privileged or has `systempaths=unconfined`. Also every
/// `/sys/devices/system/cpu/cpuN/thermal_throttle` that exists ([`default_masked_paths`]).
pub const MASKED_PATHS: &[&str] = &[
    "/proc/acpi",
    "/proc/asound",
    "/proc/interrupts",
    "/proc/kcore",
    "/proc/keys",
    "/proc/latency_stats",
    "/proc/sched_debug",
    "/proc/scsi",
    "/proc/timer_list",
    "/proc/timer_stats",
    "/sys/devices/virtual/powercap",
    "/sys/firmware",
];

/// Paths Docker bind-mounts read-only over themselves.
pub const READONLY_PATHS: &[&str] = &[
    "/proc/bus",
    "/proc/fs",
    "/proc/irq",
    "/proc/sys",
    "/proc/sysrq-trigger",
];

/// [`MASKED_PATHS`] plus the thermal-throttle directory of each CPU of this host (a side
/// channel, GHSA-6fw5-f8r9-fgfm).
pub fn default_masked_paths() -> Vec<String> {
    let mut paths: Vec<String> = MASKED_PATHS.iter().map(|p| p.to_string()).collect();
    let mut cpus: Vec<String> = std::fs::read_dir("/sys/devices/system/cpu")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| {
            let name = e.file_name().into_string().ok()?;
            let n = name.strip_prefix("cpu")?;
            (!n.is_empty() && n.bytes().all(|b| b.is_ascii_digit())).then_some(name)
        })
        .map(|cpu| format!("/sys/devices/system/cpu/{cpu}/thermal_throttle"))
        .filter(|p| std::path::Path::new(p).exists())
        .collect();
    cpus.sort();
    paths.extend(cpus);
    paths
}

/// Options that cannot be applied.
#[derive(Debug, thiserror::Error)]
pub enum SecurityOptError {
    #[error(transparent)]
    Capability(#[from] UnknownCapability),
    #[error(transparent)]
    Seccomp(#[from] SeccompError),
    #[error("invalid --security-opt {0:?}")]
    Invalid(String),
    #[error("invalid --user {0:?}: {1}")]
    User(String, &'static str),
}

/// The options as the user gave them.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct SecurityOptions {
    pub privileged: bool,
    pub cap_add: Vec<String>,
    pub cap_drop: Vec<String>,
    /// `no-new-privileges[=true|false]`, `seccomp=unconfined|FILE`, `systempaths=unconfined`,
    /// `apparmor=…`, `label=…` (no LSM on berth's hosts: accepted and reported as ignored).
    pub security_opt: Vec<String>,
    pub read_only: bool,
    /// `--user`: `uid[:gid]` or `name[:group]`; `None` = the image's user.
    pub user: Option<String>,
}

/// What the runtime applies.
#[derive(Debug, Clone, PartialEq)]
pub struct ContainerSecurity {
    pub privileged: bool,
    /// The bounding, permitted and effective sets of the container's process (inheritable and
    /// ambient stay empty, as in Docker). For a non-root user the kernel clears permitted and
    /// effective at the uid change, as with Docker.
    pub caps: CapSet,
    pub seccomp: SeccompConfig,
    pub no_new_privileges: bool,
    /// Empty for privileged containers and with `systempaths=unconfined`.
    pub masked_paths: Vec<String>,
    pub readonly_paths: Vec<String>,
    pub read_only_rootfs: bool,
    pub user: UserSpec,
    /// Options accepted but without effect here (AppArmor, SELinux labels).
    pub ignored: Vec<String>,
}

impl ContainerSecurity {
    pub fn from_options(o: &SecurityOptions) -> Result<Self, SecurityOptError> {
        let caps = CapSet::for_container(&o.cap_add, &o.cap_drop, o.privileged)?;
        let seccomp = SeccompConfig::from_security_opts(&o.security_opt, o.privileged)?;
        let mut no_new_privileges = false;
        let mut system_paths = !o.privileged;
        let mut ignored = Vec::new();
        for opt in &o.security_opt {
            // Docker accepts `key=value` and the older `key:value`.
            let (key, value) = match opt.split_once(['=', ':']) {
                Some((k, v)) => (k, Some(v)),
                None => (opt.as_str(), None),
            };
            match (key, value) {
                ("no-new-privileges", None) => no_new_privileges = true,
                ("no-new-privileges", Some(v)) => {
                    no_new_privileges = v
                        .parse::<bool>()
                        .map_err(|_| SecurityOptError::Invalid(opt.clone()))?;
                }
                ("seccomp", Some(_)) => {} // handled by SeccompConfig
                ("systempaths", Some("unconfined")) => system_paths = false,
                ("apparmor" | "label", Some(_)) => ignored.push(opt.clone()),
                _ => return Err(SecurityOptError::Invalid(opt.clone())),
            }
        }
        let user = match &o.user {
            None => UserSpec::Image,
            Some(u) => UserSpec::parse(u)?,
        };
        Ok(Self {
            privileged: o.privileged,
            caps,
            seccomp,
            no_new_privileges,
            masked_paths: if system_paths {
                default_masked_paths()
            } else {
                vec![]
            },
            readonly_paths: if system_paths {
                READONLY_PATHS.iter().map(|p| p.to_string()).collect()
            } else {
                vec![]
            },
            read_only_rootfs: o.read_only,
            user,
            ignored,
        })
    }
}

/// A user or group, by number or by name.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Id {
    Num(u32),
    Name(String),
}

impl Id {
    fn parse(s: &str) -> Self {
        s.parse()
            .map(Self::Num)
            .unwrap_or_else(|_| Self::Name(s.to_owned()))
    }
}

/// `--user`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum UserSpec {
    /// The image's `USER` (root if it has none).
    Image,
    User {
        user: Id,
        group: Option<Id>,
    },
}

/// The ids a container process runs with.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ResolvedUser {
    pub uid: u32,
    pub gid: u32,
    /// From the container's `/etc/group`, where the user is a listed member.
    pub additional_gids: Vec<u32>,
    /// From `/etc/passwd` (for `HOME`); `/` when unknown.
    pub home: String,
}

impl UserSpec {
    pub fn parse(s: &str) -> Result<Self, SecurityOptError> {
        let bad = |why| SecurityOptError::User(s.to_owned(), why);
        let (user, group) = match s.split_once(':') {
            Some((u, g)) => (u, Some(g)),
            None => (s, None),
        };
        if user.is_empty() {
            return Err(bad("no user"));
        }
        if group.is_some_and(str::is_empty) {
            return Err(bad("empty group"));
        }
        if s.contains(char::is_whitespace) {
            return Err(bad("whitespace"));
        }
        Ok(Self::User {
            user: Id::parse(user),
            group: group.map(Id::parse),
        })
    }

    /// Resolve against the container's `/etc/passwd` and `/etc/group` (their contents; the
    /// runtime reads them from inside the rootfs, never following links out of it). As in
    /// Docker: a name must exist; a number need not (its gid is then 0 unless given); the
    /// primary group is the passwd entry's unless one is given.
    pub fn resolve(&self, passwd: &str, group: &str) -> Result<ResolvedUser, String> {
        let users: Vec<Vec<&str>> = passwd
            .lines()
            .filter(|l| !l.trim_start().starts_with('#'))
            .map(|l| l.split(':').collect::<Vec<_>>())
            .filter(|f| f.len() >= 7)
            .collect();
        let groups: Vec<Vec<&str>> = group
            .lines()
            .filter(|l| !l.trim_start().starts_with('#'))
            .map(|l| l.split(':').collect::<Vec<_>>())
            .filter(|f| f.len() >= 4)
            .collect();
        let (user, group_id) = match self {
            Self::Image => (&Id::Num(0), None),
            Self::User { user, group } => (user, group.as_ref()),
        };
        let entry = users.iter().find(|f| match user {
            Id::Num(n) => f[2].parse() == Ok(*n),
            Id::Name(name) => f[0] == name,
        });
        let (uid, mut gid, name, home) = match (user, entry) {
            (_, Some(f)) => (
                f[2].parse()
                    .map_err(|_| format!("bad uid in passwd: {}", f[2]))?,
                f[3].parse()
                    .map_err(|_| format!("bad gid in passwd: {}", f[3]))?,
                Some(f[0]),
                f[5].to_owned(),
            ),
            (Id::Num(n), None) => (*n, 0, None, "/".to_owned()),
            (Id::Name(n), None) => {
                return Err(format!("no user {n:?} in the container's /etc/passwd"));
            }
        };
        if let Some(g) = group_id {
            gid = match g {
                Id::Num(n) => *n,
                Id::Name(n) => groups
                    .iter()
                    .find(|f| f[0] == n)
                    .ok_or_else(|| format!("no group {n:?} in the container's /etc/group"))?[2]
                    .parse()
                    .map_err(|_| format!("bad gid for group {n:?}"))?,
            };
        }
        let mut additional_gids: Vec<u32> = match name {
            Some(name) => groups
                .iter()
                .filter(|f| f[3].split(',').any(|m| m == name))
                .filter_map(|f| f[2].parse().ok())
                .filter(|g| *g != gid)
                .collect(),
            None => vec![],
        };
        additional_gids.sort_unstable();
        additional_gids.dedup();
        Ok(ResolvedUser {
            uid,
            gid,
            additional_gids,
            home,
        })
    }
}

/// One line of a uid or gid map.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct IdMap {
    pub container_id: u32,
    pub host_id: u32,
    pub size: u32,
}

/// User-namespace remapping (`--userns-remap`): container uid/gid 0.. map to the subordinate
/// ranges a host user owns in `/etc/subuid` and `/etc/subgid`, so root in the container is an
/// unprivileged uid on the host.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UsernsRemap {
    pub uid_maps: Vec<IdMap>,
    pub gid_maps: Vec<IdMap>,
}

impl UsernsRemap {
    /// From the contents of `/etc/subuid` and `/etc/subgid` for host user `name` (with uid
    /// `uid`; entries may name either). The ranges are laid end to end from container id 0.
    pub fn from_subid(name: &str, uid: u32, subuid: &str, subgid: &str) -> Result<Self, String> {
        let ranges = |text: &str, file: &str| -> Result<Vec<IdMap>, String> {
            let mut next = 0u32;
            let mut maps = Vec::new();
            for line in text.lines().map(str::trim) {
                if line.is_empty() || line.starts_with('#') {
                    continue;
                }
                let f: Vec<&str> = line.split(':').collect();
                if f.len() != 3 || (f[0] != name && f[0].parse() != Ok(uid)) {
                    continue;
                }
                let (Ok(start), Ok(size)) = (f[1].parse::<u32>(), f[2].parse::<u32>()) else {
                    return Err(format!("bad line in {file}: {line:?}"));
                };
                if size == 0 || start.checked_add(size).is_none() {
                    return Err(format!("bad range in {file}: {line:?}"));
                }
                maps.push(IdMap {
                    container_id: next,
                    host_id: start,
                    size,
                });
                next = next
                    .checked_add(size)
                    .ok_or_else(|| format!("{file}: ranges of {name} overflow"))?;
            }
            if maps.is_empty() {
                return Err(format!("{file} has no range for {name}"));
            }
            Ok(maps)
        };
        Ok(Self {
            uid_maps: ranges(subuid, "/etc/subuid")?,
            gid_maps: ranges(subgid, "/etc/subgid")?,
        })
    }

    /// The host uid a container uid runs as.
    pub fn host_uid(&self, container_uid: u32) -> Option<u32> {
        map(&self.uid_maps, container_uid)
    }

    pub fn host_gid(&self, container_gid: u32) -> Option<u32> {
        map(&self.gid_maps, container_gid)
    }
}

fn map(maps: &[IdMap], id: u32) -> Option<u32> {
    maps.iter()
        .find(|m| id >= m.container_id && id - m.container_id < m.size)
        .map(|m| m.host_id + (id - m.container_id))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::security::caps::Cap;

    fn opts(f: impl FnOnce(&mut SecurityOptions)) -> Result<ContainerSecurity, SecurityOptError> {
        let mut o = SecurityOptions::default();
        f(&mut o);
        ContainerSecurity::from_options(&o)
    }

    #[test]
    fn defaults_are_dockers() {
        let s = opts(|_| {}).unwrap();
        assert_eq!(s.caps, CapSet::docker_default());
        assert_eq!(s.seccomp, SeccompConfig::Default);
        assert!(!s.no_new_privileges && !s.read_only_rootfs && !s.privileged);
        for p in MASKED_PATHS {
            assert!(s.masked_paths.iter().any(|m| m == p), "{p}");
        }
        assert_eq!(s.readonly_paths.len(), READONLY_PATHS.len());
        assert_eq!(s.user, UserSpec::Image);
    }

    #[test]
    fn privileged_gets_everything_and_no_confinement() {
        let s = opts(|o| {
            o.privileged = true;
            o.cap_drop = vec!["ALL".into()];
        })
        .unwrap();
        assert_eq!(s.caps, CapSet::all());
        assert_eq!(s.seccomp, SeccompConfig::Unconfined);
        assert!(s.masked_paths.is_empty() && s.readonly_paths.is_empty());
    }

    #[test]
    fn security_opts() {
        let s = opts(|o| {
            o.security_opt = vec![
                "no-new-privileges".into(),
                "seccomp=unconfined".into(),
                "systempaths=unconfined".into(),
                "apparmor=unconfined".into(),
            ];
            o.read_only = true;
            o.cap_add = vec!["NET_ADMIN".into()];
        })
        .unwrap();
        assert!(s.no_new_privileges && s.read_only_rootfs);
        assert_eq!(s.seccomp, SeccompConfig::Unconfined);
        assert!(s.masked_paths.is_empty());
        assert_eq!(s.ignored, vec!["apparmor=unconfined".to_owned()]);
        assert!(s.caps.contains(Cap::parse("NET_ADMIN").unwrap()));
        let s = opts(|o| o.security_opt = vec!["no-new-privileges:false".into()]).unwrap();
        assert!(!s.no_new_privileges);
        for bad in ["no-new-privileges=maybe", "colour=blue", "systempaths=open"] {
            assert!(
                matches!(
                    opts(|o| o.security_opt = vec![bad.into()]),
                    Err(SecurityOptError::Invalid(_))
                ),
                "{bad}"
            );
        }
        assert!(matches!(
            opts(|o| o.cap_add = vec!["NET_ADMN".into()]),
            Err(SecurityOptError::Capability(_))
        ));
    }

    const PASSWD: &str = "root:x:0:0:root:/root:/bin/sh\n# comment\nwww:x:33:33:www:/var/www:/bin/false\nbob:x:1000:1000::/home/bob:/bin/sh\n";
    const GROUP: &str = "root:x:0:\nwww:x:33:bob\nstaff:x:50:bob,www\nbob:x:1000:\n";

    #[test]
    fn users_resolve_like_docker() {
        let r = |s: &str| UserSpec::parse(s).unwrap().resolve(PASSWD, GROUP);
        assert_eq!(
            r("bob").unwrap(),
            ResolvedUser {
                uid: 1000,
                gid: 1000,
                additional_gids: vec![33, 50],
                home: "/home/bob".into()
            }
        );
        assert_eq!(r("33").unwrap().gid, 33);
        assert_eq!(r("www:staff").unwrap().gid, 50);
        assert_eq!(r("www:staff").unwrap().additional_gids, Vec::<u32>::new());
        let n = r("4242:7").unwrap();
        assert_eq!((n.uid, n.gid, n.home.as_str()), (4242, 7, "/"));
        assert_eq!(r("4242").unwrap().gid, 0);
        assert!(r("alice").unwrap_err().contains("no user \"alice\""));
        assert!(r("bob:nogroup").unwrap_err().contains("no group"));
        assert_eq!(
            UserSpec::Image.resolve(PASSWD, GROUP).unwrap().home,
            "/root"
        );
        for bad in ["", ":1", "bob:", "b ob"] {
            assert!(UserSpec::parse(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn userns_remap_from_subid_files() {
        let subuid = "other:100000:65536\nberth:200000:65536\n1001:400000:10\n";
        let subgid = "berth:300000:65536\n";
        let m = UsernsRemap::from_subid("berth", 1001, subuid, subgid).unwrap();
        assert_eq!(m.uid_maps.len(), 2);
        assert_eq!(m.host_uid(0), Some(200000));
        assert_eq!(m.host_uid(65535), Some(265535));
        assert_eq!(m.host_uid(65536), Some(400000));
        assert_eq!(m.host_uid(65546), None);
        assert_eq!(m.host_gid(0), Some(300000));
        assert!(UsernsRemap::from_subid("nobody", 65534, subuid, subgid).is_err());
        assert!(UsernsRemap::from_subid("berth", 1, "berth:x:1\n", subgid).is_err());
        assert!(UsernsRemap::from_subid("berth", 1, "berth:4294967295:2\n", subgid).is_err());
    }
}
