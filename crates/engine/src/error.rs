//! The engine's error: a message for the user and a kind for the status.

use berth_store::StoreError;

/// Result of an engine operation.
pub type Result<T, E = EngineError> = std::result::Result<T, E>;

/// Classes of failure; the API maps each to one HTTP status.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    /// The named thing does not exist (404).
    NotFound,
    /// The registry refused the credentials, or wants some (401).
    Unauthorized,
    /// The request conflicts with current state (409).
    Conflict,
    /// The request is malformed or invalid (400).
    InvalidArgument,
    /// Nothing to do: already in the asked state (304).
    NotModified,
    /// berth does not do this (yet) (501).
    NotImplemented,
    /// The daemon is not in the state this needs, as a node outside a
    /// swarm is not (503).
    Unavailable,
    /// Anything else (500).
    Internal,
}

/// An engine failure with a message a user can act on.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct EngineError {
    pub kind: ErrorKind,
    pub message: String,
}

impl EngineError {
    /// An error of `kind`.
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> Self {
        Self {
            kind,
            message: message.into(),
        }
    }

    /// A 400.
    pub fn invalid(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::InvalidArgument, message)
    }

    /// A failure of the daemon's metadata database while doing `context`.
    pub fn db(context: &str) -> impl FnOnce(rusqlite::Error) -> EngineError + '_ {
        move |e| {
            EngineError::new(
                ErrorKind::Internal,
                format!("metadata database: {context}: {e}"),
            )
        }
    }
}

impl From<StoreError> for EngineError {
    fn from(e: StoreError) -> Self {
        let kind = match &e {
            StoreError::BlobNotFound(_)
            | StoreError::ImageNotFound(_)
            | StoreError::PathNotFound(_) => ErrorKind::NotFound,
            StoreError::Conflict(_) => ErrorKind::Conflict,
            StoreError::Invalid(_)
            | StoreError::Image(_)
            | StoreError::DigestMismatch { .. }
            | StoreError::SizeMismatch { .. }
            | StoreError::BadLayerEntry { .. }
            | StoreError::TooLarge { .. } => ErrorKind::InvalidArgument,
            StoreError::Corrupt { .. } | StoreError::Db { .. } | StoreError::Io { .. } => {
                ErrorKind::Internal
            }
        };
        Self::new(kind, e.to_string())
    }
}
