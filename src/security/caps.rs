//! Linux capabilities of a container: names, Docker's default set, `--cap-add`/`--cap-drop`,
//! `--privileged`.
//!
//! A [`CapSet`] is a 64-bit mask indexed by capability number (`CAP_CHOWN` = bit 0 …
//! `CAP_CHECKPOINT_RESTORE` = bit 40), the same layout as the kernel's `CapEff` in
//! `/proc/PID/status`, so the runtime can hand it straight to `capset(2)` and the bounding-set
//! drops. Names are accepted with or without the `CAP_` prefix, in any case (`net_admin`,
//! `CAP_NET_ADMIN`); `ALL` means every capability this module knows.

use serde::{Deserialize, Serialize};
use std::fmt;

/// Every capability the kernel defines up to Linux 6.x, by number.
pub const KNOWN: &[&str] = &[
    "CAP_CHOWN",
    "CAP_DAC_OVERRIDE",
    "CAP_DAC_READ_SEARCH",
    "CAP_FOWNER",
    "CAP_FSETID",
    "CAP_KILL",
    "CAP_SETGID",
    "CAP_SETUID",
    "CAP_SETPCAP",
    "CAP_LINUX_IMMUTABLE",
    "CAP_NET_BIND_SERVICE",
    "CAP_NET_BROADCAST",
    "CAP_NET_ADMIN",
    "CAP_NET_RAW",
    "CAP_IPC_LOCK",
    "CAP_IPC_OWNER",
    "CAP_SYS_MODULE",
    "CAP_SYS_RAWIO",
    "CAP_SYS_CHROOT",
    "CAP_SYS_PTRACE",
    "CAP_SYS_PACCT",
    "CAP_SYS_ADMIN",
    "CAP_SYS_BOOT",
    "CAP_SYS_NICE",
    "CAP_SYS_RESOURCE",
    "CAP_SYS_TIME",
    "CAP_SYS_TTY_CONFIG",
    "CAP_MKNOD",
    "CAP_LEASE",
    "CAP_AUDIT_WRITE",
    "CAP_AUDIT_CONTROL",
    "CAP_SETFCAP",
    "CAP_MAC_OVERRIDE",
    "CAP_MAC_ADMIN",
    "CAP_SYSLOG",
    "CAP_WAKE_ALARM",
    "CAP_BLOCK_SUSPEND",
    "CAP_AUDIT_READ",
    "CAP_PERFMON",
    "CAP_BPF",
    "CAP_CHECKPOINT_RESTORE",
];

/// Docker's default capabilities (moby `daemon/pkg/oci/caps/defaults.go`): the bounding,
/// permitted and effective sets of a container that adds and drops nothing.
pub const DOCKER_DEFAULT: &[&str] = &[
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

/// A name that is not a capability.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown capability {0:?} (expected a name like NET_ADMIN or CAP_NET_ADMIN, or ALL)")]
pub struct UnknownCapability(pub String);

/// One capability.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Cap(u8);

impl Cap {
    /// Parse one name (`NET_ADMIN`, `cap_net_admin`). `ALL` is not a single capability: use
    /// [`CapName::parse`] where `ALL` is allowed.
    pub fn parse(name: &str) -> Result<Self, UnknownCapability> {
        let upper = name.trim().to_ascii_uppercase();
        let full = if upper.starts_with("CAP_") {
            upper
        } else {
            format!("CAP_{upper}")
        };
        KNOWN
            .iter()
            .position(|k| *k == full)
            .map(|i| Self(i as u8))
            .ok_or_else(|| UnknownCapability(name.to_owned()))
    }

    /// The kernel's number for it.
    pub fn number(self) -> u8 {
        self.0
    }

    /// `CAP_…`.
    pub fn name(self) -> &'static str {
        KNOWN[usize::from(self.0)]
    }

    pub fn from_number(n: u8) -> Option<Self> {
        (usize::from(n) < KNOWN.len()).then_some(Self(n))
    }
}

impl fmt::Display for Cap {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A capability name as a user writes it in `--cap-add`/`--cap-drop` or a policy: one
/// capability or `ALL`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CapName {
    All,
    One(Cap),
}

impl CapName {
    pub fn parse(name: &str) -> Result<Self, UnknownCapability> {
        if name.trim().eq_ignore_ascii_case("ALL") {
            Ok(Self::All)
        } else {
            Cap::parse(name).map(Self::One)
        }
    }

    /// The set this name stands for.
    pub fn set(self) -> CapSet {
        match self {
            Self::All => CapSet::all(),
            Self::One(c) => CapSet::from_caps([c]),
        }
    }
}

impl fmt::Display for CapName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::All => f.write_str("ALL"),
            Self::One(c) => c.fmt(f),
        }
    }
}

/// A set of capabilities as a bit mask (bit N = capability number N).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(transparent)]
pub struct CapSet(u64);

impl CapSet {
    pub const fn empty() -> Self {
        Self(0)
    }

    /// Every capability in [`KNOWN`] (what `--privileged` grants; the runtime still has to
    /// intersect it with what its own bounding set can give).
    pub const fn all() -> Self {
        Self((1u64 << KNOWN.len()) - 1)
    }

    /// Docker's 14 defaults.
    pub fn docker_default() -> Self {
        Self::from_caps(
            DOCKER_DEFAULT
                .iter()
                .map(|n| Cap::parse(n).expect("DOCKER_DEFAULT names are known")),
        )
    }

    pub const fn from_bits(bits: u64) -> Self {
        Self(bits & Self::all().0)
    }

    pub const fn bits(self) -> u64 {
        self.0
    }

    pub fn from_caps(caps: impl IntoIterator<Item = Cap>) -> Self {
        Self(caps.into_iter().fold(0, |m, c| m | (1 << c.0)))
    }

    /// Parse a list of names; `ALL` anywhere gives every capability.
    pub fn parse<S: AsRef<str>>(names: &[S]) -> Result<Self, UnknownCapability> {
        names.iter().try_fold(Self::empty(), |set, n| {
            Ok(set.union(CapName::parse(n.as_ref())?.set()))
        })
    }

    pub fn contains(self, cap: Cap) -> bool {
        self.0 & (1 << cap.0) != 0
    }

    pub fn insert(&mut self, cap: Cap) {
        self.0 |= 1 << cap.0;
    }

    pub fn remove(&mut self, cap: Cap) {
        self.0 &= !(1 << cap.0);
    }

    pub const fn union(self, other: Self) -> Self {
        Self(self.0 | other.0)
    }

    pub const fn intersection(self, other: Self) -> Self {
        Self(self.0 & other.0)
    }

    pub const fn difference(self, other: Self) -> Self {
        Self(self.0 & !other.0)
    }

    pub const fn is_empty(self) -> bool {
        self.0 == 0
    }

    pub const fn is_subset(self, other: Self) -> bool {
        self.0 & !other.0 == 0
    }

    pub fn len(self) -> usize {
        self.0.count_ones() as usize
    }

    /// The capabilities in the set, lowest number first.
    pub fn iter(self) -> impl Iterator<Item = Cap> {
        (0..KNOWN.len() as u8)
            .map(Cap)
            .filter(move |c| self.contains(*c))
    }

    /// `CAP_…` names, lowest number first (the OCI spec's form).
    pub fn names(self) -> Vec<&'static str> {
        self.iter().map(Cap::name).collect()
    }

    /// A container's capabilities, the way Docker computes them: `--privileged` gets every
    /// capability (adds and drops are ignored, as in Docker); otherwise `--cap-add ALL` gives
    /// every capability except the dropped ones, `--cap-drop ALL` keeps only the added ones,
    /// and anything else drops from the defaults and then adds.
    pub fn for_container<A: AsRef<str>, D: AsRef<str>>(
        add: &[A],
        drop: &[D],
        privileged: bool,
    ) -> Result<Self, UnknownCapability> {
        // Parse even when privileged, so a typo is reported either way.
        let add_names: Vec<CapName> = add
            .iter()
            .map(|n| CapName::parse(n.as_ref()))
            .collect::<Result<_, _>>()?;
        let drop_names: Vec<CapName> = drop
            .iter()
            .map(|n| CapName::parse(n.as_ref()))
            .collect::<Result<_, _>>()?;
        if privileged {
            return Ok(Self::all());
        }
        let union = |names: &[CapName]| {
            names
                .iter()
                .fold(Self::empty(), |set, n| set.union(n.set()))
        };
        let (adds, drops) = (union(&add_names), union(&drop_names));
        Ok(if add_names.contains(&CapName::All) {
            Self::all().difference(drops)
        } else if drop_names.contains(&CapName::All) {
            adds
        } else {
            Self::docker_default().difference(drops).union(adds)
        })
    }
}

impl fmt::Display for CapSet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.names().join(","))
    }
}

impl FromIterator<Cap> for CapSet {
    fn from_iter<I: IntoIterator<Item = Cap>>(iter: I) -> Self {
        Self::from_caps(iter)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn docker_default_mask_matches_real_dockerd() {
        // CapEff of a default container under dockerd, read from /proc/1/status.
        assert_eq!(CapSet::docker_default().bits(), 0xa804_25fb);
        assert_eq!(CapSet::docker_default().len(), 14);
    }

    #[test]
    fn names_parse_with_or_without_prefix_in_any_case() {
        let a = Cap::parse("NET_ADMIN").unwrap();
        assert_eq!(a, Cap::parse("CAP_NET_ADMIN").unwrap());
        assert_eq!(a, Cap::parse("cap_net_admin").unwrap());
        assert_eq!(a.number(), 12);
        assert_eq!(a.name(), "CAP_NET_ADMIN");
        assert_eq!(Cap::parse("CAP_CHECKPOINT_RESTORE").unwrap().number(), 40);
        assert_eq!(
            Cap::parse("NET_ADMN").unwrap_err(),
            UnknownCapability("NET_ADMN".into())
        );
        assert!(Cap::parse("ALL").is_err());
        assert_eq!(CapName::parse("all").unwrap(), CapName::All);
        assert_eq!(CapSet::parse(&["ALL"]).unwrap(), CapSet::all());
        assert_eq!(CapSet::all().len(), KNOWN.len());
    }

    #[test]
    fn add_and_drop_follow_docker() {
        let def = CapSet::docker_default();
        let none: &[&str] = &[];
        assert_eq!(CapSet::for_container(none, none, false).unwrap(), def);

        let s = CapSet::for_container(&["NET_ADMIN"], &["cap_mknod"], false).unwrap();
        assert!(s.contains(Cap::parse("NET_ADMIN").unwrap()));
        assert!(!s.contains(Cap::parse("MKNOD").unwrap()));
        assert_eq!(s.len(), 14);

        // drop ALL keeps only the added ones
        let s = CapSet::for_container(&["CHOWN"], &["ALL"], false).unwrap();
        assert_eq!(s.names(), vec!["CAP_CHOWN"]);
        // add ALL gives everything but the dropped ones
        let s = CapSet::for_container(&["ALL"], &["SYS_ADMIN"], false).unwrap();
        assert_eq!(s.len(), KNOWN.len() - 1);
        assert!(!s.contains(Cap::parse("SYS_ADMIN").unwrap()));

        // privileged: everything, whatever is dropped
        assert_eq!(
            CapSet::for_container(none, &["ALL"], true).unwrap(),
            CapSet::all()
        );
        // a typo is an error even when privileged
        assert!(CapSet::for_container(&["SYS_ADMINN"], none, true).is_err());
    }

    #[test]
    fn set_operations() {
        let a = CapSet::parse(&["CHOWN", "KILL"]).unwrap();
        let b = CapSet::parse(&["KILL"]).unwrap();
        assert!(b.is_subset(a) && !a.is_subset(b));
        assert_eq!(a.difference(b).names(), vec!["CAP_CHOWN"]);
        assert_eq!(a.to_string(), "CAP_CHOWN,CAP_KILL");
        assert_eq!(CapSet::from_bits(u64::MAX), CapSet::all());
    }
}
