//! COPY and ADD: sources from the context (globs, `.dockerignore`) or from an earlier stage or
//! image, the content hash the cache keys on, and the layer they make.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use super::context::{self, resolve_sources};
use super::layer::{self, LayerBlob, LayerWriter, MergedView, Owner, join};
use super::user::resolve_user;
use super::{Builder, Snapshot};
use crate::image::ImageStore;
use crate::image::digest::Hasher;
use crate::image::error::ImageError;

/// A layer writer to run once the cache has missed.
pub(super) type WriteLayer =
    Box<dyn FnOnce(&mut Builder, &ImageStore) -> Result<LayerBlob, String>>;

impl Builder {
    /// The content hash of a COPY/ADD's sources, and a function writing its layer.
    #[allow(clippy::too_many_arguments)]
    pub(super) fn copy_layer(
        &self,
        store: &ImageStore,
        parent: &Snapshot,
        src: &CopyFrom,
        add: bool,
        sources: &[String],
        dest: &str,
        chown: Option<&str>,
        chmod: Option<u32>,
    ) -> Result<(String, WriteLayer), String> {
        let dest_view = MergedView {
            layers: self.layer_dirs(store, parent).map_err(|e| e.to_string())?,
        };
        let owner = match chown {
            Some(spec) => {
                let passwd = dest_view.read_to_string("etc/passwd").unwrap_or_default();
                let group = dest_view.read_to_string("etc/group").unwrap_or_default();
                let (uid, gid, _) = resolve_user(spec, &passwd, &group)?;
                Owner {
                    uid: Some(uid),
                    gid: Some(gid),
                    mode: chmod,
                }
            }
            None => Owner {
                uid: None,
                gid: None,
                mode: chmod,
            },
        };
        let workdir = parent.config["config"]["WorkingDir"]
            .as_str()
            .unwrap_or("/");
        let dest_abs = if dest.starts_with('/') {
            dest.to_owned()
        } else {
            format!("{workdir}/{dest}")
        };
        let dest_clean = format!("/{}", context::clean(&dest_abs));
        // (source path, real path or merged path, is dir)
        let mut items: Vec<(String, PathBuf)> = Vec::new();
        let mut hash = Hasher::new();
        let from_view = match src {
            CopyFrom::Context => {
                for s in sources {
                    for f in resolve_sources(&self.context, s, &self.ignore)? {
                        items.push((f.rel.clone(), f.path.clone()));
                    }
                }
                for (rel, path) in &items {
                    hash_tree(&mut hash, rel, path, &|r| !self.ignore.excluded(r))
                        .map_err(|e| format!("{rel}: {e}"))?;
                }
                None
            }
            CopyFrom::Image(snap) => {
                let view = MergedView {
                    layers: self.layer_dirs(store, snap).map_err(|e| e.to_string())?,
                };
                hash.update(snap.config_digest.as_str().as_bytes());
                for s in sources {
                    let rel = context::clean(s);
                    let p = view
                        .lookup(&rel)
                        .ok_or_else(|| format!("{s}: not found in the source image or stage"))?;
                    hash.update(rel.as_bytes());
                    items.push((rel, p));
                }
                Some(view)
            }
        };
        hash.update(format!("{owner:?}").as_bytes());
        let dest_is_dir = dest.ends_with('/')
            || items.len() > 1
            || items.iter().any(|(_, p)| p.is_dir() && !p.is_symlink())
            || dest_view.lookup(&dest_clean).is_some_and(|p| p.is_dir());
        let text = dest_clean.clone();
        let write = move |b: &mut Builder, store: &ImageStore| -> Result<LayerBlob, String> {
            let e = |e: ImageError| e.to_string();
            let mut w = LayerWriter::new(&store.content, &text).map_err(e)?;
            let mut made = BTreeSet::new();
            let base = if dest_is_dir {
                dest_clean.clone()
            } else {
                parent_of(&dest_clean)
            };
            add_parents(&mut w, &dest_view, &base, true, &mut made).map_err(e)?;
            for (rel, path) in &items {
                let meta = std::fs::symlink_metadata(path).map_err(|e| format!("{rel}: {e}"))?;
                let basename = rel.rsplit('/').next().unwrap_or(rel);
                if meta.is_dir() {
                    // A directory's content goes into the destination, not the directory.
                    match &from_view {
                        None => {
                            let keep =
                                |r: &Path| !b.ignore.excluded(&join(rel, &r.to_string_lossy()));
                            for entry in sorted_dir(path).map_err(|e| format!("{rel}: {e}"))? {
                                let n = entry.to_string_lossy().into_owned();
                                if !keep(Path::new(&n)) {
                                    continue;
                                }
                                let sub = join(rel, &n);
                                w.add_tree(
                                    &join(&dest_clean, &n),
                                    &path.join(&entry),
                                    owner,
                                    &|r: &Path| {
                                        !b.ignore.excluded(&join(&sub, &r.to_string_lossy()))
                                    },
                                )
                                .map_err(e)?;
                            }
                        }
                        Some(view) => {
                            add_merged(&mut w, view, rel, &dest_clean, owner, false).map_err(e)?
                        }
                    }
                    continue;
                }
                if add && from_view.is_none() && meta.is_file() && is_archive(path) {
                    w.add_archive(&dest_clean, path, owner).map_err(e)?;
                    continue;
                }
                let target = if dest_is_dir {
                    join(&dest_clean, basename)
                } else {
                    dest_clean.clone()
                };
                w.add(&target, path, owner).map_err(e)?;
            }
            w.finish().map_err(e)
        };
        Ok((hash.finish().to_string(), Box::new(write)))
    }
}

pub(super) enum CopyFrom {
    Context,
    Image(Box<Snapshot>),
}

pub(super) fn parent_of(p: &str) -> String {
    match p.trim_end_matches('/').rsplit_once('/') {
        Some((d, _)) if !d.is_empty() => d.to_owned(),
        _ => "/".to_owned(),
    }
}

pub(super) fn sorted_dir(p: &Path) -> std::io::Result<Vec<std::ffi::OsString>> {
    let mut v: Vec<_> = std::fs::read_dir(p)?
        .map(|e| e.map(|e| e.file_name()))
        .collect::<std::io::Result<_>>()?;
    v.sort();
    Ok(v)
}

/// Directory entries for `path` and its ancestors: as they are in `view` when they exist
/// there (so the layer does not change them), else new 0755 root-owned directories.
pub(super) fn add_parents(
    w: &mut LayerWriter,
    view: &MergedView,
    path: &str,
    include_self: bool,
    made: &mut BTreeSet<String>,
) -> Result<(), ImageError> {
    let clean = context::clean(path);
    if clean.is_empty() {
        return Ok(());
    }
    let parts: Vec<&str> = clean.split('/').collect();
    let n = if include_self {
        parts.len()
    } else {
        parts.len() - 1
    };
    for i in 1..=n {
        let p = parts[..i].join("/");
        if !made.insert(p.clone()) {
            continue;
        }
        match view.lookup(&p) {
            Some(real) if real.is_dir() => w.add(&p, &real, Owner::default())?,
            _ => w.add_dir(&p)?,
        }
    }
    Ok(())
}

/// Adds the merged directory `rel` of `view` (its content) under `dest`.
pub(super) fn add_merged(
    w: &mut LayerWriter,
    view: &MergedView,
    rel: &str,
    dest: &str,
    owner: Owner,
    include_self: bool,
) -> Result<(), ImageError> {
    if include_self && let Some(p) = view.lookup(rel) {
        w.add(dest, &p, owner)?;
    }
    for (name, real) in view.read_dir(rel) {
        let sub = join(rel, &name);
        let d = join(dest, &name);
        if std::fs::symlink_metadata(&real).is_ok_and(|m| m.is_dir()) {
            add_merged(w, view, &sub, &d, owner, true)?;
        } else {
            w.add(&d, &real, owner)?;
        }
    }
    Ok(())
}

/// Hashes a context file or tree (path, type, mode, size, content, link target).
pub(super) fn hash_tree(
    h: &mut Hasher,
    rel: &str,
    path: &Path,
    keep: &dyn Fn(&str) -> bool,
) -> std::io::Result<()> {
    use std::os::unix::fs::MetadataExt;
    let meta = std::fs::symlink_metadata(path)?;
    h.update(format!("{rel}\0{:o}\0{}\0", meta.mode(), meta.len()).as_bytes());
    if meta.is_file() {
        layer::hash_file(h, path)?;
    } else if meta.file_type().is_symlink() {
        h.update(std::fs::read_link(path)?.as_os_str().as_encoded_bytes());
    } else if meta.is_dir() {
        for n in sorted_dir(path)? {
            let r = join(rel, &n.to_string_lossy());
            if keep(&r) {
                hash_tree(h, &r, &path.join(&n), keep)?;
            }
        }
    }
    Ok(())
}

/// Whether a local file is a tar archive (plain, gzip or zstd) that ADD unpacks.
pub(super) fn is_archive(path: &Path) -> bool {
    use std::io::Read;
    let Ok(mut f) = std::fs::File::open(path) else {
        return false;
    };
    let mut buf = vec![0u8; 512];
    let Ok(n) = f.read(&mut buf) else {
        return false;
    };
    let head = &buf[..n];
    if head.starts_with(&[0x1f, 0x8b]) || head.starts_with(&[0x28, 0xb5, 0x2f, 0xfd]) {
        // A compressed file is an archive only if it holds a tar.
        let Ok(f) = std::fs::File::open(path) else {
            return false;
        };
        let mut dec: Box<dyn Read> = if head[0] == 0x1f {
            Box::new(flate2::read::MultiGzDecoder::new(f))
        } else {
            match zstd::Decoder::new(f) {
                Ok(d) => Box::new(d),
                Err(_) => return false,
            }
        };
        let mut b = vec![0u8; 512];
        return dec.read_exact(&mut b).is_ok() && &b[257..262] == b"ustar";
    }
    n == 512 && &head[257..262] == b"ustar"
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parents() {
        assert_eq!(parent_of("/a/b"), "/a");
        assert_eq!(parent_of("/a"), "/");
    }
}
