//! A small tmpfs for one test's store: a full disk on demand.

use std::path::PathBuf;
use std::process::Command;

/// A tmpfs of a given size, unmounted on drop.
pub struct SmallFs {
    _dir: tempfile::TempDir,
    pub mnt: PathBuf,
}

impl SmallFs {
    /// Mounted with `size` (tmpfs's `size=` option: `600k`, `64m`).
    pub fn new(size: &str) -> Self {
        let dir = crate::registry::tempdir();
        let mnt = dir.path().join("small");
        std::fs::create_dir(&mnt).unwrap();
        let st = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(&mnt)
            .status()
            .unwrap();
        assert!(st.success(), "mount tmpfs");
        Self { _dir: dir, mnt }
    }

    /// Room for more: the same mount, `size` now.
    pub fn resize(&self, size: &str) {
        let st = Command::new("mount")
            .args(["-o", &format!("remount,size={size}")])
            .arg(&self.mnt)
            .status()
            .unwrap();
        assert!(st.success(), "remount tmpfs");
    }

    /// Where the test's state root goes.
    pub fn root(&self) -> PathBuf {
        self.mnt.join("root")
    }

    /// Bytes in use on the tmpfs.
    pub fn used(&self) -> u64 {
        let out = Command::new("stat")
            .args(["-f", "-c", "%S %b %f"])
            .arg(&self.mnt)
            .output()
            .unwrap();
        let s = String::from_utf8_lossy(&out.stdout);
        let v: Vec<u64> = s.split_whitespace().map(|x| x.parse().unwrap()).collect();
        v[0] * (v[1] - v[2])
    }
}

impl Drop for SmallFs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.mnt).status();
    }
}
