//! The container service: create, start (through a shim), stop, kill,
//! wait, remove, with Docker's rules. One template per operation: resolve
//! the name, check the state (conflict error), act, record, notify waiters.

mod attach;
mod cgprime;
mod cgstats;
pub mod commit;
mod devices;
pub mod exec;
pub mod files;
mod logs;
pub mod model;
mod mounts;
mod pause;
mod records;
mod restart;
mod spec;
pub mod stats;
mod top;
pub mod update;
mod view;
mod volumes;

use std::io::{BufRead, BufReader, Write};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use berth_store::Store;
use rusqlite::Connection;

pub use attach::{AttachOptions, Attachment};
pub use logs::LogOptions;
use model::{CreateRequest, Record, State, Status};
pub use view::ListOptions;

use crate::error::{EngineError, ErrorKind, Result};

/// The container service.
pub struct ContainerService {
    store: Arc<Store>,
    root: PathBuf,
    exec_root: PathBuf,
    shim_bin: PathBuf,
    db: Mutex<Connection>,
    /// Bumped on every state change; waiters sleep on it.
    changed: (Mutex<u64>, Condvar),
    /// (id, exit code) of the latest removals, oldest first.
    removed: Mutex<std::collections::VecDeque<(String, i32)>>,
    /// Attached clients waiting for their container to start.
    attaching: Mutex<attach::WaitingClients>,
    events: Arc<crate::events::Events>,
    /// The last restart delay of each container its policy restarts.
    restart_delays: Mutex<std::collections::HashMap<String, Duration>>,
    /// Containers being restarted by request: their exit does not remove
    /// them, even with AutoRemove (as dockerd does).
    restarting: Mutex<std::collections::HashSet<String>>,
    execs: exec::Execs,
    file_locks: files::FileLocks,
    volumes: Arc<crate::volumes::VolumeService>,
    /// Starts the cgroup lock's grace period ahead of the runtime.
    primer: Option<cgprime::Primer>,
}

/// A shim whose container is created, not yet started.
struct Created {
    child: Child,
    pid: i32,
    /// The shim's end of the pipe is watched until the start.
    handshake: Option<BufReader<std::process::ChildStdout>>,
}

/// What `POST /containers/{id}/wait` waits for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum WaitCondition {
    NotRunning,
    NextExit,
    Removed,
}

/// A wait fixed at the moment it was asked.
#[derive(Debug, Clone)]
pub struct WaitTicket {
    id: String,
    condition: WaitCondition,
    was_running: bool,
    started_at: String,
    last_code: i32,
}

/// What a waiter waits for, given the record (None: removed).
type Condition<'a> = Box<dyn Fn(Option<&Record>) -> bool + 'a>;

/// How many removals' exit codes are kept for late waiters.
const REMEMBERED_REMOVALS: usize = 256;

impl std::fmt::Debug for ContainerService {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ContainerService")
            .field("root", &self.root)
            .finish_non_exhaustive()
    }
}

fn now() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Nanos, true)
}

fn internal(context: &str, e: impl std::fmt::Display) -> EngineError {
    EngineError::new(ErrorKind::Internal, format!("{context}: {e}"))
}

impl ContainerService {
    /// Opens the records and reattaches to containers that kept running
    /// (or records the exits that happened) while no daemon was up.
    pub fn new(
        store: Arc<Store>,
        data_root: &Path,
        exec_root: &Path,
        shim_bin: PathBuf,
        events: Arc<crate::events::Events>,
        volumes: Arc<crate::volumes::VolumeService>,
    ) -> Result<Arc<Self>> {
        let root = data_root.join("containers");
        std::fs::create_dir_all(&root)
            .map_err(|e| internal("creating the containers directory", e))?;
        let svc = Arc::new(Self {
            store,
            root,
            exec_root: exec_root.to_owned(),
            shim_bin,
            db: Mutex::new(records::open(&data_root.join("berth.db"))?),
            changed: (Mutex::new(0), Condvar::new()),
            removed: Mutex::new(std::collections::VecDeque::new()),
            attaching: Mutex::new(attach::WaitingClients::new()),
            restart_delays: Mutex::new(std::collections::HashMap::new()),
            restarting: Mutex::new(std::collections::HashSet::new()),
            execs: exec::Execs::default(),
            file_locks: files::FileLocks::default(),
            volumes,
            events,
            primer: cgprime::Primer::start(),
        });
        svc.clean_orphans()?;
        // Before reconciling: what exited while the daemon was down gets
        // its policy applied there, not twice.
        svc.restart_at_boot()?;
        svc.reconcile()?;
        Ok(svc)
    }

    /// See [`cgprime`]: the runtime's move into the container's cgroups
    /// comes a few ms from now.
    fn prime_cgroups(&self) {
        if let Some(p) = &self.primer {
            p.prime();
        }
    }

    fn conn(&self) -> MutexGuard<'_, Connection> {
        self.db
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn dir(&self, id: &str) -> PathBuf {
        self.root.join(id)
    }

    fn shim_dir(&self, id: &str) -> PathBuf {
        self.exec_root.join("shims").join(id)
    }

    /// A container's upper dir: its changes to the image's files.
    pub fn upper_dir(&self, id: &str) -> PathBuf {
        self.dir(id).join("upper")
    }

    /// The json-file log of a container.
    pub fn log_path(&self, id: &str) -> PathBuf {
        self.dir(id).join(format!("{id}-json.log"))
    }

    fn notify(&self) {
        let (lock, cv) = &self.changed;
        *lock
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) += 1;
        cv.notify_all();
    }

    /// A container event: the image, the name and the labels, and `extra`.
    fn emit(&self, action: &str, rec: &Record, extra: &[(&str, String)]) {
        let mut attributes: std::collections::BTreeMap<String, String> = rec
            .request
            .labels
            .clone()
            .unwrap_or_default()
            .into_iter()
            .collect();
        attributes.insert("image".to_owned(), rec.image.clone());
        attributes.insert("name".to_owned(), rec.name.clone());
        for (k, v) in extra {
            attributes.insert((*k).to_owned(), v.clone());
        }
        self.events
            .publish("container", action, &rec.id, attributes);
    }

    /// The record a name designates.
    pub fn find(&self, name: &str) -> Result<Record> {
        records::find(&self.conn(), name)
    }

    /// Creates a container (nothing runs yet); returns its ID.
    pub fn create(&self, name: Option<&str>, req: CreateRequest) -> Result<String> {
        // A start usually follows within milliseconds (`docker run`).
        self.prime_cgroups();
        let image_id = self
            .store
            .resolve(&req.image)
            .map_err(|e| match e.is_not_found() {
                true => {
                    EngineError::new(ErrorKind::NotFound, format!("No such image: {}", req.image))
                }
                false => e.into(),
            })?;
        let config = self.store.config(&image_id)?.config.unwrap_or_default();
        let id = new_id();
        let name = match name.filter(|n| !n.is_empty()) {
            Some(n) => valid_name(n)?,
            None => self.free_name(&id)?,
        };
        let (path, args) = command(&req, &config)?;
        let mut rec = Record {
            id: id.clone(),
            name,
            image: req.image.clone(),
            image_id: image_id.to_string(),
            path,
            args,
            created: now(),
            request: req,
            state: State::default(),
            volumes: Vec::new(),
        };
        spec::check(&rec)?;
        restart::check(&rec.request.host_config)?;
        let dir = self.dir(&id);
        for sub in ["upper", "work", "rootfs"] {
            std::fs::create_dir_all(dir.join(sub))
                .map_err(|e| internal("creating the container's directories", e))?;
        }
        let recorded = self
            .claim_volumes(&rec, &config)
            .and_then(|v| {
                rec.volumes = v;
                self.store.hold(&id, &image_id).map_err(EngineError::from)
            })
            .and_then(|()| records::insert(&self.conn(), &rec));
        if let Err(e) = recorded {
            self.release_volumes(&id, &rec.volumes, true);
            let _ = self.store.release(&id);
            let _ = std::fs::remove_dir_all(&dir);
            return Err(e);
        }
        self.notify();
        self.emit("create", &rec, &[]);
        Ok(id)
    }

    /// Starts a created or exited container through a new shim (the
    /// user's start: the restart policy applies again).
    pub fn start(self: &Arc<Self>, name: &str) -> Result<()> {
        self.start_as(name, true)
    }

    /// Starts a container; `manual`: asked by the user, not by a policy.
    fn start_as(self: &Arc<Self>, name: &str, manual: bool) -> Result<()> {
        let id = self.find(name)?.id;
        // A copy into the stopped container mounts the same upper dir:
        // the start waits for it, and a copy waits until it runs. Taken
        // before the policy's lock, as everywhere.
        let files = self.file_locks.lock(&id);
        self.start_locked(&id, manual, files)
    }

    /// [`Self::start_as`] with the container's file lock held.
    fn start_locked(
        self: &Arc<Self>,
        id: &str,
        manual: bool,
        files: files::FileLock<'_>,
    ) -> Result<()> {
        self.prime_cgroups();
        let mut rec = self.find(id)?;
        if manual {
            self.lock_policy().remove(&rec.id);
        }
        if rec.state.status == Status::Running {
            return Err(EngineError::new(
                ErrorKind::NotModified,
                "container already started",
            ));
        }
        let dir = self.dir(&rec.id);
        let rootfs = dir.join("rootfs");
        let image_id = rec.image_id.parse().map_err(|e| internal("image ID", e))?;
        let chain = self.store.chain(&image_id)?;
        let upper = (dir.join("upper"), dir.join("work"));
        // Never synced where nothing survives the container: an unmount
        // of a synced overlay flushes the whole file system (tens of ms
        // on every exit; more after a build step wrote its files). A
        // container kept after it exits is synced: its processes' fsyncs
        // must reach the disk.
        if rec.request.host_config.auto_remove || crate::build::is_build_step(&rec) {
            let upper = (upper.0.as_path(), upper.1.as_path());
            self.store.layers().mount_volatile(&chain, upper, &rootfs)?;
        } else {
            let upper = Some((upper.0.as_path(), upper.1.as_path()));
            self.store.layers().mount(&chain, upper, &rootfs)?;
        }
        let started = self
            .populate_volumes(&rec, &rootfs)
            .and_then(|()| self.spawn_shim(&rec, &rootfs))
            .and_then(|shim| self.start_shim(&mut rec, shim));
        if started.is_err() {
            let _ = berth_store::overlay::unmount(&rootfs);
        }
        drop(files);
        let (child, pid) = match started {
            Ok(s) => s,
            Err(e) => {
                self.start_failed(&rec.id);
                return Err(e);
            }
        };
        self.notify();
        self.emit("start", &rec, &[]);
        tracing::debug!(id = rec.id, pid, "started");
        let svc = self.clone();
        let id = rec.id.clone();
        std::thread::spawn(move || svc.watch_child(child, &id));
        Ok(())
    }

    /// A start that failed: the exit code says so (128, as dockerd), and a
    /// container created with AutoRemove goes, as under Docker — `docker
    /// run --rm` waits for that removal and would wait forever.
    fn start_failed(&self, id: &str) {
        let auto_remove = {
            let conn = self.conn();
            let Ok(mut rec) = records::find(&conn, id) else {
                return;
            };
            rec.state.exit_code = 128;
            if let Err(e) = records::update(&conn, &rec) {
                tracing::error!(id, error = %e, "recording a failed start");
            }
            rec.request.host_config.auto_remove
        };
        self.notify();
        if auto_remove {
            if let Err(e) = self.remove(id, true, true) {
                tracing::error!(id, error = %e, "removing after a failed start");
            }
        }
    }

    /// Connects the clients waiting to attach, starts the created
    /// container, records it running (under the attach lock: a client
    /// attaching meanwhile waits for the record).
    fn start_shim(&self, rec: &mut Record, shim: Created) -> Result<(Child, i32)> {
        let Created {
            mut child,
            pid,
            handshake,
        } = shim;
        let mut waiting = self.lock_attaching();
        self.connect_waiting(&mut waiting, &rec.id);
        let answer = self.ask_shim(&rec.id, &berth_shim::protocol::Request::Start);
        // The shim no longer needs the pipe once started (and gives up if
        // it closes before).
        drop(handshake);
        match answer {
            Ok(berth_shim::protocol::Response::Ok) => {}
            other => {
                let _ = child.wait();
                let message = match other {
                    Ok(berth_shim::protocol::Response::Error { message }) => message,
                    Ok(r) => format!("unexpected answer {r:?}"),
                    Err(e) => e.message,
                };
                return Err(EngineError::new(
                    ErrorKind::Internal,
                    format!("failed to start the container: {message}"),
                ));
            }
        }
        // Read again under the connection: what changed meanwhile (a
        // rename, an update) is kept.
        let conn = self.conn();
        let mut now_rec = records::find(&conn, &rec.id)?;
        now_rec.state = State {
            status: Status::Running,
            pid,
            exit_code: 0,
            started_at: now(),
            manually_stopped: false,
            paused: false,
            ..now_rec.state.clone()
        };
        records::update(&conn, &now_rec)?;
        *rec = now_rec;
        Ok((child, pid))
    }

    /// Spawns the shim, which creates the container; returns once it is
    /// created (not started).
    fn spawn_shim(&self, rec: &Record, rootfs: &Path) -> Result<Created> {
        let image = self
            .store
            .config(&rec.image_id.parse().map_err(|e| internal("image ID", e))?)?;
        let spec = spec::build(rec, &image, rootfs, &|n| self.volumes.data_path(n))?;
        let dir = self.dir(&rec.id);
        let bytes =
            serde_json::to_vec_pretty(&spec).map_err(|e| internal("writing the spec", e))?;
        std::fs::write(dir.join("config.json"), bytes)
            .map_err(|e| internal("writing the spec", e))?;
        let shim_dir = self.shim_dir(&rec.id);
        let _ = std::fs::remove_dir_all(&shim_dir);
        let mut child = Command::new(&self.shim_bin)
            .arg("shim")
            .args(["--id", &rec.id])
            .arg("--bundle")
            .arg(&dir)
            .arg("--runtime-root")
            .arg(self.exec_root.join("runtime"))
            .arg("--dir")
            .arg(&shim_dir)
            .arg("--log-path")
            .arg(self.log_path(&rec.id))
            .args(rec.request.tty.then_some("--tty"))
            .args(rec.request.open_stdin.then_some("--stdin"))
            .args(rec.request.stdin_once.then_some("--stdin-once"))
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            // Its own process group and session: a signal to the daemon's
            // group never reaches containers.
            .process_group(0)
            .spawn()
            .map_err(|e| internal("starting the shim", e))?;
        let mut line = String::new();
        let mut handshake = child.stdout.take().map(BufReader::new);
        if let Some(out) = &mut handshake {
            let _ = out.read_line(&mut line);
        }
        match line.trim().split_once(' ') {
            Some(("created", pid)) => Ok(Created {
                child,
                pid: pid.parse().map_err(|e| internal("the shim's answer", e))?,
                handshake,
            }),
            other => {
                let _ = child.wait();
                let msg = other.map_or("the shim exited without an answer".to_owned(), |(_, m)| {
                    m.to_owned()
                });
                Err(EngineError::new(
                    ErrorKind::Internal,
                    format!("failed to create the container: {msg}"),
                ))
            }
        }
    }

    /// Reaps the shim this daemon started, then records the exit.
    fn watch_child(self: Arc<Self>, mut child: Child, id: &str) {
        let _ = child.wait();
        self.record_exit(id);
    }

    /// Asks a shim left by an earlier daemon to tell when its container
    /// exits.
    fn watch_socket(self: Arc<Self>, id: String) {
        if let Ok(mut s) = berth_shim::protocol::connect(&self.shim_dir(&id)) {
            if writeln!(s, r#"{{"op":"wait"}}"#).is_ok() {
                let mut line = String::new();
                let _ = BufReader::new(s).read_line(&mut line);
            }
        }
        // The shim writes exit.json before it answers or closes.
        self.record_exit(&id);
    }

    /// Reads the shim's exit file, records the exit, unmounts the root.
    fn record_exit(self: &Arc<Self>, id: &str) {
        let exit_file = self.shim_dir(id).join(berth_shim::protocol::EXIT_FILE);
        let status: Option<berth_shim::protocol::ExitStatus> = std::fs::read(&exit_file)
            .ok()
            .and_then(|b| serde_json::from_slice(&b).ok());
        // The record still says running: no copy has the root mounted (a
        // copy waits for the exit to be recorded first).
        let _ = berth_store::overlay::unmount(&self.dir(id).join("rootfs"));
        let auto_remove = {
            let conn = self.conn();
            let Ok(mut rec) = records::find(&conn, id) else {
                return;
            };
            rec.state.status = Status::Exited;
            rec.state.pid = 0;
            rec.state.paused = false;
            rec.state.exit_code = status.as_ref().map_or(255, |s| s.exit_code);
            rec.state.finished_at = status.map_or_else(now, |s| s.finished_at);
            // Marks it restarting; the restart waits for its delay.
            self.plan_restart(&mut rec);
            if let Err(e) = records::update(&conn, &rec) {
                tracing::error!(id, error = %e, "recording an exit");
            }
            self.emit(
                "die",
                &rec,
                &[("exitCode", rec.state.exit_code.to_string())],
            );
            rec.request.host_config.auto_remove && !self.lock_restarting().contains(id)
        };
        self.notify();
        if auto_remove {
            if let Err(e) = self.remove(id, true, true) {
                tracing::error!(id, error = %e, "auto-removing");
            }
        }
    }

    /// On start-up: what a daemon killed in the middle of a create or a
    /// removal left — a container directory without a record, a hold on an
    /// image by a container no record names — goes.
    fn clean_orphans(&self) -> Result<()> {
        let known: std::collections::HashSet<String> = records::all(&self.conn())?
            .into_iter()
            .map(|r| r.id)
            .collect();
        let entries = std::fs::read_dir(&self.root)
            .map_err(|e| internal("reading the containers directory", e))?;
        for entry in entries.flatten() {
            let id = entry.file_name().to_string_lossy().into_owned();
            if !known.contains(&id) {
                tracing::info!(id, "removing the files of a container with no record");
                let _ = berth_store::overlay::unmount(&entry.path().join("rootfs"));
                let _ = std::fs::remove_dir_all(entry.path());
                let _ = std::fs::remove_dir_all(self.shim_dir(&id));
            }
        }
        self.volumes.forget_others(&known)?;
        for holder in self.store.holders()? {
            let container_like =
                holder.len() == 64 && holder.bytes().all(|b| b.is_ascii_hexdigit());
            if container_like && !known.contains(&holder) {
                tracing::info!(
                    id = holder,
                    "releasing the image hold of a container with no record"
                );
                self.store.release(&holder)?;
            }
        }
        Ok(())
    }

    /// On start-up: running records either have a live shim (watch it) or
    /// exited while the daemon was down (record it).
    fn reconcile(self: &Arc<Self>) -> Result<()> {
        let running: Vec<Record> = records::all(&self.conn())?
            .into_iter()
            .filter(|r| r.state.status == Status::Running)
            .collect();
        for rec in running {
            if berth_shim::protocol::connect(&self.shim_dir(&rec.id)).is_ok() {
                let svc = self.clone();
                std::thread::spawn(move || svc.watch_socket(rec.id));
            } else {
                self.record_exit(&rec.id);
            }
        }
        Ok(())
    }

    /// Sends a request to a running container's shim.
    fn ask_shim(
        &self,
        id: &str,
        request: &berth_shim::protocol::Request,
    ) -> Result<berth_shim::protocol::Response> {
        let mut s = berth_shim::protocol::connect(&self.shim_dir(id))
            .map_err(|e| internal("reaching the container's shim", e))?;
        let mut line = serde_json::to_vec(request).map_err(|e| internal("encoding", e))?;
        line.push(b'\n');
        s.write_all(&line)
            .map_err(|e| internal("asking the shim", e))?;
        let mut answer = String::new();
        BufReader::new(s)
            .read_line(&mut answer)
            .map_err(|e| internal("hearing the shim", e))?;
        serde_json::from_str(&answer).map_err(|e| internal("the shim's answer", e))
    }

    /// Records that the user stopped the container (its restart policy
    /// waits); a restarting container is stopped right here. Returns the
    /// record as it was.
    fn mark_stopped(&self, name: &str) -> Result<Record> {
        // After a restart in progress, never in its middle.
        let _policy = self.lock_policy();
        let conn = self.conn();
        let rec = records::find(&conn, name)?;
        let mut now = rec.clone();
        now.state.manually_stopped = true;
        if now.state.status == Status::Restarting {
            now.state.status = Status::Exited;
        }
        if now.state != rec.state {
            records::update(&conn, &now)?;
            drop(conn);
            self.notify();
        }
        Ok(rec)
    }

    /// Sends a signal (a name like `SIGTERM`/`TERM`/`KILL` or a number).
    pub fn kill(&self, name: &str, signal: Option<&str>) -> Result<()> {
        let rec = self.find(name)?;
        if rec.state.status == Status::Restarting {
            return Err(EngineError::new(
                ErrorKind::Conflict,
                format!(
                    "Container {} is restarting, wait until the container is running",
                    rec.id
                ),
            ));
        }
        if rec.state.status != Status::Running {
            return Err(EngineError::new(
                ErrorKind::Conflict,
                format!("Container {} is not running", rec.id),
            ));
        }
        let signal = parse_signal(signal.unwrap_or("SIGKILL"))?;
        let stop_signal = parse_signal(rec.request.stop_signal.as_deref().unwrap_or("SIGTERM"))?;
        if signal == nix::sys::signal::Signal::SIGKILL as i32 || signal == stop_signal {
            self.mark_stopped(&rec.id)?;
        }
        self.emit("kill", &rec, &[("signal", signal.to_string())]);
        match self.ask_shim(&rec.id, &berth_shim::protocol::Request::Kill { signal })? {
            berth_shim::protocol::Response::Error { message } => {
                Err(EngineError::new(ErrorKind::Conflict, message))
            }
            _ => {
                if rec.state.paused && signal == nix::sys::signal::Signal::SIGKILL as i32 {
                    self.thaw_for_kill(&rec.id);
                }
                Ok(())
            }
        }
    }

    /// Stop signal, then SIGKILL after `timeout` (default 10 s). Returns
    /// false when the container was not running (Docker's 304).
    pub fn stop(&self, name: &str, timeout: Option<u64>) -> Result<bool> {
        let rec = self.mark_stopped(name)?;
        if rec.state.status != Status::Running {
            return Ok(rec.state.status == Status::Restarting);
        }
        let stop_signal = rec
            .request
            .stop_signal
            .clone()
            .unwrap_or_else(|| "SIGTERM".to_owned());
        let _ = self.kill(&rec.id, Some(&stop_signal));
        let limit = Duration::from_secs(timeout.unwrap_or(10));
        if !self.wait_until(&rec.id, Some(limit), |r| {
            r.is_none_or(|r| r.state.status != Status::Running)
        }) {
            let _ = self.kill(&rec.id, Some("SIGKILL"));
            self.wait_until(&rec.id, None, |r| {
                r.is_none_or(|r| r.state.status != Status::Running)
            });
        }
        self.emit("stop", &rec, &[]);
        Ok(true)
    }

    /// `POST /containers/{id}/restart`: stop (with the timeout), start.
    /// An AutoRemove container survives its restart: the exit the stop
    /// causes is not the end of it.
    pub fn restart(self: &Arc<Self>, name: &str, timeout: Option<u64>) -> Result<()> {
        let rec = self.find(name)?;
        self.lock_restarting().insert(rec.id.clone());
        let restarted = self
            .stop(&rec.id, timeout)
            .and_then(|_| self.start(&rec.id));
        self.lock_restarting().remove(&rec.id);
        restarted?;
        self.emit("restart", &rec, &[]);
        Ok(())
    }

    fn lock_restarting(&self) -> MutexGuard<'_, std::collections::HashSet<String>> {
        self.restarting
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Blocks until `done` holds for the record (None: it is gone) or the
    /// limit passes; returns whether it holds.
    fn wait_until(
        &self,
        id: &str,
        limit: Option<Duration>,
        done: impl Fn(Option<&Record>) -> bool,
    ) -> bool {
        let deadline = limit.map(|l| Instant::now() + l);
        let (lock, cv) = &self.changed;
        let mut gen = lock
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        loop {
            let rec = records::find(&self.conn(), id).ok();
            if done(rec.as_ref()) {
                return true;
            }
            let wait = match deadline {
                Some(d) => match d.checked_duration_since(Instant::now()) {
                    Some(left) => left,
                    None => return false,
                },
                None => Duration::from_secs(3600),
            };
            gen = cv
                .wait_timeout(gen, wait)
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .0;
        }
    }

    /// `POST /containers/{id}/wait`: `not-running` (default), `next-exit`,
    /// `removed`; fixes what the wait is for at the moment it is asked
    /// (the API answers the headers after this, and clients start the
    /// container once they have them).
    pub fn prepare_wait(&self, name: &str, condition: &str) -> Result<WaitTicket> {
        let rec = self.find(name)?;
        let condition = match condition {
            "" | "not-running" => WaitCondition::NotRunning,
            "next-exit" => WaitCondition::NextExit,
            "removed" => WaitCondition::Removed,
            other => {
                return Err(EngineError::invalid(format!(
                    "invalid condition: {other:?}"
                )))
            }
        };
        Ok(WaitTicket {
            condition,
            was_running: rec.state.status == Status::Running,
            started_at: rec.state.started_at,
            last_code: rec.state.exit_code,
            id: rec.id,
        })
    }

    /// Blocks until the ticket's condition holds; returns the exit code.
    pub fn wait_for(&self, t: &WaitTicket) -> i32 {
        let done: Condition<'_> = match t.condition {
            WaitCondition::NotRunning => {
                Box::new(|r| r.is_none_or(|r| r.state.status != Status::Running))
            }
            // An exit after the call: of the run in progress, or of the next start.
            WaitCondition::NextExit => Box::new(move |r| {
                r.is_none_or(|r| {
                    matches!(r.state.status, Status::Exited | Status::Restarting)
                        && (t.was_running || r.state.started_at != t.started_at)
                })
            }),
            WaitCondition::Removed => Box::new(|r| r.is_none()),
        };
        self.wait_until(&t.id, None, done);
        match self.find(&t.id) {
            Ok(now) => now.state.exit_code,
            Err(_) => self.removed_exit(&t.id).unwrap_or(t.last_code),
        }
    }

    /// The exit code a removed container last recorded.
    fn removed_exit(&self, id: &str) -> Option<i32> {
        let removed = self
            .removed
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        removed
            .iter()
            .rev()
            .find(|(r, _)| r == id)
            .map(|(_, code)| *code)
    }

    /// Removes a container (`force`: kill it first if it runs; `volumes`:
    /// its anonymous volumes go too).
    pub fn remove(&self, name: &str, force: bool, volumes: bool) -> Result<()> {
        let rec = self.find(name)?;
        let refuse = |what: &str| {
            Err(EngineError::new(
                ErrorKind::Conflict,
                format!("You cannot remove a {what} container {}. Stop the container before attempting removal or force remove", rec.id),
            ))
        };
        match rec.state.status {
            Status::Restarting if !force => return refuse("restarting"),
            Status::Running if !force => return refuse("running"),
            _ => {}
        }
        // Under the container's file lock (after a copy into it, which has
        // its root mounted, never during), then the policy's (a restart in
        // progress finishes first, and none begins while the files go) —
        // in that order, as a restart takes them.
        let (files, policy) = loop {
            let now = self.find(&rec.id)?;
            if now.state.status == Status::Running {
                let _ = self.kill(&rec.id, Some("SIGKILL"));
                self.wait_until(&rec.id, None, |r| {
                    r.is_none_or(|r| r.state.status != Status::Running)
                });
            }
            let files = self.file_locks.lock(&rec.id);
            let policy = self.lock_policy();
            if self.find(&rec.id)?.state.status != Status::Running {
                break (files, policy);
            }
        };
        let dir = self.dir(&rec.id);
        let _ = berth_store::overlay::unmount(&dir.join("rootfs"));
        // Remembered before the record goes: a waiter that sees it gone
        // must find the code.
        self.remember_removal(&rec.id, self.find(&rec.id)?.state.exit_code);
        records::delete(&self.conn(), &rec.id)?;
        drop(policy);
        self.emit("destroy", &rec, &[]);
        self.drop_waiting(&rec.id);
        self.forget_execs(&rec.id);
        self.release_volumes(&rec.id, &rec.volumes, volumes);
        self.store.release(&rec.id)?;
        std::fs::remove_dir_all(&dir).map_err(|e| internal("removing the container's files", e))?;
        drop(files);
        let _ = std::fs::remove_dir_all(self.shim_dir(&rec.id));
        self.notify();
        Ok(())
    }

    /// Keeps the exit codes of the last removals, for waiters that asked
    /// for `removed` (`docker run --rm` prints the code after the removal).
    fn remember_removal(&self, id: &str, code: i32) {
        let mut removed = self
            .removed
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if removed.len() == REMEMBERED_REMOVALS {
            removed.pop_front();
        }
        removed.push_back((id.to_owned(), code));
    }

    /// All records (for listing).
    pub fn records(&self) -> Result<Vec<Record>> {
        records::all(&self.conn())
    }
}

pub(crate) fn new_id() -> String {
    use std::sync::atomic::{AtomicU64, Ordering};
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let seed = format!(
        "{} {} {}",
        chrono::Utc::now().timestamp_nanos_opt().unwrap_or_default(),
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed)
    );
    berth_image::Digest::sha256(seed.as_bytes())
        .hex()
        .to_owned()
}

fn valid_name(n: &str) -> Result<String> {
    let n = n.strip_prefix('/').unwrap_or(n);
    let mut chars = n.chars();
    let first_ok = chars.next().is_some_and(|c| c.is_ascii_alphanumeric());
    let rest_ok = chars.all(|c| c.is_ascii_alphanumeric() || "_.-".contains(c));
    if first_ok && rest_ok && n.len() >= 2 {
        Ok(n.to_owned())
    } else {
        Err(EngineError::invalid(format!(
            "Invalid container name ({n}), only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed"
        )))
    }
}

impl ContainerService {
    /// A generated name no container has (a taken one is generated again
    /// from fresh randomness, as Docker does).
    fn free_name(&self, id: &str) -> Result<String> {
        let mut name = generated_name(id);
        while records::name_taken(&self.conn(), &name)? {
            name = generated_name(&new_id());
        }
        Ok(name)
    }
}

/// Docker-style `adjective_name`, picked by the ID: words from one part of
/// it, a suffix from another, so names spread as widely as IDs do.
fn generated_name(id: &str) -> String {
    const LEFT: [&str; 16] = [
        "brave", "calm", "eager", "fervent", "gallant", "happy", "jolly", "keen", "lucid",
        "modest", "nifty", "quirky", "serene", "tender", "vibrant", "zealous",
    ];
    const RIGHT: [&str; 16] = [
        "babbage", "curie", "darwin", "euler", "fermi", "galois", "hopper", "kepler", "lovelace",
        "meitner", "noether", "pascal", "ritchie", "shannon", "turing", "wozniak",
    ];
    let nibble = |i: usize| {
        id.get(i..=i)
            .and_then(|c| usize::from_str_radix(c, 16).ok())
            .unwrap_or(0)
    };
    let suffix = id.get(56..64).unwrap_or(id);
    format!("{}_{}_{suffix}", LEFT[nibble(0)], RIGHT[nibble(1)])
}

/// Docker's rule: the request's entrypoint replaces the image's and then
/// drops the image's cmd; the request's cmd replaces the image's.
fn command(
    req: &CreateRequest,
    img: &berth_image::config::ContainerConfig,
) -> Result<(String, Vec<String>)> {
    let entrypoint = req
        .entrypoint
        .clone()
        .or_else(|| img.entrypoint.clone())
        .unwrap_or_default();
    let cmd = match (&req.cmd, &req.entrypoint) {
        (Some(c), _) => c.clone(),
        (None, Some(_)) => Vec::new(),
        (None, None) => img.cmd.clone().unwrap_or_default(),
    };
    let mut all = entrypoint.into_iter().chain(cmd);
    let path = all
        .next()
        .ok_or_else(|| EngineError::invalid("No command specified"))?;
    Ok((path, all.collect()))
}

fn parse_signal(s: &str) -> Result<i32> {
    if let Ok(n) = s.parse::<i32>() {
        return Ok(n);
    }
    let up = s.to_ascii_uppercase();
    let name = if up.starts_with("SIG") {
        up
    } else {
        format!("SIG{up}")
    };
    name.parse::<nix::sys::signal::Signal>()
        .map(|s| s as i32)
        .map_err(|_| EngineError::invalid(format!("Invalid signal: {s}")))
}

/// The container operations the API serves.
pub trait ContainerBackend: Send + Sync {
    fn create(&self, name: Option<&str>, req: CreateRequest) -> Result<String>;
    fn start(&self, name: &str) -> Result<()>;
    fn stop(&self, name: &str, timeout: Option<u64>) -> Result<bool>;
    fn restart(&self, name: &str, timeout: Option<u64>) -> Result<()>;
    fn kill(&self, name: &str, signal: Option<&str>) -> Result<()>;
    fn prepare_wait(&self, name: &str, condition: &str) -> Result<WaitTicket>;
    fn wait_for(&self, ticket: &WaitTicket) -> i32;
    fn remove(&self, name: &str, force: bool, volumes: bool) -> Result<()>;
    fn list(
        &self,
        opts: &ListOptions,
        filters: &berth_api_types::Filters,
    ) -> Result<Vec<serde_json::Value>>;
    fn inspect(&self, name: &str) -> Result<serde_json::Value>;
    fn logs(&self, name: &str, opts: &LogOptions, out: &mut dyn Write) -> Result<()>;
    fn attach(&self, name: &str, opts: AttachOptions) -> Result<Attachment>;
    fn export(&self, name: &str, out: &mut dyn Write) -> Result<()>;
    fn resize(&self, name: &str, height: u16, width: u16) -> Result<()>;
    fn pause(&self, name: &str) -> Result<()>;
    fn unpause(&self, name: &str) -> Result<()>;
    fn update(&self, name: &str, req: &update::UpdateRequest) -> Result<Vec<String>>;
    fn rename(&self, name: &str, new_name: &str) -> Result<()>;
    fn prune(&self, filters: &berth_api_types::Filters) -> Result<update::Pruned>;
    fn stats(&self, name: &str, opts: stats::StatsOptions, out: &mut dyn Write) -> Result<()>;
    fn top(&self, name: &str, ps_args: &str) -> Result<serde_json::Value>;
    fn commit(&self, req: &commit::CommitRequest) -> Result<String>;
}

impl ContainerBackend for Arc<ContainerService> {
    fn create(&self, name: Option<&str>, req: CreateRequest) -> Result<String> {
        ContainerService::create(self, name, req)
    }
    fn start(&self, name: &str) -> Result<()> {
        ContainerService::start(self, name)
    }
    fn stop(&self, name: &str, timeout: Option<u64>) -> Result<bool> {
        ContainerService::stop(self, name, timeout)
    }
    fn restart(&self, name: &str, timeout: Option<u64>) -> Result<()> {
        ContainerService::restart(self, name, timeout)
    }
    fn kill(&self, name: &str, signal: Option<&str>) -> Result<()> {
        ContainerService::kill(self, name, signal)
    }
    fn prepare_wait(&self, name: &str, condition: &str) -> Result<WaitTicket> {
        ContainerService::prepare_wait(self, name, condition)
    }
    fn wait_for(&self, ticket: &WaitTicket) -> i32 {
        ContainerService::wait_for(self, ticket)
    }
    fn remove(&self, name: &str, force: bool, volumes: bool) -> Result<()> {
        ContainerService::remove(self, name, force, volumes)
    }
    fn list(
        &self,
        opts: &ListOptions,
        filters: &berth_api_types::Filters,
    ) -> Result<Vec<serde_json::Value>> {
        ContainerService::list(self, opts, filters)
    }
    fn inspect(&self, name: &str) -> Result<serde_json::Value> {
        ContainerService::inspect(self, name)
    }
    fn logs(&self, name: &str, opts: &LogOptions, out: &mut dyn Write) -> Result<()> {
        ContainerService::logs(self, name, opts, out)
    }
    fn attach(&self, name: &str, opts: AttachOptions) -> Result<Attachment> {
        ContainerService::attach(self, name, opts)
    }
    fn export(&self, name: &str, out: &mut dyn Write) -> Result<()> {
        ContainerService::export(self, name, out)
    }
    fn resize(&self, name: &str, height: u16, width: u16) -> Result<()> {
        ContainerService::resize(self, name, height, width)
    }
    fn pause(&self, name: &str) -> Result<()> {
        ContainerService::pause(self, name)
    }
    fn unpause(&self, name: &str) -> Result<()> {
        ContainerService::unpause(self, name)
    }
    fn update(&self, name: &str, req: &update::UpdateRequest) -> Result<Vec<String>> {
        ContainerService::update(self, name, req)
    }
    fn rename(&self, name: &str, new_name: &str) -> Result<()> {
        ContainerService::rename(self, name, new_name)
    }
    fn prune(&self, filters: &berth_api_types::Filters) -> Result<update::Pruned> {
        ContainerService::prune(self, filters)
    }
    fn stats(&self, name: &str, opts: stats::StatsOptions, out: &mut dyn Write) -> Result<()> {
        ContainerService::stats(self, name, opts, out)
    }
    fn top(&self, name: &str, ps_args: &str) -> Result<serde_json::Value> {
        ContainerService::top(self, name, ps_args)
    }
    fn commit(&self, req: &commit::CommitRequest) -> Result<String> {
        ContainerService::commit(self, req)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commands_follow_dockers_override_rules() {
        let img = berth_image::config::ContainerConfig {
            entrypoint: Some(vec!["/entry".into()]),
            cmd: Some(vec!["default".into()]),
            ..Default::default()
        };
        let req = |e: Option<Vec<&str>>, c: Option<Vec<&str>>| CreateRequest {
            entrypoint: e.map(|v| v.into_iter().map(String::from).collect()),
            cmd: c.map(|v| v.into_iter().map(String::from).collect()),
            ..Default::default()
        };
        assert_eq!(
            command(&req(None, None), &img).unwrap(),
            ("/entry".into(), vec!["default".into()])
        );
        assert_eq!(
            command(&req(None, Some(vec!["x"])), &img).unwrap(),
            ("/entry".into(), vec!["x".into()])
        );
        assert_eq!(
            command(&req(Some(vec!["/other"]), None), &img).unwrap(),
            ("/other".into(), vec![])
        );
        let err = command(&req(Some(vec![]), None), &Default::default()).unwrap_err();
        assert_eq!(err.message, "No command specified");
    }

    #[test]
    fn generated_names_spread_like_ids() {
        let a = format!("ab{}", "0".repeat(62));
        let b = format!("ab{}1", "0".repeat(61));
        assert_ne!(generated_name(&a), generated_name(&b));
        assert!(valid_name(&generated_name(&a)).is_ok());
        assert_eq!(generated_name(&b), "nifty_pascal_00000001");
    }

    #[test]
    fn names_and_signals_are_checked() {
        assert_eq!(valid_name("/web-1").unwrap(), "web-1");
        assert!(valid_name("-bad")
            .unwrap_err()
            .message
            .contains("Invalid container name"));
        assert_eq!(parse_signal("TERM").unwrap(), 15);
        assert_eq!(parse_signal("SIGKILL").unwrap(), 9);
        assert_eq!(parse_signal("10").unwrap(), 10);
        assert!(parse_signal("SIGNOPE").is_err());
    }
}
