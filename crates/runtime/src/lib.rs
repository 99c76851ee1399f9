//! berth's OCI runtime: an OCI bundle (config.json + rootfs) becomes an
//! isolated, limited process.
//!
//! - [`Runtime`]: the lifecycle (create, start, run, state, kill, delete,
//!   pause, resume, exec, update) behind one trait;
//! - [`Libcontainer`]: berth's implementation, on youki's `libcontainer`;
//! - [`Runc`]: the same trait over an installed runc, a test oracle;
//! - [`defaults`]: Docker-equivalent default specs (capabilities, seccomp,
//!   masked paths) for the engine;
//! - [`cli`]: `berth runtime`, a runc-compatible command line;
//! - [`console`]: receiving a container's pty master over a console socket.
//!
//! Call it from single-threaded processes only: creating a container forks.

pub mod cli;
pub mod console;
pub mod defaults;
mod error;
mod lifecycle;
mod native;
mod pidfile;
pub mod reap;
mod runc;
mod state;
mod sys;
mod validate;

pub use error::{Result, RuntimeError};
pub use lifecycle::{CreateOptions, ExecOptions, Runtime};
pub use native::{ExecStdio, Libcontainer};
pub use runc::Runc;
pub use state::{ContainerState, Status};
pub use sys::set_default_disposition;
pub use validate::{check_capability, check_id, load_bundle};
