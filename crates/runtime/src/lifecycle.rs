//! The `Runtime` trait: the OCI runtime lifecycle
//! (<https://github.com/opencontainers/runtime-spec/blob/main/runtime.md#operations>)
//! as berth uses it. Two implementations: [`crate::Libcontainer`], berth's own
//! runtime, and [`crate::Runc`], a test oracle that drives an installed runc.

use std::path::PathBuf;

use nix::sys::signal::Signal;
use oci_spec::runtime::LinuxResources;

use crate::error::Result;
use crate::state::ContainerState;

/// How to create a container from a bundle.
#[derive(Debug, Clone, Default)]
pub struct CreateOptions {
    /// Directory holding config.json and (usually) the rootfs.
    pub bundle: PathBuf,
    /// Where to write the init's host pid once it exists.
    pub pid_file: Option<PathBuf>,
    /// Unix socket that receives the pty master (SCM_RIGHTS) when
    /// `process.terminal` is set.
    pub console_socket: Option<PathBuf>,
    /// Use chroot-like `MS_MOVE` instead of pivot_root (for ramfs roots).
    pub no_pivot: bool,
    /// Extra fds, counted from 3, passed to the container init.
    pub preserve_fds: i32,
}

/// How to run a further process in a running container (`runc exec`).
#[derive(Debug, Clone, Default)]
pub struct ExecOptions {
    /// A process.json in the OCI `process` format; overrides the fields below.
    pub process: Option<PathBuf>,
    /// Command and arguments, when no process file is given.
    pub args: Vec<String>,
    /// `KEY=value` pairs added to the container's environment.
    pub env: Vec<String>,
    /// Working directory inside the container.
    pub cwd: Option<PathBuf>,
    /// uid and optional gid.
    pub user: Option<(u32, Option<u32>)>,
    pub additional_gids: Vec<u32>,
    /// Capabilities added to the process (`CAP_*` names).
    pub caps: Vec<String>,
    pub no_new_privs: bool,
    pub tty: bool,
    pub detach: bool,
    pub pid_file: Option<PathBuf>,
    pub console_socket: Option<PathBuf>,
    pub preserve_fds: i32,
}

/// The OCI lifecycle operations berth needs from a runtime.
///
/// Implementations are called from single-threaded processes only (the shim
/// and `berth runtime`): creating a container forks.
pub trait Runtime {
    /// Sets the container up and leaves its init waiting for [`Runtime::start`].
    fn create(&self, id: &str, opts: &CreateOptions) -> Result<ContainerState>;

    /// Lets a created container's init exec the user process.
    fn start(&self, id: &str) -> Result<()>;

    /// create + start; unless `detach`, waits for the process, deletes the
    /// container and returns the exit status (128 + signal when killed).
    fn run(&self, id: &str, opts: &CreateOptions, detach: bool) -> Result<i32>;

    /// The container's current state.
    fn state(&self, id: &str) -> Result<ContainerState>;

    /// Every container under this runtime's state root.
    fn list(&self) -> Result<Vec<ContainerState>>;

    /// Sends `signal` to the init, or to every process of the container.
    fn kill(&self, id: &str, signal: Signal, all: bool) -> Result<()>;

    /// Removes a stopped container (or, with `force`, kills it first): its
    /// cgroups, state and the poststop hooks.
    fn delete(&self, id: &str, force: bool) -> Result<()>;

    /// Freezes every process of the container.
    fn pause(&self, id: &str) -> Result<()>;

    /// Thaws a paused container.
    fn resume(&self, id: &str) -> Result<()>;

    /// Host pids of every process in the container's cgroup.
    fn pids(&self, id: &str) -> Result<Vec<i32>>;

    /// Runs another process in the container; returns its exit status, or 0
    /// at once when detached.
    fn exec(&self, id: &str, opts: &ExecOptions) -> Result<i32>;

    /// Changes the cgroup limits of a live container.
    fn update(&self, id: &str, resources: &LinuxResources) -> Result<()>;
}
