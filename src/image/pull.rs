//! `pull`: resolve a reference (picking a platform from an index), then download every layer in
//! parallel, each streamed through hashing, decompression and the safe unpacker at once. The
//! compressed digest, the size and the uncompressed digest (`diff_id`) are all checked before a
//! blob or a layer directory becomes visible. Concurrent pulls of one layer share the work: the
//! second waits for the first and then finds the layer in place.

use std::io::{self, Read};
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use bytes::Bytes;
use futures_util::StreamExt;
use oci_client::manifest::OciDescriptor;

use super::ImageStore;
use super::config::ImageConfig;
use super::digest::{Digest, Hasher, ImageId, chain_ids};
use super::error::{ImageError, Result};
use super::layers::LayerRecord;
use super::layout::{AnyManifest, Compression, Descriptor, MANIFEST_TYPES, Platform};
use super::reference::Reference;
use super::registry::registry_error;
use super::store::BlobWriter;
use super::unpack::{UnpackStats, unpack_compressed};

/// Where one layer of a pull (or push) is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Phase {
    Waiting,
    Downloading,
    Verifying,
    Extracting,
    Complete,
    AlreadyExists,
    Uploading,
}

/// One progress report about one layer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProgressUpdate {
    /// The layer blob's digest.
    pub layer: Digest,
    pub phase: Phase,
    /// Bytes done (compressed bytes downloaded or uploaded, or read back from the store).
    pub current: u64,
    /// Bytes in all (the blob's size).
    pub total: u64,
}

pub(crate) type Progress = Arc<dyn Fn(ProgressUpdate) + Send + Sync>;

/// How many times a layer download is tried before its error is the pull's.
const LAYER_ATTEMPTS: u64 = 3;

/// Removes a staging directory when dropped (a no-op once it was renamed into place).
struct StagingGuard(std::path::PathBuf);

impl Drop for StagingGuard {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// What a layer pipeline saw, whatever happened to the unpack.
struct LayerOutcome {
    compressed: Digest,
    compressed_len: u64,
    unpack: Option<Result<(Digest, UnpackStats)>>,
    blob: Option<BlobWriter>,
}

/// Reads bytes handed over from the async download task.
struct ChannelReader {
    rx: tokio::sync::mpsc::Receiver<Bytes>,
    cur: Bytes,
}

impl Read for ChannelReader {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        while self.cur.is_empty() {
            match self.rx.blocking_recv() {
                Some(b) => self.cur = b,
                None => return Ok(0),
            }
        }
        let n = buf.len().min(self.cur.len());
        buf[..n].copy_from_slice(&self.cur.split_to(n));
        Ok(n)
    }
}

/// Hashes the compressed stream as the decompressor reads it, reporting progress.
struct Tee<R> {
    inner: R,
    hasher: Hasher,
    progress: Option<(Progress, Digest, u64)>,
    last_report: u64,
}

impl<R: Read> Read for Tee<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.hasher.update(&buf[..n]);
        if let Some((p, d, total)) = &self.progress {
            let done = self.hasher.len();
            if done - self.last_report >= 4 << 20 || (n == 0 && done != self.last_report) {
                self.last_report = done;
                p(ProgressUpdate {
                    layer: d.clone(),
                    phase: Phase::Extracting,
                    current: done,
                    total: *total,
                });
            }
        }
        Ok(n)
    }
}

/// Runs one stored layer through hash → decompress → hash → unpack. Blocking.
fn process_layer(
    src: impl Read + Send,
    compression: Compression,
    dest: &Path,
    name: &str,
    progress: (Progress, Digest, u64),
) -> LayerOutcome {
    let size = progress.2;
    let mut tee = Tee {
        inner: src,
        hasher: Hasher::new(),
        progress: Some(progress),
        last_report: 0,
    };
    let unpack = unpack_compressed(&mut tee, compression, dest, name, Some(size));
    // Whatever happened, read the rest so the compressed digest covers the whole blob.
    let _ = io::copy(&mut tee, &mut io::sink());
    let compressed_len = tee.hasher.len();
    LayerOutcome {
        compressed: tee.hasher.finish(),
        compressed_len,
        unpack: Some(unpack),
        blob: None,
    }
}

fn oci_desc(d: &Descriptor) -> OciDescriptor {
    OciDescriptor {
        media_type: d.media_type.clone(),
        digest: d.digest.to_string(),
        size: d.size as i64,
        urls: None,
        annotations: None,
        artifact_type: None,
    }
}

/// The oci-client form of a reference (by digest when it has one).
pub(crate) fn oci_ref(r: &Reference) -> oci_client::Reference {
    match (r.digest(), r.tag()) {
        (Some(d), _) => oci_client::Reference::with_digest(
            r.registry().into(),
            r.repository().into(),
            d.to_string(),
        ),
        (None, Some(t)) => {
            oci_client::Reference::with_tag(r.registry().into(), r.repository().into(), t.into())
        }
        (None, None) => oci_client::Reference::with_tag(
            r.registry().into(),
            r.repository().into(),
            "latest".into(),
        ),
    }
}

impl ImageStore {
    /// Pulls `reference` for `platform` (the host's when `None`), reporting per-layer progress.
    /// Returns the image id (the config digest).
    pub async fn pull(
        &self,
        reference: &Reference,
        platform: Option<&Platform>,
        progress: impl Fn(ProgressUpdate) + Send + Sync + 'static,
    ) -> Result<ImageId> {
        let progress: Progress = Arc::new(progress);
        let want = platform.cloned().unwrap_or_else(Platform::host);
        let client = self.registry.client(reference);
        let auth = self.registry.auth(reference)?;
        let oref = oci_ref(reference);

        // Resolve: the manifest the reference names, through an index if it is one.
        let (raw, digest) = client
            .pull_manifest_raw(&oref, &auth, MANIFEST_TYPES)
            .await
            .map_err(|e| registry_error(reference, e))?;
        let top_digest = verify_manifest(reference, &raw, &digest)?;
        let (doc, mt) = AnyManifest::parse(&raw, None)?;
        let (manifest, manifest_raw, manifest_desc) = match doc {
            AnyManifest::Image(m) => {
                let desc = Descriptor::new(&mt, top_digest.clone(), raw.len() as u64);
                (m, raw.to_vec(), desc)
            }
            AnyManifest::Index(idx) => {
                let pick = idx
                    .manifests
                    .iter()
                    .find(|d| d.platform.as_ref().is_some_and(|p| want.matches_exactly(p)))
                    .or_else(|| {
                        idx.manifests
                            .iter()
                            .find(|d| d.platform.as_ref().is_some_and(|p| want.matches(p)))
                    })
                    .cloned()
                    .ok_or_else(|| ImageError::NoMatchingPlatform {
                        reference: reference.to_string(),
                        platform: want.to_string(),
                        available: idx
                            .manifests
                            .iter()
                            .filter_map(|d| d.platform.as_ref().map(|p| p.to_string()))
                            .collect::<Vec<_>>()
                            .join(", "),
                    })?;
                let child = reference.with_digest(pick.digest.clone());
                let (raw, digest) = client
                    .pull_manifest_raw(&oci_ref(&child), &auth, MANIFEST_TYPES)
                    .await
                    .map_err(|e| registry_error(&child, e))?;
                verify_manifest(&child, &raw, &digest)?;
                match AnyManifest::parse(&raw, None)? {
                    (AnyManifest::Image(m), mt) => {
                        let mut desc = Descriptor::new(&mt, pick.digest.clone(), raw.len() as u64);
                        desc.platform = pick.platform.clone();
                        (m, raw.to_vec(), desc)
                    }
                    (AnyManifest::Index(_), _) => {
                        return Err(ImageError::Unsupported {
                            what: "image index".into(),
                            detail: format!("{child}: an index inside an index"),
                        });
                    }
                }
            }
        };

        let protect_blobs = self.protect(
            manifest
                .layers
                .iter()
                .map(|l| l.digest.clone())
                .chain([manifest.config.digest.clone(), manifest_desc.digest.clone()]),
        );
        let pulled = self
            .pull_image(
                &client,
                reference,
                &manifest,
                (manifest_raw, manifest_desc, top_digest),
                progress,
            )
            .await;
        drop(protect_blobs);
        if pulled.is_err() {
            // A refused image (or a pull cut short) leaves none of its content behind that
            // nothing else uses.
            self.discard_unused(&manifest);
        }
        pulled
    }

    /// The second half of [`ImageStore::pull`], once the manifest is known: the config, every
    /// layer, then the image's name.
    async fn pull_image(
        &self,
        client: &oci_client::Client,
        reference: &Reference,
        manifest: &super::layout::Manifest,
        // The manifest's bytes, its descriptor, the digest of what the reference named.
        (manifest_raw, manifest_desc, top_digest): (Vec<u8>, Descriptor, Digest),
        progress: Progress,
    ) -> Result<ImageId> {
        // Config first: it names the diff ids the layers must unpack to.
        let config_raw = self
            .fetch_small_blob(client, reference, &manifest.config)
            .await?;
        let config = ImageConfig::parse(&config_raw)?;
        if config.rootfs.diff_ids.len() != manifest.layers.len() {
            return Err(ImageError::Unsupported {
                what: "image".into(),
                detail: format!(
                    "{reference}: {} layers but {} diff ids in the config",
                    manifest.layers.len(),
                    config.rootfs.diff_ids.len()
                ),
            });
        }
        let chains = chain_ids(&config.rootfs.diff_ids);
        let _protect_layers = self.protect(chains.iter().cloned());
        for l in &manifest.layers {
            progress(ProgressUpdate {
                layer: l.digest.clone(),
                phase: Phase::Waiting,
                current: 0,
                total: l.size,
            });
        }

        let sem = Arc::new(tokio::sync::Semaphore::new(4));
        let jobs = manifest.layers.iter().enumerate().map(|(i, l)| {
            let sem = sem.clone();
            let client = &client;
            let progress = progress.clone();
            let diff = &config.rootfs.diff_ids[i];
            let chain = &chains[i];
            async move {
                let _permit = sem.acquire().await.expect("semaphore open");
                // A dropped connection or a registry hiccup restarts the layer (as Docker does);
                // content errors (digest, unsafe entry) do not.
                let mut attempt = 1;
                loop {
                    match self
                        .fetch_layer(client, reference, l, diff, chain, progress.clone())
                        .await
                    {
                        Err(ImageError::Registry { .. }) if attempt < LAYER_ATTEMPTS => {
                            tokio::time::sleep(Duration::from_millis(500 * attempt)).await;
                            attempt += 1;
                        }
                        other => break other,
                    }
                }
            }
        });
        // Every layer job runs to its end (no detached unpack left writing), then the first
        // error, if any, is the pull's.
        for r in futures_util::future::join_all(jobs).await {
            r?;
        }

        // Everything is in place: record the manifest and name the image.
        self.content
            .put(&manifest_raw, Some(&manifest_desc.digest))?;
        let name = match reference.digest() {
            Some(d) => reference.with_digest(d.clone()),
            None => reference.clone(),
        };
        let repo_digest = format!("{}@{}", reference.name(), top_digest);
        self.set_name(Some(&name), manifest_desc, Some(repo_digest))?;
        Ok(manifest.config.digest.clone())
    }

    /// Fetches a small blob (a config) whole, verifies and stores it.
    async fn fetch_small_blob(
        &self,
        client: &oci_client::Client,
        r: &Reference,
        d: &Descriptor,
    ) -> Result<Vec<u8>> {
        if self.content.has_blob(&d.digest) {
            return self.content.read_blob(&d.digest);
        }
        let mut stream = client
            .pull_blob_stream(&oci_ref(r), &oci_desc(d))
            .await
            .map_err(|e| registry_error(r, e))?;
        let mut data = Vec::with_capacity(d.size as usize);
        while let Some(chunk) = stream.next().await {
            match chunk {
                Ok(c) => data.extend_from_slice(&c),
                Err(_) if data.len() as u64 >= d.size => break, // the client's own digest check; ours follows
                Err(e) => return Err(registry_error(r, e)),
            }
            if data.len() as u64 > d.size.max(1) * 2 + (1 << 20) {
                return Err(ImageError::SizeMismatch {
                    digest: d.digest.clone(),
                    expected: d.size,
                    actual: data.len() as u64,
                });
            }
        }
        self.content
            .put(&data, Some(&d.digest))
            .map_err(|e| match e {
                ImageError::DigestMismatch {
                    expected, actual, ..
                } => ImageError::DigestMismatch {
                    what: format!("config of {r}"),
                    expected,
                    actual,
                },
                e => e,
            })?;
        Ok(data)
    }

    /// Makes sure layer `l` is both a verified blob and an unpacked layer directory.
    async fn fetch_layer(
        &self,
        client: &oci_client::Client,
        r: &Reference,
        l: &Descriptor,
        diff_id: &Digest,
        chain: &Digest,
        progress: Progress,
    ) -> Result<()> {
        let report = |phase, current| {
            progress(ProgressUpdate {
                layer: l.digest.clone(),
                phase,
                current,
                total: l.size,
            })
        };
        let compression = Compression::of_media_type(&l.media_type)?;
        // One pull at a time per layer; the others wait here and then find it done.
        let lock = self.inflight_lock(chain.as_str());
        let _guard = lock.lock().await;
        let have_blob = self.content.has_blob(&l.digest);
        let have_layer = self.layers.exists(chain);
        if have_blob && have_layer {
            report(Phase::AlreadyExists, l.size);
            return Ok(());
        }
        let staging = if have_layer {
            None
        } else {
            Some(self.layers.staging(chain)?)
        };
        // However this ends (error, or the caller dropping the pull), no staging dir stays;
        // after a commit the path no longer exists and this does nothing.
        let _staging_guard = staging.clone().map(StagingGuard);
        let name = l.digest.to_string();

        let outcome = if let (true, Some(dir)) = (have_blob, staging.clone()) {
            // The blob is here but not unpacked: unpack from the store.
            let file = self.content.open_blob(&l.digest)?;
            let p = (progress.clone(), l.digest.clone(), l.size);
            let name2 = name.clone();
            report(Phase::Extracting, 0);
            let out = tokio::task::spawn_blocking(move || {
                process_layer(
                    io::BufReader::with_capacity(1 << 20, file),
                    compression,
                    &dir,
                    &name2,
                    p,
                )
            })
            .await
            .map_err(|e| ImageError::BadLayer {
                layer: name.clone(),
                reason: format!("unpack task failed: {e}"),
            })?;
            (out, None)
        } else {
            // Asked as the range from byte 0: oci-client then hands over the body as it comes,
            // without hashing it a third time (the blob writer hashes it, and its digest is
            // checked below before anything becomes visible; that pass was 10% of a big pull's
            // CPU). A registry that ignores the range answers in full, verified by oci-client too.
            let mut stream = client
                .pull_blob_stream_partial(&oci_ref(r), &oci_desc(l), 0, None)
                .await
                .map(|b| match b {
                    oci_client::client::BlobResponse::Full(s)
                    | oci_client::client::BlobResponse::Partial(s) => s,
                })
                .map_err(|e| {
                    if let Some(s) = &staging {
                        self.layers.discard(s);
                    }
                    registry_error(r, e)
                })?;
            // A registry whose Content-Length is not the size the manifest lists sends a body
            // that cannot be the blob (cut short, or cut off): refused before a byte is kept.
            if let Some(n) = stream.content_length
                && n != l.size
            {
                if let Some(s) = &staging {
                    self.layers.discard(s);
                }
                return Err(ImageError::SizeMismatch {
                    digest: l.digest.clone(),
                    expected: l.size,
                    actual: n,
                });
            }
            // Two consumers of the download: the blob writer (hash, write, fsync as soon as
            // the last byte is in) and the unpacker (decompress, hash, extract). The writer gets
            // every byte even if the unpacker stops early, so the digest verdict comes first.
            let mut writer = self.content.ingest_direct()?;
            let (btx, mut brx) = tokio::sync::mpsc::channel::<Bytes>(512);
            let blob_task = tokio::task::spawn_blocking(move || -> io::Result<BlobWriter> {
                while let Some(b) = brx.blocking_recv() {
                    io::Write::write_all(&mut writer, &b)?;
                }
                writer.sync()?;
                Ok(writer)
            });
            let unpack_task = staging.clone().map(|dir| {
                let (utx, rx) = tokio::sync::mpsc::channel::<Bytes>(512);
                let name2 = name.clone();
                let size = l.size;
                let task = tokio::task::spawn_blocking(move || {
                    let src = ChannelReader {
                        rx,
                        cur: Bytes::new(),
                    };
                    unpack_compressed(src, compression, &dir, &name2, Some(size))
                });
                (utx, task)
            });
            let (mut utx, unpack_task) = match unpack_task {
                Some((tx, task)) => (Some(tx), Some(task)),
                None => (None, None),
            };
            // Pump the download into both, reporting bytes.
            let got = AtomicU64::new(0);
            let mut stream_err: Option<String> = None;
            let mut last = Instant::now();
            report(Phase::Downloading, 0);
            while let Some(chunk) = stream.next().await {
                match chunk {
                    Ok(b) => {
                        let n = got.fetch_add(b.len() as u64, Ordering::Relaxed) + b.len() as u64;
                        if let Some(tx) = &utx
                            && tx.send(b.clone()).await.is_err()
                        {
                            utx = None; // the unpacker stopped (an error it will report)
                        }
                        if btx.send(b).await.is_err() {
                            break; // the writer failed (an error it will report)
                        }
                        if last.elapsed() >= Duration::from_millis(100) {
                            last = Instant::now();
                            report(Phase::Downloading, n);
                        }
                        if n > l.size {
                            stream_err = Some(format!(
                                "registry sent more than the {} bytes the manifest lists",
                                l.size
                            ));
                            break;
                        }
                    }
                    Err(e) => {
                        stream_err = Some(e.to_string());
                        break;
                    }
                }
            }
            drop(utx);
            drop(btx);
            // Downloaded; the unpacker may still be catching up.
            report(Phase::Extracting, got.load(Ordering::Relaxed));
            let task_err = |e: tokio::task::JoinError| ImageError::BadLayer {
                layer: name.clone(),
                reason: format!("layer task failed: {e}"),
            };
            let blob = blob_task.await.map_err(task_err).and_then(|r| {
                r.map_err(|e| ImageError::io("write blob", self.content.dir().join("ingest"), e))
            });
            let unpack = match unpack_task {
                Some(t) => Some(t.await.map_err(task_err)),
                None => None,
            };
            let (blob, unpack) = match (blob, unpack.transpose()) {
                (Ok(b), Ok(u)) => (b, u),
                (Err(e), _) | (_, Err(e)) => {
                    if let Some(s) = &staging {
                        self.layers.discard(s);
                    }
                    return Err(e);
                }
            };
            report(Phase::Verifying, got.load(Ordering::Relaxed));
            let out = LayerOutcome {
                compressed: blob.digest(),
                compressed_len: blob.written(),
                unpack,
                blob: Some(blob),
            };
            (out, stream_err)
        };
        let (out, stream_err) = outcome;
        let cleanup = || {
            if let Some(s) = &staging {
                self.layers.discard(s);
            }
        };
        // 1. The compressed bytes must be exactly the blob the manifest names.
        if out.compressed != l.digest {
            cleanup();
            if let Some(e) = stream_err.filter(|_| out.compressed_len < l.size) {
                return Err(registry_error(r, format!("downloading {}: {e}", l.digest)));
            }
            return Err(ImageError::DigestMismatch {
                what: format!("layer {} of {r}", l.digest),
                expected: l.digest.clone(),
                actual: out.compressed,
            });
        }
        if out.compressed_len != l.size {
            cleanup();
            return Err(ImageError::SizeMismatch {
                digest: l.digest.clone(),
                expected: l.size,
                actual: out.compressed_len,
            });
        }
        // 2. The unpack must have succeeded, to the diff id the config names.
        let mut record = None;
        if let Some(res) = out.unpack {
            match res {
                Err(e) => {
                    cleanup();
                    return Err(e);
                }
                Ok((diff, stats)) => {
                    if &diff != diff_id {
                        cleanup();
                        return Err(ImageError::DigestMismatch {
                            what: format!("uncompressed layer {} of {r} (diff id)", l.digest),
                            expected: diff_id.clone(),
                            actual: diff,
                        });
                    }
                    record = Some(LayerRecord {
                        chain_id: chain.clone(),
                        diff_id: diff,
                        size: stats.bytes,
                        entries: stats.entries,
                    });
                }
            }
        }
        // 3. Make both visible: the blob under its digest, the layer under its chain id.
        if let Some(w) = out.blob {
            let w_digest = l.digest.clone();
            tokio::task::spawn_blocking(move || w.commit(Some(&w_digest), None))
                .await
                .map_err(|e| ImageError::BadLayer {
                    layer: name.clone(),
                    reason: format!("commit task failed: {e}"),
                })??;
        }
        if let (Some(s), Some(rec)) = (&staging, &record) {
            self.layers.commit(s, rec)?;
        }
        report(Phase::Complete, l.size);
        Ok(())
    }
}

/// Checks a fetched manifest against the digest asked for (when pinned) and returns its digest.
fn verify_manifest(r: &Reference, raw: &[u8], _reported: &str) -> Result<Digest> {
    let actual = Digest::of(raw);
    if let Some(want) = r.digest()
        && want.algorithm() == "sha256"
        && *want != actual
    {
        return Err(ImageError::DigestMismatch {
            what: format!("manifest of {r}"),
            expected: want.clone(),
            actual,
        });
    }
    Ok(actual)
}
