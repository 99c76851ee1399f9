//! Errors of the registry client. Each says which registry, repository or
//! blob it is about and, where it can, what the user can do.

/// Result of a registry operation.
pub type Result<T, E = RegistryError> = std::result::Result<T, E>;

/// What went wrong talking to a registry.
#[derive(Debug, thiserror::Error)]
pub enum RegistryError {
    /// The repository, tag or blob does not exist there (404).
    #[error("{0}")]
    NotFound(String),

    /// The registry refused the credentials, or asked for some (401/403).
    #[error("unauthorized: {message}")]
    Unauthorized { message: String },

    /// The registry answered with an unexpected status.
    #[error("{method} {url}: the registry answered {status}: {body}")]
    Status {
        method: &'static str,
        url: String,
        status: u16,
        body: String,
    },

    /// The registry could not be reached, or the connection broke.
    #[error("{what}: {reason}")]
    Transport { what: String, reason: String },

    /// A document the registry sent is not what it claims to be.
    #[error("{0}")]
    Invalid(String),

    /// The client's docker config could not be read or written.
    #[error("{}: {reason}", path.display())]
    Config {
        path: std::path::PathBuf,
        reason: String,
    },

    /// The image format is not one berth takes.
    #[error(transparent)]
    Image(#[from] berth_image::ImageError),

    /// Storing what was fetched failed (a digest mismatch among others).
    #[error(transparent)]
    Store(#[from] berth_store::StoreError),
}
