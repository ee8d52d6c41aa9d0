//! The image manager's error type: one enum, each variant with the context (reference, digest,
//! path, entry) a user needs to act on it.

use std::path::PathBuf;

use super::digest::Digest;

/// Everything that can go wrong in the image manager.
#[derive(Debug, thiserror::Error)]
pub enum ImageError {
    /// The user's reference does not follow Docker's grammar.
    #[error("invalid reference format {reference:?}: {reason}")]
    InvalidReference { reference: String, reason: String },

    /// A digest string is malformed or uses an unsupported algorithm.
    #[error("invalid digest {digest:?}: {reason}")]
    InvalidDigest { digest: String, reason: String },

    /// A platform string (`os/arch[/variant]`) is malformed.
    #[error("invalid platform {platform:?}: expected os/arch[/variant]")]
    InvalidPlatform { platform: String },

    /// No image in the store matches this reference or id.
    #[error("no such image: {reference}")]
    NotFound { reference: String },

    /// An id prefix matches more than one image.
    #[error("ambiguous image id prefix {prefix:?}: matches {count} images")]
    Ambiguous { prefix: String, count: usize },

    /// A blob the store needs is missing.
    #[error("blob {digest} is missing from the content store")]
    BlobMissing { digest: Digest },

    /// Content did not hash to the digest it claims to have.
    #[error("digest mismatch for {what}: expected {expected}, got {actual}")]
    DigestMismatch {
        what: String,
        expected: Digest,
        actual: Digest,
    },

    /// Content was longer or shorter than its descriptor says.
    #[error("size mismatch for {digest}: descriptor says {expected} bytes, got {actual}")]
    SizeMismatch {
        digest: Digest,
        expected: u64,
        actual: u64,
    },

    /// A layer tar entry would land outside the layer, or is otherwise refused.
    #[error("unsafe entry {entry:?} in layer {layer}: {reason}")]
    UnsafeEntry {
        layer: String,
        entry: String,
        reason: String,
    },

    /// A layer tar is malformed.
    #[error("malformed layer {layer}: {reason}")]
    BadLayer { layer: String, reason: String },

    /// A manifest, index, config or archive uses a media type or shape we do not handle.
    #[error("unsupported {what}: {detail}")]
    Unsupported { what: String, detail: String },

    /// An image index has no manifest for the requested platform.
    #[error("{reference}: no manifest for platform {platform} (available: {available})")]
    NoMatchingPlatform {
        reference: String,
        platform: String,
        available: String,
    },

    /// The registry refused or failed a request.
    #[error("registry error for {reference}: {message}")]
    Registry { reference: String, message: String },

    /// Credentials could not be read or are malformed.
    #[error("credentials for {registry}: {reason}")]
    Credentials { registry: String, reason: String },

    /// The image is used by containers and `force` was not given.
    #[error("image {image} is in use by a container (use force to remove it anyway)")]
    InUse { image: String },

    /// The reference names an image that several tags share; removing by id needs force.
    #[error("image {image} is referenced by several tags ({tags}); remove them by name or force")]
    MultipleTags { image: String, tags: String },

    /// A JSON document (manifest, config, index.json, archive manifest) failed to parse.
    #[error("malformed {what}: {source}")]
    Json {
        what: String,
        #[source]
        source: serde_json::Error,
    },

    /// A save/load/import archive is malformed.
    #[error("malformed archive {path}: {reason}")]
    BadArchive { path: PathBuf, reason: String },

    /// Filesystem error with the path it happened on.
    #[error("{op} {path}: {source}")]
    Io {
        op: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

impl ImageError {
    pub(crate) fn io(op: &'static str, path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        ImageError::Io {
            op,
            path: path.into(),
            source,
        }
    }

    pub(crate) fn json(what: impl Into<String>, source: serde_json::Error) -> Self {
        ImageError::Json {
            what: what.into(),
            source,
        }
    }
}

/// Shorthand for results in the image manager.
pub type Result<T, E = ImageError> = std::result::Result<T, E>;
