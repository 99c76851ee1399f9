//! The shim's event loop: one thread, poll(2) over the container's output
//! pipes, a signalfd for SIGCHLD and the control socket.

use std::io::{self, Read, Write};
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};

use berth_runtime::{Libcontainer, Runtime};
use nix::errno::Errno;
use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use nix::sys::signal::{SigSet, Signal};
use nix::sys::signalfd::{SfdFlags, SignalFd};
use nix::sys::wait::{waitpid, WaitPidFlag, WaitStatus};
use nix::unistd::Pid;

use crate::logfile::{JsonLog, Stream};
use crate::protocol::{ExitStatus, Request, Response, CONTROL_SOCKET, EXIT_FILE};
use crate::Args;

/// How long output may keep arriving after the init exited before the
/// shim stops waiting for the pipes to close (a process outside the
/// container's pid namespace may hold them).
const DRAIN_MS: u16 = 1000;

struct Client {
    stream: UnixStream,
    buf: Vec<u8>,
    waiting: bool,
    closed: bool,
}

pub struct Supervisor<'a> {
    id: String,
    dir: PathBuf,
    runtime: &'a Libcontainer,
    pid: Pid,
    pipes: [Option<OwnedFd>; 2],
    log: JsonLog,
    signals: SignalFd,
    listener: UnixListener,
    clients: Vec<Client>,
    exit: Option<ExitStatus>,
}

impl<'a> Supervisor<'a> {
    /// Blocks SIGCHLD into a signalfd and opens the control socket; call
    /// after the container is created, before it starts (the init was
    /// forked with the old signal mask).
    pub fn new(
        args: &Args,
        runtime: &'a Libcontainer,
        pid: i32,
        out: OwnedFd,
        err: OwnedFd,
        log: JsonLog,
    ) -> io::Result<Self> {
        let mut mask = SigSet::empty();
        mask.add(Signal::SIGCHLD);
        mask.thread_block()?;
        let signals = SignalFd::with_flags(&mask, SfdFlags::SFD_NONBLOCK | SfdFlags::SFD_CLOEXEC)?;
        let listener = crate::protocol::bind(&args.dir)?;
        listener.set_nonblocking(true)?;
        for fd in [&out, &err] {
            set_nonblocking(fd)?;
        }
        Ok(Self {
            id: args.id.clone(),
            dir: args.dir.clone(),
            runtime,
            pid: Pid::from_raw(pid),
            pipes: [Some(out), Some(err)],
            log,
            signals,
            listener,
            clients: Vec::new(),
            exit: None,
        })
    }

    /// Runs until the container has exited and its output is logged;
    /// returns the exit code.
    pub fn run(&mut self) -> i32 {
        loop {
            let drained = self.pipes.iter().all(Option::is_none);
            if self.exit.is_some() && drained {
                break;
            }
            let timeout = if self.exit.is_some() {
                PollTimeout::from(DRAIN_MS)
            } else {
                PollTimeout::NONE
            };
            match self.wait_events(timeout) {
                Ok(0) if self.exit.is_some() => break, // pipes held open elsewhere
                Ok(_) => {}
                Err(e) => tracing::error!(error = %e, "poll"),
            }
        }
        self.finish()
    }

    /// One poll round; returns how many descriptors were ready.
    fn wait_events(&mut self, timeout: PollTimeout) -> nix::Result<i32> {
        let ready_in = PollFlags::POLLIN;
        let (ready, revents) = {
            let mut fds = vec![
                PollFd::new(self.signals.as_fd(), ready_in),
                PollFd::new(self.listener.as_fd(), ready_in),
            ];
            for p in self.pipes.iter().flatten() {
                fds.push(PollFd::new(p.as_fd(), ready_in));
            }
            for c in &self.clients {
                fds.push(PollFd::new(c.stream.as_fd(), ready_in));
            }
            let n = match poll(&mut fds, timeout) {
                Err(Errno::EINTR) => 0,
                other => other?,
            };
            (
                n,
                fds.iter()
                    .map(|f| f.revents().unwrap_or(PollFlags::empty()))
                    .collect::<Vec<_>>(),
            )
        };
        let hit = |f: PollFlags| {
            f.intersects(PollFlags::POLLIN | PollFlags::POLLHUP | PollFlags::POLLERR)
        };
        // Output first: what the container wrote before it exited is
        // logged before its exit is recorded.
        let mut i = 2;
        for stream in [Stream::Stdout, Stream::Stderr] {
            if self.pipes[stream as usize].is_some() {
                if hit(revents[i]) {
                    self.read_output(stream);
                }
                i += 1;
            }
        }
        if hit(revents[0]) {
            self.reap();
        }
        if hit(revents[1]) {
            self.accept();
        }
        for (c, r) in revents[i..].iter().enumerate() {
            if hit(*r) {
                self.serve_client(c);
            }
        }
        self.clients.retain(|c| !c.closed);
        Ok(ready)
    }

    fn read_output(&mut self, stream: Stream) {
        let Some(fd) = &self.pipes[stream as usize] else {
            return;
        };
        let mut buf = [0u8; 32 << 10];
        match nix::unistd::read(std::os::fd::AsRawFd::as_raw_fd(fd), &mut buf) {
            Ok(0) => self.pipes[stream as usize] = None,
            Ok(n) => {
                if let Err(e) = self.log.write(stream, &buf[..n]) {
                    tracing::error!(error = %e, "writing the container log");
                }
            }
            Err(Errno::EAGAIN | Errno::EINTR) => {}
            Err(e) => {
                tracing::error!(error = %e, "reading container output");
                self.pipes[stream as usize] = None;
            }
        }
    }

    /// Reaps every exited child (the shim is a subreaper); records the
    /// init's status.
    fn reap(&mut self) {
        while let Ok(Some(_)) = self.signals.read_signal() {}
        loop {
            match waitpid(None, Some(WaitPidFlag::WNOHANG)) {
                Ok(WaitStatus::StillAlive) | Err(_) => return,
                Ok(status) => {
                    if status.pid() == Some(self.pid) {
                        if let Some(code) = berth_runtime::reap::exit_code(status) {
                            let finished_at = chrono::Utc::now()
                                .to_rfc3339_opts(chrono::SecondsFormat::Nanos, true);
                            self.exit = Some(ExitStatus {
                                exit_code: code,
                                finished_at,
                            });
                        }
                    }
                }
            }
        }
    }

    fn accept(&mut self) {
        while let Ok((stream, _)) = self.listener.accept() {
            if stream.set_nonblocking(true).is_ok() {
                self.clients.push(Client {
                    stream,
                    buf: Vec::new(),
                    waiting: false,
                    closed: false,
                });
            }
        }
    }

    fn serve_client(&mut self, idx: usize) {
        let mut chunk = [0u8; 4096];
        let n = match self.clients[idx].stream.read(&mut chunk) {
            Ok(0) => {
                self.clients[idx].closed = true;
                return;
            }
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
            Err(_) => {
                self.clients[idx].closed = true;
                return;
            }
        };
        self.clients[idx].buf.extend_from_slice(&chunk[..n]);
        while let Some(pos) = self.clients[idx].buf.iter().position(|b| *b == b'\n') {
            let line: Vec<u8> = self.clients[idx].buf.drain(..=pos).collect();
            let answer = match serde_json::from_slice::<Request>(&line) {
                Ok(req) => self.answer(idx, req),
                Err(e) => Some(Response::Error {
                    message: format!("bad request: {e}"),
                }),
            };
            if let Some(a) = answer {
                reply(&mut self.clients[idx], &a);
            }
        }
    }

    fn answer(&mut self, idx: usize, req: Request) -> Option<Response> {
        let running = self.exit.is_none();
        Some(match req {
            Request::State => Response::State {
                pid: self.pid.as_raw(),
                running,
            },
            Request::Kill { signal } => match (running, Signal::try_from(signal)) {
                (false, _) => Response::Error {
                    message: format!("container {} is not running", self.id),
                },
                (true, Err(_)) => Response::Error {
                    message: format!("invalid signal {signal}"),
                },
                (true, Ok(sig)) => match nix::sys::signal::kill(self.pid, sig) {
                    Ok(()) => Response::Ok,
                    Err(e) => Response::Error {
                        message: format!("sending {sig} to {}: {e}", self.pid),
                    },
                },
            },
            Request::Wait => match &self.exit {
                Some(status) => Response::Exited(status.clone()),
                None => {
                    self.clients[idx].waiting = true;
                    return None;
                }
            },
        })
    }

    /// Records the exit, answers waiters, deletes the container.
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
        for c in self.clients.iter_mut().filter(|c| c.waiting) {
            reply(c, &Response::Exited(status.clone()));
        }
        if let Err(e) = self.runtime.delete(&self.id, true) {
            tracing::error!(error = %e, "deleting the container");
        }
        let _ = std::fs::remove_file(self.dir.join(CONTROL_SOCKET));
        status.exit_code
    }
}

fn reply(c: &mut Client, r: &Response) {
    let mut line = serde_json::to_vec(r).unwrap_or_default();
    line.push(b'\n');
    // Answers are a few dozen bytes: a non-blocking socket takes them whole.
    if c.stream.write_all(&line).is_err() {
        c.closed = true;
    }
}

fn set_nonblocking(fd: &OwnedFd) -> io::Result<()> {
    use nix::fcntl::{fcntl, FcntlArg, OFlag};
    let flags = OFlag::from_bits_truncate(fcntl(
        std::os::fd::AsRawFd::as_raw_fd(fd),
        FcntlArg::F_GETFL,
    )?);
    fcntl(
        std::os::fd::AsRawFd::as_raw_fd(fd),
        FcntlArg::F_SETFL(flags | OFlag::O_NONBLOCK),
    )?;
    Ok(())
}

/// temp + fsync + rename: a reader sees the old file or the whole new one.
fn write_atomically(path: &Path, status: &ExitStatus) -> io::Result<()> {
    let tmp = path.with_extension("tmp");
    let mut f = std::fs::File::create(&tmp)?;
    f.write_all(&serde_json::to_vec(status).map_err(io::Error::other)?)?;
    f.sync_all()?;
    std::fs::rename(&tmp, path)
}
