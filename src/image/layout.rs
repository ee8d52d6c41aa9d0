//! OCI image-layout documents (index, manifest, descriptor, platform) and the media types
//! berth reads. Docker schema 2 manifests and manifest lists share the OCI shapes.

use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Serialize};

use super::digest::Digest;
use super::error::{ImageError, Result};

pub const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
pub const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
pub const OCI_CONFIG: &str = "application/vnd.oci.image.config.v1+json";
pub const OCI_LAYER_TAR: &str = "application/vnd.oci.image.layer.v1.tar";
pub const OCI_LAYER_GZIP: &str = "application/vnd.oci.image.layer.v1.tar+gzip";
pub const OCI_LAYER_ZSTD: &str = "application/vnd.oci.image.layer.v1.tar+zstd";
pub const DOCKER_LIST: &str = "application/vnd.docker.distribution.manifest.list.v2+json";
pub const DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";
pub const DOCKER_CONFIG: &str = "application/vnd.docker.container.image.v1+json";
pub const DOCKER_LAYER_GZIP: &str = "application/vnd.docker.image.rootfs.diff.tar.gzip";
pub const DOCKER_LAYER_FOREIGN: &str = "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip";

/// Every manifest type we accept from a registry.
pub const MANIFEST_TYPES: &[&str] = &[OCI_MANIFEST, DOCKER_MANIFEST, OCI_INDEX, DOCKER_LIST];

/// The annotation holding an image's name in an OCI layout (the one skopeo/umoci look up).
pub const ANN_REF_NAME: &str = "org.opencontainers.image.ref.name";
/// containerd's annotation for the full name; we set it too, for tools that read it.
pub const ANN_CONTAINERD_NAME: &str = "io.containerd.image.name";
/// The digest the registry knows the image by (index digest when an index was pulled).
pub const ANN_REPO_DIGEST: &str = "io.berth.repo-digest";

/// A layer's compression, from its media type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Compression {
    None,
    Gzip,
    Zstd,
}

impl Compression {
    pub fn of_media_type(mt: &str) -> Result<Self> {
        match mt {
            OCI_LAYER_TAR | "application/vnd.docker.image.rootfs.diff.tar" => Ok(Compression::None),
            OCI_LAYER_GZIP | DOCKER_LAYER_GZIP | DOCKER_LAYER_FOREIGN => Ok(Compression::Gzip),
            OCI_LAYER_ZSTD => Ok(Compression::Zstd),
            other => Err(ImageError::Unsupported {
                what: "layer media type".into(),
                detail: other.into(),
            }),
        }
    }
}

/// A content descriptor.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Descriptor {
    pub media_type: String,
    pub digest: Digest,
    pub size: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub platform: Option<Platform>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub annotations: BTreeMap<String, String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub urls: Vec<String>,
}

impl Descriptor {
    pub fn new(media_type: &str, digest: Digest, size: u64) -> Self {
        Descriptor {
            media_type: media_type.to_owned(),
            digest,
            size,
            platform: None,
            annotations: BTreeMap::new(),
            urls: Vec::new(),
        }
    }
}

/// `os/arch[/variant]`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Platform {
    pub architecture: String,
    pub os: String,
    #[serde(
        rename = "os.version",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub os_version: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub variant: Option<String>,
}

impl Platform {
    /// The platform this binary runs on, in OCI's names.
    pub fn host() -> Self {
        let (arch, variant) = match std::env::consts::ARCH {
            "x86_64" => ("amd64", None),
            "aarch64" => ("arm64", Some("v8")),
            "arm" => ("arm", Some("v7")),
            "x86" => ("386", None),
            "powerpc64" => ("ppc64le", None),
            other => (other, None),
        };
        Platform {
            architecture: arch.into(),
            os: "linux".into(),
            os_version: None,
            variant: variant.map(Into::into),
        }
    }

    /// Parses `os/arch[/variant]` (as `--platform` takes it).
    pub fn parse(s: &str) -> Result<Self> {
        let bad = || ImageError::InvalidPlatform { platform: s.into() };
        let parts: Vec<&str> = s.split('/').collect();
        let ok = |p: &str| {
            !p.is_empty()
                && p.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'.')
        };
        match parts.as_slice() {
            [os, arch] if ok(os) && ok(arch) => Ok(Platform {
                os: os.to_lowercase(),
                architecture: arch.to_lowercase(),
                os_version: None,
                variant: None,
            }),
            [os, arch, variant] if ok(os) && ok(arch) && ok(variant) => Ok(Platform {
                os: os.to_lowercase(),
                architecture: arch.to_lowercase(),
                os_version: None,
                variant: Some(variant.to_lowercase()),
            }),
            _ => Err(bad()),
        }
    }

    /// Whether an index entry's platform satisfies this wanted platform: same os and
    /// architecture, and the variants equal or either one unspecified (arm64 entries may or
    /// may not say `v8`). Prefer `matches_exactly` when several match.
    pub fn matches(&self, candidate: &Platform) -> bool {
        self.os == candidate.os
            && self.architecture == candidate.architecture
            && (self.variant.is_none()
                || candidate.variant.is_none()
                || self.variant == candidate.variant)
    }

    /// Same os, architecture and variant.
    pub fn matches_exactly(&self, candidate: &Platform) -> bool {
        self.os == candidate.os
            && self.architecture == candidate.architecture
            && self.variant == candidate.variant
    }
}

impl fmt::Display for Platform {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.os, self.architecture)?;
        if let Some(v) = &self.variant {
            write!(f, "/{v}")?;
        }
        Ok(())
    }
}

/// An image index / manifest list, and the layout's own `index.json`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Index {
    pub schema_version: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub media_type: Option<String>,
    pub manifests: Vec<Descriptor>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub annotations: BTreeMap<String, String>,
}

impl Default for Index {
    fn default() -> Self {
        Index {
            schema_version: 2,
            media_type: Some(OCI_INDEX.into()),
            manifests: Vec::new(),
            annotations: BTreeMap::new(),
        }
    }
}

/// An image manifest (OCI or Docker schema 2).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Manifest {
    pub schema_version: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub media_type: Option<String>,
    pub config: Descriptor,
    pub layers: Vec<Descriptor>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub annotations: BTreeMap<String, String>,
}

/// Either kind of document a manifest endpoint can return.
pub enum AnyManifest {
    Index(Index),
    Image(Manifest),
}

/// Just enough to tell an index from a manifest.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Probe {
    #[serde(default)]
    schema_version: Option<u32>,
    #[serde(default)]
    media_type: Option<String>,
    #[serde(default)]
    manifests: Option<serde_json::Value>,
    #[serde(default)]
    config: Option<serde_json::Value>,
}

impl AnyManifest {
    /// Parses a manifest or index; `header_type` is the Content-Type the registry sent, if any.
    pub fn parse(bytes: &[u8], header_type: Option<&str>) -> Result<(Self, String)> {
        let probe: Probe =
            serde_json::from_slice(bytes).map_err(|e| ImageError::json("manifest", e))?;
        if probe.schema_version == Some(1) {
            return Err(ImageError::Unsupported {
                what: "manifest".into(),
                detail: "Docker schema 1 manifests are deprecated and not supported".into(),
            });
        }
        let mt = probe
            .media_type
            .clone()
            .or_else(|| header_type.map(str::to_owned))
            .unwrap_or_else(|| {
                if probe.manifests.is_some() {
                    OCI_INDEX
                } else {
                    OCI_MANIFEST
                }
                .to_owned()
            });
        let is_index = match mt.as_str() {
            OCI_INDEX | DOCKER_LIST => true,
            OCI_MANIFEST | DOCKER_MANIFEST => false,
            _ if probe.manifests.is_some() => true,
            _ if probe.config.is_some() => false,
            other => {
                return Err(ImageError::Unsupported {
                    what: "manifest media type".into(),
                    detail: other.into(),
                });
            }
        };
        let doc = if is_index {
            AnyManifest::Index(
                serde_json::from_slice(bytes).map_err(|e| ImageError::json("image index", e))?,
            )
        } else {
            AnyManifest::Image(
                serde_json::from_slice(bytes).map_err(|e| ImageError::json("image manifest", e))?,
            )
        };
        Ok((doc, mt))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn platforms() {
        let p = Platform::parse("linux/arm64/v8").unwrap();
        assert_eq!(p.to_string(), "linux/arm64/v8");
        assert!(Platform::parse("linux").is_err());
        assert!(Platform::parse("linux/").is_err());
        let want = Platform::parse("linux/arm64").unwrap();
        assert!(want.matches(&p));
        assert!(!Platform::parse("linux/amd64").unwrap().matches(&p));
        let no_variant = Platform::parse("linux/arm64").unwrap();
        assert!(
            p.matches(&no_variant),
            "an entry without a variant serves a v8 host"
        );
        assert!(!p.matches(&Platform::parse("linux/arm64/v9").unwrap()));
        assert!(!p.matches_exactly(&no_variant));
        assert_eq!(Platform::host().os, "linux");
    }

    #[test]
    fn tells_index_from_manifest() {
        let idx = br#"{"schemaVersion":2,"manifests":[]}"#;
        assert!(matches!(
            AnyManifest::parse(idx, None).unwrap().0,
            AnyManifest::Index(_)
        ));
        let d = Digest::of(b"x");
        let m = format!(
            r#"{{"schemaVersion":2,"mediaType":"{DOCKER_MANIFEST}","config":{{"mediaType":"{DOCKER_CONFIG}","digest":"{d}","size":1}},"layers":[]}}"#
        );
        assert!(matches!(
            AnyManifest::parse(m.as_bytes(), None).unwrap().0,
            AnyManifest::Image(_)
        ));
        assert!(AnyManifest::parse(br#"{"schemaVersion":1}"#, None).is_err());
    }
}
