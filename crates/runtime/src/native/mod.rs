//! berth's runtime: the [`Runtime`] trait on youki's `libcontainer`.
//!
//! libcontainer does the kernel work (namespaces, pivot_root, mounts, masked
//! paths, cgroups, capabilities, seccomp, hooks). This module adds what berth
//! needs around it: precise validation before anything exists, cleanup of a
//! half-created container, atomic pid files, and a foreground `run` that
//! reaps its child itself instead of waiting for a signal that may already
//! have been delivered.

use std::fs;
use std::os::fd::OwnedFd;
use std::os::unix::fs::DirBuilderExt;
use std::path::{Path, PathBuf};

use libcgroups::common::CgroupManager;
use libcontainer::container::builder::ContainerBuilder;
use libcontainer::container::{Container, ContainerStatus};
use libcontainer::error::LibcontainerError;
use libcontainer::syscall::syscall::SyscallType;
use nix::sys::signal::Signal;
use nix::unistd::Pid;
use oci_spec::runtime::LinuxResources;

use crate::error::{Result, RuntimeError};
use crate::lifecycle::{CreateOptions, ExecOptions, Runtime};
use crate::state::ContainerState;
use crate::validate::{check_id, load_bundle};
use crate::{pidfile, reap};

mod cgroup;
mod foreground;
mod view;

/// The libcontainer-backed runtime, keeping its state under `root`.
#[derive(Debug, Clone)]
pub struct Libcontainer {
    root: PathBuf,
}

impl Libcontainer {
    /// A runtime whose per-container state lives in `root/<id>/`.
    pub fn new(root: impl Into<PathBuf>) -> Self {
        Self { root: root.into() }
    }

    /// The state root.
    pub fn root(&self) -> &Path {
        &self.root
    }

    fn load(&self, id: &str) -> Result<Container> {
        check_id(id)?;
        let dir = self.root.join(id);
        if !dir.join("state.json").exists() {
            return Err(RuntimeError::NotFound(id.to_owned()));
        }
        let mut container =
            Container::load(dir).map_err(|e| RuntimeError::container("load", id, e))?;
        container
            .refresh_status()
            .map_err(|e| RuntimeError::container("load", id, e))?;
        Ok(container)
    }

    /// A state change libcontainer guards with a predicate: refuse it with
    /// the current state named, or perform it.
    fn transition(
        &self,
        id: &str,
        op: &'static str,
        allowed: fn(&Container) -> bool,
        act: fn(&mut Container) -> std::result::Result<(), LibcontainerError>,
    ) -> Result<()> {
        let mut container = self.load(id)?;
        if !allowed(&container) {
            return Err(wrong_state(&container, op));
        }
        act(&mut container).map_err(|e| RuntimeError::container(op, id, e))
    }

    /// Checks the id and the bundle before anything is created.
    fn prepare(&self, id: &str, opts: &CreateOptions) -> Result<Prepared> {
        check_id(id)?;
        let bundle = fs::canonicalize(&opts.bundle)
            .map_err(|e| RuntimeError::io("open bundle", &opts.bundle, e))?;
        let spec = load_bundle(&bundle)?;
        if self.root.join(id).exists() {
            return Err(RuntimeError::Exists(id.to_owned()));
        }
        fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(&self.root)
            .map_err(|e| RuntimeError::io("create state root", &self.root, e))?;
        let terminal = spec.process().as_ref().and_then(|p| p.terminal()) == Some(true);
        Ok(Prepared { bundle, terminal })
    }

    /// Builds the container; on any failure removes what was made for it.
    fn build(
        &self,
        id: &str,
        prepared: &Prepared,
        opts: &CreateOptions,
        detach: bool,
        console_socket: Option<&Path>,
    ) -> Result<Container> {
        let built = ContainerBuilder::new(id.to_owned(), SyscallType::default())
            .with_root_path(&self.root)
            .and_then(|b| b.validate_id())
            .map(|b| {
                b.with_console_socket(console_socket)
                    .with_preserved_fds(opts.preserve_fds)
                    .as_init(&prepared.bundle)
                    .with_systemd(false)
                    .with_detach(detach)
                    .with_no_pivot(opts.no_pivot)
            })
            .and_then(|b| b.build());
        let container = match built {
            Ok(container) => container,
            Err(LibcontainerError::Exist) => return Err(RuntimeError::Exists(id.to_owned())),
            Err(e) => {
                // libcontainer removes cgroups of a failed create, but not the
                // state directory when it failed before forking.
                if let Err(cleanup) = remove_state_dir(&self.root.join(id)) {
                    tracing::error!(id, error = %cleanup, "cleanup after failed create");
                }
                return Err(RuntimeError::container("create", id, e));
            }
        };
        if let (Some(path), Some(pid)) = (&opts.pid_file, container.pid()) {
            pidfile::write(path, pid.as_raw())?;
        }
        Ok(container)
    }
}

/// The stdio of a process [`Libcontainer::spawn_exec`] starts; a `None`
/// is inherited from the caller.
#[derive(Debug, Default)]
pub struct ExecStdio {
    pub stdin: Option<OwnedFd>,
    pub stdout: Option<OwnedFd>,
    pub stderr: Option<OwnedFd>,
}

impl Libcontainer {
    /// Starts another process in a running container with this stdio and
    /// returns its host pid at once: the caller reaps it (a subreaper gets
    /// it even when it is not its child). The process inherits the
    /// caller's signal mask: unblock what it must see first.
    pub fn spawn_exec(&self, id: &str, opts: &ExecOptions, stdio: ExecStdio) -> Result<i32> {
        self.exec_process(id, opts, stdio).map(Pid::as_raw)
    }

    fn exec_process(&self, id: &str, opts: &ExecOptions, stdio: ExecStdio) -> Result<Pid> {
        let container = self.load(id)?;
        if container.status() != ContainerStatus::Running {
            return Err(wrong_state(&container, "exec in"));
        }
        let mut builder = ContainerBuilder::new(id.to_owned(), SyscallType::default())
            .with_root_path(&self.root)
            .map_err(|e| RuntimeError::container("exec in", id, e))?;
        if let Some(fd) = stdio.stdin {
            builder = builder.with_stdin(fd);
        }
        if let Some(fd) = stdio.stdout {
            builder = builder.with_stdout(fd);
        }
        if let Some(fd) = stdio.stderr {
            builder = builder.with_stderr(fd);
        }
        builder
            .with_console_socket(opts.console_socket.as_ref())
            .with_preserved_fds(opts.preserve_fds)
            .as_tenant()
            .with_detach(opts.detach)
            .with_process(opts.process.as_ref())
            .with_container_args(opts.args.clone())
            .with_env(env_map(&opts.env))
            .with_cwd(opts.cwd.as_ref())
            .with_user(opts.user.map(|(uid, _)| uid))
            .with_group(opts.user.and_then(|(_, gid)| gid))
            .with_additional_gids(opts.additional_gids.clone())
            .with_capabilities(opts.caps.clone())
            .with_no_new_privs(opts.no_new_privs)
            .with_tty(opts.tty)
            .build()
            .map_err(|e| RuntimeError::container("exec in", id, e))
    }
}

/// What `prepare` learnt of a bundle.
#[derive(Debug)]
pub(super) struct Prepared {
    /// Absolute bundle path.
    bundle: PathBuf,
    /// Whether the process asks for a terminal.
    terminal: bool,
}

fn remove_state_dir(dir: &Path) -> std::io::Result<()> {
    match fs::remove_dir_all(dir) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        other => other,
    }
}

fn wrong_state(container: &Container, op: &'static str) -> RuntimeError {
    RuntimeError::WrongState {
        id: container.id().to_owned(),
        op,
        status: view::status_of(container.status()).to_string(),
    }
}

impl Runtime for Libcontainer {
    fn create(&self, id: &str, opts: &CreateOptions) -> Result<ContainerState> {
        let prepared = self.prepare(id, opts)?;
        let container = self.build(id, &prepared, opts, true, opts.console_socket.as_deref())?;
        Ok(view::state_of(&container))
    }

    fn start(&self, id: &str) -> Result<()> {
        self.transition(id, "start", Container::can_start, Container::start)
    }

    fn run(&self, id: &str, opts: &CreateOptions, detach: bool) -> Result<i32> {
        let prepared = self.prepare(id, opts)?;
        if !detach {
            return self.run_foreground(id, &prepared, opts);
        }
        let mut container =
            self.build(id, &prepared, opts, true, opts.console_socket.as_deref())?;
        if let Err(e) = container.start() {
            let _ = container.delete(true);
            return Err(RuntimeError::container("start", id, e));
        }
        Ok(0)
    }

    fn state(&self, id: &str) -> Result<ContainerState> {
        Ok(view::state_of(&self.load(id)?))
    }

    fn list(&self) -> Result<Vec<ContainerState>> {
        let entries = match fs::read_dir(&self.root) {
            Ok(entries) => entries,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(RuntimeError::io("list state root", &self.root, e)),
        };
        let mut states = Vec::new();
        for entry in entries.flatten() {
            let name = entry.file_name();
            // Dot-files are berth's own (console sockets), never containers.
            let Some(id) = name.to_str().filter(|n| !n.starts_with('.')) else {
                continue;
            };
            match self.load(id) {
                Ok(container) => states.push(view::state_of(&container)),
                Err(e) => tracing::warn!(id, error = %e, "skipping unreadable container state"),
            }
        }
        states.sort_by(|a, b| a.id.cmp(&b.id));
        Ok(states)
    }

    fn kill(&self, id: &str, signal: Signal, all: bool) -> Result<()> {
        let mut container = self.load(id)?;
        if !container.can_kill() && !all {
            return Err(wrong_state(&container, "kill"));
        }
        container
            .kill(signal, all)
            .map_err(|e| RuntimeError::container("kill", id, e))
    }

    fn delete(&self, id: &str, force: bool) -> Result<()> {
        let mut container = self.load(id)?;
        if !force
            && matches!(
                container.status(),
                ContainerStatus::Running | ContainerStatus::Paused
            )
        {
            return Err(wrong_state(&container, "delete (without --force)"));
        }
        container
            .delete(force)
            .map_err(|e| RuntimeError::container("delete", id, e))
    }

    fn pause(&self, id: &str) -> Result<()> {
        self.transition(id, "pause", Container::can_pause, Container::pause)
    }

    fn resume(&self, id: &str) -> Result<()> {
        self.transition(id, "resume", Container::can_resume, Container::resume)
    }

    fn pids(&self, id: &str) -> Result<Vec<i32>> {
        let container = self.load(id)?;
        let manager = cgroup::manager_for(&container)?;
        let pids = manager.get_all_pids().map_err(|e| RuntimeError::Cgroup {
            op: "list processes in",
            id: id.to_owned(),
            reason: e.to_string(),
        })?;
        Ok(pids.into_iter().map(Pid::as_raw).collect())
    }

    fn exec(&self, id: &str, opts: &ExecOptions) -> Result<i32> {
        let pid = self.exec_process(id, opts, ExecStdio::default())?;
        if let Some(path) = &opts.pid_file {
            pidfile::write(path, pid.as_raw())?;
        }
        if opts.detach {
            return Ok(0);
        }
        reap::wait_exit(pid)
    }

    fn update(&self, id: &str, resources: &LinuxResources) -> Result<()> {
        let container = self.load(id)?;
        if container.status() == ContainerStatus::Stopped {
            return Err(wrong_state(&container, "update"));
        }
        let manager = cgroup::manager_for(&container)?;
        manager
            .apply(&cgroup::update_opt(resources))
            .map_err(|e| RuntimeError::Cgroup {
                op: "update",
                id: id.to_owned(),
                reason: e.to_string(),
            })
    }
}

fn env_map(env: &[String]) -> std::collections::HashMap<String, String> {
    env.iter()
        .filter_map(|kv| kv.split_once('='))
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect()
}
