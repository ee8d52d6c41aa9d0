//! `berth policy explain`: how a request was decided, rule by rule.

use super::{Decision, Verdict};
use serde::{Deserialize, Serialize};
use std::fmt;

/// Why a rule did not apply to a request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum RuleMiss {
    /// The action glob does not match.
    Action,
    /// The caller is not the rule's subject.
    Subject,
    /// A condition does not hold.
    Condition {
        /// As written: `registries = ["docker.io"]`.
        condition: String,
        why: String,
    },
}

/// One rule's part in an [`Explanation`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RuleTrace {
    /// `file:line`.
    pub rule: String,
    pub action: String,
    pub subject: String,
    pub verdict: Verdict,
    /// `None` when the rule applied (and, being the first, decided); `Some` says why not.
    /// Rules after the deciding one are not listed.
    pub miss: Option<RuleMiss>,
}

/// How a request was decided: every rule up to the deciding one, and the decision.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Explanation {
    pub action: String,
    pub subject: String,
    pub rules: Vec<RuleTrace>,
    pub decision: Decision,
}

impl fmt::Display for Explanation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "{} by {}:", self.action, self.subject)?;
        for t in &self.rules {
            write!(
                f,
                "  {}  {} {} (subject {}): ",
                t.rule, t.verdict, t.action, t.subject
            )?;
            match &t.miss {
                None => writeln!(f, "applies")?,
                Some(RuleMiss::Action) => writeln!(f, "other action")?,
                Some(RuleMiss::Subject) => writeln!(f, "other subject")?,
                Some(RuleMiss::Condition { condition, why }) => {
                    writeln!(f, "{condition} does not hold: {why}")?
                }
            }
        }
        match &self.decision.rule {
            Some(r) => write!(
                f,
                "=> {} by {r}: {}",
                self.decision.verdict, self.decision.reason
            ),
            None => write!(
                f,
                "=> {} (no rule applies): {}",
                self.decision.verdict, self.decision.reason
            ),
        }
    }
}
