//! One process's stdio as the shim relays it — the container's init or an
//! exec'd process: output read without blocking from its pipes (or its pty
//! master), input buffered until the process takes it.

use std::os::fd::{AsFd, AsRawFd, BorrowedFd};

use nix::errno::Errno;

use crate::client::MAX_BACKLOG;
use crate::logfile::Stream;
use crate::stdio::Stdio;

#[derive(Debug)]
pub struct Relay {
    pub io: Stdio,
    /// One stream of raw bytes (a terminal), not two framed ones.
    pub tty: bool,
    /// Bytes for stdin the process has not taken yet.
    stdin_buf: Vec<u8>,
    /// Close stdin once `stdin_buf` is written (its writer left).
    stdin_closing: bool,
}

impl Relay {
    pub fn new(io: Stdio) -> Self {
        Self {
            tty: io.master.is_some(),
            io,
            stdin_buf: Vec::new(),
            stdin_closing: false,
        }
    }

    /// Every output reached its end.
    pub fn drained(&self) -> bool {
        self.io.outputs.iter().all(Option::is_none)
    }

    /// The outputs still open, to poll for reading.
    pub fn outputs(&self) -> impl Iterator<Item = (Stream, BorrowedFd<'_>)> {
        self.io
            .outputs
            .iter()
            .zip([Stream::Stdout, Stream::Stderr])
            .filter_map(|(fd, s)| fd.as_ref().map(|fd| (s, fd.as_fd())))
    }

    /// Stdin, to poll for writing, while bytes wait for it.
    pub fn pending_stdin(&self) -> Option<BorrowedFd<'_>> {
        self.io
            .stdin
            .as_ref()
            .filter(|_| !self.stdin_buf.is_empty())
            .map(AsFd::as_fd)
    }

    /// More input waits than the process takes: its writers must wait.
    pub fn stdin_full(&self) -> bool {
        self.stdin_buf.len() > MAX_BACKLOG
    }

    /// One non-blocking read of `stream` into `buf`: the bytes read, none
    /// when nothing was there or the stream ended (it is closed then).
    pub fn read<'b>(&mut self, stream: Stream, buf: &'b mut [u8]) -> &'b [u8] {
        let idx = stream as usize;
        let Some(fd) = &self.io.outputs[idx] else {
            return &[];
        };
        match nix::unistd::read(fd.as_raw_fd(), buf) {
            Ok(0) => self.io.outputs[idx] = None,
            Ok(n) => return &buf[..n],
            Err(Errno::EAGAIN | Errno::EINTR) => {}
            // EIO on a pty master: the terminal's last holder is gone.
            Err(_) => self.io.outputs[idx] = None,
        }
        &[]
    }

    /// Queues input and writes what the process takes now.
    pub fn feed(&mut self, bytes: &[u8]) {
        if self.io.stdin.is_some() {
            self.stdin_buf.extend_from_slice(bytes);
            self.write_stdin();
        }
    }

    /// The writer is done: stdin closes once what waits is written (a
    /// terminal stays open: its end of input is a ^D the client sends).
    pub fn close_stdin(&mut self) {
        self.stdin_closing = true;
        self.write_stdin();
    }

    pub fn write_stdin(&mut self) {
        let Some(fd) = &self.io.stdin else {
            self.stdin_buf.clear();
            return;
        };
        match nix::unistd::write(fd, &self.stdin_buf) {
            Ok(n) => {
                self.stdin_buf.drain(..n);
            }
            Err(Errno::EAGAIN | Errno::EINTR) => {}
            // The process closed its stdin: what is left has no reader.
            Err(_) => {
                self.stdin_buf.clear();
                self.io.stdin = None;
            }
        }
        if self.stdin_closing && self.stdin_buf.is_empty() && !self.tty {
            self.io.stdin = None;
        }
    }
}
