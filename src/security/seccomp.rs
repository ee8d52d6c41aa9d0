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
//! programs itself with `seccomp(2)` while it still holds `CAP_SYS_ADMIN`.

mod docker;
mod syscalls;

use super::caps::{Cap, CapSet};
use seccompiler::{
    BpfProgram, SeccompAction, SeccompCmpArgLen, SeccompCmpOp, SeccompCondition, SeccompFilter,
    SeccompRule, TargetArch, sock_filter,
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
    Apply(String),
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

    /// The strict checks the shipped profile must pass (the reviewed-data test): every name
    /// is a syscall of x86_64 or aarch64 (of each architecture the group is limited to),
    /// capabilities and architectures are known, argument conditions are well-formed, every
    /// group has a reason, nothing is listed twice, and no group entry is redundant (another
    /// group with the same action already matches whenever it would).
    pub fn validate(&self) -> Result<(), SeccompError> {
        let mut problems = Vec::new();
        for (i, g) in self.syscalls.iter().enumerate() {
            let at = format!("group {i} ({})", g.names.first().map_or("", |n| n.as_str()));
            if g.names.is_empty() {
                problems.push(format!("{at}: no syscall names"));
            }
            if g.reason.trim().is_empty() {
                problems.push(format!("{at}: no reason"));
            }
            if g.action == self.default_action {
                problems.push(format!(
                    "{at}: action {:?} is the default action, so the group changes nothing",
                    g.action
                ));
            }
            for a in [&g.includes, &g.excludes] {
                for c in &a.caps {
                    if Cap::parse(c).is_err() {
                        problems.push(format!("{at}: unknown capability {c:?}"));
                    }
                }
                for arch in &a.arches {
                    if Arch::from_name(arch).is_none() {
                        problems.push(format!("{at}: unknown architecture {arch:?}"));
                    }
                }
                if let Some(m) = &a.min_kernel
                    && KernelVersion::parse(m).is_none()
                {
                    problems.push(format!("{at}: bad minKernel {m:?}"));
                }
            }
            if g.excludes.min_kernel.is_some() {
                problems.push(format!("{at}: minKernel only makes sense in includes"));
            }
            for c in &g.args {
                if let Err(e) = c.seccompiler() {
                    problems.push(format!("{at}: argument condition {c:?}: {e}"));
                }
            }
            let arches: Vec<Arch> = if g.includes.arches.is_empty() {
                Arch::ALL.to_vec()
            } else {
                g.includes
                    .arches
                    .iter()
                    .filter_map(|a| Arch::from_name(a))
                    .collect()
            };
            let mut seen = std::collections::HashSet::new();
            for n in &g.names {
                if !seen.insert(n) {
                    problems.push(format!("{at}: {n} is listed twice"));
                }
                let known: Vec<Arch> = arches
                    .iter()
                    .copied()
                    .filter(|a| a.syscall(n).is_some())
                    .collect();
                if known.is_empty() {
                    problems.push(format!(
                        "{at}: unknown syscall {n:?} (not a syscall of {})",
                        arches
                            .iter()
                            .map(|a| a.name())
                            .collect::<Vec<_>>()
                            .join(" or ")
                    ));
                }
            }
        }
        // Redundant and duplicate entries across groups.
        for (j, later) in self.syscalls.iter().enumerate() {
            for (i, earlier) in self.syscalls.iter().enumerate() {
                if i == j || earlier.action != later.action || !covers(earlier, later) {
                    continue;
                }
                // Two identical groups cover each other: report the pair once.
                if covers(later, earlier) && i > j {
                    continue;
                }
                for n in later.names.iter().filter(|n| earlier.names.contains(n)) {
                    problems.push(format!(
                        "group {j}: {n} is redundant: group {i} already {:?}s it whenever group \
                         {j} would",
                        earlier.action
                    ));
                }
            }
        }
        if problems.is_empty() {
            Ok(())
        } else {
            Err(SeccompError::Invalid(problems))
        }
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

/// Whether group `a` matches every syscall invocation `b` matches (ignoring names): its
/// argument conditions are a subset of `b`'s and it applies to every container `b` applies to.
fn covers(a: &SyscallGroup, b: &SyscallGroup) -> bool {
    let subset = |x: &[String], y: &[String]| x.iter().all(|v| y.contains(v));
    let arches_cover = a.includes.arches.is_empty()
        || (!b.includes.arches.is_empty() && subset(&b.includes.arches, &a.includes.arches));
    let kernel_covers = match (&a.includes.min_kernel, &b.includes.min_kernel) {
        (None, _) => true,
        (Some(_), None) => false,
        (Some(x), Some(y)) => KernelVersion::parse(x) <= KernelVersion::parse(y),
    };
    a.args.iter().all(|c| b.args.contains(c))
        && subset(&a.includes.caps, &b.includes.caps)
        && subset(&a.excludes.caps, &b.excludes.caps)
        && subset(&a.excludes.arches, &b.excludes.arches)
        && arches_cover
        && kernel_covers
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

/// Compiled BPF programs, to be installed in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CompiledFilter {
    programs: Vec<BpfProgram>,
}

impl CompiledFilter {
    const MAGIC: &'static [u8; 8] = b"BERTHSC1";

    pub fn programs(&self) -> &[BpfProgram] {
        &self.programs
    }

    /// Total BPF instructions (the kernel allows 4096 per program and charges memory per
    /// instruction).
    pub fn instruction_count(&self) -> usize {
        self.programs.iter().map(Vec::len).sum()
    }

    /// The programs as `libc::sock_filter`s (same layout), for a caller that installs them
    /// with its own `seccomp(2)` wrapper.
    pub fn libc_programs(&self) -> Vec<Vec<libc::sock_filter>> {
        self.programs
            .iter()
            .map(|p| {
                p.iter()
                    .map(|i| libc::sock_filter {
                        code: i.code,
                        jt: i.jt,
                        jf: i.jf,
                        k: i.k,
                    })
                    .collect()
            })
            .collect()
    }

    /// Whether there is nothing to install (a profile whose default is allow and that
    /// restricts nothing).
    pub fn is_empty(&self) -> bool {
        self.programs.is_empty()
    }

    /// A stable byte form (little-endian `struct sock_filter`s behind a small header), for a
    /// cache keyed by [`cache_key`].
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(16 + self.instruction_count() * 8);
        out.extend_from_slice(Self::MAGIC);
        out.extend_from_slice(&(self.programs.len() as u32).to_le_bytes());
        for p in &self.programs {
            out.extend_from_slice(&(p.len() as u32).to_le_bytes());
            for i in p {
                out.extend_from_slice(&i.code.to_le_bytes());
                out.push(i.jt);
                out.push(i.jf);
                out.extend_from_slice(&i.k.to_le_bytes());
            }
        }
        out
    }

    pub fn from_bytes(bytes: &[u8]) -> Result<Self, SeccompError> {
        let rest = bytes
            .strip_prefix(Self::MAGIC.as_slice())
            .ok_or(SeccompError::Corrupt("bad magic"))?;
        let mut r = Reader(rest);
        let count = r.u32()? as usize;
        if count > 64 {
            return Err(SeccompError::Corrupt("too many programs"));
        }
        let mut programs = Vec::with_capacity(count);
        for _ in 0..count {
            let len = r.u32()? as usize;
            if len == 0 || len > BPF_MAX_LEN {
                return Err(SeccompError::Corrupt("bad program length"));
            }
            let mut p = Vec::with_capacity(len);
            for _ in 0..len {
                let code = r.u16()?;
                let jt = r.u8()?;
                let jf = r.u8()?;
                let k = r.u32()?;
                p.push(sock_filter { code, jt, jf, k });
            }
            programs.push(p);
        }
        if !r.0.is_empty() {
            return Err(SeccompError::Corrupt("trailing bytes"));
        }
        Ok(Self { programs })
    }

    /// Install the programs on the calling thread, in order (its children inherit them).
    /// Sets `PR_SET_NO_NEW_PRIVS`. Does not allocate, so it may run between fork and exec.
    pub fn apply(&self) -> Result<(), SeccompError> {
        for p in &self.programs {
            seccompiler::apply_filter(p).map_err(|e| SeccompError::Apply(e.to_string()))?;
        }
        Ok(())
    }
}

struct Reader<'a>(&'a [u8]);

impl Reader<'_> {
    fn take<const N: usize>(&mut self) -> Result<[u8; N], SeccompError> {
        let (head, rest) = self
            .0
            .split_first_chunk::<N>()
            .ok_or(SeccompError::Corrupt("truncated"))?;
        self.0 = rest;
        Ok(*head)
    }
    fn u8(&mut self) -> Result<u8, SeccompError> {
        Ok(self.take::<1>()?[0])
    }
    fn u16(&mut self) -> Result<u16, SeccompError> {
        Ok(u16::from_le_bytes(self.take()?))
    }
    fn u32(&mut self) -> Result<u32, SeccompError> {
        Ok(u32::from_le_bytes(self.take()?))
    }
}

/// A key under which a compiled filter can be cached: it changes whenever the profile, the
/// architecture, the capability set, the kernel version (for `minKernel`) or this module's
/// compiler changes.
pub fn cache_key(profile: &Profile, arch: Arch, caps: CapSet, kernel: KernelVersion) -> String {
    use sha2::{Digest, Sha256};
    let mut h = Sha256::new();
    h.update(b"berth seccomp v1\0");
    h.update(env!("CARGO_PKG_VERSION").as_bytes());
    h.update(serde_json::to_vec(profile).unwrap_or_default());
    h.update(arch.name().as_bytes());
    h.update(caps.bits().to_le_bytes());
    h.update(kernel.0.to_le_bytes());
    h.update(kernel.1.to_le_bytes());
    hex::encode(h.finalize())
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
