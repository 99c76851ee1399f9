//! `berth shim`: one small, single-threaded process per running container
//! (DESIGN.md, "Process model"). It creates and starts the container
//! through the runtime library, so the container's init is its child; holds
//! the container's stdout and stderr and writes them to a json-file log;
//! reaps the init and records its exit status in `<dir>/exit.json`; answers
//! a control socket. It runs in its own session, so containers outlive a
//! daemon that dies.
//!
//! Start-up handshake: the shim's stdout is a pipe to whoever spawned it.
//! Once the container runs, the shim writes `ready <pid>` there (or
//! `error <message>`) and lets go of it.

pub mod protocol;

mod logfile;
mod supervise;

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::path::PathBuf;

use berth_runtime::{CreateOptions, Libcontainer, Runtime};
use clap::Parser;

pub use logfile::{JsonLog, Stream};

/// `berth shim` options (given by the daemon).
#[derive(Debug, Clone, Parser)]
#[command(
    name = "berth shim",
    about = "Supervise one container (started by the daemon)"
)]
pub struct Args {
    /// Container id.
    #[arg(long)]
    pub id: String,
    /// OCI bundle (config.json, rootfs).
    #[arg(long)]
    pub bundle: PathBuf,
    /// The runtime's state root.
    #[arg(long)]
    pub runtime_root: PathBuf,
    /// The shim's own directory: control socket, exit status, shim log.
    #[arg(long)]
    pub dir: PathBuf,
    /// The container's json-file log.
    #[arg(long)]
    pub log_path: PathBuf,
}

/// Entry point of `berth shim ARGS`.
pub fn main(argv: Vec<std::ffi::OsString>) -> i32 {
    let args = match Args::try_parse_from(argv) {
        Ok(a) => a,
        Err(e) => {
            let _ = e.print();
            return 2;
        }
    };
    // The handshake pipe is this process's stdout; keep a copy, because
    // fds 0-2 are about to become the container's.
    let handshake = match std::io::stdout().as_fd().try_clone_to_owned() {
        Ok(fd) => fd,
        Err(e) => {
            eprintln!("berth shim: dup of stdout: {e}");
            return 1;
        }
    };
    let mut handshake = File::from(handshake);
    match run(&args, &mut handshake) {
        Ok(code) => code,
        Err(message) => {
            let _ = writeln!(handshake, "error {message}");
            1
        }
    }
}

fn run(args: &Args, handshake: &mut File) -> Result<i32, String> {
    std::fs::create_dir_all(&args.dir)
        .map_err(|e| format!("creating {}: {e}", args.dir.display()))?;
    let shim_log = OpenOptions::new()
        .create(true)
        .append(true)
        .open(args.dir.join("shim.log"))
        .map_err(|e| format!("opening the shim log: {e}"))?;
    let _ = tracing_subscriber::fmt()
        .with_writer(std::sync::Mutex::new(
            shim_log.try_clone().map_err(|e| e.to_string())?,
        ))
        .with_ansi(false)
        .try_init();
    let log = OpenOptions::new()
        .create(true)
        .append(true)
        .open(&args.log_path)
        .map_err(|e| format!("opening the container log {}: {e}", args.log_path.display()))?;
    nix::sys::prctl::set_child_subreaper(true).map_err(|e| format!("becoming a subreaper: {e}"))?;
    let (out_r, err_r) = redirect_stdio()?;
    let runtime = Libcontainer::new(&args.runtime_root);
    let opts = CreateOptions {
        bundle: args.bundle.clone(),
        ..CreateOptions::default()
    };
    let created = runtime.create(&args.id, &opts);
    // The shim must not hold the write ends: EOF on the pipes means every
    // process of the container closed them.
    release_stdio(&shim_log)?;
    let state = created.map_err(|e| e.to_string())?;
    let pid = state.pid;
    if pid <= 0 {
        return Err("the runtime reported no init pid".to_owned());
    }
    let supervisor =
        supervise::Supervisor::new(args, &runtime, pid, out_r, err_r, JsonLog::new(log));
    let mut sup = match supervisor {
        Ok(s) => s,
        Err(e) => {
            // The init exists, waiting to be started: never leave it behind.
            let _ = runtime.delete(&args.id, true);
            return Err(format!("setting up supervision: {e}"));
        }
    };
    if let Err(e) = runtime.start(&args.id) {
        let _ = runtime.delete(&args.id, true);
        return Err(e.to_string());
    }
    writeln!(handshake, "ready {pid}").map_err(|e| format!("answering the daemon: {e}"))?;
    // Let go of the daemon: it may die, the container must not notice.
    drop(std::mem::replace(handshake, File::from(open_null()?)));
    Ok(sup.run())
}

fn open_null() -> Result<OwnedFd, String> {
    let f = File::options()
        .read(true)
        .write(true)
        .open("/dev/null")
        .map_err(|e| format!("opening /dev/null: {e}"))?;
    Ok(f.into())
}

/// Makes fd 0 /dev/null and fds 1, 2 the write ends of two pipes, which
/// the container inherits; returns the read ends.
fn redirect_stdio() -> Result<(OwnedFd, OwnedFd), String> {
    use nix::fcntl::OFlag;
    let (out_r, out_w) = nix::unistd::pipe2(OFlag::O_CLOEXEC).map_err(|e| format!("pipe: {e}"))?;
    let (err_r, err_w) = nix::unistd::pipe2(OFlag::O_CLOEXEC).map_err(|e| format!("pipe: {e}"))?;
    let null = open_null()?;
    for (from, to) in [
        (null.as_raw_fd(), 0),
        (out_w.as_raw_fd(), 1),
        (err_w.as_raw_fd(), 2),
    ] {
        nix::unistd::dup2(from, to).map_err(|e| format!("dup2 onto fd {to}: {e}"))?;
    }
    Ok((out_r, err_r))
}

/// Points fds 1 and 2 at the shim's own log again (and 0 at /dev/null).
fn release_stdio(shim_log: &File) -> Result<(), String> {
    for to in [1, 2] {
        nix::unistd::dup2(shim_log.as_raw_fd(), to)
            .map_err(|e| format!("dup2 onto fd {to}: {e}"))?;
    }
    Ok(())
}
