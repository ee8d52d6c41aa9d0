//! Who is on the other end of a connection: SO_PEERCRED gives uid, gid and pid at connect
//! time; the supplementary groups come from `/proc/<pid>/status`.
//!
//! A group can grant access, so a connection whose groups cannot be read for certain (no pid,
//! the process gone, or a pid that now belongs to another user) is refused rather than served
//! with fewer groups than the caller really has: a `deny` rule on a group must not be escaped.

use crate::api::dispatch::Caller;
use crate::security::Subject;
use tokio::net::UnixStream;

/// The policy subject of a connection, or why it cannot be known.
pub(super) fn identify(stream: &UnixStream) -> Result<Caller, String> {
    let cred = stream
        .peer_cred()
        .map_err(|e| format!("SO_PEERCRED: {e}"))?;
    let pid = cred
        .pid()
        .filter(|p| *p > 0)
        .ok_or("the peer's pid is not visible from here (another pid namespace)")?;
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))
        .map_err(|e| format!("reading /proc/{pid}/status: {e}"))?;
    let groups = groups_of(&status, cred.uid())?;
    Ok(Caller {
        subject: Subject {
            uid: cred.uid(),
            gid: cred.gid(),
            groups,
        },
        confirmed: false,
    })
}

/// The supplementary groups in a `/proc/<pid>/status` text, after checking that the process
/// still runs as `uid` (effective id), so a recycled pid cannot lend its groups.
fn groups_of(status: &str, uid: u32) -> Result<Vec<u32>, String> {
    let field = |name: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .ok_or_else(|| format!("no {name} line in the peer's status"))
    };
    let euid = field("Uid:")?
        .split_whitespace()
        .nth(1)
        .and_then(|u| u.parse::<u32>().ok())
        .ok_or("malformed Uid: line in the peer's status")?;
    if euid != uid {
        return Err(format!(
            "the peer's process now runs as uid {euid}, not {uid} (it exited and its pid was reused?)"
        ));
    }
    field("Groups:")?
        .split_whitespace()
        .map(|g| {
            g.parse()
                .map_err(|_| format!("malformed group {g:?} in the peer's status"))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const STATUS: &str = "Name:\tdocker\nUid:\t1000\t1000\t1000\t1000\nGid:\t100\t100\t100\t100\nGroups:\t27 100 998 \nVmRSS:\t1 kB\n";

    #[test]
    fn groups_are_read_from_status() {
        assert_eq!(groups_of(STATUS, 1000).unwrap(), vec![27, 100, 998]);
        assert_eq!(
            groups_of("Uid:\t0\t0\t0\t0\nGroups:\t\n", 0).unwrap(),
            Vec::<u32>::new()
        );
    }

    #[test]
    fn a_recycled_pid_of_another_user_is_refused() {
        let err = groups_of(STATUS, 0).unwrap_err();
        assert!(err.contains("uid 1000, not 0"), "{err}");
        assert!(groups_of("Uid:\t0\t0\t0\t0\n", 0).is_err());
    }

    #[tokio::test]
    async fn a_socketpair_peer_is_this_process() {
        let (a, _b) = UnixStream::pair().unwrap();
        let caller = identify(&a).unwrap();
        let me = Subject::current();
        assert_eq!((caller.subject.uid, caller.subject.gid), (me.uid, me.gid));
        let mut mine = me.groups.clone();
        mine.sort();
        let mut seen = caller.subject.groups.clone();
        seen.sort();
        assert_eq!(seen, mine);
        assert!(!caller.confirmed);
    }
}
