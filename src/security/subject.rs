//! The caller a policy decision is about.

use serde::{Deserialize, Serialize};
use std::fmt;

/// A unix identity: the console's own, or the peer credentials of an API connection.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Subject {
    pub uid: u32,
    pub gid: u32,
    /// Supplementary groups.
    pub groups: Vec<u32>,
}

impl Subject {
    /// The identity of this process (effective ids).
    pub fn current() -> Self {
        let groups = nix::unistd::getgroups()
            .map(|g| g.into_iter().map(|g| g.as_raw()).collect())
            .unwrap_or_default();
        Self {
            uid: nix::unistd::geteuid().as_raw(),
            gid: nix::unistd::getegid().as_raw(),
            groups,
        }
    }

    /// Whether the subject belongs to `gid`, as primary or supplementary group.
    pub fn in_group(&self, gid: u32) -> bool {
        self.gid == gid || self.groups.contains(&gid)
    }
}

impl fmt::Display for Subject {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match nix::unistd::User::from_uid(self.uid.into()) {
            Ok(Some(u)) => write!(f, "{}(uid {})", u.name, self.uid),
            _ => write!(f, "uid {}", self.uid),
        }
    }
}
