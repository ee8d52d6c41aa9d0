//! berth's own protocol between a front end and a remote engine (`berth --host unix://…` to a
//! `berth serve`): the `Command` as JSON in, the reply as JSON out, streams as JSON lines, stdio
//! sessions over an upgraded connection framed as Docker frames them. The Docker Engine API
//! stays the interface for other tools; this one carries berth's full command set unchanged.

use super::error::ApiError;
use super::reply::{Reply, SystemInfo, VersionInfo};
use super::types::*;
use serde::{Deserialize, Serialize};

/// `POST /berth/v1/command`.
pub const COMMAND_PATH: &str = "/berth/v1/command";
/// `GET /berth/v1/events`: JSON lines of `EventRecord`.
pub const EVENTS_PATH: &str = "/berth/v1/events";
/// Which kind of answer follows: `value`, `logs`, `stats` or `io`.
pub const REPLY_HEADER: &str = "x-berth-reply";
/// `1` when an `io` session has a TTY (raw, not framed).
pub const TTY_HEADER: &str = "x-berth-tty";

/// A command and whether its caller has confirmed a `confirm` rule.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct WireCommand {
    pub command: super::command::Command,
    pub confirmed: bool,
}

/// The replies that are plain values.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "reply", content = "value", rename_all = "snake_case")]
pub enum WireReply {
    Done,
    ContainerId(ContainerId),
    Containers(Vec<ContainerSummary>),
    Images(Vec<ImageSummary>),
    ImageId(Digest),
    Loaded(Vec<(Digest, Vec<String>)>),
    ExitCode(i32),
    Json(serde_json::Value),
    Version(VersionInfo),
    Info(SystemInfo),
    ExecId(String),
    Exec(ExecInfo),
    ImagesDeleted(Vec<ImageDeleted>),
    Pruned { removed: Vec<String>, freed: u64 },
    Audit(Vec<crate::security::AuditRecord>),
    Networks(Vec<NetworkInfo>),
    Network(NetworkInfo),
    Volumes(Vec<VolumeInfo>),
    Volume(VolumeInfo),
    StatsAll(Vec<StatsSample>),
}

impl WireReply {
    /// The value part of a reply; the streaming ones come back as they were.
    pub fn from_reply(r: Reply) -> Result<Self, Box<Reply>> {
        Ok(match r {
            Reply::Done => Self::Done,
            Reply::ContainerId(i) => Self::ContainerId(i),
            Reply::Containers(v) => Self::Containers(v),
            Reply::Images(v) => Self::Images(v),
            Reply::ImageId(d) => Self::ImageId(d),
            Reply::Loaded(v) => Self::Loaded(v),
            Reply::ExitCode(c) => Self::ExitCode(c),
            Reply::Json(v) => Self::Json(v),
            Reply::Version(v) => Self::Version(v),
            Reply::Info(i) => Self::Info(i),
            Reply::ExecId(i) => Self::ExecId(i),
            Reply::Exec(e) => Self::Exec(e),
            Reply::ImagesDeleted(v) => Self::ImagesDeleted(v),
            Reply::Pruned { removed, freed } => Self::Pruned { removed, freed },
            Reply::Audit(v) => Self::Audit(v),
            Reply::Networks(v) => Self::Networks(v),
            Reply::Network(n) => Self::Network(n),
            Reply::Volumes(v) => Self::Volumes(v),
            Reply::Volume(v) => Self::Volume(v),
            Reply::StatsAll(v) => Self::StatsAll(v),
            other @ (Reply::Logs(_) | Reply::Stats(_) | Reply::Io(_)) => {
                return Err(Box::new(other));
            }
        })
    }

    pub fn into_reply(self) -> Reply {
        match self {
            Self::Done => Reply::Done,
            Self::ContainerId(i) => Reply::ContainerId(i),
            Self::Containers(v) => Reply::Containers(v),
            Self::Images(v) => Reply::Images(v),
            Self::ImageId(d) => Reply::ImageId(d),
            Self::Loaded(v) => Reply::Loaded(v),
            Self::ExitCode(c) => Reply::ExitCode(c),
            Self::Json(v) => Reply::Json(v),
            Self::Version(v) => Reply::Version(v),
            Self::Info(i) => Reply::Info(i),
            Self::ExecId(i) => Reply::ExecId(i),
            Self::Exec(e) => Reply::Exec(e),
            Self::ImagesDeleted(v) => Reply::ImagesDeleted(v),
            Self::Pruned { removed, freed } => Reply::Pruned { removed, freed },
            Self::Audit(v) => Reply::Audit(v),
            Self::Networks(v) => Reply::Networks(v),
            Self::Network(n) => Reply::Network(n),
            Self::Volumes(v) => Reply::Volumes(v),
            Self::Volume(v) => Reply::Volume(v),
            Self::StatsAll(v) => Reply::StatsAll(v),
        }
    }
}

/// An `ApiError` on the wire, so the client gets back the same typed error.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "error", rename_all = "snake_case")]
pub enum WireError {
    Denied {
        rule: Option<String>,
        reason: String,
    },
    ConfirmationRequired {
        rule: Option<String>,
        reason: String,
    },
    NoSuchContainer {
        id: String,
    },
    NoSuchExec {
        id: String,
    },
    NoSuchImage {
        reference: String,
    },
    Conflict {
        message: String,
    },
    NotModified {
        message: String,
    },
    InvalidArgument {
        message: String,
    },
    NotYetSupported {
        what: String,
    },
    Engine {
        context: String,
        message: String,
    },
}

impl From<&ApiError> for WireError {
    fn from(e: &ApiError) -> Self {
        match e {
            ApiError::Denied { rule, reason } => Self::Denied {
                rule: rule.clone(),
                reason: reason.clone(),
            },
            ApiError::ConfirmationRequired { rule, reason } => Self::ConfirmationRequired {
                rule: rule.clone(),
                reason: reason.clone(),
            },
            ApiError::NoSuchContainer(id) => Self::NoSuchContainer { id: id.0.clone() },
            ApiError::NoSuchExec(id) => Self::NoSuchExec { id: id.clone() },
            ApiError::NoSuchImage(r) => Self::NoSuchImage {
                reference: r.clone(),
            },
            ApiError::Conflict(m) => Self::Conflict { message: m.clone() },
            ApiError::NotModified(m) => Self::NotModified { message: m.clone() },
            ApiError::InvalidArgument(m) => Self::InvalidArgument { message: m.clone() },
            ApiError::NotYetSupported { what } => Self::NotYetSupported {
                what: (*what).to_owned(),
            },
            ApiError::Engine { context, message } => Self::Engine {
                context: context.clone(),
                message: message.clone(),
            },
        }
    }
}

impl From<WireError> for ApiError {
    fn from(e: WireError) -> Self {
        match e {
            WireError::Denied { rule, reason } => Self::Denied { rule, reason },
            WireError::ConfirmationRequired { rule, reason } => {
                Self::ConfirmationRequired { rule, reason }
            }
            WireError::NoSuchContainer { id } => Self::NoSuchContainer(ContainerId(id)),
            WireError::NoSuchExec { id } => Self::NoSuchExec(id),
            WireError::NoSuchImage { reference } => Self::NoSuchImage(reference),
            WireError::Conflict { message } => Self::Conflict(message),
            WireError::NotModified { message } => Self::NotModified(message),
            WireError::InvalidArgument { message } => Self::InvalidArgument(message),
            // The names of unsupported parts are static in this build; a remote one may name
            // another part: keep its words in the context.
            WireError::NotYetSupported { what } => Self::Engine {
                context: what,
                message: "not yet supported by the remote engine".into(),
            },
            WireError::Engine { context, message } => Self::Engine { context, message },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replies_and_errors_round_trip() {
        let r = WireReply::from_reply(Reply::ExitCode(3)).unwrap();
        let back: WireReply = serde_json::from_str(&serde_json::to_string(&r).unwrap()).unwrap();
        assert!(matches!(back.into_reply(), Reply::ExitCode(3)));
        // the list's stats feed travels as one value, so a remote console gets it too
        let sample = StatsSample {
            id: ContainerId("c".repeat(64)),
            cpu_percent: 12.5,
            memory_bytes: 1 << 20,
            memory_limit: Some(64 << 20),
            ..Default::default()
        };
        let r = WireReply::from_reply(Reply::StatsAll(vec![sample.clone()])).unwrap();
        let back: WireReply = serde_json::from_str(&serde_json::to_string(&r).unwrap()).unwrap();
        assert!(matches!(back.into_reply(), Reply::StatsAll(v) if v == [sample]));
        let e = ApiError::Denied {
            rule: Some("p:1".into()),
            reason: "no".into(),
        };
        let w: WireError =
            serde_json::from_str(&serde_json::to_string(&WireError::from(&e)).unwrap()).unwrap();
        assert!(matches!(ApiError::from(w), ApiError::Denied { reason, .. } if reason == "no"));
    }
}
