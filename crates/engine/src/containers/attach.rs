//! Attaching to a container's stdio, and resizing its terminal, through its
//! shim. A client may attach before the container starts (`docker run`
//! does): it waits here, and the start connects it to the new shim before
//! the container runs, so no output is missed.

use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::sync::mpsc;

use berth_shim::protocol::{self, Request, Response};

use super::model::Status;
use super::{internal, ContainerService};
use crate::error::{EngineError, ErrorKind, Result};

/// Which streams a client attaches to.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct AttachOptions {
    pub stdin: bool,
    pub stdout: bool,
    pub stderr: bool,
}

/// Clients waiting for containers to start, by container ID.
pub(super) type WaitingClients = std::collections::HashMap<String, Vec<Waiting>>;

/// A client waiting for the container to start.
pub(super) struct Waiting {
    opts: AttachOptions,
    tx: mpsc::Sender<UnixStream>,
}

/// A client's attachment: a connection to the shim now (the container
/// runs) or when the container next starts.
#[derive(Debug)]
pub struct Attachment {
    source: Source,
}

#[derive(Debug)]
enum Source {
    Ready(UnixStream),
    Pending(mpsc::Receiver<UnixStream>),
}

impl Attachment {
    /// The shim connection, once the container runs: the container's output
    /// comes out of it (frames, or raw with a TTY) and stdin goes in. None
    /// when the container was removed first.
    pub fn connect(self) -> Option<UnixStream> {
        match self.source {
            Source::Ready(s) => Some(s),
            Source::Pending(rx) => rx.recv().ok(),
        }
    }
}

impl ContainerService {
    /// Attaches to a container's stdio (see [`Attachment`]).
    pub fn attach(&self, name: &str, opts: AttachOptions) -> Result<Attachment> {
        let rec = self.find(name)?;
        let opts = AttachOptions {
            // Stdin reaches a container only if it keeps stdin open.
            stdin: opts.stdin && rec.request.open_stdin,
            ..opts
        };
        self.emit("attach", &rec, &[]);
        // Registered under the lock a start takes, so a start cannot slip
        // between the state check and the registration.
        let mut waiting = self.lock_attaching();
        if self.find(&rec.id)?.state.status == Status::Running {
            if let Ok(stream) = self.shim_attach(&rec.id, opts) {
                return Ok(Attachment {
                    source: Source::Ready(stream),
                });
            }
            // It exited meanwhile: wait for its next start.
        }
        let (tx, rx) = mpsc::channel();
        waiting
            .entry(rec.id)
            .or_default()
            .push(Waiting { opts, tx });
        Ok(Attachment {
            source: Source::Pending(rx),
        })
    }

    /// The waiting clients; a start holds this from connecting them until
    /// the record says running.
    pub(super) fn lock_attaching(&self) -> std::sync::MutexGuard<'_, WaitingClients> {
        self.attaching
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Between the shim's create and start: hands every client waiting for
    /// `id` its connection.
    pub(super) fn connect_waiting(&self, waiting: &mut WaitingClients, id: &str) {
        for w in waiting.remove(id).unwrap_or_default() {
            match self.shim_attach(id, w.opts) {
                Ok(stream) => {
                    // A client that went away drops the stream: the shim
                    // sees its end.
                    let _ = w.tx.send(stream);
                }
                Err(e) => tracing::warn!(id, error = %e.message, "attaching a waiting client"),
            }
        }
    }

    /// Ends the wait of clients attached to a container being removed.
    pub(super) fn drop_waiting(&self, id: &str) {
        self.lock_attaching().remove(id);
    }

    /// Opens an attached connection to the shim.
    fn shim_attach(&self, id: &str, opts: AttachOptions) -> Result<UnixStream> {
        let mut s = protocol::connect(&self.shim_dir(id))
            .map_err(|e| internal("reaching the container's shim", e))?;
        let request = Request::Attach {
            stdin: opts.stdin,
            stdout: opts.stdout,
            stderr: opts.stderr,
        };
        let mut line = serde_json::to_vec(&request).map_err(|e| internal("encoding", e))?;
        line.push(b'\n');
        s.write_all(&line)
            .map_err(|e| internal("attaching to the shim", e))?;
        match serde_json::from_slice(&read_answer(&mut s)?) {
            Ok(Response::Ok) => Ok(s),
            Ok(Response::Error { message }) => Err(EngineError::new(ErrorKind::Conflict, message)),
            other => Err(internal("the shim's answer", format!("{other:?}"))),
        }
    }

    /// Sets the terminal size of a running container with a TTY.
    pub fn resize(&self, name: &str, height: u16, width: u16) -> Result<()> {
        let rec = self.find(name)?;
        if rec.state.status != Status::Running {
            return Err(EngineError::new(
                ErrorKind::Conflict,
                format!("Container {} is not running", rec.id),
            ));
        }
        match self.ask_shim(
            &rec.id,
            &Request::Resize {
                height,
                width,
                exec: None,
            },
        )? {
            Response::Error { message } => Err(EngineError::new(ErrorKind::Conflict, message)),
            _ => {
                let size = [("height", height.to_string()), ("width", width.to_string())];
                self.emit("resize", &rec, &size);
                Ok(())
            }
        }
    }
}

/// The shim's answer line, read byte by byte: what follows it on the
/// connection is a process's output.
pub(super) fn read_answer(s: &mut UnixStream) -> Result<Vec<u8>> {
    let mut answer = Vec::new();
    let mut byte = [0u8];
    while byte[0] != b'\n' {
        s.read_exact(&mut byte)
            .map_err(|e| internal("hearing the shim", e))?;
        answer.push(byte[0]);
    }
    Ok(answer)
}
