//! `docker pause` and `unpause`: the container's processes frozen and
//! thawed through the freezer cgroup, by its shim (the runtime library is
//! only ever called from the shim).

use berth_shim::protocol::{Request, Response};

use super::model::Status;
use super::{records, ContainerService};
use crate::error::{EngineError, ErrorKind, Result};

impl ContainerService {
    /// `POST /containers/{id}/pause`.
    pub fn pause(&self, name: &str) -> Result<()> {
        self.set_paused(name, true)
    }

    /// `POST /containers/{id}/unpause`.
    pub fn unpause(&self, name: &str) -> Result<()> {
        self.set_paused(name, false)
    }

    fn set_paused(&self, name: &str, paused: bool) -> Result<()> {
        let rec = self.find(name)?;
        let conflict = |what: &str| {
            Err(EngineError::new(
                ErrorKind::Conflict,
                format!("Container {} {what}", rec.id),
            ))
        };
        match (rec.state.status, rec.state.paused, paused) {
            (Status::Running, true, true) => return conflict("is already paused"),
            (Status::Running, false, false) => return conflict("is not paused"),
            (Status::Running, _, _) => {}
            (_, _, true) => return conflict("is not running"),
            (_, _, false) => return conflict("is not paused"),
        }
        let request = if paused {
            Request::Pause
        } else {
            Request::Resume
        };
        if let Response::Error { message } = self.ask_shim(&rec.id, &request)? {
            return Err(EngineError::new(ErrorKind::Internal, message));
        }
        self.record_paused(&rec.id, paused)?;
        self.emit(if paused { "pause" } else { "unpause" }, &rec, &[]);
        Ok(())
    }

    /// Records the freezer's state.
    pub(super) fn record_paused(&self, id: &str, paused: bool) -> Result<()> {
        {
            let conn = self.conn();
            let mut rec = records::find(&conn, id)?;
            rec.state.paused = paused;
            records::update(&conn, &rec)?;
        }
        self.notify();
        Ok(())
    }

    /// A signal to a paused container is delivered when it thaws: a
    /// SIGKILL must thaw it (as dockerd does), or nothing would die.
    pub(super) fn thaw_for_kill(&self, id: &str) {
        if self.ask_shim(id, &Request::Resume).is_ok() {
            let _ = self.record_paused(id, false);
        }
    }
}
