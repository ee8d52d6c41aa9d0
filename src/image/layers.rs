//! Unpacked layers under `<root>/layers`, one directory per chain id (`layers/<hex>/`), shared
//! read-only by every image and container that stacks them. A layer is unpacked into a staging
//! directory (`layers/.tmp-…`) and renamed into place only after its digests were verified; its
//! record `layers/<hex>.json` is written last, so a directory without a record is not a layer.

use std::fs;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::digest::Digest;
use super::error::{ImageError, Result};
use super::store::write_atomic;

/// What berth records about an unpacked layer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LayerRecord {
    pub chain_id: Digest,
    pub diff_id: Digest,
    /// Bytes of file content in the layer.
    pub size: u64,
    pub entries: u64,
}

pub struct LayerStore {
    dir: PathBuf,
}

impl LayerStore {
    /// Opens `dir`, discarding staging directories a crash left behind.
    pub fn open(dir: &Path) -> Result<Self> {
        fs::create_dir_all(dir).map_err(|e| ImageError::io("create", dir, e))?;
        if let Ok(rd) = fs::read_dir(dir) {
            for e in rd.flatten() {
                let n = e.file_name();
                let n = n.to_string_lossy();
                // Staging and trash of a live process (another berth on this root) are its own.
                if super::store::is_stale_temp(&n, ".tmp-")
                    || super::store::is_stale_temp(&n, ".trash-")
                {
                    let _ = fs::remove_dir_all(e.path());
                }
            }
        }
        Ok(LayerStore {
            dir: dir.to_path_buf(),
        })
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The directory a chain id's layer lives in (the overlay lowerdir).
    pub fn path(&self, chain: &Digest) -> PathBuf {
        self.dir.join(chain.hex())
    }

    fn record_path(&self, chain: &Digest) -> PathBuf {
        self.dir.join(format!("{}.json", chain.hex()))
    }

    pub fn exists(&self, chain: &Digest) -> bool {
        self.record_path(chain).is_file() && self.path(chain).is_dir()
    }

    pub fn record(&self, chain: &Digest) -> Option<LayerRecord> {
        let data = fs::read(self.record_path(chain)).ok()?;
        serde_json::from_slice(&data).ok()
    }

    /// A fresh, empty staging directory for unpacking `chain`.
    pub fn staging(&self, chain: &Digest) -> Result<PathBuf> {
        let p = self.dir.join(format!(
            "{}-{}",
            super::store::owned_temp_name(".tmp-"),
            &chain.hex()[..12]
        ));
        fs::create_dir(&p).map_err(|e| ImageError::io("create", &p, e))?;
        Ok(p)
    }

    /// Moves a fully unpacked, verified staging directory into place and records it. If another
    /// pull got there first, the staging copy is discarded.
    pub fn commit(&self, staging: &Path, rec: &LayerRecord) -> Result<()> {
        let dest = self.path(&rec.chain_id);
        match fs::rename(staging, &dest) {
            Ok(()) => {}
            Err(_) if dest.is_dir() => self.discard(staging),
            Err(e) => return Err(ImageError::io("rename", &dest, e)),
        }
        let data = serde_json::to_vec(rec).map_err(|e| ImageError::json("layer record", e))?;
        write_atomic(&self.record_path(&rec.chain_id), &data)
    }

    /// Removes a staging or trashed directory (best effort; deletes are slow on some disks).
    pub fn discard(&self, dir: &Path) {
        let _ = fs::remove_dir_all(dir);
    }

    /// Removes a layer: the record first (so it stops being a layer), then the directory.
    /// Returns the content bytes freed.
    pub fn remove(&self, chain: &Digest) -> Result<u64> {
        let size = self.record(chain).map_or(0, |r| r.size);
        let rp = self.record_path(chain);
        match fs::remove_file(&rp) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(ImageError::io("remove", &rp, e)),
        }
        let p = self.path(chain);
        if p.exists() {
            let trash = self.dir.join(super::store::owned_temp_name(".trash-"));
            fs::rename(&p, &trash).map_err(|e| ImageError::io("rename", &p, e))?;
            self.discard(&trash);
        }
        Ok(size)
    }

    /// Every recorded layer.
    pub fn list(&self) -> Vec<LayerRecord> {
        let Ok(rd) = fs::read_dir(&self.dir) else {
            return Vec::new();
        };
        rd.flatten()
            .filter(|e| e.file_name().to_string_lossy().ends_with(".json"))
            .filter_map(|e| serde_json::from_slice(&fs::read(e.path()).ok()?).ok())
            .collect()
    }
}
