//! Errors of the runtime library. Each variant names the container, file or
//! setting it is about, so a message alone tells the user what to fix.

use std::path::PathBuf;

/// Result of a runtime operation.
pub type Result<T, E = RuntimeError> = std::result::Result<T, E>;

/// What went wrong in a runtime operation.
#[derive(Debug, thiserror::Error)]
pub enum RuntimeError {
    /// The id names no container under the state root.
    #[error("container {0} does not exist")]
    NotFound(String),

    /// A container with this id is already recorded under the state root.
    #[error("container with id {0} already exists")]
    Exists(String),

    /// The id is not usable as a container name.
    #[error("invalid container id {id:?}: {reason}")]
    InvalidId { id: String, reason: &'static str },

    /// The bundle's config.json is unreadable, malformed or violates the spec.
    #[error("invalid bundle {bundle}: {reason}")]
    InvalidSpec { bundle: PathBuf, reason: String },

    /// The requested operation does not fit the container's current state.
    #[error("cannot {op} container {id}: it is {status}")]
    WrongState {
        id: String,
        op: &'static str,
        status: String,
    },

    /// An argument given on the command line or through the API is unusable.
    #[error("{0}")]
    InvalidArgument(String),

    /// The platform or this build lacks something the request needs.
    #[error("{0}")]
    Unsupported(String),

    /// libcontainer refused or failed the operation.
    #[error("{op} container {id}: {source}")]
    Container {
        op: &'static str,
        id: String,
        #[source]
        source: Box<libcontainer::error::LibcontainerError>,
    },

    /// A cgroup operation failed.
    #[error("{op} cgroup of container {id}: {reason}")]
    Cgroup {
        op: &'static str,
        id: String,
        reason: String,
    },

    /// A system call failed.
    #[error("{what}: {source}")]
    Sys {
        what: String,
        #[source]
        source: nix::Error,
    },

    /// A file could not be read or written.
    #[error("{what} {path}: {source}")]
    Io {
        what: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },

    /// The runc oracle failed; its stderr is the message.
    #[error("runc {command}: {stderr}")]
    Runc { command: String, stderr: String },
}

impl RuntimeError {
    pub(crate) fn container(
        op: &'static str,
        id: &str,
        source: libcontainer::error::LibcontainerError,
    ) -> Self {
        Self::Container {
            op,
            id: id.to_owned(),
            source: Box::new(source),
        }
    }

    pub(crate) fn io(what: &'static str, path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Self::Io {
            what,
            path: path.into(),
            source,
        }
    }

    pub(crate) fn sys(what: impl Into<String>, source: nix::Error) -> Self {
        Self::Sys {
            what: what.into(),
            source,
        }
    }

    pub(crate) fn invalid_spec(bundle: impl Into<PathBuf>, reason: impl Into<String>) -> Self {
        Self::InvalidSpec {
            bundle: bundle.into(),
            reason: reason.into(),
        }
    }
}
