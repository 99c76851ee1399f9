//! How containers look in `GET /containers/json` and
//! `GET /containers/{id}/json`.

use berth_api_types::{human_duration, Filters};
use serde_json::{json, Value};

use super::model::{Record, Status};
use super::ContainerService;
use crate::error::{EngineError, Result};

fn unix(rfc3339: &str) -> i64 {
    chrono::DateTime::parse_from_rfc3339(rfc3339).map_or(0, |t| t.timestamp())
}

fn status_text(r: &Record) -> String {
    let now = chrono::Utc::now().timestamp();
    match r.state.status {
        Status::Created => "Created".to_owned(),
        Status::Running if r.state.paused => format!(
            "Up {} (Paused)",
            human_duration(now - unix(&r.state.started_at))
        ),
        Status::Running => format!("Up {}", human_duration(now - unix(&r.state.started_at))),
        Status::Restarting => format!(
            "Restarting ({}) {} ago",
            r.state.exit_code,
            human_duration(now - unix(&r.state.finished_at))
        ),
        Status::Exited => format!(
            "Exited ({}) {} ago",
            r.state.exit_code,
            human_duration(now - unix(&r.state.finished_at))
        ),
    }
}

/// What `GET /containers/json` takes besides filters.
#[derive(Debug, Clone, Copy, Default)]
pub struct ListOptions {
    /// Stopped containers too.
    pub all: bool,
    /// The N most recently created.
    pub limit: Option<usize>,
    /// Report SizeRw and SizeRootFs (walks each upper dir).
    pub size: bool,
}

/// Bytes of the regular files under `dir` (a container's changes).
fn dir_size(dir: &std::path::Path) -> u64 {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return 0;
    };
    entries
        .flatten()
        .map(|e| match e.file_type() {
            Ok(t) if t.is_dir() => dir_size(&e.path()),
            Ok(t) if t.is_file() => e.metadata().map_or(0, |m| m.len()),
            _ => 0,
        })
        .sum()
}

/// The create request's HostConfig, with what berth fixed (the log driver:
/// clients such as docker-py read it to decide how to get output).
fn host_config(h: &super::model::HostConfig) -> Value {
    let mut v = serde_json::to_value(h).unwrap_or_else(|_| json!({}));
    v["LogConfig"] = json!({ "Type": "json-file", "Config": {} });
    v
}

/// Docker's listing of the command: arguments with spaces in single quotes.
fn command_line(r: &Record) -> String {
    std::iter::once(r.path.clone())
        .chain(r.args.iter().map(|a| {
            if a.contains(' ') {
                format!("'{a}'")
            } else {
                a.clone()
            }
        }))
        .collect::<Vec<_>>()
        .join(" ")
}

fn matches(r: &Record, f: &Filters) -> bool {
    let any = |name: &str, pred: &dyn Fn(&str) -> bool| {
        f.get(name).is_empty() || f.get(name).iter().any(|v| pred(v))
    };
    let labels = r.request.labels.clone().unwrap_or_default();
    any("status", &|v| v == r.state.word())
        && any("name", &|v| r.name.contains(v.trim_start_matches('/')))
        && any("id", &|v| r.id.starts_with(v))
        && any("ancestor", &|v| {
            r.image == v
                || r.image_id
                    .trim_start_matches("sha256:")
                    .starts_with(v.trim_start_matches("sha256:"))
        })
        && any("exited", &|v| {
            r.state.status == Status::Exited && v.parse() == Ok(r.state.exit_code)
        })
        && f.get("label").iter().all(|l| match l.split_once('=') {
            Some((k, v)) => labels.get(k).is_some_and(|x| x == v),
            None => labels.contains_key(l.as_str()),
        })
}

impl ContainerService {
    /// `GET /containers/json`.
    pub fn list(&self, opts: &ListOptions, filters: &Filters) -> Result<Vec<Value>> {
        let ListOptions { all, limit, size } = *opts;
        filters
            .only(&["status", "name", "id", "label", "ancestor", "exited"])
            .map_err(EngineError::invalid)?;
        let mut recs: Vec<Record> = self
            .records()?
            .into_iter()
            .filter(|r| all || !filters.get("status").is_empty() || r.state.status.is_up())
            .filter(|r| matches(r, filters))
            .collect();
        recs.sort_by(|a, b| b.created.cmp(&a.created));
        if let Some(n) = limit.filter(|n| *n > 0) {
            recs.truncate(n);
        }
        Ok(recs
            .iter()
            .map(|r| {
                let mut v = json!({
                    "Id": r.id,
                    "Names": [format!("/{}", r.name)],
                    "Image": r.image,
                    "ImageID": r.image_id,
                    "Command": command_line(r),
                    "Created": unix(&r.created),
                    "State": r.state.word(),
                    "Status": status_text(r),
                    "Ports": [],
                    "Labels": r.request.labels.clone().unwrap_or_default(),
                    "HostConfig": { "NetworkMode": if r.request.host_config.network_mode.is_empty() { "default" } else { r.request.host_config.network_mode.as_str() } },
                    "NetworkSettings": { "Networks": {} },
                    "Mounts": super::mounts::describe(&r.request.host_config, &r.volumes, |n| self.volumes.data_path(n)),
                });
                if size {
                    let rw = dir_size(&self.dir(&r.id).join("upper"));
                    let image = r
                        .image_id
                        .parse()
                        .ok()
                        .and_then(|id| self.store.image_size(&id).ok())
                        .unwrap_or(0);
                    v["SizeRw"] = json!(rw);
                    v["SizeRootFs"] = json!(rw + image);
                }
                v
            })
            .collect())
    }

    /// `GET /containers/{id}/json`.
    pub fn inspect(&self, name: &str) -> Result<Value> {
        let r = self.find(name)?;
        let st = &r.state;
        let dir = self.dir(&r.id);
        let req = &r.request;
        Ok(json!({
            "Id": r.id,
            "Created": r.created,
            "Path": r.path,
            "Args": r.args,
            "State": {
                "Status": st.word(),
                "Running": st.status == Status::Running,
                "Paused": st.paused,
                "Restarting": st.status == Status::Restarting,
                "OOMKilled": false,
                "Dead": false,
                "Pid": st.pid,
                "ExitCode": st.exit_code,
                "Error": "",
                "StartedAt": st.started_at,
                "FinishedAt": st.finished_at,
            },
            "Image": r.image_id,
            "ResolvConfPath": "",
            "HostnamePath": "",
            "HostsPath": "",
            "LogPath": self.log_path(&r.id),
            "Name": format!("/{}", r.name),
            "RestartCount": st.restart_count,
            "ExecIDs": Some(self.exec_ids(&r.id)).filter(|ids| !ids.is_empty()),
            "Driver": "overlay2",
            "Platform": "linux",
            "HostConfig": host_config(&req.host_config),
            "GraphDriver": {
                "Name": "overlay2",
                "Data": { "UpperDir": dir.join("upper"), "WorkDir": dir.join("work"), "MergedDir": dir.join("rootfs") },
            },
            "Mounts": super::mounts::describe(&req.host_config, &r.volumes, |n| self.volumes.data_path(n)),
            "Config": {
                "Hostname": if req.hostname.is_empty() { &r.id[..12] } else { req.hostname.as_str() },
                "User": req.user,
                "Tty": req.tty,
                "OpenStdin": req.open_stdin,
                "StdinOnce": req.stdin_once,
                "AttachStdin": req.attach_stdin,
                "AttachStdout": req.attach_stdout,
                "AttachStderr": req.attach_stderr,
                "Env": req.env,
                "Cmd": req.cmd,
                "Entrypoint": req.entrypoint,
                "Image": r.image,
                "WorkingDir": req.working_dir,
                "Labels": req.labels.clone().unwrap_or_default(),
                "StopSignal": req.stop_signal,
            },
            "NetworkSettings": { "Networks": {} },
        }))
    }
}
