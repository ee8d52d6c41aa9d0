//! `push`: upload an image's layers (streamed from the store, skipping blobs the registry
//! already has), its config, then its manifest under the reference's tag.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use bytes::Bytes;
use futures_util::StreamExt;
use oci_client::RegistryOperation;
use oci_client::errors::OciDistributionError;
use tokio::io::AsyncReadExt;

use super::ImageStore;
use super::digest::Digest;
use super::error::{ImageError, Result};
use super::layout::Descriptor;
use super::pull::{Phase, Progress, ProgressUpdate, oci_ref};
use super::reference::Reference;
use super::registry::registry_error;

impl ImageStore {
    /// Pushes the image named `reference` to its registry. Returns the manifest digest.
    pub async fn push(
        &self,
        reference: &Reference,
        progress: impl Fn(ProgressUpdate) + Send + Sync + 'static,
    ) -> Result<Digest> {
        let progress: Progress = Arc::new(progress);
        let img = self.resolve(&reference.to_string())?;
        let target = reference.clone();
        let client = self.registry.push_client(&target);
        let auth = self.registry.auth(&target)?;
        let oref = oci_ref(&target);
        client
            .auth(&oref, &auth, RegistryOperation::Push)
            .await
            .map_err(|e| registry_error(&target, e))?;

        let layers = img.manifest.layers.clone();
        let jobs = layers.iter().map(|l| {
            let progress = progress.clone();
            let client = &client;
            let oref = &oref;
            let target = &target;
            async move { self.push_blob(client, oref, target, l, progress).await }
        });
        futures_util::future::try_join_all(jobs).await?;

        let config = self.content.read_blob(&img.id)?;
        if !client
            .blob_exists(&oref, img.id.as_str())
            .await
            .map_err(|e| registry_error(&target, e))?
        {
            client
                .push_blob(&oref, config, img.id.as_str())
                .await
                .map_err(|e| registry_error(&target, e))?;
        }
        let manifest = self.content.read_blob(&img.desc.digest)?;
        let ct = img
            .manifest
            .media_type
            .clone()
            .unwrap_or_else(|| img.desc.media_type.clone())
            .parse()
            .map_err(|e| registry_error(&target, format!("bad media type: {e}")))?;
        client
            .push_manifest_raw(&oref, manifest, ct)
            .await
            .map_err(|e| registry_error(&target, e))?;
        // Record the digest the registry now knows the image by.
        if reference.digest().is_none() {
            let _ = self.set_name(
                Some(reference),
                img.desc.clone(),
                Some(format!("{}@{}", reference.name(), img.desc.digest)),
            );
        }
        Ok(img.desc.digest.clone())
    }

    async fn push_blob(
        &self,
        client: &oci_client::Client,
        oref: &oci_client::Reference,
        target: &Reference,
        l: &Descriptor,
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
        if client
            .blob_exists(oref, l.digest.as_str())
            .await
            .map_err(|e| registry_error(target, e))?
        {
            report(Phase::AlreadyExists, l.size);
            return Ok(());
        }
        let path = self.content.blob_path(&l.digest);
        let file = tokio::fs::File::open(&path)
            .await
            .map_err(|e| ImageError::io("open", &path, e))?;
        let sent = Arc::new(AtomicU64::new(0));
        let sent2 = sent.clone();
        let progress2 = progress.clone();
        let digest = l.digest.clone();
        let total = l.size;
        // The file is read in 1 MiB chunks; progress is reported per chunk.
        let stream = futures_util::stream::unfold(file, move |mut f| async move {
            let mut buf = vec![0u8; 1 << 20];
            match f.read(&mut buf).await {
                Ok(0) => None,
                Ok(n) => {
                    buf.truncate(n);
                    Some((Ok::<Bytes, OciDistributionError>(Bytes::from(buf)), f))
                }
                Err(e) => Some((Err(OciDistributionError::IoError(e)), f)),
            }
        })
        .inspect(move |c| {
            if let Ok(b) = c {
                let n = sent2.fetch_add(b.len() as u64, Ordering::Relaxed) + b.len() as u64;
                progress2(ProgressUpdate {
                    layer: digest.clone(),
                    phase: Phase::Uploading,
                    current: n,
                    total,
                });
            }
        });
        report(Phase::Uploading, 0);
        client
            .push_blob_stream(oref, stream, l.digest.as_str(), Some(l.size))
            .await
            .map_err(|e| registry_error(target, format!("uploading {}: {e}", l.digest)))?;
        report(Phase::Complete, sent.load(Ordering::Relaxed));
        Ok(())
    }
}
