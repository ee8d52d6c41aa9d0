//! Layer tars: the diff of a RUN step's overlay upper dir (whiteouts for deletions), and the
//! files of a COPY/ADD step, written straight into the content store as gzip blobs. Also a
//! read-only merged view of a stack of unpacked layer directories (overlay rules, in user
//! space), used for `COPY --from`, existing parent directories and `/etc/passwd`.

use std::collections::{BTreeMap, HashMap};
use std::fs;
use std::io::{self, Read};
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};

use crate::image::digest::{Digest, HashingWriter};
use crate::image::error::{ImageError, Result};
use crate::image::store::{BlobWriter, ContentStore};
use crate::image::unpack::{OPAQUE_MARKER, OVERLAY_OPAQUE_XATTR, WHITEOUT_PREFIX};

/// A layer written to the store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LayerBlob {
    /// The gzip blob.
    pub digest: Digest,
    /// Compressed size.
    pub size: u64,
    /// sha256 of the uncompressed tar.
    pub diff_id: Digest,
    /// Entries written (0 = the step changed nothing).
    pub entries: usize,
}

/// Owner and mode overrides for entries (COPY --chown/--chmod).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Owner {
    pub uid: Option<u32>,
    pub gid: Option<u32>,
    pub mode: Option<u32>,
}

/// A tar stream into a new gzip blob.
pub struct LayerWriter {
    tar: tar::Builder<HashingWriter<flate2::write::GzEncoder<BlobWriter>>>,
    links: HashMap<(u64, u64), String>,
    entries: usize,
    what: String,
}

fn io_err(what: &'static str, path: impl AsRef<Path>, e: io::Error) -> ImageError {
    ImageError::io(what, path.as_ref(), e)
}

impl LayerWriter {
    pub fn new(store: &ContentStore, what: &str) -> Result<Self> {
        let blob = store.ingest()?;
        let gz = flate2::write::GzEncoder::new(blob, flate2::Compression::fast());
        let mut tar = tar::Builder::new(HashingWriter::new(gz));
        tar.mode(tar::HeaderMode::Complete);
        Ok(LayerWriter {
            tar,
            links: HashMap::new(),
            entries: 0,
            what: what.to_owned(),
        })
    }

    fn header(meta: &fs::Metadata, owner: Owner) -> tar::Header {
        let mut h = tar::Header::new_gnu();
        h.set_mode(owner.mode.unwrap_or(meta.mode() & 0o7777));
        h.set_uid(owner.uid.unwrap_or(meta.uid()) as u64);
        h.set_gid(owner.gid.unwrap_or(meta.gid()) as u64);
        h.set_mtime(meta.mtime().max(0) as u64);
        h.set_size(0);
        h
    }

    /// Adds the file system object at `src` as `name` (relative, no leading `/`).
    pub fn add(&mut self, name: &str, src: &Path, owner: Owner) -> Result<()> {
        let meta = fs::symlink_metadata(src).map_err(|e| io_err("stat", src, e))?;
        let ft = meta.file_type();
        let mut h = Self::header(&meta, owner);
        let name = name.trim_start_matches('/');
        let w = |e: io::Error| io_err("write layer", &self.what, e);
        if ft.is_dir() {
            h.set_entry_type(tar::EntryType::Directory);
            let n = format!("{}/", name.trim_end_matches('/'));
            self.tar.append_data(&mut h, &n, io::empty()).map_err(w)?;
        } else if ft.is_symlink() {
            let target = fs::read_link(src).map_err(|e| io_err("readlink", src, e))?;
            h.set_entry_type(tar::EntryType::Symlink);
            self.tar.append_link(&mut h, name, &target).map_err(w)?;
        } else if ft.is_file() {
            let key = (meta.dev(), meta.ino());
            if meta.nlink() > 1 {
                if let Some(first) = self.links.get(&key).cloned() {
                    h.set_entry_type(tar::EntryType::Link);
                    self.tar.append_link(&mut h, name, &first).map_err(w)?;
                    self.entries += 1;
                    return Ok(());
                }
                self.links.insert(key, name.to_owned());
            }
            h.set_entry_type(tar::EntryType::Regular);
            h.set_size(meta.len());
            let f = fs::File::open(src).map_err(|e| io_err("open", src, e))?;
            self.tar
                .append_data(&mut h, name, f.take(meta.len()))
                .map_err(w)?;
        } else if ft.is_char_device() || ft.is_block_device() || ft.is_fifo() {
            h.set_entry_type(if ft.is_char_device() {
                tar::EntryType::Char
            } else if ft.is_block_device() {
                tar::EntryType::Block
            } else {
                tar::EntryType::Fifo
            });
            let rdev = meta.rdev();
            h.set_device_major(nix::sys::stat::major(rdev) as u32)
                .map_err(w)?;
            h.set_device_minor(nix::sys::stat::minor(rdev) as u32)
                .map_err(w)?;
            self.tar.append_data(&mut h, name, io::empty()).map_err(w)?;
        } else {
            return Ok(()); // sockets are not content
        }
        self.entries += 1;
        Ok(())
    }

    /// Adds a new directory (0755, root-owned).
    pub fn add_dir(&mut self, name: &str) -> Result<()> {
        let mut h = tar::Header::new_gnu();
        h.set_entry_type(tar::EntryType::Directory);
        h.set_mode(0o755);
        h.set_mtime(0);
        h.set_size(0);
        let n = format!("{}/", name.trim_matches('/'));
        self.tar
            .append_data(&mut h, &n, io::empty())
            .map_err(|e| io_err("write layer", &self.what, e))?;
        self.entries += 1;
        Ok(())
    }

    /// Adds a regular file with `data`.
    pub fn add_bytes(&mut self, name: &str, data: &[u8], mode: u32) -> Result<()> {
        let mut h = tar::Header::new_gnu();
        h.set_entry_type(tar::EntryType::Regular);
        h.set_mode(mode);
        h.set_size(data.len() as u64);
        h.set_mtime(0);
        self.tar
            .append_data(&mut h, name.trim_start_matches('/'), data)
            .map_err(|e| io_err("write layer", &self.what, e))?;
        self.entries += 1;
        Ok(())
    }

    /// Adds every entry of a (local) tar archive under `dest` (ADD of an archive).
    pub fn add_archive(&mut self, dest: &str, archive: &Path, owner: Owner) -> Result<()> {
        let f = fs::File::open(archive).map_err(|e| io_err("open", archive, e))?;
        let mut r = io::BufReader::new(f);
        let magic = io::BufRead::fill_buf(&mut r).map_err(|e| io_err("read", archive, e))?;
        let dec: Box<dyn Read> = if magic.starts_with(&[0x1f, 0x8b]) {
            Box::new(flate2::read::MultiGzDecoder::new(r))
        } else if magic.starts_with(&[0x28, 0xb5, 0x2f, 0xfd]) {
            Box::new(zstd::Decoder::new(r).map_err(|e| io_err("zstd", archive, e))?)
        } else {
            Box::new(r)
        };
        let mut ar = tar::Archive::new(dec);
        let bad = |e: io::Error| io_err("read archive", archive, e);
        for entry in ar.entries().map_err(bad)? {
            let mut entry = entry.map_err(bad)?;
            let raw = entry.path_bytes().into_owned();
            let comps = crate::image::unpack::clean_components(&raw).map_err(|reason| {
                ImageError::io(
                    "read archive",
                    archive,
                    io::Error::new(io::ErrorKind::InvalidData, reason),
                )
            })?;
            if comps.is_empty() {
                continue;
            }
            let rel: PathBuf = comps.iter().collect();
            let name = join(dest, &rel.to_string_lossy());
            let mut h = entry.header().clone();
            if let Some(u) = owner.uid {
                h.set_uid(u as u64);
            }
            if let Some(g) = owner.gid {
                h.set_gid(g as u64);
            }
            let w = |e: io::Error| io_err("write layer", &self.what, e);
            match h.entry_type() {
                tar::EntryType::Symlink | tar::EntryType::Link => {
                    let target = entry
                        .link_name()
                        .map_err(bad)?
                        .map(|t| t.into_owned())
                        .unwrap_or_default();
                    let target = if h.entry_type() == tar::EntryType::Link {
                        PathBuf::from(join(dest, &target.to_string_lossy()))
                    } else {
                        target
                    };
                    self.tar.append_link(&mut h, &name, &target).map_err(w)?;
                }
                tar::EntryType::Directory => {
                    self.tar
                        .append_data(&mut h, format!("{name}/"), io::empty())
                        .map_err(w)?;
                }
                tar::EntryType::XGlobalHeader | tar::EntryType::XHeader => continue,
                _ => {
                    self.tar.append_data(&mut h, &name, &mut entry).map_err(w)?;
                }
            }
            self.entries += 1;
        }
        Ok(())
    }

    /// Adds a whiteout that deletes `name` in lower layers.
    fn whiteout(&mut self, name: &str) -> Result<()> {
        let (dir, base) = match name.rsplit_once('/') {
            Some((d, b)) => (format!("{d}/"), b),
            None => (String::new(), name),
        };
        self.add_bytes(&format!("{dir}{WHITEOUT_PREFIX}{base}"), &[], 0o644)
    }

    /// Finishes the tar and the blob.
    pub fn finish(self) -> Result<LayerBlob> {
        let what = self.what.clone();
        let hashing = self
            .tar
            .into_inner()
            .map_err(|e| io_err("write layer", &what, e))?;
        let (gz, diff_id, _) = hashing.finish();
        let blob = gz.finish().map_err(|e| io_err("write layer", &what, e))?;
        let size = blob.written();
        let digest = blob.commit(None, None)?;
        Ok(LayerBlob {
            digest,
            size,
            diff_id,
            entries: self.entries,
        })
    }

    /// Writes the diff of an overlay upper dir: its entries, with overlay whiteouts (0/0 char
    /// devices) as `.wh.NAME` and opaque directories as `.wh..wh..opq`.
    pub fn add_upper_dir(&mut self, upper: &Path) -> Result<()> {
        let mut stack = vec![(upper.to_path_buf(), String::new())];
        while let Some((dir, prefix)) = stack.pop() {
            let mut names: Vec<_> = fs::read_dir(&dir)
                .map_err(|e| io_err("read dir", &dir, e))?
                .map(|e| e.map(|e| e.file_name()))
                .collect::<io::Result<_>>()
                .map_err(|e| io_err("read dir", &dir, e))?;
            names.sort();
            for n in names {
                let path = dir.join(&n);
                let name = format!("{prefix}{}", n.to_string_lossy());
                let meta = fs::symlink_metadata(&path).map_err(|e| io_err("stat", &path, e))?;
                if meta.file_type().is_char_device() && meta.rdev() == 0 {
                    self.whiteout(&name)?;
                    continue;
                }
                // With redirect_dir or metacopy, the upper dir is not the whole diff: refuse
                // rather than write a wrong layer.
                for x in ["trusted.overlay.redirect", "trusted.overlay.metacopy"] {
                    if xattr::get(&path, x).ok().flatten().is_some() {
                        return Err(ImageError::Unsupported {
                            what: "overlay upper dir".into(),
                            detail: format!(
                                "{} has {x}: mount overlay with redirect_dir=off,metacopy=off for builds",
                                path.display()
                            ),
                        });
                    }
                }
                self.add(&name, &path, Owner::default())?;
                if meta.is_dir() {
                    if xattr::get(&path, OVERLAY_OPAQUE_XATTR)
                        .ok()
                        .flatten()
                        .is_some_and(|v| v == b"y")
                    {
                        self.add_bytes(&format!("{name}/{OPAQUE_MARKER}"), &[], 0o644)?;
                    }
                    stack.push((path, format!("{name}/")));
                }
            }
        }
        Ok(())
    }

    /// Adds `src` (a file or a directory tree) as `name`; a directory's descendants are
    /// filtered by `keep` (relative paths under `src`).
    pub fn add_tree(
        &mut self,
        name: &str,
        src: &Path,
        owner: Owner,
        keep: &dyn Fn(&Path) -> bool,
    ) -> Result<()> {
        self.add(name, src, owner)?;
        let meta = fs::symlink_metadata(src).map_err(|e| io_err("stat", src, e))?;
        if !meta.is_dir() {
            return Ok(());
        }
        let mut stack = vec![(src.to_path_buf(), PathBuf::new())];
        while let Some((dir, rel)) = stack.pop() {
            let mut entries: Vec<_> = fs::read_dir(&dir)
                .map_err(|e| io_err("read dir", &dir, e))?
                .map(|e| e.map(|e| e.file_name()))
                .collect::<io::Result<_>>()
                .map_err(|e| io_err("read dir", &dir, e))?;
            entries.sort();
            for n in entries {
                let r = rel.join(&n);
                if !keep(&r) {
                    continue;
                }
                let p = dir.join(&n);
                self.add(&join(name, &r.to_string_lossy()), &p, owner)?;
                if fs::symlink_metadata(&p)
                    .map(|m| m.is_dir())
                    .unwrap_or(false)
                {
                    stack.push((p, r));
                }
            }
        }
        Ok(())
    }
}

/// `a` + `/` + `b`, without doubled slashes or a leading one.
pub fn join(a: &str, b: &str) -> String {
    let a = a.trim_matches('/');
    let b = b.trim_start_matches('/').trim_end_matches('/');
    match (a.is_empty(), b.is_empty()) {
        (true, _) => b.to_owned(),
        (_, true) => a.to_owned(),
        _ => format!("{a}/{b}"),
    }
}

/// A read-only merged view of unpacked layer directories (top first), following overlay's
/// rules: a 0/0 char device hides a path, an opaque directory hides what is below it.
#[derive(Debug, Clone, Default)]
pub struct MergedView {
    pub layers: Vec<PathBuf>,
}

impl MergedView {
    /// The real path of `rel` (no leading `/`) in the topmost layer that has it, or `None`
    /// when it does not exist in the merged view. Symlinks in parents are not followed.
    pub fn lookup(&self, rel: &str) -> Option<PathBuf> {
        let comps: Vec<&str> = rel
            .split('/')
            .filter(|c| !c.is_empty() && *c != ".")
            .collect();
        'layers: for l in &self.layers {
            let mut p = l.clone();
            for (i, c) in comps.iter().enumerate() {
                p.push(c);
                match fs::symlink_metadata(&p) {
                    Ok(m) if m.file_type().is_char_device() && m.rdev() == 0 => return None,
                    Ok(m) if i + 1 < comps.len() && !m.is_dir() => return None,
                    Ok(m) if i + 1 < comps.len() && is_opaque(&p, &m) => {
                        // Only this layer counts below here.
                        let rest: PathBuf = comps[i + 1..].iter().collect();
                        let q = p.join(rest);
                        return fs::symlink_metadata(&q)
                            .ok()
                            .filter(|m| !(m.file_type().is_char_device() && m.rdev() == 0))
                            .map(|_| q);
                    }
                    Ok(_) => {}
                    Err(_) => continue 'layers,
                }
            }
            return Some(p);
        }
        None
    }

    /// The merged entries of directory `rel`: name → real path.
    pub fn read_dir(&self, rel: &str) -> BTreeMap<String, PathBuf> {
        let mut out = BTreeMap::new();
        let mut hidden = std::collections::HashSet::new();
        for l in &self.layers {
            let d = l.join(rel.trim_start_matches('/'));
            let Ok(m) = fs::symlink_metadata(&d) else {
                continue;
            };
            if !m.is_dir() {
                break;
            }
            if let Ok(rd) = fs::read_dir(&d) {
                for e in rd.flatten() {
                    let n = e.file_name().to_string_lossy().into_owned();
                    if out.contains_key(&n) || hidden.contains(&n) {
                        continue;
                    }
                    match e.metadata() {
                        Ok(m) if m.file_type().is_char_device() && m.rdev() == 0 => {
                            hidden.insert(n);
                        }
                        _ => {
                            out.insert(n, e.path());
                        }
                    }
                }
            }
            if is_opaque(&d, &m) {
                break;
            }
        }
        out
    }

    /// Reads a small file (like `etc/passwd`).
    pub fn read_to_string(&self, rel: &str) -> Option<String> {
        fs::read_to_string(self.lookup(rel)?).ok()
    }
}

fn is_opaque(p: &Path, m: &fs::Metadata) -> bool {
    m.is_dir()
        && xattr::get(p, OVERLAY_OPAQUE_XATTR)
            .ok()
            .flatten()
            .is_some_and(|v| v == b"y")
}

/// Feeds a file's content to a hasher (content hashes for the cache).
pub fn hash_file(h: &mut crate::image::digest::Hasher, path: &Path) -> io::Result<()> {
    let mut f = fs::File::open(path)?;
    let mut buf = vec![0u8; 1 << 16];
    loop {
        let n = f.read(&mut buf)?;
        if n == 0 {
            return Ok(());
        }
        h.update(&buf[..n]);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use nix::sys::stat::{Mode, SFlag, makedev, mknod};

    fn is_root() -> bool {
        nix::unistd::geteuid().is_root()
    }

    fn entries(store: &ContentStore, blob: &LayerBlob) -> Vec<String> {
        let raw = store.read_blob(&blob.digest).unwrap();
        let mut ar = tar::Archive::new(flate2::read::GzDecoder::new(&raw[..]));
        ar.entries()
            .unwrap()
            .map(|e| e.unwrap().path().unwrap().to_string_lossy().into_owned())
            .collect()
    }

    #[test]
    fn upper_dir_diff_has_whiteouts_and_opaque_markers_and_merged_view_hides_them() {
        if !is_root() {
            eprintln!("skipping: needs root (mknod, trusted xattrs)");
            return;
        }
        let d = tempfile::tempdir().unwrap();
        let store = ContentStore::open(&d.path().join("store")).unwrap();
        let upper = d.path().join("upper");
        fs::create_dir_all(upper.join("etc")).unwrap();
        fs::create_dir_all(upper.join("opaque")).unwrap();
        fs::write(upper.join("etc/new"), "n").unwrap();
        fs::write(upper.join("opaque/kept"), "k").unwrap();
        mknod(
            &upper.join("etc/gone"),
            SFlag::S_IFCHR,
            Mode::from_bits_truncate(0o600),
            makedev(0, 0),
        )
        .unwrap();
        xattr::set(upper.join("opaque"), OVERLAY_OPAQUE_XATTR, b"y").unwrap();
        let mut w = LayerWriter::new(&store, "test").unwrap();
        w.add_upper_dir(&upper).unwrap();
        let blob = w.finish().unwrap();
        let got = entries(&store, &blob);
        for want in [
            "etc/",
            "etc/new",
            "etc/.wh.gone",
            "opaque/",
            "opaque/.wh..wh..opq",
            "opaque/kept",
        ] {
            assert!(got.iter().any(|g| g == want), "{want} missing in {got:?}");
        }
        assert!(!got.iter().any(|g| g == "etc/gone"), "{got:?}");

        // The same dir as the top of a merged view over a lower layer.
        let lower = d.path().join("lower");
        fs::create_dir_all(lower.join("etc")).unwrap();
        fs::create_dir_all(lower.join("opaque")).unwrap();
        fs::write(lower.join("etc/gone"), "g").unwrap();
        fs::write(lower.join("etc/base"), "b").unwrap();
        fs::write(lower.join("opaque/hidden"), "h").unwrap();
        let view = MergedView {
            layers: vec![upper.clone(), lower.clone()],
        };
        assert_eq!(view.lookup("etc/gone"), None);
        assert_eq!(view.lookup("etc/base"), Some(lower.join("etc/base")));
        assert_eq!(view.lookup("opaque/hidden"), None);
        let names: Vec<String> = view.read_dir("etc").into_keys().collect();
        assert_eq!(names, vec!["base", "new"]);
        let names: Vec<String> = view.read_dir("opaque").into_keys().collect();
        assert_eq!(names, vec!["kept"]);
    }

    #[test]
    fn joins() {
        assert_eq!(join("/a/", "b/"), "a/b");
        assert_eq!(join("/", "b"), "b");
        assert_eq!(join("a", ""), "a");
    }
}
