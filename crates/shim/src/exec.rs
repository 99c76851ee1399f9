//! Further processes in the running container (`docker exec`): the shim
//! starts them through the runtime library, so they are its children (or
//! orphans it reaps as the subreaper), relays their stdio like the init's
//! and records how they end.

use std::os::fd::AsFd;
use std::os::unix::net::UnixListener;
use std::path::Path;
use std::time::Instant;

use berth_runtime::console::ConsoleSocket;
use berth_runtime::{ExecOptions, ExecStdio, Libcontainer};
use nix::sys::signal::{SigSet, Signal};
use nix::unistd::Pid;

use crate::protocol::{ExecSpec, ExitStatus};
use crate::relay::Relay;
use crate::stdio::{open_null, pipe, set_nonblocking, Stdio};

/// The socket an exec's terminal comes through (one exec starts at a time).
const EXEC_CONSOLE: &str = "exec-console.sock";

/// A process started in the container.
#[derive(Debug)]
pub struct Exec {
    pub id: String,
    pub pid: Pid,
    pub relay: Relay,
    /// How it ended, and when (its output may still be draining).
    pub exit: Option<(ExitStatus, Instant)>,
}

/// Starts `spec` in container `id`; `dir` is the shim's directory.
pub fn spawn(
    runtime: &Libcontainer,
    id: &str,
    dir: &Path,
    spec: &ExecSpec,
) -> Result<Exec, String> {
    let process = dir.join(format!("exec-{}.json", spec.id));
    let bytes = serde_json::to_vec(&spec.process).map_err(|e| format!("the process: {e}"))?;
    std::fs::write(&process, bytes).map_err(|e| format!("writing {}: {e}", process.display()))?;
    let started = start(runtime, id, dir, spec, &process);
    let _ = std::fs::remove_file(&process);
    let (pid, io) = started?;
    Ok(Exec {
        id: spec.id.clone(),
        pid: Pid::from_raw(pid),
        relay: Relay::new(io),
        exit: None,
    })
}

fn start(
    runtime: &Libcontainer,
    id: &str,
    dir: &Path,
    spec: &ExecSpec,
    process: &Path,
) -> Result<(i32, Stdio), String> {
    let mut opts = ExecOptions {
        process: Some(process.to_owned()),
        // Never the runtime's own terminal: the shim holds it.
        detach: true,
        tty: spec.tty,
        ..ExecOptions::default()
    };
    if spec.tty {
        let console = bind_console(dir)?;
        opts.console_socket = Some(console.path().to_owned());
        let pid = unmasked(|| runtime.spawn_exec(id, &opts, ExecStdio::default()))?;
        let master = console
            .receive_master()
            .map_err(|e| format!("receiving the exec's terminal: {e}"))?;
        let dup = |what| {
            master
                .try_clone()
                .map_err(|e| format!("duplicating the terminal for {what}: {e}"))
        };
        let stdin = spec.stdin.then(|| dup("stdin")).transpose()?;
        let io = Stdio {
            outputs: [Some(dup("output")?), None],
            stdin,
            master: Some(master),
        };
        return nonblocking(io).map(|io| (pid, io));
    }
    let (out_r, out_w) = pipe()?;
    let (err_r, err_w) = pipe()?;
    let (stdin_child, stdin) = if spec.stdin {
        let (r, w) = pipe()?;
        (r, Some(w))
    } else {
        (open_null()?, None)
    };
    let stdio = ExecStdio {
        stdin: Some(stdin_child),
        stdout: Some(out_w),
        stderr: Some(err_w),
    };
    // The child's ends go with `stdio`: at their EOF every holder is gone.
    let pid = unmasked(|| runtime.spawn_exec(id, &opts, stdio))?;
    let io = Stdio {
        outputs: [Some(out_r), Some(err_r)],
        stdin,
        master: None,
    };
    nonblocking(io).map(|io| (pid, io))
}

fn bind_console(dir: &Path) -> Result<ConsoleSocket, String> {
    let listener = crate::protocol::short_path(dir, EXEC_CONSOLE, |p| {
        let _ = std::fs::remove_file(p);
        UnixListener::bind(p)
    })
    .map_err(|e| format!("binding the exec's console socket: {e}"))?;
    Ok(ConsoleSocket::from_listener(
        listener,
        dir.join(EXEC_CONSOLE),
    ))
}

/// Runs `f` with SIGCHLD unblocked: the shim blocks it into its signalfd,
/// and a forked process keeps the mask it was forked with (a shell in the
/// exec would never hear of its children). A SIGCHLD that comes meanwhile
/// is lost to the signalfd; the caller reaps once after.
fn unmasked<T>(f: impl FnOnce() -> berth_runtime::Result<T>) -> Result<T, String> {
    let mut mask = SigSet::empty();
    mask.add(Signal::SIGCHLD);
    mask.thread_unblock()
        .map_err(|e| format!("unblocking SIGCHLD: {e}"))?;
    let result = f();
    mask.thread_block()
        .map_err(|e| format!("blocking SIGCHLD: {e}"))?;
    result.map_err(|e| e.to_string())
}

fn nonblocking(io: Stdio) -> Result<Stdio, String> {
    for fd in io.outputs.iter().flatten().chain(io.stdin.iter()) {
        set_nonblocking(&fd.as_fd())?;
    }
    Ok(io)
}
