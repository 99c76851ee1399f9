//! Changing containers after their creation: `POST /containers/{id}/update`
//! (limits, applied at once to a running container through its shim, and
//! the restart policy), `rename` and `POST /containers/prune`.

use serde::Deserialize;
use serde_json::Value;

use super::model::{Record, RestartPolicy, Status};
use super::{records, restart, spec, valid_name, ContainerService};
use crate::error::{EngineError, ErrorKind, Result};

/// `POST /containers/{id}/update` body: what is given changes.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct UpdateRequest {
    pub memory: Option<i64>,
    pub memory_swap: Option<i64>,
    pub nano_cpus: Option<i64>,
    pub cpu_shares: Option<i64>,
    pub cpu_quota: Option<i64>,
    pub cpu_period: Option<i64>,
    pub cpuset_cpus: Option<String>,
    pub pids_limit: Option<i64>,
    pub restart_policy: Option<RestartPolicy>,
}

/// What `POST /containers/prune` removed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Pruned {
    pub deleted: Vec<String>,
    pub space_reclaimed: u64,
}

impl ContainerService {
    /// `POST /containers/{id}/update`: returns Docker's warnings.
    pub fn update(&self, name: &str, u: &UpdateRequest) -> Result<Vec<String>> {
        let rec = self.find(name)?;
        let mut next = rec.clone();
        let h = &mut next.request.host_config;
        // Zero means "leave it", as in Docker's update.
        let set = |field: &mut i64, v: Option<i64>| {
            if let Some(v) = v.filter(|v| *v != 0) {
                *field = v;
            }
        };
        set(&mut h.memory, u.memory);
        set(&mut h.memory_swap, u.memory_swap);
        set(&mut h.nano_cpus, u.nano_cpus);
        set(&mut h.cpu_shares, u.cpu_shares);
        set(&mut h.cpu_quota, u.cpu_quota);
        set(&mut h.cpu_period, u.cpu_period);
        if let Some(c) = u.cpuset_cpus.as_ref().filter(|c| !c.is_empty()) {
            h.cpuset_cpus = c.clone();
        }
        if let Some(p) = u.pids_limit.filter(|p| *p != 0) {
            h.pids_limit = Some(p);
        }
        if u.memory.is_some_and(|m| m > 0)
            && h.memory_swap > 0
            && h.memory > h.memory_swap
            && u.memory_swap.is_none()
        {
            return Err(EngineError::invalid(
                "Memory limit should be smaller than already set memoryswap limit, update the memoryswap at the same time",
            ));
        }
        if let Some(p) = &u.restart_policy {
            h.restart_policy = p.clone();
        }
        restart::check(&next.request.host_config)?;
        let resources = spec::resources(&next)?;
        if next.state.status == Status::Running {
            self.apply_resources(&rec, resources)?;
        }
        {
            let conn = self.conn();
            // The state may have moved while the limits were applied.
            let mut now = records::find(&conn, &rec.id)?;
            now.request.host_config = next.request.host_config;
            records::update(&conn, &now)?;
        }
        self.emit("update", &rec, &[]);
        Ok(Vec::new())
    }

    /// The new limits, written to the cgroups by the shim.
    fn apply_resources(&self, rec: &Record, mut resources: Value) -> Result<()> {
        // The device rules were set at creation; an update leaves them.
        if let Some(obj) = resources.as_object_mut() {
            obj.remove("devices");
        }
        let request = berth_shim::protocol::Request::Update { resources };
        match self.ask_shim(&rec.id, &request)? {
            berth_shim::protocol::Response::Error { message } => Err(EngineError::new(
                ErrorKind::Internal,
                format!("Cannot update container {}: {message}", rec.id),
            )),
            _ => Ok(()),
        }
    }

    /// `POST /containers/{id}/rename?name=`.
    pub fn rename(&self, name: &str, new_name: &str) -> Result<()> {
        if new_name.is_empty() {
            return Err(EngineError::invalid(
                "Neither old nor new names may be empty",
            ));
        }
        let new_name = valid_name(new_name)?;
        // Read and written under one hold of the records: a state change
        // meanwhile is not undone.
        let (rec, old) = {
            let conn = self.conn();
            let mut rec = records::find(&conn, name)?;
            if new_name == rec.name {
                return Err(EngineError::invalid(
                    "Renaming a container with the same name as its current name",
                ));
            }
            let old = std::mem::replace(&mut rec.name, new_name);
            records::rename(&conn, &rec)?;
            (rec, old)
        };
        self.notify();
        self.emit("rename", &rec, &[("oldName", format!("/{old}"))]);
        Ok(())
    }

    /// `POST /containers/prune`: removes stopped containers matching the
    /// filters (`until`, `label`, `label!`).
    pub fn prune(&self, filters: &berth_api_types::Filters) -> Result<Pruned> {
        filters
            .only(&["until", "label", "label!"])
            .map_err(EngineError::invalid)?;
        let now = chrono::Utc::now().timestamp_nanos_opt().unwrap_or(i64::MAX);
        let until = match filters.get("until").first() {
            Some(u) => Some(berth_api_types::parse_time(u, now).map_err(EngineError::invalid)?),
            None => None,
        };
        let mut out = Pruned::default();
        for rec in self.records()? {
            if !matches!(rec.state.status, Status::Exited | Status::Created) {
                continue;
            }
            let labels = rec.request.labels.clone().unwrap_or_default();
            let has = |l: &String| match l.split_once('=') {
                Some((k, v)) => labels.get(k).is_some_and(|x| x == v),
                None => labels.contains_key(l),
            };
            let created = chrono::DateTime::parse_from_rfc3339(&rec.created)
                .ok()
                .and_then(|t| t.timestamp_nanos_opt())
                .unwrap_or(0);
            let keep = until.is_some_and(|u| created >= u)
                || !filters.get("label").iter().all(has)
                || filters.get("label!").iter().any(has);
            if keep {
                continue;
            }
            let size = crate::volumes::dir_size(&self.upper_dir(&rec.id));
            if self.remove(&rec.id, false, false).is_ok() {
                out.space_reclaimed += size;
                out.deleted.push(rec.id);
            }
        }
        Ok(out)
    }
}
