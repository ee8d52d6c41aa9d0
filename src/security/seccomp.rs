//! Seccomp profiles: the default (Docker's, as reviewed data in `assets/seccomp/default.json`),
//! custom Docker-format profiles (`--security-opt seccomp=FILE`), and `unconfined`; compiled to
//! BPF with seccompiler for a container's capability set.
//!
//! ## Compiling
//!
//! A profile is a default action plus groups of syscalls, each group with an action, argument
//! conditions and `includes`/`excludes` on the container's capabilities, the architecture and
//! the kernel version (see the comment at the top of the JSON file). [`Profile::compile`] keeps
//! the groups that apply to the container and turns them into one or more BPF programs:
//!
//! - seccompiler filters have **one match action and one mismatch action**. The first program
//!   returns the profile's default action for every syscall no applicable group matches, and
//!   `ALLOW` for all others. Each other action (Docker's `clone3 → ENOSYS`) gets its own program
//!   that returns that action for its syscalls and `ALLOW` otherwise. The kernel runs every
//!   installed program and takes the most restrictive answer, so a syscall matched by an
//!   `errno` group gets that errno whatever the install order. Install them in order anyway
//!   ([`CompiledFilter::apply`] does).
//! - Every program starts with seccompiler's architecture check, which **kills the process**
//!   for a syscall of another architecture (i386 `int 0x80`, for instance). Docker allows the
//!   32-bit sub-architectures; berth does not, on purpose. x32 syscalls (bit 30 set) match no
//!   rule and get the default errno.
//! - Names that do not exist on the target architecture are skipped (Docker's profiles list
//!   32-bit names; `iopl` does not exist on aarch64).
//!
//! Compiling the default profile takes well under a millisecond in release builds (see the
//! test `compile_time_is_small`); [`default_program`] caches the result per capability set, and
//! [`CompiledFilter::to_bytes`]/[`from_bytes`](CompiledFilter::from_bytes) with [`cache_key`]
//! let a caller keep compiled programs on disk.
//!
//! seccompiler's `apply_filter` sets `PR_SET_NO_NEW_PRIVS` before installing, so with a filter,
//! setuid binaries in the container cannot gain privileges (as with Docker's
//! `no-new-privileges`). A runtime that wants Docker's default (setuid works) must install the
//! programs itself with `seccomp(2)` while it still holds `CAP_SYS_ADMIN`: berth's runtime does
//! (`runtime::seccomp::install` with [`CompiledFilter::libc_programs`]), and sets
//! `no_new_privs` only for `--security-opt no-new-privileges`.

mod compiled;
mod docker;
mod syscalls;
mod validate;

pub use compiled::{CompiledFilter, cache_key};

use super::caps::{Cap, CapSet};
use seccompiler::{
    BpfProgram, SeccompAction, SeccompCmpArgLen, SeccompCmpOp, SeccompCondition, SeccompFilter,
    SeccompRule, TargetArch,
};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, OnceLock};

/// The default profile's JSON.
pub const DEFAULT_PROFILE_JSON: &str = include_str!("../../assets/seccomp/default.json");

/// The kernel's limit on the length of one BPF program.
pub const BPF_MAX_LEN: usize = 4096;

/// Errors of this module.
#[derive(Debug, thiserror::Error)]
pub enum SeccompError {
    #[error("seccomp profile {origin}: {source}")]
    Json {
        origin: String,
        source: serde_json::Error,
    },
    #[error("cannot read seccomp profile {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("seccomp profile {origin}: {message}")]
    Unsupported { origin: String, message: String },
    #[error("seccomp profile is invalid:\n  {}", .0.join("\n  "))]
    Invalid(Vec<String>),
    #[error("compiling the seccomp filter for {arch}: {message}")]
    Compile { arch: Arch, message: String },
    #[error("compiled seccomp filter data is corrupt: {0}")]
    Corrupt(&'static str),
    #[error("installing the seccomp filter: {0}")]
    Apply(std::io::Error),
    #[error("unsupported architecture {0} (berth's seccomp tables cover x86_64 and aarch64)")]
    UnsupportedArch(String),
    #[error("bad --security-opt {0:?}")]
    SecurityOpt(String),
}

/// An architecture berth has syscall tables for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Arch {
    X86_64,
    Aarch64,
}

impl Arch {
    pub const ALL: [Arch; 2] = [Arch::X86_64, Arch::Aarch64];

    /// The architecture this binary runs on.
    pub fn native() -> Result<Self, SeccompError> {
        Self::from_name(std::env::consts::ARCH)
            .ok_or_else(|| SeccompError::UnsupportedArch(std::env::consts::ARCH.into()))
    }

    /// `x86_64`/`amd64`, `aarch64`/`arm64`.
    pub fn from_name(name: &str) -> Option<Self> {
        match name {
            "x86_64" | "amd64" => Some(Self::X86_64),
            "aarch64" | "arm64" => Some(Self::Aarch64),
            _ => None,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Self::X86_64 => "x86_64",
            Self::Aarch64 => "aarch64",
        }
    }

    fn table(self) -> &'static [(&'static str, i64)] {
        match self {
            Self::X86_64 => syscalls::X86_64,
            Self::Aarch64 => syscalls::AARCH64,
        }
    }

    /// The number of syscall `name` on this architecture.
    pub fn syscall(self, name: &str) -> Option<i64> {
        self.table()
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, nr)| *nr)
    }

    fn target(self) -> TargetArch {
        match self {
            Self::X86_64 => TargetArch::x86_64,
            Self::Aarch64 => TargetArch::aarch64,
        }
    }
}

impl fmt::Display for Arch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A kernel version, for `includes.minKernel`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct KernelVersion(pub u32, pub u32);

impl KernelVersion {
    /// `6.18.44-fc` → 6.18.
    pub fn parse(s: &str) -> Option<Self> {
        let mut parts = s.split(|c: char| !c.is_ascii_digit());
        let major = parts.next()?.parse().ok()?;
        let minor = parts.next().and_then(|m| m.parse().ok()).unwrap_or(0);
        Some(Self(major, minor))
    }

    /// The running kernel's (0.0 if uname fails, so no `minKernel` group applies).
    pub fn running() -> Self {
        static RUNNING: OnceLock<KernelVersion> = OnceLock::new();
        *RUNNING.get_or_init(|| {
            nix::sys::utsname::uname()
                .ok()
                .and_then(|u| Self::parse(&u.release().to_string_lossy()))
                .unwrap_or(Self(0, 0))
        })
    }
}

impl fmt::Display for KernelVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}", self.0, self.1)
    }
}

/// What the kernel does with a matched syscall.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Action {
    Allow,
    Errno(u32),
    KillThread,
    KillProcess,
    Trap,
    Log,
    Trace(u32),
}

impl Action {
    fn seccompiler(self) -> SeccompAction {
        match self {
            Self::Allow => SeccompAction::Allow,
            Self::Errno(e) => SeccompAction::Errno(e),
            Self::KillThread => SeccompAction::KillThread,
            Self::KillProcess => SeccompAction::KillProcess,
            Self::Trap => SeccompAction::Trap,
            Self::Log => SeccompAction::Log,
            Self::Trace(t) => SeccompAction::Trace(t),
        }
    }
}

/// How much of a syscall argument a condition compares.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ArgWidth {
    /// The low 32 bits: for `int` arguments, whose upper half is whatever the caller left in
    /// the register.
    Dword,
    /// All 64 bits.
    Qword,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ArgOp {
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
    /// `(arg & mask) == value`.
    MaskedEq,
}

/// A condition on one syscall argument.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ArgCondition {
    /// 0–5.
    pub index: u8,
    #[serde(rename = "type")]
    pub width: ArgWidth,
    pub op: ArgOp,
    pub value: u64,
    /// Only with `masked_eq`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mask: Option<u64>,
}

impl ArgCondition {
    fn seccompiler(&self) -> Result<SeccompCondition, String> {
        let op = match (self.op, self.mask) {
            (ArgOp::MaskedEq, Some(m)) => SeccompCmpOp::MaskedEq(m),
            (ArgOp::MaskedEq, None) => return Err("masked_eq without a mask".into()),
            (_, Some(_)) => return Err(format!("{:?} with a mask", self.op)),
            (ArgOp::Eq, None) => SeccompCmpOp::Eq,
            (ArgOp::Ne, None) => SeccompCmpOp::Ne,
            (ArgOp::Lt, None) => SeccompCmpOp::Lt,
            (ArgOp::Le, None) => SeccompCmpOp::Le,
            (ArgOp::Gt, None) => SeccompCmpOp::Gt,
            (ArgOp::Ge, None) => SeccompCmpOp::Ge,
        };
        let width = match self.width {
            ArgWidth::Dword => SeccompCmpArgLen::Dword,
            ArgWidth::Qword => SeccompCmpArgLen::Qword,
        };
        if self.width == ArgWidth::Dword
            && (self.value > u64::from(u32::MAX) || self.mask.is_some_and(|m| m > u32::MAX.into()))
        {
            return Err(format!(
                "a dword condition cannot compare {:#x}",
                self.value
            ));
        }
        SeccompCondition::new(self.index, width, op, self.value).map_err(|e| e.to_string())
    }
}

/// `includes`/`excludes` of a group.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Applicability {
    /// Capability names (`CAP_SYS_ADMIN`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub caps: Vec<String>,
    /// Architecture names (`x86_64`, `aarch64`; Docker's `amd64`, `arm64` are accepted).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub arches: Vec<String>,
    /// `"4.8"` (includes only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min_kernel: Option<String>,
}

impl Applicability {
    fn is_empty(&self) -> bool {
        self.caps.is_empty() && self.arches.is_empty() && self.min_kernel.is_none()
    }

    fn cap_set(&self) -> CapSet {
        self.caps
            .iter()
            .filter_map(|c| Cap::parse(c).ok())
            .collect()
    }

    fn has_arch(&self, arch: Arch) -> bool {
        self.arches.iter().any(|a| Arch::from_name(a) == Some(arch))
    }
}

/// A group of syscalls sharing an action and conditions, with the reason it is in the profile.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SyscallGroup {
    pub names: Vec<String>,
    pub action: Action,
    /// ANDed; list a syscall in several groups to OR conditions.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub args: Vec<ArgCondition>,
    #[serde(default, skip_serializing_if = "Applicability::is_empty")]
    pub includes: Applicability,
    #[serde(default, skip_serializing_if = "Applicability::is_empty")]
    pub excludes: Applicability,
    pub reason: String,
}

impl SyscallGroup {
    /// Whether the group applies to a container with `caps` on `arch` and `kernel`. A group
    /// that includes several capabilities needs all of them (Docker's rule); it is excluded
    /// by any one of its excluded capabilities.
    pub fn applies(&self, arch: Arch, caps: CapSet, kernel: KernelVersion) -> bool {
        let inc = &self.includes;
        let exc = &self.excludes;
        let caps_known = |a: &Applicability| a.caps.iter().all(|c| Cap::parse(c).is_ok());
        // An unknown capability in includes can never be held.
        caps_known(inc)
            && inc.cap_set().is_subset(caps)
            && (inc.arches.is_empty() || inc.has_arch(arch))
            && inc
                .min_kernel
                .as_deref()
                .is_none_or(|m| KernelVersion::parse(m).is_some_and(|m| kernel >= m))
            && exc.cap_set().intersection(caps).is_empty()
            && !exc.has_arch(arch)
    }
}

/// A seccomp profile.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Profile {
    /// Free text for reviewers.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub comment: Vec<String>,
    pub default_action: Action,
    pub syscalls: Vec<SyscallGroup>,
}

impl Profile {
    /// Parse berth's profile format.
    pub fn parse(json: &str, origin: &str) -> Result<Self, SeccompError> {
        serde_json::from_str(json).map_err(|source| SeccompError::Json {
            origin: origin.to_owned(),
            source,
        })
    }

    /// The shipped default profile (parsed once).
    pub fn default_profile() -> &'static Profile {
        static DEFAULT: OnceLock<Profile> = OnceLock::new();
        DEFAULT.get_or_init(|| {
            Profile::parse(DEFAULT_PROFILE_JSON, "assets/seccomp/default.json")
                .expect("the shipped seccomp profile parses (checked by a test)")
        })
    }

    /// Convert a Docker/OCI-format profile (`--security-opt seccomp=FILE`): `defaultAction`,
    /// `defaultErrnoRet`, `syscalls[]` with `names`, `action`, `errnoRet`, `args`
    /// (`index`, `value`, `valueTwo`, `op`), `includes`/`excludes` (`caps`, `arches`,
    /// `minKernel`). `archMap`/`architectures` are ignored (berth filters the native
    /// architecture only). Arguments are compared as 64-bit values, as libseccomp does.
    pub fn from_docker_json(json: &str, origin: &str) -> Result<Self, SeccompError> {
        docker::convert(json, origin)
    }

    /// The profile in Docker's JSON format (the OCI `linux.seccomp` object plus Docker's
    /// `includes`/`excludes`), each group's reason as its `comment`, for a runtime spec.
    /// Docker's format has no argument width: `dword` conditions become 64-bit comparisons
    /// there, which is weaker for `int` arguments (see the socket groups' reason), so prefer
    /// handing the runtime [`Profile::compile`]'s programs.
    pub fn to_docker_json(&self) -> serde_json::Value {
        docker::export(self)
    }

    /// Read a custom profile file: berth's format if it parses as one, else Docker's.
    pub fn load(path: &Path) -> Result<Self, SeccompError> {
        let text = std::fs::read_to_string(path).map_err(|source| SeccompError::Read {
            path: path.to_owned(),
            source,
        })?;
        let origin = path.display().to_string();
        Self::parse(&text, &origin).or_else(|_| Self::from_docker_json(&text, &origin))
    }

    /// Compile the groups that apply to a container with `caps` into BPF programs for `arch`.
    pub fn compile(
        &self,
        arch: Arch,
        caps: CapSet,
        kernel: KernelVersion,
    ) -> Result<CompiledFilter, SeccompError> {
        let err = |message: String| SeccompError::Compile { arch, message };
        let mut by_action: BTreeMap<Action, BTreeMap<i64, Match>> = BTreeMap::new();
        for g in self
            .syscalls
            .iter()
            .filter(|g| g.applies(arch, caps, kernel))
        {
            let conds = g
                .args
                .iter()
                .map(ArgCondition::seccompiler)
                .collect::<Result<Vec<_>, _>>()
                .map_err(|e| err(format!("group {:?}: {e}", g.names)))?;
            let rules = by_action.entry(g.action).or_default();
            for nr in g.names.iter().filter_map(|n| arch.syscall(n)) {
                rules.entry(nr).or_default().add(&conds);
            }
        }
        let mut programs = Vec::new();
        let default = self.default_action;
        if default != Action::Allow {
            // Everything some group matches (other than groups that repeat the default) must
            // not get the default from this program.
            let mut matched: BTreeMap<i64, Match> = BTreeMap::new();
            for (action, rules) in &by_action {
                if *action == default {
                    continue;
                }
                for (nr, m) in rules {
                    matched.entry(*nr).or_default().merge(m);
                }
            }
            programs.push(build(arch, matched, default, Action::Allow).map_err(err)?);
        }
        for (action, rules) in by_action {
            if action == default || action == Action::Allow {
                continue;
            }
            programs.push(build(arch, rules, Action::Allow, action).map_err(err)?);
        }
        Ok(CompiledFilter { programs })
    }
}

/// The rules for one syscall: unconditional, or any of several AND-ed condition lists.
#[derive(Debug, Clone, Default)]
struct Match {
    always: bool,
    any_of: Vec<Vec<SeccompCondition>>,
}

impl Match {
    fn add(&mut self, conds: &[SeccompCondition]) {
        if conds.is_empty() {
            self.always = true;
        } else if !self.any_of.iter().any(|c| c == conds) {
            self.any_of.push(conds.to_vec());
        }
    }

    fn merge(&mut self, other: &Match) {
        if other.always {
            self.always = true;
        }
        for c in &other.any_of {
            self.add(c);
        }
    }

    fn rules(self) -> Result<Vec<SeccompRule>, String> {
        if self.always {
            return Ok(Vec::new());
        }
        self.any_of
            .into_iter()
            .map(|c| SeccompRule::new(c).map_err(|e| e.to_string()))
            .collect()
    }
}

fn build(
    arch: Arch,
    rules: BTreeMap<i64, Match>,
    mismatch: Action,
    matched: Action,
) -> Result<BpfProgram, String> {
    let rules = rules
        .into_iter()
        .map(|(nr, m)| Ok((nr, m.rules()?)))
        .collect::<Result<BTreeMap<_, _>, String>>()?;
    let filter = SeccompFilter::new(
        rules,
        mismatch.seccompiler(),
        matched.seccompiler(),
        arch.target(),
    )
    .map_err(|e| e.to_string())?;
    let program: BpfProgram = filter
        .try_into()
        .map_err(|e: seccompiler::BackendError| e.to_string())?;
    if program.len() > BPF_MAX_LEN {
        return Err(format!(
            "{} instructions, over the kernel's limit of {BPF_MAX_LEN}",
            program.len()
        ));
    }
    Ok(program)
}

/// The default profile compiled for a container with `caps`, on this machine's architecture
/// and kernel. Compiled once per capability set and shared.
pub fn default_program(caps: CapSet) -> Result<Arc<CompiledFilter>, SeccompError> {
    static CACHE: OnceLock<Mutex<HashMap<u64, Arc<CompiledFilter>>>> = OnceLock::new();
    let cache = CACHE.get_or_init(Default::default);
    if let Some(c) = cache
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .get(&caps.bits())
    {
        return Ok(c.clone());
    }
    let compiled = Arc::new(Profile::default_profile().compile(
        Arch::native()?,
        caps,
        KernelVersion::running(),
    )?);
    cache
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .insert(caps.bits(), compiled.clone());
    Ok(compiled)
}

/// FNV-1a over the default profile and the compiler's sources, computed at build time: a
/// change to either gives [`default_cache_key`] a new value.
const DEFAULT_BUILD_HASH: u64 = {
    const PARTS: [&str; 4] = [
        DEFAULT_PROFILE_JSON,
        include_str!("seccomp.rs"),
        include_str!("seccomp/compiled.rs"),
        include_str!("seccomp/syscalls.rs"),
    ];
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    let mut p = 0;
    while p < PARTS.len() {
        let b = PARTS[p].as_bytes();
        let mut i = 0;
        while i < b.len() {
            h = (h ^ b[i] as u64).wrapping_mul(0x0000_0100_0000_01b3);
            i += 1;
        }
        p += 1;
    }
    h
};

/// A cache key for [`default_program`]`(caps)` on this machine that costs nothing to compute
/// (no parsing, no hashing at run time, unlike [`cache_key`]): it changes with the default
/// profile, the compiler's source, berth's version, the architecture, the capability set and
/// the kernel version. Safe as a file name.
pub fn default_cache_key(caps: CapSet) -> Result<String, SeccompError> {
    let kernel = KernelVersion::running();
    Ok(format!(
        "default-{}-{DEFAULT_BUILD_HASH:016x}-{}-{:016x}-{}.{}",
        env!("CARGO_PKG_VERSION"),
        Arch::native()?,
        caps.bits(),
        kernel.0,
        kernel.1
    ))
}

/// Which seccomp filter a container gets.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SeccompConfig {
    /// The shipped default profile.
    Default,
    /// No filter (`seccomp=unconfined`, and every privileged container).
    Unconfined,
    /// A custom profile (`seccomp=FILE`).
    Custom(Arc<Profile>),
}

impl SeccompConfig {
    /// From a container's `--security-opt` values and `--privileged`, as Docker does: a
    /// privileged container is unconfined; `seccomp=unconfined` (or `seccomp:unconfined`)
    /// disables the filter; `seccomp=FILE` loads a profile (berth's or Docker's format);
    /// otherwise the default. Other options are ignored here.
    pub fn from_security_opts<S: AsRef<str>>(
        opts: &[S],
        privileged: bool,
    ) -> Result<Self, SeccompError> {
        let mut config = Self::Default;
        for o in opts {
            let o = o.as_ref();
            let Some(value) = o
                .strip_prefix("seccomp=")
                .or_else(|| o.strip_prefix("seccomp:"))
            else {
                continue;
            };
            config = match value {
                "" => return Err(SeccompError::SecurityOpt(o.to_owned())),
                "unconfined" => Self::Unconfined,
                "builtin" | "default" => Self::Default,
                path => Self::Custom(Arc::new(Profile::load(Path::new(path))?)),
            };
        }
        Ok(if privileged { Self::Unconfined } else { config })
    }

    /// The programs to install for a container with `caps`; `None` = no filter.
    pub fn program(&self, caps: CapSet) -> Result<Option<Arc<CompiledFilter>>, SeccompError> {
        match self {
            Self::Default => default_program(caps).map(Some),
            Self::Unconfined => Ok(None),
            Self::Custom(p) => p
                .compile(Arch::native()?, caps, KernelVersion::running())
                .map(|c| Some(Arc::new(c))),
        }
    }
}

#[cfg(test)]
mod tests;
