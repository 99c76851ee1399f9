//! `berth shim`: one small, single-threaded process per running container
//! (DESIGN.md, "Process model"). It creates the container through the
//! runtime library, so the container's init is its child; holds the
//! container's stdio (pipes, or a pty with a TTY) and writes its output to
//! a json-file log and to attached clients; feeds stdin; reaps the init and
//! records its exit status in `<dir>/exit.json`; answers a control socket.
//! It runs in its own session, so containers outlive a daemon that dies.
//!
//! Start-up handshake: the shim's stdout is a pipe to whoever spawned it.
//! Once the container is created, the shim writes `created <pid>` there
//! (or `error <message>`); the daemon then attaches what waits for output
//! and sends `start` on the control socket. The shim holds the pipe until
//! then: if the daemon dies first, the shim deletes the container.

pub mod protocol;

mod client;
mod exec;
mod logfile;
mod relay;
mod stdio;
mod supervise;

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::os::fd::AsFd;
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
    /// Give the container a terminal (the spec's `process.terminal`).
    #[arg(long)]
    pub tty: bool,
    /// Keep the container's stdin open for attached clients.
    #[arg(long)]
    pub stdin: bool,
    /// Close the container's stdin when the first attached client's input
    /// ends (Docker's `StdinOnce`).
    #[arg(long)]
    pub stdin_once: bool,
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
    let pending = stdio::Pending::prepare(&args.dir, args.tty, args.stdin)?;
    let runtime = Libcontainer::new(&args.runtime_root);
    let opts = CreateOptions {
        bundle: args.bundle.clone(),
        console_socket: pending.console_socket().map(PathBuf::from),
        ..CreateOptions::default()
    };
    let created = runtime.create(&args.id, &opts);
    let io = pending.finish(&shim_log);
    let state = created.map_err(|e| e.to_string())?;
    let pid = state.pid;
    let setup = io.and_then(|io| {
        if pid <= 0 {
            return Err("the runtime reported no init pid".to_owned());
        }
        let pipe = handshake.try_clone().map_err(|e| e.to_string())?;
        supervise::Supervisor::new(args, &runtime, pid, io, JsonLog::new(log), pipe)
            .map_err(|e| format!("setting up supervision: {e}"))
    });
    let mut sup = match setup {
        Ok(s) => s,
        Err(e) => {
            // The init exists, waiting to be started: never leave it behind.
            let _ = runtime.delete(&args.id, true);
            return Err(e);
        }
    };
    if let Err(e) = writeln!(handshake, "created {pid}") {
        drop(sup);
        let _ = runtime.delete(&args.id, true);
        return Err(format!("answering the daemon: {e}"));
    }
    // The supervisor holds its own copy of the pipe until the start.
    drop(std::mem::replace(
        handshake,
        File::from(stdio::open_null()?),
    ));
    // Abandoned before the start: the container never ran.
    Ok(sup.run().unwrap_or(1))
}
