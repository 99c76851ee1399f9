//! The shim's event loop: one thread, poll(2) over the container's output,
//! its stdin, its execs' stdio, a signalfd for SIGCHLD, the control socket
//! and its clients.

use std::fs::File;
use std::io::{self, Write};
use std::os::fd::{AsFd, BorrowedFd};
use std::os::unix::net::UnixListener;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use berth_runtime::{Libcontainer, Runtime};
use nix::errno::Errno;
use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use nix::sys::signal::{SigSet, Signal};
use nix::sys::signalfd::{SfdFlags, SignalFd};
use nix::sys::wait::{waitpid, WaitPidFlag, WaitStatus};
use nix::unistd::Pid;

use crate::client::{Client, Input, MAX_BACKLOG};
use crate::exec::Exec;
use crate::logfile::{JsonLog, Stream};
use crate::protocol::{
    ExecSpec, ExitStatus, Request, Response, Streams, CONTROL_SOCKET, EXIT_FILE,
};
use crate::relay::Relay;
use crate::stdio::Stdio;
use crate::Args;

/// How long output may keep arriving after a process exited before the
/// shim stops waiting for its pipes to close (a process it left behind, or
/// one outside the container's pid namespace, may hold them).
const DRAIN: Duration = Duration::from_secs(1);

/// How often the loop looks at the clock while output drains.
const DRAIN_TICK_MS: u16 = 50;

/// How many finished execs' statuses are kept for late `exec_wait`s.
const REMEMBERED_EXECS: usize = 256;

/// Whose stdio a source is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Who {
    Init,
    Exec(usize),
}

/// Something the loop polls.
#[derive(Debug, Clone, Copy)]
enum Source {
    Signals,
    Listener,
    Handshake,
    Output(Who, Stream),
    Stdin(Who),
    Client(usize),
}

pub struct Supervisor<'a> {
    id: String,
    dir: PathBuf,
    runtime: &'a Libcontainer,
    pid: Pid,
    init: Relay,
    stdin_once: bool,
    log: JsonLog,
    signals: SignalFd,
    listener: UnixListener,
    /// The pipe to the daemon that spawned the shim, until the container
    /// starts: if the daemon dies first, nobody will start it.
    handshake: Option<File>,
    clients: Vec<Client>,
    /// The init's exit, and when it was seen.
    exit: Option<(ExitStatus, Instant)>,
    execs: Vec<Exec>,
    /// How the latest finished execs ended, oldest first.
    exec_exits: std::collections::VecDeque<(String, ExitStatus)>,
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
            init: Relay::new(io),
            stdin_once: args.stdin_once,
            log,
            signals,
            listener,
            handshake: Some(handshake),
            clients: Vec::new(),
            exit: None,
            execs: Vec::new(),
            exec_exits: std::collections::VecDeque::new(),
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
            self.finish_execs();
            if let Some((_, at)) = &self.exit {
                let drained = self.init.drained() && self.execs.is_empty();
                if drained || at.elapsed() >= DRAIN {
                    break;
                }
            }
            let draining = self.exit.is_some()
                || self.execs.iter().any(|e| e.exit.is_some())
                || self.clients.iter().any(|c| c.closing.is_some());
            let timeout = if draining {
                PollTimeout::from(DRAIN_TICK_MS)
            } else {
                PollTimeout::NONE
            };
            if let Err(e) = self.round(timeout) {
                tracing::error!(error = %e, "poll");
            }
        }
        Some(self.finish())
    }

    /// The relay of `who`, if it is still there.
    fn relay(&mut self, who: Who) -> Option<&mut Relay> {
        match who {
            Who::Init => Some(&mut self.init),
            Who::Exec(i) => self.execs.get_mut(i).map(|e| &mut e.relay),
        }
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
        let relays = std::iter::once((Who::Init, &self.init)).chain(
            self.execs
                .iter()
                .enumerate()
                .map(|(i, e)| (Who::Exec(i), &e.relay)),
        );
        for (who, relay) in relays {
            // Backpressure: a slow attached client holds the output.
            let backlog = self
                .clients
                .iter()
                .any(|c| c.out.len() > MAX_BACKLOG && self.bound(c) == Some(who));
            if !backlog {
                v.extend(
                    relay
                        .outputs()
                        .map(|(s, fd)| (Source::Output(who, s), fd, read)),
                );
            }
            if let Some(fd) = relay.pending_stdin() {
                v.push((Source::Stdin(who), fd, PollFlags::POLLOUT));
            }
        }
        for (i, c) in self.clients.iter().enumerate() {
            let mut flags = PollFlags::empty();
            // A client whose input has nowhere to go waits.
            let held = c.attach.is_some_and(|a| a.stdin)
                && self
                    .bound(c)
                    .and_then(|w| self.relay_ref(w))
                    .is_some_and(Relay::stdin_full);
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

    fn relay_ref(&self, who: Who) -> Option<&Relay> {
        match who {
            Who::Init => Some(&self.init),
            Who::Exec(i) => self.execs.get(i).map(|e| &e.relay),
        }
    }

    /// Whose stdio an attached client is bound to.
    fn bound(&self, c: &Client) -> Option<Who> {
        c.attach?;
        match &c.exec {
            None => Some(Who::Init),
            Some(id) => self.execs.iter().position(|e| &e.id == id).map(Who::Exec),
        }
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
            if let Source::Output(who, stream) = s {
                self.read_output(*who, *stream);
            }
        }
        for (s, revents) in ready {
            match s {
                Source::Signals => self.reap(),
                Source::Listener => self.accept(),
                Source::Handshake => self.abandoned = self.handshake.is_some(),
                Source::Output(..) => {}
                Source::Stdin(who) => {
                    if let Some(r) = self.relay(who) {
                        r.write_stdin();
                    }
                }
                Source::Client(i) => self.serve_client(i, revents),
            }
        }
        // Closing clients whose deadline passed go, written out or not.
        for c in self.clients.iter_mut().filter(|c| c.closing.is_some()) {
            c.flush();
        }
        self.clients.retain(|c| !c.closed);
        Ok(n)
    }

    fn read_output(&mut self, who: Who, stream: Stream) {
        let mut buf = [0u8; 32 << 10];
        let exec = match who {
            Who::Init => None,
            Who::Exec(i) => self.execs.get(i).map(|e| e.id.clone()),
        };
        let Some(relay) = self.relay(who) else {
            return;
        };
        let tty = relay.tty;
        let data = relay.read(stream, &mut buf);
        if data.is_empty() {
            return;
        }
        // Only the init's output is the container's log (as Docker's).
        if who == Who::Init {
            if let Err(e) = self.log.write(stream, data) {
                tracing::error!(error = %e, "writing the container log");
            }
        }
        for c in self.clients.iter_mut().filter(|c| c.exec == exec) {
            c.deliver(stream, data, tty);
        }
    }

    /// Reaps every exited child (the shim is a subreaper); records the
    /// init's status and its execs'.
    fn reap(&mut self) {
        while let Ok(Some(_)) = self.signals.read_signal() {}
        loop {
            let status = match waitpid(None, Some(WaitPidFlag::WNOHANG)) {
                Ok(WaitStatus::StillAlive) | Err(_) => return,
                Ok(status) => status,
            };
            let Some(code) = berth_runtime::reap::exit_code(status) else {
                continue;
            };
            let ended = (
                ExitStatus {
                    exit_code: code,
                    finished_at: chrono::Utc::now()
                        .to_rfc3339_opts(chrono::SecondsFormat::Nanos, true),
                },
                Instant::now(),
            );
            if status.pid() == Some(self.pid) {
                self.exit = Some(ended);
            } else if let Some(e) = self.execs.iter_mut().find(|e| Some(e.pid) == status.pid()) {
                e.exit = Some(ended);
            }
        }
    }

    /// Execs that exited and whose output is written (or waited for long
    /// enough): their clients get the end of the stream, then their waiters
    /// the status.
    fn finish_execs(&mut self) {
        let done = |e: &Exec| {
            e.exit
                .as_ref()
                .is_some_and(|(_, at)| e.relay.drained() || at.elapsed() >= DRAIN)
        };
        while let Some(i) = self.execs.iter().position(done) {
            let exec = self.execs.remove(i);
            let status = exec.exit.map(|(s, _)| s).unwrap_or_else(unknown_exit);
            self.exec_ended(&exec.id, status);
        }
    }

    fn exec_ended(&mut self, id: &str, status: ExitStatus) {
        for c in &mut self.clients {
            if c.exec.as_deref() == Some(id) && c.attach.is_some() {
                c.finish_later();
            }
            if c.waiting_exec.as_deref() == Some(id) {
                c.waiting_exec = None;
                c.reply(&Response::Exited(status.clone()));
            }
        }
        if self.exec_exits.len() == REMEMBERED_EXECS {
            self.exec_exits.pop_front();
        }
        self.exec_exits.push_back((id.to_owned(), status));
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
                Some(_) => self.stdin_from(idx, &bytes),
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
        let Some(a) = c.attach else {
            c.closed = true;
            return;
        };
        c.read_closed = true;
        // An exec's stdin ends with its client's (`echo x | docker exec
        // -i`); the container's only with StdinOnce.
        let closes = c.exec.is_some() || self.stdin_once;
        if let (true, true, Some(who)) = (a.stdin, closes, self.bound(&self.clients[idx])) {
            if let Some(r) = self.relay(who) {
                r.close_stdin();
            }
        }
    }

    fn stdin_from(&mut self, idx: usize, bytes: &[u8]) {
        let c = &self.clients[idx];
        if !c.attach.is_some_and(|a| a.stdin) {
            return;
        }
        if let Some(r) = self.bound(c).and_then(|w| self.relay(w)) {
            r.feed(bytes);
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
        self.stdin_from(idx, &rest);
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
                Some((status, _)) => Response::Exited(status.clone()),
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
                self.clients[idx].attach = Some(Streams {
                    stdin,
                    stdout,
                    stderr,
                });
                Response::Ok
            }
            Request::Resize {
                height,
                width,
                exec,
            } => self.resize(exec.as_deref(), height, width),
            Request::Exec { spec, attach } => return self.exec(idx, &spec, attach),
            Request::ExecWait { id } => return self.exec_wait(idx, id),
            Request::Pause => self.runtime_op("pause", |r, id| r.pause(id)),
            Request::Resume => self.runtime_op("resume", |r, id| r.resume(id)),
            Request::Update { resources } => match serde_json::from_value(resources) {
                Ok(res) => self.runtime_op("update", |r, id| r.update(id, &res)),
                Err(e) => error(format!("invalid resources: {e}")),
            },
        })
    }

    /// A runtime operation on the running container.
    fn runtime_op(
        &self,
        what: &str,
        op: impl FnOnce(&Libcontainer, &str) -> berth_runtime::Result<()>,
    ) -> Response {
        if self.exit.is_some() {
            return error(format!(
                "cannot {what} container {}: it is not running",
                self.id
            ));
        }
        match op(self.runtime, &self.id) {
            Ok(()) => Response::Ok,
            Err(e) => error(e.to_string()),
        }
    }

    /// Starts an exec; the answer is sent here (what follows it on the
    /// connection may be the exec's stdio).
    fn exec(&mut self, idx: usize, spec: &ExecSpec, attach: Option<Streams>) -> Option<Response> {
        if self.exit.is_some() || self.handshake.is_some() {
            return Some(error(format!("container {} is not running", self.id)));
        }
        if self.execs.iter().any(|e| e.id == spec.id) {
            return Some(error(format!("exec {} is already running", spec.id)));
        }
        let spawned = crate::exec::spawn(self.runtime, &self.id, &self.dir, spec);
        let answer = match spawned {
            Ok(exec) => {
                let pid = exec.pid.as_raw();
                self.execs.push(exec);
                let c = &mut self.clients[idx];
                c.exec = attach.map(|_| spec.id.clone());
                // Answered before the client counts as attached: the
                // answer is a JSON line, the rest is the process's stdio.
                c.reply(&Response::Started { pid });
                c.attach = attach;
                None
            }
            Err(e) => Some(error(e)),
        };
        // A SIGCHLD may have gone by while it was unblocked: the process
        // (known now) may be a zombie already.
        self.reap();
        answer
    }

    /// Answers at once when the exec has ended, else when it does.
    fn exec_wait(&mut self, idx: usize, id: String) -> Option<Response> {
        if let Some((_, status)) = self.exec_exits.iter().rev().find(|(e, _)| *e == id) {
            return Some(Response::Exited(status.clone()));
        }
        if !self.execs.iter().any(|e| e.id == id) {
            return Some(error(format!("no such exec: {id}")));
        }
        self.clients[idx].waiting_exec = Some(id);
        None
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

    fn resize(&self, exec: Option<&str>, height: u16, width: u16) -> Response {
        let relay = match exec {
            None => Some(&self.init),
            Some(id) => self.execs.iter().find(|e| e.id == id).map(|e| &e.relay),
        };
        let Some(relay) = relay else {
            return error(format!("exec {} is not running", exec.unwrap_or_default()));
        };
        let Some(master) = &relay.io.master else {
            return error(match exec {
                None => format!(
                    "container {} has no terminal to resize (it was created without -t)",
                    self.id
                ),
                Some(id) => {
                    format!("exec {id} has no terminal to resize (it was created without -t)")
                }
            });
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
        // Execs the end of the container took with it.
        for exec in std::mem::take(&mut self.execs) {
            let status = exec.exit.map(|(s, _)| s).unwrap_or_else(unknown_exit);
            self.exec_ended(&exec.id, status);
        }
        let status = self
            .exit
            .clone()
            .map(|(s, _)| s)
            .unwrap_or_else(unknown_exit);
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

/// The status of a process whose end was not seen.
fn unknown_exit() -> ExitStatus {
    ExitStatus {
        exit_code: 255,
        finished_at: String::new(),
    }
}

fn error(message: String) -> Response {
    Response::Error { message }
}

/// temp + rename: a reader sees no file or the whole one. Not synced: the
/// file is for a daemon restarted while the machine stays up (a machine
/// that crashes takes the container and the shim with it, and a missing or
/// empty file reads as an unknown exit), and the fsync was on the path of
/// every exit (2-5 ms where the exec root is on a disk, not a tmpfs).
fn write_atomically(path: &Path, status: &ExitStatus) -> io::Result<()> {
    let tmp = path.with_extension("tmp");
    let mut f = std::fs::File::create(&tmp)?;
    f.write_all(&serde_json::to_vec(status).map_err(io::Error::other)?)?;
    drop(f);
    std::fs::rename(&tmp, path)
}
