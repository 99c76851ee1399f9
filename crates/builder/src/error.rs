//! The builder's errors. Each says what failed and, where it can, what to
//! do; the API maps them to Docker's build error stream.

use std::path::PathBuf;

/// A build failure.
#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    /// The Dockerfile does not parse (Docker's words, then the line and a
    /// caret).
    #[error("dockerfile parse error line {}: {}\n{}", .0.line, .0.message, .0.snippet())]
    Parse(#[from] berth_dockerfile::ParseError),
    /// The Dockerfile or the options ask for something impossible (an
    /// unknown stage, a missing source, a bad flag value), found before
    /// or while the step runs.
    #[error("{0}")]
    Invalid(String),
    /// A `RUN` step exited non-zero (Docker's classic builder's words).
    #[error("The command '{command}' returned a non-zero code: {code}")]
    RunFailed { command: String, code: i32 },
    /// The image store failed.
    #[error(transparent)]
    Store(#[from] berth_store::StoreError),
    /// A file operation failed.
    #[error("{context} {}: {source}", path.display())]
    Io {
        context: &'static str,
        path: PathBuf,
        source: std::io::Error,
    },
    /// The build cache index failed.
    #[error("build cache: {context}: {source}")]
    Cache {
        context: String,
        source: rusqlite::Error,
    },
    /// Running a step's container failed (not the command: the machinery).
    #[error("running the step: {0}")]
    Executor(String),
    /// The client went away or asked to stop.
    #[error("the build was cancelled")]
    Cancelled,
}

impl BuildError {
    pub(crate) fn io(
        context: &'static str,
        path: impl Into<PathBuf>,
        source: std::io::Error,
    ) -> Self {
        Self::Io {
            context,
            path: path.into(),
            source,
        }
    }

    pub(crate) fn cache(context: impl Into<String>) -> impl FnOnce(rusqlite::Error) -> Self {
        let context = context.into();
        move |source| Self::Cache { context, source }
    }

    /// Whether the build's input is at fault (a client error, 400) rather
    /// than berth or the machine (500).
    pub fn is_invalid(&self) -> bool {
        matches!(
            self,
            Self::Parse(_) | Self::Invalid(_) | Self::RunFailed { .. }
        )
    }
}

/// The builder's result type.
pub type Result<T, E = BuildError> = std::result::Result<T, E>;
