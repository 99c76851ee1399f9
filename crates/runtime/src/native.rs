//! berth's runtime: the [`Runtime`] trait on youki's `libcontainer`.
//!
//! libcontainer does the kernel work (namespaces, pivot_root, mounts, masked
//! paths, cgroups, capabilities, seccomp, hooks). This module adds what berth
//! needs around it: precise validation before anything exists, cleanup of a
//! half-created container, atomic pid files, and a foreground `run` that
//! reaps its child itself instead of waiting for a signal that may already
//! have been delivered.

use std::fs;
use std::os::unix::fs::DirBuilderExt;
use std::path::{Path, PathBuf};

use libcgroups::common::{AnyCgroupManager, CgroupConfig, CgroupManager, ControllerOpt};
use libcontainer::container::builder::ContainerBuilder;
use libcontainer::container::{Container, ContainerStatus};
use libcontainer::syscall::syscall::SyscallType;
use nix::sys::signal::Signal;
use nix::unistd::Pid;
use oci_spec::runtime::LinuxResources;

use crate::console::ConsoleSocket;
use crate::error::{Result, RuntimeError};
use crate::lifecycle::{CreateOptions, ExecOptions, Runtime};
use crate::state::{ContainerState, Status};
use crate::validate::{check_id, load_bundle};
use crate::{pidfile, reap};

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
            Err(libcontainer::error::LibcontainerError::Exist) => {
                return Err(RuntimeError::Exists(id.to_owned()))
            }
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

    /// Foreground run: relays signals (and the terminal, when the process
    /// wants one and no console socket was given) until the process exits.
    fn run_foreground(&self, id: &str, prepared: &Prepared, opts: &CreateOptions) -> Result<i32> {
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

    fn cgroup_manager(&self, container: &Container) -> Result<AnyCgroupManager> {
        let id = container.id();
        let config = container
            .spec()
            .map_err(|e| RuntimeError::container("read config of", id, e))?;
        libcgroups::common::create_cgroup_manager(CgroupConfig {
            cgroup_path: config.cgroup_path,
            systemd_cgroup: false,
            container_name: id.to_owned(),
        })
        .map_err(|e| RuntimeError::Cgroup {
            op: "open",
            id: id.to_owned(),
            reason: e.to_string(),
        })
    }

    fn to_state(&self, container: &Container) -> ContainerState {
        let status = status_of(container.status());
        let bundle = container.bundle().clone();
        ContainerState {
            oci_version: oci_spec::runtime::VERSION.to_owned(),
            id: container.id().to_owned(),
            pid: match status {
                Status::Stopped => 0,
                _ => container.pid().map_or(0, Pid::as_raw),
            },
            status,
            rootfs: rootfs_of(&bundle),
            bundle,
            created: container
                .created()
                .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Nanos, true))
                .unwrap_or_default(),
            owner: container
                .creator()
                .map(|o| o.to_string_lossy().into_owned())
                .unwrap_or_default(),
            annotations: container.state.annotations.clone().unwrap_or_default(),
        }
    }
}

/// What `prepare` learnt of a bundle.
#[derive(Debug)]
struct Prepared {
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

fn status_of(status: ContainerStatus) -> Status {
    match status {
        ContainerStatus::Creating => Status::Creating,
        ContainerStatus::Created => Status::Created,
        ContainerStatus::Running => Status::Running,
        ContainerStatus::Stopped => Status::Stopped,
        ContainerStatus::Paused => Status::Paused,
    }
}

/// The rootfs as config.json names it, resolved against the bundle.
fn rootfs_of(bundle: &Path) -> PathBuf {
    let configured = oci_spec::runtime::Spec::load(bundle.join("config.json"))
        .ok()
        .and_then(|spec| spec.root().as_ref().map(|r| r.path().clone()))
        .unwrap_or_else(|| PathBuf::from("rootfs"));
    bundle.join(configured)
}

fn wrong_state(container: &Container, op: &'static str) -> RuntimeError {
    RuntimeError::WrongState {
        id: container.id().to_owned(),
        op,
        status: status_of(container.status()).to_string(),
    }
}

impl Runtime for Libcontainer {
    fn create(&self, id: &str, opts: &CreateOptions) -> Result<ContainerState> {
        let prepared = self.prepare(id, opts)?;
        let container = self.build(id, &prepared, opts, true, opts.console_socket.as_deref())?;
        Ok(self.to_state(&container))
    }

    fn start(&self, id: &str) -> Result<()> {
        let mut container = self.load(id)?;
        if !container.can_start() {
            return Err(wrong_state(&container, "start"));
        }
        container
            .start()
            .map_err(|e| RuntimeError::container("start", id, e))
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
        Ok(self.to_state(&self.load(id)?))
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
                Ok(container) => states.push(self.to_state(&container)),
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
        let mut container = self.load(id)?;
        if !container.can_pause() {
            return Err(wrong_state(&container, "pause"));
        }
        container
            .pause()
            .map_err(|e| RuntimeError::container("pause", id, e))
    }

    fn resume(&self, id: &str) -> Result<()> {
        let mut container = self.load(id)?;
        if !container.can_resume() {
            return Err(wrong_state(&container, "resume"));
        }
        container
            .resume()
            .map_err(|e| RuntimeError::container("resume", id, e))
    }

    fn pids(&self, id: &str) -> Result<Vec<i32>> {
        let container = self.load(id)?;
        let manager = self.cgroup_manager(&container)?;
        let pids = manager.get_all_pids().map_err(|e| RuntimeError::Cgroup {
            op: "list processes in",
            id: id.to_owned(),
            reason: e.to_string(),
        })?;
        Ok(pids.into_iter().map(Pid::as_raw).collect())
    }

    fn exec(&self, id: &str, opts: &ExecOptions) -> Result<i32> {
        let container = self.load(id)?;
        if container.status() != ContainerStatus::Running {
            return Err(wrong_state(&container, "exec in"));
        }
        let pid = ContainerBuilder::new(id.to_owned(), SyscallType::default())
            .with_root_path(&self.root)
            .map(|b| {
                b.with_console_socket(opts.console_socket.as_ref())
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
            })
            .and_then(|b| b.build())
            .map_err(|e| RuntimeError::container("exec in", id, e))?;
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
        let manager = self.cgroup_manager(&container)?;
        manager
            .apply(&update_opt(resources))
            .map_err(|e| RuntimeError::Cgroup {
                op: "update",
                id: id.to_owned(),
                reason: e.to_string(),
            })
    }
}

/// What `update` asks of the cgroup controllers: only the new limits (no
/// freezer change, no oom_score_adj: those are not updatable).
fn update_opt(resources: &LinuxResources) -> ControllerOpt<'_> {
    ControllerOpt {
        resources,
        disable_oom_killer: resources
            .memory()
            .as_ref()
            .and_then(|m| m.disable_oom_killer())
            .unwrap_or(false),
        oom_score_adj: None,
        freezer_state: None,
    }
}

fn env_map(env: &[String]) -> std::collections::HashMap<String, String> {
    env.iter()
        .filter_map(|kv| kv.split_once('='))
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A cgroup v2 directory as the kernel lays it out, in a temp dir: this
    /// machine runs v1, so v2 is checked against fixtures.
    fn v2_fixture() -> (tempfile::TempDir, PathBuf) {
        let root = tempfile::tempdir().unwrap();
        std::fs::write(
            root.path().join("cgroup.controllers"),
            "cpuset cpu io memory pids\n",
        )
        .unwrap();
        let cgroup = root.path().join("berth/c1");
        std::fs::create_dir_all(&cgroup).unwrap();
        for file in [
            "memory.max",
            "memory.swap.max",
            "memory.low",
            "memory.high",
            "memory.oom.group",
            "cpu.max",
            "cpu.weight",
            "cpu.idle",
            "cpuset.cpus",
            "cpuset.mems",
            "pids.max",
            "io.weight",
            "io.max",
            "cgroup.procs",
            "cgroup.subtree_control",
            "cgroup.controllers",
        ] {
            std::fs::write(cgroup.join(file), "").unwrap();
        }
        (root, cgroup)
    }

    #[test]
    fn update_writes_cgroup_v2_files() {
        let (root, cgroup) = v2_fixture();
        let resources: LinuxResources = serde_json::from_value(serde_json::json!({
            "memory": {"limit": 67108864, "swap": 100663296},
            "cpu": {"shares": 1024, "quota": 50000, "period": 100000, "cpus": "0-1"},
            "pids": {"limit": 42}
        }))
        .unwrap();
        let manager =
            libcgroups::v2::manager::Manager::new(root.path().to_path_buf(), "berth/c1".into())
                .unwrap();
        manager.apply(&update_opt(&resources)).unwrap();
        let read = |f: &str| std::fs::read_to_string(cgroup.join(f)).unwrap();
        assert_eq!(read("memory.max"), "67108864");
        // OCI swap is memory + swap; v2 counts swap alone.
        assert_eq!(read("memory.swap.max"), "33554432");
        assert_eq!(read("cpu.max"), "50000 100000");
        assert_eq!(read("cpuset.cpus"), "0-1");
        assert_eq!(read("pids.max"), "42");
        // The default shares (1024) map to the default weight (100), as in
        // crun and runc >= 1.3.
        assert_eq!(read("cpu.weight"), "100");
    }
}
