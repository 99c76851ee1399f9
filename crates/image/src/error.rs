//! Errors of the image formats. Every variant names the input it is about.

/// Result of an image-format operation.
pub type Result<T, E = ImageError> = std::result::Result<T, E>;

/// What is wrong with an image, a reference or an archive.
#[derive(Debug, thiserror::Error)]
pub enum ImageError {
    /// A digest string is not `algorithm:hex` with a supported algorithm.
    #[error("invalid digest {input:?}: {reason}")]
    InvalidDigest { input: String, reason: &'static str },

    /// An image reference does not follow Docker's grammar.
    #[error("invalid reference format {input:?}: {reason}")]
    InvalidReference { input: String, reason: &'static str },

    /// A JSON document (manifest, config, index) does not parse.
    #[error("malformed {what}: {source}")]
    Json {
        what: String,
        #[source]
        source: serde_json::Error,
    },

    /// A media type berth does not read.
    #[error("unsupported media type {media_type:?} in {what}")]
    UnsupportedMediaType { media_type: String, what: String },

    /// A `--change` instruction is not one that only edits the config.
    #[error("invalid change {change:?}: {reason}")]
    InvalidChange { change: String, reason: String },

    /// An archive lacks a file or blob its index names, or is otherwise not
    /// an image archive.
    #[error("invalid image archive: {0}")]
    InvalidArchive(String),

    /// Content does not match the digest that names it.
    #[error("digest mismatch for {what}: expected {expected}, got {actual}")]
    DigestMismatch {
        what: String,
        expected: String,
        actual: String,
    },

    /// Reading or writing an archive failed.
    #[error("{context}: {source}")]
    Io {
        context: String,
        #[source]
        source: std::io::Error,
    },
}

impl ImageError {
    /// An I/O error with what was being done.
    pub fn io(context: impl Into<String>, source: std::io::Error) -> Self {
        Self::Io {
            context: context.into(),
            source,
        }
    }

    /// A JSON error naming the document.
    pub fn json(what: impl Into<String>, source: serde_json::Error) -> Self {
        Self::Json {
            what: what.into(),
            source,
        }
    }
}
