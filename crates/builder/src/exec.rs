//! The seam between the builder and the machinery that runs `RUN` steps:
//! the engine implements [`Executor`] with a container per step, through
//! the same shim and runtime as `docker run`; tests may fake it.

use std::io::Write;
use std::path::PathBuf;

use berth_image::Digest;

/// One `RUN` step's process.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunStep {
    /// The image whose layers are the step's root filesystem.
    pub image: Digest,
    /// The full argv (the shell and the command line, or the exec form).
    pub args: Vec<String>,
    /// The environment, complete (the image's and the build arguments').
    pub env: Vec<String>,
    /// `USER` (a name, `uid`, `uid:gid`, resolved in the image).
    pub user: String,
    /// `WORKDIR`, absolute.
    pub workdir: String,
    /// `RUN --mount`s.
    pub mounts: Vec<RunMount>,
    /// `none` or `host`.
    pub network: String,
    /// Directories to create in the container's upper dir before it
    /// starts: `VOLUME`s the image does not have (Docker makes them as
    /// mount points; what the step writes in them is discarded).
    pub mkdirs: Vec<String>,
}

/// A mount into a `RUN` step's container.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RunMount {
    /// A host directory or file (a cache directory, a context path, a
    /// view of another stage).
    Bind {
        source: PathBuf,
        target: String,
        readonly: bool,
    },
    /// A tmpfs, with its size limit in bytes.
    Tmpfs { target: String, size: Option<u64> },
}

/// A finished step: its exit code and its change to the root filesystem.
/// Dropping it removes the step's container.
#[derive(Debug)]
pub struct Finished {
    pub exit_code: i32,
    /// The container's upper dir, with the step's changes; the builder may
    /// move it away (into the layer store) before dropping this.
    pub upper: PathBuf,
    /// Removes the container when dropped.
    pub cleanup: Box<dyn std::fmt::Debug + Send>,
}

/// Runs `RUN` steps.
pub trait Executor: Send + Sync {
    /// Runs the step to its end, its stdout and stderr into `output`.
    /// `cancelled` is polled: when it turns true the step is killed.
    fn run(
        &self,
        step: &RunStep,
        output: &mut (dyn Write + Send),
        cancelled: &(dyn Fn() -> bool + Sync),
    ) -> Result<Finished, String>;

    /// Pulls an image (a `FROM` the store lacks, or `--pull`), its
    /// progress into `output`. An engine without a registry says why not.
    fn pull(&self, image: &str, output: &mut (dyn Write + Send)) -> Result<(), String> {
        let _ = output;
        Err(format!(
            "pull access denied for {image}: no registry client"
        ))
    }
}
