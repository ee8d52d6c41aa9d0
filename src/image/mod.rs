//! The image manager: references, registry client (oci-client), content store, layer unpack,
//! overlay snapshots.
//!
//! Module map:
//! - [`reference`]: Docker-style image references (`busybox` = `docker.io/library/busybox:latest`).
//! - [`digest`]: content digests, hashing readers/writers, chain ids.
//! - [`error`]: [`ImageError`], the one error type of this module.
//! - [`layout`]: OCI index/manifest/descriptor/platform documents and media types.
//! - [`config`]: the image config (what a container runs, history).
//! - [`store`]: the content store, an OCI image layout under `<root>/images`.
//! - [`layers`]: unpacked layers under `<root>/layers/<chain id>`.
//! - [`unpack`]: safe streaming extraction of a layer tar into its own directory.
//! - [`registry`]: plain-HTTP rules, credentials, `login`.
//! - [`pull`], [`push`]: registry transfers with per-layer progress.
//! - [`ops`]: list, inspect, history, tag, remove, prune.
//! - [`snapshot`]: a container's rootfs (overlay lowerdirs + upper/work, or a copy).
//! - [`archive`]: `docker save`-compatible and OCI archives (save/load), rootfs import.

pub mod archive;
pub mod config;
pub mod digest;
pub mod error;
pub mod layers;
pub mod layout;
pub mod ops;
pub mod pull;
pub mod push;
pub mod reference;
pub mod registry;
pub mod snapshot;
pub mod store;
pub mod unpack;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

pub use config::{ImageConfig, RunConfig};
pub use digest::{Digest, ImageId};
pub use error::ImageError;
pub use layout::Platform;
pub use ops::{HistoryEntry, ImageDetails, ImageSummary, Removed};
pub use pull::{Phase, ProgressUpdate};
pub use reference::Reference;
pub use registry::RegistryOptions;
pub use snapshot::{PreparedRootfs, Rootfs, SnapshotMode};

use error::Result;
use layers::LayerStore;
use layout::{ANN_CONTAINERD_NAME, ANN_REF_NAME, ANN_REPO_DIGEST, Descriptor};
use store::ContentStore;

/// The image manager's handle on its part of the state root.
pub struct ImageStore {
    root: PathBuf,
    pub(crate) content: ContentStore,
    pub(crate) layers: LayerStore,
    pub(crate) registry: RegistryOptions,
    snapshot_mode: SnapshotMode,
    inflight: Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>,
    /// Digests (blobs and chain ids) a transfer in progress uses; GC leaves them alone.
    protected: Arc<Mutex<HashMap<Digest, usize>>>,
}

/// Keeps digests out of GC's reach while alive.
pub(crate) struct Protect {
    map: Arc<Mutex<HashMap<Digest, usize>>>,
    digests: Vec<Digest>,
}

impl Drop for Protect {
    fn drop(&mut self) {
        let mut m = self.map.lock().unwrap_or_else(|p| p.into_inner());
        for d in &self.digests {
            if let Some(n) = m.get_mut(d) {
                *n -= 1;
                if *n == 0 {
                    m.remove(d);
                }
            }
        }
    }
}

impl ImageStore {
    /// Opens the store under `root` (`root/images`, `root/layers`) with default registry
    /// settings, probing whether overlayfs works there (once per boot, see
    /// [`snapshot::probe_cached`]).
    pub fn open(root: &Path) -> Result<Self> {
        Self::open_with(root, RegistryOptions::default())
    }

    /// Opens the store with explicit registry settings (insecure registries, auth file).
    pub fn open_with(root: &Path, registry: RegistryOptions) -> Result<Self> {
        let content = ContentStore::open(&root.join("images"))?;
        let layers = LayerStore::open(&root.join("layers"))?;
        // Layers hold setuid binaries and the store holds every image: root only (moby's fix
        // for CVE-2021-41091 locks its data root down the same way).
        for d in [root.join("images"), root.join("layers")] {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(&d, std::fs::Permissions::from_mode(0o700))
                .map_err(|e| ImageError::io("chmod", &d, e))?;
        }
        let snapshot_mode =
            snapshot::probe_cached(&root.join("layers"), &root.join(snapshot::PROBE_MARKER));
        Ok(ImageStore {
            root: root.to_path_buf(),
            content,
            layers,
            registry,
            snapshot_mode,
            inflight: Mutex::new(HashMap::new()),
            protected: Arc::default(),
        })
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The OCI layout directory (`oci:<this>:<name>` for skopeo).
    pub fn layout_dir(&self) -> &Path {
        self.content.dir()
    }

    /// How container root filesystems are made here (chosen at open).
    pub fn snapshot_mode(&self) -> SnapshotMode {
        self.snapshot_mode
    }

    /// Forces a snapshot mode (tests of the copy fallback; a host without overlay).
    pub fn set_snapshot_mode(&mut self, mode: SnapshotMode) {
        self.snapshot_mode = mode;
    }

    pub fn registry_options(&self) -> &RegistryOptions {
        &self.registry
    }

    /// Stores credentials for `registry` in the Docker config file without asking the
    /// registry (what `login` did first; prefer `login_verified`). Returns the file written.
    pub fn login(&self, registry: &str, user: &str, password: &str) -> Result<PathBuf> {
        self.registry.login(registry, user, password)
    }

    /// `berth login`: checks the credentials with the registry (its token service, when it has
    /// one), then stores them in the Docker config file. Returns the file written.
    pub async fn login_verified(
        &self,
        registry: &str,
        user: &str,
        password: &str,
    ) -> Result<PathBuf> {
        let looks_like_host = registry.contains('.')
            || registry.contains(':')
            || registry == "localhost"
            || registry.starts_with('[');
        if !looks_like_host {
            return Err(ImageError::InvalidReference {
                reference: registry.into(),
                reason: "not a registry host[:port] (it needs a '.', a ':' or to be localhost)"
                    .into(),
            });
        }
        let probe = Reference::parse(&format!("{registry}/berth/login-check")).map_err(|_| {
            ImageError::InvalidReference {
                reference: registry.into(),
                reason: "not a registry host[:port]".into(),
            }
        })?;
        let client = self.registry.client(&probe);
        let auth = oci_client::secrets::RegistryAuth::Basic(user.into(), password.into());
        match client
            .auth(
                &pull::oci_ref(&probe),
                &auth,
                oci_client::RegistryOperation::Pull,
            )
            .await
        {
            Ok(_) => {}
            Err(oci_client::errors::OciDistributionError::AuthenticationFailure(reason)) => {
                return Err(ImageError::Credentials {
                    registry: registry.into(),
                    reason: format!("the registry refused them: {reason}"),
                });
            }
            Err(e) => return Err(registry::registry_error(&probe, e)),
        }
        self.registry.login(probe.registry(), user, password)
    }

    /// Protects `digests` from GC until the returned guard is dropped.
    pub(crate) fn protect(&self, digests: impl IntoIterator<Item = Digest>) -> Protect {
        let digests: Vec<Digest> = digests.into_iter().collect();
        let mut m = self.protected.lock().unwrap_or_else(|p| p.into_inner());
        for d in &digests {
            *m.entry(d.clone()).or_default() += 1;
        }
        Protect {
            map: self.protected.clone(),
            digests,
        }
    }

    pub(crate) fn protected_now(&self) -> Vec<Digest> {
        self.protected
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .keys()
            .cloned()
            .collect()
    }

    /// The per-key lock that makes concurrent pulls of one layer share the work.
    pub(crate) fn inflight_lock(&self, key: &str) -> Arc<tokio::sync::Mutex<()>> {
        let mut m = self.inflight.lock().unwrap_or_else(|p| p.into_inner());
        m.retain(|_, v| Arc::strong_count(v) > 1);
        m.entry(key.to_owned()).or_default().clone()
    }

    /// Points `name` at the image manifest `desc` in `index.json` (or, with no name, records it
    /// as a dangling image). An image that loses its last name stays, dangling, until pruned.
    pub(crate) fn set_name(
        &self,
        name: Option<&Reference>,
        mut desc: Descriptor,
        repo_digest: Option<String>,
    ) -> Result<()> {
        desc.annotations.clear();
        if let Some(n) = name {
            desc.annotations.insert(ANN_REF_NAME.into(), n.to_string());
            desc.annotations
                .insert(ANN_CONTAINERD_NAME.into(), n.to_string());
        }
        if let Some(rd) = repo_digest {
            desc.annotations.insert(ANN_REPO_DIGEST.into(), rd);
        }
        self.content.update_index(|idx| {
            let mut orphaned = Vec::new();
            if let Some(n) = name {
                let n = n.to_string();
                idx.manifests.retain(|d| {
                    let hit = d.annotations.get(ANN_REF_NAME) == Some(&n);
                    if hit {
                        orphaned.push(d.clone());
                    }
                    !hit
                });
            }
            // This manifest is named now: drop its dangling entry.
            idx.manifests
                .retain(|d| d.digest != desc.digest || d.annotations.contains_key(ANN_REF_NAME));
            if name.is_none() && idx.manifests.iter().any(|d| d.digest == desc.digest) {
                return Ok(()); // already named elsewhere: nothing dangles
            }
            idx.manifests.push(desc.clone());
            for mut o in orphaned {
                if o.digest != desc.digest && !idx.manifests.iter().any(|d| d.digest == o.digest) {
                    o.annotations.remove(ANN_REF_NAME);
                    o.annotations.remove(ANN_CONTAINERD_NAME);
                    idx.manifests.push(o);
                }
            }
            Ok(())
        })
    }
}
