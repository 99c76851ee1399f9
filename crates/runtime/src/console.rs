//! A terminal for a foreground `run` whose process asks for one
//! (`process.terminal`) when no `--console-socket` is given, as runc does:
//! the runtime receives the pty master itself and relays it to its own
//! stdin/stdout, passing resizes and signals on.

use std::io::{Read, Write};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::os::unix::net::UnixListener;
use std::path::{Path, PathBuf};

use nix::errno::Errno;
use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use nix::sys::signal::Signal;
use nix::sys::signalfd::SignalFd;
use nix::sys::socket::{recvmsg, ControlMessageOwned, MsgFlags};
use nix::sys::termios::{self, SetArg, Termios};
use nix::unistd::Pid;

use crate::error::{Result, RuntimeError};
use crate::reap::{forward, try_reap, Forwarder};
use crate::sys;

/// A socket libcontainer connects to, to hand over the pty master.
#[derive(Debug)]
pub struct ConsoleSocket {
    listener: UnixListener,
    path: PathBuf,
}

impl ConsoleSocket {
    /// Listens on a socket in `dir`, named after `id` and this process.
    pub fn bind(dir: &Path, id: &str) -> Result<Self> {
        let path = dir.join(format!(".console-{id}-{}.sock", std::process::id()));
        let listener =
            UnixListener::bind(&path).map_err(|e| RuntimeError::io("listen on", &path, e))?;
        Ok(Self { listener, path })
    }

    /// Wraps a listener the caller bound at `path` (a caller whose paths
    /// may exceed sun_path binds through a short alias); the file at `path`
    /// is removed on drop.
    pub fn from_listener(listener: UnixListener, path: PathBuf) -> Self {
        Self { listener, path }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Accepts the runtime's connection and takes the pty master it sends.
    pub fn receive_master(&self) -> Result<OwnedFd> {
        let (stream, _) = self
            .listener
            .accept()
            .map_err(|e| RuntimeError::io("accept on", &self.path, e))?;
        let mut buf = [0u8; 4096];
        let mut iov = [std::io::IoSliceMut::new(&mut buf)];
        let mut space = nix::cmsg_space!([std::os::fd::RawFd; 1]);
        let msg = recvmsg::<()>(
            stream.as_raw_fd(),
            &mut iov,
            Some(&mut space),
            MsgFlags::MSG_CMSG_CLOEXEC,
        )
        .map_err(|e| RuntimeError::sys("receive the pty master", e))?;
        let cmsgs = msg
            .cmsgs()
            .map_err(|e| RuntimeError::sys("read control message", e))?;
        for cmsg in cmsgs {
            if let ControlMessageOwned::ScmRights(fds) = cmsg {
                if let Some(fd) = fds.first() {
                    return Ok(sys::own_received_fd(*fd));
                }
            }
        }
        Err(RuntimeError::InvalidArgument(
            "the console socket received no pty master".into(),
        ))
    }
}

impl Drop for ConsoleSocket {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

/// Sets the window size of the terminal `fd` (a pty master: the size
/// applies to its slave, which gets SIGWINCH).
pub fn set_window_size(fd: BorrowedFd<'_>, rows: u16, cols: u16) -> Result<()> {
    sys::set_window_size(fd, rows, cols)
}

/// The window size of terminal `fd` as (rows, columns).
pub fn window_size(fd: BorrowedFd<'_>) -> Result<(u16, u16)> {
    sys::window_size(fd)
}

/// Our stdin in raw mode while alive, when it is a terminal (keys, Ctrl-C
/// included, go to the container's terminal); restored on drop.
#[derive(Debug)]
pub struct RawStdin {
    saved: Option<Termios>,
}

impl RawStdin {
    /// Raw mode on stdin; nothing when stdin is not a terminal.
    pub fn enter() -> Self {
        let stdin = std::io::stdin();
        let saved = termios::tcgetattr(stdin.as_fd()).ok();
        if let Some(original) = &saved {
            let mut raw = original.clone();
            termios::cfmakeraw(&mut raw);
            let _ = termios::tcsetattr(stdin.as_fd(), SetArg::TCSANOW, &raw);
        }
        Self { saved }
    }
}

impl Drop for RawStdin {
    fn drop(&mut self) {
        if let Some(original) = &self.saved {
            let _ = termios::tcsetattr(std::io::stdin().as_fd(), SetArg::TCSANOW, original);
        }
    }
}

/// Relays between our stdio and the pty `master` until `pid` exits, then
/// drains what it printed last; returns its exit status.
pub(crate) fn relay(master: OwnedFd, pid: Pid, forwarder: &Forwarder) -> Result<i32> {
    let stdin = std::io::stdin();
    let _ = sys::copy_window_size(stdin.as_fd(), master.as_fd());
    let _raw = RawStdin::enter();
    let signals =
        SignalFd::new(forwarder.signals()).map_err(|e| RuntimeError::sys("signalfd", e))?;
    let mut master_file = std::fs::File::from(master);
    let mut stdin_open = true;
    loop {
        if let Some(code) = try_reap(pid)? {
            drain(&mut master_file);
            return Ok(code);
        }
        let ready = wait_ready(
            &signals,
            master_file.as_fd(),
            stdin_open.then(|| stdin.as_fd()),
        )?;
        if ready.signal {
            handle_signal(&signals, pid, stdin.as_fd(), master_file.as_fd())?;
        }
        if ready.master && !copy(&mut master_file, &mut std::io::stdout()) {
            // The slave side is gone (EIO): the process is exiting.
            drain(&mut master_file);
            return crate::reap::wait_exit(pid);
        }
        if ready.stdin && !copy(&mut stdin.lock(), &mut master_file) {
            stdin_open = false;
        }
    }
}

struct Ready {
    signal: bool,
    master: bool,
    stdin: bool,
}

fn wait_ready(
    signals: &SignalFd,
    master: BorrowedFd<'_>,
    stdin: Option<BorrowedFd<'_>>,
) -> Result<Ready> {
    let mut fds = vec![
        PollFd::new(signals.as_fd(), PollFlags::POLLIN),
        PollFd::new(master, PollFlags::POLLIN),
    ];
    if let Some(stdin) = stdin {
        fds.push(PollFd::new(stdin, PollFlags::POLLIN));
    }
    match poll(&mut fds, PollTimeout::NONE) {
        Ok(_) | Err(Errno::EINTR) => {}
        Err(e) => return Err(RuntimeError::sys("poll the console", e)),
    }
    let hit = |fd: &PollFd<'_>| fd.revents().is_some_and(|r| !r.is_empty());
    Ok(Ready {
        signal: hit(&fds[0]),
        master: hit(&fds[1]),
        stdin: fds.get(2).is_some_and(hit),
    })
}

fn handle_signal(
    signals: &SignalFd,
    pid: Pid,
    stdin: BorrowedFd<'_>,
    master: BorrowedFd<'_>,
) -> Result<()> {
    let Some(info) = signals
        .read_signal()
        .map_err(|e| RuntimeError::sys("read signalfd", e))?
    else {
        return Ok(());
    };
    let Ok(signal) = Signal::try_from(i32::try_from(info.ssi_signo).unwrap_or_default()) else {
        return Ok(());
    };
    match signal {
        Signal::SIGCHLD => {}
        Signal::SIGWINCH => {
            let _ = sys::copy_window_size(stdin, master);
        }
        other => forward(pid, other)?,
    }
    Ok(())
}

/// One read and write; false at end of input or on an error.
fn copy(from: &mut impl Read, to: &mut impl Write) -> bool {
    let mut buf = [0u8; 8192];
    match from.read(&mut buf) {
        Ok(0) | Err(_) => false,
        Ok(n) => to.write_all(&buf[..n]).and_then(|()| to.flush()).is_ok(),
    }
}

/// Whatever the master still holds, without blocking.
fn drain(master: &mut std::fs::File) {
    let _ = nix::fcntl::fcntl(
        master.as_raw_fd(),
        nix::fcntl::FcntlArg::F_SETFL(nix::fcntl::OFlag::O_NONBLOCK),
    );
    while copy(master, &mut std::io::stdout()) {}
}
