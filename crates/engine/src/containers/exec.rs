//! `docker exec`: further processes in a running container. The daemon
//! keeps each exec's configuration and outcome in memory (as dockerd
//! does: they do not outlive it); the container's shim starts the process
//! through the runtime library and relays its stdio.

use std::collections::HashMap;
use std::io::Write;
use std::os::unix::net::UnixStream;
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::Duration;

use berth_shim::protocol::{self, ExecSpec, Request, Response, Streams};
use serde::Deserialize;
use serde_json::{json, Value};

use super::model::{Record, Status};
use super::{internal, new_id, ContainerService};
use crate::error::{EngineError, ErrorKind, Result};

/// `POST /containers/{id}/exec` body.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct ExecConfig {
    pub attach_stdin: bool,
    pub attach_stdout: bool,
    pub attach_stderr: bool,
    pub tty: bool,
    pub env: Option<Vec<String>>,
    pub cmd: Option<Vec<String>>,
    pub privileged: bool,
    pub user: String,
    pub working_dir: String,
    pub detach_keys: String,
    /// [height, width]
    pub console_size: Option<[u16; 2]>,
}

/// `POST /exec/{id}/start` body.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct ExecStart {
    pub detach: bool,
    pub tty: bool,
    pub console_size: Option<[u16; 2]>,
}

/// How long an attached exec's end waits for its exit code to be known
/// before the client's stream closes (the shim records it first).
const EXIT_WAIT: Duration = Duration::from_secs(10);

/// What the daemon knows of one exec.
#[derive(Debug, Clone)]
struct ExecRecord {
    container: String,
    config: ExecConfig,
    state: ExecState,
    pid: i32,
    exit_code: Option<i32>,
    /// A size asked for before the start (`docker exec -t` resizes early).
    size: Option<(u16, u16)>,
    /// When it ended: the oldest ended execs of a container are forgotten.
    ended_at: Option<std::time::Instant>,
}

/// How many ended execs a container keeps for inspection (a health check
/// that execs every few seconds must not grow the daemon forever).
const KEPT_ENDED: usize = 128;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ExecState {
    Created,
    Running,
    Ended,
}

/// The execs of every container, and a signal for changes to them.
#[derive(Debug, Default)]
pub(super) struct Execs {
    records: Mutex<HashMap<String, ExecRecord>>,
    changed: Condvar,
}

impl Execs {
    fn lock(&self) -> MutexGuard<'_, HashMap<String, ExecRecord>> {
        self.records
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

fn no_such_exec(id: &str) -> EngineError {
    EngineError::new(ErrorKind::NotFound, format!("No such exec instance: {id}"))
}

fn not_running(id: &str) -> EngineError {
    EngineError::new(
        ErrorKind::Conflict,
        format!("Container {id} is not running"),
    )
}

impl ContainerService {
    /// `POST /containers/{id}/exec`: records what to run; nothing runs yet.
    pub fn exec_create(&self, name: &str, config: ExecConfig) -> Result<String> {
        let rec = self.find(name)?;
        check_running(&rec)?;
        if config.cmd.as_ref().is_none_or(Vec::is_empty) {
            return Err(EngineError::invalid("No exec command specified"));
        }
        let id = new_id();
        let command = config.cmd.clone().unwrap_or_default().join(" ");
        self.execs.lock().insert(
            id.clone(),
            ExecRecord {
                container: rec.id.clone(),
                size: config.console_size.map(|[h, w]| (h, w)),
                config,
                state: ExecState::Created,
                pid: 0,
                exit_code: None,
                ended_at: None,
            },
        );
        self.emit(
            &format!("exec_create: {command}"),
            &rec,
            &[("execID", id.clone())],
        );
        Ok(id)
    }

    /// `GET /exec/{id}/json`.
    pub fn exec_inspect(&self, id: &str) -> Result<Value> {
        let e = self
            .execs
            .lock()
            .get(id)
            .cloned()
            .ok_or_else(|| no_such_exec(id))?;
        let cmd = e.config.cmd.clone().unwrap_or_default();
        Ok(json!({
            "ID": id,
            "Running": e.state == ExecState::Running,
            "ExitCode": e.exit_code,
            "ProcessConfig": {
                "tty": e.config.tty,
                "entrypoint": cmd.first(),
                "arguments": cmd.get(1..).unwrap_or_default(),
                "privileged": e.config.privileged,
                "user": e.config.user,
            },
            "OpenStdin": e.config.attach_stdin,
            "OpenStderr": e.config.attach_stderr,
            "OpenStdout": e.config.attach_stdout,
            "CanRemove": false,
            "ContainerID": e.container,
            "DetachKeys": e.config.detach_keys,
            "Pid": e.pid,
        }))
    }

    /// The IDs of a container's execs, for its inspect.
    pub(super) fn exec_ids(&self, container: &str) -> Vec<String> {
        let execs = self.execs.lock();
        let mut ids: Vec<String> = execs
            .iter()
            .filter(|(_, e)| e.container == container && e.state != ExecState::Ended)
            .map(|(id, _)| id.clone())
            .collect();
        ids.sort();
        ids
    }

    /// Forgets the execs of a removed container.
    pub(super) fn forget_execs(&self, container: &str) {
        self.execs.lock().retain(|_, e| e.container != container);
    }

    /// `POST /exec/{id}/start`: runs the process. Attached, the answer is
    /// the shim connection carrying its stdio (frames, raw with a TTY);
    /// detached, None once it runs.
    pub fn exec_start(self: &Arc<Self>, id: &str, start: ExecStart) -> Result<Option<UnixStream>> {
        let ExecRecord {
            container,
            config,
            size,
            ..
        } = self.claim(id)?;
        let size = start.console_size.map(|[h, w]| (h, w)).or(size);
        let started = self.spawn_exec(id, &container, &config, start, size);
        let (stream, pid) = match started {
            Ok(s) => s,
            Err(e) => {
                self.exec_ended(id, 126);
                return Err(e);
            }
        };
        // It runs: its end is watched whatever happens next.
        let svc = self.clone();
        let (exec, watched) = (id.to_owned(), container.clone());
        std::thread::spawn(move || svc.watch_exec(&exec, &watched));
        // A resize that came while the shim was starting it waited here.
        let late = self.update_exec(id, |e| {
            e.pid = pid;
            e.size.take().filter(|s| Some(*s) != size)
        });
        if let Some((Some((h, w)), _)) = late {
            let _ = self.exec_resize(id, h, w);
        }
        if let Ok(rec) = self.find(&container) {
            let command = config.cmd.clone().unwrap_or_default().join(" ");
            self.emit(
                &format!("exec_start: {command}"),
                &rec,
                &[("execID", id.to_owned())],
            );
        }
        Ok(if start.detach { None } else { Some(stream) })
    }

    /// Marks a created exec running (an exec runs once), or says why not.
    /// A size asked for before is taken in the same step: one asked for
    /// later waits for the pid (exec_resize), none falls between.
    fn claim(&self, id: &str) -> Result<ExecRecord> {
        let mut execs = self.execs.lock();
        let e = execs.get_mut(id).ok_or_else(|| no_such_exec(id))?;
        match e.state {
            ExecState::Running => Err(EngineError::new(
                ErrorKind::Conflict,
                format!("Error: Exec command {id} is already running"),
            )),
            ExecState::Ended => Err(EngineError::new(
                ErrorKind::Conflict,
                format!("Error: Exec command {id} has already run"),
            )),
            ExecState::Created => {
                e.state = ExecState::Running;
                let claimed = e.clone();
                e.size = None;
                Ok(claimed)
            }
        }
    }

    /// Asks the shim to start the exec; returns the connection (its stdio
    /// when attached) and the process's pid.
    fn spawn_exec(
        &self,
        id: &str,
        container: &str,
        config: &ExecConfig,
        start: ExecStart,
        size: Option<(u16, u16)>,
    ) -> Result<(UnixStream, i32)> {
        let rec = self.find(container)?;
        check_running(&rec)?;
        let mut process = self.exec_process(&rec, config)?;
        if let (true, Some((height, width))) = (config.tty, size) {
            // Sized before it runs: the first thing a shell asks.
            process["consoleSize"] = json!({ "height": height, "width": width });
        }
        let attach = (!start.detach).then_some(Streams {
            stdin: config.attach_stdin,
            stdout: config.attach_stdout,
            stderr: config.attach_stderr,
        });
        let request = Request::Exec {
            spec: ExecSpec {
                id: id.to_owned(),
                process,
                tty: config.tty,
                stdin: config.attach_stdin && !start.detach,
            },
            attach,
        };
        let mut s = protocol::connect(&self.shim_dir(&rec.id)).map_err(|_| not_running(&rec.id))?;
        let mut line = serde_json::to_vec(&request).map_err(|e| internal("encoding", e))?;
        line.push(b'\n');
        s.write_all(&line)
            .map_err(|e| internal("asking the shim", e))?;
        match serde_json::from_slice(&super::attach::read_answer(&mut s)?) {
            Ok(Response::Started { pid }) => Ok((s, pid)),
            Ok(Response::Error { message }) => Err(EngineError::new(
                ErrorKind::Internal,
                format!("OCI runtime exec failed: {message}"),
            )),
            other => Err(internal("the shim's answer", format!("{other:?}"))),
        }
    }

    /// The exec's OCI process: the container's, with the exec's command,
    /// environment on top, working directory, user and terminal.
    fn exec_process(&self, rec: &Record, config: &ExecConfig) -> Result<Value> {
        let bytes = std::fs::read(self.dir(&rec.id).join("config.json"))
            .map_err(|e| internal("reading the container's spec", e))?;
        let spec: Value =
            serde_json::from_slice(&bytes).map_err(|e| internal("the container's spec", e))?;
        let mut p = spec["process"].clone();
        p["args"] = json!(config.cmd.clone().unwrap_or_default());
        let base: Vec<String> = serde_json::from_value(p["env"].clone()).unwrap_or_default();
        let mut env = super::spec::merge_env(&base, config.env.as_deref().unwrap_or_default());
        if config.tty && !env.iter().any(|e| e.starts_with("TERM=")) {
            env.push("TERM=xterm".to_owned());
        }
        p["env"] = json!(env);
        p["terminal"] = json!(config.tty);
        if !config.working_dir.is_empty() {
            p["cwd"] = json!(config.working_dir);
        }
        if !config.user.is_empty() {
            let rootfs = self.dir(&rec.id).join("rootfs");
            p["user"] = super::spec::user_entry(&config.user, &rootfs)?;
        }
        if config.privileged {
            let all = berth_runtime::defaults::own_grantable_capabilities();
            for set in ["bounding", "effective", "permitted"] {
                p["capabilities"][set] = json!(all);
            }
        }
        if let Some(obj) = p.as_object_mut() {
            obj.remove("consoleSize");
        }
        Ok(p)
    }

    /// Waits (on its own thread) for the exec's end and records its code.
    fn watch_exec(&self, id: &str, container: &str) {
        let code = self.ask_exec_exit(id, container).unwrap_or_else(|e| {
            tracing::debug!(id, error = %e.message, "an exec's end was not heard");
            // The shim went with the container: its processes were killed.
            137
        });
        self.exec_ended(id, code);
    }

    fn ask_exec_exit(&self, id: &str, container: &str) -> Result<i32> {
        match self.ask_shim(container, &Request::ExecWait { id: id.to_owned() })? {
            Response::Exited(status) => Ok(status.exit_code),
            other => Err(internal("the shim's answer", format!("{other:?}"))),
        }
    }

    fn exec_ended(&self, id: &str, code: i32) {
        let ended = self.update_exec(id, |e| {
            if e.state == ExecState::Ended {
                return false;
            }
            e.state = ExecState::Ended;
            e.exit_code = Some(code);
            e.ended_at = Some(std::time::Instant::now());
            true
        });
        if let Some((true, container)) = &ended {
            self.forget_oldest_ended(container);
        }
        let Some((true, container)) = ended else {
            return;
        };
        self.execs.changed.notify_all();
        if let Ok(rec) = self.find(&container) {
            self.emit(
                "exec_die",
                &rec,
                &[("execID", id.to_owned()), ("exitCode", code.to_string())],
            );
        }
    }

    /// Keeps the newest [`KEPT_ENDED`] ended execs of a container.
    fn forget_oldest_ended(&self, container: &str) {
        let mut execs = self.execs.lock();
        let mut ended: Vec<(std::time::Instant, String)> = execs
            .iter()
            .filter(|(_, e)| e.container == container)
            .filter_map(|(id, e)| Some((e.ended_at?, id.clone())))
            .collect();
        if ended.len() <= KEPT_ENDED {
            return;
        }
        ended.sort();
        for (_, id) in &ended[..ended.len() - KEPT_ENDED] {
            execs.remove(id);
        }
    }

    /// Applies `f` to the exec's record; its result and the container.
    fn update_exec<T>(
        &self,
        id: &str,
        f: impl FnOnce(&mut ExecRecord) -> T,
    ) -> Option<(T, String)> {
        let mut execs = self.execs.lock();
        let e = execs.get_mut(id)?;
        Some((f(e), e.container.clone()))
    }

    /// Blocks until the exec's exit code is recorded (bounded): an
    /// attached client asks for it as soon as its stream ends.
    pub fn exec_settle(&self, id: &str) {
        let execs = self.execs.lock();
        let _ = self
            .execs
            .changed
            .wait_timeout_while(execs, EXIT_WAIT, |m| {
                m.get(id).is_some_and(|e| e.state != ExecState::Ended)
            });
    }

    /// `POST /exec/{id}/resize`: now if it runs, at its start if not yet.
    pub fn exec_resize(&self, id: &str, height: u16, width: u16) -> Result<()> {
        let (state, container) = {
            let mut execs = self.execs.lock();
            let e = execs.get_mut(id).ok_or_else(|| no_such_exec(id))?;
            // Not started, or started but not running yet (no pid): kept
            // for the start, which applies it.
            let early =
                e.state == ExecState::Created || (e.state == ExecState::Running && e.pid == 0);
            if early {
                e.size = Some((height, width));
                return Ok(());
            }
            (e.state, e.container.clone())
        };
        match state {
            ExecState::Created => Ok(()),
            ExecState::Ended => Err(EngineError::new(
                ErrorKind::Conflict,
                format!("exec {id} is not running"),
            )),
            ExecState::Running => {
                let resize = Request::Resize {
                    height,
                    width,
                    exec: Some(id.to_owned()),
                };
                match self.ask_shim(&container, &resize)? {
                    Response::Error { message } => {
                        Err(EngineError::new(ErrorKind::Conflict, message))
                    }
                    _ => Ok(()),
                }
            }
        }
    }
}

fn check_running(rec: &Record) -> Result<()> {
    match rec.state.status {
        Status::Running if rec.state.paused => Err(EngineError::new(
            ErrorKind::Conflict,
            format!(
                "Container {} is paused, unpause the container before exec",
                rec.id
            ),
        )),
        Status::Running => Ok(()),
        _ => Err(not_running(&rec.id)),
    }
}

/// The exec operations the API serves.
pub trait ExecBackend: Send + Sync {
    fn create(&self, container: &str, config: ExecConfig) -> Result<String>;
    fn start(&self, id: &str, start: ExecStart) -> Result<Option<UnixStream>>;
    fn inspect(&self, id: &str) -> Result<Value>;
    fn resize(&self, id: &str, height: u16, width: u16) -> Result<()>;
    /// Returns once the exec's exit code is known (bounded).
    fn settle(&self, id: &str);
}

impl ExecBackend for Arc<ContainerService> {
    fn create(&self, container: &str, config: ExecConfig) -> Result<String> {
        self.exec_create(container, config)
    }
    fn start(&self, id: &str, start: ExecStart) -> Result<Option<UnixStream>> {
        self.exec_start(id, start)
    }
    fn inspect(&self, id: &str) -> Result<Value> {
        self.exec_inspect(id)
    }
    fn resize(&self, id: &str, height: u16, width: u16) -> Result<()> {
        self.exec_resize(id, height, width)
    }
    fn settle(&self, id: &str) {
        self.exec_settle(id);
    }
}
