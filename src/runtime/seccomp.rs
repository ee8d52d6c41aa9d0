//! Seccomp for container processes: which filter a process gets, and installing it.
//!
//! Profiles and the compiler are the security module's ([`crate::security::seccomp`]): the
//! default profile is Docker's as reviewed data, compiled for the process's capability set.
//!
//! A spec carries its profile twice:
//! - [`PROFILE_ANNOTATION`]: `default` (the shipped profile) or a profile in berth's format.
//!   This is what berth compiles. Berth's format says when an argument is a 32-bit `int`, so the
//!   filter compares only its low half, as the kernel uses it (`socket(AF_VSOCK | 1 << 32, …)`
//!   creates an AF_VSOCK socket, and a 64-bit "family != 40" check would let it through).
//! - `linux.seccomp`: the same profile in OCI/Docker form, resolved for the capability set, for
//!   other tools and runtimes. A bundle without the annotation (`berth runtime run` on a
//!   bundle someone else wrote) gets this one, compiled with 64-bit comparisons as libseccomp does.
//!
//! Installation happens in [`super::init::exec_process`]: without `no_new_privileges` the
//! filter goes in while the process still holds CAP_SYS_ADMIN, so setuid binaries keep
//! working in the container (Docker's default); with it, after `PR_SET_NO_NEW_PRIVS`.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, OnceLock};

use crate::security::caps::CapSet;
use crate::security::seccomp::{
    Arch, CompiledFilter, KernelVersion, Profile, SeccompError, default_cache_key, default_program,
};

use super::error::{Result, RuntimeError};
use super::spec::{Capabilities, Spec};

/// The spec annotation naming the profile berth compiles (see the module documentation).
pub const PROFILE_ANNOTATION: &str = "org.berth.seccomp.profile";

/// The annotation's value for the shipped default profile.
pub const DEFAULT: &str = "default";

fn err(e: SeccompError) -> RuntimeError {
    RuntimeError::Seccomp {
        reason: e.to_string(),
    }
}

/// The capability set seccomp's `includes`/`excludes` are evaluated against: the process's
/// effective set as configured (before a uid change clears it, as Docker does).
pub fn cap_set(caps: Option<&Capabilities>) -> Result<CapSet> {
    let Some(c) = caps else {
        return Ok(CapSet::empty());
    };
    CapSet::parse(&c.effective).map_err(|e| RuntimeError::UnknownCapability { name: e.0 })
}

/// `profile` in OCI/Docker form with only the groups that apply to `caps` on this machine
/// (no `includes`/`excludes` left, so a runtime without Docker's extensions reads it right).
pub fn oci_form(profile: &Profile, caps: CapSet) -> Result<serde_json::Value> {
    let arch = Arch::native().map_err(err)?;
    let kernel = KernelVersion::running();
    let mut p = profile.clone();
    p.comment.clear();
    p.syscalls.retain(|g| g.applies(arch, caps, kernel));
    for g in &mut p.syscalls {
        g.includes = Default::default();
        g.excludes = Default::default();
    }
    Ok(p.to_docker_json())
}

/// [`oci_form`] of the default profile, computed once per capability set.
pub fn default_oci_form(caps: CapSet) -> Result<serde_json::Value> {
    static CACHE: OnceLock<Mutex<HashMap<u64, serde_json::Value>>> = OnceLock::new();
    let cache = CACHE.get_or_init(Default::default);
    if let Some(v) = cache
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .get(&caps.bits())
    {
        return Ok(v.clone());
    }
    let v = oci_form(Profile::default_profile(), caps)?;
    cache
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .insert(caps.bits(), v.clone());
    Ok(v)
}

/// Where compiled default filters are kept, for a state root.
pub fn cache_dir(root: &Path) -> PathBuf {
    root.join("seccomp")
}

/// [`cache_dir`] of the state root a container directory (`ROOT/containers/ID`) is in.
pub fn cache_dir_of(container_dir: &Path) -> Option<PathBuf> {
    Some(cache_dir(container_dir.parent()?.parent()?))
}

/// The default profile compiled for `caps`: from `cache` when a valid entry is there, else
/// compiled (and written there for the next process: every container start is a new process,
/// and reading a few kilobytes costs far less than parsing and compiling the profile). The
/// cache is best-effort: a missing, unwritable or corrupt entry only means compiling.
pub fn default_filter(caps: CapSet, cache: Option<&Path>) -> Result<Arc<CompiledFilter>> {
    let Some(dir) = cache else {
        return default_program(caps).map_err(err);
    };
    let file = dir.join(default_cache_key(caps).map_err(err)?);
    if let Ok(bytes) = std::fs::read(&file)
        && let Ok(f) = CompiledFilter::from_bytes(&bytes)
    {
        return Ok(Arc::new(f));
    }
    let compiled = default_program(caps).map_err(err)?;
    let _ = store(dir, &file, &compiled.to_bytes());
    Ok(compiled)
}

/// Write `bytes` to `file` in `dir` (root-only) atomically.
fn store(dir: &Path, file: &Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::os::unix::fs::DirBuilderExt;
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)?;
    let tmp = file.with_extension(format!("tmp{}", std::process::id()));
    std::fs::write(&tmp, bytes)?;
    std::fs::rename(&tmp, file).inspect_err(|_| {
        let _ = std::fs::remove_file(&tmp);
    })
}

/// The compiled filter for a process of `spec` holding `caps`; `None` = unconfined. The
/// default profile's is read from (and kept in) `cache` when one is given.
pub fn filter_for(
    spec: &Spec,
    caps: CapSet,
    cache: Option<&Path>,
) -> Result<Option<Arc<CompiledFilter>>> {
    let arch = || Arch::native().map_err(err);
    let compiled = match spec.annotations.get(PROFILE_ANNOTATION).map(String::as_str) {
        Some(DEFAULT) => default_filter(caps, cache)?,
        Some(json) => {
            let p = Profile::parse(json, PROFILE_ANNOTATION).map_err(err)?;
            Arc::new(
                p.compile(arch()?, caps, KernelVersion::running())
                    .map_err(err)?,
            )
        }
        None => match &spec.linux().seccomp {
            None => return Ok(None),
            Some(v) => {
                let p = Profile::from_docker_json(&v.to_string(), "config.json linux.seccomp")
                    .map_err(err)?;
                Arc::new(
                    p.compile(arch()?, caps, KernelVersion::running())
                        .map_err(err)?,
                )
            }
        },
    };
    Ok((!compiled.is_empty()).then_some(compiled))
}

/// [`filter_for`] as kernel `sock_filter` programs, ready for [`install`].
pub fn programs_for(
    spec: &Spec,
    caps: Option<&Capabilities>,
    cache: Option<&Path>,
) -> Result<Option<Vec<Vec<libc::sock_filter>>>> {
    Ok(filter_for(spec, cap_set(caps)?, cache)?.map(|f| f.libc_programs()))
}

/// Install compiled programs on the calling thread, in order, with berth's own `seccomp(2)`
/// wrapper: unlike seccompiler's, it leaves `no_new_privs` alone (the caller must hold
/// CAP_SYS_ADMIN or have set it).
pub fn install(programs: &[Vec<libc::sock_filter>]) -> std::io::Result<()> {
    for p in programs {
        super::sys::seccomp_install(p)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec_with(annotation: Option<&str>, oci: Option<serde_json::Value>) -> Spec {
        let mut s: Spec = serde_json::from_str(
            r#"{"ociVersion":"1.2.0","process":{"args":["true"],"cwd":"/","user":{"uid":0,"gid":0}},
               "root":{"path":"rootfs"},"linux":{"namespaces":[{"type":"pid"}]}}"#,
        )
        .unwrap();
        if let Some(a) = annotation {
            s.annotations.insert(PROFILE_ANNOTATION.into(), a.into());
        }
        s.linux.as_mut().unwrap().seccomp = oci;
        s
    }

    #[test]
    fn the_annotation_names_the_default_profile() {
        let caps = CapSet::docker_default();
        let f = filter_for(&spec_with(Some(DEFAULT), None), caps, None)
            .unwrap()
            .unwrap();
        assert!(Arc::ptr_eq(&f, &default_program(caps).unwrap()));
        assert!(
            filter_for(&spec_with(None, None), caps, None)
                .unwrap()
                .is_none()
        );
    }

    #[test]
    fn an_oci_profile_without_the_annotation_is_compiled() {
        let oci = serde_json::json!({"defaultAction":"SCMP_ACT_ALLOW","syscalls":[
            {"names":["mkdirat"],"action":"SCMP_ACT_ERRNO","errnoRet":1}]});
        let f = filter_for(&spec_with(None, Some(oci)), CapSet::empty(), None)
            .unwrap()
            .unwrap();
        assert_eq!(f.programs().len(), 1);
    }

    #[test]
    fn a_bad_annotation_is_a_seccomp_error() {
        assert!(matches!(
            filter_for(&spec_with(Some("{"), None), CapSet::empty(), None),
            Err(RuntimeError::Seccomp { .. })
        ));
    }

    #[test]
    fn the_default_filter_is_cached_on_disk_and_a_bad_entry_is_replaced() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("seccomp");
        let caps = CapSet::docker_default();
        let compiled = default_filter(caps, Some(&dir)).unwrap();
        let file = dir.join(default_cache_key(caps).unwrap());
        assert_eq!(std::fs::read(&file).unwrap(), compiled.to_bytes());
        // Read back from the file (a different allocation), equal to the compiled one.
        let cached = default_filter(caps, Some(&dir)).unwrap();
        assert!(!Arc::ptr_eq(&cached, &compiled));
        assert_eq!(*cached, *compiled);
        // Another capability set has its own entry.
        let admin = CapSet::parse(&["SYS_ADMIN"]).unwrap();
        assert_ne!(
            default_cache_key(admin).unwrap(),
            default_cache_key(caps).unwrap()
        );
        // A corrupt entry is not used, and is rewritten.
        std::fs::write(&file, b"BERTHSC1junk").unwrap();
        assert_eq!(*default_filter(caps, Some(&dir)).unwrap(), *compiled);
        assert_eq!(std::fs::read(&file).unwrap(), compiled.to_bytes());
        assert_eq!(
            cache_dir_of(Path::new("/r/containers/abc")),
            Some(PathBuf::from("/r/seccomp"))
        );
    }

    #[test]
    fn the_oci_form_is_resolved_for_the_cap_set() {
        let plain = default_oci_form(CapSet::docker_default()).unwrap();
        let admin = default_oci_form(CapSet::parse(&["SYS_ADMIN"]).unwrap()).unwrap();
        let has =
            |v: &serde_json::Value, name: &str| {
                v["syscalls"].as_array().unwrap().iter().any(|g| {
                    g["action"] == "SCMP_ACT_ALLOW" && g["names"].to_string().contains(name)
                })
            };
        assert!(!has(&plain, "\"mount\""));
        assert!(has(&admin, "\"mount\""));
        assert!(
            plain["syscalls"]
                .as_array()
                .unwrap()
                .iter()
                .all(|g| g.get("includes").is_none() && g.get("excludes").is_none())
        );
    }
}
