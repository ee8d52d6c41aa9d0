//! The policy engine: ordered rules from a TOML file, the first applicable rule wins.
//!
//! File shape (users and tests depend on it):
//! ```toml
//! [[rule]]
//! action = "container.*"        # exact action name or glob: `container.*`, `*`
//! decision = "allow"            # allow | deny | confirm
//! subject = "uid:0"             # optional: user:NAME, group:NAME, uid:N, gid:N, * (default *)
//! reason = "why"                # optional, shown on deny/confirm
//! privileged = true             # optional conditions on the request (below)
//! ```
//!
//! A rule **applies** to a request when its action glob matches the request's action, the
//! caller is its subject, and **every** condition holds. Rules are tried in file order; the
//! first that applies decides. A request no rule applies to is denied.
//!
//! ## Conditions
//!
//! Each key is a predicate on the request's [`Facts`]. Only some actions carry a given fact
//! ([`facts_carried_by`]): `container.create` carries all of them, `container.exec` carries
//! `privileged` and the user, `image.pull`/`image.push`/`image.tag` carry the image. **A
//! condition on a fact the request's action does not carry does not hold**, so the rule does
//! not apply to that request; a rule whose actions can never carry a condition's fact is a
//! load error.
//!
//! | key | holds when |
//! |---|---|
//! | `registries = ["docker.io", "*.corp"]` | the image's registry (normalised: `busybox` is on `docker.io`) matches a glob |
//! | `repositories = ["docker.io/library/*", "busybox"]` | the image's repository (`docker.io/library/busybox`) matches a glob; a pattern without glob characters is normalised like a reference, a glob must name its registry; `*` also matches `/` |
//! | `privileged = B` | the request asks for privileged mode (`B = true`) / does not (`false`) |
//! | `cap_add = ["NET_ADMIN", …]` | the request adds **at least one** listed capability (`ALL` in the list: any; the request adding `ALL` adds all; an unknown name counts as a hit). For deny-lists |
//! | `cap_add_only = ["NET_BIND_SERVICE", …]` | **every** capability the request adds is listed (true when it adds none). For allow-lists |
//! | `bind_prefixes = ["/srv", "/home"]` | **every** host bind source is under one of the prefixes (true with no binds), compared after resolving `.`, `..` and symlinks on both sides |
//! | `bind_read_only = B` | `true`: every bind is read-only (true with no binds); `false`: at least one bind is writable |
//! | `root_user = B` | the process runs as uid 0 (`true`) / not (`false`). No `--user` counts as root (the image default is unknown here); `0`, `root`, `0:…`, `root:…` are root; other names are not |
//! | `require_limits = ["memory", "cpus", "pids"]` | every listed limit is set (0 and -1 mean unset) |
//! | `max_memory = "2g"` | a memory limit is set and is at most this (`512m`, `1.5g`, or bytes) |
//! | `max_cpus = 2` | a CPU limit is set and is at most this |
//! | `max_pids = 512` | a pids limit is set and is at most this |
//! | `host_network = B`, `host_pid = B`, `host_ipc = B` | the request uses the host's network / PID / IPC namespace |
//! | `seccomp_unconfined = B` | the request asks for `seccomp=unconfined` |
//! | `privileged_ports = B` | `true`: the request publishes a host port in 1–1023; `false`: none |
//!
//! There is no negation: an **allow-list** is an `allow` rule carrying the conditions followed
//! by a catch-all `deny` for the same action; a **deny-list** is a `deny` (or `confirm`) rule
//! placed before the `allow`.
//!
//! ## Load errors
//!
//! Each names the file and line: TOML syntax and unknown keys, an unknown action, a bad glob or
//! subject, a bad condition value (unknown capability, bad size, relative or `..` prefix, empty
//! list, unqualified repository glob), a condition no action of the rule can carry, and an
//! **unreachable rule**: one that an earlier rule with a covering subject (`*` or the same), a
//! covering action set and a subset of its conditions always decides first.

mod condition;
mod explain;

pub use explain::{Explanation, RuleMiss, RuleTrace};

pub use condition::{
    Condition, Fact, facts_carried_by, normalize_lexically, parse_size, resolve_host_path,
    runs_as_root,
};

use super::subject::Subject;
use serde::{Deserialize, Serialize};
use std::fmt;
use std::path::{Path, PathBuf};
use toml::Spanned;

/// The shipped default policy.
pub const DEFAULT_POLICY: &str = include_str!("../../assets/policy.toml");

/// What a rule decides.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Verdict {
    Allow,
    Deny,
    /// The console asks the user first; the API refuses.
    Confirm,
}

impl fmt::Display for Verdict {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Allow => "allow",
            Self::Deny => "deny",
            Self::Confirm => "confirm",
        })
    }
}

/// A host path bound into a container.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HostBind {
    pub path: PathBuf,
    pub read_only: bool,
}

/// What the policy may look at in a request, beyond its action and target. The API layer fills
/// these in from the command: for each action exactly the facts [`facts_carried_by`] lists
/// (`container.create`: all; `container.exec`: `privileged`, `user`; `image.pull`,
/// `image.push`, `image.tag`: `image`). Conditions ignore the other fields.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct Facts {
    /// The image reference the request uses (create, pull, push, tag target, build base).
    pub image: Option<String>,
    pub privileged: bool,
    pub cap_add: Vec<String>,
    pub binds: Vec<HostBind>,
    /// The user the container process runs as, as requested (`None` = the image's default).
    pub user: Option<String>,
    pub memory: Option<u64>,
    pub cpus: Option<f64>,
    pub pids_limit: Option<i64>,
    pub network_host: bool,
    pub pid_host: bool,
    pub ipc_host: bool,
    pub seccomp_unconfined: bool,
    /// Host ports the request publishes.
    pub host_ports: Vec<u16>,
}

/// One request to decide on.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct Request {
    /// `container.create`, `image.pull`, …
    pub action: String,
    pub target: Option<String>,
    pub facts: Facts,
}

/// The outcome of [`Policy::decide`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Decision {
    pub verdict: Verdict,
    /// `file:line` of the deciding rule; `None` when no rule matched (the default deny).
    pub rule: Option<String>,
    pub reason: String,
}

/// A policy file that cannot be used. The engine refuses to start on one.
#[derive(Debug, thiserror::Error)]
pub enum PolicyError {
    #[error("cannot read policy file {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{origin}:{line}: {message}")]
    Invalid {
        origin: String,
        line: usize,
        message: String,
    },
    /// Whoever can write the policy file can grant themselves anything.
    #[error(
        "policy file {path} is {why}: only root (or the engine's own user) may be able to change it"
    )]
    Insecure { path: PathBuf, why: String },
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFile {
    #[serde(default)]
    rule: Vec<Spanned<RawRule>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRule {
    action: Spanned<String>,
    decision: Verdict,
    subject: Option<Spanned<String>>,
    reason: Option<String>,
    registries: Option<Spanned<Vec<String>>>,
    repositories: Option<Spanned<Vec<String>>>,
    privileged: Option<Spanned<bool>>,
    cap_add: Option<Spanned<Vec<String>>>,
    cap_add_only: Option<Spanned<Vec<String>>>,
    bind_prefixes: Option<Spanned<Vec<String>>>,
    bind_read_only: Option<Spanned<bool>>,
    root_user: Option<Spanned<bool>>,
    require_limits: Option<Spanned<Vec<String>>>,
    max_memory: Option<Spanned<condition::Number>>,
    max_cpus: Option<Spanned<condition::Number>>,
    max_pids: Option<Spanned<condition::Number>>,
    host_network: Option<Spanned<bool>>,
    host_pid: Option<Spanned<bool>>,
    host_ipc: Option<Spanned<bool>>,
    seccomp_unconfined: Option<Spanned<bool>>,
    privileged_ports: Option<Spanned<bool>>,
}

impl RawRule {
    /// The rule's conditions, each with the byte offset of its value (for error lines).
    fn conditions(&mut self) -> Vec<(usize, Result<Condition, String>)> {
        use condition as c;
        let mut out = Vec::new();
        fn take<T>(
            out: &mut Vec<(usize, Result<Condition, String>)>,
            field: Option<Spanned<T>>,
            make: impl FnOnce(T) -> Result<Condition, String>,
        ) {
            if let Some(v) = field {
                let at = v.span().start;
                out.push((at, make(v.into_inner())));
            }
        }
        take(&mut out, self.registries.take(), c::registries);
        take(&mut out, self.repositories.take(), c::repositories);
        take(&mut out, self.privileged.take(), |b| {
            Ok(Condition::Privileged(b))
        });
        take(&mut out, self.cap_add.take(), |v| {
            c::cap_list("cap_add", v).map(Condition::CapAdd)
        });
        take(&mut out, self.cap_add_only.take(), |v| {
            c::cap_list("cap_add_only", v).map(Condition::CapAddOnly)
        });
        take(&mut out, self.bind_prefixes.take(), c::bind_prefixes);
        take(&mut out, self.bind_read_only.take(), |b| {
            Ok(Condition::BindReadOnly(b))
        });
        take(&mut out, self.root_user.take(), |b| {
            Ok(Condition::RootUser(b))
        });
        take(&mut out, self.require_limits.take(), c::require_limits);
        take(&mut out, self.max_memory.take(), |n| {
            n.size()
                .map(Condition::MaxMemory)
                .map_err(|e| format!("max_memory: {e}"))
        });
        take(&mut out, self.max_cpus.take(), |n| {
            n.cpus()
                .map(Condition::MaxCpus)
                .map_err(|e| format!("max_cpus: {e}"))
        });
        take(&mut out, self.max_pids.take(), |n| {
            n.pids()
                .map(Condition::MaxPids)
                .map_err(|e| format!("max_pids: {e}"))
        });
        take(&mut out, self.host_network.take(), |b| {
            Ok(Condition::HostNetwork(b))
        });
        take(&mut out, self.host_pid.take(), |b| {
            Ok(Condition::HostPid(b))
        });
        take(&mut out, self.host_ipc.take(), |b| {
            Ok(Condition::HostIpc(b))
        });
        take(&mut out, self.seccomp_unconfined.take(), |b| {
            Ok(Condition::SeccompUnconfined(b))
        });
        take(&mut out, self.privileged_ports.take(), |b| {
            Ok(Condition::PrivilegedPorts(b))
        });
        out
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum SubjectMatch {
    Any,
    Uid(u32),
    Gid(u32),
}

impl SubjectMatch {
    fn parse(s: &str) -> Result<Self, String> {
        if s == "*" {
            return Ok(Self::Any);
        }
        let (kind, value) = s.split_once(':').ok_or_else(|| {
            format!("subject {s:?}: expected user:NAME, group:NAME, uid:N, gid:N or *")
        })?;
        let number = |v: &str| {
            v.parse::<u32>()
                .map_err(|_| format!("subject {s:?}: {v:?} is not a number"))
        };
        match kind {
            "uid" => Ok(Self::Uid(number(value)?)),
            "gid" => Ok(Self::Gid(number(value)?)),
            "user" => match nix::unistd::User::from_name(value) {
                Ok(Some(u)) => Ok(Self::Uid(u.uid.as_raw())),
                _ => Err(format!("subject {s:?}: no such user")),
            },
            "group" => match nix::unistd::Group::from_name(value) {
                Ok(Some(g)) => Ok(Self::Gid(g.gid.as_raw())),
                _ => Err(format!("subject {s:?}: no such group")),
            },
            _ => Err(format!(
                "subject {s:?}: unknown kind {kind:?} (user, group, uid, gid)"
            )),
        }
    }

    fn matches(&self, s: &Subject) -> bool {
        match self {
            Self::Any => true,
            Self::Uid(u) => s.uid == *u,
            Self::Gid(g) => s.in_group(*g),
        }
    }

    /// Whether every subject `other` matches is matched by `self` too.
    fn covers(&self, other: &Self) -> bool {
        *self == Self::Any || self == other
    }
}

impl fmt::Display for SubjectMatch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Any => f.write_str("*"),
            Self::Uid(u) => write!(f, "uid:{u}"),
            Self::Gid(g) => write!(f, "gid:{g}"),
        }
    }
}

#[derive(Debug, Clone)]
struct Rule {
    location: String,
    line: usize,
    action_text: String,
    action: globset::GlobMatcher,
    subject: SubjectMatch,
    decision: Verdict,
    reason: Option<String>,
    conditions: Vec<Condition>,
}

impl Rule {
    /// Whether the rule applies; `Err` is the first thing that does not hold.
    fn check(&self, subject: &Subject, req: &Request) -> Result<(), RuleMiss> {
        if !self.action.is_match(&req.action) {
            return Err(RuleMiss::Action);
        }
        if !self.subject.matches(subject) {
            return Err(RuleMiss::Subject);
        }
        for c in &self.conditions {
            c.check(&req.action, &req.facts)
                .map_err(|why| RuleMiss::Condition {
                    condition: c.to_string(),
                    why,
                })?;
        }
        Ok(())
    }

    fn decision(&self, req: &Request) -> Decision {
        Decision {
            verdict: self.decision,
            rule: Some(self.location.clone()),
            reason: self.reason.clone().unwrap_or_else(|| match self.decision {
                Verdict::Allow => "allowed by policy".into(),
                Verdict::Deny => format!("{} is denied by policy", req.action),
                Verdict::Confirm => format!("{} needs confirmation", req.action),
            }),
        }
    }

    /// Whether `self`, placed earlier, always decides every request `later` applies to.
    fn shadows(&self, later: &Rule, known_actions: &[&str]) -> bool {
        self.subject.covers(&later.subject)
            && known_actions
                .iter()
                .filter(|a| later.action.is_match(a))
                .all(|a| self.action.is_match(a))
            && self.conditions.iter().all(|c| later.conditions.contains(c))
    }
}

/// A loaded, validated policy.
#[derive(Debug, Clone)]
pub struct Policy {
    origin: String,
    rules: Vec<Rule>,
}

impl Policy {
    /// The shipped default (`assets/policy.toml`).
    pub fn builtin(known_actions: &[&str]) -> Result<Self, PolicyError> {
        Self::parse(DEFAULT_POLICY, "assets/policy.toml", known_actions)
    }

    /// Load and validate a policy file. `known_actions` are the action names the engine has;
    /// a rule whose action matches none of them is an error. The file must be owned by root
    /// or by the engine's user, and writable by nobody else (group-writable is fine when the
    /// group is root's or the engine's).
    pub fn load(path: &Path, known_actions: &[&str]) -> Result<Self, PolicyError> {
        use std::io::Read;
        use std::os::unix::fs::MetadataExt;
        let read_err = |source| PolicyError::Read {
            path: path.to_owned(),
            source,
        };
        let mut file = std::fs::File::open(path).map_err(read_err)?;
        // Check the file that is read, not the path (which could be swapped in between).
        let meta = file.metadata().map_err(read_err)?;
        let euid = nix::unistd::geteuid().as_raw();
        let insecure = |why: String| PolicyError::Insecure {
            path: path.to_owned(),
            why,
        };
        if meta.uid() != 0 && meta.uid() != euid {
            return Err(insecure(format!("owned by uid {}", meta.uid())));
        }
        let egid = nix::unistd::getegid().as_raw();
        let group_writable = meta.mode() & 0o020 != 0 && meta.gid() != 0 && meta.gid() != egid;
        if meta.mode() & 0o002 != 0 || group_writable {
            return Err(insecure(format!(
                "writable by {} (mode {:o})",
                if meta.mode() & 0o002 != 0 {
                    "everyone".to_owned()
                } else {
                    format!("group {}", meta.gid())
                },
                meta.mode() & 0o7777
            )));
        }
        let mut text = String::new();
        file.read_to_string(&mut text).map_err(read_err)?;
        Self::parse(&text, &path.display().to_string(), known_actions)
    }

    /// How many rules the policy has (`berth policy check` reports it).
    pub fn rule_count(&self) -> usize {
        self.rules.len()
    }

    /// Parse policy text; `origin` names it in errors.
    pub fn parse(text: &str, origin: &str, known_actions: &[&str]) -> Result<Self, PolicyError> {
        let invalid = |offset: usize, message: String| PolicyError::Invalid {
            origin: origin.to_owned(),
            line: line_of(text, offset),
            message,
        };
        let raw: RawFile = toml::from_str(text).map_err(|e| {
            let offset = e.span().map_or(0, |s| s.start);
            invalid(offset, e.message().to_owned())
        })?;
        let mut rules: Vec<Rule> = Vec::with_capacity(raw.rule.len());
        for spanned in raw.rule {
            let start = spanned.span().start;
            let mut r = spanned.into_inner();
            let glob = globset::Glob::new(r.action.get_ref())
                .map_err(|e| invalid(start, format!("action {:?}: {e}", r.action.get_ref())))?
                .compile_matcher();
            let actions: Vec<&str> = known_actions
                .iter()
                .copied()
                .filter(|a| glob.is_match(a))
                .collect();
            if actions.is_empty() {
                return Err(invalid(
                    start,
                    format!("unknown action {:?}", r.action.get_ref()),
                ));
            }
            let subject = match &r.subject {
                None => SubjectMatch::Any,
                Some(s) => {
                    SubjectMatch::parse(s.get_ref()).map_err(|m| invalid(s.span().start, m))?
                }
            };
            let mut conditions: Vec<Condition> = Vec::new();
            for (at, c) in r.conditions() {
                let c = c.map_err(|m| invalid(at, m))?;
                if !actions
                    .iter()
                    .any(|a| facts_carried_by(a).contains(&c.fact()))
                {
                    return Err(invalid(
                        at,
                        format!(
                            "condition {} can never hold: no request of action {:?} carries {}",
                            c.key(),
                            r.action.get_ref(),
                            c.fact()
                        ),
                    ));
                }
                conditions.push(c);
            }
            let line = line_of(text, start);
            let rule = Rule {
                location: format!("{origin}:{line}"),
                line,
                action_text: r.action.into_inner(),
                action: glob,
                subject,
                decision: r.decision,
                reason: r.reason,
                conditions,
            };
            if let Some(earlier) = rules.iter().find(|e| e.shadows(&rule, known_actions)) {
                return Err(invalid(
                    start,
                    format!(
                        "unreachable rule: the rule at line {} (action {:?}, subject {}{}) \
                         decides every request this one could match",
                        earlier.line,
                        earlier.action_text,
                        earlier.subject,
                        if earlier.conditions.is_empty() {
                            ", no conditions".to_owned()
                        } else {
                            format!(
                                ", conditions {}",
                                earlier
                                    .conditions
                                    .iter()
                                    .map(|c| c.to_string())
                                    .collect::<Vec<_>>()
                                    .join(", ")
                            )
                        }
                    ),
                ));
            }
            rules.push(rule);
        }
        Ok(Self {
            origin: origin.to_owned(),
            rules,
        })
    }

    /// Where the policy came from (a path, or `assets/policy.toml`).
    pub fn origin(&self) -> &str {
        &self.origin
    }

    /// Decide on a request: the first applicable rule wins; none is a denial.
    pub fn decide(&self, subject: &Subject, req: &Request) -> Decision {
        match self.rules.iter().find(|r| r.check(subject, req).is_ok()) {
            Some(rule) => rule.decision(req),
            None => default_deny(subject, req),
        }
    }

    /// Like [`decide`](Self::decide), with every rule tried on the way and why it did not
    /// apply (`berth policy explain`).
    pub fn explain(&self, subject: &Subject, req: &Request) -> Explanation {
        let mut rules = Vec::new();
        let mut decision = None;
        for r in &self.rules {
            let miss = r.check(subject, req).err();
            let applies = miss.is_none();
            rules.push(RuleTrace {
                rule: r.location.clone(),
                action: r.action_text.clone(),
                subject: r.subject.to_string(),
                verdict: r.decision,
                miss,
            });
            if applies {
                decision = Some(r.decision(req));
                break;
            }
        }
        Explanation {
            action: req.action.clone(),
            subject: subject.to_string(),
            rules,
            decision: decision.unwrap_or_else(|| default_deny(subject, req)),
        }
    }
}

fn default_deny(subject: &Subject, req: &Request) -> Decision {
    Decision {
        verdict: Verdict::Deny,
        rule: None,
        reason: format!("no policy rule allows {} for {subject}", req.action),
    }
}

fn line_of(text: &str, offset: usize) -> usize {
    text[..offset.min(text.len())].matches('\n').count() + 1
}

#[cfg(test)]
mod tests;
