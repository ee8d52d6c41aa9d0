//! Errors the engine answers commands with. They cross to the front ends as data.

use super::types::ContainerId;

/// Why a command failed.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("denied by policy{}: {reason}", rule_suffix(.rule))]
    Denied {
        rule: Option<String>,
        reason: String,
    },
    #[error("needs confirmation{}: {reason}", rule_suffix(.rule))]
    ConfirmationRequired {
        rule: Option<String>,
        reason: String,
    },
    #[error("no such container: {0}")]
    NoSuchContainer(ContainerId),
    #[error("no such exec instance: {0}")]
    NoSuchExec(String),
    #[error("no such image: {0}")]
    NoSuchImage(String),
    #[error("{0}")]
    Conflict(String),
    /// The command would change nothing (start a running container, stop a stopped one):
    /// Docker answers these with 304.
    #[error("{0}")]
    NotModified(String),
    #[error("invalid argument: {0}")]
    InvalidArgument(String),
    #[error("{what} is not yet supported by this build of berth")]
    NotYetSupported { what: &'static str },
    #[error("{context}: {message}")]
    Engine { context: String, message: String },
}

fn rule_suffix(rule: &Option<String>) -> String {
    rule.as_ref()
        .map(|r| format!(" (rule {r})"))
        .unwrap_or_default()
}

impl ApiError {
    /// An error from a part of the engine, with what was being done.
    pub fn engine(context: impl Into<String>, err: impl std::fmt::Display) -> Self {
        Self::Engine {
            context: context.into(),
            message: err.to_string(),
        }
    }
}
