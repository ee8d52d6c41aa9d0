//! The conditions a rule can put on a request, each a predicate on [`Facts`].
//!
//! See the module doc of [`super`] for the table of keys and what each one means.

use super::{Facts, HostBind};
use crate::security::caps::{CapName, CapSet};
use crate::security::image_name::ImageName;
use serde::Deserialize;
use std::fmt;
use std::path::{Component, Path, PathBuf};

/// A kind of fact a request may carry. Which actions carry which facts is fixed by
/// [`facts_carried_by`]; the dispatcher fills exactly those.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fact {
    /// `Facts::image`.
    Image,
    /// `Facts::privileged`.
    Privileged,
    /// `Facts::cap_add`.
    CapAdd,
    /// `Facts::binds`.
    Binds,
    /// `Facts::user`.
    User,
    /// `Facts::{memory, cpus, pids_limit}`.
    Limits,
    /// `Facts::{network_host, pid_host, ipc_host}`.
    HostNamespaces,
    /// `Facts::seccomp_unconfined`.
    Seccomp,
    /// `Facts::host_ports`.
    Ports,
}

impl fmt::Display for Fact {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Image => "image",
            Self::Privileged => "privileged flag",
            Self::CapAdd => "added capabilities",
            Self::Binds => "bind mounts",
            Self::User => "user",
            Self::Limits => "resource limits",
            Self::HostNamespaces => "namespace modes",
            Self::Seccomp => "seccomp option",
            Self::Ports => "published ports",
        })
    }
}

/// The facts a request of `action` carries. A condition on a fact the action does not carry
/// does not hold (the rule does not apply to that request); a rule whose actions carry none of
/// its conditions' facts is a load error.
pub fn facts_carried_by(action: &str) -> &'static [Fact] {
    use Fact::*;
    match action {
        "container.create" => &[
            Image,
            Privileged,
            CapAdd,
            Binds,
            User,
            Limits,
            HostNamespaces,
            Seccomp,
            Ports,
        ],
        "container.exec" => &[Privileged, User],
        "image.pull" | "image.push" | "image.tag" => &[Image],
        _ => &[],
    }
}

/// A limit `require_limits` can ask for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Limit {
    Memory,
    Cpus,
    Pids,
}

impl Limit {
    fn parse(s: &str) -> Result<Self, String> {
        match s {
            "memory" => Ok(Self::Memory),
            "cpus" => Ok(Self::Cpus),
            "pids" => Ok(Self::Pids),
            _ => Err(format!(
                "require_limits: unknown limit {s:?} (memory, cpus, pids)"
            )),
        }
    }

    fn name(self) -> &'static str {
        match self {
            Self::Memory => "memory",
            Self::Cpus => "cpus",
            Self::Pids => "pids",
        }
    }

    fn is_set(self, f: &Facts) -> bool {
        match self {
            // Docker's 0 (and -1 for pids) mean "no limit".
            Self::Memory => f.memory.is_some_and(|m| m > 0),
            Self::Cpus => f.cpus.is_some_and(|c| c > 0.0),
            Self::Pids => f.pids_limit.is_some_and(|p| p > 0),
        }
    }
}

/// A list of globs with the text they came from.
#[derive(Debug, Clone)]
pub struct Globs {
    patterns: Vec<String>,
    set: globset::GlobSet,
}

impl Globs {
    fn new(key: &str, patterns: Vec<String>) -> Result<Self, String> {
        if patterns.is_empty() {
            return Err(format!("{key}: empty list (it could never match)"));
        }
        let mut b = globset::GlobSetBuilder::new();
        for p in &patterns {
            b.add(globset::Glob::new(p).map_err(|e| format!("{key}: pattern {p:?}: {e}"))?);
        }
        let set = b.build().map_err(|e| format!("{key}: {e}"))?;
        Ok(Self { patterns, set })
    }

    fn is_match(&self, s: &str) -> bool {
        self.set.is_match(s)
    }
}

/// One condition of a rule.
#[derive(Debug, Clone)]
pub enum Condition {
    Registries(Globs),
    Repositories(Globs),
    Privileged(bool),
    CapAdd(Vec<CapName>),
    CapAddOnly(Vec<CapName>),
    BindPrefixes(Vec<PathBuf>),
    BindReadOnly(bool),
    RootUser(bool),
    RequireLimits(Vec<Limit>),
    MaxMemory(u64),
    MaxCpus(f64),
    MaxPids(i64),
    HostNetwork(bool),
    HostPid(bool),
    HostIpc(bool),
    SeccompUnconfined(bool),
    PrivilegedPorts(bool),
}

impl Condition {
    /// The key as written in the policy file.
    pub fn key(&self) -> &'static str {
        match self {
            Self::Registries(_) => "registries",
            Self::Repositories(_) => "repositories",
            Self::Privileged(_) => "privileged",
            Self::CapAdd(_) => "cap_add",
            Self::CapAddOnly(_) => "cap_add_only",
            Self::BindPrefixes(_) => "bind_prefixes",
            Self::BindReadOnly(_) => "bind_read_only",
            Self::RootUser(_) => "root_user",
            Self::RequireLimits(_) => "require_limits",
            Self::MaxMemory(_) => "max_memory",
            Self::MaxCpus(_) => "max_cpus",
            Self::MaxPids(_) => "max_pids",
            Self::HostNetwork(_) => "host_network",
            Self::HostPid(_) => "host_pid",
            Self::HostIpc(_) => "host_ipc",
            Self::SeccompUnconfined(_) => "seccomp_unconfined",
            Self::PrivilegedPorts(_) => "privileged_ports",
        }
    }

    /// The fact the condition looks at.
    pub fn fact(&self) -> Fact {
        match self {
            Self::Registries(_) | Self::Repositories(_) => Fact::Image,
            Self::Privileged(_) => Fact::Privileged,
            Self::CapAdd(_) | Self::CapAddOnly(_) => Fact::CapAdd,
            Self::BindPrefixes(_) | Self::BindReadOnly(_) => Fact::Binds,
            Self::RootUser(_) => Fact::User,
            Self::RequireLimits(_) | Self::MaxMemory(_) | Self::MaxCpus(_) | Self::MaxPids(_) => {
                Fact::Limits
            }
            Self::HostNetwork(_) | Self::HostPid(_) | Self::HostIpc(_) => Fact::HostNamespaces,
            Self::SeccompUnconfined(_) => Fact::Seccomp,
            Self::PrivilegedPorts(_) => Fact::Ports,
        }
    }

    /// Whether the condition holds for a request of `action` with `facts`; `Err` says why not.
    pub fn check(&self, action: &str, facts: &Facts) -> Result<(), String> {
        if !facts_carried_by(action).contains(&self.fact()) {
            return Err(format!("{action} carries no {}", self.fact()));
        }
        let flag = |want: bool, have: bool, what: &str| {
            if want == have {
                Ok(())
            } else if have {
                Err(format!("the request asks for {what}"))
            } else {
                Err(format!("the request does not ask for {what}"))
            }
        };
        match self {
            Self::Registries(globs) => {
                let image = facts.image.as_deref().ok_or("the request names no image")?;
                let name = ImageName::parse(image);
                if globs.is_match(&name.registry) {
                    Ok(())
                } else {
                    Err(format!("registry {} is not listed", name.registry))
                }
            }
            Self::Repositories(globs) => {
                let image = facts.image.as_deref().ok_or("the request names no image")?;
                let name = ImageName::parse(image);
                if globs.is_match(&name.repository) {
                    Ok(())
                } else {
                    Err(format!("repository {} is not listed", name.repository))
                }
            }
            Self::Privileged(want) => flag(*want, facts.privileged, "privileged mode"),
            Self::CapAdd(listed) => {
                let added = added_caps(facts);
                // An unknown name counts as a hit: a deny-list must not be dodged by a typo.
                let hit =
                    !added.unknown.is_empty() || !added.set.intersection(union(listed)).is_empty();
                if hit {
                    Ok(())
                } else if added.set.is_empty() {
                    Err("the request adds no capability".into())
                } else {
                    Err(format!("it adds only {}", added.set))
                }
            }
            Self::CapAddOnly(listed) => {
                let added = added_caps(facts);
                if let Some(u) = added.unknown.first() {
                    return Err(format!("it adds an unknown capability {u:?}"));
                }
                let outside = added.set.difference(union(listed));
                if outside.is_empty() {
                    Ok(())
                } else {
                    Err(format!("it adds {outside}, which is not listed"))
                }
            }
            Self::BindPrefixes(prefixes) => {
                let prefixes: Vec<PathBuf> =
                    prefixes.iter().map(|p| resolve_host_path(p)).collect();
                for bind in &facts.binds {
                    if !bind.path.is_absolute() {
                        return Err(format!(
                            "bind source {} is not absolute",
                            bind.path.display()
                        ));
                    }
                    let real = resolve_host_path(&bind.path);
                    if !prefixes.iter().any(|p| real.starts_with(p)) {
                        return Err(format!(
                            "bind source {} (resolved {}) is outside the prefixes",
                            bind.path.display(),
                            real.display()
                        ));
                    }
                }
                Ok(())
            }
            Self::BindReadOnly(want) => {
                let writable = facts.binds.iter().find(|b: &&HostBind| !b.read_only);
                match (want, writable) {
                    (true, None) | (false, Some(_)) => Ok(()),
                    (true, Some(b)) => Err(format!("{} is bound writable", b.path.display())),
                    (false, None) => Err("no bind is writable".into()),
                }
            }
            Self::RootUser(want) => {
                let root = runs_as_root(facts.user.as_deref());
                if *want == root {
                    Ok(())
                } else if root {
                    Err(format!(
                        "it runs as root (user {})",
                        facts.user.as_deref().unwrap_or("<image default>")
                    ))
                } else {
                    Err(format!(
                        "it runs as {}, not root",
                        facts.user.as_deref().unwrap_or_default()
                    ))
                }
            }
            Self::RequireLimits(limits) => match limits.iter().find(|l| !l.is_set(facts)) {
                None => Ok(()),
                Some(l) => Err(format!("no {} limit is set", l.name())),
            },
            Self::MaxMemory(max) => match facts.memory.filter(|m| *m > 0) {
                None => Err("no memory limit is set".into()),
                Some(m) if m <= *max => Ok(()),
                Some(m) => Err(format!("memory limit {m} bytes is over {max}")),
            },
            Self::MaxCpus(max) => match facts.cpus.filter(|c| *c > 0.0) {
                None => Err("no CPU limit is set".into()),
                Some(c) if c <= *max => Ok(()),
                Some(c) => Err(format!("CPU limit {c} is over {max}")),
            },
            Self::MaxPids(max) => match facts.pids_limit.filter(|p| *p > 0) {
                None => Err("no pids limit is set".into()),
                Some(p) if p <= *max => Ok(()),
                Some(p) => Err(format!("pids limit {p} is over {max}")),
            },
            Self::HostNetwork(want) => flag(*want, facts.network_host, "the host network"),
            Self::HostPid(want) => flag(*want, facts.pid_host, "the host PID namespace"),
            Self::HostIpc(want) => flag(*want, facts.ipc_host, "the host IPC namespace"),
            Self::SeccompUnconfined(want) => {
                flag(*want, facts.seccomp_unconfined, "seccomp=unconfined")
            }
            Self::PrivilegedPorts(want) => {
                let low = facts.host_ports.iter().find(|p| (1..1024).contains(*p));
                match (want, low) {
                    (true, Some(_)) | (false, None) => Ok(()),
                    (true, None) => Err("it publishes no host port below 1024".into()),
                    (false, Some(p)) => Err(format!("it publishes host port {p}")),
                }
            }
        }
    }
}

impl fmt::Display for Condition {
    /// The condition as it would be written in the policy file, normalised (used to compare
    /// conditions when looking for unreachable rules).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let list = |items: Vec<String>| {
            let quoted: Vec<String> = items.iter().map(|s| format!("{s:?}")).collect();
            format!("[{}]", quoted.join(", "))
        };
        let value = match self {
            Self::Registries(g) | Self::Repositories(g) => list(g.patterns.clone()),
            Self::CapAdd(c) | Self::CapAddOnly(c) => {
                list(c.iter().map(|c| c.to_string()).collect())
            }
            Self::BindPrefixes(p) => list(p.iter().map(|p| p.display().to_string()).collect()),
            Self::RequireLimits(l) => list(l.iter().map(|l| l.name().to_owned()).collect()),
            Self::MaxMemory(m) => m.to_string(),
            Self::MaxCpus(c) => c.to_string(),
            Self::MaxPids(p) => p.to_string(),
            Self::Privileged(b)
            | Self::BindReadOnly(b)
            | Self::RootUser(b)
            | Self::HostNetwork(b)
            | Self::HostPid(b)
            | Self::HostIpc(b)
            | Self::SeccompUnconfined(b)
            | Self::PrivilegedPorts(b) => b.to_string(),
        };
        write!(f, "{} = {value}", self.key())
    }
}

impl PartialEq for Condition {
    fn eq(&self, other: &Self) -> bool {
        self.to_string() == other.to_string()
    }
}

struct Added {
    set: CapSet,
    /// Names that are not capabilities; the runtime will refuse them, but the policy must not
    /// let them slip through a list.
    unknown: Vec<String>,
}

fn added_caps(facts: &Facts) -> Added {
    let mut added = Added {
        set: CapSet::empty(),
        unknown: vec![],
    };
    for name in &facts.cap_add {
        match CapName::parse(name) {
            Ok(n) => added.set = added.set.union(n.set()),
            Err(_) => added.unknown.push(name.clone()),
        }
    }
    added
}

fn union(names: &[CapName]) -> CapSet {
    names.iter().fold(CapSet::empty(), |s, n| s.union(n.set()))
}

/// Whether a container process with this `--user` runs as uid 0. No user means the image's
/// default, which the policy cannot see and which is root for most images: it counts as root.
/// A user name other than `root` counts as not root (the image's passwd decides its uid).
pub fn runs_as_root(user: Option<&str>) -> bool {
    let Some(user) = user else { return true };
    let name = user.split(':').next().unwrap_or_default().trim();
    name.is_empty() || name == "root" || name.parse::<u32>() == Ok(0)
}

/// A host path as the mount will see it: `.` and `..` resolved lexically, then symlinks
/// resolved through the longest prefix that exists (a bind source that does not exist yet is
/// created under its real parent).
pub fn resolve_host_path(path: &Path) -> PathBuf {
    let lexical = normalize_lexically(path);
    let mut existing = lexical.as_path();
    let mut rest = Vec::new();
    loop {
        if let Ok(real) = std::fs::canonicalize(existing) {
            return rest.iter().rev().fold(real, |p, c| p.join(c));
        }
        match (existing.parent(), existing.file_name()) {
            (Some(parent), Some(name)) => {
                rest.push(name.to_owned());
                existing = parent;
            }
            _ => return lexical,
        }
    }
}

/// `/a/./b/../c` → `/a/c`; `..` never climbs above `/`.
pub fn normalize_lexically(path: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for c in path.components() {
        match c {
            Component::ParentDir => {
                out.pop();
            }
            Component::CurDir => {}
            other => out.push(other),
        }
    }
    out
}

/// A condition value as the TOML file has it, before validation.
#[derive(Debug, Deserialize)]
#[serde(untagged)]
pub(super) enum Number {
    Int(i64),
    Float(f64),
    Text(String),
}

/// Parse `2g`, `512m`, `1.5g`, `1024`, `64MiB` into bytes (binary units, as Docker does).
pub fn parse_size(s: &str) -> Result<u64, String> {
    let t = s.trim().to_ascii_lowercase();
    let digits_end = t
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(t.len());
    let (num, unit) = t.split_at(digits_end);
    let unit = unit.trim();
    let unit = unit.strip_suffix('b').unwrap_or(unit);
    let unit = unit.strip_suffix('i').unwrap_or(unit);
    let shift = match unit {
        "" => 0,
        "k" => 10,
        "m" => 20,
        "g" => 30,
        "t" => 40,
        "p" => 50,
        _ => return Err(format!("{s:?} is not a size (like 512m or 2g)")),
    };
    let n: f64 = num
        .parse()
        .map_err(|_| format!("{s:?} is not a size (like 512m or 2g)"))?;
    let bytes = n * (1u64 << shift) as f64;
    if !(bytes >= 1.0 && bytes < u64::MAX as f64) {
        return Err(format!("{s:?} is not a positive size"));
    }
    Ok(bytes as u64)
}

impl Number {
    pub(super) fn size(&self) -> Result<u64, String> {
        match self {
            Self::Int(i) if *i > 0 => Ok(*i as u64),
            Self::Text(s) => parse_size(s),
            _ => Err("expected a positive size like \"2g\" or a number of bytes".into()),
        }
    }

    pub(super) fn cpus(&self) -> Result<f64, String> {
        let v = match self {
            Self::Int(i) => *i as f64,
            Self::Float(f) => *f,
            Self::Text(s) => s
                .trim()
                .parse()
                .map_err(|_| format!("{s:?} is not a number of CPUs"))?,
        };
        if v > 0.0 && v.is_finite() {
            Ok(v)
        } else {
            Err("expected a positive number of CPUs".into())
        }
    }

    pub(super) fn pids(&self) -> Result<i64, String> {
        match self {
            Self::Int(i) if *i > 0 => Ok(*i),
            _ => Err("expected a positive number of processes".into()),
        }
    }
}

pub(super) fn registries(patterns: Vec<String>) -> Result<Condition, String> {
    let patterns = patterns
        .into_iter()
        .map(|p| p.to_ascii_lowercase())
        .collect();
    Globs::new("registries", patterns).map(Condition::Registries)
}

/// Repository patterns are matched against normalised names (`docker.io/library/busybox`). A
/// pattern without glob characters is normalised the same way (`busybox` means
/// `docker.io/library/busybox`); a glob must name its registry, since `bitnami/*` would never
/// match the normalised `docker.io/bitnami/redis`.
pub(super) fn repositories(patterns: Vec<String>) -> Result<Condition, String> {
    let is_glob = |s: &str| s.contains(['*', '?', '[', '{']);
    let mut out = Vec::with_capacity(patterns.len());
    for p in patterns {
        if !is_glob(&p) {
            out.push(ImageName::parse(&p).repository);
            continue;
        }
        let first = p.split('/').next().unwrap_or_default();
        let names_registry = p.contains('/')
            && (first.contains('.')
                || first.contains(':')
                || first == "localhost"
                || is_glob(first));
        if !names_registry && p != "*" {
            return Err(format!(
                "repositories: pattern {p:?} must start with its registry (e.g. \"docker.io/{p}\")"
            ));
        }
        out.push(p);
    }
    Globs::new("repositories", out).map(Condition::Repositories)
}

pub(super) fn cap_list(key: &str, names: Vec<String>) -> Result<Vec<CapName>, String> {
    if names.is_empty() {
        return Err(format!("{key}: empty list"));
    }
    names
        .iter()
        .map(|n| CapName::parse(n).map_err(|e| format!("{key}: {e}")))
        .collect()
}

pub(super) fn bind_prefixes(prefixes: Vec<String>) -> Result<Condition, String> {
    if prefixes.is_empty() {
        return Err("bind_prefixes: empty list (use a deny rule instead)".into());
    }
    let mut out = Vec::with_capacity(prefixes.len());
    for p in prefixes {
        let path = Path::new(&p);
        if !path.is_absolute() {
            return Err(format!("bind_prefixes: {p:?} is not an absolute path"));
        }
        if path.components().any(|c| c == Component::ParentDir) {
            return Err(format!("bind_prefixes: {p:?} contains `..`"));
        }
        out.push(normalize_lexically(path));
    }
    Ok(Condition::BindPrefixes(out))
}

pub(super) fn require_limits(names: Vec<String>) -> Result<Condition, String> {
    if names.is_empty() {
        return Err("require_limits: empty list".into());
    }
    names
        .iter()
        .map(|n| Limit::parse(n))
        .collect::<Result<_, _>>()
        .map(Condition::RequireLimits)
}
