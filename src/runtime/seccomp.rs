//! Seccomp: profiles as data, compiled to classic BPF with seccompiler, installed by `sys`.
//!
//! A [`SeccompProfile`] has Docker's JSON shape (a superset of the OCI `linux.seccomp` object:
//! it adds `includes`/`excludes` by capability, architecture and kernel version). The built-in
//! default ([`default_profile`]) is equivalent to Docker's; the security module will later own
//! the profile as data and pass it in, so nothing here is specific to the default.
//!
//! Compilation: seccompiler filters have one match action each, so a profile becomes a stack of
//! filters. The first returns ALLOW for every syscall with any matching rule and the default
//! action otherwise; one more filter per other action (e.g. clone3 → ENOSYS) returns that action
//! on a match and ALLOW otherwise. The kernel applies the highest-precedence result, which gives
//! the profile's semantics. Names unknown on this architecture (32-bit variants…) are skipped,
//! as libseccomp does. Unlike Docker, foreign-architecture syscalls (i386, x32) are killed by
//! seccompiler's architecture check: a deliberate, safer divergence.

use std::collections::{BTreeMap, HashMap};

use seccompiler::{
    SeccompAction, SeccompCmpArgLen, SeccompCmpOp, SeccompCondition, SeccompFilter, SeccompRule,
    TargetArch,
};
use serde::{Deserialize, Serialize};

use super::error::{Result, RuntimeError};

#[cfg(target_arch = "x86_64")]
#[path = "seccomp_x86_64.rs"]
mod table;

/// Docker's default profile, as berth ships it.
pub const DEFAULT_PROFILE_JSON: &str = include_str!("seccomp_default.json");

#[derive(Debug, Clone, Serialize, Deserialize, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct SeccompProfile {
    pub default_action: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub default_errno_ret: Option<u32>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub architectures: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub flags: Vec<String>,
    #[serde(default)]
    pub syscalls: Vec<SyscallRule>,
}

#[derive(Debug, Clone, Serialize, Deserialize, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct SyscallRule {
    #[serde(default)]
    pub names: Vec<String>,
    /// Old Docker profiles use a single `name`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    pub action: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub errno_ret: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub args: Option<Vec<SyscallArg>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub includes: Option<RuleFilter>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub excludes: Option<RuleFilter>,
}

#[derive(Debug, Clone, Serialize, Deserialize, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct RuleFilter {
    #[serde(default)]
    pub caps: Vec<String>,
    #[serde(default)]
    pub arches: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min_kernel: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct SyscallArg {
    pub index: u8,
    pub value: u64,
    #[serde(default)]
    pub value_two: u64,
    pub op: String,
}

/// The built-in Docker-equivalent default profile.
pub fn default_profile() -> SeccompProfile {
    serde_json::from_str(DEFAULT_PROFILE_JSON).expect("built-in seccomp profile is valid JSON")
}

/// Parse a Docker- or OCI-format profile.
pub fn parse_profile(json: &str) -> Result<SeccompProfile> {
    serde_json::from_str(json).map_err(|e| RuntimeError::Seccomp {
        reason: format!("parse: {e}"),
    })
}

/// Where the profile's conditional rules are evaluated.
#[derive(Debug, Clone)]
pub struct Context {
    /// Capabilities the process will hold (effective/bounding), as `CAP_*` names.
    pub caps: Vec<String>,
    /// Docker arch names that count as ours (`amd64`, `x86_64`…).
    pub arch: &'static [&'static str],
    /// (major, minor) of the running kernel.
    pub kernel: (u32, u32),
}

impl Context {
    pub fn current(caps: Vec<String>) -> Context {
        Context {
            caps,
            arch: native_arches(),
            kernel: kernel_version(),
        }
    }
}

fn native_arches() -> &'static [&'static str] {
    match std::env::consts::ARCH {
        "x86_64" => &["amd64", "x86_64", "SCMP_ARCH_X86_64"],
        "aarch64" => &["arm64", "aarch64", "SCMP_ARCH_AARCH64"],
        _ => &[],
    }
}

fn kernel_version() -> (u32, u32) {
    let rel = nix::sys::utsname::uname()
        .map(|u| u.release().to_string_lossy().into_owned())
        .unwrap_or_default();
    let mut it = rel
        .split(|c: char| !c.is_ascii_digit())
        .filter(|s| !s.is_empty())
        .map(|s| s.parse().unwrap_or(0));
    (it.next().unwrap_or(0), it.next().unwrap_or(0))
}

fn parse_kernel(s: &str) -> (u32, u32) {
    let mut it = s.split('.').map(|p| p.parse().unwrap_or(0));
    (it.next().unwrap_or(0), it.next().unwrap_or(0))
}

/// Evaluate `includes`/`excludes` for a context: the result is a plain OCI profile (what goes
/// into config.json, understood by any runtime).
pub fn resolve(profile: &SeccompProfile, ctx: &Context) -> SeccompProfile {
    let mut p = profile.clone();
    p.syscalls = profile
        .syscalls
        .iter()
        .filter(|r| filter_applies(r, ctx))
        .map(|r| {
            let mut r = r.clone();
            r.names.extend(r.name.take());
            r.includes = None;
            r.excludes = None;
            r
        })
        .collect();
    p
}

/// A compiled profile: filters in install order.
#[derive(Debug, Clone, PartialEq)]
pub struct Compiled {
    pub filters: Vec<Vec<Insn>>,
}

/// One BPF instruction (a serialisable mirror of `struct sock_filter`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Insn {
    pub code: u16,
    pub jt: u8,
    pub jf: u8,
    pub k: u32,
}

impl Compiled {
    /// Filters as kernel `sock_filter` arrays.
    pub fn programs(&self) -> Vec<Vec<libc::sock_filter>> {
        self.filters
            .iter()
            .map(|f| {
                f.iter()
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
}

fn action(name: &str, errno: Option<u32>, default_errno: u32) -> Result<SeccompAction> {
    Ok(match name {
        "SCMP_ACT_ALLOW" => SeccompAction::Allow,
        "SCMP_ACT_ERRNO" => SeccompAction::Errno(errno.unwrap_or(default_errno)),
        "SCMP_ACT_KILL" | "SCMP_ACT_KILL_THREAD" => SeccompAction::KillThread,
        "SCMP_ACT_KILL_PROCESS" => SeccompAction::KillProcess,
        "SCMP_ACT_TRAP" => SeccompAction::Trap,
        "SCMP_ACT_LOG" => SeccompAction::Log,
        "SCMP_ACT_TRACE" => SeccompAction::Trace(errno.unwrap_or(0)),
        other => {
            return Err(RuntimeError::Seccomp {
                reason: format!("unsupported action {other}"),
            });
        }
    })
}

fn action_key(a: &SeccompAction) -> (u8, u32) {
    match a {
        SeccompAction::Allow => (0, 0),
        SeccompAction::Errno(n) => (1, *n),
        SeccompAction::KillThread => (2, 0),
        SeccompAction::KillProcess => (3, 0),
        SeccompAction::Trap => (4, 0),
        SeccompAction::Log => (5, 0),
        SeccompAction::Trace(n) => (6, *n),
    }
}

fn filter_applies(r: &SyscallRule, ctx: &Context) -> bool {
    if let Some(inc) = &r.includes {
        if !inc.caps.iter().all(|c| ctx.caps.contains(c)) {
            return false;
        }
        if !inc.arches.is_empty() && !inc.arches.iter().any(|a| ctx.arch.contains(&a.as_str())) {
            return false;
        }
        if let Some(k) = &inc.min_kernel
            && ctx.kernel < parse_kernel(k)
        {
            return false;
        }
    }
    if let Some(exc) = &r.excludes {
        if !exc.caps.is_empty() && exc.caps.iter().any(|c| ctx.caps.contains(c)) {
            return false;
        }
        if exc.arches.iter().any(|a| ctx.arch.contains(&a.as_str())) {
            return false;
        }
        if let Some(k) = &exc.min_kernel
            && ctx.kernel >= parse_kernel(k)
        {
            return false;
        }
    }
    true
}

fn condition(a: &SyscallArg) -> Result<SeccompCondition> {
    let (op, val) = match a.op.as_str() {
        "SCMP_CMP_EQ" => (SeccompCmpOp::Eq, a.value),
        "SCMP_CMP_NE" => (SeccompCmpOp::Ne, a.value),
        "SCMP_CMP_LT" => (SeccompCmpOp::Lt, a.value),
        "SCMP_CMP_LE" => (SeccompCmpOp::Le, a.value),
        "SCMP_CMP_GT" => (SeccompCmpOp::Gt, a.value),
        "SCMP_CMP_GE" => (SeccompCmpOp::Ge, a.value),
        // libseccomp: (arg & value) == valueTwo; seccompiler: (arg & mask) == value.
        "SCMP_CMP_MASKED_EQ" => (SeccompCmpOp::MaskedEq(a.value), a.value_two),
        other => {
            return Err(RuntimeError::Seccomp {
                reason: format!("unsupported operator {other}"),
            });
        }
    };
    SeccompCondition::new(a.index, SeccompCmpArgLen::Qword, op, val).map_err(|e| {
        RuntimeError::Seccomp {
            reason: format!("arg {}: {e}", a.index),
        }
    })
}

/// Syscall number on the running architecture, if the name exists here.
pub fn syscall_number(name: &str) -> Option<i64> {
    #[cfg(target_arch = "x86_64")]
    {
        static MAP: std::sync::OnceLock<HashMap<&'static str, i64>> = std::sync::OnceLock::new();
        MAP.get_or_init(|| table::TABLE.iter().copied().collect())
            .get(name)
            .copied()
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        let _ = name;
        None
    }
}

/// Rules for one syscall under one action: `None` = unconditional.
type Chain = Option<Vec<SeccompRule>>;

fn add_rule(map: &mut BTreeMap<i64, Chain>, nr: i64, rule: Option<SeccompRule>) {
    let e = map.entry(nr).or_insert_with(|| Some(Vec::new()));
    match (e.as_mut(), rule) {
        (None, _) => {}
        (Some(_), None) => *e = None,
        (Some(v), Some(r)) => v.push(r),
    }
}

fn to_rules(m: BTreeMap<i64, Chain>) -> BTreeMap<i64, Vec<SeccompRule>> {
    m.into_iter()
        .map(|(k, v)| (k, v.unwrap_or_default()))
        .collect()
}

/// Compile a profile for the given context.
pub fn compile(profile: &SeccompProfile, ctx: &Context) -> Result<Compiled> {
    let arch: TargetArch =
        std::env::consts::ARCH
            .try_into()
            .map_err(|e| RuntimeError::Seccomp {
                reason: format!("architecture: {e:?}"),
            })?;
    let default_errno = profile.default_errno_ret.unwrap_or(libc_eperm());
    let default = action(
        &profile.default_action,
        profile.default_errno_ret,
        default_errno,
    )?;
    let dkey = action_key(&default);

    // Every syscall with a rule of an action other than the default, by action.
    let mut by_action: BTreeMap<(u8, u32), (SeccompAction, BTreeMap<i64, Chain>)> = BTreeMap::new();
    for r in &profile.syscalls {
        if !filter_applies(r, ctx) {
            continue;
        }
        let act = action(&r.action, r.errno_ret, default_errno)?;
        let key = action_key(&act);
        if key == dkey {
            continue;
        }
        let rule = match r.args.as_deref() {
            None | Some([]) => None,
            Some(args) => Some(
                SeccompRule::new(args.iter().map(condition).collect::<Result<_>>()?).map_err(
                    |e| RuntimeError::Seccomp {
                        reason: e.to_string(),
                    },
                )?,
            ),
        };
        let names = r.names.iter().chain(r.name.iter());
        for n in names {
            let Some(nr) = syscall_number(n) else {
                continue;
            };
            let slot = by_action
                .entry(key)
                .or_insert_with(|| (act.clone(), BTreeMap::new()));
            add_rule(&mut slot.1, nr, rule.clone());
        }
    }

    let mut filters = Vec::new();
    let allow_key = action_key(&SeccompAction::Allow);
    if dkey != allow_key {
        // Filter 0: ALLOW whatever any non-default rule matches, the default otherwise.
        let mut all: BTreeMap<i64, Chain> = BTreeMap::new();
        for (_, m) in by_action.values() {
            for (nr, chain) in m {
                match chain {
                    None => add_rule(&mut all, *nr, None),
                    Some(rs) => rs
                        .iter()
                        .for_each(|r| add_rule(&mut all, *nr, Some(r.clone()))),
                }
            }
        }
        filters.push(build(
            to_rules(all),
            default.clone(),
            SeccompAction::Allow,
            arch,
        )?);
    }
    for (key, (act, m)) in by_action {
        if key == allow_key {
            continue;
        }
        filters.push(build(to_rules(m), SeccompAction::Allow, act, arch)?);
    }
    Ok(Compiled { filters })
}

fn libc_eperm() -> u32 {
    libc::EPERM as u32
}

fn build(
    rules: BTreeMap<i64, Vec<SeccompRule>>,
    mismatch: SeccompAction,
    matched: SeccompAction,
    arch: TargetArch,
) -> Result<Vec<Insn>> {
    let f =
        SeccompFilter::new(rules, mismatch, matched, arch).map_err(|e| RuntimeError::Seccomp {
            reason: e.to_string(),
        })?;
    let prog: seccompiler::BpfProgram =
        f.try_into()
            .map_err(|e: seccompiler::BackendError| RuntimeError::Seccomp {
                reason: e.to_string(),
            })?;
    Ok(prog
        .into_iter()
        .map(|i| Insn {
            code: i.code,
            jt: i.jt,
            jf: i.jf,
            k: i.k,
        })
        .collect())
}

/// Install compiled filters on the calling thread, in order.
pub fn install(programs: &[Vec<libc::sock_filter>]) -> std::io::Result<()> {
    for p in programs {
        super::sys::seccomp_install(p)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ctx(caps: &[&str]) -> Context {
        Context {
            caps: caps.iter().map(|s| s.to_string()).collect(),
            arch: &["amd64"],
            kernel: (6, 1),
        }
    }

    #[test]
    fn default_profile_loads_and_names_resolve() {
        let p = default_profile();
        assert_eq!(p.default_action, "SCMP_ACT_ERRNO");
        for must in [
            "read",
            "write",
            "execve",
            "exit_group",
            "openat",
            "clone3",
            "mount",
            "personality",
        ] {
            assert!(syscall_number(must).is_some(), "{must}");
        }
        // Every listed name is either known here or a known other-arch/32-bit variant.
        let unknown: Vec<_> = p
            .syscalls
            .iter()
            .flat_map(|r| r.names.iter())
            .filter(|n| syscall_number(n).is_none())
            .filter(|n| {
                !(n.ends_with("32")
                    || n.ends_with("64")
                    || n.starts_with('_')
                    || n.starts_with("arm_")
                    || [
                        "ipc",
                        "recv",
                        "send",
                        "sigprocmask",
                        "sigreturn",
                        "socketcall",
                        "stime",
                        "umount",
                        "waitpid",
                        "ugetrlimit",
                        "breakpoint",
                        "cacheflush",
                        "set_tls",
                        "sync_file_range2",
                        "mmap2",
                    ]
                    .contains(&n.as_str()))
            })
            .collect();
        assert!(
            unknown.is_empty(),
            "unknown syscall names in default profile: {unknown:?}"
        );
    }

    #[test]
    fn default_compiles_to_two_filters_without_sys_admin() {
        let c = compile(&default_profile(), &ctx(&["CAP_CHOWN"])).unwrap();
        // allow-list filter + clone3→ENOSYS filter
        assert_eq!(c.filters.len(), 2);
        assert!(c.filters[0].len() < 4096);
    }

    #[test]
    fn sys_admin_drops_the_enosys_filter() {
        let c = compile(&default_profile(), &ctx(&["CAP_SYS_ADMIN"])).unwrap();
        assert_eq!(c.filters.len(), 1);
    }

    #[test]
    fn includes_and_excludes() {
        let r = SyscallRule {
            names: vec!["chroot".into()],
            action: "SCMP_ACT_ALLOW".into(),
            includes: Some(RuleFilter {
                caps: vec!["CAP_SYS_CHROOT".into()],
                ..Default::default()
            }),
            ..Default::default()
        };
        assert!(filter_applies(&r, &ctx(&["CAP_SYS_CHROOT"])));
        assert!(!filter_applies(&r, &ctx(&[])));
        let k = SyscallRule {
            includes: Some(RuleFilter {
                min_kernel: Some("7.0".into()),
                ..Default::default()
            }),
            ..r.clone()
        };
        assert!(!filter_applies(&k, &ctx(&["CAP_SYS_CHROOT"])));
        let a = SyscallRule {
            includes: Some(RuleFilter {
                arches: vec!["s390x".into()],
                ..Default::default()
            }),
            ..r
        };
        assert!(!filter_applies(&a, &ctx(&[])));
    }

    #[test]
    fn bad_action_is_an_error() {
        let p = SeccompProfile {
            default_action: "SCMP_ACT_BOGUS".into(),
            ..Default::default()
        };
        assert!(matches!(
            compile(&p, &ctx(&[])),
            Err(RuntimeError::Seccomp { .. })
        ));
    }

    #[test]
    fn allow_default_deny_list() {
        let p = parse_profile(
            r#"{"defaultAction":"SCMP_ACT_ALLOW","syscalls":[{"names":["mkdir","mkdirat"],"action":"SCMP_ACT_ERRNO","errnoRet":1}]}"#,
        )
        .unwrap();
        let c = compile(&p, &ctx(&[])).unwrap();
        assert_eq!(c.filters.len(), 1);
    }
}
