//! One connection to the shim's control socket: JSON requests until it
//! attaches, then a raw stream (output out, stdin in).

use std::io::{self, Read, Write};
use std::os::unix::net::UnixStream;
use std::time::Duration;

use crate::logfile::Stream;
use crate::protocol::{Response, Streams};

/// Output buffered for one attached client beyond which the shim stops
/// reading the container's output until the client catches up (the
/// container blocks, as under Docker, rather than output being lost).
pub const MAX_BACKLOG: usize = 1 << 20;

/// How long a client gets to take the last output once the container has
/// exited, before the shim gives up on it.
const FINAL_WRITE_TIMEOUT: Duration = Duration::from_secs(10);

#[derive(Debug)]
pub struct Client {
    pub stream: UnixStream,
    /// Request bytes not yet parsed (before attaching).
    pub inbuf: Vec<u8>,
    /// The streams it attached to…
    pub attach: Option<Streams>,
    /// …of this exec (else of the container's init).
    pub exec: Option<String>,
    /// Waits for the exit (a `wait` request).
    pub waiting: bool,
    /// Waits for this exec's exit (an `exec_wait` request).
    pub waiting_exec: Option<String>,
    /// Bytes not yet written to the client.
    pub out: Vec<u8>,
    /// The client will send nothing more.
    pub read_closed: bool,
    pub closed: bool,
    /// Its stream ends once `out` is written, or at this deadline.
    pub closing: Option<std::time::Instant>,
}

/// What one read from a client gave.
pub enum Input {
    Nothing,
    Bytes(Vec<u8>),
    Eof,
}

impl Client {
    pub fn new(stream: UnixStream) -> Self {
        Self {
            stream,
            inbuf: Vec::new(),
            attach: None,
            exec: None,
            waiting: false,
            waiting_exec: None,
            out: Vec::new(),
            read_closed: false,
            closed: false,
            closing: None,
        }
    }

    /// Ends the stream once what is queued is written, without blocking
    /// (the container runs on: its shim must not wait on one client).
    pub fn finish_later(&mut self) {
        self.closing = Some(std::time::Instant::now() + FINAL_WRITE_TIMEOUT);
        self.flush();
    }

    /// One non-blocking read.
    pub fn read(&mut self) -> Input {
        let mut chunk = [0u8; 16 << 10];
        match self.stream.read(&mut chunk) {
            Ok(0) => Input::Eof,
            Ok(n) => Input::Bytes(chunk[..n].to_vec()),
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => Input::Nothing,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => Input::Nothing,
            Err(_) => Input::Eof,
        }
    }

    /// Queues a JSON answer line.
    pub fn reply(&mut self, r: &Response) {
        if let Ok(mut line) = serde_json::to_vec(r) {
            line.push(b'\n');
            self.out.extend_from_slice(&line);
        }
        self.flush();
    }

    /// Queues output of `stream` if this client is attached to it: a
    /// multiplexed frame (8-byte header: stream, 0, 0, 0, big-endian
    /// length), or the bytes as they are with a TTY.
    pub fn deliver(&mut self, stream: Stream, data: &[u8], tty: bool) {
        let Some(a) = self.attach else { return };
        let wanted = match stream {
            Stream::Stdout => a.stdout,
            Stream::Stderr => a.stderr,
        };
        if !wanted || self.closed {
            return;
        }
        if !tty {
            let kind = match stream {
                Stream::Stdout => 1u8,
                Stream::Stderr => 2u8,
            };
            let len = u32::try_from(data.len()).unwrap_or(u32::MAX);
            self.out.extend_from_slice(&[kind, 0, 0, 0]);
            self.out.extend_from_slice(&len.to_be_bytes());
        }
        self.out.extend_from_slice(data);
        self.flush();
    }

    /// Writes what it can without blocking; a closing client whose output
    /// is all written, or whose deadline passed, is closed.
    pub fn flush(&mut self) {
        while !self.out.is_empty() && !self.closed {
            match self.stream.write(&self.out) {
                Ok(0) => self.closed = true,
                Ok(n) => {
                    self.out.drain(..n);
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(_) => self.closed = true,
            }
        }
        if let Some(deadline) = self.closing {
            if self.out.is_empty() || std::time::Instant::now() >= deadline {
                let _ = self.stream.shutdown(std::net::Shutdown::Both);
                self.closed = true;
            }
        }
    }

    /// At exit: the rest of the output (bounded in time), then the end of
    /// the stream.
    pub fn finish(&mut self) {
        if self.closed {
            return;
        }
        let blocking = self.stream.set_nonblocking(false).is_ok()
            && self
                .stream
                .set_write_timeout(Some(FINAL_WRITE_TIMEOUT))
                .is_ok();
        if blocking {
            let _ = self.stream.write_all(&self.out);
        } else {
            self.flush();
        }
        self.out.clear();
        let _ = self.stream.shutdown(std::net::Shutdown::Both);
        self.closed = true;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn output_is_framed_without_a_tty_and_raw_with_one() {
        let (a, mut b) = UnixStream::pair().unwrap();
        a.set_nonblocking(true).unwrap();
        let mut c = Client::new(a);
        c.attach = Some(Streams {
            stdin: false,
            stdout: true,
            stderr: false,
        });
        c.deliver(Stream::Stdout, b"hi\n", false);
        c.deliver(Stream::Stderr, b"not asked for", false);
        c.deliver(Stream::Stdout, b"raw", true);
        c.finish();
        let mut got = Vec::new();
        b.read_to_end(&mut got).unwrap();
        assert_eq!(got, b"\x01\x00\x00\x00\x00\x00\x00\x03hi\nraw");
    }
}
