//! Errors of the image store. Each variant names the blob, layer, image or
//! path it is about; the kind decides how the engine answers (not found,
//! conflict, invalid input, internal).

use std::path::PathBuf;

use berth_image::{Digest, ImageError};

/// Result of a store operation.
pub type Result<T, E = StoreError> = std::result::Result<T, E>;

/// What went wrong in the store.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// No blob with this digest is stored.
    #[error("blob {0} not found")]
    BlobNotFound(Digest),

    /// Content does not match the digest that names it.
    #[error("digest mismatch for {what}: expected {expected}, got {actual}")]
    DigestMismatch {
        what: String,
        expected: String,
        actual: String,
    },

    /// Content is not the size its descriptor declares.
    #[error("size mismatch for {what}: expected {expected} bytes, got {actual}")]
    SizeMismatch {
        what: String,
        expected: u64,
        actual: u64,
    },

    /// A stored blob no longer hashes to its name: the disk or someone
    /// outside berth changed it. It is never used.
    #[error("blob {digest} is corrupt (it hashes to {actual}); remove the image and load or pull it again")]
    Corrupt { digest: Digest, actual: String },

    /// A layer tarball is hostile or malformed; nothing of it is kept.
    #[error("layer {layer}: entry {entry:?}: {reason}")]
    BadLayerEntry {
        layer: String,
        entry: String,
        reason: String,
    },

    /// A limit configured to stop decompression bombs was reached.
    #[error("layer {layer} unpacks to more than the limit of {limit} bytes")]
    TooLarge { layer: String, limit: u64 },

    /// A path in a container's files does not exist.
    #[error("no such file or directory: {0}")]
    PathNotFound(String),

    /// No image matches the name or ID.
    #[error("no such image: {0}")]
    ImageNotFound(String),

    /// The request conflicts with the store's state (image in use, name
    /// ambiguous).
    #[error("{0}")]
    Conflict(String),

    /// The request itself is unusable.
    #[error("{0}")]
    Invalid(String),

    /// An image format problem (archive, manifest, config, reference).
    #[error(transparent)]
    Image(#[from] ImageError),

    /// The metadata database failed.
    #[error("metadata database: {context}: {source}")]
    Db {
        context: String,
        #[source]
        source: rusqlite::Error,
    },

    /// A file system operation failed.
    #[error("{context} {}: {source}", path.display())]
    Io {
        context: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

impl StoreError {
    /// An I/O error naming the action and the path.
    pub fn io(context: &'static str, path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Self::Io {
            context,
            path: path.into(),
            source,
        }
    }

    /// A database error naming what was being done.
    pub fn db(context: impl Into<String>) -> impl FnOnce(rusqlite::Error) -> Self {
        let context = context.into();
        move |source| Self::Db { context, source }
    }

    /// Whether the error means "no such thing" (HTTP 404 for the engine).
    pub fn is_not_found(&self) -> bool {
        matches!(self, Self::BlobNotFound(_) | Self::ImageNotFound(_))
    }
}

impl From<StoreError> for ImageError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::Image(inner) => inner,
            other => ImageError::InvalidArchive(other.to_string()),
        }
    }
}
