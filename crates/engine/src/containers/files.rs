//! A container's files: `GET /containers/{id}/export` (all of them),
//! `/containers/{id}/archive` (`docker cp`: the stat of a path, a tar of
//! it, a tar extracted into a directory) and `/containers/{id}/changes`.
//!
//! A running container's files are reached through its init's root
//! (`/proc/<pid>/root`), so a copy sees what its processes see — bind
//! mounts, volumes and tmpfs included. A stopped one's root is mounted for
//! the copy, under a lock its start takes too. Every path resolves inside
//! the root (berth_store::paths): the container's symlinks cannot lead a
//! copy out of it.

use std::collections::HashSet;
use std::io::{Read, Write};
use std::path::PathBuf;
use std::sync::{Condvar, Mutex};

use berth_store::fsroot::Root;
use berth_store::paths::PathStat;
use berth_store::unpack::UnpackOptions;
use serde_json::{json, Value};

use super::model::{Record, Status};
use super::{internal, ContainerService};
use crate::error::{EngineError, ErrorKind, Result};

/// What the runtime creates in a container's root for its mounts when the
/// image lacks it: dockerd keeps these in an "init" layer under the
/// container's, so they are no change of the container's.
const INIT_PATHS: [&str; 7] = [
    "/dev",
    "/dev/pts",
    "/dev/shm",
    "/proc",
    "/sys",
    "/etc/hostname",
    "/etc/resolv.conf",
];

/// How `PUT /containers/{id}/archive` extracts.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ExtractOptions {
    /// Refuse to replace a directory with a non-directory or the reverse.
    pub no_overwrite_dir_non_dir: bool,
    /// Give the files the container's user instead of the archive's owners.
    pub copy_uid_gid: bool,
}

/// Containers whose root is mounted for a file operation: their start
/// (which mounts the same upper dir) waits, as does a second operation.
#[derive(Debug, Default)]
pub(super) struct FileLocks {
    busy: Mutex<HashSet<String>>,
    freed: Condvar,
}

/// Held while a container's root is mounted for an operation.
pub(super) struct FileLock<'a> {
    locks: &'a FileLocks,
    id: String,
}

impl FileLocks {
    /// Waits until no operation holds `id`, then holds it.
    pub(super) fn lock(&self, id: &str) -> FileLock<'_> {
        let busy = self
            .busy
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let mut busy = self
            .freed
            .wait_while(busy, |b| b.contains(id))
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        busy.insert(id.to_owned());
        FileLock {
            locks: self,
            id: id.to_owned(),
        }
    }
}

impl Drop for FileLock<'_> {
    fn drop(&mut self) {
        self.locks
            .busy
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .remove(&self.id);
        self.locks.freed.notify_all();
    }
}

/// A container's root filesystem, open for one operation.
struct Files<'a> {
    root: Root,
    /// The mount made for the operation (a stopped container), undone on
    /// drop, before the lock goes.
    mounted: Option<PathBuf>,
    _lock: Option<FileLock<'a>>,
}

impl Drop for Files<'_> {
    fn drop(&mut self) {
        if let Some(dir) = &self.mounted {
            if let Err(e) = berth_store::overlay::unmount(dir) {
                tracing::warn!(error = %e, "unmounting a container's files after a copy");
            }
        }
    }
}

impl ContainerService {
    /// Writes the container's root filesystem (image and changes) to `out`
    /// as a tar stream, running or not.
    pub fn export(&self, name: &str, out: &mut dyn Write) -> Result<()> {
        let rec = self.find(name)?;
        let image = rec.image_id.parse().map_err(|e| internal("image ID", e))?;
        let upper = self.dir(&rec.id).join("upper");
        self.store.export_container(&image, &upper, out)?;
        Ok(())
    }

    /// Opens the container's root: its processes' while it runs, mounted
    /// here while it does not. A container whose record says it runs but
    /// whose init is gone is exiting: its root is mounted only once the
    /// exit is recorded (the exit unmounts the running root).
    fn files(&self, rec: &Record) -> Result<Files<'_>> {
        let live = |r: &Record| {
            self.live_root(r).map(|root| Files {
                root,
                mounted: None,
                _lock: None,
            })
        };
        if let Some(f) = live(rec) {
            return Ok(f);
        }
        let lock = self.file_locks.lock(&rec.id);
        let now = self.find(&rec.id)?;
        if now.state.status == Status::Running {
            if let Some(f) = live(&now) {
                return Ok(f); // started meanwhile
            }
            drop(lock);
            let exited = self.wait_until(&rec.id, Some(std::time::Duration::from_secs(10)), |r| {
                r.is_none_or(|r| r.state.status != Status::Running)
            });
            if !exited {
                return Err(EngineError::new(
                    ErrorKind::Conflict,
                    format!("Container {} is stopping: try again once it has", rec.id),
                ));
            }
            return self.files(&self.find(&rec.id)?);
        }
        let dir = self.dir(&rec.id);
        let rootfs = dir.join("rootfs");
        let image = rec.image_id.parse().map_err(|e| internal("image ID", e))?;
        let chain = self.store.chain(&image)?;
        self.store.layers().mount(
            &chain,
            Some((&dir.join("upper"), &dir.join("work"))),
            &rootfs,
        )?;
        // From here on, dropping `files` unmounts the whole tree.
        let files = Files {
            root: Root::open(&rootfs).map_err(|e| {
                let _ = berth_store::overlay::unmount(&rootfs);
                internal("opening the container's files", e)
            })?,
            mounted: Some(rootfs),
            _lock: Some(lock),
        };
        self.mount_binds(rec, &files.root)?;
        Ok(files)
    }

    /// The container's binds and volumes, mounted where it would see them
    /// (a copy into a stopped container's volume lands in the volume, as
    /// under Docker). Each destination is resolved inside the root, and
    /// mounted on through its handle: the container's symlinks cannot
    /// move a mount onto the host.
    fn mount_binds(&self, rec: &Record, root: &Root) -> Result<()> {
        use nix::mount::MsFlags;
        let specs = super::mounts::spec_mounts(&rec.request.host_config, &rec.volumes, |n| {
            self.volumes.data_path(n)
        })?;
        for m in specs.iter().filter(|m| m["type"] == "bind") {
            let source = std::path::Path::new(m["source"].as_str().unwrap_or_default());
            let dest = m["destination"].as_str().unwrap_or_default();
            let Ok(target) = root.dir(dest.trim_start_matches('/')) else {
                continue; // a file mount, or nothing there: the copy sees the root's
            };
            if !source.is_dir() {
                continue;
            }
            let at = PathBuf::from(format!(
                "/proc/self/fd/{}",
                std::os::fd::AsRawFd::as_raw_fd(&target)
            ));
            let flags = MsFlags::MS_BIND | MsFlags::MS_REC;
            nix::mount::mount(Some(source), &at, None::<&str>, flags, None::<&str>).map_err(
                |e| {
                    internal(
                        &format!("mounting {} at {dest} for the copy", source.display()),
                        e,
                    )
                },
            )?;
            if m["options"][1] == "ro" {
                // The new mount is on top of the handle's directory now:
                // reach it by its path inside the root.
                let top = root
                    .dir(dest.trim_start_matches('/'))
                    .map_err(|e| internal("reopening a mount for the copy", e))?;
                let top = PathBuf::from(format!(
                    "/proc/self/fd/{}",
                    std::os::fd::AsRawFd::as_raw_fd(&top)
                ));
                let ro = MsFlags::MS_BIND | MsFlags::MS_REMOUNT | MsFlags::MS_RDONLY;
                nix::mount::mount(None::<&str>, &top, None::<&str>, ro, None::<&str>)
                    .map_err(|e| internal(&format!("making {dest} read-only for the copy"), e))?;
            }
        }
        Ok(())
    }

    /// The root of a running container's init, if it still is that
    /// container's (a pid reused after an exit is in no container's
    /// cgroup of ours).
    fn live_root(&self, rec: &Record) -> Option<Root> {
        if rec.state.status != Status::Running || rec.state.pid <= 0 {
            return None;
        }
        let proc = PathBuf::from(format!("/proc/{}", rec.state.pid));
        let root = Root::open(&proc.join("root")).ok()?;
        let cgroups = std::fs::read_to_string(proc.join("cgroup")).ok()?;
        let ours = format!("/berth/{}", rec.id);
        // Its own cgroup, or one below it (an init that made sub-cgroups).
        let inside = |path: &str| path == ours || path.starts_with(&format!("{ours}/"));
        cgroups
            .lines()
            .filter_map(|l| l.splitn(3, ':').nth(2))
            .any(inside)
            .then_some(root)
    }

    /// `HEAD /containers/{id}/archive`: the stat of `path`.
    pub fn stat_path(&self, name: &str, path: &str) -> Result<PathStat> {
        let rec = self.find(name)?;
        let files = self.files(&rec)?;
        berth_store::paths::stat(&files.root, path).map_err(|e| path_error(e, path, &rec))
    }

    /// `GET /containers/{id}/archive`: the tar of `path`.
    pub fn archive_path(&self, name: &str, path: &str, out: &mut dyn Write) -> Result<()> {
        let rec = self.find(name)?;
        let files = self.files(&rec)?;
        self.emit("archive-path", &rec, &[("path", path.to_owned())]);
        berth_store::paths::archive(&files.root, path, out).map_err(|e| path_error(e, path, &rec))
    }

    /// `PUT /containers/{id}/archive`: extracts the tar `input` into the
    /// directory `path`.
    pub fn extract_to(
        &self,
        name: &str,
        path: &str,
        input: &mut dyn Read,
        opts: ExtractOptions,
    ) -> Result<()> {
        let rec = self.find(name)?;
        let running = rec.state.status == Status::Running;
        if rec.request.host_config.readonly_rootfs && !running {
            return Err(EngineError::invalid("container rootfs is marked read-only"));
        }
        let files = self.files(&rec)?;
        let owner = if opts.copy_uid_gid {
            Some(self.container_owner(&rec))
        } else {
            None
        };
        let unpack = UnpackOptions {
            whiteouts: false,
            replace_dirs: !opts.no_overwrite_dir_non_dir,
            owner,
            ..UnpackOptions::default()
        };
        // Docker takes the tar plain, gzip, bzip2 or xz compressed.
        let input = berth_store::layers::decompress(input)
            .map_err(|e| EngineError::invalid(format!("reading the archive: {e}")))?;
        berth_store::paths::extract(&files.root, path, input, unpack).map_err(|e| {
            if e.to_string().contains("Read-only file system") {
                return EngineError::invalid("container rootfs is marked read-only");
            }
            path_error(e, path, &rec)
        })?;
        self.emit("extract-to-dir", &rec, &[("path", path.to_owned())]);
        Ok(())
    }

    /// The uid and gid the container's processes run as.
    fn container_owner(&self, rec: &Record) -> (u32, u32) {
        let spec = std::fs::read(self.dir(&rec.id).join("config.json")).ok();
        let from_spec = spec
            .and_then(|b| serde_json::from_slice::<Value>(&b).ok())
            .and_then(|s| {
                let u = &s["process"]["user"];
                Some((
                    u32::try_from(u["uid"].as_u64()?).ok()?,
                    u32::try_from(u["gid"].as_u64()?).ok()?,
                ))
            });
        from_spec.unwrap_or((0, 0))
    }

    /// `GET /containers/{id}/changes`: what the container changed in its
    /// image's files (Kind 0 modified, 1 added, 2 deleted), sorted by path.
    pub fn changes(&self, name: &str) -> Result<Vec<Value>> {
        let rec = self.find(name)?;
        let image = rec.image_id.parse().map_err(|e| internal("image ID", e))?;
        let view = self.store.view(&image)?;
        let lower =
            Root::open(view.root()).map_err(|e| internal("opening the image's files", e))?;
        let upper = self.dir(&rec.id).join("upper");
        let found = berth_store::changes::changes(&upper, &lower)?;
        Ok(found
            .into_iter()
            .filter(|(path, _)| !INIT_PATHS.contains(&path.as_str()))
            .map(|(path, kind)| json!({ "Path": path, "Kind": kind as u8 }))
            .collect())
    }
}

/// A path that is not there is Docker's 404.
fn path_error(e: berth_store::StoreError, path: &str, rec: &Record) -> EngineError {
    match e {
        berth_store::StoreError::PathNotFound(_) => EngineError::new(
            ErrorKind::NotFound,
            format!("Could not find the file {path} in container {}", rec.name),
        ),
        berth_store::StoreError::BadLayerEntry { entry, reason, .. } => {
            EngineError::invalid(format!("extracting into {path}: {entry}: {reason}"))
        }
        other => other.into(),
    }
}

/// The file operations the API serves.
pub trait FilesBackend: Send + Sync {
    fn stat_path(&self, container: &str, path: &str) -> Result<PathStat>;
    fn archive_path(&self, container: &str, path: &str, out: &mut dyn Write) -> Result<()>;
    fn extract_to(
        &self,
        container: &str,
        path: &str,
        input: &mut dyn Read,
        opts: ExtractOptions,
    ) -> Result<()>;
    fn changes(&self, container: &str) -> Result<Vec<Value>>;
}

impl FilesBackend for std::sync::Arc<ContainerService> {
    fn stat_path(&self, container: &str, path: &str) -> Result<PathStat> {
        ContainerService::stat_path(self, container, path)
    }
    fn archive_path(&self, container: &str, path: &str, out: &mut dyn Write) -> Result<()> {
        ContainerService::archive_path(self, container, path, out)
    }
    fn extract_to(
        &self,
        container: &str,
        path: &str,
        input: &mut dyn Read,
        opts: ExtractOptions,
    ) -> Result<()> {
        ContainerService::extract_to(self, container, path, input, opts)
    }
    fn changes(&self, container: &str) -> Result<Vec<Value>> {
        ContainerService::changes(self, container)
    }
}
