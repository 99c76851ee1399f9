//! The shim's event loop: one thread, poll(2) over the container's output,
//! its stdin, a signalfd for SIGCHLD, the control socket and its clients.

use std::fs::File;
use std::io::{self, Write};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd};
use std::os::unix::net::UnixListener;
use std::path::{Path, PathBuf};

use berth_runtime::{Libcontainer, Runtime};
use nix::errno::Errno;
use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use nix::sys::signal::{SigSet, Signal};
use nix::sys::signalfd::{SfdFlags, SignalFd};
use nix::sys::wait::{waitpid, WaitPidFlag, WaitStatus};
use nix::unistd::Pid;

use crate::client::{Attach, Client, Input, MAX_BACKLOG};
use crate::logfile::{JsonLog, Stream};
use crate::protocol::{ExitStatus, Request, Response, CONTROL_SOCKET, EXIT_FILE};
use crate::stdio::Stdio;
use crate::Args;

/// How long output may keep arriving after the init exited before the
/// shim stops waiting for the pipes to close (a process outside the
/// container's pid namespace may hold them).
const DRAIN_MS: u16 = 1000;

/// Something the loop polls.
#[derive(Debug, Clone, Copy)]
enum Source {
    Signals,
    Listener,
    Handshake,
    Output(Stream),
    Stdin,
    Client(usize),
}

pub struct Supervisor<'a> {
    id: String,
    dir: PathBuf,
    runtime: &'a Libcontainer,
    pid: Pid,
    io: Stdio,
    tty: bool,
    stdin_once: bool,
    /// Bytes for stdin the container has not taken yet.
    stdin_buf: Vec<u8>,
    /// Close stdin once `stdin_buf` is written (a `StdinOnce` client left).
    stdin_closing: bool,
    log: JsonLog,
    signals: SignalFd,
    listener: UnixListener,
    /// The pipe to the daemon that spawned the shim, until the container
    /// starts: if the daemon dies first, nobody will start it.
    handshake: Option<File>,
    clients: Vec<Client>,
    exit: Option<ExitStatus>,
    /// Start failed or the daemon vanished before it: give up.
    abandoned: bool,
}

impl<'a> Supervisor<'a> {
    /// Blocks SIGCHLD into a signalfd and opens the control socket; call
    /// after the container is created, before it starts (the init was
    /// forked with the old signal mask).
    pub fn new(
        args: &Args,
        runtime: &'a Libcontainer,
        pid: i32,
        io: Stdio,
        log: JsonLog,
        handshake: File,
    ) -> io::Result<Self> {
        let mut mask = SigSet::empty();
        mask.add(Signal::SIGCHLD);
        mask.thread_block()?;
        let signals = SignalFd::with_flags(&mask, SfdFlags::SFD_NONBLOCK | SfdFlags::SFD_CLOEXEC)?;
        let listener = crate::protocol::bind(&args.dir)?;
        listener.set_nonblocking(true)?;
        Ok(Self {
            id: args.id.clone(),
            dir: args.dir.clone(),
            runtime,
            pid: Pid::from_raw(pid),
            tty: io.master.is_some(),
            io,
            stdin_once: args.stdin_once,
            stdin_buf: Vec::new(),
            stdin_closing: false,
            log,
            signals,
            listener,
            handshake: Some(handshake),
            clients: Vec::new(),
            exit: None,
            abandoned: false,
        })
    }

    /// Runs until the container has exited and its output is logged (the
    /// exit code), or until it is abandoned before starting (None).
    pub fn run(&mut self) -> Option<i32> {
        loop {
            if self.abandoned {
                if let Err(e) = self.runtime.delete(&self.id, true) {
                    tracing::error!(error = %e, "deleting an abandoned container");
                }
                return None;
            }
            let drained = self.io.outputs.iter().all(Option::is_none);
            if self.exit.is_some() && drained {
                break;
            }
            let timeout = if self.exit.is_some() {
                PollTimeout::from(DRAIN_MS)
            } else {
                PollTimeout::NONE
            };
            match self.round(timeout) {
                Ok(0) if self.exit.is_some() => break, // pipes held open elsewhere
                Ok(_) => {}
                Err(e) => tracing::error!(error = %e, "poll"),
            }
        }
        Some(self.finish())
    }

    /// What to poll this round, and for what.
    fn sources(&self) -> Vec<(Source, BorrowedFd<'_>, PollFlags)> {
        let read = PollFlags::POLLIN;
        let mut v = vec![
            (Source::Signals, self.signals.as_fd(), read),
            (Source::Listener, self.listener.as_fd(), read),
        ];
        if let Some(h) = &self.handshake {
            // No events asked: POLLERR arrives when the daemon's end closes.
            v.push((Source::Handshake, h.as_fd(), PollFlags::empty()));
        }
        // Backpressure: a slow attached client holds the container's output.
        let backlog = self.clients.iter().any(|c| c.out.len() > MAX_BACKLOG);
        if !backlog {
            for (fd, s) in self.io.outputs.iter().zip([Stream::Stdout, Stream::Stderr]) {
                if let Some(fd) = fd {
                    v.push((Source::Output(s), fd.as_fd(), read));
                }
            }
        }
        if let (Some(fd), false) = (&self.io.stdin, self.stdin_buf.is_empty()) {
            v.push((Source::Stdin, fd.as_fd(), PollFlags::POLLOUT));
        }
        let stdin_full = self.stdin_buf.len() > MAX_BACKLOG;
        for (i, c) in self.clients.iter().enumerate() {
            let mut flags = PollFlags::empty();
            // A client whose input has nowhere to go waits.
            let held = c.attach.is_some_and(|a| a.stdin) && stdin_full;
            if !c.read_closed && !held {
                flags |= read;
            }
            if !c.out.is_empty() {
                flags |= PollFlags::POLLOUT;
            }
            v.push((Source::Client(i), c.stream.as_fd(), flags));
        }
        v
    }

    /// One poll round; returns how many descriptors were ready.
    fn round(&mut self, timeout: PollTimeout) -> nix::Result<i32> {
        let (n, ready) = {
            let sources = self.sources();
            let mut fds: Vec<PollFd<'_>> = sources
                .iter()
                .map(|(_, fd, flags)| PollFd::new(*fd, *flags))
                .collect();
            let n = match poll(&mut fds, timeout) {
                Err(Errno::EINTR) => 0,
                other => other?,
            };
            let ready: Vec<(Source, PollFlags)> = sources
                .iter()
                .zip(&fds)
                .filter_map(|((s, _, _), fd)| {
                    let r = fd.revents().unwrap_or(PollFlags::empty());
                    (!r.is_empty()).then_some((*s, r))
                })
                .collect();
            (n, ready)
        };
        // Output first: what the container wrote before it exited is
        // logged before its exit is recorded.
        for (s, _) in &ready {
            if let Source::Output(stream) = s {
                self.read_output(*stream);
            }
        }
        for (s, revents) in ready {
            match s {
                Source::Signals => self.reap(),
                Source::Listener => self.accept(),
                Source::Handshake => self.abandoned = self.handshake.is_some(),
                Source::Output(_) => {}
                Source::Stdin => self.write_stdin(),
                Source::Client(i) => self.serve_client(i, revents),
            }
        }
        self.clients.retain(|c| !c.closed);
        Ok(n)
    }

    fn read_output(&mut self, stream: Stream) {
        let idx = stream as usize;
        let Some(fd) = &self.io.outputs[idx] else {
            return;
        };
        let mut buf = [0u8; 32 << 10];
        match nix::unistd::read(fd.as_raw_fd(), &mut buf) {
            Ok(0) => self.io.outputs[idx] = None,
            Ok(n) => {
                let data = &buf[..n];
                if let Err(e) = self.log.write(stream, data) {
                    tracing::error!(error = %e, "writing the container log");
                }
                for c in &mut self.clients {
                    c.deliver(stream, data, self.tty);
                }
            }
            Err(Errno::EAGAIN | Errno::EINTR) => {}
            // EIO on a pty master: the terminal's last holder is gone.
            Err(_) => self.io.outputs[idx] = None,
        }
    }

    fn write_stdin(&mut self) {
        let Some(fd) = &self.io.stdin else {
            self.stdin_buf.clear();
            return;
        };
        match nix::unistd::write(fd, &self.stdin_buf) {
            Ok(n) => {
                self.stdin_buf.drain(..n);
            }
            Err(Errno::EAGAIN | Errno::EINTR) => {}
            // The container closed its stdin: what is left has no reader.
            Err(_) => {
                self.stdin_buf.clear();
                self.io.stdin = None;
            }
        }
        if self.stdin_closing && self.stdin_buf.is_empty() && !self.tty {
            self.io.stdin = None;
        }
    }

    /// Reaps every exited child (the shim is a subreaper); records the
    /// init's status.
    fn reap(&mut self) {
        while let Ok(Some(_)) = self.signals.read_signal() {}
        loop {
            match waitpid(None, Some(WaitPidFlag::WNOHANG)) {
                Ok(WaitStatus::StillAlive) | Err(_) => return,
                Ok(status) if status.pid() == Some(self.pid) => {
                    if let Some(code) = berth_runtime::reap::exit_code(status) {
                        let finished_at =
                            chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Nanos, true);
                        self.exit = Some(ExitStatus {
                            exit_code: code,
                            finished_at,
                        });
                    }
                }
                Ok(_) => {}
            }
        }
    }

    fn accept(&mut self) {
        while let Ok((stream, _)) = self.listener.accept() {
            if stream.set_nonblocking(true).is_ok() {
                self.clients.push(Client::new(stream));
            }
        }
    }

    fn serve_client(&mut self, idx: usize, revents: PollFlags) {
        if revents.contains(PollFlags::POLLOUT) {
            self.clients[idx].flush();
        }
        if !revents.intersects(PollFlags::POLLIN | PollFlags::POLLHUP | PollFlags::POLLERR) {
            return;
        }
        match self.clients[idx].read() {
            Input::Nothing => {}
            Input::Eof => self.client_eof(idx),
            Input::Bytes(bytes) => match self.clients[idx].attach {
                Some(a) => self.stdin_from(a, &bytes),
                None => {
                    self.clients[idx].inbuf.extend_from_slice(&bytes);
                    self.requests(idx);
                }
            },
        }
    }

    /// A client sent its last byte: a control client is done; an attached
    /// one may still read output, and its stdin ends.
    fn client_eof(&mut self, idx: usize) {
        let c = &mut self.clients[idx];
        match c.attach {
            None => c.closed = true,
            Some(a) => {
                c.read_closed = true;
                if a.stdin && self.stdin_once {
                    self.stdin_closing = true;
                    self.write_stdin();
                }
            }
        }
    }

    fn stdin_from(&mut self, a: Attach, bytes: &[u8]) {
        if a.stdin && self.io.stdin.is_some() {
            self.stdin_buf.extend_from_slice(bytes);
            self.write_stdin();
        }
    }

    /// Answers the complete request lines of a control client; after an
    /// `attach`, what follows is stdin.
    fn requests(&mut self, idx: usize) {
        while self.clients[idx].attach.is_none() {
            let c = &mut self.clients[idx];
            let Some(pos) = c.inbuf.iter().position(|b| *b == b'\n') else {
                return;
            };
            let line: Vec<u8> = c.inbuf.drain(..=pos).collect();
            let answer = match serde_json::from_slice::<Request>(&line) {
                Ok(req) => self.answer(idx, req),
                Err(e) => Some(Response::Error {
                    message: format!("bad request: {e}"),
                }),
            };
            if let Some(a) = answer {
                self.clients[idx].reply(&a);
            }
        }
        let rest = std::mem::take(&mut self.clients[idx].inbuf);
        if let Some(a) = self.clients[idx].attach {
            self.stdin_from(a, &rest);
        }
    }

    fn answer(&mut self, idx: usize, req: Request) -> Option<Response> {
        let running = self.exit.is_none();
        Some(match req {
            Request::State => Response::State {
                pid: self.pid.as_raw(),
                running,
            },
            Request::Kill { signal } => self.kill(signal),
            Request::Wait => match &self.exit {
                Some(status) => Response::Exited(status.clone()),
                None => {
                    self.clients[idx].waiting = true;
                    return None;
                }
            },
            Request::Start => self.start(),
            Request::Attach {
                stdin,
                stdout,
                stderr,
            } => {
                self.clients[idx].attach = Some(Attach {
                    stdin,
                    stdout,
                    stderr,
                });
                Response::Ok
            }
            Request::Resize { height, width } => self.resize(height, width),
        })
    }

    fn kill(&self, signal: i32) -> Response {
        if self.exit.is_some() {
            return error(format!("container {} is not running", self.id));
        }
        let Ok(sig) = Signal::try_from(signal) else {
            return error(format!("invalid signal {signal}"));
        };
        match nix::sys::signal::kill(self.pid, sig) {
            Ok(()) => Response::Ok,
            Err(e) => error(format!("sending {sig} to {}: {e}", self.pid)),
        }
    }

    fn start(&mut self) -> Response {
        if self.handshake.is_none() {
            return error(format!("container {} is already started", self.id));
        }
        match self.runtime.start(&self.id) {
            Ok(()) => {
                // Let go of the daemon: it may die, the container must not notice.
                self.handshake = None;
                Response::Ok
            }
            Err(e) => {
                self.abandoned = true;
                error(e.to_string())
            }
        }
    }

    fn resize(&self, height: u16, width: u16) -> Response {
        let Some(master) = &self.io.master else {
            return error(format!(
                "container {} has no terminal to resize (it was created without -t)",
                self.id
            ));
        };
        match berth_runtime::console::set_window_size(master.as_fd(), height, width) {
            Ok(()) => Response::Ok,
            Err(e) => error(e.to_string()),
        }
    }

    /// Records the exit, answers waiters, ends attached streams, deletes
    /// the container.
    fn finish(&mut self) -> i32 {
        if let Err(e) = self.log.flush_partial() {
            tracing::error!(error = %e, "writing the container log");
        }
        let status = self.exit.clone().unwrap_or_else(|| ExitStatus {
            exit_code: 255,
            finished_at: String::new(),
        });
        if let Err(e) = write_atomically(&self.dir.join(EXIT_FILE), &status) {
            tracing::error!(error = %e, "recording the exit status");
        }
        for c in &mut self.clients {
            if c.waiting {
                c.reply(&Response::Exited(status.clone()));
            }
            c.finish();
        }
        if let Err(e) = self.runtime.delete(&self.id, true) {
            tracing::error!(error = %e, "deleting the container");
        }
        let _ = std::fs::remove_file(self.dir.join(CONTROL_SOCKET));
        status.exit_code
    }
}

fn error(message: String) -> Response {
    Response::Error { message }
}

/// temp + fsync + rename: a reader sees the old file or the whole new one.
fn write_atomically(path: &Path, status: &ExitStatus) -> io::Result<()> {
    let tmp = path.with_extension("tmp");
    let mut f = std::fs::File::create(&tmp)?;
    f.write_all(&serde_json::to_vec(status).map_err(io::Error::other)?)?;
    f.sync_all()?;
    std::fs::rename(&tmp, path)
}
