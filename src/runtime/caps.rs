//! Capability sets: names, Docker's default set, computing a container's sets, applying them.

use caps::{CapSet, Capability, CapsHashSet};

use super::error::{Result, RuntimeError};
use super::spec::Capabilities;

/// Docker's 14 default capabilities (moby `daemon/pkg/oci/caps/defaults.go`), bitmask 0xa80425fb.
pub const DOCKER_DEFAULT: [&str; 14] = [
    "CAP_CHOWN",
    "CAP_DAC_OVERRIDE",
    "CAP_FSETID",
    "CAP_FOWNER",
    "CAP_MKNOD",
    "CAP_NET_RAW",
    "CAP_SETGID",
    "CAP_SETUID",
    "CAP_SETFCAP",
    "CAP_SETPCAP",
    "CAP_NET_BIND_SERVICE",
    "CAP_SYS_CHROOT",
    "CAP_KILL",
    "CAP_AUDIT_WRITE",
];

/// Parse a capability name; accepts `CAP_X`, `X`, any case.
pub fn parse(name: &str) -> Result<Capability> {
    let up = name.trim().to_ascii_uppercase();
    let full = if up.starts_with("CAP_") {
        up
    } else {
        format!("CAP_{up}")
    };
    full.parse::<Capability>()
        .map_err(|_| RuntimeError::UnknownCapability { name: name.into() })
}

/// Every capability we can hand out: the running kernel's, within our own bounding set (a
/// host that lacks one, e.g. CAP_SYS_RESOURCE here, cannot give it to a privileged container).
pub fn all_names() -> Vec<String> {
    let bounding = caps::read(None, CapSet::Bounding).unwrap_or_default();
    let mut v: Vec<String> = caps::runtime::thread_all_supported()
        .iter()
        .filter(|c| bounding.contains(c))
        .map(|c| c.to_string())
        .collect();
    v.sort();
    v
}

/// The container's sets from Docker-style options: start from the default 14 (or all, when
/// privileged), add `add` (`ALL` = all), drop `drop` (`ALL` = all).
pub fn docker_sets(privileged: bool, add: &[String], drop: &[String]) -> Result<Capabilities> {
    let mut set: Vec<String> = if privileged {
        all_names()
    } else {
        DOCKER_DEFAULT.iter().map(|s| s.to_string()).collect()
    };
    if drop.iter().any(|d| d.eq_ignore_ascii_case("all")) {
        set.clear();
    } else {
        for d in drop {
            let c = parse(d)?.to_string();
            set.retain(|s| *s != c);
        }
    }
    if add.iter().any(|a| a.eq_ignore_ascii_case("all")) {
        set = all_names();
    } else {
        for a in add {
            let c = parse(a)?.to_string();
            if !set.contains(&c) {
                set.push(c);
            }
        }
    }
    set.sort();
    Ok(Capabilities {
        bounding: set.clone(),
        effective: set.clone(),
        permitted: set,
        inheritable: vec![],
        ambient: vec![],
    })
}

/// Parsed sets, ready to apply.
#[derive(Debug, Clone, Default)]
pub struct CapSets {
    pub bounding: CapsHashSet,
    pub effective: CapsHashSet,
    pub permitted: CapsHashSet,
    pub inheritable: CapsHashSet,
    pub ambient: CapsHashSet,
}

fn set_of(names: &[String]) -> Result<CapsHashSet> {
    // Unknown-to-this-kernel but valid names are ignored, as runc does.
    let mut s = CapsHashSet::new();
    for n in names {
        let c = parse(n)?;
        s.insert(c);
    }
    Ok(s)
}

impl CapSets {
    pub fn from_spec(c: &Capabilities) -> Result<CapSets> {
        Ok(CapSets {
            bounding: set_of(&c.bounding)?,
            effective: set_of(&c.effective)?,
            permitted: set_of(&c.permitted)?,
            inheritable: set_of(&c.inheritable)?,
            ambient: set_of(&c.ambient)?,
        })
    }

    /// Drop everything outside the bounding set (needs CAP_SETPCAP; do it before the uid change).
    pub fn apply_bounding(&self) -> std::io::Result<()> {
        let supported = caps::runtime::thread_all_supported();
        for c in supported {
            if !self.bounding.contains(&c) {
                super::sys::capbset_drop(c.index() as u32)?;
            }
        }
        Ok(())
    }

    /// Set inheritable, effective, permitted, then raise ambient (after the uid change).
    pub fn apply_process_sets(&self) -> std::result::Result<(), caps::errors::CapsError> {
        // Each call keeps the other sets, and effective must stay within permitted: shrink
        // effective before permitted. Inheritable goes first while permitted is still full.
        caps::set(None, CapSet::Inheritable, &self.inheritable)?;
        caps::set(None, CapSet::Effective, &self.effective)?;
        caps::set(None, CapSet::Permitted, &self.permitted)?;
        caps::clear(None, CapSet::Ambient)?;
        // As runc: an ambient cap that is not both permitted and inheritable cannot be
        // raised; that is the spec's inconsistency, not a reason to fail the container.
        for c in &self.ambient {
            if self.permitted.contains(c) && self.inheritable.contains(c) {
                caps::raise(None, CapSet::Ambient, *c)?;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_mask_matches_docker() {
        let mask: u64 = DOCKER_DEFAULT
            .iter()
            .map(|n| 1u64 << parse(n).unwrap().index())
            .sum();
        assert_eq!(mask, 0xa80425fb);
    }

    #[test]
    fn add_and_drop() {
        let s = docker_sets(
            false,
            &["sys_admin".into()],
            &["NET_RAW".into(), "CAP_MKNOD".into()],
        )
        .unwrap();
        assert!(s.bounding.contains(&"CAP_SYS_ADMIN".to_string()));
        assert!(!s.bounding.contains(&"CAP_NET_RAW".to_string()));
        assert_eq!(s.bounding.len(), 13);
        let none = docker_sets(false, &[], &["ALL".into()]).unwrap();
        assert!(none.effective.is_empty());
        assert!(matches!(
            docker_sets(false, &["CAP_BOGUS".into()], &[]),
            Err(RuntimeError::UnknownCapability { .. })
        ));
    }
}
