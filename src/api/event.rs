//! Every change of state and every progress report, as one enum.

use super::types::*;
use serde::{Deserialize, Serialize};

/// Something that happened in the engine. The console and the REST `/events` stream learn
/// everything from these.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Event {
    ContainerCreated {
        id: ContainerId,
        name: String,
        image: String,
    },
    ContainerStarted {
        id: ContainerId,
    },
    /// The container's process ended (by itself, by a signal, or OOM-killed).
    ContainerExited {
        id: ContainerId,
        exit_code: i32,
        oom_killed: bool,
    },
    ContainerRestarting {
        id: ContainerId,
    },
    ContainerPaused {
        id: ContainerId,
    },
    ContainerUnpaused {
        id: ContainerId,
    },
    ContainerRenamed {
        id: ContainerId,
        name: String,
    },
    ContainerRemoved {
        id: ContainerId,
    },
    ExecStarted {
        id: ContainerId,
        exec_id: String,
    },

    /// Per-layer progress of a pull or push. Not journaled: only the process doing the
    /// transfer sees it.
    Transfer {
        reference: ImageRef,
        layer: Digest,
        phase: TransferPhase,
        current: u64,
        total: Option<u64>,
    },
    ImagePulled {
        reference: ImageRef,
        id: Digest,
    },
    ImagePushed {
        reference: ImageRef,
        digest: Digest,
    },
    ImageTagged {
        id: Digest,
        tag: String,
    },
    ImageUntagged {
        id: Digest,
        tag: String,
    },
    ImageRemoved {
        id: Digest,
    },
    ImagesPruned {
        removed: Vec<Digest>,
        freed: u64,
    },
    /// One line of build output. Not journaled.
    BuildOutput {
        line: String,
    },
    ImageBuilt {
        id: Digest,
        tags: Vec<String>,
    },

    /// A resource sample of a running container. Not journaled.
    Stats(StatsSample),

    /// A policy decision worth showing (denials, confirmations, allowed changes).
    PolicyDecision {
        subject: String,
        action: String,
        target: Option<String>,
        verdict: crate::security::Verdict,
        rule: Option<String>,
        reason: String,
    },
    /// What the clean-up at engine start removed of crashed processes' leftovers (one line
    /// each: `half container ID`, `orphan snapshot PATH`…).
    DebrisRemoved {
        removed: Vec<String>,
    },
    /// Something failed in the background (not as the answer to a command).
    Error {
        context: String,
        message: String,
    },
}

impl Event {
    /// Whether the event goes to the shared journal, so other berth processes on the same root
    /// see it. Progress, output and samples stay in the process that made them.
    pub fn is_journaled(&self) -> bool {
        !matches!(
            self,
            Self::Transfer { .. } | Self::BuildOutput { .. } | Self::Stats(_)
        )
    }

    /// The container an event is about, if any.
    pub fn container(&self) -> Option<&ContainerId> {
        match self {
            Self::ContainerCreated { id, .. }
            | Self::ContainerStarted { id }
            | Self::ContainerExited { id, .. }
            | Self::ContainerRestarting { id }
            | Self::ContainerPaused { id }
            | Self::ContainerUnpaused { id }
            | Self::ContainerRenamed { id, .. }
            | Self::ContainerRemoved { id }
            | Self::ExecStarted { id, .. } => Some(id),
            Self::Stats(s) => Some(&s.id),
            _ => None,
        }
    }
}

/// An event with when and where it happened.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EventRecord {
    /// Unix nanoseconds.
    pub time: i64,
    /// The engine instance that produced it (`pid.nonce`).
    pub origin: String,
    pub event: Event,
}
