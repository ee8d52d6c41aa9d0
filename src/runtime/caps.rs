//! Capability sets of a container's process: computing them (the security module's rules:
//! Docker's 14 defaults, `--cap-add`/`--cap-drop`, `--privileged`) and applying them.

use caps::{CapSet, Capability, CapsHashSet};

use super::error::{Result, RuntimeError};
use super::spec::Capabilities;
use crate::security::caps::{Cap, CapSet as Caps};

/// Parse a capability name; accepts `CAP_X`, `X`, any case.
pub fn parse(name: &str) -> Result<Capability> {
    let unknown = || RuntimeError::UnknownCapability { name: name.into() };
    let cap = Cap::parse(name).map_err(|_| unknown())?;
    cap.name().parse::<Capability>().map_err(|_| unknown())
}

/// Every capability this process can hand out: those in its own bounding set (a host that
/// lacks one, e.g. CAP_SYS_RESOURCE here, cannot give it to a privileged container).
pub fn grantable() -> Caps {
    let bounding = caps::read(None, CapSet::Bounding).unwrap_or_default();
    bounding
        .iter()
        .filter_map(|c| Cap::parse(&c.to_string()).ok())
        .collect()
}

/// The container's sets from Docker-style options ([`Caps::for_container`]). What comes from
/// `--privileged` or `--cap-add ALL` is limited to [`grantable`]; a capability named
/// explicitly is kept, so asking for one the host cannot give fails at start.
pub fn docker_sets(privileged: bool, add: &[String], drop: &[String]) -> Result<Capabilities> {
    let mut set = Caps::for_container(add, drop, privileged)
        .map_err(|e| RuntimeError::UnknownCapability { name: e.0 })?;
    let add_all = add.iter().any(|a| a.trim().eq_ignore_ascii_case("all"));
    if privileged {
        set = set.intersection(grantable());
    } else if add_all {
        let named: Vec<&String> = add
            .iter()
            .filter(|a| !a.trim().eq_ignore_ascii_case("all"))
            .collect();
        let named =
            Caps::parse(&named).map_err(|e| RuntimeError::UnknownCapability { name: e.0 })?;
        set = set.intersection(grantable().union(named));
    }
    let names: Vec<String> = set.names().iter().map(|s| s.to_string()).collect();
    Ok(Capabilities {
        bounding: names.clone(),
        effective: names.clone(),
        permitted: names,
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
        let s = docker_sets(false, &[], &[]).unwrap();
        let mask: u64 = s
            .effective
            .iter()
            .map(|n| 1u64 << parse(n).unwrap().index())
            .sum();
        assert_eq!(mask, 0xa80425fb);
    }

    #[test]
    fn privileged_gets_what_the_host_can_give() {
        let s = docker_sets(true, &[], &[]).unwrap();
        let got: Caps = Caps::parse(&s.bounding).unwrap();
        assert_eq!(got, grantable().intersection(Caps::all()));
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
