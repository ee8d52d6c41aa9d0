//! Images in the store: list, inspect, history, tag, remove, prune.

use std::collections::{BTreeSet, HashMap, HashSet};

use super::ImageStore;
use super::config::ImageConfig;
use super::digest::{Digest, ImageId, chain_ids};
use super::error::{ImageError, Result};
use super::layout::{ANN_REF_NAME, ANN_REPO_DIGEST, Descriptor, Manifest};
use super::reference::Reference;

/// An image as the store knows it: one manifest, its names.
#[derive(Debug, Clone)]
pub(crate) struct Image {
    pub id: ImageId,
    pub desc: Descriptor,
    pub manifest: Manifest,
    pub names: Vec<Reference>,
    pub repo_digests: Vec<String>,
}

/// A row of `images`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageSummary {
    pub id: ImageId,
    /// Tags and digest references, fully qualified (use `Reference::familiar` to show them).
    pub names: Vec<Reference>,
    /// `name@digest` as the registry knows the image.
    pub repo_digests: Vec<String>,
    /// The manifest digest.
    pub digest: Digest,
    /// Unpacked size (bytes of file content), or the compressed size when not unpacked.
    pub size: u64,
    /// Bytes of the layer blobs as stored (compressed).
    pub compressed_size: u64,
    /// RFC 3339 creation time from the config.
    pub created: Option<String>,
    /// The same as Unix seconds, when it parses.
    pub created_unix: Option<i64>,
    /// Containers using it (from the caller's count).
    pub containers: usize,
}

/// `inspect`.
#[derive(Debug, Clone, PartialEq)]
pub struct ImageDetails {
    pub summary: ImageSummary,
    pub manifest_media_type: String,
    pub config: ImageConfig,
    /// Layer blob digests, bottom first.
    pub layers: Vec<Digest>,
    /// Uncompressed layer digests, bottom first.
    pub diff_ids: Vec<Digest>,
}

/// A row of `history`, newest first.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HistoryEntry {
    pub created: Option<String>,
    pub created_by: String,
    pub comment: Option<String>,
    /// Size of the layer this step made (0 for metadata-only steps).
    pub size: u64,
    pub empty_layer: bool,
}

/// What `remove` and `prune` did, in Docker's terms.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Removed {
    Untagged(Reference),
    Deleted(ImageId),
}

impl ImageStore {
    /// Every image, by manifest, with its names.
    pub(crate) fn images(&self) -> Result<Vec<Image>> {
        let idx = self.content.read_index()?;
        let mut by_manifest: Vec<Image> = Vec::new();
        let mut pos: HashMap<Digest, usize> = HashMap::new();
        for d in idx.manifests {
            let i = match pos.get(&d.digest) {
                Some(&i) => i,
                None => {
                    let raw = self.content.read_blob(&d.digest)?;
                    let manifest: Manifest = serde_json::from_slice(&raw)
                        .map_err(|e| ImageError::json(format!("manifest {}", d.digest), e))?;
                    by_manifest.push(Image {
                        id: manifest.config.digest.clone(),
                        desc: d.clone(),
                        manifest,
                        names: Vec::new(),
                        repo_digests: Vec::new(),
                    });
                    pos.insert(d.digest.clone(), by_manifest.len() - 1);
                    by_manifest.len() - 1
                }
            };
            let img = &mut by_manifest[i];
            if let Some(n) = d
                .annotations
                .get(ANN_REF_NAME)
                .and_then(|n| Reference::parse(n).ok())
            {
                img.names.push(n);
            }
            if let Some(rd) = d.annotations.get(ANN_REPO_DIGEST)
                && !img.repo_digests.contains(rd)
            {
                img.repo_digests.push(rd.clone());
            }
        }
        Ok(by_manifest)
    }

    /// Finds an image by name (`busybox`, `x:1`, `x@sha256:…`) or by id (full, `sha256:` or a
    /// unique hex prefix).
    pub(crate) fn resolve(&self, what: &str) -> Result<Image> {
        let images = self.images()?;
        if let Ok(r) = Reference::parse(what) {
            let hit = images.iter().find(|i| {
                i.names.contains(&r)
                    || r.digest().is_some_and(|d| {
                        (i.desc.digest == *d
                            || i.repo_digests.iter().any(|rd| rd.ends_with(d.as_str())))
                            && i.names.iter().any(|n| n.name() == r.name())
                    })
            });
            if let Some(i) = hit {
                return Ok(i.clone());
            }
        }
        let hex = what.strip_prefix("sha256:").unwrap_or(what);
        if !hex.is_empty() && hex.len() <= 64 && hex.bytes().all(|b| b.is_ascii_hexdigit()) {
            let hex = hex.to_ascii_lowercase();
            let ids: BTreeSet<&ImageId> = images
                .iter()
                .filter(|i| i.id.hex().starts_with(&hex))
                .map(|i| &i.id)
                .collect();
            match ids.len() {
                0 => {}
                1 => {
                    let id = *ids.first().expect("one");
                    return Ok(images
                        .iter()
                        .find(|i| &i.id == id)
                        .expect("present")
                        .clone());
                }
                n => {
                    return Err(ImageError::Ambiguous {
                        prefix: what.into(),
                        count: n,
                    });
                }
            }
        }
        Err(ImageError::NotFound {
            reference: what.into(),
        })
    }

    /// The id of the image a name or id (prefix) refers to; `NotFound` when there is none (the
    /// dispatcher's "pull if missing" check).
    pub fn image_id(&self, ref_or_id: &str) -> Result<ImageId> {
        Ok(self.resolve(ref_or_id)?.id)
    }

    pub(crate) fn config_of(&self, img: &Image) -> Result<ImageConfig> {
        ImageConfig::parse(&self.content.read_blob(&img.id)?)
    }

    fn size_of(&self, img: &Image, config: &ImageConfig) -> u64 {
        let chains = chain_ids(&config.rootfs.diff_ids);
        chains
            .iter()
            .zip(&img.manifest.layers)
            .map(|(c, l)| self.layers.record(c).map_or(l.size, |r| r.size))
            .sum()
    }

    fn summary(&self, img: &Image, in_use: &dyn Fn(&ImageId) -> usize) -> Result<ImageSummary> {
        let config = self.config_of(img)?;
        Ok(ImageSummary {
            id: img.id.clone(),
            names: img.names.clone(),
            repo_digests: img.repo_digests.clone(),
            digest: img.desc.digest.clone(),
            size: self.size_of(img, &config),
            compressed_size: img.manifest.layers.iter().map(|l| l.size).sum(),
            created_unix: config.created.as_deref().and_then(|c| {
                time::OffsetDateTime::parse(c, &time::format_description::well_known::Rfc3339)
                    .ok()
                    .map(|t| t.unix_timestamp())
            }),
            created: config.created.clone(),
            containers: in_use(&img.id),
        })
    }

    /// All images; `in_use` counts the containers using an image id.
    pub fn list(&self, in_use: &dyn Fn(&ImageId) -> usize) -> Result<Vec<ImageSummary>> {
        self.images()?
            .iter()
            .map(|i| self.summary(i, in_use))
            .collect()
    }

    /// Config, layers and names of one image.
    pub fn inspect(&self, ref_or_id: &str) -> Result<ImageDetails> {
        let img = self.resolve(ref_or_id)?;
        let config = self.config_of(&img)?;
        Ok(ImageDetails {
            summary: self.summary(&img, &|_| 0)?,
            manifest_media_type: img
                .manifest
                .media_type
                .clone()
                .unwrap_or_else(|| img.desc.media_type.clone()),
            layers: img
                .manifest
                .layers
                .iter()
                .map(|l| l.digest.clone())
                .collect(),
            diff_ids: config.rootfs.diff_ids.clone(),
            config,
        })
    }

    /// The image's history, newest step first, with each layer-making step's size.
    pub fn history(&self, ref_or_id: &str) -> Result<Vec<HistoryEntry>> {
        let img = self.resolve(ref_or_id)?;
        let config = self.config_of(&img)?;
        let chains = chain_ids(&config.rootfs.diff_ids);
        let sizes: Vec<u64> = chains
            .iter()
            .zip(&img.manifest.layers)
            .map(|(c, l)| self.layers.record(c).map_or(l.size, |r| r.size))
            .collect();
        let mut layer = 0usize;
        let mut out = Vec::new();
        if config.history.is_empty() {
            for s in &sizes {
                out.push(HistoryEntry {
                    created: None,
                    created_by: String::new(),
                    comment: None,
                    size: *s,
                    empty_layer: false,
                });
            }
        }
        for h in &config.history {
            let size = if h.empty_layer {
                0
            } else {
                layer += 1;
                sizes.get(layer - 1).copied().unwrap_or(0)
            };
            out.push(HistoryEntry {
                created: h.created.clone(),
                created_by: h.created_by.clone().unwrap_or_default(),
                comment: h.comment.clone(),
                size,
                empty_layer: h.empty_layer,
            });
        }
        out.reverse();
        Ok(out)
    }

    /// Gives the image `src` (name or id) the name `dst`. Returns the image id.
    pub fn tag(&self, src: &str, dst: &Reference) -> Result<ImageId> {
        if dst.digest().is_some() {
            return Err(ImageError::InvalidReference {
                reference: dst.to_string(),
                reason: "a tag target cannot carry a digest".into(),
            });
        }
        let img = self.resolve(src)?;
        self.set_name(Some(dst), img.desc.clone(), None)?;
        Ok(img.id)
    }

    /// `rmi`: by name, untags (and deletes the image with its last name); by id, deletes the
    /// image (force needed when several names share it). An image a container uses is refused
    /// unless `force`, and even then only its names go: its content stays until unused.
    pub fn remove(
        &self,
        ref_or_id: &str,
        force: bool,
        in_use: &dyn Fn(&ImageId) -> bool,
    ) -> Result<Vec<Removed>> {
        let img = self.resolve(ref_or_id)?;
        let by_name = Reference::parse(ref_or_id)
            .ok()
            .filter(|r| img.names.contains(r));
        let mut out = Vec::new();
        let used = in_use(&img.id);
        let untag = |name: &Reference, out: &mut Vec<Removed>| -> Result<()> {
            let n = name.to_string();
            self.content.update_index(|idx| {
                idx.manifests
                    .retain(|d| d.annotations.get(ANN_REF_NAME) != Some(&n));
                Ok(())
            })?;
            out.push(Removed::Untagged(name.clone()));
            Ok(())
        };
        match by_name {
            Some(name) if img.names.len() > 1 => {
                untag(&name, &mut out)?;
                return Ok(out);
            }
            None if img.names.len() > 1 && !force => {
                return Err(ImageError::MultipleTags {
                    image: img.id.short().into(),
                    tags: img
                        .names
                        .iter()
                        .map(|n| n.familiar())
                        .collect::<Vec<_>>()
                        .join(", "),
                });
            }
            _ => {}
        }
        if used && !force {
            return Err(ImageError::InUse {
                image: format!("{} ({})", ref_or_id, img.id.short()),
            });
        }
        for n in &img.names {
            untag(n, &mut out)?;
        }
        if used {
            // Keep it, dangling, for the container that still runs on it.
            self.set_name(None, img.desc.clone(), None)?;
            return Ok(out);
        }
        let d = img.desc.digest.clone();
        self.content.update_index(|idx| {
            idx.manifests.retain(|m| m.digest != d);
            Ok(())
        })?;
        out.push(Removed::Deleted(img.id.clone()));
        self.collect_garbage()?;
        Ok(out)
    }

    /// Removes dangling images (no name), or with `all` every image no container uses, then
    /// unreferenced blobs and layers. Returns what went and the bytes freed.
    pub fn prune(
        &self,
        all: bool,
        in_use: &dyn Fn(&ImageId) -> bool,
    ) -> Result<(Vec<Removed>, u64)> {
        let images = self.images()?;
        let mut out = Vec::new();
        let doomed: Vec<&super::ops::Image> = images
            .iter()
            .filter(|i| !in_use(&i.id) && (all || i.names.is_empty()))
            .collect();
        let digests: HashSet<Digest> = doomed.iter().map(|i| i.desc.digest.clone()).collect();
        self.content.update_index(|idx| {
            idx.manifests.retain(|m| !digests.contains(&m.digest));
            Ok(())
        })?;
        for i in doomed {
            for n in &i.names {
                out.push(Removed::Untagged(n.clone()));
            }
            out.push(Removed::Deleted(i.id.clone()));
        }
        let freed = self.collect_garbage()?;
        Ok((out, freed))
    }

    /// Deletes blobs and layer directories no image in `index.json` references. Returns bytes
    /// freed (blob sizes plus unpacked layer content).
    pub(crate) fn collect_garbage(&self) -> Result<u64> {
        let (keep_blobs, keep_layers) = self.in_use()?;
        let mut freed = 0;
        for b in self.content.list_blobs()? {
            if !keep_blobs.contains(&b) {
                freed += self.content.remove_blob(&b)?;
            }
        }
        for l in self.layers.list() {
            if !keep_layers.contains(&l.chain_id) {
                freed += self.layers.remove(&l.chain_id)?;
            }
        }
        Ok(freed)
    }

    /// The blobs and layers (chain ids) an image in `index.json` references, or that an
    /// operation in progress protects (content a pull has written but not yet named).
    fn in_use(&self) -> Result<(HashSet<Digest>, HashSet<Digest>)> {
        let images = self.images()?;
        let mut keep_blobs: HashSet<Digest> = HashSet::new();
        let mut keep_layers: HashSet<Digest> = HashSet::new();
        for i in &images {
            keep_blobs.insert(i.desc.digest.clone());
            keep_blobs.insert(i.id.clone());
            keep_blobs.extend(i.manifest.layers.iter().map(|l| l.digest.clone()));
            if let Ok(c) = self.config_of(i) {
                keep_layers.extend(chain_ids(&c.rootfs.diff_ids));
            }
        }
        let protected = self.protected_now();
        keep_blobs.extend(protected.iter().cloned());
        keep_layers.extend(protected);
        Ok((keep_blobs, keep_layers))
    }

    /// After a failed pull of `manifest` (its protection dropped): removes what of it is in the
    /// store and nothing uses — the config blob, layer blobs, unpacked layers (chain ids from
    /// the config, when it is here) — as a GC restricted to this image's content would, so a
    /// refused image leaves no debris (Docker releases a failed pull's layers the same way).
    /// Best effort: what cannot be removed is left for `image prune`.
    pub(crate) fn discard_unused(&self, manifest: &Manifest) {
        let Ok((keep_blobs, keep_layers)) = self.in_use() else {
            return;
        };
        let chains = self
            .content
            .read_blob(&manifest.config.digest)
            .ok()
            .and_then(|raw| ImageConfig::parse(&raw).ok())
            .map(|c| chain_ids(&c.rootfs.diff_ids))
            .unwrap_or_default();
        for c in chains {
            if !keep_layers.contains(&c) && self.layers.exists(&c) {
                let _ = self.layers.remove(&c);
            }
        }
        for b in manifest
            .layers
            .iter()
            .map(|l| &l.digest)
            .chain([&manifest.config.digest])
        {
            if !keep_blobs.contains(b) && self.content.has_blob(b) {
                let _ = self.content.remove_blob(b);
            }
        }
    }
}
