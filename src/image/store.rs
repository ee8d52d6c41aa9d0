//! The content store: an OCI image layout under `<root>/images` (`oci-layout`, `index.json`,
//! `blobs/sha256/…`), so skopeo and umoci can read it.
//!
//! A blob is written to `ingest/` first, hashed on the way, and only renamed to its digest's
//! path once the digest is verified (after an fsync of the file; the directory is fsynced after
//! the rename). `index.json` is rewritten the same way (temp, fsync, rename) under a lock.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use super::digest::{Digest, Hasher};
use super::error::{ImageError, Result};
use super::layout::Index;

/// The `oci-layout` file content.
const OCI_LAYOUT: &str = r#"{"imageLayoutVersion":"1.0.0"}"#;

/// Blobs and the layout's `index.json`.
pub struct ContentStore {
    dir: PathBuf,
    index_lock: Mutex<()>,
}

/// Writes `data` to `path` atomically: a temp file in the same directory, fsync, rename,
/// fsync of the directory.
pub fn write_atomic(path: &Path, data: &[u8]) -> Result<()> {
    let dir = path.parent().unwrap_or(Path::new("."));
    let tmp = dir.join(format!(
        ".tmp-{}-{}",
        path.file_name().and_then(|n| n.to_str()).unwrap_or("file"),
        rand::random::<u64>()
    ));
    let res = (|| -> io::Result<()> {
        let mut f = OpenOptions::new().write(true).create_new(true).open(&tmp)?;
        f.write_all(data)?;
        f.sync_all()?;
        fs::rename(&tmp, path)?;
        File::open(dir)?.sync_all()
    })();
    if res.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    res.map_err(|e| ImageError::io("write", path, e))
}

/// A temp name owned by this process: `PREFIX<pid>-<random>`.
pub(crate) fn owned_temp_name(prefix: &str) -> String {
    format!(
        "{prefix}{}-{:016x}",
        std::process::id(),
        rand::random::<u64>()
    )
}

/// Whether a temp name made by [`owned_temp_name`] belongs to a process that is gone (or has no
/// owner recorded, as older berth versions named them).
pub(crate) fn is_stale_temp(name: &str, prefix: &str) -> bool {
    let Some(rest) = name.strip_prefix(prefix) else {
        return false;
    };
    match rest
        .split_once('-')
        .and_then(|(pid, _)| pid.parse::<i32>().ok())
    {
        Some(pid) => {
            pid != std::process::id() as i32
                && nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), None)
                    == Err(nix::errno::Errno::ESRCH)
        }
        None => true,
    }
}

impl ContentStore {
    /// Opens (creating if needed) the layout at `dir`. Leftover ingest files from a crash are
    /// removed: nothing refers to them.
    pub fn open(dir: &Path) -> Result<Self> {
        for d in [
            dir.to_path_buf(),
            dir.join("blobs/sha256"),
            dir.join("ingest"),
        ] {
            fs::create_dir_all(&d).map_err(|e| ImageError::io("create", &d, e))?;
        }
        let layout = dir.join("oci-layout");
        if !layout.exists() {
            write_atomic(&layout, OCI_LAYOUT.as_bytes())?;
        }
        let index = dir.join("index.json");
        if !index.exists() {
            let data = serde_json::to_vec(&Index::default())
                .map_err(|e| ImageError::json("index.json", e))?;
            write_atomic(&index, &data)?;
        }
        // Several berth processes share a store: only what a dead process left is garbage.
        if let Ok(rd) = fs::read_dir(dir.join("ingest")) {
            for e in rd.flatten() {
                if is_stale_temp(&e.file_name().to_string_lossy(), "") {
                    let _ = fs::remove_file(e.path());
                }
            }
        }
        Ok(ContentStore {
            dir: dir.to_path_buf(),
            index_lock: Mutex::new(()),
        })
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    pub fn blob_path(&self, d: &Digest) -> PathBuf {
        self.dir.join("blobs").join(d.algorithm()).join(d.hex())
    }

    pub fn has_blob(&self, d: &Digest) -> bool {
        self.blob_path(d).is_file()
    }

    /// Size of a stored blob.
    pub fn blob_size(&self, d: &Digest) -> Option<u64> {
        fs::metadata(self.blob_path(d)).ok().map(|m| m.len())
    }

    /// Reads a (small) blob whole and checks it still hashes to its name.
    pub fn read_blob(&self, d: &Digest) -> Result<Vec<u8>> {
        let p = self.blob_path(d);
        let data = fs::read(&p).map_err(|e| match e.kind() {
            io::ErrorKind::NotFound => ImageError::BlobMissing { digest: d.clone() },
            _ => ImageError::io("read", &p, e),
        })?;
        let actual = Digest::of(&data);
        if &actual != d {
            return Err(ImageError::DigestMismatch {
                what: format!("stored blob {}", p.display()),
                expected: d.clone(),
                actual,
            });
        }
        Ok(data)
    }

    pub fn open_blob(&self, d: &Digest) -> Result<File> {
        let p = self.blob_path(d);
        File::open(&p).map_err(|e| match e.kind() {
            io::ErrorKind::NotFound => ImageError::BlobMissing { digest: d.clone() },
            _ => ImageError::io("open", &p, e),
        })
    }

    /// Starts writing a new blob into `ingest/`.
    pub fn ingest(&self) -> Result<BlobWriter> {
        let tmp = self.dir.join("ingest").join(owned_temp_name(""));
        let file = OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&tmp)
            .map_err(|e| ImageError::io("create", &tmp, e))?;
        Ok(BlobWriter {
            file: Some(file),
            tmp,
            blobs: self.dir.join("blobs"),
            hasher: Hasher::new(),
            direct: None,
        })
    }

    /// Like `ingest`, for large blobs written once and rarely read back soon (layers): the file
    /// is written with `O_DIRECT` from an aligned buffer, which skips the page-cache copy and
    /// makes the final fsync cheap. Falls back to `ingest` where O_DIRECT is not supported.
    pub fn ingest_direct(&self) -> Result<BlobWriter> {
        use std::os::unix::fs::OpenOptionsExt;
        let tmp = self.dir.join("ingest").join(owned_temp_name(""));
        match OpenOptions::new()
            .write(true)
            .create_new(true)
            .custom_flags(libc::O_DIRECT)
            .open(&tmp)
        {
            Ok(file) => {
                let buf = vec![0u8; DIRECT_CHUNK + DIRECT_ALIGN];
                let off = buf.as_ptr().align_offset(DIRECT_ALIGN);
                Ok(BlobWriter {
                    file: Some(file),
                    tmp,
                    blobs: self.dir.join("blobs"),
                    hasher: Hasher::new(),
                    direct: Some(Direct { buf, off, len: 0 }),
                })
            }
            Err(_) => {
                let _ = fs::remove_file(&tmp);
                self.ingest()
            }
        }
    }

    /// Stores `data`, checking it against `expected` when given. Returns its digest.
    pub fn put(&self, data: &[u8], expected: Option<&Digest>) -> Result<Digest> {
        let actual = Digest::of(data);
        if let Some(e) = expected
            && *e != actual
        {
            return Err(ImageError::DigestMismatch {
                what: "blob".into(),
                expected: e.clone(),
                actual,
            });
        }
        if !self.has_blob(&actual) {
            let mut w = self.ingest()?;
            w.write_all(data)
                .map_err(|e| ImageError::io("write", &w.tmp, e))?;
            w.commit(Some(&actual), Some(data.len() as u64))?;
        }
        Ok(actual)
    }

    pub fn remove_blob(&self, d: &Digest) -> Result<u64> {
        let p = self.blob_path(d);
        match fs::metadata(&p) {
            Ok(m) => {
                fs::remove_file(&p).map_err(|e| ImageError::io("remove", &p, e))?;
                Ok(m.len())
            }
            Err(_) => Ok(0),
        }
    }

    /// Every sha256 blob in the store.
    pub fn list_blobs(&self) -> Result<Vec<Digest>> {
        let d = self.dir.join("blobs/sha256");
        let rd = fs::read_dir(&d).map_err(|e| ImageError::io("list", &d, e))?;
        Ok(rd
            .flatten()
            .filter_map(|e| {
                Digest::parse(&format!("sha256:{}", e.file_name().to_string_lossy())).ok()
            })
            .collect())
    }

    pub fn read_index(&self) -> Result<Index> {
        let p = self.dir.join("index.json");
        let data = fs::read(&p).map_err(|e| ImageError::io("read", &p, e))?;
        serde_json::from_slice(&data).map_err(|e| ImageError::json(p.display().to_string(), e))
    }

    /// Read-modify-write of `index.json` under the store's lock; `f`'s result is returned after
    /// the new index is durably in place.
    pub fn update_index<T>(&self, f: impl FnOnce(&mut Index) -> Result<T>) -> Result<T> {
        let _g = self.index_lock.lock().unwrap_or_else(|p| p.into_inner());
        let mut idx = self.read_index()?;
        let out = f(&mut idx)?;
        let data =
            serde_json::to_vec_pretty(&idx).map_err(|e| ImageError::json("index.json", e))?;
        write_atomic(&self.dir.join("index.json"), &data)?;
        Ok(out)
    }
}

/// A blob being written. Dropping it without `commit` removes the temp file.
pub struct BlobWriter {
    file: Option<File>,
    tmp: PathBuf,
    blobs: PathBuf,
    hasher: Hasher,
    direct: Option<Direct>,
}

const DIRECT_ALIGN: usize = 4096;
const DIRECT_CHUNK: usize = 1 << 20;

/// The aligned staging buffer of an O_DIRECT blob writer: `buf[off..off + len]` is pending.
struct Direct {
    buf: Vec<u8>,
    off: usize,
    len: usize,
}

impl BlobWriter {
    /// Writes out what the O_DIRECT buffer holds: whole blocks directly, then (at the end) the
    /// unaligned tail through the page cache.
    fn drain_direct(&mut self, end: bool) -> io::Result<()> {
        let (Some(d), Some(f)) = (self.direct.as_mut(), self.file.as_mut()) else {
            return Ok(());
        };
        let whole = d.len / DIRECT_ALIGN * DIRECT_ALIGN;
        if whole > 0 {
            f.write_all(&d.buf[d.off..d.off + whole])?;
        }
        let tail = d.len - whole;
        if end && tail > 0 {
            let fl =
                nix::fcntl::OFlag::from_bits_truncate(nix::fcntl::fcntl(&*f, nix::fcntl::F_GETFL)?);
            nix::fcntl::fcntl(&*f, nix::fcntl::F_SETFL(fl - nix::fcntl::OFlag::O_DIRECT))?;
            f.write_all(&d.buf[d.off + whole..d.off + d.len])?;
            d.len = 0;
        } else {
            d.buf.copy_within(d.off + whole..d.off + d.len, d.off);
            d.len = tail;
        }
        Ok(())
    }
}

impl BlobWriter {
    pub fn written(&self) -> u64 {
        self.hasher.len()
    }

    /// The digest of what was written so far.
    pub fn digest(&self) -> Digest {
        self.hasher.clone().finish()
    }

    /// Flushes the data to disk now (commit will find little left to do).
    pub fn sync(&self) -> io::Result<()> {
        self.file
            .as_ref()
            .expect("file present until commit")
            .sync_data()
    }

    /// Verifies the digest (and size) of what was written, fsyncs, and moves the blob into
    /// place. On mismatch the temp file is removed and nothing appears in the store.
    pub fn commit(mut self, expected: Option<&Digest>, size: Option<u64>) -> Result<Digest> {
        let hasher = std::mem::take(&mut self.hasher);
        let n = hasher.len();
        let actual = hasher.finish();
        if let Some(e) = expected
            && *e != actual
        {
            return Err(ImageError::DigestMismatch {
                what: "blob".into(),
                expected: e.clone(),
                actual,
            });
        }
        if let Some(s) = size
            && s != n
        {
            return Err(ImageError::SizeMismatch {
                digest: actual,
                expected: s,
                actual: n,
            });
        }
        self.drain_direct(true)
            .map_err(|e| ImageError::io("write", &self.tmp, e))?;
        let file = self.file.take().expect("file present until commit");
        file.sync_all()
            .map_err(|e| ImageError::io("fsync", &self.tmp, e))?;
        drop(file);
        let dir = self.blobs.join(actual.algorithm());
        let dest = dir.join(actual.hex());
        fs::rename(&self.tmp, &dest).map_err(|e| ImageError::io("rename", &dest, e))?;
        File::open(&dir)
            .and_then(|d| d.sync_all())
            .map_err(|e| ImageError::io("fsync", &dir, e))?;
        Ok(actual)
    }
}

impl Write for BlobWriter {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        if let Some(d) = &mut self.direct {
            let n = buf.len().min(DIRECT_CHUNK - d.len);
            d.buf[d.off + d.len..d.off + d.len + n].copy_from_slice(&buf[..n]);
            d.len += n;
            self.hasher.update(&buf[..n]);
            if d.len == DIRECT_CHUNK {
                self.drain_direct(false)?;
            }
            return Ok(n);
        }
        let n = self
            .file
            .as_mut()
            .expect("file present until commit")
            .write(buf)?;
        self.hasher.update(&buf[..n]);
        Ok(n)
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl Drop for BlobWriter {
    fn drop(&mut self) {
        if self.file.is_some() || self.tmp.exists() {
            let _ = fs::remove_file(&self.tmp);
        }
    }
}

#[cfg(test)]
mod temp_tests {
    use super::*;

    #[test]
    fn only_a_dead_owners_temp_files_are_stale() {
        let mine = owned_temp_name(".tmp-");
        assert!(!is_stale_temp(&mine, ".tmp-"));
        // pid 1 is always alive; a huge pid never is
        assert!(!is_stale_temp(".tmp-1-00ff", ".tmp-"));
        assert!(is_stale_temp(".tmp-2147483000-00ff", ".tmp-"));
        assert!(
            is_stale_temp(".tmp-legacyname", ".tmp-"),
            "no owner recorded: an older berth's"
        );
        assert!(!is_stale_temp("something-else", ".tmp-"));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blob_appears_only_when_verified() {
        let tmp = tempfile::tempdir().unwrap();
        let cs = ContentStore::open(&tmp.path().join("images")).unwrap();
        assert!(tmp.path().join("images/oci-layout").is_file());
        let good = Digest::of(b"hello");
        let mut w = cs.ingest().unwrap();
        w.write_all(b"hellX").unwrap();
        let err = w.commit(Some(&good), None).unwrap_err();
        assert!(matches!(err, ImageError::DigestMismatch { .. }), "{err}");
        assert!(!cs.has_blob(&good));
        assert_eq!(
            fs::read_dir(tmp.path().join("images/ingest"))
                .unwrap()
                .count(),
            0,
            "temp removed"
        );
        assert_eq!(cs.put(b"hello", Some(&good)).unwrap(), good);
        assert_eq!(cs.read_blob(&good).unwrap(), b"hello");
        assert!(cs.put(b"other", Some(&good)).is_err());
        // A blob corrupted on disk is caught on read.
        fs::write(cs.blob_path(&good), b"tampered").unwrap();
        assert!(matches!(
            cs.read_blob(&good),
            Err(ImageError::DigestMismatch { .. })
        ));
    }

    #[test]
    fn index_updates_are_durable_and_serialised() {
        let tmp = tempfile::tempdir().unwrap();
        let cs = ContentStore::open(tmp.path()).unwrap();
        let d = Digest::of(b"m");
        cs.update_index(|i| {
            i.manifests.push(super::super::layout::Descriptor::new(
                super::super::layout::OCI_MANIFEST,
                d.clone(),
                1,
            ));
            Ok(())
        })
        .unwrap();
        assert_eq!(cs.read_index().unwrap().manifests[0].digest, d);
        let leftovers: Vec<_> = fs::read_dir(tmp.path())
            .unwrap()
            .flatten()
            .filter(|e| e.file_name().to_string_lossy().starts_with(".tmp"))
            .collect();
        assert!(leftovers.is_empty());
    }
}

#[cfg(test)]
mod direct_tests {
    use super::*;

    #[test]
    fn direct_writer_keeps_every_byte_at_odd_sizes() {
        let tmp = tempfile::tempdir_in("/var/tmp").unwrap();
        let cs = ContentStore::open(tmp.path()).unwrap();
        for total in [
            0usize,
            1,
            4095,
            4096,
            4097,
            DIRECT_CHUNK,
            DIRECT_CHUNK + 1,
            3 * DIRECT_CHUNK + 123,
        ] {
            let data: Vec<u8> = (0..total).map(|i| (i * 7 % 251) as u8).collect();
            let mut w = cs.ingest_direct().unwrap();
            // Uneven chunks, as a network stream delivers them.
            let mut i = 0;
            let mut step = 1;
            while i < data.len() {
                let end = (i + step).min(data.len());
                w.write_all(&data[i..end]).unwrap();
                i = end;
                step = step * 3 % 70_001 + 1;
            }
            w.sync().unwrap();
            let d = w
                .commit(Some(&Digest::of(&data)), Some(total as u64))
                .unwrap();
            assert_eq!(fs::read(cs.blob_path(&d)).unwrap(), data, "size {total}");
        }
    }
}
