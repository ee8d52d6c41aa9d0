//! Image archives:
//! - `save` writes one tar that is both an OCI image layout (`oci-layout`, `index.json`,
//!   `blobs/sha256/…`, i.e. an OCI archive) and a `docker save` archive (`manifest.json` with
//!   `Config`/`RepoTags`/`Layers` pointing into `blobs/`, plus `repositories`), as Docker 25+
//!   writes them.
//! - `load` reads that, older `docker save` archives (`<id>/layer.tar`), and OCI archives. Every
//!   blob goes through the verified ingest path; layers are unpacked (and their diff ids checked).
//! - `import` makes a one-layer image from a rootfs tarball (plain, gzip or zstd).

use std::collections::{BTreeMap, HashMap};
use std::io::{self, Read, Write};
use std::path::Path;

use serde::{Deserialize, Serialize};

use super::ImageStore;
use super::config::{History, ImageConfig, RootFs, RunConfig};
use super::digest::{Digest, HashingReader, ImageId};
use super::error::{ImageError, Result};
use super::layout::{
    ANN_CONTAINERD_NAME, ANN_REF_NAME, AnyManifest, Descriptor, Index, Manifest, OCI_CONFIG,
    OCI_LAYER_GZIP, OCI_LAYER_TAR, OCI_LAYER_ZSTD, OCI_MANIFEST, Platform,
};
use super::reference::Reference;

/// One entry of a `docker save` `manifest.json`.
#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct DockerManifestEntry {
    config: String,
    #[serde(default)]
    repo_tags: Option<Vec<String>>,
    layers: Vec<String>,
}

/// The largest metadata file (`manifest.json`, `index.json`, …) `load` reads into memory.
const MAX_META: u64 = 16 << 20;

fn bad_archive(path: &str, reason: impl Into<String>) -> ImageError {
    ImageError::BadArchive {
        path: path.into(),
        reason: reason.into(),
    }
}

fn append(b: &mut tar::Builder<impl Write>, name: &str, data: &[u8]) -> io::Result<()> {
    let mut h = tar::Header::new_ustar();
    h.set_size(data.len() as u64);
    h.set_mode(0o644);
    h.set_mtime(0);
    h.set_entry_type(tar::EntryType::Regular);
    b.append_data(&mut h, name, data)
}

impl ImageStore {
    /// Writes the named images (names or ids) to `out` as a `docker save`-compatible archive
    /// that is also an OCI archive.
    pub fn save(&self, images: &[&str], out: impl Write) -> Result<()> {
        let mut entries: Vec<(super::ops::Image, Vec<Reference>)> = Vec::new();
        for what in images {
            let img = self.resolve(what)?;
            let names = match Reference::parse(what) {
                Ok(r) if img.names.contains(&r) && r.tag().is_some() => vec![r],
                _ => img
                    .names
                    .iter()
                    .filter(|n| n.tag().is_some())
                    .cloned()
                    .collect(),
            };
            entries.push((img, names));
        }
        let werr = |e: io::Error| ImageError::io("write archive", "<output>", e);
        let mut b = tar::Builder::new(out);
        b.mode(tar::HeaderMode::Deterministic);
        append(&mut b, "oci-layout", br#"{"imageLayoutVersion":"1.0.0"}"#).map_err(werr)?;
        let mut index = Index::default();
        let mut docker = Vec::new();
        let mut repositories: BTreeMap<String, BTreeMap<String, String>> = BTreeMap::new();
        let mut written = std::collections::HashSet::new();
        for (img, names) in &entries {
            let mut blobs = vec![img.desc.digest.clone(), img.id.clone()];
            blobs.extend(img.manifest.layers.iter().map(|l| l.digest.clone()));
            for d in blobs {
                if !written.insert(d.clone()) {
                    continue;
                }
                let f = self.content.open_blob(&d)?;
                let len = f
                    .metadata()
                    .map_err(|e| ImageError::io("stat", self.content.blob_path(&d), e))?
                    .len();
                let mut h = tar::Header::new_ustar();
                h.set_size(len);
                h.set_mode(0o644);
                h.set_mtime(0);
                h.set_entry_type(tar::EntryType::Regular);
                b.append_data(&mut h, format!("blobs/sha256/{}", d.hex()), f)
                    .map_err(werr)?;
            }
            let mut desc = img.desc.clone();
            desc.annotations.clear();
            if names.is_empty() {
                index.manifests.push(desc.clone());
            }
            for n in names {
                let mut d = desc.clone();
                d.annotations
                    .insert(ANN_CONTAINERD_NAME.into(), n.to_string());
                d.annotations
                    .insert(ANN_REF_NAME.into(), n.tag().unwrap_or("latest").into());
                index.manifests.push(d);
                repositories
                    .entry(n.familiar_name())
                    .or_default()
                    .insert(n.tag().unwrap_or("latest").into(), img.id.hex().into());
            }
            docker.push(DockerManifestEntry {
                config: format!("blobs/sha256/{}", img.id.hex()),
                repo_tags: Some(names.iter().map(|n| n.familiar()).collect()),
                layers: img
                    .manifest
                    .layers
                    .iter()
                    .map(|l| format!("blobs/sha256/{}", l.digest.hex()))
                    .collect(),
            });
        }
        append(&mut b, "index.json", &to_json(&index)?).map_err(werr)?;
        append(&mut b, "manifest.json", &to_json(&docker)?).map_err(werr)?;
        append(&mut b, "repositories", &to_json(&repositories)?).map_err(werr)?;
        b.into_inner().map_err(werr)?.flush().map_err(werr)?;
        Ok(())
    }

    /// Loads images from a `docker save` archive (old or new layout) or an OCI archive. Returns
    /// the ids loaded and the names given.
    pub fn load(
        &self,
        input: impl Read,
        archive_name: &str,
    ) -> Result<Vec<(ImageId, Vec<Reference>)>> {
        let mut meta: HashMap<String, Vec<u8>> = HashMap::new();
        // Blobs by digest (from blobs/…) and other files (legacy layer.tar) by path.
        let mut by_path: HashMap<String, Digest> = HashMap::new();
        // Blobs stay out of GC's reach until the images using them are named.
        let mut guards = Vec::new();
        let mut archive = tar::Archive::new(input);
        let entries = archive
            .entries()
            .map_err(|e| bad_archive(archive_name, e.to_string()))?;
        for entry in entries {
            let mut entry = entry.map_err(|e| bad_archive(archive_name, e.to_string()))?;
            if entry.header().entry_type() != tar::EntryType::Regular {
                continue;
            }
            let raw = entry.path_bytes().into_owned();
            let path = String::from_utf8_lossy(&raw)
                .trim_start_matches("./")
                .to_owned();
            let name = path.rsplit('/').next().unwrap_or("");
            if matches!(
                name,
                "manifest.json" | "index.json" | "repositories" | "oci-layout"
            ) && !path.contains('/')
            {
                if entry.size() > MAX_META {
                    return Err(bad_archive(archive_name, format!("{path} is too large")));
                }
                let mut v = Vec::new();
                entry
                    .read_to_end(&mut v)
                    .map_err(|e| bad_archive(archive_name, e.to_string()))?;
                meta.insert(path, v);
                continue;
            }
            let expected = path
                .strip_prefix("blobs/sha256/")
                .and_then(|h| Digest::parse(&format!("sha256:{h}")).ok());
            let mut w = self.content.ingest()?;
            io::copy(&mut entry, &mut w)
                .map_err(|e| bad_archive(archive_name, format!("{path}: {e}")))?;
            let d = w.commit(expected.as_ref(), None).map_err(|e| match e {
                ImageError::DigestMismatch {
                    expected, actual, ..
                } => ImageError::DigestMismatch {
                    what: format!("{archive_name}: {path}"),
                    expected,
                    actual,
                },
                e => e,
            })?;
            guards.push(self.protect([d.clone()]));
            by_path.insert(path, d);
        }
        let mut loaded = Vec::new();
        if let Some(idx) = meta.get("index.json") {
            let idx: Index = serde_json::from_slice(idx)
                .map_err(|e| ImageError::json(format!("{archive_name}: index.json"), e))?;
            let repo_tags: HashMap<String, Vec<String>> = match meta.get("manifest.json") {
                Some(m) => {
                    let m: Vec<DockerManifestEntry> = serde_json::from_slice(m).map_err(|e| {
                        ImageError::json(format!("{archive_name}: manifest.json"), e)
                    })?;
                    m.into_iter()
                        .map(|e| {
                            (
                                e.config.rsplit('/').next().unwrap_or("").to_owned(),
                                e.repo_tags.unwrap_or_default(),
                            )
                        })
                        .collect()
                }
                None => HashMap::new(),
            };
            for d in &idx.manifests {
                let (desc, manifest) = self.resolve_loaded_manifest(d, archive_name)?;
                let mut names: Vec<Reference> = Vec::new();
                if let Some(n) = d
                    .annotations
                    .get(ANN_CONTAINERD_NAME)
                    .and_then(|n| Reference::parse(n).ok())
                {
                    names.push(n);
                } else if let Some(tags) = repo_tags.get(manifest.config.digest.hex()) {
                    names.extend(tags.iter().filter_map(|t| Reference::parse(t).ok()));
                } else if let Some(n) = d
                    .annotations
                    .get(ANN_REF_NAME)
                    .filter(|n| n.contains('/') || n.contains(':'))
                    .and_then(|n| Reference::parse(n).ok())
                {
                    names.push(n);
                }
                let id = self.finish_load(&desc, &manifest, &names)?;
                loaded.push((id, names));
            }
        } else if let Some(m) = meta.get("manifest.json") {
            let m: Vec<DockerManifestEntry> = serde_json::from_slice(m)
                .map_err(|e| ImageError::json(format!("{archive_name}: manifest.json"), e))?;
            for e in m {
                let config_digest = by_path
                    .get(e.config.trim_start_matches("./"))
                    .cloned()
                    .ok_or_else(|| {
                        bad_archive(archive_name, format!("missing config {}", e.config))
                    })?;
                let mut layers = Vec::new();
                for l in &e.layers {
                    let d = by_path
                        .get(l.trim_start_matches("./"))
                        .cloned()
                        .ok_or_else(|| bad_archive(archive_name, format!("missing layer {l}")))?;
                    let mt = self.sniff_layer_type(&d)?;
                    let size = self.content.blob_size(&d).unwrap_or(0);
                    layers.push(Descriptor::new(mt, d, size));
                }
                let config_size = self.content.blob_size(&config_digest).unwrap_or(0);
                let manifest = Manifest {
                    schema_version: 2,
                    media_type: Some(OCI_MANIFEST.into()),
                    config: Descriptor::new(OCI_CONFIG, config_digest, config_size),
                    layers,
                    annotations: BTreeMap::new(),
                };
                let raw =
                    serde_json::to_vec(&manifest).map_err(|e| ImageError::json("manifest", e))?;
                let md = self.content.put(&raw, None)?;
                guards.push(self.protect([md.clone()]));
                let desc = Descriptor::new(OCI_MANIFEST, md, raw.len() as u64);
                let names: Vec<Reference> = e
                    .repo_tags
                    .unwrap_or_default()
                    .iter()
                    .filter_map(|t| Reference::parse(t).ok())
                    .collect();
                let id = self.finish_load(&desc, &manifest, &names)?;
                loaded.push((id, names));
            }
        } else {
            return Err(bad_archive(
                archive_name,
                "neither index.json nor manifest.json: not an image archive",
            ));
        }
        drop(guards);
        self.collect_garbage()?; // blobs of the archive no image uses
        Ok(loaded)
    }

    /// An index entry of a loaded layout, resolved to an image manifest (through a nested index).
    fn resolve_loaded_manifest(
        &self,
        d: &Descriptor,
        archive_name: &str,
    ) -> Result<(Descriptor, Manifest)> {
        let raw = self.content.read_blob(&d.digest)?;
        match AnyManifest::parse(&raw, Some(&d.media_type))? {
            (AnyManifest::Image(m), mt) => {
                Ok((Descriptor::new(&mt, d.digest.clone(), raw.len() as u64), m))
            }
            (AnyManifest::Index(i), _) => {
                let host = Platform::host();
                let pick = i
                    .manifests
                    .iter()
                    .find(|m| {
                        m.platform.as_ref().is_some_and(|p| host.matches(p))
                            && self.content.has_blob(&m.digest)
                    })
                    .or_else(|| {
                        i.manifests
                            .iter()
                            .find(|m| self.content.has_blob(&m.digest))
                    })
                    .ok_or_else(|| {
                        bad_archive(archive_name, "index with no manifest for this platform")
                    })?;
                self.resolve_loaded_manifest(pick, archive_name)
            }
        }
    }

    /// Checks every blob an image needs is present, unpacks its layers, names it.
    fn finish_load(
        &self,
        desc: &Descriptor,
        manifest: &Manifest,
        names: &[Reference],
    ) -> Result<ImageId> {
        for d in std::iter::once(&manifest.config).chain(&manifest.layers) {
            if !self.content.has_blob(&d.digest) {
                return Err(ImageError::BlobMissing {
                    digest: d.digest.clone(),
                });
            }
        }
        let config = ImageConfig::parse(&self.content.read_blob(&manifest.config.digest)?)?;
        let img = super::ops::Image {
            id: manifest.config.digest.clone(),
            desc: desc.clone(),
            manifest: manifest.clone(),
            names: Vec::new(),
            repo_digests: Vec::new(),
        };
        self.ensure_layers(&img, &config)?;
        if names.is_empty() {
            self.set_name(None, desc.clone(), None)?;
        }
        for n in names {
            self.set_name(Some(n), desc.clone(), None)?;
        }
        Ok(manifest.config.digest.clone())
    }

    /// A legacy `layer.tar` may be plain or compressed: look at its first bytes.
    fn sniff_layer_type(&self, d: &Digest) -> Result<&'static str> {
        let mut f = self.content.open_blob(d)?;
        let mut magic = [0u8; 4];
        let n = f
            .read(&mut magic)
            .map_err(|e| ImageError::io("read", self.content.blob_path(d), e))?;
        Ok(match &magic[..n] {
            [0x1f, 0x8b, ..] => OCI_LAYER_GZIP,
            [0x28, 0xb5, 0x2f, 0xfd] => OCI_LAYER_ZSTD,
            _ => OCI_LAYER_TAR,
        })
    }

    /// Makes a one-layer image from a rootfs tarball (plain, gzip or zstd), named `name` when
    /// given. The layer is stored gzip-compressed. Returns the image id.
    pub fn import(
        &self,
        input: impl Read,
        name: Option<&Reference>,
        run: RunConfig,
    ) -> Result<ImageId> {
        let mut input = io::BufReader::with_capacity(1 << 20, input);
        let magic = io::BufRead::fill_buf(&mut input)
            .map_err(|e| ImageError::io("read", "<import>", e))?
            .to_vec();
        let dec: Box<dyn Read> = if magic.starts_with(&[0x1f, 0x8b]) {
            Box::new(flate2::read::MultiGzDecoder::new(input))
        } else if magic.starts_with(&[0x28, 0xb5, 0x2f, 0xfd]) {
            Box::new(zstd::Decoder::new(input).map_err(|e| ImageError::io("zstd", "<import>", e))?)
        } else {
            Box::new(input)
        };
        let mut plain = HashingReader::new(dec);
        let mut w = self.content.ingest()?;
        {
            let mut gz = flate2::write::GzEncoder::new(&mut w, flate2::Compression::fast());
            io::copy(&mut plain, &mut gz).map_err(|e| ImageError::io("import", "<tarball>", e))?;
            gz.finish()
                .map_err(|e| ImageError::io("import", "<tarball>", e))?;
        }
        let (diff_id, _) = plain
            .finish()
            .map_err(|e| ImageError::io("import", "<tarball>", e))?;
        let size = w.written();
        let layer = w.commit(None, None)?;
        let layer_guard = self.protect([layer.clone()]);
        let host = Platform::host();
        let now = time::OffsetDateTime::now_utc()
            .format(&time::format_description::well_known::Rfc3339)
            .unwrap_or_default();
        let config = ImageConfig {
            created: Some(now.clone()),
            author: None,
            architecture: host.architecture,
            os: host.os,
            variant: host.variant,
            config: run,
            rootfs: RootFs {
                kind: "layers".into(),
                diff_ids: vec![diff_id],
            },
            history: vec![History {
                created: Some(now),
                created_by: Some("berth import".into()),
                ..Default::default()
            }],
        };
        let config_raw = serde_json::to_vec(&config).map_err(|e| ImageError::json("config", e))?;
        let config_digest = self.content.put(&config_raw, None)?;
        let config_guard = self.protect([config_digest.clone()]);
        let manifest = Manifest {
            schema_version: 2,
            media_type: Some(OCI_MANIFEST.into()),
            config: Descriptor::new(OCI_CONFIG, config_digest.clone(), config_raw.len() as u64),
            layers: vec![Descriptor::new(OCI_LAYER_GZIP, layer, size)],
            annotations: BTreeMap::new(),
        };
        let raw = serde_json::to_vec(&manifest).map_err(|e| ImageError::json("manifest", e))?;
        let md = self.content.put(&raw, None)?;
        let manifest_guard = self.protect([md.clone()]);
        let desc = Descriptor::new(OCI_MANIFEST, md, raw.len() as u64);
        let names: Vec<Reference> = name.into_iter().cloned().collect();
        // Unpacking checks the tarball's entries like any layer's; a hostile one is refused.
        let res = self.finish_load(&desc, &manifest, &names);
        drop((layer_guard, config_guard, manifest_guard));
        if res.is_err() {
            let _ = self.collect_garbage();
        }
        res
    }

    /// `save` to a file path.
    pub fn save_to(&self, images: &[&str], path: &Path) -> Result<()> {
        let tmp = path.with_extension(format!("tmp-{:08x}", rand::random::<u32>()));
        let f = std::fs::File::create(&tmp).map_err(|e| ImageError::io("create", &tmp, e))?;
        let res = self.save(images, io::BufWriter::new(f)).and_then(|_| {
            std::fs::rename(&tmp, path).map_err(|e| ImageError::io("rename", path, e))
        });
        if res.is_err() {
            let _ = std::fs::remove_file(&tmp);
        }
        res
    }
}

fn to_json<T: Serialize>(v: &T) -> Result<Vec<u8>> {
    serde_json::to_vec(v).map_err(|e| ImageError::json("archive metadata", e))
}
