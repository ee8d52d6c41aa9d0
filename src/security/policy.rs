//! The policy engine: ordered rules from a TOML file, first match wins.
//!
//! File shape (users and tests depend on it):
//! ```toml
//! [[rule]]
//! action = "container.*"        # exact action name or glob: `container.*`, `*`
//! decision = "allow"            # allow | deny | confirm
//! subject = "uid:0"             # optional: user:NAME, group:NAME, uid:N, gid:N, *
//! reason = "why"                # optional, shown on deny/confirm
//! privileged = true             # optional conditions on the request
//! ```
//! A request nobody's rule matches is denied.

use super::subject::Subject;
use serde::{Deserialize, Serialize};
use std::fmt;
use std::path::{Path, PathBuf};

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
/// these in from the command.
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
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFile {
    #[serde(default)]
    rule: Vec<toml::Spanned<RawRule>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRule {
    action: String,
    decision: Verdict,
    subject: Option<String>,
    reason: Option<String>,
    privileged: Option<bool>,
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
}

#[derive(Debug, Clone)]
struct Rule {
    location: String,
    action: globset::GlobMatcher,
    subject: SubjectMatch,
    decision: Verdict,
    reason: Option<String>,
    privileged: Option<bool>,
}

impl Rule {
    fn matches(&self, subject: &Subject, req: &Request) -> bool {
        self.action.is_match(&req.action)
            && self.subject.matches(subject)
            && self.privileged.is_none_or(|p| p == req.facts.privileged)
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
    /// a rule whose action matches none of them is an error.
    pub fn load(path: &Path, known_actions: &[&str]) -> Result<Self, PolicyError> {
        let text = std::fs::read_to_string(path).map_err(|source| PolicyError::Read {
            path: path.to_owned(),
            source,
        })?;
        Self::parse(&text, &path.display().to_string(), known_actions)
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
        let mut rules = Vec::with_capacity(raw.rule.len());
        for spanned in raw.rule {
            let start = spanned.span().start;
            let r = spanned.into_inner();
            let glob = globset::Glob::new(&r.action)
                .map_err(|e| invalid(start, format!("action {:?}: {e}", r.action)))?
                .compile_matcher();
            if !known_actions.iter().any(|a| glob.is_match(a)) {
                return Err(invalid(start, format!("unknown action {:?}", r.action)));
            }
            let subject = match &r.subject {
                None => SubjectMatch::Any,
                Some(s) => SubjectMatch::parse(s).map_err(|m| invalid(start, m))?,
            };
            rules.push(Rule {
                location: format!("{origin}:{}", line_of(text, start)),
                action: glob,
                subject,
                decision: r.decision,
                reason: r.reason,
                privileged: r.privileged,
            });
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

    /// Decide on a request: the first matching rule wins; no match is a denial.
    pub fn decide(&self, subject: &Subject, req: &Request) -> Decision {
        match self.rules.iter().find(|r| r.matches(subject, req)) {
            Some(rule) => Decision {
                verdict: rule.decision,
                rule: Some(rule.location.clone()),
                reason: rule.reason.clone().unwrap_or_else(|| match rule.decision {
                    Verdict::Allow => "allowed by policy".into(),
                    Verdict::Deny => format!("{} is denied by policy", req.action),
                    Verdict::Confirm => format!("{} needs confirmation", req.action),
                }),
            },
            None => Decision {
                verdict: Verdict::Deny,
                rule: None,
                reason: format!("no policy rule allows {} for {subject}", req.action),
            },
        }
    }
}

fn line_of(text: &str, offset: usize) -> usize {
    text[..offset.min(text.len())].matches('\n').count() + 1
}

#[cfg(test)]
mod tests {
    use super::*;

    const ACTIONS: &[&str] = &["container.create", "container.list", "image.pull"];

    fn root() -> Subject {
        Subject {
            uid: 0,
            gid: 0,
            groups: vec![],
        }
    }

    fn user(uid: u32) -> Subject {
        Subject {
            uid,
            gid: uid,
            groups: vec![],
        }
    }

    fn req(action: &str) -> Request {
        Request {
            action: action.into(),
            ..Default::default()
        }
    }

    #[test]
    fn first_match_wins_and_default_is_deny() {
        let p = Policy::parse(
            "[[rule]]\naction = \"image.*\"\ndecision = \"deny\"\nreason = \"no pulls\"\n\
             [[rule]]\naction = \"*\"\nsubject = \"uid:0\"\ndecision = \"allow\"\n",
            "t.toml",
            ACTIONS,
        )
        .unwrap();
        let d = p.decide(&root(), &req("image.pull"));
        assert_eq!(d.verdict, Verdict::Deny);
        assert_eq!(d.rule.as_deref(), Some("t.toml:1"));
        assert_eq!(d.reason, "no pulls");
        assert_eq!(
            p.decide(&root(), &req("container.list")).verdict,
            Verdict::Allow
        );
        let d = p.decide(&user(1000), &req("container.list"));
        assert_eq!((d.verdict, d.rule), (Verdict::Deny, None));
    }

    #[test]
    fn builtin_lets_root_work_and_confirms_privileged() {
        let p = Policy::builtin(ACTIONS).unwrap();
        assert_eq!(
            p.decide(&root(), &req("container.create")).verdict,
            Verdict::Allow
        );
        let mut r = req("container.create");
        r.facts.privileged = true;
        assert_eq!(p.decide(&root(), &r).verdict, Verdict::Confirm);
    }

    #[test]
    fn load_errors_name_the_line() {
        let e = Policy::parse(
            "\n[[rule]]\naction = \"container.fly\"\ndecision = \"allow\"\n",
            "p",
            ACTIONS,
        )
        .unwrap_err();
        assert_eq!(e.to_string(), "p:2: unknown action \"container.fly\"");
        let e = Policy::parse(
            "[[rule]]\naction = \"*\"\ndecision = \"maybe\"\n",
            "p",
            ACTIONS,
        )
        .unwrap_err();
        assert!(e.to_string().starts_with("p:3: "), "{e}");
        let e = Policy::parse(
            "[[rule]]\naction = \"*\"\ndecision = \"allow\"\nsubject = \"uid:x\"\n",
            "p",
            ACTIONS,
        )
        .unwrap_err();
        assert!(e.to_string().contains("not a number"), "{e}");
        let e = Policy::parse(
            "[[rule]]\naction = \"*\"\ndecision = \"allow\"\ncolour = 1\n",
            "p",
            ACTIONS,
        )
        .unwrap_err();
        assert!(e.to_string().contains("colour"), "{e}");
    }
}
