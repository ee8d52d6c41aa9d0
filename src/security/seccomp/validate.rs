//! The strict checks of reviewed profile data.

use super::{Arch, KernelVersion, Profile, SeccompError, SyscallGroup};
use crate::security::caps::Cap;

impl Profile {
    /// The strict checks the shipped profile must pass (the reviewed-data test): every name
    /// is a syscall of x86_64 or aarch64 (of each architecture the group is limited to),
    /// capabilities and architectures are known, argument conditions are well-formed, every
    /// group has a reason, nothing is listed twice, and no group entry is redundant (another
    /// group with the same action already matches whenever it would).
    pub fn validate(&self) -> Result<(), SeccompError> {
        let mut problems = Vec::new();
        for (i, g) in self.syscalls.iter().enumerate() {
            let at = format!("group {i} ({})", g.names.first().map_or("", |n| n.as_str()));
            if g.names.is_empty() {
                problems.push(format!("{at}: no syscall names"));
            }
            if g.reason.trim().is_empty() {
                problems.push(format!("{at}: no reason"));
            }
            if g.action == self.default_action {
                problems.push(format!(
                    "{at}: action {:?} is the default action, so the group changes nothing",
                    g.action
                ));
            }
            for a in [&g.includes, &g.excludes] {
                for c in &a.caps {
                    if Cap::parse(c).is_err() {
                        problems.push(format!("{at}: unknown capability {c:?}"));
                    }
                }
                for arch in &a.arches {
                    if Arch::from_name(arch).is_none() {
                        problems.push(format!("{at}: unknown architecture {arch:?}"));
                    }
                }
                if let Some(m) = &a.min_kernel
                    && KernelVersion::parse(m).is_none()
                {
                    problems.push(format!("{at}: bad minKernel {m:?}"));
                }
            }
            if g.excludes.min_kernel.is_some() {
                problems.push(format!("{at}: minKernel only makes sense in includes"));
            }
            for c in &g.args {
                if let Err(e) = c.seccompiler() {
                    problems.push(format!("{at}: argument condition {c:?}: {e}"));
                }
            }
            let arches: Vec<Arch> = if g.includes.arches.is_empty() {
                Arch::ALL.to_vec()
            } else {
                g.includes
                    .arches
                    .iter()
                    .filter_map(|a| Arch::from_name(a))
                    .collect()
            };
            let mut seen = std::collections::HashSet::new();
            for n in &g.names {
                if !seen.insert(n) {
                    problems.push(format!("{at}: {n} is listed twice"));
                }
                let known: Vec<Arch> = arches
                    .iter()
                    .copied()
                    .filter(|a| a.syscall(n).is_some())
                    .collect();
                if known.is_empty() {
                    problems.push(format!(
                        "{at}: unknown syscall {n:?} (not a syscall of {})",
                        arches
                            .iter()
                            .map(|a| a.name())
                            .collect::<Vec<_>>()
                            .join(" or ")
                    ));
                }
            }
        }
        // Redundant and duplicate entries across groups.
        for (j, later) in self.syscalls.iter().enumerate() {
            for (i, earlier) in self.syscalls.iter().enumerate() {
                if i == j || earlier.action != later.action || !covers(earlier, later) {
                    continue;
                }
                // Two identical groups cover each other: report the pair once.
                if covers(later, earlier) && i > j {
                    continue;
                }
                for n in later.names.iter().filter(|n| earlier.names.contains(n)) {
                    problems.push(format!(
                        "group {j}: {n} is redundant: group {i} already {:?}s it whenever group \
                         {j} would",
                        earlier.action
                    ));
                }
            }
        }
        if problems.is_empty() {
            Ok(())
        } else {
            Err(SeccompError::Invalid(problems))
        }
    }
}

/// Whether group `a` matches every syscall invocation `b` matches (ignoring names): its
/// argument conditions are a subset of `b`'s and it applies to every container `b` applies to.
fn covers(a: &SyscallGroup, b: &SyscallGroup) -> bool {
    let subset = |x: &[String], y: &[String]| x.iter().all(|v| y.contains(v));
    let arches_cover = a.includes.arches.is_empty()
        || (!b.includes.arches.is_empty() && subset(&b.includes.arches, &a.includes.arches));
    let kernel_covers = match (&a.includes.min_kernel, &b.includes.min_kernel) {
        (None, _) => true,
        (Some(_), None) => false,
        (Some(x), Some(y)) => KernelVersion::parse(x) <= KernelVersion::parse(y),
    };
    a.args.iter().all(|c| b.args.contains(c))
        && subset(&a.includes.caps, &b.includes.caps)
        && subset(&a.excludes.caps, &b.excludes.caps)
        && subset(&a.excludes.arches, &b.excludes.arches)
        && arches_cover
        && kernel_covers
}
