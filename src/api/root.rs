//! The state root: one directory that holds every image, container and log of an engine.
//!
//! Several berth processes may use one root at once (a console, a one-shot command, `berth
//! serve`). Changes take [`StateRoot::lock`], an exclusive `flock` on `root/lock`.

use nix::fcntl::{Flock, FlockArg};
use std::fs::{self, File, OpenOptions};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

/// Where the engine keeps its state.
#[derive(Debug, Clone)]
pub struct StateRoot {
    path: PathBuf,
}

/// Held while a change to shared state is made.
pub struct RootLock(#[allow(dead_code)] Flock<File>);

impl StateRoot {
    /// The default: `$BERTH_ROOT`, else `/var/lib/berth` for root, else
    /// `$XDG_DATA_HOME/berth` (or `~/.local/share/berth`).
    pub fn default_path() -> PathBuf {
        if let Some(p) = std::env::var_os("BERTH_ROOT").filter(|p| !p.is_empty()) {
            return PathBuf::from(p);
        }
        if nix::unistd::geteuid().is_root() {
            return PathBuf::from("/var/lib/berth");
        }
        let data = std::env::var_os("XDG_DATA_HOME")
            .map(PathBuf::from)
            .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".local/share")))
            .unwrap_or_else(|| PathBuf::from("/tmp"));
        data.join("berth")
    }

    /// Open (creating with mode 0700 when missing) the root directory.
    pub fn open(path: impl Into<PathBuf>) -> std::io::Result<Self> {
        let path = path.into();
        fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(&path)?;
        // An existing directory keeps its contents but not looser permissions (CVE-2021-41091).
        let meta = fs::metadata(&path)?;
        if meta.permissions().mode() & 0o077 != 0 {
            fs::set_permissions(&path, fs::Permissions::from_mode(0o700))?;
        }
        let path = fs::canonicalize(&path)?;
        for sub in ["containers", "images", "layers", "volumes"] {
            fs::DirBuilder::new()
                .recursive(true)
                .mode(0o700)
                .create(path.join(sub))?;
        }
        Ok(Self { path })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn events_path(&self) -> PathBuf {
        self.path.join("events.jsonl")
    }

    pub fn audit_path(&self) -> PathBuf {
        self.path.join("audit.log")
    }

    /// Take the root's exclusive change lock, blocking until it is free.
    pub fn lock(&self) -> std::io::Result<RootLock> {
        let f = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .mode(0o600)
            .open(self.path.join("lock"))?;
        Flock::lock(f, FlockArg::LockExclusive)
            .map(RootLock)
            .map_err(|(_, e)| std::io::Error::from(e))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn creates_private_tree() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("r");
        fs::create_dir(&p).unwrap();
        fs::set_permissions(&p, fs::Permissions::from_mode(0o755)).unwrap();
        let root = StateRoot::open(&p).unwrap();
        assert_eq!(
            fs::metadata(root.path()).unwrap().permissions().mode() & 0o777,
            0o700
        );
        assert!(root.path().join("containers").is_dir());
        let _l = root.lock().unwrap();
    }
}
