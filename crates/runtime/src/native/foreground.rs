//! The foreground `run`: berth stays the container's parent, relays
//! signals (and a terminal, when the process wants one and no console socket
//! was given), reaps it and deletes the container, like `runc run`.

use libcontainer::container::Container;

use super::{Libcontainer, Prepared};
use crate::console::ConsoleSocket;
use crate::error::{Result, RuntimeError};
use crate::lifecycle::CreateOptions;
use crate::reap;

impl Libcontainer {
    /// Foreground run: relays signals (and the terminal, when the process
    /// wants one and no console socket was given) until the process exits.
    pub(super) fn run_foreground(
        &self,
        id: &str,
        prepared: &Prepared,
        opts: &CreateOptions,
    ) -> Result<i32> {
        let console = match (&opts.console_socket, prepared.terminal) {
            (None, true) => Some(ConsoleSocket::bind(&self.root, id)?),
            _ => None,
        };
        let socket = console
            .as_ref()
            .map(ConsoleSocket::path)
            .or(opts.console_socket.as_deref());
        // libcontainer 0.7 reads `detach` only to check the terminal set-up
        // (runc's rule: a console socket only for a detached terminal); the
        // init is this process's child either way. Our own socket counts as
        // detached for that check.
        let mut container = self.build(id, prepared, opts, console.is_some(), socket)?;
        let result = self.supervise(&mut container, console.as_ref());
        if let Err(e) = container.delete(true) {
            // The workload's status matters more than a failed cleanup; runc
            // and crun log it too.
            tracing::error!(id, error = %e, "delete after run");
        }
        result
    }

    fn supervise(&self, container: &mut Container, console: Option<&ConsoleSocket>) -> Result<i32> {
        let id = container.id().to_owned();
        let pid = container
            .pid()
            .ok_or_else(|| RuntimeError::Unsupported(format!("container {id} has no init pid")))?;
        // The pty master was sent while the container was created.
        let master = console.map(ConsoleSocket::receive_master).transpose()?;
        // Block the signals before the init can run, so none is lost between
        // start and the wait loop; the init was forked with the old mask.
        let forwarder = reap::Forwarder::block()?;
        container
            .start()
            .map_err(|e| RuntimeError::container("start", &id, e))?;
        match master {
            Some(master) => crate::console::relay(master, pid, &forwarder),
            None => forwarder.wait(pid),
        }
    }
}
