//! Compiled filters: installing them, and a byte form for caching.

use super::{Arch, BPF_MAX_LEN, KernelVersion, Profile, SeccompError};
use crate::security::caps::CapSet;
use seccompiler::{BpfProgram, sock_filter};

/// Compiled BPF programs, to be installed in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CompiledFilter {
    pub(super) programs: Vec<BpfProgram>,
}

impl CompiledFilter {
    const MAGIC: &'static [u8; 8] = b"BERTHSC1";

    pub fn programs(&self) -> &[BpfProgram] {
        &self.programs
    }

    /// Total BPF instructions (the kernel allows 4096 per program and charges memory per
    /// instruction).
    pub fn instruction_count(&self) -> usize {
        self.programs.iter().map(Vec::len).sum()
    }

    /// The programs as `libc::sock_filter`s (same layout), for a caller that installs them
    /// with its own `seccomp(2)` wrapper.
    pub fn libc_programs(&self) -> Vec<Vec<libc::sock_filter>> {
        self.programs
            .iter()
            .map(|p| {
                p.iter()
                    .map(|i| libc::sock_filter {
                        code: i.code,
                        jt: i.jt,
                        jf: i.jf,
                        k: i.k,
                    })
                    .collect()
            })
            .collect()
    }

    /// Whether there is nothing to install (a profile whose default is allow and that
    /// restricts nothing).
    pub fn is_empty(&self) -> bool {
        self.programs.is_empty()
    }

    /// A stable byte form (little-endian `struct sock_filter`s behind a small header), for a
    /// cache keyed by [`cache_key`].
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(16 + self.instruction_count() * 8);
        out.extend_from_slice(Self::MAGIC);
        out.extend_from_slice(&(self.programs.len() as u32).to_le_bytes());
        for p in &self.programs {
            out.extend_from_slice(&(p.len() as u32).to_le_bytes());
            for i in p {
                out.extend_from_slice(&i.code.to_le_bytes());
                out.push(i.jt);
                out.push(i.jf);
                out.extend_from_slice(&i.k.to_le_bytes());
            }
        }
        out
    }

    pub fn from_bytes(bytes: &[u8]) -> Result<Self, SeccompError> {
        let rest = bytes
            .strip_prefix(Self::MAGIC.as_slice())
            .ok_or(SeccompError::Corrupt("bad magic"))?;
        let mut r = Reader(rest);
        let count = r.u32()? as usize;
        if count > 64 {
            return Err(SeccompError::Corrupt("too many programs"));
        }
        let mut programs = Vec::with_capacity(count);
        for _ in 0..count {
            let len = r.u32()? as usize;
            if len == 0 || len > BPF_MAX_LEN {
                return Err(SeccompError::Corrupt("bad program length"));
            }
            let mut p = Vec::with_capacity(len);
            for _ in 0..len {
                let code = r.u16()?;
                let jt = r.u8()?;
                let jf = r.u8()?;
                let k = r.u32()?;
                p.push(sock_filter { code, jt, jf, k });
            }
            programs.push(p);
        }
        if !r.0.is_empty() {
            return Err(SeccompError::Corrupt("trailing bytes"));
        }
        Ok(Self { programs })
    }

    /// Install the programs on the calling thread, in order (its children inherit them).
    /// Sets `PR_SET_NO_NEW_PRIVS`. Allocates nothing (not even for its errors), so it may run
    /// between fork and exec.
    pub fn apply(&self) -> Result<(), SeccompError> {
        for p in &self.programs {
            seccompiler::apply_filter(p).map_err(|e| {
                SeccompError::Apply(match e {
                    seccompiler::Error::Prctl(io) | seccompiler::Error::Seccomp(io) => io,
                    // Only an empty program gets here, and compile never makes one.
                    _ => std::io::Error::from_raw_os_error(libc::EINVAL),
                })
            })?;
        }
        Ok(())
    }
}

struct Reader<'a>(&'a [u8]);

impl Reader<'_> {
    fn take<const N: usize>(&mut self) -> Result<[u8; N], SeccompError> {
        let (head, rest) = self
            .0
            .split_first_chunk::<N>()
            .ok_or(SeccompError::Corrupt("truncated"))?;
        self.0 = rest;
        Ok(*head)
    }
    fn u8(&mut self) -> Result<u8, SeccompError> {
        Ok(self.take::<1>()?[0])
    }
    fn u16(&mut self) -> Result<u16, SeccompError> {
        Ok(u16::from_le_bytes(self.take()?))
    }
    fn u32(&mut self) -> Result<u32, SeccompError> {
        Ok(u32::from_le_bytes(self.take()?))
    }
}

/// A key under which a compiled filter can be cached: it changes whenever the profile, the
/// architecture, the capability set, the kernel version (for `minKernel`) or this module's
/// compiler changes.
pub fn cache_key(profile: &Profile, arch: Arch, caps: CapSet, kernel: KernelVersion) -> String {
    use sha2::{Digest, Sha256};
    let mut h = Sha256::new();
    h.update(b"berth seccomp v1\0");
    h.update(env!("CARGO_PKG_VERSION").as_bytes());
    h.update(serde_json::to_vec(profile).unwrap_or_default());
    h.update(arch.name().as_bytes());
    h.update(caps.bits().to_le_bytes());
    h.update(kernel.0.to_le_bytes());
    h.update(kernel.1.to_le_bytes());
    hex::encode(h.finalize())
}
