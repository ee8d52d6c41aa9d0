//! `berth system check`: what a crash (or a disk problem) left in the store, and the repair.
//!
//! Checked: every blob hashes to its name (streamed, so large layers do not fill memory);
//! every blob an image names is there; every layer directory has its record (a directory
//! without one is a half-finished unpack that no image uses); what temp files processes that
//! are gone left behind; unpacked layers no image references.

use super::ImageStore;
use super::digest::{Digest, chain_ids};
use super::error::{ImageError, Result};
use super::store::is_stale_temp;
use serde::Serialize;
use sha2::{Digest as _, Sha256};
use std::collections::HashSet;
use std::fs;
use std::io::Read;
use std::path::PathBuf;

/// What a check found (and, with repair, fixed).
#[derive(Debug, Default, Clone, Serialize)]
pub struct CheckReport {
    pub blobs_checked: usize,
    /// Blobs whose content does not match their digest (removed by a repair).
    pub corrupt_blobs: Vec<String>,
    /// Blobs an image needs that are not there: `image: digest`.
    pub missing_blobs: Vec<String>,
    /// Temp files and directories of processes that are gone (removed by a repair).
    pub stale_temp: Vec<PathBuf>,
    /// Layer directories without their record: an unpack cut short (removed by a repair).
    pub half_layers: Vec<PathBuf>,
    /// Unpacked layers no image uses. Reported, never removed here: a container may still
    /// stack one (`image prune` frees space).
    pub unreferenced_layers: Vec<String>,
    pub repaired: bool,
}

impl CheckReport {
    /// Whether the store is consistent: nothing corrupt or missing. Debris (temp files,
    /// half-unpacked or unused layers) is harmless to images and containers.
    pub fn consistent(&self) -> bool {
        self.corrupt_blobs.is_empty() && self.missing_blobs.is_empty()
    }
}

fn hash_file(p: &std::path::Path) -> std::io::Result<String> {
    let mut f = fs::File::open(p)?;
    let mut h = Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = f.read(&mut buf)?;
        if n == 0 {
            break;
        }
        h.update(&buf[..n]);
    }
    Ok(format!("sha256:{}", hex::encode(h.finalize())))
}

impl ImageStore {
    /// Check the store; with `repair`, remove what is corrupt or left over.
    pub fn check(&self, repair: bool) -> Result<CheckReport> {
        self.check_with(repair, true)
    }

    /// [`Self::check`] without hashing the blobs: crash debris (temp files, half-unpacked
    /// layers) and missing blobs only. For the clean-up at engine start, which must stay
    /// quick whatever the size of the store.
    pub fn check_debris(&self, repair: bool) -> Result<CheckReport> {
        self.check_with(repair, false)
    }

    fn check_with(&self, repair: bool, hash_blobs: bool) -> Result<CheckReport> {
        let mut r = CheckReport {
            repaired: repair,
            ..Default::default()
        };
        // Blobs against their names.
        let blobs = if hash_blobs {
            self.content.list_blobs()?
        } else {
            Vec::new()
        };
        for d in blobs {
            r.blobs_checked += 1;
            let p = self.content.blob_path(&d);
            match hash_file(&p) {
                Ok(actual) if actual == d.to_string() => {}
                _ => {
                    r.corrupt_blobs.push(d.to_string());
                    if repair {
                        let _ = fs::remove_file(&p);
                    }
                }
            }
        }
        // What images need.
        let mut used_chains: HashSet<String> = HashSet::new();
        for img in self.images()? {
            let name = img
                .names
                .first()
                .map(|n| n.to_string())
                .unwrap_or_else(|| img.id.to_string());
            let mut need: Vec<&Digest> = vec![&img.desc.digest, &img.manifest.config.digest];
            need.extend(img.manifest.layers.iter().map(|l| &l.digest));
            for d in need {
                if !self.content.has_blob(d) {
                    r.missing_blobs.push(format!("{name}: {d}"));
                }
            }
            match self.config_of(&img) {
                Ok(cfg) => used_chains.extend(
                    chain_ids(&cfg.rootfs.diff_ids)
                        .iter()
                        .map(|c| c.hex().to_owned()),
                ),
                Err(ImageError::BlobMissing { .. } | ImageError::DigestMismatch { .. }) => {}
                Err(e) => return Err(e),
            }
        }
        // Leftovers of processes that are gone.
        let ingest = self.content.dir().join("ingest");
        for e in fs::read_dir(&ingest).into_iter().flatten().flatten() {
            if is_stale_temp(&e.file_name().to_string_lossy(), "") {
                r.stale_temp.push(e.path());
            }
        }
        // Scratch directories of builds whose builder is gone (RUN steps' upper dirs).
        for e in fs::read_dir(self.root().join("build-tmp"))
            .into_iter()
            .flatten()
            .flatten()
        {
            if is_stale_temp(&e.file_name().to_string_lossy(), "") {
                r.stale_temp.push(e.path());
            }
        }
        let layers = self.layers.dir().to_owned();
        for e in fs::read_dir(&layers).into_iter().flatten().flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            let path = e.path();
            if name.starts_with('.') {
                if is_stale_temp(&name, ".tmp-") || is_stale_temp(&name, ".trash-") {
                    r.stale_temp.push(path);
                }
                continue;
            }
            if !path.is_dir() {
                continue;
            }
            // A live pull renames a layer into place, then writes its record: only a record-less
            // directory that has been so for a while is a cut-short unpack.
            let settled = e
                .metadata()
                .ok()
                .and_then(|m| m.modified().ok())
                .and_then(|t| t.elapsed().ok())
                .is_some_and(|age| age > std::time::Duration::from_secs(60));
            if !layers.join(format!("{name}.json")).is_file() {
                if settled {
                    r.half_layers.push(path);
                }
            } else if !used_chains.contains(&name) {
                r.unreferenced_layers.push(name);
            }
        }
        if repair {
            for p in r.stale_temp.iter().chain(&r.half_layers) {
                let _ = if p.is_dir() {
                    // A process killed between a mount and its unmount (the overlay probe, a
                    // build step) leaves a mount in there, which no removal gets past.
                    detach_mounts_under(p);
                    fs::remove_dir_all(p)
                } else {
                    fs::remove_file(p)
                };
            }
        }
        Ok(r)
    }
}

/// Detaches every mount at or below `dir`, deepest first.
fn detach_mounts_under(dir: &std::path::Path) {
    let Ok(mi) = fs::read_to_string("/proc/self/mountinfo") else {
        return;
    };
    let mut points: Vec<PathBuf> = mi
        .lines()
        .filter_map(|l| l.split(' ').nth(4))
        .map(|m| PathBuf::from(m.replace("\\040", " ")))
        .filter(|m| m.starts_with(dir))
        .collect();
    points.sort_by_key(|m| std::cmp::Reverse(m.as_os_str().len()));
    for m in points {
        let _ = nix::mount::umount2(&m, nix::mount::MntFlags::MNT_DETACH);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The clean-up at start removes debris and hashes nothing: a corrupt blob is the full
    /// check's to find.
    #[test]
    fn check_debris_removes_debris_and_leaves_blobs_unhashed() {
        let dir = tempfile::tempdir().unwrap();
        let store = ImageStore::open(dir.path()).unwrap();
        let blob = dir.path().join("images/blobs/sha256").join("ab".repeat(32));
        fs::write(&blob, b"not what the name says").unwrap();
        let gone = dir.path().join("layers/.tmp-2147483000-00ff");
        fs::create_dir_all(gone.join("sub")).unwrap();
        let report = store.check_debris(true).unwrap();
        assert_eq!(report.stale_temp, vec![gone.clone()]);
        assert!(!gone.exists());
        assert_eq!(report.blobs_checked, 0);
        assert!(report.corrupt_blobs.is_empty() && blob.exists());
        let full = store.check(false).unwrap();
        assert_eq!(
            full.corrupt_blobs,
            vec![format!("sha256:{}", "ab".repeat(32))]
        );
    }

    /// An overlay probe killed while its test mount was up: the repair unmounts, then removes.
    #[test]
    fn repair_removes_a_stale_temp_dir_with_a_mount_in_it() {
        if !nix::unistd::geteuid().is_root() {
            assert!(
                std::env::var_os("CI").is_none(),
                "CI runs the tests as root"
            );
            return;
        }
        let dir = tempfile::tempdir().unwrap();
        let store = ImageStore::open(dir.path()).unwrap();
        let gone = dir.path().join("layers/.tmp-2147483000-00ff-probe");
        let m = gone.join("m");
        fs::create_dir_all(m.join("inner")).unwrap();
        nix::mount::mount(
            Some("tmpfs"),
            &m,
            Some("tmpfs"),
            nix::mount::MsFlags::empty(),
            None::<&str>,
        )
        .unwrap();
        fs::create_dir(m.join("x")).unwrap();
        let report = store.check_debris(true).unwrap();
        assert_eq!(report.stale_temp, vec![gone.clone()]);
        let mounted = fs::read_to_string("/proc/self/mountinfo")
            .unwrap()
            .contains(&*m.to_string_lossy());
        if mounted {
            let _ = nix::mount::umount2(&m, nix::mount::MntFlags::MNT_DETACH);
        }
        assert!(!mounted, "the probe's mount is still there");
        assert!(!gone.exists());
    }
}
