//! The container's stdio as the shim holds it: two pipes for stdout and
//! stderr (or a pty master with a TTY), and optionally a way into stdin.

use std::fs::File;
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::os::unix::net::UnixListener;
use std::path::Path;

use berth_runtime::console::ConsoleSocket;
use nix::fcntl::OFlag;

/// Console socket file name in the shim's directory.
const CONSOLE_SOCKET: &str = "console.sock";

/// What the shim reads from and writes to.
#[derive(Debug)]
pub struct Stdio {
    /// Output sources: `[stdout, stderr]` pipes, or `[master, None]` with a
    /// TTY (a terminal has one stream).
    pub outputs: [Option<OwnedFd>; 2],
    /// Where stdin bytes go: a pipe's write end or the pty master; none
    /// unless the container keeps stdin open.
    pub stdin: Option<OwnedFd>,
    /// The pty master, for resizes.
    pub master: Option<OwnedFd>,
}

/// Set-up before the container is created; [`Pending::finish`] after.
#[derive(Debug)]
pub enum Pending {
    /// Pipes: the container inherits fds 0-2 from the shim.
    Pipes {
        out: OwnedFd,
        err: OwnedFd,
        stdin: Option<OwnedFd>,
    },
    /// A TTY: the runtime sends the pty master to this socket.
    Tty {
        console: ConsoleSocket,
        open_stdin: bool,
    },
}

impl Pending {
    /// Pipes (fds 0-2 of this process become the container's) or a console
    /// socket in `dir`.
    pub fn prepare(dir: &Path, tty: bool, open_stdin: bool) -> Result<Self, String> {
        let null = open_null()?;
        if tty {
            for to in [0, 1, 2] {
                dup_onto(&null, to)?;
            }
            let listener = crate::protocol::short_path(dir, CONSOLE_SOCKET, |p| {
                let _ = std::fs::remove_file(p);
                UnixListener::bind(p)
            })
            .map_err(|e| format!("binding the console socket: {e}"))?;
            let console = ConsoleSocket::from_listener(listener, dir.join(CONSOLE_SOCKET));
            return Ok(Self::Tty {
                console,
                open_stdin,
            });
        }
        let (out_r, out_w) = pipe()?;
        let (err_r, err_w) = pipe()?;
        let stdin = if open_stdin {
            let (in_r, in_w) = pipe()?;
            dup_onto(&in_r, 0)?;
            Some(in_w)
        } else {
            dup_onto(&null, 0)?;
            None
        };
        dup_onto(&out_w, 1)?;
        dup_onto(&err_w, 2)?;
        Ok(Self::Pipes {
            out: out_r,
            err: err_r,
            stdin,
        })
    }

    /// The console socket path to give the runtime, with a TTY.
    pub fn console_socket(&self) -> Option<&Path> {
        match self {
            Self::Tty { console, .. } => Some(console.path()),
            Self::Pipes { .. } => None,
        }
    }

    /// After the create: points fds 0-2 back at `own` (the shim must not
    /// hold the container's pipe ends: EOF means every process of the
    /// container closed them) and takes the pty master with a TTY.
    pub fn finish(self, own: &File) -> Result<Stdio, String> {
        dup_onto(&open_null()?, 0)?;
        for to in [1, 2] {
            dup_onto(own, to)?;
        }
        let io = match self {
            Self::Pipes { out, err, stdin } => Stdio {
                outputs: [Some(out), Some(err)],
                stdin,
                master: None,
            },
            Self::Tty {
                console,
                open_stdin,
            } => {
                let master = console
                    .receive_master()
                    .map_err(|e| format!("receiving the terminal: {e}"))?;
                let dup = |what| {
                    master
                        .try_clone()
                        .map_err(|e| format!("duplicating the terminal for {what}: {e}"))
                };
                let stdin = if open_stdin {
                    Some(dup("stdin")?)
                } else {
                    None
                };
                Stdio {
                    outputs: [Some(dup("output")?), None],
                    stdin,
                    master: Some(master),
                }
            }
        };
        for fd in io.outputs.iter().flatten().chain(io.stdin.iter()) {
            set_nonblocking(fd)?;
        }
        Ok(io)
    }
}

pub(crate) fn pipe() -> Result<(OwnedFd, OwnedFd), String> {
    nix::unistd::pipe2(OFlag::O_CLOEXEC).map_err(|e| format!("pipe: {e}"))
}

fn dup_onto(from: &impl AsFd, to: i32) -> Result<(), String> {
    nix::unistd::dup2(from.as_fd().as_raw_fd(), to)
        .map(drop)
        .map_err(|e| format!("dup2 onto fd {to}: {e}"))
}

/// /dev/null, read-write.
pub fn open_null() -> Result<OwnedFd, String> {
    let f = File::options()
        .read(true)
        .write(true)
        .open("/dev/null")
        .map_err(|e| format!("opening /dev/null: {e}"))?;
    Ok(f.into())
}

/// The shim polls; nothing it holds may block it.
pub fn set_nonblocking(fd: &impl AsFd) -> Result<(), String> {
    use nix::fcntl::{fcntl, FcntlArg};
    let raw = fd.as_fd().as_raw_fd();
    let flags = fcntl(raw, FcntlArg::F_GETFL).map_err(|e| format!("fcntl: {e}"))?;
    fcntl(
        raw,
        FcntlArg::F_SETFL(OFlag::from_bits_truncate(flags) | OFlag::O_NONBLOCK),
    )
    .map(drop)
    .map_err(|e| format!("fcntl: {e}"))
}
